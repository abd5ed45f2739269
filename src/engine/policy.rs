//! Approval rules: deny, then allow, then ask. Config rules by language and by regex on the
//! code, rules the operator adds with approve-for-session, and the `--approve` mode.
//!
//! Patterns see the code twice: as written, and [`folded`] the way a reader that ignores
//! lookalikes sees it (Python reads `ｅｖａｌ` as `eval`). A deny pattern denies when either
//! matches; an allow pattern allows only when both do.

use std::collections::BTreeSet;

use regex::Regex;
use unicode_normalization::UnicodeNormalization;

use super::LanguageTable;
use crate::config::{ApprovalConfig, ApproveMode};
use crate::protocol::{ApprovalRule, DecisionKind, DecisionSource, Scope};

/// A decision made without asking anyone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ruling {
    pub(crate) kind: DecisionKind,
    pub(crate) source: DecisionSource,
    pub(crate) reason: String,
}

impl Ruling {
    fn new(kind: DecisionKind, source: DecisionSource, reason: String) -> Self {
        Self {
            kind,
            source,
            reason,
        }
    }
}

/// What approve-for-session covers.
#[derive(Debug, Clone, PartialEq, Eq)]
enum SessionRule {
    Language(String),
    /// The same code in the same language.
    Exact {
        language: String,
        code: String,
    },
}

#[derive(Debug, Clone)]
pub struct Policy {
    mode: ApproveMode,
    deny_languages: BTreeSet<String>,
    allow_languages: BTreeSet<String>,
    deny_patterns: Vec<Regex>,
    /// Anchored: they must match the whole code.
    allow_patterns: Vec<Regex>,
    session_rules: Vec<SessionRule>,
}

impl Policy {
    /// Language names in the rules may be aliases (`py`); they are compared by canonical name.
    pub fn new(config: &ApprovalConfig, languages: &LanguageTable) -> anyhow::Result<Self> {
        let canonical = |names: &[String]| -> BTreeSet<String> {
            names
                .iter()
                .map(|name| {
                    languages
                        .resolve(name)
                        .map_or_else(|| name.clone(), |l| l.name.clone())
                })
                .collect()
        };
        let compile = |key: &str, pattern: &str, anchored: bool| {
            let source = if anchored {
                format!(r"\A(?:{pattern})\z")
            } else {
                pattern.to_string()
            };
            Regex::new(&source).map_err(|err| {
                anyhow::anyhow!("approval.{key}: `{pattern}` is not a valid regex: {err}")
            })
        };
        Ok(Self {
            mode: config.mode,
            deny_languages: canonical(&config.deny_languages),
            allow_languages: canonical(&config.allow_languages),
            deny_patterns: config
                .deny_patterns
                .iter()
                .map(|pattern| compile("deny_patterns", pattern, false))
                .collect::<Result<_, _>>()?,
            allow_patterns: config
                .allow_patterns
                .iter()
                .map(|pattern| compile("allow_patterns", pattern, true))
                .collect::<Result<_, _>>()?,
            session_rules: Vec::new(),
        })
    }

    #[cfg(test)]
    pub(crate) fn mode(&self) -> ApproveMode {
        self.mode
    }

