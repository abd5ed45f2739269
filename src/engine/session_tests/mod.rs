//! The engine with a fake model, sandbox and approver: the order of things, every decision
//! kind, stop-on-failure, max_turns, cancellation, and what the model is sent.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;

use super::*;
use crate::config::{ApprovalConfig, ApproveMode};
use crate::engine::Journal;
use crate::engine::approver::ApproverVerdict;
use crate::engine::sandbox::LiveOutput;
use crate::model::ModelSink;
use crate::protocol::{DecisionRequest, ExecResult, Scope};

/// What the fake model does for one request.
enum Reply {
    Text(String),
    Fail(String),
    /// Streams a piece, then never finishes.
    Hang,
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
    ) -> Result<String, ModelError> {
        self.requests.lock().unwrap().push(messages.to_vec());
        match self.replies.pop_front() {
            None => Err(ModelError::Exhausted),
            Some(Reply::Text(reply)) => {
                for piece in reply.split_inclusive('\n') {
                    sink(ModelEvent::Delta(piece.to_string()));
                }
                Ok(reply)
            }
            Some(Reply::Fail(why)) => Err(ModelError::Failed(why)),
            Some(Reply::Hang) => {
                sink(ModelEvent::Delta("I will".into()));
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
        })
    }

    fn describe(&self) -> String {
        "fake sandbox".into()
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
        }
    }
}

fn with_mode(mode: ApproveMode) -> Options {
    let mut options = Options::default();
    options.approval.mode = mode;
    options
}

struct Harness {
    ops: mpsc::UnboundedSender<Op>,
    events: mpsc::UnboundedReceiver<Event>,
    seen: Vec<Event>,
    requests: Requests,
    ran: Arc<Mutex<Vec<String>>>,
    session: tokio::task::JoinHandle<Ended>,
}

