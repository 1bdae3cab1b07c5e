//! The container commands: `run`, `create`, `start`, `stop`, `restart`,
//! `kill`, `rm`, `ps`, `logs`, `wait`, `inspect`, `rename`, `pause`,
//! `unpause`, `update`, `container prune`, and the `container` group that
//! holds them all; `exec`, `attach`, `top`, `stats` are in `exec.rs`, the
//! file commands in `files.rs`.

use std::io::{self, Write};
use std::os::fd::AsFd;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::run::{RunFlags, create_container};
use super::session::{self, Outcome, Session};
use crate::container::launch::Attach;
use crate::container::lifecycle::{self, alive};
use crate::container::runtime::Runtime;
use crate::container::{Container, Status, logs};
use crate::ctx::Ctx;
use crate::events;
use crate::format::Format;
use crate::units;

/// The container commands, at the top level and under `capsa container`.
#[derive(Subcommand)]
pub enum Command {
    /// Create and run a new container from an image
    Run(Box<RunFlags>),
    /// Create a new container
    Create(Box<RunFlags>),
    /// Start one or more stopped containers
    Start(StartArgs),
    /// Stop one or more running containers
    Stop(StopArgs),
    /// Restart one or more containers
    Restart(StopArgs),
    /// Kill one or more running containers
    Kill(KillArgs),
    /// Remove one or more containers
    Rm(RmArgs),
    /// List containers
    Ps(PsArgs),
    /// Fetch the logs of a container
    Logs(LogsArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(NamesArgs),
    /// Return low-level information on capsa objects
    Inspect(InspectArgs),
    /// Rename a container
    Rename(RenameArgs),
    /// Pause all processes within one or more containers
    Pause(NamesArgs),
    /// Unpause all processes within one or more containers
    Unpause(NamesArgs),
    /// Update configuration of one or more containers
    Update(super::exec::UpdateArgs),
    /// Execute a command in a running container
    Exec(super::exec::ExecArgs),
    /// Attach local standard input, output, and error streams to a running container
    Attach(super::exec::AttachArgs),
    /// Display the running processes of a container
    Top(super::exec::TopArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(super::exec::StatsArgs),
    /// Copy files/folders between a container and the local filesystem
    Cp(super::files::CpArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(super::files::DiffArgs),
    /// Create a new image from a container's changes
    Commit(super::files::CommitArgs),
    /// Export a container's filesystem as a tar archive
    Export(super::files::ExportArgs),
    /// Manage containers
    Container {
        #[command(subcommand)]
        command: ContainerCommand,
    },
    /// Record a container's exit (run by its monitor)
    #[command(name = EXITED, hide = true)]
    Exited {
        /// The container's id
        id: String,
    },
}

/// `capsa container ...`.
#[derive(Subcommand)]
pub enum ContainerCommand {
    /// Create and run a new container from an image
    Run(Box<RunFlags>),
    /// Create a new container
    Create(Box<RunFlags>),
    /// Start one or more stopped containers
    Start(StartArgs),
    /// Stop one or more running containers
    Stop(StopArgs),
    /// Restart one or more containers
    Restart(StopArgs),
    /// Kill one or more running containers
    Kill(KillArgs),
    /// Remove one or more containers
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
    /// List containers
    #[command(visible_aliases = ["list", "ps"])]
    Ls(PsArgs),
    /// Fetch the logs of a container
    Logs(LogsArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(NamesArgs),
    /// Display detailed information on one or more containers
    Inspect(ContainerInspectArgs),
    /// Rename a container
    Rename(RenameArgs),
    /// Pause all processes within one or more containers
    Pause(NamesArgs),
    /// Unpause all processes within one or more containers
    Unpause(NamesArgs),
    /// Update configuration of one or more containers
    Update(super::exec::UpdateArgs),
    /// Execute a command in a running container
    Exec(super::exec::ExecArgs),
    /// Attach local standard input, output, and error streams to a running container
    Attach(super::exec::AttachArgs),
    /// Display the running processes of a container
    Top(super::exec::TopArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(super::exec::StatsArgs),
    /// Copy files/folders between a container and the local filesystem
    Cp(super::files::CpArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(super::files::DiffArgs),
    /// Create a new image from a container's changes
    Commit(super::files::CommitArgs),
    /// Export a container's filesystem as a tar archive
    Export(super::files::ExportArgs),
    /// Remove all stopped containers
    Prune(PruneArgs),
}

/// Container names or ids.
#[derive(Args)]
pub struct NamesArgs {
    /// Containers
    #[arg(required = true, value_name = "CONTAINER")]
    containers: Vec<String>,
}

/// Flags of `start`.
#[derive(Args)]
pub struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals
    #[arg(short, long)]
    attach: bool,
    /// Attach container's STDIN
    #[arg(short, long)]
    interactive: bool,
    /// Override the key sequence for detaching a container
    #[arg(long, value_name = "string")]
    detach_keys: Option<String>,
    /// Containers
    #[arg(required = true, value_name = "CONTAINER")]
    containers: Vec<String>,
}

/// Flags of `stop` and `restart`.
#[derive(Args)]
pub struct StopArgs {
    /// Signal to send to the container
    #[arg(short, long, value_name = "string")]
    signal: Option<String>,
    /// Seconds to wait before killing the container
    #[arg(
        short = 't',
        long = "time",
        alias = "timeout",
        value_name = "int",
        allow_hyphen_values = true
    )]
    time: Option<i64>,
    /// Containers
    #[arg(required = true, value_name = "CONTAINER")]
    containers: Vec<String>,
}

/// Flags of `kill`.
#[derive(Args)]
pub struct KillArgs {
    /// Signal to send to the container
    #[arg(short, long, value_name = "string", default_value = "KILL")]
    signal: String,
    /// Containers
    #[arg(required = true, value_name = "CONTAINER")]
    containers: Vec<String>,
}

/// Flags of `rm`.
#[derive(Args)]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short, long)]
    force: bool,
    /// Remove anonymous volumes associated with the container
    #[arg(short, long)]
    volumes: bool,
    /// Remove the specified link (links are not supported)
    #[arg(short, long)]
    link: bool,
    /// Containers
    #[arg(required = true, value_name = "CONTAINER")]
    containers: Vec<String>,
}

/// Flags of `ps`.
#[derive(Args, Default)]
pub struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    all: bool,
    /// Filter output based on conditions provided
    #[arg(short, long = "filter", value_name = "filter")]
    filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long, value_name = "string")]
    format: Option<String>,
    /// Show n last created containers (includes all states)
    #[arg(short = 'n', long = "last", value_name = "int", default_value_t = -1, allow_hyphen_values = true)]
    last: i64,
    /// Show the latest created container (includes all states)
    #[arg(short, long)]
    latest: bool,
    /// Don't truncate output
    #[arg(long)]
    no_trunc: bool,
    /// Only display container IDs
    #[arg(short, long)]
    quiet: bool,
    /// Display total file sizes
    #[arg(short, long)]
    size: bool,
}

