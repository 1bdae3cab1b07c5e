//! `create`, `start`, `run`, `state`, `list`, `kill`, `delete`, `pause`, `resume`.

use std::os::fd::OwnedFd;
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use capsa_runtime::CreateOptions;
use capsa_runtime::container::exit_code;
use nix::sys::signal::{SigSet, SigmaskHow, Signal, sigprocmask};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use super::Context;
use crate::commands::tty;

/// A lone container id.
#[derive(clap::Args, Debug)]
pub struct IdArg {
    /// The container's id
    pub id: String,
}

/// Flags shared by `create` and `run`.
#[derive(clap::Args, Debug)]
pub struct CreateFlags {
    /// Path to the bundle (the directory holding config.json)
    #[arg(short, long, value_name = "DIR", default_value = ".")]
    pub(crate) bundle: PathBuf,
    /// File to write the container process's pid to
    #[arg(long, value_name = "FILE")]
    pub(crate) pid_file: Option<PathBuf>,
    /// Unix socket that receives the pty master when process.terminal is set
    #[arg(long, value_name = "SOCKET")]
    pub(crate) console_socket: Option<PathBuf>,
    /// Use MS_MOVE and chroot instead of pivot_root (for ramdisk roots)
    #[arg(long)]
    pub(crate) no_pivot: bool,
    /// Do not create a new session keyring for the container
    #[arg(long)]
    pub(crate) no_new_keyring: bool,
    /// Pass N more descriptors (3, 4, ...) to the container's process
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub(crate) preserve_fds: u32,
    /// The container's id
    pub(crate) id: String,
}

impl CreateFlags {
    fn options(&self) -> CreateOptions {
        CreateOptions {
            id: self.id.clone(),
            bundle: self.bundle.clone(),
            pid_file: self.pid_file.clone(),
            console_socket: self.console_socket.clone(),
            no_pivot: self.no_pivot,
            no_new_keyring: self.no_new_keyring,
            preserve_fds: self.preserve_fds,
        }
    }
}

/// Arguments of `create`.
#[derive(clap::Args, Debug)]
pub struct CreateArgs {
    #[command(flatten)]
    pub(crate) flags: CreateFlags,
}

/// Arguments of `run`.
#[derive(clap::Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub(crate) flags: CreateFlags,
    /// Return once the container has started instead of waiting for it
    #[arg(short, long)]
    pub(crate) detach: bool,
    /// Keep the container's state after it exits (default: delete it)
    #[arg(long)]
    pub(crate) keep: bool,
    /// Do not make this process a subreaper for the container's orphans
    #[arg(long)]
    pub(crate) no_subreaper: bool,
}

/// Arguments of `list`.
#[derive(clap::Args, Debug)]
pub struct ListArgs {
    /// Output format: table or json
    #[arg(short, long, default_value = "table", value_parser = ["table", "json"])]
    format: String,
    /// Print only the container ids
    #[arg(short, long)]
    quiet: bool,
}

/// Arguments of `kill`.
#[derive(clap::Args, Debug)]
pub struct KillArgs {
    /// Send the signal to every process in the container
    #[arg(short, long)]
    pub(crate) all: bool,
    /// The container's id
    pub(crate) id: String,
    /// The signal, by name (KILL, SIGKILL) or number
    #[arg(default_value = "SIGTERM")]
    pub(crate) signal: String,
}

/// Arguments of `delete`.
#[derive(clap::Args, Debug)]
pub struct DeleteArgs {
    /// Kill the container first if it is still running
    #[arg(short, long)]
    pub(crate) force: bool,
    /// The container's id
    pub(crate) id: String,
}

/// `create`.
pub fn create(ctx: &Context, args: CreateArgs) -> anyhow::Result<u8> {
    ctx.runtime()?.create(&args.flags.options())?;
    Ok(0)
}

