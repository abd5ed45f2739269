//! The history: every session, message, block, decision and run, in one SQLite file in the
//! data directory (WAL mode, private to the user). The engine's events are recorded as they
//! happen, synchronously, so a decision is committed before its block starts and a run row
//! exists from its start; a run left `running` by a process that died is marked
//! `interrupted` the next time the store is opened.

mod event_log;
mod export;
mod runs;
mod schema;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, params};

use crate::owner::Owner;
use crate::protocol::{
    Event, ExecResult, ReplyEnd, Usage, from_wire_name, reply_for_model, wire_name,
};
pub(crate) use export::markdown;
pub use runs::RunFilter;
pub(crate) use runs::RunRow;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StoreError(String);

impl StoreError {
    fn at(path: &Path, what: &str, err: impl std::fmt::Display) -> Self {
        Self(format!("the history file {} {what}: {err}", path.display()))
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(err: rusqlite::Error) -> Self {
        Self(format!("history database error: {err}"))
    }
}

type Result<T> = std::result::Result<T, StoreError>;

/// What a new session is recorded with. No key and no auth header is ever among it.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub id: String,
    pub model: String,
    pub base_url: String,
    /// The sandbox settings, as JSON.
    pub sandbox: String,
}

/// What `history prune` removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pruned {
    pub(crate) sessions: usize,
    /// The removed sessions that had their own workspace under the data directory (not a
    /// user-named `sandbox.workspace`): those workspaces can go too.
    pub(crate) own_workspaces: Vec<String>,
    pub(crate) bytes_before: u64,
    pub(crate) bytes_after: u64,
}

pub struct Store {
    conn: Connection,
    /// Who decides as "operator": user@host.
    operator: String,
}

