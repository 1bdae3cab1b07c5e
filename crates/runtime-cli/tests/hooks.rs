//! Lifecycle hooks: when each kind runs relative to create/start/delete, in
//! which mount namespace, with which state on stdin; timeouts; and what a
//! failing hook of each kind does.

mod common;
#[path = "common/inspect.rs"]
mod inspect;

use std::path::{Path, PathBuf};

use common::{Bundle, Runtime};
use serde_json::{Value, json};

/// A hook running `sh -c script` on the host (or, for startContainer, in
/// the container), with a PATH.
fn hook(script: &str) -> Value {
    json!({
        "path": "/bin/sh",
        "args": ["sh", "-c", script],
        "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]
    })
}

/// A hook that appends "NAME MNTNS STATE" to `log` (a host path).
fn recording_hook(name: &str, log: &Path) -> Value {
    hook(&format!(
        r#"echo "{name} $(readlink /proc/self/ns/mnt) $(cat)" >> {}"#,
        log.display()
    ))
}

/// One line of the log: (hook name, mount namespace, state JSON), or a marker.
#[derive(Debug)]
struct Entry {
    name: String,
    mnt: String,
    state: Value,
}

fn read_log(log: &Path) -> Vec<Entry> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let mut parts = l.splitn(3, ' ');
            let name = parts.next().unwrap().to_string();
            let mnt = parts.next().unwrap_or_default().to_string();
            let state = serde_json::from_str(parts.next().unwrap_or("null")).unwrap_or(Value::Null);
            Entry { name, mnt, state }
        })
        .collect()
}

fn mark(log: &Path, what: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    writeln!(f, "{what}").unwrap();
}

/// A temporary directory for logs.
fn log_dir() -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let log = d.path().join("log");
    (d, log)
}

#[test]
fn hooks_run_in_order_in_their_namespaces_with_the_state() {
    require_root!();
    let rt = Runtime::new();
    let (_d, log) = log_dir();
    let mut b = Bundle::busybox();
    b.args(&["sleep", "1000"]).edit(|c| {
        c["root"]["readonly"] = json!(false);
        c["annotations"] = json!({"org.capsa.test": "hooks"});
        c["hooks"] = json!({
            "prestart": [recording_hook("prestart", &log)],
            "createRuntime": [recording_hook("createRuntime", &log)],
            "createContainer": [recording_hook("createContainer", &log)],
            // Runs inside the container: records into its root file system.
            "startContainer": [hook(
                r#"echo "$(readlink /proc/self/ns/mnt)" > /start-hook.log; cat >> /start-hook.log"#
            )],
            "poststart": [recording_hook("poststart", &log)],
            "poststop": [recording_hook("poststop", &log)]
        });
    });
    let id = rt.id("hooks");
    let start_log = b.rootfs().join("start-hook.log");
    rt.create(&b, &id);
    mark(&log, "CREATED");
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    let container_mnt = std::fs::read_link(format!("/proc/{pid}/ns/mnt"))
        .unwrap()
        .display()
        .to_string();
    let host_mnt = std::fs::read_link("/proc/self/ns/mnt")
        .unwrap()
        .display()
        .to_string();
    assert_ne!(container_mnt, host_mnt);
    assert!(!start_log.exists(), "startContainer ran before start");
    rt.ok(&["start", &id]);
    mark(&log, "STARTED");
    assert!(start_log.exists(), "startContainer did not run at start");
    rt.ok(&["kill", &id, "KILL"]);
    rt.wait_status(&id, "stopped");
    mark(&log, "DELETING");
    rt.ok(&["delete", &id]);

    let entries = read_log(&log);
    let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "prestart",
            "createRuntime",
            "createContainer",
            "CREATED",
            "poststart",
            "STARTED",
            "DELETING",
            "poststop"
        ]
    );
    for e in &entries {
        let (want_mnt, want_status) = match e.name.as_str() {
            "prestart" | "createRuntime" => (&host_mnt, "creating"),
            "createContainer" => (&container_mnt, "creating"),
            "poststart" => (&host_mnt, "running"),
            "poststop" => (&host_mnt, "stopped"),
            _ => continue,
        };
        assert_eq!(
            &e.mnt, want_mnt,
            "{} ran in the wrong mount namespace",
            e.name
        );
        assert_eq!(e.state["status"], want_status, "{}", e.name);
        assert_eq!(e.state["id"], id.as_str(), "{}", e.name);
        assert_eq!(e.state["bundle"], b.path_str().as_str(), "{}", e.name);
        assert_eq!(
            e.state["annotations"]["org.capsa.test"], "hooks",
            "{}",
            e.name
        );
        let want_pid = if e.name == "poststop" { 0 } else { pid };
        assert_eq!(e.state["pid"], want_pid, "{}", e.name);
    }
    let text = std::fs::read_to_string(&start_log).unwrap();
    let (mnt, state) = text.split_once('\n').unwrap();
    if inspect::mounted().proc {
        assert_eq!(
            mnt, container_mnt,
            "startContainer ran in the wrong mount namespace"
        );
    }
    let state: Value = serde_json::from_str(state).unwrap();
    assert_eq!(state["status"], "created");
    assert_eq!(state["id"], id.as_str());
    assert_eq!(state["pid"], pid);
}

