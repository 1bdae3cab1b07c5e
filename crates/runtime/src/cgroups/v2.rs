//! cgroup v2: controller delegation in the directories the runtime made,
//! the files of each controller, cgroup.freeze and statistics.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Seek};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxThrottleDevice};

use super::stats::{self, CpuStats, MemoryEntry, MemoryStats};
use super::{
    Files, Write, check_usage, limit_value, nonzero, read_file, read_opt, read_u64, write_file,
};
use crate::error::{Error, IoContext, Result};

/// Enables, in each intermediate directory the runtime just made, every
/// controller it has, so that they reach the container's directory (the
/// directories above were not made by the runtime and are left alone).
pub fn enable_controllers(intermediate: &[PathBuf]) -> Result<()> {
    for dir in intermediate {
        let have = read_file(dir, "cgroup.controllers")?;
        let line: Vec<String> = have.split_whitespace().map(|c| format!("+{c}")).collect();
        if !line.is_empty() {
            write_file(
                dir,
                "cgroup.subtree_control",
                &line.join(" "),
                "linux.cgroupsPath",
            )?;
        }
    }
    Ok(())
}

/// cpu.weight (1..10000) for v1 cpu shares (2..262144), as runc converts.
pub fn shares_to_weight(shares: u64) -> u64 {
    let s = shares.clamp(2, 262_144);
    1 + ((s - 2) * 9999) / 262_142
}

/// io.weight (1..10000) for a v1 blkio weight (10..1000), as runc converts.
pub fn blkio_to_io_weight(weight: u16) -> u64 {
    let w = u64::from(weight.clamp(10, 1000));
    1 + ((w - 10) * 9999) / 990
}

fn mem_field(name: &str) -> String {
    format!("linux.resources.memory.{name}")
}

/// "max" for -1, the number otherwise.
fn max_or(v: i64) -> String {
    if v == -1 { "max".into() } else { v.to_string() }
}

/// memory.swap.max for an OCI swap value (memory+swap, as v1 counts it)
/// and memory limit, as runc converts: the swap on its own.
pub fn swap_only(swap: i64, limit: i64) -> Result<String> {
    if swap == -1 {
        return Ok("max".into());
    }
    if limit == -1 {
        return Err(Error::config(
            mem_field("swap"),
            "a swap limit needs a memory limit (memory.swap counts memory plus swap)",
        ));
    }
    if swap < limit {
        return Err(Error::config(
            mem_field("swap"),
            format!("{swap} is below the memory limit {limit}: swap counts memory plus swap"),
        ));
    }
    Ok((swap - limit).to_string())
}

/// The writes for `linux.resources.memory`.
pub fn memory(m: &LinuxMemory, initial: bool, files: &dyn Files) -> Result<Vec<Write>> {
    let refuse = |name: &str, why: &str| Err(Error::config(mem_field(name), why.to_string()));
    if m.swappiness().is_some() {
        return refuse("swappiness", "cgroup v2 has no per-cgroup swappiness");
    }
    // Ignored with a warning, as runc does: cgroup v2 counts kernel memory
    // with the rest, under memory.max.
    for (name, v) in [("kernel", m.kernel()), ("kernelTCP", m.kernel_tcp())] {
        if nonzero(v).is_some() {
            crate::spec::ignored(
                &mem_field(name),
                "cgroup v2 has no separate kernel memory limit (memory.max counts it)",
            );
        }
    }
    if m.disable_oom_killer() == Some(true) {
        return refuse(
            "disableOOMKiller",
            "cgroup v2 cannot turn the OOM killer off",
        );
    }
    if m.use_hierarchy() == Some(false) {
        return refuse("useHierarchy", "cgroup v2 is always hierarchical");
    }
    let checked = |v: Option<i64>, name: &str| -> Result<Option<i64>> {
        nonzero(v)
            .map(|v| limit_value(v, &mem_field(name)))
            .transpose()
    };
    let limit = checked(m.limit(), "limit")?;
    let swap = checked(m.swap(), "swap")?;
    check_usage(m, initial, limit, files, "memory.current")?;
    let mut w = Vec::new();
    let swap_value = match swap {
        // No memory limit means no swap limit either.
        None if limit == Some(-1) => files.exists("memory.swap.max").then(|| "max".to_string()),
        None => None,
        Some(s) => {
            let l = match limit {
                Some(l) => l,
                None => match files.read("memory.max")?.as_deref().map(str::trim) {
                    Some("max") | None => -1,
                    Some(v) => v.parse().unwrap_or(-1),
                },
            };
            if !files.exists("memory.swap.max") {
                return refuse(
                    "swap",
                    "swap accounting is off in this kernel (there is no memory.swap.max)",
                );
            }
            Some(swap_only(s, l)?)
        }
    };
    if let Some(v) = swap_value {
        w.push(Write::new("memory.swap.max", v, mem_field("swap")));
    }
    if let Some(l) = limit {
        w.push(Write::new("memory.max", max_or(l), mem_field("limit")));
    }
    if let Some(r) = checked(m.reservation(), "reservation")? {
        w.push(Write::new(
            "memory.low",
            max_or(r),
            mem_field("reservation"),
        ));
    }
    Ok(w)
}

