//! The system calls of the monitor and the init, made directly with the
//! `syscall` instruction: the program links no C library, so that it stays a
//! few dozen kilobytes and costs far less than a megabyte of memory per
//! container. Every `unsafe` block of the crate's system calls is here: one
//! raw entry point per arity and a small typed wrapper per call.

use core::arch::asm;

#[cfg(not(target_arch = "x86_64"))]
compile_error!("capsa-monitor makes its system calls itself and supports x86_64 only");

/// A file descriptor.
pub type Fd = i32;

/// A failed system call's error number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Errno(pub i32);

/// The result of a system call.
pub type SysResult<T> = Result<T, Errno>;

/// Error numbers the monitor tells apart.
pub mod errno {
    use super::Errno;
    /// No such file or directory.
    pub const ENOENT: Errno = Errno(2);
    /// Interrupted system call.
    pub const EINTR: Errno = Errno(4);
    /// Input/output error (a pty whose other side is gone).
    pub const EIO: Errno = Errno(5);
    /// Exec format error.
    pub const ENOEXEC: Errno = Errno(8);
    /// No child processes.
    pub const ECHILD: Errno = Errno(10);
    /// Try again.
    pub const EAGAIN: Errno = Errno(11);
    /// Permission denied.
    pub const EACCES: Errno = Errno(13);
    /// Not a directory.
    pub const ENOTDIR: Errno = Errno(20);
}

mod nr {
    pub const READ: usize = 0;
    pub const WRITE: usize = 1;
    pub const CLOSE: usize = 3;
    pub const LSEEK: usize = 8;
    pub const RT_SIGACTION: usize = 13;
    pub const RT_SIGPROCMASK: usize = 14;
    pub const IOCTL: usize = 16;
    pub const GETPID: usize = 39;
    pub const SOCKET: usize = 41;
    pub const SENDMSG: usize = 46;
    pub const RECVMSG: usize = 47;
    pub const BIND: usize = 49;
    pub const LISTEN: usize = 50;
    pub const CLONE: usize = 56;
    pub const EXECVE: usize = 59;
    pub const WAIT4: usize = 61;
    pub const KILL: usize = 62;
    pub const FCNTL: usize = 72;
    pub const CHDIR: usize = 80;
    pub const RENAME: usize = 82;
    pub const UNLINK: usize = 87;
    pub const SETPGID: usize = 109;
    pub const PRCTL: usize = 157;
    pub const CLOCK_GETTIME: usize = 228;
    pub const EXIT_GROUP: usize = 231;
    pub const OPENAT: usize = 257;
    pub const PPOLL: usize = 271;
    pub const ACCEPT4: usize = 288;
    pub const SIGNALFD4: usize = 289;
}

