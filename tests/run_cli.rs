//! `airlock run` end to end: the real binary, a scripted model or a real HTTP server speaking
//! the OpenAI wire format, decisions as JSON lines on stdin, and the real Docker daemon.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::model_server::{Behaviour, ModelServer};
use common::{Home, containers_labelled, of_type};
use serde_json::{Value, json};

/// A running `airlock run --json`, its events read as they come.
struct Live {
    child: Child,
    stdin: Option<ChildStdin>,
    events: mpsc::Receiver<Value>,
    seen: Vec<Value>,
}

impl Live {
    fn start(mut command: Command) -> Self {
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("spawn airlock");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let value = serde_json::from_str(&line)
                    .unwrap_or_else(|err| panic!("not a JSON event ({err}): {line}"));
                if tx.send(value).is_err() {
                    break;
                }
            }
        });
        Self {
            stdin: child.stdin.take(),
            child,
            events: rx,
            seen: Vec::new(),
        }
    }

    /// The next event of `kind`, within a minute.
    fn next(&mut self, kind: &str) -> Value {
        loop {
            let event = self
                .events
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("no {kind} event; saw {:#?}", self.seen));
            self.seen.push(event.clone());
            if event["type"] == kind {
                return event;
            }
        }
    }

    fn decide(&mut self, decision: Value) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{decision}").expect("write decision");
        stdin.flush().expect("flush");
    }

    fn send_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{line}").expect("write line");
    }

    /// Closes stdin, waits for the end, and returns every event and the exit status.
    fn finish(mut self) -> (Vec<Value>, ExitStatus, String) {
        drop(self.stdin.take());
        while let Ok(event) = self.events.recv_timeout(Duration::from_secs(60)) {
            self.seen.push(event);
        }
        let output = self.child.wait_with_output().expect("wait");
        (
            self.seen,
            output.status,
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }
}

/// `airlock run --json --approve all` with the scripted model of `script`.
fn approve_all(home: &Home, script: &std::path::Path, prompt: &str) -> Command {
    let script = script.to_str().unwrap();
    home.run_json(&["--scripted", script, "--approve", "all", "--prompt", prompt])
}

/// `airlock run --json` against the test model server.
fn served(home: &Home, server: &ModelServer, args: &[&str]) -> Command {
    let mut command = home.run_json(&["--base-url", &server.base_url]);
    command.args(args);
    command
}

/// Each decision event's decision and source, in order.
fn decisions(events: &[Value]) -> Vec<(&str, &str)> {
    of_type(events, "decision")
        .iter()
        .map(|d| {
            (
                d["decision"].as_str().unwrap(),
                d["source"].as_str().unwrap(),
            )
        })
        .collect()
}

/// The contract's frame: session_started first, done last, nothing after it.
fn assert_framed(events: &[Value], reason: &str) {
    assert_eq!(
        events.first().map(|e| e["type"].clone()),
        Some(json!("session_started")),
        "{events:#?}"
    );
    let last = events.last().expect("events");
    assert_eq!(last["type"], "done", "{events:#?}");
    assert_eq!(last["reason"], reason, "{events:#?}");
}

fn fenced(language: &str, code: &str) -> String {
    format!("Let me run this.\n\n```{language}\n{code}\n```\n")
}

