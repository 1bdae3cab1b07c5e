//! The container's process as config.json describes it: args, env, cwd,
//! user, umask, rlimits, capabilities, no_new_privileges, oomScoreAdj,
//! sysctl, personality and descriptors, checked from inside the container
//! and from the host (/proc/PID of the container's process).

mod common;
#[path = "common/inspect.rs"]
mod inspect;

use common::{Bundle, Runtime};
use inspect::{cap_mask, start, stat_field, status_field};
use serde_json::json;

#[test]
fn args_env_and_cwd() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.args(&[
        "sh",
        "-c",
        r#"echo "$0|$1|$2"; echo "$GREETING"; pwd"#,
        "zero",
        "one two",
        "",
    ])
    .edit(|c| {
        c["process"]["env"] = json!(["PATH=/bin", "GREETING=hello world"]);
        c["process"]["cwd"] = json!("/home/user");
    });
    let id = rt.id("args");
    assert_eq!(
        rt.run_ok(&b, &id),
        "zero|one two|\nhello world\n/home/user\n"
    );
}

#[test]
fn user_groups_and_umask() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.sh("id -u; id -g; id -G; umask; touch /tmp/f; stat -c %a /tmp/f; exec sleep 1000")
        .edit(|c| {
            c["root"]["readonly"] = json!(false);
            c["process"]["user"] =
                json!({"uid": 1000, "gid": 1001, "additionalGids": [5, 65534], "umask": 0o027});
        });
    let id = rt.id("user");
    let pid = start(&rt, &b, &id);
    inspect::wait_sleeping(pid);
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(b.rootfs().join("tmp/f")).unwrap();
    assert_eq!((m.uid(), m.gid()), (1000, 1001));
    // umask 027: 0666 & ~027 = 0640
    assert_eq!(m.mode() & 0o777, 0o640);
    assert_eq!(status_field(pid, "Uid"), "1000\t1000\t1000\t1000");
    assert_eq!(status_field(pid, "Gid"), "1001\t1001\t1001\t1001");
    assert_eq!(status_field(pid, "Groups"), "5 65534");
    assert_eq!(status_field(pid, "Umask"), "0027");
}

#[test]
fn user_output_inside() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.sh("id -u; id -g; id -G; umask").edit(|c| {
        c["process"]["user"] =
            json!({"uid": 1000, "gid": 1001, "additionalGids": [5, 65534], "umask": 0o027});
    });
    let id = rt.id("userin");
    assert_eq!(rt.run_ok(&b, &id), "1000\n1001\n1001 5 65534\n0027\n");
}

#[test]
fn rlimit_below_the_hard_limit_applies() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.sh("ulimit -Sn; ulimit -Hn; ulimit -Sc").edit(|c| {
        c["process"]["rlimits"] = json!([
            {"type": "RLIMIT_NOFILE", "soft": 512, "hard": 1024},
            {"type": "RLIMIT_CORE", "soft": 0, "hard": 0}
        ]);
    });
    let id = rt.id("rlim");
    assert_eq!(rt.run_ok(&b, &id), "512\n1024\n0\n");
}

#[test]
fn rlimit_above_the_hosts_hard_limit_is_an_error() {
    require_root!();
    let (_, hard) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
    if hard == nix::sys::resource::RLIM_INFINITY || caps_has_sys_resource() {
        eprintln!("SKIPPED: the nofile hard limit can be raised here");
        return;
    }
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    let want = hard + 1000;
    b.edit(|c| {
        c["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": want}]);
    });
    let id = rt.id("rlimhi");
    let (code, _, err) = rt.run(&b, &id);
    assert_ne!(code, 0);
    assert!(err.contains("process.rlimits[0]"), "{err}");
    assert!(err.contains("RLIMIT_NOFILE"), "{err}");
    assert!(err.contains(&format!("hard limit {want}")), "{err}");
    assert!(!rt.root().join(&id).exists());

    // A soft limit above the hard one is refused too.
    b.edit(|c| {
        c["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 2048, "hard": 1024}]);
    });
    let (code, _, err) = rt.run(&b, &id);
    assert_ne!(code, 0);
    assert!(
        err.contains("soft limit 2048 is above hard limit 1024"),
        "{err}"
    );
}

