//! airlock's end of the line to the supervisor: its stdin, on which requests go, and its
//! stdout, on which only frames come, as the backend hands them over (for Docker, the
//! session container's attached streams). A block's output never
//! reaches this stream but inside an output frame, so the reader counts bytes and never
//! scans them; a frame longer than [`frame::MAX_PAYLOAD`] breaks the line, which bounds
//! what is buffered here.

use std::collections::VecDeque;
use std::pin::Pin;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::supervisor::frame::{self, Decoder, Frame};

/// How much of what the supervisor says on its stderr is kept, for an error message.
const COMPLAINTS: usize = 4096;
/// Chunks read ahead of the decoder: few, so a flood waits in the container, not here.
const READ_AHEAD: usize = 8;

/// What comes up the line.
pub(crate) enum Said {
    /// Bytes of the supervisor's stdout: frames, and nothing else.
    Frames(Bytes),
    /// Bytes of its own stderr (a block's never comes here).
    Complaint(Bytes),
    /// The line broke, and why.
    Broken(String),
}

pub(crate) struct Link {
    input: Pin<Box<dyn AsyncWrite + Send>>,
    /// Filled by a task that reads the stream all the time, so that the end of the
    /// supervisor is seen as soon as it comes, between blocks too.
    output: mpsc::Receiver<Said>,
    reader: tokio::task::JoinHandle<()>,
    decoder: Decoder,
    ready: VecDeque<Frame>,
    /// The supervisor's own stderr (a block's never comes here): for the error that says
    /// why it stopped.
    complaints: String,
    broken: Option<String>,
}

impl Link {
    /// The line over the supervisor's `input` and what it says (`said`, which ends when the
    /// supervisor does).
    pub(crate) fn new(
        input: Pin<Box<dyn AsyncWrite + Send>>,
        said: impl Stream<Item = Said> + Send + Unpin + 'static,
    ) -> Self {
        let (tx, output) = mpsc::channel(READ_AHEAD);
        let mut stream = said;
        let reader = tokio::spawn(async move {
            while let Some(chunk) = stream.next().await {
                if tx.send(chunk).await.is_err() {
                    break;
                }
            }
        });
        Self {
            input,
            output,
            reader,
            decoder: Decoder::default(),
            ready: VecDeque::new(),
            complaints: String::new(),
            broken: None,
        }
    }

    pub(crate) async fn send(&mut self, request: &Frame) -> Result<(), String> {
        if let Some(why) = &self.broken {
            return Err(why.clone());
        }
        let mut bytes = Vec::new();
        request.encode(&mut bytes);
        let written = async {
            self.input.write_all(&bytes).await?;
            self.input.flush().await
        };
        written
            .await
            .map_err(|err| self.fail(format!("cannot write to the supervisor: {err}")))
    }

    /// The next frame, or `None` when `deadline` passes first. An error means the line is
    /// gone for good: the supervisor exited or sent something that is not a frame.
    pub(crate) async fn next(
        &mut self,
        deadline: tokio::time::Instant,
    ) -> Result<Option<Frame>, String> {
        loop {
            if let Some(frame) = self.ready.pop_front() {
                return Ok(Some(frame));
            }
            if let Some(why) = &self.broken {
                return Err(why.clone());
            }
            match tokio::time::timeout_at(deadline, self.output.recv()).await {
                Err(_) => return Ok(None),
                Ok(chunk) => self.take(chunk),
            }
        }
    }

    /// Whether the supervisor is still there and silent, as it is between blocks; looks only
    /// at what has already arrived.
    pub(crate) fn is_idle(&mut self) -> bool {
        while self.broken.is_none() {
            match self.output.try_recv() {
                Ok(chunk) => self.take(Some(chunk)),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => self.take(None),
            }
        }
        if self.broken.is_none() && !self.ready.is_empty() {
            self.fail("the supervisor spoke while no block ran".into());
        }
        self.broken.is_none()
    }

