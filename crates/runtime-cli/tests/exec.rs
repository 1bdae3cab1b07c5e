//! `exec`: a new process in a running container, in all its namespaces and
//! cgroups, with runc's overrides, `--process`, exit status, detach, and
//! clean failures.

mod common;
#[path = "common/inspect.rs"]
mod inspect;

use common::{Bundle, Runtime};
use inspect::{NAMESPACES, exec, ns_ino, start};
use serde_json::json;

/// A running busybox container whose process sleeps, with every namespace
/// but user (the default config's and a time namespace); returns (bundle,
/// id, pid).
fn sleeping(rt: &Runtime, prefix: &str) -> (Bundle, String, i32) {
    let mut b = Bundle::busybox();
    b.args(&["sleep", "1000"]).edit(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "time"}));
    });
    let id = rt.id(prefix);
    let pid = start(rt, &b, &id);
    (b, id, pid)
}

/// `exec -d --pid-file` of `args`; returns the new process's host pid.
fn exec_detached(rt: &Runtime, id: &str, args: &[&str]) -> i32 {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    let pf = pid_file.display().to_string();
    let mut all = vec!["exec", "-d", "--pid-file", &pf, id];
    all.extend_from_slice(args);
    let (ok, out, err) = rt.detached(&all);
    assert!(ok, "exec -d failed: {err}");
    assert_eq!(out, "", "exec -d prints nothing");
    std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn exec_runs_in_every_namespace_of_the_init() {
    require_root!();
    let rt = Runtime::new();
    let (_b, id, init) = sleeping(&rt, "exns");
    let pid = exec_detached(&rt, &id, &["sleep", "1000"]);
    for ns in NAMESPACES {
        if ns != "user" {
            assert_ne!(ns_ino(init, ns), ns_ino("self", ns), "{ns} is the host's");
        }
        assert_eq!(ns_ino(pid, ns), ns_ino(init, ns), "{ns} namespace differs");
    }
    // The init is pid 1 of the container's pid namespace, the new process
    // another pid in it.
    let nspid = inspect::status_field(pid, "NSpid");
    let nspid: Vec<&str> = nspid.split_whitespace().collect();
    assert_eq!(nspid.len(), 2, "NSpid: {nspid:?}");
    assert_ne!(nspid[1], "1");
    assert_eq!(inspect::status_field(init, "NSpid"), format!("{init}\t1"));
    // Its root is the container's: it sees the rootfs, not the host.
    std::fs::write(_b.rootfs().join("marker"), "in the rootfs").unwrap();
    let (code, out, err) = exec(&rt, &[&id, "cat", "/marker"]);
    assert_eq!((code, out.as_str()), (0, "in the rootfs"), "{err}");
    rt.ok(&["kill", &id, "KILL"]);
}

#[test]
fn exec_joins_a_user_namespace_container() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.args(&["sleep", "1000"]).edit(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "user"}));
        c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
        c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
    });
    let id = rt.id("exuser");
    let init = start(&rt, &b, &id);
    let pid = exec_detached(&rt, &id, &["-u", "1000:1000", "sleep", "1000"]);
    for ns in NAMESPACES {
        assert_eq!(ns_ino(pid, ns), ns_ino(init, ns), "{ns} namespace differs");
    }
    // uid 1000 inside is host uid 201000.
    let uid = inspect::status_field(pid, "Uid");
    assert_eq!(uid.split_whitespace().next(), Some("201000"), "Uid: {uid}");
    let (code, out, err) = exec(&rt, &[&id, "id"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("uid=0(root) gid=0(root)"), "{out}");
}

#[test]
fn ps_in_the_container_shows_the_init_as_pid_1() {
    require_root!();
    if inspect::skip_without_proc() {
        return;
    }
    let rt = Runtime::new();
    let (_b, id, _) = sleeping(&rt, "exps");
    let (code, out, err) = exec(&rt, &[&id, "ps", "-o", "pid,args"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["1", "sleep", "1000"]),
        "{out}"
    );
}

/// Passes once the cgroups module is merged (today its Manager places no
/// process anywhere, so both processes stay in the caller's cgroups).
#[test]
fn exec_joins_the_cgroups_of_the_init() {
    require_root!();
    let rt = Runtime::new();
    let (_b, id, init) = sleeping(&rt, "excg");
    let pid = exec_detached(&rt, &id, &["sleep", "1000"]);
    let cg = |p: i32| std::fs::read_to_string(format!("/proc/{p}/cgroup")).unwrap();
    assert_eq!(cg(pid), cg(init));
}

