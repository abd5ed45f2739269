//! Where the engine is: `sandbox.docker_host`, else DOCKER_HOST, else the current Docker
//! context (DOCKER_CONTEXT or `currentContext` in Docker's config.json), else the local
//! socket; and how to reach it (a unix socket, TCP with TLS, or ssh).

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::config::{SandboxConfig, WorkspaceMode};
use crate::sandbox::SandboxError;

const DEFAULT_SOCKET: &str = "unix:///var/run/docker.sock";

/// How airlock talks to the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Transport {
    Unix(PathBuf),
    /// `host:port`, with the TLS files when the daemon's certificate is verified.
    Tcp {
        address: String,
        tls: Option<TlsFiles>,
    },
    Ssh(SshTarget),
}

/// The client certificate, its key and the CA that signed the daemon's certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TlsFiles {
    pub(crate) ca: PathBuf,
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
}

impl TlsFiles {
    fn in_dir(dir: &Path) -> Self {
        Self {
            ca: dir.join("ca.pem"),
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        }
    }
}

/// `ssh://[user@]host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SshTarget {
    pub(crate) user: Option<String>,
    pub(crate) host: String,
    pub(crate) port: Option<u16>,
}

/// Where the address came from, for messages and `doctor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Origin {
    Config,
    Environment,
    Context(String),
    Default,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    pub(crate) address: String,
    pub(crate) origin: Origin,
    pub(crate) transport: Transport,
}

/// The environment the endpoint is read from: the process's, or a test's.
pub(crate) trait Env {
    fn var(&self, name: &str) -> Option<String>;
}

pub(crate) struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|value| !value.is_empty())
    }
}

impl Endpoint {
    pub(crate) fn resolve(config: &SandboxConfig, env: &dyn Env) -> Result<Self, SandboxError> {
        let (address, origin, context_tls) = if let Some(host) = &config.docker_host {
            (host.clone(), Origin::Config, None)
        } else if let Some(host) = env.var("DOCKER_HOST") {
            (host, Origin::Environment, None)
        } else {
            match current_context(env)? {
                Some((name, host, tls)) => (host, Origin::Context(name), tls),
                None => (DEFAULT_SOCKET.to_string(), Origin::Default, None),
            }
        };
        let transport = transport(&address, &origin, context_tls, config, env)?;
        Ok(Self {
            address,
            origin,
            transport,
        })
    }

    /// Whether the engine shares this machine's filesystem, which a bind mount needs: only
    /// a unix socket says so; a TCP or ssh engine may be anywhere, even on loopback.
    pub(crate) fn is_local(&self) -> bool {
        matches!(self.transport, Transport::Unix(_))
    }

    /// Whether the session's workspace is a volume rather than a bind mount.
    pub(crate) fn uses_volume(&self, mode: WorkspaceMode) -> bool {
        match mode {
            WorkspaceMode::Auto => !self.is_local(),
            WorkspaceMode::Bind => false,
            WorkspaceMode::Volume => true,
        }
    }

    /// `ssh://root@build:22 (from DOCKER_HOST)`, for a person.
    pub(crate) fn describe(&self) -> String {
        let from = match &self.origin {
            Origin::Config => "from sandbox.docker_host".to_string(),
            Origin::Environment => "from DOCKER_HOST".to_string(),
            Origin::Context(name) => format!("from Docker context {name:?}"),
            Origin::Default => "the default socket".to_string(),
        };
        let tls = match &self.transport {
            Transport::Tcp { tls: Some(_), .. } => ", TLS verified",
            Transport::Tcp { tls: None, .. } => ", plain TCP",
            _ => "",
        };
        format!("{} ({from}{tls})", self.address)
    }
}

fn transport(
    address: &str,
    origin: &Origin,
    context_tls: Option<TlsFiles>,
    config: &SandboxConfig,
    env: &dyn Env,
) -> Result<Transport, SandboxError> {
    let bad = |why: &str| {
        SandboxError::Unavailable(format!(
            "the Docker address {address:?} ({}) {why}",
            match origin {
                Origin::Config => "sandbox.docker_host".to_string(),
                Origin::Environment => "DOCKER_HOST".to_string(),
                Origin::Context(name) => format!("Docker context {name:?}"),
                Origin::Default => "default".to_string(),
            }
        ))
    };
    if let Some(path) = address.strip_prefix("unix://") {
        if !path.starts_with('/') {
            return Err(bad(
                "needs an absolute socket path, like unix:///var/run/docker.sock",
            ));
        }
        return Ok(Transport::Unix(PathBuf::from(path)));
    }
    if let Some(rest) = address.strip_prefix("ssh://") {
        return ssh_target(rest)
            .map(Transport::Ssh)
            .ok_or_else(|| bad("is not ssh://[USER@]HOST[:PORT]"));
    }
    let Some(rest) = address.strip_prefix("tcp://") else {
        return Err(bad(
            "has a scheme airlock does not speak: use unix://, tcp:// or ssh://",
        ));
    };
    let host_port = rest.trim_end_matches('/');
    if host_port.is_empty() || host_port.contains('/') {
        return Err(bad("is not tcp://HOST:PORT"));
    }
    let host_port = if has_port(host_port) {
        host_port.to_string()
    } else {
        format!("{host_port}:2375")
    };
    let tls = context_tls.or_else(|| {
        (*origin != Origin::Default && env.var("DOCKER_TLS_VERIFY").is_some())
            .then(|| TlsFiles::in_dir(&cert_dir(env)))
    });
    if tls.is_none() && !config.allow_insecure_tcp && !is_loopback(&host_port) {
        return Err(bad(
            "is plain TCP to a host that is not loopback: anyone on the way could read and \
             change what airlock runs. Use TLS (DOCKER_TLS_VERIFY=1 with DOCKER_CERT_PATH) or \
             ssh://, or set sandbox.allow_insecure_tcp = true if this network is yours",
        ));
    }
    Ok(Transport::Tcp {
        address: host_port,
        tls,
    })
}

