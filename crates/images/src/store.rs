//! The image store under one root directory:
//!
//! ```text
//! <root>/capsa.db                  SQLite metadata (WAL)
//! <root>/blobs/sha256/<hex>        content-addressed blobs (configs, manifests, layers)
//! <root>/snapshots/<chain hex>/fs  each layer unpacked once, in overlay form
//! <root>/rootfs/<id>/              prepared container root filesystems
//! <root>/tmp/                      work in progress; garbage when no command runs
//! <root>/lock                      flock: shared while adding, exclusive while deleting
//! <root>/db.lock                   flock: opening the database takes turns
//! ```
//!
//! Files become visible only complete (written in `tmp/`, then renamed) and
//! before the database rows that reference them; deletion removes the rows
//! first. So a command killed at any moment leaves either unreferenced
//! complete files (reused by the next load, removed by the next garbage
//! collection) or garbage in `tmp/` (removed by the next command that finds
//! the store idle).

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use rusqlite::params;

use crate::db::{self, Db, ImageRow, LayerRow};
use crate::digest::{Digest, HashingWriter};
use crate::error::{Error, IoContext, Result};
use crate::reference::Reference;

/// The store root of root: `/var/lib/capsa`.
pub const SYSTEM_ROOT: &str = "/var/lib/capsa";

/// The default store root: `/var/lib/capsa` for root, `$XDG_DATA_HOME/capsa`
/// (or `~/.local/share/capsa`) for other users.
pub fn default_root() -> PathBuf {
    if nix::unistd::geteuid().is_root() {
        return PathBuf::from(SYSTEM_ROOT);
    }
    match std::env::var_os("XDG_DATA_HOME") {
        Some(d) if !d.is_empty() => PathBuf::from(d).join("capsa"),
        _ => {
            let home = std::env::var_os("HOME").unwrap_or_else(|| "/".into());
            PathBuf::from(home).join(".local/share/capsa")
        }
    }
}

/// An open image store.
pub struct Store {
    root: PathBuf,
    db: Db,
}

/// A held store lock; released when dropped.
pub struct StoreLock {
    _lock: Flock<File>,
}

/// A private directory under `<root>/tmp` for one command's work in
/// progress, removed when dropped.
pub struct Workspace {
    path: PathBuf,
}

impl Workspace {
    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Workspace {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// One removal step, as `docker rmi` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Removed {
    /// A tag or digest reference was removed (familiar form).
    Untagged(String),
    /// An image (its id) or a layer (its chain ID) was deleted.
    Deleted(String),
}

/// What a garbage collection removed.
#[derive(Clone, Debug, Default)]
pub struct Collected {
    /// Chain IDs of the layers removed.
    pub layers: Vec<String>,
    /// Bytes of those layers' contents.
    pub bytes: u64,
}

/// A layer made ready for a new image.
#[derive(Clone, Debug)]
pub struct NewLayer {
    /// The blob (as stored) the layer came from.
    pub blob: Digest,
    /// The uncompressed digest.
    pub diff_id: Digest,
    /// The chain ID (names the snapshot).
    pub chain_id: Digest,
    /// Bytes of file contents.
    pub size: u64,
}

/// An image whose blobs and snapshots are in the store, ready to be recorded.
#[derive(Clone, Debug)]
pub struct NewImage {
    /// The config blob's digest: the image id.
    pub id: Digest,
    /// The manifest blob's digest.
    pub manifest: Digest,
    /// The config's `created`.
    pub created: String,
    /// The layers, bottom first.
    pub layers: Vec<NewLayer>,
    /// References to point at the image.
    pub tags: Vec<Reference>,
    /// `name@digest` references the image was pulled or pushed as (Docker's RepoDigests).
    pub repo_digests: Vec<Reference>,
}

/// A recorded image and the tags that moved to it.
#[derive(Clone, Debug)]
pub struct Committed {
    /// The image id.
    pub id: Digest,
    /// Each tag given, with the image it was taken from, if any.
    pub tags: Vec<(Reference, Option<String>)>,
}

/// Bytes of an image's layers shared with other images, and its own.
pub type SharedUnique = (u64, u64);

static WORKSPACES: AtomicU64 = AtomicU64::new(0);

impl Store {
    /// Opens the store at `root`, creating it if needed. When no other
    /// command is changing the store, leftovers of killed commands in
    /// `tmp/` are removed.
    pub fn open(root: &Path) -> Result<Store> {
        use std::os::unix::fs::PermissionsExt;
        fs::create_dir_all(root).ctx("mkdir", root)?;
        // Absolute, so that mounts and chdir never depend on the caller's cwd.
        let root = &fs::canonicalize(root).ctx("canonicalize", root)?;
        // Image contents (set-id binaries included) are for root only:
        // the store can be traversed but not listed, its parts not at all.
        for (d, mode) in [
            ("", 0o711),
            ("blobs", 0o700),
            ("blobs/sha256", 0o700),
            ("snapshots", 0o700),
            ("rootfs", 0o711),
            ("tmp", 0o700),
        ] {
            let p = root.join(d);
            fs::create_dir_all(&p).ctx("mkdir", &p)?;
            let current = fs::metadata(&p).ctx("stat", &p)?.permissions().mode() & 0o7777;
            if current != mode {
                fs::set_permissions(&p, fs::Permissions::from_mode(mode)).ctx("chmod", &p)?;
            }
        }
        let db_path = root.join("capsa.db");
        // Opening sets WAL mode and creates the schema; SQLite answers a
        // concurrent first open with SQLITE_BUSY without waiting, so opens
        // take turns.
        let init = root.join("db.lock");
        let f = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&init)
            .ctx("open", &init)?;
        let turn = Flock::lock(f, FlockArg::LockExclusive)
            .map_err(|(_, e)| Error::sys("flock", init.display().to_string(), e))?;
        let db = Db::open(&db_path)?;
        drop(turn);
        fs::set_permissions(&db_path, fs::Permissions::from_mode(0o600)).ctx("chmod", &db_path)?;
        let store = Store {
            root: root.to_path_buf(),
            db,
        };
        if let Some(_idle) = store.try_lock_exclusive()? {
            store.clean_tmp()?;
        }
        Ok(store)
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The metadata database.
    pub fn db(&self) -> &Db {
        &self.db
    }

