//! The seccomp denylist of a `native` worker: system calls a wasm runtime
//! never needs and an escaped guest would want. Everything else is allowed
//! (an allowlist would break with every libc and wasmtime upgrade).
//!
//! Denied with `EPERM`: debugging other processes, mounting and namespace
//! changes, kernel modules and keyrings, BPF and perf, creating sockets,
//! time and reboot. `clone` with any namespace flag is denied too; `clone3`
//! answers `ENOSYS` (its flags live in memory a filter cannot read) so libc
//! falls back to `clone`, whose flags it can. So is any call that would
//! give a file the set-user-ID or set-group-ID bit: what a worker creates
//! is owned, outside, by the host's user (root's, when silt is root), and
//! only the sandbox's own view of it is `nosuid`. `openat2`, whose mode
//! also lives in memory, answers `ENOSYS` (callers fall back to `openat`).

use std::collections::BTreeMap;
use std::io;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

/// Calls denied outright, by name (for runc's configuration) and number.
pub const DENIED: &[(&str, libc::c_long)] = &[
    ("ptrace", libc::SYS_ptrace),
    ("process_vm_readv", libc::SYS_process_vm_readv),
    ("process_vm_writev", libc::SYS_process_vm_writev),
    ("mount", libc::SYS_mount),
    ("umount2", libc::SYS_umount2),
    ("pivot_root", libc::SYS_pivot_root),
    ("chroot", libc::SYS_chroot),
    ("unshare", libc::SYS_unshare),
    ("setns", libc::SYS_setns),
    ("open_tree", libc::SYS_open_tree),
    ("move_mount", libc::SYS_move_mount),
    ("fsopen", libc::SYS_fsopen),
    ("fsconfig", libc::SYS_fsconfig),
    ("fsmount", libc::SYS_fsmount),
    ("fspick", libc::SYS_fspick),
    ("mount_setattr", libc::SYS_mount_setattr),
    ("kexec_load", libc::SYS_kexec_load),
    ("kexec_file_load", libc::SYS_kexec_file_load),
    ("init_module", libc::SYS_init_module),
    ("finit_module", libc::SYS_finit_module),
    ("delete_module", libc::SYS_delete_module),
    ("bpf", libc::SYS_bpf),
    ("perf_event_open", libc::SYS_perf_event_open),
    ("keyctl", libc::SYS_keyctl),
    ("add_key", libc::SYS_add_key),
    ("request_key", libc::SYS_request_key),
    ("userfaultfd", libc::SYS_userfaultfd),
    // io_uring can open sockets and connect without `socket`/`connect`.
    ("io_uring_setup", libc::SYS_io_uring_setup),
    ("io_uring_enter", libc::SYS_io_uring_enter),
    ("io_uring_register", libc::SYS_io_uring_register),
    ("reboot", libc::SYS_reboot),
    ("swapon", libc::SYS_swapon),
    ("swapoff", libc::SYS_swapoff),
    ("acct", libc::SYS_acct),
    ("settimeofday", libc::SYS_settimeofday),
    ("clock_settime", libc::SYS_clock_settime),
    ("clock_adjtime", libc::SYS_clock_adjtime),
    ("adjtimex", libc::SYS_adjtimex),
    ("quotactl", libc::SYS_quotactl),
    ("open_by_handle_at", libc::SYS_open_by_handle_at),
    ("name_to_handle_at", libc::SYS_name_to_handle_at),
    ("personality", libc::SYS_personality),
    ("fanotify_init", libc::SYS_fanotify_init),
    ("syslog", libc::SYS_syslog),
    ("vhangup", libc::SYS_vhangup),
    ("socket", libc::SYS_socket),
    ("connect", libc::SYS_connect),
    ("bind", libc::SYS_bind),
    ("listen", libc::SYS_listen),
    ("accept", libc::SYS_accept),
    ("accept4", libc::SYS_accept4),
];

/// Calls that set a file's mode, with the index of the argument holding
/// it (`open` and `openat` use it only to create).
const MODE_SETTERS: &[(libc::c_long, u8)] = &[
    #[cfg(target_arch = "x86_64")]
    (libc::SYS_chmod, 1),
    #[cfg(target_arch = "x86_64")]
    (libc::SYS_open, 2),
    #[cfg(target_arch = "x86_64")]
    (libc::SYS_creat, 1),
    #[cfg(target_arch = "x86_64")]
    (libc::SYS_mkdir, 1),
    #[cfg(target_arch = "x86_64")]
    (libc::SYS_mknod, 1),
    (libc::SYS_fchmod, 1),
    (libc::SYS_fchmodat, 2),
    (SYS_FCHMODAT2, 2),
    (libc::SYS_openat, 3),
    (libc::SYS_mkdirat, 2),
    (libc::SYS_mknodat, 2),
];

/// `fchmodat2` (Linux 6.6), the same number on every architecture.
const SYS_FCHMODAT2: libc::c_long = 452;

/// Namespace flags a worker may not pass to `clone`.
const NAMESPACE_FLAGS: &[libc::c_int] = &[
    libc::CLONE_NEWNS,
    libc::CLONE_NEWUSER,
    libc::CLONE_NEWNET,
    libc::CLONE_NEWPID,
    libc::CLONE_NEWIPC,
    libc::CLONE_NEWUTS,
    libc::CLONE_NEWCGROUP,
];

