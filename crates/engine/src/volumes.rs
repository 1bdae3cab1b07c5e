//! Volumes of the `local` driver: directories `<root>/volumes/<name>/_data`
//! recorded in the store's database, named or anonymous (64 hex digits,
//! made for an image's VOLUME or `-v /path`, removed by `rm -v` and
//! `--rm`). A new volume mounted over a path of the image is first filled
//! with that path's contents, as Docker does.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2};
use rusqlite::{OptionalExtension, params};

use crate::container::now_ns;
use crate::ctx::Ctx;

/// A volume.
#[derive(Clone, Debug)]
pub struct Volume {
    /// Its name.
    pub name: String,
    /// Creation time (ns since the epoch).
    pub created_ns: i64,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Driver options (none are supported yet; always empty).
    pub options: BTreeMap<String, String>,
    /// Made for a container without a name.
    pub anonymous: bool,
}

/// Checks a volume name against Docker's rule `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn valid_name(name: &str) -> Result<()> {
    let ok = name.len() >= 2
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if !ok {
        bail!(
            "create {name}: \"{name}\" includes invalid characters for a local volume name, \
             only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host \
             directory, use absolute path"
        );
    }
    Ok(())
}

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Volume> {
    let labels: String = r.get(2)?;
    let options: String = r.get(3)?;
    Ok(Volume {
        name: r.get(0)?,
        created_ns: r.get(1)?,
        labels: serde_json::from_str(&labels).unwrap_or_default(),
        options: serde_json::from_str(&options).unwrap_or_default(),
        anonymous: r.get(4)?,
    })
}

impl Ctx {
    /// `<root>/volumes/<name>`.
    pub fn volume_dir(&self, name: &str) -> PathBuf {
        self.root.join("volumes").join(name)
    }

    /// The directory mounted into containers.
    pub fn volume_data(&self, name: &str) -> PathBuf {
        self.volume_dir(name).join("_data")
    }

    /// The volume `name`, if it exists.
    pub fn get_volume(&self, name: &str) -> Result<Option<Volume>> {
        Ok(self
            .store
            .db()
            .conn()
            .query_row(
                "SELECT name, created_ns, labels, options, anonymous FROM volumes WHERE name = ?1",
                [name],
                from_row,
            )
            .optional()?)
    }

    /// All volumes, by name.
    pub fn list_volumes(&self) -> Result<Vec<Volume>> {
        Ok(self.store.db().rows(
            "SELECT name, created_ns, labels, options, anonymous FROM volumes ORDER BY name",
            [],
            from_row,
        )?)
    }

    /// Creates a volume; an existing one of that name is returned as is
    /// (`docker volume create` is idempotent), and whether it is new.
    pub fn create_volume(
        &self,
        name: &str,
        labels: BTreeMap<String, String>,
        anonymous: bool,
    ) -> Result<(Volume, bool)> {
        valid_name(name)?;
        if let Some(v) = self.get_volume(name)? {
            return Ok((v, false));
        }
        let data = self.volume_data(name);
        std::fs::create_dir_all(&data).with_context(|| format!("mkdir {}", data.display()))?;
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755))
            .with_context(|| format!("chmod {}", data.display()))?;
        let v = Volume {
            name: name.to_string(),
            created_ns: now_ns(),
            labels,
            options: BTreeMap::new(),
            anonymous,
        };
        let tx = self.store.db().write()?;
        let n = tx.execute(
            "INSERT OR IGNORE INTO volumes (name, created_ns, labels, options, anonymous) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                v.name,
                v.created_ns,
                serde_json::to_string(&v.labels)?,
                "{}",
                v.anonymous
            ],
        )?;
        tx.commit()?;
        if n == 0 {
            // Another command made it meanwhile.
            let v = self.get_volume(name)?.context("volume vanished")?;
            return Ok((v, false));
        }
        crate::events::volume(self, name, "create", &[]);
        Ok((v, true))
    }

    /// Records that container `id` uses volume `name`.
    pub fn link_volume(&self, id: &str, name: &str) -> Result<()> {
        let tx = self.store.db().write()?;
        tx.execute(
            "INSERT OR IGNORE INTO container_volumes (container, volume) VALUES (?1, ?2)",
            params![id, name],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The containers using volume `name`.
    pub fn volume_users(&self, name: &str) -> Result<Vec<String>> {
        Ok(self.store.db().rows(
            "SELECT container FROM container_volumes WHERE volume = ?1 ORDER BY container",
            [name],
            |r| r.get(0),
        )?)
    }

    /// How many containers use each volume.
    pub fn volume_use_counts(&self) -> Result<BTreeMap<String, i64>> {
        Ok(self
            .store
            .db()
            .rows(
                "SELECT volume, COUNT(*) FROM container_volumes GROUP BY volume",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?
            .into_iter()
            .collect())
    }

    /// The volumes of container `id`.
    pub fn volumes_of(&self, id: &str) -> Result<Vec<String>> {
        Ok(self.store.db().rows(
            "SELECT volume FROM container_volumes WHERE container = ?1",
            [id],
            |r| r.get(0),
        )?)
    }

    /// Removes a volume no container uses (with `force`, a missing one is
    /// not an error).
    pub fn remove_volume(&self, name: &str, force: bool) -> Result<()> {
        if self.get_volume(name)?.is_none() {
            if force {
                return Ok(());
            }
            bail!("get {name}: no such volume");
        }
        let users = self.volume_users(name)?;
        if !users.is_empty() {
            bail!("remove {name}: volume is in use - [{}]", users.join(", "));
        }
        // The row first: a volume is never listed without its data.
        let tx = self.store.db().write()?;
        tx.execute("DELETE FROM volumes WHERE name = ?1", [name])?;
        tx.commit()?;
        let dir = self.volume_dir(name);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("remove {}", dir.display())),
        }
        crate::events::volume(self, name, "destroy", &[]);
        Ok(())
    }
}

