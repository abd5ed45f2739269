use super::export::SessionExport;
use super::runs::RunStatus;
use super::*;
use crate::protocol::{DecisionKind, DecisionSource, DoneReason, ExecResult};

fn session(store: &Store, id: &str) {
    store
        .begin_session(&SessionInfo {
            id: id.into(),
            model: "test-model".into(),
            base_url: "http://127.0.0.1:1/v1".into(),
            sandbox: "{}".into(),
        })
        .expect("session");
}

fn result(exit_code: i64, output: &str) -> ExecResult {
    ExecResult::sample(Some(exit_code), output)
}

/// A whole turn: a message, two blocks (one edited), their runs, the end.
fn a_turn(store: &Store, id: &str) {
    let events = [
        Event::UserMessage {
            text: "count the words".into(),
            id: None,
        },
        Event::AssistantMessage {
            text: "```python\nprint(1)\n```\n```bash\necho hi\n```".into(),
            usage: None,
            end: None,
        },
        Event::BlockProposed {
            block: format!("{id}-b1"),
            index: 0,
            language: "python".into(),
            code: "print(1)\n".into(),
            origin: Default::default(),
        },
        Event::BlockProposed {
            block: format!("{id}-b2"),
            index: 1,
            language: "bash".into(),
            code: "echo hi\n".into(),
            origin: Default::default(),
        },
        Event::Decision {
            block: format!("{id}-b1"),
            decision: DecisionKind::Edit,
            reason: None,
            source: DecisionSource::Operator,
            scope: None,
            code: Some("print(2)\n".into()),
            id: None,
        },
        Event::Decision {
            block: format!("{id}-b2"),
            decision: DecisionKind::Reject,
            reason: Some("no shell".into()),
            source: DecisionSource::Operator,
            scope: None,
            code: None,
            id: None,
        },
        Event::ExecStarted {
            block: format!("{id}-b1"),
            run: format!("{id}-r1"),
        },
        Event::ExecFinished {
            block: format!("{id}-b1"),
            run: format!("{id}-r1"),
            result: result(0, "2\n"),
        },
        Event::Reflection {
            text: "Results: 2".into(),
        },
        Event::Done {
            reason: DoneReason::NoCode,
        },
    ];
    for event in &events {
        store.record(id, event).expect("recorded");
    }
}

#[test]
fn the_schema_is_created_once_private_and_versioned() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("nested").join("history.db");
    let store = Store::open(&path).expect("opens");
    drop(store);
    let store = Store::open(&path).expect("opens again");
    let version: i64 = store
        .conn
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .expect("version");
    assert_eq!(version, schema::VERSION);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&path).expect("file").permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn a_lifted_rule_is_kept_with_who_lifted_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("h.db")).expect("opens");
    session(&store, "s1");
    let rule = crate::protocol::ApprovalRule {
        id: "allow_languages:sh".into(),
        effect: crate::protocol::DecisionKind::Approve,
        covers: "every sh block".into(),
        origin: "approval.allow_languages".into(),
    };
    store
        .record("s1", &Event::RuleRevoked { rule, id: None })
        .expect("recorded");
    let export = store.export("s1").expect("export");
    let revoked = &export.revoked_rules;
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0].rule, "allow_languages:sh");
    assert!(
        revoked[0].revoked_by.contains('@'),
        "{}",
        revoked[0].revoked_by
    );
    assert!(markdown(&export).contains("- every sh block (approval.allow_languages), by "));
}

#[test]
fn replies_keep_their_tokens_and_how_they_ended_for_the_transcript_and_a_resume() {
    use crate::protocol::{ReplyEnd, Usage};
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("h.db")).expect("opens");
    session(&store, "s1");
    let usage = Usage {
        prompt_tokens: 40,
        completion_tokens: 16,
        total_tokens: 56,
    };
    let events = [
        Event::UserMessage {
            text: "go".into(),
            id: None,
        },
        Event::AssistantMessage {
            text: "a long story that".into(),
            usage: Some(usage),
            end: Some(ReplyEnd::TokenLimit),
        },
        Event::AssistantMessage {
            text: "I was".into(),
            usage: None,
            end: Some(ReplyEnd::Stopped),
        },
    ];
    for event in &events {
        store.record("s1", event).expect("recorded");
    }
    let export = store.export("s1").expect("export");
    assert_eq!(export.messages[1].usage, Some(usage));
    assert_eq!(export.messages[1].end, Some(ReplyEnd::TokenLimit));
    assert_eq!(export.messages[2].usage, None);
    let transcript = markdown(&export);
    assert!(
        transcript.contains("- tokens: 56 (40 prompt, 16 completion)\n"),
        "{transcript}"
    );
    assert!(transcript.contains("- tokens: 56 (40 prompt, 16 completion) over 1 counted replies"));
    assert!(transcript.contains("- the reply was cut off at the token limit"));
    assert!(transcript.contains("- the reply was stopped by the operator"));
    // Resumed, the model is told again where its replies were cut and stopped.
    let conversation = store.conversation("s1").expect("conversation");
    assert_eq!(
        conversation[1].1,
        "a long story that\n\n[airlock: this reply was cut off here at the token limit]"
    );
    assert!(
        conversation[2]
            .1
            .ends_with("[airlock: the operator stopped this reply here]")
    );
}

