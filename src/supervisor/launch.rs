//! How a block's process comes to be: what to run and as whom, a fresh private directory
//! for its code, and the fork from the supervisor's confined thread as the code's uid, with
//! stdin from /dev/null, a fresh environment and a process group of its own.

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use super::confinement::spawn_first_to_go;
use super::font_cache::FontCache;
use super::pipes::Pipes;
use super::program_path::ProgramPaths;

/// The block's status, from the thread that waits for it.
pub(super) type Status = std::io::Result<ExitStatus>;

/// What to run, and as whom.
#[derive(Debug, Clone)]
pub(crate) struct BlockRun {
    /// The interpreter and its arguments; the code file's path is appended.
    pub(crate) argv: Vec<String>,
    /// The code file's extension (`py`, `sh`).
    pub(crate) extension: String,
    pub(crate) code: Vec<u8>,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    /// Where each block's private directory is made: not writable by the code's uid, so no
    /// block can prepare the directory of a later one.
    pub(crate) scratch: PathBuf,
    /// The block's working directory (/workspace).
    pub(crate) workdir: PathBuf,
    /// The whole environment the block gets.
    pub(crate) env: Vec<(String, String)>,
    pub(crate) timeout: Duration,
    /// After SIGTERM at the time limit, how long the block has before it is killed.
    pub(crate) grace: Duration,
    /// Where processes are listed (/proc).
    pub(crate) proc: PathBuf,
    /// matplotlib's font cache from the image, copied into the block's HOME before it starts.
    pub(crate) font_cache: Arc<FontCache>,
    /// Where interpreters were found, for the session.
    pub(crate) programs: Arc<ProgramPaths>,
}

/// A block's process, or why there is none.
pub(super) enum Spawned {
    /// Its pid (the leader of its own process group), its pipes and where its status comes.
    Running(u32, Pipes, mpsc::Receiver<Status>),
    /// The interpreter could not be started: the status and message a shell would give.
    Unstartable { status: i32, why: String },
}

/// Starts the block's process as the code's uid, in a process group of its own, from the
/// supervisor's confined thread (see [`super::confinement`]), with a thread that waits for it.
pub(super) fn spawn(block: &BlockRun, file: &Path) -> Result<Spawned, String> {
    let Some((program, args)) = block.argv.split_first() else {
        return Ok(Spawned::Unstartable {
            status: 127,
            why: "airlock: a block was started without an interpreter\n".into(),
        });
    };
    // Run from where it was found before when that cannot have changed, under the name the
    // block gave it (its argv[0]), as the exec's own search would.
    let mut command = match block.programs.resolve(program, &block.env) {
        Some(file) => Command::new(file),
        None => Command::new(program),
    };
    command
        .arg0(program)
        .args(args)
        .arg(file)
        .env_clear()
        .envs(block.env.iter().map(|(name, value)| (name, value)))
        .current_dir(&block.workdir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .uid(block.uid)
        .gid(block.gid)
        .process_group(0);
    let mut child = match spawn_first_to_go(&mut command) {
        Ok(child) => child,
        Err(err) => return Ok(unstartable(program, &err)),
    };
    let leader = child.id();
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err("cannot start the block: its pipes were not made".into());
    };
    let (tx, exits) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    Ok(Spawned::Running(leader, Pipes::new(stdout, stderr), exits))
}

/// A shell's answer to a program it cannot run: 127 when it is not there, 126 otherwise.
fn unstartable(program: &str, err: &std::io::Error) -> Spawned {
    let name = crate::output::sanitize::neutralize(program);
    let status = if err.kind() == std::io::ErrorKind::NotFound {
        127
    } else {
        126
    };
    Spawned::Unstartable {
        status,
        why: format!("airlock: cannot run {name}: {err}\n"),
    }
}

/// A fresh directory, under a parent the code's uid cannot write: no earlier block can
/// have prepared it. It goes to the code's uid once the code is in it.
pub(super) fn private_dir(block: &BlockRun) -> Result<PathBuf, String> {
    let name = format!("block-{}", crate::ids::random_hex(8));
    let dir = block.scratch.join(name);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .map_err(|err| format!("cannot make the block's directory {}: {err}", dir.display()))?;
    Ok(dir)
}

/// The code exactly as approved, in a file nobody had before.
pub(super) fn write_code(file: &Path, code: &[u8], uid: u32, gid: u32) -> Result<(), String> {
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
