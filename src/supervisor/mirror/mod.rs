//! The bounded workspace. Inside the container /workspace is a tmpfs capped in bytes and in
//! inodes, so past either limit the kernel answers ENOSPC, whoever runs airlock and on any
//! host filesystem. The host directory the operator sees is mounted where only the supervisor
//! can enter. Before each block the operator's changes are copied in; after it, once no
//! process of the block is left to race the copy, the block's changes are copied out.
//!
//! Whatever reaches the host was first held by the capped tmpfs, and is copied so it takes no
//! more room there: holes stay holes, hard links stay links, and the host's own cost of each
//! entry (a directory's block, a symlink's) is charged against the same limit. Symlinks are
//! copied as links and never followed: every path is reached from directory descriptors
//! opened with O_NOFOLLOW. Fifos, sockets and devices are not copied; set-id and sticky bits
//! never are; what is mounted inside either tree is left alone.
//!
//! A change wins over a removal: an entry is removed or replaced on one side only when this
//! side still holds what the last pass left there.

mod fs;
mod git;
#[cfg(test)]
mod git_tests;
mod pass;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::path::Path;

use rustix::fs::{Mode, Stat};

/// Deeper directories are left where they are, and named in the pass's report. The run's
/// file record walks deeper (`files::changes::RECORD_DEPTH`), so it sees all this copies.
pub(crate) const MAX_DEPTH: usize = 64;
const _: () = assert!(crate::files::changes::RECORD_DEPTH > MAX_DEPTH);
/// Names the mirror uses for copies on their way; never copied, and stale ones are removed
/// from the host.
const PARTIAL: &str = ".airlock-partial-";
/// A pass names at most this many entries it could not copy.
const MAX_NAMED: usize = 5;
/// A pass names at most this many changes to git metadata it kept back.
const MAX_KEPT_NAMED: usize = 20;

/// What of an entry tells a change: a new inode, new content or new metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Signature {
    ino: u64,
    mode: u32,
    uid: u32,
    gid: u32,
    size: i64,
    mtime: (i64, u64),
    /// Left out for a file with several links: making a link changes it, on every name.
    ctime: (i64, u64),
}

impl Signature {
    fn of(stat: &Stat) -> Self {
        let ctime = if stat.st_nlink > 1 {
            (0, 0)
        } else {
            (stat.st_ctime, stat.st_ctime_nsec)
        };
        Self {
            ino: stat.st_ino,
            mode: stat.st_mode,
            uid: stat.st_uid,
            gid: stat.st_gid,
            size: stat.st_size,
            mtime: (stat.st_mtime, stat.st_mtime_nsec),
            ctime,
        }
    }

    /// Whether `now` is still what `self` recorded. A ctime left out on either side (a file
    /// with several links then or now) is not compared.
    fn matches(self, now: Self) -> bool {
        let ctime = self.ctime == now.ctime || self.ctime == (0, 0) || now.ctime == (0, 0);
        Self {
            ctime: now.ctime,
            ..self
        } == now
            && ctime
    }

    fn is_dir(self) -> bool {
        rustix::fs::FileType::from_raw_mode(self.mode).is_dir()
    }
}

/// An entry as both sides held it after the last pass, and what its copy takes on the host.
#[derive(Debug, Clone)]
struct Known {
    inside: Signature,
    host: Signature,
    /// Its name in the directory holding it.
    name_cost: u64,
    /// Its data (a directory's or long symlink's block included): held once per inode.
    data_cost: u64,
    /// A directory's entries, by name: paths are never stored whole, so deep trees of long
    /// names cost the supervisor no more than their names.
    children: KnownDir,
}

type KnownDir = HashMap<OsString, Known>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    /// Host → /workspace, before a block.
    In,
    /// /workspace → host, after a block.
    Out,
}

impl Direction {
    fn source(self, known: &Known) -> Signature {
        match self {
            Self::In => known.host,
            Self::Out => known.inside,
        }
    }

