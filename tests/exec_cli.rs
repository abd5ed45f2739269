//! `airlock exec` against the real Docker daemon: results, limits and the sandbox's walls.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::*;

#[test]
fn hello_world_in_python_and_shell() {
    let home = Home::new();
    let (python, output) = exec_json(&home, "python", "print('hello from python')\n", &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(python["output"], "hello from python\n");
    assert_eq!(python["exit_code"], 0);
    assert_eq!(python["timed_out"], false);
    assert_eq!(python["oom_killed"], false);
    assert_eq!(python["truncated"], false);
    assert_eq!(python["output_bytes"], 18);
    assert!(python["duration_ms"].as_u64().is_some());
    let image = python["image"].as_str().unwrap_or("");
    assert!(
        image.starts_with(&test_image()) && image.contains("sha256:"),
        "{image}"
    );

    let (shell, _) = exec_json(&home, "bash", "echo \"from $0\"; echo ok", &[]);
    assert!(
        shell["output"].as_str().unwrap_or("").ends_with("ok\n"),
        "{shell}"
    );
    let (sh, _) = exec_json(&home, "sh", "printf 'a\\nb\\n'", &[]);
    assert_eq!(sh["output"], "a\nb\n");
}

#[test]
fn exit_codes_and_stderr_come_back() {
    let home = Home::new();
    let code = "import sys\nprint('out')\nprint('err', file=sys.stderr)\nsys.exit(7)\n";
    let (result, output) = exec_json(&home, "python", code, &[]);
    assert_eq!(result["exit_code"], 7);
    assert_eq!(
        output.status.code(),
        Some(7),
        "exec returns the block's exit code"
    );
    let text = result["output"].as_str().unwrap_or("");
    assert!(text.contains("out\n") && text.contains("err\n"), "{text}");

    let (result, output) = exec_json(&home, "python", "raise ValueError('boom')\n", &[]);
    assert_eq!(result["exit_code"], 1);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        result["output"]
            .as_str()
            .unwrap_or("")
            .contains("ValueError: boom")
    );
}

#[test]
fn streaming_mode_keeps_the_streams_apart() {
    let home = Home::new();
    let mut command = home.airlock();
    command.args(["exec", "--lang", "sh", "-"]);
    let output = run_with_stdin(command, "echo to-stdout; echo to-stderr >&2; exit 4");
    assert_eq!(output.status.code(), Some(4));
    assert_eq!(String::from_utf8_lossy(&output.stdout), "to-stdout\n");
    assert!(stderr(&output).contains("to-stderr\n"));
}

#[test]
fn a_file_argument_and_its_extension_pick_the_language() {
    let home = Home::new();
    let file = home.dir.path().join("job.py");
    std::fs::write(&file, "print(6 * 7)\n").expect("write");
    let output = home
        .airlock()
        .args(["exec", "--json"])
        .arg(&file)
        .output()
        .expect("run");
    let result: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(result["output"], "42\n");
}

#[test]
fn a_timeout_kills_and_returns_124() {
    let home = Home::new();
    let (result, output) = exec_json(
        &home,
        "bash",
        "echo before; sleep 300; echo after",
        &["--timeout", "2"],
    );
    assert_eq!(output.status.code(), Some(124), "{}", stderr(&output));
    assert_eq!(result["timed_out"], true);
    assert!(result["exit_code"].is_null());
    assert_eq!(result["output"], "before\n");
    let duration = result["duration_ms"].as_u64().unwrap_or(0);
    assert!((2000..10_000).contains(&duration), "{duration}");
}

#[test]
fn a_memory_bomb_is_reported_as_oom() {
    let home = Home::new();
    let code = "chunks = []\nwhile True:\n    chunks.append(bytearray(16 * 1024 * 1024))\n";
    let (result, _) = exec_json(&home, "python", code, &["-c", "sandbox.memory=64MiB"]);
    assert_eq!(result["oom_killed"], true, "{result}");
    assert_eq!(result["timed_out"], false);
    assert_eq!(result["exit_code"], 137);
}

