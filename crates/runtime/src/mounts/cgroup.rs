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
use super::{HostPrep, RootfsContext, propagate, set_attr};
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

/// The hierarchies a `cgroup` mount shows without a cgroup namespace, in
/// the order it binds them: the one hierarchy of a pure v2 host, else each
/// hierarchy by the name of its mount point.
fn shown(hierarchies: &[Hierarchy]) -> impl Iterator<Item = &Hierarchy> {
    let pure_v2 = matches!(hierarchies, [h] if h.version == 2);
    hierarchies
        .iter()
        .filter(move |h| pure_v2 || h.mount_point.file_name().is_some())
}

/// The options every bind of a `cgroup` mount gets.
fn bind_options(opts: &Options) -> Options {
    Options {
        flags: opts.flags | CGROUP_FLAGS,
        ..Options::default()
    }
}

/// Detached bind mounts of the container's cgroup directory in each
/// hierarchy a `cgroup` mount with `opts` shows, in [`shown`] order.
pub(super) fn trees(opts: &Options, host: &HostPrep, what: &str) -> Result<Vec<OwnedFd>> {
    let Some(own) = &host.cgroup_dirs else {
        return Ok(Vec::new());
    };
    let bind_opts = bind_options(opts);
    shown(&host.hierarchies)
        .map(|h| {
            bind_tree(
                &own_dir(h, own, what)?,
                &bind_opts,
                Depth::Single,
                None,
                what,
            )
        })
        .collect()
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
    let found;
    let own = match &ctx.host.cgroup_dirs {
        Some(dirs) => dirs,
        None => {
            found = if ctx.cgroup_ns {
                BTreeMap::new()
            } else {
                own_cgroups(hierarchies)?
            };
            &found
        }
    };
    let flags = opts.flags | CGROUP_FLAGS;
    let bind_opts = bind_options(opts);
    // The runtime's prepared binds, in `shown` order; made here if absent.
    let mut prepared = ctx.cgroup_trees.take().into_iter();
    let mut tree_of = |h: &Hierarchy, what: &str| match prepared.next() {
        Some(tree) => Ok(tree),
        None => bind_tree(
            &own_dir(h, own, what)?,
            &bind_opts,
            Depth::Single,
            None,
            what,
        ),
    };

    if let [h] = hierarchies.as_slice()
        && h.version == 2
    {
        // Pure cgroup v2.
        if ctx.cgroup_ns {
            let target = root.lookup_or_create(dest, Leaf::Dir, what)?;
            mount_cgroupfs(&target, "cgroup2", "cgroup2", None, flags, what)?;
        } else {
            let tree = tree_of(h, what)?;
            attach_bind(root, tree.as_fd(), dest, &bind_opts, ctx.rootfs, what)?;
        }
        return finish(root, dest, opts, false, what);
    }
    if hierarchies.is_empty() {
        return Err(Error::cgroup(
            "/proc/self/mountinfo",
            format!("{what}: the host has no cgroup hierarchy mounted"),
        ));
    }

    // v1 or hybrid: a tmpfs holding one directory per hierarchy.
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
    for h in shown(hierarchies) {
        let Some(name) = h.mount_point.file_name() else {
            continue;
        };
        match mkdirat(&dir, name, Mode::from_bits_truncate(0o755)) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => {
                return Err(Error::sys(
                    "mkdirat",
                    format!("{what}/{}", name.display()),
                    e,
                ));
            }
        }
        let sub_what = format!("{what}/{}", name.display());
        // In the tmpfs just made: nothing there can be a symlink, and no
        // other mount.
        let sub_fd = nix::fcntl::openat(
            &dir,
            name,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::sys("openat", &sub_what, e))?;
        if ctx.cgroup_ns {
            if h.version == 2 {
                mount_cgroupfs(&sub_fd, "cgroup2", "cgroup2", None, flags, &sub_what)?;
            } else {
                // A named hierarchy ("name=systemd") is shown by its name.
                let source = h.name.strip_prefix("name=").unwrap_or("cgroup");
                mount_cgroupfs(&sub_fd, source, "cgroup", Some(&h.name), flags, &sub_what)?;
            }
        } else {
            let tree = tree_of(h, &sub_what)?;
            crate::sys::move_mount(tree.as_fd(), sub_fd.as_fd())
                .map_err(|e| Error::sys("move_mount", &sub_what, e))?;
        }
        // Co-mounted controllers: `cpu -> cpu,cpuacct`, `cpuacct -> cpu,cpuacct`.
        let text = name.to_string_lossy();
        if h.version == 1 && text.contains(',') {
            for controller in text.split(',') {
                match symlinkat(name, &dir, OsStr::new(controller)) {
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
        }
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
