//! The session state machine. It owns the conversation and the turn's blocks, takes `Op`s
//! from a frontend and reports everything as `Event`s. The model, the sandbox and the
//! approver are adapters behind traits.
//!
//! A turn: one model call; its runnable blocks are proposed at once; each gets a decision
//! (a rule, the approver, or the operator); approved blocks run one at a time, in order;
//! then one message takes every outcome back to the model, which starts the next turn.

use std::future::Future;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::approver::{ApprovalRequest, Approver};
use super::decisions::{
    NOBODY_THERE, Served, abort_rest, apply_decision, decide, op_name, reject_undecided,
    ruling_decision, serve_anytime, skip_after_failure,
};
use super::events::Events;
use super::feedback::FeedbackLimits;
use super::inbox::{Inbox, Input, ShutdownRequested};
use super::policy::{Policy, Ruling};
use super::sandbox::{BlockSpec, Sandbox, SandboxError};
use super::turn::{Fate, Turn, TurnBlock};
use super::unoffered::unoffered_notice;
use super::{LanguageTable, extract_blocks};
use crate::ids::new_id;
use crate::model::{ChatMessage, Model, ModelError, ModelEvent, Role};
use crate::protocol::{
    DecisionKind, DecisionSource, DoneReason, Event, IdleReason, Op, Phase, Stream,
};

/// How a session behaves; everything the engine needs from the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub session: String,
    pub system_prompt: String,
    /// Model replies per operator message.
    pub max_turns: u32,
    pub stop_on_failure: bool,
    pub block_timeout: Duration,
    pub feedback: FeedbackLimits,
    pub languages: LanguageTable,
    /// Headless: the session ends when a turn leaves nothing to do. Otherwise the engine
    /// waits for the operator's next message.
    pub end_when_idle: bool,
}

/// Why the model conversation paused or stopped.
enum Pause {
    Idle(IdleReason),
    Done(DoneReason),
}

/// How a turn's blocks ended.
enum TurnEnd {
    /// Every block settled; the report goes to the model.
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
    pub sandbox_failed: bool,
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

pub struct Session<M, S, A> {
    settings: Settings,
    model: M,
    sandbox: SandboxSlot<S>,
    approver: Option<A>,
    policy: Policy,
    events: Events,
    inbox: Inbox<S>,
    conversation: Vec<ChatMessage>,
    /// Results the model has not been sent yet (after an abort); they go with the next message.
    unsent: Vec<String>,
    /// Someone can still decide blocks.
    supervised: bool,
}

impl<M: Model, S: Sandbox + 'static, A: Approver> Session<M, S, A> {
    pub fn new(
        settings: Settings,
        model: M,
        approver: Option<A>,
        policy: Policy,
        events: Events,
        ops: mpsc::UnboundedReceiver<Op>,
    ) -> Self {
        Self {
            settings,
            model,
            sandbox: SandboxSlot {
                ready: None,
                failed: false,
            },
            approver,
            policy,
            events,
            inbox: Inbox::new(ops),
            conversation: Vec::new(),
            unsent: Vec::new(),
            supervised: true,
        }
    }

    /// Starts from an earlier session's conversation (`airlock resume`).
    pub fn with_conversation(mut self, conversation: Vec<ChatMessage>) -> Self {
        self.conversation = conversation;
        self
    }

    /// Runs the session to its end: the sandbox starts in the background while the model
    /// is asked (blocks wait for it); `prompt` is the operator's first message (or the
    /// session waits for one). The sandbox is shut down before the final `done` event.
    pub async fn run(
        mut self,
        prompt: Option<String>,
        start_sandbox: impl Future<Output = Result<S, SandboxError>> + Send + 'static,
    ) -> Ended {
        self.events.send(Event::SessionStarted {
            session: self.settings.session.clone(),
        });
        self.events.send(Event::Rules {
            rules: self.policy.rules(),
        });
        self.inbox.start_sandbox(start_sandbox);
        let reason = self.drive(prompt).await;
        if let Some(started) = self.inbox.abandon_start().await {
            // A failure nobody waited for is still airlock not working: it is said.
            let _ = self.sandbox.arrive(&self.events, started);
        }
        let Self {
            sandbox, events, ..
        } = self;
        if let Some(ready) = sandbox.ready {
            ready.shutdown().await;
        }
        events.send(Event::Done { reason });
        Ended {
            reason,
            sandbox_failed: sandbox.failed,
        }
    }