#[test]
fn a_fork_bomb_is_contained_and_airlock_returns() {
    let home = Home::new();
    let (result, output) = exec_json(
        &home,
        "bash",
        "bomb() { bomb | bomb & }; bomb; sleep 3; echo survived",
        &["--timeout", "5"],
    );
    assert!(output.status.code().is_some(), "{}", stderr(&output));
    // The pids limit keeps the host safe; the block is killed at its deadline at the latest.
    assert!(
        result["duration_ms"].as_u64().unwrap_or(u64::MAX) < 30_000,
        "{result}"
    );
}

#[test]
fn network_egress_and_dns_fail() {
    let home = Home::new();
    let code = r#"
import socket
try:
    socket.create_connection(("1.1.1.1", 53), timeout=3)
    print("egress: open")
except OSError as e:
    print("egress: blocked", type(e).__name__)
try:
    socket.getaddrinfo("example.com", 80)
    print("dns: resolved")
except OSError as e:
    print("dns: failed", type(e).__name__)
"#;
    let (result, _) = exec_json(&home, "python", code, &[]);
    let text = result["output"].as_str().unwrap_or("");
    assert!(text.contains("egress: blocked"), "{text}");
    assert!(text.contains("dns: failed"), "{text}");
}

#[test]
fn only_workspace_tmp_and_shm_are_writable() {
    let home = Home::new();
    let code = r#"
for path in /workspace/f /tmp/f /var/tmp/f /dev/shm/f /f /etc/f /usr/f /home/f /run/f; do
  if (echo x > "$path") 2>/dev/null; then echo "$path writable"; else echo "$path denied"; fi
done
"#;
    let (result, _) = exec_json(&home, "bash", code, &[]);
    let text = result["output"].as_str().unwrap_or("");
    for writable in ["/workspace/f", "/tmp/f", "/var/tmp/f", "/dev/shm/f"] {
        assert!(text.contains(&format!("{writable} writable")), "{text}");
    }
    for denied in ["/f", "/etc/f", "/usr/f", "/home/f", "/run/f"] {
        assert!(text.contains(&format!("{denied} denied")), "{text}");
    }
    // The file written to /workspace is in the session's workspace on the host.
    let workspaces = home.data_dir().join("workspaces");
    let session = std::fs::read_dir(&workspaces)
        .expect("workspaces")
        .next()
        .expect("one")
        .expect("entry");
    assert_eq!(
        std::fs::read_to_string(session.path().join("f")).expect("kept"),
        "x\n"
    );
}

#[test]
fn not_root_and_no_capabilities() {
    let home = Home::new();
    let (result, _) = exec_json(
        &home,
        "sh",
        "id -u; grep -E 'CapEff|CapPrm|NoNewPrivs' /proc/self/status",
        &[],
    );
    let text = result["output"].as_str().unwrap_or("");
    let uid: u32 = text
        .lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
        .expect("uid");
    assert_ne!(uid, 0, "{text}");
    assert!(text.contains("CapEff:\t0000000000000000"), "{text}");
    assert!(text.contains("CapPrm:\t0000000000000000"), "{text}");
    assert!(text.contains("NoNewPrivs:\t1"), "{text}");
}

