//! `airlock doctor` when the probe ran under gVisor (`sandbox.runtime = "runsc"`). gVisor's
//! kernel (the Sentry) is not Linux: its /proc/self/status has no NoNewPrivs line and no
//! filter count, and its /sys/fs/cgroup is its own, empty or emulated, never the host's cgroup
//! that runsc puts the whole sandbox in. What can be asked another way is asked another way;
//! what cannot be seen from inside is said so, with what enforces it instead, and counted
//! apart from the checks that passed.

use super::doctor_report::{Probe, Report};
use crate::config::SandboxConfig;

/// Appended to the doctor's probe: what tells gVisor from Linux, and what the checks below
/// need there. `setpriv -d` asks the kernel with prctl(PR_GET_NO_NEW_PRIVS); ptrace(TRACEME)
/// is allowed by Docker's profile and by gVisor and refused only by the block's own filter.
pub(crate) const PROBE: &str = r#"
echo "dmesg=$(dmesg 2>/dev/null | grep -m1 -o 'Starting gVisor' || echo none)"
echo "kernel=$(head -n1 /proc/version 2>/dev/null)"
echo "no_new_privs=$(setpriv -d 2>/dev/null | sed -n 's/^no_new_privs: *//p')"
if command -v python3 >/dev/null; then
  echo "ptrace=$(python3 -c 'import ctypes; c=ctypes.CDLL(None, use_errno=True); r=c.ptrace(0, 0, None, None); e=ctypes.get_errno(); print("refused" if (r, e) == (-1, 1) else "allowed %d %d" % (r, e))' 2>&1)"
fi
"#;

/// The version line gVisor's kernel gives in /proc/version, whatever the host runs.
const GVISOR_VERSION: &str = "Linux version 4.4.0 #1 SMP Sun Jan 10 15:06:54 PST 2016";

/// Whether the probe ran in gVisor's kernel: its boot log says so, or its fixed version line.
pub(crate) fn ran_under_gvisor(probe: &Probe) -> bool {
    probe.get("dmesg").contains("gVisor") || probe.get("kernel") == GVISOR_VERSION
}

/// What tells that it was gVisor, for a person.
pub(crate) fn evidence(probe: &Probe) -> String {
    format!(
        "the probe's kernel is gVisor's (dmesg: {}; /proc/version: {})",
        probe.get("dmesg"),
        probe.get("kernel")
    )
}

/// Non-root, capabilities, no-new-privileges and seccomp, as gVisor lets them be seen.
pub(crate) fn check_privileges(report: &mut Report, probe: &Probe) {
    let get = |key| probe.get(key);
    super::doctor_report::check_identity(report, probe);
    report.line(
        get("no_new_privs") == "1",
        "no-new-privileges",
        format!(
            "no_new_privs {} (asked with prctl through setpriv: gVisor's /proc/self/status has \
             no NoNewPrivs line)",
            get("no_new_privs")
        ),
    );
    report.line(
        get("Seccomp") == "2" && get("ptrace") == "refused",
        "seccomp",
        format!(
            "mode {}; gVisor's /proc/self/status counts no filters, so the block's own filter is \
             seen at work instead: ptrace(PTRACE_TRACEME) {} (refused only by it). Docker's \
             profile is not applied inside gVisor unless runsc runs with --oci-seccomp (whose \
             clone3 EPERM in runsc 20221219 stops every thread); every system call is served \
             by gVisor's Sentry, itself confined on the host by runsc's own seccomp filter",
            get("Seccomp"),
            get("ptrace")
        ),
    );
}

/// The cgroup limits, which gVisor's kernel does not show: runsc applies them on the host to
/// the sandbox as a whole (the Sentry, its helper processes and the code together).
pub(crate) fn check_resources(report: &mut Report, sandbox: &SandboxConfig, probe: &Probe) {
    report.line(
        probe.get("nofile") == sandbox.nofile.to_string(),
        "open files",
        format!("{} enforced as {}", sandbox.nofile, probe.get("nofile")),
    );
    let host = "not visible inside gVisor (its /sys/fs/cgroup is not the host's); runsc puts \
                the whole sandbox, gVisor's own kernel included, in the container's host cgroup";
    let cgroup = crate::sandbox::docker::spec::memory_limit(sandbox) as u64;
    report.unverifiable(
        "memory limit",
        format!(
            "{host}, limited to {cgroup} bytes ({} for programs + the workspace); code past it \
             may end the whole sandbox rather than one process",
            sandbox.memory
        ),
    );
    report.unverifiable(
        "swap limit",
        format!("{host}, memory+swap {}", cgroup + sandbox.swap.bytes()),
    );
    report.unverifiable(
        "pids limit",
        format!(
            "{host}: the limit of {} counts the sandbox's host threads (gVisor's Sentry is a Go \
             program and its ptrace platform adds a host process per address space), not the \
             code's processes; a block that reaches it ends the whole sandbox (runsc exits 2: \
             Go cannot make a thread) instead of its fork failing",
            sandbox.pids_limit
        ),
    );
    report.unverifiable("cpu limit", format!("{host}, at {} CPUs", sandbox.cpus));
}
