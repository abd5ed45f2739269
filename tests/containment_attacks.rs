//! Attacks through what the kernel keeps outside every file: IPC objects one block leaves for
//! the next (a secret to read, or memory charged to the container until every later block is
//! OOM-killed) and core dumps a block turns back on. Each is hostile block code against the
//! real daemon; each asserts what airlock reports and what is left in the container and on
//! the host.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod common;

use airlock::config::{ByteSize, SandboxConfig};
use airlock::sandbox::Sandbox;
use common::docker;
use common::session::*;

/// Leaves a secret in every kind of IPC object it can make: System V shared memory, a
/// message queue and a semaphore under a known key, a POSIX message queue, and one made
/// through the mqueue filesystem. Prints what it made and what was refused.
const LEAVE: &str = r#"
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
KEY, CREATE = 0x41524c4b, 0o1666
def report(name, ok):
    print(name, "made" if ok else "refused: " + os.strerror(ctypes.get_errno()), flush=True)
shm = libc.shmget(KEY, 4096, CREATE)
if shm >= 0:
    address = libc.shmat(shm, None, 0)
    ctypes.memmove(address, b"shm-secret", 10)
report("shm", shm >= 0)
msg = libc.msgget(KEY, CREATE)
if msg >= 0:
    body = ctypes.create_string_buffer(ctypes.sizeof(ctypes.c_long) + 16)
    ctypes.memmove(body, (1).to_bytes(8, "little") + b"msg-secret", 18)
    libc.msgsnd(msg, body, 10, 0)
report("msg", msg >= 0)
sem = libc.semget(KEY, 1, CREATE)
if sem >= 0:
    libc.semctl(sem, 0, 16, 4242)  # SETVAL
report("sem", sem >= 0)
mq = libc.mq_open(b"/airlock-secret", os.O_CREAT | os.O_RDWR, 0o666, None)
if mq >= 0:
    libc.mq_send(mq, b"mq-secret", 9, 0)
report("mq", mq >= 0)
try:
    os.close(os.open("/dev/mqueue/mq-secret-by-name", os.O_CREAT | os.O_RDWR, 0o666))
    print("mqueue file made")
except OSError as err:
    print("mqueue file refused:", err.strerror)
"#;

/// Looks for anything an earlier block left, every way a block can: `ipcs`, /proc/sysvipc,
/// the known key, the POSIX queue's name, /dev/mqueue. Prints what it finds, or `nothing`.
const FIND: &str = r#"
import ctypes, os, shutil, subprocess
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
KEY = 0x41524c4b
found = []
if shutil.which("ipcs"):
    listed = subprocess.run(["ipcs"], capture_output=True, text=True).stdout
    found += ["ipcs: " + line for line in listed.splitlines() if line[:2] == "0x"]
for kind in ("shm", "msg", "sem"):
    with open("/proc/sysvipc/" + kind) as table:
        found += ["/proc/sysvipc/%s: %s" % (kind, row.strip()) for row in list(table)[1:]]
shm = libc.shmget(KEY, 0, 0)
if shm >= 0:
    found.append("shm: " + ctypes.string_at(libc.shmat(shm, None, 0), 10).decode(errors="replace"))
msg = libc.msgget(KEY, 0)
if msg >= 0:
    body = ctypes.create_string_buffer(64)
    got = libc.msgrcv(msg, body, 32, 0, 0o4000)  # IPC_NOWAIT
    found.append("msg: %r" % body.raw[8:8 + max(got, 0)])
sem = libc.semget(KEY, 1, 0)
if sem >= 0:
    found.append("sem: %d" % libc.semctl(sem, 0, 12))  # GETVAL
mq = libc.mq_open(b"/airlock-secret", os.O_RDONLY | os.O_NONBLOCK, 0, None)
if mq >= 0:
    body = ctypes.create_string_buffer(8192)
    got = libc.mq_receive(mq, body, 8192, None)
    found.append("mq: %r" % body.raw[:max(got, 0)])
if os.path.isdir("/dev/mqueue"):
    found += ["/dev/mqueue/" + name for name in os.listdir("/dev/mqueue")]
print("\n".join(found) or "nothing")
"#;

