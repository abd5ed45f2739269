//! airlock's side, through the command line as an operator's script would drive it: whole
//! `airlock run --scripted` sessions timed from outside, and the time from an approval on
//! stdin to the block's first output event on stdout.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A private home for the sessions: config, data and history of their own.
pub struct Home {
    dir: tempfile::TempDir,
    image: String,
    /// `-c key=value` settings every session gets.
    settings: Vec<String>,
}

impl Home {
    pub fn new(image: &str, settings: &[&str]) -> anyhow::Result<Self> {
        Ok(Self {
            dir: tempfile::tempdir()?,
            image: image.to_string(),
            settings: settings.iter().map(|s| s.to_string()).collect(),
        })
    }

    fn airlock(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_airlock"));
        command
            .env("XDG_DATA_HOME", self.dir.path().join("data"))
            .env("XDG_CONFIG_HOME", self.dir.path().join("config"))
            .arg("-c")
            .arg(format!("sandbox.image={}", self.image));
        for setting in &self.settings {
            command.arg("-c").arg(setting);
        }
        command
    }

    /// A model script: one reply per block, each a fence of `code`, then a reply without one.
    fn script(&self, code: &str, blocks: usize) -> anyhow::Result<PathBuf> {
        let fence = format!("```python\n{code}```\n");
        let mut toml = String::new();
        for _ in 0..blocks {
            toml.push_str(&format!("[[reply]]\ncontent = {}\n", toml_string(&fence)));
        }
        toml.push_str("[[reply]]\ncontent = \"Done.\"\n");
        let path = self.dir.path().join(format!("script-{blocks}.toml"));
        std::fs::write(&path, toml)?;
        Ok(path)
    }

    /// The wall time of `airlock run --scripted … --approve all --json` with `blocks` blocks
    /// of `code`, checking that each printed `expected`.
    pub fn session(&self, code: &str, blocks: usize, expected: &str) -> anyhow::Result<Duration> {
        let script = self.script(code, blocks)?;
        let mut command = self.airlock();
        command.args(["run", "--approve", "all", "--json", "--prompt", "go"]);
        command.arg("--scripted").arg(&script);
        command.args(["--max-turns", &(blocks + 1).to_string()]);
        let at = Instant::now();
        let output = command.stdin(Stdio::null()).output()?;
        let took = at.elapsed();
        anyhow::ensure!(
            output.status.success(),
            "airlock run failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let finished = String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|event| event["type"] == "exec_finished")
            .filter(|event| event["exit_code"] == 0 && event["output"] == expected)
            .count();
        anyhow::ensure!(
            finished == blocks,
            "{finished} of {blocks} blocks printed {expected:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(took)
    }

    /// Per block as the issue defines it: (a session of 1+K blocks − one of 1 block) / K,
    /// median of `rounds`, the two sessions of a round back to back.
    pub fn per_block(
        &self,
        code: &str,
        blocks: usize,
        rounds: usize,
        expected: &str,
    ) -> anyhow::Result<Duration> {
        self.session(code, 1, expected)?; // warm-up: the first session pays for first uses
        let mut samples = Vec::new();
        for _ in 0..rounds {
            let many = self.session(code, 1 + blocks, expected)?;
            let one = self.session(code, 1, expected)?;
            samples.push(many.saturating_sub(one) / blocks as u32);
        }
        Ok(crate::median(&mut samples))
    }

    /// From writing an approval on stdin to reading the block's first `exec_output` event,
    /// for each of `blocks` blocks of one session: the median. The approval is written
    /// `reading` after the card arrived, as a person reads a card before a key is pressed.
    pub fn approval_to_first_byte(
        &self,
        blocks: usize,
        reading: Duration,
    ) -> anyhow::Result<Duration> {
        let script = self.script("print(1)\n", blocks)?;
        let mut command = self.airlock();
        command.args(["run", "--approve", "ask", "--json", "--prompt", "go"]);
        command.arg("--scripted").arg(&script);
        command.args(["--max-turns", &(blocks + 1).to_string()]);
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let (Some(mut stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            anyhow::bail!("no pipes to airlock");
        };
        let mut samples = Vec::new();
        let mut approved: Option<Instant> = None;
        for line in BufReader::new(stdout).lines() {
            let event: serde_json::Value = serde_json::from_str(&line?)?;
            match event["type"].as_str() {
                Some("block_proposed") => {
                    std::thread::sleep(reading);
                    let decision =
                        serde_json::json!({"block": event["block"], "decision": "approve"});
                    writeln!(stdin, "{decision}")?;
                    stdin.flush()?;
                    approved = Some(Instant::now());
                }
                Some("exec_output") => {
                    if let Some(at) = approved.take() {
                        samples.push(at.elapsed());
                    }
                }
                Some("done") => break,
                _ => {}
            }
        }
        drop(stdin);
        let status = child.wait()?;
        anyhow::ensure!(status.success(), "airlock run failed: {status}");
        anyhow::ensure!(samples.len() == blocks, "{} first bytes", samples.len());
        Ok(crate::median(&mut samples))
    }
}

fn toml_string(text: &str) -> String {
    serde_json::Value::String(text.to_string()).to_string()
}
