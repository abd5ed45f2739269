use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::*;

const OWNER: (u32, u32) = (1000, 1000);

fn archive_of(build: impl FnOnce(&mut tar::Builder<File>)) -> File {
    let mut builder = tar::Builder::new(tempfile::tempfile().expect("tempfile"));
    build(&mut builder);
    let mut file = builder.into_inner().expect("tar");
    file.seek(SeekFrom::Start(0)).expect("seek");
    file
}

fn file_header(size: u64, mode: u32) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_size(size);
    header.set_mode(mode);
    header.set_entry_type(tar::EntryType::Regular);
    header
}

fn apply_in(root: &Path, archive: Option<File>, scope: Scope, state: &mut SyncState) -> Applied {
    let incoming = Incoming::read(archive, scope).expect("read");
    let (incoming, host) = incoming.listed(root).expect("listed");
    incoming.apply(root, host, state)
}

fn apply_tree(root: &Path, archive: File, state: &mut SyncState) -> Applied {
    apply_in(root, Some(archive), Scope::Tree, state)
}

/// A host copy and the volume filled from it, as a session starts them.
struct Sides {
    host: tempfile::TempDir,
    volume: tempfile::TempDir,
    state: SyncState,
}

impl Sides {
    fn new(files: &[(&str, &str)]) -> Self {
        let host = tempfile::tempdir().expect("tempdir");
        for (name, content) in files {
            let path = host.path().join(name);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("dirs");
            std::fs::write(path, content).expect("write");
        }
        let volume = tempfile::tempdir().expect("tempdir");
        let (archive, state) = pack(host.path(), "workspace", OWNER).expect("pack");
        apply_tree(volume.path(), archive, &mut SyncState::default());
        Self {
            host,
            volume,
            state,
        }
    }

    /// The whole volume back onto the host, as after a run that touched many paths.
    fn copy_back(&mut self) -> Applied {
        let (archive, _) = pack(self.volume.path(), "workspace", OWNER).expect("pack");
        apply_tree(self.host.path(), archive, &mut self.state)
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.host.path().join(name)).unwrap_or_default()
    }
}

#[test]
fn a_packed_tree_applied_elsewhere_is_the_same_tree() {
    let from = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(from.path().join("sub")).expect("dir");
    std::fs::write(from.path().join("sub/a.txt"), "alpha").expect("write");
    std::os::unix::fs::symlink("sub/a.txt", from.path().join("link")).expect("symlink");
    let to = tempfile::tempdir().expect("tempdir");
    let mut state = SyncState::default();
    let (packed, _) = pack(from.path(), "workspace", OWNER).expect("pack");
    let applied = apply_tree(to.path(), packed, &mut state);
    assert_eq!(
        std::fs::read_to_string(to.path().join("sub/a.txt")).expect("read"),
        "alpha"
    );
    assert_eq!(
        std::fs::read_link(to.path().join("link")).expect("link"),
        Path::new("sub/a.txt")
    );
    assert_eq!((applied.written, applied.removed), (3, 0));
    std::fs::remove_file(from.path().join("link")).expect("rm");
    let (again, _) = pack(from.path(), "workspace", OWNER).expect("pack");
    let removed = apply_tree(to.path(), again, &mut state);
    assert_eq!((removed.written, removed.removed), (0, 1), "{removed:?}");
    assert!(std::fs::symlink_metadata(to.path().join("link")).is_err());
}

