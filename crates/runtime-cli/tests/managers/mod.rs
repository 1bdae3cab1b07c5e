//! The managers' harness: Docker's dockerd, containerd (with `ctr` and its
//! CRI plugin) and Podman, started by a test (or the benchmark) with
//! private directories whose paths are as long as the managers' defaults,
//! running capsa-runtime next to runc; everything they made is removed
//! when the test ends, even when it fails.
//!
//! A test includes it with `mod managers;`; the benchmark with
//! `#[path = "../tests/managers/mod.rs"] mod managers;`.
//!
//! The managers' own host-wide leftovers, which no flag moves: dockerd
//! writes `/etc/docker/key.json` and `/run/docker`, and containerd's shims
//! put their sockets in `/run/containerd/s/` (each removed by its shim).

#![allow(dead_code)]

pub mod cri;
pub mod image;

use std::fmt::Write as _;
use std::io::{Read, Seek};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A container's program that says `started` once it handles SIGTERM, and
/// on SIGTERM says `term` and exits 0: a test waits for `started` before
/// stopping it (a signal that came first would kill it, with any runtime).
pub const TRAPPING_SCRIPT: &str =
    "trap 'echo term; exit 0' TERM; echo started; while :; do sleep 0.1; done";

/// How long one manager command may take before the test fails (the
/// machine is shared: generous).
pub const TIMEOUT: Duration = Duration::from_secs(120);

/// Whether programs `programs` are on PATH (and we are root, with
/// busybox); prints `SKIPPED: …` and returns false otherwise.
pub fn available(programs: &[&str]) -> bool {
    if capsa_testkit::skip_unless_root() {
        return false;
    }
    let missing: Vec<&str> = programs
        .iter()
        .copied()
        .filter(|p| which(p).is_none())
        .collect();
    if !missing.is_empty() {
        eprintln!(
            "SKIPPED: {} not installed (scripts/deps.sh installs them)",
            missing.join(", ")
        );
        return false;
    }
    true
}

/// The path of program `name` on PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| {
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// What a command did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// Its exit code (128 + the signal that ended it).
    pub code: i32,
    /// What it printed.
    pub stdout: String,
    /// What it printed on stderr.
    pub stderr: String,
}

impl Output {
    /// Fails the test unless the command exited 0; returns stdout.
    pub fn ok(self, what: &str) -> String {
        assert_eq!(self.code, 0, "{what} failed: {self:?}");
        self.stdout
    }
}

/// Runs `cmd` (no stdin; stdout and stderr to files, since a program it
/// starts may keep them open), killing it and failing the test after
/// `timeout`.
pub fn run(cmd: &mut Command, timeout: Duration) -> Output {
    let mut out = tempfile::tempfile().unwrap();
    let mut err = tempfile::tempfile().unwrap();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(err.try_clone().unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let code = wait(&mut child, timeout)
        .unwrap_or_else(|| panic!("{cmd:?} did not finish within {timeout:?}"));
    let read = |f: &mut std::fs::File| {
        let mut s = String::new();
        f.rewind().unwrap();
        f.read_to_string(&mut s).unwrap();
        s
    };
    Output {
        code,
        stdout: read(&mut out),
        stderr: read(&mut err),
    }
}

/// Waits up to `timeout` for `child` to end; its exit code (128 + signal),
/// or `None` after killing it when it did not end in time.
pub fn wait(child: &mut Child, timeout: Duration) -> Option<i32> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::unix::process::ExitStatusExt;
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let pidfd = capsa_runtime::sys::pidfd_open(pid).unwrap();
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = PollTimeout::try_from(left.as_millis().min(60_000) as i32).unwrap();
        let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, ms) {
            Ok(n) if n > 0 => break,
            Ok(_) if left.is_zero() => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            _ => continue,
        }
    }
    let status = child.wait().unwrap();
    Some(
        status
            .code()
            .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)),
    )
}

