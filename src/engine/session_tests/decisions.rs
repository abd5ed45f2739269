//! Every kind of decision and who makes it: the operator, rules, the approver, --approve; in
//! which order blocks run, what follows a failure or an abort, what the model is told.

use super::*;

#[tokio::test]
async fn decisions_in_any_order_run_blocks_in_order_and_results_reach_the_model() {
    let mut harness = start(
        vec![
            text(&fenced(&[("python", "print('one')"), ("bash", "echo two")])),
            text("All done, no more code."),
        ],
        Options::default(),
    );
    let ids = harness.proposed(2).await;
    harness.decide(&ids[1], Approve);
    harness.decide(&ids[0], Approve);
    let (reason, events, requests, ran) = harness.done().await;
    assert_eq!(reason, DoneReason::NoCode);
    assert_eq!(ran, ["print('one')\n", "echo two\n"]);
    assert_eq!(requests.len(), 2, "one model call per turn");
    let report = last_user_message(&requests[1]);
    let one = report.find("ran print('one')").expect("first output sent");
    let two = report.find("ran echo two").expect("second output sent");
    assert!(one < two, "{report}");
    assert!(matches!(events.first(), Some(Event::SessionStarted { .. })));
    let started: Vec<&Event> = events
        .iter()
        .filter(|e| matches!(e, Event::ExecStarted { .. }))
        .collect();
    assert_eq!(started.len(), 2);
    assert_eq!(
        decisions(&events),
        [(Approve, Operator), (Approve, Operator)]
    );
}

#[tokio::test]
async fn an_edit_runs_the_new_code_and_the_model_is_told_what_ran() {
    let mut harness = start(
        vec![text(&fenced(&[("python", "print('orig')")])), text("ok")],
        Options::default(),
    );
    let ids = harness.proposed(1).await;
    harness.decide_with(DecisionRequest {
        block: ids[0].clone(),
        decision: Edit,
        reason: None,
        code: Some("print('edited')\n".into()),
        scope: None,
    });
    let decision = harness
        .wait_for("decision", |e| matches!(e, Event::Decision { .. }))
        .await;
    let Event::Decision { code, .. } = decision else {
        unreachable!()
    };
    assert_eq!(code.as_deref(), Some("print('edited')\n"));
    let (_, _, requests, ran) = harness.done().await;
    assert_eq!(ran, ["print('edited')\n"]);
    let report = last_user_message(&requests[1]);
    assert!(
        report.contains("edited this block") && report.contains("print('edited')"),
        "{report}"
    );
    assert!(!report.contains("print('orig')"), "{report}");
    // The original stays in the conversation as the model wrote it.
    assert!(
        requests[1]
            .iter()
            .any(|m| m.role == Role::Assistant && m.content.contains("print('orig')"))
    );
}

#[tokio::test]
async fn skip_and_reject_do_not_run_and_the_reason_reaches_the_model() {
    let mut harness = start(
        vec![
            text(&fenced(&[("bash", "rm -rf build"), ("python", "print(2)")])),
            text("understood"),
        ],
        Options::default(),
    );
    let ids = harness.proposed(2).await;
    harness.decide_with(DecisionRequest {
        block: ids[0].clone(),
        decision: Reject,
        reason: Some("never delete build outputs".into()),
        code: None,
        scope: None,
    });
    harness.decide(&ids[1], Skip);
    let (reason, events, requests, ran) = harness.done().await;
    assert_eq!(reason, DoneReason::NoCode);
    assert!(ran.is_empty());
    let report = last_user_message(&requests[1]);
    assert!(report.contains("never delete build outputs"), "{report}");
    assert!(report.contains("skipped"), "{report}");
    assert_eq!(decisions(&events), [(Reject, Operator), (Skip, Operator)]);
}

#[tokio::test]
async fn after_a_failure_the_rest_of_the_message_is_skipped_and_said() {
    let mut harness = start(
        vec![
            text(&fenced(&[
                ("bash", "fail now"),
                ("bash", "echo after"),
                ("bash", "echo third"),
            ])),
            text("I see the failure."),
        ],
        Options::default(),
    );
    let ids = harness.proposed(3).await;
    // The second is approved before the first runs; the third is never decided.
    harness.decide(&ids[1], Approve);
    harness.decide(&ids[0], Approve);
    let (_, events, requests, ran) = harness.done().await;
    assert_eq!(ran, ["fail now\n"]);
    assert_eq!(
        decisions(&events),
        [
            (Approve, Operator),
            (Approve, Operator),
            (Skip, StopOnFailure),
            (Skip, StopOnFailure)
        ]
    );
    let report = last_user_message(&requests[1]);
    assert!(
        report.contains("exit code 1") && report.contains("block 1 failed"),
        "{report}"
    );
}

