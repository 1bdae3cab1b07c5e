//! Control groups: where a container's cgroups are, creating them, applying
//! `linux.resources`, adding processes, freezing, statistics and removal.
//!
//! The host's layout is detected once per command: pure v2 (one cgroup2 mount
//! at /sys/fs/cgroup), pure v1, or hybrid (v1 controllers plus a cgroup2 mount
//! at /sys/fs/cgroup/unified). A relative `cgroupsPath` goes beneath the
//! caller's own cgroup (from /proc/self/cgroup; on pure v2, beneath its
//! parent, as runc: the caller's own holds the caller and so cannot pass
//! controllers on), an absolute one is used as given; the runtime only ever
//! writes to and removes directories it created.
//!
//! Each resource is applied through the hierarchy that holds its controller:
//! a v1 hierarchy when one is mounted, else the unified one when the
//! controller is enabled there. A resource whose controller is nowhere to be
//! had is an error naming the field, never skipped.

mod devices;
mod devices_bpf;
mod oom;
mod paths;
pub mod stats;
pub mod systemd;
mod v1;
mod v2;

use std::cell::OnceCell;
use std::collections::BTreeMap;
use std::io::{ErrorKind, Write as _};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::{OFlag, open};
use nix::sys::stat::Mode as FileMode;
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxCpu, LinuxMemory, LinuxResources};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub use oom::OomWatcher;
pub use paths::{
    Hierarchy, Layout, host_hierarchies, parse_hierarchies, parse_proc_cgroup, unescape_mountinfo,
};
pub use stats::Stats;

/// The name [`CgroupPaths::dirs`] and [`Hierarchy::name`] give the cgroup2
/// hierarchy.
pub const UNIFIED: &str = "unified";

/// The cgroup layout of the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Only cgroup v1 hierarchies.
    V1,
    /// v1 controllers, plus a cgroup2 hierarchy at /sys/fs/cgroup/unified.
    Hybrid,
    /// One cgroup2 hierarchy at /sys/fs/cgroup.
    V2,
}

/// Where a container's cgroups are: persisted in the container's state so that
/// later commands (`kill --all`, `pause`, `update`, `delete`) find them.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CgroupPaths {
    /// The host layout when the container was created.
    pub mode: Option<Mode>,
    /// Hierarchy name ("memory", "cpu,cpuacct", "name=systemd", "unified" for
    /// a cgroup2 hierarchy) → the container's cgroup directory in it.
    pub dirs: BTreeMap<String, PathBuf>,
    /// The directories the runtime created, outermost first within each
    /// hierarchy; only these are removed by `delete`.
    pub created: Vec<PathBuf>,
    /// The systemd scope unit holding the container (`--systemd-cgroup`),
    /// stopped by `delete`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub systemd_unit: Option<String>,
}

/// One value to write to a file of a cgroup directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Write {
    /// The file's name.
    pub file: String,
    /// What to write.
    pub value: String,
    /// The config field the value comes from (for errors).
    pub field: String,
    /// If the kernel refuses it (EINVAL), try again after the other writes
    /// of the same controller (a CFS period that only fits the new quota).
    pub deferrable: bool,
    /// Read the file back and require this number (and say this if not):
    /// for values the kernel clamps or silently ignores.
    pub expect: Option<(u64, &'static str)>,
}

impl Write {
    pub(crate) fn new(
        file: impl Into<String>,
        value: impl ToString,
        field: impl Into<String>,
    ) -> Self {
        Write {
            file: file.into(),
            value: value.to_string(),
            field: field.into(),
            deferrable: false,
            expect: None,
        }
    }

    pub(crate) fn deferrable(mut self) -> Self {
        self.deferrable = true;
        self
    }

    pub(crate) fn expect(mut self, value: u64, hint: &'static str) -> Self {
        self.expect = Some((value, hint));
        self
    }
}

/// Read access to the files of one cgroup directory, for the planners that
/// turn resources into [`Write`]s (a fake in unit tests).
pub(crate) trait Files {
    /// The file's content; `None` if it does not exist.
    fn read(&self, name: &str) -> Result<Option<String>>;
    /// Whether the file exists.
    fn exists(&self, name: &str) -> bool;
}

/// The files of a real cgroup directory.
pub(crate) struct DirFiles<'a>(pub &'a Path);

impl Files for DirFiles<'_> {
    fn read(&self, name: &str) -> Result<Option<String>> {
        read_opt(self.0, name)
    }
    fn exists(&self, name: &str) -> bool {
        self.0.join(name).exists()
    }
}

/// Writes `value` to file `name` of cgroup directory `dir` in one write(2),
/// without creating it; errors name `field` and the file.
pub(crate) fn write_file(dir: &Path, name: &str, value: &str, field: &str) -> Result<()> {
    write_raw(dir, name, value).map_err(|e| write_error(dir, name, value, field, e))
}

fn write_raw(dir: &Path, name: &str, value: &str) -> std::io::Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .open(dir.join(name))?
        .write_all(value.as_bytes())
}

fn write_error(dir: &Path, name: &str, value: &str, field: &str, e: std::io::Error) -> Error {
    let path = dir.join(name);
    let why = if e.kind() == ErrorKind::NotFound {
        "no such file (this kernel or cgroup does not have it)".to_string()
    } else {
        e.to_string()
    };
    Error::config(
        field,
        format!("writing {value:?} to {}: {why}", path.display()),
    )
}

/// Reads file `name` of cgroup directory `dir`.
pub(crate) fn read_file(dir: &Path, name: &str) -> Result<String> {
    let path = dir.join(name);
    crate::procfs::read_text(&path).map_err(|e| Error::io("read", path, e))
}

