//! An archive the engine gave back, read through once before anything of it is written
//! (so a broken one writes nothing), then brought to the host copy entry by entry: what a
//! block removed goes first, then what it wrote, each only where the host still holds what
//! the last copy left there.

use std::collections::HashSet;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use super::marks::{HostMark, Kind, SyncState, Synced, VolumeMark};
use super::{Applied, Hashing, MAX_ENTRIES, parent_is_plain, plain, walk};
use crate::files::host_mode;

/// Which part of the workspace an archive brings.
#[derive(Debug, Clone)]
pub(crate) enum Scope {
    /// All of it, under a top directory (`workspace/…`, as the engine names a directory
    /// it archives).
    Tree,
    /// One path a run wrote or removed, archived by its last component.
    Path(PathBuf),
}

impl Scope {
    /// Where an archive's entry goes, relative to the workspace.
    fn locate(&self, path: &Path) -> Option<PathBuf> {
        match self {
            Self::Tree => {
                let mut components = path.components();
                matches!(components.next(), Some(Component::Normal(_))).then_some(())?;
                plain(components.as_path())
            }
            Self::Path(relative) => {
                // Named by the engine's list of touched paths: one with `..` or a root
                // places nothing.
                let relative = plain(relative)?;
                let inner = plain(path)?;
                let name = relative.file_name()?;
                let parent = relative.parent().unwrap_or(Path::new(""));
                (inner.components().next()?.as_os_str() == name).then(|| parent.join(inner))
            }
        }
    }

    fn root(&self) -> &Path {
        match self {
            Self::Tree => Path::new(""),
            Self::Path(relative) => relative,
        }
    }
}

/// One entry of the archive.
#[derive(Debug)]
struct Item {
    path: PathBuf,
    what: What,
    mtime: u64,
}

#[derive(Debug)]
enum What {
    Dir(u32),
    /// Its bytes are in the archive at `offset`.
    File {
        mode: u32,
        offset: u64,
        size: u64,
        digest: [u8; 32],
    },
    Symlink(PathBuf),
    /// Another name of a file that came earlier in the archive.
    Link(PathBuf),
    /// Neither a file, a directory nor a symlink: not copied.
    Other,
}

/// An archive read through: every entry known and the archive whole.
pub(crate) struct Incoming {
    archive: Option<File>,
    scope: Scope,
    items: Vec<Item>,
}

impl Incoming {
    /// Reads `archive` (`None`: the engine has nothing in `scope`) through once.
    pub(crate) fn read(archive: Option<File>, scope: Scope) -> std::io::Result<Self> {
        let mut items = Vec::new();
        if let Some(file) = &archive {
            let mut reader = file.try_clone()?;
            reader.seek(SeekFrom::Start(0))?;
            let mut tar = tar::Archive::new(reader);
            for entry in tar.entries()? {
                let entry = entry?;
                let Some(path) = scope.locate(&entry.path()?) else {
                    continue;
                };
                if items.len() >= MAX_ENTRIES {
                    return Err(std::io::Error::other(
                        "the archive has over a million entries",
                    ));
                }
                items.push(item(path, entry, &scope)?);
            }
        }
        Ok(Self {
            archive,
            scope,
            items,
        })
    }

    /// Pairs the archive with what the host holds in its scope now, for [`Self::apply`];
    /// an error here comes before anything is written.
    pub(crate) fn listed(self, root: &Path) -> std::io::Result<(Self, Vec<PathBuf>)> {
        let host = self.host_entries(root)?;
        Ok((self, host))
    }

