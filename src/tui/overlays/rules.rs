//! The approval rules in force this session, as the engine lists them (from the config, from
//! `--approve`, from the operator's approve-for-session), each with its origin; the selected
//! one can be lifted for the rest of the session, which the history records.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};

use crate::output::sanitize::for_person;
use crate::protocol::{ApprovalRule, DecisionKind, Op};
use crate::tui::keys::keymap::{Action, Context};
use crate::tui::overlays::modal::{Modal, ModalData, Outcome};
use crate::tui::overlays::popup::popup;

/// The list, and which rule is selected.
#[derive(Debug, Default)]
pub(crate) struct RulesModal {
    selected: usize,
}

impl Modal for RulesModal {
    fn context(&self) -> Context {
        Context::Rules
    }

    fn on_action(&mut self, action: Option<Action>, data: &ModalData<'_>) -> Outcome {
        let last = data.rules.len().saturating_sub(1);
        self.selected = self.selected.min(last);
        match action {
            Some(Action::ScrollDown) => self.selected = (self.selected + 1).min(last),
            Some(Action::ScrollUp) => self.selected = self.selected.saturating_sub(1),
            Some(Action::Top) => self.selected = 0,
            Some(Action::Bottom) => self.selected = last,
            Some(Action::Revoke) => {
                if let Some(rule) = data.rules.get(self.selected) {
                    return Outcome::Send(Op::RevokeRule {
                        rule: rule.id.clone(),
                    });
                }
            }
            // Its own key closes it too.
            Some(Action::Leave | Action::Rules | Action::Quit) => return Outcome::Close,
            _ => {}
        }
        Outcome::Stay
    }

    fn render(&self, frame: &mut Frame, area: Rect, data: &ModalData<'_>) {
        let theme = data.theme;
        let selected = self.selected.min(data.rules.len().saturating_sub(1));
        let mut lines: Vec<Line<'static>> = Vec::new();
        if data.rules.is_empty() {
            lines.push(Line::styled(
                "No rule decides for you in this session: you decide every block.",
                theme.text(),
            ));
        }
        for (index, rule) in data.rules.iter().enumerate() {
            lines.push(rule_line(rule, index == selected, data));
        }
        lines.push(Line::default());
        lines.push(hints(data));
        let height = lines.len() as u16 + 2;
        popup(
            frame,
            area,
            " Approval rules in force ",
            lines,
            96,
            height,
            theme,
        );
    }
}

