//! Relaying a container's pty to our own stdio, for `run` and `exec` with a
//! terminal and no console socket.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::thread::JoinHandle;

use anyhow::Context as _;
use nix::sys::termios::{SetArg, Termios, cfmakeraw, tcgetattr, tcsetattr};

/// Copies stdin to the pty master and the master to stdout until the
/// container side closes.
pub struct Proxy {
    master: File,
    output: JoinHandle<()>,
    saved: Option<Termios>,
}

impl Proxy {
    /// Puts our terminal (if stdin is one) in raw mode and starts copying.
    pub fn start(master: OwnedFd) -> anyhow::Result<Proxy> {
        let master = File::from(master);
        let stdin = std::io::stdin();
        let saved = tcgetattr(stdin.as_fd()).ok();
        if let Some(t) = &saved {
            let mut raw = t.clone();
            cfmakeraw(&mut raw);
            tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw)
                .context("setting the terminal to raw mode")?;
        }
        let proxy_in = master.try_clone().context("dup pty master")?;
        let mut proxy_out = master.try_clone().context("dup pty master")?;
        // The input thread ends with the process: it may block on our stdin.
        std::thread::spawn(move || {
            let mut to = proxy_in;
            let mut buf = [0u8; 8192];
            let mut from = std::io::stdin();
            while let Ok(n) = from.read(&mut buf) {
                if n == 0 || to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        });
        let output = std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            let mut out = std::io::stdout();
            // EIO means the last slave descriptor closed: the container is done.
            while let Ok(n) = proxy_out.read(&mut buf) {
                if n == 0 || out.write_all(&buf[..n]).is_err() {
                    break;
                }
                let _ = out.flush();
            }
        });
        let p = Proxy {
            master,
            output,
            saved,
        };
        p.resize();
        Ok(p)
    }

    /// Copies our terminal's window size to the container's pty.
    pub fn resize(&self) {
        if let Ok(ws) = capsa_runtime::sys::get_winsize(std::io::stdin().as_fd()) {
            let _ = capsa_runtime::sys::set_winsize(self.master.as_fd(), &ws);
        }
    }

    /// Waits for the output to drain and restores our terminal.
    pub fn finish(self) {
        let _ = self.output.join();
        if let Some(t) = &self.saved {
            let _ = tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, t);
        }
    }
}
