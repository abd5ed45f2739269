//! Making program output safe to show: lossy UTF-8 decoding that survives chunk boundaries,
//! and a neutralizer that removes terminal escape sequences and makes other control
//! characters visible, so output can never drive the real terminal.

/// Incremental lossy UTF-8 decoder: a multi-byte character split across two chunks is
/// decoded whole, invalid bytes become U+FFFD.
#[derive(Debug, Default)]
pub(crate) struct Utf8Decoder {
    pending: Vec<u8>,
}

impl Utf8Decoder {
    pub(crate) fn decode(&mut self, chunk: &[u8], out: &mut String) {
        let joined;
        let mut input: &[u8] = if self.pending.is_empty() {
            chunk
        } else {
            self.pending.extend_from_slice(chunk);
            joined = std::mem::take(&mut self.pending);
            &joined
        };
        loop {
            match std::str::from_utf8(input) {
                Ok(valid) => {
                    out.push_str(valid);
                    return;
                }
                Err(error) => {
                    let (valid, rest) = input.split_at(error.valid_up_to());
                    // `valid` is UTF-8 by the error's own account.
                    out.push_str(std::str::from_utf8(valid).unwrap_or_default());
                    match error.error_len() {
                        Some(bad) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            input = &rest[bad..];
                        }
                        None => {
                            self.pending = rest.to_vec();
                            return;
                        }
                    }
                }
            }
        }
    }

    /// Flushes a character left incomplete at the end of the stream.
    pub(crate) fn finish(&mut self, out: &mut String) {
        if !self.pending.is_empty() {
            self.pending.clear();
            out.push(char::REPLACEMENT_CHARACTER);
        }
    }
}

/// Longest escape sequence we wait for before treating what follows as plain text again;
/// bounds the damage of an OSC string that never ends.
const MAX_SEQUENCE: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Ground,
    /// After ESC.
    Escape,
    /// ESC followed by intermediate bytes (`ESC ( B`).
    EscapeIntermediate,
    /// Control sequence: parameters until a final byte.
    Csi,
    /// OSC, DCS, SOS, PM, APC: a string until BEL or ST.
    String,
    /// ESC seen inside a string: `\` ends it.
    StringEscape,
}

/// Stateful escape-sequence neutralizer. Sequences split across chunks are recognised.
#[derive(Debug)]
pub struct Neutralizer {
    state: State,
    keep_sgr: bool,
    sequence: String,
}

impl Neutralizer {
    /// Removes every escape sequence.
    pub fn new() -> Self {
        Self {
            state: State::Ground,
            keep_sgr: false,
            sequence: String::new(),
        }
    }

    /// Keeps SGR colour sequences (`ESC [ … m`), for a pane that turns them into styles.
    pub(crate) fn keeping_sgr() -> Self {
        Self {
            keep_sgr: true,
            ..Self::new()
        }
    }

    pub fn push(&mut self, text: &str, out: &mut String) {
        for c in text.chars() {
            self.step(c, out);
        }
    }

    fn step(&mut self, c: char, out: &mut String) {
        if self.state != State::Ground {
            self.sequence.push(c);
            if self.sequence.len() > MAX_SEQUENCE {
                self.state = State::Ground;
                self.sequence.clear();
                return;
            }
        }
        match self.state {
            State::Ground => self.ground(c, out),
            State::Escape => match c {
                '[' => self.state = State::Csi,
                ']' | 'P' | 'X' | '^' | '_' => self.state = State::String,
                ' '..='/' => self.state = State::EscapeIntermediate,
                _ => self.reset(),
            },
            State::EscapeIntermediate => {
                if !(' '..='/').contains(&c) {
                    self.reset();
                }
            }
            State::Csi => {
                if ('@'..='~').contains(&c) {
                    if self.keep_sgr && c == 'm' && is_plain_sgr(&self.sequence) {
                        out.push('\u{1b}');
                        out.push_str(&self.sequence);
                    }
                    self.reset();
                } else if !(' '..='?').contains(&c) {
                    // Not a well-formed sequence: drop what we have, show the rest.
                    self.reset();
                    self.ground(c, out);
                }
            }
            State::String => match c {
                '\u{7}' | '\u{9c}' => self.reset(),
                '\u{1b}' => self.state = State::StringEscape,
                _ => {}
            },
            State::StringEscape => {
                if c == '\\' {
                    self.reset();
                } else {
                    self.state = State::String;
                }
            }
        }
    }