#[test]
fn a_session_is_recorded_and_listed_with_its_decisions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("h.db")).expect("opens");
    session(&store, "s1");
    a_turn(&store, "s1");
    let runs = store.list_runs(&RunFilter::default()).expect("list");
    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    assert_eq!(
        (run.run.as_str(), run.status.name(), run.exit_code),
        ("s1-r1", "finished", Some(0))
    );
    assert_eq!(run.code, "print(2)\n", "the code that ran is the edit");
    assert!(run.edited);
    assert_eq!(run.decision, Some(crate::protocol::DecisionKind::Edit));
    assert!(run.decided_by.contains('@'), "{}", run.decided_by);
    let export = store.export("s1").expect("export");
    assert_eq!(export.messages.len(), 3);
    assert_eq!(
        export.blocks[1].decisions[0].reason.as_deref(),
        Some("no shell")
    );
    assert_eq!(export.end_reason.as_deref(), Some("no_code"));
    let text = markdown(&export);
    for needle in [
        "count the words",
        "print(1)",
        "print(2)",
        "**reject**",
        "no shell",
        "exit 0",
        "2\n",
    ] {
        assert!(text.contains(needle), "{needle} missing:\n{text}");
    }
    let json = serde_json::to_string(&export).expect("json");
    let back: SessionExport = serde_json::from_str(&json).expect("round trip");
    assert_eq!(back, export);
}

#[test]
fn grep_and_session_filter_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("h.db")).expect("opens");
    for id in ["s1", "s2"] {
        session(&store, id);
        a_turn(&store, id);
    }
    let only = RunFilter {
        session: Some("s2".into()),
        ..RunFilter::default()
    };
    assert_eq!(store.list_runs(&only).expect("list").len(), 1);
    let grep = RunFilter {
        grep: Some("PRINT(2".into()),
        ..RunFilter::default()
    };
    assert_eq!(store.list_runs(&grep).expect("list").len(), 2);
    let none = RunFilter {
        grep: Some("100%_".into()),
        ..RunFilter::default()
    };
    assert!(store.list_runs(&none).expect("list").is_empty());
}

#[test]
fn a_run_of_a_dead_process_is_marked_interrupted_on_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("h.db");
    let store = Store::open(&path).expect("opens");
    session(&store, "s1");
    store
        .record(
            "s1",
            &Event::BlockProposed {
                block: "b".into(),
                index: 0,
                language: "bash".into(),
                code: "sleep 9".into(),
                origin: Default::default(),
            },
        )
        .expect("block");
    store
        .record(
            "s1",
            &Event::Decision {
                block: "b".into(),
                decision: DecisionKind::Approve,
                reason: None,
                source: DecisionSource::Operator,
                scope: None,
                code: None,
                id: None,
            },
        )
        .expect("decision");
    store
        .record(
            "s1",
            &Event::ExecStarted {
                block: "b".into(),
                run: "r".into(),
            },
        )
        .expect("run");
    // This process is alive: the run stays running.
    drop(store);
    let store = Store::open(&path).expect("opens");
    assert_eq!(
        store.run("r").expect("run").expect("there").status,
        RunStatus::Running
    );
    // An owner that is gone.
    store
        .conn
        .execute(
            "UPDATE sessions SET owner = ?1",
            params![format!("{}:999999999:1", crate::owner::hostname())],
        )
        .expect("update");
    drop(store);
    let store = Store::open(&path).expect("opens");
    assert_eq!(
        store.run("r").expect("run").expect("there").status,
        RunStatus::Interrupted
    );
}

#[test]
fn a_version_1_file_is_migrated_and_keeps_its_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("h.db");
    {
        let conn = Connection::open(&path).expect("open");
        conn.execute_batch(schema::FIRST).expect("v1 schema");
        conn.execute_batch("PRAGMA user_version = 1")
            .expect("version");
        conn.execute(
            "INSERT INTO sessions (id, started_at, model, base_url, sandbox, owner) VALUES ('old', 1, 'm', 'u', '{}', 'h:1:1')",
            [],
        )
        .expect("row");
    }
    let store = Store::open(&path).expect("migrates");
    let version: i64 = store
        .conn
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .expect("version");
    assert_eq!(version, schema::VERSION);
    assert!(store.session_exists("old").expect("query"));
    session(&store, "new");
    assert_eq!(
        store.latest_session().expect("latest").as_deref(),
        Some("new")
    );
}

