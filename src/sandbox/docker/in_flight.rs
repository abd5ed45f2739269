//! Calls that make containers, carried to their end even when airlock stops waiting.
//!
//! When a session ends while its sandbox is still starting, the start is dropped. Dropping a
//! `create` or `start` request does not stop the daemon, which may make the container a moment
//! later, after the final sweep looked for it. So these calls run in tasks of their own that
//! finish whatever happens to the caller, and the sweep waits for them first.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::sandbox::SandboxError;

/// Calls under way in this process.
static PENDING: AtomicUsize = AtomicUsize::new(0);

/// Longer than the daemon takes to create or start a container, even on a loaded host.
const SETTLE: Duration = Duration::from_secs(30);

struct Pending;

impl Pending {
    fn enter() -> Self {
        PENDING.fetch_add(1, Ordering::SeqCst);
        Self
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        PENDING.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Runs `call` to its end in a task of its own, so the daemon's answer (a container's id)
/// is never lost to a caller that went away.
pub(super) async fn carried<T: Send + 'static>(
    call: impl Future<Output = T> + Send + 'static,
) -> Result<T, SandboxError> {
    let pending = Pending::enter();
    let task = tokio::spawn(async move {
        let _pending = pending;
        call.await
    });
    task.await.map_err(|err| {
        SandboxError::Unavailable(format!("a call to the container engine failed: {err}"))
    })
}

/// Waits, for a bounded time, until no call that makes a container is under way.
pub(super) async fn settled() {
    let deadline = Instant::now() + SETTLE;
    while PENDING.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_call_whose_caller_went_away_still_ends_before_the_sweep() {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let caller = tokio::spawn(carried(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let _ = tx.send("made");
        }));
        tokio::time::sleep(Duration::from_millis(20)).await;
        caller.abort();
        settled().await;
        assert_eq!(rx.await, Ok("made"));
    }
}
