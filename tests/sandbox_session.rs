//! The Docker sandbox as the engine uses it: one warm session container, several blocks,
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.
//! checked from outside the container with the Docker CLI.

mod common;

use std::time::Duration;

use airlock::config::SandboxConfig;
use airlock::protocol::Stream;
use airlock::sandbox::{BlockSpec, Sandbox};
use common::session::*;
use common::*;

#[tokio::test]
async fn after_a_timeout_no_process_of_the_block_remains() {
    let mut session = session(SandboxConfig::default()).await;
    let container = session.sandbox.container_id().expect("running").to_string();
    let code =
        "sleep 1000 &\nsetsid sleep 1001 &\nnohup sleep 1002 >/dev/null 2>&1 &\nexec sleep 1003\n";
    let (result, _) = run(&mut session, "bash", code, 2).await;
    assert!(result.timed_out, "{result:?}");
    assert_eq!(
        session.sandbox.container_id(),
        Some(container.as_str()),
        "no restart needed"
    );
    let left = processes(&container);
    assert!(left.iter().all(|p| !p.contains("sleep")), "{left:#?}");
    // The session goes on: the next block runs in the same container.
    let (next, _) = run(&mut session, "sh", "echo still here", 5).await;
    assert_eq!(next.output, "still here\n");
    session.sandbox.shutdown().await;
    assert!(wait_until(Duration::from_secs(10), || docker(&[
        "ps",
        "-aq",
        "--filter",
        &format!("id={container}")
    ])
    .trim()
    .is_empty()));
}

#[tokio::test]
async fn a_backgrounded_process_is_gone_when_its_block_ends() {
    let mut session = session(SandboxConfig::default()).await;
    let container = session.sandbox.container_id().expect("running").to_string();
    let (result, _) = run(&mut session, "bash", "sleep 1000 &\necho started", 10).await;
    assert_eq!(result.exit_code, Some(0));
    assert_eq!(result.output, "started\n");
    assert!(
        result.duration_ms < 5_000,
        "the stream did not wait for the background job: {result:?}"
    );
    let left = processes(&container);
    assert!(left.iter().all(|p| !p.contains("sleep")), "{left:#?}");
    session.sandbox.shutdown().await;
}

#[tokio::test]
async fn a_fork_bomb_is_cleared_and_the_session_survives() {
    let mut session = session(SandboxConfig::default()).await;
    let (result, _) = run(
        &mut session,
        "bash",
        "bomb() { bomb | bomb & }; bomb; sleep 2",
        4,
    )
    .await;
    assert!(result.duration_ms < 30_000, "{result:?}");
    let container = session.sandbox.container_id().expect("running").to_string();
    let left = processes(&container);
    assert!(
        left.len() <= 2,
        "only the init and the supervisor remain: {left:#?}"
    );
    let (next, _) = run(&mut session, "sh", "echo alive", 5).await;
    assert_eq!(next.output, "alive\n");
    session.sandbox.shutdown().await;
}

#[tokio::test]
async fn output_streams_live_in_chunks() {
    let mut session = session(SandboxConfig::default()).await;
    let code = "import sys, time\nfor i in range(3):\n    print('tick', i)\n    time.sleep(0.3)\nprint('oops', file=sys.stderr)\n";
    let (result, chunks) = run(&mut session, "python", code, 10).await;
    assert!(chunks.len() >= 3, "{chunks:?}");
    assert!(
        chunks
            .iter()
            .any(|(stream, text)| *stream == Stream::Stderr && text.contains("oops"))
    );
    let stdout: String = chunks
        .iter()
        .filter(|(s, _)| *s == Stream::Stdout)
        .map(|(_, t)| t.as_str())
        .collect();
    assert_eq!(stdout, "tick 0\ntick 1\ntick 2\n");
    assert!(result.output.contains("tick 2\n"));
    session.sandbox.shutdown().await;
}

#[tokio::test]
async fn an_output_flood_is_capped_counted_and_finishes() {
    let mut session = session(SandboxConfig::default()).await;
    let produced: u64 = 300 * 1024 * 1024;
    let code = format!("head -c {produced} /dev/zero | tr '\\0' 'x'; echo; echo THE-END");
    let (result, chunks) = run(&mut session, "bash", &code, 120).await;
    assert_eq!(
        result.exit_code,
        Some(0),
        "{}",
        &result.output[..200.min(result.output.len())]
    );
    assert!(result.truncated);
    assert_eq!(result.output_bytes, produced + 1 + 8);
    let limit = SandboxConfig::default().output_limit.as_usize();
    assert!(
        result.output.len() <= limit + 200,
        "{}",
        result.output.len()
    );
    assert!(result.output.ends_with("THE-END\n"));
    assert!(result.output.contains("bytes of output omitted"));
    let live: usize = chunks.iter().map(|(_, text)| text.len()).sum();
    assert!(live <= limit / 2, "live view is bounded: {live}");
    assert!(
        session
            .notices
            .lock()
            .expect("lock")
            .iter()
            .all(|n| !n.contains("replacing"))
    );
    session.sandbox.shutdown().await;
}

