//! The only boundary between the engine and its frontends: serde-tagged operations going in
//! and events coming out. The headless `--json` output is these events, one per line.

use serde::{Deserialize, Serialize};

/// Which output stream a chunk came from. The discriminants index per-stream state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    Stdout = 0,
    Stderr = 1,
}

/// The outcome of running one block, as `airlock exec --json` prints it and as
/// `exec_finished` carries it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecResult {
    /// The program's exit code; `None` when airlock killed it (timeout, cancel).
    pub exit_code: Option<i64>,
    pub timed_out: bool,
    pub oom_killed: bool,
    /// The kept output is shorter than what was produced.
    pub truncated: bool,
    /// What was kept: both streams in arrival order, neutralized.
    pub output: String,
    /// Every byte the program wrote.
    pub output_bytes: u64,
    pub duration_ms: u64,
    /// The image name and the digest or id that ran.
    pub image: String,
    /// The container had to be replaced to get rid of the block's processes.
    pub container_restarted: bool,
    /// The operator stopped the block before it finished.
    #[serde(default)]
    pub cancelled: bool,
    /// The container it ran in (short id).
    #[serde(default)]
    pub container: String,
    /// For a truncated output: the byte offset in `output` where airlock's omission marker
    /// begins. Given out of band, so output that imitates the marker is never taken for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub omission_at: Option<usize>,
    /// /workspace had no byte or no inode left when the block ended: its writes past the
    /// limit failed with ENOSPC.
    #[serde(default)]
    pub workspace_full: bool,
    /// The workspace's files this run created, changed or removed, by path.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileChange>,
    /// Why `files` may miss some: the walk after the run was cut (`too deep (128 levels)`,
    /// `too many entries (100000)`, `directories that could not be read (N)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files_incomplete: Option<String>,
}

/// What a run did to one file of the workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileChangeKind {
    Created,
    Changed,
    Removed,
}

/// One file of the workspace a run created, changed or removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileChange {
    /// Relative to /workspace, recorded so it names its bytes unambiguously: UTF-8 as it
    /// is, `\` as `\\`, a byte that is not UTF-8 as `\xHH`, a control character as
    /// `\u00HH` (see `files::recorded`).
    pub path: String,
    pub change: FileChangeKind,
    /// Bytes after the run (0 when removed).
    pub size: u64,
    /// Of the content after the run; absent for a removed file, a symlink, or a file past
    /// what one run's check hashes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// A symlink's target, recorded as `path` is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

impl FileChangeKind {
    /// `created`, `changed`, `removed`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Changed => "changed",
            Self::Removed => "removed",
        }
    }
}

/// How a run ended, decided here for every view (the model's status line, `run`, `exec`,
/// the logs and history panes, `history list`, the export, stop-on-failure): the first of
/// these that applies, in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The operator stopped it before it finished.
    Stopped,
    /// The kernel's OOM killer ended it.
    OutOfMemory,
    /// It reached its time limit.
    TimedOut,
    /// It exited by itself with this status (128 + N when signal N ended it).
    Exited(i64),
    /// airlock ended it without a status.
    Killed,
}

impl Outcome {
    pub(crate) fn of(
        exit_code: Option<i64>,
        timed_out: bool,
        oom_killed: bool,
        cancelled: bool,
    ) -> Self {
        match exit_code {
            _ if cancelled => Self::Stopped,
            _ if oom_killed => Self::OutOfMemory,
            _ if timed_out => Self::TimedOut,
            Some(code) => Self::Exited(code),
            None => Self::Killed,
        }
    }

    pub(crate) fn succeeded(self) -> bool {
        self == Self::Exited(0)
    }

    /// A word or two for lists and badges: `exit 3`, `timeout`, `oom`, `stopped`, `killed`.
    pub(crate) fn label(self) -> String {
        match self {
            Self::Stopped => "stopped".into(),
            Self::OutOfMemory => "oom".into(),
            Self::TimedOut => "timeout".into(),
            Self::Exited(code) => format!("exit {code}"),
            Self::Killed => "killed".into(),
        }
    }

    /// For a sentence: `exit 3`, `timed out`, `out of memory`, `stopped`, `killed`.
    pub(crate) fn phrase(self) -> String {
        match self {
            Self::OutOfMemory => "out of memory".into(),
            Self::TimedOut => "timed out".into(),
            other => other.label(),
        }
    }
}

impl ExecResult {
    pub(crate) fn outcome(&self) -> Outcome {
        Outcome::of(
            self.exit_code,
            self.timed_out,
            self.oom_killed,
            self.cancelled,
        )
    }
}

#[cfg(test)]
impl ExecResult {
    /// A finished run for tests: this exit code and output, nothing else of note.
    pub(crate) fn sample(exit_code: Option<i64>, output: &str) -> Self {
        Self {
            exit_code,
            timed_out: false,
            oom_killed: false,
            truncated: false,
            output: output.into(),
            output_bytes: output.len() as u64,
            duration_ms: 85,
            image: "airlock-sandbox:offline (sha256:1053be5690ed)".into(),
            container_restarted: false,
            cancelled: false,
            container: String::new(),
            omission_at: None,
            workspace_full: false,
            files: Vec::new(),
            files_incomplete: None,
        }
    }
}