    async fn drive(&mut self, prompt: Option<String>) -> DoneReason {
        let mut next = match prompt {
            Some(text) => Next::Message(text),
            None => match self.wait_for_operator(false).await {
                Ok(next) => next,
                Err(reason) => return reason,
            },
        };
        loop {
            if let Next::Message(text) = next {
                self.push_operator_message(text);
            }
            let reason = match self.converse().await {
                Pause::Done(reason) => return reason,
                Pause::Idle(reason) => reason,
            };
            if self.settings.end_when_idle {
                return match reason {
                    IdleReason::NoCode => DoneReason::NoCode,
                    IdleReason::MaxTurns => DoneReason::MaxTurns,
                    IdleReason::Aborted | IdleReason::Cancelled => DoneReason::Aborted,
                    IdleReason::Error => DoneReason::Error,
                };
            }
            self.events.forget_phase();
            self.events.send(Event::Idle { reason });
            let can_retry = matches!(reason, IdleReason::Error | IdleReason::Cancelled);
            next = match self.wait_for_operator(can_retry).await {
                Ok(next) => next,
                Err(reason) => return reason,
            };
        }
    }

    /// The operator's message, with any results the model has not seen yet in front of it.
    fn push_operator_message(&mut self, text: String) {
        let mut parts = std::mem::take(&mut self.unsent);
        if !parts.is_empty() {
            self.events.send(Event::Reflection {
                text: parts.join("\n\n"),
            });
        }
        self.events.send(Event::UserMessage { text: text.clone() });
        parts.push(text);
        self.conversation
            .push(ChatMessage::new(Role::User, parts.join("\n\n")));
    }

    /// Model turns until one leaves nothing to run or the session has to pause.
    async fn converse(&mut self) -> Pause {
        for turn in 1..=self.settings.max_turns {
            let reply = match self.ask_model().await {
                Ok(reply) => reply,
                Err(pause) => return pause,
            };
            self.conversation
                .push(ChatMessage::new(Role::Assistant, reply.clone()));
            self.events.send(Event::AssistantMessage {
                text: reply.clone(),
            });
            let mut blocks = self.propose(&reply);
            if blocks.blocks.is_empty() {
                return Pause::Idle(IdleReason::NoCode);
            }
            let report = match self.settle(&mut blocks, &reply).await {
                TurnEnd::Finished(report) => report,
                TurnEnd::Aborted(report) => {
                    self.unsent.push(report);
                    return Pause::Idle(IdleReason::Aborted);
                }
                TurnEnd::NoSupervisor(report) => {
                    self.unsent.push(report);
                    return Pause::Done(DoneReason::NoSupervisor);
                }
                TurnEnd::Shutdown => return Pause::Done(DoneReason::Aborted),
                TurnEnd::SandboxGone => return Pause::Done(DoneReason::Error),
            };
            if turn == self.settings.max_turns {
                self.unsent.push(report);
                break;
            }
            self.events.send(Event::Reflection {
                text: report.clone(),
            });
            self.conversation.push(ChatMessage::new(Role::User, report));
        }
        self.events.notice(format!(
            "stopped after {} model replies (model.max_turns / --max-turns)",
            self.settings.max_turns
        ));
        Pause::Idle(IdleReason::MaxTurns)
    }

    /// One model call, its reply streamed out as deltas. Ops are served while it streams.
    async fn ask_model(&mut self) -> Result<String, Pause> {
        self.events.phase(Phase::Replying);
        let mut messages = Vec::with_capacity(self.conversation.len() + 1);
        messages.push(ChatMessage::new(
            Role::System,
            self.settings.system_prompt.clone(),
        ));
        messages.extend(self.conversation.iter().cloned());
        let events = self.events.clone();
        let mut sink = move |event: ModelEvent| match event {
            ModelEvent::Delta(text) => events.send(Event::AssistantDelta { text }),
            ModelEvent::Retry {
                attempt,
                max_attempts,
                delay_ms,
                reason,
            } => events.send(Event::ModelRetry {
                attempt,
                max_attempts,
                delay_ms,
                reason,
            }),
        };
        let call = self.model.complete(&messages, &mut sink);
        tokio::pin!(call);
        let outcome = loop {
            tokio::select! {
                outcome = &mut call => break outcome,
                input = self.inbox.next() => {
                    let op = match input {
                        Input::Op(op) => op,
                        Input::Sandbox(started) => {
                            self.sandbox.arrive(&self.events, started).map_err(Pause::Done)?;
                            continue;
                        }
                    };
                    let op = match serve_anytime(op, &mut self.supervised, &mut self.policy, &self.events) {
                        Served::Handled => continue,
                        Served::Pass(op) => op,
                    };
                    match op {
                        None | Some(Op::Shutdown) => return Err(Pause::Done(DoneReason::Aborted)),
                        Some(Op::Cancel) => {
                            self.events.notice("the model's reply was cancelled; nothing of it is kept");
                            return Err(Pause::Idle(IdleReason::Cancelled));
                        }
                        Some(op) => self.events.error(format!(
                            "{} is not possible while the model is replying",
                            op_name(&op)
                        )),
                    }
                }
            }
        };
        match outcome {
            Ok(reply) => Ok(reply),
            Err(ModelError::Exhausted) => Err(Pause::Done(DoneReason::ScriptExhausted)),
            Err(ModelError::Failed(message)) => {
                self.events.error(format!(
                    "the model's reply failed: {message}. The conversation is kept"
                ));
                Err(Pause::Idle(IdleReason::Error))
            }
        }
    }

