//! Attacks on the operator's git repository through a named workspace: a block plants hooks,
//! `core.fsmonitor`, `core.hooksPath` and aliases in `.git`, a nested repository, a `gitdir:`
//! file and a bare-repository look-alike, each set to write a marker file on the host when
//! git runs there. In every workspace mode the host's `.git` stays byte for byte what it
//! was, git commands run on the host afterwards write no marker, and airlock names what the
//! block did.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use airlock::config::{ByteSize, SandboxConfig, WorkspaceMode};
use airlock::sandbox::Sandbox;
use common::session::*;

/// A host directory holding a committed git repository, owned by the user blocks run as,
/// and a place for the marker outside it.
struct Repo {
    dir: tempfile::TempDir,
}

impl Repo {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let repo = dir.path().join("repo");
        std::fs::create_dir(&repo).expect("dir");
        std::fs::write(repo.join("README.md"), "hello\n").expect("write");
        let made = Self { dir };
        made.git(&repo, &["init", "-q", "-b", "main"]);
        made.git(&repo, &["add", "README.md"]);
        made.git(&repo, &["commit", "-q", "-m", "first"]);
        if rustix::process::getuid().is_root() {
            // Blocks run as nobody when airlock runs as root: the operator's files are theirs.
            let owned = Command::new("chown")
                .args(["-R", "65534:65534"])
                .arg(made.dir.path())
                .status()
                .expect("chown");
            assert!(owned.success());
        }
        made
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("repo")
    }

    fn marker(&self) -> PathBuf {
        self.dir.path().join("owned")
    }

    /// Git on the host, as the operator runs it, with no config but the repository's.
    fn git(&self, dir: &Path, args: &[&str]) -> std::process::Output {
        Command::new("git")
            .arg("-C")
            .arg(dir)
            .args([
                "-c",
                "safe.directory=*",
                "-c",
                "user.name=op",
                "-c",
                "user.email=op@x",
            ])
            .args(args)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .output()
            .expect("git runs")
    }

    /// Every entry of the repository's `.git` with its content.
    fn metadata(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        let root = self.path().join(".git");
        let mut found = BTreeMap::new();
        let mut pending = vec![root.clone()];
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(&dir).expect("read") {
                let path = entry.expect("entry").path();
                let meta = std::fs::symlink_metadata(&path).expect("meta");
                let content = if meta.is_dir() {
                    pending.push(path.clone());
                    Vec::new()
                } else {
                    std::fs::read(&path).expect("read")
                };
                found.insert(path.strip_prefix(&root).unwrap().to_path_buf(), content);
            }
        }
        found
    }
}

/// The block: every plant writes the marker when git on the host runs it. Each step goes
/// on when one fails (a read-only `.git` refuses its writes).
fn attack(marker: &Path) -> String {
    let m = marker.display();
    format!(
        r#"cd /workspace
hook='#!/bin/sh
touch {m}
'
cfg='[core]
	fsmonitor = touch {m}
	hooksPath = .evilhooks
[alias]
	st = !touch {m}
'
printf '%s' "$hook" > .git/hooks/pre-commit; chmod +x .git/hooks/pre-commit
printf '%s' "$hook" > .git/hooks/post-checkout; chmod +x .git/hooks/post-checkout
printf '%s' "$cfg" >> .git/config
mkdir -p .evilhooks && printf '%s' "$hook" > .evilhooks/pre-commit && chmod +x .evilhooks/pre-commit
mkdir -p sub/.git/objects sub/.git/refs
printf 'ref: refs/heads/main\n' > sub/.git/HEAD
printf '[core]\n\trepositoryformatversion = 0\n\tbare = false\n\tfsmonitor = touch {m}\n' > sub/.git/config
mkdir -p wt && printf 'gitdir: ../evil\n' > wt/.git
mkdir -p evil/objects evil/refs
printf 'ref: refs/heads/main\n' > evil/HEAD
printf '[core]\n\trepositoryformatversion = 0\n\tbare = true\n[alias]\n\tst = !touch {m}\n' > evil/config
echo block done
"#
    )
}

/// Git commands the operator may run next, each one that a plant would turn into the
/// marker; run after the repository was compared.
fn run_git_on_the_host(repo: &Repo, nested_too: bool) {
    let root = repo.path();
    repo.git(&root, &["status"]);
    repo.git(&root, &["st"]);
    repo.git(&root, &["commit", "-q", "--allow-empty", "-m", "second"]);
    repo.git(&root, &["checkout", "-q", "-b", "other"]);
    if nested_too {
        repo.git(&root.join("sub"), &["status"]);
        repo.git(&root.join("wt"), &["st"]);
        repo.git(&root.join("evil"), &["st"]);
    }
}

