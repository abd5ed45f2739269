//! The workspace pane (`w`): the session's files as a tree with sizes and times, the files
//! the latest run created or changed marked (and those it removed listed below), and a
//! preview of the selected file beside it. Listing and previews run as jobs, so the pane
//! shows what it has and never waits; it lists again after every run while it is open.

pub(crate) mod preview;

use std::collections::HashMap;
use std::path::PathBuf;

use ratatui::layout::{Constraint, Layout, Rect, Size};
use syntect::highlighting::Theme as SyntaxTheme;

use crate::files::listing::{Entry, EntryKind, Listing};
use crate::protocol::{FileChange, FileChangeKind};
use crate::tui::handover::Handover;
use crate::tui::jobs::Jobs;
use crate::tui::keys::keymap::Action;
use crate::tui::render::picture::Graphics;
use preview::{Body, Preview};

/// Where the files come from, and what the pane knows of them.
#[derive(Debug, Default)]
enum Files {
    /// The sandbox is not ready: its workspace is not known yet.
    #[default]
    Waiting,
    /// The sandbox has no workspace directory on the host.
    None,
    /// The latest listing (an older one stays shown while a new one is made).
    Listed(Listing),
    Failed(String),
}

/// The preview beside the tree.
#[derive(Debug, Default)]
enum Shown {
    #[default]
    Closed,
    Loading(String),
    Ready(Box<Preview>),
}

/// One kind of job: which request is newest, whether one runs, and what waits for it.
#[derive(Debug)]
struct Requests<T> {
    newest: u64,
    running: bool,
    queued: Option<(u64, T)>,
}

impl<T> Default for Requests<T> {
    fn default() -> Self {
        Self {
            newest: 0,
            running: false,
            queued: None,
        }
    }
}

impl<T> Requests<T> {
    /// A new request: run it now (`Some`) or after the one that runs.
    fn ask(&mut self, what: T) -> Option<(u64, T)> {
        self.newest += 1;
        if self.running {
            self.queued = Some((self.newest, what));
            return None;
        }
        self.running = true;
        Some((self.newest, what))
    }

    /// A result came: whether it answers the newest request, and what runs next.
    fn answered(&mut self, request: u64) -> (bool, Option<(u64, T)>) {
        let next = self.queued.take();
        self.running = next.is_some();
        (request == self.newest, next)
    }
}

pub(crate) struct WorkspacePane {
    pub(crate) open: bool,
    jobs: Jobs,
    /// The workspace's host directory, and how it is drawn.
    root: Option<PathBuf>,
    shown_root: String,
    files: Files,
    /// A run ended since the listing was made.
    stale: bool,
    listings: Requests<()>,
    selected: usize,
    /// What the latest run did, by path as entries draw it.
    marks: HashMap<String, FileChangeKind>,
    removed: Vec<String>,
    shown: Shown,
    previews: Requests<preview::Request>,
    /// The preview's first line.
    scroll: usize,
    graphics: Graphics,
    syntax: Option<SyntaxTheme>,
    /// The private copies `o` hands to the system opener.
    handover: Handover,
}

/// What the pane's background jobs find.
pub(crate) enum Found {
    /// The workspace's entries, or why they cannot be listed.
    Listing(Result<Listing, String>),
    /// A preview of one file.
    Preview(Box<Preview>),
}

/// What the operator asked the pane for, to be carried out by the app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Wanted {
    /// Read this file in the pager: the workspace's root and the file inside it.
    Page { root: PathBuf, path: PathBuf },
    /// Hand this host path (a private copy, or a directory) to the system opener.
    Open(PathBuf),
    /// Nothing to carry out; tell the operator this.
    Say(String),
}

impl WorkspacePane {
    pub(crate) fn new(jobs: Jobs) -> Self {
        Self {
            open: false,
            jobs,
            root: None,
            shown_root: String::new(),
            files: Files::Waiting,
            stale: true,
            listings: Requests::default(),
            selected: 0,
            marks: HashMap::new(),
            removed: Vec::new(),
            shown: Shown::Closed,
            previews: Requests::default(),
            scroll: 0,
            graphics: Graphics::HalfBlocks,
            syntax: None,
            handover: Handover::default(),
        }
    }

    /// The sandbox is ready, with this workspace directory (or none).
    pub(crate) fn set_root(&mut self, root: Option<&str>) {
        self.root = root.map(PathBuf::from);
        self.shown_root = root
            .map(|root| crate::files::display_name(std::ffi::OsStr::new(root)))
            .unwrap_or_default();
        self.files = if root.is_some() {
            Files::Waiting
        } else {
            Files::None
        };
        self.stale = true;
        self.list_if_open();
    }

