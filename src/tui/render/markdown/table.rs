//! Markdown tables drawn as aligned columns: the header row, a rule, then the rows. When
//! the pane is too narrow the widest columns give up width first and their cells wrap.

use pulldown_cmark::Alignment;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};

use crate::tui::render::text::{line_width, wrap_prose};

const SEPARATOR: &str = " │ ";
/// A column is never squeezed below this, so a cell stays readable (it wraps instead).
const MIN_COLUMN: usize = 3;

type Cell = Vec<Span<'static>>;

/// Collects a table's cells as the markdown parser reports them.
pub(crate) struct Table {
    alignments: Vec<Alignment>,
    header: Vec<Cell>,
    rows: Vec<Vec<Cell>>,
    in_header: bool,
}

impl Table {
    pub(crate) fn new(alignments: Vec<Alignment>) -> Self {
        Self {
            alignments,
            header: Vec::new(),
            rows: Vec::new(),
            in_header: false,
        }
    }

    pub(crate) fn start_header(&mut self) {
        self.in_header = true;
    }

    pub(crate) fn end_header(&mut self) {
        self.in_header = false;
    }

    pub(crate) fn start_row(&mut self) {
        self.rows.push(Vec::new());
    }

    pub(crate) fn push_cell(&mut self, cell: Cell) {
        if self.in_header {
            self.header.push(cell);
        } else if let Some(row) = self.rows.last_mut() {
            row.push(cell);
        }
    }

    /// The table as lines no wider than `width` (unless even the narrowest columns do not
    /// fit, where the pane cuts the rest off).
    pub(crate) fn render(&self, width: usize, rule_style: Style) -> Vec<Line<'static>> {
        let columns = self
            .rows
            .iter()
            .map(Vec::len)
            .chain([self.header.len(), self.alignments.len()])
            .max()
            .unwrap_or(0);
        if columns == 0 {
            return Vec::new();
        }
        let widths = self.column_widths(columns, width);
        let bold = Style::new().add_modifier(Modifier::BOLD);
        let header: Vec<Cell> = self
            .header
            .iter()
            .map(|cell| cell.iter().map(|s| s.clone().patch_style(bold)).collect())
            .collect();
        let mut lines = self.row_lines(&header, &widths, rule_style);
        let rule: Vec<String> = widths.iter().map(|w| "─".repeat(*w)).collect();
        lines.push(Line::styled(rule.join("─┼─"), rule_style));
        for row in &self.rows {
            lines.extend(self.row_lines(row, &widths, rule_style));
        }
        lines
    }

    /// Natural widths, then the widest column shrinks one column at a time until the table
    /// fits (or every column is at its minimum).
    fn column_widths(&self, columns: usize, width: usize) -> Vec<usize> {
        let mut widths = vec![1; columns];
        for row in std::iter::once(&self.header).chain(&self.rows) {
            for (i, cell) in row.iter().enumerate() {
                widths[i] = widths[i].max(line_width(&Line::from(cell.clone())));
            }
        }
        let budget = width.saturating_sub(SEPARATOR.chars().count() * (columns - 1));
        while widths.iter().sum::<usize>() > budget {
            let Some((widest, &w)) = widths.iter().enumerate().max_by_key(|(_, w)| **w) else {
                break;
            };
            if w <= MIN_COLUMN {
                break;
            }
            widths[widest] = w - 1;
        }
        widths
    }

    /// One table row, each cell wrapped to its column: as many lines as its tallest cell.
    fn row_lines(&self, row: &[Cell], widths: &[usize], rule_style: Style) -> Vec<Line<'static>> {
        let wrapped: Vec<Vec<Line<'static>>> = widths
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let cell = row.get(i).cloned().unwrap_or_default();
                wrap_prose(&Line::from(cell), *w)
            })
            .collect();
        let height = wrapped.iter().map(Vec::len).max().unwrap_or(1);
        (0..height)
            .map(|n| {
                let mut spans = Vec::new();
                for (i, w) in widths.iter().enumerate() {
                    if i > 0 {
                        spans.push(Span::styled(SEPARATOR, rule_style));
                    }
                    let piece = wrapped[i].get(n).cloned().unwrap_or_default();
                    let alignment = self.alignments.get(i).copied().unwrap_or(Alignment::None);
                    spans.extend(pad(piece, *w, alignment));
                }
                Line::from(spans)
            })
            .collect()
    }
}

fn pad(piece: Line<'static>, width: usize, alignment: Alignment) -> Vec<Span<'static>> {
    let room = width.saturating_sub(line_width(&piece));
    let (left, right) = match alignment {
        Alignment::Right => (room, 0),
        Alignment::Center => (room / 2, room - room / 2),
        Alignment::Left | Alignment::None => (0, room),
    };
    let mut spans = vec![Span::raw(" ".repeat(left))];
    spans.extend(piece.spans);
    spans.push(Span::raw(" ".repeat(right)));
    spans.retain(|span| !span.content.is_empty());
    spans
}
