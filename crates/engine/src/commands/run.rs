//! The flags of `run` and `create`, checked and turned into a container's
//! settings, and the making of a container: its row, directory, root
//! filesystem, volumes and OCI config. Every flag Docker has is either
//! implemented or refused with an error saying why; bad values get an error
//! naming the flag and exit status 125, and nothing is created.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, anyhow, bail};
use clap::{ArgAction, Args};
use serde_json::Value;

use crate::container::settings::{
    Config, DeviceMapping, HostConfig, LogConfig, MountPoint, MountSpec, RestartPolicy, Settings,
    ThrottleDevice, Ulimit, WeightDevice,
};
use crate::container::{self, Container, Lock, State, Status, spec};
use crate::ctx::Ctx;
use crate::units::parse_size;

/// Flags of `run` and `create` (`-h` is the hostname, as in Docker).
#[derive(Args, Debug, Default)]
#[command(disable_help_flag = true)]
pub struct RunFlags {
    /// Print help
    #[arg(long, action = ArgAction::Help)]
    help: Option<bool>,
    /// Attach to STDIN, STDOUT or STDERR
    #[arg(short = 'a', long = "attach", value_name = "list")]
    pub attach: Vec<String>,
    /// Add a custom host-to-IP mapping (host:ip)
    #[arg(long = "add-host", value_name = "list")]
    add_host: Vec<String>,
    /// Add an annotation to the container (passed through to the OCI runtime)
    #[arg(long = "annotation", value_name = "map")]
    annotation: Vec<String>,
    /// Block IO (relative weight), between 10 and 1000, or 0 to disable
    #[arg(long = "blkio-weight", value_name = "uint16")]
    blkio_weight: Option<u16>,
    /// Block IO weight (relative device weight)
    #[arg(long = "blkio-weight-device", value_name = "list")]
    blkio_weight_device: Vec<String>,
    /// Add Linux capabilities
    #[arg(long = "cap-add", value_name = "list")]
    cap_add: Vec<String>,
    /// Drop Linux capabilities
    #[arg(long = "cap-drop", value_name = "list")]
    cap_drop: Vec<String>,
    /// Optional parent cgroup for the container
    #[arg(long = "cgroup-parent", value_name = "string")]
    cgroup_parent: Option<String>,
    /// Cgroup namespace to use (host|private)
    #[arg(long = "cgroupns", value_name = "string")]
    cgroupns: Option<String>,
    /// Write the container ID to the file
    #[arg(long = "cidfile", value_name = "string")]
    cidfile: Option<PathBuf>,
    /// Limit CPU CFS (Completely Fair Scheduler) period
    #[arg(long = "cpu-period", value_name = "int")]
    cpu_period: Option<i64>,
    /// Limit CPU CFS (Completely Fair Scheduler) quota
    #[arg(long = "cpu-quota", value_name = "int", allow_hyphen_values = true)]
    cpu_quota: Option<i64>,
    /// Limit CPU real-time period in microseconds
    #[arg(long = "cpu-rt-period", value_name = "int")]
    cpu_rt_period: Option<i64>,
    /// Limit CPU real-time runtime in microseconds
    #[arg(long = "cpu-rt-runtime", value_name = "int")]
    cpu_rt_runtime: Option<i64>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares", value_name = "int")]
    cpu_shares: Option<i64>,
    /// Number of CPUs
    #[arg(long = "cpus", value_name = "decimal")]
    cpus: Option<String>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-cpus", value_name = "string")]
    cpuset_cpus: Option<String>,
    /// MEMs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-mems", value_name = "string")]
    cpuset_mems: Option<String>,
    /// Run container in background and print container ID
    #[arg(short = 'd', long = "detach")]
    pub detach: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys", value_name = "string")]
    pub detach_keys: Option<String>,
    /// Add a host device to the container
    #[arg(long = "device", value_name = "list")]
    device: Vec<String>,
    /// Add a rule to the cgroup allowed devices list
    #[arg(long = "device-cgroup-rule", value_name = "list")]
    device_cgroup_rule: Vec<String>,
    /// Limit read rate (bytes per second) from a device
    #[arg(long = "device-read-bps", value_name = "list")]
    device_read_bps: Vec<String>,
    /// Limit read rate (IO per second) from a device
    #[arg(long = "device-read-iops", value_name = "list")]
    device_read_iops: Vec<String>,
    /// Limit write rate (bytes per second) to a device
    #[arg(long = "device-write-bps", value_name = "list")]
    device_write_bps: Vec<String>,
    /// Limit write rate (IO per second) to a device
    #[arg(long = "device-write-iops", value_name = "list")]
    device_write_iops: Vec<String>,
    /// Skip image verification (capsa does not verify signatures: only true is accepted)
    #[arg(long = "disable-content-trust", value_name = "bool", num_args = 0..=1, default_missing_value = "true")]
    disable_content_trust: Option<bool>,
    /// Set custom DNS servers
    #[arg(long = "dns", value_name = "list")]
    dns: Vec<String>,
    /// Set DNS options
    #[arg(long = "dns-option", alias = "dns-opt", value_name = "list")]
    dns_option: Vec<String>,
    /// Set custom DNS search domains
    #[arg(long = "dns-search", value_name = "list")]
    dns_search: Vec<String>,
    /// Container NIS domain name
    #[arg(long = "domainname", value_name = "string")]
    domainname: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long = "entrypoint", value_name = "string", allow_hyphen_values = true)]
    entrypoint: Option<String>,
    /// Set environment variables
    #[arg(
        short = 'e',
        long = "env",
        value_name = "list",
        allow_hyphen_values = true
    )]
    env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file", value_name = "list")]
    env_file: Vec<PathBuf>,
    /// Expose a port or a range of ports
    #[arg(long = "expose", value_name = "list")]
    expose: Vec<String>,
    /// Add additional groups to join
    #[arg(long = "group-add", value_name = "list")]
    group_add: Vec<String>,
    /// Container host name
    #[arg(short = 'h', long = "hostname", value_name = "string")]
    hostname: Option<String>,
    /// Run an init inside the container that forwards signals and reaps processes
    #[arg(long = "init")]
    init: bool,
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long = "interactive")]
    pub interactive: bool,
    /// IPC mode to use (private, shareable, host, none, container:NAME)
    #[arg(long = "ipc", value_name = "string")]
    ipc: Option<String>,
    /// Set meta data on a container
    #[arg(short = 'l', long = "label", value_name = "list")]
    label: Vec<String>,
    /// Read in a line delimited file of labels
    #[arg(long = "label-file", value_name = "list")]
    label_file: Vec<PathBuf>,
    /// Logging driver for the container (json-file or none)
    #[arg(long = "log-driver", value_name = "string")]
    log_driver: Option<String>,
    /// Log driver options (max-size, max-file)
    #[arg(long = "log-opt", value_name = "list")]
    log_opt: Vec<String>,
    /// Memory limit
    #[arg(short = 'm', long = "memory", value_name = "bytes")]
    memory: Option<String>,
    /// Memory soft limit
    #[arg(long = "memory-reservation", value_name = "bytes")]
    memory_reservation: Option<String>,
    /// Swap limit equal to memory plus swap: '-1' to enable unlimited swap
    #[arg(long = "memory-swap", value_name = "bytes", allow_hyphen_values = true)]
    memory_swap: Option<String>,
    /// Tune container memory swappiness (0 to 100)
    #[arg(
        long = "memory-swappiness",
        value_name = "int",
        allow_hyphen_values = true
    )]
    memory_swappiness: Option<i64>,
    /// Attach a filesystem mount to the container
    #[arg(long = "mount", value_name = "mount")]
    mount: Vec<String>,
    /// Assign a name to the container
    #[arg(long = "name", value_name = "string")]
    pub name: Option<String>,
    /// Connect a container to a network (none, host, container:NAME)
    #[arg(long = "network", alias = "net", value_name = "network")]
    network: Option<String>,
    /// Disable any container-specified HEALTHCHECK (capsa runs none)
    #[arg(long = "no-healthcheck")]
    no_healthcheck: bool,
    /// Disable OOM Killer
    #[arg(long = "oom-kill-disable")]
    oom_kill_disable: bool,
    /// Tune host's OOM preferences (-1000 to 1000)
    #[arg(long = "oom-score-adj", value_name = "int", allow_hyphen_values = true)]
    oom_score_adj: Option<i32>,
    /// PID namespace to use (host, container:NAME)
    #[arg(long = "pid", value_name = "string")]
    pid: Option<String>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long = "pids-limit", value_name = "int", allow_hyphen_values = true)]
    pids_limit: Option<i64>,
    /// Set platform if server is multi-platform capable
    #[arg(long = "platform", value_name = "string")]
    platform: Option<String>,
    /// Give extended privileges to this container
    #[arg(long = "privileged")]
    privileged: bool,
    /// Pull image before running ("always", "missing", "never")
    #[arg(long = "pull", value_name = "string", default_value = "missing")]
    pull: String,
    /// Suppress the pull output
    #[arg(short = 'q', long = "quiet")]
    quiet: bool,
    /// Mount the container's root filesystem as read only
    #[arg(long = "read-only")]
    read_only: bool,
    /// Restart policy to apply when a container exits
    #[arg(long = "restart", value_name = "string")]
    restart: Option<String>,
    /// Automatically remove the container and its associated anonymous volumes when it exits
    #[arg(long = "rm")]
    pub rm: bool,
    /// Runtime to use for this container (capsa, or a runc-compatible binary)
    #[arg(long = "runtime", value_name = "string")]
    runtime: Option<String>,
    /// Security Options
    #[arg(long = "security-opt", value_name = "list")]
    security_opt: Vec<String>,
    /// Size of /dev/shm
    #[arg(long = "shm-size", value_name = "bytes")]
    shm_size: Option<String>,
    /// Proxy received signals to the process
    #[arg(long = "sig-proxy", value_name = "bool", num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set, default_value = "true")]
    pub sig_proxy: bool,
    /// Signal to stop the container
    #[arg(long = "stop-signal", value_name = "string")]
    stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container
    #[arg(long = "stop-timeout", value_name = "int", allow_hyphen_values = true)]
    stop_timeout: Option<i64>,
    /// Sysctl options
    #[arg(long = "sysctl", value_name = "map")]
    sysctl: Vec<String>,
    /// Mount a tmpfs directory
    #[arg(long = "tmpfs", value_name = "list")]
    tmpfs: Vec<String>,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long = "tty")]
    pub tty: bool,
    /// Ulimit options
    #[arg(long = "ulimit", value_name = "ulimit")]
    ulimit: Vec<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short = 'u', long = "user", value_name = "string")]
    user: Option<String>,
    /// User namespace to use (only "host")
    #[arg(long = "userns", value_name = "string")]
    userns: Option<String>,
    /// UTS namespace to use (host)
    #[arg(long = "uts", value_name = "string")]
    uts: Option<String>,
    /// Bind mount a volume
    #[arg(short = 'v', long = "volume", value_name = "list")]
    volume: Vec<String>,
    /// Optional volume driver for the container (local)
    #[arg(long = "volume-driver", value_name = "string")]
    volume_driver: Option<String>,
    /// Mount volumes from the specified container(s)
    #[arg(long = "volumes-from", value_name = "list")]
    volumes_from: Vec<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long = "workdir", value_name = "string")]
    workdir: Option<String>,

    // Docker flags capsa refuses, with the reason (see `refuse`).
    #[arg(short = 'p', long = "publish", value_name = "list", hide = true)]
    publish: Vec<String>,
    #[arg(short = 'P', long = "publish-all", hide = true)]
    publish_all: bool,
    #[arg(long = "ip", hide = true)]
    ip: Option<String>,
    #[arg(long = "ip6", hide = true)]
    ip6: Option<String>,
    #[arg(long = "link", hide = true)]
    link: Vec<String>,
    #[arg(long = "link-local-ip", hide = true)]
    link_local_ip: Vec<String>,
    #[arg(long = "network-alias", hide = true)]
    network_alias: Vec<String>,
    #[arg(long = "mac-address", hide = true)]
    mac_address: Option<String>,
    #[arg(long = "gpus", hide = true)]
    gpus: Option<String>,
    #[arg(long = "health-cmd", hide = true, allow_hyphen_values = true)]
    health_cmd: Option<String>,
    #[arg(long = "health-interval", hide = true)]
    health_interval: Option<String>,
    #[arg(long = "health-retries", hide = true)]
    health_retries: Option<String>,
    #[arg(long = "health-start-period", hide = true)]
    health_start_period: Option<String>,
    #[arg(long = "health-start-interval", hide = true)]
    health_start_interval: Option<String>,
    #[arg(long = "health-timeout", hide = true)]
    health_timeout: Option<String>,
    #[arg(long = "storage-opt", hide = true)]
    storage_opt: Vec<String>,
    #[arg(long = "isolation", hide = true)]
    isolation: Option<String>,
    #[arg(long = "kernel-memory", hide = true)]
    kernel_memory: Option<String>,
    #[arg(long = "cpu-count", hide = true)]
    cpu_count: Option<String>,
    #[arg(long = "cpu-percent", hide = true)]
    cpu_percent: Option<String>,
    #[arg(long = "io-maxbandwidth", hide = true)]
    io_maxbandwidth: Option<String>,
    #[arg(long = "io-maxiops", hide = true)]
    io_maxiops: Option<String>,

    /// The image, then the command and its arguments
    #[arg(value_name = "IMAGE [COMMAND] [ARG...]", required = true, num_args = 1.., trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