    fn ground(&mut self, c: char, out: &mut String) {
        match c {
            '\u{1b}' => {
                self.state = State::Escape;
                self.sequence.clear();
            }
            '\u{9b}' => {
                self.state = State::Csi;
                self.sequence.clear();
                self.sequence.push('[');
            }
            '\u{90}' | '\u{98}' | '\u{9d}' | '\u{9e}' | '\u{9f}' => {
                self.state = State::String;
                self.sequence.clear();
            }
            '\n' | '\t' | '\r' => out.push(c),
            _ => push_visible(c, out),
        }
    }

    fn reset(&mut self) {
        self.state = State::Ground;
        self.sequence.clear();
    }
}

impl Default for Neutralizer {
    fn default() -> Self {
        Self::new()
    }
}

/// `[1;31m` and the like: only digits and separators, so nothing but colours.
fn is_plain_sgr(sequence: &str) -> bool {
    sequence
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix('m'))
        .is_some_and(|params| {
            params
                .chars()
                .all(|c| c.is_ascii_digit() || c == ';' || c == ':')
        })
}

/// Control characters other than newline, tab and carriage return are drawn as symbols.
fn push_visible(c: char, out: &mut String) {
    match c {
        '\u{0}'..='\u{1f}' => out.push(char::from_u32(0x2400 + c as u32).unwrap_or('\u{fffd}')),
        '\u{7f}' => out.push('\u{2421}'),
        '\u{80}'..='\u{9f}' => out.push_str(&format!("<U+{:04X}>", c as u32)),
        _ => out.push(c),
    }
}

/// Neutralizes a complete string in one go.
pub(crate) fn neutralize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    Neutralizer::new().push(text, &mut out);
    out
}

/// Control, format (zero-width, bidi) and other characters that draw nothing. The line and
/// paragraph separators (U+2028, U+2029) are among them: a terminal draws nothing for them,
/// yet JavaScript ends a line (and so a `//` comment) at each.
pub fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{8}' | '\u{b}'..='\u{1f}' | '\u{7f}'..='\u{9f}'
        | '\u{ad}' | '\u{34f}' | '\u{61c}' | '\u{115f}' | '\u{1160}' | '\u{17b4}' | '\u{17b5}'
        | '\u{180b}'..='\u{180f}' | '\u{200b}'..='\u{200f}' | '\u{2028}' | '\u{2029}'
        | '\u{202a}'..='\u{202e}'
        | '\u{2060}'..='\u{206f}' | '\u{3164}' | '\u{fe00}'..='\u{fe0f}' | '\u{feff}'
        | '\u{ffa0}' | '\u{fff0}'..='\u{fffb}' | '\u{e0000}'..='\u{e007f}')
}

/// Text for a person's terminal: escape sequences removed, control characters drawn as
/// symbols, and characters that draw nothing or reorder what follows (zero-width, bidi
/// controls) shown as `<U+XXXX>`, so what is read is what is there.
pub fn for_person(text: &str) -> String {
    mark_invisible(&neutralize(text)).into_owned()
}

/// Code for a person's terminal: as [`for_person`], and a carriage return drawn as `␍`.
/// Output keeps `\r` (a progress bar redraws its line), but a `\r` in code (a tool call's
/// arguments are not normalized as fenced blocks are) would return to the start of the line
/// and draw over what the operator approves: `rm -rf ~\r# tidy up` reads `# tidy up`.
pub(crate) fn code_for_person(text: &str) -> String {
    for_person(text).replace('\r', "\u{240d}")
}

/// Draws zero-width, bidi and other invisible characters of already neutralized text as
/// `<U+XXXX>`. Line breaks, tabs, and ESC (which neutralized text keeps only to start an SGR
/// colour, for a view that draws colours) stay. Borrows when there is nothing to mark.
pub(crate) fn mark_invisible(text: &str) -> std::borrow::Cow<'_, str> {
    let marked = |c: char| is_invisible(c) && !matches!(c, '\u{1b}' | '\n' | '\t' | '\r');
    if !text.chars().any(marked) {
        return text.into();
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if marked(c) {
            out.push_str(&format!("<U+{:04X}>", c as u32));
        } else {
            out.push(c);
        }
    }
    out.into()
}

