//! More flags of `run`, each checked for its effect: `--memory-swap` and
//! `--oom-kill-disable` in the memory cgroup (and a container left under
//! OOM instead of killed; on cgroup v2, which cannot do that, Docker's
//! warning), the blkio throttles in the blkio (v2: io) cgroup, the
//! `always` and `unless-stopped` restart policies (restart after the
//! process dies, back-off, `stop`/`kill` end them, `start` begins afresh),
//! and bind-mount propagation seen in mountinfo on both sides.

mod common;

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use common::engine::*;

/// The content of `file` in the container's cgroup directory of the v1
/// hierarchy `controller` (None where there is none).
fn v1_file(id: &str, controller: &str, file: &str) -> Option<String> {
    cgroup_file(id, controller, file, "").filter(|_| !cgroup_v2_host())
}

/// Whether the host's memory cgroup is v1 with swap accounting.
fn memsw_accounted() -> bool {
    Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists()
}

#[test]
fn memory_swap_limits_reach_the_cgroup() {
    require_root!();
    let v2 = cgroup_v2_host();
    if !memsw_accounted() && !v2 {
        eprintln!("SKIPPED: no v1 memory cgroup with swap accounting (memory.memsw.*)");
        return;
    }
    let limit = |id: &str| cgroup_file(id, "memory", "memory.limit_in_bytes", "memory.max");
    // v1 counts memory plus swap; v2's memory.swap.max is the swap alone.
    let swap = |id: &str| {
        cgroup_file(
            id,
            "memory",
            "memory.memsw.limit_in_bytes",
            "memory.swap.max",
        )
    };
    let e = Engine::new();
    let id = e.run_d(&[
        "-m",
        "32m",
        "--memory-swap",
        "96m",
        "busybox",
        "sleep",
        "3600",
    ]);
    assert_eq!(limit(&id).unwrap(), (32u64 << 20).to_string());
    let want = if v2 { 64u64 << 20 } else { 96 << 20 };
    assert_eq!(swap(&id).unwrap(), want.to_string());
    assert_eq!(
        e.field(&id, "{{.HostConfig.MemorySwap}}"),
        (96u64 << 20).to_string()
    );
    // -1: unlimited swap (the cgroup's maximum).
    let unlimited = e.run_d(&[
        "-m",
        "32m",
        "--memory-swap",
        "-1",
        "busybox",
        "sleep",
        "3600",
    ]);
    let max = swap(&unlimited).unwrap();
    assert!(
        max == "max" || max.parse::<u64>().is_ok_and(|m| m > 1 << 62),
        "{max}"
    );
    assert_eq!(e.field(&unlimited, "{{.HostConfig.MemorySwap}}"), "-1");
    // Equal to the memory limit: no swap at all, so a process that needs
    // more memory than the limit is OOM killed even where the host swaps.
    e.run_d(&[
        "--name",
        "noswap",
        "-m",
        "16m",
        "--memory-swap",
        "16m",
        "busybox",
        "sh",
        "-c",
        "x=$(head -c 40000000 /dev/zero | tr '\\0' a); echo survived",
    ]);
    assert_eq!(e.ok(&["wait", "noswap"]), "137\n");
    assert_eq!(e.field("noswap", "{{.State.OOMKilled}}"), "true");
    assert!(!e.ok(&["logs", "noswap"]).contains("survived"));
    // Docker's checks.
    let err = e.fails_with(&["run", "--memory-swap", "64m", "busybox", "true"], 125);
    assert!(err.contains("always set the Memory limit"), "{err}");
    let err = e.fails_with(
        &[
            "run",
            "-m",
            "32m",
            "--memory-swap",
            "16m",
            "busybox",
            "true",
        ],
        125,
    );
    assert!(err.contains("larger than memory limit"), "{err}");
    assert_eq!(e.ids().len(), 3);
}

