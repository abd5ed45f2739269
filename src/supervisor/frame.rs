//! The supervisor's wire format: every message is a frame of one kind byte, a big-endian
//! u32 length and that many bytes. A block's output only ever travels inside the payload of
//! an output frame, so nothing it prints can be read as a frame boundary, a status or a marker:
//! the reader counts bytes, it never scans them.

use serde::{Deserialize, Serialize};

/// The largest payload airlock accepts from the supervisor; a longer length means a broken
/// stream. Output comes in pieces of [`OUTPUT_CHUNK`], so this bounds what airlock buffers.
pub(crate) const MAX_PAYLOAD: usize = 1 << 20;
/// The largest request the supervisor accepts: a run request carries the whole code.
pub(crate) const MAX_REQUEST: usize = 64 << 20;
/// Output is sent in pieces of at most this many bytes.
pub(crate) const OUTPUT_CHUNK: usize = 64 * 1024;
const HEADER: usize = 5;

/// How a block ended, as the supervisor saw it with waitpid.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitReport {
    /// The exit code, when the process exited by itself.
    pub exit_code: Option<i32>,
    /// The signal that ended it, when one did.
    pub signal: Option<i32>,
    pub timed_out: bool,
    pub cancelled: bool,
    /// Processes of the code's uid still alive after the end-of-block kill: the container
    /// must be replaced when this is not empty.
    pub survivors: Vec<u32>,
    pub duration_ms: u64,
    /// Kills by the kernel's OOM killer in the container's memory cgroup during the block.
    #[serde(default)]
    pub oom_kills: u64,
    /// /workspace had no byte or no inode left when the block ended.
    #[serde(default)]
    pub workspace_full: bool,
    /// What of the workspace could not be copied between it and the host, and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_problem: Option<String>,
    /// The block was not started, and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_run: Option<String>,
    /// What the copy out to the host directory wrote or removed there, relative to it:
    /// an engine's volume behind that directory is read back path by path. Absent when it is
    /// not known (too many, a hard link, no copy): the whole tree is read back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pushed: Option<Vec<String>>,
    /// Changes the block made to git metadata that were kept from the host (relative paths,
    /// for the host to draw), and how many more there were.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub git_kept_back: Vec<String>,
    #[serde(default)]
    pub git_kept_back_more: u64,
}

impl ExitReport {
    /// For a block that was not started.
    pub(crate) fn not_run(why: String) -> Self {
        Self {
            not_run: Some(why),
            ..Self::default()
        }
    }

    /// The exit status as a shell gives it: the code, or 128 + the signal that ended it.
    pub(crate) fn shell_status(&self) -> Option<i64> {
        self.exit_code
            .map(i64::from)
            .or(self.signal.map(|signal| 128 + i64::from(signal)))
    }
}

/// What the supervisor says of itself when it starts: airlock checks it before any block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub(crate) version: String,
    /// Its own uid, and the uid blocks run as.
    pub(crate) uid: u32,
    pub(crate) code_uid: u32,
    /// Its effective capabilities, as the bit mask of /proc/self/status (`CapEff`).
    pub(crate) capabilities: u64,
    pub(crate) no_new_privileges: bool,
    /// The room of /workspace when it is the capped tmpfs mirrored to the host.
    #[serde(default)]
    pub(crate) workspace: Option<WorkspaceRoom>,
}

/// What the kernel lets /workspace hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct WorkspaceRoom {
    pub(crate) bytes: u64,
    pub(crate) inodes: u64,
}

