use std::collections::HashMap;

use super::*;

struct MapEnv(HashMap<&'static str, String>);

impl Env for MapEnv {
    fn var(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned()
    }
}

fn env(pairs: &[(&'static str, &str)]) -> MapEnv {
    MapEnv(pairs.iter().map(|(k, v)| (*k, v.to_string())).collect())
}

fn resolve(host: &str, pairs: &[(&'static str, &str)]) -> Result<Endpoint, SandboxError> {
    let config = SandboxConfig {
        docker_host: Some(host.to_string()),
        ..SandboxConfig::default()
    };
    Endpoint::resolve(&config, &env(pairs))
}

#[test]
fn plain_tcp_is_refused_off_loopback_unless_allowed() {
    let err = resolve("tcp://203.0.113.7:2375", &[]).unwrap_err();
    assert!(err.to_string().contains("allow_insecure_tcp"), "{err}");
    let loopback = resolve("tcp://127.0.0.1:2375", &[]).expect("loopback");
    assert_eq!(
        loopback.transport,
        Transport::Tcp {
            address: "127.0.0.1:2375".into(),
            tls: None
        }
    );
    assert!(resolve("tcp://[::1]:2375", &[]).is_ok());
    assert!(resolve("tcp://localhost:2375", &[]).is_ok());
    // A name is not looked up: it could say loopback now and another host on connecting.
    assert!(resolve("tcp://loopback.example:2375", &[]).is_err());
    let config = SandboxConfig {
        docker_host: Some("tcp://203.0.113.7".into()),
        allow_insecure_tcp: true,
        ..SandboxConfig::default()
    };
    let allowed = Endpoint::resolve(&config, &env(&[])).expect("allowed");
    assert!(
        matches!(allowed.transport, Transport::Tcp { ref address, .. } if address == "203.0.113.7:2375")
    );
    assert!(!allowed.is_local());
}

#[test]
fn tls_verify_takes_the_certificates_from_docker_cert_path() {
    let endpoint = resolve(
        "tcp://203.0.113.7:2376",
        &[("DOCKER_TLS_VERIFY", "1"), ("DOCKER_CERT_PATH", "/certs")],
    )
    .expect("tls");
    assert_eq!(
        endpoint.transport,
        Transport::Tcp {
            address: "203.0.113.7:2376".into(),
            tls: Some(TlsFiles::in_dir(Path::new("/certs")))
        }
    );
    assert!(endpoint.describe().contains("TLS verified"));
}

#[test]
fn ssh_addresses_are_parsed_and_options_cannot_be_smuggled() {
    let endpoint = resolve("ssh://ci@build.example:2222", &[]).expect("ssh");
    assert_eq!(
        endpoint.transport,
        Transport::Ssh(SshTarget {
            user: Some("ci".into()),
            host: "build.example".into(),
            port: Some(2222)
        })
    );
    assert!(resolve("ssh://build", &[]).is_ok());
    for bad in [
        "ssh://-oProxyCommand=sh@x",
        "ssh://-oProxyCommand=sh",
        "ssh://@host",
        "ssh://",
        "ssh://a b",
        "ssh://host;touch /tmp/x",
        "ssh://$(id)@host",
        "ssh://%d@host",
    ] {
        assert!(resolve(bad, &[]).is_err(), "{bad}");
    }
    assert!(resolve("http://x", &[]).is_err());
    assert!(resolve("unix://relative.sock", &[]).is_err());
}

#[test]
fn docker_host_wins_over_the_context_and_the_config_over_both() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_context(dir.path(), "remote", "ssh://me@ctx-host", false);
    let home = dir.path().to_string_lossy().to_string();
    let docker_config = format!("{home}/.docker");
    let pairs = [("DOCKER_CONFIG", docker_config.as_str())];
    let from_context = Endpoint::resolve(&SandboxConfig::default(), &env(&pairs)).expect("ctx");
    assert_eq!(from_context.origin, Origin::Context("remote".into()));
    assert!(from_context.describe().contains("context \"remote\""));
    let with_host = [
        ("DOCKER_CONFIG", docker_config.as_str()),
        ("DOCKER_HOST", "unix:///run/other.sock"),
    ];
    let from_env = Endpoint::resolve(&SandboxConfig::default(), &env(&with_host)).expect("env");
    assert_eq!(
        from_env.transport,
        Transport::Unix("/run/other.sock".into())
    );
    assert!(from_env.is_local());
    let from_config = resolve("ssh://cfg", &with_host).expect("config");
    assert_eq!(from_config.origin, Origin::Config);
    let named = [
        ("DOCKER_CONFIG", docker_config.as_str()),
        ("DOCKER_CONTEXT", "default"),
    ];
    let default = Endpoint::resolve(&SandboxConfig::default(), &env(&named)).expect("default");
    assert_eq!(default.origin, Origin::Default);
}

#[test]
fn a_context_with_tls_files_uses_them_and_one_that_skips_verification_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tls_dir = write_context(dir.path(), "tls", "tcp://203.0.113.9:2376", true);
    let docker_config = format!("{}/.docker", dir.path().display());
    let pairs = [("DOCKER_CONFIG", docker_config.as_str())];
    let endpoint = Endpoint::resolve(&SandboxConfig::default(), &env(&pairs)).expect("tls ctx");
    assert_eq!(
        endpoint.transport,
        Transport::Tcp {
            address: "203.0.113.9:2376".into(),
            tls: Some(TlsFiles::in_dir(&tls_dir))
        }
    );
    write_context(dir.path(), "tls", "tcp://203.0.113.9:2376", false);
    let meta = dir
        .path()
        .join(".docker/contexts/meta")
        .join(hex(&Sha256::digest(b"tls")))
        .join("meta.json");
    std::fs::write(
        &meta,
        r#"{"Name":"tls","Endpoints":{"docker":{"Host":"tcp://203.0.113.9:2376","SkipTLSVerify":true}}}"#,
    )
    .expect("meta");
    let err = Endpoint::resolve(&SandboxConfig::default(), &env(&pairs)).unwrap_err();
    assert!(err.to_string().contains("skips verifying"), "{err}");
    std::fs::write(dir.path().join(".docker/config.json"), "{not json").expect("config");
    let err = Endpoint::resolve(&SandboxConfig::default(), &env(&pairs)).unwrap_err();
    assert!(err.to_string().contains("not JSON"), "{err}");
}

/// Lays out a context as `docker context create` does; returns its TLS directory.
fn write_context(home: &Path, name: &str, host: &str, tls: bool) -> PathBuf {
    let docker = home.join(".docker");
    let id = hex(&Sha256::digest(name.as_bytes()));
    let meta_dir = docker.join("contexts/meta").join(&id);
    std::fs::create_dir_all(&meta_dir).expect("meta dir");
    let meta = serde_json::json!({
        "Name": name,
        "Metadata": {},
        "Endpoints": {"docker": {"Host": host, "SkipTLSVerify": false}},
    });
    std::fs::write(meta_dir.join("meta.json"), meta.to_string()).expect("meta");
    std::fs::write(
        docker.join("config.json"),
        serde_json::json!({"currentContext": name}).to_string(),
    )
    .expect("config");
    let tls_dir = docker.join("contexts/tls").join(&id).join("docker");
    if tls {
        std::fs::create_dir_all(&tls_dir).expect("tls dir");
        for file in ["ca.pem", "cert.pem", "key.pem"] {
            std::fs::write(tls_dir.join(file), "pem").expect("pem");
        }
    }
    tls_dir
}
