//! The Docker adapter: one hardened container per session. Its main process is airlock's
//! supervisor (`airlock supervise`, this same binary mounted read-only), which runs every
//! block; airlock speaks to it in frames over the container's attached stdin and stdout.

mod binds;
mod block;
mod build;
mod connect;
pub(crate) mod endpoint;
mod engine;
mod git_mounts;
mod host_copy;
pub(crate) mod image;
mod in_flight;
mod readback;
mod resources;
pub(crate) mod spec;
mod ssh;
mod supervisor_volume;
mod volume;

use std::path::PathBuf;
use std::time::Duration;

use crate::config::{Protection, SandboxConfig};
use crate::files::changes::Tracker;
use crate::owner::Owner;
use crate::protocol::ExecResult;
use crate::sandbox::supervised::link::{Link, Said};
use crate::sandbox::supervised::{SUPERVISOR_START, greeting};
use crate::sandbox::{BlockSpec, LiveOutput, Notices, Sandbox, SandboxError};
use crate::supervisor::frame::Frame;
use bollard::Docker;
use bollard::models::{ContainerInspectResponse, ContainerSummary};
use bollard::query_parameters::{
    AttachContainerOptions, CreateContainerOptions, ListContainersOptions, RemoveContainerOptions,
};
pub use connect::{Connection, connect};
use endpoint::{Endpoint, Origin};
pub(crate) use image::ImageRef;
use spec::{ContainerPlan, LABEL_OWNER, Mounts, Storage};

/// A short human account of a Docker API error.
pub(crate) fn describe(err: &bollard::errors::Error) -> String {
    match err {
        bollard::errors::Error::DockerResponseServerError {
            status_code,
            message,
        } => {
            format!("{message} (HTTP {status_code})")
        }
        other => other.to_string(),
    }
}

/// Removes labelled containers whose owning airlock process is gone. Containers of a live
/// airlock, or of another host, are never touched.
pub(crate) async fn reap_stale(docker: &Docker, notices: &Notices) {
    let volumes = volume::reap_stale(docker).await;
    if volumes > 0 {
        notices(format!(
            "removed workspace volumes left by airlock processes that are no longer running: {volumes}"
        ));
    }
    for container in labelled(docker, LABEL_OWNER.to_string()).await {
        let (Some(id), Some(labels)) = (container.id, container.labels) else {
            continue;
        };
        let Some(owner) = labels
            .get(LABEL_OWNER)
            .and_then(|label| Owner::parse(label))
        else {
            continue;
        };
        if owner.is_dead() && remove(docker, &id).await {
            notices(format!(
                "removed container {} left by airlock process {} that is no longer running",
                short(&id),
                owner.pid
            ));
        }
    }
}

/// Containers, running or not, that carry `label` (`key` or `key=value`).
async fn labelled(docker: &Docker, label: String) -> Vec<ContainerSummary> {
    let filters = std::collections::HashMap::from([("label".to_string(), vec![label])]);
    let options = ListContainersOptions {
        all: true,
        filters: Some(filters),
        ..Default::default()
    };
    docker
        .list_containers(Some(options))
        .await
        .unwrap_or_default()
}

/// Removes every container this process created: for an interruption that came while a
/// container was being set up, before the sandbox could own it.
pub(crate) async fn remove_own(docker: &Docker) {
    in_flight::settled().await;
    let me = format!("{LABEL_OWNER}={}", Owner::current());
    for container in labelled(docker, me).await {
        if let Some(id) = container.id {
            remove(docker, &id).await;
        }
    }
}

async fn remove(docker: &Docker, id: &str) -> bool {
    let options = RemoveContainerOptions {
        force: true,
        ..Default::default()
    };
    docker.remove_container(id, Some(options)).await.is_ok()
}

fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

/// What a session asks of its sandbox.
#[derive(Debug, Clone)]
pub struct SessionRequest {
    pub session: String,
    pub config: SandboxConfig,
    /// The model's API key variable: never passed into the container.
    pub secret_env: String,
    pub data_dir: PathBuf,
    /// The statically linked airlock binary that becomes the container's supervisor: for a
    /// session started by airlock itself, [`crate::sandbox::supervisor_binary`].
    pub supervisor: PathBuf,
    /// `airlock resume`: the workspace of the session this one continues, reused so its
    /// files are there.
    pub continues: Option<PathBuf>,
}