/// Reads file `name` of `dir`; `None` if it (or `dir`) does not exist.
pub(crate) fn read_opt(dir: &Path, name: &str) -> Result<Option<String>> {
    match crate::procfs::read_text(dir.join(name)) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENODEV) => {
            Ok(None)
        }
        Err(e) => Err(Error::io("read", dir.join(name), e)),
    }
}

/// Reads a number file of `dir` ("max" is `u64::MAX`); 0 when missing.
pub(crate) fn read_u64(dir: &Path, name: &str) -> Result<u64> {
    Ok(read_opt(dir, name)?
        .and_then(|s| stats::parse_u64(&s))
        .unwrap_or(0))
}

/// Carries out `writes` on `dir` in order (deferred ones last) and checks
/// the values that must read back unchanged.
pub(crate) fn execute(dir: &Path, writes: &[Write]) -> Result<()> {
    let mut deferred = Vec::new();
    // Consecutive writes to one file (the device rules) share one open.
    let mut open: Option<(&str, std::fs::File)> = None;
    for w in writes {
        let written = match &mut open {
            Some((name, file)) if *name == w.file => file.write_all(w.value.as_bytes()),
            _ => {
                open = None;
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(dir.join(&w.file))
                    .and_then(|mut file| {
                        let written = file.write_all(w.value.as_bytes());
                        open = Some((&w.file, file));
                        written
                    })
            }
        };
        match written {
            Ok(()) => check(dir, w)?,
            Err(e) if w.deferrable && e.raw_os_error() == Some(libc::EINVAL) => deferred.push(w),
            Err(e) => return Err(write_error(dir, &w.file, &w.value, &w.field, e)),
        }
    }
    for w in deferred {
        write_file(dir, &w.file, &w.value, &w.field)?;
        check(dir, w)?;
    }
    Ok(())
}

fn check(dir: &Path, w: &Write) -> Result<()> {
    let Some((want, hint)) = w.expect else {
        return Ok(());
    };
    let got = read_file(dir, &w.file)?;
    if stats::parse_u64(&got) == Some(want) {
        return Ok(());
    }
    Err(Error::config(
        &w.field,
        format!(
            "wrote {} to {} but the kernel keeps {}: {hint}",
            w.value,
            dir.join(&w.file).display(),
            got.trim()
        ),
    ))
}

/// `Some(v)` unless absent or 0: runc (and so its users) take 0 as "leave
/// unchanged" for these fields.
pub(crate) fn nonzero<T: Default + PartialEq>(v: Option<T>) -> Option<T> {
    v.filter(|v| *v != T::default())
}

/// Checks a limit that may be -1 (none) or a positive number.
pub(crate) fn limit_value(v: i64, field: &str) -> Result<i64> {
    if v < -1 {
        return Err(Error::config(
            field,
            format!("{v}: use -1 for no limit, or a positive number"),
        ));
    }
    Ok(v)
}

/// Where a controller's files for this container are.
#[derive(Clone, Copy, Debug)]
enum At<'a> {
    /// The container's directory in a v1 hierarchy.
    V1(&'a Path),
    /// The container's directory in the unified hierarchy.
    V2(&'a Path),
}

impl<'a> At<'a> {
    fn dir(self) -> &'a Path {
        match self {
            At::V1(d) | At::V2(d) => d,
        }
    }
}