/// Makes system call `n` with up to six arguments.
///
/// # Safety
/// The arguments must be what the kernel expects for call `n`: pointers
/// valid for the access the call makes, for the duration of the call.
#[inline(always)]
unsafe fn raw(n: usize, a: [usize; 6]) -> isize {
    let ret: isize;
    // SAFETY: the caller guarantees the arguments; `syscall` clobbers only
    // rcx and r11 besides the return register, and touches no stack.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") n as isize => ret,
            in("rdi") a[0], in("rsi") a[1], in("rdx") a[2],
            in("r10") a[3], in("r8") a[4], in("r9") a[5],
            lateout("rcx") _, lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

fn check(ret: isize) -> SysResult<usize> {
    if (-4095..0).contains(&ret) {
        Err(Errno(-ret as i32))
    } else {
        Ok(ret as usize)
    }
}

/// Makes a call whose arguments are plain integers or pointers the caller
/// derived from live Rust references; retried on EINTR.
macro_rules! call {
    ($n:expr $(, $a:expr)*) => {{
        let mut args = [0usize; 6];
        let given = [$($a as usize),*];
        args[..given.len()].copy_from_slice(&given);
        loop {
            // SAFETY: every wrapper passes pointers derived from references
            // that outlive the call, with the lengths of what they point to.
            let r = check(unsafe { raw($n, args) });
            if r != Err(errno::EINTR) {
                break r;
            }
        }
    }};
}

/// The special descriptor meaning "the working directory" for *at calls.
const AT_FDCWD: isize = -100;

/// Open flags.
pub mod o {
    /// Read only.
    pub const RDONLY: i32 = 0;
    /// Write only.
    pub const WRONLY: i32 = 1;
    /// Create if missing.
    pub const CREAT: i32 = 0o100;
    /// Do not become the controlling terminal.
    pub const NOCTTY: i32 = 0o400;
    /// Truncate.
    pub const TRUNC: i32 = 0o1000;
    /// Append.
    pub const APPEND: i32 = 0o2000;
    /// Non-blocking.
    pub const NONBLOCK: i32 = 0o4000;
    /// Close on exec.
    pub const CLOEXEC: i32 = 0o2000000;
}

/// A NUL-terminated copy of a path, made on the stack.
pub struct CStr {
    buf: [u8; 4096],
}

impl CStr {
    /// Copies `s` (without NUL bytes) and terminates it; `None` if too long.
    pub fn new(s: &[u8]) -> Option<CStr> {
        if s.len() >= 4096 || s.contains(&0) {
            return None;
        }
        let mut buf = [0u8; 4096];
        buf[..s.len()].copy_from_slice(s);
        Some(CStr { buf })
    }

    /// The pointer the kernel reads.
    pub fn ptr(&self) -> *const u8 {
        self.buf.as_ptr()
    }
}

fn cpath(p: &[u8]) -> SysResult<CStr> {
    CStr::new(p).ok_or(Errno(36)) // ENAMETOOLONG (or an embedded NUL)
}

/// read(2).
pub fn read(fd: Fd, buf: &mut [u8]) -> SysResult<usize> {
    call!(nr::READ, fd, buf.as_mut_ptr(), buf.len())
}

/// write(2).
pub fn write(fd: Fd, buf: &[u8]) -> SysResult<usize> {
    call!(nr::WRITE, fd, buf.as_ptr(), buf.len())
}

/// Writes all of `buf`.
pub fn write_all(fd: Fd, mut buf: &[u8]) -> SysResult<()> {
    while !buf.is_empty() {
        let n = write(fd, buf)?;
        if n == 0 {
            return Err(errno::EIO);
        }
        buf = &buf[n..];
    }
    Ok(())
}

/// close(2); errors are of no use to the caller.
pub fn close(fd: Fd) {
    if fd >= 0 {
        // SAFETY: close takes an integer only.
        let _ = unsafe { raw(nr::CLOSE, [fd as usize, 0, 0, 0, 0, 0]) };
    }
}

/// openat(AT_FDCWD, path, flags, mode).
pub fn open(path: &[u8], flags: i32, mode: u32) -> SysResult<Fd> {
    let p = cpath(path)?;
    call!(nr::OPENAT, AT_FDCWD, p.ptr(), flags, mode).map(|fd| fd as Fd)
}

/// lseek(fd, 0, SEEK_END): the size of a file opened for appending.
pub fn seek_end(fd: Fd) -> SysResult<u64> {
    call!(nr::LSEEK, fd, 0, 2).map(|n| n as u64)
}

/// rename(2).
pub fn rename(from: &[u8], to: &[u8]) -> SysResult<()> {
    let (a, b) = (cpath(from)?, cpath(to)?);
    call!(nr::RENAME, a.ptr(), b.ptr()).map(drop)
}

/// unlink(2).
pub fn unlink(path: &[u8]) -> SysResult<()> {
    let p = cpath(path)?;
    call!(nr::UNLINK, p.ptr()).map(drop)
}

/// chdir(2).
pub fn chdir(path: &[u8]) -> SysResult<()> {
    let p = cpath(path)?;
    call!(nr::CHDIR, p.ptr()).map(drop)
}

/// Sets or clears FD_CLOEXEC.
pub fn set_cloexec(fd: Fd, on: bool) -> SysResult<()> {
    call!(nr::FCNTL, fd, 2, on as usize).map(drop) // F_SETFD
}

/// Sets O_NONBLOCK on a descriptor the monitor owns alone.
pub fn set_nonblock(fd: Fd) -> SysResult<()> {
    let flags = call!(nr::FCNTL, fd, 3)?; // F_GETFL
    call!(nr::FCNTL, fd, 4, flags | o::NONBLOCK as usize).map(drop) // F_SETFL
}

/// The calling process's pid.
pub fn getpid() -> i32 {
    call!(nr::GETPID).unwrap_or(0) as i32
}

/// kill(2).
pub fn kill(pid: i32, sig: i32) -> SysResult<()> {
    call!(nr::KILL, pid as isize, sig).map(drop)
}

/// setpgid(0, 0): a process group of its own.
pub fn setpgid_self() -> SysResult<()> {
    call!(nr::SETPGID, 0, 0).map(drop)
}

/// Makes process group `pgrp` the foreground group of the terminal `fd` (TIOCSPGRP).
pub fn tcsetpgrp(fd: Fd, pgrp: i32) -> SysResult<()> {
    let p = pgrp;
    call!(nr::IOCTL, fd, 0x5410, &p as *const i32).map(drop)
}

/// Whether `fd` is a terminal (TIOCGWINSZ succeeds).
pub fn isatty(fd: Fd) -> bool {
    let mut ws = [0u16; 4];
    call!(nr::IOCTL, fd, 0x5413, ws.as_mut_ptr()).is_ok()
}

/// exit_group(2).
pub fn exit(code: i32) -> ! {
    loop {
        // SAFETY: exit_group takes an integer and does not return.
        unsafe { raw(nr::EXIT_GROUP, [code as usize, 0, 0, 0, 0, 0]) };
    }
}

/// fork(2), as clone(SIGCHLD): 0 in the child, its pid in the parent.
pub fn fork() -> SysResult<i32> {
    call!(nr::CLONE, 17, 0, 0, 0, 0).map(|p| p as i32)
}

/// execve(2) with NULL-terminated arrays of NUL-terminated strings; returns
/// only on failure.
pub fn execve(path: *const u8, argv: *const *const u8, envp: *const *const u8) -> Errno {
    match call!(nr::EXECVE, path, argv, envp) {
        Ok(_) => errno::ENOEXEC,
        Err(e) => e,
    }
}

/// Execs `args[0]` with arguments `args` and the environment `envp` (a
/// NULL-terminated array, as the kernel passed it); returns the error.
pub fn exec(args: &[&[u8]], envp: *const *const u8) -> Errno {
    const MAX_ARGS: usize = 16;
    let mut store = [0u8; 8192];
    let mut offsets = [0usize; MAX_ARGS];
    let mut at = 0;
    if args.is_empty() || args.len() > MAX_ARGS {
        return Errno(7); // E2BIG
    }
    for (i, a) in args.iter().enumerate() {
        if a.contains(&0) || at + a.len() + 1 > store.len() {
            return Errno(7);
        }
        store[at..at + a.len()].copy_from_slice(a);
        offsets[i] = at;
        at += a.len() + 1;
    }
    let mut ptrs = [core::ptr::null::<u8>(); MAX_ARGS + 1];
    for (p, off) in ptrs.iter_mut().zip(&offsets[..args.len()]) {
        *p = store[*off..].as_ptr();
    }
    execve(ptrs[0], ptrs.as_ptr(), envp)
}

/// The program's arguments and environment as the kernel passed them.
#[derive(Clone, Copy, Debug)]
pub struct Argv {
    argc: usize,
    argv: *const *const u8,
    envp: *const *const u8,
}

impl Argv {
    /// Wraps the initial stack's `argc`, `argv` and `envp`.
    ///
    /// # Safety
    /// `argv` must hold `argc` pointers to NUL-terminated strings followed
    /// by NULL, and `envp` a NULL-terminated array, all living as long as
    /// the process (the initial stack does).
    pub unsafe fn new(argc: usize, argv: *const *const u8, envp: *const *const u8) -> Argv {
        Argv { argc, argv, envp }
    }

    /// How many arguments there are.
    pub fn len(&self) -> usize {
        self.argc
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.argc == 0
    }

    /// Argument `i` without its NUL.
    pub fn get(&self, i: usize) -> Option<&'static [u8]> {
        if i >= self.argc {
            return None;
        }
        // SAFETY: `new`'s contract: argv[i] (i < argc) is a NUL-terminated
        // string that lives as long as the process.
        unsafe { Some(cstr_bytes(*self.argv.add(i))) }
    }

    /// The NULL-terminated pointer array from argument `i` on (for execve).
    pub fn from(&self, i: usize) -> *const *const u8 {
        self.argv.wrapping_add(i.min(self.argc))
    }

    /// The environment (for execve).
    pub fn envp(&self) -> *const *const u8 {
        self.envp
    }

    /// The value of environment variable `name`.
    pub fn env(&self, name: &[u8]) -> Option<&'static [u8]> {
        let mut i = 0;
        loop {
            // SAFETY: `new`'s contract: envp is a NULL-terminated array of
            // NUL-terminated strings living as long as the process.
            let p = unsafe { *self.envp.add(i) };
            if p.is_null() {
                return None;
            }
            // SAFETY: as above.
            let entry = unsafe { cstr_bytes(p) };
            if entry.len() > name.len() && entry.starts_with(name) && entry[name.len()] == b'=' {
                return Some(&entry[name.len() + 1..]);
            }
            i += 1;
        }
    }
}

