//! The file operations of the mirror, each through a directory descriptor and a single name,
//! so none can follow a symlink.

use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStringExt;

use std::path::Path;

use super::Direction;

use rustix::fs::{
    AtFlags, FileType, Mode, OFlags, ResolveFlags, SeekFrom, Stat, StatxAttributes, StatxFlags,
    Timestamps,
};
use rustix::io::Errno;

const COPY_BUFFER: usize = 256 * 1024;
/// The host's block: what a directory, or a symlink too long to live in its inode, takes.
const BLOCK: u64 = 4096;
/// Symlinks with targets shorter than this live in their inode on ext4.
const FAST_SYMLINK: i64 = 60;

pub(super) fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

pub(super) fn uid(stat: &Stat) -> Option<rustix::fs::Uid> {
    Some(rustix::fs::Uid::from_raw(stat.st_uid))
}

pub(super) fn gid(stat: &Stat) -> Option<rustix::fs::Gid> {
    Some(rustix::fs::Gid::from_raw(stat.st_gid))
}

pub(super) fn is_dir(stat: &Stat) -> bool {
    FileType::from_raw_mode(stat.st_mode).is_dir()
}

pub(super) fn stat_at(dir: &OwnedFd, name: &OsString) -> Result<Stat, Errno> {
    rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
}

/// What an entry's name takes in the directory holding it.
pub(super) fn name_cost(name: &OsString) -> u64 {
    name.len() as u64 + 16
}

/// What an entry's data takes on the host: its blocks, at least a block for a directory or
/// a symlink too long to live in its inode.
pub(super) fn data_cost(stat: &Stat) -> u64 {
    let blocks = u64::try_from(stat.st_blocks).unwrap_or(0) * 512;
    let least = match FileType::from_raw_mode(stat.st_mode) {
        FileType::Directory => BLOCK,
        FileType::Symlink if stat.st_size >= FAST_SYMLINK => BLOCK,
        _ => 0,
    };
    blocks.max(least).div_ceil(BLOCK) * BLOCK
}

/// Whether `name` in `dir` is the root of a mount: one from the same filesystem (a bind
/// mount) shares its device, so the device alone does not tell.
pub(super) fn is_mount(dir: &OwnedFd, name: &OsString) -> bool {
    let flags = AtFlags::SYMLINK_NOFOLLOW | AtFlags::NO_AUTOMOUNT;
    let statx = match rustix::fs::statx(dir, name, flags, StatxFlags::empty()) {
        // gVisor's statx refuses AT_NO_AUTOMOUNT; it has no automount points to trigger.
        Err(Errno::INVAL) => {
            rustix::fs::statx(dir, name, AtFlags::SYMLINK_NOFOLLOW, StatxFlags::empty())
        }
        other => other,
    };
    statx.is_ok_and(|statx| {
        statx
            .stx_attributes_mask
            .contains(StatxAttributes::MOUNT_ROOT)
            && statx.stx_attributes.contains(StatxAttributes::MOUNT_ROOT)
    })
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
pub(super) fn entries(dir: &OwnedFd) -> Result<Vec<OsString>, Errno> {
    let mut names = Vec::new();
    for entry in rustix::fs::Dir::read_from(dir)? {
        let name = entry?.file_name().to_bytes().to_vec();
        if name != b"." && name != b".." {
            names.push(OsString::from_vec(name));
        }
    }
    Ok(names)
}

/// One file to copy: its name in the source, the passing name of the copy, what it is, and
/// how much of it to copy.
pub(super) struct Copy<'c> {
    pub(crate) name: &'c OsString,
    pub(crate) partial: &'c OsString,
    pub(crate) stat: &'c Stat,
    /// What the copy's permission bits are to be.
    pub(crate) mode: u32,
    pub(crate) length: u64,
}

/// Copies a regular file of `from` as the new file `partial` in `to`, with the given mode,
/// and its times and owner; at most its first `length` bytes. The file must still be
/// the inode `stat` describes; whatever fails, no partial copy is left. `tick` is called as
/// the data goes.
pub(super) fn copy_file(
    from: &OwnedFd,
    to: &OwnedFd,
    copy: &Copy<'_>,
    buffer: &mut Vec<u8>,
    tick: &mut dyn FnMut(),
) -> Result<(), Errno> {
    let Copy {
        name,
        partial,
        stat,
        mode,
        length,
    } = *copy;
    // Non-blocking, so a fifo put in its place cannot hold the supervisor.
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let source = rustix::fs::openat(from, name, flags, Mode::empty())?;
    let opened = rustix::fs::fstat(&source)?;
    let same = (opened.st_dev, opened.st_ino) == (stat.st_dev, stat.st_ino);
    if !same || FileType::from_raw_mode(opened.st_mode) != FileType::RegularFile {
        return Err(Errno::AGAIN);
    }
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW;
    let sink = rustix::fs::openat(to, partial, flags | OFlags::CLOEXEC, Mode::RUSR)?;
    if buffer.is_empty() {
        buffer.resize(COPY_BUFFER, 0);
    }
    // Mode and times while the file is still the supervisor's, the owner last.
    let copied = copy_data(&source, &sink, length, buffer, tick)
        .and_then(|()| rustix::fs::fchmod(&sink, Mode::from_raw_mode(mode)))
        .and_then(|()| rustix::fs::futimens(&sink, &times(stat)))
        .and_then(|()| rustix::fs::fchown(&sink, uid(stat), gid(stat)));
    if copied.is_err() {
        let _ = rustix::fs::unlinkat(to, partial, AtFlags::empty());
    }
    copied
}

