//! airlock: supervise an LLM coding session. Every code block the model writes is shown to
//! the operator, and only approved code runs, in a hardened Docker container.

pub mod approver;
pub mod cli;
pub(crate) mod clock;
pub(crate) mod commands;
pub mod config;
pub mod engine;
pub mod error;
pub(crate) mod files;
pub mod ids;
pub mod model;
pub mod output;
pub mod owner;
pub mod protocol;
pub(crate) mod run_record;
pub mod sandbox;
pub mod store;
pub mod supervisor;
pub mod tui;
pub(crate) mod view;
pub mod wiring;
