//! The conversation pane: the operator's messages, the model's replies rendered as markdown
//! (streaming ones grow as they arrive), the results sent back, notices and errors. It
//! follows the end unless the operator scrolled up; only what is visible is laid out.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::output::sanitize::for_person;
use crate::protocol::Event;
use crate::tui::keys::keymap::{Action, Context};
use crate::tui::panes::pane::Look;
use crate::tui::panes::scroll::Scroll;
use crate::tui::panes::{Pane, Seen};
use crate::tui::render::highlight::Highlighter;
use crate::tui::render::markdown;
use crate::tui::render::text::wrap_prose;
use crate::tui::theme::Theme;
use crate::view::SessionView;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    User,
    Assistant,
    /// What went back to the model with the blocks' results.
    Results,
    Notice,
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub kind: EntryKind,
    pub text: String,
}

/// The transcript and how far back it is scrolled.
#[derive(Debug, Clone)]
pub(crate) struct ConversationPane {
    /// The model's name, on each of its replies.
    model: String,
    pub(crate) entries: Vec<Entry>,
    pub(crate) scroll: Scroll,
    /// The entry the model's reply is streaming into.
    streaming: Option<usize>,
}

impl ConversationPane {
    pub(crate) fn new(model: String) -> Self {
        Self {
            model,
            entries: Vec::new(),
            scroll: Scroll::default(),
            streaming: None,
        }
    }

    /// Takes in what the conversation shows of an engine event.
    pub(crate) fn take(&mut self, event: &Event) {
        match event {
            Event::UserMessage { text, .. } => {
                self.push(EntryKind::User, text);
                self.scroll = Scroll::default();
            }
            Event::Notice { message } => self.push(EntryKind::Notice, message),
            Event::Error { message, .. } => self.push(EntryKind::Error, message),
            Event::AssistantDelta { text } => {
                match self.streaming.and_then(|at| self.entries.get_mut(at)) {
                    Some(entry) => entry.text.push_str(text),
                    None => {
                        self.streaming = Some(self.entries.len());
                        self.push(EntryKind::Assistant, text);
                    }
                }
            }
            Event::AssistantMessage { text, .. } => {
                match self
                    .streaming
                    .take()
                    .and_then(|at| self.entries.get_mut(at))
                {
                    Some(entry) => entry.text = text.clone(),
                    // A reply of tool calls alone has no text: its blocks are on the card.
                    None if text.is_empty() => {}
                    None => self.push(EntryKind::Assistant, text),
                }
            }
            Event::Reflection { text } => self.push(EntryKind::Results, text),
            Event::RuleRevoked { rule, .. } => self.push(
                EntryKind::Notice,
                &format!(
                    "approval rule lifted for this session: {} ({})",
                    rule.covers, rule.origin
                ),
            ),
            Event::Idle { .. } => self.streaming = None,
            _ => {}
        }
    }

    pub(crate) fn push(&mut self, kind: EntryKind, text: &str) {
        self.entries.push(Entry {
            kind,
            text: text.to_string(),
        });
    }

    /// A resumed session's conversation (role and text), shown before anything new.
    pub(crate) fn load_earlier(&mut self, messages: &[(String, String)]) {
        let mut entries: Vec<Entry> = messages
            .iter()
            .map(|(role, content)| Entry {
                kind: match role.as_str() {
                    "assistant" => EntryKind::Assistant,
                    "results" => EntryKind::Results,
                    _ => EntryKind::User,
                },
                text: content.clone(),
            })
            .collect();
        if !entries.is_empty() {
            entries.push(Entry {
                kind: EntryKind::Notice,
                text: "resumed: the model sees the conversation above".into(),
            });
        }
        entries.append(&mut self.entries);
        self.entries = entries;
    }

    /// Scrolls for a scrolling action; `page` is the pane's height.
    pub(crate) fn scroll_by(&mut self, action: Action, page: usize) {
        self.scroll.apply(action, page);
    }