#[test]
fn secrets_and_the_docker_socket_stay_outside() {
    let home = Home::new();
    let mut command = home.airlock();
    command
        .env("OPENAI_API_KEY", "sk-never-inside")
        .args(["exec", "--json", "--lang", "sh", "-"]);
    let output = run_with_stdin(
        command,
        "env; ls -la /var/run/docker.sock /run/docker.sock 2>&1; echo HOME=$HOME",
    );
    let result: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    let text = result["output"].as_str().unwrap_or("");
    assert!(!text.contains("sk-never-inside"), "{text}");
    assert!(!text.contains("OPENAI_API_KEY"), "{text}");
    assert!(text.contains("No such file"), "{text}");
    assert!(text.contains("PYTHONUNBUFFERED=1"), "{text}");

    // Asking to pass the key in, or to mount the Docker socket's directory, is refused
    // before anything runs.
    for (setting, complaint) in [
        (
            "sandbox.pass_env=[\"OPENAI_API_KEY\"]",
            "secrets never enter",
        ),
        (
            "sandbox.extra_volumes=[\"/var/run:/host-run\"]",
            "Docker socket",
        ),
    ] {
        let mut command = home.airlock();
        command.args(["-c", setting, "exec", "--lang", "sh", "-"]);
        let output = run_with_stdin(command, "true");
        assert_eq!(output.status.code(), Some(125), "{setting}");
        assert!(stderr(&output).contains(complaint), "{}", stderr(&output));
    }
}

#[test]
fn invalid_utf8_and_escape_sequences_are_neutralized() {
    let home = Home::new();
    let code = r"printf '\377\376 ok\n'; printf '\033]0;pwned\007\033[31mred\033[0m\033[2J\n'; printf 'bell\007\n'";
    let (result, _) = exec_json(&home, "bash", code, &[]);
    let text = result["output"].as_str().unwrap_or("");
    assert!(text.contains("\u{fffd}\u{fffd} ok\n"), "{text:?}");
    assert!(text.contains("red\n"), "{text:?}");
    assert!(text.contains("bell\u{2407}"), "{text:?}");
    assert!(
        !text.contains('\u{1b}') && !text.contains("pwned"),
        "{text:?}"
    );
}

#[test]
fn an_unknown_language_is_a_usage_error() {
    let home = Home::new();
    let mut command = home.airlock();
    command.args(["exec", "--lang", "cobol", "-"]);
    let output = run_with_stdin(command, "DISPLAY 'HI'.");
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(
        message.contains("unknown language `cobol`") && message.contains("python"),
        "{message}"
    );
    assert!(!message.contains("panicked"));
}

#[test]
fn docker_down_is_one_clear_sentence() {
    let home = Home::new();
    let mut command = home.airlock();
    command
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .args(["exec", "--lang", "sh", "-"]);
    let output = run_with_stdin(command, "true");
    assert_eq!(output.status.code(), Some(125));
    let message = stderr(&output);
    assert!(
        message.contains("cannot reach the Docker daemon"),
        "{message}"
    );
    assert!(message.contains("DOCKER_HOST"), "{message}");
    assert!(
        !message.contains("panicked") && !message.contains("backtrace"),
        "{message}"
    );
    assert_eq!(message.trim().lines().count(), 1, "{message}");
}

/// `airlock exec --json` of `code` with an image that is absent and may not be pulled, and
/// `offline` as the offline fallback, which is not built when missing.
fn exec_without_the_image(offline: &str, code: &str) -> Output {
    let home = Home::new();
    let mut command = home.airlock();
    command.args([
        "-c",
        "sandbox.image=airlock-test-missing:never",
        "-c",
        "sandbox.pull=never",
        "-c",
        "sandbox.build_offline=false",
        "-c",
        &format!("sandbox.offline_image={offline}"),
        "exec",
        "--json",
        "--lang",
        "sh",
        "-",
    ]);
    run_with_stdin(command, code)
}

#[test]
fn a_missing_image_names_both_ways_out() {
    let output = exec_without_the_image("airlock-test-missing:offline", "true");
    assert_eq!(output.status.code(), Some(125));
    let message = stderr(&output);
    assert!(message.contains("airlock-test-missing:never"), "{message}");
    assert!(
        message.contains("registry") && message.contains("airlock image build"),
        "{message}"
    );
}

#[test]
fn the_offline_image_is_used_when_the_configured_one_is_unavailable() {
    let output = exec_without_the_image(&test_image(), "echo fallback");
    let result: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(result["output"], "fallback\n");
    assert!(
        result["image"]
            .as_str()
            .unwrap_or("")
            .starts_with(&test_image())
    );
    assert!(
        stderr(&output).contains(&format!("using {} instead", test_image())),
        "{}",
        stderr(&output)
    );
}

