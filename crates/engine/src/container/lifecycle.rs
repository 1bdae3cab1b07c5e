//! What happens to a container over its life: starting it (a launcher and
//! a monitor), recording its exit, the restart policy, stopping, killing and
//! removing it, and repairing the state a killed command or monitor left.

use std::os::fd::AsFd;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use capsa_runtime::cgroups::CgroupPaths;

use super::attach;
use super::launch::{self, Attach, LaunchError, Plan, RuntimeChoice, Spawned};
use super::runtime::{Held, Runtime};
use super::{Container, Status, now_ns};
use crate::ctx::Ctx;
use crate::events;

/// Name of the file the monitor writes when the container exits.
pub const EXIT_FILE: &str = "exit";

/// Whether process `pid` started at `start` (clock ticks) still lives.
pub fn alive(pid: i32, start: u64) -> bool {
    pid > 0 && capsa_runtime::procfs::start_time(pid) == Some(start)
}

/// Ends the monitor of a container being removed, whose processes are
/// killed: once it has told its clients (an attached `run`, `attach`,
/// `wait`) how the container ended, it has nothing left to do but record
/// the exit, which the removal makes moot; and it must not write into the
/// directory while that goes. Waits (at most `timeout` for each step)
/// until it is gone.
fn end_monitor(ctx: &Ctx, c: &Container, timeout: Duration) {
    let (pid, start) = (c.state.monitor_pid, c.state.monitor_start);
    if !alive(pid, start) {
        return;
    }
    let Ok(fd) = capsa_runtime::sys::pidfd_open(nix::unistd::Pid::from_raw(pid)) else {
        return;
    };
    // A waiting client is answered once the clients are told.
    let waiting = attach::Request {
        timeout: Some(timeout),
        ..Default::default()
    };
    if let Ok(Some(client)) = attach::connect_monitor(&ctx.container_dir(&c.id), waiting) {
        let _ = crate::sys::wait_readable(&client.socket(), timeout);
    }
    // The pid may have been reused between the check and the open.
    if alive(pid, start) && capsa_runtime::sys::pidfd_send_signal(fd.as_fd(), libc::SIGKILL).is_ok()
    {
        let _ = crate::sys::wait_readable(&fd, timeout);
    }
}

/// How the monitor saw the container end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExitFile {
    /// The exit status (128 + N for signal N).
    pub status: i32,
    /// When (ns since the epoch).
    pub finished_ns: i64,
}

/// Reads the monitor's exit file of a container directory.
pub fn read_exit_file(dir: &Path) -> Option<ExitFile> {
    let text = std::fs::read_to_string(dir.join(EXIT_FILE)).ok()?;
    let mut status = None;
    let mut finished_ns = 0;
    for line in text.lines() {
        match line.split_once('=') {
            Some(("status", v)) => status = v.parse().ok(),
            Some(("finished", v)) => finished_ns = v.parse().unwrap_or(0),
            _ => {}
        }
    }
    Some(ExitFile {
        status: status?,
        finished_ns,
    })
}

/// OOM kills counted in the container's memory cgroup.
pub fn oom_kills(cg: &CgroupPaths) -> u64 {
    let (file, key) = match cg.v1("memory") {
        Some(d) => (d.join("memory.oom_control"), "oom_kill"),
        None => match cg.unified() {
            Some(d) => (d.join("memory.events"), "oom_kill"),
            None => return 0,
        },
    };
    std::fs::read_to_string(file)
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                let (k, v) = l.split_once(' ')?;
                (k == key).then(|| v.trim().parse().ok())?
            })
        })
        .unwrap_or(0)
}

/// Whether the container state needs repairing: a command or monitor that
/// should be looking after it is gone.
fn needs_repair(c: &Container) -> bool {
    let s = &c.state;
    match s.status {
        Status::Creating | Status::Removing => true,
        Status::Running | Status::Paused | Status::Restarting => {
            !alive(s.monitor_pid, s.monitor_start)
                && (s.status == Status::Restarting || !alive(s.pid, s.pid_start))
        }
        // Its monitor died between recording the exit and applying --rm.
        Status::Exited | Status::Dead => c.settings.host_config.auto_remove,
        Status::Created => false,
    }
}