    /// The reply's runnable blocks, each proposed; the others are mentioned.
    fn propose(&mut self, reply: &str) -> Turn {
        let mut turn = Turn::default();
        let mut unoffered = Vec::new();
        for block in extract_blocks(reply, &self.settings.languages) {
            let language = block
                .language
                .as_deref()
                .and_then(|name| self.settings.languages.resolve(name))
                .filter(|_| block.runnable);
            let Some(language) = language else {
                let why = block.reason.unwrap_or_else(|| "it is not runnable".into());
                unoffered.push((block.index + 1, why));
                continue;
            };
            turn.blocks.push(TurnBlock {
                id: new_id("b"),
                index: block.index,
                language: language.clone(),
                code: block.code,
                decision: None,
                fate: None,
            });
        }
        let unoffered: Vec<(usize, &str)> = unoffered
            .iter()
            .map(|(number, why)| (*number, why.as_str()))
            .collect();
        if let Some(notice) = unoffered_notice(&unoffered) {
            self.events.notice(notice);
        }
        for block in &turn.blocks {
            self.events.send(Event::BlockProposed {
                block: block.id.clone(),
                index: block.index,
                language: block.language.name.clone(),
                code: block.code.clone(),
            });
        }
        turn
    }

    /// Decides and runs the turn's blocks, serving ops, until every block is settled.
    async fn settle(&mut self, turn: &mut Turn, reply: &str) -> TurnEnd {
        for position in 0..turn.blocks.len() {
            if let Err(ShutdownRequested) =
                self.decide_without_operator(turn, position, reply).await
            {
                return shut_down(turn, &self.events);
            }
        }
        let mut unsupervised = false;
        while turn.next_open().is_some() {
            if !self.supervised {
                unsupervised |= reject_undecided(turn, NOBODY_THERE, &self.events);
            }
            let Some(position) = turn.next_open() else {
                break;
            };
            let approved = turn.blocks[position].decision.is_some();
            let step = if approved {
                self.run_block(turn, position).await
            } else {
                self.wait_for_decision(turn).await
            };
            match step {
                Ok(()) => {}
                Err(Step::Shutdown) => return shut_down(turn, &self.events),
                Err(Step::SandboxGone) => return TurnEnd::SandboxGone,
            }
        }
        let report = turn.report(&self.settings.feedback);
        if unsupervised {
            TurnEnd::NoSupervisor(report)
        } else if turn.aborted() {
            TurnEnd::Aborted(report)
        } else {
            TurnEnd::Finished(report)
        }
    }

    /// Rules first, then the approver; leaves the block undecided when the operator must
    /// decide.
    async fn decide_without_operator(
        &mut self,
        turn: &mut Turn,
        position: usize,
        reply: &str,
    ) -> Result<(), ShutdownRequested> {
        let block = &turn.blocks[position];
        if block.decision.is_some() {
            return Ok(());
        }
        let ruling = match self.policy.rule(&block.language.name, &block.code) {
            Some(ruling) => Some(ruling),
            None => self.ask_approver(block, reply).await?,
        };
        if let Some(ruling) = ruling {
            decide(turn, position, ruling_decision(ruling), None, &self.events);
        }
        Ok(())
    }

    async fn ask_approver(
        &mut self,
        block: &TurnBlock,
        reply: &str,
    ) -> Result<Option<Ruling>, ShutdownRequested> {
        let Some(approver) = &self.approver else {
            return Ok(None);
        };
        let request = ApprovalRequest {
            session: self.settings.session.clone(),
            block: block.id.clone(),
            index: block.index,
            language: block.language.name.clone(),
            code: block.code.clone(),
            context: reply.to_string(),
        };
        let review = approver.review(&request);
        let verdict = self.inbox.hold_until(review).await?;
        match verdict {
            Ok(verdict) => {
                let kind = if verdict.approved {
                    DecisionKind::Approve
                } else {
                    DecisionKind::Reject
                };
                let reason = verdict.reason.filter(|reason| !reason.trim().is_empty());
                Ok(Some(Ruling {
                    kind,
                    source: DecisionSource::Approver,
                    reason: reason.unwrap_or_else(|| "the approver command gave no reason".into()),
                }))
            }
            Err(why) => {
                let next = if self.supervised {
                    "the block goes to the operator"
                } else {
                    "there is no operator, so the block is rejected"
                };
                self.events.error(format!(
                    "the approver command decided nothing: {why}; {next}"
                ));
                Ok(None)
            }
        }
    }