/// Something [`Manager::set`] does: writes to one directory, or attaching a
/// device filter.
enum Op<'a> {
    Writes(&'a Path, Vec<Write>),
    DeviceFilter(&'a Path, devices::Reduced),
}

/// Moves the calling (single-threaded) process into the cgroups whose
/// `tasks` files `files` are ([`Manager::v1_join_files`]).
pub fn join_self(files: &[OwnedFd]) -> Result<()> {
    for fd in files {
        nix::unistd::write(fd, b"0")
            .map_err(|e| Error::sys("write", "0 to a cgroup's tasks file", e))?;
    }
    Ok(())
}

/// The cgroups of one container.
#[derive(Debug)]
pub struct Manager {
    paths: CgroupPaths,
    /// On v2 hosts, the container's cgroup directory opened (O_RDONLY), for
    /// CLONE_INTO_CGROUP and the device filter; opened on first use.
    dir_fd: OnceCell<Option<OwnedFd>>,
    /// The controllers enabled for the container's unified directory.
    v2_controllers: OnceCell<Vec<String>>,
    /// Hierarchies in which this unprivileged caller may not create cgroups:
    /// name, the directory it could not make, and why.
    denied: Vec<(String, PathBuf, std::io::Error)>,
    /// Directories placed but not made yet (hierarchy name → directory).
    planned: BTreeMap<String, PathBuf>,
}

impl Manager {
    /// Works out where the cgroups of container `id` go, from the config's
    /// `cgroupsPath` (None: a cgroup named after the id beneath the caller's).
    /// Changes nothing on the host.
    pub fn for_container(cgroups_path: Option<&Path>, id: &str) -> Result<Manager> {
        Self::with_layout(&Layout::detect()?, cgroups_path, id)
    }

    /// As [`Manager::for_container`], with a layout read earlier.
    pub fn with_layout(layout: &Layout, cgroups_path: Option<&Path>, id: &str) -> Result<Manager> {
        let mut paths = layout.place(cgroups_path, id)?;
        let planned = std::mem::take(&mut paths.dirs);
        let mut m = Self::from_paths(paths);
        m.planned = planned;
        Ok(m)
    }

    /// A manager for cgroups recorded earlier.
    pub fn from_paths(paths: CgroupPaths) -> Manager {
        Manager {
            paths,
            dir_fd: OnceCell::new(),
            v2_controllers: OnceCell::new(),
            denied: Vec::new(),
            planned: BTreeMap::new(),
        }
    }

    /// Every directory of the container, made or still planned.
    pub fn all_dirs(&self) -> BTreeMap<String, PathBuf> {
        let mut all = self.planned.clone();
        all.extend(self.paths.dirs.iter().map(|(k, v)| (k.clone(), v.clone())));
        all
    }

    /// Where the cgroups are (to persist in the state).
    pub fn paths(&self) -> &CgroupPaths {
        &self.paths
    }

    /// Creates the cgroup directories (recording them) and applies
    /// `resources`; the device rules are applied even without resources, as
    /// runc does: everything but the default devices is denied unless allowed.
    /// On error, what was created stays recorded for [`Manager::destroy`].
    pub fn create(&mut self, resources: Option<&LinuxResources>) -> Result<()> {
        self.create_unified()?;
        self.create_rest(resources)
    }

    /// The first half of [`Manager::create`], before the container's process
    /// exists: the cgroup2 directory (v2 and hybrid hosts), so that clone3
    /// can place the process in it.
    pub fn create_unified(&mut self) -> Result<()> {
        self.make_dirs(true, None)?;
        if let Some(dir) = self.paths.unified() {
            let _ = self.dir_fd.set(Some(open_dir(dir)?));
        }
        Ok(())
    }

    /// The second half of [`Manager::create`], done while the new process
    /// sets up its namespaces: the v1 directories, then the resources.
    pub fn create_rest(&mut self, resources: Option<&LinuxResources>) -> Result<()> {
        let cpu = resources.and_then(|r| r.cpu().as_ref());
        self.make_dirs(false, cpu)?;
        let none = LinuxResources::default();
        self.set(resources.unwrap_or(&none), true)
    }

    /// Makes the planned directories of the unified hierarchy (`unified`)
    /// or of the others.
    fn make_dirs(
        &mut self,
        unified: bool,
        cpu: Option<&oci_spec::runtime::LinuxCpu>,
    ) -> Result<()> {
        let names: Vec<String> = self
            .planned
            .keys()
            .filter(|n| (n.as_str() == UNIFIED) == unified)
            .cloned()
            .collect();
        // A directory is recorded once made: should making another fail, the
        // clean-up must not kill processes of a cgroup that is not ours.
        for name in names {
            let Some(dir) = self.planned.remove(&name) else {
                continue;
            };
            let made = match paths::make_dir(&dir)? {
                paths::Made::Created(made) => made,
                paths::Made::Denied(at, e) => {
                    if !paths::rootless() {
                        return Err(Error::io("mkdir", &at, e));
                    }
                    tracing::debug!("no cgroup in {name} for an unprivileged caller: {e}");
                    self.denied.push((name, at, e));
                    continue;
                }
            };
            self.paths.created.extend(made.iter().cloned());
            self.paths.dirs.insert(name.clone(), dir);
            if name == UNIFIED {
                v2::enable_controllers(&made[..made.len() - 1])?;
            } else if name.split(',').any(|c| c == "cpuset") {
                v1::init_cpuset(&made, cpu)?;
            }
        }
        Ok(())
    }

    /// A descriptor of the container's cgroup2 directory for clone3's
    /// CLONE_INTO_CGROUP (also for processes joining the container later):
    /// on v2 hosts the whole membership, on hybrid hosts the unified
    /// hierarchy's part; `None` on v1 hosts, or if it cannot be opened.
    pub fn clone_into_fd(&self) -> Option<BorrowedFd<'_>> {
        self.dir_fd
            .get_or_init(|| match (self.paths.mode, self.paths.unified()) {
                (Some(Mode::V2) | Some(Mode::Hybrid), Some(dir)) => open_dir(dir).ok(),
                _ => None,
            })
            .as_ref()
            .map(|fd| fd.as_fd())
    }

    /// The `tasks` files of the container's v1 hierarchies, opened for
    /// writing, for a new single-threaded process to join them itself with
    /// [`join_self`]. (Writing another process's pid into `cgroup.procs`
    /// takes the kernel's threadgroup lock, which waits for an RCU grace
    /// period — several milliseconds; a thread moving itself through `tasks`
    /// takes no such lock.) Empty on v2 hosts.
    pub fn v1_join_files(&self) -> Result<Vec<OwnedFd>> {
        let mut out = Vec::new();
        for (name, dir) in &self.paths.dirs {
            if name == UNIFIED {
                continue;
            }
            let path = dir.join("tasks");
            let fd = nix::fcntl::open(
                &path,
                nix::fcntl::OFlag::O_WRONLY | nix::fcntl::OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .map_err(|e| {
                Error::cgroup(&path, format!("opening for the container's process: {e}"))
            })?;
            out.push(fd);
        }
        Ok(out)
    }

    /// Whether the cgroup namespace can be created at clone time: only when
    /// clone3 places the process in all its cgroups (pure v2).
    pub fn joined_at_clone(&self) -> bool {
        self.paths.mode == Some(Mode::V2) && self.clone_into_fd().is_some()
    }

    /// Moves process `pid` into the container's cgroups (every hierarchy).
    pub fn add_process(&self, pid: Pid) -> Result<()> {
        for dir in self.paths.dirs.values() {
            move_process(dir, pid)?;
        }
        Ok(())
    }

    /// As [`Manager::add_process`] for a process joining a running
    /// container (exec) whose init is `init`: where the container's own
    /// cgroup2 directory takes no process, into the init's.
    pub fn add_joining_process(&self, pid: Pid, init: Pid) -> Result<()> {
        match self.add_process(pid) {
            Err(Error::Cgroup { reason, .. }) if reason.contains(BUSY) => {}
            r => return r,
        }
        match self.init_cgroup(init)? {
            Some(dir) => move_process(&dir, pid),
            None => self.add_process(pid),
        }
    }

    /// The cgroup2 directory of the container's init when it is beneath
    /// the container's own, for processes joining the container later: a
    /// container that nests its cgroups (systemd, or an engine, inside)
    /// moves its processes into a child cgroup and enables controllers for
    /// the children, after which (cgroup v2's "no internal processes") its
    /// own cgroup takes no process (EBUSY); runc then uses the init's.
    /// `None` on v1 hosts or while the init is in the container's own.
    pub fn init_cgroup(&self, init: Pid) -> Result<Option<PathBuf>> {
        let Some(own) = self.paths.unified() else {
            return Ok(None);
        };
        let path = format!("/proc/{init}/cgroup");
        let text = crate::procfs::read_text(&path).map_err(|e| Error::io("read", &path, e))?;
        let Some(cgroup) = parse_proc_cgroup(&text).remove(UNIFIED) else {
            return Ok(None);
        };
        let Some(h) = host_hierarchies()?.into_iter().find(|h| h.version == 2) else {
            return Ok(None);
        };
        let Ok(inside) = cgroup.strip_prefix(&h.root) else {
            return Ok(None);
        };
        let dir = h.mount_point.join(inside);
        let plain = inside
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
        Ok((plain && dir.starts_with(own) && dir != own).then_some(dir))
    }

    /// [`Manager::init_cgroup`] opened for CLONE_INTO_CGROUP.
    pub fn open_init_cgroup(&self, init: Pid) -> Result<Option<OwnedFd>> {
        self.init_cgroup(init)?.map(|d| open_dir(&d)).transpose()
    }

    /// Applies `resources` to the existing cgroups (for `update`): only the
    /// fields given change.
    pub fn apply(&self, resources: &LinuxResources) -> Result<()> {
        self.set(resources, false)
    }

    /// The pids of all processes in the container's cgroup, including
    /// sub-cgroups made inside it.
    pub fn pids(&self) -> Result<Vec<Pid>> {
        let dir = match self.paths.mode {
            Some(Mode::V2) => self.paths.unified(),
            _ => self
                .paths
                .v1("pids")
                .or_else(|| self.paths.v1("freezer"))
                .or_else(|| self.paths.dirs.values().next().map(PathBuf::as_path)),
        };
        let Some(dir) = dir else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for d in paths::tree(dir)? {
            if let Some(text) = read_opt(&d, "cgroup.procs")? {
                out.extend(
                    text.lines()
                        .filter_map(|l| l.trim().parse().ok())
                        .map(Pid::from_raw),
                );
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// Freezes (true) or thaws (false) every process in the cgroup, waiting
    /// until the kernel reports the new state.
    pub fn set_frozen(&self, frozen: bool) -> Result<()> {
        if let Some(dir) = self.paths.v1("freezer") {
            v1::set_frozen(dir, frozen)
        } else if let Some(dir) = self.paths.unified() {
            v2::set_frozen(dir, frozen)
        } else {
            Err(Error::Unsupported(
                "pausing needs the freezer: neither the v1 freezer hierarchy nor cgroup2 \
                 holds this container"
                    .into(),
            ))
        }
    }

    /// Whether the cgroup is frozen.
    pub fn is_frozen(&self) -> Result<bool> {
        if let Some(dir) = self.paths.v1("freezer") {
            v1::is_frozen(dir)
        } else if let Some(dir) = self.paths.unified() {
            v2::is_frozen(dir)
        } else {
            Ok(false)
        }
    }

    /// Current statistics: CPU, memory, tasks and block I/O, from whichever
    /// hierarchy holds each controller (zeros where none does).
    pub fn stats(&self) -> Result<Stats> {
        let mut s = Stats::default();
        let v2 = self.paths.unified();
        match (self.paths.v1("cpuacct"), v2) {
            (Some(d), _) => v1::cpu_usage(d, &mut s.cpu)?,
            (None, Some(d)) => v2::cpu_stats(d, &mut s.cpu)?,
            _ => {}
        }
        if let Some(d) = self.paths.v1("cpu") {
            v1::cpu_throttling(d, &mut s.cpu)?;
        }
        match (self.paths.v1("memory"), v2) {
            (Some(d), _) => v1::memory_stats(d, &mut s.memory)?,
            (None, Some(d)) => v2::memory_stats(d, &mut s.memory)?,
            _ => {}
        }
        if let Some(d) = self.paths.v1("pids").or(v2) {
            s.pids.current = read_u64(d, "pids.current")?;
            s.pids.limit = match read_u64(d, "pids.max")? {
                u64::MAX => 0,
                n => n,
            };
        }
        match (self.paths.v1("blkio"), v2) {
            (Some(d), _) => v1::blkio_stats(d, &mut s.blkio)?,
            (None, Some(d)) => v2::io_stats(d, &mut s.blkio)?,
            _ => {}
        }
        Ok(s)
    }

    /// Watches for OOM kills in the container's memory cgroup (for
    /// `events`).
    pub fn oom_watcher(&self) -> Result<OomWatcher> {
        if let Some(d) = self.paths.v1("memory") {
            OomWatcher::v1(d)
        } else if let Some(d) = self.paths.unified() {
            OomWatcher::v2(d)
        } else {
            Err(Error::Unsupported(
                "no memory cgroup holds this container: OOM kills cannot be watched".into(),
            ))
        }
    }

    /// Removes the cgroups this manager made when each is an empty leaf, as
    /// they are once the init of a pid namespace of the container's own is
    /// reaped; `false` at the first that is not (nothing is waited for), the
    /// rest being left to [`Manager::destroy`].
    pub fn remove_if_empty(&self) -> bool {
        self.paths.systemd_unit.is_none()
            && self
                .paths
                .created
                .iter()
                .rev()
                .all(|dir| match std::fs::remove_dir(dir) {
                    Ok(()) => true,
                    Err(e) => e.kind() == ErrorKind::NotFound,
                })
    }

    /// Removes the directories the runtime created, innermost first, with
    /// any sub-cgroups processes made inside the container's. Processes
    /// still inside make it fail with a clear error.
    pub fn destroy(&self) -> Result<()> {
        let stopped = self.stop_unit();
        let leaves: Vec<&Path> = self.paths.dirs.values().map(PathBuf::as_path).collect();
        let removed = paths::remove_dirs(&self.paths.created, &leaves);
        stopped.and(removed)
    }

    /// The controllers enabled for the container's unified directory.
    fn v2_controllers(&self, dir: &Path) -> Result<&[String]> {
        if let Some(c) = self.v2_controllers.get() {
            return Ok(c);
        }
        let list = read_file(dir, "cgroup.controllers")?
            .split_whitespace()
            .map(str::to_string)
            .collect();
        Ok(self.v2_controllers.get_or_init(|| list))
    }

    /// Where `controller` is for this container: its v1 hierarchy, else
    /// the unified hierarchy if the controller is enabled there.
    fn at(&self, controller: &str, field: &str) -> Result<At<'_>> {
        if let Some(d) = self.paths.v1(controller) {
            return Ok(At::V1(d));
        }
        if let Some(d) = self.paths.unified() {
            if self.v2_controllers(d)?.iter().any(|c| c == controller) {
                return Ok(At::V2(d));
            }
            let outer = self.paths.outermost_created(d);
            let parent = outer.parent().unwrap_or(&outer);
            let offered = read_opt(parent, "cgroup.controllers")?.unwrap_or_default();
            let reason = if offered.split_whitespace().any(|c| c == controller) {
                format!(
                    "the {controller} controller is not enabled for {}: {} does not list it \
                     (capsa does not change cgroups it did not create; enable it there or \
                     choose a linux.cgroupsPath beneath a cgroup that delegates it)",
                    d.display(),
                    parent.join("cgroup.subtree_control").display()
                )
            } else if self.paths.mode == Some(Mode::V2) {
                format!(
                    "the {controller} controller is not available: {} does not offer it",
                    parent.join("cgroup.controllers").display()
                )
            } else {
                format!(
                    "no cgroup hierarchy provides the {controller} controller \
                     (no v1 hierarchy of it is mounted, and {} does not offer it)",
                    parent.join("cgroup.controllers").display()
                )
            };
            return Err(Error::config(field, reason));
        }
        let why = self.denied_reason(controller).unwrap_or_else(|| {
            format!("no cgroup hierarchy with the {controller} controller is mounted on this host")
        });
        Err(Error::config(field, why))
    }

    /// Why `controller` is out of reach of this unprivileged caller, if it is.
    fn denied_reason(&self, controller: &str) -> Option<String> {
        let holds = |name: &str| name.split(',').any(|c| c == controller);
        let (name, dir, err) = self
            .denied
            .iter()
            .find(|(name, _, _)| holds(name))
            .or_else(|| self.denied.iter().find(|(name, _, _)| name == UNIFIED))?;
        let parent = dir.parent().unwrap_or(dir);
        Some(format!(
            "the {controller} controller is out of reach: user {} may not create cgroups in {} \
             ({name} hierarchy; mkdir {}: {err}): that cgroup is not delegated to this user. \
             Run without linux.resources, or from a cgroup delegated to the user (cgroup v2, \
             owned by it, with the controller in cgroup.subtree_control)",
            nix::unistd::geteuid(),
            parent.display(),
            dir.display()
        ))
    }

    /// Works out every change `r` asks for (so that refusals come before
    /// anything is written), then makes them.
    fn set(&self, r: &LinuxResources, initial: bool) -> Result<()> {
        let mut ops: Vec<Op<'_>> = Vec::new();
        if let Some(c) = r.cpu() {
            let w = cpuset_writes(c);
            if !w.is_empty() {
                ops.push(Op::Writes(
                    self.at("cpuset", "linux.resources.cpu.cpus")?.dir(),
                    w,
                ));
            }
        }
        if let Some(op) = self.devices_op(r, initial)? {
            ops.push(op);
        }
        if let Some(m) = r.memory().as_ref().filter(|m| memory_is_set(m)) {
            let w = match self.at("memory", "linux.resources.memory")? {
                At::V1(d) => (d, v1::memory(m, initial, &DirFiles(d))?),
                At::V2(d) => (d, v2::memory(m, initial, &DirFiles(d))?),
            };
            ops.push(Op::Writes(w.0, w.1));
        }
        if let Some(c) = r.cpu().as_ref().filter(|c| scheduler_is_set(c)) {
            let w = match self.at("cpu", "linux.resources.cpu")? {
                At::V1(d) => (d, v1::cpu(c)?),
                At::V2(d) => (d, v2::cpu(c, &DirFiles(d))?),
            };
            ops.push(Op::Writes(w.0, w.1));
        }
        if let Some(p) = r.pids() {
            let limit = p.limit();
            if !(initial && limit <= 0) {
                let d = self.at("pids", "linux.resources.pids")?.dir();
                let value = if limit > 0 {
                    limit.to_string()
                } else {
                    "max".into()
                };
                ops.push(Op::Writes(
                    d,
                    vec![Write::new("pids.max", value, "linux.resources.pids.limit")],
                ));
            }
        }
        if let Some(b) = r.block_io().as_ref().filter(|b| block_io_is_set(b)) {
            let field = "linux.resources.blockIO";
            let w = match self.paths.v1("blkio") {
                Some(d) => (d, v1::block_io(b, &DirFiles(d))?),
                None => {
                    let d = self.at("io", field)?.dir();
                    (d, v2::io(b, &DirFiles(d))?)
                }
            };
            ops.push(Op::Writes(w.0, w.1));
        }
        if let Some(list) = r.hugepage_limits().as_ref().filter(|l| !l.is_empty()) {
            let w = match self.at("hugetlb", "linux.resources.hugepageLimits")? {
                At::V1(d) => (d, hugetlb(list, &DirFiles(d), "limit_in_bytes")?),
                At::V2(d) => (d, hugetlb(list, &DirFiles(d), "max")?),
            };
            ops.push(Op::Writes(w.0, w.1));
        }
        if let Some(n) = r.network() {
            ops.extend(self.network_ops(n)?);
        }
        if let Some(map) = r.rdma().as_ref().filter(|m| !m.is_empty()) {
            let d = self.at("rdma", "linux.resources.rdma")?.dir();
            ops.push(Op::Writes(d, rdma_writes(map)));
        }
        if let Some(map) = r.unified().as_ref().filter(|m| !m.is_empty()) {
            ops.push(self.unified_op(map)?);
        }
        for op in ops {
            match op {
                Op::Writes(dir, w) => execute(dir, &w)?,
                Op::DeviceFilter(dir, rules) => match self.dir_fd.get() {
                    Some(Some(fd)) => devices_bpf::apply(fd.as_fd(), dir, &rules)?,
                    _ => devices_bpf::apply(open_dir(dir)?.as_fd(), dir, &rules)?,
                },
            }
        }
        Ok(())
    }

    /// The device rules to apply: the config's (when given) then the
    /// defaults, at creation even without any; nothing on update without
    /// rules. An unprivileged caller gets no implicit rules.
    fn devices_op(&self, r: &LinuxResources, initial: bool) -> Result<Option<Op<'_>>> {
        let (mut rules, explicit) = match (r.devices(), initial) {
            (Some(list), _) => (devices::parse_rules(list)?, true),
            (None, true) => (Vec::new(), false),
            (None, false) => return Ok(None),
        };
        if !explicit && paths::rootless() {
            return Ok(None);
        }
        rules.extend(devices::default_allowed());
        let reduced = devices::reduce(&rules)?;
        if let Some(d) = self.paths.v1("devices") {
            let w = devices::v1_writes(&reduced)
                .into_iter()
                .map(|(file, line)| Write::new(file, line, devices::FIELD))
                .collect();
            return Ok(Some(Op::Writes(d, w)));
        }
        if let Some(d) = self.paths.unified() {
            return Ok(Some(Op::DeviceFilter(d, reduced)));
        }
        if explicit {
            return Err(Error::config(
                devices::FIELD,
                self.denied_reason("devices").unwrap_or_else(|| {
                    "there is no devices controller: neither a v1 devices hierarchy nor \
                     cgroup2 holds this container"
                        .into()
                }),
            ));
        }
        Ok(None)
    }

    /// `linux.resources.unified`: cgroup v2 files, each of a controller
    /// enabled for the container's unified directory (or "cgroup.").
    fn unified_op(&self, map: &std::collections::HashMap<String, String>) -> Result<Op<'_>> {
        let field = "linux.resources.unified";
        let d = self.paths.unified().ok_or_else(|| {
            Error::config(
                field,
                "unified resources are cgroup v2 files, and this host has only cgroup v1",
            )
        })?;
        let controllers = self.v2_controllers(d)?;
        let writes = v2::unified(map)?;
        for w in &writes {
            let ctrl = w.file.split('.').next().unwrap_or_default();
            if ctrl == "cgroup" || controllers.iter().any(|c| c == ctrl) {
                continue;
            }
            if self.paths.v1(ctrl).is_some() {
                return Err(Error::config(
                    &w.field,
                    format!(
                        "the {ctrl} controller is a cgroup v1 hierarchy on this host; unified \
                         entries are cgroup v2 files"
                    ),
                ));
            }
            self.at(ctrl, &w.field)?;
        }
        Ok(Op::Writes(d, writes))
    }

    /// `linux.resources.network`: the v1 net_cls and net_prio controllers.
    fn network_ops(&self, n: &oci_spec::runtime::LinuxNetwork) -> Result<Vec<Op<'_>>> {
        let mut ops = Vec::new();
        let missing = |ctrl: &str| {
            if self.paths.mode == Some(Mode::V2) {
                format!(
                    "cgroup v2 has no {ctrl} controller (use eBPF or the network namespace instead)"
                )
            } else {
                format!("no {ctrl} cgroup hierarchy is mounted on this host")
            }
        };
        if let Some(id) = n.class_id() {
            let field = "linux.resources.network.classID";
            let d = self
                .paths
                .v1("net_cls")
                .ok_or_else(|| Error::config(field, missing("net_cls")))?;
            ops.push(Op::Writes(
                d,
                vec![Write::new("net_cls.classid", id, field)],
            ));
        }
        if let Some(prios) = n.priorities().as_ref().filter(|p| !p.is_empty()) {
            let field = "linux.resources.network.priorities";
            let d = self
                .paths
                .v1("net_prio")
                .ok_or_else(|| Error::config(field, missing("net_prio")))?;
            let w = prios
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    Write::new(
                        "net_prio.ifpriomap",
                        format!("{} {}", p.name(), p.priority()),
                        format!("{field}[{i}]"),
                    )
                })
                .collect();
            ops.push(Op::Writes(d, w));
        }
        Ok(ops)
    }
}