/// The bytes of a NUL-terminated string.
///
/// # Safety
/// `p` must point to a NUL-terminated string living for `'static`.
unsafe fn cstr_bytes(p: *const u8) -> &'static [u8] {
    let mut n = 0;
    // SAFETY: the caller guarantees a NUL within the string's memory.
    unsafe {
        while *p.add(n) != 0 {
            n += 1;
        }
        core::slice::from_raw_parts(p, n)
    }
}

/// Makes the calling process a subreaper of its descendants' orphans.
pub fn set_child_subreaper() -> SysResult<()> {
    call!(nr::PRCTL, 36, 1).map(drop) // PR_SET_CHILD_SUBREAPER
}

/// How a child ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// exit(code).
    Code(i32),
    /// Killed by a signal.
    Signal(i32),
}

impl Exit {
    /// The status a shell reports: the code, or 128 + the signal.
    pub fn status(self) -> i32 {
        match self {
            Exit::Code(c) => c,
            Exit::Signal(s) => 128 + s,
        }
    }
}

/// wait4(-1, WNOHANG): a child that ended, `None` when none has (yet).
pub fn reap_any() -> SysResult<Option<(i32, Exit)>> {
    let mut status: i32 = 0;
    let pid = call!(nr::WAIT4, -1isize, &mut status as *mut i32, 1, 0)? as i32; // WNOHANG
    if pid == 0 {
        return Ok(None);
    }
    let sig = status & 0x7f;
    Ok(Some(if sig == 0 {
        (pid, Exit::Code((status >> 8) & 0xff))
    } else if sig != 0x7f {
        (pid, Exit::Signal(sig))
    } else {
        // Stopped/continued are not reported without WUNTRACED/WCONTINUED.
        (pid, Exit::Code(0))
    }))
}

