//! Test harness for `capsa-runtime` integration tests: busybox bundles made
//! from Debian's busybox-static, a private state root per test, unique
//! container ids, and clean-up (delete --force) even when a test fails.

#![allow(dead_code)]

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};

/// The capsa-runtime binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_capsa-runtime")
}

// Not every test binary uses both.
#[allow(unused_imports)]
pub use capsa_testkit::{BUSYBOX, make_busybox_rootfs, skip_unless_root};

/// Skips (returning from the test) unless running as root with busybox.
#[macro_export]
macro_rules! require_root {
    () => {
        capsa_testkit::require_root!()
    };
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A name unique to this test process and call.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// The content of file `path`, trimmed; fails the test if it cannot be read.
pub fn read(path: impl AsRef<Path>) -> String {
    let path = path.as_ref();
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .to_string()
}

/// A bundle: a temporary directory with a busybox rootfs and a config.
pub struct Bundle {
    dir: tempfile::TempDir,
    /// The config, written by [`Bundle::write`] (and by the runtime helpers).
    pub config: Value,
}

impl Bundle {
    /// A busybox bundle with capsa's default config, no terminal, running `true`.
    pub fn busybox() -> Bundle {
        let dir = tempfile::Builder::new()
            .prefix("capsa-bundle-")
            .tempdir()
            .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        make_busybox_rootfs(&dir.path().join("rootfs"));
        let mut config = capsa_runtime::spec::default_config(false, 0, 0);
        config["process"]["terminal"] = json!(false);
        config["process"]["args"] = json!(["true"]);
        let b = Bundle { dir, config };
        b.write();
        b
    }

    /// Sets `process.args`.
    pub fn args(&mut self, args: &[&str]) -> &mut Self {
        self.config["process"]["args"] = json!(args);
        self.write();
        self
    }

    /// Runs `sh -c script` in the container.
    pub fn sh(&mut self, script: &str) -> &mut Self {
        self.args(&["sh", "-c", script])
    }

    /// Edits the config with `f`, then writes it.
    pub fn edit(&mut self, f: impl FnOnce(&mut Value)) -> &mut Self {
        f(&mut self.config);
        self.write();
        self
    }

    /// Writes config.json.
    pub fn write(&self) {
        std::fs::write(
            self.dir.path().join("config.json"),
            serde_json::to_vec_pretty(&self.config).unwrap(),
        )
        .unwrap();
    }

    /// The bundle directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The root filesystem directory.
    pub fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    /// The bundle path as a string (for command lines).
    pub fn path_str(&self) -> String {
        self.dir.path().display().to_string()
    }
}

/// A directory made beneath `base` whose path is at least `len` bytes long
/// (longer than a unix socket address holds, for `len` > 107).
pub fn long_dir(base: &Path, len: usize) -> PathBuf {
    let mut dir = base.to_path_buf();
    let mut n = 0;
    while dir.as_os_str().len() < len {
        n += 1;
        dir.push(format!("{n}{}", "l".repeat(60)));
    }
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A unix stream socket listening at `path`, whatever its length.
pub fn listen_at(path: &Path) -> std::os::unix::net::UnixListener {
    use std::os::fd::AsFd;
    let dir = path.parent().unwrap();
    let name = path.file_name().unwrap().to_str().unwrap();
    let dir_fd = std::fs::File::open(dir).unwrap();
    let sock = capsa_runtime::unix_socket::new(nix::sys::socket::SockType::Stream).unwrap();
    capsa_runtime::unix_socket::bind_in(sock.as_fd(), dir_fd.as_fd(), dir, name).unwrap();
    nix::sys::socket::listen(&sock, nix::sys::socket::Backlog::new(4).unwrap()).unwrap();
    std::os::unix::net::UnixListener::from(sock)
}

/// A private state root; deletes (with --force) every container it named.
pub struct Runtime {
    root: tempfile::TempDir,
    /// The `--root` given: `root` itself or a directory beneath it.
    root_path: PathBuf,
    ids: RefCell<Vec<String>>,
    /// Global flags given to every command (after `--root`).
    global: Vec<String>,
    /// Environment variables set (`Some`) or removed (`None`) for every command.
    env: Vec<(String, Option<String>)>,
}

impl Runtime {
    /// A runtime with a new, empty state root.
    pub fn new() -> Runtime {
        let root = tempfile::Builder::new()
            .prefix("capsa-root-")
            .tempdir()
            .unwrap();
        Runtime {
            root_path: root.path().to_path_buf(),
            root,
            ids: RefCell::new(Vec::new()),
            global: Vec::new(),
            env: Vec::new(),
        }
    }

    /// A runtime whose every command gets the global flags `global` and
    /// the environment changes `env` (`None` removes a variable).
    pub fn with(global: &[&str], env: &[(&str, Option<&str>)]) -> Runtime {
        let mut rt = Runtime::new();
        rt.global = global.iter().map(|s| s.to_string()).collect();
        rt.env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
            .collect();
        rt
    }

    /// A runtime whose state root's path is at least `len` bytes long.
    pub fn with_long_root(len: usize) -> Runtime {
        let mut rt = Runtime::new();
        rt.root_path = long_dir(rt.root.path(), len);
        rt
    }

    /// The state root.
    pub fn root(&self) -> &Path {
        &self.root_path
    }

    /// A new unique container id, deleted when this value is dropped.
    pub fn id(&self, prefix: &str) -> String {
        let id = unique(prefix);
        self.ids.borrow_mut().push(id.clone());
        id
    }

    /// Deletes container `id` too (with --force) when this value is dropped.
    pub fn named(&self, id: &str) {
        self.ids.borrow_mut().push(id.to_string());
    }

    /// A `capsa-runtime --root ROOT args...` command.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.arg("--root")
            .arg(&self.root_path)
            .args(&self.global)
            .args(args);
        for (k, v) in &self.env {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
        }
        c.stdin(Stdio::null());
        c
    }

    /// Runs the command and returns its output.
    pub fn output(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// Runs the command, fails the test unless it succeeds, returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.output(args);
        assert!(
            out.status.success(),
            "capsa-runtime {args:?} failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs the command, fails the test if it succeeds, returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.output(args);
        assert!(
            !out.status.success(),
            "capsa-runtime {args:?} succeeded but should have failed:\nstdout: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stderr).unwrap()
    }

    /// `run` of the bundle in the foreground; returns (exit code, stdout, stderr).
    pub fn run(&self, bundle: &Bundle, id: &str) -> (i32, String, String) {
        let out = self.output(&["run", "--bundle", &bundle.path_str(), id]);
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// `run` that must exit 0; returns stdout.
    pub fn run_ok(&self, bundle: &Bundle, id: &str) -> String {
        let (code, out, err) = self.run(bundle, id);
        assert_eq!(
            code, 0,
            "run {id} exited {code}\nstdout: {out}\nstderr: {err}"
        );
        out
    }

    /// Runs a command whose container outlives it (`create`, `run -d`,
    /// `exec -d`): its stdio goes to files, since the container inherits
    /// them and pipes would stay open. Returns (success, stdout, stderr).
    pub fn detached(&self, args: &[&str]) -> (bool, String, String) {
        let dir = tempfile::tempdir().unwrap();
        let (o, e) = (dir.path().join("out"), dir.path().join("err"));
        let status = self
            .cmd(args)
            .stdout(std::fs::File::create(&o).unwrap())
            .stderr(std::fs::File::create(&e).unwrap())
            .status()
            .unwrap();
        (
            status.success(),
            std::fs::read_to_string(o).unwrap(),
            std::fs::read_to_string(e).unwrap(),
        )
    }

    /// `create` of the bundle (no console); fails the test if it fails.
    pub fn create(&self, bundle: &Bundle, id: &str) {
        let (ok, _, err) = self.detached(&["create", "--bundle", &bundle.path_str(), id]);
        assert!(ok, "create {id} failed: {err}");
    }

    /// The state JSON of a container.
    pub fn state(&self, id: &str) -> Value {
        serde_json::from_str(&self.ok(&["state", id])).unwrap()
    }

    /// The status of a container.
    pub fn status(&self, id: &str) -> String {
        self.state(id)["status"].as_str().unwrap().to_string()
    }

    /// Waits (up to 10 s) until the container's status is `want`.
    pub fn wait_status(&self, id: &str, want: &str) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let s = self.status(id);
            if s == want {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{id} stayed {s}, wanted {want}"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        for id in self.ids.borrow().iter() {
            let _ = self
                .cmd(&["delete", "--force", id])
                .stderr(Stdio::null())
                .status();
        }
    }
}
