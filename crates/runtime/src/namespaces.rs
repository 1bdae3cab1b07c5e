//! Linux namespaces: which ones a config creates, which it joins by path, and
//! the order in which they are entered.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::fcntl::{OFlag, open};
use nix::sched::{CloneFlags, setns, unshare};
use nix::sys::stat::Mode;
use nix::unistd::Pid;
use oci_spec::runtime::{Linux, LinuxIdMapping, LinuxNamespaceType};

use crate::error::{Error, Result, SysContext};
use crate::spec::ns_name;
use crate::sys::CloneResult;

/// The clone flag of a namespace type.
pub fn clone_flag(typ: LinuxNamespaceType) -> CloneFlags {
    match typ {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        LinuxNamespaceType::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    }
}

/// The name of a namespace's file under /proc/PID/ns.
pub fn proc_name(typ: LinuxNamespaceType) -> &'static str {
    match typ {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Time => "time",
    }
}

/// A namespace to join: its type and an open descriptor of it.
#[derive(Debug)]
pub struct Join {
    /// The namespace type.
    pub typ: LinuxNamespaceType,
    /// The open namespace file.
    pub fd: OwnedFd,
}

/// The namespaces of a container, split into those created and those joined.
#[derive(Debug, Default)]
pub struct Plan {
    /// Namespace types the container gets new instances of.
    pub create: Vec<LinuxNamespaceType>,
    /// Existing namespaces it joins, opened while the runtime still sees the
    /// host's file system.
    pub join: Vec<Join>,
}

impl Plan {
    /// Reads `linux.namespaces`, opening every `path` now (so that errors are
    /// reported before anything is created, and paths resolve on the host).
    pub fn from_config(linux: &Linux) -> Result<Plan> {
        let mut plan = Plan::default();
        for (i, ns) in linux.namespaces().iter().flatten().enumerate() {
            match ns.path() {
                None => plan.create.push(ns.typ()),
                Some(path) => {
                    let fd = open_ns(path, ns.typ()).map_err(|e| match e {
                        Error::Sys { errno, .. } => Error::config(
                            format!("linux.namespaces[{i}].path"),
                            format!("{}: {errno}", path.display()),
                        ),
                        e => e,
                    })?;
                    plan.join.push(Join { typ: ns.typ(), fd });
                }
            }
        }
        // Enter the user namespace first: it owns the others.
        plan.join
            .sort_by_key(|j| (j.typ != LinuxNamespaceType::User) as u8);
        Ok(plan)
    }

    /// Whether the container gets a new namespace of `typ`.
    pub fn creates(&self, typ: LinuxNamespaceType) -> bool {
        self.create.contains(&typ)
    }

    /// Whether the container joins an existing namespace of `typ`.
    pub fn joins(&self, typ: LinuxNamespaceType) -> bool {
        self.join.iter().any(|j| j.typ == typ)
    }

    /// Whether the container has its own (new or joined) namespace of `typ`.
    pub fn has(&self, typ: LinuxNamespaceType) -> bool {
        self.creates(typ) || self.joins(typ)
    }

    /// Whether the init process forks a second time: a new pid namespace
    /// must be created after joining a user namespace by path (to belong to
    /// it), and only children enter a new pid namespace.
    pub fn forks_twice(&self) -> bool {
        self.joins(LinuxNamespaceType::User) && self.creates(LinuxNamespaceType::Pid)
    }

    /// Clone flags for the namespaces that are created at clone time: all new
    /// ones except cgroup (entered after the process is in its cgroup, unless
    /// `cgroup_at_clone`) and time (whose offsets must be written first).
    /// None when a user namespace is joined by path: the new namespaces must
    /// belong to it, so the init process creates them after joining it.
    ///
    /// Only the namespaces that must exist at clone time are made there
    /// (user, which owns the others, and pid, which only children enter);
    /// the init makes mount, network, ipc and uts ones itself
    /// ([`Plan::unshare_flags`]) while the runtime works on its cgroups.
    pub fn clone_flags(&self, cgroup_at_clone: bool) -> CloneFlags {
        let mut flags = CloneFlags::empty();
        if self.joins(LinuxNamespaceType::User) {
            return flags;
        }
        for &typ in &self.create {
            match typ {
                LinuxNamespaceType::User | LinuxNamespaceType::Pid => flags |= clone_flag(typ),
                LinuxNamespaceType::Cgroup if cgroup_at_clone => flags |= clone_flag(typ),
                _ => {}
            }
        }
        flags
    }