fn start(replies: Vec<Reply>, options: Options) -> Harness {
    let requests = Requests::default();
    let ran = Arc::new(Mutex::new(Vec::new()));
    let (op_tx, op_rx) = mpsc::unbounded_channel();
    let (event_tx, event_rx) = mpsc::unbounded_channel();
    let approval = options.approval;
    let settings = Settings {
        session: "s-test".into(),
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
            Some(journal) => Events::new(event_tx).with_journal(journal),
            None => Events::new(event_tx),
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
        ops: op_tx,
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

#[tokio::test]
async fn decisions_in_any_order_run_blocks_in_order_and_results_reach_the_model() {
    let mut harness = start(
        vec![
            text(&fenced(&[("python", "print('one')"), ("bash", "echo two")])),
            text("All done, no more code."),
        ],
        Options::default(),
    );
    let ids = harness.proposed(2).await;
    harness.decide(&ids[1], Approve);
    harness.decide(&ids[0], Approve);
    let (reason, events, requests, ran) = harness.done().await;
    assert_eq!(reason, DoneReason::NoCode);
    assert_eq!(ran, ["print('one')\n", "echo two\n"]);
    assert_eq!(requests.len(), 2, "one model call per turn");
    let report = last_user_message(&requests[1]);
    let one = report.find("ran print('one')").expect("first output sent");
    let two = report.find("ran echo two").expect("second output sent");
    assert!(one < two, "{report}");
    assert!(matches!(events.first(), Some(Event::SessionStarted { .. })));
    let started: Vec<&Event> = events
        .iter()
        .filter(|e| matches!(e, Event::ExecStarted { .. }))
        .collect();
    assert_eq!(started.len(), 2);
    assert_eq!(
        decisions(&events),
        [(Approve, Operator), (Approve, Operator)]
    );
}

#[tokio::test]
async fn an_edit_runs_the_new_code_and_the_model_is_told_what_ran() {
    let mut harness = start(
        vec![text(&fenced(&[("python", "print('orig')")])), text("ok")],
        Options::default(),
    );
    let ids = harness.proposed(1).await;
    harness.decide_with(DecisionRequest {
        block: ids[0].clone(),
        decision: Edit,
        reason: None,
        code: Some("print('edited')\n".into()),
        scope: None,
    });
    let decision = harness
        .wait_for("decision", |e| matches!(e, Event::Decision { .. }))
        .await;
    let Event::Decision { code, .. } = decision else {
        unreachable!()
    };
    assert_eq!(code.as_deref(), Some("print('edited')\n"));
    let (_, _, requests, ran) = harness.done().await;
    assert_eq!(ran, ["print('edited')\n"]);
    let report = last_user_message(&requests[1]);
    assert!(
        report.contains("edited this block") && report.contains("print('edited')"),
        "{report}"
    );
    assert!(!report.contains("print('orig')"), "{report}");
    // The original stays in the conversation as the model wrote it.
    assert!(
        requests[1]
            .iter()
            .any(|m| m.role == Role::Assistant && m.content.contains("print('orig')"))
    );
}

#[tokio::test]
async fn skip_and_reject_do_not_run_and_the_reason_reaches_the_model() {
    let mut harness = start(
        vec![
            text(&fenced(&[("bash", "rm -rf build"), ("python", "print(2)")])),
            text("understood"),
        ],
        Options::default(),
    );
    let ids = harness.proposed(2).await;
    harness.decide_with(DecisionRequest {
        block: ids[0].clone(),
        decision: Reject,
        reason: Some("never delete build outputs".into()),
        code: None,
        scope: None,
    });
    harness.decide(&ids[1], Skip);
    let (reason, events, requests, ran) = harness.done().await;
    assert_eq!(reason, DoneReason::NoCode);
    assert!(ran.is_empty());
    let report = last_user_message(&requests[1]);
    assert!(report.contains("never delete build outputs"), "{report}");
    assert!(report.contains("skipped"), "{report}");
    assert_eq!(decisions(&events), [(Reject, Operator), (Skip, Operator)]);
}

#[tokio::test]
async fn after_a_failure_the_rest_of_the_message_is_skipped_and_said() {
    let mut harness = start(
        vec![
            text(&fenced(&[
                ("bash", "fail now"),
                ("bash", "echo after"),
                ("bash", "echo third"),
            ])),
            text("I see the failure."),
        ],
        Options::default(),
    );
    let ids = harness.proposed(3).await;
    // The second is approved before the first runs; the third is never decided.
    harness.decide(&ids[1], Approve);
    harness.decide(&ids[0], Approve);
    let (_, events, requests, ran) = harness.done().await;
    assert_eq!(ran, ["fail now\n"]);
    assert_eq!(
        decisions(&events),
        [
            (Approve, Operator),
            (Approve, Operator),
            (Skip, StopOnFailure),
            (Skip, StopOnFailure)
        ]
    );
    let report = last_user_message(&requests[1]);
    assert!(
        report.contains("exit code 1") && report.contains("block 1 failed"),
        "{report}"
    );
}

#[tokio::test]
async fn with_stop_on_failure_off_every_approved_block_runs() {
    let mut options = Options::default();
    options.approval.stop_on_failure = false;
    options.approval.mode = ApproveMode::All;
    let harness = start(
        vec![
            text(&fenced(&[("bash", "fail now"), ("bash", "echo after")])),
            text("ok"),
        ],
        options,
    );
    let (_, events, _, ran) = harness.done().await;
    assert_eq!(ran, ["fail now\n", "echo after\n"]);
    assert_eq!(decisions(&events), [(Approve, Flag), (Approve, Flag)]);
}

#[tokio::test]
async fn approve_for_session_covers_its_scope_in_this_and_later_turns() {
    let mut harness = start(
        vec![
            text(&fenced(&[
                ("python", "print(1)"),
                ("python", "print(2)"),
                ("bash", "ls"),
            ])),
            text(&fenced(&[("python", "print(3)"), ("bash", "ls")])),
            text("done"),
        ],
        Options::default(),
    );
    let ids = harness.proposed(3).await;
    harness.decide_with(DecisionRequest {
        block: ids[0].clone(),
        decision: ApproveSession,
        reason: None,
        code: None,
        scope: Some(Scope::Language),
    });
    harness.decide_with(DecisionRequest {
        block: ids[2].clone(),
        decision: ApproveSession,
        reason: None,
        code: None,
        scope: Some(Scope::Exact),
    });
    let scope = harness
        .wait_for("approve_session", |e| {
            matches!(
                e,
                Event::Decision {
                    decision: ApproveSession,
                    ..
                }
            )
        })
        .await;
    assert!(matches!(
        scope,
        Event::Decision {
            scope: Some(Scope::Language),
            ..
        }
    ));
    // The next turn is decided by the two session rules alone.
    let (reason, events, _, ran) = harness.done().await;
    assert_eq!(reason, DoneReason::NoCode);
    assert_eq!(
        ran,
        ["print(1)\n", "print(2)\n", "ls\n", "print(3)\n", "ls\n"]
    );
    assert_eq!(
        decisions(&events),
        [
            (ApproveSession, Operator),
            (Approve, Rule),
            (ApproveSession, Operator),
            (Approve, Rule),
            (Approve, Rule)
        ]
    );
}

#[tokio::test]
async fn abort_stops_the_turn_and_asks_the_model_nothing_more() {
    let mut harness = start(
        vec![
            text(&fenced(&[("python", "print(1)"), ("python", "print(2)")])),
            text("never sent"),
        ],
        Options::default(),
    );
    let ids = harness.proposed(2).await;
    harness.decide(&ids[0], Abort);
    let (reason, events, requests, ran) = harness.done().await;
    assert_eq!(reason, DoneReason::Aborted);
    assert!(ran.is_empty());
    assert_eq!(requests.len(), 1);
    assert_eq!(decisions(&events), [(Abort, Operator), (Abort, Operator)]);
}

#[tokio::test]
async fn after_an_abort_the_results_go_with_the_operators_next_message() {
    let options = Options {
        end_when_idle: false,
        ..Options::default()
    };
    let mut harness = start(
        vec![
            text(&fenced(&[("python", "print(1)"), ("python", "print(2)")])),
            text("fine"),
        ],
        options,
    );
    let ids = harness.proposed(2).await;
    harness.decide(&ids[0], Approve);
    harness
        .wait_for("exec_finished", |e| matches!(e, Event::ExecFinished { .. }))
        .await;
    harness.decide(&ids[1], Abort);
    harness
        .wait_for("idle", |e| {
            matches!(
                e,
                Event::Idle {
                    reason: IdleReason::Aborted
                }
            )
        })
        .await;
    harness
        .ops
        .send(Op::UserMessage {
            text: "try another way".into(),
        })
        .unwrap();
    harness
        .wait_for("idle", |e| {
            matches!(
                e,
                Event::Idle {
                    reason: IdleReason::NoCode
                }
            )
        })
        .await;
    harness.ops.send(Op::Shutdown).unwrap();
    let (reason, _, requests, _) = harness.done().await;
    assert_eq!(reason, DoneReason::Aborted);
    let message = last_user_message(&requests[1]);
    assert!(
        message.contains("ran print(1)") && message.contains("stopped the turn"),
        "{message}"
    );
    assert!(message.ends_with("try another way"), "{message}");
}

#[tokio::test]
async fn the_session_stops_at_max_turns() {
    let options = Options {
        max_turns: 2,
        ..with_mode(ApproveMode::All)
    };
    let reply = || text(&fenced(&[("python", "print('again')")]));
    let harness = start(vec![reply(), reply(), reply()], options);
    let (reason, _, requests, ran) = harness.done().await;
    assert_eq!(reason, DoneReason::MaxTurns);
    assert_eq!(requests.len(), 2);
    assert_eq!(ran.len(), 2);
}

#[tokio::test]
async fn nothing_is_added_to_the_context_twice() {
    let options = with_mode(ApproveMode::All);
    let harness = start(
        vec![
            text(&fenced(&[("python", "print('alpha')")])),
            text(&fenced(&[("python", "print('beta')")])),
            text("finished"),
        ],
        options,
    );
    let (_, _, requests, _) = harness.done().await;
    assert_eq!(requests.len(), 3);
    for pair in requests.windows(2) {
        let (before, after) = (&pair[0], &pair[1]);
        assert_eq!(
            &after[..before.len()],
            &before[..],
            "each request extends the last"
        );
        assert_eq!(
            after.len(),
            before.len() + 2,
            "one reply and one report per turn"
        );
        assert_eq!(after[before.len()].role, Role::Assistant);
        assert_eq!(after[before.len() + 1].role, Role::User);
    }
    let last = &requests[2];
    assert_eq!(last.iter().filter(|m| m.role == Role::System).count(), 1);
    let everything: String = last.iter().map(|m| m.content.as_str()).collect();
    assert_eq!(everything.matches("ran print('alpha')").count(), 1);
    assert_eq!(everything.matches("ran print('beta')").count(), 1);
    assert_eq!(everything.matches("do the task").count(), 1);
}

#[tokio::test]
async fn cancelling_the_model_keeps_the_conversation_and_retry_asks_again() {
    let options = Options {
        end_when_idle: false,
        ..Options::default()
    };
    let mut harness = start(vec![Reply::Hang, text("second try, no code")], options);
    harness
        .wait_for("delta", |e| matches!(e, Event::AssistantDelta { .. }))
        .await;
    harness.ops.send(Op::Cancel).unwrap();
    harness
        .wait_for("idle", |e| {
            matches!(
                e,
                Event::Idle {
                    reason: IdleReason::Cancelled
                }
            )
        })
        .await;
    harness.ops.send(Op::Retry).unwrap();
    harness
        .wait_for("assistant_message", |e| {
            matches!(e, Event::AssistantMessage { .. })
        })
        .await;
    harness.ops.send(Op::Shutdown).unwrap();
    let (_, _, requests, _) = harness.done().await;
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[0], requests[1],
        "the retry sends the same conversation"
    );
}

#[tokio::test]
async fn cancelling_a_running_block_stops_it_and_the_session_goes_on() {
    let mut harness = start(
        vec![
            text(&fenced(&[("bash", "hang here")])),
            text("I see it was stopped"),
        ],
        Options::default(),
    );
    let ids = harness.proposed(1).await;
    harness.decide(&ids[0], Approve);
    harness
        .wait_for("output", |e| matches!(e, Event::ExecOutput { .. }))
        .await;
    harness.ops.send(Op::Cancel).unwrap();
    let finished = harness
        .wait_for("exec_finished", |e| matches!(e, Event::ExecFinished { .. }))
        .await;
    let Event::ExecFinished { result, .. } = finished else {
        unreachable!()
    };
    assert!(result.cancelled && result.exit_code.is_none());
    let (reason, _, requests, _) = harness.done().await;
    assert_eq!(reason, DoneReason::NoCode);
    assert!(last_user_message(&requests[1]).contains("operator stopped the block"));
}

#[tokio::test]
async fn cancel_while_waiting_for_a_decision_aborts_the_turn() {
    let mut harness = start(vec![text(&fenced(&[("bash", "ls")]))], Options::default());
    harness.proposed(1).await;
    harness.ops.send(Op::Cancel).unwrap();
    let (reason, events, _, ran) = harness.done().await;
    assert_eq!(reason, DoneReason::Aborted);
    assert!(ran.is_empty());
    assert_eq!(decisions(&events), [(Abort, Operator)]);
}

#[tokio::test]
async fn without_a_supervisor_undecided_blocks_are_rejected_but_approved_ones_run() {
    let mut harness = start(
        vec![text(&fenced(&[("bash", "echo a"), ("bash", "echo b")]))],
        Options::default(),
    );
    let ids = harness.proposed(2).await;
    harness.decide(&ids[0], Approve);
    harness.ops.send(Op::NoSupervisor).unwrap();
    let (reason, events, requests, ran) = harness.done().await;
    assert_eq!(reason, DoneReason::NoSupervisor);
    assert_eq!(ran, ["echo a\n"]);
    assert_eq!(
        decisions(&events),
        [(Approve, Operator), (Reject, NoSupervisor)]
    );
    assert_eq!(requests.len(), 1);
}

#[tokio::test]
async fn ending_the_session_with_blocks_waiting_rejects_them_for_want_of_a_supervisor() {
    let mut harness = start(
        vec![text(&fenced(&[("bash", "echo a"), ("bash", "echo b")]))],
        Options::default(),
    );
    let ids = harness.proposed(2).await;
    harness.decide(&ids[0], Skip);
    harness
        .wait_for("the skip", |e| matches!(e, Event::Decision { .. }))
        .await;
    harness.ops.send(Op::Shutdown).unwrap();
    let (reason, events, _, ran) = harness.done().await;
    assert_eq!(reason, DoneReason::Aborted);
    assert!(ran.is_empty());
    assert_eq!(
        decisions(&events),
        [(Skip, Operator), (Reject, NoSupervisor)]
    );
    let reason = events.iter().rev().find_map(|event| match event {
        Event::Decision { block, reason, .. } if *block == ids[1] => reason.clone(),
        _ => None,
    });
    assert!(
        reason.as_deref().unwrap_or("").contains("session ended"),
        "{reason:?}"
    );
}

#[tokio::test]
async fn approve_none_rejects_with_a_reason_the_model_receives() {
    let options = with_mode(ApproveMode::None);
    let harness = start(
        vec![text(&fenced(&[("python", "print(1)")])), text("ok")],
        options,
    );
    let (_, events, requests, ran) = harness.done().await;
    assert!(ran.is_empty());
    assert_eq!(decisions(&events), [(Reject, Flag)]);
    assert!(last_user_message(&requests[1]).contains("--approve none"));
}

#[tokio::test]
async fn approve_all_still_obeys_deny_rules() {
    let options = Options {
        approval: ApprovalConfig {
            mode: ApproveMode::All,
            deny_patterns: vec!["curl ".into()],
            ..ApprovalConfig::default()
        },
        ..Options::default()
    };
    let harness = start(
        vec![
            text(&fenced(&[
                ("bash", "curl example.com"),
                ("bash", "echo fine"),
            ])),
            text("ok"),
        ],
        options,
    );
    let (_, events, _, ran) = harness.done().await;
    assert_eq!(ran, ["echo fine\n"]);
    assert_eq!(decisions(&events), [(Reject, Rule), (Approve, Flag)]);
}

#[tokio::test]
async fn the_approver_decides_and_its_failure_goes_to_the_operator() {
    let options = Options {
        approver: Some(FakeApprover(Ok(ApproverVerdict {
            approved: false,
            reason: Some("writes outside /workspace".into()),
        }))),
        ..Options::default()
    };
    let harness = start(
        vec![text(&fenced(&[("bash", "touch /etc/x")])), text("ok")],
        options,
    );
    let (_, events, requests, _) = harness.done().await;
    assert_eq!(decisions(&events), [(Reject, ByApprover)]);
    assert!(last_user_message(&requests[1]).contains("writes outside /workspace"));

    let options = Options {
        approver: Some(FakeApprover(Err("it exited with status 3".into()))),
        ..Options::default()
    };
    let mut harness = start(
        vec![text(&fenced(&[("bash", "echo hi")])), text("ok")],
        options,
    );
    let ids = harness.proposed(1).await;
    let error = harness
        .wait_for("error", |e| matches!(e, Event::Error { .. }))
        .await;
    assert!(
        matches!(&error, Event::Error { message } if message.contains("status 3") && message.contains("operator"))
    );
    assert!(
        harness.decisions().is_empty(),
        "nothing decided before the operator"
    );
    harness.decide(&ids[0], Approve);
    let (_, events, _, ran) = harness.done().await;
    assert_eq!(ran, ["echo hi\n"]);
    assert_eq!(decisions(&events), [(Approve, Operator)]);
}

#[tokio::test]
async fn model_failures_end_a_headless_session_and_can_be_retried_interactively() {
    let harness = start(
        vec![Reply::Fail("HTTP 500: boom".into())],
        Options::default(),
    );
    let (reason, events, _, _) = harness.done().await;
    assert_eq!(reason, DoneReason::Error);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Error { message } if message.contains("HTTP 500: boom")))
    );

    let options = Options {
        end_when_idle: false,
        ..Options::default()
    };
    let mut harness = start(
        vec![Reply::Fail("stream cut".into()), text("recovered")],
        options,
    );
    harness
        .wait_for("idle", |e| {
            matches!(
                e,
                Event::Idle {
                    reason: IdleReason::Error
                }
            )
        })
        .await;
    harness.ops.send(Op::Retry).unwrap();
    harness
        .wait_for(
            "reply",
            |e| matches!(e, Event::AssistantMessage { text } if text == "recovered"),
        )
        .await;
    harness.ops.send(Op::Shutdown).unwrap();
    let (_, _, requests, _) = harness.done().await;
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0], requests[1]);
}

