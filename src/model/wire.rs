//! The HTTP service under the OpenAI client: reqwest, with every response body watched so
//! that no single server-sent event can grow past a bound. The SSE parser keeps an event
//! whole until its blank line, so a server that sends one endless `data:` line would
//! otherwise fill memory before the reply's own bound (`model.max_reply_bytes`) ever sees a
//! byte of it. An event too large for any reply inside that bound ends the body there.
//!
//! A streamed body is also kept from running ahead of the reply's reader: the client reads it
//! in a task of its own into an unbounded queue, so a server streaming faster than airlock
//! takes its chunks in (chunks that carry nothing are never charged to the reply) would fill
//! memory however small the reply. An error body, which the client reads whole, ends at the
//! event bound.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use async_openai::error::OpenAIError;
use async_openai::middleware::HttpRequestFactory;
use bytes::Bytes;
use futures_util::{FutureExt, Stream, StreamExt};
use tokio::sync::Notify;

/// How many bytes of a streamed body may be handed to the client's reader before the reply's
/// reader has taken in what came before.
const AHEAD: u64 = 64 << 10;

/// How often a reader that waits says again that it has taken everything in: events that
/// reach it as nothing (comments, keep-alives) or one event longer than [`AHEAD`] would
/// otherwise hold the body back with the reader waiting for it.
const WAITING_TICK: Duration = Duration::from_millis(20);

/// The largest event a reply of `reply_bytes` can need: JSON may write a byte of text as
/// six (`\u0000`), and the chunk around it adds its ids and fields.
pub(super) fn event_bound(reply_bytes: usize) -> usize {
    reply_bytes.saturating_mul(6).saturating_add(64 << 10)
}

/// What the HTTP service and the reply's reader share.
#[derive(Debug, Default)]
pub(super) struct Wire {
    /// A body was cut at an event too large for any reply inside the bound.
    oversized: AtomicBool,
    /// A body's read timed out (the HTTP client's read timeout).
    timed_out: AtomicBool,
    /// Bytes of streamed bodies handed to the client's reader.
    passed: AtomicU64,
    /// Of those, what the reply's reader has taken in: all that had been passed when it last
    /// found nothing waiting.
    taken: AtomicU64,
    caught_up: Notify,
}

impl Wire {
    /// A new reply starts: no body of it was cut yet.
    pub(super) fn start_reply(&self) {
        self.oversized.store(false, Ordering::SeqCst);
        self.timed_out.store(false, Ordering::SeqCst);
    }

    /// The body ended at an event too large for the bound.
    pub(super) fn oversized(&self) -> bool {
        self.oversized.load(Ordering::SeqCst)
    }

    /// A body of the reply ended because the server sent nothing for the read timeout; the
    /// client library passes that on only as text.
    pub(super) fn timed_out(&self) -> bool {
        self.timed_out.load(Ordering::SeqCst)
    }

    /// The stream's next item when one is waiting: `None` when none is.
    pub(super) fn ready<S: Stream + Unpin>(&self, stream: &mut S) -> Option<Option<S::Item>> {
        // Unconstrained: tokio's cooperative budget would otherwise make a full queue look
        // empty now and then, and the body would be let on past the bound.
        tokio::task::unconstrained(stream.next()).now_or_never()
    }

    /// The stream's next item, waited for up to `idle` (`None` when none came); nothing is
    /// waiting (see [`Wire::ready`]), so the body is let on meanwhile.
    pub(super) async fn wait<S: Stream + Unpin>(
        &self,
        stream: &mut S,
        idle: Duration,
    ) -> Option<Option<S::Item>> {
        let deadline = tokio::time::Instant::now() + idle;
        loop {
            self.taken
                .store(self.passed.load(Ordering::SeqCst), Ordering::SeqCst);
            self.caught_up.notify_one();
            let tick = deadline.min(tokio::time::Instant::now() + WAITING_TICK);
            // Cancelling `next` loses nothing: the queue keeps what it holds.
            if let Ok(item) = tokio::time::timeout_at(tick, stream.next()).await {
                return Some(item);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
        }
    }

    /// Waits until the reader has taken in all but [`AHEAD`] bytes of what was passed.
    async fn room(&self) {
        let ahead = || {
            let taken = self.taken.load(Ordering::SeqCst);
            self.passed.load(Ordering::SeqCst).saturating_sub(taken)
        };
        while ahead() > AHEAD {
            self.caught_up.notified().await;
        }
    }
}

/// A tower service that sends requests with `http` and bounds the events of each response
/// to `max_event` bytes, a streamed body to what the reader of `wire` keeps up with.
pub(super) fn bounded_service(
    http: reqwest::Client,
    max_event: usize,
    wire: Arc<Wire>,
) -> impl tower::Service<
    HttpRequestFactory,
    Response = reqwest::Response,
    Error = OpenAIError,
    Future = impl Future<Output = Result<reqwest::Response, OpenAIError>> + Send + 'static,
> + Clone
+ Send
+ Sync
+ 'static {
    tower::service_fn(move |factory: HttpRequestFactory| {
        let http = http.clone();
        let wire = Arc::clone(&wire);
        async move {
            let request = factory.build().await?;
            let response = http.execute(request).await.map_err(OpenAIError::Reqwest)?;
            Ok(bounded(response, max_event, wire))
        }
    })
}

