//! Settings that loosen the sandbox below its defaults. Each is allowed, but never silently:
//! airlock says so when a session's sandbox starts, on stderr, in the status bar and in the
//! history.

use super::SandboxConfig;

impl SandboxConfig {
    /// Whether /workspace is the capped tmpfs mirrored to the workspace directory (a
    /// read-only workspace, or `workspace_limit = 0`, is the directory itself).
    pub(crate) fn workspace_is_bounded(&self) -> bool {
        self.workspace_limit.bytes() > 0 && !self.workspace_read_only
    }

    /// One short phrase per loosened setting; empty for the defaults.
    pub(crate) fn weakenings(&self) -> Vec<String> {
        let mut found = Vec::new();
        if !self.read_only_root {
            found.push("writable root filesystem (read_only_root = false)".to_string());
        }
        if self.network != "none" {
            found.push(format!("network {:?}", self.network));
        }
        if self.tmp_size.bytes() == 0 {
            found.push("unbounded /tmp (tmp_size = 0)".to_string());
        }
        if !self.workspace_is_bounded() && !self.workspace_read_only {
            found.push("unbounded workspace (workspace_limit = 0)".to_string());
        }
        if super::parse_user(&self.user).is_some_and(|(_, gid)| gid == 0) {
            found.push(format!("root group (user = {:?})", self.user));
        }
        if !self.extra_volumes.is_empty() {
            found.push(format!("extra volumes {:?}", self.extra_volumes));
        }
        for waived in &self.waive {
            found.push(format!("waived protection {}", waived.name()));
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ByteSize, Protection};

    #[test]
    fn every_loosened_setting_is_named_and_the_defaults_none() {
        assert!(SandboxConfig::default().weakenings().is_empty());
        let loose = SandboxConfig {
            read_only_root: false,
            network: "bridge".into(),
            tmp_size: ByteSize(0),
            user: "1000:0".into(),
            workspace_limit: ByteSize(0),
            waive: vec![Protection::Swap],
            ..SandboxConfig::default()
        };
        let found = loose.weakenings().join("; ");
        for needle in [
            "read_only_root",
            "bridge",
            "tmp_size",
            "root group",
            "swap",
            "workspace_limit",
        ] {
            assert!(found.contains(needle), "{needle}: {found}");
        }
    }
}
