//! `capsa volume create|ls|inspect|rm|prune`.

use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use crate::ctx::Ctx;
use crate::format::Format;
use crate::units;
use crate::volumes::Volume;

/// `capsa volume ...`.
#[derive(Subcommand)]
pub enum VolumeCommand {
    /// Create a volume
    Create(CreateArgs),
    /// List volumes
    #[command(visible_alias = "list")]
    Ls(LsArgs),
    /// Display detailed information on one or more volumes
    Inspect(InspectArgs),
    /// Remove one or more volumes
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
    /// Remove unused local volumes
    Prune(PruneArgs),
}

/// Flags of `volume create`.
#[derive(Args)]
pub struct CreateArgs {
    /// Specify volume driver name
    #[arg(short, long, value_name = "string", default_value = "local")]
    driver: String,
    /// Set metadata for a volume
    #[arg(long, value_name = "list")]
    label: Vec<String>,
    /// Set driver specific options
    #[arg(short, long = "opt", value_name = "map")]
    opt: Vec<String>,
    /// The volume's name (random when not given)
    name: Option<String>,
}

/// Flags of `volume ls`.
#[derive(Args)]
pub struct LsArgs {
    /// Provide filter values (e.g. "dangling=true")
    #[arg(short, long = "filter", value_name = "filter")]
    filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long, value_name = "string")]
    format: Option<String>,
    /// Only display volume names
    #[arg(short, long)]
    quiet: bool,
}

/// Flags of `volume inspect`.
#[derive(Args)]
pub struct InspectArgs {
    /// Format output using a custom template
    #[arg(short, long, value_name = "string")]
    format: Option<String>,
    /// Volumes
    #[arg(required = true, value_name = "VOLUME")]
    volumes: Vec<String>,
}

/// Flags of `volume rm`.
#[derive(Args)]
pub struct RmArgs {
    /// Force the removal of one or more volumes
    #[arg(short, long)]
    force: bool,
    /// Volumes
    #[arg(required = true, value_name = "VOLUME")]
    volumes: Vec<String>,
}

/// Flags of `volume prune`.
#[derive(Args)]
pub struct PruneArgs {
    /// Remove all unused volumes, not just anonymous ones
    #[arg(short, long)]
    all: bool,
    /// Provide filter values (e.g. "label=<label>")
    #[arg(long = "filter", value_name = "filter")]
    filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    force: bool,
}

/// Runs a volume command.
pub fn dispatch(root: &std::path::Path, cmd: VolumeCommand) -> Result<ExitCode> {
    let ctx = Ctx::open(root)?;
    match cmd {
        VolumeCommand::Create(a) => create(&ctx, a),
        VolumeCommand::Ls(a) => ls(&ctx, a),
        VolumeCommand::Inspect(a) => inspect(&ctx, a),
        VolumeCommand::Rm(a) => rm(&ctx, a),
        VolumeCommand::Prune(a) => prune(&ctx, a),
    }
}

/// Docker's `volume inspect` document.
pub fn inspect_doc(ctx: &Ctx, v: &Volume) -> Value {
    let secs = v.created_ns / 1_000_000_000;
    let mut labels = json!(v.labels);
    if v.anonymous {
        labels["com.docker.volume.anonymous"] = json!("");
    }
    json!({
        "CreatedAt": units::go_rfc3339(secs),
        "Driver": "local",
        "Labels": if labels.as_object().is_some_and(|m| m.is_empty()) { Value::Null } else { labels },
        "Mountpoint": ctx.volume_data(&v.name),
        "Name": v.name,
        "Options": if v.options.is_empty() { Value::Null } else { json!(v.options) },
        "Scope": "local",
    })
}

fn create(ctx: &Ctx, a: CreateArgs) -> Result<ExitCode> {
    if a.driver != "local" {
        bail!(
            "volume driver {:?} is not supported (capsa has the local driver only)",
            a.driver
        );
    }
    if !a.opt.is_empty() {
        bail!("volume driver options (-o) are not supported by capsa's local driver");
    }
    // A volume created without a name is anonymous, as in Docker: `volume
    // prune` without -a removes it.
    let anonymous = a.name.is_none();
    let name = match a.name {
        Some(n) => n,
        None => crate::container::new_id()?,
    };
    let labels = crate::container::spec::kv_map(&a.label);
    let (v, _) = ctx.create_volume(&name, labels, anonymous)?;
    println!("{}", v.name);
    Ok(ExitCode::SUCCESS)
}

