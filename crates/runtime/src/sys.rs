//! Thin wrappers around the system calls that `nix` does not offer.
//!
//! Every `unsafe` block of the crate that is not a plain `nix` call lives here,
//! one small function per system call.

use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::path::Path;

use nix::errno::Errno;
use nix::unistd::Pid;

/// What [`clone3`] returns: which side of the fork we are on.
pub enum CloneResult {
    /// We are the parent; this is the child's pid.
    Parent(Pid),
    /// We are the new child process.
    Child,
}

/// `struct clone_args` of clone3(2), as the kernel defines it (version 2, 88 bytes).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// Kernel flag of clone3(2): place the child in the cgroup given by `cgroup`.
pub const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// Forks the calling process with `flags` (namespace flags, CLONE_PARENT, CLONE_INTO_CGROUP)
/// by clone3(2), fork-style: the child runs on a copy of the caller's stack.
///
/// The caller must be single-threaded, as for fork(2).
pub fn clone3(flags: u64, cgroup_fd: Option<RawFd>) -> Result<CloneResult, Errno> {
    // With CLONE_PARENT the child inherits the caller's exit signal, and
    // clone3 requires 0 here.
    let exit_signal = if flags & libc::CLONE_PARENT as u64 != 0 {
        0
    } else {
        libc::SIGCHLD as u64
    };
    let mut args = CloneArgs {
        flags,
        exit_signal,
        ..Default::default()
    };
    if let Some(fd) = cgroup_fd {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd as u64;
    }
    // SAFETY: `args` is a valid, fully initialised clone_args of the size we pass.
    // Without CLONE_VM and with a null stack the child gets a private copy of our
    // memory and continues on it, exactly as after fork(2); the caller guarantees
    // that no other thread holds a lock the child could need.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match ret {
        -1 => Err(Errno::last()),
        0 => Ok(CloneResult::Child),
        pid => Ok(CloneResult::Parent(Pid::from_raw(pid as i32))),
    }
}

/// Sets the NIS domain name of the calling process's UTS namespace.
pub fn setdomainname(name: &str) -> Result<(), Errno> {
    // SAFETY: the pointer and length describe `name`'s bytes, which outlive the call.
    let ret = unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) };
    Errno::result(ret).map(drop)
}

/// Marks every descriptor from `first` up as close-on-exec (close_range(2)
/// with CLOSE_RANGE_CLOEXEC), so that exec leaves only the ones below.
pub fn cloexec_from(first: u32) -> Result<(), Errno> {
    // SAFETY: close_range only changes flags of our own descriptors; no memory is passed.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    Errno::result(ret).map(drop)
}

/// Opens a pidfd for `pid` (pidfd_open(2)).
pub fn pidfd_open(pid: Pid) -> Result<OwnedFd, Errno> {
    // SAFETY: pidfd_open takes plain integers and returns a new descriptor or -1.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    let fd = Errno::result(ret)? as RawFd;
    // SAFETY: the kernel just gave us this descriptor; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Sends `sig` to the process behind `pidfd` (pidfd_send_signal(2)).
pub fn pidfd_send_signal(pidfd: BorrowedFd<'_>, sig: i32) -> Result<(), Errno> {
    // SAFETY: a null siginfo is allowed and means "as kill(2) would"; the fd is borrowed.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    Errno::result(ret).map(drop)
}

/// Joins a new anonymous session keyring named `name` (keyctl JOIN_SESSION_KEYRING),
/// so that the container does not share the caller's keyring.
pub fn join_session_keyring(name: &CStr) -> Result<(), Errno> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    // SAFETY: `name` is a valid NUL-terminated string that outlives the call.
    let ret =
        unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr()) };
    Errno::result(ret).map(drop)
}

nix::ioctl_none!(ns_get_nstype, 0xb7, 0x3);

/// The CLONE_NEW* type of the namespace behind `fd` (ioctl NS_GET_NSTYPE).
pub fn ns_type(fd: BorrowedFd<'_>) -> Result<i32, Errno> {
    // SAFETY: NS_GET_NSTYPE takes no argument and only inspects the descriptor.
    unsafe { ns_get_nstype(fd.as_raw_fd()) }
}

