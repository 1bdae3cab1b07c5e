//! Thin wrappers around the system calls that `nix` does not offer: the new
//! mount API (fsopen/fsconfig/fsmount/move_mount) and extended attributes.
//!
//! Every `unsafe` block of the crate lives here, one small function per call.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::errno::Errno;

const FSOPEN_CLOEXEC: libc::c_uint = 1;
const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
const FSMOUNT_CLOEXEC: libc::c_uint = 1;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 4;

fn fd_result(ret: libc::c_long) -> Result<OwnedFd, Errno> {
    let fd = Errno::result(ret)?;
    // SAFETY: the kernel returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Opens a file-system context for `fstype` (fsopen(2)).
pub fn fsopen(fstype: &CStr) -> Result<OwnedFd, Errno> {
    // SAFETY: `fstype` is a valid NUL-terminated string for the duration of the call.
    fd_result(unsafe { libc::syscall(libc::SYS_fsopen, fstype.as_ptr(), FSOPEN_CLOEXEC) })
}

/// Sets the string parameter `key` of a file-system context (fsconfig(2)
/// with FSCONFIG_SET_STRING).
pub fn fsconfig_set_string(fs: BorrowedFd<'_>, key: &CStr, value: &CStr) -> Result<(), Errno> {
    // SAFETY: both strings are valid and NUL-terminated; `fs` is an open descriptor.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_SET_STRING,
            key.as_ptr(),
            value.as_ptr(),
            0,
        )
    };
    Errno::result(ret).map(drop)
}

/// Creates the superblock of a configured file-system context (fsconfig(2)
/// with FSCONFIG_CMD_CREATE).
pub fn fsconfig_create(fs: BorrowedFd<'_>) -> Result<(), Errno> {
    // SAFETY: no pointers are passed; `fs` is an open descriptor.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    };
    Errno::result(ret).map(drop)
}

/// Makes a detached mount of a created file-system context (fsmount(2)).
pub fn fsmount(fs: BorrowedFd<'_>) -> Result<OwnedFd, Errno> {
    // SAFETY: no pointers are passed; `fs` is an open descriptor.
    fd_result(unsafe { libc::syscall(libc::SYS_fsmount, fs.as_raw_fd(), FSMOUNT_CLOEXEC, 0) })
}

/// Attaches the detached mount `mnt` at `target` (move_mount(2)).
pub fn move_mount(mnt: BorrowedFd<'_>, target: &CStr) -> Result<(), Errno> {
    // SAFETY: the empty string and `target` are valid NUL-terminated strings.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            mnt.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            target.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    Errno::result(ret).map(drop)
}

/// Sets the extended attribute `name` of the file `path` itself, not of a
/// symlink's target (lsetxattr(2)).
pub fn lsetxattr(path: &CStr, name: &CStr, value: &[u8]) -> Result<(), Errno> {
    // SAFETY: the strings are NUL-terminated and `value` is valid for its length.
    let ret = unsafe {
        libc::lsetxattr(
            path.as_ptr(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    Errno::result(ret).map(drop)
}

/// Sets the extended attribute `name` of an open file (fsetxattr(2)).
pub fn fsetxattr(fd: BorrowedFd<'_>, name: &CStr, value: &[u8]) -> Result<(), Errno> {
    // SAFETY: `name` is NUL-terminated and `value` is valid for its length.
    let ret = unsafe {
        libc::fsetxattr(
            fd.as_raw_fd(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    Errno::result(ret).map(drop)
}

/// Reads the extended attribute `name` of `path` itself (lgetxattr(2));
/// `None` when it is not set.
pub fn lgetxattr(path: &CStr, name: &CStr) -> Result<Option<Vec<u8>>, Errno> {
    let mut buf = vec![0u8; 256];
    loop {
        // SAFETY: the strings are NUL-terminated and `buf` is writable for its length.
        let ret = unsafe {
            libc::lgetxattr(
                path.as_ptr(),
                name.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        match Errno::result(ret) {
            Ok(n) => {
                buf.truncate(n as usize);
                return Ok(Some(buf));
            }
            Err(Errno::ENODATA) => return Ok(None),
            Err(Errno::ERANGE) if buf.len() < 1 << 20 => buf.resize(buf.len() * 4, 0),
            Err(e) => return Err(e),
        }
    }
}

/// The names of the extended attributes of `path` itself (llistxattr(2)).
pub fn llistxattr(path: &CStr) -> Result<Vec<Vec<u8>>, Errno> {
    let mut buf = vec![0u8; 1024];
    loop {
        // SAFETY: `path` is NUL-terminated and `buf` is writable for its length.
        let ret = unsafe { libc::llistxattr(path.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        match Errno::result(ret) {
            Ok(n) => {
                return Ok(buf[..n as usize]
                    .split(|b| *b == 0)
                    .filter(|s| !s.is_empty())
                    .map(<[u8]>::to_vec)
                    .collect());
            }
            Err(Errno::ERANGE) if buf.len() < 1 << 20 => buf.resize(buf.len() * 4, 0),
            Err(e) => return Err(e),
        }
    }
}