#[test]
fn the_demo_script_runs_to_the_end_with_its_failure_and_fix() {
    let home = Home::new();
    let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/demo.toml");
    let command = approve_all(&home, demo.as_ref(), "count words");
    let (events, status, stderr) = Live::start(command).finish();
    assert!(status.success(), "{status:?} {stderr}");
    assert!(stderr.contains("WARNING: --approve all"), "{stderr}");
    assert_framed(&events, "no_code");
    let exits: Vec<Value> = of_type(&events, "exec_finished")
        .iter()
        .map(|e| e["exit_code"].clone())
        .collect();
    assert_eq!(exits, [json!(0), json!(1), json!(0), json!(0), json!(0)]);
    let finished = of_type(&events, "exec_finished");
    assert!(
        finished[1]["output"]
            .as_str()
            .unwrap()
            .contains("no attribute 'top'")
    );
    assert!(
        finished[2]["output"]
            .as_str()
            .unwrap()
            .contains("wrote report.json")
    );
    for field in [
        "block",
        "run",
        "timed_out",
        "oom_killed",
        "truncated",
        "output_bytes",
        "duration_ms",
        "image",
    ] {
        assert!(
            finished[0].get(field).is_some(),
            "exec_finished lacks {field}"
        );
    }
    // matplotlib draws in the read-only image without a warning: its fonts are there, and
    // its config and cache directory (under HOME=/tmp) is writable.
    assert_eq!(finished[4]["output"], "wrote chart.png\n");
    assert_eq!(of_type(&events, "reflection").len(), 3);
    let session = events[0]["session"].as_str().unwrap();
    let workspace = home.data_dir().join("workspaces").join(session);
    let report = std::fs::read_to_string(workspace.join("report.json"))
        .expect("the block's file is in the workspace");
    assert!(report.contains("\"fox\": 4"), "{report}");
    let chart = std::fs::read(workspace.join("chart.png")).expect("the chart is in the workspace");
    assert!(chart.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(containers_labelled(&format!("airlock.session={session}")).is_empty());
}

#[test]
fn a_supervised_session_against_an_openai_compatible_server() {
    let server = ModelServer::start(vec![
        Behaviour::Reply(fenced(
            "python",
            "import os\nprint('marker', 6 * 7)\nprint('key visible:', any('sk-e2e' in v for v in os.environ.values()))",
        )),
        Behaviour::Reply("The answer is 42. Done.".into()),
    ]);
    let home = Home::new();
    let mut command = served(
        &home,
        &server,
        &["--model", "e2e-model", "--prompt", "compute"],
    );
    command.env("OPENAI_API_KEY", "sk-e2e");
    let mut live = Live::start(command);
    let proposed = live.next("block_proposed");
    assert_eq!(proposed["language"], "python");
    assert_eq!(proposed["index"], 0);
    assert!(
        proposed["code"]
            .as_str()
            .unwrap()
            .contains("print('marker'")
    );
    live.decide(json!({"block": proposed["block"], "decision": "approve"}));
    let output = live.next("exec_output");
    assert_eq!(output["stream"], "stdout");
    let (events, status, stderr) = live.finish();
    assert!(status.success(), "{status:?} {stderr}");
    assert_framed(&events, "no_code");
    let decision = of_type(&events, "decision")[0];
    assert_eq!(
        (decision["decision"].as_str(), decision["source"].as_str()),
        (Some("approve"), Some("operator"))
    );
    assert!(!of_type(&events, "assistant_delta").is_empty());

    let requests = server.requests();
    assert_eq!(requests.len(), 2, "one model call per turn");
    assert_eq!(requests[0].header("authorization"), Some("Bearer sk-e2e"));
    assert_eq!(requests[0].body["model"], "e2e-model");
    let results = requests[1].last_message();
    assert!(
        results.contains("marker 42"),
        "the output reached the model: {results}"
    );
    assert!(
        results.contains("key visible: False"),
        "the API key never enters the container: {results}"
    );
    assert!(
        requests[0].messages()[0].1.contains("/workspace"),
        "the system prompt explains the sandbox"
    );
}

#[test]
fn reject_edit_and_skip_from_stdin_reach_the_model() {
    let reply = "Three steps.\n\n```bash\necho original-one\n```\n\n```python\nprint('original-two')\n```\n\n```sh\necho three\n```\n".to_string();
    let server = ModelServer::start(vec![
        Behaviour::Reply(reply),
        Behaviour::Reply("Understood.".into()),
    ]);
    let home = Home::new();
    let command = served(
        &home,
        &server,
        &["--prompt", "go", "-c", "approval.stop_on_failure=false"],
    );
    let mut live = Live::start(command);
    let ids: Vec<Value> = (0..3)
        .map(|_| live.next("block_proposed")["block"].clone())
        .collect();
    live.send_line("this is not json");
    let error = live.next("error");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("not a JSON decision"),
        "{error}"
    );
    // Bytes that are not UTF-8 make a bad line, not the end of input: decisions still come.
    let stdin = live.stdin.as_mut().expect("stdin open");
    stdin
        .write_all(b"{\"block\": \"\xff\xfe\"}\n")
        .expect("write");
    stdin.flush().expect("flush");
    assert!(
        live.next("error")["message"]
            .as_str()
            .unwrap()
            .contains("not valid")
    );
    // A line's `id` comes back on what answers it: the refusal, the decision.
    live.decide(json!({"id": "op-1", "block": "b-nope", "decision": "approve"}));
    assert_eq!(live.next("error")["id"], "op-1");
    live.decide(json!({"id": "op-2", "block": ids[2], "decision": "skip"}));
    live.decide(json!({"block": ids[0], "decision": "reject", "reason": "no echo please"}));
    live.decide(json!({"block": ids[1], "decision": "edit", "code": "print('edited-two')\n"}));
    let (events, status, stderr) = live.finish();
    assert!(status.success(), "{status:?} {stderr}");
    assert_framed(&events, "no_code");
    let finished = of_type(&events, "exec_finished");
    assert_eq!(finished.len(), 1);
    assert!(
        finished[0]["output"]
            .as_str()
            .unwrap()
            .contains("edited-two")
    );
    let edit = of_type(&events, "decision")
        .into_iter()
        .find(|d| d["decision"] == "edit")
        .expect("edit decision");
    assert_eq!(edit["code"], "print('edited-two')\n");
    let by_block = |block: &Value| {
        of_type(&events, "decision")
            .into_iter()
            .find(|d| &d["block"] == block)
            .expect("a decision")
    };
    assert_eq!(by_block(&ids[2])["id"], "op-2");
    assert!(
        by_block(&ids[0]).get("id").is_none(),
        "no id was sent with it"
    );
    let results = server.requests()[1].last_message();
    for needle in [
        "no echo please",
        "print('edited-two')",
        "edited-two\n",
        "skipped",
    ] {
        assert!(
            results.contains(needle),
            "{needle} missing from what the model got:\n{results}"
        );
    }
    assert!(!results.contains("original-two"), "{results}");
}

