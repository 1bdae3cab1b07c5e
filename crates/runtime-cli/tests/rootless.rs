//! Rootless containers: `capsa-runtime` run by an unprivileged user the
//! test creates (with /etc/subuid and /etc/subgid ranges), with its default
//! state root under $XDG_RUNTIME_DIR.

mod common;
#[path = "common/inspect.rs"]
mod inspect;
mod support;

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Output;

use common::{Bundle, bin};
use inspect::{status_field, wait_for_file};
use serde_json::{Value, json};
use support::TestUser;

/// Runs capsa-runtime as `user` (no --root: the default state root).
fn as_user(user: &TestUser, args: &[&str]) -> Output {
    user.command(bin()).args(args).output().unwrap()
}

/// As [`as_user`] for a command whose container outlives it (`run -d`):
/// its stdio goes to files, which the container may keep open.
fn as_user_detached(user: &TestUser, args: &[&str]) -> Output {
    let out = tempfile::NamedTempFile::new().unwrap();
    let err = tempfile::NamedTempFile::new().unwrap();
    let status = user
        .command(bin())
        .args(args)
        .stdout(out.reopen().unwrap())
        .stderr(err.reopen().unwrap())
        .status()
        .unwrap();
    Output {
        status,
        stdout: std::fs::read(out.path()).unwrap(),
        stderr: std::fs::read(err.path()).unwrap(),
    }
}

/// Deletes the user's containers (by id) when dropped.
struct Containers<'a> {
    user: &'a TestUser,
    ids: Vec<String>,
}

impl Drop for Containers<'_> {
    fn drop(&mut self) {
        for id in &self.ids {
            let _ = as_user(self.user, &["delete", "--force", id]);
        }
    }
}

impl<'a> Containers<'a> {
    fn new(user: &'a TestUser) -> Self {
        Containers {
            user,
            ids: Vec::new(),
        }
    }

    fn id(&mut self, prefix: &str) -> String {
        let id = common::unique(prefix);
        self.ids.push(id.clone());
        id
    }
}

/// A busybox bundle with the config `spec --rootless` writes for `user`
/// (made by the user itself), no terminal, running `script`.
fn rootless_bundle(user: &TestUser, script: &str) -> Bundle {
    let mut b = Bundle::busybox();
    std::fs::remove_file(b.path().join("config.json")).unwrap();
    user.own(b.path());
    let out = user
        .command(bin())
        .args(["spec", "--rootless", "--bundle"])
        .arg(b.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    b.config =
        serde_json::from_slice(&std::fs::read(b.path().join("config.json")).unwrap()).unwrap();
    b.edit(|c| {
        c["process"]["terminal"] = json!(false);
        c["process"]["args"] = json!(["sh", "-c", script]);
    });
    b
}

/// A host directory owned by the user, bind-mounted read-write at /data.
fn data_dir(user: &TestUser, b: &mut Bundle) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("capsa-data-")
        .tempdir()
        .unwrap();
    user.own(dir.path());
    let src = dir.path().display().to_string();
    // The rootfs belongs to root: the container's root cannot make the mount point.
    std::fs::create_dir_all(b.rootfs().join("data")).unwrap();
    b.edit(|c| {
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": "/data", "type": "bind", "source": src, "options": ["rbind", "rw"]}));
    });
    dir
}

/// Runs the bundle as `user`, which must fail; returns the error output,
/// having checked that no state is left.
fn run_fails(user: &TestUser, b: &Bundle, id: &str) -> String {
    let out = as_user(user, &["run", "--bundle", &b.path_str(), id]);
    assert!(!out.status.success(), "{id} ran");
    assert_no_state(user, id);
    stderr(&out)
}

