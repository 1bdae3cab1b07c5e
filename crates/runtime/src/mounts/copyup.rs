//! `tmpcopyup` (a runc extension): a tmpfs mounted over a directory of the
//! rootfs starts with a copy of what that directory held.
//!
//! The copy reads the covered directory through the descriptor it was
//! opened by before the mount, and never follows a symlink: links are
//! copied as links, so nothing outside the root is read or written.

use std::ffi::CStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat, readlinkat};
use nix::sys::stat::{Mode, SFlag, fstatat, mkdirat, mknodat};
use nix::unistd::{Gid, Uid, fchownat, symlinkat};

use crate::error::{Error, Result};

/// Opens `name` in `dir` as a directory to read, without following a symlink.
fn open_dir(dir: BorrowedFd<'_>, name: &CStr) -> nix::Result<OwnedFd> {
    openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

/// Copies the content of directory `from` into directory `to` (both open
/// for reading), with modes and owners.
pub(super) fn copy_tree(from: BorrowedFd<'_>, to: BorrowedFd<'_>, what: &str) -> Result<()> {
    let fail = |call: &'static str, name: &CStr, e: Errno| {
        Error::sys(call, format!("{what}: tmpcopyup of {name:?}"), e)
    };
    let listing = nix::unistd::dup(from).map_err(|e| fail("dup", c".", e))?;
    let mut dir = Dir::from_fd(listing).map_err(|e| fail("opendir", c".", e))?;
    for entry in dir.iter() {
        let entry = entry.map_err(|e| fail("readdir", c".", e))?;
        let name = entry.file_name();
        if name == c"." || name == c".." {
            continue;
        }
        let st = fstatat(from, name, AtFlags::AT_SYMLINK_NOFOLLOW)
            .map_err(|e| fail("fstatat", name, e))?;
        let kind = SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits());
        let mode = Mode::from_bits_truncate(st.st_mode & 0o7777);
        match kind {
            SFlag::S_IFDIR => {
                mkdirat(to, name, mode).map_err(|e| fail("mkdirat", name, e))?;
                let src = open_dir(from, name).map_err(|e| fail("openat", name, e))?;
                let dst = open_dir(to, name).map_err(|e| fail("openat", name, e))?;
                copy_tree(src.as_fd(), dst.as_fd(), what)?;
            }
            SFlag::S_IFREG => {
                let src = openat(
                    from,
                    name,
                    OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| fail("openat", name, e))?;
                let dst = openat(
                    to,
                    name,
                    OFlag::O_WRONLY
                        | OFlag::O_CREAT
                        | OFlag::O_EXCL
                        | OFlag::O_NOFOLLOW
                        | OFlag::O_CLOEXEC,
                    mode,
                )
                .map_err(|e| fail("openat", name, e))?;
                std::io::copy(&mut std::fs::File::from(src), &mut std::fs::File::from(dst))
                    .map_err(|e| {
                        fail(
                            "copy",
                            name,
                            Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
                        )
                    })?;
            }
            SFlag::S_IFLNK => {
                let target = readlinkat(from, name).map_err(|e| fail("readlinkat", name, e))?;
                symlinkat(target.as_os_str(), to, name).map_err(|e| fail("symlinkat", name, e))?;
            }
            _ => {
                mknodat(to, name, kind, mode, st.st_rdev).map_err(|e| fail("mknodat", name, e))?;
            }
        }
        fchownat(
            to,
            name,
            Some(Uid::from_raw(st.st_uid)),
            Some(Gid::from_raw(st.st_gid)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(|e| fail("fchownat", name, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};

    #[test]
    fn copies_files_dirs_and_links_without_following() {
        let base = tempfile::tempdir().unwrap();
        let (src, dst) = (base.path().join("src"), base.path().join("dst"));
        std::fs::create_dir_all(src.join("sub/deeper")).unwrap();
        std::fs::create_dir(&dst).unwrap();
        std::fs::write(src.join("sub/deeper/file"), "data").unwrap();
        std::fs::set_permissions(
            src.join("sub/deeper/file"),
            std::fs::Permissions::from_mode(0o640),
        )
        .unwrap();
        symlink("/etc/passwd", src.join("link")).unwrap();
        let saved = nix::sys::stat::umask(Mode::empty());
        let open = |p: &std::path::Path| {
            nix::fcntl::open(p, OFlag::O_RDONLY | OFlag::O_DIRECTORY, Mode::empty()).unwrap()
        };
        let result = copy_tree(open(&src).as_fd(), open(&dst).as_fd(), "t");
        nix::sys::stat::umask(saved);
        result.unwrap();
        assert_eq!(
            std::fs::read_to_string(dst.join("sub/deeper/file")).unwrap(),
            "data"
        );
        let meta = std::fs::metadata(dst.join("sub/deeper/file")).unwrap();
        assert_eq!(meta.mode() & 0o7777, 0o640);
        assert_eq!(
            std::fs::read_link(dst.join("link")).unwrap(),
            std::path::Path::new("/etc/passwd")
        );
    }
}
