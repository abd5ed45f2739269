//! Capturing a block's output: counted in full, kept up to a cap (head and tail), decoded
//! lossily and neutralized before anything reaches a screen, a file or the model.

pub mod sanitize;

use crate::protocol::Stream;
use sanitize::{Neutralizer, Utf8Decoder, collapse_carriage_returns};

/// What one run printed, as far as it was kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct CapturedOutput {
    /// The first part of the output (at most half the cap).
    pub(crate) head: String,
    /// Bytes of (neutralized) text dropped between head and tail.
    pub(crate) omitted: u64,
    /// The last part of the output (at most half the cap).
    pub(crate) tail: String,
    /// Every byte the program wrote, kept or not.
    pub(crate) produced_bytes: u64,
}

impl CapturedOutput {
    pub(crate) fn truncated(&self) -> bool {
        self.omitted > 0
    }

    /// Where [`Self::text`] puts its omission marker, when it has one.
    pub(crate) fn omission_at(&self) -> Option<usize> {
        self.truncated().then_some(self.head.len())
    }

    /// Head, an explicit marker where text was dropped, and tail.
    pub(crate) fn text(&self) -> String {
        let mut text = self.head.clone();
        if self.truncated() {
            text.push_str(&omission_marker(self.omitted));
        }
        text.push_str(&self.tail);
        text
    }
}

const MARKER_END: &str = " bytes of output omitted ...]\n";

pub(crate) fn omission_marker(omitted: u64) -> String {
    format!("\n[... airlock: {omitted}{MARKER_END}")
}

/// The head and tail of a kept output around the omission marker that begins at `at` (from
/// [`CapturedOutput::omission_at`]); `None` when no marker is there.
pub(crate) fn split_at_omission(text: &str, at: usize) -> Option<(&str, &str)> {
    let rest = text.get(at..)?;
    if !rest.starts_with("\n[... airlock: ") {
        return None;
    }
    let end = rest.find(MARKER_END)?;
    Some((&text[..at], &rest[end + MARKER_END.len()..]))
}

/// Feeds chunks of both streams, in arrival order, into a bounded record.
#[derive(Debug)]
pub(crate) struct OutputCapture {
    half: usize,
    head: String,
    tail: String,
    omitted: u64,
    produced_bytes: u64,
    /// Set once anything went to the tail: later small chunks must not slip into the head
    /// ahead of text already in the tail.
    head_closed: bool,
    streams: [StreamState; 2],
}

/// A partial line longer than this is recorded without waiting for its newline.
const MAX_PARTIAL_LINE: usize = 4096;

#[derive(Debug)]
struct StreamState {
    decoder: Utf8Decoder,
    neutralizer: Neutralizer,
    /// Neutralized text after the stream's last newline. Docker does not keep the two
    /// streams' order and unbuffered programs write a line in pieces, so whole lines are
    /// recorded, and a stderr line never lands in the middle of a stdout line.
    partial: String,
    /// The same text for live display, with SGR colour sequences kept: it differs from
    /// `partial` only by those sequences.
    display: Neutralizer,
    display_partial: String,
}

impl Default for StreamState {
    fn default() -> Self {
        Self {
            decoder: Utf8Decoder::default(),
            neutralizer: Neutralizer::new(),
            partial: String::new(),
            display: Neutralizer::keeping_sgr(),
            display_partial: String::new(),
        }
    }
}

impl StreamState {
    fn feed(&mut self, text: &str) {
        self.neutralizer.push(text, &mut self.partial);
        self.display.push(text, &mut self.display_partial);
    }

    /// The complete lines, and a partial line too when it is over-long: kept and display
    /// versions.
    fn take_ready(&mut self) -> (String, String) {
        let split = |text: &mut String| match text.rfind('\n') {
            Some(end) => {
                let rest = text.split_off(end + 1);
                std::mem::replace(text, rest)
            }
            None => String::new(),
        };
        let mut ready = split(&mut self.partial);
        let mut display = split(&mut self.display_partial);
        if self.partial.len() > MAX_PARTIAL_LINE {
            ready.push_str(&std::mem::take(&mut self.partial));
            display.push_str(&std::mem::take(&mut self.display_partial));
        }
        (ready, display)
    }
}