/// What airlock asks of the supervisor for one block; the code travels after it, raw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRequest {
    /// The interpreter and its arguments; the code file's path is appended.
    pub argv: Vec<String>,
    pub extension: String,
    pub env: Vec<(String, String)>,
    pub timeout_ms: u64,
    /// After SIGTERM at the time limit, how long before everything is killed (a cancel kills
    /// at once).
    #[serde(default)]
    pub grace_ms: u64,
    /// The interpreter opens its script only once it has started (CPython): the next block's
    /// may be started ahead, as soon as this one is over.
    #[serde(default)]
    pub start_ahead: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    Exit(ExitReport),
    /// The supervisor could not do what it was asked (it says why).
    Fault(String),
    /// The supervisor's first frame.
    Hello(Hello),
    /// The supervisor is still at work on the block without output to show (copying the
    /// workspace): airlock's backstop deadline moves on.
    Busy,
    /// From airlock: run this code.
    Run(RunRequest, Vec<u8>),
    /// From airlock: stop the running block.
    Cancel,
}

const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const EXIT: u8 = 3;
const FAULT: u8 = 4;
const HELLO: u8 = 5;
const BUSY: u8 = 6;
const RUN: u8 = 16;
const CANCEL: u8 = 17;

impl Frame {
    /// Appends the frame's bytes to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let (kind, payload): (u8, std::borrow::Cow<'_, [u8]>) = match self {
            Self::Stdout(bytes) => (STDOUT, bytes.into()),
            Self::Stderr(bytes) => (STDERR, bytes.into()),
            Self::Exit(report) => (EXIT, serde_json::to_vec(report).unwrap_or_default().into()),
            Self::Fault(why) => (FAULT, why.as_bytes().into()),
            Self::Hello(hello) => (HELLO, serde_json::to_vec(hello).unwrap_or_default().into()),
            Self::Run(request, code) => {
                let header = serde_json::to_vec(request).unwrap_or_default();
                let mut payload = (header.len() as u32).to_be_bytes().to_vec();
                payload.extend_from_slice(&header);
                payload.extend_from_slice(code);
                (RUN, payload.into())
            }
            Self::Busy => (BUSY, Vec::new().into()),
            Self::Cancel => (CANCEL, Vec::new().into()),
        };
        out.push(kind);
        let length = u32::try_from(payload.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&length.to_be_bytes());
        out.extend_from_slice(&payload);
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("a frame of unknown kind {0} came")]
    UnknownKind(u8),
    #[error("a frame of {length} bytes was announced (at most {limit} are allowed)")]
    TooLong { length: usize, limit: usize },
    #[error("a frame's content does not parse: {0}")]
    BadReport(String),
}

/// Turns a byte stream, in chunks of any size, back into frames.
#[derive(Debug)]
pub struct Decoder {
    pending: Vec<u8>,
    limit: usize,
}

impl Default for Decoder {
    /// A decoder for what the supervisor sends.
    fn default() -> Self {
        Self::with_limit(MAX_PAYLOAD)
    }
}

impl Decoder {
    /// A decoder that refuses frames longer than `limit` bytes.
    pub(crate) fn with_limit(limit: usize) -> Self {
        Self {
            pending: Vec::new(),
            limit,
        }
    }

    /// Takes in a chunk; returns the frames it completes. After an error the stream cannot
    /// be trusted any more, and the caller stops reading it.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<Frame>, FrameError> {
        self.pending.extend_from_slice(chunk);
        let mut frames = Vec::new();
        let mut at = 0;
        while self.pending.len() - at >= HEADER {
            let kind = self.pending[at];
            let mut length = [0; 4];
            length.copy_from_slice(&self.pending[at + 1..at + HEADER]);
            let length = u32::from_be_bytes(length) as usize;
            if length > self.limit {
                return Err(FrameError::TooLong {
                    length,
                    limit: self.limit,
                });
            }
            if self.pending.len() - at - HEADER < length {
                break;
            }
            let payload = self.pending[at + HEADER..at + HEADER + length].to_vec();
            frames.push(decode(kind, payload)?);
            at += HEADER + length;
        }
        self.pending.drain(..at);
        Ok(frames)
    }

    /// Bytes of a frame not yet complete.
    #[cfg(test)]
    pub(crate) fn buffered(&self) -> usize {
        self.pending.len()
    }
}

