//! `airlock exec [--lang L] [--timeout SECS] [--json] [FILE|-]`: one block in a fresh
//! session container.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use crate::config::Config;
use crate::engine::{Language, LanguageTable};
use crate::error::{EXIT_INTERRUPTED, EXIT_TIMEOUT, EXIT_UNAVAILABLE, usage};
use crate::protocol::{ExecResult, Outcome, Stream};
use crate::sandbox::{self, BlockSpec, Leftovers, Sandbox};

pub struct Options {
    pub lang: Option<String>,
    pub json: bool,
    pub file: Option<PathBuf>,
}

pub async fn run(config: &Config, options: &Options) -> anyhow::Result<ExitCode> {
    let code = super::read_input(options.file.as_deref())?;
    let table = LanguageTable::new(&config.languages);
    let language = choose_language(
        &table,
        options.lang.as_deref(),
        options.file.as_deref(),
        &code,
    )?;

    let mut interrupts = crate::wiring::Interrupts::listen()?;
    let notices = super::stderr_notices();
    let request = crate::wiring::session_request(config, "s")?;
    let leftovers = Leftovers::default();
    let progress = super::stderr_progress();
    let mut sandbox = tokio::select! {
        started = sandbox::start(request, notices, progress, &leftovers) => started?,
        () = interrupts.next() => {
            leftovers.remove().await;
            eprintln!("airlock: interrupted while starting the sandbox; nothing ran");
            return Ok(ExitCode::from(EXIT_INTERRUPTED));
        }
    };
    let block = BlockSpec {
        language: &language,
        code: &code,
        timeout: Duration::from_secs(config.sandbox.timeout_secs),
        cancel: None,
    };
    let json = options.json;
    let mut live = |stream: Stream, text: &str| {
        if !json {
            write_live(stream, text);
        }
    };
    let outcome = tokio::select! {
        result = sandbox.run_block(block, &mut live) => Some(result),
        () = interrupts.next() => None,
    };
    sandbox.shutdown().await;
    let Some(result) = outcome else {
        eprintln!("airlock: interrupted; the block was stopped and its container removed");
        return Ok(ExitCode::from(EXIT_INTERRUPTED));
    };
    let result = result?;
    if json {
        println!("{}", serde_json::to_string(&result)?);
    } else {
        finish_live(&result);
    }
    Ok(exit_code(&result))
}

/// Live output, without the SGR colours the sandbox leaves in for the TUI.
fn write_live(stream: Stream, text: &str) {
    use std::io::IsTerminal;
    // At a terminal, a person reads it: invisible characters are shown; a pipe gets the text.
    let shown = match stream {
        Stream::Stdout => std::io::stdout().is_terminal(),
        Stream::Stderr => std::io::stderr().is_terminal(),
    };
    let text = if shown {
        crate::output::sanitize::for_person(text)
    } else {
        crate::output::sanitize::neutralize(text)
    };
    let text = text.as_str();
    // A closed pipe (`airlock exec x.py | head`) must not stop the run.
    let _ = match stream {
        Stream::Stdout => std::io::stdout()
            .lock()
            .write_all(text.as_bytes())
            .and_then(|()| std::io::stdout().flush()),
        Stream::Stderr => std::io::stderr().lock().write_all(text.as_bytes()),
    };
}

/// After a streamed run: the kept tail of a truncated output, and a status line.
fn finish_live(result: &ExecResult) {
    if let Some((_, tail)) = result
        .omission_at
        .and_then(|at| crate::output::split_at_omission(&result.output, at))
    {
        write_live(
            Stream::Stdout,
            &format!(
                "\n[... airlock: output truncated, {} bytes in all; the end follows ...]\n",
                result.output_bytes
            ),
        );
        write_live(Stream::Stdout, tail);
    }
    match result.outcome() {
        Outcome::TimedOut => {
            eprintln!("airlock: the block was stopped after reaching its time limit")
        }
        Outcome::OutOfMemory => {
            eprintln!("airlock: the block was killed for running out of memory")
        }
        _ => {}
    }
    if result.workspace_full {
        eprintln!(
            "airlock: /workspace is full (sandbox.workspace_limit, sandbox.workspace_inodes): \
             writes past the limit failed"
        );
    }
    if result.container_restarted {
        eprintln!("airlock: the container was restarted to remove the block's leftover processes");
    }
}

