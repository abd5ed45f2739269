//! Attacks on the session container, each written the way hostile block code would try it on
//! these hosts (no Yama, no AppArmor: a process may read /proc/PID/mem of any process of its
//! own uid). Each asserts what airlock reports and what survives.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod common;

use std::time::Duration;

use airlock::config::SandboxConfig;
use airlock::sandbox::Sandbox;
use common::session::*;
use common::*;

/// Tries, on every other process it can see (its own uid's included, were there any), what a block would need to take over its
/// supervisor: its memory, environment, descriptors and maps, ptrace, signals, and writing to
/// its stdin (where airlock's requests arrive). Prints one line per success, then exits 7.
const PRYING: &str = r#"
import ctypes, os, signal
libc = ctypes.CDLL(None, use_errno=True)
me = os.getpid()
won = []
for pid in sorted(int(d) for d in os.listdir('/proc') if d.isdigit()):
    if pid == me:
        continue
    for name in ('mem', 'environ', 'maps', 'cmdline'):
        try:
            with open(f'/proc/{pid}/{name}', 'rb') as f:
                data = f.read(4096)
            if name != 'cmdline' and data:
                won.append(f'read {name} of {pid}')
        except OSError:
            pass
    try:
        os.listdir(f'/proc/{pid}/fd')
        won.append(f'listed fds of {pid}')
    except OSError:
        pass
    for fd in (0, 1):
        try:
            with open(f'/proc/{pid}/fd/{fd}', 'wb') as f:
                f.write(b'\x10\x00\x00\x00\x00')
            won.append(f'wrote to fd {fd} of {pid}')
        except OSError:
            pass
    if libc.ptrace(16, pid, None, None) == 0:  # PTRACE_ATTACH
        won.append(f'ptraced {pid}')
    for sig in (signal.SIGSTOP, signal.SIGKILL):
        try:
            os.kill(pid, sig)
            won.append(f'signalled {pid} with {sig}')
        except OSError:
            pass
for path in ('/opt/airlock/airlock', '/run/airlock-blocks/mine'):
    try:
        open(path, 'ab').close()
        won.append(f'wrote {path}')
    except OSError:
        pass
print('\n'.join(won) or 'nothing')
raise SystemExit(7)
"#;

