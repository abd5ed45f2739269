//! What the supervisor does to itself so that every block it forks starts confined: no new
//! privileges and the block's seccomp filter, installed once on the thread that serves and
//! forks (both pass on through a fork, and neither takes anything the supervisor uses); and
//! the OOM killer's first choice, set around each fork. So nothing stands between the fork
//! and the interpreter: no second program to load (a static airlock cost a millisecond or
//! more per block), no filter built again.

use std::io;
use std::process::{Child, Command};

/// No core dumps for this process and all it starts: no process started from here on can
/// raise the limit again, so no crash writes a core file or passes one to the kernel's
/// core_pattern program. No new privileges for this thread and what it forks. Then the
/// block's seccomp filter, on this thread alone. The container sets the first two as well;
/// an engine or a supervisor outside a container may not. None of it needs privilege.
pub(crate) fn confine_this_thread() -> Result<(), String> {
    let none = rustix::process::Rlimit {
        current: Some(0),
        maximum: Some(0),
    };
    rustix::process::setrlimit(rustix::process::Resource::Core, none)
        .map_err(|err| format!("cannot turn core dumps off: {err}"))?;
    rustix::thread::set_no_new_privs(true)
        .map_err(|err| format!("cannot set no-new-privileges: {err}"))?;
    super::seccomp::install()
}

/// Forks with the process marked first for the OOM killer, so the block and everything it
/// forks carry the mark from their first instruction, then takes the mark off again. Raising
/// needs no privilege and going back to the earlier value neither (the kernel allows down to
/// the lowest value set without CAP_SYS_RESOURCE). Meanwhile nothing of any block runs (the
/// last one was swept), so there is nothing the OOM killer could prefer either way. A kernel
/// that refuses the file (gVisor may) leaves the order as it was.
pub(crate) fn spawn_first_to_go(command: &mut Command) -> io::Result<Child> {
    const OOM_SCORE_ADJ: &str = "/proc/self/oom_score_adj";
    let earlier = std::fs::read_to_string(OOM_SCORE_ADJ);
    let _ = std::fs::write(OOM_SCORE_ADJ, "1000");
    let child = command.spawn();
    if let Ok(earlier) = earlier {
        let _ = std::fs::write(OOM_SCORE_ADJ, earlier.trim());
    }
    child
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Spawns `command` from a thread of its own that confined itself, as the supervisor's
    /// serving thread does; the test's thread stays as it was.
    fn confined_spawn(mut command: Command) -> io::Result<Child> {
        std::thread::spawn(move || {
            confine_this_thread().map_err(io::Error::other)?;
            spawn_first_to_go(&mut command)
        })
        .join()
        .expect("the thread")
    }

    /// One line of a `/proc/…/status` file.
    fn status_line(status: &str, name: &str) -> String {
        status
            .lines()
            .find_map(|line| line.strip_prefix(&format!("{name}:")))
            .unwrap_or_default()
            .trim()
            .to_string()
    }

    #[test]
    fn a_block_starts_confined_in_a_group_of_its_own_and_first_for_the_oom_killer() {
        let before = std::fs::read_to_string("/proc/self/oom_score_adj").unwrap();
        let mut command = Command::new("sh");
        command.args([
            "-c",
            "cat /proc/self/status; echo \"Pgid: $(cut -d' ' -f5 /proc/self/stat)\"; \
             echo \"Adj: $(cat /proc/self/oom_score_adj)\"",
        ]);
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        command.stdout(std::process::Stdio::piped());
        let child = confined_spawn(command).expect("spawn");
        let pid = child.id();
        let output = child.wait_with_output().expect("wait");
        let status = String::from_utf8_lossy(&output.stdout);
        assert_eq!(status_line(&status, "NoNewPrivs"), "1", "{status}");
        let own = std::fs::read_to_string("/proc/thread-self/status").unwrap();
        let filters = |text: &str| -> u32 { status_line(text, "Seccomp_filters").parse().unwrap() };
        assert_eq!(filters(&status), filters(&own) + 3, "{status}");
        assert_eq!(status_line(&status, "Pgid"), pid.to_string(), "{status}");
        assert_eq!(status_line(&status, "Adj"), "1000", "{status}");
        // The filters are the confined thread's alone (the test's thread has fewer), and the
        // process's score is as it was.
        let after = std::fs::read_to_string("/proc/self/oom_score_adj").unwrap();
        assert_eq!(after, before);
    }

    #[test]
    fn a_block_forked_from_the_launcher_cannot_make_ipc_objects() {
        let mut command = Command::new("python3");
        command.args([
            "-c",
            "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\nr = libc.shmget(0, 4096, 0o1600)\nprint(r, ctypes.get_errno())",
        ]);
        command.stdout(std::process::Stdio::piped());
        let output = confined_spawn(command)
            .expect("spawn")
            .wait_with_output()
            .expect("wait");
        let said = String::from_utf8_lossy(&output.stdout);
        assert_eq!(said.trim(), format!("-1 {}", libc::EPERM), "{said}");
    }
}
