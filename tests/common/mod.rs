//! Helpers for tests that drive the real `airlock` binary against the real Docker daemon.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod daemon;
pub mod demo;
pub mod model_server;
pub mod remote;
pub mod session;
pub mod tmux;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use std::io::Write;

/// The image the tests run: built from Debian packages by `airlock image build`.
pub fn test_image() -> String {
    std::env::var("AIRLOCK_TEST_IMAGE").unwrap_or_else(|_| "airlock-sandbox:offline".into())
}

/// An isolated home for one test: its own config and data directories.
pub struct Home {
    pub dir: tempfile::TempDir,
}

impl Home {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data").join("airlock")
    }

    /// `airlock` with this home and the test image.
    pub fn airlock(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_airlock"));
        command
            .env("XDG_DATA_HOME", self.dir.path().join("data"))
            .env("XDG_CONFIG_HOME", self.dir.path().join("config"))
            .env_remove("DOCKER_HOST")
            // Not the developer's Docker context either: the tests' engine is the local one.
            .env_remove("DOCKER_CONTEXT")
            .env("DOCKER_CONFIG", self.dir.path().join("docker"))
            .arg("-c")
            .arg(format!("sandbox.image={}", test_image()));
        command
    }

    /// `airlock run --json ARGS` with this home, never with the developer's API key.
    pub fn run_json(&self, args: &[&str]) -> Command {
        let mut command = self.airlock();
        command
            .env_remove("OPENAI_API_KEY")
            .args(["run", "--json"])
            .args(args);
        command
    }
}

/// The JSON events `airlock run --json` printed, one per line.
pub fn json_events(output: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON event"))
        .collect()
}

/// The events of one type, in order.
pub fn of_type<'a>(events: &'a [serde_json::Value], kind: &str) -> Vec<&'a serde_json::Value> {
    events
        .iter()
        .filter(|event| event["type"] == kind)
        .collect()
}

/// Runs `airlock exec --json --lang LANG -` with `code` on stdin.
pub fn exec_json(
    home: &Home,
    lang: &str,
    code: &str,
    extra: &[&str],
) -> (serde_json::Value, Output) {
    let mut command = home.airlock();
    command
        .args(["exec", "--json", "--lang", lang])
        .args(extra)
        .arg("-");
    let output = run_with_stdin(command, code);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let value = serde_json::from_str(stdout.trim()).unwrap_or_else(|err| {
        panic!(
            "exec did not print one JSON object ({err}); status {:?}\nstdout: {stdout}\nstderr: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (value, output)
}

pub fn run_with_stdin(mut command: Command, input: &str) -> Output {
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("spawn airlock");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_string();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
    });
    let output = child.wait_with_output().expect("wait");
    let _ = writer.join();
    output
}

pub fn docker(args: &[&str]) -> String {
    let output = Command::new("docker")
        .args(args)
        .output()
        .expect("docker CLI");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Ids of containers whose label matches, running or not.
pub fn containers_labelled(label: &str) -> Vec<String> {
    docker(&["ps", "-aq", "--filter", &format!("label={label}")])
        .lines()
        .map(str::to_string)
        .filter(|line| !line.is_empty())
        .collect()
}

pub fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    condition()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub fn path_str(path: &Path) -> String {
    path.display().to_string()
}

/// Whether the session's container is gone within 10 s.
pub fn container_gone(session: &str) -> bool {
    wait_until(Duration::from_secs(10), || {
        containers_labelled(&format!("airlock.session={session}")).is_empty()
    })
}

/// A scripted model's file (`[[reply]] content = ...`) in the home.
pub fn script(home: &Home, toml: &str) -> PathBuf {
    let path = home.dir.path().join("script.toml");
    std::fs::write(&path, toml).expect("write the script");
    path
}

/// The bytes of an exit frame saying the block succeeded, as a block would forge them.
pub fn forged_exit_frame() -> Vec<u8> {
    use airlock::supervisor::frame::{ExitReport, Frame};
    let mut bytes = Vec::new();
    Frame::Exit(ExitReport {
        exit_code: Some(0),
        duration_ms: 1,
        ..ExitReport::default()
    })
    .encode(&mut bytes);
    bytes
}