/// A signal set (the kernel's 64-bit mask).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SigSet(pub u64);

impl SigSet {
    /// The set holding `sigs`.
    pub fn of(sigs: &[i32]) -> SigSet {
        SigSet(sigs.iter().fold(0u64, |m, s| m | (1u64 << (s - 1))))
    }

    /// Every signal but SIGKILL and SIGSTOP.
    pub fn all_catchable() -> SigSet {
        SigSet(!(1u64 << (sig::KILL - 1)) & !(1u64 << (sig::STOP - 1)))
    }
}

/// Signal numbers.
pub mod sig {
    /// Hang-up.
    pub const HUP: i32 = 1;
    /// Interrupt.
    pub const INT: i32 = 2;
    /// Kill.
    pub const KILL: i32 = 9;
    /// Broken pipe.
    pub const PIPE: i32 = 13;
    /// Terminate.
    pub const TERM: i32 = 15;
    /// Child status changed.
    pub const CHLD: i32 = 17;
    /// Stop (uncatchable).
    pub const STOP: i32 = 19;
    /// Background write to the terminal.
    pub const TTOU: i32 = 22;
}

/// Replaces the signal mask.
pub fn set_sigmask(set: SigSet) -> SysResult<()> {
    call!(nr::RT_SIGPROCMASK, 2, &set.0 as *const u64, 0, 8).map(drop) // SIG_SETMASK
}

/// Sets the disposition of `signal` to ignored (`ignore`) or default.
pub fn set_ignored(signal: i32, ignore: bool) -> SysResult<()> {
    // struct kernel_sigaction { handler, flags, restorer, mask }
    let act: [u64; 4] = [ignore as u64, 0, 0, 0]; // SIG_IGN = 1, SIG_DFL = 0
    call!(nr::RT_SIGACTION, signal, act.as_ptr(), 0, 8).map(drop)
}

/// A non-blocking, close-on-exec signalfd receiving `set` (which must be blocked).
pub fn signalfd(set: SigSet) -> SysResult<Fd> {
    call!(
        nr::SIGNALFD4,
        -1isize,
        &set.0 as *const u64,
        8,
        0o4000 | 0o2000000
    )
    .map(|f| f as Fd)
}

