//! One module per subcommand. Each is a thin frontend over the engine and the adapters.

pub mod doctor;
pub mod exec;
pub mod extract;

use std::sync::Arc;

use crate::sandbox::Notices;

/// Notices printed to stderr, so stdout stays the command's own output.
pub fn stderr_notices() -> Notices {
    Arc::new(|message: String| eprintln!("airlock: {message}"))
}
