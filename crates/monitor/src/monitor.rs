//! The monitor of one container (capsa's conmon). It is exec'd by the
//! process that created the container, so the container's init process is
//! its child and it is a child subreaper; it starts nothing itself:
//!
//! - reads the container's stdout/stderr (pipes or the pty master), writes
//!   them to the json-file log and to the attached clients;
//! - serves `attach.sock` in the container directory: a client sends the
//!   descriptors that should receive the output (SCM_RIGHTS) and may ask
//!   for the container's stdin (or pty master), which it then writes itself;
//! - reaps the init process, drains the output, writes the `exit` file
//!   (status, signal, finish time), tells every client `exit N`, and execs
//!   `capsa __exited ID` to record the exit and apply `--rm` and the restart
//!   policy.
//!
//! Arguments are `key=value` words (see [`Config::parse`]).

use crate::log::{JsonLog, Lines, Stream};
use crate::sys::{self, Exit, Fd, PollFd, SigSet, sig};
use crate::text::{self, Buf};

/// Most clients attached at once.
const MAX_CLIENTS: usize = 16;
/// How long output is drained after the init process exits (ms), for
/// writers that outlive it (processes outside the container's pid namespace).
const DRAIN_MS: i64 = 2000;
/// The attach socket's name in the container directory.
pub const ATTACH_SOCKET: &[u8] = b"attach.sock";
/// The exit status file's name in the container directory.
pub const EXIT_FILE: &[u8] = b"exit";

/// What the monitor is given.
#[derive(Debug)]
pub struct Config<'a> {
    /// The container directory (absolute); the monitor works in it.
    pub dir: &'a [u8],
    /// The container's id.
    pub id: &'a [u8],
    /// The init process's pid (a child of this process).
    pub pid: i32,
    /// Read end of the container's stdout pipe, or -1.
    pub out: Fd,
    /// Read end of the container's stderr pipe, or -1.
    pub err: Fd,
    /// The pty master when the container has a terminal, or -1.
    pub pty: Fd,
    /// The container's stdin (pipe write end or pty master) handed to
    /// clients that ask for it, or -1.
    pub stdin: Fd,
    /// Hand stdin to the first client only and close it here (Docker's StdinOnce).
    pub stdin_once: bool,
    /// Socket to the command that launched the container, or -1: its end
    /// closing means it is gone.
    pub link: Fd,
    /// That command's stdout and stderr, which receive the output while it lives.
    pub client_out: Fd,
    /// See `client_out`.
    pub client_err: Fd,
    /// The json-file log's name in the directory (empty: no log).
    pub log: &'a [u8],
    /// Rotate the log at this size (0: never).
    pub max_size: u64,
    /// Log files kept.
    pub max_file: u32,
    /// The `capsa` binary to exec when the container has exited (empty: exit).
    pub exe: &'a [u8],
    /// capsa's `--root`.
    pub root: &'a [u8],
    /// The attach socket, bound and listening already, or -1 (bind it here).
    pub listen: Fd,
}

