//! Known container escape classes, each tried for real: overwriting the
//! runtime through /proc/PID/exe (CVE-2019-5736), a working directory
//! through a leaked descriptor (CVE-2024-21626), a mount destination swapped
//! for a symlink while create runs (CVE-2021-30465), ptrace of the init
//! before it execs, set-uid binaries under noNewPrivileges, the default
//! capability set, and undoing the masked paths.
//!
//! Related tests elsewhere: `mounts::symlinks_in_the_rootfs_cannot_escape_it`
//! (static symlinks), `mounts::readonly_root_and_masked_and_readonly_paths`,
//! `process::the_process_gets_no_runtime_descriptors`,
//! `process::preserved_fds_are_passed_and_others_closed`,
//! `exec::only_stdio_and_preserved_fds_reach_the_process`.

mod common;
mod support;

use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{Bundle, Runtime, bin};
use serde_json::json;

/// A script the kernel runs with the caller's /proc/self/exe as interpreter.
const PROC_SELF_EXE_SCRIPT: &str = "#!/proc/self/exe\n";

fn write_exe(path: &Path, content: &str) {
    std::fs::write(path, content).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A private copy of the runtime's binary (so that a successful attack
/// could not spoil the other tests) and a command line using it.
struct RuntimeCopy {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
}

impl RuntimeCopy {
    fn new() -> RuntimeCopy {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("capsa-runtime");
        std::fs::copy(bin(), &path).unwrap();
        RuntimeCopy { _dir: dir, path }
    }

    fn cmd(&self, rt: &Runtime, args: &[&str]) -> Command {
        let mut c = Command::new(&self.path);
        c.arg("--root").arg(rt.root()).args(args);
        c.stdin(std::process::Stdio::null());
        c
    }
}

#[test]
fn a_proc_self_exe_script_never_runs_the_runtime_binary() {
    require_root!();
    let rt = Runtime::new();
    let copy = RuntimeCopy::new();
    let before = std::fs::read(&copy.path).unwrap();
    let mut b = Bundle::busybox();
    write_exe(&b.rootfs().join("evil"), PROC_SELF_EXE_SCRIPT);
    b.args(&["/evil", "--help"]);
    // Without pivot_root the host's mounts stay attached below the root:
    // there the runtime's binary would be reachable.
    for no_pivot in [false, true] {
        let id = rt.id("cve-2019-5736");
        let mut args = vec!["run", "--bundle"];
        let bundle = b.path_str();
        args.push(&bundle);
        if no_pivot {
            args.push("--no-pivot");
        }
        args.push(&id);
        let out = copy.cmd(&rt, &args).output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // The interpreter is the sealed trampoline, which cannot run the
        // script: exit 126. The runtime's binary would have printed its help.
        assert_eq!(out.status.code(), Some(126), "no_pivot {no_pivot}: {text}");
        assert!(
            !text.contains("capsa-runtime") && !text.contains("Usage"),
            "{text}"
        );
        assert_eq!(std::fs::read(&copy.path).unwrap(), before);
    }
}

#[test]
fn the_runtime_binary_cannot_be_overwritten_through_proc_pid_exe() {
    require_root!();
    let rt = Runtime::new();
    let copy = RuntimeCopy::new();
    let before = std::fs::read(&copy.path).unwrap();
    let mut b = Bundle::busybox();
    require_program!(b, "exe_grabber");
    write_exe(&b.rootfs().join("evil"), PROC_SELF_EXE_SCRIPT);
    // The attacker: the container's init grabs /proc/PID/exe of every
    // process it sees for 3 s and tries to write through it.
    b.args(&["/bin/exe_grabber", "3", "/tmp/result"]);
    b.edit(|c| c["root"]["readonly"] = json!(false));
    let id = rt.id("cve-2019-5736-race");
    let status = copy
        .cmd(&rt, &["run", "-d", "--bundle", &b.path_str(), &id])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    // The victims: processes exec'd into the container running the script,
    // started by the runtime's binary.
    let result = b.rootfs().join("tmp/result");
    let mut execs = 0;
    while !result.exists() && execs < 200 {
        let out = copy.cmd(&rt, &["exec", &id, "/evil"]).output().unwrap();
        if out.status.code() != Some(126) && result.exists() {
            // The attacker finished (and its container stopped) between
            // the check above and this exec.
            break;
        }
        assert_eq!(out.status.code(), Some(126), "{out:?}");
        execs += 1;
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !result.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the attacker never reported"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(50));
    let report = std::fs::read_to_string(&result).unwrap();
    eprintln!("attacker report after {execs} execs:\n{report}");
    assert_eq!(
        std::fs::read(&copy.path).unwrap(),
        before,
        "the runtime was overwritten"
    );
    for line in report.lines() {
        assert!(
            !line.contains("capsa-runtime"),
            "the container reached the runtime's binary: {line}"
        );
        assert!(
            !(line.starts_with("wrote ") && line.contains("trampoline")),
            "the sealed trampoline was written: {line}"
        );
    }
    // What it could grab of the victims is the sealed trampoline.
    if !report.contains("seen /memfd:capsa-trampoline") {
        eprintln!("note: the attacker never caught a victim between its execs");
    }
}

#[test]
fn a_working_directory_through_a_leaked_descriptor_is_refused() {
    require_root!();
    let rt = Runtime::new();
    // runc's CVE-2024-21626: cwd /proc/self/fd/N with N a descriptor of the
    // runtime that leads to the host (e.g. a cgroup directory).
    for n in 3..16 {
        let mut b = Bundle::busybox();
        b.sh("readlink /proc/self/cwd; ls");
        b.edit(|c| c["process"]["cwd"] = json!(format!("/proc/self/fd/{n}")));
        let id = rt.id("cve-2024-21626");
        let (code, out, err) = rt.run(&b, &id);
        if code == 0 {
            // The descriptor was the container's own (inside its root).
            let cwd = out.lines().next().unwrap_or_default();
            assert!(
                cwd.starts_with('/') && !cwd.contains("cgroup") && !cwd.contains("(unreachable)"),
                "fd {n}: cwd {cwd:?}"
            );
        } else {
            assert!(
                err.contains("process.cwd")
                    || err.contains("working directory")
                    || err.contains("chdir"),
                "fd {n}: {err}"
            );
        }
        assert!(!out.contains("sys/fs/cgroup"), "fd {n}: {out}");
    }
    // The same through exec.
    let mut b = Bundle::busybox();
    b.args(&["sleep", "30"]);
    let id = rt.id("cve-2024-21626-exec");
    let (ok, _, err) = rt.detached(&["run", "-d", "--bundle", &b.path_str(), &id]);
    assert!(ok, "{err}");
    for n in 3..16 {
        let fd = format!("/proc/self/fd/{n}");
        let out = rt.output(&["exec", "--cwd", &fd, &id, "readlink", "/proc/self/cwd"]);
        let cwd = String::from_utf8_lossy(&out.stdout);
        if out.status.success() {
            assert!(
                cwd.starts_with('/') && !cwd.contains("(unreachable)") && !cwd.contains("cgroup"),
                "exec fd {n}: {cwd}"
            );
        }
    }
}

#[test]
fn a_mount_destination_swapped_for_a_symlink_during_create_stays_inside() {
    require_root!();
    let rt = Runtime::new();
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("precious"), "keep").unwrap();
    let mut b = Bundle::busybox();
    let rootfs = b.rootfs();
    // /mnt flips between a directory and a symlink to the host directory,
    // atomically (RENAME_EXCHANGE), as fast as it can while containers are
    // created with mounts beneath it.
    std::fs::create_dir(rootfs.join("mnt")).unwrap();
    symlink(host.path(), rootfs.join("mnt-link")).unwrap();
    b.args(&["true"]);
    b.edit(|c| {
        c["mounts"].as_array_mut().unwrap().extend([
            json!({"destination": "/mnt/a", "type": "tmpfs", "source": "tmpfs"}),
            json!({"destination": "/mnt/b", "type": "bind", "source": "/etc", "options": ["rbind", "ro"]}),
        ]);
    });
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flipper = {
        let stop = stop.clone();
        let rootfs = rootfs.clone();
        std::thread::spawn(move || {
            let mut flips = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = nix::fcntl::renameat2(
                    nix::fcntl::AT_FDCWD,
                    &rootfs.join("mnt"),
                    nix::fcntl::AT_FDCWD,
                    &rootfs.join("mnt-link"),
                    nix::fcntl::RenameFlags::RENAME_EXCHANGE,
                );
                flips += 1;
            }
            flips
        })
    };
    let mut ran = 0;
    let mut refused = 0;
    for _ in 0..40 {
        let id = rt.id("cve-2021-30465");
        let (code, _, err) = rt.run(&b, &id);
        if code == 0 {
            ran += 1;
        } else {
            // Losing the race to a symlink is a clean error, never a mount outside.
            assert!(err.contains("mounts["), "{err}");
            refused += 1;
        }
        assert!(
            !std::fs::read_to_string("/proc/self/mountinfo")
                .unwrap()
                .contains(&host.path().display().to_string()),
            "something was mounted on the host directory"
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let flips = flipper.join().unwrap();
    eprintln!("{ran} runs, {refused} refused, {flips} flips");
    let names: Vec<_> = std::fs::read_dir(host.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["precious"], "the host directory was written");
    assert!(flips > 100, "the race did not run");
}

#[test]
fn the_init_cannot_be_ptraced_before_it_execs() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    require_program!(b, "sysprobe");
    b.args(&["sleep", "30"]);
    b.edit(|c| {
        c["process"]["env"]
            .as_array_mut()
            .unwrap()
            .push(json!("SECRET=capsa"))
    });
    let id = rt.id("ptrace");
    rt.create(&b, &id);
    // A process of the container, while the init still runs the runtime's
    // code: PTRACE_ATTACH, its memory, environment and exe are refused.
    let probe = "sysprobe native 101 16 1; cat /proc/1/environ >/dev/null 2>&1 && echo environ-read; \
                 dd if=/proc/1/mem bs=1 count=1 skip=4194304 >/dev/null 2>&1 && echo mem-read; \
                 readlink /proc/1/exe || echo exe-refused";
    let out = rt.output(&["exec", &id, "sh", "-c", probe]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("ret=-1 errno=1\n"),
        "PTRACE_ATTACH: {text}"
    );
    assert!(
        !text.contains("environ-read") && !text.contains("mem-read"),
        "{text}"
    );
    assert!(text.contains("exe-refused"), "{text}");
    // Once it has exec'd the program it is an ordinary, dumpable process:
    // the same reads now work (the test can see the difference).
    rt.ok(&["start", &id]);
    let out = rt.output(&["exec", &id, "sh", "-c", "tr '\\0' '\\n' < /proc/1/environ"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("SECRET=capsa"),
        "{out:?}"
    );
}

#[test]
fn no_new_privileges_stops_setuid_binaries() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    require_program!(b, "sysprobe");
    // A set-uid root copy of the probe, run by user 1000: geteuid (107).
    let suid = b.rootfs().join("bin/suid-probe");
    std::fs::copy(b.rootfs().join("bin/sysprobe"), &suid).unwrap();
    std::fs::set_permissions(&suid, std::fs::Permissions::from_mode(0o4755)).unwrap();
    b.args(&["/bin/suid-probe", "native", "107"]);
    for (nnp, want) in [(false, "ret=0 errno=0"), (true, "ret=1000 errno=0")] {
        b.edit(|c| {
            c["process"]["user"] = json!({"uid": 1000, "gid": 1000});
            c["process"]["noNewPrivileges"] = json!(nnp);
        });
        let out = rt.run_ok(&b, &rt.id("nnp"));
        assert_eq!(out.trim(), want, "noNewPrivileges {nnp}");
    }
}

#[test]
fn the_default_capabilities_forbid_privileged_operations() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    require_program!(b, "sysprobe");
    let host_name = nix::unistd::gethostname().unwrap();
    // No uts namespace: the hostname is the host's own.
    b.edit(|c| {
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "uts");
        c.as_object_mut().unwrap().remove("hostname");
    });
    b.sh("mount -t tmpfs none /tmp 2>/dev/null && echo mounted; \
         sysprobe native 175 0 0 0; sysprobe native 313 0 0 0; \
         hostname capsa-evil 2>/dev/null && echo renamed; \
         sysprobe native 41 2 3 1; \
         umount /proc/kcore 2>/dev/null && echo unmasked; \
         mount -o remount,rw /proc/sys 2>/dev/null && echo sys-rw; true");
    let out = rt.run_ok(&b, &rt.id("caps"));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines.len(),
        3,
        "mount, hostname or the masks gave way: {out}"
    );
    // init_module, finit_module: EPERM (ENOSYS where the kernel loads no modules).
    for line in &lines[..2] {
        assert!(
            *line == "ret=-1 errno=1" || *line == "ret=-1 errno=38",
            "{out}"
        );
    }
    assert_eq!(
        lines[2], "ret=-1 errno=1",
        "socket(AF_INET, SOCK_RAW, ICMP)"
    );
    assert_eq!(nix::unistd::gethostname().unwrap(), host_name);
    // With CAP_NET_RAW (and the host's network, loopback only) the raw
    // socket is made and busybox ping works; without it ping fails.
    let with_raw = |c: &mut serde_json::Value, raw: bool| {
        for set in ["bounding", "effective", "permitted"] {
            let list = c["process"]["capabilities"][set].as_array_mut().unwrap();
            list.retain(|v| v != "CAP_NET_RAW");
            if raw {
                list.push(json!("CAP_NET_RAW"));
            }
        }
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .retain(|n| n["type"] != "network");
    };
    b.sh(
        "sysprobe native 41 2 3 1; ping -c 1 -W 2 127.0.0.1 >/dev/null 2>&1 && echo ping-ok; true",
    );
    b.edit(|c| with_raw(c, true));
    let out = rt.run_ok(&b, &rt.id("caps-raw"));
    assert!(
        out.starts_with("ret=") && !out.starts_with("ret=-1"),
        "{out}"
    );
    assert!(out.contains("ping-ok"), "{out}");
    b.edit(|c| with_raw(c, false));
    let out = rt.run_ok(&b, &rt.id("caps-noraw"));
    assert!(out.starts_with("ret=-1 errno=1\n"), "{out}");
    assert!(!out.contains("ping-ok"), "ping without CAP_NET_RAW: {out}");
}

#[test]
fn the_copy_trampoline_of_other_architectures_execs_and_reports() {
    // Architectures without the machine-code trampoline exec a sealed copy
    // of the runtime's binary with argv[0] = COPY_MARKER; the binary's main
    // then does the trampoline's work. Here the report descriptor is stdout.
    use std::os::unix::process::CommandExt;
    let marker = capsa_runtime::trampoline::COPY_MARKER;
    let out = Command::new(bin())
        .arg0(marker)
        .args([
            "1",
            "/bin/sh",
            "sh",
            "-c",
            "[ \"$V\" = 2 ] && [ \"$0\" = sh ] && exit 7",
        ])
        .env("V", "2")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(7), "{out:?}");
    assert!(
        out.stdout.is_empty(),
        "nothing reported on success: {out:?}"
    );
    let out = Command::new(bin())
        .arg0(marker)
        .args(["1", "/no/such/program", "x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(127));
    let mut want = vec![b'X'];
    want.extend_from_slice(&(libc::ENOENT as u32).to_le_bytes());
    assert_eq!(out.stdout, want, "the failure is reported with its errno");
}