/// Collapses `\r` redraws to what the terminal would finally show on each line: the text
/// after the last lone carriage return. `\r\n` is a plain line ending.
pub(crate) fn collapse_carriage_returns(text: &str) -> String {
    if !text.contains('\r') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let line = line.strip_suffix('\r').unwrap_or(line);
        out.push_str(line.rsplit('\r').next().unwrap_or(line));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_chunks(chunks: &[&[u8]]) -> String {
        let mut decoder = Utf8Decoder::default();
        let mut out = String::new();
        for chunk in chunks {
            decoder.decode(chunk, &mut out);
        }
        decoder.finish(&mut out);
        out
    }

    #[test]
    fn a_character_split_across_chunks_survives() {
        let bytes = "h\u{e9}\u{4e16}\u{1f600}!".as_bytes();
        for split in 0..bytes.len() {
            let (a, b) = bytes.split_at(split);
            assert_eq!(
                decode_chunks(&[a, b]),
                "h\u{e9}\u{4e16}\u{1f600}!",
                "split at {split}"
            );
        }
        // One byte at a time, too.
        let singles: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(decode_chunks(&singles), "h\u{e9}\u{4e16}\u{1f600}!");
    }

    #[test]
    fn invalid_bytes_become_replacement_characters() {
        assert_eq!(decode_chunks(&[b"a\xffb\xc3"]), "a\u{fffd}b\u{fffd}");
        assert_eq!(decode_chunks(&[b"\xe4\xb8", b"x"]), "\u{fffd}x");
        assert_eq!(decode_chunks(&[&[0x80, 0x80, b'z']]), "\u{fffd}\u{fffd}z");
    }

    #[test]
    fn escape_sequences_are_removed() {
        let input = "red:\u{1b}[31mR\u{1b}[0m title:\u{1b}]0;pwned\u{7}T link:\u{1b}]8;;http://x\u{1b}\\L\u{1b}]8;;\u{1b}\\ dcs:\u{1b}Pq#0\u{1b}\\D clear:\u{1b}[2J\u{1b}[H charset:\u{1b}(Bc reset:\u{1b}c.";
        assert_eq!(
            neutralize(input),
            "red:R title:T link:L dcs:D clear: charset:c reset:."
        );
    }

    #[test]
    fn c1_controls_cannot_start_sequences() {
        assert_eq!(
            neutralize("a\u{9b}31mb\u{9d}0;t\u{9c}c\u{85}d"),
            "abc<U+0085>d"
        );
    }

    #[test]
    fn other_controls_are_drawn_visibly() {
        assert_eq!(
            neutralize("bell\u{7} nul\u{0} del\u{7f}\tkeep\r\n"),
            "bell\u{2407} nul\u{2400} del\u{2421}\tkeep\r\n"
        );
    }

    #[test]
    fn sequences_split_across_chunks_are_recognised() {
        let mut neutralizer = Neutralizer::new();
        let mut out = String::new();
        for piece in ["a\u{1b}", "]0;ti", "tle\u{1b}", "\\b\u{1b}[3", "1mc"] {
            neutralizer.push(piece, &mut out);
        }
        assert_eq!(out, "abc");
    }

    #[test]
    fn sgr_can_be_kept_for_a_colour_aware_pane() {
        let mut neutralizer = Neutralizer::keeping_sgr();
        let mut out = String::new();
        neutralizer.push("\u{1b}[1;31mred\u{1b}[0m\u{1b}[2J\u{1b}[?1049h", &mut out);
        assert_eq!(out, "\u{1b}[1;31mred\u{1b}[0m");
    }

    #[test]
    fn an_unterminated_string_cannot_hide_everything() {
        let text = format!("\u{1b}]0;{}visible", "x".repeat(MAX_SEQUENCE + 10));
        let out = neutralize(&text);
        assert!(
            out.ends_with("visible"),
            "{}",
            &out[out.len().saturating_sub(20)..]
        );
        assert!(!out.contains('\u{1b}'));
    }

    #[test]
    fn a_carriage_return_in_code_is_drawn_not_obeyed() {
        let code = code_for_person("import os\ros.system('rm -rf ~')\r# tidy up\r\n\u{202e}x");
        assert_eq!(
            code,
            "import os\u{240d}os.system('rm -rf ~')\u{240d}# tidy up\u{240d}\n<U+202E>x"
        );
    }

    #[test]
    fn carriage_return_redraws_collapse() {
        assert_eq!(
            collapse_carriage_returns("10%\r50%\r100%\ndone\r\n"),
            "100%\ndone\n"
        );
        assert_eq!(collapse_carriage_returns("plain\n"), "plain\n");
    }
}
