//! The history end to end: real sessions against real Docker, recorded in a real SQLite file,
//! read back with `airlock history`; a process killed mid-run, two writers at once, a
//! broken database file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};

use common::{Home, run_with_stdin, stderr};
use serde_json::Value;

const DEMO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/demo.toml");

fn demo_run(home: &Home) -> Output {
    let mut command = home.airlock();
    command.args([
        "run",
        "--scripted",
        DEMO,
        "--approve",
        "all",
        "--prompt",
        "count the words",
        "--json",
    ]);
    run_with_stdin(command, "")
}

fn history(home: &Home, args: &[&str]) -> Output {
    let mut command = home.airlock();
    command.arg("history").args(args);
    run_with_stdin(command, "")
}

fn runs(home: &Home, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["list", "--json"];
    all.extend_from_slice(args);
    let output = history(home, &all);
    assert!(output.status.success(), "{}", stderr(&output));
    serde_json::from_slice::<Vec<Value>>(&output.stdout).expect("a JSON array")
}

fn session_of(output: &Output) -> String {
    let first = String::from_utf8_lossy(&output.stdout)
        .lines()
        .next()
        .unwrap_or("")
        .to_string();
    let event: Value = serde_json::from_str(&first).expect("session_started");
    event["session"].as_str().expect("session id").to_string()
}

