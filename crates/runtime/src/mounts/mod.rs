//! The container's root filesystem: mount propagation, the config's mounts,
//! `/dev`, changing root (pivot_root, or MS_MOVE + chroot), and the masked
//! and read-only paths.
//!
//! The runtime calls [`prepare_on_host`] before it forks the container's
//! init process (id-mapped mounts need privileges the init may lack, and the
//! host's cgroup hierarchies are best seen from outside the container's
//! cgroup namespace). The init then calls, in order: [`prepare_rootfs`]
//! (still seeing the host's paths, in its own mount namespace),
//! [`enter_rootfs`], then [`finish_rootfs`].
//!
//! Every destination is resolved inside the root filesystem (module `safe`), and
//! mounts go onto the opened destination, never onto a path that could be
//! resolved again. Bind mounts are made with the new mount API (open_tree,
//! mount_setattr, move_mount: Linux 5.12 or later), so that their attributes
//! are set before they become visible.

mod bind;
mod cgroup;
mod copyup;
mod devices;
mod idmap;
mod masks;
pub mod options;
mod safe;

use std::collections::BTreeMap;
use std::ffi::CStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, open};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::stat::{Mode, fstat, umask};
use nix::unistd::{chdir, chroot, fchdir, pivot_root};
use oci_spec::runtime::{Mount, Spec};

use crate::cgroups::Hierarchy;
use crate::error::{Error, Result, SysContext};
use crate::sys::{self, MountAttr};

use bind::{attach_bind, bind_source, bind_tree, ignored_bind_options};
use idmap::IdmappedMounts;
use options::{Depth, Options, Propagation};
use safe::{Leaf, Root, fd_path};

/// What the rootfs set-up needs to know besides the config.
#[derive(Debug)]
pub struct RootfsContext<'a> {
    /// The whole config.
    pub spec: &'a Spec,
    /// The root filesystem on the host, absolute and free of symlinks.
    pub rootfs: &'a Path,
    /// The bundle directory (relative bind sources resolve against it).
    pub bundle: &'a Path,
    /// Whether the container has a mount namespace of its own.
    pub new_mount_ns: bool,
    /// Whether the container runs in a user namespace (devices are then
    /// bind-mounted from the host instead of created with mknod).
    pub user_ns: bool,
    /// Whether the container has a cgroup namespace of its own (cgroup
    /// mounts are then fresh cgroup file systems, else bind mounts of the
    /// container's cgroup directories).
    pub cgroup_ns: bool,
    /// What the runtime prepared before the init process was forked.
    pub host: &'a HostPrep,
    /// The container's `cgroup` mount as the runtime prepared it, detached
    /// ([`prepare_cgroup_mount`]); the first `cgroup` mount takes it.
    pub cgroup_mount: std::cell::RefCell<Option<OwnedFd>>,
}

/// What the runtime prepares for the rootfs set-up before it forks the
/// container's init process: the init inherits it.
#[derive(Debug, Default)]
pub struct HostPrep {
    /// The id-mapped bind mounts, detached, by index in `mounts`.
    idmapped: IdmappedMounts,
    /// The host's cgroup hierarchies, when a `cgroup` mount needs them (seen
    /// from inside a cgroup namespace, mountinfo hides their roots).
    hierarchies: Vec<Hierarchy>,
    /// Hierarchy name → the container's cgroup directory on the host (what a
    /// `cgroup` mount binds when there is no cgroup namespace); `None` when
    /// the cgroups are made after the init is forked (systemd places it),
    /// and the init reads them from /proc/self/cgroup.
    cgroup_dirs: Option<BTreeMap<String, PathBuf>>,
    /// Whether the runtime sends the init its `cgroup` mount, built
    /// detached ([`prepare_cgroup_mount`], [`crate::sync::Msg::CgroupMount`])
    /// right after "go": made with the runtime's time, off the init's path.
    pub sends_cgroup_mount: bool,
}

