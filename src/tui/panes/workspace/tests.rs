use std::path::Path;
use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::style::Color;
use tokio::sync::mpsc::UnboundedReceiver;

use super::*;
use crate::protocol::{Event, FileChange, FileChangeKind};
use crate::tui::app::{App, Focus, UiAction};
use crate::tui::jobs::Done;
use crate::tui::keys::keymap::Context;
use crate::tui::panes::pane::Look;
use crate::tui::render::highlight::Highlighter;
use crate::tui::render::picture::tests::{bomb_png, squares_png};
use crate::tui::testing::{app, finished, pane, result};

/// The same time on every entry, so the snapshots do not follow the clock.
const WHEN: i64 = 1_782_900_000;

/// A workspace under /tmp with a name of fixed length, so its path in the title can be
/// replaced in snapshots without moving anything else.
struct Workspace {
    dir: tempfile::TempDir,
    root: std::path::PathBuf,
}

impl Workspace {
    fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("airlock-ws-")
            .rand_bytes(6)
            .tempdir_in("/tmp")
            .expect("temp dir");
        let root = dir.path().to_path_buf();
        Self { dir, root }
    }

    /// A workspace inside this one's directory, which stays outside it.
    fn inner(self, name: &str) -> Self {
        let root = self.dir.path().join(name);
        std::fs::create_dir(&root).expect("dir");
        Self { root, ..self }
    }

    fn outside(&self) -> &Path {
        self.dir.path()
    }

    fn root(&self) -> &Path {
        &self.root
    }

    fn write(&self, path: &str, bytes: &[u8]) {
        let path = self.root().join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("dirs");
        }
        std::fs::write(path, bytes).expect("writes");
    }

    /// Every entry's times set to [`WHEN`], links and FIFOs themselves included.
    fn fix_times(&self) {
        let listing = Listing::scan(self.root()).expect("lists");
        let when = rustix::fs::Timestamps {
            last_access: rustix::fs::Timespec {
                tv_sec: WHEN,
                tv_nsec: 0,
            },
            last_modification: rustix::fs::Timespec {
                tv_sec: WHEN,
                tv_nsec: 0,
            },
        };
        for entry in listing.entries.iter().rev() {
            rustix::fs::utimensat(
                rustix::fs::CWD,
                self.root().join(&entry.path),
                &when,
                rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
            )
            .expect("times");
        }
    }

    /// The screen's text with the random part of this workspace's name (and of the one
    /// around it, if any) as a fixed one of the same length, wherever the title shows it.
    fn stable(&self, text: String) -> String {
        let mut text = text;
        for dir in self.root().ancestors() {
            let name = dir.file_name().map(|n| n.to_string_lossy().to_string());
            if let Some(random) = name.as_deref().and_then(|n| n.strip_prefix("airlock-ws-")) {
                text = text.replace(random, &"X".repeat(random.len()));
            }
        }
        text
    }
}

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

/// An app whose sandbox has `workspace`, with the pane open and its first listing in.
fn opened(workspace: &Workspace) -> (App, UnboundedReceiver<Done>) {
    crate::clock::use_zone_in_tests("UTC");
    workspace.fix_times();
    let mut app = app();
    let results = app.take_job_results().expect("results");
    app.on_event(&Event::SandboxReady {
        description: "sandbox".into(),
        workspace: Some(workspace.root().display().to_string()),
    });
    app.focus = Focus::Conversation;
    app.on_key(key(KeyCode::Char('w')));
    assert!(app.workspace().open);
    assert_eq!(app.focus, Focus::Workspace);
    let mut app = (app, results);
    settle(&mut app);
    app
}

/// Applies job results until no job runs.
fn settle((app, results): &mut (App, UnboundedReceiver<Done>)) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while app.workspace().working() {
        match results.try_recv() {
            Ok(done) => {
                assert_ne!(done.ran_on, std::thread::current().id());
                app.on_job(done);
            }
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(2)),
            Err(_) => panic!("a job did not end"),
        }
    }
}

fn drawn(workspace: &Workspace, app: &mut App, width: u16, height: u16) -> String {
    app.areas =
        std::mem::take(&mut app.areas).with(Focus::Workspace, Rect::new(0, 0, width, height));
    let highlighter = Highlighter::plain();
    let look = Look::new(&app.theme, &app.keymap, &highlighter, true);
    let text = pane(width, height, |frame| {
        app.workspace().draw(frame, frame.area(), &look)
    });
    workspace.stable(text)
}

