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
    harness.idle(IdleReason::Cancelled).await;
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
    let go_on = &retried[first.len() + 1];
    assert_eq!(
        (go_on.role, go_on.content.as_str()),
        (Role::User, "[airlock: the operator asks you to go on]"),
        "the request does not end with the model's own message"
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
    harness.idle(IdleReason::Cancelled).await;
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
async fn a_cut_that_ends_on_a_line_of_backticks_closes_no_block() {
    // The cut fell after "```": the line might have gone on ("```x" closes nothing), so
    // the block may be only part of what the model wrote.
    let usage = Usage {
        prompt_tokens: 1,
        completion_tokens: 1,
        total_tokens: 2,
    };
    let cut = "First:\n```bash\necho whole\n```\nThen:\n```bash\necho half\n```";
    let harness = start(
        vec![Reply::Cut(cut.into(), usage)],
        with_mode(ApproveMode::None),
    );
    let (_, events, _, _) = harness.done().await;
    let proposed: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            Event::BlockProposed { code, .. } => Some(code.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(proposed, ["echo whole\n"], "{events:#?}");
    assert!(events.iter().any(|e| matches!(
        e,
        Event::Notice { message } if message.contains("never closed")
    )));
    assert!(
        events.iter().any(|e| matches!(
            e,
            Event::AssistantMessage { text, .. } if text == cut
        )),
        "the reply itself is kept whole"
    );
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

fn run_code(language: &str, code: &str) -> String {
    serde_json::json!({ "language": language, "code": code }).to_string()
}

#[tokio::test]
async fn tool_calls_are_blocks_like_fences_and_each_result_answers_its_call() {
    let calls = Reply::Calls(vec![
        ("call_1", "run_code", run_code("bash", "echo one")),
        ("call_2", "run_code", run_code("python", "fail here")),
    ]);
    let mut harness = start(vec![calls, text("both ran")], with_mode(ApproveMode::Ask));
    let ids = harness.proposed(2).await;
    harness.decide(&ids[0], Approve);
    harness.decide(&ids[1], Approve);
    let (_, events, requests, ran) = harness.done().await;
    assert_eq!(ran, ["echo one", "fail here"], "in order, as proposed");
    assert!(events.iter().any(|e| matches!(
        e,
        Event::BlockProposed { language, code, .. } if language == "python" && code == "fail here"
    )));
    let next = &requests[1];
    let reply = &next[next.len() - 3];
    assert_eq!(reply.role, Role::Assistant);
    assert_eq!(
        reply.tool_calls.len(),
        2,
        "the reply goes back with its calls"
    );
    let answers: Vec<(&str, &str)> = next[next.len() - 2..]
        .iter()
        .map(|m| (m.tool_call_id.as_deref().unwrap_or(""), m.content.as_str()))
        .collect();
    assert_eq!(answers[0].0, "call_1");
    assert!(answers[0].1.contains("ran echo one"), "{answers:?}");
    assert_eq!(answers[1].0, "call_2");
    assert!(
        answers[1].1.contains("exit code 1") || answers[1].1.contains("exit 1"),
        "{answers:?}"
    );
    assert!(next[next.len() - 2..].iter().all(|m| m.role == Role::Tool));
}

#[tokio::test]
async fn a_rejected_call_is_answered_with_the_reason() {
    let calls = Reply::Calls(vec![("call_9", "run_code", run_code("bash", "rm -rf /"))]);
    let mut harness = start(vec![calls, text("understood")], with_mode(ApproveMode::Ask));
    let ids = harness.proposed(1).await;
    harness.decide_with(DecisionRequest {
        block: ids[0].clone(),
        decision: Reject,
        reason: Some("not on this machine".into()),
        code: None,
        scope: None,
    });
    let (_, _, requests, ran) = harness.done().await;
    assert!(ran.is_empty());
    let answer = requests[1].last().expect("an answer");
    assert_eq!(answer.tool_call_id.as_deref(), Some("call_9"));
    assert!(
        answer.content.contains("not on this machine"),
        "{}",
        answer.content
    );
}

#[tokio::test]
async fn calls_that_cannot_run_are_answered_so_the_model_can_fix_them() {
    let calls = Reply::Calls(vec![
        (
            "call_a",
            "run_code",
            "{\"language\": \"bash\", \"code\": ".into(),
        ),
        ("call_b", "delete_everything", "{}".into()),
        ("call_c", "run_code", run_code("cobol", "DISPLAY 'HI'")),
    ]);
    let harness = start(
        vec![calls, text("sorry, no code")],
        with_mode(ApproveMode::Ask),
    );
    let (_, events, requests, ran) = harness.done().await;
    assert!(ran.is_empty());
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::BlockProposed { .. }))
    );
    assert_eq!(requests.len(), 2, "the model is asked again at once");
    let answers: Vec<&ChatMessage> = requests[1]
        .iter()
        .filter(|m| m.role == Role::Tool)
        .collect();
    assert_eq!(answers.len(), 3);
    assert!(
        answers[0].content.contains("not a JSON object"),
        "{}",
        answers[0].content
    );
    assert!(
        answers[1]
            .content
            .contains("no function `delete_everything`")
    );
    assert!(answers[2].content.contains("`cobol` is not a language"));
    let reply = requests[1]
        .iter()
        .find(|m| !m.tool_calls.is_empty())
        .expect("the reply");
    assert_eq!(
        reply.tool_calls[0].function.arguments, "{}",
        "arguments that are not JSON are not sent back as they came"
    );
}
