//! A container's OCI runtime config, made the way Docker makes it
//! (moby's `oci/defaults.go` and `daemon/oci_linux.go`): the default mounts
//! (/proc, a private /dev, /dev/pts, /dev/shm of 64 MB, /dev/mqueue, a
//! read-only /sys and /sys/fs/cgroup), the 14 default capabilities, the
//! default seccomp profile, masked and read-only /proc and /sys paths, the
//! generated /etc/hostname, /etc/hosts and /etc/resolv.conf, and everything
//! the `run` flags in [`Settings`] ask for.

use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, anyhow, bail};
use capsa_runtime::capabilities::DEFAULT_CONTAINER_CAPS;
use serde_json::{Value, json};

use super::settings::{MountPoint, Settings, WeightDevice};

/// Docker's masked paths.
pub const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Docker's read-only paths.
pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Where `--init` puts capsa's init in the container.
pub const INIT_PATH: &str = "/sbin/capsa-init";

/// The default size of /dev/shm (64 MiB).
pub const DEFAULT_SHM_SIZE: i64 = 64 << 20;

/// Every capability the kernel has and capsa itself may give (its own
/// bounding set): `--cap-add ALL` and `--privileged`.
pub fn all_caps() -> Vec<String> {
    let ours = caps::read(None, caps::CapSet::Bounding).unwrap_or_default();
    capsa_runtime::capabilities::supported()
        .iter()
        .filter(|c| ours.contains(c))
        .map(|c| c.to_string())
        .collect()
}

/// Normalises a capability name as Docker accepts it (`net_admin`,
/// `CAP_NET_ADMIN`, `ALL`).
pub fn cap_name(s: &str) -> Result<String> {
    let up = s.trim().to_ascii_uppercase();
    if up == "ALL" {
        return Ok(up);
    }
    let full = if up.starts_with("CAP_") {
        up
    } else {
        format!("CAP_{up}")
    };
    if full.parse::<caps::Capability>().is_err() {
        bail!("invalid capability: {s}");
    }
    Ok(full)
}

/// The capability set of a container: the defaults (or all when
/// privileged), with `--cap-add` and `--cap-drop` applied as Docker does
/// (drop first, `ALL` allowed in both, an explicit add wins over `drop ALL`).
pub fn capabilities(settings: &Settings) -> Result<Vec<String>> {
    let hc = &settings.host_config;
    if hc.privileged {
        return Ok(all_caps());
    }
    let add: Vec<String> = hc
        .cap_add
        .iter()
        .flatten()
        .map(|c| cap_name(c))
        .collect::<Result<_>>()?;
    let drop: Vec<String> = hc
        .cap_drop
        .iter()
        .flatten()
        .map(|c| cap_name(c))
        .collect::<Result<_>>()?;
    let mut caps: Vec<String> = if drop.iter().any(|c| c == "ALL") {
        Vec::new()
    } else {
        DEFAULT_CONTAINER_CAPS
            .iter()
            .map(|c| c.to_string())
            .filter(|c| !drop.contains(c))
            .collect()
    };
    if add.iter().any(|c| c == "ALL") {
        caps = all_caps();
        caps.retain(|c| !drop.contains(c) || add.contains(c));
    } else {
        for c in add {
            if !caps.contains(&c) {
                caps.push(c);
            }
        }
    }
    // Only what the kernel has.
    let known = all_caps();
    caps.retain(|c| known.contains(c));
    Ok(caps)
}

/// What the config is made from besides the settings.
pub struct Input<'a> {
    /// The container's id.
    pub id: &'a str,
    /// Its settings.
    pub settings: &'a Settings,
    /// The mounted root filesystem.
    pub rootfs: &'a Path,
    /// The container directory (hostname, hosts, resolv.conf live there).
    pub dir: &'a Path,
    /// The init program for `--init`.
    pub init_program: &'a Path,
    /// uid, gid, supplementary gids of the process.
    pub user: (u32, u32, Vec<u32>),
    /// The environment, complete.
    pub env: Vec<String>,
    /// The namespaces joined from other containers: OCI type → path.
    pub join: BTreeMap<&'static str, PathBuf>,
    /// The cgroup layout mode of the host.
    pub cgroup_v2: bool,
}

fn ro_opt(rw: bool) -> &'static str {
    if rw { "rw" } else { "ro" }
}

