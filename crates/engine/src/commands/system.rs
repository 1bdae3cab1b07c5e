//! `capsa system` commands (`df`, `prune`, `info`, `events`) and `version`.

use std::io::{self, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use serde_json::json;

use crate::format::Format;
use crate::units;

/// Flags of `capsa system df`.
#[derive(Args)]
pub struct DfArgs {
    /// Format output using a custom template
    #[arg(long, value_name = "string")]
    format: Option<String>,
}

fn reclaimable(total: u64, reclaim: u64) -> String {
    match (reclaim * 100).checked_div(total) {
        Some(pct) => format!("{} ({pct}%)", units::human_size(reclaim as f64)),
        None => units::human_size(reclaim as f64),
    }
}

/// `capsa system df`: space used by images (distinct layers), by the
/// writable layers of containers and by volumes, with what a prune could
/// reclaim, in Docker's rows.
pub fn df(root: &Path, a: DfArgs) -> Result<ExitCode> {
    let ctx = crate::ctx::Ctx::open(root)?;
    let store = &ctx.store;
    let images = store.db().images()?;
    let (sharing, layers_size) = store.layer_sharing()?;
    let users: std::collections::HashMap<String, i64> =
        store.db().rootfs_counts()?.into_iter().collect();
    let mut used = 0u64;
    let mut active = 0;
    for img in &images {
        if users.contains_key(&img.id) {
            active += 1;
            let shared = sharing.get(&img.id).map_or(0, |s| s.0);
            used += (img.size as u64).saturating_sub(shared);
        }
    }
    // As Docker: running, paused and restarting containers are active; the
    // writable layers of the others are reclaimable.
    let (mut containers, mut running, mut rw_size, mut rw_reclaim) = (0, 0, 0u64, 0u64);
    for mut c in ctx.all_containers()? {
        if !crate::container::lifecycle::refresh(&ctx, &mut c)? {
            continue;
        }
        let rw = super::containers::sizes(&ctx, &c).0;
        containers += 1;
        rw_size += rw;
        if c.state.status.is_active() {
            running += 1;
        } else {
            rw_reclaim += rw;
        }
    }
    // Volumes used by a container are active; the others are reclaimable.
    let volume_users = ctx.volume_use_counts()?;
    let volumes = ctx.list_volumes()?;
    let (mut vol_active, mut vol_size, mut vol_reclaim) = (0, 0u64, 0u64);
    for v in &volumes {
        let size = capsa_images::store::dir_size(&ctx.volume_data(&v.name)).unwrap_or(0);
        vol_size += size;
        if volume_users.contains_key(&v.name) {
            vol_active += 1;
        } else {
            vol_reclaim += size;
        }
    }
    let row = |kind: &str, total: usize, active: usize, size: u64, reclaim: u64| {
        json!({
            "Type": kind,
            "TotalCount": total.to_string(),
            "Active": active.to_string(),
            "Size": units::human_size(size as f64),
            "Reclaimable": reclaimable(size, reclaim),
        })
    };
    let rows = vec![
        row(
            "Images",
            images.len(),
            active,
            layers_size,
            layers_size.saturating_sub(used),
        ),
        row("Containers", containers, running, rw_size, rw_reclaim),
        row(
            "Local Volumes",
            volumes.len(),
            vol_active,
            vol_size,
            vol_reclaim,
        ),
    ];
    let fmt = match a.format.as_deref() {
        None | Some("") | Some("table") => {
            "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}".to_string()
        }
        Some(f) => f.to_string(),
    };
    let out = Format::parse(&fmt)?.render(
        &rows,
        &[
            ("Type", "TYPE"),
            ("TotalCount", "TOTAL"),
            ("Active", "ACTIVE"),
            ("Size", "SIZE"),
            ("Reclaimable", "RECLAIMABLE"),
        ],
    )?;
    io::stdout().write_all(out.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

/// Flags of `system prune`.
#[derive(Args)]
pub struct SystemPruneArgs {
    /// Remove all unused images not just dangling ones
    #[arg(short, long)]
    all: bool,
    /// Provide filter values (e.g. "label=<key>=<value>")
    #[arg(long = "filter", value_name = "filter")]
    filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    force: bool,
    /// Prune anonymous volumes
    #[arg(long)]
    volumes: bool,
}

/// Flags of `info` and `version`.
#[derive(Args)]
pub struct FormatArgs {
    /// Format output using a custom template
    #[arg(short, long, value_name = "string")]
    format: Option<String>,
}

/// Flags of `events`.
#[derive(Args)]
pub struct EventsArgs {
    /// Filter output based on conditions provided
    #[arg(short, long = "filter", value_name = "filter")]
    filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long, value_name = "string")]
    format: Option<String>,
    /// Show all events created since timestamp
    #[arg(long, value_name = "string")]
    since: Option<String>,
    /// Stream events until this timestamp
    #[arg(long, value_name = "string")]
    until: Option<String>,
}

/// `system prune`.
pub fn prune(root: &Path, a: SystemPruneArgs) -> Result<ExitCode> {
    let ctx = crate::ctx::Ctx::open(root)?;
    let filters = super::parse_filters(&a.filter, &["until", "label", "label!"])?;
    super::check_until(&filters)?;
    if a.volumes && filters.iter().any(|(k, _)| k == "until") {
        anyhow::bail!("the \"until\" filter is not supported with \"--volumes\"");
    }
    if !a.force {
        let mut w = String::from("WARNING! This will remove:\n  - all stopped containers\n");
        if a.volumes {
            w.push_str("  - all anonymous volumes not used by at least one container\n");
        }
        w.push_str(if a.all {
            "  - all images without at least one container associated to them\n"
        } else {
            "  - all dangling images\n"
        });
        if !super::confirm(w.trim_end())? {
            return Ok(ExitCode::SUCCESS);
        }
    }
    let (ids, mut bytes) = super::containers::prune_containers(&ctx, &a.filter)?;
    let mut out = io::stdout().lock();
    super::print_deleted(&mut out, "Containers", &ids)?;
    if a.volumes {
        let label_filters: Vec<String> = a
            .filter
            .iter()
            .filter(|f| f.starts_with("label"))
            .cloned()
            .collect();
        let (vols, b) = super::volumes::prune_volumes(&ctx, false, &label_filters)?;
        bytes += b;
        super::print_deleted(&mut out, "Volumes", &vols)?;
    }
    let (removed, b) = super::images::prune_images(&ctx.store, a.all, &filters)?;
    bytes += b;
    if !removed.is_empty() {
        writeln!(out, "Deleted Images:")?;
        super::images::print_removals(&mut out, &removed)?;
        writeln!(out)?;
    }
    super::print_reclaimed(&mut out, bytes)?;
    Ok(ExitCode::SUCCESS)
}

fn os_release() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_string())
        })
        .unwrap_or_else(|| "Linux".into())
}

fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// The runc-compatible runtimes found in PATH.
fn runtimes() -> Vec<String> {
    let mut v = vec![crate::container::runtime::BUILTIN.to_string()];
    for name in ["runc", "crun", "youki", "runsc", "kata"] {
        if crate::container::runtime::resolve_binary(name).is_ok() {
            v.push(name.to_string());
        }
    }
    v
}

/// `info`.
pub fn info(root: &Path, a: FormatArgs) -> Result<ExitCode> {
    let ctx = crate::ctx::Ctx::open(root)?;
    let mut running = 0;
    let mut paused = 0;
    let mut stopped = 0;
    let all = ctx.all_containers()?;
    for mut c in all.clone() {
        if !crate::container::lifecycle::refresh(&ctx, &mut c)? {
            continue;
        }
        match c.state.status {
            crate::container::Status::Running | crate::container::Status::Restarting => {
                running += 1
            }
            crate::container::Status::Paused => paused += 1,
            _ => stopped += 1,
        }
    }
    let images = ctx.store.db().images()?.len();
    let layout = capsa_runtime::cgroups::Layout::detect()?;
    let cgroup_version = if layout.mode() == Some(capsa_runtime::cgroups::Mode::V2) {
        "2"
    } else {
        "1"
    };
    let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mem_total: u64 = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024);
    let hostname = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_default();
    let rts = runtimes();
    let runtimes_obj: serde_json::Map<String, serde_json::Value> = rts
        .iter()
        .map(|r| (r.clone(), json!({"path": if r == "capsa" { "capsa (in-process)".to_string() } else { crate::container::runtime::resolve_binary(r).map(|p| p.display().to_string()).unwrap_or_default() }})))
        .collect();
    let info = json!({
        "ID": capsa_images::Digest::of(ctx.root.as_os_str().as_encoded_bytes()).hex()[..32].to_string(),
        "Containers": running + paused + stopped,
        "ContainersRunning": running,
        "ContainersPaused": paused,
        "ContainersStopped": stopped,
        "Images": images,
        "Driver": "overlay2",
        "DriverStatus": [["Backing Filesystem", "overlayfs lower layers"], ["Supports d_type", "true"]],
        "Plugins": {"Volume": ["local"], "Network": ["host", "none"], "Log": ["json-file", "none"]},
        "MemoryLimit": true,
        // v1: swap accounting on; v2: the memory controller (memory.swap.max).
        "SwapLimit": std::path::Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists()
            || (cgroup_version == "2"
                && std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers")
                    .is_ok_and(|c| c.split_whitespace().any(|c| c == "memory"))),
        "CpuCfsPeriod": true,
        "CpuCfsQuota": true,
        "CPUShares": true,
        "CPUSet": true,
        "PidsLimit": true,
        "OomKillDisable": cgroup_version == "1",
        "LoggingDriver": "json-file",
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": cgroup_version,
        "KernelVersion": kernel_release(),
        "OperatingSystem": os_release(),
        "OSType": "linux",
        "Architecture": std::env::consts::ARCH,
        "NCPU": ncpu,
        "MemTotal": mem_total,
        "DockerRootDir": ctx.root,
        "Name": hostname,
        "ServerVersion": env!("CARGO_PKG_VERSION"),
        "Runtimes": runtimes_obj,
        "DefaultRuntime": "capsa",
        "InitBinary": "capsa-init",
        "SecurityOptions": ["name=seccomp,profile=builtin"],
    });
    let mut out = io::stdout().lock();
    if let Some(f) = a.format.as_deref() {
        out.write_all(Format::parse(f)?.render_loose(&[info])?.as_bytes())?;
        return Ok(ExitCode::SUCCESS);
    }
    let g = |k: &str| crate::format::go_print(&info[k]);
    writeln!(
        out,
        "Client:\n Version:    {}\n Context:    default\n Debug Mode: false\n",
        env!("CARGO_PKG_VERSION")
    )?;
    writeln!(out, "Server:")?;
    writeln!(
        out,
        " Containers: {}\n  Running: {}\n  Paused: {}\n  Stopped: {}",
        g("Containers"),
        g("ContainersRunning"),
        g("ContainersPaused"),
        g("ContainersStopped")
    )?;
    writeln!(out, " Images: {}", g("Images"))?;
    writeln!(out, " Server Version: {}", g("ServerVersion"))?;
    writeln!(out, " Storage Driver: overlay2")?;
    writeln!(out, " Logging Driver: json-file")?;
    writeln!(out, " Cgroup Driver: cgroupfs")?;
    writeln!(out, " Cgroup Version: {cgroup_version}")?;
    writeln!(
        out,
        " Plugins:\n  Volume: local\n  Network: host none\n  Log: json-file none"
    )?;
    writeln!(out, " Runtimes: {}", rts.join(" "))?;
    writeln!(out, " Default Runtime: capsa")?;
    writeln!(out, " Init Binary: capsa-init")?;
    writeln!(out, " Security Options:\n  seccomp\n   Profile: builtin")?;
    writeln!(out, " Kernel Version: {}", g("KernelVersion"))?;
    writeln!(out, " Operating System: {}", g("OperatingSystem"))?;
    writeln!(out, " OSType: linux")?;
    writeln!(out, " Architecture: {}", g("Architecture"))?;
    writeln!(out, " CPUs: {ncpu}")?;
    writeln!(
        out,
        " Total Memory: {}",
        units::human_size_binary(mem_total as f64)
    )?;
    writeln!(out, " Name: {hostname}")?;
    writeln!(out, " ID: {}", g("ID"))?;
    writeln!(out, " Docker Root Dir: {}", ctx.root.display())?;
    writeln!(out, " Debug Mode: false")?;
    Ok(ExitCode::SUCCESS)
}

