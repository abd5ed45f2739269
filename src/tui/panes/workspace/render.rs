//! Drawing the workspace pane: only the rows that fit are laid out, so a workspace of many
//! thousand files costs a frame what a small one does.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::{Body, Entry, EntryKind, FileChangeKind, Files, Shown, WorkspacePane, split};
use crate::files::human_size;
use crate::tui::keys::keymap::{Action, Context};
use crate::tui::panes::pane::Look;
use crate::tui::render::text::char_width;
use crate::tui::theme::Theme;

/// Columns of a row's size and time, and the narrowest name that keeps them.
const SIZE_COLUMN: usize = 9;
const TIME_COLUMN: usize = 16;
const NAME_AT_LEAST: usize = 16;

impl WorkspacePane {
    pub(crate) fn draw(&self, frame: &mut Frame, area: Rect, look: &Look) {
        let (tree, preview) = if self.previewing() {
            split(area)
        } else {
            (area, Rect::default())
        };
        self.render_tree(frame, tree, look, look.focused && !self.previewing());
        if self.previewing() {
            self.render_preview(frame, preview, look, look.focused);
        }
    }

    fn render_tree(&self, frame: &mut Frame, area: Rect, look: &Look, focused: bool) {
        let theme = look.theme;
        let mut title = vec![Span::styled(" Workspace ", theme.accent())];
        let room = (area.width as usize).saturating_sub(16);
        if !self.shown_root.is_empty() {
            title.push(Span::styled(
                format!("{} ", tail(&self.shown_root, room)),
                theme.dim(),
            ));
        }
        if self.listings.running {
            title.push(Span::styled("· listing… ", theme.dim()));
        }
        let block = theme.pane(focused, Line::from(title));
        let inner = block.inner(area);
        frame.render_widget(block, area);
        let said = |text: &str, style: Style| {
            Paragraph::new(Line::styled(text.to_string(), style)).wrap(Wrap { trim: false })
        };
        match &self.files {
            Files::Waiting if self.root.is_none() => frame.render_widget(
                said("The files appear once the sandbox is ready.", theme.dim()),
                inner,
            ),
            Files::Waiting => frame.render_widget(said("Listing the files…", theme.dim()), inner),
            Files::None => frame.render_widget(
                said(
                    "This sandbox has no workspace directory on the host.",
                    theme.dim(),
                ),
                inner,
            ),
            Files::Failed(why) => frame.render_widget(
                said(
                    &format!("Cannot list the workspace: {why}"),
                    Style::new().fg(theme.warning),
                ),
                inner,
            ),
            Files::Listed(listing) => {
                let notes = self.notes(listing, theme, inner.width as usize);
                self.render_rows(frame, inner, theme, notes);
            }
        }
    }