fn ls(ctx: &Ctx, a: LsArgs) -> Result<ExitCode> {
    let filters = super::parse_filters(
        &a.filter,
        &["dangling", "name", "label", "label!", "driver"],
    )?;
    let used = ctx.volume_use_counts()?;
    let mut rows = Vec::new();
    for v in ctx.list_volumes()? {
        let ok = filters
            .iter()
            .try_fold(true, |ok, (k, val)| -> Result<bool> {
                Ok(ok
                    && match k.as_str() {
                        "dangling" => match val.as_str() {
                            "true" | "1" => !used.contains_key(&v.name),
                            "false" | "0" => used.contains_key(&v.name),
                            _ => bail!("invalid filter 'dangling={val}'"),
                        },
                        "name" => v.name.contains(val.as_str()),
                        "driver" => val == "local",
                        "label" | "label!" => {
                            let has = match val.split_once('=') {
                                Some((key, want)) => v.labels.get(key).is_some_and(|x| x == want),
                                None => v.labels.contains_key(val),
                            };
                            has == (k == "label")
                        }
                        _ => true,
                    })
            })?;
        if !ok {
            continue;
        }
        let labels: Vec<String> = v.labels.iter().map(|(k, x)| format!("{k}={x}")).collect();
        rows.push(json!({
            "Name": v.name,
            "Driver": "local",
            "Scope": "local",
            "Mountpoint": ctx.volume_data(&v.name),
            "Labels": labels.join(","),
            "Links": used.get(&v.name).copied().unwrap_or(0).to_string(),
            "CreatedAt": units::go_time_string(v.created_ns / 1_000_000_000),
            "Size": "N/A",
        }));
    }
    let fmt = match a.format.as_deref() {
        _ if a.quiet => "{{.Name}}".to_string(),
        None | Some("") | Some("table") => "table {{.Driver}}\t{{.Name}}".into(),
        Some(f) => f.to_string(),
    };
    let out = Format::parse(&fmt)?.render(
        &rows,
        &[
            ("Name", "VOLUME NAME"),
            ("Driver", "DRIVER"),
            ("Scope", "SCOPE"),
            ("Mountpoint", "MOUNTPOINT"),
            ("Labels", "LABELS"),
            ("Links", "LINKS"),
            ("CreatedAt", "CREATED AT"),
            ("Size", "SIZE"),
        ],
    )?;
    io::stdout().write_all(out.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

fn inspect(ctx: &Ctx, a: InspectArgs) -> Result<ExitCode> {
    let mut docs = Vec::new();
    let mut failed = false;
    for n in &a.volumes {
        match ctx.get_volume(n)? {
            Some(v) => docs.push(inspect_doc(ctx, &v)),
            None => {
                failed = true;
                super::print_error(&anyhow::anyhow!("get {n}: no such volume"));
            }
        }
    }
    let mut out = io::stdout().lock();
    match a.format.as_deref().map(Format::parse).transpose()? {
        Some(f) => out.write_all(f.render_loose(&docs)?.as_bytes())?,
        None => writeln!(out, "{}", super::images::indented_json(&docs)?)?,
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn rm(ctx: &Ctx, a: RmArgs) -> Result<ExitCode> {
    super::each(&a.volumes, |n| ctx.remove_volume(n, a.force))
}

/// Removes unused volumes (anonymous ones only unless `all`) matching the
/// label filters; returns their names and bytes.
pub fn prune_volumes(ctx: &Ctx, all: bool, filter: &[String]) -> Result<(Vec<String>, u64)> {
    let filters = super::parse_filters(filter, &["label", "label!", "all"])?;
    let all = all
        || filters
            .iter()
            .any(|(k, v)| k == "all" && (v == "true" || v == "1"));
    let used = ctx.volume_use_counts()?;
    let mut removed = Vec::new();
    let mut bytes = 0;
    for v in ctx.list_volumes()? {
        if used.contains_key(&v.name) || (!all && !v.anonymous) {
            continue;
        }
        let ok = filters.iter().all(|(k, val)| {
            let has = match val.split_once('=') {
                Some((key, want)) => v.labels.get(key).is_some_and(|x| x == want),
                None => v.labels.contains_key(val),
            };
            match k.as_str() {
                "label" => has,
                "label!" => !has,
                _ => true,
            }
        });
        if !ok {
            continue;
        }
        let size = capsa_images::store::dir_size(&ctx.volume_data(&v.name)).unwrap_or(0);
        if ctx.remove_volume(&v.name, true).is_ok() {
            bytes += size;
            removed.push(v.name);
        }
    }
    crate::events::prune(&ctx.root, "volume", bytes);
    Ok((removed, bytes))
}

fn prune(ctx: &Ctx, a: PruneArgs) -> Result<ExitCode> {
    let warning = if a.all {
        "WARNING! This will remove all local volumes not used by at least one container."
    } else {
        "WARNING! This will remove anonymous local volumes not used by at least one container."
    };
    if !a.force && !super::confirm(warning)? {
        return Ok(ExitCode::SUCCESS);
    }
    let (removed, bytes) = prune_volumes(ctx, a.all, &a.filter)?;
    let mut out = io::stdout().lock();
    super::print_deleted(&mut out, "Volumes", &removed)?;
    super::print_reclaimed(&mut out, bytes)?;
    Ok(ExitCode::SUCCESS)
}