impl OutputCapture {
    /// `limit`: how many bytes of text to keep in all, split between head and tail.
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            half: (limit / 2).max(1),
            head: String::new(),
            tail: String::new(),
            omitted: 0,
            produced_bytes: 0,
            head_closed: false,
            streams: Default::default(),
        }
    }

    /// Records a chunk. Returns what joined the head, for a live view: the same text as
    /// kept, but with SGR colour sequences left in (a view that cannot turn them into
    /// colours removes them with [`sanitize::neutralize`]). Once the head is full the rest
    /// goes to the tail only, and the view shows the tail when the run ends (see
    /// [`CapturedOutput::text`]).
    pub(crate) fn push(&mut self, stream: Stream, bytes: &[u8]) -> String {
        self.produced_bytes += bytes.len() as u64;
        let state = &mut self.streams[stream as usize];
        let mut decoded = String::new();
        state.decoder.decode(bytes, &mut decoded);
        state.feed(&decoded);
        let (ready, display) = state.take_ready();
        let kept = self.keep(&ready);
        display_prefix(&display, kept.chars().count()).to_string()
    }

    /// Records text still waiting for its newline (a prompt, a progress bar). The reader
    /// calls this when the program has been quiet for a moment. Returns what a live view
    /// shows, per stream.
    pub(crate) fn flush_partial_lines(&mut self) -> Vec<(Stream, String)> {
        let mut live = Vec::new();
        for stream in [Stream::Stdout, Stream::Stderr] {
            let state = &mut self.streams[stream as usize];
            let text = std::mem::take(&mut state.partial);
            let display = std::mem::take(&mut state.display_partial);
            let kept = self.keep(&text);
            if !kept.is_empty() {
                let shown = display_prefix(&display, kept.chars().count());
                live.push((stream, shown.to_string()));
            }
        }
        live
    }

    fn keep(&mut self, text: &str) -> String {
        let room = if self.head_closed {
            0
        } else {
            self.half.saturating_sub(self.head.len())
        };
        let split = floor_char_boundary(text, room.min(text.len()));
        let (to_head, rest) = text.split_at(split);
        self.head.push_str(to_head);
        if !rest.is_empty() {
            self.head_closed = true;
            self.tail.push_str(rest);
            if self.tail.len() > 2 * self.half {
                self.trim_tail();
            }
        }
        to_head.to_string()
    }

    fn trim_tail(&mut self) {
        let excess = self.tail.len() - self.half;
        let cut = ceil_char_boundary(&self.tail, excess);
        self.omitted += cut as u64;
        self.tail.drain(..cut);
    }

    pub(crate) fn finish(mut self) -> CapturedOutput {
        for state in &mut self.streams {
            let mut flushed = String::new();
            state.decoder.finish(&mut flushed);
            state.feed(&flushed);
        }
        self.flush_partial_lines();
        if self.tail.len() > self.half {
            self.trim_tail();
        }
        CapturedOutput {
            head: collapse_carriage_returns(&self.head),
            omitted: self.omitted,
            tail: collapse_carriage_returns(&self.tail),
            produced_bytes: self.produced_bytes,
        }
    }
}

/// The start of `display` holding `chars` characters besides its SGR sequences: the
/// display version of a kept prefix. (Neutralized text has no ESC but those sequences.)
fn display_prefix(display: &str, chars: usize) -> &str {
    let mut seen = 0;
    let mut in_sequence = false;
    for (at, c) in display.char_indices() {
        if in_sequence {
            in_sequence = c != 'm';
            continue;
        }
        if c == '\u{1b}' {
            in_sequence = true;
            continue;
        }
        if seen == chars {
            return &display[..at];
        }
        seen += 1;
    }
    display
}

fn floor_char_boundary(text: &str, mut index: usize) -> usize {
    while !text.is_char_boundary(index) {
        index -= 1;
    }
    index
}

fn ceil_char_boundary(text: &str, mut index: usize) -> usize {
    while index < text.len() && !text.is_char_boundary(index) {
        index += 1;
    }
    index
}

