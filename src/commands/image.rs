//! `airlock image build|status`: the sandbox image, prepared and described.

use std::process::ExitCode;

use crate::config::Config;

/// `airlock image build [--force]`.
pub async fn build(_config: &Config, _force: bool) -> anyhow::Result<ExitCode> {
    anyhow::bail!("airlock image build is being written")
}

/// `airlock image status`.
pub async fn status(_config: &Config) -> anyhow::Result<ExitCode> {
    anyhow::bail!("airlock image status is being written")
}
