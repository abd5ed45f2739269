//! Shell completions and the manual page, generated from the command-line definition, as
//! the real binary prints them; the bash script is loaded into a real bash and asked to
//! complete.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Output};

use clap::CommandFactory;
use common::Home;

/// Every command name, nested ones included, as the definition has them.
fn every_command_name() -> Vec<String> {
    fn collect(command: &clap::Command, names: &mut Vec<String>) {
        for sub in command.get_subcommands() {
            names.push(sub.get_name().to_string());
            collect(sub, names);
        }
    }
    let mut names = Vec::new();
    collect(&airlock::cli::Cli::command(), &mut names);
    names
}

fn airlock(home: &Home, args: &[&str]) -> Output {
    let output = home.airlock().args(args).output().expect("airlock runs");
    assert!(
        output.status.success(),
        "airlock {args:?}: {}",
        common::stderr(&output)
    );
    output
}

/// What the bash completion script offers for `words`, the last one being completed.
fn bash_completes(script: &std::path::Path, words: &[&str]) -> Vec<String> {
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let current = words.last().unwrap();
    let previous = words[words.len() - 2];
    let program = format!(
        "source '{script}'; COMP_WORDS=({words}); COMP_CWORD={cword}; \
         _airlock airlock '{current}' '{previous}'; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script = script.display(),
        words = quoted.join(" "),
        cword = words.len() - 1,
    );
    let output = Command::new("bash")
        .args(["--norc", "--noprofile", "-c", &program])
        .output()
        .expect("bash runs");
    assert!(output.status.success(), "{}", common::stderr(&output));
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn the_bash_completion_is_valid_bash_and_completes_commands_and_options() {
    let home = Home::new();
    let script = home.dir.path().join("airlock.bash");
    std::fs::write(&script, airlock(&home, &["completions", "bash"]).stdout).unwrap();
    let check = Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "bash -n: {}",
        common::stderr(&check)
    );

    let text = std::fs::read_to_string(&script).unwrap();
    for name in every_command_name() {
        assert!(
            text.contains(&name),
            "{name} missing from the bash completion"
        );
    }
    let top = bash_completes(&script, &["airlock", ""]);
    for name in [
        "run",
        "exec",
        "extract",
        "history",
        "image",
        "completions",
        "man",
    ] {
        assert!(top.iter().any(|word| word == name), "{name} in {top:?}");
    }
    assert_eq!(
        bash_completes(&script, &["airlock", "run", "--ap"]),
        ["--approve"]
    );
    assert_eq!(
        bash_completes(&script, &["airlock", "run", "--approve", ""]),
        ["ask", "all", "none"]
    );
    let history = bash_completes(&script, &["airlock", "history", ""]);
    for name in ["list", "show", "export", "prune", "-c"] {
        assert!(
            history.iter().any(|word| word == name),
            "{name} in {history:?}"
        );
    }
}

#[test]
fn every_shell_gets_a_completion_script_and_an_unknown_shell_is_refused() {
    let home = Home::new();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let script = String::from_utf8(airlock(&home, &["completions", shell]).stdout).unwrap();
        assert!(
            // fish spells options without their dashes (`-l approve`).
            script.contains("airlock") && script.contains("approve"),
            "{shell}:\n{script}"
        );
    }
    let output = home
        .airlock()
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = common::stderr(&output);
    assert!(
        stderr.contains("tcsh") && stderr.contains("bash"),
        "{stderr}"
    );
}

#[test]
fn the_man_page_is_roff_and_lists_every_subcommand() {
    let home = Home::new();
    let page = String::from_utf8(airlock(&home, &["man"]).stdout).unwrap();
    let title = page
        .lines()
        .find(|line| line.starts_with(".TH "))
        .unwrap_or_else(|| panic!("no .TH line:\n{page}"));
    assert!(title.starts_with(".TH airlock 1"), "{title}");
    assert!(page.contains(".SH SUBCOMMANDS"), "{page}");
    for name in [
        "extract", "exec", "doctor", "resume", "history", "run", "image",
    ] {
        assert!(
            page.contains(&format!("airlock\\-{name}(1)")),
            "{name} missing:\n{page}"
        );
    }
    assert!(
        !page.contains("airlock\\-help(1)"),
        "no page for clap's help"
    );
}

#[test]
fn man_dir_writes_one_page_per_command() {
    let home = Home::new();
    let dir = home.dir.path().join("man1");
    std::fs::create_dir(&dir).unwrap();
    airlock(&home, &["man", "--dir", dir.to_str().unwrap()]);
    for page in [
        "airlock.1",
        "airlock-run.1",
        "airlock-history-list.1",
        "airlock-image-build.1",
    ] {
        let text =
            std::fs::read_to_string(dir.join(page)).unwrap_or_else(|err| panic!("{page}: {err}"));
        assert!(text.contains(".TH "), "{page} is roff");
    }
    let run = std::fs::read_to_string(dir.join("airlock-run.1")).unwrap();
    assert!(run.contains("\\-\\-approve"), "{run}");

    let missing = home.dir.path().join("absent");
    let output = home
        .airlock()
        .args(["man", "--dir", missing.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = common::stderr(&output);
    assert!(
        stderr.contains("cannot write the manual pages") && stderr.contains("absent"),
        "{stderr}"
    );
}
