//! A preview of one workspace file, loaded on a job's thread: text highlighted (its first
//! [`TEXT_LIMIT`] bytes), a PNG, JPEG, GIF or SVG (`.svgz` too) drawn as a picture, anything
//! else described by what its first bytes say it is, never dumped. The file is opened the one
//! way the host opens workspace files (`files::read`: no symlink followed, no FIFO or device opened), and
//! everything drawn from it is neutralized first.

use std::path::PathBuf;

use ratatui::Frame;
use ratatui::layout::{Rect, Size};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use syntect::highlighting::Theme as SyntaxTheme;

use crate::files::human_size;
use crate::files::read::read_prefix;
use crate::output::sanitize::for_person;
use crate::tui::panes::pane::Look;
use crate::tui::render::highlight::{StyledLine, highlight_with};
use crate::tui::render::picture::{Graphics, MAX_PICTURE_BYTES, Picture};
use crate::tui::render::svg::{self, Undrawn};

/// Text is previewed up to this many bytes.
pub(crate) const TEXT_LIMIT: usize = 1 << 20;
/// Syntax colours for this much of it: highlighting runs at a few hundred KiB a second, so
/// the rest is shown plain rather than making the operator wait seconds.
const HIGHLIGHT_LIMIT: usize = 64 << 10;
/// Longer lines are cut here, so one minified megabyte does not cost every frame.
const MAX_LINE_CHARS: usize = 2000;
const TAB_WIDTH: usize = 4;

/// What a job needs to load a preview: all owned, for its thread.
pub(crate) struct Request {
    /// The workspace's host directory, and the file inside it as the listing found it.
    pub(crate) root: PathBuf,
    pub(crate) path: PathBuf,
    /// Its path, drawn harmless, and its size as listed.
    pub(crate) shown: String,
    pub(crate) size: u64,
    /// Cells a picture may fill.
    pub(crate) room: Size,
    pub(crate) graphics: Graphics,
    pub(crate) theme: Option<SyntaxTheme>,
}

/// One file's preview.
#[derive(Debug)]
pub(crate) struct Preview {
    pub(crate) path: PathBuf,
    pub(crate) shown: String,
    pub(crate) body: Body,
}

#[derive(Debug)]
pub(crate) enum Body {
    Text {
        lines: Vec<Line<'static>>,
        size: u64,
        /// Only the first [`TEXT_LIMIT`] bytes are shown.
        cut: bool,
        /// Said above the text (an SVG shown as its source, colours for only part of it).
        note: Option<String>,
    },
    Picture {
        picture: Picture,
        size: u64,
        graphics: &'static str,
    },
    /// Not text and not a picture: what it looks like.
    Binary { size: u64, what: String },
    /// Not opened or not drawn, and why.
    Refused(String),
}

impl Body {
    /// Shown as text, so the pager can take it.
    pub(crate) fn is_text(&self) -> bool {
        matches!(self, Self::Text { .. })
    }
}

/// Loads the preview `request` asks for. Blocking: call it on a job's thread.
pub(crate) fn load(request: &Request) -> Preview {
    Preview {
        path: request.path.clone(),
        shown: request.shown.clone(),
        body: body(request).unwrap_or_else(Body::Refused),
    }
}

fn body(request: &Request) -> Result<Body, String> {
    let refused = |why: crate::files::read::Refusal| why.to_string();
    let (bytes, cut) = read_prefix(&request.root, &request.path, TEXT_LIMIT).map_err(refused)?;
    let size = request.size.max(bytes.len() as u64);
    if looks_like_picture(&bytes) {
        // Most pictures are whole in the text's read; only a larger one is read again.
        let (bytes, more) = if cut {
            read_prefix(&request.root, &request.path, MAX_PICTURE_BYTES).map_err(refused)?
        } else {
            (bytes, false)
        };
        if more {
            return Err(format!(
                "a picture larger than {}, the most a preview reads",
                human_size(MAX_PICTURE_BYTES as u64)
            ));
        }
        let picture = Picture::load(&bytes, &request.graphics, request.room)?;
        return Ok(Body::Picture {
            picture,
            size,
            graphics: request.graphics.name(),
        });
    }
    if svg::is_gzip(&bytes) && svg::is_svgz_name(&request.shown) {
        return compressed_svg(request, bytes, cut, size);
    }
    let Some(text) = as_text(&bytes, cut) else {
        return Ok(Body::Binary {
            size,
            what: describe(&bytes),
        });
    };
    if is_svg(&request.shown, text) && !cut {
        return drawn_svg(request, text, size);
    }
    Ok(source(request, text, size, cut, None))
}

