//! A model session: the conversation (`conversation/`) as the block source of the gate
//! (`gate/`). It takes `Op`s from a frontend and reports everything as `Event`s; the model,
//! the sandbox and the approver are adapters behind traits.
//!
//! A turn: one model call; its runnable blocks go to the gate at once; each gets a decision
//! (a rule, the approver, or the operator); approved blocks run one at a time, in order;
//! then one message takes every outcome back to the model, which starts the next turn.

use std::future::Future;
use std::time::Duration;

use tokio::sync::mpsc;

use super::LanguageTable;
use super::approver::Approver;
use super::budget::ContextBudget;
use super::conversation::{Conversation, ConversationSettings, Pause};
use super::events::Events;
use super::feedback::FeedbackLimits;
use super::gate::{Ended, Gate, GateSettings, TurnEnd};
use super::policy::Policy;
use super::sandbox::{Sandbox, SandboxError};
use super::serving::{Moment, Served, Wanted};
use crate::model::{ChatMessage, Model};
use crate::protocol::{DoneReason, Event, IdleReason, ReplyEnd, Submission};

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

pub struct Session<M, S, A> {
    id: String,
    resumed: bool,
    /// Model replies per operator message.
    max_turns: u32,
    end_when_idle: bool,
    conversation: Conversation<M>,
    gate: Gate<S, A>,
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
        let gate_settings = GateSettings {
            session: settings.session.clone(),
            stop_on_failure: settings.stop_on_failure,
            block_timeout: settings.block_timeout,
            feedback: settings.feedback,
        };
        let conversation_settings = ConversationSettings {
            system_prompt: settings.system_prompt,
            languages: settings.languages,
            feedback: settings.feedback,
            context: settings.context,
        };
        Self {
            id: settings.session,
            resumed: settings.resumed,
            max_turns: settings.max_turns,
            end_when_idle: settings.end_when_idle,
            conversation: Conversation::new(conversation_settings, model, events.clone()),
            gate: Gate::new(gate_settings, approver, policy, events, ops),
        }
    }

    /// Starts from an earlier session's conversation (`airlock resume`).
    pub(crate) fn with_conversation(mut self, conversation: Vec<ChatMessage>) -> Self {
        self.conversation.continue_from(conversation);
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
        self.gate.events().send(Event::SessionStarted {
            session: self.id.clone(),
            resumed: self.resumed,
        });
        self.gate.open(start_sandbox);
        let reason = self.drive(prompt).await;
        self.gate.close(reason).await
    }

    async fn drive(&mut self, prompt: Option<String>) -> DoneReason {
        let mut next = match prompt {
            Some(text) => Next::Message { text, id: None },
            None => match self.wait_for_operator(false).await {
                Ok(next) => next,
                Err(reason) => return reason,
            },
        };
        loop {
            match next {
                Next::Message { text, id } => self.conversation.push_operator_message(text, id),
                Next::Retry => self.conversation.push_unsent(),
            }
            let reason = match self.converse().await {
                Pause::Done(reason) => return reason,
                Pause::Idle(reason) => reason,
            };
            if self.end_when_idle {
                return match reason {
                    IdleReason::NoCode => DoneReason::NoCode,
                    IdleReason::MaxTurns => DoneReason::MaxTurns,
                    IdleReason::Aborted | IdleReason::Cancelled => DoneReason::Aborted,
                    IdleReason::Error => DoneReason::Error,
                };
            }
            let events = self.gate.events();
            events.forget_phase();
            events.send(Event::Idle { reason });
            let can_retry = matches!(reason, IdleReason::Error | IdleReason::Cancelled);
            next = match self.wait_for_operator(can_retry).await {
                Ok(next) => next,
                Err(reason) => return reason,
            };
        }
    }

    /// Model turns until one leaves nothing to run or the session has to pause.
    async fn converse(&mut self) -> Pause {
        for turn in 1..=self.max_turns {
            let answer = match self.conversation.ask(&mut self.gate).await {
                Ok(answer) => answer,
                Err(pause) => return pause,
            };
            let (reply, mut calls) = (answer.text.clone(), answer.tool_calls.clone());
            let stopped = answer.end == Some(ReplyEnd::Stopped);
            let cut = answer.end == Some(ReplyEnd::TokenLimit);
            self.conversation.take_reply(answer);
            if cut && let Some(last) = calls.pop() {
                // Like an unclosed fence: the token limit may have ended its arguments early.
                let why = "This call was cut off at the token limit before it was complete; \
                           nothing ran. Call run_code again, with shorter code or in parts.";
                self.conversation
                    .say(ChatMessage::tool(&last.id, why), true);
            }
            // A cut reply's unfinished last line may look like a closing fence: it closes nothing.
            let whole_lines = if stopped || cut {
                finished_lines(&reply)
            } else {
                &reply
            };
            let mut blocks = self.conversation.blocks_of(whole_lines, &calls);
            self.gate.propose(&blocks);
            if blocks.blocks.is_empty() {
                if !calls.is_empty() && !stopped && turn < self.max_turns {
                    // Every call was answered with what was wrong: the model can fix it.
                    continue;
                }
                return Pause::Idle(if stopped {
                    IdleReason::Cancelled
                } else {
                    IdleReason::NoCode
                });
            }
            let report = match self.gate.settle(&mut blocks, &reply).await {
                TurnEnd::Finished(report) if stopped => {
                    // The operator stopped the model: it does not go on by itself.
                    self.gate
                        .events()
                        .notice("the results go to the model with your next message (or a retry)");
                    self.conversation.hold_results(report, &blocks);
                    return Pause::Idle(IdleReason::Cancelled);
                }
                TurnEnd::Finished(report) => report,
                TurnEnd::Aborted(report) => {
                    self.conversation.hold_results(report, &blocks);
                    return Pause::Idle(IdleReason::Aborted);
                }
                TurnEnd::NoSupervisor(report) => {
                    self.conversation.hold_results(report, &blocks);
                    return Pause::Done(DoneReason::NoSupervisor);
                }
                TurnEnd::Shutdown => return Pause::Done(DoneReason::Aborted),
                TurnEnd::SandboxGone => return Pause::Done(DoneReason::Error),
            };
            if turn == self.max_turns {
                self.conversation.hold_results(report, &blocks);
                break;
            }
            self.conversation.send_results(report, &blocks);
        }
        self.gate.events().notice(format!(
            "stopped after {} model replies (model.max_turns / --max-turns)",
            self.max_turns
        ));
        Pause::Idle(IdleReason::MaxTurns)
    }

    /// After a pause: the operator's next message, or a retry.
    async fn wait_for_operator(&mut self, can_retry: bool) -> Result<Next, DoneReason> {
        loop {
            match self.gate.next_op(Moment::Waiting { can_retry }).await? {
                Served::Shutdown => return Err(DoneReason::Aborted),
                Served::Take(Wanted::Message { text, id }) => {
                    return Ok(Next::Message { text, id });
                }
                Served::Take(Wanted::Retry) => return Ok(Next::Retry),
                // Nothing runs, so a cancel has nothing to stop.
                Served::Handled | Served::Take(_) => {}
            }
        }
    }
}

/// `text` up to its last line break: the lines a cut reply finished.
fn finished_lines(text: &str) -> &str {
    text.rfind(['\n', '\r']).map_or("", |at| &text[..=at])
}

enum Next {
    /// The operator's message, and the id of the op that sent it.
    Message {
        text: String,
        id: Option<String>,
    },
    Retry,
}

#[cfg(test)]
#[path = "session_tests/mod.rs"]
mod tests;
