//! The pending-block card: block k of n, its language, a short hash, and the full code with
//! line numbers, highlighted, with every invisible or look-alike character drawn visibly.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

use crate::protocol::{DecisionKind, DecisionRequest, Event, Op};
use crate::tui::keys::keymap::{Action, Context, Keymap};
use crate::tui::overlays::choices::ScopeModal;
use crate::tui::overlays::input::InputModal;
use crate::tui::panes::pane::Look;
use crate::tui::panes::{Acting, Focus, Pane, Seen, Wants};
use crate::tui::render::text::{has_hidden, is_invisible, visible_spans, wrap_line};
use crate::tui::runner::UiAction;
use crate::tui::theme::Theme;
use crate::view::{BlockState, SessionView};

/// Which of the waiting blocks the card shows, and how far its code is scrolled.
#[derive(Debug, Clone, Default)]
pub(crate) struct CardPane {
    choice: usize,
    scroll: u16,
}

impl CardPane {
    /// The block the card shows, if any waits.
    pub(crate) fn shown<'v>(&self, view: &'v SessionView) -> Option<&'v BlockState> {
        let waiting: Vec<&BlockState> = view.undecided().collect();
        let at = self.choice.min(waiting.len().saturating_sub(1));
        waiting.get(at).copied()
    }

    /// Back to the first waiting block, from its top.
    pub(crate) fn reset(&mut self) {
        self.choice = 0;
        self.scroll = 0;
    }

    /// After a decision: the same place in what still waits (`waiting` of them).
    pub(crate) fn decided(&mut self, waiting: usize) {
        self.choice = self.choice.min(waiting.saturating_sub(1));
        self.scroll = 0;
    }

    /// Next or previous waiting block (of `waiting`), from its top.
    pub(crate) fn step(&mut self, action: Action, waiting: usize) {
        self.choice = match action {
            Action::NextBlock => (self.choice + 1).min(waiting.saturating_sub(1)),
            _ => self.choice.saturating_sub(1),
        };
        self.scroll = 0;
    }

    /// Scrolls the code for a scrolling action; `page` is the code's height.
    pub(crate) fn scroll_by(&mut self, action: Action, page: u16) {
        self.scroll = match action {
            Action::ScrollDown => self.scroll.saturating_add(1),
            Action::ScrollUp => self.scroll.saturating_sub(1),
            Action::PageDown => self.scroll.saturating_add(page),
            Action::PageUp => self.scroll.saturating_sub(page),
            Action::Top => 0,
            Action::Bottom => u16::MAX / 2,
            _ => self.scroll,
        };
    }

    /// `typing`: the operator is in the composer, so the card says how to reach it.
    pub(crate) fn draw(
        &self,
        frame: &mut Frame,
        area: Rect,
        view: &SessionView,
        look: &Look,
        typing: bool,
    ) {
        let theme = look.theme;
        let Some(block) = self.shown(view) else {
            let idle = theme.pane(
                look.focused,
                Span::styled(" Pending block ", theme.accent()),
            );
            let text = Line::styled("Nothing waits for a decision.", theme.dim());
            frame.render_widget(Paragraph::new(text).block(idle), area);
            return;
        };
        let hints = if typing && !look.focused {
            Line::from(vec![Span::styled(
                format!(
                    " waiting for you: {} to reach it ",
                    look.keymap.key_label(Action::FocusNext)
                ),
                Style::new().fg(theme.warning).add_modifier(Modifier::BOLD),
            )])
        } else {
            hint_line(theme, look.keymap)
        };
        let frame_block = Block::default()
            .borders(Borders::ALL)
            .border_style(theme.border(look.focused))
            // On the top title only: the key hints below stay plain.
            .title(Line::from(title(block, view, theme)).style(theme.title(look.focused)))
            .title_bottom(hints);
        let inner = frame_block.inner(area);
        let lines = code_lines(
            &block.code,
            &block.language,
            theme,
            look.highlighter,
            inner.width as usize,
        );
        let total = lines.len() as u16;
        let scroll = self.scroll.min(total.saturating_sub(inner.height.max(1)));
        frame.render_widget(
            Paragraph::new(lines).block(frame_block).scroll((scroll, 0)),
            area,
        );
        if total > inner.height {
            position_label(frame, area, inner.height, scroll, total, theme);
        }
    }
}

/// Block k of n of the reply, its language and hash, how many wait, and whether hidden
/// characters are shown.
fn title(block: &BlockState, view: &SessionView, theme: &Theme) -> Vec<Span<'static>> {
    let position = view.turn.iter().position(|id| *id == block.id).unwrap_or(0);
    let total = view.turn.len().max(position + 1);
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
    let waiting = view.undecided().count();
    if waiting > 1 {
        title.push(Span::styled(format!("· {waiting} waiting "), theme.dim()));
    }
    if has_hidden(&block.code) {
        title.push(Span::styled(
            "· hidden chars shown ",
            Style::new().fg(theme.hidden).add_modifier(Modifier::BOLD),
        ));
    }
    title
}