/// Prepares, in the runtime and with the host's view, what the init's rootfs
/// set-up needs: the id-mapped mounts, and for `cgroup` mounts the host's
/// hierarchies (from the `layout` the cgroups were placed with) and the
/// container's directory in each (`cgroups`; a hierarchy where it has none
/// shows the caller's own cgroup; `None`: not known before the init is
/// forked, which then reads its own).
pub fn prepare_on_host(
    spec: &Spec,
    bundle: &Path,
    layout: &crate::cgroups::Layout,
    cgroups: Option<&BTreeMap<String, PathBuf>>,
    plan: &crate::namespaces::Plan,
) -> Result<HostPrep> {
    use oci_spec::runtime::LinuxNamespaceType::{Cgroup, User};
    let needs_cgroups = spec
        .mounts()
        .iter()
        .flatten()
        .any(|m| m.typ().as_deref() == Some("cgroup") && !is_bind(m));
    let cgroup_dirs = match cgroups {
        Some(cgroups) if needs_cgroups => Some(
            layout
                .hierarchies
                .iter()
                .map(|h| {
                    let dir = cgroups
                        .get(&h.name)
                        .cloned()
                        .unwrap_or_else(|| cgroup::dir_in(h, layout.own.get(&h.name)));
                    (h.name.clone(), dir)
                })
                .collect(),
        ),
        Some(_) => Some(BTreeMap::new()),
        None => None,
    };
    Ok(HostPrep {
        // Only a runtime that may clone mounts, for an init that may attach
        // them in its mount namespace without a user namespace between.
        sends_cgroup_mount: needs_cgroups
            && !plan.has(Cgroup)
            && !plan.has(User)
            && cgroups.is_some()
            && nix::unistd::geteuid().is_root(),
        idmapped: idmap::prepare(spec, bundle)?,
        hierarchies: if needs_cgroups {
            layout.hierarchies.clone()
        } else {
            Vec::new()
        },
        cgroup_dirs,
    })
}

/// The container's first `cgroup` mount, built detached by the runtime
/// while the init sets up ([`HostPrep::sends_cgroup_mount`]); `None` when
/// that mount's options are wrong (the init then reports them).
pub fn prepare_cgroup_mount(spec: &Spec, host: &HostPrep) -> Result<Option<OwnedFd>> {
    let found = spec
        .mounts()
        .iter()
        .flatten()
        .enumerate()
        .find(|(_, m)| m.typ().as_deref() == Some("cgroup") && !is_bind(m));
    let Some((i, m)) = found else {
        return Ok(None);
    };
    let opts = Options::parse(m.options().as_deref().unwrap_or_default());
    if opts.remount || !opts.data.is_empty() {
        return Ok(None);
    }
    cgroup::prepare(
        &opts,
        host,
        &format!("mounts[{i}] {}", m.destination().display()),
    )
}

/// Warns about the options of the config's mounts that are ignored (see
/// [`bind::ignored_bind_options`]). Called by the runtime before the init
/// exists: the init's standard error is the container's.
pub fn warn_ignored_options(spec: &Spec) {
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        if !is_bind(m) {
            continue;
        }
        let opts = Options::parse(m.options().as_deref().unwrap_or_default());
        for o in ignored_bind_options(&opts) {
            tracing::warn!(
                "mounts[{i}].options: {o:?} ignored: a bind mount takes no file-system data \
                 or superblock option"
            );
        }
    }
}

/// Detaches what a container without a mount namespace of its own stacked
/// over its root filesystem in the runtime's mount namespace
/// ([`crate::state::Record::host_mounts_above`]); nothing for the others.
pub fn remove_host_mounts(record: &crate::state::Record) -> Result<()> {
    match record.host_mounts_above {
        Some(below) => detach_down_to(&record.rootfs, below),
        None => Ok(()),
    }
}

