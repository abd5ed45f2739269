//! `airlock doctor`: is Docker reachable, is the image there, and are the sandbox limits
//! really enforced? The last is read from inside a probe container, from the kernel's own
//! cgroup and process files, not from what Docker says it applied.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use bollard::Docker;
use bollard::models::SystemInfo;

use super::doctor_containment as containment;
use super::doctor_gvisor as gvisor;
use super::doctor_report::{Probe, Report, check_identity};
use crate::config::{ByteSize, Config, SandboxConfig};
use crate::engine::Language;
use crate::error::EXIT_UNAVAILABLE;
use crate::protocol::ExecResult;
use crate::sandbox::docker::endpoint::Endpoint;
use crate::sandbox::docker::{self, DockerSandbox, SessionRequest, image};
use crate::sandbox::workspace::remove_session_workspace;
use crate::sandbox::{BlockSpec, Sandbox, SandboxError};

/// Prints `key=value` lines about the environment the code sees.
const PROBE: &str = r#"
read_first() { for f in "$@"; do [ -r "$f" ] && { head -n1 "$f"; return; }; done; echo unknown; }
echo "uid=$(id -u)"
grep -E '^(CapEff|NoNewPrivs|Seccomp|Seccomp_filters):' /proc/self/status | tr -d ' \t' | sed 's/:/=/'
echo "nofile=$(ulimit -n)"
echo "memory=$(read_first /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/memory.max)"
echo "memory_swap=$(read_first /sys/fs/cgroup/memory/memory.memsw.limit_in_bytes /sys/fs/cgroup/memory.swap.max)"
echo "pids=$(read_first /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/pids.max)"
echo "cpu_quota=$(read_first /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu.max)"
echo "cpu_period=$(read_first /sys/fs/cgroup/cpu/cpu.cfs_period_us)"
if touch /airlock-probe 2>/dev/null; then echo root_writable=yes; else echo root_writable=no; fi
if touch /workspace/.airlock-probe 2>/dev/null; then rm -f /workspace/.airlock-probe; echo workspace_writable=yes; else echo workspace_writable=no; fi
echo "workspace_room=$(stat -f -c '%b %S %c' /workspace 2>/dev/null || echo unknown)"
[ -r /run/airlock-host ] && echo host_workspace=reachable || echo host_workspace=unreachable
echo "interfaces=$(ls /sys/class/net | tr '\n' ' ')"
if [ -e /var/run/docker.sock ] || [ -e /run/docker.sock ]; then echo docker_socket=present; else echo docker_socket=absent; fi
"#;

