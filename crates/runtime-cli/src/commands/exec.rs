//! `exec` (being written).

use super::Context;

/// Arguments of `exec`.
#[derive(clap::Args, Debug)]
pub struct ExecArgs {
    /// The container's id
    id: String,
}

/// Runs `exec`.
pub fn exec(_ctx: &Context, _args: ExecArgs) -> anyhow::Result<u8> {
    anyhow::bail!("exec: not implemented yet")
}
