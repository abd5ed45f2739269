//! The bounded workspace. Inside the container /workspace is a tmpfs capped in bytes and in
//! inodes, so past either limit the kernel answers ENOSPC, whoever runs airlock and on any
//! host filesystem. The host directory the operator sees is mounted where only the supervisor
//! can enter. Before each block the operator's changes are copied in; after it, once no
//! process of the block is left to race the copy, the block's changes are copied out.
//!
//! Whatever reaches the host was first held by the capped tmpfs, and is copied so it takes no
//! more room there: holes stay holes, hard links stay links. Symlinks are copied as links and
//! never followed: every path is reached from directory descriptors opened with O_NOFOLLOW.
//! Fifos, sockets and devices are not copied; set-id and sticky bits never are.
//!
//! A change wins over a removal: an entry is removed on one side only when the other side
//! removed it and this side still holds what the last pass left there.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, SeekFrom, Stat, Timestamps};
use rustix::io::Errno;

/// Deeper directories are left where they are, and named in the pass's report.
const MAX_DEPTH: usize = 64;
const COPY_BUFFER: usize = 256 * 1024;
/// A pass names at most this many entries it could not copy.
const MAX_NAMED: usize = 5;

/// What of an entry tells a change: a new inode, new content or new metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Signature {
    ino: u64,
    mode: u32,
    uid: u32,
    gid: u32,
    size: i64,
    mtime: (i64, u64),
    ctime: (i64, u64),
}

impl Signature {
    fn of(stat: &Stat) -> Self {
        Self {
            ino: stat.st_ino,
            mode: stat.st_mode,
            uid: stat.st_uid,
            gid: stat.st_gid,
            size: stat.st_size,
            mtime: (stat.st_mtime, stat.st_mtime_nsec),
            ctime: (stat.st_ctime, stat.st_ctime_nsec),
        }
    }
}

/// An entry as both sides held it after the last pass.
#[derive(Debug, Clone, Copy)]
struct Known {
    inside: Signature,
    host: Signature,
}

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

    fn pair(self, source: Signature, sink: Signature) -> Known {
        match self {
            Self::In => Known {
                host: source,
                inside: sink,
            },
            Self::Out => Known {
                inside: source,
                host: sink,
            },
        }
    }
}

/// What one pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct PassReport {
    pub copied: u64,
    pub removed: u64,
    /// The receiving side ran out of bytes or inodes.
    pub no_space: bool,
    /// Entries that were not copied, and why (at most [`MAX_NAMED`], then a count).
    pub problems: Vec<String>,
}

impl PassReport {
    fn problem(&mut self, path: &Path, why: impl std::fmt::Display) {
        if self.problems.len() < MAX_NAMED {
            self.problems.push(format!(
                "{}: {why}",
                String::from_utf8_lossy(path.as_os_str().as_bytes())
            ));
        } else if self.problems.len() == MAX_NAMED {
            self.problems.push("and more".into());
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
    pub bytes: u64,
    pub inodes: u64,
    pub free_bytes: u64,
    pub free_inodes: u64,
}

impl Room {
    /// No byte or no inode left: a write of the block's has failed, or the next one will.
    pub(crate) fn full(&self) -> bool {
        self.free_bytes == 0 || self.free_inodes == 0
    }
}

/// The two trees and what both held after the last pass.
pub(crate) struct Mirror {
    inside: OwnedFd,
    host: OwnedFd,
    known: HashMap<PathBuf, Known>,
}

impl Mirror {
    /// Opens both roots; /workspace takes the host directory's owner and mode.
    pub(crate) fn open(inside: &Path, host: &Path) -> Result<Self, String> {
        let open = |path: &Path| {
            rustix::fs::open(path, dir_flags(), Mode::empty())
                .map_err(|err| format!("cannot open {}: {err}", path.display()))
        };
        let mirror = Self {
            inside: open(inside)?,
            host: open(host)?,
            known: HashMap::new(),
        };
        let root = rustix::fs::fstat(&mirror.host)
            .map_err(|err| format!("cannot read {}: {err}", host.display()))?;
        rustix::fs::fchmod(&mirror.inside, Mode::from_raw_mode(root.st_mode & 0o777))
            .and_then(|()| rustix::fs::fchown(&mirror.inside, uid(&root), gid(&root)))
            .map_err(|err| format!("cannot prepare {}: {err}", inside.display()))?;
        Ok(mirror)
    }

    /// The operator's changes, into /workspace. `tick` is called for every entry, so a long
    /// pass can say it is still at work.
    pub(crate) fn pull(&mut self, tick: &mut dyn FnMut()) -> PassReport {
        self.pass(Direction::In, tick)
    }

    /// The block's changes, out to the host.
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
        let Ok(root) = rustix::fs::fstat(from) else {
            let mut report = PassReport::default();
            report.problem(Path::new("/"), "cannot read the workspace's root");
            return report;
        };
        let mut pass = Pass {
            direction,
            device: root.st_dev,
            old: &self.known,
            known: HashMap::new(),
            links: HashMap::new(),
            to_root: to,
            tick,
            buffer: vec![0; COPY_BUFFER],
            report: PassReport::default(),
        };
        pass.dir(from, to, Path::new(""), 0);
        let Pass { known, report, .. } = pass;
        self.known = known;
        report
    }
}

/// One pass from one tree to the other.
struct Pass<'a> {
    direction: Direction,
    /// The source tree's filesystem: what is mounted inside it (an extra volume under
    /// /workspace) is not the workspace's, and is not copied.
    device: u64,
    old: &'a HashMap<PathBuf, Known>,
    known: HashMap<PathBuf, Known>,
    /// The first path seen of each multiply-linked source inode.
    links: HashMap<u64, PathBuf>,
    to_root: &'a OwnedFd,
    tick: &'a mut dyn FnMut(),
    buffer: Vec<u8>,
    report: PassReport,
}