#[tokio::test]
async fn bad_decisions_are_errors_and_change_nothing() {
    let mut harness = start(
        vec![
            text(&fenced(&[("bash", "hang here"), ("bash", "echo x")])),
            text("ok"),
        ],
        Options::default(),
    );
    let ids = harness.proposed(2).await;
    harness.decide("b-unknown", Approve);
    harness
        .wait_for(
            "error",
            |e| matches!(e, Event::Error { message } if message.contains("b-unknown")),
        )
        .await;
    harness.decide(&ids[1], Edit);
    harness
        .wait_for(
            "error",
            |e| matches!(e, Event::Error { message } if message.contains("needs the new code")),
        )
        .await;
    harness.decide(&ids[0], Approve);
    harness
        .wait_for("output", |e| matches!(e, Event::ExecOutput { .. }))
        .await;
    harness.decide(&ids[0], Reject);
    harness
        .wait_for(
            "error",
            |e| matches!(e, Event::Error { message } if message.contains("already decided")),
        )
        .await;
    harness.ops.send(Op::Cancel).unwrap();
    let (_, events, _, ran) = harness.done().await;
    assert_eq!(ran, ["hang here\n"]);
    assert_eq!(
        decisions(&events),
        [(Approve, Operator), (Skip, StopOnFailure)]
    );
}

