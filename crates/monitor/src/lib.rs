//! capsa's container monitor and init, in one small program without a C
//! library (it makes its system calls itself, see [`sys`]):
//!
//! - `capsa-monitor key=value...` ([`monitor`]): holds one container's
//!   stdio, writes its json-file log, serves attach clients, reaps it and
//!   records how it exited;
//! - `capsa-init -- COMMAND...` ([`init`]): the container's PID 1 of
//!   `run --init`, forwarding signals and reaping zombies.
//!
//! `cargo` builds this crate as a library (linted and unit-tested with std);
//! the `capsa` engine's build script compiles the same source with
//! `--cfg capsa_monitor_bin` into the static program, whose entry point,
//! panic handler and memory functions are in [`entry`].

#![cfg_attr(not(test), no_std)]
#![cfg_attr(capsa_monitor_bin, no_main)]
#![cfg_attr(capsa_monitor_bin, no_builtins)]

pub mod init;
pub mod log;
pub mod monitor;
pub mod sys;
pub mod text;

#[cfg(capsa_monitor_bin)]
pub mod entry;

/// The program: `capsa-init` when called by that name, the monitor otherwise.
pub fn main(args: &sys::Argv) -> i32 {
    let name = args.get(0).unwrap_or(b"");
    let base = name.rsplit(|&b| b == b'/').next().unwrap_or(name);
    if base == b"capsa-init" {
        return init::run(args);
    }
    let mut words: [&[u8]; 32] = [b""; 32];
    let n = args.len().saturating_sub(1).min(words.len());
    for (i, w) in words.iter_mut().enumerate().take(n) {
        *w = args.get(i + 1).unwrap_or(b"");
    }
    match monitor::Config::parse(&words[..n]) {
        Ok(cfg) => monitor::run(&cfg, args.envp()),
        Err(bad) => {
            let mut b = text::Buf::<512>::new();
            b.push(b"capsa-monitor: bad argument ")
                .push(bad)
                .byte(b'\n');
            let _ = sys::write_all(2, b.as_bytes());
            2
        }
    }
}
