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
        let grpc_listener = TcpListener::bind(addr).await.expect("bind gRPC");
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
