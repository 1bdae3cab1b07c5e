//! cgroup tests: placement, resources (checked in the container's cgroup
//! files on the host and by what processes inside can do), devices, freezer,
//! `update`, `ps`, `events`, `kill --all`, clean-up, and the cgroup v2 code
//! run for real on a cgroup2 hierarchy (the whole one on v2 hosts, the
//! unified one on hybrid hosts). Each resource test checks the files of
//! whichever version holds the controller on this host (v1 on hybrid hosts,
//! v2 on pure v2 ones: scripts/cgroup-v2-vm.sh runs them there).

mod common;

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use capsa_runtime::cgroups::{CgroupPaths, Hierarchy, Layout, Manager, Mode, UNIFIED};
use common::{Bundle, Runtime, read, unique};
use oci_spec::runtime::LinuxResources;
use serde_json::{Value, json};

/// The container's recorded cgroups (from state.json in the state root).
fn recorded(rt: &Runtime, id: &str) -> CgroupPaths {
    let text = std::fs::read_to_string(rt.root().join(id).join("state.json")).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    serde_json::from_value(v["cgroup"].clone()).unwrap()
}

/// The container's cgroup directory holding `controller`'s files.
#[derive(Debug)]
enum Cg {
    /// Its directory in the v1 hierarchy of the controller.
    V1(PathBuf),
    /// Its directory in the unified hierarchy (the controller enabled).
    V2(PathBuf),
}

impl Cg {
    fn dir(&self) -> &Path {
        match self {
            Cg::V1(d) | Cg::V2(d) => d,
        }
    }

    /// A file of the directory.
    fn join(&self, file: &str) -> PathBuf {
        self.dir().join(file)
    }
}

/// Where the container's `controller` files are: its v1 hierarchy, else
/// the unified one.
fn cg(rt: &Runtime, id: &str, controller: &str) -> Cg {
    let p = recorded(rt, id);
    if let Some(d) = p.v1(controller) {
        return Cg::V1(d.to_path_buf());
    }
    let d = p
        .unified()
        .unwrap_or_else(|| panic!("no {controller} cgroup in {p:?}"));
    let enabled = read(d.join("cgroup.controllers"));
    assert!(
        enabled.split_whitespace().any(|c| c == controller),
        "{controller} is not enabled in {}: {enabled}",
        d.display()
    );
    Cg::V2(d.to_path_buf())
}

/// The container's directory in the hierarchy holding `controller` (by
/// hierarchy name: "memory", "cpu", "unified", ...), the unified one on
/// pure v2 hosts.
fn dir(rt: &Runtime, id: &str, controller: &str) -> PathBuf {
    cg(rt, id, controller).dir().to_path_buf()
}

/// Whether this host mounts a v1 hierarchy with `controller`.
fn has_v1(controller: &str) -> bool {
    capsa_runtime::cgroups::host_hierarchies()
        .unwrap()
        .iter()
        .any(|h| h.version == 1 && h.name.split(',').any(|c| c == controller))
}

/// The cgroup version that gives containers `controller` here: 1 where a
/// v1 hierarchy of it is mounted, 2 on a pure v2 host whose cgroup beneath
/// which containers go (the parent of ours) delegates it, else none.
fn version_of(controller: &str) -> Option<u8> {
    if has_v1(controller) {
        return Some(1);
    }
    let layout = Layout::detect().ok()?;
    if layout.mode() != Some(Mode::V2) {
        return None;
    }
    let probe = layout.place(None, "probe").ok()?;
    let parent = probe.unified()?.parent()?;
    let enabled = std::fs::read_to_string(parent.join("cgroup.subtree_control")).ok()?;
    enabled
        .split_whitespace()
        .any(|c| c == controller)
        .then_some(2)
}

/// Skips (returning from the test) unless the host mounts v1 `controller`s.
macro_rules! require_v1 {
    ($($c:expr),+) => {
        $(
            if !has_v1($c) {
                eprintln!("SKIPPED: no cgroup v1 {} hierarchy on this host", $c);
                return;
            }
        )+
    };
}

/// Skips (returning from the test) unless containers get `controller`s
/// here, from a v1 hierarchy or delegated on cgroup v2.
macro_rules! require_controller {
    ($($c:expr),+) => {
        $(
            if version_of($c).is_none() {
                eprintln!(
                    "SKIPPED: containers get no {} controller here (no v1 hierarchy of it, \
                     and cgroup v2 does not delegate it)",
                    $c
                );
                return;
            }
        )+
    };
}

/// A running container made from `b`; returns its init pid.
fn start(rt: &Runtime, b: &Bundle, id: &str) -> i32 {
    rt.create(b, id);
    rt.ok(&["start", id]);
    rt.state(id)["pid"].as_i64().unwrap() as i32
}

/// Makes a device node in the rootfs, outside /dev (which a tmpfs may cover).
fn mknod(b: &Bundle, name: &str, kind: nix::sys::stat::SFlag, major: u64, minor: u64) {
    let dir = b.rootfs().join("testdev");
    std::fs::create_dir_all(&dir).unwrap();
    nix::sys::stat::mknod(
        &dir.join(name),
        kind,
        nix::sys::stat::Mode::from_bits_truncate(0o666),
        nix::sys::stat::makedev(major, minor),
    )
    .unwrap();
}

/// A busybox bundle whose rootfs has /dev/null, which busybox sh opens for
/// background jobs (a /dev the runtime mounts covers it with its own).
fn busybox() -> Bundle {
    let b = Bundle::busybox();
    nix::sys::stat::mknod(
        &b.rootfs().join("dev/null"),
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::from_bits_truncate(0o666),
        nix::sys::stat::makedev(1, 3),
    )
    .unwrap();
    b
}

/// Every directory the container had is gone.
fn assert_removed(paths: &CgroupPaths) {
    assert!(!paths.created.is_empty(), "{paths:?}");
    for d in paths.created.iter().chain(paths.dirs.values()) {
        assert!(!d.exists(), "{} is left behind", d.display());
    }
}

fn sleeper() -> Bundle {
    let mut b = busybox();
    b.args(&["sleep", "1000"]);
    b
}

