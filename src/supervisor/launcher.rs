//! Where every block's process is forked: one thread of the supervisor that confined itself
//! once, when the supervisor started (no new privileges, then the block's seccomp filter).
//! Both are properties of a thread that a fork passes on, so the block starts confined with
//! nothing between the fork and the interpreter: no second program to load (a static airlock
//! cost a millisecond or more per block), no filter to build again. The supervisor's other
//! threads stay unfiltered, and nothing but blocks is ever started from this one.

use std::io;
use std::process::{Child, Command};
use std::sync::mpsc;

/// What a block asks of the launcher, and where the answer goes.
type Job = (Command, mpsc::Sender<io::Result<Child>>);

/// The launcher thread, for as long as the supervisor lives.
#[derive(Debug)]
pub(crate) struct Launcher {
    jobs: mpsc::Sender<Job>,
}

impl Launcher {
    /// Starts the thread and confines it; no block can start when that fails.
    pub(crate) fn start() -> Result<Self, String> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let (ready, confined) = mpsc::channel();
        std::thread::Builder::new()
            .name("launcher".into())
            .spawn(move || {
                let outcome = confine();
                let usable = outcome.is_ok();
                let _ = ready.send(outcome);
                if usable {
                    for (mut command, answer) in queue {
                        let _ = answer.send(spawn_first_to_go(&mut command));
                    }
                }
            })
            .map_err(|err| format!("cannot start the launcher thread: {err}"))?;
        confined
            .recv()
            .map_err(|_| "the launcher thread ended before it was confined".to_string())??;
        Ok(Self { jobs })
    }

    /// Starts `command` from the confined thread.
    pub(crate) fn spawn(&self, command: Command) -> io::Result<Child> {
        let (answer, child) = mpsc::channel();
        self.jobs
            .send((command, answer))
            .map_err(|_| io::Error::other("the launcher thread is gone"))?;
        child
            .recv()
            .map_err(|_| io::Error::other("the launcher thread is gone"))?
    }
}

/// No new privileges for this thread and what it forks (the container sets it too; a
/// supervisor outside one may not), then the block's seccomp filter, on this thread alone.
fn confine() -> Result<(), String> {
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
fn spawn_first_to_go(command: &mut Command) -> io::Result<Child> {
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
        let launcher = Launcher::start().expect("start the launcher");
        let before = std::fs::read_to_string("/proc/self/oom_score_adj").unwrap();
        let mut command = Command::new("sh");
        command.args([
            "-c",
            "cat /proc/self/status; echo \"Pgid: $(cut -d' ' -f5 /proc/self/stat)\"; \
             echo \"Adj: $(cat /proc/self/oom_score_adj)\"",
        ]);
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        command.stdout(std::process::Stdio::piped());
        let child = launcher.spawn(command).expect("spawn");
        let pid = child.id();
        let output = child.wait_with_output().expect("wait");
        let status = String::from_utf8_lossy(&output.stdout);
        assert_eq!(status_line(&status, "NoNewPrivs"), "1", "{status}");
        let own = std::fs::read_to_string("/proc/thread-self/status").unwrap();
        let filters = |text: &str| -> u32 { status_line(text, "Seccomp_filters").parse().unwrap() };
        assert_eq!(filters(&status), filters(&own) + 3, "{status}");
        assert_eq!(status_line(&status, "Pgid"), pid.to_string(), "{status}");
        assert_eq!(status_line(&status, "Adj"), "1000", "{status}");
        // The filters are the launcher thread's alone (the test's thread has fewer), and the
        // process's score is as it was.
        let after = std::fs::read_to_string("/proc/self/oom_score_adj").unwrap();
        assert_eq!(after, before);
    }

    #[test]
    fn a_block_forked_from_the_launcher_cannot_make_ipc_objects() {
        let launcher = Launcher::start().expect("start the launcher");
        let mut command = Command::new("python3");
        command.args([
            "-c",
            "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\nr = libc.shmget(0, 4096, 0o1600)\nprint(r, ctypes.get_errno())",
        ]);
        command.stdout(std::process::Stdio::piped());
        let output = launcher
            .spawn(command)
            .expect("spawn")
            .wait_with_output()
            .expect("wait");
        let said = String::from_utf8_lossy(&output.stdout);
        assert_eq!(said.trim(), format!("-1 {}", libc::EPERM), "{said}");
    }
}
