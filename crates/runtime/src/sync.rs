//! Messages between the runtime and the container's init process while the
//! container is set up, over a SOCK_SEQPACKET socket pair (one message per
//! packet, so no framing is needed).
//!
//! Both ends are close-on-exec: when the init process execs the user's program
//! the runtime reads end-of-file, which is how it learns that exec succeeded.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sys::socket::{self, AddressFamily, MsgFlags, SockFlag, SockType};

use crate::error::{Error, Result};

/// One message of the set-up protocol.
#[derive(Debug, PartialEq, Eq)]
pub enum Msg {
    /// Runtime → init: uid/gid maps are written and the process is in its
    /// cgroups; go on. Carries the state JSON that hooks receive.
    Go(String),
    /// Runtime → init, right after [`Msg::Go`] when the rootfs set-up
    /// expects it ([`crate::mounts::HostPrep::sends_cgroup_mount`]): the
    /// container's `cgroup` mount, built detached, attached (none if it
    /// could not be prepared).
    CgroupMount,
    /// Init → runtime: namespaces and mounts exist; run prestart and createRuntime hooks.
    RunHooks,
    /// Runtime → init: the hooks succeeded.
    HooksDone,
    /// Init → runtime: set-up is complete; the process waits for `start`.
    Ready,
    /// Runtime → init: exec the user's program now.
    Start,
    /// Runtime → init (`create`): the state is recorded and the runtime
    /// exits; wait on the start socket.
    Detached,
    /// Init → runtime: the init process forked again (to create a pid
    /// namespace inside a joined user namespace); this is the new init's pid.
    Pid(i32),
    /// Either way: this went wrong; the sender gives up.
    Error(String),
    /// Runtime → init: the compiled seccomp filter
    /// ([`crate::seccomp::Setup::send`]), with the listener socket attached.
    Seccomp(Vec<u8>),
    /// Written by the exec trampoline ([`crate::trampoline`]): exec of the
    /// program failed at step `b'X'` (execve) or `b'F'` (marking this
    /// channel close-on-exec) with this errno.
    ExecFailed(u8, i32),
}

impl Msg {
    fn encode(&self) -> Vec<u8> {
        match self {
            Msg::CgroupMount => b"M".to_vec(),
            Msg::RunHooks => b"H".to_vec(),
            Msg::HooksDone => b"h".to_vec(),
            Msg::Ready => b"R".to_vec(),
            Msg::Start => b"S".to_vec(),
            Msg::Detached => b"D".to_vec(),
            Msg::Go(text) => tagged(b'G', text),
            Msg::Pid(pid) => tagged(b'P', &pid.to_string()),
            Msg::Error(text) => tagged(b'E', text),
            Msg::Seccomp(bytes) => {
                let mut v = Vec::with_capacity(1 + bytes.len());
                v.push(b'C');
                v.extend_from_slice(bytes);
                v
            }
            Msg::ExecFailed(step, errno) => {
                let mut v = vec![*step];
                v.extend_from_slice(&(*errno as u32).to_le_bytes());
                v
            }
        }
    }

    fn decode(bytes: &[u8]) -> Result<Msg> {
        Ok(match bytes.first() {
            Some(b'G') => Msg::Go(String::from_utf8_lossy(&bytes[1..]).into_owned()),
            Some(b'M') => Msg::CgroupMount,
            Some(b'H') => Msg::RunHooks,
            Some(b'h') => Msg::HooksDone,
            Some(b'R') => Msg::Ready,
            Some(b'S') => Msg::Start,
            Some(b'D') => Msg::Detached,
            Some(b'P') => Msg::Pid(
                String::from_utf8_lossy(&bytes[1..])
                    .parse()
                    .map_err(|_| Error::Other(format!("sync: bad pid message {bytes:?}")))?,
            ),
            Some(b'E') => Msg::Error(String::from_utf8_lossy(&bytes[1..]).into_owned()),
            Some(b'C') => Msg::Seccomp(bytes[1..].to_vec()),
            Some(&step @ (b'X' | b'F')) if bytes.len() == 5 => {
                let errno = u32::from_le_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
                Msg::ExecFailed(step, errno as i32)
            }
            _ => return Err(Error::Other(format!("sync: unexpected message {bytes:?}"))),
        })
    }
}

