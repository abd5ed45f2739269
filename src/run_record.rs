//! A run as every view shows it: made from the events as it happens (`starting`, then its
//! output and end), or from its row in the history (`store::RunRow::into_record`).

use std::time::{SystemTime, UNIX_EPOCH};

use crate::protocol::{ExecResult, FileChange, Outcome};
use crate::view::BlockState;

/// How a run ended, as the screen shows it: the same whether it comes from this session's
/// result or from an earlier session's row in the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ending {
    pub outcome: Outcome,
    pub duration_ms: u64,
    /// What the program wrote, in bytes, before any cut.
    pub output_bytes: u64,
    /// The output was cut at the limit.
    pub truncated: bool,
    pub workspace_full: bool,
}

impl From<&ExecResult> for Ending {
    fn from(result: &ExecResult) -> Self {
        Self {
            outcome: result.outcome(),
            duration_ms: result.duration_ms,
            output_bytes: result.output_bytes,
            truncated: result.truncated,
            workspace_full: result.workspace_full,
        }
    }
}

/// One run, as the history pane and an opened run show it.
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
    /// How it ended; none while it runs, or when airlock stopped before it ended.
    pub ending: Option<Ending>,
    /// The workspace's files it created, changed or removed.
    pub files: Vec<FileChange>,
    /// What the operator was warned of about them (`files::warnings`).
    pub file_warnings: Vec<String>,
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
            ending: None,
            files: Vec::new(),
            file_warnings: Vec::new(),
        }
    }

    /// `HH:MM:SS` and the zone, in local time.
    pub fn clock(&self) -> String {
        crate::clock::local_clock(self.started_seconds())
    }

    /// The date, time and zone, in local time.
    pub fn date_time(&self) -> String {
        crate::clock::local_date_time(self.started_seconds())
    }

    fn started_seconds(&self) -> i64 {
        self.started
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64)
    }
}
