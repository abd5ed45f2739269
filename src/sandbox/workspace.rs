//! The directory mounted at /workspace.

use std::collections::HashMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::sandbox::SandboxError;

/// The user-named workspace, or a new per-session directory under `data_dir`, made
/// writable for the container user (a root-owned 0755 directory would not be).
pub(crate) fn prepare(
    named: Option<&Path>,
    data_dir: &Path,
    session: &str,
    uid: u32,
    gid: u32,
) -> Result<PathBuf, SandboxError> {
    if let Some(path) = named {
        if !path.is_dir() {
            return Err(SandboxError::Unavailable(format!(
                "sandbox.workspace {} is not a directory; create it or unset sandbox.workspace",
                path.display()
            )));
        }
        return path.canonicalize().map_err(|err| {
            SandboxError::Unavailable(format!("sandbox.workspace {}: {err}", path.display()))
        });
    }
    let path = data_dir.join("workspaces").join(session);
    let fail = |what: &str, err: std::io::Error| {
        SandboxError::Unavailable(format!("cannot {what} workspace {}: {err}", path.display()))
    };
    std::fs::create_dir_all(&path).map_err(|err| fail("create", err))?;
    // Only its owner may reach into it: nothing a block leaves there is anybody else's to run.
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .map_err(|err| fail("restrict", err))?;
    let owner = std::fs::metadata(&path).map_err(|err| fail("inspect", err))?;
    if std::os::unix::fs::MetadataExt::uid(&owner) != uid {
        // Only root can give the directory away; a non-root airlock runs code as itself.
        std::os::unix::fs::chown(&path, Some(uid), Some(gid))
            .map_err(|err| fail("hand over", err))?;
    }
    Ok(path)
}

/// `path` itself is a directory, not a symlink to one.
pub(crate) fn is_plain_dir(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|meta| meta.is_dir())
}

/// Entries a sweep looks at before it stops: a bound on its time.
const SWEEP_ENTRIES: usize = 200_000;

/// The group and other write bits entries had before a block, by path and by inode (a
/// block may rename a file, or rewrite it as a new one), so the sweep after it takes away
/// only what the block added.
/// The workspace directory itself gets back its whole mode: it is the operator's, 0700 for
/// a session's own.
#[derive(Debug, Default)]
pub(crate) struct WriteBits {
    by_path: HashMap<PathBuf, u32>,
    by_inode: HashMap<(u64, u64), u32>,
    root: Option<u32>,
}

impl WriteBits {
    /// What `root` and everything under it have now.
    pub(crate) fn of(root: &Path) -> Self {
        let mut bits = Self {
            root: std::fs::symlink_metadata(root)
                .ok()
                .map(|meta| meta.mode() & 0o7777),
            ..Self::default()
        };
        visit(root, |path, meta| {
            let write = meta.mode() & 0o022;
            if write != 0 {
                bits.by_path.insert(path.to_path_buf(), write);
                bits.by_inode.insert((meta.dev(), meta.ino()), write);
            }
        });
        bits
    }

    fn allowed(&self, path: &Path, meta: &std::fs::Metadata) -> u32 {
        let by_path = self.by_path.get(path).copied().unwrap_or(0);
        let by_inode = self.by_inode.get(&(meta.dev(), meta.ino())).copied();
        by_path | by_inode.unwrap_or(0)
    }
}

/// What a sweep after a block took away.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Swept {
    /// Entries that had a setuid or setgid bit.
    pub(crate) special: usize,
    /// Entries that had group or other write they did not have before the block.
    pub(crate) opened: usize,
}

