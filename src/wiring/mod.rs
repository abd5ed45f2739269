//! A session wired up for a frontend: the engine with the configured rules and approver,
//! the Docker sandbox starting in the background, and the two channels of the protocol.
//! `airlock run` and the TUI differ only in what they do with the events.

mod earlier;
mod interrupts;

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::approver::CommandApprover;
use crate::config::{self, Config};
use crate::engine::budget::ContextBudget;
use crate::engine::feedback::FeedbackLimits;
use crate::engine::policy::Policy;
use crate::engine::prompt::{PromptFacts, default_system_prompt};
use crate::engine::{
    Bus, Ended, Events, Journal, LanguageTable, Overflow, Session, Settings, Subscriber,
};
use crate::error::usage;
use crate::ids::new_id;
use crate::model::AnyModel;
use crate::model::openai::OpenAiModel;
use crate::model::scripted::ScriptedModel;
use crate::protocol::{Event, Submission};
use crate::sandbox::{self, Leftovers, Notices, SessionRequest};
use crate::store::{SessionInfo, Store};
use std::sync::Arc;

pub(crate) use earlier::Earlier;
pub(crate) use interrupts::Interrupts;

pub(crate) struct Running {
    pub(crate) engine: JoinHandle<Ended>,
    /// The frontend's own subscription to the session's events.
    pub(crate) events: Subscriber,
    pub(crate) ops: mpsc::UnboundedSender<Submission>,
    /// For the final sweep of what a start cut short left behind.
    leftovers: Leftovers,
    /// Why this session is not recorded, when it is not (a broken history file).
    pub(crate) history_problem: Option<String>,
    /// What the session starts with from earlier ones.
    pub(crate) earlier: Earlier,
}

/// What a frontend starts a session with.
pub(crate) struct Launch {
    pub(crate) model: AnyModel,
    /// How the history names the model.
    pub(crate) model_name: String,
    /// The operator's first message, if the frontend has one.
    pub(crate) prompt: Option<String>,
    /// Headless sessions end when a turn leaves nothing to do.
    pub(crate) end_when_idle: bool,
    /// `airlock resume`: the earlier session to continue.
    pub(crate) resume: Option<String>,
    /// Whether the frontend lists the runs of earlier sessions ([`Running::earlier`]).
    pub(crate) past_runs: bool,
}

/// Checks the rules, opens the history once and starts the engine; the sandbox starts
/// inside the session, so its progress arrives as events.
pub(crate) async fn start(config: &Config, launch: Launch) -> anyhow::Result<Running> {
    let Launch {
        model,
        model_name,
        prompt,
        end_when_idle,
        resume,
        past_runs,
    } = launch;
    let model_name = model_name.as_str();
    let policy = Policy::new(&config.approval, &LanguageTable::new(&config.languages))?;
    let approver = CommandApprover::new(
        &config.approval.approver_command,
        Duration::from_secs(config.approval.approver_timeout_secs),
    );
    let mut request = session_request(config, "s")?;
    let found = earlier::read(config, &request.data_dir, resume.as_deref(), past_runs)?;
    request.continues = found.workspace;
    if let Some(session) = &resume {
        // The same session goes on: its id, its record, its workspace.
        request.session = session.clone();
    }
    let mut settings = settings(config, request.session.clone(), end_when_idle);
    settings.resumed = resume.is_some();
    let (ops, op_rx) = mpsc::unbounded_channel();
    let recorded = open_history(
        config,
        found.store,
        &request.session,
        model_name,
        resume.is_some(),
    );
    let (bus, event_sink, history_problem) = event_bus(recorded);
    let events = bus.subscribe();
    let notices: Notices = {
        let events = event_sink.clone();
        std::sync::Arc::new(move |message: String| events.send(Event::Notice { message }))
    };
    let progress: Notices = {
        let events = event_sink.clone();
        Arc::new(move |message: String| events.send(Event::SandboxProgress { message }))
    };
    // Connecting is part of the start, so a frontend is drawn before the engine answers
    // (or not).
    let leftovers = Leftovers::default();
    let start_sandbox = {
        let leftovers = leftovers.clone();
        async move { sandbox::start(request, notices, progress, &leftovers).await }
    };
    let mut session = Session::new(settings, model, approver, policy, event_sink, op_rx);
    if resume.is_some() {
        session = session.with_conversation(earlier::for_the_model(&found.earlier.messages));
    }
    let engine = tokio::spawn(session.run(prompt, start_sandbox));
    Ok(Running {
        engine,
        events,
        ops,
        leftovers,
        history_problem,
        earlier: found.earlier,
    })
}

