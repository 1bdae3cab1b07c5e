//! Commands that work inside a running container: `exec`, `attach`,
//! `top`, `stats`, and `update` of its resources.

use std::io::{self, Read as _, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use clap::Args;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use serde_json::{Value, json};

use super::session::{self, Outcome, Session};
use crate::container::attach::{Request, connect_monitor};
use crate::container::lifecycle::{self, alive};
use crate::container::runtime::Runtime;
use crate::container::{Container, Status, spec};
use crate::ctx::Ctx;
use crate::events;
use crate::format::Format;
use crate::units;

/// Flags of `exec`.
#[derive(Args)]
pub struct ExecArgs {
    /// Detached mode: run command in the background
    #[arg(short, long)]
    detach: bool,
    /// Override the key sequence for detaching a container
    #[arg(long, value_name = "string")]
    detach_keys: Option<String>,
    /// Set environment variables
    #[arg(short, long, value_name = "list", allow_hyphen_values = true)]
    env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long, value_name = "list")]
    env_file: Vec<std::path::PathBuf>,
    /// Keep STDIN open even if not attached
    #[arg(short, long)]
    interactive: bool,
    /// Give extended privileges to the command
    #[arg(long)]
    privileged: bool,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    tty: bool,
    /// Username or UID (format: "<name|uid>[:<group|gid>]")
    #[arg(short, long, value_name = "string")]
    user: Option<String>,
    /// Working directory inside the container
    #[arg(short, long, value_name = "string")]
    workdir: Option<String>,
    /// The container, then the command and its arguments
    #[arg(required = true, num_args = 2.., trailing_var_arg = true, allow_hyphen_values = true, value_name = "CONTAINER COMMAND [ARG...]")]
    args: Vec<String>,
}

/// Flags of `attach`.
#[derive(Args)]
pub struct AttachArgs {
    /// Override the key sequence for detaching a container
    #[arg(long, value_name = "string")]
    detach_keys: Option<String>,
    /// Do not attach STDIN
    #[arg(long)]
    no_stdin: bool,
    /// Proxy all received signals to the process
    #[arg(long, value_name = "bool", num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set, default_value = "true")]
    sig_proxy: bool,
    /// The container
    container: String,
}

/// Flags of `top`.
#[derive(Args)]
pub struct TopArgs {
    /// The container
    container: String,
    /// Options for ps (default -ef)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    ps_options: Vec<String>,
}

/// Flags of `stats`.
#[derive(Args)]
pub struct StatsArgs {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    all: bool,
    /// Format output using a custom template
    #[arg(long, value_name = "string")]
    format: Option<String>,
    /// Disable streaming stats and only pull the first result
    #[arg(long)]
    no_stream: bool,
    /// Do not truncate output
    #[arg(long)]
    no_trunc: bool,
    /// Containers
    #[arg(value_name = "CONTAINER")]
    containers: Vec<String>,
}

/// Flags of `update`.
#[derive(Args)]
pub struct UpdateArgs {
    /// Block IO (relative weight), between 10 and 1000, or 0 to disable
    #[arg(long, value_name = "uint16")]
    blkio_weight: Option<u16>,
    /// Limit CPU CFS (Completely Fair Scheduler) period
    #[arg(long, value_name = "int")]
    cpu_period: Option<i64>,
    /// Limit CPU CFS (Completely Fair Scheduler) quota
    #[arg(long, value_name = "int", allow_hyphen_values = true)]
    cpu_quota: Option<i64>,
    /// Limit the CPU real-time period in microseconds
    #[arg(long = "cpu-rt-period", value_name = "int")]
    cpu_rt_period: Option<i64>,
    /// Limit the CPU real-time runtime in microseconds
    #[arg(long = "cpu-rt-runtime", value_name = "int")]
    cpu_rt_runtime: Option<i64>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long, value_name = "int")]
    cpu_shares: Option<i64>,
    /// Number of CPUs
    #[arg(long, value_name = "decimal")]
    cpus: Option<String>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long, value_name = "string")]
    cpuset_cpus: Option<String>,
    /// MEMs in which to allow execution (0-3, 0,1)
    #[arg(long, value_name = "string")]
    cpuset_mems: Option<String>,
    /// Memory limit
    #[arg(short, long, value_name = "bytes")]
    memory: Option<String>,
    /// Memory soft limit
    #[arg(long, value_name = "bytes")]
    memory_reservation: Option<String>,
    /// Swap limit equal to memory plus swap: -1 to enable unlimited swap
    #[arg(long, value_name = "bytes", allow_hyphen_values = true)]
    memory_swap: Option<String>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long, value_name = "int", allow_hyphen_values = true)]
    pids_limit: Option<i64>,
    /// Restart policy to apply when a container exits
    #[arg(long, value_name = "string")]
    restart: Option<String>,
    /// Containers
    #[arg(required = true, value_name = "CONTAINER")]
    containers: Vec<String>,
}