/// The same response, its body ending before the first event longer than `max_event`; a
/// successful (streamed) one handed on no faster than the reader of `wire` takes it in, an
/// error body (read whole) ending at `max_event` bytes.
fn bounded(response: reqwest::Response, max_event: usize, wire: Arc<Wire>) -> reqwest::Response {
    let status = response.status();
    let version = response.version();
    let headers = response.headers().clone();
    let streamed = status.is_success();
    let sizes = if streamed {
        EventSizes::new(max_event)
    } else {
        EventSizes::whole(max_event)
    };
    let start = (response.bytes_stream(), sizes);
    // After the cut the state is gone: the body ends at once, and the connection with it.
    let body = futures_util::stream::unfold(Some(start), move |state| {
        let wire = Arc::clone(&wire);
        async move {
            let (mut chunks, mut sizes) = state?;
            if streamed {
                wire.room().await;
            }
            match chunks.next().await? {
                Err(err) => {
                    if err.is_timeout() {
                        wire.timed_out.store(true, Ordering::SeqCst);
                    }
                    Some((Err(err), None))
                }
                Ok(bytes) => {
                    if streamed {
                        wire.passed.fetch_add(bytes.len() as u64, Ordering::SeqCst);
                    }
                    match sizes.fits(&bytes) {
                        None => Some((Ok(bytes), Some((chunks, sizes)))),
                        Some(at) => {
                            if streamed {
                                wire.oversized.store(true, Ordering::SeqCst);
                            }
                            Some((Ok(bytes.slice(..at)), None))
                        }
                    }
                }
            }
        }
    });
    let mut bounded = http::Response::new(reqwest::Body::wrap_stream(body));
    *bounded.status_mut() = status;
    *bounded.version_mut() = version;
    *bounded.headers_mut() = headers;
    reqwest::Response::from(bounded)
}

/// Counts the bytes of the event being received: from the last blank line (`\n\n`, with or
/// without `\r`) on; or, for a body that is not a stream of events, from its start.
#[derive(Debug)]
struct EventSizes {
    max_event: usize,
    /// A blank line ends an event (else the whole body counts as one).
    split: bool,
    event: usize,
    /// Bytes of the current line other than `\r`.
    line: usize,
}

impl EventSizes {
    fn new(max_event: usize) -> Self {
        Self {
            max_event,
            split: true,
            event: 0,
            line: 0,
        }
    }

    fn whole(max_bytes: usize) -> Self {
        Self {
            split: false,
            ..Self::new(max_bytes)
        }
    }

    /// `None` when all of `bytes` fits; else where the event that outgrew the bound is cut.
    fn fits(&mut self, bytes: &Bytes) -> Option<usize> {
        for (at, byte) in bytes.iter().enumerate() {
            match byte {
                b'\n' if self.line == 0 && self.split => self.event = 0,
                b'\n' => self.line = 0,
                b'\r' => {}
                _ => self.line += 1,
            }
            // Blank lines between events belong to none; a body read whole counts them all.
            if *byte != b'\n' || self.event != 0 || !self.split {
                self.event += 1;
            }
            if self.event > self.max_event {
                return Some(at);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_measured_from_blank_line_to_blank_line() {
        let mut sizes = EventSizes::new(20);
        let small = Bytes::from_static(b"data: {\"a\": 1}\n\ndata: {}\r\n\r\n");
        assert_eq!(sizes.fits(&small), None);
        // Many short lines of one event count together.
        let mut sizes = EventSizes::new(20);
        assert_eq!(sizes.fits(&Bytes::from_static(b"data: 1\ndata: 2\n")), None);
        assert_eq!(sizes.fits(&Bytes::from_static(b"data: 3\n")), Some(4));
        // Across chunks, and reset by each blank line.
        let mut sizes = EventSizes::new(10);
        for _ in 0..100 {
            assert_eq!(sizes.fits(&Bytes::from_static(b"data: ")), None);
            assert_eq!(sizes.fits(&Bytes::from_static(b"1\n\n")), None);
        }
        assert_eq!(sizes.fits(&Bytes::from_static(b"data: 12345678")), Some(10));
    }

    #[test]
    fn an_error_body_read_whole_ends_at_the_bound_blank_lines_and_all() {
        let mut sizes = EventSizes::whole(10);
        assert_eq!(sizes.fits(&Bytes::from_static(b"\n\n\n\n\n")), None);
        assert_eq!(sizes.fits(&Bytes::from_static(b"ab\n\n\n\n\n")), Some(5));
    }
}
