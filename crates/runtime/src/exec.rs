//! `exec`: a new process in an existing container.
//!
//! The runtime opens the namespaces of the container's init process
//! (/proc/PID/ns/*) and its root directory while it still sees the host,
//! joins the init's pid namespace around clone3 so that the child is born in
//! it (and, on cgroup v2, in the container's cgroup), and lets the child join
//! the other namespaces (user first, mount last), change root to the init's,
//! and become the configured process with the same helpers as the init
//! process uses. Nothing is re-executed. Errors of the child come back over a
//! [`Channel`]; end-of-file on it means the program was exec'd.

use std::convert::Infallible;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{OFlag, open};
use nix::sched::CloneFlags;
use nix::sys::signal::{Signal, kill};
use nix::sys::stat::Mode;
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use oci_spec::runtime::{Capability, LinuxCapabilities, LinuxNamespaceType, Process, Spec};

use crate::cgroups::Manager;
use crate::container::{Runtime, live_status};
use crate::error::{Error, IoContext, Result, SysContext};
use crate::namespaces::{self, Join};
use crate::state::Status;
use crate::sync::{Channel, Msg};
use crate::sys::{self, CloneResult};
use crate::{console, init, procfs, spec};

/// What runc's `exec` flags change of the container's own process when no
/// `--process` file is given.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// The command and its arguments (required).
    pub args: Vec<String>,
    /// `NAME=VALUE` entries added to the environment, replacing earlier ones
    /// of the same name.
    pub env: Vec<String>,
    /// The working directory inside the container.
    pub cwd: Option<PathBuf>,
    /// The uid, and optionally the gid, to run as.
    pub user: Option<(u32, Option<u32>)>,
    /// Supplementary groups added to the configured ones.
    pub additional_gids: Vec<u32>,
    /// Capability names added to the bounding, effective, permitted and
    /// ambient sets (ambient ones take effect only when also inheritable).
    pub caps: Vec<String>,
    /// Set no_new_privileges.
    pub no_new_privs: bool,
    /// Give the process a terminal.
    pub tty: bool,
    /// The AppArmor profile to run under (`process.apparmorProfile`).
    pub apparmor: Option<String>,
    /// The SELinux label to run with (`process.selinuxLabel`).
    pub process_label: Option<String>,
}

/// Options of `exec`.
#[derive(Clone, Debug)]
pub struct ExecOptions {
    /// The container's id.
    pub id: String,
    /// The process to run (from a `--process` file or [`process_from_config`]).
    pub process: Process,
    /// The unix socket that receives the pty master when `process.terminal` is set.
    pub console_socket: Option<PathBuf>,
    /// Where to write the new process's pid.
    pub pid_file: Option<PathBuf>,
    /// The caller returns at once (it cannot receive a pty itself).
    pub detach: bool,
    /// Pass descriptors 3 .. 3+N of the caller to the process.
    pub preserve_fds: u32,
    /// Allow exec in a paused container.
    pub ignore_paused: bool,
}

/// A process started by [`Runtime::exec`]; it is a child of the caller.
#[derive(Debug)]
pub struct Execed {
    /// Its host pid.
    pub pid: Pid,
    /// The pty master, when the caller receives it itself (terminal, no
    /// console socket).
    pub pty_master: Option<OwnedFd>,
}

/// Reads a runtime-spec Process JSON file (`exec --process`).
pub fn load_process(path: &Path) -> Result<Process> {
    let bytes = std::fs::read(path).ctx("read", path)?;
    spec::parse(&bytes, &path.display().to_string())
}