struct LiveContainer {
    id: String,
    /// Only ever used through `&mut`; the mutex makes the sandbox `Sync` (the stream halves
    /// Docker gives are not).
    link: std::sync::Mutex<Link>,
    /// What every block's environment is: the image's and the session's, as Docker made it.
    env: Vec<(String, String)>,
}

pub struct DockerSandbox {
    docker: Docker,
    config: SandboxConfig,
    plan: ContainerPlan,
    image: ImageRef,
    endpoint: Endpoint,
    container: Option<LiveContainer>,
    generation: u32,
    notices: Notices,
    /// What each run did to the workspace's files; `None` for a read-only workspace.
    tracker: Option<crate::files::changes::Tracker>,
    /// What the host copy and the workspace volume held when they last agreed.
    synced: crate::sandbox::workspace_copy::SyncState,
    /// Group and other write in the workspace before the block, when it is mounted itself.
    write_bits: crate::sandbox::workspace::WriteBits,
}

impl DockerSandbox {
    /// Prepares the image and workspace and starts the session's container; progress of an
    /// image pull or build is reported as notices.
    pub async fn start(
        connection: Connection,
        request: SessionRequest,
        notices: Notices,
    ) -> Result<Self, SandboxError> {
        let progress = notices.clone();
        Self::start_reporting(connection, request, notices, progress).await
    }

    /// [`Self::start`], with the passing progress of an image pull or build kept apart from
    /// the notices worth keeping.
    pub(crate) async fn start_reporting(
        connection: Connection,
        request: SessionRequest,
        notices: Notices,
        progress: Notices,
    ) -> Result<Self, SandboxError> {
        let (docker, endpoint) = connection.into_parts();
        reap_stale(&docker, &notices).await;
        for weakening in request.config.weakenings() {
            notices(format!("the sandbox is weakened: {weakening}"));
        }
        let image = image::ensure(&docker, &request.config, &notices, &progress).await?;
        let users = spec::Users::resolve(&request.config.user)?;
        let workspace = host_workspace(&request, users, &notices)?;
        let config = request.config;
        let storage = if endpoint.uses_volume(config.workspace_mode) {
            Storage::Volumes {
                workspace: volume::workspace_name(&request.session),
                supervisor: supervisor_volume::supervisor(&docker, &image.id, &request.supervisor)
                    .await?,
            }
        } else {
            Storage::Host
        };
        let plan = ContainerPlan::new(
            &request.session,
            &image.id,
            &config,
            &request.secret_env,
            users,
            Mounts {
                workspace,
                supervisor: &request.supervisor,
                storage,
            },
            engine::Engine::identify(&docker).await,
        )?;
        let mut synced = Default::default();
        if let Storage::Volumes { workspace, .. } = &plan.storage {
            let code = plan.users.code;
            synced =
                volume::workspace(&docker, &image.id, workspace, &plan.workspace, code).await?;
        }
        let mut sandbox = Self {
            docker,
            config,
            plan,
            image,
            endpoint,
            container: None,
            generation: 0,
            notices,
            tracker: None,
            synced,
            write_bits: Default::default(),
        };
        if let Err(err) = sandbox.launch().await {
            sandbox.remove_workspace_volume().await;
            return Err(err);
        }
        if let Some(command) = sandbox.config.init_command.clone()
            && let Err(err) = sandbox.run_init_command(&command).await
        {
            sandbox.shutdown().await;
            return Err(err);
        }
        if !sandbox.config.workspace_read_only {
            // What is there before the first block (a resumed session's files, what the
            // init command made) is no run's doing.
            let root = sandbox.plan.workspace.clone();
            let tracker = tokio::task::spawn_blocking(move || Tracker::start(&root)).await;
            sandbox.tracker = tracker.ok();
        }
        Ok(sandbox)
    }

    pub(crate) fn image(&self) -> &ImageRef {
        &self.image
    }

    pub fn container_id(&self) -> Option<&str> {
        self.container
            .as_ref()
            .map(|container| container.id.as_str())
    }

    async fn launch(&mut self) -> Result<(), SandboxError> {
        self.generation += 1;
        let name = format!("airlock-{}-{}", self.plan.session, self.generation);
        let options = CreateContainerOptions {
            name: Some(name),
            ..Default::default()
        };
        let (docker, body) = (self.docker.clone(), self.plan.body(&self.config));
        let created =
            in_flight::carried(async move { docker.create_container(Some(options), body).await })
                .await?
                .map_err(|err| {
                    SandboxError::Unavailable(format!(
                        "cannot create the sandbox container: {}",
                        describe(&err)
                    ))
                })?;
        for warning in &created.warnings {
            (self.notices)(format!(
                "Docker warned when creating the container: {warning}"
            ));
        }
        match self.harden_and_start(&created.id).await {
            Ok((link, env)) => {
                self.container = Some(LiveContainer {
                    id: created.id,
                    link: std::sync::Mutex::new(link),
                    env,
                });
                Ok(())
            }
            Err(err) => {
                remove(&self.docker, &created.id).await;
                Err(err)
            }
        }
    }

