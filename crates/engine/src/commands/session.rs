//! Staying attached to a container from the command line: our stdin
//! copied to the container (with the detach keys in terminal mode), our
//! terminal in raw mode and its size following ours, signals proxied, until
//! the monitor says `exit N`. The container's output does not pass through
//! here: the monitor writes it to our stdout/stderr itself.

use std::io::Read as _;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use anyhow::{Context as _, Result, bail};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::termios::{SetArg, Termios, cfmakeraw, tcgetattr, tcsetattr};

use crate::container::attach::read_exit;

/// Docker's default detach sequence: ctrl-p, ctrl-q.
pub const DEFAULT_DETACH_KEYS: &str = "ctrl-p,ctrl-q";

/// Parses Docker's `--detach-keys` (`ctrl-p,ctrl-q`, `a,b`, `ctrl-@`...).
pub fn parse_detach_keys(s: &str) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    for k in s.split(',') {
        let k = k.trim();
        if let Some(c) = k.strip_prefix("ctrl-") {
            let b = match c.as_bytes() {
                [b @ b'a'..=b'z'] => b - b'a' + 1,
                [b'@'] => 0,
                [b'['] => 27,
                [b'\\'] => 28,
                [b']'] => 29,
                [b'^'] => 30,
                [b'_'] => 31,
                _ => bail!("Invalid detach keys ({s}) provided"),
            };
            out.push(b);
        } else if k.len() == 1 {
            out.push(k.as_bytes()[0]);
        } else {
            bail!("Invalid detach keys ({s}) provided");
        }
    }
    if out.is_empty() {
        bail!("Invalid detach keys ({s}) provided");
    }
    Ok(out)
}

/// How the session ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The container exited with this status.
    Exited(i32),
    /// The user typed the detach keys.
    Detached,
    /// The monitor went away without a status.
    Gone,
}

/// Our terminal in raw mode while it lives.
pub struct RawTerminal {
    saved: Option<Termios>,
}

impl RawTerminal {
    /// Raw mode for our stdin, if it is a terminal.
    pub fn enter() -> RawTerminal {
        let stdin = std::io::stdin();
        let saved = tcgetattr(stdin.as_fd()).ok();
        if let Some(t) = &saved {
            let mut raw = t.clone();
            cfmakeraw(&mut raw);
            let _ = tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw);
        }
        RawTerminal { saved }
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            let _ = tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, t);
        }
    }
}

/// Copies our terminal's size to the container's pty master.
pub fn resize(master: BorrowedFd<'_>) {
    if let Ok(ws) = capsa_runtime::sys::get_winsize(std::io::stdout().as_fd())
        .or_else(|_| capsa_runtime::sys::get_winsize(std::io::stdin().as_fd()))
    {
        let _ = capsa_runtime::sys::set_winsize(master, &ws);
    }
}

/// What a session works with.
pub struct Session<'a> {
    /// Readable when `exit N` arrives (the link or an attach socket).
    pub link: BorrowedFd<'a>,
    /// The container's stdin (pipe or pty master) we copy our stdin to.
    pub stdin: Option<OwnedFd>,
    /// The container has a terminal (the stdin above is its master).
    pub tty: bool,
    /// The container's pty master, whose window size follows ours (also
    /// when our stdin is not copied to it: `run -t` without `-i`).
    pub pty: Option<OwnedFd>,
    /// The detach sequence (terminal mode only).
    pub detach_keys: Vec<u8>,
    /// Forward our signals to this pid (the container's init), when > 0.
    pub proxy_to: i32,
}

/// Signals proxied to the container: all but those that concern us only.
fn proxied() -> SigSet {
    let mut set = SigSet::empty();
    for s in Signal::iterator() {
        if !matches!(
            s,
            Signal::SIGKILL
                | Signal::SIGSTOP
                | Signal::SIGCHLD
                | Signal::SIGPIPE
                | Signal::SIGURG
                | Signal::SIGWINCH
                | Signal::SIGSEGV
                | Signal::SIGBUS
                | Signal::SIGILL
                | Signal::SIGFPE
                | Signal::SIGTRAP
                | Signal::SIGTSTP
                | Signal::SIGTTIN
                | Signal::SIGTTOU
        ) {
            set.add(s);
        }
    }
    set
}