/// Asserts that `user`'s default state root holds nothing of container `id`.
fn assert_no_state(user: &TestUser, id: &str) {
    let dir = user.runtime_dir.path().join("capsa-runtime").join(id);
    assert!(!dir.exists(), "{} is left", dir.display());
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn spec_rootless_writes_a_config_an_unprivileged_user_can_run() {
    let Some(user) = TestUser::create() else {
        return;
    };
    let b = rootless_bundle(&user, "true");
    let c = &b.config;
    let types: Vec<&str> = c["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap())
        .collect();
    assert!(
        types.contains(&"user") && !types.contains(&"network"),
        "{types:?}"
    );
    assert_eq!(
        c["linux"]["uidMappings"],
        json!([{"containerID": 0, "hostID": user.uid, "size": 1}])
    );
    assert_eq!(
        c["linux"]["gidMappings"],
        json!([{"containerID": 0, "hostID": user.gid, "size": 1}])
    );
    let mounts = c["mounts"].as_array().unwrap();
    assert!(
        mounts
            .iter()
            .all(|m| m["type"] != "cgroup" && m["type"] != "sysfs")
    );
    let sys = mounts.iter().find(|m| m["destination"] == "/sys").unwrap();
    assert!(sys["options"].as_array().unwrap().contains(&json!("rbind")));
    assert!(c["linux"]["resources"].is_null());
}

#[test]
fn rootless_container_is_root_inside_and_the_user_outside() {
    let Some(user) = TestUser::create() else {
        return;
    };
    let mut b = rootless_bundle(
        &user,
        "id -u > /data/inside-uid; echo made > /data/file; \
         ls /proc | grep -c '^[0-9]' > /data/procs; \
         kill -0 1 && echo self-ok >> /data/signals; sleep 30",
    );
    let data = data_dir(&user, &mut b);
    let mut cs = Containers::new(&user);
    let id = cs.id("rootless");
    let out = as_user_detached(&user, &["run", "-d", "--bundle", &b.path_str(), &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    // The state is in $XDG_RUNTIME_DIR/capsa-runtime.
    assert!(
        user.runtime_dir
            .path()
            .join("capsa-runtime")
            .join(&id)
            .is_dir()
    );
    let state: Value = serde_json::from_slice(&as_user(&user, &["state", &id]).stdout).unwrap();
    let pid = state["pid"].as_i64().unwrap() as i32;
    wait_for_file(&data.path().join("signals"));
    // uid 0 inside, the user outside.
    assert_eq!(read(&data.path().join("inside-uid")), "0");
    let uid = user.uid.to_string();
    let gid = user.gid.to_string();
    assert_eq!(
        status_field(pid, "Uid")
            .split_whitespace()
            .collect::<Vec<_>>(),
        [&uid; 4]
    );
    assert_eq!(
        status_field(pid, "Gid")
            .split_whitespace()
            .collect::<Vec<_>>(),
        [&gid; 4]
    );
    // Files it makes on a bind mount belong to the user on the host.
    let meta = std::fs::metadata(data.path().join("file")).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (user.uid, user.gid));
    // Its own pid namespace: it sees only itself (sh, sleep, ls... no host process).
    let procs: u32 = read(&data.path().join("procs")).parse().unwrap();
    assert!(procs < 5, "{procs} processes visible");
    // exec works and is root inside too.
    let out = as_user(&user, &["exec", &id, "id", "-u"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "0\n",
        "{}",
        stderr(&out)
    );
    let out = as_user(&user, &["delete", "--force", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn rootless_container_cannot_signal_host_processes() {
    let Some(user) = TestUser::create() else {
        return;
    };
    // Even sharing the host's pid namespace (none of its own), the
    // container's root is the unprivileged user to the host.
    let host_pid = std::process::id();
    let script = format!(
        "kill -0 {host_pid} 2>/dev/null && echo signalled; kill -0 1 2>/dev/null && echo init; \
         [ -e /proc/{host_pid} ] && echo visible; true"
    );
    let mut b = rootless_bundle(&user, &script);
    b.edit(|c| {
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "pid");
        // A new procfs needs a pid namespace of its own: bind the host's.
        c["mounts"][0] = json!({"destination": "/proc", "type": "bind", "source": "/proc", "options": ["rbind"]});
    });
    let mut cs = Containers::new(&user);
    let id = cs.id("rootless-kill");
    let out = as_user(&user, &["run", "--bundle", &b.path_str(), &id]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        text.contains("visible"),
        "sharing the host's pid namespace: {text}"
    );
    assert!(
        !text.contains("signalled") && !text.contains("init"),
        "{text}"
    );
    // With a pid namespace of its own, host processes are not even visible.
    let mut b = rootless_bundle(&user, &script);
    b.edit(|c| c["root"]["readonly"] = json!(true));
    let id = cs.id("rootless-kill");
    let out = as_user(&user, &["run", "--bundle", &b.path_str(), &id]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        !text.contains("visible") && !text.contains("signalled"),
        "{text}"
    );
    assert!(text.contains("init"), "its own init is pid 1: {text}");
}

#[test]
fn several_ranges_are_mapped_with_newuidmap() {
    let Some(user) = TestUser::create() else {
        return;
    };
    let mut b = rootless_bundle(
        &user,
        "cat /proc/self/uid_map /proc/self/gid_map; echo by-5 > /data/five",
    );
    let data = data_dir(&user, &mut b);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(data.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let (start, uid, gid) = (user.subid_start, user.uid, user.gid);
    b.edit(|c| {
        for (key, own) in [("uidMappings", uid), ("gidMappings", gid)] {
            c["linux"][key] = json!([
                {"containerID": 0, "hostID": own, "size": 1},
                {"containerID": 1, "hostID": start, "size": 1000}
            ]);
        }
        c["process"]["user"] = json!({"uid": 5, "gid": 5});
    });
    let mut cs = Containers::new(&user);
    let id = cs.id("rootless-ranges");
    let out = as_user(&user, &["run", "--bundle", &b.path_str(), &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let maps: Vec<Vec<u64>> = text
        .lines()
        .map(|l| l.split_whitespace().map(|f| f.parse().unwrap()).collect())
        .collect();
    assert_eq!(maps[0], [0, uid as u64, 1]);
    assert_eq!(maps[1], [1, start as u64, 1000]);
    assert_eq!(maps[2], [0, gid as u64, 1]);
    assert_eq!(maps[3], [1, start as u64, 1000]);
    // uid 5 inside is start + 4 outside.
    let meta = std::fs::metadata(data.path().join("five")).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (start + 4, start + 4));

    // Ranges not granted in /etc/subuid: newuidmap's refusal, explained.
    b.edit(|c| {
        c["linux"]["uidMappings"][1]["hostID"] = json!(start + user.subid_count);
    });
    let id = cs.id("rootless-ranges");
    let err = run_fails(&user, &b, &id);
    assert!(
        err.contains("linux.uidMappings")
            && err.contains("newuidmap")
            && err.contains("/etc/subuid"),
        "{err}"
    );
    assert!(err.contains("not allowed"), "newuidmap's own words: {err}");

    // Without the helpers in $PATH: a clear error naming the package.
    let id = cs.id("rootless-ranges");
    let out = user
        .command("/usr/bin/env")
        .args([
            "PATH=/nonexistent",
            bin(),
            "run",
            "--bundle",
            &b.path_str(),
            &id,
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("linux.uidMappings")
            && err.contains(
                "these mappings need newuidmap (Debian package uidmap), which is not in $PATH"
            ),
        "{err}"
    );
    assert_no_state(&user, &id);
}

#[test]
fn resources_need_a_cgroup_delegated_to_the_user() {
    let Some(user) = TestUser::create() else {
        return;
    };
    let mut b = rootless_bundle(&user, "true");
    b.edit(|c| c["linux"]["resources"] = json!({"memory": {"limit": 64 << 20}}));
    let mut cs = Containers::new(&user);
    let id = cs.id("rootless-res");
    let err = run_fails(&user, &b, &id);
    assert!(
        err.contains("linux.resources.memory") && err.contains("not delegated"),
        "{err}"
    );
    // Without resources it runs (no cgroup is written).
    b.edit(|c| {
        c["linux"]
            .as_object_mut()
            .unwrap()
            .remove("resources")
            .map(drop)
            .unwrap_or(())
    });
    let id = cs.id("rootless-res");
    let out = as_user(&user, &["run", "--bundle", &b.path_str(), &id]);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// Removes a cgroup directory the test made when dropped (retrying while
/// its last processes exit).
struct Rmdir(std::path::PathBuf);

impl Drop for Rmdir {
    fn drop(&mut self) {
        for _ in 0..100 {
            if std::fs::remove_dir(&self.0).is_ok() || !self.0.exists() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

/// Creates container `id` of bundle `b` as `user` from a shell that first
/// moves itself into the cgroup whose `cgroup.procs` is `procs` (as a
/// login session's shell sits in its scope); panics with the runtime's
/// error output if it fails.
fn create_from_cgroup(user: &TestUser, procs: &Path, b: &Bundle, id: &str) {
    let script = format!(
        "echo $$ > {} && exec setpriv --reuid {} --regid {} --init-groups -- \
         env XDG_RUNTIME_DIR={} {} create --bundle {} {id}",
        procs.display(),
        user.uid,
        user.gid,
        user.runtime_dir.path().display(),
        bin(),
        b.path_str()
    );
    // The container's init keeps create's stdio: files, not pipes.
    let log = tempfile::NamedTempFile::new().unwrap();
    let status = std::process::Command::new("sh")
        .args(["-c", &script])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(log.reopen().unwrap())
        .status()
        .unwrap();
    assert!(
        status.success(),
        "{}",
        std::fs::read_to_string(log.path()).unwrap()
    );
}

#[test]
fn limits_apply_in_a_cgroup_delegated_to_the_user() {
    let Some(user) = TestUser::create() else {
        return;
    };
    // A v1 pids cgroup of the test's own, given to the user, from which the
    // runtime is started (the runtime then places the container beneath it).
    let pids = Path::new("/sys/fs/cgroup/pids");
    if !pids.join("cgroup.procs").exists() {
        eprintln!("SKIPPED: no v1 pids hierarchy to delegate");
        return;
    }
    let own = std::fs::read_to_string("/proc/self/cgroup")
        .unwrap()
        .lines()
        .find_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, ctrl, path) = (f.next()?, f.next()?, f.next()?);
            ctrl.split(',')
                .any(|c| c == "pids")
                .then(|| path.to_string())
        })
        .unwrap();
    let delegated = pids
        .join(own.trim_start_matches('/'))
        .join(common::unique("capsa-delegated"));
    std::fs::create_dir(&delegated).unwrap();
    let _rm = Rmdir(delegated.clone());
    for f in ["", "cgroup.procs", "tasks"] {
        user.own(&delegated.join(f));
    }
    let mut b = rootless_bundle(&user, "cat /proc/self/cgroup | grep pids");
    b.edit(|c| c["linux"]["resources"] = json!({"pids": {"limit": 42}}));
    let mut cs = Containers::new(&user);
    let id = cs.id("rootless-pids");
    create_from_cgroup(&user, &delegated.join("cgroup.procs"), &b, &id);
    let limit = std::fs::read_to_string(delegated.join(&id).join("pids.max")).unwrap();
    assert_eq!(limit.trim(), "42");
    let out = as_user(&user, &["delete", "--force", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        !delegated.join(&id).exists(),
        "the container's cgroup is removed"
    );
}

#[test]
fn limits_apply_in_a_v2_cgroup_delegated_to_the_user() {
    let Some(user) = TestUser::create() else {
        return;
    };
    // As systemd delegates user@UID.service: a cgroup owned by the user
    // (with its cgroup.procs, cgroup.subtree_control and cgroup.threads)
    // with the controllers enabled for its children, and the user's shell
    // in a leaf of it. The runtime places the container beside that leaf.
    let layout = capsa_runtime::cgroups::Layout::detect().unwrap();
    if layout.mode() != Some(capsa_runtime::cgroups::Mode::V2) {
        eprintln!("SKIPPED: not a pure cgroup v2 host");
        return;
    }
    let root = &layout.hierarchies[0].mount_point;
    let own = &layout.own[capsa_runtime::cgroups::UNIFIED];
    let parent = root.join(own.parent().unwrap_or(own).strip_prefix("/").unwrap());
    let offered = std::fs::read_to_string(parent.join("cgroup.subtree_control")).unwrap();
    let wanted = ["memory", "pids"];
    if let Some(c) = wanted
        .iter()
        .find(|c| !offered.split_whitespace().any(|o| o == **c))
    {
        eprintln!(
            "SKIPPED: {} does not delegate {c}",
            parent.join("cgroup.subtree_control").display()
        );
        return;
    }
    let delegated = parent.join(common::unique("capsa-delegated"));
    std::fs::create_dir(&delegated).unwrap();
    let _rm = Rmdir(delegated.clone());
    std::fs::write(delegated.join("cgroup.subtree_control"), "+memory +pids").unwrap();
    let shell = delegated.join("shell");
    std::fs::create_dir(&shell).unwrap();
    let _rm_shell = Rmdir(shell.clone());
    for f in [
        "",
        "cgroup.procs",
        "cgroup.subtree_control",
        "cgroup.threads",
    ] {
        user.own(&delegated.join(f));
    }
    for f in ["", "cgroup.procs"] {
        user.own(&shell.join(f));
    }
    let mut b = rootless_bundle(&user, "sleep 1000");
    b.edit(|c| {
        c["linux"]["resources"] = json!({"memory": {"limit": 64 << 20}, "pids": {"limit": 42}})
    });
    let mut cs = Containers::new(&user);
    let id = cs.id("rootless-v2");
    create_from_cgroup(&user, &shell.join("cgroup.procs"), &b, &id);
    let ctr = delegated.join(&id);
    let read = |f: &str| {
        std::fs::read_to_string(ctr.join(f))
            .unwrap()
            .trim()
            .to_string()
    };
    assert_eq!(read("memory.max"), (64u64 << 20).to_string());
    assert_eq!(read("pids.max"), "42");
    let out = as_user(&user, &["start", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let state: Value = serde_json::from_slice(&as_user(&user, &["state", &id]).stdout).unwrap();
    let init = state["pid"].as_i64().unwrap();
    let cgroup = std::fs::read_to_string(format!("/proc/{init}/cgroup")).unwrap();
    assert!(
        cgroup.trim_end().ends_with(&format!("/{id}")),
        "the init is in {cgroup}"
    );
    // Pause and resume through cgroup.freeze, as the user.
    for cmd in ["pause", "resume"] {
        let out = as_user(&user, &[cmd, &id]);
        assert!(out.status.success(), "{cmd}: {}", stderr(&out));
    }
    let out = as_user(&user, &["delete", "--force", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!ctr.exists(), "the container's cgroup is removed");
}

#[test]
fn an_unprivileged_user_needs_a_user_namespace() {
    let Some(user) = TestUser::create() else {
        return;
    };
    let b = Bundle::busybox();
    let mut cs = Containers::new(&user);
    let id = cs.id("rootless-nous");
    let err = run_fails(&user, &b, &id);
    assert!(
        err.contains("linux.namespaces")
            && err.contains("user namespace")
            && err.contains("--rootless"),
        "{err}"
    );
}

#[test]
fn seccomp_profiles_apply_unprivileged() {
    let Some(user) = TestUser::create() else {
        return;
    };
    let mut b = rootless_bundle(&user, "mkdir /tmp/x; echo mkdir=$?");
    b.edit(|c| {
        let caps: Vec<String> = c["process"]["capabilities"]["bounding"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        let mut profile = capsa_runtime::seccomp::profile::default_profile(&caps);
        profile["syscalls"].as_array_mut().unwrap().insert(
            0,
            json!({"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EACCES}),
        );
        c["linux"]["seccomp"] = profile;
    });
    let mut cs = Containers::new(&user);
    let id = cs.id("rootless-seccomp");
    let out = as_user(&user, &["run", "--bundle", &b.path_str(), &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("mkdir=1"), "{text}");
    assert!(
        stderr(&out).contains("Permission denied"),
        "{}",
        stderr(&out)
    );
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap().trim().to_string()
}
