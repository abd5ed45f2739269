//! The TUI's state, with no terminal in it: the session as the engine reports it (a
//! [`SessionView`]), each pane's own component, the overlays, and what has the focus.
//! Engine events come in here; keys in `app_keys.rs`. Both return what the runner should do.

use std::path::PathBuf;
use std::time::Instant;

use ratatui::layout::Rect;

#[path = "app_keys.rs"]
mod keys;

use super::jobs::{Done, Found, Jobs};
use super::keys::keymap::{Context, Keymap};
use super::overlays::modal::ModalStack;
use super::panes::card::CardPane;
use super::panes::composer::Composer;
use super::panes::conversation::ConversationPane;
use super::panes::history::HistoryPane;
use super::panes::logs::LogView;
pub(crate) use super::panes::records::RunRecord;
use super::panes::workspace::WorkspacePane;
use super::theme::Theme;
use crate::protocol::{ApprovalRule, DoneReason, Event, Op, Phase, Submission};
use crate::view::{BlockState, SessionView, Stage};
use tokio::sync::mpsc;

/// What the app asks of its runner, besides ops for the engine.
#[derive(Debug, Clone, PartialEq)]
pub enum UiAction {
    Op(Op),
    /// An op whose answer the app waits for, with its id.
    Submit(Submission),
    /// Suspend the screen and edit this block's code in $EDITOR.
    EditExternally {
        block: String,
        extension: String,
        code: String,
    },
    /// Suspend the screen and read this workspace file in $PAGER: the workspace's root and
    /// the file inside it (opened by airlock, never through a symlink).
    Page {
        root: PathBuf,
        path: PathBuf,
    },
    /// Hand this host path (a private copy, or a directory) to the system opener, without
    /// waiting for it.
    OpenExternally(PathBuf),
    /// Ring the terminal bell: a block waits for a decision.
    Bell,
    Quit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Focus {
    Conversation,
    Card,
    Logs,
    Composer,
    History,
    Workspace,
}

impl Focus {
    /// The keymap context of the focused pane.
    pub(crate) fn context(self) -> Context {
        match self {
            Self::Conversation => Context::Conversation,
            Self::Card => Context::Card,
            Self::Logs => Context::Logs,
            Self::Composer => Context::Composer,
            Self::History => Context::History,
            Self::Workspace => Context::Workspace,
        }
    }
}

/// What went to the engine that it has not answered yet: until it does, another message
/// waits in the composer. Each is answered by its own event, or refused by an error with its
/// id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Sent {
    Nothing,
    /// The command line's first message, which the engine takes as it starts: answered by
    /// its `user_message`.
    Prompt,
    /// A message, answered by the `user_message` with its id.
    Message(String),
    /// A retry, answered by the reply it starts (the `replying` phase).
    Retry(String),
}

impl Sent {
    /// Whether `event` answers (or refuses) it.
    fn answered_by(&self, event: &Event) -> bool {
        match (self, event) {
            (Self::Nothing, _) | (_, Event::Done { .. }) => true,
            (Self::Message(sent) | Self::Retry(sent), Event::Error { id: Some(id), .. }) => {
                id == sent
            }
            (Self::Prompt, Event::UserMessage { id: None, .. }) => true,
            (Self::Message(sent), Event::UserMessage { id: Some(id), .. }) => id == sent,
            (Self::Retry(_), Event::Phase { phase }) => *phase == Phase::Replying,
            _ => false,
        }
    }
}

/// The sandbox as the screen knows it: blocks can run only once it is ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SandboxState {
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

