//! A block through airlock against its baselines, all measured in this run on the same image:
//! the interpreter's own start in a plain container (the floor), AutoGen 0.7.5's
//! DockerCommandLineCodeExecutor, a plotting block against the interpreter plotting with and
//! without its font cache, and a session's start against a plain `docker run`.
//!
//!   cargo bench --bench exec_overhead [-- BLOCKS]
//!
//! Definitions (the same as in the README):
//! - per block = (wall time of `airlock run --scripted S --prompt go --approve all --json`
//!   with 1+K trivial python blocks − the same with 1 block) / K, median of 5 rounds;
//! - the floor = in a plain container of the image (`--network none`, the code's uid), one
//!   `sh -c` loop of 2K starts of `python3 -c "print(1)"` minus one of K starts, over K;
//! - approval to first byte = from an approval written on stdin 250 ms after its card (a
//!   person's quickest read) to the block's first `exec_output` event, median of K blocks;
//!   shown too for an approval written the moment the card arrives.
//!
//! Needs a Docker daemon and the image named by AIRLOCK_BENCH_IMAGE (default
//! airlock-sandbox:offline). AutoGen is installed from PyPI into a virtualenv under target/
//! on first use; it calls `python`, so it gets an image derived from the bench image with a
//! `python` link. AIRLOCK_BENCH_NO_AUTOGEN=1 leaves it out.

mod baseline;
mod cli;

use std::time::Duration;

use baseline::Plain;
use cli::Home;

const ROUNDS: usize = 5;
/// How long after its card a block is approved: about the quickest a person reads a card and
/// presses a key.
const READING: Duration = Duration::from_millis(250);
const TRIVIAL: &str = "print(1)\n";
/// A plot as a block would make one: pyplot, a line, a title, a PNG.
const PLOT: &str = "import matplotlib; matplotlib.use(\"Agg\"); import matplotlib.pyplot as plt; \
                    plt.plot([1, 2, 3]); plt.title(\"t\"); plt.savefig(\"/tmp/plot.png\"); \
                    print(\"saved\")";

pub fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64()
}

fn verdict(holds: bool) -> &'static str {
    if holds { "holds" } else { "MISSED" }
}

/// Per block through airlock with a workspace set up by `settings`.
fn airlock_per_block(image: &str, blocks: usize, settings: &[&str]) -> anyhow::Result<Duration> {
    Home::new(image, settings)?.per_block(TRIVIAL, blocks, ROUNDS, "1\n")
}

/// Per block with `files` small files in the workspace directory, in `mode`.
fn with_files(image: &str, blocks: usize, files: usize, mode: &str) -> anyhow::Result<Duration> {
    let directory = tempfile::tempdir()?;
    for n in 0..files {
        std::fs::create_dir_all(directory.path().join(format!("d{}", n / 100)))?;
        std::fs::write(
            directory.path().join(format!("d{}/f{n}.txt", n / 100)),
            "data\n",
        )?;
    }
    let workspace = format!("sandbox.workspace={}", directory.path().display());
    let mode = format!("sandbox.workspace_mode={mode}");
    airlock_per_block(image, blocks, &[&workspace, &mode])
}

