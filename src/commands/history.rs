//! `airlock history list|show|export`: the record of past sessions, decisions and runs.

use std::process::ExitCode;

use crate::clock::{local_date_time, local_zone_problem};
use crate::config::Config;
use crate::error::usage;
use crate::output::sanitize::{code_for_person, for_person};
use crate::protocol::DecisionKind;
use crate::store::{RunFilter, RunRow, Store, markdown};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Md,
    Json,
}

pub fn list(config: &Config, filter: &RunFilter, json: bool) -> anyhow::Result<ExitCode> {
    let runs = Store::open_configured(&config.history)?.list_runs(filter)?;
    if json {
        println!("{}", serde_json::to_string(&runs)?);
        return Ok(ExitCode::SUCCESS);
    }
    warn_about_the_zone();
    if runs.is_empty() {
        println!(
            "No runs recorded{}.",
            if filter.session.is_some() || filter.grep.is_some() {
                " match"
            } else {
                " yet"
            }
        );
    }
    for run in &runs {
        println!("{}", summary(run));
    }
    Ok(ExitCode::SUCCESS)
}

/// One line per run: when, which session and run, language, decision, outcome, first line.
fn summary(run: &RunRow) -> String {
    let decision = run.decision.map_or("", DecisionKind::name);
    let first = code_for_person(run.code.lines().next().unwrap_or(""));
    format!(
        "{}  {}  {}  {:<7} {:<16} {:<11} {:>7}  {first}",
        local_date_time(run.started_at as i64),
        run.session,
        run.run,
        run.language,
        format!("{decision}{}", if run.edited { "+edit" } else { "" }),
        run.state(),
        run.duration_ms
            .map_or(String::new(), |ms| format!("{ms}ms")),
    )
}

/// When `TZ` names no zone airlock can read, says so on stderr: times are then UTC.
fn warn_about_the_zone() {
    if let Some(problem) = local_zone_problem() {
        eprintln!("{}", super::said(problem));
    }
}

pub fn show(config: &Config, id: &str) -> anyhow::Result<ExitCode> {
    let store = Store::open_configured(&config.history)?;
    warn_about_the_zone();
    if let Some(run) = store.run(id)? {
        println!("{}", summary(&run));
        println!(
            "decided by {} · container {}",
            run.decided_by, run.container
        );
        println!(
            "--- code{} ---",
            if run.edited {
                " (edited by the operator)"
            } else {
                ""
            }
        );
        print!("{}", code_for_person(&run.code));
        println!(
            "--- output ({} bytes{}) ---",
            run.output_bytes,
            if run.truncated { ", truncated" } else { "" }
        );
        // Kept neutralized; drawn here as the live pane drew it, invisible characters shown.
        print!("{}", for_person(&run.output));
        print_files(&run);
        return Ok(ExitCode::SUCCESS);
    }
    if store.session_exists(id)? {
        print!("{}", for_person(&markdown(&store.export(id)?)));
        return Ok(ExitCode::SUCCESS);
    }
    Err(usage(format!(
        "no run or session `{id}` in the history; `airlock history list` shows the ids"
    )))
}

/// What the run did to the workspace, a line per file.
fn print_files(run: &RunRow) {
    if run.files.is_empty() && run.file_warnings.is_empty() {
        return;
    }
    println!("--- workspace files ({}) ---", run.files.len());
    for file in &run.files {
        println!("{}", for_person(&file.describe()));
    }
    for warning in &run.file_warnings {
        println!("⚠ {}", for_person(warning));
    }
}

pub fn prune(config: &Config) -> anyhow::Result<ExitCode> {
    let limits = &config.history;
    if limits.keep_days == 0 && limits.max_size.0 == 0 {
        println!("No limit is set (history.keep_days, history.max_size): nothing to prune.");
        return Ok(ExitCode::SUCCESS);
    }
    let pruned =
        Store::open_configured(&config.history)?.prune(limits.keep_days, limits.max_size.0)?;
    let workspaces = remove_workspaces(&pruned.own_workspaces)?;
    println!(
        "Removed {} session(s) and {workspaces} workspace(s); the history went from {} to {} bytes.",
        pruned.sessions, pruned.bytes_before, pruned.bytes_after
    );
    Ok(ExitCode::SUCCESS)
}

/// The pruned sessions' own workspaces under the data directory; one that cannot be removed
/// is reported and the rest still go. Returns how many were removed.
fn remove_workspaces(sessions: &[String]) -> anyhow::Result<usize> {
    let data_dir = crate::config::data_dir()?;
    let mut removed = 0;
    for session in sessions {
        match crate::sandbox::workspace::remove_session_workspace(&data_dir, session) {
            Ok(true) => removed += 1,
            Ok(false) => {}
            Err(why) => eprintln!("{}", super::said(&format!("{why}; remove it by hand"))),
        }
    }
    Ok(removed)
}

pub fn export(config: &Config, session: &str, format: Format) -> anyhow::Result<ExitCode> {
    let store = Store::open_configured(&config.history)?;
    if !store.session_exists(session)? {
        return Err(usage(format!(
            "no session `{session}` in the history; `airlock history list` shows the ids"
        )));
    }
    let export = store.export(session)?;
    if format == Format::Md {
        warn_about_the_zone();
    }
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&export)?),
        // A transcript is for people, on a terminal now or from a file later: escapes and
        // invisible characters never pass through it (`--format json` keeps the exact text).
        Format::Md => print!("{}", for_person(&markdown(&export))),
    }
    Ok(ExitCode::SUCCESS)
}