/// The process `exec` runs without `--process`: the container's configured
/// process (user, env, cwd, capabilities, rlimits, ...) with `o` applied, as
/// runc does. Its terminal is off unless `o.tty`.
pub fn process_from_config(config: &Spec, o: &Overrides) -> Result<Process> {
    let mut p = config
        .process()
        .clone()
        .ok_or_else(|| Error::config("process", "missing in the container's config"))?;
    if o.args.is_empty() {
        return Err(Error::Other(
            "exec: a command is required (or --process FILE)".into(),
        ));
    }
    p.set_args(Some(o.args.clone()));
    p.set_terminal(Some(o.tty));
    let mut env = p.env().clone().unwrap_or_default();
    for kv in &o.env {
        let Some((name, _)) = kv.split_once('=') else {
            return Err(Error::Other(format!(
                "--env {kv:?}: not of the form NAME=VALUE"
            )));
        };
        env.retain(|e| e.split_once('=').map_or(e != name, |(k, _)| k != name));
        env.push(kv.clone());
    }
    p.set_env(Some(env));
    if let Some(cwd) = &o.cwd {
        p.set_cwd(cwd.clone());
    }
    if let Some((uid, gid)) = o.user {
        p.user_mut().set_uid(uid);
        if let Some(gid) = gid {
            p.user_mut().set_gid(gid);
        }
    }
    if !o.additional_gids.is_empty() {
        let mut gids = p.user().additional_gids().clone().unwrap_or_default();
        gids.extend(&o.additional_gids);
        p.user_mut().set_additional_gids(Some(gids));
    }
    if !o.caps.is_empty() {
        let mut caps = p.capabilities().clone().unwrap_or_else(no_caps);
        for name in &o.caps {
            let cap: Capability =
                serde_json::from_value(serde_json::Value::String(name.clone()))
                    .map_err(|_| Error::Other(format!("--cap {name:?}: unknown capability")))?;
            let add = |set: &Option<oci_spec::runtime::Capabilities>| {
                let mut set = set.clone().unwrap_or_default();
                set.insert(cap);
                Some(set)
            };
            let (b, e, p_, a) = (
                add(caps.bounding()),
                add(caps.effective()),
                add(caps.permitted()),
                add(caps.ambient()),
            );
            caps.set_bounding(b)
                .set_effective(e)
                .set_permitted(p_)
                .set_ambient(a);
        }
        p.set_capabilities(Some(caps));
    }
    if o.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if let Some(profile) = &o.apparmor {
        p.set_apparmor_profile(Some(profile.clone()));
    }
    if let Some(label) = &o.process_label {
        p.set_selinux_label(Some(label.clone()));
    }
    Ok(p)
}

/// The program a process runs (its `args[0]`), for error messages.
pub fn program_name(process: &Process) -> String {
    process
        .args()
        .as_ref()
        .and_then(|a| a.first().cloned())
        .unwrap_or_default()
}

/// Capabilities with every set absent.
fn no_caps() -> LinuxCapabilities {
    oci_spec::runtime::LinuxCapabilitiesBuilder::default()
        .build()
        .expect("all fields are optional")
}

/// The namespaces of a live process, as a new process joins them.
#[derive(Debug)]
struct Target {
    /// Namespaces other than pid that differ from ours: user first, mount last.
    joins: Vec<Join>,
    /// The pid namespace, when it differs from ours.
    pid_ns: Option<Join>,
    /// The process's root directory.
    root: OwnedFd,
}

/// The order in which the child joins namespaces: the user namespace owns
/// the others; joining the mount namespace changes the root, so it is last.
const JOIN_ORDER: [LinuxNamespaceType; 8] = [
    LinuxNamespaceType::User,
    LinuxNamespaceType::Pid,
    LinuxNamespaceType::Ipc,
    LinuxNamespaceType::Uts,
    LinuxNamespaceType::Network,
    LinuxNamespaceType::Cgroup,
    LinuxNamespaceType::Time,
    LinuxNamespaceType::Mount,
];

