//! The TUI's state and its input handling, with no terminal in it: engine events and key
//! presses go in, `Op`s (and a few UI requests) come out. Panes only read this state.

use std::collections::VecDeque;
use std::time::Instant;

use crossterm::event::{KeyEvent, MouseEvent, MouseEventKind};
use ratatui::layout::{Position, Rect};
use ratatui_textarea::TextArea;

#[path = "app_runs.rs"]
mod runs;

use super::choices::{QuitModal, ScopeModal};
use super::help::HelpModal;
use super::input::InputModal;
use super::keymap::{Action, Context, Keymap};
use super::logs::LogView;
use super::modal::{ModalData, ModalStack, Request};
pub use super::records::RunRecord;
use super::rules::RulesModal;
use super::run_view::RunModal;
use super::scroll::Scroll;
use super::theme::Theme;
use crate::protocol::{
    ApprovalRule, DecisionKind, DecisionRequest, DecisionSource, DoneReason, Event, IdleReason, Op,
};

/// What the app asks of its runner, besides ops for the engine.
#[derive(Debug, Clone, PartialEq)]
pub enum UiAction {
    Op(Op),
    /// Suspend the screen and edit this block's code in $EDITOR.
    EditExternally {
        block: String,
        extension: String,
        code: String,
    },
    /// Ring the terminal bell: a block waits for a decision.
    Bell,
    Quit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    Conversation,
    Card,
    Logs,
    Composer,
    History,
}

impl Focus {
    pub fn context(self) -> Context {
        match self {
            Self::Conversation => Context::Conversation,
            Self::Card => Context::Card,
            Self::Logs => Context::Logs,
            Self::Composer => Context::Composer,
            Self::History => Context::History,
        }
    }
}

/// What the engine is doing, as far as the screen knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Starting,
    Streaming,
    Deciding,
    Running,
    Idle(Option<IdleReason>),
    Done(DoneReason),
}

impl Phase {
    /// Something Ctrl-C can stop.
    pub fn busy(self) -> bool {
        matches!(self, Self::Streaming | Self::Running)
    }
}

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

/// A block the model proposed, and what became of it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProposedBlock {
    pub id: String,
    pub index: usize,
    pub language: String,
    pub code: String,
    /// Short SHA-256 of the code, so what is shown can be compared with what ran.
    pub hash: String,
    pub decision: Option<(DecisionKind, DecisionSource, Option<String>)>,
    pub edited: Option<String>,
}

/// The sandbox as the screen knows it: blocks can run only once it is ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SandboxState {
    /// Being prepared (an image pull or build): the latest step, and since when.
    Preparing {
        step: Option<String>,
        since: Instant,
    },
    /// Ready: where blocks run (image, network, limits).
    Ready(String),
    /// It could not start or stopped working.
    Failed,
}

/// Where each pane was drawn last, for the mouse.
#[derive(Debug, Clone, Copy, Default)]
pub struct PaneAreas {
    pub conversation: Rect,
    pub card: Rect,
    pub logs: Rect,
    pub history: Rect,
}