    /// The ruling for a block, or `None` when someone has to decide it.
    pub(crate) fn rule(&self, language: &str, code: &str) -> Option<Ruling> {
        use DecisionKind::{Approve, Reject};
        use DecisionSource::{Flag, Rule};
        if self.deny_languages.contains(language) {
            let why = format!("approval.deny_languages forbids {language} blocks");
            return Some(Ruling::new(Reject, Rule, why));
        }
        // Only patterns read it: without any, a large block is not folded for nothing.
        let patterns = !(self.deny_patterns.is_empty() && self.allow_patterns.is_empty());
        let folded = if patterns {
            folded(code)
        } else {
            String::new()
        };
        if let Some(pattern) = self.deny_patterns.iter().find(|p| p.is_match(code)) {
            let why = format!("the code matches the deny pattern `{pattern}`");
            return Some(Ruling::new(Reject, Rule, why));
        }
        if let Some(pattern) = self.deny_patterns.iter().find(|p| p.is_match(&folded)) {
            let why = format!(
                "the code matches the deny pattern `{pattern}` once lookalike characters are \
                 read as the letters they stand for (fullwidth and other compatibility forms, \
                 NFKC, as Python reads names) and invisible ones are removed"
            );
            return Some(Ruling::new(Reject, Rule, why));
        }
        if self.mode == ApproveMode::None {
            let why = "this session runs with --approve none: no block runs".to_string();
            return Some(Ruling::new(Reject, Flag, why));
        }
        if let Some(rule) = self.session_rules.iter().find(|r| r.covers(language, code)) {
            return Some(Ruling::new(Approve, Rule, rule.describe()));
        }
        if self.allow_languages.contains(language) {
            let why = format!("approval.allow_languages allows {language} blocks");
            return Some(Ruling::new(Approve, Rule, why));
        }
        let whole = code.trim_end_matches('\n');
        let folded_whole = folded.trim_end_matches('\n');
        let allows = |p: &&Regex| p.is_match(whole) && p.is_match(folded_whole);
        if let Some(pattern) = self.allow_patterns.iter().find(allows) {
            let why = format!("the whole code matches the allow pattern `{pattern}`");
            return Some(Ruling::new(Approve, Rule, why));
        }
        if self.mode == ApproveMode::All {
            let why = "this session runs with --approve all".to_string();
            return Some(Ruling::new(Approve, Flag, why));
        }
        None
    }

    /// Remembers an approve-for-session.
    pub(crate) fn approve_for_session(&mut self, scope: Scope, language: &str, code: &str) {
        let rule = match scope {
            Scope::Language => SessionRule::Language(language.to_string()),
            Scope::Exact => SessionRule::Exact {
                language: language.to_string(),
                code: code.to_string(),
            },
        };
        if !self.session_rules.contains(&rule) {
            self.session_rules.push(rule);
        }
    }
}

impl Policy {
    /// The rules in force, in the order they are tried.
    pub(crate) fn rules(&self) -> Vec<ApprovalRule> {
        use DecisionKind::{Approve, Reject};
        let rule = |id: String, effect, covers: String, origin: &str| ApprovalRule {
            id,
            effect,
            covers,
            origin: origin.to_string(),
        };
        let mut rules = Vec::new();
        for language in &self.deny_languages {
            let covers = format!("every {language} block");
            rules.push(rule(
                format!("deny_languages:{language}"),
                Reject,
                covers,
                "approval.deny_languages",
            ));
        }
        for pattern in &self.deny_patterns {
            let covers = format!("code matching `{pattern}`");
            rules.push(rule(
                format!("deny_patterns:{pattern}"),
                Reject,
                covers,
                "approval.deny_patterns",
            ));
        }
        if self.mode == ApproveMode::None {
            rules.push(rule(
                "approve:none".into(),
                Reject,
                "every block".into(),
                "--approve none",
            ));
        }
        for session in &self.session_rules {
            rules.push(rule(
                session.id(),
                Approve,
                session.in_words(),
                "approve for session",
            ));
        }
        for language in &self.allow_languages {
            let covers = format!("every {language} block");
            rules.push(rule(
                format!("allow_languages:{language}"),
                Approve,
                covers,
                "approval.allow_languages",
            ));
        }
        for pattern in &self.allow_patterns {
            let shown = pattern
                .as_str()
                .trim_start_matches(r"\A(?:")
                .trim_end_matches(r")\z");
            let covers = format!("code that is all `{shown}`");
            rules.push(rule(
                format!("allow_patterns:{shown}"),
                Approve,
                covers,
                "approval.allow_patterns",
            ));
        }
        if self.mode == ApproveMode::All {
            rules.push(rule(
                "approve:all".into(),
                Approve,
                "every block no deny rule forbids".into(),
                "--approve all",
            ));
        }
        rules
    }

    /// Lifts the rule with this id for the rest of the session; the rule, when there was one.
    pub(crate) fn revoke(&mut self, id: &str) -> Option<ApprovalRule> {
        let rule = self.rules().into_iter().find(|rule| rule.id == id)?;
        let (kind, name) = id.split_once(':').unwrap_or((id, ""));
        match kind {
            "deny_languages" => {
                self.deny_languages.remove(name);
            }
            "allow_languages" => {
                self.allow_languages.remove(name);
            }
            "deny_patterns" => self.deny_patterns.retain(|p| p.as_str() != name),
            "allow_patterns" => self
                .allow_patterns
                .retain(|p| p.as_str() != format!(r"\A(?:{name})\z")),
            "approve" => self.mode = ApproveMode::Ask,
            _ => self.session_rules.retain(|session| session.id() != id),
        }
        Some(rule)
    }
}

