//! Where approved code runs: the Docker adapter of the engine's [`Sandbox`] trait, in
//! [`docker`], and the session's workspace directory on the host.

pub mod docker;
pub(crate) mod workspace;
pub(crate) mod workspace_copy;

pub(crate) use crate::engine::sandbox::LiveOutput;
pub use crate::engine::sandbox::{BlockSpec, Sandbox, SandboxError};

/// Receives progress and warnings (image pulls, create warnings, restarts).
pub(crate) type Notices = std::sync::Arc<dyn Fn(String) + Send + Sync>;
