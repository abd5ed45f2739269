//! The `?` overlay: every binding with its description, grouped by where it applies,
//! generated from the keymap so it cannot go stale.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

use crate::tui::keys::keymap::{Action, Binding, Context, Keymap};
use crate::tui::overlays::modal::{Modal, ModalData, Outcome, reading_keys, reading_scroll};
use crate::tui::overlays::popup::centered;
use crate::tui::render::text::wrap_prose;
use crate::tui::theme::Theme;

/// Columns before the key column, and between it and the descriptions.
const INDENT: usize = 2;
const GAP: usize = 2;

/// The overlay, and how far it is scrolled.
#[derive(Debug, Default)]
pub(crate) struct HelpModal {
    scroll: u16,
}

impl Modal for HelpModal {
    fn context(&self) -> Context {
        Context::Reading
    }

    fn on_action(&mut self, action: Option<Action>, _: &ModalData<'_>) -> Outcome {
        reading_scroll(&mut self.scroll, action)
    }

    fn render(&self, frame: &mut Frame, area: Rect, data: &ModalData<'_>) {
        render(
            frame,
            centered(area, 90, 90),
            data.theme,
            data.keymap,
            self.scroll,
        );
    }
}

pub(crate) fn render(frame: &mut Frame, area: Rect, theme: &Theme, keymap: &Keymap, scroll: u16) {
    let title = format!(" Keys ({}) ", reading_keys(keymap));
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.border(true))
        .title_style(theme.title(true))
        .title(Span::styled(title, theme.accent()));
    let width = block.inner(area).width as usize;
    let contexts = Context::IN_HELP;
    let bindings = keymap.bindings();
    let key_column = bindings
        .iter()
        .map(|binding| keys_text(binding).chars().count())
        .max()
        .unwrap_or(0)
        .min(width / 3);
    let mut lines = Vec::new();
    for &context in contexts {
        let in_context: Vec<&Binding> = bindings.iter().filter(|b| b.context == context).collect();
        if in_context.is_empty() {
            continue;
        }
        lines.push(Line::styled(context.title(), theme.accent()));
        for binding in in_context {
            let entry = Entry {
                keys: keys_text(binding),
                description: binding.description,
            };
            lines.extend(entry.lines(key_column, width, theme.text(), theme.dim()));
        }
        lines.push(Line::default());
    }
    frame.render_widget(Clear, area);
    frame.render_widget(Paragraph::new(lines).block(block).scroll((scroll, 0)), area);
}

/// A binding's keys, each label once: two keys that read the same (the terminal's two
/// spellings of Shift-Tab) are one entry for the reader.
fn keys_text(binding: &Binding) -> String {
    let mut labels: Vec<String> = Vec::new();
    for key in &binding.keys {
        let label = key.label();
        if !labels.contains(&label) {
            labels.push(label);
        }
    }
    labels.join(" / ")
}

struct Entry<'a> {
    keys: String,
    description: &'a str,
}

impl Entry<'_> {
    /// The keys in their column, the description in the next; a description that wraps
    /// stays under its column, and keys wider than their column get a row of their own.
    fn lines(
        &self,
        key_column: usize,
        width: usize,
        key_style: Style,
        text_style: Style,
    ) -> Vec<Line<'static>> {
        let description_at = INDENT + key_column + GAP;
        let room = width.saturating_sub(description_at).max(1);
        let mut rows = Vec::new();
        let mut first = Some(Span::styled(
            format!("{:INDENT$}{:<key_column$}{:GAP$}", "", self.keys, ""),
            key_style,
        ));
        if self.keys.chars().count() > key_column {
            let keys = Line::styled(format!("{:INDENT$}{}", "", self.keys), key_style);
            rows.extend(wrap_prose(&keys, width.max(1)));
            first = None;
        }
        let description = Line::styled(self.description.to_string(), text_style);
        for row in wrap_prose(&description, room) {
            let lead = first
                .take()
                .unwrap_or_else(|| Span::raw(" ".repeat(description_at)));
            let mut spans = vec![lead];
            spans.extend(row.spans);
            rows.push(Line::from(spans));
        }
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::testing::{app, pane};

    #[test]
    fn the_help_lists_every_binding_from_the_keymap() {
        let app = app();
        let text = pane(100, 72, |frame| {
            render(frame, frame.area(), &app.theme, &app.keymap, 0)
        });
        for binding in app.keymap.bindings() {
            assert!(
                text.contains(binding.description),
                "{} missing",
                binding.description
            );
        }
        insta::assert_snapshot!(text);
    }

    #[test]
    fn keys_and_descriptions_stand_in_two_columns() {
        let app = app();
        let text = pane(60, 76, |frame| {
            render(frame, frame.area(), &app.theme, &app.keymap, 0)
        });
        // The widest keys ("Alt-Enter / Ctrl-J") set the column; nothing runs together.
        assert!(text.contains("│  Alt-Enter / Ctrl-J  new line"), "{text}");
        assert!(
            text.contains("│  Shift-Tab           focus the previous pane"),
            "{text}"
        );
        assert!(!text.contains("Shift-Tab / Shift-Tab"), "{text}");
        // A long description wraps under its own column.
        assert!(
            text.contains("│  a                   approve for the session (pick: same"),
            "{text}"
        );
        assert!(
            text.contains("│                      language or exact code)"),
            "{text}"
        );
        insta::assert_snapshot!(text);
        // Narrower: keys wider than their column take a row of their own.
        let text = pane(40, 70, |frame| {
            render(frame, frame.area(), &app.theme, &app.keymap, 0)
        });
        let rows: Vec<&str> = text.lines().collect();
        let at = rows
            .iter()
            .position(|row| row.starts_with("\"│  Alt-Enter / Ctrl-J "))
            .expect("the keys on a row of their own");
        assert!(
            rows[at + 1].starts_with("\"│                new line "),
            "{text}"
        );
    }
}
