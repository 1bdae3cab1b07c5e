//! `/dev`: the default devices (null, zero, full, random, urandom, tty),
//! `linux.devices`, `/dev/ptmx` and the usual symlinks.
//!
//! Devices are made with mknod; in a user namespace, where mknod of device
//! nodes is not allowed, the host's node of the same path is bind-mounted
//! onto an empty file instead (as runc does). Nothing is created when the
//! config bind-mounts `/dev` from elsewhere: the configured devices must then
//! already be there.

use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat};
use nix::sys::stat::{Mode, SFlag, fstatat, makedev, mknodat};
use nix::unistd::{Gid, Uid, UnlinkatFlags, fchownat, symlinkat, unlinkat};
use oci_spec::runtime::{LinuxDeviceType, Spec};

use super::safe::{Leaf, Root, create_file, split_leaf};
use crate::error::{Error, Result};
use crate::sys;

/// A device node to create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Device {
    /// Its path inside the container.
    pub path: PathBuf,
    /// S_IFCHR, S_IFBLK or S_IFIFO.
    pub kind: SFlag,
    /// Major and minor numbers.
    pub major: u64,
    pub minor: u64,
    /// Permission bits.
    pub mode: u32,
    /// Owner, when given.
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// The config field it comes from, for errors.
    pub field: String,
}

/// The devices every container gets: (name, major, minor), mode 0666.
const DEFAULTS: [(&str, u64, u64); 6] = [
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

/// The symlinks of /dev: (name in /dev, target).
const SYMLINKS: [(&str, &str); 4] = [
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
];

/// The devices `linux.devices` asks for, checked.
pub(super) fn configured(spec: &Spec) -> Result<Vec<Device>> {
    let list = spec
        .linux()
        .as_ref()
        .and_then(|l| l.devices().as_ref())
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut out = Vec::with_capacity(list.len());
    for (i, d) in list.iter().enumerate() {
        let field = format!("linux.devices[{i}]");
        let path = d.path();
        if !path.is_absolute() || split_leaf(path).is_none() {
            return Err(Error::config(
                format!("{field}.path"),
                format!("{:?} is not an absolute path to a file", path),
            ));
        }
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
            LinuxDeviceType::B => SFlag::S_IFBLK,
            LinuxDeviceType::P => SFlag::S_IFIFO,
            LinuxDeviceType::A => {
                return Err(Error::config(
                    format!("{field}.type"),
                    "\"a\" is not a device type (use c, b, u or p)",
                ));
            }
        };
        let (major, minor) = match kind {
            SFlag::S_IFIFO => (0, 0),
            _ => match (u64::try_from(d.major()), u64::try_from(d.minor())) {
                (Ok(major), Ok(minor)) => (major, minor),
                _ => {
                    return Err(Error::config(field, "major and minor must not be negative"));
                }
            },
        };
        out.push(Device {
            path: path.clone(),
            kind,
            major,
            minor,
            mode: d.file_mode().unwrap_or(0o666) & 0o7777,
            uid: d.uid(),
            gid: d.gid(),
            field,
        });
    }
    Ok(out)
}

/// The default devices not overridden by a configured one of the same path.
fn defaults(configured: &[Device]) -> impl Iterator<Item = Device> + '_ {
    DEFAULTS
        .iter()
        .filter(|(path, _, _)| !configured.iter().any(|d| d.path == Path::new(path)))
        .map(|&(path, major, minor)| Device {
            path: PathBuf::from(path),
            kind: SFlag::S_IFCHR,
            major,
            minor,
            mode: 0o666,
            uid: None,
            gid: None,
            field: format!("default device {path}"),
        })
}