/// Mounts Docker gives every container (before the user's).
fn default_mounts(s: &Settings, privileged: bool) -> Vec<Value> {
    let hc = &s.host_config;
    let sys_mode = if privileged { "rw" } else { "ro" };
    let mut m = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", sys_mode]}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": [sys_mode, "nosuid", "noexec", "nodev"]}),
    ];
    let ipc = hc.ipc_mode.as_str();
    if ipc != "host" && !ipc.starts_with("container:") {
        m.push(json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}));
    }
    match ipc {
        "host" => m.push(json!({"destination": "/dev/shm", "type": "bind", "source": "/dev/shm", "options": ["rbind", "rprivate"]})),
        "none" => {}
        _ => {
            let size = if hc.shm_size > 0 {
                hc.shm_size
            } else {
                DEFAULT_SHM_SIZE
            };
            m.push(json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
                "options": ["nosuid", "noexec", "nodev", "mode=1777", format!("size={size}")]}));
        }
    }
    m
}

/// The OCI mount of a resolved user mount.
fn user_mount(p: &MountPoint) -> Value {
    match p.kind.as_str() {
        "tmpfs" => {
            let mut opts: Vec<String> = vec!["nosuid".into(), "nodev".into(), "noexec".into()];
            for o in p.mode.split(',').filter(|o| !o.is_empty()) {
                // exec/suid/dev given by the user replace the defaults.
                if let Some(neg) = match o {
                    "exec" => Some("noexec"),
                    "suid" => Some("nosuid"),
                    "dev" => Some("nodev"),
                    _ => None,
                } {
                    opts.retain(|x| x != neg);
                }
                opts.push(o.to_string());
            }
            if !p.rw && !opts.iter().any(|o| o == "ro") {
                opts.push("ro".into());
            }
            json!({"destination": p.destination, "type": "tmpfs", "source": "tmpfs", "options": opts})
        }
        _ => {
            let prop = if p.propagation.is_empty() {
                "rprivate"
            } else {
                p.propagation.as_str()
            };
            json!({"destination": p.destination, "type": "bind", "source": p.source,
                "options": ["rbind", prop, ro_opt(p.rw)]})
        }
    }
}

/// Docker's rule for bind propagation: a shared bind needs a shared source
/// mount, a slave one a shared or slave source mount; otherwise nothing
/// could propagate and the option would do nothing.
pub fn check_propagation(source: &str, propagation: &str) -> Result<()> {
    let slave = match propagation {
        "shared" | "rshared" => false,
        "slave" | "rslave" => true,
        _ => return Ok(()),
    };
    let path = std::fs::canonicalize(source).with_context(|| format!("resolving {source}"))?;
    let info =
        std::fs::read_to_string("/proc/self/mountinfo").context("reading /proc/self/mountinfo")?;
    let (mount_point, tags) =
        source_mount(&info, &path).ok_or_else(|| anyhow!("no mount holds {}", path.display()))?;
    let has = |tag: &str| tags.iter().any(|t| t.starts_with(tag));
    let propagates = has("shared:") || (slave && has("master:"));
    if !propagates {
        bail!(
            "path {source} is mounted on {} but it is not a {} mount",
            mount_point.display(),
            if slave { "shared or slave" } else { "shared" }
        );
    }
    Ok(())
}

/// The mount that holds `path` in mountinfo text (the deepest mount point,
/// the last mounted of those stacked there): its mount point and its
/// propagation tags (`shared:N`, `master:N`, ...).
fn source_mount(mountinfo: &str, path: &Path) -> Option<(PathBuf, Vec<String>)> {
    let mut best: Option<(PathBuf, Vec<String>)> = None;
    for line in mountinfo.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(mp) = fields.get(4) else {
            continue;
        };
        let mp = PathBuf::from(capsa_runtime::cgroups::unescape_mountinfo(mp));
        if !path.starts_with(&mp)
            || best
                .as_ref()
                .is_some_and(|(b, _)| b.as_os_str().len() > mp.as_os_str().len())
        {
            continue;
        }
        let tags = fields
            .iter()
            .skip(6)
            .take_while(|f| **f != "-")
            .map(|f| f.to_string())
            .collect();
        best = Some((mp, tags));
    }
    best
}

/// Host devices of a privileged container: every node under /dev but the
/// terminals and the pseudo-terminal master.
fn host_devices() -> Vec<Value> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::from("/dev")];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(m) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            let name = e.file_name().to_string_lossy().into_owned();
            if m.is_dir() {
                if !matches!(name.as_str(), "pts" | "shm" | "fd" | "mqueue") {
                    stack.push(p);
                }
                continue;
            }
            let ft = m.file_type();
            let kind = if ft.is_char_device() {
                "c"
            } else if ft.is_block_device() {
                "b"
            } else {
                continue;
            };
            if name == "console"
                || name == "ptmx"
                || name.starts_with("tty") && dir == Path::new("/dev")
            {
                continue;
            }
            let rdev = m.rdev();
            out.push(
                json!({"path": p, "type": kind, "major": nix::sys::stat::major(rdev),
                "minor": nix::sys::stat::minor(rdev), "fileMode": m.mode() & 0o7777,
                "uid": m.uid(), "gid": m.gid()}),
            );
        }
    }
    out
}

