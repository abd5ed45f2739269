//! Per-block cost of airlock's executor against the `docker exec` CLI, measured in the same
//! run on the same warm container, plus session start and stop.
//!
//!   cargo bench --bench exec_overhead [-- BLOCKS]
//!
//! Needs a Docker daemon and the image named by AIRLOCK_BENCH_IMAGE (default
//! airlock-sandbox:offline). Prints medians and the ratio; the target is a ratio <= 1.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use airlock::config::SandboxConfig;
use airlock::engine::LanguageTable;
use airlock::sandbox::docker::{self, DockerSandbox, SessionRequest};
use airlock::sandbox::{BlockSpec, Sandbox};

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let blocks: usize = std::env::args()
        .skip(1)
        .find_map(|arg| arg.parse().ok())
        .unwrap_or(30);
    let image =
        std::env::var("AIRLOCK_BENCH_IMAGE").unwrap_or_else(|_| "airlock-sandbox:offline".into());
    let data_dir = tempfile::tempdir()?;
    let python = LanguageTable::default()
        .resolve("python")
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("python is built in"))?;

    let docker = docker::connect().await?;
    let request = SessionRequest {
        session: airlock::ids::new_id("bench"),
        config: SandboxConfig {
            image: image.clone(),
            ..SandboxConfig::default()
        },
        secret_env: "OPENAI_API_KEY".into(),
        data_dir: data_dir.path().to_path_buf(),
    };
    let started = Instant::now();
    let mut sandbox = DockerSandbox::start(docker, request, Arc::new(|_| {})).await?;
    let start_time = started.elapsed();
    let container = sandbox
        .container_id()
        .ok_or_else(|| anyhow::anyhow!("no container"))?
        .to_string();

    let code = "print(1)\n";
    let block = BlockSpec {
        language: &python,
        code,
        timeout: Duration::from_secs(30),
        cancel: None,
    };
    // One warm-up each, so neither side pays for first-use caches.
    sandbox.run_block(block, &mut |_, _| {}).await?;
    let cli = || {
        Command::new("docker")
            .args([
                "exec",
                "-i",
                "-u",
                "65534:65534",
                &container,
                "python3",
                "-c",
                "print(1)",
            ])
            .output()
    };
    cli()?;

    let mut airlock_samples = Vec::with_capacity(blocks);
    let mut cli_samples = Vec::with_capacity(blocks);
    for _ in 0..blocks {
        // Interleaved, so load on the shared machine hits both sides alike.
        let at = Instant::now();
        let result = sandbox.run_block(block, &mut |_, _| {}).await?;
        airlock_samples.push(at.elapsed());
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
    let stop_time = stopped.elapsed();

    let airlock_median = median(&mut airlock_samples);
    let cli_median = median(&mut cli_samples);
    println!("blocks: {blocks} x python3 print(1) on {image}");
    println!(
        "airlock executor   median {:7.1} ms per block",
        ms(airlock_median)
    );
    println!(
        "docker exec CLI    median {:7.1} ms per block",
        ms(cli_median)
    );
    println!(
        "ratio airlock/cli  {:.2} (target <= 1; airlock also writes the code to a file, \
         enforces the timeout and kills leftovers)",
        airlock_median.as_secs_f64() / cli_median.as_secs_f64()
    );
    println!(
        "session start      {:7.1} ms (hardened create, verify, attach, start)",
        ms(start_time)
    );
    println!("session stop       {:7.1} ms", ms(stop_time));
    Ok(())
}
