//! capsa's default seccomp profile, written from Docker's documented rule
//! set: an allow list of the system calls ordinary programs use, everything
//! else failing with EPERM, and the privileged calls allowed only when the
//! container holds the capability that guards them (Docker's "significant
//! syscalls blocked by the default profile").

use serde_json::{Value, json};

/// Calls every container may make, grouped by what they are for.
#[rustfmt::skip]
const ALLOWED: &[&str] = &[
    // files and directories
    "access", "chdir", "chmod", "chown", "chown32", "close", "close_range", "copy_file_range",
    "creat", "dup", "dup2", "dup3", "faccessat", "faccessat2", "fadvise64", "fadvise64_64",
    "fallocate", "fchdir", "fchmod", "fchmodat", "fchmodat2", "fchown", "fchown32", "fchownat",
    "fcntl", "fcntl64", "fdatasync", "fgetxattr", "flistxattr", "flock", "fremovexattr",
    "fsetxattr", "fstat", "fstat64", "fstatat64", "fstatfs", "fstatfs64", "fsync", "ftruncate",
    "ftruncate64", "futimesat", "getcwd", "getdents", "getdents64", "getxattr", "getxattrat", "name_to_handle_at",
    "lchown", "lchown32", "lgetxattr", "link", "linkat", "listxattr", "listxattrat", "llistxattr",
    "_llseek", "lremovexattr", "lseek", "lsetxattr", "lstat", "lstat64", "mkdir", "mkdirat",
    "mknod", "mknodat", "newfstatat", "open", "openat", "openat2", "pread64", "preadv", "preadv2",
    "pwrite64", "pwritev", "pwritev2", "read", "readahead", "readlink", "readlinkat", "readv",
    "removexattr", "removexattrat", "rename", "renameat", "renameat2", "rmdir", "sendfile",
    "sendfile64", "setxattr", "setxattrat", "splice", "stat", "stat64", "statfs", "statfs64",
    "statx", "symlink", "symlinkat", "sync", "sync_file_range", "syncfs", "tee", "truncate",
    "truncate64", "umask", "unlink", "unlinkat", "utime", "utimensat", "utimensat_time64", "utimes",
    "vmsplice", "write", "writev", "file_getattr", "file_setattr", "pipe", "pipe2", "cachestat",
    // events, polling and asynchronous I/O
    "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_pwait", "epoll_pwait2",
    "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2", "fanotify_mark", "inotify_add_watch",
    "inotify_init", "inotify_init1", "inotify_rm_watch", "io_cancel", "io_destroy", "io_getevents",
    "io_pgetevents", "io_pgetevents_time64", "io_setup", "io_submit", "io_uring_enter",
    "io_uring_register", "io_uring_setup", "ioctl", "_newselect", "poll", "ppoll", "ppoll_time64",
    "pselect6", "pselect6_time64", "select", "signalfd", "signalfd4", "timerfd_create",
    "timerfd_gettime", "timerfd_gettime64", "timerfd_settime", "timerfd_settime64",
    // memory
    "brk", "madvise", "membarrier", "memfd_create", "memfd_secret", "mincore", "mlock", "mlock2",
    "mlockall", "mmap", "mmap2", "mprotect", "mremap", "msync", "munlock", "munlockall", "munmap",
    "pkey_alloc", "pkey_free", "pkey_mprotect", "remap_file_pages", "mseal", "map_shadow_stack",
    // processes, threads and identity
    "arch_prctl", "capget", "capset", "execve", "execveat", "exit", "exit_group", "fork", "futex",
    "futex_requeue", "futex_time64", "futex_wait", "futex_waitv", "futex_wake", "get_robust_list",
    "get_thread_area", "getcpu", "getegid", "getegid32", "geteuid", "geteuid32", "getgid",
    "getgid32", "getgroups", "getgroups32", "getitimer", "getpgid", "getpgrp", "getpid", "getppid",
    "getpriority", "getrandom", "getresgid", "getresgid32", "getresuid", "getresuid32", "getrlimit",
    "getrusage", "getsid", "gettid", "getuid", "getuid32", "ioprio_get", "ioprio_set", "kill",
    "landlock_add_rule", "landlock_create_ruleset", "landlock_restrict_self", "pause", "pidfd_open",
    "pidfd_send_signal", "prctl", "prlimit64", "process_mrelease", "restart_syscall", "rseq",
    "rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn",
    "rt_sigsuspend", "rt_sigtimedwait", "rt_sigtimedwait_time64", "rt_tgsigqueueinfo",
    "sched_get_priority_max", "sched_get_priority_min", "sched_getaffinity", "sched_getattr",
    "sched_getparam", "sched_getscheduler", "sched_rr_get_interval", "sched_rr_get_interval_time64",
    "sched_setaffinity", "sched_setattr", "sched_setparam", "sched_setscheduler", "sched_yield",
    "seccomp", "set_robust_list", "set_thread_area", "set_tid_address", "setfsgid", "setfsgid32",
    "setfsuid", "setfsuid32", "setgid", "setgid32", "setgroups", "setgroups32", "setitimer",
    "setpgid", "setpriority", "setregid", "setregid32", "setresgid", "setresgid32", "setresuid",
    "setresuid32", "setreuid", "setreuid32", "setrlimit", "setsid", "setuid", "setuid32",
    "sigaltstack", "sigprocmask", "sigreturn", "tgkill", "tkill", "ugetrlimit", "uname", "vfork",
    "wait4", "waitid", "waitpid", "sysinfo", "ptrace", "process_vm_readv", "process_vm_writev",
    // time
    "adjtimex", "alarm", "clock_adjtime", "clock_adjtime64", "clock_getres", "clock_getres_time64",
    "clock_gettime", "clock_gettime64", "clock_nanosleep", "clock_nanosleep_time64", "gettimeofday",
    "nanosleep", "time", "timer_create", "timer_delete", "timer_getoverrun", "timer_gettime",
    "timer_gettime64", "timer_settime", "timer_settime64", "times",
    // sockets
    "accept", "accept4", "bind", "connect", "getpeername", "getsockname", "getsockopt", "listen",
    "recv", "recvfrom", "recvmmsg", "recvmmsg_time64", "recvmsg", "send", "sendmmsg", "sendmsg",
    "sendto", "setsockopt", "shutdown", "socketcall", "socketpair",
    // System V and POSIX IPC
    "ipc", "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive", "mq_timedreceive_time64",
    "mq_timedsend", "mq_timedsend_time64", "mq_unlink", "msgctl", "msgget", "msgrcv", "msgsnd",
    "semctl", "semget", "semop", "semtimedop", "semtimedop_time64", "shmat", "shmctl", "shmdt",
    "shmget",
    // architecture specific
    "modify_ldt", "arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint",
    "cacheflush", "set_tls", "riscv_flush_icache", "s390_pci_mmio_read", "s390_pci_mmio_write",
    "s390_runtime_instr",
];

