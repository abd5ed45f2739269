//! Configuration: defaults < config file < `-c key=value` < dedicated flags.
//!
//! Every section denies unknown keys, so a typo is an error naming the key instead of a
//! setting that silently does nothing.

mod bytesize;
mod engine;
pub(crate) mod gpus;
pub(crate) mod language;
mod limits;
mod weakening;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

pub use bytesize::ByteSize;
pub use engine::WorkspaceMode;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub model: ModelConfig,
    pub sandbox: SandboxConfig,
    pub approval: ApprovalConfig,
    pub(crate) ui: UiConfig,
    pub(crate) history: HistoryConfig,
    /// Languages added to (or replacing) the built-in python, bash and sh.
    pub languages: BTreeMap<String, LanguageConfig>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelConfig {
    pub base_url: String,
    pub model: String,
    /// Name of the environment variable holding the API key; the key itself is never stored
    /// and never enters a container.
    pub api_key_env: String,
    /// Header that carries the key: `Authorization` sends `Bearer KEY`; any other name (Azure's
    /// `api-key`) sends the key as it is.
    pub api_key_header: String,
    /// Extra request headers (not secrets: this file is not a key store).
    pub headers: BTreeMap<String, String>,
    /// Extra query parameters, e.g. Azure's `api-version`.
    pub query: BTreeMap<String, String>,
    /// Unset: the server's default.
    pub temperature: Option<f64>,
    /// Replaces the built-in system prompt.
    pub system_prompt: Option<String>,
    /// Model replies in a row to one operator message (each reply's results go back to the
    /// model without asking) before airlock stops and waits for the operator; `airlock run`,
    /// which has one message (the prompt), ends there. Counted afresh after every message.
    pub max_turns: u32,
    pub connect_timeout_secs: u64,
    /// Longest wait for the next piece of a reply before the stream counts as stalled.
    pub idle_timeout_secs: u64,
    /// Retries of a request answered 429 or 5xx, or that could not connect.
    pub max_retries: u32,
    /// Most tokens one reply may have; 0 sends no limit (the server's own applies).
    pub max_tokens: u32,
    /// The request field that carries `max_tokens`.
    pub max_tokens_field: TokenField,
    /// The most of one reply airlock keeps: its text and its tool calls together. A reply
    /// that reaches it is cut there (the connection closed) and ends as at the token limit;
    /// `max_tokens` is only a request the server may ignore.
    pub max_reply_bytes: ByteSize,
    /// The model's context window in tokens; requests are kept inside it. Unset: unknown,
    /// nothing is left out (the server refuses what does not fit).
    pub context_window: Option<u64>,
    /// How the model proposes code: fenced blocks, the `run_code` tool, or `auto`.
    pub protocol: CodeProtocol,
}

/// How the model is asked for code: fenced blocks in its text, the `run_code` tool, or the
/// tool where the server takes tools and fences elsewhere.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CodeProtocol {
    #[default]
    Fences,
    Tools,
    Auto,
}

/// Where a request carries its token limit: most servers read `max_tokens`; OpenAI's newer
/// models want `max_completion_tokens`. airlock switches to the other by itself when a
/// server refuses the one it sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenField {
    MaxTokens,
    MaxCompletionTokens,
}

