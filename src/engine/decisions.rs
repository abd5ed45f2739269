//! Decisions on a turn's blocks as the engine takes them: the operator's, checked and
//! applied; rulings; what follows a failure or an abort.

use super::events::Events;
use super::policy::{Policy, Ruling};
use super::turn::{Decided, Turn, TurnBlock};
use crate::protocol::{DecisionKind, DecisionRequest, DecisionSource, Event, Op, Scope, wire_name};

pub(super) fn op_name(op: &Op) -> &'static str {
    match op {
        Op::UserMessage { .. } => "a message to the model",
        Op::Decide(_) => "a decision",
        Op::Cancel => "cancel",
        Op::Retry => "a retry",
        Op::RevokeRule { .. } => "revoking a rule",
        Op::NoSupervisor => "no-supervisor",
        Op::Shutdown => "shutdown",
    }
}

pub(super) fn ruling_decision(ruling: Ruling) -> Decided {
    Decided::new(ruling.kind, ruling.source, ruling.reason)
}

/// Records a decision and reports it (as the answer to the op with id `answering`, when an
/// op with an id asked for it).
pub(super) fn decide(
    turn: &mut Turn,
    position: usize,
    decided: Decided,
    scope: Option<Scope>,
    answering: Option<&str>,
    events: &Events,
) {
    let block = &mut turn.blocks[position];
    block.decision = Some(decided);
    events.decision(block, scope, answering);
}

/// An operator's decision (the op with id `answering`): checked, recorded, and applied to
/// later blocks when it is an approve-for-session.
pub(super) fn apply_decision(
    turn: &mut Turn,
    request: DecisionRequest,
    answering: Option<&str>,
    policy: &mut Policy,
    events: &Events,
) {
    let Some(position) = turn.position(&request.block) else {
        events.refuse(answering, not_waiting(turn, &request.block));
        return;
    };
    let block = &turn.blocks[position];
    if let Some(decided) = &block.decision {
        events.refuse(
            answering,
            format!(
                "block {} is already decided ({})",
                block.id,
                wire_name(&decided.kind)
            ),
        );
        return;
    }
    let reason = request.reason.filter(|reason| !reason.trim().is_empty());
    let mut decided = Decided {
        kind: request.decision,
        source: DecisionSource::Operator,
        reason,
        edited: None,
    };
    let mut scope = None;
    match request.decision {
        DecisionKind::Edit => match request.code {
            Some(code) if !code.trim().is_empty() => decided.edited = Some(code),
            _ => {
                events.refuse(
                    answering,
                    format!("an edit of block {} needs the new code in `code`", block.id),
                );
                return;
            }
        },
        DecisionKind::Reject if decided.reason.is_none() => {
            decided.reason = Some("the operator gave no reason".into());
        }
        DecisionKind::ApproveSession => {
            let chosen = request.scope.unwrap_or(Scope::Language);
            policy.approve_for_session(chosen, &block.language.name, &block.code);
            events.send(Event::Rules {
                rules: policy.rules(),
            });
            scope = Some(chosen);
        }
        DecisionKind::Abort => {
            abort_rest(
                turn,
                decided
                    .reason
                    .as_deref()
                    .unwrap_or("aborted by the operator"),
                answering,
                events,
            );
            return;
        }
        _ => {}
    }
    decide(turn, position, decided, scope, answering, events);
    if scope.is_some() {
        approve_covered(turn, policy, events);
    }
}

/// The error for a decision on a block that is not in the turn: it names those that wait.
fn not_waiting(turn: &Turn, block: &str) -> String {
    let pending: Vec<&str> = turn
        .blocks
        .iter()
        .filter(|block| block.decision.is_none())
        .map(|block| block.id.as_str())
        .collect();
    format!(
        "no block `{block}` is waiting for a decision (waiting: {})",
        if pending.is_empty() {
            "none".to_string()
        } else {
            pending.join(", ")
        }
    )
}

/// After an approve-for-session: undecided blocks the new rule covers are approved too.
pub(super) fn approve_covered(turn: &mut Turn, policy: &Policy, events: &Events) {
    for position in 0..turn.blocks.len() {
        let block = &turn.blocks[position];
        if block.decision.is_some() {
            continue;
        }
        if let Some(ruling) = policy.rule(&block.language.name, &block.code)
            && ruling.kind == DecisionKind::Approve
        {
            decide(turn, position, ruling_decision(ruling), None, None, events);
        }
    }
}

/// Abort: every block that has not run is decided `abort`, each decision answering the op
/// (an abort or a cancel) with id `answering`.
pub(super) fn abort_rest(turn: &mut Turn, reason: &str, answering: Option<&str>, events: &Events) {
    let aborted = Decided::new(DecisionKind::Abort, DecisionSource::Operator, reason);
    let all = |block: &TurnBlock| !block.settled();
    decide_each(turn, 0, all, &aborted, answering, events);
}

/// Stop-on-failure: every later block that has not run is skipped, approved or not.
pub(super) fn skip_after_failure(turn: &mut Turn, failed: usize, events: &Events) {
    let reason = format!(
        "block {} failed, and airlock skips the rest of a message after a failure",
        failed + 1
    );
    let skipped = Decided::new(DecisionKind::Skip, DecisionSource::StopOnFailure, reason);
    decide_each(
        turn,
        failed + 1,
        |block| !block.settled(),
        &skipped,
        None,
        events,
    );
}

pub(super) const NOBODY_THERE: &str = "no supervisor: nobody was there to decide";

/// Nobody can decide: undecided blocks are rejected, by nobody rather than by the operator.
/// Returns whether any was.
pub(super) fn reject_undecided(turn: &mut Turn, reason: &str, events: &Events) -> bool {
    let rejected = Decided::new(DecisionKind::Reject, DecisionSource::NoSupervisor, reason);
    let undecided = |block: &TurnBlock| block.decision.is_none();
    decide_each(turn, 0, undecided, &rejected, None, events) > 0
}

/// Gives `decided` to every block from `from` on that `selected` picks (answering the op
/// with id `answering`, if any); returns how many.
pub(super) fn decide_each(
    turn: &mut Turn,
    from: usize,
    selected: impl Fn(&TurnBlock) -> bool,
    decided: &Decided,
    answering: Option<&str>,
    events: &Events,
) -> usize {
    let picked: Vec<usize> = (from..turn.blocks.len())
        .filter(|&position| selected(&turn.blocks[position]))
        .collect();
    for &position in &picked {
        decide(turn, position, decided.clone(), None, answering, events);
    }
    picked.len()
}
