//! Finding the code blocks of a model's message, the CommonMark way.
//!
//! A regex misses fences inside list items, longer fences wrapping shorter ones, `~~~`
//! fences and CRLF input; pulldown-cmark gets all of them right. Every code block of the
//! message is reported, runnable or not, so nothing the model wrote is dropped silently.

use std::ops::Range;

use pulldown_cmark::{CodeBlockKind, Event, Parser, Tag, TagEnd};
use serde::Serialize;

use super::LanguageTable;

/// One code block of a message, as `airlock extract --json` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExtractedBlock {
    pub index: usize,
    /// Canonical language name, or `None` when the tag is missing or unknown.
    pub language: Option<String>,
    /// The raw info string after the opening fence.
    pub(crate) info: String,
    /// The block's content exactly, with line endings normalized to `\n`.
    pub(crate) code: String,
    pub runnable: bool,
    /// Why the block would not be offered to run; `None` when it would.
    pub reason: Option<String>,
}

/// Extracts every code block of `markdown`, in order.
pub fn extract_blocks(markdown: &str, languages: &LanguageTable) -> Vec<ExtractedBlock> {
    let text = normalize_line_endings(markdown);
    let mut blocks = Vec::new();
    let mut current: Option<(Option<String>, String, Range<usize>)> = None;
    for (event, range) in Parser::new(&text).into_offset_iter() {
        match event {
            Event::Start(Tag::CodeBlock(kind)) => {
                let info = match kind {
                    CodeBlockKind::Fenced(info) => Some(info.into_string()),
                    CodeBlockKind::Indented => None,
                };
                current = Some((info, String::new(), range));
            }
            Event::Text(chunk) => {
                if let Some((_, code, _)) = current.as_mut() {
                    code.push_str(&chunk);
                }
            }
            Event::End(TagEnd::CodeBlock) => {
                if let Some((info, code, range)) = current.take() {
                    let closed = fence_is_closed(&text[range]);
                    blocks.push(classify(blocks.len(), info, code, closed, languages));
                }
            }
            _ => {}
        }
    }
    blocks
}

/// CommonMark treats `\r\n`, `\r` and `\n` alike as line endings.
fn normalize_line_endings(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\r', "\n")
}

/// The first word of the info string, without the `{.lang}` decoration some writers use and
/// without attributes glued on (`python:main.py`, `python,linenos`).
fn language_tag(info: &str) -> &str {
    let word = info.split_whitespace().next().unwrap_or("");
    let word = word.trim_start_matches('{').trim_start_matches('.');
    let end = word.find(['{', '}', ',', ':', '=']).unwrap_or(word.len());
    &word[..end]
}

fn classify(
    index: usize,
    info: Option<String>,
    code: String,
    closed: bool,
    languages: &LanguageTable,
) -> ExtractedBlock {
    // Only the reasons for not running a block need the list of languages.
    let names = || languages.names().join(", ");
    let tag = info.as_deref().map(language_tag).unwrap_or("");
    let language = languages.resolve(tag).map(|language| language.name.clone());
    let reason = match (&info, &language) {
        (None, _) => Some(format!(
            "indented code block: airlock runs only fenced blocks tagged with a language ({})",
            names()
        )),
        (Some(_), None) if tag.is_empty() => Some(format!(
            "no language tag: airlock runs only blocks tagged with a language ({})",
            names()
        )),
        (Some(_), None) if is_transcript(tag) => Some(format!(
            "a terminal transcript ({tag}): its `$ ` lines mix commands and output; tag the commands `bash` to run them"
        )),
        (Some(_), None) => Some(format!(
            "language `{tag}` is not configured (airlock runs {}); add it under [languages] in the config to run it",
            names()
        )),
        _ if !closed => Some(
            "the fence is never closed, so the message may have been cut off; airlock does not run a block it may have only part of"
                .to_string(),
        ),
        _ if code.trim().is_empty() => Some("the block is empty".to_string()),
        _ => None,
    };
    ExtractedBlock {
        index,
        language,
        info: info.unwrap_or_default(),
        code,
        runnable: reason.is_none(),
        reason,
    }
}

