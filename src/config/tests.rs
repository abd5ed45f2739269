use super::*;

fn with_overrides(overrides: &[&str]) -> anyhow::Result<Config> {
    let mut config = Config::default();
    for spec in overrides {
        config.apply_override(spec)?;
    }
    config.validate()?;
    Ok(config)
}

#[test]
fn the_example_file_is_complete_and_matches_the_defaults() {
    let text = include_str!("../../config.example.toml");
    let uncommented: String = text
        .lines()
        .map(|line| {
            line.strip_prefix("# ")
                .filter(|rest| rest.contains(" = "))
                .unwrap_or(line)
        })
        .collect::<Vec<_>>()
        .join("\n");
    let parsed = Config::from_toml(text).expect("example parses");
    assert_eq!(parsed.model, ModelConfig::default());
    assert_eq!(parsed.sandbox, SandboxConfig::default());
    assert_eq!(parsed.approval, ApprovalConfig::default());
    assert_eq!(parsed.ui, UiConfig::default());
    assert_eq!(parsed.history, HistoryConfig::default());
    // Every key of the defaults is written in the example (optional ones commented out).
    let defaults = toml::Value::try_from(Config::default()).expect("serializes");
    for (section, table) in defaults.as_table().expect("table") {
        for key in table.as_table().into_iter().flatten().map(|(key, _)| key) {
            assert!(
                uncommented.contains(&format!("\n{key} = ")),
                "config.example.toml does not mention {section}.{key}"
            );
        }
    }
    for key in [
        "workspace",
        "gpus",
        "runtime",
        "init_command",
        "temperature",
        "system_prompt",
        "syntax_theme",
        "file",
    ] {
        assert!(
            uncommented.contains(&format!("\n{key} = ")),
            "{key} undocumented"
        );
    }
}

#[test]
fn overrides_take_the_type_of_the_key() {
    let config = with_overrides(&[
        "sandbox.image=airlock-sandbox:offline",
        "sandbox.timeout_secs=5",
        "sandbox.cpus=2",
        "sandbox.read_only_root=false",
        "sandbox.memory=1GiB",
        "sandbox.workspace=/tmp/ws",
        "sandbox.waive=[\"swap\"]",
    ])
    .expect("valid overrides");
    assert_eq!(config.sandbox.image, "airlock-sandbox:offline");
    assert_eq!(config.sandbox.timeout_secs, 5);
    assert_eq!(config.sandbox.cpus, 2.0);
    assert!(!config.sandbox.read_only_root);
    assert_eq!(config.sandbox.memory, ByteSize(1 << 30));
    assert_eq!(config.sandbox.workspace, Some(PathBuf::from("/tmp/ws")));
    assert_eq!(config.sandbox.waive, vec![Protection::Swap]);
}

#[test]
fn an_override_can_add_a_language() {
    let config = with_overrides(&[
        "languages.node.command=[\"node\"]",
        "languages.node.extension=js",
    ])
    .expect("valid");
    assert_eq!(config.languages["node"].command, vec!["node".to_string()]);
    assert_eq!(config.languages["node"].extension, "js");
}

#[test]
fn bad_overrides_name_the_key_and_the_expectation() {
    let err = with_overrides(&["sandbox.timeout_secs=soon"])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("sandbox.timeout_secs") && err.contains("integer"),
        "{err}"
    );
    let err = with_overrides(&["sandbox.imag=x"]).unwrap_err().to_string();
    assert!(err.contains("imag"), "{err}");
    let err = with_overrides(&["sandbox.memory=lots"])
        .unwrap_err()
        .to_string();
    assert!(err.contains("512MiB"), "{err}");
    let err = with_overrides(&["approval.deny_patterns=[\"rm -rf (\"]"])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("deny_patterns") && err.contains("rm -rf ("),
        "{err}"
    );
    let err = with_overrides(&["approval.deny_languages=[\"pyhton\"]"])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("pyhton") && err.contains("python, bash, sh"),
        "{err}"
    );
    let err = with_overrides(&["nonsense"]).unwrap_err().to_string();
    assert!(err.contains("key=value"), "{err}");
    let err = with_overrides(&["sandbox.timeout_secs=0"])
        .unwrap_err()
        .to_string();
    assert!(err.contains("timeout_secs"), "{err}");
}

#[test]
fn unknown_keys_in_a_file_are_errors_with_a_line() {
    let err = Config::from_toml("[sandbox]\nimage = \"x\"\nmemroy = \"1GiB\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("memroy") && err.contains("line 3"), "{err}");
    let err = Config::from_toml("[sandbox]\npids_limit = \"many\"\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("pids_limit") || err.contains("line 2"),
        "{err}"
    );
}

#[test]
fn load_reports_the_file_that_is_wrong() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("config.toml");
    std::fs::write(&path, "[sandbox\n").expect("write");
    let err = Config::load(&Sources {
        explicit_file: Some(&path),
        overrides: &[],
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains(&path.display().to_string()), "{err}");
    let missing = dir.path().join("absent.toml");
    let err = Config::load(&Sources {
        explicit_file: Some(&missing),
        overrides: &[],
    })
    .unwrap_err();
    assert!(format!("{err:#}").contains("absent.toml"), "{err:#}");
}