impl RunFlags {
    /// Refuses the Docker flags capsa does not implement, naming them.
    fn refuse(&self) -> Result<()> {
        let networking =
            "needs container networking (bridge, ports), which capsa does not have yet";
        let checks: &[(bool, &str, &str)] = &[
            (!self.publish.is_empty(), "--publish", networking),
            (self.publish_all, "--publish-all", networking),
            (self.ip.is_some(), "--ip", networking),
            (self.ip6.is_some(), "--ip6", networking),
            (!self.link.is_empty(), "--link", networking),
            (
                !self.link_local_ip.is_empty(),
                "--link-local-ip",
                networking,
            ),
            (
                !self.network_alias.is_empty(),
                "--network-alias",
                networking,
            ),
            (self.mac_address.is_some(), "--mac-address", networking),
            (
                self.gpus.is_some(),
                "--gpus",
                "GPU devices are not supported",
            ),
            (
                self.health_cmd.is_some()
                    || self.health_interval.is_some()
                    || self.health_retries.is_some()
                    || self.health_start_period.is_some()
                    || self.health_start_interval.is_some()
                    || self.health_timeout.is_some(),
                "--health-*",
                "health checks are not supported",
            ),
            (
                !self.storage_opt.is_empty(),
                "--storage-opt",
                "per-container storage options are not supported by the overlay store",
            ),
            (
                self.isolation.is_some(),
                "--isolation",
                "isolation technologies are a Windows feature",
            ),
            (
                self.kernel_memory.is_some(),
                "--kernel-memory",
                "kernel memory limits are deprecated and not supported",
            ),
            (
                self.cpu_count.is_some(),
                "--cpu-count",
                "this is a Windows-only flag",
            ),
            (
                self.cpu_percent.is_some(),
                "--cpu-percent",
                "this is a Windows-only flag",
            ),
            (
                self.io_maxbandwidth.is_some(),
                "--io-maxbandwidth",
                "this is a Windows-only flag",
            ),
            (
                self.io_maxiops.is_some(),
                "--io-maxiops",
                "this is a Windows-only flag",
            ),
            (
                self.disable_content_trust == Some(false),
                "--disable-content-trust=false",
                "image signatures (content trust) are not supported",
            ),
        ];
        for (set, flag, why) in checks {
            if *set {
                bail!("capsa does not support {flag}: {why}");
            }
        }
        Ok(())
    }
}

/// A container made by `create` (or the create half of `run`), locked.
pub struct Made {
    /// The container.
    pub container: Container,
    /// Its lock, held until the command is done with it.
    pub lock: Lock,
}

/// The image a run/create names, resolved in the local store with the
/// `--pull` policy and checked against `--platform`.
fn resolve_image(
    ctx: &Ctx,
    f: &RunFlags,
    name: &str,
) -> Result<(capsa_images::db::ImageRow, Value)> {
    let policy: capsa_distribution::PullPolicy = f.pull.parse()?;
    let platform = f
        .platform
        .as_deref()
        .map(capsa_distribution::Platform::parse)
        .transpose()?;
    let renderer = crate::commands::registry::progress::Renderer::new(
        crate::commands::registry::progress::Output::Stderr,
        f.quiet,
    );
    let (img, pulled) =
        capsa_distribution::ensure_image(&ctx.store, name, policy, platform.as_ref(), &renderer)?;
    if let Some(p) = pulled {
        let r = &p.reference;
        crate::commands::images::image_event(&ctx.store, "pull", &r.familiar(), &r.familiar_name());
    }
    let config = crate::commands::images::config_json(&ctx.store, &img.id)?;
    if let Some(p) = &f.platform {
        let want: Vec<&str> = p.split('/').collect();
        let os = config["os"].as_str().unwrap_or("linux");
        let arch = config["architecture"].as_str().unwrap_or("");
        let variant = config["variant"].as_str().unwrap_or("");
        let norm = |a: &str| match a {
            "x86_64" | "x86-64" => "amd64".to_string(),
            "aarch64" => "arm64".to_string(),
            other => other.to_string(),
        };
        let ok = match want.as_slice() {
            [o] => *o == os,
            [o, a] => *o == os && norm(a) == norm(arch),
            [o, a, v] => *o == os && norm(a) == norm(arch) && *v == variant,
            _ => bail!("invalid platform {p:?}: use os[/arch[/variant]]"),
        };
        if !ok {
            let actual = [os, arch, variant]
                .iter()
                .filter(|s| !s.is_empty())
                .cloned()
                .collect::<Vec<_>>()
                .join("/");
            bail!(
                "image with reference {name} was found but its platform ({actual}) does not match the specified platform ({p})"
            );
        }
    }
    Ok((img, config))
}

