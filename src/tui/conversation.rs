//! The conversation pane: the operator's messages, the model's replies rendered as markdown
//! (streaming ones grow as they arrive), the results sent back, notices and errors. It
//! follows the end unless the operator scrolled up; only what is visible is laid out.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

use super::app::{App, Entry, EntryKind, Focus};
use super::highlight::Highlighter;
use super::markdown;
use super::text::wrap_prose;
use crate::output::sanitize::for_person;

pub fn render(frame: &mut Frame, area: Rect, app: &App, highlighter: &Highlighter) {
    let theme = &app.theme;
    let focused = matches!(app.focus, Focus::Conversation);
    let mut title = vec![Span::styled(" Conversation ", theme.accent())];
    if app.conversation_scroll.from_bottom > 0 {
        title.push(Span::styled(
            format!("↑{} ", app.conversation_scroll.from_bottom),
            theme.dim(),
        ));
    }
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.border(focused))
        .title_style(theme.title(focused))
        .title(Line::from(title));
    let inner = block.inner(area);
    let rows = visible_rows(
        app,
        highlighter,
        inner.width as usize,
        inner.height as usize,
    );
    frame.render_widget(Paragraph::new(rows).block(block), area);
}

/// Walks the transcript from the end, laying out entries only until the view is full.
pub fn visible_rows(
    app: &App,
    highlighter: &Highlighter,
    width: usize,
    height: usize,
) -> Vec<Line<'static>> {
    if app.transcript.is_empty() {
        return vec![Line::styled(
            "Write a task for the model below and press Enter.",
            app.theme.dim(),
        )];
    }
    let skip = app.conversation_scroll.from_bottom;
    let wanted = height + skip;
    let mut rows: Vec<Line<'static>> = Vec::new();
    for entry in app.transcript.iter().rev() {
        let mut entry_rows: Vec<Line<'static>> = Vec::new();
        for line in entry_lines(entry, app, highlighter, width) {
            entry_rows.extend(wrap_prose(&line, width));
        }
        entry_rows.push(Line::default());
        entry_rows.reverse();
        rows.extend(entry_rows);
        if rows.len() >= wanted {
            break;
        }
    }
    let skip = skip.min(rows.len().saturating_sub(height));
    let mut visible: Vec<Line<'static>> = rows.into_iter().skip(skip).take(height).collect();
    visible.reverse();
    visible
}

/// An entry's lines; a reply comes laid out for `width` already (its code keeps its gutter
/// on wrapped rows), the rest is wrapped by the caller.
fn entry_lines(
    entry: &Entry,
    app: &App,
    highlighter: &Highlighter,
    width: usize,
) -> Vec<Line<'static>> {
    let theme = &app.theme;
    let label = |text: &str, style: Style| {
        Line::from(Span::styled(
            text.to_string(),
            style.add_modifier(Modifier::BOLD),
        ))
    };
    match entry.kind {
        EntryKind::User => {
            let mut lines = vec![label("you", Style::new().fg(theme.user))];
            lines.extend(
                for_person(&entry.text)
                    .lines()
                    .map(|l| Line::styled(l.to_string(), Style::new().fg(theme.user))),
            );
            lines
        }
        EntryKind::Assistant => {
            let mut lines = vec![label(
                &format!("model · {}", app.model),
                Style::new().fg(theme.accent),
            )];
            lines.extend(markdown::render(
                &entry.text,
                Style::new().fg(theme.assistant),
                theme,
                highlighter,
                width,
            ));
            lines
        }
        EntryKind::Results => {
            let summary = entry
                .text
                .lines()
                .filter(|l| l.starts_with("## Block"))
                .count();
            vec![Line::styled(
                format!("↳ results of {summary} block(s) sent to the model"),
                theme.dim(),
            )]
        }
        EntryKind::Notice => vec![Line::styled(
            format!("· {}", for_person(&entry.text)),
            theme.dim(),
        )],
        EntryKind::Error => vec![Line::styled(
            format!("✗ {}", for_person(&entry.text)),
            Style::new().fg(theme.error),
        )],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Event;
    use crate::tui::testing::{app, feed, pane};

    #[test]
    fn a_streaming_reply_renders_markdown_as_it_arrives() {
        let mut app = app();
        app.on_event(&Event::Notice {
            message: "pulled the image".into(),
        });
        app.transcript.push(Entry {
            kind: EntryKind::User,
            text: "count the words".into(),
        });
        let reply = "## Plan\n\nI will **count** the words with `Counter`:\n\n- read the file\n- count\n\n```python\nfrom collections import Counter\n";
        let events: Vec<Event> = reply
            .split_inclusive(' ')
            .map(|piece| Event::AssistantDelta { text: piece.into() })
            .collect();
        feed(&mut app, &events);
        app.on_event(&Event::Error {
            message: "the model's reply failed: stream cut".into(),
        });
        let highlighter = Highlighter::plain();
        insta::assert_snapshot!(pane(60, 20, |frame| render(
            frame,
            frame.area(),
            &app,
            &highlighter
        )));
    }

    #[test]
    fn only_the_visible_end_is_laid_out_and_scrolling_moves_up() {
        let mut app = app();
        for i in 0..500 {
            app.transcript.push(Entry {
                kind: EntryKind::Notice,
                text: format!("notice {i}"),
            });
        }
        let highlighter = Highlighter::plain();
        let rows = visible_rows(&app, &highlighter, 40, 3);
        let text: Vec<String> = rows
            .iter()
            .map(|r| r.spans.iter().map(|s| s.content.as_ref()).collect())
            .collect();
        assert_eq!(text, ["", "· notice 499", ""]);
        app.conversation_scroll.from_bottom = 3;
        let rows = visible_rows(&app, &highlighter, 40, 1);
        assert_eq!(rows[0].spans[0].content, "· notice 498");
    }
}
