//! What the supervisor says of itself when it starts, checked before any block runs: that it
//! is root inside the container with no capability beyond its six, under no-new-privileges,
//! that it will run blocks as the session's code uid, and that /workspace has the room asked.

use std::io::Read;
use std::path::Path;

use super::SUPERVISOR_CAPABILITY_MASK;
use crate::config::Protection;
use crate::supervisor::frame::{Hello, WorkspaceRoom};

/// What the container was asked to be, which the greeting must confirm.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Expected {
    pub(crate) code_uid: u32,
    /// The room of the capped /workspace, if it is capped.
    pub(crate) workspace: Option<WorkspaceRoom>,
    /// The engine could not be asked for the inode count of /workspace's tmpfs: which, and
    /// why (Podman 4 refuses `nr_inodes`), to say so when the count is not the one asked.
    pub(crate) inodes_not_asked: Option<&'static str>,
}

/// `Err` says what is wrong, to follow "the sandbox's supervisor …".
pub(crate) fn check(
    hello: &Hello,
    expected: &Expected,
    waived: impl Fn(Protection) -> bool,
) -> Result<(), String> {
    let code_uid = expected.code_uid;
    if hello.version != env!("CARGO_PKG_VERSION") {
        return Err(format!(
            "is airlock {}, not this airlock ({})",
            hello.version,
            env!("CARGO_PKG_VERSION")
        ));
    }
    if hello.uid != 0 {
        return Err(format!(
            "runs as uid {}, not root: it could not keep blocks apart from itself",
            hello.uid
        ));
    }
    if hello.code_uid != code_uid || hello.code_uid == 0 {
        return Err(format!(
            "would run blocks as uid {}, not {code_uid}",
            hello.code_uid
        ));
    }
    let extra = hello.capabilities & !SUPERVISOR_CAPABILITY_MASK;
    if extra != 0 && !waived(Protection::CapDrop) {
        return Err(format!(
            "holds capabilities beyond the six it needs (CapEff {:016x}, extra {extra:016x})",
            hello.capabilities
        ));
    }
    // Never waived: without it a setuid program would give a block the capabilities above.
    if !hello.no_new_privileges {
        return Err("runs without no-new-privileges".into());
    }
    let workspace = expected.workspace;
    if hello.workspace != workspace && !waived(Protection::Workspace) {
        if let Some(why) = inodes_uncounted(hello.workspace, workspace)
            .or_else(|| inodes_not_asked(hello.workspace, workspace, expected.inodes_not_asked))
        {
            return Err(why);
        }
        let show = |room: Option<WorkspaceRoom>| {
            room.map_or("no limit".to_string(), |room| {
                format!("{} bytes and {} inodes", room.bytes, room.inodes)
            })
        };
        return Err(format!(
            "finds room for {} in /workspace, not the {} asked",
            show(hello.workspace),
            show(workspace)
        ));
    }
    Ok(())
}

/// The capped /workspace has the bytes asked but counts no inodes at all: gVisor's tmpfs
/// (runsc) takes `size` and ignores `nr_inodes`, and its statfs reports 0 files. The inode
/// cap is then not enforced by anything, and the user is told exactly that.
fn inodes_uncounted(seen: Option<WorkspaceRoom>, asked: Option<WorkspaceRoom>) -> Option<String> {
    let (seen, asked) = (seen?, asked?);
    (seen.bytes == asked.bytes && seen.inodes == 0 && asked.inodes != 0).then(|| {
        format!(
            "finds /workspace capped at {} bytes as asked, but its filesystem counts no inodes: \
             the limit of {} files (sandbox.workspace_inodes) is not enforced there. gVisor \
             (runsc) ignores tmpfs's nr_inodes; its files are held in the sandbox's own memory, \
             under the container's memory limit. sandbox.waive = [\"workspace\"] runs without \
             the file limit",
            asked.bytes, asked.inodes
        )
    })
}

/// On an engine whose tmpfs takes no `nr_inodes` (`why`): the capped /workspace has the
/// bytes asked and the kernel's default inode count, and the user is told why and what to do.
fn inodes_not_asked(
    seen: Option<WorkspaceRoom>,
    asked: Option<WorkspaceRoom>,
    why: Option<&str>,
) -> Option<String> {
    let (seen, asked, why) = (seen?, asked?, why?);
    (seen.bytes == asked.bytes && seen.inodes != asked.inodes).then(|| {
        format!(
            "finds /workspace capped at {} bytes as asked, but with room for {} files instead \
             of {} (sandbox.workspace_inodes): {why}, so airlock cannot ask for the file limit \
             there. sandbox.waive = [\"workspace\"] runs without it; the byte limit still holds",
            asked.bytes, seen.inodes, asked.inodes
        )
    })
}

/// For a supervisor that did not start: a dynamically linked binary needs libraries the
/// image may not have.
pub(crate) fn static_hint(binary: &Path) -> String {
    if is_dynamic(binary) {
        format!(
            ". The supervisor is airlock's own binary, {}, and it is dynamically linked: build \
             airlock as the repository's .cargo/config.toml does (statically) so it runs in any \
             image",
            binary.display()
        )
    } else {
        String::new()
    }
}

