//! The container's settings read back from Docker, field by field, against what was asked:
//! what must never be relaxed fails outright, the rest is reported so the caller can honour
//! `sandbox.waive`. Podman's Docker-compatible API reports two of them in its own terms
//! (capabilities and ulimits, see [`super::engine::Engine`]); everything else reads the same.

use std::path::PathBuf;

use bollard::models::{ContainerInspectResponse, DeviceRequest, HostConfig};

use super::resources::{core_limit, gpu_requests, nofile_limit};
use super::spec::{ContainerPlan, memory_limit, refused_network};
use crate::config::{Protection, SandboxConfig};
use crate::sandbox::SandboxError;
use crate::sandbox::supervised::SUPERVISOR_CAPABILITIES;

/// A protection that the created container does not have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Missing {
    pub(crate) protection: Protection,
    pub(crate) detail: String,
}

// Over 80 lines on purpose: a flat list of settings checks, read best as one list.
/// Reads the container's applied settings back, field by field. Settings that must never
/// be relaxed (privileged, host namespaces, published ports, the Docker socket) fail outright;
/// the others are returned so the caller can honour `sandbox.waive`.
pub(crate) fn verify(
    inspect: &ContainerInspectResponse,
    plan: &ContainerPlan,
    config: &SandboxConfig,
) -> Result<Vec<Missing>, SandboxError> {
    let default_host = HostConfig::default();
    let host = inspect.host_config.as_ref().unwrap_or(&default_host);
    never_relaxed(host)?;
    runtime_as_asked(host, config)?;
    devices_as_asked(host, config)?;
    super::git_mounts::verify(inspect, &plan.git_mounts)?;
    let engine = plan.engine;
    let mut missing = Vec::new();
    let mut check = |ok: bool, protection: Protection, detail: String| {
        if !ok {
            missing.push(Missing { protection, detail });
        }
    };
    let memory = memory_limit(config);
    check(
        host.network_mode.as_deref() == Some(config.network.as_str()),
        Protection::Network,
        format!(
            "network mode is {:?}, not {:?}",
            host.network_mode, config.network
        ),
    );
    check(
        host.memory == Some(memory),
        Protection::Memory,
        format!("memory limit is {:?}, not {memory}", host.memory),
    );
    let swap = memory + config.swap.bytes() as i64;
    check(
        host.memory_swap == Some(swap),
        Protection::Swap,
        format!("memory+swap limit is {:?}, not {swap}", host.memory_swap),
    );
    let nano_cpus = (config.cpus * 1e9).round() as i64;
    check(
        host.nano_cpus == Some(nano_cpus),
        Protection::Cpus,
        format!(
            "CPU limit is {:?} nano-CPUs, not {nano_cpus}",
            host.nano_cpus
        ),
    );
    check(
        host.pids_limit == Some(config.pids_limit),
        Protection::PidsLimit,
        format!(
            "pids limit is {:?}, not {}",
            host.pids_limit, config.pids_limit
        ),
    );
    let nofile = nofile_limit(config);
    check(
        host.ulimits
            .iter()
            .flatten()
            .any(|limit| engine.same_ulimit(limit, &nofile)),
        Protection::Nofile,
        format!(
            "ulimits are {:?}, not nofile {}",
            host.ulimits, config.nofile
        ),
    );
    let core = core_limit();
    check(
        host.ulimits
            .iter()
            .flatten()
            .any(|limit| engine.same_ulimit(limit, &core)),
        Protection::CoreDumps,
        format!("ulimits are {:?}, not core 0 (soft and hard)", host.ulimits),
    );
    // "host" and another container's namespace are refused outright (`never_relaxed`); a
    // "shareable" one would let any container join it and read what blocks leave there.
    check(
        engine.owns_ipc_namespace(host.ipc_mode.as_deref()),
        Protection::Ipc,
        format!(
            "the IPC namespace mode is {:?}, not \"private\"",
            host.ipc_mode
        ),
    );
    check(
        host.readonly_rootfs == Some(config.read_only_root),
        Protection::ReadOnlyRoot,
        format!("read-only root is {:?}", host.readonly_rootfs),
    );
    // A read-only root is only as read-only as the writable mounts on it. Podman (4.3, its
    // `--read-only-tmpfs`, which its compatible API always applies) adds its own tmpfs at
    // /run and /var/tmp: /var/tmp is world-writable, unsized and kept from one block to the
    // next, unlike the /tmp airlock asks for.
    let unasked = unasked_tmpfs(host, plan, config);
    check(
        !config.read_only_root || unasked.is_empty(),
        Protection::ReadOnlyRoot,
        format!(
            "writable tmpfs mounts that airlock did not ask for are on the read-only root: {}",
            unasked.join(", ")
        ),
    );
    let capabilities = engine.capabilities(host);
    check(
        capabilities == SUPERVISOR_CAPABILITIES,
        Protection::CapDrop,
        format!(
            "dropped capabilities are {:?}, added {:?}, which leaves {capabilities:?} ({engine:?}'s \
             reading), not only {SUPERVISOR_CAPABILITIES:?}",
            host.cap_drop, host.cap_add
        ),
    );
    let no_new_privileges = host
        .security_opt
        .iter()
        .flatten()
        .any(|opt| opt == "no-new-privileges" || opt == "no-new-privileges:true");
    check(
        no_new_privileges,
        Protection::NoNewPrivileges,
        format!("security options are {:?}", host.security_opt),
    );
    check(
        host.init == Some(config.init),
        Protection::Init,
        format!("init is {:?}", host.init),
    );
    let user = inspect
        .config
        .as_ref()
        .and_then(|c| c.user.clone())
        .unwrap_or_default();
    // Root is the supervisor's; what keeps blocks from being root is that it starts them as
    // the code's uid, which it confirms when it starts.
    check(
        user == "0:0" && plan.users.code.uid != 0,
        Protection::NonRoot,
        format!("the container user is {user:?}, not the supervisor's 0:0"),
    );
    Ok(missing)
}

