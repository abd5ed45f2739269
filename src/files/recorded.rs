//! File names as the record keeps them (events, history, exports): one string that says
//! which bytes the name was, so two names never record alike. UTF-8 stays as it is, `\` is
//! written `\\`, a byte that is not UTF-8 `\xHH`, a control character `\u00HH`. Invisible
//! characters stay in the record; whoever draws a recorded name on a terminal draws them
//! visibly (`output::sanitize::for_person`).

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// `path`'s bytes, recorded.
pub(crate) fn recorded_path(path: &Path) -> String {
    recorded(path.as_os_str().as_bytes())
}

/// `bytes`, recorded.
pub(crate) fn recorded(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
                c => out.push(c),
            }
        }
        for byte in chunk.invalid() {
            out.push_str(&format!("\\x{byte:02X}"));
        }
    }
    out
}

/// The bytes a recorded name stands for; `None` when `text` is not a recorded name (a
/// history written before names were recorded this way).
pub(crate) fn recorded_bytes(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('\\') {
        out.extend_from_slice(&rest.as_bytes()[..at]);
        let escape = &rest[at + 1..];
        let (bytes, used) = match escape.as_bytes().first()? {
            b'\\' => (vec![b'\\'], 1),
            b'x' => (vec![hex(escape.get(1..3)?)?], 3),
            b'u' if escape.get(1..3)? == "00" => {
                let c = char::from(hex(escape.get(3..5)?)?);
                (c.to_string().into_bytes(), 5)
            }
            _ => return None,
        };
        out.extend_from_slice(&bytes);
        rest = &escape[used..];
    }
    out.extend_from_slice(rest.as_bytes());
    Some(out)
}

/// A recorded name drawn as the workspace pane draws names ([`super::display_name`]), for
/// a notice or any other line a person reads: its bytes, decoded, so a line feed in a name
/// shows as the pane shows it and not as `\u000A`. Text that is not a recorded name (a
/// history from before names were recorded) is drawn as the text it is.
pub(crate) fn drawn(text: &str) -> String {
    match recorded_bytes(text) {
        Some(bytes) => super::display_name(OsStr::from_bytes(&bytes)),
        None => super::display_name(OsStr::new(text)),
    }
}

fn hex(digits: &str) -> Option<u8> {
    if digits.len() != 2 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u8::from_str_radix(digits, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn names_that_draw_alike_record_apart_and_decode_to_their_bytes() {
        let names: [&[u8]; 6] = [
            b"\\x41",                // text that looks like an escape
            b"\x41",                 // the letter it would stand for
            b"a\xffb",               // a byte that is not UTF-8
            b"a\\xFFb",              // text that looks like it
            b"a\nb",                 // a real line feed
            "a\u{240a}b".as_bytes(), // the symbol a line feed is drawn as
        ];
        let records: Vec<String> = names.iter().map(|name| recorded(name)).collect();
        for (i, a) in records.iter().enumerate() {
            for b in &records[i + 1..] {
                assert_ne!(a, b, "{records:?}");
            }
        }
        assert_eq!(records[0], "\\\\x41");
        assert_eq!(records[2], "a\\xFFb");
        assert_eq!(records[4], "a\\u000Ab");
        assert_eq!(
            recorded(b"caf\xc3\xa9 \x1b[2J\x7f\xc2\x85"),
            "café \\u001B[2J\\u007F\\u0085"
        );
        for name in names {
            assert_eq!(recorded_bytes(&recorded(name)).as_deref(), Some(name));
        }
        let odd: &[u8] = b"\\\\\\u0000\xc3\xa9\\\xfe\\";
        assert_eq!(recorded_bytes(&recorded(odd)).as_deref(), Some(odd));
    }

    /// Names of bytes that an escape is made of, or that are escaped, or that are not UTF-8
    /// alone or whole: random names of them meet every case the format has to keep apart.
    const PIECES: &[&[u8]] = &[
        b"\\",
        b"x",
        b"u",
        b"0",
        b"00",
        b"0A",
        b"FF",
        b"a",
        b"/",
        b"\n",
        b"\x1b",
        b"\x7f",
        b"\xc2\x85",
        b"\xc2",
        b"\x85",
        b"\xff",
        b"\xe2\x80\xae",
        b"\xe2\x80",
        b"\xf0\x9f\x98\x80",
        "\u{240a}".as_bytes(),
    ];

    #[test]
    fn every_byte_sequence_records_one_way_and_decodes_back() {
        let mut seen: HashMap<String, Vec<u8>> = HashMap::new();
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            let mut name = Vec::new();
            for _ in 0..next(&mut state) % 8 {
                let at = (next(&mut state) % (PIECES.len() as u64 + 1)) as usize;
                match PIECES.get(at) {
                    Some(piece) => name.extend_from_slice(piece),
                    None => name.push(next(&mut state) as u8),
                }
            }
            let record = recorded(&name);
            assert!(!record.chars().any(char::is_control), "{record:?}");
            assert_eq!(recorded_bytes(&record), Some(name.clone()), "{record:?}");
            if let Some(other) = seen.insert(record.clone(), name.clone()) {
                assert_eq!(other, name, "two names record as {record:?}");
            }
        }
        assert!(seen.len() > 10_000, "the names were varied: {}", seen.len());
    }

    /// xorshift64: varied enough, and the same names on every run.
    fn next(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn a_recorded_name_is_drawn_as_the_pane_draws_its_bytes() {
        let names: [&[u8]; 5] = [
            b"a\nairlock: forged",
            b"dir/a\xffb",
            b"back\\slash",
            b"\x1b[2Jx",
            "bidi\u{202e}txt".as_bytes(),
        ];
        for name in names {
            let pane = super::super::display_path(Path::new(OsStr::from_bytes(name)));
            assert_eq!(drawn(&recorded(name)), pane, "{name:?}");
        }
        assert_eq!(drawn(&recorded(b"a\nb")), "a\u{240a}b");
        assert_eq!(
            drawn("old\\qname"),
            "old\\qname",
            "not a recorded name: as it is"
        );
        assert_eq!(drawn("old\u{1b}name"), "old\u{241b}name");
    }

    #[test]
    fn text_that_is_not_a_recorded_name_does_not_decode() {
        for text in ["a\\", "\\q", "\\x4", "\\xZZ", "\\u0100", "\\u00"] {
            assert_eq!(recorded_bytes(text), None, "{text}");
        }
        assert_eq!(
            recorded_bytes("plain/name.txt").as_deref(),
            Some(&b"plain/name.txt"[..])
        );
    }
}