/// Whether we hold CAP_SYS_RESOURCE (then rlimits can be raised).
fn caps_has_sys_resource() -> bool {
    let eff = u64::from_str_radix(&status_field(std::process::id() as i32, "CapEff"), 16).unwrap();
    eff & (1 << 24) != 0
}

/// Capability numbers used below.
const CHOWN: u32 = 0;
const KILL: u32 = 5;
const NET_BIND_SERVICE: u32 = 10;
const NET_RAW: u32 = 13;
const SYS_CHROOT: u32 = 18;

#[test]
fn capability_sets_are_applied_exactly_for_root() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    // For uid 0, exec makes permitted and effective = bounding | inheritable,
    // so a config that is exact for root has them equal.
    let bnd = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW", "CAP_SYS_CHROOT"];
    b.args(&["sleep", "1000"]).edit(|c| {
        c["process"]["capabilities"] = json!({
            "bounding": bnd, "effective": bnd, "permitted": bnd,
            "inheritable": ["CAP_NET_RAW", "CAP_CHOWN"],
            "ambient": ["CAP_NET_RAW"]
        });
    });
    let id = rt.id("capsroot");
    let pid = start(&rt, &b, &id);
    let all = cap_mask(&[CHOWN, KILL, NET_RAW, SYS_CHROOT]);
    assert_eq!(status_field(pid, "CapBnd"), all);
    assert_eq!(status_field(pid, "CapEff"), all);
    assert_eq!(status_field(pid, "CapPrm"), all);
    assert_eq!(status_field(pid, "CapInh"), cap_mask(&[NET_RAW, CHOWN]));
    assert_eq!(status_field(pid, "CapAmb"), cap_mask(&[NET_RAW]));
}

#[test]
fn capability_sets_are_applied_exactly_for_a_user() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    // A non-root process keeps across exec only what is ambient; an ambient
    // capability that is not also inheritable is not raised (CAP_KILL).
    b.args(&["sleep", "1000"]).edit(|c| {
        c["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        c["process"]["capabilities"] = json!({
            "bounding": ["CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_KILL", "CAP_CHOWN"],
            "effective": ["CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_KILL"],
            "permitted": ["CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_KILL"],
            "inheritable": ["CAP_NET_BIND_SERVICE", "CAP_NET_RAW"],
            "ambient": ["CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_KILL"]
        });
    });
    let id = rt.id("capsuser");
    let pid = start(&rt, &b, &id);
    let amb = cap_mask(&[NET_BIND_SERVICE, NET_RAW]);
    assert_eq!(
        status_field(pid, "CapBnd"),
        cap_mask(&[NET_BIND_SERVICE, NET_RAW, KILL, CHOWN])
    );
    assert_eq!(status_field(pid, "CapInh"), amb);
    assert_eq!(status_field(pid, "CapAmb"), amb);
    assert_eq!(status_field(pid, "CapPrm"), amb);
    assert_eq!(status_field(pid, "CapEff"), amb);
}

#[test]
fn empty_capabilities_leave_none() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.args(&["sleep", "1000"]).edit(|c| {
        c["process"]["capabilities"] = json!({});
    });
    let id = rt.id("capsnone");
    let pid = start(&rt, &b, &id);
    for f in ["CapBnd", "CapEff", "CapPrm", "CapInh", "CapAmb"] {
        assert_eq!(status_field(pid, f), cap_mask(&[]), "{f}");
    }
}

