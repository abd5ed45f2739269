//! The baselines: the interpreter's own start in a plain container of the same image (the
//! floor), the same for a plotting block, a plain container's start, and AutoGen 0.7.5's
//! DockerCommandLineCodeExecutor.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const AUTOGEN: &str = "autogen-ext[docker]==0.7.5";
const AUTOGEN_IMAGE: &str = "airlock-bench-autogen:0.7.5";
/// The code's uid and gid in the sandbox (nobody).
const CODE_USER: &str = "65534:65534";

/// A plain container of the image, as a block's code would meet it without airlock: no
/// network, the code's uid, a writable /tmp. Removed when dropped.
pub struct Plain {
    id: String,
}

impl Plain {
    pub fn start(image: &str) -> anyhow::Result<Self> {
        let output = Command::new("docker")
            .args([
                "run",
                "-d",
                "--rm",
                "--network",
                "none",
                "--user",
                CODE_USER,
            ])
            .args(["--tmpfs", "/tmp:mode=1777", "--entrypoint", "sleep", image])
            .arg("infinity")
            .output()?;
        anyhow::ensure!(
            output.status.success(),
            "cannot start a plain container: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let id = String::from_utf8_lossy(&output.stdout).trim().to_string();
        Ok(Self { id })
    }

    /// The wall time of one `sh -c` that runs `program` `times` times, one after the other.
    fn loop_of(&self, program: &str, times: usize) -> anyhow::Result<Duration> {
        let script = format!("i=0; while [ $i -lt {times} ]; do {program}; i=$((i+1)); done");
        let at = Instant::now();
        let output = Command::new("docker")
            .args(["exec", &self.id, "sh", "-c", &script])
            .output()?;
        let took = at.elapsed();
        anyhow::ensure!(
            output.status.success(),
            "the loop failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(took)
    }

    /// The cost of one run of `program` with no exec counted: (a loop of 2K − a loop of K)
    /// / K, median of `rounds`.
    pub fn per_run(&self, program: &str, times: usize, rounds: usize) -> anyhow::Result<Duration> {
        self.loop_of(program, 1)?;
        let mut samples = Vec::new();
        for _ in 0..rounds {
            let many = self.loop_of(program, 2 * times)?;
            let few = self.loop_of(program, times)?;
            samples.push(many.saturating_sub(few) / times as u32);
        }
        Ok(crate::median(&mut samples))
    }
}

impl Drop for Plain {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", &self.id]).output();
    }
}

/// How long `docker run --rm --network none IMAGE true` takes: a container started, run and
/// removed through the CLI, median of `rounds`.
pub fn docker_run(image: &str, rounds: usize) -> anyhow::Result<Duration> {
    let mut samples = Vec::new();
    for _ in 0..rounds {
        let at = Instant::now();
        run(Command::new("docker").args([
            "run",
            "--rm",
            "--network",
            "none",
            "--entrypoint",
            "true",
            image,
        ]))?;
        samples.push(at.elapsed());
    }
    Ok(crate::median(&mut samples))
}

/// What AutoGen's executor costs: session start, per block and stop.
pub struct AutoGen {
    pub start: Duration,
    pub block: Duration,
    pub stop: Duration,
}

/// AutoGen's side: the virtualenv and image it needs, then its script.
pub fn autogen(image: &str, blocks: usize) -> anyhow::Result<AutoGen> {
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
    Ok(AutoGen {
        start: field("start_ms")?,
        block: field("block_ms")?,
        stop: field("stop_ms")?,
    })
}

/// The bench image with `python` pointing at python3, as AutoGen calls it. Made again when
/// the bench image changed since.
fn derive_autogen_image(image: &str) -> anyhow::Result<()> {
    let label = "airlock.bench.from";
    let source = image_id(image)?;
    let derived_from = Command::new("docker")
        .args(["image", "inspect", "--format"])
        .arg(format!("{{{{index .Config.Labels \"{label}\"}}}}"))
        .arg(AUTOGEN_IMAGE)
        .output()?;
    if String::from_utf8_lossy(&derived_from.stdout).trim() == source {
        return Ok(());
    }
    let name = format!("airlock-bench-derive-{}", std::process::id());
    run(Command::new("docker")
        .args([
            "run",
            "--name",
            &name,
            "--user",
            "0",
            "--entrypoint",
            "ln",
            image,
        ])
        .args(["-sf", "/usr/bin/python3", "/usr/local/bin/python"]))?;
    let committed = run(Command::new("docker")
        .args(["commit", "--change", &format!("LABEL {label}={source}")])
        .args([&name, AUTOGEN_IMAGE]));
    run(Command::new("docker").args(["rm", &name]))?;
    committed
}

pub fn image_id(image: &str) -> anyhow::Result<String> {
    let output = Command::new("docker")
        .args(["image", "inspect", "--format", "{{.Id}}", image])
        .output()?;
    anyhow::ensure!(
        output.status.success(),
        "no image {image}: build it with `airlock image build`"
    );
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
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
