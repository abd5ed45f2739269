//! `airlock supervise`: the supervisor process. It reads requests as frames on stdin and
//! answers in frames on stdout, one block at a time; when its stdin ends (airlock is gone) it
//! sweeps the code's processes away and exits.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

use super::block::{self, BlockRun};
use super::frame::{Decoder, Frame, Hello, MAX_REQUEST};
use super::reap;

/// Who the code runs as, and where.
#[derive(Debug, Clone)]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
    /// The parent of every block's private directory; the code's uid must not write it.
    pub scratch: PathBuf,
    pub workdir: PathBuf,
    /// Emptied after every block: only the working directory carries anything over.
    pub ephemeral: Vec<PathBuf>,
}

enum Request {
    Frame(Frame),
    /// Stdin ended or broke: airlock is gone.
    Gone,
}

/// Serves requests until airlock goes away.
pub fn serve(identity: &Identity) -> Result<(), String> {
    // Nothing of the code's uid may read this process's memory or attach to it.
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
        .map_err(|err| format!("cannot make the supervisor non-dumpable: {err}"))?;
    let proc = PathBuf::from("/proc");
    let requests = read_requests();
    let mut out = std::io::stdout().lock();
    let mut send = |frame: Frame| {
        let mut bytes = Vec::new();
        frame.encode(&mut bytes);
        let _ = out.write_all(&bytes).and_then(|()| out.flush());
    };
    send(Frame::Hello(hello(identity.uid)));
    // Until stdin ends (`Gone`): airlock is no more.
    while let Ok(Request::Frame(frame)) = requests.recv() {
        let Frame::Run(request, code) = frame else {
            // A cancel with nothing running has nothing to do.
            continue;
        };
        let run = BlockRun {
            argv: request.argv,
            extension: request.extension,
            code,
            uid: identity.uid,
            gid: identity.gid,
            scratch: identity.scratch.clone(),
            workdir: identity.workdir.clone(),
            env: request.env,
            timeout: Duration::from_millis(request.timeout_ms),
            grace: Duration::from_millis(request.grace_ms),
            proc: proc.clone(),
        };
        let mut gone = false;
        let mut cancelled = || cancel_asked(&requests, &mut gone);
        let answer = match block::run(&run, &mut cancelled, &mut send) {
            Ok(report) => Frame::Exit(report),
            Err(why) => Frame::Fault(why),
        };
        // After the sweep, so nothing of the block is left to write there again.
        for dir in &identity.ephemeral {
            reap::empty_dir(dir);
        }
        send(answer);
        if gone {
            break;
        }
    }
    reap::kill_all(&proc, identity.uid);
    Ok(())
}

/// Whether the running block is to stop: a cancel came, or airlock went away.
fn cancel_asked(requests: &mpsc::Receiver<Request>, gone: &mut bool) -> bool {
    let mut stop = false;
    while let Ok(request) = requests.try_recv() {
        match request {
            Request::Frame(Frame::Cancel) => stop = true,
            Request::Gone => {
                *gone = true;
                stop = true;
            }
            // One block at a time: a second run while one runs is airlock's mistake.
            Request::Frame(_) => {}
        }
    }
    stop
}

/// Stdin, decoded into requests on a thread of its own.
fn read_requests() -> mpsc::Receiver<Request> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut decoder = Decoder::with_limit(MAX_REQUEST);
        let mut buffer = vec![0; 64 * 1024];
        loop {
            let read = match stdin.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(read) => read,
            };
            let Ok(frames) = decoder.push(&buffer[..read]) else {
                break;
            };
            for frame in frames {
                if tx.send(Request::Frame(frame)).is_err() {
                    return;
                }
            }
        }
        let _ = tx.send(Request::Gone);
    });
    rx
}

/// What this process is, read from /proc/self/status, for airlock to check.
fn hello(code_uid: u32) -> Hello {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
            .map(str::trim)
            .unwrap_or_default()
            .to_string()
    };
    Hello {
        version: env!("CARGO_PKG_VERSION").to_string(),
        uid: rustix::process::geteuid().as_raw(),
        code_uid,
        // Unreadable means unknown: all bits set, which airlock refuses.
        capabilities: u64::from_str_radix(&field("CapEff"), 16).unwrap_or(u64::MAX),
        no_new_privileges: field("NoNewPrivs") == "1",
    }
}