/// Waits up to 10 s for `f` to hold.
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn memory_limits_are_applied() {
    require_root!();
    require_controller!("memory");
    let rt = Runtime::new();
    let mut b = sleeper();
    let v1 = version_of("memory") == Some(1);
    b.edit(|c| {
        c["linux"]["resources"]["memory"] = json!({
            "limit": 64 << 20, "reservation": 32 << 20, "swap": 128 << 20,
            "disableOOMKiller": false
        });
        // cgroup v2 has no per-cgroup swappiness.
        if v1 {
            c["linux"]["resources"]["memory"]["swappiness"] = json!(17);
        }
    });
    let id = rt.id("mem");
    start(&rt, &b, &id);
    match cg(&rt, &id, "memory") {
        Cg::V1(d) => {
            assert_eq!(
                read(d.join("memory.limit_in_bytes")),
                (64u64 << 20).to_string()
            );
            assert_eq!(
                read(d.join("memory.soft_limit_in_bytes")),
                (32u64 << 20).to_string()
            );
            assert_eq!(
                read(d.join("memory.memsw.limit_in_bytes")),
                (128u64 << 20).to_string()
            );
            assert_eq!(read(d.join("memory.swappiness")), "17");
        }
        Cg::V2(d) => {
            assert_eq!(read(d.join("memory.max")), (64u64 << 20).to_string());
            assert_eq!(read(d.join("memory.low")), (32u64 << 20).to_string());
            // memory.swap.max holds the swap alone: 128 MiB - 64 MiB.
            assert_eq!(read(d.join("memory.swap.max")), (64u64 << 20).to_string());
        }
    }
    let paths = recorded(&rt, &id);
    rt.ok(&["delete", "--force", &id]);
    assert_removed(&paths);
}

#[test]
fn kernel_memory_is_applied_or_refused_clearly() {
    require_root!();
    require_v1!("memory");
    let rt = Runtime::new();
    let mut b = sleeper();
    b.edit(|c| c["linux"]["resources"]["memory"] = json!({"kernel": 64 << 20}));
    let id = rt.id("kmem");
    let (ok, _, err) = rt.detached(&["create", "--bundle", &b.path_str(), &id]);
    if ok {
        let d = dir(&rt, &id, "memory");
        assert_eq!(
            read(d.join("memory.kmem.limit_in_bytes")),
            (64u64 << 20).to_string()
        );
    } else {
        // Linux 6.1 and later accept the write and ignore it.
        assert!(err.contains("linux.resources.memory.kernel"), "{err}");
        assert!(err.contains("no longer enforces"), "{err}");
        let paths = Layout::detect().unwrap().place(None, &id).unwrap();
        assert!(paths.dirs.values().all(|d| !d.exists()));
    }
}

#[test]
fn cpu_and_cpuset_are_applied() {
    require_root!();
    require_controller!("cpu", "cpuset");
    let rt = Runtime::new();
    let mut b = sleeper();
    b.edit(|c| {
        c["linux"]["resources"]["cpu"] = json!({
            "shares": 256, "quota": 30000, "period": 60000, "cpus": "0", "mems": "0"
        });
    });
    let id = rt.id("cpu");
    let pid = start(&rt, &b, &id);
    match cg(&rt, &id, "cpu") {
        Cg::V1(d) => {
            assert_eq!(read(d.join("cpu.shares")), "256");
            assert_eq!(read(d.join("cpu.cfs_quota_us")), "30000");
            assert_eq!(read(d.join("cpu.cfs_period_us")), "60000");
        }
        Cg::V2(d) => {
            // runc's conversion of 256 shares: 1 + (256 - 2) * 9999 / 262142.
            assert_eq!(read(d.join("cpu.weight")), "10");
            assert_eq!(read(d.join("cpu.max")), "30000 60000");
        }
    }
    let cs = dir(&rt, &id, "cpuset");
    assert_eq!(read(cs.join("cpuset.cpus")), "0");
    assert_eq!(read(cs.join("cpuset.mems")), "0");
    // The kernel holds the process to CPU 0.
    let status = read(format!("/proc/{pid}/status"));
    assert!(
        status.lines().any(|l| l == "Cpus_allowed_list:\t0"),
        "{status}"
    );
}

#[test]
fn cpuset_is_inherited_when_not_given() {
    require_root!();
    require_controller!("cpuset");
    let rt = Runtime::new();
    let b = sleeper();
    let id = rt.id("cpuset");
    start(&rt, &b, &id);
    let cs = cg(&rt, &id, "cpuset");
    let parent = cs.dir().parent().unwrap();
    // v1 cpusets start empty (and take no process) unless given the
    // parent's; on v2 an empty cpuset uses the parent's effective one.
    let files = match cs {
        Cg::V1(_) => ["cpuset.cpus", "cpuset.mems"],
        Cg::V2(_) => ["cpuset.cpus.effective", "cpuset.mems.effective"],
    };
    for f in files {
        assert_eq!(read(cs.join(f)), read(parent.join(f)), "{f}");
        assert!(!read(cs.join(f)).is_empty(), "{f}");
    }
}

#[test]
fn pids_limit_contains_a_fork_bomb() {
    require_root!();
    require_controller!("pids");
    let rt = Runtime::new();
    let mut b = busybox();
    // Far more processes than the limit allows (bounded, so that a broken
    // limit cannot take the host down), from a subshell: a shell whose fork
    // fails exits.
    b.sh("(i=0; while [ $i -lt 300 ]; do sleep 1000 & i=$((i+1)); done) 2>/dev/null; exec sleep 1000");
    b.edit(|c| c["linux"]["resources"]["pids"] = json!({"limit": 20}));
    let id = rt.id("pids");
    start(&rt, &b, &id);
    let d = dir(&rt, &id, "pids");
    assert_eq!(read(d.join("pids.max")), "20");
    eventually("forks to hit the limit", || {
        read(d.join("pids.events")).contains("max ") && read(d.join("pids.events")) != "max 0"
    });
    let current: u64 = read(d.join("pids.current")).parse().unwrap();
    assert!(current <= 20, "{current} tasks");
    let pids: Vec<i32> = serde_json::from_str(&rt.ok(&["ps", "--format", "json", &id])).unwrap();
    assert!(pids.len() <= 20 && pids.len() > 1, "{pids:?}");
    let paths = recorded(&rt, &id);
    rt.ok(&["delete", "--force", &id]);
    assert_removed(&paths);
    eventually("the container's processes to be gone", || {
        pids.iter()
            .all(|p| capsa_runtime::procfs::stat(*p).is_none_or(|s| s.state == 'Z'))
    });
}

/// A whole-disk block device of this host as (major, minor).
fn block_device() -> Option<(u64, u64)> {
    let mut found = None;
    for e in std::fs::read_dir("/sys/dev/block").ok()?.flatten() {
        let name = e.file_name().into_string().ok()?;
        let (maj, min) = name.split_once(':')?;
        let dev = (maj.parse().ok()?, min.parse().ok()?);
        if e.path().join("partition").exists() {
            continue;
        }
        let target = std::fs::read_link(e.path()).ok()?;
        let virtual_dev = target.to_string_lossy().contains("/virtual/");
        if !virtual_dev {
            return Some(dev);
        }
        found.get_or_insert(dev);
    }
    found
}

