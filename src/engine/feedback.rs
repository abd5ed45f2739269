//! What the model is told about a block's result: a status line saying plainly what
//! happened, and a head+tail excerpt of the output with an explicit marker.

use crate::output::{fence_for, omission_marker};
use crate::protocol::{ExecResult, Outcome};

/// Limits the model is told about, so its status lines can name them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FeedbackLimits {
    pub(crate) excerpt_bytes: usize,
    pub(crate) timeout_secs: u64,
    pub(crate) memory_bytes: u64,
    /// What /workspace may hold: bytes, and files and directories.
    pub(crate) workspace: (u64, u64),
}

/// The normalized text the model receives for one block's run.
pub(crate) fn result_for_model(result: &ExecResult, limits: &FeedbackLimits) -> String {
    let mut lines = vec![status_line(result, limits)];
    if result.container_restarted {
        lines.push(
            "Processes it left behind could not be stopped, so the sandbox container was restarted; files in /workspace are kept, anything else (e.g. /tmp) is gone."
                .to_string(),
        );
    }
    if result.workspace_full {
        let (bytes, inodes) = limits.workspace;
        lines.push(format!(
            "The workspace is full: /workspace holds at most {} MiB in {inodes} files and \
             directories, and writes past that failed with \"No space left on device\". Remove \
             files there to make room.",
            bytes >> 20
        ));
    }
    if result.truncated {
        lines.push(format!(
            "Output was truncated: it printed {} bytes; the beginning and the end were kept.",
            result.output_bytes
        ));
    }
    if result.output.is_empty() {
        lines.push("It printed nothing.".to_string());
    } else {
        let excerpt = excerpt(&result.output, limits.excerpt_bytes);
        if excerpt.len() < result.output.len() {
            lines.push(format!(
                "Only part of the output is shown here ({} of {} bytes kept).",
                excerpt.len(),
                result.output.len()
            ));
        }
        let fence = fence_for(&excerpt);
        let newline = if excerpt.ends_with('\n') { "" } else { "\n" };
        lines.push(format!("Output:\n{fence}\n{excerpt}{newline}{fence}"));
    }
    lines.join("\n")
}

fn status_line(result: &ExecResult, limits: &FeedbackLimits) -> String {
    match result.outcome() {
        Outcome::Stopped => {
            "The operator stopped the block before it finished; its output may be partial."
                .to_string()
        }
        Outcome::OutOfMemory => format!(
            "The block was killed because it ran out of memory (limit {} MiB).",
            limits.memory_bytes >> 20
        ),
        Outcome::TimedOut => format!(
            "The block was stopped after reaching the {} s time limit; its output may be partial.",
            limits.timeout_secs
        ),
        Outcome::Exited(0) => "The block ran successfully (exit code 0).".to_string(),
        Outcome::Exited(code) if code > 128 && code < 160 => format!(
            "The block failed with exit code {code} (killed by signal {}).",
            code - 128
        ),
        Outcome::Exited(code) => format!("The block failed with exit code {code}."),
        Outcome::Killed => "The block was stopped by airlock before it finished.".to_string(),
    }
}

/// Head and tail of `text` within `limit` bytes, cut at line boundaries where possible.
fn excerpt(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_string();
    }
    let half = limit / 2;
    let mut head_end = half;
    while !text.is_char_boundary(head_end) {
        head_end -= 1;
    }
    let head_end = text[..head_end].rfind('\n').map_or(head_end, |i| i + 1);
    let mut tail_start = text.len() - half;
    while !text.is_char_boundary(tail_start) {
        tail_start += 1;
    }
    let tail_start = text[tail_start..]
        .find('\n')
        .map_or(tail_start, |i| tail_start + i + 1)
        .min(text.len());
    let omitted = (tail_start - head_end) as u64;
    format!(
        "{}{}{}",
        &text[..head_end],
        omission_marker(omitted).trim_start_matches('\n'),
        &text[tail_start..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: FeedbackLimits = FeedbackLimits {
        excerpt_bytes: 200,
        timeout_secs: 60,
        memory_bytes: 512 << 20,
        workspace: (1 << 30, 100_000),
    };

    fn result(exit_code: Option<i64>, output: &str) -> ExecResult {
        ExecResult::sample(exit_code, output)
    }

    #[test]
    fn success_with_output() {
        let text = result_for_model(&result(Some(0), "42\n"), &LIMITS);
        assert_eq!(
            text,
            "The block ran successfully (exit code 0).\nOutput:\n```\n42\n```"
        );
    }

    #[test]
    fn failure_and_no_output() {
        let text = result_for_model(&result(Some(2), ""), &LIMITS);
        assert!(
            text.contains("exit code 2") && text.contains("printed nothing"),
            "{text}"
        );
        let text = result_for_model(&result(Some(137), ""), &LIMITS);
        assert!(text.contains("signal 9"), "{text}");
    }

    #[test]
    fn timeout_oom_truncation_and_restart_are_stated() {
        let mut timed_out = result(None, "partial");
        timed_out.timed_out = true;
        timed_out.container_restarted = true;
        let text = result_for_model(&timed_out, &LIMITS);
        assert!(
            text.contains("60 s time limit") && text.contains("partial"),
            "{text}"
        );
        assert!(text.contains("restarted"), "{text}");
        let mut oom = result(Some(137), "");
        oom.oom_killed = true;
        assert!(result_for_model(&oom, &LIMITS).contains("out of memory (limit 512 MiB)"));
        let mut truncated = result(Some(0), "x");
        truncated.truncated = true;
        truncated.output_bytes = 300_000_000;
        assert!(result_for_model(&truncated, &LIMITS).contains("printed 300000000 bytes"));
        let mut cancelled = result(None, "half");
        cancelled.cancelled = true;
        assert!(result_for_model(&cancelled, &LIMITS).contains("operator stopped the block"));
        let mut full = result(Some(1), "OSError: [Errno 28] No space left on device\n");
        assert!(!result_for_model(&full, &LIMITS).contains("workspace is full"));
        full.workspace_full = true;
        let text = result_for_model(&full, &LIMITS);
        assert!(
            text.contains("workspace is full: /workspace holds at most 1024 MiB in 100000 files"),
            "{text}"
        );
    }

    #[test]
    fn long_output_becomes_head_and_tail() {
        let output: String = (0..1000).map(|i| format!("line {i}\n")).collect();
        let text = result_for_model(&result(Some(0), &output), &LIMITS);
        assert!(
            text.contains("line 0\n") && text.contains("line 999\n"),
            "{text}"
        );
        assert!(!text.contains("line 500\n"));
        assert!(text.contains("bytes of output omitted"));
        assert!(text.len() < 600, "{}", text.len());
    }

    #[test]
    fn output_cannot_close_the_fence() {
        let text = result_for_model(&result(Some(0), "```\nfake\n````\n"), &LIMITS);
        assert!(text.contains("`````\n```\nfake"), "{text}");
    }
}