    async fn harden_and_start(
        &self,
        id: &str,
    ) -> Result<(Link, Vec<(String, String)>), SandboxError> {
        let fail = |what: &str, err: bollard::errors::Error| {
            SandboxError::Unavailable(format!(
                "cannot {what} the sandbox container: {}",
                describe(&err)
            ))
        };
        let inspect = self
            .docker
            .inspect_container(id, None)
            .await
            .map_err(|e| fail("inspect", e))?;
        self.check_protections(&inspect)?;
        let options = AttachContainerOptions {
            stdin: true,
            stdout: true,
            stderr: true,
            stream: true,
            ..Default::default()
        };
        let attached = self
            .docker
            .attach_container(id, Some(options))
            .await
            .map_err(|e| fail("attach to", e))?;
        let (docker, started) = (self.docker.clone(), id.to_string());
        in_flight::carried(async move { docker.start_container(&started, None).await })
            .await?
            .map_err(|e| fail("start", e))?;
        let mut link = supervisor_line(attached);
        self.greet(&mut link).await?;
        Ok((link, block_env(&inspect)))
    }

    /// The container's settings read back; what is missing is refused unless waived.
    fn check_protections(&self, inspect: &ContainerInspectResponse) -> Result<(), SandboxError> {
        let missing = readback::verify(inspect, &self.plan, &self.config)?;
        // Without no-new-privileges, a setuid program in the image would make a block root
        // with the supervisor's capabilities: that one is never waived.
        let (waived, refused): (Vec<_>, Vec<_>) = missing.into_iter().partition(|m| {
            m.protection != Protection::NoNewPrivileges && self.config.waive.contains(&m.protection)
        });
        for missing in &waived {
            (self.notices)(format!(
                "protection `{}` is missing ({}); running anyway because sandbox.waive lists it",
                missing.protection.name(),
                missing.detail
            ));
        }
        if refused.is_empty() {
            return Ok(());
        }
        let list: Vec<String> = refused
            .iter()
            .map(|m| format!("{} ({})", m.protection.name(), m.detail))
            .collect();
        Err(SandboxError::Unavailable(format!(
            "the sandbox container lacks protections this host did not apply: {}. airlock will \
             not run code without them; if you accept that on this host, add their names to \
             sandbox.waive",
            list.join("; ")
        )))
    }

    /// Waits for the supervisor's greeting and checks what it says of itself.
    async fn greet(&self, link: &mut Link) -> Result<(), SandboxError> {
        let refuse = |why: String| {
            SandboxError::Unavailable(format!(
                "the sandbox's supervisor {why}; airlock runs no block without it"
            ))
        };
        let deadline = tokio::time::Instant::now() + SUPERVISOR_START;
        let hello = match link.next(deadline).await {
            Ok(Some(Frame::Hello(hello))) => hello,
            Ok(Some(_)) => return Err(refuse("did not begin with its greeting".into())),
            Ok(None) => return Err(refuse("did not start within 15 s".into())),
            Err(_) => {
                let hint = greeting::static_hint(&self.plan.supervisor);
                return Err(refuse(format!("did not start: {}{hint}", link.why_gone())));
            }
        };
        let expected = greeting::Expected {
            code_uid: self.plan.users.code.uid,
            workspace: self.plan.mirrored,
            inodes_not_asked: (self.plan.engine == engine::Engine::Podman)
                .then_some("Podman 4 refuses tmpfs's nr_inodes"),
        };
        let waived = |p: Protection| self.config.waive.contains(&p);
        greeting::check(&hello, &expected, waived).map_err(refuse)
    }

    async fn restart(&mut self, why: &str) -> Result<(), SandboxError> {
        (self.notices)(format!("replacing the sandbox container: {why}"));
        if let Some(old) = self.container.take() {
            remove(&self.docker, &old.id).await;
        }
        self.launch().await
    }