/// `code` with invisible characters removed, then in NFKC: fullwidth `ｅｖａｌ` becomes
/// `eval` (Python folds names this way), `o\u{200b}s` becomes `os`.
fn folded(code: &str) -> String {
    code.chars().filter(|c| !is_hidden(*c)).nfkc().collect()
}

/// Characters that draw nothing or only steer how text is drawn: controls other than tab
/// and line feed, format characters (zero-width, bidi controls, tags), variation selectors,
/// fillers, and the Unicode line and paragraph separators.
fn is_hidden(c: char) -> bool {
    crate::output::sanitize::is_invisible(c)
        || matches!(c,
            '\u{2028}' | '\u{2029}' | '\u{600}'..='\u{605}' | '\u{6dd}' | '\u{70f}'
            | '\u{890}' | '\u{891}' | '\u{8e2}' | '\u{110bd}' | '\u{110cd}'
            | '\u{13430}'..='\u{1343f}' | '\u{1bca0}'..='\u{1bca3}'
            | '\u{1d173}'..='\u{1d17a}' | '\u{e0100}'..='\u{e01ef}')
}

impl SessionRule {
    fn id(&self) -> String {
        match self {
            Self::Language(language) => format!("session:{language}"),
            Self::Exact { language, code } => {
                format!("session:{language}:{}", crate::ids::short_hash(code))
            }
        }
    }

    fn in_words(&self) -> String {
        match self {
            Self::Language(language) => format!("every {language} block"),
            Self::Exact { language, code } => format!(
                "{language} blocks whose code is exactly {} ({} lines)",
                crate::ids::short_hash(code),
                code.lines().count()
            ),
        }
    }

    fn covers(&self, language: &str, code: &str) -> bool {
        match self {
            Self::Language(approved) => approved == language,
            Self::Exact {
                language: approved_language,
                code: approved,
            } => approved_language == language && approved == code,
        }
    }

