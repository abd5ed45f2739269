//! The wire format's shape and a run's one outcome.

use super::*;

#[test]
fn one_outcome_whatever_else_happened() {
    let stopped_while_out_of_memory = Outcome::of(Some(137), true, true, true);
    assert_eq!(stopped_while_out_of_memory, Outcome::Stopped);
    assert_eq!(
        Outcome::of(Some(137), true, true, false),
        Outcome::OutOfMemory
    );
    assert_eq!(Outcome::of(None, true, false, false).phrase(), "timed out");
    assert_eq!(Outcome::of(Some(3), false, false, false).label(), "exit 3");
    assert_eq!(Outcome::of(None, false, false, false), Outcome::Killed);
    assert!(ExecResult::sample(Some(0), "").outcome().succeeded());
    assert!(!ExecResult::sample(Some(1), "").outcome().succeeded());
}

#[test]
fn events_are_flat_and_tagged() {
    let event = Event::ExecFinished {
        block: "b1".into(),
        run: "r1".into(),
        result: ExecResult {
            exit_code: Some(0),
            timed_out: false,
            oom_killed: false,
            truncated: false,
            output: "hi\n".into(),
            output_bytes: 3,
            duration_ms: 70,
            image: "img (sha256:00)".into(),
            container_restarted: false,
            cancelled: false,
            container: String::new(),
            omission_at: None,
            workspace_full: false,
            files: Vec::new(),
            files_incomplete: None,
        },
    };
    let json = serde_json::to_value(&event).expect("serializes");
    assert_eq!(json["type"], "exec_finished");
    assert_eq!(json["exit_code"], 0);
    assert_eq!(json["output"], "hi\n");
    let back: Event = serde_json::from_value(json).expect("round trip");
    assert_eq!(back, event);
    let chunk = Event::ExecOutput {
        block: "b".into(),
        run: "r".into(),
        stream: Stream::Stderr,
        data: "x".into(),
    };
    let json = serde_json::to_value(&chunk).expect("serializes");
    assert_eq!(json["stream"], "stderr");
}

#[test]
fn decision_lines_parse_and_reject_unknown_fields() {
    let line = r#"{"block":"b-1","decision":"approve_session","scope":"exact"}"#;
    let request: DecisionRequest = serde_json::from_str(line).expect("parses");
    assert_eq!(request.decision, DecisionKind::ApproveSession);
    assert_eq!(request.scope, Some(Scope::Exact));
    let op = serde_json::to_value(Op::Decide(request)).expect("serializes");
    assert_eq!(op["type"], "decide");
    assert_eq!(op["block"], "b-1");
    assert!(
        serde_json::from_str::<DecisionRequest>(r#"{"block":"b","decision":"maybe"}"#).is_err()
    );
    assert!(
        serde_json::from_str::<DecisionRequest>(r#"{"block":"b","decision":"skip","colour":1}"#)
            .is_err()
    );
    let done = serde_json::to_value(Event::Done {
        reason: DoneReason::NoSupervisor,
    })
    .expect("serializes");
    assert_eq!(
        done,
        serde_json::json!({"type": "done", "reason": "no_supervisor"})
    );
    assert_eq!(wire_name(&DecisionKind::ApproveSession), "approve_session");
}
