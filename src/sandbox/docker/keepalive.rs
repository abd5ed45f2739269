//! PID 1's job: wait on a stdin that airlock holds open. When airlock goes away for any
//! reason, SIGKILL included, the stream closes, `cat` ends, the container stops and Docker
//! removes it (auto-remove).

pub fn command() -> Vec<String> {
    ["/bin/sh", "-c", "exec cat >/dev/null"]
        .map(String::from)
        .to_vec()
}