/// Repairs `c` if needed, taking its lock only then and only if no other
/// command holds it (listings never wait). Returns false when the container
/// is gone.
pub fn refresh(ctx: &Ctx, c: &mut Container) -> Result<bool> {
    if !needs_repair(c) {
        return Ok(true);
    }
    let Some(_lock) = ctx.try_lock_container(&c.id)? else {
        // Being worked on (or its directory is gone with a removal under way).
        if !ctx.container_dir(&c.id).exists() && c.state.status == Status::Removing {
            finish_removal(ctx, c)?;
            return Ok(false);
        }
        return Ok(true);
    };
    match ctx.load_container(&c.id)? {
        Some(fresh) => *c = fresh,
        None => return Ok(false),
    }
    refresh_locked(ctx, c)?;
    Ok(ctx.load_container(&c.id)?.is_some())
}

/// Repairs `c`, whose lock the caller holds.
pub fn refresh_locked(ctx: &Ctx, c: &mut Container) -> Result<()> {
    if !needs_repair(c) {
        return Ok(());
    }
    match c.state.status {
        // Its creator died half-way: nothing of it is worth keeping.
        Status::Creating | Status::Removing => remove(ctx, c, true),
        Status::Exited | Status::Dead => remove(ctx, c, true),
        _ => {
            let unknown = "exit status unknown: the container's monitor was killed";
            record_exit(ctx, c, Some(unknown))?;
            if c.settings.host_config.auto_remove {
                remove(ctx, c, true)?;
            }
            Ok(())
        }
    }
}

/// Records that the container's process has ended: its status from the
/// monitor's exit file (or unknown, 255, with `why`), OOM kills, the
/// runtime's container deleted (cgroups gone), a `die` event.
pub fn record_exit(ctx: &Ctx, c: &mut Container, why: Option<&str>) -> Result<()> {
    let dir = ctx.container_dir(&c.id);
    let exit = read_exit_file(&dir);
    let oom = c
        .settings
        .cgroup
        .as_ref()
        .is_some_and(|cg| oom_kills(cg) > 0);
    delete_in_runtime(ctx, c)?;
    let s = &mut c.state;
    match exit {
        Some(e) => {
            s.exit_code = e.status;
            s.finished_ns = if e.finished_ns > 0 {
                e.finished_ns
            } else {
                now_ns()
            };
            s.error.clear();
        }
        None => {
            s.exit_code = 255;
            s.finished_ns = now_ns();
            s.error = why.unwrap_or("exit status unknown").to_string();
        }
    }
    s.oom_killed = oom;
    s.status = Status::Exited;
    s.pid = 0;
    s.pid_start = 0;
    ctx.save_state(c)?;
    if oom {
        events::container(ctx, c, "oom", &[]);
    }
    events::container(
        ctx,
        c,
        "die",
        &[("exitCode", c.state.exit_code.to_string())],
    );
    Ok(())
}

/// Removes a container whose processes are gone (or killed here): its
/// runtime state and cgroups, root filesystem, directory, row, and with
/// `volumes` its anonymous volumes no other container uses.
pub fn remove(ctx: &Ctx, c: &mut Container, volumes: bool) -> Result<()> {
    if c.state.status != Status::Removing {
        c.state.status = Status::Removing;
        ctx.save_state(c)?;
    }
    let rt = Runtime::of(ctx, &c.settings.host_config.runtime)?;
    if c.state.pid > 0 && alive(c.state.pid, c.state.pid_start) {
        let _ = rt.kill(&c.id, libc::SIGKILL, true);
    }
    if c.state.monitor_pid != std::process::id() as i32 {
        // Not us, applying --rm.
        end_monitor(ctx, c, Duration::from_secs(10));
    }
    delete_in_runtime(ctx, c)?;
    match ctx.store.remove_rootfs(&c.id) {
        Ok(()) => {}
        Err(capsa_images::Error::Other(m)) if m.starts_with("no rootfs named") => {}
        Err(e) => return Err(e.into()),
    }
    let anonymous: Vec<String> = if volumes {
        ctx.volumes_of(&c.id)?
            .into_iter()
            .filter(|v| {
                ctx.get_volume(v)
                    .ok()
                    .flatten()
                    .is_some_and(|v| v.anonymous)
            })
            .collect()
    } else {
        Vec::new()
    };
    finish_removal(ctx, c)?;
    for v in anonymous {
        if ctx.volume_users(&v)?.is_empty() {
            ctx.remove_volume(&v, true)?;
        }
    }
    events::container(ctx, c, "destroy", &[]);
    Ok(())
}