#[tokio::test]
async fn with_stop_on_failure_off_every_approved_block_runs() {
    let mut options = Options::default();
    options.approval.stop_on_failure = false;
    options.approval.mode = ApproveMode::All;
    let harness = start(
        vec![
            text(&fenced(&[("bash", "fail now"), ("bash", "echo after")])),
            text("ok"),
        ],
        options,
    );
    let (_, events, _, ran) = harness.done().await;
    assert_eq!(ran, ["fail now\n", "echo after\n"]);
    assert_eq!(decisions(&events), [(Approve, Flag), (Approve, Flag)]);
}

#[tokio::test]
async fn approve_for_session_covers_its_scope_in_this_and_later_turns() {
    let mut harness = start(
        vec![
            text(&fenced(&[
                ("python", "print(1)"),
                ("python", "print(2)"),
                ("bash", "ls"),
            ])),
            text(&fenced(&[("python", "print(3)"), ("bash", "ls")])),
            text("done"),
        ],
        Options::default(),
    );
    let ids = harness.proposed(3).await;
    harness.approve_for_session(&ids[0], Scope::Language);
    harness.approve_for_session(&ids[2], Scope::Exact);
    let scope = harness
        .wait_for("approve_session", |e| {
            matches!(
                e,
                Event::Decision {
                    decision: ApproveSession,
                    ..
                }
            )
        })
        .await;
    assert!(matches!(
        scope,
        Event::Decision {
            scope: Some(Scope::Language),
            ..
        }
    ));
    // The next turn is decided by the two session rules alone.
    let (reason, events, _, ran) = harness.done().await;
    assert_eq!(reason, DoneReason::NoCode);
    assert_eq!(
        ran,
        ["print(1)\n", "print(2)\n", "ls\n", "print(3)\n", "ls\n"]
    );
    assert_eq!(
        decisions(&events),
        [
            (ApproveSession, Operator),
            (Approve, Rule),
            (ApproveSession, Operator),
            (Approve, Rule),
            (Approve, Rule)
        ]
    );
}

#[tokio::test]
async fn abort_stops_the_turn_and_asks_the_model_nothing_more() {
    let mut harness = start(
        vec![
            text(&fenced(&[("python", "print(1)"), ("python", "print(2)")])),
            text("never sent"),
        ],
        Options::default(),
    );
    let ids = harness.proposed(2).await;
    harness.decide(&ids[0], Abort);
    let (reason, events, requests, ran) = harness.done().await;
    assert_eq!(reason, DoneReason::Aborted);
    assert!(ran.is_empty());
    assert_eq!(requests.len(), 1);
    assert_eq!(decisions(&events), [(Abort, Operator), (Abort, Operator)]);
}

#[tokio::test]
async fn after_an_abort_the_results_go_with_the_operators_next_message() {
    let options = Options {
        end_when_idle: false,
        ..Options::default()
    };
    let mut harness = start(
        vec![
            text(&fenced(&[("python", "print(1)"), ("python", "print(2)")])),
            text("fine"),
        ],
        options,
    );
    let ids = harness.proposed(2).await;
    harness.decide(&ids[0], Approve);
    harness
        .wait_for("exec_finished", |e| matches!(e, Event::ExecFinished { .. }))
        .await;
    harness.decide(&ids[1], Abort);
    harness.idle(IdleReason::Aborted).await;
    harness
        .ops
        .send(Op::UserMessage {
            text: "try another way".into(),
        })
        .unwrap();
    harness.idle(IdleReason::NoCode).await;
    harness.ops.send(Op::Shutdown).unwrap();
    let (reason, _, requests, _) = harness.done().await;
    assert_eq!(reason, DoneReason::Aborted);
    let message = last_user_message(&requests[1]);
    assert!(
        message.contains("ran print(1)") && message.contains("stopped the turn"),
        "{message}"
    );
    assert!(message.ends_with("try another way"), "{message}");
}

#[tokio::test]
async fn approve_none_rejects_with_a_reason_the_model_receives() {
    let options = with_mode(ApproveMode::None);
    let harness = start(
        vec![text(&fenced(&[("python", "print(1)")])), text("ok")],
        options,
    );
    let (_, events, requests, ran) = harness.done().await;
    assert!(ran.is_empty());
    assert_eq!(decisions(&events), [(Reject, Flag)]);
    assert!(last_user_message(&requests[1]).contains("--approve none"));
}

#[tokio::test]
async fn approve_all_still_obeys_deny_rules() {
    let options = Options {
        approval: ApprovalConfig {
            mode: ApproveMode::All,
            deny_patterns: vec!["curl ".into()],
            ..ApprovalConfig::default()
        },
        ..Options::default()
    };
    let harness = start(
        vec![
            text(&fenced(&[
                ("bash", "curl example.com"),
                ("bash", "echo fine"),
            ])),
            text("ok"),
        ],
        options,
    );
    let (_, events, _, ran) = harness.done().await;
    assert_eq!(ran, ["echo fine\n"]);
    assert_eq!(decisions(&events), [(Reject, Rule), (Approve, Flag)]);
}

