//! What the host copy and the volume held, entry by entry, when they last agreed: an entry
//! on one side is replaced or removed only while that side still holds what it held then.

use std::collections::HashMap;
use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// What of a host entry tells that someone changed it: a new inode, new content (size and
/// times), a new mode. A directory's times move with what it holds, so only its inode and
/// mode count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HostMark {
    ino: u64,
    mode: u32,
    dir: bool,
    size: u64,
    mtime: (i64, i64),
    /// Left out for a file with several links: making a link changes it, on every name.
    ctime: Option<(i64, i64)>,
}

impl HostMark {
    pub(crate) fn of(meta: &Metadata) -> Self {
        let dir = meta.is_dir();
        let ctime = (meta.nlink() == 1).then(|| (meta.ctime(), meta.ctime_nsec()));
        Self {
            ino: meta.ino(),
            mode: meta.mode(),
            dir,
            size: if dir { 0 } else { meta.size() },
            mtime: if dir {
                (0, 0)
            } else {
                (meta.mtime(), meta.mtime_nsec())
            },
            ctime: if dir { None } else { ctime },
        }
    }

    /// The entry at `path` itself, never followed; `None` when there is nothing.
    pub(crate) fn read(path: &Path) -> Option<Self> {
        std::fs::symlink_metadata(path)
            .ok()
            .map(|meta| Self::of(&meta))
    }

    /// Whether `now` is still what `self` recorded.
    pub(crate) fn matches(self, now: Self) -> bool {
        let ctime = self.ctime.is_none() || now.ctime.is_none() || self.ctime == now.ctime;
        Self {
            ctime: now.ctime,
            ..self
        } == now
            && ctime
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Dir,
    File,
    Symlink,
}

/// What of a volume entry tells that a block changed it: its kind, mode and content (a
/// file's bytes, a symlink's target), as its archive gives them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct VolumeMark {
    pub(crate) kind: Kind,
    pub(crate) mode: u32,
    pub(crate) digest: [u8; 32],
}

impl VolumeMark {
    pub(crate) fn dir(mode: u32) -> Self {
        Self {
            kind: Kind::Dir,
            mode: mode & 0o7777,
            digest: [0; 32],
        }
    }

    pub(crate) fn file(mode: u32, digest: [u8; 32]) -> Self {
        Self {
            kind: Kind::File,
            mode: mode & 0o7777,
            digest,
        }
    }

    pub(crate) fn symlink(target: &Path) -> Self {
        use sha2::Digest;
        use std::os::unix::ffi::OsStrExt;
        Self {
            kind: Kind::Symlink,
            mode: 0,
            digest: sha2::Sha256::digest(target.as_os_str().as_bytes()).into(),
        }
    }
}

/// One entry as both sides held it after the last copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Synced {
    pub(crate) host: HostMark,
    pub(crate) volume: VolumeMark,
    /// Changed on both sides during one run: each side keeps its own version, and neither
    /// replaces the other until one of them changes again.
    pub(crate) held: bool,
}

/// Every entry the host copy and the volume agreed on (or hold apart), by relative path.
#[derive(Debug, Default, Clone)]
pub(crate) struct SyncState {
    entries: HashMap<PathBuf, Synced>,
}

impl SyncState {
    pub(crate) fn get(&self, path: &Path) -> Option<&Synced> {
        self.entries.get(path)
    }

    pub(crate) fn insert(&mut self, path: PathBuf, synced: Synced) {
        self.entries.insert(path, synced);
    }

    pub(crate) fn remove(&mut self, path: &Path) {
        self.entries.remove(path);
    }

    pub(crate) fn extend(&mut self, marks: impl IntoIterator<Item = (PathBuf, Synced)>) {
        self.entries.extend(marks);
    }

    /// Forgets entries under `scope` (all of them for an empty scope) that `keep` refuses.
    pub(crate) fn forget_under(&mut self, scope: &Path, keep: impl Fn(&Path) -> bool) {
        self.entries
            .retain(|path, _| !path.starts_with(scope) || keep(path));
    }

    /// Whether a host entry at `path` is one the operator changed (or made) since the last
    /// copy, so it goes into the volume.
    pub(crate) fn host_changed(&self, path: &Path, meta: &Metadata) -> bool {
        self.entries
            .get(path)
            .is_none_or(|known| !known.host.matches(HostMark::of(meta)))
    }
}
