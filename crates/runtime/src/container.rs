//! Container lifecycle operations: create, start, run, state, list, kill,
//! delete, pause, resume.
//!
//! `create` forks the container's init process with clone3 (new namespaces
//! at once, and on cgroup v2 straight into its cgroup), drives its set-up over
//! a [`Channel`], records the state and returns while the init process waits
//! on the start socket. No program is re-executed.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use nix::sched::CloneFlags;
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::cgroups::Manager;
use crate::error::{Error, IoContext, Result};
use crate::hooks::{self, Kind};
use crate::init::{self, Init};
use crate::namespaces::{self, Plan};
use crate::spec;
use crate::state::{ContainerDir, Record, StateRoot, Status, write_atomic};
use crate::sync::{Channel, Msg};
use crate::sys::{self, CloneResult};
use crate::{console, process, procfs};

/// Options of `create` (and of the create half of `run`).
#[derive(Clone, Debug, Default)]
pub struct CreateOptions {
    /// The container's id.
    pub id: String,
    /// The bundle directory (holding config.json).
    pub bundle: PathBuf,
    /// Where to write the init process's pid.
    pub pid_file: Option<PathBuf>,
    /// The unix socket that receives the pty master when `process.terminal` is set.
    pub console_socket: Option<PathBuf>,
    /// Use MS_MOVE + chroot instead of pivot_root.
    pub no_pivot: bool,
    /// Do not give the container its own session keyring.
    pub no_new_keyring: bool,
    /// Pass descriptors 3 .. 3+N of the caller to the container's process.
    pub preserve_fds: u32,
}

/// A container whose init process exists and waits to be started, still
/// attached to the process that created it (used by `run`).
#[derive(Debug)]
pub struct Created {
    record: Record,
    spec: Spec,
    chan: Channel,
    /// "Start" was sent during creation (the init execs once set up).
    start_sent: bool,
    /// The pty master, when `run` received it itself (no console socket).
    pub pty_master: Option<OwnedFd>,
}

impl Created {
    /// The init process's host pid.
    pub fn pid(&self) -> Pid {
        Pid::from_raw(self.record.pid)
    }

    /// The container's id.
    pub fn id(&self) -> &str {
        &self.record.id
    }
}

/// Handle on a state root: every lifecycle operation goes through it.
#[derive(Clone, Debug)]
pub struct Runtime {
    root: StateRoot,
    /// Containers created get their cgroups from systemd (a scope unit).
    systemd_cgroup: bool,
}

/// What kind of caller creates the container.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// `create`: the init waits on the start socket after we exit.
    Create,
    /// The caller starts it over the set-up channel when it chooses.
    Attached,
    /// `run`: started over the set-up channel as soon as it is set up.
    Run,
}

/// Undoes a half-made container when creation fails.
struct Cleanup {
    child: Option<Pid>,
    cgroups: Option<Manager>,
    dir: Option<ContainerDir>,
    pid_file: Option<PathBuf>,
    poststop: Option<(oci_spec::runtime::Hooks, Vec<u8>)>,
}

impl Cleanup {
    fn run(&mut self) {
        if let Some(pid) = self.child.take() {
            let _ = kill(pid, Signal::SIGKILL);
            let _ = waitpid(pid, None);
        }
        if let Some(cg) = self.cgroups.take()
            && let Err(e) = destroy_cgroups(&cg)
        {
            tracing::warn!("cleaning up after a failed create: {e}");
        }
        if let Some(dir) = self.dir.take() {
            let _ = dir.remove();
        }
        if let Some(path) = self.pid_file.take() {
            let _ = std::fs::remove_file(path);
        }
        if let Some((hooks, state)) = self.poststop.take() {
            hooks::run_all_warn(Some(&hooks), Kind::Poststop, &state);
        }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        self.run();
    }
}

/// A container's record together with its live status.
#[derive(Clone, Debug)]
pub struct Info {
    /// What state.json says.
    pub record: Record,
    /// The status now.
    pub status: Status,
}

impl Info {
    /// The runtime-spec state JSON (with runc's extra fields).
    pub fn oci_state(&self) -> serde_json::Value {
        self.record.oci_state(self.status)
    }
}

