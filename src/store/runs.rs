//! Runs as the history lists them: typed rows, the one query that reads them, and their
//! outcome as every view shows it.

use std::time::{Duration, UNIX_EPOCH};

use rusqlite::params;
use serde::{Deserialize, Serialize};

use super::{Result, Store};
use crate::protocol::{DecisionKind, FileChange, Origin, Outcome, from_wire_name, wire_name};
use crate::run_record::{Ending, RunRecord};

/// Where a run is: still going, ended with a result, or cut off (airlock went away).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RunStatus {
    Running,
    Finished,
    Interrupted,
}

impl RunStatus {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Finished => "finished",
            Self::Interrupted => "interrupted",
        }
    }
}

/// One run as `history list` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRow {
    pub(crate) session: String,
    pub(crate) run: String,
    pub(crate) block: String,
    pub(crate) language: String,
    /// The code as the model proposed it.
    pub(crate) proposed: String,
    /// The code that ran (the edited version when there was an edit).
    pub(crate) code: String,
    pub(crate) edited: bool,
    /// The decision that let it run.
    pub(crate) decision: Option<DecisionKind>,
    pub(crate) decided_by: String,
    pub(crate) status: RunStatus,
    pub(crate) exit_code: Option<i64>,
    pub(crate) timed_out: bool,
    pub(crate) oom_killed: bool,
    pub(crate) truncated: bool,
    pub(crate) cancelled: bool,
    pub(crate) output: String,
    pub(crate) output_bytes: u64,
    pub(crate) duration_ms: Option<u64>,
    pub(crate) started_at: u64,
    /// The container it ran in (short id); empty while running.
    pub(crate) container: String,
    /// /workspace was full when it ended.
    #[serde(default)]
    pub(crate) workspace_full: bool,
    /// The workspace's files it created, changed or removed, by path.
    #[serde(default)]
    pub(crate) files: Vec<FileChange>,
    /// Why `files` may miss some (the walk after the run was cut).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) files_incomplete: Option<String>,
    /// What the operator was warned of about its files when it ended: the list incomplete,
    /// files host tools act on by themselves, links that point out of the workspace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) file_warnings: Vec<String>,
    /// Who proposed its block.
    #[serde(default)]
    pub(crate) origin: Origin,
}

/// Which runs to list.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    pub session: Option<String>,
    /// Case-insensitive text in the code or the output.
    pub grep: Option<String>,
    /// Only this run.
    pub run: Option<String>,
    pub limit: Option<usize>,
}

impl RunRow {
    /// The run as every view shows it.
    pub(crate) fn into_record(self) -> RunRecord {
        let row = self;
        let ending = row.outcome().map(|outcome| Ending {
            outcome,
            duration_ms: row.duration_ms.unwrap_or(0),
            output_bytes: row.output_bytes,
            truncated: row.truncated,
            workspace_full: row.workspace_full,
        });
        RunRecord {
            decision: format!(
                "{} ({})",
                row.decision.map_or("", DecisionKind::name),
                row.decided_by
            ),
            started: UNIX_EPOCH + Duration::from_secs(row.started_at),
            session: row.session,
            run: row.run,
            block: row.block,
            language: row.language,
            proposed: row.proposed,
            code: row.code,
            edited: row.edited,
            output: row.output,
            ending,
            files: row.files,
            file_warnings: row.file_warnings,
        }
    }

    /// How it ended; `None` while it runs or when it was cut off.
    pub(crate) fn outcome(&self) -> Option<Outcome> {
        (self.status == RunStatus::Finished).then(|| {
            Outcome::of(
                self.exit_code,
                self.timed_out,
                self.oom_killed,
                self.cancelled,
            )
        })
    }

    /// Its outcome, or where it is when it has none.
    pub(crate) fn state(&self) -> String {
        self.outcome()
            .map_or_else(|| self.status.name().to_string(), Outcome::label)
    }
}

