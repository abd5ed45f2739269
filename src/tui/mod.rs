//! The full-screen frontend: ratatui + crossterm on the alternate screen, one tokio loop
//! over key presses, engine events and signals. It talks to the engine only through `Op`s
//! and `Event`s; the panes only read [`app::App`].

pub mod app;
mod external;
pub(crate) mod fatal;
mod handover;
mod jobs;
pub(crate) mod keys;
pub(crate) mod overlays;
pub(crate) mod panes;
pub mod render;
pub(crate) mod runner;
pub mod screen_guard;
pub(crate) mod status;
#[cfg(test)]
mod testing;
pub(crate) mod theme;
pub mod ui;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crossterm::event::{
    DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture,
    Event as Input, EventStream, KeyEventKind,
};
use crossterm::execute;
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use futures_util::StreamExt;
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use tokio::sync::mpsc;

use crate::config::Config;
use crate::protocol::{Event, Op, Submission};
use crate::wiring::choose_model;
use app::{App, UiAction};
use keys::keymap::Keymap;
use render::highlight::Highlighter;
use theme::Theme;

/// The bundled demo: its script, and the task it answers.
pub const DEMO_SCRIPT: &str = include_str!("../../assets/demo.toml");
const DEMO_TASK: &str = "Make a small sample text in the workspace and find its five most common words; save them as a JSON report and draw them as a bar chart.";

pub struct Options {
    /// `--demo`: the bundled scripted model.
    pub demo: bool,
    pub scripted: Option<PathBuf>,
    /// `airlock resume`: continue this session's conversation.
    pub resume: Option<String>,
}

type Screen = Terminal<CrosstermBackend<std::io::Stdout>>;

pub async fn run(config: &Config, options: Options) -> anyhow::Result<ExitCode> {
    // Everything that can fail is checked before the terminal changes.
    let theme = Theme::load_for_terminal(&config.ui.theme)?;
    let highlighter = Highlighter::new(config.ui.syntax_theme.as_deref().unwrap_or(&theme.syntax))?;
    let keymap = Keymap::new(&config.ui.keys)?;
    let (model, model_name) = if options.demo {
        crate::wiring::demo_model(DEMO_SCRIPT)?
    } else {
        choose_model(config, options.scripted.as_deref())?
    };
    let mut interrupts = crate::wiring::Interrupts::listen()?;
    let first = options.demo.then(|| DEMO_TASK.to_string());
    let launch = crate::wiring::Launch {
        model,
        model_name: model_name.clone(),
        prompt: first.clone(),
        end_when_idle: false,
        resume: options.resume.clone(),
        past_runs: true,
    };
    let mut running = crate::wiring::start(config, launch).await?;

    let mut app = App::new(
        theme,
        keymap,
        model_name,
        config.ui.log_lines,
        config.ui.bell,
    );
    if first.is_some() {
        app.prompt_sent();
    }
    let earlier = std::mem::replace(&mut running.earlier.runs, Ok(Vec::new()));
    app.load_conversation(&running.earlier.messages);
    show_earlier_runs(&mut app, earlier, running.history_problem.as_deref());
    // Started before the terminal changes: whatever ends airlock, the terminal is put back.
    let guard = screen_guard::ScreenGuard::start()
        .map_err(|why| tracing::warn!("the terminal has no screen guard: {why}"))
        .ok();
    let mut screen = match enter_screen() {
        Ok(screen) => screen,
        Err(err) => {
            if let Some(guard) = guard {
                guard.dismiss();
            }
            return Err(err);
        }
    };
    // Asked once, in raw mode and before keys are read, as the terminal's answer comes on
    // the same input.
    app.set_graphics(&render::picture::Graphics::detect());
    app.highlight_previews(&highlighter);
    let outcome = event_loop(
        &mut screen,
        &mut app,
        &highlighter,
        &mut running.events,
        &running.ops,
        &mut interrupts,
    )
    .await;
    leave_screen(&mut screen);
    if let Some(guard) = guard {
        guard.dismiss();
    }
    let _ = running.ops.send(Op::Shutdown.into());
    // The engine removes its container on the way out; give it a moment, then make sure.
    let _ = tokio::time::timeout(Duration::from_secs(15), &mut running.engine).await;
    running.remove_leftovers().await;
    outcome?;
    if let Some(why) = &app.fatal {
        // The same reason the screen showed, now where it stays after the screen is gone.
        // Through `said`: the reason may quote a server's or a program's text, whose line
        // breaks must not start lines of airlock's own.
        eprintln!("{}", crate::commands::said(why));
        return Ok(ExitCode::from(crate::error::EXIT_UNAVAILABLE));
    }
    Ok(ExitCode::SUCCESS)
}

