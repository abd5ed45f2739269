//! The command line. Global options (`--config`, `-c`, `--base-url`, `--model`, `--scripted`)
//! work before or after the subcommand, at every level (`airlock -c A history -c B list -c C`),
//! and every occurrence counts, left to right: each level has its own copy of them, merged in
//! command-line order, so a later `-c` for the same key wins and no earlier one is dropped.
//! (clap's `global = true` would keep only the innermost level's occurrences.)
//!
//! What each command does, prints and returns is described in README.md, "Commands".

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::commands;
use crate::config::{self, Config, Sources};

#[derive(Debug, Parser)]
#[command(
    name = "airlock",
    version,
    about = "Review every code block an LLM writes; run only what you approve, in a hardened Docker sandbox"
)]
pub struct Cli {
    /// The full-screen session with the bundled demo model (no API key, no network).
    #[arg(long)]
    pub(crate) demo: bool,
    #[command(flatten)]
    pub(crate) global: GlobalArgs,
    /// Without a command: the full-screen session.
    #[command(subcommand)]
    pub(crate) command: Option<Command>,
}

/// Options every command takes, before or after its name. Each level of the command line
/// has its own copy; [`Cli::global_options`] merges them in order.
#[derive(Debug, Default, Clone, PartialEq, Args)]
#[command(next_help_heading = "Global options")]
pub(crate) struct GlobalArgs {
    /// Config file (default: $XDG_CONFIG_HOME/airlock/config.toml when it exists).
    #[arg(long, value_name = "PATH")]
    pub(crate) config: Option<PathBuf>,
    /// Override one config key, e.g. -c sandbox.timeout_secs=5 (repeatable; applied left to
    /// right, so a later one wins).
    #[arg(short = 'c', value_name = "KEY=VALUE")]
    pub(crate) overrides: Vec<String>,
    /// OpenAI-compatible base URL, including /v1 (overrides model.base_url).
    #[arg(long, value_name = "URL")]
    pub(crate) base_url: Option<String>,
    /// Model name (overrides model.model).
    #[arg(long)]
    pub(crate) model: Option<String>,
    /// Use the scripted model: replies read in order from a TOML file of
    /// `[[reply]] content = "..."` (no API key, no network).
    #[arg(long, value_name = "FILE")]
    pub(crate) scripted: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// List the fenced code blocks of one markdown message.
    Extract {
        /// Markdown file, or - for standard input.
        #[arg(value_name = "FILE|-")]
        file: Option<PathBuf>,
        /// Print a JSON array instead of a summary.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        global: GlobalArgs,
    },
    /// Run a file of raw code as one block in a fresh sandbox container.
    Exec {
        /// Language of the code (python, bash, sh, or one from [languages]); default: from
        /// the file extension or the shebang.
        #[arg(long, value_name = "L")]
        lang: Option<String>,
        /// Time limit in seconds (overrides sandbox.timeout_secs).
        #[arg(long, value_name = "SECS")]
        timeout: Option<u64>,
        /// Print one JSON object with the result instead of streaming the output.
        #[arg(long)]
        json: bool,
        /// Code file, or - for standard input.
        #[arg(value_name = "FILE|-")]
        file: Option<PathBuf>,
        #[command(flatten)]
        global: GlobalArgs,
    },
    /// Check Docker, the image and that the sandbox limits are really enforced.
    Doctor {
        #[command(flatten)]
        global: GlobalArgs,
    },
    /// Continue a recorded session in the full-screen interface: the model gets its
    /// conversation back.
    Resume {
        /// The session to continue; default: the newest.
        #[arg(value_name = "SESSION")]
        session: Option<String>,
        #[command(flatten)]
        global: GlobalArgs,
    },
    /// Past sessions, decisions and runs.
    History {
        #[command(subcommand)]
        action: HistoryAction,
        #[command(flatten)]
        global: GlobalArgs,
    },
    /// Run a supervised session without a screen: the model's blocks are decided on stdin
    /// (JSON lines, or short answers at a terminal) and run in the sandbox.
    Run {
        /// The task for the model.
        #[arg(long, value_name = "TEXT")]
        prompt: String,
        /// Who decides blocks no rule decides: ask (stdin), all (approve; deny rules still
        /// apply), none (reject, with a reason the model receives). Default: approval.mode.
        #[arg(long, value_enum, value_name = "MODE")]
        approve: Option<config::ApproveMode>,
        /// Model replies to the prompt, each answered with the results of its blocks, before
        /// the run ends with max_turns (overrides model.max_turns).
        #[arg(long, value_name = "N")]
        max_turns: Option<u32>,
        /// Print the session's events as JSON lines.
        #[arg(long)]
        json: bool,
        /// Continue this recorded session (its id from `history list`) instead of starting
        /// one: the same id, its conversation given back to the model, its workspace; the
        /// prompt is the next message. Refused while the airlock process that owns it runs.
        #[arg(long, value_name = "SESSION")]
        resume: Option<String>,
        #[command(flatten)]
        global: GlobalArgs,
    },
    /// The sandbox image: build the offline one, or see which one would be used.
    Image {
        #[command(subcommand)]
        action: ImageAction,
        #[command(flatten)]
        global: GlobalArgs,
    },
    /// Print a shell completion script, e.g. `airlock completions bash >
    /// ~/.local/share/bash-completion/completions/airlock`.
    Completions {
        /// The shell the script is for.
        #[arg(value_enum, value_name = "SHELL")]
        shell: clap_complete::Shell,
    },
    /// The in-container supervisor (internal): runs each requested block as UID:GID and
    /// answers in frames on stdout.
    #[command(hide = true)]
    Supervise {
        #[arg(long)]
        uid: u32,
        #[arg(long)]
        gid: u32,
        /// Where each block's private directory is made (not writable by UID).
        #[arg(long)]
        scratch: PathBuf,
        /// The blocks' working directory.
        #[arg(long)]
        workdir: PathBuf,
        /// A directory emptied after every block, so nothing hidden there reaches the next
        /// one (repeatable: /tmp, /dev/shm).
        #[arg(long, value_name = "DIR")]
        ephemeral: Vec<PathBuf>,
        /// The host's workspace directory, mirrored with the working directory (a capped
        /// tmpfs) before and after every block.
        #[arg(long, value_name = "DIR")]
        mirror: Option<PathBuf>,
    },
    /// Print the manual page (roff), e.g. `airlock man | man -l -`; or write one page per
    /// command into a directory.
    Man {
        /// Write airlock.1, airlock-run.1, airlock-history-list.1, … into DIR instead.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ImageAction {
    /// Build the offline sandbox image (airlock-sandbox:offline) from Debian packages.
    Build {
        /// Rebuild even when the image exists.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        global: GlobalArgs,
    },
    /// Which sandbox image would be used, where it comes from, and its digest.
    Status {
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        global: GlobalArgs,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum HistoryAction {
    /// Runs, newest first.
    List {
        /// Only this session's runs.
        #[arg(long, value_name = "ID")]
        session: Option<String>,
        /// Only runs whose code or output contains TEXT (any case).
        #[arg(long, value_name = "TEXT")]
        grep: Option<String>,
        /// At most N runs.
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
        /// Print a JSON array.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        global: GlobalArgs,
    },
    /// One run (its code, decision and output) or one session (as a transcript).
    Show {
        #[arg(value_name = "RUN|SESSION")]
        id: String,
        #[command(flatten)]
        global: GlobalArgs,
    },
    /// Apply the retention limits (history.keep_days, history.max_size).
    Prune {
        #[command(flatten)]
        global: GlobalArgs,
    },
    /// A whole session: a readable Markdown transcript, or JSON.
    Export {
        #[arg(value_name = "SESSION")]
        session: String,
        #[arg(long, value_enum, default_value = "md")]
        format: commands::history::Format,
        #[command(flatten)]
        global: GlobalArgs,
    },
}

impl Cli {
    /// The global options of every level, in command-line order (the top level's come
    /// before the subcommand's name, the subcommand's before a nested one's).
    pub(crate) fn global_options(&self) -> GlobalArgs {
        let mut merged = self.global.clone();
        for level in self.command.iter().flat_map(Command::global_levels) {
            merged.append(level);
        }
        merged
    }
}

impl Command {
    /// This command's global options, then its nested subcommand's.
    fn global_levels(&self) -> Vec<&GlobalArgs> {
        match self {
            Command::Extract { global, .. }
            | Command::Exec { global, .. }
            | Command::Doctor { global }
            | Command::Resume { global, .. }
            | Command::Run { global, .. } => vec![global],
            Command::History { global, action } => vec![global, action.global()],
            Command::Image { global, action } => vec![global, action.global()],
            Command::Completions { .. } | Command::Man { .. } | Command::Supervise { .. } => {
                Vec::new()
            }
        }
    }
}

impl ImageAction {
    fn global(&self) -> &GlobalArgs {
        match self {
            ImageAction::Build { global, .. } | ImageAction::Status { global, .. } => global,
        }
    }
}

impl HistoryAction {
    fn global(&self) -> &GlobalArgs {
        match self {
            HistoryAction::List { global, .. }
            | HistoryAction::Show { global, .. }
            | HistoryAction::Prune { global }
            | HistoryAction::Export { global, .. } => global,
        }
    }
}

impl GlobalArgs {
    /// Adds the options of a later level: its `-c` overrides come after these, and an option
    /// it gives replaces the one given here.
    pub(crate) fn append(&mut self, later: &GlobalArgs) {
        self.overrides.extend(later.overrides.iter().cloned());
        replace_if_given(&mut self.config, &later.config);
        replace_if_given(&mut self.base_url, &later.base_url);
        replace_if_given(&mut self.model, &later.model);
        replace_if_given(&mut self.scripted, &later.scripted);
    }

    /// Defaults < config file < `-c` < dedicated flags.
    pub(crate) fn load_config(&self) -> anyhow::Result<Config> {
        let mut config = Config::load(&Sources {
            explicit_file: self.config.as_deref(),
            overrides: &self.overrides,
        })?;
        if let Some(base_url) = &self.base_url {
            config.model.base_url = base_url.clone();
        }
        if let Some(model) = &self.model {
            config.model.model = model.clone();
        }
        // The key bindings are the screen's; a broken one is refused here all the same, for
        // every command, as the rest of the file is.
        crate::tui::keys::keymap::Keymap::new(&config.ui.keys)?;
        Ok(config)
    }
}

fn replace_if_given<T: Clone>(earlier: &mut Option<T>, later: &Option<T>) {
    if later.is_some() {
        earlier.clone_from(later);
    }
}

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    // Completions and the man page read no configuration and leave no log behind.
    if !matches!(
        cli.command,
        Some(Command::Completions { .. } | Command::Man { .. } | Command::Supervise { .. })
    ) {
        init_logging();
    }
    let global = cli.global_options();
    let load = || global.load_config();
    let Some(command) = cli.command else {
        return full_screen(&load()?, &global, cli.demo).await;
    };
    match command {
        Command::Completions { shell } => generated::completions(shell),
        Command::Man { dir } => generated::man_pages(dir.as_deref()),
        Command::Supervise {
            uid,
            gid,
            scratch,
            workdir,
            ephemeral,
            mirror,
        } => {
            let identity = crate::supervisor::serve::Identity {
                uid,
                gid,
                scratch,
                workdir,
                ephemeral,
                mirror,
            };
            crate::supervisor::serve::serve(&identity).map_err(anyhow::Error::msg)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Extract { file, json, .. } => {
            commands::extract::run(&load()?, file.as_deref(), json)
        }
        Command::Exec {
            lang,
            timeout,
            json,
            file,
            ..
        } => {
            let mut config = load()?;
            if let Some(timeout) = timeout {
                config.sandbox.timeout_secs = timeout;
                config.validate()?;
            }
            let options = commands::exec::Options { lang, json, file };
            commands::exec::run(&config, &options).await
        }
        Command::Doctor { .. } => commands::doctor::run(&load()?).await,
        Command::Resume { session, .. } => resume(&load()?, session, &global).await,
        Command::History { action, .. } => history(&load()?, action),
        Command::Image { action, .. } => match action {
            ImageAction::Build { force, .. } => commands::image::build(&load()?, force).await,
            ImageAction::Status { json, .. } => commands::image::status(&load()?, json).await,
        },
        Command::Run {
            prompt,
            approve,
            max_turns,
            json,
            resume,
            ..
        } => {
            let options = commands::run::Options {
                prompt,
                approve,
                max_turns,
                json,
                scripted: global.scripted.clone(),
                resume,
            };
            commands::run::run(&load()?, &options).await
        }
    }
}

/// `airlock [--demo]`: the full-screen session.
async fn full_screen(config: &Config, global: &GlobalArgs, demo: bool) -> anyhow::Result<ExitCode> {
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        return Err(crate::error::usage(
            "the full-screen session needs a terminal; without one use `airlock run --prompt TEXT` (see --help)",
        ));
    }
    let options = crate::tui::Options {
        demo,
        scripted: global.scripted.clone(),
        resume: None,
    };
    crate::tui::run(config, options).await
}

async fn resume(
    config: &Config,
    session: Option<String>,
    global: &GlobalArgs,
) -> anyhow::Result<ExitCode> {
    let session = match session {
        Some(session) => session,
        None => crate::wiring::latest_session(config)?,
    };
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        return Err(crate::error::usage("airlock resume needs a terminal"));
    }
    let options = crate::tui::Options {
        demo: false,
        scripted: global.scripted.clone(),
        resume: Some(session),
    };
    crate::tui::run(config, options).await
}

fn history(config: &Config, action: HistoryAction) -> anyhow::Result<ExitCode> {
    match action {
        HistoryAction::List {
            session,
            grep,
            limit,
            json,
            ..
        } => {
            let filter = crate::store::RunFilter {
                session,
                grep,
                limit,
                run: None,
            };
            commands::history::list(config, &filter, json)
        }
        HistoryAction::Show { id, .. } => commands::history::show(config, &id),
        HistoryAction::Prune { .. } => commands::history::prune(config),
        HistoryAction::Export {
            session, format, ..
        } => commands::history::export(config, &session, format),
    }
}

/// Logs go to a file under the data directory, never to the terminal. Level from
/// AIRLOCK_LOG (default: info).
fn init_logging() {
    let Ok(dir) = config::data_dir() else { return };
    let dir = dir.join("logs");
    if std::fs::create_dir_all(&dir).is_err() {
        return;
    }
    let Ok(file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("airlock.log"))
    else {
        return;
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("AIRLOCK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(file))
        .try_init();
}

mod generated;
#[cfg(test)]
mod tests;
