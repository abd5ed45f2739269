//! A second, empty Docker daemon: what a new user's machine has. It gets its own data root,
//! exec root and unix socket, and its own network namespace (`unshare --net`): a second
//! dockerd in the host's namespace would delete the host's docker0 bridge. It has no network
//! at all, so no registry answers it, as on the test machines. Needs root.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::wait_until;

pub struct EmptyDaemon {
    dir: tempfile::TempDir,
    dockerd: Child,
    /// `unix:///…/docker.sock`, for DOCKER_HOST.
    pub host: String,
}

impl EmptyDaemon {
    pub fn start() -> Self {
        // Short paths: containerd's sockets live under the exec root (108 bytes at most).
        let dir = tempfile::Builder::new()
            .prefix("al-d")
            .tempdir_in("/tmp")
            .expect("tempdir");
        let path = |name: &str| dir.path().join(name);
        // Its own config file, so the host's (which may name a data root) does not apply; the
        // host's storage driver is kept, as it is the one that works on this machine.
        let mut config = serde_json::json!({});
        if let Some(driver) = host_storage_driver() {
            config["storage-driver"] = driver.into();
        }
        std::fs::write(path("daemon.json"), config.to_string()).expect("daemon.json");
        let socket = path("docker.sock");
        let log = std::fs::File::create(path("dockerd.log")).expect("log file");
        let dockerd = Command::new("unshare")
            .arg("--net")
            .arg("dockerd")
            .arg(format!("--config-file={}", path("daemon.json").display()))
            .arg(format!("--data-root={}", path("data").display()))
            .arg(format!("--exec-root={}", path("x").display()))
            .arg(format!("--pidfile={}", path("dockerd.pid").display()))
            .arg(format!("--host=unix://{}", socket.display()))
            .args(["--bridge=none", "--iptables=false", "--ip-masq=false"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("unshare and dockerd run (as root)");
        let daemon = Self {
            host: format!("unix://{}", socket.display()),
            dir,
            dockerd,
        };
        let up = wait_until(Duration::from_secs(60), || {
            daemon.docker(&["info"]).is_some()
        });
        assert!(up, "the empty daemon did not start:\n{}", daemon.log());
        daemon
    }

    /// The docker CLI against this daemon; its stdout when it succeeded.
    pub fn docker(&self, args: &[&str]) -> Option<String> {
        let output = Command::new("docker")
            .env("DOCKER_HOST", &self.host)
            .args(args)
            .output()
            .ok()?;
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dockerd.log")).unwrap_or_default()
    }
}

fn host_storage_driver() -> Option<String> {
    let config = std::fs::read_to_string("/etc/docker/daemon.json").ok()?;
    let config: serde_json::Value = serde_json::from_str(&config).ok()?;
    config["storage-driver"].as_str().map(str::to_string)
}

impl Drop for EmptyDaemon {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.dockerd.id().to_string()])
            .status();
        let stopped = wait_until(Duration::from_secs(20), || {
            matches!(self.dockerd.try_wait(), Ok(Some(_)))
        });
        if !stopped {
            let _ = self.dockerd.kill();
            let _ = self.dockerd.wait();
        }
    }
}
