//! The session over time: turns and max_turns, cancelling, nobody to decide, the model failing,
//! the sandbox arriving late or never, unrunnable fences, a history that stops recording.

use super::*;

#[tokio::test]
async fn the_session_stops_at_max_turns() {
    let options = Options {
        max_turns: 2,
        ..with_mode(ApproveMode::All)
    };
    let reply = || text(&fenced(&[("python", "print('again')")]));
    let harness = start(vec![reply(), reply(), reply()], options);
    let (reason, _, requests, ran) = harness.done().await;
    assert_eq!(reason, DoneReason::MaxTurns);
    assert_eq!(requests.len(), 2);
    assert_eq!(ran.len(), 2);
}

#[tokio::test]
async fn nothing_is_added_to_the_context_twice() {
    let options = with_mode(ApproveMode::All);
    let harness = start(
        vec![
            text(&fenced(&[("python", "print('alpha')")])),
            text(&fenced(&[("python", "print('beta')")])),
            text("finished"),
        ],
        options,
    );
    let (_, _, requests, _) = harness.done().await;
    assert_eq!(requests.len(), 3);
    for pair in requests.windows(2) {
        let (before, after) = (&pair[0], &pair[1]);
        assert_eq!(
            &after[..before.len()],
            &before[..],
            "each request extends the last"
        );
        assert_eq!(
            after.len(),
            before.len() + 2,
            "one reply and one report per turn"
        );
        assert_eq!(after[before.len()].role, Role::Assistant);
        assert_eq!(after[before.len() + 1].role, Role::User);
    }
    let last = &requests[2];
    assert_eq!(last.iter().filter(|m| m.role == Role::System).count(), 1);
    let everything: String = last.iter().map(|m| m.content.as_str()).collect();
    assert_eq!(everything.matches("ran print('alpha')").count(), 1);
    assert_eq!(everything.matches("ran print('beta')").count(), 1);
    assert_eq!(everything.matches("do the task").count(), 1);
}

#[tokio::test]
async fn cancelling_a_running_block_stops_it_and_the_session_goes_on() {
    let mut harness = start(
        vec![
            text(&fenced(&[("bash", "hang here")])),
            text("I see it was stopped"),
        ],
        Options::default(),
    );
    let ids = harness.proposed(1).await;
    harness.decide(&ids[0], Approve);
    harness
        .wait_for("output", |e| matches!(e, Event::ExecOutput { .. }))
        .await;
    harness.ops.send(Op::Cancel).unwrap();
    let finished = harness
        .wait_for("exec_finished", |e| matches!(e, Event::ExecFinished { .. }))
        .await;
    let Event::ExecFinished { result, .. } = finished else {
        unreachable!()
    };
    assert!(result.cancelled && result.exit_code.is_none());
    let (reason, _, requests, _) = harness.done().await;
    assert_eq!(reason, DoneReason::NoCode);
    assert!(last_user_message(&requests[1]).contains("operator stopped the block"));
}

#[tokio::test]
async fn cancel_while_waiting_for_a_decision_aborts_the_turn() {
    let mut harness = start(vec![text(&fenced(&[("bash", "ls")]))], Options::default());
    harness.proposed(1).await;
    harness.ops.send(Op::Cancel).unwrap();
    let (reason, events, _, ran) = harness.done().await;
    assert_eq!(reason, DoneReason::Aborted);
    assert!(ran.is_empty());
    assert_eq!(decisions(&events), [(Abort, Operator)]);
}

#[tokio::test]
async fn without_a_supervisor_undecided_blocks_are_rejected_but_approved_ones_run() {
    let mut harness = start(
        vec![text(&fenced(&[("bash", "echo a"), ("bash", "echo b")]))],
        Options::default(),
    );
    let ids = harness.proposed(2).await;
    harness.decide(&ids[0], Approve);
    harness.ops.send(Op::NoSupervisor).unwrap();
    let (reason, events, requests, ran) = harness.done().await;
    assert_eq!(reason, DoneReason::NoSupervisor);
    assert_eq!(ran, ["echo a\n"]);
    assert_eq!(
        decisions(&events),
        [(Approve, Operator), (Reject, NoSupervisor)]
    );
    assert_eq!(requests.len(), 1);
}

