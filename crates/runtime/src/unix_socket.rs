//! AF_UNIX sockets bound and connected by path, whatever the path's length.
//!
//! A socket address holds at most 107 bytes of path (`sun_path` and its
//! NUL), but a state root plus a 64-character container id is often longer
//! (Docker's `/var/run/docker/runtime-runc/moby/<id>/start.sock` is 109
//! bytes), and so may be a caller's `--console-socket` or seccomp
//! `listenerPath`. A path that fits is used as it is, at no extra cost; a
//! longer one is reached through `/proc/self/fd`, which the kernel resolves
//! like any other path: `bind` through a descriptor of the directory
//! (`/proc/self/fd/N/NAME`), `connect` through an `O_PATH` descriptor of the
//! socket itself (`/proc/self/fd/N`, whatever its name's length).

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::fcntl::{OFlag, open};
use nix::sys::socket::{self, AddressFamily, SockFlag, SockType, UnixAddr};
use nix::sys::stat::Mode;

/// The size of `sun_path`, the terminating NUL included.
const SUN_PATH_SIZE: usize = 108;

/// Whether `path` fits in a socket address as it is.
fn fits(path: &Path) -> bool {
    path.as_os_str().len() < SUN_PATH_SIZE
}

/// A new close-on-exec AF_UNIX socket of `kind`.
pub fn new(kind: SockType) -> nix::Result<OwnedFd> {
    socket::socket(AddressFamily::Unix, kind, SockFlag::SOCK_CLOEXEC, None)
}

/// Connects `sock` to the socket at `path` (any length; symlinks are
/// followed, as `connect` does).
pub fn connect(sock: BorrowedFd, path: &Path) -> nix::Result<()> {
    if fits(path) {
        return socket::connect(sock.as_raw_fd(), &UnixAddr::new(path)?);
    }
    let inode = open(path, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())?;
    let via_proc = format!("/proc/self/fd/{}", inode.as_raw_fd());
    socket::connect(sock.as_raw_fd(), &UnixAddr::new(via_proc.as_str())?)
}

/// A new close-on-exec AF_UNIX socket of `kind` connected to `path`.
pub fn connect_new(kind: SockType, path: &Path) -> nix::Result<OwnedFd> {
    let sock = new(kind)?;
    connect(std::os::fd::AsFd::as_fd(&sock), path)?;
    Ok(sock)
}

/// Binds `sock` to a new socket named `name` in the directory `dir`, which
/// is open at `dir_path` (any length of `dir_path`).
pub fn bind_in(sock: BorrowedFd, dir: BorrowedFd, dir_path: &Path, name: &str) -> nix::Result<()> {
    let path = dir_path.join(name);
    let addr = if fits(&path) {
        UnixAddr::new(&path)?
    } else {
        UnixAddr::new(format!("/proc/self/fd/{}/{name}", dir.as_raw_fd()).as_str())?
    };
    socket::bind(sock.as_raw_fd(), &addr)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    /// A directory whose path is far longer than a socket address holds.
    fn long_dir(base: &Path) -> std::path::PathBuf {
        let dir = base.join("d".repeat(100)).join("e".repeat(64));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn bind_connect_and_talk(dir: &Path, name: &str) {
        let dir_fd = std::fs::File::open(dir).unwrap();
        let listener = new(SockType::SeqPacket).unwrap();
        bind_in(listener.as_fd(), dir_fd.as_fd(), dir, name).unwrap();
        socket::listen(&listener, socket::Backlog::new(1).unwrap()).unwrap();
        let path = dir.join(name);
        assert!(path.exists(), "{} was not made", path.display());
        let client = connect_new(SockType::SeqPacket, &path).unwrap();
        let server = socket::accept(listener.as_raw_fd()).unwrap();
        socket::send(client.as_raw_fd(), b"hi", socket::MsgFlags::empty()).unwrap();
        let mut buf = [0u8; 8];
        let n = socket::recv(server, &mut buf, socket::MsgFlags::empty()).unwrap();
        assert_eq!(&buf[..n], b"hi");
        let _ = nix::unistd::close(server);
    }

    #[test]
    fn short_paths_are_used_as_they_are() {
        let base = tempfile::tempdir().unwrap();
        assert!(fits(&base.path().join("start.sock")));
        bind_connect_and_talk(base.path(), "start.sock");
    }

    #[test]
    fn paths_longer_than_a_socket_address_bind_and_connect() {
        let base = tempfile::tempdir().unwrap();
        let dir = long_dir(base.path());
        assert!(!fits(&dir.join("start.sock")));
        bind_connect_and_talk(&dir, "start.sock");
        // A name that alone fills most of an address (bind reaches it as
        // /proc/self/fd/N/NAME, so it must fit there).
        bind_connect_and_talk(&dir, &"n".repeat(80));
    }

    #[test]
    fn a_missing_long_path_is_enoent() {
        let base = tempfile::tempdir().unwrap();
        let dir = long_dir(base.path());
        let err = connect_new(SockType::Stream, &dir.join("missing.sock")).unwrap_err();
        assert_eq!(err, nix::errno::Errno::ENOENT);
    }
}
