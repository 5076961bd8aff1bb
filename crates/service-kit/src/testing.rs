//! Test support (feature `testing`): a service served in-process on 127.0.0.1 exactly as its binary serves
//! it (health, reflection, telemetry layer, metrics port), stoppable.

use std::net::SocketAddr;
use std::time::Duration;

use sre_telemetry::SharedRegistry;
use tokio::net::TcpListener;
use tonic::service::Routes;

use crate::grpc::{ServeOptions, serve};

pub struct InProcess {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl InProcess {
    /// Serves `routes` as `service_name` on ephemeral loopback ports.
    pub async fn start(service_name: &'static str, registry: SharedRegistry, routes: Routes) -> Self {
        Self::start_on("127.0.0.1:0".parse().expect("loopback"), service_name, registry, routes).await
    }

    /// Serves `routes` with gRPC on `addr` (a restart on the port a stopped instance used).
    pub async fn start_on(
        addr: SocketAddr,
        service_name: &'static str,
        registry: SharedRegistry,
        routes: Routes,
    ) -> Self {
        let grpc_listener = bind_retrying(addr).await;
        let http_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind HTTP");
        let addr = grpc_listener.local_addr().expect("local addr");
        let opts = ServeOptions { service_name, grpc_listener, http_listener, drain_grace: Duration::ZERO };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            serve(opts, registry, routes, async {}, async {
                let _ = stopped.await;
            })
            .await
            .expect("in-process server");
        });
        Self { addr, stop: Some(stop), task }
    }

    /// `http://127.0.0.1:PORT`, for a client.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Drains and waits for the server to stop.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await.expect("in-process server task");
    }
}

/// Binds `addr`; a fixed port (a restart) may still be held for a moment by the instance that just stopped
/// (its connections draining), so that case is retried for up to 10 s.
async fn bind_retrying(addr: SocketAddr) -> TcpListener {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match TcpListener::bind(addr).await {
            Ok(listener) => return listener,
            Err(e) if addr.port() != 0 && e.kind() == std::io::ErrorKind::AddrInUse => {
                assert!(tokio::time::Instant::now() < deadline, "bind gRPC {addr}: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("bind gRPC {addr}: {e}"),
        }
    }
}
