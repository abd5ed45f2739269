//! One pass of the mirror, from one tree to the other, with the knowledge of the last pass
//! walked alongside, one directory at a time.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, Stat};
use rustix::io::Errno;

use super::fs::{self, stat_at};
use super::{Direction, Known, KnownDir, MAX_DEPTH, PassReport, Signature};

/// At most this many bytes of paths are kept to make hard links as links; further links
/// to files already mirrored are left out and named.
const LINK_PATHS: usize = 16 << 20;

/// One source entry: where it is, its name in its directory, what it is.
#[derive(Clone, Copy)]
struct Entry<'e> {
    path: &'e Path,
    name: &'e OsString,
    stat: &'e Stat,
}

pub(super) struct Pass<'a> {
    direction: Direction,
    /// The source tree's and the sink tree's filesystems: what is mounted inside either
    /// (an extra volume under /workspace, a mount in the host directory) is left alone.
    device: u64,
    sink_device: u64,
    /// The sink's root, for making hard links, and the first sink path of each
    /// multiply-linked source inode.
    to_root: &'a OwnedFd,
    links: HashMap<u64, PathBuf>,
    link_bytes: usize,
    /// What the sink may take in all (the host: what /workspace holds), and what it takes.
    budget: Option<u64>,
    spent: u64,
    tick: &'a mut dyn FnMut(),
    buffer: Vec<u8>,
    report: PassReport,
}

impl<'a> Pass<'a> {
    pub(super) fn new(
        direction: Direction,
        from_root: &Stat,
        to_root_stat: &Stat,
        to_root: &'a OwnedFd,
        budget: Option<u64>,
        tick: &'a mut dyn FnMut(),
    ) -> Self {
        Self {
            direction,
            device: from_root.st_dev,
            sink_device: to_root_stat.st_dev,
            to_root,
            links: HashMap::new(),
            link_bytes: 0,
            budget,
            spent: 0,
            tick,
            buffer: Vec::new(),
            report: PassReport::default(),
        }
    }

    pub(super) fn finish(self) -> PassReport {
        self.report
    }

    /// Mirrors one directory; returns what both sides now hold in it. Removals come first,
    /// so the sink has their room back before anything new arrives.
    pub(super) fn dir(
        &mut self,
        from: &OwnedFd,
        to: &OwnedFd,
        rel: &Path,
        mut old: KnownDir,
        depth: usize,
    ) -> KnownDir {
        let names = match fs::entries(from) {
            Ok(names) => names,
            Err(err) => {
                self.failed(rel, err);
                return old;
            }
        };
        let present: HashSet<&OsString> = names.iter().collect();
        match fs::entries(to) {
            Ok(sink) => {
                for name in sink.iter().filter(|name| !present.contains(name)) {
                    if let Some(known) = old.remove(name) {
                        self.removed_at_source(to, &rel.join(name), name, known);
                    }
                }
            }
            Err(err) => self.failed(rel, err),
        }
        let mut now = KnownDir::new();
        for name in &names {
            let known = old.remove(name);
            if let Some(known) = self.entry(from, to, rel, name, known, depth) {
                now.insert(name.clone(), known);
            }
        }
        now
    }

    fn entry(
        &mut self,
        from: &OwnedFd,
        to: &OwnedFd,
        rel: &Path,
        name: &OsString,
        old: Option<Known>,
        depth: usize,
    ) -> Option<Known> {
        (self.tick)();
        let path = rel.join(name);
        let Ok(stat) = stat_at(from, name) else {
            // Gone since it was listed: the next pass sees what is there then.
            return old;
        };
        if stat.st_dev != self.device {
            return None;
        }
        let source = Signature::of(&stat);
        let changed = old
            .as_ref()
            .is_none_or(|known| self.direction.source(known) != source);
        match FileType::from_raw_mode(stat.st_mode) {
            FileType::Directory if depth >= MAX_DEPTH => {
                self.report.problem(&path, "nested too deep; not copied");
                old.inspect(|known| self.spend_known(known))
            }
            FileType::Directory => {
                let entry = Entry {
                    path: &path,
                    name,
                    stat: &stat,
                };
                self.directory(from, to, &entry, old, depth)
            }
            FileType::RegularFile | FileType::Symlink if !changed => {
                self.note_link(&stat, &path);
                old.inspect(|known| self.spend_known(known))
            }
            FileType::RegularFile | FileType::Symlink => {
                self.copy(from, to, &path, name, &stat, old)
            }
            _ => {
                self.report
                    .problem(&path, "not a file, directory or symlink; not copied");
                None
            }
        }
    }

