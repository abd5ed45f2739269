//! How failures map to exit statuses: 2 for bad usage, 125 when airlock itself cannot work.

use std::process::ExitCode;

/// The command line asked for something that cannot be done as asked.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct UsageError(pub String);

pub(crate) const EXIT_USAGE: u8 = 2;
pub(crate) const EXIT_TIMEOUT: u8 = 124;
pub const EXIT_UNAVAILABLE: u8 = 125;
pub(crate) const EXIT_INTERRUPTED: u8 = 130;

/// The exit status for an error that ended a command.
pub fn exit_code_for(err: &anyhow::Error) -> ExitCode {
    if err.downcast_ref::<UsageError>().is_some() {
        ExitCode::from(EXIT_USAGE)
    } else {
        ExitCode::from(EXIT_UNAVAILABLE)
    }
}

pub(crate) fn usage(message: impl Into<String>) -> anyhow::Error {
    UsageError(message.into()).into()
}
