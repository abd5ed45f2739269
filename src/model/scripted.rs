//! The scripted model: replies read from a TOML file (`[[reply]] content = "..."`) and
//! given in order, one per request, streamed in small pieces like a real model's. For
//! `--demo`, tests and benchmarks: no key, no network.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;

use super::{ChatMessage, Model, ModelError, ModelEvent, ModelSink, Reply};
use crate::protocol::Usage;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Script {
    /// Pause between streamed pieces, so a demo reads like a live model.
    #[serde(default)]
    delay_ms: u64,
    #[serde(default)]
    reply: Vec<ScriptedReply>,
}

/// One scripted reply: its text, and optionally that the token limit cut it and what the
/// server would have counted.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScriptedReply {
    content: String,
    #[serde(default)]
    cut: bool,
    #[serde(default)]
    usage: Option<Usage>,
}

impl From<ScriptedReply> for Reply {
    fn from(scripted: ScriptedReply) -> Self {
        Self {
            text: scripted.content,
            tool_calls: Vec::new(),
            cut: scripted.cut,
            cut_at_bytes: None,
            usage: scripted.usage,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ScriptedModel {
    replies: std::collections::VecDeque<Reply>,
    delay: Duration,
}

impl ScriptedModel {
    pub(crate) fn from_file(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the model script {}", path.display()))?;
        Self::from_toml(&text).map_err(|err| {
            anyhow::anyhow!(
                "model script {} is invalid: {err}; it should hold [[reply]] tables with a \
                 `content` string each",
                path.display()
            )
        })
    }

    pub(crate) fn from_toml(text: &str) -> Result<Self, toml::de::Error> {
        let script: Script = toml::from_str(text)?;
        Ok(Self {
            replies: script.reply.into_iter().map(Reply::from).collect(),
            delay: Duration::from_millis(script.delay_ms),
        })
    }

    pub fn from_replies<I: IntoIterator<Item = String>>(replies: I) -> Self {
        Self {
            replies: replies.into_iter().map(Reply::text).collect(),
            delay: Duration::ZERO,
        }
    }
}

impl Model for ScriptedModel {
    async fn complete(
        &mut self,
        _messages: &[ChatMessage],
        sink: ModelSink<'_>,
    ) -> Result<Reply, ModelError> {
        let reply = self.replies.pop_front().ok_or(ModelError::Exhausted)?;
        for piece in pieces(&reply.text) {
            if !self.delay.is_zero() {
                tokio::time::sleep(self.delay).await;
            }
            sink(ModelEvent::Delta(piece.to_string()));
        }
        Ok(reply)
    }
}

/// Splits text after each run of whitespace, like the token pieces a server streams.
fn pieces(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let word_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let end = rest[word_end..]
            .find(|c: char| !c.is_whitespace())
            .map_or(rest.len(), |at| word_end + at);
        let (piece, tail) = rest.split_at(end);
        rest = tail;
        Some(piece)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn replies_come_in_order_as_pieces_then_run_out() {
        let mut model = ScriptedModel::from_toml(
            "[[reply]]\ncontent = \"one two\\n\"\n[[reply]]\ncontent = \"three\"\ncut = true\n\
             usage = { prompt_tokens = 9, completion_tokens = 1, total_tokens = 10 }\n",
        )
        .expect("valid");
        let mut seen = Vec::new();
        let mut sink = |event: ModelEvent| seen.push(event);
        assert_eq!(
            model.complete(&[], &mut sink).await,
            Ok(Reply::text("one two\n"))
        );
        let cut = model.complete(&[], &mut sink).await.expect("a reply");
        assert!(cut.cut && cut.text == "three");
        assert_eq!(cut.usage.map(|usage| usage.total_tokens), Some(10));
        assert_eq!(
            model.complete(&[], &mut sink).await,
            Err(ModelError::Exhausted)
        );
        let joined: Vec<_> = seen
            .iter()
            .map(|event| match event {
                ModelEvent::Delta(text) => text.as_str(),
                ModelEvent::Retry { .. } => "?",
            })
            .collect();
        assert_eq!(joined, ["one ", "two\n", "three"]);
    }

    #[test]
    fn a_bad_script_says_what_it_should_hold() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("script.toml");
        std::fs::write(&path, "[[reply]]\ntext = \"hi\"\n").expect("write");
        let err = ScriptedModel::from_file(&path).unwrap_err().to_string();
        assert!(
            err.contains("script.toml") && err.contains("content"),
            "{err}"
        );
    }
}
