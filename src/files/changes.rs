//! What each run did to the workspace: the files it created, changed or removed, with their
//! size and SHA-256, found by comparing a walk after the run with the one before it.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::listing::{Entry, EntryKind, Listing, Signature};
use crate::protocol::{FileChange, FileChangeKind};

/// At most this many bytes are hashed after one run; files past it are listed without a
/// digest, so a block that writes gigabytes cannot stall the session.
const HASH_BUDGET: u64 = 1 << 30;

#[derive(Debug, Clone)]
struct Known {
    signature: Signature,
    /// `None` until a run touched it (files already there are not hashed up front).
    sha256: Option<String>,
}

/// The workspace as the last walk left it.
#[derive(Debug)]
pub(crate) struct Tracker {
    root: PathBuf,
    known: HashMap<PathBuf, Known>,
}

impl Tracker {
    /// Remembers what is there now: what a session starts with is no run's change.
    pub(crate) fn start(root: &Path) -> Self {
        let mut tracker = Self {
            root: root.to_path_buf(),
            known: HashMap::new(),
        };
        if let Ok(listing) = Listing::scan(root) {
            tracker.known = listing
                .files()
                .map(|entry| (entry.path.clone(), known(entry, None)))
                .collect();
        }
        tracker
    }

    /// What changed since the last call (or the start), sorted by path.
    pub(crate) fn changes(&mut self) -> Vec<FileChange> {
        let Ok(listing) = Listing::scan(&self.root) else {
            return Vec::new();
        };
        let mut budget = HASH_BUDGET;
        let mut changes = Vec::new();
        let mut now = HashMap::with_capacity(self.known.len());
        for entry in listing.files() {
            let before = match self.known.remove(&entry.path) {
                Some(before) if before.signature == entry.signature => {
                    now.insert(entry.path.clone(), before);
                    continue;
                }
                other => other,
            };
            let sha256 = self.digest(entry, &mut budget);
            let kind = match &before {
                None => Some(FileChangeKind::Created),
                // Only its times or mode changed: the same content is no change.
                Some(before) if sha256.is_some() && before.sha256 == sha256 => None,
                Some(_) => Some(FileChangeKind::Changed),
            };
            if let Some(kind) = kind {
                changes.push(change(entry, kind, sha256.clone()));
            }
            now.insert(entry.path.clone(), known(entry, sha256));
        }
        if !listing.truncated {
            // Past the walk's bound nothing is known to be gone.
            changes.extend(self.known.drain().map(|(path, _)| FileChange {
                path: super::display_path(&path),
                change: FileChangeKind::Removed,
                size: 0,
                sha256: None,
                link: None,
            }));
        }
        self.known = now;
        changes.sort_by(|a, b| a.path.cmp(&b.path));
        changes
    }

    fn digest(&self, entry: &Entry, budget: &mut u64) -> Option<String> {
        match &entry.kind {
            EntryKind::File if entry.size <= *budget => {
                let opened = super::read::open_regular(&self.root, &entry.path).ok()?;
                let mut hasher = Sha256::new();
                let mut reader = opened.file.take(*budget);
                let copied = std::io::copy(&mut reader, &mut hasher).ok()?;
                *budget -= copied;
                Some(format!("{:x}", hasher.finalize()))
            }
            EntryKind::Symlink(target) => Some(format!("{:x}", Sha256::digest(target.as_bytes()))),
            _ => None,
        }
    }
}

fn known(entry: &Entry, sha256: Option<String>) -> Known {
    Known {
        signature: entry.signature,
        sha256,
    }
}

fn change(entry: &Entry, kind: FileChangeKind, sha256: Option<String>) -> FileChange {
    FileChange {
        path: entry.shown_path(),
        change: kind,
        size: entry.size,
        link: match &entry.kind {
            EntryKind::Symlink(target) => Some(target.clone()),
            _ => None,
        },
        // A link's digest (of its target) only serves to tell it changed.
        sha256: sha256.filter(|_| entry.kind == EntryKind::File),
    }
}
