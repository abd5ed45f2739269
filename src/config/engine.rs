//! Which engine runs the sandbox, and how the workspace reaches it.

use anyhow::bail;
use serde::{Deserialize, Serialize};

use super::SandboxConfig;

/// How /workspace gets the operator's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkspaceMode {
    /// A bind mount for an engine on this machine's unix socket, a volume otherwise.
    Auto,
    /// The host directory mounted into the container: the engine must see this filesystem.
    Bind,
    /// A Docker volume, filled from the host directory when the session starts and copied
    /// back to it after every run.
    Volume,
}

pub(super) fn check(sandbox: &SandboxConfig) -> anyhow::Result<()> {
    if let Some(host) = &sandbox.docker_host {
        let known = ["unix://", "tcp://", "ssh://"];
        if !known.iter().any(|scheme| host.starts_with(scheme)) {
            bail!(
                "sandbox.docker_host = {host:?}: expected unix:///PATH, tcp://HOST:PORT or \
                 ssh://[USER@]HOST[:PORT]"
            );
        }
    }
    if sandbox.ssh_command.split_whitespace().next().is_none() {
        bail!("sandbox.ssh_command is empty: name the ssh program, like \"ssh\"");
    }
    Ok(())
}
