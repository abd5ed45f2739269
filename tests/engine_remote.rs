//! Sandboxes on an engine that is not this machine's socket: the Docker daemon behind TLS on
//! loopback, the same daemon over ssh, a Docker context made by the docker CLI. There the
//! workspace and the supervisor are volumes, filled and read through the archive API; each
//! test runs blocks there end to end and checks that the host copy, the history and the
//! cleanup come out as with the local daemon.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Output};

use common::demo::{assert_demo_ran, demo};
use common::remote::{SshFront, TlsFront};
use common::{Home, docker, run_with_stdin};
use serde_json::Value;

/// `airlock exec --json` of a shell block on `engine`.
fn exec(home: &Home, engine: &[(&str, String)], args: &[String], code: &str) -> Output {
    let mut command = home.airlock();
    for (name, value) in engine {
        command.env(name, value);
    }
    command
        .args(args)
        .args(["exec", "--json", "--lang", "sh", "-"]);
    run_with_stdin(command, code)
}

/// What a block sees of its mounts: /workspace's backing and the supervisor both come from
/// volumes, no host directory is mounted.
fn assert_mounts_are_volumes(home: &Home, engine: &[(&str, String)], args: &[String]) {
    let output = exec(
        home,
        engine,
        args,
        "grep -E ' /run/airlock-host/workspace | /opt/airlock ' /proc/self/mountinfo",
    );
    let result: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|_| {
        panic!("exec: {}", String::from_utf8_lossy(&output.stderr));
    });
    let mounts = result["output"].as_str().unwrap_or("");
    assert!(
        mounts.contains("/volumes/airlock-workspace-")
            && mounts.contains("/volumes/airlock-supervisor-"),
        "{mounts}"
    );
    assert_eq!(mounts.lines().count(), 2, "{mounts}");
}

#[test]
fn a_session_runs_on_a_daemon_behind_tls_with_its_workspace_in_a_volume() {
    let front = TlsFront::start();
    let home = Home::new();
    let engine = [
        ("DOCKER_HOST", front.host()),
        ("DOCKER_TLS_VERIFY", "1".to_string()),
        ("DOCKER_CERT_PATH", front.cert_path().display().to_string()),
    ];
    let (events, output) = demo(&home, &engine, &[]);
    assert_demo_ran(&home, &events, &output, Some(&front.host()));
    assert_mounts_are_volumes(&home, &engine, &[]);

    // A workspace that already holds files (as a resumed session's does) fills the volume,
    // and what the block changes comes back to it.
    let named = tempfile::tempdir().expect("tempdir");
    std::fs::write(named.path().join("notes.txt"), "from before\n").unwrap();
    let workspace = vec![
        "-c".to_string(),
        format!("sandbox.workspace={}", named.path().display()),
    ];
    let output = exec(
        &home,
        &engine,
        &workspace,
        "cat notes.txt; echo added >> notes.txt",
    );
    let result: Value = serde_json::from_slice(&output.stdout).expect("a JSON result");
    assert_eq!(result["output"], "from before\n", "{result}");
    assert_eq!(
        std::fs::read_to_string(named.path().join("notes.txt")).unwrap(),
        "from before\nadded\n"
    );

    // Without the client's certificate the daemon is not reached at all.
    let stranger = tempfile::tempdir().expect("tempdir");
    std::fs::copy(
        front.cert_path().join("ca.pem"),
        stranger.path().join("ca.pem"),
    )
    .unwrap();
    let without = [
        engine[0].clone(),
        engine[1].clone(),
        ("DOCKER_CERT_PATH", stranger.path().display().to_string()),
    ];
    let refused = exec(&home, &without, &[], "echo must not run");
    assert_eq!(refused.status.code(), Some(125));
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("cert.pem, which is not there"), "{said}");
}

#[test]
fn the_same_daemon_over_ssh_and_a_wrong_key_is_told() {
    let front = SshFront::start();
    let home = Home::new();
    let args = |key: &str| {
        vec![
            "-c".to_string(),
            format!("sandbox.docker_host={}", front.host()),
            "-c".to_string(),
            format!("sandbox.ssh_command={}", front.ssh_command(key)),
        ]
    };
    let (events, output) = demo(&home, &[], &args("client_key"));
    assert_demo_ran(&home, &events, &output, Some(&front.host()));
    assert_mounts_are_volumes(&home, &[], &args("client_key"));

    let refused = exec(&home, &[], &args("host_key"), "echo must not run");
    assert_eq!(refused.status.code(), Some(125), "{}", front.log());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.contains("ssh said:") && said.contains("Permission denied"),
        "{said}"
    );
}