/// An SVG drawn; its source, with why, when it cannot be; refused when it is dangerous.
fn drawn_svg(request: &Request, text: &str, size: u64) -> Result<Body, String> {
    match Picture::load_svg(text, &request.graphics, request.room) {
        Ok(picture) => Ok(Body::Picture {
            picture,
            size,
            graphics: request.graphics.name(),
        }),
        Err(Undrawn::Refused(why)) => Err(why),
        Err(Undrawn::Broken(why)) => Ok(source(request, text, size, false, Some(why))),
    }
}

/// A gzip-compressed SVG (`.svgz`), decompressed up to a bound, then drawn as any SVG.
fn compressed_svg(request: &Request, bytes: Vec<u8>, cut: bool, size: u64) -> Result<Body, String> {
    let refused = |why: crate::files::read::Refusal| why.to_string();
    let (bytes, more) = if cut {
        read_prefix(&request.root, &request.path, svg::MAX_SVG_BYTES).map_err(refused)?
    } else {
        (bytes, false)
    };
    if more {
        return Err(format!(
            "a compressed SVG larger than {}, the most a preview reads",
            human_size(svg::MAX_SVG_BYTES as u64)
        ));
    }
    let text = svg::decompress(&bytes)?;
    let text = as_text(&text, false)
        .ok_or_else(|| "it decompresses to something that is not UTF-8 text".to_string())?;
    drawn_svg(request, text, size)
}

/// Text, highlighted (an SVG that could not be drawn too, with why).
fn source(request: &Request, text: &str, size: u64, cut: bool, undrawn: Option<String>) -> Body {
    let svg = undrawn.is_some() || is_svg(&request.shown, text);
    let token = if svg {
        "xml"
    } else {
        extension(&request.shown)
    };
    let (coloured, plain) = text.split_at(line_end_after(text, HIGHLIGHT_LIMIT));
    let mut styled = highlight_with(request.theme.as_ref(), coloured, token);
    styled.extend(
        plain
            .lines()
            .map(|line| vec![(Style::new(), line.to_string())]),
    );
    let mut notes = Vec::new();
    if let Some(why) = undrawn {
        notes.push(format!("{why}; shown as its source"));
    } else if svg {
        notes.push(format!(
            "an SVG over {}, shown as its source",
            human_size(TEXT_LIMIT as u64)
        ));
    }
    if !plain.is_empty() && request.theme.is_some() {
        let limit = human_size(HIGHLIGHT_LIMIT as u64);
        notes.push(format!("syntax colours for the first {limit}"));
    }
    Body::Text {
        lines: styled.iter().map(drawn_line).collect(),
        size,
        cut,
        note: (!notes.is_empty()).then(|| notes.join("; ")),
    }
}

fn looks_like_picture(bytes: &[u8]) -> bool {
    bytes.starts_with(b"\x89PNG\r\n\x1a\n")
        || bytes.starts_with(b"\xff\xd8\xff")
        || bytes.starts_with(b"GIF87a")
        || bytes.starts_with(b"GIF89a")
}

