//! Namespaces: each type created new and joined by path, user namespace id
//! mappings, time namespace offsets, host and domain names, and bad paths.

mod common;
#[path = "common/inspect.rs"]
mod inspect;

use std::os::unix::fs::MetadataExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Bundle, Runtime};
use inspect::{ns_ino, start, wait_sleeping};
use serde_json::{Value, json};

/// The namespaces[] entries for `types`, created new.
fn new_namespaces(types: &[&str]) -> Value {
    json!(types.iter().map(|t| json!({"type": t})).collect::<Vec<_>>())
}

/// The config type name of a /proc/PID/ns file name.
fn config_type(proc_name: &str) -> &str {
    match proc_name {
        "mnt" => "mount",
        "net" => "network",
        other => other,
    }
}

#[test]
fn every_namespace_type_is_created_new() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    let types = ["mnt", "pid", "net", "ipc", "uts", "cgroup", "time"];
    let cfg: Vec<&str> = types.iter().map(|t| config_type(t)).collect();
    b.args(&["sleep", "1000"])
        .edit(|c| c["linux"]["namespaces"] = new_namespaces(&cfg));
    let id = rt.id("nsnew");
    let pid = start(&rt, &b, &id);
    for ns in types {
        assert_ne!(ns_ino(pid, ns), ns_ino("self", ns), "{ns} is the host's");
    }
    // Not asked for: the host's user namespace.
    assert_eq!(ns_ino(pid, "user"), ns_ino("self", "user"));
    // In its own pid namespace the process is pid 1.
    assert_eq!(inspect::status_field(pid, "NSpid"), format!("{pid}\t1"));
}

#[test]
fn namespaces_not_listed_are_shared_with_the_host() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.args(&["sleep", "1000"]).edit(|c| {
        c["linux"]["namespaces"] = new_namespaces(&["mount"]);
        c.as_object_mut().unwrap().remove("hostname");
    });
    let id = rt.id("nsshare");
    let pid = start(&rt, &b, &id);
    assert_ne!(ns_ino(pid, "mnt"), ns_ino("self", "mnt"));
    for ns in ["pid", "net", "ipc", "uts", "cgroup", "time", "user"] {
        assert_eq!(ns_ino(pid, ns), ns_ino("self", ns), "{ns}");
    }
}

/// A process holding new namespaces, killed on drop.
struct Holder {
    unshare: Child,
    /// The process inside the namespaces.
    pid: i32,
}

