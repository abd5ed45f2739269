//! The session state machine. It owns the conversation and the turn's blocks, takes `Op`s
//! from a frontend and reports everything as `Event`s. The model, the sandbox and the
//! approver are adapters behind traits.
//!
//! A turn: one model call; its runnable blocks are proposed at once; each gets a decision
//! (a rule, the approver, or the operator); approved blocks run one at a time, in order;
//! then one message takes every outcome back to the model, which starts the next turn.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;

use super::LanguageTable;
use super::approver::Approver;
use super::budget::{Budgeter, ContextBudget};
use super::events::Events;
use super::feedback::FeedbackLimits;
use super::inbox::{Inbox, Input};
use super::policy::Policy;
use super::sandbox::{Sandbox, SandboxError};
use super::serving::{Moment, Served, Wanted, serve};
use super::turn::Turn;
use crate::model::{ChatMessage, Model, ModelError, ModelEvent, Role, ToolCall};
use crate::protocol::{
    DoneReason, Event, IdleReason, Phase, ReplyEnd, Submission, Usage, reply_for_model,
};

// The turn's blocks, from proposal to settlement, and running one of them: `impl Session`
// blocks of their own, beside this file.
#[path = "session_running.rs"]
mod running;
#[path = "session_settle.rs"]
mod settle;

/// How a session behaves; everything the engine needs from the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub(crate) session: String,
    /// The session is a recorded one, continued.
    pub(crate) resumed: bool,
    pub(crate) system_prompt: String,
    /// Model replies per operator message.
    pub(crate) max_turns: u32,
    pub(crate) stop_on_failure: bool,
    pub(crate) block_timeout: Duration,
    pub(crate) feedback: FeedbackLimits,
    pub(crate) languages: LanguageTable,
    /// Headless: the session ends when a turn leaves nothing to do. Otherwise the engine
    /// waits for the operator's next message.
    pub(crate) end_when_idle: bool,
    /// The model's context window, when it is known: requests are kept inside it.
    pub(crate) context: Option<ContextBudget>,
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
    pub(crate) sandbox_failed: bool,
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

