//! The container's process: resource limits, personality, finding the
//! program, switching to the configured user and capabilities, and exec.

use std::convert::Infallible;
use std::ffi::{CString, OsStr};
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::sys::resource::{Resource, getrlimit, setrlimit};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, sigprocmask};
use nix::sys::stat::{Mode, umask};
use nix::unistd::{AccessFlags, Gid, Uid, access, chdir, setgroups, setresgid, setresuid};
use oci_spec::runtime::{
    IOPriorityClass, LinuxIOPriority, LinuxPersonality, LinuxPersonalityDomain, LinuxSchedulerFlag,
    LinuxSchedulerPolicy, PosixRlimitType, Process, Scheduler,
};

use crate::capabilities::CapSets;
use crate::error::{Error, Result, SysContext};
use crate::sys;
use crate::trampoline::Trampoline;

/// The PATH used to find the program when the process's env has none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The kernel resource of an rlimit type.
pub fn rlimit_resource(typ: PosixRlimitType) -> Resource {
    match typ {
        PosixRlimitType::RlimitCpu => Resource::RLIMIT_CPU,
        PosixRlimitType::RlimitFsize => Resource::RLIMIT_FSIZE,
        PosixRlimitType::RlimitData => Resource::RLIMIT_DATA,
        PosixRlimitType::RlimitStack => Resource::RLIMIT_STACK,
        PosixRlimitType::RlimitCore => Resource::RLIMIT_CORE,
        PosixRlimitType::RlimitRss => Resource::RLIMIT_RSS,
        PosixRlimitType::RlimitNproc => Resource::RLIMIT_NPROC,
        PosixRlimitType::RlimitNofile => Resource::RLIMIT_NOFILE,
        PosixRlimitType::RlimitMemlock => Resource::RLIMIT_MEMLOCK,
        PosixRlimitType::RlimitAs => Resource::RLIMIT_AS,
        PosixRlimitType::RlimitLocks => Resource::RLIMIT_LOCKS,
        PosixRlimitType::RlimitSigpending => Resource::RLIMIT_SIGPENDING,
        PosixRlimitType::RlimitMsgqueue => Resource::RLIMIT_MSGQUEUE,
        PosixRlimitType::RlimitNice => Resource::RLIMIT_NICE,
        PosixRlimitType::RlimitRtprio => Resource::RLIMIT_RTPRIO,
        PosixRlimitType::RlimitRttime => Resource::RLIMIT_RTTIME,
    }
}

/// Applies `process.rlimits`. A hard limit above the current one is an error
/// (raising it needs CAP_SYS_RESOURCE), never silently clamped.
pub fn apply_rlimits(process: &Process) -> Result<()> {
    for (i, rl) in process.rlimits().iter().flatten().enumerate() {
        let field = format!("process.rlimits[{i}]");
        if rl.soft() > rl.hard() {
            return Err(Error::config(
                field,
                format!(
                    "{}: soft limit {} is above hard limit {}",
                    rl.typ(),
                    rl.soft(),
                    rl.hard()
                ),
            ));
        }
        let res = rlimit_resource(rl.typ());
        if let Err(e) = setrlimit(res, rl.soft(), rl.hard()) {
            let (_, cur_hard) = getrlimit(res).unwrap_or((0, 0));
            let reason = if e == nix::errno::Errno::EPERM && rl.hard() > cur_hard {
                format!(
                    "{}: hard limit {} is above the current hard limit {cur_hard}, and raising it needs CAP_SYS_RESOURCE",
                    rl.typ(),
                    rl.hard()
                )
            } else {
                format!("{}: setrlimit({}, {}): {e}", rl.typ(), rl.soft(), rl.hard())
            };
            return Err(Error::config(field, reason));
        }
    }
    Ok(())
}

/// Applies `linux.personality` (domain LINUX or LINUX32, flags unsupported).
pub fn apply_personality(p: &LinuxPersonality) -> Result<()> {
    if p.flags().as_ref().is_some_and(|f| !f.is_empty()) {
        return Err(Error::Unsupported(
            "linux.personality.flags: personality flags are not supported".into(),
        ));
    }
    let persona = match p.domain() {
        LinuxPersonalityDomain::PerLinux => nix::sys::personality::Persona::empty(),
        LinuxPersonalityDomain::PerLinux32 => {
            nix::sys::personality::Persona::from_bits_retain(0x0008)
        }
    };
    nix::sys::personality::set(persona).sys("personality", p.domain())?;
    Ok(())
}