pub struct App {
    pub theme: Theme,
    pub keymap: Keymap,
    pub model: String,
    pub session: Option<String>,
    pub sandbox_state: SandboxState,
    /// Why the session cannot go on, once the engine has stopped for good. It stays on the
    /// screen until the operator quits, and is printed again after the terminal is restored.
    pub fatal: Option<String>,
    /// The latest error, which becomes [`Self::fatal`] when the session ends on it.
    last_error: Option<String>,
    pub phase: Phase,
    pub transcript: Vec<Entry>,
    pub conversation_scroll: Scroll,
    pub blocks: Vec<ProposedBlock>,
    /// The current message's blocks, in order.
    pub turn_blocks: Vec<String>,
    /// Blocks of the current turn still waiting for the operator, in order.
    pub pending: VecDeque<String>,
    /// Which pending block the card shows.
    pub card_choice: usize,
    pub card_scroll: u16,
    pub logs: LogView,
    pub runs: Vec<RunRecord>,
    pub history_selected: usize,
    /// What the history's runs are filtered by (set with [`App::set_history_filter`]).
    pub(crate) history_filter: String,
    /// The runs that match it, oldest first: kept as runs come and change, never worked out
    /// again for a frame.
    history_matches: Vec<usize>,
    pub history_open: bool,
    pub composer: TextArea<'static>,
    pub focus: Focus,
    pub zoomed: bool,
    /// The overlays open, as components: the topmost takes every key.
    pub(crate) modals: ModalStack,
    /// The approval rules in force, as the engine last listed them.
    pub rules: Vec<ApprovalRule>,
    pub status: Option<String>,
    pub bell: bool,
    pub areas: PaneAreas,
    /// A Ctrl-C already asked the engine to stop something.
    cancel_sent: bool,
    /// The transcript entry the model's reply is streaming into.
    streaming: Option<usize>,
}

impl App {
    pub fn new(theme: Theme, keymap: Keymap, model: String, log_lines: usize, bell: bool) -> Self {
        Self {
            theme,
            keymap,
            model,
            session: None,
            sandbox_state: SandboxState::Preparing {
                step: None,
                since: Instant::now(),
            },
            fatal: None,
            last_error: None,
            phase: Phase::Starting,
            transcript: Vec::new(),
            conversation_scroll: Scroll { from_bottom: 0 },
            blocks: Vec::new(),
            turn_blocks: Vec::new(),
            pending: VecDeque::new(),
            card_choice: 0,
            card_scroll: 0,
            logs: LogView::new(log_lines),
            runs: Vec::new(),
            history_selected: 0,
            history_filter: String::new(),
            history_matches: Vec::new(),
            history_open: false,
            composer: new_composer(),
            focus: Focus::Composer,
            zoomed: false,
            modals: ModalStack::default(),
            rules: Vec::new(),
            status: None,
            bell,
            areas: PaneAreas::default(),
            cancel_sent: false,
            streaming: None,
        }
    }

    /// Where blocks run, or how far the sandbox has got, for the status bar.
    pub fn sandbox_label(&self) -> String {
        match &self.sandbox_state {
            SandboxState::Ready(description) => description.clone(),
            // The logs pane shows the step; here it is kept short.
            SandboxState::Preparing { since, .. } => {
                format!("preparing the sandbox · {} s", since.elapsed().as_secs())
            }
            SandboxState::Failed => "no sandbox".into(),
        }
    }

    /// The block the card shows, if any is pending.
    pub fn card_block(&self) -> Option<&ProposedBlock> {
        let id = self
            .pending
            .get(self.card_choice.min(self.pending.len().saturating_sub(1)))?;
        self.block(id)
    }

    pub fn block(&self, id: &str) -> Option<&ProposedBlock> {
        self.blocks.iter().find(|block| block.id == id)
    }

    fn block_mut(&mut self, id: &str) -> Option<&mut ProposedBlock> {
        self.blocks.iter_mut().find(|block| block.id == id)
    }

    pub fn composer_text(&self) -> String {
        self.composer.lines().join("\n")
    }