/// The tmpfs mounts the container has beyond those its plan asks for, with their options.
fn unasked_tmpfs(host: &HostConfig, plan: &ContainerPlan, config: &SandboxConfig) -> Vec<String> {
    let asked = plan.body(config).host_config.and_then(|h| h.tmpfs);
    let asked = asked.unwrap_or_default();
    let mut unasked: Vec<String> = host
        .tmpfs
        .iter()
        .flatten()
        .filter(|(target, _)| !asked.contains_key(*target))
        .map(|(target, options)| format!("{target} ({options})"))
        .collect();
    unasked.sort();
    unasked
}

fn never_relaxed(host: &HostConfig) -> Result<(), SandboxError> {
    let refuse = |what: &str| {
        Err(SandboxError::Unavailable(format!(
            "the created container {what}; airlock refuses to run code in it"
        )))
    };
    if host.privileged == Some(true) {
        return refuse("is privileged");
    }
    if let Some(what) = host.network_mode.as_deref().and_then(refused_network) {
        return refuse(&format!("shares {what}"));
    }
    for (name, mode) in [
        ("network", &host.network_mode),
        ("pid", &host.pid_mode),
        ("ipc", &host.ipc_mode),
        ("uts", &host.uts_mode),
        ("userns", &host.userns_mode),
    ] {
        if mode.as_deref() == Some("host") {
            return refuse(&format!("shares the host's {name} namespace"));
        }
    }
    if let Some(other) = host
        .ipc_mode
        .as_deref()
        .filter(|m| m.starts_with("container:"))
    {
        return refuse(&format!(
            "shares another container's IPC namespace ({other}), which can be the host's"
        ));
    }
    if host
        .port_bindings
        .as_ref()
        .is_some_and(|ports| !ports.is_empty())
        || host.publish_all_ports == Some(true)
    {
        return refuse("publishes ports");
    }
    let sockets = super::binds::docker_sockets();
    for bind in host.binds.iter().flatten() {
        let source = PathBuf::from(bind.split(':').next().unwrap_or(""));
        if sockets.iter().any(|socket| socket.starts_with(&source)) {
            return refuse(&format!("mounts the Docker socket ({bind})"));
        }
    }
    Ok(())
}

/// The OCI runtime Docker started the container with must be the one `sandbox.runtime`
/// names: a user who asked for gVisor (`runsc`) must not silently get runc. Never waived.
fn runtime_as_asked(host: &HostConfig, config: &SandboxConfig) -> Result<(), SandboxError> {
    let Some(wanted) = config.runtime.as_deref() else {
        return Ok(());
    };
    if host.runtime.as_deref() == Some(wanted) {
        return Ok(());
    }
    Err(SandboxError::Unavailable(format!(
        "the created container runs under the runtime {:?}, not {wanted:?} (sandbox.runtime); \
         airlock refuses to run code in it",
        host.runtime.as_deref().unwrap_or("unknown")
    )))
}