/// The writes for the cpu controller's part of `linux.resources.cpu`.
pub fn cpu(c: &LinuxCpu, files: &dyn Files) -> Result<Vec<Write>> {
    let f = |n: &str| format!("linux.resources.cpu.{n}");
    if nonzero(c.realtime_runtime()).is_some() || nonzero(c.realtime_period()).is_some() {
        let which = if nonzero(c.realtime_runtime()).is_some() {
            "realtimeRuntime"
        } else {
            "realtimePeriod"
        };
        return Err(Error::config(
            f(which),
            "cgroup v2 has no real-time scheduling budget",
        ));
    }
    let mut w = Vec::new();
    if let Some(s) = nonzero(c.shares()) {
        w.push(Write::new("cpu.weight", shares_to_weight(s), f("shares")));
    }
    let quota = nonzero(c.quota())
        .map(|q| limit_value(q, &f("quota")))
        .transpose()?;
    let period = nonzero(c.period());
    let max = match (quota, period) {
        (Some(q), Some(p)) => Some(format!("{} {p}", max_or(q))),
        // The kernel keeps the period when given the quota alone.
        (Some(q), None) => Some(max_or(q)),
        (None, Some(p)) => {
            let current = files.read("cpu.max")?.unwrap_or_default();
            let q = current
                .split_whitespace()
                .next()
                .unwrap_or("max")
                .to_string();
            Some(format!("{q} {p}"))
        }
        (None, None) => None,
    };
    if let Some(v) = max {
        let field = if quota.is_some() {
            f("quota")
        } else {
            f("period")
        };
        w.push(Write::new("cpu.max", v, field));
    }
    if let Some(b) = c.burst() {
        w.push(Write::new("cpu.max.burst", b, f("burst")));
    }
    if let Some(i) = c.idle() {
        w.push(Write::new("cpu.idle", i, f("idle")));
    }
    Ok(w)
}

/// io.max lines: one per device, holding every limit given for it (the
/// kernel keeps the limits a line does not mention). A rate of 0 lifts the
/// limit, as writing 0 does on v1.
pub fn io_max(b: &LinuxBlockIo) -> Vec<Write> {
    let mut per_device: BTreeMap<(i64, i64), (Vec<String>, String)> = BTreeMap::new();
    let lists: [(&Option<Vec<LinuxThrottleDevice>>, &str, &str); 4] = [
        (
            b.throttle_read_bps_device(),
            "rbps",
            "throttleReadBpsDevice",
        ),
        (
            b.throttle_write_bps_device(),
            "wbps",
            "throttleWriteBpsDevice",
        ),
        (
            b.throttle_read_iops_device(),
            "riops",
            "throttleReadIOPSDevice",
        ),
        (
            b.throttle_write_iops_device(),
            "wiops",
            "throttleWriteIOPSDevice",
        ),
    ];
    for (list, key, field) in lists {
        for (i, d) in list.iter().flatten().enumerate() {
            let rate = match d.rate() {
                0 => "max".to_string(),
                r => r.to_string(),
            };
            let entry = per_device
                .entry((d.major(), d.minor()))
                .or_insert_with(|| (Vec::new(), format!("linux.resources.blockIO.{field}[{i}]")));
            entry.0.push(format!("{key}={rate}"));
        }
    }
    per_device
        .into_iter()
        .map(|((major, minor), (limits, field))| {
            Write::new(
                "io.max",
                format!("{major}:{minor} {}", limits.join(" ")),
                field,
            )
        })
        .collect()
}