impl Pass<'_> {
    fn dir(&mut self, from: &OwnedFd, to: &OwnedFd, rel: &Path, depth: usize) {
        let names = match entries(from) {
            Ok(names) => names,
            Err(err) => return self.failed(rel, err),
        };
        for name in &names {
            self.entry(from, to, rel, name, depth);
        }
        let present: HashSet<&OsString> = names.iter().collect();
        match entries(to) {
            Ok(sink) => {
                for name in sink.iter().filter(|name| !present.contains(name)) {
                    self.removed_at_source(to, &rel.join(name), name);
                }
            }
            Err(err) => self.failed(rel, err),
        }
    }

    fn entry(&mut self, from: &OwnedFd, to: &OwnedFd, rel: &Path, name: &OsString, depth: usize) {
        (self.tick)();
        let path = rel.join(name);
        let Ok(stat) = rustix::fs::statat(from, name, AtFlags::SYMLINK_NOFOLLOW) else {
            // Gone since it was listed: the next pass sees what is there then.
            return;
        };
        if stat.st_dev != self.device {
            return;
        }
        let source = Signature::of(&stat);
        let old = self.old.get(&path).copied();
        let changed = old.is_none_or(|known| self.direction.source(&known) != source);
        let kind = FileType::from_raw_mode(stat.st_mode);
        let outcome = match kind {
            FileType::Directory if depth >= MAX_DEPTH => {
                self.keep_known_under(&path);
                Err(Skip::Reason("nested too deep"))
            }
            FileType::Directory => self.directory(from, to, &path, name, &stat, depth),
            FileType::RegularFile | FileType::Symlink if !changed => {
                if let Some(known) = old {
                    self.known.insert(path.clone(), known);
                }
                self.note_link(&stat, &path);
                return;
            }
            FileType::RegularFile => self.file(from, to, &path, name, &stat),
            FileType::Symlink => self.symlink(from, to, name, &stat),
            _ => Err(Skip::Reason("not a file, directory or symlink")),
        };
        match outcome {
            Ok(()) => {
                if changed && kind != FileType::Directory {
                    self.report.copied += 1;
                }
                match rustix::fs::statat(to, name, AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(sink) => {
                        let known = self.direction.pair(source, Signature::of(&sink));
                        self.known.insert(path, known);
                    }
                    Err(err) => self.failed(&path, err),
                }
            }
            Err(Skip::Errno(err)) => self.failed(&path, err),
            Err(Skip::Reason(why)) => self.report.problem(&path, why),
        }
    }

    fn directory(
        &mut self,
        from: &OwnedFd,
        to: &OwnedFd,
        path: &Path,
        name: &OsString,
        stat: &Stat,
        depth: usize,
    ) -> Result<(), Skip> {
        let sink = rustix::fs::statat(to, name, AtFlags::SYMLINK_NOFOLLOW).ok();
        let is_dir = sink.is_some_and(|s| FileType::from_raw_mode(s.st_mode).is_dir());
        if !is_dir {
            if sink.is_some() {
                remove_tree(to, name)?;
            }
            rustix::fs::mkdirat(to, name, Mode::from_raw_mode(0o700))?;
        }
        let from_dir = rustix::fs::openat(from, name, dir_flags(), Mode::empty())?;
        let to_dir = rustix::fs::openat(to, name, dir_flags(), Mode::empty())?;
        self.dir(&from_dir, &to_dir, path, depth + 1);
        let now = rustix::fs::fstat(&to_dir)?;
        let mode = stat.st_mode & 0o777;
        if now.st_mode & 0o7777 != mode {
            rustix::fs::fchmod(&to_dir, Mode::from_raw_mode(mode))?;
        }
        if (now.st_uid, now.st_gid) != (stat.st_uid, stat.st_gid) {
            rustix::fs::fchown(&to_dir, uid(stat), gid(stat))?;
        }
        Ok(())
    }

    fn file(
        &mut self,
        from: &OwnedFd,
        to: &OwnedFd,
        path: &Path,
        name: &OsString,
        stat: &Stat,
    ) -> Result<(), Skip> {
        remove_entry(to, name)?;
        if stat.st_nlink > 1 {
            if let Some(first) = self.links.get(&stat.st_ino) {
                rustix::fs::linkat(self.to_root, first, to, name, AtFlags::empty())?;
                return Ok(());
            }
            self.links.insert(stat.st_ino, path.to_path_buf());
        }
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let source = rustix::fs::openat(from, name, flags, Mode::empty())?;
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW;
        let sink = rustix::fs::openat(to, name, flags | OFlags::CLOEXEC, Mode::RUSR)?;
        copy_data(&source, &sink, stat, &mut self.buffer)?;
        // Mode and times while the file is still the supervisor's, the owner last.
        rustix::fs::fchmod(&sink, Mode::from_raw_mode(stat.st_mode & 0o777))?;
        rustix::fs::futimens(&sink, &times(stat))?;
        rustix::fs::fchown(&sink, uid(stat), gid(stat))?;
        Ok(())
    }

    fn symlink(
        &mut self,
        from: &OwnedFd,
        to: &OwnedFd,
        name: &OsString,
        stat: &Stat,
    ) -> Result<(), Skip> {
        let target = rustix::fs::readlinkat(from, name, Vec::new())?;
        remove_entry(to, name)?;
        rustix::fs::symlinkat(target.as_c_str(), to, name)?;
        rustix::fs::chownat(to, name, uid(stat), gid(stat), AtFlags::SYMLINK_NOFOLLOW)?;
        Ok(())
    }

    /// Records where a multiply-linked file is, so a new link to it is made as a link.
    fn note_link(&mut self, stat: &Stat, path: &Path) {
        if stat.st_nlink > 1 {
            self.links
                .entry(stat.st_ino)
                .or_insert_with(|| path.to_path_buf());
        }
    }

    /// An entry the sink has and the source has not: removed there when the last pass knew
    /// it on both sides (the source removed it) and the sink still holds what it left.
    fn removed_at_source(&mut self, to: &OwnedFd, path: &Path, name: &OsString) {
        let Some(known) = self.old.get(path).copied() else {
            // New on this side: the next pass the other way brings it over.
            return;
        };
        let Ok(stat) = rustix::fs::statat(to, name, AtFlags::SYMLINK_NOFOLLOW) else {
            return;
        };
        if FileType::from_raw_mode(stat.st_mode).is_dir() {
            match self.remove_known_dir(to, path, name) {
                Ok(true) => self.report.removed += 1,
                Ok(false) => {}
                Err(err) => self.failed(path, err),
            }
        } else if Signature::of(&stat) == self.direction.sink(&known) {
            match rustix::fs::unlinkat(to, name, AtFlags::empty()) {
                Ok(()) => self.report.removed += 1,
                Err(err) => self.failed(path, err),
            }
        }
    }

    /// Removes what the last pass knew inside a directory the source removed; the directory
    /// goes too when nothing else is left in it. `Ok(true)` when it went.
    fn remove_known_dir(
        &mut self,
        to: &OwnedFd,
        path: &Path,
        name: &OsString,
    ) -> Result<bool, Errno> {
        let dir = rustix::fs::openat(to, name, dir_flags(), Mode::empty())?;
        for child in entries(&dir)? {
            self.removed_at_source(&dir, &path.join(&child), &child);
        }
        match rustix::fs::unlinkat(to, name, AtFlags::REMOVEDIR) {
            Ok(()) => Ok(true),
            Err(Errno::NOTEMPTY | Errno::EXIST) => Ok(false),
            Err(err) => Err(err),
        }
    }

    fn keep_known_under(&mut self, path: &Path) {
        for (known_path, known) in self.old {
            if known_path.starts_with(path) {
                self.known.insert(known_path.clone(), *known);
            }
        }
    }

    fn failed(&mut self, path: &Path, err: Errno) {
        if matches!(err, Errno::NOSPC | Errno::DQUOT) {
            self.report.no_space = true;
        }
        self.report.problem(path, std::io::Error::from(err));
    }
}

