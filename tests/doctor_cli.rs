//! `airlock doctor` end to end against the real Docker daemon.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::{Home, run_with_stdin, stderr};

fn entries(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .map(|listing| {
            listing
                .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn doctor_probes_the_sandbox_and_leaves_no_workspace_behind() {
    let home = Home::new();
    let workspaces = home.data_dir().join("workspaces");
    std::fs::create_dir_all(workspaces.join("s-earlier")).unwrap();
    let before = entries(&workspaces);
    let mut command = home.airlock();
    command.arg("doctor");
    let output = run_with_stdin(command, "");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("ok   sandbox: hardened container started"),
        "{stdout}\n{}",
        stderr(&output)
    );
    assert!(stdout.contains("workspace: writable: yes"), "{stdout}");
    // What a block could leave in the kernel or hand to the host, tried from inside.
    for line in [
        "ok   ipc namespace: ipc:[",
        "ok   ipc: System V shared memory, message queues and semaphores refused to a block; \
         objects in the namespace (shm msg sem): 0 0 0",
        "ok   core dumps: core limit (soft hard) 0 0; raising it: refused",
    ] {
        assert!(stdout.contains(line), "{line}\n{stdout}");
    }
    assert_eq!(entries(&workspaces), before, "{stdout}");
}