impl Store {
    /// Runs, newest first.
    pub fn list_runs(&self, filter: &RunFilter) -> Result<Vec<RunRow>> {
        let grep = filter.grep.as_ref().map(|text| {
            format!(
                "%{}%",
                text.replace('\\', "\\\\")
                    .replace('%', "\\%")
                    .replace('_', "\\_")
            )
        });
        let mut statement = self.conn.prepare(
            "SELECT r.session, r.id, r.block, b.language, r.code, r.edited,
                    COALESCE(d.kind, ''), COALESCE(d.decided_by, ''), r.status, r.exit_code, COALESCE(r.timed_out, 0),
                    COALESCE(r.oom_killed, 0), COALESCE(r.truncated, 0), COALESCE(r.cancelled, 0), COALESCE(r.output, ''),
                    COALESCE(r.output_bytes, 0), r.duration_ms, r.started_at, b.code, COALESCE(r.container, ''),
                    COALESCE(r.workspace_full, 0), r.files_incomplete, b.origin
             FROM runs r JOIN blocks b ON b.id = r.block
             LEFT JOIN decisions d ON d.id = (SELECT MAX(id) FROM decisions WHERE block = r.block AND source != 'stop_on_failure')
             WHERE (?1 IS NULL OR r.session = ?1) AND (?4 IS NULL OR r.id = ?4)
               AND (?2 IS NULL OR r.code LIKE ?2 ESCAPE '\\' OR r.output LIKE ?2 ESCAPE '\\')
             ORDER BY r.started_at DESC, r.rowid DESC
             LIMIT ?3",
        )?;
        let limit = filter.limit.map_or(-1, |n| n as i64);
        let rows =
            statement.query_map(params![filter.session, grep, limit, filter.run], run_row)?;
        let mut runs: Vec<RunRow> = rows.collect::<rusqlite::Result<_>>()?;
        self.attach_files(&mut runs)?;
        Ok(runs)
    }

    /// Each run's changed files, from one prepared query.
    fn attach_files(&self, runs: &mut [RunRow]) -> Result<()> {
        let mut statement = self.conn.prepare_cached(
            "SELECT path, change, size, sha256, link FROM run_files WHERE run = ?1 ORDER BY path",
        )?;
        for run in runs {
            let rows = statement.query_map(params![run.run], |row| {
                Ok(FileChange {
                    path: row.get(0)?,
                    change: from_wire_name(&row.get::<_, String>(1)?)
                        .unwrap_or(crate::protocol::FileChangeKind::Changed),
                    size: row.get::<_, i64>(2)? as u64,
                    sha256: row.get(3)?,
                    link: row.get(4)?,
                })
            })?;
            run.files = rows.collect::<rusqlite::Result<_>>()?;
            run.file_warnings =
                crate::files::warnings::warnings(&run.files, run.files_incomplete.as_deref());
        }
        Ok(())
    }

    /// The files a run changed, as its result says.
    pub(super) fn record_files(&self, run: &str, files: &[FileChange]) -> Result<()> {
        let mut statement = self.conn.prepare_cached(
            "INSERT INTO run_files (run, path, change, size, sha256, link) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for file in files {
            statement.execute(params![
                run,
                file.path,
                wire_name(&file.change),
                file.size as i64,
                file.sha256,
                file.link
            ])?;
        }
        Ok(())
    }

    /// One run by id.
    pub(crate) fn run(&self, id: &str) -> Result<Option<RunRow>> {
        let filter = RunFilter {
            run: Some(id.to_string()),
            ..RunFilter::default()
        };
        Ok(self.list_runs(&filter)?.into_iter().next())
    }
}

/// A block's `origin` column: NULL (recorded before blocks had one) is the model's.
pub(super) fn origin_from_column(json: Option<String>) -> Origin {
    json.and_then(|json| serde_json::from_str(&json).ok())
        .unwrap_or_default()
}

fn run_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RunRow> {
    Ok(RunRow {
        session: row.get(0)?,
        run: row.get(1)?,
        block: row.get(2)?,
        language: row.get(3)?,
        code: row.get(4)?,
        edited: row.get(5)?,
        decision: from_wire_name(&row.get::<_, String>(6)?),
        decided_by: row.get(7)?,
        status: from_wire_name(&row.get::<_, String>(8)?).unwrap_or(RunStatus::Interrupted),
        exit_code: row.get(9)?,
        timed_out: row.get(10)?,
        oom_killed: row.get(11)?,
        truncated: row.get(12)?,
        cancelled: row.get(13)?,
        output: row.get(14)?,
        output_bytes: row.get::<_, i64>(15)? as u64,
        duration_ms: row.get::<_, Option<i64>>(16)?.map(|ms| ms as u64),
        started_at: row.get::<_, i64>(17)? as u64,
        proposed: row.get(18)?,
        container: row.get(19)?,
        workspace_full: row.get(20)?,
        files: Vec::new(),
        files_incomplete: row.get(21)?,
        file_warnings: Vec::new(),
        origin: origin_from_column(row.get(22)?),
    })
}
