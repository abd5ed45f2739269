//! One pass of the mirror, from one tree to the other, with the knowledge of the last pass
//! walked alongside, one directory at a time.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{FileType, Mode, Stat};
use rustix::io::Errno;

use super::fs::{self, stat_at};
use super::git;
use super::{Direction, Known, KnownDir, MAX_DEPTH, PARTIAL, PassReport, Signature, Touched};

/// Bytes of paths kept to link a file's further names; past it they are copied, and charged.
const LINK_PATHS: usize = 16 << 20;

/// One source entry: where it is, its name in its directory, what it is.
#[derive(Clone, Copy)]
struct Entry<'e> {
    path: &'e Path,
    name: &'e OsString,
    stat: &'e Stat,
}

/// What the sink has where an entry goes, and whether it may give way.
enum Sink {
    Nothing,
    /// What the last pass left there: replaced freely.
    Ours(Stat),
    /// A directory of ours: replaced once what it holds of ours is removed.
    OurDir,
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
    copies: u64,
    report: PassReport,
}

impl<'a> Pass<'a> {
    pub(super) fn new(
        direction: Direction,
        from_root: &Stat,
        to_root_stat: &Stat,
        to_root: &'a OwnedFd,
        tick: &'a mut dyn FnMut(),
    ) -> Self {
        Self {
            direction,
            device: from_root.st_dev,
            sink_device: to_root_stat.st_dev,
            to_root,
            links: HashMap::new(),
            link_bytes: 0,
            budget: None,
            spent: 0,
            tick,
            buffer: Vec::new(),
            copies: 0,
            report: PassReport::default(),
        }
    }