/// `start`.
pub fn start(ctx: &Context, args: IdArg) -> anyhow::Result<u8> {
    ctx.runtime()?.start(&args.id)?;
    Ok(0)
}

/// `run`: create and start; unless detached, forward signals to the
/// container, wait for it, delete it (unless `--keep`) and return its status.
pub fn run(ctx: &Context, args: RunArgs) -> anyhow::Result<u8> {
    capsa_runtime::timing::stage("arguments parsed");
    let rt = ctx.runtime()?;
    if args.detach && args.flags.console_socket.is_none() {
        // A detached container with a terminal needs someone to hold the pty.
        let (spec, _) = capsa_runtime::spec::load(&args.flags.bundle)?;
        if spec
            .process()
            .as_ref()
            .and_then(|p| p.terminal())
            .unwrap_or(false)
        {
            bail!("run --detach with process.terminal set needs --console-socket");
        }
    }
    let forwarded = block_forwarded_signals()?;
    if !args.detach && !args.no_subreaper {
        let _ = nix::sys::prctl::set_child_subreaper(true);
    }
    let mut created = rt.run_attached(&args.flags.options())?;
    let pid = created.pid();
    let id = created.id().to_string();
    let pty = created.pty_master.take();
    capsa_runtime::timing::stage("started");
    if args.detach {
        return Ok(0);
    }
    let status = attach(pid, pty, &forwarded);
    capsa_runtime::timing::stage("exited");
    if !args.keep
        && let Err(e) = rt.delete_exited(created)
    {
        tracing::warn!("deleting {id}: {e}");
    }
    capsa_runtime::timing::stage("deleted");
    Ok(status? as u8)
}

/// Blocks the signals that [`attach`] forwards, so that none is lost between
/// now and the wait; the container's process unblocks them before exec.
/// Returns the blocked set.
pub(crate) fn block_forwarded_signals() -> anyhow::Result<SigSet> {
    let forwarded = forwarded_signals();
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&forwarded), None).context("sigprocmask")?;
    Ok(forwarded)
}

/// Stays attached to our child `pid` (the container's process) until it
/// exits: relays its pty (if `pty` is given) to our stdio, forwards the
/// `forwarded` signals to it and returns its exit code (128+N when killed
/// by signal N).
pub(crate) fn attach(pid: Pid, pty: Option<OwnedFd>, forwarded: &SigSet) -> anyhow::Result<i32> {
    let proxy = match pty {
        Some(master) => Some(tty::Proxy::start(master)?),
        None => None,
    };
    let status = wait_forwarding(pid, forwarded, proxy.as_ref());
    if let Some(p) = proxy {
        p.finish();
    }
    status
}

/// The signals `run` and `exec` forward to the container's process (all but
/// the ones that cannot be caught and the synchronous ones).
fn forwarded_signals() -> SigSet {
    let mut set = SigSet::all();
    for s in [
        Signal::SIGKILL,
        Signal::SIGSTOP,
        Signal::SIGSEGV,
        Signal::SIGBUS,
        Signal::SIGILL,
        Signal::SIGFPE,
        Signal::SIGTRAP,
    ] {
        set.remove(s);
    }
    set
}

/// Waits for the container's init process, forwarding every other signal
/// this process receives to it; returns its exit code.
fn wait_forwarding(pid: Pid, set: &SigSet, proxy: Option<&tty::Proxy>) -> anyhow::Result<i32> {
    loop {
        let sig = set.wait().context("sigwait")?;
        match sig {
            Signal::SIGCHLD => loop {
                match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                    Ok(WaitStatus::StillAlive) => break,
                    Ok(st @ (WaitStatus::Exited(p, _) | WaitStatus::Signaled(p, _, _))) => {
                        if p == pid {
                            return Ok(exit_code(st).unwrap_or(255));
                        }
                    }
                    Ok(_) => {}
                    Err(nix::errno::Errno::ECHILD) => {
                        bail!("the container's process {pid} is gone and was not reaped here")
                    }
                    Err(nix::errno::Errno::EINTR) => {}
                    Err(e) => bail!("waitpid: {e}"),
                }
            },
            Signal::SIGWINCH if proxy.is_some() => {
                if let Some(p) = proxy {
                    p.resize();
                }
            }
            other => {
                let _ = nix::sys::signal::kill(pid, other);
            }
        }
    }
}