/// One rule: what it decides, what it covers, where it comes from. The selected one is
/// marked with reverse video, which needs no colour.
fn rule_line(rule: &ApprovalRule, selected: bool, data: &ModalData<'_>) -> Line<'static> {
    let theme = data.theme;
    let (effect, colour) = match rule.effect {
        DecisionKind::Reject => ("reject ", theme.error),
        _ => ("approve", theme.success),
    };
    let marker = if selected { "▶ " } else { "  " };
    let mut covers = Style::new().fg(theme.text);
    if selected {
        covers = covers.add_modifier(Modifier::REVERSED);
    }
    Line::from(vec![
        Span::styled(marker, theme.accent()),
        Span::styled(effect, Style::new().fg(colour).add_modifier(Modifier::BOLD)),
        Span::raw("  "),
        Span::styled(for_person(&rule.covers), covers),
        Span::styled(format!("  · {}", for_person(&rule.origin)), theme.dim()),
    ])
}

/// The list's keys, from the keymap.
fn hints(data: &ModalData<'_>) -> Line<'static> {
    let theme = data.theme;
    let mut spans = vec![
        Span::styled(
            format!(
                "{}/{}",
                data.keymap.key_label(Action::ScrollDown),
                data.keymap.key_label(Action::ScrollUp)
            ),
            theme.accent(),
        ),
        Span::styled(" select  ", theme.dim()),
    ];
    for (key, hint) in data.keymap.hints(Context::Rules) {
        spans.push(Span::styled(key, theme.accent()));
        spans.push(Span::styled(format!(" {hint}  "), theme.dim()));
    }
    Line::from(spans)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::keys::keymap::Keymap;
    use crate::tui::testing::pane;
    use crate::tui::theme::Theme;

    fn rules() -> Vec<ApprovalRule> {
        let rule = |id: &str, effect, covers: &str, origin: &str| ApprovalRule {
            id: id.into(),
            effect,
            covers: covers.into(),
            origin: origin.into(),
        };
        vec![
            rule(
                "deny_patterns:rm -rf",
                DecisionKind::Reject,
                "code matching `rm -rf`",
                "approval.deny_patterns",
            ),
            rule(
                "session:python",
                DecisionKind::Approve,
                "every python block",
                "approve for session",
            ),
            rule(
                "allow_languages:sh",
                DecisionKind::Approve,
                "every sh block",
                "approval.allow_languages",
            ),
        ]
    }

    fn draw(modal: &RulesModal, rules: &[ApprovalRule], width: u16, height: u16) -> String {
        let (theme, keymap) = (Theme::default(), Keymap::default());
        let data = ModalData {
            theme: &theme,
            keymap: &keymap,
            rules,
        };
        pane(width, height, |frame| {
            modal.render(frame, frame.area(), &data)
        })
    }

    #[test]
    fn the_rules_with_their_origins_and_the_selected_one() {
        let mut modal = RulesModal::default();
        let rules = rules();
        let (theme, keymap) = (Theme::default(), Keymap::default());
        let data = ModalData {
            theme: &theme,
            keymap: &keymap,
            rules: &rules,
        };
        assert_eq!(
            modal.on_action(Some(Action::ScrollDown), &data),
            Outcome::Stay
        );
        insta::assert_snapshot!(draw(&modal, &rules, 80, 9));
    }

    #[test]
    fn no_rule_in_force_says_so() {
        insta::assert_snapshot!(draw(&RulesModal::default(), &[], 80, 6));
    }

    #[test]
    fn the_selected_rule_is_lifted_and_the_list_closes_on_its_keys() {
        let mut modal = RulesModal::default();
        let rules = rules();
        let (theme, keymap) = (Theme::default(), Keymap::default());
        let data = ModalData {
            theme: &theme,
            keymap: &keymap,
            rules: &rules,
        };
        for _ in 0..5 {
            modal.on_action(Some(Action::ScrollDown), &data);
        }
        assert_eq!(
            modal.on_action(Some(Action::Revoke), &data),
            Outcome::Send(Op::RevokeRule {
                rule: "allow_languages:sh".into()
            })
        );
        // The engine's answer shortens the list; the selection stays on it.
        let fewer = &rules[..2];
        let data = ModalData {
            rules: fewer,
            ..data
        };
        modal.on_action(None, &data);
        assert_eq!(modal.selected, 1);
        assert_eq!(modal.on_action(Some(Action::Leave), &data), Outcome::Close);
        let empty = ModalData { rules: &[], ..data };
        assert_eq!(modal.on_action(Some(Action::Revoke), &empty), Outcome::Stay);
    }

    #[test]
    fn r_opens_the_list_over_the_panes_and_its_keys_lift_and_close() {
        use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

        use crate::protocol::Event;
        use crate::tui::app::UiAction;
        use crate::tui::testing::{app, screen};
        let press = |code| KeyEvent::new(code, KeyModifiers::NONE);
        let mut app = app();
        app.on_event(&Event::Rules { rules: rules() });
        // From the conversation, where `r` is no text.
        app.focus = crate::tui::app::Focus::Conversation;
        assert!(app.on_key(press(KeyCode::Char('r'))).is_empty());
        let shown = screen(&mut app, 100, 30);
        assert!(shown.contains("Approval rules in force"), "{shown}");
        assert!(
            shown.contains("Esc close"),
            "the status bar gives its keys: {shown}"
        );
        app.on_key(press(KeyCode::Char('j')));
        app.on_key(press(KeyCode::Char('j')));
        let lifted = app.on_key(press(KeyCode::Char('d')));
        assert_eq!(
            lifted,
            [UiAction::Op(Op::RevokeRule {
                rule: "allow_languages:sh".into()
            })]
        );
        // Keys stay with the list: `q` closes it and quits nothing.
        assert!(app.on_key(press(KeyCode::Char('q'))).is_empty());
        assert!(app.modals.is_empty());
        assert!(!screen(&mut app, 100, 30).contains("Approval rules in force"));
    }
}