#[test]
fn every_run_of_a_session_is_listed_and_exported() {
    let home = Home::new();
    let output = demo_run(&home);
    assert!(output.status.success(), "{}", stderr(&output));
    let session = session_of(&output);
    let listed = runs(&home, &["--session", &session]);
    assert_eq!(listed.len(), 5);
    for field in [
        "session",
        "run",
        "block",
        "language",
        "code",
        "decision",
        "status",
        "exit_code",
        "output",
    ] {
        assert!(listed[0].get(field).is_some(), "history list lacks {field}");
    }
    // Newest first.
    let exits: Vec<Value> = listed.iter().map(|run| run["exit_code"].clone()).collect();
    assert_eq!(
        exits,
        [
            Value::from(0),
            Value::from(0),
            Value::from(0),
            Value::from(1),
            Value::from(0)
        ]
    );
    assert!(
        listed
            .iter()
            .all(|run| run["status"] == "finished" && run["decision"] == "approve")
    );
    // Each block came from the session's own model, and the record says so.
    assert!(
        listed
            .iter()
            .all(|run| run["origin"] == serde_json::json!({"kind": "model"})),
        "{listed:#?}"
    );
    let proposed: Vec<Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|event| event["type"] == "block_proposed")
        .collect();
    assert_eq!(proposed.len(), 5);
    assert!(
        proposed
            .iter()
            .all(|event| event["origin"]["kind"] == "model")
    );
    let container = listed[0]["container"].as_str().unwrap();
    assert_eq!(
        container.len(),
        12,
        "the short id of the container each run ran in"
    );
    assert!(
        listed.iter().all(|run| run["container"] == container),
        "one container served the session"
    );
    assert!(
        listed[3]["output"]
            .as_str()
            .unwrap()
            .contains("no attribute 'top'")
    );
    let grep = runs(&home, &["--grep", "MOST_COMMON"]);
    assert_eq!(grep.len(), 1);

    let md = history(&home, &["export", &session, "--format", "md"]);
    assert!(md.status.success());
    let md = String::from_utf8_lossy(&md.stdout);
    for needle in [
        "count the words",
        "counts.top(5)",
        "most_common(5)",
        "**approve** by flag",
        "exit 1",
        "wrote report.json",
        "wrote chart.png",
    ] {
        assert!(
            md.contains(needle),
            "{needle} missing from the transcript:\n{md}"
        );
    }
    let json = history(&home, &["export", &session, "--format", "json"]);
    let export: Value = serde_json::from_slice(&json.stdout).expect("json export");
    assert_eq!(export["runs"].as_array().map(Vec::len), Some(5));
    assert_eq!(export["model"], format!("scripted ({DEMO})"));
    let shown = history(&home, &["show", listed[3]["run"].as_str().unwrap()]);
    assert!(String::from_utf8_lossy(&shown.stdout).contains("AttributeError"));
    let missing = history(&home, &["show", "r-nope"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(stderr(&missing).contains("r-nope"));
}

#[test]
fn a_run_cut_off_by_kill_9_is_there_and_marked_interrupted() {
    let home = Home::new();
    let script = common::script(
        &home,
        "[[reply]]\ncontent = \"```sh\\necho started; sleep 300\\n```\"\n",
    );
    let mut command = home.airlock();
    command
        .args([
            "run",
            "--scripted",
            script.to_str().unwrap(),
            "--approve",
            "all",
            "--prompt",
            "go",
            "--json",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = command.spawn().expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let mut session = String::new();
    for line in BufReader::new(stdout).lines() {
        let event: Value = serde_json::from_str(&line.expect("line")).expect("event");
        if event["type"] == "session_started" {
            session = event["session"].as_str().unwrap().to_string();
        }
        if event["type"] == "exec_output" {
            break;
        }
    }
    Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status()
        .expect("kill");
    child.wait().expect("wait");
    // The next airlock to open the history sees the run's owner is gone.
    let listed = runs(&home, &["--session", &session]);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["status"], "interrupted");
    assert_eq!(listed[0]["code"], "echo started; sleep 300\n");
    assert_eq!(listed[0]["decision"], "approve");
}

#[test]
fn two_sessions_at_once_are_both_recorded() {
    let home = Home::new();
    let outputs: Vec<Output> = std::thread::scope(|scope| {
        let first = scope.spawn(|| demo_run(&home));
        let second = scope.spawn(|| demo_run(&home));
        vec![first.join().unwrap(), second.join().unwrap()]
    });
    for output in &outputs {
        assert!(output.status.success(), "{}", stderr(output));
        assert!(!stderr(output).contains("history"), "{}", stderr(output));
    }
    for output in &outputs {
        assert_eq!(runs(&home, &["--session", &session_of(output)]).len(), 5);
    }
    assert_eq!(runs(&home, &[]).len(), 10);
}

#[test]
fn a_broken_history_file_runs_no_block_unrecorded_and_loses_nothing() {
    let home = Home::new();
    let file = home.data_dir().join("history.db");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, vec![0x5a; 8192]).unwrap();
    let output = demo_run(&home);
    let said = stderr(&output);
    assert!(
        said.contains("history unavailable") && said.contains("no block will run"),
        "{said}"
    );
    let events = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        events
            .lines()
            .filter(|l| l.contains("\"exec_started\""))
            .count(),
        0,
        "a block ran unrecorded"
    );
    assert!(events.contains("the history cannot record it"), "{events}");
    let listed = history(&home, &["list"]);
    assert_eq!(listed.status.code(), Some(125));
    assert!(
        stderr(&listed).contains("history.db"),
        "{}",
        stderr(&listed)
    );
    assert_eq!(
        std::fs::read(&file).unwrap(),
        vec![0x5a; 8192],
        "the file is left as it was"
    );
}

#[test]
fn prune_applies_the_configured_limits() {
    let home = Home::new();
    assert!(demo_run(&home).status.success());
    assert!(demo_run(&home).status.success());
    let nothing = history(&home, &["prune"]);
    assert!(String::from_utf8_lossy(&nothing.stdout).contains("nothing to prune"));
    assert_eq!(runs(&home, &[]).len(), 10);
    let pruned = history(&home, &["prune", "-c", "history.max_size=1KiB"]);
    assert!(pruned.status.success(), "{}", stderr(&pruned));
    assert!(String::from_utf8_lossy(&pruned.stdout).contains("Removed 2 session(s)"));
    assert!(runs(&home, &[]).is_empty());
}