/// The writes for `linux.resources.blockIO` (the io controller: BFQ's
/// weights when it is the scheduler, else io.weight).
pub fn io(b: &LinuxBlockIo, files: &dyn Files) -> Result<Vec<Write>> {
    let f = |n: &str| format!("linux.resources.blockIO.{n}");
    if nonzero(b.leaf_weight()).is_some() {
        return Err(Error::config(
            f("leafWeight"),
            "cgroup v2 has no leaf weights",
        ));
    }
    let bfq = files.exists("io.bfq.weight");
    let mut w = Vec::new();
    if let Some(v) = nonzero(b.weight()) {
        if bfq {
            w.push(Write::new("io.bfq.weight", v, f("weight")));
        } else {
            w.push(Write::new("io.weight", blkio_to_io_weight(v), f("weight")));
        }
    }
    for (i, d) in b.weight_device().iter().flatten().enumerate() {
        if d.leaf_weight().is_some() {
            return Err(Error::config(
                f(&format!("weightDevice[{i}].leafWeight")),
                "cgroup v2 has no leaf weights",
            ));
        }
        if let Some(v) = d.weight() {
            let (file, value) = if bfq {
                ("io.bfq.weight", u64::from(v))
            } else {
                ("io.weight", blkio_to_io_weight(v))
            };
            w.push(Write::new(
                file,
                format!("{}:{} {value}", d.major(), d.minor()),
                f(&format!("weightDevice[{i}].weight")),
            ));
        }
    }
    w.extend(io_max(b));
    Ok(w)
}

/// Files a `unified` entry may not write: they move, kill or freeze
/// processes, or change the cgroup's shape, which the runtime manages.
const RESERVED: [&str; 6] = [
    "cgroup.procs",
    "cgroup.threads",
    "cgroup.subtree_control",
    "cgroup.kill",
    "cgroup.freeze",
    "cgroup.type",
];

/// The writes for `linux.resources.unified` (file name → value), in name
/// order; whether each controller is there is for the caller to check.
pub fn unified(map: &HashMap<String, String>) -> Result<Vec<Write>> {
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    let mut w = Vec::new();
    for k in keys {
        let field = format!("linux.resources.unified.{k}");
        if !k
            .split_once('.')
            .is_some_and(|(c, rest)| !c.is_empty() && !rest.is_empty())
        {
            return Err(Error::config(
                field,
                "not a cgroup v2 file name such as \"memory.high\"",
            ));
        }
        if k.contains('/') {
            return Err(Error::config(field, "a file name may not contain '/'"));
        }
        if RESERVED.contains(&k.as_str()) {
            return Err(Error::config(field, "the runtime manages this file itself"));
        }
        w.push(Write::new(k.as_str(), &map[k], field));
    }
    Ok(w)
}

/// Freezes or thaws through cgroup.freeze and waits for cgroup.events to
/// say "frozen 1" (or 0), woken by the kernel's notification on that file.
pub fn set_frozen(dir: &Path, frozen: bool) -> Result<()> {
    let want = if frozen { "frozen 1" } else { "frozen 0" };
    write_file(
        dir,
        "cgroup.freeze",
        if frozen { "1" } else { "0" },
        "freezer",
    )?;
    let path = dir.join("cgroup.events");
    let mut events = std::fs::File::open(&path).ctx("open", &path)?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut text = String::new();
    loop {
        text.clear();
        events.rewind().ctx("seek", &path)?;
        events.read_to_string(&mut text).ctx("read", &path)?;
        if text.lines().any(|l| l == want) {
            return Ok(());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            if frozen {
                let _ = write_file(dir, "cgroup.freeze", "0", "freezer");
            }
            return Err(Error::cgroup(
                &path,
                format!("did not report \"{want}\" within 10 s"),
            ));
        }
        let ms = left.as_millis().min(100) as u16;
        let mut fds = [PollFd::new(events.as_fd(), PollFlags::POLLPRI)];
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(Error::sys("poll", path.display().to_string(), e)),
        }
    }
}