fn read_env_file(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("open {}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let l = line.trim_start();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let name = l.split_once('=').map_or(l, |(k, _)| k);
        if name.is_empty() || name.contains(char::is_whitespace) {
            bail!(
                "{}:{}: variable '{name}' contains whitespaces",
                path.display(),
                i + 1
            );
        }
        out.push(l.to_string());
    }
    Ok(out)
}

/// `NAME=VALUE` kept; a bare `NAME` takes the value of capsa's own
/// environment, or is dropped when unset (Docker's rule).
fn resolve_env(list: Vec<String>) -> Vec<String> {
    list.into_iter()
        .filter_map(|e| {
            if e.contains('=') {
                Some(e)
            } else {
                std::env::var(&e).ok().map(|v| format!("{e}={v}"))
            }
        })
        .collect()
}

fn parse_ulimit(s: &str) -> Result<Ulimit> {
    let bad = || anyhow!("invalid ulimit argument: {s}");
    let (name, vals) = s.split_once('=').ok_or_else(bad)?;
    let known = [
        "core",
        "cpu",
        "data",
        "fsize",
        "locks",
        "memlock",
        "msgqueue",
        "nice",
        "nofile",
        "nproc",
        "rss",
        "rtprio",
        "rttime",
        "sigpending",
        "stack",
        "as",
    ];
    if !known.contains(&name) {
        bail!("invalid ulimit type: {name}");
    }
    let (soft, hard) = match vals.split_once(':') {
        Some((a, b)) => (a, b),
        None => (vals, vals),
    };
    let soft: i64 = soft.parse().map_err(|_| bad())?;
    let hard: i64 = hard.parse().map_err(|_| bad())?;
    if soft > hard {
        bail!("ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}");
    }
    Ok(Ulimit {
        name: name.to_string(),
        soft,
        hard,
    })
}

fn parse_throttle(s: &str, bytes: bool) -> Result<ThrottleDevice> {
    let (path, rate) = s
        .rsplit_once(':')
        .ok_or_else(|| anyhow!("bad format: {s} (use PATH:RATE)"))?;
    if !path.starts_with("/dev/") {
        bail!("bad format for device path: {path}");
    }
    let rate = if bytes {
        parse_size(rate).map_err(|_| anyhow!("invalid rate for device: {s}. The correct format is <device-path>:<number>[<unit>]. Number must be a positive integer. Unit is optional and can be kb, mb, or gb"))?
    } else {
        rate.parse::<i64>()
            .map_err(|_| anyhow!("invalid rate for device: {s}. The correct format is <device-path>:<number>. Number must be a positive integer"))?
    };
    if rate < 0 {
        bail!("invalid rate for device: {s}");
    }
    spec::block_device_numbers(path)?;
    Ok(ThrottleDevice {
        path: path.to_string(),
        rate: rate as u64,
    })
}

fn parse_device(s: &str) -> Result<DeviceMapping> {
    let parts: Vec<&str> = s.split(':').collect();
    let is_perms = |p: &str| !p.is_empty() && p.chars().all(|c| "rwm".contains(c));
    let (host, inside, perms) = match parts.as_slice() {
        [h] => (*h, *h, "rwm"),
        [h, p] if is_perms(p) => (*h, *h, *p),
        [h, i] => (*h, *i, "rwm"),
        [h, i, p] if is_perms(p) => (*h, *i, *p),
        _ => bail!("invalid device specification: {s}"),
    };
    if !inside.starts_with('/') {
        bail!("invalid device specification: {s}: the container path must be absolute");
    }
    spec::device(host, inside, perms)?;
    Ok(DeviceMapping {
        path_on_host: host.to_string(),
        path_in_container: inside.to_string(),
        cgroup_permissions: perms.to_string(),
    })
}

pub(crate) fn parse_restart(s: &str) -> Result<RestartPolicy> {
    let (name, count) = match s.split_once(':') {
        Some((n, c)) => (n, Some(c)),
        None => (s, None),
    };
    let max = match (name, count) {
        ("no" | "always" | "unless-stopped", None) | ("", None) => 0,
        ("on-failure", None) => 0,
        ("on-failure", Some(c)) => {
            let n: i64 = c.parse().map_err(|_| {
                anyhow!("invalid restart policy format: maximum retry count must be an integer")
            })?;
            if n < 0 {
                bail!("invalid restart policy: maximum retry count cannot be negative");
            }
            n
        }
        ("always" | "unless-stopped" | "no", Some(_)) => {
            bail!(
                "invalid restart policy format: maximum retry count can only be used with 'on-failure'"
            )
        }
        _ => bail!(
            "invalid restart policy format: {s}: use no, always, unless-stopped or on-failure[:max-retries]"
        ),
    };
    Ok(RestartPolicy {
        name: if name.is_empty() {
            "no".into()
        } else {
            name.to_string()
        },
        maximum_retry_count: max,
    })
}

/// Expands `--expose` values (`80`, `80/udp`, `8000-8002/tcp`).
fn parse_expose(s: &str) -> Result<Vec<String>> {
    let (ports, proto) = s.split_once('/').unwrap_or((s, "tcp"));
    if !matches!(proto, "tcp" | "udp" | "sctp") {
        bail!("invalid proto: {proto}");
    }
    let (a, b) = ports.split_once('-').unwrap_or((ports, ports));
    let a: u16 = a
        .parse()
        .map_err(|_| anyhow!("invalid range format for --expose: {s}"))?;
    let b: u16 = b
        .parse()
        .map_err(|_| anyhow!("invalid range format for --expose: {s}"))?;
    if b < a {
        bail!("invalid range format for --expose: {s}");
    }
    Ok((a..=b).map(|p| format!("{p}/{proto}")).collect())
}

/// A namespace mode: empty, `host`, or `container:NAME` (checked later).
fn ns_mode(flag: &str, v: Option<&str>, allowed: &[&str]) -> Result<String> {
    let v = v.unwrap_or("");
    if v.is_empty() || allowed.contains(&v) || v.starts_with("container:") && v.len() > 10 {
        return Ok(v.to_string());
    }
    bail!("invalid {flag} mode: {v:?} (use {})", allowed.join(", "))
}

/// A mount as given by `-v`, `--mount` or `--tmpfs`, before volumes exist.
#[derive(Clone, Debug)]
enum Wanted {
    Bind {
        src: String,
        dst: String,
        rw: bool,
        propagation: String,
        mode: String,
        create: bool,
    },
    Volume {
        name: Option<String>,
        dst: String,
        rw: bool,
        nocopy: bool,
        mode: String,
        labels: BTreeMap<String, String>,
    },
    Tmpfs {
        dst: String,
        opts: String,
    },
}

impl Wanted {
    fn dst(&self) -> &str {
        match self {
            Wanted::Bind { dst, .. } | Wanted::Volume { dst, .. } | Wanted::Tmpfs { dst, .. } => {
                dst
            }
        }
    }
}

fn clean_dst(dst: &str, what: &str) -> Result<String> {
    if !dst.starts_with('/') {
        bail!("invalid {what} specification: destination {dst:?} is not an absolute path");
    }
    if dst == "/" {
        bail!("invalid {what} specification: destination can't be '/'");
    }
    let mut out = String::new();
    for c in dst.split('/').filter(|c| !c.is_empty() && *c != ".") {
        if c == ".." {
            bail!("invalid {what} specification: destination {dst:?} contains '..'");
        }
        out.push('/');
        out.push_str(c);
    }
    Ok(out)
}

const PROPAGATIONS: &[&str] = &[
    "private", "rprivate", "shared", "rshared", "slave", "rslave",
];

