//! Docker, or Podman through its Docker-compatible API: they take the same requests, but not
//! every option (Podman 4 refuses tmpfs's `nr_inodes`), and their inspect output states what
//! was applied in its own terms.

use bollard::Docker;
use bollard::models::{HostConfig, ResourcesUlimits};

/// Which engine answers. Its inspect output spells capabilities and ulimits its own way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Engine {
    Docker,
    Podman,
}

/// The bounding set of the OCI runtime tools' default spec, which Podman 4's inspect states
/// `CapAdd` and `CapDrop` against (libpod's container_inspect.go: what the container has
/// beyond it is "added", what it lacks of it "dropped"). Later Podman releases compare with
/// containers.conf's `default_capabilities` instead, 11 of these 14 by default: reading their
/// output against these 14 finds the 3 others not dropped and refuses, never the reverse.
const OCI_DEFAULT_CAPABILITIES: [&str; 14] = [
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "NET_RAW",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

impl Engine {
    /// From the daemon's version answer: Podman's compatible API names its own component
    /// "Podman Engine" (Docker's is "Engine"). Asked of the daemon, never of the container,
    /// whose image and environment are not the engine's word.
    pub(crate) async fn identify(docker: &Docker) -> Self {
        let version = docker.version().await.ok();
        let components = version.and_then(|v| v.components).unwrap_or_default();
        if components.iter().any(|c| c.name == "Podman Engine") {
            Self::Podman
        } else {
            Self::Docker
        }
    }

    /// The capabilities the inspect output says the container is bounded to, sorted, upper
    /// case, without `CAP_`. Docker states exactly what was asked: only "drop ALL, add these"
    /// names a set. Podman states the difference from [`OCI_DEFAULT_CAPABILITIES`]; a drop
    /// of ALL (which it does not report, but would mean it) empties that set first.
    pub(super) fn capabilities(self, host: &HostConfig) -> Vec<String> {
        let name = |cap: &String| {
            let upper = cap.to_ascii_uppercase();
            upper.strip_prefix("CAP_").unwrap_or(&upper).to_string()
        };
        let dropped: Vec<String> = host.cap_drop.iter().flatten().map(name).collect();
        let mut caps: Vec<String> = host.cap_add.iter().flatten().map(name).collect();
        let drops_all = dropped.iter().any(|cap| cap == "ALL");
        match self {
            // Anything but ALL dropped leaves Docker's own default set, which its inspect
            // output does not name: no set can be read from it.
            Self::Docker if !drops_all => return vec!["(Docker's default set)".into()],
            Self::Docker => {}
            Self::Podman if drops_all => {}
            Self::Podman => caps.extend(
                OCI_DEFAULT_CAPABILITIES
                    .iter()
                    .filter(|cap| !dropped.iter().any(|d| d == *cap))
                    .map(|cap| cap.to_string()),
            ),
        }
        caps.sort();
        caps.dedup();
        caps
    }

    /// Whether `seen` is the `asked` ulimit: Podman names it after the kernel's resource
    /// (`RLIMIT_NOFILE`), Docker as it was asked (`nofile`).
    pub(super) fn same_ulimit(self, seen: &ResourcesUlimits, asked: &ResourcesUlimits) -> bool {
        match self {
            Self::Docker => seen == asked,
            Self::Podman => {
                let name = |limit: &ResourcesUlimits| {
                    let name = limit.name.as_deref().unwrap_or("").to_ascii_lowercase();
                    name.strip_prefix("rlimit_").unwrap_or(&name).to_string()
                };
                name(seen) == name(asked) && seen.soft == asked.soft && seen.hard == asked.hard
            }
        }
    }

    /// Whether the inspect output's IPC mode is a namespace of the container's own. Docker
    /// states "private" as asked. Podman 4 states "shareable" for every container that owns
    /// its namespace (libpod reports what others could do, not what was asked), and joining it
    /// takes the same root on the engine as any `podman exec` would.
    pub(super) fn owns_ipc_namespace(self, mode: Option<&str>) -> bool {
        match self {
            Self::Docker => mode == Some("private"),
            Self::Podman => matches!(mode, Some("private" | "shareable")),
        }
    }
}