/// The session's events: recorded in the history and spilled to it when there is one; a
/// history that cannot be opened is said, and no block runs.
fn event_bus(recorded: Result<Option<Recorded>, String>) -> (Bus, Events, Option<String>) {
    match recorded {
        Ok(Some(recorded)) => {
            let bus = Bus::starting_at(recorded.next_seq, Some(recorded.overflow));
            let events = Events::new(bus.clone()).with_journal(recorded.journal);
            (bus, events, None)
        }
        Ok(None) => {
            let bus = Bus::new();
            (bus.clone(), Events::new(bus), None)
        }
        Err(why) => {
            let bus = Bus::new();
            let events = Events::new(bus.clone()).with_broken_journal(why.clone());
            let problem = format!(
                "history unavailable: {why}; no block will run, since none could be \
                 recorded (history.enabled = false runs without a record)"
            );
            (bus, events, Some(problem))
        }
    }
}

/// The history as the engine's journal, and as the bus's overflow.
struct Recorded {
    journal: Journal,
    overflow: Overflow,
    /// The sequence number of the session's next event.
    next_seq: u64,
}

/// The history as the engine's journal: the session is recorded from its first event.
fn open_history(
    config: &Config,
    history: Option<Result<Store, String>>,
    session: &str,
    model: &str,
    resumed: bool,
) -> Result<Option<Recorded>, String> {
    let Some(store) = history else {
        return Ok(None);
    };
    let store = store?;
    if !resumed {
        // Values the user passes into the container may be secrets: only their names are
        // kept.
        let mut sandbox = config.sandbox.clone();
        for value in sandbox.env.values_mut() {
            *value = "<not recorded>".into();
        }
        let sandbox = serde_json::to_string(&sandbox).map_err(|err| err.to_string())?;
        store
            .begin_session(&SessionInfo {
                id: session.to_string(),
                model: model.to_string(),
                base_url: without_credentials(&config.model.base_url),
                sandbox,
            })
            .map_err(|err| err.to_string())?;
    }
    // A resumed session was taken over already (see `earlier::read`): recorded on from
    // where it was.
    let next_seq = store
        .next_event_seq(session)
        .map_err(|err| err.to_string())?;
    let store = Arc::new(std::sync::Mutex::new(store));
    Ok(Some(Recorded {
        journal: journal(Arc::clone(&store), session),
        overflow: overflow(store, session),
        next_seq,
    }))
}

/// `work` on the history, shared by the journal and the overflow.
fn with_store<T>(
    store: &std::sync::Mutex<Store>,
    work: impl FnOnce(&Store) -> Result<T, crate::store::StoreError>,
) -> Result<T, String> {
    let store = store
        .lock()
        .map_err(|_| "the history writer failed earlier".to_string())?;
    work(&store).map_err(|err| err.to_string())
}

/// The engine's journal: each event recorded in `session` of `store`.
fn journal(store: Arc<std::sync::Mutex<Store>>, session: &str) -> Journal {
    let session = session.to_string();
    Arc::new(move |event: &Event| with_store(&store, |store| store.record(&session, event)))
}

/// Where the bus spills events a frontend has not read yet, and reads them back from.
fn overflow(store: Arc<std::sync::Mutex<Store>>, session: &str) -> Overflow {
    let (kept, session) = (Arc::clone(&store), session.to_string());
    let spill_session = session.clone();
    Overflow {
        spill: Arc::new(move |seq, event: &Event| {
            with_store(&kept, |store| store.spill_event(&spill_session, seq, event))
        }),
        read: Arc::new(move |from, to| {
            with_store(&store, |store| store.events(&session, from, to))
        }),
    }
}

impl Running {
    /// A Ctrl-C during start-up can leave a container the sandbox never got to own.
    pub(crate) async fn remove_leftovers(&self) {
        self.leftovers.remove().await;
    }
}

/// The engine's settings from the configuration. `end_when_idle`: headless sessions end when
/// a turn leaves nothing to do.
pub fn settings(config: &Config, session: String, end_when_idle: bool) -> Settings {
    let languages = LanguageTable::new(&config.languages);
    let system_prompt = config.model.system_prompt.clone().unwrap_or_else(|| {
        default_system_prompt(&PromptFacts {
            languages: &languages.names(),
            network: &config.sandbox.network,
            timeout_secs: config.sandbox.timeout_secs,
            workspace_read_only: config.sandbox.workspace_read_only,
            tools: config.model.protocol != crate::config::CodeProtocol::Fences,
        })
    });
    Settings {
        session,
        resumed: false,
        system_prompt,
        max_turns: config.model.max_turns,
        stop_on_failure: config.approval.stop_on_failure,
        block_timeout: Duration::from_secs(config.sandbox.timeout_secs),
        feedback: FeedbackLimits {
            excerpt_bytes: config.sandbox.model_output_limit.as_usize(),
            timeout_secs: config.sandbox.timeout_secs,
            memory_bytes: config.sandbox.memory.0,
            workspace: (
                config.sandbox.workspace_limit.bytes(),
                config.sandbox.workspace_inodes,
            ),
        },
        languages,
        end_when_idle,
        context: config.model.context_window.map(|window| ContextBudget {
            window,
            reply: u64::from(config.model.max_tokens),
        }),
    }
}

