//! What every pane draws with besides its own state: the colours, the keys (for hints), the
//! highlighter, and whether the pane has the focus.

use crate::tui::keys::keymap::Keymap;
use crate::tui::render::highlight::Highlighter;
use crate::tui::theme::Theme;

pub(crate) struct Look<'a> {
    pub(crate) theme: &'a Theme,
    pub(crate) keymap: &'a Keymap,
    pub(crate) highlighter: &'a Highlighter,
    pub(crate) focused: bool,
}

impl<'a> Look<'a> {
    pub(crate) fn new(
        theme: &'a Theme,
        keymap: &'a Keymap,
        highlighter: &'a Highlighter,
        focused: bool,
    ) -> Self {
        Self {
            theme,
            keymap,
            highlighter,
            focused,
        }
    }

    #[cfg(test)]
    pub(crate) fn unfocused(
        theme: &'a Theme,
        keymap: &'a Keymap,
        highlighter: &'a Highlighter,
    ) -> Self {
        Self::new(theme, keymap, highlighter, false)
    }
}