/// `struct __user_cap_header_struct` of capset(2).
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

/// One half of `struct __user_cap_data_struct` (version 3 uses two of them).
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Sets the calling thread's effective, permitted and inheritable capability
/// sets in one capset(2) call (bit N = capability N).
pub fn capset(effective: u64, permitted: u64, inheritable: u64) -> Result<(), Errno> {
    const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
    let mut header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [
        CapData {
            effective: effective as u32,
            permitted: permitted as u32,
            inheritable: inheritable as u32,
        },
        CapData {
            effective: (effective >> 32) as u32,
            permitted: (permitted >> 32) as u32,
            inheritable: (inheritable >> 32) as u32,
        },
    ];
    // SAFETY: header and data have the layout capset(2) expects for version 3
    // (a header and two data structs) and live across the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_capset,
            &mut header as *mut CapHeader,
            data.as_ptr(),
        )
    };
    Errno::result(ret).map(drop)
}

/// A null-terminated array of C strings (an argv or envp), made ahead of
/// exec so that the exec itself allocates nothing: after the container's
/// seccomp filter is installed, even a `brk` may be refused.
#[derive(Debug)]
pub struct CStrArray {
    /// Owns what `ptrs` points into (each CString's bytes are on the heap
    /// and do not move when this struct does).
    strings: Vec<CString>,
    ptrs: Vec<*const libc::c_char>,
}

impl CStrArray {
    /// The array of `strings`, terminated by a null pointer.
    pub fn new(strings: Vec<CString>) -> CStrArray {
        let mut ptrs: Vec<*const libc::c_char> = strings.iter().map(|s| s.as_ptr()).collect();
        ptrs.push(std::ptr::null());
        CStrArray { strings, ptrs }
    }

    /// The strings, without the terminating null.
    pub fn strings(&self) -> &[CString] {
        &self.strings
    }
}

/// execve(2) of `path`; returns only on failure, without allocating.
pub fn execve(path: &CStr, argv: &CStrArray, envp: &CStrArray) -> Errno {
    // SAFETY: `path` is NUL-terminated; both arrays are null-terminated arrays
    // of pointers to NUL-terminated strings they own, alive across the call.
    unsafe { libc::execve(path.as_ptr(), argv.ptrs.as_ptr(), envp.ptrs.as_ptr()) };
    Errno::last()
}

/// execveat(2) of the file open as `fd` (AT_EMPTY_PATH); returns only on
/// failure, without allocating.
pub fn execveat_fd(fd: BorrowedFd<'_>, argv: &CStrArray, envp: &CStrArray) -> Errno {
    // SAFETY: as for execve; the empty path is a static NUL-terminated string
    // and the descriptor is borrowed for the call.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            fd.as_raw_fd(),
            c"".as_ptr(),
            argv.ptrs.as_ptr(),
            envp.ptrs.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    Errno::last()
}

/// Clears FD_CLOEXEC on descriptor `fd` so that it survives exec.
pub fn clear_cloexec(fd: RawFd) -> Result<(), Errno> {
    // SAFETY: F_SETFD only changes a flag of the descriptor; an fd that is not
    // open yields EBADF.
    let ret = unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
    Errno::result(ret).map(drop)
}

/// Sets FD_CLOEXEC on descriptor `fd` (given by number, e.g. from argv).
pub fn set_cloexec(fd: RawFd) -> Result<(), Errno> {
    // SAFETY: F_SETFD only changes a flag of the descriptor; an fd that is not
    // open yields EBADF.
    let ret = unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    Errno::result(ret).map(drop)
}

/// Writes `buf` to descriptor `fd` given by number (one write(2)).
pub fn write_raw(fd: RawFd, buf: &[u8]) -> Result<usize, Errno> {
    // SAFETY: `buf` is valid for `buf.len()` bytes during the call; a bad
    // descriptor yields EBADF.
    let ret = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
    Errno::result(ret).map(|n| n as usize)
}

