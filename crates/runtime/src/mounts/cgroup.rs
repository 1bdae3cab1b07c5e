//! Mounts of type `cgroup`: the container's view of its cgroups.
//!
//! On a cgroup v2 host, a cgroup2 file system (with a cgroup namespace its
//! root is the container's cgroup) or, without a cgroup namespace, a bind
//! mount of the container's cgroup directory. On v1 and hybrid hosts, a tmpfs
//! at the destination holding one mount per host hierarchy (the cgroup file
//! system itself with a cgroup namespace, else a bind of the container's
//! directory in that hierarchy), symlinks such as `cpu -> cpu,cpuacct` for
//! co-mounted controllers, and on hybrid hosts the cgroup2 hierarchy under
//! `unified`.
//!
//! Without a cgroup namespace the mount is built detached (a tmpfs made with
//! fsmount, binds moved onto its directories) and attached whole: by the
//! runtime while the init makes its namespaces, when it can
//! ([`prepare`]), else by the init.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::MsFlags;
use nix::sys::stat::{Mode, mkdirat};
use nix::unistd::symlinkat;

use super::bind::{attach_bind, bind_tree};
use super::options::{Depth, Options};
use super::safe::{Leaf, Root, fd_path};
use super::{HostPrep, RootfsContext, detached_tmpfs, propagate, set_attr};
use crate::cgroups::Hierarchy;
use crate::error::{Error, Result};
use crate::sys::MountAttr;

/// Flags every cgroup mount gets: there is nothing to execute or open as a
/// device in a cgroup file system.
const CGROUP_FLAGS: MsFlags = MsFlags::MS_NOSUID
    .union(MsFlags::MS_NODEV)
    .union(MsFlags::MS_NOEXEC);

/// The container's cgroup directory (on the host) in hierarchy `h`.
fn own_dir(h: &Hierarchy, dirs: &BTreeMap<String, PathBuf>, what: &str) -> Result<PathBuf> {
    dirs.get(&h.name).cloned().ok_or_else(|| {
        Error::cgroup(
            &h.mount_point,
            format!(
                "{what}: the container has no cgroup in hierarchy {}",
                h.name
            ),
        )
    })
}

/// The directory of `cgroup` (as /proc/PID/cgroup names it; `None`: the
/// root) in hierarchy `h`.
pub(super) fn dir_in(h: &Hierarchy, cgroup: Option<&PathBuf>) -> PathBuf {
    let cgroup = cgroup.map_or(Path::new("/"), |p| p.as_path());
    h.mount_point
        .join(cgroup.strip_prefix(&h.root).unwrap_or(Path::new("")))
}

/// The container's cgroup directories when they were not known before the
/// init was forked: the cgroups this process is in now.
fn own_cgroups(hierarchies: &[Hierarchy]) -> Result<BTreeMap<String, PathBuf>> {
    let text = crate::procfs::read_text("/proc/self/cgroup")
        .map_err(|e| Error::io("read", "/proc/self/cgroup", e))?;
    let own = crate::cgroups::parse_proc_cgroup(&text);
    Ok(hierarchies
        .iter()
        .map(|h| (h.name.clone(), dir_in(h, own.get(&h.name))))
        .collect())
}

/// The options every bind of a `cgroup` mount gets.
fn bind_options(opts: &Options) -> Options {
    Options {
        flags: opts.flags | CGROUP_FLAGS,
        ..Options::default()
    }
}