/// "lines a-b of n" on the top border, when the code is longer than the card.
fn position_label(
    frame: &mut Frame,
    area: Rect,
    height: u16,
    scroll: u16,
    total: u16,
    theme: &Theme,
) {
    let more = total - height - scroll;
    let label = format!(
        " lines {}-{} of {total}{} ",
        scroll + 1,
        scroll + height,
        if more > 0 { " ↓" } else { "" }
    );
    let width = label.chars().count() as u16;
    if area.width > width + 2 {
        let at = Rect::new(area.right() - width - 1, area.y, width, 1);
        frame.render_widget(Paragraph::new(Span::styled(label, theme.dim())), at);
    }
}

fn hint_line(theme: &Theme, keymap: &Keymap) -> Line<'static> {
    let mut spans = Vec::new();
    for (key, hint) in keymap.hints(Context::Card).into_iter().take(7) {
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
    theme: &Theme,
    highlighter: &crate::tui::render::highlight::Highlighter,
    width: usize,
) -> Vec<Line<'static>> {
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

impl Pane for CardPane {
    fn contexts(&self) -> &'static [Context] {
        &[Context::Card]
    }

    /// Tab visits the card only while a block waits.
    fn takes_focus(&self, view: &SessionView) -> bool {
        view.undecided().next().is_some()
    }

    fn on_event(&mut self, event: &Event, view: &SessionView) {
        let waiting = view.undecided().count();
        match event {
            // The first block to wait is shown from the start.
            Event::BlockProposed { .. } if waiting == 1 => self.reset(),
            Event::Decision { .. } => self.decided(waiting),
            _ => {}
        }
    }

    /// The decisions on the block it shows, and stepping between the waiting ones.
    fn on_action(&mut self, action: Action, acting: &Acting) -> Option<Vec<Wants>> {
        if !CARD_ACTIONS.contains(&action) {
            return None;
        }
        let block = self.shown(acting.view)?.clone();
        let decide = |decision: DecisionKind| {
            Wants::Ui(UiAction::Op(Op::Decide(DecisionRequest {
                block: block.id.clone(),
                decision,
                reason: None,
                code: None,
                scope: None,
            })))
        };
        let wants = match action {
            Action::Approve => decide(DecisionKind::Approve),
            Action::Skip => decide(DecisionKind::Skip),
            Action::Abort => decide(DecisionKind::Abort),
            Action::EditExternal => Wants::Ui(UiAction::EditExternally {
                block: block.id.clone(),
                extension: extension_for(&block.language),
                code: block.code.clone(),
            }),
            Action::ApproveSession => Wants::Overlay(Box::new(ScopeModal {
                block: block.id.clone(),
            })),
            Action::Reject => Wants::Overlay(Box::new(InputModal::reason(&block.id, acting.theme))),
            Action::Edit => Wants::Overlay(Box::new(InputModal::edit(
                &block.id,
                &block.code,
                acting.theme,
            ))),
            Action::NextBlock | Action::PrevBlock => {
                self.step(action, acting.view.undecided().count());
                return Some(Vec::new());
            }
            _ => return None,
        };
        Some(vec![wants])
    }

    fn scroll(&mut self, action: Action, area: Rect) -> bool {
        self.scroll_by(action, area.height.saturating_sub(4));
        true
    }

    fn render(&self, frame: &mut Frame, area: Rect, seen: &Seen) {
        let typing = seen.focus == Focus::Composer;
        self.draw(frame, area, seen.view, &seen.look, typing);
    }
}

/// The actions the card takes as its own.
const CARD_ACTIONS: [Action; 9] = [
    Action::Approve,
    Action::ApproveSession,
    Action::Edit,
    Action::EditExternal,
    Action::Reject,
    Action::Skip,
    Action::Abort,
    Action::NextBlock,
    Action::PrevBlock,
];

/// The file extension $EDITOR gets, so it highlights the right language.
fn extension_for(language: &str) -> String {
    match language {
        "python" => "py".into(),
        "bash" | "sh" => "sh".into(),
        other => other.to_string(),
    }
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
        let highlighter = crate::tui::render::highlight::Highlighter::plain();
        let look = Look::unfocused(&app.theme, &app.keymap, &highlighter);
        insta::assert_snapshot!(pane(64, 12, |frame| app.card.draw(
            frame,
            frame.area(),
            &app.view,
            &look,
            false
        )));
    }

    #[test]
    fn line_and_paragraph_separators_are_marked() {
        // JavaScript ends the comment at U+2028, so `steal()` runs; a terminal draws nothing
        // there, so without a marker the line reads as one harmless comment.
        let mut app = app();
        let code = "// check the input\u{2028}steal()\nlet done = true;\u{2029}report()\n";
        feed(&mut app, &[proposed("b-1", 0, "javascript", code)]);
        let highlighter = crate::tui::render::highlight::Highlighter::plain();
        let look = Look::unfocused(&app.theme, &app.keymap, &highlighter);
        let text = pane(64, 8, |frame| {
            app.card.draw(frame, frame.area(), &app.view, &look, false)
        });
        assert!(text.contains("input<U+2028>steal()"), "{text}");
        assert!(text.contains("true;<U+2029>report()"), "{text}");
        insta::assert_snapshot!(text);
    }

    #[test]
    fn with_nothing_pending_the_card_says_so() {
        let app = app();
        let highlighter = crate::tui::render::highlight::Highlighter::plain();
        let look = Look::unfocused(&app.theme, &app.keymap, &highlighter);
        insta::assert_snapshot!(pane(40, 4, |frame| app.card.draw(
            frame,
            frame.area(),
            &app.view,
            &look,
            false
        )));
    }
}
