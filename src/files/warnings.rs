//! What of a run's file record the operator is warned of: a record that is incomplete, files
//! that tools on the host act on by themselves (git hooks, editor and CI settings, direnv,
//! pre-commit, dev containers), and symlinks whose target leaves the workspace. Only those:
//! a warning that lists every file warns of nothing.

use super::recorded::drawn;
use crate::protocol::{FileChange, FileChangeKind};

/// Directories (one or more path components) whose contents host tools run or load by
/// themselves. Matched at ANY depth of the workspace, not only at its root: git finds a
/// `.git` in any parent of where it runs, direnv loads the `.envrc` of any directory it
/// enters, and an editor opened on a subdirectory reads that one's `.vscode`.
const TOOL_DIRS: &[&[&str]] = &[
    &[".git"],
    &[".vscode"],
    &[".idea"],
    &[".devcontainer"],
    &[".husky"],
    &[".github", "workflows"],
];
/// File names host tools act on, matched at any depth likewise.
const TOOL_FILES: &[&str] = &[".envrc", ".pre-commit-config.yaml", ".gitlab-ci.yml"];
/// A warning names at most this many paths, then how many more.
const MAX_NAMED: usize = 50;

/// What the warning of files host tools act on says before it names them.
const TOOL_FILES_WARNING: &str = "files that tools on the host act on by themselves, or links \
     that point out of the workspace; look before you use them there";

/// The warnings for a run's record, each one line: `file list incomplete: …`, then the
/// files host tools act on and the links that point out, when there are any. Names are drawn
/// as the workspace pane draws them; the record itself keeps them recorded.
pub(crate) fn warnings(files: &[FileChange], incomplete: Option<&str>) -> Vec<String> {
    let mut warnings = Vec::new();
    if let Some(why) = incomplete {
        warnings.push(format!("file list incomplete: {why}"));
    }
    let flagged = flagged(files);
    if !flagged.is_empty() {
        warnings.push(format!(
            "the run created or changed {TOOL_FILES_WARNING}: {}",
            named(&flagged)
        ));
    }
    warnings
}

/// The warning for what the walk before a block found new or changed while the list before
/// it was incomplete (`why`): those may be the operator's edits, or files the earlier run
/// wrote past the cut, which no list named. Whatever of them host tools act on is named, as
/// a run's would be; `None` when there is none.
pub(crate) fn found_after_incomplete(files: &[FileChange], why: &str) -> Option<String> {
    let flagged = flagged(files);
    (!flagged.is_empty()).then(|| {
        format!(
            "found after an incomplete file list ({why}), so perhaps written by an earlier \
             run that no list named: {TOOL_FILES_WARNING}: {}",
            named(&flagged)
        )
    })
}

/// How each file to warn of is named, in order; removals are not warned of.
fn flagged(files: &[FileChange]) -> Vec<String> {
    files
        .iter()
        .filter(|file| file.change != FileChangeKind::Removed)
        .filter_map(flag)
        .collect()
}

/// How `file` is named in the warning, when it is one to warn of: drawn from its bytes.
fn flag(file: &FileChange) -> Option<String> {
    let path = drawn(&file.path);
    if let Some(target) = &file.link
        && let Some(reach) = link_reach(&file.path, target)
    {
        return Some(format!("{path} -> {} ({reach})", drawn(target)));
    }
    host_tool_path(&file.path).then_some(path)
}

/// Whether tools on the host act on `path` (relative to the workspace's root) by themselves.
/// Names are compared without regard to ASCII case: on a case-insensitive filesystem (macOS,
/// a casefolded directory) `.VSCode/settings.json` is the file an editor reads.
pub(crate) fn host_tool_path(path: &str) -> bool {
    let parts: Vec<&str> = path.split('/').collect();
    let same = |a: &&str, b: &&str| a.eq_ignore_ascii_case(b);
    let in_dir = TOOL_DIRS.iter().any(|dir| {
        parts
            .windows(dir.len())
            .any(|window| window.iter().zip(dir.iter()).all(|(a, b)| same(a, b)))
    });
    in_dir
        || parts
            .last()
            .is_some_and(|name| TOOL_FILES.iter().any(|file| same(name, file)))
}

/// Whether a symlink at `path` (relative to the workspace's root) pointing to `target` can
/// lead out of the workspace, and how the warning says so.
///
/// An absolute target, or one that climbs above the root, leaves it. The link's own
/// directory is a real one (the walk never follows links), so the `..` a target starts with
/// climbs as it reads; but once the target has named something, that name may itself be a
/// link (say `a/b/p -> ../..`, the root), and the kernel takes the next `..` from where the
/// link leads, not from the name: `a/b/x -> p/../../../etc/passwd` reads as inside, yet
/// reaches three levels above the workspace. Such a target is named as one that may leave.
pub(crate) fn link_reach(path: &str, target: &str) -> Option<&'static str> {
    const OUTSIDE: &str = "outside the workspace";
    if target.starts_with('/') {
        return Some(OUTSIDE);
    }
    let mut depth = path.split('/').count().saturating_sub(1);
    let mut named = false;
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." if named => return Some("may lead outside the workspace through a link"),
            ".." if depth == 0 => return Some(OUTSIDE),
            ".." => depth -= 1,
            _ => {
                depth += 1;
                named = true;
            }
        }
    }
    None
}

