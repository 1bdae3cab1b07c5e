//! The properties of the transient scope unit: what runc gives systemd
//! (description, slice, the init's pid, delegation, accounting) and
//! `linux.resources` as systemd's resource-control properties, with runc's
//! conversions. What systemd has no property for is only written to the
//! cgroup files (systemd delegates the scope's cgroups to the runtime).

use std::collections::HashMap;

use oci_spec::runtime::LinuxResources;

use super::super::devices::{self, Key, Kind, Reduced};
use super::super::{nonzero, v2};
use super::unit::Scope;
use crate::error::{Error, Result};

/// A property's value, with the D-Bus type systemd expects for it.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `s`
    Str(String),
    /// `b`
    Bool(bool),
    /// `t`
    U64(u64),
    /// `au` (PIDs)
    U32s(Vec<u32>),
    /// `ay` (CPU and NUMA node masks)
    Bytes(Vec<u8>),
    /// `a(ss)`: DeviceAllow's (path, access) pairs.
    DeviceAllow(Vec<(String, String)>),
    /// `y`
    U8(u8),
    /// `n`
    I16(i16),
    /// `q`
    U16(u16),
    /// `i`
    I32(i32),
    /// `u`
    U32(u32),
    /// `x`
    I64(i64),
    /// `d`
    F64(f64),
    /// An array of values of one type, with that type's signature.
    Array(String, Vec<Value>),
}

/// A property: its name and value.
pub type Property = (String, Value);

fn prop(name: &str, v: Value) -> Property {
    (name.to_string(), v)
}

/// systemd's "infinity" for the `t` properties.
const INFINITY: u64 = u64::MAX;

/// The CFS period the kernel has unless told otherwise (µs).
const DEFAULT_PERIOD: u64 = 100_000;

/// The first systemd version with CPUQuotaPeriodUSec.
const SINCE_QUOTA_PERIOD: u32 = 242;
/// The first systemd version with AllowedCPUs and AllowedMemoryNodes.
const SINCE_ALLOWED_CPUS: u32 = 244;

/// The properties that make the scope: description, slice, the init's pid,
/// delegation of its cgroups, accounting (as runc asks for) and no default
/// dependencies. `v2` says whether systemd runs the unified hierarchy
/// (IOAccounting) or the legacy one (BlockIOAccounting).
pub fn scope(s: &Scope, pid: u32, v2: bool) -> Vec<Property> {
    vec![
        prop("Description", Value::Str(s.description.clone())),
        prop("Slice", Value::Str(s.slice.clone())),
        prop("PIDs", Value::U32s(vec![pid])),
        prop("Delegate", Value::Bool(true)),
        prop("MemoryAccounting", Value::Bool(true)),
        prop("CPUAccounting", Value::Bool(true)),
        prop(
            if v2 {
                "IOAccounting"
            } else {
                "BlockIOAccounting"
            },
            Value::Bool(true),
        ),
        prop("TasksAccounting", Value::Bool(true)),
        prop("DefaultDependencies", Value::Bool(false)),
    ]
}

/// Whether turning `r` into properties needs systemd's version (some
/// properties are younger than others).
pub fn needs_version(r: &LinuxResources) -> bool {
    let cpu = r.cpu().as_ref();
    let set = |s: Option<&String>| s.is_some_and(|s| !s.is_empty());
    cpu.is_some_and(|c| {
        nonzero(c.period()).is_some() || set(c.cpus().as_ref()) || set(c.mems().as_ref())
    }) || r.unified().as_ref().is_some_and(|u| {
        u.keys()
            .any(|k| matches!(k.as_str(), "cpu.max" | "cpuset.cpus" | "cpuset.mems"))
    })
}