#[test]
fn the_current_docker_context_is_followed_when_docker_host_is_unset() {
    let front = TlsFront::start();
    let config = tempfile::tempdir().expect("tempdir");
    let cert = |file: &str| front.cert_path().join(file).display().to_string();
    let endpoint = format!(
        "host={},ca={},cert={},key={}",
        front.host(),
        cert("ca.pem"),
        cert("cert.pem"),
        cert("key.pem")
    );
    for args in [
        vec![
            "context",
            "create",
            "remote-box",
            "--docker",
            endpoint.as_str(),
        ],
        vec!["context", "use", "remote-box"],
    ] {
        let made = Command::new("docker")
            .env("DOCKER_CONFIG", config.path())
            .args(&args)
            .output()
            .expect("docker context");
        assert!(
            made.status.success(),
            "{}",
            String::from_utf8_lossy(&made.stderr)
        );
    }
    let home = Home::new();
    let engine = [("DOCKER_CONFIG", config.path().display().to_string())];
    let mut doctor = home.airlock();
    doctor.env("DOCKER_CONFIG", config.path()).arg("doctor");
    let doctor = doctor.output().expect("doctor");
    let said = String::from_utf8_lossy(&doctor.stdout);
    assert!(
        doctor.status.success(),
        "{said}\n{}",
        String::from_utf8_lossy(&doctor.stderr)
    );
    assert!(said.contains("Docker context \"remote-box\""), "{said}");
    assert_mounts_are_volumes(&home, &engine, &[]);
}

#[test]
fn plain_tcp_to_a_host_that_is_not_loopback_is_refused_before_any_connection() {
    let home = Home::new();
    let mut command = home.airlock();
    command
        .env("DOCKER_HOST", "tcp://192.0.2.1:2375")
        .args(["exec", "--lang", "sh", "-"]);
    let output = run_with_stdin(command, "echo must not run");
    assert_eq!(output.status.code(), Some(125));
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(
        said.contains("plain TCP") && said.contains("sandbox.allow_insecure_tcp = true"),
        "{said}"
    );
    // Allowed, it is tried: TEST-NET-1 answers nobody, so the error is now about reaching it.
    let mut allowed = home.airlock();
    allowed.env("DOCKER_HOST", "tcp://192.0.2.1:2375").args([
        "-c",
        "sandbox.allow_insecure_tcp=true",
        "exec",
        "--lang",
        "sh",
        "-",
    ]);
    let output = run_with_stdin(allowed, "echo must not run");
    assert_eq!(output.status.code(), Some(125));
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(
        said.contains("cannot reach the Docker daemon at tcp://192.0.2.1:2375"),
        "{said}"
    );
}

/// A session on the local daemon with its workspace in a volume of `limit` bytes.
async fn volume_session(limit: airlock::config::ByteSize) -> common::session::Session {
    let config = airlock::config::SandboxConfig {
        workspace_mode: airlock::config::WorkspaceMode::Volume,
        workspace_limit: limit,
        ..Default::default()
    };
    common::session::session(config).await
}

/// The volume and the host copy between runs: a block's files and removals reach the host
/// copy, and the operator's edits there reach the next block.
#[tokio::test]
async fn the_workspace_volume_and_the_host_copy_follow_each_other_between_runs() {
    use airlock::sandbox::Sandbox;
    use common::session::run;

    let mut session =
        volume_session(airlock::config::SandboxConfig::default().workspace_limit).await;
    let host = session.workspace();
    let (made, _) = run(
        &mut session,
        "sh",
        "echo one > a.txt; mkdir d; echo x > d/x",
        30,
    )
    .await;
    assert_eq!(made.exit_code, Some(0), "{}", made.output);
    assert_eq!(
        std::fs::read_to_string(host.join("a.txt")).unwrap(),
        "one\n"
    );
    assert_eq!(std::fs::read_to_string(host.join("d/x")).unwrap(), "x\n");

    std::fs::write(host.join("a.txt"), "edited\n").unwrap();
    std::fs::write(host.join("b.txt"), "new\n").unwrap();
    let (read, _) = run(&mut session, "sh", "cat a.txt b.txt; rm -r d", 30).await;
    assert_eq!(read.output, "edited\nnew\n");
    assert!(
        !host.join("d").exists(),
        "the block's removal reached the host copy"
    );
    let removed: Vec<&str> = read
        .files
        .iter()
        .filter(|f| f.change == airlock::protocol::FileChangeKind::Removed)
        .map(|f| f.path.as_str())
        .collect();
    assert_eq!(removed, ["d/x"], "{:?}", read.files);

    let volumes = || docker(&["volume", "ls", "-q", "--filter", "label=airlock.owner"]);
    let ours = |listed: String| {
        listed
            .lines()
            .filter(|name| name.contains(&format!("-{}", std::process::id())))
            .count()
    };
    assert_eq!(ours(volumes()), 1, "the session's workspace volume exists");
    session.sandbox.shutdown().await;
    assert_eq!(ours(volumes()), 0, "and goes with the session");
}