/// Runs `scenario` with capsa-runtime, then with runc, and fails the test
/// unless both saw the same (runc is the oracle); returns what capsa's saw.
pub fn same_as_runc<T: PartialEq + std::fmt::Debug>(env: &Env, scenario: impl Fn(&str) -> T) -> T {
    let capsa = scenario("capsa");
    let runc = scenario("runc");
    assert_eq!(
        capsa,
        runc,
        "capsa (left) and runc (right) differ\n{}",
        env.logs()
    );
    capsa
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A 64-character hexadecimal id, unique to this process and call, as
/// Docker, containerd and Kubernetes make them.
pub fn hex_id() -> String {
    let mut id = format!(
        "{:08x}{:08x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    while id.len() < 64 {
        let _ = write!(id, "{:016x}", nanos.rotate_left(id.len() as u32) as u64);
    }
    id.truncate(64);
    id
}

/// A running daemon of the environment.
struct Daemon {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Daemon {
    /// Starts `cmd` with its output in `log`.
    fn spawn(name: &'static str, cmd: &mut Command, log: PathBuf) -> Daemon {
        let out = std::fs::File::create(&log).unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        Daemon { name, child, log }
    }

    /// Stops it: SIGTERM, then SIGKILL after `grace`.
    fn stop(mut self, grace: Duration) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        if wait(&mut self.child, grace).is_none() {
            eprintln!("{} did not stop within {grace:?}: killed", self.name);
        }
    }
}

/// One test's managers and everything they make: a private directory
/// `/run/capsa-<kind>-<pid>-<n>` (longer than `/var/run/docker`, so the
/// runtime's paths beneath it are at least as long as with the managers'
/// defaults), a cgroup parent of its own beneath ours, and the daemons it
/// started. Dropping it stops the daemons and their shims and monitors,
/// kills what is left in its cgroups, unmounts and removes everything.
pub struct Env {
    /// The private directory.
    pub dir: PathBuf,
    /// The cgroup parent of every container (relative: beneath our cgroup).
    pub cgroup_parent: String,
    /// The capsa-runtime binary the managers run.
    pub capsa: PathBuf,
    containerd: Option<Daemon>,
    dockerd: Option<Daemon>,
}

/// Which of containerd's plugins an environment's containerd loads.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Cri {
    /// Without the CRI plugin (Docker, ctr).
    Off,
    /// With the CRI plugin and `capsa` and `runc` runtime handlers.
    On,
}

