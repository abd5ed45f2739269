use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseEvent, MouseEventKind};
use ratatui::layout::Rect;

use super::*;
use crate::protocol::{DecisionKind, DecisionRequest, IdleReason, Scope};
use crate::tui::testing::{app, decided, feed, proposed};

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

#[test]
fn the_status_follows_the_sandbox_as_it_is_prepared_while_blocks_can_be_decided() {
    let mut app = App::new(Theme::default(), Keymap::default(), "m".into(), 100, false);
    assert_eq!(app.sandbox_label(), "preparing the sandbox · 0 s");
    app.on_event(&Event::SandboxProgress {
        message: "building airlock-sandbox:offline · step 2 of 6: downloading packages".into(),
    });
    assert!(matches!(
        &app.sandbox_state,
        SandboxState::Preparing { step: Some(step), .. } if step.ends_with("downloading packages")
    ));
    feed(&mut app, &[proposed("b1", 0, "python", "print(1)")]);
    assert_eq!(
        app.view.stage,
        Stage::Busy(Phase::Deciding),
        "blocks are offered before the sandbox is up"
    );
    assert_eq!(app.card_block().map(|b| b.id.as_str()), Some("b1"));
    app.on_event(&Event::SandboxReady {
        description: "img · network none".into(),
        workspace: None,
    });
    assert_eq!(app.sandbox_label(), "img · network none");
}

fn ctrl(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)
}

fn type_text(app: &mut App, text: &str) -> Vec<UiAction> {
    text.chars()
        .flat_map(|c| app.on_key(key(KeyCode::Char(c))))
        .collect()
}

fn ops(actions: Vec<UiAction>) -> Vec<Op> {
    actions
        .into_iter()
        .filter_map(|action| match action {
            UiAction::Op(op) => Some(op),
            UiAction::Submit(submission) => Some(submission.op),
            _ => None,
        })
        .collect()
}

fn decision(block: &str, kind: DecisionKind) -> Op {
    Op::Decide(DecisionRequest {
        block: block.into(),
        decision: kind,
        reason: None,
        code: None,
        scope: None,
    })
}

fn pending(app: &mut App) {
    feed(
        app,
        &[
            proposed("b-1", 0, "python", "print(1)\n"),
            proposed("b-2", 1, "bash", "ls\n"),
        ],
    );
}

#[test]
fn y_on_the_card_approves_the_shown_block() {
    let mut app = app();
    pending(&mut app);
    assert_eq!(app.focus, Focus::Card, "a new block takes focus");
    assert_eq!(
        ops(app.on_key(key(KeyCode::Char('y')))),
        [decision("b-1", DecisionKind::Approve)]
    );
    assert_eq!(
        ops(app.on_key(key(KeyCode::Char('s')))),
        [decision("b-1", DecisionKind::Skip)]
    );
    app.on_event(&decided("b-1", DecisionKind::Approve));
    assert_eq!(
        ops(app.on_key(key(KeyCode::Esc))),
        [decision("b-2", DecisionKind::Abort)]
    );
}

#[test]
fn typing_y_in_the_composer_approves_nothing() {
    let mut app = app();
    type_text(&mut app, "wh");
    pending(&mut app);
    assert_eq!(app.focus, Focus::Composer, "typing is not interrupted");
    let actions = type_text(&mut app, "y not? yes");
    assert!(ops(actions).is_empty());
    assert_eq!(app.composer.text(), "why not? yes");
    // Tab reaches the card; then y approves.
    app.on_key(key(KeyCode::Tab));
    assert_eq!(app.focus, Focus::Card);
    assert_eq!(
        ops(app.on_key(key(KeyCode::Char('y')))),
        [decision("b-1", DecisionKind::Approve)]
    );
}

#[test]
fn reject_asks_for_a_reason_and_sends_it() {
    let mut app = app();
    pending(&mut app);
    assert!(ops(app.on_key(key(KeyCode::Char('n')))).is_empty());
    assert!(
        ops(type_text(&mut app, "no network calls")).is_empty(),
        "the reason's letters decide nothing"
    );
    let sent = ops(app.on_key(key(KeyCode::Enter)));
    assert_eq!(
        sent,
        [Op::Decide(DecisionRequest {
            block: "b-1".into(),
            decision: DecisionKind::Reject,
            reason: Some("no network calls".into()),
            code: None,
            scope: None
        })]
    );
    // Esc in the prompt goes back to the card without a decision.
    app.on_key(key(KeyCode::Char('n')));
    assert!(ops(app.on_key(key(KeyCode::Esc))).is_empty());
    assert!(app.modals.is_empty());
}