/// What the operator (or a rule, the approver, a flag) decided about one block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionKind {
    Approve,
    /// Approve this block and, for the rest of the session, every block its scope covers.
    ApproveSession,
    /// Run the operator's version of the code instead.
    Edit,
    Skip,
    Reject,
    /// Stop the turn: this block and every later one do not run.
    Abort,
}

impl DecisionKind {
    /// Its wire name: `approve`, `approve_session`, `edit`, `skip`, `reject`, `abort`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Approve => "approve",
            Self::ApproveSession => "approve_session",
            Self::Edit => "edit",
            Self::Skip => "skip",
            Self::Reject => "reject",
            Self::Abort => "abort",
        }
    }

    pub(crate) fn runs(self) -> bool {
        matches!(self, Self::Approve | Self::ApproveSession | Self::Edit)
    }
}

/// What an approve-for-session covers from now on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Every block in the same language.
    Language,
    /// Blocks with exactly the same code.
    Exact,
}

/// Who made a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionSource {
    Operator,
    /// An approval rule from the config, or one the operator made with approve-for-session.
    Rule,
    /// The external approver command.
    Approver,
    /// `--approve all|none`.
    Flag,
    /// An earlier block of the same message failed.
    StopOnFailure,
    /// Nobody was there to decide: the input ended, or the session ended with the block
    /// waiting.
    NoSupervisor,
}

