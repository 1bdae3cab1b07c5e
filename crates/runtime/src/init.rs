//! The container's init process: what the child of clone3 does, from the
//! runtime's "go" to the exec of the user's program.
//!
//! It runs in the new namespaces, sets up the root filesystem, waits for
//! `start`, then becomes the configured user and execs. Errors go back to the
//! runtime as a [`Msg::Error`] over whichever channel is current, and the
//! process exits.

use std::convert::Infallible;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::sched::CloneFlags;
use oci_spec::runtime::{Linux, LinuxNamespaceType, Process, Spec};

use crate::error::{Error, Result, SysContext};
use crate::hooks::{self, Kind};
use crate::mounts::{self, RootfsContext};
use crate::namespaces::{self, Plan};
use crate::sync::{Channel, Msg};
use crate::{console, process, sys};

/// Everything the init process needs; it lives in the child's copy of the
/// runtime's memory.
pub(crate) struct Init<'a> {
    pub spec: &'a Spec,
    pub process: &'a Process,
    pub linux: &'a Linux,
    pub id: &'a str,
    pub rootfs: &'a Path,
    pub bundle: &'a Path,
    pub plan: &'a Plan,
    /// The init's end of the set-up channel.
    pub chan: Channel,
    /// The listening start socket (`create`); `None` for `run`, where the
    /// start message comes over `chan`.
    pub start_listener: Option<OwnedFd>,
    /// The connected console socket when `process.terminal` is set.
    pub console: Option<OwnedFd>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
    /// Whether clone3 already created the cgroup namespace.
    pub cgroup_ns_done: bool,
    /// Whether the runtime sends a seccomp filter after "go" (it compiles
    /// it meanwhile); it is installed just before exec.
    pub seccomp: bool,
    /// What the runtime prepared for the rootfs before forking us.
    pub rootfs_host: &'a mounts::HostPrep,
    /// The runtime is unprivileged and writes our uid/gid maps itself.
    /// Decided before the fork: in the child, geteuid() turns to 0 the
    /// moment the runtime writes the uid map, whenever that is.
    pub maps_by_user: bool,
}

/// Runs the init process; never returns.
pub(crate) fn run(mut init: Init<'_>) -> ! {
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| setup(&mut init)));
    let _ = init.chan.send(&Msg::Error(failure_text(outcome)));
    sys::exit_now(1)
}

/// The error text a child of clone3 reports to the runtime when its set-up
/// returned an error or panicked.
pub(crate) fn failure_text(outcome: std::thread::Result<Result<Infallible>>) -> String {
    match outcome {
        Ok(Ok(never)) => match never {},
        Ok(Err(Error::Init(text))) => text,
        Ok(Err(e)) => e.to_string(),
        Err(panic) => format!(
            "set-up panicked: {}",
            panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("?")
        ),
    }
}

