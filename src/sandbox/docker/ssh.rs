//! An `ssh://` engine, reached as the docker CLI reaches one: every connection is an ssh
//! process running `docker system dial-stdio` on the far side, its stdin and stdout the
//! connection. airlock's client connects to a unix socket in a private directory, and each
//! connection accepted there is piped through its own ssh.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

use super::endpoint::SshTarget;
use crate::sandbox::SandboxError;

/// The last bytes of ssh's complaints kept for an error message.
const STDERR_KEPT: usize = 2048;
/// The environment ssh is given: where its config, keys and agent are, and who runs it.
const SSH_ENV: [&str; 7] = [
    "HOME",
    "PATH",
    "USER",
    "LOGNAME",
    "SSH_AUTH_SOCK",
    "LANG",
    "LC_ALL",
];

/// The local end of the ssh tunnel; it lives, with its directory, until the runtime stops.
pub(crate) struct Forwarder {
    socket: PathBuf,
    complaints: Arc<Mutex<String>>,
}

impl Forwarder {
    pub(crate) fn start(target: &SshTarget, ssh_command: &str) -> Result<Self, SandboxError> {
        let fail = |err: std::io::Error| {
            SandboxError::Unavailable(format!("cannot set up the ssh connection: {err}"))
        };
        // tempdir() makes it 0700: no other user can connect to the engine through it.
        let dir = tempfile::Builder::new()
            .prefix("airlock-ssh-")
            .tempdir()
            .map_err(fail)?;
        let socket = dir.path().join("docker.sock");
        let listener = UnixListener::bind(&socket).map_err(fail)?;
        let argv = command(target, ssh_command);
        let complaints = Arc::new(Mutex::new(String::new()));
        let kept = complaints.clone();
        tokio::spawn(async move {
            // The directory goes when this task does, at the runtime's end.
            let _dir = dir;
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(pipe(stream, argv.clone(), kept.clone()));
            }
        });
        Ok(Self { socket, complaints })
    }

    pub(crate) fn socket(&self) -> &Path {
        &self.socket
    }

    /// What ssh last said on stderr (host key, authentication, a missing docker), cleaned
    /// for a terminal.
    pub(crate) fn complaints(&self) -> String {
        let said = self
            .complaints
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default();
        crate::output::sanitize::for_person(said.trim())
    }
}

/// `ssh -o BatchMode=yes -T [OPTIONS] [-p PORT] [-l USER] -- HOST docker system dial-stdio`:
/// never a prompt (airlock may own the terminal), never a pseudo-terminal (the bytes are
/// HTTP).
fn command(target: &SshTarget, ssh_command: &str) -> Vec<String> {
    let mut words = ssh_command.split_whitespace().map(String::from);
    // ssh keeps the first value an option is given: airlock's come before the user's.
    let mut argv: Vec<String> = words.next().into_iter().collect();
    argv.extend(["-o", "BatchMode=yes", "-T"].map(String::from));
    argv.extend(words);
    if let Some(port) = target.port {
        argv.extend(["-p".to_string(), port.to_string()]);
    }
    if let Some(user) = &target.user {
        argv.extend(["-l".to_string(), user.clone()]);
    }
    argv.extend(["--", &target.host, "docker", "system", "dial-stdio"].map(String::from));
    argv
}

async fn pipe(stream: UnixStream, argv: Vec<String>, complaints: Arc<Mutex<String>>) {
    let Some((program, args)) = argv.split_first() else {
        return;
    };
    let mut command = tokio::process::Command::new(program);
    // Only what ssh needs of the environment: never the model's API key, which SendEnv or a
    // ProxyCommand would carry on.
    command.env_clear();
    for name in SSH_ENV {
        if let Some(value) = std::env::var_os(name) {
            command.env(name, value);
        }
    }
    let spawned = command
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(err) => {
            keep(&complaints, &format!("cannot run {program}: {err}"));
            return;
        }
    };
    let (Some(mut to_ssh), Some(mut from_ssh), Some(mut errors)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return;
    };
    let (mut from_client, mut to_client) = stream.into_split();
    let upstream = async {
        let _ = tokio::io::copy(&mut from_client, &mut to_ssh).await;
        // The far side sees the end of the request, as a half-closed socket would show it.
        drop(to_ssh);
    };
    let downstream = async {
        let _ = tokio::io::copy(&mut from_ssh, &mut to_client).await;
        let _ = to_client.shutdown().await;
    };
    // Read to its end, so a talkative ssh (-v) never blocks on a full pipe; the tail kept.
    let stderr = async {
        let mut said = Vec::new();
        let mut chunk = [0u8; 4096];
        while let Ok(read @ 1..) = errors.read(&mut chunk).await {
            said.extend_from_slice(&chunk[..read]);
            let excess = said.len().saturating_sub(STDERR_KEPT * 2);
            said.drain(..excess);
        }
        if !said.is_empty() {
            keep(&complaints, &String::from_utf8_lossy(&said));
        }
    };
    tokio::join!(upstream, downstream, stderr);
    let _ = child.wait().await;
}

fn keep(complaints: &Mutex<String>, said: &str) {
    if let Ok(mut kept) = complaints.lock() {
        let start = said.len().saturating_sub(STDERR_KEPT);
        let start = (start..said.len())
            .find(|i| said.is_char_boundary(*i))
            .unwrap_or(said.len());
        *kept = said[start..].to_string();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_never_prompts_and_ends_its_options_before_the_host() {
        let target = SshTarget {
            user: Some("ci".into()),
            host: "build".into(),
            port: Some(2222),
        };
        let argv = command(&target, "ssh -F /etc/airlock/ssh_config");
        assert_eq!(
            argv.join(" "),
            "ssh -o BatchMode=yes -T -F /etc/airlock/ssh_config -p 2222 -l ci -- build docker \
             system dial-stdio"
        );
    }
}