/// The block's exit code; 124 on timeout.
fn exit_code(result: &ExecResult) -> ExitCode {
    if result.outcome() == Outcome::TimedOut {
        return ExitCode::from(EXIT_TIMEOUT);
    }
    match result.exit_code {
        Some(code) => ExitCode::from(u8::try_from(code.clamp(0, 255)).unwrap_or(EXIT_UNAVAILABLE)),
        None => ExitCode::from(EXIT_UNAVAILABLE),
    }
}

/// `--lang`, else the shebang, else the file extension.
fn choose_language(
    table: &LanguageTable,
    lang: Option<&str>,
    file: Option<&Path>,
    code: &str,
) -> anyhow::Result<Language> {
    let known = table.names().join(", ");
    if let Some(lang) = lang {
        return table.resolve(lang).cloned().ok_or_else(|| {
            usage(format!(
                "unknown language `{lang}`: airlock runs {known}; add others under [languages] in the config"
            ))
        });
    }
    if let Some(language) = shebang_language(code).and_then(|tag| table.resolve(&tag)) {
        return Ok(language.clone());
    }
    let extension = file
        .filter(|path| *path != Path::new("-"))
        .and_then(|path| path.extension())
        .and_then(|ext| ext.to_str())
        .map(str::to_lowercase);
    if let Some(extension) = extension {
        let by_extension = table
            .names()
            .into_iter()
            .filter_map(|name| table.resolve(name))
            .find(|language| language.extension == extension);
        if let Some(language) = by_extension {
            return Ok(language.clone());
        }
    }
    Err(usage(format!(
        "cannot tell the language of {}: pass --lang ({known}), or start the code with a shebang",
        file.map_or("standard input".to_string(), |path| path
            .display()
            .to_string())
    )))
}

/// `#!/usr/bin/env python3` → python3, `#!/bin/bash -e` → bash.
fn shebang_language(code: &str) -> Option<String> {
    let line = code.lines().next()?.strip_prefix("#!")?;
    let mut words = line.split_whitespace();
    let program = words.next()?.rsplit('/').next()?;
    if program == "env" {
        return words
            .find(|word| !word.starts_with('-'))
            .map(str::to_string);
    }
    Some(program.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn choose(lang: Option<&str>, file: Option<&str>, code: &str) -> Result<String, String> {
        choose_language(&LanguageTable::default(), lang, file.map(Path::new), code)
            .map(|language| language.name)
            .map_err(|err| err.to_string())
    }

    #[test]
    fn language_from_flag_shebang_or_extension() {
        assert_eq!(choose(Some("py"), None, ""), Ok("python".into()));
        assert_eq!(
            choose(None, None, "#!/usr/bin/env -S python3 -u\nprint()"),
            Ok("python".into())
        );
        assert_eq!(
            choose(None, Some("x.txt"), "#!/bin/bash -e\n"),
            Ok("bash".into())
        );
        assert_eq!(choose(None, Some("job.PY"), "print()"), Ok("python".into()));
        assert_eq!(choose(None, Some("job.sh"), "echo"), Ok("bash".into()));
    }

    #[test]
    fn an_unknown_language_is_a_clear_error() {
        let err = choose(Some("cobol"), None, "").unwrap_err();
        assert!(
            err.contains("unknown language `cobol`") && err.contains("python, bash, sh"),
            "{err}"
        );
        let err = choose(None, Some("notes.txt"), "hello").unwrap_err();
        assert!(err.contains("--lang"), "{err}");
    }
}
