//! `events`: resource statistics of a container and its OOM kills, as JSON
//! lines shaped like runc's (`{"type":"stats","id":ID,"data":{...}}`,
//! `{"type":"oom","id":ID}`).

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use capsa_runtime::cgroups::{Manager, Stats};
use capsa_runtime::state::{Record, Status};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use serde::Serialize;

use super::Context;

/// Arguments of `events`.
#[derive(clap::Args, Debug)]
pub struct EventsArgs {
    /// Print the container's statistics once and exit
    #[arg(long)]
    stats: bool,
    /// Time between statistics events (such as 5s, 500ms, 1m)
    #[arg(long, default_value = "5s", value_parser = parse_interval)]
    interval: Duration,
    /// The container's id
    id: String,
}

fn parse_interval(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| format!("{s:?}: {e}"))?;
    if d.is_zero() {
        return Err("the interval must be longer than zero".into());
    }
    Ok(d)
}

/// One event line.
#[derive(Serialize)]
struct Event<'a> {
    #[serde(rename = "type")]
    typ: &'a str,
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a Stats>,
}

fn emit(typ: &str, id: &str, data: Option<&Stats>) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string(&Event { typ, id, data })?);
    Ok(())
}

/// Runs `events`.
pub fn events(ctx: &Context, args: EventsArgs) -> anyhow::Result<u8> {
    let rt = ctx.runtime()?;
    let (info, cg) = rt.cgroups(&args.id)?;
    if info.status == Status::Stopped {
        bail!("container with id {} is not running", args.id);
    }
    if args.stats {
        emit("stats", &args.id, Some(&cg.stats()?))?;
        return Ok(0);
    }
    stream(&args, &cg, &info.record)
}

/// Prints a stats event every interval and an oom event for each OOM kill
/// until the container's init process exits.
fn stream(args: &EventsArgs, cg: &Manager, record: &Record) -> anyhow::Result<u8> {
    let pid = nix::unistd::Pid::from_raw(record.pid);
    let pidfd = capsa_runtime::sys::pidfd_open(pid)
        .with_context(|| format!("pidfd_open({pid}) of the container's process"))?;
    if !record.init_alive() {
        // Gone (and maybe its pid reused) before the descriptor was open.
        return Ok(0);
    }
    let mut oom = match cg.oom_watcher() {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!("no OOM events for {}: {e}", args.id);
            None
        }
    };
    let mut next = Instant::now() + args.interval;
    loop {
        let left = next.saturating_duration_since(Instant::now());
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        let mut fds = vec![PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        if let Some(w) = &oom {
            fds.push(PollFd::new(w.fd(), w.events()));
        }
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => bail!("poll: {e}"),
        }
        let exited = fds[0].revents().is_some_and(|r| !r.is_empty());
        let woke = fds
            .get(1)
            .and_then(|f| f.revents())
            .is_some_and(|r| !r.is_empty());
        drop(fds);
        // An OOM kill is counted before its victim is gone: look once more
        // when the container's process has exited.
        if (woke || exited)
            && let Some(w) = &mut oom
        {
            for _ in 0..w.take()? {
                emit("oom", &args.id, None)?;
            }
        }
        if exited {
            return Ok(0);
        }
        if Instant::now() >= next {
            emit("stats", &args.id, Some(&cg.stats()?))?;
            next += args.interval;
        }
    }
}