#[tokio::test]
async fn a_script_that_runs_out_ends_the_session() {
    let harness = start(vec![], Options::default());
    let (reason, events, _, _) = harness.done().await;
    assert_eq!(reason, DoneReason::ScriptExhausted);
    assert!(
        matches!(events.first(), Some(Event::SessionStarted { session }) if session == "s-test")
    );
}

#[tokio::test]
async fn the_model_replies_and_blocks_wait_while_the_sandbox_is_prepared() {
    let (open, gate) = tokio::sync::oneshot::channel();
    let options = Options {
        sandbox_gate: Some(gate),
        ..Options::default()
    };
    let mut session = start(
        vec![text(&fenced(&[("python", "print(1)")])), text("done")],
        options,
    );
    let ids = session.proposed(1).await;
    session.decide(&ids[0], Approve);
    session
        .wait_for(
            "the block's wait",
            |e| matches!(e, Event::Notice { message } if message.contains("waits for the sandbox")),
        )
        .await;
    assert!(
        session.ran.lock().unwrap().is_empty(),
        "nothing runs before the sandbox"
    );
    assert!(
        !session
            .seen
            .iter()
            .any(|e| matches!(e, Event::SandboxReady { .. })),
        "the model replied before the sandbox was ready"
    );
    open.send(Ok(())).expect("the sandbox is still awaited");
    session
        .wait_for("sandbox_ready", |e| matches!(e, Event::SandboxReady { .. }))
        .await;
    let (reason, _, requests, ran) = session.done().await;
    assert_eq!(reason, DoneReason::NoCode);
    assert_eq!(ran, vec!["print(1)\n".to_string()]);
    assert!(last_user_message(&requests[1]).contains("ran print(1)"));
}