#[test]
fn without_a_supervisor_blocks_are_rejected_and_the_run_says_so() {
    let server = ModelServer::start(vec![Behaviour::Reply(fenced("bash", "echo hi"))]);
    let home = Home::new();
    let command = served(&home, &server, &["--prompt", "go"]);
    let (events, status, _) = Live::start(command).finish();
    assert_eq!(status.code(), Some(1));
    assert_framed(&events, "no_supervisor");
    let decision = of_type(&events, "decision")[0];
    assert_eq!(decision["decision"], "reject");
    assert!(
        decision["reason"]
            .as_str()
            .unwrap()
            .contains("no supervisor")
    );
    assert!(of_type(&events, "exec_started").is_empty());
}

#[test]
fn approve_none_tells_the_model_why_nothing_ran() {
    let server = ModelServer::start(vec![
        Behaviour::Reply(fenced("python", "print(1)")),
        Behaviour::Reply("I will explain instead.".into()),
    ]);
    let home = Home::new();
    let command = served(&home, &server, &["--approve", "none", "--prompt", "go"]);
    let (events, status, _) = Live::start(command).finish();
    assert!(status.success());
    assert_framed(&events, "no_code");
    assert_eq!(of_type(&events, "decision")[0]["source"], "flag");
    assert!(
        server.requests()[1]
            .last_message()
            .contains("--approve none")
    );
}