impl Env {
    /// A new environment for a test of `kind` (docker, ctr, podman, cri)
    /// whose managers run the capsa-runtime at `capsa`.
    pub fn new(kind: &str, capsa: &Path) -> Env {
        let name = format!(
            "capsa-{kind}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let dir = Path::new("/run").join(&name);
        // What a killed test process of the same pid left.
        remove_leftovers(&dir, &name);
        std::fs::create_dir_all(&dir).unwrap();
        Env {
            dir,
            cgroup_parent: name,
            capsa: capsa.to_path_buf(),
            containerd: None,
            dockerd: None,
        }
    }

    /// The state root that a manager gives runtime `runtime` (`capsa` or
    /// `runc`) in this environment, without the manager's namespace.
    pub fn runtime_root(&self, runtime: &str) -> PathBuf {
        self.dir.join(format!("root-{runtime}"))
    }

    /// The binary of runtime `runtime` (`capsa` or `runc`).
    pub fn runtime_bin(&self, runtime: &str) -> PathBuf {
        match runtime {
            "capsa" => self.capsa.clone(),
            other => which(other).unwrap_or_else(|| PathBuf::from(other)),
        }
    }

    /// containerd's socket.
    pub fn containerd_socket(&self) -> PathBuf {
        self.dir.join("containerd.sock")
    }

    /// Starts containerd with a config of this environment's own (root,
    /// state, sockets, plugin directories; with `cri`, the CRI plugin with
    /// `capsa` and `runc` runtime handlers, host network only, its
    /// streaming server on loopback, `sandbox_image` as its pause image).
    pub fn start_containerd(&mut self, cri: Cri, sandbox_image: &str) {
        let d = &self.dir;
        for sub in ["root", "state", "opt", "cni", "fifo"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        let mut disabled = vec![
            "io.containerd.snapshotter.v1.aufs",
            "io.containerd.snapshotter.v1.btrfs",
            "io.containerd.snapshotter.v1.devmapper",
            "io.containerd.snapshotter.v1.zfs",
            "io.containerd.tracing.processor.v1.otlp",
            "io.containerd.internal.v1.tracing",
        ];
        if cri == Cri::Off {
            disabled.push("io.containerd.grpc.v1.cri");
        }
        let disabled: Vec<String> = disabled.iter().map(|p| format!("{p:?}")).collect();
        let mut config = format!(
            "version = 2\nroot = {root:?}\nstate = {state:?}\ndisabled_plugins = [{disabled}]\n\
             [grpc]\n  address = {sock:?}\n\
             [plugins.\"io.containerd.internal.v1.opt\"]\n  path = {opt:?}\n",
            root = d.join("root"),
            state = d.join("state"),
            disabled = disabled.join(", "),
            sock = self.containerd_socket(),
            opt = d.join("opt"),
        );
        if cri == Cri::On {
            let cri = "plugins.\"io.containerd.grpc.v1.cri\"";
            let _ = write!(
                config,
                "[{cri}]\n  sandbox_image = {sandbox_image:?}\n  stream_server_address = \"127.0.0.1\"\n\
                 restrict_oom_score_adj = {restrict}\n\
                 [{cri}.cni]\n  bin_dir = {cni:?}\n  conf_dir = {cni:?}\n",
                cni = d.join("cni"),
                // Pause containers get oom_score_adj -998, which a host
                // without CAP_SYS_RESOURCE cannot give (with any runtime):
                // there, containerd's option for it keeps them at its own.
                restrict = !has_cap_sys_resource(),
            );
            for runtime in ["runc", "capsa"] {
                let _ = write!(
                    config,
                    "[{cri}.containerd.runtimes.{runtime}]\n  runtime_type = \"io.containerd.runc.v2\"\n\
                     [{cri}.containerd.runtimes.{runtime}.options]\n  BinaryName = {bin:?}\n  Root = {root:?}\n",
                    bin = self.runtime_bin(runtime),
                    root = self.runtime_root(runtime),
                );
            }
        }
        let path = d.join("containerd.toml");
        std::fs::write(&path, config).unwrap();
        self.containerd = Some(Daemon::spawn(
            "containerd",
            Command::new("containerd")
                .arg("--config")
                .arg(&path)
                .args(["--log-level", "warn"]),
            d.join("containerd.log"),
        ));
        let sock = self.containerd_socket();
        self.wait_until("containerd", || {
            sock.exists()
                && run(
                    Command::new("ctr").arg("-a").arg(&sock).arg("version"),
                    TIMEOUT,
                )
                .code
                    == 0
        });
    }

    /// A `ctr` command for containerd namespace `ns`.
    pub fn ctr(&self, ns: &str) -> Command {
        let mut c = Command::new("ctr");
        c.arg("-a").arg(self.containerd_socket()).args(["-n", ns]);
        c
    }

    /// Imports the image archive `archive` into containerd namespace `ns`.
    pub fn ctr_import(&self, ns: &str, archive: &Path) {
        run(
            self.ctr(ns).args(["images", "import"]).arg(archive),
            TIMEOUT,
        )
        .ok("ctr images import");
    }

    /// dockerd's socket.
    pub fn docker_socket(&self) -> PathBuf {
        self.dir.join("docker.sock")
    }

    /// Starts containerd (without CRI) and a dockerd on it with runtime
    /// `capsa` added, its own data root, exec root, socket and pidfile, and
    /// no networking of its own (no bridge, iptables rules, forwarding).
    pub fn start_dockerd(&mut self) {
        self.start_containerd(Cri::Off, "");
        let d = &self.dir;
        std::fs::write(d.join("daemon.json"), "{}").unwrap();
        let mut dockerd = Command::new("dockerd");
        dockerd
            .arg("--config-file")
            .arg(d.join("daemon.json"))
            .arg("--data-root")
            .arg(d.join("data"))
            .arg("--exec-root")
            .arg(d.join("exec"))
            .arg("--pidfile")
            .arg(d.join("docker.pid"))
            .arg("--host")
            .arg(format!("unix://{}", self.docker_socket().display()))
            .arg("--containerd")
            .arg(self.containerd_socket())
            .arg("--add-runtime")
            .arg(format!("capsa={}", self.capsa.display()))
            .arg("--cgroup-parent")
            .arg(&self.cgroup_parent)
            .args([
                "--bridge=none",
                "--iptables=false",
                "--ip6tables=false",
                "--ip-forward=false",
                "--ip-masq=false",
                "--shutdown-timeout=3",
                "--log-level=warn",
            ]);
        self.dockerd = Some(Daemon::spawn(
            "dockerd",
            &mut dockerd,
            d.join("dockerd.log"),
        ));
        self.wait_until("dockerd", || {
            self.docker_socket().exists() && run(self.docker().arg("version"), TIMEOUT).code == 0
        });
    }

    /// A `docker` command for this environment's dockerd (Debian's client
    /// when there are two).
    pub fn docker(&self) -> Command {
        let client = Path::new("/usr/bin/docker");
        let mut c = if client.exists() {
            Command::new(client)
        } else {
            Command::new("docker")
        };
        c.env(
            "DOCKER_HOST",
            format!("unix://{}", self.docker_socket().display()),
        )
        .env("DOCKER_CONFIG", self.dir.join("docker-config"));
        c
    }

    /// A `podman` command with this environment's configuration files
    /// (storage root and run root, network configurations, cgroupfs,
    /// events in a file, no registries) and temporary directory, running
    /// runtime `runtime` with its state root in the environment.
    pub fn podman(&self, runtime: &str) -> Command {
        let d = &self.dir;
        let conf = d.join("containers.conf");
        if !conf.exists() {
            let files = [
                (
                    "containers.conf",
                    format!(
                        "[engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n\
                         [network]\nnetwork_config_dir = {:?}\n",
                        d.join("podman-networks")
                    ),
                ),
                (
                    "storage.conf",
                    format!(
                        "[storage]\ndriver = \"overlay\"\ngraphroot = {:?}\nrunroot = {:?}\n",
                        d.join("podman-root"),
                        d.join("podman-run")
                    ),
                ),
                (
                    "registries.conf",
                    "unqualified-search-registries = []\n".to_string(),
                ),
            ];
            for (name, text) in files {
                std::fs::write(d.join(name), text).unwrap();
            }
        }
        let mut c = Command::new("podman");
        c.env("CONTAINERS_CONF", &conf)
            .env("CONTAINERS_REGISTRIES_CONF", d.join("registries.conf"))
            .env("CONTAINERS_STORAGE_CONF", d.join("storage.conf"))
            .arg("--tmpdir")
            .arg(d.join("podman-tmp"))
            .args(["--cgroup-manager", "cgroupfs", "--events-backend", "file"])
            .arg("--runtime")
            .arg(self.runtime_bin(runtime))
            // Podman gives a runtime no --root of its own (so it would be
            // the runtime's default).
            .arg("--runtime-flag")
            .arg(format!("root={}", self.runtime_root(runtime).display()));
        c
    }

    /// Checks that container `id` is capsa-runtime's and running: its
    /// state directory is found beneath the environment's directory (in
    /// the root the manager gave the runtime) and `capsa-runtime state`
    /// there says so. Returns the path of its start socket's place, whose
    /// length the tests compare with what a socket address holds.
    pub fn assert_capsa_runs(&self, id: &str) -> PathBuf {
        let Some(state_dir) = find_state_dir(&self.dir, id, 6) else {
            panic!(
                "no capsa-runtime state of {id} beneath {}",
                self.dir.display()
            );
        };
        let root = state_dir.parent().unwrap();
        let state = run(
            Command::new(&self.capsa)
                .arg("--root")
                .arg(root)
                .args(["state", id]),
            TIMEOUT,
        );
        let status = serde_json::from_str::<serde_json::Value>(&state.stdout)
            .map(|v| v["status"].clone())
            .unwrap_or_default();
        assert_eq!(status, "running", "{id} in {}: {state:?}", root.display());
        state_dir.join("start.sock")
    }

    /// Polls `ready` until it holds; fails the test, with the daemons' logs,
    /// after [`TIMEOUT`] or when a daemon exits.
    pub fn wait_until(&self, what: &str, mut ready: impl FnMut() -> bool) {
        let deadline = Instant::now() + TIMEOUT;
        while !ready() {
            let daemons = [self.containerd.as_ref(), self.dockerd.as_ref()];
            for d in daemons.into_iter().flatten() {
                let log = std::fs::read_to_string(&d.log).unwrap_or_default();
                let pid = d.child.id();
                assert!(
                    Path::new(&format!("/proc/{pid}/exe")).exists(),
                    "{} exited while waiting for {what}:\n{log}",
                    d.name
                );
            }
            assert!(Instant::now() < deadline, "{what} did not start in time");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The logs of the daemons, for a failing test's message.
    pub fn logs(&self) -> String {
        let mut all = String::new();
        for d in [self.containerd.as_ref(), self.dockerd.as_ref()]
            .into_iter()
            .flatten()
        {
            let log = std::fs::read_to_string(&d.log).unwrap_or_default();
            let _ = writeln!(all, "--- {} log:\n{log}", d.name);
        }
        all
    }
}

impl Env {
    /// Kills and deletes every task and container containerd still has
    /// (their shims then exit and remove their sockets).
    fn delete_containerd_tasks(&self) {
        let quick = Duration::from_secs(30);
        let namespaces = run(self.ctr("default").args(["namespaces", "ls", "-q"]), quick);
        for ns in namespaces.stdout.lines() {
            let tasks = run(self.ctr(ns).args(["tasks", "ls", "-q"]), quick);
            for id in tasks.stdout.lines() {
                run(
                    self.ctr(ns).args(["tasks", "kill", "-a", "-s", "KILL", id]),
                    quick,
                );
                run(self.ctr(ns).args(["tasks", "delete", "-f", id]), quick);
            }
            let containers = run(self.ctr(ns).args(["containers", "ls", "-q"]), quick);
            for id in containers.stdout.lines() {
                run(self.ctr(ns).args(["containers", "delete", id]), quick);
            }
        }
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some(d) = self.dockerd.take() {
            d.stop(Duration::from_secs(20));
        }
        if let Some(d) = self.containerd.take() {
            self.delete_containerd_tasks();
            d.stop(Duration::from_secs(10));
        }
        remove_leftovers(&self.dir, &self.cgroup_parent);
    }
}

/// Removes what the managers of an environment left once its daemons are
/// stopped: the processes naming directory `dir` on their command lines
/// (shims, conmon), what is left in cgroup `cgroup`, every mount beneath
/// `dir`, and `dir`.
fn remove_leftovers(dir: &Path, cgroup: &str) {
    let needle = format!("{}/", dir.display());
    for (pid, args) in processes_naming(&needle) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
        if let Some(sock) = shim_socket(&args) {
            let _ = std::fs::remove_file(sock);
        }
    }
    remove_cgroups(cgroup);
    for m in mounts_below(dir) {
        let _ = nix::mount::umount2(&m, nix::mount::MntFlags::MNT_DETACH);
    }
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            eprintln!("removing {}: {e}", dir.display())
        }
        _ => {}
    }
}

/// The capability's number (linux/capability.h).
const CAP_SYS_RESOURCE: u32 = 24;

/// Whether this process has CAP_SYS_RESOURCE.
fn has_cap_sys_resource() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << CAP_SYS_RESOURCE) != 0)
}