/// After a block, in a workspace it wrote directly: clears the setuid and setgid bits of
/// `root` and everything under it, and the group and other write bits `before` did not
/// have, never following a symlink. A block must not leave a setuid copy of a shell that
/// someone on the host could run, nor open the operator's files to everyone.
pub(crate) fn sweep(root: &Path, before: &WriteBits) -> Swept {
    let mut swept = Swept::default();
    visit(root, |path, meta| {
        let mode = meta.mode() & 0o7777;
        let special = mode & 0o6000;
        let opened = mode & 0o022 & !before.allowed(path, meta);
        let mut wanted = mode & !special & !opened;
        if path == root {
            wanted = before.root.unwrap_or(wanted);
        }
        if wanted != mode {
            let plain = std::fs::Permissions::from_mode(wanted);
            if std::fs::set_permissions(path, plain).is_ok() {
                swept.special += usize::from(special != 0);
                swept.opened += usize::from(mode & !special != wanted);
            }
        }
    });
    swept
}

/// Calls `each` for `root` and every entry under it that is not a symlink, up to
/// [`SWEEP_ENTRIES`], never following a symlink.
fn visit(root: &Path, mut each: impl FnMut(&Path, &std::fs::Metadata)) {
    if let Ok(meta) = std::fs::symlink_metadata(root)
        && meta.is_dir()
    {
        each(root, &meta);
    }
    let mut pending = vec![root.to_path_buf()];
    let mut seen = 0;
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            seen += 1;
            if seen > SWEEP_ENTRIES {
                return;
            }
            let path = entry.path();
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if meta.file_type().is_symlink() {
                continue;
            }
            each(&path, &meta);
            if meta.is_dir() {
                pending.push(path);
            }
        }
    }
}

/// Removes the per-session workspace `prepare` made under `data_dir` (a session's own, never
/// a user-named `sandbox.workspace`). Nothing outside `data_dir/workspaces` is touched: a
/// symlink found on the way is removed as a link, never followed. `Ok(false)` when there was
/// no workspace.
pub(crate) fn remove_session_workspace(data_dir: &Path, session: &str) -> Result<bool, String> {
    let plain = !matches!(session, "" | "." | "..") && !session.contains('/');
    if !plain {
        return Err(format!(
            "session id `{session}` is not a plain name, so no workspace is removed for it"
        ));
    }
    let parent = data_dir.join("workspaces");
    let Some(parent_kind) = kind_of(&parent)? else {
        return Ok(false);
    };
    if !parent_kind.is_dir() {
        return Err(format!(
            "{} is not a plain directory (a symlink?), so the workspaces in it are left alone",
            parent.display()
        ));
    }
    let path = parent.join(session);
    let Some(kind) = kind_of(&path)? else {
        return Ok(false);
    };
    let removed = if kind.is_dir() {
        remove_tree(&path)
    } else {
        // A link (or a stray file) where the directory should be: only it goes.
        std::fs::remove_file(&path)
    };
    removed
        .map(|()| true)
        .map_err(|err| format!("cannot remove workspace {}: {err}", path.display()))
}

/// What `path` itself is, without following a symlink; `None` when there is nothing.
fn kind_of(path: &Path) -> Result<Option<std::fs::FileType>, String> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) => Ok(Some(meta.file_type())),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(format!("cannot inspect {}: {err}", path.display())),
    }
}

/// `remove_dir_all` removes symlinks without following them. Code may have left directories
/// without write permission (`chmod 555`), so on failure those are opened up and it tries
/// once more.
fn remove_tree(path: &Path) -> std::io::Result<()> {
    if std::fs::remove_dir_all(path).is_ok() {
        return Ok(());
    }
    open_up(path)?;
    std::fs::remove_dir_all(path)
}

