use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::Path;

use super::*;

/// A /workspace and a host directory, as two temporary directories.
struct Trees {
    inside: tempfile::TempDir,
    host: tempfile::TempDir,
    mirror: Mirror,
}

impl Trees {
    fn new() -> Self {
        let inside = tempfile::tempdir().expect("inside");
        let host = tempfile::tempdir().expect("host");
        let mirror = Mirror::open(inside.path(), host.path()).expect("mirror");
        Self {
            inside,
            host,
            mirror,
        }
    }

    fn inside(&self, rel: &str) -> std::path::PathBuf {
        self.inside.path().join(rel)
    }

    fn host(&self, rel: &str) -> std::path::PathBuf {
        self.host.path().join(rel)
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|err| format!("<{err}>"))
}

#[test]
fn changes_go_both_ways_and_removals_follow_them() {
    let mut trees = Trees::new();
    std::fs::create_dir(trees.host("data")).expect("dir");
    std::fs::write(trees.host("data/input.csv"), "a,b\n").expect("write");
    let mut ticks = 0;
    let pulled = trees.mirror.pull(&mut || ticks += 1);
    assert_eq!(pulled.problems, Vec::<String>::new());
    // Every entry, and every piece of data, is a moment to say the copy goes on.
    assert!(ticks >= 2, "{ticks}");
    assert_eq!(read(&trees.inside("data/input.csv")), "a,b\n");

    // The block writes a report and removes the input.
    std::fs::write(trees.inside("report.txt"), "done\n").expect("write");
    std::fs::remove_file(trees.inside("data/input.csv")).expect("remove");
    let pushed = trees.mirror.push(&mut || {});
    assert_eq!((pushed.copied, pushed.removed), (1, 1), "{pushed:?}");
    assert_eq!(read(&trees.host("report.txt")), "done\n");
    assert!(!trees.host("data/input.csv").exists());

    // The operator edits the report and adds a file between blocks.
    std::fs::write(trees.host("report.txt"), "edited\n").expect("write");
    std::fs::write(trees.host("notes.md"), "hi\n").expect("write");
    trees.mirror.pull(&mut || {});
    assert_eq!(read(&trees.inside("report.txt")), "edited\n");
    assert_eq!(read(&trees.inside("notes.md")), "hi\n");
    // Nothing changed inside: a push copies nothing back.
    assert_eq!(trees.mirror.push(&mut || {}), PassReport::default());
}

#[test]
fn a_change_on_the_other_side_wins_over_a_removal() {
    let mut trees = Trees::new();
    std::fs::write(trees.inside("shared.txt"), "one\n").expect("write");
    trees.mirror.push(&mut || {});
    // While the block removes it, the operator rewrites it on the host.
    std::fs::remove_file(trees.inside("shared.txt")).expect("remove");
    std::thread::sleep(std::time::Duration::from_millis(10));
    std::fs::write(trees.host("shared.txt"), "operator's\n").expect("write");
    let pushed = trees.mirror.push(&mut || {});
    assert_eq!(pushed.removed, 0);
    assert_eq!(read(&trees.host("shared.txt")), "operator's\n");
    // A file new on the host, unknown to the mirror, is never removed by a push either.
    std::fs::write(trees.host("new-on-host.txt"), "x").expect("write");
    trees.mirror.push(&mut || {});
    assert!(trees.host("new-on-host.txt").exists());
    trees.mirror.pull(&mut || {});
    assert_eq!(read(&trees.inside("shared.txt")), "operator's\n");
}

#[test]
fn a_sparse_file_takes_no_more_room_on_the_host_than_inside() {
    let mut trees = Trees::new();
    let file = std::fs::File::create(trees.inside("huge.img")).expect("create");
    file.set_len(64 << 30).expect("a 64 GiB hole");
    std::os::unix::fs::FileExt::write_at(&file, b"tail", (64 << 30) - 4).expect("write");
    drop(file);
    let pushed = trees.mirror.push(&mut || {});
    assert_eq!(pushed.problems, Vec::<String>::new());
    let meta = std::fs::metadata(trees.host("huge.img")).expect("copied");
    assert_eq!(meta.len(), 64 << 30);
    assert!(meta.blocks() * 512 < 1 << 20, "{} blocks", meta.blocks());
    let copy = std::fs::File::open(trees.host("huge.img")).expect("open");
    let mut end = [0; 4];
    std::os::unix::fs::FileExt::read_at(&copy, &mut end, (64 << 30) - 4).expect("read");
    assert_eq!(&end, b"tail");
}

#[test]
fn hard_links_stay_links_so_the_host_holds_one_copy() {
    let mut trees = Trees::new();
    std::fs::write(trees.inside("data.bin"), vec![7u8; 1 << 20]).expect("write");
    for n in 0..50 {
        std::fs::hard_link(trees.inside("data.bin"), trees.inside(&format!("link{n}")))
            .expect("link");
    }
    trees.mirror.push(&mut || {});
    let first = std::fs::metadata(trees.host("data.bin")).expect("copied");
    assert_eq!(first.nlink(), 51);
    for n in 0..50 {
        let link = std::fs::metadata(trees.host(&format!("link{n}"))).expect("link copied");
        assert_eq!(link.ino(), first.ino());
    }
}