/// Runs the session until the container exits, the user detaches or the
/// monitor goes.
pub fn run(mut s: Session<'_>) -> Result<Outcome> {
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGWINCH);
    if s.proxy_to > 0 {
        for sig in proxied().iter() {
            mask.add(sig);
        }
    }
    mask.thread_block().context("sigprocmask")?;
    let sfd = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .context("signalfd")?;
    let _raw = (s.tty && s.stdin.is_some()).then(RawTerminal::enter);
    if let Some(m) = &s.pty {
        resize(m.as_fd());
    }
    let stdin = std::io::stdin();
    let mut matched = 0usize;
    let mut buf = vec![0u8; 32 * 1024];
    let outcome = loop {
        let stdin_open = s.stdin.is_some();
        let mut fds = vec![
            PollFd::new(s.link, PollFlags::POLLIN),
            PollFd::new(sfd.as_fd(), PollFlags::POLLIN),
        ];
        if stdin_open {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            r => {
                r.context("poll")?;
            }
        }
        let ready = |i: usize| {
            fds.get(i)
                .and_then(|f| f.revents())
                .is_some_and(|r| !r.is_empty())
        };
        let (link_ready, sig_ready, in_ready) = (ready(0), ready(1), ready(2));
        drop(fds);
        if sig_ready {
            while let Ok(Some(info)) = sfd.read_signal() {
                let signo = info.ssi_signo as i32;
                if signo == libc::SIGWINCH {
                    if let Some(m) = &s.pty {
                        resize(m.as_fd());
                    }
                } else if s.proxy_to > 0 {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(s.proxy_to),
                        Signal::try_from(signo).ok(),
                    );
                }
            }
        }
        if in_ready {
            let n = std::io::stdin().lock().read(&mut buf).unwrap_or(0);
            if n == 0 {
                // Our stdin ended: so does the container's (StdinOnce).
                s.stdin = None;
            } else if let Some(dst) = &s.stdin {
                let mut data = &buf[..n];
                let mut out = Vec::with_capacity(n);
                if s.tty && !s.detach_keys.is_empty() {
                    for &b in data {
                        if b == s.detach_keys[matched] {
                            matched += 1;
                            if matched == s.detach_keys.len() {
                                break;
                            }
                        } else {
                            out.extend_from_slice(&s.detach_keys[..matched]);
                            matched = 0;
                            if b == s.detach_keys[0] {
                                matched = 1;
                            } else {
                                out.push(b);
                            }
                        }
                    }
                    if matched == s.detach_keys.len() {
                        if !out.is_empty() {
                            let _ = write_all(dst.as_fd(), &out);
                        }
                        break Outcome::Detached;
                    }
                    data = &out;
                }
                if write_all(dst.as_fd(), data).is_err() {
                    s.stdin = None;
                }
            }
        }
        if link_ready {
            break match read_exit(s.link.as_raw_fd())? {
                Some(code) => Outcome::Exited(code),
                None => Outcome::Gone,
            };
        }
    };
    let _ = mask.thread_unblock();
    Ok(outcome)
}

fn write_all(fd: BorrowedFd<'_>, mut data: &[u8]) -> nix::Result<()> {
    while !data.is_empty() {
        match nix::unistd::write(fd, data) {
            Ok(n) => data = &data[n..],
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys() {
        assert_eq!(parse_detach_keys("ctrl-p,ctrl-q").unwrap(), [16, 17]);
        assert_eq!(parse_detach_keys("a,ctrl-@").unwrap(), [b'a', 0]);
        assert!(parse_detach_keys("ctrl-").is_err());
        assert!(parse_detach_keys("abc").is_err());
    }
}