    /// Takes in one engine event; returns what the runner should do (the bell).
    pub fn on_event(&mut self, event: &Event) -> Vec<UiAction> {
        let mut actions = Vec::new();
        match event {
            Event::SessionStarted { session } => self.session = Some(session.clone()),
            Event::UserMessage { text } => {
                self.push_entry(EntryKind::User, text);
                self.conversation_scroll = Scroll { from_bottom: 0 };
            }
            Event::SandboxProgress { message } => {
                if let SandboxState::Preparing { step, .. } = &mut self.sandbox_state {
                    *step = Some(message.clone());
                }
            }
            Event::SandboxReady { description } => {
                self.sandbox_state = SandboxState::Ready(description.clone());
                if self.phase == Phase::Starting {
                    self.phase = Phase::Idle(None);
                }
            }
            Event::Notice { message } => self.push_entry(EntryKind::Notice, message),
            Event::Error { message } => {
                self.last_error = Some(message.clone());
                self.push_entry(EntryKind::Error, message);
            }
            Event::ModelRetry {
                attempt,
                max_attempts,
                delay_ms,
                reason,
            } => {
                self.status = Some(format!(
                    "{reason}; retry {} of {} in {:.1} s",
                    attempt,
                    max_attempts - 1,
                    *delay_ms as f64 / 1000.0
                ))
            }
            Event::AssistantDelta { text } => {
                self.phase = Phase::Streaming;
                self.status = None;
                match self.streaming.and_then(|at| self.transcript.get_mut(at)) {
                    Some(entry) => entry.text.push_str(text),
                    None => {
                        self.streaming = Some(self.transcript.len());
                        self.push_entry(EntryKind::Assistant, text);
                    }
                }
            }
            Event::AssistantMessage { text } => {
                match self
                    .streaming
                    .take()
                    .and_then(|at| self.transcript.get_mut(at))
                {
                    Some(entry) => entry.text = text.clone(),
                    None => self.push_entry(EntryKind::Assistant, text),
                }
                self.turn_blocks.clear();
                self.phase = Phase::Idle(None);
            }
            Event::BlockProposed {
                block,
                index,
                language,
                code,
            } => {
                self.blocks.push(ProposedBlock {
                    id: block.clone(),
                    index: *index,
                    language: language.clone(),
                    code: code.clone(),
                    hash: crate::ids::short_hash(code),
                    decision: None,
                    edited: None,
                });
                self.pending.push_back(block.clone());
                self.turn_blocks.push(block.clone());
                if self.pending.len() == 1 {
                    self.card_choice = 0;
                    self.card_scroll = 0;
                    if self.focus != Focus::Composer || self.composer_text().trim().is_empty() {
                        self.focus = Focus::Card;
                    }
                    if self.bell {
                        actions.push(UiAction::Bell);
                    }
                }
                self.phase = Phase::Deciding;
            }
            Event::Decision {
                block,
                decision,
                reason,
                source,
                code,
                ..
            } => {
                if let Some(proposed) = self.block_mut(block) {
                    proposed.decision = Some((*decision, *source, reason.clone()));
                    if code.is_some() {
                        proposed.edited = code.clone();
                    }
                }
                self.pending.retain(|id| id != block);
                self.card_choice = self.card_choice.min(self.pending.len().saturating_sub(1));
                self.card_scroll = 0;
                if self.pending.is_empty() && self.focus == Focus::Card {
                    self.focus = Focus::Logs;
                }
            }
            Event::ExecStarted { block, run } => self.exec_started(block, run),
            Event::ExecOutput { stream, data, .. } => {
                self.logs.push(*stream, data);
                if let Some(record) = self.runs.last_mut() {
                    record
                        .output
                        .push_str(&crate::output::sanitize::for_person(data));
                }
                self.rematch_newest(Some(data));
            }
            Event::ExecFinished { result, .. } => {
                self.logs.finish(result.clone());
                if let Some(record) = self.runs.last_mut() {
                    record.output = result.output.clone();
                    record.result = Some(result.clone());
                }
                self.rematch_newest(None);
                self.cancel_sent = false;
                self.phase = if self.pending.is_empty() {
                    Phase::Idle(None)
                } else {
                    Phase::Deciding
                };
            }
            Event::Reflection { text } => self.push_entry(EntryKind::Results, text),
            // The screen's phase follows the events it comes with (a proposal, a start).
            Event::Phase { .. } => {}
            Event::Rules { rules } => self.rules = rules.clone(),
            Event::RuleRevoked { rule } => self.push_entry(
                EntryKind::Notice,
                &format!(
                    "approval rule lifted for this session: {} ({})",
                    rule.covers, rule.origin
                ),
            ),
            Event::Idle { reason } => {
                self.phase = Phase::Idle(Some(*reason));
                self.streaming = None;
                self.cancel_sent = false;
                if matches!(
                    reason,
                    IdleReason::NoCode | IdleReason::Aborted | IdleReason::MaxTurns
                ) {
                    self.focus = Focus::Composer;
                }
            }
            Event::Done { reason } => self.session_done(*reason),
        }
        actions
    }

