//! A turn's blocks from proposal to settlement: each is decided by a rule, the approver or
//! the operator, and the approved ones run in order (`running.rs`) until every one is
//! settled.

use super::{Gate, Step, TurnEnd};
use crate::engine::approver::{ApprovalRequest, Approver};
use crate::engine::decisions::{
    NOBODY_THERE, abort_rest, apply_decision, decide, reject_undecided, ruling_decision,
};
use crate::engine::events::Events;
use crate::engine::inbox::{Input, ShutdownRequested};
use crate::engine::policy::Ruling;
use crate::engine::sandbox::{Sandbox, SandboxError};
use crate::engine::serving::{Moment, Served, Wanted, serve};
use crate::engine::turn::{Turn, TurnBlock};
use crate::protocol::{DecisionKind, DecisionSource, Phase};

impl<S: Sandbox + 'static, A: Approver> Gate<S, A> {
    /// Decides and runs the turn's blocks, serving ops, until every block is settled;
    /// `context` is the text they came in, for the approver.
    pub(in crate::engine) async fn settle(&mut self, turn: &mut Turn, context: &str) -> TurnEnd {
        for position in 0..turn.blocks.len() {
            if let Err(ShutdownRequested) =
                self.decide_without_operator(turn, position, context).await
            {
                return shut_down(turn, &self.events);
            }
        }
        let mut unsupervised = false;
        while turn.next_open().is_some() {
            if !self.supervised {
                unsupervised |= reject_undecided(turn, NOBODY_THERE, &self.events);
            }
            let Some(position) = turn.next_open() else {
                break;
            };
            let approved = turn.blocks[position].decision.is_some();
            let step = if approved {
                self.run_block(turn, position).await
            } else {
                self.wait_for_decision(turn).await
            };
            match step {
                Ok(()) => {}
                Err(Step::Shutdown) => return shut_down(turn, &self.events),
                Err(Step::SandboxGone) => return TurnEnd::SandboxGone,
            }
        }
        let report = turn.report(&self.settings.feedback);
        if unsupervised {
            TurnEnd::NoSupervisor(report)
        } else if turn.aborted() {
            TurnEnd::Aborted(report)
        } else {
            TurnEnd::Finished(report)
        }
    }

    /// Rules first, then the approver; leaves the block undecided when the operator must
    /// decide.
    async fn decide_without_operator(
        &mut self,
        turn: &mut Turn,
        position: usize,
        context: &str,
    ) -> Result<(), ShutdownRequested> {
        let block = &turn.blocks[position];
        if block.decision.is_some() {
            return Ok(());
        }
        let ruling = match self.policy.rule(&block.language.name, &block.code) {
            Some(ruling) => Some(ruling),
            None => self.ask_approver(block, context).await?,
        };
        if let Some(ruling) = ruling {
            decide(
                turn,
                position,
                ruling_decision(ruling),
                None,
                None,
                &self.events,
            );
        }
        Ok(())
    }

    async fn ask_approver(
        &mut self,
        block: &TurnBlock,
        context: &str,
    ) -> Result<Option<Ruling>, ShutdownRequested> {
        let Some(approver) = &self.approver else {
            return Ok(None);
        };
        let request = ApprovalRequest {
            session: self.settings.session.clone(),
            block: block.id.clone(),
            index: block.index,
            language: block.language.name.clone(),
            code: block.code.clone(),
            context: context.to_string(),
        };
        let review = approver.review(&request);
        let verdict = self.inbox.hold_until(review).await?;
        match verdict {
            Ok(verdict) => {
                let kind = if verdict.approved {
                    DecisionKind::Approve
                } else {
                    DecisionKind::Reject
                };
                let reason = verdict.reason.filter(|reason| !reason.trim().is_empty());
                Ok(Some(Ruling {
                    kind,
                    source: DecisionSource::Approver,
                    reason: reason.unwrap_or_else(|| "the approver command gave no reason".into()),
                }))
            }
            Err(why) => {
                let next = if self.supervised {
                    "the block goes to the operator"
                } else {
                    "there is no operator, so the block is rejected"
                };
                self.events.error(format!(
                    "the approver command decided nothing: {why}; {next}"
                ));
                Ok(None)
            }
        }
    }

    /// Waits for the next op while the first open block has no decision.
    async fn wait_for_decision(&mut self, turn: &mut Turn) -> Result<(), Step> {
        self.events.phase(Phase::Deciding);
        self.serve_turn(
            turn,
            "while blocks wait for decisions; decide them (or abort the turn) first",
        )
        .await
    }

    /// Takes the next input while the turn's blocks wait (for decisions or for the
    /// sandbox): decisions, cancel and the sandbox's arrival are served; anything else is
    /// "not possible `now`".
    pub(super) async fn serve_turn(&mut self, turn: &mut Turn, now: &str) -> Result<(), Step> {
        let op = match self.inbox.next().await {
            Input::Op(op) => op,
            Input::Sandbox(started) => return self.take_sandbox(started),
        };
        let moment = Moment::Deciding(now);
        match serve(
            op,
            moment,
            &mut self.supervised,
            &mut self.policy,
            &self.events,
        ) {
            Served::Shutdown => return Err(Step::Shutdown),
            Served::Take(Wanted::Decide { request, id }) => {
                apply_decision(turn, request, id.as_deref(), &mut self.policy, &self.events);
            }
            Served::Take(Wanted::Cancel { id }) => {
                let reason = "cancelled by the operator";
                abort_rest(turn, reason, id.as_deref(), &self.events)
            }
            // Waiting blocks take nothing else.
            Served::Handled | Served::Take(_) => {}
        }
        Ok(())
    }

    /// The sandbox arrived at a wait point of the turn.
    fn take_sandbox(&mut self, started: Result<S, SandboxError>) -> Result<(), Step> {
        self.sandbox
            .arrive(&self.events, started)
            .map_err(|_| Step::SandboxGone)
    }
}

/// The session ends mid-turn (the operator quit, or the frontend went away): blocks still
/// waiting are recorded as rejected for want of a supervisor, so none is left undecided.
fn shut_down(turn: &mut Turn, events: &Events) -> TurnEnd {
    let reason = "no supervisor: the session ended while the block waited for a decision";
    reject_undecided(turn, reason, events);
    TurnEnd::Shutdown
}
