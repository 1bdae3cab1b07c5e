//! `update`: changes the resource limits of a container, from a
//! LinuxResources JSON (`--resources FILE|-`) or from individual flags, as
//! runc's `update` takes them. Only what is given changes.

use std::io::Read;
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use oci_spec::runtime::LinuxResources;

use super::Context;

/// Arguments of `update`.
#[derive(clap::Args, Debug)]
pub struct UpdateArgs {
    #[command(flatten)]
    flags: Box<Flags>,
    /// The container's id
    id: String,
}

/// The resource flags of `update`.
#[derive(clap::Args, Debug)]
struct Flags {
    /// File holding the resources to change as JSON (a LinuxResources
    /// object; unchanged values can be left out), or '-' for standard input
    #[arg(short, long, value_name = "FILE")]
    resources: Option<PathBuf>,
    /// Memory limit in bytes (suffixes k, m, g, t, p; -1 for none)
    #[arg(long, allow_hyphen_values = true)]
    memory: Option<String>,
    /// Memory reservation (soft limit) in bytes
    #[arg(long, allow_hyphen_values = true)]
    memory_reservation: Option<String>,
    /// Memory plus swap limit in bytes; -1 for unlimited swap
    #[arg(long, allow_hyphen_values = true)]
    memory_swap: Option<String>,
    /// Kernel memory limit (ignored with a warning where the kernel no
    /// longer enforces it)
    #[arg(long, allow_hyphen_values = true)]
    kernel_memory: Option<String>,
    /// Kernel TCP buffer memory limit (ignored with a warning where the
    /// kernel has none)
    #[arg(long, allow_hyphen_values = true)]
    kernel_memory_tcp: Option<String>,
    /// CPU CFS quota in microseconds per period (-1 for none)
    #[arg(long, allow_hyphen_values = true)]
    cpu_quota: Option<i64>,
    /// CPU CFS period in microseconds
    #[arg(long)]
    cpu_period: Option<u64>,
    /// CPU shares (relative weight)
    #[arg(long, alias = "cpu-shares")]
    cpu_share: Option<u64>,
    /// Real-time period in microseconds
    #[arg(long)]
    cpu_rt_period: Option<u64>,
    /// Real-time runtime in microseconds per period
    #[arg(long, allow_hyphen_values = true)]
    cpu_rt_runtime: Option<i64>,
    /// CPUs the container may use (such as 0-2,4)
    #[arg(long)]
    cpuset_cpus: Option<String>,
    /// Memory nodes the container may use
    #[arg(long)]
    cpuset_mems: Option<String>,
    /// Maximum number of tasks (0 or -1 for none)
    #[arg(long, allow_hyphen_values = true)]
    pids_limit: Option<i64>,
    /// Block I/O weight, 10 to 1000
    #[arg(long)]
    blkio_weight: Option<u16>,
    /// Intel RDT L3 cache schema (refused: Intel RDT is not supported)
    #[arg(long)]
    l3_cache_schema: Option<String>,
    /// Intel RDT memory bandwidth schema (refused: Intel RDT is not supported)
    #[arg(long)]
    mem_bw_schema: Option<String>,
}

/// Runs `update`.
pub fn update(ctx: &Context, args: UpdateArgs) -> anyhow::Result<u8> {
    let resources = resources(&args.flags)?;
    ctx.runtime()?.update(&args.id, &resources)?;
    Ok(0)
}

/// The resources `args` ask for.
fn resources(args: &Flags) -> anyhow::Result<LinuxResources> {
    if args.l3_cache_schema.is_some() || args.mem_bw_schema.is_some() {
        bail!("--l3-cache-schema / --mem-bw-schema: Intel RDT is not supported");
    }
    let flags = flags_json(args)?;
    if let Some(path) = &args.resources {
        if flags.as_object().is_some_and(|o| !o.is_empty()) {
            bail!("--resources cannot be combined with the other resource flags");
        }
        let mut text = Vec::new();
        if path.as_os_str() == "-" {
            std::io::stdin()
                .read_to_end(&mut text)
                .context("reading resources from standard input")?;
        } else {
            text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        }
        return serde_json::from_slice(&text)
            .with_context(|| format!("{}: not a LinuxResources JSON object", path.display()));
    }
    if flags.as_object().is_some_and(|o| o.is_empty()) {
        bail!("nothing to update: give --resources or a resource flag (see --help)");
    }
    Ok(serde_json::from_value(flags)?)
}