/// Gives the owner full access to `dir` and every real directory below it (links are not
/// followed: only entries whose own type is a directory are visited).
fn open_up(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::symlink_metadata(dir)?.permissions().mode();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode | 0o700))?;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            open_up(&entry.path())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_workspace_is_created_for_the_code_user() {
        let data = tempfile::tempdir().expect("tempdir");
        let uid = rustix::process::getuid().as_raw();
        let gid = rustix::process::getgid().as_raw();
        let path = prepare(None, data.path(), "s-1", uid, gid).expect("created");
        assert!(path.is_dir() && path.ends_with("workspaces/s-1"));
        let named = prepare(Some(data.path()), data.path(), "s-2", uid, gid).expect("named");
        assert_eq!(named, data.path().canonicalize().expect("canonical"));
        let err = prepare(Some(&data.path().join("nope")), data.path(), "s", uid, gid).unwrap_err();
        assert!(err.to_string().contains("not a directory"));
    }

    #[test]
    fn the_sweep_takes_back_only_the_write_a_block_added() {
        let root = tempfile::tempdir().expect("tempdir");
        let path = |name: &str| root.path().join(name);
        let set = |name: &str, mode: u32| {
            std::fs::set_permissions(path(name), std::fs::Permissions::from_mode(mode))
                .expect("chmod")
        };
        std::fs::write(path("shared"), "s").expect("write");
        std::fs::write(path("plain"), "p").expect("write");
        std::fs::create_dir(path("d")).expect("dir");
        set("shared", 0o664);
        set("plain", 0o644);
        set("", 0o700);
        let before = WriteBits::of(root.path());
        // The block: everything open to all, one file renamed, one new, one setuid.
        for name in ["shared", "plain", "d", ""] {
            set(name, 0o777);
        }
        std::fs::rename(path("shared"), path("moved")).expect("rename");
        std::fs::write(path("d/new"), "n").expect("write");
        set("d/new", 0o4777);
        let swept = sweep(root.path(), &before);
        assert_eq!(
            swept,
            Swept {
                special: 1,
                opened: 5
            }
        );
        let mode =
            |name: &str| std::fs::symlink_metadata(path(name)).expect("meta").mode() & 0o7777;
        assert_eq!(mode("moved"), 0o775, "group write it had stays, by inode");
        assert_eq!(mode("plain"), 0o755);
        assert_eq!(mode("d"), 0o755);
        assert_eq!(mode("d/new"), 0o755);
        assert_eq!(mode(""), 0o700);
    }

    #[test]
    fn removing_a_workspace_never_follows_a_link_out_of_the_data_dir() {
        use std::os::unix::fs::{PermissionsExt, symlink};
        let data = tempfile::tempdir().expect("tempdir");
        let outside = tempfile::tempdir().expect("tempdir");
        std::fs::write(outside.path().join("keep.txt"), "mine").expect("write");
        let uid = rustix::process::getuid().as_raw();
        let gid = rustix::process::getgid().as_raw();
        let path = prepare(None, data.path(), "s-1", uid, gid).expect("created");
        // What a block could leave: a link out, and a directory it made read-only.
        symlink(outside.path(), path.join("escape")).expect("link");
        std::fs::create_dir_all(path.join("locked/inner")).expect("dirs");
        std::fs::write(path.join("locked/inner/f"), "x").expect("write");
        std::fs::set_permissions(path.join("locked"), std::fs::Permissions::from_mode(0o500))
            .expect("chmod");
        assert_eq!(remove_session_workspace(data.path(), "s-1"), Ok(true));
        assert!(!path.exists());
        assert!(
            outside.path().join("keep.txt").exists(),
            "the link's target stays"
        );
        assert_eq!(remove_session_workspace(data.path(), "s-1"), Ok(false));

        // A workspace that is itself a link: only the link goes.
        symlink(outside.path(), data.path().join("workspaces/s-2")).expect("link");
        assert_eq!(remove_session_workspace(data.path(), "s-2"), Ok(true));
        assert!(outside.path().join("keep.txt").exists());

        // Ids that are not a plain name remove nothing.
        for id in ["..", "../x", ""] {
            assert!(remove_session_workspace(data.path(), id).is_err(), "{id}");
        }
        assert!(data.path().exists());
    }

    #[test]
    fn a_workspaces_directory_that_is_a_link_is_left_alone() {
        use std::os::unix::fs::symlink;
        let data = tempfile::tempdir().expect("tempdir");
        let outside = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(outside.path().join("s-1")).expect("dir");
        symlink(outside.path(), data.path().join("workspaces")).expect("link");
        let err = remove_session_workspace(data.path(), "s-1").unwrap_err();
        assert!(err.contains("not a plain directory"), "{err}");
        assert!(outside.path().join("s-1").is_dir());
    }
}