#[test]
fn the_operators_work_during_a_run_survives_a_whole_tree_copy_back() {
    let mut sides = Sides::new(&[("notes.txt", "v1\n"), ("old.txt", "old\n"), ("d/x", "x")]);
    // The block: rewrites notes.txt, removes old.txt and d, makes new.txt.
    let volume = sides.volume.path();
    std::fs::write(volume.join("notes.txt"), "block\n").expect("write");
    std::fs::remove_file(volume.join("old.txt")).expect("rm");
    std::fs::remove_dir_all(volume.join("d")).expect("rm");
    std::fs::write(volume.join("new.txt"), "new\n").expect("write");
    // The operator, meanwhile: edits notes.txt, makes mine.txt and d/mine.
    let host = sides.host.path().to_path_buf();
    std::fs::write(host.join("notes.txt"), "operator\n").expect("write");
    std::fs::write(host.join("mine.txt"), "mine\n").expect("write");
    std::fs::write(host.join("d/mine"), "mine\n").expect("write");
    let applied = sides.copy_back();
    assert_eq!(sides.read("notes.txt"), "operator\n");
    assert_eq!(sides.read("mine.txt"), "mine\n");
    assert_eq!(sides.read("d/mine"), "mine\n");
    assert_eq!(sides.read("new.txt"), "new\n");
    assert!(!host.join("old.txt").exists() && !host.join("d/x").exists());
    assert_eq!(applied.held, [PathBuf::from("notes.txt")], "{applied:?}");

    // Held apart: the next copy back leaves both, the copy in sends only the operator's
    // new files, until one side changes notes.txt again.
    let again = sides.copy_back();
    assert_eq!(sides.read("notes.txt"), "operator\n");
    assert!(again.held.is_empty(), "{again:?}");
    let (_, marks) = pack_changes(&host, OWNER, &sides.state)
        .expect("pack")
        .expect("changes");
    let mut sent: Vec<PathBuf> = marks.into_iter().map(|(path, _)| path).collect();
    sent.sort();
    let expected: Vec<PathBuf> = ["d", "d/mine", "mine.txt"]
        .iter()
        .map(PathBuf::from)
        .collect();
    assert_eq!(sent, expected);
    std::fs::write(sides.volume.path().join("notes.txt"), "block again\n").expect("write");
    sides.copy_back();
    assert_eq!(sides.read("notes.txt"), "block again\n");
}

#[test]
fn a_touched_path_obeys_the_same_rule() {
    let mut sides = Sides::new(&[
        ("notes.txt", "v1\n"),
        ("gone.txt", "g\n"),
        ("kept.txt", "k"),
    ]);
    let host = sides.host.path().to_path_buf();
    std::fs::write(host.join("notes.txt"), "operator\n").expect("write");
    std::fs::write(host.join("kept.txt"), "operator\n").expect("write");
    let block = archive_of(|builder| {
        let mut header = file_header(6, 0o644);
        builder
            .append_data(&mut header, "notes.txt", &b"block\n"[..])
            .expect("file");
    });
    let state = &mut sides.state;
    let applied = apply_in(&host, Some(block), Scope::Path("notes.txt".into()), state);
    assert_eq!(applied.held, [PathBuf::from("notes.txt")]);
    // Removed by the block: an unchanged file goes, a changed one stays.
    for name in ["gone.txt", "kept.txt"] {
        apply_in(&host, None, Scope::Path(name.into()), state);
    }
    assert_eq!(sides.read("notes.txt"), "operator\n");
    assert!(!host.join("gone.txt").exists());
    assert_eq!(sides.read("kept.txt"), "operator\n");
    // The block's version of the file both changed goes: the operator's stays.
    apply_in(
        &host,
        None,
        Scope::Path("notes.txt".into()),
        &mut sides.state,
    );
    assert_eq!(sides.read("notes.txt"), "operator\n");
}