/// Selects `path` in the tree.
fn select(app: &mut App, path: &str) {
    let at = app
        .workspace()
        .entries()
        .iter()
        .position(|entry| entry.shown_path() == path)
        .unwrap_or_else(|| panic!("{path} is not listed"));
    app.workspace_mut().selected = at;
}

fn sample() -> Workspace {
    let workspace = Workspace::new();
    workspace.write("data/words.txt", b"the quick brown fox\n");
    workspace.write("data/raw/big.csv", &vec![b'1'; 3000]);
    workspace.write("report.json", b"{\"the\": 4, \"fox\": 1}\n");
    workspace.write(
        "count.py",
        b"import json\n\tprint(json.dumps({'a': 1}))\n\x1b[2Jgone\n",
    );
    workspace.write("\x1b]0;owned\x07evil\nname.txt", b"x");
    workspace
}

fn change(path: &str, change: FileChangeKind) -> FileChange {
    FileChange {
        path: path.into(),
        change,
        size: 1,
        sha256: None,
        link: None,
    }
}

#[test]
fn the_tree_marks_what_the_last_run_did_and_lists_again_after_it() {
    let workspace = sample();
    let mut app = opened(&workspace);
    let mut run = result(Some(0), "");
    run.files = vec![
        change("report.json", FileChangeKind::Created),
        change("data/words.txt", FileChangeKind::Changed),
        change("notes.txt", FileChangeKind::Removed),
    ];
    workspace.write("data/new.txt", b"new\n");
    workspace.fix_times();
    app.0.on_event(&finished("b-1", run));
    assert!(
        app.0.workspace().working(),
        "a run's end lists the files again"
    );
    settle(&mut app);
    let text = drawn(&workspace, &mut app.0, 80, 14);
    assert!(text.contains("│+ report.json"), "{text}");
    assert!(text.contains("│~   words.txt"), "{text}");
    assert!(
        text.contains("new.txt"),
        "listed again after the run: {text}"
    );
    assert!(text.contains("−1 removed: notes.txt"), "{text}");
    // The hostile name is drawn, not obeyed.
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{7}'),
        "{text}"
    );
    assert!(text.contains("␛]0;owned␇evil␊name.txt"), "{text}");
    insta::assert_snapshot!(text);
}

#[test]
fn a_preview_loads_off_the_caller_and_shows_text_neutralized() {
    let workspace = sample();
    let mut app = opened(&workspace);
    select(&mut app.0, "count.py");
    app.0.on_key(key(KeyCode::Enter));
    // The request returns at once; the result comes later, from another thread (`settle`
    // checks where each ran).
    assert!(app.0.workspace().working());
    let loading = drawn(&workspace, &mut app.0, 90, 8);
    assert!(loading.contains("count.py · loading…"), "{loading}");
    settle(&mut app);
    assert_eq!(app.0.pane_context(), Context::Preview);
    let text = drawn(&workspace, &mut app.0, 90, 8);
    assert!(
        text.contains("    print(json.dumps"),
        "tabs expanded: {text}"
    );
    assert!(!text.contains('\u{1b}'), "{text}");
    insta::assert_snapshot!(text);
    // A run that changes the file shows it anew.
    workspace.write("count.py", b"print('rewritten')\n");
    let mut run = result(Some(0), "");
    run.files = vec![change("count.py", FileChangeKind::Changed)];
    app.0.on_event(&finished("b-1", run));
    settle(&mut app);
    let text = drawn(&workspace, &mut app.0, 90, 8);
    assert!(text.contains("print('rewritten')"), "{text}");
    // Esc closes the preview; the tree keeps the keys.
    app.0.on_key(key(KeyCode::Esc));
    assert!(!app.0.workspace().previewing());
    assert_eq!(app.0.focus, Focus::Workspace);
}

