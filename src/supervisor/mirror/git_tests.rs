//! The mirror against a block that plants in the operator's git repository: hooks, config,
//! nested repositories, `gitdir:` files, bare look-alikes, and removals of `.git`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::*;

/// The host's repository and the /workspace it is mirrored into.
struct Repo {
    inside: tempfile::TempDir,
    host: tempfile::TempDir,
    mirror: Mirror,
}

impl Repo {
    /// A host directory holding a git repository (as `git init` lays one out, plus a
    /// nested repository in `vendor/lib`), pulled into /workspace.
    fn new() -> Self {
        let inside = tempfile::tempdir().expect("inside");
        let host = tempfile::tempdir().expect("host");
        for dir in [
            ".git/hooks",
            ".git/objects/ab",
            ".git/refs/heads",
            "vendor/lib/.git/objects",
            "vendor/lib/.git/refs",
        ] {
            std::fs::create_dir_all(host.path().join(dir)).expect("dir");
        }
        for (file, text) in [
            (".git/HEAD", "ref: refs/heads/main\n"),
            (".git/config", "[core]\n\tbare = false\n"),
            (".git/description", "unnamed\n"),
            (".git/objects/ab/cdef", "blob"),
            (".git/refs/heads/main", "0123456789\n"),
            ("vendor/lib/.git/HEAD", "ref: refs/heads/main\n"),
            ("vendor/lib/.git/config", "[core]\n"),
            ("vendor/lib/code.py", "pass\n"),
            ("main.py", "print('hi')\n"),
        ] {
            std::fs::write(host.path().join(file), text).expect("write");
        }
        let mut mirror = Mirror::open(inside.path(), host.path()).expect("mirror");
        let pulled = mirror.pull(&mut || {});
        assert_eq!(pulled.problems, Vec::<String>::new());
        assert!(inside.path().join(".git/config").exists(), "git reads work");
        Self {
            inside,
            host,
            mirror,
        }
    }

    fn inside(&self, rel: &str) -> PathBuf {
        self.inside.path().join(rel)
    }

    fn host(&self, rel: &str) -> PathBuf {
        self.host.path().join(rel)
    }
}

/// Every entry under `root` with its content (a directory's is empty, a symlink's its target).
fn tree(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut found = BTreeMap::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("read") {
            let path = entry.expect("entry").path();
            let meta = std::fs::symlink_metadata(&path).expect("meta");
            let content = if meta.is_dir() {
                pending.push(path.clone());
                Vec::new()
            } else if meta.file_type().is_symlink() {
                std::fs::read_link(&path)
                    .expect("link")
                    .into_os_string()
                    .into_encoded_bytes()
            } else {
                std::fs::read(&path).expect("read")
            };
            found.insert(
                path.strip_prefix(root).expect("under").to_path_buf(),
                content,
            );
        }
    }
    found
}

fn write(path: PathBuf, text: &str) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("dirs");
    std::fs::write(path, text).expect("write");
}