/// `state`: the runtime-spec state JSON.
pub fn state(ctx: &Context, args: IdArg) -> anyhow::Result<u8> {
    let info = ctx.runtime()?.info(&args.id)?;
    // No newline after it, as runc prints it.
    print!("{}", serde_json::to_string_pretty(&info.oci_state())?);
    Ok(0)
}

/// `list`.
pub fn list(ctx: &Context, args: ListArgs) -> anyhow::Result<u8> {
    let all = ctx.runtime()?.list()?;
    if args.quiet {
        for info in &all {
            println!("{}", info.record.id);
        }
        return Ok(0);
    }
    let states: Vec<_> = all
        .iter()
        .map(|i| {
            let mut s = i.oci_state();
            s.owner = i.record.owner_name();
            s
        })
        .collect();
    if args.format == "json" {
        // Go's encoding of runc's empty list.
        if states.is_empty() {
            println!("null");
        } else {
            println!("{}", serde_json::to_string(&states)?);
        }
        return Ok(0);
    }
    let rows: Vec<[String; 6]> = states
        .into_iter()
        .map(|s| {
            [
                s.id,
                s.pid.to_string(),
                s.status.to_string(),
                s.bundle.display().to_string(),
                s.created,
                s.owner,
            ]
        })
        .collect();
    let header = ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from);
    print!("{}", table(&header, &rows));
    Ok(0)
}

/// Formats rows as runc's tables come out of Go's tabwriter (minimum
/// width 12, padding 3): each column but the last is as wide as its
/// widest cell plus three spaces, and at least twelve.
pub fn table<const N: usize>(header: &[String; N], rows: &[[String; N]]) -> String {
    const MIN_WIDTH: usize = 12;
    const PADDING: usize = 3;
    let mut width: [usize; N] = std::array::from_fn(|i| header[i].len());
    for r in rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    for w in &mut width {
        *w = (*w + PADDING).max(MIN_WIDTH) - PADDING;
    }
    let mut out = String::new();
    for r in std::iter::once(header).chain(rows) {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            if i + 1 == N {
                line.push_str(c);
            } else {
                line.push_str(&format!("{c:<w$}", w = width[i] + 3));
            }
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// `kill`.
pub fn kill(ctx: &Context, args: KillArgs) -> anyhow::Result<u8> {
    let rt = ctx.runtime()?;
    // Signal 0 checks that the process exists, as runc allows.
    let sig = match args.signal.trim() {
        "0" => Ok(0),
        other => capsa_runtime::signals::parse(other),
    };
    // A missing container is reported before a bad signal, as runc does.
    let sig = match sig {
        Ok(sig) => sig,
        Err(_) if !rt.root().dir(&args.id).is_dir() => {
            return Err(capsa_runtime::Error::NotFound(args.id).into());
        }
        Err(e) => return Err(e.into()),
    };
    rt.kill(&args.id, sig, args.all)?;
    Ok(0)
}

/// `delete`.
pub fn delete(ctx: &Context, args: DeleteArgs) -> anyhow::Result<u8> {
    ctx.runtime()?.delete(&args.id, args.force)?;
    Ok(0)
}

/// `pause`.
pub fn pause(ctx: &Context, args: IdArg) -> anyhow::Result<u8> {
    ctx.runtime()?.pause(&args.id)?;
    Ok(0)
}

/// `resume`.
pub fn resume(ctx: &Context, args: IdArg) -> anyhow::Result<u8> {
    ctx.runtime()?.resume(&args.id)?;
    Ok(0)
}