#[tokio::test]
async fn ipc_objects_a_block_leaves_are_not_there_for_the_next() {
    let mut session = session(SandboxConfig::default()).await;
    let container = session.sandbox.container_id().expect("running").to_string();
    let (left, _) = run(&mut session, "python", LEAVE, 30).await;
    assert_eq!(left.exit_code, Some(0), "{left:?}");
    // System V IPC and POSIX queues are refused to blocks outright.
    for kind in ["shm", "msg", "sem", "mq"] {
        assert!(
            left.output
                .contains(&format!("{kind} refused: Operation not permitted")),
            "{kind}: {}",
            left.output
        );
    }
    let (found, _) = run(&mut session, "python", FIND, 30).await;
    assert_eq!(
        (found.exit_code, found.output.as_str()),
        (Some(0), "nothing\n"),
        "{found:?}"
    );
    // Seen from outside, as root in the container's IPC namespace: nothing is left there.
    let inside = docker(&[
        "exec",
        &container,
        "sh",
        "-c",
        "tail -qn +2 /proc/sysvipc/shm /proc/sysvipc/msg /proc/sysvipc/sem; ls -A /dev/mqueue",
    ]);
    assert_eq!(inside, "", "left in the container's IPC namespace");
    assert_eq!(session.sandbox.container_id(), Some(container.as_str()));
    session.sandbox.shutdown().await;
}

/// Makes a System V shared memory segment of 400 MiB and writes every page of it, so that
/// were it kept, it would stay charged to the container's memory after the block.
const HOG: &str = r#"
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
size = 400 << 20
shm = libc.shmget(0, size, 0o1600)
if shm < 0:
    print("refused:", os.strerror(ctypes.get_errno()))
else:
    ctypes.memset(libc.shmat(shm, None, 0), 1, size)
    print("kept 400 MiB in segment", shm)
"#;

#[tokio::test]
async fn a_shared_memory_segment_cannot_get_later_blocks_oom_killed() {
    // Memory as small as the attack needs: 512 MiB for programs, 16 MiB of workspace.
    let config = SandboxConfig {
        memory: ByteSize::mib(512),
        workspace_limit: ByteSize::mib(16),
        ..SandboxConfig::default()
    };
    let mut session = session(config).await;
    let (hog, _) = run(&mut session, "python", HOG, 60).await;
    assert_eq!(hog.exit_code, Some(0), "{hog:?}");
    assert!(!hog.oom_killed, "{hog:?}");
    for block in 2..=3 {
        let (used, _) = run(
            &mut session,
            "python",
            "data = b'x' * (300 << 20)\nprint('used', len(data) >> 20, 'MiB')",
            60,
        )
        .await;
        assert!(!used.oom_killed, "block {block}: {used:?} after {hog:?}");
        assert_eq!(
            (used.exit_code, used.output.as_str()),
            (Some(0), "used 300 MiB\n"),
            "block {block}: {used:?} after {hog:?}"
        );
    }
    session.sandbox.shutdown().await;
}

/// Raises the core limit every way a block can, then crashes in /workspace, where the
/// kernel's `core` pattern (this host's) would write the dump and airlock would copy it out.
const CRASH: &str = r#"
ulimit -c unlimited 2>/dev/null && echo "shell raised it" || echo "shell: refused"
python3 -c '
import resource
try:
    resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    print("python raised it")
except (ValueError, OSError) as err:
    print("python: refused")
'
grep "core file" /proc/self/limits | tr -s ' ' | sed 's/ $//'
cd /workspace && sh -c 'ulimit -c unlimited 2>/dev/null; kill -SEGV $$'
ls /workspace
"#;

#[tokio::test]
async fn a_block_cannot_turn_core_dumps_back_on() {
    let mut session = session(SandboxConfig::default()).await;
    let (result, _) = run(&mut session, "sh", CRASH, 30).await;
    for line in [
        "shell: refused\n",
        "python: refused\n",
        "Max core file size 0 0 bytes\n",
    ] {
        assert!(result.output.contains(line), "{line}: {result:?}");
    }
    assert!(!result.output.contains("raised"), "{result:?}");
    let host_files: Vec<String> = std::fs::read_dir(session.workspace())
        .expect("workspace")
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !host_files.iter().any(|name| name.starts_with("core")),
        "{host_files:?}"
    );
    session.sandbox.shutdown().await;
}