/// Deletes the runtime's container of `c`, killing what is left of it,
/// with its cgroups, also those of a create that was killed half-way.
pub fn delete_in_runtime(ctx: &Ctx, c: &Container) -> Result<()> {
    let rt = Runtime::of(ctx, &c.settings.host_config.runtime)?;
    let held = rt.held(&c.id);
    if held == Held::Nothing {
        return Ok(());
    }
    rt.delete(&c.id)?;
    if held == Held::Unknown {
        remove_unrecorded_cgroups(c)?;
    }
    Ok(())
}

/// Removes the cgroups that a create killed before it recorded them left
/// (the runtime deletes only recorded ones): the container's own
/// directories where the engine places them, with what runs inside.
fn remove_unrecorded_cgroups(c: &Container) -> Result<()> {
    let layout = capsa_runtime::cgroups::Layout::detect()?;
    let mut paths = layout.place(
        Some(Path::new(&cgroups_path(
            &c.id,
            &c.settings.host_config.cgroup_parent,
        ))),
        &c.id,
    )?;
    paths.created = paths
        .dirs
        .values()
        .filter(|d| d.is_dir())
        .cloned()
        .collect();
    if paths.created.is_empty() {
        return Ok(());
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let pids: Vec<i32> = paths
            .created
            .iter()
            .filter_map(|d| std::fs::read_to_string(d.join("cgroup.procs")).ok())
            .flat_map(|t| {
                t.lines()
                    .filter_map(|l| l.trim().parse().ok())
                    .collect::<Vec<i32>>()
            })
            .collect();
        if pids.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "processes {pids:?} are still in the cgroups of container {}",
                c.id
            );
        }
        for pid in pids {
            let _ =
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    capsa_runtime::cgroups::Manager::from_paths(paths).destroy()?;
    Ok(())
}

/// The last steps of a removal: the row, then the directory.
fn finish_removal(ctx: &Ctx, c: &Container) -> Result<()> {
    ctx.delete_container_row(&c.id)?;
    ctx.remove_container_dir(&c.id)
}

/// The launch plan of a container.
pub fn plan(ctx: &Ctx, c: &Container) -> Result<Plan> {
    let hc = &c.settings.host_config;
    let rt = Runtime::of(ctx, &hc.runtime)?;
    let log = match hc.log_config.kind.as_str() {
        "none" => None,
        _ => Some(c.settings.log_limits()),
    };
    Ok(Plan {
        id: c.id.clone(),
        dir: ctx.container_dir(&c.id),
        root: ctx.root.clone(),
        exe: std::env::current_exe().context("locating the capsa binary")?,
        monitor: crate::monitor_bin::path(&ctx.root)?,
        runtime: RuntimeChoice::of(&rt),
        console_dir: ctx.run_dir.join("console"),
        tty: c.settings.config.tty,
        open_stdin: c.settings.config.open_stdin,
        stdin_once: c.settings.config.stdin_once,
        loopback: matches!(hc.network_mode.as_str(), "none" | ""),
        log,
        cgroups_path: cgroups_path(&c.id, &hc.cgroup_parent),
    })
}

/// The OCI cgroupsPath of container `id`: `capsa-ID` beneath the caller's
/// own cgroup (no shared parent, so nothing outlives the last container),
/// or `ID` beneath a `--cgroup-parent`.
pub fn cgroups_path(id: &str, cgroup_parent: &str) -> String {
    if cgroup_parent.is_empty() {
        format!("capsa-{id}")
    } else {
        format!("{}/{id}", cgroup_parent.trim_end_matches('/'))
    }
}

