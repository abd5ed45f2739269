//! Where approved code runs: the Docker adapter of the engine's [`Sandbox`] trait, in
//! [`docker`], and the session's workspace directory on the host.

pub mod docker;
pub(crate) mod workspace;

pub use crate::engine::sandbox::{BlockSpec, LiveOutput, Sandbox, SandboxError};

/// Receives progress and warnings (image pulls, create warnings, restarts).
pub type Notices = std::sync::Arc<dyn Fn(String) + Send + Sync>;