/// Applies `process.scheduler` to the calling process (sched_setattr(2)).
pub fn apply_scheduler(s: &Scheduler) -> Result<()> {
    let field = "process.scheduler";
    let policy = match s.policy() {
        LinuxSchedulerPolicy::SchedOther => 0,
        LinuxSchedulerPolicy::SchedFifo => 1,
        LinuxSchedulerPolicy::SchedRr => 2,
        LinuxSchedulerPolicy::SchedBatch => 3,
        LinuxSchedulerPolicy::SchedIso => 4,
        LinuxSchedulerPolicy::SchedIdle => 5,
        LinuxSchedulerPolicy::SchedDeadline => 6,
    };
    let mut flags = 0u64;
    for f in s.flags().iter().flatten() {
        flags |= match f {
            LinuxSchedulerFlag::SchedResetOnFork => 0x01,
            LinuxSchedulerFlag::SchedFlagReclaim => 0x02,
            LinuxSchedulerFlag::SchedFlagDLOverrun => 0x04,
            LinuxSchedulerFlag::SchedFlagKeepPolicy => 0x08,
            LinuxSchedulerFlag::SchedFlagKeepParams => 0x10,
            LinuxSchedulerFlag::SchedFlagUtilClampMin
            | LinuxSchedulerFlag::SchedFlagUtilClampMax => {
                return Err(Error::Unsupported(format!(
                    "{field}.flags: {f}: the spec gives no clamp value to set"
                )));
            }
        };
    }
    let nice = s.nice().unwrap_or(0);
    if !(-20..=19).contains(&nice) {
        return Err(Error::config(
            format!("{field}.nice"),
            format!("{nice} is not in -20..19"),
        ));
    }
    let priority = s.priority().unwrap_or(0);
    let priority = u32::try_from(priority).map_err(|_| {
        Error::config(
            format!("{field}.priority"),
            format!("{priority} is negative"),
        )
    })?;
    let attr = sys::SchedAttr {
        sched_policy: policy,
        sched_flags: flags,
        sched_nice: nice,
        sched_priority: priority,
        sched_runtime: s.runtime().unwrap_or(0),
        sched_deadline: s.deadline().unwrap_or(0),
        sched_period: s.period().unwrap_or(0),
        ..Default::default()
    };
    sys::sched_setattr(&attr).map_err(|e| {
        Error::config(
            field,
            format!("sched_setattr({} {attr:?}): {e}", s.policy()),
        )
    })
}

/// Applies `process.ioPriority` to the calling process (ioprio_set(2)).
pub fn apply_io_priority(p: &LinuxIOPriority) -> Result<()> {
    let class = match p.class() {
        IOPriorityClass::IoprioClassRt => 1,
        IOPriorityClass::IoprioClassBe => 2,
        IOPriorityClass::IoprioClassIdle => 3,
    };
    if !(0..=7).contains(&p.priority()) {
        return Err(Error::config(
            "process.ioPriority.priority",
            format!("{} is not in 0..7", p.priority()),
        ));
    }
    let prio = (class << 13) | p.priority() as i32;
    sys::ioprio_set(prio).map_err(|e| {
        Error::config(
            "process.ioPriority",
            format!("ioprio_set({} {}): {e}", p.class(), p.priority()),
        )
    })
}

/// The value of `NAME` in an env list of `NAME=VALUE` strings.
pub fn env_get<'a>(env: &'a [String], name: &str) -> Option<&'a str> {
    env.iter().rev().find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == name).then_some(v)
    })
}

/// Finds the program `args[0]` as execve will: a name with a '/' is taken
/// as is (relative to `cwd`), others are looked up in the env's PATH.
/// Must be called inside the container's root.
pub fn find_executable(process: &Process) -> Result<PathBuf> {
    let args = process.args().as_deref().unwrap_or_default();
    let name = args.first().map(String::as_str).unwrap_or_default();
    let not_found = |why: &str| Error::Init(format!("exec: {name:?}: {why}"));
    let usable = |p: &Path| match std::fs::metadata(p) {
        Ok(m) if m.is_file() => access(p, AccessFlags::X_OK).is_ok(),
        _ => false,
    };
    if name.contains('/') {
        let path = if Path::new(name).is_absolute() {
            PathBuf::from(name)
        } else {
            process.cwd().join(name)
        };
        return match std::fs::metadata(&path) {
            Ok(m) if m.is_dir() => Err(not_found("is a directory")),
            Ok(_) if usable(&path) => Ok(PathBuf::from(name)),
            Ok(_) => Err(not_found("permission denied")),
            Err(e) => Err(not_found(&e.to_string())),
        };
    }
    let env = process.env().as_deref().unwrap_or_default();
    let path_var = env_get(env, "PATH").unwrap_or(DEFAULT_PATH);
    for dir in path_var.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let candidate = Path::new(dir).join(name);
        let candidate = if candidate.is_absolute() {
            candidate
        } else {
            process.cwd().join(candidate)
        };
        if usable(&candidate) {
            return Ok(candidate);
        }
    }
    Err(not_found("executable file not found in $PATH"))
}

