//! The ranges numeric settings must fall in. Past them, durations overflow when added to a
//! clock and sizes wrap when Docker is handed them as signed numbers: a setting out of range
//! is named and refused before anything starts, so no value can make airlock panic.

use anyhow::bail;

use super::Config;

const DAY: u64 = 24 * 60 * 60;
const TIB: u64 = 1 << 40;

/// The reply's token limit, and the context window it must leave room in.
fn check_tokens(model: &super::ModelConfig) -> anyhow::Result<()> {
    let reply = u64::from(model.max_tokens);
    in_range("model.max_tokens", reply, 0, 10_000_000)?;
    let bytes = model.max_reply_bytes;
    if !(1 << 10..=1 << 30).contains(&bytes.bytes()) {
        bail!("model.max_reply_bytes = {bytes} is out of range: use 1KiB to 1GiB");
    }
    let Some(window) = model.context_window else {
        return Ok(());
    };
    in_range("model.context_window", window, 256, 100_000_000)?;
    if reply >= window {
        bail!(
            "model.max_tokens = {reply} leaves nothing of model.context_window = {window} for \
             the conversation; make max_tokens smaller than the window (a quarter of it is a \
             good start)"
        );
    }
    Ok(())
}

/// Checks every numeric setting against its range.
pub(super) fn check(config: &Config) -> anyhow::Result<()> {
    let sandbox = &config.sandbox;
    let seconds = [
        ("sandbox.timeout_secs", sandbox.timeout_secs, 1, 7 * DAY),
        ("sandbox.kill_grace_secs", sandbox.kill_grace_secs, 0, 3600),
        (
            "model.connect_timeout_secs",
            config.model.connect_timeout_secs,
            1,
            DAY,
        ),
        (
            "model.idle_timeout_secs",
            config.model.idle_timeout_secs,
            1,
            DAY,
        ),
        (
            "approval.approver_timeout_secs",
            config.approval.approver_timeout_secs,
            1,
            DAY,
        ),
        ("history.keep_days", config.history.keep_days, 0, 100 * 365),
    ];
    for (key, value, low, high) in seconds {
        in_range(key, value, low, high)?;
    }
    in_range("sandbox.nofile", sandbox.nofile, 16, 1 << 20)?;
    in_range(
        "sandbox.workspace_inodes",
        sandbox.workspace_inodes,
        16,
        1 << 30,
    )?;
    in_range(
        "model.max_retries",
        u64::from(config.model.max_retries),
        0,
        100,
    )?;
    in_range("ui.log_lines", config.ui.log_lines as u64, 1, 10_000_000)?;
    check_tokens(&config.model)?;
    if !(1..=4_194_304).contains(&sandbox.pids_limit) {
        bail!(
            "sandbox.pids_limit = {} is out of range (at most 4194304)",
            sandbox.pids_limit
        );
    }
    if sandbox.cpus > 1024.0 {
        bail!("sandbox.cpus = {} is more than 1024 CPUs", sandbox.cpus);
    }
    let sizes = [
        ("sandbox.memory", sandbox.memory),
        ("sandbox.swap", sandbox.swap),
        ("sandbox.tmp_size", sandbox.tmp_size),
        ("sandbox.shm_size", sandbox.shm_size),
        ("sandbox.workspace_limit", sandbox.workspace_limit),
        ("sandbox.output_limit", sandbox.output_limit),
        ("sandbox.model_output_limit", sandbox.model_output_limit),
    ];
    for (key, size) in sizes {
        if size.bytes() > TIB {
            bail!("{key} = {size} is more than 1TiB");
        }
    }
    Ok(())
}

fn in_range(key: &str, value: u64, low: u64, high: u64) -> anyhow::Result<()> {
    if (low..=high).contains(&value) {
        Ok(())
    } else {
        bail!("{key} = {value} is out of range: use {low} to {high}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(change: impl FnOnce(&mut Config)) -> String {
        let mut config = Config::default();
        change(&mut config);
        check(&config).expect_err("out of range").to_string()
    }

    #[test]
    fn settings_past_their_range_are_named_and_refused() {
        assert!(check(&Config::default()).is_ok());
        let err = refused(|c| c.sandbox.timeout_secs = u64::MAX);
        assert!(
            err.contains("sandbox.timeout_secs") && err.contains("604800"),
            "{err}"
        );
        let err = refused(|c| c.model.context_window = Some(4096));
        assert!(
            err.contains("model.max_tokens = 4096") && err.contains("smaller"),
            "{err}"
        );
        let err = refused(|c| c.model.max_reply_bytes = super::super::ByteSize(0));
        assert!(err.contains("model.max_reply_bytes = 0B"), "{err}");
        let err = refused(|c| c.model.idle_timeout_secs = u64::MAX);
        assert!(err.contains("model.idle_timeout_secs"), "{err}");
        let err = refused(|c| c.sandbox.nofile = 3);
        assert!(err.contains("sandbox.nofile"), "{err}");
        let err = refused(|c| c.sandbox.memory = super::super::ByteSize(u64::MAX));
        assert!(err.contains("sandbox.memory"), "{err}");
        let err = refused(|c| c.sandbox.pids_limit = i64::MAX);
        assert!(err.contains("pids_limit"), "{err}");
    }
}