/// Calls allowed only with the capability that guards them.
#[rustfmt::skip]
const BY_CAPABILITY: &[(&str, &[&str])] = &[
    ("CAP_DAC_READ_SEARCH", &["open_by_handle_at"]),
    (
        "CAP_SYS_ADMIN",
        &[
            "bpf",
            "clone",
            "clone3",
            "fanotify_init",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "lookup_dcookie",
            "mount",
            "mount_setattr",
            "move_mount",
            "open_tree",
            "perf_event_open",
            "quotactl",
            "quotactl_fd",
            "setdomainname",
            "sethostname",
            "setns",
            "syslog",
            "umount",
            "umount2",
            "unshare",
            "listmount",
            "statmount",
            "open_tree_attr",
        ],
    ),
    ("CAP_SYS_BOOT", &["reboot"]),
    ("CAP_SYS_CHROOT", &["chroot"]),
    (
        "CAP_SYS_MODULE",
        &["delete_module", "init_module", "finit_module"],
    ),
    ("CAP_SYS_PACCT", &["acct"]),
    (
        "CAP_SYS_PTRACE",
        &[
            "kcmp",
            "pidfd_getfd",
            "process_madvise",
            "process_vm_readv",
            "process_vm_writev",
            "ptrace",
        ],
    ),
    ("CAP_SYS_RAWIO", &["iopl", "ioperm"]),
    (
        "CAP_SYS_TIME",
        &["settimeofday", "stime", "clock_settime", "clock_settime64"],
    ),
    ("CAP_SYS_TTY_CONFIG", &["vhangup"]),
    (
        "CAP_SYS_NICE",
        &[
            "get_mempolicy",
            "mbind",
            "set_mempolicy",
            "set_mempolicy_home_node",
            "move_pages",
        ],
    ),
    ("CAP_SYSLOG", &["syslog"]),
    ("CAP_BPF", &["bpf"]),
    ("CAP_PERFMON", &["perf_event_open"]),
];

/// `clone` flags that create namespaces (CLONE_NEWNS | NEWUTS | NEWIPC |
/// NEWUSER | NEWPID | NEWNET | NEWCGROUP): without CAP_SYS_ADMIN, clone is
/// allowed only when none is set.
const CLONE_NAMESPACE_FLAGS: u64 = 0x7E02_0000;

