//! What a new user meets, on an empty Docker daemon with no registry: the README's run
//! command ends in the demo's screen (the sandbox image built by airlock on the way, its
//! steps on screen), and a session that cannot go on says why and stays until the operator
//! quits, then exits 125 with the same reason on stderr. Needs root (a second dockerd).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::Home;
use common::daemon::EmptyDaemon;
use common::tmux::Tmux;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A PATH with every program of the usual directories except mmdebstrap: the machine of a
/// new user who never installed it.
fn path_without_mmdebstrap(home: &Home) -> String {
    let shims = home.dir.path().join("bin");
    std::fs::create_dir_all(&shims).unwrap();
    for dir in ["/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin"] {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            if name == "mmdebstrap" || shims.join(&name).exists() {
                continue;
            }
            let _ = std::os::unix::fs::symlink(entry.path(), shims.join(&name));
        }
    }
    shims.display().to_string()
}

/// Runs `command` in tmux with this home's config and data, DOCKER_HOST and PATH; stderr goes
/// to a file.
fn in_terminal(home: &Home, docker_host: &str, path: &str, command: &str) -> (Tmux, PathBuf) {
    let stderr = home.dir.path().join("stderr");
    let line = format!(
        "env PATH={path} DOCKER_HOST={docker_host} XDG_DATA_HOME={data} XDG_CONFIG_HOME={config} {command} 2>{stderr}",
        data = home.dir.path().join("data").display(),
        config = home.dir.path().join("config").display(),
        stderr = stderr.display(),
    );
    (Tmux::run(home.dir.path(), &line), stderr)
}

/// `airlock` against `daemon`, with this home's config and data; `path` replaces PATH.
fn on_daemon(home: &Home, daemon: &EmptyDaemon, path: Option<&str>) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_airlock"));
    command
        .env("DOCKER_HOST", &daemon.host)
        .env("XDG_DATA_HOME", home.dir.path().join("data"))
        .env("XDG_CONFIG_HOME", home.dir.path().join("config"));
    if let Some(path) = path {
        command.env("PATH", path);
    }
    command
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[test]
fn the_readme_command_on_an_empty_daemon_ends_in_the_demo_screen() {
    let daemon = EmptyDaemon::start();
    let home = Home::new();
    let path = path_without_mmdebstrap(&home);
    let command = format!(
        "AIRLOCK_BIN={} {}/scripts/airlock --demo",
        env!("CARGO_BIN_EXE_airlock"),
        repo().display()
    );
    let (tmux, stderr) = in_terminal(&home, &daemon.host, &path, &command);
    // The demo's blocks are offered while the image is still being built...
    tmux.wait_for_within("Block 1 of 2", Duration::from_secs(120));
    tmux.wait_for("preparing the sandbox ·");
    // The logs pane says what is being done, step by step.
    tmux.wait_for_within("building airlock-sandbox:offline", Duration::from_secs(60));
    tmux.wait_for_within("step 2 of 6: downloading packages", Duration::from_secs(60));
    let setup = read(&stderr);
    assert!(
        setup.contains("mmdebstrap is missing"),
        "the setup said nothing: {setup}"
    );
    assert!(setup.contains("installing it with apt-get"), "{setup}");
    tmux.keys(&["y"]);
    tmux.wait_for("waits for the sandbox");
    tmux.keys(&["y"]);
    // ...and run once it is there.
    tmux.wait_for_within("23 data/sample.txt", Duration::from_secs(300));
    tmux.wait_for("Counter has no top method");
    // The model's next reply has arrived whole once its blocks wait (q would ask first while
    // it streams).
    tmux.wait_for("2 block(s) wait for you");
    assert!(
        tmux.screen().contains("built airlock-sandbox:offline"),
        "{}",
        tmux.screen()
    );
    tmux.keys(&["q"]);
    tmux.wait_exit();
    assert_eq!(tmux.exit_status().as_deref(), Some("0"));

    // The image is airlock's own build, and later commands use it without building again.
    let airlock = |args: &[&str]| {
        let mut command = on_daemon(&home, &daemon, None);
        command.args(args).output().expect("airlock runs")
    };
    let status = airlock(&["image", "status", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).expect("status JSON");
    assert_eq!(status["ready"], true, "{status}");
    assert_eq!(status["offline_image"]["present"], true, "{status}");
    assert!(
        status["offline_image"]["source"]
            .as_str()
            .unwrap()
            .starts_with("built by airlock from Debian packages"),
        "{status}"
    );
    let again = airlock(&["image", "build"]);
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).contains("is already there"));
    let exec = airlock(&[
        "exec",
        "--lang",
        "python",
        "-c",
        "sandbox.timeout_secs=30",
        "/dev/stdin",
    ]);
    // No code on stdin: an empty block still runs, in the built image.
    assert!(
        exec.status.success(),
        "{}",
        String::from_utf8_lossy(&exec.stderr)
    );
    assert!(
        String::from_utf8_lossy(&exec.stderr).contains("using airlock-sandbox:offline"),
        "{}",
        String::from_utf8_lossy(&exec.stderr)
    );
}