    /// The workspace volume of an engine that does not share this filesystem, and where the
    /// container has it.
    fn workspace_volume(&self) -> Option<(&str, &'static str)> {
        let Storage::Volumes { workspace, .. } = &self.plan.storage else {
            return None;
        };
        let path = match self.plan.mirrored {
            Some(_) => spec::HOST_WORKSPACE,
            None => spec::WORKSPACE,
        };
        Some((workspace.as_str(), path))
    }

    async fn remove_workspace_volume(&self) {
        if let Some((name, _)) = self.workspace_volume() {
            volume::remove_volume(&self.docker, name).await;
        }
    }

    async fn run_init_command(&mut self, command: &str) -> Result<(), SandboxError> {
        let shell = crate::engine::Language::sh();
        let timeout = Duration::from_secs(self.config.timeout_secs);
        let block = BlockSpec {
            language: &shell,
            code: command,
            timeout,
            cancel: None,
        };
        let result = self.run_block(block, &mut |_, _| {}).await?;
        if result.exit_code != Some(0) {
            return Err(SandboxError::Unavailable(format!(
                "sandbox.init_command failed ({}): {}",
                result
                    .exit_code
                    .map_or("timed out".to_string(), |c| format!("exit code {c}")),
                result.output.trim_end()
            )));
        }
        Ok(())
    }
}

/// The session container's attached streams as the line to its supervisor: its stdout
/// carries frames, its stderr the supervisor's own complaints.
fn supervisor_line(attached: bollard::container::AttachContainerResults) -> Link {
    use bollard::container::LogOutput;
    use futures_util::StreamExt;
    let said = attached.output.filter_map(|chunk| {
        std::future::ready(match chunk {
            Ok(LogOutput::StdOut { message }) => Some(Said::Frames(message)),
            Ok(LogOutput::StdErr { message }) => Some(Said::Complaint(message)),
            Ok(_) => None,
            Err(err) => Some(Said::Broken(describe(&err))),
        })
    });
    Link::new(attached.input, Box::pin(said))
}

/// The workspace directory on the host: the one named in the config, the earlier session's
/// on resume, or a new one.
fn host_workspace(
    request: &SessionRequest,
    users: spec::Users,
    notices: &Notices,
) -> Result<PathBuf, SandboxError> {
    let config = &request.config;
    let continued = request.continues.as_deref().filter(|earlier| {
        let there = crate::sandbox::workspace::is_plain_dir(earlier);
        if !there {
            notices(format!(
                "the earlier session's workspace {} is gone; this one starts empty",
                crate::files::display_name(earlier.as_os_str())
            ));
        }
        there
    });
    crate::sandbox::workspace::prepare(
        config.workspace.as_deref().or(continued),
        &request.data_dir,
        &request.session,
        users.code.uid,
        users.code.gid,
    )
}

/// The container's environment, as blocks get it.
fn block_env(inspect: &ContainerInspectResponse) -> Vec<(String, String)> {
    let env = inspect.config.as_ref().and_then(|c| c.env.as_ref());
    env.into_iter()
        .flatten()
        .filter_map(|pair| pair.split_once('='))
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

impl Sandbox for DockerSandbox {
    async fn run_block(
        &mut self,
        block: BlockSpec<'_>,
        live: LiveOutput<'_>,
    ) -> Result<ExecResult, SandboxError> {
        if self.container.is_none() {
            self.launch().await?;
        }
        self.exec_block(block, live).await
    }

    fn workspace(&self) -> Option<&std::path::Path> {
        Some(&self.plan.workspace)
    }

    fn describe(&self) -> String {
        let weakened = self.config.weakenings();
        let warning = if weakened.is_empty() {
            String::new()
        } else {
            format!(" · ⚠ weakened: {}", weakened.join(", "))
        };
        let workspace = match self.plan.mirrored {
            Some(_) => format!(" · workspace {}", self.config.workspace_limit),
            None => String::new(),
        };
        let engine = match self.endpoint.origin {
            Origin::Default => String::new(),
            _ => format!(" · engine {}", self.endpoint.address),
        };
        // The image, network and engine come from the config and the environment, which
        // may hold anything: drawn harmless for every frontend.
        crate::output::sanitize::for_person(&format!(
            "{} · network {} · {}{workspace} · {} CPU · {} pids · container {}{engine}{warning}",
            self.image.short(),
            self.config.network,
            self.config.memory,
            self.config.cpus,
            self.config.pids_limit,
            self.container_id().map_or("none", short)
        ))
    }

    async fn shutdown(mut self) {
        if let Some(container) = self.container.take() {
            remove(&self.docker, &container.id).await;
        }
        self.remove_workspace_volume().await;
    }
}