#[test]
fn no_entry_gains_group_or_other_write_and_one_that_had_it_keeps_it() {
    let sides = Sides::new(&[("plain.txt", "p"), ("shared.txt", "s"), ("d/f", "f")]);
    let host = sides.host.path();
    let mode = |name: &str| {
        std::fs::symlink_metadata(host.join(name))
            .expect("meta")
            .permissions()
            .mode()
            & 0o7777
    };
    std::fs::set_permissions(host.join("plain.txt"), PermissionsExt::from_mode(0o644)).unwrap();
    std::fs::set_permissions(host.join("shared.txt"), PermissionsExt::from_mode(0o664)).unwrap();
    std::fs::set_permissions(host.join("d"), PermissionsExt::from_mode(0o755)).unwrap();
    let mut state = pack(host, "workspace", OWNER).expect("pack").1;
    let block = archive_of(|builder| {
        let mut dir = tar::Header::new_gnu();
        dir.set_entry_type(tar::EntryType::Directory);
        dir.set_size(0);
        for (name, mode) in [("workspace/d", 0o777), ("workspace/newdir", 0o777)] {
            dir.set_mode(mode);
            builder
                .append_data(&mut dir, name, std::io::empty())
                .unwrap();
        }
        for (name, mode) in [
            ("workspace/plain.txt", 0o777),
            ("workspace/shared.txt", 0o666),
            ("workspace/d/f", 0o666),
            ("workspace/new.txt", 0o4777),
        ] {
            let mut header = file_header(1, mode);
            builder.append_data(&mut header, name, &b"p"[..]).unwrap();
        }
    });
    let applied = apply_tree(host, block, &mut state);
    assert!(applied.failed.is_empty(), "{applied:?}");
    assert_eq!(mode("plain.txt"), 0o755, "x is copied, write is not");
    assert_eq!(mode("shared.txt"), 0o664, "group write it had stays");
    assert_eq!(mode("d"), 0o755);
    assert_eq!(mode("d/f"), 0o644);
    assert_eq!(mode("new.txt"), 0o755);
    assert_eq!(mode("newdir"), 0o755);
}

#[test]
fn an_entry_that_cannot_be_written_is_named_and_the_rest_arrives() {
    let mut sides = Sides::new(&[("a.txt", "a"), ("sub/b.txt", "b")]);
    let volume = sides.volume.path();
    std::fs::write(volume.join("a.txt"), "A").expect("write");
    std::fs::create_dir(volume.join("sub/deeper")).expect("dir");
    std::fs::write(volume.join("sub/deeper/c.txt"), "c").expect("write");
    std::fs::write(volume.join("sub/b.txt"), "B").expect("write");
    // A directory on the host nothing can be made in: immutable (root), or read-only.
    let sub = sides.host.path().join("sub");
    let chattr = |flag: &str| {
        let _ = std::process::Command::new("chattr")
            .arg(flag)
            .arg(&sub)
            .output();
    };
    let lock = |on: bool| {
        if on {
            std::fs::set_permissions(&sub, PermissionsExt::from_mode(0o500)).expect("chmod");
            chattr("+i");
        } else {
            chattr("-i");
            std::fs::set_permissions(&sub, PermissionsExt::from_mode(0o700)).expect("chmod");
        }
    };
    lock(true);
    let locked = std::fs::write(sub.join("probe"), "x").is_err();
    let applied = sides.copy_back();
    lock(false);
    assert!(locked, "the test could not lock a directory");
    let mut failed: Vec<&Path> = applied.failed.iter().map(|(p, _)| p.as_path()).collect();
    failed.sort();
    assert_eq!(failed, [Path::new("sub/b.txt"), Path::new("sub/deeper")]);
    assert_eq!(sides.read("a.txt"), "A");
}

#[test]
fn an_archive_cannot_write_outside_the_copy_or_through_a_symlink() {
    let outside = tempfile::tempdir().expect("tempdir");
    let root = tempfile::tempdir().expect("tempdir");
    std::os::unix::fs::symlink(outside.path(), root.path().join("escape")).expect("link");
    let archive = archive_of(|builder| {
        let mut link = tar::Header::new_gnu();
        link.set_entry_type(tar::EntryType::Symlink);
        link.set_size(0);
        builder
            .append_link(&mut link, "workspace/escape", outside.path())
            .expect("link");
        for name in ["workspace/escape/planted", "workspace/../planted"] {
            let mut header = file_header(4, 0o644);
            builder
                .append_data(&mut header, name, &b"evil"[..])
                .unwrap_or_else(|_| {
                    // tar refuses `..` when building; write the raw name instead.
                    header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
                    header.set_cksum();
                    builder.append(&header, &b"evil"[..]).expect("raw");
                });
        }
        let mut setuid = file_header(2, 0o4755);
        builder
            .append_data(&mut setuid, "workspace/tool", &b"#!"[..])
            .expect("setuid");
    });
    apply_tree(root.path(), archive, &mut SyncState::default());
    assert!(!outside.path().join("planted").exists());
    assert!(
        !root
            .path()
            .parent()
            .expect("parent")
            .join("planted")
            .exists()
    );
    let mode = std::fs::metadata(root.path().join("tool"))
        .expect("tool")
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o755, "the setuid bit is dropped");
}