/// A decision a frontend sends for one proposed block: the headless JSON line on stdin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionRequest {
    pub block: String,
    pub decision: DecisionKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The code to run instead, for `edit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// For `approve_session`; `language` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
}

/// Who proposed a block: the session's own model, or an agent that called airlock over MCP
/// (its client's name and version, as it gave them).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    pub kind: OriginKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OriginKind {
    /// The session's model (every block recorded before origins were).
    #[default]
    Model,
    Mcp,
}

/// An op as a frontend submits it: with an `id` of the frontend's choosing, the events that
/// answer it (its `decision`, or the `error` that refuses it) carry the same `id`.
#[derive(Debug, Clone, PartialEq)]
pub struct Submission {
    pub id: Option<String>,
    pub op: Op,
}

impl From<Op> for Submission {
    /// An op nobody needs to match with its answer.
    fn from(op: Op) -> Self {
        Self { id: None, op }
    }
}

/// Something a frontend asks of the engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Op {
    /// The operator's next message to the model.
    UserMessage {
        text: String,
    },
    Decide(DecisionRequest),
    /// Stop what is running: the model's reply, or the block (the session goes on). While
    /// blocks wait for decisions it aborts the turn.
    Cancel,
    /// Ask the model again after its reply failed.
    Retry,
    /// Lift an approval rule for the rest of the session (its `id` from the `rules` event).
    RevokeRule {
        rule: String,
    },
    /// Nobody is left to decide: blocks that need the operator are rejected.
    NoSupervisor,
    /// End the session.
    Shutdown,
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DoneReason {
    /// The model replied without a runnable block.
    NoCode,
    MaxTurns,
    /// The operator aborted the turn or ended the session.
    Aborted,
    /// A block needed a decision and nobody was there to give it.
    NoSupervisor,
    /// The scripted model ran out of replies.
    ScriptExhausted,
    Error,
}

impl DoneReason {
    /// The ends a script can treat as success.
    pub(crate) fn is_success(self) -> bool {
        matches!(self, Self::NoCode | Self::MaxTurns | Self::ScriptExhausted)
    }
}

/// Why the engine is waiting for the operator's next message (frontends that keep the
/// session open after a turn).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdleReason {
    NoCode,
    /// `max_turns` model replies since the operator's last message.
    MaxTurns,
    Aborted,
    Cancelled,
    /// The model call failed; `retry` asks again.
    Error,
}

/// An approval rule in force in a session, as frontends list it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalRule {
    /// Stable for the session: what `revoke_rule` names.
    pub id: String,
    /// What it decides: `approve` or `reject`.
    pub effect: DecisionKind,
    /// What it covers, in words.
    pub covers: String,
    /// Where it comes from: a config key, `--approve`, or the operator's approve-for-session.
    pub origin: String,
}

/// The tokens one model call used, as the server reported them (a count it left out is 0).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
}

impl Usage {
    /// `56 (40 prompt, 16 completion)`.
    pub(crate) fn describe(&self) -> String {
        format!(
            "{} ({} prompt, {} completion)",
            self.total_tokens, self.prompt_tokens, self.completion_tokens
        )
    }

    /// Adds another call's.
    pub(crate) fn add(&mut self, other: Usage) {
        self.prompt_tokens += other.prompt_tokens;
        self.completion_tokens += other.completion_tokens;
        self.total_tokens += other.total_tokens;
    }
}

/// Why a reply ended before the model finished it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplyEnd {
    /// It reached the token limit (`model.max_tokens`, or the server's own).
    TokenLimit,
    /// The operator stopped it; what had arrived is kept.
    Stopped,
}

impl ReplyEnd {
    /// The line that follows the reply in what the model is sent next, so it knows.
    pub(crate) fn note_for_model(self) -> &'static str {
        match self {
            Self::TokenLimit => "[airlock: this reply was cut off here at the token limit]",
            Self::Stopped => "[airlock: the operator stopped this reply here]",
        }
    }

    /// In a sentence, for people.
    pub(crate) fn phrase(self) -> &'static str {
        match self {
            Self::TokenLimit => "cut off at the token limit (model.max_tokens)",
            Self::Stopped => "stopped by the operator; what had arrived is kept",
        }
    }
}

/// What the engine is busy with, sent each time it changes, so no frontend has to infer it.
/// Waiting for the operator's next message is `idle`, and the end is `done`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// The model is replying.
    Replying,
    /// Blocks of the reply wait for their decisions.
    Deciding,
    /// An approved block runs (or waits for the sandbox to run in).
    Running,
}

/// The name a unit variant has on the wire (`approve_session`, `no_code`, …), for messages.
pub(crate) fn wire_name(value: &impl Serialize) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|value| value.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// A value from its wire name (`approve`, `token_limit`): the inverse of [`wire_name`].
pub(crate) fn from_wire_name<T: serde::de::DeserializeOwned>(name: &str) -> Option<T> {
    serde_json::from_value(serde_json::Value::String(name.to_string())).ok()
}

/// A reply as the model is sent it again: a reply that did not end as the model meant is
/// followed by a note that says so.
pub(crate) fn reply_for_model(text: &str, end: Option<ReplyEnd>) -> String {
    match end {
        Some(end) => format!("{text}\n\n{}", end.note_for_model()),
        None => text.to_string(),
    }
}

/// Something the engine reports to its frontends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    SessionStarted {
        session: String,
        /// A recorded session continued (`run --resume`, `resume`) rather than a new one.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        resumed: bool,
    },
    /// The sandbox is being prepared (an image pull or build): what it does now. Passing
    /// progress: each one replaces the one before.
    SandboxProgress {
        message: String,
    },
    /// The sandbox is up: where blocks will run.
    SandboxReady {
        description: String,
        /// The host directory mounted at /workspace, when the sandbox has one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        workspace: Option<String>,
    },
    /// The operator's message to the model, taken.
    UserMessage {
        text: String,
        /// The `id` of the op that sent it, when it had one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
    },
    /// A piece of the model's reply as it streams in.
    AssistantDelta {
        text: String,
    },
    /// The model's whole reply, once complete, or as far as it came when it was cut at the
    /// token limit or stopped by the operator (`end`).
    AssistantMessage {
        text: String,
        /// What the call cost, when the server said.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        usage: Option<Usage>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        end: Option<ReplyEnd>,
    },
    /// The model's request failed in a way worth retrying; airlock waits and tries again.
    ModelRetry {
        attempt: u32,
        max_attempts: u32,
        delay_ms: u64,
        reason: String,
    },
    /// A runnable block waiting for its decision. Every block of a message is proposed at
    /// once, in order.
    BlockProposed {
        block: String,
        index: usize,
        language: String,
        code: String,
        #[serde(default)]
        origin: Origin,
    },
    Decision {
        block: String,
        decision: DecisionKind,
        reason: Option<String>,
        source: DecisionSource,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scope: Option<Scope>,
        /// The code that will run instead, for `edit`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<String>,
        /// The `id` of the op this decision answers, when it answers one that had an id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
    },
    /// Progress and warnings worth showing (image pull, create warnings, restarts).
    Notice {
        message: String,
    },
    ExecStarted {
        block: String,
        run: String,
    },
    /// Program output as it arrives. Neutralized, except that SGR colour sequences are kept
    /// for the TUI's log pane; the headless output removes them too.
    ExecOutput {
        block: String,
        run: String,
        stream: Stream,
        data: String,
    },
    ExecFinished {
        block: String,
        run: String,
        #[serde(flatten)]
        result: ExecResult,
    },
    /// The message that takes the blocks' results back to the model.
    Reflection {
        text: String,
    },
    /// The approval rules in force, in the order they are tried; sent at the start and
    /// whenever they change.
    Rules {
        rules: Vec<ApprovalRule>,
    },
    /// The operator lifted a rule for the rest of the session.
    RuleRevoked {
        rule: ApprovalRule,
        /// The `id` of the op that lifted it, when it had one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
    },
    /// The engine moved on to another phase of its work.
    Phase {
        phase: Phase,
    },
    /// The engine waits for the operator's next message.
    Idle {
        reason: IdleReason,
    },
    Error {
        message: String,
        /// The `id` of the op this error refuses, when it had one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
    },
    /// The session is over; always the last event.
    Done {
        reason: DoneReason,
    },
}

#[cfg(test)]
#[path = "protocol_tests.rs"]
mod tests;
