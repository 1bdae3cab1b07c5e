//! The runtime's error type: every variant names what is at fault.

use std::path::{Path, PathBuf};

use nix::errno::Errno;

/// Everything that can go wrong in the runtime library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A field of config.json (or of a process.json) is malformed or refused.
    #[error("config: {field}: {reason}")]
    Config {
        /// The JSON path of the field, such as `linux.namespaces[2].type`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A file-system operation on a named path failed. (The cause is shown
    /// in the message, so it is not also reported as a `source`.)
    #[error("{op} {path}: {error}")]
    Io {
        /// What was being done: "open", "mkdir", "write", ...
        op: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The underlying error.
        error: std::io::Error,
    },

    /// A system call failed.
    #[error("{call}({detail}): {errno}")]
    Sys {
        /// The system call's name.
        call: &'static str,
        /// Its arguments or target, as text.
        detail: String,
        /// The error number it returned.
        errno: Errno,
    },

    /// No container of that id exists under the state root.
    #[error("container {0} does not exist")]
    NotFound(String),

    /// A container of that id already exists under the state root.
    #[error("container {0} already exists")]
    AlreadyExists(String),

    /// The operation is not allowed in the container's current status. The
    /// message is runc's own text for the case ("container not running",
    /// "container not paused", ...): managers match these strings.
    #[error("{reason}")]
    BadStatus {
        /// The container's id.
        id: String,
        /// Its current status.
        status: String,
        /// Why the operation is refused (runc's wording).
        reason: String,
    },

    /// A cgroup operation failed or cannot be done on this host.
    #[error("cgroup {path}: {reason}")]
    Cgroup {
        /// The cgroup directory or file concerned.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },

    /// A lifecycle hook failed.
    #[error("{kind} hook {path}: {reason}")]
    Hook {
        /// Which hook list: "prestart", "createRuntime", ...
        kind: &'static str,
        /// The hook's executable.
        path: String,
        /// What went wrong (exit status, timeout, spawn error).
        reason: String,
    },

    /// The container's init process reported an error during setup.
    #[error("container init: {0}")]
    Init(String),

    /// The request is valid but this runtime or host cannot honour it.
    #[error("unsupported: {0}")]
    Unsupported(String),

    /// Anything else, with a description.
    #[error("{0}")]
    Other(String),
}

/// Result with the runtime's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A config field error.
    pub fn config(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Config {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// A file-system error on `path`.
    pub fn io(op: &'static str, path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Error::Io {
            op,
            path: path.as_ref().to_path_buf(),
            error: source,
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

    /// A cgroup error on `path`.
    pub fn cgroup(path: impl AsRef<Path>, reason: impl Into<String>) -> Self {
        Error::Cgroup {
            path: path.as_ref().to_path_buf(),
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