impl<'a> Config<'a> {
    /// Parses `key=value` arguments.
    pub fn parse(args: &[&'a [u8]]) -> Result<Config<'a>, &'a [u8]> {
        let mut c = Config {
            dir: b"",
            id: b"",
            pid: 0,
            out: -1,
            err: -1,
            pty: -1,
            stdin: -1,
            stdin_once: false,
            link: -1,
            client_out: -1,
            client_err: -1,
            log: b"",
            max_size: 0,
            max_file: 1,
            exe: b"",
            root: b"",
            listen: -1,
        };
        for &a in args {
            let Some(eq) = a.iter().position(|&b| b == b'=') else {
                return Err(a);
            };
            let (k, v) = (&a[..eq], &a[eq + 1..]);
            let fd = || text::parse_fd(v).ok_or(a);
            match k {
                b"dir" => c.dir = v,
                b"id" => c.id = v,
                b"pid" => c.pid = text::parse_fd(v).filter(|&p| p > 0).ok_or(a)?,
                b"out" => c.out = fd()?,
                b"err" => c.err = fd()?,
                b"pty" => c.pty = fd()?,
                b"stdin" => c.stdin = fd()?,
                b"stdin-once" => c.stdin_once = v == b"1",
                b"link" => c.link = fd()?,
                b"client-out" => c.client_out = fd()?,
                b"client-err" => c.client_err = fd()?,
                b"log" => c.log = v,
                b"max-size" => c.max_size = text::parse_u64(v).ok_or(a)?,
                b"max-file" => c.max_file = text::parse_u64(v).ok_or(a)? as u32,
                b"exe" => c.exe = v,
                b"root" => c.root = v,
                b"listen" => c.listen = fd()?,
                _ => return Err(a),
            }
        }
        if c.dir.is_empty() || c.id.is_empty() || c.pid == 0 {
            return Err(b"dir=, id= and pid= are required");
        }
        Ok(c)
    }
}

#[derive(Clone, Copy)]
struct Client {
    sock: Fd,
    out: Fd,
    err: Fd,
    /// It has said what it wants (the launcher's link is ready at once).
    ready: bool,
}

impl Client {
    const NONE: Client = Client {
        sock: -1,
        out: -1,
        err: -1,
        ready: false,
    };

    fn close(&mut self) {
        sys::close(self.sock);
        if self.err != self.out {
            sys::close(self.err);
        }
        sys::close(self.out);
        *self = Client::NONE;
    }
}

struct Monitor<'a> {
    cfg: &'a Config<'a>,
    clients: [Client; MAX_CLIENTS],
    stdin: Fd,
    log: Option<JsonLog>,
    lines: [Lines; 2],
}

impl Monitor<'_> {
    fn output(&mut self, stream: Stream, data: &[u8]) {
        let now = sys::clock(0);
        let idx = (stream == Stream::Stderr) as usize;
        if let Some(log) = self.log.as_mut() {
            // A full disk must not stop the container: the message is lost.
            self.lines[idx].feed(data, &mut |m| {
                let _ = log.write(stream, m, now);
            });
        }
        for c in self.clients.iter_mut().filter(|c| c.ready) {
            let fd = if stream == Stream::Stderr {
                c.err
            } else {
                c.out
            };
            if fd >= 0 && sys::write_all(fd, data).is_err() {
                c.close();
            }
        }
    }

    fn flush_lines(&mut self) {
        let now = sys::clock(0);
        if let Some(log) = self.log.as_mut() {
            for (i, stream) in [(0, Stream::Stdout), (1, Stream::Stderr)] {
                self.lines[i].flush(&mut |m| {
                    let _ = log.write(stream, m, now);
                });
            }
        }
    }

    /// A client's request: `A` then letters: `o`/`e` (a descriptor for
    /// stdout/stderr follows, in that order), `i` (send me stdin), `w`
    /// (only wait for the exit).
    fn request(&mut self, slot: usize) {
        let mut data = [0u8; 16];
        let mut fds = [-1; sys::MAX_FDS];
        let c = &mut self.clients[slot];
        let (n, count) = match sys::recv_with_fds(c.sock, &mut data, &mut fds) {
            Ok((n, count)) if n > 0 && data[0] == b'A' => (n, count),
            Ok((_, count)) => {
                fds[..count].iter().for_each(|&f| sys::close(f));
                c.close();
                return;
            }
            Err(sys::errno::EAGAIN) => return,
            Err(_) => {
                c.close();
                return;
            }
        };
        let flags = &data[1..n];
        let mut next = 0;
        let mut take = |wanted: bool| {
            if wanted && next < count {
                next += 1;
                fds[next - 1]
            } else {
                -1
            }
        };
        c.out = take(flags.contains(&b'o'));
        c.err = take(flags.contains(&b'e'));
        fds[next..count].iter().for_each(|&f| sys::close(f));
        c.ready = true;
        let give = flags.contains(&b'i') && self.stdin >= 0;
        let sent = if give {
            sys::send_with_fds(c.sock, b"ok\n", &[self.stdin])
        } else {
            sys::send_with_fds(c.sock, b"ok\n", &[])
        };
        if sent.is_err() {
            c.close();
        } else if give && self.cfg.stdin_once {
            sys::close(self.stdin);
            self.stdin = -1;
        }
    }

    fn finish(&mut self, exit: Exit) {
        self.flush_lines();
        self.log = None;
        let (secs, nanos) = sys::clock(0);
        let mut f = Buf::<128>::new();
        f.push(b"status=").num(exit.status() as i64).byte(b'\n');
        if let Exit::Signal(s) = exit {
            f.push(b"signal=").num(s as i64).byte(b'\n');
        }
        f.push(b"finished=")
            .num(secs * 1_000_000_000 + nanos as i64)
            .byte(b'\n');
        let _ = write_file_atomic(EXIT_FILE, f.as_bytes());
        let mut msg = Buf::<32>::new();
        msg.push(b"exit ").num(exit.status() as i64).byte(b'\n');
        for c in self.clients.iter_mut() {
            if c.sock >= 0 {
                let _ = sys::send_with_fds(c.sock, msg.as_bytes(), &[]);
            }
            c.close();
        }
        sys::close(self.stdin);
        self.stdin = -1;
    }
}

