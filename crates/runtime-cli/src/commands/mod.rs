//! One module per group of subcommands; each function returns the process
//! exit code.

pub mod events;
pub mod exec;
pub mod features;
pub mod lifecycle;
pub mod ps;
pub mod spec;
pub mod tty;
pub mod update;

use std::path::PathBuf;

use capsa_runtime::Runtime;

/// What every subcommand gets from the global flags.
#[derive(Debug)]
pub struct Context {
    /// The state root.
    pub root: PathBuf,
    /// `--systemd-cgroup` was given.
    pub systemd_cgroup: bool,
}

impl Context {
    /// The runtime over the state root. With `--systemd-cgroup`, containers
    /// it creates get a systemd scope unit (refused at creation where there
    /// is no systemd); the other commands follow what each container's state
    /// records, as runc does.
    pub fn runtime(&self) -> anyhow::Result<Runtime> {
        Ok(Runtime::new(self.root.clone()).with_systemd_cgroup(self.systemd_cgroup))
    }
}
