//! A block's interpreter started ahead of its code, so a block does not wait for it.
//!
//! Once a block is over and swept, the supervisor starts the next one's interpreter (CPython,
//! whose start is most of a small block's time) on the path the next code will have, which is
//! a FIFO for now. CPython opens its script only once it has started, so it starts and then
//! waits in that open, having run nothing of anyone's. When the next block comes and asks for
//! the same interpreter and environment, its code goes in: first a regular file with the code
//! replaces the FIFO at that path, then the code is written into the FIFO the interpreter holds
//! and the FIFO closed. So the interpreter reads exactly the approved code, and runs it as the
//! script it is (`sys.argv`, `__file__`, `sys.path[0]`, tracebacks with their lines), while
//! whatever reads the path later finds the same code in a file. Anything else (another
//! interpreter, another environment, a source that declares an encoding a FIFO cannot be
//! re-read in, an interpreter that did not get as far as the open) and the block starts cold,
//! as before.
//!
//! Nothing of a block reaches the next through this: the interpreter is started after the
//! sweep, as a fresh process of the code's uid when no other exists, in a directory only the
//! supervisor may write until the code is in place; its time limit starts with the block.

use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

use super::launch::{BlockRun, Spawned, Status, spawn};
use super::pipes::Pipes;
use super::reap;

/// How long a block waits for its interpreter to reach the open, before it starts cold.
const PATIENCE: Duration = Duration::from_secs(5);

/// An interpreter waiting for its code.
pub(super) struct Warm {
    argv: Vec<String>,
    extension: String,
    env: Vec<(String, String)>,
    /// Its private directory, the supervisor's until the code is in place.
    dir: PathBuf,
    /// The process and its pipes, until the code is handed over.
    process: Option<(u32, Pipes, mpsc::Receiver<Status>)>,
}

impl Warm {
    /// Starts the interpreter `block` asked for, for the next block; `None` when it cannot be
    /// (the next block starts cold).
    pub(super) fn start(block: &BlockRun) -> Option<Self> {
        let dir = super::launch::private_dir(block).ok()?;
        let mut warm = Self {
            argv: block.argv.clone(),
            extension: block.extension.clone(),
            env: block.env.clone(),
            dir,
            process: None,
        };
        let script = warm.script();
        rustix::fs::mkfifoat(rustix::fs::CWD, &script, Mode::RUSR).ok()?;
        std::os::unix::fs::chown(&script, Some(block.uid), Some(block.gid)).ok()?;
        // The interpreter must reach the FIFO, and nothing more: no listing, no writing.
        std::fs::set_permissions(&warm.dir, std::fs::Permissions::from_mode(0o711)).ok()?;
        let _ = block.font_cache.place(&block.env, block.uid, block.gid);
        if let Ok(Spawned::Running(leader, pipes, exits)) = spawn(block, &script) {
            warm.process = Some((leader, pipes, exits));
        }
        warm.process.is_some().then_some(warm)
    }

    /// Whether it was started for what `block` asks.
    pub(super) fn fits(&self, block: &BlockRun) -> bool {
        self.argv == block.argv
            && self.extension == block.extension
            && self.env == block.env
            && !declares_another_encoding(&block.code)
    }

    fn script(&self) -> PathBuf {
        self.dir.join(format!("block.{}", self.extension))
    }

    /// Gives the interpreter `block`'s code; its directory and process then, or `None` when
    /// it could not take it (the block starts cold, and this one is killed).
    pub(super) fn hand_over(mut self, block: &BlockRun) -> Option<(PathBuf, Spawned)> {
        let fifo = self.open_fifo()?;
        let script = self.script();
        let file = self.dir.join(format!(".block.{}", self.extension));
        super::launch::write_code(&file, &block.code, block.uid, block.gid).ok()?;
        // In place before the interpreter can run a line: it runs nothing before the FIFO ends.
        std::fs::rename(&file, &script).ok()?;
        std::os::unix::fs::chown(&self.dir, Some(block.uid), Some(block.gid)).ok()?;
        std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700)).ok()?;
        // When the code cannot all go in, the interpreter is killed (on drop) before it runs
        // a part of it.
        if !feed(fifo, block.code.clone()) {
            return None;
        }
        let (leader, pipes, exits) = self.process.take()?;
        Some((
            std::mem::take(&mut self.dir),
            Spawned::Running(leader, pipes, exits),
        ))
    }

    /// The FIFO's writing end (non-blocking), once the interpreter holds its reading end;
    /// `None` when the interpreter ended, or did not get there in time.
    fn open_fifo(&self) -> Option<OwnedFd> {
        let (_, _, exits) = self.process.as_ref()?;
        let script = self.script();
        let until = Instant::now() + PATIENCE;
        let flags = OFlags::WRONLY | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOFOLLOW;
        loop {
            match rustix::fs::open(&script, flags, Mode::empty()) {
                Ok(fd) => return Some(fd),
                // No reader yet: the interpreter is still starting.
                Err(Errno::NXIO) if Instant::now() < until => {
                    if exits.try_recv().is_ok() {
                        return None;
                    }
                    std::thread::sleep(Duration::from_micros(200));
                }
                Err(_) => return None,
            }
        }
    }
}