/// The socket a containerd shim with command line `args` listens on
/// (containerd 1.6: `/run/containerd/s/` and the sha256 of
/// `<containerd address>/<namespace>/<id>`), which a killed shim leaves.
fn shim_socket(args: &[String]) -> Option<PathBuf> {
    use sha2::{Digest, Sha256};
    if !args.first()?.contains("containerd-shim") {
        return None;
    }
    let flag = |name: &str| {
        let at = args.iter().position(|a| a == name)?;
        args.get(at + 1)
    };
    let key = Path::new(flag("-address")?)
        .join(flag("-namespace")?)
        .join(flag("-id")?);
    let hash = Sha256::digest(key.as_os_str().as_encoded_bytes());
    Some(Path::new("/run/containerd/s").join(format!("{hash:x}")))
}

/// The pids and command lines of processes other than ours whose command
/// line holds `needle`.
fn processes_naming(needle: &str) -> Vec<(i32, Vec<String>)> {
    let me = std::process::id() as i32;
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != me)
        .filter_map(|pid| {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            cmd.windows(needle.len())
                .any(|w| w == needle.as_bytes())
                .then(|| {
                    let args = cmd
                        .split(|&b| b == 0)
                        .filter(|a| !a.is_empty())
                        .map(|a| String::from_utf8_lossy(a).into_owned())
                        .collect();
                    (pid, args)
                })
        })
        .collect()
}