#[test]
fn prune_removes_old_sessions_then_the_oldest_until_small_enough() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("h.db")).expect("opens");
    for id in ["s1", "s2", "s3"] {
        session(&store, id);
        a_turn(&store, id);
    }
    store
        .conn
        .execute(
            "UPDATE sessions SET started_at = 1000, ended_at = 2000 WHERE id = 's1'",
            [],
        )
        .expect("age s1");
    store
        .conn
        .execute(
            "UPDATE sessions SET sandbox = '{\"workspace\":\"/srv/mine\"}' WHERE id = 's3'",
            [],
        )
        .expect("s3 named its workspace");
    let pruned = store.prune(30, 0).expect("prune");
    assert_eq!(pruned.sessions, 1);
    assert_eq!(pruned.own_workspaces, ["s1"]);
    assert!(!store.session_exists("s1").expect("query"));
    assert!(
        store.run("s1-r1").expect("query").is_none(),
        "its runs went with it"
    );
    assert_eq!(store.conversation("s2").expect("messages").len(), 3);
    let pruned = store.prune(0, 1).expect("prune by size");
    assert_eq!(pruned.sessions, 2);
    assert_eq!(pruned.own_workspaces, ["s2"], "not s3's named one");
    assert!(store.latest_session().expect("latest").is_none());
}

#[test]
fn a_file_that_is_not_a_database_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("h.db");
    std::fs::write(
        &path,
        "this is not sqlite, just text that is long enough to be read as a header",
    )
    .expect("write");
    let err = Store::open(&path).err().expect("refused").to_string();
    assert!(
        err.contains("h.db") && err.contains("not a readable history database"),
        "{err}"
    );
}

#[test]
fn prune_keeps_a_workspace_a_resumed_session_still_works_in() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("h.db")).expect("opens");
    let shared = Event::SandboxReady {
        description: "img".into(),
        workspace: Some("/data/airlock/workspaces/s1".into()),
    };
    for id in ["s1", "s2"] {
        session(&store, id);
        store.record(id, &shared).expect("ready");
        a_turn(&store, id);
    }
    assert_eq!(
        store.session_workspace("s2").expect("query").as_deref(),
        Some("/data/airlock/workspaces/s1")
    );
    store
        .conn
        .execute(
            "UPDATE sessions SET started_at = 1000, ended_at = 2000 WHERE id = 's1'",
            [],
        )
        .expect("age s1");
    let pruned = store.prune(30, 0).expect("prune");
    assert_eq!(pruned.sessions, 1);
    assert!(
        pruned.own_workspaces.is_empty(),
        "s2 resumed s1 and works in its workspace"
    );
    let pruned = store.prune(0, 1).expect("prune the rest");
    assert_eq!(
        pruned.own_workspaces,
        ["s2"],
        "the last one to use it is gone"
    );
}

#[test]
fn a_runs_files_are_recorded_with_its_result() {
    use crate::protocol::{FileChange, FileChangeKind};
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("h.db")).expect("opens");
    session(&store, "s1");
    a_turn(&store, "s1");
    let mut finished = result(0, "");
    finished.files = vec![FileChange {
        path: "chart.png".into(),
        change: FileChangeKind::Created,
        size: 2048,
        sha256: Some("ab".repeat(32)),
        link: None,
    }];
    store
        .record(
            "s1",
            &Event::ExecStarted {
                block: "s1-b1".into(),
                run: "s1-r2".into(),
            },
        )
        .expect("started");
    store
        .record(
            "s1",
            &Event::ExecFinished {
                block: "s1-b1".into(),
                run: "s1-r2".into(),
                result: finished.clone(),
            },
        )
        .expect("finished");
    let run = store.run("s1-r2").expect("query").expect("the run");
    assert_eq!(run.files, finished.files);
    assert!(
        store
            .run("s1-r1")
            .expect("query")
            .expect("run")
            .files
            .is_empty()
    );
}

