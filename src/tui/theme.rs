//! UI themes: semantic colours read from TOML. The built-in ones live in `themes/` and are
//! compiled in; `ui.theme` may also name a theme file.
//!
//! Focus, selection and the cursor never depend on colour alone: they also carry bold,
//! reverse video or underline, so they stay visible with `NO_COLOR` (where the screen is
//! drawn without any colour) and with a 16-colour palette whose colours may coincide.

use std::str::FromStr;

use anyhow::Context;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders};
use serde::Deserialize;

const BUILT_IN: [(&str, &str); 3] = [
    ("dark", include_str!("../../themes/dark.toml")),
    ("light", include_str!("../../themes/light.toml")),
    ("ansi16", include_str!("../../themes/ansi16.toml")),
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ThemeFile {
    name: String,
    /// A syntect theme name, a .tmTheme path, or "ansi" for no syntax colours.
    syntax: String,
    colors: ColorNames,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ColorNames {
    text: String,
    dim: String,
    accent: String,
    border: String,
    focus: String,
    user: String,
    assistant: String,
    code_bg: String,
    stderr: String,
    success: String,
    error: String,
    warning: String,
    selection: String,
    hidden: String,
}

/// Colours by meaning, so panes never pick raw colours.
#[derive(Debug, Clone, PartialEq)]
pub struct Theme {
    pub name: String,
    pub syntax: String,
    pub text: Color,
    pub dim: Color,
    pub accent: Color,
    pub border: Color,
    pub focus: Color,
    pub user: Color,
    pub assistant: Color,
    pub code_bg: Color,
    pub stderr: Color,
    pub success: Color,
    pub error: Color,
    pub warning: Color,
    pub selection: Color,
    /// Invisible and control characters made visible.
    pub hidden: Color,
    /// No colour at all reaches the terminal (`NO_COLOR`); the screen is stripped of
    /// colours after each frame is drawn.
    pub monochrome: bool,
}

/// Whether the environment asks for no colour: `NO_COLOR` set to anything but the empty
/// string (<https://no-color.org>).
pub(crate) fn no_color_requested(value: Option<std::ffi::OsString>) -> bool {
    value.is_some_and(|value| !value.is_empty())
}

impl Theme {
    /// A built-in theme by name (dark, light, ansi16) or a theme file by path.
    pub fn load(name_or_path: &str) -> anyhow::Result<Self> {
        if let Some((_, text)) = BUILT_IN.iter().find(|(name, _)| *name == name_or_path) {
            return Self::from_toml(text);
        }
        let text = std::fs::read_to_string(name_or_path).with_context(|| {
            format!(
                "ui.theme = {name_or_path:?} is neither a built-in theme ({}) nor a readable file",
                BUILT_IN.map(|(name, _)| name).join(", ")
            )
        })?;
        Self::from_toml(&text).with_context(|| format!("theme file {name_or_path} is invalid"))
    }

    /// The configured theme as the terminal should get it: without colour when the
    /// environment sets `NO_COLOR`.
    pub(crate) fn load_for_terminal(name_or_path: &str) -> anyhow::Result<Self> {
        let theme = Self::load(name_or_path)?;
        Ok(if no_color_requested(std::env::var_os("NO_COLOR")) {
            theme.without_colour()
        } else {
            theme
        })
    }

    pub(crate) fn without_colour(self) -> Self {
        Self {
            monochrome: true,
            ..self
        }
    }

    pub fn from_toml(text: &str) -> anyhow::Result<Self> {
        let file: ThemeFile = toml::from_str(text)?;
        let c = &file.colors;
        let color = |key: &str, value: &str| {
            Color::from_str(value).map_err(|_| {
                anyhow::anyhow!("colors.{key} = {value:?} is not a colour; use \"#rrggbb\", an ANSI name like \"red\", or \"reset\"")
            })
        };
        Ok(Self {
            name: file.name,
            syntax: file.syntax,
            text: color("text", &c.text)?,
            dim: color("dim", &c.dim)?,
            accent: color("accent", &c.accent)?,
            border: color("border", &c.border)?,
            focus: color("focus", &c.focus)?,
            user: color("user", &c.user)?,
            assistant: color("assistant", &c.assistant)?,
            code_bg: color("code_bg", &c.code_bg)?,
            stderr: color("stderr", &c.stderr)?,
            success: color("success", &c.success)?,
            error: color("error", &c.error)?,
            warning: color("warning", &c.warning)?,
            selection: color("selection", &c.selection)?,
            hidden: color("hidden", &c.hidden)?,
            monochrome: false,
        })
    }

    pub fn text(&self) -> Style {
        Style::new().fg(self.text)
    }

    /// Secondary text; without colour it is drawn faint, so it still reads as secondary.
    pub fn dim(&self) -> Style {
        let style = Style::new().fg(self.dim);
        if self.monochrome {
            style.add_modifier(Modifier::DIM)
        } else {
            style
        }
    }

    pub fn accent(&self) -> Style {
        Style::new().fg(self.accent).add_modifier(Modifier::BOLD)
    }

    /// A pane's border: highlighted when it has focus.
    pub fn border(&self, focused: bool) -> Style {
        if focused {
            Style::new().fg(self.focus).add_modifier(Modifier::BOLD)
        } else {
            Style::new().fg(self.border)
        }
    }

    /// Laid under a pane's title (`Block::title_style`): the focused pane's title is in
    /// reverse video, which needs no colour to be seen.
    pub(crate) fn title(&self, focused: bool) -> Style {
        if focused {
            Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD)
        } else {
            Style::new()
        }
    }

    /// A pane's frame: borders and title styled by whether it has the focus.
    pub(crate) fn pane<'a>(&self, focused: bool, title: impl Into<Line<'a>>) -> Block<'a> {
        Block::default()
            .borders(Borders::ALL)
            .border_style(self.border(focused))
            .title_style(self.title(focused))
            .title(title)
    }

    /// The text cursor of an input that has focus.
    pub(crate) fn cursor(&self) -> Style {
        Style::new().add_modifier(Modifier::REVERSED)
    }

    pub fn hidden(&self) -> Style {
        Style::new()
            .fg(self.hidden)
            .add_modifier(Modifier::REVERSED)
    }
}

