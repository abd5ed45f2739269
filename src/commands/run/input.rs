//! `airlock run`'s standard input: decisions as JSON lines (with an optional `id`), rule
//! revocations, and at a terminal the short answers; each line becomes a submission, or an
//! error saying why it was not taken.

use std::io::BufRead;

use tokio::sync::mpsc;

use crate::output::sanitize::for_person;
use crate::protocol::{DecisionKind, DecisionRequest, Event, Op, Scope, Submission};
use crate::view::BlockState;

/// Standard input, line by line; the channel closes at end of input.
///
/// Read on a plain thread, not with tokio's stdin: tokio reads it on its blocking pool, and
/// shutting the runtime down waits for that read, so at a terminal the process stayed after
/// the session ended until Enter was pressed. A plain thread ends with the process.
pub(super) fn stdin_lines() -> anyhow::Result<mpsc::UnboundedReceiver<String>> {
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::Builder::new()
        .name("stdin-lines".into())
        .spawn(move || {
            // As bytes: a line that is not UTF-8 is a bad line (refused with an error), not
            // the end of input.
            for line in std::io::stdin().lock().split(b'\n') {
                let Ok(mut line) = line else { break };
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                if tx
                    .send(String::from_utf8_lossy(&line).into_owned())
                    .is_err()
                {
                    break;
                }
            }
        })
        .map_err(|err| anyhow::anyhow!("cannot start reading standard input: {err}"))?;
    Ok(rx)
}

/// `{"revoke_rule": ID}`: lift an approval rule (its id from the `rules` event).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeLine {
    revoke_rule: String,
}

/// A line of stdin that was not taken: why, and the line's `id` when it had one.
#[derive(Debug, PartialEq)]
pub(super) struct Refused {
    message: String,
    id: Option<String>,
}

impl Refused {
    pub(super) fn event(self) -> Event {
        Event::Error {
            message: self.message,
            id: self.id,
        }
    }
}

/// A JSON decision line (with an optional `id`, which the events that answer it carry), or
/// at a terminal a short answer for the first undecided block.
pub(super) fn decision_from_line(
    line: &str,
    interactive: bool,
    first_undecided: Option<&BlockState>,
) -> Result<Option<Submission>, Refused> {
    let line = line.trim();
    if line.is_empty() {
        return Ok(None);
    }
    if line.starts_with('{') {
        return json_line(line).map(Some);
    }
    short_answer(line, interactive, first_undecided)
        .map(|op| op.map(Submission::from))
        .map_err(|message| Refused { message, id: None })
}

/// `{"id": …, "block": …, "decision": …}` or `{"id": …, "revoke_rule": …}`.
fn json_line(line: &str) -> Result<Submission, Refused> {
    let mut fields = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(line)
        .map_err(|err| invalid_line(&err.to_string(), None))?;
    let id = match fields.remove("id") {
        None => None,
        Some(serde_json::Value::String(id)) => Some(id),
        Some(_) => return Err(invalid_line("its `id` is not a string", None)),
    };
    let rest = serde_json::Value::Object(fields);
    if let Ok(revoke) = serde_json::from_value::<RevokeLine>(rest.clone()) {
        let op = Op::RevokeRule {
            rule: revoke.revoke_rule,
        };
        return Ok(Submission { id, op });
    }
    match serde_json::from_value::<DecisionRequest>(rest) {
        Ok(request) => Ok(Submission {
            id,
            op: Op::Decide(request),
        }),
        Err(err) => Err(invalid_line(&err.to_string(), id)),
    }
}

fn invalid_line(why: &str, id: Option<String>) -> Refused {
    Refused {
        message: format!(
            "ignored a decision line that is not valid ({why}): expected {{\"block\": ID, \
             \"decision\": \"approve\"|\"approve_session\"|\"edit\"|\"skip\"|\"reject\"|\"abort\", …}}"
        ),
        id,
    }
}

