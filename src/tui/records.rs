//! A run as the screen keeps it: this session's as they happen, earlier ones from the
//! history.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::protocol::ExecResult;
use crate::view::BlockState;

/// One run, for the history pane.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRecord {
    /// The session the run belongs to; earlier sessions' runs come from the history.
    pub session: String,
    pub run: String,
    pub block: String,
    pub language: String,
    /// The code as the model proposed it.
    pub proposed: String,
    /// The code that ran.
    pub code: String,
    pub edited: bool,
    pub decision: String,
    pub started: SystemTime,
    pub output: String,
    pub result: Option<ExecResult>,
}

impl RunRecord {
    /// A run of this session as it starts, for the block it runs.
    pub(crate) fn starting(block: &BlockState, session: &str, run: &str) -> Self {
        let decision = block
            .decision
            .as_ref()
            .map(|decided| {
                format!(
                    "{} ({})",
                    crate::protocol::wire_name(&decided.kind),
                    crate::protocol::wire_name(&decided.source)
                )
            })
            .unwrap_or_default();
        Self {
            session: session.to_string(),
            run: run.to_string(),
            block: block.id.clone(),
            language: block.language.clone(),
            proposed: block.code.clone(),
            code: block.edited.clone().unwrap_or_else(|| block.code.clone()),
            edited: block.edited.is_some(),
            decision,
            started: SystemTime::now(),
            output: String::new(),
            result: None,
        }
    }

    /// `HH:MM:SS` and the zone, in local time.
    pub fn clock(&self) -> String {
        crate::store::clock::local_clock(self.started_seconds())
    }

    /// The date, time and zone, in local time.
    pub fn date_time(&self) -> String {
        crate::store::clock::local_date_time(self.started_seconds())
    }

    fn started_seconds(&self) -> i64 {
        self.started
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64)
    }
}