#[tokio::test]
async fn hardening_is_what_docker_applied() {
    let mut session = session(SandboxConfig::default()).await;
    let container = session.sandbox.container_id().expect("running").to_string();
    let field = |template: &str| {
        docker(&["inspect", "-f", template, &container])
            .trim()
            .to_string()
    };
    assert_eq!(field("{{.HostConfig.NetworkMode}}"), "none");
    // No copy of the frames (block output included) on the daemon's disk.
    assert_eq!(field("{{.HostConfig.LogConfig.Type}}"), "none");
    // 512 MiB for programs and 1 GiB for the workspace's tmpfs, charged to the same cgroup.
    assert_eq!(field("{{.HostConfig.Memory}}"), "1610612736");
    assert_eq!(field("{{.HostConfig.MemorySwap}}"), "1610612736");
    assert_eq!(field("{{.HostConfig.NanoCpus}}"), "1000000000");
    assert_eq!(field("{{.HostConfig.PidsLimit}}"), "256");
    assert_eq!(field("{{.HostConfig.ReadonlyRootfs}}"), "true");
    assert_eq!(field("{{.HostConfig.CapDrop}}"), "[ALL]");
    assert_eq!(field("{{.HostConfig.SecurityOpt}}"), "[no-new-privileges]");
    assert_eq!(field("{{.HostConfig.Init}}"), "true");
    assert_eq!(field("{{.HostConfig.Privileged}}"), "false");
    assert_eq!(field("{{.HostConfig.PortBindings}}"), "map[]");
    assert!(field("{{.HostConfig.Binds}}").contains(":/run/airlock-host/workspace:rw"));
    assert!(!field("{{.HostConfig.Binds}}").contains("docker.sock"));
    let workspace = field("{{index .HostConfig.Tmpfs \"/workspace\"}}");
    assert!(
        workspace.contains("size=1073741824,nr_inodes=100000") && workspace.contains("nosuid"),
        "{workspace}"
    );
    let labels = field("{{json .Config.Labels}}");
    assert!(
        labels.contains("airlock.session") && labels.contains("airlock.owner"),
        "{labels}"
    );
    let (result, _) = run(&mut session, "sh", "id -u", 5).await;
    assert_ne!(result.output.trim(), "0");
    session.sandbox.shutdown().await;
}

#[tokio::test]
async fn a_cancelled_block_stops_at_once_keeps_its_output_and_leaves_nothing_behind() {
    let mut session = session(SandboxConfig::default()).await;
    let container = session.sandbox.container_id().expect("running").to_string();
    let language = language("bash");
    let code = "echo before-cancel\nsetsid sleep 2001 &\nsleep 2002 &\nsleep 2003\n";
    let cancel = tokio_util::sync::CancellationToken::new();
    let block = BlockSpec {
        language: &language,
        code,
        timeout: Duration::from_secs(120),
        cancel: Some(&cancel),
    };
    let trigger = cancel.clone();
    let mut chunks = Vec::new();
    let started = std::time::Instant::now();
    let result = session
        .sandbox
        .run_block(block, &mut |_, text| {
            chunks.push(text.to_string());
            // Cancel as soon as the block shows it is running.
            trigger.cancel();
        })
        .await
        .expect("block runs");
    assert!(result.cancelled && result.exit_code.is_none(), "{result:?}");
    assert!(!result.timed_out);
    assert!(result.output.contains("before-cancel"), "{result:?}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    assert!(
        !result.container_restarted,
        "kill as the code's uid was enough"
    );
    assert_eq!(session.sandbox.container_id(), Some(container.as_str()));
    let left = processes(&container);
    assert!(
        !left.iter().any(|p| p.contains("sleep 200")),
        "leftovers: {left:?}"
    );
    // The session goes on.
    let (next, _) = run(&mut session, "sh", "echo still-here", 10).await;
    assert_eq!(next.exit_code, Some(0));
    assert!(next.output.contains("still-here"));
    session.sandbox.shutdown().await;
}

#[tokio::test]
async fn output_trickled_without_a_newline_or_a_pause_is_shown_while_it_comes() {
    let mut session = session(SandboxConfig::default()).await;
    // A byte every 20 ms for 1.6 s: never quiet long enough for the quiet-time flush.
    let code = "for i in $(seq 80); do printf x; sleep 0.02; done; echo";
    let started = std::time::Instant::now();
    let mut seen = Vec::new();
    let language = language("bash");
    let block = BlockSpec {
        language: &language,
        code,
        timeout: Duration::from_secs(20),
        cancel: None,
    };
    let result = session
        .sandbox
        .run_block(block, &mut |_, text| {
            seen.push((started.elapsed(), text.to_string()))
        })
        .await
        .expect("block runs");
    assert_eq!(result.output, format!("{}\n", "x".repeat(80)));
    let early = seen
        .iter()
        .filter(|(at, text)| text.contains('x') && *at < Duration::from_millis(1200))
        .count();
    assert!(early >= 2, "shown only at the end: {seen:?}");
    session.sandbox.shutdown().await;
}
