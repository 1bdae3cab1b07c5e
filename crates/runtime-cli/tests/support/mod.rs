//! Helpers of the security tests (seccomp, escapes, rootless): small C
//! programs built static with the system's gcc and copied into bundles, and
//! a seccomp notify agent.

#![allow(dead_code)]

use std::hash::{Hash, Hasher};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::Bundle;

/// The C sources, by program name.
const SOURCES: &[(&str, &str)] = &[
    ("sysprobe", include_str!("sysprobe.c")),
    ("exe_grabber", include_str!("exe_grabber.c")),
];

/// Builds the C program `name` (a file of this directory) statically with
/// gcc, once per source version; `None` (after printing why the test is
/// skipped) when gcc or the static C library is missing.
pub fn c_program(name: &str) -> Option<PathBuf> {
    static BUILDING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = BUILDING.lock().unwrap_or_else(|e| e.into_inner());
    let source = SOURCES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, s)| *s)
        .unwrap_or_else(|| panic!("no C source named {name}"));
    let mut h = std::collections::hash_map::DefaultHasher::new();
    source.hash(&mut h);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("capsa-c-helpers");
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join(format!("{name}-{:016x}", h.finish()));
    if out.exists() {
        return Some(out);
    }
    let src = dir.join(format!("{name}-{}.c", std::process::id()));
    std::fs::write(&src, source).unwrap();
    let tmp = dir.join(format!("{name}-{}.tmp", std::process::id()));
    let res = Command::new("gcc")
        .args(["-static", "-O1", "-pthread", "-o"])
        .arg(&tmp)
        .arg(&src)
        .output();
    let _ = std::fs::remove_file(&src);
    match res {
        Ok(o) if o.status.success() => {
            std::fs::rename(&tmp, &out).unwrap();
            Some(out)
        }
        Ok(o) => {
            eprintln!(
                "SKIPPED: gcc could not build {name} statically (apt-get install build-essential): {}",
                String::from_utf8_lossy(&o.stderr)
            );
            None
        }
        Err(e) => {
            eprintln!("SKIPPED: gcc is missing ({e}); apt-get install build-essential");
            None
        }
    }
}

/// Builds `name` and copies it into the bundle's rootfs as /bin/NAME;
/// `None` when it cannot be built (the test is skipped).
pub fn install(b: &Bundle, name: &str) -> Option<()> {
    let prog = c_program(name)?;
    std::fs::copy(prog, b.rootfs().join("bin").join(name)).unwrap();
    Some(())
}

/// Skips (returning from the test) unless the C program can be installed.
#[macro_export]
macro_rules! require_program {
    ($bundle:expr, $name:expr) => {
        if $crate::support::install(&$bundle, $name).is_none() {
            return;
        }
    };
}

/// What a seccomp agent answers to one notification.
#[derive(Clone, Copy, Debug)]
pub enum Answer {
    /// Fail the system call with this errno.
    Errno(i32),
    /// Let the kernel run it (SECCOMP_USER_NOTIF_FLAG_CONTINUE).
    Continue,
}

/// What a seccomp agent received.
#[derive(Debug)]
pub struct AgentReport {
    /// The message that came with the descriptor (containerProcessState).
    pub state: Value,
    /// Whether exactly one descriptor came with it.
    pub got_fd: bool,
    /// The system call numbers it was notified of, in order.
    pub calls: Vec<i32>,
}

/// A seccomp agent listening on a unix socket: takes one connection, the
/// notify descriptor and state that come over it, and answers each
/// notification with `answer(call index, syscall number)` until the
/// container's processes are gone.
pub struct Agent {
    /// The socket path, for `linux.seccomp.listenerPath`.
    pub path: PathBuf,
    _dir: tempfile::TempDir,
    thread: std::thread::JoinHandle<AgentReport>,
}

impl Agent {
    /// Starts the agent on a new socket.
    pub fn start(answer: impl Fn(usize, i32) -> Answer + Send + 'static) -> Agent {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let thread = std::thread::spawn(move || serve(listener, answer));
        Agent {
            path,
            _dir: dir,
            thread,
        }
    }