/// What [`move_process`] says when a cgroup takes no process (EBUSY).
const BUSY: &str = "the cgroup takes no process (EBUSY)";

/// Writes `pid` to the `cgroup.procs` of `dir`.
fn move_process(dir: &Path, pid: Pid) -> Result<()> {
    write_raw(dir, "cgroup.procs", &pid.to_string()).map_err(|e| {
        let why = if e.raw_os_error() == Some(libc::EBUSY) {
            BUSY.to_string()
        } else {
            e.to_string()
        };
        Error::cgroup(
            dir.join("cgroup.procs"),
            format!("moving process {pid} in: {why}"),
        )
    })
}

/// Opens a cgroup directory for CLONE_INTO_CGROUP and bpf(2).
fn open_dir(dir: &Path) -> Result<OwnedFd> {
    open(
        dir,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        FileMode::empty(),
    )
    .map_err(|e| Error::sys("open", dir.display().to_string(), e))
}

/// Whether `m` sets anything (0 means "unchanged" for the limits, as in runc).
fn memory_is_set(m: &LinuxMemory) -> bool {
    nonzero(m.limit()).is_some()
        || nonzero(m.reservation()).is_some()
        || nonzero(m.swap()).is_some()
        || nonzero(m.kernel()).is_some()
        || nonzero(m.kernel_tcp()).is_some()
        || m.swappiness().is_some()
        || m.disable_oom_killer().is_some()
        || m.use_hierarchy().is_some()
}