/// A device given with `--device`: the OCI device and its cgroup rule.
pub fn device(host: &str, inside: &str, perms: &str) -> Result<(Value, Value)> {
    let m = std::fs::metadata(host).with_context(|| {
        format!("error gathering device information while adding custom device {host:?}")
    })?;
    let ft = m.file_type();
    let kind = if ft.is_char_device() {
        "c"
    } else if ft.is_block_device() {
        "b"
    } else {
        bail!(
            "error gathering device information while adding custom device {host:?}: not a device node"
        );
    };
    let rdev = m.rdev();
    let (major, minor) = (nix::sys::stat::major(rdev), nix::sys::stat::minor(rdev));
    Ok((
        json!({"path": inside, "type": kind, "major": major, "minor": minor,
            "fileMode": m.mode() & 0o7777, "uid": m.uid(), "gid": m.gid()}),
        json!({"allow": true, "type": kind, "major": major, "minor": minor, "access": perms}),
    ))
}

/// The major:minor of a block device path (for blkio settings).
pub fn block_device_numbers(path: &str) -> Result<(u64, u64)> {
    let m = std::fs::metadata(path).with_context(|| path.to_string())?;
    if !m.file_type().is_block_device() {
        bail!("{path} is not a block device");
    }
    Ok((
        nix::sys::stat::major(m.rdev()),
        nix::sys::stat::minor(m.rdev()),
    ))
}

/// Docker's warning when the kernel takes no block I/O weight.
const NO_BLKIO_WEIGHT: &str =
    "Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.";

/// Docker's warning when the kernel takes no per-device block I/O weight.
const NO_BLKIO_WEIGHT_DEVICE: &str = "Your kernel does not support Block I/O weight_device or \
     the cgroup is not mounted. Weight-device discarded.";

