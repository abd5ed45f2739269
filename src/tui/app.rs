//! The TUI's state, with no terminal in it: the session as the engine reports it (a
//! [`SessionView`]), each pane's own component, the overlays, and what has the focus.
//! Engine events come in here; keys in `app_keys.rs`. Both return what the runner should do.

use std::time::Instant;

use ratatui::Frame;
use ratatui::layout::Rect;

#[path = "app_keys.rs"]
mod keys;

use super::jobs::{Done, Jobs};
use super::keys::keymap::{Context, Keymap};
use super::overlays::modal::ModalStack;
pub(crate) use super::panes::Focus;
use super::panes::card::CardPane;
use super::panes::composer::Composer;
use super::panes::conversation::ConversationPane;
use super::panes::history::HistoryPane;
use super::panes::layout::{Areas, SLOTS};
use super::panes::logs::LogView;
use super::panes::pane::Look;
use super::panes::{Pane, Seen, Setup};
use super::render::highlight::Highlighter;
use super::render::picture::Graphics;
pub(crate) use super::runner::SandboxState;
pub use super::runner::UiAction;
use super::theme::Theme;
use crate::protocol::{ApprovalRule, DoneReason, Event, Op, Phase, Submission};
pub(crate) use crate::run_record::RunRecord;
use crate::view::{SessionView, Stage};
use tokio::sync::mpsc;

/// What went to the engine that it has not finished answering: until it has, another
/// message waits in the composer. A refusal (an error with the op's id) ends it at once; a
/// message taken (its `user_message`) waits for what the engine does with it, its reply's
/// phase; the engine waiting again (`idle`) or ending ends anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Sent {
    Nothing,
    /// The session's first message, given with the launch (the demo's task): taken by the
    /// engine as it starts.
    Prompt,
    /// A message with this id.
    Message(String),
    /// A retry with this id.
    Retry(String),
    /// A message the engine took, whose reply has not begun.
    Taken,
}

impl Sent {
    /// What is still pending once `event` has come.
    fn after(self, event: &Event) -> Self {
        match (self, event) {
            (_, Event::Done { .. } | Event::Idle { .. }) => Self::Nothing,
            (Self::Message(sent) | Self::Retry(sent), Event::Error { id: Some(id), .. })
                if *id == sent =>
            {
                Self::Nothing
            }
            (Self::Prompt, Event::UserMessage { id: None, .. }) => Self::Taken,
            (Self::Message(sent), Event::UserMessage { id: Some(id), .. }) if *id == sent => {
                Self::Taken
            }
            (Self::Taken | Self::Retry(_), Event::Phase { .. }) => Self::Nothing,
            (pending, _) => pending,
        }
    }
}

pub struct App {
    pub(crate) theme: Theme,
    pub(crate) keymap: Keymap,
    pub(crate) model: String,
    /// The session as the engine reports it: its stage, blocks, decisions and runs.
    pub(crate) view: SessionView,
    pub(crate) sandbox_state: SandboxState,
    /// Why the session cannot go on, once the engine has stopped for good. It stays on the
    /// screen until the operator quits, and is printed again after the terminal is restored.
    pub(crate) fatal: Option<String>,
    /// The latest error, which becomes [`Self::fatal`] when the session ends on it.
    last_error: Option<String>,
    pub(crate) conversation: ConversationPane,
    pub(crate) card: CardPane,
    pub(crate) logs: LogView,
    pub(crate) history: HistoryPane,
    /// The panes the app knows only as [`Pane`]s, as the layout made them.
    others: Vec<(Focus, Box<dyn Pane>)>,
    /// Where background jobs' results arrive, until the event loop takes it.
    job_results: Option<mpsc::UnboundedReceiver<Done>>,
    pub(crate) composer: Composer,
    pub(crate) focus: Focus,
    pub(crate) zoomed: bool,
    /// The overlays open, as components: the topmost takes every key.
    pub(crate) modals: ModalStack,
    /// The approval rules in force, as the engine last listed them.
    pub(crate) rules: Vec<ApprovalRule>,
    pub(crate) status: Option<String>,
    pub(crate) bell: bool,
    pub(crate) areas: Areas,
    /// A Ctrl-C already asked the engine to stop something.
    cancel_sent: bool,
    /// A message (or a retry) the engine has not answered yet.
    sent: Sent,
    /// How many ops the app has given an id, for the next one's.
    submitted: u64,
}

