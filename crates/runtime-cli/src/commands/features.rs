//! `features`: what this runtime supports, as runtime-spec's features JSON.

use super::Context;

/// Prints the features JSON.
pub fn features(_ctx: &Context) -> anyhow::Result<u8> {
    anyhow::bail!("features: not implemented yet")
}