impl Holder {
    /// `unshare --fork <flags> sleep 1000`; waits for the sleep.
    fn new(flags: &[&str]) -> Holder {
        let unshare = Command::new("unshare")
            .args(["--fork", "--kill-child"])
            .args(flags)
            .args(["sleep", "1000"])
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let me = unshare.id();
        let children = format!("/proc/{me}/task/{me}/children");
        let deadline = Instant::now() + Duration::from_secs(10);
        let pid = loop {
            let text = std::fs::read_to_string(&children).unwrap_or_default();
            if let Some(pid) = text.split_whitespace().next() {
                let pid: i32 = pid.parse().unwrap();
                // Wait until the child has exec'd sleep in the namespaces.
                if std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .is_ok_and(|c| c == "sleep\n")
                {
                    break pid;
                }
            }
            assert!(
                Instant::now() < deadline,
                "unshare {flags:?} never ran sleep"
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        Holder { unshare, pid }
    }

    fn ns_path(&self, name: &str) -> String {
        format!("/proc/{}/ns/{name}", self.pid)
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.unshare.kill();
        let _ = self.unshare.wait();
    }
}

#[test]
fn every_namespace_type_is_joined_by_path() {
    require_root!();
    let holder = Holder::new(&[
        "--pid", "--net", "--ipc", "--uts", "--cgroup", "--time", "--mount",
    ]);
    let types = ["pid", "net", "ipc", "uts", "cgroup", "time", "mnt"];
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    let namespaces: Vec<Value> = types
        .iter()
        .map(|t| json!({"type": config_type(t), "path": holder.ns_path(t)}))
        .collect();
    b.args(&["sleep", "1000"])
        .edit(|c| c["linux"]["namespaces"] = json!(namespaces));
    let id = rt.id("nsjoin");
    let pid = start(&rt, &b, &id);
    for ns in types {
        assert_ne!(ns_ino(holder.pid, ns), ns_ino("self", ns), "{ns}");
        assert_eq!(ns_ino(pid, ns), ns_ino(holder.pid, ns), "{ns} not joined");
    }
    // The holder is pid 1 of the joined pid namespace; the container is another.
    assert_ne!(inspect::status_field(pid, "NSpid"), format!("{pid}\t1"));
}

#[test]
fn a_user_namespace_is_joined_by_path() {
    require_root!();
    let holder = Holder::new(&["--user", "--map-root-user"]);
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.args(&["sleep", "1000"]).edit(|c| {
        c["linux"]["namespaces"] = json!([
            {"type": "user", "path": holder.ns_path("user")},
            {"type": "mount"}, {"type": "pid"}, {"type": "ipc"}, {"type": "uts"}
        ]);
    });
    let id = rt.id("nsjoinuser");
    let pid = start(&rt, &b, &id);
    assert_ne!(ns_ino(holder.pid, "user"), ns_ino("self", "user"));
    assert_eq!(ns_ino(pid, "user"), ns_ino(holder.pid, "user"));
    // The namespaces it creates belong to that user namespace: its uid map is
    // the holder's (root to root, one id).
    let map = std::fs::read_to_string(format!("/proc/{pid}/uid_map")).unwrap();
    assert_eq!(map.split_whitespace().collect::<Vec<_>>(), ["0", "0", "1"]);
}

/// The `uid_map` or `gid_map` of `pid` as rows of numbers.
fn id_map(pid: i32, file: &str) -> Vec<Vec<u64>> {
    std::fs::read_to_string(format!("/proc/{pid}/{file}"))
        .unwrap()
        .lines()
        .map(|l| l.split_whitespace().map(|n| n.parse().unwrap()).collect())
        .collect()
}

/// A busybox bundle with a new user namespace and these mappings, a
/// writable root, running `script` then sleeping.
fn user_ns_bundle(maps: Value, user: Value, script: &str) -> Bundle {
    let mut b = Bundle::busybox();
    b.sh(&format!("{script}; exec sleep 1000")).edit(|c| {
        c["root"]["readonly"] = json!(false);
        c["process"]["user"] = user;
        c["linux"]["namespaces"] = new_namespaces(&["user", "mount", "pid", "ipc", "uts"]);
        c["linux"]["uidMappings"] = maps.clone();
        c["linux"]["gidMappings"] = maps;
    });
    b
}

#[test]
fn user_namespace_with_one_range() {
    require_root!();
    let rt = Runtime::new();
    let maps = json!([{"containerID": 0, "hostID": 100000, "size": 1000}]);
    let b = user_ns_bundle(maps, json!({"uid": 0, "gid": 0}), "touch /tmp/made-by-root");
    let id = rt.id("userns1");
    let pid = start(&rt, &b, &id);
    wait_sleeping(pid);
    assert_ne!(ns_ino(pid, "user"), ns_ino("self", "user"));
    assert_eq!(id_map(pid, "uid_map"), [[0, 100000, 1000]]);
    assert_eq!(id_map(pid, "gid_map"), [[0, 100000, 1000]]);
    // Root inside is host uid 100000: in the host's view of its files too.
    let m = std::fs::metadata(b.rootfs().join("tmp/made-by-root")).unwrap();
    assert_eq!((m.uid(), m.gid()), (100000, 100000));
    let uid = inspect::status_field(pid, "Uid");
    assert_eq!(uid.split_whitespace().next(), Some("100000"));
}

#[test]
fn user_namespace_with_several_ranges() {
    require_root!();
    let rt = Runtime::new();
    let maps = json!([
        {"containerID": 0, "hostID": 100000, "size": 1000},
        {"containerID": 1000, "hostID": 300000, "size": 100}
    ]);
    let b = user_ns_bundle(
        maps,
        json!({"uid": 1000, "gid": 1000}),
        "touch /tmp/made-by-1000",
    );
    let id = rt.id("userns2");
    let pid = start(&rt, &b, &id);
    wait_sleeping(pid);
    let rows = vec![vec![0, 100000, 1000], vec![1000, 300000, 100]];
    assert_eq!(id_map(pid, "uid_map"), rows);
    assert_eq!(id_map(pid, "gid_map"), rows);
    let m = std::fs::metadata(b.rootfs().join("tmp/made-by-1000")).unwrap();
    assert_eq!((m.uid(), m.gid()), (300000, 300000));
}

#[test]
fn user_namespace_files_in_a_bind_mounted_host_dir() {
    require_root!();
    if inspect::skip_without_proc() {
        return;
    }
    let rt = Runtime::new();
    let host_dir = tempfile::tempdir().unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(host_dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let maps = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    let mut b = user_ns_bundle(maps, json!({"uid": 0, "gid": 0}), "touch /shared/f");
    std::fs::create_dir(b.rootfs().join("shared")).unwrap();
    let src = host_dir.path().display().to_string();
    b.edit(|c| {
        c["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/shared", "type": "bind", "source": src,
            "options": ["rbind", "rw"]
        }));
    });
    let id = rt.id("usernsbind");
    let pid = start(&rt, &b, &id);
    wait_sleeping(pid);
    let m = std::fs::metadata(host_dir.path().join("f")).unwrap();
    assert_eq!((m.uid(), m.gid()), (100000, 100000));
}

#[test]
fn time_namespace_offsets() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    let day = 86400;
    b.args(&["sleep", "1000"]).edit(|c| {
        c["linux"]["namespaces"] = new_namespaces(&["mount", "pid", "uts", "time"]);
        c["linux"]["timeOffsets"] = json!({
            "monotonic": {"secs": day, "nanosecs": 0},
            "boottime": {"secs": 2 * day, "nanosecs": 500}
        });
    });
    let id = rt.id("timens");
    let pid = start(&rt, &b, &id);
    assert_ne!(ns_ino(pid, "time"), ns_ino("self", "time"));
    let offsets = std::fs::read_to_string(format!("/proc/{pid}/timens_offsets")).unwrap();
    let rows: Vec<Vec<&str>> = offsets
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert!(rows.contains(&vec!["monotonic", "86400", "0"]), "{offsets}");
    assert!(
        rows.contains(&vec!["boottime", "172800", "500"]),
        "{offsets}"
    );