    /// Waits for the agent to finish and returns what it saw.
    pub fn finish(self) -> AgentReport {
        self.thread.join().unwrap()
    }
}

fn serve(listener: UnixListener, answer: impl Fn(usize, i32) -> Answer) -> AgentReport {
    let (conn, _) = listener.accept().unwrap();
    let mut buf = vec![0u8; 1 << 16];
    let mut cmsg = nix::cmsg_space!([RawFd; 4]);
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let msg = nix::sys::socket::recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        nix::sys::socket::MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .unwrap();
    let mut fds = Vec::new();
    for c in msg.cmsgs().unwrap() {
        if let nix::sys::socket::ControlMessageOwned::ScmRights(list) = c {
            fds.extend(list.into_iter().map(notify::own));
        }
    }
    let len = msg.bytes;
    let state: Value = serde_json::from_slice(&buf[..len]).unwrap_or(Value::Null);
    let got_fd = fds.len() == 1;
    let mut calls = Vec::new();
    if let Some(fd) = fds.first() {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            match notify::wait(fd, 100) {
                notify::Ready::Gone => break,
                notify::Ready::Nothing => continue,
                notify::Ready::Notification => {}
            }
            let Some(n) = notify::recv(fd) else { continue };
            let a = answer(calls.len(), n.data.nr);
            calls.push(n.data.nr);
            notify::send(fd, n.id, a);
        }
    }
    AgentReport {
        state,
        got_fd,
        calls,
    }
}

/// The seccomp notify ioctls (the agent's side of SCMP_ACT_NOTIFY).
mod notify {
    use super::*;
    use std::os::fd::FromRawFd;

    pub enum Ready {
        Notification,
        Nothing,
        Gone,
    }

    /// Takes ownership of a descriptor received with SCM_RIGHTS.
    pub fn own(fd: RawFd) -> OwnedFd {
        // SAFETY: the kernel just installed `fd` for us; nothing else owns it.
        unsafe { OwnedFd::from_raw_fd(fd) }
    }

    /// Waits up to `ms` for a notification; `Gone` once no process uses the filter.
    pub fn wait(fd: &OwnedFd, ms: u16) -> Ready {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        let mut p = [PollFd::new(std::os::fd::AsFd::as_fd(fd), PollFlags::POLLIN)];
        match poll(&mut p, PollTimeout::from(ms)) {
            Ok(0) | Err(_) => Ready::Nothing,
            Ok(_) => {
                let r = p[0].revents().unwrap_or(PollFlags::empty());
                if r.contains(PollFlags::POLLIN) {
                    Ready::Notification
                } else {
                    Ready::Gone
                }
            }
        }
    }

    /// SECCOMP_IOCTL_NOTIF_RECV: the next notification.
    pub fn recv(fd: &OwnedFd) -> Option<libc::seccomp_notif> {
        // SAFETY: seccomp_notif is plain data; the kernel wants it zeroed.
        let mut n: libc::seccomp_notif = unsafe { std::mem::zeroed() };
        // SAFETY: `n` is a valid, writable seccomp_notif for the call.
        let ret = unsafe {
            libc::ioctl(
                fd.as_raw_fd(),
                libc::SECCOMP_IOCTL_NOTIF_RECV as _,
                &mut n as *mut libc::seccomp_notif,
            )
        };
        (ret == 0).then_some(n)
    }

    /// SECCOMP_IOCTL_NOTIF_SEND: answers notification `id`.
    pub fn send(fd: &OwnedFd, id: u64, answer: Answer) {
        let (error, flags) = match answer {
            Answer::Errno(e) => (-e, 0),
            Answer::Continue => (0, libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32),
        };
        let mut resp = libc::seccomp_notif_resp {
            id,
            val: 0,
            error,
            flags,
        };
        // SAFETY: `resp` is a valid seccomp_notif_resp for the call.
        unsafe {
            libc::ioctl(
                fd.as_raw_fd(),
                libc::SECCOMP_IOCTL_NOTIF_SEND as _,
                &mut resp as *mut libc::seccomp_notif_resp,
            )
        };
    }
}