impl TokenField {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::MaxTokens => "max_tokens",
            Self::MaxCompletionTokens => "max_completion_tokens",
        }
    }

    pub(crate) fn other(self) -> Self {
        match self {
            Self::MaxTokens => Self::MaxCompletionTokens,
            Self::MaxCompletionTokens => Self::MaxTokens,
        }
    }
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            base_url: "https://api.openai.com/v1".into(),
            model: "gpt-4o-mini".into(),
            api_key_env: "OPENAI_API_KEY".into(),
            api_key_header: "Authorization".into(),
            headers: BTreeMap::new(),
            query: BTreeMap::new(),
            temperature: None,
            system_prompt: None,
            max_turns: 10,
            connect_timeout_secs: 10,
            idle_timeout_secs: 120,
            max_retries: 3,
            max_tokens: 4096,
            max_tokens_field: TokenField::MaxTokens,
            max_reply_bytes: ByteSize::mib(1),
            context_window: None,
            protocol: CodeProtocol::Fences,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct UiConfig {
    /// A built-in theme (dark, light, ansi16) or a theme file.
    pub(crate) theme: String,
    /// A syntect theme name or .tmTheme file; unset: the UI theme's own.
    pub(crate) syntax_theme: Option<String>,
    /// Ring the terminal bell when a block waits for a decision.
    pub(crate) bell: bool,
    /// Lines the container-logs pane keeps; older ones are dropped.
    pub(crate) log_lines: usize,
    /// Key overrides: action name → keys, e.g. `approve = ["y", "ctrl-y"]`.
    pub(crate) keys: BTreeMap<String, Vec<String>>,
}

