//! One block in the Docker sandbox: the workspace walked and synced around it, the run
//! request down the line, its frames followed to the report (`supervised::follow`), and the
//! container replaced when the supervisor stalled, went away or left processes behind.

use std::time::{Duration, Instant};

use super::{DockerSandbox, short};
use crate::sandbox::supervised::HOST_MARGIN;
use crate::sandbox::supervised::follow::{BlockEnd, follow};
use crate::sandbox::supervised::link::Link;

use crate::files::changes::Tracker;
use crate::output::{CapturedOutput, OutputCapture};
use crate::protocol::{ExecResult, FileChange};
use crate::sandbox::{BlockSpec, LiveOutput, SandboxError};
use crate::supervisor::frame::{Frame, MAX_REQUEST, RunRequest};

impl DockerSandbox {
    pub(super) async fn exec_block(
        &mut self,
        block: BlockSpec<'_>,
        live: LiveOutput<'_>,
    ) -> Result<ExecResult, SandboxError> {
        // What changed since the last block is the operator's doing, not this block's, but
        // after an incomplete list it may be the last run's, hidden past the cut: named then.
        // Whether this walk was whole is told after the block, by the walk that records it.
        if let Some(Some(notice)) = self.walk(Tracker::before_block).await {
            (self.notices)(notice);
        }
        self.send_edits().await?;
        self.note_write_bits();
        let started = Instant::now();
        // The request carries the code and a header of a few KiB.
        if block.code.len() > MAX_REQUEST - (1 << 20) {
            return Err(SandboxError::Failed(format!(
                "the block's code is {} bytes; at most {} MiB can be run",
                block.code.len(),
                (MAX_REQUEST >> 20) - 1
            )));
        }
        let request = self.run_request(&block);
        let timeout = Duration::from_millis(request.timeout_ms);
        let grace = Duration::from_millis(request.grace_ms);
        let run = Frame::Run(request, block.code.as_bytes().to_vec());
        self.hand_over(&run).await?;
        let mut capture = OutputCapture::new(self.config.output_limit.as_usize());
        let (link, container) = self.live_link()?;
        let container = short(container).to_string();
        let deadline = tokio::time::Instant::now() + timeout + grace + HOST_MARGIN;
        let end = follow(link, &mut capture, live, deadline, block.cancel).await;
        let result = self.captured_result(capture.finish(), started, container);
        self.conclude(end, result).await
    }

    /// The result as far as the output goes: what the block printed and how long it took.
    fn captured_result(
        &self,
        captured: CapturedOutput,
        started: Instant,
        container: String,
    ) -> ExecResult {
        ExecResult {
            exit_code: None,
            timed_out: false,
            oom_killed: false,
            truncated: captured.truncated(),
            output: captured.text(),
            output_bytes: captured.produced_bytes,
            duration_ms: started.elapsed().as_millis() as u64,
            image: self.image.to_string(),
            container_restarted: false,
            cancelled: false,
            container,
            omission_at: captured.omission_at(),
            workspace_full: false,
            files: Vec::new(),
            files_incomplete: None,
        }
    }

    /// Completes the result from how the block ended; the container is replaced when the
    /// block's processes survived, its supervisor stalled, or the line to it is gone.
    async fn conclude(
        &mut self,
        end: BlockEnd,
        mut result: ExecResult,
    ) -> Result<ExecResult, SandboxError> {
        let mut pushed = None;
        match end {
            BlockEnd::Reported(report) => {
                pushed = report.pushed.clone();
                if let Some(why) = &report.not_run {
                    return Err(SandboxError::Failed(format!(
                        "not run: {}",
                        crate::output::sanitize::neutralize(why)
                    )));
                }
                if let Some(problem) = &report.workspace_problem {
                    (self.notices)(format!(
                        "the workspace was not copied whole: {}",
                        crate::output::sanitize::neutralize(problem)
                    ));
                }
                let kept = &report.git_kept_back;
                if let Some(notice) =
                    crate::files::git::kept_back_notice(kept, report.git_kept_back_more)
                {
                    (self.notices)(notice);
                }
                report.apply_to(&mut result);
                if !report.survivors.is_empty() {
                    let why = format!(
                        "{} processes of the last block survived being killed",
                        report.survivors.len()
                    );
                    self.restart(&why).await?;
                    result.container_restarted = true;
                }
            }
            BlockEnd::Stalled { cancelled } => {
                self.restart("its supervisor did not end a block by airlock's deadline")
                    .await?;
                result.container_restarted = true;
                result.cancelled = cancelled;
                result.timed_out = !cancelled;
            }
            BlockEnd::Lost(why) => {
                self.restart(&format!("its supervisor stopped: {why}"))
                    .await?;
                self.clear_special_bits();
                return Err(SandboxError::Failed(format!(
                    "the sandbox's supervisor stopped while the block ran ({why}); the container \
                     was replaced"
                )));
            }
        }
        self.clear_special_bits();
        self.copy_back(pushed.as_deref()).await;
        (result.files, result.files_incomplete) = self.workspace_changes().await;
        let incomplete = result.files_incomplete.as_deref();
        for warning in crate::files::warnings::warnings(&result.files, incomplete) {
            (self.notices)(warning);
        }
        if self.plan.mirrored.is_none() && !self.config.workspace_read_only {
            let planted = super::git_mounts::planted_notice(&self.plan.workspace, &result.files);
            planted
                .into_iter()
                .for_each(|notice| (self.notices)(notice));
        }
        Ok(result)
    }

