//! The container-logs pane: every run's stdout and stderr as they arrive, with a header per
//! run and its status badges at the end. Bounded in memory (oldest lines go first), and only
//! the visible lines are laid out, so a flood cannot slow the screen down.

use std::collections::VecDeque;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::protocol::{Event, ExecResult, Outcome, Stream};
use crate::tui::keys::keymap::{Action, Context};
use crate::tui::panes::scroll::Scroll;
use crate::tui::panes::{Acting, Pane, Seen, Wants, preparing};
use crate::tui::render::sgr;
use crate::tui::render::text::wrap_line;
use crate::tui::runner::SandboxState;
use crate::tui::theme::Theme;
use crate::view::SessionView;

#[derive(Debug, Clone, PartialEq, Eq)]
enum LogLine {
    Header(String),
    Output { stream: Stream, text: String },
    Status(Vec<(String, Badge)>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Badge {
    Good,
    Bad,
    Note,
}

#[derive(Debug, Clone)]
pub struct LogView {
    lines: VecDeque<LogLine>,
    cap: usize,
    dropped: u64,
    /// The last line of each stream has not ended yet.
    open: [bool; 2],
    scroll: Scroll,
    frozen: bool,
    running: bool,
}

impl LogView {
    pub fn new(cap: usize) -> Self {
        Self {
            lines: VecDeque::new(),
            cap: cap.max(100),
            dropped: 0,
            open: [false; 2],
            scroll: Scroll { from_bottom: 0 },
            frozen: false,
            running: false,
        }
    }

    pub fn start(&mut self, title: String) {
        self.open = [false; 2];
        self.running = true;
        self.add(LogLine::Header(title));
    }

    /// Output as the sandbox sends it (already neutralized); `\r` redraws keep their last state.
    pub fn push(&mut self, stream: Stream, data: &str) {
        let slot = stream as usize;
        let data = crate::output::sanitize::mark_invisible(data);
        let mut pieces = data.split('\n').peekable();
        let mut first = true;
        while let Some(piece) = pieces.next() {
            let newline_follows = pieces.peek().is_some();
            let shown = piece.rsplit('\r').next().unwrap_or(piece);
            let continued = first && self.open[slot];
            if continued {
                if let Some(text) = self.last_output(stream) {
                    if piece.contains('\r') {
                        text.clear();
                    }
                    text.push_str(shown);
                }
            } else if !piece.is_empty() || newline_follows {
                self.add(LogLine::Output {
                    stream,
                    text: shown.to_string(),
                });
            }
            self.open[slot] = !newline_follows && (continued || !piece.is_empty());
            first = false;
        }
    }

    fn last_output(&mut self, stream: Stream) -> Option<&mut String> {
        self.lines.iter_mut().rev().find_map(|line| match line {
            LogLine::Output { stream: s, text } if *s == stream => Some(text),
            _ => None,
        })
    }

    /// The run's end: for a truncated output, the kept tail after a marker (the live view
    /// showed the head), then the badges.
    pub fn finish(&mut self, result: ExecResult) {
        self.running = false;
        // Where the marker is comes with the result, never from searching the text: the
        // program may have printed something just like it.
        let split = result
            .omission_at
            .and_then(|at| crate::output::split_at_omission(&result.output, at));
        if let Some((_, tail)) = split {
            let marker = format!(
                "[… {} bytes in all; the end follows …]",
                result.output_bytes
            );
            self.add(LogLine::Header(marker));
            self.open = [false; 2];
            self.push(Stream::Stdout, tail);
        }
        self.add(LogLine::Status(badges(&result)));
    }

    fn add(&mut self, line: LogLine) {
        self.lines.push_back(line);
        if self.lines.len() > self.cap {
            self.lines.pop_front();
            self.dropped += 1;
        }
        if self.frozen {
            self.scroll.from_bottom += 1;
        }
    }

    pub fn toggle_freeze(&mut self) {
        self.frozen = !self.frozen;
        if !self.frozen {
            self.scroll.from_bottom = 0;
        }
    }

    /// Scrolls like the other panes; going to the end also ends a freeze.
    pub fn scroll_by(&mut self, action: Action, page: usize) {
        self.scroll.apply(action, page);
        self.scroll.from_bottom = self.scroll.from_bottom.min(self.lines.len());
        if action == Action::Bottom {
            self.frozen = false;
        }
    }

    /// Nothing has run yet.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty() && !self.running
    }

    pub fn draw(&self, frame: &mut Frame, area: Rect, theme: &Theme, focused: bool) {
        let mut title = vec![Span::styled(" Container logs ", theme.accent())];
        if self.running {
            title.push(Span::styled("● running ", Style::new().fg(theme.success)));
        }
        if self.frozen {
            title.push(Span::styled("❄ frozen ", Style::new().fg(theme.warning)));
        } else if self.scroll.from_bottom > 0 {
            title.push(Span::styled(
                format!("↑{} ", self.scroll.from_bottom),
                theme.dim(),
            ));
        }
        let block = theme.pane(focused, title);
        let inner = block.inner(area);
        let rows = self.visible_rows(inner.width as usize, inner.height as usize, theme);
        frame.render_widget(Paragraph::new(rows).block(block), area);
    }

    /// The last `height` rows above the scroll position, wrapped to `width`.
    fn visible_rows(&self, width: usize, height: usize, theme: &Theme) -> Vec<Line<'static>> {
        if self.lines.is_empty() {
            return vec![Line::styled("No block has run yet.", theme.dim())];
        }
        let mut rows: Vec<Line<'static>> = Vec::new();
        let end = self.lines.len() - self.scroll.from_bottom.min(self.lines.len());
        for line in self.lines.range(..end).rev() {
            let mut wrapped = wrap_line(&self.styled(line, theme), width);
            wrapped.reverse();
            rows.extend(wrapped);
            if rows.len() >= height {
                break;
            }
        }
        rows.truncate(height);
        rows.reverse();
        if self.dropped > 0 && rows.len() < height {
            rows.insert(
                0,
                Line::styled(
                    format!("[{} older lines dropped]", self.dropped),
                    theme.dim(),
                ),
            );
        }
        rows
    }

