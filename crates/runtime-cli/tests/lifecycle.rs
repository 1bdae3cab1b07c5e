//! Lifecycle tests: create, start, state, run, kill, delete and their errors.

mod common;

use common::{Bundle, Runtime};

#[test]
fn run_returns_the_exit_status() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.sh("echo hello; exit 7");
    let id = rt.id("exit");
    let (code, out, err) = rt.run(&b, &id);
    assert_eq!(code, 7, "stderr: {err}");
    assert_eq!(out, "hello\n");
    // run deletes the container afterwards
    assert!(rt.fails(&["state", &id]).contains("does not exist"));
}

#[test]
fn create_start_state_delete() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.args(&["sleep", "100"]);
    let id = rt.id("life");
    rt.create(&b, &id);
    let st = rt.state(&id);
    assert_eq!(st["status"], "created");
    assert_eq!(st["id"], id.as_str());
    assert_eq!(st["bundle"], b.path_str().as_str());
    let pid = st["pid"].as_i64().unwrap();
    assert!(pid > 0);
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    // delete of a created (not stopped) container is refused without --force
    assert!(rt.fails(&["delete", &id]).contains("must be stopped"));
    rt.ok(&["start", &id]);
    assert_eq!(rt.status(&id), "running");
    // start of a running container is refused and changes nothing
    assert!(
        rt.fails(&["start", &id])
            .contains("only a created container")
    );
    assert_eq!(rt.status(&id), "running");
    rt.ok(&["kill", &id, "KILL"]);
    rt.wait_status(&id, "stopped");
    rt.ok(&["delete", &id]);
    assert!(rt.fails(&["state", &id]).contains("does not exist"));
}

/// A 64-character id, as Docker, containerd and Kubernetes give.
fn long_id(rt: &Runtime, prefix: &str) -> String {
    let mut id = format!(
        "{}-{}",
        common::unique(prefix),
        "0123456789abcdef".repeat(4)
    );
    id.truncate(64);
    rt.named(&id);
    id
}

#[test]
fn a_root_and_id_longer_than_a_socket_address_work_with_every_command() {
    require_root!();
    // Docker's default: /var/run/docker/runtime-runc/moby/<64 hex>/start.sock
    // is 109 bytes, past the 107 a unix socket address holds.
    let rt = Runtime::with_long_root(100);
    let mut b = Bundle::busybox();
    b.args(&["sleep", "100"]);
    let id = long_id(&rt, "longpath");
    let dir = rt.root().join(&id);
    assert!(dir.join("start.sock").as_os_str().len() > 150);
    rt.create(&b, &id);
    assert_eq!(rt.status(&id), "created");
    rt.ok(&["start", &id]);
    assert_eq!(rt.status(&id), "running");
    let out = rt.output(&["exec", &id, "sh", "-c", "echo in-$0", "exec"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "in-exec\n");
    rt.ok(&["kill", &id, "KILL"]);
    rt.wait_status(&id, "stopped");
    rt.ok(&["delete", &id]);
    assert!(!dir.exists());

    let run_id = long_id(&rt, "longrun");
    b.sh("echo ran; exit 3");
    let (code, out, err) = rt.run(&b, &run_id);
    assert_eq!((code, out.as_str()), (3, "ran\n"), "{err}");
    // run -d, then delete --force of the running container.
    let detached_id = long_id(&rt, "longdetached");
    b.args(&["sleep", "100"]);
    let (ok, _, err) = rt.detached(&["run", "-d", "--bundle", &b.path_str(), &detached_id]);
    assert!(ok, "{err}");
    assert_eq!(rt.status(&detached_id), "running");
    rt.ok(&["delete", "--force", &detached_id]);
    assert!(
        rt.fails(&["state", &detached_id])
            .contains("does not exist")
    );
}

#[test]
fn missing_executable_fails_create_and_leaves_nothing() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.args(&["/no/such/program"]);
    let id = rt.id("noexe");
    let (ok, _, err) = rt.detached(&["create", "--bundle", &b.path_str(), &id]);
    assert!(!ok);
    assert!(err.contains("/no/such/program"), "{err}");
    assert!(!rt.root().join(&id).exists());
}

