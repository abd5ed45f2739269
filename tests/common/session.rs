//! One warm sandbox session, driven the way the engine drives it, for tests that run several
//! blocks in one container and look at it from outside with the Docker CLI.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use airlock::config::SandboxConfig;
use airlock::engine::{Language, LanguageTable};
use airlock::protocol::Stream;
use airlock::sandbox::docker::{self, DockerSandbox, SessionRequest};
use airlock::sandbox::{BlockSpec, Sandbox};

use super::{Home, docker, test_image};

pub struct Session {
    pub sandbox: DockerSandbox,
    pub notices: Arc<Mutex<Vec<String>>>,
    id: String,
    home: Home,
}

impl Session {
    /// The session's workspace on the host.
    pub fn workspace(&self) -> std::path::PathBuf {
        self.home.data_dir().join("workspaces").join(&self.id)
    }
}

pub async fn session(config: SandboxConfig) -> Session {
    session_supervised_by(config, env!("CARGO_BIN_EXE_airlock").as_ref()).await
}

/// A session whose supervisor is `binary` (a copy of airlock's, say).
pub async fn session_supervised_by(config: SandboxConfig, binary: &std::path::Path) -> Session {
    let home = Home::new();
    let notices = Arc::new(Mutex::new(Vec::new()));
    let sink = notices.clone();
    let id = airlock::ids::new_id("test");
    let request = SessionRequest {
        session: id.clone(),
        config: SandboxConfig {
            image: test_image(),
            ..config
        },
        secret_env: "OPENAI_API_KEY".into(),
        data_dir: home.data_dir(),
        supervisor: binary.to_path_buf(),
        continues: None,
    };
    let docker = docker::connect(&Default::default())
        .await
        .expect("docker is reachable");
    let sandbox = DockerSandbox::start(
        docker,
        request,
        Arc::new(move |message| sink.lock().expect("lock").push(message)),
    )
    .await
    .expect("session starts");
    Session {
        sandbox,
        notices,
        id,
        home,
    }
}

pub fn language(name: &str) -> Language {
    LanguageTable::default()
        .resolve(name)
        .expect("built-in")
        .clone()
}

/// Commands of the processes in the container, as `docker top` sees them from the host.
/// Never empty while the container runs: the supervisor is always there.
pub fn processes(container: &str) -> Vec<String> {
    let list: Vec<String> = docker(&["top", container, "-o", "pid,user,args"])
        .lines()
        .skip(1)
        .map(str::to_string)
        .collect();
    assert!(
        list.iter().any(|p| p.contains("airlock supervise")),
        "cannot list processes: {list:?}"
    );
    list
}

pub async fn run(
    session: &mut Session,
    lang: &str,
    code: &str,
    timeout_secs: u64,
) -> (airlock::protocol::ExecResult, Vec<(Stream, String)>) {
    let language = language(lang);
    let mut chunks = Vec::new();
    let block = BlockSpec {
        language: &language,
        code,
        timeout: Duration::from_secs(timeout_secs),
        cancel: None,
    };
    let result = session
        .sandbox
        .run_block(block, &mut |stream, text| {
            chunks.push((stream, text.to_string()))
        })
        .await
        .expect("block runs");
    (result, chunks)
}