#[test]
fn large_and_unusual_code_arrives_byte_exact() {
    let home = Home::new();
    let payload = "\u{e9}\u{4e16}\u{200b}\u{202e}".repeat(50_000);
    let code = format!(
        "import hashlib\ns = '{payload}'\nprint(len(s), hashlib.sha256(s.encode()).hexdigest())\n"
    );
    let (result, _) = exec_json(&home, "python", &code, &[]);
    let expected = {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(payload.as_bytes());
        format!(
            "{} {}\n",
            payload.chars().count(),
            digest
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        )
    };
    assert_eq!(result["output"], expected);
}

#[test]
fn a_read_only_workspace_can_be_named() {
    let home = Home::new();
    let workspace = home.dir.path().join("project");
    std::fs::create_dir_all(&workspace).expect("mkdir");
    std::fs::write(workspace.join("input.txt"), "data\n").expect("write");
    let ws = format!("sandbox.workspace={}", path_str(&workspace));
    let (result, _) = exec_json(
        &home,
        "sh",
        "cat /workspace/input.txt; touch /workspace/new 2>/dev/null && echo wrote || echo read-only",
        &["-c", &ws, "-c", "sandbox.workspace_read_only=true"],
    );
    assert_eq!(result["output"], "data\nread-only\n");
    assert!(!workspace.join("new").exists());
}

#[test]
fn no_container_outlives_the_command() {
    let home = Home::new();
    let mut command = home.airlock();
    command.args(["exec", "--lang", "sh", "-"]);
    let child_output = run_with_stdin(command, "sleep 1 & echo done");
    assert!(child_output.status.success());
    // Every container of this test's airlock processes is gone (they are labelled with their
    // owner's pid, and the command has exited).
    let leftovers: Vec<String> = containers_labelled("airlock.owner")
        .into_iter()
        .filter(|id| {
            docker(&[
                "inspect",
                "-f",
                "{{index .Config.Labels \"airlock.owner.pid\"}}",
                id,
            ])
            .trim()
            .parse::<u32>()
            .is_ok_and(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists())
        })
        .collect();
    assert!(
        leftovers.is_empty(),
        "containers of exited airlock processes remain: {leftovers:?}"
    );
}

#[test]
fn a_killed_airlock_leaves_no_container() {
    let home = Home::new();
    // Once the block runs: a kill in the few milliseconds between create and start leaves
    // a created container, which the next airlock's start-up removes (its owner is dead).
    let (_, label) = signal_sleeping_exec(&home, "KILL", true);
    assert!(
        wait_until(Duration::from_secs(20), || containers_labelled(&label)
            .is_empty()),
        "the container outlived airlock: {:?}",
        containers_labelled(&label)
    );
}

#[test]
fn stale_containers_of_dead_owners_are_reaped_and_live_ones_kept() {
    let host = airlock::owner::hostname();
    let dead = format!("airlock.owner={host}:999999999:1");
    let me = airlock::owner::Owner::current().to_string();
    let run = |label: &str| {
        docker(&[
            "run",
            "-d",
            "--label",
            label,
            "--network",
            "none",
            &test_image(),
            "sleep",
            "300",
        ])
        .trim()
        .to_string()
    };
    let stale = run(&dead);
    let live = run(&format!("airlock.owner={me}"));
    assert!(!stale.is_empty() && !live.is_empty());
    let home = Home::new();
    let mut command = home.airlock();
    command.args(["exec", "--lang", "sh", "-"]);
    let output = run_with_stdin(command, "true");
    let message = stderr(&output);
    let still = |id: &str| {
        !docker(&["ps", "-aq", "--no-trunc", "--filter", &format!("id={id}")])
            .trim()
            .is_empty()
    };
    let stale_gone = !still(&stale);
    let live_kept = still(&live);
    docker(&["rm", "-f", &live, &stale]);
    assert!(stale_gone, "stale container kept; {message}");
    assert!(live_kept, "a live owner's container was removed");
    // (Which airlock removed it, and so printed the notice, depends on the tests running
    // alongside; that it is gone and the live one is not is what counts.)
}

