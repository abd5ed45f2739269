//! Attacks on the host through /workspace, the one place whose contents reach the host's disk:
//! filling it, exhausting its inodes, multiplying it with holes and hard links, reaching
//! the host directory behind it, leading the copy out of it with symlinks. Each asserts what
//! the block saw, what airlock reports, and what the host holds afterwards.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use airlock::config::{ByteSize, SandboxConfig};
use airlock::sandbox::{BlockSpec, Sandbox, SandboxError};
use common::session::*;

const MIB: u64 = 1 << 20;

fn bounded(limit_mib: u64, inodes: u64) -> SandboxConfig {
    SandboxConfig {
        workspace_limit: ByteSize::mib(limit_mib),
        workspace_inodes: inodes,
        ..SandboxConfig::default()
    }
}

/// What a directory takes on the host's disk (allocated bytes) and how many entries it holds,
/// counting each inode once, as a quota would.
fn usage(dir: &Path) -> (u64, u64) {
    let mut seen = std::collections::HashSet::new();
    let mut bytes = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let meta = std::fs::symlink_metadata(entry.path()).unwrap();
            if seen.insert(meta.ino()) {
                bytes += meta.blocks() * 512;
            }
            if meta.is_dir() {
                stack.push(entry.path());
            }
        }
    }
    (bytes, seen.len() as u64)
}

#[tokio::test]
async fn a_block_that_fills_the_workspace_gets_enospc_and_the_host_holds_no_more_than_the_limit() {
    let mut session = session(bounded(32, 100_000)).await;
    let fill = "import os\n\
                try:\n\
                \x20   with open('/workspace/fill', 'wb') as f:\n\
                \x20       for _ in range(256):\n\
                \x20           f.write(b'x' * (1 << 20))\n\
                \x20           f.flush()\n\
                except OSError as err:\n\
                \x20   print('stopped:', err.strerror)\n";
    let (full, _) = run(&mut session, "python", fill, 60).await;
    assert!(
        full.output.contains("stopped: No space left on device"),
        "{full:?}"
    );
    assert!(full.workspace_full, "{full:?}");
    let (bytes, _) = usage(&session.workspace());
    assert!(
        bytes <= 33 * MIB,
        "the host holds {bytes} bytes for a 32 MiB workspace"
    );
    let kept = std::fs::metadata(session.workspace().join("fill"))
        .unwrap()
        .len();
    assert!(
        kept >= 30 * MIB,
        "what the block wrote reached the host: {kept}"
    );

    // Making room makes the workspace usable again, and the host follows.
    let (freed, _) = run(
        &mut session,
        "sh",
        "rm /workspace/fill && echo small > /workspace/s",
        20,
    )
    .await;
    assert!(
        !freed.workspace_full && freed.exit_code == Some(0),
        "{freed:?}"
    );
    assert!(!session.workspace().join("fill").exists());
    session.sandbox.shutdown().await;
}

#[tokio::test]
async fn a_block_that_makes_files_until_none_is_left_is_stopped_by_the_inode_limit() {
    let mut session = session(bounded(64, 2_000)).await;
    let spray = "import os\n\
                 made = 0\n\
                 try:\n\
                 \x20   for n in range(20000):\n\
                 \x20       os.mkdir(f'/workspace/d{n}') if n % 2 else open(f'/workspace/f{n}', 'w').close()\n\
                 \x20       made += 1\n\
                 except OSError as err:\n\
                 \x20   print('stopped after', made, err.strerror)\n";
    let (sprayed, _) = run(&mut session, "python", spray, 60).await;
    assert!(
        sprayed.output.contains("No space left on device"),
        "{sprayed:?}"
    );
    assert!(sprayed.workspace_full, "{sprayed:?}");
    let (_, entries) = usage(&session.workspace());
    assert!(
        (1_900..=2_000).contains(&entries),
        "the host holds {entries} entries for a workspace of 2000 inodes"
    );
    session.sandbox.shutdown().await;
}