    /// What is said under the tree: the latest run's changes, and a walk that stopped short.
    fn notes(
        &self,
        listing: &crate::files::listing::Listing,
        theme: &Theme,
        width: usize,
    ) -> Vec<Line<'static>> {
        let mut notes = Vec::new();
        let count = |kind| self.marks.values().filter(|k| **k == kind).count();
        let (created, changed) = (
            count(FileChangeKind::Created),
            count(FileChangeKind::Changed),
        );
        if created + changed + self.removed.len() > 0 {
            let mut text = format!(
                "last run: +{created} {} · ~{changed} {}",
                FileChangeKind::Created.name(),
                FileChangeKind::Changed.name()
            );
            if !self.removed.is_empty() {
                text.push_str(&format!(
                    " · −{} {}: {}",
                    self.removed.len(),
                    FileChangeKind::Removed.name(),
                    crate::output::sanitize::for_person(&self.removed.join(", "))
                ));
            }
            notes.push(Line::styled(cut(&text, width), theme.dim()));
        }
        if listing.truncated {
            let text = format!(
                "the listing stops at {} entries",
                crate::files::listing::MAX_ENTRIES
            );
            notes.push(Line::styled(text, Style::new().fg(theme.warning)));
        }
        if listing.unread_dirs() > 0 {
            let text = format!(
                "{} directories not read (too deep or unreadable)",
                listing.unread_dirs()
            );
            notes.push(Line::styled(text, Style::new().fg(theme.warning)));
        }
        if listing.entries.is_empty() {
            notes.insert(0, Line::styled("The workspace is empty.", theme.dim()));
        }
        notes
    }

    fn render_rows(&self, frame: &mut Frame, area: Rect, theme: &Theme, notes: Vec<Line<'static>>) {
        let entries = self.entries();
        let width = area.width as usize;
        let columns = Columns::for_width(width);
        let notes_height = notes.len().min(area.height as usize / 2);
        let rows_height = (area.height as usize).saturating_sub(notes_height + 1);
        let first = self.selected.saturating_sub(rows_height.saturating_sub(1));
        let selected = Style::new()
            .bg(theme.selection)
            .add_modifier(Modifier::BOLD | Modifier::UNDERLINED);
        let mut lines = Vec::with_capacity(area.height as usize);
        if !entries.is_empty() {
            lines.push(columns.header(theme));
        }
        for (at, entry) in entries.iter().enumerate().skip(first).take(rows_height) {
            let line = self.row(entry, &columns, theme);
            lines.push(if at == self.selected {
                line.style(selected)
            } else {
                line
            });
        }
        let room = area.height as usize;
        let padding = room.saturating_sub(lines.len() + notes_height);
        lines.extend(std::iter::repeat_n(Line::default(), padding));
        lines.extend(notes.into_iter().take(notes_height));
        frame.render_widget(Paragraph::new(lines), area);
    }

    fn row(&self, entry: &Entry, columns: &Columns, theme: &Theme) -> Line<'static> {
        let (mark, mark_style) = match self.marks.get(&entry.recorded_path()) {
            Some(FileChangeKind::Created) => ("+ ", Style::new().fg(theme.success)),
            Some(FileChangeKind::Changed) => ("~ ", Style::new().fg(theme.warning)),
            _ => ("  ", theme.text()),
        };
        let indent = "  ".repeat(entry.depth);
        let (name, name_style) = match &entry.kind {
            EntryKind::Dir => (format!("{indent}{}/", entry.name()), theme.accent()),
            EntryKind::File => (format!("{indent}{}", entry.name()), theme.text()),
            EntryKind::Symlink(target) => {
                let target = crate::files::display_name(target);
                (format!("{indent}{} → {target}", entry.name()), theme.dim())
            }
            EntryKind::Special(kind) => (
                format!("{indent}{} ({kind})", entry.name()),
                Style::new().fg(theme.warning),
            ),
        };
        let name_style = if mark == "  " { name_style } else { mark_style };
        let mut spans = vec![
            Span::styled(mark, mark_style.add_modifier(Modifier::BOLD)),
            Span::styled(pad(&name, columns.name), name_style),
        ];
        if columns.size {
            let size = match entry.kind {
                EntryKind::File => human_size(entry.size),
                _ => String::new(),
            };
            spans.push(Span::styled(format!("{size:>SIZE_COLUMN$}"), theme.dim()));
        }
        if columns.time {
            spans.push(Span::styled(
                format!(" {}", time(entry.modified)),
                theme.dim(),
            ));
        }
        Line::from(spans)
    }

    fn render_preview(&self, frame: &mut Frame, area: Rect, look: &Look, focused: bool) {
        let theme = look.theme;
        let (name, details) = match &self.shown {
            Shown::Ready(preview) => (preview.shown.as_str(), preview.details()),
            Shown::Loading(shown) => (shown.as_str(), "loading…".to_string()),
            Shown::Closed => ("", String::new()),
        };
        // The name keeps at least half the room (its end, when cut); the details' end goes
        // first.
        let room = (area.width as usize).saturating_sub(4);
        let for_name = room
            .saturating_sub(details.chars().count() + 3)
            .max(room / 2);
        let title = format!(" {} · {details}", tail(name, for_name));
        let title = Span::styled(cut(&title, room) + " ", theme.accent());
        let block = theme.pane(focused, Line::from(title));
        let inner = block.inner(area);
        frame.render_widget(block, area);
        match &self.shown {
            Shown::Ready(preview) => {
                preview.render(frame, inner, look, self.scroll);
                if matches!(preview.body, Body::Binary { .. }) && inner.height > 2 {
                    let key = look.keymap.key_in(Context::Workspace, Action::OpenFile);
                    let hint = format!("{key} hands it to the system opener.");
                    let last = Rect {
                        y: inner.bottom() - 1,
                        height: 1,
                        ..inner
                    };
                    frame.render_widget(Paragraph::new(Line::styled(hint, theme.dim())), last);
                }
            }
            Shown::Loading(_) => {
                frame.render_widget(Paragraph::new(Line::styled("Loading…", theme.dim())), inner)
            }
            Shown::Closed => {}
        }
    }
}