/// Opens /dev/null on each of descriptors 0, 1 and 2 that is not open, so
/// that no file opened later becomes a standard stream by accident (what
/// Rust's usual start-up does for a program).
pub fn open_missing_stdio() {
    for fd in 0..3 {
        // SAFETY: F_GETFD only reads a flag of the descriptor; a descriptor
        // that is not open yields EBADF.
        let closed =
            unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 && Errno::last() == Errno::EBADF;
        if closed
            && let Ok(null) = nix::fcntl::open(
                "/dev/null",
                nix::fcntl::OFlag::O_RDWR,
                nix::sys::stat::Mode::empty(),
            )
        {
            // The lowest free descriptor is `fd` itself: it stays open.
            let _ = null.into_raw_fd();
        }
    }
}

/// Ignores `sig` (SIG_IGN).
pub fn ignore_signal(sig: nix::sys::signal::Signal) {
    // SAFETY: ignoring a signal involves no handler code; the previous
    // disposition is discarded.
    let _ = unsafe { nix::sys::signal::signal(sig, nix::sys::signal::SigHandler::SigIgn) };
}

/// Makes every catchable signal whose default action ends a process end
/// this one (`_exit(128 + signal)`), even as the pid 1 of a pid namespace,
/// which the kernel shields from the signals it has no handler for. A
/// created container's init waits so, as runc's does: `kill` ends it. The
/// handlers go at exec (the program starts with default dispositions).
/// SIGPIPE keeps its disposition.
pub fn exit_on_terminating_signals() {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal};
    extern "C" fn end(sig: libc::c_int) {
        // SAFETY: _exit is async-signal-safe and never returns.
        unsafe { libc::_exit(128 + sig) }
    }
    let action = SigAction::new(SigHandler::Handler(end), SaFlags::empty(), SigSet::all());
    let keeps = |s: Signal| {
        matches!(
            s,
            Signal::SIGKILL
                | Signal::SIGSTOP
                | Signal::SIGCHLD
                | Signal::SIGCONT
                | Signal::SIGTSTP
                | Signal::SIGTTIN
                | Signal::SIGTTOU
                | Signal::SIGURG
                | Signal::SIGWINCH
                | Signal::SIGPIPE
        )
    };
    for sig in Signal::iterator().filter(|s| !keeps(*s)) {
        // SAFETY: the handler only calls _exit (async-signal-safe).
        let _ = unsafe { nix::sys::signal::sigaction(sig, &action) };
    }
    for n in libc::SIGRTMIN()..=libc::SIGRTMAX() {
        let mut sa: libc::sigaction = zeroed_sigaction();
        sa.sa_sigaction = end as *const () as libc::sighandler_t;
        // SAFETY: `sa` is a valid sigaction whose handler only calls _exit;
        // nix has no type for the real-time signals.
        unsafe { libc::sigaction(n, &sa, std::ptr::null_mut()) };
    }
}

/// An all-zero `struct sigaction` (no flags, empty mask, SIG_DFL).
fn zeroed_sigaction() -> libc::sigaction {
    // SAFETY: sigaction is plain data, valid when zeroed.
    unsafe { std::mem::zeroed() }
}

/// Restores the default disposition of `sig`.
pub fn default_signal(sig: nix::sys::signal::Signal) {
    // SAFETY: installing SIG_DFL involves no handler code; the previous
    // disposition is discarded.
    let _ = unsafe { nix::sys::signal::signal(sig, nix::sys::signal::SigHandler::SigDfl) };
}

