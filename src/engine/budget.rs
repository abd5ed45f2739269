//! Keeps each request inside the model's context window (`model.context_window`). Tokens
//! are estimated from the text, about four bytes to a token, and the estimate is corrected
//! by what the server counted for the previous request. A request that would not fit loses,
//! in this order: the middle of older block results, then the oldest messages, replaced by
//! a note the model can read. The system prompt and the newest messages always go as they
//! are.

use crate::model::{ChatMessage, Role};
use crate::protocol::Usage;

/// The newest messages, never shortened or left out: the exchange the model answers now.
const NEWEST_KEPT: usize = 2;
/// Older results longer than this are shortened to their start and end.
const SHORTENED_TO: usize = 600;
/// What each message costs beyond its text (role, separators), in tokens.
const PER_MESSAGE: u64 = 4;

/// The window and the part of it the reply needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ContextBudget {
    pub(crate) window: u64,
    /// Tokens kept free for the reply (`model.max_tokens`).
    pub(crate) reply: u64,
}

impl ContextBudget {
    /// What the request may use: the window less the reply's share (a quarter of the window
    /// when the reply has no limit of its own or a limit bigger than the window).
    fn for_request(self) -> u64 {
        let reply = if self.reply == 0 || self.reply >= self.window {
            self.window / 4
        } else {
            self.reply
        };
        self.window - reply
    }
}

/// A request fitted to the budget, and what it took.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Fitted {
    pub(crate) messages: Vec<ChatMessage>,
    /// Older results shortened.
    pub(crate) shortened: usize,
    /// Oldest messages left out.
    pub(crate) left_out: usize,
    /// The request's estimated size, and whether it is still over the budget (the newest
    /// messages alone do not fit).
    pub(crate) tokens: u64,
    pub(crate) over: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Budgeter {
    budget: ContextBudget,
    /// Tokens per estimated token, learned from the server's counts.
    ratio: f64,
    /// The raw estimate of the request sent last, to learn from its count.
    last_raw: Option<u64>,
}

impl Budgeter {
    pub(crate) fn new(budget: ContextBudget) -> Self {
        Self {
            budget,
            ratio: 1.0,
            last_raw: None,
        }
    }

    /// The server counted `usage.prompt_tokens` for the request sent last: later estimates
    /// follow its tokenizer.
    pub(crate) fn learn(&mut self, usage: Usage) {
        if let Some(raw) = self.last_raw.take().filter(|raw| *raw > 0)
            && usage.prompt_tokens > 0
        {
            self.ratio = (usage.prompt_tokens as f64 / raw as f64).clamp(0.25, 4.0);
        }
    }

    /// The request for `system` and `conversation`; `results[i]` says whether message `i`
    /// holds only block results, which may be shortened.
    pub(crate) fn fit(
        &mut self,
        system: &ChatMessage,
        conversation: &[ChatMessage],
        results: &[bool],
    ) -> Fitted {
        let limit = self.budget.for_request();
        let mut kept: Vec<ChatMessage> = conversation.to_vec();
        let older = newest_start(&kept);
        // Each message's estimate, kept up to date, so no candidate request is built or
        // counted again from scratch.
        let mut costs: Vec<u64> = kept.iter().map(raw_cost).collect();
        let system_cost = raw_cost(system);
        let mut shortened = Vec::new();
        for at in 0..older {
            if self.scaled(system_cost + costs.iter().sum::<u64>()) <= limit {
                break;
            }
            if results.get(at).copied().unwrap_or(false) && shorten(&mut kept[at]) {
                costs[at] = raw_cost(&kept[at]);
                shortened.push(at);
            }
        }
        let mut left_out = 0;
        while left_out < older
            && self.scaled(system_cost + cost_with_note(&kept, &costs, left_out)) > limit
        {
            left_out += 1;
            // A tool call's answers go with the reply that made it, or not at all.
            while left_out < older && kept[left_out].role == Role::Tool {
                left_out += 1;
            }
        }
        // Only what is still sent counts as shortened.
        let shortened = shortened.iter().filter(|at| **at >= left_out).count();
        let fitted = with_note(&kept, left_out);
        kept.clear();
        let tokens = self.tokens(system, &fitted);
        self.last_raw = Some(raw_tokens(system, &fitted));
        let mut messages = Vec::with_capacity(fitted.len() + 1);
        messages.push(system.clone());
        messages.extend(fitted);
        Fitted {
            messages,
            shortened,
            left_out,
            tokens,
            over: tokens > limit,
        }
    }