#[test]
fn failed_runs_leave_no_pid_file_and_no_state() {
    require_root!();
    let rt = Runtime::new();
    // The program cannot be executed (no format the kernel knows): the
    // failure comes after the container was recorded and its start queued.
    let mut b = Bundle::busybox();
    let bad = b.rootfs().join("bin/not-a-program");
    std::fs::write(&bad, b"\x00\x01 not a program").unwrap();
    std::fs::set_permissions(&bad, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    b.args(&["/bin/not-a-program"]);
    // A mount that fails in the init, after "go".
    let mut m = Bundle::busybox();
    m.edit(|c| {
        c["mounts"].as_array_mut().unwrap().push(serde_json::json!({
            "destination": "/mnt", "type": "bind", "source": "/no/such/source",
            "options": ["rbind"]}))
    });
    for (bundle, want) in [(&b, "not-a-program"), (&m, "/no/such/source")] {
        let id = rt.id("fail");
        let pidfile = bundle.path().join("pid");
        let err = rt.fails(&[
            "run",
            "--pid-file",
            pidfile.to_str().unwrap(),
            "--bundle",
            &bundle.path_str(),
            &id,
        ]);
        assert!(err.contains(want), "want {want:?} in: {err}");
        assert!(!pidfile.exists(), "pid file left by: {err}");
        assert!(!rt.root().join(&id).exists(), "state left by: {err}");
    }
}

#[test]
fn duplicate_id_is_refused() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.args(&["sleep", "100"]);
    let id = rt.id("dup");
    rt.create(&b, &id);
    let (ok, _, err) = rt.detached(&["create", "--bundle", &b.path_str(), &id]);
    assert!(!ok && err.contains("already exists"), "{err}");
    assert_eq!(rt.status(&id), "created");
}

#[test]
fn state_shows_annotations_and_status_follows_an_outside_kill() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.args(&["sleep", "100"]);
    b.edit(|c| c["annotations"] = serde_json::json!({"org.example.key": "value"}));
    let id = rt.id("annot");
    rt.create(&b, &id);
    rt.ok(&["start", &id]);
    let st = rt.state(&id);
    assert_eq!(st["annotations"]["org.example.key"], "value");
    assert_eq!(st["ociVersion"], capsa_runtime::spec::OCI_VERSION);
    assert!(st["created"].as_str().unwrap().ends_with('Z'));
    // Killed from outside the runtime: the status must still be right.
    let pid = st["pid"].as_i64().unwrap() as i32;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    rt.wait_status(&id, "stopped");
    assert_eq!(rt.state(&id)["pid"], 0);
    // kill of a stopped container is refused; delete works without --force
    assert!(rt.fails(&["kill", &id, "TERM"]).contains("no process"));
    rt.ok(&["delete", &id]);
}

#[test]
fn kill_takes_names_and_numbers() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    // The shell is PID 1 of its namespace: only handled signals reach it.
    b.sh("trap 'echo usr1 > /tmp/got; exit 0' USR1; while true; do sleep 0.05; done");
    b.edit(|c| c["root"]["readonly"] = false.into());
    let id = rt.id("kill");
    rt.create(&b, &id);
    rt.ok(&["start", &id]);
    assert!(
        rt.fails(&["kill", &id, "NOSUCHSIG"])
            .contains("unknown signal")
    );
    rt.ok(&["kill", &id, "10"]); // SIGUSR1
    rt.wait_status(&id, "stopped");
    assert_eq!(
        std::fs::read_to_string(b.rootfs().join("tmp/got")).unwrap(),
        "usr1\n"
    );
    rt.ok(&["delete", &id]);

    let id2 = rt.id("kill2");
    b.args(&["sleep", "100"]);
    rt.create(&b, &id2);
    rt.ok(&["start", &id2]);
    rt.ok(&["kill", &id2, "SIGKILL"]);
    rt.wait_status(&id2, "stopped");
}

#[test]
fn delete_force_kills_a_running_container() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.args(&["sleep", "100"]);
    let id = rt.id("force");
    rt.create(&b, &id);
    rt.ok(&["start", &id]);
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    rt.ok(&["delete", "--force", &id]);
    assert!(!rt.root().join(&id).exists());
    // the process is gone (or a zombie waiting for its reaper)
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    assert!(stat.is_empty() || stat.contains(") Z "), "{stat}");
}

