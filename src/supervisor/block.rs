//! One block's life under the supervisor: its code in a fresh private directory, its process
//! started (see [`super::launch`]) or handed the code when it was started ahead (see
//! [`super::warm`]), its output read from pipes the supervisor owns and sent on as frames,
//! its status from waitpid, and the sweep when it ends.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::ExitStatus;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::frame::{ExitReport, Frame};
use super::launch::{BlockRun, Spawned, Status, private_dir, spawn, write_code};
use super::pipes::Pipes;
use super::reap;
use super::warm::Warm;

/// How long the supervisor waits, after the sweep, for a pipe that is neither at its end nor
/// holding output (a process of the block passed it on, where no sweep reaches).
const DRAIN: Duration = Duration::from_secs(1);
/// What is still read after [`DRAIN`] while the pipes hold output: more than both pipes can
/// hold, whoever sized them (an unprivileged process may go up to fs.pipe-max-size, 1 MiB).
const LATE_BYTES: usize = 4 * super::pipes::PIPE_SIZE;

/// Runs the block to its end, in the interpreter started ahead for it when there is one that
/// fits; output goes to `send` as it arrives; `cancelled` is asked often and ends it early
/// when it says so.
pub(super) fn run(
    block: &BlockRun,
    warm: Option<Warm>,
    cancelled: &mut dyn FnMut() -> bool,
    send: &mut dyn FnMut(Frame),
) -> Result<ExitReport, String> {
    let started = Instant::now();
    let oom_before = oom_kills();
    let (dir, spawned) = match warm.and_then(|warm| warm.hand_over(block)) {
        Some((dir, spawned)) => (dir, Ok(spawned)),
        None => {
            let dir = private_dir(block)?;
            let spawned = start_cold(block, &dir);
            (dir, spawned)
        }
    };
    let outcome = spawned.and_then(|spawned| match spawned {
        Spawned::Running(leader, pipes, exits) => {
            let running = Running {
                leader,
                pipes,
                exits,
                started,
                oom_before,
            };
            watch_to_end(block, running, cancelled, send)
        }
        Spawned::Unstartable { status, why } => {
            send(Frame::Stderr(why.into_bytes()));
            Ok(ExitReport {
                exit_code: Some(status),
                duration_ms: millis(started.elapsed()),
                ..ExitReport::default()
            })
        }
    });
    // Reading what the block left there needs CAP_DAC_OVERRIDE; without it, the directory
    // stays (under a parent only the supervisor writes, so no later block can use it).
    let _ = std::fs::remove_dir_all(&dir);
    outcome
}

/// The code in a new file of the block's directory, then its interpreter started on it.
fn start_cold(block: &BlockRun, dir: &Path) -> Result<Spawned, String> {
    let file = dir.join(format!("block.{}", block.extension));
    write_code(&file, &block.code, block.uid, block.gid)?;
    // Handed over only now: the supervisor may lack the right to write into it afterwards.
    std::os::unix::fs::chown(dir, Some(block.uid), Some(block.gid))
        .map_err(|err| format!("cannot give the block its directory: {err}"))?;
    // Counted in the block's time. When it cannot be made, the block builds its own cache.
    let _ = block.font_cache.place(&block.env, block.uid, block.gid);
    spawn(block, &file)
}

/// A block's process from its start.
struct Running {
    leader: u32,
    pipes: Pipes,
    exits: mpsc::Receiver<Status>,
    started: Instant,
    /// The container's OOM kills before it.
    oom_before: u64,
}

fn millis(elapsed: Duration) -> u64 {
    u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
}