/// The history pane's earlier runs, or why there are none to show.
fn show_earlier_runs(
    app: &mut App,
    earlier: Result<Vec<app::RunRecord>, String>,
    history_problem: Option<&str>,
) {
    let problem = match (history_problem, earlier) {
        (Some(problem), _) => problem.to_string(),
        (None, Ok(runs)) => {
            return app.load_past_runs(runs);
        }
        (None, Err(why)) => format!("earlier runs cannot be shown: {why}"),
    };
    app.on_event(&Event::Notice { message: problem });
}

async fn event_loop(
    screen: &mut Screen,
    app: &mut App,
    highlighter: &Highlighter,
    events: &mut crate::engine::Subscriber,
    ops: &mpsc::UnboundedSender<Submission>,
    interrupts: &mut crate::wiring::Interrupts,
) -> anyhow::Result<()> {
    let mut input = EventStream::new();
    let mut redraw = tokio::time::interval(Duration::from_millis(50));
    let mut dirty = true;
    let mut engine_running = true;
    let (_, idle_jobs) = jobs::Jobs::new();
    let mut job_results = app.take_job_results().unwrap_or(idle_jobs);
    loop {
        if dirty {
            screen.draw(|frame| ui::draw(frame, app, highlighter))?;
            app.after_frame();
            dirty = false;
        }
        let actions = tokio::select! {
            input_event = input.next() => match input_event {
                Some(Ok(Input::Key(key))) if key.kind != KeyEventKind::Release => app.on_key(key),
                Some(Ok(Input::Paste(text))) => { app.on_paste(&text); Vec::new() }
                Some(Ok(Input::Mouse(mouse))) => { app.on_mouse(mouse); Vec::new() }
                Some(Ok(_)) => Vec::new(),
                Some(Err(err)) => return Err(anyhow::anyhow!("cannot read the terminal: {err}")),
                None => return Ok(()),
            },
            event = events.recv(), if engine_running => match event {
                Some(event) => {
                    let mut actions = app.on_event(&event);
                    // Drain what is queued, so a flood costs one frame, not one per chunk.
                    while let Some(event) = events.try_recv() {
                        actions.extend(app.on_event(&event));
                    }
                    actions
                }
                None => {
                    // The screen stays, with the reason, until the operator quits.
                    engine_running = false;
                    app.engine_gone();
                    Vec::new()
                }
            },
            Some(done) = job_results.recv() => {
                app.on_job(done);
                Vec::new()
            }
            () = interrupts.next() => return Ok(()),
            _ = redraw.tick(), if !dirty => Vec::new(),
        };
        dirty = true;
        for action in actions {
            match action {
                UiAction::Op(op) => {
                    let _ = ops.send(op.into());
                }
                UiAction::Submit(submission) => {
                    let _ = ops.send(submission);
                }
                UiAction::Bell => {
                    let _ = std::io::stdout()
                        .write_all(b"\x07")
                        .and_then(|()| std::io::stdout().flush());
                }
                UiAction::Quit => return Ok(()),
                UiAction::Page { root, path } => {
                    drop(input);
                    let paged = external::page(screen, &root, &path).await;
                    input = EventStream::new();
                    app.status = paged.err();
                }
                UiAction::OpenExternally(path) => {
                    app.status = Some(external::open_detached(&path));
                }
                UiAction::EditExternally {
                    block,
                    extension,
                    code,
                } => {
                    drop(input);
                    let edited = edit_externally(screen, &extension, &code).await;
                    input = EventStream::new();
                    for action in app.external_edit_done(&block, edited) {
                        if let UiAction::Op(op) = action {
                            let _ = ops.send(op.into());
                        }
                    }
                }
            }
        }
    }
}

