//! Why the sandbox cannot start, or cannot run a job. (A command that fails or times out inside the sandbox is
//! an [`crate::Output`], not an error.)

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error(
        "SRE_SANDBOX=required: bubblewrap (bwrap) is not on PATH; install it (scripts/install-tools.sh bwrap, \
         or apt-get install bubblewrap), or set SRE_SANDBOX=unsafe-none to run repository code WITHOUT a sandbox"
    )]
    BwrapMissing,
    #[error(
        "SRE_SANDBOX=required: bubblewrap cannot create the sandbox here: {0}. It needs user, PID and network \
         namespaces (in a container: seccomp and AppArmor unconfined for this service, unprivileged user \
         namespaces enabled on the host); or set SRE_SANDBOX=unsafe-none to run repository code WITHOUT a sandbox"
    )]
    ProbeFailed(String),
    #[error("sandbox layout: {0}")]
    Layout(String),
    #[error("invalid sandbox job: {0}")]
    InvalidJob(String),
    #[error("the worktree's git metadata: {0}")]
    Git(String),
    #[error("could not start {program}: {source}")]
    Spawn { program: String, source: std::io::Error },
    #[error("sandbox io: {0}")]
    Io(#[from] std::io::Error),
}
