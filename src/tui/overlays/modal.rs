//! Overlays as a stack of components: the topmost takes every key first, through the keymap
//! context it names, and each draws over the panes in the order they opened. A modal owns
//! its state; what it needs of the session comes in a [`ModalData`] each time.

use crossterm::event::KeyEvent;
use ratatui::Frame;
use ratatui::layout::Rect;

use crate::protocol::{ApprovalRule, Op};
use crate::tui::keys::keymap::{Action, Context, Keymap};
use crate::tui::theme::Theme;

/// What the session shows a modal, read fresh for every key and every frame.
pub(crate) struct ModalData<'a> {
    pub theme: &'a Theme,
    pub keymap: &'a Keymap,
    pub rules: &'a [ApprovalRule],
}

/// What a modal asks of the session.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Request {
    Op(Op),
    Quit,
    /// Filter the history's runs by this text.
    Filter(String),
    /// The inline editor kept this code for the block.
    Edited {
        block: String,
        code: String,
    },
    /// Say this in the status bar.
    Status(String),
}

/// What a modal asks for after a key.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Outcome {
    Stay,
    Close,
    /// Send this to the engine and stay open (the session's answer updates the data).
    Send(Op),
    /// Close, asking for these.
    Finish(Vec<Request>),
}

/// For an overlay that is only read: scrolls it for `action`, or closes it (every key but
/// the global scrolling ones does).
pub(crate) fn reading_scroll(scroll: &mut u16, action: Option<Action>) -> Outcome {
    *scroll = match action {
        Some(Action::ScrollDown) => scroll.saturating_add(1),
        Some(Action::ScrollUp) => scroll.saturating_sub(1),
        Some(Action::PageDown) => scroll.saturating_add(10),
        Some(Action::PageUp) => scroll.saturating_sub(10),
        Some(Action::Top) => 0,
        _ => return Outcome::Close,
    };
    Outcome::Stay
}

/// How the title of an overlay that is only read names its keys, from the keymap.
pub(crate) fn reading_keys(keymap: &Keymap) -> String {
    format!(
        "{}/{} scroll, any other key closes",
        keymap.key_label(Action::ScrollDown),
        keymap.key_label(Action::ScrollUp)
    )
}

pub(crate) trait Modal {
    /// Where its keys are looked up; the keymap's global bindings apply under it.
    fn context(&self) -> Context;

    /// One key, as the action it is in [`Modal::context`] (`None`: no binding there).
    fn on_action(&mut self, action: Option<Action>, data: &ModalData<'_>) -> Outcome;

    /// One key, for a modal that takes typing too; the others see only its action.
    fn on_key(&mut self, key: &KeyEvent, action: Option<Action>, data: &ModalData<'_>) -> Outcome {
        let _ = key;
        self.on_action(action, data)
    }

    /// Pasted text, for a modal that takes typing.
    fn on_paste(&mut self, text: &str) {
        let _ = text;
    }

    fn render(&self, frame: &mut Frame, area: Rect, data: &ModalData<'_>);
}

#[derive(Default)]
pub(crate) struct ModalStack {
    stack: Vec<Box<dyn Modal>>,
}

impl ModalStack {
    pub(crate) fn push(&mut self, modal: Box<dyn Modal>) {
        self.stack.push(modal);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.stack.is_empty()
    }

    /// The keymap context of the topmost modal, for the status bar's hints.
    pub(crate) fn context(&self) -> Option<Context> {
        self.stack.last().map(|modal| modal.context())
    }

    /// Gives the key to the topmost modal; returns what it asks of the session.
    pub(crate) fn on_key(&mut self, key: &KeyEvent, data: &ModalData<'_>) -> Vec<Request> {
        let Some(top) = self.stack.last_mut() else {
            return Vec::new();
        };
        let action = data.keymap.action(top.context(), key);
        match top.on_key(key, action, data) {
            Outcome::Stay => Vec::new(),
            Outcome::Close => {
                self.stack.pop();
                Vec::new()
            }
            Outcome::Send(op) => vec![Request::Op(op)],
            Outcome::Finish(requests) => {
                self.stack.pop();
                requests
            }
        }
    }

    /// Pasted text goes to the topmost modal.
    pub(crate) fn on_paste(&mut self, text: &str) {
        if let Some(top) = self.stack.last_mut() {
            top.on_paste(text);
        }
    }

    pub(crate) fn clear(&mut self) {
        self.stack.clear();
    }

    pub(crate) fn render(&self, frame: &mut Frame, area: Rect, data: &ModalData<'_>) {
        for modal in &self.stack {
            modal.render(frame, area, data);
        }
    }
}
