//! The screen: the panes where the layout (`panes/layout.rs`) puts them, or the focused one
//! alone when zoomed, the status bar at the bottom, overlays on top. A terminal too small
//! for that gets a notice instead.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::widgets::{Paragraph, Wrap};

use super::app::App;
use super::panes::layout;
use super::render::highlight::Highlighter;
use super::{fatal, status};

/// Smaller than this, panes cannot show anything useful.
pub const MIN_WIDTH: u16 = 40;
pub const MIN_HEIGHT: u16 = 12;

pub fn draw(frame: &mut Frame, app: &mut App, highlighter: &Highlighter) {
    draw_screen(frame, app, highlighter);
    if app.theme.monochrome {
        strip_colours(frame.buffer_mut());
    }
}

fn draw_screen(frame: &mut Frame, app: &mut App, highlighter: &Highlighter) {
    let area = frame.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let text = format!(
            "The terminal is too small ({}×{}); airlock needs {MIN_WIDTH}×{MIN_HEIGHT}.",
            area.width, area.height
        );
        frame.render_widget(
            Paragraph::new(text)
                .style(app.theme.text())
                .wrap(Wrap { trim: true }),
            area,
        );
        return;
    }
    let [main, bar] = Layout::vertical([Constraint::Min(5), Constraint::Length(2)]).areas(area);
    app.areas = if app.zoomed {
        layout::alone(app.focus, main)
    } else {
        let own_height = |focus| app.pane(focus).map_or(0, |pane| pane.own_height());
        layout::arrange(main, |focus| app.is_open(focus), own_height)
    };
    for (focus, area) in app.areas.iter() {
        app.render_pane(frame, focus, area, highlighter);
    }
    status::render(frame, bar, app);
    draw_overlay(frame, app, main);
    fatal::render(frame, main, app);
}

/// `NO_COLOR`: every cell loses its colours, whoever set them (themes, syntax highlighting,
/// a program's own SGR colours in the log), and keeps its bold, reverse and underline.
/// With no colour left to change, no colour sequence is written either: crossterm writes an
/// empty one under `NO_COLOR`, which terminals read as "reset every attribute".
fn strip_colours(buffer: &mut ratatui::buffer::Buffer) {
    for cell in &mut buffer.content {
        cell.set_fg(ratatui::style::Color::Reset);
        cell.set_bg(ratatui::style::Color::Reset);
    }
}

/// The overlays open, over everything else.
fn draw_overlay(frame: &mut Frame, app: &App, area: Rect) {
    let data = super::overlays::modal::ModalData {
        theme: &app.theme,
        keymap: &app.keymap,
        rules: &app.rules,
    };
    app.modals.render(frame, area, &data);
}

#[cfg(test)]
mod tests {
    use ratatui::buffer::Buffer;
    use ratatui::style::{Color, Modifier};

    use crate::protocol::{DecisionKind, Event, IdleReason, Stream};
    use crate::tui::app::{App, Focus};
    use crate::tui::testing::{
        app, decided, feed, finished, output, proposed, result, screen, started,
    };
    use crate::tui::theme::Theme;

    #[test]
    fn the_empty_screen_while_the_sandbox_starts() {
        let mut app = crate::tui::app::App::new(
            Default::default(),
            Default::default(),
            "gpt-4o-mini".into(),
            100,
            false,
        );
        insta::assert_snapshot!(screen(&mut app, 100, 24));
    }

    #[test]
    fn a_block_waits_while_an_earlier_one_ran() {
        let mut app = app();
        feed(
            &mut app,
            &[
                Event::AssistantDelta {
                    text: "Two steps:\n\n```bash\necho one\n```\n\n```python\nprint(2)\n```\n"
                        .into(),
                },
                Event::AssistantMessage {
                    text: "Two steps:\n\n```bash\necho one\n```\n\n```python\nprint(2)\n```\n"
                        .into(),
                    usage: None,
                    end: None,
                },
                proposed("b-1", 0, "bash", "echo one\n"),
                proposed("b-2", 1, "python", "print(2)\n"),
                decided("b-1", DecisionKind::Approve),
                started("b-1", "r-1"),
                output("b-1", Stream::Stdout, "one\n"),
                finished("b-1", result(Some(0), "one\n")),
            ],
        );
        insta::assert_snapshot!(screen(&mut app, 120, 30));
    }

    #[test]
    fn history_open_and_zoomed_logs() {
        let mut app = app();
        feed(
            &mut app,
            &[
                proposed("b-1", 0, "bash", "echo one\n"),
                decided("b-1", DecisionKind::Approve),
                started("b-1", "r-1"),
                output("b-1", Stream::Stdout, "one\n"),
                finished("b-1", result(Some(0), "one\n")),
                // The turn limit was reached: the engine waits for the operator.
                Event::Idle {
                    reason: IdleReason::MaxTurns,
                },
            ],
        );
        app.history.open = true;
        insta::assert_snapshot!("history_open", screen(&mut app, 120, 30));
        app.history.open = false;
        app.focus = crate::tui::app::Focus::Logs;
        app.zoomed = true;
        insta::assert_snapshot!("zoomed_logs", screen(&mut app, 80, 14));
    }

    #[test]
    fn the_help_overlay_and_a_tiny_terminal() {
        let mut app = app();
        app.modals
            .push(Box::new(crate::tui::overlays::help::HelpModal::default()));
        insta::assert_snapshot!("help_overlay", screen(&mut app, 100, 40));
        insta::assert_snapshot!("too_small", screen(&mut app, 30, 8));
        // Every size down to 1×1 draws without a panic.
        for (w, h) in [(1, 1), (10, 3), (39, 11), (40, 12), (41, 13)] {
            screen(&mut app, w, h);
        }
    }

