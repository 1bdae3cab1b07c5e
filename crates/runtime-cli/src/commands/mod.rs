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

use anyhow::bail;
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
    /// The runtime over the state root. `--systemd-cgroup` is refused here:
    /// cgroups are managed through the cgroup file system only.
    pub fn runtime(&self) -> anyhow::Result<Runtime> {
        if self.systemd_cgroup {
            if !std::path::Path::new("/run/systemd/system").exists() {
                bail!(
                    "--systemd-cgroup: systemd is not running on this host (no /run/systemd/system)"
                );
            }
            bail!(
                "--systemd-cgroup: managing cgroups through systemd is not supported yet; leave the flag out to use the cgroup file system"
            );
        }
        Ok(Runtime::new(self.root.clone()))
    }
}
