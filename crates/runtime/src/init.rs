//! The container's init process: what the child of clone3 does, from the
//! runtime's "go" to the exec of the user's program.
//!
//! It runs in the new namespaces, sets up the root filesystem, waits for
//! `start`, then becomes the configured user and execs. Errors go back to the
//! runtime as a [`Msg::Error`] over whichever channel is current, and the
//! process exits.

use std::convert::Infallible;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
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
}

/// Runs the init process; never returns.
pub(crate) fn run(mut init: Init<'_>) -> ! {
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| setup(&mut init)));
    let text = match outcome {
        Ok(Ok(never)) => match never {},
        Ok(Err(Error::Init(text))) => text,
        Ok(Err(e)) => e.to_string(),
        Err(panic) => format!(
            "init panicked: {}",
            panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("?")
        ),
    };
    let _ = init.chan.send(&Msg::Error(text));
    sys::exit_now(1)
}

fn setup(init: &mut Init<'_>) -> Result<Infallible> {
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
        .sys("prctl", "PR_SET_PDEATHSIG")?;
    // Had the runtime died before the line above, the channel would be at
    // end-of-file and the next receive fails: no orphan goes on alone.
    // Nothing in the container may ptrace us or read our memory until exec.
    nix::sys::prctl::set_dumpable(false).sys("prctl", "PR_SET_DUMPABLE")?;

    let state = match init.chan.recv()? {
        Some(Msg::Go(state)) => state,
        Some(Msg::Error(e)) => return Err(Error::Init(e)),
        other => return Err(Error::Init(format!("expected go, got {other:?}"))),
    };

    let plan = init.plan;
    if plan.creates(LinuxNamespaceType::User)
        && namespaces::maps_root(init.linux.uid_mappings().as_ref())
        && namespaces::maps_root(init.linux.gid_mappings().as_ref())
    {
        process::become_root_in_userns()?;
    }
    for join in &plan.join {
        namespaces::enter(join)?;
    }
    if plan.creates(LinuxNamespaceType::Cgroup) && !init.cgroup_ns_done {
        namespaces::unshare_ns(CloneFlags::CLONE_NEWCGROUP)?;
    }
    if plan.creates(LinuxNamespaceType::Time) {
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

    let ctx = RootfsContext {
        spec: init.spec,
        rootfs: init.rootfs,
        bundle: init.bundle,
        new_mount_ns: plan.has(LinuxNamespaceType::Mount),
        user_ns: plan.has(LinuxNamespaceType::User),
    };
    mounts::prepare_rootfs(&ctx)?;

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
    if plan.has(LinuxNamespaceType::Mount) {
        mounts::finish_rootfs(init.spec)?;
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

    // From Ready on the runtime that created us may exit at any time, so
    // the death signal must be off before it can see Ready.
    nix::sys::prctl::set_pdeathsig(None).sys("prctl", "PR_SET_PDEATHSIG")?;
    init.chan.send(&Msg::Ready)?;
    match init.start_listener.take() {
        None => init.chan.expect(Msg::Start)?,
        Some(listener) => {
            let conn = wait_for_start(&listener)?;
            drop(listener);
            // Errors from now on go to the `start` command.
            init.chan = conn;
        }
    }
    hooks::run_all(spec_hooks, Kind::StartContainer, state.as_bytes())?;

    let setgroups_allowed = !plan.has(LinuxNamespaceType::User) || setgroups_allowed();
    process::finalize_and_exec(init.process, &exe, init.preserve_fds, setgroups_allowed)
}

/// Accepts `start` connections on the listening socket until one sends the
/// start byte; returns that connection (errors are reported on it).
fn wait_for_start(listener: &OwnedFd) -> Result<Channel> {
    loop {
        let fd = match nix::sys::socket::accept4(
            listener.as_raw_fd(),
            nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        ) {
            Ok(fd) => sys::own_received_fd(fd),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(Error::sys("accept", "start socket", e)),
        };
        let mut stream = std::os::unix::net::UnixStream::from(fd);
        let mut byte = [0u8; 1];
        if matches!(stream.read(&mut byte), Ok(1)) && byte[0] == b'S' {
            return Ok(Channel::from_fd(OwnedFd::from(stream)));
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
fn join_keyring(id: &str) -> Result<()> {
    let name = std::ffi::CString::new(format!("_ses.{id}"))
        .map_err(|_| Error::Other("container id contains a NUL byte".into()))?;
    match sys::join_session_keyring(&name) {
        // Keyrings may be unavailable (or blocked by seccomp); runc goes on.
        Ok(()) | Err(nix::errno::Errno::ENOSYS) | Err(nix::errno::Errno::EACCES) => Ok(()),
        Err(e) => Err(Error::sys("keyctl", "JOIN_SESSION_KEYRING", e)),
    }
}

/// Writes `linux.sysctl` through the container's /proc/sys.
fn apply_sysctls(linux: &Linux) -> Result<()> {
    for (key, value) in linux.sysctl().iter().flatten() {
        if key.contains("..") || key.starts_with('/') || key.starts_with('.') {
            return Err(Error::config(
                format!("linux.sysctl.{key}"),
                "not a sysctl name",
            ));
        }
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        std::fs::write(&path, value)
            .map_err(|e| Error::config(format!("linux.sysctl.{key}"), format!("{path}: {e}")))?;
    }
    Ok(())
}

/// Whether setgroups(2) is allowed in the current user namespace.
fn setgroups_allowed() -> bool {
    std::fs::read_to_string("/proc/self/setgroups")
        .map(|s| s.trim() == "allow")
        .unwrap_or(true)
}
