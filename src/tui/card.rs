//! The pending-block card: block k of n, its language, a short hash, and the full code with
//! line numbers, highlighted, with every invisible or look-alike character drawn visibly.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};

use super::app::App;
use super::keymap::{Action, Context};
use super::text::{has_hidden, is_invisible, visible_spans};

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
            .title(Span::styled(" Pending block ", theme.accent()));
        frame.render_widget(
            Paragraph::new(Line::styled("Nothing waits for a decision.", theme.dim())).block(idle),
            area,
        );
        return;
    };
    let position = app
        .pending
        .iter()
        .position(|id| *id == block.id)
        .unwrap_or(0);
    let mut title = vec![
        Span::styled(
            format!(" Block {} of {} ", position + 1, app.pending.len()),
            theme.accent(),
        ),
        Span::styled(
            format!("· {} · #{} ", block.language, block.hash),
            theme.text(),
        ),
    ];
    if has_hidden(&block.code) {
        title.push(Span::styled(
            "· hidden characters shown ",
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
        .title(Line::from(title))
        .title_bottom(hints);
    let inner = frame_block.inner(area);
    let lines = code_lines(&block.code, &block.language, app, highlighter);
    let total = lines.len() as u16;
    let scroll = app
        .card_scroll
        .min(total.saturating_sub(inner.height.max(1)));
    let mut paragraph = Paragraph::new(lines).block(frame_block).scroll((scroll, 0));
    if inner.width < 20 {
        paragraph = paragraph.wrap(Wrap { trim: false });
    }
    frame.render_widget(paragraph, area);
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
    for (key, description) in app.keymap.hints(Context::Card).into_iter().take(7) {
        let short = description.split([' ', ',']).next().unwrap_or(description);
        spans.push(Span::styled(format!(" {key}"), theme.accent()));
        spans.push(Span::styled(format!(" {short}"), theme.dim()));
    }
    spans.push(Span::raw(" "));
    Line::from(spans)
}

/// Numbered, highlighted lines; hidden characters replace the highlighted text of their line.
fn code_lines(
    code: &str,
    language: &str,
    app: &App,
    highlighter: &super::highlight::Highlighter,
) -> Vec<Line<'static>> {
    let theme = &app.theme;
    let highlighted = highlighter.lines(code, language);
    let width = code.lines().count().max(1).to_string().len();
    code.lines()
        .enumerate()
        .map(|(i, raw)| {
            let mut spans = vec![Span::styled(format!("{:>width$} │ ", i + 1), theme.dim())];
            let plain = raw
                .chars()
                .all(|c| !is_invisible(c) && c != '\t' && c != '\u{a0}')
                && !raw.ends_with(' ');
            match highlighted.get(i) {
                Some(pieces) if plain => spans.extend(
                    pieces
                        .iter()
                        .map(|(style, text)| Span::styled(text.clone(), *style)),
                ),
                _ => spans.extend(visible_spans(raw, theme.text(), theme.hidden())),
            }
            Line::from(spans)
        })
        .collect()
}