    fn directory(
        &mut self,
        from: &OwnedFd,
        to: &OwnedFd,
        entry: &Entry<'_>,
        old: Option<Known>,
        depth: usize,
    ) -> Option<Known> {
        let Entry { path, name, stat } = *entry;
        if !self.clear_for(to, path, name, old.as_ref(), true) {
            return old;
        }
        let cost = fs::host_cost(stat, name);
        if stat_at(to, name).is_err() {
            if !self.afford(path, cost) {
                return old;
            }
            if let Err(err) = rustix::fs::mkdirat(to, name, Mode::from_raw_mode(0o700)) {
                self.failed(path, err);
                return old;
            }
        } else {
            self.spent += cost;
        }
        let opened = fs::open_dir(from, name).and_then(|f| Ok((f, fs::open_dir(to, name)?)));
        let (from_dir, to_dir) = match opened {
            Ok(dirs) => dirs,
            Err(err) => {
                self.failed(path, err);
                return old;
            }
        };
        // What the last pass knew inside, when it was a directory then too.
        let children = match old {
            Some(known) if FileType::from_raw_mode(self.direction.source(&known).mode).is_dir() => {
                known.children
            }
            _ => KnownDir::new(),
        };
        let children = self.dir(&from_dir, &to_dir, path, children, depth + 1);
        if let Err(err) = fs::match_dir(&to_dir, stat) {
            self.failed(path, err);
        }
        let sink = rustix::fs::fstat(&to_dir).ok()?;
        Some(self.known(stat, &sink, cost, children))
    }

    /// A changed file or symlink, copied over whatever the sink had there.
    fn copy(
        &mut self,
        from: &OwnedFd,
        to: &OwnedFd,
        path: &Path,
        name: &OsString,
        stat: &Stat,
        old: Option<Known>,
    ) -> Option<Known> {
        if !self.clear_for(to, path, name, old.as_ref(), false) {
            return old;
        }
        let first = (stat.st_nlink > 1)
            .then(|| self.links.get(&stat.st_ino).cloned())
            .flatten();
        let cost = match first {
            Some(_) => name.len() as u64 + 16,
            None => fs::host_cost(stat, name),
        };
        let size = u64::try_from(stat.st_size).unwrap_or(0);
        let kind = FileType::from_raw_mode(stat.st_mode);
        // A file that does not fit whole gets what room is left: it is the one the block was
        // writing when /workspace filled up, cut short there already.
        let entry = name.len() as u64 + 16;
        let (cost, length) = match self.room_left() {
            Some(left)
                if cost > left
                    && left >= entry + 4096
                    && first.is_none()
                    && kind == FileType::RegularFile =>
            {
                let length = (left - entry) / 4096 * 4096;
                self.report.problem(
                    path,
                    format!("only its first {length} bytes fit within the workspace's limit"),
                );
                self.report.no_space = true;
                (entry + length, length.min(size))
            }
            _ => (cost, size),
        };
        if !self.afford(path, cost) {
            return None;
        }
        let copied = match (&first, kind) {
            (Some(first), _) => rustix::fs::linkat(self.to_root, first, to, name, AtFlags::empty()),
            (None, FileType::Symlink) => fs::copy_symlink(from, to, name, stat),
            (None, _) => fs::copy_file(from, to, name, stat, length, &mut self.buffer),
        };
        if let Err(err) = copied {
            self.spent -= cost;
            self.failed(path, err);
            return None;
        }
        self.report.copied += 1;
        if first.is_none() {
            self.note_link(stat, path);
        }
        let sink = stat_at(to, name).ok()?;
        Some(self.known(stat, &sink, cost, KnownDir::new()))
    }