    pub(crate) fn draw(&self, frame: &mut Frame, area: Rect, look: &Look) {
        let theme = look.theme;
        let mut title = vec![Span::styled(" Conversation ", theme.accent())];
        if self.scroll.from_bottom > 0 {
            title.push(Span::styled(
                format!("↑{} ", self.scroll.from_bottom),
                theme.dim(),
            ));
        }
        let block = theme.pane(look.focused, title);
        let inner = block.inner(area);
        let rows = self.visible_rows(
            theme,
            look.highlighter,
            inner.width as usize,
            inner.height as usize,
        );
        frame.render_widget(Paragraph::new(rows).block(block), area);
    }

    /// Walks the transcript from the end, laying out entries only until the view is full.
    fn visible_rows(
        &self,
        theme: &Theme,
        highlighter: &Highlighter,
        width: usize,
        height: usize,
    ) -> Vec<Line<'static>> {
        if self.entries.is_empty() {
            return vec![Line::styled(
                "Write a task for the model below and press Enter.",
                theme.dim(),
            )];
        }
        let skip = self.scroll.from_bottom;
        let wanted = height + skip;
        let mut rows: Vec<Line<'static>> = Vec::new();
        for entry in self.entries.iter().rev() {
            let mut entry_rows: Vec<Line<'static>> = Vec::new();
            for line in entry_lines(entry, &self.model, theme, highlighter, width) {
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
}

/// An entry's lines; a reply comes laid out for `width` already (its code keeps its gutter
/// on wrapped rows), the rest is wrapped by the caller.
fn entry_lines(
    entry: &Entry,
    model: &str,
    theme: &Theme,
    highlighter: &Highlighter,
    width: usize,
) -> Vec<Line<'static>> {
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
                &format!("model · {model}"),
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
                .filter(|l| l.starts_with("## Block") || l.starts_with("## Call"))
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

impl Pane for ConversationPane {
    fn contexts(&self) -> &'static [Context] {
        &[Context::Conversation]
    }

    fn on_event(&mut self, event: &Event, _view: &SessionView) {
        self.take(event);
    }

    fn scroll(&mut self, action: Action, area: Rect) -> bool {
        self.scroll_by(action, area.height.saturating_sub(2) as usize);
        true
    }

    fn render(&self, frame: &mut Frame, area: Rect, seen: &Seen) {
        self.draw(frame, area, &seen.look);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::testing::{app, feed, pane};

    #[test]
    fn a_streaming_reply_renders_markdown_as_it_arrives() {
        let mut app = app();
        app.on_event(&Event::Notice {
            message: "pulled the image".into(),
        });
        app.conversation.push(EntryKind::User, "count the words");
        let reply = "## Plan\n\nI will **count** the words with `Counter`:\n\n- read the file\n- count\n\n```python\nfrom collections import Counter\n";
        let events: Vec<Event> = reply
            .split_inclusive(' ')
            .map(|piece| Event::AssistantDelta { text: piece.into() })
            .collect();
        feed(&mut app, &events);
        app.on_event(&Event::Error {
            message: "the model's reply failed: stream cut".into(),
            id: None,
        });
        let highlighter = Highlighter::plain();
        let look = Look::unfocused(&app.theme, &app.keymap, &highlighter);
        insta::assert_snapshot!(pane(60, 20, |frame| app.conversation.draw(
            frame,
            frame.area(),
            &look
        )));
    }

    #[test]
    fn only_the_visible_end_is_laid_out_and_scrolling_moves_up() {
        let mut pane = ConversationPane::new("m".into());
        for i in 0..500 {
            pane.push(EntryKind::Notice, &format!("notice {i}"));
        }
        let (theme, highlighter) = (Theme::default(), Highlighter::plain());
        let rows = pane.visible_rows(&theme, &highlighter, 40, 3);
        let text: Vec<String> = rows
            .iter()
            .map(|r| r.spans.iter().map(|s| s.content.as_ref()).collect())
            .collect();
        assert_eq!(text, ["", "· notice 499", ""]);
        pane.scroll.from_bottom = 3;
        let rows = pane.visible_rows(&theme, &highlighter, 40, 1);
        assert_eq!(rows[0].spans[0].content, "· notice 498");
    }
}
