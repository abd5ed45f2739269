//! Helpers for the panes' snapshot and key-flow tests: an app fed with engine events, and a
//! frame rendered into ratatui's TestBackend as text.

use std::time::{Duration, UNIX_EPOCH};

use ratatui::Terminal;
use ratatui::backend::TestBackend;

use super::app::App;
use super::keys::keymap::Keymap;
use super::render::highlight::Highlighter;
use super::theme::Theme;
use crate::protocol::{DecisionKind, DecisionSource, Event, ExecResult, Phase, Stream};

pub fn app() -> App {
    let mut app = App::new(
        Theme::default(),
        Keymap::default(),
        "test-model".into(),
        1000,
        true,
    );
    app.on_event(&Event::SessionStarted {
        session: "s-test".into(),
        resumed: false,
    });
    app.on_event(&Event::SandboxReady {
        description:
            "airlock-sandbox:offline (1053be5690ed) · network none · 512MiB · 1 CPU · 256 pids"
                .into(),
        workspace: Some("/home/dev/.local/share/airlock/workspaces/s-1".into()),
    });
    app
}

/// Feeds `events` with the phases the engine reports around them: deciding once blocks are
/// proposed (and again after a run while blocks wait), running as a block starts.
pub fn feed(app: &mut App, events: &[Event]) {
    let phase = |phase| Event::Phase { phase };
    for event in events {
        if matches!(event, Event::ExecStarted { .. }) {
            app.on_event(&phase(Phase::Running));
        }
        app.on_event(event);
        let waiting = app.waiting() > 0;
        if matches!(event, Event::BlockProposed { .. })
            || (waiting && matches!(event, Event::ExecFinished { .. }))
        {
            app.on_event(&phase(Phase::Deciding));
        }
    }
    // Fixed times, so snapshots do not change with the clock.
    for (i, run) in app.history.runs.iter_mut().enumerate() {
        run.started = UNIX_EPOCH + Duration::from_secs(3600 * 9 + 60 * i as u64);
    }
}

pub fn proposed(block: &str, index: usize, language: &str, code: &str) -> Event {
    Event::BlockProposed {
        block: block.into(),
        index,
        language: language.into(),
        code: code.into(),
        origin: Default::default(),
    }
}

pub fn decided(block: &str, decision: DecisionKind) -> Event {
    Event::Decision {
        block: block.into(),
        decision,
        reason: None,
        source: DecisionSource::Operator,
        scope: None,
        code: None,
        id: None,
    }
}

pub fn started(block: &str, run: &str) -> Event {
    Event::ExecStarted {
        block: block.into(),
        run: run.into(),
    }
}

pub fn output(block: &str, stream: Stream, data: &str) -> Event {
    Event::ExecOutput {
        block: block.into(),
        run: format!("r-{block}"),
        stream,
        data: data.into(),
    }
}

pub fn finished(block: &str, result: ExecResult) -> Event {
    Event::ExecFinished {
        block: block.into(),
        run: format!("r-{block}"),
        result,
    }
}

pub fn result(exit_code: Option<i64>, output: &str) -> ExecResult {
    ExecResult::sample(exit_code, output)
}

/// The whole screen as text.
pub fn screen(app: &mut App, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test terminal");
    let highlighter = Highlighter::plain();
    terminal
        .draw(|frame| super::ui::draw(frame, app, &highlighter))
        .expect("draws");
    terminal.backend().to_string()
}

/// One pane drawn alone into `width`×`height`.
pub fn pane(width: u16, height: u16, draw: impl FnOnce(&mut ratatui::Frame)) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test terminal");
    terminal.draw(draw).expect("draws");
    terminal.backend().to_string()
}