#[test]
fn block_io_weight_and_throttles_are_applied() {
    require_root!();
    if version_of("blkio").is_none() {
        require_controller!("io");
    }
    let Some((major, minor)) = block_device() else {
        eprintln!("SKIPPED: no block device in /sys/dev/block");
        return;
    };
    let rt = Runtime::new();
    let mut b = sleeper();
    b.edit(|c| {
        c["linux"]["resources"]["blockIO"] = json!({
            "weight": 300,
            "throttleReadBpsDevice": [{"major": major, "minor": minor, "rate": 1048576}],
            "throttleWriteIOPSDevice": [{"major": major, "minor": minor, "rate": 77}]
        });
    });
    let id = rt.id("blkio");
    start(&rt, &b, &id);
    if has_v1("blkio") {
        let d = dir(&rt, &id, "blkio");
        let weight = if d.join("blkio.weight").exists() {
            read(d.join("blkio.weight"))
        } else {
            read(d.join("blkio.bfq.weight"))
        };
        assert!(weight.ends_with("300"), "{weight}");
        assert_eq!(
            read(d.join("blkio.throttle.read_bps_device")),
            format!("{major}:{minor} 1048576")
        );
        assert_eq!(
            read(d.join("blkio.throttle.write_iops_device")),
            format!("{major}:{minor} 77")
        );
        return;
    }
    let d = dir(&rt, &id, "io");
    // BFQ's own weight (the blkio scale) where it is loaded, else io.weight
    // (runc's conversion of 300: 1 + (300 - 10) * 9999 / 990).
    let weight = if d.join("io.bfq.weight").exists() {
        read(d.join("io.bfq.weight"))
    } else {
        read(d.join("io.weight"))
    };
    let want = if d.join("io.bfq.weight").exists() {
        "default 300"
    } else {
        "default 2930"
    };
    assert_eq!(weight.lines().next(), Some(want), "{weight}");
    assert_eq!(
        read(d.join("io.max")),
        format!("{major}:{minor} rbps=1048576 wbps=max riops=max wiops=77")
    );
}

#[test]
fn devices_are_denied_unless_allowed() {
    require_root!();
    // The v1 devices controller, else an eBPF filter on the cgroup2 one.
    if !has_v1("devices") && Layout::detect().unwrap().mode() == Some(Mode::V1) {
        eprintln!("SKIPPED: neither a v1 devices hierarchy nor cgroup2 on this host");
        return;
    }
    use nix::sys::stat::SFlag;
    let rt = Runtime::new();
    let script = "if true < /testdev/loop0; then echo loop-read; else echo loop-denied; fi; \
                  if true >> /testdev/loop0; then echo loop-write; else echo loop-nowrite; fi; \
                  if true > /testdev/null; then echo null-ok; fi";
    // The default config denies everything but the standard devices.
    let mut b = Bundle::busybox();
    mknod(&b, "loop0", SFlag::S_IFBLK, 7, 0);
    mknod(&b, "null", SFlag::S_IFCHR, 1, 3);
    b.sh(script);
    let id = rt.id("devdeny");
    let out = rt.run_ok(&b, &id);
    assert_eq!(out, "loop-denied\nloop-nowrite\nnull-ok\n");
    // A rule allows reading it; writing stays denied.
    b.edit(|c| {
        c["linux"]["resources"]["devices"] = json!([
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "b", "major": 7, "minor": 0, "access": "r"}
        ]);
    });
    let id = rt.id("devallow");
    let out = rt.run_ok(&b, &id);
    assert_eq!(out, "loop-read\nloop-nowrite\nnull-ok\n");
    // The v1 list the kernel holds (cgroup v2 has no list to read: the
    // filter is a BPF program).
    if !has_v1("devices") {
        return;
    }
    let id = rt.id("devlist");
    b.args(&["sleep", "1000"]);
    start(&rt, &b, &id);
    let list = read(dir(&rt, &id, "devices").join("devices.list"));
    assert!(list.lines().any(|l| l == "b 7:0 r"), "{list}");
    assert!(list.lines().any(|l| l == "c 1:3 rwm"), "{list}");
    assert!(!list.contains("a *:*"), "{list}");
}

#[test]
fn bad_device_rules_name_the_field() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.edit(|c| {
        c["linux"]["resources"]["devices"] = json!([
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "access": "rwx"}
        ]);
    });
    let id = rt.id("devbad");
    let (code, _, err) = rt.run(&b, &id);
    assert_ne!(code, 0);
    assert!(err.contains("linux.resources.devices[1].access"), "{err}");
}

/// The caller's own cgroup in hierarchy `name` (from /proc/self/cgroup).
fn own(name: &str) -> PathBuf {
    let text = read("/proc/self/cgroup");
    capsa_runtime::cgroups::parse_proc_cgroup(&text)
        .remove(name)
        .unwrap_or_else(|| PathBuf::from("/"))
}

fn mount_point(name: &str) -> PathBuf {
    capsa_runtime::cgroups::host_hierarchies()
        .unwrap()
        .into_iter()
        .find(|h| h.name == name)
        .unwrap()
        .mount_point
}

/// The hierarchy the placement tests look at: memory's where it is v1,
/// else the unified one.
fn placement_hierarchy() -> &'static str {
    if has_v1("memory") { "memory" } else { UNIFIED }
}

/// Where a relative cgroupsPath goes in hierarchy `name`: beneath our own
/// cgroup, on pure v2 hosts beneath its parent (ours holds us, so it
/// cannot pass controllers on).
fn relative_base(name: &str) -> PathBuf {
    let own = own(name);
    if Layout::detect().unwrap().mode() == Some(Mode::V2) {
        own.parent().unwrap_or(&own).to_path_buf()
    } else {
        own
    }
}

/// The cgroup of hierarchy `name` in /proc/PID/cgroup text.
fn proc_cgroup_of(text: &str, name: &str) -> PathBuf {
    capsa_runtime::cgroups::parse_proc_cgroup(text)
        .remove(name)
        .unwrap_or_else(|| panic!("no {name} line in {text}"))
}