    if inspect::skip_without_proc() {
        return;
    }
    // /proc/uptime is the boot time clock: two days more inside.
    let host_uptime = || -> f64 {
        let t = std::fs::read_to_string("/proc/uptime").unwrap();
        t.split_whitespace().next().unwrap().parse().unwrap()
    };
    let before = host_uptime();
    let (code, out, err) = inspect::exec(&rt, &[&id, "cat", "/proc/uptime"]);
    assert_eq!(code, 0, "{err}");
    let inside: f64 = out.split_whitespace().next().unwrap().parse().unwrap();
    let after = host_uptime();
    assert!(
        inside >= before + 2.0 * day as f64 && inside <= after + 2.0 * day as f64 + 1.0,
        "uptime inside {inside}, host {before}..{after}"
    );
}

#[test]
fn hostname_and_domainname() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.sh("hostname; exec sleep 1000").edit(|c| {
        c["hostname"] = json!("capsa-test-host");
        c["domainname"] = json!("capsa.example");
    });
    let id = rt.id("uts");
    let pid = start(&rt, &b, &id);
    let in_uts = |args: &[&str]| {
        let out = Command::new("nsenter")
            .arg(format!("--uts=/proc/{pid}/ns/uts"))
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(in_uts(&["hostname"]), "capsa-test-host");
    assert_eq!(
        in_uts(&["cat", "/proc/sys/kernel/domainname"]),
        "capsa.example"
    );
    // From inside, too.
    let (code, out, err) = inspect::exec(&rt, &[&id, "hostname"]);
    assert_eq!((code, out.as_str()), (0, "capsa-test-host\n"), "{err}");
    // The host's names are untouched.
    assert_ne!(
        nix::unistd::gethostname().unwrap().to_string_lossy(),
        "capsa-test-host"
    );
}

#[test]
fn hostname_without_a_uts_namespace_is_refused() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.edit(|c| {
        c["hostname"] = json!("nope");
        c["linux"]["namespaces"] = new_namespaces(&["mount", "pid"]);
    });
    let id = rt.id("utsbad");
    let (code, _, err) = rt.run(&b, &id);
    assert_ne!(code, 0);
    assert!(err.contains("hostname") && err.contains("uts"), "{err}");
}

#[test]
fn joined_paths_of_the_wrong_kind_are_clear_errors() {
    require_root!();
    let rt = Runtime::new();
    let me = std::process::id();
    let cases = [
        (format!("/proc/{me}/ns/net"), "is not a ipc namespace"),
        ("/etc/hostname".to_string(), "is not a namespace file"),
        ("/no/such/namespace".to_string(), "linux.namespaces[2].path"),
    ];
    for (path, want) in cases {
        let mut b = Bundle::busybox();
        b.edit(|c| {
            c["linux"]["namespaces"] = json!([
                {"type": "mount"}, {"type": "pid"}, {"type": "ipc", "path": path}, {"type": "uts"}
            ]);
        });
        let id = rt.id("nsbad");
        let (code, _, err) = rt.run(&b, &id);
        assert_ne!(code, 0, "{path}");
        assert!(err.contains(want), "{path}: {err}");
        assert!(err.contains(&path), "{path}: {err}");
        assert!(!rt.root().join(&id).exists());
    }
}