    /// What the block did to the workspace's files, read off the host once it is over, and
    /// why that may not be all of it. A tracker lost to a failed walk records nothing more:
    /// each run says so rather than record nothing in silence.
    async fn workspace_changes(&mut self) -> (Vec<FileChange>, Option<String>) {
        const LOST: &str = "the workspace's walk failed; no later run is recorded";
        let walked = self
            .walk(|tracker| (tracker.changes(), tracker.incomplete().map(str::to_string)))
            .await;
        walked.unwrap_or_else(|| {
            // A read-only workspace has no tracker: no run can change it.
            let lost = !self.config.workspace_read_only;
            (Vec::new(), lost.then(|| LOST.into()))
        })
    }

    /// `walk` on the workspace's tracker, off the async threads; `None` when there is no
    /// tracker, or it was lost to a failed walk.
    async fn walk<T: Send + 'static>(
        &mut self,
        walk: impl FnOnce(&mut Tracker) -> T + Send + 'static,
    ) -> Option<T> {
        let mut tracker = self.tracker.take()?;
        let walked = tokio::task::spawn_blocking(move || {
            let found = walk(&mut tracker);
            (tracker, found)
        });
        let (tracker, found) = walked.await.ok()?;
        self.tracker = Some(tracker);
        Some(found)
    }

    /// Before a block that writes the host directory itself (the unbounded workspace):
    /// which entries have group or other write, for the sweep after it.
    fn note_write_bits(&mut self) {
        if self.plan.mirrored.is_none() && !self.config.workspace_read_only {
            self.write_bits = crate::sandbox::workspace::WriteBits::of(&self.plan.workspace);
        }
    }

    /// After a block, on the host: no entry it left in the workspace keeps a setuid or
    /// setgid bit, or group or other write it did not have before (the container has no
    /// process of the block left by now). A mirrored workspace never receives either: the
    /// supervisor does not copy them.
    fn clear_special_bits(&self) {
        if self.plan.mirrored.is_some() || self.config.workspace_read_only {
            return;
        }
        let swept = crate::sandbox::workspace::sweep(&self.plan.workspace, &self.write_bits);
        if swept.special > 0 {
            (self.notices)(format!(
                "cleared the setuid/setgid bit of {} files the block left in /workspace",
                swept.special
            ));
        }
        if swept.opened > 0 {
            (self.notices)(format!(
                "took back group/other write from {} entries the block opened to others in \
                 /workspace",
                swept.opened
            ));
        }
    }

    fn run_request(&self, block: &BlockSpec<'_>) -> RunRequest {
        let env = self
            .container
            .as_ref()
            .map(|container| container.env.clone())
            .unwrap_or_default();
        RunRequest {
            argv: block.language.command.clone(),
            extension: block.language.extension.clone(),
            env,
            timeout_ms: block.timeout.as_millis().max(1) as u64,
            grace_ms: self.config.kill_grace_secs * 1000,
            start_ahead: block.language.starts_ahead(),
        }
    }

    /// Sends the run request to a supervisor that is there and idle; when it is not, the
    /// block has not started, and it goes to a new container instead.
    async fn hand_over(&mut self, run: &Frame) -> Result<(), SandboxError> {
        let (link, _) = self.live_link()?;
        let why = if link.is_idle() {
            match link.send(run).await {
                Ok(()) => return Ok(()),
                Err(why) => why,
            }
        } else {
            link.why_gone()
        };
        self.restart(&format!("its supervisor is gone ({why})"))
            .await?;
        let (link, _) = self.live_link()?;
        link.send(run).await.map_err(|why| {
            SandboxError::Failed(format!(
                "cannot hand the block to the new container's supervisor: {why}"
            ))
        })
    }

    fn live_link(&mut self) -> Result<(&mut Link, &str), SandboxError> {
        let gone = || {
            SandboxError::Failed("the sandbox container is gone and could not be replaced".into())
        };
        let container = self.container.as_mut().ok_or_else(gone)?;
        let link = container.link.get_mut().map_err(|_| gone())?;
        Ok((link, container.id.as_str()))
    }
}
