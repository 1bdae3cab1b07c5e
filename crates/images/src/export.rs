//! A directory in overlay form (a snapshot or a container's upper layer)
//! written back as a layer tar: overlay whiteouts (0:0 character devices)
//! become `.wh.NAME` entries and opaque directories get `.wh..wh..opq`, as
//! `docker save`/`commit` layers carry them. Hardlinks within the directory
//! stay hardlinks; xattrs other than overlay's own travel as PAX records.

use std::collections::HashMap;
use std::ffi::CString;
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use crate::digest::{Digest, HashingWriter};
use crate::error::{Error, IoContext, Result};
use crate::sys;
use crate::unpack::{OPAQUE_MARKER, OVERLAY_OPAQUE_XATTR, WHITEOUT_PREFIX};

/// Writes `dir` as a layer tar to `out`; returns its diff_id and size.
pub fn export_diff(dir: &Path, out: impl Write) -> Result<(Digest, u64)> {
    export_diff_excluding(dir, out, &|_| false)
}

/// What [`append_path`] and [`export_diff_excluding`] leave out or change.
pub struct TreeOptions<'a> {
    /// Entry names (relative, no trailing `/`) to leave out, with what is beneath.
    pub exclude: &'a dyn Fn(&str) -> bool,
    /// Owner (uid, gid) given to every entry instead of the file's.
    pub owner: Option<(u64, u64)>,
}

/// Like [`export_diff`], leaving out the entries `exclude` names (for a
/// container's layer: the mount points its runtime made).
pub fn export_diff_excluding(
    dir: &Path,
    out: impl Write,
    exclude: &dyn Fn(&str) -> bool,
) -> Result<(Digest, u64)> {
    let mut b = tar::Builder::new(HashingWriter::new(out));
    b.follow_symlinks(false);
    let mut links = HashMap::new();
    let opts = TreeOptions {
        exclude,
        owner: None,
    };
    walk(&mut b, dir, "", &mut links, &opts)?;
    let w = b
        .into_inner()
        .map_err(|e| Error::io("write", "layer tar", e))?;
    let (digest, size, mut inner) = w.finish();
    inner
        .flush()
        .map_err(|e| Error::io("write", "layer tar", e))?;
    Ok((digest, size))
}

fn xattrs(path: &Path) -> Result<Vec<(String, Vec<u8>)>> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| Error::Other(format!("NUL byte in {}", path.display())))?;
    let names =
        sys::llistxattr(&c).map_err(|e| Error::sys("llistxattr", path.display().to_string(), e))?;
    let mut out = Vec::new();
    for n in names {
        let name = String::from_utf8_lossy(&n).into_owned();
        if name.starts_with("trusted.overlay.") {
            continue;
        }
        let nc = CString::new(n).expect("no NUL inside a listed name");
        if let Some(v) = sys::lgetxattr(&c, &nc)
            .map_err(|e| Error::sys("lgetxattr", format!("{} {name}", path.display()), e))?
        {
            out.push((name, v));
        }
    }
    Ok(out)
}

fn header_for(m: &fs::Metadata, kind: tar::EntryType) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(m.mode() & 0o7777);
    h.set_uid(m.uid().into());
    h.set_gid(m.gid().into());
    h.set_mtime(m.mtime().max(0) as u64);
    h.set_size(0);
    h
}

fn append<W: Write>(
    b: &mut tar::Builder<W>,
    h: &mut tar::Header,
    name: &str,
    data: impl std::io::Read,
) -> Result<()> {
    b.append_data(h, name, data)
        .map_err(|e| Error::io("write tar entry", name, e))
}

/// Appends the file or directory tree at `path` to `b`, its entries named
/// `name` and `name/...`, never following a symlink; overlay whiteouts
/// become `.wh.` entries.
pub fn append_path<W: Write>(
    b: &mut tar::Builder<W>,
    path: &Path,
    name: &str,
    opts: &TreeOptions<'_>,
) -> Result<()> {
    let mut links = HashMap::new();
    let (prefix, fname) = match name.rsplit_once('/') {
        Some((p, f)) => (format!("{p}/"), f.to_string()),
        None => (String::new(), name.to_string()),
    };
    append_entry(b, path, &prefix, &fname, &mut links, opts)
}

