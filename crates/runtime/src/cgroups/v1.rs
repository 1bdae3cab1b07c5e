//! cgroup v1: the files of each controller, the freezer and statistics.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxThrottleDevice};

use super::stats::{self, CpuStats, MemoryEntry, MemoryStats};
use super::{
    Files, Write, check_usage, limit_value, nonzero, read_file, read_opt, read_u64, write_file,
};
use crate::error::{Error, Result};

/// Gives new cpuset directories (`made`, outermost first) the CPUs and
/// memory nodes of their parent: a v1 cpuset with none of either cannot take
/// processes. The container's own directory skips what `cpu` sets itself.
pub fn init_cpuset(made: &[PathBuf], cpu: Option<&LinuxCpu>) -> Result<()> {
    for (i, dir) in made.iter().enumerate() {
        let leaf = i + 1 == made.len();
        for (file, given) in [
            ("cpuset.cpus", cpu.and_then(|c| c.cpus().as_deref())),
            ("cpuset.mems", cpu.and_then(|c| c.mems().as_deref())),
        ] {
            if leaf && given.is_some_and(|v| !v.is_empty()) {
                continue;
            }
            let parent = dir.parent().unwrap_or(dir);
            let value = read_file(parent, file)?;
            let value = value.trim();
            if value.is_empty() {
                return Err(Error::cgroup(
                    parent.join(file),
                    "is empty: there is nothing to give the container's cpuset",
                ));
            }
            write_file(dir, file, value, "linux.cgroupsPath")?;
        }
    }
    Ok(())
}

fn field(name: &str) -> String {
    format!("linux.resources.memory.{name}")
}

/// The writes for `linux.resources.memory`.
pub fn memory(m: &LinuxMemory, initial: bool, files: &dyn Files) -> Result<Vec<Write>> {
    const MEMSW: &str = "memory.memsw.limit_in_bytes";
    let checked = |v: Option<i64>, name: &str| -> Result<Option<i64>> {
        nonzero(v).map(|v| limit_value(v, &field(name))).transpose()
    };
    let limit = checked(m.limit(), "limit")?;
    let mut swap = checked(m.swap(), "swap")?;
    let mut w = Vec::new();
    if limit == Some(-1) && swap.is_none() && files.exists(MEMSW) {
        // No memory limit means no memory+swap limit either.
        swap = Some(-1);
    }
    if swap.is_some() && !files.exists(MEMSW) {
        return Err(Error::config(
            field("swap"),
            format!("swap accounting is off in this kernel (there is no {MEMSW})"),
        ));
    }
    check_usage(m, initial, limit, files, "memory.usage_in_bytes")?;
    let lw = limit.map(|l| Write::new("memory.limit_in_bytes", l, field("limit")));
    let sw = swap.map(|s| Write::new(MEMSW, s, field("swap")));
    match (lw, sw) {
        (Some(lw), Some(sw)) => {
            // memory <= memory+swap must hold after each write: raise the
            // sum first when it grows past the current memory limit.
            let current = files
                .read("memory.limit_in_bytes")?
                .and_then(|s| stats::parse_u64(&s))
                .unwrap_or(u64::MAX);
            let s = swap.unwrap_or(-1);
            if s == -1 || current < s as u64 {
                w.extend([sw, lw]);
            } else {
                w.extend([lw, sw]);
            }
        }
        (Some(lw), None) => {
            let l = limit.unwrap_or(-1);
            let sum = files
                .read(MEMSW)?
                .and_then(|s| stats::parse_u64(&s))
                .unwrap_or(u64::MAX);
            if l > 0 && l as u64 > sum {
                return Err(Error::config(
                    field("limit"),
                    format!(
                        "{l} is above the memory+swap limit {sum} in force: raise \
                         linux.resources.memory.swap (memory+swap) with it"
                    ),
                ));
            }
            w.push(lw);
        }
        (None, sw) => w.extend(sw),
    }
    if let Some(r) = checked(m.reservation(), "reservation")? {
        w.push(Write::new(
            "memory.soft_limit_in_bytes",
            r,
            field("reservation"),
        ));
    }
    // Kernel memory limits are applied where the kernel still enforces
    // them, else ignored with a warning (runc 1.1 ignores them always).
    if let Some(k) = checked(m.kernel(), "kernel")? {
        let mut kw = Write::new("memory.kmem.limit_in_bytes", k, field("kernel")).best_effort();
        if k > 0 {
            let page = page_size();
            kw = kw.expect(
                k as u64 / page * page,
                "this kernel no longer enforces kernel memory limits",
            );
        }
        w.push(kw);
    }
    if let Some(k) = checked(m.kernel_tcp(), "kernelTCP")? {
        w.push(Write::new("memory.kmem.tcp.limit_in_bytes", k, field("kernelTCP")).best_effort());
    }
    if let Some(s) = m.swappiness() {
        if s > 100 {
            return Err(Error::config(
                field("swappiness"),
                format!("{s}: swappiness is between 0 and 100"),
            ));
        }
        w.push(Write::new("memory.swappiness", s, field("swappiness")));
    }
    if let Some(d) = m.disable_oom_killer() {
        w.push(Write::new(
            "memory.oom_control",
            u8::from(d),
            field("disableOOMKiller"),
        ));
    }
    if let Some(h) = m.use_hierarchy() {
        w.push(Write::new(
            "memory.use_hierarchy",
            u8::from(h),
            field("useHierarchy"),
        ));
    }
    Ok(w)
}