/// `-v SRC:DST[:OPTS]`, `-v NAME:DST[:OPTS]`, `-v DST`.
fn parse_volume_flag(s: &str) -> Result<Wanted> {
    let parts: Vec<&str> = s.split(':').collect();
    let (src, dst, opts) = match parts.as_slice() {
        [d] => (None, *d, ""),
        [a, b] if b.starts_with('/') => (Some(*a), *b, ""),
        [d, o] => (None, *d, *o),
        [a, b, o] => (Some(*a), *b, *o),
        _ => bail!("invalid volume specification: '{s}'"),
    };
    let dst = clean_dst(dst, "volume")?;
    let mut rw = true;
    let mut propagation = String::new();
    let mut nocopy = false;
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" => rw = false,
            "rw" => rw = true,
            "nocopy" => nocopy = true,
            "z" | "Z" => bail!(
                "invalid volume specification: '{s}': SELinux relabeling (:z/:Z) is not supported (SELinux is not enabled)"
            ),
            // No-ops on Linux, as in Docker.
            "consistent" | "cached" | "delegated" => {}
            p if PROPAGATIONS.contains(&p) => propagation = p.to_string(),
            other => bail!("invalid mode: {other} in volume specification '{s}'"),
        }
    }
    match src {
        Some(src) if src.starts_with('/') => {
            if nocopy {
                bail!("invalid volume specification: '{s}': nocopy applies to volumes only");
            }
            Ok(Wanted::Bind {
                src: src.to_string(),
                dst,
                rw,
                propagation,
                mode: opts.to_string(),
                create: true,
            })
        }
        Some(name) => {
            if !propagation.is_empty() {
                bail!(
                    "invalid volume specification: '{s}': propagation applies to bind mounts only"
                );
            }
            crate::volumes::valid_name(name)?;
            Ok(Wanted::Volume {
                name: Some(name.to_string()),
                dst,
                rw,
                nocopy,
                mode: opts.to_string(),
                labels: BTreeMap::new(),
            })
        }
        None => Ok(Wanted::Volume {
            name: None,
            dst,
            rw,
            nocopy,
            mode: opts.to_string(),
            labels: BTreeMap::new(),
        }),
    }
}

fn parse_bool(v: Option<&str>, key: &str) -> Result<bool> {
    match v {
        None | Some("1") | Some("true") => Ok(true),
        Some("0") | Some("false") => Ok(false),
        Some(other) => bail!("invalid value for {key}: {other}"),
    }
}

/// `--mount type=...,source=...,target=...,...`
fn parse_mount_flag(s: &str) -> Result<(Wanted, MountSpec)> {
    let mut kind = "volume".to_string();
    let mut src = String::new();
    let mut dst = String::new();
    let mut ro = false;
    let mut propagation = String::new();
    let mut nocopy = false;
    let mut labels = BTreeMap::new();
    let mut tmpfs_opts: Vec<String> = Vec::new();
    for field in s.split(',') {
        let (k, v) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v)),
            None => (field.trim().to_ascii_lowercase(), None),
        };
        let val = || {
            v.map(str::to_string)
                .ok_or_else(|| anyhow!("invalid field '{field}' must be a key=value pair"))
        };
        match k.as_str() {
            "type" => kind = val()?,
            "source" | "src" => src = val()?,
            "target" | "destination" | "dst" => dst = val()?,
            "readonly" | "ro" => ro = parse_bool(v, &k)?,
            "bind-propagation" => {
                let p = val()?;
                if !PROPAGATIONS.contains(&p.as_str()) {
                    bail!("invalid bind-propagation: {p}");
                }
                propagation = p;
            }
            "volume-nocopy" => nocopy = parse_bool(v, &k)?,
            "volume-label" => {
                let l = val()?;
                let (a, b) = l.split_once('=').unwrap_or((&l, ""));
                labels.insert(a.to_string(), b.to_string());
            }
            "volume-driver" => {
                if val()? != "local" {
                    bail!(
                        "volume driver {:?} is not supported (capsa has the local driver only)",
                        v.unwrap_or("")
                    );
                }
            }
            "tmpfs-size" => {
                let size = parse_size(&val()?)?;
                tmpfs_opts.push(format!("size={size}"));
            }
            "tmpfs-mode" => {
                let m = val()?;
                u32::from_str_radix(&m, 8).map_err(|_| anyhow!("invalid tmpfs-mode: {m}"))?;
                tmpfs_opts.push(format!("mode={m}"));
            }
            "consistency" => {}
            "bind-nonrecursive"
            | "bind-recursive"
            | "volume-opt"
            | "volume-subpath"
            | "tmpfs-options"
            | "bind-create-mountpoint" => {
                bail!("--mount option {k} is not supported by capsa")
            }
            other => bail!("unexpected key '{other}' in '{field}'"),
        }
    }
    if dst.is_empty() {
        bail!("invalid argument for \"--mount\" flag: target is required");
    }
    let target = clean_dst(&dst, "mount")?;
    let spec = MountSpec {
        kind: kind.clone(),
        source: src.clone(),
        target: target.clone(),
        read_only: ro,
        ..Default::default()
    };
    let wanted = match kind.as_str() {
        "bind" => {
            if src.is_empty() {
                bail!("invalid mount config for type \"bind\": field Source must not be empty");
            }
            if !src.starts_with('/') {
                bail!(
                    "invalid mount config for type \"bind\": invalid mount path: '{src}' mount path must be absolute"
                );
            }
            if !Path::new(&src).exists() {
                bail!(
                    "invalid mount config for type \"bind\": bind source path does not exist: {src}"
                );
            }
            Wanted::Bind {
                src,
                dst: target,
                rw: !ro,
                propagation,
                mode: String::new(),
                create: false,
            }
        }
        "volume" => {
            if !src.is_empty() {
                crate::volumes::valid_name(&src)?;
            }
            Wanted::Volume {
                name: (!src.is_empty()).then_some(src),
                dst: target,
                rw: !ro,
                nocopy,
                mode: String::new(),
                labels,
            }
        }
        "tmpfs" => {
            if !src.is_empty() {
                bail!(
                    "invalid mount config for type \"tmpfs\": field Source must not be specified"
                );
            }
            let mut opts = tmpfs_opts;
            if ro {
                opts.push("ro".into());
            }
            Wanted::Tmpfs {
                dst: target,
                opts: opts.join(","),
            }
        }
        other => bail!("invalid mount type: {other} (capsa supports bind, volume and tmpfs)"),
    };
    Ok((wanted, spec))
}

/// `--tmpfs /path[:opts]`.
fn parse_tmpfs_flag(s: &str) -> Result<Wanted> {
    let (dst, opts) = s.split_once(':').unwrap_or((s, ""));
    let dst = clean_dst(dst, "tmpfs")?;
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        let key = o.split_once('=').map_or(o, |(k, _)| k);
        let ok = matches!(
            key,
            "size"
                | "mode"
                | "uid"
                | "gid"
                | "nr_inodes"
                | "nr_blocks"
                | "ro"
                | "rw"
                | "exec"
                | "noexec"
                | "suid"
                | "nosuid"
                | "dev"
                | "nodev"
                | "atime"
                | "noatime"
                | "relatime"
                | "strictatime"
                | "nodiratime"
                | "diratime"
                | "sync"
                | "async"
                | "huge"
                | "mpol"
                | "inode64"
                | "noswap"
        );
        if !ok {
            bail!("invalid tmpfs option {o:?} in --tmpfs {s}");
        }
    }
    Ok(Wanted::Tmpfs {
        dst,
        opts: opts.to_string(),
    })
}

fn parse_sysctls(
    list: &[String],
    host_net: bool,
    host_ipc: bool,
) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for kv in list {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| anyhow!("invalid sysctl value {kv:?}: use KEY=VALUE"))?;
        let ipc = k.starts_with("kernel.msg")
            || k.starts_with("kernel.sem")
            || k.starts_with("kernel.shm")
            || k.starts_with("fs.mqueue.");
        if ipc {
            if host_ipc {
                bail!("sysctl {k:?} is not allowed in host IPC mode");
            }
        } else if k.starts_with("net.") {
            if host_net {
                bail!("sysctl {k:?} not allowed in host network namespace");
            }
        } else if k != "kernel.domainname" && k != "kernel.hostname" {
            bail!("sysctl {k:?} is not whitelisted (not namespaced)");
        }
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}

