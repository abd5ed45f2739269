//! `sandbox.gpus`: Docker's forms reach the daemon as the device requests its own CLI makes
//! (read back from the created container), and anything else is refused by name when the
//! config is read. No GPU is on the test machines: a container that asks for one is created
//! and read back, and then the daemon refuses to start it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod common;

use std::sync::{Arc, Mutex};

use airlock::config::SandboxConfig;
use airlock::sandbox::Sandbox;
use airlock::sandbox::docker::{self, DockerSandbox, SessionRequest};
use common::*;

#[test]
fn a_gpus_value_docker_does_not_take_is_refused_by_name_at_config_load() {
    let home = Home::new();
    for bad in ["0,1", "device0", "device=", "gpu=all", "0"] {
        let mut command = home.airlock();
        command
            .arg("-c")
            .arg(format!("sandbox.gpus={bad}"))
            .args(["exec", "--lang", "sh", "-"]);
        let output = run_with_stdin(command, "echo ran");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(125), "{bad}: {stderr}");
        assert!(
            stderr.contains("sandbox.gpus") && stderr.contains("\"device=0,1\""),
            "{bad}: {stderr}"
        );
        assert!(!String::from_utf8_lossy(&output.stdout).contains("ran"));
    }
}

/// Starts a session asking for `gpus`; no GPU is here, so it must fail, and says why.
async fn start_asking_for(gpus: &str) -> String {
    let home = Home::new();
    let request = SessionRequest {
        session: airlock::ids::new_id("test"),
        config: SandboxConfig {
            image: test_image(),
            gpus: Some(gpus.into()),
            ..SandboxConfig::default()
        },
        secret_env: "OPENAI_API_KEY".into(),
        data_dir: home.data_dir(),
        supervisor: env!("CARGO_BIN_EXE_airlock").into(),
        continues: None,
    };
    let connection = docker::connect(&Default::default())
        .await
        .expect("docker is reachable");
    let notices = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = notices.clone();
    let started = DockerSandbox::start(
        connection,
        request,
        Arc::new(move |message| sink.lock().expect("lock").push(message)),
    )
    .await;
    match started {
        Ok(sandbox) => {
            sandbox.shutdown().await;
            panic!("a container with GPUs {gpus:?} started on a machine without one")
        }
        Err(err) => err.to_string(),
    }
}

#[tokio::test]
async fn gpu_requests_reach_the_daemon_as_asked_and_are_read_back() {
    for gpus in ["device=0,1", "all", "2"] {
        let why = start_asking_for(gpus).await;
        // Created and read back as asked (a request the daemon changed is refused before
        // start, with "device requests"); then refused at start, where the daemon looks
        // for a GPU driver.
        assert!(
            why.contains("cannot start the sandbox container") && !why.contains("device requests"),
            "{gpus}: {why}"
        );
        assert!(
            why.to_lowercase().contains("device driver"),
            "{gpus}: {why}"
        );
    }
}