/// Reads one signal number from a signalfd; `None` when none is pending.
pub fn read_signal(fd: Fd) -> Option<i32> {
    let mut info = [0u8; 128];
    match read(fd, &mut info) {
        Ok(128) => Some(u32::from_ne_bytes([info[0], info[1], info[2], info[3]]) as i32),
        _ => None,
    }
}

/// A poll(2) entry.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct PollFd {
    /// The descriptor (negative: ignored).
    pub fd: Fd,
    /// Requested events.
    pub events: i16,
    /// Returned events.
    pub revents: i16,
}

/// Poll event bits.
pub mod poll {
    /// Readable.
    pub const IN: i16 = 1;
    /// Error.
    pub const ERR: i16 = 8;
    /// Hung up.
    pub const HUP: i16 = 0x10;
    /// Invalid descriptor.
    pub const NVAL: i16 = 0x20;
}

/// ppoll(2) with a timeout in milliseconds (negative: none).
pub fn poll(fds: &mut [PollFd], timeout_ms: i64) -> SysResult<usize> {
    let ts = [timeout_ms / 1000, (timeout_ms % 1000) * 1_000_000];
    let tp = if timeout_ms < 0 {
        core::ptr::null()
    } else {
        ts.as_ptr()
    };
    call!(nr::PPOLL, fds.as_mut_ptr(), fds.len(), tp, 0, 8)
}

/// The time: seconds and nanoseconds of `CLOCK_REALTIME` (0) or
/// `CLOCK_MONOTONIC` (1).
pub fn clock(id: usize) -> (i64, u32) {
    let mut ts = [0i64; 2];
    let _ = call!(nr::CLOCK_GETTIME, id, ts.as_mut_ptr());
    (ts[0], ts[1] as u32)
}

/// Milliseconds of the monotonic clock.
pub fn monotonic_ms() -> i64 {
    let (s, ns) = clock(1);
    s * 1000 + (ns / 1_000_000) as i64
}

/// A listening unix seqpacket socket bound to `path` (relative to the working
/// directory), close-on-exec; a stale socket file is replaced.
pub fn listen_unix(path: &[u8]) -> SysResult<Fd> {
    let mut addr = [0u8; 110];
    if path.len() >= 108 {
        return Err(Errno(36));
    }
    addr[0] = 1; // AF_UNIX, little-endian u16
    addr[2..2 + path.len()].copy_from_slice(path);
    let fd = call!(nr::SOCKET, 1, 5 | o::CLOEXEC as usize, 0)? as Fd; // SOCK_SEQPACKET
    let _ = unlink(path);
    let len = 2 + path.len() + 1;
    if let Err(e) = call!(nr::BIND, fd, addr.as_ptr(), len).and_then(|_| call!(nr::LISTEN, fd, 16))
    {
        close(fd);
        return Err(e);
    }
    Ok(fd)
}

/// accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK).
pub fn accept(fd: Fd) -> SysResult<Fd> {
    call!(nr::ACCEPT4, fd, 0, 0, o::CLOEXEC | o::NONBLOCK).map(|f| f as Fd)
}

#[repr(C)]
struct IoVec {
    base: *const u8,
    len: usize,
}

#[repr(C)]
struct MsgHdr {
    name: *const u8,
    namelen: u32,
    iov: *const IoVec,
    iovlen: usize,
    control: *const u8,
    controllen: usize,
    flags: i32,
}

/// The most descriptors one message carries.
pub const MAX_FDS: usize = 4;
const CMSG_HDR: usize = 16;

/// Sends `data` with descriptors `fds` (SCM_RIGHTS) over a unix socket;
/// MSG_NOSIGNAL, so a gone peer is an error rather than a signal.
pub fn send_with_fds(sock: Fd, data: &[u8], fds: &[Fd]) -> SysResult<usize> {
    let n = fds.len().min(MAX_FDS);
    let mut control = [0u64; 6];
    let iov = IoVec {
        base: data.as_ptr(),
        len: data.len(),
    };
    let mut hdr = MsgHdr {
        name: core::ptr::null(),
        namelen: 0,
        iov: &iov,
        iovlen: 1,
        control: core::ptr::null(),
        controllen: 0,
        flags: 0,
    };
    if n > 0 {
        // struct cmsghdr { size_t len; int level; int type; } + the fds.
        let len = CMSG_HDR + 4 * n;
        control[0] = len as u64;
        control[1] = 1 | (1 << 32); // SOL_SOCKET, SCM_RIGHTS
        let mut bytes = [0u8; 16];
        for (i, fd) in fds[..n].iter().enumerate() {
            bytes[i * 4..i * 4 + 4].copy_from_slice(&fd.to_ne_bytes());
        }
        control[2] = u64::from_ne_bytes(bytes[..8].try_into().expect("8 bytes"));
        control[3] = u64::from_ne_bytes(bytes[8..].try_into().expect("8 bytes"));
        hdr.control = control.as_ptr() as *const u8;
        hdr.controllen = (len + 7) & !7;
    }
    call!(nr::SENDMSG, sock, &hdr as *const MsgHdr, 0x4000) // MSG_NOSIGNAL
}