fn page_size() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .map_or(4096, |p| p as u64)
}

/// The writes for the cpu controller's part of `linux.resources.cpu`.
pub fn cpu(c: &LinuxCpu) -> Result<Vec<Write>> {
    let f = |n: &str| format!("linux.resources.cpu.{n}");
    let mut w = Vec::new();
    if let Some(s) = nonzero(c.shares()) {
        w.push(
            Write::new("cpu.shares", s, f("shares")).expect(s, "cpu shares range from 2 to 262144"),
        );
    }
    let quota = nonzero(c.quota())
        .map(|q| limit_value(q, &f("quota")))
        .transpose()?;
    if let Some(p) = nonzero(c.period()) {
        // A shorter period may only fit once the new quota is in.
        let pw = Write::new("cpu.cfs_period_us", p, f("period"));
        w.push(if quota.is_some() { pw.deferrable() } else { pw });
    }
    if let Some(q) = quota {
        w.push(Write::new("cpu.cfs_quota_us", q, f("quota")));
    }
    if let Some(b) = c.burst() {
        w.push(Write::new("cpu.cfs_burst_us", b, f("burst")));
    }
    if let Some(p) = nonzero(c.realtime_period()) {
        w.push(Write::new("cpu.rt_period_us", p, f("realtimePeriod")));
    }
    if let Some(r) = nonzero(c.realtime_runtime()) {
        let r = limit_value(r, &f("realtimeRuntime"))?;
        w.push(Write::new("cpu.rt_runtime_us", r, f("realtimeRuntime")));
    }
    if let Some(i) = c.idle() {
        w.push(Write::new("cpu.idle", i, f("idle")));
    }
    Ok(w)
}

/// "major:minor value" lines of a per-device file.
fn device_lines(
    list: &Option<Vec<LinuxThrottleDevice>>,
    file: &str,
    field: &str,
    w: &mut Vec<Write>,
) {
    for (i, d) in list.iter().flatten().enumerate() {
        w.push(Write::new(
            file,
            format!("{}:{} {}", d.major(), d.minor(), d.rate()),
            format!("linux.resources.blockIO.{field}[{i}]"),
        ));
    }
}

