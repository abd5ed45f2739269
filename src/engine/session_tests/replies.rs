//! What becomes of a reply: stopped by the operator (what arrived is kept), cut at the token
//! limit, and fitted to the context window over a long session.

use super::*;
use crate::engine::budget::ContextBudget;

#[tokio::test]
async fn cancelling_the_model_keeps_what_arrived_and_retry_asks_again_with_it() {
    let options = Options {
        end_when_idle: false,
        ..Options::default()
    };
    let mut harness = start(vec![Reply::Hang, text("second try, no code")], options);
    harness
        .wait_for("delta", |e| matches!(e, Event::AssistantDelta { .. }))
        .await;
    harness.ops.send(Op::Cancel).unwrap();
    let kept = harness
        .wait_for("the stopped reply", |e| {
            matches!(e, Event::AssistantMessage { .. })
        })
        .await;
    assert_eq!(
        kept,
        Event::AssistantMessage {
            text: "I will".into(),
            usage: None,
            end: Some(ReplyEnd::Stopped)
        }
    );
    harness
        .wait_for("idle", |e| {
            matches!(
                e,
                Event::Idle {
                    reason: IdleReason::Cancelled
                }
            )
        })
        .await;
    harness.ops.send(Op::Retry).unwrap();
    harness
        .wait_for(
            "assistant_message",
            |e| matches!(e, Event::AssistantMessage { text, .. } if text == "second try, no code"),
        )
        .await;
    harness.ops.send(Op::Shutdown).unwrap();
    let (_, _, requests, _) = harness.done().await;
    assert_eq!(requests.len(), 2);
    let (first, retried) = (&requests[0], &requests[1]);
    assert_eq!(
        retried[..first.len()],
        first[..],
        "the same conversation first"
    );
    let stopped = &retried[first.len()];
    assert_eq!(stopped.role, Role::Assistant);
    assert_eq!(
        stopped.content, "I will\n\n[airlock: the operator stopped this reply here]",
        "the model is told where it was stopped"
    );
}

#[tokio::test]
async fn a_stopped_replys_complete_blocks_are_offered_and_its_open_one_is_not() {
    let options = Options {
        end_when_idle: false,
        ..Options::default()
    };
    let streamed =
        "First this:\n```bash\necho kept\n```\nthen:\n```python\nprint('never closed')\n";
    let mut harness = start(
        vec![Reply::HangAfter(streamed.into()), text("thanks")],
        options,
    );
    harness
        .wait_for(
            "the open block",
            |e| matches!(e, Event::AssistantDelta { text } if text.contains("never closed")),
        )
        .await;
    harness.ops.send(Op::Cancel).unwrap();
    let ids = harness.proposed(1).await;
    harness.decide(&ids[0], Approve);
    let finished = harness
        .wait_for("exec_finished", |e| matches!(e, Event::ExecFinished { .. }))
        .await;
    assert!(
        matches!(finished, Event::ExecFinished { ref result, .. } if result.exit_code == Some(0))
    );
    harness
        .wait_for("idle", |e| {
            matches!(
                e,
                Event::Idle {
                    reason: IdleReason::Cancelled
                }
            )
        })
        .await;
    // The model was stopped: it is not asked again until the operator says so, and then
    // it gets the block's result with the message.
    harness
        .ops
        .send(Op::UserMessage {
            text: "go on".into(),
        })
        .unwrap();
    harness
        .wait_for(
            "the next reply",
            |e| matches!(e, Event::AssistantMessage { text, .. } if text == "thanks"),
        )
        .await;
    harness.ops.send(Op::Shutdown).unwrap();
    let (_, events, requests, _) = harness.done().await;
    assert_eq!(
        requests.len(),
        2,
        "no request between the stop and the message"
    );
    let last = &requests[1].last().expect("a message").content;
    assert!(
        last.contains("## Block 1") && last.ends_with("go on"),
        "{last}"
    );
    let proposed = events
        .iter()
        .filter(|e| matches!(e, Event::BlockProposed { .. }))
        .count();
    assert_eq!(proposed, 1, "the unclosed block is not offered");
}

#[tokio::test]
async fn a_reply_cut_at_the_token_limit_is_marked_for_everyone_and_its_usage_reported() {
    let usage = Usage {
        prompt_tokens: 40,
        completion_tokens: 16,
        total_tokens: 56,
    };
    let mut harness = start(
        vec![Reply::Cut("a long story that".into(), usage)],
        Options::default(),
    );
    let message = harness
        .wait_for("reply", |e| matches!(e, Event::AssistantMessage { .. }))
        .await;
    assert_eq!(
        message,
        Event::AssistantMessage {
            text: "a long story that".into(),
            usage: Some(usage),
            end: Some(ReplyEnd::TokenLimit)
        }
    );
    let (_, events, _, _) = harness.done().await;
    assert!(events.iter().any(|e| matches!(
        e,
        Event::Notice { message } if message.contains("cut off at the token limit")
    )));
}

#[tokio::test]
async fn a_long_session_stays_inside_the_context_window() {
    let window = ContextBudget {
        window: 2000,
        reply: 200,
    };
    let options = Options {
        max_turns: 12,
        context: Some(window),
        ..with_mode(ApproveMode::All)
    };
    // Each reply runs a block whose result is about 750 tokens.
    let reply = |turn: usize| {
        text(&fenced(&[(
            "bash",
            &format!("echo {turn} {}", "x".repeat(3000)),
        )]))
    };
    let harness = start((0..12).map(reply).collect(), options);
    let (_, events, requests, _) = harness.done().await;
    assert_eq!(requests.len(), 12);
    for (turn, request) in requests.iter().enumerate() {
        let estimate: u64 = request
            .iter()
            .map(|message| (message.content.len() as u64).div_ceil(4) + 4)
            .sum();
        assert!(
            estimate <= 1800,
            "request {turn} is about {estimate} tokens"
        );
        assert_eq!(
            request[0].content, "SYSTEM",
            "the system prompt always goes first"
        );
    }
    // The newest results always go whole: the last request ends with the 11th block's.
    let last = requests.last().expect("requests");
    let newest = &last.last().expect("a message").content;
    assert!(
        newest.contains(&format!("10 {}", "x".repeat(3000))),
        "{newest}"
    );
    assert!(
        last[1].content.starts_with("[airlock: the ") && last[1].content.contains("left out"),
        "{}",
        last[1].content
    );
    let told: Vec<&String> = events
        .iter()
        .filter_map(|e| match e {
            Event::Notice { message } if message.contains("model.context_window") => Some(message),
            _ => None,
        })
        .collect();
    assert!(!told.is_empty(), "the operator is told what was left out");
    assert!(told.len() < 12, "and only when that grows: {told:?}");
}
