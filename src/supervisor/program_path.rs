//! Where a block's interpreter is, found once per session where nothing can move it.
//!
//! Given a bare name (`python3`), the child's exec searches the block's PATH, and every
//! directory before the right one costs a failed exec: on fuse-overlayfs each is a round trip
//! to its daemon, about a millisecond for a block in all. A shell remembers the place after
//! the first search; so does the supervisor, but only where the answer cannot change: every
//! directory searched up to the hit, and the hit itself, on a read-only filesystem (the
//! image's root). A PATH that names a writable directory first (the workspace, /tmp) is
//! searched by the exec every time, as before, so a program planted there is still found.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
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
        let path = env
            .iter()
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
/// up to it is absolute and read-only; `None` otherwise.
fn search_fixed(program: &str, path: &str) -> Option<PathBuf> {
    for dir in path.split(':') {
        let dir = Path::new(dir);
        // An empty or relative entry means the working directory: writable.
        if !dir.is_absolute() || !read_only(dir) {
            return None;
        }
        let file = dir.join(program);
        match std::fs::metadata(&file) {
            // Executable by anyone: by the code's uid too, whoever that is.
            Ok(meta) if meta.is_file() && meta.permissions().mode() & 0o001 != 0 => {
                return Some(file);
            }
            // Something the exec would try and fail on, or run differently: its search.
            Ok(_) => return None,
            Err(_) => {}
        }
    }
    None
}

/// Whether `dir`, or where it would be made when it does not exist, is on a read-only
/// filesystem (so nothing can appear in it for the session's life).
fn read_only(dir: &Path) -> bool {
    let mut at = Some(dir);
    while let Some(here) = at {
        match rustix::fs::statvfs(here) {
            Ok(vfs) => return vfs.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY),
            Err(rustix::io::Errno::NOENT) => at = here.parent(),
            Err(_) => return false,
        }
    }
    false
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
    fn a_writable_directory_and_one_not_made_yet_in_it_are_not_fixed() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!read_only(dir.path()));
        assert!(!read_only(&dir.path().join("not/made/yet")));
    }
}
