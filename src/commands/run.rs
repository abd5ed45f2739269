//! `airlock run --prompt TEXT [--approve ask|all|none] [--max-turns N] [--json]
//! [--resume SESSION]`: the session loop without a screen. Decisions come from standard input
//! (see [`input`]): JSON lines (`{"block": ID, "decision": …}`), or, at a terminal, short
//! answers (`y`, `n REASON`, …). With `--json` the output is the protocol's events, one per
//! line.

mod input;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use tokio::sync::mpsc;

use crate::config::{ApproveMode, Config};
use crate::error::{EXIT_UNAVAILABLE, usage};
use crate::output::sanitize::{code_for_person, for_person, neutralize};
use crate::protocol::{Event, Op, Stream, Submission, wire_name};
use crate::view::SessionView;
use input::{decision_from_line, stdin_lines};

pub struct Options {
    pub prompt: String,
    pub approve: Option<ApproveMode>,
    pub max_turns: Option<u32>,
    pub json: bool,
    pub scripted: Option<PathBuf>,
    /// The recorded session to continue.
    pub resume: Option<String>,
}

pub async fn run(config: &Config, options: &Options) -> anyhow::Result<ExitCode> {
    let config = with_options(config, options)?;
    let (model, model_name) = crate::wiring::choose_model(&config, options.scripted.as_deref())?;
    if config.approval.mode == ApproveMode::All {
        eprintln!(
            "airlock: WARNING: --approve all: every block that no deny rule forbids runs WITHOUT \
             review (in the sandbox). Use it only for code you would run anyway."
        );
    }
    let mut interrupts = crate::wiring::Interrupts::listen()?;
    let mut lines = stdin_lines()?;
    let launch = crate::wiring::Launch {
        model,
        model_name,
        prompt: Some(options.prompt.clone()),
        end_when_idle: true,
        resume: options.resume.clone(),
        past_runs: false,
    };
    let mut running = crate::wiring::start(&config, launch).await?;
    if let Some(problem) = &running.history_problem {
        eprintln!("{}", super::said(problem));
    }
    let left_at_once = follow(&mut running, &mut lines, &mut interrupts, options.json).await;
    let ended = if left_at_once {
        None
    } else {
        (&mut running.engine).await.ok()
    };
    running.remove_leftovers().await;
    Ok(match ended {
        Some(ended) if ended.sandbox_failed => ExitCode::from(EXIT_UNAVAILABLE),
        Some(ended) if ended.reason.is_success() => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    })
}

/// The configuration with the command line's overrides, checked, and the prompt too.
fn with_options(config: &Config, options: &Options) -> anyhow::Result<Config> {
    let mut config = config.clone();
    if let Some(mode) = options.approve {
        config.approval.mode = mode;
    }
    if let Some(max_turns) = options.max_turns {
        config.model.max_turns = max_turns;
    }
    config.validate().map_err(|err| usage(err.to_string()))?;
    if options.prompt.trim().is_empty() {
        return Err(usage("--prompt is empty: say what the model should do"));
    }
    Ok(config)
}

/// Prints the session's events and passes on decisions and interrupts until the session
/// ends. Returns whether a second interrupt asked to leave at once, without waiting for it.
async fn follow(
    running: &mut crate::wiring::Running,
    lines: &mut mpsc::UnboundedReceiver<String>,
    interrupts: &mut crate::wiring::Interrupts,
    json: bool,
) -> bool {
    let (event_rx, op_tx) = (&mut running.events, running.ops.clone());
    let interactive = std::io::stdin().is_terminal();
    let mut printer = Printer::new(json);
    let mut view = SessionView::default();
    let mut ctrl_c = CtrlC::default();
    let mut stdin_open = true;
    // Decisions are read once the session has started, so `session_started` is always the
    // first event, even before an error about a bad line.
    let mut started = false;
    loop {
        tokio::select! {
            event = event_rx.recv() => {
                let Some(event) = event else { break };
                view.apply(&event);
                started |= matches!(event, Event::SessionStarted { .. });
                let done = matches!(event, Event::Done { .. });
                printer.print(&event, interactive);
                if done {
                    break;
                }
            }
            line = lines.recv(), if stdin_open && started => match line {
                Some(line) => match decision_from_line(&line, interactive, view.undecided().next()) {
                    Ok(Some(submission)) => { let _ = op_tx.send(submission); }
                    Ok(None) => {}
                    Err(refused) => printer.print(&refused.event(), interactive),
                },
                None => {
                    stdin_open = false;
                    let _ = op_tx.send(Op::NoSupervisor.into());
                }
            },
            () = interrupts.next() => {
                if ctrl_c.interrupted(&view, &op_tx) {
                    return true;
                }
            }
        }
    }
    false
}