#[test]
fn a_picture_is_drawn_in_half_blocks() {
    let workspace = Workspace::new();
    workspace.write("plot.png", &squares_png(32));
    let mut app = opened(&workspace);
    app.0.areas = std::mem::take(&mut app.0.areas).with(Focus::Workspace, Rect::new(0, 0, 60, 12));
    app.0.on_key(key(KeyCode::Enter));
    settle(&mut app);
    let highlighter = Highlighter::plain();
    let look = Look::new(&app.0.theme, &app.0.keymap, &highlighter, true);
    let mut terminal =
        ratatui::Terminal::new(ratatui::backend::TestBackend::new(60, 12)).expect("terminal");
    terminal
        .draw(|frame| app.0.workspace().draw(frame, frame.area(), &look))
        .expect("draws");
    let buffer = terminal.backend().buffer().clone();
    // The preview's inner area is 34×10 at x 25: a square picture of 20×10 cells, centred.
    let (left, top) = (25 + 7, 1);
    let corner = &buffer[(left, top)];
    let middle = &buffer[(left + 10, top + 5)];
    assert_eq!(corner.bg, Color::Rgb(20, 40, 200), "{corner:?}");
    assert_eq!(middle.bg, Color::Rgb(220, 30, 30), "{middle:?}");
    let text = workspace.stable(terminal.backend().to_string());
    assert!(text.contains(" plot.png · PNG 32×32 · "), "{text}");
    insta::assert_snapshot!(text);
    // An SVG is drawn the same way, over white.
    workspace.write(
        "shape.svg",
        br#"<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20"><rect width="20" height="20" fill="rgb(220,30,30)"/></svg>"#,
    );
    app.0.on_event(&finished("b-1", result(Some(0), "")));
    settle(&mut app);
    select(&mut app.0, "shape.svg");
    app.0.on_key(key(KeyCode::Enter));
    settle(&mut app);
    let look = Look::new(&app.0.theme, &app.0.keymap, &highlighter, true);
    terminal
        .draw(|frame| app.0.workspace().draw(frame, frame.area(), &look))
        .expect("draws");
    let buffer = terminal.backend().buffer();
    let text = workspace.stable(terminal.backend().to_string());
    assert!(text.contains(" shape.svg · SVG 40×20"), "{text}");
    // 34×10 cells hold 34×20 pixels: the 2:1 drawing is 34×17, 9 rows from row 1 on.
    assert_eq!(buffer[(25 + 3, 5)].bg, Color::Rgb(220, 30, 30));
    assert_eq!(buffer[(25 + 30, 5)].bg, Color::Rgb(255, 255, 255));
}

#[test]
fn a_decompression_bomb_and_binary_files_are_described_not_drawn() {
    let workspace = Workspace::new();
    workspace.write("bomb.png", &bomb_png(100_000, 100_000));
    workspace.write(
        "tool",
        b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00",
    );
    let mut app = opened(&workspace);
    select(&mut app.0, "bomb.png");
    app.0.on_key(key(KeyCode::Enter));
    settle(&mut app);
    let text = drawn(&workspace, &mut app.0, 90, 8);
    assert!(text.contains("100000×100000 pixels"), "{text}");
    insta::assert_snapshot!("bomb", text);
    select(&mut app.0, "tool");
    app.0.on_key(key(KeyCode::Enter));
    settle(&mut app);
    let text = drawn(&workspace, &mut app.0, 90, 8);
    assert!(text.contains("an ELF executable"), "{text}");
    assert!(text.contains("o hands it to the system opener"), "{text}");
    insta::assert_snapshot!("binary", text);
    // Not text, so not paged; a program, so not handed to the opener either.
    let actions = app.0.on_key(key(KeyCode::Char('p')));
    assert!(actions.is_empty());
    let said = app.0.status.clone().unwrap_or_default();
    assert!(said.contains("not text"), "{said}");
    assert!(app.0.on_key(key(KeyCode::Char('o'))).is_empty());
    let said = app.0.status.clone().unwrap_or_default();
    assert!(
        said.contains("tool is not handed on: it is an ELF program"),
        "{said}"
    );
}