fn decode(kind: u8, payload: Vec<u8>) -> Result<Frame, FrameError> {
    Ok(match kind {
        STDOUT => Frame::Stdout(payload),
        STDERR => Frame::Stderr(payload),
        EXIT => Frame::Exit(
            serde_json::from_slice(&payload)
                .map_err(|err| FrameError::BadReport(err.to_string()))?,
        ),
        FAULT => Frame::Fault(String::from_utf8_lossy(&payload).into_owned()),
        BUSY => Frame::Busy,
        HELLO => Frame::Hello(
            serde_json::from_slice(&payload)
                .map_err(|err| FrameError::BadReport(err.to_string()))?,
        ),
        RUN => run_request(&payload)?,
        CANCEL => Frame::Cancel,
        other => return Err(FrameError::UnknownKind(other)),
    })
}

/// A run request: the header's length, the header, then the code.
fn run_request(payload: &[u8]) -> Result<Frame, FrameError> {
    let broken = || FrameError::BadReport("a run request is cut short".into());
    let length: [u8; 4] = payload
        .get(..4)
        .ok_or_else(broken)?
        .try_into()
        .map_err(|_| broken())?;
    let end = 4 + u32::from_be_bytes(length) as usize;
    let header = payload.get(4..end).ok_or_else(broken)?;
    let request =
        serde_json::from_slice(header).map_err(|err| FrameError::BadReport(err.to_string()))?;
    Ok(Frame::Run(request, payload[end..].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(exit_code: i32) -> ExitReport {
        ExitReport {
            exit_code: Some(exit_code),
            duration_ms: 7,
            ..ExitReport::default()
        }
    }

    #[test]
    fn output_that_imitates_frames_stays_output() {
        // A block prints what an exit frame saying "0" looks like.
        let mut forged = Vec::new();
        Frame::Exit(report(0)).encode(&mut forged);
        let frames = [
            Frame::Stdout(forged.clone()),
            Frame::Stderr(b"\x03\x00\x00\x00\x02{}".to_vec()),
            Frame::Exit(report(3)),
            Frame::Run(
                RunRequest {
                    argv: vec!["python3".into()],
                    extension: "py".into(),
                    env: vec![("HOME".into(), "/tmp".into())],
                    timeout_ms: 5000,
                    grace_ms: 1000,
                    start_ahead: true,
                },
                forged,
            ),
            Frame::Busy,
            Frame::Cancel,
        ];
        let mut wire = Vec::new();
        for frame in &frames {
            frame.encode(&mut wire);
        }
        let mut decoder = Decoder::default();
        // Byte by byte: frames never depend on how the stream is cut.
        let mut seen = Vec::new();
        for byte in &wire {
            seen.extend(decoder.push(std::slice::from_ref(byte)).unwrap());
        }
        assert_eq!(seen, frames);
        assert_eq!(decoder.buffered(), 0);
    }

    #[test]
    fn a_length_past_the_limit_or_an_unknown_kind_breaks_the_stream() {
        let mut decoder = Decoder::default();
        let mut huge = vec![STDOUT];
        huge.extend_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(
            decoder.push(&huge),
            Err(FrameError::TooLong {
                length: u32::MAX as usize,
                limit: MAX_PAYLOAD
            })
        );
        let mut decoder = Decoder::default();
        assert_eq!(
            decoder.push(&[9, 0, 0, 0, 0]),
            Err(FrameError::UnknownKind(9))
        );
    }

    #[test]
    fn a_partial_frame_waits_for_the_rest() {
        let mut wire = Vec::new();
        Frame::Stdout(b"hello".to_vec()).encode(&mut wire);
        let mut decoder = Decoder::default();
        assert!(decoder.push(&wire[..7]).unwrap().is_empty());
        assert_eq!(decoder.buffered(), 7);
        assert_eq!(
            decoder.push(&wire[7..]).unwrap(),
            [Frame::Stdout(b"hello".to_vec())]
        );
    }
}
