//! The engine with a fake model, sandbox and approver: the order of things, every decision
//! kind, stop-on-failure, max_turns, cancellation, and what the model is sent.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;

use super::*;
use crate::config::{ApprovalConfig, ApproveMode};
use crate::engine::Journal;
use crate::engine::approver::{ApprovalRequest, ApproverVerdict};
use crate::engine::sandbox::{BlockSpec, LiveOutput};
use crate::model::{ModelError, ModelEvent, ModelSink, Role};
use crate::protocol::{DecisionKind, DecisionRequest, DecisionSource, ExecResult, Scope, Stream};
use crate::protocol::{Op, Usage};

/// What the fake model does for one request.
enum Reply {
    Text(String),
    /// A reply the token limit cut, with what the server counted.
    Cut(String, Usage),
    Fail(String),
    /// Streams a piece, then never finishes.
    Hang,
    /// Streams this text, then never finishes.
    HangAfter(String),
    /// A reply that calls tools: (id, function name, arguments).
    Calls(Vec<(&'static str, &'static str, String)>),
}

fn text(reply: &str) -> Reply {
    Reply::Text(reply.to_string())
}

type Requests = Arc<Mutex<Vec<Vec<ChatMessage>>>>;

struct FakeModel {
    replies: VecDeque<Reply>,
    requests: Requests,
}

impl Model for FakeModel {
    async fn complete(
        &mut self,
        messages: &[ChatMessage],
        sink: ModelSink<'_>,
    ) -> Result<crate::model::Reply, ModelError> {
        self.requests.lock().unwrap().push(messages.to_vec());
        let stream = |text: &str, sink: ModelSink<'_>| {
            for piece in text.split_inclusive('\n') {
                sink(ModelEvent::Delta(piece.to_string()));
            }
        };
        match self.replies.pop_front() {
            None => Err(ModelError::Exhausted),
            Some(Reply::Text(reply)) => {
                stream(&reply, sink);
                Ok(crate::model::Reply::text(reply))
            }
            Some(Reply::Cut(reply, usage)) => {
                stream(&reply, sink);
                Ok(crate::model::Reply {
                    text: reply,
                    tool_calls: Vec::new(),
                    cut: true,
                    cut_at_bytes: None,
                    usage: Some(usage),
                })
            }
            Some(Reply::Fail(why)) => Err(ModelError::Failed(why)),
            Some(Reply::Hang) => {
                sink(ModelEvent::Delta("I will".into()));
                std::future::pending().await
            }
            Some(Reply::Calls(calls)) => Ok(crate::model::Reply {
                tool_calls: calls
                    .into_iter()
                    .map(|(id, name, arguments)| crate::model::ToolCall {
                        id: id.into(),
                        kind: "function".into(),
                        function: crate::model::FunctionCall {
                            name: name.into(),
                            arguments,
                        },
                    })
                    .collect(),
                ..crate::model::Reply::default()
            }),
            Some(Reply::HangAfter(text)) => {
                stream(&text, sink);
                std::future::pending().await
            }
        }
    }
}

/// Runs "code" by rule: output `ran <first line>`; exit 1 when it contains `fail`; waits for
/// the cancel token when it contains `hang`.
struct FakeSandbox {
    ran: Arc<Mutex<Vec<String>>>,
}

impl Sandbox for FakeSandbox {
    async fn run_block(
        &mut self,
        block: BlockSpec<'_>,
        live: LiveOutput<'_>,
    ) -> Result<ExecResult, SandboxError> {
        self.ran.lock().unwrap().push(block.code.to_string());
        let output = format!("ran {}\n", block.code.lines().next().unwrap_or(""));
        live(Stream::Stdout, &output);
        let cancelled = if block.code.contains("hang") {
            block
                .cancel
                .expect("the engine passes a cancel token")
                .cancelled()
                .await;
            true
        } else {
            false
        };
        let exit_code = if cancelled {
            None
        } else if block.code.contains("fail") {
            Some(1)
        } else {
            Some(0)
        };
        Ok(ExecResult {
            exit_code,
            timed_out: false,
            oom_killed: false,
            truncated: false,
            output_bytes: output.len() as u64,
            output,
            duration_ms: 3,
            image: "fake".into(),
            container_restarted: false,
            cancelled,
            container: String::new(),
            omission_at: None,
            workspace_full: false,
            files: Vec::new(),
            files_incomplete: None,
        })
    }

