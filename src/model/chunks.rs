//! Reading a streamed chat-completion chunk: its text, its piece of any tool calls, whether
//! it ends the reply (and at the token limit), and the usage a last chunk may carry. Tool
//! calls arrive in pieces, by index: the first piece has the id and the name, the rest add
//! to the arguments. Everything kept counts against the reply's [`Budget`]
//! (`model.max_reply_bytes`): a server can stream without end, and `max_tokens` is only a
//! request.

use serde_json::Value;

use super::{FunctionCall, ToolCall};
use crate::protocol::Usage;

pub(super) struct Piece {
    pub(super) text: String,
    pub(super) finished: bool,
    pub(super) cut: bool,
    pub(super) usage: Option<Usage>,
    /// The reply outgrew its budget in this chunk: what did not fit is not kept.
    pub(super) over: bool,
}

/// What is left of `model.max_reply_bytes` for the reply's text and its calls (their ids,
/// names and arguments) together.
#[derive(Debug)]
pub(super) struct Budget {
    left: usize,
    spent: bool,
}

impl Budget {
    pub(super) fn new(bytes: usize) -> Self {
        Self {
            left: bytes,
            spent: false,
        }
    }

    /// The start of `text` that still fits, cut on a character boundary. Once a piece does
    /// not fit whole, the budget is spent and nothing more is taken.
    pub(super) fn take<'a>(&mut self, text: &'a str) -> &'a str {
        if self.spent {
            return "";
        }
        if text.len() <= self.left {
            self.left -= text.len();
            return text;
        }
        let end = char_floor(text, self.left);
        self.left = 0;
        self.spent = true;
        &text[..end]
    }

    /// Takes `bytes` of what is left when they fit; else the budget is spent.
    fn charge(&mut self, bytes: usize) -> bool {
        if self.spent || bytes > self.left {
            self.left = 0;
            self.spent = true;
            return false;
        }
        self.left -= bytes;
        true
    }

    /// Something did not fit.
    pub(super) fn spent(&self) -> bool {
        self.spent
    }
}

/// The largest character boundary of `text` at or before byte `at`.
pub(super) fn char_floor(text: &str, at: usize) -> usize {
    let mut end = at.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    end
}

/// What each call costs the budget besides the bytes the server sent for it: what airlock
/// keeps and writes for a call of its own (its record, an id for a call sent without one, the
/// answer to a call it cannot run). Without it, a server could open calls without end, each
/// with nothing in it, and grow memory and the history past the bound.
const CALL_COST: usize = 256;

/// Tool calls as their pieces arrive.
#[derive(Debug, Default)]
pub(super) struct Calls {
    calls: Vec<ToolCall>,
    /// The call the budget ran out in.
    cut: Option<usize>,
}

impl Calls {
    /// The calls, in the order of their index; a call the server sent no id for gets one. A
    /// call the budget cut goes last, where the engine answers a cut reply's unfinished call
    /// instead of offering it.
    pub(super) fn finish(mut self) -> Vec<ToolCall> {
        if let Some(at) = self.cut.filter(|at| *at < self.calls.len()) {
            let cut = self.calls.remove(at);
            self.calls.push(cut);
        }
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

    fn take(&mut self, delta: &Value, budget: &mut Budget) {
        let Some(parts) = delta.get("tool_calls").and_then(Value::as_array) else {
            return;
        };
        for part in parts {
            if budget.spent() {
                return;
            }
            let at = part
                .get("index")
                .and_then(Value::as_u64)
                .map_or(self.calls.len().saturating_sub(1), |at| at as usize);
            // Indexes far apart would be a server's mistake; they are not given room.
            if at > self.calls.len() + 64 {
                continue;
            }
            while self.calls.len() <= at {
                if !budget.charge(CALL_COST) {
                    return;
                }
                self.calls.push(ToolCall {
                    kind: "function".into(),
                    ..ToolCall::default()
                });
            }
            let call = &mut self.calls[at];
            if let Some(id) = part.get("id").and_then(Value::as_str) {
                call.id = budget.take(id).to_string();
            }
            let function = part.get("function");
            let text = |key: &str| function.and_then(|f| f.get(key)).and_then(Value::as_str);
            let FunctionCall { name, arguments } = &mut call.function;
            if let Some(piece) = text("name") {
                name.push_str(budget.take(piece));
            }
            if let Some(piece) = text("arguments") {
                arguments.push_str(budget.take(piece));
            }
            if budget.spent() {
                self.cut = Some(at);
            }
        }
    }
}

pub(super) fn read_chunk(
    chunk: &Value,
    calls: &mut Calls,
    budget: &mut Budget,
) -> Result<Piece, String> {
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
        over: false,
    };
    for choice in choices {
        if let Some(delta) = choice.get("delta") {
            if let Some(text) = delta.get("content").and_then(Value::as_str) {
                piece.text.push_str(budget.take(text));
            }
            calls.take(delta, budget);
        }
        let reason = choice
            .get("finish_reason")
            .filter(|reason| !reason.is_null());
        piece.finished |= reason.is_some();
        piece.cut |= reason.and_then(Value::as_str) == Some("length");
    }
    piece.over = budget.spent();
    Ok(piece)
}