#[test]
fn relative_and_absolute_cgroups_paths() {
    require_root!();
    let h = placement_hierarchy();
    let rt = Runtime::new();
    let mut b = sleeper();
    // Relative: beneath our own cgroup (its parent on v2), in every hierarchy.
    let rel = unique("capsa-rel");
    b.edit(|c| c["linux"]["cgroupsPath"] = json!(format!("{rel}/ctr")));
    // A limit in the innermost: on v2 the directories made on the way pass
    // their controllers on.
    let pids = version_of("pids").is_some();
    if pids {
        b.edit(|c| c["linux"]["resources"]["pids"] = json!({"limit": 17}));
    }
    let id = rt.id("rel");
    let pid = start(&rt, &b, &id);
    let base = relative_base(h);
    let want = mount_point(h)
        .join(base.strip_prefix("/").unwrap())
        .join(&rel)
        .join("ctr");
    let paths = recorded(&rt, &id);
    assert_eq!(paths.dirs[h], want);
    if pids {
        assert_eq!(read(dir(&rt, &id, "pids").join("pids.max")), "17");
    }
    assert_eq!(
        paths
            .created
            .iter()
            .filter(|d| d.starts_with(mount_point(h)))
            .count(),
        2
    );
    let proc_cgroup = read(format!("/proc/{pid}/cgroup"));
    assert_eq!(
        proc_cgroup_of(&proc_cgroup, h),
        base.join(&rel).join("ctr"),
        "{proc_cgroup}"
    );
    rt.ok(&["delete", "--force", &id]);
    assert_removed(&paths);

    // Absolute: from the hierarchy's root.
    let abs = format!("/{}/ctr", unique("capsa-abs"));
    b.edit(|c| c["linux"]["cgroupsPath"] = json!(abs));
    let id = rt.id("abs");
    let pid = start(&rt, &b, &id);
    let paths = recorded(&rt, &id);
    assert_eq!(paths.dirs[h], mount_point(h).join(&abs[1..]));
    let proc_cgroup = read(format!("/proc/{pid}/cgroup"));
    assert_eq!(
        proc_cgroup_of(&proc_cgroup, h),
        PathBuf::from(&abs),
        "{proc_cgroup}"
    );
    rt.ok(&["delete", "--force", &id]);
    assert_removed(&paths);
}

#[test]
fn the_default_cgroup_is_named_after_the_id() {
    require_root!();
    let rt = Runtime::new();
    let b = sleeper();
    let id = rt.id("dflt");
    start(&rt, &b, &id);
    let paths = recorded(&rt, &id);
    let layout = Layout::detect().unwrap();
    assert_eq!(paths.mode, layout.mode());
    for (name, d) in &paths.dirs {
        let h = layout.hierarchies.iter().find(|h| &h.name == name).unwrap();
        let base = relative_base(name);
        assert_eq!(
            *d,
            h.mount_point
                .join(base.strip_prefix("/").unwrap())
                .join(&id),
            "{name}"
        );
    }
    if layout.mode() != Some(Mode::V2) {
        // Every v1 hierarchy (name=systemd too) and, on hybrid hosts, the unified one.
        assert_eq!(paths.dirs.len(), layout.hierarchies.len());
    }
}

#[test]
fn failed_creates_leave_no_cgroup() {
    require_root!();
    let rt = Runtime::new();
    // Fails in the container's init, after the cgroups were made.
    let mut b = Bundle::busybox();
    b.args(&["/no/such/program"]);
    let id = rt.id("failexe");
    let (ok, _, err) = rt.detached(&["create", "--bundle", &b.path_str(), &id]);
    assert!(!ok, "{err}");
    // Fails while applying a resource: the error names the field.
    let mut b = Bundle::busybox();
    b.edit(|c| c["linux"]["resources"]["memory"] = json!({"swappiness": 200}));
    let id2 = rt.id("failres");
    let (ok, _, err) = rt.detached(&["create", "--bundle", &b.path_str(), &id2]);
    assert!(!ok);
    assert!(err.contains("linux.resources.memory.swappiness"), "{err}");
    let layout = Layout::detect().unwrap();
    for id in [&id, &id2] {
        let paths = layout.place(None, id).unwrap();
        for d in paths.dirs.values() {
            assert!(!d.exists(), "{} is left behind", d.display());
        }
    }
}

#[test]
fn an_existing_cgroup_is_refused_and_left_alone() {
    require_root!();
    let rt = Runtime::new();
    let b = sleeper();
    let id = rt.id("first");
    let pid = start(&rt, &b, &id);
    // A second container aimed at the first one's cgroups, from another root.
    let rt2 = Runtime::new();
    let mut b2 = sleeper();
    b2.edit(|c| c["linux"]["cgroupsPath"] = json!(id));
    let id2 = rt2.id("second");
    let (ok, _, err) = rt2.detached(&["create", "--bundle", &b2.path_str(), &id2]);
    assert!(!ok);
    assert!(err.contains("already exists"), "{err}");
    // The first container and its cgroups are untouched.
    assert_eq!(rt.status(&id), "running");
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    for d in recorded(&rt, &id).dirs.values() {
        assert!(d.exists(), "{}", d.display());
    }
}