/// Detaches the mounts stacked at `path` until the one with id `below`
/// is on top again.
pub fn detach_down_to(path: &Path, below: u64) -> Result<()> {
    // A bound on a loop that each pass shortens by one mount.
    for _ in 0..64 {
        match sys::mount_id(path) {
            Ok(id) if id == below => return Ok(()),
            Ok(_) => {}
            // The root filesystem is gone: so is what was mounted on it.
            Err(Errno::ENOENT) => return Ok(()),
            Err(e) => return Err(Error::sys("statx", path.display().to_string(), e)),
        }
        umount2(path, MntFlags::MNT_DETACH)
            .sys("umount2", format!("{} (container mounts)", path.display()))?;
    }
    Err(Error::Other(format!(
        "{}: mounts are still stacked after 64 were detached",
        path.display()
    )))
}

/// A new tmpfs with file-system `options` and mount attributes `attrs`
/// (MOUNT_ATTR_*), not attached anywhere yet (made with the file-system
/// context API, so that no /proc is needed to address a destination).
fn detached_tmpfs(options: &[(&CStr, &CStr)], attrs: u64, what: &str) -> Result<OwnedFd> {
    let fail = |call: &'static str, e: Errno| Error::sys(call, what, e);
    let fs = sys::fsopen(c"tmpfs").map_err(|e| fail("fsopen", e))?;
    sys::fsconfig_string(fs.as_fd(), c"source", c"tmpfs").map_err(|e| fail("fsconfig", e))?;
    for (key, value) in options {
        sys::fsconfig_string(fs.as_fd(), key, value).map_err(|e| fail("fsconfig", e))?;
    }
    sys::fsconfig_create(fs.as_fd()).map_err(|e| fail("fsconfig", e))?;
    sys::fsmount(fs.as_fd(), attrs).map_err(|e| fail("fsmount", e))
}

/// What [`prepare_rootfs`] leaves for [`finish_rootfs`]: tmpfs mounts asked
/// to be read-only stay writable until then, so that mount points, devices
/// and the console can be created in them (as runc does).
#[derive(Debug, Default)]
pub struct Prepared {
    /// Destinations (inside the container) to make read-only.
    readonly_later: Vec<PathBuf>,
}

/// The `linux.rootfsPropagation` change applied to `/` (default: rslave).
fn root_propagation(spec: &Spec) -> Result<Propagation> {
    let value = spec
        .linux()
        .as_ref()
        .and_then(|l| l.rootfs_propagation().clone())
        .unwrap_or_default();
    if value.is_empty() {
        return Ok(Propagation {
            kind: MsFlags::MS_SLAVE,
            recursive: true,
        });
    }
    options::propagation(&value).ok_or_else(|| {
        Error::config(
            "linux.rootfsPropagation",
            format!("unknown propagation {value:?}"),
        )
    })
}

/// The flags of mount(2) that make a propagation change.
fn propagation_flags(p: Propagation) -> MsFlags {
    if p.recursive {
        p.kind | MsFlags::MS_REC
    } else {
        p.kind
    }
}

/// Applies a propagation change to the current root; `what` names it in
/// errors.
fn set_root_propagation(p: Propagation, what: &str) -> Result<()> {
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        propagation_flags(p),
        None::<&str>,
    )
    .sys("mount", what)
}

/// Without a mount namespace of its own, refuses what runc refuses there
/// (masked and read-only paths: "unable to restrict sys entries") and what
/// would change the host's own mounts (the propagation of its `/`).
pub fn check_without_mount_ns(spec: &Spec) -> Result<()> {
    let linux = spec.linux().as_ref();
    let any = |v: Option<&Vec<String>>| v.is_some_and(|v| !v.is_empty());
    let refused = if any(linux.and_then(|l| l.masked_paths().as_ref())) {
        Some(("linux.maskedPaths", "cannot be masked"))
    } else if any(linux.and_then(|l| l.readonly_paths().as_ref())) {
        Some(("linux.readonlyPaths", "cannot be made read-only"))
    } else if linux.is_some_and(|l| l.rootfs_propagation().is_some()) {
        Some((
            "linux.rootfsPropagation",
            "would change the host's root propagation",
        ))
    } else {
        None
    };
    match refused {
        Some((field, what)) => Err(Error::config(
            field,
            format!(
                "{what} without a mount namespace of the container's own (linux.namespaces \
                 has no mount)"
            ),
        )),
        None => Ok(()),
    }
}

