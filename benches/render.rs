//! Frame time of the full screen at 200×60 for a small and a huge session: the frame must
//! not depend on the session's size, because panes lay out only what is visible.
//!
//!   cargo bench --bench render
//!
//! Compare "100 messages" with "10k messages", and "1k log lines" with "1M log lines".
#![allow(clippy::expect_used)] // A bench that cannot set up should stop loudly.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

use airlock::protocol::{Event, ExecResult, Stream};
use airlock::tui::app::App;
use airlock::tui::render::highlight::Highlighter;
use airlock::tui::ui;

fn session(messages: usize, log_lines: usize) -> App {
    let mut app = App::new(
        Default::default(),
        Default::default(),
        "bench".into(),
        log_lines,
        false,
    );
    app.on_event(&Event::SandboxReady {
        description: "bench sandbox".into(),
        workspace: None,
    });
    for i in 0..messages {
        let text = format!(
            "## Step {i}\n\nI will **check** the `data` directory, then count lines:\n\n- list\n- count\n\n```python\nimport os\nprint(len(os.listdir('data')), {i})\n```\n"
        );
        app.on_event(&Event::AssistantMessage {
            text,
            usage: None,
            end: None,
        });
    }
    app.on_event(&Event::BlockProposed {
        block: "b".into(),
        index: 0,
        language: "python".into(),
        code: "print('waiting')\n".into(),
        origin: Default::default(),
    });
    app.on_event(&Event::ExecStarted {
        block: "b".into(),
        run: "r".into(),
    });
    for i in 0..log_lines {
        app.on_event(&Event::ExecOutput {
            block: "b".into(),
            run: "r".into(),
            stream: Stream::Stdout,
            data: format!("log line {i} with some text to wrap around\n"),
        });
    }
    app.on_event(&Event::ExecFinished {
        block: "b".into(),
        run: "r".into(),
        result: ExecResult {
            exit_code: Some(0),
            timed_out: false,
            oom_killed: false,
            truncated: false,
            output: String::new(),
            output_bytes: 0,
            duration_ms: 1,
            image: "bench".into(),
            container_restarted: false,
            cancelled: false,
            container: String::new(),
            omission_at: None,
            workspace_full: false,
            files: Vec::new(),
            files_incomplete: None,
        },
    });
    app
}

fn frame_time(c: &mut Criterion) {
    let highlighter = Highlighter::new("base16-ocean.dark").expect("built-in theme");
    let mut group = c.benchmark_group("frame 200x60");
    for (label, messages, log_lines) in [
        ("100 messages, 1k log lines", 100, 1_000),
        ("10k messages, 1k log lines", 10_000, 1_000),
        ("100 messages, 1M log lines", 100, 1_000_000),
    ] {
        let mut app = session(messages, log_lines);
        let mut terminal = Terminal::new(TestBackend::new(200, 60)).expect("terminal");
        group.bench_function(BenchmarkId::from_parameter(label), |b| {
            b.iter(|| {
                terminal
                    .draw(|frame| ui::draw(frame, &mut app, &highlighter))
                    .map(|_| ())
                    .expect("draws")
            });
        });
    }
    group.finish();
}

criterion_group!(benches, frame_time);
criterion_main!(benches);
