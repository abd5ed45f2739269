//! SGR colour sequences in program output turned into styles, so the log pane shows colours
//! while no escape sequence ever reaches the terminal. The text comes from the sandbox's
//! neutralizer, which lets through only complete `ESC [ … m` sequences.

use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Span;

/// Styled pieces of `text`; `base` is the style before any sequence and after a reset.
pub fn spans(text: &str, base: Style) -> Vec<Span<'static>> {
    let mut spans = Vec::new();
    let mut style = base;
    let mut rest = text;
    while let Some(at) = rest.find('\u{1b}') {
        if at > 0 {
            spans.push(Span::styled(rest[..at].to_string(), style));
        }
        let sequence = &rest[at..];
        let end = sequence.find('m').map_or(sequence.len(), |end| end + 1);
        let params = sequence.get(2..end.saturating_sub(1)).unwrap_or("");
        style = apply(style, base, params);
        rest = &sequence[end..];
    }
    if !rest.is_empty() {
        spans.push(Span::styled(rest.to_string(), style));
    }
    spans
}

fn apply(mut style: Style, base: Style, params: &str) -> Style {
    let codes: Vec<u16> = params
        .split([';', ':'])
        .map(|p| p.parse().unwrap_or(0))
        .collect();
    let mut i = 0;
    while i < codes.len() {
        let code = codes[i];
        match code {
            0 => style = base,
            1 => style = style.add_modifier(Modifier::BOLD),
            2 => style = style.add_modifier(Modifier::DIM),
            3 => style = style.add_modifier(Modifier::ITALIC),
            4 => style = style.add_modifier(Modifier::UNDERLINED),
            7 => style = style.add_modifier(Modifier::REVERSED),
            9 => style = style.add_modifier(Modifier::CROSSED_OUT),
            22 => style = style.remove_modifier(Modifier::BOLD | Modifier::DIM),
            23 => style = style.remove_modifier(Modifier::ITALIC),
            24 => style = style.remove_modifier(Modifier::UNDERLINED),
            27 => style = style.remove_modifier(Modifier::REVERSED),
            30..=37 => style = style.fg(ansi(code - 30)),
            39 => style = style.fg(base.fg.unwrap_or(Color::Reset)),
            40..=47 => style = style.bg(ansi(code - 40)),
            49 => style = style.bg(base.bg.unwrap_or(Color::Reset)),
            90..=97 => style = style.fg(ansi(code - 90 + 8)),
            100..=107 => style = style.bg(ansi(code - 100 + 8)),
            38 | 48 => {
                let (colour, used) = extended(&codes[i + 1..]);
                if let Some(colour) = colour {
                    style = if code == 38 {
                        style.fg(colour)
                    } else {
                        style.bg(colour)
                    };
                }
                i += used;
            }
            _ => {}
        }
        i += 1;
    }
    style
}

/// `5;n` or `2;r;g;b` after 38/48: the colour and how many codes it used.
fn extended(codes: &[u16]) -> (Option<Color>, usize) {
    match codes {
        [5, n, ..] => (u8::try_from(*n).ok().map(Color::Indexed), 2),
        [2, r, g, b, ..] => {
            let channel = |v: u16| u8::try_from(v).unwrap_or(u8::MAX);
            (Some(Color::Rgb(channel(*r), channel(*g), channel(*b))), 4)
        }
        _ => (None, codes.len()),
    }
}

fn ansi(n: u16) -> Color {
    match n {
        0 => Color::Black,
        1 => Color::Red,
        2 => Color::Green,
        3 => Color::Yellow,
        4 => Color::Blue,
        5 => Color::Magenta,
        6 => Color::Cyan,
        7 => Color::Gray,
        8 => Color::DarkGray,
        9 => Color::LightRed,
        10 => Color::LightGreen,
        11 => Color::LightYellow,
        12 => Color::LightBlue,
        13 => Color::LightMagenta,
        14 => Color::LightCyan,
        _ => Color::White,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_become_styles_and_the_sequences_vanish() {
        let base = Style::new().fg(Color::Gray);
        let spans = spans(
            "ok \u{1b}[1;31mFAIL\u{1b}[0m done \u{1b}[38;5;208mhot\u{1b}[38;2;1;2;3mrgb",
            base,
        );
        let text: String = spans.iter().map(|s| s.content.as_ref()).collect();
        assert_eq!(text, "ok FAIL done hotrgb");
        assert_eq!(spans[1].style.fg, Some(Color::Red));
        assert!(spans[1].style.add_modifier.contains(Modifier::BOLD));
        assert_eq!(spans[2].style, base);
        assert_eq!(spans[3].style.fg, Some(Color::Indexed(208)));
        assert_eq!(spans[4].style.fg, Some(Color::Rgb(1, 2, 3)));
        let plain: String = super::spans("a\u{1b}[32mb\u{1b}[mc", base)
            .iter()
            .map(|s| s.content.as_ref())
            .collect();
        assert_eq!(plain, "abc");
    }
}
