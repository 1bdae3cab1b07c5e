//! Containers: their records in the store's database, their directories,
//! and the per-container lock that serialises the commands working on one.
//!
//! A container's row is the truth about it, kept current by the commands
//! and by its monitor (which execs `capsa __exited` when it ends). When a
//! command or a monitor was killed half-way, [`lifecycle::refresh`] notices
//! it from the row, the lock and the processes, and repairs. A container's
//! directory appears already locked and disappears at once (both by a
//! rename through the store's `tmp/`), so that one without a row and with
//! a free lock is the garbage of a killed command ([`Ctx::remove_orphans`]).

pub mod attach;
pub mod launch;
pub mod lifecycle;
pub mod logs;
pub mod runtime;
pub mod settings;
pub mod spec;

use std::fs::File;
use std::os::unix::fs::OpenOptionsExt;

use anyhow::{Context as _, Result, anyhow, bail};
use nix::fcntl::{Flock, FlockArg};
use rusqlite::{OptionalExtension, params};

use crate::ctx::Ctx;
pub use settings::Settings;

/// Docker's container states, plus the two transient ones capsa records
/// while a command works (`creating`, `removing`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// `run`/`create` is setting it up.
    Creating,
    /// Made, not started.
    Created,
    /// Its process runs.
    Running,
    /// Frozen.
    Paused,
    /// Waiting to be restarted by its restart policy.
    Restarting,
    /// `rm` is removing it.
    Removing,
    /// Its process ended.
    Exited,
    /// It could not be cleaned up.
    Dead,
}

impl Status {
    /// The name stored and shown (`State.Status`).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Removing => "removing",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }

    fn parse(s: &str) -> Status {
        match s {
            "creating" => Status::Creating,
            "created" => Status::Created,
            "running" => Status::Running,
            "paused" => Status::Paused,
            "restarting" => Status::Restarting,
            "removing" => Status::Removing,
            "exited" => Status::Exited,
            _ => Status::Dead,
        }
    }

    /// Whether a process of the container may be alive.
    pub fn is_active(self) -> bool {
        matches!(self, Status::Running | Status::Paused | Status::Restarting)
    }
}

/// The run-time state of a container.
#[derive(Clone, Debug)]
pub struct State {
    /// Its status.
    pub status: Status,
    /// The init process's host pid (0 when none).
    pub pid: i32,
    /// Its start time in clock ticks (to tell it from a reused pid).
    pub pid_start: u64,
    /// The monitor's pid.
    pub monitor_pid: i32,
    /// The monitor's start time.
    pub monitor_start: u64,
    /// The last exit code.
    pub exit_code: i32,
    /// Whether the last run ended in an OOM kill.
    pub oom_killed: bool,
    /// Why the last start failed or how the exit was learnt.
    pub error: String,
    /// When it was last started (ns since the epoch, 0: never).
    pub started_ns: i64,
    /// When it last exited.
    pub finished_ns: i64,
    /// Restarts by the restart policy.
    pub restart_count: i64,
    /// The current restart delay.
    pub backoff_ms: i64,
    /// Stopped by `stop`/`kill`: the restart policy leaves it alone.
    pub manually_stopped: bool,
}

/// A container.
#[derive(Clone, Debug)]
pub struct Container {
    /// 64 hex digits.
    pub id: String,
    /// Its name, without Docker's leading `/`.
    pub name: String,
    /// The image id.
    pub image: String,
    /// Creation time (ns since the epoch).
    pub created_ns: i64,
    /// Its state.
    pub state: State,
    /// Its configuration.
    pub settings: Settings,
}