/// The settings and mounts of a new container, from the flags and the
/// image config; no side effects.
fn build(
    ctx: &Ctx,
    f: &RunFlags,
    image_name: &str,
    cmd: &[String],
    img_cfg: &Value,
) -> Result<(Settings, Vec<Wanted>)> {
    f.refuse()?;
    let ic = &img_cfg["config"];
    let strings = |v: &Value| -> Option<Vec<String>> {
        v.as_array().map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
    };
    // Process: entrypoint and cmd, as Docker combines them.
    let entrypoint: Option<Vec<String>> = match &f.entrypoint {
        Some(e) if e.is_empty() => None,
        Some(e) => Some(vec![e.clone()]),
        None => strings(&ic["Entrypoint"]),
    };
    let cmd_v: Option<Vec<String>> = if !cmd.is_empty() {
        Some(cmd.to_vec())
    } else if f.entrypoint.is_some() {
        None
    } else {
        strings(&ic["Cmd"])
    };
    let mut argv: Vec<String> = entrypoint.clone().unwrap_or_default();
    argv.extend(cmd_v.clone().unwrap_or_default());
    if argv.is_empty() || argv[0].is_empty() {
        bail!("No command specified");
    }

    let mut env = strings(&ic["Env"]).unwrap_or_default();
    let mut given = Vec::new();
    for file in &f.env_file {
        given.extend(read_env_file(file)?);
    }
    given.extend(f.env.iter().cloned());
    for kv in resolve_env(given) {
        let name = kv
            .split_once('=')
            .map_or(kv.as_str(), |(k, _)| k)
            .to_string();
        if name.is_empty() {
            bail!("invalid environment variable: {kv}");
        }
        env.retain(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) != name);
        env.push(kv);
    }

    let mut labels: BTreeMap<String, String> = ic["Labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default();
    let mut label_list = Vec::new();
    for file in &f.label_file {
        label_list.extend(read_env_file(file)?);
    }
    label_list.extend(f.label.iter().cloned());
    labels.extend(spec::kv_map(&label_list));

    let workdir = match &f.workdir {
        Some(w) if !w.starts_with('/') => {
            bail!("the working directory '{w}' is invalid, it needs to be an absolute path")
        }
        Some(w) => w.clone(),
        None => ic["WorkingDir"].as_str().unwrap_or("").to_string(),
    };

    let network = f.network.clone().unwrap_or_else(|| "none".into());
    let network_mode = match network.as_str() {
        "none" | "host" => network.clone(),
        "default" => "none".into(),
        "bridge" => bail!(
            "--network bridge: container networking (the bridge network) is not available in capsa yet; use --network none or host"
        ),
        n if n.starts_with("container:") && n.len() > 10 => n.to_string(),
        other => bail!("network {other} not found (capsa has the none and host networks only)"),
    };
    let host_net = network_mode == "host";
    let ipc_mode = ns_mode(
        "--ipc",
        f.ipc.as_deref(),
        &["private", "shareable", "host", "none"],
    )?;
    let pid_mode = ns_mode("--pid", f.pid.as_deref(), &["host"])?;
    let uts_mode = ns_mode("--uts", f.uts.as_deref(), &["host"])?;
    if uts_mode.starts_with("container:") {
        bail!("invalid --uts mode: only host is supported");
    }
    let cgroupns_mode = match f.cgroupns.as_deref() {
        None | Some("") => String::new(),
        Some(m @ ("host" | "private")) => m.to_string(),
        Some(m) => bail!("invalid --cgroupns: {m} (use host or private)"),
    };
    match f.userns.as_deref() {
        None | Some("") | Some("host") => {}
        Some(m) => bail!("--userns {m}: user namespace remapping is not supported (only host)"),
    }
    if f.hostname.is_some() && host_net {
        bail!("Conflicting options: hostname and the network mode");
    }
    if let Some(h) = &f.hostname
        && (h.is_empty()
            || h.len() > 253
            || !h.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            }))
    {
        bail!("invalid hostname format: {h}");
    }

    // Resources.
    let memory = f
        .memory
        .as_deref()
        .map(parse_size)
        .transpose()?
        .unwrap_or(0);
    if memory > 0 && memory < 6 * 1024 * 1024 {
        bail!("Minimum memory limit allowed is 6MB");
    }
    let reservation = f
        .memory_reservation
        .as_deref()
        .map(parse_size)
        .transpose()?
        .unwrap_or(0);
    if memory > 0 && reservation > memory {
        bail!("Minimum memory limit can not be less than memory reservation limit, see usage");
    }
    let swap_accounting = Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists()
        || Path::new("/sys/fs/cgroup/memory.swap.max").exists()
        || std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers")
            .is_ok_and(|c| c.contains("memory"));
    let memory_swap = match f.memory_swap.as_deref() {
        Some("-1") => -1,
        Some(s) => {
            let v = parse_size(s)?;
            if memory == 0 {
                bail!(
                    "You should always set the Memory limit when using Memoryswap limit, see usage"
                );
            }
            if v < memory {
                bail!("Minimum memoryswap limit should be larger than memory limit, see usage");
            }
            if !swap_accounting {
                bail!("--memory-swap: this kernel does not account swap (no memory.memsw files)");
            }
            v
        }
        None if memory > 0 && swap_accounting => memory * 2,
        None => 0,
    };
    if let Some(s) = f.memory_swappiness
        && !(-1..=100).contains(&s)
    {
        bail!("invalid value: {s}, valid memory swappiness range is 0-100");
    }
    // cgroup v2 has neither a per-cgroup swappiness nor an OOM-killer
    // switch: Docker warns and drops them.
    let mut memory_swappiness = f.memory_swappiness.filter(|&s| s >= 0);
    let mut oom_kill_disable = f.oom_kill_disable.then_some(true);
    if (memory_swappiness.is_some() || oom_kill_disable.is_some()) && cgroup2_unified() {
        if memory_swappiness.take().is_some() {
            eprintln!(
                "WARNING: Your kernel does not support memory swappiness capabilities or the \
                 cgroup is not mounted. Memory swappiness discarded."
            );
        }
        if oom_kill_disable.take().is_some() {
            eprintln!(
                "WARNING: Your kernel does not support OomKillDisable. OomKillDisable discarded."
            );
        }
    }
    let mut nano_cpus = 0i64;
    if let Some(c) = &f.cpus {
        let v: f64 = c.parse().map_err(|_| anyhow!("invalid argument \"{c}\" for \"--cpus\" flag: failed to parse {c} as a rational number"))?;
        if v.is_nan() || v <= 0.0 || v.is_infinite() {
            bail!("invalid argument \"{c}\" for \"--cpus\" flag: must be a positive number");
        }
        let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        if v > ncpu {
            bail!(
                "range of CPUs is from 0.01 to {ncpu:.2}, as there are only {ncpu} CPUs available"
            );
        }
        nano_cpus = (v * 1e9).round() as i64;
        if f.cpu_period.is_some() || f.cpu_quota.is_some() {
            bail!("Conflicting options: Nano CPUs and CPU Period cannot both be set");
        }
    }
    if let Some(p) = f.cpu_period
        && p != 0
        && !(1000..=1_000_000).contains(&p)
    {
        bail!(
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"
        );
    }
    if let Some(q) = f.cpu_quota
        && q > 0
        && q < 1000
    {
        bail!("CPU cfs quota can not be less than 1ms (i.e. 1000)");
    }
    if let Some(w) = f.blkio_weight
        && w != 0
        && !(10..=1000).contains(&w)
    {
        bail!("Range of blkio weight is from 10 to 1000");
    }
    let mut weight_devices = Vec::new();
    for w in &f.blkio_weight_device {
        let (path, weight) = w
            .rsplit_once(':')
            .ok_or_else(|| anyhow!("bad format: {w}"))?;
        let weight: u16 = weight
            .parse()
            .map_err(|_| anyhow!("invalid weight for device: {w}"))?;
        if !(10..=1000).contains(&weight) {
            bail!("invalid weight for device: {w}");
        }
        spec::block_device_numbers(path)?;
        weight_devices.push(WeightDevice {
            path: path.to_string(),
            weight,
        });
    }
    let throttles = |list: &[String], bytes| {
        list.iter()
            .map(|s| parse_throttle(s, bytes))
            .collect::<Result<Vec<_>>>()
    };
    let shm_size = f
        .shm_size
        .as_deref()
        .map(parse_size)
        .transpose()?
        .unwrap_or(spec::DEFAULT_SHM_SIZE);
    if shm_size <= 0 {
        bail!("SHM size must be greater than 0");
    }
    if let Some(a) = f.oom_score_adj
        && !(-1000..=1000).contains(&a)
    {
        bail!("Invalid value {a}, range for oom score adj is [-1000, 1000]");
    }

    // Restart, logs, stop.
    let restart_policy = match &f.restart {
        Some(r) => parse_restart(r)?,
        None => RestartPolicy {
            name: "no".into(),
            maximum_retry_count: 0,
        },
    };
    if f.rm && restart_policy.name != "no" {
        bail!("Conflicting options: --restart and --rm");
    }
    let log_kind = f.log_driver.clone().unwrap_or_else(|| "json-file".into());
    if !matches!(log_kind.as_str(), "json-file" | "none") {
        bail!("log driver {log_kind:?} is not supported by capsa (json-file and none are)");
    }
    let log_opts = spec::kv_map(&f.log_opt);
    for (k, v) in &log_opts {
        match k.as_str() {
            "max-size" if log_kind == "json-file" => {
                if parse_size(v)? <= 0 {
                    bail!("max-size must be a positive number");
                }
            }
            "max-file" if log_kind == "json-file" => {
                let n: i64 = v
                    .parse()
                    .map_err(|_| anyhow!("max-file: invalid number {v:?}"))?;
                if n < 1 {
                    bail!("max-file cannot be less than 1");
                }
                if n > 1 && !log_opts.contains_key("max-size") {
                    bail!("max-file cannot be greater than 1 without max-size");
                }
            }
            other => bail!("unknown log opt '{other}' for {log_kind} log driver"),
        }
    }
    let stop_signal = match &f.stop_signal {
        Some(s) => {
            let n = capsa_runtime::signals::parse(s).map_err(|_| anyhow!("invalid signal: {s}"))?;
            let _ = n;
            Some(s.clone())
        }
        None => ic["StopSignal"]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_string),
    };

    // Security.
    let mut security_opt = Vec::new();
    for o in &f.security_opt {
        let (k, v) = o
            .split_once('=')
            .or_else(|| o.split_once(':'))
            .unwrap_or((o.as_str(), ""));
        match k {
            "no-new-privileges" if matches!(v, "" | "true" | "false") => {}
            "seccomp" if v == "unconfined" || v == "builtin" => {}
            "seccomp" if !v.is_empty() => {
                let text = std::fs::read(v)
                    .with_context(|| format!("opening seccomp profile ({v}) failed"))?;
                let profile: Value = serde_json::from_slice(&text)
                    .with_context(|| format!("decoding seccomp profile {v}"))?;
                spec::docker_profile_to_oci(&profile, &[])?;
                // Stored with an absolute path: it is read at create time.
                let abs =
                    std::fs::canonicalize(v).with_context(|| format!("seccomp profile {v}"))?;
                security_opt.push(format!("seccomp={}", abs.display()));
                continue;
            }
            "apparmor" if v == "unconfined" => {}
            "label" if v == "disable" => {}
            "apparmor" | "label" => {
                let lsm = capsa_runtime::lsm::Host::default();
                let on = if k == "apparmor" {
                    lsm.apparmor_enabled()
                } else {
                    lsm.selinux_enabled()
                };
                if !on {
                    bail!(
                        "--security-opt {o}: {} is not enabled on this host",
                        if k == "apparmor" {
                            "AppArmor"
                        } else {
                            "SELinux"
                        }
                    );
                }
            }
            "systempaths" if v == "unconfined" => {}
            _ => bail!("invalid --security-opt: {o:?}"),
        }
        security_opt.push(o.clone());
    }
    for c in f.cap_add.iter().chain(&f.cap_drop) {
        spec::cap_name(c)?;
    }
    let ulimits = f
        .ulimit
        .iter()
        .map(|u| parse_ulimit(u))
        .collect::<Result<Vec<_>>>()?;
    let devices = f
        .device
        .iter()
        .map(|d| parse_device(d))
        .collect::<Result<Vec<_>>>()?;
    for r in &f.device_cgroup_rule {
        spec::device_cgroup_rule(r)?;
    }
    let sysctls = parse_sysctls(&f.sysctl, host_net, ipc_mode == "host")?;
    let mut exposed: BTreeMap<String, Value> = ic["ExposedPorts"]
        .as_object()
        .map(|m| {
            m.keys()
                .map(|k| (k.clone(), Value::Object(Default::default())))
                .collect()
        })
        .unwrap_or_default();
    for e in &f.expose {
        for p in parse_expose(e)? {
            exposed.insert(p, Value::Object(Default::default()));
        }
    }
    for h in &f.add_host {
        let ok = h
            .split_once(':')
            .or_else(|| h.split_once('='))
            .is_some_and(|(n, ip)| !n.is_empty() && !ip.is_empty());
        if !ok {
            bail!("bad format for add-host: {h:?}");
        }
    }
    for a in &f.attach {
        if !matches!(
            a.to_ascii_lowercase().as_str(),
            "stdin" | "stdout" | "stderr"
        ) {
            bail!(
                "invalid argument \"{a}\" for \"-a, --attach\" flag: valid streams are STDIN, STDOUT and STDERR"
            );
        }
    }
    if f.detach && !f.attach.is_empty() {
        bail!("Conflicting options: -a and -d");
    }
    match f.volume_driver.as_deref() {
        None | Some("") | Some("local") => {}
        Some(d) => bail!("volume driver {d:?} is not supported (capsa has the local driver only)"),
    }
    let runtime = match f.runtime.as_deref() {
        None | Some("") | Some("capsa") | Some("runc-capsa") => {
            container::runtime::BUILTIN.to_string()
        }
        Some(r) => {
            container::runtime::resolve_binary(r)?;
            r.to_string()
        }
    };
    let annotations = spec::kv_map(&f.annotation);

    // Mounts, in the order Docker applies them: --volumes-from, then -v,
    // --mount, --tmpfs; a later one for the same destination is an error.
    let mut wanted: Vec<Wanted> = Vec::new();
    let mut mount_specs = Vec::new();
    for vf in &f.volumes_from {
        let (name, mode) = vf.split_once(':').unwrap_or((vf, ""));
        let other = ctx.find_container(name)?;
        for m in &other.settings.mounts {
            let rw = match mode {
                "" => m.rw,
                "rw" => true,
                "ro" => false,
                _ => bail!("invalid mode for --volumes-from: {mode}"),
            };
            wanted.push(match m.kind.as_str() {
                "volume" => Wanted::Volume {
                    name: Some(m.name.clone()),
                    dst: m.destination.clone(),
                    rw,
                    nocopy: true,
                    mode: m.mode.clone(),
                    labels: BTreeMap::new(),
                },
                "tmpfs" => continue,
                _ => Wanted::Bind {
                    src: m.source.clone(),
                    dst: m.destination.clone(),
                    rw,
                    propagation: m.propagation.clone(),
                    mode: m.mode.clone(),
                    create: false,
                },
            });
        }
    }
    for v in &f.volume {
        wanted.push(parse_volume_flag(v)?);
    }
    for m in &f.mount {
        let (w, spec) = parse_mount_flag(m)?;
        wanted.push(w);
        mount_specs.push(spec);
    }
    let mut tmpfs_map = BTreeMap::new();
    for t in &f.tmpfs {
        let w = parse_tmpfs_flag(t)?;
        if let Wanted::Tmpfs { dst, opts } = &w {
            tmpfs_map.insert(dst.clone(), opts.clone());
        }
        wanted.push(w);
    }
    let mut seen = std::collections::HashSet::new();
    for w in &wanted {
        if !seen.insert(w.dst().to_string()) {
            bail!("Duplicate mount point: {}", w.dst());
        }
    }
    // The image's VOLUMEs not covered get anonymous volumes.
    let mut image_volumes: BTreeMap<String, Value> = BTreeMap::new();
    if let Some(vols) = ic["Volumes"].as_object() {
        for k in vols.keys() {
            image_volumes.insert(k.clone(), Value::Object(Default::default()));
            let dst = clean_dst(k, "volume")?;
            if !seen.contains(&dst) {
                seen.insert(dst.clone());
                wanted.push(Wanted::Volume {
                    name: None,
                    dst,
                    rw: true,
                    nocopy: false,
                    mode: String::new(),
                    labels: BTreeMap::new(),
                });
            }
        }
    }

    let (attach_stdin, attach_stdout, attach_stderr) = if f.detach {
        (false, false, false)
    } else if f.attach.is_empty() {
        (f.interactive, true, true)
    } else {
        let has = |s: &str| f.attach.iter().any(|a| a.eq_ignore_ascii_case(s));
        (has("stdin"), has("stdout"), has("stderr"))
    };
    let config = Config {
        hostname: f.hostname.clone().unwrap_or_default(),
        domainname: f.domainname.clone().unwrap_or_default(),
        user: f
            .user
            .clone()
            .unwrap_or_else(|| ic["User"].as_str().unwrap_or("").to_string()),
        attach_stdin,
        attach_stdout,
        attach_stderr,
        exposed_ports: (!exposed.is_empty()).then_some(exposed),
        tty: f.tty,
        open_stdin: f.interactive,
        stdin_once: f.interactive && attach_stdin && !f.detach,
        env,
        cmd: cmd_v,
        image: image_name.to_string(),
        volumes: (!image_volumes.is_empty()).then_some(image_volumes),
        working_dir: workdir,
        entrypoint,
        on_build: None,
        labels,
        stop_signal,
        stop_timeout: f.stop_timeout,
    };
    let host_config = HostConfig {
        binds: (!f.volume.is_empty()).then(|| f.volume.clone()),
        container_id_file: f
            .cidfile
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        log_config: LogConfig {
            kind: log_kind,
            config: log_opts,
        },
        network_mode,
        restart_policy,
        auto_remove: f.rm,
        volume_driver: f.volume_driver.clone().unwrap_or_default(),
        volumes_from: (!f.volumes_from.is_empty()).then(|| f.volumes_from.clone()),
        console_size: terminal_size(),
        annotations: (!annotations.is_empty()).then_some(annotations),
        cap_add: (!f.cap_add.is_empty()).then(|| f.cap_add.clone()),
        cap_drop: (!f.cap_drop.is_empty()).then(|| f.cap_drop.clone()),
        cgroupns_mode,
        dns: f.dns.clone(),
        dns_options: f.dns_option.clone(),
        dns_search: f.dns_search.clone(),
        extra_hosts: (!f.add_host.is_empty()).then(|| f.add_host.clone()),
        group_add: (!f.group_add.is_empty()).then(|| f.group_add.clone()),
        ipc_mode: if ipc_mode.is_empty() {
            "private".into()
        } else {
            ipc_mode
        },
        oom_score_adj: f.oom_score_adj.unwrap_or(0),
        pid_mode,
        privileged: f.privileged,
        readonly_rootfs: f.read_only,
        security_opt: (!security_opt.is_empty()).then_some(security_opt),
        tmpfs: (!tmpfs_map.is_empty()).then_some(tmpfs_map),
        uts_mode,
        userns_mode: String::new(),
        shm_size,
        sysctls: (!sysctls.is_empty()).then_some(sysctls),
        runtime,
        cpu_shares: f.cpu_shares.unwrap_or(0),
        memory,
        nano_cpus,
        cgroup_parent: f.cgroup_parent.clone().unwrap_or_default(),
        blkio_weight: f.blkio_weight.unwrap_or(0),
        blkio_weight_device: weight_devices,
        blkio_device_read_bps: throttles(&f.device_read_bps, true)?,
        blkio_device_write_bps: throttles(&f.device_write_bps, true)?,
        blkio_device_read_iops: throttles(&f.device_read_iops, false)?,
        blkio_device_write_iops: throttles(&f.device_write_iops, false)?,
        cpu_period: f.cpu_period.unwrap_or(0),
        cpu_quota: f.cpu_quota.unwrap_or(0),
        cpu_realtime_period: f.cpu_rt_period.unwrap_or(0),
        cpu_realtime_runtime: f.cpu_rt_runtime.unwrap_or(0),
        cpuset_cpus: f.cpuset_cpus.clone().unwrap_or_default(),
        cpuset_mems: f.cpuset_mems.clone().unwrap_or_default(),
        devices,
        device_cgroup_rules: (!f.device_cgroup_rule.is_empty())
            .then(|| f.device_cgroup_rule.clone()),
        memory_reservation: reservation,
        memory_swap,
        memory_swappiness,
        oom_kill_disable,
        pids_limit: f.pids_limit.filter(|&p| p > 0),
        ulimits: (!ulimits.is_empty()).then_some(ulimits),
        mounts: mount_specs,
        masked_paths: if f.privileged {
            Vec::new()
        } else {
            spec::MASKED_PATHS.iter().map(|s| s.to_string()).collect()
        },
        readonly_paths: if f.privileged {
            Vec::new()
        } else {
            spec::READONLY_PATHS.iter().map(|s| s.to_string()).collect()
        },
        init: f.init.then_some(true),
        ..Default::default()
    };
    let platform = format!(
        "{}/{}",
        img_cfg["os"].as_str().unwrap_or("linux"),
        img_cfg["architecture"].as_str().unwrap_or("")
    );
    let settings = Settings {
        config,
        host_config,
        mounts: Vec::new(),
        path: argv[0].clone(),
        args: argv[1..].to_vec(),
        platform,
        cgroup: None,
    };
    // The OCI config must come out of these settings (checked now, before
    // anything exists; capabilities and the like).
    spec::capabilities(&settings)?;
    spec::resources(&settings, Vec::new())?;
    Ok((settings, wanted))
}

