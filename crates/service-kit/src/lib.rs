//! The process scaffold every sre-agent binary shares, so each `main.rs` stays short:
//! typed env config ([`config`]), the SIGTERM/Ctrl-C shutdown signal ([`shutdown_signal`]), the
//! `health-probe` subcommand used by container healthchecks ([`probe`]), and [`grpc::serve`], which runs one
//! sre.v1 service with gRPC health (SERVING only once ready, NOT_SERVING while draining), server reflection
//! v1 + v1alpha, the tracing/metrics layer, and the `/metrics` + `/health` HTTP port.

pub mod config;
pub mod grpc;
pub mod probe;
#[cfg(feature = "testing")]
pub mod testing;

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received, draining");
}

/// How long an HTTP server waits on a client. Without a limit a client that trickles its request headers
/// (slowloris) holds a connection and a task for as long as it likes.
#[derive(Clone)]
pub struct HttpServerOptions {
    /// The request line and headers must arrive within this; otherwise the connection is closed.
    pub header_read_timeout: std::time::Duration,
    /// Called once per connection closed for a header read timeout (the caller counts it).
    pub on_header_timeout: Option<std::sync::Arc<dyn Fn() + Send + Sync>>,
}

impl Default for HttpServerOptions {
    fn default() -> Self {
        Self { header_read_timeout: std::time::Duration::from_secs(10), on_header_timeout: None }
    }
}

/// Serves an axum router on `listener` until `shutdown` resolves, with the default [`HttpServerOptions`].
pub async fn serve_http(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_http_with(listener, router, HttpServerOptions::default(), shutdown).await
}

/// Serves an axum router on `listener` until `shutdown` resolves, then waits for open connections to finish
/// their requests. HTTP/1.1 and HTTP/2; a client that has not sent its headers within
/// `options.header_read_timeout` is disconnected.
pub async fn serve_http_with(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    options: HttpServerOptions,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use hyper_util::server::conn::auto::Builder;
    use hyper_util::service::TowerToHyperService;

    let mut builder = Builder::new(TokioExecutor::new());
    // hyper enforces the header timeout only with a timer.
    builder.http1().timer(TokioTimer::new()).header_read_timeout(options.header_read_timeout);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (tcp, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(err) => {
                    // EMFILE and friends: back off instead of spinning, keep serving.
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = shutdown.as_mut() => break,
        };
        // TCP_NODELAY: small responses go out at once instead of waiting on the client's delayed ACK.
        let _ = tcp.set_nodelay(true);
        let conn = builder.serve_connection(TokioIo::new(tcp), TowerToHyperService::new(router.clone())).into_owned();
        let conn = graceful.watch(conn);
        let on_timeout = options.on_header_timeout.clone();
        tokio::spawn(async move {
            if let Err(err) = conn.await {
                let timed_out = err.downcast_ref::<hyper::Error>().is_some_and(hyper::Error::is_timeout);
                if timed_out {
                    tracing::warn!("client did not send its request headers in time; connection closed");
                    if let Some(count) = on_timeout {
                        count();
                    }
                } else {
                    tracing::debug!(error = %err, "connection ended with an error");
                }
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Records a run's business IDs, language and category on the current span (the gRPC server span declares
/// them), so every log line and the span itself carry them.
pub fn record_run_context(ctx: &sre_proto::RunContext) {
    use sre_domain::RunContextExt;
    let span = tracing::Span::current();
    sre_telemetry::record_ids(&span, ctx.ids());
    if !ctx.language.is_empty() {
        span.record("language", ctx.language.as_str());
    }
    if !ctx.category.is_empty() {
        span.record("category", ctx.category.as_str());
    }
}

/// The gRPC status for a git failure: bad names and SHAs are the caller's fault, a missing repository is
/// NOT_FOUND, a git command that refused is a failed precondition. Logs the failure once, here.
pub fn git_status(err: sre_gitwork::GitError) -> tonic::Status {
    use sre_gitwork::GitError;
    tracing::warn!(error = %err, "git operation failed");
    match &err {
        GitError::InvalidName(_) | GitError::InvalidSha(_) => tonic::Status::invalid_argument(err.to_string()),
        GitError::NotFound(_) => tonic::Status::not_found(err.to_string()),
        GitError::Command { .. } => tonic::Status::failed_precondition(err.to_string()),
        GitError::Timeout(_) => tonic::Status::deadline_exceeded(err.to_string()),
        GitError::Io(_) => tonic::Status::internal(err.to_string()),
    }
}

/// Largest diff a service accepts (the planner's patches are far smaller).
pub const MAX_DIFF_BYTES: usize = 4 * 1024 * 1024;

/// The gRPC decode limit of every server and of the orchestrator's clients. Above the services' own bounds
/// (a diff of [`MAX_DIFF_BYTES`], the planner's 8 MiB job log, plus the rest of the message) so a caller
/// meets those, INVALID_ARGUMENT with a message, and not tonic's default 4 MiB OUT_OF_RANGE; still bounded,
/// so an absurd message is refused by the transport before it is buffered whole.
pub const MAX_GRPC_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// What every service refuses in a request, whatever the service.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("context is required")]
    MissingContext,
    #[error("context.repo and context.head_sha are required")]
    MissingRepo,
    #[error("context.repo {0:?} is not owner/name")]
    InvalidRepo(String),
    #[error("context.head_sha {0:?} is not a commit SHA (7-64 hex characters)")]
    InvalidSha(String),
    #[error("diff is {0} bytes; the limit is {MAX_DIFF_BYTES}")]
    DiffTooLarge(usize),
}

impl From<RequestError> for tonic::Status {
    fn from(err: RequestError) -> Self {
        tonic::Status::invalid_argument(err.to_string())
    }
}

/// The request's `RunContext`, or INVALID_ARGUMENT; records it on the current span. The repo must be
/// `owner/name` (nothing that could leave the repos dir) and the head_sha hex, before any service uses them.
pub fn require_context(ctx: Option<&sre_proto::RunContext>) -> Result<&sre_proto::RunContext, RequestError> {
    // Echoed in the message; an absurd value is cut, not repeated whole.
    let shown = |s: &str| s.chars().take(200).collect::<String>();
    let ctx = ctx.ok_or(RequestError::MissingContext)?;
    record_run_context(ctx);
    if ctx.repo.is_empty() || ctx.head_sha.is_empty() {
        return Err(RequestError::MissingRepo);
    }
    if sre_gitwork::split_name(&ctx.repo).is_err() {
        return Err(RequestError::InvalidRepo(shown(&ctx.repo)));
    }
    if !(7..=64).contains(&ctx.head_sha.len()) || !ctx.head_sha.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(RequestError::InvalidSha(shown(&ctx.head_sha)));
    }
    Ok(ctx)
}

/// Resolves once `git --version` runs: the services that shell out to git are not ready before.
pub async fn git_ready() {
    let mut delay = std::time::Duration::from_millis(200);
    loop {
        match tokio::process::Command::new("git").arg("--version").output().await {
            Ok(out) if out.status.success() => return,
            Ok(out) => tracing::warn!(status = %out.status, "git --version failed; not ready"),
            Err(err) => tracing::warn!(error = %err, "git not runnable; not ready"),
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(std::time::Duration::from_secs(10));
    }
}

/// Refuses a diff larger than [`MAX_DIFF_BYTES`] (with a warning).
pub fn check_diff_size(diff: &str) -> Result<(), RequestError> {
    if diff.len() > MAX_DIFF_BYTES {
        tracing::warn!(bytes = diff.len(), "diff too large; refused");
        return Err(RequestError::DiffTooLarge(diff.len()));
    }
    Ok(())
}
