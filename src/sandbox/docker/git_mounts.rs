//! With `workspace_limit = "0B"` the host directory itself is /workspace, so blocks write it
//! directly: each git metadata entry found in it (see `crate::files::git`) is mounted over
//! itself read-only (a `.git` symlink: what it leads to), the read-back confirms every one,
//! and after a block what it planted anew is named.

use std::path::{Path, PathBuf};

use bollard::models::{ContainerInspectResponse, Mount, MountType};

use crate::files::git;
use crate::protocol::{FileChange, FileChangeKind};
use crate::sandbox::SandboxError;

/// Entries of the workspace looked at, at most, to find its git metadata.
const LOOK_AT: usize = 200_000;
/// Read-only mounts made at most; a workspace with more is refused.
const MAX_MOUNTS: usize = 256;

/// A read-only bind mount over each `.git` (directory or file) and each directory that
/// looks like a repository in `workspace`. A tree too large to search, or holding more of
/// them than airlock mounts, is refused: set a limit, so the mirror guards it instead.
pub(super) fn read_only_mounts(
    workspace: &Path,
    mounted_at: &str,
) -> Result<Vec<Mount>, SandboxError> {
    let (found, whole) = git::find_metadata(workspace, LOOK_AT);
    let refuse = |why: String| {
        Err(SandboxError::Unavailable(format!(
            "sandbox.workspace_limit = \"0B\" mounts {} itself, so airlock makes each .git in it \
             read-only to blocks, but {why}; set sandbox.workspace_limit (the default, 1GiB, \
             keeps git metadata from the host)",
            workspace.display()
        )))
    };
    if !whole {
        return refuse(format!("it has over {LOOK_AT} entries to search"));
    }
    // Its own entries would be the metadata, and the mount point itself cannot be mounted
    // over read-only and still be the block's to write.
    if git::dir_looks_like_repository(workspace) {
        return refuse("it is itself a repository's git directory (HEAD, objects/, refs/)".into());
    }
    if found.len() > MAX_MOUNTS {
        return refuse(format!("it holds over {MAX_MOUNTS} git directories"));
    }
    let mut mounts: Vec<Mount> = Vec::new();
    for relative in found {
        let Some(relative) = metadata_inside(workspace, relative) else {
            continue;
        };
        let source = workspace.join(&relative);
        let (Some(source), Some(target)) = (source.to_str(), target(mounted_at, &relative)) else {
            return refuse(format!(
                "the path {} is not UTF-8",
                crate::files::display_path(&relative)
            ));
        };
        if mounts
            .iter()
            .any(|m| m.target.as_deref() == Some(target.as_str()))
        {
            continue;
        }
        mounts.push(Mount {
            typ: Some(MountType::BIND),
            source: Some(source.to_string()),
            target: Some(target),
            read_only: Some(true),
            ..Default::default()
        });
    }
    Ok(mounts)
}

/// Where the metadata at `relative` really is, relative to the workspace. A `.git` that is a
/// symlink leads to what git reads: when that is inside the workspace, it is what blocks
/// could write, so it is what gets mounted (a mount over the link would follow it anyway).
/// One that leads out of the workspace is out of the blocks' reach: `None`.
fn metadata_inside(workspace: &Path, relative: PathBuf) -> Option<PathBuf> {
    let path = workspace.join(&relative);
    let is_link = std::fs::symlink_metadata(&path).is_ok_and(|meta| meta.is_symlink());
    if !is_link {
        return Some(relative);
    }
    let real = std::fs::canonicalize(&path).ok()?;
    let root = std::fs::canonicalize(workspace).ok()?;
    let inside = real.strip_prefix(&root).ok()?;
    (!inside.as_os_str().is_empty()).then(|| inside.to_path_buf())
}

/// Where `relative` is in the container, below the workspace's mount point.
fn target(mounted_at: &str, relative: &Path) -> Option<String> {
    Some(format!("{mounted_at}/{}", relative.to_str()?))
}

/// Every read-only mount the plan asked for is there, read-only; never waived.
pub(super) fn verify(
    inspect: &ContainerInspectResponse,
    asked: &[Mount],
) -> Result<(), SandboxError> {
    let applied = inspect.mounts.as_deref().unwrap_or_default();
    for mount in asked {
        let target = mount.target.as_deref().unwrap_or_default();
        let read_only = applied
            .iter()
            .any(|m| m.destination.as_deref() == Some(target) && m.rw == Some(false));
        if !read_only {
            return Err(SandboxError::Unavailable(format!(
                "the created container does not have {target} mounted read-only (git metadata \
                 is read-only to blocks); airlock refuses to run code in it"
            )));
        }
    }
    Ok(())
}

/// A notice naming the git metadata a block wrote into a workspace mounted itself, where
/// the host's next git command reads it; `None` when it wrote none.
pub(crate) fn planted_notice(workspace: &Path, files: &[FileChange]) -> Option<String> {
    let planted: Vec<String> = files
        .iter()
        .filter(|file| file.change != FileChangeKind::Removed)
        .filter(|file| is_planted(workspace, &on_host(&file.path)))
        .map(|file| crate::files::recorded::drawn(&file.path))
        .collect();
    let planted: Vec<&str> = planted.iter().map(String::as_str).collect();
    (!planted.is_empty()).then(|| {
        format!(
            "git metadata planted in {} by the block (the workspace is mounted itself, \
             workspace_limit = \"0B\"; your next git command there would read it): {}; \
             review or remove it before running git",
            crate::files::display_name(workspace.as_os_str()),
            crate::files::name_list(&planted, 0)
        )
    })
}

