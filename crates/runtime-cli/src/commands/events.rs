//! `events` (being written).

use super::Context;

/// Arguments of `events`.
#[derive(clap::Args, Debug)]
pub struct EventsArgs {
    /// The container's id
    id: String,
}

/// Runs `events`.
pub fn events(_ctx: &Context, _args: EventsArgs) -> anyhow::Result<u8> {
    anyhow::bail!("events: not implemented yet")
}
