//! The only boundary between the engine and its frontends: serde-tagged events (and, with
//! the session loop, operations). The headless `--json` output is these events, one per line.

use serde::{Deserialize, Serialize};

/// Which output stream a chunk came from. The discriminants index per-stream state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    Stdout = 0,
    Stderr = 1,
}

/// The outcome of running one block, as `airlock exec --json` prints it and as
/// `exec_finished` carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecResult {
    /// The program's exit code; `None` when airlock killed it (timeout, cancel).
    pub exit_code: Option<i64>,
    pub timed_out: bool,
    pub oom_killed: bool,
    /// The kept output is shorter than what was produced.
    pub truncated: bool,
    /// What was kept: both streams in arrival order, neutralized.
    pub output: String,
    /// Every byte the program wrote.
    pub output_bytes: u64,
    pub duration_ms: u64,
    /// The image name and the digest or id that ran.
    pub image: String,
    /// The container had to be replaced to get rid of the block's processes.
    pub container_restarted: bool,
}

/// Something the engine reports to its frontends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    SessionStarted {
        session: String,
    },
    /// Progress and warnings worth showing (image pull, create warnings, restarts).
    Notice {
        message: String,
    },
    ExecStarted {
        block: String,
        run: String,
    },
    ExecOutput {
        block: String,
        run: String,
        stream: Stream,
        data: String,
    },
    ExecFinished {
        block: String,
        run: String,
        #[serde(flatten)]
        result: ExecResult,
    },
    Error {
        message: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_flat_and_tagged() {
        let event = Event::ExecFinished {
            block: "b1".into(),
            run: "r1".into(),
            result: ExecResult {
                exit_code: Some(0),
                timed_out: false,
                oom_killed: false,
                truncated: false,
                output: "hi\n".into(),
                output_bytes: 3,
                duration_ms: 70,
                image: "img (sha256:00)".into(),
                container_restarted: false,
            },
        };
        let json = serde_json::to_value(&event).expect("serializes");
        assert_eq!(json["type"], "exec_finished");
        assert_eq!(json["exit_code"], 0);
        assert_eq!(json["output"], "hi\n");
        let back: Event = serde_json::from_value(json).expect("round trip");
        assert_eq!(back, event);
        let chunk = Event::ExecOutput {
            block: "b".into(),
            run: "r".into(),
            stream: Stream::Stderr,
            data: "x".into(),
        };
        let json = serde_json::to_value(&chunk).expect("serializes");
        assert_eq!(json["stream"], "stderr");
    }
}
