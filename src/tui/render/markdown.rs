//! Markdown to styled rows for the conversation, wrapped to the pane's width: headings,
//! emphasis, strikethrough, inline code, links with their address, lists with hanging
//! indents, quotes, tables as aligned columns, and fenced code highlighted like the card with
//! its gutter on every row. Control characters are neutralized, before parsing and again in
//! every piece of text the parser decodes, so model text can never reach the terminal as
//! escape sequences.

mod table;

use pulldown_cmark::{CodeBlockKind, Event as Md, HeadingLevel, Options, Parser, Tag, TagEnd};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};

use crate::output::sanitize::for_person;
use crate::tui::render::highlight::Highlighter;
use crate::tui::render::text::{line_width, wrap_line, wrap_prose};
use crate::tui::theme::Theme;
use table::Table;

/// What a fence without a language tag is labelled: airlock never offers to run it.
const UNTAGGED_LABEL: &str = "no language · not offered";
const INDENTED_LABEL: &str = "indented code · not offered";

pub fn render(
    text: &str,
    base: Style,
    theme: &Theme,
    highlighter: &Highlighter,
    width: usize,
) -> Vec<Line<'static>> {
    let text = for_person(text);
    let mut out = Writer::new(base, theme.clone(), width);
    let mut code: Option<(Option<String>, String)> = None;
    let options = Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TABLES;
    for event in Parser::new_ext(&text, options) {
        if let Some((language, body)) = code.as_mut() {
            match event {
                Md::Text(piece) => body.push_str(&piece),
                Md::End(TagEnd::CodeBlock) => {
                    let (language, body) = (language.take(), std::mem::take(body));
                    code = None;
                    out.code_block(language.as_deref(), &body, highlighter);
                }
                _ => {}
            }
            continue;
        }
        if let Md::Start(Tag::CodeBlock(kind)) = event {
            out.flush();
            let language = match kind {
                CodeBlockKind::Fenced(info) => {
                    Some(info.split_whitespace().next().unwrap_or("").to_string())
                }
                CodeBlockKind::Indented => None,
            };
            code = Some((language, String::new()));
            continue;
        }
        out.event(event);
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

/// A link being read: its address, and its text so far (to tell whether they differ).
struct Link {
    url: String,
    text: String,
}

struct Writer {
    theme: Theme,
    width: usize,
    lines: Vec<Line<'static>>,
    current: Vec<Span<'static>>,
    styles: Vec<Style>,
    /// Quote bars, drawn on every row.
    prefix: Vec<Span<'static>>,
    lists: Vec<Option<u64>>,
    /// The list marker of an item whose first row is not written yet.
    marker: Option<Span<'static>>,
    /// The indent of each open list item, so its wrapped rows hang under its text.
    indents: Vec<usize>,
    link: Option<Link>,
    table: Option<Table>,
}

impl Writer {
    fn new(base: Style, theme: Theme, width: usize) -> Self {
        Self {
            theme,
            width: width.max(1),
            lines: Vec::new(),
            current: Vec::new(),
            styles: vec![base],
            prefix: Vec::new(),
            lists: Vec::new(),
            marker: None,
            indents: Vec::new(),
            link: None,
            table: None,
        }
    }

    fn event(&mut self, event: Md<'_>) {
        match event {
            Md::Start(tag) => self.start(tag),
            Md::End(tag) => self.end(tag),
            Md::Code(inline) => {
                if let Some(link) = self.link.as_mut() {
                    link.text.push_str(&inline);
                }
                let style = Style::new().fg(self.theme.accent);
                self.push_text(&inline, style);
            }
            Md::Text(piece) => self.text(&piece),
            // A soft break is a space in markdown; the pane wraps to its own width.
            Md::SoftBreak => self.text(" "),
            Md::HardBreak => self.flush(),
            Md::Rule => {
                self.flush();
                self.lines.push(Line::styled("────────", self.theme.dim()));
            }
            _ => {}
        }
    }

    fn start(&mut self, tag: Tag<'_>) {
        match tag {
            Tag::Heading { level, .. } => {
                self.flush();
                let marks = "#".repeat(heading_depth(level));
                self.push_style(self.theme.accent());
                self.text(&format!("{marks} "));
            }
            Tag::Paragraph => self.flush(),
            Tag::Emphasis => self.push_style(Style::new().add_modifier(Modifier::ITALIC)),
            Tag::Strong => self.push_style(Style::new().add_modifier(Modifier::BOLD)),
            Tag::Strikethrough => self.push_style(Style::new().add_modifier(Modifier::CROSSED_OUT)),
            Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. } => {
                self.push_style(Style::new().add_modifier(Modifier::UNDERLINED));
                self.link = Some(Link {
                    url: for_person(&dest_url),
                    text: String::new(),
                });
            }
            Tag::BlockQuote(_) => {
                self.flush();
                self.prefix.push(Span::styled("│ ", self.theme.dim()));
            }
            Tag::List(start) => {
                self.flush();
                self.lists.push(start);
            }
            Tag::Item => self.start_item(),
            Tag::Table(alignments) => {
                self.flush();
                self.table = Some(Table::new(alignments));
            }
            Tag::TableHead => self.with_table(Table::start_header),
            Tag::TableRow => self.with_table(Table::start_row),
            Tag::TableCell => self.current.clear(),
            _ => {}
        }
    }

    fn end(&mut self, tag: TagEnd) {
        match tag {
            TagEnd::Heading(_) => {
                self.styles.pop();
                self.flush();
            }
            TagEnd::Paragraph => {
                self.flush();
                self.blank();
            }
            TagEnd::Emphasis | TagEnd::Strong | TagEnd::Strikethrough => {
                self.styles.pop();
            }
            TagEnd::Link | TagEnd::Image => self.end_link(),
            TagEnd::BlockQuote(_) => {
                self.flush();
                self.prefix.pop();
            }
            TagEnd::List(_) => {
                self.flush();
                self.lists.pop();
                if self.lists.is_empty() {
                    self.blank();
                }
            }
            TagEnd::Item => {
                self.flush();
                self.indents.pop();
            }
            TagEnd::TableHead => self.with_table(Table::end_header),
            TagEnd::TableCell => {
                let cell = std::mem::take(&mut self.current);
                self.with_table(|table| table.push_cell(cell));
            }
            TagEnd::Table => self.end_table(),
            _ => {}
        }
    }

    fn start_item(&mut self) {
        self.flush();
        let depth = self.lists.len().saturating_sub(1);
        let marker = match self.lists.last_mut() {
            Some(Some(n)) => {
                let marker = format!("{n}. ");
                *n += 1;
                marker
            }
            _ => "• ".to_string(),
        };
        let marker = format!("{}{marker}", "  ".repeat(depth));
        self.indents.push(marker.chars().count());
        self.marker = Some(Span::styled(marker, self.theme.accent()));
    }

    /// `text (url)`, or the text alone when it is the address itself.
    fn end_link(&mut self) {
        self.styles.pop();
        let Some(link) = self.link.take() else {
            return;
        };
        let text = link.text.trim();
        let same = link.url == text || link.url.strip_prefix("mailto:") == Some(text);
        if !link.url.is_empty() && !same {
            let url = format!(" ({})", link.url);
            self.push_text(&url, self.theme.dim());
        }
    }

    fn with_table(&mut self, f: impl FnOnce(&mut Table)) {
        if let Some(table) = self.table.as_mut() {
            f(table);
        }
    }

    fn end_table(&mut self) {
        let Some(table) = self.table.take() else {
            return;
        };
        let lead = self.lead_width();
        for row in table.render(self.width.saturating_sub(lead), self.theme.dim()) {
            self.push_row(row.spans);
        }
        self.blank();
    }

    fn style(&self) -> Style {
        self.styles
            .iter()
            .fold(Style::new(), |acc, style| acc.patch(*style))
    }

    fn push_style(&mut self, style: Style) {
        self.styles.push(style);
    }

    fn text(&mut self, text: &str) {
        if let Some(link) = self.link.as_mut() {
            link.text.push_str(text);
        }
        let style = self.style();
        for (i, piece) in text.split('\n').enumerate() {
            if i > 0 {
                self.flush();
            }
            self.push_text(piece, style);
        }
    }

    /// Text the parser decoded (entities included) is neutralized once more on its way out.
    fn push_text(&mut self, text: &str, style: Style) {
        if !text.is_empty() {
            self.current.push(Span::styled(for_person(text), style));
        }
    }

    /// The columns taken before the text: quote bars and the list indent.
    fn lead_width(&self) -> usize {
        line_width(&Line::from(self.prefix.clone())) + self.indents.last().copied().unwrap_or(0)
    }

    /// Writes the current text as rows wrapped to the pane, under the quote bars and the
    /// list marker (wrapped rows hang under the item's text).
    fn flush(&mut self) {
        if self.current.is_empty() || self.table.is_some() {
            return;
        }
        let content = Line::from(std::mem::take(&mut self.current));
        let room = self.width.saturating_sub(self.lead_width()).max(1);
        for row in wrap_prose(&content, room) {
            self.push_row(row.spans);
        }
    }

    /// One row under the quote bars, after the list marker (first row of an item) or the
    /// item's indent.
    fn push_row(&mut self, content: Vec<Span<'static>>) {
        let mut spans = self.prefix.clone();
        let indent = self.indents.last().copied().unwrap_or(0);
        match self.marker.take() {
            Some(marker) => spans.push(marker),
            None if indent > 0 => spans.push(Span::raw(" ".repeat(indent))),
            None => {}
        }
        spans.extend(content);
        self.lines.push(Line::from(spans));
    }

    fn blank(&mut self) {
        if self.lines.last().is_some_and(|line| !line.spans.is_empty()) {
            self.lines.push(Line::default());
        }
    }

    /// A fenced block: a label row, then every row of the code behind the gutter, wrapped
    /// rows included, keeping every character.
    fn code_block(&mut self, language: Option<&str>, body: &str, highlighter: &Highlighter) {
        let gutter = Span::styled("▎ ", self.theme.dim());
        let label = match language {
            None => INDENTED_LABEL,
            Some("") => UNTAGGED_LABEL,
            Some(language) => language,
        };
        let label = Span::styled(for_person(label), self.theme.dim());
        self.push_row(vec![gutter.clone(), label]);
        let room = self.width.saturating_sub(self.lead_width() + 2).max(1);
        let code_bg = self.theme.code_bg;
        for line in highlighter.lines(body, language.unwrap_or("")).iter() {
            let spans: Vec<Span<'static>> = line
                .iter()
                .map(|(style, text)| Span::styled(for_person(text), style.bg(code_bg)))
                .collect();
            for row in wrap_line(&Line::from(spans), room) {
                let mut spans = vec![gutter.clone()];
                spans.extend(row.spans);
                self.push_row(spans);
            }
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
        let lines = render(
            text,
            Style::new(),
            &Theme::default(),
            &Highlighter::plain(),
            80,
        );
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
            80,
        );
        let all: String = plain(&lines).concat();
        assert!(!all.contains('\u{1b}') && !all.contains('\u{7}'), "{all:?}");
        assert!(all.contains("text"));
        // Character references are decoded by the parser, after the first pass.
        let decoded = "&#x1b;[31mred [a](http://x/&#x1b;]0;t&#7;) `&#x1b;`\n\n| &#x1b;[2J |\n|-|\n| &#27;c |\n";
        let lines = render(
            decoded,
            Style::new(),
            &Theme::default(),
            &Highlighter::plain(),
            80,
        );
        let all: String = plain(&lines).concat();
        assert!(!all.contains('\u{1b}') && !all.contains('\u{7}'), "{all:?}");
    }

    /// The rows drawn into a pane of `width`, as the conversation shows them.
    fn drawn(text: &str, width: u16, height: u16) -> (String, ratatui::buffer::Buffer) {
        let lines = render(
            text,
            Style::new(),
            &Theme::default(),
            &Highlighter::plain(),
            width as usize,
        );
        let mut terminal =
            ratatui::Terminal::new(ratatui::backend::TestBackend::new(width, height))
                .expect("test terminal");
        terminal
            .draw(|frame| {
                frame.render_widget(ratatui::widgets::Paragraph::new(lines), frame.area())
            })
            .expect("draws");
        let buffer = terminal.backend().buffer().clone();
        (terminal.backend().to_string(), buffer)
    }

    #[test]
    fn words_wrap_whole_even_where_their_style_changes() {
        let (text, _) = drawn("then **qu**ick brown *f*ox jumps over the lazy dog", 7, 8);
        let rows: Vec<&str> = text.lines().collect();
        assert_eq!(rows[..2], ["\"then   \"", "\"quick  \""], "{text}");
        insta::assert_snapshot!(text);
    }

    #[test]
    fn wrapped_code_rows_keep_the_gutter() {
        let text =
            "```python\nprint('a line of code that is much wider than the pane')\nx = 1\n```\n";
        let (screen, _) = drawn(text, 24, 6);
        let rows: Vec<&str> = screen.lines().take(5).collect();
        assert!(rows.iter().all(|row| row.starts_with("\"▎ ")), "{screen}");
        insta::assert_snapshot!(screen);
    }

    #[test]
    fn an_untagged_fence_says_it_is_not_offered() {
        let (screen, _) = drawn("```\nls -l\n```\n\n    indented\n", 40, 6);
        assert!(screen.contains(UNTAGGED_LABEL), "{screen}");
        assert!(!screen.contains("▎ code "), "{screen}");
        insta::assert_snapshot!(screen);
    }

    #[test]
    fn tables_are_aligned_columns() {
        let text = "| word | count | note |\n|:-----|------:|------|\n| fox | 4 | the most common |\n| the | 3 | |\n";
        let (screen, _) = drawn(text, 40, 5);
        assert!(screen.contains("word │ count │ note"), "{screen}");
        assert!(
            screen.contains("fox  │     4 │ the most common"),
            "{screen}"
        );
        insta::assert_snapshot!("table_wide", screen);
        // Too wide for the pane: the widest column gives way and its cells wrap.
        let (screen, _) = drawn(text, 24, 7);
        assert!(screen.contains("│ the most"), "{screen}");
        insta::assert_snapshot!("table_narrow", screen);
    }

    #[test]
    fn any_width_lays_out_without_a_panic() {
        let text = "# T\n\n> - a **b** [c](http://d)\n>   1. e\n\n| x | y |\n|---|:-:|\n| 1 | 2 |\n\n```\nz z\n```\n";
        for width in 0..12 {
            let lines = render(
                text,
                Style::new(),
                &Theme::default(),
                &Highlighter::plain(),
                width,
            );
            assert!(!lines.is_empty());
        }
    }

    #[test]
    fn links_show_their_address_and_strikethrough_is_drawn() {
        let text =
            "See [the docs](https://example.com/docs) or <https://example.com>, ~~not this~~.";
        let (screen, buffer) = drawn(text, 80, 2);
        assert!(
            screen.contains("the docs (https://example.com/docs)"),
            "{screen}"
        );
        assert!(screen.contains("or https://example.com,"), "{screen}");
        assert!(!screen.contains("~~"), "{screen}");
        let at = screen
            .lines()
            .next()
            .and_then(|row| row.find("not this"))
            .expect("struck text");
        let column = screen
            .lines()
            .next()
            .map_or(0, |row| row[..at].chars().count() - 1) as u16;
        assert!(
            buffer[(column, 0)].modifier.contains(Modifier::CROSSED_OUT),
            "{:?}",
            buffer[(column, 0)]
        );
        insta::assert_snapshot!(screen);
    }
}
