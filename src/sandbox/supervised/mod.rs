//! The half of a sandbox that does not depend on the engine running the container: the
//! line to the supervisor inside it ([`link`]), following one block's frames to its report
//! ([`follow`]), and the checks on the supervisor's greeting ([`greeting`]). A backend (Docker,
//! in `docker/`; Kubernetes or a microVM could be others) makes the container, hands this half
//! the supervisor's stdin and stdout, and replaces the container when the line is lost.

use std::time::Duration;

pub(crate) mod follow;
pub(crate) mod greeting;
pub(crate) mod link;

/// Extra time past the supervisor's own deadline (or a cancel) before airlock gives up on it
/// and replaces the container: more than its sweep (5 s at most) and drain (1 s) can take.
pub(crate) const HOST_MARGIN: Duration = Duration::from_secs(10);
/// How long the supervisor has to greet airlock after the container starts.
pub(crate) const SUPERVISOR_START: Duration = Duration::from_secs(15);
/// After this long without output, a line still waiting for its newline is shown anyway.
pub(crate) const QUIET: Duration = Duration::from_millis(100);
/// The capabilities the container keeps, all of them the supervisor's: to start blocks as
/// their uid (SETUID, SETGID), hand them their directory (CHOWN), sweep them (KILL), clear up
/// after them (DAC_OVERRIDE) and copy the workspace with its owners, modes and times (CHOWN,
/// DAC_OVERRIDE, FOWNER). A block keeps none: it runs as another uid.
pub(crate) const SUPERVISOR_CAPABILITIES: [&str; 6] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "KILL",
    "SETGID",
    "SETUID",
];
/// The same set as the bit mask of /proc/PID/status (`CapEff`): CHOWN is bit 0,
/// DAC_OVERRIDE 1, FOWNER 3, KILL 5, SETGID 6, SETUID 7.
pub(crate) const SUPERVISOR_CAPABILITY_MASK: u64 =
    1 << 0 | 1 << 1 | 1 << 3 | 1 << 5 | 1 << 6 | 1 << 7;