/// What Ctrl-C has asked so far: the first stops a running block and the session goes on;
/// otherwise it ends the session, and one more leaves at once.
#[derive(Default)]
struct CtrlC {
    /// The run a Ctrl-C already asked to stop: the next Ctrl-C ends the session.
    stopping: Option<String>,
    shutting_down: bool,
}

impl CtrlC {
    /// Passes an interrupt on; returns whether to leave at once.
    fn interrupted(&mut self, view: &SessionView, ops: &mpsc::UnboundedSender<Submission>) -> bool {
        if self.shutting_down {
            eprintln!("airlock: interrupted again; leaving now");
            return true;
        }
        let running = view
            .running
            .clone()
            .filter(|block| self.stopping.as_ref() != Some(block));
        if running.is_some() {
            eprintln!(
                "airlock: stopping the running block; the session goes on (Ctrl-C again to end it)"
            );
            self.stopping = running;
            let _ = ops.send(Op::Cancel.into());
        } else {
            eprintln!("airlock: interrupted; ending the session (Ctrl-C again to leave at once)");
            self.shutting_down = true;
            let _ = ops.send(Op::Shutdown.into());
        }
        false
    }
}

/// Writes events: JSON lines, or a readable transcript with every piece of model text and
/// program output neutralized.
struct Printer {
    json: bool,
    /// The assistant's reply is being streamed and has not ended with a newline.
    mid_line: bool,
    /// When the sandbox's preparation began to report progress.
    preparing_since: Option<std::time::Instant>,
}

impl Printer {
    fn new(json: bool) -> Self {
        Self {
            json,
            mid_line: false,
            preparing_since: None,
        }
    }

    fn print(&mut self, event: &Event, interactive: bool) {
        // Program output arrives with SGR colours for the TUI; nobody else gets them.
        let plain;
        let event = match event {
            Event::ExecOutput {
                block,
                run,
                stream,
                data,
            } if data.contains('\u{1b}') => {
                plain = Event::ExecOutput {
                    block: block.clone(),
                    run: run.clone(),
                    stream: *stream,
                    data: neutralize(data),
                };
                &plain
            }
            _ => event,
        };
        if let Event::SandboxProgress { message } = event {
            // Progress is for the person waiting, in both modes.
            let since = *self
                .preparing_since
                .get_or_insert_with(std::time::Instant::now);
            self.end_line();
            eprintln!("{}", super::progress_line(since, message));
        }
        if self.json {
            if let Ok(line) = serde_json::to_string(event) {
                let mut stdout = std::io::stdout().lock();
                let _ = writeln!(stdout, "{line}").and_then(|()| stdout.flush());
            }
            return;
        }
        let text = self.describe(event, interactive);
        if text.is_empty() {
            return;
        }
        let to_stderr = matches!(
            event,
            Event::Error { .. }
                | Event::Notice { .. }
                | Event::ModelRetry { .. }
                | Event::SandboxReady { .. }
        );
        if to_stderr {
            self.end_line();
            eprintln!("{text}");
        } else {
            let mut stdout = std::io::stdout().lock();
            let _ = write!(stdout, "{text}").and_then(|()| stdout.flush());
        }
    }

    fn end_line(&mut self) {
        if self.mid_line {
            println!();
            self.mid_line = false;
        }
    }

    fn describe(&mut self, event: &Event, interactive: bool) -> String {
        if let Event::AssistantDelta { text } = event {
            let text = for_person(text);
            self.mid_line = !text.ends_with('\n');
            return text;
        }
        if let Some(line) = status_line(event) {
            return line;
        }
        let prefix = if self.mid_line { "\n" } else { "" };
        self.mid_line = false;
        if let Event::ExecOutput { stream, data, .. } = event {
            return format!("{prefix}{}", program_output(*stream, data));
        }
        let body = transcript_entry(event, interactive);
        if body.is_empty() {
            body
        } else {
            format!("{prefix}{body}")
        }
    }
}