#[tokio::test]
async fn holes_and_hard_links_cannot_multiply_what_reaches_the_host() {
    let mut session = session(bounded(32, 100_000)).await;
    let multiply = "truncate -s 500G /workspace/sparse && \
                    head -c 16777216 /dev/urandom > /workspace/data && \
                    for n in $(seq 1 200); do ln /workspace/data /workspace/link$n; done && \
                    du -sh /workspace";
    let (made, _) = run(&mut session, "bash", multiply, 60).await;
    assert_eq!(made.exit_code, Some(0), "{made:?}");
    let workspace = session.workspace();
    let (bytes, _) = usage(&workspace);
    assert!(
        bytes <= 33 * MIB,
        "the host holds {bytes} bytes for 16 MiB of data"
    );
    assert_eq!(
        std::fs::metadata(workspace.join("sparse")).unwrap().len(),
        500 << 30
    );
    let data = std::fs::metadata(workspace.join("data")).unwrap();
    assert_eq!(data.nlink(), 201);
    assert_eq!(
        std::fs::metadata(workspace.join("link200")).unwrap().ino(),
        data.ino()
    );
    session.sandbox.shutdown().await;
}

#[tokio::test]
async fn directories_and_long_symlinks_cost_the_host_no_more_than_the_limit() {
    // On the tmpfs they take no byte; on the host each takes a block.
    let mut session = session(bounded(1, 100_000)).await;
    let spray = "import os\n\
                 for n in range(2000):\n\
                 \x20   os.mkdir(f'/workspace/d{n}')\n\
                 \x20   os.symlink('/' + 'x' * 100 + f'/{n}', f'/workspace/l{n}')\n\
                 print('made')\n";
    let (sprayed, _) = run(&mut session, "python", spray, 60).await;
    assert_eq!(sprayed.output, "made\n", "{sprayed:?}");
    assert!(
        sprayed.workspace_full,
        "the host copy stopped at the limit: {sprayed:?}"
    );
    let (bytes, entries) = usage(&session.workspace());
    assert!(
        bytes <= MIB + (64 << 10),
        "the host holds {bytes} bytes for a 1 MiB workspace"
    );
    assert!(entries > 100, "what fits was copied: {entries}");
    // What the host holds already counts, whatever order the next copy meets it in.
    for round in 0..2 {
        let more = format!(
            "import os\nfor n in range(500):\n    os.mkdir(f'/workspace/more{round}-{{n}}')\n"
        );
        let (again, _) = run(&mut session, "python", &more, 60).await;
        assert!(again.workspace_full, "{again:?}");
        let (bytes, _) = usage(&session.workspace());
        assert!(
            bytes <= MIB + (64 << 10),
            "round {round}: the host holds {bytes} bytes"
        );
    }
    session.sandbox.shutdown().await;
}

#[tokio::test]
async fn the_host_directory_behind_the_workspace_is_out_of_the_blocks_reach() {
    let mut session = session(bounded(16, 100_000)).await;
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret"), "host secret").unwrap();
    // A link planted in the workspace on the host, to a file outside it.
    std::os::unix::fs::symlink(
        outside.path().join("secret"),
        session.workspace().join("leak"),
    )
    .unwrap();
    let pry = format!(
        "for target in /run/airlock-host /run/airlock-host/workspace /proc/1/root/run/airlock-host/workspace; do\n\
         \x20 ls \"$target\" >/dev/null 2>&1 && echo \"listed $target\"\n\
         \x20 touch \"$target/planted\" 2>/dev/null && echo \"wrote $target\"\n\
         done\n\
         cat /workspace/leak 2>/dev/null\n\
         ln -s {outside} /workspace/out && ln -s /run/airlock-host/workspace /workspace/back\n\
         dd if=/dev/zero of=/workspace/big bs=1M count=64 2>/dev/null\n\
         echo done",
        outside = outside.path().display()
    );
    let (pried, _) = run(&mut session, "bash", &pry, 30).await;
    assert_eq!(pried.output, "done\n", "{pried:?}");
    assert!(pried.workspace_full);
    // Written past the limit through neither link: the outside directory is as it was.
    let names: Vec<_> = std::fs::read_dir(outside.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["secret"]);
    let workspace = session.workspace();
    assert_eq!(
        std::fs::read_link(workspace.join("out")).unwrap(),
        outside.path()
    );
    assert!(std::fs::metadata(workspace.join("big")).unwrap().len() <= 16 * MIB);
    assert!(!workspace.join("planted").exists());
    session.sandbox.shutdown().await;
}

