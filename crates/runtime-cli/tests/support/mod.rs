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
        Agent::start_at(0, answer)
    }

    /// Starts the agent on a new socket whose path is at least `len` bytes.
    pub fn start_at(len: usize, answer: impl Fn(usize, i32) -> Answer + Send + 'static) -> Agent {
        let dir = tempfile::tempdir().unwrap();
        let path = crate::common::long_dir(dir.path(), len).join("agent.sock");
        let listener = crate::common::listen_at(&path);
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

/// An unprivileged user made for a test (with /etc/subuid and /etc/subgid
/// ranges), removed with them when dropped, even if the test fails.
pub struct TestUser {
    /// The login name.
    pub name: String,
    /// Its uid and gid.
    pub uid: u32,
    pub gid: u32,
    /// The first of its subordinate uids and gids, and how many.
    pub subid_start: u32,
    pub subid_count: u32,
    /// A directory it owns, for its XDG_RUNTIME_DIR.
    pub runtime_dir: tempfile::TempDir,
}

impl TestUser {
    /// Makes a new user; `None` (after printing why the test is skipped)
    /// when not root or useradd/newuidmap are missing.
    pub fn create() -> Option<TestUser> {
        if crate::common::skip_unless_root() {
            return None;
        }
        for tool in ["useradd", "userdel", "newuidmap", "newgidmap", "setpriv"] {
            let found = std::env::var_os("PATH")
                .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
                || Path::new("/usr/sbin").join(tool).is_file();
            if !found {
                eprintln!("SKIPPED: {tool} is missing (apt-get install passwd uidmap util-linux)");
                return None;
            }
        }
        // useradd locks /etc/passwd: one at a time here, retried when
        // another process holds the lock.
        static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _one = ONE.lock().unwrap_or_else(|e| e.into_inner());
        let name = format!(
            "capsa-t{}",
            crate::common::unique("").trim_start_matches('-')
        );
        let mut tries = 0;
        loop {
            let out = Command::new("useradd")
                .args(["-M", "-s", "/bin/sh", &name])
                .output()
                .unwrap();
            if out.status.success() {
                break;
            }
            tries += 1;
            assert!(
                tries < 50,
                "useradd {name}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let user = nix::unistd::User::from_name(&name).unwrap().unwrap();
        let runtime_dir = tempfile::Builder::new()
            .prefix("capsa-xdg-")
            .tempdir()
            .unwrap();
        let mut u = TestUser {
            name,
            uid: user.uid.as_raw(),
            gid: user.gid.as_raw(),
            subid_start: 0,
            subid_count: 0,
            runtime_dir,
        };
        std::os::unix::fs::chown(u.runtime_dir.path(), Some(u.uid), Some(u.gid)).unwrap();
        match subids(&u.name) {
            Some((start, count)) => (u.subid_start, u.subid_count) = (start, count),
            None => {
                // This useradd allocates none: give it a range of its own.
                let start = 700_000_000 + (u.uid % 1000) * 65536;
                let range = format!("{start}-{}", start + 65535);
                let ok = Command::new("usermod")
                    .args(["--add-subuids", &range, "--add-subgids", &range, &u.name])
                    .status()
                    .unwrap()
                    .success();
                assert!(ok, "usermod --add-subuids for {}", u.name);
                (u.subid_start, u.subid_count) = (start, 65536);
            }
        }
        Some(u)
    }

    /// A command running `program` as this user (real and effective ids,
    /// its groups), with a clean environment and XDG_RUNTIME_DIR set.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid",
            &self.uid.to_string(),
            "--regid",
            &self.gid.to_string(),
            "--init-groups",
            "--",
        ])
        .arg(program)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
        .env("XDG_RUNTIME_DIR", self.runtime_dir.path())
        .env("HOME", self.runtime_dir.path())
        .stdin(std::process::Stdio::null());
        c
    }

    /// Gives the user a file or directory.
    pub fn own(&self, path: &Path) {
        std::os::unix::fs::chown(path, Some(self.uid), Some(self.gid)).unwrap();
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        // Its containers are deleted by their own guards first; userdel
        // refuses while a process of the user is still exiting.
        for _ in 0..50 {
            let ok = Command::new("userdel")
                .arg(&self.name)
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ok
                || nix::unistd::User::from_name(&self.name)
                    .ok()
                    .flatten()
                    .is_none()
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The first subordinate uid of `user` in /etc/subuid and how many it has.
fn subids(user: &str) -> Option<(u32, u32)> {
    let text = std::fs::read_to_string("/etc/subuid").ok()?;
    let gids = std::fs::read_to_string("/etc/subgid").ok()?;
    let find = |t: &str| {
        t.lines().find_map(|l| {
            let mut f = l.split(':');
            (f.next()? == user).then(|| Some((f.next()?.parse().ok()?, f.next()?.parse().ok()?)))?
        })
    };
    let (u, g) = (find(&text)?, find(&gids)?);
    (u == g).then_some(u)
}