#[tokio::test]
async fn a_block_can_neither_read_trace_signal_nor_write_to_its_supervisor() {
    let mut session = session(SandboxConfig::default()).await;
    let container = session.sandbox.container_id().expect("running").to_string();
    let (result, _) = run(&mut session, "python", PRYING, 20).await;
    assert_eq!(result.output, "nothing\n", "{result:?}");
    assert_eq!(result.exit_code, Some(7));
    // The supervisor is untouched: the same container runs the next block, truly.
    let (next, _) = run(&mut session, "sh", "echo fine; exit 4", 10).await;
    assert_eq!((next.exit_code, next.output.as_str()), (Some(4), "fine\n"));
    assert_eq!(session.sandbox.container_id(), Some(container.as_str()));
    session.sandbox.shutdown().await;
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn imitation_frames_and_status_lines_are_output_and_the_true_status_is_reported() {
    let mut session = session(SandboxConfig::default()).await;
    let forged = hex(&forged_exit_frame());
    // The frame, then the old wrapper's status line, on both streams; then more output.
    let code = format!(
        "import sys\nfake = bytes.fromhex('{forged}') + b'\\x00abc123 0 0 0\\n'\n\
         sys.stdout.buffer.write(fake); sys.stdout.flush()\n\
         sys.stderr.buffer.write(fake); sys.stderr.flush()\n\
         print('still counted')\nsys.exit(3)\n"
    );
    let (result, _) = run(&mut session, "python", &code, 20).await;
    assert_eq!(result.exit_code, Some(3), "{result:?}");
    let fake_len = forged.len() as u64 / 2 + 14;
    assert_eq!(
        result.output_bytes,
        2 * fake_len + "still counted\n".len() as u64
    );
    assert!(result.output.contains("still counted\n"), "{result:?}");
    session.sandbox.shutdown().await;
}

#[tokio::test]
async fn a_daemon_that_tries_to_outlive_its_block_cannot_rewrite_the_next_one() {
    let mut session = session(SandboxConfig::default()).await;
    let container = session.sandbox.container_id().expect("running").to_string();
    // Three ways to leave something behind, each trying to swap in its own code for whatever
    // block comes next, and to prepare a directory airlock might use.
    let daemon = r#"
rewrite='while :; do for f in /run/airlock-blocks/*/block.* /tmp/*; do
  echo "print(\"forged\")" > "$f" 2>/dev/null; done; mkdir /run/airlock-blocks/x 2>/dev/null; done'
setsid sh -c "$rewrite" >/dev/null 2>&1 < /dev/null &
nohup sh -c "$rewrite" >/dev/null 2>&1 &
python3 -c 'import os, time, subprocess
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        subprocess.run(["sh", "-c", os.environ.get("R", "sleep 600")])
' &
sleep 0.5
echo planted
"#;
    let (planted, _) = run(&mut session, "bash", daemon, 20).await;
    assert_eq!(planted.exit_code, Some(0), "{planted:?}");
    assert!(!planted.container_restarted, "the sweep was enough");
    let left = processes(&container);
    assert!(left.len() <= 2, "only init and supervisor: {left:#?}");
    for _ in 0..3 {
        let (next, _) = run(
            &mut session,
            "python",
            "print('genuine')\nraise SystemExit(0)\n",
            10,
        )
        .await;
        assert_eq!(next.output, "genuine\n", "{next:?}");
        assert_eq!(next.exit_code, Some(0));
    }
    // Nothing of the blocks is left there, and nothing planted: only the next block's
    // directory, the supervisor's, holding the FIFO its waiting interpreter opened.
    let listing = docker(&[
        "exec",
        &container,
        "find",
        "/run/airlock-blocks",
        "-mindepth",
        "1",
        "-printf",
        "%u %m %y %P\\n",
    ]);
    let entries: Vec<&str> = listing.lines().collect();
    assert_eq!(entries.len(), 2, "{listing}");
    let name = entries[0].split(' ').next_back().unwrap_or_default();
    assert!(name.starts_with("block-"), "{listing}");
    assert_eq!(entries[0], format!("root 711 d {name}"), "{listing}");
    assert_eq!(
        entries[1],
        format!("nobody 400 p {name}/block.py"),
        "{listing}"
    );
    session.sandbox.shutdown().await;
}

/// Signals the supervisor of `container`, as only Docker's root can.
fn kill_supervisor(container: &str, signal: &str) {
    docker(&[
        "exec",
        "-u",
        "0",
        container,
        "pkill",
        signal,
        "-f",
        "^/opt/airlock/airlock supervise",
    ]);
}

#[tokio::test]
async fn a_dead_supervisor_is_noticed_and_no_block_runs_without_one() {
    let mut session = session(SandboxConfig::default()).await;
    let first = session.sandbox.container_id().expect("running").to_string();
    kill_supervisor(&first, "-KILL");
    // Waited for without blocking the runtime, which is where airlock watches its line.
    let mut waited = Duration::ZERO;
    while !docker(&["ps", "-aq", "--filter", &format!("id={first}")])
        .trim()
        .is_empty()
    {
        assert!(waited < Duration::from_secs(10), "the container stayed");
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += Duration::from_millis(50);
    }
    // Between blocks: the next block goes to a new container and runs there.
    let (result, _) = run(&mut session, "sh", "echo ran; exit 2", 10).await;
    assert_eq!(
        (result.exit_code, result.output.as_str()),
        (Some(2), "ran\n")
    );
    let second = session.sandbox.container_id().expect("running").to_string();
    assert_ne!(second, first);
    assert!(result.container.len() >= 12 && second.starts_with(&result.container));
    let notices = session.notices.lock().expect("lock").join("\n");
    assert!(
        notices.contains("replacing the sandbox container: its supervisor is gone"),
        "{notices}"
    );

    // While a block runs: the block fails with the reason, and the session goes on.
    let killer = {
        let second = second.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(800));
            kill_supervisor(&second, "-KILL");
        })
    };
    let language = language("sh");
    let block = airlock::sandbox::BlockSpec {
        language: &language,
        code: "echo started; sleep 60",
        timeout: Duration::from_secs(120),
        cancel: None,
    };
    let started = std::time::Instant::now();
    let outcome = session.sandbox.run_block(block, &mut |_, _| {}).await;
    killer.join().unwrap();
    let err = outcome.expect_err("a block whose supervisor died has no result");
    assert!(err.to_string().contains("supervisor stopped"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(30));
    let (after, _) = run(&mut session, "sh", "echo third", 10).await;
    assert_eq!(after.output, "third\n");
    assert_ne!(session.sandbox.container_id(), Some(second.as_str()));
    session.sandbox.shutdown().await;
}

