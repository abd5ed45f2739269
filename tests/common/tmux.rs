//! A real terminal: a command inside a tmux server of its own (never the user's), driven by
//! key presses (`send-keys`) and read back from the screen (`capture-pane`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::wait_until;

pub struct Tmux {
    socket: String,
    exit_file: PathBuf,
}

impl Tmux {
    /// Runs the shell command line `command` in a 150×45 terminal; `dir` (a test's own
    /// directory) keeps its exit status.
    pub fn run(dir: &Path, command: &str) -> Self {
        let unique = dir
            .file_name()
            .and_then(|name| name.to_str())
            .unwrap_or("x")
            .to_string();
        let socket = format!("airlock-test-{}-{unique}", std::process::id());
        let exit_file = dir.join("exit-status");
        let command = format!(
            "{command}; echo $? > {exit}; sleep 60",
            exit = exit_file.display()
        );
        let status = Command::new("tmux")
            .args(["-L", &socket, "new-session", "-d", "-s", "airlock"])
            .args(["-x", "150", "-y", "45", &command])
            .status()
            .expect("tmux runs (apt-get install tmux)");
        assert!(status.success());
        Self { socket, exit_file }
    }

    pub fn screen(&self) -> String {
        self.capture(&[])
    }

    /// The screen with its SGR sequences (`capture-pane -e`).
    pub fn screen_with_styles(&self) -> String {
        self.capture(&["-e"])
    }

    fn capture(&self, extra: &[&str]) -> String {
        let output = Command::new("tmux")
            .args(["-L", &self.socket, "capture-pane", "-p"])
            .args(extra)
            .args(["-t", "airlock"])
            .output()
            .expect("capture-pane");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// A tmux format for the pane, such as `#{alternate_on}` or `#{pane_tty}`.
    pub fn display(&self, format: &str) -> String {
        let output = Command::new("tmux")
            .args([
                "-L",
                &self.socket,
                "display-message",
                "-p",
                "-t",
                "airlock",
                format,
            ])
            .output()
            .expect("display-message");
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }

    /// Esc alone: a key sent right after it would read as Alt-key, so it gets a moment.
    pub fn escape(&self) {
        self.keys(&["Escape"]);
        std::thread::sleep(Duration::from_millis(300));
    }

    pub fn keys(&self, keys: &[&str]) {
        let status = Command::new("tmux")
            .args(["-L", &self.socket, "send-keys", "-t", "airlock"])
            .args(keys)
            .status()
            .expect("send-keys");
        assert!(status.success());
    }

    /// Waits until the screen shows `text`; fails with the screen as it is.
    pub fn wait_for(&self, text: &str) {
        self.wait_for_within(text, Duration::from_secs(60));
    }

    pub fn wait_for_within(&self, text: &str, limit: Duration) {
        let found = wait_until(limit, || self.screen().contains(text));
        assert!(
            found,
            "the screen never showed {text:?}:\n{}",
            self.screen()
        );
    }

    /// Waits for the command to exit; fails with the screen as it is.
    pub fn wait_exit(&self) {
        let exited = wait_until(Duration::from_secs(30), || self.exit_status().is_some());
        assert!(exited, "the command did not exit:\n{}", self.screen());
    }

    /// The command's exit status, once the shell has written it: the file exists (empty) a
    /// moment before the status is in it.
    pub fn exit_status(&self) -> Option<String> {
        std::fs::read_to_string(&self.exit_file)
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|status| !status.is_empty())
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}