/// Launches the container's process with a new monitor, and records it.
/// The caller holds the lock.
pub fn launch(
    ctx: &Ctx,
    c: &mut Container,
    attach: Attach,
) -> Result<std::result::Result<Spawned, LaunchError>> {
    let dir = ctx.container_dir(&c.id);
    let _ = std::fs::remove_file(dir.join(EXIT_FILE));
    ensure_rootfs(ctx, c)?;
    // What a launch killed half-way left.
    delete_in_runtime(ctx, c)?;
    let plan = plan(ctx, c)?;
    let spawned = launch::spawn(&plan, attach).inspect_err(|_| {
        // The launcher died: what it made goes.
        let _ = delete_in_runtime(ctx, c);
    })?;
    let spawned = match spawned {
        Ok(s) => s,
        Err(e) => {
            c.state.error = e.message.clone();
            c.state.exit_code = e.code as i32;
            c.state.pid = 0;
            if c.state.status == Status::Creating {
                c.state.status = Status::Created;
            }
            ctx.save_state(c)?;
            return Ok(Err(e));
        }
    };
    let s = &mut c.state;
    s.pid = spawned.started.pid;
    s.pid_start = spawned.started.start;
    s.monitor_pid = spawned.launcher.as_raw();
    s.monitor_start = capsa_runtime::procfs::stat(s.monitor_pid)
        .map(|st| st.start_time)
        .unwrap_or(0);
    s.error.clear();
    s.oom_killed = false;
    s.status = Status::Running;
    s.started_ns = now_ns();
    s.manually_stopped = false;
    // A start by hand begins the restart policy afresh (Docker resets
    // RestartCount and the back-off).
    s.restart_count = 0;
    s.backoff_ms = 0;
    c.settings.cgroup = Some(spawned.started.cgroup.clone());
    ctx.save_settings(c)?;
    ctx.save_state(c)?;
    launch::confirm(&spawned);
    // As Docker: an attached run or start reports the attach first.
    if attach.stdout || attach.stderr || attach.stdin {
        events::container(ctx, c, "attach", &[]);
    }
    events::container(ctx, c, "start", &[]);
    Ok(Ok(spawned))
}

/// Mounts the container's root filesystem again if it is not (after a reboot).
fn ensure_rootfs(ctx: &Ctx, c: &Container) -> Result<()> {
    let merged = ctx.store.rootfs_dir(&c.id).join("merged");
    if is_mountpoint(&merged) {
        return Ok(());
    }
    ctx.store
        .remount_rootfs(&c.id)
        .with_context(|| format!("mounting the root filesystem of {}", c.id))
}

/// Whether `path` is a mount point.
pub fn is_mountpoint(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (
        std::fs::metadata(path),
        path.parent().map(std::fs::metadata),
    ) {
        (Ok(m), Some(Ok(p))) => m.dev() != p.dev(),
        _ => false,
    }
}

/// Starts a container that never ran or has exited: a new process and
/// monitor. The caller holds the lock.
pub fn start(
    ctx: &Ctx,
    c: &mut Container,
    attach: Attach,
) -> Result<std::result::Result<Option<Spawned>, LaunchError>> {
    match c.state.status {
        Status::Running | Status::Restarting => return Ok(Ok(None)),
        Status::Paused => bail!("cannot start a paused container, try unpause instead"),
        Status::Removing | Status::Creating => {
            bail!("container is marked for removal and cannot be started")
        }
        _ => {}
    }
    Ok(launch(ctx, c, attach)?.map(Some))
}