#[test]
fn a_block_planting_hooks_config_and_nested_repositories_reaches_nothing_of_git_on_the_host() {
    let mut repo = Repo::new();
    let before = tree(repo.host.path());
    let fsmonitor = "[core]\n\tfsmonitor = touch /tmp/owned\n\thooksPath = .hooks\n\
                     [alias]\n\tst = !touch /tmp/owned\n";
    write(
        repo.inside(".git/hooks/pre-commit"),
        "#!/bin/sh\ntouch /tmp/owned\n",
    );
    write(
        repo.inside(".git/hooks/post-checkout"),
        "#!/bin/sh\ntouch /tmp/owned\n",
    );
    write(repo.inside(".git/config"), fsmonitor);
    std::fs::remove_file(repo.inside(".git/description")).expect("remove");
    write(repo.inside("sub/.git/config"), fsmonitor);
    write(repo.inside("sub/.git/HEAD"), "ref: refs/heads/main\n");
    write(repo.inside("sub/code.py"), "pass\n");
    write(repo.inside("wt/.git"), "gitdir: ../evil\n");
    write(repo.inside("evil/HEAD"), "ref: refs/heads/main\n");
    write(repo.inside("evil/config"), fsmonitor);
    std::fs::create_dir_all(repo.inside("evil/objects")).expect("dir");
    std::fs::create_dir_all(repo.inside("evil/refs")).expect("dir");
    write(repo.inside("vendor/lib/.git/config"), fsmonitor);
    write(repo.inside("result.txt"), "the block's work\n");

    let pushed = repo.mirror.push(&mut || {});

    let after = tree(repo.host.path());
    let git_part = |tree: &BTreeMap<PathBuf, Vec<u8>>| -> Vec<(PathBuf, Vec<u8>)> {
        tree.iter()
            .filter(|(path, _)| path.iter().any(|part| part == ".git"))
            .map(|(path, content)| (path.clone(), content.clone()))
            .collect()
    };
    assert_eq!(
        git_part(&after),
        git_part(&before),
        "the host's git metadata is untouched"
    );
    for planted in [
        "sub/.git",
        "wt/.git",
        "evil/HEAD",
        "evil/config",
        "evil/objects",
    ] {
        assert!(!repo.host(planted).exists(), "{planted} reached the host");
    }
    assert_eq!(
        std::fs::read_to_string(repo.host("result.txt")).unwrap(),
        "the block's work\n"
    );
    assert!(
        repo.host("sub/code.py").exists(),
        "the rest of a new directory is copied"
    );
    let kept = &pushed.git_kept_back;
    for named in [
        ".git/hooks/pre-commit",
        ".git/hooks/post-checkout",
        ".git/config",
        ".git/description",
        "sub/.git",
        "wt/.git",
        "evil/HEAD",
        "evil/config",
        "vendor/lib/.git/config",
    ] {
        assert!(
            kept.iter().any(|path| path == named),
            "{named} not named in {kept:?}"
        );
    }
    assert!(!kept.iter().any(|path| path.contains("result")), "{kept:?}");

    // Nothing changes on the host on later passes either, and the names stay said.
    repo.mirror.pull(&mut || {});
    let again = repo.mirror.push(&mut || {});
    assert_eq!(git_part(&tree(repo.host.path())), git_part(&before));
    assert!(
        again.git_kept_back.iter().any(|p| p == ".git/config"),
        "{again:?}"
    );
}

#[test]
fn a_block_removing_or_replacing_dot_git_leaves_the_host_repository_whole() {
    let mut repo = Repo::new();
    let before = tree(repo.host.path());
    std::fs::remove_dir_all(repo.inside(".git")).expect("remove");
    std::os::unix::fs::symlink("/tmp", repo.inside(".git")).expect("symlink");
    std::fs::remove_dir_all(repo.inside("vendor")).expect("remove");
    let pushed = repo.mirror.push(&mut || {});
    let after = tree(repo.host.path());
    let git_part = |tree: &BTreeMap<PathBuf, Vec<u8>>| -> Vec<PathBuf> {
        tree.keys()
            .filter(|path| path.iter().any(|part| part == ".git"))
            .cloned()
            .collect()
    };
    assert_eq!(git_part(&after), git_part(&before));
    assert_eq!(
        std::fs::read_to_string(repo.host(".git/config")).unwrap(),
        "[core]\n\tbare = false\n"
    );
    assert!(
        !repo.host("vendor/lib/code.py").exists(),
        "the rest of vendor went"
    );
    assert!(
        repo.host("vendor/lib/.git/HEAD").exists(),
        "its git metadata stays"
    );
    let kept = &pushed.git_kept_back;
    assert!(kept.iter().any(|p| p == ".git"), "{kept:?}");
    assert!(kept.iter().any(|p| p == "vendor/lib/.git"), "{kept:?}");
}

#[test]
fn the_operators_own_git_changes_still_reach_the_block() {
    let mut repo = Repo::new();
    write(repo.host(".git/refs/heads/main"), "fedcba9876\n");
    repo.mirror.pull(&mut || {});
    assert_eq!(
        std::fs::read_to_string(repo.inside(".git/refs/heads/main")).unwrap(),
        "fedcba9876\n"
    );
    assert_eq!(repo.mirror.push(&mut || {}), PassReport::default());
}
