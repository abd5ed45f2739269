//! The hardened container: what we ask Docker for (the check that we got it is in
//! [`super::readback`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use bollard::models::{ContainerCreateBody, HostConfig, HostConfigLogConfig};

pub(crate) use super::binds::{
    HOST_WORKSPACE, HOST_WORKSPACE_PARENT, SUPERVISOR, Storage, WORKSPACE,
};
use super::engine::Engine;
use super::resources;
use crate::config::{SandboxConfig, parse_user};
use crate::owner::Owner;
use crate::sandbox::SandboxError;
use crate::sandbox::supervised::SUPERVISOR_CAPABILITIES;
use crate::supervisor::frame::WorkspaceRoom;

pub(crate) const LABEL_APP: &str = "airlock";
pub(crate) const LABEL_SESSION: &str = "airlock.session";
pub(crate) const LABEL_OWNER: &str = "airlock.owner";
/// The parent of every block's private directory: only the supervisor writes it.
pub(crate) const BLOCKS: &str = "/run/airlock-blocks";
/// The size of the blocks' tmpfs: each holds its code, up to the supervisor's request limit.
const BLOCKS_SIZE: u64 = 80 << 20;

/// A uid:gid pair inside the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UserId {
    pub(crate) uid: u32,
    pub(crate) gid: u32,
}

/// Who runs what: the supervisor runs as root inside the container, with only
/// [`SUPERVISOR_CAPABILITIES`]; blocks run as `code`, never root, so they can neither read
/// nor signal it, and a block's `kill -9 -1` reaches the block's processes and nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Users {
    pub(crate) code: UserId,
}

impl Users {
    pub(crate) fn resolve(setting: &str) -> Result<Self, SandboxError> {
        let code = if setting == "auto" {
            let (uid, gid) = (
                rustix::process::getuid().as_raw(),
                rustix::process::getgid().as_raw(),
            );
            if uid == 0 {
                UserId {
                    uid: 65534,
                    gid: 65534,
                }
            } else {
                UserId { uid, gid }
            }
        } else {
            let (uid, gid) = parse_user(setting).ok_or_else(|| {
                SandboxError::Unavailable(format!("sandbox.user = {setting:?} is not \"UID:GID\""))
            })?;
            UserId { uid, gid }
        };
        if code.uid == 0 {
            return Err(SandboxError::Unavailable(
                "sandbox.user must not be root (uid 0): code never runs as root".into(),
            ));
        }
        Ok(Self { code })
    }
}

/// The host's workspace directory and supervisor binary, and how they reach the container.
pub(crate) struct Mounts<'a> {
    pub(crate) workspace: PathBuf,
    pub(crate) supervisor: &'a Path,
    pub(crate) storage: Storage,
}

/// Everything needed to create one session's container.
#[derive(Debug, Clone)]
pub(crate) struct ContainerPlan {
    pub(crate) session: String,
    pub(crate) image: String,
    pub(crate) users: Users,
    pub(crate) workspace: PathBuf,
    pub(crate) env: Vec<String>,
    pub(crate) binds: Vec<String>,
    pub(crate) owner: Owner,
    /// The host file mounted as the supervisor.
    pub(crate) supervisor: PathBuf,
    /// The room of /workspace when it is the capped tmpfs mirrored to `workspace`; `None`
    /// when `workspace` itself is mounted there.
    pub(crate) mirrored: Option<WorkspaceRoom>,
    /// Read-only mounts over the git metadata of a workspace mounted itself.
    pub(crate) git_mounts: Vec<bollard::models::Mount>,
    pub(crate) storage: Storage,
    pub(crate) engine: Engine,
}

impl ContainerPlan {
    pub(crate) fn new(
        session: &str,
        image: &str,
        config: &SandboxConfig,
        secret_env: &str,
        users: Users,
        mounts: Mounts<'_>,
        engine: Engine,
    ) -> Result<Self, SandboxError> {
        let Mounts {
            workspace,
            supervisor,
            storage,
        } = mounts;
        if let Some(what) = refused_network(&config.network) {
            return Err(SandboxError::Unavailable(format!(
                "sandbox.network = {:?} would share {what}; use \"none\" or a bridge network",
                config.network
            )));
        }
        let mirrored = mirrored_room(config);
        let mut binds =
            super::binds::workspace_binds(&storage, &workspace, supervisor, mirrored, config)?;
        for volume in &config.extra_volumes {
            binds.push(super::binds::extra_bind(volume)?);
        }
        let git_mounts = match (&storage, mirrored, config.workspace_read_only) {
            (Storage::Host, None, false) => {
                super::git_mounts::read_only_mounts(&workspace, WORKSPACE)?
            }
            _ => Vec::new(),
        };
        Ok(Self {
            session: session.to_string(),
            image: image.to_string(),
            users,
            workspace,
            env: container_env(config, secret_env)?,
            binds,
            owner: Owner::current(),
            supervisor: supervisor.to_path_buf(),
            mirrored,
            git_mounts,
            storage,
            engine,
        })
    }