#[test]
fn oom_kill_disable_leaves_the_container_under_oom() {
    require_root!();
    let v2 = cgroup_v2_host();
    if !v2 && !Path::new("/sys/fs/cgroup/memory/memory.oom_control").exists() {
        eprintln!("SKIPPED: no v1 memory cgroup (memory.oom_control)");
        return;
    }
    let e = Engine::new();
    let out = e.run(&[
        "run",
        "-d",
        "--name",
        "stuck",
        "-m",
        "16m",
        "--memory-swap",
        "16m",
        "--oom-kill-disable",
        "busybox",
        "sh",
        "-c",
        "x=$(head -c 40000000 /dev/zero | tr '\\0' a); echo survived",
    ]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{err}");
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if v2 {
        // cgroup v2 cannot turn the OOM killer off: Docker warns and drops
        // the flag, and the container is OOM killed.
        assert!(
            err.contains(
                "WARNING: Your kernel does not support OomKillDisable. OomKillDisable discarded."
            ),
            "{err}"
        );
        assert_ne!(e.field("stuck", "{{.HostConfig.OomKillDisable}}"), "true");
        assert_eq!(e.ok(&["wait", "stuck"]), "137\n");
        assert_eq!(e.field("stuck", "{{.State.OOMKilled}}"), "true");
        // --memory-swappiness likewise.
        let out = e.run(&[
            "run",
            "--rm",
            "--memory-swappiness",
            "10",
            "busybox",
            "true",
        ]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{err}");
        assert!(
            err.contains("WARNING: Your kernel does not support memory swappiness capabilities"),
            "{err}"
        );
        return;
    }
    assert_eq!(e.field("stuck", "{{.HostConfig.OomKillDisable}}"), "true");
    let control = || v1_file(&id, "memory", "memory.oom_control").unwrap_or_default();
    assert!(control().contains("oom_kill_disable 1"), "{}", control());
    // The kernel does not kill it: its tasks wait at the limit.
    e.wait_until(60, "the container to be under OOM", || {
        control().contains("under_oom 1")
    });
    assert_eq!(e.status("stuck"), "running");
    assert!(control().contains("oom_kill 0"), "{}", control());
    // It still dies when killed.
    e.ok(&["kill", "stuck"]);
    assert_eq!(e.ok(&["wait", "stuck"]), "137\n");
    assert!(!e.ok(&["logs", "stuck"]).contains("survived"));
    e.ok(&["rm", "stuck"]);
    e.assert_clean(&[id]);
}

/// A whole block device of the host (the disk holding `/` if it has one):
/// its /dev path and major:minor.
fn host_disk() -> Option<(PathBuf, String)> {
    use std::os::unix::fs::MetadataExt;
    let dev = std::fs::metadata("/").ok()?.dev();
    let (major, minor) = (nix::sys::stat::major(dev), nix::sys::stat::minor(dev));
    let mut candidates = vec![PathBuf::from(format!("/sys/dev/block/{major}:{minor}"))];
    let mut others: Vec<PathBuf> = std::fs::read_dir("/sys/block")
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            !n.starts_with("loop") && !n.starts_with("ram")
        })
        .collect();
    others.sort();
    candidates.extend(others);
    for c in candidates {
        let Ok(mut sys) = std::fs::canonicalize(&c) else {
            continue;
        };
        if sys.join("partition").exists() {
            sys.pop();
        }
        let uevent = std::fs::read_to_string(sys.join("uevent")).unwrap_or_default();
        let Some(name) = uevent.lines().find_map(|l| l.strip_prefix("DEVNAME=")) else {
            continue;
        };
        let Ok(numbers) = std::fs::read_to_string(sys.join("dev")) else {
            continue;
        };
        let node = Path::new("/dev").join(name);
        use std::os::unix::fs::FileTypeExt;
        if std::fs::metadata(&node).is_ok_and(|m| m.file_type().is_block_device()) {
            return Some((node, numbers.trim().to_string()));
        }
    }
    None
}