/// Fills the empty volume directory `data` with what the image has at
/// `dest` (resolved inside `rootfs`, symlinks staying inside it): files,
/// directories, symlinks and device nodes with their owners, modes and
/// times; the volume's own directory takes the owner and mode of `dest`.
/// Nothing happens when `dest` does not exist in the image or `data` is
/// not empty.
pub fn copy_up(rootfs: &Path, dest: &str, data: &Path) -> Result<()> {
    if std::fs::read_dir(data)
        .with_context(|| format!("read {}", data.display()))?
        .next()
        .is_some()
    {
        return Ok(());
    }
    let root = nix::fcntl::open(
        rootfs,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .with_context(|| format!("open {}", rootfs.display()))?;
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let src = match openat2(&root, dest, how) {
        Ok(fd) => fd,
        Err(nix::errno::Errno::ENOENT) | Err(nix::errno::Errno::ENOTDIR) => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("open {dest} in the image")),
    };
    use std::os::fd::AsRawFd;
    let src_path = PathBuf::from(format!("/proc/self/fd/{}", src.as_raw_fd()));
    let m = std::fs::metadata(&src_path).context("stat the image's directory")?;
    copy_tree(&src_path, data)
        .with_context(|| format!("copying {dest} of the image into the volume"))?;
    std::os::unix::fs::lchown(data, Some(m.uid()), Some(m.gid()))
        .with_context(|| format!("chown {}", data.display()))?;
    std::fs::set_permissions(data, std::fs::Permissions::from_mode(m.mode() & 0o7777))
        .with_context(|| format!("chmod {}", data.display()))?;
    Ok(())
}

/// Copies the contents of directory `from` into the existing directory
/// `to`, never following a symlink.
pub fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    for e in std::fs::read_dir(from).with_context(|| format!("read {}", from.display()))? {
        let e = e?;
        let name = e.file_name();
        copy_entry(&e.path(), &to.join(&name), &name)?;
    }
    Ok(())
}

fn copy_entry(src: &Path, dst: &Path, name: &OsStr) -> Result<()> {
    let m = std::fs::symlink_metadata(src).with_context(|| format!("lstat {}", src.display()))?;
    let ft = m.file_type();
    if ft.is_dir() {
        std::fs::create_dir(dst).with_context(|| format!("mkdir {}", dst.display()))?;
        copy_tree(src, dst)?;
    } else if ft.is_symlink() {
        let target = std::fs::read_link(src)?;
        std::os::unix::fs::symlink(&target, dst)
            .with_context(|| format!("symlink {}", dst.display()))?;
    } else if ft.is_file() {
        std::fs::copy(src, dst).with_context(|| format!("copy {}", dst.display()))?;
    } else if ft.is_char_device() || ft.is_block_device() || ft.is_fifo() || ft.is_socket() {
        make_node(dst, &m)?;
    } else {
        bail!("{}: unsupported file type", Path::new(name).display());
    }
    std::os::unix::fs::lchown(dst, Some(m.uid()), Some(m.gid()))
        .with_context(|| format!("chown {}", dst.display()))?;
    if !ft.is_symlink() {
        std::fs::set_permissions(dst, std::fs::Permissions::from_mode(m.mode() & 0o7777))
            .with_context(|| format!("chmod {}", dst.display()))?;
    }
    let times = [
        nix::sys::time::TimeSpec::new(m.atime(), m.atime_nsec()),
        nix::sys::time::TimeSpec::new(m.mtime(), m.mtime_nsec()),
    ];
    nix::sys::stat::utimensat(
        nix::fcntl::AT_FDCWD,
        dst,
        &times[0],
        &times[1],
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )
    .with_context(|| format!("utimensat {}", dst.display()))?;
    Ok(())
}

/// Makes a device node, pipe or socket file at `dst` like the one `m` describes.
pub fn make_node(dst: &Path, m: &std::fs::Metadata) -> Result<()> {
    let ft = m.file_type();
    let kind = if ft.is_char_device() {
        nix::sys::stat::SFlag::S_IFCHR
    } else if ft.is_block_device() {
        nix::sys::stat::SFlag::S_IFBLK
    } else if ft.is_fifo() {
        nix::sys::stat::SFlag::S_IFIFO
    } else if ft.is_socket() {
        nix::sys::stat::SFlag::S_IFSOCK
    } else {
        bail!("{}: not a device, pipe or socket", dst.display());
    };
    nix::sys::stat::mknod(
        dst,
        kind,
        nix::sys::stat::Mode::from_bits_truncate(m.mode() & 0o7777),
        m.rdev(),
    )
    .with_context(|| format!("mknod {}", dst.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(valid_name("data").is_ok());
        assert!(valid_name("my_vol-1.x").is_ok());
        assert!(valid_name("a").is_err());
        assert!(valid_name("/abs").is_err());
        assert!(valid_name("-x").is_err());
    }
}