impl App {
    pub fn new(theme: Theme, keymap: Keymap, model: String, log_lines: usize, bell: bool) -> Self {
        let (jobs, job_results) = Jobs::new();
        Self {
            theme,
            keymap,
            conversation: ConversationPane::new(model.clone()),
            model,
            view: SessionView::default(),
            sandbox_state: SandboxState::Preparing {
                step: None,
                since: Instant::now(),
            },
            fatal: None,
            last_error: None,
            card: CardPane::default(),
            logs: LogView::new(log_lines),
            history: HistoryPane::default(),
            others: made_panes(&Setup { jobs: &jobs }),
            job_results: Some(job_results),
            composer: Composer::default(),
            focus: Focus::Composer,
            zoomed: false,
            modals: ModalStack::default(),
            rules: Vec::new(),
            status: None,
            bell,
            areas: Areas::default(),
            cancel_sent: false,
            sent: Sent::Nothing,
            submitted: 0,
        }
    }

    /// Where blocks run, or how far the sandbox has got, for the status bar.
    pub(crate) fn sandbox_label(&self) -> String {
        match &self.sandbox_state {
            SandboxState::Ready(description) => description.clone(),
            // The logs pane shows the step; here it is kept short.
            SandboxState::Preparing { since, .. } => {
                format!("preparing the sandbox · {} s", since.elapsed().as_secs())
            }
            SandboxState::Failed => "no sandbox".into(),
        }
    }

    /// The block the card shows, if any waits for a decision.
    #[cfg(test)]
    pub(crate) fn card_block(&self) -> Option<&crate::view::BlockState> {
        self.card.shown(&self.view)
    }

    /// How many blocks wait for a decision.
    pub(crate) fn waiting(&self) -> usize {
        self.view.undecided().count()
    }

    /// The model is replying (or about to, for what was just sent).
    pub(crate) fn replying(&self) -> bool {
        self.asked() || self.view.stage == Stage::Busy(Phase::Replying)
    }

    /// Something Ctrl-C can stop: a reply or a block.
    pub(crate) fn busy(&self) -> bool {
        self.asked() || self.view.busy()
    }

    /// A message or a retry went to the engine, which has not answered it yet.
    pub(crate) fn asked(&self) -> bool {
        self.sent != Sent::Nothing
    }

    /// The session's first message (the demo's task) went to the engine with the launch:
    /// another waits until the engine has taken it.
    pub(crate) fn prompt_sent(&mut self) {
        self.sent = Sent::Prompt;
    }

    /// `op` with the next id, to be answered by an event with the same id.
    pub(crate) fn submit(&mut self, op: Op) -> UiAction {
        self.submitted += 1;
        let id = format!("tui-{}", self.submitted);
        self.sent = match op {
            Op::UserMessage { .. } => Sent::Message(id.clone()),
            Op::Retry => Sent::Retry(id.clone()),
            _ => Sent::Nothing,
        };
        UiAction::Submit(Submission { id: Some(id), op })
    }

    /// Takes in one engine event; returns what the runner should do (the bell). Each pane
    /// takes its own part of it, after the session view has.
    pub fn on_event(&mut self, event: &Event) -> Vec<UiAction> {
        let waiting_before = self.waiting();
        self.view.apply(event);
        let (panes, view, _) = self.panes_and_view();
        for (_, pane) in panes {
            pane.on_event(event, view);
        }
        self.sent = std::mem::replace(&mut self.sent, Sent::Nothing).after(event);
        match event {
            Event::SandboxProgress { message } => {
                if let SandboxState::Preparing { step, .. } = &mut self.sandbox_state {
                    *step = Some(message.clone());
                }
            }
            Event::SandboxReady { description, .. } => {
                self.sandbox_state = SandboxState::Ready(description.clone());
            }
            Event::Error { message, .. } => self.last_error = Some(message.clone()),
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
            Event::AssistantDelta { .. } => self.status = None,
            Event::BlockProposed { .. } if waiting_before == 0 => return self.first_waits(),
            Event::Decision { .. } => self.decided(),
            Event::ExecFinished { .. } => self.cancel_sent = false,
            Event::Rules { rules } => self.rules = rules.clone(),
            Event::Idle { reason } => self.idle(*reason),
            Event::Done { reason } => self.session_done(*reason),
            _ => {}
        }
        Vec::new()
    }

