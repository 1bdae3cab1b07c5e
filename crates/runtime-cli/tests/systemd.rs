//! `--systemd-cgroup` tests, against a fake systemd on a private bus
//! (`fake_systemd`): the container's init in a transient scope, resources
//! as unit properties and in the scope's cgroup files, `kill --all`,
//! `pause`/`resume`, `update`, `delete` and `run` stopping the unit,
//! failures, and the refusal where there is no systemd.

mod common;
mod fake_systemd;

use std::path::{Path, PathBuf};

use capsa_runtime::cgroups::{CgroupPaths, Mode};
use common::{Bundle, Runtime, read, unique};
use fake_systemd::FakeSystemd;
use serde_json::{Value, json};
use zbus::zvariant::OwnedValue;

/// A runtime whose commands use `--systemd-cgroup` and the fake's bus.
fn runtime(fake: &FakeSystemd) -> Runtime {
    Runtime::with(
        &["--systemd-cgroup"],
        &[("DBUS_SYSTEM_BUS_ADDRESS", Some(fake.address()))],
    )
}

fn sleeper() -> Bundle {
    let mut b = Bundle::busybox();
    b.args(&["sleep", "1000"]);
    b
}

/// A running container; returns its init's pid.
fn start(rt: &Runtime, b: &Bundle, id: &str) -> i32 {
    rt.create(b, id);
    rt.ok(&["start", id]);
    rt.state(id)["pid"].as_i64().unwrap() as i32
}

