//! The one place ops are served. Whatever the engine is doing, some ops mean the same
//! (shutdown, no-supervisor, lifting a rule); the rest are taken by the moment that has a
//! use for them and answered "not possible" by every other.

use super::decisions::op_name;
use super::events::Events;
use super::policy::Policy;
use crate::protocol::{DecisionRequest, Event, Op, Submission};

/// What the engine is doing when an op comes.
#[derive(Debug, Clone, Copy)]
pub(super) enum Moment<'a> {
    Replying,
    /// A turn's blocks wait, for decisions or for the sandbox (`now` says which, for a
    /// "not possible" message).
    Deciding(&'a str),
    Running,
    /// Waiting for the operator's next message; a retry follows a failed or cancelled reply.
    Waiting {
        can_retry: bool,
    },
}

impl<'a> Moment<'a> {
    /// When, for "… is not possible {now}".
    fn now(self) -> &'a str {
        match self {
            Self::Replying => "while the model is replying",
            Self::Deciding(now) => now,
            Self::Running => "while a block runs",
            Self::Waiting { .. } => "now: nothing is pending",
        }
    }
}

/// An op the moment has a use for, for its caller to carry out; `id` is the op's, for the
/// events that answer it.
#[derive(Debug)]
pub(super) enum Wanted {
    Cancel {
        id: Option<String>,
    },
    Decide {
        request: DecisionRequest,
        id: Option<String>,
    },
    Message {
        text: String,
        id: Option<String>,
    },
    Retry,
}

#[derive(Debug)]
pub(super) enum Served {
    /// Done with here (or refused, with an error event).
    Handled,
    /// The operator shut the session down, or the input ended.
    Shutdown,
    Take(Wanted),
}

/// Serves `submitted` (`None`: the input ended) at `moment`.
pub(super) fn serve(
    submitted: Option<Submission>,
    moment: Moment,
    supervised: &mut bool,
    policy: &mut Policy,
    events: &Events,
) -> Served {
    let Some(Submission { id, op }) = submitted else {
        return Served::Shutdown;
    };
    match (op, moment) {
        (Op::Shutdown, _) => Served::Shutdown,
        (Op::NoSupervisor, _) => {
            *supervised = false;
            Served::Handled
        }
        (Op::RevokeRule { rule }, _) => {
            revoke(&rule, id.as_deref(), policy, events);
            Served::Handled
        }
        (Op::Cancel, _) => Served::Take(Wanted::Cancel { id }),
        (Op::Decide(request), Moment::Deciding(_) | Moment::Running) => {
            Served::Take(Wanted::Decide { request, id })
        }
        (Op::UserMessage { text }, Moment::Waiting { .. }) => {
            Served::Take(Wanted::Message { text, id })
        }
        (Op::Retry, Moment::Waiting { can_retry: true }) => Served::Take(Wanted::Retry),
        (op, moment) => {
            let refusal = format!("{} is not possible {}", op_name(&op), moment.now());
            events.refuse(id.as_deref(), refusal);
            Served::Handled
        }
    }
}

fn revoke(rule: &str, answering: Option<&str>, policy: &mut Policy, events: &Events) {
    match policy.revoke(rule) {
        Some(revoked) => {
            events.send(Event::RuleRevoked {
                rule: revoked,
                id: answering.map(str::to_string),
            });
            events.send(Event::Rules {
                rules: policy.rules(),
            });
        }
        None => events.refuse(
            answering,
            format!("no approval rule `{rule}` is in force; the rules event lists those that are"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ApprovalConfig;
    use crate::engine::LanguageTable;
    use crate::protocol::DecisionKind;

    fn decide() -> Op {
        Op::Decide(DecisionRequest {
            block: "b-1".into(),
            decision: DecisionKind::Approve,
            reason: None,
            code: None,
            scope: None,
        })
    }

    /// What `op` (submitted with the id `op-1`) gets at `moment`: the op taken (its name),
    /// "handled", "shutdown", and the errors sent, each checked to answer `op-1`.
    fn served(op: Option<Op>, moment: Moment) -> (String, Vec<String>) {
        let submitted = op.map(|op| Submission {
            id: Some("op-1".into()),
            op,
        });
        let bus = crate::engine::Bus::new();
        let mut receiver = bus.subscribe();
        let events = Events::new(bus);
        let mut policy =
            Policy::new(&ApprovalConfig::default(), &LanguageTable::default()).expect("a policy");
        let mut supervised = true;
        let outcome = match serve(submitted, moment, &mut supervised, &mut policy, &events) {
            Served::Handled => "handled".to_string(),
            Served::Shutdown => "shutdown".to_string(),
            Served::Take(wanted) => format!("{wanted:?}"),
        };
        let mut errors = Vec::new();
        while let Some(event) = receiver.try_recv() {
            if let Event::Error { message, id } = event {
                assert_eq!(id.as_deref(), Some("op-1"), "{message}");
                errors.push(message);
            }
        }
        (outcome, errors)
    }

    #[test]
    fn each_moment_takes_its_ops_and_refuses_the_rest_by_name() {
        let waiting = Moment::Waiting { can_retry: false };
        let deciding = Moment::Deciding("while blocks wait for decisions");
        assert!(
            served(Some(decide()), Moment::Running)
                .0
                .starts_with("Decide")
        );
        assert!(served(Some(decide()), deciding).0.starts_with("Decide"));
        assert_eq!(
            served(Some(Op::Cancel), Moment::Replying).0,
            "Cancel { id: Some(\"op-1\") }"
        );
        let message = Op::UserMessage { text: "hi".into() };
        assert_eq!(
            served(Some(message.clone()), waiting).0,
            "Message { text: \"hi\", id: Some(\"op-1\") }"
        );
        assert_eq!(
            served(Some(Op::Retry), Moment::Waiting { can_retry: true }).0,
            "Retry"
        );
        let refused = [
            (
                Some(decide()),
                Moment::Replying,
                "a decision is not possible while the model is replying",
            ),
            (
                Some(decide()),
                waiting,
                "a decision is not possible now: nothing is pending",
            ),
            (
                Some(message.clone()),
                Moment::Running,
                "a message to the model is not possible while a block runs",
            ),
            (
                Some(message),
                deciding,
                "a message to the model is not possible while blocks wait for decisions",
            ),
            (
                Some(Op::Retry),
                waiting,
                "a retry is not possible now: nothing is pending",
            ),
        ];
        for (op, moment, error) in refused {
            assert_eq!(
                served(op, moment),
                ("handled".to_string(), vec![error.to_string()])
            );
        }
    }

    #[test]
    fn shutdown_the_end_of_input_and_rules_mean_the_same_at_every_moment() {
        let moments = [
            Moment::Replying,
            Moment::Deciding("now"),
            Moment::Running,
            Moment::Waiting { can_retry: true },
        ];
        for moment in moments {
            assert_eq!(served(None, moment).0, "shutdown");
            assert_eq!(served(Some(Op::Shutdown), moment).0, "shutdown");
            assert_eq!(
                served(Some(Op::NoSupervisor), moment),
                ("handled".into(), vec![])
            );
            let (outcome, errors) = served(
                Some(Op::RevokeRule {
                    rule: "nothing:here".into(),
                }),
                moment,
            );
            assert_eq!(outcome, "handled");
            assert!(
                errors[0].starts_with("no approval rule `nothing:here`"),
                "{errors:?}"
            );
        }
    }
}
