//! Documents generated from the command-line definition itself, so they never drift from
//! it: shell completion scripts (clap_complete) and the manual page (clap_mangen).

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use clap::CommandFactory;
use clap_complete::Shell;

use super::Cli;
use crate::error::usage;

/// `airlock completions SHELL`: the completion script for SHELL on stdout.
pub(crate) fn completions(shell: Shell) -> anyhow::Result<ExitCode> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "airlock", &mut script);
    print_all(&script)
}

/// `airlock man [--dir DIR]`: airlock(1) in roff on stdout, or every command's page in DIR.
pub(crate) fn man_pages(dir: Option<&Path>) -> anyhow::Result<ExitCode> {
    // `airlock help` is clap's; it gets no page, so airlock(1) does not point at one.
    let command = Cli::command().disable_help_subcommand(true);
    let Some(dir) = dir else {
        let mut page = Vec::new();
        clap_mangen::Man::new(command).render(&mut page)?;
        return print_all(&page);
    };
    clap_mangen::generate_to(command, dir).map_err(|err| {
        usage(format!(
            "cannot write the manual pages to {}: {err} (give an existing, writable directory)",
            dir.display()
        ))
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Written whole; a reader that stops early (`| head`) is not an error.
fn print_all(bytes: &[u8]) -> anyhow::Result<ExitCode> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(err) => Err(anyhow::anyhow!("cannot write to standard output: {err}")),
    }
}
