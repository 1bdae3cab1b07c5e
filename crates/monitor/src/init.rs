//! `capsa-init`, the small init of `run --init` (the role tini plays for
//! Docker): it runs as the container's PID 1, starts the command as its
//! child, forwards every signal it receives to it, reaps every zombie
//! (orphans are re-parented to PID 1), and exits with the command's status
//! (128 + N when a signal N killed it).
//!
//! Usage: `capsa-init -- COMMAND [ARG...]`.

use crate::sys::{self, Argv, Exit, PollFd, SigSet, sig};
use crate::text::Buf;

/// The search path when the environment has no PATH (Docker's default).
const DEFAULT_PATH: &[u8] = b"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn say(parts: &[&[u8]]) {
    let mut b = Buf::<1024>::new();
    b.push(b"capsa-init: ");
    for p in parts {
        b.push(p);
    }
    b.byte(b'\n');
    let _ = sys::write_all(2, b.as_bytes());
}

fn errno_text(e: sys::Errno) -> &'static [u8] {
    match e {
        sys::errno::ENOENT => b"no such file or directory",
        sys::errno::EACCES => b"permission denied",
        sys::errno::ENOEXEC => b"exec format error",
        sys::errno::ENOTDIR => b"not a directory",
        _ => b"cannot execute",
    }
}

/// Execs the command at `args.from(first)`, searching PATH for a name
/// without a slash, as execvp does; returns the exit status to use when it
/// cannot (127 not found, 126 not executable).
fn exec_command(args: &Argv, first: usize) -> i32 {
    let Some(name) = args.get(first) else {
        say(&[b"no command given (usage: capsa-init -- COMMAND [ARG...])"]);
        return 2;
    };
    let argv = args.from(first);
    let try_exec = |path: &[u8]| -> sys::Errno {
        match sys::CStr::new(path) {
            Some(p) => sys::execve(p.ptr(), argv, args.envp()),
            None => sys::errno::ENOENT,
        }
    };
    if name.contains(&b'/') {
        let e = try_exec(name);
        say(&[b"exec ", name, b": ", errno_text(e)]);
        return if e == sys::errno::ENOENT { 127 } else { 126 };
    }
    let path = args.env(b"PATH").unwrap_or(DEFAULT_PATH);
    let mut denied = None;
    for dir in path.split(|&b| b == b':') {
        let mut full = Buf::<4096>::new();
        full.push(if dir.is_empty() { b"." } else { dir })
            .byte(b'/')
            .push(name);
        if full.overflowed() {
            continue;
        }
        match try_exec(full.as_bytes()) {
            sys::errno::ENOENT | sys::errno::ENOTDIR => {}
            e => denied = Some(e),
        }
    }
    match denied {
        Some(e) => {
            say(&[b"exec ", name, b": ", errno_text(e)]);
            126
        }
        None => {
            say(&[b"exec ", name, b": executable file not found in $PATH"]);
            127
        }
    }
}

/// Runs the init; returns its exit status.
pub fn run(args: &Argv) -> i32 {
    let first = match args.get(1) {
        Some(b"--") => 2,
        _ => 1,
    };
    let all = SigSet::all_catchable();
    if sys::set_sigmask(all).is_err() {
        return 1;
    }
    let Ok(sfd) = sys::signalfd(all) else {
        say(&[b"signalfd failed"]);
        return 1;
    };
    if sys::getpid() != 1 {
        // Not PID 1 (run by hand): orphans must still come to us.
        let _ = sys::set_child_subreaper();
    }
    let child = match sys::fork() {
        Ok(0) => {
            sys::close(sfd);
            if sys::isatty(0) {
                // Its own process group in the terminal's foreground, for
                // job control (SIGTTOU is still blocked here).
                let _ = sys::setpgid_self();
                let _ = sys::tcsetpgrp(0, sys::getpid());
            }
            let _ = sys::set_sigmask(SigSet(0));
            sys::exit(exec_command(args, first));
        }
        Ok(pid) => pid,
        Err(_) => {
            say(&[b"fork failed"]);
            return 1;
        }
    };
    loop {
        let mut fds = [PollFd {
            fd: sfd,
            events: sys::poll::IN,
            revents: 0,
        }];
        if sys::poll(&mut fds, -1).is_err() {
            continue;
        }
        while let Some(s) = sys::read_signal(sfd) {
            if s != sig::CHLD {
                // The child may have exited already; nothing to do then.
                let _ = sys::kill(child, s);
                continue;
            }
            while let Ok(Some((pid, how))) = sys::reap_any() {
                if pid == child {
                    return exit_status(how);
                }
            }
        }
    }
}

fn exit_status(how: Exit) -> i32 {
    how.status()
}
