//! The history pane: this session's runs and earlier sessions' from the store, newest
//! first, filtered by text; Enter opens one with its code, decision and output.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::output::sanitize::for_person;
use crate::protocol::{Event, Outcome};
use crate::run_record::RunRecord;
use crate::tui::keys::keymap::{Action, Context};
use crate::tui::panes::pane::Look;
use crate::tui::panes::{Pane, Seen};
use crate::tui::theme::Theme;
use crate::view::SessionView;

/// The runs, earlier sessions' and this one's, and which of them the filter lets through.
#[derive(Debug, Clone, Default)]
pub(crate) struct HistoryPane {
    /// Every run, oldest first.
    pub(crate) runs: Vec<RunRecord>,
    pub(crate) open: bool,
    selected: usize,
    /// What the runs are filtered by (set with [`Self::set_filter`]).
    pub(crate) filter: String,
    /// The runs that match it, oldest first: kept as runs come and change, never worked out
    /// again for a frame.
    matches: Vec<usize>,
}

impl HistoryPane {
    /// The runs listed: newest first, filtered by text.
    pub(crate) fn visible(&self) -> Vec<usize> {
        self.matches.iter().rev().copied().collect()
    }

    /// The run under the selection.
    pub(crate) fn selected_run(&self) -> Option<&RunRecord> {
        let index = self.visible().get(self.selected).copied()?;
        self.runs.get(index)
    }

    /// Filters the runs by `text` (case does not matter).
    pub(crate) fn set_filter(&mut self, text: String) {
        self.filter = text;
        self.selected = 0;
        let filter = self.filter.to_lowercase();
        self.matches = (0..self.runs.len())
            .filter(|&i| matches_filter(&self.runs[i], &filter))
            .collect();
    }

    /// A run of this session starts.
    pub(crate) fn start(&mut self, run: RunRecord) {
        self.runs.push(run);
        self.rematch_newest(None);
    }

    /// Output and the end of the newest run.
    pub(crate) fn take(&mut self, event: &Event) {
        let Some(record) = self.runs.last_mut() else {
            return;
        };
        match event {
            Event::ExecOutput { data, .. } => {
                record.output.push_str(&for_person(data));
                self.rematch_newest(Some(data));
            }
            Event::ExecFinished { result, .. } => {
                record.output = result.output.clone();
                record.ending = Some(result.into());
                record.files = result.files.clone();
                record.file_warnings = crate::files::warnings::warnings(
                    &result.files,
                    result.files_incomplete.as_deref(),
                );
                self.rematch_newest(None);
            }
            _ => {}
        }
    }

    /// Earlier sessions' runs from the history, oldest first, before this session's.
    pub(crate) fn load_past(&mut self, mut past: Vec<RunRecord>) {
        past.append(&mut self.runs);
        self.runs = past;
        let filter = std::mem::take(&mut self.filter);
        self.set_filter(filter);
    }

    /// Moves the selection for a scrolling action.
    pub(crate) fn scroll_by(&mut self, action: Action) {
        let count = self.matches.len();
        self.selected = match action {
            Action::ScrollDown => self.selected + 1,
            Action::ScrollUp => self.selected.saturating_sub(1),
            Action::Top => 0,
            Action::Bottom | Action::PageDown => count,
            Action::PageUp => 0,
            _ => self.selected,
        }
        .min(count.saturating_sub(1));
    }

    /// Takes the newest run into the filtered list when it matches now (`hint`: only this
    /// new piece of its output is looked at, the rest having been already).
    fn rematch_newest(&mut self, hint: Option<&str>) {
        let Some(newest) = self.runs.len().checked_sub(1) else {
            return;
        };
        if self.matches.last() == Some(&newest) {
            return;
        }
        let filter = self.filter.to_lowercase();
        let run = &self.runs[newest];
        let matched = match hint {
            Some(piece) => filter.is_empty() || piece.to_lowercase().contains(&filter),
            None => matches_filter(run, &filter),
        };
        if matched {
            self.matches.push(newest);
        }
    }

    /// `session`: this session's id, so its runs read "now".
    pub(crate) fn draw(&self, frame: &mut Frame, area: Rect, look: &Look, session: Option<&str>) {
        let theme = look.theme;
        let mut title = vec![Span::styled(" History ", theme.accent())];
        if !self.filter.is_empty() {
            title.push(Span::styled(
                format!("filter: {} ", for_person(&self.filter)),
                theme.dim(),
            ));
        }
        let block = theme.pane(look.focused, title);
        let inner = block.inner(area);
        let runs = self.visible();
        if runs.is_empty() {
            let text = if self.runs.is_empty() {
                "No runs yet."
            } else {
                "No run matches the filter."
            };
            frame.render_widget(
                Paragraph::new(Line::styled(text, theme.dim())).block(block),
                area,
            );
            return;
        }
        let height = inner.height as usize;
        let first = self.selected.saturating_sub(height.saturating_sub(1));
        let selected = Style::new()
            .bg(theme.selection)
            .add_modifier(Modifier::BOLD | Modifier::UNDERLINED);
        let rows: Vec<Line<'static>> = runs
            .iter()
            .enumerate()
            .skip(first)
            .take(height)
            .map(|(row, &index)| {
                let line = summary(&self.runs[index], theme, session);
                if row == self.selected {
                    line.style(selected)
                } else {
                    line
                }
            })
            .collect();
        frame.render_widget(Paragraph::new(rows).block(block), area);
    }
}

/// Whether a run matches the filter (already lowercased; empty matches all).
fn matches_filter(run: &RunRecord, filter: &str) -> bool {
    filter.is_empty()
        || run.code.to_lowercase().contains(filter)
        || run.output.to_lowercase().contains(filter)
        || run.language.contains(filter)
        || run.decision.contains(filter)
}