/// What Python's multiprocessing needs (POSIX semaphores and shared memory, files in
/// /dev/shm) is not IPC the filter refuses: it works, and nothing of it is left after.
const MULTIPROCESSING: &str = r#"
import multiprocessing as mp
from multiprocessing import shared_memory
if __name__ == "__main__":
    with mp.Pool(2) as pool:
        values = pool.map(abs, [-1, -2, -3])
    lock, queue = mp.Lock(), mp.Queue()
    with lock:
        queue.put(sum(values))
    made = shared_memory.SharedMemory(create=True, size=4096, name="airlock-shared")
    made.buf[:2] = b"ok"
    seen = shared_memory.SharedMemory(name="airlock-shared")
    print(queue.get(), bytes(seen.buf[:2]).decode())
"#;

#[tokio::test]
async fn multiprocessing_still_works_and_leaves_nothing() {
    let mut session = session(SandboxConfig::default()).await;
    let (result, _) = run(&mut session, "python", MULTIPROCESSING, 60).await;
    assert_eq!(
        (result.exit_code, result.output.as_str()),
        (Some(0), "6 ok\n"),
        "{result:?}"
    );
    let (after, _) = run(&mut session, "sh", "ls -A /dev/shm /dev/mqueue", 10).await;
    assert_eq!(after.output, "/dev/mqueue:\n\n/dev/shm:\n", "{after:?}");
    session.sandbox.shutdown().await;
}

/// Calls `shmget` through the i386 ABI (`int 0x80`, System V IPC's own call numbers there),
/// which a 64-bit process can still use: machine code written into an executable page.
/// Prints `trying` first, and what the kernel answered if the process lives.
const I386_SHMGET: &str = r#"
import ctypes, mmap, struct
code = (b"\x53"                                         # push rbx
        + b"\xb8" + struct.pack("<I", 395)              # mov eax, shmget (i386)
        + b"\xbb" + struct.pack("<I", 0)                # mov ebx, IPC_PRIVATE
        + b"\xb9" + struct.pack("<I", 4096)             # mov ecx, size
        + b"\xba" + struct.pack("<I", 0o1600)           # mov edx, IPC_CREAT | 0600
        + b"\xcd\x80"                                   # int 0x80
        + b"\x5b\xc3")                                  # pop rbx; ret
page = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
page.write(code)
call = ctypes.CFUNCTYPE(ctypes.c_int)(ctypes.addressof(ctypes.c_char.from_buffer(page)))
print("trying", flush=True)
print("i386 shmget answered", call(), flush=True)
"#;

/// Calls what the filter refuses under their x32 numbers (the native number plus
/// `__X32_SYSCALL_BIT`), and a harmless one. A kernel without x32 answers ENOSYS, one with
/// it runs them: only a filter answers EPERM.
const X32_CALLS: &str = r#"
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
for name, number, args in (("shmget", 29, (0, 4096, 0o1600)), ("msgget", 68, (0, 0o1600)),
                           ("unshare", 272, (0x04000000,)), ("getpid", 39, ())):
    got = libc.syscall(ctypes.c_long(0x40000000 | number), *map(ctypes.c_long, args))
    print(name, "made" if got >= 0 else "refused: " + os.strerror(ctypes.get_errno()))
"#;

#[tokio::test]
async fn ipc_and_every_other_refusal_hold_under_the_i386_and_x32_abis() {
    let mut session = session(SandboxConfig::default()).await;
    let container = session.sandbox.container_id().expect("running").to_string();
    let (i386, _) = run(&mut session, "python", I386_SHMGET, 30).await;
    // A call under a foreign arch kills the block (SIGSYS) before the kernel makes anything.
    assert_eq!(
        (i386.exit_code, i386.output.as_str()),
        (Some(128 + i64::from(libc::SIGSYS)), "trying\n"),
        "{i386:?}"
    );
    let (x32, _) = run(&mut session, "python", X32_CALLS, 30).await;
    assert_eq!(x32.exit_code, Some(0), "{x32:?}");
    assert_eq!(
        x32.output,
        "shmget refused: Operation not permitted\nmsgget refused: Operation not permitted\n\
         unshare refused: Operation not permitted\ngetpid refused: Operation not permitted\n",
        "{x32:?}"
    );
    let inside = docker(&[
        "exec",
        &container,
        "sh",
        "-c",
        "tail -qn +2 /proc/sysvipc/shm /proc/sysvipc/msg /proc/sysvipc/sem",
    ]);
    assert_eq!(inside, "", "left in the container's IPC namespace");
    session.sandbox.shutdown().await;
}
