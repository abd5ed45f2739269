//! The first moments of a block's process, between the supervisor's fork and the code. The
//! supervisor starts this same binary again, through /proc/self/exe (so no host path has to
//! be reachable by the code's uid), under the name [`ARG0`] and already as the code's uid.
//! It makes a session of its own, then becomes the interpreter. std's `Command` can give a
//! child a process group but not a session without unsafe code, which this crate forbids.

use std::ffi::OsStr;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode};

/// The name the supervisor starts a block under.
pub(crate) const ARG0: &str = "airlock-block";

/// When this process is a block's trampoline, becomes the block and never returns, unless the
/// interpreter cannot be started: then it says why on the block's stderr and gives the exit
/// status a shell would (127 for a missing program, 126 otherwise). `None` for any other
/// process.
pub fn enter() -> Option<ExitCode> {
    let mut args = std::env::args_os();
    if args.next().as_deref() != Some(OsStr::new(ARG0)) {
        return None;
    }
    let Some(program) = args.next() else {
        eprintln!("airlock: a block was started without an interpreter");
        return Some(ExitCode::from(127));
    };
    // Through nix, whose Pid may be 0: gVisor's setsid returns 0 for the new session, where
    // Linux returns its id, and rustix's non-zero Pid cannot hold that.
    if let Err(err) = nix::unistd::setsid() {
        eprintln!("airlock: cannot give the block a session of its own: {err}");
        return Some(ExitCode::from(126));
    }
    // The block, never the supervisor, is what the OOM killer takes first; set before the
    // interpreter starts, so everything it forks inherits it. Raising needs no privilege.
    let _ = std::fs::write("/proc/self/oom_score_adj", "1000");
    // No core dumps (the container's ulimit says so too, but an engine may not apply it),
    // no new privileges (the container sets it too; a supervisor on a host may not), then
    // the block's own seccomp filter: without any of them, the block does not start.
    let confined = no_core_dumps()
        .and_then(|()| {
            rustix::thread::set_no_new_privs(true)
                .map_err(|err| format!("cannot set no-new-privileges: {err}"))
        })
        .and_then(|()| super::seccomp::install());
    if let Err(why) = confined {
        eprintln!("airlock: {why}");
        return Some(ExitCode::from(126));
    }
    let err = Command::new(&program).args(args).exec();
    let name = crate::output::sanitize::neutralize(&program.to_string_lossy());
    eprintln!("airlock: cannot run {name}: {err}");
    let status = if err.kind() == std::io::ErrorKind::NotFound {
        127
    } else {
        126
    };
    Some(ExitCode::from(status))
}

/// Sets the core dump limit to 0, soft and hard: no process started from here on can raise
/// it again, so no crash writes a core file or passes one to the kernel's core_pattern
/// program. Lowering a limit needs no privilege.
pub(crate) fn no_core_dumps() -> Result<(), String> {
    let none = rustix::process::Rlimit {
        current: Some(0),
        maximum: Some(0),
    };
    rustix::process::setrlimit(rustix::process::Resource::Core, none)
        .map_err(|err| format!("cannot turn core dumps off: {err}"))
}