/// Refuses a new limit below what the cgroup uses now (`checkBeforeUpdate`).
pub(crate) fn check_usage(
    m: &LinuxMemory,
    initial: bool,
    limit: Option<i64>,
    files: &dyn Files,
    usage_file: &str,
) -> Result<()> {
    if initial || m.check_before_update() != Some(true) {
        return Ok(());
    }
    let Some(limit) = limit.filter(|l| *l > 0) else {
        return Ok(());
    };
    let usage = files
        .read(usage_file)?
        .and_then(|s| stats::parse_u64(&s))
        .unwrap_or(0);
    if (limit as u64) < usage {
        return Err(Error::config(
            "linux.resources.memory.limit",
            format!(
                "{limit} is below the {usage} bytes the container uses now (checkBeforeUpdate)"
            ),
        ));
    }
    Ok(())
}

/// Whether `c` sets anything of the cpu controller (not cpuset).
fn scheduler_is_set(c: &LinuxCpu) -> bool {
    nonzero(c.shares()).is_some()
        || nonzero(c.quota()).is_some()
        || nonzero(c.period()).is_some()
        || nonzero(c.realtime_runtime()).is_some()
        || nonzero(c.realtime_period()).is_some()
        || c.idle().is_some()
        || c.burst().is_some()
}

