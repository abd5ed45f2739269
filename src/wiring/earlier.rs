//! What a session starts with from the history, read in one opening of it: the conversation
//! of the session it resumes (for the model and for the screen), that session's workspace,
//! and the runs of earlier sessions a screen lists.

use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::error::usage;
use crate::model::{ChatMessage, Role};
use crate::run_record::RunRecord;
use crate::store::{RunFilter, RunRow, Store};

/// How many earlier runs a screen is given.
const PAST_RUNS: usize = 1000;

/// What the frontend is handed of earlier sessions.
#[derive(Debug)]
pub(crate) struct Earlier {
    /// The resumed session's messages as they were shown: (role, content), where results
    /// went to the model as the user.
    pub(crate) messages: Vec<(String, String)>,
    /// Runs of earlier sessions, oldest first, when asked for; or why they cannot be shown.
    pub(crate) runs: Result<Vec<RunRecord>, String>,
}

/// What [`read`] found, for the start of the session.
pub(super) struct Found {
    pub(super) earlier: Earlier,
    /// The resumed session's workspace directory.
    pub(super) workspace: Option<PathBuf>,
    /// The history, opened (or why it could not be), for the session's journal; `None`
    /// when it is off.
    pub(super) store: Option<Result<Store, String>>,
}

/// Reads what the session needs from the history, opening it once. `resume`: the session
/// to continue, taken over for this process (an unknown one, or one whose owner still runs,
/// is a usage error); `past_runs`: whether the frontend lists earlier runs.
pub(super) fn read(
    config: &Config,
    data_dir: &Path,
    resume: Option<&str>,
    past_runs: bool,
) -> anyhow::Result<Found> {
    let wanted = config.history.enabled || resume.is_some();
    let store = wanted.then(|| Store::open_configured(&config.history));
    let mut earlier = Earlier {
        messages: Vec::new(),
        runs: Ok(Vec::new()),
    };
    let mut workspace = None;
    if let Some(session) = resume {
        let store = match &store {
            Some(Ok(store)) => store,
            Some(Err(err)) => return Err(anyhow::anyhow!("{err}")),
            None => return Err(usage("the history is needed to resume a session")),
        };
        earlier.messages = store.conversation(session)?;
        workspace = Some(earlier_workspace(store, data_dir, session));
        // Last, once everything else was read: ours from now on (recorded only with the
        // history on), unless it is open in a process that still runs or is not there.
        let claim = config.history.enabled;
        store
            .reopen_session(session, claim)
            .map_err(|err| usage(err.to_string()))?;
    }
    if past_runs && config.history.enabled {
        earlier.runs = match &store {
            Some(Ok(store)) => oldest_first(store).map_err(|err| err.to_string()),
            Some(Err(err)) => Err(err.to_string()),
            None => Ok(Vec::new()),
        };
    }
    let store = config
        .history
        .enabled
        .then(|| store.map(|opened| opened.map_err(|err| err.to_string())))
        .flatten();
    Ok(Found {
        earlier,
        workspace,
        store,
    })
}

/// A resumed session's messages as the model gets them again: results went to it as the
/// user.
pub(super) fn for_the_model(earlier: &[(String, String)]) -> Vec<ChatMessage> {
    earlier
        .iter()
        .map(|(role, content)| {
            let role = if role == "assistant" {
                Role::Assistant
            } else {
                Role::User
            };
            ChatMessage::new(role, content.clone())
        })
        .collect()
}

/// The latest runs of earlier sessions, oldest first.
fn oldest_first(store: &Store) -> anyhow::Result<Vec<RunRecord>> {
    let rows = store.list_runs(&RunFilter {
        limit: Some(PAST_RUNS),
        ..RunFilter::default()
    })?;
    Ok(rows.into_iter().rev().map(RunRow::into_record).collect())
}

/// Where the resumed session's /workspace was: as the history recorded it, or for a session
/// recorded before workspaces were, its own directory under the data directory.
fn earlier_workspace(store: &Store, data_dir: &Path, earlier: &str) -> PathBuf {
    store
        .session_workspace(earlier)
        .ok()
        .flatten()
        .map_or_else(|| data_dir.join("workspaces").join(earlier), PathBuf::from)
}
