//! Key bindings as data: every binding has a context, keys and a description. The help
//! overlay and the status-bar hints are generated from this table, and `[ui.keys]` in the
//! config patches only the actions it names.

use std::collections::BTreeMap;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// Where a binding applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Context {
    Global,
    Card,
    Conversation,
    Logs,
    History,
    /// The workspace's files.
    Workspace,
    /// A file's preview beside them: its own keys, then the workspace's.
    Preview,
    Composer,
    /// The inline editor and the one-line prompts.
    Editor,
    /// The list of approval rules in force.
    Rules,
    /// Picking what an approve-for-session covers.
    Scope,
    /// Asked whether to quit while something runs.
    ConfirmQuit,
    /// An overlay to read (the keys, a run): the global keys scroll it, any other closes.
    Reading,
}

impl Context {
    /// The contexts the help lists, in its order (the global keys last).
    pub(crate) const IN_HELP: &'static [Context] = &[
        Context::Card,
        Context::Composer,
        Context::Editor,
        Context::Logs,
        Context::History,
        Context::Workspace,
        Context::Preview,
        Context::Scope,
        Context::ConfirmQuit,
        Context::Rules,
        Context::Global,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Self::Global => "Everywhere",
            Self::Card => "Pending block",
            Self::Conversation => "Conversation",
            Self::Logs => "Container logs",
            Self::History => "History",
            Self::Workspace => "Workspace",
            Self::Preview => "Preview",
            Self::Composer => "Composer",
            Self::Editor => "Editing",
            Self::Rules => "Approval rules",
            Self::Scope => "Approve for session",
            Self::ConfirmQuit => "Quit while something runs",
            Self::Reading => "Reading",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    Approve,
    ApproveSession,
    Edit,
    EditExternal,
    Reject,
    Skip,
    Abort,
    NextBlock,
    PrevBlock,
    ScrollDown,
    ScrollUp,
    PageDown,
    PageUp,
    Top,
    Bottom,
    Freeze,
    OpenRun,
    Filter,
    Send,
    Newline,
    Leave,
    Keep,
    Discard,
    FocusNext,
    FocusPrev,
    Zoom,
    History,
    Workspace,
    Preview,
    Pager,
    OpenFile,
    Help,
    Cancel,
    Retry,
    Quit,
    Rules,
    Revoke,
    ScopeLanguage,
    ScopeExact,
    ConfirmQuit,
}

#[path = "keymap_defaults.rs"]
mod defaults;

use defaults::DEFAULTS;

/// One key with its modifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    pub code: KeyCode,
    pub modifiers: KeyModifiers,
}

impl Key {
    /// `y`, `E`, `?`, `esc`, `enter`, `tab`, `shift-tab`, `ctrl-s`, `alt-enter`, `pageup`, `f5`.
    pub fn parse(text: &str) -> Option<Self> {
        let mut modifiers = KeyModifiers::NONE;
        let mut rest = text;
        loop {
            let lower = rest.to_ascii_lowercase();
            let (prefix, modifier) = if lower.starts_with("ctrl-") {
                ("ctrl-", KeyModifiers::CONTROL)
            } else if lower.starts_with("alt-") {
                ("alt-", KeyModifiers::ALT)
            } else if lower.starts_with("shift-") && rest.len() > 6 {
                ("shift-", KeyModifiers::SHIFT)
            } else {
                break;
            };
            modifiers |= modifier;
            rest = &rest[prefix.len()..];
        }
        let code = match rest.to_ascii_lowercase().as_str() {
            "esc" | "escape" => KeyCode::Esc,
            "enter" | "return" => KeyCode::Enter,
            "tab" if modifiers.contains(KeyModifiers::SHIFT) => {
                modifiers -= KeyModifiers::SHIFT;
                KeyCode::BackTab
            }
            "tab" => KeyCode::Tab,
            "backtab" => KeyCode::BackTab,
            "space" => KeyCode::Char(' '),
            "backspace" => KeyCode::Backspace,
            "delete" | "del" => KeyCode::Delete,
            "up" => KeyCode::Up,
            "down" => KeyCode::Down,
            "left" => KeyCode::Left,
            "right" => KeyCode::Right,
            "pageup" | "pgup" => KeyCode::PageUp,
            "pagedown" | "pgdn" => KeyCode::PageDown,
            "home" => KeyCode::Home,
            "end" => KeyCode::End,
            name if name.len() > 1 && name.starts_with('f') => KeyCode::F(name[1..].parse().ok()?),
            _ => {
                let mut chars = rest.chars();
                let c = chars.next()?;
                if chars.next().is_some() {
                    return None;
                }
                KeyCode::Char(c)
            }
        };
        Some(Self { code, modifiers })
    }