impl Runtime {
    /// A runtime keeping its state under `root`.
    pub fn new(root: impl Into<PathBuf>) -> Runtime {
        Runtime {
            root: StateRoot::new(root),
            systemd_cgroup: false,
        }
    }

    /// Whether containers created from now on get their cgroups from
    /// systemd (`--systemd-cgroup`): a transient scope unit per container.
    pub fn with_systemd_cgroup(mut self, on: bool) -> Runtime {
        self.systemd_cgroup = on;
        self
    }

    /// The state root.
    pub fn root(&self) -> &StateRoot {
        &self.root
    }

    /// `create`: sets the container up and leaves its init process waiting
    /// for `start`.
    pub fn create(&self, opts: &CreateOptions) -> Result<()> {
        self.create_inner(opts, Mode::Create).map(drop)
    }

    /// The create half of `run`: like `create`, but the init process waits
    /// on the returned handle instead of the start socket.
    pub fn create_attached(&self, opts: &CreateOptions) -> Result<Created> {
        self.create_inner(opts, Mode::Attached)
    }

    /// `run`: creates the container and starts it as soon as it is set up
    /// (the start travels with the set-up, saving a round trip between the
    /// runtime and the init); returns once the program runs, with the handle
    /// to wait on and delete it.
    pub fn run_attached(&self, opts: &CreateOptions) -> Result<Created> {
        let mut created = self.create_inner(opts, Mode::Run)?;
        if let Err(e) = self.start_attached(&mut created) {
            let _ = self.delete(&opts.id, true);
            if let Some(path) = &opts.pid_file {
                let _ = std::fs::remove_file(path);
            }
            return Err(e);
        }
        Ok(created)
    }

