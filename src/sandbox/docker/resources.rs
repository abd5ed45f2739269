//! The container's ulimits and GPU requests, as asked of Docker (the read-back compares
//! what it reports with these).

use bollard::models::{DeviceRequest, ResourcesUlimits};

use crate::config::SandboxConfig;
use crate::config::gpus::Gpus;

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

/// The device requests `sandbox.gpus` makes, as Docker's `--gpus` would: every GPU (count
/// -1), a count, or devices by id. A value the config check refused asks for none.
pub(super) fn gpu_requests(gpus: &str) -> Vec<DeviceRequest> {
    let Ok(gpus) = Gpus::parse(gpus) else {
        return Vec::new();
    };
    let (count, device_ids) = match gpus {
        Gpus::All => (Some(-1), None),
        Gpus::Count(count) => (Some(i64::from(count)), None),
        Gpus::Devices(ids) => (None, Some(ids)),
    };
    vec![DeviceRequest {
        driver: Some(String::new()),
        count,
        device_ids,
        capabilities: Some(vec![vec!["gpu".to_string()]]),
        ..Default::default()
    }]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_form_of_gpus_becomes_the_request_dockers_cli_makes() {
        let only = |text: &str| {
            let mut requests = gpu_requests(text);
            assert_eq!(requests.len(), 1, "{text}");
            requests.remove(0)
        };
        let all = only("all");
        assert_eq!((all.count, all.device_ids), (Some(-1), None));
        let two = only("2");
        assert_eq!((two.count, two.device_ids), (Some(2), None));
        let devices = only("device=0,1");
        assert_eq!(
            (devices.count, devices.device_ids),
            (None, Some(vec!["0".to_string(), "1".to_string()]))
        );
        assert_eq!(devices.capabilities, Some(vec![vec!["gpu".to_string()]]));
        // What the config check refuses never silently becomes a GPU.
        assert_eq!(gpu_requests("0,1"), Vec::new());
    }
}