impl Target {
    /// Opens every namespace of `pid` that is not also ours, and its root.
    fn open(pid: Pid) -> Result<Target> {
        let mut joins = Vec::new();
        let mut pid_ns = None;
        for typ in JOIN_ORDER {
            let name = namespaces::proc_name(typ);
            let theirs = procfs::ns_path(pid.as_raw(), name);
            let ours = procfs::ns_path(std::process::id() as i32, name);
            let their_id = match std::fs::metadata(&theirs) {
                Ok(m) => (m.dev(), m.ino()),
                // Namespace types this kernel lacks.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && !ours.exists() => continue,
                Err(e) => return Err(Error::io("stat", &theirs, e)),
            };
            let our_id = std::fs::metadata(&ours)
                .map(|m| (m.dev(), m.ino()))
                .ctx("stat", &ours)?;
            if their_id == our_id {
                continue;
            }
            let join = Join {
                typ,
                fd: namespaces::open_ns(&theirs, typ)?,
            };
            if typ == LinuxNamespaceType::Pid {
                pid_ns = Some(join);
            } else {
                joins.push(join);
            }
        }
        let root_path = format!("/proc/{pid}/root");
        let root = open(
            root_path.as_str(),
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .sys("open", &root_path)?;
        Ok(Target {
            joins,
            pid_ns,
            root,
        })
    }
}

/// Kills and reaps the new process unless disarmed: nothing is left behind
/// when `exec` fails.
struct Reaper(Option<Pid>);

impl Drop for Reaper {
    fn drop(&mut self) {
        if let Some(pid) = self.0.take() {
            let _ = kill(pid, Signal::SIGKILL);
            let _ = waitpid(pid, None);
        }
    }
}

impl Runtime {
    /// `exec`: starts `opts.process` in container `opts.id`, in every
    /// namespace and the cgroups of its init process; returns once the
    /// program has been exec'd (or why it could not be). The process is a
    /// child of the caller, which may wait for it.
    ///
    /// The caller must be single-threaded.
    pub fn exec(&self, opts: &ExecOptions) -> Result<Execed> {
        let process = &opts.process;
        spec::validate_process(process, "process")?;
        let dir = self.root().open(&opts.id)?;
        let record = dir.load_created()?;
        let refuse = |status: Status, reason: &str| Error::BadStatus {
            id: opts.id.clone(),
            status: status.to_string(),
            reason: reason.into(),
        };
        let status = live_status(&record);
        // In a paused container the process joins the (frozen) cgroups only
        // once it is ready to exec: it then starts frozen and runs on resume.
        let paused = status == Status::Paused;
        match status {
            Status::Stopped => {
                return Err(refuse(
                    Status::Stopped,
                    "cannot exec in a stopped container",
                ));
            }
            Status::Paused if !opts.ignore_paused => {
                return Err(refuse(
                    Status::Paused,
                    "cannot exec in a paused container (use --ignore-paused to override)",
                ));
            }
            _ => {}
        }
        let config = dir.load_config()?;
        // The container's seccomp profile applies to every process in it.
        let seccomp = config
            .linux()
            .as_ref()
            .and_then(|l| l.seccomp().as_ref())
            .map(crate::seccomp::Setup::prepare)
            .transpose()?;
        let state = record.oci_state(status).to_string();
        let (console, own_console) = console::for_process(
            opts.console_socket.as_deref(),
            process.terminal().unwrap_or(false),
            !opts.detach,
        )?;
        let init_pid = Pid::from_raw(record.pid);
        let target = Target::open(init_pid)?;
        // The descriptors opened above must be the init's, not those of a
        // process that reused its pid.
        if !record.init_alive() {
            return Err(refuse(
                Status::Stopped,
                "its init process exited (cannot exec in a stopped container)",
            ));
        }
        let cg = Manager::from_paths(record.cgroup.clone());
        let (parent_chan, child_chan) = Channel::pair()?;

        let into_cgroup = if paused {
            None
        } else {
            cg.clone_into_fd().map(|fd| fd.as_raw_fd())
        };
        // The process joins the v1 hierarchies itself (cheaper than being
        // moved; see Manager::v1_join_files), unless it must join late.
        let cgroup_join = if paused {
            Vec::new()
        } else {
            cg.v1_join_files()?
        };
        // An unprivileged caller cannot join a pid namespace owned by the
        // container's user namespace: the child joins that user namespace,
        // then the pid namespace, and forks the process (see Child::setup).
        let pid_ns_late = target.pid_ns.is_some()
            && !nix::unistd::geteuid().is_root()
            && target
                .joins
                .iter()
                .any(|j| j.typ == LinuxNamespaceType::User);
        let pid_ns_now = if pid_ns_late {
            None
        } else {
            target.pid_ns.as_ref()
        };
        let mut forked = namespaces::clone_into(pid_ns_now, CloneFlags::empty(), into_cgroup);
        // A container's own cgroup2 directory takes no process once the
        // container nests its cgroups: the process goes into its init's.
        if let Err(Error::Sys {
            call: "clone3",
            errno: nix::errno::Errno::EBUSY,
            ..
        }) = &forked
            && let Some(fd) = cg.open_init_cgroup(init_pid)?
        {
            forked = namespaces::clone_into(pid_ns_now, CloneFlags::empty(), Some(fd.as_raw_fd()));
        }
        let pid = match forked {
            Ok(CloneResult::Child) => {
                drop(parent_chan);
                let mut child = Child {
                    process,
                    config: &config,
                    id: &opts.id,
                    target: &target,
                    chan: child_chan,
                    console,
                    preserve_fds: opts.preserve_fds,
                    seccomp: seccomp.as_ref().map(|s| (s, state.as_str())),
                    join_late: paused,
                    cgroup_join,
                    pid_ns_late,
                };
                let _ = nix::unistd::close(dir.lock_fd());
                let outcome =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| child.setup()));
                let _ = child.chan.send(&Msg::Error(init::failure_text(outcome)));
                sys::exit_now(1)
            }
            Ok(CloneResult::Parent(pid)) => pid,
            Err(e) => return Err(e),
        };
        let mut reaper = Reaper(Some(pid));
        drop(child_chan);
        let pid = if pid_ns_late {
            // The first child forked the process into the pid namespace.
            let pid = match parent_chan.recv()? {
                Some(Msg::Pid(p)) => Pid::from_raw(p),
                Some(Msg::Error(text)) => return Err(Error::Other(format!("exec failed: {text}"))),
                other => {
                    return Err(Error::Other(format!(
                        "sync: expected the process's pid, got {other:?}"
                    )));
                }
            };
            let _ = waitpid(reaper.0.take().expect("set above"), None);
            reaper.0 = Some(pid);
            pid
        } else {
            pid
        };
        drop(console);
        drop(target);