#[test]
fn the_inline_editor_keeps_with_ctrl_s_and_drops_with_esc() {
    let mut app = app();
    pending(&mut app);
    app.on_key(key(KeyCode::Char('e')));
    app.on_key(key(KeyCode::End));
    type_text(&mut app, " # checked");
    let sent = ops(app.on_key(ctrl('s')));
    assert_eq!(
        sent,
        [Op::Decide(DecisionRequest {
            block: "b-1".into(),
            decision: DecisionKind::Edit,
            reason: None,
            code: Some("print(1) # checked\n".into()),
            scope: None
        })]
    );
    app.on_key(key(KeyCode::Char('e')));
    type_text(&mut app, "import os\n");
    assert!(
        ops(app.on_key(key(KeyCode::Esc))).is_empty(),
        "Esc drops the edit, it does not abort"
    );
    assert!(app.modals.is_empty());
    assert_eq!(app.focus, Focus::Card);
}

#[test]
fn approve_for_session_picks_its_scope() {
    let mut app = app();
    pending(&mut app);
    assert!(ops(app.on_key(key(KeyCode::Char('a')))).is_empty());
    let sent = ops(app.on_key(key(KeyCode::Char('x'))));
    assert_eq!(
        sent,
        [Op::Decide(DecisionRequest {
            block: "b-1".into(),
            decision: DecisionKind::ApproveSession,
            reason: None,
            code: None,
            scope: Some(Scope::Exact)
        })]
    );
    app.on_key(key(KeyCode::Char('a')));
    let sent = ops(app.on_key(key(KeyCode::Char('l'))));
    assert!(matches!(
        &sent[..],
        [Op::Decide(DecisionRequest {
            scope: Some(Scope::Language),
            ..
        })]
    ));
}

#[test]
fn ctrl_c_cancels_what_runs_and_a_second_one_asks_to_quit() {
    let mut app = app();
    app.on_event(&Event::Phase {
        phase: Phase::Running,
    });
    assert_eq!(ops(app.on_key(ctrl('c'))), [Op::Cancel]);
    assert!(ops(app.on_key(ctrl('c'))).is_empty());
    assert_eq!(
        app.modals.context(),
        Some(crate::tui::keys::keymap::Context::ConfirmQuit)
    );
    let actions = app.on_key(key(KeyCode::Char('y')));
    assert!(actions.contains(&UiAction::Quit));
    let mut idle = crate::tui::testing::app();
    let actions = idle.on_key(ctrl('c'));
    assert!(
        actions.contains(&UiAction::Quit),
        "nothing runs: Ctrl-C quits"
    );
}

#[test]
fn enter_sends_the_message_and_alt_enter_makes_a_new_line() {
    let mut app = app();
    type_text(&mut app, "first");
    app.on_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::ALT));
    type_text(&mut app, "second");
    assert_eq!(
        ops(app.on_key(key(KeyCode::Enter))),
        [Op::UserMessage {
            text: "first\nsecond".into()
        }]
    );
    assert_eq!(app.composer.text(), "");
    // While the model replies the message waits in the composer.
    type_text(&mut app, "more");
    assert!(ops(app.on_key(key(KeyCode::Enter))).is_empty());
    assert_eq!(app.composer.text(), "more");
}

#[test]
fn a_paste_is_text_even_when_it_holds_y_and_newlines() {
    let mut app = app();
    pending(&mut app);
    app.on_paste("y\ny\nrm -rf /\n");
    assert_eq!(app.focus, Focus::Composer);
    assert_eq!(app.composer.text(), "y\ny\nrm -rf /\n");
    app.on_paste("\u{1b}[2J\u{1b}]52;c;aGk=\u{7}x");
    assert!(
        !app.composer.text().contains('\u{1b}'),
        "{:?}",
        app.composer.text()
    );
}

#[test]
fn ctrl_r_retries_only_after_a_failed_reply() {
    let mut app = app();
    assert!(ops(app.on_key(ctrl('r'))).is_empty());
    app.on_event(&Event::Error {
        message: "HTTP 500".into(),
        id: None,
    });
    app.on_event(&Event::Idle {
        reason: IdleReason::Error,
    });
    assert_eq!(ops(app.on_key(ctrl('r'))), [Op::Retry]);
}

#[test]
fn the_wheel_scrolls_the_pane_under_the_pointer() {
    let mut app = app();
    app.areas = std::mem::take(&mut app.areas)
        .with(Focus::Conversation, Rect::new(0, 0, 50, 20))
        .with(Focus::Logs, Rect::new(50, 10, 50, 10));
    let wheel = |column, row| MouseEvent {
        kind: MouseEventKind::ScrollUp,
        column,
        row,
        modifiers: KeyModifiers::NONE,
    };
    app.on_mouse(wheel(10, 5));
    assert_eq!(app.conversation.scroll.from_bottom, 1);
    for i in 0..5 {
        app.logs
            .push(crate::protocol::Stream::Stdout, &format!("{i}\n"));
    }
    app.on_mouse(wheel(60, 15));
    assert_eq!(
        app.conversation.scroll.from_bottom, 1,
        "only the pane under the pointer moves"
    );
}