    /// A run ended: its changes become the marks, and the tree is listed again.
    pub(crate) fn run_finished(&mut self, changes: &[FileChange]) {
        self.marks = changes
            .iter()
            .filter(|change| change.change != FileChangeKind::Removed)
            .map(|change| (change.path.clone(), change.change))
            .collect();
        self.removed = changes
            .iter()
            .filter(|change| change.change == FileChangeKind::Removed)
            .map(|change| change.path.clone())
            .collect();
        self.stale = true;
        self.list_if_open();
        self.reload_if_changed(changes);
    }

    /// The file previewed was changed or removed by the run: it is loaded again (the old
    /// preview shown until the new one comes).
    fn reload_if_changed(&mut self, changes: &[FileChange]) {
        let Shown::Ready(shown) = &self.shown else {
            return;
        };
        let recorded = crate::files::recorded::recorded_path(&shown.path);
        let Some(change) = changes.iter().find(|change| change.path == recorded) else {
            return;
        };
        let room = match &shown.body {
            Body::Picture { picture, .. } => picture.room,
            _ => Size::new(0, 0),
        };
        let (path, name) = (shown.path.clone(), shown.shown.clone());
        self.request_preview(path, name, change.size, room);
    }

    /// Opens or closes the pane; opening lists the files again (the operator may have
    /// changed them on the host since).
    pub(crate) fn open_or_close(&mut self) {
        self.open = !self.open;
        self.stale |= self.open;
        self.list_if_open();
    }

    /// A listing or a preview is being made.
    pub(crate) fn working(&self) -> bool {
        self.listings.running || self.previews.running
    }

    pub(crate) fn previewing(&self) -> bool {
        !matches!(self.shown, Shown::Closed)
    }

    fn list_if_open(&mut self) {
        if !self.open || !self.stale {
            return;
        }
        let Some(root) = self.root.clone() else {
            return;
        };
        self.stale = false;
        if let Some((request, ())) = self.listings.ask(()) {
            self.spawn_listing(request, root);
        }
    }

    fn spawn_listing(&mut self, request: u64, root: PathBuf) {
        let started = self.jobs.spawn(request, move || {
            Box::new(Found::Listing(
                Listing::scan(&root).map_err(|err| err.to_string()),
            ))
        });
        if let Err(why) = started {
            self.listings.running = false;
            self.files = Files::Failed(why);
        }
    }

    /// A listing came back.
    pub(crate) fn listed(&mut self, request: u64, result: Result<Listing, String>) {
        let (newest, next) = self.listings.answered(request);
        if let (Some((request, ())), Some(root)) = (next, self.root.clone()) {
            self.spawn_listing(request, root);
        }
        if !newest {
            return;
        }
        let selected = self.selected_entry().map(|entry| entry.path.clone());
        self.files = match result {
            Ok(listing) => Files::Listed(listing),
            Err(why) => Files::Failed(why),
        };
        let entries = self.entries();
        self.selected = selected
            .and_then(|path| entries.iter().position(|entry| entry.path == path))
            .unwrap_or(self.selected)
            .min(entries.len().saturating_sub(1));
    }

    fn entries(&self) -> &[Entry] {
        match &self.files {
            Files::Listed(listing) => &listing.entries,
            _ => &[],
        }
    }

    pub(crate) fn selected_entry(&self) -> Option<&Entry> {
        self.entries().get(self.selected)
    }

    /// Enter: previews the selected file in `room` cells (a directory has none).
    pub(crate) fn preview_selected(&mut self, room: Size) -> Option<String> {
        let entry = self.selected_entry()?;
        if entry.kind == EntryKind::Dir {
            return Some(format!("{} is a directory", entry.shown_path()));
        }
        let (path, shown, size) = (entry.path.clone(), entry.shown_path(), entry.size);
        self.scroll = 0;
        self.shown = Shown::Loading(shown.clone());
        self.request_preview(path, shown, size, room);
        None
    }

    fn request_preview(&mut self, path: PathBuf, shown: String, size: u64, room: Size) {
        let Some(root) = self.root.clone() else {
            return;
        };
        let request = preview::Request {
            root,
            path,
            shown,
            size,
            room,
            graphics: self.graphics.clone(),
            theme: self.syntax.clone(),
        };
        if let Some((id, request)) = self.previews.ask(request) {
            self.spawn_preview(id, request);
        }
    }

    fn spawn_preview(&mut self, id: u64, request: preview::Request) {
        let started = self.jobs.spawn(id, move || {
            Box::new(Found::Preview(Box::new(preview::load(&request))))
        });
        if let Err(why) = started {
            self.previews.running = false;
            self.shown = Shown::Closed;
            tracing::warn!("{why}");
        }
    }

    /// A preview came back.
    pub(crate) fn previewed(&mut self, request: u64, preview: Box<Preview>) {
        let (newest, next) = self.previews.answered(request);
        if let Some((id, request)) = next {
            self.spawn_preview(id, request);
        }
        if newest && self.previewing() {
            self.shown = Shown::Ready(preview);
        }
    }