    fn styled(&self, line: &LogLine, theme: &Theme) -> Line<'static> {
        match line {
            LogLine::Header(title) => Line::styled(
                format!("── {title} ──"),
                theme.dim().add_modifier(Modifier::BOLD),
            ),
            LogLine::Output {
                stream: Stream::Stdout,
                text,
            } => Line::from(sgr::spans(text, theme.text())),
            LogLine::Output {
                stream: Stream::Stderr,
                text,
            } => {
                let mut spans = vec![Span::styled("▌", Style::new().fg(theme.stderr))];
                spans.extend(sgr::spans(text, Style::new().fg(theme.stderr)));
                Line::from(spans)
            }
            LogLine::Status(badges) => Line::from(
                badges
                    .iter()
                    .flat_map(|(text, badge)| {
                        let colour = match badge {
                            Badge::Good => theme.success,
                            Badge::Bad => theme.error,
                            Badge::Note => theme.warning,
                        };
                        [
                            Span::styled(
                                format!(" {text} "),
                                Style::new().fg(colour).add_modifier(Modifier::REVERSED),
                            ),
                            Span::raw(" "),
                        ]
                    })
                    .collect::<Vec<_>>(),
            ),
        }
    }
}

fn badges(result: &ExecResult) -> Vec<(String, Badge)> {
    let mut badges = Vec::new();
    match result.exit_code {
        Some(0) => badges.push(("exit 0".to_string(), Badge::Good)),
        Some(code) => badges.push((format!("exit {code}"), Badge::Bad)),
        None => {}
    }
    match result.outcome() {
        Outcome::TimedOut => badges.push(("TIMEOUT".into(), Badge::Bad)),
        Outcome::OutOfMemory => badges.push(("OOM".into(), Badge::Bad)),
        Outcome::Stopped => badges.push(("STOPPED".into(), Badge::Note)),
        Outcome::Exited(_) | Outcome::Killed => {}
    }
    if result.workspace_full {
        badges.push(("WORKSPACE FULL".into(), Badge::Bad));
    }
    if result.truncated {
        badges.push((
            format!("TRUNCATED · {} bytes", result.output_bytes),
            Badge::Note,
        ));
    }
    if result.container_restarted {
        badges.push(("CONTAINER RESTARTED".into(), Badge::Note));
    }
    badges.push((format!("{} ms", result.duration_ms), Badge::Note));
    badges
}

