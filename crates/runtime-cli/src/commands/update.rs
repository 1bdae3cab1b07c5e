//! `update` (being written).

use super::Context;

/// Arguments of `update`.
#[derive(clap::Args, Debug)]
pub struct UpdateArgs {
    /// The container's id
    id: String,
}

/// Runs `update`.
pub fn update(_ctx: &Context, _args: UpdateArgs) -> anyhow::Result<u8> {
    anyhow::bail!("update: not implemented yet")
}
