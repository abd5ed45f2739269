use super::*;
use crate::protocol::Outcome;

/// Event streams recorded from `airlock run --json`: the bundled demo script with every block
/// approved, and a reply of three blocks decided on stdin (reject, approve, and the third
/// skipped after the second failed).
const DEMO: &str = include_str!("../tests/fixtures/events/demo.jsonl");
const DECISIONS: &str = include_str!("../tests/fixtures/events/decisions.jsonl");

fn events(recorded: &str) -> Vec<Event> {
    recorded
        .lines()
        .map(|line| serde_json::from_str(line).expect("a recorded event"))
        .collect()
}

/// The view after each event, for a stream.
fn views(recorded: &str) -> Vec<SessionView> {
    let mut view = SessionView::default();
    events(recorded)
        .iter()
        .map(|event| {
            view.apply(event);
            view.clone()
        })
        .collect()
}

#[test]
fn the_demo_ends_with_every_block_run_and_the_fix_succeeding() {
    let all = views(DEMO);
    let end = all.last().expect("events");
    assert_eq!(end.stage, Stage::Done(DoneReason::NoCode));
    assert!(end.session.as_deref().is_some_and(|s| s.starts_with("s-")));
    assert_eq!(end.blocks.len(), 5);
    assert_eq!(end.undecided().count(), 0);
    let outcomes: Vec<Outcome> = end
        .blocks
        .iter()
        .map(|block| block.result.as_ref().expect("ran").outcome())
        .collect();
    // The first python block fails (Counter has no `top`); the model's fix succeeds, and
    // so does the chart drawn from its report.
    assert_eq!(
        outcomes,
        [
            Outcome::Exited(0),
            Outcome::Exited(1),
            Outcome::Exited(0),
            Outcome::Exited(0),
            Outcome::Exited(0)
        ]
    );
    assert!(end.blocks.iter().all(|block| {
        block
            .decision
            .as_ref()
            .is_some_and(|d| d.kind == DecisionKind::Approve && d.source == DecisionSource::Flag)
    }));
    // Busy while replying and running, never after the end.
    assert!(
        all.iter()
            .any(|view| view.stage == Stage::Busy(Phase::Running) && view.busy())
    );
    assert!(!end.busy() && end.running.is_none());
}

#[test]
fn a_block_runs_only_while_the_view_says_so() {
    for view in views(DEMO) {
        if let Some(running) = &view.running {
            let block = view.block(running).expect("a proposed block");
            assert!(block.run.is_some() && block.result.is_none(), "{block:?}");
            assert_eq!(view.stage, Stage::Busy(Phase::Running));
        }
    }
}

#[test]
fn decisions_from_the_operator_rules_and_failures_are_kept_per_block() {
    let all = views(DECISIONS);
    // While the operator had not decided, every block was waiting, first one first.
    let deciding = all
        .iter()
        .find(|view| view.stage == Stage::Busy(Phase::Deciding))
        .expect("a deciding phase");
    let waiting: Vec<usize> = deciding.undecided().map(|block| block.index).collect();
    assert_eq!(waiting, [0, 1, 2]);
    let end = all.last().expect("events");
    let decided: Vec<(DecisionKind, DecisionSource)> = end
        .blocks
        .iter()
        .map(|block| {
            let decision = block.decision.as_ref().expect("decided");
            (decision.kind, decision.source)
        })
        .collect();
    assert_eq!(
        decided,
        [
            (DecisionKind::Reject, DecisionSource::Operator),
            (DecisionKind::Approve, DecisionSource::Operator),
            (DecisionKind::Skip, DecisionSource::StopOnFailure)
        ]
    );
    assert_eq!(
        end.blocks[0]
            .decision
            .as_ref()
            .and_then(|d| d.reason.as_deref()),
        Some("not this one")
    );
    let ran: Vec<Option<Outcome>> = end
        .blocks
        .iter()
        .map(|block| block.result.as_ref().map(ExecResult::outcome))
        .collect();
    assert_eq!(ran, [None, Some(Outcome::Exited(3)), None]);
    assert_eq!(end.stage, Stage::Done(DoneReason::NoCode));
}

#[test]
fn waiting_for_the_operator_is_idle_until_the_next_reply() {
    let mut view = SessionView::default();
    assert_eq!(view.stage, Stage::Starting);
    view.apply(&Event::Idle {
        reason: IdleReason::NoCode,
    });
    assert_eq!(view.stage, Stage::Idle(IdleReason::NoCode));
    assert!(!view.busy());
    view.apply(&Event::Phase {
        phase: Phase::Replying,
    });
    assert!(view.busy());
    // A decision or a result for a block it never saw changes nothing.
    let before = view.clone();
    view.apply(&Event::ExecFinished {
        block: "b-unknown".into(),
        run: "r".into(),
        result: ExecResult::sample(Some(0), ""),
    });
    assert_eq!(view, before);
}