    fn tokens(&self, system: &ChatMessage, conversation: &[ChatMessage]) -> u64 {
        self.scaled(raw_tokens(system, conversation))
    }

    fn scaled(&self, raw: u64) -> u64 {
        (raw as f64 * self.ratio).ceil() as u64
    }
}

/// Where the newest messages start: the last [`NEWEST_KEPT`], and the reply whose tool
/// calls the newest answer.
fn newest_start(conversation: &[ChatMessage]) -> usize {
    let mut start = conversation.len().saturating_sub(NEWEST_KEPT);
    while start > 0 && conversation[start].role == Role::Tool {
        start -= 1;
    }
    start
}

/// The estimate before learning: four bytes to a token, and each message's overhead.
fn raw_tokens(system: &ChatMessage, conversation: &[ChatMessage]) -> u64 {
    std::iter::once(system)
        .chain(conversation)
        .map(raw_cost)
        .sum()
}

fn raw_cost(message: &ChatMessage) -> u64 {
    bytes_cost(message.content.len() + calls_bytes(message))
}

fn bytes_cost(bytes: usize) -> u64 {
    (bytes as u64).div_ceil(4) + PER_MESSAGE
}

fn calls_bytes(message: &ChatMessage) -> usize {
    message
        .tool_calls
        .iter()
        .map(|call| call.id.len() + call.function.name.len() + call.function.arguments.len())
        .sum()
}

/// The raw estimate of [`with_note`]`(conversation, left_out)` without building it, from
/// each message's cost.
fn cost_with_note(conversation: &[ChatMessage], costs: &[u64], left_out: usize) -> u64 {
    if left_out == 0 {
        return costs.iter().sum();
    }
    let first = &conversation[left_out];
    let rest: u64 = costs[left_out + 1..].iter().sum();
    let note = note(left_out).len();
    let first = if first.role == Role::User {
        // The note joins it, with a blank line between.
        bytes_cost(note + 2 + first.content.len() + calls_bytes(first))
    } else {
        bytes_cost(note) + costs[left_out]
    };
    first + rest
}

/// Keeps a long result's start and end, with a note of what is left out between them.
fn shorten(message: &mut ChatMessage) -> bool {
    let text = &message.content;
    if text.len() <= SHORTENED_TO * 2 {
        return false;
    }
    let head = floor_boundary(text, SHORTENED_TO);
    let tail = ceil_boundary(text, text.len() - SHORTENED_TO);
    let dropped = tail - head;
    message.content = format!(
        "{}\n[airlock: {dropped} bytes of these results were left out here to fit the context window]\n{}",
        &text[..head],
        &text[tail..]
    );
    true
}

/// The conversation without its first `left_out` messages, a note in their place.
fn with_note(conversation: &[ChatMessage], left_out: usize) -> Vec<ChatMessage> {
    if left_out == 0 {
        return conversation.to_vec();
    }
    let note = note(left_out);
    let mut rest = conversation[left_out..].to_vec();
    match rest.first_mut() {
        // Two messages from the operator's side in a row read as one.
        Some(first) if first.role == Role::User => {
            first.content = format!("{note}\n\n{}", first.content);
        }
        _ => rest.insert(0, ChatMessage::new(Role::User, note)),
    }
    rest
}

/// What the model reads in place of the `left_out` earliest messages.
fn note(left_out: usize) -> String {
    format!(
        "[airlock: the {left_out} earliest messages of this conversation were left out here \
         to fit the context window]"
    )
}

fn floor_boundary(text: &str, mut at: usize) -> usize {
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn ceil_boundary(text: &str, mut at: usize) -> usize {
    while !text.is_char_boundary(at) {
        at += 1;
    }
    at
}

#[cfg(test)]
#[path = "budget_tests.rs"]
mod tests;