async fn planted_in(mode: &str, config: SandboxConfig) {
    let repo = Repo::new();
    let before = repo.metadata();
    let mut session = session(SandboxConfig {
        workspace: Some(repo.path()),
        ..config
    })
    .await;
    let (ran, _) = run(&mut session, "sh", &attack(&repo.marker()), 60).await;
    assert!(ran.output.contains("block done"), "{mode}: {ran:?}");
    let notices = session.notices.lock().unwrap().join("\n");
    session.sandbox.shutdown().await;

    assert_eq!(repo.metadata(), before, "{mode}: the host's .git changed");
    let mirrored = mode != "0B";
    if mirrored {
        for planted in ["sub/.git", "wt/.git", "evil/HEAD", "evil/config"] {
            assert!(
                !repo.path().join(planted).exists(),
                "{mode}: {planted} reached the host"
            );
        }
        assert!(
            notices.contains("not copied to the host: changes under .git/"),
            "{notices}"
        );
        for named in [
            ".git/hooks/pre-commit",
            ".git/config",
            "sub/.git",
            "wt/.git",
            "evil/HEAD",
        ] {
            assert!(
                notices.contains(named),
                "{mode}: {named} not named in {notices}"
            );
        }
    } else {
        assert!(ran.output.contains("Read-only file system"), "{ran:?}");
        assert!(notices.contains("git metadata planted in"), "{notices}");
        for named in ["sub/.git/config", "wt/.git", "evil/HEAD", "evil/config"] {
            assert!(
                notices.contains(named),
                "{mode}: {named} not named in {notices}"
            );
        }
    }
    assert!(
        repo.path().join(".evilhooks/pre-commit").exists(),
        "{mode}: files outside git metadata are the block's to write"
    );
    run_git_on_the_host(&repo, mirrored);
    assert!(!repo.marker().exists(), "{mode}: a plant ran on the host");
}

#[tokio::test]
async fn a_block_cannot_plant_git_hooks_or_config_through_the_mirrored_workspace() {
    planted_in("mirror", SandboxConfig::default()).await;
}

#[tokio::test]
async fn a_block_cannot_plant_git_hooks_or_config_through_a_volume_workspace() {
    let config = SandboxConfig {
        workspace_mode: WorkspaceMode::Volume,
        ..SandboxConfig::default()
    };
    planted_in("volume", config).await;
}

#[tokio::test]
async fn a_workspace_mounted_itself_has_its_git_metadata_read_only_and_plants_named() {
    let config = SandboxConfig {
        workspace_limit: ByteSize::mib(0),
        ..SandboxConfig::default()
    };
    planted_in("0B", config).await;
}

/// A `.git` that is a symlink to a directory inside the workspace that is not a repository
/// yet: mounted itself, what the link leads to is what git would read, so it is made
/// read-only, and the block cannot turn it into a repository whose fsmonitor git runs.
#[tokio::test]
async fn a_dot_git_linked_into_the_workspace_is_read_only_when_mounted_itself() {
    let repo = Repo::new();
    let root = repo.path();
    std::fs::create_dir_all(root.join("nest")).expect("dir");
    std::fs::create_dir_all(root.join("plain")).expect("dir");
    std::os::unix::fs::symlink("../plain", root.join("nest/.git")).expect("link");
    if rustix::process::getuid().is_root() {
        for dir in ["nest", "plain"] {
            std::os::unix::fs::chown(root.join(dir), Some(65534), Some(65534)).expect("chown");
        }
    }
    let mut session = session(SandboxConfig {
        workspace: Some(root.clone()),
        workspace_limit: ByteSize::mib(0),
        ..SandboxConfig::default()
    })
    .await;
    let m = repo.marker().display().to_string();
    let code = format!(
        "cd /workspace/plain\n\
         mkdir objects refs; printf 'ref: refs/heads/main\\n' > HEAD\n\
         printf '[core]\\n\\trepositoryformatversion = 0\\n\\tfsmonitor = touch {m}\\n' > config\n\
         echo block done\n"
    );
    let (ran, _) = run(&mut session, "sh", &code, 60).await;
    session.sandbox.shutdown().await;
    assert!(ran.output.contains("block done"), "{ran:?}");
    assert!(ran.output.contains("Read-only file system"), "{ran:?}");
    assert!(
        !root.join("plain/config").exists(),
        "the link's directory was written"
    );
    repo.git(&root.join("nest"), &["status"]);
    assert!(!repo.marker().exists(), "a plant ran on the host");
}
