//! A container's root filesystem: an overlayfs mount of its image's
//! snapshots (top first) under a writable upper directory of its own, in
//! `<root>/rootfs/<id>/{upper,work,merged}`.
//!
//! Layers are passed one by one with the new mount API (fsopen + fsconfig
//! `lowerdir+`, Linux 6.8+), which has no limit on the length of the option
//! string; older kernels get a classic mount(2), with short relative
//! symlink names read from a chdir'ed directory when the absolute paths
//! would not fit in one page (as Docker's overlay2 does).

use std::ffi::CString;
use std::fs;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use capsa_sys::mount_api;
use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};
use rusqlite::params;

use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};
use crate::store::Store;

/// How the overlay is mounted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MountMethod {
    /// The new mount API when the kernel has `lowerdir+`, else the classic one.
    Auto,
    /// fsopen/fsconfig(`lowerdir+`)/fsmount/move_mount only.
    NewApi,
    /// mount(2) with a `lowerdir=` option string (short symlinks when long).
    Legacy,
}

/// A prepared container root filesystem.
#[derive(Clone, Debug)]
pub struct Rootfs {
    /// Its id (the container's).
    pub id: String,
    /// The image it was made from.
    pub image: String,
    /// `<root>/rootfs/<id>`.
    pub dir: PathBuf,
    /// The mounted root filesystem.
    pub merged: PathBuf,
    /// The container's writable layer.
    pub upper: PathBuf,
}

fn check_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::Other(format!(
            "invalid rootfs id {id:?}: letters, digits, '_', '.', '-' only"
        )))
    }
}

fn cpath(p: &Path) -> Result<CString> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| Error::Other(format!("path {} contains a NUL byte", p.display())))
}

impl Store {
    /// The directory of the rootfs `id`.
    pub fn rootfs_dir(&self, id: &str) -> PathBuf {
        self.root().join("rootfs").join(id)
    }

    /// Prepares and mounts the root filesystem of container `id` from
    /// `image` (name or id). Its snapshots are kept until it is removed,
    /// even if the image is deleted. Nothing is left behind on error.
    pub fn create_rootfs(&self, id: &str, image: &str, method: MountMethod) -> Result<Rootfs> {
        check_id(id)?;
        let _lock = self.lock_shared()?;
        let img = self.resolve(image)?;
        let layers = self.db().layers_of(&img.id)?;
        let mut lowers = Vec::new();
        for l in layers.iter().rev() {
            let chain = Digest::parse(&l.chain_id)?;
            if !self.has_snapshot(&chain) {
                return Err(Error::image(
                    &img.id,
                    format!("the snapshot of layer {chain} is missing (load the image again)"),
                ));
            }
            lowers.push(self.snapshot_dir(&chain).join("fs"));
        }
        let dir = self.rootfs_dir(id);
        let (now, _) = crate::time::now();
        let tx = self.db().write()?;
        let e = |e| self.db().err(e);
        let inserted = tx
            .execute(
                "INSERT OR IGNORE INTO rootfs (id, image, created_unix) VALUES (?1, ?2, ?3)",
                params![id, img.id, now],
            )
            .map_err(e)?;
        if inserted == 0 {
            return Err(Error::Conflict(format!(
                "a rootfs named {id} already exists"
            )));
        }
        for l in &layers {
            tx.execute(
                "INSERT OR IGNORE INTO rootfs_layers (rootfs, chain_id) VALUES (?1, ?2)",
                params![id, l.chain_id],
            )
            .map_err(e)?;
        }
        tx.commit().map_err(e)?;
        let rootfs = Rootfs {
            id: id.to_string(),
            image: img.id.clone(),
            merged: dir.join("merged"),
            upper: dir.join("upper"),
            dir: dir.clone(),
        };
        let made = (|| {
            if let Err(e) = fs::create_dir(&dir) {
                // A directory left by a killed command, without a record, is garbage.
                if e.kind() != std::io::ErrorKind::AlreadyExists {
                    return Err(Error::io("mkdir", &dir, e));
                }
                let _ = nix::mount::umount2(&dir.join("merged"), MntFlags::MNT_DETACH);
                fs::remove_dir_all(&dir).ctx("remove stale", &dir)?;
                fs::create_dir(&dir).ctx("mkdir", &dir)?;
            }
            for d in ["upper", "work", "merged"] {
                fs::create_dir(dir.join(d)).ctx("mkdir", dir.join(d))?;
            }
            if lowers.is_empty() {
                // overlayfs needs a lower layer: an image without layers gets an empty one.
                let empty = dir.join("empty");
                fs::create_dir(&empty).ctx("mkdir", &empty)?;
                lowers.push(empty);
            }
            mount_overlay(&dir, &lowers, method)
        })();
        if let Err(err) = made {
            let _ = fs::remove_dir_all(&dir);
            let _ = self.delete_rootfs_record(id);
            return Err(err);
        }
        Ok(rootfs)
    }

