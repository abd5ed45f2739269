//! The `?` overlay: every binding with its description, grouped by where it applies,
//! generated from the keymap so it cannot go stale.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

use super::app::App;
use super::keymap::{Binding, Context};

pub fn render(frame: &mut Frame, area: Rect, app: &App, scroll: u16) {
    let theme = &app.theme;
    let mut lines = Vec::new();
    let contexts = [
        Context::Card,
        Context::Composer,
        Context::Editor,
        Context::Logs,
        Context::History,
        Context::Global,
    ];
    for context in contexts {
        let bindings: Vec<&Binding> = app
            .keymap
            .bindings()
            .iter()
            .filter(|b| b.context == context)
            .collect();
        if bindings.is_empty() {
            continue;
        }
        lines.push(Line::styled(context.title(), theme.accent()));
        for binding in bindings {
            let keys: Vec<String> = binding.keys.iter().map(|k| k.label()).collect();
            lines.push(Line::from(vec![
                Span::styled(format!("  {:<16}", keys.join(" / ")), theme.text()),
                Span::styled(binding.description, theme.dim()),
            ]));
        }
        lines.push(Line::default());
    }
    lines.push(Line::styled(
        "In the scope picker: l same language · x this exact code · Esc back",
        theme.dim(),
    ));
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.border(true))
        .title(Span::styled(
            " Keys (any key closes, j/k scroll) ",
            theme.accent(),
        ));
    frame.render_widget(Clear, area);
    frame.render_widget(Paragraph::new(lines).block(block).scroll((scroll, 0)), area);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::testing::{app, pane};

    #[test]
    fn the_help_lists_every_binding_from_the_keymap() {
        let app = app();
        let text = pane(100, 60, |frame| render(frame, frame.area(), &app, 0));
        for binding in app.keymap.bindings() {
            assert!(
                text.contains(binding.description),
                "{} missing",
                binding.description
            );
        }
        insta::assert_snapshot!(text);
    }
}