    /// Waits for the next op while the first open block has no decision.
    async fn wait_for_decision(&mut self, turn: &mut Turn) -> Result<(), Step> {
        self.events.phase(Phase::Deciding);
        self.serve_turn(
            turn,
            "while blocks wait for decisions; decide them (or abort the turn) first",
        )
        .await
    }

    /// Takes the next input while the turn's blocks wait (for decisions or for the
    /// sandbox): decisions, cancel and the sandbox's arrival are served; anything else is
    /// "not possible `now`".
    async fn serve_turn(&mut self, turn: &mut Turn, now: &str) -> Result<(), Step> {
        let op = match self.inbox.next().await {
            Input::Op(op) => op,
            Input::Sandbox(started) => return self.take_sandbox(started),
        };
        let op = match serve_anytime(op, &mut self.supervised, &mut self.policy, &self.events) {
            Served::Handled => return Ok(()),
            Served::Pass(op) => op,
        };
        match op {
            None | Some(Op::Shutdown) => return Err(Step::Shutdown),
            Some(Op::Decide(request)) => {
                apply_decision(turn, request, &mut self.policy, &self.events);
            }
            Some(Op::Cancel) => abort_rest(turn, "cancelled by the operator", &self.events),
            Some(op) => self
                .events
                .error(format!("{} is not possible {now}", op_name(&op))),
        }
        Ok(())
    }

    /// The sandbox arrived at a wait point of the turn.
    fn take_sandbox(&mut self, started: Result<S, SandboxError>) -> Result<(), Step> {
        self.sandbox
            .arrive(&self.events, started)
            .map_err(|_| Step::SandboxGone)
    }

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
    async fn run_block(&mut self, turn: &mut Turn, position: usize) -> Result<(), Step> {
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
        let cancel = CancellationToken::new();
        let events = self.events.clone();
        let (block_id, run_id) = (block.id.clone(), run.clone());
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
                    let op = match serve_anytime(op, &mut self.supervised, &mut self.policy, &self.events) {
                        Served::Handled => continue,
                        Served::Pass(op) => op,
                    };
                    match op {
                        None | Some(Op::Shutdown) => {
                            shutdown = true;
                            cancel.cancel();
                        }
                        Some(Op::Cancel) => cancel.cancel(),
                        Some(Op::Decide(request)) => {
                            apply_decision(turn, request, &mut self.policy, &self.events);
                        }
                        Some(op) => self.events.error(format!(
                            "{} is not possible while a block runs",
                            op_name(&op)
                        )),
                    }
                }
            }
        };
        let fate = match outcome {
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
                Fate::Ran(result)
            }
            Err(SandboxError::Failed(why)) => {
                self.events
                    .error(format!("block {} could not run: {why}", position + 1));
                Fate::Broken(why)
            }
            Err(SandboxError::Unavailable(why)) => {
                self.sandbox.failed = true;
                self.events
                    .error(format!("the sandbox stopped working: {why}"));
                return Err(Step::SandboxGone);
            }
        };
        let failed = fate.failed();
        turn.blocks[position].fate = Some(fate);
        if shutdown {
            return Err(Step::Shutdown);
        }
        if failed && self.settings.stop_on_failure {
            skip_after_failure(turn, position, &self.events);
        }
        Ok(())
    }

    /// After a pause: the operator's next message, or a retry.
    async fn wait_for_operator(&mut self, can_retry: bool) -> Result<Next, DoneReason> {
        loop {
            let op = match self.inbox.next().await {
                Input::Op(op) => op,
                Input::Sandbox(started) => {
                    self.sandbox.arrive(&self.events, started)?;
                    continue;
                }
            };
            let op = match serve_anytime(op, &mut self.supervised, &mut self.policy, &self.events) {
                Served::Handled => continue,
                Served::Pass(op) => op,
            };
            match op {
                None | Some(Op::Shutdown) => return Err(DoneReason::Aborted),
                Some(Op::UserMessage { text }) => return Ok(Next::Message(text)),
                Some(Op::Retry) if can_retry => return Ok(Next::Retry),
                Some(Op::Cancel) => {}
                Some(op) => self.events.error(format!(
                    "{} is not possible now: nothing is pending",
                    op_name(&op)
                )),
            }
        }
    }
}

enum Next {
    Message(String),
    Retry,
}

enum Step {
    Shutdown,
    SandboxGone,
}

/// The session ends mid-turn (the operator quit, or the frontend went away): blocks still
/// waiting are recorded as rejected for want of a supervisor, so none is left undecided.
fn shut_down(turn: &mut Turn, events: &Events) -> TurnEnd {
    let reason = "no supervisor: the session ended while the block waited for a decision";
    reject_undecided(turn, reason, events);
    TurnEnd::Shutdown
}

#[cfg(test)]
#[path = "session_tests/mod.rs"]
mod tests;
