//! `linux.readonlyPaths` and `linux.maskedPaths`, applied inside the new
//! root (after pivot_root, as runc does).
//!
//! A read-only path becomes a read-only bind mount of itself, with every
//! mount beneath it read-only too. A masked directory is covered by an
//! empty read-only tmpfs (one file system for all of them: being empty and
//! read-only it cannot tell them apart, and every tmpfs made is one more
//! superblock for the kernel to set up and tear down), a masked file by a
//! bind mount of `/dev/null`.
//! Paths that do not exist are skipped.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::sys::stat::{SFlag, fstat};

use super::detached_tmpfs;
use super::safe::Root;
use crate::error::{Error, Result};
use crate::sys::{self, MountAttr};

/// Opens `path` in the root; `None` when it does not exist.
fn find(root: &Root, path: &str, field: &str) -> Result<Option<OwnedFd>> {
    match root.lookup(Path::new(path)) {
        Ok(fd) => Ok(Some(fd)),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(Error::sys("openat2", format!("{field} {path}"), e)),
    }
}

/// Makes each path a read-only bind mount of itself (recursively).
pub(super) fn readonly_paths(root: &Root, paths: &[String]) -> Result<()> {
    let readonly = MountAttr {
        set: libc::MOUNT_ATTR_RDONLY,
        ..Default::default()
    };
    for (i, path) in paths.iter().enumerate() {
        let what = format!("linux.readonlyPaths[{i}] {path}");
        let Some(fd) = find(root, path, &what)? else {
            continue;
        };
        let tree = sys::open_tree_clone(Some(fd.as_fd()), c"", true)
            .map_err(|e| Error::sys("open_tree", &what, e))?;
        sys::mount_setattr(tree.as_fd(), true, &readonly)
            .map_err(|e| Error::sys("mount_setattr", format!("{what}: read-only"), e))?;
        sys::move_mount(tree.as_fd(), fd.as_fd())
            .map_err(|e| Error::sys("move_mount", &what, e))?;
    }
    Ok(())
}

/// Covers each path: directories with an empty read-only tmpfs, other files
/// with `/dev/null`.
pub(super) fn masked_paths(root: &Root, paths: &[String]) -> Result<()> {
    let mut null: Option<OwnedFd> = None;
    let mut empty: Option<OwnedFd> = None;
    for (i, path) in paths.iter().enumerate() {
        let what = format!("linux.maskedPaths[{i}] {path}");
        let Some(fd) = find(root, path, &what)? else {
            continue;
        };
        let st = fstat(&fd).map_err(|e| Error::sys("fstat", &what, e))?;
        let cover = if st.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFDIR.bits() {
            match &empty {
                Some(first) => sys::open_tree_clone(Some(first.as_fd()), c"", false)
                    .map_err(|e| Error::sys("open_tree", format!("{what}: tmpfs"), e))?,
                None => {
                    let tmpfs =
                        detached_tmpfs(&[], libc::MOUNT_ATTR_RDONLY, &format!("{what}: tmpfs"))?;
                    attach(tmpfs.as_fd(), fd.as_fd(), &what)?;
                    // Attached now; clones of it cover the next directories.
                    empty = Some(tmpfs);
                    continue;
                }
            }
        } else {
            if null.is_none() {
                null = Some(find(root, "/dev/null", &what)?.ok_or_else(|| {
                    Error::Other(format!(
                        "{what}: the container has no /dev/null to mask the file with"
                    ))
                })?);
            }
            let null = null.as_ref().expect("just set");
            sys::open_tree_clone(Some(null.as_fd()), c"", false)
                .map_err(|e| Error::sys("open_tree", format!("{what}: /dev/null"), e))?
        };
        attach(cover.as_fd(), fd.as_fd(), &what)?;
    }
    Ok(())
}

/// Attaches a detached mount onto `target`.
fn attach(mount: BorrowedFd<'_>, target: BorrowedFd<'_>, what: &str) -> Result<()> {
    sys::move_mount(mount, target).map_err(|e| Error::sys("move_mount", what, e))
}