/// Where each pane was drawn last, for the mouse and for paging by the pane's height.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PaneAreas {
    pub(crate) conversation: Rect,
    pub(crate) card: Rect,
    pub(crate) logs: Rect,
    pub(crate) history: Rect,
    pub(crate) workspace: Rect,
    pub(crate) composer: Rect,
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
    pub(crate) workspace: WorkspacePane,
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
    pub(crate) areas: PaneAreas,
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
            workspace: WorkspacePane::new(jobs),
            job_results: Some(job_results),
            composer: Composer::default(),
            focus: Focus::Composer,
            zoomed: false,
            modals: ModalStack::default(),
            rules: Vec::new(),
            status: None,
            bell,
            areas: PaneAreas::default(),
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
    pub(crate) fn card_block(&self) -> Option<&BlockState> {
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

    /// The command line's first message went to the engine with the session: another waits
    /// until the engine has taken it.
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

    /// Takes in one engine event; returns what the runner should do (the bell).
    pub fn on_event(&mut self, event: &Event) -> Vec<UiAction> {
        let waiting_before = self.waiting();
        self.view.apply(event);
        self.conversation.on_event(event);
        self.history.on_event(event);
        if self.sent.answered_by(event) {
            self.sent = Sent::Nothing;
        }
        match event {
            Event::SandboxProgress { message } => {
                if let SandboxState::Preparing { step, .. } = &mut self.sandbox_state {
                    *step = Some(message.clone());
                }
            }
            Event::SandboxReady {
                description,
                workspace,
            } => {
                self.sandbox_state = SandboxState::Ready(description.clone());
                self.workspace.set_root(workspace.as_deref());
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
            Event::ExecStarted { block, run } => self.exec_started(block, run),
            Event::ExecOutput { stream, data, .. } => self.logs.push(*stream, data),
            Event::ExecFinished { result, .. } => {
                self.logs.finish(result.clone());
                self.workspace.run_finished(&result.files);
                self.cancel_sent = false;
            }
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
        self.card.reset();
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
        let waiting = self.waiting();
        self.card.decided(waiting);
        if waiting == 0 && self.focus == Focus::Card {
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

    /// A run starts: the logs pane gets its header, the history a new run.
    fn exec_started(&mut self, block: &str, run: &str) {
        let Some(proposed) = self.view.block(block) else {
            return;
        };
        let edited = if proposed.edited.is_some() {
            " · edited by the operator"
        } else {
            ""
        };
        self.logs.start(format!(
            "{} · block {} · {}{edited}",
            run,
            proposed.index + 1,
            proposed.language
        ));
        let session = self.view.session.clone().unwrap_or_default();
        let record = RunRecord::starting(proposed, &session, run);
        self.history.start(record);
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

    /// Previews of text are highlighted in `highlighter`'s colours.
    pub fn highlight_previews(&mut self, highlighter: &super::render::highlight::Highlighter) {
        self.workspace.set_syntax(highlighter.syntax_theme());
    }

    /// A background job (a listing, a preview) has not finished yet.
    pub fn jobs_running(&self) -> bool {
        self.workspace.busy()
    }

    /// A background job is done: a listing or a preview for the workspace pane.
    pub(crate) fn on_job(&mut self, done: Done) {
        debug_assert_ne!(done.ran_on, std::thread::current().id(), "a job ran here");
        match done.found {
            Found::Listing(result) => self.workspace.listed(done.request, result),
            Found::Preview(preview) => self.workspace.previewed(done.request, preview),
        }
    }

    /// After each frame, with the panes where they were drawn: a picture is scaled again
    /// for a pane that changed size.
    pub(crate) fn after_frame(&mut self) {
        if self.workspace.open {
            self.workspace.refit(self.areas.workspace);
        }
    }

    /// The keymap context of what has the keys below the overlays: the focused pane's, or
    /// the preview's while the workspace shows one.
    pub(crate) fn pane_context(&self) -> Context {
        if self.focus == Focus::Workspace && self.workspace.previewing() {
            Context::Preview
        } else {
            self.focus.context()
        }
    }

    /// Filters the history's runs by `text` (case does not matter).
    pub(crate) fn set_history_filter(&mut self, text: String) {
        self.history.set_filter(text);
    }
}

#[cfg(test)]
#[path = "app_tests.rs"]
mod tests;