/// Seconds since the epoch.
fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl Store {
    /// `$XDG_DATA_HOME/airlock/history.db`.
    pub(crate) fn default_path() -> anyhow::Result<PathBuf> {
        Ok(crate::config::data_dir()?.join("history.db"))
    }

    /// The configured history: `history.file`, or the default path.
    pub(crate) fn open_configured(config: &crate::config::HistoryConfig) -> anyhow::Result<Self> {
        let path = match &config.file {
            Some(path) => path.clone(),
            None => Self::default_path()?,
        };
        Ok(Self::open(&path)?)
    }

    /// Opens (creating it private to the user) and migrates the history, and marks runs of
    /// dead processes interrupted.
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|err| StoreError::at(path, "cannot be created", err))?;
        }
        create_private(path)?;
        let conn =
            Connection::open(path).map_err(|err| StoreError::at(path, "cannot be opened", err))?;
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let mode = wal_mode(&conn).map_err(|err| {
            StoreError::at(
                path,
                "is not a readable history database (move it away to start a new one)",
                err,
            )
        })?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::at(path, "cannot use WAL mode", mode));
        }
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        schema::migrate(&conn).map_err(|err| StoreError::at(path, "cannot be migrated", err))?;
        let store = Self {
            conn,
            operator: operator_name(),
        };
        store.mark_interrupted()?;
        Ok(store)
    }

    pub fn begin_session(&self, info: &SessionInfo) -> Result<()> {
        self.conn.execute(
            "INSERT INTO sessions (id, started_at, model, base_url, sandbox, owner) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![info.id, now(), info.model, info.base_url, info.sandbox, Owner::current().to_string()],
        )?;
        Ok(())
    }

    /// Takes over the recorded session `id` to continue it (`run --resume`, `resume`): it
    /// becomes this process's, open again. Refused, naming the owner, while the session is
    /// open in an airlock process that lives (or may: one on another host cannot be
    /// judged). With `claim` false (no history is written) it is only checked.
    pub fn reopen_session(&self, id: &str, claim: bool) -> Result<()> {
        let row: Option<(String, Option<i64>)> = self
            .conn
            .query_row(
                "SELECT owner, ended_at FROM sessions WHERE id = ?1",
                params![id],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?;
        let Some((owner, ended_at)) = row else {
            return Err(StoreError(format!(
                "no session `{id}` in the history; `airlock history list` shows the ids"
            )));
        };
        if ended_at.is_none()
            && let Some(running) = Owner::parse(&owner).filter(|owner| !owner.is_dead())
        {
            return Err(StoreError(format!(
                "session `{id}` is still open in airlock process {} on {}; end it there \
                 before continuing it here",
                running.pid, running.host
            )));
        }
        if !claim {
            return Ok(());
        }
        // Only if nobody took it since it was read: of two at once, one gets it.
        let taken = self.conn.execute(
            "UPDATE sessions SET owner = ?3, ended_at = NULL, end_reason = NULL \
             WHERE id = ?1 AND owner = ?2 AND ended_at IS ?4",
            params![id, owner, Owner::current().to_string(), ended_at],
        )?;
        if taken != 1 {
            return Err(StoreError(format!(
                "session `{id}` was taken over by another airlock process just now"
            )));
        }
        Ok(())
    }

    /// Records what an event says, in its own transaction, before the engine goes on.
    pub fn record(&self, session: &str, event: &Event) -> Result<()> {
        match event {
            Event::SandboxReady {
                description,
                workspace,
            } => {
                self.conn.execute(
                    "UPDATE sessions SET sandbox_ready = ?2, workspace = ?3 WHERE id = ?1",
                    params![session, description, workspace],
                )?;
            }
            Event::UserMessage { text, .. } => self.message(session, "user", text, None, None)?,
            Event::AssistantMessage { text, usage, end } => {
                self.message(session, "assistant", text, *usage, *end)?
            }
            Event::Reflection { text } => self.message(session, "results", text, None, None)?,
            Event::BlockProposed {
                block,
                index,
                language,
                code,
                origin,
            } => {
                let origin = serde_json::to_string(origin).ok();
                self.conn.execute(
                    "INSERT INTO blocks (id, session, idx, language, code, hash, proposed_at, origin) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![block, session, *index as i64, language, code, crate::ids::short_hash(code), now(), origin],
                )?;
            }
            Event::Decision {
                block,
                decision,
                reason,
                source,
                scope,
                code,
                ..
            } => {
                let decided_by = match source {
                    crate::protocol::DecisionSource::Operator => self.operator.clone(),
                    other => wire_name(other),
                };
                self.conn.execute(
                    "INSERT INTO decisions (block, kind, source, decided_by, reason, scope, edited_code, decided_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![block, wire_name(decision), wire_name(source), decided_by, reason, scope.as_ref().map(wire_name), code, now()],
                )?;
            }
            Event::RuleRevoked { rule, .. } => {
                self.conn.execute(
                    "INSERT INTO revoked_rules (session, rule, covers, origin, revoked_by, revoked_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![session, rule.id, rule.covers, rule.origin, self.operator, now()],
                )?;
            }
            Event::ExecStarted { block, run } => self.run_started(session, block, run)?,
            Event::ExecFinished { run, result, .. } => self.run_finished(run, result)?,
            Event::Done { reason } => {
                self.conn.execute(
                    "UPDATE sessions SET ended_at = ?2, end_reason = ?3 WHERE id = ?1",
                    params![session, now(), wire_name(reason)],
                )?;
            }
            _ => {}
        }
        Ok(())
    }

    /// One message of the conversation; a model reply also with its tokens and how it
    /// ended.
    fn message(
        &self,
        session: &str,
        role: &str,
        text: &str,
        usage: Option<Usage>,
        end: Option<ReplyEnd>,
    ) -> Result<()> {
        self.conn.execute(
            "INSERT INTO messages (session, role, content, at, prompt_tokens, completion_tokens, total_tokens, reply_end)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                session,
                role,
                text,
                now(),
                usage.map(|u| u.prompt_tokens as i64),
                usage.map(|u| u.completion_tokens as i64),
                usage.map(|u| u.total_tokens as i64),
                end.as_ref().map(wire_name)
            ],
        )?;
        Ok(())
    }

    /// A run's row from its start, with the code that runs: the edited code when the block's
    /// decision was an edit.
    fn run_started(&self, session: &str, block: &str, run: &str) -> Result<()> {
        self.conn.execute(
            "INSERT INTO runs (id, session, block, code, edited, status, started_at)
             SELECT ?1, ?2, b.id, COALESCE(d.edited_code, b.code), d.edited_code IS NOT NULL, 'running', ?4
             FROM blocks b LEFT JOIN decisions d ON d.id = (SELECT MAX(id) FROM decisions WHERE block = b.id AND kind != 'skip')
             WHERE b.id = ?3",
            params![run, session, block, now()],
        )?;
        Ok(())
    }

    /// The run's row and the files it changed, together: a savepoint, since a bulk import
    /// may already be inside a transaction.
    fn run_finished(&self, run: &str, result: &ExecResult) -> Result<()> {
        self.conn.execute_batch("SAVEPOINT run_finished")?;
        let recorded = self
            .run_result(run, result)
            .and_then(|()| self.record_files(run, &result.files));
        let end = if recorded.is_ok() {
            "RELEASE run_finished"
        } else {
            "ROLLBACK TO run_finished; RELEASE run_finished"
        };
        self.conn.execute_batch(end)?;
        recorded
    }

    fn run_result(&self, run: &str, result: &ExecResult) -> Result<()> {
        self.conn.execute(
            "UPDATE runs SET status = 'finished', ended_at = ?2, exit_code = ?3, timed_out = ?4, oom_killed = ?5,
             truncated = ?6, cancelled = ?7, output = ?8, output_bytes = ?9, duration_ms = ?10, image = ?11,
             container_restarted = ?12, container = ?13, workspace_full = ?14, files_incomplete = ?15
             WHERE id = ?1",
            params![
                run,
                now(),
                result.exit_code,
                result.timed_out,
                result.oom_killed,
                result.truncated,
                result.cancelled,
                result.output,
                result.output_bytes as i64,
                result.duration_ms as i64,
                result.image,
                result.container_restarted,
                result.container,
                result.workspace_full,
                result.files_incomplete
            ],
        )?;
        Ok(())
    }

    /// Runs `work` in one transaction (bulk imports, benchmarks).
    pub fn in_transaction<T>(&self, work: impl FnOnce(&Self) -> Result<T>) -> Result<T> {
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        match work(self) {
            Ok(value) => {
                self.conn.execute_batch("COMMIT")?;
                Ok(value)
            }
            Err(err) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                Err(err)
            }
        }
    }

    /// Runs still `running` whose airlock process is gone become `interrupted`.
    pub(crate) fn mark_interrupted(&self) -> Result<usize> {
        let mut statement = self.conn.prepare(
            "SELECT DISTINCT s.id, s.owner FROM runs r JOIN sessions s ON s.id = r.session WHERE r.status = 'running'",
        )?;
        let sessions: Vec<(String, String)> = statement
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let mut marked = 0;
        for (session, owner) in sessions {
            if Owner::parse(&owner).is_some_and(|owner| owner.is_dead()) {
                marked += self.conn.execute(
                    "UPDATE runs SET status = 'interrupted' WHERE session = ?1 AND status = 'running'",
                    params![session],
                )?;
                self.conn.execute(
                    "UPDATE sessions SET end_reason = COALESCE(end_reason, 'interrupted') WHERE id = ?1",
                    params![session],
                )?;
            }
        }
        Ok(marked)
    }

    /// The newest session's id.
    pub(crate) fn latest_session(&self) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row(
                "SELECT id FROM sessions ORDER BY started_at DESC, rowid DESC LIMIT 1",
                [],
                |row| row.get(0),
            )
            .optional()?)
    }

    /// A session's conversation as the model saw it: (role, content), results as the user.
    /// A session's messages as (role, content), a reply that was cut off or stopped with
    /// the note the model got after it.
    pub(crate) fn conversation(&self, session: &str) -> Result<Vec<(String, String)>> {
        let mut statement = self.conn.prepare(
            "SELECT role, content, reply_end FROM messages WHERE session = ?1 ORDER BY id",
        )?;
        let rows = statement.query_map(params![session], |row| {
            let (role, content): (String, String) = (row.get(0)?, row.get(1)?);
            let end: Option<String> = row.get(2)?;
            let end = end.and_then(|name| from_wire_name::<ReplyEnd>(&name));
            Ok((role, reply_for_model(&content, end)))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Retention: removes sessions that ended more than `keep_days` ago (0: keep all), then
    /// the oldest sessions until the file is under `max_bytes` (0: no limit). Sessions of
    /// live processes are never removed.
    pub(crate) fn prune(&self, keep_days: u64, max_bytes: u64) -> Result<Pruned> {
        let bytes_before = self.size()?;
        let mut removed = Vec::new();
        if keep_days > 0 {
            let cutoff = now() - (keep_days * 86_400) as i64;
            removed.extend(self.delete_sessions(
                "started_at < ?1 AND ended_at IS NOT NULL AND ended_at < ?1",
                params![cutoff],
            )?);
        }
        if max_bytes > 0 {
            self.conn
                .execute_batch("PRAGMA wal_checkpoint(TRUNCATE); VACUUM;")?;
            while self.size()? > max_bytes {
                let oldest: Option<String> = self
                    .conn
                    .query_row(
                        "SELECT id FROM sessions WHERE ended_at IS NOT NULL ORDER BY started_at, rowid LIMIT 1",
                        [],
                        |row| row.get(0),
                    )
                    .optional()?;
                let Some(oldest) = oldest else { break };
                removed.extend(self.delete_sessions("id = ?1", params![oldest])?);
                self.conn.execute_batch("VACUUM;")?;
            }
        }
        self.conn
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE); VACUUM;")?;
        let mut own_workspaces = Vec::new();
        for (id, own, workspace) in &removed {
            if *own && !self.workspace_in_use(workspace.as_deref())? {
                own_workspaces.push(id.clone());
            }
        }
        Ok(Pruned {
            sessions: removed.len(),
            own_workspaces,
            bytes_before,
            bytes_after: self.size()?,
        })
    }

    /// Deletes the sessions `condition` selects; returns each one's id, whether it had its
    /// own workspace (its recorded settings name none; unreadable settings count as named),
    /// and where that was.
    fn delete_sessions(
        &self,
        condition: &str,
        params: impl rusqlite::Params,
    ) -> Result<Vec<(String, bool, Option<String>)>> {
        let sql = format!(
            "DELETE FROM sessions WHERE {condition} RETURNING id,
             json_valid(sandbox) AND json_extract(sandbox, '$.workspace') IS NULL, workspace"
        );
        let mut statement = self.conn.prepare(&sql)?;
        let rows =
            statement.query_map(params, |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// A session still in the history works in `workspace` (it resumed the removed one).
    fn workspace_in_use(&self, workspace: Option<&str>) -> Result<bool> {
        let Some(workspace) = workspace else {
            return Ok(false);
        };
        Ok(self.conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM sessions WHERE workspace = ?1)",
            params![workspace],
            |row| row.get(0),
        )?)
    }

    /// Where a session's /workspace was on the host, when the history knows.
    pub(crate) fn session_workspace(&self, session: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row(
                "SELECT workspace FROM sessions WHERE id = ?1",
                params![session],
                |row| row.get(0),
            )
            .optional()?
            .flatten())
    }

    /// The database's size in bytes.
    fn size(&self) -> Result<u64> {
        let pages: i64 = self
            .conn
            .query_row("PRAGMA page_count", [], |row| row.get(0))?;
        let page: i64 = self
            .conn
            .query_row("PRAGMA page_size", [], |row| row.get(0))?;
        Ok((pages * page) as u64)
    }

    pub(crate) fn session_exists(&self, id: &str) -> Result<bool> {
        Ok(self
            .conn
            .query_row("SELECT 1 FROM sessions WHERE id = ?1", params![id], |_| {
                Ok(())
            })
            .optional()?
            .is_some())
    }
}

/// Switches to WAL. Two processes creating the file at once can find it locked for a
/// moment, and SQLite does not wait for that by itself here, so this waits.
fn wal_mode(conn: &Connection) -> rusqlite::Result<String> {
    let mut attempts = 0;
    loop {
        match conn.query_row("PRAGMA journal_mode=WAL", [], |row| row.get(0)) {
            Err(rusqlite::Error::SqliteFailure(err, _))
                if matches!(
                    err.code,
                    rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                ) && attempts < 200 =>
            {
                attempts += 1;
                std::thread::sleep(Duration::from_millis(25));
            }
            other => return other,
        }
    }
}

/// The file is created with mode 0600 before SQLite opens it, so it is never readable by
/// others, not even for a moment.
fn create_private(path: &Path) -> Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(|err| StoreError::at(path, "cannot be created", err))?;
    let mode = std::fs::metadata(path)
        .map_err(|err| StoreError::at(path, "cannot be read", err))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|err| StoreError::at(path, "cannot be made private", err))?;
    }
    Ok(())
}

/// `user@host`, for decisions the operator made.
fn operator_name() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| format!("uid{}", rustix::process::getuid().as_raw()));
    format!("{user}@{}", crate::owner::hostname())
}

#[cfg(test)]
mod tests;