impl Drop for Warm {
    /// One that was never handed code is killed (it is the only process of the code's uid:
    /// it was started after the sweep and ran nothing) and its directory removed.
    fn drop(&mut self) {
        if let Some((leader, _, exits)) = self.process.take() {
            reap::kill_one(leader);
            let _ = exits.recv_timeout(Duration::from_secs(1));
            reap::collect_zombies();
        }
        if !self.dir.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Writes the code into the FIFO and closes it. What the pipe takes at once is written here
/// (a small block's code, all of it: no thread to start); the rest, on a thread of its own,
/// as the interpreter reads while it parses, and the supervisor meanwhile passes its output
/// on. That write ends when the interpreter has read everything, or has ended (a syntax
/// error stops the reading).
/// Returns false when the rest could not be handed to the thread: the interpreter must not
/// run what it got.
fn feed(fifo: OwnedFd, code: Vec<u8>) -> bool {
    let mut written = 0;
    while written < code.len() {
        match rustix::io::write(&fifo, &code[written..]) {
            Ok(count) => written += count,
            Err(Errno::INTR) => {}
            // Full (the rest goes from the thread), or the interpreter is gone.
            Err(_) => break,
        }
    }
    if written == code.len() {
        return true;
    }
    if rustix::fs::fcntl_setfl(&fifo, OFlags::empty()).is_err() {
        return false;
    }
    std::thread::spawn(move || {
        let _ = std::fs::File::from(fifo).write_all(&code[written..]);
    });
    true
}

/// Whether the code declares a source encoding other than UTF-8 (PEP 263, in its first two
/// lines): CPython re-reads such a file from the start, which a FIFO cannot do.
fn declares_another_encoding(code: &[u8]) -> bool {
    let code = code.strip_prefix(b"\xef\xbb\xbf").unwrap_or(code);
    code.split(|&byte| byte == b'\n').take(2).any(|line| {
        let line = String::from_utf8_lossy(line);
        let Some(comment) = line
            .trim_start_matches([' ', '\t', '\x0c'])
            .strip_prefix('#')
        else {
            return false;
        };
        let Some(at) = comment.find("coding") else {
            return false;
        };
        let rest = &comment[at + "coding".len()..];
        let Some(rest) = rest.strip_prefix([':', '=']) else {
            return false;
        };
        let name: String = rest
            .trim_start_matches([' ', '\t'])
            .chars()
            .take_while(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'))
            .collect::<String>()
            .to_lowercase()
            .replace('_', "-");
        !(name == "utf-8" || name == "utf8" || name.starts_with("utf-8-"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_encoding_other_than_utf8_is_noticed_in_the_first_two_lines_only() {
        let declares = |code: &str| declares_another_encoding(code.as_bytes());
        assert!(declares("# -*- coding: latin-1 -*-\nprint(1)\n"));
        assert!(declares(
            "#!/usr/bin/env python3\n# vim: set fileencoding=cp1252 :\n"
        ));
        assert!(!declares("# -*- coding: utf-8 -*-\nprint(1)\n"));
        assert!(!declares("# coding=UTF_8\n"));
        // Past the second line it is a comment; on the second, after code, CPython ignores it
        // too, but going cold there costs only the head start.
        assert!(!declares("print(1)\nprint(2)\n# coding: latin-1\n"));
        assert!(declares("print(1)\n# coding: latin-1\n"));
        assert!(!declares("x = 1  # not a coding: latin-1 comment\n"));
        assert!(!declares("print('coding: latin-1')\n"));
    }
}
