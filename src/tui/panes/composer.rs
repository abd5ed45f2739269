//! The composer: the operator's next message, typed in a text area.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::Span;
use ratatui_textarea::TextArea;

use crate::tui::keys::keymap::{Action, Context};
use crate::tui::panes::pane::Look;
use crate::tui::panes::{Acting, Pane, Seen, Wants};

pub(crate) struct Composer {
    area: TextArea<'static>,
}

impl Default for Composer {
    fn default() -> Self {
        let mut area = TextArea::default();
        area.set_placeholder_text("Message the model (Enter sends, Alt-Enter for a new line)");
        Self { area }
    }
}

impl Composer {
    pub(crate) fn text(&self) -> String {
        self.area.lines().join("\n")
    }

    pub(crate) fn is_blank(&self) -> bool {
        self.text().trim().is_empty()
    }

    /// The message, leaving the composer empty.
    pub(crate) fn take(&mut self) -> String {
        let text = self.text();
        *self = Self::default();
        text
    }

    /// A key no binding took: it edits the text.
    pub(crate) fn input(&mut self, key: crossterm::event::KeyEvent) {
        self.area.input(key);
    }

    pub(crate) fn insert_str(&mut self, text: &str) {
        self.area.insert_str(text);
    }

    pub(crate) fn insert_newline(&mut self) {
        self.area.insert_newline();
    }

    /// Rows the text needs, framed, between 3 and 8.
    pub(crate) fn height(&self) -> u16 {
        (self.area.lines().len() as u16 + 2).clamp(3, 8)
    }

    /// Drawn from a styled copy, so drawing changes nothing of the composer.
    pub(crate) fn draw(&self, frame: &mut Frame, area: Rect, look: &Look) {
        let (theme, focused) = (look.theme, look.focused);
        let title = if focused {
            " Message · Enter sends · Esc leaves "
        } else {
            " Message "
        };
        let mut styled = self.area.clone();
        styled.set_block(theme.pane(focused, Span::styled(title, theme.accent())));
        styled.set_style(theme.text());
        styled.set_cursor_line_style(Style::new());
        styled.set_placeholder_style(theme.dim());
        styled.set_cursor_style(if focused {
            theme.cursor()
        } else {
            Style::new()
        });
        frame.render_widget(&styled, area);
    }
}

impl Pane for Composer {
    fn contexts(&self) -> &'static [Context] {
        &[Context::Composer]
    }

    fn on_action(&mut self, action: Action, _acting: &Acting) -> Option<Vec<Wants>> {
        (action == Action::Newline).then(|| {
            self.insert_newline();
            Vec::new()
        })
    }

    /// Nothing to scroll: its scrolling keys scroll the conversation above it.
    fn scroll(&mut self, _action: Action, _area: Rect) -> bool {
        false
    }

    fn own_height(&self) -> u16 {
        self.height()
    }

    fn render(&self, frame: &mut Frame, area: Rect, seen: &Seen) {
        self.draw(frame, area, &seen.look);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::keys::keymap::Keymap;
    use crate::tui::render::highlight::Highlighter;
    use crate::tui::testing::pane;
    use crate::tui::theme::Theme;

    fn drawn(composer: &Composer, focused: bool) -> String {
        let (theme, keymap, highlighter) =
            (Theme::default(), Keymap::default(), Highlighter::plain());
        let look = Look::new(&theme, &keymap, &highlighter, focused);
        pane(44, 4, |frame| composer.draw(frame, frame.area(), &look))
    }

    #[test]
    fn empty_it_says_how_to_send_and_focused_it_says_how_to_leave() {
        let composer = Composer::default();
        insta::assert_snapshot!(drawn(&composer, false));
        let mut typed = Composer::default();
        typed.insert_str("count the words");
        typed.insert_newline();
        typed.insert_str("in data/");
        insta::assert_snapshot!(drawn(&typed, true));
        assert_eq!(typed.height(), 4);
        assert_eq!(typed.take(), "count the words\nin data/");
        assert!(typed.is_blank(), "taking the message empties it");
    }
}