    /// Brings `root` up to date with the archive, within its scope; `host` is what
    /// [`Self::listed`] found there. What fails for one entry is in [`Applied::failed`],
    /// and nothing below it is tried.
    pub(crate) fn apply(self, root: &Path, host: Vec<PathBuf>, state: &mut SyncState) -> Applied {
        let present: HashSet<&Path> = self.items.iter().map(|i| i.path.as_path()).collect();
        let mut copy = Copy {
            root,
            state,
            applied: Applied::default(),
            blocked: HashSet::new(),
        };
        for path in host.iter().rev() {
            if !present.contains(path.as_path()) {
                copy.remove(path);
            }
        }
        if let Some(archive) = &self.archive {
            for item in &self.items {
                copy.place(item, archive);
            }
        }
        let scope = self.scope.root().to_path_buf();
        copy.state.forget_under(&scope, |path| {
            present.contains(path) || std::fs::symlink_metadata(root.join(path)).is_ok()
        });
        copy.applied
    }

    /// What the host holds in the scope, parents before children.
    fn host_entries(&self, root: &Path) -> std::io::Result<Vec<PathBuf>> {
        let relative = |path: PathBuf| path.strip_prefix(root).map(Path::to_path_buf).ok();
        match &self.scope {
            Scope::Tree => Ok(walk(root)?.into_iter().filter_map(relative).collect()),
            Scope::Path(path) => {
                let Some(path) = plain(path).filter(|p| parent_is_plain(root, p)) else {
                    return Ok(Vec::new());
                };
                let Ok(meta) = std::fs::symlink_metadata(root.join(&path)) else {
                    return Ok(Vec::new());
                };
                let mut found = vec![path.clone()];
                if meta.is_dir() {
                    found.extend(walk(&root.join(&path))?.into_iter().filter_map(relative));
                }
                Ok(found)
            }
        }
    }
}

fn item(path: PathBuf, mut entry: tar::Entry<'_, File>, scope: &Scope) -> std::io::Result<Item> {
    let header = entry.header();
    let mode = header.mode().unwrap_or(0o644) & 0o7777;
    let mtime = header.mtime().unwrap_or(0);
    let what = match header.entry_type() {
        tar::EntryType::Directory => What::Dir(mode),
        tar::EntryType::Regular | tar::EntryType::Continuous => {
            let offset = entry.raw_file_position();
            let size = entry.size();
            let mut hashing = Hashing::new(&mut entry);
            std::io::copy(&mut hashing, &mut std::io::sink())?;
            What::File {
                mode,
                offset,
                size,
                digest: hashing.digest(),
            }
        }
        tar::EntryType::Symlink => match entry.link_name()? {
            Some(target) => What::Symlink(target.into_owned()),
            None => What::Other,
        },
        tar::EntryType::Link => match entry.link_name()?.and_then(|l| scope.locate(&l)) {
            Some(source) => What::Link(source),
            None => What::Other,
        },
        _ => What::Other,
    };
    Ok(Item { path, what, mtime })
}

/// What to do with one entry the volume has.
enum Verdict {
    /// The volume's is what the last copy left: the host's stays, whatever it is.
    Keep,
    /// The host still holds what the last copy left (or nothing): it takes the volume's.
    Write,
    /// The host already holds the same.
    Adopt,
    /// Both changed: each side keeps its own.
    Hold(HostMark),
}

/// One copy into the host directory.
struct Copy<'a> {
    root: &'a Path,
    state: &'a mut SyncState,
    applied: Applied,
    /// Paths held apart or failed: what is below them is not placed (nor named again).
    blocked: HashSet<PathBuf>,
}