    /// Bounds what the sink may hold, `spent` of it held already.
    pub(super) fn limit(&mut self, budget: u64, spent: u64) {
        self.budget = Some(budget);
        self.spent = spent;
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
        let sides = (from, to, rel);
        let (held, kept) =
            git::hold_back(self.direction, sides, &names, &mut old, &mut self.report);
        match fs::entries(to) {
            Ok(sink) => {
                let gone = |name: &&OsString| !present.contains(name) && !held.contains(*name);
                for name in sink.iter().filter(gone) {
                    match old.remove(name) {
                        Some(known) => self.removed_at_source(to, &rel.join(name), name, known),
                        None if is_partial(name) && self.direction == Direction::Out => {
                            // Left by a copy that never finished.
                            let _ = fs::unlink(to, name);
                        }
                        None => {}
                    }
                }
            }
            Err(err) => self.failed(rel, err),
        }
        let mut now = kept;
        let copied = |name: &&OsString| !is_partial(name) && !held.contains(*name);
        for name in names.iter().filter(copied) {
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
        if stat.st_dev != self.device || fs::is_mount(from, name) {
            return None;
        }
        let entry = Entry {
            path: &path,
            name,
            stat: &stat,
        };
        let source = Signature::of(&stat);
        let unchanged = old
            .as_ref()
            .is_some_and(|known| self.direction.source(known).matches(source));
        match FileType::from_raw_mode(stat.st_mode) {
            FileType::Directory if depth >= MAX_DEPTH => {
                self.report.problem(&path, "nested too deep; not copied");
                old
            }
            FileType::Directory => self.directory(from, to, &entry, old, depth),
            FileType::RegularFile | FileType::Symlink if unchanged => {
                self.note_link(&stat, &path);
                old
            }
            FileType::RegularFile | FileType::Symlink => self.copy(from, to, &entry, old),
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
        let was_dir = old
            .as_ref()
            .is_some_and(|known| self.direction.source(known).is_dir());
        let created = match stat_at(to, name) {
            Ok(sink) if fs::is_dir(&sink) && !fs::is_mount(to, name) => false,
            Ok(_) => {
                // A file (or a mount) where the directory goes: only one of ours gives way.
                if !self.make_way(to, path, name, old.as_ref()) {
                    return None;
                }
                self.create_dir(to, entry)?
            }
            Err(_) => self.create_dir(to, entry)?,
        };
        if created {
            self.report.touched.touch(path);
        }
        let opened = fs::open_dir(from, name).and_then(|f| Ok((f, fs::open_dir(to, name)?)));
        let (from_dir, to_dir) = match opened {
            Ok(dirs) => dirs,
            Err(err) => {
                self.failed(path, err);
                return old;
            }
        };
        let mut known = old;
        let children = match known.as_mut() {
            Some(known) if was_dir => std::mem::take(&mut known.children),
            _ => KnownDir::new(),
        };
        let children = self.dir(&from_dir, &to_dir, path, children, depth + 1);
        // Mode and owner only when the source's changed: what the operator set on a host
        // directory during a block stays, and so do the host's own special bits.
        let metadata_changed = known.as_ref().is_none_or(|known| {
            let before = self.direction.source(known);
            (before.mode, before.uid, before.gid) != (stat.st_mode, stat.st_uid, stat.st_gid)
        });
        if (created || metadata_changed)
            && let Err(err) = fs::match_dir(&to_dir, stat, self.direction)
        {
            self.failed(path, err);
        }
        let sink = rustix::fs::fstat(&to_dir).ok()?;
        Some(self.known(stat, &sink, name, children))
    }

    /// A new directory at the sink, charged first. `None` when it cannot be.
    fn create_dir(&mut self, to: &OwnedFd, entry: &Entry<'_>) -> Option<bool> {
        let cost = fs::name_cost(entry.name) + fs::data_cost(entry.stat);
        if !self.afford(entry.path, cost) {
            return None;
        }
        if let Err(err) = rustix::fs::mkdirat(to, entry.name, Mode::from_raw_mode(0o700)) {
            self.spend_back(cost);
            self.failed(entry.path, err);
            return None;
        }
        Some(true)
    }

    // Over 80 lines on purpose: one entry's copy, from budget to record, in the order it goes.
    /// A changed file or symlink: copied under a passing name, then put in place of what the
    /// sink had there, so the sink's version stays whole until the new one is.
    fn copy(
        &mut self,
        from: &OwnedFd,
        to: &OwnedFd,
        entry: &Entry<'_>,
        old: Option<Known>,
    ) -> Option<Known> {
        let Entry { path, name, stat } = *entry;
        // Something there that is not the last pass's: both versions stay, each on its side,
        // and the next passes say so until one of them goes.
        let sink = self.sink(to, path, name, old.as_ref())?;
        let first = (stat.st_nlink > 1)
            .then(|| self.links.get(&stat.st_ino).cloned())
            .flatten();
        self.report.touched.touch(path);
        if first.is_some() {
            self.report.touched = Touched::Many;
        }
        let kind = FileType::from_raw_mode(stat.st_mode);
        let mut cost = fs::name_cost(name);
        if first.is_none() {
            cost += fs::data_cost(stat);
        }
        let freed = match (&sink, &old) {
            (Sink::Ours(sink), Some(known)) => self.cost_of(known, sink.st_nlink),
            _ => 0,
        };
        let size = u64::try_from(stat.st_size).unwrap_or(0);
        let cuttable = first.is_none() && kind == FileType::RegularFile;
        let (cost, length) = self.fit(path, name, (cost, freed), size, cuttable)?;
        self.copies += 1;
        let partial = OsString::from(format!("{PARTIAL}{}-{}", std::process::id(), self.copies));
        let made = match (&first, kind) {
            (Some(first), _) => fs::link_beneath(self.to_root, first, to, &partial),
            (None, FileType::Symlink) => fs::copy_symlink(from, to, name, &partial, stat),
            (None, _) => {
                let before = match &sink {
                    Sink::Ours(sink) => Some(sink.st_mode),
                    _ => None,
                };
                let copy = fs::Copy {
                    name,
                    partial: &partial,
                    stat,
                    mode: self.direction.sink_mode(stat.st_mode, before),
                    length,
                };
                fs::copy_file(from, to, &copy, &mut self.buffer, &mut *self.tick)
            }
        };
        let placed =
            made.and_then(|()| self.put_in_place(to, path, name, &partial, &sink, old.as_ref()));
        match placed {
            Ok(true) => {}
            Ok(false) => {
                let _ = fs::unlink(to, &partial);
                self.spend_back(cost);
                return old;
            }
            Err(err) => {
                let _ = fs::unlink(to, &partial);
                self.spend_back(cost);
                self.failed(path, err);
                return old;
            }
        }
        self.spend_back(freed);
        self.report.copied += 1;
        if first.is_none() {
            self.note_link(stat, path);
        }
        let sink = stat_at(to, name).ok()?;
        let mut known = self.known(stat, &sink, name, KnownDir::new());
        if length < size {
            // Cut at the limit: the next pass copies it again, in case there is room then.
            match self.direction {
                Direction::Out => known.inside.size = -1,
                Direction::In => known.host.size = -1,
            }
        }
        Some(known)
    }

    /// What the sink has at `name`, when it may give way to the source's version; `None`
    /// (said) when something there is not the last pass's: both versions then stay.
    fn sink(
        &mut self,
        to: &OwnedFd,
        path: &Path,
        name: &OsString,
        old: Option<&Known>,
    ) -> Option<Sink> {
        let Ok(sink) = stat_at(to, name) else {
            return Some(Sink::Nothing);
        };
        if sink.st_dev != self.sink_device || fs::is_mount(to, name) {
            self.report.problem(
                path,
                "something is mounted there on the other side; left alone",
            );
            return None;
        }
        if fs::is_dir(&sink) {
            return match old {
                Some(known) if self.direction.sink(known).is_dir() => Some(Sink::OurDir),
                _ => {
                    self.conflict(path);
                    None
                }
            };
        }
        match old {
            Some(known) if self.direction.sink(known).matches(Signature::of(&sink)) => {
                Some(Sink::Ours(sink))
            }
            _ => {
                self.conflict(path);
                None
            }
        }
    }

    /// Moves the finished copy to its name. `Ok(false)` when a directory of ours there still
    /// holds what the other side added.
    fn put_in_place(
        &mut self,
        to: &OwnedFd,
        path: &Path,
        name: &OsString,
        partial: &OsString,
        sink: &Sink,
        old: Option<&Known>,
    ) -> Result<bool, Errno> {
        if let Sink::OurDir = sink {
            let children = old.map(|known| known.children.clone()).unwrap_or_default();
            if !self.remove_known_dir(to, path, name, children)? {
                self.report
                    .problem(path, "the other side holds new files there; left alone");
                return Ok(false);
            }
        }
        rustix::fs::renameat(to, partial, to, name)?;
        Ok(true)
    }

    /// For a directory to come where a file is: the file gives way when it is ours.
    fn make_way(
        &mut self,
        to: &OwnedFd,
        path: &Path,
        name: &OsString,
        old: Option<&Known>,
    ) -> bool {
        match self.sink(to, path, name, old) {
            Some(Sink::Ours(sink)) => {
                if let Some(known) = old {
                    let freed = self.cost_of(known, sink.st_nlink);
                    self.spend_back(freed);
                }
                match fs::unlink(to, name) {
                    Ok(()) => true,
                    Err(err) => {
                        self.failed(path, err);
                        false
                    }
                }
            }
            Some(Sink::Nothing) => true,
            _ => false,
        }
    }

    /// The cost to charge and the length to copy, within the budget: a file that does not
    /// fit whole gets what room is left, as the one the block was writing when /workspace
    /// filled up (cut short there already). `None` (said) when nothing fits.
    fn fit(
        &mut self,
        path: &Path,
        name: &OsString,
        (cost, freed): (u64, u64),
        size: u64,
        cuttable: bool,
    ) -> Option<(u64, u64)> {
        // What the entry it replaces gives back counts as room.
        let left = self
            .budget
            .map(|budget| (budget + freed).saturating_sub(self.spent));
        let entry = fs::name_cost(name);
        let (cost, length) = match left {
            Some(left) if cost > left && cuttable && left >= entry + 4096 => {
                let length = ((left - entry) / 4096 * 4096).min(size);
                self.report.no_space = true;
                self.report.problem(
                    path,
                    format!("only its first {length} bytes fit within the workspace's limit"),
                );
                (entry + length, length)
            }
            Some(left) if cost > left => {
                self.report.no_space = true;
                self.report.problem(
                    path,
                    "it would take the host copy past the workspace's limit; not copied",
                );
                return None;
            }
            _ => (cost, size),
        };
        self.spent += cost;
        Some((cost, length))
    }

    /// An entry the sink has and the source has not: removed when the sink still holds
    /// what the last pass left there.
    fn removed_at_source(&mut self, to: &OwnedFd, path: &Path, name: &OsString, known: Known) {
        (self.tick)();
        let Ok(stat) = stat_at(to, name) else {
            return;
        };
        if stat.st_dev != self.sink_device || fs::is_mount(to, name) {
            return;
        }
        self.report.touched.touch(path);
        let outcome = if fs::is_dir(&stat) {
            let freed = known.name_cost + known.data_cost;
            self.remove_known_dir(to, path, name, known.children)
                .inspect(|&gone| {
                    if gone {
                        self.spend_back(freed)
                    }
                })
        } else if self.direction.sink(&known).matches(Signature::of(&stat)) {
            let freed = self.cost_of(&known, stat.st_nlink);
            fs::unlink(to, name).map(|()| {
                self.spend_back(freed);
                true
            })
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
        let entries = fs::entries(&dir)?;
        for child in git::removable(self.direction, entries, &children, path, &mut self.report) {
            if let Some(known) = children.remove(&child) {
                self.removed_at_source(&dir, &path.join(&child), &child, known);
            }
        }
        fs::remove_empty_dir(to, name)
    }

    fn known(&self, source: &Stat, sink: &Stat, name: &OsString, children: KnownDir) -> Known {
        let mut sink_signature = Signature::of(sink);
        if source.st_nlink > 1 {
            // Its other names are still to be linked to it, which changes its ctime.
            sink_signature.ctime = (0, 0);
        }
        let source_signature = Signature::of(source);
        let (inside, host, host_stat) = match self.direction {
            Direction::In => (sink_signature, source_signature, source),
            Direction::Out => (source_signature, sink_signature, sink),
        };
        Known {
            inside,
            host,
            name_cost: fs::name_cost(name),
            data_cost: fs::data_cost(host_stat),
            children,
        }
    }

    /// What removing `known` from the sink gives back: its name, and its data when this was
    /// its last name there.
    fn cost_of(&self, known: &Known, sink_links: u64) -> u64 {
        known.name_cost + if sink_links <= 1 { known.data_cost } else { 0 }
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

    fn spend_back(&mut self, cost: u64) {
        self.spent = self.spent.saturating_sub(cost);
    }

    fn conflict(&mut self, path: &Path) {
        self.report.problem(
            path,
            "changed on both sides since the last copy; both versions are kept, each on its side",
        );
    }

    fn failed(&mut self, path: &Path, err: Errno) {
        if matches!(err, Errno::NOSPC | Errno::DQUOT) {
            self.report.no_space = true;
        }
        self.report.problem(path, std::io::Error::from(err));
    }
}

fn is_partial(name: &OsString) -> bool {
    name.as_bytes().starts_with(PARTIAL.as_bytes())
}