#[test]
fn scheduler_and_io_priority() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.args(&["sleep", "1000"]).edit(|c| {
        c["process"]["scheduler"] = json!({"policy": "SCHED_BATCH", "nice": 7});
        c["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_BE", "priority": 6});
    });
    let id = rt.id("sched");
    let pid = start(&rt, &b, &id);
    // proc(5): field 19 is nice, 41 the policy (SCHED_BATCH = 3).
    assert_eq!(stat_field(pid, 19), "7");
    assert_eq!(stat_field(pid, 41), "3");
    match std::process::Command::new("ionice")
        .args(["-p", &pid.to_string()])
        .output()
    {
        Ok(out) => assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "best-effort: prio 6"
        ),
        Err(_) => eprintln!("SKIPPED (the I/O priority check): ionice is missing"),
    }

    // What is out of range or refused by the kernel names the field.
    for (sched, want) in [
        (
            json!({"policy": "SCHED_FIFO", "priority": 0}),
            "process.scheduler",
        ),
        (
            json!({"policy": "SCHED_OTHER", "nice": 40}),
            "process.scheduler.nice",
        ),
    ] {
        let mut b = Bundle::busybox();
        b.edit(|c| c["process"]["scheduler"] = sched.clone());
        let id = rt.id("schedbad");
        let (code, _, err) = rt.run(&b, &id);
        assert_ne!(code, 0, "{sched}");
        assert!(err.contains(want), "{sched}: {err}");
    }
    let mut b = Bundle::busybox();
    b.edit(|c| c["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_BE", "priority": 9}));
    let id = rt.id("iobad");
    let (code, _, err) = rt.run(&b, &id);
    assert_ne!(code, 0);
    assert!(err.contains("process.ioPriority.priority"), "{err}");
}

#[test]
fn a_capability_the_runtime_lacks_is_named() {
    // As runc, a capability the runtime itself does not hold (a host that
    // withholds it) cannot be granted; the error says which.
    require_root!();
    if caps_has_sys_resource() {
        eprintln!("SKIPPED: this host withholds no capability from us (CAP_SYS_RESOURCE is held)");
        return;
    }
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.edit(|c| {
        for set in ["bounding", "effective", "permitted"] {
            c["process"]["capabilities"][set] = json!(["CAP_KILL", "CAP_SYS_RESOURCE"]);
        }
    });
    let (code, _, err) = rt.run(&b, &rt.id("caplacking"));
    assert_ne!(code, 0);
    assert!(
        err.contains("process.capabilities: CAP_SYS_RESOURCE asked for, but the runtime itself does not hold it"),
        "{err}"
    );
}

#[test]
fn unknown_capabilities_are_left_out_with_a_warning() {
    // As runc: a capability this runtime (or kernel) does not know is not
    // granted, and the container runs with the rest.
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.sh("grep CapBnd /proc/self/status");
    b.edit(|c| {
        c["process"]["capabilities"]["bounding"] = json!(["CAP_KILL", "CAP_BOGUS"]);
    });
    let id = rt.id("capbad");
    let (code, out, err) = rt.run(&b, &id);
    assert_eq!(code, 0, "{err}");
    // CAP_KILL alone: bit 5.
    assert!(out.contains("0000000000000020"), "{out}");
    assert!(
        err.contains("level=warning") && err.contains("CAP_BOGUS"),
        "{err}"
    );
}

#[test]
fn no_new_privileges_and_oom_score_adj() {
    require_root!();
    let rt = Runtime::new();
    for (nnp, want) in [(true, "1"), (false, "0")] {
        let mut b = Bundle::busybox();
        b.args(&["sleep", "1000"]).edit(|c| {
            c["process"]["noNewPrivileges"] = json!(nnp);
            c["process"]["oomScoreAdj"] = json!(123);
        });
        let id = rt.id("nnp");
        let pid = start(&rt, &b, &id);
        assert_eq!(status_field(pid, "NoNewPrivs"), want);
        assert_eq!(
            std::fs::read_to_string(format!("/proc/{pid}/oom_score_adj")).unwrap(),
            "123\n"
        );
    }
}