    /// After a frame: a picture drawn for another room (the terminal was resized, the pane
    /// zoomed) is scaled again, the old one shown until the new one comes.
    pub(crate) fn refit(&mut self, area: Rect) {
        let room = self.room(area);
        let Shown::Ready(shown) = &self.shown else {
            return;
        };
        let Body::Picture { picture, size, .. } = &shown.body else {
            return;
        };
        if picture.room == room || self.previews.running || room.width == 0 {
            return;
        }
        let (path, name, size) = (shown.path.clone(), shown.shown.clone(), *size);
        self.request_preview(path, name, size, room);
    }

    /// Esc in the preview.
    pub(crate) fn close_preview(&mut self) {
        self.shown = Shown::Closed;
    }

    /// `p`: the selected text file, for the pager.
    pub(crate) fn page_selected(&self) -> Wanted {
        let (Some(entry), Some(root)) = (self.selected_entry(), &self.root) else {
            return Wanted::Say("no file is selected".into());
        };
        if let Err(why) = plain_file(entry) {
            return Wanted::Say(format!("{} is not paged: {why}", entry.shown_path()));
        }
        if let Shown::Ready(shown) = &self.shown
            && shown.path == entry.path
            && !shown.body.is_text()
        {
            return Wanted::Say(format!(
                "{} is not text; the system opener can take it",
                entry.shown_path()
            ));
        }
        Wanted::Page {
            root: root.clone(),
            path: entry.path.clone(),
        }
    }

    /// `o`: for the system opener, a private copy of the selected file (`crate::tui::handover`
    /// says what is refused), or a directory's host path once it is reached without a
    /// symlink. A directory goes by its path: a file manager only shows it, and nothing in it
    /// runs without the operator's own click.
    pub(crate) fn open_selected(&mut self) -> Wanted {
        let (Some(entry), Some(root)) = (self.selected_entry(), &self.root) else {
            return Wanted::Say("no file is selected".into());
        };
        let (entry, root) = (entry.clone(), root.clone());
        let handed = match &entry.kind {
            EntryKind::Dir => crate::files::read::open_dir_beneath(&root, &entry.path)
                .map(|_| root.join(&entry.path))
                .map_err(|why| why.to_string()),
            _ => plain_file(&entry).and_then(|()| self.handover.copy(&root, &entry.path)),
        };
        match handed {
            Ok(path) => Wanted::Open(path),
            Err(why) => Wanted::Say(format!("{} is not handed on: {why}", entry.shown_path())),
        }
    }

    /// Moves the selection, or scrolls the preview while it is shown.
    pub(crate) fn scroll_by(&mut self, action: Action, page: usize) {
        if self.previewing() {
            let lines = match &self.shown {
                Shown::Ready(preview) => preview.line_count(),
                _ => 0,
            };
            self.scroll = step(self.scroll, action, page, lines.saturating_sub(page));
            return;
        }
        let count = self.entries().len();
        self.selected = step(self.selected, action, page, count.saturating_sub(1));
    }

    /// Cells a picture may fill when the pane is drawn in `area`.
    pub(crate) fn room(&self, area: Rect) -> Size {
        let (_, preview) = split(area);
        Size::new(
            preview.width.saturating_sub(2),
            preview.height.saturating_sub(2),
        )
    }
}

/// A regular file, or why not (from the listing: the read checks again).
fn plain_file(entry: &Entry) -> Result<(), String> {
    match &entry.kind {
        EntryKind::File => Ok(()),
        EntryKind::Dir => Err("it is a directory".into()),
        EntryKind::Symlink(target) => Err(format!(
            "it is a symlink (to {}); links are shown, never followed",
            crate::files::display_name(target)
        )),
        EntryKind::Special(kind) => Err(format!("it is a {kind}, which is never opened")),
    }
}

/// A position moved by a scrolling action, kept within `0..=last`.
fn step(at: usize, action: Action, page: usize, last: usize) -> usize {
    let page = page.max(1);
    match action {
        Action::ScrollDown => at + 1,
        Action::ScrollUp => at.saturating_sub(1),
        Action::PageDown => at + page,
        Action::PageUp => at.saturating_sub(page),
        Action::Top => 0,
        Action::Bottom => last,
        _ => at,
    }
    .min(last)
}

/// The tree and, to its right, the preview (the tree alone when none is open).
fn split(area: Rect) -> (Rect, Rect) {
    let [tree, preview] =
        Layout::horizontal([Constraint::Percentage(40), Constraint::Percentage(60)]).areas(area);
    (tree, preview)
}

mod pane;
mod render;

#[cfg(test)]
mod tests;