/// Writes `name` through a temporary file and a rename.
fn write_file_atomic(name: &[u8], data: &[u8]) -> sys::SysResult<()> {
    let mut tmp = Buf::<64>::new();
    tmp.push(name).push(b".tmp");
    let fd = sys::open(
        tmp.as_bytes(),
        sys::o::WRONLY | sys::o::CREAT | sys::o::TRUNC | sys::o::CLOEXEC,
        0o600,
    )?;
    let r = sys::write_all(fd, data);
    sys::close(fd);
    r?;
    sys::rename(tmp.as_bytes(), name)
}

/// Reads what a source has; `false` when it is closed.
fn drain(fd: Fd, buf: &mut [u8], mut sink: impl FnMut(&[u8])) -> bool {
    match sys::read(fd, buf) {
        Ok(0) => false,
        Ok(n) => {
            sink(&buf[..n]);
            true
        }
        Err(sys::errno::EAGAIN) => true,
        // EIO: the pty's last slave descriptor is closed.
        Err(_) => false,
    }
}

/// Runs the monitor; returns only if it cannot exec capsa afterwards
/// (the exit code of the monitor).
pub fn run(cfg: &Config<'_>, envp: *const *const u8) -> i32 {
    // Signals arrive on a descriptor; SIGPIPE is ignored (writes to gone
    // clients fail with EPIPE instead).
    let _ = sys::set_ignored(sig::PIPE, true);
    let watched = SigSet::of(&[sig::CHLD, sig::TERM, sig::INT, sig::HUP]);
    if sys::set_sigmask(watched).is_err() {
        return 125;
    }
    let Ok(sfd) = sys::signalfd(watched) else {
        return 125;
    };
    if sys::chdir(cfg.dir).is_err() {
        return 125;
    }
    let listener = if cfg.listen >= 0 {
        let _ = sys::set_cloexec(cfg.listen, true);
        cfg.listen
    } else {
        sys::listen_unix(ATTACH_SOCKET).unwrap_or(-1)
    };
    let log = if cfg.log.is_empty() {
        None
    } else {
        JsonLog::open(cfg.log, cfg.max_size, cfg.max_file).ok()
    };
    let mut m = Monitor {
        cfg,
        clients: [Client::NONE; MAX_CLIENTS],
        stdin: cfg.stdin,
        log,
        lines: [Lines::new(), Lines::new()],
    };
    if cfg.link >= 0 {
        m.clients[0] = Client {
            sock: cfg.link,
            out: cfg.client_out,
            err: cfg.client_err,
            ready: true,
        };
    }
    let mut sources = [
        if cfg.pty >= 0 { cfg.pty } else { cfg.out },
        if cfg.pty >= 0 { -1 } else { cfg.err },
    ];
    for &s in &sources {
        if s >= 0 {
            let _ = sys::set_nonblock(s);
        }
    }
    let mut exited: Option<Exit> = None;
    let mut deadline = 0i64;
    let reap = |exited: &mut Option<Exit>, deadline: &mut i64| {
        while let Ok(Some((pid, how))) = sys::reap_any() {
            if pid == cfg.pid {
                *exited = Some(how);
                *deadline = sys::monotonic_ms() + DRAIN_MS;
            }
        }
    };
    // The init may have ended before this program started: its SIGCHLD is
    // gone, its zombie is not.
    reap(&mut exited, &mut deadline);
    let mut buf = [0u8; 32 * 1024];
    loop {
        if let Some(e) = exited
            && (sources.iter().all(|&s| s < 0) || sys::monotonic_ms() >= deadline)
        {
            m.finish(e);
            break;
        }
        let mut fds = [PollFd::default(); 4 + MAX_CLIENTS];
        fds[0].fd = sfd;
        fds[1].fd = sources[0];
        fds[2].fd = sources[1];
        fds[3].fd = if exited.is_none() { listener } else { -1 };
        for (i, c) in m.clients.iter().enumerate() {
            fds[4 + i].fd = c.sock;
        }
        for f in fds.iter_mut() {
            f.events = sys::poll::IN;
        }
        let timeout = match exited {
            Some(_) => (deadline - sys::monotonic_ms()).max(0),
            None => -1,
        };
        if sys::poll(&mut fds, timeout).is_err() {
            continue;
        }
        if fds[0].revents != 0 {
            while let Some(s) = sys::read_signal(sfd) {
                if s == sig::CHLD {
                    reap(&mut exited, &mut deadline);
                }
            }
        }
        for (i, stream) in [(0, Stream::Stdout), (1, Stream::Stderr)] {
            if sources[i] >= 0 && fds[1 + i].revents != 0 {
                let open = drain(sources[i], &mut buf, |d| m.output(stream, d));
                if !open {
                    if sources[i] != cfg.pty {
                        sys::close(sources[i]);
                    }
                    sources[i] = -1;
                }
            }
        }
        if fds[3].revents != 0
            && let Ok(sock) = sys::accept(listener)
        {
            match m.clients.iter_mut().find(|c| c.sock < 0) {
                Some(slot) => {
                    *slot = Client {
                        sock,
                        ..Client::NONE
                    }
                }
                None => sys::close(sock),
            }
        }
        for i in 0..MAX_CLIENTS {
            let c = m.clients[i];
            if c.sock < 0 || fds[4 + i].revents == 0 || fds[4 + i].fd != c.sock {
                continue;
            }
            if !c.ready {
                m.request(i);
            } else {
                // A ready client sends nothing more: readable means gone.
                let mut b = [0u8; 16];
                match sys::read(c.sock, &mut b) {
                    Ok(0) | Err(_) => m.clients[i].close(),
                    Ok(_) => {}
                }
            }
        }
    }
    sys::close(listener);
    let _ = sys::unlink(ATTACH_SOCKET);
    if cfg.pty >= 0 {
        sys::close(cfg.pty);
    }
    if cfg.exe.is_empty() {
        return 0;
    }
    // Pending signals are taken off the descriptor before they are unblocked.
    while sys::read_signal(sfd).is_some() {}
    sys::close(sfd);
    let _ = sys::set_sigmask(SigSet(0));
    let args: [&[u8]; 5] = [cfg.exe, b"--root", cfg.root, b"__exited", cfg.id];
    let err = sys::exec(&args, envp);
    let _ = err;
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments() {
        let args: [&[u8]; 6] = [
            b"dir=/x",
            b"id=abc",
            b"pid=42",
            b"out=3",
            b"max-size=1000",
            b"stdin=-1",
        ];
        let c = Config::parse(&args).unwrap();
        assert_eq!(
            (c.dir, c.id, c.pid, c.out, c.max_size),
            (&b"/x"[..], &b"abc"[..], 42, 3, 1000)
        );
        assert_eq!(c.stdin, -1);
        assert!(Config::parse(&[b"dir=/x", b"pid=1"]).is_err());
        assert_eq!(
            Config::parse(&[b"dir=/x", b"id=a", b"pid=1", b"bogus=1"]).unwrap_err(),
            b"bogus=1"
        );
        assert!(Config::parse(&[b"dir=/x", b"id=a", b"pid=x"]).is_err());
    }
}