#[tokio::test]
async fn the_operators_changes_reach_the_next_block_and_the_blocks_reach_the_operator() {
    let mut session = session(SandboxConfig::default()).await;
    let workspace = session.workspace();
    std::fs::write(workspace.join("input.csv"), "a,b\n1,2\n").unwrap();
    let (read, _) = run(
        &mut session,
        "sh",
        "cat input.csv; rm input.csv; echo out > report.txt",
        20,
    )
    .await;
    assert_eq!(read.output, "a,b\n1,2\n");
    assert!(!workspace.join("input.csv").exists());
    assert_eq!(
        std::fs::read_to_string(workspace.join("report.txt")).unwrap(),
        "out\n"
    );
    // A replaced container starts from what the host holds.
    let container = session.sandbox.container_id().unwrap().to_string();
    common::docker(&["rm", "-f", &container]);
    // Yielded, so airlock's reader of the line (on this runtime) sees the end of it.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let (after, _) = run(&mut session, "sh", "cat report.txt", 20).await;
    assert_eq!(after.output, "out\n", "{after:?}");
    session.sandbox.shutdown().await;
}

#[tokio::test]
async fn a_workspace_directory_bigger_than_the_limit_is_not_run_half_copied() {
    let mut session = session(bounded(4, 100_000)).await;
    std::fs::write(session.workspace().join("huge.bin"), vec![1u8; 8 << 20]).unwrap();
    let language = language("sh");
    let block = BlockSpec {
        language: &language,
        code: "echo ran",
        timeout: std::time::Duration::from_secs(10),
        cancel: None,
    };
    let outcome = session.sandbox.run_block(block, &mut |_, _| {}).await;
    match outcome {
        Err(SandboxError::Failed(why)) => {
            assert!(
                why.contains("not run") && why.contains("workspace_limit"),
                "{why}"
            );
        }
        other => panic!("the block ran on half a workspace: {other:?}"),
    }
    // The host keeps what it had.
    assert_eq!(
        std::fs::metadata(session.workspace().join("huge.bin"))
            .unwrap()
            .len(),
        8 << 20
    );
    session.sandbox.shutdown().await;
}

/// A uid no account on the test machine has.
const OPERATOR_UID: u32 = 4242;