/// Installs the filter on the calling thread (and what it execs).
/// `no_new_privs` must already be set.
///
/// # Errors
/// When this architecture is not supported or the kernel refuses the filter.
pub fn apply() -> io::Result<()> {
    let arch = TargetArch::try_from(std::env::consts::ARCH).map_err(io::Error::other)?;
    // The ENOSYS filter (clone3, openat2) first; both run on every call
    // and their syscall sets do not overlap.
    let unfilterable = BTreeMap::from([
        (libc::SYS_clone3, Vec::new()),
        (libc::SYS_openat2, Vec::new()),
    ]);
    install(
        unfilterable,
        SeccompAction::Errno(libc::ENOSYS as u32),
        arch,
    )?;

    let mut denied: BTreeMap<i64, Vec<SeccompRule>> =
        DENIED.iter().map(|&(_, nr)| (nr, Vec::new())).collect();
    let mut clone_rules = Vec::new();
    for &flag in NAMESPACE_FLAGS {
        let flag = flag as u64;
        let condition = SeccompCondition::new(
            0,
            SeccompCmpArgLen::Qword,
            SeccompCmpOp::MaskedEq(flag),
            flag,
        )
        .map_err(io::Error::other)?;
        clone_rules.push(SeccompRule::new(vec![condition]).map_err(io::Error::other)?);
    }
    denied.insert(libc::SYS_clone, clone_rules);
    for &(nr, argument) in MODE_SETTERS {
        let mut rules = Vec::new();
        for bit in [libc::S_ISUID, libc::S_ISGID] {
            let bit = u64::from(bit);
            let condition = SeccompCondition::new(
                argument,
                SeccompCmpArgLen::Dword,
                SeccompCmpOp::MaskedEq(bit),
                bit,
            )
            .map_err(io::Error::other)?;
            rules.push(SeccompRule::new(vec![condition]).map_err(io::Error::other)?);
        }
        denied.insert(nr, rules);
    }
    install(denied, SeccompAction::Errno(libc::EPERM as u32), arch)?;
    #[cfg(target_arch = "x86_64")]
    seccompiler::apply_filter(&x32_guard()).map_err(io::Error::other)?;
    Ok(())
}

/// x32 system calls share x86_64's audit architecture and are numbered
/// from `0x4000_0000`: no rule above names them, so on a kernel with the
/// x32 ABI `chmod` or `socket` through its numbers would pass. Every one
/// is refused with `EPERM`.
#[cfg(target_arch = "x86_64")]
fn x32_guard() -> BpfProgram {
    const X32_SYSCALL_BIT: u32 = 0x4000_0000;
    let instruction =
        |code: u16, jt: u8, jf: u8, k: u32| seccompiler::sock_filter { code, jt, jf, k };
    vec![
        // Load seccomp_data.nr (offset 0).
        instruction((libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16, 0, 0, 0),
        instruction(
            (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16,
            0,
            1,
            X32_SYSCALL_BIT,
        ),
        instruction(
            (libc::BPF_RET | libc::BPF_K) as u16,
            0,
            0,
            libc::SECCOMP_RET_ERRNO | libc::EPERM as u32,
        ),
        instruction(
            (libc::BPF_RET | libc::BPF_K) as u16,
            0,
            0,
            libc::SECCOMP_RET_ALLOW,
        ),
    ]
}

fn install(
    rules: BTreeMap<i64, Vec<SeccompRule>>,
    action: SeccompAction,
    arch: TargetArch,
) -> io::Result<()> {
    let filter =
        SeccompFilter::new(rules, SeccompAction::Allow, action, arch).map_err(io::Error::other)?;
    let program: BpfProgram = filter.try_into().map_err(io::Error::other)?;
    seccompiler::apply_filter(&program).map_err(io::Error::other)
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    /// In a child process (a filter cannot be removed): an x32 `getpid`
    /// answers `EPERM` under the guard. Without it this kernel answers
    /// `ENOSYS` (no x32 ABI) or the pid, so the test tells them apart.
    #[test]
    fn x32_system_calls_are_refused() {
        let program = super::x32_guard();
        // SAFETY: the child makes only system calls, then `_exit`s.
        let child = unsafe { libc::fork() };
        assert!(child >= 0);
        if child == 0 {
            unsafe {
                libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
                let code = if seccompiler::apply_filter(&program).is_err() {
                    2
                } else if libc::syscall(0x4000_0000 | libc::SYS_getpid) == -1
                    && *libc::__errno_location() == libc::EPERM
                    && libc::syscall(libc::SYS_getpid) > 0
                {
                    0
                } else {
                    1
                };
                libc::_exit(code);
            }
        }
        let mut status = 0;
        // SAFETY: waits for our own child.
        unsafe { libc::waitpid(child, &mut status, 0) };
        assert!(libc::WIFEXITED(status), "status {status}");
        assert_eq!(
            libc::WEXITSTATUS(status),
            0,
            "1: not refused with EPERM; 2: not installed"
        );
    }
}
