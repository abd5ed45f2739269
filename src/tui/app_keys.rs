//! What keys, the mouse and pastes do: the topmost overlay takes them when one is open,
//! else the focused pane's bindings in the keymap decide. The focused pane gets its own
//! actions first; the rest (quitting, sending, the overlays, the focus, opening panes,
//! scrolling) are the app's, routed through the panes' table.

use crossterm::event::{KeyEvent, MouseEvent, MouseEventKind};
use ratatui::layout::Position;

use super::super::keys::keymap::Action;
use super::super::overlays::choices::QuitModal;
use super::super::overlays::help::HelpModal;
use super::super::overlays::input::InputModal;
use super::super::overlays::modal::{ModalData, Request};
use super::super::overlays::rules::RulesModal;
use super::super::overlays::run_view::RunModal;
use super::super::panes::layout::{opened_by, tab_order};
use super::super::panes::{Acting, Wants};
use super::{App, Focus, UiAction};
use crate::protocol::{DecisionKind, DecisionRequest, IdleReason, Op};
use crate::view::Stage;

impl App {
    /// Bracketed paste: text goes into whatever is being typed in, never runs a binding.
    pub(crate) fn on_paste(&mut self, text: &str) {
        // Pasted escape sequences must not reach the screen: control characters are drawn.
        let text = text.replace("\r\n", "\n").replace('\r', "\n");
        let text = crate::output::sanitize::for_person(&text);
        // An overlay takes it when one is open (those that take no text drop it).
        if !self.modals.is_empty() {
            self.modals.on_paste(&text);
            return;
        }
        self.focus = Focus::Composer;
        self.composer.insert_str(&text);
    }

    /// The mouse wheel scrolls the pane under the pointer, when it has something to scroll.
    pub(crate) fn on_mouse(&mut self, mouse: MouseEvent) {
        let action = match mouse.kind {
            MouseEventKind::ScrollUp => Action::ScrollUp,
            MouseEventKind::ScrollDown => Action::ScrollDown,
            _ => return,
        };
        let at = Position::new(mouse.column, mouse.row);
        if let Some(under) = self.areas.at(at) {
            let area = self.areas.of(under);
            if let Some(pane) = self.pane_mut(under) {
                pane.scroll(action, area);
            }
        }
    }

    /// Takes in one key press; returns what the runner should do.
    pub fn on_key(&mut self, key: KeyEvent) -> Vec<UiAction> {
        if !self.modals.is_empty() {
            let data = ModalData {
                theme: &self.theme,
                keymap: &self.keymap,
                rules: &self.rules,
            };
            let requests = self.modals.on_key(&key, &data);
            return requests
                .into_iter()
                .flat_map(|request| self.fulfil(request))
                .collect();
        }
        match self.keymap.action_in(self.pane_contexts(), &key) {
            Some(action) => self.on_action(action),
            None => {
                if self.focus == Focus::Composer {
                    self.composer.input(key);
                }
                Vec::new()
            }
        }
    }

    fn on_action(&mut self, action: Action) -> Vec<UiAction> {
        if let Some(wants) = self.offer_to_focused(action) {
            return wants
                .into_iter()
                .flat_map(|wanted| self.carry_out(wanted))
                .collect();
        }
        match action {
            Action::Cancel => self.cancel(),
            Action::Retry => self.retry(),
            Action::Quit => self.quit(),
            Action::Send => self.send(),
            Action::Help | Action::Rules | Action::OpenRun | Action::Filter => {
                self.open_overlay(action);
                Vec::new()
            }
            _ => {
                self.on_screen_action(action);
                Vec::new()
            }
        }
    }

    /// The focused pane's own action, if `action` is one.
    fn offer_to_focused(&mut self, action: Action) -> Option<Vec<Wants>> {
        let (focus, area) = (self.focus, self.areas.of(self.focus));
        let (panes, view, theme) = self.panes_and_view();
        let (_, pane) = panes.into_iter().find(|(id, _)| *id == focus)?;
        pane.on_action(action, &Acting { view, theme, area })
    }

    /// What a pane's action asks for.
    fn carry_out(&mut self, wanted: Wants) -> Vec<UiAction> {
        match wanted {
            Wants::Ui(action) => return vec![action],
            Wants::Overlay(overlay) => self.modals.push(overlay),
            Wants::Say(text) => self.status = Some(text),
        }
        Vec::new()
    }

    /// What changes only the screen: focus, zoom, panes opened and closed, scrolling.
    fn on_screen_action(&mut self, action: Action) {
        if let Some(slot) = opened_by(action) {
            let open = self.pane_mut(slot.pane).is_some_and(|pane| pane.toggle());
            self.focus = if open { slot.pane } else { Focus::Conversation };
            return;
        }
        match action {
            Action::FocusNext => self.cycle_focus(1),
            Action::FocusPrev => self.cycle_focus(-1),
            Action::Zoom => self.zoomed = !self.zoomed,
            Action::Leave => self.focus = Focus::Conversation,
            Action::ScrollUp
            | Action::ScrollDown
            | Action::PageUp
            | Action::PageDown
            | Action::Top
            | Action::Bottom => self.scroll_focused(action),
            // The overlays' own actions do nothing when no overlay has the keys.
            _ => {}
        }
    }