/// Passes its output on until it ends, stops it at its time limit, and sweeps.
fn watch_to_end(
    block: &BlockRun,
    running: Running,
    cancelled: &mut dyn FnMut() -> bool,
    send: &mut dyn FnMut(Frame),
) -> Result<ExitReport, String> {
    let Running {
        leader,
        pipes,
        exits,
        started,
        oom_before,
    } = running;
    let mut watch = Watch {
        pipes,
        exits: &exits,
        send,
        exited: false,
    };
    let mut report = ExitReport::default();
    let status = match watch.until(started + block.timeout, cancelled)? {
        Ended::Exited(status) => Some(status),
        Ended::Cancelled => {
            report.cancelled = true;
            None
        }
        Ended::Deadline => {
            report.timed_out = true;
            // Asked to stop first, as `timeout` would; whatever is left then is killed.
            reap::terminate_group(leader);
            match watch.until(Instant::now() + block.grace, &mut || false)? {
                Ended::Exited(status) => Some(status),
                _ => None,
            }
        }
    };
    report.exit_code = status.and_then(|status| status.code());
    report.signal = status.and_then(|status| status.signal());
    report.duration_ms = millis(started.elapsed());
    // Everything of the code's uid goes, the block itself included when it did not end.
    report.survivors = reap::kill_all(&block.proc, block.uid);
    watch.drain();
    // Only once the block's own waiter is done, so it never races for the block's status.
    reap::collect_zombies();
    report.oom_kills = oom_kills().saturating_sub(oom_before);
    Ok(report)
}

/// How watching a running block ended.
enum Ended {
    Exited(ExitStatus),
    Cancelled,
    Deadline,
}

/// A running block: its output is passed on as it comes. Read here, on the thread that
/// sends, never by threads of their own: when the block's writes outrun airlock's reading,
/// they wait in the block instead of the supervisor's memory growing.
struct Watch<'a> {
    pipes: Pipes,
    exits: &'a mpsc::Receiver<Status>,
    send: &'a mut dyn FnMut(Frame),
    /// Whether the waiter thread has reported the block's process.
    exited: bool,
}

impl Watch<'_> {
    /// Passes output on until the block's process exits, a cancel comes or `deadline` passes.
    fn until(
        &mut self,
        deadline: Instant,
        cancelled: &mut dyn FnMut() -> bool,
    ) -> Result<Ended, String> {
        loop {
            if cancelled() {
                return Ok(Ended::Cancelled);
            }
            // Checked first, not only when nothing comes: a flood never leaves the pipes
            // empty, and the time limit must hold all the same.
            if Instant::now() >= deadline {
                return Ok(Ended::Deadline);
            }
            let wait = deadline
                .saturating_duration_since(Instant::now())
                .min(Duration::from_millis(20));
            let status = if self.pipes.all_closed() {
                self.exits.recv_timeout(wait).ok()
            } else {
                self.pipes.read_ready(wait, self.send);
                self.exits.try_recv().ok()
            };
            // What the block wrote before it ended is read by `drain`, after the sweep.
            if let Some(status) = status {
                self.exited = true;
                return status
                    .map(Ended::Exited)
                    .map_err(|err| format!("cannot wait for the block: {err}"));
            }
        }
    }

    /// What is still in the pipes once every process of the block is gone, and the waiter's
    /// report when it has not come yet. Output the pipes hold is read however long that
    /// takes (up to [`LATE_BYTES`]); only a pipe that stays open and empty is given up on.
    fn drain(&mut self) {
        let until = Instant::now() + DRAIN;
        let mut late = 0;
        while !self.pipes.all_closed() && late <= LATE_BYTES {
            let wait = until.saturating_duration_since(Instant::now());
            match self.pipes.read_ready(wait, self.send) {
                Some(bytes) if wait.is_zero() => late += bytes,
                Some(_) => {}
                None if wait.is_zero() => break,
                None => {}
            }
        }
        if !self.exited {
            self.exited = self.exits.recv_timeout(DRAIN).is_ok();
        }
    }
}

/// OOM kills so far in this container's memory cgroup (v1 or v2); 0 when neither is readable.
fn oom_kills() -> u64 {
    let files = [
        "/sys/fs/cgroup/memory/memory.oom_control",
        "/sys/fs/cgroup/memory.events",
    ];
    files
        .iter()
        .filter_map(|file| std::fs::read_to_string(file).ok())
        .find_map(|text| {
            text.lines()
                .find_map(|line| line.strip_prefix("oom_kill "))
                .and_then(|value| value.trim().parse().ok())
        })
        .unwrap_or(0)
}
