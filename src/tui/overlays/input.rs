//! The overlays that take typing: the reason of a rejection, the history's filter, and the
//! inline editor of a block. Each owns its text; its keys and the keys its title names are
//! the keymap's (the editing context), Enter also ending the one-line ones.

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::Span;
use ratatui::widgets::{Block, Borders, Clear};
use ratatui_textarea::TextArea;

use crate::protocol::{DecisionKind, DecisionRequest, Op};
use crate::tui::keys::keymap::{Action, Context};
use crate::tui::overlays::modal::{Modal, ModalData, Outcome, Request};
use crate::tui::overlays::popup::{centered, centered_fixed};
use crate::tui::theme::Theme;

/// What the typed text is for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Purpose {
    /// Why this block is rejected: the model reads it.
    Reason {
        block: String,
    },
    Filter,
    /// The block's new code; `newline`: the original ended with one, so the edit does too.
    Edit {
        block: String,
        newline: bool,
    },
}

pub(crate) struct InputModal {
    purpose: Purpose,
    area: TextArea<'static>,
}

impl InputModal {
    pub(crate) fn reason(block: &str, theme: &Theme) -> Self {
        let area = one_line("why? the model reads this", theme);
        Self {
            purpose: Purpose::Reason {
                block: block.to_string(),
            },
            area,
        }
    }

    pub(crate) fn filter(current: &str, theme: &Theme) -> Self {
        let mut area = one_line("filter runs by text", theme);
        area.insert_str(current);
        Self {
            purpose: Purpose::Filter,
            area,
        }
    }

    pub(crate) fn edit(block: &str, code: &str, theme: &Theme) -> Self {
        let mut area = TextArea::new(code.lines().map(str::to_string).collect());
        area.set_line_number_style(theme.dim());
        styled(&mut area, theme);
        Self {
            purpose: Purpose::Edit {
                block: block.to_string(),
                newline: code.ends_with('\n'),
            },
            area,
        }
    }

    fn one_line(&self) -> bool {
        !matches!(self.purpose, Purpose::Edit { .. })
    }

    /// What the text asks for, once it is kept.
    fn finish(&self) -> Vec<Request> {
        let text = || self.area.lines().join(" ").trim().to_string();
        match &self.purpose {
            Purpose::Reason { block } => vec![Request::Op(Op::Decide(DecisionRequest {
                block: block.clone(),
                decision: DecisionKind::Reject,
                reason: Some(text()).filter(|reason| !reason.is_empty()),
                code: None,
                scope: None,
            }))],
            Purpose::Filter => vec![Request::Filter(text())],
            Purpose::Edit { block, newline } => {
                let mut code = self.area.lines().join("\n");
                if *newline {
                    code.push('\n');
                }
                vec![Request::Edited {
                    block: block.clone(),
                    code,
                }]
            }
        }
    }

    fn title(&self, data: &ModalData<'_>) -> String {
        let keep = data.keymap.key_in(Context::Editor, Action::Keep);
        let discard = data.keymap.key_in(Context::Editor, Action::Discard);
        match self.purpose {
            Purpose::Reason { .. } => {
                format!(" Reject · Enter or {keep} sends the reason · {discard} cancels ")
            }
            Purpose::Filter => format!(" Filter · Enter or {keep} applies · {discard} cancels "),
            Purpose::Edit { .. } => {
                format!(" Edit block · {keep} keeps the edit · {discard} drops it ")
            }
        }
    }
}

impl Modal for InputModal {
    fn context(&self) -> Context {
        Context::Editor
    }

    fn on_action(&mut self, _: Option<Action>, _: &ModalData<'_>) -> Outcome {
        Outcome::Stay
    }

    fn on_key(&mut self, key: &KeyEvent, action: Option<Action>, _: &ModalData<'_>) -> Outcome {
        let enter = key.code == KeyCode::Enter && self.one_line();
        match action {
            _ if enter => Outcome::Finish(self.finish()),
            Some(Action::Keep) => Outcome::Finish(self.finish()),
            Some(Action::Discard) if matches!(self.purpose, Purpose::Edit { .. }) => {
                let dropped = "edit dropped; the block still waits".to_string();
                Outcome::Finish(vec![Request::Status(dropped)])
            }
            Some(Action::Discard) => Outcome::Close,
            _ => {
                self.area.input(*key);
                Outcome::Stay
            }
        }
    }

    fn on_paste(&mut self, text: &str) {
        if self.one_line() {
            self.area.insert_str(text.replace('\n', " "));
        } else {
            self.area.insert_str(text);
        }
    }

    fn render(&self, frame: &mut Frame, area: Rect, data: &ModalData<'_>) {
        let rect = if self.one_line() {
            centered_fixed(area, 70, 3)
        } else {
            centered(area, 90, 85)
        };
        let theme = data.theme;
        let block = Block::default()
            .borders(Borders::ALL)
            .border_style(theme.border(true))
            .title_style(theme.title(true))
            .title(Span::styled(self.title(data), theme.accent()));
        let inner = block.inner(rect);
        frame.render_widget(Clear, rect);
        frame.render_widget(block, rect);
        frame.render_widget(&self.area, inner);
    }
}

fn one_line(placeholder: &str, theme: &Theme) -> TextArea<'static> {
    let mut area = TextArea::default();
    area.set_placeholder_text(placeholder.to_string());
    styled(&mut area, theme);
    area
}

fn styled(area: &mut TextArea<'static>, theme: &Theme) {
    area.set_cursor_line_style(Style::new());
    area.set_cursor_style(theme.cursor());
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use crossterm::event::KeyModifiers;

    use super::*;
    use crate::tui::keys::keymap::Keymap;
    use crate::tui::testing::pane;

    #[test]
    fn a_remapped_keep_key_is_the_one_the_editor_names_and_takes() {
        let keymap = Keymap::new(&BTreeMap::from([(
            "keep".to_string(),
            vec!["ctrl-k".to_string()],
        )]))
        .expect("valid");
        let theme = Theme::default();
        let data = ModalData {
            theme: &theme,
            keymap: &keymap,
            rules: &[],
        };
        let mut editor = InputModal::edit("b-1", "print(1)\n", &theme);
        let drawn = pane(80, 12, |frame| editor.render(frame, frame.area(), &data));
        assert!(drawn.contains("Ctrl-K keeps the edit"), "{drawn}");
        assert!(!drawn.contains("Ctrl-S"), "{drawn}");
        let ctrl = |c| KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL);
        let keep = |key: &KeyEvent| keymap.action(Context::Editor, key);
        // The old key is only text now; the new one keeps.
        let old = ctrl('s');
        assert_eq!(editor.on_key(&old, keep(&old), &data), Outcome::Stay);
        let new = ctrl('k');
        assert_eq!(
            editor.on_key(&new, keep(&new), &data),
            Outcome::Finish(vec![Request::Edited {
                block: "b-1".into(),
                code: "print(1)\n".into()
            }])
        );
    }
}