    fn open_overlay(&mut self, action: Action) {
        match action {
            Action::Help => self.modals.push(Box::new(HelpModal::default())),
            Action::Rules => self.modals.push(Box::new(RulesModal::default())),
            Action::OpenRun => {
                if let Some(run) = self.history.selected_run() {
                    self.modals.push(Box::new(RunModal::new(run.clone())));
                }
            }
            Action::Filter => {
                let filter = InputModal::filter(&self.history.filter, &self.theme);
                self.modals.push(Box::new(filter));
            }
            _ => {}
        }
    }

    /// Scrolls the focused pane; one with nothing to scroll (the composer) scrolls the
    /// conversation.
    fn scroll_focused(&mut self, action: Action) {
        let area = self.areas.of(self.focus);
        let scrolled = self
            .pane_mut(self.focus)
            .is_some_and(|pane| pane.scroll(action, area));
        if !scrolled {
            let area = self.areas.of(Focus::Conversation);
            self.conversation
                .scroll_by(action, area.height.saturating_sub(2) as usize);
        }
    }

    /// Tab and back-Tab: through the panes that take the focus now, in the layout's order.
    fn cycle_focus(&mut self, step: isize) {
        let order = tab_order(|focus| {
            self.pane(focus)
                .is_some_and(|pane| pane.takes_focus(&self.view))
        });
        let at = order.iter().position(|f| *f == self.focus).unwrap_or(0) as isize;
        let next = (at + step).rem_euclid(order.len().max(1) as isize) as usize;
        if let Some(next) = order.get(next) {
            self.focus = *next;
        }
    }

    /// Ctrl-C: stops what runs; with nothing running (or pressed again), quits.
    fn cancel(&mut self) -> Vec<UiAction> {
        if self.busy() && !self.cancel_sent {
            self.cancel_sent = true;
            self.status = Some("stopping… (Ctrl-C again to quit)".into());
            return vec![UiAction::Op(Op::Cancel)];
        }
        self.quit()
    }

    /// Quits at once when nothing runs; asks first otherwise.
    fn quit(&mut self) -> Vec<UiAction> {
        if self.busy() {
            self.modals.push(Box::new(QuitModal));
            return Vec::new();
        }
        vec![UiAction::Op(Op::Shutdown), UiAction::Quit]
    }

    /// After a failed or cancelled reply: the same conversation goes to the model again.
    fn retry(&mut self) -> Vec<UiAction> {
        if self.asked()
            || !matches!(
                self.view.stage,
                Stage::Idle(IdleReason::Error | IdleReason::Cancelled)
            )
        {
            self.status =
                Some("nothing to retry: retry follows a failed or cancelled reply".into());
            return Vec::new();
        }
        self.status = None;
        vec![self.submit(Op::Retry)]
    }

    fn send(&mut self) -> Vec<UiAction> {
        if self.composer.is_blank() {
            return Vec::new();
        }
        match self.view.stage {
            Stage::Done(_) => {
                self.status = Some("the session has ended; quit with q".into());
                return Vec::new();
            }
            Stage::Starting | Stage::Idle(_) if !self.asked() => {}
            _ => {
                self.status = Some("the model is busy: the message waits in the composer".into());
                return Vec::new();
            }
        }
        let text = self.composer.take();
        vec![self.submit(Op::UserMessage { text })]
    }

    /// The code back from $EDITOR: an edit decision when it changed.
    pub(crate) fn external_edit_done(
        &mut self,
        block: &str,
        code: Option<String>,
    ) -> Vec<UiAction> {
        let Some(original) = self.view.block(block).map(|b| b.code.clone()) else {
            return Vec::new();
        };
        match code {
            Some(code) if code != original && !code.trim().is_empty() => {
                vec![UiAction::Op(Op::Decide(DecisionRequest {
                    block: block.to_string(),
                    decision: DecisionKind::Edit,
                    reason: None,
                    code: Some(code),
                    scope: None,
                }))]
            }
            Some(_) => {
                self.status = Some("the code is unchanged; the block still waits".into());
                Vec::new()
            }
            None => {
                self.status = Some("the editor failed; the block still waits".into());
                Vec::new()
            }
        }
    }

    /// Carries out what an overlay asked for.
    fn fulfil(&mut self, request: Request) -> Vec<UiAction> {
        match request {
            Request::Op(op) => vec![UiAction::Op(op)],
            Request::Quit => vec![UiAction::Quit],
            Request::Filter(text) => {
                self.set_history_filter(text);
                Vec::new()
            }
            Request::Edited { block, code } => self.external_edit_done(&block, Some(code)),
            Request::Status(text) => {
                self.status = Some(text);
                Vec::new()
            }
        }
    }
}
