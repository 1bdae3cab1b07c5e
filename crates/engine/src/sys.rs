//! The few libc calls of the engine that neither std nor `nix` offers; every
//! `unsafe` block of the binary is here.

/// The local time zone's UTC offset (seconds) and abbreviation at `unix`
/// (localtime_r(3), which reads TZ and /etc/localtime).
pub fn local_offset(unix: i64) -> (i64, String) {
    let t: libc::time_t = unix as libc::time_t;
    // SAFETY: `tm` is plain old data that localtime_r fills in; zeroed is a valid value.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the duration of the call.
    let r = unsafe { libc::localtime_r(&t, &mut tm) };
    if r.is_null() {
        return (0, "UTC".into());
    }
    let zone = if tm.tm_zone.is_null() {
        "UTC".to_string()
    } else {
        // SAFETY: tm_zone points to a NUL-terminated static string owned by libc.
        unsafe { std::ffi::CStr::from_ptr(tm.tm_zone) }
            .to_string_lossy()
            .into_owned()
    };
    (tm.tm_gmtoff, zone)
}

/// fork(2).
///
/// The caller must be single-threaded (the child gets a copy of the one
/// thread) and the child must end with exec or [`exit_now`], never by
/// returning through the parent's frames.
pub fn fork() -> nix::Result<nix::unistd::ForkResult> {
    // SAFETY: capsa is single-threaded when it forks (no thread holds a lock
    // the child could need), and the child only execs or exits.
    unsafe { nix::unistd::fork() }
}

/// _exit(2): ends the process at once, without running destructors or
/// atexit handlers (for a forked child sharing the parent's open files).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit takes an integer and never returns.
    unsafe { libc::_exit(code) }
}

/// Closes every descriptor from 3 up except those in `keep`.
pub fn close_fds_except(keep: &[i32]) {
    let mut keep: Vec<u32> = keep
        .iter()
        .filter(|&&f| f >= 3)
        .map(|&f| f as u32)
        .collect();
    keep.sort_unstable();
    keep.dedup();
    let mut from = 3u32;
    for k in keep {
        if k > from {
            // SAFETY: close_range takes integers only.
            unsafe { libc::close_range(from, k - 1, 0) };
        }
        from = k + 1;
    }
    // SAFETY: as above.
    unsafe { libc::close_range(from, u32::MAX, 0) };
}

/// Sets the IFF_UP flag of interface `lo` in the calling thread's network
/// namespace (a new namespace's loopback is down).
pub fn loopback_up() -> nix::Result<()> {
    use std::os::fd::AsRawFd;
    let sock = nix::sys::socket::socket(
        nix::sys::socket::AddressFamily::Inet,
        nix::sys::socket::SockType::Datagram,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    // SAFETY: ifreq is plain old data; zeroed is a valid value.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in ifr.ifr_name.iter_mut().zip(b"lo") {
        *d = *s as libc::c_char;
    }
    // SAFETY: `ifr` is a valid ifreq for SIOCGIFFLAGS, which fills ifru_flags.
    let r = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut ifr) };
    nix::errno::Errno::result(r)?;
    // SAFETY: the union's flags member was just set by the kernel.
    unsafe { ifr.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
    // SAFETY: `ifr` is a valid ifreq for SIOCSIFFLAGS.
    let r = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &ifr) };
    nix::errno::Errno::result(r).map(drop)
}

/// Clears FD_CLOEXEC on `fd`, so that it survives the next exec.
pub fn keep_across_exec(fd: i32) -> nix::Result<()> {
    // SAFETY: fcntl(F_SETFD) takes integers only.
    let r = unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
    nix::errno::Errno::result(r).map(drop)
}

/// Waits until `fd` is readable or `timeout` passes; true if readable.
pub fn wait_readable(
    fd: &impl std::os::fd::AsFd,
    timeout: std::time::Duration,
) -> nix::Result<bool> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
    loop {
        match poll(
            &mut fds,
            PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
        ) {
            Err(nix::errno::Errno::EINTR) => continue,
            r => return r.map(|n| n > 0),
        }
    }
}