/// Takes ownership of a descriptor the kernel just gave us (from recvmsg
/// SCM_RIGHTS), so that it is closed when dropped.
pub fn own_received_fd(fd: RawFd) -> OwnedFd {
    // SAFETY: the kernel installed `fd` in our table for this call only;
    // nothing else refers to it.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

nix::ioctl_write_ptr_bad!(tiocswinsz, libc::TIOCSWINSZ, nix::pty::Winsize);
nix::ioctl_read_bad!(tiocgwinsz, libc::TIOCGWINSZ, nix::pty::Winsize);

/// Sets a terminal's window size (TIOCSWINSZ).
pub fn set_winsize(fd: BorrowedFd<'_>, ws: &nix::pty::Winsize) -> Result<(), Errno> {
    // SAFETY: TIOCSWINSZ reads one Winsize from the pointer, which is valid.
    unsafe { tiocswinsz(fd.as_raw_fd(), ws) }.map(drop)
}

/// Reads a terminal's window size (TIOCGWINSZ).
pub fn get_winsize(fd: BorrowedFd<'_>) -> Result<nix::pty::Winsize, Errno> {
    let mut ws = nix::pty::Winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one Winsize to the pointer, which is valid.
    unsafe { tiocgwinsz(fd.as_raw_fd(), &mut ws) }?;
    Ok(ws)
}

/// Makes the terminal `fd` the calling process's controlling terminal (TIOCSCTTY).
pub fn set_controlling_tty(fd: BorrowedFd<'_>) -> Result<(), Errno> {
    // SAFETY: TIOCSCTTY takes an integer argument (0: do not steal).
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSCTTY, 0) };
    Errno::result(ret).map(drop)
}

/// `struct sched_attr` of sched_setattr(2) (SCHED_ATTR_SIZE_VER1, 56 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct SchedAttr {
    /// The size of this struct.
    pub size: u32,
    /// SCHED_OTHER (0), SCHED_FIFO (1), ...
    pub sched_policy: u32,
    /// SCHED_FLAG_* bits.
    pub sched_flags: u64,
    /// Nice value (SCHED_OTHER, SCHED_BATCH).
    pub sched_nice: i32,
    /// Static priority (SCHED_FIFO, SCHED_RR).
    pub sched_priority: u32,
    /// SCHED_DEADLINE runtime, nanoseconds.
    pub sched_runtime: u64,
    /// SCHED_DEADLINE deadline, nanoseconds.
    pub sched_deadline: u64,
    /// SCHED_DEADLINE period, nanoseconds.
    pub sched_period: u64,
    /// Utilization clamp minimum.
    pub sched_util_min: u32,
    /// Utilization clamp maximum.
    pub sched_util_max: u32,
}

/// Sets the calling thread's scheduling policy and attributes (sched_setattr(2)).
pub fn sched_setattr(attr: &SchedAttr) -> Result<(), Errno> {
    let mut attr = *attr;
    attr.size = std::mem::size_of::<SchedAttr>() as u32;
    // SAFETY: `attr` is a valid sched_attr whose `size` field says how many
    // bytes the kernel may read; it lives across the call.
    let ret = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) };
    Errno::result(ret).map(drop)
}

/// Sets the calling process's I/O priority (ioprio_set(2), IOPRIO_WHO_PROCESS).
pub fn ioprio_set(prio: i32) -> Result<(), Errno> {
    const IOPRIO_WHO_PROCESS: libc::c_int = 1;
    // SAFETY: ioprio_set takes plain integers.
    let ret = unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, prio) };
    Errno::result(ret).map(drop)
}

/// Sends signal number `sig` (including real-time signals) to `pid`.
pub fn kill(pid: Pid, sig: i32) -> Result<(), Errno> {
    // SAFETY: kill(2) takes plain integers.
    let ret = unsafe { libc::kill(pid.as_raw(), sig) };
    Errno::result(ret).map(drop)
}

/// The id of the mount `path` is on (statx STATX_MNT_ID, Linux 5.8): the
/// top-most mount when several are stacked at `path`.
pub fn mount_id(path: &Path) -> Result<u64, Errno> {
    let c =
        std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| Errno::EINVAL)?;
    // SAFETY: statx is plain data, valid when zeroed.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a NUL-terminated path and `stx` a writable statx.
    let ret = unsafe {
        libc::statx(
            libc::AT_FDCWD,
            c.as_ptr(),
            libc::AT_NO_AUTOMOUNT,
            libc::STATX_MNT_ID,
            &mut stx,
        )
    };
    Errno::result(ret)?;
    if stx.stx_mask & libc::STATX_MNT_ID == 0 {
        return Err(Errno::ENOSYS);
    }
    Ok(stx.stx_mnt_id)
}