/// Tags for a terminal session as shown (`$ ls` and then what it printed). Running one as a
/// script would run its output too, so they are refused unless the user's `[languages]`
/// claims the tag.
fn is_transcript(tag: &str) -> bool {
    ["console", "shell-session", "sh-session", "shellsession"]
        .iter()
        .any(|transcript| tag.eq_ignore_ascii_case(transcript))
}

/// Whether a fenced block's source ends with a closing fence: CommonMark lets an unclosed
/// fence run to the end of the document, which for a model's message usually means the
/// reply was cut off.
fn fence_is_closed(source: &str) -> bool {
    let mut lines = source.trim_end_matches('\n').lines();
    let Some(opening) = lines.next().map(str::trim_start) else {
        return false;
    };
    let Some(fence_char) = opening.chars().next().filter(|c| *c == '`' || *c == '~') else {
        return true; // Not a fence we recognise (indented block): nothing to close.
    };
    let fence_len = opening.chars().take_while(|c| *c == fence_char).count();
    lines.next_back().is_some_and(|last| {
        let last = last.trim();
        last.chars().all(|c| c == fence_char) && last.chars().count() >= fence_len
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn extract(markdown: &str) -> Vec<ExtractedBlock> {
        extract_blocks(markdown, &LanguageTable::default())
    }

    fn only(markdown: &str) -> ExtractedBlock {
        let mut blocks = extract(markdown);
        assert_eq!(blocks.len(), 1, "{blocks:#?}");
        blocks.remove(0)
    }

    #[test]
    fn backtick_and_tilde_fences() {
        let blocks = extract("text\n```python\nprint(1)\n```\nmore\n~~~bash\necho hi\n~~~\n");
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[0].language.as_deref(), Some("python"));
        assert_eq!(blocks[0].code, "print(1)\n");
        assert_eq!(blocks[1].language.as_deref(), Some("bash"));
        assert_eq!(blocks[1].code, "echo hi\n");
        assert!(blocks.iter().all(|b| b.runnable && b.reason.is_none()));
        assert_eq!(blocks[1].index, 1);
    }

    #[test]
    fn a_longer_fence_contains_a_shorter_one() {
        let block = only("````markdown\n```python\nprint(1)\n```\n````\n");
        assert_eq!(block.code, "```python\nprint(1)\n```\n");
        assert_eq!(block.language, None);
        let block = only("````python\ns = '''\n```\n'''\nprint(s)\n````\n");
        assert_eq!(block.code, "s = '''\n```\n'''\nprint(s)\n");
        assert!(block.runnable);
    }

    #[test]
    fn info_strings_with_attributes() {
        let block = only("```python title=\"x.py\" {linenos}\nx = 1\n```\n");
        assert_eq!(block.language.as_deref(), Some("python"));
        assert_eq!(block.info, "python title=\"x.py\" {linenos}");
        assert_eq!(
            only("```{.python}\nx\n```\n").language.as_deref(),
            Some("python")
        );
        assert_eq!(
            only("```python:main.py\nx\n```\n").language.as_deref(),
            Some("python")
        );
    }

    #[test]
    fn crlf_input_gives_lf_code() {
        let block = only("Run this:\r\n```sh\r\necho a\r\necho b\r\n```\r\n");
        assert_eq!(block.code, "echo a\necho b\n");
        assert_eq!(block.language.as_deref(), Some("sh"));
        let block = only("```sh\recho old-mac\r```\r");
        assert_eq!(block.code, "echo old-mac\n");
    }

    #[test]
    fn fences_inside_list_items() {
        let markdown = "1. First install:\n\n   ```bash\n   pip list\n     indented more\n   ```\n2. Then:\n   - nested\n\n     ~~~py\n     print(2)\n     ~~~\n";
        let blocks = extract(markdown);
        assert_eq!(blocks.len(), 2, "{blocks:#?}");
        assert_eq!(blocks[0].code, "pip list\n  indented more\n");
        assert_eq!(blocks[1].code, "print(2)\n");
        assert_eq!(blocks[1].language.as_deref(), Some("python"));
    }

    #[test]
    fn tags_are_case_insensitive_and_aliases_resolve() {
        for (tag, canonical) in [
            ("PYTHON", "python"),
            ("Py", "python"),
            ("python3", "python"),
            ("Bash", "bash"),
            ("shell", "bash"),
            ("zsh", "bash"),
            ("SH", "sh"),
        ] {
            let block = only(&format!("```{tag}\necho x\n```\n"));
            assert_eq!(block.language.as_deref(), Some(canonical), "{tag}");
            assert_eq!(block.info, tag);
        }
    }

    #[test]
    fn untagged_unknown_and_indented_blocks_are_reported_not_dropped() {
        let blocks = extract(
            "```\nplain\n```\n\n```rust\nfn main() {}\n```\n\nPara.\n\n    indented code\n",
        );
        assert_eq!(blocks.len(), 3, "{blocks:#?}");
        assert!(blocks.iter().all(|b| !b.runnable && b.language.is_none()));
        assert!(
            blocks[0]
                .reason
                .as_deref()
                .unwrap_or("")
                .contains("no language tag")
        );
        let unknown = blocks[1].reason.as_deref().unwrap_or("");
        assert!(
            unknown.contains("`rust`") && unknown.contains("[languages]"),
            "{unknown}"
        );
        assert!(
            blocks[2]
                .reason
                .as_deref()
                .unwrap_or("")
                .contains("indented")
        );
        assert_eq!(blocks[2].code, "indented code\n");
    }

    #[test]
    fn terminal_transcripts_are_refused_with_the_way_to_run_them() {
        for tag in ["console", "Console", "shell-session", "sh-session"] {
            let block = only(&format!("```{tag}\n$ ls\nREADME.md\n```\n"));
            assert!(!block.runnable, "{tag}");
            assert_eq!(block.language, None, "{tag}");
            assert_eq!(
                block.reason,
                Some(format!(
                    "a terminal transcript ({tag}): its `$ ` lines mix commands and output; tag the commands `bash` to run them"
                ))
            );
        }
        // A user who means `console` as a language says so in [languages].
        let mut user = std::collections::BTreeMap::new();
        user.insert(
            "bash".to_string(),
            crate::config::LanguageConfig {
                command: vec!["bash".into()],
                extension: "sh".into(),
                aliases: vec!["console".into()],
            },
        );
        let blocks = extract_blocks("```console\nls\n```\n", &LanguageTable::new(&user));
        assert!(blocks[0].runnable, "{blocks:?}");
    }

    #[test]
    fn code_is_byte_exact() {
        let code = "s = \"h\u{e9}llo \u{4e16}\u{754c} \u{1f600}\"\nz = \"a\u{200b}b\u{202e}c\u{feff}\"\n\tt = 1  \n\n";
        let block = only(&format!("```python\n{code}```\n"));
        assert_eq!(block.code, code);
        assert_eq!(block.code.as_bytes(), code.as_bytes());
    }

    #[test]
    fn unclosed_and_empty_fences_are_not_runnable() {
        let block = only("```python\nprint('cut off'");
        assert!(!block.runnable);
        assert!(
            block
                .reason
                .as_deref()
                .unwrap_or("")
                .contains("never closed")
        );
        assert_eq!(block.code, "print('cut off'");
        let block = only("```python\n```\n");
        assert!(!block.runnable);
        assert_eq!(block.reason.as_deref(), Some("the block is empty"));
        // A closing fence longer than the opening one closes it.
        assert!(only("```sh\necho\n`````\n").runnable);
    }

    #[test]
    fn user_languages_become_runnable() {
        let mut user = std::collections::BTreeMap::new();
        user.insert(
            "node".to_string(),
            crate::config::LanguageConfig {
                command: vec!["node".into()],
                extension: "js".into(),
                aliases: vec!["javascript".into()],
            },
        );
        let table = LanguageTable::new(&user);
        let blocks = extract_blocks("```JavaScript\nconsole.log(1)\n```\n", &table);
        assert_eq!(blocks[0].language.as_deref(), Some("node"));
        assert!(blocks[0].runnable);
    }

    #[test]
    fn json_shape_matches_the_contract() {
        let json = serde_json::to_value(extract("```\nx\n```\n")).expect("serializes");
        let object = &json[0];
        for key in ["index", "language", "info", "code", "runnable", "reason"] {
            assert!(object.get(key).is_some(), "missing {key}: {object}");
        }
        assert!(object["language"].is_null());
    }
}