    /// Unmounts and removes the rootfs `id` and its writable layer.
    pub fn remove_rootfs(&self, id: &str) -> Result<()> {
        check_id(id)?;
        let dir = self.rootfs_dir(id);
        let known: Option<String> = self
            .db()
            .rows("SELECT id FROM rootfs WHERE id = ?1", [id], |r| r.get(0))?
            .pop();
        if known.is_none() && !dir.exists() {
            return Err(Error::Other(format!("no rootfs named {id}")));
        }
        let merged = dir.join("merged");
        match nix::mount::umount2(&merged, MntFlags::empty()) {
            Ok(()) | Err(Errno::EINVAL) | Err(Errno::ENOENT) => {}
            Err(e) => return Err(Error::sys("umount2", merged.display().to_string(), e)),
        }
        match fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("remove", &dir, e)),
        }
        self.delete_rootfs_record(id)
    }

    fn delete_rootfs_record(&self, id: &str) -> Result<()> {
        let tx = self.db().write()?;
        tx.execute("DELETE FROM rootfs WHERE id = ?1", [id])
            .map_err(|e| self.db().err(e))?;
        tx.commit().map_err(|e| self.db().err(e))
    }

    /// Mounts the existing rootfs `id` again (its overlay is gone after a
    /// reboot), from the layers recorded for it; its upper layer is kept.
    pub fn remount_rootfs(&self, id: &str) -> Result<()> {
        check_id(id)?;
        let chains: Vec<String> = self.db().rows(
            "SELECT chain_id FROM rootfs_layers WHERE rootfs = ?1",
            [id],
            |r| r.get(0),
        )?;
        let mut layers = Vec::new();
        for c in &chains {
            layers.push(
                self.db().layer(c)?.ok_or_else(|| {
                    Error::Other(format!("rootfs {id}: layer {c} is not recorded"))
                })?,
            );
        }
        // Top first: start from the layer no other one has as parent.
        let mut lowers = Vec::new();
        let mut next = layers
            .iter()
            .find(|l| {
                !layers
                    .iter()
                    .any(|o| o.parent.as_deref() == Some(&l.chain_id))
            })
            .map(|l| l.chain_id.clone());
        while let Some(chain) = next {
            let d = Digest::parse(&chain)?;
            if !self.has_snapshot(&d) {
                return Err(Error::Other(format!(
                    "rootfs {id}: the snapshot of layer {chain} is missing"
                )));
            }
            lowers.push(self.snapshot_dir(&d).join("fs"));
            next = layers
                .iter()
                .find(|l| l.chain_id == chain)
                .and_then(|l| l.parent.clone())
                .filter(|p| chains.contains(p));
        }
        let dir = self.rootfs_dir(id);
        if lowers.is_empty() {
            lowers.push(dir.join("empty"));
        }
        mount_overlay(&dir, &lowers, MountMethod::Auto)
    }

    /// The prepared rootfs, oldest first.
    pub fn list_rootfs(&self) -> Result<Vec<Rootfs>> {
        let rows: Vec<(String, String)> = self.db().rows(
            "SELECT id, image FROM rootfs ORDER BY created_unix, id",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok(rows
            .into_iter()
            .map(|(id, image)| {
                let dir = self.rootfs_dir(&id);
                Rootfs {
                    merged: dir.join("merged"),
                    upper: dir.join("upper"),
                    dir,
                    id,
                    image,
                }
            })
            .collect())
    }
}

