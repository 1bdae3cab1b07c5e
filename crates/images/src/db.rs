//! The SQLite metadata of the store (`<root>/capsa.db`, WAL): images, their
//! layers and blobs, tags, layer records and prepared container rootfs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use crate::error::{Error, Result};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS images (
    id TEXT PRIMARY KEY,            -- sha256 digest of the config blob
    manifest TEXT NOT NULL,         -- digest of the stored manifest blob
    created TEXT NOT NULL,          -- the config's `created`, as written
    created_unix INTEGER NOT NULL,  -- the same in seconds since the epoch
    size INTEGER NOT NULL,          -- bytes of all layers unpacked
    added_unix INTEGER NOT NULL     -- when it entered the store
);
CREATE TABLE IF NOT EXISTS image_layers (
    image TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    chain_id TEXT NOT NULL,
    PRIMARY KEY (image, idx)
);
CREATE TABLE IF NOT EXISTS image_blobs (
    image TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    digest TEXT NOT NULL,
    PRIMARY KEY (image, digest)
);
CREATE TABLE IF NOT EXISTS layers (
    chain_id TEXT PRIMARY KEY,
    diff_id TEXT NOT NULL,
    parent TEXT,
    size INTEGER NOT NULL           -- bytes of file contents unpacked
);
CREATE TABLE IF NOT EXISTS tags (
    name TEXT PRIMARY KEY,          -- normalised reference, docker.io/library/busybox:latest
    image TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    tagged_unix INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS repo_digests (
    name TEXT NOT NULL,             -- normalised reference with a digest
    image TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    PRIMARY KEY (name, image)
);
CREATE TABLE IF NOT EXISTS rootfs (
    id TEXT PRIMARY KEY,
    image TEXT NOT NULL,
    created_unix INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS rootfs_layers (
    rootfs TEXT NOT NULL REFERENCES rootfs(id) ON DELETE CASCADE,
    chain_id TEXT NOT NULL,
    PRIMARY KEY (rootfs, chain_id)
);
CREATE INDEX IF NOT EXISTS tags_by_image ON tags(image);
CREATE INDEX IF NOT EXISTS image_layers_by_chain ON image_layers(chain_id);
";

/// An open metadata database.
pub struct Db {
    conn: Connection,
    path: PathBuf,
}

/// An image row.
#[derive(Clone, Debug)]
pub struct ImageRow {
    /// The image id (config digest).
    pub id: String,
    /// The manifest blob's digest.
    pub manifest: String,
    /// The config's creation time as written.
    pub created: String,
    /// The creation time in seconds since the epoch.
    pub created_unix: i64,
    /// Bytes of all layers unpacked.
    pub size: i64,
    /// When the image entered the store.
    pub added_unix: i64,
}

/// A layer row.
#[derive(Clone, Debug)]
pub struct LayerRow {
    /// The chain ID, which also names the snapshot.
    pub chain_id: String,
    /// The layer's diff_id.
    pub diff_id: String,
    /// The chain ID of the layer below.
    pub parent: Option<String>,
    /// Bytes of file contents.
    pub size: i64,
}

impl Db {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Db> {
        let conn = Connection::open(path).map_err(|e| db_err(path, e))?;
        let db = Db {
            conn,
            path: path.to_path_buf(),
        };
        db.conn
            .busy_timeout(Duration::from_secs(60))
            .map_err(|e| db.err(e))?;
        db.conn
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| db.err(e))?;
        db.conn
            .execute_batch("PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;")
            .map_err(|e| db.err(e))?;
        let tx = db.write()?;
        tx.execute_batch(SCHEMA).map_err(|e| db_err(path, e))?;
        tx.commit().map_err(|e| db_err(path, e))?;
        Ok(db)
    }

    /// The error for a failed query.
    pub fn err(&self, e: rusqlite::Error) -> Error {
        db_err(&self.path, e)
    }

    /// A write transaction (BEGIN IMMEDIATE: concurrent writers wait).
    pub fn write(&self) -> Result<Transaction<'_>> {
        // `Transaction::new_unchecked` lets a shared connection start one.
        Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))
    }

    /// The connection, for reads.
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// The image with this exact id.
    pub fn image(&self, id: &str) -> Result<Option<ImageRow>> {
        self.conn
            .query_row(
                "SELECT id, manifest, created, created_unix, size, added_unix FROM images WHERE id = ?1",
                [id],
                image_row,
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Every image.
    pub fn images(&self) -> Result<Vec<ImageRow>> {
        self.rows(
            "SELECT id, manifest, created, created_unix, size, added_unix FROM images",
            [],
            image_row,
        )
    }

    /// Ids of images whose id starts with `prefix` (`sha256:` included).
    pub fn images_with_prefix(&self, prefix: &str) -> Result<Vec<String>> {
        self.rows(
            "SELECT id FROM images WHERE substr(id, 1, length(?1)) = ?1",
            [prefix],
            |r| r.get(0),
        )
    }

    /// The image a tag (normalised reference) points to.
    pub fn tag(&self, name: &str) -> Result<Option<String>> {
        self.conn
            .query_row("SELECT image FROM tags WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| self.err(e))
    }

    /// The image a repo digest (normalised reference) points to.
    pub fn repo_digest(&self, name: &str) -> Result<Option<String>> {
        self.conn
            .query_row(
                "SELECT image FROM repo_digests WHERE name = ?1",
                [name],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// The tags (normalised references) of an image, sorted.
    pub fn tags_of(&self, image: &str) -> Result<Vec<String>> {
        self.rows(
            "SELECT name FROM tags WHERE image = ?1 ORDER BY name",
            [image],
            |r| r.get(0),
        )
    }

    /// The repo digests (normalised references) of an image, sorted.
    pub fn repo_digests_of(&self, image: &str) -> Result<Vec<String>> {
        self.rows(
            "SELECT name FROM repo_digests WHERE image = ?1 ORDER BY name",
            [image],
            |r| r.get(0),
        )
    }

    /// The layers of an image, bottom first.
    pub fn layers_of(&self, image: &str) -> Result<Vec<LayerRow>> {
        self.rows(
            "SELECT l.chain_id, l.diff_id, l.parent, l.size FROM image_layers il
             JOIN layers l ON l.chain_id = il.chain_id WHERE il.image = ?1 ORDER BY il.idx",
            [image],
            layer_row,
        )
    }

    /// The layer record of a chain ID.
    pub fn layer(&self, chain_id: &str) -> Result<Option<LayerRow>> {
        self.conn
            .query_row(
                "SELECT chain_id, diff_id, parent, size FROM layers WHERE chain_id = ?1",
                [chain_id],
                layer_row,
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Ids of the prepared rootfs made from an image.
    pub fn rootfs_of_image(&self, image: &str) -> Result<Vec<String>> {
        self.rows(
            "SELECT id FROM rootfs WHERE image = ?1 ORDER BY id",
            [image],
            |r| r.get(0),
        )
    }

    /// How many prepared rootfs each image has.
    pub fn rootfs_counts(&self) -> Result<Vec<(String, i64)>> {
        self.rows(
            "SELECT image, count(*) FROM rootfs GROUP BY image",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
    }

    /// Chain IDs still referenced by an image or a rootfs.
    pub fn referenced_chain_ids(&self) -> Result<Vec<String>> {
        self.rows(
            "SELECT chain_id FROM image_layers UNION SELECT chain_id FROM rootfs_layers",
            [],
            |r| r.get(0),
        )
    }

    /// Blob digests still referenced by an image.
    pub fn referenced_blobs(&self) -> Result<Vec<String>> {
        self.rows("SELECT DISTINCT digest FROM image_blobs", [], |r| r.get(0))
    }

    /// Runs a query returning rows.
    pub fn rows<T, P: rusqlite::Params>(
        &self,
        sql: &str,
        p: P,
        f: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(|e| self.err(e))?;
        stmt.query_map(p, f)
            .map_err(|e| self.err(e))?
            .collect::<rusqlite::Result<Vec<T>>>()
            .map_err(|e| self.err(e))
    }
}

fn image_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ImageRow> {
    Ok(ImageRow {
        id: r.get(0)?,
        manifest: r.get(1)?,
        created: r.get(2)?,
        created_unix: r.get(3)?,
        size: r.get(4)?,
        added_unix: r.get(5)?,
    })
}

fn layer_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<LayerRow> {
    Ok(LayerRow {
        chain_id: r.get(0)?,
        diff_id: r.get(1)?,
        parent: r.get(2)?,
        size: r.get(3)?,
    })
}

/// A database error on `path`.
pub fn db_err(path: &Path, source: rusqlite::Error) -> Error {
    Error::Db {
        path: path.to_path_buf(),
        source,
    }
}

/// Removes layer records no image or rootfs references any more, returning
/// their chain IDs.
pub fn delete_unreferenced_layers(tx: &Transaction<'_>) -> rusqlite::Result<Vec<String>> {
    let mut stmt = tx.prepare(
        "DELETE FROM layers WHERE chain_id NOT IN
           (SELECT chain_id FROM image_layers UNION SELECT chain_id FROM rootfs_layers)
         RETURNING chain_id",
    )?;
    let ids = stmt
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    Ok(ids)
}

/// Inserts a layer record unless it exists.
pub fn insert_layer(tx: &Transaction<'_>, l: &LayerRow) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT OR IGNORE INTO layers (chain_id, diff_id, parent, size) VALUES (?1, ?2, ?3, ?4)",
        params![l.chain_id, l.diff_id, l.parent, l.size],
    )?;
    Ok(())
}

/// Records `name@digest` references of an image (kept if already there).
pub fn insert_repo_digests(
    tx: &Transaction<'_>,
    image: &str,
    refs: &[crate::Reference],
) -> rusqlite::Result<()> {
    for r in refs {
        tx.execute(
            "INSERT OR IGNORE INTO repo_digests (name, image) VALUES (?1, ?2)",
            params![r.to_string(), image],
        )?;
    }
    Ok(())
}
