//! The pending-block card: block k of n, its language, a short hash, and the full code with
//! line numbers, highlighted, with every invisible or look-alike character drawn visibly.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

use super::app::App;
use super::keymap::{Action, Context};
use super::text::{has_hidden, is_invisible, visible_spans, wrap_line};

pub fn render(
    frame: &mut Frame,
    area: Rect,
    app: &App,
    highlighter: &super::highlight::Highlighter,
) {
    let theme = &app.theme;
    let focused = app.focus == super::app::Focus::Card;
    let Some(block) = app.card_block() else {
        let idle = Block::default()
            .borders(Borders::ALL)
            .border_style(theme.border(focused))
            .title_style(theme.title(focused))
            .title(Span::styled(" Pending block ", theme.accent()));
        frame.render_widget(
            Paragraph::new(Line::styled("Nothing waits for a decision.", theme.dim())).block(idle),
            area,
        );
        return;
    };
    let position = app
        .turn_blocks
        .iter()
        .position(|id| *id == block.id)
        .unwrap_or(0);
    let total = app.turn_blocks.len().max(position + 1);
    let mut title = vec![
        Span::styled(
            format!(" Block {} of {total} ", position + 1),
            theme.accent(),
        ),
        Span::styled(
            format!("· {} · #{} ", block.language, block.hash),
            theme.text(),
        ),
    ];
    if app.pending.len() > 1 {
        title.push(Span::styled(
            format!("· {} waiting ", app.pending.len()),
            theme.dim(),
        ));
    }
    if has_hidden(&block.code) {
        title.push(Span::styled(
            "· hidden chars shown ",
            Style::new().fg(theme.hidden).add_modifier(Modifier::BOLD),
        ));
    }
    let waiting = !focused && app.focus == super::app::Focus::Composer;
    let hints = if waiting {
        Line::from(vec![Span::styled(
            format!(
                " waiting for you: {} to reach it ",
                app.keymap.key_label(Action::FocusNext)
            ),
            Style::new().fg(theme.warning).add_modifier(Modifier::BOLD),
        )])
    } else {
        hint_line(app)
    };
    let frame_block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.border(focused))
        // On the top title only: the key hints below stay plain.
        .title(Line::from(title).style(theme.title(focused)))
        .title_bottom(hints);
    let inner = frame_block.inner(area);
    let lines = code_lines(
        &block.code,
        &block.language,
        app,
        highlighter,
        inner.width as usize,
    );
    let total = lines.len() as u16;
    let scroll = app
        .card_scroll
        .min(total.saturating_sub(inner.height.max(1)));
    frame.render_widget(
        Paragraph::new(lines).block(frame_block).scroll((scroll, 0)),
        area,
    );
    if total > inner.height {
        let more = total - inner.height - scroll;
        let label = format!(
            " lines {}-{} of {total}{} ",
            scroll + 1,
            scroll + inner.height,
            if more > 0 { " ↓" } else { "" }
        );
        let width = label.chars().count() as u16;
        if area.width > width + 2 {
            let at = Rect::new(area.right() - width - 1, area.y, width, 1);
            frame.render_widget(Paragraph::new(Span::styled(label, theme.dim())), at);
        }
    }
}

fn hint_line(app: &App) -> Line<'static> {
    let theme = &app.theme;
    let mut spans = Vec::new();
    for (key, hint) in app.keymap.hints(Context::Card).into_iter().take(7) {
        spans.push(Span::styled(format!(" {key}"), theme.accent()));
        spans.push(Span::styled(format!(" {hint}"), theme.dim()));
    }
    spans.push(Span::raw(" "));
    Line::from(spans)
}

/// Numbered, highlighted lines, wrapped to `width` (a continuation row is marked `↪`, so
/// nothing is cut off); a line with hidden characters shows them instead of colours.
fn code_lines(
    code: &str,
    language: &str,
    app: &App,
    highlighter: &super::highlight::Highlighter,
    width: usize,
) -> Vec<Line<'static>> {
    let theme = &app.theme;
    let highlighted = highlighter.lines(code, language);
    let digits = code.lines().count().max(1).to_string().len();
    let gutter = digits + 3;
    let mut rows = Vec::new();
    for (i, raw) in code.lines().enumerate() {
        let plain = raw
            .chars()
            .all(|c| !is_invisible(c) && c != '\t' && c != '\u{a0}')
            && !raw.ends_with(' ');
        let spans: Vec<Span<'static>> = match highlighted.get(i) {
            Some(pieces) if plain => pieces
                .iter()
                .map(|(style, text)| Span::styled(text.clone(), *style))
                .collect(),
            _ => visible_spans(raw, theme.text(), theme.hidden()),
        };
        for (row, wrapped) in wrap_line(&Line::from(spans), width.saturating_sub(gutter).max(1))
            .into_iter()
            .enumerate()
        {
            let number = if row == 0 {
                format!("{:>digits$} │ ", i + 1)
            } else {
                format!("{:>digits$} ↪ ", "")
            };
            let mut line = vec![Span::styled(number, theme.dim())];
            line.extend(wrapped.spans);
            rows.push(Line::from(line));
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::testing::{app, feed, pane, proposed};

    #[test]
    fn a_pending_block_shows_its_exact_bytes() {
        let mut app = app();
        let code = "name = \"admin\u{200b}\"\nif user == name:\u{202e} # ok\n\tgrant()   \nprint('a very long line that does not fit in the card and must wrap instead of being cut off')\n";
        feed(
            &mut app,
            &[
                proposed("b-1", 0, "python", code),
                proposed("b-2", 1, "bash", "ls\n"),
            ],
        );
        let highlighter = crate::tui::highlight::Highlighter::plain();
        insta::assert_snapshot!(pane(64, 12, |frame| render(
            frame,
            frame.area(),
            &app,
            &highlighter
        )));
    }

    #[test]
    fn with_nothing_pending_the_card_says_so() {
        let app = app();
        let highlighter = crate::tui::highlight::Highlighter::plain();
        insta::assert_snapshot!(pane(40, 4, |frame| render(
            frame,
            frame.area(),
            &app,
            &highlighter
        )));
    }
}