    /// The namespaces the init process creates itself right after clone:
    /// mount, network, ipc and uts (see [`Plan::clone_flags`]).
    pub fn unshare_flags(&self) -> CloneFlags {
        let mut flags = CloneFlags::empty();
        for &typ in &self.create {
            if matches!(
                typ,
                LinuxNamespaceType::Mount
                    | LinuxNamespaceType::Network
                    | LinuxNamespaceType::Ipc
                    | LinuxNamespaceType::Uts
            ) {
                flags |= clone_flag(typ);
            }
        }
        flags
    }
}

/// Opens a namespace file and checks that it is a namespace of `typ`.
pub fn open_ns(path: &Path, typ: LinuxNamespaceType) -> Result<OwnedFd> {
    let fd = open(path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
        .sys("open", path.display())?;
    check_ns_type(&fd, typ, path)?;
    Ok(fd)
}

/// Fails unless `fd` is a namespace file of type `typ` (NS_GET_NSTYPE).
fn check_ns_type(fd: &OwnedFd, typ: LinuxNamespaceType, path: &Path) -> Result<()> {
    let got = crate::sys::ns_type(fd.as_fd()).map_err(|e| match e {
        nix::errno::Errno::ENOTTY | nix::errno::Errno::EINVAL => Error::config(
            "linux.namespaces.path",
            format!("{} is not a namespace file", path.display()),
        ),
        e => Error::sys("ioctl", format!("NS_GET_NSTYPE {}", path.display()), e),
    })?;
    let want = clone_flag(typ).bits();
    if got != want {
        return Err(Error::config(
            "linux.namespaces.path",
            format!("{} is not a {} namespace", path.display(), ns_name(typ)),
        ));
    }
    Ok(())
}

/// Joins the namespace behind `join`.
pub fn enter(join: &Join) -> Result<()> {
    setns(join.fd.as_fd(), clone_flag(join.typ)).sys("setns", ns_name(join.typ))
}

/// Forks the calling process with clone3 (`flags`, and CLONE_INTO_CGROUP when
/// `cgroup_fd` is given), the child being born in the pid namespace `pid_ns`
/// when one is given: joining a pid namespace only affects children, so the
/// caller joins it around the clone and goes back (the child cannot).
///
/// The caller must be single-threaded.
pub fn clone_into(
    pid_ns: Option<&Join>,
    flags: CloneFlags,
    cgroup_fd: Option<std::os::fd::RawFd>,
) -> Result<CloneResult> {
    let own = match pid_ns {
        Some(join) => {
            let own = open_ns(Path::new("/proc/self/ns/pid"), LinuxNamespaceType::Pid)?;
            enter(join)?;
            Some(own)
        }
        None => None,
    };
    let forked = crate::sys::clone3(flags.bits() as u64, cgroup_fd);
    if let (Some(own), Ok(CloneResult::Parent(_)) | Err(_)) = (&own, &forked) {
        setns(own.as_fd(), CloneFlags::CLONE_NEWPID).sys("setns", "own pid namespace")?;
    }
    forked.map_err(|e| Error::sys("clone3", format!("{flags:?}"), e))
}

/// Creates new namespaces of the given types for the calling process.
pub fn unshare_ns(flags: CloneFlags) -> Result<()> {
    unshare(flags).sys("unshare", format!("{flags:?}"))
}

/// Formats id mappings the way /proc/PID/uid_map takes them.
pub fn format_id_map(maps: &[LinuxIdMapping]) -> String {
    let mut text = String::new();
    for m in maps {
        text.push_str(&format!(
            "{} {} {}\n",
            m.container_id(),
            m.host_id(),
            m.size()
        ));
    }
    text
}

/// Writes the uid and gid mappings of the new user namespace of process
/// `pid` (done by the runtime, outside that namespace). Root writes them
/// directly. An unprivileged caller writes a mapping of only its own uid
/// (gid) directly (for gid_map after denying setgroups, as the kernel
/// requires), and any other through the setuid helpers `newuidmap` and
/// `newgidmap` (Debian's `uidmap`), which check /etc/subuid and /etc/subgid.
pub fn write_id_maps(pid: Pid, linux: &Linux) -> Result<()> {
    let uid = linux.uid_mappings().as_deref().unwrap_or_default();
    let gid = linux.gid_mappings().as_deref().unwrap_or_default();
    let privileged = nix::unistd::geteuid().is_root();
    let own_uid = nix::unistd::geteuid().as_raw();
    let own_gid = nix::unistd::getegid().as_raw();
    for (file, maps, field, own, helper) in [
        ("uid_map", uid, "linux.uidMappings", own_uid, IdHelper::Uid),
        ("gid_map", gid, "linux.gidMappings", own_gid, IdHelper::Gid),
    ] {
        if maps.is_empty() {
            continue;
        }
        if privileged || only_own_id(maps, own) {
            if !privileged && helper == IdHelper::Gid {
                let path = format!("/proc/{pid}/setgroups");
                std::fs::write(&path, "deny")
                    .map_err(|e| Error::config(field, format!("writing deny to {path}: {e}")))?;
            }
            let path = format!("/proc/{pid}/{file}");
            std::fs::write(&path, format_id_map(maps))
                .map_err(|e| Error::config(field, format!("writing {path}: {e}")))?;
        } else {
            helper.run(pid, maps, field)?;
        }
    }
    Ok(())
}

/// Whether `maps` is a single mapping of the caller's own id `own`, which
/// an unprivileged process may write itself.
fn only_own_id(maps: &[LinuxIdMapping], own: u32) -> bool {
    matches!(maps, [m] if m.host_id() == own && m.size() == 1)
}

/// The setuid helper that writes mappings an unprivileged user may not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum IdHelper {
    Uid,
    Gid,
}

