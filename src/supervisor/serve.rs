//! `airlock supervise`: the supervisor process. It reads requests as frames on stdin and
//! answers in frames on stdout, one block at a time; when its stdin ends (airlock is gone) it
//! sweeps the code's processes away and exits.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use super::block;
use super::font_cache::{self, FontCache};
use super::frame::{Decoder, ExitReport, Frame, Hello, MAX_REQUEST, WorkspaceRoom};
use super::launch::BlockRun;
use super::mirror::{Mirror, PassReport, Touched};
use super::program_path::ProgramPaths;
use super::reap;
use super::warm::Warm;

/// Who the code runs as, and where.
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    /// The parent of every block's private directory; the code's uid must not write it.
    pub(crate) scratch: PathBuf,
    pub(crate) workdir: PathBuf,
    /// Emptied after every block: only the working directory carries anything over.
    pub(crate) ephemeral: Vec<PathBuf>,
    /// The host's workspace directory, mirrored with `workdir` around every block (see
    /// [`super::mirror`]); `None` when `workdir` is that directory itself.
    pub(crate) mirror: Option<PathBuf>,
}

/// While the workspace is copied, airlock hears from the supervisor at least this often.
const BUSY_EVERY: Duration = Duration::from_secs(1);

enum Request {
    Frame(Frame),
    /// Stdin ended or broke: airlock is gone.
    Gone,
}

/// Serves requests until airlock goes away.
pub(crate) fn serve(identity: &Identity) -> Result<(), String> {
    // Nothing of the code's uid may read this process's memory or attach to it.
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
        .map_err(|err| format!("cannot make the supervisor non-dumpable: {err}"))?;
    // Blocks are forked from this thread, and inherit what it takes away from itself.
    super::confinement::confine_this_thread()?;
    let proc = PathBuf::from("/proc");
    let mut mirror = match &identity.mirror {
        Some(host) => Some(Mirror::open(&identity.workdir, host)?),
        None => None,
    };
    let room = mirror.as_ref().map(Mirror::room).transpose()?;
    let font_cache = Arc::new(FontCache::load(Path::new(font_cache::IN_IMAGE)));
    let programs = Arc::new(ProgramPaths::default());
    let requests = read_requests();
    let mut out = std::io::stdout().lock();
    let mut send = |frame: Frame| {
        let mut bytes = Vec::new();
        frame.encode(&mut bytes);
        let _ = out.write_all(&bytes).and_then(|()| out.flush());
    };
    send(Frame::Hello(hello(identity.uid, room)));
    // The next block's interpreter, started once the last one was over.
    let mut warm: Option<Warm> = None;
    // Until stdin ends (`Gone`): airlock is no more.
    while let Ok(Request::Frame(frame)) = requests.recv() {
        let Frame::Run(request, code) = frame else {
            // A cancel with nothing running has nothing to do.
            continue;
        };
        let start_ahead = request.start_ahead;
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
            font_cache: Arc::clone(&font_cache),
            programs: Arc::clone(&programs),
        };
        // One started for another interpreter is killed here, before this block starts.
        let ahead = warm.take().filter(|warm| warm.fits(&run));
        let mut gone = false;
        let mut cancelled = || cancel_asked(&requests, &mut gone);
        let answer = match mirror.as_mut() {
            Some(mirror) => run_mirrored(&run, ahead, mirror, &mut cancelled, &mut send),
            None => answer(block::run(&run, ahead, &mut cancelled, &mut send)),
        };
        // After the sweep, so nothing of the block is left to write there again.
        for dir in &identity.ephemeral {
            reap::empty_dir(dir);
        }
        send(answer);
        if gone {
            break;
        }
        // While airlock takes the result in and the next block is decided.
        if start_ahead {
            warm = Warm::start(&run);
        }
    }
    reap::kill_all(&proc, identity.uid);
    Ok(())
}

fn answer(outcome: Result<ExitReport, String>) -> Frame {
    match outcome {
        Ok(report) => Frame::Exit(report),
        Err(why) => Frame::Fault(why),
    }
}

/// A block in the capped /workspace: the operator's changes come in before it, its own go
/// out after it, when none of its processes is left to race the copy.
fn run_mirrored(
    run: &BlockRun,
    ahead: Option<Warm>,
    mirror: &mut Mirror,
    cancelled: &mut dyn FnMut() -> bool,
    send: &mut dyn FnMut(Frame),
) -> Frame {
    // Copies of many files or bytes take a while: airlock hears that the supervisor is at it.
    let mut last = std::time::Instant::now();
    let mut busy = |send: &mut dyn FnMut(Frame)| {
        if last.elapsed() >= BUSY_EVERY {
            send(Frame::Busy);
            last = std::time::Instant::now();
        }
    };
    let pulled = mirror.pull(&mut || busy(send));
    if pulled.no_space {
        return Frame::Exit(ExitReport::not_run(format!(
            "the workspace directory holds more than /workspace may (sandbox.workspace_limit, \
             sandbox.workspace_inodes): {}",
            pulled.summary().unwrap_or_default()
        )));
    }
    let mut report = match block::run(run, ahead, cancelled, send) {
        Ok(report) => report,
        // The block may not have been swept: nothing is copied while it could still write.
        Err(why) => return Frame::Fault(why),
    };
    let pushed = if report.survivors.is_empty() {
        mirror.push(&mut || busy(send))
    } else {
        // Processes the sweep could not end could change the tree under the copy. The
        // container is replaced, and starts again from what the host directory holds.
        PassReport {
            problems: vec![
                "the block's changes were not copied to the host: some of its processes \
                 survived the sweep"
                    .into(),
            ],
            ..PassReport::default()
        }
    };
    report.workspace_full = pushed.no_space || mirror.room().is_ok_and(|room| room.full());
    report.git_kept_back = pushed.git_kept_back.clone();
    report.git_kept_back_more = pushed.git_kept_back_more;
    report.pushed = match &pushed.touched {
        Touched::Paths(paths) => Some(paths.clone()),
        Touched::Many => None,
    };
    let problems: Vec<String> = [pulled.summary(), pushed.summary()]
        .into_iter()
        .flatten()
        .collect();
    report.workspace_problem = (!problems.is_empty()).then(|| problems.join("; "));
    Frame::Exit(report)
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
fn hello(code_uid: u32, room: Option<super::mirror::Room>) -> Hello {
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
        // Asked of the kernel (PR_GET_NO_NEW_PRIVS), not read from /proc: gVisor's
        // /proc/self/status has no NoNewPrivs line, though its kernel keeps the flag.
        no_new_privileges: rustix::thread::no_new_privs().unwrap_or(false),
        workspace: room.map(|room| WorkspaceRoom {
            bytes: room.bytes,
            inodes: room.inodes,
        }),
    }
}