/// A running container, found and checked.
fn running(ctx: &Ctx, name: &str) -> Result<Container> {
    let mut c = ctx.find_container(name)?;
    lifecycle::refresh(ctx, &mut c)?;
    match c.state.status {
        Status::Running if alive(c.state.pid, c.state.pid_start) => Ok(c),
        Status::Paused => bail!(
            "container {} is paused, unpause the container before exec",
            c.id
        ),
        _ => bail!("container {} is not running", c.id),
    }
}

fn read_env_files(files: &[std::path::PathBuf]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(f).with_context(|| format!("open {}", f.display()))?;
        out.extend(
            text.lines()
                .map(str::trim_start)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_string),
        );
    }
    Ok(out)
}

/// `exec`.
pub fn exec(ctx: &Ctx, a: ExecArgs) -> Result<ExitCode> {
    let c = running(ctx, &a.args[0])?;
    let cmd = a.args[1..].to_vec();
    let detach_keys = session::parse_detach_keys(
        a.detach_keys
            .as_deref()
            .unwrap_or(session::DEFAULT_DETACH_KEYS),
    )?;
    let dir = ctx.container_dir(&c.id);
    let (config, _) = capsa_runtime::spec::load(&dir)?;
    let mut env = read_env_files(&a.env_file)?;
    env.extend(a.env.iter().cloned());
    let env: Vec<String> = env
        .into_iter()
        .filter_map(|e| {
            if e.contains('=') {
                Some(e)
            } else {
                std::env::var(&e).ok().map(|v| format!("{e}={v}"))
            }
        })
        .collect();
    let user = match &a.user {
        Some(u) => {
            let root = std::path::PathBuf::from(format!("/proc/{}/root", c.state.pid));
            let r = capsa_images::runtime_config::resolve_user(&root, u)?;
            Some((r.uid, Some(r.gid)))
        }
        None => None,
    };
    if let Some(w) = &a.workdir
        && !w.starts_with('/')
    {
        bail!("the working directory '{w}' is invalid, it needs to be an absolute path");
    }
    let overrides = capsa_runtime::exec::Overrides {
        args: cmd.clone(),
        env,
        cwd: a.workdir.as_ref().map(std::path::PathBuf::from),
        user,
        additional_gids: Vec::new(),
        caps: if a.privileged {
            spec::all_caps()
        } else {
            Vec::new()
        },
        no_new_privs: false,
        tty: a.tty,
        apparmor: None,
        process_label: None,
    };
    let mut process = capsa_runtime::exec::process_from_config(&config, &overrides)?;
    if a.tty {
        let mut env = process.env().clone().unwrap_or_default();
        if !env.iter().any(|e| e.starts_with("TERM=")) {
            env.push("TERM=xterm".into());
            process.set_env(Some(env));
        }
    }
    if a.privileged
        && let Some(caps) = process.capabilities().clone()
    {
        // --privileged: every capability, the inheritable set too.
        let mut caps = caps;
        caps.set_inheritable(caps.bounding().clone());
        process.set_capabilities(Some(caps));
    }
    events::container(ctx, &c, &format!("exec_create: {}", cmd.join(" ")), &[]);
    // Without -i the process gets no stdin; detached, no stdio at all.
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?;
    if !a.interactive || a.detach {
        nix::unistd::dup2_stdin(&null).context("dup2")?;
    }
    if a.detach {
        nix::unistd::dup2_stdout(&null).context("dup2")?;
        nix::unistd::dup2_stderr(&null).context("dup2")?;
    }
    let rt = Runtime::of(ctx, &c.settings.host_config.runtime)?;
    events::container(ctx, &c, &format!("exec_start: {}", cmd.join(" ")), &[]);
    let code = match rt {
        Runtime::Builtin(rt) => {
            let opts = capsa_runtime::exec::ExecOptions {
                id: c.id.clone(),
                process,
                console_socket: None,
                pid_file: None,
                detach: a.detach,
                preserve_fds: 0,
                ignore_paused: false,
            };
            let execed = match rt.exec(&opts) {
                Ok(x) => x,
                Err(e) => {
                    // Not found: 127; any other failure to start it: 126.
                    let l = crate::container::launch::LaunchError::from_runtime(&e);
                    super::print_error(&anyhow!("OCI runtime exec failed: {}", l.message));
                    return Ok(ExitCode::from(l.code.max(126)));
                }
            };
            if a.detach {
                return Ok(ExitCode::SUCCESS);
            }
            wait_exec(execed.pid, execed.pty_master, a.interactive, &detach_keys)?
        }
        Runtime::External { bin, root } => {
            let pfile = dir.join(format!("exec-{}.json", std::process::id()));
            std::fs::write(&pfile, serde_json::to_vec(&process)?)?;
            let mut cmdline = Runtime::command(&bin, &root);
            cmdline.arg("exec").arg("--process").arg(&pfile);
            if a.detach {
                cmdline.arg("--detach");
            }
            if a.tty {
                bail!(
                    "exec -t with --runtime {}: a terminal for exec is only available with capsa's runtime",
                    bin.display()
                );
            }
            cmdline.arg(&c.id);
            let st = cmdline
                .status()
                .with_context(|| format!("running {}", bin.display()));
            let _ = std::fs::remove_file(&pfile);
            st?.code().unwrap_or(255)
        }
    };
    if let Some(c) = ctx.load_container(&c.id)? {
        events::container(ctx, &c, "exec_die", &[("exitCode", code.to_string())]);
    }
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
}