/// Whether cgroup.freeze is set.
pub fn is_frozen(dir: &Path) -> Result<bool> {
    Ok(read_opt(dir, "cgroup.freeze")?.is_some_and(|s| s.trim() == "1"))
}

/// CPU time and throttling from cpu.stat (in microseconds there).
pub fn cpu_stats(dir: &Path, cpu: &mut CpuStats) -> Result<()> {
    let st = stats::parse_keyed(&read_opt(dir, "cpu.stat")?.unwrap_or_default());
    let us = |k: &str| st.get(k).copied().unwrap_or(0) * 1000;
    cpu.usage.total = us("usage_usec");
    cpu.usage.user = us("user_usec");
    cpu.usage.kernel = us("system_usec");
    cpu.throttling.periods = st.get("nr_periods").copied().unwrap_or(0);
    cpu.throttling.throttled_periods = st.get("nr_throttled").copied().unwrap_or(0);
    cpu.throttling.throttled_time = us("throttled_usec");
    Ok(())
}

/// Memory statistics. Swap is reported as memory plus swap, as v1 does.
pub fn memory_stats(dir: &Path, m: &mut MemoryStats) -> Result<()> {
    let events = stats::parse_keyed(&read_opt(dir, "memory.events")?.unwrap_or_default());
    m.usage = MemoryEntry {
        limit: read_u64(dir, "memory.max")?,
        usage: read_u64(dir, "memory.current")?,
        max: read_u64(dir, "memory.peak")?,
        failcnt: events.get("max").copied().unwrap_or(0),
    };
    let swap_limit = read_u64(dir, "memory.swap.max")?;
    m.swap = MemoryEntry {
        limit: if swap_limit == u64::MAX || m.usage.limit == u64::MAX {
            u64::MAX
        } else {
            swap_limit + m.usage.limit
        },
        usage: read_u64(dir, "memory.swap.current")? + m.usage.usage,
        max: read_u64(dir, "memory.swap.peak")?,
        failcnt: 0,
    };
    m.raw = stats::parse_keyed(&read_opt(dir, "memory.stat")?.unwrap_or_default());
    m.cache = m.raw.get("file").copied().unwrap_or(0);
    Ok(())
}