/// A value kept, or dropped with the warning why.
type Kept<T> = (T, Option<&'static str>);

/// `--blkio-weight` and `--blkio-weight-device` as the kernel takes them:
/// each dropped (0, empty) with Docker's warning where the cgroups a
/// container gets have no such weight. Only asks the kernel when one is set.
pub fn supported_block_io_weights(
    weight: u16,
    devices: Vec<WeightDevice>,
) -> (Kept<u16>, Kept<Vec<WeightDevice>>) {
    if weight == 0 && devices.is_empty() {
        return ((0, None), (devices, None));
    }
    let host = capsa_runtime::cgroups::Layout::detect()
        .map(|l| l.block_io_weights())
        .unwrap_or(capsa_runtime::cgroups::BlockIoWeights {
            weight: false,
            weight_device: false,
        });
    let weight = if weight != 0 && !host.weight {
        (0, Some(NO_BLKIO_WEIGHT))
    } else {
        (weight, None)
    };
    let devices = if !devices.is_empty() && !host.weight_device {
        (Vec::new(), Some(NO_BLKIO_WEIGHT_DEVICE))
    } else {
        (devices, None)
    };
    (weight, devices)
}

/// Parses `--device-cgroup-rule 'c 1:3 mr'`.
pub fn device_cgroup_rule(rule: &str) -> Result<Value> {
    let bad = || anyhow!("invalid device cgroup rule {rule:?}: expected 'TYPE MAJOR:MINOR ACCESS'");
    let parts: Vec<&str> = rule.split_whitespace().collect();
    let [kind, nums, access] = parts.as_slice() else {
        return Err(bad());
    };
    if !matches!(*kind, "a" | "b" | "c") {
        return Err(bad());
    }
    let (major, minor) = nums.split_once(':').ok_or_else(bad)?;
    let num = |s: &str| -> Result<Value> {
        if s == "*" {
            Ok(Value::Null)
        } else {
            s.parse::<i64>().map(Value::from).map_err(|_| bad())
        }
    };
    if access.is_empty() || !access.chars().all(|c| "rwm".contains(c)) {
        return Err(bad());
    }
    let mut v = json!({"allow": true, "type": kind, "access": access});
    let (ma, mi) = (num(major)?, num(minor)?);
    if !ma.is_null() {
        v["major"] = ma;
    }
    if !mi.is_null() {
        v["minor"] = mi;
    }
    Ok(v)
}

/// The OCI `linux.resources` of the settings.
pub fn resources(s: &Settings, devices_rules: Vec<Value>) -> Result<Value> {
    let hc = &s.host_config;
    let mut r = json!({});
    if !devices_rules.is_empty() {
        r["devices"] = Value::Array(devices_rules);
    }
    let mut mem = json!({});
    if hc.memory > 0 {
        mem["limit"] = json!(hc.memory);
    }
    if hc.memory_reservation > 0 {
        mem["reservation"] = json!(hc.memory_reservation);
    }
    if hc.memory_swap != 0 {
        mem["swap"] = json!(hc.memory_swap);
    }
    if let Some(sw) = hc.memory_swappiness.filter(|&v| v >= 0) {
        mem["swappiness"] = json!(sw);
    }
    if hc.oom_kill_disable == Some(true) {
        mem["disableOOMKiller"] = json!(true);
    }
    if mem.as_object().is_some_and(|m| !m.is_empty()) {
        r["memory"] = mem;
    }
    let mut cpu = json!({});
    if hc.cpu_shares > 0 {
        cpu["shares"] = json!(hc.cpu_shares);
    }
    if hc.nano_cpus > 0 {
        // Docker: a 100 ms period and a quota of cpus × period.
        cpu["period"] = json!(100_000);
        cpu["quota"] = json!(hc.nano_cpus * 100_000 / 1_000_000_000);
    }
    if hc.cpu_period > 0 {
        cpu["period"] = json!(hc.cpu_period);
    }
    if hc.cpu_quota != 0 {
        cpu["quota"] = json!(hc.cpu_quota);
    }
    if hc.cpu_realtime_period > 0 {
        cpu["realtimePeriod"] = json!(hc.cpu_realtime_period);
    }
    if hc.cpu_realtime_runtime != 0 {
        cpu["realtimeRuntime"] = json!(hc.cpu_realtime_runtime);
    }
    if !hc.cpuset_cpus.is_empty() {
        cpu["cpus"] = json!(hc.cpuset_cpus);
    }
    if !hc.cpuset_mems.is_empty() {
        cpu["mems"] = json!(hc.cpuset_mems);
    }
    if cpu.as_object().is_some_and(|m| !m.is_empty()) {
        r["cpu"] = cpu;
    }
    if let Some(limit) = hc.pids_limit.filter(|&l| l > 0) {
        r["pids"] = json!({"limit": limit});
    }
    let mut blk = json!({});
    if hc.blkio_weight > 0 {
        blk["weight"] = json!(hc.blkio_weight);
    }
    let mut weights = Vec::new();
    for w in &hc.blkio_weight_device {
        let (major, minor) = block_device_numbers(&w.path)?;
        weights.push(json!({"major": major, "minor": minor, "weight": w.weight}));
    }
    if !weights.is_empty() {
        blk["weightDevice"] = Value::Array(weights);
    }
    for (key, list) in [
        ("throttleReadBpsDevice", &hc.blkio_device_read_bps),
        ("throttleWriteBpsDevice", &hc.blkio_device_write_bps),
        ("throttleReadIOPSDevice", &hc.blkio_device_read_iops),
        ("throttleWriteIOPSDevice", &hc.blkio_device_write_iops),
    ] {
        let mut v = Vec::new();
        for t in list {
            let (major, minor) = block_device_numbers(&t.path)?;
            v.push(json!({"major": major, "minor": minor, "rate": t.rate}));
        }
        if !v.is_empty() {
            blk[key] = Value::Array(v);
        }
    }
    if blk.as_object().is_some_and(|m| !m.is_empty()) {
        r["blockIO"] = blk;
    }
    Ok(r)
}

/// The seccomp profile: Docker's default for these capabilities, none
/// (`unconfined`, `--privileged`), or a profile file in Docker's format.
fn seccomp(s: &Settings, caps: &[String]) -> Result<Option<Value>> {
    let mut chosen = None;
    for o in s.host_config.security_opt.iter().flatten() {
        if let Some(v) = o
            .strip_prefix("seccomp=")
            .or_else(|| o.strip_prefix("seccomp:"))
        {
            chosen = Some(v.to_string());
        }
    }
    match chosen.as_deref() {
        Some("unconfined") => Ok(None),
        None | Some("builtin") if s.host_config.privileged => Ok(None),
        None | Some("builtin") => Ok(Some(capsa_runtime::seccomp::profile::default_profile(caps))),
        Some(path) => {
            let text = std::fs::read(path)
                .with_context(|| format!("opening seccomp profile ({path}) failed"))?;
            let v: Value = serde_json::from_slice(&text)
                .with_context(|| format!("decoding seccomp profile {path}"))?;
            docker_profile_to_oci(&v, caps)
                .with_context(|| format!("seccomp profile {path}"))
                .map(Some)
        }
    }
}

/// A seccomp profile in Docker's format (`archMap`, `includes`/`excludes`
/// by capability, architecture and kernel version) made into OCI
/// `linux.seccomp` for a container holding `caps`. An OCI-style profile
/// (plain `architectures`) passes through the same way.
pub fn docker_profile_to_oci(v: &Value, caps: &[String]) -> Result<Value> {
    let obj = v
        .as_object()
        .ok_or_else(|| anyhow!("the profile is not a JSON object"))?;
    let default_action = obj
        .get("defaultAction")
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("defaultAction is missing"))?;
    let native = if cfg!(target_arch = "x86_64") {
        "SCMP_ARCH_X86_64"
    } else if cfg!(target_arch = "aarch64") {
        "SCMP_ARCH_AARCH64"
    } else {
        "SCMP_ARCH_NATIVE"
    };
    let mut arches: Vec<Value> = obj
        .get("architectures")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if let Some(map) = obj.get("archMap").and_then(Value::as_array) {
        for a in map {
            if a.get("architecture").and_then(Value::as_str) == Some(native) {
                arches.push(json!(native));
                arches.extend(
                    a.get("subArchitectures")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default(),
                );
            }
        }
    }
    let kernel = kernel_version();
    let arch_name = native.trim_start_matches("SCMP_ARCH_").to_ascii_lowercase();
    let matches_arch = |list: &Value| -> bool {
        list.as_array().is_some_and(|l| {
            l.iter().filter_map(Value::as_str).any(|a| {
                let a = a.to_ascii_lowercase();
                a == arch_name
                    || (arch_name == "x86_64" && a == "amd64")
                    || (arch_name == "aarch64" && a == "arm64")
            })
        })
    };
    let holds = |list: &Value| -> (bool, bool) {
        let l: Vec<&str> = list
            .as_array()
            .map(|l| l.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        (
            !l.is_empty() && l.iter().all(|c| caps.iter().any(|h| h == c)),
            l.iter().any(|c| caps.iter().any(|h| h == c)),
        )
    };
    let mut out_rules = Vec::new();
    for rule in obj
        .get("syscalls")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
    {
        if let Some(inc) = rule.get("includes").filter(|v| v.is_object()) {
            if let Some(c) = inc
                .get("caps")
                .filter(|c| c.as_array().is_some_and(|a| !a.is_empty()))
                && !holds(c).0
            {
                continue;
            }
            if let Some(a) = inc
                .get("arches")
                .filter(|a| a.as_array().is_some_and(|x| !x.is_empty()))
                && !matches_arch(a)
            {
                continue;
            }
            if let Some(k) = inc.get("minKernel").and_then(Value::as_str)
                && kernel < parse_kernel(k)
            {
                continue;
            }
        }
        if let Some(exc) = rule.get("excludes").filter(|v| v.is_object()) {
            if let Some(c) = exc.get("caps")
                && holds(c).1
            {
                continue;
            }
            if let Some(a) = exc.get("arches")
                && matches_arch(a)
            {
                continue;
            }
        }
        let mut r = serde_json::Map::new();
        for key in ["names", "action", "args", "errnoRet"] {
            if let Some(x) = rule.get(key).filter(|x| !x.is_null()) {
                r.insert(key.into(), x.clone());
            }
        }
        if let Some(name) = rule.get("name").and_then(Value::as_str) {
            r.insert("names".into(), json!([name]));
        }
        out_rules.push(Value::Object(r));
    }
    let mut out =
        json!({"defaultAction": default_action, "architectures": arches, "syscalls": out_rules});
    for key in [
        "defaultErrnoRet",
        "flags",
        "listenerPath",
        "listenerMetadata",
    ] {
        if let Some(x) = obj.get(key).filter(|x| !x.is_null()) {
            out[key] = x.clone();
        }
    }
    Ok(out)
}

fn parse_kernel(s: &str) -> (u32, u32) {
    let mut it = s
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|p| p.parse().ok());
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

fn kernel_version() -> (u32, u32) {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|r| parse_kernel(&r))
        .unwrap_or((0, 0))
}

