//! The in-container supervisor: one process per session, under another uid than the code,
//! that starts every block, owns its pipes, takes its status from waitpid and sweeps its
//! processes away after it. It speaks to airlock only in [`frame`]s, so nothing a block
//! prints can pass for a status.
//!
//! Threat model: block code is hostile and runs as its own non-root uid with no capability.
//! On hosts without Yama or AppArmor a process can read /proc/PID/mem of every process of its
//! own uid; so the supervisor must not share it. It runs as root inside the container, keeps
//! only what it needs to start and kill processes of the code's uid, and the code never
//! inherits anything of it but the pipes it reads.

pub(crate) mod block;
mod confinement;
pub(crate) mod font_cache;
pub mod frame;
mod launch;
pub(crate) mod mirror;
mod pipes;
mod program_path;
pub(crate) mod reap;
mod seccomp;
pub(crate) mod serve;
mod warm;