    fn describe(&self) -> String {
        "fake sandbox".into()
    }

    fn workspace(&self) -> Option<&std::path::Path> {
        None
    }

    async fn shutdown(self) {}
}

struct FakeApprover(Result<ApproverVerdict, String>);

impl Approver for FakeApprover {
    async fn review(&self, _request: &ApprovalRequest) -> Result<ApproverVerdict, String> {
        self.0.clone()
    }
}

struct Options {
    approval: ApprovalConfig,
    approver: Option<FakeApprover>,
    max_turns: u32,
    end_when_idle: bool,
    prompt: Option<String>,
    /// The sandbox is ready only once this says so (`Err`: it fails to start).
    sandbox_gate: Option<tokio::sync::oneshot::Receiver<Result<(), String>>>,
    journal: Option<Journal>,
    context: Option<crate::engine::budget::ContextBudget>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            approval: ApprovalConfig::default(),
            approver: None,
            max_turns: 10,
            end_when_idle: true,
            prompt: Some("do the task".into()),
            sandbox_gate: None,
            journal: None,
            context: None,
        }
    }
}

fn with_mode(mode: ApproveMode) -> Options {
    let mut options = Options::default();
    options.approval.mode = mode;
    options
}

/// The frontend's side of the op channel: ops without an id, or whole submissions.
struct Ops(mpsc::UnboundedSender<Submission>);

impl Ops {
    fn send(&self, op: Op) -> Result<(), mpsc::error::SendError<Submission>> {
        self.0.send(op.into())
    }

    fn submit(&self, id: &str, op: Op) {
        let id = Some(id.to_string());
        self.0
            .send(Submission { id, op })
            .expect("engine is listening");
    }
}

struct Harness {
    ops: Ops,
    events: crate::engine::Subscriber,
    seen: Vec<Event>,
    requests: Requests,
    ran: Arc<Mutex<Vec<String>>>,
    session: tokio::task::JoinHandle<Ended>,
}

fn start(replies: Vec<Reply>, options: Options) -> Harness {
    let requests = Requests::default();
    let ran = Arc::new(Mutex::new(Vec::new()));
    let (op_tx, op_rx) = mpsc::unbounded_channel();
    let bus = crate::engine::Bus::new();
    let event_rx = bus.subscribe();
    let approval = options.approval;
    let settings = Settings {
        session: "s-test".into(),
        resumed: false,
        system_prompt: "SYSTEM".into(),
        max_turns: options.max_turns,
        stop_on_failure: approval.stop_on_failure,
        block_timeout: Duration::from_secs(5),
        feedback: FeedbackLimits {
            excerpt_bytes: 4096,
            timeout_secs: 5,
            memory_bytes: 512 << 20,
            workspace: (1 << 30, 100_000),
        },
        languages: LanguageTable::default(),
        end_when_idle: options.end_when_idle,
        context: options.context,
    };
    let session = Session::new(
        settings,
        FakeModel {
            replies: replies.into(),
            requests: requests.clone(),
        },
        options.approver,
        Policy::new(&approval, &LanguageTable::default()).expect("valid policy"),
        match options.journal {
            Some(journal) => Events::new(bus).with_journal(journal),
            None => Events::new(bus),
        },
        op_rx,
    );
    let prompt = options.prompt;
    let sandbox_ran = ran.clone();
    let gate = options.sandbox_gate;
    let start_sandbox = async move {
        if let Some(gate) = gate {
            match gate.await {
                Ok(Ok(())) => {}
                Ok(Err(why)) => return Err(SandboxError::Unavailable(why)),
                Err(_) => std::future::pending().await,
            }
        }
        Ok(FakeSandbox { ran: sandbox_ran })
    };
    Harness {
        ops: Ops(op_tx),
        events: event_rx,
        seen: Vec::new(),
        requests,
        ran,
        session: tokio::spawn(session.run(prompt, start_sandbox)),
    }
}

