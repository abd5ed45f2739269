//! The external approver command: the command-line form of AutoGen's `approval_func`. It
//! gets one JSON request on stdin and answers `{"approved": bool, "reason": "..."}` on stdout.
//! Anything else (a failure, a timeout, garbage) decides nothing.

use std::process::Stdio;
use std::time::Duration;

use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use crate::engine::approver::{ApprovalRequest, Approver, ApproverVerdict};

/// More than any sensible answer; the rest is not read.
const ANSWER_LIMIT: usize = 64 * 1024;

#[derive(Debug, Clone)]
pub struct CommandApprover {
    argv: Vec<String>,
    timeout: Duration,
}

#[derive(Deserialize)]
struct Answer {
    approved: bool,
    #[serde(default)]
    reason: Option<String>,
}

impl CommandApprover {
    /// `None` when no command is configured.
    pub(crate) fn new(argv: &[String], timeout: Duration) -> Option<Self> {
        (!argv.is_empty()).then(|| Self {
            argv: argv.to_vec(),
            timeout,
        })
    }

    async fn ask(&self, request: &ApprovalRequest) -> Result<ApproverVerdict, String> {
        let (program, args) = self.argv.split_first().ok_or("no command")?;
        let mut child = tokio::process::Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|err| format!("cannot start `{program}`: {err}"))?;
        let body = serde_json::to_vec(request).map_err(|err| err.to_string())?;
        // Its input, its answer and its diagnostics all at once: a command that writes much
        // to stderr before it answers (or answers before it reads) must not stall on a full
        // pipe while airlock waits on another.
        let feed = async {
            if let Some(mut stdin) = child.stdin.take() {
                // An approver that decides without reading its input is fine.
                let _ = stdin.write_all(&body).await;
            }
        };
        let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
        let ((), stdout, stderr) = tokio::join!(
            feed,
            read_bounded(stdout, ANSWER_LIMIT),
            read_bounded(stderr, ANSWER_LIMIT)
        );
        let stdout = stdout.map_err(|err| format!("cannot read its answer: {err}"))?;
        let stderr = stderr.unwrap_or_default();
        let status = child
            .wait()
            .await
            .map_err(|err| format!("cannot wait for it: {err}"))?;
        if !status.success() {
            let stderr = crate::output::sanitize::neutralize(&String::from_utf8_lossy(&stderr));
            return Err(format!(
                "`{program}` exited with {status}{}",
                if stderr.trim().is_empty() {
                    String::new()
                } else {
                    format!(": {}", stderr.trim())
                }
            ));
        }
        let answer: Answer = serde_json::from_slice(&stdout).map_err(|err| {
            format!(
                "`{program}` answered {:?}, not {{\"approved\": true|false, \"reason\": \"...\"}} ({err})",
                String::from_utf8_lossy(&stdout[..stdout.len().min(200)])
            )
        })?;
        Ok(ApproverVerdict {
            approved: answer.approved,
            reason: answer.reason,
        })
    }
}

/// The first `limit` bytes of a pipe, read to its end so the writer never blocks on it.
async fn read_bounded(
    pipe: Option<impl AsyncRead + Unpin>,
    limit: usize,
) -> std::io::Result<Vec<u8>> {
    let mut kept = Vec::new();
    let Some(mut pipe) = pipe else {
        return Ok(kept);
    };
    let mut chunk = [0u8; 8192];
    loop {
        let read = pipe.read(&mut chunk).await?;
        if read == 0 {
            return Ok(kept);
        }
        let room = limit.saturating_sub(kept.len());
        kept.extend_from_slice(&chunk[..read.min(room)]);
    }
}

impl Approver for CommandApprover {
    async fn review(&self, request: &ApprovalRequest) -> Result<ApproverVerdict, String> {
        match tokio::time::timeout(self.timeout, self.ask(request)).await {
            Ok(verdict) => verdict,
            Err(_) => Err(format!(
                "it did not answer within {} s (approval.approver_timeout_secs)",
                self.timeout.as_secs()
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> ApprovalRequest {
        ApprovalRequest {
            session: "s".into(),
            block: "b-1".into(),
            index: 0,
            language: "bash".into(),
            code: "rm -rf /tmp/x\n".into(),
            context: "I will clean up.".into(),
        }
    }

    fn shell(script: &str, timeout_ms: u64) -> CommandApprover {
        let argv = ["sh".to_string(), "-c".to_string(), script.to_string()];
        CommandApprover::new(&argv, Duration::from_millis(timeout_ms)).expect("configured")
    }

    #[tokio::test]
    async fn a_real_command_reads_the_request_and_decides() {
        // Rejects code that mentions rm, approves the rest; the reason echoes the language.
        let approver = shell(
            r#"input=$(cat); case "$input" in *'"code":"rm '*) echo '{"approved": false, "reason": "no rm"}';; *) echo '{"approved": true}';; esac"#,
            5000,
        );
        let verdict = approver.review(&request()).await.expect("answers");
        assert_eq!(
            verdict,
            ApproverVerdict {
                approved: false,
                reason: Some("no rm".into())
            }
        );
        let mut harmless = request();
        harmless.code = "ls\n".into();
        assert!(approver.review(&harmless).await.expect("answers").approved);
    }

    #[tokio::test]
    async fn an_approver_that_writes_much_to_stderr_first_still_answers() {
        // 1 MiB of diagnostics fills any pipe many times over before the answer comes.
        let approver = shell(
            r#"head -c 1048576 /dev/zero | tr '\0' x >&2; cat >/dev/null; echo '{"approved": true, "reason": "fine"}'"#,
            60_000,
        );
        let verdict = approver.review(&request()).await;
        assert_eq!(
            verdict,
            Ok(ApproverVerdict {
                approved: true,
                reason: Some("fine".into())
            })
        );
    }

    #[tokio::test]
    async fn failure_garbage_and_silence_decide_nothing() {
        let err = shell("echo nope >&2; exit 3", 5000)
            .review(&request())
            .await
            .unwrap_err();
        assert!(
            err.contains("exit status: 3") && err.contains("nope"),
            "{err}"
        );
        let err = shell("cat >/dev/null; echo yes", 5000)
            .review(&request())
            .await
            .unwrap_err();
        assert!(err.contains("\"yes\\n\""), "{err}");
        let err = shell(r#"echo '{"approved": "yes"}'"#, 5000)
            .review(&request())
            .await
            .unwrap_err();
        assert!(err.contains("approved"), "{err}");
        let err = shell("sleep 5", 200).review(&request()).await.unwrap_err();
        assert!(err.contains("did not answer within"), "{err}");
        let missing =
            CommandApprover::new(&["/nonexistent/approver".into()], Duration::from_secs(1))
                .expect("configured");
        let err = missing.review(&request()).await.unwrap_err();
        assert!(err.contains("cannot start"), "{err}");
    }
}
