//! Git metadata in the mirror: a copy out to the host never writes or removes a `.git`, or
//! anything in a directory git would open as a repository (see `crate::files::git`). The
//! block's changes there stay in /workspace, and the report names them.

use std::collections::HashSet;
use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::fs::{self, stat_at};
use super::{Direction, Known, KnownDir, PassReport, Signature};
use crate::files::git;

/// Entries of a held-back tree looked at, at most, to name what changed there.
const LOOK_AT: usize = 100_000;

/// Of `names` (one directory's entries on one side), those a copy out leaves alone: every
/// `.git`, and all of them in a directory that looks like a repository. None in a copy in.
pub(super) fn held_names(direction: Direction, names: &[OsString]) -> HashSet<OsString> {
    if direction == Direction::In {
        return HashSet::new();
    }
    let whole = git::looks_like_repository(names.iter().map(|name| name.as_os_str()));
    names
        .iter()
        .filter(|name| whole || git::is_git_name(name))
        .cloned()
        .collect()
}

/// Of the entries of a directory a copy out removes, those it may: the others (git metadata)
/// stay, and those the last pass knew are named in `report`.
pub(super) fn removable(
    direction: Direction,
    entries: Vec<OsString>,
    known: &KnownDir,
    path: &Path,
    report: &mut PassReport,
) -> Vec<OsString> {
    let held = held_names(direction, &entries);
    for name in &held {
        if known.contains_key(name) {
            report.kept_back(&path.join(name));
        }
    }
    entries
        .into_iter()
        .filter(|name| !held.contains(name))
        .collect()
}

/// The names of directory `rel` the pass leaves alone on both sides, and what the last pass
/// knew of them (kept as it was, so a later pass still compares with it). What the block
/// changed there is named in `report`.
pub(super) fn hold_back(
    direction: Direction,
    (from, to, rel): (&OwnedFd, &OwnedFd, &Path),
    names: &[OsString],
    old: &mut KnownDir,
    report: &mut PassReport,
) -> (HashSet<OsString>, KnownDir) {
    if direction == Direction::In {
        return (HashSet::new(), KnownDir::new());
    }
    let sink_names = fs::entries(to).unwrap_or_default();
    let mut held = held_names(direction, names);
    held.extend(held_names(direction, &sink_names));
    if held.is_empty() {
        return (held, KnownDir::new());
    }
    // A directory one side holds as a repository is held whole, on both sides.
    let repository =
        |names: &[OsString]| git::looks_like_repository(names.iter().map(|name| name.as_os_str()));
    if repository(names) || repository(&sink_names) {
        held.extend(names.iter().chain(&sink_names).cloned());
    }
    let mut budget = LOOK_AT;
    let present: HashSet<&OsString> = names.iter().collect();
    let mut kept = KnownDir::new();
    let mut in_order: Vec<&OsString> = held.iter().collect();
    in_order.sort();
    for name in in_order {
        let known = old.remove(name);
        let path = rel.join(name);
        if present.contains(name) {
            name_changes(from, name, &path, known.as_ref(), report, &mut budget);
        } else if known.is_some() {
            report.kept_back(&path);
        }
        if let Some(known) = known {
            kept.insert(name.clone(), known);
        }
    }
    (held, kept)
}

/// Names in `report` what differs in the tree at `name` from what the last pass left in
/// /workspace: a new entry by itself, a changed file, a removed one.
fn name_changes(
    dir: &OwnedFd,
    name: &OsString,
    path: &Path,
    known: Option<&Known>,
    report: &mut PassReport,
    budget: &mut usize,
) {
    if *budget == 0 {
        return;
    }
    *budget -= 1;
    let (Ok(stat), Some(known)) = (stat_at(dir, name), known) else {
        if known.is_none() {
            report.kept_back(path);
        }
        return;
    };
    let now = Signature::of(&stat);
    if !(fs::is_dir(&stat) && known.inside.is_dir()) {
        if !known.inside.matches(now) {
            report.kept_back(path);
        }
        return;
    }
    let Ok(children) = fs::open_dir(dir, name).and_then(|sub| Ok((fs::entries(&sub)?, sub))) else {
        return;
    };
    let (names, sub) = children;
    for child in &names {
        let child_known = known.children.get(child);
        name_changes(&sub, child, &path.join(child), child_known, report, budget);
    }
    let present: HashSet<&[u8]> = names.iter().map(|name| name.as_bytes()).collect();
    for gone in known.children.keys() {
        if !present.contains(gone.as_bytes()) {
            report.kept_back(&path.join(gone));
        }
    }
}