/// Flags of `logs`.
#[derive(Args)]
pub struct LogsArgs {
    /// Show extra details provided to logs
    #[arg(long)]
    details: bool,
    /// Follow log output
    #[arg(short, long)]
    follow: bool,
    /// Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)
    #[arg(long, value_name = "string")]
    since: Option<String>,
    /// Number of lines to show from the end of the logs
    #[arg(short = 'n', long, value_name = "string", default_value = "all")]
    tail: String,
    /// Show timestamps
    #[arg(short, long)]
    timestamps: bool,
    /// Show logs before a timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)
    #[arg(long, value_name = "string")]
    until: Option<String>,
    /// The container
    container: String,
}

/// Flags of the top-level `inspect`.
#[derive(Args)]
pub struct InspectArgs {
    /// Format output using a custom template
    #[arg(short, long, value_name = "string")]
    format: Option<String>,
    /// Display total file sizes if the type is container
    #[arg(short, long)]
    size: bool,
    /// Return JSON for specified type (container, image, volume)
    #[arg(long = "type", value_name = "string")]
    kind: Option<String>,
    /// Names or ids
    #[arg(required = true, value_name = "NAME|ID")]
    names: Vec<String>,
}

/// Flags of `container inspect`.
#[derive(Args)]
pub struct ContainerInspectArgs {
    /// Format output using a custom template
    #[arg(short, long, value_name = "string")]
    format: Option<String>,
    /// Display total file sizes
    #[arg(short, long)]
    size: bool,
    /// Containers
    #[arg(required = true, value_name = "CONTAINER")]
    containers: Vec<String>,
}

/// Flags of `rename`.
#[derive(Args)]
pub struct RenameArgs {
    /// The container
    container: String,
    /// Its new name
    new_name: String,
}

/// Flags of `container prune`.
#[derive(Args)]
pub struct PruneArgs {
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long = "filter", value_name = "filter")]
    filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    force: bool,
}

