//! How the engine reports: every event recorded first (the history), then sent; the phase
//! reported once per change.

use std::sync::Arc;

use super::bus::Bus;
use super::turn::TurnBlock;
use crate::protocol::{Event, Phase, Scope};

/// Records an event durably before anyone sees it (the history). After an error nothing more
/// is recorded, and no further block runs: what cannot be recorded does not happen.
pub(crate) type Journal = Arc<dyn Fn(&Event) -> Result<(), String> + Send + Sync>;

/// Sends events to every subscriber of the bus; a frontend that went away is not the
/// engine's problem. With a journal, each event is recorded first, synchronously: a
/// decision is on disk before its block starts, and a run's row exists before the run does.
/// Once every clone is gone, the bus is closed.
#[derive(Clone)]
pub struct Events {
    bus: Arc<Publisher>,
    journal: Option<Journal>,
    /// Why the journal stopped recording, once it has.
    unrecorded: Arc<std::sync::Mutex<Option<String>>>,
    /// The phase last reported, so each change is reported once.
    phase: Arc<std::sync::Mutex<Option<Phase>>>,
}

/// The bus as the engine holds it: closed when the engine lets go of it.
struct Publisher(Bus);

impl Drop for Publisher {
    fn drop(&mut self) {
        self.0.close();
    }
}

impl Events {
    pub fn new(bus: Bus) -> Self {
        Self {
            bus: Arc::new(Publisher(bus)),
            journal: None,
            unrecorded: Arc::default(),
            phase: Arc::default(),
        }
    }

    pub(crate) fn with_journal(mut self, journal: Journal) -> Self {
        self.journal = Some(journal);
        self
    }

    /// Events for a session whose history was meant to record but cannot: no block runs.
    pub(crate) fn with_broken_journal(self, why: String) -> Self {
        self.set_unrecorded(why);
        self
    }

    pub(crate) fn send(&self, event: Event) {
        let mut failed = None;
        if let Some(journal) = &self.journal
            && self.unrecorded().is_none()
            && let Err(why) = journal(&event)
        {
            self.set_unrecorded(why.clone());
            failed = Some(Event::Error {
                message: format!(
                    "history: {why}; no further block runs in this session, since it could \
                     not be recorded (history.enabled = false runs without a record)"
                ),
                id: None,
            });
        }
        self.bus.0.publish(failed, event);
    }

    /// Why blocks can no longer be recorded, once that is so.
    pub(super) fn unrecorded(&self) -> Option<String> {
        self.unrecorded.lock().map_or(None, |why| why.clone())
    }

    pub(super) fn set_unrecorded(&self, why: String) {
        if let Ok(mut slot) = self.unrecorded.lock() {
            slot.get_or_insert(why);
        }
    }

    /// Reports what the engine now does, when that changed. Waiting (`idle`) and the end
    /// (`done`) are events of their own; the phase after them is reported again.
    pub(super) fn phase(&self, phase: Phase) {
        let changed = self.phase.lock().is_ok_and(|mut last| {
            let changed = *last != Some(phase);
            *last = Some(phase);
            changed
        });
        if changed {
            self.send(Event::Phase { phase });
        }
    }

    pub(super) fn forget_phase(&self) {
        if let Ok(mut last) = self.phase.lock() {
            *last = None;
        }
    }

    pub(super) fn error(&self, message: impl Into<String>) {
        self.refuse(None, message);
    }

    /// An error that refuses the op with id `answering` (none when the op had no id).
    pub(super) fn refuse(&self, answering: Option<&str>, message: impl Into<String>) {
        self.send(Event::Error {
            message: message.into(),
            id: answering.map(str::to_string),
        });
    }

    pub(super) fn notice(&self, message: impl Into<String>) {
        self.send(Event::Notice {
            message: message.into(),
        });
    }

    /// A block's decision, answering the op with id `answering` when it was that op's.
    pub(super) fn decision(
        &self,
        block: &TurnBlock,
        scope: Option<Scope>,
        answering: Option<&str>,
    ) {
        if let Some(decided) = &block.decision {
            self.send(Event::Decision {
                block: block.id.clone(),
                decision: decided.kind,
                reason: decided.reason.clone(),
                source: decided.source,
                scope,
                code: decided.edited.clone(),
                id: answering.map(str::to_string),
            });
        }
    }
}