#[test]
fn hard_links_stay_links_and_never_multiply_the_bytes() {
    use std::os::unix::fs::MetadataExt;
    let root = tempfile::tempdir().expect("tempdir");
    let archive = archive_of(|builder| {
        let mut header = file_header(4, 0o644);
        builder
            .append_data(&mut header, "workspace/big", &b"data"[..])
            .expect("file");
        for name in 0..100 {
            let mut link = tar::Header::new_gnu();
            link.set_entry_type(tar::EntryType::Link);
            link.set_size(0);
            builder
                .append_link(&mut link, format!("workspace/name{name}"), "workspace/big")
                .expect("link");
        }
    });
    apply_tree(root.path(), archive, &mut SyncState::default());
    let inode = std::fs::metadata(root.path().join("big"))
        .expect("big")
        .ino();
    for name in 0..100 {
        let meta = std::fs::metadata(root.path().join(format!("name{name}"))).expect("name");
        assert_eq!(meta.ino(), inode, "name{name} is the same file");
    }
    assert_eq!(
        std::fs::metadata(root.path().join("big")).unwrap().nlink(),
        101
    );
}

#[test]
fn one_touched_path_is_placed_removed_or_refused() {
    let sides = Sides::new(&[("d/sibling", "stays"), ("d/gone", "old")]);
    let (root, mut state) = (sides.host.path(), sides.state.clone());
    // The engine archives d/new.txt by its last component.
    let one = archive_of(|builder| {
        let mut header = file_header(3, 0o644);
        builder
            .append_data(&mut header, "new.txt", &b"new"[..])
            .expect("file");
    });
    let placed = apply_in(root, Some(one), Scope::Path("d/new.txt".into()), &mut state);
    assert_eq!(placed.written, 1);
    assert_eq!(
        std::fs::read_to_string(root.join("d/new.txt")).unwrap(),
        "new"
    );
    assert!(root.join("d/sibling").exists(), "siblings stay");
    let removed = apply_in(root, None, Scope::Path("d/gone".into()), &mut state);
    assert_eq!(removed.removed, 1);
    assert!(!root.join("d/gone").exists());

    let outside = tempfile::tempdir().expect("tempdir");
    std::os::unix::fs::symlink(outside.path(), root.join("out")).expect("link");
    for path in ["out/planted", "../planted", "/etc/planted"] {
        let evil = archive_of(|builder| {
            let mut header = file_header(4, 0o644);
            builder
                .append_data(&mut header, "planted", &b"evil"[..])
                .expect("file");
        });
        apply_in(root, Some(evil), Scope::Path(path.into()), &mut state);
    }
    assert!(!outside.path().join("planted").exists());
    assert!(!root.parent().unwrap().join("planted").exists());
    // An archive whose entries are named for another path places nothing.
    let other = archive_of(|builder| {
        let mut header = file_header(1, 0o644);
        builder
            .append_data(&mut header, "elsewhere", &b"x"[..])
            .expect("file");
    });
    let nothing = apply_in(root, Some(other), Scope::Path("d/x".into()), &mut state);
    assert_eq!(nothing.written, 0);
    assert!(!root.join("elsewhere").exists());
}

#[test]
fn a_same_size_rewrite_is_written() {
    let mut sides = Sides::new(&[("n", "1")]);
    std::fs::write(sides.volume.path().join("n"), "2").expect("write");
    let applied = sides.copy_back();
    assert_eq!(applied.written, 1);
    assert_eq!(sides.read("n"), "2");
}
