//! The host copy of a workspace that lives in an engine's volume: packed into a tar that
//! fills the volume, and brought up to date from the tar the engine gives back after every
//! run. Only airlock writes the copy; still, nothing in an archive is followed out of it: a
//! path with `..` or a root is skipped, no write goes through a symlink, and set-id bits
//! are dropped.

use std::collections::HashSet;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

/// Entries of an archive taken at most: the workspace's own inode limit is lower.
const MAX_ENTRIES: usize = 1_000_000;

/// What bringing the copy up to date did.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Applied {
    pub(crate) written: usize,
    pub(crate) removed: usize,
    /// Entries that are not files, directories or symlinks (FIFOs, devices): not copied.
    pub(crate) skipped: usize,
}

impl Applied {
    pub(crate) fn add(&mut self, other: Self) {
        self.written += other.written;
        self.removed += other.removed;
        self.skipped += other.skipped;
    }
}

/// `root` as an archive whose entries sit under `top/`, owned by `uid:gid` (the code's user
/// in the container), in an unnamed temporary file.
pub(crate) fn pack(root: &Path, top: &str, uid: u32, gid: u32) -> std::io::Result<File> {
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
    for entry in walk(root)? {
        let relative = entry.strip_prefix(root).unwrap_or(&entry);
        let meta = std::fs::symlink_metadata(&entry)?;
        let kind = meta.file_type();
        if !(kind.is_file() || kind.is_dir() || kind.is_symlink()) {
            continue;
        }
        let mut header = tar::Header::new_gnu();
        header.set_metadata_in_mode(&meta, tar::HeaderMode::Complete);
        header.set_uid(u64::from(uid));
        header.set_gid(u64::from(gid));
        header.set_mode(meta.permissions().mode() & 0o777);
        let name = Path::new(top).join(relative);
        if kind.is_symlink() {
            let target = std::fs::read_link(&entry)?;
            builder.append_link(&mut header, &name, &target)?;
        } else if kind.is_dir() {
            builder.append_data(&mut header, &name, std::io::empty())?;
        } else {
            builder.append_data(&mut header, &name, File::open(&entry)?)?;
        }
    }
    let mut file = builder.into_inner()?;
    file.seek(SeekFrom::Start(0))?;
    Ok(file)
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

/// Makes `root` hold what `archive` holds under its first path component (`workspace/…`,
/// as the engine names a directory it archives): files that differ are written, what the
/// archive lacks is removed, the rest is left as it is.
pub(crate) fn apply(root: &Path, archive: File) -> std::io::Result<Applied> {
    let mut applied = Applied::default();
    let present = place_all(root, archive, &mut applied, inside)?;
    applied.removed = remove_absent(root, &present)?;
    Ok(applied)
}

/// Brings one path a run wrote or removed up to date, from the archive the engine gives of
/// it (named by its last component), or `None` when the engine has nothing there.
pub(crate) fn apply_path(
    root: &Path,
    relative: &Path,
    archive: Option<File>,
) -> std::io::Result<Applied> {
    let mut applied = Applied::default();
    let (Some(relative), Some(name)) = (plain(relative), relative.file_name()) else {
        return Ok(applied);
    };
    if !parent_is_plain(root, &relative) {
        return Ok(applied);
    }
    let target = root.join(&relative);
    if std::fs::symlink_metadata(&target).is_ok() {
        remove_any(&target)?;
        if archive.is_none() {
            applied.removed += 1;
        }
    }
    let Some(archive) = archive else {
        return Ok(applied);
    };
    let parent = relative.parent().unwrap_or(Path::new("")).to_path_buf();
    place_all(root, archive, &mut applied, |path| {
        let inner = plain(path)?;
        (inner.components().next()?.as_os_str() == name).then(|| parent.join(inner))
    })?;
    Ok(applied)
}

/// Places every entry of `archive` whose path `locate` maps to one under `root`; returns
/// the paths placed.
fn place_all(
    root: &Path,
    archive: File,
    applied: &mut Applied,
    locate: impl Fn(&Path) -> Option<PathBuf>,
) -> std::io::Result<HashSet<PathBuf>> {
    let mut present = HashSet::new();
    let mut archive = tar::Archive::new(archive);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let Some(relative) = locate(&entry.path()?) else {
            continue;
        };
        if present.len() >= MAX_ENTRIES {
            return Err(std::io::Error::other(
                "the archive has over a million entries",
            ));
        }
        if !parent_is_plain(root, &relative) {
            continue;
        }
        if place(root, &relative, &mut entry, &locate, applied)? {
            present.insert(relative);
        }
    }
    Ok(present)
}