fn block_io_is_set(b: &oci_spec::runtime::LinuxBlockIo) -> bool {
    let non_empty = |l: &Option<Vec<oci_spec::runtime::LinuxThrottleDevice>>| {
        l.as_ref().is_some_and(|l| !l.is_empty())
    };
    nonzero(b.weight()).is_some()
        || nonzero(b.leaf_weight()).is_some()
        || b.weight_device().as_ref().is_some_and(|l| !l.is_empty())
        || non_empty(b.throttle_read_bps_device())
        || non_empty(b.throttle_write_bps_device())
        || non_empty(b.throttle_read_iops_device())
        || non_empty(b.throttle_write_iops_device())
}

/// cpuset.cpus and cpuset.mems (the same files on v1 and v2).
fn cpuset_writes(c: &LinuxCpu) -> Vec<Write> {
    let mut w = Vec::new();
    if let Some(cpus) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
        w.push(Write::new("cpuset.cpus", cpus, "linux.resources.cpu.cpus"));
    }
    if let Some(mems) = c.mems().as_deref().filter(|s| !s.is_empty()) {
        w.push(Write::new("cpuset.mems", mems, "linux.resources.cpu.mems"));
    }
    w
}

/// rdma.max lines (the same file on v1 and v2).
fn rdma_writes(
    map: &std::collections::HashMap<String, oci_spec::runtime::LinuxRdma>,
) -> Vec<Write> {
    let mut devices: Vec<_> = map.iter().collect();
    devices.sort_by_key(|(name, _)| name.as_str());
    devices
        .into_iter()
        .map(|(name, l)| {
            let n = |v: Option<u32>| v.map_or("max".to_string(), |v| v.to_string());
            Write::new(
                "rdma.max",
                format!(
                    "{name} hca_handle={} hca_object={}",
                    n(l.hca_handles()),
                    n(l.hca_objects())
                ),
                format!("linux.resources.rdma.{name}"),
            )
        })
        .collect()
}