#[test]
fn symlinks_are_copied_as_links_and_never_followed() {
    let mut trees = Trees::new();
    let outside = tempfile::tempdir().expect("outside");
    std::fs::write(outside.path().join("secret"), "host secret").expect("write");
    // Planted on the host: a link to a file outside the workspace.
    symlink(outside.path().join("secret"), trees.host("leak")).expect("link");
    trees.mirror.pull(&mut || {});
    let inside = std::fs::read_link(trees.inside("leak")).expect("a link inside");
    assert_eq!(inside, outside.path().join("secret"));
    // The block turns a directory the host has into a link to the outside directory, and
    // writes through nothing: the push must not write into `outside`.
    std::fs::create_dir(trees.inside("out")).expect("dir");
    std::fs::write(trees.inside("out/file"), "x").expect("write");
    trees.mirror.push(&mut || {});
    std::fs::remove_dir_all(trees.inside("out")).expect("remove");
    symlink(outside.path(), trees.inside("out")).expect("link");
    std::fs::write(trees.inside("out2"), "y").expect("write");
    trees.mirror.push(&mut || {});
    assert_eq!(
        std::fs::read_link(trees.host("out")).expect("a link on the host"),
        outside.path()
    );
    let names: Vec<_> = std::fs::read_dir(outside.path())
        .expect("list")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("secret")]);
    assert_eq!(read(&outside.path().join("secret")), "host secret");
}

#[test]
fn set_id_bits_never_reach_the_host() {
    let mut trees = Trees::new();
    std::fs::write(trees.inside("tool"), "#!/bin/sh\n").expect("write");
    std::fs::set_permissions(trees.inside("tool"), PermissionsExt::from_mode(0o6755))
        .expect("chmod");
    std::fs::create_dir(trees.inside("drop")).expect("dir");
    std::fs::set_permissions(trees.inside("drop"), PermissionsExt::from_mode(0o3777))
        .expect("chmod");
    trees.mirror.push(&mut || {});
    let mode = |rel: &str| std::fs::metadata(trees.host(rel)).expect("copied").mode() & 0o7777;
    assert_eq!(mode("tool"), 0o755);
    assert_eq!(mode("drop"), 0o755, "nor group or other write");
}

#[test]
fn the_host_gains_no_group_or_other_write_and_keeps_what_it_had() {
    let mut trees = Trees::new();
    for (name, perms) in [("plain", 0o644), ("shared", 0o664)] {
        std::fs::write(trees.host(name), name).expect("write");
        std::fs::set_permissions(trees.host(name), PermissionsExt::from_mode(perms))
            .expect("chmod");
    }
    std::fs::create_dir(trees.host("dir")).expect("dir");
    std::fs::set_permissions(trees.host("dir"), PermissionsExt::from_mode(0o755)).expect("chmod");
    trees.mirror.pull(&mut || {});
    for (name, perms) in [("plain", 0o777), ("shared", 0o666), ("dir", 0o777)] {
        std::fs::set_permissions(trees.inside(name), PermissionsExt::from_mode(perms))
            .expect("chmod");
    }
    std::fs::write(trees.inside("new"), "new").expect("write");
    std::fs::set_permissions(trees.inside("new"), PermissionsExt::from_mode(0o666)).expect("chmod");
    let pushed = trees.mirror.push(&mut || {});
    assert!(pushed.problems.is_empty(), "{pushed:?}");
    let mode = |rel: &str| std::fs::metadata(trees.host(rel)).expect("copied").mode() & 0o7777;
    assert_eq!(mode("plain"), 0o755, "x is copied, write is not");
    assert_eq!(mode("shared"), 0o664, "the group write it had stays");
    assert_eq!(mode("dir"), 0o755);
    assert_eq!(mode("new"), 0o644);
}

#[test]
fn nesting_past_the_depth_limit_is_reported_not_followed() {
    let mut trees = Trees::new();
    let mut deep = trees.inside("d");
    for _ in 0..MAX_DEPTH + 5 {
        deep = deep.join("d");
    }
    std::fs::create_dir_all(&deep).expect("deep");
    let pushed = trees.mirror.push(&mut || {});
    assert!(
        pushed
            .problems
            .iter()
            .any(|p| p.contains("nested too deep")),
        "{pushed:?}"
    );
}