/// Why an entry was not copied.
enum Skip {
    Errno(Errno),
    Reason(&'static str),
}

impl From<Errno> for Skip {
    fn from(err: Errno) -> Self {
        Self::Errno(err)
    }
}

fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

fn uid(stat: &Stat) -> Option<rustix::fs::Uid> {
    Some(rustix::fs::Uid::from_raw(stat.st_uid))
}

fn gid(stat: &Stat) -> Option<rustix::fs::Gid> {
    Some(rustix::fs::Gid::from_raw(stat.st_gid))
}

fn times(stat: &Stat) -> Timestamps {
    let at = |sec: i64, nsec: u64| rustix::fs::Timespec {
        tv_sec: sec,
        tv_nsec: i64::try_from(nsec).unwrap_or(0),
    };
    Timestamps {
        last_access: at(stat.st_atime, stat.st_atime_nsec),
        last_modification: at(stat.st_mtime, stat.st_mtime_nsec),
    }
}

/// The names in a directory, without `.` and `..`.
fn entries(dir: &OwnedFd) -> Result<Vec<OsString>, Errno> {
    let mut names = Vec::new();
    for entry in rustix::fs::Dir::read_from(dir)? {
        let name = entry?.file_name().to_bytes().to_vec();
        if name != b"." && name != b".." {
            names.push(OsString::from_vec(name));
        }
    }
    Ok(names)
}

/// Copies the data of `source` and none of its holes, so a sparse file takes no more room
/// in the copy than in the original.
fn copy_data(
    source: &OwnedFd,
    sink: &OwnedFd,
    stat: &Stat,
    buffer: &mut [u8],
) -> Result<(), Errno> {
    let size = u64::try_from(stat.st_size).unwrap_or(0);
    let mut offset = 0;
    while offset < size {
        let start = match rustix::fs::seek(source, SeekFrom::Data(offset)) {
            Ok(start) => start,
            Err(Errno::NXIO) => break,
            Err(err) => return Err(err),
        };
        let end = rustix::fs::seek(source, SeekFrom::Hole(start))?.min(size);
        copy_range(source, sink, start, end, buffer)?;
        offset = end;
    }
    rustix::fs::ftruncate(sink, size)
}

fn copy_range(
    source: &OwnedFd,
    sink: &OwnedFd,
    mut at: u64,
    end: u64,
    buffer: &mut [u8],
) -> Result<(), Errno> {
    while at < end {
        let want = usize::try_from(end - at)
            .unwrap_or(usize::MAX)
            .min(buffer.len());
        let read = rustix::io::pread(source, &mut buffer[..want], at)?;
        if read == 0 {
            // The file shrank while it was copied; the size is set after.
            return Ok(());
        }
        let mut written = 0;
        while written < read {
            written += rustix::io::pwrite(sink, &buffer[written..read], at + written as u64)?;
        }
        at += read as u64;
    }
    Ok(())
}

/// Removes whatever is at `name` in `dir`, if anything, without following a symlink.
fn remove_entry(dir: &OwnedFd, name: &OsString) -> Result<(), Errno> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Err(Errno::NOENT) => Ok(()),
        Err(err) => Err(err),
        Ok(stat) if FileType::from_raw_mode(stat.st_mode).is_dir() => remove_tree(dir, name),
        Ok(_) => rustix::fs::unlinkat(dir, name, AtFlags::empty()),
    }
}

/// Removes a directory and all it holds, through descriptors, never following a symlink.
fn remove_tree(dir: &OwnedFd, name: &OsString) -> Result<(), Errno> {
    remove_tree_below(dir, name, 0)
}

fn remove_tree_below(dir: &OwnedFd, name: &OsString, depth: usize) -> Result<(), Errno> {
    let stat = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)?;
    if !FileType::from_raw_mode(stat.st_mode).is_dir() {
        return rustix::fs::unlinkat(dir, name, AtFlags::empty());
    }
    // Each level holds a descriptor: a tree nested deeper than any pass copies is left.
    if depth > MAX_DEPTH {
        return Err(Errno::LOOP);
    }
    let inner = rustix::fs::openat(dir, name, dir_flags(), Mode::empty())?;
    for child in entries(&inner)? {
        remove_tree_below(&inner, &child, depth + 1)?;
    }
    rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR)
}

#[cfg(test)]
#[path = "mirror_tests.rs"]
mod tests;