/// A sparse file costs /workspace nothing but comes out of the archive API at its full size:
/// the copy-back takes no more than the workspace's limit onto this machine, and then
/// writes nothing at all, as it says: not even the small files that came before it.
#[tokio::test]
async fn a_sparse_file_cannot_fill_this_machine_through_the_copy_back() {
    use airlock::sandbox::Sandbox;
    use common::session::run;

    let mut session = volume_session(airlock::config::ByteSize::mib(64)).await;
    let host = session.workspace();
    let (made, _) = run(
        &mut session,
        "sh",
        "for i in 1 2 3 4 5; do echo $i > a$i; done; truncate -s 4G huge; du -k huge\n\
         for i in 1 2 3 4 5; do echo $i > z$i; done",
        30,
    )
    .await;
    assert_eq!(made.exit_code, Some(0), "{}", made.output);
    assert_eq!(
        made.output, "0\thuge\n",
        "the file holds no block in /workspace"
    );
    let notices = session.notices.lock().unwrap().join("\n");
    assert!(
        notices.contains("larger than sandbox.workspace_limit")
            && notices.contains("the host copy keeps its earlier state"),
        "{notices}"
    );
    let reached: Vec<_> = std::fs::read_dir(&host)
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert!(reached.is_empty(), "{reached:?} reached the host");
    let on_disk: u64 = walk_sizes(&host);
    assert!(on_disk < 64 << 20, "the host copy holds {on_disk} bytes");
    session.sandbox.shutdown().await;
}

/// A directory the operator made immutable on the host: the block's file in it cannot be
/// written there, and the notice names exactly that file; everything else arrives.
#[tokio::test]
async fn a_copy_back_that_cannot_write_one_entry_names_it_and_brings_the_rest() {
    use airlock::sandbox::Sandbox;
    use common::session::run;

    struct Immutable(std::path::PathBuf);
    impl Drop for Immutable {
        fn drop(&mut self) {
            let _ = Command::new("chattr").arg("-i").arg(&self.0).status();
        }
    }
    let mut session =
        volume_session(airlock::config::SandboxConfig::default().workspace_limit).await;
    let host = session.workspace();
    std::fs::create_dir(host.join("locked")).unwrap();
    let (seen, _) = run(&mut session, "sh", "ls -d locked", 30).await;
    assert_eq!(seen.output, "locked\n", "{seen:?}");
    let locked = Immutable(host.join("locked"));
    let made = Command::new("chattr").arg("+i").arg(&locked.0).status();
    assert!(
        made.is_ok_and(|status| status.success()),
        "chattr +i needs root (CAP_LINUX_IMMUTABLE)"
    );
    let (wrote, _) = run(
        &mut session,
        "sh",
        "echo ok > ok.txt; echo no > locked/new.txt; echo also > also.txt",
        30,
    )
    .await;
    assert_eq!(wrote.exit_code, Some(0), "{wrote:?}");
    let notices = session.notices.lock().unwrap().join("\n");
    assert!(
        notices.contains("could not bring to")
            && notices.contains(": locked/new.txt (")
            && notices.contains("everything else the block changed is there"),
        "{notices}"
    );
    assert!(
        !notices.contains("ok.txt") && !notices.contains("also.txt"),
        "{notices}"
    );
    drop(locked);
    assert_eq!(
        std::fs::read_to_string(host.join("ok.txt")).unwrap(),
        "ok\n"
    );
    assert_eq!(
        std::fs::read_to_string(host.join("also.txt")).unwrap(),
        "also\n"
    );
    assert!(!host.join("locked/new.txt").exists());
    session.sandbox.shutdown().await;
}