fn setup(init: &mut Init<'_>) -> Result<Infallible> {
    crate::timing::stage("init: running");
    if init.plan.joins(LinuxNamespaceType::User) {
        create_in_joined_user_ns(init)?;
    }
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
        .sys("prctl", "PR_SET_PDEATHSIG")?;
    // Had the runtime died before the line above, the channel would be at
    // end-of-file and the next receive fails: no orphan goes on alone.
    // Nothing in the container may ptrace us or read our memory until exec.
    // An unprivileged runtime can only write our uid/gid maps while our
    // /proc files are its own, i.e. while we are dumpable: then we become
    // undumpable on "go", before anything of the container exists.
    if !init.maps_by_user {
        nix::sys::prctl::set_dumpable(false).sys("prctl", "PR_SET_DUMPABLE")?;
    }
    // The new namespaces but pid and user (made by clone3), while the
    // runtime makes the cgroups on the other CPU.
    if !init.plan.joins(LinuxNamespaceType::User) {
        namespaces::unshare_ns(init.plan.unshare_flags())?;
    }
    crate::timing::stage("init: namespaces made");

    let plan = init.plan;
    let ctx = RootfsContext {
        spec: init.spec,
        rootfs: init.rootfs,
        bundle: init.bundle,
        new_mount_ns: plan.has(LinuxNamespaceType::Mount),
        user_ns: plan.has(LinuxNamespaceType::User),
        cgroup_ns: plan.has(LinuxNamespaceType::Cgroup),
        host: init.rootfs_host,
        cgroup_mount: Default::default(),
    };
    // Without a user namespace nothing of the set-up waits for the runtime's
    // uid maps: do all that does not need the cgroups now, while the runtime
    // makes them on the other CPU.
    let early = !plan.has(LinuxNamespaceType::User);
    let mut rootfs = None;
    if early {
        join_and_name(init)?;
        rootfs = mounts::begin_rootfs(&ctx)?;
        if let Some(r) = rootfs.as_mut() {
            r.mount_before_cgroups(&ctx)?;
        }
    }

    crate::timing::stage("init: waiting for go");
    let state = match init.chan.recv_with_fds()? {
        (Some(Msg::Go(state)), cgroup_join) => {
            if init.maps_by_user {
                nix::sys::prctl::set_dumpable(false).sys("prctl", "PR_SET_DUMPABLE")?;
            }
            // Into the v1 cgroups (the runtime opened their files) before the
            // cgroup namespace is made and anything of the container runs.
            crate::cgroups::join_self(&cgroup_join)?;
            crate::timing::stage("init: cgroups joined");
            if init.rootfs_host.sends_cgroup_mount {
                match init.chan.recv_with_fds()? {
                    (Some(Msg::CgroupMount), fds) => {
                        *ctx.cgroup_mount.borrow_mut() = fds.into_iter().next();
                    }
                    (Some(Msg::Error(e)), _) => return Err(Error::Init(e)),
                    (other, _) => {
                        return Err(Error::Init(format!(
                            "expected the cgroup mount, got {other:?}"
                        )));
                    }
                }
            }
            state
        }
        (Some(Msg::Error(e)), _) => return Err(Error::Init(e)),
        (other, _) => return Err(Error::Init(format!("expected go, got {other:?}"))),
    };

    if !early {
        if plan.creates(LinuxNamespaceType::User)
            && namespaces::maps_root(init.linux.uid_mappings().as_ref())
            && namespaces::maps_root(init.linux.gid_mappings().as_ref())
        {
            process::become_root_in_userns()?;
        }
        join_and_name(init)?;
    }
    // Read now: after the root changes, /proc is the container's (if any).
    let setgroups_allowed = !plan.has(LinuxNamespaceType::User) || setgroups_allowed();
    if plan.creates(LinuxNamespaceType::Cgroup) && !init.cgroup_ns_done {
        namespaces::unshare_ns(CloneFlags::CLONE_NEWCGROUP)?;
    }
    if !early {
        rootfs = mounts::begin_rootfs(&ctx)?;
        if let Some(r) = rootfs.as_mut() {
            r.mount_before_cgroups(&ctx)?;
        }
    }
    // Without a mount namespace of its own, nothing is mounted unless the
    // config asks for mounts (then made in the runtime's namespace).
    let mounted = rootfs.is_some();
    let prepared = match rootfs {
        Some(r) => r.finish(&ctx)?,
        None => Default::default(),
    };

    let seccomp = if init.seccomp {
        Some(crate::seccomp::Setup::recv(&init.chan)?)
    } else {
        None
    };

    let spec_hooks = init.spec.hooks().as_ref();
    if hooks::any(spec_hooks, &[Kind::Prestart, Kind::CreateRuntime]) {
        init.chan.send(&Msg::RunHooks)?;
        init.chan.expect(Msg::HooksDone)?;
    }
    hooks::run_all(spec_hooks, Kind::CreateContainer, state.as_bytes())?;

    if plan.has(LinuxNamespaceType::Mount) {
        mounts::enter_rootfs(init.rootfs, init.no_pivot)?;
    } else {
        nix::unistd::chroot(init.rootfs).sys("chroot", init.rootfs.display())?;
        nix::unistd::chdir("/").sys("chdir", "/")?;
    }
    apply_sysctls(init.linux)?;
    if mounted {
        mounts::finish_rootfs(init.spec, &prepared)?;
    }

    process::apply_rlimits(init.process)?;
    if let Some(p) = init.linux.personality() {
        process::apply_personality(p)?;
    }
    if let Some(sock) = &init.console {
        let size = init
            .process
            .console_size()
            .map(|b| (b.height() as u16, b.width() as u16));
        let user = init.process.user();
        console::setup(sock, size, (user.uid(), user.gid()))?;
    }
    init.console = None;
    let exe = process::find_executable(init.process)?;

    // The runtime may exit as soon as it has our "ready" and recorded the
    // state: clear the death signal first. Should it die before recording,
    // the channel ends without "detached" and we exit rather than linger.
    nix::sys::prctl::set_pdeathsig(None).sys("prctl", "PR_SET_PDEATHSIG")?;
    crate::timing::stage("init: ready");
    init.chan.send(&Msg::Ready)?;
    match init.start_listener.take() {
        None => init.chan.expect(Msg::Start)?,
        Some(listener) => {
            init.chan.expect(Msg::Detached)?;
            // A created container ends on a signal, as runc's does.
            sys::exit_on_terminating_signals();
            let conn = wait_for_start(&listener)?;
            drop(listener);
            // Errors from now on go to the `start` command.
            init.chan = conn;
        }
    }
    if hooks::any(spec_hooks, &[Kind::StartContainer]) {
        // The container is created now (as runc reports it to these hooks).
        let mut state: serde_json::Value = serde_json::from_str(&state)
            .map_err(|e| Error::Init(format!("state from the runtime: {e}")))?;
        state["status"] = "created".into();
        hooks::run_all(
            spec_hooks,
            Kind::StartContainer,
            state.to_string().as_bytes(),
        )?;
    }

    let seccomp = seccomp.as_ref().map(|s| (s, state.as_str()));
    process::finalize_and_exec(
        init.process,
        &exe,
        init.preserve_fds,
        setgroups_allowed,
        seccomp,
        init.chan.as_fd(),
    )
}