/// The relative path on the host a recorded name stands for (taken as it is when it is
/// not a recorded name).
fn on_host(recorded: &str) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    crate::files::recorded::recorded_bytes(recorded).map_or_else(
        || recorded.into(),
        |bytes| std::ffi::OsString::from_vec(bytes).into(),
    )
}

/// Whether `path` (relative, as on the host) is in a `.git` or in a directory that looks
/// like a repository on the host.
fn is_planted(workspace: &Path, path: &Path) -> bool {
    if git::under_git_name(path) {
        return true;
    }
    let mut dir = PathBuf::from(workspace);
    let parents: Vec<_> = path.parent().into_iter().flat_map(Path::iter).collect();
    parents.into_iter().any(|part| {
        dir.push(part);
        git::dir_looks_like_repository(&dir)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::MountPoint;

    #[test]
    fn a_workspace_that_is_itself_a_git_directory_is_refused_when_mounted_itself() {
        let root = tempfile::tempdir().expect("tempdir");
        for dir in ["objects", "refs"] {
            std::fs::create_dir_all(root.path().join(dir)).expect("dir");
        }
        std::fs::write(root.path().join("HEAD"), "ref: refs/heads/main\n").expect("file");
        let refused = read_only_mounts(root.path(), "/workspace").expect_err("refused");
        let why = refused.to_string();
        assert!(why.contains("itself a repository's git directory"), "{why}");
        assert!(why.contains("sandbox.workspace_limit"), "{why}");
    }

    #[test]
    fn each_dot_git_and_bare_look_alike_gets_a_read_only_mount_and_a_symlink_none() {
        let root = tempfile::tempdir().expect("tempdir");
        let at = |p: &str| root.path().join(p);
        std::fs::create_dir_all(at(".git/hooks")).expect("dir");
        std::fs::create_dir_all(at("wt")).expect("dir");
        std::fs::write(at("wt/.git"), "gitdir: ../.git\n").expect("file");
        for dir in ["bare/objects", "bare/refs", "linked"] {
            std::fs::create_dir_all(at(dir)).expect("dir");
        }
        std::fs::write(at("bare/HEAD"), "ref: refs/heads/main\n").expect("file");
        std::os::unix::fs::symlink("/tmp", at("linked/.git")).expect("symlink");
        // A link to a directory inside the workspace: blocks could write git's real one.
        std::fs::create_dir_all(at("kept/hooks")).expect("dir");
        std::fs::create_dir_all(at("inner")).expect("dir");
        std::os::unix::fs::symlink("../kept", at("inner/.git")).expect("symlink");
        let mounts = read_only_mounts(root.path(), "/workspace").expect("mounts");
        let targets: Vec<_> = mounts.iter().filter_map(|m| m.target.as_deref()).collect();
        assert_eq!(
            targets,
            [
                "/workspace/.git",
                "/workspace/bare",
                "/workspace/kept",
                "/workspace/wt/.git"
            ]
        );
        assert!(mounts.iter().all(|m| m.read_only == Some(true)));
        assert_eq!(
            mounts[0].source.as_deref(),
            at(".git").to_str(),
            "the host's own entry is mounted over itself"
        );
    }

    #[test]
    fn a_container_without_the_read_only_mount_is_refused() {
        let asked = [Mount {
            target: Some("/workspace/.git".into()),
            read_only: Some(true),
            ..Default::default()
        }];
        let with = |rw: bool| ContainerInspectResponse {
            mounts: Some(vec![MountPoint {
                destination: Some("/workspace/.git".into()),
                rw: Some(rw),
                ..Default::default()
            }]),
            ..Default::default()
        };
        assert!(verify(&with(false), &asked).is_ok());
        let writable = verify(&with(true), &asked).expect_err("writable");
        assert!(
            writable.to_string().contains("/workspace/.git"),
            "{writable}"
        );
        assert!(verify(&ContainerInspectResponse::default(), &asked).is_err());
    }

    #[test]
    fn plants_are_named_and_other_files_are_not() {
        let root = tempfile::tempdir().expect("tempdir");
        for dir in ["evil/objects", "evil/refs"] {
            std::fs::create_dir_all(root.path().join(dir)).expect("dir");
        }
        std::fs::write(root.path().join("evil/HEAD"), "x").expect("file");
        // A repository look-alike whose name the record writes with an escape.
        for dir in ["b\\d/objects", "b\\d/refs"] {
            std::fs::create_dir_all(root.path().join(dir)).expect("dir");
        }
        std::fs::write(root.path().join("b\\d/HEAD"), "x").expect("file");
        let change = |path: &str, change| FileChange {
            path: path.into(),
            change,
            size: 1,
            sha256: None,
            link: None,
        };
        let files = [
            change("sub/.git/config", FileChangeKind::Created),
            change("evil/HEAD", FileChangeKind::Created),
            change("result.txt", FileChangeKind::Created),
            change("old/.git/index", FileChangeKind::Removed),
            change("b\\\\d/HEAD", FileChangeKind::Created),
            change(
                ".git/hooks/x\\u000Aairlock: forged",
                FileChangeKind::Created,
            ),
        ];
        let notice = planted_notice(root.path(), &files).expect("notice");
        assert!(
            notice.contains(
                "sub/.git/config, evil/HEAD, b\\d/HEAD, .git/hooks/x\u{240a}airlock: forged;"
            ),
            "{notice}"
        );
        assert!(!notice.contains('\n'), "{notice:?}");
        assert!(
            !notice.contains("result.txt") && !notice.contains("old/"),
            "{notice}"
        );
        assert_eq!(planted_notice(root.path(), &files[2..4]), None);
    }
}