    pub(crate) fn body(&self, config: &SandboxConfig) -> ContainerCreateBody {
        let labels = HashMap::from([
            (LABEL_APP.to_string(), "1".to_string()),
            (LABEL_SESSION.to_string(), self.session.clone()),
            (LABEL_OWNER.to_string(), self.owner.to_string()),
            ("airlock.owner.host".to_string(), self.owner.host.clone()),
            ("airlock.owner.pid".to_string(), self.owner.pid.to_string()),
        ]);
        ContainerCreateBody {
            image: Some(self.image.clone()),
            user: Some("0:0".to_string()),
            entrypoint: Some(self.supervisor_command()),
            cmd: Some(Vec::new()),
            working_dir: Some(WORKSPACE.to_string()),
            env: Some(self.env.clone()),
            labels: Some(labels),
            // The supervisor's requests come on this stdin; when airlock disappears it closes,
            // the supervisor sweeps and exits, and Docker removes the container.
            open_stdin: Some(true),
            stdin_once: Some(true),
            attach_stdin: Some(true),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            tty: Some(false),
            network_disabled: Some(config.network == "none"),
            host_config: Some(host_config(self, config)),
            ..Default::default()
        }
    }

    fn supervisor_command(&self) -> Vec<String> {
        let code = self.users.code;
        let mut command: Vec<String> = [
            SUPERVISOR,
            "supervise",
            "--uid",
            &code.uid.to_string(),
            "--gid",
            &code.gid.to_string(),
            "--scratch",
            BLOCKS,
            "--workdir",
            WORKSPACE,
            "--ephemeral",
            "/tmp",
            "--ephemeral",
            "/var/tmp",
            "--ephemeral",
            "/dev/shm",
            // POSIX message queues a block made with open(2) there (mq_open is refused).
            "--ephemeral",
            "/dev/mqueue",
        ]
        .map(String::from)
        .to_vec();
        if self.mirrored.is_some() {
            command.extend(["--mirror".to_string(), HOST_WORKSPACE.to_string()]);
        }
        command
    }
}

/// What /workspace may hold when it is the capped tmpfs: the kernel rounds the size up to
/// whole pages.
fn mirrored_room(config: &SandboxConfig) -> Option<WorkspaceRoom> {
    const PAGE: u64 = 4096;
    let limit = config.workspace_limit.bytes();
    config.workspace_is_bounded().then(|| WorkspaceRoom {
        bytes: limit.div_ceil(PAGE) * PAGE,
        inodes: config.workspace_inodes,
    })
}

/// The container's memory cgroup limit: what programs may use plus what the workspace's
/// tmpfs may hold, since its pages are charged to the same cgroup.
pub(crate) fn memory_limit(config: &SandboxConfig) -> i64 {
    let workspace = mirrored_room(config).map_or(0, |room| room.bytes);
    (config.memory.bytes() + workspace) as i64
}

fn tmpfs_mounts(plan: &ContainerPlan, config: &SandboxConfig) -> HashMap<String, String> {
    let scratch = format!(
        "rw,nosuid,nodev,noexec,size={},mode=1777",
        config.tmp_size.bytes()
    );
    let mut mounts = HashMap::from([
        ("/tmp".to_string(), scratch.clone()),
        // Podman mounts its own writable, unbounded tmpfs at /run and /var/tmp on a
        // read-only root unless asked for one there: these are airlock's, on every engine,
        // and /var/tmp is emptied after every block like /tmp.
        ("/var/tmp".to_string(), scratch),
        (
            "/run".to_string(),
            "rw,nosuid,nodev,noexec,size=1m,mode=0755".to_string(),
        ),
        (
            BLOCKS.to_string(),
            format!("rw,nosuid,nodev,noexec,size={BLOCKS_SIZE},mode=0711"),
        ),
    ]);
    if let Some(room) = plan.mirrored {
        // Programs may be built and run there, as in the directory it mirrors; never set-id.
        // Podman 4 refuses nr_inodes: there the supervisor's greeting finds the inodes
        // uncapped, and that is refused unless the workspace protection is waived.
        let inodes = match plan.engine {
            Engine::Docker => format!(",nr_inodes={}", room.inodes),
            Engine::Podman => String::new(),
        };
        mounts.insert(
            WORKSPACE.to_string(),
            format!("rw,nosuid,nodev,exec,size={}{inodes},mode=0700", room.bytes),
        );
        mounts.insert(
            HOST_WORKSPACE_PARENT.to_string(),
            "rw,nosuid,nodev,noexec,size=64k,mode=0700".to_string(),
        );
    }
    mounts
}