/// Builds the config.json value.
pub fn build(inp: &Input<'_>) -> Result<Value> {
    let s = inp.settings;
    let c = &s.config;
    let hc = &s.host_config;
    let caps = capabilities(s)?;
    let mut args: Vec<String> = std::iter::once(s.path.clone())
        .chain(s.args.iter().cloned())
        .collect();
    if hc.init == Some(true) {
        args = [INIT_PATH.to_string(), "--".to_string()]
            .into_iter()
            .chain(args)
            .collect();
    }
    let (uid, gid, gids) = &inp.user;
    let mut process = json!({
        "terminal": c.tty,
        "user": {"uid": uid, "gid": gid},
        "args": args,
        "env": inp.env,
        "cwd": if c.working_dir.is_empty() { "/" } else { c.working_dir.as_str() },
        "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
    });
    if !gids.is_empty() {
        process["user"]["additionalGids"] = json!(gids);
    }
    if c.tty && hc.console_size != [0, 0] {
        process["consoleSize"] = json!({"height": hc.console_size[0], "width": hc.console_size[1]});
    }
    let mut nnp = false;
    for o in hc.security_opt.iter().flatten() {
        match o.as_str() {
            "no-new-privileges" | "no-new-privileges:true" | "no-new-privileges=true" => nnp = true,
            "no-new-privileges:false" | "no-new-privileges=false" => nnp = false,
            _ => {}
        }
        if let Some(p) = o
            .strip_prefix("apparmor=")
            .or_else(|| o.strip_prefix("apparmor:"))
            && p != "unconfined"
        {
            process["apparmorProfile"] = json!(p);
        }
        if let Some(l) = o
            .strip_prefix("label=")
            .or_else(|| o.strip_prefix("label:"))
            && l != "disable"
        {
            process["selinuxLabel"] = json!(l);
        }
    }
    if nnp {
        process["noNewPrivileges"] = json!(true);
    }
    if hc.oom_score_adj != 0 {
        process["oomScoreAdj"] = json!(hc.oom_score_adj);
    }
    if let Some(ul) = &hc.ulimits {
        let rl: Vec<Value> = ul
            .iter()
            .map(|u| json!({"type": format!("RLIMIT_{}", u.name.to_ascii_uppercase()), "soft": u.soft, "hard": u.hard}))
            .collect();
        process["rlimits"] = Value::Array(rl);
    }

    let privileged = hc.privileged;
    let mut mounts = default_mounts(s, privileged);
    let files_rw = !hc.readonly_rootfs;
    let own_uts = hc.uts_mode != "host";
    for (name, dest) in [
        ("resolv.conf", "/etc/resolv.conf"),
        ("hostname", "/etc/hostname"),
        ("hosts", "/etc/hosts"),
    ] {
        if s.mounts.iter().any(|m| m.destination == dest) {
            continue;
        }
        mounts.push(json!({"destination": dest, "type": "bind",
            "source": inp.dir.join(name), "options": ["rbind", "rprivate", ro_opt(files_rw)]}));
    }
    let mut user: Vec<&MountPoint> = s.mounts.iter().collect();
    // Parents before children, as Docker sorts them.
    user.sort_by_key(|m| Path::new(&m.destination).components().count());
    for m in user {
        mounts.push(user_mount(m));
    }
    if hc.init == Some(true) {
        mounts.push(json!({"destination": INIT_PATH, "type": "bind",
            "source": inp.init_program, "options": ["bind", "ro", "nosuid", "nodev"]}));
    }

    let mut namespaces = vec![json!({"type": "mount"})];
    let mut ns = |typ: &'static str, mode: &str| {
        if let Some(p) = inp.join.get(typ) {
            namespaces.push(json!({"type": typ, "path": p}));
        } else if mode != "host" {
            namespaces.push(json!({"type": typ}));
        }
    };
    ns("network", &hc.network_mode);
    ns("uts", &hc.uts_mode);
    ns("pid", &hc.pid_mode);
    ns("ipc", &hc.ipc_mode);
    let cgroupns = match hc.cgroupns_mode.as_str() {
        "" if inp.cgroup_v2 => "private",
        "" => "host",
        m => m,
    };
    if cgroupns == "private" {
        namespaces.push(json!({"type": "cgroup"}));
    }

    let mut device_rules = vec![json!({"allow": false, "access": "rwm"})];
    let mut devices = Vec::new();
    if privileged {
        device_rules = vec![json!({"allow": true, "access": "rwm"})];
        devices = host_devices();
    }
    for d in &hc.devices {
        let (dev, rule) = device(&d.path_on_host, &d.path_in_container, &d.cgroup_permissions)?;
        devices.push(dev);
        device_rules.push(rule);
    }
    for r in hc.device_cgroup_rules.iter().flatten() {
        device_rules.push(device_cgroup_rule(r)?);
    }

    let cgroups_path = super::lifecycle::cgroups_path(inp.id, &hc.cgroup_parent);
    let unconfined_paths = privileged
        || hc
            .security_opt
            .iter()
            .flatten()
            .any(|o| o == "systempaths=unconfined");
    let mut linux = json!({
        "namespaces": namespaces,
        "resources": resources(s, device_rules)?,
        "cgroupsPath": cgroups_path,
    });
    if !unconfined_paths {
        linux["maskedPaths"] = json!(MASKED_PATHS);
        linux["readonlyPaths"] = json!(READONLY_PATHS);
    }
    if !devices.is_empty() {
        linux["devices"] = Value::Array(devices);
    }
    if let Some(sysctls) = &hc.sysctls {
        linux["sysctl"] = json!(sysctls);
    }
    if let Some(profile) = seccomp(s, &caps)? {
        linux["seccomp"] = profile;
    }
    if s.mounts.iter().any(|m| m.propagation.contains("shared")) {
        linux["rootfsPropagation"] = json!("shared");
    } else if s.mounts.iter().any(|m| m.propagation.contains("slave")) {
        linux["rootfsPropagation"] = json!("rslave");
    }

    let mut spec = json!({
        "ociVersion": capsa_runtime::spec::OCI_VERSION,
        "process": process,
        "root": {"path": inp.rootfs, "readonly": hc.readonly_rootfs},
        "mounts": mounts,
        "linux": linux,
    });
    if own_uts {
        spec["hostname"] = json!(c.hostname);
        if !c.domainname.is_empty() {
            spec["domainname"] = json!(c.domainname);
        }
    }
    if let Some(a) = &hc.annotations {
        spec["annotations"] = json!(a);
    }
    Ok(spec)
}

