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

/// Serves an axum router on `listener` until `shutdown` resolves.
pub async fn serve_http(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    // TCP_NODELAY: small responses go out at once instead of waiting on the client's delayed ACK.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, router).with_graceful_shutdown(shutdown).await
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

/// What every service refuses in a request, whatever the service.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("context is required")]
    MissingContext,
    #[error("context.repo and context.head_sha are required")]
    MissingRepo,
    #[error("diff is {0} bytes; the limit is {MAX_DIFF_BYTES}")]
    DiffTooLarge(usize),
}

impl From<RequestError> for tonic::Status {
    fn from(err: RequestError) -> Self {
        tonic::Status::invalid_argument(err.to_string())
    }
}

/// The request's `RunContext`, or INVALID_ARGUMENT; records it on the current span.
pub fn require_context(ctx: Option<&sre_proto::RunContext>) -> Result<&sre_proto::RunContext, RequestError> {
    let ctx = ctx.ok_or(RequestError::MissingContext)?;
    record_run_context(ctx);
    if ctx.repo.is_empty() || ctx.head_sha.is_empty() {
        return Err(RequestError::MissingRepo);
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
