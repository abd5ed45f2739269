//! The shell wrapper every block runs under, and the parsing of the status line it ends with.
//!
//! The wrapper reads a nonce line and then the code from its stdin, writes the code to a
//! new file inside the container (never through a host path), runs it under `timeout`
//! with stdin from /dev/null, then kills every process of the block's uid (`kill -9 -1`
//! spares the caller and the keeper, which runs as another uid), checks in /proc that none
//! survived, and prints one status line:
//! NUL, the nonce, exit status, OOM kills during the run, and whether anything survived.
//! The nonce is sent through stdin, so the block cannot read it from the wrapper's argv.

/// `kill_all`: kills every process of uid `$me` except the calling shell and checks in /proc
/// that none is left (false when some survived a second of trying).
macro_rules! kill_all_fn {
    () => {
        r#"
# kill(-1) succeeds whenever any other process exists, even one we may not signal, so
# survivors are found by reading /proc: any process of our uid but this shell.
survivors() {
  found=0
  for d in /proc/[0-9]*; do
    [ "${d#/proc/}" = "$$" ] && continue
    while read -r key uid _; do
      if [ "$key" = Uid: ]; then [ "$uid" = "$me" ] && found=1; break; fi
    done 2>/dev/null < "$d/status"
  done
  [ "$found" = 1 ]
}
kill_all() {
  for _ in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
    kill -9 -1 2>/dev/null
    survivors || return 0
    sleep 0.05
  done
  return 1
}
"#
    };
}

pub const SCRIPT: &str = concat!(
    r#"
IFS= read -r nonce || exit 125
limit=$1; grace=$2; ext=$3; me=$4; shift 4
# noclobber: the file is created new (O_EXCL), so nothing an earlier block left in /tmp,
# a symlink included, can redirect it.
file="/tmp/airlock-block.$$.$ext"
set -C
true > "$file" 2>/dev/null || exit 125
set +C
cat > "$file" || exit 125
oom_kills() {
  for f in /sys/fs/cgroup/memory/memory.oom_control /sys/fs/cgroup/memory.events; do
    if [ -r "$f" ]; then
      while read -r key value; do
        if [ "$key" = oom_kill ]; then echo "$value"; return; fi
      done < "$f"
    fi
  done
  echo 0
}
"#,
    kill_all_fn!(),
    r#"before=$(oom_kills)
cd /workspace 2>/dev/null
timeout -k "$grace" "$limit" "$@" "$file" < /dev/null
status=$?
left=0
kill_all || left=1
after=$(oom_kills)
rm -f "$file"
printf '\000%s %s %s %s\n' "$nonce" "$status" "$((after - before))" "$left"
"#
);

/// Kills every process of uid `$1` but the caller, for a block the operator stopped: the
/// exit status says whether any survived.
pub const KILL_ALL: &str = concat!("me=$1\n", kill_all_fn!(), "kill_all\n");

/// The wrapper's last line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    pub exit_status: i64,
    pub oom_kills: u64,
    pub processes_left: bool,
}

/// Splits the status line off the stdout stream. Everything before it passes through at
/// once; only a suffix that could be the start of the marker is held back, and since the
/// marker begins with NUL, ordinary text is never delayed.
#[derive(Debug)]
pub struct StatusScanner {
    marker: Vec<u8>,
    held: Vec<u8>,
    found: Option<Vec<u8>>,
}

impl StatusScanner {
    pub fn new(nonce: &str) -> Self {
        let mut marker = vec![0u8];
        marker.extend_from_slice(nonce.as_bytes());
        Self {
            marker,
            held: Vec::new(),
            found: None,
        }
    }

    /// Returns the bytes of program output in `chunk`.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        if let Some(status) = self.found.as_mut() {
            status.extend_from_slice(chunk);
            return Vec::new();
        }
        let mut data = std::mem::take(&mut self.held);
        data.extend_from_slice(chunk);
        if let Some(at) = find(&data, &self.marker) {
            self.found = Some(data.split_off(at + self.marker.len()));
            data.truncate(at);
            return data;
        }
        let keep = self.partial_marker_suffix(&data);
        self.held = data.split_off(data.len() - keep);
        data
    }

    /// Longest suffix of `data` that is a proper prefix of the marker.
    fn partial_marker_suffix(&self, data: &[u8]) -> usize {
        (1..self.marker.len().min(data.len() + 1))
            .rev()
            .find(|&n| data.ends_with(&self.marker[..n]))
            .unwrap_or(0)
    }

    /// At end of stream: the status, and any held bytes that turned out to be output.
    pub fn finish(self) -> (Option<Status>, Vec<u8>) {
        match self.found {
            Some(rest) => (parse_status(&rest), Vec::new()),
            None => (None, self.held),
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

fn parse_status(rest: &[u8]) -> Option<Status> {
    let line = std::str::from_utf8(rest).ok()?;
    let mut fields = line.split_whitespace();
    Some(Status {
        exit_status: fields.next()?.parse().ok()?,
        // A negative delta (counter reset by a restart) means no OOM kill during this run.
        oom_kills: fields.next()?.parse::<i64>().ok()?.max(0) as u64,
        processes_left: fields.next()? != "0",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(chunks: &[&[u8]]) -> (Vec<u8>, Option<Status>) {
        let mut scanner = StatusScanner::new("abc123");
        let mut output = Vec::new();
        for chunk in chunks {
            output.extend(scanner.push(chunk));
        }
        let (status, rest) = scanner.finish();
        output.extend(rest);
        (output, status)
    }

    #[test]
    fn the_status_line_is_split_off_wherever_the_chunks_break() {
        let stream = b"hello\nworld\n\0abc123 3 0 0\n";
        for split in 0..stream.len() {
            let (a, b) = stream.split_at(split);
            let (output, status) = scan(&[a, b]);
            assert_eq!(output, b"hello\nworld\n", "split at {split}");
            assert_eq!(
                status,
                Some(Status {
                    exit_status: 3,
                    oom_kills: 0,
                    processes_left: false
                }),
                "split at {split}"
            );
        }
    }

    #[test]
    fn output_that_only_looks_like_the_marker_is_kept() {
        let (output, status) = scan(&[b"a\0abc", b"12x\0", b"tail"]);
        assert_eq!(output, b"a\0abc12x\0tail");
        assert_eq!(status, None);
    }

    #[test]
    fn text_is_not_held_back() {
        let mut scanner = StatusScanner::new("n0nce");
        assert_eq!(scanner.push(b"Enter your name: "), b"Enter your name: ");
        assert_eq!(scanner.push(b"x\0n0"), b"x");
    }

    #[test]
    fn oom_and_leftovers_are_read() {
        let (_, status) = scan(&[b"\0abc123 137 1 1\n"]);
        assert_eq!(
            status,
            Some(Status {
                exit_status: 137,
                oom_kills: 1,
                processes_left: true
            })
        );
    }
}