    fn matches(&self, event: &KeyEvent) -> bool {
        // Terminals report an upper-case letter with or without SHIFT; the letter decides.
        let modifiers = match event.code {
            KeyCode::Char(_) | KeyCode::BackTab => event.modifiers - KeyModifiers::SHIFT,
            _ => event.modifiers,
        };
        self.code == event.code && self.modifiers == modifiers
    }

    pub fn label(&self) -> String {
        let mut label = String::new();
        if self.modifiers.contains(KeyModifiers::CONTROL) {
            label.push_str("Ctrl-");
        }
        if self.modifiers.contains(KeyModifiers::ALT) {
            label.push_str("Alt-");
        }
        let name = match self.code {
            KeyCode::Char(' ') => "Space".to_string(),
            // Ctrl-C, as keys are written, though the terminal reports a lower-case c.
            KeyCode::Char(c) if self.modifiers.contains(KeyModifiers::CONTROL) => {
                c.to_ascii_uppercase().to_string()
            }
            KeyCode::Char(c) => c.to_string(),
            KeyCode::Esc => "Esc".into(),
            KeyCode::Enter => "Enter".into(),
            KeyCode::Tab => "Tab".into(),
            KeyCode::BackTab => "Shift-Tab".into(),
            KeyCode::Backspace => "Backspace".into(),
            KeyCode::Delete => "Del".into(),
            KeyCode::Up => "↑".into(),
            KeyCode::Down => "↓".into(),
            KeyCode::Left => "←".into(),
            KeyCode::Right => "→".into(),
            KeyCode::PageUp => "PgUp".into(),
            KeyCode::PageDown => "PgDn".into(),
            KeyCode::Home => "Home".into(),
            KeyCode::End => "End".into(),
            KeyCode::F(n) => format!("F{n}"),
            other => format!("{other:?}"),
        };
        label.push_str(&name);
        label
    }

    /// A key that types a character (and so belongs to the composer when it has focus).
    fn is_printable(&self) -> bool {
        matches!(self.code, KeyCode::Char(_))
            && !self
                .modifiers
                .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT)
    }
}

#[derive(Debug, Clone)]
pub struct Binding {
    pub action: Action,
    pub name: &'static str,
    pub context: Context,
    pub keys: Vec<Key>,
    pub hint: &'static str,
    pub description: &'static str,
}

#[derive(Debug, Clone)]
pub struct Keymap {
    bindings: Vec<Binding>,
}

impl Keymap {
    /// The defaults patched by `[ui.keys]`: `action = ["key", …]` replaces that action's keys.
    pub fn new(overrides: &BTreeMap<String, Vec<String>>) -> anyhow::Result<Self> {
        let mut bindings: Vec<Binding> = DEFAULTS
            .iter()
            .map(|d| Binding {
                action: d.action,
                name: d.name,
                context: d.context,
                keys: d.keys.iter().filter_map(|key| Key::parse(key)).collect(),
                hint: d.hint,
                description: d.description,
            })
            .collect();
        for (name, keys) in overrides {
            let Some(binding) = bindings.iter_mut().find(|b| b.name == name) else {
                let names: Vec<&str> = DEFAULTS.iter().map(|d| d.name).collect();
                anyhow::bail!(
                    "ui.keys.{name} is not an action; actions: {}",
                    names.join(", ")
                );
            };
            binding.keys = keys
                .iter()
                .map(|key| {
                    Key::parse(key).ok_or_else(|| {
                        anyhow::anyhow!(
                            "ui.keys.{name}: `{key}` is not a key; write keys like \"y\", \"ctrl-s\", \"shift-tab\", \"esc\", \"f5\""
                        )
                    })
                })
                .collect::<anyhow::Result<_>>()?;
        }
        refuse_conflicts(&bindings)?;
        Ok(Self { bindings })
    }

