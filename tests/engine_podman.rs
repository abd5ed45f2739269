//! The sandbox on rootful Podman through its Docker-compatible API (`podman system service`,
//! which `scripts/podman-service start` runs and `scripts/test` starts first, setting
//! AIRLOCK_PODMAN_HOST): blocks run and stream, time out, the container's settings are read
//! back in Podman's terms, `airlock doctor` names Podman, and no container is left behind.
//!
//! One setting is given on Podman 4.3, for what it does not apply: a waived `workspace`
//! protection, since it refuses the tmpfs option `nr_inodes` that caps the workspace's files
//! (its bytes stay capped). The test shows the sandbox is refused without it, and why.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Output};
use std::time::Instant;

use common::{Home, run_with_stdin, stderr};
use serde_json::Value;

/// The Podman service's address; the tests need it (scripts/test starts the service).
fn podman_host() -> String {
    std::env::var("AIRLOCK_PODMAN_HOST").expect(
        "AIRLOCK_PODMAN_HOST is not set: run the tests with scripts/test, which starts \
         Podman's API service (or run `eval \"$(scripts/podman-service start)\"` first)",
    )
}

/// What Podman 4.3 needs given, see the top of this file.
const PODMAN_SETTINGS: [&str; 2] = ["-c", r#"sandbox.waive=["workspace"]"#];

/// `airlock` with this home, talking to Podman.
fn airlock(home: &Home, settings: &[&str]) -> Command {
    let mut command = home.airlock();
    command.env("DOCKER_HOST", podman_host()).args(settings);
    command
}

fn exec(home: &Home, settings: &[&str], args: &[&str], code: &str) -> Output {
    let mut command = airlock(home, settings);
    command.arg("exec").args(args).arg("-");
    run_with_stdin(command, code)
}

fn exec_json(home: &Home, args: &[&str], code: &str) -> (Value, Output) {
    let mut json = vec!["--json"];
    json.extend_from_slice(args);
    let output = exec(home, &PODMAN_SETTINGS, &json, code);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let value = serde_json::from_str(stdout.trim()).unwrap_or_else(|err| {
        panic!(
            "exec did not print one JSON object ({err}); status {:?}\nstdout: {stdout}\nstderr: {}",
            output.status,
            stderr(&output)
        )
    });
    (value, output)
}

/// Containers airlock made that Podman still has, running or not.
fn podman_containers() -> Vec<String> {
    let output = Command::new("podman")
        .args(["--url", &podman_host(), "ps", "-aq"])
        .args(["--filter", "label=airlock.owner"])
        .output()
        .expect("the podman client");
    assert!(output.status.success(), "{}", stderr(&output));
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| !line.is_empty())
        .map(str::to_string)
        .collect()
}

fn gone_from_podman() -> bool {
    common::wait_until(std::time::Duration::from_secs(10), || {
        podman_containers().is_empty()
    })
}

// One test, in order: the leftover check at its end must not see another test's container.
#[test]
fn blocks_run_in_podman_with_their_protections_read_back() {
    let home = Home::new();

    // Without the waiver, the uncapped file count is found and the block never runs.
    let refused = exec(&home, &[], &["--lang", "sh"], "echo ran");
    let said = stderr(&refused);
    assert_eq!(refused.status.code(), Some(125), "{said}");
    assert!(
        said.contains("Podman 4 refuses tmpfs's nr_inodes") && said.contains("1073741824 bytes"),
        "{said}"
    );
    assert!(!String::from_utf8_lossy(&refused.stdout).contains("ran"));

    // With it, the block runs as the code user, its output streaming as it comes.
    let mut command = airlock(&home, &PODMAN_SETTINGS);
    command.args(["exec", "--lang", "python", "-"]);
    let code =
        "import os, time\nprint('uid', os.getuid(), flush=True)\ntime.sleep(2)\nprint('after')\n";
    let mut child = command
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("airlock starts");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(code.as_bytes()).expect("code written");
    }
    let mut stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let mut first = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut first).expect("a first line");
    let first_at = Instant::now();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).expect("the rest");
    let waited = first_at.elapsed();
    let output = child.wait_with_output().expect("airlock ends");
    let said = stderr(&output);
    assert!(output.status.success(), "{said}");
    assert_eq!(first, "uid 65534\n", "{said}");
    assert_eq!(rest, "after\n");
    assert!(
        waited.as_millis() >= 1500,
        "the first line came only with the last ({waited:?} apart)"
    );
    // The read-back found nothing missing, and the waiver is said.
    assert!(said.contains("waived protection workspace"), "{said}");
    assert!(!said.contains("lacks protections"), "{said}");

    // /run and /var/tmp are airlock's small noexec tmpfs, not Podman's writable ones.
    let (mounts, output) = exec_json(
        &home,
        &["--lang", "sh"],
        "grep -E ' /(run|var/tmp) ' /proc/self/mountinfo",
    );
    let mounts = mounts["output"].as_str().unwrap_or_default().to_string();
    assert_eq!(mounts.lines().count(), 2, "{mounts}\n{}", stderr(&output));
    assert!(
        mounts.lines().all(|line| line.contains("noexec")),
        "{mounts}"
    );

    let (timed_out, output) = exec_json(&home, &["--lang", "sh", "--timeout", "2"], "sleep 30");
    assert_eq!(timed_out["timed_out"], true, "{}", stderr(&output));
    assert_eq!(timed_out["exit_code"], Value::Null);
    assert!(timed_out["duration_ms"].as_u64().unwrap() < 10_000);

    let (ran, output) = exec_json(&home, &["--lang", "bash"], "echo out; echo err >&2; exit 3");
    assert_eq!(ran["exit_code"], 3, "{}", stderr(&output));
    // Two pipes: which of the two lines arrives first is not fixed.
    let mut lines: Vec<&str> = ran["output"].as_str().unwrap().lines().collect();
    lines.sort_unstable();
    assert_eq!(lines, ["err", "out"]);

    let mut doctor = airlock(&home, &PODMAN_SETTINGS);
    doctor.arg("doctor");
    let output = run_with_stdin(doctor, "");
    let report = String::from_utf8_lossy(&output.stdout);
    // Every check passes but the file limit, which Podman cannot be asked for, and which
    // doctor reports as it finds it, waived or not.
    assert_eq!(
        output.status.code(),
        Some(125),
        "{report}\n{}",
        stderr(&output)
    );
    for line in [
        "ok   engine: Podman ",
        "\"Podman Engine\"",
        "ok   sandbox: hardened container started",
        "ok   capabilities: CapEff 0000000000000000",
        "ok   no-new-privileges: NoNewPrivs 1",
        "ok   read-only root: root writable: no",
        "ok   network: interfaces: lo",
        "FAIL workspace limit: 1GiB in 100000 files asked, 1GiB in ",
        "1 check(s) failed",
    ] {
        assert!(report.contains(line), "no {line:?} in:\n{report}");
    }

    // The whole demo session, end to end, with its chart in the bind-mounted workspace.
    let engine = [("DOCKER_HOST", podman_host())];
    let settings: Vec<String> = PODMAN_SETTINGS.iter().map(|s| s.to_string()).collect();
    let (events, output) = common::demo::demo(&home, &engine, &settings);
    common::demo::assert_demo_ran(&home, &events, &output, Some(&podman_host()));

    assert!(
        gone_from_podman(),
        "left in Podman: {:?}",
        podman_containers()
    );
}