    fn create_inner(&self, opts: &CreateOptions, mode: Mode) -> Result<Created> {
        crate::state::validate_id(&opts.id)?;
        let bundle = std::path::absolute(&opts.bundle).ctx("resolve", &opts.bundle)?;
        let (spec, raw) = spec::load(&bundle)?;
        spec::validate(&spec, &bundle)?;
        let rootfs = spec::rootfs_path(&bundle, &spec)?;
        let rootfs = rootfs.canonicalize().ctx("resolve", &rootfs)?;
        let process = spec.process().as_ref().expect("validated");
        let linux = spec.linux().as_ref().expect("validated");
        let plan = Plan::from_config(linux)?;
        let scope = if self.systemd_cgroup {
            crate::cgroups::systemd::check_available()?;
            let path = linux.cgroups_path().as_deref();
            let scope = crate::cgroups::systemd::Scope::from_config(path, &opts.id)?;
            Some(match spec.annotations() {
                Some(a) => scope.with_annotations(a)?,
                None => scope,
            })
        } else {
            None
        };
        crate::timing::stage("config loaded");

        let terminal = process.terminal().unwrap_or(false);
        let (console, own_console) = console::for_process(
            opts.console_socket.as_deref(),
            terminal,
            mode != Mode::Create,
        )?;

        let dir = self.root.create(&opts.id)?;
        let mut cleanup = Cleanup {
            child: None,
            cgroups: None,
            dir: None,
            pid_file: None,
            poststop: None,
        };
        let dir_path = dir.path().to_path_buf();
        cleanup.dir = Some(dir);
        let dir_ref = cleanup.dir.as_ref().expect("just set");
        dir_ref.save_config(&raw)?;
        crate::timing::stage("state directory made");

        let layout = crate::cgroups::Layout::detect()?;
        let mut cg = match &scope {
            // systemd makes them once the init exists.
            Some(_) => Manager::for_systemd(&layout)?,
            None => Manager::with_layout(&layout, linux.cgroups_path().as_deref(), &opts.id)?,
        };
        // Only the cgroup2 directory now (clone3 places the init in it); the
        // rest is made while the init creates its namespaces.
        let created = cg.create_unified();
        cleanup.cgroups = Some(cg);
        created?;
        let cg = cleanup.cgroups.as_ref().expect("just set");
        crate::timing::stage("cgroup2 directory made");

        let (parent_chan, child_chan) = Channel::pair()?;
        let start_listener = match mode {
            Mode::Create => Some(Channel::listen(
                dir_ref.as_fd(),
                &dir_path,
                crate::state::START_SOCKET,
            )?),
            Mode::Attached | Mode::Run => None,
        };

        // Made here, with the host's privileges and view; the init inherits it.
        let dirs = scope.is_none().then(|| cg.all_dirs());
        let rootfs_host =
            crate::mounts::prepare_on_host(&spec, &bundle, &layout, dirs.as_ref(), &plan)?;
        // The init is born in its cgroup2 cgroup (CLONE_INTO_CGROUP) and
        // joins the v1 hierarchies itself, which is far cheaper than being
        // moved (see Manager::v1_join_files).
        let into_cgroup = cg.clone_into_fd().map(|fd| fd.as_raw_fd());
        let flags = plan.clone_flags(cg.joined_at_clone());
        let pid_ns = plan.join.iter().find(|j| j.typ == LinuxNamespaceType::Pid);
        crate::timing::stage("clone");
        let maps_by_user =
            plan.creates(LinuxNamespaceType::User) && !nix::unistd::geteuid().is_root();
        let forked = namespaces::clone_into(pid_ns, flags, into_cgroup);
        let mut pid = match forked {
            Ok(CloneResult::Child) => {
                drop(parent_chan);
                // The init must never hold the container's lock.
                if let Some(dir) = &cleanup.dir {
                    let _ = nix::unistd::close(dir.lock_fd());
                }
                init::run(Init {
                    spec: &spec,
                    process,
                    linux,
                    id: &opts.id,
                    rootfs: &rootfs,
                    bundle: &bundle,
                    plan: &plan,
                    chan: child_chan,
                    start_listener,
                    console,
                    no_pivot: opts.no_pivot,
                    no_new_keyring: opts.no_new_keyring,
                    preserve_fds: opts.preserve_fds,
                    cgroup_ns_done: flags.contains(CloneFlags::CLONE_NEWCGROUP),
                    seccomp: linux.seccomp().is_some(),
                    rootfs_host: &rootfs_host,
                    maps_by_user,
                })
            }
            Ok(CloneResult::Parent(pid)) => pid,
            Err(e) => return Err(e),
        };
        cleanup.child = Some(pid);
        drop(child_chan);
        drop(start_listener);
        drop(console);
        if plan.forks_twice() {
            // The first child made the pid namespace and forked the init.
            let init_pid = match parent_chan.recv()? {
                Some(Msg::Pid(p)) => Pid::from_raw(p),
                Some(Msg::Error(text)) => return Err(Error::Init(text)),
                other => {
                    return Err(Error::Other(format!(
                        "sync: expected the init's pid, got {other:?}"
                    )));
                }
            };
            let _ = waitpid(pid, None);
            pid = init_pid;
            cleanup.child = Some(pid);
        }
        tracing::debug!(pid = pid.as_raw(), "init process");
        crate::timing::stage("init forked");

        if plan.creates(LinuxNamespaceType::User) {
            namespaces::write_id_maps(pid, linux).map_err(|e| match parent_chan.try_recv() {
                // The init failed first (its /proc files then refuse the
                // maps, which says nothing of why): its reason is worth more.
                Some(Msg::Error(text)) => Error::Init(text),
                _ => e,
            })?;
        }
        if let Some(score) = process.oom_score_adj() {
            process::set_oom_score_adj(pid, score)?;
        }
        // The rest of the cgroups, while the init creates its namespaces on
        // the other CPU; it joins the v1 hierarchies itself on "go".
        let cg = cleanup.cgroups.as_mut().expect("set above");
        if let Some(scope) = &scope {
            cg.start_scope(&layout, scope, pid, linux.resources().as_ref())?;
        }
        cg.create_rest(linux.resources().as_ref())?;
        let cgroup_join = cg.v1_join_files()?;
        // Made here while the init creates its namespaces, sent after "go".
        let sends_cgroup_mount = rootfs_host.sends_cgroup_mount;
        let cgroup_mount = match sends_cgroup_mount {
            true => crate::mounts::prepare_cgroup_mount(&spec, &rootfs_host)?,
            false => None,
        };
        drop(rootfs_host);
        let cg = cleanup.cgroups.as_ref().expect("set above");
        crate::timing::stage("cgroups created");

        let mut record = Record {
            oci_version: spec.version().clone(),
            id: opts.id.clone(),
            status: Status::Creating,
            pid: pid.as_raw(),
            pid_start_time: procfs::start_time(pid.as_raw()).unwrap_or(0),
            bundle: bundle.clone(),
            rootfs: rootfs.clone(),
            annotations: spec.annotations().clone().unwrap_or_default(),
            created: humantime::format_rfc3339_nanos(SystemTime::now()).to_string(),
            cgroup: cg.paths().clone(),
            owner: nix::unistd::geteuid().as_raw(),
            systemd_cgroup: cg.paths().systemd_unit.is_some(),
        };
        let state_json = serde_json::to_vec(&record.oci_state(Status::Creating))
            .map_err(|e| Error::Other(format!("serialising state: {e}")))?;
        if let Some(h) = spec.hooks() {
            // From here on a failure runs the poststop hooks (lifecycle step 12).
            cleanup.poststop = Some((h.clone(), state_json.clone()));
        }
        let mut go = parent_chan.send_with_fds(
            &Msg::Go(String::from_utf8_lossy(&state_json).into_owned()),
            &cgroup_join,
        );
        if go.is_ok() && sends_cgroup_mount {
            let fds: Vec<OwnedFd> = cgroup_mount.into_iter().collect();
            go = parent_chan.send_with_fds(&Msg::CgroupMount, &fds);
        }
        if let Err(e) = go {
            // The init may have failed before it wanted "go": its reason is
            // worth more than the broken pipe.
            return Err(match parent_chan.recv() {
                Ok(Some(Msg::Error(text))) => Error::Init(text),
                _ => e,
            });
        }
        drop(cgroup_join);
        if let Some(cfg) = linux.seccomp() {
            // Compiled while the init sets up its root filesystem (it takes
            // the filter before its hooks run).
            let setup = crate::seccomp::Setup::prepare(cfg)?;
            crate::timing::stage("seccomp filter compiled");
            if let Err(e) = setup.send(&parent_chan) {
                return Err(match parent_chan.recv() {
                    Ok(Some(Msg::Error(text))) => Error::Init(text),
                    _ => e,
                });
            }
        }
        // `run` starts the container right away: one state write, already
        // saying running (the init is only its set-up away from its exec).
        record.status = match mode {
            Mode::Create => Status::Created,
            Mode::Attached | Mode::Run => Status::Running,
        };
        // Without hooks to run between, `run` records the container and
        // queues "start" while the init still sets up: it finds it when
        // ready and execs without a round trip through us.
        let start_early = mode == Mode::Run
            && !hooks::any(
                spec.hooks().as_ref(),
                &[Kind::Prestart, Kind::CreateRuntime],
            );
        if start_early {
            record_created(&record, opts.pid_file.as_deref(), &mut cleanup)?;
            if let Err(e) = parent_chan.send(&Msg::Start) {
                return Err(match parent_chan.recv() {
                    Ok(Some(Msg::Error(text))) => Error::Init(text),
                    _ => e,
                });
            }
        }
        loop {
            match parent_chan.recv()? {
                Some(Msg::RunHooks) => {
                    hooks::run_all(spec.hooks().as_ref(), Kind::Prestart, &state_json)?;
                    hooks::run_all(spec.hooks().as_ref(), Kind::CreateRuntime, &state_json)?;
                    parent_chan.send(&Msg::HooksDone)?;
                }
                Some(Msg::Ready) => break,
                Some(Msg::Error(text)) => return Err(Error::Init(text)),
                Some(other) => {
                    return Err(Error::Other(format!(
                        "sync: unexpected {other:?} from init"
                    )));
                }
                None => {
                    return Err(Error::Init(
                        "the container's process exited during set-up".into(),
                    ));
                }
            }
        }
        crate::timing::stage("init ready");

        let pty_master = match own_console {
            Some(sock) => Some(console::recv_fd(sock.as_raw_fd())?.0),
            None => None,
        };

        if !start_early {
            record_created(&record, opts.pid_file.as_deref(), &mut cleanup)?;
        }
        if mode == Mode::Create {
            parent_chan.send(&Msg::Detached)?;
        }
        cleanup.child = None;
        cleanup.cgroups = None;
        cleanup.pid_file = None;
        cleanup.poststop = None;
        crate::timing::stage("created");
        drop(cleanup.dir.take());
        Ok(Created {
            record,
            spec,
            chan: parent_chan,
            start_sent: start_early,
            pty_master,
        })
    }