/// The environment Docker gives the process: PATH, HOSTNAME and (with a
/// terminal) TERM, replaced or extended by the container's own.
pub fn environment(s: &Settings, home: &str) -> Vec<String> {
    let mut env = vec![
        capsa_images::runtime_config::DEFAULT_PATH.to_string(),
        format!("HOSTNAME={}", s.config.hostname),
    ];
    if s.config.tty {
        env.push("TERM=xterm".into());
    }
    for kv in &s.config.env {
        let name = kv.split_once('=').map_or(kv.as_str(), |(k, _)| k);
        match env
            .iter()
            .position(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == name)
        {
            Some(i) => env[i] = kv.clone(),
            None => env.push(kv.clone()),
        }
    }
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={home}"));
    }
    env
}

/// Writes /etc/hostname, /etc/hosts and /etc/resolv.conf of a container.
pub fn write_etc_files(dir: &Path, s: &Settings) -> Result<()> {
    let hc = &s.host_config;
    let host_net = hc.network_mode == "host";
    std::fs::write(dir.join("hostname"), format!("{}\n", s.config.hostname))
        .with_context(|| format!("write {}", dir.join("hostname").display()))?;
    let mut hosts = if host_net {
        std::fs::read_to_string("/etc/hosts").unwrap_or_default()
    } else {
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\n\
         ff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n"
            .to_string()
    };
    if !hosts.is_empty() && !hosts.ends_with('\n') {
        hosts.push('\n');
    }
    for h in hc.extra_hosts.iter().flatten() {
        let (name, ip) = h
            .split_once(':')
            .or_else(|| h.split_once('='))
            .ok_or_else(|| anyhow!("bad format for add-host: {h:?}"))?;
        hosts.push_str(&format!(
            "{}\t{name}\n",
            ip.trim_start_matches('[').trim_end_matches(']')
        ));
    }
    std::fs::write(dir.join("hosts"), hosts)
        .with_context(|| format!("write {}", dir.join("hosts").display()))?;
    std::fs::write(dir.join("resolv.conf"), resolv_conf(hc, host_net))
        .with_context(|| format!("write {}", dir.join("resolv.conf").display()))?;
    Ok(())
}

