//! The history at scale: listing and filtering 100k runs, and what recording one run costs
//! next to the time the block itself takes in the sandbox, both measured in this run.
//!
//!   cargo bench --bench history [-- RUNS]
//!
//! The block time needs a Docker daemon and the image named by AIRLOCK_BENCH_IMAGE (default
//! airlock-sandbox:offline).

use std::sync::Arc;
use std::time::{Duration, Instant};

use airlock::config::SandboxConfig;
use airlock::engine::LanguageTable;
use airlock::protocol::{DecisionKind, DecisionSource, Event, ExecResult};
use airlock::sandbox::docker::{self, DockerSandbox, SessionRequest};
use airlock::sandbox::{BlockSpec, Sandbox};
use airlock::store::{RunFilter, SessionInfo, Store};

fn result(i: usize) -> ExecResult {
    ExecResult {
        exit_code: Some((i % 3) as i64),
        timed_out: false,
        oom_killed: false,
        truncated: false,
        output: format!(
            "line one of run {i}\nsome more output, {} items processed\n",
            i * 7
        ),
        output_bytes: 60,
        duration_ms: 80,
        image: "airlock-sandbox:offline (sha256:00)".into(),
        container_restarted: false,
        cancelled: false,
        container: String::new(),
        omission_at: None,
        workspace_full: false,
        files: Vec::new(),
        files_incomplete: None,
    }
}

/// The events one run records: proposal, decision, start, finish.
fn events(i: usize) -> [Event; 4] {
    let (block, run) = (format!("b-{i}"), format!("r-{i}"));
    [
        Event::BlockProposed {
            block: block.clone(),
            index: 0,
            language: "python".into(),
            code: format!("import os\nprint(len(os.listdir('.')), {i})\n"),
            origin: Default::default(),
        },
        Event::Decision {
            block: block.clone(),
            decision: DecisionKind::Approve,
            reason: None,
            source: DecisionSource::Operator,
            scope: None,
            code: None,
            id: None,
        },
        Event::ExecStarted {
            block: block.clone(),
            run: run.clone(),
        },
        Event::ExecFinished {
            block,
            run,
            result: result(i),
        },
    ]
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// The median time of a block through the sandbox, for comparison.
async fn block_time() -> anyhow::Result<Duration> {
    let data_dir = tempfile::tempdir()?;
    let request = SessionRequest {
        session: airlock::ids::new_id("bench"),
        config: SandboxConfig {
            image: std::env::var("AIRLOCK_BENCH_IMAGE")
                .unwrap_or_else(|_| "airlock-sandbox:offline".into()),
            ..SandboxConfig::default()
        },
        secret_env: "OPENAI_API_KEY".into(),
        data_dir: data_dir.path().to_path_buf(),
        supervisor: env!("CARGO_BIN_EXE_airlock").into(),
        continues: None,
    };
    let mut sandbox = DockerSandbox::start(
        docker::connect(&Default::default()).await?,
        request,
        Arc::new(|_| {}),
    )
    .await?;
    let python = LanguageTable::default()
        .resolve("python")
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("python"))?;
    let block = BlockSpec {
        language: &python,
        code: "print(1)\n",
        timeout: Duration::from_secs(30),
        cancel: None,
    };
    sandbox.run_block(block, &mut |_, _| {}).await?;
    let mut samples = Vec::new();
    for _ in 0..15 {
        let started = Instant::now();
        sandbox.run_block(block, &mut |_, _| {}).await?;
        samples.push(started.elapsed());
    }
    sandbox.shutdown().await;
    Ok(median(&mut samples))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let runs: usize = std::env::args()
        .skip(1)
        .find_map(|arg| arg.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir()?;
    let store = Store::open(&dir.path().join("history.db"))?;
    let info = SessionInfo {
        id: "s-bench".into(),
        model: "bench".into(),
        base_url: "http://127.0.0.1/v1".into(),
        sandbox: "{}".into(),
    };
    store.begin_session(&info)?;
    let filled = Instant::now();
    store.in_transaction(|store| {
        for i in 0..runs {
            for event in events(i) {
                store.record("s-bench", &event)?;
            }
        }
        Ok(())
    })?;
    println!(
        "filled {runs} runs in {:.1} s",
        filled.elapsed().as_secs_f64()
    );

    let time = |filter: &RunFilter| -> anyhow::Result<(Duration, usize)> {
        let mut samples = Vec::new();
        let mut found = 0;
        for _ in 0..5 {
            let started = Instant::now();
            found = store.list_runs(filter)?.len();
            samples.push(started.elapsed());
        }
        Ok((median(&mut samples), found))
    };
    let newest = RunFilter {
        limit: Some(1000),
        ..RunFilter::default()
    };
    let grep_hit = RunFilter {
        grep: Some("run 99999\n".into()),
        ..RunFilter::default()
    };
    let grep_many = RunFilter {
        grep: Some("listdir".into()),
        limit: Some(1000),
        ..RunFilter::default()
    };
    for (label, filter) in [
        ("newest 1000", &newest),
        ("grep, one match", &grep_hit),
        ("grep, first 1000 of all", &grep_many),
    ] {
        let (took, found) = time(filter)?;
        println!("list {label:<26} {:8.1} ms  ({found} runs)", ms(took));
    }

    // Recording one more run, as the engine does: four events, each its own transaction.
    let mut samples = Vec::new();
    for i in runs..runs + 200 {
        let started = Instant::now();
        for event in events(i) {
            store.record("s-bench", &event)?;
        }
        samples.push(started.elapsed());
    }
    let record = median(&mut samples);
    let block = block_time().await?;
    println!("recording one run:        {:8.3} ms", ms(record));
    println!(
        "one block in the sandbox: {:8.1} ms  (recording adds {:.2}%)",
        ms(block),
        100.0 * ms(record) / ms(block)
    );
    Ok(())
}
