//! Work the screen asks for but must not wait on (listing the workspace, loading a
//! preview): each job runs on a thread of its own and its result comes back to the event
//! loop on one channel, next to keys and engine events, so a slow disk or a large picture
//! never holds up a frame.

use std::any::Any;
use std::thread::ThreadId;

use tokio::sync::mpsc;

/// What a job found: of a kind its pane knows.
pub(crate) type Found = Box<dyn Any + Send>;

/// A finished job: which request it answers, what it found, and where it ran.
pub(crate) struct Done {
    /// Counted per kind of job: a result for an earlier request is dropped.
    pub(crate) request: u64,
    pub(crate) found: Found,
    /// The thread that did the work (never the event loop's).
    pub(crate) ran_on: ThreadId,
}

/// Starts jobs; cheap to clone, one per component that needs one.
#[derive(Clone)]
pub(crate) struct Jobs {
    done: mpsc::UnboundedSender<Done>,
}

impl Jobs {
    /// A sender of jobs and the receiver of their results, for the event loop.
    pub(crate) fn new() -> (Self, mpsc::UnboundedReceiver<Done>) {
        let (done, results) = mpsc::unbounded_channel();
        (Self { done }, results)
    }

    /// Runs `work` on a new thread; its result arrives as a [`Done`] for `request`. When the
    /// screen is gone before the job ends, the result is dropped with the channel. An error
    /// when no thread could be started: then nothing will arrive.
    pub(crate) fn spawn(
        &self,
        request: u64,
        work: impl FnOnce() -> Found + Send + 'static,
    ) -> Result<(), String> {
        let done = self.done.clone();
        std::thread::Builder::new()
            .name("airlock-job".into())
            .spawn(move || {
                let found = work();
                let _ = done.send(Done {
                    request,
                    found,
                    ran_on: std::thread::current().id(),
                });
            })
            .map(drop)
            .map_err(|err| format!("cannot start a background job: {err}"))
    }
}
