//! What the engine waits on: the frontend's ops, and the sandbox while it is still being
//! prepared. The sandbox starts in a task of its own as the session starts, so the model
//! can already reply (and the operator read and decide) while an image is pulled or built;
//! whichever wait point the engine is at when it is ready takes it in.

use std::collections::VecDeque;
use std::future::Future;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::sandbox::SandboxError;
use crate::protocol::{Op, Submission};

/// The frontend asked the session to end while the engine waited on something else.
pub(super) struct ShutdownRequested;

pub(super) enum Input<S> {
    /// The frontend's next op; `None` once it went away.
    Op(Option<Submission>),
    /// The sandbox finished starting, or failed to.
    Sandbox(Result<S, SandboxError>),
}

pub(super) struct Inbox<S> {
    ops: mpsc::UnboundedReceiver<Submission>,
    /// Ops that arrived while the engine could not act on them yet.
    backlog: VecDeque<Submission>,
    starting: Option<JoinHandle<Result<S, SandboxError>>>,
}

impl<S: Send + 'static> Inbox<S> {
    pub(super) fn new(ops: mpsc::UnboundedReceiver<Submission>) -> Self {
        Self {
            ops,
            backlog: VecDeque::new(),
            starting: None,
        }
    }

    /// Starts the sandbox in the background; [`Self::next`] reports when it is done.
    pub(super) fn start_sandbox(
        &mut self,
        start: impl Future<Output = Result<S, SandboxError>> + Send + 'static,
    ) {
        self.starting = Some(tokio::spawn(start));
    }

    /// Whether the sandbox is still being prepared.
    pub(super) fn sandbox_starting(&self) -> bool {
        self.starting.is_some()
    }

    /// The next op, or the sandbox's start, whichever comes first.
    pub(super) async fn next(&mut self) -> Input<S> {
        if let Some(op) = self.backlog.pop_front() {
            return Input::Op(Some(op));
        }
        let Some(starting) = self.starting.as_mut() else {
            return Input::Op(self.ops.recv().await);
        };
        let joined = tokio::select! {
            op = self.ops.recv() => return Input::Op(op),
            joined = starting => joined,
        };
        self.starting = None;
        Input::Sandbox(joined.unwrap_or_else(|err| {
            Err(SandboxError::Unavailable(format!(
                "preparing the sandbox failed unexpectedly: {err}"
            )))
        }))
    }

    /// Awaits `work` while keeping the ops that arrive for later; a shutdown (or the
    /// frontend going away) stops the wait. The sandbox goes on starting meanwhile.
    pub(super) async fn hold_until<T>(
        &mut self,
        work: impl Future<Output = T>,
    ) -> Result<T, ShutdownRequested> {
        tokio::pin!(work);
        loop {
            tokio::select! {
                done = &mut work => return Ok(done),
                submitted = self.ops.recv() => match submitted {
                    None | Some(Submission { op: Op::Shutdown, .. }) => return Err(ShutdownRequested),
                    Some(submitted) => self.backlog.push_back(submitted),
                }
            }
        }
    }

    /// Stops a start still under way, as the session ends before its sandbox was needed,
    /// and waits until it has stopped (so nothing it does comes after the session's end). A
    /// start that has finished by now is returned: a sandbox to shut down, or its failure.
    pub(super) async fn abandon_start(&mut self) -> Option<Result<S, SandboxError>> {
        let starting = self.starting.take()?;
        if starting.is_finished() {
            return starting.await.ok();
        }
        starting.abort();
        let _ = starting.await;
        None
    }
}