        drop(cgroup_join);
        if let Some(score) = process.oom_score_adj() {
            crate::process::set_oom_score_adj(pid, score)?;
        }
        parent_chan.send(&Msg::Go(String::new()))?;
        if paused {
            parent_chan
                .expect(Msg::Ready)
                .map_err(|e| Error::Other(format!("exec failed: {e}")))?;
            cg.add_joining_process(pid, init_pid)?;
            // It freezes on its way to exec; whether exec succeeds is only
            // known once the container is resumed.
            parent_chan.send(&Msg::Start)?;
        }
        if !paused {
            parent_chan
                .wait_exec(|| program_name(process))
                .map_err(|e| Error::Other(format!("exec failed: {e}")))?;
        }
        let pty_master = match own_console {
            Some(sock) => Some(console::recv_fd(sock.as_raw_fd())?.0),
            None => None,
        };
        if let Some(path) = &opts.pid_file {
            crate::container::write_pid_file(path, pid)?;
        }
        reaper.0 = None;
        drop(dir);
        Ok(Execed { pid, pty_master })
    }
}

/// What the child of clone3 needs; it lives in the child's copy of the
/// runtime's memory.
struct Child<'a> {
    process: &'a Process,
    config: &'a Spec,
    id: &'a str,
    target: &'a Target,
    chan: Channel,
    console: Option<OwnedFd>,
    preserve_fds: u32,
    /// The container's seccomp filter and the state its listener gets.
    seccomp: Option<(&'a crate::seccomp::Setup, &'a str)>,
    /// Join the cgroups only after set-up (the container is paused).
    join_late: bool,
    /// The `tasks` files of the v1 cgroups to join at once.
    cgroup_join: Vec<OwnedFd>,
    /// Join the user and pid namespaces first and fork the process into
    /// the pid namespace (an unprivileged caller).
    pid_ns_late: bool,
}