const COLUMNS: &str = "id, name, image, created_ns, status, settings, pid, pid_start, monitor_pid, \
     monitor_start, exit_code, oom_killed, error, started_ns, finished_ns, restart_count, backoff_ms, \
     manually_stopped";

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(Container, String)> {
    let settings: String = r.get(5)?;
    let status: String = r.get(4)?;
    Ok((
        Container {
            id: r.get(0)?,
            name: r.get(1)?,
            image: r.get(2)?,
            created_ns: r.get(3)?,
            state: State {
                status: Status::parse(&status),
                pid: r.get(6)?,
                pid_start: r.get::<_, i64>(7)? as u64,
                monitor_pid: r.get(8)?,
                monitor_start: r.get::<_, i64>(9)? as u64,
                exit_code: r.get(10)?,
                oom_killed: r.get(11)?,
                error: r.get(12)?,
                started_ns: r.get(13)?,
                finished_ns: r.get(14)?,
                restart_count: r.get(15)?,
                backoff_ms: r.get(16)?,
                manually_stopped: r.get(17)?,
            },
            settings: Settings::default(),
        },
        settings,
    ))
}

fn parse_rows(rows: Vec<(Container, String)>) -> Result<Vec<Container>> {
    rows.into_iter()
        .map(|(mut c, s)| {
            c.settings = serde_json::from_str(&s)
                .with_context(|| format!("container {}: stored settings", c.id))?;
            Ok(c)
        })
        .collect()
}

/// A held container lock; released when dropped.
pub struct Lock {
    _lock: Flock<File>,
}

/// Error text for a container that does not exist, as Docker words it.
pub fn no_such(name: &str) -> anyhow::Error {
    anyhow!("No such container: {name}")
}