/// A backtick fence longer than any run of backticks in the text, so output cannot close it.
pub(crate) fn fence_for(text: &str) -> String {
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    "`".repeat((longest + 1).max(3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_reach_the_live_view_but_never_the_kept_text() {
        let mut capture = OutputCapture::new(1024);
        let live = capture.push(
            Stream::Stdout,
            b"\x1b[31mred\x1b[0m \x1b]0;title\x07plain\n",
        );
        assert_eq!(live, "\x1b[31mred\x1b[0m plain\n");
        let output = capture.finish();
        assert_eq!(output.text(), "red plain\n");
    }

    #[test]
    fn the_live_view_stops_where_the_head_stops_even_with_colours() {
        let mut capture = OutputCapture::new(20);
        let live = capture.push(Stream::Stdout, b"\x1b[1mab\x1b[0mcdefghij\nklmnop\n");
        // Ten characters of room: the live text holds exactly those, colours included.
        assert_eq!(live, "\x1b[1mab\x1b[0mcdefghij");
        assert_eq!(sanitize::neutralize(&live), "abcdefghij");
    }

    #[test]
    fn small_output_is_kept_whole_and_shown_live() {
        let mut capture = OutputCapture::new(1024);
        assert_eq!(capture.push(Stream::Stdout, b"hello\n"), "hello\n");
        assert_eq!(capture.push(Stream::Stderr, b"oops\n"), "oops\n");
        let output = capture.finish();
        assert_eq!(output.text(), "hello\noops\n");
        assert!(!output.truncated());
        assert_eq!(output.produced_bytes, 11);
    }

    #[test]
    fn a_flood_keeps_head_and_tail_and_counts_everything() {
        let mut capture = OutputCapture::new(100);
        let mut live = String::new();
        for i in 0..10_000 {
            live.push_str(&capture.push(Stream::Stdout, format!("line {i:05}\n").as_bytes()));
        }
        let output = capture.finish();
        assert_eq!(output.produced_bytes, 110_000);
        assert!(output.truncated());
        assert!(output.head.starts_with("line 00000\n"));
        assert!(output.tail.ends_with("line 09999\n"));
        assert!(
            output.head.len() <= 50 && output.tail.len() <= 50,
            "{output:?}"
        );
        assert_eq!(live, output.head, "the live view shows exactly the head");
        assert_eq!(
            output.omitted as usize + output.head.len() + output.tail.len(),
            110_000
        );
        assert!(output.text().contains("bytes of output omitted"));
        let text = output.text();
        let at = output.omission_at().expect("truncated");
        assert_eq!(
            split_at_omission(&text, at),
            Some((output.head.as_str(), output.tail.as_str()))
        );
    }

    #[test]
    fn output_that_imitates_the_marker_is_never_taken_for_it() {
        let fake = omission_marker(5);
        let mut capture = OutputCapture::new(200);
        capture.push(Stream::Stdout, format!("head{fake}fake tail\n").as_bytes());
        capture.push(Stream::Stdout, "x".repeat(500).as_bytes());
        capture.push(Stream::Stdout, format!("\n{fake}end\n").as_bytes());
        let output = capture.finish();
        let text = output.text();
        let at = output.omission_at().expect("truncated");
        let (head, tail) = split_at_omission(&text, at).expect("the real marker");
        assert_eq!((head, tail), (output.head.as_str(), output.tail.as_str()));
        assert!(
            head.contains("fake tail") && tail.ends_with("end\n"),
            "{text}"
        );
        // Where there is no marker, none is found, whatever the text says.
        assert_eq!(split_at_omission(&fake, 1), None);
    }

    #[test]
    fn multibyte_text_is_never_cut_inside_a_character() {
        let mut capture = OutputCapture::new(9);
        for _ in 0..50 {
            capture.push(Stream::Stdout, "\u{4e16}\u{754c}".as_bytes());
        }
        let output = capture.finish();
        assert!(
            output
                .head
                .chars()
                .all(|c| c == '\u{4e16}' || c == '\u{754c}')
        );
        assert!(
            output
                .tail
                .chars()
                .all(|c| c == '\u{4e16}' || c == '\u{754c}')
        );
        assert!(output.truncated());
    }

    #[test]
    fn streams_decode_independently() {
        let mut capture = OutputCapture::new(1024);
        let bytes = "\u{e9}".as_bytes();
        capture.push(Stream::Stdout, &bytes[..1]);
        capture.push(Stream::Stderr, b"err\n");
        capture.push(Stream::Stdout, &bytes[1..]);
        capture.push(Stream::Stdout, b"\n");
        assert_eq!(capture.finish().text(), "err\n\u{e9}\n");
    }

    #[test]
    fn lines_written_in_pieces_are_not_split_by_the_other_stream() {
        let mut capture = OutputCapture::new(1024);
        assert_eq!(capture.push(Stream::Stdout, b"out"), "");
        assert_eq!(capture.push(Stream::Stderr, b"err\n"), "err\n");
        assert_eq!(capture.push(Stream::Stdout, b"\nnext"), "out\n");
        assert_eq!(
            capture.flush_partial_lines(),
            vec![(Stream::Stdout, "next".to_string())]
        );
        assert_eq!(capture.finish().text(), "err\nout\nnext");
    }

    #[test]
    fn a_very_long_line_is_not_held_forever() {
        let mut capture = OutputCapture::new(1 << 20);
        let shown = capture.push(Stream::Stdout, &[b'x'; MAX_PARTIAL_LINE + 1]);
        assert_eq!(shown.len(), MAX_PARTIAL_LINE + 1);
    }

    #[test]
    fn escapes_are_neutralized_and_redraws_collapsed() {
        let mut capture = OutputCapture::new(1024);
        capture.push(
            Stream::Stdout,
            b"\x1b]0;title\x07\x1b[31m10%\r100%\x1b[0m\n",
        );
        assert_eq!(capture.finish().text(), "100%\n");
    }
}