#[tokio::test]
async fn a_supervisor_that_stops_answering_is_replaced_at_airlocks_deadline() {
    let config = SandboxConfig {
        kill_grace_secs: 1,
        ..SandboxConfig::default()
    };
    let mut session = session(config).await;
    let first = session.sandbox.container_id().expect("running").to_string();
    let stopper = {
        let first = first.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(500));
            kill_supervisor(&first, "-STOP");
        })
    };
    let (result, _) = run(&mut session, "sh", "echo hi; sleep 60", 1).await;
    stopper.join().unwrap();
    assert!(result.timed_out && result.container_restarted, "{result:?}");
    assert!(result.duration_ms < 20_000, "{result:?}");
    assert_ne!(session.sandbox.container_id(), Some(first.as_str()));
    let (next, _) = run(&mut session, "sh", "echo next", 10).await;
    assert_eq!(next.output, "next\n");
    session.sandbox.shutdown().await;
}

#[tokio::test]
async fn signalling_every_process_reaches_only_the_blocks_own() {
    let mut session = session(SandboxConfig::default()).await;
    let container = session.sandbox.container_id().expect("running").to_string();
    let code = "sleep 100 &\nkill -STOP -1; kill -TERM -1; kill -9 -1\necho after\nexit 9\n";
    let (result, _) = run(&mut session, "sh", code, 10).await;
    assert_eq!(
        (result.exit_code, result.output.as_str()),
        (Some(9), "after\n")
    );
    assert!(!result.container_restarted, "{result:?}");
    let (next, _) = run(&mut session, "sh", "echo next", 10).await;
    assert_eq!(next.output, "next\n");
    assert_eq!(session.sandbox.container_id(), Some(container.as_str()));
    session.sandbox.shutdown().await;
}

#[tokio::test]
async fn nothing_a_block_hides_outside_the_workspace_reaches_the_next_one() {
    let mut session = session(SandboxConfig::default()).await;
    // Code that every later Python block would run first: a .pth in the user site under
    // HOME, a json.py beside where block files once lived, files in /dev/shm and HOME.
    let plant = r#"
site=$(python3 -c 'import site; print(site.getusersitepackages())')
mkdir -p "$site"
echo 'import sys; print("hijacked by .pth")' > "$site/evil.pth"
echo 'print("hijacked by json.py")' > /tmp/json.py
echo 'echo hijacked by bashrc' > /tmp/.bashrc
mkdir -p /tmp/deep/er && ln -s /workspace /tmp/deep/er/link
echo planted > /dev/shm/planted
echo planted > /var/tmp/planted
echo poisoned >> /tmp/.cache/matplotlib/fontlist-v330.json
echo planted > /tmp/.cache/matplotlib/extra
echo keep > /workspace/kept
echo done
"#;
    let (planted, _) = run(&mut session, "bash", plant, 20).await;
    assert_eq!(planted.output, "done\n", "{planted:?}");
    // HOME holds one thing a block did not make: a fresh copy of the image's font cache.
    let check = "import json, os\n\
                 home = sorted(os.path.relpath(os.path.join(d, f), '/tmp') \
                 for d, _, fs in os.walk('/tmp') for f in fs)\n\
                 cache = '/tmp/.cache/matplotlib/fontlist-v330.json'\n\
                 image = '/usr/local/share/airlock/matplotlib/fontlist-v330.json'\n\
                 fresh = open(cache).read() == open(image).read()\n\
                 print('clean', home, fresh, sorted(os.listdir('/dev/shm')), \
                 sorted(os.listdir('/var/tmp')), open('/workspace/kept').read().strip())\n";
    let (next, _) = run(&mut session, "python", check, 20).await;
    assert_eq!(
        next.output, "clean ['.cache/matplotlib/fontlist-v330.json'] True [] [] keep\n",
        "{next:?}"
    );
    let (shell, _) = run(&mut session, "bash", "echo $HOME; ls -A ~", 20).await;
    assert_eq!(shell.output, "/tmp\n.cache\n");
    session.sandbox.shutdown().await;
}