/// Runs `code` (which prints `ready` and then sleeps) and, once it is ready, does what the
/// operator does on the host meanwhile.
async fn run_while_the_operator_works(
    session: &mut common::session::Session,
    code: &str,
    mut work: impl FnMut() + Send,
) -> airlock::protocol::ExecResult {
    use airlock::sandbox::{BlockSpec, Sandbox};
    let language = common::session::language("sh");
    let block = BlockSpec {
        language: &language,
        code,
        timeout: std::time::Duration::from_secs(30),
        cancel: None,
    };
    let mut worked = false;
    let mut operator = |_: airlock::protocol::Stream, text: &str| {
        if text.contains("ready") && !worked {
            work();
            worked = true;
        }
    };
    let ran = session.sandbox.run_block(block, &mut operator).await;
    assert!(worked, "the block said it was ready");
    ran.expect("block runs")
}

/// The operator works in the host copy while a block runs whose changes force a whole-tree
/// copy back (300 files and a hard link): the file they add and their edit survive, the
/// notice names the file both changed, and the block's version stays in the volume, where
/// the next block reads it, along with the operator's new file. A run whose few paths are
/// copied back one by one obeys the same rule.
#[tokio::test]
async fn the_operators_work_during_a_run_survives_a_whole_tree_copy_back() {
    use airlock::sandbox::Sandbox;
    use common::session::run;
    use std::os::unix::fs::MetadataExt;

    let mut session =
        volume_session(airlock::config::SandboxConfig::default().workspace_limit).await;
    let host = session.workspace();
    std::fs::write(host.join("notes.txt"), "before\n").unwrap();
    let (seeded, _) = run(&mut session, "sh", "cat notes.txt", 30).await;
    assert_eq!(seeded.output, "before\n", "{seeded:?}");

    let code = "for i in $(seq 1 300); do echo $i > f$i; done; ln f1 linked\n\
                echo from the block > notes.txt; echo ready; sleep 3";
    let ran = run_while_the_operator_works(&mut session, code, || {
        std::fs::write(host.join("mine.txt"), "mine\n").unwrap();
        std::fs::write(host.join("notes.txt"), "edited by the operator\n").unwrap();
    })
    .await;
    assert_eq!(ran.exit_code, Some(0), "{ran:?}");
    let read = |name: &str| std::fs::read_to_string(host.join(name)).unwrap_or_default();
    assert_eq!(
        read("mine.txt"),
        "mine\n",
        "the operator's new file survives"
    );
    assert_eq!(read("notes.txt"), "edited by the operator\n");
    assert_eq!(read("f300"), "300\n", "the block's files arrived");
    let inode = |name: &str| std::fs::metadata(host.join(name)).unwrap().ino();
    assert_eq!(inode("linked"), inode("f1"));
    let notices = session.notices.clone();
    let said = notices.lock().unwrap().join("\n");
    assert!(
        said.contains(": notes.txt;") && said.contains("keeps your version"),
        "{said}"
    );
    assert!(!said.contains("mine.txt"), "{said}");

    let (next, _) = run(&mut session, "sh", "cat notes.txt mine.txt", 30).await;
    assert_eq!(next.output, "from the block\nmine\n", "{next:?}");
    assert_eq!(read("notes.txt"), "edited by the operator\n");

    // Path by path: the block rewrites f2 and removes f3 and f4 while the operator edits
    // f2 and f3 and makes f5's neighbour.
    notices.lock().unwrap().clear();
    let code = "echo block > f2; rm f3 f4; echo ready; sleep 3";
    let ran = run_while_the_operator_works(&mut session, code, || {
        std::fs::write(host.join("f2"), "operator 2\n").unwrap();
        std::fs::write(host.join("f3"), "operator 3\n").unwrap();
        std::fs::write(host.join("f5b"), "mine too\n").unwrap();
    })
    .await;
    assert_eq!(ran.exit_code, Some(0), "{ran:?}");
    assert_eq!(read("f2"), "operator 2\n");
    assert_eq!(read("f3"), "operator 3\n", "a change wins over a removal");
    assert!(!host.join("f4").exists(), "the block's removal arrived");
    assert_eq!(read("f5b"), "mine too\n");
    let said = notices.lock().unwrap().join("\n");
    assert!(said.contains(": f2;"), "{said}");
    let (after, _) = run(&mut session, "sh", "cat f2 f3 f5b", 30).await;
    assert_eq!(after.output, "block\noperator 3\nmine too\n", "{after:?}");
    session.sandbox.shutdown().await;
}

