//! The Docker adapter: one hardened container per session, blocks run as execs in it.

mod build;
pub mod image;
mod keepalive;
pub mod spec;
mod wrapper;

use std::path::PathBuf;
use std::pin::Pin;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::models::ContainerSummary;
use bollard::query_parameters::{
    AttachContainerOptions, CreateContainerOptions, ListContainersOptions, RemoveContainerOptions,
};
use futures_util::StreamExt;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use crate::config::SandboxConfig;
use crate::ids::random_hex;
use crate::output::OutputCapture;
use crate::protocol::{ExecResult, Stream};
use crate::sandbox::owner::Owner;
use crate::sandbox::{BlockSpec, LiveOutput, Notices, Sandbox, SandboxError};
pub use image::ImageRef;
use spec::{ContainerPlan, LABEL_OWNER, WORKSPACE};
use wrapper::{Status, StatusScanner};

/// How long the daemon gets to answer a ping.
const PING_DEADLINE: Duration = Duration::from_secs(5);
/// Extra time past the in-container timeout before airlock stops waiting for the stream.
const HOST_MARGIN: Duration = Duration::from_secs(5);
/// After this long without output, a line still waiting for its newline is shown anyway.
const QUIET: Duration = Duration::from_millis(100);

/// A short human account of a Docker API error.
pub fn describe(err: &bollard::errors::Error) -> String {
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

fn daemon_address() -> String {
    std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into())
}

/// Connects with Docker's defaults (DOCKER_HOST honoured), pings with a short deadline and
/// negotiates the API version.
pub async fn connect() -> Result<Docker, SandboxError> {
    let unreachable = |why: String| {
        SandboxError::Unavailable(format!(
            "cannot reach the Docker daemon at {}: {why}. Start Docker (for example \
             `sudo systemctl start docker`) or point DOCKER_HOST at a running daemon",
            daemon_address()
        ))
    };
    let docker = Docker::connect_with_defaults().map_err(|err| unreachable(describe(&err)))?;
    match tokio::time::timeout(PING_DEADLINE, docker.ping()).await {
        Err(_) => return Err(unreachable("it did not answer within 5 s".into())),
        Ok(Err(err)) => return Err(unreachable(describe(&err))),
        Ok(Ok(_)) => {}
    }
    docker
        .negotiate_version()
        .await
        .map_err(|err| unreachable(describe(&err)))
}

