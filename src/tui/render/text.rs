//! Text helpers the panes share: wrapping styled lines to a width, and drawing invisible
//! characters visibly so the operator sees the exact bytes that will run.

use ratatui::style::Style;
use ratatui::text::{Line, Span};
use unicode_width::UnicodeWidthChar;

/// Wraps one styled line to `width` columns and keeps every character, so code and program
/// output read exactly as they are: breaks fall at spaces where they can, a word is split
/// only when it is wider than the row, and spaces that do not fit start the next row.
pub fn wrap_line(line: &Line<'static>, width: usize) -> Vec<Line<'static>> {
    wrap(line, width, Breaks::KeepSpaces)
}

/// Wraps prose: like [`wrap_line`], but a row never starts with the spaces it broke at.
pub(crate) fn wrap_prose(line: &Line<'static>, width: usize) -> Vec<Line<'static>> {
    wrap(line, width, Breaks::DropSpaces)
}

#[derive(Clone, Copy, PartialEq)]
enum Breaks {
    KeepSpaces,
    DropSpaces,
}

/// Greedy wrapping over the whole line, not span by span: a word whose letters carry
/// different styles (`qu` bold, `ick` plain) is still one word.
fn wrap(line: &Line<'static>, width: usize, breaks: Breaks) -> Vec<Line<'static>> {
    let width = width.max(1);
    let chars: Vec<(char, Style)> = line
        .spans
        .iter()
        .flat_map(|span| span.content.chars().map(move |c| (c, span.style)))
        .collect();
    let mut rows: Vec<Vec<(char, Style)>> = vec![Vec::new()];
    let mut used = 0;
    for token in tokens(&chars) {
        let token_width: usize = token.iter().map(|(c, _)| char_width(*c)).sum();
        let is_space = token.first().is_some_and(|(c, _)| is_break(*c));
        if used + token_width <= width {
            push_all(&mut rows, token, &mut used);
        } else if is_space {
            for &(c, style) in token {
                if used + char_width(c) > width {
                    if breaks == Breaks::DropSpaces {
                        break;
                    }
                    rows.push(Vec::new());
                    used = 0;
                }
                push_all(&mut rows, &[(c, style)], &mut used);
            }
        } else if token_width <= width {
            rows.push(Vec::new());
            used = 0;
            push_all(&mut rows, token, &mut used);
        } else {
            // Wider than a whole row: split, filling the current row first.
            for &(c, style) in token {
                if used + char_width(c) > width && used > 0 {
                    rows.push(Vec::new());
                    used = 0;
                }
                push_all(&mut rows, &[(c, style)], &mut used);
            }
        }
    }
    rows.into_iter()
        .map(|row| Line::from(merge_styles(&row)).style(line.style))
        .collect()
}

fn push_all(rows: &mut [Vec<(char, Style)>], token: &[(char, Style)], used: &mut usize) {
    if let Some(row) = rows.last_mut() {
        row.extend_from_slice(token);
        *used += token.iter().map(|(c, _)| char_width(*c)).sum::<usize>();
    }
}

/// Runs of break characters and runs of everything else.
fn tokens(chars: &[(char, Style)]) -> Vec<&[(char, Style)]> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..=chars.len() {
        if i == chars.len() || is_break(chars[i].0) != is_break(chars[start].0) {
            out.push(&chars[start..i]);
            start = i;
        }
    }
    out
}

/// Where a line may break. A non-breaking space is not one.
fn is_break(c: char) -> bool {
    c == ' ' || c == '\t'
}

pub(crate) fn char_width(c: char) -> usize {
    c.width().unwrap_or(0)
}

/// The display width of a line.
pub(crate) fn line_width(line: &Line<'_>) -> usize {
    line.spans
        .iter()
        .flat_map(|span| span.content.chars())
        .map(char_width)
        .sum()
}

/// Adjacent characters of the same style become one span again.
fn merge_styles(row: &[(char, Style)]) -> Vec<Span<'static>> {
    let mut spans: Vec<Span<'static>> = Vec::new();
    for &(c, style) in row {
        match spans.last_mut() {
            Some(last) if last.style == style => last.content.to_mut().push(c),
            _ => spans.push(Span::styled(c.to_string(), style)),
        }
    }
    spans
}

pub use crate::output::sanitize::is_invisible;

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

/// Whether the code holds anything `visible_spans` would mark, besides tabs.
pub fn has_hidden(code: &str) -> bool {
    code.chars().any(|c| is_invisible(c) || c == '\u{a0}')
        || code.lines().any(|line| line.ends_with(' '))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::style::Modifier;

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
    fn a_word_whose_style_changes_is_not_split() {
        let line = Line::from(vec![
            Span::raw("then "),
            Span::styled("qu", Style::new().add_modifier(Modifier::BOLD)),
            Span::raw("ick brown"),
        ]);
        let rows = wrap_prose(&line, 8);
        assert_eq!(texts(&rows), ["then ", "quick ", "brown"]);
        let bold = &rows[1].spans[0];
        assert_eq!(bold.content, "qu");
        assert!(bold.style.add_modifier.contains(Modifier::BOLD));
        // A break at a span boundary is no reason to split the word either.
        let line = Line::from(vec![Span::raw("ab cd"), Span::raw("ef gh")]);
        assert_eq!(texts(&wrap_line(&line, 6)), ["ab ", "cdef ", "gh"]);
    }

    #[test]
    fn code_keeps_every_space_and_prose_drops_the_break() {
        let line = Line::from("abcd  efgh");
        assert_eq!(texts(&wrap_line(&line, 5)), ["abcd ", " efgh"]);
        assert_eq!(texts(&wrap_prose(&line, 5)), ["abcd ", "efgh"]);
        assert_eq!(
            texts(&wrap_prose(&Line::from("ab averylongword"), 5)),
            ["ab av", "erylo", "ngwor", "d"]
        );
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