fn host_config(plan: &ContainerPlan, config: &SandboxConfig) -> HostConfig {
    let memory = memory_limit(config);
    HostConfig {
        network_mode: Some(config.network.clone()),
        memory: Some(memory),
        memory_swap: Some(memory + config.swap.bytes() as i64),
        nano_cpus: Some((config.cpus * 1e9).round() as i64),
        pids_limit: Some(config.pids_limit),
        ulimits: Some(resources::ulimits(config)),
        readonly_rootfs: Some(config.read_only_root),
        tmpfs: Some(tmpfs_mounts(plan, config)),
        shm_size: Some(config.shm_size.bytes() as i64),
        cap_drop: Some(vec!["ALL".to_string()]),
        cap_add: Some(SUPERVISOR_CAPABILITIES.map(String::from).to_vec()),
        security_opt: Some(vec!["no-new-privileges".to_string()]),
        init: Some(config.init),
        privileged: Some(false),
        // An IPC namespace of its own that no other container may join (Docker's
        // "shareable", the default on some daemons, lets one).
        ipc_mode: Some("private".to_string()),
        auto_remove: Some(true),
        binds: Some(plan.binds.clone()),
        mounts: (!plan.git_mounts.is_empty()).then(|| plan.git_mounts.clone()),
        extra_hosts: (!config.extra_hosts.is_empty()).then(|| config.extra_hosts.clone()),
        runtime: config.runtime.clone(),
        device_requests: config.gpus.as_deref().map(resources::gpu_requests),
        // What the supervisor writes is read from the attached stream. A log driver would
        // keep another copy of every frame on the daemon's disk, block output included, for
        // as long as the container lives: no limit, and a cost to every frame.
        log_config: Some(HostConfigLogConfig {
            typ: Some("none".to_string()),
            config: None,
        }),
        ..Default::default()
    }
}

fn container_env(config: &SandboxConfig, secret_env: &str) -> Result<Vec<String>, SandboxError> {
    let mut env: Vec<String> = Vec::new();
    for name in &config.pass_env {
        if name == secret_env {
            return Err(SandboxError::Unavailable(format!(
                "sandbox.pass_env names {name}, the model's API key variable; secrets never enter the sandbox"
            )));
        }
        if let Ok(value) = std::env::var(name) {
            env.push(format!("{name}={value}"));
        }
    }
    for (name, value) in &config.env {
        env.push(format!("{name}={value}"));
    }
    // Set last so they win: a writable HOME on the read-only root (emptied after every
    // block), live Python output, and no user site-packages, where a block could plant a
    // `.pth` that every later Python block would run first.
    env.push("HOME=/tmp".to_string());
    env.push("PYTHONUNBUFFERED=1".to_string());
    env.push("PYTHONNOUSERSITE=1".to_string());
    Ok(env)
}

/// `sandbox.network` values that would share a namespace the sandbox must not have.
pub(super) fn refused_network(network: &str) -> Option<&'static str> {
    if network == "host" {
        Some("the host's network")
    } else if network.starts_with("container:") {
        Some("another container's network namespace (which can be the host's)")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_never_the_code_user() {
        let err = Users::resolve("0:0").unwrap_err();
        assert!(err.to_string().contains("root"));
        let users = Users::resolve("1000:1000").expect("valid");
        assert_eq!(
            users.code,
            UserId {
                uid: 1000,
                gid: 1000
            }
        );
        let auto = Users::resolve("auto").expect("valid");
        assert_ne!(auto.code.uid, 0);
    }

    #[test]
    fn the_api_key_variable_is_never_passed() {
        let config = SandboxConfig {
            pass_env: vec!["OPENAI_API_KEY".into()],
            ..SandboxConfig::default()
        };
        let err = container_env(&config, "OPENAI_API_KEY").unwrap_err();
        assert!(err.to_string().contains("OPENAI_API_KEY"));
        let env = container_env(&SandboxConfig::default(), "OPENAI_API_KEY").expect("env");
        assert_eq!(
            env,
            ["HOME=/tmp", "PYTHONUNBUFFERED=1", "PYTHONNOUSERSITE=1"].map(String::from)
        );
    }
}