impl Default for UiConfig {
    fn default() -> Self {
        Self {
            theme: "dark".into(),
            syntax_theme: None,
            bell: true,
            log_lines: 10_000,
            keys: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct HistoryConfig {
    /// Record sessions, decisions and runs.
    pub(crate) enabled: bool,
    /// The SQLite file; unset: `history.db` in the data directory.
    pub(crate) file: Option<PathBuf>,
    /// `history prune` removes sessions that ended more than this many days ago; 0 keeps all.
    pub(crate) keep_days: u64,
    /// `history prune` then removes the oldest sessions until the file is this small; 0B: no
    /// limit.
    pub(crate) max_size: ByteSize,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            file: None,
            keep_days: 0,
            max_size: ByteSize(0),
        }
    }
}

/// What happens to a block that no rule decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum ApproveMode {
    /// The operator decides (or the approver command, when configured).
    Ask,
    /// Approve whatever no deny rule forbids. For trusted scripting only.
    All,
    /// Reject every block; the model is told why.
    None,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApprovalConfig {
    pub mode: ApproveMode,
    /// After a block fails, the rest of the message is skipped (and the model told so).
    pub(crate) stop_on_failure: bool,
    pub(crate) deny_languages: Vec<String>,
    pub(crate) allow_languages: Vec<String>,
    /// Regexes searched anywhere in the code; a match rejects the block.
    pub(crate) deny_patterns: Vec<String>,
    /// Regexes that must match the whole code to approve it.
    pub(crate) allow_patterns: Vec<String>,
    /// A program that receives a JSON request on stdin and answers
    /// `{"approved": bool, "reason": "..."}`. Empty: none.
    pub(crate) approver_command: Vec<String>,
    pub(crate) approver_timeout_secs: u64,
}

impl Default for ApprovalConfig {
    fn default() -> Self {
        Self {
            mode: ApproveMode::Ask,
            stop_on_failure: true,
            deny_languages: Vec::new(),
            allow_languages: Vec::new(),
            deny_patterns: Vec::new(),
            allow_patterns: Vec::new(),
            approver_command: Vec::new(),
            approver_timeout_secs: 30,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PullPolicy {
    /// Pull the image when it is not present locally.
    Missing,
    /// Never contact a registry; a missing image is an error.
    Never,
}

/// A protection that the read-back of the container's settings checks. Listing one in
/// `sandbox.waive` lets a run go ahead on a host that cannot provide it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Protection {
    Network,
    Memory,
    Swap,
    Cpus,
    PidsLimit,
    ReadOnlyRoot,
    CapDrop,
    NoNewPrivileges,
    NonRoot,
    Init,
    Nofile,
    Workspace,
    /// A private IPC namespace (`IpcMode` "private").
    Ipc,
    /// No core dumps: the `core` ulimit 0, soft and hard.
    CoreDumps,
}

impl Protection {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Network => "network",
            Self::Memory => "memory",
            Self::Swap => "swap",
            Self::Cpus => "cpus",
            Self::PidsLimit => "pids_limit",
            Self::ReadOnlyRoot => "read_only_root",
            Self::CapDrop => "cap_drop",
            Self::NoNewPrivileges => "no_new_privileges",
            Self::NonRoot => "non_root",
            Self::Init => "init",
            Self::Nofile => "nofile",
            Self::Workspace => "workspace",
            Self::Ipc => "ipc",
            Self::CoreDumps => "core_dumps",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SandboxConfig {
    /// The engine's address (`unix://`, `tcp://`, `ssh://`); unset: DOCKER_HOST, then the
    /// current Docker context, then the local socket.
    pub docker_host: Option<String>,
    /// Allows plain `tcp://` (no TLS) to an address that is not loopback.
    pub allow_insecure_tcp: bool,
    /// The ssh program (and its options) that reaches an `ssh://` engine.
    pub ssh_command: String,
    /// How /workspace reaches the engine: a bind mount of the host directory, or a Docker
    /// volume copied to and from it (an engine that does not share the operator's files).
    pub workspace_mode: WorkspaceMode,
    pub image: String,
    pub offline_image: String,
    pub pull: PullPolicy,
    /// Build `offline_image` from Debian packages when no image can be had otherwise.
    pub build_offline: bool,
    pub network: String,
    pub memory: ByteSize,
    pub swap: ByteSize,
    pub cpus: f64,
    pub pids_limit: i64,
    /// Open files per process (the container's `nofile` ulimit, soft and hard).
    pub nofile: u64,
    pub read_only_root: bool,
    pub tmp_size: ByteSize,
    pub shm_size: ByteSize,
    /// `"auto"` (the invoking user, or 65534 when that is root) or `"UID:GID"`.
    pub user: String,
    pub init: bool,
    pub timeout_secs: u64,
    pub kill_grace_secs: u64,
    pub output_limit: ByteSize,
    pub model_output_limit: ByteSize,
    pub workspace: Option<PathBuf>,
    pub workspace_read_only: bool,
    /// What /workspace may hold while the session runs (a capped tmpfs mirrored to the
    /// workspace directory); `0B` mounts the directory itself, unbounded.
    pub workspace_limit: ByteSize,
    /// How many files and directories /workspace may hold.
    pub workspace_inodes: u64,
    pub env: BTreeMap<String, String>,
    pub pass_env: Vec<String>,
    pub extra_volumes: Vec<String>,
    pub extra_hosts: Vec<String>,
    /// `"all"`, a count, or `"device=0,1"` (see [`gpus::Gpus`]).
    #[serde(deserialize_with = "gpus::deserialize")]
    pub gpus: Option<String>,
    pub runtime: Option<String>,
    pub init_command: Option<String>,
    pub waive: Vec<Protection>,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            docker_host: None,
            allow_insecure_tcp: false,
            ssh_command: "ssh".into(),
            workspace_mode: WorkspaceMode::Auto,
            image: "python:3.12-slim".into(),
            offline_image: "airlock-sandbox:offline".into(),
            pull: PullPolicy::Missing,
            build_offline: true,
            network: "none".into(),
            memory: ByteSize::mib(512),
            swap: ByteSize(0),
            cpus: 1.0,
            pids_limit: 256,
            nofile: 1024,
            read_only_root: true,
            tmp_size: ByteSize::mib(64),
            shm_size: ByteSize::mib(64),
            user: "auto".into(),
            init: true,
            timeout_secs: 60,
            kill_grace_secs: 2,
            output_limit: ByteSize::mib(1),
            model_output_limit: ByteSize::kib(8),
            workspace: None,
            workspace_read_only: false,
            workspace_limit: ByteSize::mib(1024),
            workspace_inodes: 100_000,
            env: BTreeMap::new(),
            pass_env: Vec::new(),
            extra_volumes: Vec::new(),
            extra_hosts: Vec::new(),
            gpus: None,
            runtime: None,
            init_command: None,
            waive: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LanguageConfig {
    /// The interpreter inside the image; the block's file is appended as the last argument.
    pub(crate) command: Vec<String>,
    /// File extension given to the block's file (some interpreters care).
    #[serde(default)]
    pub(crate) extension: String,
    /// Other fence tags that mean this language.
    #[serde(default)]
    pub(crate) aliases: Vec<String>,
}

/// Where the configuration comes from, in precedence order.
#[derive(Debug, Default)]
pub(crate) struct Sources<'a> {
    /// `--config PATH`; when absent the XDG config file is read if it exists.
    pub(crate) explicit_file: Option<&'a Path>,
    /// `-c key=value`, applied in order.
    pub(crate) overrides: &'a [String],
}

impl Config {
    pub(crate) fn load(sources: &Sources<'_>) -> anyhow::Result<Self> {
        let mut config = match sources.explicit_file {
            Some(path) => Self::from_file(path)?,
            None => match default_config_file() {
                Some(path) if path.exists() => Self::from_file(&path)?,
                _ => Self::default(),
            },
        };
        for spec in sources.overrides {
            config.apply_override(spec)?;
        }
        config.validate()?;
        Ok(config)
    }

    pub(crate) fn from_file(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        Self::from_toml(&text)
            .map_err(|err| anyhow::anyhow!("config file {} is invalid: {err}", path.display()))
    }

    pub fn from_toml(text: &str) -> Result<Self, toml::de::Error> {
        toml::from_str(text)
    }

    /// Applies one `-c key=value`. The value is read as the type the key already has, so
    /// `-c sandbox.image=foo:1` needs no quotes while `-c sandbox.timeout_secs=5` is a number.
    pub fn apply_override(&mut self, spec: &str) -> anyhow::Result<()> {
        let Some((key, raw)) = spec.split_once('=') else {
            bail!("-c {spec}: expected key=value, like -c sandbox.timeout_secs=5");
        };
        let key = key.trim();
        let path: Vec<&str> = key.split('.').collect();
        if path.iter().any(|part| part.is_empty()) {
            bail!("-c {spec}: `{key}` is not a key; write section.key, like sandbox.image");
        }
        let mut root = toml::Value::try_from(&*self)
            .context("internal error: the configuration cannot be represented as TOML")?;
        let value = match lookup(&root, &path) {
            Some(toml::Value::String(_)) => toml::Value::String(raw.to_string()),
            Some(existing) => parse_toml_value(raw).map_err(|_| {
                anyhow::anyhow!(
                    "-c {spec}: `{raw}` is not a valid {} for {key}",
                    existing.type_str()
                )
            })?,
            None => parse_toml_value(raw).unwrap_or_else(|_| toml::Value::String(raw.into())),
        };
        insert(&mut root, &path, value).map_err(|why| anyhow::anyhow!("-c {spec}: {why}"))?;
        *self = root
            .try_into()
            .map_err(|err: toml::de::Error| anyhow::anyhow!("-c {spec}: {}", err.message()))?;
        Ok(())
    }

    /// Checks that need more than one key or more than a type.
    pub fn validate(&self) -> anyhow::Result<()> {
        limits::check(self)?;
        engine::check(&self.sandbox)?;
        gpus::check(self.sandbox.gpus.as_deref())?;
        let sandbox = &self.sandbox;
        if sandbox.timeout_secs == 0 {
            bail!("sandbox.timeout_secs must be at least 1");
        }
        if !(sandbox.cpus > 0.0 && sandbox.cpus.is_finite()) {
            bail!("sandbox.cpus must be a positive number of CPUs, like 1 or 0.5");
        }
        if sandbox.pids_limit < 16 {
            bail!(
                "sandbox.pids_limit = {} is too small to run a shell; use 16 or more",
                sandbox.pids_limit
            );
        }
        if sandbox.memory < ByteSize::mib(6) {
            bail!(
                "sandbox.memory = {} is below Docker's minimum of 6MiB",
                sandbox.memory
            );
        }
        if sandbox.waive.contains(&Protection::NoNewPrivileges) {
            bail!(
                "sandbox.waive lists no_new_privileges, which is never waived: without it a \
                 setuid program in the image would make a block root inside the container"
            );
        }
        if sandbox.output_limit < ByteSize(1024) {
            bail!("sandbox.output_limit must be at least 1KiB");
        }
        if sandbox.user != "auto" && parse_user(&sandbox.user).is_none() {
            bail!(
                "sandbox.user = {:?}: expected \"auto\" or \"UID:GID\" with numbers, like \"1000:1000\"",
                sandbox.user
            );
        }
        for (key, patterns) in [
            ("deny_patterns", &self.approval.deny_patterns),
            ("allow_patterns", &self.approval.allow_patterns),
        ] {
            for pattern in patterns {
                if let Err(err) = regex::Regex::new(pattern) {
                    bail!("approval.{key}: `{pattern}` is not a valid regex: {err}");
                }
            }
        }
        let languages = language::LanguageTable::new(&self.languages);
        for (key, names) in [
            ("deny_languages", &self.approval.deny_languages),
            ("allow_languages", &self.approval.allow_languages),
        ] {
            if let Some(unknown) = names.iter().find(|name| languages.resolve(name).is_none()) {
                bail!(
                    "approval.{key}: `{unknown}` is not a language airlock knows ({}); add it under [languages] or fix the name",
                    languages.names().join(", ")
                );
            }
        }
        if self.model.max_turns == 0 {
            bail!("model.max_turns must be at least 1");
        }
        if let Some(temperature) = self.model.temperature
            && !(0.0..=2.0).contains(&temperature)
        {
            bail!("model.temperature = {temperature}: use a number from 0 to 2");
        }
        for (name, language) in &self.languages {
            if language.command.is_empty() || language.command[0].trim().is_empty() {
                bail!("languages.{name}.command must name an interpreter, like [\"node\"]");
            }
        }
        Ok(())
    }
}

/// `"1000:1000"` → (1000, 1000).
pub(crate) fn parse_user(text: &str) -> Option<(u32, u32)> {
    let (uid, gid) = text.split_once(':')?;
    Some((uid.trim().parse().ok()?, gid.trim().parse().ok()?))
}

fn parse_toml_value(raw: &str) -> Result<toml::Value, toml::de::Error> {
    let mut table: toml::Table = toml::from_str(&format!("value = {raw}"))?;
    Ok(table
        .remove("value")
        .unwrap_or(toml::Value::String(raw.into())))
}

fn lookup<'v>(root: &'v toml::Value, path: &[&str]) -> Option<&'v toml::Value> {
    path.iter().try_fold(root, |value, part| value.get(part))
}

fn insert(root: &mut toml::Value, path: &[&str], value: toml::Value) -> Result<(), String> {
    let Some((last, parents)) = path.split_last() else {
        return Err("empty key".into());
    };
    let mut node = root;
    for part in parents {
        let table = node
            .as_table_mut()
            .ok_or_else(|| format!("`{part}` is inside a value that is not a table"))?;
        node = table
            .entry((*part).to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    }
    let table = node
        .as_table_mut()
        .ok_or_else(|| format!("`{last}` is inside a value that is not a table"))?;
    table.insert((*last).to_string(), value);
    Ok(())
}

fn project_dirs() -> Option<directories::ProjectDirs> {
    directories::ProjectDirs::from("", "", "airlock")
}

/// `$XDG_CONFIG_HOME/airlock/config.toml` (or the platform's equivalent).
pub(crate) fn default_config_file() -> Option<PathBuf> {
    project_dirs().map(|dirs| dirs.config_dir().join("config.toml"))
}

/// Where workspaces (and later the history) live: `$XDG_DATA_HOME/airlock`.
pub(crate) fn data_dir() -> anyhow::Result<PathBuf> {
    project_dirs()
        .map(|dirs| dirs.data_dir().to_path_buf())
        .context("cannot find a home directory for airlock's data; set HOME or XDG_DATA_HOME")
}

#[cfg(test)]
mod tests;