#[test]
fn without_root_the_workspace_is_bounded_all_the_same() {
    let home = common::Home::new();
    let airlock = env!("CARGO_BIN_EXE_airlock");
    let as_root = std::fs::metadata("/proc/self").unwrap().uid() == 0;
    let mut command = if as_root {
        // The operator as a user of their own, allowed the Docker socket by its group, as
        // a developer in the `docker` group is.
        let socket = std::fs::metadata("/var/run/docker.sock").expect("the Docker socket");
        std::os::unix::fs::chown(home.dir.path(), Some(OPERATOR_UID), Some(OPERATOR_UID)).unwrap();
        // A copy the operator can run wherever the build is (a clone under /root is not).
        let own = home.dir.path().join("airlock");
        std::fs::copy(airlock, &own).unwrap();
        let mut setpriv = std::process::Command::new("setpriv");
        setpriv
            .arg(format!("--reuid={OPERATOR_UID}"))
            .arg(format!("--regid={OPERATOR_UID}"))
            .arg(format!("--groups={}", socket.gid()))
            .arg(own);
        setpriv
    } else {
        std::process::Command::new(airlock)
    };
    command
        .env("HOME", home.dir.path())
        .env("XDG_DATA_HOME", home.dir.path().join("data"))
        .env("XDG_CONFIG_HOME", home.dir.path().join("config"))
        .env_remove("DOCKER_HOST")
        .arg("-c")
        .arg(format!("sandbox.image={}", common::test_image()))
        .args([
            "-c",
            "sandbox.workspace_limit=8MiB",
            "exec",
            "--json",
            "--lang",
            "sh",
            "-",
        ]);
    let output = common::run_with_stdin(
        command,
        "id -u; dd if=/dev/zero of=/workspace/fill bs=1M count=64 2>&1 | grep -o 'No space left on device'",
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let result: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|err| {
        panic!(
            "{err}: {stdout} {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    assert_eq!(result["workspace_full"], true, "{result}");
    let output = result["output"].as_str().unwrap();
    assert!(output.contains("No space left on device"), "{output}");
    let workspaces = home.data_dir().join("workspaces");
    let workspace = std::fs::read_dir(&workspaces)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let (bytes, _) = usage(&workspace);
    assert!(
        bytes <= 9 * MIB,
        "the host holds {bytes} bytes for an 8 MiB workspace"
    );
    if as_root {
        // The code ran as the operator, and what it made is theirs.
        assert!(output.starts_with(&format!("{OPERATOR_UID}\n")), "{output}");
        let fill = std::fs::metadata(workspace.join("fill")).unwrap();
        assert_eq!((fill.uid(), fill.gid()), (OPERATOR_UID, OPERATOR_UID));
    }
}

/// A block opens everything in the workspace to everyone and makes new files and directories
/// 0777. On the host no entry gains group or other write, in every workspace mode (the
/// bounded copy, a volume's copy back, the directory mounted itself); one that had group
/// write keeps it, and the other bits the block set (x) are copied.
#[tokio::test]
async fn a_block_cannot_open_the_workspace_to_everyone_on_the_host() {
    let volume = SandboxConfig {
        workspace_mode: airlock::config::WorkspaceMode::Volume,
        ..SandboxConfig::default()
    };
    let unbounded = SandboxConfig {
        workspace_limit: ByteSize(0),
        ..SandboxConfig::default()
    };
    for (config, mode) in [
        (SandboxConfig::default(), "bounded"),
        (volume, "volume"),
        (unbounded, "unbounded"),
    ] {
        open_everything(config, mode).await;
    }
}

async fn open_everything(config: SandboxConfig, mode: &str) {
    use std::os::unix::fs::PermissionsExt;
    let mut session = session(config).await;
    let host = session.workspace();
    // The operator's files, owned by the user blocks run as, as a session's own are.
    let owner = std::fs::metadata(&host).unwrap();
    std::fs::create_dir(host.join("dir")).unwrap();
    for (name, perms) in [
        ("plain.txt", 0o644),
        ("shared.txt", 0o664),
        ("tool.sh", 0o644),
        ("dir", 0o755),
        ("dir/inner.txt", 0o600),
    ] {
        let path = host.join(name);
        if !path.exists() {
            std::fs::write(&path, "s\n").unwrap();
        }
        std::fs::set_permissions(&path, PermissionsExt::from_mode(perms)).unwrap();
        std::os::unix::fs::chown(&path, Some(owner.uid()), Some(owner.gid())).unwrap();
    }
    let open = "chmod -R go+w /workspace; chmod +x tool.sh; echo more >> shared.txt\n\
                echo new > new.txt; chmod 777 new.txt; mkdir newdir; chmod 777 newdir\n\
                echo n > newdir/inside; chmod 666 newdir/inside\n\
                stat -c '%a %n' plain.txt shared.txt new.txt newdir";
    let (opened, _) = run(&mut session, "sh", open, 30).await;
    assert_eq!(
        opened.output, "666 plain.txt\n666 shared.txt\n777 new.txt\n777 newdir\n",
        "{mode}: {opened:?}"
    );
    let perms = |name: &str| std::fs::symlink_metadata(host.join(name)).unwrap().mode() & 0o7777;
    let expected = [
        ("plain.txt", 0o644),
        ("shared.txt", 0o664),
        ("tool.sh", 0o755),
        ("dir", 0o755),
        ("dir/inner.txt", 0o600),
        ("new.txt", 0o755),
        ("newdir", 0o755),
        ("newdir/inside", 0o644),
    ];
    for (name, want) in expected {
        assert_eq!(perms(name), want, "{mode}: {name} is {:o}", perms(name));
    }
    assert_eq!(perms(""), 0o700, "{mode}: the workspace itself");
    assert_eq!(
        std::fs::read_to_string(host.join("shared.txt")).unwrap(),
        "s\nmore\n",
        "{mode}: the block's change arrived"
    );
    let notices = session.notices.lock().unwrap().join("\n");
    if mode == "unbounded" {
        assert!(notices.contains("took back group/other write"), "{notices}");
    }
    session.sandbox.shutdown().await;
}