impl Pane for LogView {
    fn contexts(&self) -> &'static [Context] {
        &[Context::Logs]
    }

    /// Each run gets its header, its output as it comes, and its status badges at the end.
    fn on_event(&mut self, event: &Event, view: &SessionView) {
        match event {
            Event::ExecStarted { block, run } => {
                let Some(proposed) = view.block(block) else {
                    return;
                };
                let edited = if proposed.edited.is_some() {
                    " · edited by the operator"
                } else {
                    ""
                };
                let language = &proposed.language;
                let number = proposed.index + 1;
                self.start(format!("{run} · block {number} · {language}{edited}"));
            }
            Event::ExecOutput { stream, data, .. } => self.push(*stream, data),
            Event::ExecFinished { result, .. } => self.finish(result.clone()),
            _ => {}
        }
    }

    fn on_action(&mut self, action: Action, _acting: &Acting) -> Option<Vec<Wants>> {
        (action == Action::Freeze).then(|| {
            self.toggle_freeze();
            Vec::new()
        })
    }

    fn scroll(&mut self, action: Action, area: Rect) -> bool {
        self.scroll_by(action, area.height.saturating_sub(2) as usize);
        true
    }

    /// While the sandbox is prepared and nothing has run, what is being done, where the
    /// first output will appear.
    fn render(&self, frame: &mut Frame, area: Rect, seen: &Seen) {
        if let SandboxState::Preparing { step, since } = seen.sandbox
            && self.is_empty()
        {
            preparing::render(frame, area, step.as_deref(), *since, &seen.look);
        } else {
            self.draw(frame, area, seen.look.theme, seen.look.focused);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(view: &LogView) -> Vec<String> {
        view.lines
            .iter()
            .map(|line| match line {
                LogLine::Header(t) => format!("# {t}"),
                LogLine::Output {
                    stream: Stream::Stdout,
                    text,
                } => text.clone(),
                LogLine::Output {
                    stream: Stream::Stderr,
                    text,
                } => format!("! {text}"),
                LogLine::Status(b) => format!(
                    "= {}",
                    b.iter()
                        .map(|(t, _)| t.as_str())
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
            })
            .collect()
    }

    #[test]
    fn pieces_join_into_lines_per_stream_and_redraws_collapse() {
        let mut view = LogView::new(1000);
        view.start("run".into());
        view.push(Stream::Stdout, "hel");
        view.push(Stream::Stderr, "warn\n");
        view.push(Stream::Stdout, "lo\nnext\n");
        view.push(Stream::Stdout, "10%\r50%\r100%\n");
        assert_eq!(texts(&view), ["# run", "hello", "! warn", "next", "100%"]);
    }

    #[test]
    fn bidi_and_zero_width_characters_in_output_are_shown() {
        let mut view = LogView::new(1000);
        view.start("run".into());
        view.push(
            Stream::Stdout,
            "ok\u{202e}txt\u{200b}\n\u{1b}[31mred\u{1b}[0m\n",
        );
        let lines = texts(&view);
        assert_eq!(lines[1], "ok<U+202E>txt<U+200B>");
        assert!(
            !lines[2].contains("<U+001B>"),
            "colours stay colours: {lines:?}"
        );
    }

    #[test]
    fn output_that_imitates_the_omission_marker_adds_no_header_and_repeats_nothing() {
        let mut view = LogView::new(1000);
        view.start("run".into());
        let printed = format!("one\n{}two\n", crate::output::omission_marker(7));
        view.push(Stream::Stdout, &printed);
        let mut result = crate::tui::testing::result(Some(0), &printed);
        result.output_bytes = printed.len() as u64;
        view.finish(result);
        let lines = texts(&view);
        assert!(
            !lines.iter().any(|line| line.contains("the end follows")),
            "{lines:?}"
        );
        assert_eq!(
            lines.iter().filter(|line| *line == "two").count(),
            1,
            "{lines:?}"
        );
    }

    #[test]
    fn a_truncated_run_shows_its_kept_tail_after_the_head() {
        let mut view = LogView::new(1000);
        view.start("run".into());
        view.push(Stream::Stdout, "first\n");
        let mut result = crate::tui::testing::result(Some(0), "");
        result.output = format!("first\n{}last\n", crate::output::omission_marker(900));
        result.truncated = true;
        result.omission_at = Some("first\n".len());
        result.output_bytes = 1000;
        view.finish(result);
        let lines = texts(&view);
        assert_eq!(
            lines[..3],
            [
                "# run",
                "first",
                "# [… 1000 bytes in all; the end follows …]"
            ]
        );
        assert_eq!(lines[3], "last");
        assert!(lines[4].starts_with("= exit 0 TRUNCATED"), "{lines:?}");
    }

    #[test]
    fn memory_is_bounded_and_the_loss_is_said() {
        let mut view = LogView::new(100);
        for i in 0..1000 {
            view.push(Stream::Stdout, &format!("line {i}\n"));
        }
        assert_eq!(view.lines.len(), 100);
        assert_eq!(view.dropped, 900);
        let rows = view.visible_rows(40, 5, &Theme::default());
        let shown: Vec<String> = rows
            .iter()
            .map(|r| r.spans.iter().map(|s| s.content.as_ref()).collect())
            .collect();
        assert_eq!(
            shown,
            ["line 995", "line 996", "line 997", "line 998", "line 999"]
        );
    }

    #[test]
    fn a_frozen_view_stays_put_while_lines_arrive() {
        let mut view = LogView::new(1000);
        for i in 0..10 {
            view.push(Stream::Stdout, &format!("line {i}\n"));
        }
        view.toggle_freeze();
        for i in 10..20 {
            view.push(Stream::Stdout, &format!("line {i}\n"));
        }
        let rows = view.visible_rows(40, 2, &Theme::default());
        let shown: Vec<String> = rows
            .iter()
            .map(|r| r.spans.iter().map(|s| s.content.as_ref()).collect())
            .collect();
        assert_eq!(shown, ["line 8", "line 9"]);
        view.toggle_freeze();
        let rows = view.visible_rows(40, 1, &Theme::default());
        assert_eq!(rows[0].spans[0].content, "line 19");
    }
}

#[cfg(test)]
mod snapshots {
    use crate::protocol::Event;
    use crate::protocol::Stream;
    use crate::tui::testing::{app, feed, finished, output, pane, proposed, result, started};

    #[test]
    fn runs_with_every_badge() {
        let mut app = app();
        let mut events = Vec::new();
        let outcomes = [
            ("b-1", "print('ok')", result(Some(0), "ok\n")),
            ("b-2", "exit 3", result(Some(3), "")),
            ("b-3", "sleep 99", {
                let mut r = result(None, "");
                r.timed_out = true;
                r
            }),
            ("b-4", "hog()", {
                let mut r = result(Some(137), "");
                r.oom_killed = true;
                r
            }),
            ("b-5", "sleep 5", {
                let mut r = result(None, "");
                r.cancelled = true;
                r.container_restarted = true;
                r
            }),
            ("b-6", "flood()", {
                let mut r = result(Some(0), "");
                r.truncated = true;
                r.output_bytes = 52_428_800;
                r
            }),
        ];
        for (i, (block, code, outcome)) in outcomes.into_iter().enumerate() {
            events.push(proposed(block, i, "bash", code));
            events.push(crate::tui::testing::decided(
                block,
                crate::protocol::DecisionKind::Approve,
            ));
            events.push(Event::ExecStarted {
                block: block.into(),
                run: format!("r-{block}"),
            });
            if i == 0 {
                events.push(output(block, Stream::Stdout, "ok\n"));
                events.push(output(block, Stream::Stderr, "a warning on stderr\n"));
            }
            events.push(finished(block, outcome));
        }
        feed(&mut app, &events);
        insta::assert_snapshot!(pane(70, 22, |frame| app.logs.draw(
            frame,
            frame.area(),
            &app.theme,
            false
        )));
    }

    #[test]
    fn colours_show_as_colours_and_no_escape_reaches_the_buffer() {
        let mut app = app();
        feed(
            &mut app,
            &[output(
                "b-1",
                Stream::Stdout,
                "ok \u{1b}[31mFAILED\u{1b}[0m end\n",
            )],
        );
        let mut terminal =
            ratatui::Terminal::new(ratatui::backend::TestBackend::new(30, 3)).expect("terminal");
        terminal
            .draw(|frame| app.logs.draw(frame, frame.area(), &app.theme, false))
            .expect("draws");
        let buffer = terminal.backend().buffer();
        let row: String = (0..30)
            .map(|x| buffer[(x, 1)].symbol().to_string())
            .collect();
        assert!(row.contains("ok FAILED end"), "{row}");
        assert!(!row.contains('\u{1b}'));
        let f = row.find('F').expect("F") as u16;
        assert_eq!(buffer[(f, 1)].fg, ratatui::style::Color::Red);
        assert_ne!(buffer[(1, 1)].fg, ratatui::style::Color::Red);
    }

    #[test]
    fn a_running_block_streams_and_shows_that_it_runs() {
        let mut app = app();
        feed(
            &mut app,
            &[
                proposed("b-1", 0, "python", "for i in range(3): print(i)"),
                crate::tui::testing::decided("b-1", crate::protocol::DecisionKind::Approve),
                started("b-1", "r-b-1"),
                output("b-1", Stream::Stdout, "0\n1\n"),
                output("b-1", Stream::Stdout, "downloading 10%\rdownloading 60%"),
            ],
        );
        insta::assert_snapshot!(pane(50, 7, |frame| app.logs.draw(
            frame,
            frame.area(),
            &app.theme,
            true
        )));
    }
}
