//! `spec`: writes a default config.json.

use std::path::PathBuf;

use anyhow::{Context as _, bail};

use super::Context;

/// Arguments of `spec`.
#[derive(clap::Args, Debug)]
pub struct SpecArgs {
    /// Directory to write config.json into (default: the current one)
    #[arg(short, long, value_name = "DIR")]
    bundle: Option<PathBuf>,
    /// Write a config for an unprivileged user
    #[arg(long)]
    rootless: bool,
}

/// Runs `spec`: refuses to overwrite an existing config.json, as runc does.
pub fn spec(_ctx: &Context, args: SpecArgs) -> anyhow::Result<u8> {
    let dir = args.bundle.unwrap_or_else(|| PathBuf::from("."));
    let path = dir.join("config.json");
    if path.exists() {
        bail!("{} exists: remove it first", path.display());
    }
    let config = capsa_runtime::spec::default_config(
        args.rootless,
        nix::unistd::geteuid().as_raw(),
        nix::unistd::getegid().as_raw(),
    );
    let text = serde_json::to_string_pretty(&config)?;
    std::fs::write(&path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
    Ok(0)
}
