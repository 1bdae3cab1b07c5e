//! Paths inside the container's root, resolved so that nothing in the root
//! filesystem (a symlink, absolute or climbing with `..`) can lead a mount,
//! a mkdir or a mknod outside it (the CVE-2021-30465 class of attacks).
//!
//! Every path is opened relative to one descriptor of the root with
//! openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS): absolute symlinks and
//! `..` stop at the root, as they would after pivot_root. Mounts then go onto
//! the opened descriptor (move_mount, or mount(2) on `/proc/self/fd/N`), so
//! that the path is never resolved a second time. Missing directories are
//! created one component at a time, each relative to its already-opened
//! parent, symlinks being followed by hand with the same rules.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat, openat2, readlinkat};
use nix::sys::stat::{Mode, SFlag, fstat, mkdirat};

use crate::error::{Error, Result, SysContext};

/// How many symlinks one lookup may follow before giving up (as the kernel's
/// MAXSYMLINKS).
const MAX_SYMLINKS: u32 = 40;

/// What to create when the last component of a path is missing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Leaf {
    /// A directory (mount point of a directory or a file system).
    Dir,
    /// An empty regular file (mount point of a file).
    File,
}

/// The container's root directory, held open: every lookup starts here.
#[derive(Debug)]
pub struct Root {
    fd: OwnedFd,
}

/// The `/proc/self/fd/N` path of a descriptor: mount(2) given it as target
/// mounts onto exactly the file the descriptor refers to.
pub fn fd_path(fd: &impl AsRawFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

/// The names of a path's components; `..` is kept, `.` and `/` dropped.
fn names(path: &Path) -> VecDeque<OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect()
}

/// Splits a path into its parent and its last name; `None` when the last
/// component is not a plain name (`/`, `..`).
pub fn split_leaf(path: &Path) -> Option<(&Path, &OsStr)> {
    match path.components().next_back()? {
        Component::Normal(name) => Some((path.parent().unwrap_or(Path::new("/")), name)),
        _ => None,
    }
}

