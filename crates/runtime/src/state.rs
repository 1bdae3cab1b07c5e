//! The state directory: one folder per container under the `--root`, holding
//! `state.json` (what the runtime knows of the container), a copy of its
//! `config.json`, the start socket while the container waits for `start`,
//! and a lock that serialises commands on the same container.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::cgroups::CgroupPaths;
use crate::error::{Error, IoContext, Result};
use crate::procfs;

/// The status of a container, as runtime-spec's state and runc's `list` show it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// `create` is still running.
    Creating,
    /// Set up, waiting for `start`.
    Created,
    /// The user's program runs.
    Running,
    /// Frozen by `pause`.
    Paused,
    /// The container's process has exited.
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

/// What `state.json` records of a container.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    /// The runtime-spec version of the config.
    pub oci_version: String,
    /// The container's id.
    pub id: String,
    /// The last status a command recorded (`created` or `running`); the live
    /// status also looks at the process and the freezer.
    pub status: Status,
    /// The host pid of the container's init process.
    pub pid: i32,
    /// The init process's start time (clock ticks after boot), to tell it from
    /// a later process that reuses its pid.
    pub pid_start_time: u64,
    /// The bundle directory, absolute.
    pub bundle: PathBuf,
    /// The root filesystem on the host, absolute.
    pub rootfs: PathBuf,
    /// The config's annotations.
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    /// When the container was created (RFC 3339, nanoseconds, UTC).
    pub created: String,
    /// The container's cgroup directories, and which of them the runtime made.
    pub cgroup: CgroupPaths,
    /// The uid that created the container.
    pub owner: u32,
    /// Whether the container was set up with systemd-managed cgroups.
    #[serde(default)]
    pub systemd_cgroup: bool,
}

/// The state root (`--root`) holding one directory per container.
#[derive(Clone, Debug)]
pub struct StateRoot {
    root: PathBuf,
}

/// The default state root: `/run/capsa-runtime` for root, and
/// `$XDG_RUNTIME_DIR/capsa-runtime` for other users.
pub fn default_root() -> PathBuf {
    if nix::unistd::geteuid().is_root() {
        return PathBuf::from("/run/capsa-runtime");
    }
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir).join("capsa-runtime"),
        _ => std::env::temp_dir().join(format!("capsa-runtime-{}", nix::unistd::geteuid())),
    }
}

/// Checks that `id` is usable as a container id and a directory name.
pub fn validate_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 1024
        && id != "."
        && id != ".."
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'+'));
    if ok {
        Ok(())
    } else {
        Err(Error::Other(format!(
            "invalid container id {id:?}: use letters, digits, '_', '-', '.' and '+'"
        )))
    }
}

impl StateRoot {
    /// A state root at `root` (created on first use).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        StateRoot { root: root.into() }
    }

    /// The root directory.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// The state directory of container `id`.
    pub fn dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    /// Creates the state directory of a new container and locks it.
    pub fn create(&self, id: &str) -> Result<ContainerDir> {
        validate_id(id)?;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o711)
            .create(&self.root)
            .ctx("mkdir", &self.root)?;
        let dir = self.dir(id);
        match fs::DirBuilder::new().mode(0o711).create(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(Error::AlreadyExists(id.to_string()));
            }
            Err(e) => return Err(Error::io("mkdir", &dir, e)),
        }
        ContainerDir::lock(id, dir)
    }

    /// Opens and locks the state directory of an existing container.
    pub fn open(&self, id: &str) -> Result<ContainerDir> {
        validate_id(id)?;
        let dir = self.dir(id);
        ContainerDir::lock(id, dir).map_err(|e| match e {
            Error::Io { error, .. } if error.kind() == std::io::ErrorKind::NotFound => {
                Error::NotFound(id.to_string())
            }
            e => e,
        })
    }

    /// The ids of all containers under the root, sorted.
    pub fn list(&self) -> Result<Vec<String>> {
        let entries = match fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io("read directory", &self.root, e)),
        };
        let mut ids: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        ids.sort();
        Ok(ids)
    }
}

/// A container's state directory, locked (flock) while this value lives.
#[derive(Debug)]
pub struct ContainerDir {
    id: String,
    path: PathBuf,
    _lock: Flock<File>,
}

/// Name of the state file in a container's directory.
const STATE_FILE: &str = "state.json";
/// Name of the copy of the container's config.json.
const CONFIG_FILE: &str = "config.json";
/// Name of the socket on which a created container waits for `start`.
pub const START_SOCKET: &str = "start.sock";

impl ContainerDir {
    fn lock(id: &str, path: PathBuf) -> Result<ContainerDir> {
        let file = File::options()
            .read(true)
            .custom_flags(libc::O_DIRECTORY)
            .open(&path)
            .ctx("open", &path)?;
        let lock = Flock::lock(file, FlockArg::LockExclusive)
            .map_err(|(_, e)| Error::sys("flock", path.display().to_string(), e))?;
        Ok(ContainerDir {
            id: id.to_string(),
            path,
            _lock: lock,
        })
    }