/// Switches to the process's user and capabilities and execs the program
/// through the exec trampoline ([`crate::trampoline`]: the container never
/// gets to the runtime's binary). Returns only on failure; a failed exec of
/// the program itself is reported on `report` (the set-up channel, which
/// the runtime reads: end-of-file means the program runs).
///
/// `preserve_fds` descriptors after stdio (3, 4, ...) stay open; all others
/// are closed by exec.
///
/// `seccomp` is the filter with the state JSON its listener gets. It is
/// installed last, after every step of the runtime's own: the container's
/// profile may refuse any system call but those of its program, so after
/// it only the exec of the trampoline follows (and, for a notifying
/// filter, the hand-off of its descriptor). Without no_new_privs
/// installing it needs CAP_SYS_ADMIN, which the process then holds in its
/// effective and permitted sets alone until the exec, which drops it: exec
/// keeps only what the inheritable, ambient and bounding sets (all as
/// configured) give back, and the runtime makes no capset after the filter.
pub fn finalize_and_exec(
    process: &Process,
    exe: &Path,
    preserve_fds: u32,
    setgroups_allowed: bool,
    seccomp: Option<(&crate::seccomp::Setup, &str)>,
    report: BorrowedFd<'_>,
) -> Result<Infallible> {
    let keep = preserve_fds + listen_fds(process);
    // Made before the seccomp filter is installed (it may deny memfd_create),
    // above the descriptors the program gets.
    let trampoline = Trampoline::new(3 + keep as i32)?;
    // While the capabilities to raise them are still held.
    if let Some(s) = process.scheduler() {
        apply_scheduler(s)?;
    }
    if let Some(p) = process.io_priority() {
        apply_io_priority(p)?;
    }
    let caps = CapSets::from_config(process.capabilities().as_ref())?;
    caps.apply_bounding()?;
    let nnp = process.no_new_privileges().unwrap_or(false);
    let held = if seccomp.is_some() && !nnp {
        caps.holding_until_exec(crate::capabilities::CAP_SYS_ADMIN)
    } else {
        caps
    };

    let user = process.user();
    switch_user(user, setgroups_allowed)?;
    held.apply_process_sets()?;

    if let Some(mask) = user.umask() {
        umask(Mode::from_bits_truncate(mask as libc::mode_t));
    }
    let cwd = process.cwd();
    chdir(cwd).sys("chdir", cwd.display())?;
    // A working directory reached through a descriptor that leads outside the
    // root (CVE-2024-21626) makes getcwd fail or return a path not under "/".
    match nix::unistd::getcwd() {
        Ok(p) if p.is_absolute() => {}
        _ => {
            return Err(Error::Init(format!(
                "working directory {} is outside the container's root",
                cwd.display()
            )));
        }
    }
    if nnp {
        nix::sys::prctl::set_no_new_privs().sys("prctl", "PR_SET_NO_NEW_PRIVS")?;
    }

    crate::lsm::Host::default().apply_process(
        process.apparmor_profile().as_deref(),
        process.selinux_label().as_deref(),
    )?;
    keep_fds(keep)?;
    reset_signals()?;

    let filter = seccomp.map(|(s, _)| &s.filter);
    // A profile that denies execveat still lets the trampoline be exec'd by
    // its /proc path.
    let by_path = filter.is_some_and(|f| {
        let fd = trampoline.raw_fd() as u64;
        let empty_path = libc::AT_EMPTY_PATH as u64;
        !f.allows("execveat", [fd, 0, 0, 0, empty_path, 0])
    });
    // One that denies the trampoline's fcntl on the channel leaves the
    // channel close-on-exec: a failed exec of the program then shows only
    // in its exit status (126 or 127).
    let report = Some(report).filter(|fd| {
        filter.is_none_or(|f| {
            let args = [fd.as_raw_fd() as u64, libc::F_SETFD as u64, 1, 0, 0, 0];
            f.allows("fcntl", args)
        })
    });
    let args: Vec<CString> = process
        .args()
        .iter()
        .flatten()
        .map(|a| cstring(OsStr::new(a)))
        .collect::<Result<_>>()?;
    let env: Vec<CString> = process
        .env()
        .iter()
        .flatten()
        .map(|e| cstring(OsStr::new(e)))
        .collect::<Result<_>>()?;
    let exec = trampoline.prepare(report, cstring(exe.as_os_str())?, args, env, by_path)?;
    crate::timing::stage("init: exec");
    if let Some((filter, state)) = seccomp {
        filter.apply(state)?;
    }
    Err(exec.run())
}