pub struct Session<M, S, A> {
    settings: Settings,
    model: M,
    sandbox: SandboxSlot<S>,
    approver: Option<A>,
    policy: Policy,
    events: Events,
    inbox: Inbox<S>,
    conversation: Vec<ChatMessage>,
    /// Which messages of the conversation hold only block results (those may be shortened
    /// to fit the context window).
    results: Vec<bool>,
    /// Keeps requests inside the context window, when it is known; and what it last said
    /// it left out (shortened, left out), so it says so only when that grows.
    budgeter: Option<Budgeter>,
    told: (usize, usize),
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
        ops: mpsc::UnboundedReceiver<Submission>,
    ) -> Self {
        Self {
            model,
            sandbox: SandboxSlot {
                ready: None,
                failed: false,
            },
            approver,
            policy,
            events,
            inbox: Inbox::new(ops),
            budgeter: settings.context.map(Budgeter::new),
            settings,
            conversation: Vec::new(),
            results: Vec::new(),
            told: (0, 0),
            unsent: Vec::new(),
            supervised: true,
        }
    }

    /// Starts from an earlier session's conversation (`airlock resume`).
    pub(crate) fn with_conversation(mut self, conversation: Vec<ChatMessage>) -> Self {
        self.results = vec![false; conversation.len()];
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
            resumed: self.settings.resumed,
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
            match next {
                Next::Message(text) => self.push_operator_message(text),
                Next::Retry => self.push_unsent(),
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

    /// On a retry, results the model has not seen yet go to it first (those of a stopped
    /// reply's blocks).
    fn push_unsent(&mut self) {
        let parts = std::mem::take(&mut self.unsent);
        if parts.is_empty() {
            // A retry after a reply the operator stopped: the request must not end with the
            // model's own message (servers would continue it, or refuse two in a row).
            if self
                .conversation
                .last()
                .is_some_and(|m| m.role == Role::Assistant)
            {
                let go_on = "[airlock: the operator asks you to go on]";
                self.say(ChatMessage::new(Role::User, go_on), false);
            }
            return;
        }
        let text = parts.join("\n\n");
        self.events.send(Event::Reflection { text: text.clone() });
        self.say(ChatMessage::new(Role::User, text), true);
    }

    /// A message joins the conversation; `results`: it holds only block results.
    fn say(&mut self, message: ChatMessage, results: bool) {
        self.conversation.push(message);
        self.results.push(results);
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
        self.say(ChatMessage::new(Role::User, parts.join("\n\n")), false);
    }

    /// Model turns until one leaves nothing to run or the session has to pause.
    async fn converse(&mut self) -> Pause {
        for turn in 1..=self.settings.max_turns {
            let answer = match self.ask_model().await {
                Ok(answer) => answer,
                Err(pause) => return pause,
            };
            let (reply, mut calls) = (answer.text.clone(), answer.tool_calls.clone());
            let stopped = answer.end == Some(ReplyEnd::Stopped);
            let cut = answer.end == Some(ReplyEnd::TokenLimit);
            self.take_reply(answer);
            if cut && let Some(last) = calls.pop() {
                // Like an unclosed fence: the token limit may have ended its arguments early.
                let why = "This call was cut off at the token limit before it was complete; \
                           nothing ran. Call run_code again, with shorter code or in parts.";
                self.say(ChatMessage::tool(&last.id, why), true);
            }
            // A cut reply's unfinished last line may look like a closing fence: it closes nothing.
            let whole_lines = if stopped || cut {
                finished_lines(&reply)
            } else {
                &reply
            };
            let mut blocks = self.propose(whole_lines, &calls);
            if blocks.blocks.is_empty() {
                if !calls.is_empty() && !stopped && turn < self.settings.max_turns {
                    // Every call was answered with what was wrong: the model can fix it.
                    continue;
                }
                return Pause::Idle(if stopped {
                    IdleReason::Cancelled
                } else {
                    IdleReason::NoCode
                });
            }
            let report = match self.settle(&mut blocks, &reply).await {
                TurnEnd::Finished(report) if stopped => {
                    // The operator stopped the model: it does not go on by itself.
                    self.events
                        .notice("the results go to the model with your next message (or a retry)");
                    self.hold_results(report, &blocks);
                    return Pause::Idle(IdleReason::Cancelled);
                }
                TurnEnd::Finished(report) => report,
                TurnEnd::Aborted(report) => {
                    self.hold_results(report, &blocks);
                    return Pause::Idle(IdleReason::Aborted);
                }
                TurnEnd::NoSupervisor(report) => {
                    self.hold_results(report, &blocks);
                    return Pause::Done(DoneReason::NoSupervisor);
                }
                TurnEnd::Shutdown => return Pause::Done(DoneReason::Aborted),
                TurnEnd::SandboxGone => return Pause::Done(DoneReason::Error),
            };
            if turn == self.settings.max_turns {
                self.hold_results(report, &blocks);
                break;
            }
            self.send_results(report, &blocks);
        }
        self.events.notice(format!(
            "stopped after {} model replies (model.max_turns / --max-turns)",
            self.settings.max_turns
        ));
        Pause::Idle(IdleReason::MaxTurns)
    }

    /// The turn's results for the model, now: as one message, or as the answers to the
    /// reply's tool calls.
    fn send_results(&mut self, report: String, turn: &Turn) {
        self.events.send(Event::Reflection {
            text: report.clone(),
        });
        let answers = turn.answers(&self.settings.feedback);
        if answers.is_empty() {
            self.say(ChatMessage::new(Role::User, report), true);
        }
        for (call, answer) in answers {
            self.say(ChatMessage::tool(&call, answer), true);
        }
    }

    /// The turn's results when the model is not asked again now. Fenced blocks' results
    /// wait and go with the operator's next message; tool calls are answered at once, as
    /// the next message must follow their answers.
    fn hold_results(&mut self, report: String, turn: &Turn) {
        if turn.blocks.iter().any(|block| block.call.is_some()) {
            self.send_results(report, turn);
        } else {
            self.unsent.push(report);
        }
    }

    /// A reply joins the conversation (with a note for the model when it did not end as
    /// the model meant) and is reported.
    fn take_reply(&mut self, answer: Answer) {
        let for_model = reply_for_model(&answer.text, answer.end);
        let message = ChatMessage {
            tool_calls: answer.tool_calls.into_iter().map(well_formed).collect(),
            ..ChatMessage::new(Role::Assistant, for_model)
        };
        self.say(message, false);
        if let (Some(budgeter), Some(usage)) = (self.budgeter.as_mut(), answer.usage) {
            budgeter.learn(usage);
        }
        if let Some(bytes) = answer.cut_at_bytes {
            self.events.notice(format!(
                "the model's reply reached model.max_reply_bytes ({}) and was cut off there: \
                 airlock closed the connection, and only what came before is kept",
                crate::config::ByteSize(bytes as u64)
            ));
        } else if let Some(end) = answer.end {
            self.events
                .notice(format!("the model's reply was {}", end.phrase()));
        }
        self.events.send(Event::AssistantMessage {
            text: answer.text,
            usage: answer.usage,
            end: answer.end,
        });
    }

    /// What the model is sent: the system prompt and the conversation, kept inside the
    /// context window when it is known (saying what was left out, when that grew).
    fn request(&mut self) -> Vec<ChatMessage> {
        let system = ChatMessage::new(Role::System, self.settings.system_prompt.clone());
        let Some(budgeter) = self.budgeter.as_mut() else {
            let mut messages = vec![system];
            messages.extend(self.conversation.iter().cloned());
            return messages;
        };
        let fitted = budgeter.fit(&system, &self.conversation, &self.results);
        let window = self.settings.context.map_or(0, |context| context.window);
        if fitted.over {
            self.events.notice(format!(
                "the newest messages alone are about {} tokens, more than model.context_window \
                 ({window}) leaves for them; they are sent whole",
                fitted.tokens
            ));
        } else if fitted.shortened > self.told.0 || fitted.left_out > self.told.1 {
            self.events.notice(format!(
                "to fit model.context_window ({window} tokens), the model is sent {} older \
                 results shortened and the {} earliest messages left out (about {} tokens now)",
                fitted.shortened, fitted.left_out, fitted.tokens
            ));
        }
        self.told = (fitted.shortened, fitted.left_out);
        fitted.messages
    }

    /// One model call, its reply streamed out as deltas. Ops are served while it streams;
    /// a cancel keeps what had arrived, as a stopped reply.
    async fn ask_model(&mut self) -> Result<Answer, Pause> {
        self.events.phase(Phase::Replying);
        let messages = self.request();
        let events = self.events.clone();
        let arrived = Arc::new(Mutex::new(String::new()));
        let so_far = Arc::clone(&arrived);
        let mut sink = move |event: ModelEvent| match event {
            ModelEvent::Delta(text) => {
                if let Ok(mut so_far) = so_far.lock() {
                    so_far.push_str(&text);
                }
                events.send(Event::AssistantDelta { text })
            }
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
                    match serve(op, Moment::Replying, &mut self.supervised, &mut self.policy, &self.events) {
                        Served::Shutdown => return Err(Pause::Done(DoneReason::Aborted)),
                        Served::Take(Wanted::Cancel { .. }) => {
                            let text = arrived.lock().map(|text| text.clone()).unwrap_or_default();
                            return stopped_reply(text, &self.events);
                        }
                        // A reply takes nothing else.
                        Served::Handled | Served::Take(_) => {}
                    }
                }
            }
        };
        match outcome {
            Ok(reply) => Ok(Answer {
                end: reply.cut.then_some(ReplyEnd::TokenLimit),
                cut_at_bytes: reply.cut_at_bytes,
                text: reply.text,
                tool_calls: reply.tool_calls,
                usage: reply.usage,
            }),
            Err(ModelError::Exhausted) => Err(Pause::Done(DoneReason::ScriptExhausted)),
            Err(ModelError::Failed(message)) => {
                self.events.error(format!(
                    "the model's reply failed: {message}. The conversation is kept"
                ));
                Err(Pause::Idle(IdleReason::Error))
            }
        }
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
            let moment = Moment::Waiting { can_retry };
            match serve(
                op,
                moment,
                &mut self.supervised,
                &mut self.policy,
                &self.events,
            ) {
                Served::Shutdown => return Err(DoneReason::Aborted),
                Served::Take(Wanted::Message(text)) => return Ok(Next::Message(text)),
                Served::Take(Wanted::Retry) => return Ok(Next::Retry),
                // Nothing runs, so a cancel has nothing to stop.
                Served::Handled | Served::Take(_) => {}
            }
        }
    }
}