#[test]
fn blkio_throttles_reach_the_cgroup() {
    require_root!();
    let v2 = cgroup_v2_host()
        && std::fs::read_to_string("/sys/fs/cgroup/cgroup.subtree_control")
            .is_ok_and(|c| c.split_whitespace().any(|c| c == "io"));
    if !Path::new("/sys/fs/cgroup/blkio/blkio.throttle.read_bps_device").exists() && !v2 {
        eprintln!("SKIPPED: no v1 blkio cgroup with throttling, nor a cgroup v2 io controller");
        return;
    }
    let Some((disk, numbers)) = host_disk() else {
        eprintln!("SKIPPED: no whole block device found in /sys/block");
        return;
    };
    let e = Engine::new();
    let d = disk.to_str().unwrap();
    let id = e.run_d(&[
        "--device-read-bps",
        &format!("{d}:1mb"),
        "--device-write-bps",
        &format!("{d}:2MB"),
        "--device-read-iops",
        &format!("{d}:100"),
        "--device-write-iops",
        &format!("{d}:200"),
        "--blkio-weight",
        "300",
        "busybox",
        "sleep",
        "3600",
    ]);
    if v2 {
        // One io.max line per device; io.weight on the 1-10000 scale
        // (runc's conversion of 300: 1 + (300 - 10) * 9999 / 990), or BFQ's.
        assert_eq!(
            cgroup_file(&id, "blkio", "", "io.max").unwrap(),
            format!("{numbers} rbps=1048576 wbps=2097152 riops=100 wiops=200")
        );
        let weight = cgroup_file(&id, "blkio", "", "io.bfq.weight")
            .or_else(|| cgroup_file(&id, "blkio", "", "io.weight"))
            .unwrap();
        let first = weight.lines().next().unwrap_or_default();
        assert!(
            first == "default 2930" || first == "default 300",
            "{weight}"
        );
    } else {
        for (file, value) in [
            ("read_bps_device", 1u64 << 20),
            ("write_bps_device", 2 << 20),
            ("read_iops_device", 100),
            ("write_iops_device", 200),
        ] {
            assert_eq!(
                v1_file(&id, "blkio", &format!("blkio.throttle.{file}")).unwrap(),
                format!("{numbers} {value}"),
                "{file}"
            );
        }
        let weight = v1_file(&id, "blkio", "blkio.weight")
            .or_else(|| v1_file(&id, "blkio", "blkio.bfq.weight"))
            .unwrap();
        assert!(weight.split_whitespace().any(|w| w == "300"), "{weight}");
    }
    assert_eq!(
        e.field(&id, "{{json .HostConfig.BlkioDeviceReadBps}}"),
        format!("[{{\"Path\":\"{d}\",\"Rate\":1048576}}]")
    );
    assert_eq!(
        e.field(&id, "{{json .HostConfig.BlkioDeviceWriteIOps}}"),
        format!("[{{\"Path\":\"{d}\",\"Rate\":200}}]")
    );
    assert_eq!(e.field(&id, "{{.HostConfig.BlkioWeight}}"), "300");
    // Only block devices, and Docker's rate syntax.
    let err = e.fails_with(
        &[
            "run",
            "--device-read-bps",
            "/dev/null:1mb",
            "busybox",
            "true",
        ],
        125,
    );
    assert!(err.contains("/dev/null is not a block device"), "{err}");
    let err = e.fails_with(
        &[
            "run",
            "--device-write-iops",
            &format!("{d}:fast"),
            "busybox",
            "true",
        ],
        125,
    );
    assert!(err.contains("invalid rate for device"), "{err}");
    let err = e.fails_with(&["run", "--blkio-weight", "5", "busybox", "true"], 125);
    assert!(
        err.contains("Range of blkio weight is from 10 to 1000"),
        "{err}"
    );
    assert_eq!(e.ids(), [id]);
}

/// Nanoseconds since the epoch.
fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

/// Waits until no process (monitor, restart back-off) of container `id`
/// is left.
fn wait_unwatched(e: &Engine, id: &str) {
    e.wait_until(60, "the container's monitor to end", || {
        processes_matching(|c| c.contains(id)).is_empty()
    });
}

