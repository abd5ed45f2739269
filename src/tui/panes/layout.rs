//! The screen's layout as data: which pane sits in which column, its share of the column,
//! the order Tab visits the panes in, the key that opens one that opens and closes, and how
//! a pane the app knows only through [`Pane`] is made. The conversation, the workspace and
//! the composer share the left column, the card, history and logs the right one. A pane of
//! its own height (the composer) sits at the bottom of its column; the others share what is
//! left by percent, and a closed pane's percent goes to the open ones evenly.

use ratatui::layout::{Constraint, Layout, Position, Rect};

use super::{Pane, Setup};
use crate::tui::keys::keymap::Action;

/// A pane, as the focus and the layout name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Focus {
    Conversation,
    Card,
    Logs,
    Composer,
    History,
    Workspace,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Column {
    Left,
    Right,
}

/// How much of its column a pane takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Share {
    /// This percent of what the panes of their own height leave (the column's percents add
    /// up to 100).
    Percent(u16),
    /// As many rows as the pane asks for (the composer grows with its text).
    Own,
}

/// Makes a pane the app holds only as a [`Pane`].
pub(crate) type Make = fn(&Setup) -> Box<dyn Pane>;

/// One pane's place.
pub(crate) struct Slot {
    pub(crate) pane: Focus,
    pub(crate) column: Column,
    pub(crate) share: Share,
    /// Its turn in the Tab order.
    pub(crate) tab: u8,
    /// The key that opens and closes it, when it can be closed.
    pub(crate) opens: Option<Action>,
    /// How it is made, for a pane the app holds only as a [`Pane`].
    pub(crate) make: Option<Make>,
}

/// Every pane's place, top to bottom within each column. The card comes first in the Tab
/// order, so Tab from the composer reaches a waiting block at once.
pub(crate) const SLOTS: &[Slot] = &[
    Slot {
        pane: Focus::Conversation,
        column: Column::Left,
        share: Share::Percent(45),
        tab: 1,
        opens: None,
        make: None,
    },
    Slot {
        pane: Focus::Workspace,
        column: Column::Left,
        share: Share::Percent(55),
        tab: 2,
        opens: Some(Action::Workspace),
        make: Some(super::workspace::WorkspacePane::made),
    },
    Slot {
        pane: Focus::Composer,
        column: Column::Left,
        share: Share::Own,
        tab: 5,
        opens: None,
        make: None,
    },
    Slot {
        pane: Focus::Card,
        column: Column::Right,
        share: Share::Percent(40),
        tab: 0,
        opens: None,
        make: None,
    },
    Slot {
        pane: Focus::History,
        column: Column::Right,
        share: Share::Percent(30),
        tab: 4,
        opens: Some(Action::History),
        make: None,
    },
    Slot {
        pane: Focus::Logs,
        column: Column::Right,
        share: Share::Percent(30),
        tab: 3,
        opens: None,
        make: None,
    },
];

/// The left column's share of the width, in percent.
const LEFT_PERCENT: u16 = 58;

/// Where each pane was drawn last, for the mouse and for paging by the pane's height.
#[derive(Debug, Clone, Default)]
pub(crate) struct Areas(Vec<(Focus, Rect)>);

impl Areas {
    pub(crate) fn of(&self, pane: Focus) -> Rect {
        self.0
            .iter()
            .find(|(drawn, _)| *drawn == pane)
            .map_or_else(Rect::default, |(_, area)| *area)
    }

    /// As if `pane` had been drawn in `area` (for tests of the mouse and paging).
    #[cfg(test)]
    pub(crate) fn with(mut self, pane: Focus, area: Rect) -> Self {
        self.0.retain(|(drawn, _)| *drawn != pane);
        self.0.push((pane, area));
        self
    }

    /// Each pane drawn, and where.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (Focus, Rect)> + '_ {
        self.0.iter().copied()
    }

    /// The pane drawn at `position`.
    pub(crate) fn at(&self, position: Position) -> Option<Focus> {
        self.0
            .iter()
            .find(|(_, area)| area.contains(position))
            .map(|(pane, _)| *pane)
    }
}