impl Ctx {
    /// Records a new container (status `creating`); fails if the name is taken.
    pub fn insert_container(&self, c: &Container) -> Result<()> {
        let settings = serde_json::to_string(&c.settings)?;
        let tx = self.store.db().write()?;
        let r = tx.execute(
            "INSERT INTO containers (id, name, image, created_ns, status, settings) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                c.id,
                c.name,
                c.image,
                c.created_ns,
                c.state.status.as_str(),
                settings
            ],
        );
        match r {
            Ok(_) => {}
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                let other: String = tx
                    .query_row(
                        "SELECT id FROM containers WHERE name = ?1",
                        [&c.name],
                        |r| r.get(0),
                    )
                    .unwrap_or_default();
                bail!(
                    "Conflict. The container name \"/{}\" is already in use by container \"{other}\". \
                     You have to remove (or rename) that container to be able to reuse that name.",
                    c.name
                );
            }
            Err(e) => return Err(e.into()),
        }
        tx.commit()?;
        Ok(())
    }

    /// Saves a container's state.
    pub fn save_state(&self, c: &Container) -> Result<()> {
        let s = &c.state;
        let tx = self.store.db().write()?;
        tx.execute(
            "UPDATE containers SET status = ?2, pid = ?3, pid_start = ?4, monitor_pid = ?5, \
             monitor_start = ?6, exit_code = ?7, oom_killed = ?8, error = ?9, started_ns = ?10, \
             finished_ns = ?11, restart_count = ?12, backoff_ms = ?13, manually_stopped = ?14 \
             WHERE id = ?1",
            params![
                c.id,
                s.status.as_str(),
                s.pid,
                s.pid_start as i64,
                s.monitor_pid,
                s.monitor_start as i64,
                s.exit_code,
                s.oom_killed,
                s.error,
                s.started_ns,
                s.finished_ns,
                s.restart_count,
                s.backoff_ms,
                s.manually_stopped
            ],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Saves a container's settings.
    pub fn save_settings(&self, c: &Container) -> Result<()> {
        let settings = serde_json::to_string(&c.settings)?;
        let tx = self.store.db().write()?;
        tx.execute(
            "UPDATE containers SET settings = ?2 WHERE id = ?1",
            params![c.id, settings],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Renames a container; fails if the name is taken.
    pub fn rename_container(&self, id: &str, name: &str) -> Result<()> {
        let tx = self.store.db().write()?;
        match tx.execute(
            "UPDATE containers SET name = ?2 WHERE id = ?1",
            params![id, name],
        ) {
            Ok(_) => {}
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                bail!(
                    "Conflict. The container name \"/{name}\" is already in use by another container."
                )
            }
            Err(e) => return Err(e.into()),
        }
        tx.commit()?;
        Ok(())
    }

    /// Deletes a container's row (its volume links go with it).
    pub fn delete_container_row(&self, id: &str) -> Result<()> {
        let tx = self.store.db().write()?;
        tx.execute("DELETE FROM containers WHERE id = ?1", [id])?;
        tx.commit()?;
        Ok(())
    }

    /// The container with exactly this id, if any.
    pub fn load_container(&self, id: &str) -> Result<Option<Container>> {
        let row = self
            .store
            .db()
            .conn()
            .query_row(
                &format!("SELECT {COLUMNS} FROM containers WHERE id = ?1"),
                [id],
                from_row,
            )
            .optional()?;
        Ok(parse_rows(row.into_iter().collect())?.pop())
    }

    /// Every container, newest first.
    pub fn all_containers(&self) -> Result<Vec<Container>> {
        let rows = self.store.db().rows(
            &format!("SELECT {COLUMNS} FROM containers ORDER BY created_ns DESC, id"),
            [],
            from_row,
        )?;
        parse_rows(rows)
    }

    /// Finds a container as Docker does: full id, name (with or without
    /// `/`), then a unique id prefix.
    pub fn find_container(&self, name: &str) -> Result<Container> {
        let bare = name.strip_prefix('/').unwrap_or(name);
        if bare.is_empty() {
            bail!("No such container: {name}");
        }
        let exact = self.store.db().rows(
            &format!("SELECT {COLUMNS} FROM containers WHERE id = ?1 OR name = ?1"),
            [bare],
            from_row,
        )?;
        let mut exact = parse_rows(exact)?;
        if let Some(i) = exact.iter().position(|c| c.id == bare) {
            return Ok(exact.swap_remove(i));
        }
        if let Some(c) = exact.pop() {
            return Ok(c);
        }
        if bare.bytes().all(|b| b.is_ascii_hexdigit()) {
            let like = format!("{}%", bare.to_ascii_lowercase());
            let mut found = parse_rows(self.store.db().rows(
                &format!("SELECT {COLUMNS} FROM containers WHERE id LIKE ?1"),
                [like],
                from_row,
            )?)?;
            match found.len() {
                1 => return Ok(found.pop().expect("one")),
                0 => {}
                _ => bail!("multiple IDs found with provided prefix: {bare}"),
            }
        }
        Err(no_such(name))
    }

    /// Makes container `id`'s directory, with its lock file, and returns it
    /// locked. The directory is assembled in the store's `tmp/` and renamed
    /// into place already locked, so that a directory without a row whose
    /// lock is free is always garbage (see [`Ctx::remove_orphans`]).
    pub fn create_container_dir(&self, id: &str) -> Result<Lock> {
        // tmp/ is not cleaned while the store lock is held.
        let _store = self.store.lock_shared()?;
        let ws = self.store.workspace()?;
        let staged = ws.path().join(id);
        crate::ctx::mkdir_mode(&staged, 0o700)?;
        let lock = Flock::lock(lock_file(&staged, true)?, FlockArg::LockExclusive)
            .map(|l| Lock { _lock: l })
            .map_err(|(_, e)| anyhow!("locking container {id}: {e}"))?;
        let dir = self.container_dir(id);
        std::fs::rename(&staged, &dir)
            .with_context(|| format!("rename {} to {}", staged.display(), dir.display()))?;
        Ok(lock)
    }

    /// Removes container `id`'s directory, if it still exists. It is first
    /// renamed into the store's `tmp/`, so that a removal killed half-way
    /// leaves garbage there (cleaned by the next command finding the store
    /// idle) rather than a directory without its lock file.
    pub fn remove_container_dir(&self, id: &str) -> Result<()> {
        let _store = self.store.lock_shared()?;
        let ws = self.store.workspace()?;
        let dir = self.container_dir(id);
        let trash = ws.path().join(id);
        match std::fs::rename(&dir, &trash) {
            Ok(()) => std::fs::remove_dir_all(&trash)
                .with_context(|| format!("remove {}", trash.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => {
                Err(e).with_context(|| format!("rename {} to {}", dir.display(), trash.display()))
            }
        }
    }

    /// Takes container `id`'s lock, waiting for other commands.
    pub fn lock_container(&self, id: &str) -> Result<Lock> {
        let f = lock_file(&self.container_dir(id), false).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                no_such(id)
            } else {
                anyhow!(e)
            }
        })?;
        Flock::lock(f, FlockArg::LockExclusive)
            .map(|l| Lock { _lock: l })
            .map_err(|(_, e)| anyhow!("locking container {id}: {e}"))
    }

    /// Takes container `id`'s lock if no other command holds it; `None`
    /// too when its directory is gone (or going: a removal under way).
    pub fn try_lock_container(&self, id: &str) -> Result<Option<Lock>> {
        let f = match lock_file(&self.container_dir(id), false) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        match Flock::lock(f, FlockArg::LockExclusiveNonblock) {
            Ok(l) => Ok(Some(Lock { _lock: l })),
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
            Err((_, e)) => Err(anyhow!("locking container {id}: {e}")),
        }
    }

    /// Removes the container directories that have no row and whose lock
    /// is free: left by a command killed before it recorded the container
    /// or after it deleted its row.
    pub fn remove_orphans(&self) -> Result<()> {
        let parent = self.root.join("containers");
        let known: std::collections::HashSet<String> = self
            .store
            .db()
            .rows("SELECT id FROM containers", [], |r| r.get(0))?
            .into_iter()
            .collect();
        let rd =
            std::fs::read_dir(&parent).with_context(|| format!("readdir {}", parent.display()))?;
        for e in rd {
            let e = e.with_context(|| format!("readdir {}", parent.display()))?;
            let Ok(id) = e.file_name().into_string() else {
                continue;
            };
            if known.contains(&id) || !is_id(&id) {
                continue;
            }
            let Some(_lock) = self.try_lock_container(&id)? else {
                continue;
            };
            // Recorded since the listing was read?
            if self.load_container(&id)?.is_some() {
                continue;
            }
            self.remove_container_dir(&id)?;
        }
        Ok(())
    }

    /// Finds a container, takes its lock and reads its row again (another
    /// command may have changed or removed it meanwhile), repaired.
    pub fn lock_found(&self, name: &str) -> Result<(Container, Lock)> {
        let c = self.find_container(name)?;
        let lock = self.lock_container(&c.id).map_err(|_| no_such(name))?;
        let mut c = self.load_container(&c.id)?.ok_or_else(|| no_such(name))?;
        lifecycle::refresh_locked(self, &mut c)?;
        if self.load_container(&c.id)?.is_none() {
            return Err(no_such(name));
        }
        Ok((c, lock))
    }
}

/// Opens the lock file of a container directory (creating it only for a
/// new container: a removal under way must not see it come back).
fn lock_file(dir: &std::path::Path, create: bool) -> std::io::Result<File> {
    let p = dir.join("lock");
    File::options()
        .read(true)
        .write(true)
        .create(create)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC)
        .open(&p)
        .map_err(|e| std::io::Error::new(e.kind(), format!("open {}: {e}", p.display())))
}

/// Whether `name` has the shape of a container id (64 lowercase hex digits).
fn is_id(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A new random container id: 64 hex digits.
pub fn new_id() -> Result<String> {
    let mut bytes = [0u8; 32];
    File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .context("reading /dev/urandom")?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Nanoseconds since the epoch now.
pub fn now_ns() -> i64 {
    let (s, n) = capsa_images::time::now();
    s * 1_000_000_000 + n as i64
}

/// Docker's name characters, `[a-zA-Z0-9][a-zA-Z0-9_.-]*`, a leading `/`
/// allowed. Unlike Docker (which wants two characters), one is enough:
/// `--name s` is common in scripts and in capsa's own acceptance tests.
pub fn valid_name(name: &str) -> Result<String> {
    let bare = name.strip_prefix('/').unwrap_or(name);
    let ok = !bare.is_empty()
        && bare.len() <= 253
        && bare
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && bare
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if !ok {
        bail!("Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed");
    }
    Ok(bare.to_string())
}
