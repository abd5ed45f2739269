//! Every entry of the workspace, in tree order, read through directory descriptors: a
//! symlink is listed with its target and never entered, a directory deeper than the walk's
//! bound ([`MAX_DEPTH`] for the workspace pane) is not entered, and at most [`MAX_ENTRIES`]
//! entries are read, so a block that leaves a million files or a deep chain of directories
//! costs a bounded walk.

use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, Stat};

use super::read::{dir_flags, open_dir_beneath, special_kind};

/// Directories deeper than this are listed but not entered by the workspace pane.
pub(crate) const MAX_DEPTH: usize = 32;
/// A walk stops after this many entries.
pub(crate) const MAX_ENTRIES: usize = 100_000;

/// What an entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EntryKind {
    Dir,
    File,
    /// Its target, as the link holds it: draw it with [`super::display_name`].
    Symlink(OsString),
    /// A FIFO, socket or device: named, never opened.
    Special(&'static str),
}

/// What of an entry tells that it changed: a new inode, size, or content or metadata time.
/// The change time cannot be set back by the block, so a file rewritten and then given its
/// old modification time still shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Signature {
    inode: u64,
    size: u64,
    modified: (i64, i64),
    changed: (i64, i64),
}

#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// Relative to the workspace's root.
    pub(crate) path: PathBuf,
    pub(crate) depth: usize,
    pub(crate) kind: EntryKind,
    pub(crate) size: u64,
    /// Modification time, in seconds since the epoch.
    pub(crate) modified: i64,
    pub(crate) signature: Signature,
}

impl Entry {
    /// Its last name, drawn harmless.
    pub(crate) fn name(&self) -> String {
        self.path
            .file_name()
            .map(super::display_name)
            .unwrap_or_default()
    }

    /// Its path, drawn harmless.
    pub(crate) fn shown_path(&self) -> String {
        super::display_path(&self.path)
    }

    /// Its path as the record keeps it (see [`super::recorded`]).
    pub(crate) fn recorded_path(&self) -> String {
        super::recorded::recorded_path(&self.path)
    }
}

/// The workspace as one walk found it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Listing {
    pub(crate) entries: Vec<Entry>,
    /// The walk stopped at [`MAX_ENTRIES`].
    pub(crate) truncated: bool,
    /// The directories not entered (too deep or unreadable), by path.
    pub(crate) unentered: Vec<PathBuf>,
    /// Of those, the ones too deep to enter.
    pub(crate) too_deep: usize,
}

impl Listing {
    /// Walks `root` [`MAX_DEPTH`] levels deep; an error only when `root` itself cannot be
    /// opened.
    pub(crate) fn scan(root: &Path) -> std::io::Result<Self> {
        Self::scan_to(root, MAX_DEPTH)
    }

    /// Walks `root`, entering directories up to `max_depth` levels down.
    pub(crate) fn scan_to(root: &Path, max_depth: usize) -> std::io::Result<Self> {
        let dir = open_dir_beneath(root, Path::new(""))
            .map_err(|refusal| std::io::Error::other(refusal.to_string()))?;
        let mut listing = Self::default();
        listing.walk(&dir, Path::new(""), 0, max_depth);
        Ok(listing)
    }

    /// The regular files and symlinks, by path.
    pub(crate) fn files(&self) -> impl Iterator<Item = &Entry> {
        self.entries
            .iter()
            .filter(|entry| matches!(entry.kind, EntryKind::File | EntryKind::Symlink(_)))
    }

    /// Directories that could not be read, or were too deep to enter: how many.
    pub(crate) fn unread_dirs(&self) -> usize {
        self.unentered.len()
    }

    fn walk(&mut self, dir: &OwnedFd, path: &Path, depth: usize, max_depth: usize) {
        let Ok(names) = read_names(dir) else {
            self.unentered.push(path.to_path_buf());
            return;
        };
        let listed = names.len();
        let mut children: Vec<(OsString, Stat)> = names
            .into_iter()
            .filter_map(|name| {
                let stat = rustix::fs::statat(dir, &name, AtFlags::SYMLINK_NOFOLLOW).ok()?;
                Some((name, stat))
            })
            .collect();
        // A name listed but not looked up (a directory that may be read but not searched,
        // mode r--, once `read_names` no longer reopens it through `.`, which needs search
        // too; or a name gone meanwhile): what it was is not seen, so the directory was not
        // read whole, and the record must not take what it held for gone.
        if children.len() < listed {
            self.unentered.push(path.to_path_buf());
        }
        // Directories first, then by name, as file trees usually are.
        children.sort_by(|(a, sa), (b, sb)| is_dir(sb).cmp(&is_dir(sa)).then(a.cmp(b)));
        for (name, stat) in children {
            if self.entries.len() >= MAX_ENTRIES {
                self.truncated = true;
                return;
            }
            let child = path.join(&name);
            let kind = kind_of(dir, &name, &stat);
            self.entries
                .push(entry(child.clone(), depth, kind.clone(), &stat));
            if kind != EntryKind::Dir {
                continue;
            }
            if depth + 1 >= max_depth {
                self.too_deep += 1;
                self.unentered.push(child);
                continue;
            }
            match rustix::fs::openat(dir, &name, dir_flags(), Mode::empty()) {
                Ok(sub) => self.walk(&sub, &child, depth + 1, max_depth),
                Err(_) => self.unentered.push(child),
            }
        }
    }
}

fn read_names(dir: &OwnedFd) -> rustix::io::Result<Vec<OsString>> {
    let mut names = Vec::new();
    for item in rustix::fs::Dir::read_from(dir)? {
        let item = item?;
        let name = item.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(std::ffi::OsStr::from_bytes(name).to_os_string());
        }
    }
    Ok(names)
}

fn is_dir(stat: &Stat) -> bool {
    FileType::from_raw_mode(stat.st_mode).is_dir()
}

fn kind_of(dir: &OwnedFd, name: &OsString, stat: &Stat) -> EntryKind {
    match FileType::from_raw_mode(stat.st_mode) {
        FileType::Directory => EntryKind::Dir,
        FileType::RegularFile => EntryKind::File,
        FileType::Symlink => {
            let target = rustix::fs::readlinkat(dir, name, Vec::new())
                .map(|target| std::ffi::OsStr::from_bytes(target.as_bytes()).to_os_string())
                .unwrap_or_default();
            EntryKind::Symlink(target)
        }
        other => EntryKind::Special(special_kind(other)),
    }
}

fn entry(path: PathBuf, depth: usize, kind: EntryKind, stat: &Stat) -> Entry {
    let size = stat.st_size.max(0) as u64;
    Entry {
        path,
        depth,
        kind,
        size,
        modified: stat.st_mtime,
        signature: Signature {
            inode: stat.st_ino,
            size,
            modified: (stat.st_mtime, stat.st_mtime_nsec as i64),
            changed: (stat.st_ctime, stat.st_ctime_nsec as i64),
        },
    }
}