#[tokio::test]
async fn a_sandbox_that_cannot_start_ends_the_session_with_its_reason() {
    let (fail, gate) = tokio::sync::oneshot::channel();
    let options = Options {
        sandbox_gate: Some(gate),
        ..Options::default()
    };
    // The model is still replying when the sandbox fails.
    let mut session = start(vec![Reply::Hang], options);
    session
        .wait_for("the reply's start", |e| {
            matches!(e, Event::AssistantDelta { .. })
        })
        .await;
    fail.send(Err("cannot reach the Docker daemon".into()))
        .expect("the sandbox is still awaited");
    let error = session
        .wait_for("error", |e| matches!(e, Event::Error { .. }))
        .await;
    assert!(matches!(&error, Event::Error { message } if message.contains("Docker daemon")));
    session
        .wait_for("done", |e| {
            *e == Event::Done {
                reason: DoneReason::Error,
            }
        })
        .await;
    let ended = session.session.await.expect("session task");
    assert_eq!(
        ended,
        Ended {
            reason: DoneReason::Error,
            sandbox_failed: true
        }
    );
}

#[tokio::test]
async fn a_sandbox_failing_while_the_operator_is_away_ends_the_waiting_session() {
    let (fail, gate) = tokio::sync::oneshot::channel();
    let options = Options {
        sandbox_gate: Some(gate),
        end_when_idle: false,
        prompt: None,
        ..Options::default()
    };
    let mut session = start(Vec::new(), options);
    session
        .wait_for("session_started", |e| {
            matches!(e, Event::SessionStarted { .. })
        })
        .await;
    fail.send(Err("no image".into())).expect("awaited");
    session
        .wait_for("done", |e| {
            *e == Event::Done {
                reason: DoneReason::Error,
            }
        })
        .await;
    assert!(session.session.await.expect("session task").sandbox_failed);
    assert!(
        session.requests.lock().unwrap().is_empty(),
        "nobody asked the model"
    );
}