/// The events that are said on standard error, apart from the transcript.
fn status_line(event: &Event) -> Option<String> {
    let line = match event {
        Event::Error { message, .. } => super::said(&format!("error: {message}")),
        Event::Notice { message } => super::said(message),
        Event::SandboxReady {
            description,
            workspace,
        } => match workspace {
            Some(path) => format!(
                "{}\n{}",
                super::said(&format!("sandbox: {description}")),
                super::said(&format!(
                    "workspace: {}",
                    crate::files::display_name(std::ffi::OsStr::new(path))
                ))
            ),
            None => super::said(&format!("sandbox: {description}")),
        },
        Event::ModelRetry {
            attempt,
            max_attempts,
            delay_ms,
            reason,
        } => super::said(&format!(
            "{reason}; retrying in {:.1} s (attempt {} of {max_attempts})",
            *delay_ms as f64 / 1000.0,
            attempt + 1
        )),
        _ => return None,
    };
    Some(line)
}

/// A program's output for a person: invisible characters shown; stderr marked so it stands
/// out.
fn program_output(stream: Stream, data: &str) -> String {
    let data = for_person(data);
    match stream {
        Stream::Stdout => data,
        Stream::Stderr => data.lines().map(|l| format!("! {l}\n")).collect(),
    }
}

/// The transcript's lines for an event; empty for those it does not show.
fn transcript_entry(event: &Event, interactive: bool) -> String {
    match event {
        Event::SessionStarted { session, resumed } => {
            let continued = if *resumed { ", continued" } else { "" };
            format!("── session {session}{continued} ──\n")
        }
        Event::AssistantMessage { usage, .. } => match usage {
            Some(usage) => format!("\n· tokens: {}\n", usage.describe()),
            None => "\n".into(),
        },
        Event::BlockProposed {
            block,
            index,
            language,
            code,
            ..
        } => block_card(block, *index, language, code, interactive),
        Event::Decision {
            block,
            decision,
            reason,
            source,
            ..
        } => {
            let name = wire_name(&decision);
            let source = wire_name(&source);
            let reason = reason
                .as_deref()
                .map(|r| format!(": {}", for_person(r)))
                .unwrap_or_default();
            format!("→ {block}: {name} ({source}){reason}\n")
        }
        Event::ExecStarted { block, run } => format!("▶ running {block} ({run})\n"),
        Event::ExecFinished { result, .. } => {
            let status = result.outcome().phrase();
            let truncated = if result.truncated {
                " · output truncated"
            } else {
                ""
            };
            let mut text = format!("■ {status} · {} ms{truncated}\n", result.duration_ms);
            for file in &result.files {
                text.push_str(&format!("  {}\n", for_person(&file.describe_drawn())));
            }
            text
        }
        Event::Reflection { .. } => "── results sent to the model ──\n".into(),
        Event::UserMessage { text, .. } => {
            format!("> {}\n", for_person(text).replace('\n', "\n> "))
        }
        Event::Idle { .. } => String::new(),
        Event::Done { reason } => {
            let name = wire_name(&reason);
            format!("── session ended: {name} ──\n")
        }
        _ => String::new(),
    }
}

/// A proposed block with numbered lines, and at a terminal the answers it takes.
fn block_card(block: &str, index: usize, language: &str, code: &str, interactive: bool) -> String {
    let mut card = format!("── block {} · {language} · {block} ──\n", index + 1);
    for (number, line) in code.lines().enumerate() {
        card.push_str(&format!("{:>4} │ {}\n", number + 1, code_for_person(line)));
    }
    if interactive {
        card.push_str(
            "decide: y approve · a [exact] approve for session · s skip · n REASON reject · q abort\n",
        );
    }
    card
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_carriage_return_cannot_draw_over_the_code_on_a_card() {
        let card = block_card(
            "b-1",
            0,
            "python",
            "import os\ros.system('rm -rf ~')\r# tidy up\n",
            true,
        );
        assert!(!card.contains('\r'), "{card:?}");
        assert!(
            card.contains("   1 │ import os␍os.system('rm -rf ~')␍# tidy up\n"),
            "{card}"
        );
    }
}