    /// The engine has ended the session. When it ended on an error, the reason is kept on
    /// the screen: nothing ends silently.
    fn session_done(&mut self, reason: DoneReason) {
        self.phase = Phase::Done(reason);
        if reason == DoneReason::Error {
            if matches!(self.sandbox_state, SandboxState::Preparing { .. }) {
                self.sandbox_state = SandboxState::Failed;
            }
            let why = self.last_error.clone();
            self.fatal = Some(why.unwrap_or_else(|| "the session ended on an error".into()));
            // Nothing can be sent any more; keys go to reading and quitting.
            self.focus = Focus::Conversation;
        }
        self.pending.clear();
        self.modals.clear();
    }

    /// The engine is gone without ending the session properly (it failed).
    pub fn engine_gone(&mut self) {
        if !matches!(self.phase, Phase::Done(_)) {
            let stopped = "the session engine stopped unexpectedly (see the log file)";
            self.last_error = Some(match self.last_error.take() {
                Some(last) => format!("{stopped}; the last error was: {last}"),
                None => stopped.to_string(),
            });
            self.session_done(DoneReason::Error);
        }
    }

    fn push_entry(&mut self, kind: EntryKind, text: &str) {
        self.transcript.push(Entry {
            kind,
            text: text.to_string(),
        });
    }

    /// A resumed session's conversation, shown before anything new.
    pub fn load_conversation(&mut self, messages: &[(String, String)]) {
        let earlier = messages.iter().map(|(role, content)| Entry {
            kind: match role.as_str() {
                "assistant" => EntryKind::Assistant,
                "results" => EntryKind::Results,
                _ => EntryKind::User,
            },
            text: content.clone(),
        });
        let mut entries: Vec<Entry> = earlier.collect();
        if !entries.is_empty() {
            entries.push(Entry {
                kind: EntryKind::Notice,
                text: "resumed: the model sees the conversation above".into(),
            });
        }
        entries.append(&mut self.transcript);
        self.transcript = entries;
    }