/// Reads the counter file the container writes.
fn counter(b: &Bundle) -> u64 {
    std::fs::read_to_string(b.rootfs().join("tmp/count"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn pause_stops_every_process_and_resume_restarts_them() {
    require_root!();
    let rt = Runtime::new();
    let mut b = busybox();
    b.edit(|c| c["root"]["readonly"] = json!(false));
    // The counting loop runs in a child of the init process.
    b.sh("(i=0; while :; do i=$((i+1)); echo $i > /tmp/count.new; mv /tmp/count.new /tmp/count; done) & wait");
    let id = rt.id("pause");
    start(&rt, &b, &id);
    eventually("the counter to start", || counter(&b) > 0);
    rt.ok(&["pause", &id]);
    assert_eq!(rt.status(&id), "paused");
    let frozen = counter(&b);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(counter(&b), frozen, "the counter advanced while paused");
    assert!(
        rt.fails(&["pause", &id])
            .contains("only a running container")
    );
    rt.ok(&["resume", &id]);
    assert_eq!(rt.status(&id), "running");
    eventually("the counter to advance again", || counter(&b) > frozen);
    // A paused container can still be deleted by force.
    rt.ok(&["pause", &id]);
    let paths = recorded(&rt, &id);
    rt.ok(&["delete", "--force", &id]);
    assert_removed(&paths);
}

#[test]
fn update_changes_live_values() {
    require_root!();
    require_controller!("memory", "cpu", "pids");
    let rt = Runtime::new();
    let mut b = sleeper();
    b.edit(|c| {
        c["linux"]["resources"]["memory"] = json!({"limit": 64 << 20});
        c["linux"]["resources"]["cpu"] = json!({"shares": 512});
    });
    let id = rt.id("upd");
    start(&rt, &b, &id);
    let mem = dir(&rt, &id, "memory");
    let cpu = cg(&rt, &id, "cpu");
    let pids = dir(&rt, &id, "pids");
    let (limit, soft) = match cg(&rt, &id, "memory") {
        Cg::V1(_) => ("memory.limit_in_bytes", "memory.soft_limit_in_bytes"),
        Cg::V2(_) => ("memory.max", "memory.low"),
    };
    // Quota, period and shares: v1's files, or v2's cpu.max and the
    // weight runc converts the shares to (12 for 300, 39 for 1000).
    let cpu_state = || match &cpu {
        Cg::V1(d) => format!(
            "{} {} shares {}",
            read(d.join("cpu.cfs_quota_us")),
            read(d.join("cpu.cfs_period_us")),
            read(d.join("cpu.shares"))
        ),
        Cg::V2(d) => format!(
            "{} weight {}",
            read(d.join("cpu.max")),
            read(d.join("cpu.weight"))
        ),
    };
    let want_cpu = |shares: u32, weight: u32| match &cpu {
        Cg::V1(_) => format!("25000 50000 shares {shares}"),
        Cg::V2(_) => format!("25000 50000 weight {weight}"),
    };
    rt.ok(&[
        "update",
        "--memory",
        "256m",
        "--memory-reservation",
        "128m",
        "--cpu-quota",
        "25000",
        "--cpu-period",
        "50000",
        "--cpu-shares",
        "300",
        "--pids-limit",
        "42",
        &id,
    ]);
    assert_eq!(read(mem.join(limit)), (256u64 << 20).to_string());
    assert_eq!(read(mem.join(soft)), (128u64 << 20).to_string());
    assert_eq!(cpu_state(), want_cpu(300, 12));
    assert_eq!(read(pids.join("pids.max")), "42");
    // A resources JSON on standard input; what it leaves out stays.
    let mut child = rt
        .cmd(&["update", "--resources", "-", &id])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(br#"{"memory": {"limit": 100000000}, "cpu": {"shares": 1000}}"#)
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Both versions round the limit down to a page.
    assert_eq!(read(mem.join(limit)), "99999744");
    assert_eq!(cpu_state(), want_cpu(1000, 39));
    // The saved config records the merged resources.
    let saved: Value =
        serde_json::from_str(&read(rt.root().join(&id).join("config.json"))).unwrap();
    let r = &saved["linux"]["resources"];
    assert_eq!(r["memory"]["limit"], 100000000);
    assert_eq!(r["memory"]["reservation"], 128 << 20);
    assert_eq!(r["cpu"]["quota"], 25000);
    assert_eq!(r["pids"]["limit"], 42);
    // The stats see the new limit.
    let ev: Value = serde_json::from_str(&rt.ok(&["events", "--stats", &id])).unwrap();
    assert_eq!(ev["data"]["memory"]["usage"]["limit"], 99999744);
    assert_eq!(ev["data"]["pids"]["limit"], 42);
    // Refusals.
    let err = rt.fails(&["update", "--kernel-memory", "10m", &id]);
    assert!(err.contains("--kernel-memory"), "{err}");
    let err = rt.fails(&["update", "--memory", "12x", &id]);
    assert!(err.contains("--memory") && err.contains("12x"), "{err}");
    let err = rt.fails(&["update", &id]);
    assert!(err.contains("nothing to update"), "{err}");
    if let Cg::V1(_) = cpu {
        // The kernel clamps v1 shares to 2 (v2 weights go down to 1).
        let err = rt.fails(&["update", "--cpu-shares", "1", &id]);
        assert!(err.contains("linux.resources.cpu.shares"), "{err}");
    }
    rt.ok(&["kill", &id, "KILL"]);
    rt.wait_status(&id, "stopped");
    let err = rt.fails(&["update", "--memory", "1g", &id]);
    assert!(err.contains("stopped"), "{err}");
}

#[test]
fn ps_lists_the_container_processes() {
    require_root!();
    let rt = Runtime::new();
    let mut b = busybox();
    b.sh("sleep 1001 & sleep 1002 & wait");
    let id = rt.id("ps");
    let pid = start(&rt, &b, &id);
    eventually("three processes", || {
        let v: Vec<i32> = serde_json::from_str(&rt.ok(&["ps", "-f", "json", &id])).unwrap();
        v.len() == 3
    });
    let v: Vec<i32> = serde_json::from_str(&rt.ok(&["ps", "--format", "json", &id])).unwrap();
    assert!(v.contains(&pid), "{v:?} lacks {pid}");
    let table = rt.ok(&["ps", &id]);
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].contains("PID") && lines[0].contains("CMD"),
        "{table}"
    );
    assert_eq!(lines.len(), 4, "{table}");
    assert!(
        table.contains("sleep 1001") && table.contains("sleep 1002"),
        "{table}"
    );
    // ps options after the id go to ps.
    let table = rt.ok(&["ps", &id, "-o", "pid,comm"]);
    assert_eq!(table.lines().count(), 4, "{table}");
    assert!(
        table
            .lines()
            .skip(1)
            .all(|l| l.contains("sleep") || l.contains("sh")),
        "{table}"
    );
    let err = rt.fails(&["ps", &id, "-o", "comm"]);
    assert!(err.contains("PID"), "{err}");
}

#[test]
fn events_stats_have_runc_shape() {
    require_root!();
    let rt = Runtime::new();
    let mut b = sleeper();
    b.edit(|c| {
        c["linux"]["resources"]["memory"] = json!({"limit": 50 << 20});
        c["linux"]["resources"]["pids"] = json!({"limit": 9});
    });
    let id = rt.id("ev");
    start(&rt, &b, &id);
    let out = rt.ok(&["events", "--stats", &id]);
    assert_eq!(out.lines().count(), 1, "{out}");
    let ev: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(ev["type"], "stats");
    assert_eq!(ev["id"], id.as_str());
    let d = &ev["data"];
    assert!(d["cpu"]["usage"]["total"].as_u64().unwrap() > 0, "{d}");
    for k in ["kernel", "user"] {
        assert!(d["cpu"]["usage"][k].is_u64(), "{k}: {d}");
    }
    for k in ["periods", "throttledPeriods", "throttledTime"] {
        assert!(d["cpu"]["throttling"][k].is_u64(), "{k}: {d}");
    }
    let usage = &d["memory"]["usage"];
    assert!(usage["usage"].as_u64().unwrap() > 0, "{d}");
    assert!(
        usage["max"].as_u64().unwrap() >= usage["usage"].as_u64().unwrap(),
        "{d}"
    );
    assert!(usage["failcnt"].is_u64(), "{d}");
    assert!(usage["limit"].as_u64().unwrap() <= 50 << 20, "{d}");
    assert!(d["memory"]["swap"]["usage"].is_u64(), "{d}");
    assert!(!d["memory"]["raw"].as_object().unwrap().is_empty(), "{d}");
    assert_eq!(d["pids"]["current"], 1);
    assert_eq!(d["pids"]["limit"], 9);
    if has_v1("cpuacct") {
        let percpu = d["cpu"]["usage"]["percpu"].as_array().unwrap();
        assert_eq!(
            percpu.len(),
            std::thread::available_parallelism().unwrap().get()
        );
    }
    rt.ok(&["kill", &id, "KILL"]);
    rt.wait_status(&id, "stopped");
    assert!(
        rt.fails(&["events", "--stats", &id])
            .contains("not running")
    );
}

#[test]
fn events_stream_stats_and_oom_until_the_container_stops() {
    require_root!();
    require_controller!("memory");
    use nix::sys::stat::SFlag;
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    mknod(&b, "zero", SFlag::S_IFCHR, 1, 5);
    mknod(&b, "null", SFlag::S_IFCHR, 1, 3);
    // Sleep long enough for a stats event, then overrun the limit.
    b.sh("sleep 0.5; dd if=/testdev/zero of=/testdev/null bs=64M count=1");
    b.edit(|c| {
        c["linux"]["resources"]["memory"] = json!({"limit": 16 << 20, "swap": 16 << 20});
    });
    let id = rt.id("oom");
    rt.create(&b, &id);
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("events");
    let mut events = rt
        .cmd(&["events", "--interval", "100ms", &id])
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    rt.ok(&["start", &id]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = events.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = events.kill();
            panic!("events did not end when the container stopped");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success());
    let text = read(&out_path);
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        lines
            .iter()
            .any(|e| e["type"] == "stats" && e["data"]["memory"].is_object()),
        "{text}"
    );
    assert!(
        lines
            .iter()
            .any(|e| e["type"] == "oom" && e["id"] == id.as_str()),
        "{text}"
    );
    // The kernel's own count of the kill, in the cgroup kept until delete.
    let kills = match cg(&rt, &id, "memory") {
        Cg::V1(d) => read(d.join("memory.oom_control")),
        Cg::V2(d) => read(d.join("memory.events")),
    };
    let count = kills
        .lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|n| n.parse::<u64>().ok());
    assert!(count.is_some_and(|n| n >= 1), "{kills}");
}

