//! One approved block through the sandbox: it waits for a sandbox still being prepared,
//! runs with its output streamed out as events, and ops (a cancel, later decisions) are
//! served while it runs.

use tokio_util::sync::CancellationToken;

use super::{Gate, Step};
use crate::engine::approver::Approver;
use crate::engine::decisions::{apply_decision, skip_after_failure};
use crate::engine::inbox::Input;
use crate::engine::sandbox::{BlockSpec, Sandbox, SandboxError};
use crate::engine::serving::{Moment, Served, Wanted, serve};
use crate::engine::turn::{Fate, Turn, TurnBlock};
use crate::ids::new_id;
use crate::protocol::{Event, ExecResult, Phase, Stream};

impl<S: Sandbox + 'static, A: Approver> Gate<S, A> {
    /// An approved block whose sandbox is still being prepared waits for it, serving ops
    /// (a cancel or an abort also ends the wait). Says so once.
    async fn wait_for_sandbox(&mut self, turn: &mut Turn, position: usize) -> Result<(), Step> {
        self.events.notice(format!(
            "block {} waits for the sandbox, which is still being prepared",
            position + 1
        ));
        while self.sandbox.ready.is_none() && !turn.blocks[position].settled() {
            self.serve_turn(turn, "while blocks wait for the sandbox")
                .await?;
        }
        Ok(())
    }

    /// Runs one approved block, serving ops (cancel, later decisions) while it runs.
    pub(super) async fn run_block(&mut self, turn: &mut Turn, position: usize) -> Result<(), Step> {
        self.events.phase(Phase::Running);
        if self.sandbox.ready.is_none() && self.inbox.sandbox_starting() {
            self.wait_for_sandbox(turn, position).await?;
            if turn.blocks[position].settled() {
                return Ok(());
            }
        }
        if let Some(why) = self.events.unrecorded() {
            let reason = format!("not run: the history cannot record it ({why})");
            self.events
                .error(format!("block {} was {reason}", position + 1));
            turn.blocks[position].fate = Some(Fate::Broken(reason));
            return Ok(());
        }
        let block = turn.blocks[position].clone();
        let run = new_id("r");
        self.events.send(Event::ExecStarted {
            block: block.id.clone(),
            run: run.clone(),
        });
        let execution = self.execute(turn, &block, &run).await?;
        let fate = self.fate_of(execution.outcome, &block, run, position)?;
        let failed = fate.failed();
        turn.blocks[position].fate = Some(fate);
        if execution.shutdown {
            return Err(Step::Shutdown);
        }
        if failed && self.settings.stop_on_failure {
            skip_after_failure(turn, position, &self.events);
        }
        Ok(())
    }

    /// The block in the sandbox, its output sent out as it comes. Ops are served meanwhile:
    /// a cancel stops the block, and so does a shutdown, which the caller carries out once
    /// the run is recorded.
    async fn execute(
        &mut self,
        turn: &mut Turn,
        block: &TurnBlock,
        run: &str,
    ) -> Result<Execution, Step> {
        let cancel = CancellationToken::new();
        let events = self.events.clone();
        let (block_id, run_id) = (block.id.clone(), run.to_string());
        let mut live = move |stream: Stream, data: &str| {
            events.send(Event::ExecOutput {
                block: block_id.clone(),
                run: run_id.clone(),
                stream,
                data: data.to_string(),
            });
        };
        let spec = BlockSpec {
            language: &block.language,
            code: block.code_to_run(),
            timeout: self.settings.block_timeout,
            cancel: Some(&cancel),
        };
        let mut shutdown = false;
        let Some(sandbox) = self.sandbox.ready.as_mut() else {
            return Err(Step::SandboxGone);
        };
        let running = sandbox.run_block(spec, &mut live);
        tokio::pin!(running);
        let outcome = loop {
            tokio::select! {
                outcome = &mut running => break outcome,
                input = self.inbox.next(), if !cancel.is_cancelled() => {
                    // Only a sandbox that has started runs blocks: none is on its way.
                    let Input::Op(op) = input else { continue };
                    match serve(op, Moment::Running, &mut self.supervised, &mut self.policy, &self.events) {
                        Served::Shutdown => {
                            shutdown = true;
                            cancel.cancel();
                        }
                        Served::Take(Wanted::Cancel { .. }) => cancel.cancel(),
                        Served::Take(Wanted::Decide { request, id }) => {
                            let answering = id.as_deref();
                            apply_decision(turn, request, answering, &mut self.policy, &self.events);
                        }
                        // A run takes nothing else.
                        Served::Handled | Served::Take(_) => {}
                    }
                }
            }
        };
        Ok(Execution { outcome, shutdown })
    }

    /// What the run made of the block, reported. A sandbox that stopped working ends the
    /// turn instead: no block can run any more.
    fn fate_of(
        &mut self,
        outcome: Result<ExecResult, SandboxError>,
        block: &TurnBlock,
        run: String,
        position: usize,
    ) -> Result<Fate, Step> {
        match outcome {
            Ok(result) => {
                if result.container_restarted {
                    self.events.notice(
                        "the sandbox container was restarted to remove the block's processes; files in /workspace are kept",
                    );
                }
                self.events.send(Event::ExecFinished {
                    block: block.id.clone(),
                    run,
                    result: result.clone(),
                });
                Ok(Fate::Ran(result))
            }
            Err(SandboxError::Failed(why)) => {
                self.events
                    .error(format!("block {} could not run: {why}", position + 1));
                Ok(Fate::Broken(why))
            }
            Err(SandboxError::Unavailable(why)) => {
                self.sandbox.failed = true;
                self.events
                    .error(format!("the sandbox stopped working: {why}"));
                Err(Step::SandboxGone)
            }
        }
    }
}

/// How a block's run in the sandbox ended, and whether a shutdown came while it ran.
struct Execution {
    outcome: Result<ExecResult, SandboxError>,
    shutdown: bool,
}