#[test]
fn env_cwd_and_user_overrides() {
    require_root!();
    let rt = Runtime::new();
    let (_b, id, _) = sleeping(&rt, "exov");
    let (code, out, err) = exec(
        &rt,
        &[
            "-e",
            "FOO=bar",
            "--env",
            "PATH=/bin",
            "--cwd",
            "/tmp",
            "-u",
            "1000:1000",
            "-g",
            "5",
            "--additional-gids",
            "65534",
            &id,
            "sh",
            "-c",
            "echo $FOO; echo $PATH; pwd; id -u; id -g; id -G; echo $TERM",
        ],
    );
    assert_eq!(code, 0, "{err}");
    // The config's env is kept (TERM) and PATH is replaced, not duplicated.
    assert_eq!(out, "bar\n/bin\n/tmp\n1000\n1000\n1000 5 65534\nxterm\n");
    // Only the uid given: the configured gid stays.
    let (code, out, err) = exec(&rt, &["-u", "1000", &id, "sh", "-c", "id -u; id -g"]);
    assert_eq!((code, out.as_str()), (0, "1000\n0\n"), "{err}");
}

#[test]
fn caps_and_no_new_privs_flags() {
    require_root!();
    let rt = Runtime::new();
    let (_b, id, _) = sleeping(&rt, "excap");
    let plain = exec_detached(&rt, &id, &["sleep", "1000"]);
    let more = exec_detached(
        &rt,
        &id,
        &["--cap", "CAP_SYS_ADMIN", "--no-new-privs", "sleep", "1000"],
    );
    // The default config has CAP_AUDIT_WRITE (29), CAP_KILL (5),
    // CAP_NET_BIND_SERVICE (10); CAP_SYS_ADMIN is 21.
    let base = inspect::cap_mask(&[29, 5, 10]);
    let added = inspect::cap_mask(&[29, 5, 10, 21]);
    for field in ["CapBnd", "CapEff", "CapPrm"] {
        assert_eq!(inspect::status_field(plain, field), base, "{field}");
        assert_eq!(inspect::status_field(more, field), added, "{field}");
    }
    assert_eq!(
        inspect::status_field(more, "CapInh"),
        inspect::cap_mask(&[])
    );
    assert_eq!(inspect::status_field(more, "NoNewPrivs"), "1");
    let msg = exec(&rt, &["--cap", "CAP_NOPE", &id, "true"]).2;
    assert!(msg.contains("CAP_NOPE"), "{msg}");
}

#[test]
fn process_file_describes_the_process() {
    require_root!();
    let rt = Runtime::new();
    let (b, id, _) = sleeping(&rt, "exproc");
    let file = b.path().join("process.json");
    let write = |v: serde_json::Value| std::fs::write(&file, v.to_string()).unwrap();
    let f = file.display().to_string();
    write(json!({
        "args": ["sh", "-c", "echo $ONLY; pwd; id -u; exit 3"],
        "env": ["ONLY=from-file", "PATH=/bin"],
        "cwd": "/tmp",
        "user": {"uid": 1000, "gid": 1000}
    }));
    let (code, out, err) = exec(&rt, &["--process", &f, &id]);
    assert_eq!(
        (code, out.as_str()),
        (3, "from-file\n/tmp\n1000\n"),
        "{err}"
    );

    // Flags that would change the process cannot be combined with it.
    let msg = exec(&rt, &["--process", &f, "--env", "A=1", &id]).2;
    assert!(
        msg.contains("--env cannot be combined with --process"),
        "{msg}"
    );
    let msg = exec(&rt, &["--process", &f, &id, "true"]).2;
    assert!(msg.contains("cannot be given with --process"), "{msg}");

    // Fields this runtime cannot honour are refused, naming them.
    write(
        json!({"args": ["true"], "cwd": "/", "user": {"uid": 0, "gid": 0},
        "apparmorProfile": "unconfined-x"}),
    );
    let msg = exec(&rt, &["--process", &f, &id]).2;
    assert!(msg.contains("apparmorProfile"), "{msg}");
    write(
        json!({"args": ["true"], "cwd": "/", "user": {"uid": 0, "gid": 0},
        "selinuxLabel": "system_u:system_r:container_t:s0"}),
    );
    let msg = exec(&rt, &["--process", &f, &id]).2;
    assert!(msg.contains("selinuxLabel"), "{msg}");
    // Scheduling attributes apply to exec'd processes too.
    write(
        json!({"args": ["sleep", "1000"], "cwd": "/", "user": {"uid": 0, "gid": 0},
        "scheduler": {"policy": "SCHED_IDLE"},
        "ioPriority": {"class": "IOPRIO_CLASS_IDLE", "priority": 0}}),
    );
    let pid = exec_detached(&rt, &id, &["--process", &f]);
    // proc(5) field 41, the policy: SCHED_IDLE = 5.
    assert_eq!(inspect::stat_field(pid, 41), "5");
    // A malformed file names the field.
    write(json!({"args": "true", "cwd": "/", "user": {"uid": 0, "gid": 0}}));
    let msg = exec(&rt, &["--process", &f, &id]).2;
    assert!(msg.contains("args"), "{msg}");
}

