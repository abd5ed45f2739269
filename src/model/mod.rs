//! Where replies come from. The engine sees only the [`Model`] trait; the adapters are an
//! OpenAI-compatible streaming client ([`openai`]) and a scripted model ([`scripted`]) that
//! replays replies from a TOML file.

mod chunks;
pub mod openai;
pub mod scripted;
mod server_error;
mod wire;

use std::future::Future;

use serde::{Deserialize, Serialize};

pub use crate::config::CodeProtocol;
use crate::protocol::Usage;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    System,
    User,
    Assistant,
    /// The answer to one of the model's tool calls.
    Tool,
}

/// One message of the conversation, as the model receives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub(crate) role: Role,
    pub(crate) content: String,
    /// The calls a reply made (tools protocol).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) tool_calls: Vec<ToolCall>,
    /// The call a tool message answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) tool_call_id: Option<String>,
}

impl ChatMessage {
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }

    /// The answer to the call `id`.
    pub(crate) fn tool(id: &str, content: impl Into<String>) -> Self {
        Self {
            tool_call_id: Some(id.to_string()),
            ..Self::new(Role::Tool, content)
        }
    }
}

/// A function call in a reply, as the wire has it: its id, and the function's name and
/// arguments (a JSON text, as the model wrote it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    pub id: String,
    #[serde(rename = "type", default = "function_type")]
    pub kind: String,
    pub function: FunctionCall,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionCall {
    pub name: String,
    pub arguments: String,
}

fn function_type() -> String {
    "function".into()
}

/// The name of the one tool airlock offers: `run_code` with `language` and `code`.
pub(crate) const RUN_CODE: &str = "run_code";

/// A model's reply: its text and calls, whether the token limit cut it, and what it cost.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reply {
    pub text: String,
    pub tool_calls: Vec<ToolCall>,
    /// It stopped at the token limit rather than where the model meant to.
    pub cut: bool,
    /// It reached `model.max_reply_bytes` (this many bytes) and airlock cut it there,
    /// closing the stream; `cut` is set too.
    pub cut_at_bytes: Option<usize>,
    /// The server's count of tokens, when it sent one.
    pub usage: Option<Usage>,
}

impl Reply {
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            ..Self::default()
        }
    }
}

/// What a model reports while its reply is on the way.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelEvent {
    /// The next piece of the reply.
    Delta(String),
    /// The request failed in a way worth retrying; the next attempt follows after `delay_ms`.
    Retry {
        attempt: u32,
        max_attempts: u32,
        delay_ms: u64,
        reason: String,
    },
}

/// Receives [`ModelEvent`]s as they happen.
pub(crate) type ModelSink<'a> = &'a mut (dyn FnMut(ModelEvent) + Send);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// A scripted model has no replies left.
    #[error("the scripted model has no more replies")]
    Exhausted,
    /// The request or the stream failed; the message says what and what to do.
    #[error("{0}")]
    Failed(String),
}

pub trait Model: Send {
    /// Sends the conversation and returns the whole reply, reporting its pieces as they come.
    fn complete(
        &mut self,
        messages: &[ChatMessage],
        sink: ModelSink<'_>,
    ) -> impl Future<Output = Result<Reply, ModelError>> + Send;
}

/// The model a session uses, chosen at start-up.
pub(crate) enum AnyModel {
    OpenAi(Box<openai::OpenAiModel>),
    Scripted(scripted::ScriptedModel),
}

impl Model for AnyModel {
    async fn complete(
        &mut self,
        messages: &[ChatMessage],
        sink: ModelSink<'_>,
    ) -> Result<Reply, ModelError> {
        match self {
            Self::OpenAi(model) => model.complete(messages, sink).await,
            Self::Scripted(model) => model.complete(messages, sink).await,
        }
    }
}