#[test]
fn max_turns_and_an_exhausted_script_end_the_run_successfully() {
    let home = Home::new();
    let script = common::script(
        &home,
        "[[reply]]\ncontent = \"```sh\\necho one\\n```\"\n[[reply]]\ncontent = \"```sh\\necho two\\n```\"\n",
    );
    let script = script.to_str().unwrap();
    let command = home.run_json(&[
        "--scripted",
        script,
        "--approve",
        "all",
        "--max-turns",
        "1",
        "--prompt",
        "go",
    ]);
    let (events, status, _) = Live::start(command).finish();
    assert!(status.success());
    assert_framed(&events, "max_turns");
    let command = home.run_json(&["--scripted", script, "--approve", "all", "--prompt", "go"]);
    let (events, status, _) = Live::start(command).finish();
    assert!(status.success());
    assert_framed(&events, "script_exhausted");
    assert_eq!(of_type(&events, "exec_finished").len(), 2);
}

#[test]
fn a_model_server_that_fails_ends_the_run_with_a_clear_error() {
    let server = ModelServer::start(vec![Behaviour::Status(
        400,
        "model `nope` does not exist".into(),
    )]);
    let home = Home::new();
    let command = served(&home, &server, &["--prompt", "go"]);
    let (events, status, _) = Live::start(command).finish();
    assert_eq!(status.code(), Some(1));
    assert_framed(&events, "error");
    let error = of_type(&events, "error")[0]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        error.contains("HTTP 400") && error.contains("does not exist"),
        "{error}"
    );
}

#[test]
fn docker_unreachable_is_exit_125_with_an_error_event() {
    let home = Home::new();
    let mut command = home.run_json(&[
        "--scripted",
        concat!(env!("CARGO_MANIFEST_DIR"), "/assets/demo.toml"),
        "--prompt",
        "go",
    ]);
    command.env("DOCKER_HOST", "unix:///nonexistent/docker.sock");
    let (events, status, _) = Live::start(command).finish();
    assert_eq!(status.code(), Some(125));
    assert_framed(&events, "error");
    let error = of_type(&events, "error")[0]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(error.contains("Docker daemon"), "{error}");
}

fn interrupt(live: &Live) {
    let pid = live.child.id().to_string();
    Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill");
}

#[test]
fn ctrl_c_during_a_block_stops_the_block_and_the_session_goes_on() {
    let server = ModelServer::start(vec![
        Behaviour::Reply(fenced("bash", "echo started; setsid sleep 300 & sleep 300")),
        Behaviour::Reply("It was stopped; fine.".into()),
    ]);
    let home = Home::new();
    let command = served(&home, &server, &["--approve", "all", "--prompt", "go"]);
    let mut live = Live::start(command);
    let session = live.next("session_started")["session"]
        .as_str()
        .unwrap()
        .to_string();
    live.next("exec_output");
    interrupt(&live);
    let finished = live.next("exec_finished");
    assert_eq!(finished["cancelled"], true);
    assert_eq!(finished["exit_code"], Value::Null);
    let (events, status, stderr) = live.finish();
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("stopping the running block"), "{stderr}");
    assert_framed(&events, "no_code");
    assert!(
        server.requests()[1]
            .last_message()
            .contains("operator stopped the block")
    );
    assert!(containers_labelled(&format!("airlock.session={session}")).is_empty());
}

#[test]
fn ctrl_c_while_waiting_for_a_decision_ends_the_session_and_removes_the_container() {
    let server = ModelServer::start(vec![Behaviour::Reply(fenced("bash", "echo never"))]);
    let home = Home::new();
    let command = served(&home, &server, &["--prompt", "go"]);
    let mut live = Live::start(command);
    let session = live.next("session_started")["session"]
        .as_str()
        .unwrap()
        .to_string();
    live.next("block_proposed");
    interrupt(&live);
    // Stdin stays open until the end: its end would reject the block first.
    live.next("done");
    let (events, status, stderr) = live.finish();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert_framed(&events, "aborted");
    assert!(of_type(&events, "exec_started").is_empty());
    assert!(
        common::container_gone(&session),
        "the session's container is gone"
    );
}

