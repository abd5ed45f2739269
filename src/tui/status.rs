//! The status bar: model, container, what the session is doing, and the keys of the
//! focused pane.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::app::{App, SandboxState};
use super::render::text::{char_width, line_width};
use crate::protocol::{Phase, wire_name};
use crate::view::{SessionView, Stage};

/// The tokens of the latest reply and of the whole session, once a server has counted any.
fn tokens_label(view: &SessionView) -> Option<String> {
    if view.usage.total_tokens == 0 {
        return None;
    }
    let last = view
        .last_usage
        .map_or("–".to_string(), |usage| count(usage.total_tokens));
    Some(format!(
        "tokens {last} last · {} session",
        count(view.usage.total_tokens)
    ))
}

/// 950, 12.3k, 4.1M: short enough for the bar.
fn count(tokens: u64) -> String {
    match tokens {
        0..10_000 => tokens.to_string(),
        10_000..1_000_000 => format!("{:.1}k", tokens as f64 / 1000.0),
        _ => format!("{:.1}M", tokens as f64 / 1_000_000.0),
    }
}

/// What the session is doing, in a word or three, and its colour: as the engine reports it.
fn stage_label(app: &App) -> (String, ratatui::style::Color) {
    let theme = &app.theme;
    let preparing = matches!(app.sandbox_state, SandboxState::Preparing { .. });
    match app.view.stage {
        _ if app.replying() => ("model replying".to_string(), theme.accent),
        Stage::Busy(Phase::Running) if preparing => {
            ("blocks wait for the sandbox".to_string(), theme.warning)
        }
        Stage::Busy(Phase::Running) => ("block running".to_string(), theme.success),
        Stage::Busy(_) => (
            format!("{} block(s) wait for you", app.waiting()),
            theme.warning,
        ),
        Stage::Starting if preparing => ("starting".to_string(), theme.warning),
        Stage::Starting | Stage::Idle(_) => ("ready".to_string(), theme.success),
        Stage::Done(reason) => (format!("ended: {}", wire_name(&reason)), theme.dim),
    }
}

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let theme = &app.theme;
    let (phase, colour) = stage_label(app);
    let mut top = vec![
        Segment::whole(vec![Span::styled(
            format!(" {phase} "),
            Style::new()
                .fg(colour)
                .add_modifier(Modifier::REVERSED | Modifier::BOLD),
        )]),
        Segment::words(Span::styled(format!(" {} ", app.model), theme.accent())),
    ];
    if let Some(tokens) = tokens_label(&app.view) {
        top.push(Segment::words(Span::styled(
            format!("│ {tokens} "),
            theme.text(),
        )));
    }
    top.extend([
        Segment::words(Span::styled(
            format!("│ {} ", app.view.session.as_deref().unwrap_or("…")),
            theme.dim(),
        )),
        Segment::words(Span::styled(
            format!("│ {} ", app.sandbox_label()),
            theme.dim(),
        )),
    ]);
    if let Some(status) = &app.status {
        top.push(Segment::words(Span::styled(
            format!("│ {status}"),
            Style::new().fg(theme.warning),
        )));
    }
    let mut keys = Vec::new();
    let global = app.keymap.hints(super::keys::keymap::Context::Global);
    // The topmost overlay's keys, when one is open; else the focused pane's.
    let context = app.modals.context().unwrap_or(app.pane_context());
    let focused = app.keymap.hints(context);
    let wanted = ["next pane", "cancel", "quit", "history", "zoom"];
    let globals = global.into_iter().filter(|(_, hint)| wanted.contains(hint));
    for (key, hint) in focused.into_iter().take(8).chain(globals) {
        keys.push(Segment::whole(vec![
            Span::styled(format!(" {key}"), theme.accent()),
            Span::styled(format!(" {hint} "), theme.dim()),
        ]));
    }
    keys.push(Segment::whole(vec![
        Span::styled(" ? ", theme.accent()),
        Span::styled("all keys ", theme.dim()),
    ]));
    let width = area.width as usize;
    let lines = if area.height >= 2 {
        vec![fit(top, width), fit(keys, width)]
    } else {
        vec![fit(top, width)]
    };
    frame.render_widget(Paragraph::new(lines), area);
}

/// A piece of the status bar that is kept whole, or may be cut after a word.
struct Segment {
    spans: Vec<Span<'static>>,
    cut_at_words: bool,
}

impl Segment {
    fn whole(spans: Vec<Span<'static>>) -> Self {
        Self {
            spans,
            cut_at_words: false,
        }
    }

    fn words(span: Span<'static>) -> Self {
        Self {
            spans: vec![span],
            cut_at_words: true,
        }
    }

    fn width(&self) -> usize {
        line_width(&Line::from(self.spans.clone()))
    }
}