/// Where each open pane goes in `area`: `open` says which are, `own_height` how tall a
/// pane of its own height is.
pub(crate) fn arrange(
    area: Rect,
    open: impl Fn(Focus) -> bool,
    own_height: impl Fn(Focus) -> u16,
) -> Areas {
    let [left, right] = Layout::horizontal([
        Constraint::Percentage(LEFT_PERCENT),
        Constraint::Percentage(100 - LEFT_PERCENT),
    ])
    .areas(area);
    let mut areas = Vec::new();
    for (column, space) in [(Column::Left, left), (Column::Right, right)] {
        let slots: Vec<&Slot> = SLOTS.iter().filter(|slot| slot.column == column).collect();
        let own: Vec<Focus> = slots
            .iter()
            .filter(|slot| slot.share == Share::Own && open(slot.pane))
            .map(|slot| slot.pane)
            .collect();
        let heights = own.iter().map(|&pane| Constraint::Length(own_height(pane)));
        let rects = Layout::vertical([Constraint::Min(3)].into_iter().chain(heights)).split(space);
        let shared = shares(&slots, &open);
        let percents = shared
            .iter()
            .map(|(_, percent)| Constraint::Percentage(*percent));
        let shared_rects = Layout::vertical(percents).split(rects[0]);
        areas.extend(
            shared
                .iter()
                .map(|(pane, _)| *pane)
                .zip(shared_rects.iter().copied()),
        );
        areas.extend(own.into_iter().zip(rects.iter().skip(1).copied()));
    }
    Areas(areas)
}

/// The open panes of a column that share it by percent, each with its percent: those of
/// the closed ones spread evenly over them (the first takes what does not divide).
fn shares(slots: &[&Slot], open: &impl Fn(Focus) -> bool) -> Vec<(Focus, u16)> {
    let percent = |slot: &Slot| match slot.share {
        Share::Percent(percent) => Some(percent),
        Share::Own => None,
    };
    let (mut shown, mut left_over) = (Vec::new(), 0);
    for slot in slots {
        match (percent(slot), open(slot.pane)) {
            (Some(percent), true) => shown.push((slot.pane, percent)),
            (Some(percent), false) => left_over += percent,
            (None, _) => {}
        }
    }
    let count = shown.len() as u16;
    if let (Some(each), Some(rest)) = (left_over.checked_div(count), left_over.checked_rem(count)) {
        for (at, (_, percent)) in shown.iter_mut().enumerate() {
            *percent += each + if at == 0 { rest } else { 0 };
        }
    }
    shown
}

/// Only `pane`, over the whole of `area` (zoomed).
pub(crate) fn alone(pane: Focus, area: Rect) -> Areas {
    Areas(vec![(pane, area)])
}

/// The panes Tab visits, in order, of those `takes_focus` says do now.
pub(crate) fn tab_order(takes_focus: impl Fn(Focus) -> bool) -> Vec<Focus> {
    let mut slots: Vec<&Slot> = SLOTS.iter().filter(|slot| takes_focus(slot.pane)).collect();
    slots.sort_by_key(|slot| slot.tab);
    slots.iter().map(|slot| slot.pane).collect()
}

/// The slot of the pane `action` opens and closes, if it opens one.
pub(crate) fn opened_by(action: Action) -> Option<&'static Slot> {
    SLOTS.iter().find(|slot| slot.opens == Some(action))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heights(areas: &Areas) -> Vec<(Focus, u16)> {
        areas
            .iter()
            .map(|(pane, area)| (pane, area.height))
            .collect()
    }

    #[test]
    fn a_closed_pane_leaves_its_share_to_the_open_ones_of_its_column() {
        let area = Rect::new(0, 0, 100, 40);
        let all_open = arrange(area, |_| true, |_| 4);
        assert_eq!(
            heights(&all_open),
            [
                (Focus::Conversation, 16),
                (Focus::Workspace, 20),
                (Focus::Composer, 4),
                (Focus::Card, 16),
                (Focus::History, 12),
                (Focus::Logs, 12),
            ]
        );
        let closed = [Focus::Workspace, Focus::History];
        let some_closed = arrange(area, |pane| !closed.contains(&pane), |_| 4);
        assert_eq!(
            heights(&some_closed),
            [
                (Focus::Conversation, 36),
                (Focus::Composer, 4),
                (Focus::Card, 22),
                (Focus::Logs, 18),
            ]
        );
        assert_eq!(some_closed.at(Position::new(70, 30)), Some(Focus::Logs));
        assert_eq!(some_closed.of(Focus::Workspace), Rect::default());
    }

    #[test]
    fn tab_visits_the_card_first_and_skips_what_does_not_take_the_focus() {
        let order = tab_order(|pane| pane != Focus::History);
        assert_eq!(
            order,
            [
                Focus::Card,
                Focus::Conversation,
                Focus::Workspace,
                Focus::Logs,
                Focus::Composer
            ]
        );
        assert_eq!(
            opened_by(Action::History).map(|slot| slot.pane),
            Some(Focus::History)
        );
        assert!(opened_by(Action::Zoom).is_none());
    }
}