    fn lock_file(&self) -> Result<File> {
        let p = self.root.join("lock");
        fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&p)
            .ctx("open", &p)
    }

    fn flock(&self, arg: FlockArg) -> Result<Option<StoreLock>> {
        let f = self.lock_file()?;
        match Flock::lock(f, arg) {
            Ok(l) => Ok(Some(StoreLock { _lock: l })),
            Err((_, Errno::EWOULDBLOCK)) => Ok(None),
            Err((_, e)) => Err(Error::sys(
                "flock",
                self.root.join("lock").display().to_string(),
                e,
            )),
        }
    }

    /// Takes the store lock shared: for commands that add to the store.
    pub fn lock_shared(&self) -> Result<StoreLock> {
        self.flock(FlockArg::LockShared)
            .map(|l| l.expect("blocking flock returned"))
    }

    /// Takes the store lock exclusively: for commands that delete files.
    pub fn lock_exclusive(&self) -> Result<StoreLock> {
        self.flock(FlockArg::LockExclusive)
            .map(|l| l.expect("blocking flock returned"))
    }

    fn try_lock_exclusive(&self) -> Result<Option<StoreLock>> {
        self.flock(FlockArg::LockExclusiveNonblock)
    }

    fn clean_tmp(&self) -> Result<()> {
        let tmp = self.root.join("tmp");
        for e in fs::read_dir(&tmp).ctx("readdir", &tmp)? {
            let p = e.ctx("readdir", &tmp)?.path();
            let r = if p.is_dir() && !p.is_symlink() {
                fs::remove_dir_all(&p)
            } else {
                fs::remove_file(&p)
            };
            match r {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("remove", &p, e)),
            }
        }
        Ok(())
    }

    /// A new private work directory under `<root>/tmp`. Callers hold the
    /// store lock (shared or exclusive) while they use it.
    pub fn workspace(&self) -> Result<Workspace> {
        let (secs, nanos) = crate::time::now();
        let path = self.root.join("tmp").join(format!(
            "{}-{}-{}{}",
            std::process::id(),
            WORKSPACES.fetch_add(1, Ordering::Relaxed),
            secs,
            nanos
        ));
        fs::create_dir(&path).ctx("mkdir", &path)?;
        Ok(Workspace { path })
    }

    /// Where the blob `digest` is stored.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.hex())
    }

    /// Whether the blob is in the store.
    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// Opens a stored blob.
    pub fn open_blob(&self, digest: &Digest) -> Result<File> {
        let p = self.blob_path(digest);
        File::open(&p).ctx("open blob", &p)
    }

    /// Reads a stored blob of at most `max` bytes into memory, verifying its digest.
    pub fn read_blob(&self, digest: &Digest, max: u64) -> Result<Vec<u8>> {
        let mut data = Vec::new();
        self.open_blob(digest)?
            .take(max + 1)
            .read_to_end(&mut data)
            .ctx("read blob", self.blob_path(digest))?;
        if data.len() as u64 > max {
            return Err(Error::Other(format!(
                "blob {digest} is larger than the {max} bytes expected"
            )));
        }
        let actual = Digest::of(&data);
        if &actual != digest {
            return Err(Error::DigestMismatch {
                what: format!("stored blob {}", self.blob_path(digest).display()),
                expected: digest.to_string(),
                actual: actual.to_string(),
            });
        }
        Ok(data)
    }

    /// Writes `data` as a blob (through a temporary file and a rename).
    pub fn put_blob_bytes(&self, ws: &Workspace, data: &[u8]) -> Result<Digest> {
        let digest = Digest::of(data);
        if self.has_blob(&digest) {
            return Ok(digest);
        }
        let tmp = ws.path().join(format!("blob-{}", digest.hex()));
        fs::write(&tmp, data).ctx("write", &tmp)?;
        self.adopt_blob(&tmp, &digest)?;
        Ok(digest)
    }

    /// Copies a stream into a temporary file of `ws`, verifying that its
    /// digest is `expected` when given; a mismatch removes the file.
    pub fn receive_blob(
        &self,
        ws: &Workspace,
        src: &mut dyn Read,
        expected: Option<&Digest>,
    ) -> Result<(PathBuf, Digest, u64)> {
        let tmp = ws.path().join(format!(
            "incoming-{}",
            WORKSPACES.fetch_add(1, Ordering::Relaxed)
        ));
        let file = File::create(&tmp).ctx("create", &tmp)?;
        let mut w = HashingWriter::new(io::BufWriter::with_capacity(1 << 20, file));
        io::copy(src, &mut w).ctx("write", &tmp)?;
        let (digest, size, mut inner) = w.finish();
        inner.flush().ctx("write", &tmp)?;
        drop(inner);
        if let Some(e) = expected
            && e != &digest
        {
            let _ = fs::remove_file(&tmp);
            return Err(Error::DigestMismatch {
                what: format!("blob {e}"),
                expected: e.to_string(),
                actual: digest.to_string(),
            });
        }
        Ok((tmp, digest, size))
    }

    /// Moves a complete, verified temporary file into the blob store under
    /// `digest` (a blob already there is kept).
    pub fn adopt_blob(&self, tmp: &Path, digest: &Digest) -> Result<()> {
        let dst = self.blob_path(digest);
        if dst.exists() {
            let _ = fs::remove_file(tmp);
            return Ok(());
        }
        fs::rename(tmp, &dst).ctx("rename blob into place", &dst)
    }

    /// The directory of the snapshot of `chain_id`; its contents are in `fs/`.
    pub fn snapshot_dir(&self, chain_id: &Digest) -> PathBuf {
        self.root.join("snapshots").join(chain_id.hex())
    }

    /// Whether the snapshot of `chain_id` exists (snapshots appear only complete).
    pub fn has_snapshot(&self, chain_id: &Digest) -> bool {
        self.snapshot_dir(chain_id).join("fs").is_dir()
    }

    /// Moves a complete unpacked snapshot directory (holding `fs/`) into
    /// place. If another command made the same snapshot first, ours is dropped.
    pub fn adopt_snapshot(&self, tmp: &Path, chain_id: &Digest) -> Result<()> {
        let dst = self.snapshot_dir(chain_id);
        match fs::rename(tmp, &dst) {
            Ok(()) => Ok(()),
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOTEMPTY) | Some(libc::EEXIST)) => {
                let _ = fs::remove_dir_all(tmp);
                Ok(())
            }
            Err(e) => Err(Error::io("rename snapshot into place", &dst, e)),
        }
    }

    /// Bytes of file contents in a snapshot (each inode counted once), for
    /// snapshots found in place without a layer record.
    pub fn snapshot_size(&self, chain_id: &Digest) -> Result<u64> {
        dir_size(&self.snapshot_dir(chain_id).join("fs"))
    }

    /// Records a new image whose blobs and snapshots are in place, moving
    /// its tags to it, in one transaction.
    pub fn commit(&self, img: &NewImage, config_blob: &Digest) -> Result<Committed> {
        let (now, _) = crate::time::now();
        let tx = self.db.write()?;
        let e = |e| self.db.err(e);
        let size: u64 = img.layers.iter().map(|l| l.size).sum();
        let mut parent: Option<String> = None;
        for l in &img.layers {
            db::insert_layer(
                &tx,
                &LayerRow {
                    chain_id: l.chain_id.to_string(),
                    diff_id: l.diff_id.to_string(),
                    parent: parent.clone(),
                    size: l.size as i64,
                },
            )
            .map_err(e)?;
            parent = Some(l.chain_id.to_string());
        }
        let created_unix = crate::time::parse_rfc3339(&img.created).unwrap_or(0);
        let inserted = tx
            .execute(
                "INSERT OR IGNORE INTO images (id, manifest, created, created_unix, size, added_unix)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![img.id.as_str(), img.manifest.as_str(), img.created, created_unix, size as i64, now],
            )
            .map_err(e)?;
        if inserted == 1 {
            for (i, l) in img.layers.iter().enumerate() {
                tx.execute(
                    "INSERT INTO image_layers (image, idx, chain_id) VALUES (?1, ?2, ?3)",
                    params![img.id.as_str(), i as i64, l.chain_id.as_str()],
                )
                .map_err(e)?;
            }
            let mut blobs: Vec<&str> = vec![img.manifest.as_str(), config_blob.as_str()];
            blobs.extend(img.layers.iter().map(|l| l.blob.as_str()));
            for b in blobs {
                tx.execute(
                    "INSERT OR IGNORE INTO image_blobs (image, digest) VALUES (?1, ?2)",
                    params![img.id.as_str(), b],
                )
                .map_err(e)?;
            }
        }
        db::insert_repo_digests(&tx, img.id.as_str(), &img.repo_digests).map_err(e)?;
        let mut tags = Vec::new();
        for t in &img.tags {
            let name = t.to_string();
            let old: Option<String> = tx
                .query_row("SELECT image FROM tags WHERE name = ?1", [&name], |r| {
                    r.get(0)
                })
                .ok();
            tx.execute(
                "INSERT OR REPLACE INTO tags (name, image, tagged_unix) VALUES (?1, ?2, ?3)",
                params![name, img.id.as_str(), now],
            )
            .map_err(e)?;
            tags.push((t.clone(), old.filter(|o| o != img.id.as_str())));
        }
        tx.commit().map_err(e)?;
        Ok(Committed {
            id: img.id.clone(),
            tags,
        })
    }

    /// Records `name@digest` references of a stored image (after a push).
    pub fn add_repo_digests(&self, id: &Digest, refs: &[Reference]) -> Result<()> {
        let tx = self.db.write()?;
        db::insert_repo_digests(&tx, id.as_str(), refs).map_err(|e| self.db.err(e))?;
        tx.commit().map_err(|e| self.db.err(e))
    }

    /// Finds an image by name, `name:tag`, `name@digest`, full id or id
    /// prefix, as Docker does.
    pub fn resolve(&self, name: &str) -> Result<ImageRow> {
        self.lookup(name).map(|(img, _)| img)
    }

    /// Like [`Store::resolve`], also saying whether `name` was a reference
    /// (its normalised form) or an id.
    pub fn lookup(&self, name: &str) -> Result<(ImageRow, Option<Reference>)> {
        let no_such = || Error::NoSuchImage(name.to_string());
        let hex = name.strip_prefix("sha256:").unwrap_or(name);
        if crate::digest::is_sha256_hex(hex) {
            let img = self
                .db
                .image(&format!("sha256:{hex}"))?
                .ok_or_else(no_such)?;
            return Ok((img, None));
        }
        let parsed = Reference::parse(name).map(Reference::with_default_tag);
        if let Ok(r) = &parsed {
            let found = if r.digest().is_some() {
                self.db.repo_digest(&r.to_string())?
            } else {
                self.db.tag(&r.to_string())?
            };
            if let Some(id) = found {
                let img = self.db.image(&id)?.ok_or_else(no_such)?;
                return Ok((img, Some(r.clone())));
            }
        }
        let is_hex = !hex.is_empty() && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if is_hex {
            let ids = self.db.images_with_prefix(&format!("sha256:{hex}"))?;
            match ids.as_slice() {
                [id] => return Ok((self.db.image(id)?.ok_or_else(no_such)?, None)),
                [] => {}
                _ => {
                    return Err(Error::Other(format!(
                        "ambiguous image id prefix {name}: it matches {} images",
                        ids.len()
                    )));
                }
            }
        }
        match parsed {
            Ok(r) => Err(Error::NoSuchImage(r.familiar())),
            Err(_) if is_hex => Err(no_such()),
            Err(e) => Err(e),
        }
    }

    /// Points `target` (normalised, `:latest` added) at the image `source` names.
    pub fn tag(&self, source: &str, target: &str) -> Result<Reference> {
        let img = self.resolve(source)?;
        let r = Reference::parse(target)?.with_default_tag();
        if r.digest().is_some() {
            return Err(Error::InvalidReference {
                reference: target.to_string(),
                reason: "refusing to create a tag with a digest reference".into(),
            });
        }
        let (now, _) = crate::time::now();
        let tx = self.db.write()?;
        tx.execute(
            "INSERT OR REPLACE INTO tags (name, image, tagged_unix) VALUES (?1, ?2, ?3)",
            params![r.to_string(), img.id, now],
        )
        .map_err(|e| self.db.err(e))?;
        tx.commit().map_err(|e| self.db.err(e))?;
        Ok(r)
    }

    /// The familiar forms of an image's tags and repo digests.
    pub fn references_of(&self, id: &str) -> Result<(Vec<String>, Vec<String>)> {
        let fam = |v: Vec<String>| {
            v.into_iter()
                .map(|n| Reference::parse(&n).map(|r| r.familiar()).unwrap_or(n))
                .collect::<Vec<_>>()
        };
        Ok((fam(self.db.tags_of(id)?), fam(self.db.repo_digests_of(id)?)))
    }

    /// `docker rmi NAME` for one name: untags, and deletes the image when no
    /// reference is left (or when named by id). Refuses images used by a
    /// prepared rootfs, and ids with several repositories, unless `force`.
    /// Callers hold the exclusive store lock.
    pub fn remove(&self, name: &str, force: bool) -> Result<Vec<Removed>> {
        let (img, via) = self.lookup(name)?;
        let id = Digest::parse(&img.id)?;
        let short = id.short().to_string();
        let tags = self.db.tags_of(&img.id)?;
        let digests = self.db.repo_digests_of(&img.id)?;
        let users = self.db.rootfs_of_image(&img.id)?;
        let mut out = Vec::new();
        let fam = |n: &str| {
            Reference::parse(n)
                .map(|r| r.familiar())
                .unwrap_or(n.to_string())
        };
        let tx = self.db.write()?;
        let e = |e| self.db.err(e);
        if let Some(r) = via {
            let full = r.to_string();
            let others = tags.len() + digests.len() - 1;
            if others == 0 && !users.is_empty() && !force {
                return Err(Error::Conflict(format!(
                    "unable to remove repository reference {:?} (must force) - container {} is using its referenced image {short}",
                    name, users[0]
                )));
            }
            let table = if r.digest().is_some() {
                "repo_digests"
            } else {
                "tags"
            };
            tx.execute(&format!("DELETE FROM {table} WHERE name = ?1"), [&full])
                .map_err(e)?;
            out.push(Removed::Untagged(fam(&full)));
            if others > 0 {
                tx.commit().map_err(e)?;
                return Ok(out);
            }
        } else {
            let repos: HashSet<String> = tags
                .iter()
                .chain(&digests)
                .filter_map(|t| Reference::parse(t).ok().map(|r| r.name()))
                .collect();
            if repos.len() > 1 && !force {
                return Err(Error::Conflict(format!(
                    "unable to delete {short} (must be forced) - image is referenced in multiple repositories"
                )));
            }
            if !users.is_empty() && !force {
                return Err(Error::Conflict(format!(
                    "unable to delete {short} (must be forced) - image is being used by stopped container {}",
                    users[0]
                )));
            }
            for t in tags.iter().chain(&digests) {
                out.push(Removed::Untagged(fam(t)));
            }
        }
        tx.execute("DELETE FROM images WHERE id = ?1", [&img.id])
            .map_err(e)?;
        tx.commit().map_err(e)?;
        out.push(Removed::Deleted(img.id.clone()));
        let collected = self.collect_garbage()?;
        out.extend(collected.layers.into_iter().map(Removed::Deleted));
        Ok(out)
    }

    /// Deletes an image record whatever references it (`image prune`);
    /// returns the untagged references. Files go in [`Store::collect_garbage`].
    pub fn delete_image(&self, id: &str) -> Result<Vec<Removed>> {
        let (tags, digests) = self.references_of(id)?;
        let tx = self.db.write()?;
        tx.execute("DELETE FROM images WHERE id = ?1", [id])
            .map_err(|e| self.db.err(e))?;
        tx.commit().map_err(|e| self.db.err(e))?;
        let mut out: Vec<Removed> = tags
            .into_iter()
            .chain(digests)
            .map(Removed::Untagged)
            .collect();
        out.push(Removed::Deleted(id.to_string()));
        Ok(out)
    }

    /// Removes layer records, snapshots and blobs that no image or rootfs
    /// references. Callers hold the exclusive store lock.
    pub fn collect_garbage(&self) -> Result<Collected> {
        let tx = self.db.write()?;
        let gone_rows: Vec<(String, i64)> = {
            let mut stmt = tx
                .prepare(
                    "DELETE FROM layers WHERE chain_id NOT IN
                       (SELECT chain_id FROM image_layers UNION SELECT chain_id FROM rootfs_layers)
                     RETURNING chain_id, size",
                )
                .map_err(|e| self.db.err(e))?;
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(|e| self.db.err(e))?
                .collect::<rusqlite::Result<_>>()
                .map_err(|e| self.db.err(e))?
        };
        tx.commit().map_err(|e| self.db.err(e))?;
        let mut collected = Collected::default();
        // Deleted rows in the order of the layer chain, top first, as Docker prints them.
        for (chain, size) in gone_rows.iter().rev() {
            collected.layers.push(chain.clone());
            collected.bytes += *size as u64;
        }
        let keep: HashSet<String> = self
            .db
            .referenced_chain_ids()?
            .into_iter()
            .filter_map(|c| Digest::parse(&c).ok().map(|d| d.hex().to_string()))
            .collect();
        let ws = self.workspace()?;
        let snaps = self.root.join("snapshots");
        for e in fs::read_dir(&snaps).ctx("readdir", &snaps)? {
            let e = e.ctx("readdir", &snaps)?;
            let name = e.file_name().to_string_lossy().into_owned();
            if keep.contains(&name) {
                continue;
            }
            // Out of sight first (atomic), then removed.
            let doomed = ws.path().join(format!("gone-{name}"));
            fs::rename(e.path(), &doomed).ctx("rename", e.path())?;
            fs::remove_dir_all(&doomed).ctx("remove", &doomed)?;
        }
        let keep: HashSet<String> = self
            .db
            .referenced_blobs()?
            .into_iter()
            .filter_map(|c| Digest::parse(&c).ok().map(|d| d.hex().to_string()))
            .collect();
        let blobs = self.root.join("blobs/sha256");
        for e in fs::read_dir(&blobs).ctx("readdir", &blobs)? {
            let e = e.ctx("readdir", &blobs)?;
            if !keep.contains(e.file_name().to_string_lossy().as_ref()) {
                fs::remove_file(e.path()).ctx("remove", e.path())?;
            }
        }
        Ok(collected)
    }

    /// Layer sharing across images: for each image id, (shared bytes,
    /// unique bytes), and the total bytes of distinct layers.
    pub fn layer_sharing(&self) -> Result<(HashMap<String, SharedUnique>, u64)> {
        let rows: Vec<(String, String, i64)> = self.db.rows(
            "SELECT il.image, l.chain_id, l.size FROM image_layers il JOIN layers l ON l.chain_id = il.chain_id",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        let mut users: HashMap<&str, HashSet<&str>> = HashMap::new();
        let mut sizes: HashMap<&str, u64> = HashMap::new();
        for (img, chain, size) in &rows {
            users.entry(chain).or_default().insert(img);
            sizes.insert(chain, *size as u64);
        }
        let mut per: HashMap<String, SharedUnique> = HashMap::new();
        let mut seen: HashSet<(&str, &str)> = HashSet::new();
        for (img, chain, size) in &rows {
            if !seen.insert((img, chain)) {
                continue;
            }
            let e = per.entry(img.clone()).or_default();
            if users[chain.as_str()].len() > 1 {
                e.0 += *size as u64;
            } else {
                e.1 += *size as u64;
            }
        }
        Ok((per, sizes.values().sum()))
    }
}

/// Bytes of regular file contents under `dir`, each inode counted once,
/// never following symlinks.
pub fn dir_size(dir: &Path) -> Result<u64> {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    let mut seen = HashSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).ctx("readdir", &d)? {
            let e = e.ctx("readdir", &d)?;
            let m = e.metadata().ctx("stat", e.path())?;
            if m.is_dir() {
                stack.push(e.path());
            } else if m.is_file() && (m.nlink() == 1 || seen.insert((m.dev(), m.ino()))) {
                total += m.len();
            }
        }
    }
    Ok(total)
}