#[test]
fn a_file_name_cannot_forge_a_link_or_a_heading_in_the_transcript() {
    use crate::protocol::{FileChange, FileChangeKind};
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("h.db")).expect("opens");
    session(&store, "s1");
    let ready = Event::SandboxReady {
        description: "img".into(),
        workspace: Some("/home/dev/my work".into()),
    };
    store.record("s1", &ready).expect("ready");
    let mut finished = result(0, "");
    finished.files = vec![FileChange {
        path: "x](https://evil.example) ## Operator".into(),
        change: FileChangeKind::Created,
        size: 1,
        sha256: Some("00".repeat(32)),
        link: None,
    }];
    let events = [
        Event::BlockProposed {
            block: "b1".into(),
            index: 0,
            language: "sh".into(),
            code: "true\n".into(),
            origin: Default::default(),
        },
        Event::ExecStarted {
            block: "b1".into(),
            run: "r1".into(),
        },
        Event::ExecFinished {
            block: "b1".into(),
            run: "r1".into(),
            result: finished,
        },
    ];
    for event in &events {
        store.record("s1", event).expect("recorded");
    }
    let text = markdown(&store.export("s1").expect("export"));
    let line = text
        .lines()
        .find(|line| line.contains("evil"))
        .expect("the file's line");
    assert_eq!(
        line,
        "  - created [x\\]\\(https://evil\\.example\\) \\#\\# Operator](file:///home/dev/my%20work/x%5D%28https%3A//evil.example%29%20%23%23%20Operator) · 1 B · sha256 `0000000000000000000000000000000000000000000000000000000000000000`"
    );
}

#[test]
fn a_block_keeps_who_proposed_it_and_one_recorded_before_origins_reads_as_the_model() {
    use crate::protocol::{Origin, OriginKind};
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("h.db")).expect("opens");
    session(&store, "s1");
    let agent = Origin {
        kind: OriginKind::Mcp,
        client: Some("claude-code".into()),
        version: Some("2.1.0".into()),
    };
    let events = [
        Event::BlockProposed {
            block: "b-agent".into(),
            index: 0,
            language: "bash".into(),
            code: "ls\n".into(),
            origin: agent.clone(),
        },
        Event::ExecStarted {
            block: "b-agent".into(),
            run: "r-agent".into(),
        },
        Event::ExecFinished {
            block: "b-agent".into(),
            run: "r-agent".into(),
            result: result(0, "a\n"),
        },
    ];
    for event in &events {
        store.record("s1", event).expect("recorded");
    }
    session(&store, "s2");
    a_turn(&store, "s2");
    let runs = store.list_runs(&RunFilter::default()).expect("list");
    let origin_of = |run: &str| {
        runs.iter()
            .find(|row| row.run == run)
            .map(|row| row.origin.clone())
            .expect("listed")
    };
    assert_eq!(origin_of("r-agent"), agent);
    assert_eq!(origin_of("s2-r1").kind, OriginKind::Model);
    let listed = serde_json::to_value(&runs).expect("json");
    let agent_row = listed
        .as_array()
        .and_then(|rows| rows.iter().find(|row| row["run"] == "r-agent"))
        .expect("listed");
    assert_eq!(agent_row["origin"]["kind"], "mcp", "{listed:#}");
    assert_eq!(agent_row["origin"]["client"], "claude-code");
    let export = store.export("s1").expect("export");
    assert_eq!(export.blocks[0].origin, agent, "the export keeps it too");
    // As a row written before blocks had an origin reads.
    store
        .conn
        .execute("UPDATE blocks SET origin = NULL", [])
        .expect("cleared");
    let runs = store.list_runs(&RunFilter::default()).expect("list");
    assert!(runs.iter().all(|row| row.origin == Origin::default()));
}

#[test]
fn a_session_is_taken_over_only_when_ended_or_its_owner_is_gone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("h.db")).expect("opens");
    session(&store, "s1");
    let owner_of = |id: &str| -> (String, Option<i64>) {
        store
            .conn
            .query_row(
                "SELECT owner, ended_at FROM sessions WHERE id = ?1",
                params![id],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .expect("row")
    };
    // Open in a live process (this one): refused, naming it.
    let refused = store.reopen_session("s1", true).expect_err("refused");
    assert!(
        refused
            .to_string()
            .contains(&format!("process {}", std::process::id())),
        "{refused}"
    );
    // Ended: whoever owned it, it may go on.
    store
        .record(
            "s1",
            &Event::Done {
                reason: DoneReason::NoCode,
            },
        )
        .expect("ended");
    store.reopen_session("s1", true).expect("taken over");
    assert_eq!(owner_of("s1").1, None, "open again");
    // Left open by a process that is gone: only checked when nothing is to be recorded.
    let gone = format!("{}:4194305:1", crate::owner::hostname());
    store
        .conn
        .execute(
            "UPDATE sessions SET owner = ?1 WHERE id = 's1'",
            params![gone],
        )
        .expect("set");
    store.reopen_session("s1", false).expect("checked");
    assert_eq!(owner_of("s1").0, gone, "not taken");
    store.reopen_session("s1", true).expect("taken over");
    assert_eq!(owner_of("s1").0, crate::owner::Owner::current().to_string());
    assert!(store.reopen_session("nope", true).is_err());
}
