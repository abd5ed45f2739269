//! Where approved code runs: the engine's [`Sandbox`] trait and the one function that
//! starts a session's sandbox as the configuration says ([`start`]); Docker (and the engines
//! that speak its API: Podman, gVisor's runsc, a remote daemon) is its backend, in
//! [`docker`]. Also the session's workspace directory on the host.

pub mod docker;
pub(crate) mod supervised;
pub(crate) mod workspace;
pub(crate) mod workspace_copy;

use std::sync::{Arc, OnceLock};

pub(crate) use crate::engine::sandbox::LiveOutput;
pub use crate::engine::sandbox::{BlockSpec, Sandbox, SandboxError};
pub use docker::SessionRequest;

/// Receives progress and warnings (image pulls, create warnings, restarts).
pub(crate) type Notices = std::sync::Arc<dyn Fn(String) + Send + Sync>;

/// The sandbox a session runs in.
pub type SessionSandbox = docker::DockerSandbox;

/// What a start interrupted half-way may leave behind (a container the sandbox never got
/// to own), and the means to remove it: known once the start has reached the engine.
#[derive(Clone, Default)]
pub(crate) struct Leftovers {
    engine: Arc<OnceLock<bollard::Docker>>,
}

impl Leftovers {
    /// Removes everything this process created on the sandbox's engine, if it got there.
    pub(crate) async fn remove(&self) {
        if let Some(docker) = self.engine.get() {
            docker::remove_own(docker).await;
        }
    }
}

/// Starts the sandbox `request` asks for: connects to the configured engine, prepares the
/// image and the container and greets the supervisor. `notices` are worth keeping;
/// `progress` passes (an image pull or build).
pub(crate) async fn start(
    request: SessionRequest,
    notices: Notices,
    progress: Notices,
    leftovers: &Leftovers,
) -> Result<SessionSandbox, SandboxError> {
    let connection = docker::connect(&request.config).await?;
    let _ = leftovers.engine.set(connection.client().clone());
    docker::DockerSandbox::start_reporting(connection, request, notices, progress).await
}

/// This running airlock's binary, which is also the supervisor inside the container.
pub(crate) fn supervisor_binary() -> Result<std::path::PathBuf, SandboxError> {
    std::env::current_exe().map_err(|err| {
        SandboxError::Unavailable(format!(
            "cannot find airlock's own binary, which the sandbox runs as its supervisor: {err}"
        ))
    })
}
