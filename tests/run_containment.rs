//! `airlock run --json` against hostile model output, end to end (the real binary, a real
//! HTTP server or the scripted model, the real Docker daemon and history file): a server
//! that streams a reply or a call's arguments without end, and blocks written with
//! lookalike or invisible characters to slip past approval rules.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Output;
use std::time::Duration;

use common::model_server::{Behaviour, ModelServer};
use common::{Home, json_events, of_type};
use serde_json::Value;

/// What `-c model.max_reply_bytes=64KiB` allows.
const BOUND: usize = 64 << 10;

/// `airlock run --json ARGS` in `home`, stdin empty; its events and output.
fn run(home: &Home, args: &[&str]) -> (Vec<Value>, Output) {
    let output = common::run_with_stdin(home.run_json(args), "");
    (json_events(&output), output)
}

/// `airlock run` against `server`, every block rejected by `--approve none`, replies cut at
/// [`BOUND`].
fn run_served(home: &Home, server: &ModelServer, extra: &[&str]) -> (Vec<Value>, Output) {
    let mut args = vec![
        "--base-url",
        &server.base_url,
        "--approve",
        "none",
        "--prompt",
        "go",
        "-c",
        "model.max_reply_bytes=64KiB",
    ];
    args.extend_from_slice(extra);
    run(home, &args)
}

fn the_end(events: &[Value]) -> &Value {
    events.last().expect("events")
}

/// The recorded session's messages: (role, content, end).
fn recorded_messages(home: &Home, session: &str) -> Vec<(String, String, Value)> {
    let mut command = home.airlock();
    command.args(["history", "export", session, "--format", "json"]);
    let output = common::run_with_stdin(command, "");
    assert!(output.status.success(), "{}", common::stderr(&output));
    let export: Value = serde_json::from_slice(&output.stdout).expect("json");
    export["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| {
            (
                m["role"].as_str().unwrap_or("").to_string(),
                m["content"].as_str().unwrap_or("").to_string(),
                m["end"].clone(),
            )
        })
        .collect()
}

/// The first reply was cut at the bound and said so, the server saw airlock hang up, and
/// the history keeps only what was kept.
fn assert_cut_at_the_bound(home: &Home, server: &ModelServer, events: &[Value]) -> String {
    let message = of_type(events, "assistant_message")[0];
    assert_eq!(message["end"], "token_limit", "{message}");
    let text = message["text"].as_str().unwrap();
    assert!(text.len() <= BOUND, "{} bytes kept", text.len());
    assert!(
        of_type(events, "notice").iter().any(|n| {
            let notice = n["message"].as_str().unwrap();
            notice.contains("model.max_reply_bytes") && notice.contains("64KiB")
        }),
        "a notice names the key and the bound"
    );
    let sent = server
        .client_went_away(Duration::from_secs(10))
        .expect("airlock closed the connection at the bound");
    assert!(sent > BOUND as u64, "{sent} bytes were sent");
    let session = events[0]["session"].as_str().unwrap();
    let messages = recorded_messages(home, session);
    let (_, kept, end) = messages
        .iter()
        .find(|(role, _, _)| role == "assistant")
        .expect("the reply is recorded");
    assert_eq!(kept, text, "the history holds what was kept");
    assert_eq!(end, "token_limit");
    let mut command = home.airlock();
    command.args(["history", "export", session, "--format", "md"]);
    let transcript = String::from_utf8(common::run_with_stdin(command, "").stdout).unwrap();
    assert!(
        transcript.contains("the reply was cut off at the token limit"),
        "{transcript}"
    );
    text.to_string()
}

