//! Connecting to the engine [`super::endpoint`] names, whichever transport it takes.

use std::time::Duration;

use bollard::Docker;

use super::endpoint::{Endpoint, Origin, ProcessEnv, Transport};
use super::{describe, ssh};
use crate::config::SandboxConfig;
use crate::sandbox::SandboxError;

/// How long the daemon gets to answer a ping.
const PING_DEADLINE: Duration = Duration::from_secs(5);
/// How long a request to the engine may take (bollard's default).
const REQUEST_TIMEOUT: u64 = 120;

/// A client of the engine together with the endpoint it was made for. What follows the
/// connection (the workspace mode, doctor's engine line, the greeting) reads this endpoint
/// rather than resolving one again from an environment that may have changed since.
#[derive(Clone)]
pub struct Connection {
    client: Docker,
    endpoint: Endpoint,
}

impl Connection {
    pub fn client(&self) -> &Docker {
        &self.client
    }

    pub fn into_client(self) -> Docker {
        self.client
    }

    pub(crate) fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    pub(crate) fn into_parts(self) -> (Docker, Endpoint) {
        (self.client, self.endpoint)
    }
}

/// Connects to the engine `config` names (see [`super::endpoint`]), pings it with a short deadline
/// and negotiates the API version.
pub async fn connect(config: &SandboxConfig) -> Result<Connection, SandboxError> {
    let endpoint = Endpoint::resolve(config, &ProcessEnv)?;
    let mut forwarder = None;
    let version = bollard::API_DEFAULT_VERSION;
    let connected = match &endpoint.transport {
        Transport::Unix(path) => {
            Docker::connect_with_unix(&path.to_string_lossy(), REQUEST_TIMEOUT, version)
        }
        Transport::Tcp { address, tls: None } => {
            Docker::connect_with_http(&format!("tcp://{address}"), REQUEST_TIMEOUT, version)
        }
        Transport::Tcp {
            address,
            tls: Some(files),
        } => {
            for file in [&files.ca, &files.cert, &files.key] {
                if !file.is_file() {
                    return Err(SandboxError::Unavailable(format!(
                        "TLS to {} needs {}, which is not there: set DOCKER_CERT_PATH to the \
                         directory holding ca.pem, cert.pem and key.pem",
                        endpoint.describe(),
                        file.display()
                    )));
                }
            }
            Docker::connect_with_ssl(
                address,
                &files.key,
                &files.cert,
                &files.ca,
                REQUEST_TIMEOUT,
                version,
            )
        }
        Transport::Ssh(target) => {
            let started = ssh::Forwarder::start(target, &config.ssh_command)?;
            let socket = started.socket().to_string_lossy().into_owned();
            forwarder = Some(started);
            Docker::connect_with_unix(&socket, REQUEST_TIMEOUT, version)
        }
    };
    let unreachable = |why: String| {
        let ssh_said = forwarder
            .as_ref()
            .map(ssh::Forwarder::complaints)
            .filter(|said| !said.is_empty())
            .map_or(String::new(), |said| format!(" (ssh said: {said})"));
        let hint = if endpoint.origin == Origin::Default {
            "Start Docker (for example `sudo systemctl start docker`) or point DOCKER_HOST at a \
             running daemon"
        } else {
            "Check that the engine runs there and that this machine may reach it"
        };
        SandboxError::Unavailable(format!(
            "cannot reach the Docker daemon at {}: {why}{ssh_said}. {hint}",
            endpoint.describe()
        ))
    };
    let docker = connected.map_err(|err| unreachable(describe(&err)))?;
    match tokio::time::timeout(PING_DEADLINE, docker.ping()).await {
        Err(_) => return Err(unreachable("it did not answer within 5 s".into())),
        Ok(Err(err)) => return Err(unreachable(describe(&err))),
        Ok(Ok(_)) => {}
    }
    let client = docker
        .negotiate_version()
        .await
        .map_err(|err| unreachable(describe(&err)))?;
    Ok(Connection { client, endpoint })
}
