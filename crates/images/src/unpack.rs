//! Applying one layer tar to an empty snapshot directory, in overlay form,
//! safely against hostile archives.
//!
//! Every entry is created relative to a directory descriptor that was opened
//! beneath the snapshot root without following any symlink
//! (openat2 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS), existing entries are
//! replaced, never written through, and absolute paths, `..`, links leaving
//! the layer and sizes beyond the free space are refused with an error naming
//! the entry. Whiteouts become overlay whiteouts: `.wh.NAME` a 0:0 character
//! device NAME, `.wh..wh..opq` the xattr `trusted.overlay.opaque=y` on its
//! directory.

use std::cell::Cell;
use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, OpenHow, ResolveFlag, openat, openat2};
use nix::sys::stat::{
    FchmodatFlags, Mode, SFlag, UtimensatFlags, fchmod, fchmodat, fstatat, makedev, mkdirat,
    mknodat, utimensat,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid, UnlinkatFlags, fchown, fchownat, linkat, symlinkat, unlinkat};

use crate::error::{Error, Result};
use crate::sys;

/// The prefix of whiteout file names in layer tars.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// The name of the marker that makes its directory opaque.
pub const OPAQUE_MARKER: &str = ".wh..wh..opq";
/// The xattr overlayfs reads to treat a directory as opaque.
pub const OVERLAY_OPAQUE_XATTR: &str = "trusted.overlay.opaque";
/// The most metadata (headers, long names, PAX records) one entry may carry.
const MAX_ENTRY_METADATA: u64 = 16 << 20;
/// Read/write buffer of file contents.
const COPY_BUFFER: usize = 1 << 20;

/// How much one layer may expand to: tar bombs are refused before they fill
/// the disk.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Total bytes of file contents.
    pub max_bytes: u64,
    /// Number of entries.
    pub max_entries: u64,
}

impl Limits {
    /// The free space and free inodes of the file system holding `dir`.
    pub fn free_space_of(dir: &Path) -> Result<Limits> {
        let st = nix::sys::statvfs::statvfs(dir)
            .map_err(|e| Error::sys("statvfs", dir.display().to_string(), e))?;
        let files = st.files_available() as u64;
        Ok(Limits {
            max_bytes: st.blocks_available() as u64 * st.fragment_size() as u64,
            // File systems without an inode limit report 0 (btrfs) or huge numbers.
            max_entries: if files == 0 { u64::MAX } else { files },
        })
    }
}

/// What applying a layer produced.
#[derive(Clone, Copy, Debug, Default)]
pub struct Unpacked {
    /// Bytes of regular file contents written (Docker's layer size).
    pub size: u64,
    /// Number of tar entries applied.
    pub entries: u64,
}

/// A reader that lets the tar parser read at most [`MAX_ENTRY_METADATA`]
/// bytes between two entries' contents, so that hostile long names or PAX
/// records cannot exhaust memory.
struct MetadataGuard<R> {
    inner: R,
    in_data: Rc<Cell<bool>>,
    outside: u64,
}

impl<R: Read> Read for MetadataGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if self.in_data.get() {
            self.outside = 0;
        } else {
            self.outside += n as u64;
            if self.outside > MAX_ENTRY_METADATA {
                return Err(io::Error::other(format!(
                    "more than {MAX_ENTRY_METADATA} bytes of headers for one entry"
                )));
            }
        }
        Ok(n)
    }
}

