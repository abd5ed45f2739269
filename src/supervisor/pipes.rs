//! A block's two output pipes, read with poll by the thread that sends the frames. What a pipe
//! holds is read the moment the supervisor looks at it: output written before the block ended
//! never waits on a reader thread the scheduler has not run yet, and on a loaded host it is
//! never given up for lost while it sits in the pipe.

use std::fs::File;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::process::{ChildStderr, ChildStdout};
use std::time::Duration;

use rustix::event::{PollFd, PollFlags, Timespec, poll};

use super::frame::{Frame, OUTPUT_CHUNK};

/// What each pipe holds: the most an unprivileged process may ask for (fs.pipe-max-size).
pub(crate) const PIPE_SIZE: usize = 1 << 20;

/// Makes the frame a pipe's output travels in.
type Framing = fn(Vec<u8>) -> Frame;

/// The pipes still open, each with the kind of frame its output travels in.
pub(crate) struct Pipes {
    open: Vec<(File, Framing)>,
    buffer: Vec<u8>,
}

impl Pipes {
    pub(crate) fn new(stdout: ChildStdout, stderr: ChildStderr) -> Self {
        let open: Vec<(File, Framing)> = vec![
            (File::from(OwnedFd::from(stdout)), Frame::Stdout),
            (File::from(OwnedFd::from(stderr)), Frame::Stderr),
        ];
        // Room for the block to write on while a frame is being sent: one thread both reads
        // and sends. Without it (the user's pipe pages used up), output is only slower.
        for (pipe, _) in &open {
            let _ = rustix::pipe::fcntl_setpipe_size(pipe, PIPE_SIZE);
        }
        Self {
            open,
            buffer: vec![0; OUTPUT_CHUNK],
        }
    }

    /// Whether both pipes reached their end.
    pub(crate) fn all_closed(&self) -> bool {
        self.open.is_empty()
    }

    /// Waits up to `wait` for a pipe to hold output or reach its end, then reads each such
    /// pipe once: its output goes to `send`, a pipe at its end is closed. Returns the bytes
    /// read, or `None` when no pipe was ready within `wait`.
    pub(crate) fn read_ready(
        &mut self,
        wait: Duration,
        send: &mut dyn FnMut(Frame),
    ) -> Option<usize> {
        let ready = self.ready(wait)?;
        let mut bytes = 0;
        // From the last, so that closing one leaves the indices of the others as they were.
        for index in ready.into_iter().rev() {
            let (pipe, frame) = &mut self.open[index];
            match pipe.read(&mut self.buffer) {
                Ok(0) => {
                    self.open.remove(index);
                }
                Ok(read) => {
                    bytes += read;
                    send(frame(self.buffer[..read].to_vec()));
                }
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.open.remove(index);
                }
            }
        }
        Some(bytes)
    }

    /// The indices of the pipes that can be read without waiting.
    fn ready(&self, wait: Duration) -> Option<Vec<usize>> {
        if self.open.is_empty() {
            return None;
        }
        let mut fds: Vec<PollFd<'_>> = self
            .open
            .iter()
            .map(|(pipe, _)| PollFd::new(pipe, PollFlags::IN))
            .collect();
        let timeout = Timespec::try_from(wait).unwrap_or(Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        });
        match poll(&mut fds, Some(&timeout)) {
            Ok(0) | Err(_) => None,
            // Output, the end of the pipe (HUP) or an error: a read says which.
            Ok(_) => Some(
                fds.iter()
                    .enumerate()
                    .filter(|(_, fd)| !fd.revents().is_empty())
                    .map(|(index, _)| index)
                    .collect(),
            ),
        }
    }
}