    /// The container's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path of the start socket.
    pub fn start_socket(&self) -> PathBuf {
        self.path.join(START_SOCKET)
    }

    /// Reads `state.json`; `Ok(None)` while `create` has not written it yet.
    pub fn load(&self) -> Result<Option<Record>> {
        let path = self.path.join(STATE_FILE);
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| Error::Other(format!("{}: corrupt state: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("read", &path, e)),
        }
    }

    /// Reads `state.json`, failing if the container is still being created.
    pub fn load_created(&self) -> Result<Record> {
        self.load()?.ok_or_else(|| Error::BadStatus {
            id: self.id.clone(),
            status: Status::Creating.to_string(),
            reason: "it is still being created".into(),
        })
    }

    /// Writes `state.json` atomically (temporary file, then rename).
    pub fn save(&self, record: &Record) -> Result<()> {
        let bytes = serde_json::to_vec(record)
            .map_err(|e| Error::Other(format!("serialising state: {e}")))?;
        write_atomic(&self.path.join(STATE_FILE), &bytes, 0o600)
    }

    /// Stores the raw bytes of the container's config.json.
    pub fn save_config(&self, raw: &[u8]) -> Result<()> {
        let path = self.path.join(CONFIG_FILE);
        fs::write(&path, raw).ctx("write", &path)
    }

    /// Reads back the container's config.json.
    pub fn load_config(&self) -> Result<oci_spec::runtime::Spec> {
        let path = self.path.join(CONFIG_FILE);
        let bytes = fs::read(&path).ctx("read", &path)?;
        crate::spec::parse(&bytes, "config.json (saved)")
    }

    /// Removes the directory and everything in it (the lock goes with it).
    pub fn remove(self) -> Result<()> {
        // What a container's directory holds, removed by name (a few system
        // calls where walking the directory takes a dozen); anything else
        // there is found by the walk below.
        for name in [STATE_FILE, CONFIG_FILE, START_SOCKET] {
            let _ = fs::remove_file(self.path.join(name));
        }
        if fs::remove_dir(&self.path).is_ok() {
            return Ok(());
        }
        match fs::remove_dir_all(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("remove", &self.path, e)),
        }
    }

    /// The lock's descriptor: a process forked while the lock is held closes
    /// its copy at once, so that it never keeps the container locked (a
    /// flock belongs to the open file, shared by the copies).
    pub fn lock_fd(&self) -> std::os::fd::RawFd {
        self._lock.as_raw_fd()
    }
}

/// The open state directory (for names in it whatever its path's length).
impl AsFd for ContainerDir {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self._lock.as_fd()
    }
}

/// Writes `bytes` to `path` atomically: a temporary file in the same
/// directory, then rename, so readers see the old or the new content only.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}", std::process::id()));
    let mut file = File::options()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .ctx("create", &tmp)?;
    if let Err(e) = file.write_all(bytes) {
        let _ = fs::remove_file(&tmp);
        return Err(Error::io("write", &tmp, e));
    }
    drop(file);
    fs::rename(&tmp, path).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        Error::io("rename", path, e)
    })
}

impl Record {
    /// Whether the init process recorded here still exists (and is not a zombie).
    pub fn init_alive(&self) -> bool {
        self.pid > 0 && procfs::start_time(self.pid).is_some_and(|t| t == self.pid_start_time)
    }

    /// The runtime-spec state JSON of this container with `status`, plus
    /// runc's `created` field, as `state` prints it and hooks read it.
    pub fn oci_state(&self, status: Status) -> serde_json::Value {
        let pid = match status {
            Status::Stopped => 0,
            _ => self.pid,
        };
        serde_json::json!({
            "ociVersion": self.oci_version,
            "id": self.id,
            "status": status.to_string(),
            "pid": pid,
            "bundle": self.bundle,
            "rootfs": self.rootfs,
            "created": self.created,
            "owner": procfs::user_name(self.owner),
            "annotations": self.annotations,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked() {
        validate_id("abc-1.2_x").unwrap();
        for bad in ["", ".", "..", "a/b", "a b", "../x"] {
            assert!(validate_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn create_twice_is_already_exists() {
        let tmp = tempfile::tempdir().unwrap();
        let root = StateRoot::new(tmp.path().join("root"));
        let d = root.create("c1").unwrap();
        drop(d);
        assert!(matches!(root.create("c1"), Err(Error::AlreadyExists(_))));
        assert_eq!(root.list().unwrap(), vec!["c1".to_string()]);
        assert!(matches!(root.open("nope"), Err(Error::NotFound(_))));
    }

    #[test]
    fn write_atomic_replaces_content() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("f");
        write_atomic(&p, b"one", 0o600).unwrap();
        write_atomic(&p, b"two", 0o600).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 1);
    }
}
