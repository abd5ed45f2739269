//! The workspace's files as the host reads them: what a block left there is hostile input.
//! Every path is reached from directory descriptors, so no symlink is followed out of the
//! workspace, and only regular files are ever opened, so a FIFO cannot hang airlock and a
//! device is never touched.

#[cfg(test)]
mod attacks;
pub(crate) mod changes;
pub(crate) mod git;
pub(crate) mod listing;
pub(crate) mod read;
pub(crate) mod recorded;
pub(crate) mod warnings;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// `names` joined for one line of a notice, with how many more there were.
pub(crate) fn name_list<S: AsRef<str>>(names: &[S], more: u64) -> String {
    let mut list = names
        .iter()
        .map(AsRef::as_ref)
        .collect::<Vec<_>>()
        .join(", ");
    if more > 0 {
        list.push_str(&format!(" and {more} more"));
    }
    list
}

/// A file name as it may be drawn on one line: bytes that are not UTF-8 as `\xNN`, control
/// characters (ESC, line breaks and tabs too) as their symbols, invisible ones as
/// `<U+XXXX>`, so a name can neither write an escape sequence nor pass for another.
pub(crate) fn display_name(name: &OsStr) -> String {
    let mut shown = String::with_capacity(name.len());
    for chunk in name.as_bytes().utf8_chunks() {
        chunk
            .valid()
            .chars()
            .for_each(|c| push_visible(c, &mut shown));
        for byte in chunk.invalid() {
            shown.push_str(&format!("\\x{byte:02X}"));
        }
    }
    shown
}

/// Escape sequences are not removed but drawn, so no two names look alike.
fn push_visible(c: char, out: &mut String) {
    match c {
        '\u{0}'..='\u{1f}' => out.push(char::from_u32(0x2400 + c as u32).unwrap_or('\u{fffd}')),
        '\u{7f}' => out.push('\u{2421}'),
        c if crate::output::sanitize::is_invisible(c) => {
            out.push_str(&format!("<U+{:04X}>", c as u32));
        }
        c => out.push(c),
    }
}

/// The mode an entry gets on the host: `mode`'s permission bits, without group or other
/// write that the entry it replaces (`before`) did not have: a block cannot open the
/// operator's files to everyone on the machine.
pub(crate) fn host_mode(mode: u32, before: Option<u32>) -> u32 {
    let writable = before.unwrap_or(0) & 0o022;
    mode & 0o777 & !(0o022 & !writable)
}

/// A size for people: `812 B`, `4.0 KiB`, `1.5 MiB`.
pub(crate) fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A relative path drawn the same way, one name at a time.
pub(crate) fn display_path(path: &Path) -> String {
    path.iter().map(display_name).collect::<Vec<_>>().join("/")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;
    use std::os::unix::ffi::OsStringExt;

    #[test]
    fn hostile_names_are_drawn_harmless() {
        let escape = OsString::from("\u{1b}]0;owned\u{7}\u{1b}[2Jreport.txt");
        let shown = display_name(&escape);
        assert!(!shown.contains('\u{1b}'), "{shown:?}");
        assert!(!shown.contains('\u{7}'), "{shown:?}");
        assert!(shown.ends_with("report.txt"), "{shown:?}");
        let bidi = display_name(OsStr::new("invoice\u{202e}fdp.exe"));
        assert_eq!(bidi, "invoice<U+202E>fdp.exe");
        let broken = display_name(&OsString::from_vec(b"a\xffb\nc".to_vec()));
        assert_eq!(broken, "a\\xFFb\u{240a}c");
        assert_eq!(
            display_path(Path::new("data/x\ty.csv")),
            "data/x\u{2409}y.csv"
        );
    }

    #[test]
    fn sizes_read_as_people_say_them() {
        assert_eq!(human_size(812), "812 B");
        assert_eq!(human_size(4096), "4.0 KiB");
        assert_eq!(human_size(3 << 29), "1.5 GiB");
    }
}