/// Raw mode on the alternate screen, with bracketed paste and the mouse; a panic restores
/// the terminal before its message is printed.
fn enter_screen() -> anyhow::Result<Screen> {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore_terminal();
        previous(info);
    }));
    enable_raw_mode()
        .map_err(|err| anyhow::anyhow!("cannot switch the terminal to raw mode: {err}"))?;
    let mut stdout = std::io::stdout();
    if let Err(err) = execute!(
        stdout,
        EnterAlternateScreen,
        EnableBracketedPaste,
        EnableMouseCapture
    ) {
        restore_terminal();
        anyhow::bail!("cannot set up the terminal: {err}");
    }
    Terminal::new(CrosstermBackend::new(stdout)).map_err(|err| {
        restore_terminal();
        anyhow::anyhow!("cannot set up the terminal: {err}")
    })
}

fn restore_terminal() {
    let _ = disable_raw_mode();
    let _ = execute!(
        std::io::stdout(),
        DisableMouseCapture,
        DisableBracketedPaste,
        LeaveAlternateScreen,
        crossterm::cursor::Show
    );
}

fn leave_screen(screen: &mut Screen) {
    restore_terminal();
    let _ = screen.show_cursor();
}

/// Suspends the screen, runs $VISUAL or $EDITOR (else vi) on a copy of the code, and comes
/// back. `None` when the editor could not run or failed.
async fn edit_externally(screen: &mut Screen, extension: &str, code: &str) -> Option<String> {
    let dir = tempfile::Builder::new()
        .prefix("airlock-edit")
        .tempdir()
        .ok()?;
    let path = dir.path().join(format!("block.{extension}"));
    std::fs::write(&path, code).ok()?;
    let editor = std::env::var("VISUAL")
        .or_else(|_| std::env::var("EDITOR"))
        .unwrap_or_default();
    let (_, mut command) = command_line(&editor, "vi");
    command.arg(&path);
    let status = suspended(screen, command).await;
    match status {
        Ok(status) if status.success() => std::fs::read_to_string(&path).ok(),
        _ => None,
    }
}

/// The program a setting like $EDITOR or $PAGER names, with the arguments it gives, split
/// on whitespace (never through a shell); `fallback` when it names none. With the program's
/// name, for messages.
fn command_line(setting: &str, fallback: &str) -> (String, tokio::process::Command) {
    let mut words = setting.split_whitespace();
    let program = words.next().unwrap_or(fallback).to_string();
    let mut command = tokio::process::Command::new(&program);
    command.args(words);
    (program, command)
}

/// Leaves the screen, runs `command` on the terminal until it ends, and comes back.
async fn suspended(
    screen: &mut Screen,
    mut command: tokio::process::Command,
) -> std::io::Result<std::process::ExitStatus> {
    leave_screen(screen);
    let status = command.status().await;
    let _ = enable_raw_mode();
    let _ = execute!(
        std::io::stdout(),
        EnterAlternateScreen,
        EnableBracketedPaste,
        EnableMouseCapture,
        crossterm::terminal::Clear(crossterm::terminal::ClearType::All)
    );
    // A new terminal has empty buffers, so the next frame is drawn whole. (`clear` asks the
    // terminal for the cursor position, and that answer can get lost here.)
    if let Ok(fresh) = Terminal::new(CrosstermBackend::new(std::io::stdout())) {
        *screen = fresh;
    }
    status
}
