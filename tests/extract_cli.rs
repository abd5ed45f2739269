//! `airlock extract` end to end: the real binary reading a markdown message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Home, run_with_stdin, stderr};
use serde_json::{Value, json};

fn extract_json(markdown: &str) -> Vec<Value> {
    let home = Home::new();
    let mut command = home.airlock();
    command.args(["extract", "--json", "-"]);
    let output = run_with_stdin(command, markdown);
    assert!(output.status.success(), "{}", stderr(&output));
    serde_json::from_slice(&output.stdout).expect("a JSON array")
}

#[test]
fn a_console_transcript_is_not_runnable_and_says_how_to_run_it() {
    let blocks = extract_json("Here:\n\n```console\n$ ls\nREADME.md\n```\n");
    assert_eq!(blocks.len(), 1);
    assert_eq!(blocks[0]["runnable"], false);
    assert_eq!(blocks[0]["language"], Value::Null);
    assert_eq!(blocks[0]["info"], "console");
    assert_eq!(
        blocks[0]["reason"],
        "a terminal transcript (console): its `$ ` lines mix commands and output; tag the commands `bash` to run them"
    );
}

#[test]
fn shell_and_zsh_fences_are_still_bash() {
    let blocks = extract_json("```shell\necho a\n```\n\n```zsh\necho b\n```\n");
    let seen: Vec<(Value, Value)> = blocks
        .iter()
        .map(|b| (b["language"].clone(), b["runnable"].clone()))
        .collect();
    assert_eq!(
        seen,
        [(json!("bash"), json!(true)), (json!("bash"), json!(true))]
    );
}

#[test]
fn a_hostile_info_string_never_reaches_the_terminal_raw() {
    // OSC 52 (write the clipboard), clear screen, a window title, and a bidi override.
    let info = "e\u{202e}vil\u{1b}]52;c;cm0gLXJmIH4=\u{7}\u{1b}[2J\u{1b}]0;owned\u{7}txt";
    let markdown = format!("```{info}\nprint(1)\n```\n");
    let home = Home::new();
    let mut command = home.airlock();
    command.args(["extract", "-"]);
    let output = run_with_stdin(command, &markdown);
    assert!(output.status.success(), "{}", stderr(&output));
    let shown = String::from_utf8(output.stdout).expect("utf-8");
    assert!(
        !shown.contains('\u{1b}') && !shown.contains('\u{7}') && !shown.contains('\u{202e}'),
        "{shown:?}"
    );
    assert!(shown.contains("<U+202E>"), "{shown:?}");
}