    /// Where `text` starts on the screen, read cell by cell.
    fn find(buffer: &ratatui::buffer::Buffer, text: &str) -> Option<(u16, u16)> {
        let wanted: Vec<String> = text.chars().map(String::from).collect();
        let area = buffer.area;
        for y in 0..area.height {
            let row: Vec<&str> = (0..area.width).map(|x| buffer[(x, y)].symbol()).collect();
            if let Some(x) = row
                .windows(wanted.len())
                .position(|w| w == wanted.as_slice())
            {
                return Some((x as u16, y));
            }
        }
        None
    }

    fn drawn(app: &mut crate::tui::app::App, width: u16, height: u16) -> ratatui::buffer::Buffer {
        let mut terminal =
            ratatui::Terminal::new(ratatui::backend::TestBackend::new(width, height))
                .expect("test terminal");
        let highlighter = crate::tui::render::highlight::Highlighter::plain();
        terminal
            .draw(|frame| super::draw(frame, app, &highlighter))
            .expect("draws");
        terminal.backend().buffer().clone()
    }

    fn modifier_at(buffer: &ratatui::buffer::Buffer, text: &str) -> Modifier {
        let (x, y) = find(buffer, text).unwrap_or_else(|| panic!("{text:?} is not on screen"));
        (x..x + text.chars().count() as u16)
            .map(|x| buffer[(x, y)].modifier)
            .fold(Modifier::all(), |all, m| all & m)
    }

    #[test]
    fn focus_selection_and_cursor_do_not_depend_on_colour() {
        let themes = [
            Theme::default().without_colour(),
            Theme::load("ansi16").expect("ansi16"),
        ];
        for theme in themes {
            let mut app = app();
            app.theme = theme.clone();
            feed(
                &mut app,
                &[
                    proposed("b-1", 0, "bash", "echo one\n"),
                    decided("b-1", DecisionKind::Approve),
                    started("b-1", "r-1"),
                    finished("b-1", result(Some(0), "one\n")),
                    proposed("b-2", 1, "bash", "echo two\n"),
                ],
            );
            let name = theme.name.clone();
            let buffer = drawn(&mut app, 120, 30);
            if theme.monochrome {
                let coloured = buffer
                    .content
                    .iter()
                    .find(|cell| cell.fg != Color::Reset || cell.bg != Color::Reset);
                assert!(coloured.is_none(), "a colour is left: {coloured:?}");
            }
            // The focused card's title is in reverse video; the others' are not.
            assert!(reversed(&buffer, " Block 2 of 2 "), "{name}");
            assert!(!reversed(&buffer, " Conversation "), "{name}");
            assert!(!reversed(&buffer, " Container logs "), "{name}");
            the_focused_composer_shows_its_title_and_cursor(&mut app, &name);
            the_scope_pickers_keys_are_bold(&mut app, &name);
            the_selected_run_is_bold(&mut app, &name);
        }
    }

    fn reversed(buffer: &Buffer, text: &str) -> bool {
        modifier_at(buffer, text).contains(Modifier::REVERSED)
    }

    fn the_focused_composer_shows_its_title_and_cursor(app: &mut App, name: &str) {
        app.focus = Focus::Composer;
        app.composer.insert_str("hi");
        let buffer = drawn(app, 120, 30);
        assert!(reversed(&buffer, " Message · Enter sends"), "{name}");
        assert!(!reversed(&buffer, " Block 2 of 2 "), "{name}");
        let (x, y) = find(&buffer, "hi").expect("typed text");
        assert!(
            buffer[(x + 2, y)].modifier.contains(Modifier::REVERSED),
            "{name}: cursor"
        );
        assert!(
            !buffer[(x, y)].modifier.contains(Modifier::REVERSED),
            "{name}"
        );
    }

    fn the_scope_pickers_keys_are_bold(app: &mut App, name: &str) {
        app.focus = Focus::Card;
        app.modals
            .push(Box::new(crate::tui::overlays::choices::ScopeModal {
                block: "b-2".into(),
            }));
        let buffer = drawn(app, 120, 30);
        assert!(reversed(&buffer, " Approve for session "), "{name}");
        let (x, y) = find(&buffer, "x this exact").expect("scope picker");
        assert!(
            buffer[(x, y)].modifier.contains(Modifier::BOLD),
            "{name}: key"
        );
        app.on_key(crossterm::event::KeyEvent::new(
            crossterm::event::KeyCode::Esc,
            crossterm::event::KeyModifiers::NONE,
        ));
    }

    /// The history's selected run (the newest, first) is bold, the other is not.
    fn the_selected_run_is_bold(app: &mut App, name: &str) {
        feed(
            app,
            &[
                decided("b-2", DecisionKind::Approve),
                started("b-2", "r-2"),
                finished("b-2", result(Some(0), "two\n")),
            ],
        );
        app.history.open = true;
        app.focus = Focus::History;
        let buffer = drawn(app, 120, 30);
        let (x, y) = find(&buffer, " History ").expect("history title");
        assert!(
            buffer[(x, y + 1)].modifier.contains(Modifier::BOLD),
            "{name}: selection"
        );
        assert!(
            !buffer[(x, y + 2)].modifier.contains(Modifier::BOLD),
            "{name}"
        );
    }
}
