//! Harness of the container tests: a private store with busybox loaded,
//! `capsa` run against it, and the checks that nothing leaked. Dropping an
//! [`Engine`] removes every container it made (killing what runs), then
//! its mounts and directories, even when the test failed.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{Image, Root, busybox_layer, docker_archive};

/// A store with `busybox:latest` in it.
pub struct Engine {
    /// The store (and scratch space).
    pub root: Root,
}

impl Default for Engine {
    fn default() -> Self {
        Self::new()
    }
}

/// The busybox image the tests run (`sh` as command).
pub fn busybox_image() -> Image {
    Image::new(vec![busybox_layer().tar()], &["busybox:latest"])
}

impl Engine {
    /// A new store with busybox loaded.
    pub fn new() -> Engine {
        let root = Root::new();
        root.load(&docker_archive(&[busybox_image()]));
        Engine { root }
    }

    /// The store root given to `--root`.
    pub fn store(&self) -> PathBuf {
        self.root.path().join("store")
    }

    /// A `capsa --root <store> ARGS` command (stdin null).
    pub fn cmd(&self, args: &[&str]) -> Command {
        self.root.cmd(args)
    }

    /// Runs capsa and returns its output.
    pub fn run(&self, args: &[&str]) -> Output {
        self.root.run(args)
    }