/// Checks that a failed create left nothing: no state, the init process
/// (whose pid the prestart hook recorded) gone, poststop run.
fn assert_nothing_left(rt: &Runtime, id: &str, log: &Path) {
    assert!(!rt.root().join(id).exists(), "state of {id} left behind");
    let entries = read_log(log);
    let pid = entries
        .iter()
        .find(|e| e.name == "prestart")
        .and_then(|e| e.state["pid"].as_i64())
        .expect("prestart recorded the pid") as i32;
    assert!(inspect::gone(pid), "init {pid} left behind");
    assert!(
        entries.iter().any(|e| e.name == "poststop"),
        "poststop did not run: {entries:?}"
    );
}

#[test]
fn a_failing_create_hook_fails_create_and_runs_poststop() {
    require_root!();
    let rt = Runtime::new();
    for kind in ["prestart", "createRuntime", "createContainer"] {
        let (_d, log) = log_dir();
        let mut b = Bundle::busybox();
        b.args(&["sleep", "1000"]).edit(|c| {
            let mut hooks = json!({
                "prestart": [recording_hook("prestart", &log)],
                "poststop": [recording_hook("poststop", &log)]
            });
            let list = hooks
                .as_object_mut()
                .unwrap()
                .entry(kind)
                .or_insert(json!([]));
            list.as_array_mut()
                .unwrap()
                .push(hook("echo the hook broke >&2; exit 3"));
            c["hooks"] = hooks;
        });
        let id = rt.id("hookfail");
        let (ok, _, err) = rt.detached(&["create", "--bundle", &b.path_str(), &id]);
        assert!(!ok, "{kind}: create succeeded");
        assert!(
            err.contains(&format!("{kind} hook /bin/sh")),
            "{kind}: {err}"
        );
        assert!(err.contains("exited with status 3"), "{kind}: {err}");
        assert!(err.contains("the hook broke"), "{kind}: {err}");
        assert_nothing_left(&rt, &id, &log);
    }
}

#[test]
fn a_hook_past_its_timeout_fails_create() {
    require_root!();
    let rt = Runtime::new();
    let (_d, log) = log_dir();
    let mut b = Bundle::busybox();
    let mut slow = hook("sleep 30");
    slow["timeout"] = json!(1);
    b.args(&["sleep", "1000"]).edit(|c| {
        c["hooks"] = json!({
            "prestart": [recording_hook("prestart", &log)],
            "createRuntime": [slow],
            "poststop": [recording_hook("poststop", &log)]
        });
    });
    let id = rt.id("hooktime");
    let (ok, _, err) = rt.detached(&["create", "--bundle", &b.path_str(), &id]);
    assert!(!ok);
    assert!(err.contains("createRuntime hook"), "{err}");
    assert!(err.contains("timed out after 1 s"), "{err}");
    assert_nothing_left(&rt, &id, &log);
}

#[test]
fn a_failing_poststart_or_poststop_hook_only_warns() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.args(&["sleep", "1000"]).edit(|c| {
        c["hooks"] = json!({
            "poststart": [hook("echo poststart broke >&2; exit 1")],
            "poststop": [hook("echo poststop broke >&2; exit 1")]
        });
    });
    let id = rt.id("hookwarn");
    rt.create(&b, &id);
    let (ok, _, err) = rt.detached(&["start", &id]);
    assert!(ok, "start failed: {err}");
    assert!(err.contains("poststart broke"), "no warning: {err}");
    assert_eq!(rt.status(&id), "running");
    rt.ok(&["kill", &id, "KILL"]);
    rt.wait_status(&id, "stopped");
    let out = rt.output(&["delete", &id]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "delete failed: {err}");
    assert!(err.contains("poststop broke"), "no warning: {err}");
    assert!(!rt.root().join(&id).exists());
}

#[test]
fn a_failing_start_container_hook_fails_start() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.args(&["sleep", "1000"]).edit(|c| {
        c["hooks"] = json!({"startContainer": [hook("exit 4")]});
    });
    let id = rt.id("hookstart");
    rt.create(&b, &id);
    let pid = rt.state(&id)["pid"].as_i64().unwrap() as i32;
    let (ok, _, err) = rt.detached(&["start", &id]);
    assert!(!ok);
    assert!(err.contains("startContainer hook"), "{err}");
    assert!(err.contains("exited with status 4"), "{err}");
    // The program never ran: the container is stopped.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !inspect::gone(pid) {
        assert!(
            std::time::Instant::now() < deadline,
            "init {pid} still runs"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(rt.status(&id), "stopped");
}

#[test]
fn run_with_create_hooks_starts_after_them() {
    require_root!();
    let rt = Runtime::new();
    let (d, log) = log_dir();
    let mut b = Bundle::busybox();
    // `run` queues its start with the set-up only without these hooks: with
    // them, the program must still run after both, and exactly once.
    b.sh("echo program >> /log/log; exit 5").edit(|c| {
        c["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/log", "type": "bind",
            "source": d.path(), "options": ["rbind"]}));
        c["hooks"] = json!({
            "prestart": [recording_hook("prestart", &log)],
            "createRuntime": [recording_hook("createRuntime", &log)],
            "poststop": [recording_hook("poststop", &log)]
        });
    });
    let id = rt.id("runhooks");
    let (code, _, err) = rt.run(&b, &id);
    assert_eq!(code, 5, "{err}");
    let names: Vec<String> = read_log(&log).into_iter().map(|e| e.name).collect();
    assert_eq!(names, ["prestart", "createRuntime", "program", "poststop"]);
}