    /// Bracketed paste: text goes into whatever is being typed in, never runs a binding.
    pub fn on_paste(&mut self, text: &str) {
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
    pub fn on_mouse(&mut self, mouse: MouseEvent) {
        let action = match mouse.kind {
            MouseEventKind::ScrollUp => Action::ScrollUp,
            MouseEventKind::ScrollDown => Action::ScrollDown,
            _ => return,
        };
        let at = Position::new(mouse.column, mouse.row);
        if self.areas.conversation.contains(at) {
            self.scroll_pane(Focus::Conversation, action);
        } else if self.areas.logs.contains(at) {
            self.scroll_pane(Focus::Logs, action);
        } else if self.areas.card.contains(at) {
            self.scroll_pane(Focus::Card, action);
        } else if self.areas.history.contains(at) {
            self.scroll_pane(Focus::History, action);
        }
    }

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

        let Some(action) = self.keymap.action(self.focus.context(), &key) else {
            if self.focus == Focus::Composer {
                self.composer.input(key);
            }
            return Vec::new();
        };
        match action {
            Action::Cancel => self.cancel(),
            Action::Retry => self.retry(),
            Action::Quit => self.quit(),
            Action::Help => {
                self.modals.push(Box::new(HelpModal::default()));
                Vec::new()
            }
            Action::Rules => {
                self.modals.push(Box::new(RulesModal::default()));
                Vec::new()
            }
            Action::FocusNext => {
                self.cycle_focus(1);
                Vec::new()
            }
            Action::FocusPrev => {
                self.cycle_focus(-1);
                Vec::new()
            }
            Action::Zoom => {
                self.zoomed = !self.zoomed;
                Vec::new()
            }
            Action::History => {
                self.history_open = !self.history_open;
                self.focus = if self.history_open {
                    Focus::History
                } else {
                    Focus::Conversation
                };
                Vec::new()
            }
            Action::Approve
            | Action::ApproveSession
            | Action::Edit
            | Action::EditExternal
            | Action::Reject
            | Action::Skip
            | Action::Abort
            | Action::NextBlock
            | Action::PrevBlock => self.on_card_action(action),
            Action::Send => self.send(),
            Action::Newline => {
                self.composer.insert_newline();
                Vec::new()
            }
            Action::Leave => {
                self.focus = Focus::Conversation;
                Vec::new()
            }
            Action::Freeze => {
                self.logs.toggle_freeze();
                Vec::new()
            }
            Action::OpenRun => {
                let selected = self.visible_runs().get(self.history_selected).copied();
                if let Some(run) = selected.and_then(|index| self.runs.get(index)) {
                    self.modals.push(Box::new(RunModal::new(run.clone())));
                }
                Vec::new()
            }
            Action::Filter => {
                let filter = InputModal::filter(&self.history_filter, &self.theme);
                self.modals.push(Box::new(filter));
                Vec::new()
            }
            Action::ScrollUp
            | Action::ScrollDown
            | Action::PageUp
            | Action::PageDown
            | Action::Top
            | Action::Bottom => {
                self.scroll_pane(self.focus, action);
                Vec::new()
            }
            // The overlays' own actions: nothing when no overlay has the keys.
            Action::Keep
            | Action::Discard
            | Action::Revoke
            | Action::ScopeLanguage
            | Action::ScopeExact
            | Action::ConfirmQuit => Vec::new(),
        }
    }

    fn scroll_pane(&mut self, pane: Focus, action: Action) {
        match pane {
            Focus::Conversation | Focus::Composer => {
                let page = self.areas.conversation.height.saturating_sub(2) as usize;
                self.conversation_scroll.apply(action, page);
            }
            Focus::Logs => {
                let page = self.areas.logs.height.saturating_sub(2) as usize;
                self.logs.scroll(action, page);
            }
            Focus::Card => {
                let page = self.areas.card.height.saturating_sub(4);
                self.card_scroll = match action {
                    Action::ScrollDown => self.card_scroll.saturating_add(1),
                    Action::ScrollUp => self.card_scroll.saturating_sub(1),
                    Action::PageDown => self.card_scroll.saturating_add(page),
                    Action::PageUp => self.card_scroll.saturating_sub(page),
                    Action::Top => 0,
                    Action::Bottom => u16::MAX / 2,
                    _ => self.card_scroll,
                };
            }
            Focus::History => {
                let count = self.visible_runs().len();
                self.history_selected = match action {
                    Action::ScrollDown => self.history_selected + 1,
                    Action::ScrollUp => self.history_selected.saturating_sub(1),
                    Action::Top => 0,
                    Action::Bottom | Action::PageDown => count,
                    Action::PageUp => 0,
                    _ => self.history_selected,
                }
                .min(count.saturating_sub(1));
            }
        }
    }

    fn cycle_focus(&mut self, step: isize) {
        // The card comes first, so Tab from the composer reaches a waiting block at once.
        let mut order = Vec::new();
        if !self.pending.is_empty() {
            order.push(Focus::Card);
        }
        order.extend([Focus::Conversation, Focus::Logs]);
        if self.history_open {
            order.push(Focus::History);
        }
        order.push(Focus::Composer);
        let at = order.iter().position(|f| *f == self.focus).unwrap_or(0) as isize;
        let next = (at + step).rem_euclid(order.len() as isize) as usize;
        self.focus = order[next];
    }

    /// Ctrl-C: stops what runs; with nothing running (or pressed again), quits.
    fn cancel(&mut self) -> Vec<UiAction> {
        if self.phase.busy() && !self.cancel_sent {
            self.cancel_sent = true;
            self.status = Some("stopping… (Ctrl-C again to quit)".into());
            return vec![UiAction::Op(Op::Cancel)];
        }
        self.quit()
    }

