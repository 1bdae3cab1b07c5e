//! capsa-runtime killed (SIGKILL) at any point of `create` and `run`: the
//! container it was making must show in `list` (when anything of it was
//! made), `delete --force` must remove all of it — state directory,
//! cgroups in every hierarchy, pid file, processes, mounts — and the id
//! must be free again. The kill lands every 0.2 ms across the whole set-up.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{Bundle, Runtime};

/// The cgroup directories a container `id` with no cgroupsPath gets
/// (beneath this process's own cgroup in every hierarchy).
fn cgroup_dirs(id: &str) -> Vec<PathBuf> {
    let layout = capsa_runtime::cgroups::Layout::detect().unwrap();
    layout
        .place(None, id)
        .map(|p| p.dirs.into_values().collect())
        .unwrap_or_default()
}

/// Processes whose command line holds `marker`.
fn processes_with(marker: &str) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if pid == std::process::id() as i32 {
            continue;
        }
        let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(marker) {
            out.push(pid);
        }
    }
    out
}

/// Mounts whose mount point is beneath `dir`, in this mount namespace.
fn mounts_under(dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let dir = dir.display().to_string();
    text.lines()
        .filter(|l| l.split(' ').nth(4).is_some_and(|m| m.starts_with(&dir)))
        .map(str::to_string)
        .collect()
}

/// What a killed command left that `delete --force` did not remove.
fn leaks(rt: &Runtime, b: &Bundle, id: &str, marker: &str, pid_file: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if rt.root().join(id).exists() {
        out.push(format!("state directory {}", rt.root().join(id).display()));
    }
    for d in cgroup_dirs(id) {
        if d.exists() {
            out.push(format!("cgroup {}", d.display()));
        }
    }
    // The init is a copy of the runtime (its command line names the id)
    // until it execs the program (whose command line holds the marker).
    for m in [id, marker] {
        for pid in processes_with(m) {
            out.push(format!("process {pid} ({m})"));
        }
    }
    for m in mounts_under(b.path()) {
        out.push(format!("mount {m}"));
    }
    let dir = pid_file.parent().unwrap();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.contains("pid") {
            out.push(format!("pid file {name}"));
        }
    }
    out
}

/// How long the command takes to set a container up, uninterrupted.
fn set_up_time(rt: &Runtime, cmd: &str, b: &Bundle) -> Duration {
    let mut best = Duration::MAX;
    for _ in 0..3 {
        let id = rt.id("time");
        let bundle = b.path_str();
        let mut args = vec![cmd, "--bundle", &bundle];
        if cmd == "run" {
            args.push("--detach");
        }
        args.push(&id);
        let t = Instant::now();
        let (ok, _, err) = rt.detached(&args);
        best = best.min(t.elapsed());
        assert!(ok, "{err}");
        rt.ok(&["delete", "--force", &id]);
    }
    best
}

fn kill_at_every_point(cmd: &str) {
    let rt = Runtime::new();
    // A sleep length no other test's container uses.
    let base = if cmd == "run" { 4_000_000 } else { 5_000_000 };
    let marker = format!("{}", base + std::process::id() % 1_000_000);
    let mut b = Bundle::busybox();
    b.args(&["sleep", &marker]);
    let span = set_up_time(&rt, cmd, &b) + Duration::from_millis(2);
    let pid_dir = tempfile::tempdir().unwrap();
    let pid_file = pid_dir.path().join("ctr.pid");
    let pid_s = pid_file.display().to_string();
    let step = Duration::from_micros(200);
    let mut at = Duration::ZERO;
    let mut seen_in_list = 0;
    let mut failures = Vec::new();
    while at <= span {
        let id = rt.id(&format!("k{}", at.as_micros()));
        let bundle = b.path_str();
        let mut args = vec![cmd, "--bundle", &bundle, "--pid-file", &pid_s];
        if cmd == "run" {
            args.push("--detach");
        }
        args.push(&id);
        let mut child = rt
            .cmd(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while started.elapsed() < at {
            std::hint::spin_loop();
        }
        let _ = child.kill();
        let _ = child.wait();
        // Whatever exists of it shows in the list.
        let listed = rt.ok(&["list", "-q"]).lines().any(|l| l == id);
        if rt.root().join(&id).exists() {
            seen_in_list += 1;
            if !listed {
                failures.push(format!("{at:?}: {id} exists but list does not show it"));
            }
            let state = rt.output(&["state", &id]);
            if !state.status.success() {
                failures.push(format!(
                    "{at:?}: state {id}: {}",
                    String::from_utf8_lossy(&state.stderr)
                ));
            }
        }
        let del = rt.output(&["delete", "--force", &id]);
        if !del.status.success() {
            failures.push(format!(
                "{at:?}: delete --force {id}: {}",
                String::from_utf8_lossy(&del.stderr)
            ));
        }
        let left = leaks(&rt, &b, &id, &marker, &pid_file);
        if !left.is_empty() {
            failures.push(format!("{at:?}: {id} left {left:?}"));
        }
        // The id is free again (nothing of it is left, above; a new
        // container of that id is made now and then to be sure).
        if (at.as_micros() / step.as_micros()).is_multiple_of(10) {
            let (ok, _, err) = rt.detached(&["create", "--bundle", &b.path_str(), &id]);
            if !ok {
                failures.push(format!("{at:?}: create {id} again: {err}"));
            }
            rt.ok(&["delete", "--force", &id]);
        }
        at += step;
    }
    assert!(
        failures.is_empty(),
        "{cmd} killed at {} points over {span:?}:\n{}",
        (span.as_micros() / step.as_micros()) + 1,
        failures.join("\n")
    );
    // The kills fell inside the set-up, not only before or after it.
    assert!(seen_in_list > 0, "no kill landed after the state was made");
}

#[test]
fn create_killed_at_any_point_leaves_a_container_delete_removes() {
    require_root!();
    kill_at_every_point("create");
}

#[test]
fn run_killed_at_any_point_leaves_a_container_delete_removes() {
    require_root!();
    kill_at_every_point("run");
}