/// One entry at `root/relative`; false when it is of a kind not copied.
fn place(
    root: &Path,
    relative: &Path,
    entry: &mut tar::Entry<'_, File>,
    locate: &impl Fn(&Path) -> Option<PathBuf>,
    applied: &mut Applied,
) -> std::io::Result<bool> {
    let target = root.join(relative);
    let header = entry.header().clone();
    let mode = header.mode().unwrap_or(0o644) & 0o777;
    match header.entry_type() {
        tar::EntryType::Directory => {
            // A directory already there keeps its mode: the operator's to set.
            if !std::fs::symlink_metadata(&target).is_ok_and(|m| m.is_dir()) {
                remove_any(&target)?;
                std::fs::create_dir(&target)?;
                std::fs::set_permissions(&target, PermissionsExt::from_mode(mode | 0o700))?;
                applied.written += 1;
            }
        }
        tar::EntryType::Regular | tar::EntryType::Continuous => {
            if write_file(&target, entry, &header, mode)? {
                applied.written += 1;
            }
        }
        tar::EntryType::Symlink => {
            let Some(link) = entry.link_name()? else {
                return Ok(false);
            };
            if std::fs::read_link(&target).ok().as_deref() != Some(&*link) {
                remove_any(&target)?;
                std::os::unix::fs::symlink(&*link, &target)?;
                applied.written += 1;
            }
        }
        tar::EntryType::Link => {
            let source = entry.link_name()?.and_then(|link| locate(&link));
            let Some(source) = source.filter(|s| parent_is_plain(root, s)) else {
                return Ok(false);
            };
            // A link, never a copy: a thousand names of one large file would otherwise
            // be a thousand copies on this disk.
            let source = root.join(source);
            if std::fs::symlink_metadata(&source).is_ok_and(|m| m.is_file())
                && !same_inode(&source, &target)
            {
                remove_any(&target)?;
                std::fs::hard_link(&source, &target)?;
                applied.written += 1;
            }
        }
        _ => {
            applied.skipped += 1;
            return Ok(false);
        }
    }
    Ok(true)
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

/// The path below the archive's top directory, when it stays below it.
fn inside(path: &Path) -> Option<PathBuf> {
    let mut components = path.components();
    matches!(components.next(), Some(Component::Normal(_))).then_some(())?;
    plain(components.as_path())
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

/// Writes a file whose content differs from what is there (by size, else byte for byte),
/// through a fresh file renamed into place; true when it wrote.
fn write_file(
    target: &Path,
    entry: &mut tar::Entry<'_, File>,
    header: &tar::Header,
    mode: u32,
) -> std::io::Result<bool> {
    let mut content = tempfile::NamedTempFile::new_in(target.parent().unwrap_or(target))?;
    std::io::copy(entry, content.as_file_mut())?;
    let same = std::fs::symlink_metadata(target)
        .is_ok_and(|meta| meta.is_file() && meta.len() == header.size().unwrap_or(u64::MAX))
        && same_content(target, content.as_file_mut())?;
    if same {
        return Ok(false);
    }
    let file = content.as_file();
    file.set_permissions(PermissionsExt::from_mode(mode))?;
    let time = header
        .mtime()
        .ok()
        .and_then(|mtime| std::time::UNIX_EPOCH.checked_add(std::time::Duration::from_secs(mtime)));
    if let Some(time) = time {
        file.set_modified(time)?;
    }
    if std::fs::symlink_metadata(target).is_ok_and(|meta| meta.is_dir()) {
        std::fs::remove_dir_all(target)?;
    }
    content.persist(target).map_err(|err| err.error)?;
    Ok(true)
}

fn same_content(target: &Path, fresh: &mut File) -> std::io::Result<bool> {
    fresh.seek(SeekFrom::Start(0))?;
    let mut old = File::open(target)?;
    let (mut a, mut b) = (vec![0u8; 64 << 10], vec![0u8; 64 << 10]);
    loop {
        let read = old.read(&mut a)?;
        if read == 0 {
            return Ok(fresh.read(&mut b[..1])? == 0);
        }
        fresh.read_exact(&mut b[..read])?;
        if a[..read] != b[..read] {
            return Ok(false);
        }
    }
}

fn same_inode(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::symlink_metadata(a), std::fs::symlink_metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

fn remove_any(path: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(err),
    }
}

/// Removes what is under `root` but not in `present`; returns how many entries went. Only
/// the kinds an archive brings are removed: a FIFO or socket of the operator's never came
/// from the engine, so its absence there says nothing.
fn remove_absent(root: &Path, present: &HashSet<PathBuf>) -> std::io::Result<usize> {
    let mut removed = 0;
    for path in walk(root)? {
        let relative = path.strip_prefix(root).unwrap_or(&path);
        let copied_kind = std::fs::symlink_metadata(&path).is_ok_and(|meta| {
            let kind = meta.file_type();
            kind.is_file() || kind.is_dir() || kind.is_symlink()
        });
        if !present.contains(relative) && copied_kind {
            remove_any(&path)?;
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn a_packed_tree_applied_elsewhere_is_the_same_tree() {
        let from = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(from.path().join("sub")).expect("dir");
        std::fs::write(from.path().join("sub/a.txt"), "alpha").expect("write");
        std::os::unix::fs::symlink("sub/a.txt", from.path().join("link")).expect("symlink");
        let to = tempfile::tempdir().expect("tempdir");
        std::fs::write(to.path().join("stale"), "gone").expect("write");
        let packed = pack(from.path(), "workspace", 1000, 1000).expect("pack");
        let applied = apply(to.path(), packed).expect("apply");
        assert_eq!(
            std::fs::read_to_string(to.path().join("sub/a.txt")).expect("read"),
            "alpha"
        );
        assert_eq!(
            std::fs::read_link(to.path().join("link")).expect("link"),
            Path::new("sub/a.txt")
        );
        assert!(!to.path().join("stale").exists());
        assert_eq!((applied.written, applied.removed), (3, 1));
        let again = pack(from.path(), "workspace", 1000, 1000).expect("pack");
        let unchanged = apply(to.path(), again).expect("apply");
        assert_eq!(
            unchanged,
            Applied::default(),
            "an unchanged tree writes nothing"
        );
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
        apply(root.path(), archive).expect("apply");
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
        apply(root.path(), archive).expect("apply");
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
        let root = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(root.path().join("d")).expect("dir");
        std::fs::write(root.path().join("d/sibling"), "stays").expect("write");
        std::fs::write(root.path().join("d/gone"), "old").expect("write");
        // The engine archives d/new.txt by its last component.
        let one = archive_of(|builder| {
            let mut header = file_header(3, 0o644);
            builder
                .append_data(&mut header, "new.txt", &b"new"[..])
                .expect("file");
        });
        let placed = apply_path(root.path(), Path::new("d/new.txt"), Some(one)).expect("apply");
        assert_eq!(placed.written, 1);
        assert_eq!(
            std::fs::read_to_string(root.path().join("d/new.txt")).unwrap(),
            "new"
        );
        assert!(root.path().join("d/sibling").exists(), "siblings stay");
        let removed = apply_path(root.path(), Path::new("d/gone"), None).expect("apply");
        assert_eq!(removed.removed, 1);
        assert!(!root.path().join("d/gone").exists());

        let outside = tempfile::tempdir().expect("tempdir");
        std::os::unix::fs::symlink(outside.path(), root.path().join("out")).expect("link");
        for path in ["out/planted", "../planted", "/etc/planted"] {
            let evil = archive_of(|builder| {
                let mut header = file_header(4, 0o644);
                builder
                    .append_data(&mut header, "planted", &b"evil"[..])
                    .expect("file");
            });
            apply_path(root.path(), Path::new(path), Some(evil)).expect("apply");
        }
        assert!(!outside.path().join("planted").exists());
        assert!(!root.path().parent().unwrap().join("planted").exists());
        // An archive whose entries are named for another path places nothing.
        let other = archive_of(|builder| {
            let mut header = file_header(1, 0o644);
            builder
                .append_data(&mut header, "elsewhere", &b"x"[..])
                .expect("file");
        });
        let nothing = apply_path(root.path(), Path::new("d/x"), Some(other)).expect("apply");
        assert_eq!(nothing.written, 0);
        assert!(!root.path().join("elsewhere").exists());
    }

    #[test]
    fn a_same_size_rewrite_is_written() {
        let root = tempfile::tempdir().expect("tempdir");
        std::fs::write(root.path().join("n"), "1").expect("write");
        let archive = archive_of(|builder| {
            let mut header = file_header(1, 0o644);
            builder
                .append_data(&mut header, "workspace/n", &b"2"[..])
                .expect("file");
        });
        let applied = apply(root.path(), archive).expect("apply");
        assert_eq!(applied.written, 1);
        assert_eq!(
            std::fs::read_to_string(root.path().join("n")).expect("read"),
            "2"
        );
    }
}