/// Copies the data of `source` and none of its holes, so a sparse file takes no more room
/// in the copy than in the original.
fn copy_data(
    source: &OwnedFd,
    sink: &OwnedFd,
    size: u64,
    buffer: &mut [u8],
    tick: &mut dyn FnMut(),
) -> Result<(), Errno> {
    let mut offset = 0;
    while offset < size {
        let start = match rustix::fs::seek(source, SeekFrom::Data(offset)) {
            // Never backwards, whatever a filesystem answers: the copy always ends.
            Ok(start) => start.max(offset),
            Err(Errno::NXIO) => break,
            // No SEEK_DATA here (gVisor's tmpfs): the rest is read, and its zero blocks are
            // left as holes, so the copy still takes no more room than the data.
            Err(Errno::INVAL) => {
                copy_range(source, sink, (offset, size), buffer, true, tick)?;
                break;
            }
            Err(err) => return Err(err),
        };
        let end = rustix::fs::seek(source, SeekFrom::Hole(start))?.min(size);
        copy_range(source, sink, (start, end), buffer, false, tick)?;
        offset = end.max(start + 1);
    }
    rustix::fs::ftruncate(sink, size)
}

/// Copies the bytes from `range.0` to `range.1`; with `skip_zeros`, blocks of zeros are not
/// written, so they stay holes in the copy.
fn copy_range(
    source: &OwnedFd,
    sink: &OwnedFd,
    range: (u64, u64),
    buffer: &mut [u8],
    skip_zeros: bool,
    tick: &mut dyn FnMut(),
) -> Result<(), Errno> {
    let (mut at, end) = range;
    while at < end {
        tick();
        let want = usize::try_from(end - at)
            .unwrap_or(usize::MAX)
            .min(buffer.len());
        let read = rustix::io::pread(source, &mut buffer[..want], at)?;
        if read == 0 {
            // The file shrank while it was copied; the size is set after.
            return Ok(());
        }
        let mut done = 0;
        for piece in buffer[..read].chunks(BLOCK as usize) {
            if !(skip_zeros && piece.iter().all(|&b| b == 0)) {
                let mut written = 0;
                while written < piece.len() {
                    let offset = at + (done + written) as u64;
                    written += rustix::io::pwrite(sink, &piece[written..], offset)?;
                }
            }
            done += piece.len();
        }
        at += read as u64;
    }
    Ok(())
}

/// Copies the symlink `name` of `from` into `to`, as `partial`, with the same target.
pub(super) fn copy_symlink(
    from: &OwnedFd,
    to: &OwnedFd,
    name: &OsString,
    partial: &OsString,
    stat: &Stat,
) -> Result<(), Errno> {
    let target = rustix::fs::readlinkat(from, name, Vec::new())?;
    rustix::fs::symlinkat(target.as_c_str(), to, partial)?;
    let owned = rustix::fs::chownat(to, partial, uid(stat), gid(stat), AtFlags::SYMLINK_NOFOLLOW);
    if owned.is_err() {
        let _ = rustix::fs::unlinkat(to, partial, AtFlags::empty());
    }
    owned
}

/// Makes `partial` in `to` another name of the file at `first` (a path from `root`), the
/// path resolved beneath `root` without a symlink or a mount on the way.
pub(super) fn link_beneath(
    root: &OwnedFd,
    first: &Path,
    to: &OwnedFd,
    partial: &OsString,
) -> Result<(), Errno> {
    let (Some(parent), Some(last)) = (first.parent(), first.file_name()) else {
        return Err(Errno::INVAL);
    };
    let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_XDEV;
    let parent = if parent.as_os_str().is_empty() {
        rustix::fs::openat2(root, ".", dir_flags(), Mode::empty(), resolve)?
    } else {
        rustix::fs::openat2(root, parent, dir_flags(), Mode::empty(), resolve)?
    };
    rustix::fs::linkat(&parent, last, to, partial, AtFlags::empty())
}

/// Gives directory `dir` the mode and owner of `stat`: set-id and sticky bits are never
/// copied; on the host, those it has itself stay, and it gains no group or other write.
pub(super) fn match_dir(dir: &OwnedFd, stat: &Stat, direction: Direction) -> Result<(), Errno> {
    let now = rustix::fs::fstat(dir)?;
    let mode = match direction {
        Direction::Out => {
            direction.sink_mode(stat.st_mode, Some(now.st_mode)) | now.st_mode & 0o7000
        }
        Direction::In => stat.st_mode & 0o777,
    };
    if now.st_mode & 0o7777 != mode {
        rustix::fs::fchmod(dir, Mode::from_raw_mode(mode))?;
    }
    if (now.st_uid, now.st_gid) != (stat.st_uid, stat.st_gid) {
        rustix::fs::fchown(dir, uid(stat), gid(stat))?;
    }
    Ok(())
}

/// Removes a file or symlink.
pub(super) fn unlink(dir: &OwnedFd, name: &OsString) -> Result<(), Errno> {
    rustix::fs::unlinkat(dir, name, AtFlags::empty())
}

/// Removes an empty directory; `Ok(false)` when it is not empty.
pub(super) fn remove_empty_dir(dir: &OwnedFd, name: &OsString) -> Result<bool, Errno> {
    match rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR) {
        Ok(()) => Ok(true),
        Err(Errno::NOTEMPTY | Errno::EXIST) => Ok(false),
        Err(err) => Err(err),
    }
}

pub(super) fn open_dir(dir: &OwnedFd, name: &OsString) -> Result<OwnedFd, Errno> {
    rustix::fs::openat(dir, name, dir_flags(), Mode::empty())
}