    fn sink(self, known: &Known) -> Signature {
        match self {
            Self::In => known.inside,
            Self::Out => known.host,
        }
    }

    /// The permission bits a copy gets at the sink, where the entry it replaces had
    /// `before`: the host never gets group or other write that its entry did not have.
    fn sink_mode(self, mode: u32, before: Option<u32>) -> u32 {
        match self {
            Self::In => mode & 0o777,
            Self::Out => crate::files::host_mode(mode, before),
        }
    }
}

/// At most this many paths are listed as touched by a pass; past it, "many".
const MAX_TOUCHED: usize = 256;

/// What one pass changed at the sink, so a copy of the sink can fetch only that.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Touched {
    /// These paths (relative, UTF-8), each a file, symlink or new directory written, or an
    /// entry removed.
    Paths(Vec<String>),
    /// Too many, a name that is not UTF-8, or a hard link made (fetched one name at a time,
    /// a linked file would arrive as copies): copy the whole tree.
    Many,
}

impl Default for Touched {
    fn default() -> Self {
        Self::Paths(Vec::new())
    }
}

impl Touched {
    pub(crate) fn touch(&mut self, path: &Path) {
        let Self::Paths(paths) = self else {
            return;
        };
        match path.to_str() {
            Some(path) if paths.len() < MAX_TOUCHED => paths.push(path.to_string()),
            _ => *self = Self::Many,
        }
    }
}

/// What one pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct PassReport {
    pub(crate) copied: u64,
    pub(crate) removed: u64,
    pub(crate) touched: Touched,
    /// The receiving side ran out of bytes or inodes (on the host: the limit's worth).
    pub(crate) no_space: bool,
    /// Entries that were not copied, and why (at most [`MAX_NAMED`], then a count).
    pub(crate) problems: Vec<String>,
    /// Changes under git metadata not copied out (at most [`MAX_KEPT_NAMED`]; relative
    /// paths, recorded as `files::recorded` writes names, drawn by the host), and how many
    /// more there were.
    pub(crate) git_kept_back: Vec<String>,
    pub(crate) git_kept_back_more: u64,
}

impl PassReport {
    fn problem(&mut self, path: &Path, why: impl std::fmt::Display) {
        if self.problems.len() < MAX_NAMED {
            // Drawn as the workspace pane draws it: a name cannot forge a line of a notice.
            let path = crate::files::display_path(path);
            self.problems.push(format!("{path}: {why}"));
        } else if self.problems.len() == MAX_NAMED {
            self.problems.push("and more".into());
        }
    }

    fn kept_back(&mut self, path: &Path) {
        if self.git_kept_back.len() < MAX_KEPT_NAMED {
            // Recorded, so the host draws the very bytes as its workspace pane would.
            let path = crate::files::recorded::recorded_path(path);
            self.git_kept_back.push(path);
        } else {
            self.git_kept_back_more += 1;
        }
    }

    /// One line for a person, or `None` when all went well.
    pub(crate) fn summary(&self) -> Option<String> {
        (!self.problems.is_empty()).then(|| self.problems.join("; "))
    }
}

/// The room /workspace has, as the kernel enforces it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Room {
    pub(crate) bytes: u64,
    pub(crate) inodes: u64,
    pub(crate) free_bytes: u64,
    pub(crate) free_inodes: u64,
}

impl Room {
    /// No byte or no inode left: a write of the block's has failed, or the next one will. A
    /// filesystem that counts no inodes at all (gVisor's tmpfs reports 0 in total and 0
    /// free) is full only of bytes.
    pub(crate) fn full(&self) -> bool {
        self.free_bytes == 0 || (self.inodes > 0 && self.free_inodes == 0)
    }
}

/// The two trees and what both held after the last pass.
pub(crate) struct Mirror {
    inside: OwnedFd,
    host: OwnedFd,
    known: KnownDir,
}