    fn describe(&self) -> String {
        match self {
            Self::Language(language) => {
                format!("the operator approved every {language} block for this session")
            }
            Self::Exact { .. } => "the operator approved this exact code for this session".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(edit: impl FnOnce(&mut ApprovalConfig)) -> Policy {
        let mut config = ApprovalConfig::default();
        edit(&mut config);
        Policy::new(&config, &LanguageTable::default()).expect("valid rules")
    }

    #[test]
    fn by_default_everything_is_asked() {
        assert_eq!(policy(|_| {}).rule("python", "print(1)"), None);
    }

    #[test]
    fn deny_beats_allow_and_the_all_flag() {
        let policy = policy(|c| {
            c.mode = ApproveMode::All;
            c.allow_languages = vec!["shell".into()];
            c.deny_patterns = vec![r"rm\s+-rf".into()];
        });
        let ruling = policy.rule("bash", "ls\nrm  -rf /\n").expect("ruled");
        assert_eq!(
            (ruling.kind, ruling.source),
            (DecisionKind::Reject, DecisionSource::Rule)
        );
        assert!(ruling.reason.contains("deny pattern"), "{}", ruling.reason);
        let ruling = policy.rule("bash", "ls\n").expect("ruled");
        assert_eq!(
            (ruling.kind, ruling.source),
            (DecisionKind::Approve, DecisionSource::Rule)
        );
        let ruling = policy.rule("python", "print()").expect("ruled");
        assert_eq!(
            (ruling.kind, ruling.source),
            (DecisionKind::Approve, DecisionSource::Flag)
        );
    }

    #[test]
    fn allow_patterns_must_match_the_whole_code() {
        let policy = policy(|c| c.allow_patterns = vec![r"print\(.*\)".into()]);
        assert!(policy.rule("python", "print('hi')\n").is_some());
        assert_eq!(policy.rule("python", "print(1)\nimport os\n"), None);
    }

    #[test]
    fn none_rejects_with_a_reason_but_deny_speaks_first() {
        let policy = policy(|c| {
            c.mode = ApproveMode::None;
            c.deny_languages = vec!["sh".into()];
        });
        let ruling = policy.rule("python", "1").expect("ruled");
        assert_eq!(
            (ruling.kind, ruling.source),
            (DecisionKind::Reject, DecisionSource::Flag)
        );
        assert!(ruling.reason.contains("--approve none"));
        assert_eq!(
            policy.rule("sh", "1").expect("ruled").source,
            DecisionSource::Rule
        );
    }

    #[test]
    fn every_rule_is_listed_in_the_order_tried_and_each_can_be_lifted() {
        let mut policy = policy(|c| {
            c.mode = ApproveMode::All;
            c.deny_languages = vec!["sh".into()];
            c.allow_patterns = vec![r"print\(.*\)".into()];
        });
        policy.approve_for_session(Scope::Exact, "bash", "ls\n");
        let ids: Vec<String> = policy.rules().into_iter().map(|rule| rule.id).collect();
        let exact = format!("session:bash:{}", crate::ids::short_hash("ls\n"));
        assert_eq!(
            ids,
            [
                "deny_languages:sh".to_string(),
                exact.clone(),
                r"allow_patterns:print\(.*\)".into(),
                "approve:all".into()
            ]
        );
        for id in &ids {
            assert_eq!(policy.revoke(id).map(|rule| rule.id), Some(id.clone()));
        }
        assert!(policy.rules().is_empty());
        assert_eq!(policy.mode(), ApproveMode::Ask);
        // Nothing decides any more: every block is the operator's.
        assert_eq!(policy.rule("sh", "print(1)"), None);
        assert_eq!(policy.revoke("approve:all"), None);
    }

    #[test]
    fn session_rules_cover_their_scope_only() {
        let mut policy = policy(|_| {});
        policy.approve_for_session(Scope::Exact, "bash", "ls\n");
        assert!(policy.rule("bash", "ls\n").is_some());
        assert_eq!(policy.rule("bash", "ls -la\n"), None);
        policy.approve_for_session(Scope::Language, "python", "x");
        assert!(policy.rule("python", "anything").is_some());
        assert_eq!(policy.rule("sh", "ls\n"), None);
    }

    #[test]
    fn deny_patterns_also_see_lookalike_letters_and_hidden_characters() {
        let policy = policy(|c| c.deny_patterns = vec!["eval".into(), r"os\.system".into()]);
        let hostile = [
            // Fullwidth: Python reads these names as eval and os.
            "ｅｖａｌ('1+1')\n",
            "import os\nｏｓ.system('id')\n",
            // A fullwidth full stop too.
            "ｏｓ．ｓｙｓｔｅｍ('id')\n",
            // Split by characters that draw nothing, or that only steer the drawing.
            "e\u{200b}val(x)\n",
            "ev\u{2060}al(x)\n",
            "ev\u{202e}al(x)\n",
            "e\u{fe0f}val(x)\n",
            "eva\u{e0041}l(x)\n",
            "ev\u{2028}al(x)\n",
            "os\u{ad}.system('id')\n",
        ];
        for code in hostile {
            let ruling = policy.rule("python", code).expect("denied");
            assert_eq!(
                (ruling.kind, ruling.source),
                (DecisionKind::Reject, DecisionSource::Rule),
                "{code:?}"
            );
            assert!(ruling.reason.contains("lookalike"), "{}", ruling.reason);
        }
        let plain = policy.rule("python", "eval('1')\n").expect("denied");
        assert!(!plain.reason.contains("lookalike"), "{}", plain.reason);
        assert_eq!(policy.rule("python", "print('safe')\n"), None);
    }

    #[test]
    fn allow_patterns_must_match_the_code_as_written_and_as_folded() {
        // "Only print, len and chr": letters appear only in those three names.
        let only = r"(?:\b(?:print|len|chr)\b|[^a-zA-Z])*";
        let policy = policy(|c| c.allow_patterns = vec![only.into()]);
        let raw = Regex::new(&format!(r"\A(?:{only})\z")).expect("regex");
        let approved = policy
            .rule("python", "print(len(chr(97)))\n")
            .expect("allowed");
        assert_eq!(approved.kind, DecisionKind::Approve);
        for code in [
            // Python runs exec: fullwidth letters are not [a-zA-Z], so the raw text passes.
            "ｅｘｅｃ(chr(105))",
            // A word joiner glues two allowed names into one that is not.
            "len\u{2060}chr(1)",
        ] {
            assert!(raw.is_match(code), "the bypass is real for {code:?}");
            assert_eq!(policy.rule("python", code), None, "{code:?} is asked");
        }
    }
}