/// The terminal's size [rows, columns], when stdin... stdout is one.
fn terminal_size() -> [u16; 2] {
    use std::os::fd::AsFd;
    capsa_runtime::sys::get_winsize(std::io::stdout().as_fd())
        .map(|w| [w.ws_row, w.ws_col])
        .unwrap_or([0, 0])
}

/// Undoes a half-made container.
struct Undo<'a> {
    ctx: &'a Ctx,
    id: String,
    volumes: Vec<String>,
    armed: bool,
}

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let _ = self.ctx.store.remove_rootfs(&self.id);
        let _ = self.ctx.delete_container_row(&self.id);
        let _ = self.ctx.remove_container_dir(&self.id);
        for v in &self.volumes {
            if self.ctx.volume_users(v).is_ok_and(|u| u.is_empty()) {
                let _ = self.ctx.remove_volume(v, true);
            }
        }
    }
}

/// Resolves `Wanted` mounts into mount points, creating volumes and bind
/// sources as needed, filling new volumes from the image.
fn resolve_mounts(
    ctx: &Ctx,
    id: &str,
    rootfs: &Path,
    wanted: &[Wanted],
    undo: &mut Undo<'_>,
) -> Result<Vec<MountPoint>> {
    let mut out = Vec::new();
    for w in wanted {
        match w {
            Wanted::Bind {
                src,
                dst,
                rw,
                propagation,
                mode,
                create,
            } => {
                if !Path::new(src).exists() {
                    if *create {
                        std::fs::create_dir_all(src).with_context(|| {
                            format!("error while creating mount source path '{src}'")
                        })?;
                    } else {
                        bail!(
                            "invalid mount config for type \"bind\": bind source path does not exist: {src}"
                        );
                    }
                }
                spec::check_propagation(src, propagation)?;
                out.push(MountPoint {
                    kind: "bind".into(),
                    source: src.clone(),
                    destination: dst.clone(),
                    mode: mode.clone(),
                    rw: *rw,
                    propagation: if propagation.is_empty() {
                        "rprivate".into()
                    } else {
                        propagation.clone()
                    },
                    ..Default::default()
                });
            }
            Wanted::Volume {
                name,
                dst,
                rw,
                nocopy,
                mode,
                labels,
            } => {
                let anonymous = name.is_none();
                let vname = match name {
                    Some(n) => n.clone(),
                    None => container::new_id()?,
                };
                let (_, new) = ctx.create_volume(&vname, labels.clone(), anonymous)?;
                if new {
                    undo.volumes.push(vname.clone());
                }
                ctx.link_volume(id, &vname)?;
                let data = ctx.volume_data(&vname);
                if !nocopy {
                    crate::volumes::copy_up(rootfs, dst, &data)?;
                }
                out.push(MountPoint {
                    kind: "volume".into(),
                    name: vname,
                    source: data.display().to_string(),
                    destination: dst.clone(),
                    driver: "local".into(),
                    mode: if mode.is_empty() {
                        "z".into()
                    } else {
                        mode.clone()
                    },
                    rw: *rw,
                    propagation: String::new(),
                    anonymous,
                    copy_up: !nocopy,
                });
            }
            Wanted::Tmpfs { dst, opts } => out.push(MountPoint {
                kind: "tmpfs".into(),
                destination: dst.clone(),
                mode: opts.clone(),
                rw: !opts.split(',').any(|o| o == "ro"),
                ..Default::default()
            }),
        }
    }
    Ok(out)
}

