//! One module per subcommand. Each is a thin frontend over the engine and the adapters.

pub mod doctor;
pub mod exec;
pub mod extract;
pub mod history;
pub mod image;
pub mod run;
pub mod session;

use std::sync::Arc;

use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::config::{self, Config};
use crate::ids::new_id;
use crate::sandbox::Notices;
use crate::sandbox::docker::SessionRequest;

/// Notices printed to stderr, so stdout stays the command's own output.
pub fn stderr_notices() -> Notices {
    Arc::new(|message: String| eprintln!("airlock: {message}"))
}

/// Progress of an image pull or build, on stderr, with the time it has taken so far.
pub fn stderr_progress() -> Notices {
    let started = std::time::Instant::now();
    Arc::new(move |message: String| eprintln!("{}", progress_line(started, &message)))
}

/// `airlock: [ 12 s] building …`: one line of progress, neutralized.
pub(crate) fn progress_line(started: std::time::Instant, message: &str) -> String {
    format!(
        "airlock: [{:>3} s] {}",
        started.elapsed().as_secs(),
        crate::output::sanitize::for_person(message)
    )
}

/// A new session's sandbox request from the configuration; `prefix` starts the session id.
pub fn session_request(config: &Config, prefix: &str) -> anyhow::Result<SessionRequest> {
    Ok(SessionRequest {
        session: new_id(prefix),
        config: config.sandbox.clone(),
        secret_env: config.model.api_key_env.clone(),
        data_dir: config::data_dir()?,
        supervisor: crate::sandbox::docker::own_binary()?,
    })
}

/// Ctrl-C and SIGTERM, listened to for the whole command: a signal that arrives while
/// nobody is waiting for one is kept for the next wait, never lost.
pub struct Interrupts {
    interrupt: Signal,
    terminate: Signal,
}

impl Interrupts {
    pub fn listen() -> anyhow::Result<Self> {
        let listen = |kind| {
            signal(kind)
                .map_err(|err| anyhow::anyhow!("cannot listen for Ctrl-C and SIGTERM: {err}"))
        };
        Ok(Self {
            interrupt: listen(SignalKind::interrupt())?,
            terminate: listen(SignalKind::terminate())?,
        })
    }

    /// Resolves at the next Ctrl-C or SIGTERM.
    pub async fn next(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}
