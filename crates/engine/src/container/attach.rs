//! The client side of a monitor's `attach.sock` (see `crates/monitor`):
//! the command hands the monitor the descriptors that should receive the
//! container's output, may get the container's stdin (or pty master) back
//! to write itself, and learns the exit status as `exit N`.

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::Path;

use anyhow::{Context as _, Result, bail};
use nix::sys::socket::{
    AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType, UnixAddr, connect, sendmsg, socket,
};

use super::launch::recv_with_fd;

/// The socket's name in the container directory.
pub const SOCKET: &str = "attach.sock";

/// A connection to a monitor.
pub struct Attached {
    sock: OwnedFd,
    /// The container's stdin (or pty master), when asked for and open.
    pub stdin: Option<OwnedFd>,
}

/// What to ask for.
#[derive(Clone, Copy, Default)]
pub struct Request<'a> {
    /// Receives stdout (or the terminal's output).
    pub stdout: Option<BorrowedFd<'a>>,
    /// Receives stderr.
    pub stderr: Option<BorrowedFd<'a>>,
    /// Send me the container's stdin.
    pub stdin: bool,
    /// How long a read from the monitor may wait (none: for ever).
    pub timeout: Option<std::time::Duration>,
}

/// Connects to the monitor of the container in `dir`; `None` when there is
/// no monitor listening (the container is not running, or its monitor is gone).
pub fn connect_monitor(dir: &Path, req: Request<'_>) -> Result<Option<Attached>> {
    let d = std::fs::File::open(dir).with_context(|| format!("open {}", dir.display()))?;
    // The directory's path may be longer than a socket address holds.
    let path = format!("/proc/self/fd/{}/{SOCKET}", d.as_raw_fd());
    let sock = socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .context("socket")?;
    if let Some(t) = req.timeout {
        let tv = nix::sys::time::TimeVal::new(
            t.as_secs().try_into().unwrap_or(i64::MAX),
            t.subsec_micros().into(),
        );
        nix::sys::socket::setsockopt(&sock, nix::sys::socket::sockopt::ReceiveTimeout, &tv)
            .context("setsockopt(SO_RCVTIMEO)")?;
    }
    let addr = UnixAddr::new(path.as_str()).context("socket address")?;
    match connect(sock.as_raw_fd(), &addr) {
        Ok(()) => {}
        Err(nix::errno::Errno::ENOENT) | Err(nix::errno::Errno::ECONNREFUSED) => return Ok(None),
        Err(e) => return Err(e).context("connecting to the container's monitor"),
    }
    let mut msg = b"A".to_vec();
    let mut fds: Vec<RawFd> = Vec::new();
    if let Some(o) = req.stdout {
        msg.push(b'o');
        fds.push(o.as_raw_fd());
    }
    if let Some(e) = req.stderr {
        msg.push(b'e');
        fds.push(e.as_raw_fd());
    }
    if req.stdin {
        msg.push(b'i');
    }
    if fds.is_empty() && !req.stdin {
        msg.push(b'w');
    }
    let cmsg = [ControlMessage::ScmRights(&fds)];
    sendmsg::<()>(
        sock.as_raw_fd(),
        &[std::io::IoSlice::new(&msg)],
        if fds.is_empty() { &[] } else { &cmsg },
        MsgFlags::MSG_NOSIGNAL,
        None,
    )
    .context("sending to the container's monitor")?;
    let mut buf = [0u8; 64];
    let (n, stdin) = recv_with_fd(sock.as_raw_fd(), &mut buf)?;
    match &buf[..n] {
        b"ok\n" => Ok(Some(Attached { sock, stdin })),
        // The container ended between the connection and the request.
        b if b.starts_with(b"exit ") || b.is_empty() => Ok(None),
        other => bail!(
            "unexpected answer from the container's monitor: {:?}",
            String::from_utf8_lossy(other)
        ),
    }
}

impl Attached {
    /// The socket, to poll: readable when the exit status arrives or the monitor goes.
    pub fn socket(&self) -> BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.sock.as_fd()
    }
}

/// Reads the monitor's message from a link or attach socket: `Some(status)`
/// for `exit N`, `None` when the monitor went away without one.
pub fn read_exit(sock: RawFd) -> Result<Option<i32>> {
    let mut buf = [0u8; 64];
    let n = loop {
        match nix::sys::socket::recv(sock, &mut buf, MsgFlags::empty()) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(nix::errno::Errno::ECONNRESET) => return Ok(None),
            r => break r.context("reading from the container's monitor")?,
        }
    };
    let text = String::from_utf8_lossy(&buf[..n]);
    Ok(text
        .strip_prefix("exit ")
        .and_then(|s| s.trim().parse().ok()))
}
