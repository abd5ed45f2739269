//! Per-block cost of airlock's executor against the `docker exec` CLI and AutoGen 0.7.5's
//! DockerCommandLineCodeExecutor, measured in the same run on the same image, plus the time
//! from approval to the block's first output byte, and session start and stop.
//!
//!   cargo bench --bench exec_overhead [-- BLOCKS]
//!
//! Needs a Docker daemon and the image named by AIRLOCK_BENCH_IMAGE (default
//! airlock-sandbox:offline). AutoGen is installed from PyPI into a virtualenv under target/
//! on first use; it calls `python`, so it gets an image derived from the bench image with a
//! `python` link. AIRLOCK_BENCH_NO_AUTOGEN=1 leaves it out.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use airlock::config::{ByteSize, SandboxConfig, WorkspaceMode};
use airlock::engine::LanguageTable;
use airlock::sandbox::docker::{self, DockerSandbox, SessionRequest};
use airlock::sandbox::{BlockSpec, Sandbox};

const AUTOGEN: &str = "autogen-ext[docker]==0.7.5";
const AUTOGEN_IMAGE: &str = "airlock-bench-autogen:0.7.5";

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// What one executor costs.
struct Figures {
    start: Duration,
    block: Duration,
    stop: Duration,
}

/// How airlock's workspace is set up for a run of the bench.
#[derive(Clone, Copy)]
struct Workspace {
    /// `sandbox.workspace_limit`: 0 mounts the directory itself.
    limit: ByteSize,
    /// Small files put in the workspace directory before the blocks, for the mirror to check
    /// before and after each one.
    files: usize,
    /// Bind mount, or a volume copied back after every block (what a remote engine gets).
    mode: WorkspaceMode,
}

/// airlock's side, interleaved with the `docker exec` CLI on airlock's own warm container:
/// airlock's figures, the CLI's median per block, and airlock's median approval-to-first-byte.
async fn airlock_and_cli(
    image: &str,
    blocks: usize,
    workspace: Workspace,
) -> anyhow::Result<(Figures, Duration, Duration)> {
    let data_dir = tempfile::tempdir()?;
    let python = LanguageTable::default()
        .resolve("python")
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("python is built in"))?;
    let docker = docker::connect(&Default::default()).await?;
    let session = airlock::ids::new_id("bench");
    let request = SessionRequest {
        session: session.clone(),
        config: SandboxConfig {
            image: image.to_string(),
            workspace_limit: workspace.limit,
            workspace_mode: workspace.mode,
            ..SandboxConfig::default()
        },
        secret_env: "OPENAI_API_KEY".into(),
        data_dir: data_dir.path().to_path_buf(),
        supervisor: env!("CARGO_BIN_EXE_airlock").into(),
        continues: None,
    };
    let started = Instant::now();
    let mut sandbox = DockerSandbox::start(docker, request, Arc::new(|_| {})).await?;
    let start = started.elapsed();
    let directory = data_dir.path().join("workspaces").join(&session);
    for n in 0..workspace.files {
        std::fs::create_dir_all(directory.join(format!("d{}", n / 100)))?;
        std::fs::write(directory.join(format!("d{}/f{n}.txt", n / 100)), "data\n")?;
    }
    let container = sandbox
        .container_id()
        .ok_or_else(|| anyhow::anyhow!("no container"))?
        .to_string();
    let block = BlockSpec {
        language: &python,
        code: "print(1)\n",
        timeout: Duration::from_secs(30),
        cancel: None,
    };
    let cli = || {
        Command::new("docker")
            .args(["exec", "-i", "-u", "65534:65534", &container])
            .args(["python3", "-c", "print(1)"])
            .output()
    };
    // One warm-up each, so neither side pays for first-use caches.
    sandbox.run_block(block, &mut |_, _| {}).await?;
    cli()?;
    let (mut airlock, mut first_bytes, mut cli_samples) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..blocks {
        // Interleaved, so load on the shared machine hits both sides alike.
        let at = Instant::now();
        let mut first = None;
        let result = sandbox
            .run_block(block, &mut |_, _| {
                first.get_or_insert_with(|| at.elapsed());
            })
            .await?;
        airlock.push(at.elapsed());
        first_bytes.push(first.ok_or_else(|| anyhow::anyhow!("no output"))?);
        anyhow::ensure!(
            result.output == "1\n",
            "unexpected output {:?}",
            result.output
        );
        let at = Instant::now();
        let output = cli()?;
        cli_samples.push(at.elapsed());
        anyhow::ensure!(output.stdout == b"1\n", "docker exec failed");
    }
    let stopped = Instant::now();
    sandbox.shutdown().await;
    let figures = Figures {
        start,
        block: median(&mut airlock),
        stop: stopped.elapsed(),
    };
    Ok((figures, median(&mut cli_samples), median(&mut first_bytes)))
}

