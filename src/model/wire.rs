//! The HTTP service under the OpenAI client: reqwest, with every response body watched so
//! that no single server-sent event can grow past a bound. The SSE parser keeps an event
//! whole until its blank line, so a server that sends one endless `data:` line would
//! otherwise fill memory before the reply's own bound (`model.max_reply_bytes`) ever sees a
//! byte of it. An event too large for any reply inside that bound ends the body there.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_openai::error::OpenAIError;
use async_openai::middleware::HttpRequestFactory;
use bytes::Bytes;
use futures_util::StreamExt;

/// The largest event a reply of `reply_bytes` can need: JSON may write a byte of text as
/// six (`\u0000`), and the chunk around it adds its ids and fields.
pub(super) fn event_bound(reply_bytes: usize) -> usize {
    reply_bytes.saturating_mul(6).saturating_add(64 << 10)
}

/// A tower service that sends requests with `http` and bounds the events of each response
/// to `max_event` bytes; `oversized` is set when one was cut off.
pub(super) fn bounded_service(
    http: reqwest::Client,
    max_event: usize,
    oversized: Arc<AtomicBool>,
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
        let oversized = Arc::clone(&oversized);
        async move {
            let request = factory.build().await?;
            let response = http.execute(request).await.map_err(OpenAIError::Reqwest)?;
            Ok(bounded(response, max_event, oversized))
        }
    })
}

/// The same response, its body ending before the first event longer than `max_event`.
fn bounded(
    response: reqwest::Response,
    max_event: usize,
    oversized: Arc<AtomicBool>,
) -> reqwest::Response {
    let status = response.status();
    let version = response.version();
    let headers = response.headers().clone();
    let start = (response.bytes_stream(), EventSizes::new(max_event));
    // After the cut the state is gone: the body ends at once, and the connection with it.
    let body = futures_util::stream::unfold(Some(start), move |state| {
        let oversized = Arc::clone(&oversized);
        async move {
            let (mut chunks, mut sizes) = state?;
            match chunks.next().await? {
                Err(err) => Some((Err(err), None)),
                Ok(bytes) => match sizes.fits(&bytes) {
                    None => Some((Ok(bytes), Some((chunks, sizes)))),
                    Some(at) => {
                        oversized.store(true, Ordering::SeqCst);
                        Some((Ok(bytes.slice(..at)), None))
                    }
                },
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
/// without `\r`) on.
#[derive(Debug)]
struct EventSizes {
    max_event: usize,
    event: usize,
    /// Bytes of the current line other than `\r`.
    line: usize,
}

impl EventSizes {
    fn new(max_event: usize) -> Self {
        Self {
            max_event,
            event: 0,
            line: 0,
        }
    }

    /// `None` when all of `bytes` fits; else where the event that outgrew the bound is cut.
    fn fits(&mut self, bytes: &Bytes) -> Option<usize> {
        for (at, byte) in bytes.iter().enumerate() {
            match byte {
                b'\n' if self.line == 0 => self.event = 0,
                b'\n' => self.line = 0,
                b'\r' => {}
                _ => self.line += 1,
            }
            if *byte != b'\n' || self.event != 0 {
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
}