/// Sets up `/dev` and `linux.devices`. `dev_bind` is the index of a mount
/// that binds `/dev` from elsewhere, if any.
pub(super) fn setup(
    root: &Root,
    spec: &Spec,
    user_ns: bool,
    dev_bind: Option<usize>,
) -> Result<()> {
    let configured = configured(spec)?;
    if let Some(index) = dev_bind {
        for d in &configured {
            check_present(root, d, index)?;
        }
        return Ok(());
    }
    let dev = root.lookup_or_create(Path::new("/dev"), Leaf::Dir, "/dev")?;
    for d in defaults(&configured).chain(configured.iter().cloned()) {
        let (parent, name) = split_leaf(&d.path).expect("checked by configured()");
        let what = format!("{} {}", d.field, d.path.display());
        if parent == Path::new("/dev") {
            create(dev.as_fd(), name, &d, user_ns, &what)?;
        } else {
            let dir = root.lookup_or_create(parent, Leaf::Dir, &what)?;
            create(dir.as_fd(), name, &d, user_ns, &what)?;
        }
    }
    // /dev/ptmx is the one of the container's devpts instance.
    match unlinkat(&dev, "ptmx", UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => {}
        Err(e) => return Err(Error::sys("unlinkat", "/dev/ptmx", e)),
    }
    symlinkat("pts/ptmx", &dev, "ptmx")
        .map_err(|e| Error::sys("symlinkat", "/dev/ptmx -> pts/ptmx", e))?;
    let kcore = Path::new("/proc/kcore")
        .exists()
        .then_some(("core", "/proc/kcore"));
    for (name, target) in SYMLINKS.into_iter().chain(kcore) {
        match symlinkat(target, &dev, name) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => {
                return Err(Error::sys(
                    "symlinkat",
                    format!("/dev/{name} -> {target}"),
                    e,
                ));
            }
        }
    }
    Ok(())
}

/// Whether the file type bits of `mode` are `kind`.
fn is_kind(mode: u32, kind: SFlag) -> bool {
    mode & SFlag::S_IFMT.bits() == kind.bits()
}

/// With `/dev` bind-mounted by the config, checks that a configured device
/// is there already.
fn check_present(root: &Root, d: &Device, dev_bind: usize) -> Result<()> {
    let found = root
        .lookup(&d.path)
        .and_then(|fd| nix::sys::stat::fstat(&fd));
    match found {
        Ok(st)
            if is_kind(st.st_mode, d.kind)
                && (d.kind == SFlag::S_IFIFO || st.st_rdev == makedev(d.major, d.minor)) =>
        {
            Ok(())
        }
        Ok(_) => Err(Error::config(
            d.field.clone(),
            format!(
                "mounts[{dev_bind}] binds /dev, and its {} is not this device",
                d.path.display()
            ),
        )),
        Err(e) => Err(Error::config(
            d.field.clone(),
            format!(
                "mounts[{dev_bind}] binds /dev, and {} cannot be found in it: {e}",
                d.path.display()
            ),
        )),
    }
}

/// Creates device node `name` in `dir` (replacing a file of that name).
fn create(dir: BorrowedFd<'_>, name: &OsStr, d: &Device, user_ns: bool, what: &str) -> Result<()> {
    let is_node = d.kind != SFlag::S_IFIFO;
    if user_ns && is_node {
        return bind_host_node(dir, name, d, what);
    }
    let dev = makedev(d.major, d.minor);
    let mode = Mode::from_bits_truncate(d.mode);
    let mut made = mknodat(dir, name, d.kind, mode, dev);
    if made == Err(Errno::EEXIST) {
        let st = fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)
            .map_err(|e| Error::sys("fstatat", what, e))?;
        if is_kind(st.st_mode, SFlag::S_IFDIR) {
            return Err(Error::sys(
                "mknodat",
                format!("{what}: a directory is in the way"),
                Errno::EEXIST,
            ));
        }
        unlinkat(dir, name, UnlinkatFlags::NoRemoveDir)
            .map_err(|e| Error::sys("unlinkat", what, e))?;
        made = mknodat(dir, name, d.kind, mode, dev);
    }
    match made {
        Ok(()) => {}
        // Not allowed to make device nodes here: use the host's, as runc does.
        Err(Errno::EPERM) if is_node => return bind_host_node(dir, name, d, what),
        Err(e) => {
            return Err(Error::sys(
                "mknodat",
                format!("{what} ({}:{} mode {:o})", d.major, d.minor, d.mode),
                e,
            ));
        }
    }
    if d.uid.is_some() || d.gid.is_some() {
        fchownat(
            dir,
            name,
            d.uid.map(Uid::from_raw),
            d.gid.map(Gid::from_raw),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(|e| Error::sys("fchownat", what, e))?;
    }
    Ok(())
}