/// Whether `path`, taken lexically, names the root itself (`/`, `/a/..`).
pub fn is_root(path: &Path) -> bool {
    let mut depth = 0usize;
    for c in path.components() {
        match c {
            Component::Normal(_) => depth += 1,
            Component::ParentDir => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    depth == 0
}

/// Opens `name` in `dir` without following a final symlink (O_PATH).
fn open_nofollow(dir: BorrowedFd<'_>, name: &OsStr) -> nix::Result<OwnedFd> {
    openat(
        dir,
        name,
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

/// Creates an empty file `name` in `dir`; fails if anything has that name.
pub fn create_file(dir: BorrowedFd<'_>, name: &OsStr) -> nix::Result<OwnedFd> {
    openat(
        dir,
        name,
        OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_WRONLY | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o644),
    )
}

impl Root {
    /// Opens the directory that is the container's root.
    pub fn open(path: &Path) -> Result<Root> {
        let fd = nix::fcntl::open(
            path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .sys("open", path.display())?;
        Ok(Root { fd })
    }

    /// The root's descriptor.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Opens `path` inside the root (O_PATH), following symlinks as if the
    /// root were `/`; magic links (/proc/PID/fd/...) are refused.
    pub fn lookup(&self, path: &Path) -> nix::Result<OwnedFd> {
        let how = OpenHow::new()
            .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
        let path = if path.as_os_str().is_empty() {
            Path::new("/")
        } else {
            path
        };
        // EAGAIN: a rename or mount somewhere raced with a `..` lookup.
        let mut tries = 0;
        loop {
            match openat2(self.fd.as_fd(), path, how) {
                Err(Errno::EAGAIN) if tries < 64 => tries += 1,
                other => return other,
            }
        }
    }

    /// Opens `path` inside the root, first creating what is missing: the
    /// directories on the way and, as the last component, a directory or an
    /// empty file (`leaf`). `what` names the path's purpose in errors.
    ///
    /// A symlink met on the way (even a dangling one) is followed inside the
    /// root, and what it points to is created there.
    pub fn lookup_or_create(&self, path: &Path, leaf: Leaf, what: &str) -> Result<OwnedFd> {
        match self.lookup(path) {
            Ok(fd) => Ok(fd),
            Err(Errno::ENOENT) => match self.create_leaf(path, leaf) {
                Some(fd) => Ok(fd),
                None => self.create(path, leaf, what),
            },
            Err(e) => Err(Error::sys(
                "openat2",
                format!("{what}: {}", path.display()),
                e,
            )),
        }
    }

    /// The common case of a missing path: only its last component is
    /// missing, and is a plain name. `None` when that is not so (or anything
    /// fails): the careful walk then handles it, errors included.
    fn create_leaf(&self, path: &Path, leaf: Leaf) -> Option<OwnedFd> {
        let (parent, name) = split_leaf(path)?;
        let dir = self.lookup(parent).ok()?;
        let mut flags = OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        match leaf {
            Leaf::Dir => {
                mkdirat(&dir, name, Mode::from_bits_truncate(0o755)).ok()?;
                // Had it been swapped for a symlink meanwhile, this fails.
                flags |= OFlag::O_DIRECTORY;
            }
            Leaf::File => drop(create_file(dir.as_fd(), name).ok()?),
        }
        openat(dir.as_fd(), name, flags, Mode::empty()).ok()
    }

    /// The slow path of [`Root::lookup_or_create`]: one component at a time.
    fn create(&self, path: &Path, leaf: Leaf, what: &str) -> Result<OwnedFd> {
        let mut pending = names(path);
        // The directories resolved so far, below the root.
        let mut dirs: Vec<OwnedFd> = Vec::new();
        let mut links = 0;
        let mut created = 0;
        let fail = |call: &'static str, name: &OsStr, e: Errno| {
            Error::sys(
                call,
                format!("{what}: {} (at {:?})", path.display(), name),
                e,
            )
        };
        while let Some(name) = pending.pop_front() {
            if name == ".." {
                dirs.pop();
                continue;
            }
            let parent = dirs.last().map_or(self.fd.as_fd(), |d| d.as_fd());
            match open_nofollow(parent, &name) {
                Ok(fd) => {
                    let st = fstat(&fd).map_err(|e| fail("fstat", &name, e))?;
                    match SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) {
                        SFlag::S_IFDIR => dirs.push(fd),
                        SFlag::S_IFLNK => {
                            links += 1;
                            if links > MAX_SYMLINKS {
                                return Err(fail("readlinkat", &name, Errno::ELOOP));
                            }
                            let target = PathBuf::from(
                                readlinkat(parent, name.as_os_str())
                                    .map_err(|e| fail("readlinkat", &name, e))?,
                            );
                            if target.is_absolute() {
                                dirs.clear();
                            }
                            for n in names(&target).into_iter().rev() {
                                pending.push_front(n);
                            }
                        }
                        _ if pending.is_empty() => return Ok(fd),
                        _ => return Err(fail("openat", &name, Errno::ENOTDIR)),
                    }
                }
                Err(Errno::ENOENT) => {
                    // Bounded, in case something keeps removing what we make.
                    created += 1;
                    if created > 4096 {
                        return Err(fail("mkdirat", &name, Errno::ELOOP));
                    }
                    let made = if pending.is_empty() && leaf == Leaf::File {
                        create_file(parent, &name)
                            .map(drop)
                            .map_err(|e| ("openat", e))
                    } else {
                        mkdirat(parent, name.as_os_str(), Mode::from_bits_truncate(0o755))
                            .map_err(|e| ("mkdirat", e))
                    };
                    match made {
                        Ok(()) | Err((_, Errno::EEXIST)) => pending.push_front(name),
                        Err((call, e)) => return Err(fail(call, &name, e)),
                    }
                }
                Err(e) => return Err(fail("openat", &name, e)),
            }
        }
        match dirs.pop() {
            Some(fd) => Ok(fd),
            None => open_nofollow(self.fd.as_fd(), OsStr::new("."))
                .map_err(|e| fail("openat", OsStr::new("."), e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// The path a descriptor refers to, as the kernel sees it.
    fn where_is(fd: &OwnedFd) -> PathBuf {
        std::fs::read_link(fd_path(fd)).unwrap()
    }

    #[test]
    fn leaf_split_and_root_test() {
        assert_eq!(
            split_leaf(Path::new("/dev/null")),
            Some((Path::new("/dev"), OsStr::new("null")))
        );
        assert_eq!(
            split_leaf(Path::new("null")),
            Some((Path::new(""), OsStr::new("null")))
        );
        assert_eq!(split_leaf(Path::new("/")), None);
        assert_eq!(split_leaf(Path::new("/dev/..")), None);
        assert!(is_root(Path::new("/")));
        assert!(is_root(Path::new("/a/..")));
        assert!(is_root(Path::new("/../..")));
        assert!(!is_root(Path::new("/../a")));
    }

    #[test]
    fn symlinks_stay_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root_path = dir.path().join("root");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(root_path.join("etc")).unwrap();
        std::fs::create_dir(&outside).unwrap();
        // Absolute, relative-escaping and dangling links.
        symlink(&outside, root_path.join("abs")).unwrap();
        symlink("../../../outside", root_path.join("rel")).unwrap();
        symlink("/nowhere/deep", root_path.join("dangling")).unwrap();
        symlink("loop2", root_path.join("loop1")).unwrap();
        symlink("loop1", root_path.join("loop2")).unwrap();
        let root = Root::open(&root_path).unwrap();

        let fd = root
            .lookup_or_create(Path::new("/abs/x"), Leaf::Dir, "t")
            .unwrap();
        let inside = root_path.join(outside.strip_prefix("/").unwrap()).join("x");
        assert_eq!(where_is(&fd), inside);
        let fd = root
            .lookup_or_create(Path::new("/rel/y/z"), Leaf::File, "t")
            .unwrap();
        assert_eq!(where_is(&fd), root_path.join("outside/y/z"));
        assert!(root_path.join("outside/y/z").is_file());
        let fd = root
            .lookup_or_create(Path::new("/dangling/f"), Leaf::Dir, "t")
            .unwrap();
        assert_eq!(where_is(&fd), root_path.join("nowhere/deep/f"));
        let fd = root
            .lookup_or_create(Path::new("/../../etc/../../new"), Leaf::Dir, "t")
            .unwrap();
        assert_eq!(where_is(&fd), root_path.join("new"));
        let err = root
            .lookup_or_create(Path::new("/loop1/x"), Leaf::Dir, "t")
            .unwrap_err();
        assert!(err.to_string().contains("ELOOP"), "{err}");
        // Nothing appeared outside.
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
        assert!(!Path::new("/nowhere").exists());
        // A file in the way is an error, not a surprise.
        std::fs::write(root_path.join("etc/file"), "").unwrap();
        let err = root
            .lookup_or_create(Path::new("/etc/file/x"), Leaf::Dir, "t")
            .unwrap_err();
        assert!(err.to_string().contains("ENOTDIR"), "{err}");
        // Existing paths come straight from openat2.
        let fd = root.lookup(Path::new("/abs/x")).unwrap();
        assert_eq!(where_is(&fd), inside);
        assert_eq!(where_is(&root.lookup(Path::new("")).unwrap()), root_path);
    }
}