/// Receives data and up to [`MAX_FDS`] descriptors (made close-on-exec);
/// returns the bytes read and how many descriptors were stored in `fds`.
pub fn recv_with_fds(
    sock: Fd,
    data: &mut [u8],
    fds: &mut [Fd; MAX_FDS],
) -> SysResult<(usize, usize)> {
    let mut control = [0u64; 6];
    let iov = IoVec {
        base: data.as_mut_ptr(),
        len: data.len(),
    };
    let hdr = MsgHdr {
        name: core::ptr::null(),
        namelen: 0,
        iov: &iov,
        iovlen: 1,
        control: control.as_mut_ptr() as *const u8,
        controllen: core::mem::size_of_val(&control),
        flags: 0,
    };
    let got = call!(nr::RECVMSG, sock, &hdr as *const MsgHdr, 0x4000_0000)?; // MSG_CMSG_CLOEXEC
    let mut count = 0;
    let len = control[0] as usize;
    if hdr.controllen >= CMSG_HDR && len > CMSG_HDR && control[1] == 1 | (1 << 32) {
        let n = ((len - CMSG_HDR) / 4).min(MAX_FDS);
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&control[2].to_ne_bytes());
        bytes[8..].copy_from_slice(&control[3].to_ne_bytes());
        for (i, slot) in fds.iter_mut().enumerate().take(n) {
            *slot = i32::from_ne_bytes(bytes[i * 4..i * 4 + 4].try_into().expect("4 bytes"));
        }
        count = n;
    }
    Ok((got, count))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_rename_and_sizes() {
        let dir = std::env::temp_dir().join(format!("capsa-monitor-sys-{}", getpid()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("f");
        let pb = p.to_str().unwrap().as_bytes();
        let fd = open(pb, o::WRONLY | o::CREAT | o::APPEND | o::CLOEXEC, 0o600).unwrap();
        write_all(fd, b"hello").unwrap();
        assert_eq!(seek_end(fd).unwrap(), 5);
        close(fd);
        let q = dir.join("g");
        rename(pb, q.to_str().unwrap().as_bytes()).unwrap();
        assert_eq!(open(pb, o::RDONLY, 0), Err(errno::ENOENT));
        unlink(q.to_str().unwrap().as_bytes()).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn descriptors_travel_over_a_socket_pair() {
        use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
        use std::os::unix::net::UnixStream;
        let (a, b) = UnixStream::pair().unwrap();
        let (r, w) = std::io::pipe().unwrap();
        let sent = send_with_fds(a.as_raw_fd(), b"x", &[w.as_raw_fd(), r.as_raw_fd()]).unwrap();
        assert_eq!(sent, 1);
        let mut buf = [0u8; 8];
        let mut fds = [-1; MAX_FDS];
        let (n, count) = recv_with_fds(b.as_raw_fd(), &mut buf, &mut fds).unwrap();
        assert_eq!((n, count, buf[0]), (1, 2, b'x'));
        // SAFETY (test): the descriptors were just received and are ours.
        let w2 = unsafe { OwnedFd::from_raw_fd(fds[0]) };
        let r2 = unsafe { OwnedFd::from_raw_fd(fds[1]) };
        write_all(w2.as_raw_fd(), b"ok").unwrap();
        let mut got = [0u8; 2];
        read(r2.as_raw_fd(), &mut got).unwrap();
        assert_eq!(&got, b"ok");
    }

    #[test]
    fn signal_sets() {
        assert_eq!(SigSet::of(&[sig::HUP, sig::CHLD]).0, 1 | (1 << 16));
        let all = SigSet::all_catchable();
        assert_eq!(all.0 & (1 << 8), 0, "SIGKILL is not catchable");
        assert_ne!(all.0 & (1 << 14), 0);
    }
}
