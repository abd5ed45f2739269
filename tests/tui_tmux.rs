//! The real binary in a real terminal: `airlock --demo` inside tmux, driven by key presses
//! (`send-keys`) and read back from the screen (`capture-pane`), against real Docker.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::tmux::Tmux;
use common::{Home, test_image};

/// `airlock ARGS` with this home and the test image, in a terminal of its own; `env` is put
/// before the command, e.g. `EDITOR=...`. The shell's pid is kept in the home's `pid` file.
fn start_with(home: &Home, env: &str, args: &str) -> Tmux {
    let command = format!(
        "env {env} XDG_DATA_HOME={data} XDG_CONFIG_HOME={config} sh -c 'echo $$ > {pid}; exec {bin} -c sandbox.image={image} {args}'",
        pid = home.dir.path().join("pid").display(),
        data = home.dir.path().join("data").display(),
        config = home.dir.path().join("config").display(),
        bin = env!("CARGO_BIN_EXE_airlock"),
        image = test_image(),
    );
    Tmux::run(home.dir.path(), &command)
}

fn start(home: &Home, args: &str) -> Tmux {
    start_with(home, "", args)
}

#[test]
fn the_demo_is_approved_by_key_presses_and_its_output_reaches_the_log_pane() {
    let home = Home::new();
    let tmux = start(&home, "--demo");
    tmux.wait_for("Block 1 of 2 · bash");
    tmux.keys(&["y"]);
    tmux.wait_for("23 data/sample.txt");
    tmux.wait_for("Block 2 of 2 · python");
    tmux.keys(&["y"]);
    tmux.wait_for("AttributeError");
    tmux.wait_for("exit 1");
    // The model saw the error and fixed it: a new message with two blocks.
    tmux.wait_for("most_common(5)");
    tmux.wait_for("Block 1 of 2 · python");
    tmux.keys(&["y"]);
    tmux.wait_for("wrote report.json");
    tmux.wait_for("Block 2 of 2 · sh");
    tmux.keys(&["y"]);
    tmux.wait_for("\"fox\": 4");
    // Then a chart of the counts, drawn with matplotlib into the workspace.
    tmux.wait_for("Block 1 of 1 · python");
    tmux.keys(&["y"]);
    tmux.wait_for("wrote chart.png");
    // The model's last word, and the engine waiting for the operator: only then does q quit
    // without asking (while a reply streams it asks first).
    tmux.wait_for("Done. The five most common");
    tmux.wait_for(" ready ");
    let screen = tmux.screen();
    assert!(screen.contains("exit 0"), "{screen}");
    assert!(!screen.contains('\u{1b}'));
    // The chart on screen: the workspace pane marks it as the last run's, and previewing it
    // draws it in half blocks (all tmux passes on).
    tmux.escape();
    tmux.keys(&["w"]);
    tmux.wait_for("+ chart.png");
    tmux.wait_for("last run: +1 created");
    let half_blocks = |screen: &str| screen.chars().filter(|c| matches!(c, '▀' | '▄')).count();
    assert_eq!(
        half_blocks(&tmux.screen()),
        0,
        "no picture before the preview"
    );
    tmux.keys(&["j", "j"]);
    tmux.keys(&["Enter"]);
    tmux.wait_for("▀");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let pictured = tmux.screen();
    assert!(
        half_blocks(&pictured) > 200,
        "the chart is drawn:\n{pictured}"
    );
    tmux.escape();
    tmux.keys(&["w"]);
    // Quit (the composer no longer has focus, so q is not text).
    tmux.keys(&["q"]);
    tmux.wait_exit();
    assert_eq!(tmux.exit_status().as_deref(), Some("0"));
    let session = session_on(&screen);
    assert!(
        common::container_gone(&session),
        "the session's container is gone"
    );
    let chart = home
        .data_dir()
        .join("workspaces")
        .join(&session)
        .join("chart.png");
    let chart = std::fs::read(&chart).expect("the chart is in the workspace");
    assert!(chart.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
}

#[test]
fn keys_in_the_composer_never_decide_and_reject_sends_a_reason() {
    let home = Home::new();
    let tmux = start(&home, "--demo");
    tmux.wait_for("Block 1 of 2 · bash");
    // Move to the composer and type letters that are card keys elsewhere.
    tmux.keys(&["Tab", "Tab", "Tab"]);
    tmux.wait_for("Enter sends");
    tmux.keys(&["-l", "yes no skip"]);
    tmux.wait_for("yes no skip");
    let screen = tmux.screen();
    assert!(!screen.contains("── r-"), "nothing ran:\n{screen}");
    assert!(
        screen.contains("waiting for you"),
        "the card says it waits:\n{screen}"
    );
    // Tab reaches the card; reject the first block with a reason, skip the second.
    tmux.keys(&["Tab"]);
    tmux.keys(&["n"]);
    tmux.wait_for("Reject");
    tmux.keys(&["-l", "not in my workspace"]);
    tmux.keys(&["Enter"]);
    tmux.wait_for("Block 2 of 2 · python");
    tmux.keys(&["s"]);
    tmux.wait_for("results of 2 block(s) sent to the model");
    // The model answers the rejection; once its blocks wait, nothing runs and Ctrl-C quits.
    tmux.wait_for("2 waiting");
    tmux.keys(&["C-c"]);
    tmux.wait_exit();
    assert_eq!(tmux.exit_status().as_deref(), Some("0"));
}

/// The session id the status bar shows.
fn session_on(screen: &str) -> String {
    screen
        .split_whitespace()
        .find(|word| word.starts_with("s-2"))
        .unwrap_or_else(|| panic!("no session id on the screen:\n{screen}"))
        .to_string()
}

#[test]
fn capital_e_edits_in_the_editor_and_the_edited_code_runs() {
    let home = Home::new();
    // An "editor" that fixes the bug in the demo's second block.
    let tmux = start_with(
        &home,
        "EDITOR='sed -i s/counts.top/counts.most_common/'",
        "--demo",
    );
    tmux.wait_for("Block 1 of 2 · bash");
    tmux.keys(&["y"]);
    tmux.wait_for("Block 2 of 2 · python");
    tmux.keys(&["E"]);
    tmux.wait_for("     the 4");
    let screen = tmux.screen();
    assert!(!screen.contains("AttributeError"), "{screen}");
    assert!(
        screen.contains("│ Conversation") || screen.contains("┌ Conversation"),
        "redrawn whole after the editor:\n{screen}"
    );
    // The model's next message is waiting; nothing runs, so Ctrl-C quits.
    tmux.wait_for("2 waiting");
    tmux.keys(&["C-c"]);
    tmux.wait_exit();
}

#[test]
fn sigterm_restores_the_terminal_and_removes_the_container() {
    let home = Home::new();
    let tmux = start(&home, "--demo");
    tmux.wait_for("Block 1 of 2 · bash");
    let session = session_on(&tmux.screen());
    let pid = std::fs::read_to_string(home.dir.path().join("pid")).expect("pid file");
    let status = Command::new("kill")
        .args(["-TERM", pid.trim()])
        .status()
        .expect("kill");
    assert!(status.success());
    tmux.wait_exit();
    // Back on the normal screen: none of the panes is left behind.
    let screen = tmux.screen();
    assert!(
        !screen.contains("Conversation") && !screen.contains("Pending block"),
        "{screen}"
    );
    // airlock put the terminal back itself: its screen guard says nothing.
    assert!(!screen.contains("screen guard"), "{screen}");
    assert!(
        common::container_gone(&session),
        "the session's container is gone"
    );
}

/// `stty -a` of the pane's terminal, read from outside it.
fn terminal_settings(tty: &str) -> Vec<String> {
    let output = Command::new("stty")
        .args(["-a", "-F", tty])
        .output()
        .expect("stty");
    String::from_utf8_lossy(&output.stdout)
        .split(|c: char| c.is_whitespace() || c == ';')
        .map(str::to_string)
        .collect()
}

/// Whether the terminal edits lines and echoes, as a shell left it (not raw).
fn cooked(tty: &str) -> bool {
    let settings = terminal_settings(tty);
    ["icanon", "echo"]
        .iter()
        .all(|flag| settings.iter().any(|setting| setting == flag))
}

#[test]
fn an_abort_or_a_kill_leaves_the_terminal_as_it_was() {
    // SIGABRT is what a failed allocation ends in; no handler runs on SIGKILL. (A SIGSEGV
    // sent with kill is no test: Rust's handler for stack overflows lets the first one pass.)
    for (signal, status) in [("ABRT", "134"), ("KILL", "137")] {
        let home = Home::new();
        let tmux = start(&home, "--demo");
        tmux.wait_for("Block 1 of 2 · bash");
        let tty = tmux.display("#{pane_tty}");
        assert_eq!(tmux.display("#{alternate_on}"), "1");
        assert!(
            !cooked(&tty),
            "raw while airlock runs: {:?}",
            terminal_settings(&tty)
        );
        let session = session_on(&tmux.screen());
        let pid = std::fs::read_to_string(home.dir.path().join("pid")).expect("pid file");
        let killed = Command::new("kill")
            .args([&format!("-{signal}"), pid.trim()])
            .status()
            .expect("kill");
        assert!(killed.success());
        tmux.wait_exit();
        assert_eq!(tmux.exit_status().as_deref(), Some(status), "SIG{signal}");
        let restored = common::wait_until(std::time::Duration::from_secs(10), || {
            tmux.display("#{alternate_on}") == "0" && cooked(&tty)
        });
        assert!(
            restored,
            "after SIG{signal}: alternate screen {}, settings {:?}",
            tmux.display("#{alternate_on}"),
            terminal_settings(&tty)
        );
        tmux.wait_for_within(
            "The screen guard has restored the terminal.",
            std::time::Duration::from_secs(10),
        );
        remove_leftovers(&session);
    }
}

/// What a session killed before it could clean up leaves in Docker.
fn remove_leftovers(session: &str) {
    let label = format!("airlock.session={session}");
    for container in common::containers_labelled(&label) {
        common::docker(&["rm", "-f", &container]);
    }
    let filter = format!("label={label}");
    for volume in common::docker(&["volume", "ls", "-q", "--filter", &filter]).lines() {
        common::docker(&["volume", "rm", "-f", volume]);
    }
}

#[test]
fn the_history_pane_shows_earlier_sessions_from_the_store() {
    let home = Home::new();
    let mut earlier = home.airlock();
    earlier.args([
        "run",
        "--scripted",
        concat!(env!("CARGO_MANIFEST_DIR"), "/assets/demo.toml"),
        "--approve",
        "all",
        "--prompt",
        "go",
    ]);
    let output = common::run_with_stdin(earlier, "");
    assert!(output.status.success(), "{}", common::stderr(&output));
    let tmux = start(&home, "--demo");
    tmux.wait_for("Block 1 of 2 · bash");
    tmux.keys(&["h"]);
    tmux.wait_for("History");
    // The earlier session's five runs, one of them the failed python block.
    tmux.wait_for("exit 1");
    let screen = tmux.screen();
    assert!(screen.matches("exit 0").count() >= 4, "{screen}");
    tmux.keys(&["/"]);
    tmux.keys(&["-l", "most_common"]);
    tmux.keys(&["Enter"]);
    tmux.wait_for("filter: most_common");
    tmux.keys(&["Enter"]);
    tmux.wait_for("wrote report.json");
    tmux.escape();
    tmux.keys(&["q"]);
    tmux.wait_exit();
}

#[test]
fn resume_gives_the_model_its_earlier_conversation_and_workspace_back() {
    use common::model_server::{Behaviour, ModelServer};
    let server = ModelServer::start(vec![
        Behaviour::Reply(
            "Running it.\n\n```python\nprint('marker', 6 * 7)\nopen('notes.txt', 'w').write('kept from the first session')\n```\n".into(),
        ),
        Behaviour::Reply("The answer was 42.".into()),
        Behaviour::Reply("Reading my notes.\n\n```sh\ncat notes.txt\n```\n".into()),
        Behaviour::Reply("Continuing where we left off.".into()),
    ]);
    let home = Home::new();
    let mut first = home.airlock();
    first.args([
        "run",
        "--base-url",
        &server.base_url,
        "--approve",
        "all",
        "--prompt",
        "first task",
    ]);
    let output = common::run_with_stdin(first, "");
    assert!(output.status.success(), "{}", common::stderr(&output));
    let listed = home
        .airlock()
        .args(["history", "list", "--json"])
        .output()
        .unwrap();
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let earlier = listed[0]["session"].as_str().unwrap().to_string();

    let tmux = start(&home, &format!("resume --base-url {}", server.base_url));
    tmux.wait_for("resumed");
    tmux.wait_for("first task");
    tmux.keys(&["-l", "what next?"]);
    tmux.keys(&["Enter"]);
    tmux.wait_for("Block 1 of 1 · sh");
    tmux.keys(&["y"]);
    tmux.wait_for("Continuing where we left off.");
    let requests = server.requests();
    assert_eq!(requests.len(), 4);
    let results = requests[3]
        .messages()
        .into_iter()
        .map(|(_, c)| c)
        .collect::<Vec<_>>();
    assert!(
        results
            .iter()
            .any(|text| text.contains("kept from the first session")),
        "the resumed session's block read the earlier file: {results:?}"
    );
    // The same session goes on: its id, and one record holding both parts.
    let screen = tmux.screen();
    assert_eq!(session_on(&screen), earlier, "{screen}");
    let export = home
        .airlock()
        .args(["history", "export", &earlier])
        .output()
        .unwrap();
    let export = String::from_utf8_lossy(&export.stdout);
    for part in ["first task", "what next?", "cat notes.txt"] {
        assert!(export.contains(part), "{part} missing from {export}");
    }
    let messages: Vec<String> = requests[2]
        .messages()
        .into_iter()
        .map(|(_, content)| content)
        .collect();
    let all = messages.join("\n");
    for needle in [
        "first task",
        "marker 42",
        "The answer was 42.",
        "what next?",
    ] {
        assert!(
            all.contains(needle),
            "{needle} missing from what the model got:\n{all}"
        );
    }
    assert_eq!(messages.last().map(String::as_str), Some("what next?"));
    tmux.escape();
    tmux.keys(&["q"]);
    tmux.wait_exit();
}

#[test]
fn run_at_a_terminal_exits_when_the_session_ends_without_a_key_press() {
    let home = Home::new();
    let script = common::script(&home, "[[reply]]\ncontent = \"Nothing to run here.\"\n");
    let tmux = start(
        &home,
        &format!("run --scripted {} --prompt hello", script.display()),
    );
    tmux.wait_for("session ended: no_code");
    // No key is pressed: the process ends on its own, with the status of `no_code`.
    tmux.wait_exit();
    assert_eq!(tmux.exit_status().as_deref(), Some("0"));
}

/// One cell of a captured screen: its character and the attributes the terminal drew it
/// with.
#[derive(Debug, Clone, Copy, Default)]
struct Drawn {
    c: char,
    bold: bool,
    reverse: bool,
    underline: bool,
}

/// A screen captured with its escape codes (`capture-pane -e`), read back into cells, and
/// whether any colour was drawn at all.
struct StyledScreen {
    rows: Vec<Vec<Drawn>>,
    coloured: bool,
}

impl StyledScreen {
    fn capture(tmux: &Tmux) -> Self {
        Self::parse(&tmux.screen_with_styles())
    }

    fn parse(text: &str) -> Self {
        let mut screen = Self {
            rows: Vec::new(),
            coloured: false,
        };
        for line in text.lines() {
            let mut row = Vec::new();
            // tmux starts every line from the default attributes.
            let mut pen = Drawn::default();
            let mut chars = line.chars().peekable();
            while let Some(c) = chars.next() {
                if c != '\u{1b}' {
                    row.push(Drawn { c, ..pen });
                    continue;
                }
                if chars.next_if_eq(&'[').is_none() {
                    continue;
                }
                let mut params = String::new();
                let mut last = None;
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        last = Some(c);
                        break;
                    }
                    params.push(c);
                }
                if last == Some('m') {
                    screen.apply_sgr(&params, &mut pen);
                }
            }
            screen.rows.push(row);
        }
        screen
    }

    fn apply_sgr(&mut self, params: &str, pen: &mut Drawn) {
        let codes: Vec<u32> = params
            .split([';', ':'])
            .map(|p| p.parse().unwrap_or(0))
            .collect();
        let mut codes = codes.into_iter();
        while let Some(code) = codes.next() {
            match code {
                0 => *pen = Drawn::default(),
                1 => pen.bold = true,
                4 => pen.underline = true,
                7 => pen.reverse = true,
                22 => pen.bold = false,
                24 => pen.underline = false,
                27 => pen.reverse = false,
                38 | 48 | 58 => {
                    self.coloured = true;
                    let skip = if codes.next() == Some(5) { 1 } else { 3 };
                    codes.by_ref().take(skip).for_each(drop);
                }
                30..=37 | 40..=47 | 90..=97 | 100..=107 => self.coloured = true,
                _ => {}
            }
        }
    }

    /// The cells of the first place `text` is shown.
    fn find(&self, text: &str) -> Option<(usize, usize)> {
        let wanted: Vec<char> = text.chars().collect();
        self.rows.iter().enumerate().find_map(|(y, row)| {
            let chars: Vec<char> = row.iter().map(|cell| cell.c).collect();
            chars
                .windows(wanted.len())
                .position(|w| w == wanted.as_slice())
                .map(|x| (x, y))
        })
    }

    fn cells(&self, text: &str) -> &[Drawn] {
        let (x, y) = self
            .find(text)
            .unwrap_or_else(|| panic!("{text:?} is not on the screen:\n{}", self.plain()));
        &self.rows[y][x..x + text.chars().count()]
    }

    fn plain(&self) -> String {
        self.rows
            .iter()
            .map(|row| row.iter().map(|cell| cell.c).collect::<String>() + "\n")
            .collect()
    }
}

