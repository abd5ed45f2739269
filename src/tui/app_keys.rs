//! What keys, the mouse and pastes do: the topmost overlay takes them when one is open,
//! else the focused pane's bindings in the keymap decide.

use crossterm::event::{KeyEvent, MouseEvent, MouseEventKind};
use ratatui::layout::Position;

use super::super::keys::keymap::{Action, Context};
use super::super::overlays::choices::{QuitModal, ScopeModal};
use super::super::overlays::help::HelpModal;
use super::super::overlays::input::InputModal;
use super::super::overlays::modal::{ModalData, Request};
use super::super::overlays::rules::RulesModal;
use super::super::overlays::run_view::RunModal;
use super::super::panes::workspace::Wanted;
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

    /// The mouse wheel scrolls the pane under the pointer.
    pub(crate) fn on_mouse(&mut self, mouse: MouseEvent) {
        let action = match mouse.kind {
            MouseEventKind::ScrollUp => Action::ScrollUp,
            MouseEventKind::ScrollDown => Action::ScrollDown,
            _ => return,
        };
        let at = Position::new(mouse.column, mouse.row);
        let areas = self.areas;
        let under = [
            (areas.conversation, Focus::Conversation),
            (areas.logs, Focus::Logs),
            (areas.card, Focus::Card),
            (areas.history, Focus::History),
            (areas.workspace, Focus::Workspace),
        ];
        if let Some((_, pane)) = under.iter().find(|(area, _)| area.contains(at)) {
            self.scroll_pane(*pane, action);
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
        let context = self.pane_context();
        let contexts: &[Context] = match context {
            // The preview's own keys, then the tree's (Enter previews the next file at once).
            Context::Preview => &[Context::Preview, Context::Workspace],
            _ => &[context],
        };
        match self.keymap.action_in(contexts, &key) {
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
        match action {
            Action::Cancel => self.cancel(),
            Action::Retry => self.retry(),
            Action::Quit => self.quit(),
            Action::Send => self.send(),
            Action::Approve
            | Action::ApproveSession
            | Action::Edit
            | Action::EditExternal
            | Action::Reject
            | Action::Skip
            | Action::Abort
            | Action::NextBlock
            | Action::PrevBlock => self.on_card_action(action),
            Action::Workspace | Action::Preview | Action::Pager | Action::OpenFile => {
                self.on_workspace_action(action)
            }
            Action::Leave if self.pane_context() == Context::Preview => {
                self.workspace.close_preview();
                Vec::new()
            }
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

    /// What changes only the screen: focus, zoom, panes, scrolling.
    fn on_screen_action(&mut self, action: Action) {
        match action {
            Action::FocusNext => self.cycle_focus(1),
            Action::FocusPrev => self.cycle_focus(-1),
            Action::Zoom => self.zoomed = !self.zoomed,
            Action::History => {
                self.history.open = !self.history.open;
                self.focus = if self.history.open {
                    Focus::History
                } else {
                    Focus::Conversation
                };
            }
            Action::Newline => self.composer.insert_newline(),
            Action::Leave => self.focus = Focus::Conversation,
            Action::Freeze => self.logs.toggle_freeze(),
            Action::ScrollUp
            | Action::ScrollDown
            | Action::PageUp
            | Action::PageDown
            | Action::Top
            | Action::Bottom => self.scroll_pane(self.focus, action),
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

    fn scroll_pane(&mut self, pane: Focus, action: Action) {
        match pane {
            Focus::Conversation | Focus::Composer => {
                let page = self.areas.conversation.height.saturating_sub(2) as usize;
                self.conversation.scroll(action, page);
            }
            Focus::Logs => {
                let page = self.areas.logs.height.saturating_sub(2) as usize;
                self.logs.scroll(action, page);
            }
            Focus::Card => self
                .card
                .scroll(action, self.areas.card.height.saturating_sub(4)),
            Focus::History => self.history.scroll(action),
            Focus::Workspace => {
                let page = self.areas.workspace.height.saturating_sub(4) as usize;
                self.workspace.scroll(action, page);
            }
        }
    }

    fn cycle_focus(&mut self, step: isize) {
        // The card comes first, so Tab from the composer reaches a waiting block at once.
        let mut order = Vec::new();
        if self.waiting() > 0 {
            order.push(Focus::Card);
        }
        order.push(Focus::Conversation);
        if self.workspace.open {
            order.push(Focus::Workspace);
        }
        order.push(Focus::Logs);
        if self.history.open {
            order.push(Focus::History);
        }
        order.push(Focus::Composer);
        let at = order.iter().position(|f| *f == self.focus).unwrap_or(0) as isize;
        let next = (at + step).rem_euclid(order.len() as isize) as usize;
        self.focus = order[next];
    }

    /// `w` opens and closes the workspace pane (which takes the focus when it opens); Enter,
    /// `p` and `o` act on its selected file.
    fn on_workspace_action(&mut self, action: Action) -> Vec<UiAction> {
        let wanted = match action {
            Action::Workspace => {
                self.workspace.toggle();
                self.focus = if self.workspace.open {
                    Focus::Workspace
                } else {
                    Focus::Conversation
                };
                return Vec::new();
            }
            Action::Preview => {
                let room = self.workspace.room(self.areas.workspace);
                if let Some(said) = self.workspace.preview_selected(room) {
                    self.status = Some(said);
                }
                return Vec::new();
            }
            Action::Pager => self.workspace.page_selected(),
            Action::OpenFile => self.workspace.open_selected(),
            _ => return Vec::new(),
        };
        match wanted {
            Wanted::Page { root, path } => vec![UiAction::Page { root, path }],
            Wanted::Open(path) => vec![UiAction::OpenExternally(path)],
            Wanted::Say(text) => {
                self.status = Some(text);
                Vec::new()
            }
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

    fn on_card_action(&mut self, action: Action) -> Vec<UiAction> {
        let Some(block) = self.card_block().cloned() else {
            return Vec::new();
        };
        let decide = |decision: DecisionKind| {
            vec![UiAction::Op(Op::Decide(DecisionRequest {
                block: block.id.clone(),
                decision,
                reason: None,
                code: None,
                scope: None,
            }))]
        };
        match action {
            Action::Approve => return decide(DecisionKind::Approve),
            Action::Skip => return decide(DecisionKind::Skip),
            Action::Abort => return decide(DecisionKind::Abort),
            Action::EditExternal => {
                return vec![UiAction::EditExternally {
                    block: block.id.clone(),
                    extension: extension_for(&block.language),
                    code: block.code.clone(),
                }];
            }
            Action::ApproveSession => self.modals.push(Box::new(ScopeModal {
                block: block.id.clone(),
            })),
            Action::Reject => {
                let reason = InputModal::reason(&block.id, &self.theme);
                self.modals.push(Box::new(reason));
            }
            Action::Edit => {
                let editor = InputModal::edit(&block.id, &block.code, &self.theme);
                self.modals.push(Box::new(editor));
            }
            Action::NextBlock | Action::PrevBlock => {
                let waiting = self.waiting();
                self.card.step(action, waiting);
            }
            _ => {}
        }
        Vec::new()
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

/// The file extension $EDITOR gets, so it highlights the right language.
fn extension_for(language: &str) -> String {
    match language {
        "python" => "py".into(),
        "bash" | "sh" => "sh".into(),
        other => other.to_string(),
    }
}
