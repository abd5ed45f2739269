//! The host copy of a workspace that lives in an engine's volume: packed into a tar that
//! fills the volume, and brought up to date from the tar the engine gives back after every
//! run. Only airlock writes the copy; still, nothing in an archive is followed out of it: a
//! path with `..` or a root is skipped, no write goes through a symlink, set-id bits are
//! dropped, and no entry gains group or other write it did not have.
//!
//! The operator may work in the host copy while a block runs. What both sides held after
//! the last copy is kept ([`SyncState`]): a host entry is replaced or removed only when it
//! is still what the last copy left there; an entry changed on both sides keeps each
//! version on its side, and is named.

mod incoming;
mod marks;
#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

pub(crate) use incoming::{Incoming, Scope};
pub(crate) use marks::SyncState;
use marks::{HostMark, Synced, VolumeMark};

/// What each packed entry is on both sides once the archive is in the volume.
pub(crate) type Marks = Vec<(PathBuf, Synced)>;

/// Entries of an archive taken at most: the workspace's own inode limit is lower.
const MAX_ENTRIES: usize = 1_000_000;

/// What bringing the copy up to date did.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Applied {
    pub(crate) written: usize,
    pub(crate) removed: usize,
    /// Entries that are not files, directories or symlinks (FIFOs, devices): not copied.
    pub(crate) skipped: usize,
    /// Changed both on the host and in the volume: each side keeps its own version.
    pub(crate) held: Vec<PathBuf>,
    /// What could not be written or removed on the host, and why; everything else was.
    pub(crate) failed: Vec<(PathBuf, String)>,
}

impl Applied {
    pub(crate) fn add(&mut self, other: Self) {
        self.written += other.written;
        self.removed += other.removed;
        self.skipped += other.skipped;
        self.held.extend(other.held);
        self.failed.extend(other.failed);
    }
}

/// `root` as an archive whose entries sit under `top/`, owned by `uid:gid` (the code's user
/// in the container), in an unnamed temporary file; with what each entry is on both sides
/// once the archive is in the volume.
pub(crate) fn pack(
    root: &Path,
    top: &str,
    owner: (u32, u32),
) -> std::io::Result<(File, SyncState)> {
    let mut state = SyncState::default();
    let (file, marks) = pack_where(root, top, owner, |_, _| true)?;
    state.extend(marks);
    Ok((file, state))
}

/// What the operator changed or made in `root` since the last copy, as an archive under
/// `./`, or `None` when nothing was. An entry held apart after a conflict, and what is
/// below it, stay out until the operator changes it again.
pub(crate) fn pack_changes(
    root: &Path,
    owner: (u32, u32),
    state: &SyncState,
) -> std::io::Result<Option<(File, Marks)>> {
    let mut held = HashSet::new();
    let (file, marks) = pack_where(root, ".", owner, |relative, meta| {
        if relative.ancestors().skip(1).any(|up| held.contains(up)) {
            return false;
        }
        if state.host_changed(relative, meta) {
            return true;
        }
        if state.get(relative).is_some_and(|known| known.held) {
            held.insert(relative.to_path_buf());
        }
        false
    })?;
    Ok((!marks.is_empty()).then_some((file, marks)))
}

/// The entries of `root` that `wanted` takes, parents before children, under `top`.
fn pack_where(
    root: &Path,
    top: &str,
    (uid, gid): (u32, u32),
    mut wanted: impl FnMut(&Path, &std::fs::Metadata) -> bool,
) -> std::io::Result<(File, Marks)> {
    let mut builder = tar::Builder::new(tempfile::tempfile()?);
    builder.follow_symlinks(false);
    builder.mode(tar::HeaderMode::Complete);
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Directory);
    header.set_mode(0o700);
    header.set_uid(u64::from(uid));
    header.set_gid(u64::from(gid));
    header.set_size(0);
    let modified = std::fs::metadata(root)?.modified()?;
    let since_epoch = modified
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    header.set_mtime(since_epoch.as_secs());
    builder.append_data(&mut header, top, std::io::empty())?;
    let mut marks = Vec::new();
    for entry in walk(root)? {
        let relative = entry.strip_prefix(root).unwrap_or(&entry).to_path_buf();
        let meta = std::fs::symlink_metadata(&entry)?;
        let kind = meta.file_type();
        if !(kind.is_file() || kind.is_dir() || kind.is_symlink()) || !wanted(&relative, &meta) {
            continue;
        }
        let mut header = tar::Header::new_gnu();
        header.set_metadata_in_mode(&meta, tar::HeaderMode::Complete);
        header.set_uid(u64::from(uid));
        header.set_gid(u64::from(gid));
        let mode = meta.permissions().mode() & 0o777;
        header.set_mode(mode);
        let name = Path::new(top).join(&relative);
        let volume = if kind.is_symlink() {
            let target = std::fs::read_link(&entry)?;
            builder.append_link(&mut header, &name, &target)?;
            VolumeMark::symlink(&target)
        } else if kind.is_dir() {
            builder.append_data(&mut header, &name, std::io::empty())?;
            VolumeMark::dir(mode)
        } else {
            let mut content = Hashing::new(File::open(&entry)?.take(meta.len()));
            builder.append_data(&mut header, &name, &mut content)?;
            VolumeMark::file(mode, content.digest())
        };
        let host = HostMark::of(&meta);
        let synced = Synced {
            host,
            volume,
            held: false,
        };
        marks.push((relative, synced));
    }
    let mut file = builder.into_inner()?;
    file.seek(SeekFrom::Start(0))?;
    Ok((file, marks))
}

/// A reader that hashes what passes through it.
struct Hashing<R> {
    inner: R,
    hasher: sha2::Sha256,
}

impl<R: Read> Hashing<R> {
    fn new(inner: R) -> Self {
        use sha2::Digest;
        Self {
            inner,
            hasher: sha2::Sha256::new(),
        }
    }

    fn digest(self) -> [u8; 32] {
        use sha2::Digest;
        self.hasher.finalize().into()
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use sha2::Digest;
        let read = self.inner.read(buf)?;
        self.hasher.update(&buf[..read]);
        Ok(read)
    }
}

/// Everything under `root`, parents before children, never through a symlink.
fn walk(root: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if std::fs::symlink_metadata(&path)?.is_dir() {
                pending.push(path.clone());
            }
            found.push(path);
            if found.len() > MAX_ENTRIES {
                return Err(std::io::Error::other("more than a million entries"));
            }
        }
    }
    Ok(found)
}

/// `path` when it is relative, not empty, and has no `..`.
fn plain(path: &Path) -> Option<PathBuf> {
    let mut relative = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => relative.push(part),
            Component::CurDir => {}
            _ => return None,
        }
    }
    (!relative.as_os_str().is_empty()).then_some(relative)
}

/// Every directory between `root` and the entry is a directory, not a symlink.
fn parent_is_plain(root: &Path, relative: &Path) -> bool {
    let mut dir = root.to_path_buf();
    let Some(parent) = relative.parent() else {
        return true;
    };
    parent.components().all(|part| {
        dir.push(part);
        std::fs::symlink_metadata(&dir).is_ok_and(|meta| meta.is_dir())
    })
}
