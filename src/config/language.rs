//! Which fence tags airlock runs, and with what interpreter.

use std::collections::BTreeMap;

use super::LanguageConfig;

/// A language airlock can run: its canonical name and how to invoke it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Language {
    pub(crate) name: String,
    pub(crate) command: Vec<String>,
    pub(crate) extension: String,
}

impl Language {
    /// Whether its interpreter is CPython (`python`, `python3`, `python3.N`), which opens its
    /// script only once it has started: the supervisor may start it ahead of the code.
    pub(crate) fn starts_ahead(&self) -> bool {
        let Some(program) = self.command.first() else {
            return false;
        };
        let name = program.rsplit('/').next().unwrap_or(program);
        let version = name.strip_prefix("python").unwrap_or("-");
        version.is_empty()
            || version == "3"
            || version
                .strip_prefix("3.")
                .is_some_and(|minor| !minor.is_empty() && minor.bytes().all(|b| b.is_ascii_digit()))
    }

    /// The POSIX shell every image has; airlock's own setup commands run with it.
    pub(crate) fn sh() -> Self {
        Self {
            name: "sh".into(),
            command: vec!["sh".into()],
            extension: "sh".into(),
        }
    }
}

/// The built-in languages merged with the user's `[languages]` table.
#[derive(Debug, Clone)]
pub struct LanguageTable {
    languages: BTreeMap<String, Language>,
    /// Lower-cased tag (name or alias) → canonical name.
    tags: BTreeMap<String, String>,
}

/// The built-in languages, in the order messages list them.
const BUILTIN_NAMES: [&str; 3] = ["python", "bash", "sh"];

fn builtin() -> [(&'static str, LanguageConfig); 3] {
    let spec = |command: &str, extension: &str, aliases: &[&str]| LanguageConfig {
        command: vec![command.to_string()],
        extension: extension.to_string(),
        aliases: aliases.iter().map(|alias| alias.to_string()).collect(),
    };
    let [python, bash, sh] = BUILTIN_NAMES;
    [
        (python, spec("python3", "py", &["py", "python3"])),
        // Not `console`: that tag marks a terminal transcript, commands mixed with output.
        (bash, spec("bash", "sh", &["shell", "zsh"])),
        (sh, spec("sh", "sh", &[])),
    ]
}

impl LanguageTable {
    pub fn new(user: &BTreeMap<String, LanguageConfig>) -> Self {
        let mut table = Self {
            languages: BTreeMap::new(),
            tags: BTreeMap::new(),
        };
        for (name, spec) in builtin() {
            table.add(name, &spec);
        }
        // User entries come last so they can redefine a built-in name or steal an alias.
        for (name, spec) in user {
            table.add(name, spec);
        }
        table
    }

    fn add(&mut self, name: &str, spec: &LanguageConfig) {
        let name = name.to_lowercase();
        let extension = if spec.extension.is_empty() {
            "txt".into()
        } else {
            spec.extension.clone()
        };
        self.languages.insert(
            name.clone(),
            Language {
                name: name.clone(),
                command: spec.command.clone(),
                extension,
            },
        );
        self.tags.insert(name.clone(), name.clone());
        for alias in &spec.aliases {
            self.tags.insert(alias.to_lowercase(), name.clone());
        }
    }

    /// The language a fence tag names, case-insensitively, through aliases.
    pub fn resolve(&self, tag: &str) -> Option<&Language> {
        let name = self.tags.get(&tag.to_lowercase())?;
        self.languages.get(name)
    }

    /// Canonical names, for messages like "airlock runs python, bash, sh".
    pub(crate) fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.languages.keys().map(String::as_str).collect();
        // Built-ins first, in their usual order, then the user's alphabetically.
        names.sort_by_key(|name| (builtin_rank(name), *name));
        names
    }
}

fn builtin_rank(name: &str) -> usize {
    BUILTIN_NAMES
        .iter()
        .position(|builtin| *builtin == name)
        .unwrap_or(usize::MAX)
}

impl Default for LanguageTable {
    fn default() -> Self {
        Self::new(&BTreeMap::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_cpython_is_started_ahead() {
        let table = LanguageTable::default();
        let starts_ahead = |tag: &str| table.resolve(tag).is_some_and(Language::starts_ahead);
        assert!(starts_ahead("python"));
        assert!(!starts_ahead("bash"));
        assert!(!starts_ahead("sh"));
        let with = |program: &str| Language {
            name: "x".into(),
            command: vec![program.into(), "-u".into()],
            extension: "py".into(),
        };
        assert!(with("/usr/bin/python3.11").starts_ahead());
        assert!(with("python").starts_ahead());
        assert!(!with("python2").starts_ahead());
        assert!(!with("python3-config").starts_ahead());
        assert!(!with("pythonista").starts_ahead());
    }

    #[test]
    fn aliases_resolve_case_insensitively() {
        let table = LanguageTable::default();
        for (tag, expected) in [
            ("python", "python"),
            ("Py", "python"),
            ("PYTHON3", "python"),
            ("bash", "bash"),
            ("shell", "bash"),
            ("zsh", "bash"),
            ("sh", "sh"),
        ] {
            assert_eq!(
                table.resolve(tag).map(|l| l.name.as_str()),
                Some(expected),
                "{tag}"
            );
        }
        assert!(table.resolve("rust").is_none());
        assert!(table.resolve("console").is_none(), "a transcript, not bash");
        assert_eq!(table.names(), vec!["python", "bash", "sh"]);
    }

    #[test]
    fn user_languages_are_added() {
        let mut user = BTreeMap::new();
        user.insert(
            "node".to_string(),
            LanguageConfig {
                command: vec!["node".into()],
                extension: "js".into(),
                aliases: vec!["JS".into()],
            },
        );
        let table = LanguageTable::new(&user);
        let node = table.resolve("js").expect("alias resolves");
        assert_eq!(node.command, vec!["node".to_string()]);
        assert_eq!(node.extension, "js");
        assert_eq!(table.names(), vec!["python", "bash", "sh", "node"]);
    }
}
