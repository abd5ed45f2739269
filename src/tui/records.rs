//! A run as the screen keeps it: this session's as they happen, earlier ones from the
//! history.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::protocol::ExecResult;

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