/// Runs a container command.
pub fn dispatch(root: &Path, cmd: Command) -> Result<ExitCode> {
    use ContainerCommand as C;
    let cmd = match cmd {
        Command::Container { command } => match command {
            C::Run(a) => Command::Run(a),
            C::Create(a) => Command::Create(a),
            C::Start(a) => Command::Start(a),
            C::Stop(a) => Command::Stop(a),
            C::Restart(a) => Command::Restart(a),
            C::Kill(a) => Command::Kill(a),
            C::Rm(a) => Command::Rm(a),
            C::Ls(a) => Command::Ps(a),
            C::Logs(a) => Command::Logs(a),
            C::Wait(a) => Command::Wait(a),
            C::Inspect(a) => Command::Inspect(InspectArgs {
                format: a.format,
                size: a.size,
                kind: Some("container".into()),
                names: a.containers,
            }),
            C::Rename(a) => Command::Rename(a),
            C::Pause(a) => Command::Pause(a),
            C::Unpause(a) => Command::Unpause(a),
            C::Update(a) => Command::Update(a),
            C::Exec(a) => Command::Exec(a),
            C::Attach(a) => Command::Attach(a),
            C::Top(a) => Command::Top(a),
            C::Stats(a) => Command::Stats(a),
            C::Cp(a) => Command::Cp(a),
            C::Diff(a) => Command::Diff(a),
            C::Commit(a) => Command::Commit(a),
            C::Export(a) => Command::Export(a),
            C::Prune(a) => return prune(&Ctx::open(root)?, a),
        },
        other => other,
    };
    // `run`/`create` fail with 125 when capsa itself fails, as Docker does.
    if let Command::Run(a) | Command::Create(a) = &cmd {
        let run = matches!(cmd, Command::Run(_));
        let r = Ctx::open(root).and_then(|ctx| {
            if run {
                run_cmd(&ctx, a)
            } else {
                create_cmd(&ctx, a)
            }
        });
        return Ok(match r {
            Ok(code) => code,
            Err(e) => {
                super::print_error(&e);
                ExitCode::from(125)
            }
        });
    }
    if let Command::Exited { id } = cmd {
        return exited(root, &id);
    }
    let ctx = Ctx::open(root)?;
    match cmd {
        Command::Start(a) => start(&ctx, a),
        Command::Stop(a) => super::each(&a.containers, |n| {
            lifecycle::stop(&ctx, n, a.time, a.signal.as_deref()).map(drop)
        }),
        Command::Restart(a) => super::each(&a.containers, |n| restart(&ctx, n, &a)),
        Command::Kill(a) => super::each(&a.containers, |n| kill(&ctx, n, &a.signal)),
        Command::Rm(a) => {
            if a.link {
                bail!("capsa does not support links (rm --link)");
            }
            super::each(&a.containers, |n| rm(&ctx, n, a.force, a.volumes))
        }
        Command::Ps(a) => ps(&ctx, a),
        Command::Logs(a) => logs_cmd(&ctx, a),
        Command::Wait(a) => wait(&ctx, a),
        Command::Inspect(a) => inspect(&ctx, a),
        Command::Rename(a) => rename(&ctx, a),
        Command::Pause(a) => super::each(&a.containers, |n| pause(&ctx, n, true)),
        Command::Unpause(a) => super::each(&a.containers, |n| pause(&ctx, n, false)),
        Command::Update(a) => super::exec::update(&ctx, a),
        Command::Exec(a) => super::exec::exec(&ctx, a),
        Command::Attach(a) => super::exec::attach(&ctx, a),
        Command::Top(a) => super::exec::top(&ctx, a),
        Command::Stats(a) => super::exec::stats(&ctx, a),
        Command::Cp(a) => super::files::cp(&ctx, a),
        Command::Diff(a) => super::files::diff(&ctx, a),
        Command::Commit(a) => super::files::commit(&ctx, a),
        Command::Export(a) => super::files::export(&ctx, a),
        Command::Run(_)
        | Command::Create(_)
        | Command::Container { .. }
        | Command::Exited { .. } => {
            unreachable!("handled above")
        }
    }
}

/// The hidden command the monitor runs when its container has ended
/// (`capsa --root ROOT __exited ID`, spelled out in crates/monitor).
pub const EXITED: &str = "__exited";

/// `__exited`: records the container's exit (see [`lifecycle::monitor_exited`]).
pub fn exited(root: &Path, id: &str) -> Result<ExitCode> {
    lifecycle::monitor_exited(Ctx::open(root)?, id)?;
    Ok(ExitCode::SUCCESS)
}

fn create_cmd(ctx: &Ctx, f: &RunFlags) -> Result<ExitCode> {
    // As with Docker, the process is made by `start`.
    let made = create_container(ctx, f)?;
    println!("{}", made.container.id);
    Ok(ExitCode::SUCCESS)
}

fn run_cmd(ctx: &Ctx, f: &RunFlags) -> Result<ExitCode> {
    let detach_keys = session::parse_detach_keys(
        f.detach_keys
            .as_deref()
            .unwrap_or(session::DEFAULT_DETACH_KEYS),
    )?;
    let made = create_container(ctx, f)?;
    let mut c = made.container;
    let attach = if f.detach {
        Attach::default()
    } else {
        let cfg = &c.settings.config;
        Attach {
            stdout: cfg.attach_stdout,
            stderr: cfg.attach_stderr,
            stdin: cfg.attach_stdin || (cfg.tty && cfg.attach_stdout),
        }
    };
    let spawned = match lifecycle::launch(ctx, &mut c, attach)? {
        Ok(s) => s,
        Err(e) => {
            if c.settings.host_config.auto_remove {
                let _ = lifecycle::remove(ctx, &mut c, true);
            }
            drop(made.lock);
            super::print_error(&anyhow!(e.message.clone()));
            return Ok(ExitCode::from(e.code));
        }
    };
    drop(made.lock);
    if f.detach {
        println!("{}", c.id);
        return Ok(ExitCode::SUCCESS);
    }
    let tty = c.settings.config.tty;
    let mut stdin = spawned.stdin;
    if !c.settings.config.attach_stdin && !tty {
        stdin = None;
    }
    // With a terminal, the master is the container's stdin and the pty
    // whose size follows ours; without -i it is used for its size only.
    let pty = if tty {
        stdin.as_ref().and_then(|m| m.try_clone().ok())
    } else {
        None
    };
    let outcome = session::run(Session {
        link: spawned.link.as_fd(),
        stdin: if tty && !c.settings.config.open_stdin {
            None
        } else {
            stdin
        },
        tty,
        pty,
        detach_keys,
        proxy_to: if f.sig_proxy && !tty {
            spawned.started.pid
        } else {
            0
        },
    })?;
    let code = match outcome {
        Outcome::Exited(code) => code,
        Outcome::Detached => return Ok(ExitCode::SUCCESS),
        Outcome::Gone => {
            let mut c = ctx
                .load_container(&c.id)?
                .ok_or_else(|| anyhow!("container {} is gone", c.id))?;
            lifecycle::refresh(ctx, &mut c)?;
            c.state.exit_code
        }
    };
    if c.settings.host_config.auto_remove {
        // The monitor removes it and then exits.
        let _ = nix::sys::wait::waitpid(spawned.launcher, None);
    } else {
        // Returns once the exit is recorded, as `docker run` does.
        lifecycle::wait_stopped(ctx, &c.id, Duration::from_secs(10))?;
    }
    drop(spawned.link);
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
}

