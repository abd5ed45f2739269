//! Markdown to styled lines for the conversation: headings, emphasis, inline code, lists,
//! quotes, and fenced code highlighted like the card. Control characters are neutralized
//! first, so model text can never reach the terminal as escape sequences.

use pulldown_cmark::{CodeBlockKind, Event as Md, HeadingLevel, Parser, Tag, TagEnd};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};

use super::highlight::Highlighter;
use super::theme::Theme;
use crate::output::sanitize::neutralize;

pub fn render(
    text: &str,
    base: Style,
    theme: &Theme,
    highlighter: &Highlighter,
) -> Vec<Line<'static>> {
    let text = neutralize(text);
    let mut out = Writer {
        lines: Vec::new(),
        current: Vec::new(),
        styles: vec![base],
        prefix: Vec::new(),
        lists: Vec::new(),
    };
    let mut code: Option<(String, String)> = None;
    for event in Parser::new(&text) {
        if let Some((language, body)) = code.as_mut() {
            match event {
                Md::Text(piece) => body.push_str(&piece),
                Md::End(TagEnd::CodeBlock) => {
                    let (language, body) = (language.clone(), std::mem::take(body));
                    code = None;
                    out.code_block(&language, &body, theme, highlighter);
                }
                _ => {}
            }
            continue;
        }
        match event {
            Md::Start(Tag::Heading { level, .. }) => {
                out.flush();
                let marks = "#".repeat(heading_depth(level));
                out.push_style(theme.accent());
                out.text(&format!("{marks} "));
            }
            Md::End(TagEnd::Heading(_)) => {
                out.styles.pop();
                out.flush();
            }
            Md::Start(Tag::Paragraph) => out.flush(),
            Md::End(TagEnd::Paragraph) => {
                out.flush();
                out.blank();
            }
            Md::Start(Tag::Emphasis) => out.push_style(Style::new().add_modifier(Modifier::ITALIC)),
            Md::Start(Tag::Strong) => out.push_style(Style::new().add_modifier(Modifier::BOLD)),
            Md::Start(Tag::Strikethrough) => {
                out.push_style(Style::new().add_modifier(Modifier::CROSSED_OUT))
            }
            Md::End(TagEnd::Emphasis | TagEnd::Strong | TagEnd::Strikethrough) => {
                out.styles.pop();
            }
            Md::Start(Tag::BlockQuote(_)) => {
                out.flush();
                out.prefix.push(Span::styled("│ ", theme.dim()));
            }
            Md::End(TagEnd::BlockQuote(_)) => {
                out.flush();
                out.prefix.pop();
            }
            Md::Start(Tag::List(start)) => {
                out.flush();
                out.lists.push(start);
            }
            Md::End(TagEnd::List(_)) => {
                out.flush();
                out.lists.pop();
                if out.lists.is_empty() {
                    out.blank();
                }
            }
            Md::Start(Tag::Item) => {
                out.flush();
                let depth = out.lists.len().saturating_sub(1);
                let marker = match out.lists.last_mut() {
                    Some(Some(n)) => {
                        let marker = format!("{n}. ");
                        *n += 1;
                        marker
                    }
                    _ => "• ".to_string(),
                };
                out.current.push(Span::styled(
                    format!("{}{marker}", "  ".repeat(depth)),
                    theme.accent(),
                ));
            }
            Md::End(TagEnd::Item) => out.flush(),
            Md::Start(Tag::CodeBlock(kind)) => {
                out.flush();
                let language = match kind {
                    CodeBlockKind::Fenced(info) => {
                        info.split_whitespace().next().unwrap_or("").to_string()
                    }
                    CodeBlockKind::Indented => String::new(),
                };
                code = Some((language, String::new()));
            }
            Md::Code(inline) => {
                out.current.push(Span::styled(
                    inline.to_string(),
                    Style::new().fg(theme.accent),
                ));
            }
            Md::Text(piece) => out.text(&piece),
            // A soft break is a space in markdown; the pane wraps to its own width.
            Md::SoftBreak => out.text(" "),
            Md::HardBreak => out.flush(),
            Md::Rule => {
                out.flush();
                out.lines.push(Line::styled("────────", theme.dim()));
            }
            _ => {}
        }
    }
    out.flush();
    while out.lines.last().is_some_and(|line| line.spans.is_empty()) {
        out.lines.pop();
    }
    out.lines
}

