//! The image library's error type: every variant names what is at fault.

use std::path::{Path, PathBuf};

use nix::errno::Errno;

/// Everything that can go wrong in the image store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file-system operation on a named path failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done: "open", "mkdir", "write", ...
        op: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A system call failed.
    #[error("{call}({detail}): {errno}")]
    Sys {
        /// The system call's name.
        call: &'static str,
        /// Its arguments or target, as text.
        detail: String,
        /// The error number it returned.
        #[source]
        errno: Errno,
    },

    /// The metadata database failed.
    #[error("image database {path}: {source}")]
    Db {
        /// The database file.
        path: PathBuf,
        /// The SQLite error.
        #[source]
        source: rusqlite::Error,
    },

    /// A reference (name, tag or digest) is malformed.
    #[error("invalid reference format: {reference}: {reason}")]
    InvalidReference {
        /// The reference as given.
        reference: String,
        /// What is wrong with it.
        reason: String,
    },

    /// No image matches a reference or id.
    #[error("No such image: {0}")]
    NoSuchImage(String),

    /// Content does not have the digest it was announced with.
    #[error("{what}: digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        /// What was being verified (a blob, a layer's diff_id, ...).
        what: String,
        /// The announced digest.
        expected: String,
        /// The digest of the content actually read.
        actual: String,
    },

    /// A layer tar is malformed or hostile and was refused.
    #[error("layer {layer}: entry {entry:?}: {reason}")]
    Layer {
        /// The layer (blob digest or file name).
        layer: String,
        /// The tar entry at fault ("" when it is the stream as a whole).
        entry: String,
        /// Why it was refused.
        reason: String,
    },

    /// An archive (docker save / OCI layout) or one of its documents is malformed.
    #[error("archive: {0}")]
    Archive(String),

    /// An image configuration or manifest is malformed or unusable.
    #[error("image {image}: {reason}")]
    Image {
        /// The image (id or reference).
        image: String,
        /// What is wrong.
        reason: String,
    },

    /// The operation conflicts with the state of the store (Docker's "conflict").
    #[error("conflict: {0}")]
    Conflict(String),

    /// The request is valid but this store or host cannot honour it.
    #[error("unsupported: {0}")]
    Unsupported(String),

    /// Anything else, with a description.
    #[error("{0}")]
    Other(String),
}

/// Result with the image library's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A file-system error on `path`.
    pub fn io(op: &'static str, path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Error::Io {
            op,
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    /// A system-call error.
    pub fn sys(call: &'static str, detail: impl Into<String>, errno: Errno) -> Self {
        Error::Sys {
            call,
            detail: detail.into(),
            errno,
        }
    }

    /// A refused or malformed layer entry.
    pub fn layer(
        layer: impl Into<String>,
        entry: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Error::Layer {
            layer: layer.into(),
            entry: entry.into(),
            reason: reason.into(),
        }
    }

    /// A malformed or unusable image.
    pub fn image(image: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Image {
            image: image.into(),
            reason: reason.into(),
        }
    }
}

/// Adds "what was being done, to which path" to `std::io::Result`s.
pub trait IoContext<T> {
    /// Turns an I/O error into [`Error::Io`] naming `op` and `path`.
    fn ctx(self, op: &'static str, path: impl AsRef<Path>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx(self, op: &'static str, path: impl AsRef<Path>) -> Result<T> {
        self.map_err(|e| Error::io(op, path, e))
    }
}

/// Adds the system call and its target to `nix::Result`s.
pub trait SysContext<T> {
    /// Turns an errno into [`Error::Sys`] naming `call` and `detail`.
    fn sys(self, call: &'static str, detail: impl std::fmt::Display) -> Result<T>;
}

impl<T> SysContext<T> for nix::Result<T> {
    fn sys(self, call: &'static str, detail: impl std::fmt::Display) -> Result<T> {
        self.map_err(|e| Error::sys(call, detail.to_string(), e))
    }
}