    /// A block waits where none did: the card gets the focus (unless the operator is in the
    /// middle of a message) and the bell rings.
    fn first_waits(&mut self) -> Vec<UiAction> {
        if self.focus != Focus::Composer || self.composer.is_blank() {
            self.focus = Focus::Card;
        }
        if self.bell {
            vec![UiAction::Bell]
        } else {
            Vec::new()
        }
    }

    fn decided(&mut self) {
        if self.waiting() == 0 && self.focus == Focus::Card {
            self.focus = Focus::Logs;
        }
    }

    fn idle(&mut self, reason: crate::protocol::IdleReason) {
        use crate::protocol::IdleReason;
        self.cancel_sent = false;
        if matches!(
            reason,
            IdleReason::NoCode | IdleReason::Aborted | IdleReason::MaxTurns
        ) {
            self.focus = Focus::Composer;
        }
    }

    /// The engine has ended the session. When it ended on an error, the reason is kept on
    /// the screen: nothing ends silently.
    fn session_done(&mut self, reason: DoneReason) {
        if reason == DoneReason::Error {
            if matches!(self.sandbox_state, SandboxState::Preparing { .. }) {
                self.sandbox_state = SandboxState::Failed;
            }
            let why = self.last_error.clone();
            self.fatal = Some(why.unwrap_or_else(|| "the session ended on an error".into()));
            // Nothing can be sent any more; keys go to reading and quitting.
            self.focus = Focus::Conversation;
        }
        self.modals.clear();
    }

    /// The engine is gone without ending the session properly (it failed).
    pub(crate) fn engine_gone(&mut self) {
        if !matches!(self.view.stage, Stage::Done(_)) {
            let stopped = "the session engine stopped unexpectedly (see the log file)";
            self.last_error = Some(match self.last_error.take() {
                Some(last) => format!("{stopped}; the last error was: {last}"),
                None => stopped.to_string(),
            });
            self.on_event(&Event::Done {
                reason: DoneReason::Error,
            });
        }
    }

    /// A resumed session's conversation, shown before anything new.
    pub(crate) fn load_conversation(&mut self, messages: &[(String, String)]) {
        self.conversation.load_earlier(messages);
    }

    /// Earlier sessions' runs from the history, oldest first, before this session's.
    pub(crate) fn load_past_runs(&mut self, past: Vec<RunRecord>) {
        self.history.load_past(past);
    }

    /// The receiver of background jobs' results, for the event loop (taken once).
    pub(crate) fn take_job_results(&mut self) -> Option<mpsc::UnboundedReceiver<Done>> {
        self.job_results.take()
    }

    /// Applies the background jobs that have finished, as the event loop would, while the
    /// app still holds their receiver (for tests and benches); how many there were.
    pub fn apply_finished_jobs(&mut self) -> usize {
        let mut done = Vec::new();
        if let Some(results) = &mut self.job_results {
            while let Ok(result) = results.try_recv() {
                done.push(result);
            }
        }
        let count = done.len();
        done.into_iter().for_each(|result| self.on_job(result));
        count
    }

    /// Text is highlighted in `highlighter`'s colours, previews included.
    pub fn highlight_previews(&mut self, highlighter: &Highlighter) {
        let syntax = highlighter.syntax_theme();
        for (_, pane) in self.panes_mut() {
            pane.set_syntax(syntax.as_ref());
        }
    }

    /// How pictures reach this terminal, once it was asked.
    pub(crate) fn set_graphics(&mut self, graphics: &Graphics) {
        for (_, pane) in self.panes_mut() {
            pane.set_graphics(graphics);
        }
    }

    /// A background job (a listing, a preview) has not finished yet.
    pub fn jobs_running(&self) -> bool {
        self.panes().iter().any(|(_, pane)| pane.busy())
    }