#[test]
fn sysctls_are_set_in_the_containers_namespaces() {
    require_root!();
    if inspect::skip_without_proc() {
        return;
    }
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.args(&["sleep", "1000"]).edit(|c| {
        c["linux"]["sysctl"] = json!({
            "kernel.shm_rmid_forced": "1",
            "net.ipv4.ip_forward": "1"
        });
    });
    let host = |key: &str| std::fs::read_to_string(format!("/proc/sys/{key}")).unwrap();
    let host_before = (host("kernel/shm_rmid_forced"), host("net/ipv4/ip_forward"));
    let id = rt.id("sysctl");
    let pid = start(&rt, &b, &id);
    let read_in = |ns: &str, key: &str| {
        let out = std::process::Command::new("nsenter")
            .arg(format!("--{ns}=/proc/{pid}/ns/{ns}"))
            .args(["cat", &format!("/proc/sys/{key}")])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(read_in("ipc", "kernel/shm_rmid_forced"), "1");
    assert_eq!(read_in("net", "net/ipv4/ip_forward"), "1");
    // The host's values are untouched (they are per namespace).
    assert_eq!(host("kernel/shm_rmid_forced"), host_before.0);
    assert_eq!(host("net/ipv4/ip_forward"), host_before.1);

    // A key that does not exist names the field.
    let mut b = Bundle::busybox();
    b.edit(|c| c["linux"]["sysctl"] = json!({"kernel.no_such_key": "1"}));
    let id = rt.id("sysctlbad");
    let (code, _, err) = rt.run(&b, &id);
    assert_ne!(code, 0);
    assert!(err.contains("linux.sysctl.kernel.no_such_key"), "{err}");
}

#[test]
fn personality_linux32() {
    require_root!();
    let host32 = std::process::Command::new("setarch")
        .args(["linux32", "uname", "-m"])
        .output();
    let Ok(host32) = host32 else {
        eprintln!("SKIPPED: setarch is missing");
        return;
    };
    let want = String::from_utf8_lossy(&host32.stdout).into_owned();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.args(&["uname", "-m"])
        .edit(|c| c["linux"]["personality"] = json!({"domain": "LINUX32"}));
    let id = rt.id("pers");
    let got = rt.run_ok(&b, &id);
    assert_eq!(got, want);
    let native = String::from_utf8_lossy(
        &std::process::Command::new("uname")
            .arg("-m")
            .output()
            .unwrap()
            .stdout,
    )
    .into_owned();
    assert_ne!(got, native, "LINUX32 must change the machine name");
}

#[test]
fn preserved_fds_are_passed_and_others_closed() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.sh("cat <&3; cat <&4");
    let f3 = b.path().join("three");
    let f4 = b.path().join("four");
    std::fs::write(&f3, "preserved\n").unwrap();
    std::fs::write(&f4, "leaked\n").unwrap();
    let id = rt.id("pfd");
    let script = format!(
        "exec {} --root {} run --preserve-fds 1 --bundle {} {id} 3<{} 4<{}",
        common::bin(),
        rt.root().display(),
        b.path_str(),
        f3.display(),
        f4.display()
    );
    let out = std::process::Command::new("sh")
        .args(["-c", &script])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout,
        "preserved\n",
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_ne!(out.status.code(), Some(0), "reading fd 4 must fail");
}

#[test]
fn the_process_gets_no_runtime_descriptors() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.args(&["sleep", "1000"]);
    let id = rt.id("nofd");
    let pid = start(&rt, &b, &id);
    assert_eq!(inspect::open_fds(pid), [0, 1, 2]);
    // Also with a log file and debug logging, which open descriptors of their own.
    let mut b = Bundle::busybox();
    b.args(&["sleep", "1000"]);
    let id = rt.id("nofdlog");
    let log = b.path().join("log");
    let (ok, _, err) = rt.detached(&[
        "--debug",
        "--log",
        &log.display().to_string(),
        "create",
        "--bundle",
        &b.path_str(),
        &id,
    ]);
    assert!(ok, "{err}");
    let pid = rt.state(&id)["pid"].as_i64().unwrap() as i32;
    rt.ok(&["start", &id]);
    assert_eq!(inspect::open_fds(pid), [0, 1, 2]);
}

#[test]
fn env_errors_name_the_field() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.edit(|c| c["process"]["env"] = json!(["PATH=/bin", "NOEQUALS"]));
    let id = rt.id("envbad");
    let (code, _, err) = rt.run(&b, &id);
    assert_ne!(code, 0);
    assert!(err.contains("process.env[1]"), "{err}");
    assert!(err.contains("NOEQUALS"), "{err}");
    b.edit(|c| c["process"]["cwd"] = json!("relative/dir"));
    let (code, _, err) = rt.run(&b, &id);
    assert_ne!(code, 0);
    assert!(err.contains("process.cwd"), "{err}");
    assert!(!rt.root().join(&id).exists());
}
