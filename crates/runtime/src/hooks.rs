//! Lifecycle hooks: programs run at the points runtime-spec names, each with
//! the container's state JSON on its standard input and an optional timeout.

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use oci_spec::runtime::{Hook, Hooks};

use crate::error::{Error, Result};
use crate::sys;

/// The hook lists of runtime-spec, in lifecycle order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Deprecated; run with createRuntime, in the runtime's namespaces.
    Prestart,
    /// After the namespaces exist, before pivot_root; runtime's namespaces.
    CreateRuntime,
    /// After createRuntime, before pivot_root; container's namespaces.
    CreateContainer,
    /// At `start`, before the user's program; container's namespaces.
    StartContainer,
    /// After the user's program started; runtime's namespaces; failures warn.
    Poststart,
    /// After the container is deleted; runtime's namespaces; failures warn.
    Poststop,
}

impl Kind {
    /// The hook list's name in config.json.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Prestart => "prestart",
            Kind::CreateRuntime => "createRuntime",
            Kind::CreateContainer => "createContainer",
            Kind::StartContainer => "startContainer",
            Kind::Poststart => "poststart",
            Kind::Poststop => "poststop",
        }
    }

    /// The hooks of this kind in `hooks`.
    pub fn select(self, hooks: &Hooks) -> &[Hook] {
        let list = match self {
            Kind::Prestart => hooks.prestart(),
            Kind::CreateRuntime => hooks.create_runtime(),
            Kind::CreateContainer => hooks.create_container(),
            Kind::StartContainer => hooks.start_container(),
            Kind::Poststart => hooks.poststart(),
            Kind::Poststop => hooks.poststop(),
        };
        list.as_deref().unwrap_or(&[])
    }
}

/// Whether `hooks` has any hook of one of `kinds`.
pub fn any(hooks: Option<&Hooks>, kinds: &[Kind]) -> bool {
    hooks.is_some_and(|h| kinds.iter().any(|k| !k.select(h).is_empty()))
}

/// Runs every hook of `kind` in order with `state` on its stdin; stops at the
/// first failure.
pub fn run_all(hooks: Option<&Hooks>, kind: Kind, state: &[u8]) -> Result<()> {
    let Some(hooks) = hooks else { return Ok(()) };
    for hook in kind.select(hooks) {
        run(hook, kind, state)?;
    }
    Ok(())
}

/// Runs every hook of `kind`; failures are logged as warnings, as the spec
/// requires for poststart and poststop.
pub fn run_all_warn(hooks: Option<&Hooks>, kind: Kind, state: &[u8]) {
    let Some(hooks) = hooks else { return };
    for hook in kind.select(hooks) {
        if let Err(e) = run(hook, kind, state) {
            tracing::warn!("{e}");
        }
    }
}