/// Applies the layer tar read from `tar` to the directory `dest` (normally
/// empty), returning the reader positioned after the tar's end-of-archive
/// marker so the caller can hash the rest of the stream.
pub fn unpack<R: Read>(layer: &str, tar: R, dest: &Path, limits: Limits) -> Result<(Unpacked, R)> {
    let root = nix::fcntl::open(
        dest,
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
        Mode::empty(),
    )
    .map_err(|e| Error::sys("open", dest.display().to_string(), e))?;
    let in_data = Rc::new(Cell::new(false));
    let guard = MetadataGuard {
        inner: tar,
        in_data: in_data.clone(),
        outside: 0,
    };
    let mut archive = tar::Archive::new(guard);
    let mut u = Unpacker {
        layer,
        root,
        limits,
        done: Unpacked::default(),
        dir_times: Vec::new(),
        parent_cache: None,
        buf: vec![0u8; COPY_BUFFER],
        is_root: nix::unistd::geteuid().is_root(),
    };
    let entries = archive
        .entries()
        .map_err(|e| Error::layer(layer, "", format!("reading tar: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| Error::layer(layer, "", format!("reading tar: {e}")))?;
        u.entry(&mut entry, &in_data)?;
    }
    u.set_dir_times()?;
    Ok((u.done, archive.into_inner().inner))
}

/// A tar entry's path split into components, refused when absolute or
/// containing `..`. An empty list is the layer's root.
fn components(layer: &str, entry: &str, raw: &[u8]) -> Result<Vec<Vec<u8>>> {
    if raw.first() == Some(&b'/') {
        return Err(Error::layer(layer, entry, "absolute path refused"));
    }
    let mut out = Vec::new();
    for c in raw.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                return Err(Error::layer(
                    layer,
                    entry,
                    "path with '..' refused (it could point outside the layer)",
                ));
            }
            c if c.contains(&0) => return Err(Error::layer(layer, entry, "NUL byte in path")),
            c => out.push(c.to_vec()),
        }
    }
    Ok(out)
}

fn join(comps: &[Vec<u8>]) -> PathBuf {
    PathBuf::from(OsStr::from_bytes(&comps.join(&b'/')))
}

fn cstr(layer: &str, entry: &str, bytes: &[u8]) -> Result<CString> {
    CString::new(bytes).map_err(|_| Error::layer(layer, entry, "NUL byte in name"))
}

struct Unpacker<'a> {
    layer: &'a str,
    root: OwnedFd,
    limits: Limits,
    done: Unpacked,
    /// Directories whose mtime is set at the end, when nothing more is
    /// written into them.
    dir_times: Vec<(PathBuf, TimeSpec)>,
    /// The parent directory of the previous entry, reused by the next one.
    parent_cache: Option<(Vec<Vec<u8>>, OwnedFd)>,
    buf: Vec<u8>,
    is_root: bool,
}

/// Metadata of one entry, with PAX records applied.
struct Meta {
    uid: u64,
    gid: u64,
    mode: u32,
    mtime: TimeSpec,
    xattrs: Vec<(CString, Vec<u8>)>,
}