/// `r` as resource-control properties, as runc converts them: for the
/// unified hierarchy (`v2`) or the legacy one. `version` is systemd's
/// version (see [`needs_version`]); `devices` says whether to include the
/// device rules (always at creation, on update only when given).
pub fn resources(
    r: &LinuxResources,
    v2: bool,
    version: u32,
    devices: bool,
) -> Result<Vec<Property>> {
    let mut p = Vec::new();
    if devices {
        p.extend(device_properties(&device_rules(r)?));
    }
    if let Some(m) = r.memory() {
        let max = |v: i64| if v < 0 { INFINITY } else { v as u64 };
        if let Some(limit) = nonzero(m.limit()) {
            p.push(prop(
                if v2 { "MemoryMax" } else { "MemoryLimit" },
                Value::U64(max(limit)),
            ));
        }
        if v2 {
            if let Some(low) = nonzero(m.reservation()) {
                p.push(prop("MemoryLow", Value::U64(max(low))));
            }
            if let Some(swap) = nonzero(m.swap()) {
                let limit = nonzero(m.limit()).unwrap_or(-1);
                let only = v2::swap_only(swap, limit)?;
                p.push(prop("MemorySwapMax", Value::U64(max_number(&only))));
            }
        }
    }
    if let Some(c) = r.cpu() {
        if let Some(shares) = nonzero(c.shares()) {
            p.push(if v2 {
                prop("CPUWeight", Value::U64(v2::shares_to_weight(shares)))
            } else {
                prop("CPUShares", Value::U64(shares))
            });
        }
        cpu_quota(
            &mut p,
            nonzero(c.quota()).unwrap_or(0),
            nonzero(c.period()).unwrap_or(0),
            version,
        );
        let cpus = c.cpus().as_deref().unwrap_or_default();
        let mems = c.mems().as_deref().unwrap_or_default();
        cpuset(&mut p, cpus, mems, version)?;
    }
    if let Some(pids) = r.pids() {
        let limit = pids.limit();
        if limit > 0 || limit == -1 {
            p.push(prop(
                "TasksMax",
                Value::U64(if limit < 0 { INFINITY } else { limit as u64 }),
            ));
        }
    }
    if let Some(w) = r.block_io().as_ref().and_then(|b| nonzero(b.weight())) {
        p.push(if v2 {
            prop("IOWeight", Value::U64(v2::blkio_to_io_weight(w)))
        } else {
            prop("BlockIOWeight", Value::U64(u64::from(w)))
        });
    }
    if v2 && let Some(map) = r.unified() {
        p.extend(unified(map, version)?);
    }
    Ok(p)
}

/// "max" as infinity, else the number (already checked by its producer).
fn max_number(v: &str) -> u64 {
    v.parse().unwrap_or(INFINITY)
}

/// CPUQuotaPerSecUSec (and CPUQuotaPeriodUSec where systemd has it) for a
/// CFS quota and period (0: not given), as runc computes them: systemd keeps
/// the quota per second in whole percents of a CPU, so it is rounded up to
/// 10 ms, and the exact quota is then written to the cgroup itself.
fn cpu_quota(p: &mut Vec<Property>, quota: i64, period: u64, version: u32) {
    if period != 0 && version >= SINCE_QUOTA_PERIOD {
        p.push(prop("CPUQuotaPeriodUSec", Value::U64(period)));
    }
    if quota == 0 && period == 0 {
        return;
    }
    let mut per_sec = INFINITY;
    if quota > 0 {
        let period = if period == 0 { DEFAULT_PERIOD } else { period };
        per_sec = ((quota as u64).saturating_mul(1_000_000) / period).div_ceil(10_000) * 10_000;
    }
    p.push(prop("CPUQuotaPerSecUSec", Value::U64(per_sec)));
}

/// AllowedCPUs and AllowedMemoryNodes (systemd 244 and later; older ones
/// get the cgroup files only).
fn cpuset(p: &mut Vec<Property>, cpus: &str, mems: &str, version: u32) -> Result<()> {
    if version < SINCE_ALLOWED_CPUS {
        return Ok(());
    }
    if !cpus.is_empty() {
        let bits = mask(cpus, "linux.resources.cpu.cpus")?;
        p.push(prop("AllowedCPUs", Value::Bytes(bits)));
    }
    if !mems.is_empty() {
        let bits = mask(mems, "linux.resources.cpu.mems")?;
        p.push(prop("AllowedMemoryNodes", Value::Bytes(bits)));
    }
    Ok(())
}

/// The most CPUs or memory nodes a list may name.
const MAX_BITS: u32 = 1 << 16;