#[test]
fn the_readable_transcript_shows_blocks_and_results_and_never_passes_escapes_through() {
    let home = Home::new();
    let script = common::script(
        &home,
        concat!(
            "[[reply]]\n",
            "content = \"Colours \\u001b[31mred\\u001b]0;pwned\\u0007 here.\\n\\n```python\\nprint('\\\\x1b[2J\\\\x1b]52;c;aGk=\\\\x07out')\\n```\\n\"\n",
            "[[reply]]\n",
            "content = \"Finished.\"\n",
        ),
    );
    let mut command = home.airlock();
    command.args([
        "run",
        "--scripted",
        script.to_str().unwrap(),
        "--approve",
        "all",
        "--prompt",
        "go",
    ]);
    let output = common::run_with_stdin(command, "");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", common::stderr(&output));
    assert!(
        !output.stdout.contains(&0x1b) && !output.stdout.contains(&0x07),
        "{stdout:?}"
    );
    assert!(
        !output.stderr.contains(&0x1b),
        "{:?}",
        common::stderr(&output)
    );
    for needle in [
        "── block 1 · python",
        "Colours",
        "out\n",
        "■ exit 0",
        "session ended: no_code",
    ] {
        assert!(stdout.contains(needle), "{needle} missing from:\n{stdout}");
    }
}