#[test]
fn prune_removes_the_workspaces_of_the_sessions_it_prunes_and_no_other() {
    let home = Home::new();
    let old = demo_run(&home);
    assert!(old.status.success(), "{}", stderr(&old));
    let kept = demo_run(&home);
    assert!(kept.status.success(), "{}", stderr(&kept));
    let (old, kept) = (session_of(&old), session_of(&kept));
    let workspaces = home.data_dir().join("workspaces");
    assert!(workspaces.join(&old).join("report.json").is_file());
    assert!(workspaces.join(&kept).join("report.json").is_file());
    // The first session ended long ago.
    let db = rusqlite::Connection::open(home.data_dir().join("history.db")).unwrap();
    db.execute(
        "UPDATE sessions SET started_at = 1000, ended_at = 2000 WHERE id = ?1",
        [&old],
    )
    .unwrap();
    drop(db);
    let pruned = history(&home, &["prune", "-c", "history.keep_days=30"]);
    assert!(pruned.status.success(), "{}", stderr(&pruned));
    assert!(
        String::from_utf8_lossy(&pruned.stdout).contains("Removed 1 session(s) and 1 workspace(s)"),
        "{}",
        String::from_utf8_lossy(&pruned.stdout)
    );
    assert!(
        !workspaces.join(&old).exists(),
        "the pruned session's workspace is gone"
    );
    assert!(
        workspaces.join(&kept).join("report.json").is_file(),
        "the kept one stays"
    );
    assert_eq!(runs(&home, &[]).len(), 5);
}