/// With a user namespace joined by path, the namespaces the container
/// creates must belong to it: joins it, creates them (but cgroup and time,
/// made later in set-up), and for a new pid namespace forks the init process
/// as a sibling (CLONE_PARENT): this first child reports its pid and exits.
fn create_in_joined_user_ns(init: &Init<'_>) -> Result<()> {
    let plan = init.plan;
    if let Some(join) = plan.join.iter().find(|j| j.typ == LinuxNamespaceType::User) {
        namespaces::enter(join)?;
    }
    let mut flags = CloneFlags::empty();
    for &typ in &plan.create {
        if !matches!(
            typ,
            LinuxNamespaceType::Cgroup | LinuxNamespaceType::Time | LinuxNamespaceType::Pid
        ) {
            flags |= namespaces::clone_flag(typ);
        }
    }
    if !flags.is_empty() {
        namespaces::unshare_ns(flags)?;
    }
    if !plan.forks_twice() {
        return Ok(());
    }
    namespaces::unshare_ns(CloneFlags::CLONE_NEWPID)?;
    match sys::clone3(CloneFlags::CLONE_PARENT.bits() as u64, None) {
        Ok(sys::CloneResult::Child) => Ok(()),
        Ok(sys::CloneResult::Parent(pid)) => {
            init.chan.send(&Msg::Pid(pid.as_raw()))?;
            sys::exit_now(0)
        }
        Err(e) => Err(Error::sys("clone3", "CLONE_PARENT (init)", e)),
    }
}

