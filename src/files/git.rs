//! What git would take for a repository's metadata, one predicate for every workspace mode.
//! A block that writes a hook, a `core.fsmonitor` or an alias there gets its code run on the
//! host by the operator's next `git status`, so blocks never change it: a `.git` (directory,
//! `gitdir:` file or symlink) and a directory git would open as a bare repository or a
//! worktree's git directory (`HEAD` with `objects/` and `refs/`, or with `commondir`).

use std::ffi::OsStr;
use std::path::Path;

/// The one name git looks for in every directory on the way up. Matched without regard to
/// case: on a case-insensitive host filesystem `.GIT` is the same entry.
pub(crate) fn is_git_name(name: &OsStr) -> bool {
    name.as_encoded_bytes().eq_ignore_ascii_case(b".git")
}

/// Whether a directory holding `names` is one git would open as a git directory.
pub(crate) fn looks_like_repository<'n>(names: impl IntoIterator<Item = &'n OsStr>) -> bool {
    let (mut head, mut objects, mut refs, mut commondir) = (false, false, false, false);
    for name in names {
        match name.as_encoded_bytes() {
            b"HEAD" => head = true,
            b"objects" => objects = true,
            b"refs" => refs = true,
            b"commondir" => commondir = true,
            _ => {}
        }
    }
    head && ((objects && refs) || commondir)
}

/// Whether `path` (relative to the workspace) names a `.git` or something below one.
pub(crate) fn under_git_name(path: &Path) -> bool {
    path.iter().any(is_git_name)
}

/// Whether directory `dir` on the host is one git would open as a git directory.
pub(crate) fn dir_looks_like_repository(dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    let names: Vec<_> = entries.flatten().map(|entry| entry.file_name()).collect();
    looks_like_repository(names.iter().map(|name| name.as_os_str()))
}

/// The git metadata in `root`, relative to it: each `.git` and each directory that looks
/// like a repository, not looked into further. Symlinks are never followed; at most
/// `limit` entries are visited (then what was found so far, and `false`).
pub(crate) fn find_metadata(root: &Path, limit: usize) -> (Vec<std::path::PathBuf>, bool) {
    let mut found = Vec::new();
    let mut pending = vec![std::path::PathBuf::new()];
    let mut visited = 0;
    while let Some(relative) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(root.join(&relative)) else {
            continue;
        };
        let entries: Vec<_> = entries.flatten().collect();
        visited += entries.len();
        if visited > limit {
            return (found, false);
        }
        let names: Vec<_> = entries.iter().map(|entry| entry.file_name()).collect();
        if !relative.as_os_str().is_empty()
            && looks_like_repository(names.iter().map(|name| name.as_os_str()))
        {
            found.push(relative);
            continue;
        }
        for entry in entries {
            let path = relative.join(entry.file_name());
            if is_git_name(&entry.file_name()) {
                found.push(path);
            } else if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
                pending.push(path);
            }
        }
    }
    found.sort();
    (found, true)
}

/// The notice for changes to git metadata a copy out kept from the host; `paths` come from
/// the supervisor, recorded, and are drawn here as the workspace pane draws them. `None`
/// when nothing was kept back.
pub(crate) fn kept_back_notice(paths: &[String], more: u64) -> Option<String> {
    if paths.is_empty() && more == 0 {
        return None;
    }
    let drawn: Vec<String> = paths
        .iter()
        .map(|path| super::recorded::drawn(path))
        .collect();
    let drawn: Vec<&str> = drawn.iter().map(String::as_str).collect();
    Some(format!(
        "not copied to the host: changes under .git/ (git metadata is read-only to blocks): {}",
        super::name_list(&drawn, more)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;
    use std::os::unix::ffi::OsStringExt;

    #[test]
    fn dot_git_in_any_case_is_metadata_and_nothing_else_is() {
        for name in [".git", ".GIT", ".Git"] {
            assert!(is_git_name(OsStr::new(name)), "{name}");
        }
        for name in ["git", ".gitignore", ".git.bak", "x.git", ".gitmodules", ""] {
            assert!(!is_git_name(OsStr::new(name)), "{name}");
        }
        assert!(!is_git_name(&OsString::from_vec(b".git\xff".to_vec())));
    }

    #[test]
    fn a_bare_repository_or_a_worktree_git_dir_is_recognised_by_its_entries() {
        fn names<'n>(list: &[&'n str]) -> Vec<&'n OsStr> {
            list.iter().map(|name| OsStr::new(*name)).collect()
        }
        assert!(looks_like_repository(names(&["HEAD", "objects", "refs"])));
        assert!(looks_like_repository(names(&[
            "config", "HEAD", "refs", "hooks", "objects"
        ])));
        assert!(looks_like_repository(names(&["HEAD", "commondir"])));
        assert!(!looks_like_repository(names(&[
            "objects", "refs", "config"
        ])));
        assert!(!looks_like_repository(names(&["HEAD", "objects"])));
        assert!(!looks_like_repository(names(&["head", "objects", "refs"])));
        assert!(!looks_like_repository(names(&[])));
    }

    #[test]
    fn paths_below_a_dot_git_are_metadata() {
        assert!(under_git_name(Path::new(".git/hooks/pre-commit")));
        assert!(under_git_name(Path::new("sub/.git")));
        assert!(under_git_name(Path::new("a/b/.GIT/config")));
        assert!(!under_git_name(Path::new("src/git/config")));
        assert!(!under_git_name(Path::new(".github/workflows/ci.yml")));
    }

    #[test]
    fn metadata_is_found_in_a_tree_without_following_symlinks() {
        let root = tempfile::tempdir().expect("tempdir");
        let at = |p: &str| root.path().join(p);
        std::fs::create_dir_all(at(".git/objects")).expect("dir");
        std::fs::create_dir_all(at("sub/deeper")).expect("dir");
        std::fs::write(at("sub/deeper/.git"), "gitdir: ../../.git\n").expect("file");
        for dir in ["bare/objects", "bare/refs", "src"] {
            std::fs::create_dir_all(at(dir)).expect("dir");
        }
        std::fs::write(at("bare/HEAD"), "ref: refs/heads/main\n").expect("file");
        let outside = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(outside.path().join(".git")).expect("dir");
        std::os::unix::fs::symlink(outside.path(), at("link")).expect("symlink");
        let (found, whole) = find_metadata(root.path(), 1000);
        assert!(whole);
        let expected: Vec<std::path::PathBuf> = [".git", "bare", "sub/deeper/.git"]
            .iter()
            .map(Into::into)
            .collect();
        assert_eq!(found, expected);
        let (_, whole) = find_metadata(root.path(), 2);
        assert!(!whole, "a walk past its limit says so");
    }

    #[test]
    fn the_kept_back_notice_draws_hostile_names_harmless() {
        assert_eq!(kept_back_notice(&[], 0), None);
        let paths = [
            ".git/hooks/pre-commit".to_string(),
            "sub/.git/\u{1b}[2J".to_string(),
            super::super::recorded::recorded(b".git/a\nairlock: forged\xff"),
        ];
        let notice = kept_back_notice(&paths, 3).expect("notice");
        assert!(!notice.contains('\u{1b}'), "{notice:?}");
        assert!(
            notice.contains(
                ".git/hooks/pre-commit, sub/.git/\u{241b}[2J, .git/a\u{240a}airlock: forged\\xFF"
            ),
            "{notice}"
        );
        assert!(notice.ends_with("and 3 more"), "{notice}");
    }
}