fn resolv_conf(hc: &super::settings::HostConfig, host_net: bool) -> String {
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let mut nameservers = Vec::new();
    let mut search = Vec::new();
    let mut options = Vec::new();
    for line in host.lines() {
        let mut f = line.split_whitespace();
        match f.next() {
            Some("nameserver") => nameservers.extend(f.next().map(str::to_string)),
            Some("search") | Some("domain") => search = f.map(str::to_string).collect(),
            Some("options") => options.extend(f.map(str::to_string)),
            _ => {}
        }
    }
    if !host_net {
        // Loopback servers of the host are unreachable from the container.
        nameservers.retain(|n| !n.starts_with("127.") && n != "::1");
        if nameservers.is_empty() {
            nameservers = vec!["8.8.8.8".into(), "8.8.4.4".into()];
        }
    }
    if !hc.dns.is_empty() {
        nameservers = hc.dns.clone();
    }
    if !hc.dns_search.is_empty() {
        search = hc
            .dns_search
            .iter()
            .filter(|s| *s != ".")
            .cloned()
            .collect();
    }
    if !hc.dns_options.is_empty() {
        options = hc.dns_options.clone();
    }
    let mut out = String::new();
    for n in &nameservers {
        out.push_str(&format!("nameserver {n}\n"));
    }
    if !search.is_empty() {
        out.push_str(&format!("search {}\n", search.join(" ")));
    }
    if !options.is_empty() {
        out.push_str(&format!("options {}\n", options.join(" ")));
    }
    out
}

