//! One module per subcommand. Each is a thin frontend over the engine and the adapters.

pub mod doctor;
pub mod exec;
pub mod extract;
pub mod run;

use std::sync::Arc;

use crate::config::{self, Config};
use crate::ids::new_id;
use crate::sandbox::Notices;
use crate::sandbox::docker::SessionRequest;

/// Notices printed to stderr, so stdout stays the command's own output.
pub fn stderr_notices() -> Notices {
    Arc::new(|message: String| eprintln!("airlock: {message}"))
}

/// A new session's sandbox request from the configuration; `prefix` starts the session id.
pub fn session_request(config: &Config, prefix: &str) -> anyhow::Result<SessionRequest> {
    Ok(SessionRequest {
        session: new_id(prefix),
        config: config.sandbox.clone(),
        secret_env: config.model.api_key_env.clone(),
        data_dir: config::data_dir()?,
    })
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn interrupted() {
    let mut terminate =
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}