    /// Quits at once when nothing runs; asks first otherwise.
    fn quit(&mut self) -> Vec<UiAction> {
        if self.phase.busy() {
            self.modals.push(Box::new(QuitModal));
            return Vec::new();
        }
        vec![UiAction::Op(Op::Shutdown), UiAction::Quit]
    }

    /// After a failed or cancelled reply: the same conversation goes to the model again.
    fn retry(&mut self) -> Vec<UiAction> {
        if !matches!(
            self.phase,
            Phase::Idle(Some(IdleReason::Error | IdleReason::Cancelled))
        ) {
            self.status =
                Some("nothing to retry: retry follows a failed or cancelled reply".into());
            return Vec::new();
        }
        self.phase = Phase::Streaming;
        self.status = None;
        vec![UiAction::Op(Op::Retry)]
    }

    fn send(&mut self) -> Vec<UiAction> {
        let text = self.composer_text();
        if text.trim().is_empty() {
            return Vec::new();
        }
        match self.phase {
            Phase::Idle(_) | Phase::Starting => {}
            Phase::Done(_) => {
                self.status = Some("the session has ended; quit with q".into());
                return Vec::new();
            }
            _ => {
                self.status = Some("the model is busy: the message waits in the composer".into());
                return Vec::new();
            }
        }
        self.composer = new_composer();
        self.phase = Phase::Streaming;
        vec![UiAction::Op(Op::UserMessage { text })]
    }

    fn on_card_action(&mut self, action: Action) -> Vec<UiAction> {
        let Some(block) = self.card_block().cloned() else {
            return Vec::new();
        };
        let decide = |decision: DecisionKind| DecisionRequest {
            block: block.id.clone(),
            decision,
            reason: None,
            code: None,
            scope: None,
        };
        match action {
            Action::Approve => vec![UiAction::Op(Op::Decide(decide(DecisionKind::Approve)))],
            Action::Skip => vec![UiAction::Op(Op::Decide(decide(DecisionKind::Skip)))],
            Action::Abort => vec![UiAction::Op(Op::Decide(decide(DecisionKind::Abort)))],
            Action::ApproveSession => {
                self.modals.push(Box::new(ScopeModal {
                    block: block.id.clone(),
                }));
                Vec::new()
            }
            Action::Reject => {
                let reason = InputModal::reason(&block.id, &self.theme);
                self.modals.push(Box::new(reason));
                Vec::new()
            }
            Action::Edit => {
                let editor = InputModal::edit(&block.id, &block.code, &self.theme);
                self.modals.push(Box::new(editor));
                Vec::new()
            }
            Action::EditExternal => vec![UiAction::EditExternally {
                block: block.id.clone(),
                extension: extension_for(&block.language),
                code: block.code.clone(),
            }],
            Action::NextBlock => {
                self.card_choice = (self.card_choice + 1).min(self.pending.len().saturating_sub(1));
                self.card_scroll = 0;
                Vec::new()
            }
            Action::PrevBlock => {
                self.card_choice = self.card_choice.saturating_sub(1);
                self.card_scroll = 0;
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    /// The code back from $EDITOR: an edit decision when it changed.
    pub fn external_edit_done(&mut self, block: &str, code: Option<String>) -> Vec<UiAction> {
        let Some(original) = self.block(block).map(|b| b.code.clone()) else {
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

fn new_composer() -> TextArea<'static> {
    let mut area = TextArea::default();
    area.set_placeholder_text("Message the model (Enter sends, Alt-Enter for a new line)");
    area
}

/// The file extension $EDITOR gets, so it highlights the right language.
fn extension_for(language: &str) -> String {
    match language {
        "python" => "py".into(),
        "bash" | "sh" => "sh".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
#[path = "app_tests.rs"]
mod tests;