fn tagged(tag: u8, text: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(1 + text.len());
    v.push(tag);
    v.extend_from_slice(text.as_bytes());
    v
}

/// One end of the set-up channel.
#[derive(Debug)]
pub struct Channel(OwnedFd);

impl Channel {
    /// Creates a connected pair of close-on-exec channel ends.
    pub fn pair() -> Result<(Channel, Channel)> {
        let (a, b) = socket::socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(|e| Error::sys("socketpair", "AF_UNIX, SOCK_SEQPACKET", e))?;
        Ok((Channel(a), Channel(b)))
    }

    /// Wraps an already connected SOCK_SEQPACKET socket.
    pub fn from_fd(fd: OwnedFd) -> Channel {
        Channel(fd)
    }

    /// A listening SOCK_SEQPACKET socket bound as `name` in the directory
    /// `dir`, open at `dir_path` (the start socket; the path may be longer
    /// than a socket address holds).
    pub fn listen(dir: BorrowedFd, dir_path: &std::path::Path, name: &str) -> Result<OwnedFd> {
        let what = || dir_path.join(name).display().to_string();
        let fd = crate::unix_socket::new(SockType::SeqPacket)
            .map_err(|e| Error::sys("socket", "AF_UNIX, SOCK_SEQPACKET", e))?;
        crate::unix_socket::bind_in(fd.as_fd(), dir, dir_path, name)
            .map_err(|e| Error::sys("bind", what(), e))?;
        socket::listen(
            &fd,
            socket::Backlog::new(8).unwrap_or(socket::Backlog::MAXCONN),
        )
        .map_err(|e| Error::sys("listen", what(), e))?;
        Ok(fd)
    }

    /// Connects to a socket made by [`Channel::listen`].
    pub fn connect(path: &std::path::Path) -> Result<Channel> {
        crate::unix_socket::connect_new(SockType::SeqPacket, path)
            .map(Channel)
            .map_err(|e| Error::sys("connect", path.display().to_string(), e))
    }

    /// Accepts one connection on a listening socket.
    pub fn accept(listener: &OwnedFd) -> Result<Channel> {
        loop {
            match socket::accept4(listener.as_raw_fd(), SockFlag::SOCK_CLOEXEC) {
                Ok(fd) => return Ok(Channel(crate::sys::own_received_fd(fd))),
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(Error::sys("accept", "start socket", e)),
            }
        }
    }

    /// Sends one message.
    pub fn send(&self, msg: &Msg) -> Result<()> {
        let bytes = msg.encode();
        loop {
            match socket::send(self.0.as_raw_fd(), &bytes, MsgFlags::MSG_NOSIGNAL) {
                Ok(_) => return Ok(()),
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(Error::sys("send", "sync socket", e)),
            }
        }
    }

    /// Sends one message with descriptors attached (SCM_RIGHTS).
    pub fn send_with_fds(&self, msg: &Msg, fds: &[OwnedFd]) -> Result<()> {
        if fds.is_empty() {
            return self.send(msg);
        }
        let bytes = msg.encode();
        let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
        let cmsg = [socket::ControlMessage::ScmRights(&raw)];
        let iov = [std::io::IoSlice::new(&bytes)];
        loop {
            match socket::sendmsg::<()>(
                self.0.as_raw_fd(),
                &iov,
                &cmsg,
                MsgFlags::MSG_NOSIGNAL,
                None,
            ) {
                Ok(_) => return Ok(()),
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(Error::sys("sendmsg", "sync socket (SCM_RIGHTS)", e)),
            }
        }
    }