#[test]
fn list_formats() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.args(&["sleep", "100"]);
    let a = rt.id("lista");
    let c = rt.id("listb");
    rt.create(&b, &a);
    rt.create(&b, &c);
    rt.ok(&["start", &c]);
    let quiet = rt.ok(&["list", "-q"]);
    let mut ids: Vec<&str> = quiet.lines().collect();
    ids.sort();
    let mut want = vec![a.as_str(), c.as_str()];
    want.sort();
    assert_eq!(ids, want);
    let table = rt.ok(&["list"]);
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split_whitespace().collect()).collect();
    let row_a = rows.iter().find(|r| r[0] == a).unwrap();
    assert_eq!(row_a[2], "created");
    let row_c = rows.iter().find(|r| r[0] == c).unwrap();
    assert_eq!(row_c[2], "running");
    let json: serde_json::Value =
        serde_json::from_str(&rt.ok(&["list", "--format", "json"])).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 2);
    assert!(
        json.as_array()
            .unwrap()
            .iter()
            .any(|s| s["id"] == c.as_str() && s["status"] == "running")
    );
}

#[test]
fn run_detach_leaves_it_running() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.args(&["sleep", "100"]);
    let id = rt.id("detach");
    let pidfile = b.path().join("pid");
    let (ok, _, err) = rt.detached(&[
        "run",
        "--detach",
        "--pid-file",
        pidfile.to_str().unwrap(),
        "--bundle",
        &b.path_str(),
        &id,
    ]);
    assert!(ok, "{err}");
    assert_eq!(rt.status(&id), "running");
    let pid: i64 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(rt.state(&id)["pid"], pid);
}

#[test]
fn bad_configs_are_clear_errors_and_leave_nothing() {
    require_root!();
    let rt = Runtime::new();
    type Edit = Box<dyn Fn(&mut serde_json::Value)>;
    let cases: Vec<(Edit, &str)> = vec![
        (Box::new(|c| c["ociVersion"] = "2.0.0".into()), "ociVersion"),
        (
            Box::new(|c| c["linux"]["namespaces"][0]["type"] = "bogus".into()),
            "linux.namespaces[0].type",
        ),
        (
            Box::new(|c| c["root"]["path"] = "missing".into()),
            "root.path",
        ),
        (
            Box::new(|c| c["process"]["capabilities"]["bounding"][0] = "CAP_BOGUS".into()),
            "CAP_BOGUS",
        ),
        (
            Box::new(|c| c["process"]["rlimits"][0]["type"] = "RLIMIT_BOGUS".into()),
            "process.rlimits[0].type",
        ),
        (
            Box::new(|c| c["process"]["apparmorProfile"] = "x".into()),
            "apparmorProfile",
        ),
        (
            Box::new(|c| {
                c["linux"]["seccomp"] = serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
                    "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO",
                        "args": [{"index": 9, "value": 0, "op": "SCMP_CMP_EQ"}]}]})
            }),
            "linux.seccomp.syscalls[0].args[0].index",
        ),
        (
            Box::new(|c| c["linux"]["intelRdt"] = serde_json::json!({"closID": "x"})),
            "linux.intelRdt",
        ),
    ];
    for (edit, want) in cases {
        let mut b = Bundle::busybox();
        b.edit(|c| edit(c));
        let id = rt.id("bad");
        let err = rt.fails(&["run", "--bundle", &b.path_str(), &id]);
        assert!(err.contains(want), "want {want:?} in: {err}");
        assert!(!rt.root().join(&id).exists());
    }
    let b = Bundle::busybox();
    std::fs::write(b.path().join("config.json"), "{\"ociVersion\": ").unwrap();
    let err = rt.fails(&["run", "--bundle", &b.path_str(), "x"]);
    assert!(err.contains("config.json"), "{err}");
    let err = rt.fails(&["run", "--bundle", &b.path_str(), "a/b"]);
    assert!(err.contains("invalid container id"), "{err}");
}