/// Whether a container without a mount namespace of its own mounts
/// anything (its mounts, devices or a read-only root: then made over its
/// root filesystem in the runtime's mount namespace, as runc does).
pub fn mounts_without_mount_ns(spec: &Spec) -> bool {
    spec.mounts().as_ref().is_some_and(|m| !m.is_empty())
        || spec
            .linux()
            .as_ref()
            .is_some_and(|l| l.devices().as_ref().is_some_and(|d| !d.is_empty()))
        || spec.root().as_ref().and_then(|r| r.readonly()) == Some(true)
}

/// Sets up the root filesystem before the root is changed: propagation, the
/// rootfs as a mount point, the config's mounts and `/dev` (all of
/// [`begin_rootfs`] at once).
pub fn prepare_rootfs(ctx: &RootfsContext<'_>) -> Result<Prepared> {
    match begin_rootfs(ctx)? {
        None => Ok(Prepared::default()),
        Some(mut setup) => {
            setup.mount_before_cgroups(ctx)?;
            setup.finish(ctx)
        }
    }
}

/// A root filesystem being set up: the init mounts what does not depend
/// on its cgroups while the runtime still makes them, and the rest after.
pub struct RootfsSetup {
    root: Root,
    prepared: Prepared,
    /// Index of the next config mount to make.
    next: usize,
    saved_umask: Mode,
}

/// Starts the root filesystem set-up: root propagation and the rootfs as a
/// mount point of its own. `None` when the container has no mount namespace
/// (nothing is mounted then).
pub fn begin_rootfs(ctx: &RootfsContext<'_>) -> Result<Option<RootfsSetup>> {
    if !ctx.new_mount_ns {
        // In the runtime's mount namespace: the root filesystem gets a
        // mount of its own for the mounts to go on (`delete` detaches it,
        // see Record::host_mounts_above); `/` is left as it is.
        check_without_mount_ns(ctx.spec)?;
        if !mounts_without_mount_ns(ctx.spec) {
            return Ok(None);
        }
        return bind_rootfs_onto_itself(ctx).map(Some);
    }
    let propagation = root_propagation(ctx.spec)?;
    // An unbindable root could not be bound below; the container's root
    // becomes unbindable once it is the root (finish_rootfs).
    let before = if propagation.kind == MsFlags::MS_UNBINDABLE {
        Propagation {
            kind: MsFlags::MS_PRIVATE,
            ..propagation
        }
    } else {
        propagation
    };
    set_root_propagation(before, "/ (linux.rootfsPropagation)")?;
    if propagation.kind == MsFlags::MS_SHARED {
        // pivot_root refuses a new root whose parent mount is shared, and
        // the rootfs bind below would propagate to the host.
        make_parent_private(ctx.rootfs)?;
    }
    bind_rootfs_onto_itself(ctx).map(Some)
}