fn start(ctx: &Ctx, a: StartArgs) -> Result<ExitCode> {
    if (a.attach || a.interactive) && a.containers.len() > 1 {
        bail!("you cannot start and attach multiple containers at once");
    }
    if !(a.attach || a.interactive) {
        return super::each(&a.containers, |n| {
            let (mut c, _lock) = ctx.lock_found(n)?;
            match lifecycle::start(ctx, &mut c, Attach::default())? {
                Ok(_) => Ok(()),
                Err(e) => Err(anyhow!(e)),
            }
        });
    }
    let detach_keys = session::parse_detach_keys(
        a.detach_keys
            .as_deref()
            .unwrap_or(session::DEFAULT_DETACH_KEYS),
    )?;
    let (mut c, lock) = ctx.lock_found(&a.containers[0])?;
    let tty = c.settings.config.tty;
    let want_stdin = a.interactive && c.settings.config.open_stdin;
    let attach = Attach {
        stdout: true,
        stderr: true,
        stdin: want_stdin || tty,
    };
    let sp = match lifecycle::start(ctx, &mut c, attach)? {
        Err(e) => return Err(anyhow!(e)),
        Ok(None) => bail!(
            "container {} is already running; use attach",
            a.containers[0]
        ),
        Ok(Some(sp)) => sp,
    };
    drop(lock);
    let pty = if tty {
        sp.stdin.as_ref().and_then(|m| m.try_clone().ok())
    } else {
        None
    };
    let outcome = session::run(Session {
        link: sp.link.as_fd(),
        stdin: if want_stdin { sp.stdin } else { None },
        tty,
        pty,
        detach_keys,
        proxy_to: if tty { 0 } else { sp.started.pid },
    })?;
    Ok(match outcome {
        Outcome::Exited(code) => {
            lifecycle::wait_stopped(ctx, &c.id, Duration::from_secs(10))?;
            ExitCode::from(code.clamp(0, 255) as u8)
        }
        _ => ExitCode::SUCCESS,
    })
}

fn restart(ctx: &Ctx, name: &str, a: &StopArgs) -> Result<()> {
    let id = lifecycle::stop(ctx, name, a.time, a.signal.as_deref())?;
    let (mut c, _lock) = ctx.lock_found(&id)?;
    match lifecycle::start(ctx, &mut c, Attach::default())? {
        Ok(_) => {
            events::container(ctx, &c, "restart", &[]);
            Ok(())
        }
        Err(e) => Err(anyhow!(e)),
    }
}

fn kill(ctx: &Ctx, name: &str, signal: &str) -> Result<()> {
    let sig =
        capsa_runtime::signals::parse(signal).map_err(|_| anyhow!("invalid signal: {signal}"))?;
    let (mut c, _lock) = ctx.lock_found(name)?;
    if !matches!(
        c.state.status,
        Status::Running | Status::Paused | Status::Restarting
    ) {
        bail!(
            "cannot kill container: {name}: container {} is not running",
            c.id
        );
    }
    c.state.manually_stopped = true;
    ctx.save_state(&c)?;
    if c.state.status == Status::Restarting {
        c.state.status = Status::Exited;
        ctx.save_state(&c)?;
        return Ok(());
    }
    Runtime::of(ctx, &c.settings.host_config.runtime)?.kill(&c.id, sig, false)?;
    events::container(ctx, &c, "kill", &[("signal", sig.to_string())]);
    Ok(())
}

fn rm(ctx: &Ctx, name: &str, force: bool, volumes: bool) -> Result<()> {
    let (mut c, lock) = ctx.lock_found(name)?;
    if c.state.status.is_active() && !force {
        bail!(
            "cannot remove container \"/{}\": container is {}: stop the container before removing or force remove",
            c.name,
            c.state.status.as_str()
        );
    }
    let rt = Runtime::of(ctx, &c.settings.host_config.runtime)?;
    if c.state.pid > 0 && alive(c.state.pid, c.state.pid_start) {
        let paused = c.state.status == Status::Paused;
        c.state.manually_stopped = true;
        c.state.status = Status::Removing;
        ctx.save_state(&c)?;
        // A frozen process would not die of SIGKILL before it is thawed.
        if paused {
            let _ = rt.resume(&c.id);
        }
        let _ = rt.kill(&c.id, libc::SIGKILL, true);
        if let Ok(fd) = capsa_runtime::sys::pidfd_open(nix::unistd::Pid::from_raw(c.state.pid)) {
            let _ = crate::sys::wait_readable(&fd, Duration::from_secs(10));
        }
    }
    // The removal ends the monitor too (one sleeping out a restart
    // back-off included): nothing of the container is left on return.
    lifecycle::remove(ctx, &mut c, volumes)?;
    drop(lock);
    Ok(())
}

fn pause(ctx: &Ctx, name: &str, freeze: bool) -> Result<()> {
    let (mut c, _lock) = ctx.lock_found(name)?;
    let rt = Runtime::of(ctx, &c.settings.host_config.runtime)?;
    if freeze {
        if c.state.status == Status::Paused {
            bail!("container {} is already paused", c.id);
        }
        if c.state.status != Status::Running {
            bail!("container {} is not running", c.id);
        }
        rt.pause(&c.id)?;
        c.state.status = Status::Paused;
        ctx.save_state(&c)?;
        events::container(ctx, &c, "pause", &[]);
    } else {
        if c.state.status != Status::Paused {
            bail!("container {} is not paused", c.id);
        }
        rt.resume(&c.id)?;
        c.state.status = Status::Running;
        ctx.save_state(&c)?;
        events::container(ctx, &c, "unpause", &[]);
    }
    Ok(())
}

