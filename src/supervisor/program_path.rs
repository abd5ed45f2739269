//! Where a block's interpreter is, found once per session where nothing can move it.
//!
//! Given a bare name (`python3`), the child's exec searches the block's PATH, and every
//! directory before the right one costs a failed exec: on fuse-overlayfs each is a round trip
//! to its daemon, about a millisecond for a block in all. A shell remembers the place after
//! the first search; so does the supervisor, but only where the answer cannot change: every
//! directory searched up to the hit, and the hit itself, present, reachable by anyone, and on
//! the image's root filesystem mounted read-only (not a mount over it, which the host may
//! change). A PATH through anything else (the workspace, /tmp, a symlink, a directory not
//! there) is searched by the exec every time, as before, so a program planted there is
//! still found.

use std::collections::HashMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// What was found, by program name and PATH.
#[derive(Debug, Default)]
pub(crate) struct ProgramPaths {
    found: Mutex<HashMap<(String, String), PathBuf>>,
}

impl ProgramPaths {
    /// The file `program` runs from with `env`'s PATH, when it is a bare name found where
    /// no block can change the outcome; `None` leaves the search to the exec.
    pub(crate) fn resolve(&self, program: &str, env: &[(String, String)]) -> Option<PathBuf> {
        if program.is_empty() || program.contains('/') {
            return None;
        }
        // The last one, as the child's environment keeps it.
        let path = env
            .iter()
            .rev()
            .find_map(|(name, value)| (name == "PATH").then_some(value))?;
        let key = (program.to_string(), path.clone());
        let mut found = self.found.lock().ok()?;
        if let Some(file) = found.get(&key) {
            return Some(file.clone());
        }
        let file = search_fixed(program, path)?;
        found.insert(key, file.clone());
        Some(file)
    }
}

/// The first PATH entry holding `program` as an executable file, when every entry searched
/// up to it is fixed (see [`fixed_dir`]) and the file is on the same filesystem; `None`
/// otherwise.
fn search_fixed(program: &str, path: &str) -> Option<PathBuf> {
    let root = root_device()?;
    for dir in path.split(':') {
        let dir = Path::new(dir);
        if !fixed_dir(dir, root) {
            return None;
        }
        let file = dir.join(program);
        // A name the exec would follow somewhere else, or that is not there yet: left to it.
        let Ok(entry) = std::fs::symlink_metadata(&file) else {
            continue;
        };
        let Ok(target) = std::fs::canonicalize(&file).and_then(std::fs::metadata) else {
            return None;
        };
        let runnable = target.is_file() && target.permissions().mode() & 0o001 != 0;
        let same_place = entry.dev() == root && target.dev() == root;
        return (runnable && same_place).then_some(file);
    }
    None
}

/// The device of `/`, when it is mounted read-only (the image's root); `None` otherwise.
fn root_device() -> Option<u64> {
    let vfs = rustix::fs::statvfs("/").ok()?;
    if !vfs.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY) {
        return None;
    }
    std::fs::metadata("/").ok().map(|meta| meta.dev())
}

/// A directory whose entries cannot change while the session lives: absolute, there, no
/// symlink on the way, searchable by anyone, and on the read-only root filesystem (device
/// `root`), not on a mount over it.
fn fixed_dir(dir: &Path, root: u64) -> bool {
    if !dir.is_absolute() {
        return false;
    }
    let mut at = Some(dir);
    while let Some(here) = at {
        match std::fs::symlink_metadata(here) {
            Ok(meta) if meta.is_dir() && meta.dev() == root && meta.mode() & 0o001 != 0 => {}
            _ => return false,
        }
        at = here.parent();
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(path: &str) -> Vec<(String, String)> {
        vec![("PATH".to_string(), path.to_string())]
    }

    #[test]
    fn a_search_through_a_writable_directory_is_left_to_the_exec() {
        let paths = ProgramPaths::default();
        let writable = tempfile::tempdir().unwrap();
        let planted = writable.path().join("sh");
        std::fs::write(&planted, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&planted, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = format!("{}:/usr/bin:/bin", writable.path().display());
        assert_eq!(paths.resolve("sh", &env(&path)), None);
        // Not even when the program is not there yet: it could be, by the next block.
        std::fs::remove_file(&planted).unwrap();
        assert_eq!(paths.resolve("sh", &env(&path)), None);
        assert_eq!(
            paths.resolve("sh", &env(":/bin")),
            None,
            "the working directory"
        );
        assert_eq!(
            paths.resolve("sh", &env("bin:/bin")),
            None,
            "a relative entry"
        );
    }

    #[test]
    fn names_with_a_slash_and_a_missing_path_are_left_to_the_exec() {
        let paths = ProgramPaths::default();
        assert_eq!(paths.resolve("/bin/sh", &env("/bin")), None);
        assert_eq!(paths.resolve("./sh", &env("/bin")), None);
        assert_eq!(paths.resolve("sh", &[]), None);
        assert_eq!(paths.resolve("", &env("/bin")), None);
    }

    #[test]
    fn only_a_plain_searchable_directory_on_the_root_filesystem_is_fixed() {
        let root = std::fs::metadata("/").unwrap().dev();
        assert!(fixed_dir(Path::new("/"), root));
        assert!(!fixed_dir(Path::new("/"), root + 1), "another filesystem");
        assert!(!fixed_dir(Path::new("relative"), root));
        let dir = tempfile::tempdir().unwrap();
        let device = std::fs::metadata(dir.path()).unwrap().dev();
        // The code's uid could not search it.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        assert!(!fixed_dir(dir.path(), device));
        assert!(!fixed_dir(&dir.path().join("not/made/yet"), device));
        let link = dir.path().join("link");
        std::os::unix::fs::symlink("/", &link).unwrap();
        assert!(!fixed_dir(&link, root));
    }
}