impl Child<'_> {
    /// Joins the container's user namespace, then its pid namespace, and
    /// forks the process that goes on (as a sibling, CLONE_PARENT); this
    /// first child reports its pid and exits.
    fn fork_into_pid_ns(&self) -> Result<()> {
        for join in &self.target.joins {
            if join.typ == LinuxNamespaceType::User {
                namespaces::enter(join)?;
            }
        }
        if let Some(pid_ns) = &self.target.pid_ns {
            namespaces::enter(pid_ns)?;
        }
        match sys::clone3(CloneFlags::CLONE_PARENT.bits() as u64, None) {
            Ok(CloneResult::Child) => Ok(()),
            Ok(CloneResult::Parent(pid)) => {
                self.chan.send(&Msg::Pid(pid.as_raw()))?;
                sys::exit_now(0)
            }
            Err(e) => Err(Error::sys("clone3", "CLONE_PARENT (exec)", e)),
        }
    }

    /// Joins the container and execs the program; returns only on failure.
    fn setup(&mut self) -> Result<Infallible> {
        // Nothing in the container may ptrace us or read our memory until exec.
        nix::sys::prctl::set_dumpable(false).sys("prctl", "PR_SET_DUMPABLE")?;
        if self.pid_ns_late {
            self.fork_into_pid_ns()?;
        }
        nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).sys("prctl", "PR_SET_PDEATHSIG")?;
        crate::cgroups::join_self(&self.cgroup_join)?;
        self.cgroup_join.clear();
        // Had the runtime died, this fails.
        match self.chan.recv()? {
            Some(Msg::Go(_)) => {}
            Some(Msg::Error(e)) => return Err(Error::Init(e)),
            other => return Err(Error::Init(format!("expected go, got {other:?}"))),
        }
        let mut user_ns = false;
        for join in &self.target.joins {
            let is_user = join.typ == LinuxNamespaceType::User;
            if !(is_user && self.pid_ns_late) {
                namespaces::enter(join)?;
            }
            user_ns |= is_user;
        }
        // /proc/self is still the host's /proc here.
        let setgroups_allowed = !user_ns || init::setgroups_allowed();
        // The mount namespace's root is where the init's root was mounted;
        // take exactly the init's root (also right for a chroot'ed init).
        nix::unistd::fchdir(&self.target.root).sys("fchdir", "the container's root")?;
        nix::unistd::chroot(".").sys("chroot", "the container's root")?;
        nix::unistd::chdir("/").sys("chdir", "/")?;
        init::join_keyring(self.id)?;

        let process = self.process;
        crate::process::apply_rlimits(process)?;
        if let Some(p) = self
            .config
            .linux()
            .as_ref()
            .and_then(|l| l.personality().as_ref())
        {
            crate::process::apply_personality(p)?;
        }
        if let Some(sock) = self.console.take() {
            let size = process
                .console_size()
                .map(|b| (b.height() as u16, b.width() as u16));
            let user = process.user();
            console::setup(&sock, size, (user.uid(), user.gid()))?;
        }
        let exe = crate::process::find_executable(process)?;
        // The program outlives the runtime when detached.
        nix::sys::prctl::set_pdeathsig(None).sys("prctl", "PR_SET_PDEATHSIG")?;
        if self.join_late {
            self.chan.send(&Msg::Ready)?;
            self.chan.expect(Msg::Start)?;
        }
        crate::process::finalize_and_exec(
            process,
            &exe,
            self.preserve_fds,
            setgroups_allowed,
            self.seccomp,
            self.chan.as_fd(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Spec {
        let v = crate::spec::default_config(false, 0, 0);
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn overrides_apply_like_runc() {
        let o = Overrides {
            args: vec!["ls".into(), "-l".into()],
            env: vec!["TERM=dumb".into(), "NEW=1".into()],
            cwd: Some("/tmp".into()),
            user: Some((1000, Some(100))),
            additional_gids: vec![5, 6],
            caps: vec!["CAP_SYS_ADMIN".into(), "net_raw".into()],
            no_new_privs: true,
            tty: false,
            apparmor: Some("capsa-profile".into()),
            process_label: Some("u:r:t:s0".into()),
        };
        let p = process_from_config(&config(), &o).unwrap();
        assert_eq!(p.args().as_deref().unwrap(), ["ls", "-l"]);
        assert_eq!(p.apparmor_profile().as_deref(), Some("capsa-profile"));
        assert_eq!(p.selinux_label().as_deref(), Some("u:r:t:s0"));
        assert_eq!(p.terminal(), Some(false));
        let env = p.env().as_deref().unwrap();
        assert!(env.iter().any(|e| e.starts_with("PATH=")));
        assert_eq!(env.iter().filter(|e| e.starts_with("TERM=")).count(), 1);
        assert!(env.contains(&"TERM=dumb".to_string()));
        assert_eq!(env.last().unwrap(), "NEW=1");
        assert_eq!(p.cwd(), Path::new("/tmp"));
        assert_eq!((p.user().uid(), p.user().gid()), (1000, 100));
        assert_eq!(p.user().additional_gids().as_deref().unwrap(), [5, 6]);
        let caps = p.capabilities().as_ref().unwrap();
        for set in [caps.bounding(), caps.effective(), caps.permitted()] {
            let set = set.as_ref().unwrap();
            assert!(set.contains(&Capability::SysAdmin) && set.contains(&Capability::NetRaw));
            assert!(set.contains(&Capability::Kill), "configured ones are kept");
        }
        assert!(caps.inheritable().is_none());
        assert_eq!(p.no_new_privileges(), Some(true));
    }

    #[test]
    fn user_without_gid_keeps_the_configured_gid() {
        let o = Overrides {
            args: vec!["id".into()],
            user: Some((7, None)),
            tty: true,
            ..Default::default()
        };
        let p = process_from_config(&config(), &o).unwrap();
        assert_eq!((p.user().uid(), p.user().gid()), (7, 0));
        assert_eq!(p.terminal(), Some(true));
    }

    #[test]
    fn bad_overrides_are_refused() {
        let no_args = Overrides::default();
        assert!(process_from_config(&config(), &no_args).is_err());
        let bad_env = Overrides {
            args: vec!["id".into()],
            env: vec!["NOEQUALS".into()],
            ..Default::default()
        };
        let msg = process_from_config(&config(), &bad_env)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("NOEQUALS"), "{msg}");
        let bad_cap = Overrides {
            args: vec!["id".into()],
            caps: vec!["CAP_NOPE".into()],
            ..Default::default()
        };
        let msg = process_from_config(&config(), &bad_cap)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("CAP_NOPE"), "{msg}");
    }
}
