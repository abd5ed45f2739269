//! The logs pane while the sandbox is still being prepared (an image pull or build): what
//! airlock is doing, the step, and the time so far, where the first block's output will
//! appear. The status bar keeps a short form of it.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use std::time::Instant;

use crate::output::sanitize::for_person;
use crate::tui::panes::pane::Look;

/// Draws the preparation in `area`: the step it is at (none yet: connecting), since when.
pub(crate) fn render(
    frame: &mut Frame,
    area: Rect,
    step: Option<&str>,
    since: Instant,
    look: &Look,
) {
    let (theme, focused) = (look.theme, look.focused);
    let mut lines = vec![Line::from(vec![
        Span::styled("Preparing the sandbox", Style::new().fg(theme.warning)),
        Span::styled(format!(" · {} s", since.elapsed().as_secs()), theme.dim()),
    ])];
    let step = step.unwrap_or("connecting to Docker");
    // "building IMAGE · step 2 of 6: downloading packages": one line for each part.
    lines.extend(
        for_person(step)
            .split(" · ")
            .map(|part| Line::styled(part.to_string(), theme.text())),
    );
    lines.push(Line::default());
    lines.push(Line::styled(
        "Blocks can be decided meanwhile; approved ones run as soon as it is ready.",
        theme.dim(),
    ));
    let block = theme.pane(focused, Span::styled(" Container logs ", theme.accent()));
    frame.render_widget(
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: false }),
        area,
    );
}

#[cfg(test)]
mod tests {
    use crate::protocol::Event;
    use crate::tui::app::App;
    use crate::tui::keys::keymap::Keymap;
    use crate::tui::panes::Focus;
    use crate::tui::render::highlight::Highlighter;
    use crate::tui::testing;
    use crate::tui::theme::Theme;

    fn preparing_app() -> App {
        App::new(Theme::default(), Keymap::default(), "m".into(), 100, false)
    }

    fn logs(app: &App) -> String {
        testing::pane(60, 9, |frame| {
            app.render_pane(frame, Focus::Logs, frame.area(), &Highlighter::plain());
        })
    }

    #[test]
    fn the_logs_pane_shows_the_step_while_the_sandbox_is_prepared() {
        let mut app = preparing_app();
        app.on_event(&Event::SandboxProgress {
            message: "building airlock-sandbox:offline · step 2 of 6: downloading packages".into(),
        });
        let text = logs(&app);
        assert!(text.contains("Preparing the sandbox · 0 s"), "{text}");
        assert!(text.contains("step 2 of 6: downloading packages"), "{text}");
        insta::assert_snapshot!(text);
    }

    #[test]
    fn once_the_sandbox_is_ready_the_logs_pane_is_its_own_again() {
        let mut app = preparing_app();
        app.on_event(&Event::SandboxReady {
            description: "img".into(),
            workspace: None,
        });
        let text = logs(&app);
        assert!(text.contains("Container logs"), "{text}");
        assert!(!text.contains("Preparing"), "{text}");
    }
}