/// Where the line that holds byte `at` ends (after its `\n`), or the text's end.
fn line_end_after(text: &str, at: usize) -> usize {
    if at >= text.len() {
        return text.len();
    }
    text.as_bytes()[at..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(text.len(), |newline| at + newline + 1)
}

/// UTF-8 without NUL bytes is text; a character cut by the read limit is left out.
fn as_text(bytes: &[u8], cut: bool) -> Option<&str> {
    if bytes.contains(&0) {
        return None;
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => Some(text),
        Err(err) if cut && err.error_len().is_none() => {
            std::str::from_utf8(&bytes[..err.valid_up_to()]).ok()
        }
        Err(_) => None,
    }
}

fn is_svg(name: &str, text: &str) -> bool {
    let mut end = text.len().min(1024);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let head = text[..end].trim_start();
    name.to_ascii_lowercase().ends_with(".svg")
        || ((head.starts_with("<svg") || head.starts_with("<?xml")) && head.contains("<svg"))
}

/// What syntax a name asks for: its extension, or nothing (then the first line decides).
fn extension(name: &str) -> &str {
    let last = name.rsplit('/').next().unwrap_or(name);
    match last.rsplit_once('.') {
        Some((stem, extension)) if !stem.is_empty() => extension,
        _ => last,
    }
}

/// A highlighted line as drawn: neutralized (no escape sequence reaches the terminal), tabs
/// expanded, cut at [`MAX_LINE_CHARS`].
fn drawn_line(pieces: &StyledLine) -> Line<'static> {
    let mut column = 0;
    let mut spans = Vec::with_capacity(pieces.len());
    for (style, text) in pieces {
        let mut shown = String::with_capacity(text.len());
        for c in for_person(text).chars() {
            if column >= MAX_LINE_CHARS {
                break;
            }
            if c == '\r' {
                // A lone carriage return would move the terminal's cursor.
                shown.push('\u{240d}');
                column += 1;
            } else if c == '\t' {
                let next = (column / TAB_WIDTH + 1) * TAB_WIDTH;
                shown.extend(std::iter::repeat_n(' ', next - column));
                column = next;
            } else {
                shown.push(c);
                column += 1;
            }
        }
        spans.push(Span::styled(shown, *style));
        if column >= MAX_LINE_CHARS {
            spans.push(Span::raw(" …"));
            break;
        }
    }
    Line::from(spans)
}

/// What binary bytes are, by their first bytes.
fn describe(bytes: &[u8]) -> String {
    const KINDS: &[(&[u8], &str)] = &[
        (b"\x7fELF", "an ELF executable or library"),
        (b"PK\x03\x04", "a ZIP archive (or .jar, .whl, .docx, .xlsx)"),
        (b"\x1f\x8b", "gzip-compressed data"),
        (b"BZh", "bzip2-compressed data"),
        (b"\xfd7zXZ\x00", "xz-compressed data"),
        (b"\x28\xb5\x2f\xfd", "zstd-compressed data"),
        (b"%PDF", "a PDF document"),
        (b"SQLite format 3\x00", "an SQLite database"),
        (b"\x93NUMPY", "a NumPy array"),
        (b"PAR1", "a Parquet file"),
        (b"\x89HDF", "an HDF5 file"),
        (b"\x00asm", "a WebAssembly module"),
        (b"\x80\x04", "a Python pickle (never loaded here)"),
        (b"\x80\x05", "a Python pickle (never loaded here)"),
    ];
    let kind = KINDS
        .iter()
        .find(|(magic, _)| bytes.starts_with(magic))
        .map(|(_, kind)| *kind)
        .or_else(|| (bytes.get(257..262) == Some(b"ustar")).then_some("a tar archive"))
        .or_else(|| {
            (bytes.starts_with(b"RIFF") && bytes.get(8..12) == Some(b"WEBP"))
                .then_some("a WebP picture (not drawn: PNG, JPEG and GIF are)")
        })
        .unwrap_or("binary data");
    let first: Vec<String> = bytes.iter().take(16).map(|b| format!("{b:02X}")).collect();
    format!("{kind}; it begins {}", first.join(" "))
}

