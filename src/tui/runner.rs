//! What the app, its panes and the runner share: what the runner is asked to do besides
//! sending ops (a bell, an editor, a pager, quitting), and the sandbox as the screen knows
//! it.

use std::path::PathBuf;
use std::time::Instant;

use crate::protocol::{Op, Submission};

/// What the app asks of its runner, besides ops for the engine.
#[derive(Debug, Clone, PartialEq)]
pub enum UiAction {
    Op(Op),
    /// An op whose answer the app waits for, with its id.
    Submit(Submission),
    /// Suspend the screen and edit this block's code in $EDITOR.
    EditExternally {
        block: String,
        extension: String,
        code: String,
    },
    /// Suspend the screen and read this workspace file in $PAGER: the workspace's root and
    /// the file inside it (opened by airlock, never through a symlink).
    Page {
        root: PathBuf,
        path: PathBuf,
    },
    /// Hand this host path (a private copy, or a directory) to the system opener, without
    /// waiting for it.
    OpenExternally(PathBuf),
    /// Ring the terminal bell: a block waits for a decision.
    Bell,
    Quit,
}

/// The sandbox as the screen knows it: blocks can run only once it is ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SandboxState {
    /// Being prepared (an image pull or build): the latest step, and since when.
    Preparing {
        step: Option<String>,
        since: Instant,
    },
    /// Ready: where blocks run (image, network, limits).
    Ready(String),
    /// It could not start or stopped working.
    Failed,
}