#[tokio::test]
async fn ending_the_session_with_blocks_waiting_rejects_them_for_want_of_a_supervisor() {
    let mut harness = start(
        vec![text(&fenced(&[("bash", "echo a"), ("bash", "echo b")]))],
        Options::default(),
    );
    let ids = harness.proposed(2).await;
    harness.decide(&ids[0], Skip);
    harness
        .wait_for("the skip", |e| matches!(e, Event::Decision { .. }))
        .await;
    harness.ops.send(Op::Shutdown).unwrap();
    let (reason, events, _, ran) = harness.done().await;
    assert_eq!(reason, DoneReason::Aborted);
    assert!(ran.is_empty());
    assert_eq!(
        decisions(&events),
        [(Skip, Operator), (Reject, NoSupervisor)]
    );
    let reason = events.iter().rev().find_map(|event| match event {
        Event::Decision { block, reason, .. } if *block == ids[1] => reason.clone(),
        _ => None,
    });
    assert!(
        reason.as_deref().unwrap_or("").contains("session ended"),
        "{reason:?}"
    );
}

#[tokio::test]
async fn model_failures_end_a_headless_session_and_can_be_retried_interactively() {
    let harness = start(
        vec![Reply::Fail("HTTP 500: boom".into())],
        Options::default(),
    );
    let (reason, events, _, _) = harness.done().await;
    assert_eq!(reason, DoneReason::Error);
    assert!(
        events.iter().any(
            |e| matches!(e, Event::Error { message, .. } if message.contains("HTTP 500: boom"))
        )
    );

    let options = Options {
        end_when_idle: false,
        ..Options::default()
    };
    let mut harness = start(
        vec![Reply::Fail("stream cut".into()), text("recovered")],
        options,
    );
    harness.idle(IdleReason::Error).await;
    harness.ops.send(Op::Retry).unwrap();
    harness
        .wait_for(
            "reply",
            |e| matches!(e, Event::AssistantMessage { text, .. } if text == "recovered"),
        )
        .await;
    harness.ops.send(Op::Shutdown).unwrap();
    let (_, _, requests, _) = harness.done().await;
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0], requests[1]);
}

#[tokio::test]
async fn a_script_that_runs_out_ends_the_session() {
    let harness = start(vec![], Options::default());
    let (reason, events, _, _) = harness.done().await;
    assert_eq!(reason, DoneReason::ScriptExhausted);
    assert!(
        matches!(events.first(), Some(Event::SessionStarted { session, resumed: false }) if session == "s-test")
    );
}

#[tokio::test]
async fn the_model_replies_and_blocks_wait_while_the_sandbox_is_prepared() {
    let (open, gate) = tokio::sync::oneshot::channel();
    let options = Options {
        sandbox_gate: Some(gate),
        ..Options::default()
    };
    let mut session = start(
        vec![text(&fenced(&[("python", "print(1)")])), text("done")],
        options,
    );
    let ids = session.proposed(1).await;
    session.decide(&ids[0], Approve);
    session
        .wait_for(
            "the block's wait",
            |e| matches!(e, Event::Notice { message } if message.contains("waits for the sandbox")),
        )
        .await;
    assert!(
        session.ran.lock().unwrap().is_empty(),
        "nothing runs before the sandbox"
    );
    assert!(
        !session
            .seen
            .iter()
            .any(|e| matches!(e, Event::SandboxReady { .. })),
        "the model replied before the sandbox was ready"
    );
    open.send(Ok(())).expect("the sandbox is still awaited");
    session
        .wait_for("sandbox_ready", |e| matches!(e, Event::SandboxReady { .. }))
        .await;
    let (reason, _, requests, ran) = session.done().await;
    assert_eq!(reason, DoneReason::NoCode);
    assert_eq!(ran, vec!["print(1)\n".to_string()]);
    assert!(last_user_message(&requests[1]).contains("ran print(1)"));
}