#[test]
fn exit_status_is_returned() {
    require_root!();
    let rt = Runtime::new();
    let (_b, id, _) = sleeping(&rt, "exst");
    let (code, out, _) = exec(&rt, &[&id, "sh", "-c", "echo out; exit 42"]);
    assert_eq!((code, out.as_str()), (42, "out\n"));
    let (code, _, _) = exec(&rt, &[&id, "sh", "-c", "kill -9 $$"]);
    assert_eq!(code, 128 + 9);
    let (code, _, _) = exec(&rt, &[&id, "true"]);
    assert_eq!(code, 0);
}

#[test]
fn signals_are_forwarded_to_the_process() {
    require_root!();
    let rt = Runtime::new();
    let (_b, id, _) = sleeping(&rt, "exsig");
    let mut child = rt.cmd(&["exec", &id, "sleep", "1000"]).spawn().unwrap();
    // Wait until the sleep runs in the container, then signal exec itself.
    let init_pidns = ns_ino(rt.state(&id)["pid"].as_i64().unwrap(), "pid");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while inspect::pids_in_pid_ns(init_pidns).len() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "exec'd sleep never ran"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(128 + 15));
}

#[test]
fn detach_writes_the_pid_file_and_returns() {
    require_root!();
    let rt = Runtime::new();
    let (_b, id, init) = sleeping(&rt, "exdet");
    let pid = exec_detached(&rt, &id, &["sleep", "1000"]);
    assert!(!inspect::gone(pid));
    assert_eq!(ns_ino(pid, "pid"), ns_ino(init, "pid"));
    assert_eq!(
        std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap(),
        "sleep\n"
    );
    // Killing the container's processes (kill --all once cgroups are in;
    // here directly) leaves the container running.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    assert_eq!(rt.status(&id), "running");
}

#[test]
fn exec_in_a_stopped_container_is_refused() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.args(&["true"]);
    let id = rt.id("exstop");
    start(&rt, &b, &id);
    rt.wait_status(&id, "stopped");
    let (code, _, err) = exec(&rt, &[&id, "true"]);
    assert_ne!(code, 0);
    assert!(err.contains("stopped"), "{err}");
    let err = exec(&rt, &["no-such-container", "true"]).2;
    assert!(err.contains("does not exist"), "{err}");
}

#[test]
fn exec_in_a_paused_container_needs_ignore_paused() {
    require_root!();
    let rt = Runtime::new();
    let (_b, id, _) = sleeping(&rt, "expause");
    rt.ok(&["pause", &id]);
    if rt.status(&id) != "paused" {
        eprintln!("SKIPPED: this build cannot freeze containers (cgroups not merged)");
        return;
    }
    let (code, _, err) = exec(&rt, &[&id, "true"]);
    assert_ne!(code, 0);
    assert!(
        err.contains("paused") && err.contains("--ignore-paused"),
        "{err}"
    );
    // Allowed with the flag; the process starts frozen and runs once resumed.
    let pid = exec_detached(&rt, &id, &["--ignore-paused", "sleep", "1000"]);
    rt.ok(&["resume", &id]);
    assert!(!inspect::gone(pid));
}

