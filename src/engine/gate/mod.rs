//! The gate every block goes through, whoever proposed it: the rules, the approver, the
//! operator's decisions, the sandbox and the journal. A block source (the model
//! conversation today, an agent over MCP next) hands it a turn of blocks; the gate proposes
//! them, gets each a decision, runs the approved ones in order and reports every outcome,
//! with the same events, history and guarantees whatever the source.

use std::future::Future;
use std::time::Duration;

use tokio::sync::mpsc;

use super::approver::Approver;
use super::events::Events;
use super::feedback::FeedbackLimits;
use super::inbox::{Inbox, Input};
use super::policy::Policy;
use super::sandbox::{Sandbox, SandboxError};
use super::serving::{Moment, Served, serve};
use super::turn::Turn;
use crate::protocol::{DoneReason, Event, Submission};

// Deciding a turn's blocks, and running one of them.
mod running;
mod settle;

/// What the gate needs of the configuration.
#[derive(Debug, Clone)]
pub(super) struct GateSettings {
    pub(super) session: String,
    pub(super) stop_on_failure: bool,
    pub(super) block_timeout: Duration,
    pub(super) feedback: FeedbackLimits,
}

/// How a turn's blocks ended.
pub(super) enum TurnEnd {
    /// Every block settled; the report goes to the source.
    Finished(String),
    /// The operator aborted; the report waits for their next message.
    Aborted(String),
    /// A block needed a decision and nobody was there.
    NoSupervisor(String),
    Shutdown,
    /// The sandbox cannot run anything any more.
    SandboxGone,
}

/// How a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ended {
    pub reason: DoneReason,
    /// The sandbox could not start, or stopped working: airlock itself could not work.
    pub(crate) sandbox_failed: bool,
}

/// Why waiting on a block's turn stopped early.
enum Step {
    Shutdown,
    SandboxGone,
}

/// The session's sandbox: not started yet, ready, or failed.
struct SandboxSlot<S> {
    ready: Option<S>,
    /// It could not start, or stopped working: airlock itself cannot work.
    failed: bool,
}

impl<S: Sandbox> SandboxSlot<S> {
    /// Takes in the sandbox once it has started; a failure ends the session.
    fn arrive(
        &mut self,
        events: &Events,
        started: Result<S, SandboxError>,
    ) -> Result<(), DoneReason> {
        match started {
            Ok(sandbox) => {
                events.send(Event::SandboxReady {
                    description: sandbox.describe(),
                    workspace: sandbox
                        .workspace()
                        .map(|path| path.to_string_lossy().into_owned()),
                });
                self.ready = Some(sandbox);
                Ok(())
            }
            Err(err) => {
                self.failed = true;
                events.error(format!("the sandbox cannot start: {err}"));
                Err(DoneReason::Error)
            }
        }
    }
}

pub(super) struct Gate<S, A> {
    settings: GateSettings,
    sandbox: SandboxSlot<S>,
    approver: Option<A>,
    policy: Policy,
    events: Events,
    inbox: Inbox<S>,
    /// Someone can still decide blocks.
    supervised: bool,
}

impl<S: Sandbox + 'static, A: Approver> Gate<S, A> {
    pub(super) fn new(
        settings: GateSettings,
        approver: Option<A>,
        policy: Policy,
        events: Events,
        ops: mpsc::UnboundedReceiver<Submission>,
    ) -> Self {
        Self {
            settings,
            sandbox: SandboxSlot {
                ready: None,
                failed: false,
            },
            approver,
            policy,
            events,
            inbox: Inbox::new(ops),
            supervised: true,
        }
    }

    pub(super) fn events(&self) -> &Events {
        &self.events
    }

    /// Says which rules are in force and starts the sandbox in the background: blocks wait
    /// for it, everything else goes on meanwhile.
    pub(super) fn open(
        &mut self,
        start_sandbox: impl Future<Output = Result<S, SandboxError>> + Send + 'static,
    ) {
        self.events.send(Event::Rules {
            rules: self.policy.rules(),
        });
        self.inbox.start_sandbox(start_sandbox);
    }

    /// Ends the session: a start still under way is stopped, the sandbox shut down, and the
    /// final `done` event sent.
    pub(super) async fn close(mut self, reason: DoneReason) -> Ended {
        if let Some(started) = self.inbox.abandon_start().await {
            // A failure nobody waited for is still airlock not working: it is said.
            let _ = self.sandbox.arrive(&self.events, started);
        }
        if let Some(ready) = self.sandbox.ready {
            ready.shutdown().await;
        }
        self.events.send(Event::Done { reason });
        Ended {
            reason,
            sandbox_failed: self.sandbox.failed,
        }
    }

    /// The next op, served at `moment`, while no block is pending (the sandbox's arrival
    /// is taken in on the way). Cancel-safe: an op is taken only when it is returned.
    pub(super) async fn next_op(&mut self, moment: Moment<'_>) -> Result<Served, DoneReason> {
        loop {
            match self.inbox.next().await {
                Input::Op(op) => {
                    let (supervised, policy) = (&mut self.supervised, &mut self.policy);
                    return Ok(serve(op, moment, supervised, policy, &self.events));
                }
                Input::Sandbox(started) => self.sandbox.arrive(&self.events, started)?,
            }
        }
    }

    /// The turn's blocks, announced: each is shown to every frontend and recorded.
    pub(super) fn propose(&self, turn: &Turn) {
        for block in &turn.blocks {
            self.events.send(Event::BlockProposed {
                block: block.id.clone(),
                index: block.index,
                language: block.language.name.clone(),
                code: block.code.clone(),
                origin: block.origin.clone(),
            });
        }
    }
}