fn has_port(host_port: &str) -> bool {
    match host_port.rsplit_once(':') {
        Some((host, port)) => {
            port.parse::<u16>().is_ok() && (!host.contains(':') || host.ends_with(']'))
        }
        None => false,
    }
}

/// A loopback address written as one (127.0.0.0/8, ::1), or `localhost`. Never a name
/// looked up here: it could answer loopback to this check and another host to the
/// connection that follows.
fn is_loopback(host_port: &str) -> bool {
    let host = host_port
        .rsplit_once(':')
        .map_or(host_port, |(host, _)| host);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn ssh_target(rest: &str) -> Option<SshTarget> {
    let rest = rest.trim_end_matches('/');
    if rest.contains('/') || rest.is_empty() {
        return None;
    }
    let (user, host_port) = match rest.rsplit_once('@') {
        Some((user, host_port)) if !user.is_empty() => (Some(user.to_string()), host_port),
        Some(_) => return None,
        None => (None, rest),
    };
    let (host, port) = if has_port(host_port) {
        let (host, port) = host_port.rsplit_once(':')?;
        (host, Some(port.parse().ok()?))
    } else {
        (host_port, None)
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    // Names and addresses only: an argument that starts with `-` would be read as an option,
    // and `%`, `$`, `;` or quotes could reach a shell through a ProxyCommand or Match exec
    // of the user's ssh config that uses %h or %r.
    let plain = |text: &str| {
        !text.starts_with('-')
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'))
    };
    if host.is_empty() || !plain(host) || user.as_deref().is_some_and(|u| !plain(u)) {
        return None;
    }
    Some(SshTarget {
        user,
        host: host.to_string(),
        port,
    })
}

/// Docker's configuration directory: DOCKER_CONFIG, else ~/.docker.
fn config_dir(env: &dyn Env) -> PathBuf {
    match env.var("DOCKER_CONFIG") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env.var("HOME").unwrap_or_default()).join(".docker"),
    }
}

fn cert_dir(env: &dyn Env) -> PathBuf {
    env.var("DOCKER_CERT_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| config_dir(env))
}

/// The context `docker context use` selected (or DOCKER_CONTEXT names): its name, address
/// and TLS files. `None` for the default context.
fn current_context(
    env: &dyn Env,
) -> Result<Option<(String, String, Option<TlsFiles>)>, SandboxError> {
    let dir = config_dir(env);
    let name = match env.var("DOCKER_CONTEXT") {
        Some(name) => name,
        None => {
            let Ok(text) = std::fs::read_to_string(dir.join("config.json")) else {
                return Ok(None);
            };
            let config: serde_json::Value = serde_json::from_str(&text).map_err(|err| {
                SandboxError::Unavailable(format!(
                    "Docker's config file {} is not JSON ({err}); fix it, or set DOCKER_HOST",
                    dir.join("config.json").display()
                ))
            })?;
            match config["currentContext"].as_str() {
                Some(name) if !name.is_empty() => name.to_string(),
                _ => return Ok(None),
            }
        }
    };
    if name == "default" {
        return Ok(None);
    }
    let id = hex(&Sha256::digest(name.as_bytes()));
    let meta_path = dir.join("contexts/meta").join(&id).join("meta.json");
    let missing = |why: String| {
        SandboxError::Unavailable(format!(
            "the current Docker context {name:?} {why}; run `docker context ls`, or \
             `docker context use default`, or set DOCKER_HOST"
        ))
    };
    let text = std::fs::read_to_string(&meta_path)
        .map_err(|err| missing(format!("cannot be read ({}: {err})", meta_path.display())))?;
    let meta: serde_json::Value = serde_json::from_str(&text)
        .map_err(|err| missing(format!("is not JSON ({}: {err})", meta_path.display())))?;
    let endpoint = &meta["Endpoints"]["docker"];
    let Some(host) = endpoint["Host"].as_str() else {
        return Err(missing("names no Docker endpoint".into()));
    };
    if endpoint["SkipTLSVerify"].as_bool() == Some(true) {
        return Err(missing(
            "skips verifying the daemon's certificate, which airlock never does".into(),
        ));
    }
    let tls_dir = dir.join("contexts/tls").join(&id).join("docker");
    let tls = tls_dir
        .join("ca.pem")
        .exists()
        .then(|| TlsFiles::in_dir(&tls_dir));
    Ok(Some((name, host.to_string(), tls)))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
#[path = "endpoint_tests.rs"]
mod tests;