/// `version`.
pub fn version(a: FormatArgs) -> Result<ExitCode> {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    };
    let v = env!("CARGO_PKG_VERSION");
    let doc = json!({
        "Client": {"Platform": {"Name": "capsa"}, "Version": v, "ApiVersion": "1.47", "DefaultAPIVersion": "1.47",
                   "GitCommit": option_env!("CAPSA_COMMIT").unwrap_or(""), "GoVersion": "", "Os": "linux", "Arch": arch, "Context": "default"},
        "Server": {"Platform": {"Name": "capsa (daemonless)"}, "Version": v, "ApiVersion": "1.47", "MinAPIVersion": "1.24",
                   "Os": "linux", "Arch": arch, "KernelVersion": kernel_release(), "GitCommit": option_env!("CAPSA_COMMIT").unwrap_or(""),
                   "Components": [
                       {"Name": "Engine", "Version": v, "Details": {"ApiVersion": "1.47", "Arch": arch, "Os": "linux", "KernelVersion": kernel_release()}},
                       {"Name": "capsa-runtime", "Version": v, "Details": {"OCI runtime-spec": capsa_runtime::spec::OCI_VERSION}},
                       {"Name": "capsa-init", "Version": v, "Details": {}},
                   ]},
    });
    let mut out = io::stdout().lock();
    if let Some(f) = a.format.as_deref() {
        // Docker's versionInfo: `APIVersion` is written `ApiVersion` in JSON.
        let f = Format::parse(f)?.with_fields(&[("APIVersion", "ApiVersion")]);
        out.write_all(f.render(&[doc], &[])?.as_bytes())?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(
        out,
        "Client:\n Version:           {v}\n API version:       1.47\n OS/Arch:           linux/{arch}\n Context:           default\n"
    )?;
    writeln!(
        out,
        "Server: capsa (daemonless)\n Engine:\n  Version:          {v}\n  API version:      1.47 (minimum version 1.24)\n  OS/Arch:          linux/{arch}\n  Kernel:           {}",
        kernel_release()
    )?;
    writeln!(
        out,
        " capsa-runtime:\n  Version:          {v}\n  OCI runtime-spec: {}",
        capsa_runtime::spec::OCI_VERSION
    )?;
    writeln!(out, " capsa-init:\n  Version:          {v}")?;
    Ok(ExitCode::SUCCESS)
}