/// The attack: a server that ignores max_tokens and streams one reply forever.
#[test]
fn a_reply_streamed_without_end_ends_at_max_reply_bytes_and_its_open_block_is_not_offered() {
    let server = ModelServer::start(vec![
        Behaviour::Endless {
            head: "First:\n```bash\necho before\n```\nNow:\n```python\n".into(),
            tail: "print('spam')\n".into(),
        },
        Behaviour::Reply("Done.".into()),
    ]);
    let home = Home::new();
    let (events, output) = run_served(&home, &server, &[]);
    assert!(output.status.success(), "{}", common::stderr(&output));
    assert_eq!(
        the_end(&events)["reason"],
        "no_code",
        "{:?}",
        the_end(&events)
    );
    let text = assert_cut_at_the_bound(&home, &server, &events);
    assert!(text.starts_with("First:\n```bash\necho before\n```\nNow:\n```python\nprint("));
    let proposed: Vec<&str> = of_type(&events, "block_proposed")
        .iter()
        .map(|b| b["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        proposed,
        ["echo before\n"],
        "the cut block is never offered"
    );
    // The model is told the reply was cut, and gets back no more than was kept.
    let requests = server.requests();
    let next = requests[1].body.to_string();
    assert!(
        next.len() < 2 * BOUND,
        "the next request is {} bytes",
        next.len()
    );
    assert!(next.contains("cut off here at the token limit"));
}

/// The same attack a character at a time: one event per character would queue some hundred
/// bytes each for a frontend slower than the server (a full pipe on stdout), many times the
/// bound. Text already waiting is shown as one piece.
#[test]
fn a_reply_streamed_a_character_at_a_time_is_shown_in_few_pieces() {
    let server = ModelServer::start(vec![Behaviour::Endless {
        head: "x".into(),
        tail: "x".into(),
    }]);
    let home = Home::new();
    let (events, output) = run_served(&home, &server, &[]);
    assert!(output.status.success(), "{}", common::stderr(&output));
    let text = assert_cut_at_the_bound(&home, &server, &events);
    let deltas = of_type(&events, "assistant_delta");
    let shown: String = deltas.iter().map(|d| d["text"].as_str().unwrap()).collect();
    assert_eq!(shown, text, "every character kept is shown once");
    assert!(
        deltas.len() < BOUND / 32,
        "{} pieces for {} characters",
        deltas.len(),
        text.len()
    );
}

/// The same attack through a tool call: its arguments never end.
#[test]
fn a_tool_call_whose_arguments_never_end_is_cut_at_the_bound_and_never_offered() {
    let server = ModelServer::start(vec![Behaviour::EndlessCall {
        head: "{\"language\": \"bash\", \"code\": \"".into(),
        tail: "echo spam\\n".into(),
    }]);
    let home = Home::new();
    let (events, output) = run_served(&home, &server, &["-c", "model.protocol=tools"]);
    assert!(output.status.success(), "{}", common::stderr(&output));
    assert_eq!(
        the_end(&events)["reason"],
        "no_code",
        "{:?}",
        the_end(&events)
    );
    assert_cut_at_the_bound(&home, &server, &events);
    assert!(of_type(&events, "block_proposed").is_empty(), "{events:#?}");
    assert!(of_type(&events, "decision").is_empty(), "{events:#?}");
    assert_eq!(server.requests().len(), 1);
}

/// The same attack with nothing in any call: call after empty call, so no byte of text or
/// arguments is ever charged. Each call costs its share of the bound all the same.
#[test]
fn calls_opened_without_end_stop_at_the_bound() {
    let server = ModelServer::start(vec![
        Behaviour::EndlessEmptyCalls,
        Behaviour::Reply("Done.".into()),
    ]);
    let home = Home::new();
    let (events, output) = run_served(&home, &server, &["-c", "model.protocol=tools"]);
    assert!(output.status.success(), "{}", common::stderr(&output));
    assert_eq!(
        the_end(&events)["reason"],
        "no_code",
        "{:?}",
        the_end(&events)
    );
    assert_cut_at_the_bound(&home, &server, &events);
    assert!(of_type(&events, "block_proposed").is_empty(), "{events:#?}");
    // The model hears back about every call it made, and no more than the bound allows.
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    let next = requests[1].body.to_string();
    let answered = requests[1].body["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter(|m| m["role"] == "tool")
        .count();
    assert!(
        (1..=BOUND / 256).contains(&answered),
        "{answered} calls answered"
    );
    assert!(
        next.len() < 2 * BOUND,
        "the next request is {} bytes",
        next.len()
    );
}

/// The attack: chunks that carry nothing, faster than airlock takes them in. None is charged
/// to the reply, and the client library queues what it reads without bound: airlock must
/// read no faster than it takes chunks in, and its memory stays flat whatever was sent.
#[test]
fn a_flood_of_empty_chunks_does_not_grow_memory() {
    const FLOOD: u64 = 16 << 20;
    let server = ModelServer::start(vec![Behaviour::Flood(FLOOD, "Done.".into())]);
    let home = Home::new();
    let command = home.run_json(&[
        "--base-url",
        &server.base_url,
        "--approve",
        "none",
        "--prompt",
        "go",
    ]);
    let (output, peak_kib) = run_watching_memory(command);
    let events = json_events(&output);
    assert!(output.status.success(), "{}", common::stderr(&output));
    assert_eq!(of_type(&events, "assistant_message")[0]["text"], "Done.");
    assert_eq!(the_end(&events)["reason"], "no_code");
    assert!(
        peak_kib < 64 << 10,
        "airlock grew to {} MiB reading {} MiB of nothing",
        peak_kib >> 10,
        FLOOD >> 20
    );
}

/// Runs `command` (stdin empty) and reads its peak resident memory (VmHWM, KiB) as it runs.
fn run_watching_memory(mut command: std::process::Command) -> (Output, u64) {
    use std::process::Stdio;
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = command.spawn().expect("spawn airlock");
    let status = format!("/proc/{}/status", child.id());
    let watcher = std::thread::spawn(move || {
        let mut peak = 0;
        // Until the process is gone: its status then has no VmHWM, or no file at all.
        while let Some(kib) = std::fs::read_to_string(&status).ok().and_then(|text| {
            let line = text.lines().find(|l| l.starts_with("VmHWM:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        }) {
            peak = peak.max(kib);
            std::thread::sleep(Duration::from_millis(20));
        }
        peak
    });
    let output = child.wait_with_output().expect("wait");
    (output, watcher.join().expect("watcher"))
}

/// Python reads `ｅｖａｌ` as `eval`: a rule written for eval stops it.
#[test]
fn a_fullwidth_eval_is_rejected_by_a_deny_pattern_for_eval() {
    let home = Home::new();
    let script = common::script(
        &home,
        "[[reply]]\ncontent = \"```python\\nｅｖａｌ(\\\"print(6 * 7)\\\")\\n```\\n\"\n",
    );
    let (events, output) = run(
        &home,
        &[
            "--scripted",
            script.to_str().unwrap(),
            "--approve",
            "all",
            "--prompt",
            "go",
            "-c",
            "approval.deny_patterns=[\"eval\"]",
        ],
    );
    assert!(output.status.success(), "{}", common::stderr(&output));
    let decisions = of_type(&events, "decision");
    assert_eq!(decisions.len(), 1, "{events:#?}");
    assert_eq!(decisions[0]["decision"], "reject");
    assert_eq!(decisions[0]["source"], "rule");
    let reason = decisions[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("`eval`") && reason.contains("lookalike"),
        "{reason}"
    );
    assert!(of_type(&events, "exec_started").is_empty(), "nothing ran");
}

/// An allow pattern approves only code it matches both as written and as folded.
#[test]
fn an_allow_pattern_does_not_pass_a_word_joined_name_or_fullwidth_letters() {
    let home = Home::new();
    // Block 1 is what the rule means to allow; 2 and 3 pass it only as written.
    let script = common::script(
        &home,
        concat!(
            "[[reply]]\n",
            "content = \"```python\\nprint(len(chr(97)))\\n```\\n\\n",
            "```python\\nlen\\u2060chr(1)\\n```\\n\\n",
            "```python\\nｅｘｅｃ(chr(112) + chr(40) + chr(41))\\n```\\n\"\n",
        ),
    );
    let (events, output) = run(
        &home,
        &[
            "--scripted",
            script.to_str().unwrap(),
            "--prompt",
            "go",
            "-c",
            r#"approval.allow_patterns=['(?:\b(?:print|len|chr)\b|[^a-zA-Z])*']"#,
        ],
    );
    assert_eq!(output.status.code(), Some(1), "{}", common::stderr(&output));
    assert_eq!(the_end(&events)["reason"], "no_supervisor");
    let decided: Vec<(&str, &str)> = of_type(&events, "decision")
        .iter()
        .map(|d| {
            (
                d["decision"].as_str().unwrap(),
                d["source"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        decided,
        [
            ("approve", "rule"),
            ("reject", "no_supervisor"),
            ("reject", "no_supervisor"),
        ],
        "{events:#?}"
    );
}