/// Makes the root filesystem a mount of its own and opens it.
fn bind_rootfs_onto_itself(ctx: &RootfsContext<'_>) -> Result<RootfsSetup> {
    mount(
        Some(ctx.rootfs),
        ctx.rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .sys(
        "mount",
        format!("bind {} onto itself", ctx.rootfs.display()),
    )?;
    let root = Root::open(ctx.rootfs)?;
    // Modes given in the config (devices, tmpfs) are meant exactly.
    let saved_umask = umask(Mode::empty());
    Ok(RootfsSetup {
        root,
        prepared: Prepared::default(),
        next: 0,
        saved_umask,
    })
}

impl RootfsSetup {
    /// Makes the config's mounts up to (not including) the first `cgroup`
    /// mount, which needs the container's cgroups and cgroup namespace.
    pub fn mount_before_cgroups(&mut self, ctx: &RootfsContext<'_>) -> Result<()> {
        let mounts = ctx.spec.mounts().as_deref().unwrap_or_default();
        while let Some(m) = mounts.get(self.next) {
            if m.typ().as_deref() == Some("cgroup") {
                break;
            }
            mount_one(&self.root, self.next, m, ctx, &mut self.prepared)?;
            self.next += 1;
        }
        Ok(())
    }

    /// Makes the remaining mounts and `/dev`.
    pub fn finish(mut self, ctx: &RootfsContext<'_>) -> Result<Prepared> {
        let mounts = ctx.spec.mounts().as_deref().unwrap_or_default();
        for (i, m) in mounts.iter().enumerate().skip(self.next) {
            mount_one(&self.root, i, m, ctx, &mut self.prepared)?;
        }
        devices::setup(&self.root, ctx.spec, ctx.user_ns, dev_bind_mount(mounts))?;
        umask(self.saved_umask);
        crate::timing::stage("rootfs prepared");
        Ok(self.prepared)
    }
}

/// Whether a mount is a bind mount (by type or option).
fn is_bind(m: &Mount) -> bool {
    m.typ().as_deref() == Some("bind")
        || m.options()
            .iter()
            .flatten()
            .any(|o| o == "bind" || o == "rbind")
}

/// The index of a bind mount at `/dev`, if the config has one.
fn dev_bind_mount(mounts: &[Mount]) -> Option<usize> {
    mounts
        .iter()
        .rposition(|m| is_bind(m) && lexical(m.destination()) == Path::new("/dev"))
}

/// A path made absolute and free of `.` and `..`, lexically.
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            std::path::Component::Normal(n) => out.push(n),
            std::path::Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

/// Makes the mount that holds `rootfs` private (needed with shared root
/// propagation, as runc does).
fn make_parent_private(rootfs: &Path) -> Result<()> {
    let text = crate::procfs::read_text("/proc/self/mountinfo")
        .map_err(|e| Error::io("read", "/proc/self/mountinfo", e))?;
    let parent = text
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|p| PathBuf::from(crate::cgroups::unescape_mountinfo(p)))
        .filter(|p| rootfs.starts_with(p))
        .max_by_key(|p| p.as_os_str().len())
        .unwrap_or_else(|| PathBuf::from("/"));
    mount(
        None::<&str>,
        &parent,
        None::<&str>,
        MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .sys(
        "mount",
        format!("{} (private, parent of the rootfs)", parent.display()),
    )
}

/// Applies one entry of `mounts`.
fn mount_one(
    root: &Root,
    i: usize,
    m: &Mount,
    ctx: &RootfsContext<'_>,
    prepared: &mut Prepared,
) -> Result<()> {
    let dest = m.destination();
    let field = format!("mounts[{i}]");
    if dest.as_os_str().is_empty() {
        return Err(Error::config(format!("{field}.destination"), "is empty"));
    }
    if safe::is_root(dest) {
        return Err(Error::config(
            format!("{field}.destination"),
            format!(
                "{} is the container's root: a mount there would hide the root filesystem",
                dest.display()
            ),
        ));
    }
    let what = format!("{field} {}", dest.display());
    let typ = m.typ().as_deref().unwrap_or("");
    let opts = Options::parse(m.options().as_deref().unwrap_or_default());
    let bind = opts.bind.or((typ == "bind").then_some(Depth::Single));
    let mapped = opts.idmap.is_some() || m.uid_mappings().is_some() || m.gid_mappings().is_some();
    if mapped && bind.is_none() {
        return Err(Error::config(
            format!("{field}.options"),
            "id-mapped mounts (idmap, ridmap, uidMappings, gidMappings) must be bind mounts",
        ));
    }
    if opts.copy_up && (typ != "tmpfs" || bind.is_some() || opts.remount) {
        return Err(Error::config(
            format!("{field}.options"),
            "tmpcopyup only applies to a new tmpfs mount",
        ));
    }
    if opts.remount {
        return remount(root, m, &opts, bind.is_some(), &what);
    }
    if let Some(depth) = bind {
        if mapped {
            let tree = ctx.host.idmapped.get(i).ok_or_else(|| {
                Error::Other(format!(
                    "{what}: the id-mapped mount was not prepared (prepare_on_host)"
                ))
            })?;
            return attach_bind(root, tree, dest, &opts, ctx.rootfs, &what);
        }
        let source = bind_source(m, ctx.bundle, &field)?;
        let tree = bind_tree(&source, &opts, depth, None, &what)?;
        return attach_bind(root, tree.as_fd(), dest, &opts, ctx.rootfs, &what);
    }
    match typ {
        "" => Err(Error::config(
            format!("{field}.type"),
            "missing: give a file-system type, or the bind option",
        )),
        "cgroup" => cgroup::mount(root, dest, &opts, ctx, &what),
        _ => fs_mount(root, m, typ, &opts, ctx, prepared, &what),
    }
}

/// Changes a mount's attributes (nothing when `attr` is empty).
pub(super) fn set_attr(
    fd: BorrowedFd<'_>,
    recursive: bool,
    attr: &MountAttr,
    what: &str,
) -> Result<()> {
    if attr.is_empty() {
        return Ok(());
    }
    sys::mount_setattr(fd, recursive, attr).map_err(|e| {
        Error::sys(
            "mount_setattr",
            format!(
                "{what}: set {:#x} clear {:#x}{}",
                attr.set,
                attr.clr,
                if recursive { " recursively" } else { "" }
            ),
            e,
        )
    })
}

/// Applies propagation changes, in order, to the mount behind `fd`.
pub(super) fn propagate(fd: BorrowedFd<'_>, list: &[Propagation], what: &str) -> Result<()> {
    for p in list {
        let attr = MountAttr {
            propagation: p.kind.bits(),
            ..Default::default()
        };
        sys::mount_setattr(fd, p.recursive, &attr).map_err(|e| {
            Error::sys(
                "mount_setattr",
                format!("{what}: propagation {:?}", propagation_flags(*p)),
                e,
            )
        })?;
    }
    Ok(())
}

/// Whether the file behind `fd` is on a procfs.
pub(super) fn is_procfs(fd: BorrowedFd<'_>) -> bool {
    nix::sys::statfs::fstatfs(fd)
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::PROC_SUPER_MAGIC)
}

