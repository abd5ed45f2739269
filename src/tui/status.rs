//! The status bar: model, container, what the session is doing, and the keys of the
//! focused pane.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::app::{App, Phase};
use crate::protocol::wire_name;

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let theme = &app.theme;
    let (phase, colour) = match app.phase {
        Phase::Starting => ("starting".to_string(), theme.warning),
        Phase::Streaming => ("model replying".to_string(), theme.accent),
        Phase::Deciding if app.pending.is_empty() => {
            ("blocks wait for the sandbox".to_string(), theme.warning)
        }
        Phase::Deciding => (
            format!("{} block(s) wait for you", app.pending.len()),
            theme.warning,
        ),
        Phase::Running => ("block running".to_string(), theme.success),
        Phase::Idle(_) => ("ready".to_string(), theme.success),
        Phase::Done(reason) => (format!("ended: {}", wire_name(&reason)), theme.dim),
    };
    let mut top = vec![
        Span::styled(
            format!(" {phase} "),
            Style::new()
                .fg(colour)
                .add_modifier(Modifier::REVERSED | Modifier::BOLD),
        ),
        Span::styled(format!(" {} ", app.model), theme.accent()),
        Span::styled(format!("│ {} ", app.sandbox_label()), theme.dim()),
        Span::styled(
            format!("│ {} ", app.session.as_deref().unwrap_or("…")),
            theme.dim(),
        ),
    ];
    if let Some(status) = &app.status {
        top.push(Span::styled(
            format!("│ {status}"),
            Style::new().fg(theme.warning),
        ));
    }
    let mut keys = Vec::new();
    let global = app.keymap.hints(super::keymap::Context::Global);
    let focused = app.keymap.hints(app.focus.context());
    let wanted = ["next pane", "cancel", "quit", "history", "zoom"];
    let globals = global.into_iter().filter(|(_, hint)| wanted.contains(hint));
    for (key, hint) in focused.into_iter().take(8).chain(globals) {
        keys.push(Span::styled(format!(" {key}"), theme.accent()));
        keys.push(Span::styled(format!(" {hint} "), theme.dim()));
    }
    keys.push(Span::styled(" ? ", theme.accent()));
    keys.push(Span::styled("all keys ", theme.dim()));
    let lines = if area.height >= 2 {
        vec![Line::from(top), Line::from(keys)]
    } else {
        vec![Line::from(top)]
    };
    frame.render_widget(Paragraph::new(lines), area);
}
