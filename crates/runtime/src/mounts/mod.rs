//! The container's root filesystem: mount propagation, the config's mounts,
//! `/dev`, changing root (pivot_root, or MS_MOVE + chroot), and the masked
//! and read-only paths.
//!
//! The container's init process calls, in order: [`prepare_rootfs`] (still
//! seeing the host's paths), [`enter_rootfs`], then [`finish_rootfs`].

use std::path::Path;

use nix::fcntl::{OFlag, open};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::stat::Mode;
use nix::unistd::{chdir, chroot, fchdir, pivot_root};
use oci_spec::runtime::Spec;

use crate::error::{Error, Result, SysContext};

/// What the rootfs set-up needs to know besides the config.
#[derive(Debug)]
pub struct RootfsContext<'a> {
    /// The whole config.
    pub spec: &'a Spec,
    /// The root filesystem on the host, absolute.
    pub rootfs: &'a Path,
    /// The bundle directory (relative mount sources resolve against it).
    pub bundle: &'a Path,
    /// Whether the container has a mount namespace of its own.
    pub new_mount_ns: bool,
    /// Whether the container runs in a user namespace (devices are then
    /// bind-mounted from the host instead of created with mknod).
    pub user_ns: bool,
}

/// Parses `rootfsPropagation` into mount flags (default: rslave).
fn root_propagation(spec: &Spec) -> Result<MsFlags> {
    let value = spec
        .linux()
        .as_ref()
        .and_then(|l| l.rootfs_propagation().clone())
        .unwrap_or_default();
    Ok(match value.as_str() {
        "" | "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "private" => MsFlags::MS_PRIVATE,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "shared" => MsFlags::MS_SHARED,
        "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        other => {
            return Err(Error::config(
                "linux.rootfsPropagation",
                format!("unknown propagation {other:?}"),
            ));
        }
    })
}

/// Sets up the root filesystem before the root is changed: propagation, the
/// rootfs as a mount point, the config's mounts and `/dev`.
pub fn prepare_rootfs(ctx: &RootfsContext<'_>) -> Result<()> {
    if !ctx.new_mount_ns {
        return Ok(());
    }
    let propagation = root_propagation(ctx.spec)?;
    mount(None::<&str>, "/", None::<&str>, propagation, None::<&str>)
        .sys("mount", "/ (root propagation)")?;
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
    Ok(())
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
    Ok(())
}

/// Completes the root filesystem after the root changed: masked paths,
/// read-only paths, and a read-only root when `root.readonly` is set.
pub fn finish_rootfs(spec: &Spec) -> Result<()> {
    if spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            None::<&str>,
        )
        .sys("mount", "/ (read-only remount)")?;
    }
    Ok(())
}