/// Joins the namespaces given by path (but a user namespace, entered first
/// of all), makes the time namespace, the session keyring, and sets the
/// host and domain names.
fn join_and_name(init: &Init<'_>) -> Result<()> {
    for join in &init.plan.join {
        if join.typ != LinuxNamespaceType::User {
            namespaces::enter(join)?;
        }
    }
    if init.plan.creates(LinuxNamespaceType::Time) {
        enter_new_time_ns(init.linux)?;
    }
    if !init.no_new_keyring {
        join_keyring(init.id)?;
    }
    if let Some(h) = init.spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        nix::unistd::sethostname(h).sys("sethostname", h)?;
    }
    if let Some(d) = init.spec.domainname().as_deref().filter(|d| !d.is_empty()) {
        sys::setdomainname(d).map_err(|e| Error::sys("setdomainname", d, e))?;
    }
    Ok(())
}

/// Accepts `start` connections on the listening socket until one sends the
/// start message; returns that connection (errors are reported on it).
fn wait_for_start(listener: &OwnedFd) -> Result<Channel> {
    loop {
        let conn = Channel::accept(listener)?;
        if matches!(conn.recv(), Ok(Some(Msg::Start))) {
            return Ok(conn);
        }
    }
}

/// Creates a time namespace with the configured offsets and enters it:
/// offsets can only be written before any process is inside.
fn enter_new_time_ns(linux: &Linux) -> Result<()> {
    namespaces::unshare_ns(namespaces::clone_flag(LinuxNamespaceType::Time))?;
    let mut text = String::new();
    for (clock, off) in linux.time_offsets().iter().flatten() {
        text.push_str(&format!(
            "{clock} {} {}\n",
            off.secs().unwrap_or(0),
            off.nanosecs().unwrap_or(0)
        ));
    }
    if !text.is_empty() {
        std::fs::write("/proc/self/timens_offsets", &text)
            .map_err(|e| Error::config("linux.timeOffsets", format!("writing {text:?}: {e}")))?;
    }
    let fd = namespaces::open_ns(
        Path::new("/proc/self/ns/time_for_children"),
        LinuxNamespaceType::Time,
    )?;
    namespaces::enter(&namespaces::Join {
        typ: LinuxNamespaceType::Time,
        fd,
    })
}

/// Gives the container a session keyring of its own.
pub(crate) fn join_keyring(id: &str) -> Result<()> {
    let name = std::ffi::CString::new(format!("_ses.{id}"))
        .map_err(|_| Error::Other("container id contains a NUL byte".into()))?;
    match sys::join_session_keyring(&name) {
        // Keyrings may be unavailable (or blocked by seccomp); runc goes on.
        Ok(()) | Err(nix::errno::Errno::ENOSYS) | Err(nix::errno::Errno::EACCES) => Ok(()),
        Err(e) => Err(Error::sys("keyctl", "JOIN_SESSION_KEYRING", e)),
    }
}

/// Writes `linux.sysctl` through the container's /proc/sys (the runtime
/// checked each belongs to a namespace of the container's own:
/// [`crate::sysctl::check`]).
fn apply_sysctls(linux: &Linux) -> Result<()> {
    for (key, value) in linux.sysctl().iter().flatten() {
        let path = crate::sysctl::proc_path(key);
        if path.contains("/../") || path.ends_with("/..") {
            return Err(Error::config(
                format!("linux.sysctl.{key}"),
                "not a sysctl name",
            ));
        }
        std::fs::write(&path, value)
            .map_err(|e| Error::config(format!("linux.sysctl.{key}"), format!("{path}: {e}")))?;
    }
    Ok(())
}

/// Whether setgroups(2) is allowed in the current user namespace.
pub(crate) fn setgroups_allowed() -> bool {
    crate::procfs::read_text("/proc/self/setgroups")
        .map(|s| s.trim() == "allow")
        .unwrap_or(true)
}