#[tokio::test]
async fn a_setuid_shell_left_in_the_workspace_is_defused_and_nobody_else_can_reach_it() {
    // The bounded workspace (the default) never copies a set-id bit to the host; the
    // directory mounted itself (workspace_limit = 0) has them cleared after the block.
    plant_setuid_shells(SandboxConfig::default(), None).await;
    let unbounded = SandboxConfig {
        workspace_limit: airlock::config::ByteSize(0),
        ..SandboxConfig::default()
    };
    plant_setuid_shells(unbounded, Some("setuid/setgid bit of 2 files")).await;
}

async fn plant_setuid_shells(config: SandboxConfig, notice: Option<&str>) {
    use std::os::unix::fs::PermissionsExt;
    let mut session = session(config).await;
    let plant = "cp /bin/sh /workspace/rootshell && chmod 6755 /workspace/rootshell\n\
                 mkdir -p /workspace/d && cp /bin/sh /workspace/d/deeper && chmod 4755 /workspace/d/deeper\n\
                 ln -s /bin/su /workspace/link\nstat -c %a /workspace/rootshell";
    let (planted, _) = run(&mut session, "sh", plant, 20).await;
    assert_eq!(planted.output, "6755\n", "{planted:?}");
    let workspace = session.workspace();
    for file in ["rootshell", "d/deeper"] {
        let mode = std::fs::metadata(workspace.join(file))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o7777,
            mode & 0o1777,
            "{file} kept a special bit: {mode:o}"
        );
    }
    let top = std::fs::metadata(&workspace).unwrap().permissions().mode();
    assert_eq!(
        top & 0o777,
        0o700,
        "the workspace is open to others: {top:o}"
    );
    let notices = session.notices.lock().expect("lock").join("\n");
    if let Some(notice) = notice {
        assert!(notices.contains(notice), "{notices}");
    }
    // The link was left alone, and so was what it points at.
    assert_eq!(
        std::fs::read_link(workspace.join("link")).unwrap(),
        std::path::Path::new("/bin/su")
    );
    let su = std::fs::metadata("/bin/su").map(|m| m.permissions().mode());
    assert!(su.is_err() || su.unwrap() & 0o4000 != 0);
    session.sandbox.shutdown().await;
}

#[tokio::test]
async fn processes_that_disguise_themselves_from_the_sweep_are_swept_all_the_same() {
    let mut session = session(SandboxConfig::default()).await;
    let container = session.sandbox.container_id().expect("running").to_string();
    // One renames itself to a byte that is not UTF-8, so its /proc status is not text;
    // another ends its main thread alone, so it looks like a zombie while a thread runs on.
    let hide = r#"
python3 -c "
open('/proc/self/comm', 'wb').write(b'\xff\xfe')
import time; time.sleep(300)" &
python3 -c "
import ctypes, threading, time
threading.Thread(target=time.sleep, args=(300,)).start()
time.sleep(0.2)
ctypes.CDLL(None).syscall(60, 0)" &
sleep 1
echo hidden
"#;
    let (hidden, _) = run(&mut session, "bash", hide, 20).await;
    assert_eq!(hidden.output, "hidden\n", "{hidden:?}");
    assert!(!hidden.container_restarted, "{hidden:?}");
    let left = processes(&container);
    assert!(left.len() <= 2, "only init and supervisor: {left:#?}");
    let (next, _) = run(&mut session, "sh", "echo next", 10).await;
    assert_eq!(next.output, "next\n");
    session.sandbox.shutdown().await;
}