#[test]
fn with_no_color_focus_cursor_and_selection_are_still_marked() {
    let home = Home::new();
    let tmux = start_with(&home, "NO_COLOR=1", "--demo");
    tmux.wait_for("Block 1 of 2 · bash");
    let screen = StyledScreen::capture(&tmux);
    assert!(!screen.coloured, "a colour was drawn under NO_COLOR");
    // The focused card's title is in reverse video and bold; an unfocused title is not.
    let title = screen.cells(" Block 1 of 2 ");
    assert!(title.iter().all(|c| c.reverse && c.bold), "{title:?}");
    assert!(screen.cells(" Conversation ").iter().all(|c| !c.reverse));
    assert!(
        screen
            .cells("2 block(s) wait for you")
            .iter()
            .all(|c| c.reverse)
    );

    // Shift-Tab reaches the composer: its title is marked, and the cursor after the text.
    tmux.keys(&["BTab"]);
    tmux.keys(&["-l", "hi"]);
    tmux.wait_for("Message · Enter sends");
    tmux.wait_for("│hi");
    let screen = StyledScreen::capture(&tmux);
    assert!(!screen.coloured);
    assert!(
        screen
            .cells(" Message · Enter sends ")
            .iter()
            .all(|c| c.reverse)
    );
    assert!(screen.cells(" Block 1 of 2 ").iter().all(|c| !c.reverse));
    let typed = screen.cells("│hi ");
    assert!(!typed[1].reverse && !typed[2].reverse, "{typed:?}");
    assert!(typed[3].reverse, "the cursor is not marked: {typed:?}");

    // The history, after a run: its selected row is bold. Tab from the composer goes back
    // to the card.
    tmux.keys(&["Tab"]);
    tmux.wait_for("┌ Message ─");
    tmux.keys(&["y"]);
    tmux.wait_for("23 data/sample.txt");
    tmux.keys(&["h"]);
    tmux.wait_for("┌ History");
    let screen = StyledScreen::capture(&tmux);
    assert!(!screen.coloured);
    let (x, y) = screen.find("┌ History").expect("the history pane");
    let selected = &screen.rows[y + 1][x + 1..x + 9];
    assert!(selected.iter().all(|c| c.bold), "{selected:?}");
    let after = &screen.rows[y + 2][x + 1..x + 9];
    assert!(after.iter().all(|c| !c.bold), "{after:?}");
}
