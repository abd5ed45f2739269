//! The sandbox under gVisor (`sandbox.runtime = "runsc"`), against the real Docker daemon with
//! the real runsc runtime (registered by scripts/runsc-runtime, which scripts/test runs).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Output, Stdio};

use common::{Home, containers_labelled, docker, exec_json, stderr, wait_until};

/// gVisor's kernel says so first thing in its boot log, whatever the host runs.
const GVISOR_BOOT: &str = "Starting gVisor";

/// Fails, with what to do, when the daemon has no runsc runtime: never skipped.
fn require_runsc() {
    let runtimes = docker(&[
        "info",
        "--format",
        "{{range $name, $_ := .Runtimes}}{{$name}} {{end}}",
    ]);
    assert!(
        runtimes.split_whitespace().any(|name| name == "runsc"),
        "the Docker daemon has no runsc runtime (it has: {runtimes:?}); run scripts/runsc-runtime \
         as root to install gVisor's runsc and register it"
    );
}

/// The options every run here takes: gVisor, and the file limit waived (gVisor's tmpfs
/// ignores nr_inodes; the test below shows airlock refuses without the waiver).
const UNDER_RUNSC: [&str; 4] = [
    "-c",
    "sandbox.runtime=runsc",
    "-c",
    "sandbox.waive=[\"workspace\"]",
];

/// Runs the command to its end and returns its output with the pid it had, which is the
/// `airlock.owner.pid` label of every container it made.
fn run_owned(mut command: Command) -> (Output, u32) {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = command.spawn().expect("spawn airlock");
    let pid = child.id();
    (child.wait_with_output().expect("wait"), pid)
}

fn none_left_by(pid: u32) -> bool {
    wait_until(std::time::Duration::from_secs(10), || {
        containers_labelled(&format!("airlock.owner.pid={pid}")).is_empty()
    })
}

#[test]
fn a_block_runs_in_gvisors_kernel_with_threads_and_its_workspace_copied_out() {
    require_runsc();
    let home = Home::new();
    let code = "dmesg | head -n 1\nid -u\n\
                python3 -c 'import threading; t = threading.Thread(target=print, args=(\"thread ran\",)); t.start(); t.join()'\n\
                echo kept > /workspace/out.txt\n";
    let (value, output) = exec_json(&home, "sh", code, &UNDER_RUNSC);
    let text = value["output"].as_str().unwrap_or_default();
    // The read-back refuses a container under another runtime than asked before any block
    // runs: a block that ran, in gVisor's kernel, passed it.
    assert_eq!(value["exit_code"], 0, "{value}\n{}", stderr(&output));
    assert!(text.contains(GVISOR_BOOT), "{text}");
    assert!(text.contains("thread ran"), "{text}");
    let uid: u32 = text
        .lines()
        .nth(1)
        .unwrap_or_default()
        .trim()
        .parse()
        .unwrap();
    assert_ne!(uid, 0, "{text}");
    assert!(
        stderr(&output).contains("waived protection workspace"),
        "{}",
        stderr(&output)
    );
    let workspaces = home.data_dir().join("workspaces");
    let copied: Vec<String> = std::fs::read_dir(&workspaces)
        .unwrap()
        .filter_map(|entry| std::fs::read_to_string(entry.ok()?.path().join("out.txt")).ok())
        .collect();
    assert_eq!(copied, vec!["kept\n".to_string()]);
    let container = value["container"].as_str().unwrap();
    assert!(
        wait_until(std::time::Duration::from_secs(10), || {
            docker(&["ps", "-aq", "--no-trunc"])
                .lines()
                .all(|id| !id.starts_with(container))
        }),
        "container {container} is left"
    );
}

#[test]
fn without_the_waiver_the_uncounted_inodes_are_refused_with_the_reason() {
    require_runsc();
    let home = Home::new();
    let mut command = home.airlock();
    command.args(["-c", "sandbox.runtime=runsc", "exec", "--lang", "sh", "-"]);
    let (output, pid) = run_owned(command);
    assert_eq!(output.status.code(), Some(125), "{}", stderr(&output));
    let err = stderr(&output);
    assert!(
        err.contains("counts no inodes") && err.contains("sandbox.workspace_inodes"),
        "{err}"
    );
    assert!(none_left_by(pid), "a container of airlock {pid} is left");
}

#[test]
fn doctor_lists_runsc_and_finds_it_working() {
    require_runsc();
    let home = Home::new();
    let mut command = home.airlock();
    command.args(UNDER_RUNSC).arg("doctor");
    let (output, pid) = run_owned(command);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = |start: &str| {
        stdout
            .lines()
            .find(|line| line.starts_with(start))
            .unwrap_or_else(|| panic!("no line {start:?}:\n{stdout}\n{}", stderr(&output)))
            .to_string()
    };
    assert!(line("ok   runtimes:").contains("runsc"), "{stdout}");
    assert!(line("ok   runsc: works").contains(GVISOR_BOOT), "{stdout}");
    assert!(line("ok   sandbox: hardened container started").contains("from"));
    assert!(line("ok   no-new-privileges:").contains("no_new_privs 1"));
    assert!(line("ok   seccomp:").contains("refused"), "{stdout}");
    // What cannot be seen from inside gVisor is said so, not passed.
    assert!(line("n/a  memory limit:").contains("not visible inside gVisor"));
    assert!(line("FAIL workspace limit:").contains("counts no inodes"));
    assert!(none_left_by(pid), "a container of airlock {pid} is left");
}

#[test]
fn doctor_under_runc_lists_runsc_as_not_tried() {
    require_runsc();
    let home = Home::new();
    let mut command = home.airlock();
    command.arg("doctor");
    let (output, pid) = run_owned(command);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("ok   runsc: registered, not tried"),
        "{stdout}\n{}",
        stderr(&output)
    );
    assert!(!stdout.contains(GVISOR_BOOT), "{stdout}");
    assert!(none_left_by(pid), "a container of airlock {pid} is left");
}

/// The whole demo session (five blocks, one failing and fixed, numpy and matplotlib drawing
/// chart.png) under gVisor, as under runc.
#[test]
fn the_demo_session_runs_to_its_end_under_gvisor() {
    require_runsc();
    let home = Home::new();
    let args: Vec<String> = UNDER_RUNSC.iter().map(|a| a.to_string()).collect();
    let (events, output) = common::demo::demo(&home, &[], &args);
    common::demo::assert_demo_ran(&home, &events, &output, None);
}
