//! The host copy of a workspace volume around each block: the operator's changes go into
//! the volume before it, the block's come back after it, and airlock says what did not.

use super::DockerSandbox;
use crate::files::display_path;
use crate::sandbox::SandboxError;
use crate::sandbox::workspace_copy::Applied;

/// Paths named in one notice at most; past them, a count.
const MAX_NAMED: usize = 20;

impl DockerSandbox {
    /// An engine's workspace volume, after a block: the host copy is brought up to date, so
    /// the tracker, the history and a resume see what the block left.
    pub(super) async fn copy_back(&mut self, touched: Option<&[String]>) {
        let (Some((_, path)), Some(container)) = (self.workspace_volume(), &self.container) else {
            return;
        };
        // A read-only workspace is never written, on either side.
        if self.config.workspace_read_only {
            return;
        }
        let copy = super::volume::CopyBack {
            container: &container.id,
            path,
            host: &self.plan.workspace,
            // What /workspace may hold, sparse files at their full size: no archive larger
            // than that is taken onto this machine.
            budget: self.config.workspace_limit.bytes(),
        };
        let copied = copy.run(&self.docker, touched, &mut self.synced).await;
        let host = crate::files::display_name(self.plan.workspace.as_os_str());
        match copied {
            Ok(applied) => {
                for notice in applied_notices(&applied, &host) {
                    (self.notices)(notice);
                }
            }
            Err(why) => (self.notices)(format!(
                "the workspace could not be copied back to {host}: {}; the host copy keeps \
                 its earlier state",
                crate::output::sanitize::neutralize(&why)
            )),
        }
    }

    /// The operator's edits to the host copy, into the workspace volume before a block.
    pub(super) async fn send_edits(&mut self) -> Result<(), SandboxError> {
        let (Some((_, path)), Some(container)) = (self.workspace_volume(), &self.container) else {
            return Ok(());
        };
        if self.config.workspace_read_only {
            return Ok(());
        }
        let code = self.plan.users.code;
        super::volume::copy_in(
            &self.docker,
            &container.id,
            path,
            &self.plan.workspace,
            code,
            &mut self.synced,
        )
        .await
    }
}

/// What an operator is told of a copy back that did not simply bring everything.
fn applied_notices(applied: &Applied, host: &str) -> Vec<String> {
    let mut notices = Vec::new();
    if applied.skipped > 0 {
        notices.push(format!(
            "{} entries of the workspace are neither files, directories nor symlinks and were \
             not copied to {host}",
            applied.skipped
        ));
    }
    if !applied.held.is_empty() {
        notices.push(format!(
            "changed both in {host} and in /workspace during the run: {}; the host copy keeps \
             your version and /workspace the block's, until one of them changes again",
            named(applied.held.iter().map(|path| display_path(path)))
        ));
    }
    if !applied.failed.is_empty() {
        let failed = applied.failed.iter().map(|(path, why)| {
            let why = crate::output::sanitize::neutralize(why);
            format!("{} ({why})", display_path(path))
        });
        notices.push(format!(
            "could not bring to {host}: {}; everything else the block changed is there",
            named(failed)
        ));
    }
    notices
}

/// The first [`MAX_NAMED`] of `names`, and how many more there are.
fn named(names: impl ExactSizeIterator<Item = String>) -> String {
    let total = names.len();
    let mut shown: Vec<String> = names.take(MAX_NAMED).collect();
    if total > MAX_NAMED {
        shown.push(format!("and {} more", total - MAX_NAMED));
    }
    shown.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn held_and_failed_paths_are_named_harmlessly_and_counted_past_twenty() {
        let applied = Applied {
            held: vec![PathBuf::from("notes.txt"), PathBuf::from("\u{1b}[2Jx")],
            failed: (0..25)
                .map(|n| (PathBuf::from(format!("f{n}")), "denied".to_string()))
                .collect(),
            ..Applied::default()
        };
        let notices = applied_notices(&applied, "/w");
        assert_eq!(notices.len(), 2, "{notices:?}");
        assert!(notices[0].contains("notes.txt, "), "{}", notices[0]);
        assert!(!notices[0].contains('\u{1b}'), "{}", notices[0]);
        assert!(
            notices[1].contains("f19 (denied), and 5 more"),
            "{}",
            notices[1]
        );
        assert!(!notices[1].contains("f20"), "{}", notices[1]);
    }
}
