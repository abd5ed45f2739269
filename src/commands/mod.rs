//! One module per subcommand. Each is a thin frontend over the engine and the adapters.

pub(crate) mod doctor;
mod doctor_containment;
mod doctor_gvisor;
mod doctor_report;
pub(crate) mod exec;
pub(crate) mod extract;
pub(crate) mod history;
pub(crate) mod image;
pub(crate) mod run;

use std::path::Path;
use std::sync::Arc;

use crate::sandbox::Notices;

/// Reads FILE, or standard input for `-` or no file, as UTF-8 text.
pub(crate) fn read_input(file: Option<&Path>) -> anyhow::Result<String> {
    use std::io::Read;
    let (bytes, name) = match file {
        Some(path) if path != Path::new("-") => (
            std::fs::read(path).map_err(|err| {
                crate::error::usage(format!("cannot read {}: {err}", path.display()))
            })?,
            path.display().to_string(),
        ),
        _ => {
            let mut bytes = Vec::new();
            std::io::stdin().read_to_end(&mut bytes)?;
            (bytes, "standard input".to_string())
        }
    };
    String::from_utf8(bytes)
        .map_err(|err| crate::error::usage(format!("{name} is not UTF-8 text: {err}")))
}

/// Notices printed to stderr, so stdout stays the command's own output.
pub fn stderr_notices() -> Notices {
    Arc::new(|message: String| eprintln!("{}", said(&message)))
}

/// `airlock: MESSAGE`, for standard error: drawn harmless, and each further line of a
/// message indented, so nothing in it (a file name, a program's text) can start a line that
/// passes for one of airlock's own.
pub(crate) fn said(message: &str) -> String {
    let text = crate::output::sanitize::for_person(message)
        .replace("\r\n", "\n")
        .replace('\r', "\n")
        .replace('\n', "\n  ");
    format!("airlock: {text}")
}

/// Progress of an image pull or build, on stderr, with the time it has taken so far.
pub fn stderr_progress() -> Notices {
    let started = std::time::Instant::now();
    Arc::new(move |message: String| eprintln!("{}", progress_line(started, &message)))
}

/// `airlock: [ 12 s] building …`: one line of progress, neutralized.
pub(crate) fn progress_line(started: std::time::Instant, message: &str) -> String {
    format!(
        "airlock: [{:>3} s] {}",
        started.elapsed().as_secs(),
        crate::output::sanitize::for_person(message)
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_message_cannot_start_a_line_of_airlocks_own() {
        let said = super::said("kept a\nairlock: forged\r\nairlock: too\rairlock: again \u{1b}[2J");
        let lines: Vec<&str> = said.lines().collect();
        assert_eq!(lines[0], "airlock: kept a");
        assert!(
            lines[1..]
                .iter()
                .all(|line| line.starts_with("  airlock: ")),
            "{lines:?}"
        );
        assert!(!said.contains('\r') && !said.contains('\u{1b}'), "{said:?}");
    }
}