/// A server's text, short enough for a message.
pub(super) fn clip(text: &str) -> String {
    const LIMIT: usize = 200;
    if text.len() <= LIMIT {
        return text.to_string();
    }
    format!("{}…", &text[..char_floor(text, LIMIT)])
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn read(chunk: Value) -> Result<Piece, String> {
        read_chunk(&chunk, &mut Calls::default(), &mut Budget::new(1 << 20))
    }

    fn content(text: &str) -> Value {
        json!({"choices": [{"delta": {"content": text}}]})
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
            read_chunk(&chunk, &mut calls, &mut Budget::new(1 << 20)).expect("a chunk");
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

    #[test]
    fn the_budget_cuts_text_on_a_character_boundary_and_then_takes_nothing() {
        let mut calls = Calls::default();
        // "ab", then "é" (2 bytes) straddles the bound of 3.
        let mut budget = Budget::new(3);
        let piece = read_chunk(&content("ab"), &mut calls, &mut budget).expect("ok");
        assert_eq!((piece.text.as_str(), piece.over), ("ab", false));
        let piece = read_chunk(&content("éz"), &mut calls, &mut budget).expect("ok");
        assert_eq!(piece.text, "", "half of é is never kept");
        assert!(piece.over);
        let piece = read_chunk(&content("more"), &mut calls, &mut budget).expect("ok");
        assert_eq!((piece.text.as_str(), piece.over), ("", true));

        // A four-byte character at the bound: all or nothing of it.
        let mut budget = Budget::new(6);
        assert_eq!(budget.take("ab😀cd"), "ab😀");
        assert!(budget.spent());
        let mut budget = Budget::new(5);
        assert_eq!(budget.take("ab😀cd"), "ab");
        // Exactly full is not spent: nothing was left out.
        let mut budget = Budget::new(4);
        assert_eq!(budget.take("abcd"), "abcd");
        assert!(!budget.spent());
        assert_eq!(budget.take(""), "");
        assert!(!budget.spent());
        assert_eq!(budget.take("e"), "");
        assert!(budget.spent());
    }

    #[test]
    fn a_call_the_budget_cuts_goes_last_and_no_call_starts_after_it() {
        let mut calls = Calls::default();
        let mut budget = Budget::new(2 * CALL_COST + 60);
        let parts = [
            json!([{"index": 0, "id": "a", "function": {"name": "run_code", "arguments": "{\"language\": \"sh\", "}}]),
            json!([{"index": 1, "id": "b", "function": {"name": "run_code", "arguments": "{}"}}]),
            json!([{"index": 0, "function": {"arguments": "\"code\": \"yes ééééééééééééééé\"}"}}]),
            json!([{"index": 2, "id": "c", "function": {"name": "run_code", "arguments": "{}"}}]),
        ];
        let mut over = Vec::new();
        for part in parts {
            let chunk = json!({"choices": [{"delta": {"tool_calls": part}}]});
            over.push(
                read_chunk(&chunk, &mut calls, &mut budget)
                    .expect("a chunk")
                    .over,
            );
        }
        assert_eq!(over, [false, false, true, true]);
        let calls = calls.finish();
        let ids: Vec<&str> = calls.iter().map(|call| call.id.as_str()).collect();
        assert_eq!(ids, ["b", "a"], "the cut call last, none after the cut");
        let kept: usize = calls
            .iter()
            .map(|call| call.id.len() + call.function.name.len() + call.function.arguments.len())
            .sum();
        assert!(
            kept <= 60,
            "{kept} bytes kept besides the two calls' own cost"
        );
        assert!(
            calls[1]
                .function
                .arguments
                .starts_with("{\"language\": \"sh\", \"code\": \"yes")
        );
        assert!(serde_json::from_str::<Value>(&calls[1].function.arguments).is_err());
    }

    /// The attack: a server opens call after call, each with nothing in it, so that no byte
    /// of text or arguments is ever charged.
    #[test]
    fn empty_calls_without_end_stop_at_the_budget() {
        let mut calls = Calls::default();
        let mut budget = Budget::new(64 << 10);
        let mut chunks = 0;
        for at in (0..1_000_000u64).step_by(64) {
            let chunk = json!({"choices": [{"delta": {"tool_calls": [{"index": at}]}}]});
            chunks += 1;
            if read_chunk(&chunk, &mut calls, &mut budget)
                .expect("a chunk")
                .over
            {
                break;
            }
        }
        let calls = calls.finish();
        assert_eq!(calls.len(), (64 << 10) / CALL_COST, "after {chunks} chunks");
        assert!(budget.spent());
    }
}
