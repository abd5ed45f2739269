//! How far a pane is scrolled back from its end: what the conversation and logs panes share.

use crate::tui::keys::keymap::Action;

/// Lines up from the end; 0 follows new lines as they come.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scroll {
    pub from_bottom: usize,
}

impl Scroll {
    /// Moves for a scrolling action; `page` is the pane's height.
    pub fn apply(&mut self, action: Action, page: usize) {
        match action {
            Action::ScrollUp => self.from_bottom += 1,
            Action::ScrollDown => self.from_bottom = self.from_bottom.saturating_sub(1),
            Action::PageUp => self.from_bottom += page.max(1),
            Action::PageDown => self.from_bottom = self.from_bottom.saturating_sub(page.max(1)),
            Action::Top => self.from_bottom = usize::MAX / 2,
            Action::Bottom => self.from_bottom = 0,
            _ => {}
        }
    }
}