    /// Starts a container made by [`Runtime::create_attached`]: the init
    /// process execs; returns once it has (or reports why it could not).
    pub fn start_attached(&self, created: &mut Created) -> Result<()> {
        if !created.start_sent {
            created.chan.send(&Msg::Start)?;
            created.start_sent = true;
        }
        let process = created.spec.process().as_ref();
        if let Err(e) = created
            .chan
            .wait_exec(|| process.map(crate::exec::program_name).unwrap_or_default())
        {
            let _ = waitpid(created.pid(), None);
            return Err(e);
        }
        run_poststart(&created.spec, &created.record);
        Ok(())
    }

    /// Deletes a container started by `run` once its init process has been
    /// reaped, from what `run` holds in memory (no state to read back): its
    /// cgroups, its state directory, then the poststop hooks.
    pub fn delete_exited(&self, created: Created) -> Result<()> {
        let dir = self.root.open(&created.record.id)?;
        let cg = Manager::from_paths(created.record.cgroup.clone());
        // The init of a pid namespace of its own takes every process of the
        // container with it (the kernel kills them and waits until all are
        // reaped): its cgroups are empty now and go without a search for
        // processes, unless something else is found in them after all.
        let new_pid_ns = created
            .spec
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().as_ref())
            .is_some_and(|list| {
                list.iter()
                    .any(|n| n.typ() == LinuxNamespaceType::Pid && n.path().is_none())
            });
        if !(new_pid_ns && cg.remove_if_empty()) {
            destroy_cgroups(&cg)?;
        }
        dir.remove()?;
        if hooks::any(created.spec.hooks().as_ref(), &[Kind::Poststop]) {
            let state =
                serde_json::to_vec(&created.record.oci_state(Status::Stopped)).unwrap_or_default();
            hooks::run_all_warn(created.spec.hooks().as_ref(), Kind::Poststop, &state);
        }
        Ok(())
    }

    /// `start`: lets a created container's init process exec the program.
    pub fn start(&self, id: &str) -> Result<()> {
        let dir = self.root.open(id)?;
        let mut info = self.info_of(&dir)?;
        if info.status != Status::Created {
            return Err(Error::BadStatus {
                id: id.to_string(),
                status: info.status.to_string(),
                reason: "only a created container can be started".into(),
            });
        }
        let sock = dir.start_socket();
        let chan = Channel::connect(&sock)?;
        chan.send(&Msg::Start)?;
        chan.wait_exec(|| {
            dir.load_config()
                .ok()
                .and_then(|spec| spec.process().as_ref().map(crate::exec::program_name))
                .unwrap_or_default()
        })?;
        let _ = std::fs::remove_file(&sock);
        info.record.status = Status::Running;
        dir.save(&info.record)?;
        let spec = dir.load_config()?;
        run_poststart(&spec, &info.record);
        Ok(())
    }

    /// The record and live status of container `id`.
    pub fn info(&self, id: &str) -> Result<Info> {
        let dir = self.root.open(id)?;
        self.info_of(&dir)
    }

    fn info_of(&self, dir: &ContainerDir) -> Result<Info> {
        let record = dir.load_created()?;
        let status = live_status(&record);
        Ok(Info { record, status })
    }

    /// All containers under the state root (those still being created are skipped).
    pub fn list(&self) -> Result<Vec<Info>> {
        let mut out = Vec::new();
        for id in self.root.list()? {
            match self.info(&id) {
                Ok(info) => out.push(info),
                Err(Error::NotFound(_)) | Err(Error::BadStatus { .. }) => {}
                Err(e) => tracing::warn!("container {id}: {e}"),
            }
        }
        Ok(out)
    }

    /// `kill`: sends `sig` to the init process, or with `all` to every
    /// process in the container's cgroup.
    pub fn kill(&self, id: &str, sig: i32, all: bool) -> Result<()> {
        let dir = self.root.open(id)?;
        let info = self.info_of(&dir)?;
        if info.status == Status::Stopped && !all {
            return Err(Error::BadStatus {
                id: id.to_string(),
                status: info.status.to_string(),
                reason: "there is no process to signal".into(),
            });
        }
        if all {
            let cg = Manager::from_paths(info.record.cgroup.clone());
            signal_all(&cg, sig)?;
            if info.status != Status::Stopped {
                let _ = sys::kill(Pid::from_raw(info.record.pid), sig);
            }
            return Ok(());
        }
        sys::kill(Pid::from_raw(info.record.pid), sig)
            .map_err(|e| Error::sys("kill", format!("{} {sig}", info.record.pid), e))
    }

    /// `delete`: removes a stopped container (with `force`, kills it first),
    /// its cgroups and state, then runs the poststop hooks.
    pub fn delete(&self, id: &str, force: bool) -> Result<()> {
        let dir = self.root.open(id)?;
        let Some(record) = dir.load()? else {
            // A create that died before writing its state: nothing runs there.
            if force {
                return dir.remove();
            }
            return Err(Error::BadStatus {
                id: id.to_string(),
                status: Status::Creating.to_string(),
                reason: "it is still being created (use --force to remove it)".into(),
            });
        };
        let status = live_status(&record);
        let cg = Manager::from_paths(record.cgroup.clone());
        if status != Status::Stopped {
            if !force {
                return Err(Error::BadStatus {
                    id: id.to_string(),
                    status: status.to_string(),
                    reason: "it must be stopped before it is deleted (or use --force)".into(),
                });
            }
            if status == Status::Paused {
                let _ = cg.set_frozen(false);
            }
            let _ = kill(Pid::from_raw(record.pid), Signal::SIGKILL);
            wait_gone(&record, Duration::from_secs(10))?;
        }
        destroy_cgroups(&cg)?;
        let spec = dir.load_config().ok();
        let state = serde_json::to_vec(&record.oci_state(Status::Stopped)).unwrap_or_default();
        dir.remove()?;
        if let Some(spec) = spec {
            hooks::run_all_warn(spec.hooks().as_ref(), Kind::Poststop, &state);
        }
        Ok(())
    }

    /// `pause`: freezes every process of a running container.
    pub fn pause(&self, id: &str) -> Result<()> {
        let dir = self.root.open(id)?;
        let info = self.info_of(&dir)?;
        if info.status != Status::Running {
            return Err(Error::BadStatus {
                id: id.to_string(),
                status: info.status.to_string(),
                reason: "only a running container can be paused".into(),
            });
        }
        Manager::from_paths(info.record.cgroup).set_frozen(true)
    }

    /// `resume`: thaws a paused container.
    pub fn resume(&self, id: &str) -> Result<()> {
        let dir = self.root.open(id)?;
        let info = self.info_of(&dir)?;
        if info.status != Status::Paused {
            return Err(Error::BadStatus {
                id: id.to_string(),
                status: info.status.to_string(),
                reason: "only a paused container can be resumed".into(),
            });
        }
        Manager::from_paths(info.record.cgroup).set_frozen(false)
    }

    /// `update`: changes the resource limits of a container that is not
    /// stopped (only the fields of `resources` given change) and records
    /// them in its saved config.
    pub fn update(&self, id: &str, resources: &oci_spec::runtime::LinuxResources) -> Result<()> {
        let dir = self.root.open(id)?;
        let info = self.info_of(&dir)?;
        if info.status == Status::Stopped {
            return Err(Error::BadStatus {
                id: id.to_string(),
                status: info.status.to_string(),
                reason: "a stopped container's resources cannot change".into(),
            });
        }
        let mut spec = dir.load_config()?;
        let mut linux = spec.linux().clone().unwrap_or_default();
        let base = linux.resources().clone().unwrap_or_default();
        let merged = crate::cgroups::merge_resources(&base, resources)?;
        let cg = Manager::from_paths(info.record.cgroup);
        cg.update_unit(&merged, resources.devices().is_some())?;
        cg.apply(resources)?;
        linux.set_resources(Some(merged));
        spec.set_linux(Some(linux));
        let raw = serde_json::to_vec_pretty(&spec)
            .map_err(|e| Error::Other(format!("serialising config: {e}")))?;
        dir.save_config(&raw)
    }

    /// The cgroup manager of container `id` (for `ps`, `update`, `events`).
    pub fn cgroups(&self, id: &str) -> Result<(Info, Manager)> {
        let info = self.info(id)?;
        let cg = Manager::from_paths(info.record.cgroup.clone());
        Ok((info, cg))
    }

    /// The saved config of container `id`.
    pub fn config(&self, id: &str) -> Result<Spec> {
        self.root.open(id)?.load_config()
    }
}