impl Default for Theme {
    fn default() -> Self {
        // The built-in dark theme is tested to parse.
        Self::from_toml(BUILT_IN[0].1).unwrap_or_else(|_| Self {
            name: "fallback".into(),
            syntax: "ansi".into(),
            text: Color::Reset,
            dim: Color::DarkGray,
            accent: Color::Cyan,
            border: Color::DarkGray,
            focus: Color::Cyan,
            user: Color::Green,
            assistant: Color::Reset,
            code_bg: Color::Reset,
            stderr: Color::Yellow,
            success: Color::Green,
            error: Color::Red,
            warning: Color::Yellow,
            selection: Color::Blue,
            hidden: Color::Magenta,
            monochrome: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_theme_loads() {
        for (name, _) in BUILT_IN {
            let theme = Theme::load(name).expect(name);
            assert_eq!(theme.name, name);
        }
        let ansi = Theme::load("ansi16").expect("ansi16");
        let colours = [
            ansi.text,
            ansi.dim,
            ansi.accent,
            ansi.user,
            ansi.stderr,
            ansi.error,
            ansi.hidden,
        ];
        assert!(
            colours
                .iter()
                .all(|c| !matches!(c, Color::Rgb(..) | Color::Indexed(_))),
            "{colours:?}"
        );
    }

    #[test]
    fn no_color_means_set_and_not_empty() {
        assert!(no_color_requested(Some("1".into())));
        assert!(!no_color_requested(Some("".into())));
        assert!(!no_color_requested(None));
    }

    #[test]
    fn a_bad_theme_names_what_is_wrong() {
        let err = Theme::load("no-such-theme").unwrap_err().to_string();
        assert!(err.contains("dark, light, ansi16"), "{err}");
        let text = include_str!("../../themes/dark.toml").replace("#88c0d0", "blurple");
        let err = format!("{:#}", Theme::from_toml(&text).unwrap_err());
        assert!(err.contains("blurple"), "{err}");
    }
}