fn state_json(rt: &Runtime, id: &str) -> Value {
    let text = std::fs::read_to_string(rt.root().join(id).join("state.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn recorded(rt: &Runtime, id: &str) -> CgroupPaths {
    serde_json::from_value(state_json(rt, id)["cgroup"].clone()).unwrap()
}

/// The scope's cgroup as the fake makes it.
fn scope_cgroup(fake: &FakeSystemd, slice_path: &str, unit: &str) -> PathBuf {
    fake.root.join(slice_path).join(unit)
}

/// Every hierarchy line of /proc/PID/cgroup names `cgroup`.
fn assert_in_cgroup(pid: i32, cgroup: &Path) {
    let text = read(format!("/proc/{pid}/cgroup"));
    for line in text.lines() {
        let path = line.splitn(3, ':').nth(2).unwrap();
        assert_eq!(Path::new(path), cgroup, "{text}");
    }
}

/// No directory of the scope's cgroup is left in any hierarchy.
fn assert_no_cgroup_left(fake: &FakeSystemd, cgroup: &Path) {
    for h in &fake.hierarchies {
        let d = FakeSystemd::dir(h, cgroup);
        assert!(!d.exists(), "{} is left behind", d.display());
    }
}

fn string(v: Option<&OwnedValue>) -> String {
    String::try_from(v.expect("property missing").clone()).unwrap()
}

fn number(v: Option<&OwnedValue>) -> u64 {
    u64::try_from(v.expect("property missing").clone()).unwrap()
}

fn boolean(v: Option<&OwnedValue>) -> bool {
    bool::try_from(v.expect("property missing").clone()).unwrap()
}

/// Whether process `pid` is gone (or a zombie), waiting up to 5 s.
fn gone(pid: i32) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if stat.is_empty() || stat.contains(") Z ") {
            return true;
        }
        if std::time::Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

fn v2_host(fake: &FakeSystemd) -> bool {
    fake.hierarchies.iter().all(|h| h.version == 2)
}

#[test]
fn the_container_runs_in_its_scope_and_delete_stops_it() {
    require_root!();
    let Some(fake) = FakeSystemd::start(&unique("scope")) else {
        return;
    };
    let rt = runtime(&fake);
    let mut b = sleeper();
    b.edit(|c| {
        c["annotations"] = json!({
            "org.systemd.property.TimeoutStopSec": "5",
            "org.systemd.property.CollectMode": "'inactive-or-failed'"
        })
    });
    let id = rt.id("sd");
    let pid = start(&rt, &b, &id);
    let unit = format!("capsa-{id}.scope");
    let cgroup = scope_cgroup(&fake, "system.slice", &unit);
    assert_in_cgroup(pid, &cgroup);

    let starts = fake.calls_of("StartTransientUnit", &unit);
    assert_eq!(starts.len(), 1, "{:?}", fake.calls());
    let p = &starts[0];
    assert_eq!(string(p.prop("Slice")), "system.slice");
    assert!(string(p.prop("Description")).contains(&id));
    assert_eq!(
        Vec::<u32>::try_from(p.prop("PIDs").unwrap().clone()).unwrap(),
        [pid as u32]
    );
    assert!(boolean(p.prop("Delegate")));
    assert!(!boolean(p.prop("DefaultDependencies")));
    assert!(boolean(p.prop("MemoryAccounting")));
    // The default device rules, as systemd's allow-list.
    assert_eq!(string(p.prop("DevicePolicy")), "strict");
    // Properties given as annotations, seconds turned into microseconds.
    assert_eq!(number(p.prop("TimeoutStopUSec")), 5_000_000);
    assert_eq!(string(p.prop("CollectMode")), "inactive-or-failed");

    let state = state_json(&rt, &id);
    assert_eq!(state["systemdCgroup"], json!(true), "{state}");
    assert_eq!(state["cgroup"]["systemd_unit"], json!(unit), "{state}");
    let paths = recorded(&rt, &id);
    assert!(!paths.dirs.is_empty());
    for d in paths.dirs.values() {
        assert!(
            d.ends_with(Path::new("system.slice").join(&unit)),
            "{paths:?}"
        );
    }

    rt.ok(&["delete", "--force", &id]);
    assert_eq!(fake.calls_of("StopUnit", &unit).len(), 1);
    assert!(!fake.calls_of("ResetFailedUnit", &unit).is_empty());
    assert!(!fake.has_unit(&unit));
    assert_no_cgroup_left(&fake, &cgroup);
    assert!(gone(pid), "process {pid} outlived delete");
    assert!(!rt.root().join(&id).exists());
}

#[test]
fn resources_become_unit_properties_and_cgroup_files() {
    require_root!();
    let Some(fake) = FakeSystemd::start(&unique("res")) else {
        return;
    };
    let rt = runtime(&fake);
    let mut b = sleeper();
    b.edit(|c| {
        c["linux"]["resources"] = json!({
            "memory": {"limit": 64 << 20},
            "cpu": {"shares": 512, "quota": 20000, "period": 100000, "cpus": "0"},
            "pids": {"limit": 32},
            "devices": [{"allow": false, "access": "rwm"}]
        });
        // No cgroup namespace: the container's /sys/fs/cgroup shows the
        // scope's directories of the host.
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "cgroup");
    });
    let id = rt.id("res");
    let pid = start(&rt, &b, &id);
    let unit = format!("capsa-{id}.scope");
    let p = &fake.calls_of("StartTransientUnit", &unit)[0];
    let v2 = v2_host(&fake);
    let memory = if v2 { "MemoryMax" } else { "MemoryLimit" };
    assert_eq!(number(p.prop(memory)), 64 << 20);
    if v2 {
        assert_eq!(number(p.prop("CPUWeight")), 20);
    } else {
        assert_eq!(number(p.prop("CPUShares")), 512);
    }
    assert_eq!(number(p.prop("CPUQuotaPerSecUSec")), 200_000);
    assert_eq!(number(p.prop("CPUQuotaPeriodUSec")), 100_000);
    assert_eq!(number(p.prop("TasksMax")), 32);
    assert_eq!(
        Vec::<u8>::try_from(p.prop("AllowedCPUs").unwrap().clone()).unwrap(),
        [1]
    );
    let allow = Vec::<(String, String)>::try_from(p.prop("DeviceAllow").unwrap().clone()).unwrap();
    assert!(
        allow.contains(&("/dev/char/1:3".to_string(), "rwm".to_string())),
        "{allow:?}"
    );

    // The scope is delegated: the exact values are in its cgroup files.
    let paths = recorded(&rt, &id);
    if v2 {
        // Every controller the fake's slices pass on (none on hybrid hosts).
        let d = paths.unified().unwrap();
        let enabled = read(d.join("cgroup.controllers"));
        let has = |c: &str| enabled.split_whitespace().any(|e| e == c);
        if has("memory") {
            assert_eq!(read(d.join("memory.max")), (64u64 << 20).to_string());
        }
        if has("cpu") {
            assert_eq!(read(d.join("cpu.max")), "20000 100000");
            assert_eq!(read(d.join("cpu.weight")), "20");
        }
        if has("cpuset") {
            assert_eq!(read(d.join("cpuset.cpus")), "0");
        }
        if has("pids") {
            assert_eq!(read(d.join("pids.max")), "32");
            // The container sees its own (the scope's) cgroup.
            let out = rt.ok(&["exec", &id, "cat", "/sys/fs/cgroup/pids.max"]);
            assert_eq!(out.trim(), "32");
        }
    } else {
        assert_eq!(
            read(paths.v1("memory").unwrap().join("memory.limit_in_bytes")),
            (64u64 << 20).to_string()
        );
        assert_eq!(
            read(paths.v1("cpu").unwrap().join("cpu.cfs_quota_us")),
            "20000"
        );
        assert_eq!(read(paths.v1("pids").unwrap().join("pids.max")), "32");
        // The container sees its own (the scope's) cgroup.
        let out = rt.ok(&["exec", &id, "cat", "/sys/fs/cgroup/pids/pids.max"]);
        assert_eq!(out.trim(), "32");
    }
    let cgroup = scope_cgroup(&fake, "system.slice", &unit);
    assert_in_cgroup(pid, &cgroup);
    // A process exec'd into the container joins the scope too (no cgroup
    // namespace: the paths are the host's).
    let out = rt.ok(&["exec", &id, "cat", "/proc/self/cgroup"]);
    for line in out.lines() {
        assert!(line.ends_with(&*cgroup.to_string_lossy()), "{out}");
    }
    rt.ok(&["delete", "--force", &id]);
    assert_no_cgroup_left(&fake, &cgroup);
}

#[test]
fn kill_all_pause_resume_and_update_work_on_the_scope() {
    require_root!();
    let Some(fake) = FakeSystemd::start(&unique("ops")) else {
        return;
    };
    let rt = runtime(&fake);
    let mut b = sleeper();
    b.edit(|c| c["linux"]["resources"] = json!({"memory": {"limit": 64 << 20}}));
    b.args(&["sh", "-c", "sleep 1001 & exec sleep 1000"]);
    let id = rt.id("ops");
    let pid = start(&rt, &b, &id);
    let unit = format!("capsa-{id}.scope");

    rt.ok(&["pause", &id]);
    assert_eq!(rt.status(&id), "paused");
    let paths = recorded(&rt, &id);
    let freezer = dir_or_unified(&paths, "freezer");
    if let Ok(frozen) = std::fs::read_to_string(freezer.join("freezer.state")) {
        assert_eq!(frozen.trim(), "FROZEN");
    } else {
        assert_eq!(read(freezer.join("cgroup.freeze")), "1");
    }
    rt.ok(&["resume", &id]);
    assert_eq!(rt.status(&id), "running");

    rt.ok(&["update", "--memory", "128M", &id]);
    let set = fake.calls_of("SetUnitProperties", &unit);
    assert_eq!(set.len(), 1, "{:?}", fake.calls());
    let memory = if v2_host(&fake) {
        "MemoryMax"
    } else {
        "MemoryLimit"
    };
    assert_eq!(number(set[0].prop(memory)), 128 << 20);
    let limit = match paths.v1("memory") {
        Some(d) => Some(d.join("memory.limit_in_bytes")),
        None => Some(paths.unified().unwrap().join("memory.max")).filter(|f| f.exists()),
    };
    if let Some(limit) = limit {
        assert_eq!(read(limit), (128u64 << 20).to_string());
    }

    let ps = rt.ok(&["ps", "--format", "json", &id]);
    let pids: Vec<i32> = serde_json::from_str(&ps).unwrap();
    assert_eq!(pids.len(), 2, "{ps}");
    assert!(pids.contains(&pid));

    rt.ok(&["kill", "--all", &id, "KILL"]);
    rt.wait_status(&id, "stopped");
    for p in &pids {
        assert!(gone(*p), "process {p} survived kill --all");
    }
    rt.ok(&["delete", &id]);
    assert_eq!(fake.calls_of("StopUnit", &unit).len(), 1);
    assert_no_cgroup_left(&fake, &scope_cgroup(&fake, "system.slice", &unit));
}

/// The freezer's directory: the v1 freezer hierarchy, else the unified one.
fn dir_or_unified(paths: &CgroupPaths, controller: &str) -> PathBuf {
    match paths.mode {
        Some(Mode::V2) => paths.unified().unwrap().to_path_buf(),
        _ => paths.v1(controller).unwrap().to_path_buf(),
    }
}

#[test]
fn cgroups_path_names_the_slice_and_the_scope() {
    require_root!();
    let Some(fake) = FakeSystemd::start(&unique("path")) else {
        return;
    };
    let rt = runtime(&fake);
    let mut b = sleeper();
    let name = unique("n");
    b.edit(|c| c["linux"]["cgroupsPath"] = json!(format!("capsa-test.slice:pfx:{name}")));
    let id = rt.id("path");
    let pid = start(&rt, &b, &id);
    let unit = format!("pfx-{name}.scope");
    let p = &fake.calls_of("StartTransientUnit", &unit)[0];
    assert_eq!(string(p.prop("Slice")), "capsa-test.slice");
    // a-b.slice lives in a.slice.
    let cgroup = scope_cgroup(&fake, "capsa.slice/capsa-test.slice", &unit);
    assert_in_cgroup(pid, &cgroup);
    rt.ok(&["delete", "--force", &id]);
    assert_no_cgroup_left(&fake, &cgroup);

    b.edit(|c| c["linux"]["cgroupsPath"] = json!("/not/systemd/form"));
    let id = rt.id("badpath");
    let (ok, _, err) = rt.detached(&["create", "--bundle", &b.path_str(), &id]);
    assert!(!ok);
    assert!(
        err.contains("linux.cgroupsPath") && err.contains("slice:prefix:name"),
        "{err}"
    );
    assert!(!rt.root().join(&id).exists());
}

#[test]
fn run_removes_the_unit_when_the_container_exits() {
    require_root!();
    let Some(fake) = FakeSystemd::start(&unique("run")) else {
        return;
    };
    let rt = runtime(&fake);
    let mut b = Bundle::busybox();
    b.args(&["sh", "-c", "cat /proc/self/cgroup; exit 3"]);
    let id = rt.id("run");
    let (code, out, err) = rt.run(&b, &id);
    assert_eq!(code, 3, "{out}{err}");
    let unit = format!("capsa-{id}.scope");
    assert_eq!(fake.calls_of("StartTransientUnit", &unit).len(), 1);
    assert_eq!(fake.calls_of("StopUnit", &unit).len(), 1);
    assert_no_cgroup_left(&fake, &scope_cgroup(&fake, "system.slice", &unit));
    assert!(!rt.root().join(&id).exists());
}

#[test]
fn failures_are_clear_errors_and_leave_nothing() {
    require_root!();
    let Some(fake) = FakeSystemd::start(&unique("fail")) else {
        return;
    };
    let rt = runtime(&fake);
    let b = sleeper();
    let id = rt.id("fail");
    let unit = format!("capsa-{id}.scope");
    fake.fail_next_start("failed");
    let (ok, _, err) = rt.detached(&["create", "--bundle", &b.path_str(), &id]);
    assert!(!ok);
    assert!(err.contains(&unit) && err.contains("\"failed\""), "{err}");
    assert!(!fake.calls_of("ResetFailedUnit", &unit).is_empty());
    assert!(!rt.root().join(&id).exists());
    assert_no_cgroup_left(&fake, &scope_cgroup(&fake, "system.slice", &unit));

    // A set-up that fails once the scope exists stops it again.
    let mut b = Bundle::busybox();
    b.args(&["/no/such/program"]);
    let id = rt.id("initfail");
    let unit = format!("capsa-{id}.scope");
    let (ok, _, err) = rt.detached(&["create", "--bundle", &b.path_str(), &id]);
    assert!(!ok);
    assert!(err.contains("/no/such/program"), "{err}");
    assert_eq!(fake.calls_of("StartTransientUnit", &unit).len(), 1);
    assert_eq!(fake.calls_of("StopUnit", &unit).len(), 1);
    assert!(!fake.has_unit(&unit));
    assert!(!rt.root().join(&id).exists());
    assert_no_cgroup_left(&fake, &scope_cgroup(&fake, "system.slice", &unit));
}

#[test]
fn no_bus_is_a_clear_error() {
    require_root!();
    let dir = tempfile::tempdir().unwrap();
    let address = format!("unix:path={}", dir.path().join("none").display());
    let rt = Runtime::with(
        &["--systemd-cgroup"],
        &[("DBUS_SYSTEM_BUS_ADDRESS", Some(&address))],
    );
    let b = sleeper();
    let id = rt.id("nobus");
    let (ok, _, err) = rt.detached(&["create", "--bundle", &b.path_str(), &id]);
    assert!(!ok);
    assert!(
        err.contains("cannot connect to the system bus") && err.contains(&address),
        "{err}"
    );
    assert!(!rt.root().join(&id).exists());
}

#[test]
fn refused_where_systemd_is_absent() {
    require_root!();
    if Path::new("/run/systemd/system").exists() {
        eprintln!("SKIPPED: systemd runs on this host");
        return;
    }
    let rt = Runtime::with(&["--systemd-cgroup"], &[("DBUS_SYSTEM_BUS_ADDRESS", None)]);
    let b = sleeper();
    let id = rt.id("nosd");
    let (ok, _, err) = rt.detached(&["create", "--bundle", &b.path_str(), &id]);
    assert!(!ok);
    assert!(
        err.contains("/run/systemd/system") && err.contains("DBUS_SYSTEM_BUS_ADDRESS"),
        "{err}"
    );
    assert!(!rt.root().join(&id).exists());
    // Without the flag the same bundle runs.
    let plain = Runtime::new();
    let id = plain.id("plain");
    start(&plain, &b, &id);
    plain.ok(&["delete", "--force", &id]);
}