/// `--scripted FILE` (a bad file is a usage error), else the configured OpenAI-compatible
/// server (a bad setting is a config error); with the name the screen and the history use.
pub(crate) fn choose_model(
    config: &Config,
    scripted: Option<&std::path::Path>,
) -> anyhow::Result<(AnyModel, String)> {
    Ok(match scripted {
        Some(path) => (
            AnyModel::Scripted(
                ScriptedModel::from_file(path).map_err(|err| usage(err.to_string()))?,
            ),
            format!("scripted ({})", path.display()),
        ),
        None => (
            AnyModel::OpenAi(Box::new(OpenAiModel::new(&config.model)?)),
            config.model.model.clone(),
        ),
    })
}

/// `airlock --demo`'s model: the bundled script `toml`, with the name the screen shows.
pub(crate) fn demo_model(toml: &str) -> anyhow::Result<(AnyModel, String)> {
    let script = ScriptedModel::from_toml(toml)?;
    Ok((AnyModel::Scripted(script), "demo (scripted)".to_string()))
}

/// `https://user:secret@host/v1` → `https://host/v1`: credentials in a URL are never stored.
fn without_credentials(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

/// A new session's sandbox request from the configuration; `prefix` starts the session id.
pub(crate) fn session_request(config: &Config, prefix: &str) -> anyhow::Result<SessionRequest> {
    Ok(SessionRequest {
        session: new_id(prefix),
        config: config.sandbox.clone(),
        secret_env: config.model.api_key_env.clone(),
        data_dir: config::data_dir()?,
        supervisor: sandbox::supervisor_binary()?,
        continues: None,
    })
}

/// The newest session in the history, for `--resume` without an id.
pub(crate) fn latest_session(config: &Config) -> anyhow::Result<String> {
    Store::open_configured(&config.history)?
        .latest_session()?
        .ok_or_else(|| usage("the history holds no session to resume yet"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_the_base_url_are_not_kept() {
        assert_eq!(
            without_credentials("https://u:sk-1@proxy.example/v1"),
            "https://proxy.example/v1"
        );
        assert_eq!(
            without_credentials("http://localhost:11434/v1"),
            "http://localhost:11434/v1"
        );
        assert_eq!(
            without_credentials("https://host/v1/a@b"),
            "https://host/v1/a@b"
        );
    }

    /// Two frontends on a session recorded in a real history file: one reads as events
    /// come, one only at the end, long after the window filled. Both get every event once,
    /// in order, the late one told it read from the history; a resumed session numbers on
    /// after what was spilled.
    #[tokio::test]
    async fn a_frontend_that_falls_behind_reads_back_from_the_history() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.db");
        let store = Store::open(&path).map_err(|err| err.to_string());
        let recorded = open_history(&Config::default(), Some(store), "s-1", "m", false)
            .unwrap()
            .unwrap();
        assert_eq!(recorded.next_seq, 0);
        let bus = Bus::starting_at(recorded.next_seq, Some(recorded.overflow));
        let events = Events::new(bus.clone()).with_journal(recorded.journal);
        let (mut keeping_up, mut late) = (bus.subscribe(), bus.subscribe());
        let sent: Vec<Event> = (0..3000)
            .map(|n| Event::Notice {
                message: format!("notice {n}\u{1b}[2J"),
            })
            .collect();
        let reader = tokio::spawn(async move {
            let mut seen = Vec::new();
            while let Some(event) = keeping_up.recv().await {
                seen.push(event);
            }
            (seen, keeping_up.lagged())
        });
        for (n, event) in sent.iter().enumerate() {
            events.send(event.clone());
            if n % 64 == 0 {
                tokio::task::yield_now().await;
            }
        }
        drop(events);
        let (seen, lagged) = reader.await.unwrap();
        assert_eq!((seen, lagged), (sent.clone(), 0));
        let mut seen_late = Vec::new();
        while let Some(event) = late.recv().await {
            seen_late.push(event);
        }
        assert_eq!(seen_late, sent);
        assert!(late.lagged() >= 1000, "lagged {}", late.lagged());

        let store = Store::open(&path).map_err(|err| err.to_string());
        let resumed = open_history(&Config::default(), Some(store), "s-1", "m", true)
            .unwrap()
            .unwrap();
        assert_eq!(resumed.next_seq, late.lagged());
    }
}