/// Waits for an exec'd process (our child), relaying its terminal.
fn wait_exec(
    pid: nix::unistd::Pid,
    pty: Option<OwnedFd>,
    interactive: bool,
    detach_keys: &[u8],
) -> Result<i32> {
    use nix::sys::wait::{WaitStatus, waitpid};
    let Some(master) = pty else {
        loop {
            match waitpid(pid, None) {
                Err(nix::errno::Errno::EINTR) => continue,
                r => {
                    return Ok(
                        capsa_runtime::container::exit_code(r.context("waitpid")?).unwrap_or(255)
                    );
                }
            }
        }
    };
    let _raw = interactive.then(session::RawTerminal::enter);
    session::resize(master.as_fd());
    let mut mask = nix::sys::signal::SigSet::empty();
    mask.add(nix::sys::signal::Signal::SIGWINCH);
    mask.thread_block()?;
    let sfd = nix::sys::signalfd::SignalFd::with_flags(
        &mask,
        nix::sys::signalfd::SfdFlags::SFD_NONBLOCK,
    )?;
    let stdin = io::stdin();
    let mut stdin_open = interactive;
    let mut matched = 0;
    let mut buf = vec![0u8; 32 * 1024];
    let mut out = io::stdout();
    let mut detached = false;
    loop {
        let mut fds = vec![
            PollFd::new(master.as_fd(), PollFlags::POLLIN),
            PollFd::new(sfd.as_fd(), PollFlags::POLLIN),
        ];
        if stdin_open {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        if let Err(e) = poll(&mut fds, PollTimeout::NONE) {
            if e == nix::errno::Errno::EINTR {
                continue;
            }
            return Err(e.into());
        }
        let rev: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        if rev[1] {
            while let Ok(Some(_)) = sfd.read_signal() {
                session::resize(master.as_fd());
            }
        }
        if rev.get(2) == Some(&true) {
            let n = stdin.lock().read(&mut buf).unwrap_or(0);
            if n == 0 {
                stdin_open = false;
            } else {
                let mut data = Vec::with_capacity(n);
                for &b in &buf[..n] {
                    if b == detach_keys[matched] {
                        matched += 1;
                        if matched == detach_keys.len() {
                            detached = true;
                            break;
                        }
                    } else {
                        data.extend_from_slice(&detach_keys[..matched]);
                        matched = usize::from(b == detach_keys[0]);
                        if matched == 0 {
                            data.push(b);
                        }
                    }
                }
                let _ = nix::unistd::write(&master, &data);
                if detached {
                    return Ok(0);
                }
            }
        }
        if rev[0] {
            match nix::unistd::read(&master, &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    out.write_all(&buf[..n])?;
                    out.flush()?;
                }
            }
        }
    }
    let _ = mask.thread_unblock();
    loop {
        match waitpid(pid, None) {
            Err(nix::errno::Errno::EINTR) => continue,
            Ok(st @ (WaitStatus::Exited(..) | WaitStatus::Signaled(..))) => {
                return Ok(capsa_runtime::container::exit_code(st).unwrap_or(255));
            }
            Ok(_) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// `attach`.
pub fn attach(ctx: &Ctx, a: AttachArgs) -> Result<ExitCode> {
    let mut c = ctx.find_container(&a.container)?;
    lifecycle::refresh(ctx, &mut c)?;
    match c.state.status {
        Status::Running => {}
        Status::Paused => bail!("You cannot attach to a paused container, unpause it first"),
        _ => bail!("You cannot attach to a stopped container, start it first"),
    }
    let detach_keys = session::parse_detach_keys(
        a.detach_keys
            .as_deref()
            .unwrap_or(session::DEFAULT_DETACH_KEYS),
    )?;
    let tty = c.settings.config.tty;
    let want_stdin = !a.no_stdin && c.settings.config.open_stdin;
    let out = io::stdout();
    let err = io::stderr();
    let att = connect_monitor(
        &ctx.container_dir(&c.id),
        Request {
            stdout: Some(out.as_fd()),
            stderr: (!tty).then(|| err.as_fd()),
            stdin: want_stdin || tty,
            timeout: None,
        },
    )?
    .ok_or_else(|| {
        // It ended meanwhile, or nobody watches it any more.
        if lifecycle::wait_stopped(ctx, &c.id, std::time::Duration::from_secs(5)).unwrap_or(false) {
            anyhow!("You cannot attach to a stopped container, start it first")
        } else {
            anyhow!(
                "cannot attach to container {}: its monitor is not running",
                c.id
            )
        }
    })?;
    events::container(ctx, &c, "attach", &[]);
    let stdin = att.stdin.as_ref().and_then(|f| f.try_clone().ok());
    let pty = if tty {
        att.stdin.as_ref().and_then(|f| f.try_clone().ok())
    } else {
        None
    };
    let outcome = session::run(Session {
        link: att.socket(),
        stdin: if want_stdin { stdin } else { None },
        tty,
        pty,
        detach_keys,
        proxy_to: if a.sig_proxy && !tty { c.state.pid } else { 0 },
    })?;
    Ok(match outcome {
        Outcome::Exited(code) => {
            // Returns once the exit is recorded, as `run` does.
            lifecycle::wait_stopped(ctx, &c.id, std::time::Duration::from_secs(10))?;
            ExitCode::from(code.clamp(0, 255) as u8)
        }
        Outcome::Detached | Outcome::Gone => ExitCode::SUCCESS,
    })
}

/// The cgroup manager of a container (recorded at its start).
fn cgroups(c: &Container) -> Result<capsa_runtime::cgroups::Manager> {
    let paths = c
        .settings
        .cgroup
        .clone()
        .ok_or_else(|| anyhow!("container {} has no cgroups (it never ran)", c.id))?;
    Ok(capsa_runtime::cgroups::Manager::from_paths(paths))
}

/// `top`: the host's `ps` output, restricted to the container's processes.
pub fn top(ctx: &Ctx, a: TopArgs) -> Result<ExitCode> {
    let c = running(ctx, &a.container)?;
    let pids: Vec<i32> = cgroups(&c)?
        .pids()?
        .into_iter()
        .map(|p| p.as_raw())
        .collect();
    let opts = if a.ps_options.is_empty() {
        vec!["-ef".to_string()]
    } else {
        a.ps_options.clone()
    };
    let out = std::process::Command::new("ps")
        .args(&opts)
        .output()
        .context("running ps")?;
    if !out.status.success() {
        bail!("ps: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let pid_col = header
        .iter()
        .position(|h| *h == "PID")
        .ok_or_else(|| anyhow!("Couldn't find PID field in ps output"))?;
    let mut table = header.join("\t");
    table.push('\n');
    for line in lines {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let Some(pid) = fields.get(pid_col).and_then(|p| p.parse::<i32>().ok()) else {
            continue;
        };
        if !pids.contains(&pid) {
            continue;
        }
        // The last column (the command) keeps its spaces.
        let mut cells: Vec<String> = fields
            .iter()
            .take(header.len().saturating_sub(1))
            .map(|s| s.to_string())
            .collect();
        if fields.len() >= header.len() {
            cells.push(fields[header.len() - 1..].join(" "));
        }
        table.push_str(&cells.join("\t"));
        table.push('\n');
    }
    events::container(ctx, &c, "top", &[]);
    io::stdout().write_all(crate::format::tabwriter(&table, 10, 3).as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

/// Total CPU time of the host (all CPUs, ns) from /proc/stat.
fn system_cpu_ns() -> u64 {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: u64 = text
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|v| v.parse::<u64>().ok())
        .sum();
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as u64;
    ticks * (1_000_000_000 / hz)
}

fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// Network bytes (rx, tx) of the container's interfaces but lo.
fn net_io(pid: i32) -> (u64, u64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/net/dev")).unwrap_or_default();
    let mut rx = 0;
    let mut tx = 0;
    for l in text.lines().skip(2) {
        let Some((name, rest)) = l.split_once(':') else {
            continue;
        };
        if name.trim() == "lo" {
            continue;
        }
        let f: Vec<u64> = rest
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        rx += f.first().copied().unwrap_or(0);
        tx += f.get(8).copied().unwrap_or(0);
    }
    (rx, tx)
}

/// One sample of a container's statistics.
struct Sample {
    cpu: u64,
    system: u64,
    stats: capsa_runtime::cgroups::Stats,
}

fn sample(c: &Container) -> Option<Sample> {
    let stats = cgroups(c).ok()?.stats().ok()?;
    Some(Sample {
        cpu: stats.cpu.usage.total,
        system: system_cpu_ns(),
        stats,
    })
}

/// The `stats` row of a container from two samples.
fn stats_row(c: &Container, prev: Option<&Sample>, cur: Option<&Sample>, trunc: bool) -> Value {
    let id = if trunc {
        c.id[..12].to_string()
    } else {
        c.id.clone()
    };
    let Some(cur) = cur else {
        return json!({"ID": id, "Container": id, "Name": c.name, "CPUPerc": "--", "MemUsage": "-- / --", "MemPerc": "--", "NetIO": "--", "BlockIO": "--", "PIDs": "--"});
    };
    let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let cpu = match prev {
        Some(p) if cur.system > p.system && cur.cpu >= p.cpu => {
            (cur.cpu - p.cpu) as f64 / (cur.system - p.system) as f64 * ncpu * 100.0
        }
        _ => 0.0,
    };
    let m = &cur.stats.memory;
    let inactive = m
        .raw
        .get("total_inactive_file")
        .or_else(|| m.raw.get("inactive_file"))
        .copied()
        .unwrap_or(0);
    let used = m.usage.usage.saturating_sub(inactive);
    let host = host_memory();
    let limit = if m.usage.limit == 0 || m.usage.limit > host {
        host
    } else {
        m.usage.limit
    };
    let mem_pct = if limit > 0 {
        used as f64 / limit as f64 * 100.0
    } else {
        0.0
    };
    let (rx, tx) = if c.settings.host_config.network_mode == "host" {
        (0, 0)
    } else {
        net_io(c.state.pid)
    };
    let (mut rd, mut wr) = (0u64, 0u64);
    for e in &cur.stats.blkio.io_service_bytes_recursive {
        match e.op.to_ascii_lowercase().as_str() {
            "read" => rd += e.value,
            "write" => wr += e.value,
            _ => {}
        }
    }
    let bin = |v: u64| units::human_size_binary(v as f64);
    let dec = |v: u64| units::human_size_with_precision(v as f64, 3);
    json!({
        "ID": id,
        "Container": id,
        "Name": c.name,
        "CPUPerc": format!("{cpu:.2}%"),
        "MemUsage": format!("{} / {}", bin(used), bin(limit)),
        "MemPerc": format!("{mem_pct:.2}%"),
        "NetIO": format!("{} / {}", dec(rx), dec(tx)),
        "BlockIO": format!("{} / {}", dec(rd), dec(wr)),
        "PIDs": cur.stats.pids.current.to_string(),
    })
}

/// `stats`.
pub fn stats(ctx: &Ctx, a: StatsArgs) -> Result<ExitCode> {
    let pick = |ctx: &Ctx| -> Result<Vec<Container>> {
        if a.containers.is_empty() {
            let mut v = Vec::new();
            for mut c in ctx.all_containers()? {
                if lifecycle::refresh(ctx, &mut c)?
                    && (a.all || matches!(c.state.status, Status::Running | Status::Paused))
                {
                    v.push(c);
                }
            }
            Ok(v)
        } else {
            a.containers.iter().map(|n| ctx.find_container(n)).collect()
        }
    };
    let fmt = match a.format.as_deref() {
        None | Some("") | Some("table") => {
            "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}".to_string()
        }
        Some(f) => f.to_string(),
    };
    let format = Format::parse(&fmt)?;
    let headers = [
        ("ID", "CONTAINER ID"),
        ("Container", "CONTAINER"),
        ("Name", "NAME"),
        ("CPUPerc", "CPU %"),
        ("MemUsage", "MEM USAGE / LIMIT"),
        ("MemPerc", "MEM %"),
        ("NetIO", "NET I/O"),
        ("BlockIO", "BLOCK I/O"),
        ("PIDs", "PIDS"),
    ];
    let mut prev: std::collections::HashMap<String, Sample> = Default::default();
    let live = !a.no_stream;
    let mut first = true;
    loop {
        let list = pick(ctx)?;
        let active = |c: &Container| matches!(c.state.status, Status::Running | Status::Paused);
        if first {
            for c in list.iter().filter(|c| active(c)) {
                if let Some(s) = sample(c) {
                    prev.insert(c.id.clone(), s);
                }
            }
            // CPU use needs two readings.
            std::thread::sleep(Duration::from_millis(500));
        }
        let started = Instant::now();
        let mut rows = Vec::new();
        let mut next = std::collections::HashMap::new();
        for c in &list {
            let cur = active(c).then(|| sample(c)).flatten();
            rows.push(stats_row(c, prev.get(&c.id), cur.as_ref(), !a.no_trunc));
            if let Some(s) = cur {
                next.insert(c.id.clone(), s);
            }
        }
        prev = next;
        let text = format.render(&rows, &headers)?;
        let mut out = io::stdout().lock();
        if live {
            // Clear the screen and redraw, as Docker's live table does.
            out.write_all(b"\x1b[2J\x1b[H")?;
        }
        if out
            .write_all(text.as_bytes())
            .and_then(|_| out.flush())
            .is_err()
        {
            return Ok(ExitCode::SUCCESS);
        }
        drop(out);
        if !live {
            return Ok(ExitCode::SUCCESS);
        }
        first = false;
        std::thread::sleep(Duration::from_secs(1).saturating_sub(started.elapsed()));
    }
}

/// `update`: new resource limits (applied to a running container at once,
/// and kept for its next starts) and restart policy.
/// Settings the kernel cannot take are dropped with Docker's warnings,
/// printed after the names as Docker's CLI prints them.
pub fn update(ctx: &Ctx, a: UpdateArgs) -> Result<ExitCode> {
    let mut warnings = Vec::new();
    let code = super::each(&a.containers, |name| {
        update_one(ctx, name, &a, &mut warnings)
    })?;
    if !warnings.is_empty() {
        println!("{}", warnings.join("\n"));
    }
    Ok(code)
}

fn update_one(
    ctx: &Ctx,
    name: &str,
    a: &UpdateArgs,
    warnings: &mut Vec<&'static str>,
) -> Result<()> {
    let (mut c, _lock) = ctx.lock_found(name)?;
    let hc = &mut c.settings.host_config;
    let size = |s: &Option<String>| s.as_deref().map(units::parse_size).transpose();
    if let Some(m) = size(&a.memory)? {
        if m > 0 && m < 6 * 1024 * 1024 {
            bail!("Minimum memory limit allowed is 6MB");
        }
        hc.memory = m;
        if a.memory_swap.is_none() && hc.memory_swap > 0 {
            hc.memory_swap = m * 2;
        }
    }
    if let Some(r) = size(&a.memory_reservation)? {
        hc.memory_reservation = r;
    }
    if let Some(s) = &a.memory_swap {
        hc.memory_swap = if s == "-1" { -1 } else { units::parse_size(s)? };
        if hc.memory_swap > 0 && hc.memory_swap < hc.memory {
            bail!("Minimum memoryswap limit should be larger than memory limit, see usage");
        }
    }
    if let Some(c_) = &a.cpus {
        let v: f64 = c_
            .parse()
            .map_err(|_| anyhow!("invalid argument \"{c_}\" for \"--cpus\" flag"))?;
        if v.is_nan() || v <= 0.0 {
            bail!("invalid argument \"{c_}\" for \"--cpus\" flag: must be positive");
        }
        hc.nano_cpus = (v * 1e9).round() as i64;
        hc.cpu_period = 0;
        hc.cpu_quota = 0;
    }
    if let Some(v) = a.cpu_period {
        hc.cpu_period = v;
    }
    if let Some(v) = a.cpu_quota {
        hc.cpu_quota = v;
    }
    if let Some(v) = a.cpu_rt_period {
        hc.cpu_realtime_period = v;
    }
    if let Some(v) = a.cpu_rt_runtime {
        hc.cpu_realtime_runtime = v;
    }
    if let Some(v) = a.cpu_shares {
        hc.cpu_shares = v;
    }
    if let Some(v) = &a.cpuset_cpus {
        hc.cpuset_cpus = v.clone();
    }
    if let Some(v) = &a.cpuset_mems {
        hc.cpuset_mems = v.clone();
    }
    if let Some(v) = a.pids_limit {
        hc.pids_limit = Some(v);
    }
    if let Some(v) = a.blkio_weight {
        let ((v, warning), _) = spec::supported_block_io_weights(v, Vec::new());
        warnings.extend(warning);
        if v != 0 && !(10..=1000).contains(&v) {
            bail!("Range of blkio weight is from 10 to 1000");
        }
        hc.blkio_weight = v;
    }
    if let Some(r) = &a.restart {
        if hc.auto_remove && r != "no" {
            bail!(
                "Restart policy cannot be updated because AutoRemove is enabled for the container"
            );
        }
        hc.restart_policy = super::run::parse_restart(r)?;
    }
    // The resources as the OCI config has them (no device rules: those stay).
    let mut res = spec::resources(&c.settings, Vec::new())?;
    if let Some(limit) = a.pids_limit {
        res["pids"] = json!({"limit": if limit <= 0 { -1 } else { limit }});
    }
    let resources: oci_spec::runtime::LinuxResources = serde_json::from_value(res.clone())?;
    if matches!(c.state.status, Status::Running | Status::Paused)
        && alive(c.state.pid, c.state.pid_start)
    {
        Runtime::of(ctx, &c.settings.host_config.runtime)?.update(&c.id, &resources)?;
    }
    // Kept for the next start.
    let dir = ctx.container_dir(&c.id);
    let path = dir.join("config.json");
    let mut config: Value = serde_json::from_slice(&std::fs::read(&path)?)?;
    let devices = config["linux"]["resources"]["devices"].clone();
    let mut merged = res;
    if !devices.is_null() {
        merged["devices"] = devices;
    }
    config["linux"]["resources"] = merged;
    std::fs::write(&path, serde_json::to_vec_pretty(&config)?)?;
    ctx.save_settings(&c)?;
    events::container(ctx, &c, "update", &[]);
    Ok(())
}
