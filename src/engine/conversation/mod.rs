//! The model conversation, one source of blocks for the gate: it owns the model, the
//! messages and the context budget, asks the model for replies, turns each reply into a
//! turn of blocks (`blocks.rs`) and takes the gate's report back into the messages.

use std::sync::{Arc, Mutex};

use super::LanguageTable;
use super::approver::Approver;
use super::budget::{Budgeter, ContextBudget};
use super::events::Events;
use super::feedback::FeedbackLimits;
use super::gate::Gate;
use super::sandbox::Sandbox;
use super::serving::{Moment, Served, Wanted};
use super::turn::Turn;
use crate::model::{ChatMessage, Model, ModelError, ModelEvent, Role, ToolCall};
use crate::protocol::{DoneReason, Event, IdleReason, Phase, ReplyEnd, Usage, reply_for_model};

mod blocks;

/// Why the model conversation paused or stopped.
pub(super) enum Pause {
    Idle(IdleReason),
    Done(DoneReason),
}

/// What the conversation needs of the configuration.
pub(super) struct ConversationSettings {
    pub(super) system_prompt: String,
    pub(super) languages: LanguageTable,
    pub(super) feedback: FeedbackLimits,
    /// The model's context window, when it is known: requests are kept inside it.
    pub(super) context: Option<ContextBudget>,
}

pub(super) struct Conversation<M> {
    settings: ConversationSettings,
    model: M,
    events: Events,
    messages: Vec<ChatMessage>,
    /// Which messages hold only block results (those may be shortened to fit the context
    /// window).
    results: Vec<bool>,
    /// Keeps requests inside the context window, when it is known; and what it last said
    /// it left out (shortened, left out), so it says so only when that grows.
    budgeter: Option<Budgeter>,
    told: (usize, usize),
    /// Results the model has not been sent yet (after an abort); they go with the next message.
    unsent: Vec<String>,
}

impl<M: Model> Conversation<M> {
    pub(super) fn new(settings: ConversationSettings, model: M, events: Events) -> Self {
        Self {
            budgeter: settings.context.map(Budgeter::new),
            settings,
            model,
            events,
            messages: Vec::new(),
            results: Vec::new(),
            told: (0, 0),
            unsent: Vec::new(),
        }
    }

    /// Starts from an earlier session's messages.
    pub(super) fn continue_from(&mut self, messages: Vec<ChatMessage>) {
        self.results = vec![false; messages.len()];
        self.messages = messages;
    }

    /// On a retry, results the model has not seen yet go to it first (those of a stopped
    /// reply's blocks).
    pub(super) fn push_unsent(&mut self) {
        let parts = std::mem::take(&mut self.unsent);
        if parts.is_empty() {
            // A retry after a reply the operator stopped: the request must not end with the
            // model's own message (servers would continue it, or refuse two in a row).
            if self
                .messages
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
    pub(super) fn say(&mut self, message: ChatMessage, results: bool) {
        self.messages.push(message);
        self.results.push(results);
    }

    /// The operator's message (sent by the op `id`), with any results the model has not
    /// seen yet in front of it.
    pub(super) fn push_operator_message(&mut self, text: String, id: Option<String>) {
        let mut parts = std::mem::take(&mut self.unsent);
        if !parts.is_empty() {
            self.events.send(Event::Reflection {
                text: parts.join("\n\n"),
            });
        }
        self.events.send(Event::UserMessage {
            text: text.clone(),
            id,
        });
        parts.push(text);
        self.say(ChatMessage::new(Role::User, parts.join("\n\n")), false);
    }

    /// The turn's results for the model, now: as one message, or as the answers to the
    /// reply's tool calls.
    pub(super) fn send_results(&mut self, report: String, turn: &Turn) {
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
    pub(super) fn hold_results(&mut self, report: String, turn: &Turn) {
        if turn.blocks.iter().any(|block| block.call.is_some()) {
            self.send_results(report, turn);
        } else {
            self.unsent.push(report);
        }
    }

    /// A reply joins the conversation (with a note for the model when it did not end as
    /// the model meant) and is reported.
    pub(super) fn take_reply(&mut self, answer: Answer) {
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
            messages.extend(self.messages.iter().cloned());
            return messages;
        };
        let fitted = budgeter.fit(&system, &self.messages, &self.results);
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

    /// One model call, its reply streamed out as deltas. The gate serves ops while it
    /// streams; a cancel keeps what had arrived, as a stopped reply.
    pub(super) async fn ask<S: Sandbox + 'static, A: Approver>(
        &mut self,
        gate: &mut Gate<S, A>,
    ) -> Result<Answer, Pause> {
        self.events.phase(Phase::Replying);
        let messages = self.request();
        let arrived = Arc::new(Mutex::new(String::new()));
        let mut sink = streamed_to(&self.events, Arc::clone(&arrived));
        let call = self.model.complete(&messages, &mut sink);
        tokio::pin!(call);
        let outcome = loop {
            tokio::select! {
                outcome = &mut call => break outcome,
                served = gate.next_op(Moment::Replying) => match served.map_err(Pause::Done)? {
                    Served::Shutdown => return Err(Pause::Done(DoneReason::Aborted)),
                    Served::Take(Wanted::Cancel { .. }) => {
                        let text = arrived.lock().map(|text| text.clone()).unwrap_or_default();
                        return stopped_reply(text, &self.events);
                    }
                    // A reply takes nothing else.
                    Served::Handled | Served::Take(_) => {}
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
}

/// Where a streaming reply goes: each delta out as an event and kept in `arrived` (for a
/// cancelled reply); retries reported.
fn streamed_to(
    events: &Events,
    arrived: Arc<Mutex<String>>,
) -> impl FnMut(ModelEvent) + Send + use<> {
    let events = events.clone();
    move |event: ModelEvent| match event {
        ModelEvent::Delta(text) => {
            if let Ok(mut so_far) = arrived.lock() {
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
    }
}

/// A reply as the engine takes it: its text, what it cost, and how it ended when that was
/// not as the model meant.
pub(super) struct Answer {
    pub(super) text: String,
    pub(super) tool_calls: Vec<ToolCall>,
    pub(super) usage: Option<Usage>,
    pub(super) end: Option<ReplyEnd>,
    /// Cut at `model.max_reply_bytes`, this many bytes.
    pub(super) cut_at_bytes: Option<usize>,
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
