//! `linux.sysctl`: which kernel parameters a container may set, and where
//! they are written.
//!
//! /proc/sys is only partly namespaced: a parameter that belongs to no
//! namespace of the container's own would change the host. As runc does,
//! only these are accepted, each when the container has the namespace it
//! belongs to: the IPC ones (`kernel.msgmax`, `kernel.msgmnb`,
//! `kernel.msgmni`, `kernel.sem`, `kernel.shmall`, `kernel.shmmax`,
//! `kernel.shmmni`, `kernel.shm_rmid_forced`, `fs.mqueue.*`), the network
//! ones (`net.*`) and `kernel.domainname` (UTS; `kernel.hostname` is
//! refused, the `hostname` field sets it). A namespace joined by path that
//! is the runtime's own (the host's) counts as none, for every kind (runc
//! checks that for the network only).

use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;

use oci_spec::runtime::{Linux, LinuxNamespaceType};

use crate::error::{Error, Result};
use crate::namespaces::Plan;

/// The IPC namespace's parameters besides `fs.mqueue.*`.
const IPC: &[&str] = &[
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// A parameter's name with dots between its parts, as sysctl(8) accepts it
/// with '/' instead ("net/ipv4/conf/eth0.100/rp_filter" is
/// "net.ipv4.conf.eth0/100.rp_filter": a dot inside a part becomes '/').
pub fn dotted(key: &str) -> String {
    match key.find(['.', '/']) {
        Some(i) if key.as_bytes()[i] == b'/' => key
            .chars()
            .map(|c| match c {
                '.' => '/',
                '/' => '.',
                c => c,
            })
            .collect(),
        _ => key.to_string(),
    }
}

/// The file under /proc/sys of a parameter (from its dotted name).
pub fn proc_path(key: &str) -> String {
    let file: String = dotted(key)
        .chars()
        .map(|c| match c {
            '.' => '/',
            '/' => '.',
            c => c,
        })
        .collect();
    format!("/proc/sys/{file}")
}

/// The namespace a parameter (by its [`dotted`] name) belongs to; `Err`
/// with the reason it is refused whatever the namespaces.
pub fn namespace_of(name: &str) -> std::result::Result<LinuxNamespaceType, &'static str> {
    if IPC.contains(&name) || name.starts_with("fs.mqueue.") {
        Ok(LinuxNamespaceType::Ipc)
    } else if name.starts_with("net.") {
        Ok(LinuxNamespaceType::Network)
    } else if name == "kernel.domainname" {
        Ok(LinuxNamespaceType::Uts)
    } else if name == "kernel.hostname" {
        Err("it conflicts with the OCI \"hostname\" field, which sets it")
    } else {
        Err("it is not in a separate kernel namespace: writing it would change the host")
    }
}

/// Refuses every parameter of `linux.sysctl` that would not stay inside
/// the container, naming it and why.
pub fn check(linux: &Linux, plan: &Plan) -> Result<()> {
    for key in linux.sysctl().iter().flat_map(|m| m.keys()) {
        let field = format!("linux.sysctl.{key}");
        let name = dotted(key);
        if name.is_empty()
            || name.starts_with('.')
            || name.ends_with('.')
            || name.contains("..")
            || name.split(['.', '/']).any(|p| p == ".." || p.is_empty())
        {
            return Err(Error::config(field, "not a sysctl name"));
        }
        let typ = namespace_of(&name).map_err(|why| Error::config(&field, why))?;
        let kind = crate::spec::ns_name(typ);
        if !plan.has(typ) {
            return Err(Error::config(
                field,
                format!(
                    "it belongs to the {kind} namespace, and the container has none of its \
                     own (linux.namespaces has no {kind} entry): it would change the host's"
                ),
            ));
        }
        if is_own(plan, typ)? {
            return Err(Error::config(
                field,
                format!(
                    "it belongs to the {kind} namespace, and the container joins the \
                     runtime's own (the host's) by path: it would change the host's"
                ),
            ));
        }
    }
    Ok(())
}

/// Whether the namespace of `typ` the container joins by path is the one
/// the runtime itself is in.
fn is_own(plan: &Plan, typ: LinuxNamespaceType) -> Result<bool> {
    let Some(join) = plan.join.iter().find(|j| j.typ == typ) else {
        return Ok(false);
    };
    let ours = crate::procfs::ns_path(std::process::id() as i32, ns_file(typ));
    let ours = std::fs::metadata(&ours).map_err(|e| Error::io("stat", &ours, e))?;
    let theirs = nix::sys::stat::fstat(join.fd.as_fd())
        .map_err(|e| Error::sys("fstat", format!("{} namespace", ns_file(typ)), e))?;
    Ok(ours.dev() == theirs.st_dev && ours.ino() == theirs.st_ino)
}

/// The name of a namespace's file in /proc/PID/ns.
fn ns_file(typ: LinuxNamespaceType) -> &'static str {
    match typ {
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Mount => "mnt",
        other => crate::spec::ns_name(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slash_separated_names_become_dotted() {
        assert_eq!(dotted("net.ipv4.ip_forward"), "net.ipv4.ip_forward");
        assert_eq!(dotted("net/ipv4/ip_forward"), "net.ipv4.ip_forward");
        assert_eq!(
            dotted("net/ipv4/conf/eno2.100/rp_filter"),
            "net.ipv4.conf.eno2/100.rp_filter"
        );
        assert_eq!(
            proc_path("net.ipv4.conf.eno2/100.rp_filter"),
            "/proc/sys/net/ipv4/conf/eno2.100/rp_filter"
        );
        assert_eq!(proc_path("kernel.shmmax"), "/proc/sys/kernel/shmmax");
    }

    #[test]
    fn every_name_has_its_namespace_or_a_reason() {
        use LinuxNamespaceType::*;
        for (name, want) in [
            ("kernel.shmmax", Some(Ipc)),
            ("kernel.sem", Some(Ipc)),
            ("fs.mqueue.msg_max", Some(Ipc)),
            ("net.ipv4.ip_forward", Some(Network)),
            ("kernel.domainname", Some(Uts)),
            ("kernel.hostname", None),
            ("kernel.printk_ratelimit", None),
            ("kernel.semaphore", None),
            ("vm.swappiness", None),
            ("fs.mqueuex", None),
        ] {
            assert_eq!(namespace_of(name).ok(), want, "{name}");
        }
    }
}
