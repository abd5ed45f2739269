//! Text helpers the panes share: wrapping styled lines to a width, and drawing invisible
//! characters visibly so the operator sees the exact bytes that will run.

use ratatui::style::Style;
use ratatui::text::{Line, Span};
use unicode_width::UnicodeWidthChar;

/// Wraps one styled line to `width` columns, breaking at spaces where it can.
pub fn wrap_line(line: &Line<'static>, width: usize) -> Vec<Line<'static>> {
    let width = width.max(1);
    let mut rows: Vec<Line<'static>> = Vec::new();
    let mut row: Vec<Span<'static>> = Vec::new();
    let mut used = 0;
    for span in &line.spans {
        let mut current = String::new();
        for c in span.content.chars() {
            let w = c.width().unwrap_or(0);
            if used + w > width && used > 0 {
                // Move the last word to the next row when the row has room to spare.
                let (keep, carry) = split_last_word(&current);
                if !carry.is_empty() && carry.len() < current.len() {
                    row.push(Span::styled(keep.to_string(), span.style));
                    current = carry.to_string();
                } else {
                    row.push(Span::styled(std::mem::take(&mut current), span.style));
                }
                rows.push(Line::from(std::mem::take(&mut row)).style(line.style));
                used = current.chars().map(|c| c.width().unwrap_or(0)).sum();
            }
            current.push(c);
            used += w;
        }
        if !current.is_empty() {
            row.push(Span::styled(current, span.style));
        }
    }
    rows.push(Line::from(row).style(line.style));
    rows
}

/// `"hello wor"` → (`"hello "`, `"wor"`).
fn split_last_word(text: &str) -> (&str, &str) {
    match text.rfind(' ') {
        Some(at) => text.split_at(at + 1),
        None => (text, ""),
    }
}

/// Characters that look like nothing, or like something else, drawn as visible markers:
/// tabs as `→`, trailing spaces as `·`, zero-width and bidi controls and other control
/// characters as `<U+XXXX>`, a non-breaking space as `⍽`.
pub fn visible_spans(text: &str, normal: Style, hidden: Style) -> Vec<Span<'static>> {
    let trimmed_len = text.trim_end_matches(' ').len();
    let mut spans = Vec::new();
    let mut plain = String::new();
    let flush = |plain: &mut String, spans: &mut Vec<Span<'static>>| {
        if !plain.is_empty() {
            spans.push(Span::styled(std::mem::take(plain), normal));
        }
    };
    for (at, c) in text.char_indices() {
        let marker = match c {
            '\t' => Some("→   ".to_string()),
            ' ' if at >= trimmed_len => Some("·".to_string()),
            '\u{a0}' => Some("⍽".to_string()),
            c if is_invisible(c) => Some(format!("<U+{:04X}>", c as u32)),
            _ => None,
        };
        match marker {
            Some(marker) => {
                flush(&mut plain, &mut spans);
                spans.push(Span::styled(marker, hidden));
            }
            None => plain.push(c),
        }
    }
    flush(&mut plain, &mut spans);
    spans
}

/// Control, format (zero-width, bidi) and other characters that draw nothing.
pub fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{8}' | '\u{b}'..='\u{1f}' | '\u{7f}'..='\u{9f}'
        | '\u{ad}' | '\u{34f}' | '\u{61c}' | '\u{115f}' | '\u{1160}' | '\u{17b4}' | '\u{17b5}'
        | '\u{180b}'..='\u{180f}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}'
        | '\u{2060}'..='\u{206f}' | '\u{3164}' | '\u{fe00}'..='\u{fe0f}' | '\u{feff}'
        | '\u{ffa0}' | '\u{fff0}'..='\u{fffb}' | '\u{e0000}'..='\u{e007f}')
}

/// Whether the code holds anything `visible_spans` would mark, besides tabs.
pub fn has_hidden(code: &str) -> bool {
    code.chars().any(|c| is_invisible(c) || c == '\u{a0}')
        || code.lines().any(|line| line.ends_with(' '))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(rows: &[Line<'_>]) -> Vec<String> {
        rows.iter()
            .map(|row| row.spans.iter().map(|s| s.content.as_ref()).collect())
            .collect()
    }

    #[test]
    fn lines_wrap_at_words() {
        let rows = wrap_line(&Line::from("the quick brown fox jumps"), 10);
        assert_eq!(texts(&rows), ["the quick ", "brown fox ", "jumps"]);
        let rows = wrap_line(&Line::from("abcdefghijkl"), 5);
        assert_eq!(texts(&rows), ["abcde", "fghij", "kl"]);
        assert_eq!(texts(&wrap_line(&Line::from(""), 5)), [""]);
    }

    #[test]
    fn hidden_characters_become_markers() {
        let spans = visible_spans("a\u{200b}b\u{202e}c\td  ", Style::new(), Style::new());
        let text: String = spans.iter().map(|s| s.content.as_ref()).collect();
        assert_eq!(text, "a<U+200B>b<U+202E>c→   d··");
        assert!(has_hidden("x\u{feff}"));
        assert!(has_hidden("x \n"));
        assert!(!has_hidden("print(1)\n\tx\n"));
    }
}
