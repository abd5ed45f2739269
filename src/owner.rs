//! Which airlock process owns a container, so start-up can tell a crashed owner's leftovers
//! from the containers of another airlock that is still running.

use std::fmt;

/// A process identity that survives pid reuse: host, pid and the process's start time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub(crate) host: String,
    pub(crate) pid: u32,
    /// Start time in clock ticks since boot (`/proc/PID/stat` field 22).
    pub(crate) start: u64,
}

impl Owner {
    pub fn current() -> Self {
        let pid = std::process::id();
        Self {
            host: hostname(),
            pid,
            start: process_start(pid).unwrap_or(0),
        }
    }

    /// `host:pid:start`, the value of the `airlock.owner` label.
    pub(crate) fn parse(label: &str) -> Option<Self> {
        let mut parts = label.rsplitn(3, ':');
        let start = parts.next()?.parse().ok()?;
        let pid = parts.next()?.parse().ok()?;
        let host = parts.next()?.to_string();
        Some(Self { host, pid, start })
    }

    /// Whether this owner is known to be gone. Only an owner on this host can be judged;
    /// anything we cannot tell counts as alive, so we never remove a live process's work.
    pub(crate) fn is_dead(&self) -> bool {
        if self.host != hostname() {
            return false;
        }
        if !std::path::Path::new("/proc/self/stat").exists() {
            return false;
        }
        process_start(self.pid) != Some(self.start)
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.host, self.pid, self.start)
    }
}

pub fn hostname() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}

fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    let after_name = &stat[stat.rfind(')')? + 1..];
    // Field 22 overall is the 20th after the name (state is field 3).
    after_name.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_round_trips() {
        let me = Owner::current();
        assert!(me.start > 0);
        assert!(!me.is_dead());
        assert_eq!(Owner::parse(&me.to_string()), Some(me));
    }

    #[test]
    fn an_exited_process_is_dead() {
        let mut child = std::process::Command::new("true").spawn().expect("spawn");
        let pid = child.id();
        let start = process_start(pid);
        child.wait().expect("wait");
        let owner = Owner {
            host: hostname(),
            pid,
            start: start.unwrap_or(1),
        };
        assert!(owner.is_dead());
    }

    #[test]
    fn another_host_is_never_judged() {
        let owner = Owner {
            host: "elsewhere.invalid".into(),
            pid: 1,
            start: 12,
        };
        assert!(!owner.is_dead());
        assert_eq!(
            Owner::parse("a:b:c:1:2").map(|o| o.host),
            Some("a:b:c".to_string())
        );
    }
}