impl Mirror {
    /// Opens both roots; /workspace takes the host directory's owner and mode.
    pub(crate) fn open(inside: &Path, host: &Path) -> Result<Self, String> {
        let open = |path: &Path| {
            rustix::fs::open(path, fs::dir_flags(), Mode::empty())
                .map_err(|err| format!("cannot open {}: {err}", path.display()))
        };
        let mirror = Self {
            inside: open(inside)?,
            host: open(host)?,
            known: KnownDir::new(),
        };
        let root = rustix::fs::fstat(&mirror.host)
            .map_err(|err| format!("cannot read {}: {err}", host.display()))?;
        rustix::fs::fchmod(&mirror.inside, Mode::from_raw_mode(root.st_mode & 0o777))
            .and_then(|()| rustix::fs::fchown(&mirror.inside, fs::uid(&root), fs::gid(&root)))
            .map_err(|err| format!("cannot prepare {}: {err}", inside.display()))?;
        Ok(mirror)
    }

    /// The operator's changes, into /workspace. `tick` is called for every entry, so a long
    /// pass can say it is still at work.
    pub(crate) fn pull(&mut self, tick: &mut dyn FnMut()) -> PassReport {
        self.pass(Direction::In, tick)
    }

    /// The block's changes, out to the host, within the room /workspace has.
    pub(crate) fn push(&mut self, tick: &mut dyn FnMut()) -> PassReport {
        self.pass(Direction::Out, tick)
    }

    pub(crate) fn room(&self) -> Result<Room, String> {
        let vfs = rustix::fs::fstatvfs(&self.inside)
            .map_err(|err| format!("cannot read the workspace's room: {err}"))?;
        Ok(Room {
            bytes: vfs.f_blocks * vfs.f_frsize,
            inodes: vfs.f_files,
            free_bytes: vfs.f_bavail * vfs.f_frsize,
            free_inodes: vfs.f_favail,
        })
    }

    fn pass(&mut self, direction: Direction, tick: &mut dyn FnMut()) -> PassReport {
        let (from, to) = match direction {
            Direction::In => (&self.host, &self.inside),
            Direction::Out => (&self.inside, &self.host),
        };
        let mut report = PassReport::default();
        let roots = rustix::fs::fstat(from).and_then(|from| Ok((from, rustix::fs::fstat(to)?)));
        let (from_root, to_root) = match roots {
            Ok(roots) => roots,
            Err(err) => {
                report.problem(Path::new("/"), std::io::Error::from(err));
                return report;
            }
        };
        if from_root.st_nlink == 0 || to_root.st_nlink == 0 {
            report.problem(
                Path::new("/"),
                "the workspace directory on the host was removed; nothing is copied",
            );
            return report;
        }
        // Only the host needs a budget: the tmpfs is the kernel's to bound.
        let budget = match (direction, self.room()) {
            (Direction::In, _) => None,
            (Direction::Out, Ok(room)) => Some(room.bytes),
            (Direction::Out, Err(why)) => {
                report.problem(Path::new("/"), format!("{why}; nothing is copied"));
                return report;
            }
        };
        let old = std::mem::take(&mut self.known);
        let mut walk = pass::Pass::new(direction, &from_root, &to_root, to, tick);
        if let Some(budget) = budget {
            walk.limit(budget, charged(&old));
        }
        self.known = walk.dir(from, to, Path::new(""), old, 0);
        walk.finish()
    }
}

/// What the host holds of the tree the last pass left: every name, and the data of every
/// inode once.
fn charged(tree: &KnownDir) -> u64 {
    fn add(tree: &KnownDir, inodes: &mut HashSet<u64>, total: &mut u64) {
        for known in tree.values() {
            *total += known.name_cost;
            if inodes.insert(known.host.ino) {
                *total += known.data_cost;
            }
            add(&known.children, inodes, total);
        }
    }
    let mut total = 0;
    add(tree, &mut HashSet::new(), &mut total);
    total
}