    /// Receives one message and the descriptors sent with it.
    pub fn recv_with_fds(&self) -> Result<(Option<Msg>, Vec<OwnedFd>)> {
        let len = self.recv_raw(&mut [], MsgFlags::MSG_PEEK | MsgFlags::MSG_TRUNC)?;
        let mut buf = vec![0u8; len.max(1)];
        let mut space = nix::cmsg_space!([RawFd; 64]);
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let mut reset_seen = false;
        let msg = loop {
            match socket::recvmsg::<()>(
                self.0.as_raw_fd(),
                &mut iov,
                Some(&mut space),
                MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Ok(m) => break m,
                Err(Errno::EINTR) => continue,
                // See recv_raw: the pending reset comes before queued data.
                Err(Errno::ECONNRESET) if !reset_seen => reset_seen = true,
                Err(Errno::ECONNRESET) => return Ok((None, Vec::new())),
                Err(e) => return Err(Error::sys("recvmsg", "sync socket", e)),
            }
        };
        let mut fds = Vec::new();
        for c in msg
            .cmsgs()
            .map_err(|e| Error::sys("recvmsg", "control messages", e))?
        {
            if let socket::ControlMessageOwned::ScmRights(list) = c {
                fds.extend(list.into_iter().map(crate::sys::own_received_fd));
            }
        }
        let n = msg.bytes;
        if n == 0 {
            return Ok((None, fds));
        }
        Ok((Some(Msg::decode(&buf[..n])?), fds))
    }

    /// Receives one message; `None` at end-of-file (the peer closed or exec'd).
    pub fn recv(&self) -> Result<Option<Msg>> {
        // Most messages are a byte or two: read into a small stack buffer,
        // after peeking at the size so that a long one (a state JSON with
        // many annotations, an error) is never truncated.
        let mut small = [0u8; 512];
        let len = self.recv_raw(&mut [], MsgFlags::MSG_PEEK | MsgFlags::MSG_TRUNC)?;
        if len == 0 {
            return Ok(None);
        }
        let mut big = Vec::new();
        let buf: &mut [u8] = if len <= small.len() {
            &mut small
        } else {
            big.resize(len, 0);
            &mut big
        };
        let n = self.recv_raw(buf, MsgFlags::empty())?;
        if n == 0 {
            return Ok(None);
        }
        Msg::decode(&buf[..n]).map(Some)
    }

    /// Like [`Channel::recv`], but only what has already arrived: `None`
    /// when nothing has (or at end-of-file).
    pub fn try_recv(&self) -> Option<Msg> {
        let flags = MsgFlags::MSG_PEEK | MsgFlags::MSG_TRUNC | MsgFlags::MSG_DONTWAIT;
        match socket::recv(self.0.as_raw_fd(), &mut [], flags) {
            Ok(n) if n > 0 => self.recv().ok().flatten(),
            _ => None,
        }
    }

    fn recv_raw(&self, buf: &mut [u8], flags: MsgFlags) -> Result<usize> {
        // A peer that closed with our messages unread leaves ECONNRESET
        // pending; the kernel reports it once, before what the peer sent us
        // (its last words: an error message). Read on after it once.
        let mut reset_seen = false;
        loop {
            match socket::recv(self.0.as_raw_fd(), buf, flags) {
                Ok(n) => return Ok(n),
                Err(Errno::EINTR) => continue,
                Err(Errno::ECONNRESET) if !reset_seen => reset_seen = true,
                Err(Errno::ECONNRESET) => return Ok(0),
                Err(e) => return Err(Error::sys("recv", "sync socket", e)),
            }
        }
    }

    /// Receives one message and fails unless it is `want`; an `Error`
    /// message becomes [`Error::Init`].
    pub fn expect(&self, want: Msg) -> Result<()> {
        match self.recv()? {
            Some(m) if m == want => Ok(()),
            Some(Msg::Error(text)) => Err(Error::Init(text)),
            Some(other) => Err(Error::Other(format!(
                "sync: expected {want:?}, got {other:?}"
            ))),
            None => Err(Error::Init(format!(
                "the container process exited while the runtime waited for {want:?}"
            ))),
        }
    }