impl Harness {
    /// The next event that matches, failing the test after 5 s.
    async fn wait_for(&mut self, what: &str, matches: impl Fn(&Event) -> bool) -> Event {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let event = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .unwrap_or_else(|_| panic!("no {what} within 5 s; saw {:#?}", self.seen))
                .unwrap_or_else(|| panic!("events ended before {what}; saw {:#?}", self.seen));
            self.seen.push(event.clone());
            if matches(&event) {
                return event;
            }
        }
    }

    /// Waits until the engine waits for the operator, for `reason`.
    async fn idle(&mut self, reason: IdleReason) {
        self.wait_for("idle", |e| *e == Event::Idle { reason })
            .await;
    }

    /// The ids of the next `count` proposed blocks.
    async fn proposed(&mut self, count: usize) -> Vec<String> {
        let mut ids = Vec::new();
        for _ in 0..count {
            if let Event::BlockProposed { block, .. } = self
                .wait_for("block_proposed", |e| {
                    matches!(e, Event::BlockProposed { .. })
                })
                .await
            {
                ids.push(block);
            }
        }
        ids
    }

    fn decide(&self, block: &str, decision: DecisionKind) {
        self.decide_with(DecisionRequest {
            block: block.into(),
            decision,
            reason: None,
            code: None,
            scope: None,
        });
    }

    /// Approve-for-session of `block`, covering `scope`.
    fn approve_for_session(&self, block: &str, scope: Scope) {
        self.decide_with(DecisionRequest {
            block: block.into(),
            decision: ApproveSession,
            reason: None,
            code: None,
            scope: Some(scope),
        });
    }

    fn decide_with(&self, request: DecisionRequest) {
        self.ops
            .send(Op::Decide(request))
            .expect("engine is listening");
    }

    /// Waits for the end and returns the reason.
    async fn done(mut self) -> (DoneReason, Vec<Event>, Vec<Vec<ChatMessage>>, Vec<String>) {
        let done = self
            .wait_for("done", |e| matches!(e, Event::Done { .. }))
            .await;
        let ended = self.session.await.expect("session task");
        let reason = ended.reason;
        assert_eq!(done, Event::Done { reason });
        assert!(!ended.sandbox_failed);
        let requests = self.requests.lock().unwrap().clone();
        let ran = self.ran.lock().unwrap().clone();
        (reason, self.seen, requests, ran)
    }

    fn decisions(&self) -> Vec<(DecisionKind, DecisionSource)> {
        decisions(&self.seen)
    }
}

fn decisions(events: &[Event]) -> Vec<(DecisionKind, DecisionSource)> {
    events
        .iter()
        .filter_map(|event| match event {
            Event::Decision {
                decision, source, ..
            } => Some((*decision, *source)),
            _ => None,
        })
        .collect()
}

fn fenced(blocks: &[(&str, &str)]) -> String {
    let mut reply = String::from("Here is the plan.\n");
    for (language, code) in blocks {
        reply.push_str(&format!("\n```{language}\n{code}\n```\n"));
    }
    reply
}

fn last_user_message(request: &[ChatMessage]) -> &str {
    request
        .iter()
        .rev()
        .find(|message| message.role == Role::User)
        .map(|message| message.content.as_str())
        .unwrap_or("")
}

use DecisionKind::{Abort, Approve, ApproveSession, Edit, Reject, Skip};
use DecisionSource::{Approver as ByApprover, Flag, NoSupervisor, Operator, Rule, StopOnFailure};

mod decisions;
mod lifecycle;
mod replies;
mod rules;