/// The default profile for a container holding capabilities `caps`
/// (`CAP_*` names), as the JSON of `linux.seccomp`.
pub fn default_profile(caps: &[String]) -> Value {
    let has = |c: &str| caps.iter().any(|x| x == c);
    let mut allowed: Vec<&str> = ALLOWED.to_vec();
    for (cap, names) in BY_CAPABILITY {
        if has(cap) {
            allowed.extend_from_slice(names);
        }
    }
    allowed.sort_unstable();
    allowed.dedup();
    let mut syscalls = vec![json!({"names": allowed, "action": "SCMP_ACT_ALLOW"})];
    // personality: only the common, harmless personas.
    for persona in [0u64, 8, 0x20000, 0x20008, 0xffff_ffff] {
        syscalls.push(json!({
            "names": ["personality"], "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": persona, "op": "SCMP_CMP_EQ"}]
        }));
    }
    // socket: every family but AF_VSOCK (40).
    syscalls.push(json!({
        "names": ["socket"], "action": "SCMP_ACT_ALLOW",
        "args": [{"index": 0, "value": 40, "op": "SCMP_CMP_NE"}]
    }));
    if !has("CAP_SYS_ADMIN") {
        // Threads and processes, but no new namespaces; clone3 cannot be
        // inspected, so it fails with ENOSYS and libc falls back to clone.
        let clone_flags_arg = if cfg!(target_arch = "s390x") { 1 } else { 0 };
        syscalls.push(json!({
            "names": ["clone"], "action": "SCMP_ACT_ALLOW",
            "args": [{"index": clone_flags_arg, "value": CLONE_NAMESPACE_FLAGS, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]
        }));
        syscalls.push(
            json!({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::ENOSYS}),
        );
    }
    let arches: &[&str] = if cfg!(target_arch = "x86_64") {
        &["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    } else if cfg!(target_arch = "aarch64") {
        &["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    } else if cfg!(target_arch = "s390x") {
        &["SCMP_ARCH_S390X", "SCMP_ARCH_S390"]
    } else {
        &[]
    };
    json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": libc::EPERM,
        "architectures": arches,
        "syscalls": syscalls,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seccomp::bpf::interpret;

    fn compile(caps: &[&str]) -> crate::seccomp::Filter {
        let caps: Vec<String> = caps.iter().map(|c| c.to_string()).collect();
        let cfg = serde_json::from_value(default_profile(&caps)).unwrap();
        crate::seccomp::compile(&cfg).unwrap()
    }

    #[test]
    fn ordinary_calls_pass_and_privileged_ones_need_their_capability() {
        if !cfg!(target_arch = "x86_64") {
            return;
        }
        let x86_64 = 0xc000_003e;
        let allow = 0x7fff_0000;
        let eperm = 0x0005_0001;
        let plain = compile(&["CAP_CHOWN", "CAP_KILL"]);
        let admin = compile(&["CAP_SYS_ADMIN"]);
        let run = |f: &crate::seccomp::Filter, nr: u32, a0: u64| {
            interpret(&f.program, x86_64, nr, [a0, 0, 0, 0, 0, 0], false)
        };
        assert_eq!(run(&plain, 0, 0), allow); // read
        assert_eq!(run(&plain, 59, 0), allow); // execve
        assert_eq!(run(&plain, 165, 0), eperm); // mount
        assert_eq!(run(&admin, 165, 0), allow);
        assert_eq!(run(&plain, 56, 0x11), allow); // clone for a thread/fork
        assert_eq!(run(&plain, 56, 0x2000_0000), eperm); // clone(CLONE_NEWPID)
        assert_eq!(run(&admin, 56, 0x2000_0000), allow);
        assert_eq!(run(&plain, 435, 0), 0x0005_0000 | libc::ENOSYS as u32); // clone3
        assert_eq!(run(&plain, 41, 2), allow); // socket(AF_INET)
        assert_eq!(run(&plain, 41, 40), eperm); // socket(AF_VSOCK)
        assert_eq!(run(&plain, 135, 8), allow); // personality(PER_LINUX32)
        assert_eq!(run(&plain, 135, 0x0040_0000), eperm);
        assert_eq!(run(&plain, 101, 0), allow); // ptrace (safe since Linux 4.8)
        assert_eq!(run(&plain, 169, 0), eperm); // reboot
        assert_eq!(run(&plain, 246, 0), eperm); // kexec_load: never
        assert_eq!(run(&plain, 22, 0), allow); // pipe
        assert_eq!(run(&plain, 293, 0), allow); // pipe2
        assert!(
            plain.program.len() < 1000,
            "{} instructions",
            plain.program.len()
        );
    }
}