const ELLIPSIS: &str = "…";

/// The segments that fit in `width`; when some do not, the line ends at a segment or word
/// boundary with an ellipsis, never in the middle of a word.
fn fit(segments: Vec<Segment>, width: usize) -> Line<'static> {
    let total: usize = segments.iter().map(Segment::width).sum();
    if total <= width {
        return Line::from(
            segments
                .into_iter()
                .flat_map(|s| s.spans)
                .collect::<Vec<_>>(),
        );
    }
    // Room for what is kept, and for the " …" that ends it.
    let room = width.saturating_sub(1 + ELLIPSIS.chars().count());
    let mut spans: Vec<Span<'static>> = Vec::new();
    let mut used = 0;
    let mut ellipsis_style = Style::new();
    for segment in segments {
        let w = segment.width();
        if used + w <= room {
            used += w;
            spans.extend(segment.spans);
            continue;
        }
        if segment.cut_at_words
            && let Some(span) = segment.spans.first()
        {
            ellipsis_style = span.style;
            if let Some(cut) = cut_after_word(&span.content, room - used) {
                spans.push(Span::styled(cut, span.style));
            }
        }
        break;
    }
    if let Some(last) = spans.last_mut() {
        // No dangling separator before the ellipsis.
        let trimmed = last.content.trim_end_matches([' ', '·', '│']).to_string();
        if trimmed.is_empty() {
            spans.pop();
        } else {
            last.content = trimmed.into();
        }
    }
    spans.push(Span::styled(format!(" {ELLIPSIS}"), ellipsis_style));
    let mut line = Line::from(spans);
    while line_width(&line) > width && line.spans.len() > 1 {
        line.spans.remove(line.spans.len() - 2);
    }
    line
}

/// The longest start of `text` that fits in `room` columns and ends before a ` · `
/// separator, or else after a whole word.
fn cut_after_word(text: &str, room: usize) -> Option<String> {
    let meaningful = |cut: &str| !cut.trim_start_matches(['│', ' ']).is_empty();
    let (mut at_word, mut at_separator) = (None, None);
    let mut used = 0;
    for (at, c) in text.char_indices() {
        if c == ' ' && meaningful(&text[..at]) {
            at_word = Some(at);
            if text[at..].starts_with(" · ") {
                at_separator = Some(at);
            }
        }
        used += char_width(c);
        if used > room {
            return at_separator.or(at_word).map(|at| text[..at].to_string());
        }
    }
    Some(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::testing::{app, pane};

    #[test]
    fn a_status_that_does_not_fit_ends_at_a_word_with_an_ellipsis() {
        let app = app();
        let text = pane(100, 2, |frame| render(frame, frame.area(), &app));
        let rows: Vec<&str> = text.lines().collect();
        // The sandbox description is cut at one of its " · " separators, not inside "1 CPU".
        assert!(rows[0].contains("· 512MiB …"), "{text}");
        assert!(rows[1].contains("Ctrl-C cancel …"), "{text}");
        insta::assert_snapshot!(text);
        let wide = pane(200, 2, |frame| render(frame, frame.area(), &app));
        assert!(!wide.contains('…') && wide.contains("256 pids") && wide.contains("all keys"));
    }

    #[test]
    fn the_bar_counts_the_latest_replys_tokens_and_the_sessions() {
        use crate::protocol::{Event, Usage};
        let mut app = app();
        let bar = |app: &App| pane(160, 2, |frame| render(frame, frame.area(), app));
        assert!(!bar(&app).contains("tokens"), "none counted yet");
        let reply = |total| Event::AssistantMessage {
            text: "ok".into(),
            usage: Some(Usage {
                prompt_tokens: total - 10,
                completion_tokens: 10,
                total_tokens: total,
            }),
            end: None,
        };
        app.on_event(&reply(9_000));
        app.on_event(&reply(12_345));
        let text = bar(&app);
        assert!(
            text.contains("│ tokens 12.3k last · 21.3k session │"),
            "{text}"
        );
        // A reply the server did not count leaves the session's total as it was.
        app.on_event(&Event::AssistantMessage {
            text: "ok".into(),
            usage: None,
            end: None,
        });
        assert!(bar(&app).contains("tokens – last · 21.3k session"));
    }

    #[test]
    fn cuts_fall_after_whole_words() {
        assert_eq!(
            cut_after_word("│ one two three ", 9).as_deref(),
            Some("│ one two")
        );
        assert_eq!(cut_after_word("│ onetwothree ", 6), None);
        assert_eq!(cut_after_word(" all ", 10).as_deref(), Some(" all "));
        assert_eq!(
            cut_after_word("│ a · b c · d e", 12).as_deref(),
            Some("│ a · b c")
        );
    }
}