/// AutoGen's side: the virtualenv and image it needs, then its script.
fn autogen(image: &str, blocks: usize) -> anyhow::Result<Figures> {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/autogen-0.7.5");
    let python = venv.join("bin/python");
    if !python.exists() {
        eprintln!("installing {AUTOGEN} into {}", venv.display());
        run(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
        run(Command::new(venv.join("bin/pip")).args(["install", "-q", AUTOGEN]))?;
    }
    derive_autogen_image(image)?;
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/exec_overhead/autogen_blocks.py");
    let output = Command::new(python)
        .arg(script)
        .args([AUTOGEN_IMAGE, &blocks.to_string()])
        .output()?;
    anyhow::ensure!(
        output.status.success(),
        "AutoGen's run failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let figures: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    let field = |name: &str| {
        figures[name]
            .as_f64()
            .map(|value| Duration::from_secs_f64(value / 1000.0))
            .ok_or_else(|| anyhow::anyhow!("AutoGen's figures lack {name}: {figures}"))
    };
    Ok(Figures {
        start: field("start_ms")?,
        block: field("block_ms")?,
        stop: field("stop_ms")?,
    })
}

/// The bench image with `python` pointing at python3, as AutoGen calls it.
fn derive_autogen_image(image: &str) -> anyhow::Result<()> {
    let present = Command::new("docker")
        .args(["image", "inspect", AUTOGEN_IMAGE])
        .output()?
        .status
        .success();
    if present {
        return Ok(());
    }
    let name = format!("airlock-bench-derive-{}", std::process::id());
    run(Command::new("docker")
        .args(["run", "--name", &name, "--user", "0", image])
        .args(["ln", "-s", "/usr/bin/python3", "/usr/local/bin/python"]))?;
    let committed = run(Command::new("docker").args(["commit", &name, AUTOGEN_IMAGE]));
    run(Command::new("docker").args(["rm", &name]))?;
    committed
}

fn run(command: &mut Command) -> anyhow::Result<()> {
    let output = command.output()?;
    anyhow::ensure!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let blocks: usize = std::env::args()
        .skip(1)
        .find_map(|arg| arg.parse().ok())
        .unwrap_or(30);
    let image =
        std::env::var("AIRLOCK_BENCH_IMAGE").unwrap_or_else(|_| "airlock-sandbox:offline".into());
    let bounded = Workspace {
        limit: SandboxConfig::default().workspace_limit,
        files: 0,
        mode: WorkspaceMode::Bind,
    };
    let (ours, cli, first_byte) = airlock_and_cli(&image, blocks, bounded).await?;
    let populated = Workspace {
        files: 1000,
        ..bounded
    };
    let (with_files, _, _) = airlock_and_cli(&image, blocks, populated).await?;
    let direct = Workspace {
        limit: ByteSize(0),
        files: 0,
        ..bounded
    };
    let (unbounded, _, _) = airlock_and_cli(&image, blocks, direct).await?;
    let volume = Workspace {
        mode: WorkspaceMode::Volume,
        ..bounded
    };
    let (in_volume, _, _) = airlock_and_cli(&image, blocks, volume).await?;
    let volume_files = Workspace {
        files: 1000,
        ..volume
    };
    let (in_volume_files, _, _) = airlock_and_cli(&image, blocks, volume_files).await?;
    let theirs = if std::env::var_os("AIRLOCK_BENCH_NO_AUTOGEN").is_some() {
        None
    } else {
        Some(autogen(&image, blocks)?)
    };

    println!("blocks: {blocks} x python print(1) on {image} (medians)");
    println!("                                  per block   session start   session stop");
    let row = |name: &str, f: &Figures| {
        println!(
            "{name:<32} {:8.1} ms     {:8.1} ms     {:8.1} ms",
            ms(f.block),
            ms(f.start),
            ms(f.stop)
        );
    };
    row("airlock", &ours);
    row("airlock, 1000 files in workspace", &with_files);
    row("airlock, workspace_limit = 0", &unbounded);
    row("airlock, workspace in a volume", &in_volume);
    row("  the same, 1000 files", &in_volume_files);
    println!("{:<32} {:8.1} ms", "docker exec CLI", ms(cli));
    if let Some(theirs) = &theirs {
        row("AutoGen 0.7.5", theirs);
    }
    println!(
        "approval to first output byte: {:.1} ms (target <= 25 ms)",
        ms(first_byte)
    );
    println!(
        "per block, airlock / docker exec CLI: {:.2}",
        ours.block.as_secs_f64() / cli.as_secs_f64()
    );
    println!(
        "per block, the bounded workspace's copies (empty; 1000 files) / none: {:.2}; {:.2}",
        ours.block.as_secs_f64() / unbounded.block.as_secs_f64(),
        with_files.block.as_secs_f64() / unbounded.block.as_secs_f64()
    );
    println!(
        "per block, a volume workspace copied back (empty; 1000 files) / a bind mount: {:.2}; {:.2}",
        in_volume.block.as_secs_f64() / ours.block.as_secs_f64(),
        in_volume_files.block.as_secs_f64() / with_files.block.as_secs_f64()
    );
    if let Some(theirs) = &theirs {
        println!(
            "per block, airlock / AutoGen: {:.2} (target <= 0.4)",
            ours.block.as_secs_f64() / theirs.block.as_secs_f64()
        );
        println!(
            "session start, airlock / AutoGen: {:.2} (target <= 0.5)",
            ours.start.as_secs_f64() / theirs.start.as_secs_f64()
        );
    }
    Ok(())
}