/// Files of /proc that may be mounted over (as runc allows, for lxcfs).
const PROC_MOUNTABLE: &[&str] = &[
    "/proc/cpuinfo",
    "/proc/diskstats",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/swaps",
    "/proc/uptime",
    "/proc/loadavg",
    "/proc/slabinfo",
    "/proc/net/dev",
    "/proc/sys/kernel/ns_last_pid",
];

/// Refuses mounts that would hide parts of a procfs (over /proc itself only
/// a procfs may go; below it only a few lxcfs-style files may be covered).
pub(super) fn check_proc_destination(
    target: BorrowedFd<'_>,
    dest: &Path,
    proc_source: bool,
    rootfs: &Path,
    what: &str,
) -> Result<()> {
    let refuse = |why: &str| Err(Error::config(what.to_string(), why.to_string()));
    if !is_procfs(target) {
        if lexical(dest) == Path::new("/proc") && !proc_source {
            return refuse("only a procfs can be mounted at /proc");
        }
        return Ok(());
    }
    let st = fstat(target).sys("fstat", what)?;
    // Inode 1 is the root of a procfs.
    if st.st_ino == 1 {
        return if proc_source {
            Ok(())
        } else {
            refuse("only a procfs can be mounted over a procfs")
        };
    }
    let host = std::fs::read_link(fd_path(&target)).map_err(|e| Error::io("readlink", what, e))?;
    let inside = Path::new("/").join(host.strip_prefix(rootfs).unwrap_or(&host));
    if PROC_MOUNTABLE.iter().any(|p| inside == Path::new(p)) {
        return Ok(());
    }
    refuse(&format!(
        "{} is inside a procfs: only {} may be mounted over",
        inside.display(),
        PROC_MOUNTABLE.join(", ")
    ))
}