/// A list such as "0-3,8" as systemd's byte mask: bit `n % 8` of byte `n / 8`
/// stands for CPU (or node) `n`.
pub fn mask(list: &str, field: &str) -> Result<Vec<u8>> {
    let bad = |why: String| Error::config(field, format!("{list:?}: {why}"));
    let mut bytes: Vec<u8> = Vec::new();
    for part in list.trim().split(',') {
        let part = part.trim();
        let num = |s: &str| {
            s.trim()
                .parse::<u32>()
                .ok()
                .filter(|n| *n < MAX_BITS)
                .ok_or_else(|| {
                    bad(format!(
                        "{s:?} is not a CPU or node number below {MAX_BITS}"
                    ))
                })
        };
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (num(a)?, num(b)?),
            None => {
                let n = num(part)?;
                (n, n)
            }
        };
        if lo > hi {
            return Err(bad(format!("the range {part:?} runs backwards")));
        }
        for n in lo..=hi {
            let i = (n / 8) as usize;
            if bytes.len() <= i {
                bytes.resize(i + 1, 0);
            }
            bytes[i] |= 1 << (n % 8);
        }
    }
    Ok(bytes)
}

/// The device rules the container gets: the config's, then the defaults
/// every container has (as the cgroup file writer applies them).
fn device_rules(r: &LinuxResources) -> Result<Reduced> {
    let mut rules = match r.devices() {
        Some(list) => devices::parse_rules(list)?,
        None => Vec::new(),
    };
    rules.extend(devices::default_allowed());
    devices::reduce(&rules)
}

/// DevicePolicy and DeviceAllow for reduced rules, as runc makes them:
/// systemd only knows allow-lists, so allow-all is DevicePolicy=auto, an
/// allow-list is DevicePolicy=strict with one entry per exception, and a
/// deny-list becomes deny-all here (the runtime's own device rules, written
/// right after, then allow what they allow).
pub fn device_properties(r: &Reduced) -> Vec<Property> {
    let reset = prop("DeviceAllow", Value::DeviceAllow(Vec::new()));
    if r.default_allow {
        if r.exceptions.is_empty() {
            return vec![prop("DevicePolicy", Value::Str("auto".into())), reset];
        }
        tracing::warn!(
            "systemd has no deny-list device rules: the scope denies every device until the \
             runtime's rules are written"
        );
        return vec![prop("DevicePolicy", Value::Str("strict".into())), reset];
    }
    let mut allow = Vec::new();
    for (key, bits) in &r.exceptions {
        let Some(path) = device_path(key) else {
            tracing::warn!(
                "systemd has no rule for {}: left to the runtime's own device rules",
                devices::key_text(key)
            );
            continue;
        };
        allow.push((path, devices::access_text(*bits)));
    }
    vec![
        prop("DevicePolicy", Value::Str("strict".into())),
        reset,
        prop("DeviceAllow", Value::DeviceAllow(allow)),
    ]
}

/// DeviceAllow's name for the devices of `key`: `char-*`, `block-8` (all
/// minors), `/dev/char/1:3`; `None` for "any major, one minor", which
/// systemd cannot express.
fn device_path(key: &Key) -> Option<String> {
    let group = match key.kind {
        Kind::Block => "block",
        Kind::Char => "char",
    };
    match (key.major, key.minor) {
        (None, None) => Some(format!("{group}-*")),
        (None, Some(_)) => None,
        (Some(major), None) => Some(format!("{group}-{major}")),
        (Some(major), Some(minor)) => Some(format!("/dev/{group}/{major}:{minor}")),
    }
}

