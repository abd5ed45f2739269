//! What the session engine adds to a block: whole turns through the engine (a scripted reply,
//! the block proposed, approved by rule, run, its result reported back, every event
//! serialized as `--json` would) against the same blocks run straight through the sandbox,
//! both in this run, on warm containers of the same image.
//!
//!   cargo bench --bench session_overhead [-- TURNS]
//!
//! Needs a Docker daemon and the image named by AIRLOCK_BENCH_IMAGE (default
//! airlock-sandbox:offline). Prints the time per turn and per bare block, and their ratio.

use std::sync::Arc;
use std::time::{Duration, Instant};

use airlock::config::{ApproveMode, Config};
use airlock::engine::policy::Policy;
use airlock::engine::{Bus, Events, Language, LanguageTable, Session};
use airlock::model::scripted::ScriptedModel;
use airlock::protocol::{DoneReason, Event};
use airlock::sandbox::docker::{self, DockerSandbox, SessionRequest};
use airlock::sandbox::{BlockSpec, Sandbox};
use airlock::wiring::settings;
use tokio::sync::mpsc;

const CODE: &str = "print(sum(range(1000)))\n";

/// A started sandbox that has run the block once, so neither side pays for first use.
async fn warm_sandbox(
    config: &Config,
    data_dir: &std::path::Path,
) -> anyhow::Result<(DockerSandbox, Language)> {
    let request = SessionRequest {
        session: airlock::ids::new_id("bench"),
        config: config.sandbox.clone(),
        secret_env: config.model.api_key_env.clone(),
        data_dir: data_dir.to_path_buf(),
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
        .ok_or_else(|| anyhow::anyhow!("python is built in"))?;
    sandbox.run_block(block(&python), &mut |_, _| {}).await?;
    Ok((sandbox, python))
}

fn block(python: &Language) -> BlockSpec<'_> {
    BlockSpec {
        language: python,
        code: CODE,
        timeout: Duration::from_secs(30),
        cancel: None,
    }
}

/// `turns` blocks straight through the sandbox.
async fn bare_blocks(
    config: &Config,
    data_dir: &std::path::Path,
    turns: usize,
) -> anyhow::Result<Duration> {
    let (mut sandbox, python) = warm_sandbox(config, data_dir).await?;
    let started = Instant::now();
    for _ in 0..turns {
        sandbox.run_block(block(&python), &mut |_, _| {}).await?;
    }
    let elapsed = started.elapsed();
    sandbox.shutdown().await;
    Ok(elapsed)
}

/// `turns` whole turns through the engine, each with one block.
async fn engine_turns(
    config: &Config,
    data_dir: &std::path::Path,
    turns: usize,
) -> anyhow::Result<Duration> {
    let (sandbox, _) = warm_sandbox(config, data_dir).await?;
    let reply = format!("Next step.\n\n```python\n{CODE}```\n");
    let model = ScriptedModel::from_replies(std::iter::repeat_n(reply, turns));
    let mut config = config.clone();
    config.approval.mode = ApproveMode::All;
    config.model.max_turns = u32::try_from(turns)?;
    let bus = Bus::new();
    let mut event_rx = bus.subscribe();
    let (_op_tx, op_rx) = mpsc::unbounded_channel();
    let session: Session<_, DockerSandbox, airlock::approver::CommandApprover> = Session::new(
        settings(&config, "s-bench".into(), true),
        model,
        None,
        Policy::new(&config.approval, &LanguageTable::new(&config.languages))?,
        Events::new(bus),
        op_rx,
    );
    // Serializes every event as `--json` would; the clock stops at the last block's result, so
    // the session's final container removal is not counted.
    let printer = tokio::spawn(async move {
        let mut last_result = None;
        while let Some(event) = event_rx.recv().await {
            let _line = serde_json::to_string(&event);
            match event {
                Event::ExecFinished { .. } => last_result = Some(Instant::now()),
                Event::Done { .. } => break,
                _ => {}
            }
        }
        last_result
    });
    let started = Instant::now();
    let ended = session
        .run(Some("bench".into()), async { Ok(sandbox) })
        .await;
    let finished = printer
        .await?
        .ok_or_else(|| anyhow::anyhow!("no block ran"))?;
    let elapsed = finished - started;
    anyhow::ensure!(
        ended.reason == DoneReason::MaxTurns,
        "the session ended with {:?}",
        ended.reason
    );
    Ok(elapsed)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let turns: usize = std::env::args()
        .skip(1)
        .find_map(|arg| arg.parse().ok())
        .unwrap_or(30);
    let mut config = Config::default();
    config.sandbox.image =
        std::env::var("AIRLOCK_BENCH_IMAGE").unwrap_or_else(|_| "airlock-sandbox:offline".into());
    let data_dir = tempfile::tempdir()?;
    // Alternated twice, so drift on a shared machine hits both sides alike.
    let mut bare = Duration::ZERO;
    let mut engine = Duration::ZERO;
    for _ in 0..2 {
        bare += bare_blocks(&config, data_dir.path(), turns).await?;
        engine += engine_turns(&config, data_dir.path(), turns).await?;
    }
    let per = |total: Duration| total.as_secs_f64() * 1000.0 / (2 * turns) as f64;
    println!("bare block through the sandbox: {:7.1} ms", per(bare));
    println!("whole turn through the engine:  {:7.1} ms", per(engine));
    println!(
        "engine overhead per turn:       {:7.1} ms (ratio {:.2})",
        per(engine) - per(bare),
        per(engine) / per(bare)
    );
    Ok(())
}