/// The live status of a recorded container.
pub fn live_status(record: &Record) -> Status {
    if !record.init_alive() {
        return Status::Stopped;
    }
    match record.status {
        Status::Creating | Status::Created => Status::Created,
        _ => {
            let cg = Manager::from_paths(record.cgroup.clone());
            if cg.is_frozen().unwrap_or(false) {
                Status::Paused
            } else {
                Status::Running
            }
        }
    }
}

fn run_poststart(spec: &Spec, record: &Record) {
    if hooks::any(spec.hooks().as_ref(), &[Kind::Poststart]) {
        let state = serde_json::to_vec(&record.oci_state(Status::Running)).unwrap_or_default();
        hooks::run_all_warn(spec.hooks().as_ref(), Kind::Poststart, &state);
    }
}

/// Signals every process in the cgroup.
fn signal_all(cg: &Manager, sig: i32) -> Result<()> {
    for pid in cg.pids()? {
        match sys::kill(pid, sig) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
            Err(e) => return Err(Error::sys("kill", format!("{pid} {sig}"), e)),
        }
    }
    Ok(())
}

/// Kills what is left in the cgroups, then removes them.
fn destroy_cgroups(cg: &Manager) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = cg.pids().unwrap_or_default();
        if left.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            return Err(Error::Other(format!(
                "processes {left:?} are still in the container's cgroup"
            )));
        }
        let _ = cg.set_frozen(false);
        signal_all(cg, libc::SIGKILL)?;
        std::thread::sleep(Duration::from_millis(2));
    }
    cg.destroy()
}

