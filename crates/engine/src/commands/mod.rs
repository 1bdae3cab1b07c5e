//! The commands of `capsa`, one module per command group.

pub mod containers;
pub mod exec;
pub mod files;
pub mod images;
pub mod registry;
pub mod run;
pub mod session;
pub mod system;
pub mod volumes;

use std::path::Path;

use capsa_images::Store;

/// Opens the image store at `root`.
pub fn open_store(root: &Path) -> anyhow::Result<Store> {
    Ok(Store::open(root)?)
}

/// Prints an error as Docker's CLI does, without the daemon prefix:
/// `Error: No such image: foo:latest`.
pub fn print_error(e: &anyhow::Error) {
    let mut msg = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !msg.contains(&c) {
            msg.push_str(": ");
            msg.push_str(&c);
        }
    }
    eprintln!("Error: {msg}");
}

/// Parses `--filter key=value` flags into pairs; `allowed` keys only.
pub fn parse_filters(
    filters: &[String],
    allowed: &[&str],
) -> anyhow::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for f in filters {
        let Some((k, v)) = f.split_once('=') else {
            anyhow::bail!("bad format of filter (expected name=value)");
        };
        let k = k.trim().to_ascii_lowercase();
        if !allowed.contains(&k.as_str()) {
            anyhow::bail!("invalid filter '{k}'");
        }
        out.push((k, v.to_string()));
    }
    Ok(out)
}

/// Checks that every `until` filter is a timestamp or a duration (before
/// a prune removes anything).
pub fn check_until(filters: &[(String, String)]) -> anyhow::Result<()> {
    for (k, v) in filters {
        if k == "until" && crate::units::parse_timestamp(v).is_none() {
            anyhow::bail!("invalid filter 'until={v}': not a timestamp or duration");
        }
    }
    Ok(())
}

/// Asks `warning` + "Are you sure you want to continue? [y/N]" on the
/// terminal; true for yes.
pub fn confirm(warning: &str) -> anyhow::Result<bool> {
    use std::io::Write as _;
    print!("{warning}\nAre you sure you want to continue? [y/N] ");
    std::io::stdout().flush()?;
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok(matches!(line.trim(), "y" | "Y"))
}

/// Prints one section of a prune's report, Docker's way: `Deleted
/// Containers:` (or Volumes) with a name per line and a blank line; nothing
/// when nothing was deleted.
pub fn print_deleted(
    out: &mut impl std::io::Write,
    what: &str,
    names: &[String],
) -> std::io::Result<()> {
    if names.is_empty() {
        return Ok(());
    }
    writeln!(out, "Deleted {what}:")?;
    for n in names {
        writeln!(out, "{n}")?;
    }
    writeln!(out)
}

/// Prints the last line of a prune's report.
pub fn print_reclaimed(out: &mut impl std::io::Write, bytes: u64) -> std::io::Result<()> {
    writeln!(
        out,
        "Total reclaimed space: {}",
        crate::units::human_size(bytes as f64)
    )
}

/// Runs `f` for each name, printing the name on success and errors as
/// Docker does; exit status 1 if any failed.
pub fn each(
    names: &[String],
    mut f: impl FnMut(&str) -> anyhow::Result<()>,
) -> anyhow::Result<std::process::ExitCode> {
    let mut failed = false;
    for n in names {
        match f(n) {
            Ok(()) => println!("{n}"),
            Err(e) => {
                failed = true;
                print_error(&e);
            }
        }
    }
    Ok(if failed {
        std::process::ExitCode::from(1)
    } else {
        std::process::ExitCode::SUCCESS
    })
}