fn walk<W: Write>(
    b: &mut tar::Builder<W>,
    dir: &Path,
    prefix: &str,
    links: &mut HashMap<(u64, u64), String>,
    opts: &TreeOptions<'_>,
) -> Result<()> {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .ctx("readdir", dir)?
        .collect::<std::io::Result<_>>()
        .ctx("readdir", dir)?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let file_name = e.file_name();
        append_entry(
            b,
            &e.path(),
            prefix,
            &file_name.to_string_lossy(),
            links,
            opts,
        )?;
    }
    Ok(())
}

fn append_entry<W: Write>(
    b: &mut tar::Builder<W>,
    path: &Path,
    prefix: &str,
    fname: &str,
    links: &mut HashMap<(u64, u64), String>,
    opts: &TreeOptions<'_>,
) -> Result<()> {
    let name = format!("{prefix}{fname}");
    if (opts.exclude)(&name) {
        return Ok(());
    }
    let m = fs::symlink_metadata(path).ctx("stat", path)?;
    let header_for = |m: &fs::Metadata, kind| {
        let mut h = header_for(m, kind);
        if let Some((uid, gid)) = opts.owner {
            h.set_uid(uid);
            h.set_gid(gid);
        }
        h
    };
    let ft = m.file_type();
    if ft.is_char_device() && m.rdev() == 0 {
        let mut h = header_for(&m, tar::EntryType::Regular);
        append(
            b,
            &mut h,
            &format!("{prefix}{WHITEOUT_PREFIX}{fname}"),
            std::io::empty(),
        )?;
        return Ok(());
    }
    if ft.is_socket() {
        // Sockets cannot be stored in a tar; Docker skips them too.
        return Ok(());
    }
    let x = xattrs(path)?;
    if !x.is_empty() {
        b.append_pax_extensions(
            x.iter()
                .map(|(k, v)| (format!("SCHILY.xattr.{k}"), v.as_slice()))
                .collect::<Vec<_>>()
                .iter()
                .map(|(k, v)| (k.as_str(), *v)),
        )
        .map_err(|e| Error::io("write tar entry", &name, e))?;
    }
    if ft.is_dir() {
        let mut h = header_for(&m, tar::EntryType::Directory);
        append(b, &mut h, &format!("{name}/"), std::io::empty())?;
        let opaque = crate::unpack::get_xattr(path, OVERLAY_OPAQUE_XATTR)?;
        if opaque.as_deref() == Some(b"y") {
            let mut h = header_for(&m, tar::EntryType::Regular);
            h.set_mode(0o644);
            append(
                b,
                &mut h,
                &format!("{name}/{OPAQUE_MARKER}"),
                std::io::empty(),
            )?;
        }
        walk(b, path, &format!("{name}/"), links, opts)?;
    } else if ft.is_symlink() {
        let target = fs::read_link(path).ctx("readlink", path)?;
        let mut h = header_for(&m, tar::EntryType::Symlink);
        b.append_link(&mut h, &name, &target)
            .map_err(|e| Error::io("write tar entry", &name, e))?;
    } else if ft.is_file() {
        if m.nlink() > 1 {
            if let Some(first) = links.get(&(m.dev(), m.ino())) {
                let mut h = header_for(&m, tar::EntryType::Link);
                b.append_link(&mut h, &name, first)
                    .map_err(|e| Error::io("write tar entry", &name, e))?;
                return Ok(());
            }
            links.insert((m.dev(), m.ino()), name.clone());
        }
        let mut h = header_for(&m, tar::EntryType::Regular);
        h.set_size(m.len());
        let f = fs::File::open(path).ctx("open", path)?;
        append(b, &mut h, &name, f)?;
    } else {
        let kind = if ft.is_char_device() {
            tar::EntryType::Char
        } else if ft.is_block_device() {
            tar::EntryType::Block
        } else {
            tar::EntryType::Fifo
        };
        let mut h = header_for(&m, kind);
        let (major, minor) = (libc::major(m.rdev()), libc::minor(m.rdev()));
        h.set_device_major(major)
            .map_err(|e| Error::io("tar header", &name, e))?;
        h.set_device_minor(minor)
            .map_err(|e| Error::io("tar header", &name, e))?;
        append(b, &mut h, &name, std::io::empty())?;
    }
    Ok(())
}