/// `YYYY-MM-DD HH:MM:SS` of `seconds` since the epoch shifted by `offset` seconds, computed
/// by hand (Howard Hinnant's days-to-civil), independently of airlock's own formatting.
fn wall_clock(seconds: i64, offset: i64) -> String {
    let local = seconds + offset;
    let (days, rest) = (local.div_euclid(86_400), local.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

fn history_in_zone(home: &Home, zone: &str, args: &[&str]) -> Output {
    let mut command = home.airlock();
    command.env("TZ", zone).arg("history").args(args);
    run_with_stdin(command, "")
}

#[test]
fn history_times_are_shown_in_the_zone_tz_names() {
    let home = Home::new();
    let output = demo_run(&home);
    assert!(output.status.success(), "{}", stderr(&output));
    let session = session_of(&output);
    let listed = runs(&home, &["--session", &session]);
    let export: Value =
        serde_json::from_slice(&history(&home, &["export", &session, "--format", "json"]).stdout)
            .unwrap();
    let session_start = export["started_at"].as_i64().unwrap();
    for (zone, offset, label) in [
        ("Asia/Tokyo", 9 * 3600, "+09:00 JST"),
        ("Asia/Kolkata", 5 * 3600 + 1800, "+05:30 IST"),
    ] {
        let list = history_in_zone(&home, zone, &["list", "--session", &session]);
        assert!(list.status.success(), "{}", stderr(&list));
        let list = String::from_utf8_lossy(&list.stdout);
        for run in &listed {
            let started = run["started_at"].as_i64().unwrap();
            let expected = format!(
                "{} {label}  {session}  {}",
                wall_clock(started, offset),
                run["run"].as_str().unwrap()
            );
            assert!(
                list.contains(&expected),
                "{zone}: {expected} missing:\n{list}"
            );
        }
        let md = history_in_zone(&home, zone, &["export", &session, "--format", "md"]);
        let md = String::from_utf8_lossy(&md.stdout);
        let started = format!("- started: {} {label}\n", wall_clock(session_start, offset));
        assert!(md.contains(&started), "{zone}: {started} missing:\n{md}");
        let first_run = listed.last().unwrap();
        let run_line = format!(
            "- run {} in container {}, started {} {label}:",
            first_run["run"].as_str().unwrap(),
            first_run["container"].as_str().unwrap(),
            wall_clock(first_run["started_at"].as_i64().unwrap(), offset)
        );
        assert!(md.contains(&run_line), "{zone}: {run_line} missing:\n{md}");
    }
    // The database keeps UTC: the data does not change with the zone.
    let tokyo = history_in_zone(&home, "Asia/Tokyo", &["list", "--json"]);
    let kolkata = history_in_zone(&home, "Asia/Kolkata", &["list", "--json"]);
    assert_eq!(tokyo.stdout, kolkata.stdout);
    // A zone airlock cannot read is said, and times are then UTC.
    let unknown = history_in_zone(&home, "Nowhere/Atlantis", &["list"]);
    assert!(unknown.status.success());
    assert!(
        stderr(&unknown).contains("local time zone is unknown"),
        "{}",
        stderr(&unknown)
    );
    assert!(String::from_utf8_lossy(&unknown.stdout).contains(" +00:00 UTC  "));
}

#[test]
fn each_run_records_the_files_it_created_changed_and_removed() {
    let home = Home::new();
    let script = common::script(
        &home,
        r#"
[[reply]]
content = '''
```sh
printf 'first\n' > notes.txt
printf 'old\n' > old.txt
mkdir -p out && printf 'a,b\n1,2\n' > out/table.csv
```
'''

[[reply]]
content = '''
```sh
printf 'second\n' >> notes.txt
rm old.txt
touch out/table.csv
ln -s notes.txt latest
```
'''

[[reply]]
content = "Done."
"#,
    );
    let mut command = home.airlock();
    command.args(["run", "--scripted"]).arg(&script);
    command.args(["--approve", "all", "--prompt", "write files", "--json"]);
    let output = run_with_stdin(command, "");
    assert!(output.status.success(), "{}", stderr(&output));
    let session = session_of(&output);
    let listed = runs(&home, &["--session", &session]);
    let changes = |run: &Value| -> Vec<(String, String)> {
        run["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|file| (file["change"].to_string(), file["path"].to_string()))
            .map(|(change, path)| (change.replace('"', ""), path.replace('"', "")))
            .collect()
    };
    let pairs = |items: &[(&str, &str)]| -> Vec<(String, String)> {
        items
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    };
    assert_eq!(
        changes(&listed[1]),
        pairs(&[
            ("created", "notes.txt"),
            ("created", "old.txt"),
            ("created", "out/table.csv"),
        ])
    );
    assert_eq!(
        changes(&listed[0]),
        pairs(&[
            ("created", "latest"),
            ("changed", "notes.txt"),
            ("removed", "old.txt"),
        ]),
        "a touch that leaves the content alone is no change"
    );

    // The digest is of what the run left, as the host holds it.
    let workspace = home.data_dir().join("workspaces").join(&session);
    let notes = std::fs::read(workspace.join("notes.txt")).unwrap();
    let digest = sha256_hex(&notes);
    let shown = history(&home, &["show", listed[0]["run"].as_str().unwrap()]);
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(shown.contains("--- workspace files (3) ---"), "{shown}");
    assert!(
        shown.contains(&format!("changed  notes.txt  13 B  sha256 {digest}")),
        "{shown}"
    );
    assert!(shown.contains("created  latest -> notes.txt"), "{shown}");
    assert!(shown.contains("removed  old.txt"), "{shown}");

    let md = history(&home, &["export", &session, "--format", "md"]);
    let md = String::from_utf8_lossy(&md.stdout);
    let link = format!("](file://{}/notes.txt)", workspace.display());
    assert!(md.contains(&link), "{link} missing from:\n{md}");
    assert!(
        md.contains(&format!("workspace: {}", workspace.display())),
        "{md}"
    );
}

fn sha256_hex(bytes: &[u8]) -> String {
    let mut command = Command::new("sha256sum");
    command.stdin(Stdio::piped()).stdout(Stdio::piped());
    let mut child = command.spawn().unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), bytes).unwrap();
    let output = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}