/// The GPUs the container was given must be those `sandbox.gpus` asks for: no more devices,
/// and none that it did not name. Never waived.
fn devices_as_asked(host: &HostConfig, config: &SandboxConfig) -> Result<(), SandboxError> {
    let asked = config.gpus.as_deref().map(gpu_requests).unwrap_or_default();
    let seen = host.device_requests.clone().unwrap_or_default();
    let key = |request: &DeviceRequest| {
        (
            request.driver.clone().unwrap_or_default(),
            request.count.unwrap_or(0),
            request.device_ids.clone().unwrap_or_default(),
            request.capabilities.clone().unwrap_or_default(),
        )
    };
    if asked.iter().map(key).eq(seen.iter().map(key)) {
        return Ok(());
    }
    Err(SandboxError::Unavailable(format!(
        "the created container's device requests are {seen:?}, not {asked:?} \
         (sandbox.gpus = {:?}); airlock refuses to run code in it",
        config.gpus.as_deref().unwrap_or("unset")
    )))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::sandbox::docker::engine::Engine;
    use crate::sandbox::docker::spec::Users;

    /// The plan for `config` on `engine`, with the directory its workspace names.
    pub(super) fn plan_for(
        config: &SandboxConfig,
        engine: Engine,
    ) -> (tempfile::TempDir, ContainerPlan) {
        let dir = tempfile::tempdir().expect("tempdir");
        let plan = ContainerPlan::new(
            "s",
            "img",
            config,
            "KEY",
            Users::resolve("auto").expect("users"),
            crate::sandbox::docker::spec::Mounts {
                workspace: dir.path().to_path_buf(),
                supervisor: Path::new("/bin/sh"),
                storage: crate::sandbox::docker::spec::Storage::Host,
            },
            engine,
        )
        .expect("plan");
        (dir, plan)
    }

    /// What Docker reports for a container made from `body`, as far as verify reads it.
    fn inspect_of(body: &bollard::models::ContainerCreateBody) -> ContainerInspectResponse {
        ContainerInspectResponse {
            host_config: body.host_config.clone(),
            config: Some(bollard::models::ContainerConfig {
                user: body.user.clone(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn verification_reports_each_missing_protection() {
        let config = SandboxConfig::default();
        let (_dir, plan) = plan_for(&config, Engine::Docker);
        let body = plan.body(&config);
        let mut inspect = inspect_of(&body);
        assert_eq!(verify(&inspect, &plan, &config).expect("ok"), vec![]);
        if let Some(host) = inspect.host_config.as_mut() {
            host.memory_swap = Some(-1);
            host.security_opt = None;
        }
        let missing: Vec<Protection> = verify(&inspect, &plan, &config)
            .expect("checked")
            .into_iter()
            .map(|m| m.protection)
            .collect();
        assert_eq!(missing, vec![Protection::Swap, Protection::NoNewPrivileges]);
        if let Some(host) = inspect.host_config.as_mut() {
            host.cap_add = Some(vec!["SYS_ADMIN".into()]);
        }
        let missing = verify(&inspect, &plan, &config).expect("checked");
        assert!(missing.iter().any(|m| m.protection == Protection::CapDrop));
        if let Some(host) = inspect.host_config.as_mut() {
            host.network_mode = Some("container:0123abcd".into());
        }
        let err = verify(&inspect, &plan, &config).unwrap_err();
        assert!(err.to_string().contains("another container"), "{err}");
        if let Some(host) = inspect.host_config.as_mut() {
            host.network_mode = Some("none".into());
            host.privileged = Some(true);
        }
        assert!(verify(&inspect, &plan, &config).is_err());
    }

    #[test]
    fn core_dumps_and_a_joinable_ipc_namespace_are_missing_protections() {
        let config = SandboxConfig::default();
        let (_dir, plan) = plan_for(&config, Engine::Docker);
        let body = plan.body(&config);
        let asked = body.host_config.clone().unwrap_or_default();
        assert_eq!(asked.ipc_mode.as_deref(), Some("private"));
        let missing_of = |change: &dyn Fn(&mut HostConfig)| {
            let mut inspect = inspect_of(&body);
            if let Some(host) = inspect.host_config.as_mut() {
                change(host);
            }
            verify(&inspect, &plan, &config).map(|found| {
                found
                    .into_iter()
                    .map(|m| m.protection)
                    .collect::<Vec<Protection>>()
            })
        };
        // A daemon that dropped the core limit, or raised its hard half.
        let without_core = missing_of(&|host| {
            if let Some(limits) = host.ulimits.as_mut() {
                limits.retain(|l| l.name.as_deref() != Some("core"));
            }
        });
        assert_eq!(without_core.expect("checked"), vec![Protection::CoreDumps]);
        let raisable = missing_of(&|host| {
            for limit in host.ulimits.iter_mut().flatten() {
                if limit.name.as_deref() == Some("core") {
                    limit.hard = Some(-1);
                }
            }
        });
        assert_eq!(raisable.expect("checked"), vec![Protection::CoreDumps]);
        for (mode, missing) in [
            (Some("shareable"), true),
            (None, true),
            (Some("private"), false),
        ] {
            let found = missing_of(&|host| host.ipc_mode = mode.map(String::from));
            let expected = if missing {
                vec![Protection::Ipc]
            } else {
                vec![]
            };
            assert_eq!(found.expect("checked"), expected, "{mode:?}");
        }
        // Podman states its own namespace as "shareable", whatever was asked.
        assert!(Engine::Podman.owns_ipc_namespace(Some("shareable")));
        assert!(!Engine::Podman.owns_ipc_namespace(None));
        for mode in ["host", "container:0123abcd"] {
            let err = missing_of(&|host| host.ipc_mode = Some(mode.into())).unwrap_err();
            let err = err.to_string();
            assert!(
                err.to_lowercase().contains("ipc namespace"),
                "{mode}: {err}"
            );
        }
    }

    #[test]
    fn gpus_other_than_asked_are_refused() {
        let config = SandboxConfig {
            gpus: Some("device=0,1".into()),
            ..SandboxConfig::default()
        };
        let (_dir, plan) = plan_for(&config, Engine::Docker);
        let body = plan.body(&config);
        let mut inspect = inspect_of(&body);
        // Docker reports an unset count as 0.
        if let Some(request) = inspect
            .host_config
            .as_mut()
            .and_then(|h| h.device_requests.as_mut())
            .and_then(|requests| requests.first_mut())
        {
            request.count = Some(0);
        }
        assert_eq!(verify(&inspect, &plan, &config).expect("ok"), vec![]);
        // Every GPU instead of the two named, or a GPU nobody asked for.
        let mut all = inspect.clone();
        if let Some(host) = all.host_config.as_mut() {
            host.device_requests = Some(gpu_requests("all"));
        }
        let err = verify(&all, &plan, &config).unwrap_err().to_string();
        assert!(err.contains("device=0,1"), "{err}");
        let unasked = SandboxConfig::default();
        let err = verify(&all, &plan, &unasked).unwrap_err().to_string();
        assert!(err.contains("unset"), "{err}");
    }

    #[test]
    fn a_container_under_another_runtime_than_asked_is_refused() {
        let config = SandboxConfig {
            runtime: Some("runsc".into()),
            ..SandboxConfig::default()
        };
        let (_dir, plan) = plan_for(&config, Engine::Docker);
        let body = plan.body(&config);
        assert_eq!(
            body.host_config.as_ref().and_then(|h| h.runtime.as_deref()),
            Some("runsc")
        );
        let mut inspect = inspect_of(&body);
        assert_eq!(verify(&inspect, &plan, &config).expect("ok"), vec![]);
        // What a daemon that ignored the request, or defaulted it, would report.
        for other in [Some("runc"), None] {
            if let Some(host) = inspect.host_config.as_mut() {
                host.runtime = other.map(String::from);
            }
            let err = verify(&inspect, &plan, &config).unwrap_err().to_string();
            assert!(
                err.contains("not \"runsc\"") && err.contains(other.unwrap_or("unknown")),
                "{err}"
            );
        }
        // Nothing asked, nothing checked: Docker's default runtime is the user's choice.
        let default = SandboxConfig::default();
        assert_eq!(verify(&inspect, &plan, &default).expect("ok"), vec![]);
    }
}

#[cfg(test)]
mod podman_tests {
    use std::collections::HashMap;

    use bollard::models::{ContainerConfig, ResourcesUlimits};

    use super::tests::plan_for;
    use super::*;
    use crate::sandbox::docker::engine::Engine;

    /// What Podman 4.3's compatible API reported for a container created from `plan`'s body,
    /// as read from a real one: capabilities as the difference from the OCI default set,
    /// ulimits named after the kernel's resources, a tmpfs of its own, its marker variable.
    fn podman_inspect(plan: &ContainerPlan, config: &SandboxConfig) -> ContainerInspectResponse {
        let body = plan.body(config);
        let mut host = body.host_config.unwrap_or_default();
        host.cap_add = Some(vec![]);
        host.cap_drop = Some(
            [
                "AUDIT_WRITE",
                "FSETID",
                "MKNOD",
                "NET_BIND_SERVICE",
                "NET_RAW",
                "SETFCAP",
                "SETPCAP",
                "SYS_CHROOT",
            ]
            .map(String::from)
            .to_vec(),
        );
        let limit = |name: &str, value: i64| ResourcesUlimits {
            name: Some(name.into()),
            soft: Some(value),
            hard: Some(value),
        };
        let nofile = i64::try_from(config.nofile).unwrap_or(i64::MAX);
        host.ulimits = Some(vec![
            limit("RLIMIT_NOFILE", nofile),
            limit("RLIMIT_NPROC", 1_048_576),
            limit("RLIMIT_CORE", 0),
        ]);
        // What Podman does on a read-only root where the plan asks for no tmpfs of its own.
        let mut tmpfs = host.tmpfs.unwrap_or_default();
        tmpfs.insert("/srv".into(), "rw,rprivate,nosuid,nodev,tmpcopyup".into());
        host.tmpfs = Some(tmpfs);
        ContainerInspectResponse {
            host_config: Some(host),
            config: Some(ContainerConfig {
                user: body.user,
                env: Some(vec!["container=podman".into(), "HOME=/tmp".into()]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn missing(inspect: &ContainerInspectResponse, plan: &ContainerPlan) -> Vec<Protection> {
        let config = SandboxConfig::default();
        let found = verify(inspect, plan, &config).expect("checked");
        found.into_iter().map(|m| m.protection).collect()
    }

    fn host(inspect: &mut ContainerInspectResponse) -> &mut HostConfig {
        inspect.host_config.get_or_insert_with(HostConfig::default)
    }

    #[test]
    fn podmans_report_counts_only_what_it_shows() {
        let config = SandboxConfig::default();
        let (_dir, plan) = plan_for(&config, Engine::Podman);
        let reported = podman_inspect(&plan, &config);
        // A tmpfs of its own is a writable place on the read-only root.
        assert_eq!(missing(&reported, &plan), vec![Protection::ReadOnlyRoot]);
        let mut without_tmpfs = reported.clone();
        let asked: HashMap<String, String> = plan
            .body(&config)
            .host_config
            .and_then(|h| h.tmpfs)
            .unwrap_or_default();
        host(&mut without_tmpfs).tmpfs = Some(asked);
        assert_eq!(missing(&without_tmpfs, &plan), vec![]);

        // One capability Podman did not say it dropped is one the container has.
        let mut mknod = without_tmpfs.clone();
        if let Some(dropped) = host(&mut mknod).cap_drop.as_mut() {
            dropped.retain(|cap| cap != "MKNOD");
        }
        assert_eq!(missing(&mknod, &plan), vec![Protection::CapDrop]);
        let mut sys_admin = without_tmpfs.clone();
        host(&mut sys_admin).cap_add = Some(vec!["CAP_SYS_ADMIN".into()]);
        let found = verify(&sys_admin, &plan, &config).expect("checked");
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].detail.contains("SYS_ADMIN"), "{}", found[0].detail);
        let mut nproc_only = without_tmpfs.clone();
        if let Some(limits) = host(&mut nproc_only).ulimits.as_mut() {
            limits.retain(|l| l.name.as_deref() != Some("RLIMIT_NOFILE"));
        }
        assert_eq!(missing(&nproc_only, &plan), vec![Protection::Nofile]);

        // The same report from an engine that said it is Docker is read by Docker's rules,
        // and fails them.
        let (_docker_dir, docker_plan) = plan_for(&config, Engine::Docker);
        assert_eq!(
            missing(&without_tmpfs, &docker_plan),
            vec![
                Protection::Nofile,
                Protection::CoreDumps,
                Protection::CapDrop
            ]
        );
    }
}
