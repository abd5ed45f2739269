//! What the container mounts from the host: the workspace, the supervisor, the extra volumes
//! a user names. Every source is resolved and checked first: none may hand the sandbox the
//! Docker socket (or any socket), nor Docker's, containerd's or Podman's state.

use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use crate::config::SandboxConfig;
use crate::sandbox::SandboxError;
use crate::supervisor::frame::WorkspaceRoom;

pub(crate) const WORKSPACE: &str = "/workspace";
/// Where the supervisor binary is mounted, read-only.
pub(crate) const SUPERVISOR: &str = "/opt/airlock/airlock";
/// Where the volume holding the supervisor is mounted, for an engine that cannot see it.
pub(super) const SUPERVISOR_DIR: &str = "/opt/airlock";
/// Where the host's workspace directory is mounted when /workspace is the capped tmpfs that
/// mirrors it: under a directory only the supervisor may enter, so no block writes past
/// the cap.
pub(crate) const HOST_WORKSPACE_PARENT: &str = "/run/airlock-host";
pub(crate) const HOST_WORKSPACE: &str = "/run/airlock-host/workspace";

/// Where the workspace and the supervisor come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Storage {
    /// Bind mounts of the host's directory and binary: the engine shares this filesystem.
    Host,
    /// Docker volumes, filled through the archive API (see `super::volume`).
    Volumes {
        workspace: String,
        supervisor: String,
    },
}

/// The host file that becomes the container's supervisor.
fn supervisor_bind(binary: &Path) -> Result<String, SandboxError> {
    let source = binary.canonicalize().map_err(|err| {
        SandboxError::Unavailable(format!(
            "cannot use {} as the sandbox's supervisor: {err}",
            binary.display()
        ))
    })?;
    Ok(format!("{}:{SUPERVISOR}:ro", source.display()))
}

/// The workspace's and the supervisor's mounts: host directories, or the volumes an engine
/// that cannot see this machine's directories gets them in.
pub(super) fn workspace_binds(
    storage: &Storage,
    workspace: &Path,
    supervisor: &Path,
    mirrored: Option<WorkspaceRoom>,
    config: &SandboxConfig,
) -> Result<Vec<String>, SandboxError> {
    let mode = if config.workspace_read_only {
        "ro"
    } else {
        "rw"
    };
    let target = if mirrored.is_some() {
        HOST_WORKSPACE
    } else {
        WORKSPACE
    };
    let binds = match storage {
        Storage::Host => vec![
            workspace_bind(workspace, mode, target)?,
            supervisor_bind(supervisor)?,
        ],
        Storage::Volumes {
            workspace,
            supervisor,
        } => {
            if mirrored.is_none() && !config.workspace_read_only {
                return Err(SandboxError::Unavailable(
                    "sandbox.workspace_limit = 0B (unbounded) cannot be used with a volume \
                     workspace: nothing would bound what is copied back to this machine \
                     after each run; set a limit"
                        .into(),
                ));
            }
            if !config.extra_volumes.is_empty() {
                return Err(SandboxError::Unavailable(
                    "sandbox.extra_volumes names host directories, which an engine that \
                     gets the workspace as a volume (a remote one, or workspace_mode = \
                     \"volume\") does not see; remove them, or use a local engine"
                        .into(),
                ));
            }
            vec![
                format!("{workspace}:{target}:{mode}"),
                format!("{supervisor}:{SUPERVISOR_DIR}:ro"),
            ]
        }
    };
    Ok(binds)
}

fn workspace_bind(path: &Path, mode: &str, target: &str) -> Result<String, SandboxError> {
    let source = checked_source(path, "sandbox.workspace")?;
    Ok(format!("{}:{target}:{mode}", source.display()))
}

/// `HOST:CONTAINER[:ro|rw]` from `sandbox.extra_volumes`.
pub(super) fn extra_bind(spec: &str) -> Result<String, SandboxError> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (host, target, mode) = match parts.as_slice() {
        [host, target] => (*host, *target, "rw"),
        [host, target, mode @ ("ro" | "rw")] => (*host, *target, *mode),
        _ => {
            return Err(SandboxError::Unavailable(format!(
                "sandbox.extra_volumes entry {spec:?}: expected \"HOST:CONTAINER\" or \"HOST:CONTAINER:ro\""
            )));
        }
    };
    if !target.starts_with('/') {
        return Err(SandboxError::Unavailable(format!(
            "sandbox.extra_volumes entry {spec:?}: the container path must be absolute"
        )));
    }
    let source = checked_source(Path::new(host), "sandbox.extra_volumes")?;
    Ok(format!("{}:{target}:{mode}", source.display()))
}