#[test]
fn exec_and_delete_work_when_the_container_nests_its_cgroups() {
    require_root!();
    // What systemd or a container engine inside a container does on
    // cgroup v2: move its processes into a child cgroup and enable
    // controllers for the children. The container's own cgroup then holds
    // no process and may take none ("no internal processes").
    if Layout::detect().unwrap().mode() != Some(Mode::V2) || version_of("pids").is_none() {
        eprintln!("SKIPPED: not a pure cgroup v2 host delegating pids");
        return;
    }
    let rt = Runtime::new();
    let mut b = busybox();
    b.edit(|c| {
        for m in c["mounts"].as_array_mut().unwrap() {
            if m["type"] == "cgroup" {
                m["options"] = json!(["nosuid", "noexec", "nodev", "relatime", "rw"]);
            }
        }
    });
    b.sh(
        "mkdir /sys/fs/cgroup/init && echo 1 > /sys/fs/cgroup/init/cgroup.procs && \
          echo +pids > /sys/fs/cgroup/cgroup.subtree_control && exec sleep 1000",
    );
    let id = rt.id("nest");
    start(&rt, &b, &id);
    let d = dir(&rt, &id, "pids");
    eventually("the container to nest its cgroup", || {
        std::fs::read_to_string(d.join("cgroup.subtree_control")).is_ok_and(|c| c.contains("pids"))
    });
    // exec joins the init's cgroup, as runc does when the container's own
    // cannot take a process.
    let out = rt.ok(&["exec", &id, "cat", "/proc/self/cgroup"]);
    assert_eq!(out, "0::/init\n");
    // Also into the paused container, where it joins once set up.
    rt.ok(&["pause", &id]);
    let tmp = tempfile::tempdir().unwrap();
    let pid_file = tmp.path().join("pid");
    let pf = pid_file.display().to_string();
    let (ok, _, err) = rt.detached(&[
        "exec",
        "-d",
        "--ignore-paused",
        "--pid-file",
        &pf,
        &id,
        "sleep",
        "1000",
    ]);
    assert!(ok, "{err}");
    rt.ok(&["resume", &id]);
    let pid = read(&pid_file);
    assert!(
        read(format!("/proc/{pid}/cgroup")).ends_with(&format!("/{id}/init")),
        "{}",
        read(format!("/proc/{pid}/cgroup"))
    );
    let paths = recorded(&rt, &id);
    rt.ok(&["delete", "--force", &id]);
    assert_removed(&paths);
}

#[test]
fn kill_all_signals_every_process() {
    require_root!();
    let rt = Runtime::new();
    let mut b = busybox();
    // Without a pid namespace, the children outlive the init.
    b.edit(|c| {
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "pid");
    });
    b.sh("sleep 1001 & sleep 1002 & exec sleep 1003");
    let id = rt.id("killall");
    start(&rt, &b, &id);
    let mut pids: Vec<i32> = Vec::new();
    eventually("three processes", || {
        pids = serde_json::from_str(&rt.ok(&["ps", "-f", "json", &id])).unwrap();
        pids.len() == 3
    });
    rt.ok(&["kill", "--all", &id, "KILL"]);
    eventually("every process to die", || {
        pids.iter()
            .all(|p| capsa_runtime::procfs::stat(*p).is_none_or(|s| s.state == 'Z'))
    });
    rt.wait_status(&id, "stopped");
    let paths = recorded(&rt, &id);
    rt.ok(&["delete", &id]);
    assert_removed(&paths);
}