/// Block I/O counters from io.stat.
pub fn io_stats(dir: &Path, b: &mut stats::BlkioStats) -> Result<()> {
    let (bytes, ios) = stats::parse_io_stat(&read_opt(dir, "io.stat")?.unwrap_or_default());
    b.io_service_bytes_recursive = bytes;
    b.io_serviced_recursive = ios;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::tests::{Fake, pairs, resources};
    use super::*;

    fn files() -> Fake {
        Fake(BTreeMap::from([
            ("memory.max", "max"),
            ("memory.swap.max", "max"),
            ("memory.current", "5000"),
            ("cpu.max", "20000 100000"),
            ("io.weight", "default 100"),
        ]))
    }

    #[test]
    fn weights_convert_like_runc() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(1), 1);
        assert_eq!(shares_to_weight(1_000_000), 10_000);
        assert_eq!(blkio_to_io_weight(10), 1);
        assert_eq!(blkio_to_io_weight(500), 4950);
        assert_eq!(blkio_to_io_weight(1000), 10_000);
    }

    #[test]
    fn cpu_max_and_weight() {
        let r = resources(
            r#"{"cpu": {"shares": 1024, "quota": 50000, "period": 100000, "burst": 1000, "idle": 1}}"#,
        );
        let w = cpu(r.cpu().as_ref().unwrap(), &files()).unwrap();
        assert_eq!(
            pairs(&w),
            [
                ("cpu.weight", "39"),
                ("cpu.max", "50000 100000"),
                ("cpu.max.burst", "1000"),
                ("cpu.idle", "1")
            ]
        );
        let r = resources(r#"{"cpu": {"quota": -1}}"#);
        assert_eq!(
            pairs(&cpu(r.cpu().as_ref().unwrap(), &files()).unwrap()),
            [("cpu.max", "max")]
        );
        // A period alone keeps the quota in force.
        let r = resources(r#"{"cpu": {"period": 50000}}"#);
        assert_eq!(
            pairs(&cpu(r.cpu().as_ref().unwrap(), &files()).unwrap()),
            [("cpu.max", "20000 50000")]
        );
        let r = resources(r#"{"cpu": {"realtimeRuntime": 100}}"#);
        let e = cpu(r.cpu().as_ref().unwrap(), &files())
            .unwrap_err()
            .to_string();
        assert!(e.contains("cpu.realtimeRuntime"), "{e}");
    }

    #[test]
    fn memory_swap_is_converted() {
        let r = resources(r#"{"memory": {"limit": 1000, "swap": 3000, "reservation": 500}}"#);
        let w = memory(r.memory().as_ref().unwrap(), true, &files()).unwrap();
        assert_eq!(
            pairs(&w),
            [
                ("memory.swap.max", "2000"),
                ("memory.max", "1000"),
                ("memory.low", "500")
            ]
        );
        let r = resources(r#"{"memory": {"limit": -1}}"#);
        let w = memory(r.memory().as_ref().unwrap(), true, &files()).unwrap();
        assert_eq!(
            pairs(&w),
            [("memory.swap.max", "max"), ("memory.max", "max")]
        );
        // Swap alone needs the limit in force.
        let r = resources(r#"{"memory": {"swap": 3000}}"#);
        let e = memory(r.memory().as_ref().unwrap(), false, &files())
            .unwrap_err()
            .to_string();
        assert!(e.contains("needs a memory limit"), "{e}");
        let mut f = files();
        f.0.insert("memory.max", "1000\n");
        let w = memory(r.memory().as_ref().unwrap(), false, &f).unwrap();
        assert_eq!(pairs(&w), [("memory.swap.max", "2000")]);
        for (json, field) in [
            (r#"{"swappiness": 60}"#, "swappiness"),
            (r#"{"disableOOMKiller": true}"#, "disableOOMKiller"),
            (r#"{"limit": 100, "swap": 50}"#, "memory.swap"),
            (
                r#"{"limit": 100, "checkBeforeUpdate": true}"#,
                "memory.limit",
            ),
        ] {
            let r = resources(&format!(r#"{{"memory": {json}}}"#));
            let e = memory(r.memory().as_ref().unwrap(), false, &files())
                .unwrap_err()
                .to_string();
            assert!(e.contains(field), "{json}: {e}");
        }
        // Kernel memory limits are ignored (with a warning), as runc does.
        let r = resources(r#"{"memory": {"kernel": 1000, "kernelTCP": 1000}}"#);
        let w = memory(r.memory().as_ref().unwrap(), false, &files()).unwrap();
        assert!(w.is_empty(), "{w:?}");
    }

    #[test]
    fn io_max_groups_limits_per_device() {
        let r = resources(
            r#"{"blockIO": {"weight": 500,
                "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
                "throttleWriteBpsDevice": [{"major": 8, "minor": 0, "rate": 0}],
                "throttleReadIOPSDevice": [{"major": 254, "minor": 0, "rate": 100}],
                "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 50}]}}"#,
        );
        let w = io(r.block_io().as_ref().unwrap(), &files()).unwrap();
        assert_eq!(
            pairs(&w),
            [
                ("io.weight", "4950"),
                ("io.max", "8:0 rbps=1048576 wbps=max wiops=50"),
                ("io.max", "254:0 riops=100"),
            ]
        );
        let mut f = files();
        f.0.insert("io.bfq.weight", "default 100");
        let w = io(r.block_io().as_ref().unwrap(), &f).unwrap();
        assert_eq!(w[0].file, "io.bfq.weight");
        assert_eq!(w[0].value, "500");
    }

    #[test]
    fn unified_entries_are_checked() {
        let map = HashMap::from([
            ("memory.high".to_string(), "1000000".to_string()),
            ("cgroup.max.depth".to_string(), "3".to_string()),
            ("io.weight".to_string(), "10".to_string()),
        ]);
        let w = unified(&map).unwrap();
        assert_eq!(
            pairs(&w),
            [
                ("cgroup.max.depth", "3"),
                ("io.weight", "10"),
                ("memory.high", "1000000")
            ]
        );
        for bad in ["../memory.max", "memory", "cgroup.procs", ".x"] {
            let map = HashMap::from([(bad.to_string(), "1".to_string())]);
            let e = unified(&map).unwrap_err().to_string();
            assert!(e.contains("linux.resources.unified."), "{bad}: {e}");
        }
    }
}
