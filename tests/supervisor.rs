//! The supervisor process as block code meets it: `airlock supervise`, run as root the way it
//! runs in the container, with blocks as an unprivileged uid of their own. Each test is an
//! attack, and asserts what the supervisor reports and what survives. Needs root.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use airlock::supervisor::frame::{Decoder, ExitReport, Frame, RunRequest};
use sha2::Digest;

/// A uid no account uses, one per test process, so parallel tests never sweep each other.
fn test_uid(offset: u32) -> u32 {
    61_000 + (std::process::id() % 900) * 4 + offset
}

struct Supervisor {
    child: Child,
    stdin: Option<ChildStdin>,
    frames: mpsc::Receiver<Frame>,
    uid: u32,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

/// One block's frames: its output by stream, and its end.
#[derive(Debug, Default)]
struct Answer {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    exit: Option<ExitReport>,
    fault: Option<String>,
}

impl Supervisor {
    /// `airlock supervise` on this host, as root, for an unused uid.
    fn start(offset: u32) -> Self {
        let uid = test_uid(offset);
        let scratch = tempfile::tempdir().unwrap();
        // Passable, not listable or writable, for the code's uid.
        std::fs::set_permissions(scratch.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
        let workdir = tempfile::tempdir().unwrap();
        std::os::unix::fs::chown(workdir.path(), Some(uid), Some(uid)).unwrap();
        std::fs::set_permissions(workdir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_airlock"));
        command
            .args([
                "supervise",
                "--uid",
                &uid.to_string(),
                "--gid",
                &uid.to_string(),
            ])
            .arg("--scratch")
            .arg(scratch.path())
            .arg("--workdir")
            .arg(workdir.path());
        Self::spawn(command, uid, (scratch, workdir))
    }

    /// The supervisor as `command` runs it, speaking frames on its stdin and stdout.
    fn spawn(mut command: Command, uid: u32, dirs: (tempfile::TempDir, tempfile::TempDir)) -> Self {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the supervisor starts");
        let mut stdout = child.stdout.take().unwrap();
        let (tx, frames) = mpsc::channel();
        std::thread::spawn(move || {
            let mut decoder = Decoder::default();
            let mut buffer = vec![0; 65536];
            while let Ok(read) = stdout.read(&mut buffer) {
                if read == 0 {
                    break;
                }
                for frame in decoder.push(&buffer[..read]).expect("well-formed frames") {
                    if tx.send(frame).is_err() {
                        return;
                    }
                }
            }
        });
        Self {
            stdin: child.stdin.take(),
            child,
            frames,
            uid,
            _dirs: dirs,
        }
    }

    fn send(&mut self, frame: Frame) {
        let mut bytes = Vec::new();
        frame.encode(&mut bytes);
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(&bytes).unwrap();
        stdin.flush().unwrap();
    }

    fn run_sh(&mut self, code: &str, timeout: Duration) {
        self.run(&["sh"], "sh", code.as_bytes(), timeout);
    }

    fn run(&mut self, argv: &[&str], extension: &str, code: &[u8], timeout: Duration) {
        self.run_with_path("/usr/bin:/bin", argv, extension, code, timeout);
    }

    fn run_with_path(
        &mut self,
        path: &str,
        argv: &[&str],
        extension: &str,
        code: &[u8],
        timeout: Duration,
    ) {
        let request = RunRequest {
            argv: argv.iter().map(|word| word.to_string()).collect(),
            extension: extension.into(),
            env: vec![("PATH".into(), path.into())],
            timeout_ms: timeout.as_millis() as u64,
            grace_ms: 1000,
            start_ahead: argv == ["python3"],
        };
        self.send(Frame::Run(request, code.to_vec()));
    }

    /// Frames until the block's end (or a fault), within 30 s.
    fn answer(&self) -> Answer {
        let mut answer = Answer::default();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self
                .frames
                .recv_timeout(left)
                .expect("the supervisor answers")
            {
                Frame::Stdout(bytes) => answer.stdout.extend(bytes),
                Frame::Stderr(bytes) => answer.stderr.extend(bytes),
                Frame::Exit(report) => {
                    answer.exit = Some(report);
                    return answer;
                }
                Frame::Fault(why) => {
                    answer.fault = Some(why);
                    return answer;
                }
                // Its greeting, before the first block.
                Frame::Hello(_) => {}
                other => panic!("the supervisor sent a request frame: {other:?}"),
            }
        }
    }

    fn processes_of_uid(&self) -> usize {
        let uid = self.uid.to_string();
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter(|entry| {
                let status = entry.path().join("status");
                let Ok(text) = std::fs::read_to_string(status) else {
                    return false;
                };
                let zombie = text
                    .lines()
                    .any(|l| l.starts_with("State:") && l.contains('Z'));
                !zombie
                    && text.lines().any(|l| {
                        l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some(uid.as_str())
                    })
            })
            .count()
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

const NO_TIME_LIMIT: Duration = Duration::from_secs(20);

#[test]
fn a_block_that_prints_a_forged_exit_frame_gets_its_true_status_and_all_its_output() {
    let mut supervisor = Supervisor::start(0);
    // An exit frame saying 0, as raw bytes on stdout, then more output, then exit 3.
    let forged = common::forged_exit_frame();
    let octal: String = forged.iter().map(|b| format!("\\{b:03o}")).collect();
    supervisor.run_sh(
        &format!("printf '{octal}'; echo after-the-forgery; echo on-stderr >&2; exit 3"),
        NO_TIME_LIMIT,
    );
    let answer = supervisor.answer();
    let exit = answer.exit.expect("an exit report");
    assert_eq!(exit.exit_code, Some(3));
    let mut expected = forged.clone();
    expected.extend_from_slice(b"after-the-forgery\n");
    assert_eq!(answer.stdout, expected, "every byte arrives as output");
    assert_eq!(answer.stderr, b"on-stderr\n");
}

#[test]
fn the_block_can_neither_read_nor_signal_the_supervisor() {
    let mut supervisor = Supervisor::start(1);
    let pid = supervisor.child.id();
    supervisor.run_sh(
        &format!(
            "id -u; for f in mem environ maps; do cat /proc/{pid}/$f >/dev/null 2>&1 && echo read-$f; done; \
             ls /proc/{pid}/fd >/dev/null 2>&1 && echo listed-fd; \
             kill -9 {pid} 2>/dev/null && echo killed; kill -STOP {pid} 2>/dev/null && echo stopped; \
             kill -9 $PPID 2>/dev/null && echo killed-parent; echo done"
        ),
        NO_TIME_LIMIT,
    );
    let answer = supervisor.answer();
    let said = String::from_utf8_lossy(&answer.stdout);
    assert_eq!(said, format!("{}\ndone\n", supervisor.uid), "{said}");
    // And it still serves the next block.
    supervisor.run_sh("echo still-here", NO_TIME_LIMIT);
    assert_eq!(supervisor.answer().stdout, b"still-here\n");
}

#[test]
fn a_daemon_left_behind_is_swept_and_cannot_touch_the_next_block() {
    let mut supervisor = Supervisor::start(2);
    // A setsid daemon that tries to rewrite whatever the next block is, forever.
    supervisor.run_sh(
        "setsid sh -c 'while true; do for f in ../block-*/block.sh; do echo \"echo forged\" > \"$f\"; done 2>/dev/null; sleep 0.01; done' >/dev/null 2>&1 & \
         (sleep 300 &) ; echo planted",
        NO_TIME_LIMIT,
    );
    let first = supervisor.answer();
    assert_eq!(first.stdout, b"planted\n");
    let exit = first.exit.unwrap();
    assert_eq!(exit.exit_code, Some(0));
    assert!(exit.survivors.is_empty(), "survivors: {:?}", exit.survivors);
    assert_eq!(
        supervisor.processes_of_uid(),
        0,
        "a process of the block lives on"
    );
    supervisor.run_sh("echo the-approved-code", NO_TIME_LIMIT);
    assert_eq!(supervisor.answer().stdout, b"the-approved-code\n");
}

#[test]
fn a_block_past_its_time_limit_is_stopped_with_what_it_started() {
    let mut supervisor = Supervisor::start(3);
    supervisor.run_sh(
        "(sleep 300 &); echo begun; sleep 300",
        Duration::from_millis(500),
    );
    let answer = supervisor.answer();
    assert_eq!(answer.stdout, b"begun\n");
    let exit = answer.exit.expect("an exit report");
    assert!(exit.timed_out, "{exit:?}");
    assert_eq!(exit.exit_code, None);
    assert!(exit.survivors.is_empty(), "survivors: {:?}", exit.survivors);
    assert_eq!(supervisor.processes_of_uid(), 0);
}

#[test]
fn a_cancel_stops_the_block_and_a_flood_after_a_fake_marker_is_all_counted() {
    let mut supervisor = Supervisor::start(0);
    supervisor.run_sh("echo waiting; sleep 60", NO_TIME_LIMIT);
    std::thread::sleep(Duration::from_millis(300));
    supervisor.send(Frame::Cancel);
    let cancelled = supervisor.answer();
    assert_eq!(cancelled.stdout, b"waiting\n");
    assert!(cancelled.exit.unwrap().cancelled);

    supervisor.run_sh(
        "printf '\\003\\000\\000\\000\\002{}'; head -c 20000000 /dev/zero",
        NO_TIME_LIMIT,
    );
    let flood = supervisor.answer();
    assert_eq!(flood.exit.unwrap().exit_code, Some(0));
    assert_eq!(flood.stdout.len(), 7 + 20_000_000);
}

#[test]
fn when_airlock_goes_away_the_supervisor_sweeps_and_exits() {
    let mut supervisor = Supervisor::start(1);
    supervisor.run_sh("(sleep 300 &); sleep 300", NO_TIME_LIMIT);
    std::thread::sleep(Duration::from_millis(300));
    drop(supervisor.stdin.take());
    let exited = common::wait_until(Duration::from_secs(10), || {
        matches!(supervisor.child.try_wait(), Ok(Some(_)))
    });
    assert!(exited, "the supervisor outlived its airlock");
    assert_eq!(supervisor.processes_of_uid(), 0);
}

/// The processes of `uid` with their command lines.
fn command_lines_of(uid: u32) -> Vec<String> {
    let uid = uid.to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|entry| {
            std::fs::read_to_string(entry.path().join("status")).is_ok_and(|text| {
                text.lines().any(|l| {
                    l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some(uid.as_str())
                })
            })
        })
        .filter_map(|entry| std::fs::read(entry.path().join("cmdline")).ok())
        .map(|line| String::from_utf8_lossy(&line).replace('\0', " "))
        .collect()
}

#[test]
fn the_next_python_waits_started_and_runs_exactly_the_next_code_as_its_script() {
    let mut supervisor = Supervisor::start(0);
    // A daemon that tries to reach whatever comes next: swept before the next interpreter.
    supervisor.run(
        &["python3"],
        "py",
        b"import os, subprocess\nsubprocess.Popen(['setsid', 'sh', '-c', 'while :; do for f in ../block-*/block.py; do echo \"print(0)\" > \"$f\"; done 2>/dev/null; sleep 0.005; done'])\nprint('planted')\n",
        NO_TIME_LIMIT,
    );
    let first = supervisor.answer();
    assert_eq!(first.stdout, b"planted\n", "{first:?}");
    assert!(first.exit.unwrap().survivors.is_empty());
    // Now one process of the uid is left: the next block's interpreter, on a FIFO, alone.
    let waiting = common::wait_until(Duration::from_secs(5), || {
        let lines = command_lines_of(supervisor.uid);
        lines.len() == 1 && lines[0].starts_with("python3 ") && lines[0].contains("/block.py")
    });
    assert!(waiting, "{:?}", command_lines_of(supervisor.uid));
    std::thread::sleep(Duration::from_millis(300));
    let code = b"import sys, time\nprint(sys.argv[0] == __file__, sys.path[0] == __file__.rsplit('/', 1)[0])\nprint(open(__file__).read().count('time.sleep'))\ntime.sleep(0.6)\ndef fails():\n    raise ValueError('shown with its line')\nfails()\n";
    // Its time limit is the block's own: the wait before does not count.
    supervisor.run(&["python3"], "py", code, Duration::from_secs(2));
    let second = supervisor.answer();
    let exit = second.exit.clone().expect("an exit report");
    assert_eq!(exit.exit_code, Some(1), "{second:?}");
    assert!(!exit.timed_out);
    assert_eq!(second.stdout, b"True True\n2\n");
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains("raise ValueError('shown with its line')"),
        "{stderr}"
    );
    assert!(stderr.contains("/block.py\", line 6, in fails"), "{stderr}");
}

#[test]
fn a_waiting_python_gets_code_larger_than_its_pipe_holds_whole_and_exactly() {
    let mut supervisor = Supervisor::start(2);
    supervisor.run(&["python3"], "py", b"print(1)\n", NO_TIME_LIMIT);
    assert_eq!(supervisor.answer().stdout, b"1\n");
    // Several times what a pipe takes at once: the rest goes in while the interpreter reads.
    let filler: String = (0..300_000)
        .map(|n| char::from(b'a' + (n % 26) as u8))
        .collect();
    let code = format!(
        "import hashlib\nx = '{filler}'\nprint(len(x), hashlib.sha256(x.encode()).hexdigest())\n"
    );
    supervisor.run(&["python3"], "py", code.as_bytes(), NO_TIME_LIMIT);
    let answer = supervisor.answer();
    let digest = sha2::Sha256::digest(filler.as_bytes());
    let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
    let expected = format!("300000 {hex}\n");
    assert_eq!(
        String::from_utf8_lossy(&answer.stdout),
        expected,
        "{answer:?}"
    );
}

#[test]
fn a_waiting_python_gives_way_to_another_interpreter_and_an_encoding_it_cannot_take() {
    let mut supervisor = Supervisor::start(1);
    supervisor.run(&["python3"], "py", b"print(1)\n", NO_TIME_LIMIT);
    assert_eq!(supervisor.answer().stdout, b"1\n");
    // A shell block: the waiting python is killed before it starts.
    supervisor.run_sh(
        "ps -o comm= -u \"$(id -u)\" | sort | tr '\\n' ' '",
        NO_TIME_LIMIT,
    );
    let listed = supervisor.answer();
    assert_eq!(listed.stdout, b"ps sh sort tr ", "{listed:?}");
    // Latin-1 source, declared so: read from a file, as CPython reads such a source twice.
    supervisor.run(&["python3"], "py", b"print(1)\n", NO_TIME_LIMIT);
    supervisor.answer();
    let latin = b"# -*- coding: latin-1 -*-\nprint('caf\xe9'.encode('utf-8'))\n";
    supervisor.run(&["python3"], "py", latin, NO_TIME_LIMIT);
    let answer = supervisor.answer();
    assert_eq!(answer.stdout, b"b'caf\\xc3\\xa9'\n", "{answer:?}");
    drop(supervisor.stdin.take());
    let exited = common::wait_until(Duration::from_secs(10), || {
        matches!(supervisor.child.try_wait(), Ok(Some(_)))
    });
    assert!(exited);
    assert_eq!(
        supervisor.processes_of_uid(),
        0,
        "the waiting python outlived airlock"
    );
}

/// `airlock supervise` in a container of the sandbox image, with an init as sessions have it
/// (to reap what the sweep kills): root, but with only the capabilities it needs, no new
/// privileges, a read-only root, no network, 256 pids.
fn in_container() -> Supervisor {
    // Built static (.cargo/config.toml), so it runs inside any image.
    let binary = env!("CARGO_BIN_EXE_airlock");
    let mut command = Command::new("docker");
    command
        .args([
            "run",
            "-i",
            "--rm",
            "--init",
            "--network",
            "none",
            "--read-only",
        ])
        .args(["--user", "0", "--cap-drop", "ALL"])
        .args([
            "--cap-add",
            "SETUID",
            "--cap-add",
            "SETGID",
            "--cap-add",
            "KILL",
        ])
        .args(["--cap-add", "CHOWN", "--cap-add", "DAC_OVERRIDE"])
        .args(["--security-opt", "no-new-privileges"])
        .args(["--pids-limit", "256", "--memory", "512m"])
        .args([
            // The working directory, as /workspace is in a session: programs may run from it.
            "--tmpfs",
            "/tmp:mode=1777,exec",
            "--tmpfs",
            "/run/blocks:mode=0711",
        ])
        .arg("-v")
        .arg(format!("{binary}:/opt/airlock/airlock:ro"))
        .arg(common::test_image())
        .args([
            "/opt/airlock/airlock",
            "supervise",
            "--uid",
            "65534",
            "--gid",
            "65534",
        ])
        .args(["--scratch", "/run/blocks", "--workdir", "/tmp"]);
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    Supervisor::spawn(command, 65534, dirs)
}

#[test]
fn in_the_sandbox_image_a_forged_status_fails_and_a_fork_bomb_leaves_nothing() {
    let mut supervisor = in_container();
    // Python writes an exit frame that says 0, then exits 3.
    let forged = common::forged_exit_frame();
    let code = format!(
        "import sys\nsys.stdout.buffer.write(bytes({forged:?}))\nprint('after')\nsys.exit(3)\n"
    );
    supervisor.run(&["python3"], "py", code.as_bytes(), NO_TIME_LIMIT);
    let answer = supervisor.answer();
    assert_eq!(
        answer.exit.as_ref().and_then(|e| e.exit_code),
        Some(3),
        "{answer:?}"
    );
    let mut expected = forged.clone();
    expected.extend_from_slice(b"after\n");
    assert_eq!(answer.stdout, expected);

    // Inside the container the pids limit bounds the bomb, and the sweep outruns it. The
    // shell becomes `sleep` without a fork of its own: on a busy machine the bomb can fill
    // the pids limit first, and a shell that cannot fork exits 2 before its time runs out.
    let bomb = b"bomb() { bomb & bomb & wait; }; bomb & exec sleep 30";
    supervisor.run(&["sh"], "sh", bomb, Duration::from_millis(1500));
    let exit = supervisor.answer().exit.expect("an exit report");
    assert!(exit.timed_out, "{exit:?}");
    assert!(exit.survivors.is_empty(), "survivors: {:?}", exit.survivors);
    // The next block is alone: its own shell is the only process of the uid.
    supervisor.run(&["sh"], "sh", b"pgrep -c -u 65534", NO_TIME_LIMIT);
    assert_eq!(supervisor.answer().stdout, b"1\n");
}

#[test]
fn in_the_sandbox_image_an_interpreter_found_once_runs_as_named_and_a_planted_one_is_found() {
    let mut supervisor = in_container();
    // Found on the read-only root: run from there, under the name the block gave.
    let code = b"import sys\nprint(sys.orig_argv[0], sys.executable)\n";
    for _ in 0..2 {
        supervisor.run(&["python3"], "py", code, NO_TIME_LIMIT);
        assert_eq!(supervisor.answer().stdout, b"python3 /usr/bin/python3\n");
    }
    // A PATH through a writable directory is searched at every block: what a block plants
    // there is what the next one runs, as a shell would find it.
    let path = "/tmp/bin:/usr/bin:/bin";
    supervisor.run_with_path(path, &["python3"], "py", b"print('real')\n", NO_TIME_LIMIT);
    assert_eq!(supervisor.answer().stdout, b"real\n");
    let plant = b"mkdir -p /tmp/bin && printf '#!/bin/sh\\necho planted\\n' > /tmp/bin/python3 && chmod +x /tmp/bin/python3";
    supervisor.run_with_path(path, &["sh"], "sh", plant, NO_TIME_LIMIT);
    let planted = supervisor.answer();
    assert_eq!(
        planted.exit.as_ref().and_then(|e| e.exit_code),
        Some(0),
        "{planted:?}"
    );
    supervisor.run_with_path(path, &["python3"], "py", b"print('real')\n", NO_TIME_LIMIT);
    assert_eq!(supervisor.answer().stdout, b"planted\n");
}
