//! Syntax highlighting with syntect: the definitions load on first use (not at start-up),
//! and each piece of code is highlighted once and cached, never per frame.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::OnceLock;

use ratatui::style::{Color, Modifier, Style};
use syntect::easy::HighlightLines;
use syntect::highlighting::{FontStyle, Theme as SyntaxTheme, ThemeSet};
use syntect::parsing::SyntaxSet;

fn syntaxes() -> &'static SyntaxSet {
    static SET: OnceLock<SyntaxSet> = OnceLock::new();
    SET.get_or_init(SyntaxSet::load_defaults_newlines)
}

fn themes() -> &'static ThemeSet {
    static SET: OnceLock<ThemeSet> = OnceLock::new();
    SET.get_or_init(ThemeSet::load_defaults)
}

/// One highlighted line: styled pieces.
pub type StyledLine = Vec<(Style, String)>;

/// Highlighted code by (language, code).
type Cache = HashMap<(String, String), Rc<Vec<StyledLine>>>;

pub struct Highlighter {
    /// `None`: no syntax colours (the "ansi" setting, or a theme that did not load).
    theme: Option<SyntaxTheme>,
    cache: RefCell<Cache>,
}

impl Highlighter {
    /// `name`: a syntect theme name, a .tmTheme file, or "ansi" for none.
    pub fn new(name: &str) -> anyhow::Result<Self> {
        let theme = if name == "ansi" || name == "none" {
            None
        } else if name.ends_with(".tmTheme") {
            Some(
                ThemeSet::get_theme(name)
                    .map_err(|err| anyhow::anyhow!("cannot load the syntax theme {name}: {err}"))?,
            )
        } else {
            let theme = themes().themes.get(name).cloned().ok_or_else(|| {
                let names: Vec<&str> = themes().themes.keys().map(String::as_str).collect();
                anyhow::anyhow!("ui.syntax_theme = {name:?} is unknown; use one of {}, a .tmTheme file, or \"ansi\"", names.join(", "))
            })?;
            Some(theme)
        };
        Ok(Self {
            theme,
            cache: RefCell::new(HashMap::new()),
        })
    }

    /// Without colours (for tests and the ansi theme).
    pub fn plain() -> Self {
        Self {
            theme: None,
            cache: RefCell::new(HashMap::new()),
        }
    }

    /// The code's lines, highlighted for `language` (a fence tag or canonical name).
    pub fn lines(&self, code: &str, language: &str) -> Rc<Vec<StyledLine>> {
        let key = (language.to_string(), code.to_string());
        if let Some(lines) = self.cache.borrow().get(&key) {
            return lines.clone();
        }
        let lines = Rc::new(self.highlight(code, language));
        self.cache.borrow_mut().insert(key, lines.clone());
        lines
    }

    fn highlight(&self, code: &str, language: &str) -> Vec<StyledLine> {
        let token = match language {
            "python" => "py",
            "bash" | "sh" | "shell" | "zsh" | "console" => "sh",
            other => other,
        };
        highlight_with(self.theme.as_ref(), code, token)
    }

    /// The syntax theme, for highlighting on another thread (`None`: no colours).
    pub(crate) fn syntax_theme(&self) -> Option<SyntaxTheme> {
        self.theme.clone()
    }
}

/// `code` highlighted as the syntax `token` names (a name or file extension), else as its
/// first line says (a shebang, `<?xml`); plain without a theme or a syntax. Needs no
/// [`Highlighter`], so it runs on any thread, uncached.
pub(crate) fn highlight_with(
    theme: Option<&SyntaxTheme>,
    code: &str,
    token: &str,
) -> Vec<StyledLine> {
    let plain = || {
        code.lines()
            .map(|line| vec![(Style::new(), line.to_string())])
            .collect()
    };
    let Some(theme) = theme else {
        return plain();
    };
    let set = syntaxes();
    let first_line = code.lines().next().unwrap_or("");
    let Some(syntax) = set
        .find_syntax_by_token(token)
        .or_else(|| set.find_syntax_by_first_line(first_line))
    else {
        return plain();
    };
    let mut highlighter = HighlightLines::new(syntax, theme);
    let mut out = Vec::new();
    for line in syntect::util::LinesWithEndings::from(code) {
        let Ok(pieces) = highlighter.highlight_line(line, set) else {
            return plain();
        };
        out.push(
            pieces
                .into_iter()
                .map(|(style, text)| {
                    (
                        convert(style),
                        text.trim_end_matches(['\n', '\r']).to_string(),
                    )
                })
                .filter(|(_, text)| !text.is_empty())
                .collect(),
        );
    }
    out
}

fn convert(style: syntect::highlighting::Style) -> Style {
    let fg = style.foreground;
    let mut out = Style::new().fg(Color::Rgb(fg.r, fg.g, fg.b));
    if style.font_style.contains(FontStyle::BOLD) {
        out = out.add_modifier(Modifier::BOLD);
    }
    if style.font_style.contains(FontStyle::ITALIC) {
        out = out.add_modifier(Modifier::ITALIC);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_is_coloured_once_and_cached() {
        let highlighter = Highlighter::new("base16-ocean.dark").expect("built-in theme");
        let first = highlighter.lines("def f():\n    return 1\n", "python");
        assert_eq!(first.len(), 2);
        assert!(
            first[0].len() > 1,
            "keywords and names are separate pieces: {first:?}"
        );
        let again = highlighter.lines("def f():\n    return 1\n", "python");
        assert!(Rc::ptr_eq(&first, &again));
        let text: String = first[1].iter().map(|(_, t)| t.as_str()).collect();
        assert_eq!(text, "    return 1");
    }

    #[test]
    fn unknown_themes_are_named() {
        let err = Highlighter::new("no-such")
            .err()
            .expect("error")
            .to_string();
        assert!(
            err.contains("no-such") && err.contains("InspiredGitHub"),
            "{err}"
        );
        assert!(Highlighter::new("ansi").is_ok());
    }
}
