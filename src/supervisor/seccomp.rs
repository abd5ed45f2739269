//! The block's own seccomp filter, installed on the supervisor thread the block is forked from
//! and inherited by everything the block runs. It stacks on the container's profile (Docker's
//! default, or the daemon's), so it only ever takes away: the kernel's least-used attack
//! surface, and every way to reach past the block (tracing, reading other processes' memory,
//! new namespaces, mounts, keyrings, IPC objects that outlive it), under every ABI the kernel
//! offers a 64-bit process.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

/// Refused with EPERM whatever their arguments.
const REFUSED: &[i64] = &[
    libc::SYS_io_uring_setup,
    libc::SYS_io_uring_enter,
    libc::SYS_io_uring_register,
    libc::SYS_bpf,
    libc::SYS_userfaultfd,
    libc::SYS_perf_event_open,
    libc::SYS_keyctl,
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_ptrace,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
    libc::SYS_unshare,
    libc::SYS_setns,
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_fsopen,
    libc::SYS_fsmount,
    libc::SYS_fspick,
    libc::SYS_open_tree,
    libc::SYS_move_mount,
    libc::SYS_open_by_handle_at,
    libc::SYS_name_to_handle_at,
    libc::SYS_kexec_load,
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    // System V IPC and POSIX message queues: objects that outlive the process that made
    // them, kept by the kernel and not by any file the sweep empties, so a block could hand
    // them to the next one, or leave memory charged to the container until every later block
    // is OOM-killed. POSIX shared memory and semaphores (files in /dev/shm, emptied after
    // every block) are what Python's multiprocessing uses, and stay.
    libc::SYS_shmget,
    libc::SYS_shmat,
    libc::SYS_shmdt,
    libc::SYS_shmctl,
    libc::SYS_msgget,
    libc::SYS_msgsnd,
    libc::SYS_msgrcv,
    libc::SYS_msgctl,
    libc::SYS_semget,
    libc::SYS_semop,
    libc::SYS_semtimedop,
    libc::SYS_semctl,
    libc::SYS_mq_open,
    libc::SYS_mq_unlink,
    libc::SYS_mq_timedsend,
    libc::SYS_mq_timedreceive,
    libc::SYS_mq_notify,
    libc::SYS_mq_getsetattr,
];

/// `clone` flags that make a new namespace: refused.
const NEW_NAMESPACES: &[libc::c_int] = &[
    libc::CLONE_NEWNS,
    libc::CLONE_NEWUTS,
    libc::CLONE_NEWIPC,
    libc::CLONE_NEWUSER,
    libc::CLONE_NEWPID,
    libc::CLONE_NEWNET,
    libc::CLONE_NEWCGROUP,
];

/// Installs the filter on this process; it cannot be removed, and nothing runs without it.
pub(crate) fn install() -> Result<(), String> {
    let fail =
        |err: &dyn std::fmt::Display| format!("cannot install the block's seccomp filter: {err}");
    let arch = TargetArch::try_from(std::env::consts::ARCH).map_err(|err| fail(&err))?;
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> =
        REFUSED.iter().map(|&call| (call, Vec::new())).collect();
    let mut namespaced = Vec::new();
    for &flag in NEW_NAMESPACES {
        let flag = flag as u64;
        let condition = SeccompCondition::new(
            0,
            SeccompCmpArgLen::Qword,
            SeccompCmpOp::MaskedEq(flag),
            flag,
        )
        .map_err(|err| fail(&err))?;
        namespaced.push(SeccompRule::new(vec![condition]).map_err(|err| fail(&err))?);
    }
    rules.insert(libc::SYS_clone, namespaced);
    let refused = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )
    .map_err(|err| fail(&err))?;
    // clone3 takes its flags in memory, where a filter cannot look: it is made unknown, and
    // the C library falls back to clone, whose flags are checked above.
    let clone3 = SeccompFilter::new(
        BTreeMap::from([(libc::SYS_clone3, Vec::new())]),
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        arch,
    )
    .map_err(|err| fail(&err))?;
    let mut programs = Vec::new();
    for filter in [refused, clone3] {
        let program: BpfProgram = filter.try_into().map_err(|err| fail(&err))?;
        programs.push(program);
    }
    #[cfg(target_arch = "x86_64")]
    programs.push(x32_refused());
    for program in programs {
        seccompiler::apply_filter(&program).map_err(|err| fail(&err))?;
    }
    Ok(())
}

/// `AUDIT_ARCH_X86_64`: `EM_X86_64` (62), 64-bit, little-endian; what the kernel reports as
/// the arch of a native and of an x32 system call alike.
#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;

/// What an x32 system call's number carries (`__X32_SYSCALL_BIT`; libc names it only for
/// the x32 target).
#[cfg(target_arch = "x86_64")]
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// Refuses every x32 system call (the 64-bit ABI with 32-bit pointers). The kernel reports
/// them with the native arch and their number plus `__X32_SYSCALL_BIT`, so the filters above,
/// which name native numbers, would let `shmget`, `io_uring_setup`, `unshare`… through under
/// their x32 numbers on a kernel built with x32, and Docker's default profile allows x32. No
/// program in a sandbox image is x32. (The i386 ABI, `int 0x80`, reports another arch, which
/// seccompiler's filters answer by killing the process.)
#[cfg(target_arch = "x86_64")]
fn x32_refused() -> BpfProgram {
    use libc::{
        BPF_ABS, BPF_JEQ, BPF_JGE, BPF_JMP, BPF_K, BPF_LD, BPF_RET, BPF_W, SECCOMP_RET_ALLOW,
        SECCOMP_RET_ERRNO,
    };
    use seccompiler::sock_filter;
    // Offsets in `struct seccomp_data`: the call's number, then its arch.
    const NR: u32 = 0;
    const ARCH: u32 = 4;
    let op = |code: u32, k: u32, jt: u8, jf: u8| sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    };
    vec![
        op(BPF_LD | BPF_W | BPF_ABS, ARCH, 0, 0),
        // Another arch: not this filter's to judge (the others kill it).
        op(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 0, 3),
        op(BPF_LD | BPF_W | BPF_ABS, NR, 0, 0),
        op(BPF_JMP | BPF_JGE | BPF_K, X32_SYSCALL_BIT, 0, 1),
        op(
            BPF_RET | BPF_K,
            SECCOMP_RET_ERRNO | libc::EPERM as u32,
            0,
            0,
        ),
        op(BPF_RET | BPF_K, SECCOMP_RET_ALLOW, 0, 0),
    ]
}