/// Mounts a new instance of file system `typ` at the mount's destination.
fn fs_mount(
    root: &Root,
    m: &Mount,
    typ: &str,
    opts: &Options,
    ctx: &RootfsContext<'_>,
    prepared: &mut Prepared,
    what: &str,
) -> Result<()> {
    let dest = m.destination();
    let target = root.lookup_or_create(dest, Leaf::Dir, what)?;
    check_proc_destination(target.as_fd(), dest, typ == "proc", ctx.rootfs, what)?;
    let mut flags = opts.flags;
    let readonly_later = typ == "tmpfs" && opts.readonly();
    if readonly_later {
        flags.remove(MsFlags::MS_RDONLY);
    }
    let source = m
        .source()
        .as_ref()
        .map(|s| s.as_os_str())
        .unwrap_or(typ.as_ref());
    let label = ctx
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.mount_label().as_deref());
    let data = crate::lsm::label_mount_data(&opts.data(), typ, label);
    let data_arg = (!data.is_empty()).then_some(data.as_str());
    match mount(
        Some(source),
        fd_path(&target).as_str(),
        Some(typ),
        flags,
        data_arg,
    ) {
        Ok(()) => {}
        // A user namespace without a network namespace of its own may not
        // mount sysfs: bind the host's /sys instead, as runc does.
        Err(Errno::EPERM) if typ == "sysfs" && ctx.user_ns => {
            let mut fallback = opts.clone();
            let attr = opts.bind_attr();
            fallback.recursive.set |= attr.set;
            fallback.recursive.clr |= attr.clr;
            let tree = bind_tree(Path::new("/sys"), &fallback, Depth::Recursive, None, what)?;
            return attach_bind(root, tree.as_fd(), dest, opts, ctx.rootfs, what);
        }
        // In a user namespace that does not map the tty group, devpts
        // refuses `gid=`; mount it without, as runc and crun do.
        Err(Errno::EINVAL) if typ == "devpts" && ctx.user_ns && data.contains("gid=") => {
            let without: Vec<&str> = data.split(',').filter(|o| !o.starts_with("gid=")).collect();
            let without = without.join(",");
            tracing::debug!("{what}: devpts refused gid= in this user namespace; mounted without");
            mount(
                Some(source),
                fd_path(&target).as_str(),
                Some(typ),
                flags,
                (!without.is_empty()).then_some(without.as_str()),
            )
            .map_err(|e| {
                Error::sys(
                    "mount",
                    format!("{what}: type {typ}, flags {flags:?}, data {without:?}"),
                    e,
                )
            })?;
        }
        Err(e) => {
            return Err(Error::sys(
                "mount",
                format!(
                    "{what}: type {typ}, source {}, flags {flags:?}, data {data:?}",
                    source.to_string_lossy()
                ),
                e,
            ));
        }
    }
    if readonly_later {
        prepared.readonly_later.push(dest.to_path_buf());
    }
    if opts.copy_up || !opts.recursive.is_empty() || !opts.propagation.is_empty() {
        let top = root
            .lookup(dest)
            .map_err(|e| Error::sys("openat2", format!("{what} (after mounting)"), e))?;
        if opts.copy_up {
            // `target` still names the directory now covered by the tmpfs.
            let open_dir = |fd: &OwnedFd| {
                nix::fcntl::openat(
                    fd,
                    ".",
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| Error::sys("openat", format!("{what} (tmpcopyup)"), e))
            };
            copyup::copy_tree(open_dir(&target)?.as_fd(), open_dir(&top)?.as_fd(), what)?;
        }
        set_attr(top.as_fd(), true, &opts.recursive, what)?;
        propagate(top.as_fd(), &opts.propagation, what)?;
    }
    Ok(())
}

/// `remount`: changes the mount already at the destination.
fn remount(root: &Root, m: &Mount, opts: &Options, bind: bool, what: &str) -> Result<()> {
    let target = root
        .lookup(m.destination())
        .map_err(|e| Error::sys("openat2", format!("{what} (remount)"), e))?;
    if bind {
        set_attr(target.as_fd(), false, &opts.bind_attr(), what)?;
    } else {
        let typ = m.typ().as_deref().unwrap_or("");
        let data = opts.data();
        mount(
            m.source().as_deref(),
            fd_path(&target).as_str(),
            (!typ.is_empty()).then_some(typ),
            opts.flags | MsFlags::MS_REMOUNT,
            (!data.is_empty()).then_some(data.as_str()),
        )
        .sys("mount", format!("{what}: remount, data {data:?}"))?;
    }
    set_attr(target.as_fd(), true, &opts.recursive, what)?;
    propagate(target.as_fd(), &opts.propagation, what)
}

