//! The container's terminal: a pseudo-terminal made inside the container's
//! `/dev/pts`, whose master end is sent over the `--console-socket` with
//! SCM_RIGHTS (as runc does), and whose slave end becomes the process's
//! controlling terminal and stdio.

use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::fcntl::{OFlag, open};
use nix::pty::{Winsize, grantpt, posix_openpt, ptsname_r, unlockpt};
use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};
use nix::sys::stat::Mode;
use nix::unistd::{dup2_stderr, dup2_stdin, dup2_stdout, setsid};

use crate::error::{Error, IoContext, Result, SysContext};
use crate::sys;

/// Connects to the console socket at `path` (done by the runtime before the
/// container's process is created, while host paths are visible).
pub fn connect(path: &Path) -> Result<OwnedFd> {
    crate::unix_socket::connect_new(nix::sys::socket::SockType::Stream, path)
        .sys("connect to console socket", path.display())
}

/// The console ends for a new process: with `terminal`, the connected
/// `socket` (`--console-socket`), or, when there is none and the caller may
/// take the pty itself (`receive_own`: `run`, foreground `exec`), one end of
/// a socket pair, whose other end is returned second to receive the master
/// with [`recv_fd`].
pub fn for_process(
    socket: Option<&Path>,
    terminal: bool,
    receive_own: bool,
) -> Result<(Option<OwnedFd>, Option<OwnedFd>)> {
    match (socket, terminal) {
        (Some(path), true) => Ok((Some(connect(path)?), None)),
        (Some(_), false) => Err(Error::Other(
            "--console-socket is given but process.terminal is false".into(),
        )),
        (None, true) if receive_own => {
            let (ours, theirs) = UnixStream::pair().ctx("socketpair", "console")?;
            Ok((Some(OwnedFd::from(theirs)), Some(OwnedFd::from(ours))))
        }
        (None, true) => Err(Error::Other(
            "process.terminal is true: --console-socket is required".into(),
        )),
        (None, false) => Ok((None, None)),
    }
}

/// Creates the pty, sends its master over `socket`, and makes its slave the
/// calling process's controlling terminal and stdin/stdout/stderr.
/// `owner` (uid, gid) becomes the slave's owner.
pub fn setup(socket: &OwnedFd, size: Option<(u16, u16)>, owner: (u32, u32)) -> Result<()> {
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .sys("posix_openpt", "/dev/ptmx")?;
    grantpt(&master).sys("grantpt", "/dev/ptmx")?;
    unlockpt(&master).sys("unlockpt", "/dev/ptmx")?;
    let slave_path = ptsname_r(&master).sys("ptsname", "/dev/ptmx")?;
    if let Some((rows, cols)) = size {
        let ws = Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        sys::set_winsize(master.as_fd(), &ws).sys("ioctl", "TIOCSWINSZ")?;
    }
    let slave = open(
        Path::new(&slave_path),
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .sys("open", &slave_path)?;
    nix::unistd::fchown(&slave, Some(owner.0.into()), Some(owner.1.into()))
        .sys("fchown", &slave_path)?;

    send_fd(socket.as_raw_fd(), master.as_raw_fd(), &slave_path)
        .sys("sendmsg", "console socket (SCM_RIGHTS)")?;
    drop(master);

    setsid().sys("setsid", "")?;
    sys::set_controlling_tty(slave.as_fd()).sys("ioctl", format!("TIOCSCTTY {slave_path}"))?;
    dup2_stdin(&slave).sys("dup2", "pty to stdin")?;
    dup2_stdout(&slave).sys("dup2", "pty to stdout")?;
    dup2_stderr(&slave).sys("dup2", "pty to stderr")?;
    Ok(())
}

/// Sends descriptor `fd` over the unix socket `socket`, with `name` as
/// data (one sendmsg with SCM_RIGHTS); the caller names the socket in errors.
pub fn send_fd(socket: RawFd, fd: RawFd, name: &str) -> std::result::Result<(), nix::errno::Errno> {
    let fds = [fd];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let iov = [IoSlice::new(name.as_bytes())];
    sendmsg::<()>(socket, &iov, &cmsg, MsgFlags::empty(), None).map(drop)
}

/// Receives a descriptor sent with [`send_fd`]; returns it with its name.
pub fn recv_fd(socket: RawFd) -> Result<(OwnedFd, String)> {
    let mut buf = [0u8; 4096];
    let mut cmsg_space = nix::cmsg_space!([RawFd; 1]);
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let msg = recvmsg::<()>(
        socket,
        &mut iov,
        Some(&mut cmsg_space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .sys("recvmsg", "console socket")?;
    let mut received = None;
    for c in msg
        .cmsgs()
        .map_err(|e| Error::sys("recvmsg", "control messages", e))?
    {
        if let ControlMessageOwned::ScmRights(fds) = c {
            received = fds.first().copied();
        }
    }
    let len = msg.bytes;
    let fd =
        received.ok_or_else(|| Error::Other("console socket: no descriptor received".into()))?;
    let fd = sys::own_received_fd(fd);
    Ok((fd, String::from_utf8_lossy(&buf[..len]).into_owned()))
}