    /// Runs capsa, asserts success and returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        self.root.ok(args)
    }

    /// Runs capsa, asserts exit status `code`, returns stderr.
    pub fn fails_with(&self, args: &[&str], code: i32) -> String {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(code),
            "capsa {args:?}: expected exit {code}\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// `run -d ARGS` → the container id.
    pub fn run_d(&self, args: &[&str]) -> String {
        let mut a = vec!["run", "-d"];
        a.extend_from_slice(args);
        self.ok(&a).trim().to_string()
    }

    /// `inspect` of one container.
    pub fn inspect(&self, name: &str) -> Value {
        let v: Value =
            serde_json::from_str(&self.ok(&["inspect", "--type", "container", name])).unwrap();
        v[0].clone()
    }

    /// A field of `inspect` through a Go template.
    pub fn field(&self, name: &str, template: &str) -> String {
        self.ok(&["inspect", "-f", template, name])
            .trim()
            .to_string()
    }

    /// Every container id (`ps -aq --no-trunc`).
    pub fn ids(&self) -> Vec<String> {
        self.ok(&["ps", "-aq", "--no-trunc"])
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Waits until `cond` holds, at most `secs`; panics with `what` otherwise.
    pub fn wait_until(&self, secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !cond() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The container's status.
    pub fn status(&self, name: &str) -> String {
        self.field(name, "{{.State.Status}}")
    }

    /// Processes whose command line mentions this store (monitors and
    /// capsa commands).
    pub fn own_processes(&self) -> Vec<(i32, String)> {
        let store = self.store().display().to_string();
        processes_matching(|cmd| cmd.contains(&store))
    }

    /// Mount points beneath the store.
    pub fn mounts(&self) -> Vec<PathBuf> {
        self.root.mounts()
    }

    /// Cgroup directories (in any hierarchy) named after container `id`.
    pub fn cgroups_of(id: &str) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut stack = vec![PathBuf::from("/sys/fs/cgroup")];
        while let Some(d) = stack.pop() {
            let Ok(rd) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in rd.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    let name = e.file_name().to_string_lossy().into_owned();
                    if name == id || name == format!("capsa-{id}") {
                        out.push(e.path());
                    } else if d.components().count() < 9 {
                        stack.push(e.path());
                    }
                }
            }
        }
        out
    }

    /// Asserts nothing of the given containers is left: no mount beneath the
    /// store, no cgroup, no monitor or capsa process, no directory.
    pub fn assert_clean(&self, ids: &[String]) {
        let mounts: Vec<PathBuf> = self
            .mounts()
            .into_iter()
            .filter(|m| {
                ids.iter()
                    .any(|id| m.to_string_lossy().contains(id.as_str()))
            })
            .collect();
        assert!(mounts.is_empty(), "leaked mounts: {mounts:?}");
        for id in ids {
            assert!(
                Self::cgroups_of(id).is_empty(),
                "leaked cgroups of {id}: {:?}",
                Self::cgroups_of(id)
            );
            assert!(
                !self.store().join("containers").join(id).exists(),
                "leaked directory of {id}"
            );
            assert!(
                !self.store().join("rootfs").join(id).exists(),
                "leaked rootfs of {id}"
            );
            let procs = processes_matching(|c| c.contains(id.as_str()));
            assert!(procs.is_empty(), "leaked processes of {id}: {procs:?}");
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        // Everything this store runs goes, even when the test failed.
        let ids: Vec<String> = self
            .run(&["ps", "-aq", "--no-trunc"])
            .stdout
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect();
        if !ids.is_empty() {
            let mut args = vec!["rm", "-f", "-v"];
            args.extend(ids.iter().map(String::as_str));
            let _ = self
                .cmd(&args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        for (pid, _) in self.own_processes() {
            let _ =
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL);
        }
        for id in &ids {
            for cg in Self::cgroups_of(id) {
                let _ = std::fs::remove_dir(cg);
            }
        }
    }
}

/// Whether the host is pure cgroup v2 (/sys/fs/cgroup is the cgroup2 root).
pub fn cgroup_v2_host() -> bool {
    std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// The trimmed content of a cgroup file of container `id`: `v1_file` in
/// its cgroup of the v1 hierarchy holding `controller` where the host
/// mounts one (/sys/fs/cgroup/cpu may be a link to cpu,cpuacct), else
/// `v2_file` in its cgroup2 directory; None where there is no such file.
pub fn cgroup_file(id: &str, controller: &str, v1_file: &str, v2_file: &str) -> Option<String> {
    let dirs = Engine::cgroups_of(id);
    let v1 = std::fs::canonicalize(std::path::Path::new("/sys/fs/cgroup").join(controller))
        .ok()
        .filter(|h| h.join("cgroup.procs").exists() && !cgroup_v2_host());
    let path = match v1 {
        Some(h) => dirs.iter().find(|d| d.starts_with(&h))?.join(v1_file),
        None => dirs
            .iter()
            .filter(|d| d.join("cgroup.controllers").exists())
            .map(|d| d.join(v2_file))
            .find(|f| f.exists())?,
    };
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

/// (pid, command line) of the processes whose command line satisfies `f`.
pub fn processes_matching(f: impl Fn(&str) -> bool) -> Vec<(i32, String)> {
    let me = std::process::id() as i32;
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(raw) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&raw).replace('\0', " ");
        if !cmd.is_empty() && f(&cmd) {
            // Zombies have an empty command line; these are live.
            out.push((pid, cmd));
        }
    }
    out
}

/// The host pid of a running container's init.
pub fn host_pid(e: &Engine, name: &str) -> i32 {
    e.field(name, "{{.State.Pid}}").parse().unwrap()
}

/// `capsa --root <store> ARGS` on a terminal of `(rows, cols)` through
/// util-linux `script`, with stdin, stdout and stderr piped.
pub fn terminal_cmd(e: &Engine, capsa_args: &str, size: (u16, u16)) -> Command {
    terminal_cmd_after(e, "", capsa_args, size)
}

/// [`terminal_cmd`] with shell commands `before` run first in the terminal.
pub fn terminal_cmd_after(
    e: &Engine,
    before: &str,
    capsa_args: &str,
    (rows, cols): (u16, u16),
) -> Command {
    let line = format!(
        "stty rows {rows} cols {cols}; {before}{} --root {} {capsa_args}",
        super::bin(),
        e.store().display()
    );
    let mut c = Command::new("script");
    c.args(["-qefc", &line, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// Runs `script` so that capsa gets a terminal (util-linux `script`);
/// `input` is fed to it. Returns the output and exit status.
pub fn with_terminal(e: &Engine, capsa_args: &str, input: &[u8]) -> (String, Option<i32>) {
    use std::io::Write;
    let mut child = terminal_cmd(e, capsa_args, (24, 80))
        .spawn()
        .expect("script (util-linux) is installed");
    let mut stdin = child.stdin.take().unwrap();
    let data = input.to_vec();
    let writer = std::thread::spawn(move || {
        // Let the container start before typing.
        std::thread::sleep(Duration::from_millis(300));
        let _ = stdin.write_all(&data);
        std::thread::sleep(Duration::from_millis(300));
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        out.status.code(),
    )
}
