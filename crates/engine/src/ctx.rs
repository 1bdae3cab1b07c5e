//! The engine's state for one command: the image store (whose SQLite
//! database also holds the containers and volumes), the store root and the
//! runtime directory.
//!
//! ```text
//! <root>/capsa.db                    images (capsa_images) + containers, volumes
//! <root>/containers/<id>/            config.json (the bundle), <id>-json.log*,
//!                                    hostname, hosts, resolv.conf, lock,
//!                                    exit (written by the monitor), attach.sock
//! <root>/rootfs/<id>/                the container's overlay root filesystem
//! <root>/volumes/<name>/_data        named and anonymous volumes
//! <root>/bin/capsa-monitor-<hash>    the monitor/init program
//! <root>/events.log                  the event log (JSON lines)
//! <run>/runtime                      the in-process runtime's state root
//! <run>/runtimes/<name>              the state root given to another runtime
//! ```
//!
//! `<run>` is `/run/capsa` for the default root (`$XDG_RUNTIME_DIR/capsa`
//! for other users), with `-<hash of the root>` appended for other roots, so
//! that stores never share runtime state.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use capsa_images::Store;

/// The engine's tables, beside the image store's.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS containers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    image TEXT NOT NULL,            -- image id
    created_ns INTEGER NOT NULL,
    status TEXT NOT NULL,           -- creating, created, running, paused, restarting, removing, exited, dead
    settings TEXT NOT NULL,         -- JSON: Docker's Config and HostConfig, resolved mounts
    pid INTEGER NOT NULL DEFAULT 0,
    pid_start INTEGER NOT NULL DEFAULT 0,
    monitor_pid INTEGER NOT NULL DEFAULT 0,
    monitor_start INTEGER NOT NULL DEFAULT 0,
    exit_code INTEGER NOT NULL DEFAULT 0,
    oom_killed INTEGER NOT NULL DEFAULT 0,
    error TEXT NOT NULL DEFAULT '',
    started_ns INTEGER NOT NULL DEFAULT 0,
    finished_ns INTEGER NOT NULL DEFAULT 0,
    restart_count INTEGER NOT NULL DEFAULT 0,
    backoff_ms INTEGER NOT NULL DEFAULT 0,
    manually_stopped INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS volumes (
    name TEXT PRIMARY KEY,
    created_ns INTEGER NOT NULL,
    labels TEXT NOT NULL,           -- JSON object
    options TEXT NOT NULL,          -- JSON object
    anonymous INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS container_volumes (
    container TEXT NOT NULL REFERENCES containers(id) ON DELETE CASCADE,
    volume TEXT NOT NULL,
    PRIMARY KEY (container, volume)
);
CREATE INDEX IF NOT EXISTS container_volumes_by_volume ON container_volumes(volume);
";

/// An open engine: the store and where things are.
pub struct Ctx {
    /// The image store; its database holds the engine's tables too.
    pub store: Store,
    /// The store root, absolute.
    pub root: PathBuf,
    /// The runtime directory (`/run/capsa...`).
    pub run_dir: PathBuf,
}

impl Ctx {
    /// Opens (creating if needed) the store at `root` and the engine's tables.
    pub fn open(root: &Path) -> Result<Ctx> {
        let store = Store::open(root)?;
        let root = store.root().to_path_buf();
        {
            let tx = store.db().write()?;
            tx.execute_batch(SCHEMA)
                .context("creating the engine's tables")?;
            tx.commit().context("creating the engine's tables")?;
        }
        for (d, mode) in [("containers", 0o711), ("volumes", 0o701), ("bin", 0o711)] {
            mkdir_mode(&root.join(d), mode)?;
        }
        let run_dir = run_dir_for(&root);
        Ok(Ctx {
            store,
            root,
            run_dir,
        })
    }

    /// The directory of container `id`.
    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.root.join("containers").join(id)
    }

    /// The in-process runtime, with its state root.
    pub fn runtime(&self) -> capsa_runtime::Runtime {
        capsa_runtime::Runtime::new(self.run_dir.join("runtime"))
    }

    /// The state root given to the runc-compatible runtime `name`.
    pub fn runtime_root(&self, name: &str) -> PathBuf {
        self.run_dir.join("runtimes").join(name)
    }

    /// The event log.
    pub fn events_path(&self) -> PathBuf {
        crate::events::log_path(&self.root)
    }
}

/// Creates `dir` (and its parents) and gives it `mode`.
pub fn mkdir_mode(dir: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).with_context(|| format!("mkdir {}", dir.display()))?;
    let current = std::fs::metadata(dir)
        .with_context(|| format!("stat {}", dir.display()))?
        .permissions()
        .mode()
        & 0o7777;
    if current != mode {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("chmod {}", dir.display()))?;
    }
    Ok(())
}

/// The runtime directory of the store at `root` (see the module docs).
fn run_dir_for(root: &Path) -> PathBuf {
    let base = if nix::unistd::geteuid().is_root() {
        PathBuf::from("/run/capsa")
    } else {
        match std::env::var_os("XDG_RUNTIME_DIR") {
            Some(d) if !d.is_empty() => PathBuf::from(d).join("capsa"),
            _ => std::env::temp_dir().join(format!("capsa-{}", nix::unistd::geteuid())),
        }
    };
    let default = capsa_images::store::default_root();
    if root == std::fs::canonicalize(&default).unwrap_or(default) {
        return base;
    }
    let digest = capsa_images::Digest::of(root.as_os_str().as_encoded_bytes());
    let mut name = base.into_os_string();
    name.push(format!("-{}", &digest.hex()[..12]));
    PathBuf::from(name)
}