/// Kills the container's process from the host, as a crash would.
fn crash(e: &Engine, name: &str) -> i32 {
    let pid = host_pid(e, name);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL).unwrap();
    pid
}

/// Waits until the container runs again after a crash of `old_pid`.
fn wait_restarted(e: &Engine, name: &str, old_pid: i32, count: &str) {
    e.wait_until(60, "a restart", || {
        e.field(name, "{{.State.Status}} {{.RestartCount}}") == format!("running {count}")
            && host_pid(e, name) != old_pid
    });
}

#[test]
fn restart_always_restarts_with_back_off_until_stopped() {
    require_root!();
    let e = Engine::new();
    let ctl = e.root.scratch("ctl");
    std::fs::create_dir_all(&ctl).unwrap();
    std::fs::write(ctl.join("crash"), "").unwrap();
    let t0 = now_ns();
    let v = format!("{}:/ctl", ctl.display());
    let id = e.run_d(&[
        "--name",
        "al",
        "--restart",
        "always",
        "-v",
        &v,
        "busybox",
        "sh",
        "-c",
        "echo run >> /ctl/log; [ -e /ctl/crash ] && exit 1; exec sleep 3600",
    ]);
    assert_eq!(
        e.field("al", "{{.HostConfig.RestartPolicy.Name}}"),
        "always"
    );
    // A failure restarts it, again and again (always has no maximum).
    e.wait_until(60, "three restarts", || {
        e.field("al", "{{.RestartCount}}").parse::<i32>().unwrap() >= 3
    });
    std::fs::remove_file(ctl.join("crash")).unwrap();
    e.wait_until(60, "the container to stay up", || {
        e.status("al") == "running" && !ctl.join("crash").exists()
    });
    // Docker's back-off: 100 ms before the first restart, doubling.
    let until = format!("{}", now_ns() / 1_000_000_000 + 1);
    let events = e.ok(&[
        "events",
        "--since",
        &format!("{}.{:09}", t0 / 1_000_000_000, t0 % 1_000_000_000),
        "--until",
        &until,
        "--filter",
        "container=al",
        "--format",
        "{{.Action}} {{.TimeNano}}",
    ]);
    let list: Vec<(&str, i64)> = events
        .lines()
        .map(|l| {
            let (a, t) = l.split_once(' ').unwrap();
            (a, t.parse().unwrap())
        })
        .collect();
    let gaps: Vec<i64> = list
        .windows(2)
        .filter(|w| w[0].0 == "die" && w[1].0 == "start")
        .map(|w| w[1].1 - w[0].1)
        .collect();
    assert!(gaps.len() >= 3, "{events}");
    for (k, gap) in gaps.iter().take(3).enumerate() {
        let backoff = 100_000_000i64 << k;
        assert!(
            *gap >= backoff,
            "restart {k} after {gap} ns < {backoff}: {events}"
        );
    }
    // A crash of the running process restarts it too.
    let count = e.field("al", "{{.RestartCount}}");
    let next = (count.parse::<i32>().unwrap() + 1).to_string();
    let pid = crash(&e, "al");
    wait_restarted(&e, "al", pid, &next);
    // stop ends the policy: it stays exited.
    e.ok(&["stop", "-t", "1", "al"]);
    wait_unwatched(&e, &id);
    assert_eq!(
        e.field("al", "{{.State.Status}} {{.RestartCount}}"),
        format!("exited {next}")
    );
    // start begins afresh (RestartCount back to 0), and the policy holds.
    e.ok(&["start", "al"]);
    assert_eq!(
        e.field("al", "{{.State.Status}} {{.RestartCount}}"),
        "running 0"
    );
    let pid = crash(&e, "al");
    wait_restarted(&e, "al", pid, "1");
    // kill ends it too, as in Docker.
    e.ok(&["kill", "al"]);
    wait_unwatched(&e, &id);
    assert_eq!(
        e.field("al", "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 137"
    );
    let runs = std::fs::read_to_string(ctl.join("log")).unwrap();
    assert!(runs.lines().count() >= 6, "{runs}");
}

#[test]
fn restart_unless_stopped_restarts_until_stopped() {
    require_root!();
    let e = Engine::new();
    let ctl = e.root.scratch("ctl");
    std::fs::create_dir_all(&ctl).unwrap();
    let v = format!("{}:/ctl", ctl.display());
    let id = e.run_d(&[
        "--name",
        "us",
        "--restart",
        "unless-stopped",
        "-v",
        &v,
        "busybox",
        "sh",
        "-c",
        "while [ ! -e /ctl/exit ]; do sleep 0.05; done; rm /ctl/exit",
    ]);
    assert_eq!(
        e.field("us", "{{.HostConfig.RestartPolicy.Name}}"),
        "unless-stopped"
    );
    let pid = crash(&e, "us");
    wait_restarted(&e, "us", pid, "1");
    // A clean exit restarts it too.
    let pid = host_pid(&e, "us");
    std::fs::write(ctl.join("exit"), "").unwrap();
    wait_restarted(&e, "us", pid, "2");
    e.ok(&["stop", "-t", "1", "us"]);
    wait_unwatched(&e, &id);
    assert_eq!(
        e.field("us", "{{.State.Status}} {{.RestartCount}}"),
        "exited 2"
    );
    e.ok(&["start", "us"]);
    assert_eq!(
        e.field("us", "{{.State.Status}} {{.RestartCount}}"),
        "running 0"
    );
    let pid = crash(&e, "us");
    wait_restarted(&e, "us", pid, "1");
    // rm -f of a container between restarts leaves nothing, its monitor
    // sleeping out the back-off included.
    let looping = e.run_d(&["--restart", "always", "busybox", "sh", "-c", "exit 1"]);
    e.wait_until(60, "a few restarts", || {
        e.field(&looping, "{{.RestartCount}}")
            .parse::<i32>()
            .unwrap()
            >= 3
            && e.status(&looping) == "restarting"
    });
    e.ok(&["rm", "-f", &looping]);
    e.assert_clean(&[looping]);
    // Docker's checks of the policy.
    for (policy, want) in [
        (
            "always:3",
            "maximum retry count can only be used with 'on-failure'",
        ),
        (
            "unless-stopped:1",
            "maximum retry count can only be used with 'on-failure'",
        ),
        ("sometimes", "invalid restart policy"),
    ] {
        let err = e.fails_with(&["run", "--restart", policy, "busybox", "true"], 125);
        assert!(err.contains(want), "{policy}: {err}");
    }
    let err = e.fails_with(
        &["run", "--rm", "--restart", "always", "busybox", "true"],
        125,
    );
    assert!(err.contains("Conflicting options"), "{err}");
    assert_eq!(e.ids(), [id]);
}

/// A small tmpfs mounted at `dir` (made if missing) on the host.
fn tmpfs(dir: &Path) -> nix::Result<()> {
    std::fs::create_dir_all(dir).unwrap();
    nix::mount::mount(
        Some("tmpfs"),
        dir,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        Some("size=1m"),
    )
}

/// A tmpfs at `dir` made a shared mount (its own peer group), or None
/// where mounting is not allowed.
fn shared_tmpfs(dir: &Path) -> Option<()> {
    tmpfs(dir).ok()?;
    nix::mount::mount(
        None::<&str>,
        dir,
        None::<&str>,
        nix::mount::MsFlags::MS_SHARED,
        None::<&str>,
    )
    .ok()
}

/// The mountinfo line of `target` in the container `name` (empty if none).
fn mountinfo_of(e: &Engine, name: &str, target: &str) -> String {
    e.ok(&["exec", name, "cat", "/proc/self/mountinfo"])
        .lines()
        .find(|l| l.split(' ').nth(4) == Some(target))
        .unwrap_or_default()
        .to_string()
}

/// Whether `path` is a mount point on the host.
fn host_mounted(path: &Path) -> bool {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(path.to_str().unwrap()))
}