/// Mounts the overlay of `lowers` (top first) with `dir`/upper and
/// `dir`/work on `dir`/merged.
fn mount_overlay(dir: &Path, lowers: &[PathBuf], method: MountMethod) -> Result<()> {
    match method {
        MountMethod::NewApi => mount_new_api(dir, lowers),
        MountMethod::Legacy => mount_legacy(dir, lowers),
        MountMethod::Auto => match mount_new_api(dir, lowers) {
            // No new mount API, or no `lowerdir+` (before Linux 6.8). Before
            // 6.5 overlay has no mount context of its own: the kernel's
            // generic one takes any key and the overlay refuses `lowerdir+`
            // only at create.
            Err(Error::Sys {
                errno: Errno::ENOSYS | Errno::EINVAL | Errno::EOPNOTSUPP,
                call: "fsopen" | "fsconfig lowerdir+",
                ..
            })
            | Err(Error::Sys {
                errno: Errno::EINVAL,
                call: "fsconfig create",
                ..
            }) => mount_legacy(dir, lowers),
            r => r,
        },
    }
}

fn mount_new_api(dir: &Path, lowers: &[PathBuf]) -> Result<()> {
    let fsfd = mount_api::fsopen(c"overlay").map_err(|e| Error::sys("fsopen", "overlay", e))?;
    for l in lowers {
        mount_api::fsconfig_string(fsfd.as_fd(), c"lowerdir+", &cpath(l)?)
            .map_err(|e| Error::sys("fsconfig lowerdir+", l.display().to_string(), e))?;
    }
    for (key, sub) in [(c"upperdir", "upper"), (c"workdir", "work")] {
        let p = dir.join(sub);
        mount_api::fsconfig_string(fsfd.as_fd(), key, &cpath(&p)?)
            .map_err(|e| Error::sys("fsconfig", format!("{key:?}={}", p.display()), e))?;
    }
    mount_api::fsconfig_create(fsfd.as_fd()).map_err(|e| {
        Error::sys(
            "fsconfig create",
            format!("overlay on {}", dir.display()),
            e,
        )
    })?;
    let mnt =
        mount_api::fsmount(fsfd.as_fd(), 0).map_err(|e| Error::sys("fsmount", "overlay", e))?;
    let target = dir.join("merged");
    let dest = fs::File::options()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW)
        .open(&target)
        .ctx("open", &target)?;
    mount_api::move_mount(mnt.as_fd(), dest.as_fd())
        .map_err(|e| Error::sys("move_mount", target.display().to_string(), e))
}

fn page_size() -> usize {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .map_or(4096, |n| n as usize)
}

fn mount_legacy(dir: &Path, lowers: &[PathBuf]) -> Result<()> {
    for p in lowers.iter().map(PathBuf::as_path).chain([dir]) {
        let s = p.as_os_str().as_bytes();
        if s.contains(&b',') || s.contains(&b':') {
            return Err(Error::Unsupported(format!(
                "overlay paths with ',' or ':' ({})",
                p.display()
            )));
        }
    }
    let tail = format!(
        ",upperdir={},workdir={}",
        dir.join("upper").display(),
        dir.join("work").display()
    );
    let joined = |names: &[String]| format!("lowerdir={}{tail}", names.join(":"));
    let absolute: Vec<String> = lowers.iter().map(|l| l.display().to_string()).collect();
    let opts = joined(&absolute);
    let target = dir.join("merged");
    let mount = |opts: &str| {
        nix::mount::mount(
            Some("overlay"),
            &target,
            Some("overlay"),
            MsFlags::empty(),
            Some(opts),
        )
        .map_err(|e| Error::sys("mount", format!("overlay on {}", target.display()), e))
    };
    if opts.len() < page_size() {
        return mount(&opts);
    }
    // Short names: <dir>/l/<n> -> the layer, read relative to <dir>/l.
    let links = dir.join("l");
    fs::create_dir_all(&links).ctx("mkdir", &links)?;
    let mut short = Vec::new();
    for (i, l) in lowers.iter().enumerate() {
        let name = format!("{i:x}");
        std::os::unix::fs::symlink(l, links.join(&name)).ctx("symlink", links.join(&name))?;
        short.push(name);
    }
    let opts = joined(&short);
    if opts.len() >= page_size() {
        return Err(Error::Unsupported(format!(
            "{} layers do not fit in one overlay mount option string on this kernel",
            lowers.len()
        )));
    }
    let cwd = nix::fcntl::open(
        ".",
        nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| Error::sys("open", "the working directory", e))?;
    nix::unistd::chdir(&links).map_err(|e| Error::sys("chdir", links.display().to_string(), e))?;
    let r = mount(&opts);
    nix::unistd::fchdir(&cwd).map_err(|e| Error::sys("fchdir", "back", e))?;
    r
}
