//! The container's ulimits and GPU requests, as asked of Docker (the read-back compares
//! what it reports with these).

use bollard::models::{DeviceRequest, ResourcesUlimits};

use crate::config::SandboxConfig;

/// Open files per process: `sandbox.nofile`, soft and hard.
pub(super) fn nofile_limit(config: &SandboxConfig) -> ResourcesUlimits {
    let limit = i64::try_from(config.nofile).unwrap_or(i64::MAX);
    ResourcesUlimits {
        name: Some("nofile".into()),
        soft: Some(limit),
        hard: Some(limit),
    }
}

/// No core dumps, soft and hard: no block can raise it, so a crash never writes a core file
/// nor hands one to a host program the kernel's core_pattern names (such a program usually
/// honours the limit, which the kernel passes on as `%c`).
pub(super) fn core_limit() -> ResourcesUlimits {
    ResourcesUlimits {
        name: Some("core".into()),
        soft: Some(0),
        hard: Some(0),
    }
}

pub(super) fn ulimits(config: &SandboxConfig) -> Vec<ResourcesUlimits> {
    vec![nofile_limit(config), core_limit()]
}

pub(super) fn gpu_requests(gpus: &str) -> Vec<DeviceRequest> {
    let count = if gpus.eq_ignore_ascii_case("all") {
        -1
    } else {
        gpus.parse().unwrap_or(1)
    };
    vec![DeviceRequest {
        driver: Some(String::new()),
        count: Some(count),
        capabilities: Some(vec![vec!["gpu".to_string()]]),
        ..Default::default()
    }]
}
