//! The screen's panes, one component each with its own state, scrolling, events, actions
//! and rendering (a folder of its own for one of several files). The app routes keys, the
//! mouse, scrolling and the focus through [`Pane`]; where each pane sits, and how one the
//! app knows only as a [`Pane`] is made, is data in [`layout`].

pub(crate) mod card;
pub(crate) mod composer;
pub(crate) mod conversation;
pub(crate) mod history;
pub(crate) mod layout;
pub(crate) mod logs;
pub(crate) mod pane;
pub(crate) mod preparing;
pub(crate) mod scroll;
pub(crate) mod workspace;

use ratatui::Frame;
use ratatui::layout::Rect;

use super::jobs::{Done, Jobs};
use super::keys::keymap::{Action, Context};
use super::overlays::modal::Modal;
use super::render::picture::Graphics;
use super::runner::{SandboxState, UiAction};
use super::theme::Theme;
use crate::protocol::Event;
use crate::view::SessionView;
pub(crate) use layout::Focus;
use pane::Look;

/// What a pane sees of the session besides its own state, for drawing and deciding.
pub(crate) struct Seen<'a> {
    pub(crate) look: Look<'a>,
    pub(crate) view: &'a SessionView,
    pub(crate) sandbox: &'a SandboxState,
    /// Which pane has the focus.
    pub(crate) focus: Focus,
}

/// What a pane acts with besides its own state.
pub(crate) struct Acting<'a> {
    pub(crate) view: &'a SessionView,
    pub(crate) theme: &'a Theme,
    /// Where the pane was drawn last.
    pub(crate) area: Rect,
}

/// What a pane's action asks of the app.
pub(crate) enum Wants {
    Ui(UiAction),
    Overlay(Box<dyn Modal>),
    /// Say this in the status bar.
    Say(String),
}

/// What the screen gives every pane once, before the first frame.
pub(crate) struct Setup<'a> {
    /// Where background work (a listing, a preview) is sent, off the event loop.
    pub(crate) jobs: &'a Jobs,
}

/// A pane: its keymap contexts, its part of the engine's events, its own actions, its
/// scrolling and its drawing. `Any`, so a test can reach a pane the app holds only as one.
pub(crate) trait Pane: std::any::Any {
    /// The keymap contexts its keys are looked up in, the first first.
    fn contexts(&self) -> &'static [Context];

    /// Whether it is on the screen: a pane that opens and closes says so.
    fn open(&self) -> bool {
        true
    }

    /// Opens or closes a pane that can be; whether it is open now.
    fn toggle(&mut self) -> bool {
        self.open()
    }

    /// Whether Tab visits it now.
    fn takes_focus(&self, _view: &SessionView) -> bool {
        self.open()
    }

    /// Its part of `event`, with the session as it is after it.
    fn on_event(&mut self, _event: &Event, _view: &SessionView) {}

    /// One of its own actions (bound in its contexts), with `area` where it was last drawn;
    /// `None`: not one of its own, the app's to carry out.
    fn on_action(&mut self, _action: Action, _acting: &Acting) -> Option<Vec<Wants>> {
        None
    }

    /// Scrolls it for a scrolling action, `area` being where it was last drawn; false when
    /// it has nothing to scroll (its keys scroll the conversation then).
    fn scroll(&mut self, action: Action, area: Rect) -> bool;

    fn render(&self, frame: &mut Frame, area: Rect, seen: &Seen);

    /// How many rows it asks for, when the layout gives it its own height.
    fn own_height(&self) -> u16 {
        3
    }

    /// Background work it asked for is done: taken, or handed back when it is not its own.
    fn on_job(&mut self, done: Done) -> Option<Done> {
        Some(done)
    }

    /// Background work it asked for has not finished.
    fn busy(&self) -> bool {
        false
    }

    /// After each frame, with where it was drawn.
    fn after_frame(&mut self, _area: Rect) {}

    /// How pictures reach this terminal, once it was asked.
    fn set_graphics(&mut self, _graphics: &Graphics) {}

    /// The colours text is highlighted in (`None`: none).
    fn set_syntax(&mut self, _syntax: Option<&syntect::highlighting::Theme>) {}
}