/// Bind-mounts the host's node of the device's path onto an empty file.
fn bind_host_node(dir: BorrowedFd<'_>, name: &OsStr, d: &Device, what: &str) -> Result<()> {
    let host = std::ffi::CString::new(std::os::unix::ffi::OsStrExt::as_bytes(d.path.as_os_str()))
        .map_err(|_| Error::config(d.field.clone(), "path contains a NUL byte"))?;
    let tree = sys::open_tree_clone(None, &host, false).map_err(|e| {
        Error::sys(
            "open_tree",
            format!("{what}: the host's {}", d.path.display()),
            e,
        )
    })?;
    match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Err(Errno::ENOENT) => {
            create_file(dir, name)
                .map_err(|e| Error::sys("openat", format!("{what} (mount point)"), e))?;
        }
        Ok(st) if is_kind(st.st_mode, SFlag::S_IFDIR) || is_kind(st.st_mode, SFlag::S_IFLNK) => {
            return Err(Error::sys(
                "openat",
                format!("{what}: a directory or symlink is in the way"),
                Errno::EEXIST,
            ));
        }
        Ok(_) => {}
        Err(e) => return Err(Error::sys("fstatat", what, e)),
    }
    let target = openat(
        dir,
        name,
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::sys("openat", what, e))?;
    sys::move_mount(tree.as_fd(), target.as_fd()).map_err(|e| Error::sys("move_mount", what, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_with_devices(devices: serde_json::Value) -> Spec {
        let mut v = crate::spec::default_config(false, 0, 0);
        v["linux"]["devices"] = devices;
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn configured_devices_are_checked() {
        let spec = spec_with_devices(serde_json::json!([
            {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o20640u32, "uid": 5, "gid": 6},
            {"path": "/dev/loop9", "type": "b", "major": 7, "minor": 9},
            {"path": "/run/fifo", "type": "p"},
            {"path": "/dev/null", "type": "u", "major": 1, "minor": 3, "fileMode": 0o600}
        ]));
        let d = configured(&spec).unwrap();
        assert_eq!(d[0].kind, SFlag::S_IFCHR);
        assert_eq!(d[0].mode, 0o640, "type bits are dropped from fileMode");
        assert_eq!((d[0].uid, d[0].gid), (Some(5), Some(6)));
        assert_eq!(d[1].kind, SFlag::S_IFBLK);
        assert_eq!(d[1].mode, 0o666, "default mode");
        assert_eq!(d[2].kind, SFlag::S_IFIFO);
        assert_eq!(d[3].kind, SFlag::S_IFCHR);
        // The configured /dev/null replaces the default one.
        let names: Vec<PathBuf> = defaults(&d).map(|d| d.path).collect();
        assert_eq!(names.len(), 5);
        assert!(!names.contains(&PathBuf::from("/dev/null")));
    }

    #[test]
    fn bad_devices_are_refused() {
        for (dev, needle) in [
            (
                serde_json::json!({"path": "dev/x", "type": "c", "major": 1, "minor": 1}),
                "linux.devices[0].path",
            ),
            (
                serde_json::json!({"path": "/dev/..", "type": "c", "major": 1, "minor": 1}),
                "linux.devices[0].path",
            ),
            (
                serde_json::json!({"path": "/dev/x", "type": "a"}),
                "linux.devices[0].type",
            ),
            (
                serde_json::json!({"path": "/dev/x", "type": "c", "major": -1, "minor": 1}),
                "must not be negative",
            ),
        ] {
            let err = configured(&spec_with_devices(serde_json::json!([dev]))).unwrap_err();
            assert!(err.to_string().contains(needle), "{err}");
        }
    }
}
