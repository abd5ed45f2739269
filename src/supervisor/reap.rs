//! The end-of-block sweep: every process of the code's uid is stopped, then killed, and /proc
//! is read again to see that none is left. Stopping first matters: a stopped process cannot
//! fork, so a fork bomb cannot outrun the sweep.

use std::time::Duration;

use rustix::process::{Pid, Signal, kill_process};

/// Rounds of stop-then-kill before the sweep gives up and reports survivors.
const ROUNDS: usize = 20;

/// Live (not zombie) processes whose real or effective uid is `uid`, read from `proc`.
pub(crate) fn processes_of(proc: &std::path::Path, uid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir(proc) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| owned_and_alive(&proc.join(pid.to_string()).join("status"), uid))
        .collect()
}

fn owned_and_alive(status: &std::path::Path, uid: u32) -> bool {
    // A process that is gone by now has no status file: not a survivor.
    let Ok(text) = std::fs::read_to_string(status) else {
        return false;
    };
    let mut alive = true;
    let mut owned = false;
    for line in text.lines() {
        if let Some(state) = line.strip_prefix("State:") {
            alive = !matches!(state.trim_start().chars().next(), Some('Z' | 'X'));
        } else if let Some(ids) = line.strip_prefix("Uid:") {
            let ids: Vec<u32> = ids
                .split_whitespace()
                .filter_map(|id| id.parse().ok())
                .collect();
            owned = ids.iter().take(2).any(|&id| id == uid);
        }
    }
    alive && owned
}

fn signal_all(pids: &[u32], signal: Signal) {
    for &pid in pids {
        if let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) {
            let _ = kill_process(pid, signal);
        }
    }
}

/// Stops and kills every process of `uid`; returns those still alive afterwards.
pub(crate) fn kill_all(proc: &std::path::Path, uid: u32) -> Vec<u32> {
    for _ in 0..ROUNDS {
        let pids = processes_of(proc, uid);
        if pids.is_empty() {
            return pids;
        }
        signal_all(&pids, Signal::STOP);
        // What forked between the listing and the stop is caught by the next listing.
        let stopped = processes_of(proc, uid);
        signal_all(&stopped, Signal::KILL);
        std::thread::sleep(Duration::from_millis(5));
    }
    processes_of(proc, uid)
}
