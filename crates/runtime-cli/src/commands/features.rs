//! `features`: what this runtime supports, as runtime-spec's features JSON.

use super::Context;

/// Prints the features JSON.
pub fn features(_ctx: &Context) -> anyhow::Result<u8> {
    println!(
        "{}",
        serde_json::to_string_pretty(&capsa_runtime::features::features())?
    );
    Ok(0)
}