/// Builds, detached, what a `cgroup` mount with `opts` shows without a
/// cgroup namespace: on a pure v2 host a bind of the container's cgroup;
/// on v1 and hybrid hosts a tmpfs holding a bind of the container's
/// directory in each hierarchy (named as its mount point) and symlinks for
/// co-mounted controllers, read-only if asked. `own` maps each hierarchy to
/// the container's directory in it.
fn build_binds(
    hierarchies: &[Hierarchy],
    own: &BTreeMap<String, PathBuf>,
    opts: &Options,
    what: &str,
) -> Result<OwnedFd> {
    let bind_opts = bind_options(opts);
    let bind = |h: &Hierarchy, what: &str| {
        bind_tree(
            &own_dir(h, own, what)?,
            &bind_opts,
            Depth::Single,
            None,
            what,
        )
    };
    if let [h] = hierarchies
        && h.version == 2
    {
        return bind(h, what);
    }
    if hierarchies.is_empty() {
        return Err(Error::cgroup(
            "/proc/self/mountinfo",
            format!("{what}: the host has no cgroup hierarchy mounted"),
        ));
    }
    let holder = detached_tmpfs(
        &[(c"mode", c"755")],
        libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NODEV | libc::MOUNT_ATTR_NOEXEC,
        &format!("{what}: tmpfs for the cgroup hierarchies"),
    )?;
    for h in hierarchies {
        let Some(name) = h.mount_point.file_name() else {
            continue;
        };
        let sub_what = format!("{what}/{}", name.display());
        let sub = make_subdir(&holder, name, &sub_what)?;
        let tree = bind(h, &sub_what)?;
        crate::sys::move_mount(tree.as_fd(), sub.as_fd())
            .map_err(|e| Error::sys("move_mount", &sub_what, e))?;
        link_comounted(&holder, h, name, what)?;
    }
    if opts.readonly() {
        let attr = MountAttr {
            set: libc::MOUNT_ATTR_RDONLY,
            ..Default::default()
        };
        set_attr(holder.as_fd(), false, &attr, what)?;
    }
    Ok(holder)
}

/// Makes directory `name` in the fresh tmpfs `dir` and opens it (nothing
/// there can be a symlink or another mount).
fn make_subdir(dir: &impl AsFd, name: &OsStr, what: &str) -> Result<OwnedFd> {
    match mkdirat(dir, name, Mode::from_bits_truncate(0o755)) {
        Ok(()) | Err(Errno::EEXIST) => {}
        Err(e) => return Err(Error::sys("mkdirat", what, e)),
    }
    nix::fcntl::openat(
        dir,
        name,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::sys("openat", what, e))
}

/// Co-mounted v1 controllers: `cpu -> cpu,cpuacct`, `cpuacct -> cpu,cpuacct`
/// next to the hierarchy's directory `name` in `dir`.
fn link_comounted(dir: &impl AsFd, h: &Hierarchy, name: &OsStr, what: &str) -> Result<()> {
    let text = name.to_string_lossy();
    if h.version != 1 || !text.contains(',') {
        return Ok(());
    }
    for controller in text.split(',') {
        match symlinkat(name, dir, OsStr::new(controller)) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => {
                return Err(Error::sys(
                    "symlinkat",
                    format!("{what}/{controller} -> {}", name.display()),
                    e,
                ));
            }
        }
    }
    Ok(())
}

/// What the runtime prepares for a `cgroup` mount with `opts` while the
/// init sets up ([`HostPrep::sends_cgroup_mount`]): the whole mount,
/// detached, from the directories it made; `None` when those are not known.
pub(super) fn prepare(opts: &Options, host: &HostPrep, what: &str) -> Result<Option<OwnedFd>> {
    match &host.cgroup_dirs {
        Some(own) => build_binds(&host.hierarchies, own, opts, what).map(Some),
        None => Ok(None),
    }
}

/// Mounts the container's cgroups at `dest`.
pub(super) fn mount(
    root: &Root,
    dest: &Path,
    opts: &Options,
    ctx: &RootfsContext<'_>,
    what: &str,
) -> Result<()> {
    if !opts.data.is_empty() {
        return Err(Error::config(
            what.to_string(),
            format!("unknown option {:?} for a cgroup mount", opts.data[0]),
        ));
    }
    let hierarchies = &ctx.host.hierarchies;
    if ctx.cgroup_ns {
        return mount_namespaced(root, dest, opts, hierarchies, what);
    }
    let tree = match ctx.cgroup_mount.take() {
        Some(prepared) => prepared,
        None => {
            let own = match &ctx.host.cgroup_dirs {
                Some(dirs) => dirs,
                None => &own_cgroups(hierarchies)?,
            };
            build_binds(hierarchies, own, opts, what)?
        }
    };
    attach_bind(
        root,
        tree.as_fd(),
        dest,
        &bind_options(opts),
        ctx.rootfs,
        what,
    )?;
    finish(root, dest, opts, false, what)
}