    /// The action of `event` where `context` has focus: its own bindings first, then the
    /// global ones. In the composer and the editors a printable key is always text.
    pub fn action(&self, context: Context, event: &KeyEvent) -> Option<Action> {
        self.action_in(&[context], event)
    }

    /// The same through several contexts, the first that binds the key deciding (a preview's
    /// own keys, then the workspace's), then the global ones.
    pub fn action_in(&self, contexts: &[Context], event: &KeyEvent) -> Option<Action> {
        let typing = contexts
            .iter()
            .any(|context| matches!(context, Context::Composer | Context::Editor));
        let find = |wanted: Context| {
            self.bindings
                .iter()
                .filter(|b| b.context == wanted)
                .find(|b| {
                    b.keys.iter().any(|key| {
                        key.matches(event)
                            && !(typing && wanted == Context::Global && key.is_printable())
                    })
                })
                .map(|b| b.action)
        };
        contexts
            .iter()
            .find_map(|&context| find(context))
            .or_else(|| find(Context::Global))
    }

    pub fn bindings(&self) -> &[Binding] {
        &self.bindings
    }

    /// The first key of `action` where `context` has focus (its own bindings, then the
    /// global ones), for the labels of an overlay.
    pub fn key_in(&self, context: Context, action: Action) -> String {
        [context, Context::Global]
            .iter()
            .find_map(|&wanted| {
                self.bindings
                    .iter()
                    .find(|b| b.context == wanted && b.action == action)
                    .and_then(|b| b.keys.first())
            })
            .map_or_else(|| "unbound".into(), Key::label)
    }

    /// The first key of `action`, for hints.
    pub fn key_label(&self, action: Action) -> String {
        self.bindings
            .iter()
            .find(|b| b.action == action)
            .and_then(|b| b.keys.first())
            .map_or_else(|| "unbound".into(), Key::label)
    }

    /// Short hints for a context: (first key, hint) of its own bindings.
    pub fn hints(&self, context: Context) -> Vec<(String, &'static str)> {
        self.bindings
            .iter()
            .filter(|b| b.context == context)
            .filter_map(|b| b.keys.first().map(|key| (key.label(), b.hint)))
            .collect()
    }
}

/// Two actions of one context on the same key: only the first could ever be reached.
fn refuse_conflicts(bindings: &[Binding]) -> anyhow::Result<()> {
    for (at, first) in bindings.iter().enumerate() {
        for second in bindings[at + 1..]
            .iter()
            .filter(|b| b.context == first.context)
        {
            if let Some(key) = first.keys.iter().find(|key| second.keys.contains(key)) {
                anyhow::bail!(
                    "ui.keys: {} is bound to both {} and {} ({}); give one of them another key",
                    key.label(),
                    first.name,
                    second.name,
                    first.context.title()
                );
            }
        }
    }
    Ok(())
}

impl std::default::Default for Keymap {
    fn default() -> Self {
        Self::new(&BTreeMap::new()).unwrap_or(Self {
            bindings: Vec::new(),
        })
    }
}

#[cfg(test)]
#[path = "keymap_tests.rs"]
mod tests;

#[cfg(test)]
mod readme {
    use super::*;

    /// The README's key table is written by hand; this keeps it from going stale.
    #[test]
    fn the_readme_key_table_covers_every_default_binding() {
        let readme = include_str!("../../../README.md");
        let table: Vec<&str> = readme
            .lines()
            .filter(|line| line.starts_with("| `"))
            .collect();
        for d in DEFAULTS {
            if matches!(d.action, Action::Keep | Action::Discard) {
                continue; // Described in the edit row.
            }
            let first = Key::parse(d.keys[0])
                .map(|key| key.label())
                .unwrap_or_default();
            assert!(
                table.iter().any(|row| row.contains(&format!("`{first}`"))),
                "README's key table lacks {} ({first})",
                d.name
            );
        }
    }
}