impl IdHelper {
    fn names(self) -> (&'static str, &'static str, &'static str) {
        match self {
            IdHelper::Uid => ("newuidmap", "/etc/subuid", "user"),
            IdHelper::Gid => ("newgidmap", "/etc/subgid", "group"),
        }
    }

    /// Runs `newuidmap PID ID HOST SIZE...` (or newgidmap).
    fn run(self, pid: Pid, maps: &[LinuxIdMapping], field: &str) -> Result<()> {
        let (tool, subids, kind) = self.names();
        let path = find_in_path(tool).ok_or_else(|| {
            Error::config(
                field,
                format!(
                    "an unprivileged user can map only its own {kind} id by itself; these mappings need {tool} (Debian package uidmap), which is not in $PATH"
                ),
            )
        })?;
        let mut args = vec![pid.to_string()];
        for m in maps {
            args.extend([
                m.container_id().to_string(),
                m.host_id().to_string(),
                m.size().to_string(),
            ]);
        }
        let out = std::process::Command::new(&path)
            .args(&args)
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| Error::config(field, format!("running {}: {e}", path.display())))?;
        if out.status.success() {
            return Ok(());
        }
        let me = nix::unistd::User::from_uid(nix::unistd::getuid())
            .ok()
            .flatten()
            .map(|u| u.name)
            .unwrap_or_else(|| nix::unistd::getuid().to_string());
        Err(Error::config(
            field,
            format!(
                "{tool} {} failed ({}): {} (the ranges must be granted to {me} in {subids})",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        ))
    }
}

/// The first executable file named `name` in $PATH.
fn find_in_path(name: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| crate::process::DEFAULT_PATH.into());
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Whether a mapping list maps id 0 inside the namespace.
pub fn maps_root(maps: Option<&Vec<LinuxIdMapping>>) -> bool {
    maps.into_iter()
        .flatten()
        .any(|m| m.container_id() == 0 && m.size() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_namespaces_open_with_the_right_type() {
        for typ in [
            LinuxNamespaceType::Mount,
            LinuxNamespaceType::Network,
            LinuxNamespaceType::Pid,
            LinuxNamespaceType::Uts,
        ] {
            let p = format!("/proc/self/ns/{}", proc_name(typ));
            open_ns(Path::new(&p), typ).unwrap();
        }
    }

    #[test]
    fn wrong_namespace_type_is_refused() {
        let err = open_ns(Path::new("/proc/self/ns/net"), LinuxNamespaceType::Ipc).unwrap_err();
        assert!(err.to_string().contains("is not a ipc namespace"), "{err}");
        let err = open_ns(Path::new("/etc/hostname"), LinuxNamespaceType::Ipc).unwrap_err();
        assert!(err.to_string().contains("not a namespace file"), "{err}");
    }
}