/// At a terminal: `y`, `a [exact]`, `s`, `n REASON` or `q` for the first undecided block.
fn short_answer(
    line: &str,
    interactive: bool,
    first_undecided: Option<&BlockState>,
) -> Result<Option<Op>, String> {
    if !interactive {
        return Err(format!(
            "ignored a line that is not a JSON decision: {}",
            for_person(line)
        ));
    }
    let Some(block) = first_undecided else {
        return Err("no block is waiting for a decision".into());
    };
    let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
    let rest = rest.trim();
    let (decision, reason, scope) = match word {
        "y" | "yes" => (DecisionKind::Approve, None, None),
        "a" => {
            let scope = if rest == "exact" {
                Scope::Exact
            } else {
                Scope::Language
            };
            (DecisionKind::ApproveSession, None, Some(scope))
        }
        "s" | "skip" => (DecisionKind::Skip, None, None),
        "n" | "no" => (
            DecisionKind::Reject,
            Some(rest.to_string()).filter(|r| !r.is_empty()),
            None,
        ),
        "q" | "abort" => (DecisionKind::Abort, None, None),
        _ => {
            return Err(
                "answer y (approve), a [exact] (approve for the session), s (skip), n REASON \
                 (reject), q (abort the turn), or a JSON decision line"
                    .into(),
            );
        }
    };
    Ok(Some(Op::Decide(DecisionRequest {
        block: block.id.clone(),
        decision,
        reason,
        code: None,
        scope,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_become_decisions() {
        let first = crate::view::BlockState {
            id: "b-1".into(),
            index: 0,
            language: "bash".into(),
            code: "ls\n".into(),
            hash: crate::ids::short_hash("ls\n"),
            decision: None,
            edited: None,
            run: None,
            result: None,
        };
        let op_of = |line: &str, interactive: bool, first: Option<&BlockState>| {
            decision_from_line(line, interactive, first)
                .expect("valid")
                .map(|submitted| submitted.op)
        };
        let error_of = |line: &str, interactive: bool, first: Option<&BlockState>| {
            let refused = decision_from_line(line, interactive, first).expect_err("refused");
            (refused.message, refused.id)
        };
        let op = op_of(r#"{"block":"b-9","decision":"skip"}"#, false, None);
        assert!(
            matches!(op, Some(Op::Decide(DecisionRequest { block, decision: DecisionKind::Skip, .. })) if block == "b-9")
        );
        let op = op_of(r#"{"revoke_rule":"allow_languages:sh"}"#, false, None);
        assert!(
            matches!(op, Some(Op::RevokeRule { ref rule }) if rule == "allow_languages:sh"),
            "{op:?}"
        );
        let (message, id) = error_of("{\"block\": 1}", false, None);
        assert!(message.contains("not valid") && id.is_none(), "{message}");
        let (message, _) = error_of("y", false, Some(&first));
        assert!(message.contains("not a JSON decision"), "{message}");
        let op = op_of("n too slow", true, Some(&first));
        assert!(
            matches!(op, Some(Op::Decide(DecisionRequest { decision: DecisionKind::Reject, reason: Some(r), .. })) if r == "too slow")
        );
        let op = op_of("a exact", true, Some(&first));
        assert!(matches!(
            op,
            Some(Op::Decide(DecisionRequest {
                scope: Some(Scope::Exact),
                ..
            }))
        ));
        assert!(decision_from_line("maybe", true, Some(&first)).is_err());
        assert!(decision_from_line("y", true, None).is_err());
        assert_eq!(decision_from_line("  ", false, None), Ok(None));
    }

    #[test]
    fn a_line_s_id_goes_with_its_op_and_with_the_error_that_refuses_it() {
        let line = r#"{"id":"d-1","block":"b-9","decision":"approve"}"#;
        let submitted = decision_from_line(line, false, None).expect("valid");
        assert_eq!(
            submitted.as_ref().and_then(|s| s.id.as_deref()),
            Some("d-1")
        );
        let revoke = r#"{"revoke_rule":"allow_languages:sh","id":"r-1"}"#;
        let submitted = decision_from_line(revoke, false, None).expect("valid");
        assert_eq!(submitted.and_then(|s| s.id), Some("r-1".to_string()));
        let refused = |line: &str| {
            let refused = decision_from_line(line, false, None).expect_err("refused");
            (refused.message, refused.id)
        };
        let (message, id) = refused(r#"{"id":"d-2","block":"b-9","decision":"maybe"}"#);
        assert_eq!(id.as_deref(), Some("d-2"), "{message}");
        let (message, id) = refused(r#"{"id":7,"block":"b-9","decision":"skip"}"#);
        assert!(
            message.contains("`id` is not a string") && id.is_none(),
            "{message}"
        );
        let (message, id) = refused(r#"{"id":"d-3","block":"#);
        assert!(message.contains("not valid") && id.is_none(), "{message}");
    }
}
