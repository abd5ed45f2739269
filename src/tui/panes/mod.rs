//! The screen's panes, one component each with its own state, scrolling and rendering:
//! the conversation, the card (the block waiting for a decision), the container logs, the
//! history of runs, the workspace, and the composer.

pub(crate) mod card;
pub(crate) mod composer;
pub(crate) mod conversation;
pub(crate) mod history;
pub(crate) mod logs;
pub(crate) mod pane;
pub(crate) mod preparing;
pub(crate) mod records;
pub(crate) mod scroll;
pub(crate) mod workspace;
pub(crate) mod workspace_preview;