fn heading_depth(level: HeadingLevel) -> usize {
    match level {
        HeadingLevel::H1 => 1,
        HeadingLevel::H2 => 2,
        HeadingLevel::H3 => 3,
        HeadingLevel::H4 => 4,
        HeadingLevel::H5 => 5,
        HeadingLevel::H6 => 6,
    }
}

struct Writer {
    lines: Vec<Line<'static>>,
    current: Vec<Span<'static>>,
    styles: Vec<Style>,
    prefix: Vec<Span<'static>>,
    lists: Vec<Option<u64>>,
}

impl Writer {
    fn style(&self) -> Style {
        self.styles
            .iter()
            .fold(Style::new(), |acc, style| acc.patch(*style))
    }

    fn push_style(&mut self, style: Style) {
        self.styles.push(style);
    }

    fn text(&mut self, text: &str) {
        let style = self.style();
        for (i, piece) in text.split('\n').enumerate() {
            if i > 0 {
                self.flush();
            }
            if !piece.is_empty() {
                self.current.push(Span::styled(piece.to_string(), style));
            }
        }
    }

    fn flush(&mut self) {
        if self.current.is_empty() {
            return;
        }
        let mut spans = self.prefix.clone();
        spans.append(&mut self.current);
        self.lines.push(Line::from(spans));
    }

    fn blank(&mut self) {
        if self.lines.last().is_some_and(|line| !line.spans.is_empty()) {
            self.lines.push(Line::default());
        }
    }

    fn code_block(&mut self, language: &str, body: &str, theme: &Theme, highlighter: &Highlighter) {
        let gutter = Span::styled("▎ ", theme.dim());
        self.lines.push(Line::from(vec![
            gutter.clone(),
            Span::styled(
                if language.is_empty() {
                    "code".to_string()
                } else {
                    language.to_string()
                },
                theme.dim(),
            ),
        ]));
        for line in highlighter.lines(body, language).iter() {
            let mut spans = vec![gutter.clone()];
            spans.extend(
                line.iter()
                    .map(|(style, text)| Span::styled(text.clone(), style.bg(theme.code_bg))),
            );
            self.lines.push(Line::from(spans));
        }
        self.lines.push(Line::default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(lines: &[Line<'_>]) -> Vec<String> {
        lines
            .iter()
            .map(|line| line.spans.iter().map(|s| s.content.as_ref()).collect())
            .collect()
    }

    #[test]
    fn markdown_becomes_readable_lines() {
        let text = "# Plan\n\nFirst *this*, then **that** with `ls`.\n\n- one\n- two\n\n```python\nprint(1)\n```\n";
        let lines = render(text, Style::new(), &Theme::default(), &Highlighter::plain());
        assert_eq!(
            plain(&lines),
            [
                "# Plan",
                "First this, then that with ls.",
                "",
                "• one",
                "• two",
                "",
                "▎ python",
                "▎ print(1)"
            ]
        );
        let bold = lines[1]
            .spans
            .iter()
            .find(|s| s.content == "that")
            .expect("bold span");
        assert!(bold.style.add_modifier.contains(Modifier::BOLD));
    }

    #[test]
    fn escape_sequences_never_survive() {
        let lines = render(
            "red \u{1b}[31mtext\u{1b}]0;title\u{7}\n",
            Style::new(),
            &Theme::default(),
            &Highlighter::plain(),
        );
        let all: String = plain(&lines).concat();
        assert!(!all.contains('\u{1b}') && !all.contains('\u{7}'), "{all:?}");
        assert!(all.contains("text"));
    }
}