/// Ends the calling process at once (_exit(2)): no destructors, no atexit
/// handlers, no flushing of buffers shared with the parent's copy.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and touches no memory of ours.
    unsafe { libc::_exit(code) }
}

/// `struct sock_fprog`: a BPF program for seccomp(2).
#[repr(C)]
struct SockFprog {
    len: u16,
    filter: *const crate::seccomp::bpf::SockFilter,
}

/// Installs a seccomp filter (seccomp(SECCOMP_SET_MODE_FILTER)); with
/// SECCOMP_FILTER_FLAG_NEW_LISTENER the kernel returns the notify descriptor.
pub fn seccomp_set_filter(
    flags: u32,
    program: &[crate::seccomp::bpf::SockFilter],
) -> Result<Option<OwnedFd>, Errno> {
    const SECCOMP_SET_MODE_FILTER: libc::c_uint = 1;
    const SECCOMP_FILTER_FLAG_NEW_LISTENER: u32 = 8;
    let len = u16::try_from(program.len()).map_err(|_| Errno::E2BIG)?;
    let prog = SockFprog {
        len,
        filter: program.as_ptr(),
    };
    // SAFETY: `prog` points at `len` valid sock_filter structs that outlive
    // the call; the kernel copies the program.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            flags,
            &prog as *const SockFprog,
        )
    };
    let ret = Errno::result(ret)?;
    if flags & SECCOMP_FILTER_FLAG_NEW_LISTENER != 0 {
        // SAFETY: with NEW_LISTENER the return value is a new descriptor we own.
        Ok(Some(unsafe { OwnedFd::from_raw_fd(ret as RawFd) }))
    } else {
        Ok(None)
    }
}

/// Whether this kernel knows SECCOMP_FILTER_FLAG_* `flag`: seccomp(2) is
/// asked to install a NULL program with it, which fails with EFAULT when
/// the flags are valid and EINVAL when not (as libseccomp probes).
pub fn seccomp_flag_known(flag: u32) -> bool {
    const SECCOMP_SET_MODE_FILTER: libc::c_uint = 1;
    // SAFETY: the kernel checks the flags, then fails to read the NULL
    // program; nothing is installed and no memory of ours is touched.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            flag,
            std::ptr::null::<SockFprog>(),
        )
    };
    Errno::result(ret).err() == Some(Errno::EFAULT)
}

/// Whether this kernel has seccomp return action `action`
/// (SECCOMP_GET_ACTION_AVAIL).
pub fn seccomp_action_available(action: u32) -> bool {
    const SECCOMP_GET_ACTION_AVAIL: libc::c_uint = 2;
    // SAFETY: the kernel reads one u32 from `action`, which lives across the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_GET_ACTION_AVAIL,
            0,
            &action as *const u32,
        )
    };
    ret == 0
}

pub use capsa_sys::mount_api::{
    MountAttr, fsconfig_create, fsconfig_string, fsmount, fsopen, mount_setattr, move_mount,
    open_tree_clone,
};

// ---- bpf(2), for the cgroup v2 device filter ----

/// bpf(2) command: load a program.
const BPF_PROG_LOAD: libc::c_long = 5;
/// bpf(2) command: attach a program to a cgroup.
const BPF_PROG_ATTACH: libc::c_long = 8;
/// bpf(2) command: detach a program from a cgroup.
const BPF_PROG_DETACH: libc::c_long = 9;
/// bpf(2) command: open a loaded program by id.
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
/// bpf(2) command: list the programs attached to a cgroup.
const BPF_PROG_QUERY: libc::c_long = 16;

/// The part of `union bpf_attr` that BPF_PROG_LOAD reads (up to
/// `expected_attach_type`; the kernel treats the rest as zero).
#[repr(C)]
#[derive(Default)]
struct BpfProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// The part of `union bpf_attr` that BPF_PROG_ATTACH and BPF_PROG_DETACH read.
#[repr(C)]
#[derive(Default)]
struct BpfProgAttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

