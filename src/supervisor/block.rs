//! One block's life under the supervisor: a fresh private directory holding the approved
//! code, the process started as the code's uid with a fresh environment, stdin from
//! /dev/null and a process group of its own, its output read from pipes the supervisor owns
//! and sent on as frames, its status from waitpid, and the sweep when it ends.

use std::io::Read;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::frame::{ExitReport, Frame, OUTPUT_CHUNK};
use super::reap;

/// How long the output of a block's leftovers is still read after the sweep.
const DRAIN: Duration = Duration::from_secs(1);

/// What to run, and as whom.
#[derive(Debug, Clone)]
pub(crate) struct BlockRun {
    /// The interpreter and its arguments; the code file's path is appended.
    pub argv: Vec<String>,
    /// The code file's extension (`py`, `sh`).
    pub extension: String,
    pub code: Vec<u8>,
    pub uid: u32,
    pub gid: u32,
    /// Where each block's private directory is made: not writable by the code's uid, so no
    /// block can prepare the directory of a later one.
    pub scratch: PathBuf,
    /// The block's working directory (/workspace).
    pub workdir: PathBuf,
    /// The whole environment the block gets.
    pub env: Vec<(String, String)>,
    pub timeout: Duration,
    /// Where processes are listed (/proc).
    pub proc: PathBuf,
}

enum Happened {
    Output(Frame),
    /// One of the two pipes reached its end.
    Closed,
    Exited(std::io::Result<ExitStatus>),
}

/// Runs the block to its end; output goes to `send` as it arrives; `cancelled` is asked
/// often and ends it early when it says so.
pub(crate) fn run(
    block: &BlockRun,
    cancelled: &mut dyn FnMut() -> bool,
    send: &mut dyn FnMut(Frame),
) -> Result<ExitReport, String> {
    let started = Instant::now();
    let dir = private_dir(block)?;
    let outcome = run_in(block, &dir, cancelled, send, started);
    // Reading what the block left there needs CAP_DAC_OVERRIDE; without it, the directory
    // stays (under a parent only the supervisor writes, so no later block can use it).
    let _ = std::fs::remove_dir_all(&dir);
    outcome
}

fn run_in(
    block: &BlockRun,
    dir: &Path,
    cancelled: &mut dyn FnMut() -> bool,
    send: &mut dyn FnMut(Frame),
    started: Instant,
) -> Result<ExitReport, String> {
    let file = dir.join(format!("block.{}", block.extension));
    write_code(&file, &block.code, block.uid, block.gid)?;
    // Handed over only now: the supervisor may lack the right to write into it afterwards.
    std::os::unix::fs::chown(dir, Some(block.uid), Some(block.gid))
        .map_err(|err| format!("cannot give the block its directory: {err}"))?;
    let (program, args) = block.argv.split_first().ok_or("no interpreter to run")?;
    let mut child = Command::new(program)
        .args(args)
        .arg(&file)
        .env_clear()
        .envs(block.env.iter().map(|(name, value)| (name, value)))
        .current_dir(&block.workdir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .uid(block.uid)
        .gid(block.gid)
        .process_group(0)
        .spawn()
        .map_err(|err| format!("cannot start {program}: {err}"))?;
    let (tx, events) = mpsc::channel();
    if let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) {
        pump(stdout, Frame::Stdout, tx.clone());
        pump(stderr, Frame::Stderr, tx.clone());
    }
    std::thread::spawn(move || {
        let _ = tx.send(Happened::Exited(child.wait()));
    });
    let deadline = started + block.timeout;
    let mut report = ExitReport {
        exit_code: None,
        signal: None,
        timed_out: false,
        cancelled: false,
        survivors: Vec::new(),
        duration_ms: 0,
    };
    let mut open_pipes = 2;
    let mut exited = false;
    while !exited {
        if cancelled() {
            report.cancelled = true;
            break;
        }
        let wait = deadline
            .saturating_duration_since(Instant::now())
            .min(Duration::from_millis(20));
        match events.recv_timeout(wait) {
            Ok(Happened::Output(frame)) => send(frame),
            Ok(Happened::Closed) => open_pipes -= 1,
            Ok(Happened::Exited(status)) => {
                exited = true;
                let status = status.map_err(|err| format!("cannot wait for the block: {err}"))?;
                report.exit_code = status.code();
                report.signal = status.signal();
            }
            Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() >= deadline => {
                report.timed_out = true;
                break;
            }
            Err(_) => {}
        }
    }
    report.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    // Everything of the code's uid goes, the block itself included when it did not end.
    report.survivors = reap::kill_all(&block.proc, block.uid);
    drain(&events, open_pipes, send);
    Ok(report)
}

/// A fresh directory, under a parent the code's uid cannot write: no earlier block can
/// have prepared it. It goes to the code's uid once the code is in it.
fn private_dir(block: &BlockRun) -> Result<PathBuf, String> {
    let name = format!("block-{}", crate::ids::random_hex(8));
    let dir = block.scratch.join(name);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .map_err(|err| format!("cannot make the block's directory {}: {err}", dir.display()))?;
    Ok(dir)
}

/// The code exactly as approved, in a file nobody had before.
fn write_code(file: &Path, code: &[u8], uid: u32, gid: u32) -> Result<(), String> {
    let mut handle = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o400)
        .open(file)
        .map_err(|err| format!("cannot write the block's code: {err}"))?;
    std::io::Write::write_all(&mut handle, code)
        .map_err(|err| format!("cannot write the block's code: {err}"))?;
    std::os::unix::fs::chown(file, Some(uid), Some(gid))
        .map_err(|err| format!("cannot give the block its code: {err}"))
}

/// Reads a pipe to its end in bounded pieces.
fn pump(
    mut pipe: impl Read + Send + 'static,
    frame: fn(Vec<u8>) -> Frame,
    tx: mpsc::Sender<Happened>,
) {
    std::thread::spawn(move || {
        let mut buffer = vec![0; OUTPUT_CHUNK];
        loop {
            match pipe.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(read) => {
                    if tx
                        .send(Happened::Output(frame(buffer[..read].to_vec())))
                        .is_err()
                    {
                        break;
                    }
                }
            }
        }
        let _ = tx.send(Happened::Closed);
    });
}

/// What is still in the pipes once every process of the block is gone.
fn drain(events: &mpsc::Receiver<Happened>, mut open_pipes: usize, send: &mut dyn FnMut(Frame)) {
    let until = Instant::now() + DRAIN;
    while open_pipes > 0 {
        match events.recv_timeout(until.saturating_duration_since(Instant::now())) {
            Ok(Happened::Output(frame)) => send(frame),
            Ok(Happened::Closed) => open_pipes -= 1,
            Ok(Happened::Exited(_)) => {}
            Err(_) => break,
        }
    }
}