impl Copy<'_> {
    /// An entry the volume no longer has: removed when the host still holds what the last
    /// copy left there; a changed one stays, and goes back to the volume with the next
    /// copy in.
    fn remove(&mut self, path: &Path) {
        let Some(known) = self.state.get(path).copied() else {
            return;
        };
        let target = self.root.join(path);
        let Some(now) = HostMark::read(&target) else {
            return;
        };
        // Changed since, or the operator's version of a file both changed: the host's
        // stays, as a new entry of theirs.
        if known.held || !known.host.matches(now) {
            self.state.remove(path);
            return;
        }
        let removed = if std::fs::symlink_metadata(&target).is_ok_and(|m| m.is_dir()) {
            match std::fs::remove_dir(&target) {
                // It holds the operator's files: it stays, as theirs.
                Err(err) if err.kind() == std::io::ErrorKind::DirectoryNotEmpty => {
                    self.state.remove(path);
                    return;
                }
                other => other,
            }
        } else {
            std::fs::remove_file(&target)
        };
        match removed {
            Ok(()) => {
                self.state.remove(path);
                self.applied.removed += 1;
            }
            Err(err) => self.fail(path, err),
        }
    }

    fn place(&mut self, item: &Item, archive: &File) {
        let path = item.path.as_path();
        if path.ancestors().skip(1).any(|up| self.blocked.contains(up)) {
            return;
        }
        if !parent_is_plain(self.root, path) {
            // Something of the operator's is where a directory of the block's would be.
            self.hold(path, None);
            return;
        }
        let volume = match self.mark(item) {
            Ok(Some(volume)) => volume,
            Ok(None) => {
                self.applied.skipped += 1;
                return;
            }
            Err(why) => {
                self.fail(path, std::io::Error::other(why));
                return;
            }
        };
        match self.verdict(path, &volume) {
            Verdict::Keep => {}
            Verdict::Hold(host) => self.hold(path, Some((host, volume))),
            Verdict::Adopt => self.record(path, volume),
            Verdict::Write => match self.write(item, archive) {
                Ok(()) => {
                    self.applied.written += 1;
                    self.record(path, volume);
                }
                // A directory of ours that now holds the operator's files.
                Err(err) if err.kind() == std::io::ErrorKind::DirectoryNotEmpty => {
                    let host = HostMark::read(&self.root.join(path));
                    self.hold(path, host.map(|host| (host, volume)));
                }
                Err(err) => self.fail(path, err),
            },
        }
    }

    /// What the volume's entry is; `None` for a kind not copied. A hard link is made only
    /// to a file the host holds as the volume does.
    fn mark(&self, item: &Item) -> Result<Option<VolumeMark>, String> {
        Ok(match &item.what {
            What::Dir(mode) => Some(VolumeMark::dir(*mode)),
            What::File { mode, digest, .. } => Some(VolumeMark::file(*mode, *digest)),
            What::Symlink(target) => Some(VolumeMark::symlink(target)),
            What::Link(source) => {
                let synced = self.state.get(source).filter(|known| {
                    let host = HostMark::read(&self.root.join(source));
                    !known.held
                        && parent_is_plain(self.root, source)
                        && host.is_some_and(|host| known.host.matches(host))
                });
                let Some(synced) = synced else {
                    return Err(format!(
                        "another name of {}, which the host copy does not hold as /workspace \
                         does",
                        crate::files::display_path(source)
                    ));
                };
                Some(synced.volume)
            }
            What::Other => None,
        })
    }

    fn verdict(&self, path: &Path, volume: &VolumeMark) -> Verdict {
        let known = self.state.get(path);
        if known.is_some_and(|known| known.volume == *volume) {
            return Verdict::Keep;
        }
        let target = self.root.join(path);
        let Some(host) = HostMark::read(&target) else {
            return Verdict::Write;
        };
        if known.is_some_and(|known| known.host.matches(host)) {
            return Verdict::Write;
        }
        if holds(&target, volume) {
            return Verdict::Adopt;
        }
        Verdict::Hold(host)
    }

    fn write(&mut self, item: &Item, archive: &File) -> std::io::Result<()> {
        let target = self.root.join(&item.path);
        let before = std::fs::symlink_metadata(&target).ok();
        let before_mode = before.as_ref().map(|m| m.permissions().mode());
        match &item.what {
            What::Dir(mode) => {
                if before.as_ref().is_some_and(|m| m.is_dir()) {
                    let mode = host_mode(*mode, before_mode) | 0o700;
                    return std::fs::set_permissions(&target, PermissionsExt::from_mode(mode));
                }
                make_way(&target)?;
                std::fs::create_dir(&target)?;
                let mode = host_mode(*mode, None) | 0o700;
                std::fs::set_permissions(&target, PermissionsExt::from_mode(mode))
            }
            What::File {
                mode, offset, size, ..
            } => {
                let mode = host_mode(*mode, before_mode);
                write_file(&target, (archive, *offset, *size), mode, item.mtime)
            }
            What::Symlink(link) => {
                let parent = target.parent().unwrap_or(self.root);
                let fresh = tempfile::Builder::new()
                    .make_in(parent, |path| std::os::unix::fs::symlink(link, path))?;
                make_way(&target)?;
                fresh.persist(&target).map_err(|err| err.error)?;
                Ok(())
            }
            What::Link(source) => {
                // A link, never a copy: a thousand names of one large file would otherwise
                // be a thousand copies on this disk.
                let source = self.root.join(source);
                make_way(&target)?;
                std::fs::hard_link(&source, &target)
            }
            What::Other => Ok(()),
        }
    }

    fn record(&mut self, path: &Path, volume: VolumeMark) {
        if let Some(host) = HostMark::read(&self.root.join(path)) {
            let synced = Synced {
                host,
                volume,
                held: false,
            };
            self.state.insert(path.to_path_buf(), synced);
        }
    }

    fn hold(&mut self, path: &Path, marks: Option<(HostMark, VolumeMark)>) {
        if let Some((host, volume)) = marks {
            let held = Synced {
                host,
                volume,
                held: true,
            };
            self.state.insert(path.to_path_buf(), held);
        }
        self.applied.held.push(path.to_path_buf());
        self.blocked.insert(path.to_path_buf());
    }

    fn fail(&mut self, path: &Path, err: std::io::Error) {
        self.applied
            .failed
            .push((path.to_path_buf(), err.to_string()));
        self.blocked.insert(path.to_path_buf());
    }
}