impl Preview {
    /// What the title says after the file's name: its size, and how it is shown.
    pub(crate) fn details(&self) -> String {
        match &self.body {
            Body::Text {
                size, cut: true, ..
            } => format!(
                "first {} of {}",
                human_size(TEXT_LIMIT as u64),
                human_size(*size)
            ),
            Body::Text { size, .. } => format!("{} · text", human_size(*size)),
            Body::Picture {
                picture,
                size,
                graphics,
            } => format!(
                "{} {}×{} · {} · {graphics}",
                picture.format,
                picture.width,
                picture.height,
                human_size(*size)
            ),
            Body::Binary { size, .. } => format!("{} · binary", human_size(*size)),
            Body::Refused(why) => format!("refused: {why}"),
        }
    }

    /// Lines a text preview has (0 for the others), for scrolling.
    pub(crate) fn line_count(&self) -> usize {
        match &self.body {
            Body::Text { lines, note, .. } => lines.len() + usize::from(note.is_some()),
            _ => 0,
        }
    }

    /// Draws the body into `area` (inside the pane's frame), text from line `scroll` on.
    pub(crate) fn render(&self, frame: &mut Frame, area: Rect, look: &Look, scroll: usize) {
        let theme = look.theme;
        let said = |text: String, style: Style| {
            Paragraph::new(Line::styled(text, style)).wrap(Wrap { trim: false })
        };
        match &self.body {
            Body::Text { lines, note, .. } => {
                let mut shown: Vec<Line<'static>> = Vec::with_capacity(area.height as usize);
                if let Some(note) = note {
                    shown.push(Line::styled(note.clone(), theme.dim()));
                }
                let skip = scroll.saturating_sub(shown.len());
                shown.extend(lines.iter().skip(skip).take(area.height as usize).cloned());
                frame.render_widget(Paragraph::new(shown).style(theme.text()), area);
            }
            // Half blocks are colours and nothing else: without colours nothing would show.
            Body::Picture { picture, .. } if theme.monochrome => {
                let text = format!(
                    "Not drawn without colours (NO_COLOR): a {} of {}×{} pixels.",
                    picture.format, picture.width, picture.height
                );
                frame.render_widget(said(text, theme.dim()), area);
            }
            Body::Picture { picture, .. } => picture.render(frame, area),
            Body::Binary { what, .. } => {
                let text = format!("Not shown: {what}.");
                frame.render_widget(said(text, theme.text()), area);
            }
            Body::Refused(why) => {
                let text = format!("Not shown: {why}.");
                frame.render_widget(said(text, Style::new().fg(theme.warning)), area);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_bytes_are_described_by_what_they_begin_with() {
        let elf = describe(b"\x7fELF\x02\x01\x01\x00\x00\x00");
        assert_eq!(
            elf,
            "an ELF executable or library; it begins 7F 45 4C 46 02 01 01 00 00 00"
        );
        assert!(describe(&[0xde, 0xad]).starts_with("binary data; it begins DE AD"));
        assert_eq!(
            as_text(b"caf\xc3", true),
            Some("caf"),
            "a character cut by the limit"
        );
        assert_eq!(as_text(b"caf\xc3", false), None);
        assert_eq!(as_text(b"a\0b", false), None);
        assert_eq!(extension("src/main.rs"), "rs");
        assert_eq!(extension("Makefile"), "Makefile");
        assert_eq!(extension(".bashrc"), ".bashrc");
        assert_eq!(line_end_after("ab\ncd\nef", 1), 3);
        assert_eq!(line_end_after("ab\ncd", 4), 5);
        assert_eq!(line_end_after("ab", 9), 2);
    }

    #[test]
    fn escape_sequences_and_tabs_are_drawn_harmless() {
        let line = drawn_line(&vec![(Style::new(), "\u{1b}[2J\tx\u{7}".to_string())]);
        let text: String = line.spans.iter().map(|s| s.content.as_ref()).collect();
        assert!(
            !text.contains('\u{1b}') && !text.contains('\u{7}'),
            "{text:?}"
        );
        assert!(text.contains("    x"), "{text:?}");
        let long = drawn_line(&vec![(Style::new(), "y".repeat(MAX_LINE_CHARS * 2))]);
        let width: usize = long.spans.iter().map(|s| s.content.chars().count()).sum();
        assert_eq!(width, MAX_LINE_CHARS + 2);
    }
}
