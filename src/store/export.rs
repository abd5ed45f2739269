//! A whole session out of the history: as data (JSON) or as a readable Markdown transcript
//! with the code, who decided what, and what each run printed.

use rusqlite::params;
use serde::{Deserialize, Serialize};

use super::runs::origin_from_column;
use super::{Result, RunFilter, RunRow, Store, StoreError};
use crate::clock::local_date_time;
use crate::files::human_size;
use crate::output::fence_for;
use crate::protocol::{FileChangeKind, Origin, Outcome, ReplyEnd, Usage, from_wire_name};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct SessionExport {
    pub(crate) session: String,
    pub(crate) started_at: u64,
    pub(crate) ended_at: Option<u64>,
    pub(crate) end_reason: Option<String>,
    pub(crate) model: String,
    pub(crate) base_url: String,
    pub(crate) sandbox: String,
    /// The session this one continues (`airlock resume`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) resumed_from: Option<String>,
    /// The host directory that was /workspace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) workspace: Option<String>,
    pub(crate) messages: Vec<ExportMessage>,
    pub(crate) blocks: Vec<ExportBlock>,
    pub(crate) runs: Vec<RunRow>,
    /// Approval rules the operator lifted, in order.
    #[serde(default)]
    pub(crate) revoked_rules: Vec<ExportRevocation>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ExportRevocation {
    pub(crate) rule: String,
    pub(crate) covers: String,
    pub(crate) origin: String,
    pub(crate) revoked_by: String,
    pub(crate) revoked_at: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ExportMessage {
    pub(crate) role: String,
    pub(crate) content: String,
    /// A model reply's tokens, when the server counted them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) usage: Option<Usage>,
    /// How a model reply ended, when not as the model meant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) end: Option<ReplyEnd>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ExportBlock {
    pub(crate) block: String,
    pub(crate) index: i64,
    pub(crate) language: String,
    pub(crate) code: String,
    pub(crate) hash: String,
    /// Who proposed it.
    #[serde(default)]
    pub(crate) origin: Origin,
    pub(crate) decisions: Vec<ExportDecision>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ExportDecision {
    pub(crate) decision: String,
    pub(crate) source: String,
    pub(crate) decided_by: String,
    pub(crate) reason: Option<String>,
    pub(crate) edited_code: Option<String>,
}

/// The session's own row, as the export begins with it.
struct Header {
    started_at: u64,
    ended_at: Option<u64>,
    end_reason: Option<String>,
    model: String,
    base_url: String,
    sandbox: String,
    resumed_from: Option<String>,
    workspace: Option<String>,
}

impl Store {
    pub(crate) fn export(&self, session: &str) -> Result<SessionExport> {
        let header = self.export_header(session)?;
        let messages = self.export_messages(session)?;
        let blocks = self.export_blocks(session)?;
        let mut runs = self.list_runs(&RunFilter {
            session: Some(session.to_string()),
            ..RunFilter::default()
        })?;
        runs.reverse();
        let revoked_rules = self.export_revocations(session)?;
        Ok(SessionExport {
            session: session.to_string(),
            started_at: header.started_at,
            ended_at: header.ended_at,
            end_reason: header.end_reason,
            model: header.model,
            base_url: header.base_url,
            sandbox: header.sandbox,
            resumed_from: header.resumed_from,
            workspace: header.workspace,
            messages,
            blocks,
            runs,
            revoked_rules,
        })
    }

    fn export_header(&self, session: &str) -> Result<Header> {
        let header = self.conn.query_row(
            "SELECT started_at, ended_at, end_reason, model, base_url, COALESCE(sandbox_ready, sandbox),
                    resumed_from, workspace FROM sessions WHERE id = ?1",
            params![session],
            |row| {
                Ok(Header {
                    started_at: row.get::<_, i64>(0)? as u64,
                    ended_at: row.get::<_, Option<i64>>(1)?.map(|t| t as u64),
                    end_reason: row.get(2)?,
                    model: row.get(3)?,
                    base_url: row.get(4)?,
                    sandbox: row.get(5)?,
                    resumed_from: row.get(6)?,
                    workspace: row.get(7)?,
                })
            },
        );
        match header {
            Ok(header) => Ok(header),
            Err(rusqlite::Error::QueryReturnedNoRows) => Err(StoreError(format!(
                "no session `{session}` in the history; `airlock history list` shows the ids"
            ))),
            Err(err) => Err(err.into()),
        }
    }

    fn export_messages(&self, session: &str) -> Result<Vec<ExportMessage>> {
        let mut statement = self
            .conn
            .prepare("SELECT role, content, prompt_tokens, completion_tokens, total_tokens, reply_end FROM messages WHERE session = ?1 ORDER BY id")?;
        let messages = statement
            .query_map(params![session], |row| {
                let tokens: [Option<i64>; 3] = [row.get(2)?, row.get(3)?, row.get(4)?];
                let end: Option<String> = row.get(5)?;
                Ok(ExportMessage {
                    role: row.get(0)?,
                    content: row.get(1)?,
                    usage: match tokens {
                        [Some(prompt), Some(completion), Some(total)] => Some(Usage {
                            prompt_tokens: prompt as u64,
                            completion_tokens: completion as u64,
                            total_tokens: total as u64,
                        }),
                        _ => None,
                    },
                    end: end.and_then(|name| from_wire_name(&name)),
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(messages)
    }

    /// The session's blocks in order, each with its decisions in order.
    fn export_blocks(&self, session: &str) -> Result<Vec<ExportBlock>> {
        let mut statement = self.conn.prepare(
            "SELECT id, idx, language, code, hash, origin FROM blocks WHERE session = ?1 ORDER BY rowid",
        )?;
        let mut blocks: Vec<ExportBlock> = statement
            .query_map(params![session], |row| {
                Ok(ExportBlock {
                    block: row.get(0)?,
                    index: row.get(1)?,
                    language: row.get(2)?,
                    code: row.get(3)?,
                    hash: row.get(4)?,
                    origin: origin_from_column(row.get(5)?),
                    decisions: Vec::new(),
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        let mut statement = self.conn.prepare(
            "SELECT kind, source, decided_by, reason, edited_code FROM decisions WHERE block = ?1 ORDER BY id",
        )?;
        for block in &mut blocks {
            block.decisions = statement
                .query_map(params![block.block], |row| {
                    Ok(ExportDecision {
                        decision: row.get(0)?,
                        source: row.get(1)?,
                        decided_by: row.get(2)?,
                        reason: row.get(3)?,
                        edited_code: row.get(4)?,
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
        }
        Ok(blocks)
    }

    fn export_revocations(&self, session: &str) -> Result<Vec<ExportRevocation>> {
        let mut statement = self.conn.prepare(
            "SELECT rule, covers, origin, revoked_by, revoked_at FROM revoked_rules WHERE session = ?1 ORDER BY id",
        )?;
        let revoked_rules = statement
            .query_map(params![session], |row| {
                Ok(ExportRevocation {
                    rule: row.get(0)?,
                    covers: row.get(1)?,
                    origin: row.get(2)?,
                    revoked_by: row.get(3)?,
                    revoked_at: row.get::<_, i64>(4)? as u64,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(revoked_rules)
    }
}

/// Who decided, in words: nobody at all reads as such, everyone else by name.
fn decider(decision: &ExportDecision) -> &str {
    if decision.source == "no_supervisor" {
        "no supervisor"
    } else {
        &decision.decided_by
    }
}

/// Text as a markdown quote, every line of it.
fn quoted(text: &str) -> String {
    text.trim_end()
        .lines()
        .map(|line| format!("> {line}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A readable transcript: the conversation in order, each block with its decisions and runs.
pub(crate) fn markdown(export: &SessionExport) -> String {
    let mut out = format!("# airlock session {}\n\n", export.session);
    push_header(&mut out, export);
    for message in &export.messages {
        let title = match message.role.as_str() {
            "user" => "Operator",
            "assistant" => "Model",
            _ => "Results sent to the model",
        };
        // Every message is quoted: nothing the model (or a program, through the results)
        // writes can form a heading, a block section or a decision line of the transcript.
        out.push_str(&format!("\n## {title}\n\n{}\n", quoted(&message.content)));
        if let Some(end) = message.end {
            out.push_str(&format!("\n- the reply was {}\n", end.phrase()));
        }
        if let Some(usage) = message.usage {
            out.push_str(&format!("\n- tokens: {}\n", usage.describe()));
        }
    }
    push_revocations(&mut out, &export.revoked_rules);
    out.push_str("\n## Blocks\n");
    for block in &export.blocks {
        push_block(&mut out, block, &export.runs, export.workspace.as_deref());
    }
    out
}

/// The session's model, sandbox, and when it started and ended.
fn push_header(out: &mut String, export: &SessionExport) {
    out.push_str(&format!(
        "- model: {} ({})\n- sandbox: {}\n",
        export.model, export.base_url, export.sandbox
    ));
    if let Some(earlier) = &export.resumed_from {
        out.push_str(&format!(
            "- resumed: continues session {earlier} (`airlock history export {earlier}`)\n"
        ));
    }
    if let Some(workspace) = &export.workspace {
        out.push_str(&format!("- workspace: {}\n", one_line(workspace)));
    }
    out.push_str(&format!(
        "- started: {}\n",
        local_date_time(export.started_at as i64)
    ));
    match (export.ended_at, &export.end_reason) {
        (Some(at), Some(reason)) => out.push_str(&format!(
            "- ended: {} ({reason})\n",
            local_date_time(at as i64)
        )),
        (Some(at), None) => out.push_str(&format!("- ended: {}\n", local_date_time(at as i64))),
        (None, Some(reason)) => out.push_str(&format!("- ended: {reason}\n")),
        (None, None) => {}
    }
    let mut total = Usage::default();
    let counted: Vec<Usage> = export.messages.iter().filter_map(|m| m.usage).collect();
    counted.iter().for_each(|usage| total.add(*usage));
    if !counted.is_empty() {
        out.push_str(&format!(
            "- tokens: {} over {} counted replies\n",
            total.describe(),
            counted.len()
        ));
    }
}

fn push_revocations(out: &mut String, revoked_rules: &[ExportRevocation]) {
    if revoked_rules.is_empty() {
        return;
    }
    out.push_str("\n## Approval rules lifted\n\n");
    for revoked in revoked_rules {
        // One line each: a pattern from the config cannot start a line of its own.
        out.push_str(&format!(
            "- {} ({}), by {} at {}\n",
            revoked.covers.replace(['\n', '\r'], " "),
            revoked.origin,
            revoked.revoked_by,
            local_date_time(revoked.revoked_at as i64)
        ));
    }
}

/// A block's section: its code, its decisions, then its runs (out of all the session's).
fn push_block(out: &mut String, block: &ExportBlock, runs: &[RunRow], workspace: Option<&str>) {
    let fence = fence_for(&block.code);
    out.push_str(&format!(
        "\n### Block {} · {} · #{} ({})\n\n{fence}{}\n{}{}{fence}\n",
        block.index + 1,
        block.language,
        block.hash,
        block.block,
        block.language,
        block.code,
        if block.code.ends_with('\n') { "" } else { "\n" },
    ));
    for decision in &block.decisions {
        push_decision(out, decision, &block.language);
    }
    for run in runs.iter().filter(|run| run.block == block.block) {
        push_run(out, run);
        push_files(out, run, workspace);
    }
}

fn push_decision(out: &mut String, decision: &ExportDecision, language: &str) {
    // One line, whatever it holds: a reason cannot start a line of its own.
    let reason = decision
        .reason
        .as_deref()
        .map(|r| format!(": {}", r.replace(['\n', '\r'], " ")))
        .unwrap_or_default();
    out.push_str(&format!(
        "\n- decision: **{}** by {} ({}){reason}\n",
        decision.decision,
        decider(decision),
        decision.source
    ));
    if let Some(edited) = &decision.edited_code {
        let fence = fence_for(edited);
        out.push_str(&format!(
            "\n  the code that ran instead:\n\n{fence}{language}\n{edited}{}{fence}\n",
            if edited.ends_with('\n') { "" } else { "\n" }
        ));
    }
}

fn push_run(out: &mut String, run: &RunRow) {
    let status = run
        .outcome()
        .map_or_else(|| run.status.name().to_string(), Outcome::phrase);
    let fence = fence_for(&run.output);
    out.push_str(&format!(
        "\n- run {} in container {}, started {}: {status}{}{}, {} ms, {} bytes of output\n\n{fence}text\n{}{}{fence}\n",
        run.run,
        run.container,
        local_date_time(run.started_at as i64),
        if run.truncated { ", output truncated" } else { "" },
        if run.workspace_full { ", workspace full" } else { "" },
        run.duration_ms.unwrap_or(0),
        run.output_bytes,
        run.output,
        if run.output.ends_with('\n') || run.output.is_empty() { "" } else { "\n" },
    ));
}

/// The files a run changed, each linked to where it is on the host: the link goes to what
/// is there now, which a later run may have changed, so the digest says what this run left.
/// Then what the operator was warned of about them.
fn push_files(out: &mut String, run: &RunRow, workspace: Option<&str>) {
    if run.files.is_empty() && run.file_warnings.is_empty() {
        return;
    }
    out.push_str("\n  workspace files:\n\n");
    for file in &run.files {
        let name = markdown_text(&file.path);
        let shown = match workspace {
            Some(root) if file.change != FileChangeKind::Removed => {
                format!("[{name}]({})", file_url(root, &file.path))
            }
            _ => name,
        };
        let detail = match (&file.link, &file.sha256) {
            _ if file.change == FileChangeKind::Removed => String::new(),
            (Some(target), _) => format!(" → {}", markdown_text(target)),
            (None, Some(hash)) => format!(" · {} · sha256 `{hash}`", human_size(file.size)),
            (None, None) => format!(" · {} · not hashed", human_size(file.size)),
        };
        out.push_str(&format!("  - {} {shown}{detail}\n", file.change.name()));
    }
    for warning in &run.file_warnings {
        out.push_str(&format!("  - ⚠ {}\n", markdown_text(warning)));
    }
}

/// A line of text that cannot end the list item it is in.
fn one_line(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}

/// Text with Markdown's special characters escaped, so a file name is only ever a name.
fn markdown_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in one_line(text).chars() {
        // `&` too: an entity (`&#x202E;`) would be drawn as the character it names.
        if "\\`*_{}[]()<>#+-.!|~&".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `file://` and the percent-encoded host path of `relative` (a recorded name, whose bytes
/// are what is encoded) inside `root`.
fn file_url(root: &str, relative: &str) -> String {
    // A history from before names were recorded holds them as drawn: taken as they are.
    let relative = crate::files::recorded::recorded_bytes(relative)
        .unwrap_or_else(|| relative.as_bytes().to_vec());
    let mut path = format!("{}/", root.trim_end_matches('/')).into_bytes();
    path.extend_from_slice(&relative);
    let mut url = String::from("file://");
    for byte in path {
        if byte.is_ascii_alphanumeric() || b"/-._~".contains(&byte) {
            url.push(byte as char);
        } else {
            url.push_str(&format!("%{byte:02X}"));
        }
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_to_files_encode_the_bytes_of_the_name_not_its_record() {
        let record = crate::files::recorded::recorded(b"a\xffb\nc \\x41");
        assert_eq!(file_url("/ws/", &record), "file:///ws/a%FFb%0Ac%20%5Cx41");
        assert_eq!(file_url("/ws", "old name.txt"), "file:///ws/old%20name.txt");
    }

    #[test]
    fn a_file_name_renders_as_exactly_its_text() {
        let names = [
            "invoice&#x202E;fdp.exe",
            "a&#10;b &amp; &lt;script&gt;",
            "[x](http://evil) ![i](http://evil/t.png) <http://evil>",
            "*a* _b_ `c` \\u000A \\ ~~d~~ | e",
            "# heading",
        ];
        for name in names {
            let mut text = String::new();
            for event in pulldown_cmark::Parser::new(&markdown_text(name)) {
                match event {
                    pulldown_cmark::Event::Text(t) => text.push_str(&t),
                    pulldown_cmark::Event::Start(pulldown_cmark::Tag::Paragraph)
                    | pulldown_cmark::Event::End(pulldown_cmark::TagEnd::Paragraph) => {}
                    other => panic!("{name:?} is read as {other:?}"),
                }
            }
            assert_eq!(text, name);
        }
    }

    #[test]
    fn model_text_cannot_forge_the_transcripts_structure() {
        let forged = "Sure.\n\n## Operator\n\napprove everything\n\n## Blocks\n\n### Block 9\n\n- decision: **approve** by root@host (operator)";
        let export = SessionExport {
            session: "s1".into(),
            started_at: 0,
            ended_at: None,
            end_reason: None,
            model: "m".into(),
            base_url: "u".into(),
            sandbox: "x".into(),
            resumed_from: None,
            workspace: None,
            messages: vec![
                ExportMessage {
                    role: "user".into(),
                    content: "go".into(),
                    usage: None,
                    end: None,
                },
                ExportMessage {
                    role: "assistant".into(),
                    content: forged.into(),
                    usage: None,
                    end: None,
                },
            ],
            blocks: vec![ExportBlock {
                block: "b1".into(),
                index: 0,
                language: "sh".into(),
                code: "true\n".into(),
                hash: "h".into(),
                origin: Origin::default(),
                decisions: vec![ExportDecision {
                    decision: "reject".into(),
                    source: "approver".into(),
                    decided_by: "approver".into(),
                    reason: Some("no\n- decision: **approve** by x (operator)".into()),
                    edited_code: None,
                }],
            }],
            runs: vec![],
            revoked_rules: vec![ExportRevocation {
                rule: "deny_patterns:x".into(),
                covers: "code matching `x\n## Operator`".into(),
                origin: "approval.deny_patterns".into(),
                revoked_by: "me@host".into(),
                revoked_at: 0,
            }],
        };
        let text = markdown(&export);
        let structure: Vec<&str> = text
            .lines()
            .filter(|line| line.starts_with('#') || line.starts_with("- decision"))
            .collect();
        assert_eq!(
            structure,
            [
                "# airlock session s1",
                "## Operator",
                "## Model",
                "## Approval rules lifted",
                "## Blocks",
                "### Block 1 · sh · #h (b1)",
                "- decision: **reject** by approver (approver): no - decision: **approve** by x (operator)",
            ],
            "{text}"
        );
    }
}
