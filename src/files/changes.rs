//! What each run did to the workspace: the files it created, changed or removed, with their
//! size and SHA-256, found by comparing a walk after the run with the one before it. A walk
//! cut short (too deep, too many entries, a directory it could not read) says so, and forgets
//! nothing it did not reach: those files are neither removed nor created by it.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::listing::{Entry, EntryKind, Listing, Signature};
use crate::protocol::{FileChange, FileChangeKind};

/// At most this many bytes are hashed after one run; files past it are listed without a
/// digest, so a block that writes gigabytes cannot stall the session.
const HASH_BUDGET: u64 = 1 << 30;

/// How many levels the record's walk enters: more than the bounded workspace's copy reaches
/// (64), so whatever that copy brings to the host is seen. In an unbounded workspace the
/// block writes the host directly and may go deeper: past this the record says it is
/// incomplete.
pub(crate) const RECORD_DEPTH: usize = 128;

/// How a change reads in a transcript, a listing or the logs pane.
impl FileChange {
    /// `created  data/new.csv  8 B  sha256 492d…` (the whole digest), `removed  old.txt`,
    /// `created  latest -> data/new.csv`, names as the record keeps them.
    pub(crate) fn describe(&self) -> String {
        self.describe_naming(str::to_string)
    }

    /// The same with names drawn as the workspace pane draws them, for a line said as the
    /// run goes (the record and what is read back from it keep the recorded form).
    pub(crate) fn describe_drawn(&self) -> String {
        self.describe_naming(super::recorded::drawn)
    }

    fn describe_naming(&self, name: impl Fn(&str) -> String) -> String {
        let change = self.change.name();
        let path = name(&self.path);
        if self.change == FileChangeKind::Removed {
            return format!("{change:<8} {path}");
        }
        if let Some(target) = &self.link {
            return format!("{change:<8} {path} -> {}", name(target));
        }
        let digest = self
            .sha256
            .as_deref()
            .map_or_else(|| "not hashed".to_string(), |hash| format!("sha256 {hash}"));
        let size = super::human_size(self.size);
        format!("{change:<8} {path}  {size}  {digest}")
    }
}

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
    /// Why the last walk did not see the whole workspace.
    incomplete: Option<String>,
}

impl Tracker {
    /// Remembers what is there now: what a session starts with is no run's change.
    pub(crate) fn start(root: &Path) -> Self {
        let mut tracker = Self {
            root: root.to_path_buf(),
            known: HashMap::new(),
            incomplete: None,
        };
        if let Ok(listing) = Listing::scan_to(root, RECORD_DEPTH) {
            tracker.known = listing
                .files()
                .map(|entry| (entry.path.clone(), known(entry, None)))
                .collect();
        }
        tracker
    }

    /// Why the last call's walk did not see the whole workspace: `too deep (128 levels)`,
    /// `too many entries (100000)`, …; `None` when it did.
    pub(crate) fn incomplete(&self) -> Option<&str> {
        self.incomplete.as_deref()
    }

    /// What changed since the last call (or the start), sorted by path.
    pub(crate) fn changes(&mut self) -> Vec<FileChange> {
        let listing = match Listing::scan_to(&self.root, RECORD_DEPTH) {
            Ok(listing) => listing,
            Err(err) => {
                self.incomplete = Some(format!("the workspace could not be read ({err})"));
                return Vec::new();
            }
        };
        self.incomplete = incompleteness(&listing);
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
        // What the walk did not reach is not known to be gone: its record is kept.
        let unentered: HashSet<&Path> = listing.unentered.iter().map(PathBuf::as_path).collect();
        for (path, before) in self.known.drain() {
            let unreached =
                listing.truncated || path.ancestors().any(|dir| unentered.contains(dir));
            if unreached {
                now.insert(path, before);
            } else {
                changes.push(FileChange {
                    path: super::recorded::recorded_path(&path),
                    change: FileChangeKind::Removed,
                    size: 0,
                    sha256: None,
                    link: None,
                });
            }
        }
        self.known = now;
        changes.sort_by(|a, b| a.path.cmp(&b.path));
        changes
    }

    /// The walk before a block. What changed since the last run is the operator's doing and
    /// becomes what the tracker knows, so the block is not blamed for it. But while the last
    /// walk was cut, a file the run before wrote past the cut (a git hook, editor settings)
    /// shows up only now, once the padding is gone: it is not taken in silently. The notice
    /// returned names what of it host tools act on and says the earlier list was incomplete.
    pub(crate) fn before_block(&mut self) -> Option<String> {
        let earlier = self.incomplete.clone();
        let found = self.changes();
        super::warnings::found_after_incomplete(&found, earlier.as_deref()?)
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

/// Why `listing` is not the whole workspace, for the record.
fn incompleteness(listing: &Listing) -> Option<String> {
    let mut why = Vec::new();
    if listing.too_deep > 0 {
        why.push(format!("too deep ({RECORD_DEPTH} levels)"));
    }
    if listing.truncated {
        why.push(format!(
            "too many entries ({})",
            super::listing::MAX_ENTRIES
        ));
    }
    let unreadable = listing.unread_dirs() - listing.too_deep;
    if unreadable > 0 {
        why.push(format!("directories that could not be read ({unreadable})"));
    }
    (!why.is_empty()).then(|| why.join("; "))
}

fn known(entry: &Entry, sha256: Option<String>) -> Known {
    Known {
        signature: entry.signature,
        sha256,
    }
}

fn change(entry: &Entry, kind: FileChangeKind, sha256: Option<String>) -> FileChange {
    FileChange {
        path: entry.recorded_path(),
        change: kind,
        size: entry.size,
        link: match &entry.kind {
            EntryKind::Symlink(target) => Some(super::recorded::recorded(target.as_bytes())),
            _ => None,
        },
        // A link's digest (of its target) only serves to tell it changed.
        sha256: sha256.filter(|_| entry.kind == EntryKind::File),
    }
}