/// Removes labelled containers whose owning airlock process is gone. Containers of a live
/// airlock, or of another host, are never touched.
pub async fn reap_stale(docker: &Docker, notices: &Notices) {
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
pub async fn remove_own(docker: &Docker) {
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
}

struct LiveContainer {
    id: String,
    /// Held open for the container's lifetime: PID 1 exits when it closes. (In a mutex only
    /// to make the sandbox `Sync`; nobody writes to it.)
    _stdin: std::sync::Mutex<Pin<Box<dyn AsyncWrite + Send>>>,
}

pub struct DockerSandbox {
    docker: Docker,
    config: SandboxConfig,
    plan: ContainerPlan,
    image: ImageRef,
    container: Option<LiveContainer>,
    generation: u32,
    notices: Notices,
}

impl DockerSandbox {
    /// Prepares the image and workspace and starts the session's container; progress of an
    /// image pull or build is reported as notices.
    pub async fn start(
        docker: Docker,
        request: SessionRequest,
        notices: Notices,
    ) -> Result<Self, SandboxError> {
        let progress = notices.clone();
        Self::start_reporting(docker, request, notices, progress).await
    }

    /// [`Self::start`], with the passing progress of an image pull or build kept apart from
    /// the notices worth keeping.
    pub async fn start_reporting(
        docker: Docker,
        request: SessionRequest,
        notices: Notices,
        progress: Notices,
    ) -> Result<Self, SandboxError> {
        reap_stale(&docker, &notices).await;
        let config = request.config;
        let image = image::ensure(&docker, &config, &notices, &progress).await?;
        let users = spec::Users::resolve(&config.user)?;
        let workspace = crate::sandbox::workspace::prepare(
            config.workspace.as_deref(),
            &request.data_dir,
            &request.session,
            users.code.uid,
            users.code.gid,
        )?;
        let plan = ContainerPlan::new(
            &request.session,
            &image.id,
            &config,
            &request.secret_env,
            users,
            workspace,
        )?;
        let mut sandbox = Self {
            docker,
            config,
            plan,
            image,
            container: None,
            generation: 0,
            notices,
        };
        sandbox.launch().await?;
        if let Some(command) = sandbox.config.init_command.clone() {
            sandbox.run_init_command(&command).await?;
        }
        Ok(sandbox)
    }

    pub fn image(&self) -> &ImageRef {
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
        let created = self
            .docker
            .create_container(Some(options), self.plan.body(&self.config))
            .await
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
            Ok(stdin) => {
                self.container = Some(LiveContainer {
                    id: created.id,
                    _stdin: std::sync::Mutex::new(stdin),
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
    ) -> Result<Pin<Box<dyn AsyncWrite + Send>>, SandboxError> {
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
        let missing = spec::verify(&inspect, &self.plan, &self.config)?;
        let (waived, refused): (Vec<_>, Vec<_>) = missing
            .into_iter()
            .partition(|m| self.config.waive.contains(&m.protection));
        for missing in &waived {
            (self.notices)(format!(
                "protection `{}` is missing ({}); running anyway because sandbox.waive lists it",
                missing.protection.name(),
                missing.detail
            ));
        }
        if !refused.is_empty() {
            let list: Vec<String> = refused
                .iter()
                .map(|m| format!("{} ({})", m.protection.name(), m.detail))
                .collect();
            return Err(SandboxError::Unavailable(format!(
                "the sandbox container lacks protections this host did not apply: {}. airlock will \
                 not run code without them; if you accept that on this host, add their names to \
                 sandbox.waive",
                list.join("; ")
            )));
        }
        let options = AttachContainerOptions {
            stdin: true,
            stream: true,
            ..Default::default()
        };
        let attached = self
            .docker
            .attach_container(id, Some(options))
            .await
            .map_err(|e| fail("attach to", e))?;
        self.docker
            .start_container(id, None)
            .await
            .map_err(|e| fail("start", e))?;
        Ok(attached.input)
    }

    async fn restart(&mut self, why: &str) -> Result<(), SandboxError> {
        (self.notices)(format!("restarting the sandbox container: {why}"));
        if let Some(old) = self.container.take() {
            remove(&self.docker, &old.id).await;
        }
        self.launch().await
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

    async fn exec_block(
        &mut self,
        block: BlockSpec<'_>,
        live: LiveOutput<'_>,
    ) -> Result<ExecResult, SandboxError> {
        let started = Instant::now();
        let container = self.container.as_ref().ok_or_else(|| {
            SandboxError::Failed("the sandbox container is gone and could not be restarted".into())
        })?;
        let cannot_start = |err: bollard::errors::Error| {
            SandboxError::Failed(format!("cannot start the block: {}", describe(&err)))
        };
        let container_short = short(&container.id).to_string();
        let nonce = random_hex(16);
        let timeout_secs = block.timeout.as_secs().max(1);
        let mut cmd: Vec<String> = vec![
            "/bin/sh".into(),
            "-c".into(),
            wrapper::SCRIPT.into(),
            "airlock-block".into(),
            timeout_secs.to_string(),
            self.config.kill_grace_secs.to_string(),
            block.language.extension.clone(),
            self.plan.users.code.uid.to_string(),
        ];
        cmd.extend(block.language.command.iter().cloned());
        let exec = self
            .docker
            .create_exec(
                &container.id,
                CreateExecOptions {
                    cmd: Some(cmd),
                    attach_stdin: Some(true),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    tty: Some(false),
                    user: Some(self.plan.users.code.spec()),
                    working_dir: Some(WORKSPACE.to_string()),
                    ..Default::default()
                },
            )
            .await
            .map_err(cannot_start)?;
        let started_exec = self
            .docker
            .start_exec(&exec.id, None)
            .await
            .map_err(cannot_start)?;
        let StartExecResults::Attached {
            mut output,
            mut input,
        } = started_exec
        else {
            return Err(SandboxError::Failed(
                "Docker started the block detached".into(),
            ));
        };
        let payload = format!("{nonce}\n{}", block.code);
        // Written concurrently with reading, so a large block cannot deadlock on full pipes.
        let writer = tokio::spawn(async move {
            input.write_all(payload.as_bytes()).await?;
            input.shutdown().await
        });

        let mut capture = OutputCapture::new(self.config.output_limit.as_usize());
        let mut scanner = StatusScanner::new(&nonce);
        let grace = Duration::from_secs(self.config.kill_grace_secs);
        let deadline =
            tokio::time::Instant::now() + Duration::from_secs(timeout_secs) + grace + HOST_MARGIN;
        let end = pump_output(
            &mut output,
            &mut scanner,
            &mut capture,
            live,
            deadline,
            block.cancel,
        )
        .await;
        writer.abort();
        drop(output);
        if matches!(end, StreamEnd::Cancelled) {
            let captured = capture.finish();
            let restarted = self.stop_block_processes().await?;
            return Ok(ExecResult {
                exit_code: None,
                timed_out: false,
                oom_killed: false,
                truncated: captured.truncated(),
                output: captured.text(),
                output_bytes: captured.produced_bytes,
                duration_ms: started.elapsed().as_millis() as u64,
                image: self.image.to_string(),
                container_restarted: restarted,
                cancelled: true,
                container: container_short.clone(),
            });
        }
        let (status, held) = scanner.finish();
        record(&mut capture, live, Stream::Stdout, &held);
        let captured = capture.finish();

        let status = match (status, end) {
            (Some(status), _) => Some(status),
            (None, StreamEnd::Stalled | StreamEnd::Cancelled) => None,
            (None, StreamEnd::Broken(why)) => {
                return Err(SandboxError::Failed(format!(
                    "the block's output stream broke: {why}"
                )));
            }
            (None, StreamEnd::Finished) => self.exit_status_of(&exec.id).await,
        };
        let elapsed = started.elapsed();
        let mut restarted = false;
        let outcome = match status {
            None => {
                // The stream outlived every deadline: the container is the only sure way out.
                self.restart("a block did not stop at its deadline").await?;
                restarted = true;
                Outcome {
                    exit_code: None,
                    timed_out: true,
                    oom_killed: false,
                }
            }
            Some(status) => {
                if status.processes_left {
                    self.restart("processes of the last block survived being killed")
                        .await?;
                    restarted = true;
                }
                Outcome::from_status(status, elapsed, Duration::from_secs(timeout_secs))
            }
        };
        Ok(ExecResult {
            exit_code: outcome.exit_code,
            timed_out: outcome.timed_out,
            oom_killed: outcome.oom_killed,
            truncated: captured.truncated(),
            output: captured.text(),
            output_bytes: captured.produced_bytes,
            duration_ms: elapsed.as_millis() as u64,
            image: self.image.to_string(),
            container_restarted: restarted,
            cancelled: false,
            container: container_short.clone(),
        })
    }

    /// After a cancel: kills every process of the code's uid, the block's wrapper included.
    /// Returns whether the container had to be restarted because some survived.
    async fn stop_block_processes(&mut self) -> Result<bool, SandboxError> {
        let Some(container) = self.container.as_ref() else {
            return Ok(false);
        };
        let uid = self.plan.users.code.uid.to_string();
        let cmd = [
            "/bin/sh",
            "-c",
            wrapper::KILL_ALL,
            "airlock-stop",
            uid.as_str(),
        ];
        let killed = async {
            let exec = self
                .docker
                .create_exec(
                    &container.id,
                    CreateExecOptions {
                        cmd: Some(cmd.iter().map(|arg| arg.to_string()).collect()),
                        user: Some(self.plan.users.code.spec()),
                        ..Default::default()
                    },
                )
                .await
                .ok()?;
            self.docker.start_exec(&exec.id, None).await.ok()?;
            let inspect = loop {
                let inspect = self.docker.inspect_exec(&exec.id).await.ok()?;
                if inspect.running != Some(true) {
                    break inspect;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            };
            Some(inspect.exit_code == Some(0))
        };
        let clean = tokio::time::timeout(HOST_MARGIN, killed).await;
        if clean == Ok(Some(true)) {
            return Ok(false);
        }
        self.restart("processes of a stopped block survived being killed")
            .await?;
        Ok(true)
    }

    /// For a wrapper that died before its status line (it was killed itself).
    async fn exit_status_of(&self, exec_id: &str) -> Option<Status> {
        let inspect = self.docker.inspect_exec(exec_id).await.ok()?;
        Some(Status {
            exit_status: inspect.exit_code?,
            oom_kills: 0,
            processes_left: true,
        })
    }
}

/// How a block's output stream ended.
enum StreamEnd {
    Finished,
    /// Still open at the host deadline.
    Stalled,
    /// The operator stopped the block.
    Cancelled,
    Broken(String),
}

/// Reads a block's output until the stream ends or the host deadline passes. Stdout goes
/// through the status scanner; both streams go into the capture, and what joins its head is
/// shown live. A line left without its newline is shown after a moment of quiet.
async fn pump_output(
    output: &mut (impl futures_util::Stream<Item = Result<LogOutput, bollard::errors::Error>> + Unpin),
    scanner: &mut StatusScanner,
    capture: &mut OutputCapture,
    live: LiveOutput<'_>,
    deadline: tokio::time::Instant,
    cancel: Option<&CancellationToken>,
) -> StreamEnd {
    let never = CancellationToken::new();
    let cancel = cancel.unwrap_or(&never);
    loop {
        let quiet_at = (tokio::time::Instant::now() + QUIET).min(deadline);
        let next = tokio::select! {
            next = tokio::time::timeout_at(quiet_at, output.next()) => next,
            () = cancel.cancelled() => return StreamEnd::Cancelled,
        };
        match next {
            Err(_) if quiet_at >= deadline => return StreamEnd::Stalled,
            Err(_) => {
                for (stream, text) in capture.flush_partial_lines() {
                    live(stream, &text);
                }
            }
            Ok(None) => return StreamEnd::Finished,
            Ok(Some(Err(err))) => return StreamEnd::Broken(describe(&err)),
            Ok(Some(Ok(LogOutput::StdOut { message }))) => {
                let data = scanner.push(&message);
                record(capture, live, Stream::Stdout, &data);
            }
            Ok(Some(Ok(LogOutput::StdErr { message }))) => {
                record(capture, live, Stream::Stderr, &message);
            }
            Ok(Some(Ok(_))) => {}
        }
    }
}

fn record(capture: &mut OutputCapture, live: LiveOutput<'_>, stream: Stream, bytes: &[u8]) {
    let text = capture.push(stream, bytes);
    if !text.is_empty() {
        live(stream, &text);
    }
}

struct Outcome {
    exit_code: Option<i64>,
    timed_out: bool,
    oom_killed: bool,
}

impl Outcome {
    fn from_status(status: Status, elapsed: Duration, limit: Duration) -> Self {
        let oom_killed = status.oom_kills > 0;
        // `timeout` exits 124 after TERM, 137 when it had to KILL; either only at the limit.
        let timed_out = !oom_killed
            && matches!(status.exit_status, 124 | 137)
            && elapsed + Duration::from_millis(50) >= limit;
        Self {
            exit_code: (!timed_out).then_some(status.exit_status),
            timed_out,
            oom_killed,
        }
    }
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

    fn describe(&self) -> String {
        format!(
            "{} · network {} · {} · {} CPU · {} pids · container {}",
            self.image.short(),
            self.config.network,
            self.config.memory,
            self.config.cpus,
            self.config.pids_limit,
            self.container_id().map_or("none", short)
        )
    }

    async fn shutdown(mut self) {
        if let Some(container) = self.container.take() {
            remove(&self.docker, &container.id).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(exit_status: i64, oom_kills: u64) -> Status {
        Status {
            exit_status,
            oom_kills,
            processes_left: false,
        }
    }

    #[test]
    fn outcomes_tell_timeouts_from_exit_codes_and_oom() {
        let limit = Duration::from_secs(2);
        let late = Duration::from_millis(2010);
        let early = Duration::from_millis(100);
        let timed = Outcome::from_status(status(124, 0), late, limit);
        assert!(timed.timed_out && timed.exit_code.is_none());
        let killed = Outcome::from_status(status(137, 0), late, limit);
        assert!(killed.timed_out);
        let own_124 = Outcome::from_status(status(124, 0), early, limit);
        assert!(!own_124.timed_out && own_124.exit_code == Some(124));
        let oom = Outcome::from_status(status(137, 1), late, limit);
        assert!(oom.oom_killed && !oom.timed_out && oom.exit_code == Some(137));
    }
}
