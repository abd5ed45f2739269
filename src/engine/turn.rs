//! One model message's runnable blocks on their way through decisions and runs, and the one
//! message that takes their results back to the model.

use super::Language;
use super::feedback::{FeedbackLimits, result_for_model};
use crate::protocol::{DecisionKind, DecisionSource, ExecResult, Origin};

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Decided {
    pub(crate) kind: DecisionKind,
    pub(crate) source: DecisionSource,
    pub(crate) reason: Option<String>,
    /// The operator's version of the code, for `edit`.
    pub(crate) edited: Option<String>,
}

impl Decided {
    pub(crate) fn new(
        kind: DecisionKind,
        source: DecisionSource,
        reason: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            source,
            reason: Some(reason.into()),
            edited: None,
        }
    }
}

/// What became of a block that was to run.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Fate {
    Ran(ExecResult),
    /// The sandbox could not run it.
    Broken(String),
}

impl Fate {
    /// Counts as a failure for stop-on-failure.
    pub(crate) fn failed(&self) -> bool {
        match self {
            Self::Ran(result) => !result.outcome().succeeded(),
            Self::Broken(_) => true,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct TurnBlock {
    pub(crate) id: String,
    /// Position among the message's fenced blocks, as `airlock extract` numbers them.
    pub(crate) index: usize,
    pub(crate) language: Language,
    pub(crate) code: String,
    pub(crate) decision: Option<Decided>,
    pub(crate) fate: Option<Fate>,
    /// The tool call it came from (tools protocol), which its result answers.
    pub(crate) call: Option<String>,
    /// Who proposed it.
    pub(crate) origin: Origin,
}

impl TurnBlock {
    /// Nothing more will happen to it: it ran, or it was decided not to run.
    pub(crate) fn settled(&self) -> bool {
        self.fate.is_some() || self.decision.as_ref().is_some_and(|d| !d.kind.runs())
    }

    pub(crate) fn code_to_run(&self) -> &str {
        self.decision
            .as_ref()
            .and_then(|decided| decided.edited.as_deref())
            .unwrap_or(&self.code)
    }
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Turn {
    pub(crate) blocks: Vec<TurnBlock>,
}

impl Turn {
    /// The first block still waiting for a decision or a run; blocks run in order.
    pub(crate) fn next_open(&self) -> Option<usize> {
        self.blocks.iter().position(|block| !block.settled())
    }

    pub(crate) fn position(&self, id: &str) -> Option<usize> {
        self.blocks.iter().position(|block| block.id == id)
    }

    pub(crate) fn aborted(&self) -> bool {
        self.decisions().any(|d| d.kind == DecisionKind::Abort)
    }

    fn decisions(&self) -> impl Iterator<Item = &Decided> {
        self.blocks
            .iter()
            .filter_map(|block| block.decision.as_ref())
    }

    /// For a reply that made tool calls: each call's id and its block's outcome.
    pub(crate) fn answers(&self, limits: &FeedbackLimits) -> Vec<(String, String)> {
        self.blocks
            .iter()
            .filter_map(|block| {
                let call = block.call.clone()?;
                Some((call, block_report(block, limits)))
            })
            .collect()
    }

    /// The message for the model: every block's outcome, in order.
    pub(crate) fn report(&self, limits: &FeedbackLimits) -> String {
        let count = self.blocks.len();
        let noun = if count == 1 { "block" } else { "blocks" };
        let mut text =
            format!("Results of the {count} code {noun} in your last message, in order:");
        for (number, block) in self.blocks.iter().enumerate() {
            text.push_str(&format!(
                "\n\n## Block {} ({})\n",
                number + 1,
                block.language.name
            ));
            text.push_str(&block_report(block, limits));
        }
        text
    }
}

fn block_report(block: &TurnBlock, limits: &FeedbackLimits) -> String {
    let Some(decided) = &block.decision else {
        return "No decision was made; it did not run.".into();
    };
    let mut lines = Vec::new();
    if let Some(edited) = &decided.edited {
        let fence = crate::output::fence_for(edited);
        let newline = if edited.ends_with('\n') { "" } else { "\n" };
        lines.push(format!(
            "The operator edited this block before it ran. The code that ran:\n{fence}{}\n{edited}{newline}{fence}",
            block.language.name
        ));
    }
    let reason = decided.reason.as_deref().unwrap_or("no reason given");
    match (&block.fate, decided.kind) {
        (Some(Fate::Ran(result)), _) => lines.push(result_for_model(result, limits)),
        (Some(Fate::Broken(why)), _) => lines.push(format!("It could not be run: {why}")),
        (None, DecisionKind::Reject) => lines.push(format!(
            "Rejected by {}; it did not run. Reason: {reason}",
            who(decided.source)
        )),
        (None, DecisionKind::Skip) if decided.source == DecisionSource::StopOnFailure => {
            lines.push(format!("Not run: {reason}."));
        }
        (None, DecisionKind::Skip) => {
            lines.push("The operator skipped this block; it did not run.".into());
        }
        (None, DecisionKind::Abort) => {
            lines.push("The operator stopped the turn before this block; it did not run.".into());
        }
        (None, _) => lines.push("It did not run.".into()),
    }
    lines.join("\n")
}

fn who(source: DecisionSource) -> &'static str {
    match source {
        DecisionSource::Operator => "the operator",
        DecisionSource::Rule => "an approval rule",
        DecisionSource::Approver => "the approver command",
        DecisionSource::Flag => "the session's approval mode",
        DecisionSource::StopOnFailure => "airlock after an earlier failure",
        DecisionSource::NoSupervisor => "airlock, as nobody was there to decide",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::LanguageTable;

    const LIMITS: FeedbackLimits = FeedbackLimits {
        excerpt_bytes: 1000,
        timeout_secs: 60,
        memory_bytes: 512 << 20,
        workspace: (1 << 30, 100_000),
    };

    fn block(n: usize, decision: Option<Decided>, fate: Option<Fate>) -> TurnBlock {
        let table = LanguageTable::default();
        TurnBlock {
            id: format!("b{n}"),
            index: n,
            language: table.resolve("python").cloned().expect("python"),
            code: format!("print({n})\n"),
            decision,
            fate,
            call: None,
            origin: Origin::default(),
        }
    }

    fn decided(
        kind: DecisionKind,
        source: DecisionSource,
        reason: Option<&str>,
    ) -> Option<Decided> {
        Some(Decided {
            kind,
            source,
            reason: reason.map(str::to_string),
            edited: None,
        })
    }

    fn ran(exit_code: i64, output: &str) -> Option<Fate> {
        Some(Fate::Ran(ExecResult::sample(Some(exit_code), output)))
    }

    #[test]
    fn the_report_covers_every_block_once_in_order() {
        use DecisionKind::*;
        use DecisionSource::*;
        let mut edited = decided(Edit, Operator, None);
        if let Some(decided) = edited.as_mut() {
            decided.edited = Some("print('fixed')\n".into());
        }
        let turn = Turn {
            blocks: vec![
                block(
                    0,
                    decided(Approve, Operator, None),
                    ran(0, "first-output\n"),
                ),
                block(1, edited, ran(1, "second-output\n")),
                block(
                    2,
                    decided(Skip, StopOnFailure, Some("block 2 failed")),
                    None,
                ),
                block(3, decided(Reject, Operator, Some("too risky")), None),
            ],
        };
        let text = turn.report(&LIMITS);
        let order = [
            "## Block 1",
            "first-output",
            "## Block 2",
            "print('fixed')",
            "second-output",
            "## Block 3",
            "block 2 failed",
            "## Block 4",
            "too risky",
        ];
        let mut at = 0;
        for needle in order {
            let found = text[at..]
                .find(needle)
                .unwrap_or_else(|| panic!("{needle} missing or out of order in:\n{text}"));
            at += found;
        }
        assert_eq!(text.matches("first-output").count(), 1);
        assert!(text.contains("Rejected by the operator"), "{text}");
        assert!(
            !text.contains("print(1)"),
            "the original of an edited block is not sent:\n{text}"
        );
    }

    #[test]
    fn open_blocks_are_found_in_order() {
        use DecisionKind::*;
        let turn = Turn {
            blocks: vec![
                block(0, decided(Reject, DecisionSource::Rule, Some("no")), None),
                block(1, decided(Approve, DecisionSource::Operator, None), None),
                block(2, None, None),
            ],
        };
        assert_eq!(turn.next_open(), Some(1));
        assert_eq!(turn.position("b2"), Some(2));
        assert!(!turn.aborted());
    }
}