pub async fn run(config: &Config) -> anyhow::Result<ExitCode> {
    let mut report = Report::default();
    let connection = match docker::connect(&config.sandbox).await {
        Ok(connection) => connection,
        Err(err) => {
            report.line(false, "docker", err.to_string());
            return Ok(ExitCode::from(EXIT_UNAVAILABLE));
        }
    };
    describe_endpoint(&mut report, connection.endpoint(), &config.sandbox);
    let local_engine = connection.endpoint().is_local();
    let docker = connection.client();
    check_engine(&mut report, docker).await;
    check_image(&mut report, docker, &config.sandbox).await;
    let info = docker.info().await.ok();
    let request = crate::wiring::session_request(config, "doctor")?;
    let probe_workspace = ProbeWorkspace::of(config, &request);
    let started = DockerSandbox::start_reporting(
        connection.clone(),
        request,
        super::stderr_notices(),
        super::stderr_progress(),
    );
    let mut sandbox = match started.await {
        Ok(sandbox) => sandbox,
        Err(err) => {
            report.line(false, "sandbox", err.to_string());
            probe_workspace.remove();
            check_runtimes(&mut report, info.as_ref(), &config.sandbox, None);
            return Ok(ExitCode::from(EXIT_UNAVAILABLE));
        }
    };
    report.line(
        true,
        "sandbox",
        format!("hardened container started from {}", sandbox.image()),
    );
    let probe = run_probe(&mut sandbox).await;
    sandbox.shutdown().await;
    probe_workspace.remove();
    let probe = match probe {
        Ok(result) => {
            let probe = Probe::parse(&result.output);
            check_limits(&mut report, config, &probe);
            containment::check(&mut report, &probe, local_engine);
            Some(probe)
        }
        Err(err) => {
            report.line(false, "probe", err.to_string());
            None
        }
    };
    check_runtimes(&mut report, info.as_ref(), &config.sandbox, probe.as_ref());
    if report.failures > 0 {
        println!("{} check(s) failed", report.failures);
        return Ok(ExitCode::from(EXIT_UNAVAILABLE));
    }
    if report.unverifiable > 0 {
        println!(
            "all checks that could be made passed; {} could not be made inside gVisor (n/a)",
            report.unverifiable
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!("all checks passed");
    Ok(ExitCode::SUCCESS)
}

/// The Docker engine's version and API, and its runc.
async fn check_engine(report: &mut Report, docker: &Docker) {
    let version = docker.version().await.ok();
    let info = docker.info().await.ok();
    report.line(
        true,
        "docker",
        format!(
            "reachable, engine {}, API {} (client speaks {})",
            version
                .as_ref()
                .and_then(|v| v.version.clone())
                .unwrap_or_else(|| "?".into()),
            version
                .as_ref()
                .and_then(|v| v.api_version.clone())
                .unwrap_or_else(|| "?".into()),
            docker.client_version()
        ),
    );
    report.line(true, "engine", engine_identity(version.as_ref()));
    // Podman has no runc commit to tell; its version API names the OCI runtime instead.
    let runc = info
        .as_ref()
        .and_then(|i| i.runc_commit.as_ref())
        .and_then(|c| c.id.clone())
        .filter(|id| !id.is_empty())
        .or_else(|| {
            let components = version.as_ref()?.components.as_ref()?;
            let runtime = components
                .iter()
                .find(|c| c.name.starts_with("OCI Runtime"))?;
            Some(
                runtime
                    .version
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_string(),
            )
        });
    report.line(true, "runc", runc.unwrap_or_else(|| "unknown".into()));
}

/// The OCI runtimes the daemon offers, the one `sandbox.runtime` asks for among them, and
/// whether gVisor's runsc works: known when this doctor's probe ran in gVisor's kernel, or
/// did not start or did not run there although it was asked to.
fn check_runtimes(
    report: &mut Report,
    info: Option<&SystemInfo>,
    sandbox: &SandboxConfig,
    probe: Option<&Probe>,
) {
    let default = info
        .and_then(|i| i.default_runtime.clone())
        .unwrap_or_else(|| "runc".into());
    let mut names: Vec<String> = info
        .and_then(|i| i.runtimes.as_ref())
        .map(|runtimes| runtimes.keys().cloned().collect())
        .unwrap_or_default();
    names.sort();
    let listed = names
        .iter()
        .map(|name| match name == &default {
            true => format!("{name} (default)"),
            false => name.clone(),
        })
        .collect::<Vec<_>>()
        .join(", ");
    let asked = sandbox.runtime.as_deref();
    let used = asked.unwrap_or(&default);
    let known = names.iter().any(|name| name == used);
    report.line(
        info.is_some() && known,
        "runtimes",
        match (info.is_some(), known) {
            (false, _) => "unknown: the daemon's info could not be read".to_string(),
            (true, true) => format!("{listed}; the sandbox uses {used}"),
            (true, false) => format!(
                "{listed}; sandbox.runtime = {used:?} is not one of them{}",
                if used == "runsc" {
                    " (scripts/runsc-runtime installs gVisor's runsc and registers it)"
                } else {
                    ""
                }
            ),
        },
    );
    let gvisor_ran = probe.is_some_and(gvisor::ran_under_gvisor);
    if !names.iter().any(|name| name == "runsc") && !gvisor_ran {
        return;
    }
    match (used == "runsc", probe) {
        (_, Some(probe)) if gvisor_ran => {
            report.line(true, "runsc", format!("works: {}", gvisor::evidence(probe)));
        }
        (true, Some(probe)) => report.line(
            false,
            "runsc",
            format!(
                "the probe asked for runsc did not run in gVisor's kernel (dmesg: {};                  /proc/version: {})",
                probe.get("dmesg"),
                probe.get("kernel")
            ),
        ),
        (true, None) => report.line(
            false,
            "runsc",
            "registered, but the sandbox did not run under it (see above)",
        ),
        (false, _) => report.line(
            true,
            "runsc",
            format!(
                "registered, not tried: this probe ran under {used};                  `airlock -c sandbox.runtime=runsc doctor` runs it under gVisor"
            ),
        ),
    }
}

/// Which engine answers, from the version API's components (Docker's is "Engine", Podman's
/// "Podman Engine") and platform: Podman's compatible API otherwise answers as Docker does.
fn engine_identity(version: Option<&bollard::models::SystemVersion>) -> String {
    let Some(version) = version else {
        return "unknown: the version API did not answer".into();
    };
    let components = version.components.iter().flatten();
    let names: Vec<String> = components.clone().map(|c| c.name.clone()).collect();
    let platform = version.platform.as_ref().map_or("", |p| p.name.as_str());
    let engine = components
        .clone()
        .find(|c| c.name == "Podman Engine")
        .map(|c| ("Podman", c))
        .or_else(|| {
            components
                .clone()
                .find(|c| c.name == "Engine")
                .map(|c| ("Docker", c))
        });
    let seen = format!("components {names:?}, platform {platform:?}");
    match engine {
        Some((engine, component)) => format!("{engine} {} ({seen})", component.version),
        None => format!("not identified ({seen})"),
    }
}

/// Where the engine is and how the workspace reaches it: a person must know where their
/// code runs.
fn describe_endpoint(report: &mut Report, endpoint: &Endpoint, sandbox: &SandboxConfig) {
    let workspace = if endpoint.uses_volume(sandbox.workspace_mode) {
        "the workspace is a volume there, copied back to the host after every run"
    } else {
        "the workspace is bind-mounted from this machine"
    };
    report.line(
        true,
        "engine",
        format!("{}; {workspace}", endpoint.describe()),
    );
}

/// Whether the sandbox image is there; a missing one is no failure, it is pulled or built.
async fn check_image(report: &mut Report, docker: &Docker, sandbox: &SandboxConfig) {
    match image::inspect(docker, &sandbox.image).await {
        Some(found) => report.line(true, "image", found.to_string()),
        None => {
            let offline = image::inspect(docker, &sandbox.offline_image).await;
            let detail = match offline {
                Some(offline) => format!(
                    "{} is not present (it would be pulled on first use); {offline} is available offline",
                    sandbox.image
                ),
                None => format!(
                    "{} is not present and would be pulled on first use; {} is not built yet (airlock builds it when needed, or `airlock image build` now)",
                    sandbox.image, sandbox.offline_image
                ),
            };
            report.line(true, "image", detail);
        }
    }
}

/// Runs [`PROBE`] in the sandbox, as any block runs.
async fn run_probe(sandbox: &mut DockerSandbox) -> Result<ExecResult, SandboxError> {
    let shell = Language::sh();
    let block = BlockSpec {
        language: &shell,
        code: &format!("{PROBE}{}{}", gvisor::PROBE, containment::PROBE),
        timeout: Duration::from_secs(20),
        cancel: None,
    };
    sandbox.run_block(block, &mut |_, _| {}).await
}

/// The probe session's own workspace, which nothing needs once the probe is done; a
/// user-named `sandbox.workspace` is theirs and stays.
struct ProbeWorkspace {
    own: Option<(PathBuf, String)>,
}

impl ProbeWorkspace {
    fn of(config: &Config, request: &SessionRequest) -> Self {
        let own = config
            .sandbox
            .workspace
            .is_none()
            .then(|| (request.data_dir.clone(), request.session.clone()));
        Self { own }
    }

    fn remove(&self) {
        if let Some((data_dir, session)) = &self.own
            && let Err(why) = remove_session_workspace(data_dir, session)
        {
            eprintln!("{}", super::said(&why));
        }
    }
}

/// The room /workspace has, from `stat -f` (blocks, block size, inodes), against the limits.
fn check_workspace_room(report: &mut Report, sandbox: &SandboxConfig, room: &str) {
    let numbers: Vec<u64> = room
        .split_whitespace()
        .filter_map(|n| n.parse().ok())
        .collect();
    let seen = match numbers.as_slice() {
        [blocks, size, inodes] => Some((blocks * size, *inodes)),
        _ => None,
    };
    let (ok, detail) = match seen {
        Some((bytes, 0)) if sandbox.workspace_is_bounded() => (
            false,
            format!(
                "{} asked and {} enforced, but the filesystem counts no inodes: the limit of {} \
                 files is not enforced (gVisor's tmpfs ignores nr_inodes)",
                sandbox.workspace_limit,
                ByteSize(bytes),
                sandbox.workspace_inodes
            ),
        ),
        Some((bytes, inodes)) if sandbox.workspace_is_bounded() => (
            bytes.div_ceil(4096) == sandbox.workspace_limit.bytes().div_ceil(4096)
                && inodes == sandbox.workspace_inodes,
            format!(
                "{} in {} files asked, {} in {inodes} enforced",
                sandbox.workspace_limit,
                sandbox.workspace_inodes,
                ByteSize(bytes)
            ),
        ),
        Some((bytes, _)) => (
            true,
            format!(
                "the directory itself is mounted ({} on its filesystem)",
                ByteSize(bytes)
            ),
        ),
        None => (false, format!("unknown ({room})")),
    };
    report.line(ok, "workspace limit", detail);
}

/// The probe's findings against what the configuration asks.
fn check_limits(report: &mut Report, config: &Config, probe: &Probe) {
    let sandbox = &config.sandbox;
    if gvisor::ran_under_gvisor(probe) {
        gvisor::check_privileges(report, probe);
        gvisor::check_resources(report, sandbox, probe);
    } else {
        check_privileges(report, probe);
        check_resources(report, sandbox, probe);
        check_cpu(report, sandbox, probe);
    }
    check_filesystems(report, sandbox, probe);
    check_reach(report, sandbox, probe);
}

/// What code runs as: no root, no capabilities, no new privileges, seccomp filtering.
fn check_privileges(report: &mut Report, probe: &Probe) {
    let get = |key| probe.get(key);
    check_identity(report, probe);
    report.line(
        get("NoNewPrivs") == "1",
        "no-new-privileges",
        format!("NoNewPrivs {}", get("NoNewPrivs")),
    );
    // The container's profile and the block's own two filters (airlock's, stacked on it).
    let filters: u32 = get("Seccomp_filters").parse().unwrap_or(0);
    report.line(
        get("Seccomp") == "2" && filters >= 3,
        "seccomp",
        format!(
            "mode {}, {filters} filters (the container's profile and the block's own: io_uring, \
             bpf, userfaultfd, perf_event_open, keyrings, ptrace, new namespaces, mounts and \
             IPC objects refused)",
            get("Seccomp")
        ),
    );
}

/// The open files, memory, swap and pids limits, as the kernel enforces them.
fn check_resources(report: &mut Report, sandbox: &SandboxConfig, probe: &Probe) {
    let get = |key| probe.get(key);
    report.line(
        get("nofile") == sandbox.nofile.to_string(),
        "open files",
        format!("{} enforced as {}", sandbox.nofile, get("nofile")),
    );
    let cgroup = crate::sandbox::docker::spec::memory_limit(sandbox) as u64;
    report.line(
        get("memory") == cgroup.to_string(),
        "memory limit",
        format!(
            "{} for programs + {} for the workspace, enforced as {}",
            sandbox.memory,
            ByteSize(cgroup - sandbox.memory.bytes()),
            get("memory")
        ),
    );
    let swap = (cgroup + sandbox.swap.bytes()).to_string();
    let swap_seen = get("memory_swap");
    let swap_ok = swap_seen == swap || (swap_seen == "0" && sandbox.swap.bytes() == 0);
    report.line(
        swap_ok,
        "swap limit",
        format!("memory+swap enforced as {swap_seen}"),
    );
    let pids = sandbox.pids_limit.to_string();
    report.line(
        get("pids") == pids,
        "pids limit",
        format!("{pids} enforced as {}", get("pids")),
    );
}

/// The CPU quota over its period (cgroup v1 has two files, v2 one with both numbers).
fn check_cpu(report: &mut Report, sandbox: &SandboxConfig, probe: &Probe) {
    let get = |key| probe.get(key);
    let quota: Option<f64> = get("cpu_quota")
        .split_whitespace()
        .next()
        .and_then(|q| q.parse().ok());
    let period: Option<f64> = get("cpu_period").parse().ok().or_else(|| {
        get("cpu_quota")
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse().ok())
    });
    let cpus = quota.zip(period).map(|(q, p)| q / p);
    report.line(
        cpus.is_some_and(|c| (c - sandbox.cpus).abs() < 0.01),
        "cpu limit",
        format!(
            "{} CPUs enforced as {}",
            sandbox.cpus,
            cpus.map_or("unknown".into(), |c| format!("{c:.2}"))
        ),
    );
}

/// What code may write: the root (when read-only), /workspace and the room it has.
fn check_filesystems(report: &mut Report, sandbox: &SandboxConfig, probe: &Probe) {
    let get = |key| probe.get(key);
    if sandbox.read_only_root {
        report.line(
            get("root_writable") == "no",
            "read-only root",
            format!("root writable: {}", get("root_writable")),
        );
    }
    let want_workspace = if sandbox.workspace_read_only {
        "no"
    } else {
        "yes"
    };
    report.line(
        get("workspace_writable") == want_workspace,
        "workspace",
        format!("writable: {}", get("workspace_writable")),
    );
    check_workspace_room(report, sandbox, get("workspace_room"));
}

/// What code can reach: the host directory behind /workspace, the network, Docker.
fn check_reach(report: &mut Report, sandbox: &SandboxConfig, probe: &Probe) {
    let get = |key| probe.get(key);
    report.line(
        get("host_workspace") == "unreachable",
        "host workspace",
        format!(
            "the host directory behind /workspace is {} to code",
            get("host_workspace")
        ),
    );
    if sandbox.network == "none" {
        // Under runsc --network=none, gVisor has no network stack at all, not even lo.
        let none_at_all = get("interfaces").is_empty() && gvisor::ran_under_gvisor(probe);
        report.line(
            get("interfaces") == "lo" || none_at_all,
            "network",
            match none_at_all {
                true => "no interface at all (gVisor without a network stack)".to_string(),
                false => format!("interfaces: {}", get("interfaces")),
            },
        );
    }
    report.line(
        get("docker_socket") == "absent",
        "docker socket",
        get("docker_socket"),
    );
}
