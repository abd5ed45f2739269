//! Reading a streamed chat-completion chunk: its text, its piece of any tool calls, whether
//! it ends the reply (and at the token limit), and the usage a last chunk may carry. Tool
//! calls arrive in pieces, by index: the first piece has the id and the name, the rest add
//! to the arguments.

use serde_json::Value;

use super::{FunctionCall, ToolCall};
use crate::protocol::Usage;

pub(super) struct Piece {
    pub(super) text: String,
    pub(super) finished: bool,
    pub(super) cut: bool,
    pub(super) usage: Option<Usage>,
}

/// Tool calls as their pieces arrive.
#[derive(Debug, Default)]
pub(super) struct Calls {
    calls: Vec<ToolCall>,
}

impl Calls {
    /// The calls, in the order of their index; a call the server sent no id for gets one.
    pub(super) fn finish(self) -> Vec<ToolCall> {
        self.calls
            .into_iter()
            .enumerate()
            .map(|(at, mut call)| {
                if call.id.is_empty() {
                    call.id = format!("call_{at}");
                }
                call
            })
            .collect()
    }

    fn take(&mut self, delta: &Value) {
        let Some(parts) = delta.get("tool_calls").and_then(Value::as_array) else {
            return;
        };
        for part in parts {
            let at = part
                .get("index")
                .and_then(Value::as_u64)
                .map_or(self.calls.len().saturating_sub(1), |at| at as usize);
            // Indexes far apart would be a server's mistake; they are not given room.
            if at > self.calls.len() + 64 {
                continue;
            }
            while self.calls.len() <= at {
                self.calls.push(ToolCall {
                    kind: "function".into(),
                    ..ToolCall::default()
                });
            }
            let call = &mut self.calls[at];
            if let Some(id) = part.get("id").and_then(Value::as_str) {
                call.id = id.to_string();
            }
            let function = part.get("function");
            let text = |key: &str| function.and_then(|f| f.get(key)).and_then(Value::as_str);
            let FunctionCall { name, arguments } = &mut call.function;
            if let Some(piece) = text("name") {
                name.push_str(piece);
            }
            if let Some(piece) = text("arguments") {
                arguments.push_str(piece);
            }
        }
    }
}

pub(super) fn read_chunk(chunk: &Value, calls: &mut Calls) -> Result<Piece, String> {
    if let Some(error) = chunk.get("error") {
        let message = error
            .get("message")
            .and_then(Value::as_str)
            .map_or_else(|| error.to_string(), str::to_string);
        return Err(format!(
            "the model server reported an error mid-reply: {message}"
        ));
    }
    let Some(choices) = chunk.get("choices").and_then(Value::as_array) else {
        return Err(format!(
            "the model server sent something that is not a chat completion chunk: {}",
            clip(&chunk.to_string())
        ));
    };
    let mut piece = Piece {
        text: String::new(),
        finished: false,
        cut: false,
        usage: chunk
            .get("usage")
            .filter(|usage| !usage.is_null())
            .and_then(|usage| serde_json::from_value(usage.clone()).ok()),
    };
    for choice in choices {
        if let Some(delta) = choice.get("delta") {
            if let Some(text) = delta.get("content").and_then(Value::as_str) {
                piece.text.push_str(text);
            }
            calls.take(delta);
        }
        let reason = choice
            .get("finish_reason")
            .filter(|reason| !reason.is_null());
        piece.finished |= reason.is_some();
        piece.cut |= reason.and_then(Value::as_str) == Some("length");
    }
    Ok(piece)
}

/// A server's text, short enough for a message.
pub(super) fn clip(text: &str) -> String {
    const LIMIT: usize = 200;
    if text.len() <= LIMIT {
        return text.to_string();
    }
    let mut end = LIMIT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn read(chunk: Value) -> Result<Piece, String> {
        read_chunk(&chunk, &mut Calls::default())
    }

    #[test]
    fn chunks_give_text_and_the_end() {
        let piece = read(json!({"choices": [{"delta": {"content": "hi"}}]})).expect("ok");
        assert_eq!(piece.text, "hi");
        assert!(!piece.finished);
        let piece = read(json!({"choices": [{"delta": {}, "finish_reason": "stop"}]})).expect("ok");
        assert!(piece.finished && !piece.cut && piece.text.is_empty());
        let piece =
            read(json!({"choices": [{"delta": {"content": "x"}, "finish_reason": "length"}]}))
                .expect("ok");
        assert!(piece.finished && piece.cut);
        let usage = json!({"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15});
        let piece = read(json!({"choices": [], "usage": usage})).expect("ok");
        assert_eq!(
            piece.usage,
            Some(Usage {
                prompt_tokens: 12,
                completion_tokens: 3,
                total_tokens: 15
            })
        );
        let piece = read(json!({"choices": [{"delta": {}}], "usage": null})).expect("ok");
        assert!(piece.usage.is_none());
        let err = read(json!({"error": {"message": "overloaded"}})).err();
        assert!(err.is_some_and(|err| err.contains("overloaded")));
        assert!(read(json!({"hello": 1})).is_err());
    }

    #[test]
    fn tool_calls_are_put_together_from_their_pieces_by_index() {
        let mut calls = Calls::default();
        let parts = [
            json!([{"index": 0, "id": "call_a", "type": "function", "function": {"name": "run_", "arguments": ""}}]),
            json!([{"index": 0, "function": {"name": "code", "arguments": "{\"language\": \"ba"}}]),
            json!([{"index": 1, "id": "call_b", "function": {"name": "run_code", "arguments": "{}"}}]),
            json!([{"index": 0, "function": {"arguments": "sh\", \"code\": \"ls\"}"}}]),
        ];
        for part in parts {
            let chunk = json!({"choices": [{"delta": {"tool_calls": part}}]});
            read_chunk(&chunk, &mut calls).expect("a chunk");
        }
        let calls = calls.finish();
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0].id, "call_a");
        assert_eq!(calls[0].function.name, "run_code");
        assert_eq!(
            calls[0].function.arguments,
            "{\"language\": \"bash\", \"code\": \"ls\"}"
        );
        assert_eq!(
            (calls[1].id.as_str(), calls[1].function.arguments.as_str()),
            ("call_b", "{}")
        );
    }
}