/// Makes the rootfs the process's root: pivot_root, or (with `no_pivot`)
/// MS_MOVE of the rootfs over `/` followed by chroot.
pub fn enter_rootfs(rootfs: &Path, no_pivot: bool) -> Result<()> {
    if no_pivot {
        chdir(rootfs).sys("chdir", rootfs.display())?;
        mount(
            Some(rootfs),
            "/",
            None::<&str>,
            MsFlags::MS_MOVE,
            None::<&str>,
        )
        .sys("mount", format!("move {} to /", rootfs.display()))?;
        chroot(".").sys("chroot", rootfs.display())?;
        chdir("/").sys("chdir", "/")?;
        crate::timing::stage("rootfs entered (no pivot)");
        return Ok(());
    }
    let flags = OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC;
    let old_root = open("/", flags, Mode::empty()).sys("open", "/")?;
    let new_root = open(rootfs, flags, Mode::empty()).sys("open", rootfs.display())?;
    fchdir(&new_root).sys("fchdir", rootfs.display())?;
    // pivot_root(".", ".") stacks the old root on top of the new one; the old
    // root is then unmounted from the current directory.
    pivot_root(".", ".").sys("pivot_root", rootfs.display())?;
    fchdir(&old_root).sys("fchdir", "old root")?;
    // Keep unmount events of the old root from reaching the host.
    mount(
        None::<&str>,
        ".",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .sys("mount", "old root (rslave)")?;
    umount2(".", MntFlags::MNT_DETACH).sys("umount2", "old root")?;
    chdir("/").sys("chdir", "/")?;
    crate::timing::stage("rootfs entered");
    Ok(())
}

/// Completes the root filesystem after the root changed: the process's
/// working directory, read-only tmpfs mounts, a read-only root when
/// `root.readonly` is set, then
/// `linux.readonlyPaths` and `linux.maskedPaths` (in runc's order).
pub fn finish_rootfs(spec: &Spec, prepared: &Prepared) -> Result<()> {
    let root = Root::open(Path::new("/"))?;
    // As runc, the working directory is made if missing (before the root
    // may become read-only).
    if let Some(process) = spec.process() {
        root.lookup_or_create(process.cwd(), Leaf::Dir, "process.cwd")?;
    }
    let readonly = MountAttr {
        set: libc::MOUNT_ATTR_RDONLY,
        ..Default::default()
    };
    for dest in &prepared.readonly_later {
        let what = format!("{} (read-only)", dest.display());
        let fd = root
            .lookup(dest)
            .map_err(|e| Error::sys("openat2", &what, e))?;
        set_attr(fd.as_fd(), false, &readonly, &what)?;
    }
    if spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
        set_attr(root.fd(), false, &readonly, "/ (root.readonly)")?;
    }
    if let Some(linux) = spec.linux() {
        masks::readonly_paths(&root, linux.readonly_paths().as_deref().unwrap_or_default())?;
        masks::masked_paths(&root, linux.masked_paths().as_deref().unwrap_or_default())?;
    }
    // Shared and unbindable propagation are the container root's own: its
    // parent was made private for the rootfs bind (a shared one would reach
    // the host) and an unbindable root cannot be bound, so they are applied
    // to the new root last (after the masks, which bind /dev/null).
    let propagation = root_propagation(spec)?;
    if propagation.kind == MsFlags::MS_SHARED || propagation.kind == MsFlags::MS_UNBINDABLE {
        set_root_propagation(
            propagation,
            "/ (linux.rootfsPropagation, the container's root)",
        )?;
    }
    crate::timing::stage("rootfs finished");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexical_paths() {
        assert_eq!(
            lexical(Path::new("dev/../dev/./pts")),
            Path::new("/dev/pts")
        );
        assert_eq!(lexical(Path::new("/../../proc")), Path::new("/proc"));
    }
}
