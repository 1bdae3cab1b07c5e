//! Bind mounts: a detached clone of the source (open_tree) gets its
//! attributes (mount_setattr) and is then attached onto the destination
//! opened inside the root (move_mount): it is never visible with the wrong
//! attributes, and the destination path is never resolved again.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::sys::stat::{SFlag, fstat};
use oci_spec::runtime::Mount;

use super::options::{Depth, Options};
use super::safe::{Leaf, Root};
use super::{check_proc_destination, is_procfs, propagate, set_attr};
use crate::error::{Error, Result, SysContext};
use crate::sys::{self, MountAttr};

/// The options that mean nothing on a bind mount: file-system data and
/// superblock flags (a bind mount shares its source's file system). runc
/// ignores them; so does capsa, with a warning ([`super::warn_ignored_options`]).
pub(super) fn ignored_bind_options(opts: &Options) -> impl Iterator<Item = &String> {
    opts.superblock_options.iter().chain(&opts.data)
}

/// The host path a bind mount's `source` names (relative to the bundle).
pub(super) fn bind_source(m: &Mount, bundle: &Path, field: &str) -> Result<PathBuf> {
    let source = m
        .source()
        .as_ref()
        .filter(|s| !s.as_os_str().is_empty())
        .ok_or_else(|| Error::config(format!("{field}.source"), "missing for a bind mount"))?;
    Ok(if source.is_absolute() {
        source.clone()
    } else {
        bundle.join(source)
    })
}

/// Clones the tree at `source` as a detached bind mount and gives it the
/// options' attributes (and an id mapping with `userns`): nothing is
/// attached yet, so it is never visible with the wrong attributes.
pub(super) fn bind_tree(
    source: &Path,
    opts: &Options,
    depth: Depth,
    idmap: Option<(BorrowedFd<'_>, Depth)>,
    what: &str,
) -> Result<OwnedFd> {
    let c = CString::new(source.as_os_str().as_bytes())
        .map_err(|_| Error::config(what.to_string(), "source contains a NUL byte"))?;
    let tree = sys::open_tree_clone(None, &c, depth == Depth::Recursive).map_err(|e| {
        Error::sys(
            "open_tree",
            format!("{what}: source {}", source.display()),
            e,
        )
    })?;
    set_attr(tree.as_fd(), false, &opts.bind_attr(), what)?;
    set_attr(tree.as_fd(), true, &opts.recursive, what)?;
    if let Some((userns, depth)) = idmap {
        let attr = MountAttr {
            set: libc::MOUNT_ATTR_IDMAP,
            userns_fd: Some(userns.as_raw_fd()),
            ..Default::default()
        };
        sys::mount_setattr(tree.as_fd(), depth == Depth::Recursive, &attr)
            .map_err(|e| Error::sys("mount_setattr", format!("{what}: MOUNT_ATTR_IDMAP"), e))?;
    }
    Ok(tree)
}

/// Attaches a prepared bind tree at `dest` inside the root (created as a
/// directory or an empty file, like the source), then applies propagation.
pub(super) fn attach_bind(
    root: &Root,
    tree: BorrowedFd<'_>,
    dest: &Path,
    opts: &Options,
    rootfs: &Path,
    what: &str,
) -> Result<()> {
    let st = fstat(tree).sys("fstat", format!("{what}: source"))?;
    let leaf = if st.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFDIR.bits() {
        Leaf::Dir
    } else {
        Leaf::File
    };
    let target = root.lookup_or_create(dest, leaf, what)?;
    check_proc_destination(target.as_fd(), dest, is_procfs(tree), rootfs, what)?;
    sys::move_mount(tree, target.as_fd()).map_err(|e| Error::sys("move_mount", what, e))?;
    propagate(tree, &opts.propagation, what)
}