/// Labels and options given as `KEY=VALUE` list → map (a bare KEY has an empty value).
pub fn kv_map(list: &[String]) -> BTreeMap<String, String> {
    list.iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (kv.clone(), String::new()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mount_holding_a_path_and_its_propagation() {
        let info = "\
22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
30 22 0:40 / /srv rw shared:5 master:2 - tmpfs t rw
31 22 0:41 / /srv/a\\040b rw - tmpfs t rw
32 30 0:42 / /srv rw master:7 - tmpfs t rw
";
        let m = |p: &str| source_mount(info, Path::new(p)).unwrap();
        assert_eq!(
            m("/etc"),
            (PathBuf::from("/"), vec!["shared:1".to_string()])
        );
        // The last of two mounts stacked on /srv; /srvx is not beneath it.
        assert_eq!(m("/srv/x").1, ["master:7"]);
        assert_eq!(m("/srvx").0, PathBuf::from("/"));
        assert_eq!(m("/srv/a b/c"), (PathBuf::from("/srv/a b"), vec![]));
    }

    #[test]
    fn capabilities_like_docker() {
        let mut s = Settings::default();
        let caps = capabilities(&s).unwrap();
        assert_eq!(caps.len(), 14);
        s.host_config.cap_drop = Some(vec!["chown".into(), "CAP_KILL".into()]);
        s.host_config.cap_add = Some(vec!["sys_admin".into()]);
        let caps = capabilities(&s).unwrap();
        assert!(!caps.contains(&"CAP_CHOWN".to_string()));
        assert!(!caps.contains(&"CAP_KILL".to_string()));
        assert!(caps.contains(&"CAP_SYS_ADMIN".to_string()));
        s.host_config.cap_drop = Some(vec!["ALL".into()]);
        s.host_config.cap_add = Some(vec!["NET_RAW".into()]);
        assert_eq!(capabilities(&s).unwrap(), ["CAP_NET_RAW"]);
        s.host_config.cap_add = Some(vec!["ALL".into()]);
        s.host_config.cap_drop = Some(vec!["MKNOD".into()]);
        let all = capabilities(&s).unwrap();
        assert!(all.len() > 30 && !all.contains(&"CAP_MKNOD".to_string()));
        s.host_config.cap_add = Some(vec!["NOPE".into()]);
        assert!(capabilities(&s).unwrap_err().to_string().contains("NOPE"));
    }

    #[test]
    fn docker_seccomp_profiles_are_converted() {
        let profile = json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 1,
            "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]},
                        {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": []}],
            "syscalls": [
                {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
                {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "excludes": {"caps": ["CAP_SYS_PTRACE"]}},
                {"names": ["kexec_load"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "99.0"}}
            ]
        });
        let v = docker_profile_to_oci(&profile, &["CAP_CHOWN".into()]).unwrap();
        let names: Vec<String> = v["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| {
                r["names"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|n| n.as_str().unwrap().to_string())
            })
            .collect();
        assert_eq!(names, ["read", "write", "ptrace"]);
        if cfg!(target_arch = "x86_64") {
            assert_eq!(
                v["architectures"],
                json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"])
            );
        }
        assert_eq!(v["defaultErrnoRet"], 1);
        // The result is a valid OCI seccomp config.
        let _: oci_spec::runtime::LinuxSeccomp = serde_json::from_value(v).unwrap();
    }

    #[test]
    fn env_like_docker() {
        let mut s = Settings::default();
        s.config.hostname = "abc".into();
        s.config.tty = true;
        s.config.env = vec!["PATH=/bin".into(), "FOO=1".into()];
        let env = environment(&s, "/root");
        assert_eq!(
            env,
            [
                "PATH=/bin",
                "HOSTNAME=abc",
                "TERM=xterm",
                "FOO=1",
                "HOME=/root"
            ]
        );
    }

    #[test]
    fn device_rules() {
        assert_eq!(
            device_cgroup_rule("c 1:3 mr").unwrap(),
            json!({"allow": true, "type": "c", "major": 1, "minor": 3, "access": "mr"})
        );
        assert_eq!(
            device_cgroup_rule("b *:* rwm").unwrap(),
            json!({"allow": true, "type": "b", "access": "rwm"})
        );
        assert!(device_cgroup_rule("x 1:3 r").is_err());
        assert!(device_cgroup_rule("c 1 r").is_err());
    }
}
