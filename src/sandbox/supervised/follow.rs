//! Following one block through the supervisor, whatever engine runs it: its output frames
//! go into the capture and the live view as they come, and its exit report, taken by the
//! supervisor from waitpid, becomes the result. airlock's own deadline is only the backstop:
//! past it, or when the line is lost, the backend replaces the container.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::link::Link;
use super::{HOST_MARGIN, QUIET};
use crate::output::OutputCapture;
use crate::protocol::{ExecResult, Stream};
use crate::sandbox::LiveOutput;
use crate::supervisor::frame::{ExitReport, Frame};

/// A line still waiting for its newline is shown at least this often.
const PARTIAL_EVERY: Duration = Duration::from_millis(250);

/// How a block ended, as airlock saw it.
pub(crate) enum BlockEnd {
    /// The supervisor's report.
    Reported(ExitReport),
    /// Nothing came by the host deadline.
    Stalled { cancelled: bool },
    /// The line to the supervisor is gone, or it could not run the block.
    Lost(String),
}

impl ExitReport {
    /// What the report says of the run, written into its result.
    pub(crate) fn apply_to(&self, result: &mut ExecResult) {
        result.oom_killed = self.oom_kills > 0;
        result.workspace_full = self.workspace_full;
        result.timed_out = self.timed_out && !result.oom_killed;
        result.cancelled = self.cancelled;
        if !result.timed_out && !result.cancelled {
            result.exit_code = self.shell_status();
        }
    }
}

/// Reads the block's frames until its report, the host deadline or the end of the line.
/// A line still waiting for its newline is shown after a moment of quiet, or after
/// [`PARTIAL_EVERY`] when the program trickles without ever pausing; a cancel is passed on to
/// the supervisor, which then has [`HOST_MARGIN`] to report.
pub(crate) async fn follow(
    link: &mut Link,
    capture: &mut OutputCapture,
    live: LiveOutput<'_>,
    mut deadline: tokio::time::Instant,
    cancel: Option<&CancellationToken>,
) -> BlockEnd {
    let never = CancellationToken::new();
    let cancel = cancel.unwrap_or(&never);
    let mut cancelled = false;
    let mut shown_at = tokio::time::Instant::now();
    loop {
        let quiet_at = (tokio::time::Instant::now() + QUIET).min(deadline);
        let next = tokio::select! {
            next = link.next(quiet_at) => Some(next),
            () = cancel.cancelled(), if !cancelled => None,
        };
        let Some(next) = next else {
            cancelled = true;
            if let Err(why) = link.send(&Frame::Cancel).await {
                return BlockEnd::Lost(why);
            }
            deadline = deadline.min(tokio::time::Instant::now() + HOST_MARGIN);
            continue;
        };
        let (stream, bytes) = match next {
            Ok(None) if quiet_at >= deadline => return BlockEnd::Stalled { cancelled },
            Ok(None) => {
                show_partial(capture, live, &mut shown_at);
                continue;
            }
            Ok(Some(Frame::Stdout(bytes))) => (Stream::Stdout, bytes),
            Ok(Some(Frame::Stderr(bytes))) => (Stream::Stderr, bytes),
            Ok(Some(Frame::Exit(report))) => return BlockEnd::Reported(report),
            Ok(Some(Frame::Busy)) => {
                // Copying the workspace, which is bounded: the backstop moves with it.
                deadline = deadline.max(tokio::time::Instant::now() + HOST_MARGIN);
                continue;
            }
            Ok(Some(Frame::Fault(why))) => {
                return BlockEnd::Lost(crate::output::sanitize::neutralize(&why));
            }
            Ok(Some(_)) => return BlockEnd::Lost("it sent a frame out of turn".into()),
            Err(_) => return BlockEnd::Lost(link.why_gone()),
        };
        let text = capture.push(stream, &bytes);
        if !text.is_empty() {
            live(stream, &text);
            shown_at = tokio::time::Instant::now();
        } else if shown_at.elapsed() >= PARTIAL_EVERY {
            show_partial(capture, live, &mut shown_at);
        }
    }
}

/// Shows the lines still waiting for their newline.
fn show_partial(
    capture: &mut OutputCapture,
    live: LiveOutput<'_>,
    shown_at: &mut tokio::time::Instant,
) {
    for (stream, text) in capture.flush_partial_lines() {
        live(stream, &text);
    }
    *shown_at = tokio::time::Instant::now();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> ExitReport {
        ExitReport {
            exit_code: Some(3),
            duration_ms: 10,
            ..ExitReport::default()
        }
    }

    fn applied(report: &ExitReport) -> ExecResult {
        let mut result = ExecResult::default();
        report.apply_to(&mut result);
        result
    }

    #[test]
    fn reports_become_exit_codes_timeouts_cancels_and_oom() {
        assert_eq!(applied(&report()).exit_code, Some(3));
        let killed = ExitReport {
            exit_code: None,
            signal: Some(9),
            oom_kills: 1,
            ..report()
        };
        let oom = applied(&killed);
        assert!(oom.oom_killed && !oom.timed_out && oom.exit_code == Some(137));
        let late = ExitReport {
            exit_code: None,
            signal: Some(15),
            timed_out: true,
            ..report()
        };
        let timed = applied(&late);
        assert!(timed.timed_out && timed.exit_code.is_none());
        let stopped = applied(&ExitReport {
            cancelled: true,
            ..report()
        });
        assert!(stopped.cancelled && stopped.exit_code.is_none());
    }
}
