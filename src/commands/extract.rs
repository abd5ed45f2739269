//! `airlock extract [FILE|-] [--json]`

use std::path::Path;
use std::process::ExitCode;

use crate::config::Config;
use crate::engine::{LanguageTable, extract_blocks};
use crate::output::sanitize::for_person;

pub fn run(config: &Config, file: Option<&Path>, json: bool) -> anyhow::Result<ExitCode> {
    let markdown = super::read_input(file)?;
    let blocks = extract_blocks(&markdown, &LanguageTable::new(&config.languages));
    if json {
        println!("{}", serde_json::to_string_pretty(&blocks)?);
        return Ok(ExitCode::SUCCESS);
    }
    if blocks.is_empty() {
        println!("no code blocks");
    }
    for block in &blocks {
        // The info string and the reason quote model text.
        let language = for_person(block.language.as_deref().unwrap_or("-"));
        let lines = block.code.lines().count();
        match &block.reason {
            None => println!("[{}] {language}, {lines} lines: runnable", block.index),
            Some(reason) => println!(
                "[{}] {language}, {lines} lines: not run: {}",
                block.index,
                for_person(reason)
            ),
        }
    }
    Ok(ExitCode::SUCCESS)
}