/// Waits until the recorded init process is gone.
fn wait_gone(record: &Record, timeout: Duration) -> Result<()> {
    let pid = Pid::from_raw(record.pid);
    let deadline = Instant::now() + timeout;
    while record.init_alive() {
        // If it is our child, reap it.
        let _ = waitpid(pid, Some(WaitPidFlag::WNOHANG));
        if Instant::now() > deadline {
            return Err(Error::Other(format!(
                "process {pid} did not exit after SIGKILL"
            )));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}

/// Writes the pid file atomically, as runc does.
/// Writes a new container's state.json and its pid file (which `cleanup`
/// then removes should the creation fail).
fn record_created(record: &Record, pid_file: Option<&Path>, cleanup: &mut Cleanup) -> Result<()> {
    cleanup.dir.as_ref().expect("made first").save(record)?;
    if let Some(path) = pid_file {
        write_pid_file(path, Pid::from_raw(record.pid))?;
        cleanup.pid_file = Some(path.to_path_buf());
    }
    Ok(())
}

pub(crate) fn write_pid_file(path: &Path, pid: Pid) -> Result<()> {
    let path = std::path::absolute(path).ctx("resolve", path)?;
    write_atomic(&path, pid.to_string().as_bytes(), 0o644)
}

/// Turns a wait status into the exit code a shell would report.
pub fn exit_code(status: WaitStatus) -> Option<i32> {
    match status {
        WaitStatus::Exited(_, code) => Some(code),
        WaitStatus::Signaled(_, sig, _) => Some(128 + sig as i32),
        _ => None,
    }
}