#[tokio::test]
async fn a_sandbox_that_cannot_start_ends_the_session_with_its_reason() {
    let (fail, gate) = tokio::sync::oneshot::channel();
    let options = Options {
        sandbox_gate: Some(gate),
        ..Options::default()
    };
    // The model is still replying when the sandbox fails.
    let mut session = start(vec![Reply::Hang], options);
    session
        .wait_for("the reply's start", |e| {
            matches!(e, Event::AssistantDelta { .. })
        })
        .await;
    fail.send(Err("cannot reach the Docker daemon".into()))
        .expect("the sandbox is still awaited");
    let error = session
        .wait_for("error", |e| matches!(e, Event::Error { .. }))
        .await;
    assert!(matches!(&error, Event::Error { message, .. } if message.contains("Docker daemon")));
    session
        .wait_for("done", |e| {
            *e == Event::Done {
                reason: DoneReason::Error,
            }
        })
        .await;
    let ended = session.session.await.expect("session task");
    assert_eq!(
        ended,
        Ended {
            reason: DoneReason::Error,
            sandbox_failed: true
        }
    );
}

#[tokio::test]
async fn a_sandbox_failing_while_the_operator_is_away_ends_the_waiting_session() {
    let (fail, gate) = tokio::sync::oneshot::channel();
    let options = Options {
        sandbox_gate: Some(gate),
        end_when_idle: false,
        prompt: None,
        ..Options::default()
    };
    let mut session = start(Vec::new(), options);
    session
        .wait_for("session_started", |e| {
            matches!(e, Event::SessionStarted { .. })
        })
        .await;
    fail.send(Err("no image".into())).expect("awaited");
    session
        .wait_for("done", |e| {
            *e == Event::Done {
                reason: DoneReason::Error,
            }
        })
        .await;
    assert!(session.session.await.expect("session task").sandbox_failed);
    assert!(
        session.requests.lock().unwrap().is_empty(),
        "nobody asked the model"
    );
}

#[tokio::test]
async fn a_reply_full_of_unrunnable_fences_gets_one_notice_grouped_by_reason() {
    let reply = "Output looks like:\n\n```\n1 2 3\n```\n\n```bash\necho run-me\n```\n\n```\nexample\n```\n\n```rust\nfn main() {}\n```\n\n```\nmore\n```\n";
    let harness = start(vec![text(reply), text("done")], with_mode(ApproveMode::All));
    let (_, events, _, ran) = harness.done().await;
    assert_eq!(ran, ["echo run-me\n"]);
    let notices: Vec<&str> = events
        .iter()
        .filter_map(|event| match event {
            Event::Notice { message } if message.contains("not offered") => Some(message.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(notices.len(), 1, "{notices:#?}");
    let notice = notices[0];
    assert!(
        notice.starts_with(
            "4 blocks of the reply are not offered to run: no language tag (blocks 1, 3, 5): "
        ),
        "{notice}"
    );
    assert!(
        notice.contains("language `rust` is not configured"),
        "{notice}"
    );
    assert!(notice.ends_with("(block 4)"), "{notice}");
}

#[tokio::test]
async fn when_the_history_stops_recording_no_further_block_runs_and_the_model_is_told() {
    // The history takes the first two blocks' events, then the disk is full.
    let recorded = Arc::new(Mutex::new(0usize));
    let counter = recorded.clone();
    let journal: Journal = Arc::new(move |event: &Event| {
        if matches!(event, Event::ExecFinished { .. }) {
            *counter.lock().expect("lock") += 1;
        }
        if *counter.lock().expect("lock") >= 1 && matches!(event, Event::Decision { .. }) {
            return Err("database or disk is full".into());
        }
        Ok(())
    });
    let mut options = with_mode(ApproveMode::All);
    options.journal = Some(journal);
    let harness = start(
        vec![
            text(&fenced(&[("bash", "echo one")])),
            text(&fenced(&[("bash", "echo two"), ("bash", "echo three")])),
            text("done"),
        ],
        options,
    );
    let (_, events, requests, ran) = harness.done().await;
    assert_eq!(
        ran,
        ["echo one\n"],
        "only the block that could be recorded ran"
    );
    let said: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            Event::Error { message, .. } => Some(message.clone()),
            _ => None,
        })
        .collect();
    assert!(
        said.iter()
            .any(|m| m.contains("disk is full") && m.contains("no further block")),
        "{said:?}"
    );
    let report = last_user_message(&requests[2]);
    assert!(report.contains("the history cannot record it"), "{report}");
}
