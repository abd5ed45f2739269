//! A model reply turned into a turn of blocks: its `run_code` calls, or else its runnable
//! fences. What cannot run is answered (a call) or mentioned (a fence) here, before the
//! gate sees anything.

use super::Conversation;
use crate::engine::Language;
use crate::engine::extract_blocks;
use crate::engine::turn::{Turn, TurnBlock};
use crate::engine::unoffered::unoffered_notice;
use crate::ids::new_id;
use crate::model::{ChatMessage, Model, RUN_CODE, ToolCall};
use crate::protocol::{Event, Origin};

impl<M: Model> Conversation<M> {
    /// The reply's runnable blocks, as a turn for the gate: its tool calls when it made any
    /// (a call that cannot run is answered at once, with what the model can fix), else its
    /// fences (the others are mentioned).
    pub(in crate::engine) fn blocks_of(&mut self, reply: &str, calls: &[ToolCall]) -> Turn {
        if calls.is_empty() {
            self.fenced_blocks(reply)
        } else {
            self.called_blocks(calls)
        }
    }

    /// Each call to `run_code` with a language airlock runs becomes a block; every other
    /// call gets its answer now, saying what was wrong.
    fn called_blocks(&mut self, calls: &[ToolCall]) -> Turn {
        let mut turn = Turn::default();
        let mut refused = Vec::new();
        for (index, call) in calls.iter().enumerate() {
            match self.block_of_call(call) {
                Ok((language, code)) => turn.blocks.push(TurnBlock {
                    id: new_id("b"),
                    index,
                    language,
                    code,
                    decision: None,
                    fate: None,
                    call: Some(call.id.clone()),
                    origin: Origin::default(),
                }),
                Err(why) => {
                    refused.push(format!("## Call {} ({})\n{why}", index + 1, call.id));
                    self.say(ChatMessage::tool(&call.id, why), true);
                }
            }
        }
        if !refused.is_empty() {
            self.events.send(Event::Reflection {
                text: refused.join("\n\n"),
            });
        }
        turn
    }

    fn block_of_call(&self, call: &ToolCall) -> Result<(Language, String), String> {
        #[derive(serde::Deserialize)]
        struct RunCode {
            language: String,
            code: String,
        }
        if call.function.name != RUN_CODE {
            return Err(format!(
                "There is no function `{}`; the one function is `{RUN_CODE}` with `language` \
                 and `code`.",
                call.function.name
            ));
        }
        let arguments: RunCode = serde_json::from_str(&call.function.arguments).map_err(|err| {
            format!(
                "The arguments are not a JSON object with the strings `language` and `code` \
                 ({err}); nothing ran. Call `{RUN_CODE}` again with both."
            )
        })?;
        let languages = &self.settings.languages;
        let Some(language) = languages.resolve(&arguments.language) else {
            return Err(format!(
                "`{}` is not a language airlock runs; it runs {}. Nothing ran.",
                arguments.language,
                languages.names().join(", ")
            ));
        };
        Ok((language.clone(), arguments.code))
    }

    fn fenced_blocks(&mut self, reply: &str) -> Turn {
        let mut turn = Turn::default();
        let mut unoffered = Vec::new();
        for block in extract_blocks(reply, &self.settings.languages) {
            let language = block
                .language
                .as_deref()
                .and_then(|name| self.settings.languages.resolve(name))
                .filter(|_| block.runnable);
            let Some(language) = language else {
                let why = block.reason.unwrap_or_else(|| "it is not runnable".into());
                unoffered.push((block.index + 1, why));
                continue;
            };
            turn.blocks.push(TurnBlock {
                id: new_id("b"),
                index: block.index,
                language: language.clone(),
                code: block.code,
                decision: None,
                fate: None,
                call: None,
                origin: Origin::default(),
            });
        }
        let unoffered: Vec<(usize, &str)> = unoffered
            .iter()
            .map(|(number, why)| (*number, why.as_str()))
            .collect();
        if let Some(notice) = unoffered_notice(&unoffered) {
            self.events.notice(notice);
        }
        turn
    }
}