#[test]
fn the_opener_gets_a_private_copy_of_what_was_checked_and_never_a_launcher() {
    use std::os::unix::fs::PermissionsExt;
    let workspace = Workspace::new().inner("ws");
    let secret = workspace.outside().join("secret.txt");
    std::fs::write(&secret, "SECRET-OF-THE-HOST").expect("writes");
    workspace.write("notes.txt", b"what was checked\n");
    workspace.write(
        "run.desktop",
        b"[Desktop Entry]\nType=Application\nExec=sh -c 'cat ~/.ssh/id_rsa'\n",
    );
    let mut app = opened(&workspace);
    select(&mut app.0, "notes.txt");
    let actions = app.0.on_key(key(KeyCode::Char('o')));
    let [UiAction::OpenExternally(copy)] = actions.as_slice() else {
        panic!("not handed on: {actions:?} {:?}", app.0.status);
    };
    assert!(!copy.starts_with(workspace.outside()), "{}", copy.display());
    assert_eq!(copy.file_name(), Some(std::ffi::OsStr::new("notes.txt")));
    let mode = |path: &Path| std::fs::metadata(path).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode(copy), 0o600);
    assert_eq!(mode(copy.parent().expect("dir")), 0o700);
    // Block code swaps the file for a symlink to a host secret once airlock has checked it.
    std::fs::remove_file(workspace.root().join("notes.txt")).expect("removes");
    std::os::unix::fs::symlink(&secret, workspace.root().join("notes.txt")).expect("link");
    // An opener that keeps what it was given.
    let bin = tempfile::tempdir().expect("temp dir");
    let opener = bin.path().join("opener");
    let kept = bin.path().join("kept");
    std::fs::write(
        &opener,
        format!(
            "#!/bin/sh\ncat \"$1\" > {}.part && mv {0}.part {0}\n",
            kept.display()
        ),
    )
    .expect("writes");
    std::fs::set_permissions(&opener, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let said = crate::tui::external::open_with(&opener.display().to_string(), copy);
    assert!(said.starts_with("handed to"), "{said}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !kept.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        std::fs::read_to_string(&kept).expect("the opener ran"),
        "what was checked\n"
    );
    // A launcher is refused, with why.
    select(&mut app.0, "run.desktop");
    assert!(app.0.on_key(key(KeyCode::Char('o'))).is_empty());
    let said = app.0.status.clone().unwrap_or_default();
    assert!(
        said.contains("run.desktop is not handed on: a .desktop file is run"),
        "{said}"
    );
}

/// The most memory this test process has held, in KiB (`VmHWM`).
fn peak_memory_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