/// hugetlb.<size>.<suffix> (and the reservation limit where the kernel has
/// one) for each huge page limit.
fn hugetlb(
    list: &[oci_spec::runtime::LinuxHugepageLimit],
    files: &dyn Files,
    suffix: &str,
) -> Result<Vec<Write>> {
    let mut w = Vec::new();
    for (i, l) in list.iter().enumerate() {
        let field = format!("linux.resources.hugepageLimits[{i}]");
        let size = l.page_size();
        if size.is_empty() || !size.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(Error::config(
                format!("{field}.pageSize"),
                format!("{size:?} is not a page size such as \"2MB\" or \"1GB\""),
            ));
        }
        let file = format!("hugetlb.{size}.{suffix}");
        if !files.exists(&file) {
            return Err(Error::config(
                format!("{field}.pageSize"),
                format!("this host has no {size} huge pages (no {file})"),
            ));
        }
        let limit = limit_value(l.limit(), &format!("{field}.limit"))?;
        let value = match (limit, suffix) {
            (-1, "max") => "max".to_string(),
            (v, _) => v.to_string(),
        };
        w.push(Write::new(&file, &value, format!("{field}.limit")));
        let rsvd = format!("hugetlb.{size}.rsvd.{suffix}");
        if files.exists(&rsvd) {
            w.push(Write::new(rsvd, value, format!("{field}.limit")));
        }
    }
    Ok(w)
}

