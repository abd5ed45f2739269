//! Any model reply: extraction never panics, blocks come numbered in order, and a block is
//! runnable only with a language and no reason against it.
#![no_main]

use airlock::engine::{LanguageTable, extract_blocks};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|markdown: &str| {
    let blocks = extract_blocks(markdown, &LanguageTable::default());
    for (position, block) in blocks.iter().enumerate() {
        assert_eq!(block.index, position);
        if block.runnable {
            assert!(
                block.language.is_some() && block.reason.is_none(),
                "{block:?}"
            );
        }
    }
});
