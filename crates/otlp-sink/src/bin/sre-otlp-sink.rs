//! `sre-otlp-sink [--listen 127.0.0.1:4317] [--out data/traces.jsonl]`: receives OTLP/gRPC traces and
//! appends one JSON object per span to the output file.

use std::io::Write;
use std::sync::Mutex;

fn main() -> std::process::ExitCode {
    let mut listen = "127.0.0.1:4317".to_owned();
    let mut out = "data/traces.jsonl".to_owned();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--listen", Some(v)) => listen = v,
            ("--out", Some(v)) => out = v,
            _ => {
                eprintln!("usage: sre-otlp-sink [--listen HOST:PORT] [--out FILE]");
                return std::process::ExitCode::from(2);
            }
        }
    }
    let file = match std::fs::OpenOptions::new().create(true).append(true).open(&out) {
        Ok(f) => Mutex::new(std::io::BufWriter::new(f)),
        Err(e) => {
            eprintln!("sre-otlp-sink: cannot open {out}: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    let result = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&listen).await.map_err(|e| format!("bind {listen}: {e}"))?;
        eprintln!("sre-otlp-sink: listening on {listen}, writing {out}");
        let sink = sre_otlp_sink::Sink::with_callback(move |span| {
            if let (Ok(mut f), Ok(line)) = (file.lock(), serde_json::to_string(span)) {
                let _ = writeln!(f, "{line}");
                let _ = f.flush();
            }
        });
        let stop = async {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("signal");
            tokio::select! { _ = term.recv() => {}, _ = tokio::signal::ctrl_c() => {} }
        };
        sink.serve(listener, stop).await.map_err(|e| e.to_string())
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sre-otlp-sink: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