#[test]
fn bad_arguments_and_settings_are_named_before_anything_starts() {
    let home = Home::new();
    let missing = home.dir.path().join("absent.toml");
    let cases: [(&[&str], i32, &str); 4] = [
        (
            &["--scripted", missing.to_str().unwrap(), "--prompt", "go"],
            2,
            "absent.toml",
        ),
        (&["--prompt", "  "], 2, "--prompt is empty"),
        (
            &["--prompt", "go", "--base-url", "localhost:1234"],
            125,
            "not an http(s) URL",
        ),
        (
            &["--prompt", "go", "-c", "approval.allow_patterns=[\"(\"]"],
            125,
            "allow_patterns",
        ),
    ];
    for (args, code, needle) in cases {
        let mut command = home.airlock();
        command.arg("run").args(args);
        let output = common::run_with_stdin(command, "");
        let stderr = common::stderr(&output);
        assert_eq!(output.status.code(), Some(code), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert!(output.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn program_colours_never_reach_the_headless_output() {
    let home = Home::new();
    let script = common::script(
        &home,
        "[[reply]]\ncontent = \"```python\\nprint('\\\\x1b[31mred\\\\x1b[0m plain')\\n```\"\n[[reply]]\ncontent = \"ok\"\n",
    );
    let command = approve_all(&home, &script, "go");
    let (events, status, stderr) = Live::start(command).finish();
    assert!(status.success(), "{stderr}");
    let outputs = of_type(&events, "exec_output");
    let data: String = outputs
        .iter()
        .map(|e| e["data"].as_str().unwrap())
        .collect();
    assert_eq!(data, "red plain\n");
    assert_eq!(
        of_type(&events, "exec_finished")[0]["output"],
        "red plain\n"
    );
}

#[test]
fn every_c_applies_whether_it_stands_before_or_after_the_subcommand() {
    let home = Home::new();
    let script = common::script(
        &home,
        "[[reply]]\ncontent = \"```bash\\necho forbidden-word\\n```\\n\\n```bash\\necho allowed\\n```\"\n",
    );
    // `home.airlock()` gives `-c sandbox.image=...` first; the deny rule follows it, before
    // `run`; the memory limit comes after `run`.
    let mut command = home.airlock();
    command
        .args(["-c", "approval.deny_patterns=[\"forbidden\"]"])
        .args(["run", "--json", "-c", "sandbox.memory=64MiB"])
        .args(["--scripted", script.to_str().unwrap()])
        .args(["--approve", "all", "--prompt", "go"]);
    let (events, status, stderr) = Live::start(command).finish();
    assert!(status.success(), "{status:?} {stderr}");
    let decisions = decisions(&events);
    assert_eq!(
        decisions,
        [("reject", "rule"), ("approve", "flag")],
        "the deny rule given before `run` applies: {events:#?}"
    );
    let ready = of_type(&events, "sandbox_ready");
    let description = ready[0]["description"].as_str().unwrap();
    assert!(
        description.contains("64MiB"),
        "the -c after `run` applies: {description}"
    );
    assert!(
        description.starts_with(&common::test_image()),
        "the first -c applies too: {description}"
    );
    let finished = of_type(&events, "exec_finished");
    assert_eq!(finished.len(), 1, "{events:#?}");
    assert_eq!(finished[0]["output"], "allowed\n");
}

/// `airlock history ARGS` in this home, its stdout.
fn history_out(home: &Home, args: &[&str]) -> String {
    let mut command = home.airlock();
    command.arg("history").args(args);
    let output = common::run_with_stdin(command, "");
    assert!(output.status.success(), "{}", common::stderr(&output));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn a_block_left_waiting_at_the_end_of_stdin_is_rejected_by_no_supervisor_not_a_person() {
    let reply = "Two steps.\n\n```bash\necho first\n```\n\n```bash\necho second\n```\n";
    let server = ModelServer::start(vec![Behaviour::Reply(reply.into())]);
    let home = Home::new();
    let mut live = Live::start(served(&home, &server, &["--prompt", "go"]));
    let session = live.next("session_started")["session"]
        .as_str()
        .unwrap()
        .to_string();
    let first = live.next("block_proposed")["block"].clone();
    let second = live.next("block_proposed")["block"].clone();
    live.decide(json!({"block": first, "decision": "approve"}));
    let (events, status, stderr) = live.finish();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert_framed(&events, "no_supervisor");
    let sources: Vec<(Value, Value, Value)> = of_type(&events, "decision")
        .iter()
        .map(|d| {
            (
                d["block"].clone(),
                d["decision"].clone(),
                d["source"].clone(),
            )
        })
        .collect();
    assert_eq!(
        sources,
        [
            (first, json!("approve"), json!("operator")),
            (second, json!("reject"), json!("no_supervisor")),
        ]
    );

    let listed: Vec<Value> = serde_json::from_str(&history_out(
        &home,
        &["list", "--json", "--session", &session],
    ))
    .unwrap();
    assert_eq!(listed.len(), 1, "only the approved block ran: {listed:?}");
    assert!(listed[0]["decided_by"].as_str().unwrap().contains('@'));
    let export: Value = serde_json::from_str(&history_out(
        &home,
        &["export", &session, "--format", "json"],
    ))
    .unwrap();
    let rejected = &export["blocks"][1]["decisions"][0];
    assert_eq!(rejected["decision"], "reject", "{export:#}");
    assert_eq!(rejected["source"], "no_supervisor");
    assert_eq!(rejected["decided_by"], "no_supervisor");
    let md = history_out(&home, &["export", &session, "--format", "md"]);
    assert!(
        md.contains("**reject** by no supervisor"),
        "the transcript says nobody decided:\n{md}"
    );
}

#[test]
fn a_zsh_fence_runs_with_bash_and_a_console_transcript_is_not_offered() {
    let home = Home::new();
    let script = common::script(
        &home,
        concat!(
            "[[reply]]\n",
            "content = \"```console\\n$ echo from-transcript\\nfrom-transcript\\n```\\n\\n```zsh\\necho \\\"shell=${BASH_VERSION:+bash}\\\"\\n```\\n\"\n",
            "[[reply]]\ncontent = \"ok\"\n",
        ),
    );
    let command = approve_all(&home, &script, "go");
    let (events, status, stderr) = Live::start(command).finish();
    assert!(status.success(), "{stderr}");
    let proposed = of_type(&events, "block_proposed");
    assert_eq!(proposed.len(), 1, "{events:#?}");
    assert_eq!(proposed[0]["language"], "bash");
    assert_eq!(
        of_type(&events, "exec_finished")[0]["output"],
        "shell=bash\n"
    );
    let notice = of_type(&events, "notice")
        .into_iter()
        .find(|n| n["message"].as_str().unwrap().contains("not offered"))
        .expect("a notice for the transcript");
    assert!(
        notice["message"]
            .as_str()
            .unwrap()
            .contains("a terminal transcript (console)"),
        "{notice}"
    );
}

#[test]
fn a_bad_line_waiting_on_stdin_is_answered_after_session_started() {
    let home = Home::new();
    let script = common::script(&home, "[[reply]]\ncontent = \"Nothing to run.\"\n");
    let command = home.run_json(&["--scripted", script.to_str().unwrap(), "--prompt", "go"]);
    // The line is there before airlock starts, so it is read at once.
    let output = common::run_with_stdin(command, "this is not json\n");
    let events = common::json_events(&output);
    assert_framed(&events, "no_code");
    assert!(
        of_type(&events, "error")[0]["message"]
            .as_str()
            .unwrap()
            .contains("not a JSON decision"),
        "{events:#?}"
    );
}

#[test]
fn bidi_and_zero_width_characters_are_shown_in_the_transcript_and_the_history() {
    let home = Home::new();
    // A trojan-source line: the override makes `# ok` appear where it is not.
    let script = common::script(
        &home,
        concat!(
            "[[reply]]\n",
            "content = \"```python\\nname = 'admin\\u200b'\\nprint(name) \\u202e# ok\\n```\\n\"\n",
            "[[reply]]\n",
            "content = \"Finished.\"\n",
        ),
    );
    let mut command = home.airlock();
    let script = script.to_str().unwrap();
    command.args([
        "run",
        "--scripted",
        script,
        "--approve",
        "all",
        "--prompt",
        "go",
    ]);
    let output = common::run_with_stdin(command, "");
    let shown = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{}", common::stderr(&output));
    let raw = |text: &str| text.contains('\u{202e}') || text.contains('\u{200b}');
    assert!(!raw(&shown), "{shown}");
    assert!(
        shown.contains("<U+202E>") && shown.contains("<U+200B>"),
        "{shown}"
    );
    let sessions = history_out(&home, &["list", "--json"]);
    let listed: Value = serde_json::from_str(&sessions).expect("json");
    let session = listed[0]["session"]
        .as_str()
        .expect("a session")
        .to_string();
    for args in [
        vec!["list"],
        vec!["show", session.as_str()],
        vec!["export", session.as_str(), "--format", "md"],
    ] {
        let text = history_out(&home, &args);
        // `list` shows each run's first line, which holds the zero-width space.
        assert!(!raw(&text) && text.contains("<U+200B>"), "{args:?}: {text}");
    }
}

#[test]
fn a_rule_lifted_on_stdin_no_longer_decides_and_the_history_keeps_it() {
    // The reply trickles in, so the revocation is served before its block is ruled.
    let reply = "Listing the files now, one moment.\n\n```sh\necho lifted\n```\n";
    let server = ModelServer::start(vec![
        Behaviour::Trickle(reply.into(), Duration::from_millis(100)),
        Behaviour::Reply("Done.".into()),
    ]);
    let home = Home::new();
    let command = served(
        &home,
        &server,
        &["--prompt", "go", "-c", "approval.allow_languages=[\"sh\"]"],
    );
    let mut live = Live::start(command);
    let rules = live.next("rules");
    assert_eq!(rules["rules"][0]["id"], "allow_languages:sh", "{rules}");
    live.send_line(r#"{"revoke_rule": "allow_languages:sh"}"#);
    let revoked = live.next("rule_revoked");
    assert_eq!(revoked["rule"]["origin"], "approval.allow_languages");
    let block = live.next("block_proposed")["block"].clone();
    live.decide(json!({"block": block, "decision": "skip"}));
    let (events, status, stderr) = live.finish();
    assert!(status.success(), "{status:?} {stderr}");
    let decisions = decisions(&events);
    assert_eq!(
        decisions,
        [("skip", "operator")],
        "the lifted rule decided nothing"
    );
    let session = of_type(&events, "session_started")[0]["session"]
        .as_str()
        .unwrap()
        .to_string();
    let export = home
        .airlock()
        .args(["history", "export", &session, "--format", "json"])
        .output()
        .expect("export");
    let export: Value = serde_json::from_slice(&export.stdout).expect("json export");
    assert_eq!(
        export["revoked_rules"][0]["rule"], "allow_languages:sh",
        "{export}"
    );
}

#[test]
fn a_carriage_return_in_a_calls_code_cannot_draw_over_the_card() {
    // A hostile server hides the command behind `\r`: at a terminal the comment after it
    // would be drawn over the start of the line, gutter and command.
    let call = json!({"language": "bash", "code": "rm -rf ~/work\r# tidy the cache"});
    let server = ModelServer::start(vec![
        Behaviour::Calls(vec![("call_1", "run_code", call.to_string())]),
        Behaviour::Reply("Nothing ran; done.".into()),
    ]);
    let home = Home::new();
    let mut command = home.airlock();
    command.env_remove("OPENAI_API_KEY").args([
        "-c",
        "model.protocol=tools",
        "run",
        "--base-url",
        &server.base_url,
        "--approve",
        "none",
        "--prompt",
        "go",
    ]);
    let output = common::run_with_stdin(command, "");
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(
        printed.contains("   1 │ rm -rf ~/work␍# tidy the cache"),
        "{printed}\n{}",
        common::stderr(&output)
    );
    assert!(!printed.contains('\r'), "{printed:?}");
}

#[test]
fn run_resume_continues_the_same_session_with_its_workspace_and_refuses_one_still_open() {
    let home = Home::new();
    let writes = common::script(
        &home,
        concat!(
            "[[reply]]\n",
            "content = \"```python\\nopen('notes.txt', 'w').write('kept from before')\\n```\\n\"\n",
            "[[reply]]\n",
            "content = \"Written.\"\n",
        ),
    );
    let first = home.run_json(&[
        "--scripted",
        writes.to_str().unwrap(),
        "--approve",
        "all",
        "--prompt",
        "write it down",
    ]);
    let output = common::run_with_stdin(first, "");
    assert!(output.status.success(), "{}", common::stderr(&output));
    let events = common::json_events(&output);
    let session = events[0]["session"].as_str().expect("an id").to_string();
    assert!(
        events[0].get("resumed").is_none(),
        "a new session: {}",
        events[0]
    );

    // While a process owns the session, it cannot be continued elsewhere.
    let waits = common::script(
        &home,
        "[[reply]]\ncontent = \"```sh\\ncat notes.txt\\n```\\n\"\n[[reply]]\ncontent = \"Read.\"\n",
    );
    let script = waits.to_str().unwrap();
    let mut owner = Live::start(home.run_json(&[
        "--scripted",
        script,
        "--resume",
        &session,
        "--prompt",
        "read it back",
    ]));
    let started = owner.next("session_started");
    assert_eq!(started["session"], session.as_str());
    assert_eq!(started["resumed"], true);
    let block = owner.next("block_proposed")["block"].clone();
    let second = home
        .run_json(&[
            "--scripted",
            script,
            "--resume",
            &session,
            "--prompt",
            "again",
        ])
        .output()
        .expect("runs");
    assert_eq!(second.status.code(), Some(2), "{}", common::stderr(&second));
    assert!(
        common::stderr(&second).contains("still open in airlock process"),
        "{}",
        common::stderr(&second)
    );
    let unknown = home
        .run_json(&["--scripted", script, "--resume", "s-nope", "--prompt", "x"])
        .output()
        .expect("runs");
    assert_eq!(unknown.status.code(), Some(2));
    assert!(common::stderr(&unknown).contains("no session `s-nope` in the history"));

    // The continued session's block reads what the first part's block wrote.
    owner.decide(json!({"block": block, "decision": "approve"}));
    let finished = owner.next("exec_finished");
    assert_eq!(finished["output"], "kept from before", "{finished}");
    let (_, status, stderr) = owner.finish();
    assert!(status.success(), "{stderr}");
    let listed = home
        .airlock()
        .args(["history", "list", "--json", "--session", &session])
        .output()
        .expect("lists");
    let listed: Vec<Value> = serde_json::from_slice(&listed.stdout).expect("JSON");
    assert_eq!(
        listed.len(),
        2,
        "both parts' runs, in one session: {listed:#?}"
    );
}
