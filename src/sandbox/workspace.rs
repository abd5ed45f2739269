//! The directory mounted at /workspace.

use std::path::{Path, PathBuf};

use crate::sandbox::SandboxError;

/// The user-named workspace, or a new per-session directory under `data_dir`, made
/// writable for the container user (a root-owned 0755 directory would not be).
pub fn prepare(
    named: Option<&Path>,
    data_dir: &Path,
    session: &str,
    uid: u32,
    gid: u32,
) -> Result<PathBuf, SandboxError> {
    if let Some(path) = named {
        if !path.is_dir() {
            return Err(SandboxError::Unavailable(format!(
                "sandbox.workspace {} is not a directory; create it or unset sandbox.workspace",
                path.display()
            )));
        }
        return path.canonicalize().map_err(|err| {
            SandboxError::Unavailable(format!("sandbox.workspace {}: {err}", path.display()))
        });
    }
    let path = data_dir.join("workspaces").join(session);
    let fail = |what: &str, err: std::io::Error| {
        SandboxError::Unavailable(format!("cannot {what} workspace {}: {err}", path.display()))
    };
    std::fs::create_dir_all(&path).map_err(|err| fail("create", err))?;
    let owner = std::fs::metadata(&path).map_err(|err| fail("inspect", err))?;
    if std::os::unix::fs::MetadataExt::uid(&owner) != uid {
        // Only root can give the directory away; a non-root airlock runs code as itself.
        std::os::unix::fs::chown(&path, Some(uid), Some(gid))
            .map_err(|err| fail("hand over", err))?;
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_workspace_is_created_for_the_code_user() {
        let data = tempfile::tempdir().expect("tempdir");
        let uid = rustix::process::getuid().as_raw();
        let gid = rustix::process::getgid().as_raw();
        let path = prepare(None, data.path(), "s-1", uid, gid).expect("created");
        assert!(path.is_dir() && path.ends_with("workspaces/s-1"));
        let named = prepare(Some(data.path()), data.path(), "s-2", uid, gid).expect("named");
        assert_eq!(named, data.path().canonicalize().expect("canonical"));
        let err = prepare(Some(&data.path().join("nope")), data.path(), "s", uid, gid).unwrap_err();
        assert!(err.to_string().contains("not a directory"));
    }
}