/// Runs one hook and waits for it (up to its timeout).
pub fn run(hook: &Hook, kind: Kind, state: &[u8]) -> Result<()> {
    let path = hook.path().display().to_string();
    let fail = |reason: String| Error::Hook {
        kind: kind.name(),
        path: path.clone(),
        reason,
    };
    if let Some(t) = hook.timeout()
        && t <= 0
    {
        return Err(fail(format!("timeout must be positive, got {t}")));
    }
    let mut cmd = Command::new(hook.path());
    if let Some(args) = hook.args() {
        if let Some(first) = args.first() {
            cmd.arg0(first);
        }
        cmd.args(args.iter().skip(1));
    }
    cmd.env_clear();
    for kv in hook.env().iter().flatten() {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd.spawn().map_err(|e| fail(format!("cannot run: {e}")))?;
    tracing::debug!(hook = kind.name(), path, "hook started");

    let pidfd = sys::pidfd_open(nix::unistd::Pid::from_raw(child.id() as i32))
        .map_err(|e| fail(format!("pidfd_open: {e}")))?;
    let deadline = hook
        .timeout()
        .map(|t| start + Duration::from_secs(t as u64));
    let mut stdin = child.stdin.take();
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let mut written = 0usize;
    let mut output = Vec::new();
    let mut exited = false;
    while !exited || stdout.is_some() || stderr.is_some() {
        let timeout = match deadline {
            None => PollTimeout::NONE,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(fail(format!(
                        "timed out after {} s",
                        hook.timeout().unwrap_or_default()
                    )));
                }
                PollTimeout::try_from(left.as_millis().min(i32::MAX as u128) as i32 + 1)
                    .unwrap_or(PollTimeout::MAX)
            }
        };
        let mut fds = Vec::with_capacity(4);
        if !exited {
            fds.push(PollFd::new(pidfd.as_fd(), PollFlags::POLLIN));
        }
        if let Some(s) = &stdin {
            fds.push(PollFd::new(s.as_fd(), PollFlags::POLLOUT));
        }
        if let Some(s) = &stdout {
            fds.push(PollFd::new(s.as_fd(), PollFlags::POLLIN));
        }
        if let Some(s) = &stderr {
            fds.push(PollFd::new(s.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, timeout) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(fail(format!("poll: {e}"))),
        }
        let ready: Vec<(i32, bool)> = fds
            .iter()
            .map(|f| {
                let ev = f.revents().unwrap_or(PollFlags::empty());
                (f.as_fd().as_raw_fd(), !ev.is_empty())
            })
            .collect();
        drop(fds);
        for (fd, is_ready) in ready {
            if !is_ready {
                continue;
            }
            if fd == pidfd.as_raw_fd() {
                exited = true;
            } else if stdin.as_ref().is_some_and(|s| s.as_raw_fd() == fd) {
                let s = stdin.as_mut().expect("checked above");
                match s.write(&state[written..]) {
                    Ok(n) => written += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => written = state.len(), // the hook closed its stdin
                }
                if written >= state.len() {
                    stdin = None;
                }
            } else {
                let pipe_is = |p: &Option<std::process::ChildStdout>| {
                    p.as_ref().is_some_and(|s| s.as_raw_fd() == fd)
                };
                let mut buf = [0u8; 4096];
                if pipe_is(&stdout) {
                    match stdout.as_mut().expect("checked above").read(&mut buf) {
                        Ok(0) | Err(_) => stdout = None,
                        Ok(n) => keep_tail(&mut output, &buf[..n]),
                    }
                } else if stderr.as_ref().is_some_and(|s| s.as_raw_fd() == fd) {
                    match stderr.as_mut().expect("checked above").read(&mut buf) {
                        Ok(0) | Err(_) => stderr = None,
                        Ok(n) => keep_tail(&mut output, &buf[..n]),
                    }
                }
            }
        }
    }
    let status = child.wait().map_err(|e| fail(format!("wait: {e}")))?;
    if status.success() {
        return Ok(());
    }
    let how = match (status.code(), status.signal()) {
        (Some(c), _) => format!("exited with status {c}"),
        (None, Some(s)) => format!("killed by signal {s}"),
        _ => "failed".to_string(),
    };
    let out = String::from_utf8_lossy(&output);
    let out = out.trim();
    Err(fail(if out.is_empty() {
        how
    } else {
        format!("{how}: {out}")
    }))
}

/// Appends `data` to `buf`, keeping at most the last 4 KiB.
fn keep_tail(buf: &mut Vec<u8>, data: &[u8]) {
    buf.extend_from_slice(data);
    if buf.len() > 4096 {
        let cut = buf.len() - 4096;
        buf.drain(..cut);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::HookBuilder;

    fn hook(script: &str, timeout: Option<i64>) -> Hook {
        let mut b = HookBuilder::default()
            .path("/bin/sh")
            .args(vec!["sh".to_string(), "-c".to_string(), script.to_string()])
            .env(vec!["HOOKVAR=42".to_string()]);
        if let Some(t) = timeout {
            b = b.timeout(t);
        }
        b.build().unwrap()
    }

    #[test]
    fn hook_reads_state_and_env() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let h = hook(
            &format!("cat > {0}; echo $HOOKVAR >> {0}", out.display()),
            None,
        );
        run(&h, Kind::Poststart, b"{\"id\":\"x\"}").unwrap();
        assert_eq!(std::fs::read_to_string(out).unwrap(), "{\"id\":\"x\"}42\n");
    }

    #[test]
    fn failing_hook_reports_status_and_output() {
        let h = hook("echo broken >&2; exit 3", None);
        let msg = run(&h, Kind::CreateRuntime, b"{}").unwrap_err().to_string();
        assert!(msg.contains("createRuntime hook /bin/sh"), "{msg}");
        assert!(msg.contains("exited with status 3"), "{msg}");
        assert!(msg.contains("broken"), "{msg}");
    }

    #[test]
    fn timeout_kills_the_hook() {
        let h = hook("sleep 30", Some(1));
        let t = Instant::now();
        let msg = run(&h, Kind::Prestart, b"{}").unwrap_err().to_string();
        assert!(msg.contains("timed out"), "{msg}");
        assert!(t.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn hook_that_ignores_large_state_still_runs() {
        let h = hook("exit 0", None);
        run(&h, Kind::Poststop, &vec![b'x'; 1 << 20]).unwrap();
    }
}
