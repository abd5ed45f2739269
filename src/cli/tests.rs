//! How the command line is parsed: global options at every level, merged in order.

use super::*;

fn parse(args: &[&str]) -> Cli {
    Cli::try_parse_from(std::iter::once("airlock").chain(args.iter().copied()))
        .unwrap_or_else(|err| panic!("{args:?} should parse: {err}"))
}

/// The merged options' config, read from an empty config file (not the user's).
fn config_of(cli: &Cli) -> Config {
    let file = tempfile::NamedTempFile::new().expect("temp config file");
    let mut global = GlobalArgs {
        config: Some(file.path().to_path_buf()),
        ..GlobalArgs::default()
    };
    global.append(&cli.global_options());
    global.load_config().expect("valid config")
}

#[test]
fn every_c_applies_in_order_before_and_after_the_subcommand() {
    let cli = parse(&[
        "-c",
        "approval.deny_patterns=[\"x\"]",
        "-c",
        "sandbox.timeout_secs=5",
        "run",
        "-c",
        "sandbox.timeout_secs=9",
        "--prompt",
        "p",
    ]);
    assert_eq!(
        cli.global_options().overrides,
        [
            "approval.deny_patterns=[\"x\"]",
            "sandbox.timeout_secs=5",
            "sandbox.timeout_secs=9"
        ]
    );
    let config = config_of(&cli);
    assert_eq!(config.approval.deny_patterns, ["x"]);
    assert_eq!(config.sandbox.timeout_secs, 9, "the later -c wins");
}

#[test]
fn a_later_c_before_the_subcommand_wins_over_an_earlier_one() {
    let cli = parse(&[
        "-c",
        "sandbox.timeout_secs=9",
        "-c",
        "sandbox.timeout_secs=5",
        "doctor",
    ]);
    assert_eq!(config_of(&cli).sandbox.timeout_secs, 5);
}

#[test]
fn nested_subcommands_merge_every_level_in_order() {
    let cli = parse(&[
        "-c",
        "history.keep_days=1",
        "--model",
        "top",
        "history",
        "-c",
        "history.keep_days=2",
        "-c",
        "ui.bell=false",
        "list",
        "-c",
        "history.keep_days=3",
        "--model",
        "innermost",
    ]);
    let global = cli.global_options();
    assert_eq!(
        global.overrides,
        [
            "history.keep_days=1",
            "history.keep_days=2",
            "ui.bell=false",
            "history.keep_days=3"
        ]
    );
    assert_eq!(global.model.as_deref(), Some("innermost"));
    let config = config_of(&cli);
    assert_eq!(config.history.keep_days, 3);
    assert!(!config.ui.bell, "the middle level's key applies too");
}

#[test]
fn a_flag_given_once_applies_at_any_level_and_a_later_one_wins() {
    let before = parse(&["--base-url", "http://before/v1", "run", "--prompt", "p"]);
    assert_eq!(
        config_of(&before).model.base_url,
        "http://before/v1",
        "kept when the subcommand does not repeat it"
    );
    let both = parse(&[
        "--scripted",
        "first.toml",
        "--base-url",
        "http://before/v1",
        "run",
        "--prompt",
        "p",
        "--base-url",
        "http://after/v1",
    ]);
    assert_eq!(config_of(&both).model.base_url, "http://after/v1");
    assert_eq!(
        both.global_options().scripted,
        Some(PathBuf::from("first.toml"))
    );
}

#[test]
fn demo_belongs_to_the_full_screen_session_only() {
    assert!(parse(&["--demo"]).demo);
    let err = Cli::try_parse_from(["airlock", "run", "--demo", "--prompt", "p"])
        .expect_err("--demo is not an option of run");
    assert!(err.to_string().contains("--demo"), "{err}");
}

#[test]
fn subcommand_help_lists_the_global_options_under_their_own_heading() {
    use clap::CommandFactory;
    let mut command = Cli::command();
    let run = command.find_subcommand_mut("run").expect("run subcommand");
    let help = run.render_help().to_string();
    let heading = help
        .find("Global options:")
        .expect("a Global options heading");
    for option in [
        "--config <PATH>",
        "-c <KEY=VALUE>",
        "--base-url",
        "--scripted",
    ] {
        let at = help
            .find(option)
            .unwrap_or_else(|| panic!("{option} in:\n{help}"));
        assert!(at > heading, "{option} under Global options:\n{help}");
    }
    assert!(help.find("--prompt").expect("--prompt") < heading, "{help}");
}