#[test]
fn the_bell_rings_once_per_message_with_blocks() {
    let mut app = app();
    let first = app.on_event(&proposed("b-1", 0, "python", "1"));
    let second = app.on_event(&proposed("b-2", 1, "python", "2"));
    assert_eq!(first, [UiAction::Bell]);
    assert!(second.is_empty());
}

#[test]
fn the_screen_is_idle_only_when_the_engine_says_so() {
    use crate::tui::testing::{finished, result, started};
    let mut app = app();
    feed(
        &mut app,
        &[
            proposed("b-1", 0, "bash", "ls\n"),
            decided("b-1", DecisionKind::Approve),
            started("b-1", "r-1"),
            finished("b-1", result(Some(0), "")),
        ],
    );
    // The last block ran; the engine has yet to send its result to the model. Guessing
    // "idle" here let q quit (or not ask) while the reply was about to stream.
    assert!(app.busy());
    app.on_key(key(KeyCode::Esc));
    assert!(!ops(app.on_key(key(KeyCode::Char('q')))).contains(&Op::Shutdown));
    assert_eq!(
        app.modals.context(),
        Some(crate::tui::keys::keymap::Context::ConfirmQuit)
    );
    app.on_key(key(KeyCode::Char('n')));
    for event in [
        Event::Phase {
            phase: Phase::Replying,
        },
        Event::AssistantMessage {
            text: "done".into(),
            usage: None,
            end: None,
        },
        Event::Idle {
            reason: IdleReason::NoCode,
        },
    ] {
        app.on_event(&event);
    }
    assert!(!app.busy());
    app.on_key(key(KeyCode::Esc));
    assert_eq!(
        ops(app.on_key(key(KeyCode::Char('q')))),
        [Op::Shutdown],
        "idle: q quits at once"
    );
}

#[test]
fn a_second_message_waits_until_the_engine_has_taken_the_first() {
    let mut app = app();
    type_text(&mut app, "one");
    assert_eq!(ops(app.on_key(key(KeyCode::Enter))).len(), 1);
    type_text(&mut app, "two");
    assert!(ops(app.on_key(key(KeyCode::Enter))).is_empty());
    // As the engine answers: the message with the id it was sent with, then the reply.
    for event in [
        Event::UserMessage {
            text: "one".into(),
            id: Some("tui-1".into()),
        },
        Event::Phase {
            phase: Phase::Replying,
        },
        Event::AssistantMessage {
            text: "no code".into(),
            usage: None,
            end: None,
        },
        Event::Idle {
            reason: IdleReason::NoCode,
        },
    ] {
        app.on_event(&event);
    }
    assert_eq!(
        ops(app.on_key(key(KeyCode::Enter))),
        [Op::UserMessage { text: "two".into() }]
    );
}

#[test]
fn a_message_the_engine_refuses_frees_the_composer_at_once_and_only_its_own_refusal_does() {
    let mut app = app();
    type_text(&mut app, "one");
    let sent = app.on_key(key(KeyCode::Enter));
    let [UiAction::Submit(submission)] = sent.as_slice() else {
        panic!("{sent:?}");
    };
    let id = submission.id.clone().expect("an id");
    type_text(&mut app, "two");
    app.on_event(&Event::Error {
        message: "a decision is not possible now".into(),
        id: Some("someone-else".into()),
    });
    assert!(
        ops(app.on_key(key(KeyCode::Enter))).is_empty(),
        "another op's refusal answers nothing of ours"
    );
    app.on_event(&Event::Error {
        message: "a message to the model is not possible while a block runs".into(),
        id: Some(id.clone()),
    });
    let again = app.on_key(key(KeyCode::Enter));
    let [UiAction::Submit(resent)] = again.as_slice() else {
        panic!("{again:?}");
    };
    assert_eq!(resent.op, Op::UserMessage { text: "two".into() });
    assert_ne!(resent.id, Some(id), "each op has its own id");
}

#[test]
fn a_message_taken_holds_the_next_until_its_reply_begins() {
    let mut app = app();
    type_text(&mut app, "one");
    let sent = app.on_key(key(KeyCode::Enter));
    let [UiAction::Submit(submission)] = sent.as_slice() else {
        panic!("{sent:?}");
    };
    app.on_event(&Event::UserMessage {
        text: "one".into(),
        id: submission.id.clone(),
    });
    type_text(&mut app, "two");
    assert!(
        ops(app.on_key(key(KeyCode::Enter))).is_empty(),
        "taken, but the engine is not replying yet: the next message waits"
    );
    app.on_event(&Event::Phase {
        phase: Phase::Replying,
    });
    app.on_event(&Event::Idle {
        reason: IdleReason::NoCode,
    });
    assert_eq!(
        ops(app.on_key(key(KeyCode::Enter))),
        [Op::UserMessage { text: "two".into() }]
    );
}
