//! `capsa system` commands: `df`.

use std::io::{self, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use serde_json::json;

use super::open_store;
use crate::format::Format;
use crate::units;

/// Flags of `capsa system df`.
#[derive(Args)]
pub struct DfArgs {
    /// Format output using a custom template
    #[arg(long, value_name = "string")]
    format: Option<String>,
}

fn reclaimable(total: u64, reclaim: u64) -> String {
    match (reclaim * 100).checked_div(total) {
        Some(pct) => format!("{} ({pct}%)", units::human_size(reclaim as f64)),
        None => units::human_size(reclaim as f64),
    }
}

/// `capsa system df`: space used by images (distinct layers) and by the
/// writable layers of prepared container root filesystems.
pub fn df(root: &Path, a: DfArgs) -> Result<ExitCode> {
    let store = open_store(root)?;
    let images = store.db().images()?;
    let (sharing, layers_size) = store.layer_sharing()?;
    let users: std::collections::HashMap<String, i64> =
        store.db().rootfs_counts()?.into_iter().collect();
    let mut used = 0u64;
    let mut active = 0;
    for img in &images {
        if users.contains_key(&img.id) {
            active += 1;
            let shared = sharing.get(&img.id).map_or(0, |s| s.0);
            used += (img.size as u64).saturating_sub(shared);
        }
    }
    let rootfs = store.list_rootfs()?;
    let mut rootfs_size = 0u64;
    let mut mounted = 0;
    let mut mounted_size = 0u64;
    for r in &rootfs {
        let size = capsa_images::store::dir_size(&r.upper).unwrap_or(0);
        rootfs_size += size;
        if is_mounted(&r.merged) {
            mounted += 1;
            mounted_size += size;
        }
    }
    let rows = vec![
        json!({
            "Type": "Images",
            "TotalCount": images.len().to_string(),
            "Active": active.to_string(),
            "Size": units::human_size(layers_size as f64),
            "Reclaimable": reclaimable(layers_size, layers_size.saturating_sub(used)),
        }),
        json!({
            "Type": "Containers",
            "TotalCount": rootfs.len().to_string(),
            "Active": mounted.to_string(),
            "Size": units::human_size(rootfs_size as f64),
            "Reclaimable": reclaimable(rootfs_size, rootfs_size - mounted_size),
        }),
    ];
    let fmt = match a.format.as_deref() {
        None | Some("") | Some("table") => {
            "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}".to_string()
        }
        Some(f) => f.to_string(),
    };
    let out = Format::parse(&fmt)?.render(
        &rows,
        &[
            ("Type", "TYPE"),
            ("TotalCount", "TOTAL"),
            ("Active", "ACTIVE"),
            ("Size", "SIZE"),
            ("Reclaimable", "RECLAIMABLE"),
        ],
    )?;
    io::stdout().write_all(out.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

/// Whether `path` is a mount point (its device differs from its parent's).
fn is_mounted(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (
        std::fs::metadata(path),
        path.parent().map(std::fs::metadata),
    ) {
        (Ok(m), Some(Ok(p))) => m.dev() != p.dev(),
        _ => false,
    }
}