/// Merges a partial resources object (as `update` takes) into `base`: the
/// fields `patch` gives replace those of `base`; device rules replace the
/// whole list; lists of per-device or per-size limits are merged by device
/// or size.
pub fn merge_resources(base: &LinuxResources, patch: &LinuxResources) -> Result<LinuxResources> {
    let to = |r: &LinuxResources| {
        serde_json::to_value(r).map_err(|e| Error::Other(format!("serialising resources: {e}")))
    };
    let mut b = to(base)?;
    merge_json(&mut b, &to(patch)?, "");
    serde_json::from_value(b).map_err(|e| Error::Other(format!("merging resources: {e}")))
}

fn merge_json(base: &mut serde_json::Value, patch: &serde_json::Value, name: &str) {
    use serde_json::Value;
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                match b.get_mut(k) {
                    Some(old) if !v.is_null() => merge_json(old, v, k),
                    _ => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (Value::Array(b), Value::Array(p)) if name != "devices" => {
            let key = |v: &Value| match name {
                "hugepageLimits" => vec![v.get("pageSize").cloned()],
                "priorities" => vec![v.get("name").cloned()],
                _ => vec![v.get("major").cloned(), v.get("minor").cloned()],
            };
            for item in p {
                match b.iter_mut().find(|o| key(o) == key(item)) {
                    Some(old) => merge_json(old, item, ""),
                    None => b.push(item.clone()),
                }
            }
        }
        (b, p) => *b = p.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fake cgroup files for the planners.
    pub(crate) struct Fake(pub BTreeMap<&'static str, &'static str>);

    impl Files for Fake {
        fn read(&self, name: &str) -> Result<Option<String>> {
            Ok(self.0.get(name).map(|s| s.to_string()))
        }
        fn exists(&self, name: &str) -> bool {
            self.0.contains_key(name)
        }
    }

    pub(crate) fn pairs(w: &[Write]) -> Vec<(&str, &str)> {
        w.iter()
            .map(|w| (w.file.as_str(), w.value.as_str()))
            .collect()
    }

    pub(crate) fn resources(json: &str) -> LinuxResources {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn hugetlb_checks_the_page_size() {
        let files = Fake(BTreeMap::from([
            ("hugetlb.2MB.max", "max"),
            ("hugetlb.2MB.rsvd.max", "max"),
        ]));
        let r = resources(r#"{"hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}]}"#);
        let w = hugetlb(r.hugepage_limits().as_ref().unwrap(), &files, "max").unwrap();
        assert_eq!(w.len(), 2);
        assert_eq!(
            (w[0].file.as_str(), w[0].value.as_str()),
            ("hugetlb.2MB.max", "4194304")
        );
        assert_eq!(w[1].file, "hugetlb.2MB.rsvd.max");
        for bad in ["1GB", "../x", ""] {
            let r = resources(&format!(
                r#"{{"hugepageLimits": [{{"pageSize": "{bad}", "limit": 1}}]}}"#
            ));
            let e = hugetlb(r.hugepage_limits().as_ref().unwrap(), &files, "max")
                .unwrap_err()
                .to_string();
            assert!(e.contains("hugepageLimits[0].pageSize"), "{e}");
        }
    }

    #[test]
    fn rdma_lines() {
        let r = resources(
            r#"{"rdma": {"mlx5_1": {"hcaHandles": 3}, "mlx4_0": {"hcaHandles": 2, "hcaObjects": 2000}}}"#,
        );
        let w = rdma_writes(r.rdma().as_ref().unwrap());
        assert_eq!(w[0].value, "mlx4_0 hca_handle=2 hca_object=2000");
        assert_eq!(w[1].value, "mlx5_1 hca_handle=3 hca_object=max");
    }

    #[test]
    fn partial_updates_merge_field_by_field() {
        let base = resources(
            r#"{"memory": {"limit": 100, "swap": 200}, "cpu": {"shares": 512, "cpus": "0"},
                "blockIO": {"throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1},
                                                      {"major": 8, "minor": 16, "rate": 2}]},
                "devices": [{"allow": false, "access": "rwm"}]}"#,
        );
        let patch = resources(
            r#"{"memory": {"limit": 300}, "cpu": {"quota": 5000},
                "blockIO": {"throttleReadBpsDevice": [{"major": 8, "minor": 16, "rate": 9}]},
                "pids": {"limit": 10}}"#,
        );
        let m = merge_resources(&base, &patch).unwrap();
        let mem = m.memory().as_ref().unwrap();
        assert_eq!((mem.limit(), mem.swap()), (Some(300), Some(200)));
        let cpu = m.cpu().as_ref().unwrap();
        assert_eq!((cpu.shares(), cpu.quota()), (Some(512), Some(5000)));
        assert_eq!(cpu.cpus().as_deref(), Some("0"));
        assert_eq!(m.pids().as_ref().unwrap().limit(), 10);
        let t = m
            .block_io()
            .as_ref()
            .unwrap()
            .throttle_read_bps_device()
            .clone()
            .unwrap();
        assert_eq!((t[0].rate(), t[1].rate()), (1, 9));
        assert_eq!(m.devices().as_ref().unwrap().len(), 1);
    }

    #[test]
    fn writes_execute_in_order_and_check_read_back() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), "").unwrap();
        std::fs::write(dir.path().join("b"), "").unwrap();
        execute(
            dir.path(),
            &[
                Write::new("a", 5, "f.a").expect(5, "x"),
                Write::new("b", "max", "f.b"),
            ],
        )
        .unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("b")).unwrap(),
            "max"
        );
        let e = execute(dir.path(), &[Write::new("missing", 1, "f.m")])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("f.m") && e.contains("missing") && e.contains("no such file"),
            "{e}"
        );
    }
}