#[test]
fn bind_propagation_reaches_the_container_and_back() {
    require_root!();
    let e = Engine::new();
    let src = e.root.scratch("prop");
    if shared_tmpfs(&src).is_none() {
        eprintln!("SKIPPED: cannot mount a tmpfs here");
        return;
    }
    let s = src.display().to_string();
    let run = |name: &str, how: &[&str]| {
        let mut a = vec!["--name", name, "--cap-add", "SYS_ADMIN"];
        a.extend_from_slice(how);
        a.extend(["busybox", "sleep", "3600"]);
        e.run_d(&a)
    };
    run("rshared", &["-v", &format!("{s}:/dst:rshared")]);
    run(
        "rslave",
        &[
            "--mount",
            &format!("type=bind,source={s},target=/dst,bind-propagation=rslave"),
        ],
    );
    run("private", &["-v", &format!("{s}:/dst")]);
    run(
        "rprivate",
        &[
            "--mount",
            &format!("type=bind,src={s},dst=/dst,bind-propagation=rprivate"),
        ],
    );
    for (name, want) in [
        ("rshared", "rshared"),
        ("rslave", "rslave"),
        ("private", "rprivate"),
        ("rprivate", "rprivate"),
    ] {
        assert_eq!(e.field(name, "{{(index .Mounts 0).Propagation}}"), want);
    }
    // In mountinfo: shared is a peer, slave has a master, private neither.
    let tags = |name: &str| -> Vec<String> {
        let l = mountinfo_of(&e, name, "/dst");
        assert!(!l.is_empty(), "{name}: no /dst");
        l.split(' ')
            .skip(6)
            .take_while(|f| *f != "-")
            .map(|f| f.split(':').next().unwrap().to_string())
            .collect()
    };
    assert_eq!(tags("rshared"), ["shared"]);
    assert_eq!(tags("rslave"), ["master"]);
    assert!(tags("private").is_empty());
    assert!(tags("rprivate").is_empty());

    // A mount made on the host under the source reaches shared and slave
    // binds only.
    let from_host = src.join("from-host");
    tmpfs(&from_host).unwrap();
    for (name, sees) in [
        ("rshared", true),
        ("rslave", true),
        ("private", false),
        ("rprivate", false),
    ] {
        assert_eq!(
            !mountinfo_of(&e, name, "/dst/from-host").is_empty(),
            sees,
            "{name}"
        );
    }
    // A mount made in the container reaches the host from a shared bind
    // only.
    for name in ["rshared", "rslave", "rprivate"] {
        e.ok(&[
            "exec",
            name,
            "sh",
            "-c",
            &format!("mkdir -p /dst/from-{name} && mount -t tmpfs t /dst/from-{name}"),
        ]);
    }
    assert!(host_mounted(&src.join("from-rshared")));
    assert!(!host_mounted(&src.join("from-rslave")));
    assert!(!host_mounted(&src.join("from-rprivate")));

    // As Docker: a shared bind needs a shared source mount, a slave one a
    // shared or slave one; nothing is left of the refused containers.
    let private = e.root.scratch("private-src");
    std::fs::create_dir_all(&private).unwrap();
    let p = private.display().to_string();
    let ids = e.ids();
    for (how, want) in [
        (format!("{p}:/dst:rshared"), "is not a shared mount"),
        (format!("{p}:/dst:shared"), "is not a shared mount"),
        (format!("{p}:/dst:rslave"), "is not a shared or slave mount"),
        (format!("{p}:/dst:slave"), "is not a shared or slave mount"),
    ] {
        let err = e.fails_with(&["run", "-v", &how, "busybox", "true"], 125);
        assert!(err.contains(want) && err.contains(&p), "{how}: {err}");
    }
    let err = e.fails_with(
        &[
            "run",
            "--mount",
            &format!("type=bind,src={p},dst=/d,bind-propagation=rshared"),
            "busybox",
            "true",
        ],
        125,
    );
    assert!(err.contains("is not a shared mount"), "{err}");
    assert_eq!(e.ids(), ids);
}
