//! Id-mapped bind mounts (`idmap`, `ridmap`, a mount's `uidMappings` and
//! `gidMappings`): files owned by id X on disk appear owned by the id the
//! mapping gives X.
//!
//! Setting MOUNT_ATTR_IDMAP needs CAP_SYS_ADMIN over the source's file
//! system, which the container's init lacks once it is in a user namespace.
//! So the runtime makes these mounts itself before it forks the init: a
//! detached clone of the source with the mapping (and the other attributes)
//! applied, whose descriptor the init inherits and attaches in place.

use std::collections::HashMap;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::sched::CloneFlags;
use nix::sys::wait::waitpid;
use oci_spec::runtime::{LinuxIdMapping, Spec};

use super::bind::{bind_source, bind_tree};
use super::options::{Depth, Options};
use crate::error::{Error, Result, SysContext};
use crate::namespaces::format_id_map;
use crate::sys::{self, CloneResult};

/// Detached id-mapped bind mounts, by index in `mounts`.
#[derive(Debug, Default)]
pub struct IdmappedMounts {
    trees: Vec<(usize, OwnedFd)>,
}

impl IdmappedMounts {
    /// The prepared mount for `mounts[index]`.
    pub fn get(&self, index: usize) -> Option<BorrowedFd<'_>> {
        self.trees
            .iter()
            .find(|(i, _)| *i == index)
            .map(|(_, fd)| fd.as_fd())
    }
}

/// Makes the detached id-mapped mounts the config asks for (done by the
/// runtime, before the init process is forked, with the host's view).
pub(super) fn prepare(spec: &Spec, bundle: &Path) -> Result<IdmappedMounts> {
    let mut out = IdmappedMounts::default();
    // One user namespace per distinct mapping.
    let mut namespaces: HashMap<(String, String), OwnedFd> = HashMap::new();
    let linux = spec.linux().as_ref();
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        let opts = Options::parse(m.options().as_deref().unwrap_or_default());
        if opts.idmap.is_none() && m.uid_mappings().is_none() && m.gid_mappings().is_none() {
            continue;
        }
        let field = format!("mounts[{i}]");
        let what = format!("{field} {}", m.destination().display());
        let depth = opts
            .bind
            .or((m.typ().as_deref() == Some("bind")).then_some(Depth::Single))
            .ok_or_else(|| {
                Error::config(
                    format!("{field}.options"),
                    "id-mapped mounts (idmap, ridmap, uidMappings, gidMappings) must be bind mounts",
                )
            })?;
        let (uids, gids) = match (m.uid_mappings(), m.gid_mappings()) {
            (Some(u), Some(g)) => (u.as_slice(), g.as_slice()),
            (None, None) => {
                // Plain idmap/ridmap: the container's own mappings.
                let u = linux.and_then(|l| l.uid_mappings().as_deref());
                let g = linux.and_then(|l| l.gid_mappings().as_deref());
                match (u, g) {
                    (Some(u), Some(g)) if !u.is_empty() && !g.is_empty() => (u, g),
                    _ => {
                        return Err(Error::config(
                            format!("{field}.options"),
                            "idmap without uidMappings/gidMappings uses the container's user \
                             namespace mappings, but linux.uidMappings/gidMappings are not set",
                        ));
                    }
                }
            }
            _ => {
                return Err(Error::config(
                    field,
                    "uidMappings and gidMappings must be given together",
                ));
            }
        };
        if uids.is_empty() || gids.is_empty() {
            return Err(Error::config(
                format!("{field}.uidMappings"),
                "an id-mapped mount needs at least one uid and one gid mapping",
            ));
        }
        let key = (format_id_map(uids), format_id_map(gids));
        if !namespaces.contains_key(&key) {
            let ns = userns_with_maps(uids, gids, &field)?;
            namespaces.insert(key.clone(), ns);
        }
        let userns = namespaces[&key].as_fd();
        let source = bind_source(m, bundle, &field)?;
        let idmap_depth = opts.idmap.unwrap_or(Depth::Single);
        let tree = bind_tree(&source, &opts, depth, Some((userns, idmap_depth)), &what)?;
        out.trees.push((i, tree));
    }
    Ok(out)
}

/// A user namespace with the given mappings: a child process creates it and
/// waits while we write its maps and open it, then exits.
fn userns_with_maps(
    uids: &[LinuxIdMapping],
    gids: &[LinuxIdMapping],
    field: &str,
) -> Result<OwnedFd> {
    let (hold, release) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).sys("pipe2", "id-mapping helper")?;
    let pid = match sys::clone3(CloneFlags::CLONE_NEWUSER.bits() as u64, None) {
        Ok(CloneResult::Child) => {
            drop(release);
            let mut byte = [0u8; 1];
            // Returns at end-of-file, once the parent is done with us.
            let _ = nix::unistd::read(&hold, &mut byte);
            sys::exit_now(0)
        }
        Ok(CloneResult::Parent(pid)) => pid,
        Err(e) => return Err(Error::sys("clone3", "CLONE_NEWUSER (id-mapping helper)", e)),
    };
    drop(hold);
    let result = (|| {
        for (file, maps, name) in [
            ("uid_map", uids, "uidMappings"),
            ("gid_map", gids, "gidMappings"),
        ] {
            let path = format!("/proc/{pid}/{file}");
            std::fs::write(&path, format_id_map(maps))
                .map_err(|e| Error::config(format!("{field}.{name}"), format!("{path}: {e}")))?;
        }
        let path = format!("/proc/{pid}/ns/user");
        nix::fcntl::open(
            path.as_str(),
            nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .sys("open", &path)
    })();
    drop(release);
    let _ = waitpid(pid, None);
    result
}