/// Waits until the container is no longer running (its exit recorded), at
/// most `timeout`; true if it stopped.
pub fn wait_stopped(ctx: &Ctx, id: &str, timeout: Duration) -> Result<bool> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    loop {
        let Some(mut c) = ctx.load_container(id)? else {
            return Ok(true);
        };
        if !refresh(ctx, &mut c)? {
            return Ok(true);
        }
        if !matches!(c.state.status, Status::Running | Status::Paused) {
            return Ok(true);
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(false);
        }
        // While the init lives, sleep on its pidfd; then poll for the record.
        if alive(c.state.pid, c.state.pid_start)
            && let Ok(fd) = capsa_runtime::sys::pidfd_open(nix::unistd::Pid::from_raw(c.state.pid))
        {
            {
                let left = deadline - now;
                let _ = crate::sys::wait_readable(&fd, left);
                continue;
            }
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// `stop`: the stop signal, then SIGKILL after `timeout` seconds (negative:
/// wait for ever); the restart policy leaves the container alone afterwards.
pub fn stop(ctx: &Ctx, name: &str, timeout: Option<i64>, signal: Option<&str>) -> Result<String> {
    let (mut c, lock) = ctx.lock_found(name)?;
    let id = c.id.clone();
    if !c.state.status.is_active() {
        return Ok(id);
    }
    c.state.manually_stopped = true;
    if c.state.status == Status::Restarting {
        c.state.status = Status::Exited;
        ctx.save_state(&c)?;
        return Ok(id);
    }
    ctx.save_state(&c)?;
    let rt = Runtime::of(ctx, &c.settings.host_config.runtime)?;
    if c.state.status == Status::Paused {
        rt.resume(&id)?;
        c.state.status = Status::Running;
        ctx.save_state(&c)?;
    }
    let sig_name = signal
        .map(str::to_string)
        .unwrap_or_else(|| c.settings.stop_signal());
    let sig = capsa_runtime::signals::parse(&sig_name)?;
    let timeout = timeout.unwrap_or_else(|| c.settings.stop_timeout());
    events::container(ctx, &c, "kill", &[("signal", sig.to_string())]);
    let _ = rt.kill(&id, sig, false);
    // The monitor needs the lock to record the exit.
    drop(lock);
    let wait = if timeout < 0 {
        Duration::from_secs(u64::MAX / 4)
    } else {
        Duration::from_secs(timeout as u64)
    };
    if !wait_stopped(ctx, &id, wait)? {
        if let Some(c) = ctx.load_container(&id)? {
            events::container(ctx, &c, "kill", &[("signal", libc::SIGKILL.to_string())]);
        }
        let _ = rt.kill(&id, libc::SIGKILL, true);
        if !wait_stopped(ctx, &id, Duration::from_secs(30))? {
            bail!("container {id} did not stop after SIGKILL");
        }
    }
    if let Some(c) = ctx.load_container(&id)? {
        events::container(ctx, &c, "stop", &[]);
    }
    Ok(id)
}

/// The restart policy's verdict after an exit.
fn should_restart(c: &Container) -> bool {
    let p = &c.settings.host_config.restart_policy;
    if c.state.manually_stopped {
        return false;
    }
    match p.name.as_str() {
        "always" | "unless-stopped" => true,
        "on-failure" => {
            c.state.exit_code != 0
                && (p.maximum_retry_count <= 0 || c.state.restart_count < p.maximum_retry_count)
        }
        _ => false,
    }
}

/// `capsa __exited ID`: run by the monitor (exec'd in its place) once the
/// container's process has ended and its output is drained. Records the
/// exit, applies `--rm` and the restart policy; a restart execs a new
/// monitor in this same process.
pub fn monitor_exited(ctx: Ctx, id: &str) -> Result<()> {
    let me = std::process::id() as i32;
    let lock = match ctx.lock_container(id) {
        Ok(l) => l,
        Err(_) => return Ok(()),
    };
    let Some(mut c) = ctx.load_container(id)? else {
        return Ok(());
    };
    if c.state.monitor_pid != me || !matches!(c.state.status, Status::Running | Status::Paused) {
        // Someone else dealt with it (removal, a repair, a newer monitor).
        return Ok(());
    }
    let ran_ns = now_ns() - c.state.started_ns;
    record_exit(&ctx, &mut c, None)?;
    if c.settings.host_config.auto_remove {
        return remove(&ctx, &mut c, true);
    }
    if !should_restart(&c) {
        return Ok(());
    }
    // Docker's back-off: 100 ms doubling up to a minute, reset when the
    // container ran for 10 s.
    let backoff = if ran_ns >= 10_000_000_000 || c.state.backoff_ms == 0 {
        100
    } else {
        (c.state.backoff_ms * 2).min(60_000)
    };
    c.state.backoff_ms = backoff;
    c.state.status = Status::Restarting;
    c.state.monitor_start = capsa_runtime::procfs::stat(me)
        .map(|s| s.start_time)
        .unwrap_or(0);
    ctx.save_state(&c)?;
    drop(lock);
    std::thread::sleep(Duration::from_millis(backoff as u64));
    let lock = ctx.lock_container(id)?;
    let Some(mut c) = ctx.load_container(id)? else {
        return Ok(());
    };
    if c.state.status != Status::Restarting || c.state.manually_stopped || c.state.monitor_pid != me
    {
        return Ok(());
    }
    c.state.restart_count += 1;
    let plan = plan(&ctx, &c)?;
    ensure_rootfs(&ctx, &c)?;
    let _ = std::fs::remove_file(ctx.container_dir(id).join(EXIT_FILE));
    match launch::launch_here(&plan) {
        Ok(l) => {
            let s = &mut c.state;
            s.pid = l.started.pid;
            s.pid_start = l.started.start;
            s.status = Status::Running;
            s.started_ns = now_ns();
            s.error.clear();
            c.settings.cgroup = Some(l.started.cgroup.clone());
            ctx.save_settings(&c)?;
            ctx.save_state(&c)?;
            events::container(&ctx, &c, "start", &[]);
            drop(lock);
            drop(ctx);
            let e = launch::exec_monitor(&plan, &l, None);
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(l.started.pid),
                nix::sys::signal::SIGKILL,
            );
            Err(e)
        }
        Err(e) => {
            c.state.status = Status::Exited;
            c.state.exit_code = e.code as i32;
            c.state.error = e.message;
            ctx.save_state(&c)?;
            Ok(())
        }
    }
}