/// The flags as a LinuxResources JSON object (only the given fields).
fn flags_json(a: &Flags) -> anyhow::Result<serde_json::Value> {
    use serde_json::{Map, Value, json};
    let mut r = Map::new();
    let mut memory = Map::new();
    for (flag, key, v) in [
        ("--memory", "limit", &a.memory),
        ("--memory-reservation", "reservation", &a.memory_reservation),
        ("--memory-swap", "swap", &a.memory_swap),
        ("--kernel-memory", "kernel", &a.kernel_memory),
        ("--kernel-memory-tcp", "kernelTCP", &a.kernel_memory_tcp),
    ] {
        if let Some(v) = v {
            memory.insert(key.into(), json!(parse_size(v).context(flag)?));
        }
    }
    let mut cpu = Map::new();
    let mut put = |key: &str, v: Option<Value>| {
        if let Some(v) = v {
            cpu.insert(key.into(), v);
        }
    };
    put("shares", a.cpu_share.map(|v| json!(v)));
    put("quota", a.cpu_quota.map(|v| json!(v)));
    put("period", a.cpu_period.map(|v| json!(v)));
    put("realtimeRuntime", a.cpu_rt_runtime.map(|v| json!(v)));
    put("realtimePeriod", a.cpu_rt_period.map(|v| json!(v)));
    put("cpus", a.cpuset_cpus.as_ref().map(|v| json!(v)));
    put("mems", a.cpuset_mems.as_ref().map(|v| json!(v)));
    if !memory.is_empty() {
        r.insert("memory".into(), Value::Object(memory));
    }
    if !cpu.is_empty() {
        r.insert("cpu".into(), Value::Object(cpu));
    }
    if let Some(p) = a.pids_limit {
        r.insert("pids".into(), json!({ "limit": p }));
    }
    if let Some(w) = a.blkio_weight {
        r.insert("blockIO".into(), json!({ "weight": w }));
    }
    Ok(Value::Object(r))
}

/// Parses a size as runc does (Docker's RAMInBytes): a number, possibly
/// with a fraction, then an optional k/m/g/t/p suffix (binary multiples,
/// optionally followed by "i" and/or "b"); "-1" means no limit.
pub fn parse_size(text: &str) -> anyhow::Result<i64> {
    let t = text.trim();
    if t == "-1" {
        return Ok(-1);
    }
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let unit = unit.trim_start().to_ascii_lowercase();
    let unit = unit.strip_suffix('b').unwrap_or(&unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let shift = match unit {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        "p" => 50,
        _ => bail!("invalid size {text:?}: use a number of bytes with an optional k, m, g, t or p"),
    };
    let value: f64 = num
        .parse()
        .ok()
        .filter(|_| !num.is_empty() && !num.ends_with('.'))
        .with_context(|| format!("invalid size {text:?}"))?;
    let bytes = value * (1u64 << shift) as f64;
    if !bytes.is_finite() || bytes > i64::MAX as f64 {
        bail!("invalid size {text:?}: too large");
    }
    Ok(bytes as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_like_runc() {
        assert_eq!(parse_size("256m").unwrap(), 256 << 20);
        assert_eq!(parse_size("1.5g").unwrap(), 3 << 29);
        assert_eq!(parse_size("10KiB").unwrap(), 10 << 10);
        assert_eq!(parse_size("100").unwrap(), 100);
        assert_eq!(parse_size("7 MB").unwrap(), 7 << 20);
        assert_eq!(parse_size("-1").unwrap(), -1);
        for bad in ["", "m", "12x", "-2", "1..5m", "5."] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}