/// What the wrapper that ran blocks before the supervisor ended with (NUL, nonce, status).
const OLD_STATUS_LINE: &[u8] = b"\0deadbeef 0 0 0\n";

/// A forged exit frame, then the old status line, then a flood, and a status of 5.
static FLOOD_AFTER_FORGERIES: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let mut forged = common::forged_exit_frame();
    forged.extend_from_slice(OLD_STATUS_LINE);
    let octal: String = forged.iter().map(|byte| format!("\\{byte:03o}")).collect();
    format!("printf '{octal}'\nhead -c 400M /dev/urandom | base64 -w 0; echo\nexit 5\n")
});

#[test]
fn a_flood_after_a_forged_end_is_all_counted_and_keeps_airlock_small() {
    let home = Home::new();
    let mut command = home.airlock();
    command
        // A debug build on a busy machine takes most of a minute to pass 540 MB through.
        .args(["exec", "--json", "--lang", "bash", "--timeout", "600", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = command.spawn().expect("spawn");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(FLOOD_AFTER_FORGERIES.as_bytes())
            .expect("write");
    }
    // Drained concurrently: the JSON result is larger than a pipe buffer.
    let mut stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut stdout, &mut bytes).map(|_| bytes)
    });
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak_kib = 0u64;
    while child.try_wait().expect("poll").is_none() {
        if let Ok(status) = std::fs::read_to_string(&status_file) {
            let hwm = status
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok());
            peak_kib = peak_kib.max(hwm.unwrap_or(0));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let stdout = reader.join().expect("reader").expect("read");
    let result: serde_json::Value = serde_json::from_slice(&stdout).expect("json");
    assert_eq!(result["truncated"], true);
    // The true status, and every byte counted: the forgeries, 400 MiB in base64, a newline.
    assert_eq!(
        result["exit_code"], 5,
        "timed out: {}, cancelled: {}",
        result["timed_out"], result["cancelled"]
    );
    let forged = common::forged_exit_frame().len() + OLD_STATUS_LINE.len();
    let base64 = (400usize << 20).div_ceil(3) * 4;
    assert_eq!(result["output_bytes"], (forged + base64 + 1) as u64);
    assert!(result["output"].as_str().unwrap_or("").len() < 1_100_000);
    assert!(
        peak_kib > 0 && peak_kib < 100 * 1024,
        "airlock's peak memory was {peak_kib} KiB"
    );
}

/// The pull path, against a registry on loopback (scripts/start-test-registry.sh).
#[test]
fn a_missing_image_is_pulled_with_progress_and_pinned() {
    let registry =
        std::env::var("AIRLOCK_TEST_REGISTRY").unwrap_or_else(|_| "127.0.0.1:5055".into());
    let image = format!("{registry}/airlock-pull-test:{}", std::process::id());
    docker(&["tag", &test_image(), &image]);
    let pushed = Command::new("docker")
        .args(["push", &image])
        .output()
        .expect("docker push");
    assert!(
        pushed.status.success(),
        "cannot push to the test registry at {registry} (run scripts/start-test-registry.sh): {}",
        String::from_utf8_lossy(&pushed.stderr)
    );
    docker(&["rmi", &image]);
    let home = Home::new();
    let mut command = home.airlock();
    command.args([
        "-c",
        &format!("sandbox.image={image}"),
        "exec",
        "--json",
        "--lang",
        "sh",
        "-",
    ]);
    let output = run_with_stdin(command, "echo pulled");
    docker(&["rmi", &image]);
    let message = stderr(&output);
    let result: serde_json::Value =
        serde_json::from_slice(&output.stdout).unwrap_or_else(|err| panic!("{err}: {message}"));
    assert_eq!(result["output"], "pulled\n");
    assert!(
        message.contains(&format!("pulling image {image}")),
        "{message}"
    );
    assert!(
        message.contains(&format!("pulled image {image}")),
        "{message}"
    );
    let ran = result["image"].as_str().unwrap_or("");
    assert!(
        ran.contains("@sha256:"),
        "the digest that ran is reported: {ran}"
    );
}