/// `linux.resources.unified` entries that systemd has properties for (the
/// rest only go to the cgroup files).
fn unified(map: &HashMap<String, String>, version: u32) -> Result<Vec<Property>> {
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    let mut p = Vec::new();
    for k in keys {
        let v = map[k].trim();
        let field = format!("linux.resources.unified.{k}");
        let number = |s: &str| -> Result<u64> {
            if s == "max" {
                return Ok(INFINITY);
            }
            s.parse()
                .map_err(|_| Error::config(&field, format!("{s:?} is not a number or \"max\"")))
        };
        match k.as_str() {
            "cpu.max" => {
                let parts: Vec<&str> = v.split_whitespace().collect();
                let (quota, period) = match parts.as_slice() {
                    [q] => (*q, None),
                    [q, p] => (*q, Some(*p)),
                    _ => {
                        return Err(Error::config(
                            &field,
                            format!("{v:?}: expected \"QUOTA [PERIOD]\""),
                        ));
                    }
                };
                let quota = match number(quota)? {
                    INFINITY => 0,
                    q => i64::try_from(q)
                        .map_err(|_| Error::config(&field, format!("{q} is too large")))?,
                };
                let period = period.map(number).transpose()?.unwrap_or(DEFAULT_PERIOD);
                cpu_quota(&mut p, quota, period, version);
            }
            "cpu.weight" => p.push(prop("CPUWeight", Value::U64(number(v)?))),
            "cpuset.cpus" => cpuset(&mut p, v, "", version)?,
            "cpuset.mems" => cpuset(&mut p, "", v, version)?,
            "memory.high" | "memory.low" | "memory.min" | "memory.max" | "memory.swap.max" => {
                let name = match k.as_str() {
                    "memory.high" => "MemoryHigh",
                    "memory.low" => "MemoryLow",
                    "memory.min" => "MemoryMin",
                    "memory.max" => "MemoryMax",
                    _ => "MemorySwapMax",
                };
                p.push(prop(name, Value::U64(number(v)?)));
            }
            "pids.max" => p.push(prop("TasksMax", Value::U64(number(v)?))),
            _ => {}
        }
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> LinuxResources {
        serde_json::from_str(json).unwrap()
    }

    fn get<'a>(p: &'a [Property], name: &str) -> Option<&'a Value> {
        p.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    #[test]
    fn the_scope_is_delegated_and_holds_the_init() {
        let s = Scope::from_config(None, "c1").unwrap();
        let p = scope(&s, 42, true);
        assert_eq!(get(&p, "PIDs"), Some(&Value::U32s(vec![42])));
        assert_eq!(get(&p, "Slice"), Some(&Value::Str("system.slice".into())));
        assert_eq!(get(&p, "Delegate"), Some(&Value::Bool(true)));
        assert_eq!(get(&p, "DefaultDependencies"), Some(&Value::Bool(false)));
        assert_eq!(get(&p, "IOAccounting"), Some(&Value::Bool(true)));
        assert_eq!(
            get(&scope(&s, 1, false), "BlockIOAccounting"),
            Some(&Value::Bool(true))
        );
    }

    #[test]
    fn resources_become_v2_properties() {
        let r = parse(
            r#"{"memory": {"limit": 104857600, "reservation": 52428800, "swap": 209715200},
                "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0-2,9"},
                "pids": {"limit": 64}, "blockIO": {"weight": 500}}"#,
        );
        let p = resources(&r, true, 252, false).unwrap();
        assert_eq!(get(&p, "MemoryMax"), Some(&Value::U64(104857600)));
        assert_eq!(get(&p, "MemoryLow"), Some(&Value::U64(52428800)));
        assert_eq!(get(&p, "MemorySwapMax"), Some(&Value::U64(104857600)));
        assert_eq!(get(&p, "CPUWeight"), Some(&Value::U64(39)));
        assert_eq!(get(&p, "CPUQuotaPerSecUSec"), Some(&Value::U64(500_000)));
        assert_eq!(get(&p, "CPUQuotaPeriodUSec"), Some(&Value::U64(100_000)));
        assert_eq!(
            get(&p, "AllowedCPUs"),
            Some(&Value::Bytes(vec![0b111, 0b10]))
        );
        assert_eq!(get(&p, "TasksMax"), Some(&Value::U64(64)));
        assert_eq!(
            get(&p, "IOWeight"),
            Some(&Value::U64(v2::blkio_to_io_weight(500)))
        );
        assert!(get(&p, "DevicePolicy").is_none());
    }

    #[test]
    fn resources_become_v1_properties() {
        let r = parse(
            r#"{"memory": {"limit": -1}, "cpu": {"shares": 512, "quota": 33333},
                "pids": {"limit": -1}, "blockIO": {"weight": 300}}"#,
        );
        let p = resources(&r, false, 252, false).unwrap();
        assert_eq!(get(&p, "MemoryLimit"), Some(&Value::U64(u64::MAX)));
        assert_eq!(get(&p, "CPUShares"), Some(&Value::U64(512)));
        // 33333 µs per 100 ms is 333330 µs per second, rounded up to 10 ms.
        assert_eq!(get(&p, "CPUQuotaPerSecUSec"), Some(&Value::U64(340_000)));
        assert!(get(&p, "CPUQuotaPeriodUSec").is_none());
        assert_eq!(get(&p, "TasksMax"), Some(&Value::U64(u64::MAX)));
        assert_eq!(get(&p, "BlockIOWeight"), Some(&Value::U64(300)));
        assert!(get(&p, "MemoryMax").is_none());
    }

    #[test]
    fn old_systemd_gets_no_younger_properties() {
        let r = parse(r#"{"cpu": {"period": 50000, "cpus": "1"}}"#);
        assert!(needs_version(&r));
        let p = resources(&r, true, 239, false).unwrap();
        assert!(get(&p, "CPUQuotaPeriodUSec").is_none());
        assert!(get(&p, "AllowedCPUs").is_none());
        assert_eq!(get(&p, "CPUQuotaPerSecUSec"), Some(&Value::U64(u64::MAX)));
        assert!(!needs_version(&parse(r#"{"memory": {"limit": 1}}"#)));
    }

    #[test]
    fn device_rules_become_an_allow_list() {
        let r = parse(
            r#"{"devices": [{"allow": false, "access": "rwm"},
                            {"allow": true, "type": "c", "major": 4, "access": "rw"},
                            {"allow": true, "type": "b", "minor": 1, "access": "r"}]}"#,
        );
        let p = resources(&r, true, 252, true).unwrap();
        assert_eq!(get(&p, "DevicePolicy"), Some(&Value::Str("strict".into())));
        let Some(Value::DeviceAllow(list)) = get(&p, "DeviceAllow") else {
            panic!("{p:?}")
        };
        let has = |path: &str, perms: &str| list.iter().any(|(a, b)| a == path && b == perms);
        assert!(has("char-4", "rw"), "{list:?}");
        assert!(has("/dev/char/1:3", "rwm"), "{list:?}");
        assert!(has("char-*", "m") && has("block-*", "m"), "{list:?}");
        assert!(has("char-136", "rwm"), "{list:?}");
        // "any major, minor 1" has no systemd form.
        assert!(
            !list
                .iter()
                .any(|(a, _)| a.starts_with("block-") && a != "block-*")
        );
        let all = parse(r#"{"devices": [{"allow": true, "access": "rwm"}]}"#);
        let p = resources(&all, true, 252, true).unwrap();
        assert_eq!(get(&p, "DevicePolicy"), Some(&Value::Str("auto".into())));
        assert_eq!(
            get(&p, "DeviceAllow"),
            Some(&Value::DeviceAllow(Vec::new()))
        );
    }

    #[test]
    fn unified_entries_become_properties() {
        let r = parse(
            r#"{"unified": {"memory.high": "1000000", "memory.max": "max", "pids.max": "9",
                            "cpu.max": "20000 50000", "cpu.weight": "70", "io.weight": "5"}}"#,
        );
        let p = resources(&r, true, 252, false).unwrap();
        assert_eq!(get(&p, "MemoryHigh"), Some(&Value::U64(1_000_000)));
        assert_eq!(get(&p, "MemoryMax"), Some(&Value::U64(u64::MAX)));
        assert_eq!(get(&p, "TasksMax"), Some(&Value::U64(9)));
        assert_eq!(get(&p, "CPUQuotaPerSecUSec"), Some(&Value::U64(400_000)));
        assert_eq!(get(&p, "CPUQuotaPeriodUSec"), Some(&Value::U64(50_000)));
        assert_eq!(get(&p, "CPUWeight"), Some(&Value::U64(70)));
        let bad = parse(r#"{"unified": {"memory.max": "lots"}}"#);
        let e = resources(&bad, true, 252, false).unwrap_err().to_string();
        assert!(e.contains("linux.resources.unified.memory.max"), "{e}");
        // The legacy hierarchy has no unified files to convert.
        assert!(resources(&r, false, 252, false).unwrap().is_empty());
    }

    #[test]
    fn masks_are_little_endian_bits() {
        assert_eq!(mask("0", "f").unwrap(), vec![1]);
        assert_eq!(mask("1-3, 8", "f").unwrap(), vec![0b1110, 1]);
        assert_eq!(mask("15", "f").unwrap(), vec![0, 0x80]);
        for bad in ["", "a", "3-1", "1-", "99999999"] {
            assert!(
                mask(bad, "f").unwrap_err().to_string().contains("f"),
                "{bad}"
            );
        }
    }
}