/// A reply as the engine takes it: its text, what it cost, and how it ended when that was
/// not as the model meant.
struct Answer {
    text: String,
    tool_calls: Vec<ToolCall>,
    usage: Option<Usage>,
    end: Option<ReplyEnd>,
    /// Cut at `model.max_reply_bytes`, this many bytes.
    cut_at_bytes: Option<usize>,
}

/// `text` up to its last line break: the lines a cut reply finished.
fn finished_lines(text: &str) -> &str {
    text.rfind(['\n', '\r']).map_or("", |at| &text[..=at])
}

/// A call as the conversation keeps it: arguments that are not JSON become `{}` (servers
/// parse them in every later request; the call's answer says what was wrong).
fn well_formed(mut call: ToolCall) -> ToolCall {
    if serde_json::from_str::<serde_json::Value>(&call.function.arguments).is_err() {
        call.function.arguments = "{}".into();
    }
    call
}

/// The operator stopped the reply: what had arrived is kept, unless nothing had.
fn stopped_reply(text: String, events: &Events) -> Result<Answer, Pause> {
    if text.trim().is_empty() {
        events.notice("the model's reply was cancelled before any of it arrived");
        return Err(Pause::Idle(IdleReason::Cancelled));
    }
    Ok(Answer {
        text,
        tool_calls: Vec::new(),
        usage: None,
        end: Some(ReplyEnd::Stopped),
        cut_at_bytes: None,
    })
}

enum Next {
    Message(String),
    Retry,
}

enum Step {
    Shutdown,
    SandboxGone,
}

#[cfg(test)]
#[path = "session_tests/mod.rs"]
mod tests;
