//! `ps` (being written).

use super::Context;

/// Arguments of `ps`.
#[derive(clap::Args, Debug)]
pub struct PsArgs {
    /// The container's id
    id: String,
}

/// Runs `ps`.
pub fn ps(_ctx: &Context, _args: PsArgs) -> anyhow::Result<u8> {
    anyhow::bail!("ps: not implemented yet")
}
