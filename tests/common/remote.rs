//! The host's Docker daemon as a remote engine: behind TLS on a loopback port (stunnel, with
//! certificates made here by openssl) and behind ssh (an sshd on a loopback port, with keys
//! made here). airlock then has to treat it as a machine that does not share its files.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::wait_until;

/// The daemon's own socket, which the fronts forward to.
const DOCKER_SOCKET: &str = "/var/run/docker.sock";

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("address").port()
}

fn run(program: &str, args: &[&str], dir: &Path) {
    let output = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|err| panic!("{program} runs: {err}"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn listening(port: u16) -> bool {
    wait_until(Duration::from_secs(20), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    })
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The daemon behind TLS that verifies both sides: its certificate is for 127.0.0.1 and
/// signed by a CA made here, and it takes only clients whose certificate that CA signed.
pub struct TlsFront {
    pub dir: tempfile::TempDir,
    pub port: u16,
    _stunnel: Killed,
}

impl TlsFront {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        std::fs::create_dir(d.join("client")).expect("client dir");
        let subject = |name: &str| format!("/CN={name}");
        run(
            "openssl",
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "ca-key.pem",
                "-out",
                "client/ca.pem",
                "-days",
                "2",
                "-subj",
                &subject("airlock test CA"),
            ],
            d,
        );
        for (name, usage, key, cert) in [
            (
                "127.0.0.1",
                "serverAuth\nsubjectAltName=IP:127.0.0.1",
                "server-key.pem",
                "server.pem",
            ),
            ("client", "clientAuth", "client/key.pem", "client/cert.pem"),
        ] {
            run(
                "openssl",
                &[
                    "req",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-keyout",
                    key,
                    "-out",
                    "req.csr",
                    "-subj",
                    &subject(name),
                ],
                d,
            );
            std::fs::write(d.join("ext.cnf"), format!("extendedKeyUsage={usage}\n")).expect("ext");
            run(
                "openssl",
                &[
                    "x509",
                    "-req",
                    "-in",
                    "req.csr",
                    "-CA",
                    "client/ca.pem",
                    "-CAkey",
                    "ca-key.pem",
                    "-CAcreateserial",
                    "-out",
                    cert,
                    "-days",
                    "2",
                    "-extfile",
                    "ext.cnf",
                ],
                d,
            );
        }
        let port = free_port();
        let config = format!(
            "foreground = yes\npid =\n[docker]\naccept = 127.0.0.1:{port}\n\
             connect = {DOCKER_SOCKET}\ncert = {dir}/server.pem\nkey = {dir}/server-key.pem\n\
             CAfile = {dir}/client/ca.pem\nverifyChain = yes\nrequireCert = yes\n",
            dir = d.display()
        );
        std::fs::write(d.join("stunnel.conf"), config).expect("stunnel.conf");
        let stunnel = Command::new("stunnel")
            .arg(d.join("stunnel.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("stunnel runs (scripts/test installs stunnel4)");
        let front = Self {
            dir,
            port,
            _stunnel: Killed(stunnel),
        };
        assert!(listening(port), "stunnel did not listen on {port}");
        front
    }

    pub fn host(&self) -> String {
        format!("tcp://127.0.0.1:{}", self.port)
    }

    /// DOCKER_CERT_PATH: the client's certificate, key and the CA.
    pub fn cert_path(&self) -> PathBuf {
        self.dir.path().join("client")
    }
}

/// The daemon behind an sshd on loopback that takes one key, made here, for root.
pub struct SshFront {
    pub dir: tempfile::TempDir,
    pub port: u16,
    _sshd: Killed,
}

impl SshFront {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        for key in ["host_key", "client_key"] {
            run(
                "ssh-keygen",
                &["-q", "-t", "ed25519", "-N", "", "-f", key],
                d,
            );
        }
        std::fs::copy(d.join("client_key.pub"), d.join("authorized_keys")).expect("keys");
        let port = free_port();
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {dir}/host_key\n\
             AuthorizedKeysFile {dir}/authorized_keys\nPidFile {dir}/sshd.pid\n\
             StrictModes no\nUsePAM no\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n",
            dir = d.display()
        );
        std::fs::write(d.join("sshd_config"), config).expect("sshd_config");
        let host_key = std::fs::read_to_string(d.join("host_key.pub")).expect("host key");
        std::fs::write(
            d.join("known_hosts"),
            format!("[127.0.0.1]:{port} {host_key}"),
        )
        .expect("known_hosts");
        // sshd's privilege separation directory.
        std::fs::create_dir_all("/run/sshd").expect("/run/sshd");
        let log = std::fs::File::create(d.join("sshd.log")).expect("log");
        let sshd = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(d.join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("sshd runs (scripts/test installs openssh-server)");
        let front = Self {
            dir,
            port,
            _sshd: Killed(sshd),
        };
        assert!(listening(port), "sshd did not listen:\n{}", front.log());
        front
    }

    pub fn host(&self) -> String {
        format!("ssh://root@127.0.0.1:{}", self.port)
    }

    /// `sandbox.ssh_command`: this key, this host's key, no user or system ssh config.
    pub fn ssh_command(&self, key: &str) -> String {
        let d = self.dir.path();
        format!(
            "ssh -F /dev/null -i {} -o IdentitiesOnly=yes -o UserKnownHostsFile={} \
             -o StrictHostKeyChecking=yes",
            d.join(key).display(),
            d.join("known_hosts").display()
        )
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }
}