#[tokio::test]
async fn a_flood_that_never_pauses_still_stops_at_its_time_limit() {
    let mut session = session(SandboxConfig::default()).await;
    let (result, _) = run(&mut session, "sh", "yes flood", 2).await;
    assert!(result.timed_out && result.truncated, "{result:?}");
    assert!(
        !result.container_restarted,
        "the supervisor, not airlock's backstop, stopped it: {result:?}"
    );
    assert!(result.duration_ms < 8_000, "{result:?}");
    session.sandbox.shutdown().await;
}

/// Output written right before the block ends, then its pipes hidden where no sweep reaches:
/// in flight in a socket that holds itself, so they stay open once every process is gone,
/// until the kernel collects that socket (at once on some kernels, later on others).
const HIDES_ITS_PIPES: &str = r#"
import array, os, socket, sys
sys.stdout.write('x' * 300000 + '\nkept\n'); sys.stdout.flush()
sys.stderr.write('said\n'); sys.stderr.flush()
a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
fds = array.array('i', [1, 2, a.fileno(), b.fileno()])
b.sendmsg([b'x'], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)])
os._exit(3)
"#;

#[tokio::test]
async fn output_written_just_before_the_end_is_all_reported_even_with_the_pipes_hidden() {
    let mut session = session(SandboxConfig::default()).await;
    let container = session.sandbox.container_id().expect("running").to_string();
    for _ in 0..3 {
        let started = std::time::Instant::now();
        let (result, _) = run(&mut session, "python", HIDES_ITS_PIPES, 20).await;
        assert_eq!(result.exit_code, Some(3), "{result:?}");
        assert_eq!(result.output_bytes, 300_000 + 6 + 5, "every byte came");
        assert!(result.output.ends_with("kept\n") || result.output.ends_with("said\n"));
        assert!(result.output.contains("said\n") && result.output.contains("kept\n"));
        // Given up on once empty, not waited for until airlock's backstop.
        assert!(started.elapsed() < Duration::from_secs(6), "{result:?}");
        assert!(!result.container_restarted, "{result:?}");
    }
    let (next, _) = run(&mut session, "sh", "echo fine; exit 4", 10).await;
    assert_eq!((next.exit_code, next.output.as_str()), (Some(4), "fine\n"));
    assert_eq!(session.sandbox.container_id(), Some(container.as_str()));
    session.sandbox.shutdown().await;
}

#[tokio::test]
async fn kernel_interfaces_a_block_has_no_use_for_are_refused() {
    let mut session = session(SandboxConfig::default()).await;
    // Each as a raw system call, so no library can hide whether the kernel said no.
    let code = r#"
import ctypes, os, subprocess, threading
libc = ctypes.CDLL(None, use_errno=True)
calls = {"io_uring_setup": (425, 8, 0), "bpf": (321, 0, 0, 0), "userfaultfd": (323, 0),
         "perf_event_open": (298, 0, 0, -1, -1, 0), "keyctl": (250, 0, 0, 0),
         "ptrace": (101, 16, 1, 0, 0), "unshare": (272, 0x10000000), "setns": (308, 0, 0),
         "clone newuser": (56, 0x10000000 | 17, 0, 0, 0, 0)}
for name, (number, *args) in calls.items():
    result = libc.syscall(number, *args)
    print(name, "refused" if result < 0 and ctypes.get_errno() == 1 else f"ALLOWED {result}")
threading.Thread(target=print, args=("threads work",)).start()
print(subprocess.run(["echo", "processes work"], capture_output=True, text=True).stdout, end="")
"#;
    let (result, _) = run(&mut session, "python", code, 20).await;
    for name in [
        "io_uring_setup",
        "bpf",
        "userfaultfd",
        "perf_event_open",
        "keyctl",
        "ptrace",
        "unshare",
        "setns",
        "clone newuser",
    ] {
        assert!(
            result.output.contains(&format!("{name} refused\n")),
            "{name}: {}",
            result.output
        );
    }
    assert!(
        result.output.contains("threads work\n") && result.output.contains("processes work\n"),
        "{}",
        result.output
    );
    session.sandbox.shutdown().await;
}