/// Resolves a bind source and refuses anything that would hand the container the Docker
/// socket: the socket itself, any socket file, or a directory that contains the socket.
fn checked_source(path: &Path, key: &str) -> Result<PathBuf, SandboxError> {
    if !path.is_absolute() {
        return Err(SandboxError::Unavailable(format!(
            "{key}: {} must be an absolute path",
            path.display()
        )));
    }
    let source = path.canonicalize().map_err(|err| {
        SandboxError::Unavailable(format!("{key}: cannot use {}: {err}", path.display()))
    })?;
    let is_socket = std::fs::metadata(&source).is_ok_and(|meta| meta.file_type().is_socket());
    let exposes_daemon = docker_sockets()
        .iter()
        .any(|socket| socket.starts_with(&source));
    if is_socket || exposes_daemon {
        return Err(SandboxError::Unavailable(format!(
            "{key}: {} would give the sandbox the Docker socket (or another socket); airlock never mounts it",
            path.display()
        )));
    }
    if let Some(runtime) = runtime_dirs()
        .into_iter()
        .find(|dir| dir.starts_with(&source) || source.starts_with(dir))
    {
        return Err(SandboxError::Unavailable(format!(
            "{key}: {} would give the sandbox Docker's or containerd's state ({}); airlock never \
             mounts it",
            path.display(),
            runtime.display()
        )));
    }
    Ok(source)
}

/// Where Docker, containerd and Podman keep their state and runtime files, resolved: other
/// containers' filesystems, their configuration, and the daemons' sockets.
fn runtime_dirs() -> Vec<PathBuf> {
    [
        "/run/docker",
        "/var/run/docker",
        "/run/containerd",
        "/var/run/containerd",
        "/var/lib/docker",
        "/var/lib/containerd",
        "/etc/docker",
        "/var/lib/containers",
        "/run/containers",
        "/run/podman",
        "/etc/containers",
    ]
    .iter()
    .filter_map(|dir| Path::new(dir).canonicalize().ok())
    .collect()
}

/// The places a Docker, Podman or containerd socket may live on this host, resolved.
pub(super) fn docker_sockets() -> Vec<PathBuf> {
    let mut candidates = vec![
        PathBuf::from("/var/run/docker.sock"),
        PathBuf::from("/run/docker.sock"),
        PathBuf::from("/run/containerd/containerd.sock"),
        PathBuf::from("/run/podman/podman.sock"),
    ];
    if let Some(path) = std::env::var("DOCKER_HOST")
        .ok()
        .and_then(|h| h.strip_prefix("unix://").map(PathBuf::from))
    {
        candidates.push(path);
    }
    if let Some(runtime) = std::env::var_os("XDG_RUNTIME_DIR") {
        candidates.push(PathBuf::from(&runtime).join("docker.sock"));
        candidates.push(PathBuf::from(runtime).join("podman/podman.sock"));
    }
    candidates
        .into_iter()
        .filter_map(|path| path.canonicalize().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_docker_socket_and_its_directories_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let socket_path = dir.path().join("fake.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&socket_path).expect("bind");
        let err = extra_bind(&format!("{}:/x", socket_path.display())).unwrap_err();
        assert!(err.to_string().contains("socket"), "{err}");
        if Path::new("/var/run/docker.sock").exists() {
            for source in ["/var/run/docker.sock", "/var/run", "/run", "/"] {
                let err = extra_bind(&format!("{source}:/mnt")).unwrap_err();
                assert!(err.to_string().contains("Docker socket"), "{source}: {err}");
            }
        }
        let fine = extra_bind(&format!("{}:/data:ro", dir.path().display())).expect("plain dir");
        assert!(fine.ends_with(":/data:ro"));
        assert!(extra_bind("relative:/x").is_err());
        for runtime in runtime_dirs() {
            let err = extra_bind(&format!("{}:/mnt", runtime.display())).unwrap_err();
            assert!(err.to_string().contains("containerd's state"), "{err}");
        }
        assert!(extra_bind("/tmp:/x:rx").is_err());
    }
}