#[tokio::test]
async fn the_approver_decides_and_its_failure_goes_to_the_operator() {
    let options = Options {
        approver: Some(FakeApprover(Ok(ApproverVerdict {
            approved: false,
            reason: Some("writes outside /workspace".into()),
        }))),
        ..Options::default()
    };
    let harness = start(
        vec![text(&fenced(&[("bash", "touch /etc/x")])), text("ok")],
        options,
    );
    let (_, events, requests, _) = harness.done().await;
    assert_eq!(decisions(&events), [(Reject, ByApprover)]);
    assert!(last_user_message(&requests[1]).contains("writes outside /workspace"));

    let options = Options {
        approver: Some(FakeApprover(Err("it exited with status 3".into()))),
        ..Options::default()
    };
    let mut harness = start(
        vec![text(&fenced(&[("bash", "echo hi")])), text("ok")],
        options,
    );
    let ids = harness.proposed(1).await;
    let error = harness
        .wait_for("error", |e| matches!(e, Event::Error { .. }))
        .await;
    assert!(
        matches!(&error, Event::Error { message, .. } if message.contains("status 3") && message.contains("operator"))
    );
    assert!(
        harness.decisions().is_empty(),
        "nothing decided before the operator"
    );
    harness.decide(&ids[0], Approve);
    let (_, events, _, ran) = harness.done().await;
    assert_eq!(ran, ["echo hi\n"]);
    assert_eq!(decisions(&events), [(Approve, Operator)]);
}

#[tokio::test]
async fn bad_decisions_are_errors_and_change_nothing() {
    let mut harness = start(
        vec![
            text(&fenced(&[("bash", "hang here"), ("bash", "echo x")])),
            text("ok"),
        ],
        Options::default(),
    );
    let ids = harness.proposed(2).await;
    harness.decide("b-unknown", Approve);
    harness
        .wait_for(
            "error",
            |e| matches!(e, Event::Error { message, .. } if message.contains("b-unknown")),
        )
        .await;
    harness.decide(&ids[1], Edit);
    harness
        .wait_for(
            "error",
            |e| matches!(e, Event::Error { message, .. } if message.contains("needs the new code")),
        )
        .await;
    harness.decide(&ids[0], Approve);
    harness
        .wait_for("output", |e| matches!(e, Event::ExecOutput { .. }))
        .await;
    harness.decide(&ids[0], Reject);
    harness
        .wait_for(
            "error",
            |e| matches!(e, Event::Error { message, .. } if message.contains("already decided")),
        )
        .await;
    harness.ops.send(Op::Cancel).unwrap();
    let (_, events, _, ran) = harness.done().await;
    assert_eq!(ran, ["hang here\n"]);
    assert_eq!(
        decisions(&events),
        [(Approve, Operator), (Skip, StopOnFailure)]
    );
}

#[tokio::test]
async fn an_op_with_an_id_is_answered_with_that_id_and_one_without_gets_none() {
    let mut harness = start(
        vec![
            text(&fenced(&[("bash", "echo one"), ("bash", "echo two")])),
            text("ok"),
        ],
        Options::default(),
    );
    let ids = harness.proposed(2).await;
    let decide = |block: &str, decision| {
        Op::Decide(DecisionRequest {
            block: block.into(),
            decision,
            reason: None,
            code: None,
            scope: None,
        })
    };
    // Refused at this moment: the refusal names the op's id.
    harness
        .ops
        .submit("m-1", Op::UserMessage { text: "hi".into() });
    let refusal = harness
        .wait_for("error", |e| matches!(e, Event::Error { .. }))
        .await;
    assert!(
        matches!(&refusal, Event::Error { message, id: Some(id) } if id == "m-1" && message.contains("not possible")),
        "{refusal:?}"
    );
    harness.ops.submit("d-1", decide("b-unknown", Approve));
    let refusal = harness
        .wait_for("error", |e| matches!(e, Event::Error { .. }))
        .await;
    assert!(
        matches!(&refusal, Event::Error { id: Some(id), .. } if id == "d-1"),
        "{refusal:?}"
    );
    // Taken: its decision carries the id; a decision sent without one has none.
    harness.ops.submit("d-2", decide(&ids[0], Approve));
    harness.decide(&ids[1], Approve);
    let (_, events, _, _) = harness.done().await;
    let answered: Vec<(String, Option<String>)> = events
        .iter()
        .filter_map(|event| match event {
            Event::Decision { block, id, .. } => Some((block.clone(), id.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        answered,
        [(ids[0].clone(), Some("d-2".into())), (ids[1].clone(), None)]
    );
    // And on the wire a decision without an id has no `id` field at all.
    let plain = events
        .iter()
        .rev()
        .find(|event| matches!(event, Event::Decision { .. }))
        .map(|event| serde_json::to_value(event).expect("serializes"));
    assert_eq!(plain.and_then(|json| json.get("id").cloned()), None);
}