#[test]
fn hard_links_the_host_made_are_not_taken_for_changes() {
    let mut trees = Trees::new();
    std::fs::write(trees.inside("big.bin"), vec![1u8; 1 << 20]).expect("write");
    for n in 0..5 {
        std::fs::hard_link(trees.inside("big.bin"), trees.inside(&format!("l{n}"))).expect("link");
    }
    trees.mirror.push(&mut || {});
    // Nothing changed on either side: the next passes copy nothing, so a big file with
    // links can never fill /workspace with copies of itself.
    let pulled = trees.mirror.pull(&mut || {});
    assert_eq!((pulled.copied, pulled.no_space), (0, false), "{pulled:?}");
    assert_eq!(trees.mirror.push(&mut || {}), PassReport::default());
    assert_eq!(
        std::fs::metadata(trees.inside("l4"))
            .expect("there")
            .nlink(),
        6
    );
}

#[test]
fn what_the_mirror_never_knew_is_never_removed_to_make_way() {
    let mut trees = Trees::new();
    // On the host, during the block: the operator makes a directory with a file of theirs.
    std::fs::create_dir(trees.host("notes")).expect("dir");
    std::fs::write(trees.host("notes/mine.txt"), "keep me").expect("write");
    // The block makes a file of the same name.
    std::fs::write(trees.inside("notes"), "block's").expect("write");
    let pushed = trees.mirror.push(&mut || {});
    assert_eq!(read(&trees.host("notes/mine.txt")), "keep me");
    assert!(
        pushed
            .problems
            .iter()
            .any(|p| p.contains("both versions are kept")),
        "{pushed:?}"
    );
    // A directory the mirror made and knows whole is replaced as the block replaced it.
    std::fs::create_dir(trees.inside("old")).expect("dir");
    std::fs::write(trees.inside("old/a"), "a").expect("write");
    trees.mirror.push(&mut || {});
    std::fs::remove_dir_all(trees.inside("old")).expect("remove");
    std::fs::write(trees.inside("old"), "now a file").expect("write");
    trees.mirror.push(&mut || {});
    assert_eq!(read(&trees.host("old")), "now a file");
}

#[test]
fn a_file_both_sides_made_keeps_both_versions() {
    let mut trees = Trees::new();
    std::fs::write(trees.inside("report.txt"), "first\n").expect("write");
    trees.mirror.push(&mut || {});
    // While a block rewrites it, the operator rewrites it too.
    std::fs::write(trees.inside("report.txt"), "block's\n").expect("write");
    std::thread::sleep(std::time::Duration::from_millis(10));
    std::fs::write(trees.host("report.txt"), "operator's\n").expect("write");
    let pushed = trees.mirror.push(&mut || {});
    assert_eq!(read(&trees.host("report.txt")), "operator's\n");
    assert_eq!(read(&trees.inside("report.txt")), "block's\n");
    assert!(
        pushed.summary().is_some_and(|s| s.contains("report.txt")),
        "{pushed:?}"
    );
    // Nothing of the copy's own is left on either side.
    let partial = |dir: &Path| {
        std::fs::read_dir(dir).expect("list").any(|e| {
            e.expect("entry")
                .file_name()
                .to_string_lossy()
                .starts_with(PARTIAL)
        })
    };
    assert!(!partial(trees.host.path()) && !partial(trees.inside.path()));
}

#[test]
fn a_push_lists_what_it_touched_and_gives_up_listing_for_links_and_crowds() {
    let mut trees = Trees::new();
    std::fs::write(trees.host("kept.txt"), "same\n").expect("write");
    std::fs::write(trees.host("old.txt"), "old\n").expect("write");
    trees.mirror.pull(&mut || {});
    std::fs::write(trees.inside("new.txt"), "new\n").expect("write");
    std::fs::create_dir(trees.inside("dir")).expect("dir");
    std::fs::write(trees.inside("dir/inner.txt"), "inner\n").expect("write");
    std::fs::remove_file(trees.inside("old.txt")).expect("remove");
    let pushed = trees.mirror.push(&mut || {});
    let Touched::Paths(mut paths) = pushed.touched else {
        panic!("listed: {:?}", pushed.touched);
    };
    paths.sort();
    assert_eq!(paths, ["dir", "dir/inner.txt", "new.txt", "old.txt"]);

    // A second name of a new file is made a link at the host: fetched name by name, the
    // link would arrive as a copy.
    std::fs::write(trees.inside("pair"), "linked\n").expect("write");
    std::fs::hard_link(trees.inside("pair"), trees.inside("pair2")).expect("link");
    assert_eq!(trees.mirror.push(&mut || {}).touched, Touched::Many);
    assert_eq!(
        std::fs::metadata(trees.host("pair")).expect("pair").ino(),
        std::fs::metadata(trees.host("pair2")).expect("pair2").ino()
    );

    for n in 0..=MAX_TOUCHED {
        std::fs::write(trees.inside(&format!("f{n}")), "x").expect("write");
    }
    assert_eq!(trees.mirror.push(&mut || {}).touched, Touched::Many);
    let untouched = trees.mirror.push(&mut || {});
    assert_eq!(untouched.touched, Touched::Paths(Vec::new()));
}
