//! The workspace pane against a 16 ms frame budget:
//!
//!   cargo bench --bench workspace
//!
//! - a workspace of 10k files: listing it (on the job's thread, until the pane has it) and
//!   drawing a 120×40 screen with the pane open, against the same screen with it closed;
//! - a 4000×4000 PNG preview: decoding and scaling it in the background, and what the event
//!   loop does per frame meanwhile (a key, the finished jobs, a frame), against the same
//!   frame when nothing loads;
//! - a 1.5 MiB Python file: its first MiB highlighted in the background, and a frame with it.
#![allow(clippy::expect_used)] // A bench that cannot set up should stop loudly.

use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

use airlock::protocol::{Event, ExecResult};
use airlock::tui::app::App;
use airlock::tui::render::highlight::Highlighter;
use airlock::tui::ui;

const BUDGET: Duration = Duration::from_millis(16);

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

/// An app whose sandbox has `root` as its workspace, the pane open and listed.
fn with_workspace(root: &Path) -> App {
    let mut app = App::new(
        Default::default(),
        Default::default(),
        "bench".into(),
        1000,
        false,
    );
    app.on_event(&Event::SandboxReady {
        description: "bench sandbox".into(),
        workspace: Some(root.display().to_string()),
    });
    app.on_key(key(KeyCode::Tab)); // From the composer to the conversation.
    app.on_key(key(KeyCode::Char('w')));
    settle(&mut app, |_| {});
    app
}

/// Applies finished jobs until none runs, calling `meanwhile` between polls.
fn settle(app: &mut App, mut meanwhile: impl FnMut(&mut App)) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while app.jobs_running() {
        assert!(Instant::now() < deadline, "a job did not end");
        if app.apply_finished_jobs() == 0 {
            meanwhile(app);
        }
    }
}

fn ten_thousand_files() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for d in 0..100 {
        let sub = dir.path().join(format!("run-{d:03}"));
        std::fs::create_dir(&sub).expect("dir");
        for f in 0..100 {
            std::fs::write(sub.join(format!("result-{f:03}.csv")), b"a,b\n1,2\n").expect("file");
        }
    }
    dir
}

fn finished() -> Event {
    let result = ExecResult {
        exit_code: Some(0),
        duration_ms: 1,
        image: "bench".into(),
        ..ExecResult::default()
    };
    Event::ExecFinished {
        block: "b".into(),
        run: "r".into(),
        result,
    }
}

/// What the event loop does for one frame: a key, the finished jobs, a 120×40 frame.
fn frame(
    app: &mut App,
    terminal: &mut Terminal<TestBackend>,
    highlighter: &Highlighter,
) -> Duration {
    let started = Instant::now();
    app.on_key(key(KeyCode::Char('j')));
    app.apply_finished_jobs();
    terminal
        .draw(|frame| ui::draw(frame, app, highlighter))
        .expect("draws");
    started.elapsed()
}

/// Frames while a job runs, and the frames that took a result in.
#[derive(Default)]
struct Frames {
    during: Vec<Duration>,
    arrivals: Vec<Duration>,
}

