//! Any program output, cut into chunks anywhere: nothing that drives a terminal survives the
//! neutralizer, and nothing invisible survives the text made for a person.
#![no_main]

use airlock::output::sanitize::{Neutralizer, for_person, is_invisible};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (&str, usize)| {
    let (text, cut) = input;
    let mut cut = cut % (text.len() + 1);
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut neutralizer = Neutralizer::new();
    let mut out = String::new();
    neutralizer.push(&text[..cut], &mut out);
    neutralizer.push(&text[cut..], &mut out);
    let drives = |c: char| c == '\u{1b}' || c == '\u{7}' || c == '\u{9b}' || c == '\u{9d}';
    assert!(!out.chars().any(drives), "{out:?}");
    let shown = for_person(text);
    assert!(
        !shown
            .chars()
            .any(|c| is_invisible(c) && !matches!(c, '\n' | '\t' | '\r')),
        "{shown:?}"
    );
});