/// Mount points at or below `dir`, deepest first.
fn mounts_below(dir: &Path) -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut found: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(p.replace("\\040", " ")))
        .filter(|p| p.starts_with(dir))
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    found.dedup();
    found
}

/// Kills every process left in cgroup `name` and below, beneath ours and
/// at the top of every hierarchy (Podman makes its conmon's cgroup under
/// an absolute `/<cgroup parent>`), and removes those cgroups.
fn remove_cgroups(name: &str) {
    let absolute = format!("/{name}");
    let managers = [name, absolute.as_str()]
        .map(|path| capsa_runtime::cgroups::Manager::for_container(Some(Path::new(path)), "x"));
    let dirs: Vec<PathBuf> = managers
        .iter()
        .flatten()
        .flat_map(|m| m.all_dirs().into_values())
        .collect();
    for dir in &dirs {
        for _ in 0..100 {
            let mut tree = Vec::new();
            collect_dirs(dir, &mut tree);
            if tree.is_empty() {
                break;
            }
            for d in tree.iter().rev() {
                // A frozen (paused) process dies only once thawed.
                let _ = std::fs::write(d.join("freezer.state"), "THAWED");
                let _ = std::fs::write(d.join("cgroup.freeze"), "0");
                let procs = std::fs::read_to_string(d.join("cgroup.procs")).unwrap_or_default();
                for pid in procs.lines().filter_map(|p| p.parse::<i32>().ok()) {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
                let _ = std::fs::remove_dir(d);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The directory named `id` holding a `state.json` at most `depth` levels
/// beneath `dir` (not following symlinks).
fn find_state_dir(dir: &Path, id: &str, depth: usize) -> Option<PathBuf> {
    let here = dir.join(id);
    if here.join("state.json").is_file() {
        return Some(here);
    }
    if depth == 0 {
        return None;
    }
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .find_map(|e| find_state_dir(&e.path(), id, depth - 1))
}

/// `dir` and every directory beneath it, parents first.
fn collect_dirs(dir: &Path, out: &mut Vec<PathBuf>) {
    if !dir.is_dir() {
        return;
    }
    out.push(dir.to_path_buf());
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                collect_dirs(&e.path(), out);
            }
        }
    }
}