    /// Why the line is gone, with the supervisor's last words.
    pub(crate) fn why_gone(&self) -> String {
        let why = self
            .broken
            .as_deref()
            .unwrap_or("the supervisor stopped answering");
        let said = crate::output::sanitize::neutralize(self.complaints.trim());
        if said.is_empty() {
            why.to_string()
        } else {
            format!("{why} (it said: {said})")
        }
    }

    fn take(&mut self, chunk: Option<Said>) {
        match chunk {
            None => {
                self.fail("the supervisor exited".into());
            }
            Some(Said::Broken(why)) => {
                self.fail(format!("the line to the supervisor broke: {why}"));
            }
            Some(Said::Frames(message)) => match self.decoder.push(&message) {
                Ok(frames) => self.ready.extend(frames),
                Err(err) => {
                    self.fail(format!("the supervisor's stream is broken: {err}"));
                }
            },
            Some(Said::Complaint(message)) => {
                let room = COMPLAINTS.saturating_sub(self.complaints.len());
                let text = String::from_utf8_lossy(&message);
                self.complaints.extend(text.chars().take(room));
            }
        }
    }

    fn fail(&mut self, why: String) -> String {
        self.broken.get_or_insert(why).clone()
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// The frame limit is what bounds this reader's memory; the supervisor never sends more.
const _: () = assert!(frame::OUTPUT_CHUNK < frame::MAX_PAYLOAD);

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(frames: &[Frame]) -> Bytes {
        let mut bytes = Vec::new();
        for frame in frames {
            frame.encode(&mut bytes);
        }
        Bytes::from(bytes)
    }

    fn deadline() -> tokio::time::Instant {
        tokio::time::Instant::now() + std::time::Duration::from_secs(5)
    }

    /// A frame split across chunks arrives whole; the supervisor's stderr is kept for the
    /// reason; the end of the stream is the supervisor's end.
    #[tokio::test]
    async fn frames_come_whole_and_the_end_says_why_with_the_last_words() {
        let bytes = frames(&[Frame::Stdout(b"hello".to_vec()), Frame::Busy]);
        let (first, rest) = bytes.split_at(3);
        let said = futures_util::stream::iter(vec![
            Said::Frames(Bytes::copy_from_slice(first)),
            Said::Complaint(Bytes::from_static(b"supervise: \x1b[31mout of memory")),
            Said::Frames(Bytes::copy_from_slice(rest)),
        ]);
        let mut link = Link::new(Box::pin(tokio::io::sink()), said);
        let first = link.next(deadline()).await;
        assert!(matches!(first, Ok(Some(Frame::Stdout(b))) if b == b"hello"));
        assert!(matches!(link.next(deadline()).await, Ok(Some(Frame::Busy))));
        assert!(link.next(deadline()).await.is_err());
        let why = link.why_gone();
        assert!(
            why.starts_with("the supervisor exited (it said: supervise:"),
            "{why}"
        );
        assert!(!why.contains('\x1b'), "{why:?}");
        assert!(
            link.send(&Frame::Cancel).await.is_err(),
            "a gone line takes nothing"
        );
    }

    #[tokio::test]
    async fn a_broken_stream_or_bytes_that_are_no_frame_end_the_line() {
        let broken = futures_util::stream::iter(vec![Said::Broken("connection reset".into())]);
        let mut link = Link::new(Box::pin(tokio::io::sink()), broken);
        assert!(link.next(deadline()).await.is_err());
        assert_eq!(
            link.why_gone(),
            "the line to the supervisor broke: connection reset"
        );
        let garbage = futures_util::stream::iter(vec![Said::Frames(Bytes::from_static(
            b"\xff\xff\xff\xff\xff\xff\xff\xffnot a frame",
        ))]);
        let mut link = Link::new(Box::pin(tokio::io::sink()), garbage);
        assert!(link.next(deadline()).await.is_err());
        assert!(
            link.why_gone()
                .starts_with("the supervisor's stream is broken")
        );
    }
}