fn summary(run: &RunRecord, theme: &Theme, session: Option<&str>) -> Line<'static> {
    let earlier = session != Some(run.session.as_str());
    let (status, colour) = match &run.ending {
        None if earlier => ("interrupted".to_string(), theme.error),
        None => ("running".to_string(), theme.warning),
        Some(ending) => {
            let outcome = ending.outcome;
            let colour = match outcome {
                _ if outcome.succeeded() => theme.success,
                Outcome::Stopped => theme.warning,
                _ => theme.error,
            };
            (outcome.label(), colour)
        }
    };
    let duration = run
        .ending
        .map_or(String::new(), |ending| format!("{} ms", ending.duration_ms));
    let first_line = for_person(run.code.lines().next().unwrap_or(""));
    let session = run.session.rsplit('-').next().unwrap_or("");
    Line::from(vec![
        Span::styled(run.clock(), theme.dim()),
        Span::styled(
            format!(" {:<6}", if earlier { session } else { "now" }),
            theme.dim(),
        ),
        Span::styled(format!(" {:<7}", run.language), theme.text()),
        Span::styled(format!(" {:<9}", status), Style::new().fg(colour)),
        Span::styled(format!(" {:>8} ", duration), theme.dim()),
        Span::styled(
            format!(
                "{}{} ",
                run.decision,
                if run.edited { " · edited" } else { "" }
            ),
            theme.dim(),
        ),
        Span::styled(first_line, theme.text()),
    ])
}

impl Pane for HistoryPane {
    fn contexts(&self) -> &'static [Context] {
        &[Context::History]
    }

    fn open(&self) -> bool {
        self.open
    }

    fn toggle(&mut self) -> bool {
        self.open = !self.open;
        self.open
    }

    /// A run of this session starts as a new entry; its output and end follow it.
    fn on_event(&mut self, event: &Event, view: &SessionView) {
        if let Event::ExecStarted { block, run } = event
            && let Some(proposed) = view.block(block)
        {
            let session = view.session.clone().unwrap_or_default();
            self.start(RunRecord::starting(proposed, &session, run));
        }
        self.take(event);
    }

    fn scroll(&mut self, action: Action, _area: Rect) -> bool {
        self.scroll_by(action);
        true
    }

    fn render(&self, frame: &mut Frame, area: Rect, seen: &Seen) {
        self.draw(frame, area, &seen.look, seen.view.session.as_deref());
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::protocol::{DecisionKind, Stream};
    use crate::tui::app::{App, Focus};
    use crate::tui::testing::{
        app, decided, feed, finished, output, pane, proposed, result, started,
    };

    pub(crate) fn with_runs() -> App {
        let mut app = app();
        feed(
            &mut app,
            &[
                proposed("b-1", 0, "bash", "ls -l\n"),
                decided("b-1", DecisionKind::Approve),
                started("b-1", "r-1"),
                output("b-1", Stream::Stdout, "total 0\n"),
                finished("b-1", result(Some(0), "total 0\n")),
                proposed("b-2", 0, "python", "print(undefined)\n"),
                Event::Decision {
                    block: "b-2".into(),
                    decision: DecisionKind::Edit,
                    reason: None,
                    source: crate::protocol::DecisionSource::Operator,
                    scope: None,
                    code: Some("print('defined')\n".into()),
                    id: None,
                },
                started("b-2", "r-2"),
                finished("b-2", result(Some(0), "defined\n")),
            ],
        );
        app.focus = Focus::History;
        app
    }

    fn render(app: &App, frame: &mut Frame) {
        let highlighter = crate::tui::render::highlight::Highlighter::plain();
        let look = Look::new(&app.theme, &app.keymap, &highlighter, true);
        let session = app.view.session.as_deref();
        app.history.draw(frame, frame.area(), &look, session);
    }

    #[test]
    fn runs_are_listed_newest_first_and_filtered() {
        let mut app = with_runs();
        insta::assert_snapshot!(pane(90, 5, |frame| render(&app, frame)));
        app.set_history_filter("ls".into());
        assert_eq!(app.history.visible(), [0]);
        // A run that comes while the filter is set joins the list once its output matches,
        // and one that never matches stays out.
        app.set_history_filter("needle".into());
        assert!(app.history.visible().is_empty());
        feed(
            &mut app,
            &[
                proposed("b-3", 0, "bash", "echo hay\n"),
                decided("b-3", DecisionKind::Approve),
                started("b-3", "r-3"),
                output("b-3", Stream::Stdout, "hay\n"),
                output("b-3", Stream::Stdout, "a NEEDLE\n"),
                proposed("b-4", 0, "bash", "echo hay\n"),
                decided("b-4", DecisionKind::Approve),
                started("b-4", "r-4"),
                output("b-4", Stream::Stdout, "hay\n"),
                finished("b-4", result(Some(0), "hay\n")),
            ],
        );
        assert_eq!(app.history.visible(), [2]);
        app.set_history_filter(String::new());
        assert_eq!(app.history.visible(), [3, 2, 1, 0]);
    }

    #[test]
    fn run_times_are_local_with_their_zone() {
        crate::clock::use_zone_in_tests("Asia/Tokyo");
        let app = with_runs();
        let list = pane(90, 4, |frame| render(&app, frame));
        // The runs started at 09:00 and 09:01 UTC on 1970-01-01.
        assert!(list.contains("│18:01:00 JST now"), "{list}");
        assert!(list.contains("│18:00:00 JST now"), "{list}");
    }
}
