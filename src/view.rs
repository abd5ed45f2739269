//! The session as a frontend sees it, folded from the engine's events by one pure reducer:
//! where the engine is, which blocks were proposed, what was decided about each and how
//! each run went. `airlock run` and the TUI read the same view, so neither has to guess.

use crate::protocol::{
    DecisionKind, DecisionSource, DoneReason, Event, ExecResult, IdleReason, Phase, Usage,
};

/// Where the session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Nothing from the engine yet but, at most, its start.
    Starting,
    /// The engine is at work: replying, waiting for decisions, running a block.
    Busy(Phase),
    /// Waiting for the operator's next message.
    Idle(IdleReason),
    Done(DoneReason),
}

/// A decision as the view keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decided {
    pub kind: DecisionKind,
    pub source: DecisionSource,
    pub reason: Option<String>,
}

/// One proposed block and what became of it.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockState {
    pub id: String,
    pub index: usize,
    pub language: String,
    pub code: String,
    /// Short SHA-256 of the code, so what is shown can be compared with what ran.
    pub hash: String,
    pub decision: Option<Decided>,
    /// The operator's version of the code, when the decision was an edit.
    pub edited: Option<String>,
    /// The run, once it started, and its result, once it finished.
    pub run: Option<String>,
    pub result: Option<ExecResult>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SessionView {
    pub session: Option<String>,
    pub stage: Stage,
    /// Every block proposed in this session, in order.
    pub blocks: Vec<BlockState>,
    /// The blocks of the model's latest reply, in order, until the session waits or ends.
    pub turn: Vec<String>,
    /// The block running now.
    pub running: Option<String>,
    /// What the latest model reply cost, when the server said.
    pub last_usage: Option<Usage>,
    /// What every reply of the session cost, as far as the server said.
    pub usage: Usage,
}

impl Default for SessionView {
    fn default() -> Self {
        Self {
            session: None,
            stage: Stage::Starting,
            blocks: Vec::new(),
            turn: Vec::new(),
            running: None,
            last_usage: None,
            usage: Usage::default(),
        }
    }
}

impl SessionView {
    /// Takes in one event.
    pub fn apply(&mut self, event: &Event) {
        match event {
            Event::SessionStarted { session, .. } => self.session = Some(session.clone()),
            Event::Phase { phase } => self.stage = Stage::Busy(*phase),
            Event::Idle { reason } => {
                self.stage = Stage::Idle(*reason);
                self.turn.clear();
            }
            Event::Done { reason } => {
                self.stage = Stage::Done(*reason);
                self.turn.clear();
                self.running = None;
            }
            Event::AssistantMessage { usage, .. } => {
                self.turn.clear();
                self.last_usage = *usage;
                if let Some(usage) = usage {
                    self.usage.add(*usage);
                }
            }
            Event::BlockProposed {
                block,
                index,
                language,
                code,
                ..
            } => {
                self.blocks.push(BlockState {
                    id: block.clone(),
                    index: *index,
                    language: language.clone(),
                    code: code.clone(),
                    hash: crate::ids::short_hash(code),
                    decision: None,
                    edited: None,
                    run: None,
                    result: None,
                });
                self.turn.push(block.clone());
            }
            Event::Decision {
                block,
                decision,
                reason,
                source,
                code,
                ..
            } => {
                if let Some(state) = self.block_mut(block) {
                    state.decision = Some(Decided {
                        kind: *decision,
                        source: *source,
                        reason: reason.clone(),
                    });
                    if code.is_some() {
                        state.edited = code.clone();
                    }
                }
            }
            Event::ExecStarted { block, run } => {
                if let Some(state) = self.block_mut(block) {
                    state.run = Some(run.clone());
                }
                self.running = Some(block.clone());
            }
            Event::ExecFinished { block, result, .. } => {
                if let Some(state) = self.block_mut(block) {
                    state.result = Some(result.clone());
                }
                if self.running.as_deref() == Some(block) {
                    self.running = None;
                }
            }
            _ => {}
        }
    }

    /// The latest reply's blocks still waiting for a decision, in the order they were
    /// proposed. Once the session waits for the operator or ends, none is.
    pub fn undecided(&self) -> impl Iterator<Item = &BlockState> {
        self.turn
            .iter()
            .filter_map(|id| self.block(id))
            .filter(|block| block.decision.is_none())
    }

    pub fn block(&self, id: &str) -> Option<&BlockState> {
        self.blocks.iter().find(|block| block.id == id)
    }

    fn block_mut(&mut self, id: &str) -> Option<&mut BlockState> {
        self.blocks.iter_mut().find(|block| block.id == id)
    }

    /// The engine is at work on something a cancel stops: a reply or a block.
    pub fn busy(&self) -> bool {
        matches!(
            self.stage,
            Stage::Busy(Phase::Replying) | Stage::Busy(Phase::Running)
        )
    }
}

#[cfg(test)]
#[path = "view_tests.rs"]
mod tests;