#[test]
fn exec_in_a_created_container_works_as_in_runc() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.args(&["sleep", "1000"]);
    let id = rt.id("excre");
    rt.create(&b, &id);
    let (code, out, err) = exec(&rt, &[&id, "echo", "hi"]);
    assert_eq!((code, out.as_str()), (0, "hi\n"), "{err}");
    assert_eq!(rt.status(&id), "created");
}

#[test]
fn failures_are_reported_and_leave_no_process() {
    require_root!();
    let rt = Runtime::new();
    let (_b, id, init) = sleeping(&rt, "exfail");
    let pidns = ns_ino(init, "pid");
    let (code, _, err) = exec(&rt, &[&id, "nosuchprog"]);
    assert_ne!(code, 0);
    // (On stderr as runc's log record, the quotes escaped.)
    assert!(
        err.contains(r#"exec: \"nosuchprog\": executable file not found in $PATH"#),
        "{err}"
    );
    assert!(!err.contains("exec failed: exec failed"), "{err}");
    let (code, _, err) = exec(&rt, &[&id, "/bin/nosuchprog"]);
    assert_ne!(code, 0);
    assert!(err.contains("/bin/nosuchprog"), "{err}");
    let (code, _, err) = exec(&rt, &["--cwd", "/no/such/dir", &id, "true"]);
    assert_ne!(code, 0);
    assert!(err.contains("/no/such/dir"), "{err}");
    let (code, _, err) = exec(&rt, &["-u", "nobody", &id, "true"]);
    assert_ne!(code, 0);
    assert!(err.contains("nobody"), "{err}");
    let (code, _, err) = exec(&rt, &[&id]);
    assert_ne!(code, 0);
    assert!(err.contains("command is required"), "{err}");
    // Only the init is left in the container's pid namespace.
    assert_eq!(inspect::pids_in_pid_ns(pidns), vec![init]);
    assert_eq!(rt.status(&id), "running");
}

#[test]
fn only_stdio_and_preserved_fds_reach_the_process() {
    require_root!();
    let rt = Runtime::new();
    let (b, id, _) = sleeping(&rt, "exfd");
    let pid = exec_detached(&rt, &id, &["sleep", "1000"]);
    assert_eq!(inspect::open_fds(pid), [0, 1, 2]);

    // Descriptor 3 is passed with --preserve-fds 1, descriptor 4 is not.
    let f3 = b.path().join("three");
    let f4 = b.path().join("four");
    std::fs::write(&f3, "preserved\n").unwrap();
    std::fs::write(&f4, "leaked\n").unwrap();
    let script = format!(
        "exec {} --root {} exec --preserve-fds 1 {id} sh -c 'cat <&3; cat <&4' 3<{} 4<{}",
        common::bin(),
        rt.root().display(),
        f3.display(),
        f4.display()
    );
    let out = std::process::Command::new("sh")
        .args(["-c", &script])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stdout, "preserved\n", "stderr: {stderr}");
    assert!(!stdout.contains("leaked"));
    assert_ne!(out.status.code(), Some(0), "reading fd 4 must fail");
}

#[test]
fn terminal_is_relayed_in_the_foreground() {
    require_root!();
    if inspect::skip_without_devpts() {
        return;
    }
    let rt = Runtime::new();
    let (_b, id, _) = sleeping(&rt, "extty");
    let pty = nix::pty::openpty(None, None).unwrap();
    let slave = std::fs::File::from(pty.slave);
    let mut child = rt
        .cmd(&["exec", "-t", &id, "sh", "-c", "tty; echo done"])
        .stdin(slave.try_clone().unwrap())
        .stdout(slave.try_clone().unwrap())
        .stderr(slave)
        .spawn()
        .unwrap();
    let status = child.wait().unwrap();
    let out = read_all(pty.master);
    assert!(status.success(), "{out}");
    assert!(out.contains("/dev/pts/"), "{out}");
    assert!(out.contains("done"), "{out}");
    // A detached exec with a terminal needs a console socket.
    let (ok, _, err) = rt.detached(&["exec", "-d", "-t", &id, "true"]);
    assert!(!ok && err.contains("--console-socket"), "{err}");
}

/// Reads what is buffered on a pty master (until EIO or nothing is left).
fn read_all(master: std::os::fd::OwnedFd) -> String {
    use std::io::Read;
    let mut f = std::fs::File::from(master);
    nix::fcntl::fcntl(
        &f,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    )
    .unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = f.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&out).into_owned()
}
