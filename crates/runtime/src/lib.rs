//! capsa's OCI runtime: turns an OCI bundle (a `config.json` and a root
//! filesystem) into an isolated Linux process, as runtime-spec 1.2 describes.
//!
//! [`container::Runtime`] is the entry point: `create`, `start`, `state`,
//! `kill`, `delete` and the rest, each working on a state directory under the
//! runtime's root. The `capsa-runtime` binary is a thin runc-compatible
//! command line over it; the capsa engine uses it in-process.

pub mod capabilities;
pub mod cgroups;
pub mod console;
pub mod container;
pub mod error;
pub mod exec;
pub mod features;
pub mod hooks;
mod init;
pub mod lsm;
pub mod mounts;
pub mod namespaces;
pub mod process;
pub mod procfs;
pub mod seccomp;
pub mod signals;
pub mod spec;
pub mod state;
pub mod sync;
pub mod sys;
pub mod timing;
pub mod trampoline;
pub mod unix_socket;

pub use container::{CreateOptions, Runtime};
pub use error::{Error, Result};
