//! Opening one file of the workspace from the host. The parent directory is reached with
//! `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`, the file itself is looked at before it
//! is opened and opened with `O_NOFOLLOW | O_NONBLOCK`, and what was opened is checked to be
//! the regular file that was looked at.

use std::fs::File;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags, Stat};
use rustix::io::Errno;

/// Why a file was not opened, in words for the operator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refusal {
    #[error("it is a symlink (to {0}); links are shown, never followed")]
    Symlink(String),
    #[error("the path goes through a symlink or out of the workspace")]
    Outside,
    #[error("it is a {0}, not a regular file, so it is not opened")]
    Special(&'static str),
    #[error("it is a directory")]
    Directory,
    #[error("it changed while it was being opened")]
    Raced,
    #[error("cannot open it: {0}")]
    Io(String),
}

/// A regular file of the workspace, open for reading, and its size when opened.
pub(crate) struct Opened {
    pub(crate) file: File,
    pub(crate) size: u64,
}

/// Opens `relative` (a path inside `root`, as a listing gives it) when it is a regular file.
pub(crate) fn open_regular(root: &Path, relative: &Path) -> Result<Opened, Refusal> {
    let (parent, name) = split(relative)?;
    let parent = open_dir_beneath(root, parent)?;
    let looked = rustix::fs::statat(&parent, name, AtFlags::SYMLINK_NOFOLLOW).map_err(io)?;
    refuse_unless_regular(&parent, name, &looked)?;
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY;
    let fd = rustix::fs::openat(&parent, name, flags | OFlags::CLOEXEC, Mode::empty()).map_err(
        |errno| match errno {
            Errno::LOOP => Refusal::Raced,
            other => io(other),
        },
    )?;
    let opened = rustix::fs::fstat(&fd).map_err(io)?;
    if !FileType::from_raw_mode(opened.st_mode).is_file()
        || (opened.st_dev, opened.st_ino) != (looked.st_dev, looked.st_ino)
    {
        return Err(Refusal::Raced);
    }
    Ok(Opened {
        file: File::from(fd),
        size: opened.st_size.max(0) as u64,
    })
}

/// Up to `limit` bytes from the start of a regular file, and whether there was more.
pub(crate) fn read_prefix(
    root: &Path,
    relative: &Path,
    limit: usize,
) -> Result<(Vec<u8>, bool), Refusal> {
    let opened = open_regular(root, relative)?;
    let mut bytes = Vec::with_capacity(limit.min(opened.size as usize));
    opened
        .file
        .take(limit as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|err| Refusal::Io(err.to_string()))?;
    let more = bytes.len() > limit;
    bytes.truncate(limit);
    Ok((bytes, more))
}

/// The directory `relative` inside `root`, reached without a symlink on the way.
pub(crate) fn open_dir_beneath(root: &Path, relative: &Path) -> Result<OwnedFd, Refusal> {
    let root = rustix::fs::open(root, dir_flags(), Mode::empty()).map_err(io)?;
    if relative.as_os_str().is_empty() {
        return Ok(root);
    }
    let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
    rustix::fs::openat2(&root, relative, dir_flags(), Mode::empty(), resolve).map_err(|errno| {
        match errno {
            Errno::LOOP | Errno::XDEV | Errno::NOTDIR => Refusal::Outside,
            other => io(other),
        }
    })
}

pub(crate) fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

/// What a file type is called in a sentence, for the kinds that are never opened.
pub(crate) fn special_kind(kind: FileType) -> &'static str {
    match kind {
        FileType::Fifo => "FIFO",
        FileType::Socket => "socket",
        FileType::CharacterDevice => "character device",
        FileType::BlockDevice => "block device",
        _ => "special file",
    }
}

fn refuse_unless_regular(parent: &OwnedFd, name: &Path, stat: &Stat) -> Result<(), Refusal> {
    match FileType::from_raw_mode(stat.st_mode) {
        FileType::RegularFile => Ok(()),
        FileType::Directory => Err(Refusal::Directory),
        FileType::Symlink => {
            let target = rustix::fs::readlinkat(parent, name, Vec::new()).map_err(io)?;
            let target = std::ffi::OsStr::from_bytes(target.as_bytes());
            Err(Refusal::Symlink(super::display_name(target)))
        }
        other => Err(Refusal::Special(special_kind(other))),
    }
}

/// `a/b/c` → (`a/b`, `c`); a path with `..`, a root or no name is refused.
fn split(relative: &Path) -> Result<(&Path, &Path), Refusal> {
    let plain = relative
        .components()
        .all(|part| matches!(part, std::path::Component::Normal(_)));
    let name = relative
        .file_name()
        .filter(|_| plain)
        .ok_or(Refusal::Outside)?;
    let parent = relative.parent().unwrap_or(Path::new(""));
    Ok((parent, Path::new(name)))
}

fn io(errno: Errno) -> Refusal {
    Refusal::Io(std::io::Error::from(errno).to_string())
}