    /// A background job is done: the pane that asked for it takes it.
    pub(crate) fn on_job(&mut self, done: Done) {
        debug_assert_ne!(done.ran_on, std::thread::current().id(), "a job ran here");
        let mut done = Some(done);
        for (_, pane) in self.panes_mut() {
            done = done.and_then(|done| pane.on_job(done));
        }
        debug_assert!(done.is_none(), "a job no pane asked for");
    }

    /// After each frame, with the panes where they were drawn (a picture is scaled again for
    /// a pane that changed size).
    pub(crate) fn after_frame(&mut self) {
        let areas = self.areas.clone();
        for (focus, pane) in self.panes_mut() {
            pane.after_frame(areas.of(focus));
        }
    }

    /// The keymap contexts of what has the keys below the overlays: the focused pane's.
    pub(crate) fn pane_contexts(&self) -> &'static [Context] {
        self.pane(self.focus)
            .map_or(&[Context::Conversation], |pane| pane.contexts())
    }

    /// The first of them, for the hints.
    pub(crate) fn pane_context(&self) -> Context {
        self.pane_contexts()[0]
    }

    /// Whether `focus`'s pane is on the screen.
    pub(crate) fn is_open(&self, focus: Focus) -> bool {
        self.pane(focus).is_some_and(|pane| pane.open())
    }

    /// Draws `focus`'s pane in `area`.
    pub(crate) fn render_pane(
        &self,
        frame: &mut Frame,
        focus: Focus,
        area: Rect,
        highlighter: &Highlighter,
    ) {
        let Some(pane) = self.pane(focus) else {
            return;
        };
        let seen = Seen {
            look: Look::new(&self.theme, &self.keymap, highlighter, self.focus == focus),
            view: &self.view,
            sandbox: &self.sandbox_state,
            focus: self.focus,
        };
        pane.render(frame, area, &seen);
    }

    /// The pane the layout names `focus`.
    pub(crate) fn pane(&self, focus: Focus) -> Option<&dyn Pane> {
        self.panes()
            .into_iter()
            .find(|(id, _)| *id == focus)
            .map(|(_, pane)| pane)
    }

    pub(crate) fn pane_mut(&mut self, focus: Focus) -> Option<&mut dyn Pane> {
        self.panes_mut()
            .into_iter()
            .find(|(id, _)| *id == focus)
            .map(|(_, pane)| pane)
    }

    /// Every pane: those the app works with by name, then those it knows only as panes.
    fn panes(&self) -> Vec<(Focus, &dyn Pane)> {
        let mut panes: Vec<(Focus, &dyn Pane)> = vec![
            (Focus::Conversation, &self.conversation),
            (Focus::Card, &self.card),
            (Focus::Logs, &self.logs),
            (Focus::History, &self.history),
            (Focus::Composer, &self.composer),
        ];
        panes.extend(self.others.iter().map(|(id, pane)| (*id, pane.as_ref())));
        panes
    }

    fn panes_mut(&mut self) -> Vec<(Focus, &mut dyn Pane)> {
        self.panes_and_view().0
    }

    /// Every pane, with what they see beside them (the session view for the events they
    /// take, the theme for what their actions open).
    fn panes_and_view(&mut self) -> (Vec<(Focus, &mut dyn Pane)>, &SessionView, &Theme) {
        let mut panes: Vec<(Focus, &mut dyn Pane)> = vec![
            (Focus::Conversation, &mut self.conversation),
            (Focus::Card, &mut self.card),
            (Focus::Logs, &mut self.logs),
            (Focus::History, &mut self.history),
            (Focus::Composer, &mut self.composer),
        ];
        panes.extend(
            self.others
                .iter_mut()
                .map(|(id, pane)| (*id, pane.as_mut())),
        );
        (panes, &self.view, &self.theme)
    }

    /// Filters the history's runs by `text` (case does not matter).
    pub(crate) fn set_history_filter(&mut self, text: String) {
        self.history.set_filter(text);
    }
}

/// The panes the layout makes, for those the app knows only as panes.
fn made_panes(setup: &Setup) -> Vec<(Focus, Box<dyn Pane>)> {
    SLOTS
        .iter()
        .filter_map(|slot| Some((slot.pane, (slot.make?)(setup))))
        .collect()
}

#[cfg(test)]
#[path = "app_tests.rs"]
mod tests;