/// The writes for `linux.resources.blockIO` (the blkio controller; weights
/// go to the CFQ files, or to BFQ's where CFQ is gone).
pub fn block_io(b: &LinuxBlockIo, files: &dyn Files) -> Result<Vec<Write>> {
    let f = |n: &str| format!("linux.resources.blockIO.{n}");
    let (weight, weight_device) = if files.exists("blkio.weight") {
        ("blkio.weight", "blkio.weight_device")
    } else {
        ("blkio.bfq.weight", "blkio.bfq.weight_device")
    };
    let need = |file: &str, field: String| {
        if files.exists(file) {
            Ok(())
        } else {
            Err(Error::config(
                field,
                format!("this kernel has no {file} (the I/O scheduler offers no such weight)"),
            ))
        }
    };
    let mut w = Vec::new();
    if let Some(v) = nonzero(b.weight()) {
        need(weight, f("weight"))?;
        w.push(Write::new(weight, v, f("weight")));
    }
    if let Some(v) = nonzero(b.leaf_weight()) {
        need("blkio.leaf_weight", f("leafWeight"))?;
        w.push(Write::new("blkio.leaf_weight", v, f("leafWeight")));
    }
    for (i, d) in b.weight_device().iter().flatten().enumerate() {
        if let Some(v) = d.weight() {
            need(weight_device, f(&format!("weightDevice[{i}].weight")))?;
            w.push(Write::new(
                weight_device,
                format!("{}:{} {v}", d.major(), d.minor()),
                f(&format!("weightDevice[{i}].weight")),
            ));
        }
        if let Some(v) = d.leaf_weight() {
            let field = f(&format!("weightDevice[{i}].leafWeight"));
            need("blkio.leaf_weight_device", field.clone())?;
            w.push(Write::new(
                "blkio.leaf_weight_device",
                format!("{}:{} {v}", d.major(), d.minor()),
                field,
            ));
        }
    }
    device_lines(
        b.throttle_read_bps_device(),
        "blkio.throttle.read_bps_device",
        "throttleReadBpsDevice",
        &mut w,
    );
    device_lines(
        b.throttle_write_bps_device(),
        "blkio.throttle.write_bps_device",
        "throttleWriteBpsDevice",
        &mut w,
    );
    device_lines(
        b.throttle_read_iops_device(),
        "blkio.throttle.read_iops_device",
        "throttleReadIOPSDevice",
        &mut w,
    );
    device_lines(
        b.throttle_write_iops_device(),
        "blkio.throttle.write_iops_device",
        "throttleWriteIOPSDevice",
        &mut w,
    );
    Ok(w)
}

/// Freezes or thaws through freezer.state, waiting until the state
/// settles (FREEZING can take a while; the write is repeated now and then,
/// as tasks that were busy in the kernel may be missed the first time).
pub fn set_frozen(dir: &Path, frozen: bool) -> Result<()> {
    let want = if frozen { "FROZEN" } else { "THAWED" };
    let field = "freezer.state";
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut pause = Duration::from_micros(100);
    for round in 0.. {
        if round % 50 == 0 {
            write_file(dir, field, want, "freezer")?;
        }
        let state = read_file(dir, field)?;
        if state.trim() == want {
            return Ok(());
        }
        if Instant::now() > deadline {
            if frozen {
                let _ = write_file(dir, field, "THAWED", "freezer");
            }
            return Err(Error::cgroup(
                dir.join(field),
                format!("still {} after 10 s, wanted {want}", state.trim()),
            ));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(10));
    }
    unreachable!("the loop above only ends by returning")
}

/// Whether freezer.state says FROZEN.
pub fn is_frozen(dir: &Path) -> Result<bool> {
    Ok(read_opt(dir, "freezer.state")?.is_some_and(|s| s.trim() == "FROZEN"))
}

