//! The engine under stress and after crashes: parallel `run -d` and
//! `rm -f` of the same containers, `kill -9` of a command or a monitor at
//! any point of its life, bad input. Whatever happens, the store stays
//! usable: every container is listed once and consistently, the next
//! command repairs what a killed one left, and nothing leaks (mount,
//! cgroup, monitor, process, directory).

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::engine::*;
use common::*;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// A `capsa ARGS` started in the background (output captured).
fn spawn(e: &Engine, args: &[&str]) -> Child {
    e.cmd(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// SIGKILL to a process; false if it had ended already (a zombie
/// counts as ended).
fn kill9(pid: i32) -> bool {
    let lived = !gone(pid);
    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    lived
}

/// The names of the entries of a directory (none if it does not exist).
fn entries(dir: PathBuf) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The in-process runtime's state root of the engine's store.
fn runtime_root(e: &Engine) -> PathBuf {
    run_dir_of(&e.store()).unwrap().join("runtime")
}

/// Every container id something of exists for: rows, container and rootfs
/// directories, runtime state.
fn traces(e: &Engine) -> BTreeSet<String> {
    let mut ids = entries(e.store().join("containers"));
    ids.extend(entries(e.store().join("rootfs")));
    ids.extend(entries(runtime_root(e)));
    ids.extend(e.ids());
    ids
}

/// `ps -a` as (id, name, status) rows, checking that no id or name is
/// listed twice.
fn listing(e: &Engine) -> Vec<(String, String, String)> {
    let out = e.ok(&[
        "ps",
        "-a",
        "--no-trunc",
        "--format",
        "{{.ID}}|{{.Names}}|{{.Status}}",
    ]);
    let rows: Vec<(String, String, String)> = out
        .lines()
        .map(|l| {
            let mut f = l.splitn(3, '|');
            (
                f.next().unwrap().to_string(),
                f.next().unwrap_or_default().to_string(),
                f.next().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let ids: BTreeSet<&String> = rows.iter().map(|r| &r.0).collect();
    let names: BTreeSet<&String> = rows.iter().map(|r| &r.1).collect();
    assert_eq!(ids.len(), rows.len(), "an id listed twice:\n{out}");
    assert_eq!(names.len(), rows.len(), "a name listed twice:\n{out}");
    rows
}

/// Asserts that the store holds nothing of any container: no row, no
/// directory, no rootfs, no runtime state, no process; and that nothing of
/// `ids` is left anywhere (mounts, cgroups, processes).
fn assert_empty(e: &Engine, ids: &BTreeSet<String>) {
    settle(e, "processes of the store to end", || {
        e.own_processes().is_empty()
    });
    assert!(e.ids().is_empty(), "containers left: {:?}", e.ids());
    let ids: Vec<String> = ids.iter().cloned().collect();
    e.assert_clean(&ids);
    assert!(
        entries(e.store().join("containers")).is_empty(),
        "container directories left: {:?}",
        entries(e.store().join("containers"))
    );
    assert!(
        entries(e.store().join("rootfs")).is_empty(),
        "rootfs left: {:?}",
        entries(e.store().join("rootfs"))
    );
    assert!(
        entries(runtime_root(e)).is_empty(),
        "runtime state left: {:?}",
        entries(runtime_root(e))
    );
    // Work in progress of killed commands went when the store was idle.
    assert!(
        entries(e.store().join("tmp")).is_empty(),
        "tmp left: {:?}",
        entries(e.store().join("tmp"))
    );
    assert!(e.mounts().is_empty(), "mounts left: {:?}", e.mounts());
}

/// Waits (bounded) for what killed processes set going to finish.
fn settle(e: &Engine, what: &str, cond: impl FnMut() -> bool) {
    e.wait_until(30, what, cond);
}

/// How long a `run -d` takes here (to spread kill delays over it).
fn run_d_duration(e: &Engine) -> Duration {
    let t = Instant::now();
    let id = e.run_d(&["busybox", "sleep", "3600"]);
    let d = t.elapsed();
    e.ok(&["rm", "-f", &id]);
    d
}

/// Kill delays spread over a process's life: multiples of `full / steps`,
/// until the process has twice ended on its own before its kill (`attempt`
/// says whether it had), at most `3 * steps` tries.
fn kill_delays(full: Duration, steps: u32, mut attempt: impl FnMut(u32, Duration) -> bool) {
    let step = full / steps;
    let mut ended = 0;
    for k in 0..3 * steps {
        if attempt(k, step * k) {
            ended += 1;
            if ended == 2 {
                return;
            }
        }
    }
}

/// Starts `capsa ARGS`, SIGKILLs it after `delay`; true if it had ended
/// on its own by then.
fn kill_command_after(e: &Engine, args: &[&str], delay: Duration) -> bool {
    let mut child = spawn(e, args);
    std::thread::sleep(delay);
    let ended = child.try_wait().unwrap().is_some();
    kill9(child.id() as i32);
    let _ = child.wait();
    ended
}

/// The monitor (or what it exec'd: `capsa __exited`) of a container.
fn monitor_of(id: &str) -> Option<i32> {
    processes_matching(|c| {
        c.contains(id) && (c.starts_with("capsa-monitor") || c.contains("__exited"))
    })
    .first()
    .map(|p| p.0)
}

/// The monitor of a container just started (the launcher execs it once
/// the command has recorded the container).
fn wait_monitor(e: &Engine, id: &str) -> i32 {
    let mut found = None;
    settle(e, "the monitor to start", || {
        found = monitor_of(id);
        found.is_some()
    });
    found.unwrap()
}

/// Starts `run -d` of every name and `rm -f` of every other one at once;
/// returns the ids and the indexes of the names whose removal succeeded
/// (the others came too early: the container did not exist yet).
fn storm_of_runs_and_removals(e: &Engine, names: &[String]) -> (Vec<String>, BTreeSet<usize>) {
    let runs: Vec<Child> = names
        .iter()
        .map(|n| spawn(e, &["run", "-d", "--name", n, "busybox", "sleep", "3600"]))
        .collect();
    // Every other one is removed while it starts.
    let removals: Vec<(usize, Child)> = (0..names.len())
        .step_by(2)
        .map(|i| (i, spawn(e, &["rm", "-f", &names[i]])))
        .collect();
    let mut ids = Vec::new();
    for (i, run) in runs.into_iter().enumerate() {
        let out = run.wait_with_output().unwrap();
        assert!(out.status.success(), "run {}: {}", names[i], stderr(&out));
        ids.push(stdout(&out).trim().to_string());
    }
    let mut removed = BTreeSet::new();
    for (i, rm) in removals {
        let out = rm.wait_with_output().unwrap();
        if out.status.success() {
            assert_eq!(stdout(&out), format!("{}\n", names[i]));
            removed.insert(i);
        } else {
            // Too early: the container did not exist yet.
            assert!(
                stderr(&out).contains("No such container"),
                "rm {}: {}",
                names[i],
                stderr(&out)
            );
        }
    }
    (ids, removed)
}

/// Whether process `pid` has ended (a zombie has).
fn gone(pid: i32) -> bool {
    capsa_runtime::procfs::start_time(pid).is_none()
}

/// SIGKILLs the monitor of a container and waits until it is gone.
fn kill_monitor(e: &Engine, id: &str) {
    let monitor = wait_monitor(e, id);
    kill9(monitor);
    settle(e, "the monitor to die", || gone(monitor));
}

#[test]
fn parallel_runs_and_forced_removals_list_each_container_once() {
    require_root!();
    let e = Engine::new();
    const N: usize = 20;
    let names: Vec<String> = (0..N).map(|i| format!("par{i}")).collect();
    // Listings meanwhile never fail nor show a container twice.
    let storm = AtomicBool::new(true);
    let (ids, removed) = std::thread::scope(|scope| {
        scope.spawn(|| {
            while storm.load(Ordering::Relaxed) {
                listing(&e);
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        let r = storm_of_runs_and_removals(&e, &names);
        storm.store(false, Ordering::Relaxed);
        r
    });
    // The others are listed once each, running.
    let rows = listing(&e);
    let expected: BTreeSet<String> = (0..N)
        .filter(|i| !removed.contains(i))
        .map(|i| ids[i].clone())
        .collect();
    let listed: BTreeSet<String> = rows.iter().map(|r| r.0.clone()).collect();
    assert_eq!(listed, expected);
    for (id, name, status) in &rows {
        let i = ids.iter().position(|x| x == id).unwrap();
        assert_eq!(name, &names[i]);
        assert!(status.starts_with("Up "), "{name}: {status}");
    }
    let removed_ids: Vec<String> = removed.iter().map(|&i| ids[i].clone()).collect();
    e.assert_clean(&removed_ids);
    // The rest goes the same way, in parallel too.
    let removals: Vec<Child> = expected
        .iter()
        .map(|id| spawn(&e, &["rm", "-f", id]))
        .collect();
    for rm in removals {
        let out = rm.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }
    assert_empty(&e, &ids.into_iter().collect());
}

/// The pids of the children of (the main thread of) process `pid`.
fn children_of(pid: i32) -> Vec<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// Checks what `ps -a` says of container `name` after a crash (once what
/// the killed process had set going is over), then removes it if it exists
/// and checks that nothing of it, or of any container, is left.
fn check_and_remove(e: &Engine, name: &str, seen: &mut BTreeSet<String>) {
    seen.extend(traces(e));
    let rows = listing(e);
    let Some((id, _, status)) = rows.iter().find(|r| r.1 == name) else {
        e.fails_with(&["rm", "-f", name], 1);
        assert_empty(e, seen);
        return;
    };
    if status == "Created" {
        // Never started, as far as the store knows: nothing of it runs.
        settle(e, "the launcher to end", || e.own_processes().is_empty());
        assert_eq!(e.status(id), "created");
        assert!(
            Engine::cgroups_of(id).is_empty(),
            "{name} is created but has cgroups"
        );
        // Nothing left of the killed start stands in the way of the next.
        e.ok(&["start", name]);
        assert_eq!(e.status(id), "running");
    } else if status.starts_with("Up ") {
        // Its process lived then; if it has ended since and nothing
        // watches it any more, the next listing says so.
        let pid = host_pid(e, id);
        if gone(pid) {
            settle(e, "the exit to be recorded", || {
                listing(e)
                    .into_iter()
                    .find(|r| r.1 == name)
                    .is_none_or(|r| r.2.starts_with("Exited ("))
            });
        }
    } else {
        assert!(status.starts_with("Exited ("), "{name}: {status}");
        assert!(
            Engine::cgroups_of(id).is_empty(),
            "{name} exited, has cgroups"
        );
    }
    e.ok(&["rm", "-f", name]);
    assert_empty(e, seen);
}

#[test]
fn killed_run_command_at_any_point_leaves_a_store_the_next_command_repairs() {
    require_root!();
    let e = Engine::new();
    let full = run_d_duration(&e);
    let mut seen = BTreeSet::new();
    kill_delays(full, 10, |k, delay| {
        let name = format!("run{k}");
        let args = ["run", "-d", "--name", &name, "busybox", "sleep", "3600"];
        let ended = kill_command_after(&e, &args, delay);
        if let Some((id, _, status)) = listing(&e).iter().find(|r| r.1 == name)
            && status.starts_with("Up ")
        {
            // Recorded running: its monitor took over.
            settle(&e, "its monitor", || monitor_of(id).is_some());
        }
        check_and_remove(&e, &name, &mut seen);
        // The name is free again.
        let id = e.run_d(&["--name", &name, "busybox", "true"]);
        seen.insert(id.clone());
        e.ok(&["rm", "-f", &id]);
        assert_empty(&e, &seen);
        ended
    });
}

#[test]
fn killed_launcher_at_any_point_leaves_a_store_the_next_command_repairs() {
    require_root!();
    let e = Engine::new();
    let full = run_d_duration(&e);
    let mut seen = BTreeSet::new();
    kill_delays(full / 2, 10, |k, delay| {
        let name = format!("launcher{k}");
        let mut run = spawn(
            &e,
            &["run", "-d", "--name", &name, "busybox", "sleep", "3600"],
        );
        // The launcher is the command's child: a fork of it, which becomes
        // the monitor when it execs.
        let mut launcher = None;
        let deadline = Instant::now() + Duration::from_secs(30);
        while launcher.is_none() && Instant::now() < deadline {
            if run.try_wait().unwrap().is_some() {
                break;
            }
            launcher = children_of(run.id() as i32).first().copied();
            std::thread::sleep(Duration::from_micros(200));
        }
        let Some(launcher) = launcher else {
            // Done before it was seen.
            let out = run.wait_with_output().unwrap();
            assert!(out.status.success(), "{name}: {}", stderr(&out));
            check_and_remove(&e, &name, &mut seen);
            return true;
        };
        std::thread::sleep(delay);
        // Ended as a launcher: it is the monitor now.
        let ended = std::fs::read(format!("/proc/{launcher}/cmdline"))
            .is_ok_and(|c| c.starts_with(b"capsa-monitor"));
        kill9(launcher);
        let out = run.wait_with_output().unwrap();
        match out.status.code() {
            // It reported the container started before it died.
            Some(0) => seen.insert(stdout(&out).trim().to_string()),
            Some(125) => !stderr(&out).is_empty(),
            other => panic!("{name}: exit {other:?}: {}", stderr(&out)),
        };
        check_and_remove(&e, &name, &mut seen);
        ended
    });
}

#[test]
fn killed_rm_at_any_point_leaves_a_store_the_next_command_repairs() {
    require_root!();
    let e = Engine::new();
    e.run_d(&["--name", "first", "busybox", "sleep", "3600"]);
    let t = Instant::now();
    e.ok(&["rm", "-f", "first"]);
    let full = t.elapsed();
    let mut seen = BTreeSet::new();
    kill_delays(full, 10, |k, delay| {
        let name = format!("rm{k}");
        seen.insert(e.run_d(&["--name", &name, "busybox", "sleep", "3600"]));
        let ended = kill_command_after(&e, &["rm", "-f", &name], delay);
        check_and_remove(&e, &name, &mut seen);
        ended
    });
}

#[test]
fn containers_keep_running_after_their_monitor_is_killed() {
    require_root!();
    let e = Engine::new();
    let names = ["orphan-a", "orphan-b", "orphan-c"];
    let ids: Vec<String> = names
        .iter()
        .map(|n| e.run_d(&["--name", n, "busybox", "sleep", "3600"]))
        .collect();
    for id in &ids {
        kill_monitor(&e, id);
    }
    for (id, name) in ids.iter().zip(names) {
        let pid = host_pid(&e, id);
        assert!(!gone(pid));
        assert_eq!(e.status(name), "running");
        let ps = e.ok(&[
            "ps",
            "--filter",
            &format!("name={name}"),
            "--format",
            "{{.Status}}",
        ]);
        assert!(ps.starts_with("Up "), "{ps}");
        // Still a container: exec reaches it.
        assert_eq!(e.ok(&["exec", name, "echo", "here"]), "here\n");
    }
    // stop works; nobody saw the exit status, which says so.
    e.ok(&["stop", "-t", "1", "orphan-a"]);
    assert_eq!(e.status("orphan-a"), "exited");
    assert_eq!(e.field("orphan-a", "{{.State.ExitCode}}"), "255");
    let why = e.field("orphan-a", "{{.State.Error}}");
    assert!(why.contains("monitor was killed"), "{why}");
    assert!(Engine::cgroups_of(&ids[0]).is_empty());
    // It starts again with a new monitor, which records its exit.
    e.ok(&["start", "orphan-a"]);
    assert_eq!(e.status("orphan-a"), "running");
    wait_monitor(&e, &ids[0]);
    e.ok(&["kill", "orphan-a"]);
    assert_eq!(e.ok(&["wait", "orphan-a"]), "137\n");
    e.ok(&["rm", "orphan-a"]);
    // kill and wait work too.
    let wait = spawn(&e, &["wait", "orphan-b"]);
    e.ok(&["kill", "orphan-b"]);
    let out = wait.wait_with_output().unwrap();
    assert_eq!(stdout(&out), "255\n", "{}", stderr(&out));
    assert!(Engine::cgroups_of(&ids[1]).is_empty());
    e.ok(&["rm", "orphan-b"]);
    // rm -f works directly.
    e.ok(&["rm", "-f", "orphan-c"]);
    assert_empty(&e, &ids.into_iter().collect());
}

#[test]
fn killed_monitor_while_its_container_exits_leaves_a_consistent_state() {
    require_root!();
    let e = Engine::new();
    // How long the monitor's work at the end takes.
    let first = e.run_d(&["--name", "first", "busybox", "sleep", "3600"]);
    wait_monitor(&e, &first);
    let t = Instant::now();
    kill9(host_pid(&e, "first"));
    e.wait_until(30, "the exit to be recorded", || {
        e.status("first") == "exited"
    });
    let full = t.elapsed();
    e.ok(&["rm", "first"]);
    let mut seen = BTreeSet::new();
    for auto_remove in [false, true] {
        kill_delays(full, 30, |k, delay| {
            let name = format!("exiting{k}-{auto_remove}");
            let mut args = vec!["--name", &name];
            if auto_remove {
                args.push("--rm");
            }
            args.extend(["busybox", "sleep", "3600"]);
            let id = e.run_d(&args);
            seen.insert(id.clone());
            let monitor = wait_monitor(&e, &id);
            // The container ends; its monitor reaps it, drains its output,
            // writes the exit file, execs `capsa __exited`, which records
            // the exit (and applies --rm): the monitor is killed at one of
            // these steps.
            let pid = host_pid(&e, &id);
            kill9(pid);
            std::thread::sleep(delay);
            let ended = !kill9(monitor);
            settle(&e, "the container and its monitor to end", || {
                gone(monitor) && gone(pid)
            });
            let row = listing(&e).into_iter().find(|r| r.1 == name);
            if auto_remove {
                assert_eq!(row, None, "{name}");
                assert_empty(&e, &seen);
                return ended;
            }
            let status = row.map(|r| r.2).unwrap_or_default();
            assert!(
                status.starts_with("Exited (137) ") || status.starts_with("Exited (255) "),
                "{name}: {status}"
            );
            assert!(Engine::cgroups_of(&id).is_empty());
            // The store goes on: the same container runs again, then goes.
            e.ok(&["start", &name]);
            assert_eq!(e.status(&name), "running");
            check_and_remove(&e, &name, &mut seen);
            ended
        });
    }
}

#[test]
fn killed_monitor_of_a_restarting_container_leaves_a_consistent_state() {
    require_root!();
    let e = Engine::new();
    const TRIES: u32 = 8;
    let mut seen = BTreeSet::new();
    for k in 0..TRIES {
        let name = format!("restarting{k}");
        let id = e.run_d(&[
            "--name",
            &name,
            "--restart",
            "always",
            "busybox",
            "sh",
            "-c",
            "exit 3",
        ]);
        seen.insert(id.clone());
        std::thread::sleep(Duration::from_millis(40 * k as u64));
        kill_monitor(&e, &id);
        check_and_remove(&e, &name, &mut seen);
    }
}

/// Asserts that nothing of a refused `run`/`create` exists: no row, no
/// directory, root filesystem, runtime state, mount, cgroup or volume.
fn assert_nothing_made(e: &Engine, name: &str, cgroup_parent: &str) {
    e.fails_with(&["inspect", "--type", "container", name], 1);
    assert!(e.ids().is_empty(), "{name}: {:?}", e.ids());
    for dir in [
        e.store().join("containers"),
        e.store().join("rootfs"),
        runtime_root(e),
    ] {
        assert!(
            entries(dir.clone()).is_empty(),
            "{name}: {} is not empty",
            dir.display()
        );
    }
    assert!(e.mounts().is_empty(), "{name}: {:?}", e.mounts());
    assert!(
        Engine::cgroups_of(cgroup_parent).is_empty(),
        "{name}: {:?}",
        Engine::cgroups_of(cgroup_parent)
    );
    assert_eq!(e.ok(&["volume", "ls", "-q"]), "", "{name}");
}

#[test]
fn bad_input_gets_a_clear_error_and_exit_125_and_creates_nothing() {
    require_root!();
    let e = Engine::new();
    let missing = e.root.scratch("no-such-dir");
    let bind = format!("type=bind,source={},target=/x", missing.display());
    let taken = e.root.scratch("cid");
    std::fs::write(&taken, "x").unwrap();
    // (flags and image, what the error names)
    let cases: &[(&[&str], &str)] = &[
        (
            &["--pull", "never", "nosuchimage:1"],
            "No such image: nosuchimage:1",
        ),
        (&["-m", "12q", "busybox"], "12q"),
        (&["--memory-swap", "1x", "busybox"], "1x"),
        (&["--cpus", "lots", "busybox"], "--cpus"),
        (&["--restart", "sometimes", "busybox"], "sometimes"),
        (&["--ulimit", "nofile=abc", "busybox"], "nofile=abc"),
        (&["-w", "relative", "busybox"], "relative"),
        (
            &["--mount", &bind, "busybox"],
            "bind source path does not exist",
        ),
        (
            &["--cidfile", taken.to_str().unwrap(), "busybox"],
            "Container ID file found",
        ),
        // Found out once the container's row and root filesystem exist
        // (and, with -v, an anonymous volume): all of it goes.
        (&["--user", "nosuchuser", "busybox"], "nosuchuser"),
        (
            &["-v", "/data", "--user", "nosuchuser", "busybox"],
            "nosuchuser",
        ),
        (&["--group-add", "nosuchgroup", "busybox"], "nosuchgroup"),
        (&["--network", "container:nosuch", "busybox"], "nosuch"),
    ];
    for (i, (flags, what)) in cases.iter().enumerate() {
        for cmd in [&["run"][..], &["run", "-d"], &["create"]] {
            let name = format!("bad{i}");
            let parent = format!("capsa-bad-{i}-{}", std::process::id());
            let mut args: Vec<&str> = cmd.to_vec();
            args.extend(["--name", &name, "--cgroup-parent", &parent]);
            args.extend(flags.iter());
            args.push("true");
            let err = e.fails_with(&args, 125);
            assert!(err.starts_with("Error"), "{args:?}: {err}");
            assert!(err.contains(what), "{args:?}: {err}");
            assert_nothing_made(&e, &name, &parent);
        }
    }
    // A start the runtime refuses (a CPU the host lacks): the container
    // stays created, as with Docker, with nothing running or left in cgroups.
    let parent = format!("capsa-bad-start-{}", std::process::id());
    let err = e.fails_with(
        &[
            "run",
            "-d",
            "--name",
            "nocpu",
            "--cgroup-parent",
            &parent,
            "--cpuset-cpus",
            "99",
            "busybox",
            "true",
        ],
        125,
    );
    assert!(err.contains("cpuset.cpus"), "{err}");
    assert_eq!(e.status("nocpu"), "created");
    let id = e.field("nocpu", "{{.Id}}");
    assert!(Engine::cgroups_of(&id).is_empty());
    assert!(entries(runtime_root(&e)).is_empty());
    assert!(e.own_processes().is_empty(), "{:?}", e.own_processes());
    e.ok(&["rm", "nocpu"]);
    assert_nothing_made(&e, "nocpu", &parent);
    e.assert_clean(&[id]);
}

#[test]
fn rm_f_of_a_container_ends_its_attached_run_with_the_kill_status() {
    require_root!();
    let e = Engine::new();
    let mut seen = BTreeSet::new();
    for k in 0..3 {
        let name = format!("attached{k}");
        let run = spawn(&e, &["run", "--name", &name, "busybox", "sleep", "3600"]);
        e.wait_until(30, "the container to run", || {
            e.run(&["inspect", "-f", "{{.State.Status}}", &name]).stdout == b"running\n"
        });
        seen.insert(e.field(&name, "{{.Id}}"));
        e.ok(&["rm", "-f", &name]);
        // The monitor told the attached command before it went.
        let out = run.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(137), "{}", stderr(&out));
        assert_empty(&e, &seen);
    }
}