/// Whether an ELF file asks for a dynamic loader (has a PT_INTERP program header).
fn is_dynamic(binary: &Path) -> bool {
    const PT_INTERP: u32 = 3;
    let mut head = vec![0; 64 * 1024];
    let read = std::fs::File::open(binary).and_then(|mut file| file.read(&mut head));
    let Ok(read) = read else {
        return false;
    };
    head.truncate(read);
    let number = |at: usize, width: usize| -> Option<usize> {
        let bytes = head.get(at..at + width)?;
        Some(bytes.iter().rev().fold(0, |n, &b| n << 8 | usize::from(b)))
    };
    let (Some(offset), Some(size), Some(count)) = (number(32, 8), number(54, 2), number(56, 2))
    else {
        return false;
    };
    (0..count).any(|index| number(offset + index * size, 4) == Some(PT_INTERP as usize))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello() -> Hello {
        Hello {
            version: env!("CARGO_PKG_VERSION").into(),
            uid: 0,
            code_uid: 1000,
            capabilities: SUPERVISOR_CAPABILITY_MASK,
            no_new_privileges: true,
            workspace: None,
        }
    }

    fn expect(code_uid: u32, workspace: Option<WorkspaceRoom>) -> Expected {
        Expected {
            code_uid,
            workspace,
            inodes_not_asked: None,
        }
    }

    #[test]
    fn only_a_root_supervisor_with_its_six_capabilities_is_accepted() {
        let none = |_| false;
        assert_eq!(check(&hello(), &expect(1000, None), none), Ok(()));
        let fewer = Hello {
            capabilities: 1 << 5,
            ..hello()
        };
        assert_eq!(check(&fewer, &expect(1000, None), none), Ok(()));
        let sys_admin = Hello {
            capabilities: SUPERVISOR_CAPABILITY_MASK | 1 << 21,
            ..hello()
        };
        assert!(
            check(&sys_admin, &expect(1000, None), none)
                .unwrap_err()
                .contains("beyond")
        );
        let not_root = Hello {
            uid: 1000,
            ..hello()
        };
        assert!(check(&not_root, &expect(1000, None), none).is_err());
        assert!(check(&hello(), &expect(1001, None), none).is_err());
        let privileges = Hello {
            no_new_privileges: false,
            ..hello()
        };
        assert!(check(&privileges, &expect(1000, None), none).is_err());
        assert!(
            check(&privileges, &expect(1000, None), |p| p
                == Protection::NoNewPrivileges)
            .is_err()
        );
    }

    #[test]
    fn a_workspace_without_the_room_asked_is_refused_unless_waived() {
        let none = |_| false;
        let asked = WorkspaceRoom {
            bytes: 1 << 30,
            inodes: 100_000,
        };
        let roomier = Hello {
            workspace: Some(WorkspaceRoom {
                bytes: 2 << 30,
                ..asked
            }),
            ..hello()
        };
        let err = check(&roomier, &expect(1000, Some(asked)), none).unwrap_err();
        assert!(
            err.contains("2147483648 bytes") && err.contains("not the 1073741824"),
            "{err}"
        );
        assert!(
            check(&hello(), &expect(1000, Some(asked)), none)
                .unwrap_err()
                .contains("no limit")
        );
        let exact = Hello {
            workspace: Some(asked),
            ..hello()
        };
        assert_eq!(check(&exact, &expect(1000, Some(asked)), none), Ok(()));
        assert_eq!(
            check(&roomier, &expect(1000, Some(asked)), |p| p
                == Protection::Workspace),
            Ok(())
        );
        // gVisor's tmpfs: the bytes as asked, no inode count.
        let uncounted = Hello {
            workspace: Some(WorkspaceRoom { inodes: 0, ..asked }),
            ..hello()
        };
        let err = check(&uncounted, &expect(1000, Some(asked)), none).unwrap_err();
        assert!(
            err.contains("100000 files") && err.contains("not enforced") && err.contains("gVisor"),
            "{err}"
        );
        assert_eq!(
            check(&uncounted, &expect(1000, Some(asked)), |p| p
                == Protection::Workspace),
            Ok(())
        );
    }

    #[test]
    fn podmans_default_inode_count_is_refused_with_why_unless_waived() {
        let none = |_| false;
        let asked = WorkspaceRoom {
            bytes: 1 << 30,
            inodes: 100_000,
        };
        // Podman's tmpfs: the bytes as asked, the kernel's own inode count.
        let kernel_default = Hello {
            workspace: Some(WorkspaceRoom {
                inodes: 3_000_000,
                ..asked
            }),
            ..hello()
        };
        let podman = Expected {
            inodes_not_asked: Some("Podman 4 refuses tmpfs's nr_inodes"),
            ..expect(1000, Some(asked))
        };
        let err = check(&kernel_default, &podman, none).unwrap_err();
        assert!(
            err.contains("3000000 files instead of 100000") && err.contains("Podman"),
            "{err}"
        );
        // The same room from Docker, which does take nr_inodes, is no Podman limitation.
        let err = check(&kernel_default, &expect(1000, Some(asked)), none).unwrap_err();
        assert!(!err.contains("Podman"), "{err}");
        let waived = |p| p == Protection::Workspace;
        assert_eq!(check(&kernel_default, &podman, waived), Ok(()));
        let roomier = Hello {
            workspace: Some(WorkspaceRoom {
                bytes: 2 << 30,
                ..asked
            }),
            ..hello()
        };
        let err = check(&roomier, &podman, none).unwrap_err();
        assert!(err.contains("not the 1073741824"), "{err}");
    }

    #[test]
    fn a_dynamic_binary_is_told_from_a_static_one() {
        // /bin/sh on Debian is dynamic; this crate's test binary is built static (.cargo).
        assert!(is_dynamic(Path::new("/bin/sh")));
        let own = std::env::current_exe().expect("own path");
        assert!(!is_dynamic(&own), "{}", own.display());
        assert!(!is_dynamic(Path::new("/nonexistent")));
    }
}
