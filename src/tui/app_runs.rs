//! The runs as the screen keeps them: each one as it starts, earlier sessions' from the
//! history, and which of them the history's filter lets through.

use std::time::SystemTime;

use super::{App, Phase, RunRecord};

impl App {
    /// Runs the history pane lists: newest first, filtered by text.
    pub fn visible_runs(&self) -> Vec<usize> {
        self.history_matches.iter().rev().copied().collect()
    }

    /// Filters the history's runs by `text` (case does not matter).
    pub fn set_history_filter(&mut self, text: String) {
        self.history_filter = text;
        self.history_selected = 0;
        let filter = self.history_filter.to_lowercase();
        self.history_matches = (0..self.runs.len())
            .filter(|&i| matches_filter(&self.runs[i], &filter))
            .collect();
    }

    /// Takes the newest run into the filtered list when it matches now (`hint`: only this
    /// new piece of its output is looked at, the rest having been already).
    pub(super) fn rematch_newest(&mut self, hint: Option<&str>) {
        let Some(newest) = self.runs.len().checked_sub(1) else {
            return;
        };
        if self.history_matches.last() == Some(&newest) {
            return;
        }
        let filter = self.history_filter.to_lowercase();
        let run = &self.runs[newest];
        let matched = match hint {
            Some(piece) => filter.is_empty() || piece.to_lowercase().contains(&filter),
            None => matches_filter(run, &filter),
        };
        if matched {
            self.history_matches.push(newest);
        }
    }

    pub(super) fn exec_started(&mut self, block: &str, run: &str) {
        self.phase = Phase::Running;
        let Some(proposed) = self.block(block).cloned() else {
            return;
        };
        let decision = proposed
            .decision
            .as_ref()
            .map(|(kind, source, _)| {
                format!(
                    "{} ({})",
                    crate::protocol::wire_name(kind),
                    crate::protocol::wire_name(source)
                )
            })
            .unwrap_or_default();
        let code = proposed.edited.clone().unwrap_or(proposed.code.clone());
        let edited = if proposed.edited.is_some() {
            " · edited by the operator"
        } else {
            ""
        };
        self.logs.start(format!(
            "{} · block {} · {}{edited}",
            run,
            proposed.index + 1,
            proposed.language
        ));
        self.runs.push(RunRecord {
            session: self.session.clone().unwrap_or_default(),
            run: run.to_string(),
            block: block.to_string(),
            language: proposed.language,
            proposed: proposed.code.clone(),
            code,
            edited: proposed.edited.is_some(),
            decision,
            started: SystemTime::now(),
            output: String::new(),
            result: None,
        });
        self.rematch_newest(None);
    }

    /// Earlier sessions' runs from the history, oldest first, before this session's.
    pub fn load_past_runs(&mut self, mut past: Vec<RunRecord>) {
        past.append(&mut self.runs);
        self.runs = past;
        let filter = std::mem::take(&mut self.history_filter);
        self.set_history_filter(filter);
    }
}

/// Whether a run matches the history's filter (already lowercased; empty matches all).
fn matches_filter(run: &RunRecord, filter: &str) -> bool {
    filter.is_empty()
        || run.code.to_lowercase().contains(filter)
        || run.output.to_lowercase().contains(filter)
        || run.language.contains(filter)
        || run.decision.contains(filter)
}