/// Docker's default one-line form of an event.
fn event_line(e: &serde_json::Value) -> String {
    let ns = e["timeNano"].as_i64().unwrap_or(0);
    let (secs, nanos) = (ns.div_euclid(1_000_000_000), ns.rem_euclid(1_000_000_000));
    let base = units::go_rfc3339(secs);
    // 2006-01-02T15:04:05.000000000Z07:00
    let (date, zone) = base.split_at(19);
    let mut attrs: Vec<String> = e["Actor"]["Attributes"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    attrs.sort();
    format!(
        "{date}.{nanos:09}{zone} {} {} {} ({})",
        e["Type"].as_str().unwrap_or(""),
        e["Action"].as_str().unwrap_or(""),
        e["Actor"]["ID"].as_str().unwrap_or(""),
        attrs.join(", ")
    )
}

/// The repository of an image reference without tag or digest, in its
/// familiar form (`busybox:latest` → `busybox`); the text itself when it
/// is not a reference.
fn strip_tag(image: &str) -> String {
    capsa_images::reference::Reference::parse(image)
        .map(|r| r.familiar_name())
        .unwrap_or_else(|_| image.to_string())
}

/// Docker's event filters: values of one key are OR'ed, keys AND'ed;
/// `container` and `volume` match a prefix of the ID or name, `image` the
/// image (with or without its tag), `label` a key or key=value.
fn event_matches(e: &serde_json::Value, filters: &[(String, String)]) -> bool {
    let mut keys: Vec<&str> = filters.iter().map(|(k, _)| k.as_str()).collect();
    keys.sort();
    keys.dedup();
    let attrs = &e["Actor"]["Attributes"];
    let id = e["Actor"]["ID"].as_str().unwrap_or("");
    let name = attrs["name"].as_str().unwrap_or("");
    let fuzzy =
        |kind: &str, v: &str| e["Type"] == kind && (id.starts_with(v) || name.starts_with(v));
    keys.iter().all(|key| {
        filters
            .iter()
            .filter(|(k, _)| k == key)
            .any(|(_, v)| match *key {
                "type" => e["Type"] == *v,
                "scope" => e["scope"] == *v,
                "event" => e["Action"]
                    .as_str()
                    .is_some_and(|a| a == v || a.split(':').next() == Some(v)),
                "container" => fuzzy("container", v),
                "volume" => fuzzy("volume", v),
                "image" => {
                    let image_name = match e["Type"].as_str() {
                        Some("image") => name,
                        _ => attrs["image"].as_str().unwrap_or(""),
                    };
                    [id, image_name]
                        .iter()
                        .any(|x| *x == v || (!x.is_empty() && strip_tag(x) == *v))
                }
                "label" => match v.split_once('=') {
                    Some((k, val)) => attrs[k] == *val,
                    None => attrs.get(v.as_str()).is_some(),
                },
                _ => false,
            })
    })
}

/// Fields of Docker's `events.Message` whose JSON names differ (the
/// deprecated `status`, `id` and `from` are omitted when empty).
const EVENT_FIELDS: crate::format::Fields = &[
    ("Status", "status"),
    ("ID", "id"),
    ("From", "from"),
    ("Scope", "scope"),
    ("Time", "time"),
    ("TimeNano", "timeNano"),
];

/// `events`: past events since `--since` (or until `--until`), then new
/// ones as they come until `--until` (or for ever). Each event is printed
/// once: following goes on from where the replay of the log ended.
pub fn events(root: &Path, a: EventsArgs) -> Result<ExitCode> {
    let ctx = crate::ctx::Ctx::open(root)?;
    let filters = super::parse_filters(
        &a.filter,
        &[
            "type",
            "event",
            "container",
            "image",
            "volume",
            "label",
            "scope",
        ],
    )?;
    let parse = |s: &Option<String>, what: &str| -> Result<Option<i64>> {
        s.as_deref()
            .map(|v| {
                units::parse_timestamp_ns(v)
                    .ok_or_else(|| anyhow::anyhow!("invalid value for \"{what}\": {v}"))
            })
            .transpose()
    };
    let since = parse(&a.since, "since")?;
    let until = parse(&a.until, "until")?;
    let format = match a.format.as_deref() {
        None | Some("") => None,
        Some(f) => {
            let f = Format::parse(f)?.with_fields(EVENT_FIELDS);
            // As Docker, a template that cannot render an empty event
            // (an unknown field) fails before anything is streamed.
            let empty = json!({"Type": "", "Action": "", "Actor": {"ID": "", "Attributes": {}},
                "scope": "", "time": 0, "timeNano": 0});
            f.render(&[empty], &[])?;
            Some(f)
        }
    };
    let wanted = |e: &serde_json::Value| {
        let t = e["timeNano"].as_i64().unwrap_or(0);
        since.is_none_or(|s| t >= s) && until.is_none_or(|u| t <= u) && event_matches(e, &filters)
    };
    let print = |e: &serde_json::Value| -> Result<bool> {
        let line = match &format {
            Some(f) => f.render(std::slice::from_ref(e), &[])?,
            None => format!("{}\n", event_line(e)),
        };
        let mut out = io::stdout().lock();
        Ok(out
            .write_all(line.as_bytes())
            .and_then(|_| out.flush())
            .is_ok())
    };
    let replay = since.is_some() || until.is_some();
    // Opened before the rotated log is read, so that nothing written
    // meanwhile is lost; without a replay, following starts at the end.
    let mut tail = EventTail::new(ctx.events_path(), replay);
    if replay {
        for e in crate::events::read_rotated(&ctx) {
            if wanted(&e) && !print(&e)? {
                return Ok(ExitCode::SUCCESS);
            }
        }
    }
    loop {
        for e in tail.poll() {
            if wanted(&e) && !print(&e)? {
                return Ok(ExitCode::SUCCESS);
            }
        }
        if until.is_some_and(|u| crate::container::now_ns() > u) {
            return Ok(ExitCode::SUCCESS);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Follows the event log (across its rotation).
struct EventTail {
    path: std::path::PathBuf,
    file: Option<std::fs::File>,
    ino: u64,
    partial: Vec<u8>,
}

impl EventTail {
    /// Follows `path` from its start, or from its end now.
    fn new(path: std::path::PathBuf, from_start: bool) -> EventTail {
        use std::io::Seek;
        use std::os::unix::fs::MetadataExt;
        let mut t = EventTail {
            path,
            file: None,
            ino: 0,
            partial: Vec::new(),
        };
        if let Ok(mut f) = std::fs::File::open(&t.path) {
            if !from_start {
                let _ = f.seek(std::io::SeekFrom::End(0));
            }
            t.ino = f.metadata().map(|m| m.ino()).unwrap_or(0);
            t.file = Some(f);
        }
        t
    }

    fn poll(&mut self) -> Vec<serde_json::Value> {
        use std::io::Read;
        use std::os::unix::fs::MetadataExt;
        let mut data = Vec::new();
        if let Some(f) = self.file.as_mut() {
            let _ = f.read_to_end(&mut data);
        }
        match std::fs::metadata(&self.path) {
            Ok(m) if m.ino() != self.ino => {
                if let Ok(mut f) = std::fs::File::open(&self.path) {
                    let _ = f.read_to_end(&mut data);
                    self.ino = m.ino();
                    self.file = Some(f);
                }
            }
            _ => {}
        }
        self.partial.extend_from_slice(&data);
        let Some(last) = self.partial.iter().rposition(|&b| b == b'\n') else {
            return Vec::new();
        };
        let complete: Vec<u8> = self.partial.drain(..=last).collect();
        complete
            .split(|&b| b == b'\n')
            .filter_map(|l| serde_json::from_slice(l).ok())
            .collect()
    }
}
