//! The history's schema, versioned with `PRAGMA user_version`: each migration runs once, in
//! order, inside a transaction.

use rusqlite::Connection;

const MIGRATIONS: &[&str] = &[
    FIRST, SECOND, THIRD, FOURTH, FIFTH, SIXTH, SEVENTH, EIGHTH, NINTH, TENTH,
];

/// 1: sessions, messages, blocks, decisions, runs.
pub(crate) const FIRST: &str = "CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        started_at INTEGER NOT NULL,
        ended_at INTEGER,
        end_reason TEXT,
        model TEXT NOT NULL,
        base_url TEXT NOT NULL,
        sandbox TEXT NOT NULL,
        sandbox_ready TEXT,
        owner TEXT NOT NULL
    );
    CREATE TABLE messages (
        id INTEGER PRIMARY KEY,
        session TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        role TEXT NOT NULL,
        content TEXT NOT NULL,
        at INTEGER NOT NULL
    );
    CREATE INDEX messages_by_session ON messages(session, id);
    CREATE TABLE blocks (
        id TEXT PRIMARY KEY,
        session TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        idx INTEGER NOT NULL,
        language TEXT NOT NULL,
        code TEXT NOT NULL,
        hash TEXT NOT NULL,
        proposed_at INTEGER NOT NULL
    );
    CREATE INDEX blocks_by_session ON blocks(session);
    CREATE TABLE decisions (
        id INTEGER PRIMARY KEY,
        block TEXT NOT NULL REFERENCES blocks(id) ON DELETE CASCADE,
        kind TEXT NOT NULL,
        source TEXT NOT NULL,
        decided_by TEXT NOT NULL,
        reason TEXT,
        scope TEXT,
        edited_code TEXT,
        decided_at INTEGER NOT NULL
    );
    CREATE INDEX decisions_by_block ON decisions(block);
    CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        session TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        block TEXT NOT NULL REFERENCES blocks(id) ON DELETE CASCADE,
        code TEXT NOT NULL,
        edited INTEGER NOT NULL DEFAULT 0,
        status TEXT NOT NULL CHECK (status IN ('running', 'finished', 'interrupted')),
        started_at INTEGER NOT NULL,
        ended_at INTEGER,
        exit_code INTEGER,
        timed_out INTEGER,
        oom_killed INTEGER,
        truncated INTEGER,
        cancelled INTEGER,
        container_restarted INTEGER,
        output TEXT,
        output_bytes INTEGER,
        duration_ms INTEGER,
        image TEXT
    );
    CREATE INDEX runs_by_session ON runs(session);
    CREATE INDEX runs_by_start ON runs(started_at);
    CREATE INDEX runs_by_status ON runs(status);";

/// 10: events a frontend fell behind on, numbered as they were published (the engine's bus
/// spills them here past its window; the frontend reads them back).
const TENTH: &str = "CREATE TABLE events (
        session TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        event TEXT NOT NULL,
        PRIMARY KEY (session, seq)
    ) WITHOUT ROWID;";

/// 9: who proposed each block (JSON of `protocol::Origin`; NULL: the session's model, as
/// every block was before).
const NINTH: &str = "ALTER TABLE blocks ADD COLUMN origin TEXT;";

/// 8: why a run's file list is incomplete, when it is.
const EIGHTH: &str = "ALTER TABLE runs ADD COLUMN files_incomplete TEXT;";

/// 7: the host directory each session's /workspace was (a resumed session shares the one it
/// continues), and the files each run created, changed or removed there.
const SEVENTH: &str = "ALTER TABLE sessions ADD COLUMN workspace TEXT;
    CREATE TABLE run_files (
        id INTEGER PRIMARY KEY,
        run TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        path TEXT NOT NULL,
        change TEXT NOT NULL,
        size INTEGER NOT NULL,
        sha256 TEXT,
        link TEXT
    );
    CREATE INDEX run_files_by_run ON run_files(run, path);";

/// 6: a model reply's tokens, as the server counted them, and how it ended when it did not
/// end as the model meant (`token_limit`, `stopped`).
const SIXTH: &str = "ALTER TABLE messages ADD COLUMN prompt_tokens INTEGER;
    ALTER TABLE messages ADD COLUMN completion_tokens INTEGER;
    ALTER TABLE messages ADD COLUMN total_tokens INTEGER;
    ALTER TABLE messages ADD COLUMN reply_end TEXT;";

/// 5: approval rules the operator lifted during a session.
const FIFTH: &str = "CREATE TABLE revoked_rules (
        id INTEGER PRIMARY KEY,
        session TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        rule TEXT NOT NULL,
        covers TEXT NOT NULL,
        origin TEXT NOT NULL,
        revoked_by TEXT NOT NULL,
        revoked_at INTEGER NOT NULL
    );
    CREATE INDEX revoked_rules_by_session ON revoked_rules(session);";

/// 4: whether /workspace was full when the run ended.
const FOURTH: &str = "ALTER TABLE runs ADD COLUMN workspace_full INTEGER;";

/// 3: the container each run ran in.
const THIRD: &str = "ALTER TABLE runs ADD COLUMN container TEXT;";

/// 2: a resumed session names the one it continues.
const SECOND: &str = "ALTER TABLE sessions ADD COLUMN resumed_from TEXT;
    CREATE INDEX sessions_by_start ON sessions(started_at);";

/// The schema version this build writes.
pub(crate) const VERSION: i64 = MIGRATIONS.len() as i64;

pub(crate) fn migrate(conn: &Connection) -> Result<(), String> {
    let current: i64 = conn
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(|err| err.to_string())?;
    if current > VERSION {
        return Err(format!(
            "it was written by a newer airlock (schema {current}, this one knows {VERSION})"
        ));
    }
    for (done, migration) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let version = done as i64 + 1;
        let sql = format!("BEGIN IMMEDIATE; {migration}; PRAGMA user_version = {version}; COMMIT;");
        if let Err(err) = conn.execute_batch(&sql) {
            let _ = conn.execute_batch("ROLLBACK");
            // Another process may have migrated it meanwhile.
            let now: i64 = conn
                .query_row("PRAGMA user_version", [], |row| row.get(0))
                .unwrap_or(0);
            if now >= version {
                continue;
            }
            return Err(format!("migration {version} failed: {err}"));
        }
    }
    Ok(())
}