fn main() -> anyhow::Result<()> {
    let blocks: usize = std::env::args()
        .skip(1)
        .find_map(|arg| arg.parse().ok())
        .unwrap_or(20);
    let image =
        std::env::var("AIRLOCK_BENCH_IMAGE").unwrap_or_else(|_| "airlock-sandbox:offline".into());
    let image = image.as_str();
    baseline::image_id(image)?;

    let plain = Plain::start(image)?;
    let floor = plain.per_run("python3 -c 'print(1)' >/dev/null", blocks, ROUNDS)?;
    let per_block = airlock_per_block(image, blocks, &[])?;
    let unbounded = airlock_per_block(image, blocks, &["sandbox.workspace_limit=0B"])?;
    let populated = with_files(image, blocks, 1000, "bind")?;
    let in_volume = with_files(image, blocks, 0, "volume")?;
    let first_byte = Home::new(image, &[])?.approval_to_first_byte(blocks, READING)?;
    let first_byte_at_once =
        Home::new(image, &[])?.approval_to_first_byte(blocks, Duration::ZERO)?;

    let plots = (blocks / 4).max(3);
    let plot_cached = plain.per_run(
        &format!("HOME=/tmp python3 -c '{PLOT}' >/dev/null"),
        plots,
        3,
    )?;
    let plot_rebuilt = plain.per_run(
        &format!("rm -rf /tmp/.cache; HOME=/tmp python3 -c '{PLOT}' >/dev/null"),
        plots,
        3,
    )?;
    drop(plain);
    let plot = Home::new(image, &[])?.per_block(&format!("{PLOT}\n"), plots, 3, "saved\n")?;

    let (started, stopped) = session_start(image)?;
    let docker_run = baseline::docker_run(image, ROUNDS)?;
    let autogen = if std::env::var_os("AIRLOCK_BENCH_NO_AUTOGEN").is_some() {
        None
    } else {
        Some(baseline::autogen(image, blocks)?)
    };

    println!("{blocks} trivial python blocks (print(1)) on {image}, medians of {ROUNDS} rounds");
    let row = |name: &str, value: Duration| println!("{name:<58} {:8.1} ms", ms(value));
    row("floor: python3 -c 'print(1)' in a plain container", floor);
    row("airlock, per block", per_block);
    row("airlock, per block, workspace_limit = 0B", unbounded);
    row("airlock, per block, 1000 files in the workspace", populated);
    row("airlock, per block, workspace in a volume", in_volume);
    if let Some(autogen) = &autogen {
        row("AutoGen 0.7.5, per block", autogen.block);
    }
    row("airlock, approval to first output byte", first_byte);
    row(
        "  the same, approved the moment the card arrives",
        first_byte_at_once,
    );
    row("plotting: the interpreter, font cache kept", plot_cached);
    row(
        "plotting: the interpreter, font cache rebuilt each time",
        plot_rebuilt,
    );
    row("plotting: airlock, per block", plot);
    row("session start: airlock", started);
    row("session stop: airlock", stopped);
    row("session start: docker run --rm IMAGE true", docker_run);
    if let Some(autogen) = &autogen {
        row("session start: AutoGen 0.7.5", autogen.start);
        row("session stop: AutoGen 0.7.5", autogen.stop);
    }

    let against_floor = ratio(per_block, floor);
    println!(
        "per block / floor: {against_floor:.2} (target <= 1.2: {})",
        verdict(against_floor <= 1.2)
    );
    if let Some(autogen) = &autogen {
        let against = ratio(per_block, autogen.block);
        println!(
            "per block / AutoGen: {against:.2} (target <= 0.3: {})",
            verdict(against <= 0.3)
        );
        println!(
            "session start / AutoGen: {:.2}",
            ratio(started, autogen.start)
        );
    }
    let margin = ms(first_byte) - ms(floor);
    println!(
        "approval to first byte - floor: {margin:+.1} ms (target <= +3 ms: {})",
        verdict(margin <= 3.0)
    );
    println!(
        "plotting block / the interpreter with its cache: {:.2}; without: {:.2}",
        ratio(plot, plot_cached),
        ratio(plot, plot_rebuilt)
    );
    Ok(())
}

/// A session's start and stop, in process: the image checked, the workspace made, the
/// container created, started and greeted by its supervisor; then removed. Medians of
/// [`ROUNDS`].
fn session_start(image: &str) -> anyhow::Result<(Duration, Duration)> {
    use airlock::config::SandboxConfig;
    use airlock::sandbox::Sandbox;
    use airlock::sandbox::docker::{self, DockerSandbox, SessionRequest};
    let runtime = tokio::runtime::Runtime::new()?;
    let data_dir = tempfile::tempdir()?;
    let (mut starts, mut stops) = (Vec::new(), Vec::new());
    for _ in 0..=ROUNDS {
        let request = SessionRequest {
            session: airlock::ids::new_id("bench"),
            config: SandboxConfig {
                image: image.to_string(),
                ..SandboxConfig::default()
            },
            secret_env: "OPENAI_API_KEY".into(),
            data_dir: data_dir.path().to_path_buf(),
            supervisor: env!("CARGO_BIN_EXE_airlock").into(),
            continues: None,
        };
        runtime.block_on(async {
            let at = std::time::Instant::now();
            let docker = docker::connect(&Default::default()).await?;
            let sandbox =
                DockerSandbox::start(docker, request, std::sync::Arc::new(|_| {})).await?;
            starts.push(at.elapsed());
            let at = std::time::Instant::now();
            sandbox.shutdown().await;
            stops.push(at.elapsed());
            anyhow::Ok(())
        })?;
    }
    // The first paid for first uses.
    Ok((median(&mut starts[1..]), median(&mut stops[1..])))
}
