//! `airlock doctor`'s checks of what a block could leave behind outside /workspace, or hand
//! to the host: IPC objects (which live in the kernel, not in any file the supervisor empties)
//! and core dumps (which the host's core_pattern may hand to a host program).

use super::doctor_report::{Probe, Report};

/// Appended to the doctor's probe. IPC objects are tried with python3 (ctypes) or util-linux's
/// ipcmk, whichever the image has; the core limit is read and then raised in a subshell.
pub(crate) const PROBE: &str = r#"
count_ipc() { if [ -r "$1" ]; then tail -n +2 "$1" | wc -l | tr -d ' '; else echo unknown; fi; }
echo "ipc_objects=$(count_ipc /proc/sysvipc/shm) $(count_ipc /proc/sysvipc/msg) $(count_ipc /proc/sysvipc/sem)"
echo "ipc_ns=$(readlink /proc/self/ns/ipc 2>/dev/null || echo unknown)"
if command -v python3 >/dev/null 2>&1; then
  echo "ipc_make=$(python3 -c 'import ctypes
l = ctypes.CDLL(None, use_errno=True)
tries = (("shm", l.shmget, (0, 4096, 0o1600)), ("msg", l.msgget, (0, 0o1600)), ("sem", l.semget, (0, 1, 0o1600)))
print(" ".join(name for name, call, args in tries if call(*args) >= 0) or "refused")' 2>/dev/null || echo unknown)"
elif command -v ipcmk >/dev/null 2>&1; then
  if ipcmk -M 4096 >/dev/null 2>&1; then echo ipc_make=shm; else echo ipc_make=refused; fi
else
  echo ipc_make=untried
fi
echo "core_limit=$(ulimit -S -c) $(ulimit -H -c)"
if (ulimit -S -c 1) 2>/dev/null; then echo core_raise=raised; else echo core_raise=refused; fi
echo "core_pattern=$(head -c 200 /proc/sys/kernel/core_pattern 2>/dev/null || echo unknown)"
"#;

/// IPC and core dumps, from the probe. `local_engine`: the engine runs on this machine, so
/// the probe's IPC namespace can be told from this process's.
pub(crate) fn check(report: &mut Report, probe: &Probe, local_engine: bool) {
    check_ipc(report, probe, local_engine);
    check_core(report, probe);
}

fn check_ipc(report: &mut Report, probe: &Probe, local_engine: bool) {
    let namespace = probe.get("ipc_ns");
    let ours = std::fs::read_link("/proc/self/ns/ipc")
        .map(|link| link.to_string_lossy().into_owned())
        .ok();
    let shared = local_engine && ours.as_deref() == Some(namespace);
    report.line(
        namespace.starts_with("ipc:") && !shared,
        "ipc namespace",
        match (shared, local_engine) {
            (true, _) => format!("{namespace}: the host's own, shared with the sandbox"),
            (false, true) => format!("{namespace}, not the host's"),
            (false, false) => format!("{namespace} (the engine is not on this machine)"),
        },
    );
    let made = probe.get("ipc_make");
    let objects = probe.get("ipc_objects");
    // Unknown where the kernel shows no /proc/sysvipc (gVisor): the attempt above tells.
    let none_left = objects
        .split_whitespace()
        .all(|count| count == "0" || count == "unknown");
    let detail = format!(
        "System V shared memory, message queues and semaphores {}; objects in the namespace \
         (shm msg sem): {objects}; POSIX message queues are refused too and /dev/mqueue is \
         emptied after every block",
        match made {
            "refused" => "refused to a block".to_string(),
            "untried" => "not tried (the image has neither python3 nor ipcmk)".to_string(),
            other => format!("made by a block: {other}"),
        }
    );
    report.line(
        matches!(made, "refused" | "untried") && none_left,
        "ipc",
        detail,
    );
}

fn check_core(report: &mut Report, probe: &Probe) {
    let limit = probe.get("core_limit");
    let raise = probe.get("core_raise");
    report.line(
        limit == "0 0" && raise == "refused",
        "core dumps",
        core_detail(probe),
    );
}

fn core_detail(probe: &Probe) -> String {
    let limit = probe.get("core_limit");
    let raise = probe.get("core_raise");
    // The host's, as the kernel does not keep it per container. A program it pipes to is
    // started for every crash whatever the limit: worth knowing, but not airlock's to change.
    let pattern = probe.get("core_pattern");
    let host = match pattern.strip_prefix('|') {
        Some(program) => format!(
            "; the host's core_pattern pipes to {program}, which the kernel starts for every \
             crash in a block (told the limit 0 only where the pattern passes %c)"
        ),
        None => String::new(),
    };
    format!("core limit (soft hard) {limit}; raising it: {raise}{host}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_raisable_core_limit_or_a_made_ipc_object_fails() {
        let good = "ipc_ns=ipc:[4026532000]\nipc_make=refused\nipc_objects=0 0 0\n\
                    core_limit=0 0\ncore_raise=refused\n";
        let failures = |text: &str| {
            let mut report = Report::default();
            check(&mut report, &Probe::parse(text), false);
            report.failures()
        };
        assert_eq!(failures(good), 0);
        assert_eq!(
            failures(&good.replace("core_limit=0 0", "core_limit=0 unlimited")),
            1
        );
        assert_eq!(
            failures(&good.replace("core_raise=refused", "core_raise=raised")),
            1
        );
        assert_eq!(
            failures(&good.replace("ipc_make=refused", "ipc_make=shm msg")),
            1
        );
        assert_eq!(
            failures(&good.replace("ipc_objects=0 0 0", "ipc_objects=1 0 0")),
            1
        );
        assert_eq!(failures(&good.replace("ipc:[4026532000]", "unknown")), 1);
    }

    #[test]
    fn a_core_pattern_that_pipes_to_a_host_program_is_named() {
        let probe = |pattern: &str| {
            Probe::parse(&format!(
                "core_limit=0 0\ncore_raise=refused\ncore_pattern={pattern}\n"
            ))
        };
        let piped = core_detail(&probe(
            "|/usr/lib/systemd/systemd-coredump %P %u %g %s %t %c %h",
        ));
        assert!(
            piped.contains("pipes to /usr/lib/systemd/systemd-coredump %P")
                && piped.contains("every crash"),
            "{piped}"
        );
        assert_eq!(
            core_detail(&probe("core")),
            "core limit (soft hard) 0 0; raising it: refused"
        );
    }
}
