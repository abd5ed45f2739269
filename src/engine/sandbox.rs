//! The sandbox, as the engine sees it: something that runs one block at a time and says how
//! it ended. The Docker adapter lives in `crate::sandbox`.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Language;
use crate::protocol::{ExecResult, Stream};

/// One block to run.
#[derive(Debug, Clone, Copy)]
pub struct BlockSpec<'a> {
    pub language: &'a Language,
    pub code: &'a str,
    pub timeout: Duration,
    /// Cancelling it stops the block: its processes are killed, what it printed so far is
    /// kept, and the result says `cancelled`.
    pub cancel: Option<&'a CancellationToken>,
}

/// Receives output as it arrives, for a live view: neutralized, except that SGR colour
/// sequences are left in for a view that turns them into colours (others must strip them).
pub(crate) type LiveOutput<'a> = &'a mut (dyn FnMut(Stream, &str) + Send);

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The sandbox cannot work at all here (no daemon, no image, a protection missing).
    #[error("{0}")]
    Unavailable(String),
    /// Running one block failed for a reason other than the block itself.
    #[error("{0}")]
    Failed(String),
}

/// A session's sandbox: one container that runs blocks one at a time.
pub trait Sandbox: Send {
    fn run_block(
        &mut self,
        block: BlockSpec<'_>,
        live: LiveOutput<'_>,
    ) -> impl Future<Output = Result<ExecResult, SandboxError>> + Send;

    /// One line about where blocks run (image, network, limits), for the status bar.
    fn describe(&self) -> String;

    /// The host directory mounted at /workspace, when there is one.
    fn workspace(&self) -> Option<&std::path::Path>;

    /// Removes the container. Also happens, later, if the sandbox is just dropped.
    fn shutdown(self) -> impl Future<Output = ()> + Send;
}