/// The part of `union bpf_attr` that BPF_PROG_QUERY reads and fills.
#[repr(C)]
#[derive(Default)]
struct BpfProgQueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    _pad: u32,
}

/// The part of `union bpf_attr` that BPF_PROG_GET_FD_BY_ID reads.
#[repr(C)]
#[derive(Default)]
struct BpfGetIdAttr {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
}

/// Calls bpf(2) with command `cmd` and the attribute struct `attr`.
fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> Result<libc::c_long, Errno> {
    // SAFETY: `attr` is one of the repr(C) prefixes of `union bpf_attr`
    // above, fully initialised, and we pass its exact size; the kernel reads
    // (and for queries writes) only within it. Pointers inside it are set by
    // the callers to buffers that outlive this call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    Errno::result(ret)
}

/// Loads a BPF program of type `prog_type` (BPF_PROG_LOAD). `insns` holds
/// the instructions, 8 bytes each; `log`, when given, receives the verifier's
/// messages.
pub fn bpf_prog_load(
    prog_type: u32,
    insns: &[u8],
    license: &CStr,
    name: &str,
    log: Option<&mut [u8]>,
) -> Result<OwnedFd, Errno> {
    let mut attr = BpfProgLoadAttr {
        prog_type,
        insn_cnt: (insns.len() / 8) as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        ..Default::default()
    };
    let n = name.len().min(attr.prog_name.len() - 1);
    attr.prog_name[..n].copy_from_slice(&name.as_bytes()[..n]);
    if let Some(buf) = log {
        attr.log_level = 1;
        attr.log_size = buf.len() as u32;
        attr.log_buf = buf.as_mut_ptr() as u64;
    }
    let fd = bpf(BPF_PROG_LOAD, &mut attr)?;
    // SAFETY: the kernel just gave us this descriptor; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Attaches program `prog` to the cgroup directory `cgroup` (BPF_PROG_ATTACH).
pub fn bpf_prog_attach(
    cgroup: BorrowedFd<'_>,
    prog: BorrowedFd<'_>,
    attach_type: u32,
    flags: u32,
) -> Result<(), Errno> {
    let mut attr = BpfProgAttachAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type,
        attach_flags: flags,
        replace_bpf_fd: 0,
    };
    bpf(BPF_PROG_ATTACH, &mut attr).map(drop)
}

/// Detaches program `prog` from the cgroup directory `cgroup` (BPF_PROG_DETACH).
pub fn bpf_prog_detach(
    cgroup: BorrowedFd<'_>,
    prog: BorrowedFd<'_>,
    attach_type: u32,
) -> Result<(), Errno> {
    let mut attr = BpfProgAttachAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type,
        ..Default::default()
    };
    bpf(BPF_PROG_DETACH, &mut attr).map(drop)
}

/// The ids of the programs of `attach_type` attached to the cgroup directory
/// `cgroup` itself (BPF_PROG_QUERY), at most `ids.len()`; returns how many.
pub fn bpf_prog_query(
    cgroup: BorrowedFd<'_>,
    attach_type: u32,
    ids: &mut [u32],
) -> Result<usize, Errno> {
    let mut attr = BpfProgQueryAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_type,
        prog_ids: ids.as_mut_ptr() as u64,
        prog_cnt: ids.len() as u32,
        ..Default::default()
    };
    bpf(BPF_PROG_QUERY, &mut attr)?;
    Ok((attr.prog_cnt as usize).min(ids.len()))
}

/// Opens the loaded BPF program with id `id` (BPF_PROG_GET_FD_BY_ID).
pub fn bpf_prog_get_fd_by_id(id: u32) -> Result<OwnedFd, Errno> {
    let mut attr = BpfGetIdAttr {
        prog_id: id,
        ..Default::default()
    };
    let fd = bpf(BPF_PROG_GET_FD_BY_ID, &mut attr)?;
    // SAFETY: the kernel just gave us this descriptor; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}