/// CPU time from the cpuacct controller.
pub fn cpu_usage(dir: &Path, cpu: &mut CpuStats) -> Result<()> {
    let u = &mut cpu.usage;
    u.total = read_u64(dir, "cpuacct.usage")?;
    let list = |name| -> Result<Vec<u64>> {
        Ok(read_opt(dir, name)?
            .map(|s| stats::parse_list(&s))
            .unwrap_or_default())
    };
    u.percpu = list("cpuacct.usage_percpu")?;
    u.percpu_user = list("cpuacct.usage_percpu_user")?;
    u.percpu_kernel = list("cpuacct.usage_percpu_sys")?;
    match (
        read_opt(dir, "cpuacct.usage_user")?,
        read_opt(dir, "cpuacct.usage_sys")?,
    ) {
        (Some(user), Some(sys)) => {
            u.user = stats::parse_u64(&user).unwrap_or(0);
            u.kernel = stats::parse_u64(&sys).unwrap_or(0);
        }
        _ => {
            // Older kernels: cpuacct.stat in clock ticks.
            let st = stats::parse_keyed(&read_opt(dir, "cpuacct.stat")?.unwrap_or_default());
            let tick = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
                .ok()
                .flatten()
                .map_or(100, |t| t as u64);
            let ns = |k: &str| st.get(k).copied().unwrap_or(0) * (1_000_000_000 / tick);
            u.user = ns("user");
            u.kernel = ns("system");
        }
    }
    Ok(())
}

/// CFS throttling from cpu.stat of the cpu controller.
pub fn cpu_throttling(dir: &Path, cpu: &mut CpuStats) -> Result<()> {
    let st = stats::parse_keyed(&read_opt(dir, "cpu.stat")?.unwrap_or_default());
    let get = |k: &str| st.get(k).copied().unwrap_or(0);
    cpu.throttling.periods = get("nr_periods");
    cpu.throttling.throttled_periods = get("nr_throttled");
    cpu.throttling.throttled_time = get("throttled_time");
    Ok(())
}

fn memory_entry(dir: &Path, prefix: &str) -> Result<MemoryEntry> {
    let f = |name: &str| format!("{prefix}.{name}");
    Ok(MemoryEntry {
        limit: read_u64(dir, &f("limit_in_bytes"))?,
        usage: read_u64(dir, &f("usage_in_bytes"))?,
        max: read_u64(dir, &f("max_usage_in_bytes"))?,
        failcnt: read_u64(dir, &f("failcnt"))?,
    })
}

/// Memory statistics from the memory controller.
pub fn memory_stats(dir: &Path, m: &mut MemoryStats) -> Result<()> {
    m.usage = memory_entry(dir, "memory")?;
    m.swap = memory_entry(dir, "memory.memsw")?;
    m.kernel = memory_entry(dir, "memory.kmem")?;
    m.kernel_tcp = memory_entry(dir, "memory.kmem.tcp")?;
    m.raw = stats::parse_keyed(&read_opt(dir, "memory.stat")?.unwrap_or_default());
    m.cache = m.raw.get("cache").copied().unwrap_or(0);
    Ok(())
}

