//! The banner for a session that cannot go on (Docker unreachable, no usable image, the
//! sandbox gone): drawn over the panes until the operator quits, so the reason is read
//! rather than flashed. The panes stay scrollable underneath.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

use super::app::App;

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let Some(why) = &app.fatal else { return };
    let theme = &app.theme;
    let width = area.width.saturating_sub(4).clamp(20, 90);
    let text_width = usize::from(width.saturating_sub(4)).max(1);
    let why = crate::output::sanitize::for_person(why);
    let body_lines = why
        .lines()
        .map(|line| {
            unicode_width::UnicodeWidthStr::width(line)
                .div_ceil(text_width)
                .max(1)
        })
        .sum::<usize>();
    let height = u16::try_from(body_lines + 5)
        .unwrap_or(u16::MAX)
        .min(area.height);
    let rect = Rect {
        x: area.x + (area.width.saturating_sub(width)) / 2,
        y: area.y + (area.height.saturating_sub(height)) / 2,
        width,
        height,
    };
    let strong = Style::new().fg(theme.error).add_modifier(Modifier::BOLD);
    let mut lines = vec![Line::styled(
        "airlock cannot go on, and nothing more will run:",
        strong,
    )];
    lines.extend(
        why.lines()
            .map(|line| Line::styled(line.to_string(), theme.text())),
    );
    lines.push(Line::default());
    lines.push(Line::from(vec![
        Span::styled("q", theme.accent()),
        Span::styled(" quit (the reason is printed again)", theme.dim()),
    ]));
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(strong)
        .title(Span::styled(" Session ended ", strong));
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: false }),
        rect,
    );
}

#[cfg(test)]
mod tests {
    use super::super::testing;
    use crate::protocol::{DoneReason, Event};

    #[test]
    fn an_engine_that_stops_on_an_error_leaves_its_reason_on_screen() {
        let mut app = testing::app();
        app.on_event(&Event::Error {
            message: "the sandbox cannot start: cannot reach the Docker daemon at unix:///nowhere.sock: \
                      No such file or directory. Start Docker or point DOCKER_HOST at a running daemon"
                .into(),
            id: None,
       });
        app.on_event(&Event::Done {
            reason: DoneReason::Error,
        });
        let screen = testing::screen(&mut app, 100, 24);
        assert!(screen.contains("Session ended"), "{screen}");
        assert!(
            screen.contains("cannot reach the Docker daemon"),
            "{screen}"
        );
        insta::assert_snapshot!(screen);
    }

    #[test]
    fn a_session_that_ends_normally_shows_no_banner() {
        let mut app = testing::app();
        app.on_event(&Event::Done {
            reason: DoneReason::Aborted,
        });
        assert!(app.fatal.is_none());
        assert!(!testing::screen(&mut app, 100, 24).contains("Session ended"));
    }
}
