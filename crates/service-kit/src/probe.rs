//! `<binary> health-probe`: exits 0 when the process's own HTTP `/health` answers 200. Container images have
//! no curl or grpc_health_probe, so every binary carries this.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// The `health-probe` subcommand: exit 0 when `http_addr`'s `/health` answers 200.
pub fn run(http_addr: SocketAddr) -> std::process::ExitCode {
    match check(http_addr) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("health-probe {http_addr}: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// GET /health over plain HTTP/1.0; an unspecified bind address is probed on loopback.
pub fn check(mut addr: SocketAddr) -> Result<(), String> {
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let timeout = Duration::from_secs(2);
    let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect: {e}"))?;
    stream.set_read_timeout(Some(timeout)).ok();
    stream
        .write_all(format!("GET /health HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .map_err(|e| format!("write: {e}"))?;
    let mut head = [0u8; 64];
    let n = stream.read(&mut head).map_err(|e| format!("read: {e}"))?;
    let status = String::from_utf8_lossy(&head[..n]);
    if status.starts_with("HTTP/1.0 200") || status.starts_with("HTTP/1.1 200") {
        Ok(())
    } else {
        Err(format!("unexpected answer: {}", status.lines().next().unwrap_or_default()))
    }
}