/// Becomes `user`: supplementary groups (where setgroups is allowed), gid
/// and uid, keeping the permitted capabilities for the capset that follows.
fn switch_user(user: &oci_spec::runtime::User, setgroups_allowed: bool) -> Result<()> {
    let uid = Uid::from_raw(user.uid());
    let gid = Gid::from_raw(user.gid());
    nix::sys::prctl::set_keepcaps(true).sys("prctl", "PR_SET_KEEPCAPS")?;
    if setgroups_allowed {
        let groups: Vec<Gid> = user
            .additional_gids()
            .iter()
            .flatten()
            .map(|g| Gid::from_raw(*g))
            .collect();
        setgroups(&groups).sys("setgroups", format!("{groups:?}"))?;
    } else if user
        .additional_gids()
        .as_ref()
        .is_some_and(|g| !g.is_empty())
    {
        return Err(Error::config(
            "process.user.additionalGids",
            "cannot set supplementary groups: setgroups is denied in this user namespace",
        ));
    }
    setresgid(gid, gid, gid).sys("setresgid", gid)?;
    setresuid(uid, uid, uid).sys("setresuid", uid)?;
    nix::sys::prctl::set_keepcaps(false).sys("prctl", "PR_SET_KEEPCAPS")?;
    Ok(())
}

/// The number of socket-activation descriptors the process's env passes
/// (LISTEN_FDS), which stay open like `--preserve-fds` ones.
fn listen_fds(process: &Process) -> u32 {
    let env = process.env().as_deref().unwrap_or_default();
    env_get(env, "LISTEN_FDS")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Keeps stdio and `extra` descriptors after it open across exec; marks
/// every other descriptor close-on-exec.
pub fn keep_fds(extra: u32) -> Result<()> {
    for fd in 3..3 + extra as i32 {
        // Clearing FD_CLOEXEC on a descriptor that is not open fails with
        // EBADF, which is fine: there is nothing to keep.
        let _ = sys::clear_cloexec(fd);
    }
    let first = 3 + extra;
    match sys::cloexec_from(first) {
        Ok(()) => Ok(()),
        // Kernels before 5.11 have no CLOSE_RANGE_CLOEXEC (EINVAL), before
        // 5.9 no close_range (ENOSYS): mark each open descriptor, as runc.
        Err(e) => cloexec_listed(first).map_err(|walk| {
            Error::Init(format!(
                "close_range({first}.., CLOEXEC): {e}; and marking each of /proc/self/fd: {walk}"
            ))
        }),
    }
}

/// Marks each descriptor from `first` on that /proc/self/fd lists
/// close-on-exec.
fn cloexec_listed(first: u32) -> std::io::Result<()> {
    for entry in std::fs::read_dir("/proc/self/fd")? {
        let fd: RawFd = match entry?.file_name().to_str().and_then(|n| n.parse().ok()) {
            Some(fd) => fd,
            None => continue,
        };
        if fd >= first as RawFd {
            match sys::set_cloexec(fd) {
                // The directory's own descriptor, closed by now.
                Ok(()) | Err(nix::errno::Errno::EBADF) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(())
}

/// Unblocks every signal and restores default dispositions (the Rust
/// runtime ignores SIGPIPE, and ignored signals would survive exec).
pub fn reset_signals() -> Result<()> {
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
        .sys("sigprocmask", "unblock all")?;
    for sig in Signal::iterator() {
        if matches!(sig, Signal::SIGKILL | Signal::SIGSTOP) {
            continue;
        }
        sys::default_signal(sig);
    }
    Ok(())
}

/// A C string from `s`, refusing interior NUL bytes.
pub fn cstring(s: &OsStr) -> Result<CString> {
    CString::new(s.as_bytes())
        .map_err(|_| Error::config("process", format!("{s:?} contains a NUL byte")))
}

/// Writes `process.oomScoreAdj` for process `pid` (done by the runtime, as
/// lowering it needs privileges the container's process may not have).
pub fn set_oom_score_adj(pid: nix::unistd::Pid, score: i32) -> Result<()> {
    let path = format!("/proc/{pid}/oom_score_adj");
    std::fs::write(&path, score.to_string())
        .map_err(|e| Error::config("process.oomScoreAdj", format!("{path}: {e}")))
}

/// Sets the process's uid and gid to 0 in a new user namespace whose mapping
/// includes 0, so that it holds its capabilities under a known identity.
pub fn become_root_in_userns() -> Result<()> {
    setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0)).sys("setresgid", 0)?;
    setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0)).sys("setresuid", 0)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_lookup_takes_the_last_value() {
        let env = vec!["A=1".to_string(), "PATH=/x".to_string(), "A=2".to_string()];
        assert_eq!(env_get(&env, "A"), Some("2"));
        assert_eq!(env_get(&env, "PATH"), Some("/x"));
        assert_eq!(env_get(&env, "B"), None);
    }
}
