//! Looking at containers from the host for the process, namespace, console,
//! hook and exec tests: /proc/PID of their processes, and probes of what
//! this build of the runtime sets up inside.
//!
//! Include with `#[path = "common/inspect.rs"] mod inspect;` after `mod common;`.

#![allow(dead_code)]

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::OnceLock;

use crate::common::{Bundle, Runtime};

/// `create` + `start` of the bundle; returns the host pid of its process.
pub fn start(rt: &Runtime, b: &Bundle, id: &str) -> i32 {
    rt.create(b, id);
    let pid = rt.state(id)["pid"].as_i64().unwrap() as i32;
    let (ok, _, err) = rt.detached(&["start", id]);
    assert!(ok, "start {id} failed: {err}");
    pid
}

/// The inode of namespace `name` (mnt, pid, net, ...) of process `pid`
/// ("self" for ours).
pub fn ns_ino(pid: impl std::fmt::Display, name: &str) -> u64 {
    std::fs::metadata(format!("/proc/{pid}/ns/{name}"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/ns/{name}: {e}"))
        .ino()
}

/// Every namespace file name under /proc/PID/ns that a process is in.
pub const NAMESPACES: [&str; 8] = ["user", "mnt", "pid", "net", "ipc", "uts", "cgroup", "time"];

/// A field of /proc/PID/status, trimmed ("Uid", "CapEff", ...).
pub fn status_field(pid: i32, name: &str) -> String {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"))
        .trim()
        .to_string()
}

/// Field `n` of /proc/PID/stat, numbered as in proc(5) (3 is the state).
pub fn stat_field(pid: i32, n: usize) -> String {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    rest[n - 3].to_string()
}

/// The open descriptors of process `pid`, sorted.
pub fn open_fds(pid: i32) -> Vec<i32> {
    let mut fds: Vec<i32> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().parse().unwrap())
        .collect();
    fds.sort();
    fds
}

/// The host pids of all processes in the pid namespace whose inode is `ino`.
pub fn pids_in_pid_ns(ino: u64) -> Vec<i32> {
    let mut pids = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if std::fs::metadata(format!("/proc/{pid}/ns/pid")).is_ok_and(|m| m.ino() == ino)
            && !gone(pid)
        {
            pids.push(pid);
        }
    }
    pids
}

/// Whether process `pid` is gone (or a zombie).
pub fn gone(pid: i32) -> bool {
    if !Path::new(&format!("/proc/{pid}")).exists() {
        return true;
    }
    matches!(stat_field(pid, 3).as_str(), "Z" | "X")
}

/// Runs `capsa-runtime exec ID args...` in the foreground; returns
/// (exit code, stdout, stderr).
pub fn exec(rt: &Runtime, args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["exec"];
    all.extend_from_slice(args);
    let out = rt.output(&all);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// What this build of the runtime mounts inside a container from the
/// default config's mounts.
#[derive(Clone, Copy, Debug)]
pub struct Mounted {
    /// /proc is a procfs.
    pub proc: bool,
    /// /dev/pts is a devpts with a ptmx (terminals work).
    pub devpts: bool,
}

/// Probes (once per test binary) whether the config's mounts are applied.
pub fn mounted() -> Mounted {
    static PROBE: OnceLock<Mounted> = OnceLock::new();
    *PROBE.get_or_init(|| {
        let rt = Runtime::new();
        let mut b = Bundle::busybox();
        b.sh("test -e /proc/self/status && echo proc; test -c /dev/pts/ptmx && echo devpts; true");
        let id = rt.id("probe");
        let out = rt.run_ok(&b, &id);
        Mounted {
            proc: out.lines().any(|l| l == "proc"),
            devpts: out.lines().any(|l| l == "devpts"),
        }
    })
}

/// Prints SKIPPED and returns true when containers get no /proc yet (the
/// config's mounts are applied by the mounts module, merged separately).
pub fn skip_without_proc() -> bool {
    if !mounted().proc {
        eprintln!("SKIPPED: this build mounts no /proc in containers (config mounts not applied)");
        return true;
    }
    false
}

/// Like [`skip_without_proc`], for /dev/pts (needed by terminals).
pub fn skip_without_devpts() -> bool {
    if !mounted().devpts {
        eprintln!(
            "SKIPPED: this build mounts no /dev/pts in containers (config mounts not applied)"
        );
        return true;
    }
    false
}

/// The capability mask of a list of capability numbers.
pub fn cap_mask(caps: &[u32]) -> String {
    format!("{:016x}", caps.iter().fold(0u64, |m, c| m | 1 << c))
}

/// Waits (up to 10 s) until process `pid` runs `sleep` (its script is done).
pub fn wait_sleeping(pid: i32) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default() != "sleep\n" {
        assert!(
            std::time::Instant::now() < deadline,
            "{pid} never reached sleep"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Waits (up to 10 s) until `path` exists.
pub fn wait_for_file(path: &Path) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !path.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "{} did not appear",
            path.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}