/// A `cgroup` mount inside a cgroup namespace: fresh cgroup file systems,
/// whose roots are the container's cgroups.
fn mount_namespaced(
    root: &Root,
    dest: &Path,
    opts: &Options,
    hierarchies: &[Hierarchy],
    what: &str,
) -> Result<()> {
    let flags = opts.flags | CGROUP_FLAGS;
    if let [h] = hierarchies
        && h.version == 2
    {
        let target = root.lookup_or_create(dest, Leaf::Dir, what)?;
        mount_cgroupfs(&target, "cgroup2", "cgroup2", None, flags, what)?;
        return finish(root, dest, opts, false, what);
    }
    if hierarchies.is_empty() {
        return Err(Error::cgroup(
            "/proc/self/mountinfo",
            format!("{what}: the host has no cgroup hierarchy mounted"),
        ));
    }
    // A tmpfs holding one directory per hierarchy.
    let target = root.lookup_or_create(dest, Leaf::Dir, what)?;
    nix::mount::mount(
        Some("tmpfs"),
        fd_path(&target).as_str(),
        Some("tmpfs"),
        CGROUP_FLAGS,
        Some("mode=755"),
    )
    .map_err(|e| {
        Error::sys(
            "mount",
            format!("{what}: tmpfs for the cgroup hierarchies"),
            e,
        )
    })?;
    let dir = root
        .lookup(dest)
        .map_err(|e| Error::sys("openat2", format!("{what} (after mounting)"), e))?;
    for h in hierarchies {
        let Some(name) = h.mount_point.file_name() else {
            continue;
        };
        let sub_what = format!("{what}/{}", name.display());
        let sub = make_subdir(&dir, name, &sub_what)?;
        if h.version == 2 {
            mount_cgroupfs(&sub, "cgroup2", "cgroup2", None, flags, &sub_what)?;
        } else {
            // A named hierarchy ("name=systemd") is shown by its name.
            let source = h.name.strip_prefix("name=").unwrap_or("cgroup");
            mount_cgroupfs(&sub, source, "cgroup", Some(&h.name), flags, &sub_what)?;
        }
        link_comounted(&dir, h, name, what)?;
    }
    finish(root, dest, opts, opts.readonly(), what)
}

/// Mounts a cgroup file system onto `target`.
fn mount_cgroupfs(
    target: &impl AsFd,
    source: &str,
    fstype: &str,
    data: Option<&str>,
    flags: MsFlags,
    what: &str,
) -> Result<()> {
    nix::mount::mount(
        Some(source),
        fd_path(&target.as_fd()).as_str(),
        Some(fstype),
        flags,
        data,
    )
    .map_err(|e| {
        Error::sys(
            "mount",
            format!("{what}: {fstype} {}", data.unwrap_or("")),
            e,
        )
    })
}

/// Applies read-only (to the holding tmpfs), recursive attributes and
/// propagation to the mount now at `dest`.
fn finish(root: &Root, dest: &Path, opts: &Options, readonly: bool, what: &str) -> Result<()> {
    if !readonly && opts.recursive.is_empty() && opts.propagation.is_empty() {
        return Ok(());
    }
    let top = root
        .lookup(dest)
        .map_err(|e| Error::sys("openat2", format!("{what} (after mounting)"), e))?;
    if readonly {
        let attr = MountAttr {
            set: libc::MOUNT_ATTR_RDONLY,
            ..Default::default()
        };
        set_attr(top.as_fd(), false, &attr, what)?;
    }
    set_attr(top.as_fd(), true, &opts.recursive, what)?;
    propagate(top.as_fd(), &opts.propagation, what)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_dir_joins_the_mount_point() {
        let h = Hierarchy {
            name: "memory".into(),
            mount_point: PathBuf::from("/sys/fs/cgroup/memory"),
            version: 1,
            root: PathBuf::from("/"),
        };
        let mut own = BTreeMap::new();
        own.insert(
            "memory".to_string(),
            PathBuf::from("/sys/fs/cgroup/memory/a/b"),
        );
        assert_eq!(
            own_dir(&h, &own, "t").unwrap(),
            PathBuf::from("/sys/fs/cgroup/memory/a/b")
        );
        let err = own_dir(&h, &BTreeMap::new(), "t").unwrap_err();
        assert!(err.to_string().contains("no cgroup in hierarchy memory"));
    }
}