#[test]
fn hostile_svgs_are_refused_in_the_preview_title() {
    let started = Instant::now();
    let workspace = Workspace::new().inner("ws");
    let secret = workspace.outside().join("secret.txt");
    std::fs::write(&secret, "SECRET-OF-THE-HOST").expect("writes");
    workspace.write(
        "laughs.svg",
        crate::tui::render::svg::tests::billion_laughs().as_bytes(),
    );
    workspace.write(
        "xxe.svg",
        crate::tui::render::svg::tests::external_entity(&secret).as_bytes(),
    );
    workspace.write("bomb.svgz", &crate::tui::render::svg::tests::gzip_bomb());
    let mut small = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(
        &mut small,
        br#"<svg xmlns="http://www.w3.org/2000/svg" width="20" height="20"><rect width="20" height="20" fill="rgb(220,30,30)"/></svg>"#,
    )
    .expect("compresses");
    workspace.write("fine.svgz", &small.finish().expect("compresses"));
    let mut app = opened(&workspace);
    let mut shown = |name: &str| {
        select(&mut app.0, name);
        app.0.on_key(key(KeyCode::Enter));
        settle(&mut app);
        drawn(&workspace, &mut app.0, 120, 8)
    };
    let laughs = shown("laughs.svg");
    assert!(
        laughs.contains("laughs.svg · refused: it declares XML entities"),
        "{laughs}"
    );
    insta::assert_snapshot!("svg_entities", laughs);
    let xxe = shown("xxe.svg");
    assert!(
        xxe.contains("xxe.svg · refused: it declares XML entities"),
        "{xxe}"
    );
    assert!(!xxe.contains("SECRET"), "{xxe}");
    let bomb = shown("bomb.svgz");
    assert!(
        bomb.contains("bomb.svgz · refused: it decompresses to more than 4.0 MiB"),
        "{bomb}"
    );
    insta::assert_snapshot!("svgz_bomb", bomb);
    let fine = shown("fine.svgz");
    assert!(fine.contains("fine.svgz · SVG 20×20"), "{fine}");
    // Nothing was expanded: 25 GB of entities or 128 MiB of gzip would show here.
    let peak = peak_memory_kib();
    assert!(peak < 400 << 10, "the test held {peak} KiB at its peak");
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[test]
fn a_symlink_out_and_a_fifo_are_shown_and_never_opened() {
    // A name longer than the title has room for, so only its end is drawn.
    let workspace = Workspace::new().inner("the-workspace-of-this-test");
    std::fs::write(workspace.outside().join("secret.txt"), "SECRET").expect("writes");
    workspace.write("a.txt", b"a\n");
    std::os::unix::fs::symlink("../secret.txt", workspace.root().join("escape")).expect("link");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        workspace.root().join("pipe"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .expect("fifo");
    let mut app = opened(&workspace);
    select(&mut app.0, "escape");
    app.0.on_key(key(KeyCode::Enter));
    settle(&mut app);
    let text = drawn(&workspace, &mut app.0, 100, 8);
    assert!(text.contains("escape → ../secret.txt"), "{text}");
    assert!(
        text.contains("it is a symlink (to ../secret.txt)"),
        "{text}"
    );
    assert!(!text.contains("SECRET"), "{text}");
    insta::assert_snapshot!("symlink", text);
    for (key_pressed, word) in [('p', "not paged"), ('o', "not handed on")] {
        assert!(app.0.on_key(key(KeyCode::Char(key_pressed))).is_empty());
        let said = app.0.status.clone().unwrap_or_default();
        assert!(said.contains(word) && said.contains("symlink"), "{said}");
    }
    // A FIFO would block a reader forever: the preview says what it is, at once.
    select(&mut app.0, "pipe");
    app.0.on_key(key(KeyCode::Enter));
    settle(&mut app);
    let text = drawn(&workspace, &mut app.0, 100, 8);
    assert!(text.contains("pipe (FIFO)"), "{text}");
    assert!(text.contains("it is a FIFO, not a regular file"), "{text}");
    insta::assert_snapshot!("fifo", text);
}

#[test]
fn keys_page_text_and_the_workspace_shows_on_the_screen() {
    let workspace = sample();
    let mut app = opened(&workspace);
    select(&mut app.0, "report.json");
    let actions = app.0.on_key(key(KeyCode::Char('p')));
    assert_eq!(
        actions,
        [UiAction::Page {
            root: workspace.root().to_path_buf(),
            path: "report.json".into()
        }]
    );
    select(&mut app.0, "data");
    assert!(app.0.on_key(key(KeyCode::Enter)).is_empty());
    assert!(
        !app.0.workspace().previewing(),
        "a directory has no preview"
    );
    let text = workspace.stable(crate::tui::testing::screen(&mut app.0, 120, 30));
    assert!(text.contains(" Workspace /tmp/airlock-ws-"), "{text}");
    insta::assert_snapshot!("screen", text);
    // Tab goes through the pane while it is open, and past it once it is closed.
    let mut seen = Vec::new();
    for _ in 0..4 {
        app.0.on_key(key(KeyCode::Tab));
        seen.push(app.0.focus);
    }
    assert_eq!(
        seen,
        [
            Focus::Logs,
            Focus::Composer,
            Focus::Conversation,
            Focus::Workspace
        ]
    );
    app.0.on_key(key(KeyCode::Char('w')));
    assert!(!app.0.workspace().open);
    assert_eq!(app.0.focus, Focus::Conversation);
    app.0.on_key(key(KeyCode::Tab));
    assert_eq!(app.0.focus, Focus::Logs);
}

#[test]
fn one_job_of_a_kind_runs_at_a_time_and_only_the_newest_answer_counts() {
    let mut requests = Requests::default();
    assert_eq!(requests.ask("first"), Some((1, "first")));
    assert_eq!(requests.ask("second"), None, "waits for the first");
    assert_eq!(requests.ask("third"), None, "replaces the second");
    // The first's answer is stale; the third runs next.
    assert_eq!(requests.answered(1), (false, Some((3, "third"))));
    assert!(requests.running);
    assert_eq!(requests.answered(3), (true, None));
    assert!(!requests.running);
}

/// The app's workspace pane, which it holds only as a pane.
trait WorkspaceOf {
    fn workspace(&self) -> &WorkspacePane;
    fn workspace_mut(&mut self) -> &mut WorkspacePane;
}

impl WorkspaceOf for App {
    fn workspace(&self) -> &WorkspacePane {
        let pane: &dyn std::any::Any = self.pane(Focus::Workspace).expect("a workspace pane");
        pane.downcast_ref().expect("the workspace pane")
    }

    fn workspace_mut(&mut self) -> &mut WorkspacePane {
        let pane: &mut dyn std::any::Any =
            self.pane_mut(Focus::Workspace).expect("a workspace pane");
        pane.downcast_mut().expect("the workspace pane")
    }
}