/// Resolves `--group-add` entries in the image's /etc/group.
fn group_ids(rootfs: &Path, groups: &[String]) -> Result<Vec<u32>> {
    let mut out = Vec::new();
    for g in groups {
        let gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => {
                capsa_images::runtime_config::resolve_user(rootfs, &format!("0:{g}"))
                    .map_err(|_| {
                        anyhow!("Unable to find group {g}: no matching entries in group file")
                    })?
                    .gid
            }
        };
        out.push(gid);
    }
    Ok(out)
}

/// The namespace paths a container joins from others (`container:NAME` modes).
fn joined_namespaces(ctx: &Ctx, s: &Settings) -> Result<BTreeMap<&'static str, PathBuf>> {
    let mut out = BTreeMap::new();
    let hc = &s.host_config;
    for (typ, mode, proc_name) in [
        ("network", &hc.network_mode, "net"),
        ("ipc", &hc.ipc_mode, "ipc"),
        ("pid", &hc.pid_mode, "pid"),
    ] {
        if let Some(name) = mode.strip_prefix("container:") {
            let other = ctx.find_container(name)?;
            if !matches!(other.state.status, Status::Running | Status::Paused)
                || !container::lifecycle::alive(other.state.pid, other.state.pid_start)
            {
                bail!("cannot join the {typ} namespace of container {name}: it is not running");
            }
            out.insert(
                typ,
                PathBuf::from(format!("/proc/{}/ns/{proc_name}", other.state.pid)),
            );
        }
    }
    Ok(out)
}

