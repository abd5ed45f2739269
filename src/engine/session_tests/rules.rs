//! The approval rules in force: listed at the start and on every change, lifted by the
//! operator for the rest of the session.

use super::*;

fn rules_of(event: &Event) -> Option<Vec<String>> {
    match event {
        Event::Rules { rules } => Some(rules.iter().map(|rule| rule.id.clone()).collect()),
        _ => None,
    }
}

#[tokio::test]
async fn rules_are_listed_with_their_origin_and_a_lifted_rule_no_longer_decides() {
    let mut options = Options::default();
    options.approval.deny_patterns = vec!["rm -rf".into()];
    options.approval.allow_languages = vec!["sh".into()];
    // The session waits for the operator's first message: ops are served in order.
    options.prompt = None;
    options.end_when_idle = false;
    let mut harness = start(
        vec![
            text(&fenced(&[("sh", "ls")])),
            text(&fenced(&[("sh", "echo 2")])),
            text("done"),
        ],
        options,
    );
    let first = harness.wait_for("rules", |e| rules_of(e).is_some()).await;
    assert_eq!(
        rules_of(&first).unwrap_or_default(),
        ["deny_patterns:rm -rf", "allow_languages:sh"]
    );
    if let Event::Rules { rules } = &first {
        assert_eq!(rules[0].origin, "approval.deny_patterns");
        assert_eq!((rules[0].effect, rules[1].effect), (Reject, Approve));
    }
    // The operator lifts the allow rule: the next sh block is theirs to decide.
    let send = |op: Op| harness.ops.send(op).expect("engine listens");
    harness.ops.submit(
        "lift-1",
        Op::RevokeRule {
            rule: "allow_languages:sh".into(),
        },
    );
    send(Op::UserMessage { text: "go".into() });
    let revoked = harness
        .wait_for("rule_revoked", |e| matches!(e, Event::RuleRevoked { .. }))
        .await;
    assert!(
        matches!(&revoked, Event::RuleRevoked { rule, id: Some(id) } if rule.covers == "every sh block" && id == "lift-1"),
        "{revoked:?}"
    );
    let left = harness.wait_for("rules", |e| rules_of(e).is_some()).await;
    assert_eq!(
        rules_of(&left).unwrap_or_default(),
        ["deny_patterns:rm -rf"]
    );
    // Approve-for-session adds a rule, listed at once, and it decides the next block.
    let ids = harness.proposed(1).await;
    harness.approve_for_session(&ids[0], Scope::Language);
    let added = harness.wait_for("rules", |e| rules_of(e).is_some()).await;
    assert!(
        rules_of(&added)
            .unwrap_or_default()
            .contains(&"session:sh".to_string())
    );
    harness
        .wait_for("idle", |e| matches!(e, Event::Idle { .. }))
        .await;
    harness.ops.send(Op::Shutdown).expect("engine listens");
    let (_, events, _, ran) = harness.done().await;
    assert_eq!(ran, ["ls\n", "echo 2\n"]);
    assert_eq!(
        decisions(&events),
        [(ApproveSession, Operator), (Approve, Rule)]
    );
}

#[tokio::test]
async fn lifting_a_rule_that_is_not_in_force_is_an_error_and_changes_nothing() {
    let mut options = Options::default();
    options.approval.mode = ApproveMode::All;
    options.prompt = None;
    options.end_when_idle = false;
    let mut harness = start(vec![], options);
    harness.wait_for("rules", |e| rules_of(e).is_some()).await;
    let send = |op: Op| harness.ops.send(op).expect("engine listens");
    send(Op::RevokeRule {
        rule: "allow_languages:cobol".into(),
    });
    send(Op::Shutdown);
    let error = harness
        .wait_for("error", |e| matches!(e, Event::Error { .. }))
        .await;
    assert!(
        matches!(&error, Event::Error { message, .. } if message.contains("`allow_languages:cobol`")),
        "{error:?}"
    );
    let (reason, events, _, _) = harness.done().await;
    assert_eq!(reason, DoneReason::Aborted);
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::RuleRevoked { .. }))
    );
}
