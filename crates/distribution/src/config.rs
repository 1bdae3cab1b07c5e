//! `registries.json`: registries reached without TLS verification (or over
//! plain HTTP), docker.io mirrors and transfer parallelism, with the key
//! names of Docker's `daemon.json`:
//!
//! ```json
//! {
//!   "insecure-registries": ["registry.lan:5000", "10.0.0.0/8"],
//!   "registry-mirrors": ["https://mirror.example.com"],
//!   "max-concurrent-downloads": 3,
//!   "max-concurrent-uploads": 5
//! }
//! ```
//!
//! It is read from `$CAPSA_REGISTRIES_CONFIG`, else `/etc/capsa/registries.json`
//! (root) or `$XDG_CONFIG_HOME/capsa/registries.json` (other users); a
//! missing file means the defaults. Per-registry CA certificates live in
//! `certs.d/HOST[:PORT]/` beside it (`$CAPSA_CERTS_DIR` overrides).

use std::net::{IpAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};

/// Layers downloaded at once unless configured.
pub const DEFAULT_DOWNLOADS: usize = 3;
/// Blobs uploaded at once unless configured.
pub const DEFAULT_UPLOADS: usize = 5;
/// Most transfers at once a configuration may ask for.
const MAX_PARALLEL: usize = 64;

/// The registry configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// Registries (`host[:port]`) and networks (CIDR) reached without TLS
    /// verification, falling back to plain HTTP.
    pub insecure_registries: Vec<String>,
    /// Mirrors of docker.io (`https://host[:port]` or `http://...`), tried in order before it.
    pub registry_mirrors: Vec<String>,
    /// Layers downloaded in parallel by a pull.
    pub max_concurrent_downloads: usize,
    /// Blobs uploaded in parallel by a push.
    pub max_concurrent_uploads: usize,
    /// The base directory of per-registry certificates (`<dir>/HOST:PORT/ca.crt`).
    pub certs_dir: PathBuf,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct File {
    #[serde(default)]
    insecure_registries: Vec<String>,
    #[serde(default)]
    registry_mirrors: Vec<String>,
    max_concurrent_downloads: Option<usize>,
    max_concurrent_uploads: Option<usize>,
}

fn config_base() -> PathBuf {
    if nix::unistd::geteuid().is_root() {
        return PathBuf::from("/etc/capsa");
    }
    match std::env::var_os("XDG_CONFIG_HOME") {
        Some(d) if !d.is_empty() => PathBuf::from(d).join("capsa"),
        _ => {
            let home = std::env::var_os("HOME").unwrap_or_else(|| "/".into());
            PathBuf::from(home).join(".config/capsa")
        }
    }
}

/// Where the configuration is read from: `$CAPSA_REGISTRIES_CONFIG`, else
/// `/etc/capsa/registries.json` for root and
/// `$XDG_CONFIG_HOME/capsa/registries.json` for other users.
pub fn default_path() -> PathBuf {
    match std::env::var_os("CAPSA_REGISTRIES_CONFIG") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => config_base().join("registries.json"),
    }
}

/// The base directory of per-registry certificates: `$CAPSA_CERTS_DIR`,
/// else `/etc/capsa/certs.d` for root and `$XDG_CONFIG_HOME/capsa/certs.d`.
pub fn default_certs_dir() -> PathBuf {
    match std::env::var_os("CAPSA_CERTS_DIR") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => config_base().join("certs.d"),
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            insecure_registries: Vec::new(),
            registry_mirrors: Vec::new(),
            max_concurrent_downloads: DEFAULT_DOWNLOADS,
            max_concurrent_uploads: DEFAULT_UPLOADS,
            certs_dir: default_certs_dir(),
        }
    }
}

impl Config {
    /// Reads the configuration from [`default_path`]; a missing file gives the defaults.
    pub fn load() -> Result<Config> {
        Config::from_file(&default_path())
    }

    /// Reads the configuration from `path`; a missing file gives the defaults.
    pub fn from_file(path: &Path) -> Result<Config> {
        let bad = |r: String| Error::Config(format!("{}: {r}", path.display()));
        let data = match std::fs::read(path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
            Err(e) => return Err(bad(e.to_string())),
        };
        let f: File = serde_json::from_slice(&data).map_err(|e| bad(e.to_string()))?;
        for m in &f.registry_mirrors {
            validate_mirror(m).map_err(|r| bad(format!("registry-mirrors: {m:?}: {r}")))?;
        }
        for i in &f.insecure_registries {
            if i.is_empty() || i.contains("://") || i.contains('/') && parse_cidr(i).is_none() {
                return Err(bad(format!(
                    "insecure-registries: {i:?}: expected HOST[:PORT] or a CIDR network"
                )));
            }
        }
        let parallel = |v: Option<usize>, key: &str, default: usize| match v {
            None => Ok(default),
            Some(n) if (1..=MAX_PARALLEL).contains(&n) => Ok(n),
            Some(n) => Err(bad(format!(
                "{key}: {n} is not between 1 and {MAX_PARALLEL}"
            ))),
        };
        Ok(Config {
            max_concurrent_downloads: parallel(
                f.max_concurrent_downloads,
                "max-concurrent-downloads",
                DEFAULT_DOWNLOADS,
            )?,
            max_concurrent_uploads: parallel(
                f.max_concurrent_uploads,
                "max-concurrent-uploads",
                DEFAULT_UPLOADS,
            )?,
            insecure_registries: f.insecure_registries,
            registry_mirrors: f
                .registry_mirrors
                .into_iter()
                .map(|m| m.trim_end_matches('/').to_string())
                .collect(),
            certs_dir: default_certs_dir(),
        })
    }