#[tokio::test]
async fn a_reply_full_of_unrunnable_fences_gets_one_notice_grouped_by_reason() {
    let reply = "Output looks like:\n\n```\n1 2 3\n```\n\n```bash\necho run-me\n```\n\n```\nexample\n```\n\n```rust\nfn main() {}\n```\n\n```\nmore\n```\n";
    let harness = start(vec![text(reply), text("done")], with_mode(ApproveMode::All));
    let (_, events, _, ran) = harness.done().await;
    assert_eq!(ran, ["echo run-me\n"]);
    let notices: Vec<&str> = events
        .iter()
        .filter_map(|event| match event {
            Event::Notice { message } if message.contains("not offered") => Some(message.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(notices.len(), 1, "{notices:#?}");
    let notice = notices[0];
    assert!(
        notice.starts_with(
            "4 blocks of the reply are not offered to run: no language tag (blocks 1, 3, 5): "
        ),
        "{notice}"
    );
    assert!(
        notice.contains("language `rust` is not configured"),
        "{notice}"
    );
    assert!(notice.ends_with("(block 4)"), "{notice}");
}

#[tokio::test]
async fn when_the_history_stops_recording_no_further_block_runs_and_the_model_is_told() {
    // The history takes the first two blocks' events, then the disk is full.
    let recorded = Arc::new(Mutex::new(0usize));
    let counter = recorded.clone();
    let journal: Journal = Arc::new(move |event: &Event| {
        if matches!(event, Event::ExecFinished { .. }) {
            *counter.lock().expect("lock") += 1;
        }
        if *counter.lock().expect("lock") >= 1 && matches!(event, Event::Decision { .. }) {
            return Err("database or disk is full".into());
        }
        Ok(())
    });
    let mut options = with_mode(ApproveMode::All);
    options.journal = Some(journal);
    let harness = start(
        vec![
            text(&fenced(&[("bash", "echo one")])),
            text(&fenced(&[("bash", "echo two"), ("bash", "echo three")])),
            text("done"),
        ],
        options,
    );
    let (_, events, requests, ran) = harness.done().await;
    assert_eq!(
        ran,
        ["echo one\n"],
        "only the block that could be recorded ran"
    );
    let said: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            Event::Error { message } => Some(message.clone()),
            _ => None,
        })
        .collect();
    assert!(
        said.iter()
            .any(|m| m.contains("disk is full") && m.contains("no further block")),
        "{said:?}"
    );
    let report = last_user_message(&requests[2]);
    assert!(report.contains("the history cannot record it"), "{report}");
}

mod rules;
