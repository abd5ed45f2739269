//! `airlock extract [FILE|-] [--json]`

use std::path::Path;
use std::process::ExitCode;

use crate::config::Config;
use crate::engine::{LanguageTable, extract_blocks};

pub fn run(config: &Config, file: Option<&Path>, json: bool) -> anyhow::Result<ExitCode> {
    let markdown = crate::cli::read_input(file)?;
    let blocks = extract_blocks(&markdown, &LanguageTable::new(&config.languages));
    if json {
        println!("{}", serde_json::to_string_pretty(&blocks)?);
        return Ok(ExitCode::SUCCESS);
    }
    if blocks.is_empty() {
        println!("no code blocks");
    }
    for block in &blocks {
        let language = block.language.as_deref().unwrap_or("-");
        let lines = block.code.lines().count();
        match &block.reason {
            None => println!("[{}] {language}, {lines} lines: runnable", block.index),
            Some(reason) => println!(
                "[{}] {language}, {lines} lines: not run: {reason}",
                block.index
            ),
        }
    }
    Ok(ExitCode::SUCCESS)
}