    /// Whether `host` (`host[:port]`) is listed as insecure, by name or
    /// because one of its addresses is in a listed network.
    pub fn is_insecure(&self, host: &str) -> bool {
        if self.insecure_registries.iter().any(|i| i == host) {
            return true;
        }
        let nets: Vec<(IpAddr, u8)> = self
            .insecure_registries
            .iter()
            .filter_map(|i| parse_cidr(i))
            .collect();
        if nets.is_empty() {
            return false;
        }
        addresses(host)
            .iter()
            .any(|a| nets.iter().any(|(net, bits)| in_network(*a, *net, *bits)))
    }
}

fn validate_mirror(m: &str) -> std::result::Result<(), String> {
    let rest = m
        .strip_prefix("https://")
        .or_else(|| m.strip_prefix("http://"))
        .ok_or("a mirror is an http:// or https:// URL")?;
    let rest = rest.trim_end_matches('/');
    if rest.is_empty() || rest.contains('/') {
        return Err("a mirror URL has a host and no path".into());
    }
    Ok(())
}

/// The host name without port or brackets.
pub fn host_name(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

/// The addresses a registry host name resolves to (IP literals directly).
fn addresses(host: &str) -> Vec<IpAddr> {
    let name = host_name(host);
    if let Ok(ip) = name.parse::<IpAddr>() {
        return vec![ip];
    }
    (name, 0)
        .to_socket_addrs()
        .map(|it| it.map(|a| a.ip()).collect())
        .unwrap_or_default()
}

/// Whether every address of `host` is a loopback address (`localhost`,
/// 127.0.0.0/8, ::1): such registries may be reached over plain HTTP.
pub fn is_loopback(host: &str) -> bool {
    let name = host_name(host);
    if name == "localhost" {
        return true;
    }
    let addrs = addresses(host);
    !addrs.is_empty() && addrs.iter().all(IpAddr::is_loopback)
}

fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (ip, bits) = s.split_once('/')?;
    let ip: IpAddr = ip.parse().ok()?;
    let bits: u8 = bits.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    (bits <= max).then_some((ip, bits))
}

fn in_network(a: IpAddr, net: IpAddr, bits: u8) -> bool {
    let (a, net, width) = match (a, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => (u32::from(a) as u128, u32::from(n) as u128, 32),
        (IpAddr::V6(a), IpAddr::V6(n)) => (u128::from(a), u128::from(n), 128),
        _ => return false,
    };
    if bits == 0 {
        return true;
    }
    let shift = width - bits as u32;
    (a >> shift) == (net >> shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_docker_keys_and_refuses_unknown_ones() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.json");
        std::fs::write(
            &p,
            r#"{"insecure-registries": ["reg.lan:5000", "10.1.0.0/16"],
                "registry-mirrors": ["https://mirror.example/"], "max-concurrent-downloads": 6}"#,
        )
        .unwrap();
        let c = Config::from_file(&p).unwrap();
        assert_eq!(c.max_concurrent_downloads, 6);
        assert_eq!(c.max_concurrent_uploads, DEFAULT_UPLOADS);
        assert_eq!(c.registry_mirrors, ["https://mirror.example"]);
        assert!(c.is_insecure("reg.lan:5000"));
        assert!(c.is_insecure("10.1.2.3:5000"));
        assert!(!c.is_insecure("10.2.0.1"));
        std::fs::write(&p, r#"{"insecure-registry": []}"#).unwrap();
        let e = Config::from_file(&p).unwrap_err().to_string();
        assert!(e.contains("insecure-registry"), "{e}");
        std::fs::write(&p, r#"{"registry-mirrors": ["mirror.example"]}"#).unwrap();
        assert!(Config::from_file(&p).is_err());
        std::fs::write(&p, r#"{"max-concurrent-downloads": 0}"#).unwrap();
        assert!(Config::from_file(&p).is_err());
        let missing = Config::from_file(&dir.path().join("none.json")).unwrap();
        assert_eq!(missing.max_concurrent_downloads, DEFAULT_DOWNLOADS);
    }

    #[test]
    fn loopback_and_host_names() {
        assert!(is_loopback("127.0.0.1:5000"));
        assert!(is_loopback("127.3.4.5"));
        assert!(is_loopback("[::1]:5000"));
        assert!(is_loopback("localhost:5000"));
        assert!(!is_loopback("10.0.0.1:5000"));
        assert_eq!(host_name("[::1]:5000"), "::1");
        assert_eq!(host_name("reg.lan:5000"), "reg.lan");
        assert_eq!(host_name("reg.lan"), "reg.lan");
    }
}
