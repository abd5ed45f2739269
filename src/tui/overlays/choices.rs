//! The small questions an overlay asks: what an approve-for-session covers, and whether to
//! quit while something runs. Their keys and labels are the keymap's.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};

use crate::protocol::{DecisionKind, DecisionRequest, Op, Scope};
use crate::tui::keys::keymap::{Action, Context};
use crate::tui::overlays::modal::{Modal, ModalData, Outcome, Request};
use crate::tui::overlays::popup::popup;

/// Approve for the session: the same language, or this exact code.
#[derive(Debug)]
pub(crate) struct ScopeModal {
    /// The block the approval is for.
    pub block: String,
}

impl Modal for ScopeModal {
    fn context(&self) -> Context {
        Context::Scope
    }

    fn on_action(&mut self, action: Option<Action>, _: &ModalData<'_>) -> Outcome {
        let scope = match action {
            Some(Action::ScopeLanguage) => Scope::Language,
            Some(Action::ScopeExact) => Scope::Exact,
            _ => return Outcome::Close,
        };
        Outcome::Finish(vec![Request::Op(Op::Decide(DecisionRequest {
            block: self.block.clone(),
            decision: DecisionKind::ApproveSession,
            reason: None,
            code: None,
            scope: Some(scope),
        }))])
    }

    fn render(&self, frame: &mut Frame, area: Rect, data: &ModalData<'_>) {
        let choice = |action| {
            let key = data.keymap.key_in(Context::Scope, action);
            let what = match action {
                Action::ScopeLanguage => " every block in this language",
                Action::ScopeExact => " this exact code only",
                _ => " back",
            };
            Line::from(vec![
                Span::styled(key, data.theme.accent()),
                Span::styled(what, data.theme.dim()),
            ])
        };
        let text = vec![
            Line::styled("Approve for the rest of the session:", data.theme.text()),
            choice(Action::ScopeLanguage),
            choice(Action::ScopeExact),
            choice(Action::Leave),
        ];
        popup(
            frame,
            area,
            " Approve for session ",
            text,
            50,
            6,
            data.theme,
        );
    }
}

/// Quit while a reply or a block runs: one key says yes, any other stays.
#[derive(Debug, Default)]
pub(crate) struct QuitModal;

impl Modal for QuitModal {
    fn context(&self) -> Context {
        Context::ConfirmQuit
    }

    fn on_action(&mut self, action: Option<Action>, _: &ModalData<'_>) -> Outcome {
        match action {
            Some(Action::ConfirmQuit) => {
                Outcome::Finish(vec![Request::Op(Op::Shutdown), Request::Quit])
            }
            _ => Outcome::Close,
        }
    }

    fn render(&self, frame: &mut Frame, area: Rect, data: &ModalData<'_>) {
        let theme = data.theme;
        let text = vec![
            Line::styled("Something is still running.", theme.text()),
            Line::styled(
                "Quit anyway? It is stopped and the container removed.",
                theme.text(),
            ),
            Line::from(vec![
                Span::styled(
                    data.keymap
                        .key_in(Context::ConfirmQuit, Action::ConfirmQuit),
                    theme.accent(),
                ),
                Span::styled(" quit  ", theme.dim()),
                Span::styled("any other key", theme.accent()),
                Span::styled(" stay", theme.dim()),
            ]),
        ];
        popup(frame, area, " Quit? ", text, 60, 5, theme);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::tui::keys::keymap::Keymap;
    use crate::tui::testing::pane;
    use crate::tui::theme::Theme;

    #[test]
    fn a_remapped_key_is_the_key_the_picker_names_and_takes() {
        let keymap = Keymap::new(&BTreeMap::from([(
            "scope_exact".to_string(),
            vec!["e".to_string()],
        )]))
        .expect("valid");
        let theme = Theme::default();
        let data = ModalData {
            theme: &theme,
            keymap: &keymap,
            rules: &[],
        };
        let picker = ScopeModal {
            block: "b-1".into(),
        };
        let drawn = pane(60, 8, |frame| picker.render(frame, frame.area(), &data));
        assert!(drawn.contains("e this exact code only"), "{drawn}");
        assert!(!drawn.contains("x this exact"), "{drawn}");
        let mut picker = picker;
        let key = crossterm::event::KeyEvent::new(
            crossterm::event::KeyCode::Char('e'),
            crossterm::event::KeyModifiers::NONE,
        );
        let outcome = picker.on_action(keymap.action(Context::Scope, &key), &data);
        assert!(
            matches!(&outcome, Outcome::Finish(requests) if matches!(
                requests.as_slice(),
                [Request::Op(Op::Decide(DecisionRequest { scope: Some(Scope::Exact), .. }))]
            )),
            "{outcome:?}"
        );
    }

    #[test]
    fn only_the_confirm_key_quits() {
        let (theme, keymap) = (Theme::default(), Keymap::default());
        let data = ModalData {
            theme: &theme,
            keymap: &keymap,
            rules: &[],
        };
        let mut ask = QuitModal;
        assert_eq!(
            ask.on_action(Some(Action::ScrollDown), &data),
            Outcome::Close
        );
        assert_eq!(
            ask.on_action(Some(Action::ConfirmQuit), &data),
            Outcome::Finish(vec![Request::Op(Op::Shutdown), Request::Quit])
        );
    }
}