fn named(paths: &[String]) -> String {
    let shown = &paths[..paths.len().min(MAX_NAMED)];
    super::name_list(shown, (paths.len() - shown.len()) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, change: FileChangeKind, link: Option<&str>) -> FileChange {
        FileChange {
            path: path.into(),
            change,
            size: 1,
            sha256: None,
            link: link.map(str::to_string),
        }
    }

    #[test]
    fn only_files_host_tools_act_on_are_named_at_any_depth() {
        for path in [
            ".git/hooks/pre-commit",
            ".git/config",
            ".git",
            "sub/.git/hooks/post-checkout",
            ".vscode/settings.json",
            ".idea/workspace.xml",
            ".envrc",
            "app/.envrc",
            ".pre-commit-config.yaml",
            ".github/workflows/x.yml",
            ".gitlab-ci.yml",
            ".devcontainer/devcontainer.json",
            ".husky/pre-push",
            ".VSCode/settings.json",
            "sub/.GIT/hooks/pre-commit",
            ".GitHub/Workflows/x.yml",
            ".EnvRC",
        ] {
            assert!(host_tool_path(path), "{path}");
        }
        for path in [
            "report.csv",
            ".github/CODEOWNERS",
            "workflows/x.yml",
            ".gitignore",
            ".github-workflows",
            "my.envrc",
            "envrc",
            "x.git/config",
            "\\u000A.envrc",
            ".git.bak/config",
        ] {
            assert!(!host_tool_path(path), "{path}");
        }
    }

    #[test]
    fn links_that_climb_out_or_start_at_the_root_leave_the_workspace() {
        let leaves = |path, target| link_reach(path, target) == Some("outside the workspace");
        assert!(leaves("l", "/etc/passwd"));
        assert!(leaves("l", ".."));
        assert!(leaves("a/b/l", "../../../x"));
        assert!(leaves("l", "./../x"));
        assert_eq!(link_reach("a/b/l", "../../x"), None);
        assert_eq!(link_reach("l", "data/new.csv"), None);
        assert_eq!(link_reach("a/l", "../b//./c"), None);
        assert_eq!(link_reach("l", ""), None);
    }

    #[test]
    fn a_link_that_climbs_back_through_another_link_may_leave_and_is_named() {
        // With a/b/p -> ../.. (the root, inside), the kernel reads p/.. above the root:
        // these reach /etc/passwd from a workspace three levels below /, though every `..`
        // reads as inside when counted from the names.
        let through = Some("may lead outside the workspace through a link");
        assert_eq!(link_reach("a/b/p", "../.."), None);
        assert_eq!(link_reach("a/b/x", "p/../../../etc/passwd"), through);
        assert_eq!(link_reach("a/l", "b/../../../x"), through);
        assert_eq!(link_reach("x", "p/.."), through);
        assert_eq!(link_reach("a/x", "../p/q/./r"), None);
    }

    #[test]
    fn the_warning_names_exactly_those_and_removals_are_not_warned_of() {
        let files = [
            file(".envrc", FileChangeKind::Created, None),
            file(".git/config", FileChangeKind::Removed, None),
            file(".github/workflows/x.yml", FileChangeKind::Changed, None),
            file("data.csv", FileChangeKind::Created, None),
            file("in", FileChangeKind::Created, Some("data.csv")),
            file("out", FileChangeKind::Created, Some("../../x")),
        ];
        let warnings = warnings(&files, Some("too many entries (100000)"));
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert_eq!(
            warnings[0],
            "file list incomplete: too many entries (100000)"
        );
        assert!(
            warnings[1].ends_with(
                ": .envrc, .github/workflows/x.yml, out -> ../../x (outside the workspace)"
            ),
            "{}",
            warnings[1]
        );
        assert!(super::warnings(&files[3..5], None).is_empty());
    }

    #[test]
    fn names_in_a_warning_are_drawn_as_the_pane_draws_them() {
        let files = [
            file(
                ".vscode/b\\u000Aairlock: forged",
                FileChangeKind::Created,
                None,
            ),
            file(".idea/\\xFF\\\\", FileChangeKind::Created, None),
            file(
                "l\\u001B[2J",
                FileChangeKind::Created,
                Some("/etc/\\u000Ax"),
            ),
        ];
        let warning = &warnings(&files, None)[0];
        assert!(
            warning.ends_with(
                ": .vscode/b\u{240a}airlock: forged, .idea/\\xFF\\, \
                 l\u{241b}[2J -> /etc/\u{240a}x (outside the workspace)"
            ),
            "{warning}"
        );
        assert!(!warning.chars().any(char::is_control), "{warning:?}");
    }

    #[test]
    fn what_is_found_after_an_incomplete_list_is_warned_of_as_a_run_would_be() {
        let files = [
            file("notes.txt", FileChangeKind::Created, None),
            file(".vscode/settings.json", FileChangeKind::Created, None),
            file(".git/hooks/pre-commit", FileChangeKind::Changed, None),
            file(".envrc", FileChangeKind::Removed, None),
        ];
        let warning = found_after_incomplete(&files, "too many entries (100000)").unwrap();
        assert!(
            warning.starts_with("found after an incomplete file list (too many entries (100000))"),
            "{warning}"
        );
        assert!(
            warning.ends_with(": .vscode/settings.json, .git/hooks/pre-commit"),
            "{warning}"
        );
        assert_eq!(found_after_incomplete(&files[..1], "too deep"), None);
    }

    #[test]
    fn a_long_list_is_cut_with_a_count() {
        let files: Vec<FileChange> = (0..60)
            .map(|n| {
                file(
                    &format!(".git/objects/{n:02}"),
                    FileChangeKind::Created,
                    None,
                )
            })
            .collect();
        let warnings = warnings(&files, None);
        assert!(
            warnings[0].ends_with(".git/objects/49 and 10 more"),
            "{warnings:?}"
        );
    }
}