/// Frames about every millisecond (more often than a screen redraws) until no job runs.
fn frames_until_done(
    app: &mut App,
    terminal: &mut Terminal<TestBackend>,
    highlighter: &Highlighter,
    frames: &mut Frames,
) {
    let mut arrived = false;
    while !arrived {
        let took = frame(app, terminal, highlighter);
        arrived = !app.jobs_running();
        if arrived {
            frames.arrivals.push(took);
        } else {
            frames.during.push(took);
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// The same number of frames with nothing in the background, for comparison.
fn idle_frames(
    app: &mut App,
    terminal: &mut Terminal<TestBackend>,
    highlighter: &Highlighter,
    count: usize,
) -> Vec<Duration> {
    (0..count)
        .map(|_| {
            let took = frame(app, terminal, highlighter);
            std::thread::sleep(Duration::from_millis(1));
            took
        })
        .collect()
}

fn listing_and_frames(c: &mut Criterion) {
    let dir = ten_thousand_files();
    let highlighter = Highlighter::new("base16-ocean.dark").expect("built-in theme");
    let mut app = with_workspace(dir.path());
    let mut terminal = Terminal::new(TestBackend::new(120, 40)).expect("terminal");
    let mut during = Frames::default();
    let mut group = c.benchmark_group("workspace of 10k files");
    group.sample_size(20);
    // A run ends: the pane lists the workspace again (in the background) and shows it.
    group.bench_function("listed again after a run (background)", |b| {
        b.iter(|| {
            app.on_event(&finished());
            frames_until_done(&mut app, &mut terminal, &highlighter, &mut during);
        });
    });
    group.finish();
    let idle = idle_frames(&mut app, &mut terminal, &highlighter, during.during.len());
    report("the workspace is listed", &mut during, idle);
    let mut group = c.benchmark_group("workspace of 10k files");
    for (label, open) in [
        ("frame 120x40, pane closed", false),
        ("frame 120x40, pane open", true),
    ] {
        let mut app = with_workspace(dir.path());
        if !open {
            app.on_key(key(KeyCode::Char('w')));
        }
        // Half way down the tree, as after some scrolling.
        for _ in 0..5000 {
            app.on_key(key(KeyCode::Char('j')));
        }
        group.bench_function(BenchmarkId::from_parameter(label), |b| {
            b.iter(|| {
                terminal
                    .draw(|frame| ui::draw(frame, &mut app, &highlighter))
                    .expect("draws")
                    .area
            });
        });
    }
    group.finish();
}

/// A 4000×4000 photo-like PNG (noise over gradients, so it does not compress to nothing).
fn big_png(path: &Path) {
    let mut seed = 0x2545_f491_u32;
    let image = image::RgbImage::from_fn(4000, 4000, |x, y| {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        let noise = (seed & 0x1f) as u8;
        image::Rgb([(x / 16) as u8 ^ noise, (y / 16) as u8, ((x + y) / 32) as u8])
    });
    image.save(path).expect("writes the PNG");
}

fn picture_preview(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    big_png(&dir.path().join("photo.png"));
    let highlighter = Highlighter::new("base16-ocean.dark").expect("built-in theme");
    let mut app = with_workspace(dir.path());
    let mut terminal = Terminal::new(TestBackend::new(120, 40)).expect("terminal");
    frame(&mut app, &mut terminal, &highlighter); // The pane's area is known from here on.
    let mut during = Frames::default();
    let mut group = c.benchmark_group("4000x4000 PNG");
    group.sample_size(10);
    group.bench_function("preview: read, decode, scale (background)", |b| {
        b.iter(|| {
            app.on_key(key(KeyCode::Esc));
            app.on_key(key(KeyCode::Enter));
            frames_until_done(&mut app, &mut terminal, &highlighter, &mut during);
        });
    });
    group.finish();
    let idle = idle_frames(&mut app, &mut terminal, &highlighter, during.during.len());
    report("the picture loads", &mut during, idle);
}

/// Median, 99th percentile and worst of what the loop spent per frame while `what`, next
/// to the same with nothing in the background.
fn report(what: &str, frames: &mut Frames, mut idle: Vec<Duration>) {
    let micros = |d: Duration| d.as_secs_f64() * 1e6;
    let stats = |times: &mut [Duration]| {
        times.sort();
        let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
        let over = times.iter().filter(|t| **t > BUDGET).count();
        format!(
            "median {:.0} µs, p99 {:.0} µs, worst {:.0} µs, {over} over {} ms",
            micros(at(0.5)),
            micros(at(0.99)),
            micros(at(1.0)),
            BUDGET.as_millis()
        )
    };
    if frames.during.is_empty() || frames.arrivals.is_empty() {
        return;
    }
    println!(
        "event loop per frame (key + jobs + 120x40 frame), {} frames while {what}: {}; \
         as many with nothing in the background: {}; the {} frames that took the result in: {}",
        frames.during.len(),
        stats(&mut frames.during),
        stats(&mut idle),
        frames.arrivals.len(),
        stats(&mut frames.arrivals),
    );
}

/// A text file past the preview's limit: its first MiB read, highlighted and laid out.
fn text_preview(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let line = "def step(values, n=3):\n    return [v * n for v in values if v % 2]  # odd\n";
    std::fs::write(dir.path().join("long.py"), line.repeat(20_000)).expect("writes");
    let highlighter = Highlighter::new("base16-ocean.dark").expect("built-in theme");
    let mut app = with_workspace(dir.path());
    app.highlight_previews(&highlighter);
    let mut terminal = Terminal::new(TestBackend::new(120, 40)).expect("terminal");
    terminal
        .draw(|frame| ui::draw(frame, &mut app, &highlighter))
        .expect("draws");
    let mut group = c.benchmark_group("1.5 MiB Python file");
    group.sample_size(10);
    group.bench_function("preview: first MiB highlighted (background)", |b| {
        b.iter(|| {
            app.on_key(key(KeyCode::Esc));
            app.on_key(key(KeyCode::Enter));
            settle(&mut app, |_| std::thread::sleep(Duration::from_millis(1)));
        });
    });
    group.bench_function("frame 120x40 with it shown", |b| {
        b.iter(|| {
            app.on_key(key(KeyCode::PageDown));
            terminal
                .draw(|frame| ui::draw(frame, &mut app, &highlighter))
                .expect("draws")
                .area
        });
    });
    group.finish();
}

criterion_group!(benches, listing_and_frames, picture_preview, text_preview);
criterion_main!(benches);