/// Block I/O counters from the blkio controller.
pub fn blkio_stats(dir: &Path, b: &mut stats::BlkioStats) -> Result<()> {
    let read = |name| -> Result<Vec<stats::BlkioEntry>> {
        Ok(read_opt(dir, name)?
            .map(|s| stats::parse_blkio_v1(&s))
            .unwrap_or_default())
    };
    b.io_service_bytes_recursive = read("blkio.throttle.io_service_bytes_recursive")?;
    b.io_serviced_recursive = read("blkio.throttle.io_serviced_recursive")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::super::tests::{Fake, pairs, resources};
    use super::*;

    fn files() -> Fake {
        Fake(BTreeMap::from([
            ("memory.limit_in_bytes", "9223372036854771712"),
            ("memory.memsw.limit_in_bytes", "9223372036854771712"),
            ("memory.usage_in_bytes", "1000000"),
            ("blkio.bfq.weight", "100"),
            ("blkio.bfq.weight_device", ""),
        ]))
    }

    #[test]
    fn memory_limit_and_swap_keep_their_order() {
        let r = resources(
            r#"{"memory": {"limit": 1048576, "swap": 2097152, "swappiness": 10, "reservation": 4096}}"#,
        );
        let w = memory(r.memory().as_ref().unwrap(), true, &files()).unwrap();
        assert_eq!(
            pairs(&w),
            [
                ("memory.limit_in_bytes", "1048576"),
                ("memory.memsw.limit_in_bytes", "2097152"),
                ("memory.soft_limit_in_bytes", "4096"),
                ("memory.swappiness", "10"),
            ]
        );
        // Growing past the current limit: the sum first.
        let mut f = files();
        f.0.insert("memory.limit_in_bytes", "1048576");
        let r = resources(r#"{"memory": {"limit": 4194304, "swap": 8388608}}"#);
        let w = memory(r.memory().as_ref().unwrap(), false, &f).unwrap();
        assert_eq!(w[0].file, "memory.memsw.limit_in_bytes");
        // No limit: no swap limit either.
        let r = resources(r#"{"memory": {"limit": -1}}"#);
        let w = memory(r.memory().as_ref().unwrap(), false, &f).unwrap();
        assert_eq!(
            pairs(&w),
            [
                ("memory.memsw.limit_in_bytes", "-1"),
                ("memory.limit_in_bytes", "-1")
            ]
        );
    }

    #[test]
    fn memory_errors_name_the_field() {
        let bad = [
            (r#"{"swappiness": 101}"#, "swappiness"),
            (r#"{"limit": -5}"#, "memory.limit"),
            (
                r#"{"limit": 100, "checkBeforeUpdate": true}"#,
                "memory.limit",
            ),
        ];
        let mut f = files();
        f.0.insert("memory.memsw.limit_in_bytes", "2097152");
        let r = resources(r#"{"memory": {"limit": 4194304}}"#);
        let e = memory(r.memory().as_ref().unwrap(), false, &f)
            .unwrap_err()
            .to_string();
        assert!(e.contains("memory+swap limit 2097152"), "{e}");
        for (json, want) in bad {
            let r = resources(&format!(r#"{{"memory": {json}}}"#));
            let e = memory(r.memory().as_ref().unwrap(), false, &files())
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{json}: {e}");
        }
        let mut f = files();
        f.0.remove("memory.memsw.limit_in_bytes");
        let r = resources(r#"{"memory": {"swap": 100}}"#);
        let e = memory(r.memory().as_ref().unwrap(), true, &f)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("memory.swap") && e.contains("swap accounting"),
            "{e}"
        );
    }

    #[test]
    fn kernel_memory_is_checked_after_writing() {
        let r = resources(r#"{"memory": {"kernel": 10000}}"#);
        let w = memory(r.memory().as_ref().unwrap(), true, &files()).unwrap();
        let page = page_size();
        assert_eq!(w[0].expect.unwrap().0, 10000 / page * page);
    }

    #[test]
    fn cpu_writes() {
        let r = resources(
            r#"{"cpu": {"shares": 512, "quota": 50000, "period": 100000, "realtimeRuntime": 1000, "realtimePeriod": 10000, "idle": 0, "cpus": "0"}}"#,
        );
        let w = cpu(r.cpu().as_ref().unwrap()).unwrap();
        assert_eq!(
            pairs(&w),
            [
                ("cpu.shares", "512"),
                ("cpu.cfs_period_us", "100000"),
                ("cpu.cfs_quota_us", "50000"),
                ("cpu.rt_period_us", "10000"),
                ("cpu.rt_runtime_us", "1000"),
                ("cpu.idle", "0"),
            ]
        );
        assert!(w[1].deferrable);
        assert_eq!(w[0].expect.unwrap().0, 512);
    }

    #[test]
    fn block_io_uses_bfq_when_cfq_is_gone() {
        let r = resources(
            r#"{"blockIO": {"weight": 300, "weightDevice": [{"major": 8, "minor": 0, "weight": 200}],
                "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
                "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 10}]}}"#,
        );
        let w = block_io(r.block_io().as_ref().unwrap(), &files()).unwrap();
        assert_eq!(
            pairs(&w),
            [
                ("blkio.bfq.weight", "300"),
                ("blkio.bfq.weight_device", "8:0 200"),
                ("blkio.throttle.read_bps_device", "8:0 1048576"),
                ("blkio.throttle.write_iops_device", "8:0 10"),
            ]
        );
        let r = resources(r#"{"blockIO": {"leafWeight": 300}}"#);
        let e = block_io(r.block_io().as_ref().unwrap(), &files())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("blockIO.leafWeight") && e.contains("blkio.leaf_weight"),
            "{e}"
        );
    }
}
