//! What `airlock doctor` reports, line by line, and the probe's answers its checks read:
//! shared by the doctor and its checks for gVisor and for what outlives a block.

use std::collections::BTreeMap;

/// The checks' lines as they are printed, and how many failed or could not be made.
#[derive(Default)]
pub(crate) struct Report {
    pub(super) failures: usize,
    /// Checks that cannot be made where the probe ran (gVisor), each said so.
    pub(super) unverifiable: usize,
}

impl Report {
    #[cfg(test)]
    pub(crate) fn failures(&self) -> usize {
        self.failures
    }

    pub(crate) fn line(&mut self, ok: bool, what: &str, detail: impl AsRef<str>) {
        if !ok {
            self.failures += 1;
        }
        // Details quote the daemon, the image and the probe's output.
        println!(
            "{} {what}: {}",
            if ok { "ok  " } else { "FAIL" },
            crate::output::sanitize::for_person(detail.as_ref())
        );
    }

    /// A check that cannot be made from inside the sandbox: neither passed nor failed, and
    /// never silent; the detail says why and what enforces it instead.
    pub(crate) fn unverifiable(&mut self, what: &str, detail: impl AsRef<str>) {
        self.unverifiable += 1;
        println!(
            "n/a  {what}: {}",
            crate::output::sanitize::for_person(detail.as_ref())
        );
    }
}

/// What the probe printed: its `key=value` lines.
pub(crate) struct Probe(BTreeMap<String, String>);

impl Probe {
    pub(crate) fn parse(output: &str) -> Self {
        let values = output
            .lines()
            .filter_map(|line| line.split_once('='))
            .map(|(key, value)| (key.trim().to_string(), value.trim().to_string()))
            .collect();
        Self(values)
    }

    /// A value, or `unknown` when the probe printed none.
    pub(crate) fn get(&self, key: &str) -> &str {
        self.0.get(key).map(String::as_str).unwrap_or("unknown")
    }
}

/// Who code runs as: not root, and with no capability, on every runtime.
pub(crate) fn check_identity(report: &mut Report, probe: &Probe) {
    let uid = probe.get("uid");
    report.line(
        uid != "0" && uid != "unknown",
        "non-root",
        format!("code runs as uid {uid}"),
    );
    report.line(
        probe.get("CapEff").trim_start_matches('0').is_empty(),
        "capabilities",
        format!("CapEff {}", probe.get("CapEff")),
    );
}