/// Which columns fit beside the names.
struct Columns {
    name: usize,
    size: bool,
    time: bool,
}

impl Columns {
    fn for_width(width: usize) -> Self {
        let marks = 2;
        let time = width >= marks + NAME_AT_LEAST + SIZE_COLUMN + 1 + TIME_COLUMN;
        let size = width >= marks + NAME_AT_LEAST + SIZE_COLUMN;
        let taken =
            marks + if size { SIZE_COLUMN } else { 0 } + if time { TIME_COLUMN + 1 } else { 0 };
        Self {
            name: width.saturating_sub(taken),
            size,
            time,
        }
    }

    fn header(&self, theme: &Theme) -> Line<'static> {
        let mut text = format!("  {}", pad("name", self.name));
        if self.size {
            text.push_str(&format!("{:>SIZE_COLUMN$}", "size"));
        }
        if self.time {
            text.push_str(&format!(" {:<TIME_COLUMN$}", zone_header()));
        }
        Line::styled(text, theme.dim().add_modifier(Modifier::ITALIC))
    }
}

/// `2026-07-01 21:00`, in the local zone (the header names it).
fn time(seconds: i64) -> String {
    crate::clock::local_date_time(seconds)
        .chars()
        .take(TIME_COLUMN)
        .collect()
}

/// `modified +09:00`: the zone the times are in, as it is now.
fn zone_header() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs() as i64);
    let full = crate::clock::local_date_time(now);
    let offset = full.split(' ').nth(2).unwrap_or("");
    format!("modified {offset}")
}

/// `text` padded or cut (with `…`) to `width` columns.
fn pad(text: &str, width: usize) -> String {
    let mut shown = String::with_capacity(width);
    let mut used = 0;
    let total: usize = text.chars().map(char_width).sum();
    for c in text.chars() {
        let w = char_width(c);
        if total > width && used + w + 1 > width {
            shown.push('…');
            used += 1;
            break;
        }
        shown.push(c);
        used += w;
    }
    shown.extend(std::iter::repeat_n(' ', width.saturating_sub(used)));
    shown
}

/// The end of `text` when it is wider than `width`, after a `…`: a path's end says most.
fn tail(text: &str, width: usize) -> String {
    let total: usize = text.chars().map(char_width).sum();
    if total <= width {
        return text.to_string();
    }
    let mut kept: Vec<char> = Vec::new();
    let mut used = 1;
    for c in text.chars().rev() {
        used += char_width(c);
        if used > width {
            break;
        }
        kept.push(c);
    }
    std::iter::once('…').chain(kept.into_iter().rev()).collect()
}

/// The start of `text`, cut with `…` at `width` columns.
fn cut(text: &str, width: usize) -> String {
    pad(text, width).trim_end().to_string()
}
