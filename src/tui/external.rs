//! Handing a workspace file to a program outside airlock: the pager, with the screen
//! suspended, or the system opener, detached. Neither gets a name through a shell, nor one
//! block code can swap: the pager reads the file airlock opened, the opener gets the path of
//! a private copy (`super::handover`) as one argument.

use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Stdio;

use super::Screen;
use crate::files::display_path;
use crate::files::read::open_regular;

/// Reads `path` (inside `root`) in $PAGER, else `less`, on its standard input; an error in
/// words when it is not a text file or the pager failed.
pub(super) async fn page(screen: &mut Screen, root: &Path, path: &Path) -> Result<(), String> {
    let shown = display_path(path);
    let opened = open_regular(root, path).map_err(|why| format!("{shown} is not paged: {why}"))?;
    let mut file = opened.file;
    let mut head = vec![0; 8192];
    let read = file
        .read(&mut head)
        .map_err(|err| format!("cannot read {shown}: {err}"))?;
    if head[..read].contains(&0) {
        return Err(format!(
            "{shown} is not text; the system opener can take it"
        ));
    }
    file.seek(SeekFrom::Start(0))
        .map_err(|err| format!("cannot read {shown}: {err}"))?;
    let pager = std::env::var("PAGER").unwrap_or_default();
    let (program, mut command) = super::command_line(&pager, "less");
    command
        .stdin(Stdio::from(file))
        // less's preprocessors (lesspipe) would run decoders on what a block wrote.
        .env_remove("LESSOPEN")
        .env_remove("LESSCLOSE");
    match super::suspended(screen, command).await {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => Err(format!("the pager ({program}) ended with {status}")),
        Err(err) => Err(format!("cannot run the pager ({program}): {err}")),
    }
}

/// Starts the system opener on `path` and returns at once, with what to tell the operator.
/// Its output goes nowhere (it would write over the screen), and a thread reaps it.
pub(super) fn open_detached(path: &Path) -> String {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    open_with(opener, path)
}

/// Starts `opener` on `path`, detached, as [`open_detached`] does with the system's.
pub(super) fn open_with(opener: &str, path: &Path) -> String {
    let shown = crate::files::display_name(path.as_os_str());
    let spawned = std::process::Command::new(opener)
        .arg(path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Its own process group: a Ctrl-C meant for airlock does not reach it.
        .process_group(0)
        .spawn();
    match spawned {
        Ok(mut child) => {
            std::thread::spawn(move || child.wait());
            format!("handed to {opener}: {shown}")
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            format!("there is no system opener ({opener} is not installed); the file is at {shown}")
        }
        Err(err) => format!("cannot start {opener}: {err}"),
    }
}
