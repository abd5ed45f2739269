//! The history pane: this session's runs, newest first (the durable store comes with the
//! history issue), filtered by text; Enter opens one with its code, decision and output.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

use super::app::{App, Focus, RunRecord};
use crate::output::sanitize::for_person;
use crate::protocol::Outcome;

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let theme = &app.theme;
    let focused = app.focus == Focus::History;
    let mut title = vec![Span::styled(" History ", theme.accent())];
    if !app.history_filter.is_empty() {
        title.push(Span::styled(
            format!("filter: {} ", for_person(&app.history_filter)),
            theme.dim(),
        ));
    }
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.border(focused))
        .title_style(theme.title(focused))
        .title(Line::from(title));
    let inner = block.inner(area);
    let runs = app.visible_runs();
    if runs.is_empty() {
        let text = if app.runs.is_empty() {
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
    let first = app
        .history_selected
        .saturating_sub(height.saturating_sub(1));
    let rows: Vec<Line<'static>> = runs
        .iter()
        .enumerate()
        .skip(first)
        .take(height)
        .map(|(row, &index)| {
            let line = summary(&app.runs[index], app);
            if row == app.history_selected {
                line.style(
                    Style::new()
                        .bg(theme.selection)
                        .add_modifier(Modifier::BOLD | Modifier::UNDERLINED),
                )
            } else {
                line
            }
        })
        .collect();
    frame.render_widget(Paragraph::new(rows).block(block), area);
}

fn summary(run: &RunRecord, app: &App) -> Line<'static> {
    let theme = &app.theme;
    let earlier = app.session.as_deref() != Some(run.session.as_str());
    let (status, colour) = match &run.result {
        None if earlier => ("interrupted".to_string(), theme.error),
        None => ("running".to_string(), theme.warning),
        Some(r) => {
            let outcome = r.outcome();
            let colour = match outcome {
                _ if outcome.succeeded() => theme.success,
                Outcome::Stopped => theme.warning,
                _ => theme.error,
            };
            (outcome.label(), colour)
        }
    };
    let duration = run
        .result
        .as_ref()
        .map_or(String::new(), |r| format!("{} ms", r.duration_ms));
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

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::protocol::{DecisionKind, Event, Stream};
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
                },
                started("b-2", "r-2"),
                finished("b-2", result(Some(0), "defined\n")),
            ],
        );
        app.focus = Focus::History;
        app
    }

    #[test]
    fn runs_are_listed_newest_first_and_filtered() {
        let mut app = with_runs();
        insta::assert_snapshot!(pane(90, 5, |frame| render(frame, frame.area(), &app)));
        app.set_history_filter("ls".into());
        assert_eq!(app.visible_runs(), [0]);
        // A run that comes while the filter is set joins the list once its output matches,
        // and one that never matches stays out.
        app.set_history_filter("needle".into());
        assert!(app.visible_runs().is_empty());
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
        assert_eq!(app.visible_runs(), [2]);
        app.set_history_filter(String::new());
        assert_eq!(app.visible_runs(), [3, 2, 1, 0]);
    }

    #[test]
    fn run_times_are_local_with_their_zone() {
        crate::store::clock::use_zone_in_tests("Asia/Tokyo");
        let app = with_runs();
        let list = pane(90, 4, |frame| render(frame, frame.area(), &app));
        // The runs started at 09:00 and 09:01 UTC on 1970-01-01.
        assert!(list.contains("│18:01:00 JST now"), "{list}");
        assert!(list.contains("│18:00:00 JST now"), "{list}");
    }
}
