//! One run opened over the panes: who decided what, the code that ran (both versions of an
//! edited block), the result and the output.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

use crate::output::sanitize::for_person;
use crate::run_record::{Ending, RunRecord};
use crate::tui::keys::keymap::{Action, Context};
use crate::tui::overlays::modal::{Modal, ModalData, Outcome, reading_keys, reading_scroll};
use crate::tui::overlays::popup::centered;
use crate::tui::render::text::visible_spans;
use crate::tui::theme::Theme;

/// The run, as it was when opened, and how far it is scrolled.
#[derive(Debug)]
pub(crate) struct RunModal {
    run: RunRecord,
    scroll: u16,
}

impl RunModal {
    pub(crate) fn new(run: RunRecord) -> Self {
        Self { run, scroll: 0 }
    }
}

impl Modal for RunModal {
    fn context(&self) -> Context {
        Context::Reading
    }

    fn on_action(&mut self, action: Option<Action>, _: &ModalData<'_>) -> Outcome {
        reading_scroll(&mut self.scroll, action)
    }

    fn render(&self, frame: &mut Frame, area: Rect, data: &ModalData<'_>) {
        let title = format!(" Run ({}) ", reading_keys(data.keymap));
        render(
            frame,
            centered(area, 90, 90),
            &self.run,
            data.theme,
            &title,
            self.scroll,
        );
    }
}

/// One run opened: who decided what, the code that ran (marked when edited), the output.
/// `exit 0 · 85 ms · 23 bytes`, with what else is worth knowing of the end.
fn ending_text(ending: &Ending) -> String {
    let mut text = format!(
        "{} · {} ms · {} bytes",
        ending.outcome.phrase(),
        ending.duration_ms,
        ending.output_bytes
    );
    if ending.truncated {
        text.push_str(" · output cut");
    }
    if ending.workspace_full {
        text.push_str(" · workspace full");
    }
    text
}

fn render(frame: &mut Frame, area: Rect, run: &RunRecord, theme: &Theme, title: &str, scroll: u16) {
    let mut lines = vec![
        Line::from(vec![
            Span::styled("run ", theme.dim()),
            Span::styled(run.run.clone(), theme.text()),
        ]),
        Line::from(vec![
            Span::styled("started ", theme.dim()),
            Span::styled(run.date_time(), theme.text()),
        ]),
        Line::from(vec![
            Span::styled("block ", theme.dim()),
            Span::styled(run.block.clone(), theme.text()),
        ]),
        Line::from(vec![
            Span::styled("decision ", theme.dim()),
            Span::styled(run.decision.clone(), theme.text()),
        ]),
    ];
    if let Some(ending) = &run.ending {
        lines.push(Line::from(vec![
            Span::styled("result ", theme.dim()),
            Span::styled(ending_text(ending), theme.text()),
        ]));
    }
    if !run.files.is_empty() || !run.file_warnings.is_empty() {
        lines.push(Line::styled("workspace files:", theme.accent()));
        lines.extend(
            run.files.iter().map(|file| {
                Line::styled(format!("  {}", for_person(&file.describe())), theme.text())
            }),
        );
        lines.extend(run.file_warnings.iter().map(|warning| {
            Line::styled(
                format!("  ⚠ {}", for_person(warning)),
                Style::new().fg(theme.warning),
            )
        }));
    }
    if run.edited {
        lines.push(Line::styled(
            "proposed code (before the edit):",
            theme.accent(),
        ));
        lines.extend(
            run.proposed
                .lines()
                .map(|l| Line::from(visible_spans(l, theme.dim(), theme.hidden()))),
        );
        lines.push(Line::styled("code that ran (edited):", theme.accent()));
    } else {
        lines.push(Line::styled("code that ran:", theme.accent()));
    }
    lines.extend(
        run.code
            .lines()
            .map(|l| Line::from(visible_spans(l, theme.text(), theme.hidden()))),
    );
    lines.push(Line::styled("output:", theme.accent()));
    lines.extend(
        // Drawn as the live output pane draws it: a bidi or zero-width character a block
        // printed is shown, not obeyed.
        run.output
            .lines()
            .map(|l| Line::styled(for_person(l), theme.text())),
    );
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.border(true))
        .title(Span::styled(title.to_string(), theme.accent()));
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: false })
            .scroll((scroll, 0)),
        area,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::keys::keymap::Keymap;
    use crate::tui::panes::history::tests::with_runs;
    use crate::tui::testing::pane;

    fn opened(app: &crate::tui::app::App, index: usize, width: u16, height: u16) -> String {
        let keymap = Keymap::default();
        let data = ModalData {
            theme: &app.theme,
            keymap: &keymap,
            rules: &[],
        };
        let modal = RunModal::new(app.history.runs[index].clone());
        pane(width, height, |frame| {
            modal.render(frame, frame.area(), &data)
        })
    }

    #[test]
    fn an_opened_run_shows_its_time_in_local_time_with_its_zone() {
        crate::clock::use_zone_in_tests("Asia/Tokyo");
        let shown = opened(&with_runs(), 0, 70, 6);
        assert!(
            shown.contains("started 1970-01-01 18:00:00 +09:00 JST"),
            "{shown}"
        );
    }

    #[test]
    fn an_opened_run_shows_both_versions_of_an_edited_block() {
        insta::assert_snapshot!(opened(&with_runs(), 1, 70, 16));
    }

    #[test]
    fn an_opened_run_lists_the_files_it_made() {
        use crate::protocol::{FileChange, FileChangeKind};
        let mut app = with_runs();
        app.history.runs[0].files = vec![
            FileChange {
                path: "chart.png".into(),
                change: FileChangeKind::Created,
                size: 18_204,
                sha256: Some("9f".repeat(32)),
                link: None,
            },
            FileChange {
                path: "old.txt".into(),
                change: FileChangeKind::Removed,
                size: 0,
                sha256: None,
                link: None,
            },
        ];
        insta::assert_snapshot!(opened(&app, 0, 100, 14));
    }

    #[test]
    fn an_opened_run_shows_what_its_files_warned_of_drawn_visibly() {
        let mut app = with_runs();
        app.history.runs[0].file_warnings =
            vec!["file list incomplete: too deep (128 levels) \u{202e}txt.exe".into()];
        let shown = opened(&app, 0, 100, 14);
        assert!(
            shown.contains("⚠ file list incomplete: too deep (128 levels) <U+202E>txt.exe"),
            "{shown}"
        );
    }

    #[test]
    fn an_opened_runs_output_shows_invisible_characters() {
        let mut app = with_runs();
        app.history.runs[0].output = "saved report\u{202e}txt.exe\n".into();
        let shown = opened(&app, 0, 100, 14);
        assert!(shown.contains("saved report<U+202E>txt.exe"), "{shown}");
    }

    #[test]
    fn the_global_keys_scroll_it_and_any_other_closes() {
        let (theme, keymap) = (Theme::default(), Keymap::default());
        let data = ModalData {
            theme: &theme,
            keymap: &keymap,
            rules: &[],
        };
        let mut modal = RunModal::new(with_runs().history.runs[0].clone());
        assert_eq!(
            modal.on_action(Some(Action::ScrollDown), &data),
            Outcome::Stay
        );
        assert_eq!(modal.scroll, 1);
        assert_eq!(modal.on_action(None, &data), Outcome::Close);
    }
}
