//! The workspace as one of the screen's panes: its keys (the tree's, and the preview's over
//! them), the engine's news it takes (where the workspace is, what each run changed), its
//! own actions, and the background work it waits on.

use ratatui::Frame;
use ratatui::layout::Rect;
use syntect::highlighting::Theme as SyntaxTheme;

use super::{Found, Wanted, WorkspacePane};
use crate::protocol::Event;
use crate::tui::jobs::Done;
use crate::tui::keys::keymap::{Action, Context};
use crate::tui::panes::{Acting, Pane, Seen, Setup, Wants};
use crate::tui::render::picture::Graphics;
use crate::tui::runner::UiAction;
use crate::view::SessionView;

impl WorkspacePane {
    /// The pane as the layout makes it.
    pub(crate) fn made(setup: &Setup) -> Box<dyn Pane> {
        Box::new(Self::new(setup.jobs.clone()))
    }
}

impl Pane for WorkspacePane {
    /// The preview's own keys, then the tree's (Enter previews the next file at once).
    fn contexts(&self) -> &'static [Context] {
        if self.previewing() {
            &[Context::Preview, Context::Workspace]
        } else {
            &[Context::Workspace]
        }
    }

    fn open(&self) -> bool {
        self.open
    }

    /// Opening lists the files again (the operator may have changed them on the host).
    fn toggle(&mut self) -> bool {
        self.open_or_close();
        self.open
    }

    fn on_event(&mut self, event: &Event, _view: &SessionView) {
        match event {
            Event::SandboxReady { workspace, .. } => self.set_root(workspace.as_deref()),
            Event::ExecFinished { result, .. } => self.run_finished(&result.files),
            _ => {}
        }
    }

    /// Enter previews the selected file, `p` pages it, `o` hands it to the system opener;
    /// leaving a preview closes it.
    fn on_action(&mut self, action: Action, acting: &Acting) -> Option<Vec<Wants>> {
        let wanted = match action {
            Action::Preview => {
                let room = self.room(acting.area);
                let said = self.preview_selected(room);
                return Some(said.into_iter().map(Wants::Say).collect());
            }
            Action::Leave if self.previewing() => {
                self.close_preview();
                return Some(Vec::new());
            }
            Action::Pager => self.page_selected(),
            Action::OpenFile => self.open_selected(),
            _ => return None,
        };
        Some(vec![match wanted {
            Wanted::Page { root, path } => Wants::Ui(UiAction::Page { root, path }),
            Wanted::Open(path) => Wants::Ui(UiAction::OpenExternally(path)),
            Wanted::Say(text) => Wants::Say(text),
        }])
    }

    fn scroll(&mut self, action: Action, area: Rect) -> bool {
        self.scroll_by(action, area.height.saturating_sub(4) as usize);
        true
    }

    fn render(&self, frame: &mut Frame, area: Rect, seen: &Seen) {
        self.draw(frame, area, &seen.look);
    }

    fn on_job(&mut self, done: Done) -> Option<Done> {
        let Done {
            request,
            found,
            ran_on,
        } = done;
        match found.downcast::<Found>() {
            Ok(found) => match *found {
                Found::Listing(result) => self.listed(request, result),
                Found::Preview(preview) => self.previewed(request, preview),
            },
            Err(found) => {
                return Some(Done {
                    request,
                    found,
                    ran_on,
                });
            }
        }
        None
    }

    fn busy(&self) -> bool {
        self.working()
    }

    /// A picture is scaled again for a pane that changed size.
    fn after_frame(&mut self, area: Rect) {
        if self.open {
            self.refit(area);
        }
    }

    fn set_graphics(&mut self, graphics: &Graphics) {
        self.graphics = graphics.clone();
    }

    fn set_syntax(&mut self, syntax: Option<&SyntaxTheme>) {
        self.syntax = syntax.cloned();
    }
}
