//! A process that outlives the screen. Started before the terminal changes, it keeps the
//! terminal's settings as they were and waits on a socket to airlock. When airlock ends without
//! saying it put the terminal back (an abort such as a failed allocation, a crash, SIGKILL),
//! the guard puts it back: the alternate screen left, mouse reports and bracketed paste off,
//! the cursor shown, the saved settings (line editing, echo) set again, and a line that says
//! what happened. A signal handler could do only part of this: stable Rust has no hook for a
//! failed allocation, a handler needs unsafe code (this crate forbids it), and none runs on
//! SIGKILL or the OOM killer.

use std::ffi::OsStr;
use std::io::{IsTerminal, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::Duration;

use crossterm::cursor::Show;
use crossterm::event::{DisableBracketedPaste, DisableMouseCapture};
use crossterm::style::ResetColor;
use crossterm::terminal::LeaveAlternateScreen;
use rustix::termios::{OptionalActions, Termios};

/// The name the guard runs under (`ps` shows it).
const ARG0: &str = "airlock-screen-guard";
/// The guard has read the terminal's settings.
const READY: u8 = b'R';
/// airlock put the terminal back itself: the guard ends without a word.
const RESTORED: u8 = b'D';
/// How long airlock waits for the guard before it goes on without one.
const READY_WITHIN: Duration = Duration::from_secs(2);

/// airlock's end of the guard: dropped without [`ScreenGuard::dismiss`] (or with airlock
/// gone), the guard restores the terminal.
pub(crate) struct ScreenGuard {
    line: UnixStream,
    child: Child,
}

impl ScreenGuard {
    /// Starts the guard (this same binary, under [`ARG0`]) and waits until it has the
    /// terminal's settings. Call it before the terminal changes. An error says why there is
    /// none; airlock then goes on without one.
    pub(crate) fn start() -> Result<Self, String> {
        if !std::io::stdout().is_terminal() {
            return Err("the output is not a terminal".into());
        }
        let (ours, theirs) =
            UnixStream::pair().map_err(|err| format!("cannot make a socket pair: {err}"))?;
        // Its socket becomes its standard input; airlock's end is close-on-exec, so no other
        // program airlock starts keeps it open after airlock is gone.
        // /proc/self/exe still names this binary if it was replaced since it started.
        let program = if cfg!(target_os = "linux") {
            PathBuf::from("/proc/self/exe")
        } else {
            std::env::current_exe().map_err(|err| format!("cannot find airlock's binary: {err}"))?
        };
        let mut child = Command::new(program)
            .arg0(ARG0)
            .stdin(Stdio::from(OwnedFd::from(theirs)))
            .spawn()
            .map_err(|err| format!("cannot start the screen guard: {err}"))?;
        let mut ours = ours;
        let mut answer = [0u8];
        let ready = ours
            .set_read_timeout(Some(READY_WITHIN))
            .and_then(|()| ours.read_exact(&mut answer));
        if ready.is_err() || answer[0] != READY {
            let _ = child.kill();
            let _ = child.wait();
            return Err("the screen guard did not answer".into());
        }
        Ok(Self { line: ours, child })
    }

    /// airlock has put the terminal back: the guard ends quietly.
    pub(crate) fn dismiss(mut self) {
        let _ = self.line.write_all(&[RESTORED]);
        drop(self.line);
        let _ = self.child.wait();
    }
}

/// When this process is the screen guard, guards and returns its exit status; `None` for any
/// other process.
pub fn enter() -> Option<ExitCode> {
    if std::env::args_os().next().as_deref() != Some(OsStr::new(ARG0)) {
        return None;
    }
    Some(guard())
}

fn guard() -> ExitCode {
    // A session of its own: what the terminal sends airlock's group (a Ctrl-C before raw
    // mode, a hang-up) does not end it, and once airlock's group is no longer in the
    // foreground, setting the terminal does not stop it (SIGTTOU goes only to a process
    // whose controlling terminal it is).
    let _ = rustix::process::setsid();
    let Ok(saved) = rustix::termios::tcgetattr(std::io::stdout()) else {
        return ExitCode::FAILURE;
    };
    let Ok(line) = std::io::stdin().as_fd().try_clone_to_owned() else {
        return ExitCode::FAILURE;
    };
    let mut line = UnixStream::from(line);
    if line.write_all(&[READY]).is_err() {
        return ExitCode::FAILURE;
    }
    // Until airlock's end closes, however airlock ends.
    let mut said = Vec::new();
    let _ = line.read_to_end(&mut said);
    if said.last() != Some(&RESTORED) {
        restore(&saved);
    }
    ExitCode::SUCCESS
}

/// What airlock's own restore does, from outside it, then a line that says so.
fn restore(saved: &Termios) {
    let mut sequence = Vec::new();
    let _ = crossterm::queue!(
        sequence,
        DisableMouseCapture,
        DisableBracketedPaste,
        ResetColor,
        LeaveAlternateScreen,
        Show
    );
    let mut tty = std::io::stdout();
    let _ = tty.write_all(&sequence).and_then(|()| tty.flush());
    let _ = rustix::termios::tcsetattr(&tty, OptionalActions::Now, saved);
    let _ = write!(
        std::io::stderr(),
        "\r\nairlock: airlock ended without putting the terminal back: it aborted, crashed or \
         was killed\r\n(running out of memory is one way). The screen guard has restored the \
         terminal.\r\n"
    );
}