#[test]
fn an_empty_daemon_without_mmdebstrap_keeps_the_way_out_on_screen_and_exits_125() {
    let daemon = EmptyDaemon::start();
    let home = Home::new();
    let path = path_without_mmdebstrap(&home);
    let command = format!("{} --demo", env!("CARGO_BIN_EXE_airlock"));
    let (tmux, stderr) = in_terminal(&home, &daemon.host, &path, &command);
    tmux.wait_for("Session ended");
    tmux.wait_for("mmdebstrap");
    // It stays: nothing ends by itself.
    std::thread::sleep(Duration::from_secs(2));
    assert!(tmux.screen().contains("Session ended"), "{}", tmux.screen());
    assert_eq!(tmux.exit_status(), None);
    tmux.keys(&["q"]);
    tmux.wait_exit();
    assert_eq!(tmux.exit_status().as_deref(), Some("125"));
    let said = read(&stderr);
    assert!(
        said.contains(
            "cannot build airlock-sandbox:offline from Debian packages: mmdebstrap is not installed"
        ),
        "{said}"
    );
    assert!(said.contains("apt-get install mmdebstrap"), "{said}");
    assert!(daemon.docker(&["ps", "-aq"]).unwrap().trim().is_empty());
}

#[test]
fn docker_unreachable_keeps_the_reason_on_screen_and_exits_125() {
    let home = Home::new();
    let nowhere = format!("unix://{}/no-docker.sock", home.dir.path().display());
    let path = std::env::var("PATH").unwrap();
    let command = format!("{} --demo", env!("CARGO_BIN_EXE_airlock"));
    let (tmux, stderr) = in_terminal(&home, &nowhere, &path, &command);
    tmux.wait_for("Session ended");
    tmux.wait_for("Docker");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        tmux.exit_status(),
        None,
        "it ended by itself:\n{}",
        tmux.screen()
    );
    tmux.keys(&["q"]);
    tmux.wait_exit();
    assert_eq!(tmux.exit_status().as_deref(), Some("125"));
    let said = read(&stderr);
    assert!(said.contains("cannot reach the Docker daemon"), "{said}");
    assert!(said.contains("no-docker.sock"), "{said}");
}

#[test]
fn run_and_exec_report_the_preparation_on_stderr_and_exit_125_when_it_fails() {
    let daemon = EmptyDaemon::start();
    let home = Home::new();
    let path = path_without_mmdebstrap(&home);
    let airlock = |args: &[&str], stdin: &str| {
        let mut command = on_daemon(&home, &daemon, Some(&path));
        command.args(args);
        common::run_with_stdin(command, stdin)
    };
    let demo = repo().join("assets/demo.toml");
    let run = airlock(
        &[
            "run",
            "--json",
            "--approve",
            "all",
            "--scripted",
            demo.to_str().unwrap(),
            "--prompt",
            "go",
        ],
        "",
    );
    let exec = airlock(&["exec", "--lang", "python", "-"], "print('never runs')\n");
    for (name, output) in [("run", &run), ("exec", &exec)] {
        let said = common::stderr(output);
        assert_eq!(output.status.code(), Some(125), "{name}: {said}");
        // Progress lines carry the time so far.
        assert!(
            said.contains("s] pulling image python:3.12-slim"),
            "{name}: {said}"
        );
    }
    // The way out: on stderr for exec, in the error event for run --json.
    assert!(common::stderr(&exec).contains("apt-get install mmdebstrap"));
    let events = String::from_utf8_lossy(&run.stdout);
    assert!(events.contains(r#""type":"sandbox_progress""#), "{events}");
    assert!(events.contains("apt-get install mmdebstrap"), "{events}");
    assert!(!events.contains(r#""type":"exec_started""#), "{events}");
}

#[test]
fn a_build_that_fails_says_why_and_leaves_no_image_behind() {
    let daemon = EmptyDaemon::start();
    let home = Home::new();
    let path = path_without_mmdebstrap(&home);
    // An mmdebstrap whose mirror is down: it fails before it writes any tarball.
    let broken = home.dir.path().join("bin/mmdebstrap");
    std::fs::write(
        &broken,
        "#!/bin/sh\necho 'E: apt-get update failed: mirror unreachable' >&2\nexit 1\n",
    )
    .unwrap();
    std::fs::set_permissions(&broken, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let output = on_daemon(&home, &daemon, Some(&path))
        .args(["image", "build"])
        .output()
        .unwrap();
    let said = common::stderr(&output);
    assert_eq!(output.status.code(), Some(125), "{said}");
    assert!(said.contains("mmdebstrap exited"), "{said}");
    assert!(said.contains("mirror unreachable"), "{said}");
    let images = daemon.docker(&["images", "-q"]).unwrap();
    assert!(
        images.trim().is_empty(),
        "a broken image was left: {images}"
    );
}
