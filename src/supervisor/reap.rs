//! The end-of-block sweep: every process of the code's uid is stopped, then killed, and /proc
//! is read again to see that none is left. Stopping first matters: a stopped process cannot
//! fork, so a fork bomb cannot outrun the sweep.

use std::time::Duration;

use rustix::process::{Pid, Signal, kill_process};

/// How long the sweep keeps at it before it reports survivors. Time, not a count of rounds:
/// on a loaded host a stopped process may take a while to be scheduled and stop.
const PATIENCE: Duration = Duration::from_secs(5);

/// A live process of the uid, and whether it is stopped already.
struct Found {
    pid: u32,
    stopped: bool,
}

/// Live (not zombie) processes whose real or effective uid is `uid`, read from `proc`.
pub(crate) fn processes_of(proc: &std::path::Path, uid: u32) -> Vec<u32> {
    find(proc, uid).into_iter().map(|found| found.pid).collect()
}

fn find(proc: &std::path::Path, uid: u32) -> Vec<Found> {
    let Ok(entries) = std::fs::read_dir(proc) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| examine(&proc.join(pid.to_string()).join("status"), uid, pid))
        .collect()
}

fn examine(status: &std::path::Path, uid: u32, pid: u32) -> Option<Found> {
    // A process that is gone by now has no status file: not a survivor. Read as bytes: the
    // name line holds whatever the process wrote to its comm, valid UTF-8 or not.
    let text = String::from_utf8_lossy(&std::fs::read(status).ok()?).into_owned();
    let mut state = None;
    let mut owned = false;
    let mut threads = 1;
    for line in text.lines() {
        if let Some(value) = line.strip_prefix("State:") {
            state = value.trim_start().chars().next();
        } else if let Some(ids) = line.strip_prefix("Uid:") {
            let ids: Vec<u32> = ids
                .split_whitespace()
                .filter_map(|id| id.parse().ok())
                .collect();
            owned = ids.iter().take(2).any(|&id| id == uid);
        } else if let Some(count) = line.strip_prefix("Threads:") {
            threads = count.trim().parse().unwrap_or(1);
        }
    }
    // A zombie whose other threads still run (its main thread called exit alone) is alive.
    let alive = !matches!(state, Some('Z' | 'X')) || threads > 1;
    (owned && alive).then_some(Found {
        pid,
        stopped: matches!(state, Some('T' | 't')),
    })
}

fn signal_all(pids: impl IntoIterator<Item = u32>, signal: Signal) {
    for pid in pids {
        if let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) {
            let _ = kill_process(pid, signal);
        }
    }
}

/// Stops every process of `uid` until a listing finds none still running, then kills them
/// all; returns those still alive afterwards. Nothing is killed while anything runs: a kill
/// frees a pid that a running fork bomb would take at once, while a stopped one can neither
/// fork nor free anything. Some processes never show as stopped (a vfork parent waiting on
/// its stopped child, a zombie leader whose threads live on): after half the patience,
/// everything found is killed in every round.
pub(crate) fn kill_all(proc: &std::path::Path, uid: u32) -> Vec<u32> {
    let started = std::time::Instant::now();
    while started.elapsed() < PATIENCE {
        let found = find(proc, uid);
        if found.is_empty() {
            return Vec::new();
        }
        let running: Vec<u32> = found.iter().filter(|f| !f.stopped).map(|f| f.pid).collect();
        if running.is_empty() || started.elapsed() >= PATIENCE / 2 {
            signal_all(found.iter().map(|f| f.pid), Signal::KILL);
            std::thread::sleep(Duration::from_millis(2));
        } else {
            signal_all(running, Signal::STOP);
            std::thread::yield_now();
        }
    }
    processes_of(proc, uid)
}

/// SIGTERM to the block's process group (its leader's), or to the leader alone if the group
/// is gone.
pub(crate) fn terminate_group(leader: u32) {
    let Some(pid) = i32::try_from(leader).ok().and_then(Pid::from_raw) else {
        return;
    };
    if rustix::process::kill_process_group(pid, Signal::TERM).is_err() {
        let _ = kill_process(pid, Signal::TERM);
    }
}

/// SIGKILL to one process.
pub(crate) fn kill_one(pid: u32) {
    signal_all([pid], Signal::KILL);
}

/// Reaps every child that has ended: when the supervisor is PID 1 (a container without an
/// init), orphans of blocks become its children, and unreaped they would hold pids.
pub(crate) fn collect_zombies() {
    let options = rustix::process::WaitOptions::NOHANG;
    while let Ok(Some(_)) = rustix::process::wait(options) {}
}

/// Removes everything inside `dir`, never following a symlink out of it. Directories the
/// code made are removable thanks to DAC_OVERRIDE; entries of a sticky /tmp because the
/// supervisor owns /tmp itself.
pub(crate) fn empty_dir(dir: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let is_dir = std::fs::symlink_metadata(&path).is_ok_and(|meta| meta.is_dir());
        let _ = if is_dir {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
    }
}