/// Whether the host entry at `target` already is what the volume's is (its mode aside).
fn holds(target: &Path, volume: &VolumeMark) -> bool {
    let Ok(meta) = std::fs::symlink_metadata(target) else {
        return false;
    };
    match volume.kind {
        Kind::Dir => meta.is_dir(),
        Kind::Symlink => std::fs::read_link(target)
            .is_ok_and(|link| VolumeMark::symlink(&link).digest == volume.digest),
        Kind::File => {
            meta.is_file()
                && File::open(target).is_ok_and(|file| {
                    let mut hashing = Hashing::new(file);
                    std::io::copy(&mut hashing, &mut std::io::sink()).is_ok()
                        && hashing.digest() == volume.digest
                })
        }
    }
}

/// Clears the way for a new entry at `target`: only an empty directory or a single name
/// goes (what the last copy left; the verdict saw to that).
fn make_way(target: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(target) {
        Ok(meta) if meta.is_dir() => std::fs::remove_dir(target),
        Ok(_) => std::fs::remove_file(target),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(err),
    }
}

/// Writes a file from `size` bytes of `archive` at `offset`, through a fresh file renamed
/// into place, so the host's version stays whole until the new one is.
fn write_file(
    target: &Path,
    (archive, offset, size): (&File, u64, u64),
    mode: u32,
    mtime: u64,
) -> std::io::Result<()> {
    let mut content = tempfile::NamedTempFile::new_in(target.parent().unwrap_or(target))?;
    let mut reader = archive.try_clone()?;
    reader.seek(SeekFrom::Start(offset))?;
    let copied = std::io::copy(&mut reader.take(size), content.as_file_mut())?;
    if copied != size {
        return Err(std::io::Error::other("the archive ended early"));
    }
    let file = content.as_file();
    file.set_permissions(PermissionsExt::from_mode(mode))?;
    let time = std::time::UNIX_EPOCH.checked_add(std::time::Duration::from_secs(mtime));
    if let Some(time) = time {
        file.set_modified(time)?;
    }
    if std::fs::symlink_metadata(target).is_ok_and(|meta| meta.is_dir()) {
        std::fs::remove_dir(target)?;
    }
    content.persist(target).map_err(|err| err.error)?;
    Ok(())
}
