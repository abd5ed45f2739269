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
    pub fn title(self) -> &'static str {
        match self {
            Self::Global => "Everywhere",
            Self::Card => "Pending block",
            Self::Conversation => "Conversation",
            Self::Logs => "Container logs",
            Self::History => "History",
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

struct Default {
    action: Action,
    name: &'static str,
    context: Context,
    keys: &'static [&'static str],
    /// One or two words for the hint lines.
    hint: &'static str,
    description: &'static str,
}

const DEFAULTS: &[Default] = &[
    Default {
        action: Action::Approve,
        name: "approve",
        context: Context::Card,
        keys: &["y"],
        hint: "approve",
        description: "approve this block",
    },
    Default {
        action: Action::ApproveSession,
        name: "approve_session",
        context: Context::Card,
        keys: &["a"],
        hint: "session",
        description: "approve for the session (pick: same language or exact code)",
    },
    Default {
        action: Action::Edit,
        name: "edit",
        context: Context::Card,
        keys: &["e"],
        hint: "edit",
        description: "edit the code inline",
    },
    Default {
        action: Action::EditExternal,
        name: "edit_external",
        context: Context::Card,
        keys: &["E"],
        hint: "$EDITOR",
        description: "edit the code in $EDITOR",
    },
    Default {
        action: Action::Reject,
        name: "reject",
        context: Context::Card,
        keys: &["n"],
        hint: "reject",
        description: "reject, with a reason the model sees",
    },
    Default {
        action: Action::Skip,
        name: "skip",
        context: Context::Card,
        keys: &["s"],
        hint: "skip",
        description: "skip this block",
    },
    Default {
        action: Action::Abort,
        name: "abort",
        context: Context::Card,
        keys: &["esc"],
        hint: "abort turn",
        description: "abort the turn: nothing more runs",
    },
    Default {
        action: Action::NextBlock,
        name: "next_block",
        context: Context::Card,
        keys: &["l", "right"],
        hint: "next",
        description: "show the next pending block",
    },
    Default {
        action: Action::PrevBlock,
        name: "prev_block",
        context: Context::Card,
        keys: &["left"],
        hint: "previous",
        description: "show the previous pending block",
    },
    Default {
        action: Action::Freeze,
        name: "freeze",
        context: Context::Logs,
        keys: &["f"],
        hint: "freeze",
        description: "freeze or follow the log",
    },
    Default {
        action: Action::OpenRun,
        name: "open_run",
        context: Context::History,
        keys: &["enter"],
        hint: "open",
        description: "open the selected run",
    },
    Default {
        action: Action::Filter,
        name: "filter",
        context: Context::History,
        keys: &["/"],
        hint: "filter",
        description: "filter runs by text",
    },
    Default {
        action: Action::Send,
        name: "send",
        context: Context::Composer,
        keys: &["enter"],
        hint: "send",
        description: "send the message to the model",
    },
    Default {
        action: Action::Newline,
        name: "newline",
        context: Context::Composer,
        keys: &["alt-enter", "ctrl-j"],
        hint: "new line",
        description: "new line",
    },
    Default {
        action: Action::Leave,
        name: "leave",
        context: Context::Composer,
        keys: &["esc"],
        hint: "leave",
        description: "leave the composer",
    },
    Default {
        action: Action::Keep,
        name: "keep",
        context: Context::Editor,
        keys: &["ctrl-s"],
        hint: "keep",
        description: "keep the edit (or submit the prompt)",
    },
    Default {
        action: Action::Discard,
        name: "discard",
        context: Context::Editor,
        keys: &["esc"],
        hint: "drop",
        description: "drop the edit (the turn goes on)",
    },
    Default {
        action: Action::ScrollDown,
        name: "scroll_down",
        context: Context::Global,
        keys: &["j", "down"],
        hint: "down",
        description: "scroll down",
    },
    Default {
        action: Action::ScrollUp,
        name: "scroll_up",
        context: Context::Global,
        keys: &["k", "up"],
        hint: "up",
        description: "scroll up",
    },
    Default {
        action: Action::PageDown,
        name: "page_down",
        context: Context::Global,
        keys: &["pagedown"],
        hint: "page down",
        description: "page down",
    },
    Default {
        action: Action::PageUp,
        name: "page_up",
        context: Context::Global,
        keys: &["pageup"],
        hint: "page up",
        description: "page up",
    },
    Default {
        action: Action::Top,
        name: "top",
        context: Context::Global,
        keys: &["g", "home"],
        hint: "top",
        description: "go to the top",
    },
    Default {
        action: Action::Bottom,
        name: "bottom",
        context: Context::Global,
        keys: &["G", "end"],
        hint: "end",
        description: "go to the end and follow",
    },
    Default {
        action: Action::FocusNext,
        name: "focus_next",
        context: Context::Global,
        keys: &["tab"],
        hint: "next pane",
        description: "focus the next pane",
    },
    Default {
        action: Action::FocusPrev,
        name: "focus_prev",
        context: Context::Global,
        keys: &["shift-tab", "backtab"],
        hint: "previous pane",
        description: "focus the previous pane",
    },
    Default {
        action: Action::Zoom,
        name: "zoom",
        context: Context::Global,
        keys: &["z"],
        hint: "zoom",
        description: "zoom the focused pane",
    },
    Default {
        action: Action::History,
        name: "history",
        context: Context::Global,
        keys: &["h"],
        hint: "history",
        description: "open or close the history",
    },
    Default {
        action: Action::Help,
        name: "help",
        context: Context::Global,
        keys: &["?"],
        hint: "help",
        description: "show every key",
    },
    Default {
        action: Action::Cancel,
        name: "cancel",
        context: Context::Global,
        keys: &["ctrl-c"],
        hint: "cancel",
        description: "cancel what runs; again to quit",
    },
    Default {
        action: Action::Retry,
        name: "retry",
        context: Context::Global,
        keys: &["ctrl-r"],
        hint: "retry",
        description: "ask the model again after its reply failed or was cancelled",
    },
    Default {
        action: Action::Quit,
        name: "quit",
        context: Context::Global,
        keys: &["q"],
        hint: "quit",
        description: "quit (asks first if something runs)",
    },
    Default {
        action: Action::Rules,
        name: "rules",
        context: Context::Global,
        keys: &["r"],
        hint: "rules",
        description: "the approval rules in force; lift one for the rest of the session",
    },
    Default {
        action: Action::Revoke,
        name: "revoke",
        context: Context::Rules,
        keys: &["d", "delete"],
        hint: "lift",
        description: "lift the selected rule for the rest of the session (recorded)",
    },
    Default {
        action: Action::Leave,
        name: "close_rules",
        context: Context::Rules,
        keys: &["esc"],
        hint: "close",
        description: "close the list of rules",
    },
    Default {
        action: Action::ScopeLanguage,
        name: "scope_language",
        context: Context::Scope,
        keys: &["l"],
        hint: "this language",
        description: "approve every block in this language for the session",
    },
    Default {
        action: Action::ScopeExact,
        name: "scope_exact",
        context: Context::Scope,
        keys: &["x"],
        hint: "exact code",
        description: "approve this exact code for the session",
    },
    Default {
        action: Action::Leave,
        name: "close_scope",
        context: Context::Scope,
        keys: &["esc"],
        hint: "back",
        description: "back to the block, undecided",
    },
    Default {
        action: Action::ConfirmQuit,
        name: "confirm_quit",
        context: Context::ConfirmQuit,
        keys: &["y", "enter"],
        hint: "quit",
        description: "quit: what runs is stopped and the container removed (any other key stays)",
    },
];

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
        let typing = matches!(context, Context::Composer | Context::Editor);
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
        find(context).or_else(|| find(Context::Global))
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
        let readme = include_str!("../../README.md");
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