/// Whether the host has cgroup v2 alone (/sys/fs/cgroup is a cgroup2 file
/// system), the test Docker makes for its cgroup namespace default. A
/// statfs, where the full layout would read /proc/self/mountinfo, whose
/// cost grows with every container's mounts.
fn cgroup2_unified() -> bool {
    use nix::sys::statfs::{CGROUP2_SUPER_MAGIC, statfs};
    statfs("/sys/fs/cgroup").is_ok_and(|s| s.filesystem_type() == CGROUP2_SUPER_MAGIC)
}

/// Makes a container (row, directory, root filesystem, volumes, OCI
/// config) in state `created`, locked. Nothing is left on error.
pub fn create_container(ctx: &Ctx, f: &RunFlags) -> Result<Made> {
    let image_name = f.args.first().context("an image is required")?.clone();
    let cmd = &f.args[1..];
    let (img, img_cfg) = resolve_image(ctx, f, &image_name)?;
    let (mut settings, wanted) = build(ctx, f, &image_name, cmd, &img_cfg)?;
    let name = match &f.name {
        Some(n) => Some(container::valid_name(n)?),
        None => None,
    };
    if let Some(cid) = &f.cidfile
        && cid.exists()
    {
        bail!(
            "Container ID file found, make sure the other container isn't running or delete {}",
            cid.display()
        );
    }
    let id = container::new_id()?;
    if settings.config.hostname.is_empty() {
        settings.config.hostname = if settings.host_config.network_mode == "host" {
            nix::unistd::gethostname()
                .ok()
                .and_then(|h| h.into_string().ok())
                .unwrap_or_else(|| id[..12].to_string())
        } else {
            id[..12].to_string()
        };
    }
    let dir = ctx.container_dir(&id);
    let lock = ctx.create_container_dir(&id)?;
    let mut undo = Undo {
        ctx,
        id: id.clone(),
        volumes: Vec::new(),
        armed: true,
    };
    let mut c = Container {
        id: id.clone(),
        name: String::new(),
        image: img.id.clone(),
        created_ns: container::now_ns(),
        state: State {
            status: Status::Creating,
            pid: 0,
            pid_start: 0,
            monitor_pid: 0,
            monitor_start: 0,
            exit_code: 0,
            oom_killed: false,
            error: String::new(),
            started_ns: 0,
            finished_ns: 0,
            restart_count: 0,
            backoff_ms: 0,
            manually_stopped: false,
        },
        settings,
    };
    match name {
        Some(n) => {
            c.name = n;
            ctx.insert_container(&c)?;
        }
        None => {
            let mut tries = 0;
            loop {
                c.name = crate::names::generate(tries);
                match ctx.insert_container(&c) {
                    Ok(()) => break,
                    Err(e) if tries < 20 && e.to_string().starts_with("Conflict.") => tries += 1,
                    Err(e) => return Err(e),
                }
            }
        }
    }
    let rootfs = ctx
        .store
        .create_rootfs(&id, &img.id, capsa_images::rootfs::MountMethod::Auto)?;
    c.settings.mounts = resolve_mounts(ctx, &id, &rootfs.merged, &wanted, &mut undo)?;
    let user = capsa_images::runtime_config::resolve_user(&rootfs.merged, &c.settings.config.user)?;
    let mut gids = user.additional_gids.clone();
    let added = c
        .settings
        .host_config
        .group_add
        .as_deref()
        .unwrap_or_default();
    for g in group_ids(&rootfs.merged, added)? {
        if !gids.contains(&g) {
            gids.push(g);
        }
    }
    let env = spec::environment(&c.settings, &user.home);
    spec::write_etc_files(&dir, &c.settings)?;
    let join = joined_namespaces(ctx, &c.settings)?;
    let init_program = crate::monitor_bin::path(&ctx.root)?;
    let config = spec::build(&spec::Input {
        id: &id,
        settings: &c.settings,
        rootfs: &rootfs.merged,
        dir: &dir,
        init_program: &init_program,
        user: (user.uid, user.gid, gids),
        env,
        join,
        cgroup_v2: cgroup2_unified(),
    })?;
    // Checked as the runtime will read it.
    let bytes = serde_json::to_vec_pretty(&config)?;
    let _: oci_spec::runtime::Spec = capsa_runtime::spec::parse(&bytes, "config.json")?;
    std::fs::write(dir.join("config.json"), &bytes)
        .with_context(|| format!("write {}", dir.join("config.json").display()))?;
    if let Some(cid) = &f.cidfile {
        use std::io::Write as _;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(cid)
            .with_context(|| format!("Failed to create the container ID file {}", cid.display()))?;
        file.write_all(id.as_bytes())?;
    }
    c.state.status = Status::Created;
    ctx.save_settings(&c)?;
    ctx.save_state(&c)?;
    undo.armed = false;
    crate::events::container(ctx, &c, "create", &[]);
    Ok(Made { container: c, lock })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_flags() {
        match parse_volume_flag("/host/dir:/data:ro,rshared").unwrap() {
            Wanted::Bind {
                src,
                dst,
                rw,
                propagation,
                ..
            } => {
                assert_eq!(
                    (src.as_str(), dst.as_str(), rw, propagation.as_str()),
                    ("/host/dir", "/data", false, "rshared")
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(
            matches!(parse_volume_flag("data:/data").unwrap(), Wanted::Volume { name: Some(n), .. } if n == "data")
        );
        assert!(matches!(
            parse_volume_flag("/anon").unwrap(),
            Wanted::Volume { name: None, .. }
        ));
        assert!(parse_volume_flag("data:relative").is_err());
        assert!(parse_volume_flag("/a:/b:bogus").is_err());
        assert!(
            parse_volume_flag("/a:/b:z")
                .unwrap_err()
                .to_string()
                .contains("SELinux")
        );
        assert!(parse_volume_flag("/a:/b/../c").is_err());
    }

    #[test]
    fn mount_flags() {
        let (w, s) =
            parse_mount_flag("type=tmpfs,target=/run,tmpfs-size=64m,tmpfs-mode=1770").unwrap();
        assert!(matches!(w, Wanted::Tmpfs { ref opts, .. } if opts == "size=67108864,mode=1770"));
        assert_eq!(s.kind, "tmpfs");
        let e = parse_mount_flag("type=bind,source=/definitely/not/here,target=/x").unwrap_err();
        assert!(
            e.to_string().contains("bind source path does not exist"),
            "{e}"
        );
        assert!(parse_mount_flag("type=volume,src=vol,dst=/v,readonly").is_ok());
        assert!(parse_mount_flag("type=nfs,target=/x").is_err());
        assert!(parse_mount_flag("type=volume").is_err());
    }

    #[test]
    fn restart_policies() {
        assert_eq!(
            parse_restart("on-failure:3").unwrap(),
            RestartPolicy {
                name: "on-failure".into(),
                maximum_retry_count: 3
            }
        );
        assert_eq!(parse_restart("always").unwrap().name, "always");
        assert!(parse_restart("always:3").is_err());
        assert!(parse_restart("sometimes").is_err());
        assert!(parse_restart("on-failure:x").is_err());
    }

    #[test]
    fn small_flags() {
        assert_eq!(
            parse_ulimit("nofile=1024:2048").unwrap(),
            Ulimit {
                name: "nofile".into(),
                soft: 1024,
                hard: 2048
            }
        );
        assert!(parse_ulimit("nofile=10:5").is_err());
        assert!(parse_ulimit("bogus=1").is_err());
        assert_eq!(
            parse_expose("8000-8002/udp").unwrap(),
            ["8000/udp", "8001/udp", "8002/udp"]
        );
        assert!(parse_expose("80/xyz").is_err());
        assert!(parse_tmpfs_flag("/run:size=64m,noexec").is_ok());
        assert!(parse_tmpfs_flag("/run:bogus").is_err());
        assert!(parse_sysctls(&["net.ipv4.ip_forward=1".into()], false, false).is_ok());
        assert!(parse_sysctls(&["net.ipv4.ip_forward=1".into()], true, false).is_err());
        assert!(parse_sysctls(&["vm.swappiness=1".into()], false, false).is_err());
    }
}