    /// Makes way at the sink for the source's `name`: a file or symlink there is replaced
    /// (the source's change wins); a directory only when all it holds is what the last pass
    /// left (for a directory to come, one already there is kept as it is); a mount, never.
    fn clear_for(
        &mut self,
        to: &OwnedFd,
        path: &Path,
        name: &OsString,
        old: Option<&Known>,
        dir_wanted: bool,
    ) -> bool {
        let Ok(sink) = stat_at(to, name) else {
            return true;
        };
        if sink.st_dev != self.sink_device {
            self.report.problem(
                path,
                "something is mounted there on the other side; left alone",
            );
            return false;
        }
        let outcome = match (fs::is_dir(&sink), dir_wanted) {
            (true, true) => return true,
            (false, _) => fs::unlink(to, name).map(|()| true),
            (true, false) => {
                let children = old.map(|known| known.children.clone()).unwrap_or_default();
                self.remove_known_dir(to, path, name, children)
            }
        };
        match outcome {
            Ok(true) => true,
            Ok(false) => {
                self.report
                    .problem(path, "the other side holds new files there; left alone");
                false
            }
            Err(err) => {
                self.failed(path, err);
                false
            }
        }
    }

    /// An entry the sink has and the source has not: removed when the sink still holds
    /// what the last pass left there.
    fn removed_at_source(&mut self, to: &OwnedFd, path: &Path, name: &OsString, known: Known) {
        let Ok(stat) = stat_at(to, name) else {
            return;
        };
        if stat.st_dev != self.sink_device {
            return;
        }
        let outcome = if fs::is_dir(&stat) {
            self.remove_known_dir(to, path, name, known.children)
        } else if Signature::of(&stat) == self.direction.sink(&known) {
            fs::unlink(to, name).map(|()| true)
        } else {
            Ok(false)
        };
        match outcome {
            Ok(true) => self.report.removed += 1,
            Ok(false) => {}
            Err(err) => self.failed(path, err),
        }
    }

    /// Removes what the last pass knew inside a directory; the directory goes too when
    /// nothing else is left in it. `Ok(true)` when it went.
    fn remove_known_dir(
        &mut self,
        to: &OwnedFd,
        path: &Path,
        name: &OsString,
        mut children: KnownDir,
    ) -> Result<bool, Errno> {
        let dir = fs::open_dir(to, name)?;
        for child in fs::entries(&dir)? {
            if let Some(known) = children.remove(&child) {
                self.removed_at_source(&dir, &path.join(&child), &child, known);
            }
        }
        fs::remove_empty_dir(to, name)
    }

    fn known(&self, source: &Stat, sink: &Stat, host_cost: u64, children: KnownDir) -> Known {
        let (linked, source) = (source.st_nlink > 1, Signature::of(source));
        let mut sink = Signature::of(sink);
        if linked {
            // Its other names are still to be linked to it, which changes its ctime.
            sink.ctime = (0, 0);
        }
        let (inside, host) = match self.direction {
            Direction::In => (sink, source),
            Direction::Out => (source, sink),
        };
        Known {
            inside,
            host,
            host_cost,
            children,
        }
    }

    /// Records where a multiply-linked file is, so another name of it is made a link.
    fn note_link(&mut self, stat: &Stat, path: &Path) {
        let bytes = path.as_os_str().len();
        if stat.st_nlink > 1
            && self.link_bytes + bytes <= LINK_PATHS
            && let std::collections::hash_map::Entry::Vacant(entry) = self.links.entry(stat.st_ino)
        {
            entry.insert(path.to_path_buf());
            self.link_bytes += bytes;
        }
    }

    /// Counts what an entry the pass leaves as it is takes on the host.
    fn spend_known(&mut self, known: &Known) {
        self.spent += known.host_cost;
        for child in known.children.values() {
            self.spend_known(child);
        }
    }

    /// What the sink's budget has left, when it has one.
    fn room_left(&self) -> Option<u64> {
        self.budget.map(|budget| budget.saturating_sub(self.spent))
    }

    /// Whether `cost` more bytes fit the sink's budget; counts them when they do.
    fn afford(&mut self, path: &Path, cost: u64) -> bool {
        match self.budget {
            Some(budget) if self.spent + cost > budget => {
                self.report.no_space = true;
                self.report.problem(
                    path,
                    "it would take the host copy past the workspace's limit; not copied",
                );
                false
            }
            _ => {
                self.spent += cost;
                true
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