/// Bytes the files under `dir` take on disk.
fn walk_sizes(dir: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|entry| match entry.metadata() {
                    Ok(meta) if meta.is_dir() => walk_sizes(&entry.path()),
                    Ok(meta) => meta.blocks() * 512,
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

/// A read-only workspace in a volume: the block reads it, and nothing on the host changes,
/// not even what a volume cannot hold (a FIFO) or a directory's mode.
#[test]
fn a_read_only_volume_workspace_leaves_the_host_directory_alone() {
    use std::os::unix::fs::PermissionsExt;
    let home = Home::new();
    let named = tempfile::tempdir().expect("tempdir");
    std::fs::write(named.path().join("input.txt"), "read me\n").unwrap();
    std::fs::create_dir(named.path().join("locked")).unwrap();
    std::fs::set_permissions(
        named.path().join("locked"),
        PermissionsExt::from_mode(0o555),
    )
    .unwrap();
    let fifo = named.path().join("pipe");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let args = [
        "-c".to_string(),
        "sandbox.workspace_mode=volume".to_string(),
        "-c".to_string(),
        "sandbox.workspace_read_only=true".to_string(),
        "-c".to_string(),
        format!("sandbox.workspace={}", named.path().display()),
    ];
    let output = exec(
        &home,
        &[],
        &args,
        "cat input.txt; touch new 2>/dev/null || echo refused",
    );
    let result: Value = serde_json::from_slice(&output.stdout).expect("a JSON result");
    assert_eq!(result["output"], "read me\nrefused\n", "{result}");
    assert!(fifo.exists(), "the FIFO is still there");
    let mode = std::fs::metadata(named.path().join("locked"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o555);
    assert!(!named.path().join("new").exists());
}

/// Sessions starting at once on an engine that has never seen this build of airlock: one
/// uploads the supervisor while the others wait for it to be whole, and every one runs.
#[tokio::test]
async fn sessions_starting_at_once_take_turns_with_the_supervisors_upload() {
    use airlock::sandbox::Sandbox;
    // A build of its own: the same binary with one byte more, so a digest no other test
    // uses, and volumes this test may remove.
    let dir = tempfile::tempdir().expect("tempdir");
    let binary = dir.path().join("airlock");
    let mut bytes = std::fs::read(env!("CARGO_BIN_EXE_airlock")).expect("airlock");
    bytes.push(0);
    std::fs::write(&binary, &bytes).expect("copy");
    std::fs::set_permissions(&binary, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("mode");
    let digest = {
        use sha2::Digest;
        let hash = sha2::Sha256::digest(&bytes);
        hash.iter()
            .take(8)
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    let config = airlock::config::SandboxConfig {
        workspace_mode: airlock::config::WorkspaceMode::Volume,
        ..Default::default()
    };
    // Another build's supervisor, made just now: a session of it may be about to use it.
    let other = format!("airlock-supervisor-other-{digest}");
    docker(&[
        "volume",
        "create",
        "--label",
        "airlock.supervisor.sha256=other",
        &other,
    ]);
    let starts = (0..3).map(|_| common::session::session_supervised_by(config.clone(), &binary));
    let mut sessions = futures_util::future::join_all(starts).await;
    for session in &mut sessions {
        let (ran, _) = common::session::run(session, "sh", "echo supervised", 30).await;
        assert_eq!(ran.output, "supervised\n", "{ran:?}");
    }
    for session in sessions {
        session.sandbox.shutdown().await;
    }
    let volumes = docker(&["volume", "ls", "-q", "--filter", &format!("name={digest}")]);
    let mut names: Vec<&str> = volumes.lines().collect();
    names.sort();
    let name = format!("airlock-supervisor-{digest}");
    assert_eq!(
        names,
        [name.clone(), format!("{name}-whole"), other.clone()],
        "one upload, marked whole; the other build's volume, too young to go, stays"
    );
    docker(&["volume", "rm", &name, &format!("{name}-whole"), &other]);
}