/// Starts `airlock exec` on `sleep 120`, waits until its container exists (with
/// `wait_for_block`, until the block runs), sends `signal` and waits for airlock to end.
/// Returns what airlock printed and the label that marks its containers.
fn signal_sleeping_exec(home: &Home, signal: &str, wait_for_block: bool) -> (Output, String) {
    let mut command = home.airlock();
    command
        .args(["exec", "--lang", "sh", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut child = command.spawn().expect("spawn");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(b"sleep 120").expect("write");
    }
    let label = format!("airlock.owner.pid={}", child.id());
    let ready = wait_until(Duration::from_secs(30), || {
        containers_labelled(&label).first().is_some_and(|id| {
            !wait_for_block || docker(&["top", id, "-o", "pid,args"]).contains("sleep 120")
        })
    });
    assert!(ready, "the container (or the block) never appeared");
    Command::new("kill")
        .args([format!("-{signal}"), child.id().to_string()])
        .status()
        .expect("kill");
    (child.wait_with_output().expect("wait"), label)
}

/// SIGINT to a sleeping `airlock exec`: it exits 130 with its containers already removed.
fn interrupt_exec(wait_for_block: bool) -> String {
    let home = Home::new();
    let (output, label) = signal_sleeping_exec(&home, "INT", wait_for_block);
    assert_eq!(output.status.code(), Some(130), "{}", stderr(&output));
    assert!(
        containers_labelled(&label).is_empty(),
        "removed before airlock exits"
    );
    stderr(&output)
}

#[test]
fn ctrl_c_while_a_block_runs_stops_it_and_removes_the_container() {
    let message = interrupt_exec(true);
    assert!(
        message.contains("the block was stopped and its container removed"),
        "{message}"
    );
}

#[test]
fn ctrl_c_during_start_up_leaves_no_container() {
    let message = interrupt_exec(false);
    assert!(message.contains("interrupted"), "{message}");
}

#[test]
fn the_init_command_runs_once_before_the_block() {
    let home = Home::new();
    let (result, output) = exec_json(
        &home,
        "sh",
        "cat /workspace/prepared; id -u",
        &[
            "-c",
            "sandbox.init_command=echo ready > /workspace/prepared",
        ],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let text = result["output"].as_str().unwrap_or("");
    assert!(text.starts_with("ready\n"), "{text}");

    let mut command = home.airlock();
    command.args([
        "-c",
        "sandbox.init_command=exit 3",
        "exec",
        "--lang",
        "sh",
        "-",
    ]);
    let output = run_with_stdin(command, "true");
    assert_eq!(output.status.code(), Some(125));
    assert!(
        stderr(&output).contains("init_command failed (exit code 3)"),
        "{}",
        stderr(&output)
    );
}

/// An image with nothing but a static busybox: no Python, no C library, no /etc.
fn busybox_image() -> String {
    const IMAGE: &str = "airlock-test-busybox:1";
    static MADE: std::sync::Mutex<bool> = std::sync::Mutex::new(false);
    let mut made = MADE.lock().unwrap();
    if *made || docker(&["image", "ls", "-q", IMAGE]).trim() != "" {
        return IMAGE.into();
    }
    let busybox = Path::new("/bin/busybox");
    assert!(
        busybox.exists(),
        "no /bin/busybox: scripts/test installs busybox-static"
    );
    let root = tempfile::tempdir().unwrap();
    let bin = root.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::fs::copy(busybox, bin.join("busybox")).unwrap();
    let applets = Command::new(busybox).arg("--list").output().unwrap();
    for applet in String::from_utf8_lossy(&applets.stdout).lines() {
        let link = bin.join(applet);
        if !link.exists() {
            std::os::unix::fs::symlink("busybox", link).unwrap();
        }
    }
    let import = format!(
        "tar -C {} -c . | docker import - {IMAGE}",
        root.path().display()
    );
    let status = Command::new("sh").args(["-c", &import]).status().unwrap();
    assert!(status.success(), "cannot import {IMAGE}");
    *made = true;
    IMAGE.into()
}

#[test]
fn the_supervisor_runs_blocks_in_an_image_without_python_or_libc() {
    let home = Home::new();
    let image = format!("sandbox.image={}", busybox_image());
    let shell = "echo $((6 * 7)); id -u; test -e /usr/bin/python3 || echo no-python; exit 6";
    let (result, output) = exec_json(&home, "sh", shell, &["-c", &image]);
    assert_eq!(
        result["output"],
        "42\n65534\nno-python\n",
        "{}",
        stderr(&output)
    );
    assert_eq!(result["exit_code"], 6);
    // A language the image lacks fails the way a shell would say it.
    let (result, _) = exec_json(&home, "python", "print(1)", &["-c", &image]);
    assert_eq!(result["exit_code"], 127, "{result}");
    let said = result["output"].as_str().unwrap_or("");
    assert!(said.contains("cannot run python3"), "{said}");
}

#[test]
fn a_block_cannot_hold_more_open_files_than_nofile() {
    let home = Home::new();
    let code = "import errno\nheld = []\ntry:\n    while len(held) < 100000:\n        \
                held.append(open('/dev/null'))\nexcept OSError as err:\n    \
                print(len(held), errno.errorcode[err.errno])\n";
    let (result, _) = exec_json(&home, "python", code, &["-c", "sandbox.nofile=200"]);
    let said = result["output"].as_str().unwrap_or("");
    let (count, code) = said.trim().split_once(' ').expect("count and errno");
    let count: usize = count.parse().expect("a count");
    assert!((150..200).contains(&count), "{said}");
    assert_eq!(code, "EMFILE");
}

#[test]
fn numbers_past_their_range_are_refused_by_name_without_a_panic() {
    let home = Home::new();
    let cases: [(&[&str], &str); 3] = [
        (
            &["--timeout", "18446744073709551615"],
            "sandbox.timeout_secs",
        ),
        (
            &["-c", "model.idle_timeout_secs=9223372036854775807"],
            "model.idle_timeout_secs",
        ),
        (&["-c", "sandbox.memory=2048GiB"], "sandbox.memory"),
    ];
    for (args, key) in cases {
        let mut command = home.airlock();
        command.args(["exec", "--lang", "sh"]).args(args).arg("-");
        let output = run_with_stdin(command, "echo should-not-run");
        let said = stderr(&output);
        assert_eq!(output.status.code(), Some(125), "{args:?}: {said}");
        assert!(
            said.contains(key) && !said.contains("panicked"),
            "{args:?}: {said}"
        );
        assert!(output.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn settings_that_would_share_docker_state_or_a_namespace_are_refused() {
    let home = Home::new();
    // /run/docker is the daemon's runtime directory wherever dockerd runs with defaults.
    let cases: [(&str, &str); 2] = [
        (
            "sandbox.network=container:0123456789ab",
            "another container's network",
        ),
        (
            "sandbox.extra_volumes=[\"/run/docker:/mnt:ro\"]",
            "containerd's state",
        ),
    ];
    for (setting, needle) in cases {
        let mut command = home.airlock();
        command.args(["exec", "--lang", "sh", "-c", setting, "-"]);
        let output = run_with_stdin(command, "echo should-not-run");
        let said = stderr(&output);
        assert_eq!(output.status.code(), Some(125), "{setting}: {said}");
        assert!(said.contains(needle), "{setting}: {said}");
        assert!(output.stdout.is_empty(), "{setting}");
    }
}

#[test]
fn a_weakened_sandbox_is_said_so_before_the_block_runs() {
    let home = Home::new();
    let loosen = [
        "-c",
        "sandbox.read_only_root=false",
        "-c",
        "sandbox.waive=[\"swap\"]",
    ];
    let (result, output) = exec_json(&home, "sh", "echo ran", &loosen);
    assert_eq!(result["output"], "ran\n");
    let said = stderr(&output);
    assert!(
        said.contains("the sandbox is weakened: writable root filesystem")
            && said.contains("the sandbox is weakened: waived protection swap"),
        "{said}"
    );
    let (_, quiet) = exec_json(&home, "sh", "echo ran", &[]);
    assert!(!stderr(&quiet).contains("weakened"), "{}", stderr(&quiet));
}

/// An image named `name`: the test image, labelled as an older airlock's build of the
/// offline image (the recipe was a version number then). Removed when dropped.
struct OutdatedBuild {
    name: String,
}

impl OutdatedBuild {
    fn new() -> Self {
        let name = format!("airlock-test-outdated:{}", std::process::id());
        let dockerfile = format!("FROM {}\nLABEL airlock.recipe=1\n", test_image());
        let mut command = Command::new("docker");
        command.args(["build", "-q", "-t", &name, "-"]);
        let output = run_with_stdin(command, &dockerfile);
        assert!(output.status.success(), "{}", stderr(&output));
        Self { name }
    }
}

impl Drop for OutdatedBuild {
    fn drop(&mut self) {
        docker(&["rmi", "-f", &self.name]);
    }
}

#[test]
fn an_offline_image_from_another_recipe_is_built_again_and_kept_when_that_fails() {
    let older = OutdatedBuild::new();
    let home = Home::new();
    // An mmdebstrap whose mirror is down, first on the PATH: the build is really started,
    // fails at once, and leaves nothing.
    let bin = home.dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let started = home.dir.path().join("mmdebstrap-started");
    std::fs::write(
        bin.join("mmdebstrap"),
        format!(
            "#!/bin/sh\ntouch {}\necho 'E: apt-get update failed: mirror unreachable' >&2\nexit 1\n",
            started.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        bin.join("mmdebstrap"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let airlock = |args: &[&str], stdin: &str| {
        let mut command = home.airlock();
        command.env("PATH", &path).args([
            "-c",
            &format!("sandbox.image={}", older.name),
            "-c",
            &format!("sandbox.offline_image={}", older.name),
            "-c",
            "sandbox.pull=never",
        ]);
        command.args(args);
        run_with_stdin(command, stdin)
    };

    let status = airlock(&["image", "status", "--json"], "");
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).expect("status JSON");
    assert_eq!(status["offline_image"]["outdated"], true, "{status}");
    let plan = status["plan"].as_str().unwrap();
    assert!(plan.contains("built again first"), "{plan}");

    let exec = airlock(
        &["exec", "--json", "--lang", "python", "-"],
        "print('ran in the older build')\n",
    );
    let said = stderr(&exec);
    assert!(exec.status.success(), "{said}");
    assert!(
        started.exists(),
        "no rebuild was attempted before the session: {said}"
    );
    assert!(
        said.contains(&format!(
            "{} was built by another version of airlock, with other packages or settings; building it again",
            older.name
        )),
        "{said}"
    );
    assert!(said.contains("so the older build is used"), "{said}");
    assert!(said.contains("mirror unreachable"), "{said}");
    let result: serde_json::Value = serde_json::from_slice(&exec.stdout).expect("exec JSON");
    assert_eq!(result["output"], "ran in the older build\n");
    // `image build` tries again without --force, since what is there is outdated.
    std::fs::remove_file(&started).unwrap();
    let build = airlock(&["image", "build"], "");
    assert_eq!(build.status.code(), Some(125), "{}", stderr(&build));
    assert!(
        started.exists(),
        "image build did not try: {}",
        stderr(&build)
    );
    assert!(
        !docker(&["image", "ls", "-q", &older.name])
            .trim()
            .is_empty(),
        "the older build is still there"
    );
}