impl Unpacker<'_> {
    fn err(&self, entry: &str, reason: impl Into<String>) -> Error {
        Error::layer(self.layer, entry, reason)
    }

    fn entry<R: Read>(&mut self, e: &mut tar::Entry<'_, R>, in_data: &Cell<bool>) -> Result<()> {
        let raw_path = e.path_bytes().into_owned();
        let name = String::from_utf8_lossy(&raw_path).into_owned();
        let kind = e.header().entry_type();
        if kind.is_pax_global_extensions() {
            in_data.set(true);
            let r = io::copy(&mut e.take(MAX_ENTRY_METADATA), &mut io::sink());
            in_data.set(false);
            r.map_err(|err| self.err(&name, format!("reading: {err}")))?;
            return Ok(());
        }
        self.done.entries += 1;
        if self.done.entries > self.limits.max_entries {
            return Err(self.err(
                &name,
                format!(
                    "more than {} entries, the inodes free for the store (tar bomb?)",
                    self.limits.max_entries
                ),
            ));
        }
        let size = e.size();
        if kind.is_file() || kind.is_contiguous() || kind.is_gnu_sparse() {
            let budget = self.limits.max_bytes.saturating_sub(self.done.size);
            if size > budget {
                return Err(self.err(
                    &name,
                    format!(
                        "size {size} exceeds what the layer may still use ({budget} of {} bytes free for the store; tar bomb?)",
                        self.limits.max_bytes
                    ),
                ));
            }
        }
        let comps = components(self.layer, &name, &raw_path)?;
        let meta = self.meta(e, &name)?;

        let Some((last, parent)) = comps.split_last() else {
            // The layer's root directory itself ("./").
            if !kind.is_dir() {
                return Err(self.err(&name, "the layer root must be a directory"));
            }
            let fd = self
                .root
                .try_clone()
                .map_err(|err| Error::io("dup", &name, err))?;
            self.set_meta_fd(&fd, &name, &meta)?;
            self.dir_times.push((PathBuf::new(), meta.mtime));
            return Ok(());
        };
        let last_str = String::from_utf8_lossy(last).into_owned();

        // Whiteouts.
        if let Some(target) = last_str.strip_prefix(WHITEOUT_PREFIX) {
            let dir = self.parent(parent, &name)?;
            if last_str == OPAQUE_MARKER {
                self.set_xattr(&dir, None, &name, OVERLAY_OPAQUE_XATTR, b"y")?;
            } else if target.starts_with(WHITEOUT_PREFIX) {
                // Other `.wh..wh.` names are aufs metadata, which carries
                // nothing for overlay; Docker skips them too.
            } else if target.is_empty() {
                return Err(self.err(&name, "whiteout without a name"));
            } else {
                if !self.is_root {
                    return Err(self.err(&name, "whiteouts (0:0 character devices) need root"));
                }
                let target = cstr(self.layer, &name, target.as_bytes())?;
                self.remove_existing(&dir, &target, &name, false)?;
                mknodat(
                    &dir,
                    target.as_c_str(),
                    SFlag::S_IFCHR,
                    Mode::empty(),
                    makedev(0, 0),
                )
                .map_err(|err| self.err(&name, format!("mknod whiteout: {err}")))?;
            }
            return self.skip_data(e, in_data, &name);
        }

        let dir = self.parent(parent, &name)?;
        let leaf = cstr(self.layer, &name, last)?;
        let perm = Mode::from_bits_truncate(meta.mode & 0o7777);
        if kind.is_file() || kind.is_contiguous() || kind.is_gnu_sparse() {
            let flags = OFlag::O_CREAT
                | OFlag::O_EXCL
                | OFlag::O_WRONLY
                | OFlag::O_NOFOLLOW
                | OFlag::O_CLOEXEC;
            let fd = match openat(
                &dir,
                leaf.as_c_str(),
                flags,
                Mode::from_bits_truncate(0o600),
            ) {
                Err(Errno::EEXIST) => {
                    self.remove_existing(&dir, &leaf, &name, false)?;
                    openat(
                        &dir,
                        leaf.as_c_str(),
                        flags,
                        Mode::from_bits_truncate(0o600),
                    )
                }
                r => r,
            }
            .map_err(|err| self.err(&name, format!("create: {err}")))?;
            let mut file = File::from(fd);
            in_data.set(true);
            let copied = self.copy(e, &mut file, &name);
            in_data.set(false);
            let written = copied?;
            self.done.size += written;
            self.set_meta_fd(&file, &name, &meta)?;
            nix::sys::stat::futimens(&file, &meta.mtime, &meta.mtime)
                .map_err(|err| self.err(&name, format!("futimens: {err}")))?;
            return Ok(());
        }
        if kind.is_dir() {
            match mkdirat(&dir, leaf.as_c_str(), Mode::from_bits_truncate(0o700)) {
                Ok(()) => {}
                Err(Errno::EEXIST) => {
                    if !self.remove_existing(&dir, &leaf, &name, true)? {
                        mkdirat(&dir, leaf.as_c_str(), Mode::from_bits_truncate(0o700))
                            .map_err(|err| self.err(&name, format!("mkdir: {err}")))?;
                    }
                }
                Err(err) => return Err(self.err(&name, format!("mkdir: {err}"))),
            }
            let fd = self.open_beneath(&join(&comps), &name)?;
            self.set_meta_fd(&fd, &name, &meta)?;
            self.dir_times.push((join(&comps), meta.mtime));
            return self.skip_data(e, in_data, &name);
        }
        if kind.is_symlink() {
            let target = e
                .link_name_bytes()
                .ok_or_else(|| self.err(&name, "symlink without a target"))?
                .into_owned();
            let target = cstr(self.layer, &name, &target)?;
            let make = || symlinkat(target.as_c_str(), &dir, leaf.as_c_str());
            match make() {
                Err(Errno::EEXIST) => {
                    self.remove_existing(&dir, &leaf, &name, false)?;
                    make()
                }
                r => r,
            }
            .map_err(|err| self.err(&name, format!("symlink: {err}")))?;
        } else if kind.is_hard_link() {
            let target = e
                .link_name_bytes()
                .ok_or_else(|| self.err(&name, "hardlink without a target"))?
                .into_owned();
            let tcomps = components(self.layer, &name, &target).map_err(|_| {
                self.err(
                    &name,
                    format!(
                        "hardlink target {:?} is outside the layer",
                        String::from_utf8_lossy(&target)
                    ),
                )
            })?;
            let Some((tlast, tparent)) = tcomps.split_last() else {
                return Err(self.err(&name, "hardlink to the layer root"));
            };
            let tdir = self
                .open_beneath(&join(tparent), &name)
                .map_err(|_| self.not_in_layer(&name, &target))?;
            let tleaf = cstr(self.layer, &name, tlast)?;
            let st = fstatat(&tdir, tleaf.as_c_str(), AtFlags::AT_SYMLINK_NOFOLLOW)
                .map_err(|_| self.not_in_layer(&name, &target))?;
            if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
                return Err(self.err(&name, "hardlink to a directory"));
            }
            if tcomps == comps {
                return self.skip_data(e, in_data, &name);
            }
            let make = || {
                linkat(
                    &tdir,
                    tleaf.as_c_str(),
                    &dir,
                    leaf.as_c_str(),
                    AtFlags::empty(),
                )
            };
            match make() {
                Err(Errno::EEXIST) => {
                    self.remove_existing(&dir, &leaf, &name, false)?;
                    make()
                }
                r => r,
            }
            .map_err(|err| self.err(&name, format!("link: {err}")))?;
            // A hardlink shares its target's inode and metadata.
            return self.skip_data(e, in_data, &name);
        } else if kind.is_character_special() || kind.is_block_special() || kind.is_fifo() {
            let (sflag, dev) = if kind.is_fifo() {
                (SFlag::S_IFIFO, 0)
            } else {
                if !self.is_root {
                    return Err(self.err(&name, "device nodes can only be created by root"));
                }
                let h = e.header();
                let major = h.device_major().ok().flatten().unwrap_or(0);
                let minor = h.device_minor().ok().flatten().unwrap_or(0);
                let sflag = if kind.is_character_special() {
                    SFlag::S_IFCHR
                } else {
                    SFlag::S_IFBLK
                };
                (sflag, makedev(major.into(), minor.into()))
            };
            let make = || mknodat(&dir, leaf.as_c_str(), sflag, perm, dev);
            match make() {
                Err(Errno::EEXIST) => {
                    self.remove_existing(&dir, &leaf, &name, false)?;
                    make()
                }
                r => r,
            }
            .map_err(|err| self.err(&name, format!("mknod: {err}")))?;
        } else {
            return Err(self.err(
                &name,
                format!("unsupported tar entry type {:?}", kind.as_byte() as char),
            ));
        }
        // Symlinks, devices and fifos: metadata by path, never following.
        self.set_meta_at(&dir, &leaf, &name, &meta, kind.is_symlink())?;
        self.skip_data(e, in_data, &name)
    }

    fn not_in_layer(&self, name: &str, target: &[u8]) -> Error {
        self.err(
            name,
            format!(
                "hardlink target {:?} is not in this layer",
                String::from_utf8_lossy(target)
            ),
        )
    }

    /// Reads and discards an entry's data (non-files normally have none),
    /// counting it against the layer's size limit.
    fn skip_data<R: Read>(
        &mut self,
        e: &mut tar::Entry<'_, R>,
        in_data: &Cell<bool>,
        name: &str,
    ) -> Result<()> {
        if e.size() == 0 {
            return Ok(());
        }
        let budget = self.limits.max_bytes.saturating_sub(self.done.size);
        if e.size() > budget {
            return Err(self.err(
                name,
                format!("entry data of {} bytes exceeds the free space", e.size()),
            ));
        }
        in_data.set(true);
        let r = io::copy(e, &mut io::sink());
        in_data.set(false);
        let n = r.map_err(|err| self.err(name, format!("reading: {err}")))?;
        self.done.size += n;
        Ok(())
    }

    fn copy<R: Read>(&mut self, src: &mut R, dst: &mut File, name: &str) -> Result<u64> {
        let mut total = 0u64;
        loop {
            let n = match src.read(&mut self.buf) {
                Ok(0) => return Ok(total),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::layer(self.layer, name, format!("reading: {e}"))),
            };
            dst.write_all(&self.buf[..n])
                .map_err(|e| Error::layer(self.layer, name, format!("writing: {e}")))?;
            total += n as u64;
        }
    }

    fn meta<R: Read>(&self, e: &mut tar::Entry<'_, R>, name: &str) -> Result<Meta> {
        let h = e.header();
        let bad =
            |what: &str, err: io::Error| self.err(name, format!("bad {what} in header: {err}"));
        let mut meta = Meta {
            uid: h.uid().map_err(|err| bad("uid", err))?,
            gid: h.gid().map_err(|err| bad("gid", err))?,
            mode: h.mode().map_err(|err| bad("mode", err))?,
            mtime: TimeSpec::new(h.mtime().map_err(|err| bad("mtime", err))? as i64, 0),
            xattrs: Vec::new(),
        };
        let Some(pax) = e
            .pax_extensions()
            .map_err(|err| self.err(name, format!("reading PAX records: {err}")))?
        else {
            return Ok(meta);
        };
        for rec in pax {
            let rec = rec.map_err(|err| self.err(name, format!("malformed PAX record: {err}")))?;
            let Ok(key) = rec.key() else { continue };
            if let Some(xname) = key.strip_prefix("SCHILY.xattr.") {
                if xname.starts_with("trusted.overlay.") {
                    return Err(self.err(
                        name,
                        format!("xattr {xname} refused: overlay metadata cannot come from a layer"),
                    ));
                }
                meta.xattrs.push((
                    cstr(self.layer, name, xname.as_bytes())?,
                    rec.value_bytes().to_vec(),
                ));
            } else if key == "mtime" {
                let v = rec.value().unwrap_or("");
                meta.mtime = parse_pax_time(v)
                    .ok_or_else(|| self.err(name, format!("bad PAX mtime {v:?}")))?;
            }
        }
        Ok(meta)
    }

    /// Ownership, mode and xattrs of an open file or directory, in the order
    /// that keeps them (chown clears set-id bits and file capabilities).
    fn set_meta_fd(&self, fd: &impl AsFd, name: &str, meta: &Meta) -> Result<()> {
        if self.is_root {
            fchown(
                fd,
                Some(Uid::from_raw(meta.uid as u32)),
                Some(Gid::from_raw(meta.gid as u32)),
            )
            .map_err(|err| self.err(name, format!("chown: {err}")))?;
        }
        fchmod(fd, Mode::from_bits_truncate(meta.mode & 0o7777))
            .map_err(|err| self.err(name, format!("chmod: {err}")))?;
        for (k, v) in &meta.xattrs {
            self.set_xattr(fd, None, name, &k.to_string_lossy(), v)?;
        }
        Ok(())
    }

    /// Metadata of a symlink, device or fifo named `leaf` in `dir`.
    fn set_meta_at(
        &self,
        dir: &OwnedFd,
        leaf: &CString,
        name: &str,
        meta: &Meta,
        symlink: bool,
    ) -> Result<()> {
        if self.is_root {
            fchownat(
                dir,
                leaf.as_c_str(),
                Some(Uid::from_raw(meta.uid as u32)),
                Some(Gid::from_raw(meta.gid as u32)),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map_err(|err| self.err(name, format!("chown: {err}")))?;
        }
        if !symlink {
            fchmodat(
                dir,
                leaf.as_c_str(),
                Mode::from_bits_truncate(meta.mode & 0o7777),
                FchmodatFlags::NoFollowSymlink,
            )
            .map_err(|err| self.err(name, format!("chmod: {err}")))?;
        }
        for (k, v) in &meta.xattrs {
            self.set_xattr(dir, Some(leaf), name, &k.to_string_lossy(), v)?;
        }
        utimensat(
            dir,
            leaf.as_c_str(),
            &meta.mtime,
            &meta.mtime,
            UtimensatFlags::NoFollowSymlink,
        )
        .map_err(|err| self.err(name, format!("utimensat: {err}")))
    }

    /// Sets an xattr on `fd` itself or, with `leaf`, on that entry of the
    /// directory `fd` without following it.
    fn set_xattr(
        &self,
        fd: &impl AsFd,
        leaf: Option<&CString>,
        name: &str,
        key: &str,
        value: &[u8],
    ) -> Result<()> {
        let key_c = cstr(self.layer, name, key.as_bytes())?;
        let r = match leaf {
            None => sys::fsetxattr(fd.as_fd(), &key_c, value),
            Some(l) => {
                // The magic link names the directory; the leaf itself is not followed.
                let mut path = format!("/proc/self/fd/{}/", fd.as_fd().as_raw_fd()).into_bytes();
                path.extend_from_slice(l.as_bytes());
                sys::lsetxattr(&cstr(self.layer, name, &path)?, &key_c, value)
            }
        };
        r.map_err(|err| self.err(name, format!("setting xattr {key}: {err}")))
    }

    /// Opens the directory `rel` beneath the root, never following a symlink.
    fn open_beneath(&self, rel: &Path, name: &str) -> Result<OwnedFd> {
        open_dir_beneath(&self.root, rel).map_err(|err| self.explain(rel, name, err))
    }

    /// Why `rel` could not be opened as a directory beneath the root: names
    /// the symlink or non-directory in the way.
    fn explain(&self, rel: &Path, name: &str, err: Errno) -> Error {
        if matches!(err, Errno::ELOOP | Errno::EXDEV | Errno::ENOTDIR) {
            let mut prefix = PathBuf::new();
            for c in rel.components() {
                prefix.push(c);
                match fstatat(&self.root, &prefix, AtFlags::AT_SYMLINK_NOFOLLOW) {
                    Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFLNK => {
                        return self.err(
                            name,
                            format!(
                                "path goes through the symlink {} (a layer may not write through links)",
                                prefix.display()
                            ),
                        );
                    }
                    Ok(st) if st.st_mode & libc::S_IFMT != libc::S_IFDIR => {
                        return self.err(name, format!("{} is not a directory", prefix.display()));
                    }
                    _ => {}
                }
            }
        }
        self.err(name, format!("open parent {}: {err}", rel.display()))
    }

    /// The directory that will hold the entry, created (0755) when missing.
    fn parent(&mut self, comps: &[Vec<u8>], name: &str) -> Result<OwnedFd> {
        if let Some((cached, fd)) = &self.parent_cache
            && cached.as_slice() == comps
        {
            return fd.try_clone().map_err(|err| Error::io("dup", name, err));
        }
        let fd = match self.open_beneath(&join(comps), name) {
            Ok(fd) => fd,
            Err(_) => {
                // Create missing directories one by one.
                let mut fd = self
                    .root
                    .try_clone()
                    .map_err(|err| Error::io("dup", name, err))?;
                for c in comps {
                    let c = cstr(self.layer, name, c)?;
                    match mkdirat(&fd, c.as_c_str(), Mode::from_bits_truncate(0o755)) {
                        Ok(()) | Err(Errno::EEXIST) => {}
                        Err(err) => return Err(self.err(name, format!("mkdir parent: {err}"))),
                    }
                    fd = open_dir_beneath(&fd, Path::new(OsStr::from_bytes(c.as_bytes())))
                        .map_err(|err| self.explain(&join(comps), name, err))?;
                }
                fd
            }
        };
        let dup = fd.try_clone().map_err(|err| Error::io("dup", name, err))?;
        self.parent_cache = Some((comps.to_vec(), dup));
        Ok(fd)
    }

    /// Removes an existing `leaf` of `dir` so a new entry can take its name.
    /// With `keep_dir`, an existing directory is kept and `true` returned.
    fn remove_existing(
        &mut self,
        dir: &OwnedFd,
        leaf: &CString,
        name: &str,
        keep_dir: bool,
    ) -> Result<bool> {
        let st = match fstatat(dir, leaf.as_c_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::ENOENT) => return Ok(false),
            Err(err) => return Err(self.err(name, format!("stat existing: {err}"))),
        };
        if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
            if keep_dir {
                return Ok(true);
            }
            // Cached descriptors may point into the removed tree.
            self.parent_cache = None;
            let path = format!(
                "/proc/self/fd/{}/{}",
                dir.as_raw_fd(),
                leaf.to_string_lossy()
            );
            std::fs::remove_dir_all(&path)
                .map_err(|err| self.err(name, format!("replacing a directory: {err}")))?;
        } else {
            unlinkat(dir, leaf.as_c_str(), UnlinkatFlags::NoRemoveDir)
                .map_err(|err| self.err(name, format!("replacing: {err}")))?;
        }
        Ok(false)
    }

    /// Directory mtimes, deepest first, once their contents are complete.
    fn set_dir_times(&mut self) -> Result<()> {
        let mut times = std::mem::take(&mut self.dir_times);
        times.sort_by_key(|(p, _)| std::cmp::Reverse(p.components().count()));
        for (path, t) in times {
            let name = path.display().to_string();
            let fd = if path.as_os_str().is_empty() {
                self.root
                    .try_clone()
                    .map_err(|err| Error::io("dup", &name, err))?
            } else {
                match open_dir_beneath(&self.root, &path) {
                    Ok(fd) => fd,
                    // Replaced by a later entry: nothing to do.
                    Err(_) => continue,
                }
            };
            nix::sys::stat::futimens(&fd, &t, &t)
                .map_err(|err| self.err(&name, format!("futimens: {err}")))?;
        }
        Ok(())
    }
}