/// Free 2 MiB huge pages of the host.
fn free_huge_pages() -> u64 {
    read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("HugePages_Free:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn hugetlb_limits_are_applied_or_refused_clearly() {
    require_root!();
    let rt = Runtime::new();
    let mut b = busybox();
    b.edit(|c| {
        c["linux"]["resources"]["hugepageLimits"] = json!([{"pageSize": "2MB", "limit": 2097152}]);
    });
    let Some(version) = version_of("hugetlb") else {
        // No hugetlb controller: refused, naming the field and the controller.
        let id = rt.id("huge");
        let (code, _, err) = rt.run(&b, &id);
        assert_ne!(code, 0);
        assert!(err.contains("linux.resources.hugepageLimits"), "{err}");
        assert!(err.contains("hugetlb"), "{err}");
        return;
    };
    // One page allowed: a second one, in a hugetlbfs of the container's
    // own, is refused.
    b.edit(|c| {
        c["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/hp", "type": "hugetlbfs", "source": "hugetlbfs",
            "options": ["pagesize=2M"]
        }));
    });
    b.sh("fallocate -l 2097152 /hp/a && echo one; \
          fallocate -l 2097152 /hp/b && echo two || echo refused; exec sleep 1000");
    let enforced = free_huge_pages() >= 2;
    let id = rt.id("huge");
    start(&rt, &b, &id);
    let d = dir(&rt, &id, "hugetlb");
    let (limit, events, current) = if version == 1 {
        (
            "hugetlb.2MB.limit_in_bytes",
            "hugetlb.2MB.failcnt",
            "hugetlb.2MB.usage_in_bytes",
        )
    } else {
        (
            "hugetlb.2MB.max",
            "hugetlb.2MB.events",
            "hugetlb.2MB.current",
        )
    };
    assert_eq!(read(d.join(limit)), "2097152");
    if !enforced {
        eprintln!("SKIPPED (enforcement): fewer than 2 free huge pages on this host");
        return;
    }
    eventually("the second page to be refused", || {
        let n = read(d.join(events));
        let n = n.strip_prefix("max ").unwrap_or(&n);
        n.parse::<u64>().is_ok_and(|n| n >= 1)
    });
    assert_eq!(read(d.join(current)), "2097152");
}

#[test]
fn unified_and_network_resources_are_refused_where_unavailable() {
    require_root!();
    let layout = Layout::detect().unwrap();
    let rt = Runtime::new();
    if layout.mode() != Some(Mode::V2) {
        let mut b = Bundle::busybox();
        b.edit(|c| c["linux"]["resources"]["unified"] = json!({"memory.high": "1000000"}));
        let (code, _, err) = rt.run(&b, &rt.id("unified"));
        assert_ne!(code, 0);
        assert!(err.contains("linux.resources.unified"), "{err}");
    }
    if !has_v1("net_cls") {
        let mut b = Bundle::busybox();
        b.edit(|c| c["linux"]["resources"]["network"] = json!({"classID": 1048577}));
        let (code, _, err) = rt.run(&b, &rt.id("netcls"));
        assert_ne!(code, 0);
        assert!(err.contains("linux.resources.network.classID"), "{err}");
    }
}

// ---- cgroup v2, for real on a cgroup2 hierarchy ----

/// A layout with the host's cgroup2 hierarchy only: a pure v2 host as far
/// as the manager can tell.
fn v2_layout() -> Option<Layout> {
    let full = Layout::detect().ok()?;
    let unified: Vec<Hierarchy> = full
        .hierarchies
        .into_iter()
        .filter(|h| h.version == 2)
        .collect();
    if unified.is_empty() {
        return None;
    }
    Some(Layout {
        hierarchies: unified,
        own: full.own,
    })
}