    /// After "start": waits until the process has exec'd its program
    /// (end-of-file) or reports why it could not; `program` names the
    /// program in the error.
    pub fn wait_exec(&self, program: impl FnOnce() -> String) -> Result<()> {
        match self.recv()? {
            None => Ok(()),
            Some(Msg::Error(text)) => Err(Error::Init(text)),
            Some(Msg::ExecFailed(step, errno)) => {
                let errno = Errno::from_raw(errno);
                let program = program();
                Err(Error::Init(if step == b'F' {
                    format!(
                        "exec {program:?}: marking the set-up channel close-on-exec failed: {errno}"
                    )
                } else {
                    format!("exec {program:?}: {errno}")
                }))
            }
            Some(other) => Err(Error::Other(format!(
                "sync: unexpected {other:?} while the process execs"
            ))),
        }
    }

    /// The raw descriptor, for polling.
    pub fn raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

impl AsFd for Channel {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.0.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        let (a, b) = Channel::pair().unwrap();
        for m in [
            Msg::Go("{}".into()),
            Msg::RunHooks,
            Msg::HooksDone,
            Msg::Ready,
            Msg::Start,
            Msg::Detached,
            Msg::Pid(4242),
            Msg::Error("mount /proc: EPERM".into()),
            Msg::ExecFailed(b'X', libc::ENOEXEC),
            Msg::Seccomp(vec![0, 1, 2, 255]),
            Msg::ExecFailed(b'F', libc::EPERM),
        ] {
            a.send(&m).unwrap();
            assert_eq!(b.recv().unwrap(), Some(m));
        }
        let long = "x".repeat(100_000);
        a.send(&Msg::Go(long.clone())).unwrap();
        assert_eq!(b.recv().unwrap(), Some(Msg::Go(long)));
        drop(a);
        assert_eq!(b.recv().unwrap(), None);
    }

    #[test]
    fn a_peer_that_closed_unread_still_delivers_its_last_message() {
        let (a, b) = Channel::pair().unwrap();
        // b's message to a stays unread when b closes; a's to b was sent.
        b.send(&Msg::Go("unread".into())).unwrap();
        a.send(&Msg::Error("init failed".into())).unwrap();
        drop(a);
        // b sees a's last words, then end-of-file.
        assert_eq!(b.recv().unwrap(), Some(Msg::Error("init failed".into())));
        assert_eq!(b.recv().unwrap(), None);
    }

    #[test]
    fn descriptors_travel_with_a_message() {
        let (a, b) = Channel::pair().unwrap();
        let file = std::fs::File::open("/proc/self/stat").unwrap();
        a.send_with_fds(&Msg::Go("s".into()), &[OwnedFd::from(file)])
            .unwrap();
        let (msg, fds) = b.recv_with_fds().unwrap();
        assert_eq!(msg, Some(Msg::Go("s".into())));
        assert_eq!(fds.len(), 1);
        a.send(&Msg::Start).unwrap();
        let (msg, fds) = b.recv_with_fds().unwrap();
        assert_eq!((msg, fds.len()), (Some(Msg::Start), 0));
    }

    #[test]
    fn listen_connect_accept_keep_message_boundaries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sock");
        let dir_fd = std::fs::File::open(dir.path()).unwrap();
        let listener = Channel::listen(dir_fd.as_fd(), dir.path(), "sock").unwrap();
        let client = Channel::connect(&path).unwrap();
        let server = Channel::accept(&listener).unwrap();
        client.send(&Msg::Start).unwrap();
        assert_eq!(server.recv().unwrap(), Some(Msg::Start));
        server.send(&Msg::Error("hook failed".into())).unwrap();
        assert_eq!(
            client.recv().unwrap(),
            Some(Msg::Error("hook failed".into()))
        );
        drop(server);
        assert_eq!(client.recv().unwrap(), None);
    }

    #[test]
    fn expect_turns_error_messages_into_init_errors() {
        let (a, b) = Channel::pair().unwrap();
        a.send(&Msg::Error("boom".into())).unwrap();
        assert!(matches!(b.expect(Msg::Ready), Err(Error::Init(t)) if t == "boom"));
    }
}