/// Opens the directory `rel` beneath `root` without following any symlink
/// or leaving `root` (openat2 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS).
pub fn open_dir_beneath(root: &impl AsFd, rel: &Path) -> nix::Result<OwnedFd> {
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    openat2(
        root,
        rel,
        OpenHow::new()
            .flags(OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW)
            .resolve(
                ResolveFlag::RESOLVE_BENEATH
                    | ResolveFlag::RESOLVE_NO_SYMLINKS
                    | ResolveFlag::RESOLVE_NO_MAGICLINKS
                    | ResolveFlag::RESOLVE_NO_XDEV,
            ),
    )
}

/// An extended attribute of `path` itself (not of a symlink's target);
/// `None` when it is not set.
pub fn get_xattr(path: &Path, name: &str) -> Result<Option<Vec<u8>>> {
    let p = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| Error::Other(format!("NUL byte in {}", path.display())))?;
    let n = CString::new(name).map_err(|_| Error::Other(format!("NUL byte in {name:?}")))?;
    sys::lgetxattr(&p, &n)
        .map_err(|e| Error::sys("lgetxattr", format!("{} {name}", path.display()), e))
}

/// Parses a PAX time, `SECONDS[.FRACTION]`.
fn parse_pax_time(v: &str) -> Option<TimeSpec> {
    let (secs, frac) = v.split_once('.').unwrap_or((v, ""));
    let secs: i64 = secs.parse().ok()?;
    let mut nanos = 0i64;
    for (i, c) in frac.bytes().take(9).enumerate() {
        if !c.is_ascii_digit() {
            return None;
        }
        nanos += (c - b'0') as i64 * 10i64.pow(8 - i as u32);
    }
    let nanos = if secs < 0 && nanos > 0 { -nanos } else { nanos };
    Some(TimeSpec::new(secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_refuse_escapes() {
        assert!(components("l", "e", b"/etc/passwd").is_err());
        assert!(components("l", "e", b"../x").is_err());
        assert!(components("l", "e", b"a/../../x").is_err());
        assert_eq!(
            components("l", "e", b"./a//b/./c/").unwrap(),
            vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]
        );
        assert!(components("l", "e", b"./").unwrap().is_empty());
    }

    #[test]
    fn pax_times() {
        let t = parse_pax_time("1700000000.5").unwrap();
        assert_eq!((t.tv_sec(), t.tv_nsec()), (1700000000, 500_000_000));
        assert!(parse_pax_time("x").is_none());
    }
}