/// A shell waiting for a line on standard input before running `script`.
fn waiting_shell(script: &str) -> std::process::Child {
    Command::new("/bin/sh")
        .args(["-c", &format!("read line; {script}")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// A manager whose cgroups (and the processes in them) go when it is
/// dropped, also when a test fails half-way.
struct Scoped(Manager);

impl std::ops::Deref for Scoped {
    type Target = Manager;
    fn deref(&self) -> &Manager {
        &self.0
    }
}

impl std::ops::DerefMut for Scoped {
    fn deref_mut(&mut self) -> &mut Manager {
        &mut self.0
    }
}

impl Drop for Scoped {
    fn drop(&mut self) {
        let _ = self.0.set_frozen(false);
        let deadline = Instant::now() + Duration::from_secs(5);
        while let Ok(pids) = self.0.pids() {
            if pids.is_empty() || Instant::now() > deadline {
                break;
            }
            for p in pids {
                let _ = nix::sys::signal::kill(p, nix::sys::signal::Signal::SIGKILL);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = self.0.destroy();
    }
}

fn v2_manager(layout: &Layout, path: &str) -> Scoped {
    let m = Manager::with_layout(layout, Some(Path::new(path)), "unused").unwrap();
    assert_eq!(m.paths().mode, Some(Mode::V2));
    Scoped(m)
}

#[test]
fn v2_device_filter_runs_in_the_kernel() {
    require_root!();
    let Some(layout) = v2_layout() else {
        eprintln!("SKIPPED: no cgroup2 hierarchy is mounted");
        return;
    };
    if !Path::new("/dev/loop0").exists() || !Path::new("/dev/null").exists() {
        eprintln!("SKIPPED: /dev/loop0 or /dev/null is missing");
        return;
    }
    let path = format!("/{}/leaf", unique("capsa-v2dev"));
    let mut m = v2_manager(&layout, &path);
    let r: LinuxResources = serde_json::from_value(json!({
        "devices": [{"allow": false, "access": "rwm"},
                    {"allow": true, "type": "b", "major": 7, "minor": 0, "access": "w"}]
    }))
    .unwrap();
    let created = m.create(Some(&r));
    let leaf = m.paths().unified().unwrap().to_path_buf();
    if let Err(e) = created {
        m.destroy().unwrap();
        panic!("create: {e}");
    }
    assert!(m.clone_into_fd().is_some());
    assert!(
        Manager::from_paths(m.paths().clone())
            .clone_into_fd()
            .is_some()
    );
    let mut child = waiting_shell(
        "if true < /dev/loop0; then echo read-ok; else echo read-denied; fi; \
         if true > /dev/null; then echo null-ok; else echo null-denied; fi",
    );
    m.add_process(nix::unistd::Pid::from_raw(child.id() as i32))
        .unwrap();
    assert_eq!(
        m.pids().unwrap(),
        [nix::unistd::Pid::from_raw(child.id() as i32)]
    );
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    // Replacing the filter (update) takes effect too: now reading is allowed.
    let r2: LinuxResources = serde_json::from_value(json!({
        "devices": [{"allow": true, "type": "b", "major": 7, "minor": 0, "access": "r"}]
    }))
    .unwrap();
    m.apply(&r2).unwrap();
    let mut child =
        waiting_shell("if true < /dev/loop0; then echo read-ok; else echo read-denied; fi");
    m.add_process(nix::unistd::Pid::from_raw(child.id() as i32))
        .unwrap();
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let out2 = child.wait_with_output().unwrap();
    m.destroy().unwrap();
    assert!(!leaf.exists() && !leaf.parent().unwrap().exists());
    assert_eq!(text, "read-denied\nnull-ok\n");
    assert_eq!(String::from_utf8_lossy(&out2.stdout), "read-ok\n");
}

#[test]
fn v2_freeze_stops_processes() {
    require_root!();
    let Some(layout) = v2_layout() else {
        eprintln!("SKIPPED: no cgroup2 hierarchy is mounted");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let file = tmp.path().join("count");
    let path = format!("/{}", unique("capsa-v2freeze"));
    let mut m = v2_manager(&layout, &path);
    m.create(None).unwrap();
    let mut child = waiting_shell(&format!(
        "i=0; while :; do i=$((i+1)); echo $i > {f}.new; mv {f}.new {f}; done",
        f = file.display()
    ));
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    m.add_process(pid).unwrap();
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let count = || -> u64 {
        std::fs::read_to_string(&file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    };
    eventually("the counter to start", || count() > 0);
    assert!(!m.is_frozen().unwrap());
    m.set_frozen(true).unwrap();
    assert!(m.is_frozen().unwrap());
    let frozen = count();
    std::thread::sleep(Duration::from_millis(300));
    let still = count();
    m.set_frozen(false).unwrap();
    assert!(!m.is_frozen().unwrap());
    eventually("the counter to advance", || count() > frozen);
    let _ = child.kill();
    let _ = child.wait();
    m.destroy().unwrap();
    assert_eq!(still, frozen, "the counter advanced while frozen");
}

#[test]
fn v2_undelegated_controllers_are_named() {
    require_root!();
    let Some(layout) = v2_layout() else {
        eprintln!("SKIPPED: no cgroup2 hierarchy is mounted");
        return;
    };
    let root = &layout.hierarchies[0].mount_point;
    let offered = read(root.join("cgroup.controllers"));
    let enabled = read(root.join("cgroup.subtree_control"));
    let Some(missing) = ["pids", "memory", "hugetlb", "io", "cpu"]
        .into_iter()
        .find(|c| !enabled.split_whitespace().any(|e| e == *c))
    else {
        eprintln!("SKIPPED: the cgroup2 root delegates every controller");
        return;
    };
    let r: LinuxResources = serde_json::from_value(match missing {
        "pids" => json!({"pids": {"limit": 10}}),
        "memory" => json!({"memory": {"limit": 10485760}}),
        "hugetlb" => json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 2097152}]}),
        "io" => json!({"blockIO": {"weight": 100}}),
        _ => json!({"cpu": {"shares": 100}}),
    })
    .unwrap();
    let path = format!("/{}/leaf", unique("capsa-v2deleg"));
    let mut m = v2_manager(&layout, &path);
    let err = m.create(Some(&r)).unwrap_err().to_string();
    let paths = m.paths().clone();
    m.destroy().unwrap();
    assert_removed(&paths);
    assert!(err.contains(missing), "{err}");
    let file = if offered.split_whitespace().any(|c| c == missing) {
        "cgroup.subtree_control"
    } else {
        "cgroup.controllers"
    };
    assert!(
        err.contains(&root.join(file).display().to_string()),
        "{err}"
    );
}

#[test]
fn v2_unified_entries_are_written() {
    require_root!();
    let Some(layout) = v2_layout() else {
        eprintln!("SKIPPED: no cgroup2 hierarchy is mounted");
        return;
    };
    let path = format!("/{}", unique("capsa-v2unified"));
    let mut m = v2_manager(&layout, &path);
    let r: LinuxResources = serde_json::from_value(json!({
        "unified": {"cgroup.max.descendants": "5", "cgroup.max.depth": "2"}
    }))
    .unwrap();
    let created = m.create(Some(&r));
    let dir = m.paths().unified().unwrap().to_path_buf();
    let (descendants, depth) = (
        std::fs::read_to_string(dir.join("cgroup.max.descendants")),
        std::fs::read_to_string(dir.join("cgroup.max.depth")),
    );
    // An entry of a controller the cgroup does not have is refused.
    let bad: LinuxResources =
        serde_json::from_value(json!({"unified": {"rdma.max": "mlx4_0 hca_handle=1"}})).unwrap();
    let err = m.apply(&bad);
    m.destroy().unwrap();
    created.unwrap();
    assert_eq!(descendants.unwrap().trim(), "5");
    assert_eq!(depth.unwrap().trim(), "2");
    let err = err.unwrap_err().to_string();
    assert!(err.contains("linux.resources.unified.rdma.max"), "{err}");
    assert!(err.contains("rdma"), "{err}");
}

/// Measures the cgroup part of `run`: layout, placement, mkdir (with the
/// default device rules), moving a process in, and removal. Prints the
/// numbers; timing is never asserted. Moving a task into a v1 cgroup first
/// waits for an RCU grace period when no migration happened lately (the
/// kernel's cgroup_threadgroup_rwsem); the second, warm move shows the cost
/// of the writes themselves.
#[test]
fn cgroup_stage_cost() {
    require_root!();
    const N: u32 = 20;
    let none = LinuxResources::default();
    let mut sums = [Duration::ZERO; 5];
    let mut dirs = 0;
    for _ in 0..N {
        let mut child = Command::new("sleep").arg("100").spawn().unwrap();
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        let id = unique("capsa-cost");
        // Let any earlier migration's grace period run out, as between two `run`s.
        std::thread::sleep(Duration::from_millis(50));
        let t0 = Instant::now();
        let layout = Layout::detect().unwrap();
        let t1 = Instant::now();
        let mut m = Manager::with_layout(&layout, None, &id).unwrap();
        m.create(Some(&none)).unwrap();
        let t2 = Instant::now();
        m.add_process(pid).unwrap();
        let t3 = Instant::now();
        m.add_process(pid).unwrap();
        let t4 = Instant::now();
        child.kill().unwrap();
        child.wait().unwrap();
        let t5 = Instant::now();
        m.destroy().unwrap();
        let t6 = Instant::now();
        dirs = m.paths().dirs.len();
        for (s, d) in sums
            .iter_mut()
            .zip([t1 - t0, t2 - t1, t3 - t2, t4 - t3, t6 - t5])
        {
            *s += d;
        }
    }
    let us = |d: Duration| d.as_micros() as f64 / f64::from(N);
    let [layout, create, cold, warm, rmdir] = sums.map(us);
    eprintln!(
        "cgroup stage over {dirs} hierarchies, mean of {N}: layout {layout:.0} us, \
         mkdir+apply {create:.0} us, add_process {cold:.0} us (warm: {warm:.0} us), \
         rmdir {rmdir:.0} us; without the grace period {:.0} us",
        layout + create + warm + rmdir
    );
}