fn rename(ctx: &Ctx, a: RenameArgs) -> Result<ExitCode> {
    let new = crate::container::valid_name(&a.new_name)?;
    let (c, _lock) = ctx.lock_found(&a.container)?;
    if c.name == new {
        bail!("Renaming a container with the same name as its current name");
    }
    ctx.rename_container(&c.id, &new)?;
    let old = c.name.clone();
    let mut c = c;
    c.name = new;
    events::container(ctx, &c, "rename", &[("oldName", format!("/{old}"))]);
    Ok(ExitCode::SUCCESS)
}

/// `wait`: prints each container's exit code once it stops.
fn wait(ctx: &Ctx, a: NamesArgs) -> Result<ExitCode> {
    let mut failed = false;
    for n in &a.containers {
        let r = (|| -> Result<i32> {
            let c = ctx.find_container(n)?;
            loop {
                if !lifecycle::wait_stopped(ctx, &c.id, Duration::from_secs(3600))? {
                    continue;
                }
                let mut c2 = ctx
                    .load_container(&c.id)?
                    .ok_or_else(|| crate::container::no_such(n))?;
                lifecycle::refresh(ctx, &mut c2)?;
                if matches!(c2.state.status, Status::Exited | Status::Dead) {
                    return Ok(c2.state.exit_code);
                }
                // Created (not started yet) or restarting: keep waiting.
                std::thread::sleep(Duration::from_millis(20));
            }
        })();
        match r {
            Ok(code) => println!("{code}"),
            Err(e) => {
                failed = true;
                super::print_error(&e);
            }
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Go's zero time, as Docker prints unset times.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// RFC 3339 with nanoseconds in UTC (Go's RFC3339Nano), or Go's zero time.
pub fn time_ns(ns: i64) -> String {
    if ns <= 0 {
        return ZERO_TIME.into();
    }
    capsa_images::time::format_rfc3339(
        ns.div_euclid(1_000_000_000),
        ns.rem_euclid(1_000_000_000) as u32,
    )
}

/// Docker's `docker inspect` document of a container.
pub fn inspect_doc(ctx: &Ctx, c: &Container, size: bool) -> Result<Value> {
    let s = &c.state;
    let dir = ctx.container_dir(&c.id);
    let rootfs = ctx.store.rootfs_dir(&c.id);
    let lower: Vec<String> = ctx
        .store
        .db()
        .layers_of(&c.image)
        .unwrap_or_default()
        .iter()
        .rev()
        .filter_map(|l| capsa_images::Digest::parse(&l.chain_id).ok())
        .map(|d| ctx.store.snapshot_dir(&d).join("fs").display().to_string())
        .collect();
    let running = matches!(
        s.status,
        Status::Running | Status::Paused | Status::Restarting
    );
    let net = c.settings.host_config.network_mode.clone();
    let mut doc = json!({
        "Id": c.id,
        "Created": time_ns(c.created_ns),
        "Path": c.settings.path,
        "Args": c.settings.args,
        "State": {
            "Status": s.status.as_str(),
            "Running": running,
            "Paused": s.status == Status::Paused,
            "Restarting": s.status == Status::Restarting,
            "OOMKilled": s.oom_killed,
            "Dead": s.status == Status::Dead,
            "Pid": if running { s.pid } else { 0 },
            "ExitCode": s.exit_code,
            "Error": s.error,
            "StartedAt": time_ns(s.started_ns),
            "FinishedAt": time_ns(s.finished_ns),
        },
        "Image": c.image,
        "ResolvConfPath": dir.join("resolv.conf"),
        "HostnamePath": dir.join("hostname"),
        "HostsPath": dir.join("hosts"),
        "LogPath": if c.settings.host_config.log_config.kind == "none" { String::new() } else { dir.join(format!("{}-json.log", c.id)).display().to_string() },
        "Name": format!("/{}", c.name),
        "RestartCount": s.restart_count,
        "Driver": "overlay2",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": Value::Null,
        "HostConfig": c.settings.host_config,
        "GraphDriver": {
            "Data": {
                "LowerDir": lower.join(":"),
                "MergedDir": rootfs.join("merged"),
                "UpperDir": rootfs.join("upper"),
                "WorkDir": rootfs.join("work"),
            },
            "Name": "overlay2",
        },
        "Mounts": c.settings.mounts,
        "Config": c.settings.config,
        "NetworkSettings": network_settings(&net, running, s.pid),
    });
    if size {
        let (rw, root) = sizes(ctx, c);
        doc["SizeRw"] = json!(rw);
        doc["SizeRootFs"] = json!(root);
    }
    Ok(doc)
}

/// Docker's `NetworkSettings` of a container on the none/host network.
fn network_settings(net: &str, running: bool, pid: i32) -> Value {
    let network_name = net.split(':').next().unwrap_or("none");
    let endpoint = json!({
        "IPAMConfig": Value::Null, "Links": Value::Null, "Aliases": Value::Null,
        "MacAddress": "", "NetworkID": "", "EndpointID": "", "Gateway": "",
        "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "", "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0, "DriverOpts": Value::Null, "DNSNames": Value::Null,
    });
    let mut networks = serde_json::Map::new();
    networks.insert(network_name.to_string(), endpoint);
    json!({
        "Bridge": "",
        "SandboxID": "",
        "SandboxKey": if net == "host" || !running { String::new() } else { format!("/proc/{pid}/ns/net") },
        "Ports": {},
        "HairpinMode": false,
        "LinkLocalIPv6Address": "",
        "LinkLocalIPv6PrefixLen": 0,
        "SecondaryIPAddresses": Value::Null,
        "SecondaryIPv6Addresses": Value::Null,
        "EndpointID": "",
        "Gateway": "",
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "IPAddress": "",
        "IPPrefixLen": 0,
        "IPv6Gateway": "",
        "MacAddress": "",
        "Networks": networks,
    })
}

/// The bytes of the container's writable layer and of its whole root
/// filesystem (the image's layers included).
pub fn sizes(ctx: &Ctx, c: &Container) -> (u64, u64) {
    let rw = capsa_images::store::dir_size(&ctx.store.rootfs_dir(&c.id).join("upper")).unwrap_or(0);
    let image = ctx
        .store
        .db()
        .image(&c.image)
        .ok()
        .flatten()
        .map_or(0, |i| i.size as u64);
    (rw, rw + image)
}

/// The top-level `inspect` (containers, images, volumes) and `container inspect`.
fn inspect(ctx: &Ctx, a: InspectArgs) -> Result<ExitCode> {
    let format = a.format.as_deref().map(Format::parse).transpose()?;
    let kind = a.kind.as_deref().unwrap_or("");
    if !matches!(kind, "" | "container" | "image" | "volume") {
        bail!("\"{kind}\" is not a valid value for --type");
    }
    let mut docs = Vec::new();
    let mut failed = false;
    for n in &a.names {
        let found: Result<Value> = (|| {
            if matches!(kind, "" | "container")
                && let Ok(mut c) = ctx.find_container(n)
            {
                lifecycle::refresh(ctx, &mut c)?;
                return inspect_doc(ctx, &c, a.size);
            }
            if matches!(kind, "" | "image")
                && let Ok(img) = ctx.store.resolve(n)
            {
                return Ok(serde_json::to_value(super::images::inspect_doc(
                    &ctx.store, &img,
                )?)?);
            }
            if matches!(kind, "" | "volume")
                && let Some(v) = ctx.get_volume(n)?
            {
                return Ok(super::volumes::inspect_doc(ctx, &v));
            }
            match kind {
                "container" => Err(crate::container::no_such(n)),
                "image" => Err(anyhow!("No such image: {n}")),
                "volume" => Err(anyhow!("get {n}: no such volume")),
                _ => Err(anyhow!("No such object: {n}")),
            }
        })();
        match found {
            Ok(d) => docs.push(d),
            Err(e) => {
                failed = true;
                super::print_error(&e);
            }
        }
    }
    let mut out = io::stdout().lock();
    match format {
        Some(f) => out.write_all(f.render_loose(&docs)?.as_bytes())?,
        None => writeln!(out, "{}", super::images::indented_json(&docs)?)?,
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Docker's STATUS column.
pub fn status_text(c: &Container) -> String {
    let s = &c.state;
    let now = crate::container::now_ns();
    match s.status {
        Status::Created | Status::Creating => "Created".into(),
        Status::Running => format!("Up {}", units::human_duration_ns(now - s.started_ns)),
        Status::Paused => format!(
            "Up {} (Paused)",
            units::human_duration_ns(now - s.started_ns)
        ),
        Status::Restarting => format!(
            "Restarting ({}) {} ago",
            s.exit_code,
            units::human_duration_ns(now - s.finished_ns)
        ),
        Status::Removing => "Removal In Progress".into(),
        Status::Exited => format!(
            "Exited ({}) {} ago",
            s.exit_code,
            units::human_duration_ns(now - s.finished_ns)
        ),
        Status::Dead => "Dead".into(),
    }
}

/// The COMMAND column: the command quoted, truncated to 20 characters.
fn command_text(c: &Container, trunc: bool) -> String {
    let mut cmd = c.settings.path.clone();
    for a in &c.settings.args {
        cmd.push(' ');
        cmd.push_str(a);
    }
    if trunc && cmd.chars().count() > 20 {
        cmd = format!("{}…", cmd.chars().take(19).collect::<String>());
    }
    format!("\"{cmd}\"")
}

/// Whether a container passes `ps --filter`s.
fn ps_matches(
    ctx: &Ctx,
    c: &Container,
    filters: &[(String, String)],
    all: &[Container],
) -> Result<bool> {
    for (k, v) in filters {
        let ok = match k.as_str() {
            "status" => {
                if !matches!(
                    v.as_str(),
                    "created"
                        | "restarting"
                        | "running"
                        | "removing"
                        | "paused"
                        | "exited"
                        | "dead"
                ) {
                    bail!("invalid filter 'status={v}'");
                }
                c.state.status.as_str() == v
                    || (v == "created" && c.state.status == Status::Creating)
            }
            "name" => c.name.contains(v.trim_start_matches('/')),
            "id" => c.id.starts_with(v),
            "label" => match v.split_once('=') {
                Some((key, val)) => c.settings.config.labels.get(key).is_some_and(|x| x == val),
                None => c.settings.config.labels.contains_key(v),
            },
            "exited" => {
                let code: i32 = v
                    .parse()
                    .map_err(|_| anyhow!("invalid filter 'exited={v}'"))?;
                c.state.status == Status::Exited && c.state.exit_code == code
            }
            "ancestor" => match ctx.store.resolve(v) {
                Ok(img) => c.image == img.id,
                Err(_) => c.settings.config.image == *v,
            },
            "volume" => c
                .settings
                .mounts
                .iter()
                .any(|m| m.name == *v || m.destination == *v || m.source == *v),
            "before" | "since" => {
                let other = all
                    .iter()
                    .find(|o| o.id.starts_with(v.as_str()) || o.name == *v)
                    .ok_or_else(|| crate::container::no_such(v))?;
                if k == "before" {
                    c.created_ns < other.created_ns
                } else {
                    c.created_ns > other.created_ns
                }
            }
            "network" => c.settings.host_config.network_mode == *v,
            other => bail!("invalid filter '{other}'"),
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

/// A container's `ps` row for templates.
fn ps_row(ctx: &Ctx, c: &Container, trunc: bool, size: bool) -> Value {
    let mounts: Vec<String> = c
        .settings
        .mounts
        .iter()
        .map(|m| {
            if m.name.is_empty() {
                m.source.clone()
            } else if trunc && m.name.len() > 15 {
                m.name[..15].to_string() + "…"
            } else {
                m.name.clone()
            }
        })
        .collect();
    let labels: Vec<String> = c
        .settings
        .config
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let size_text = if size {
        let (rw, root) = sizes(ctx, c);
        format!(
            "{} (virtual {})",
            units::human_size_with_precision(rw as f64, 3),
            units::human_size_with_precision(root as f64, 3)
        )
    } else {
        String::new()
    };
    json!({
        "ID": if trunc { c.id[..12].to_string() } else { c.id.clone() },
        "Image": c.settings.config.image,
        "Command": command_text(c, trunc),
        "CreatedAt": units::go_time_string(c.created_ns / 1_000_000_000),
        "RunningFor": units::since(c.created_ns / 1_000_000_000),
        "Ports": "",
        "State": match c.state.status { Status::Creating => "created", s => s.as_str() },
        "Status": status_text(c),
        "Size": size_text,
        "Names": c.name,
        "Labels": labels.join(","),
        "Mounts": mounts.join(","),
        "Networks": c.settings.host_config.network_mode,
        "LocalVolumes": c.settings.mounts.iter().filter(|m| m.kind == "volume").count().to_string(),
    })
}

/// `ps`.
pub fn ps(ctx: &Ctx, a: PsArgs) -> Result<ExitCode> {
    let filters = super::parse_filters(
        &a.filter,
        &[
            "status", "name", "id", "label", "exited", "ancestor", "volume", "before", "since",
            "network",
        ],
    )?;
    ctx.remove_orphans()?;
    let mut rows = Vec::new();
    for mut c in ctx.all_containers()? {
        if !lifecycle::refresh(ctx, &mut c)? {
            continue;
        }
        rows.push(c);
    }
    let last = if a.latest { 1 } else { a.last };
    let show_all = a.all || last > 0 || filters.iter().any(|(k, _)| k == "status" || k == "exited");
    let mut shown = Vec::new();
    for c in &rows {
        if !show_all
            && !matches!(
                c.state.status,
                Status::Running | Status::Paused | Status::Restarting
            )
        {
            continue;
        }
        if c.state.status == Status::Creating {
            continue;
        }
        if !ps_matches(ctx, c, &filters, &rows)? {
            continue;
        }
        shown.push(c);
    }
    if last > 0 {
        shown.truncate(last as usize);
    }
    let trunc = !a.no_trunc;
    let fmt = match a.format.as_deref() {
        _ if a.quiet => "{{.ID}}".to_string(),
        None | Some("") | Some("table") => {
            let mut f = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}".to_string();
            if a.size {
                f.push_str("\t{{.Size}}");
            }
            f
        }
        Some(f) => f.to_string(),
    };
    let values: Vec<Value> = shown
        .iter()
        .map(|c| ps_row(ctx, c, trunc, a.size || fmt.contains(".Size")))
        .collect();
    let out = Format::parse(&fmt)?.render(
        &values,
        &[
            ("ID", "CONTAINER ID"),
            ("Image", "IMAGE"),
            ("Command", "COMMAND"),
            ("CreatedAt", "CREATED AT"),
            ("RunningFor", "CREATED"),
            ("Ports", "PORTS"),
            ("State", "STATE"),
            ("Status", "STATUS"),
            ("Size", "SIZE"),
            ("Names", "NAMES"),
            ("Labels", "LABELS"),
            ("Mounts", "MOUNTS"),
            ("Networks", "NETWORKS"),
            ("LocalVolumes", "LOCAL VOLUMES"),
        ],
    )?;
    io::stdout().write_all(out.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

/// `logs`.
fn logs_cmd(ctx: &Ctx, a: LogsArgs) -> Result<ExitCode> {
    let c = ctx.find_container(&a.container)?;
    if c.settings.host_config.log_config.kind == "none" {
        bail!("configured logging driver does not support reading");
    }
    let since = match &a.since {
        Some(s) => Some(
            units::parse_timestamp_ns(s)
                .ok_or_else(|| anyhow!("invalid value for \"since\": {s}"))?,
        ),
        None => None,
    };
    let until = match &a.until {
        Some(s) => Some(
            units::parse_timestamp_ns(s)
                .ok_or_else(|| anyhow!("invalid value for \"until\": {s}"))?,
        ),
        None => None,
    };
    let tail: Option<usize> = match a.tail.as_str() {
        "all" | "" => None,
        n => match n.parse::<i64>() {
            Ok(v) if v < 0 => None,
            Ok(v) => Some(v as usize),
            Err(_) => bail!("invalid value for \"tail\": {n}"),
        },
    };
    let _ = a.details;
    let dir = ctx.container_dir(&c.id);
    let files = logs::files(&dir, &c.id);
    // Following starts where the reading below ends.
    let follower = a
        .follow
        .then(|| logs::Follower::at_end(dir.join(format!("{}-json.log", c.id))));
    let keep = |e: &logs::Entry| {
        since.is_none_or(|s| e.time_ns >= s) && until.is_none_or(|u| e.time_ns <= u)
    };
    let mut entries: Vec<logs::Entry> = logs::read_all(&files)
        .into_iter()
        .filter(|e| keep(e))
        .collect();
    if let Some(n) = tail {
        let skip = entries.len().saturating_sub(n);
        entries.drain(..skip);
    }
    let mut out = io::stdout().lock();
    let mut err = io::stderr().lock();
    let mut print = |e: &logs::Entry| -> Result<()> {
        let w: &mut dyn Write = if e.stderr { &mut err } else { &mut out };
        if a.timestamps {
            let secs = e.time_ns.div_euclid(1_000_000_000);
            let nanos = e.time_ns.rem_euclid(1_000_000_000);
            let base = capsa_images::time::format_rfc3339(secs, 0);
            write!(w, "{}.{nanos:09}Z ", base.trim_end_matches('Z'))?;
        }
        w.write_all(e.log.as_bytes())?;
        w.flush()?;
        Ok(())
    };
    for e in &entries {
        if let Err(e) = print(e) {
            if is_broken_pipe(&e) {
                return Ok(ExitCode::SUCCESS);
            }
            return Err(e);
        }
    }
    let Some(mut follower) = follower else {
        return Ok(ExitCode::SUCCESS);
    };
    let mut idle = Duration::from_millis(5);
    loop {
        let new = follower.poll();
        for e in new.iter().filter(|e| keep(e)) {
            if let Err(e) = print(e) {
                if is_broken_pipe(&e) {
                    return Ok(ExitCode::SUCCESS);
                }
                return Err(e);
            }
        }
        if until.is_some_and(|u| crate::container::now_ns() > u) {
            break;
        }
        if new.is_empty() {
            // The container ended (and its monitor has written everything).
            let mut cur = match ctx.load_container(&c.id)? {
                Some(c) => c,
                None => break,
            };
            lifecycle::refresh(ctx, &mut cur)?;
            if !matches!(
                cur.state.status,
                Status::Running | Status::Paused | Status::Restarting | Status::Created
            ) {
                for e in follower.poll().iter().filter(|e| keep(e)) {
                    let _ = print(e);
                }
                break;
            }
            std::thread::sleep(idle);
            idle = (idle * 2).min(Duration::from_millis(100));
        } else {
            idle = Duration::from_millis(5);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.downcast_ref::<io::Error>()
        .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
}

/// `container prune`.
fn prune(ctx: &Ctx, a: PruneArgs) -> Result<ExitCode> {
    if !a.force && !super::confirm("WARNING! This will remove all stopped containers.")? {
        return Ok(ExitCode::SUCCESS);
    }
    let (ids, bytes) = prune_containers(ctx, &a.filter)?;
    let mut out = io::stdout().lock();
    super::print_deleted(&mut out, "Containers", &ids)?;
    super::print_reclaimed(&mut out, bytes)?;
    Ok(ExitCode::SUCCESS)
}

/// Removes the stopped containers matching `filter` (until, label,
/// label!); returns their ids and the bytes of their writable layers.
pub fn prune_containers(ctx: &Ctx, filter: &[String]) -> Result<(Vec<String>, u64)> {
    let filters = super::parse_filters(filter, &["until", "label", "label!"])?;
    super::check_until(&filters)?;
    let mut ids = Vec::new();
    let mut bytes = 0u64;
    ctx.remove_orphans()?;
    for mut c in ctx.all_containers()? {
        if !lifecycle::refresh(ctx, &mut c)? {
            continue;
        }
        if !matches!(
            c.state.status,
            Status::Exited | Status::Dead | Status::Created
        ) {
            continue;
        }
        let labels = &c.settings.config.labels;
        let ok = filters.iter().all(|(k, v)| match k.as_str() {
            "until" => units::parse_timestamp(v).is_some_and(|t| c.created_ns / 1_000_000_000 < t),
            "label" => match v.split_once('=') {
                Some((key, val)) => labels.get(key).is_some_and(|x| x == val),
                None => labels.contains_key(v),
            },
            "label!" => !match v.split_once('=') {
                Some((key, val)) => labels.get(key).is_some_and(|x| x == val),
                None => labels.contains_key(v),
            },
            _ => true,
        });
        if !ok {
            continue;
        }
        let Ok((mut c, lock)) = ctx.lock_found(&c.id) else {
            continue;
        };
        if !matches!(
            c.state.status,
            Status::Exited | Status::Dead | Status::Created
        ) {
            continue;
        }
        bytes += sizes(ctx, &c).0;
        lifecycle::remove(ctx, &mut c, false)?;
        drop(lock);
        ids.push(c.id);
    }
    events::prune(&ctx.root, "container", bytes);
    Ok((ids, bytes))
}
