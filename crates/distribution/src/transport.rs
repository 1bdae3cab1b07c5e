//! How a registry is reached: its endpoints (Docker Hub's real host,
//! docker.io mirrors, HTTPS then plain HTTP where allowed) and the HTTP
//! agent of each, with TLS verified against the system roots plus the
//! registry's own CA certificates in `certs.d/HOST[:PORT]/*.crt` (and a
//! client certificate from `*.cert`/`*.key`), as Docker lays them out.

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig};

use crate::config::{self, Config};
use crate::error::{Error, Result};

/// The host that serves `docker.io` images.
pub const DOCKER_HUB_HOST: &str = "registry-1.docker.io";

/// The `--tls-verify` setting of a command.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TlsVerify {
    /// Verify over HTTPS, except for registries marked insecure in the
    /// configuration (no verification, then plain HTTP); loopback
    /// registries may answer over plain HTTP.
    #[default]
    Default,
    /// Always HTTPS with verification, loopback registries included.
    Yes,
    /// Like an insecure registry: HTTPS without verification, then plain HTTP.
    No,
}

/// One way to reach a registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// The `host[:port]` contacted.
    pub host: String,
    /// Whether HTTPS is tried (false only for `http://` mirrors).
    pub https: bool,
    /// Whether the TLS certificate is verified.
    pub verify: bool,
    /// Whether plain HTTP is tried when HTTPS fails.
    pub allow_http: bool,
    /// Whether this is a docker.io mirror (pulls only).
    pub mirror: bool,
}

/// The endpoints of the registry `domain` (a reference's domain), in the
/// order they are tried: docker.io mirrors first when pulling.
pub fn endpoints(config: &Config, domain: &str, tls: TlsVerify, pull: bool) -> Vec<Endpoint> {
    let mut out = Vec::new();
    let hub = domain == capsa_images::reference::DEFAULT_DOMAIN;
    if hub && pull {
        for m in &config.registry_mirrors {
            let (https, host) = match m.strip_prefix("https://") {
                Some(h) => (true, h),
                None => (false, m.strip_prefix("http://").unwrap_or(m)),
            };
            let insecure = tls == TlsVerify::No || config.is_insecure(host);
            out.push(Endpoint {
                host: host.to_string(),
                https,
                verify: !insecure,
                allow_http: https && insecure,
                mirror: true,
            });
        }
    }
    let host = if hub { DOCKER_HUB_HOST } else { domain };
    let insecure = match tls {
        TlsVerify::Yes => false,
        TlsVerify::No => true,
        TlsVerify::Default => config.is_insecure(domain),
    };
    out.push(Endpoint {
        host: host.to_string(),
        https: true,
        verify: !insecure,
        allow_http: insecure || (tls == TlsVerify::Default && config::is_loopback(host)),
        mirror: false,
    });
    out
}

/// The system's root certificates, loaded once.
fn system_roots() -> &'static [Certificate<'static>] {
    static ROOTS: OnceLock<Vec<Certificate<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        for e in &found.errors {
            tracing::debug!("loading system root certificates: {e}");
        }
        found
            .certs
            .iter()
            .map(|c| Certificate::from_der(c.as_ref()).to_owned())
            .collect()
    })
}

/// The CA certificates (`*.crt`) and client certificate (`*.cert` with its
/// `*.key`) in `dir`, as Docker reads `certs.d/HOST:PORT`.
fn registry_certs(dir: &Path) -> Result<(Vec<Certificate<'static>>, Option<ClientCert>)> {
    let bad = |p: &Path, r: String| Error::Config(format!("{}: {r}", p.display()));
    let mut cas = Vec::new();
    let mut client = None;
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((cas, client)),
        Err(e) => return Err(bad(dir, e.to_string())),
    };
    let mut names: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    names.sort();
    for p in names {
        let ext = p.extension().and_then(|e| e.to_str()).unwrap_or_default();
        if ext != "crt" && ext != "cert" {
            continue;
        }
        let data = std::fs::read(&p).map_err(|e| bad(&p, e.to_string()))?;
        let mut certs = Vec::new();
        for item in ureq::tls::parse_pem(&data) {
            if let PemItem::Certificate(c) =
                item.map_err(|e| bad(&p, format!("malformed PEM: {e}")))?
            {
                certs.push(c);
            }
        }
        if certs.is_empty() {
            return Err(bad(&p, "no PEM certificate in it".into()));
        }
        if ext == "crt" {
            cas.extend(certs);
            continue;
        }
        let key_path = p.with_extension("key");
        let key_data = std::fs::read(&key_path).map_err(|e| {
            bad(
                &key_path,
                format!("the key of client certificate {}: {e}", p.display()),
            )
        })?;
        let key = PrivateKey::from_pem(&key_data)
            .map_err(|e| bad(&key_path, format!("malformed private key: {e}")))?;
        client = Some(ClientCert::new_with_certs(&certs, key));
    }
    Ok((cas, client))
}

/// The HTTP agent for `endpoint` of the registry `domain`: TLS verified
/// against the system roots and `certs.d/<domain>` (and the endpoint's host
/// when it differs), or not verified at all for insecure endpoints.
pub fn agent(config: &Config, domain: &str, endpoint: &Endpoint) -> Result<ureq::Agent> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = TlsConfig::builder().unversioned_rustls_crypto_provider(provider);
    if endpoint.https {
        if endpoint.verify {
            let mut roots = system_roots().to_vec();
            let mut client = None;
            let mut dirs = vec![domain];
            if endpoint.host != domain {
                dirs.push(&endpoint.host);
            }
            for d in dirs {
                let (cas, c) = registry_certs(&config.certs_dir.join(d))?;
                roots.extend(cas);
                client = client.or(c);
            }
            tls = tls
                .root_certs(RootCerts::new_with_certs(&roots))
                .client_cert(client);
        } else {
            tls = tls.disable_verification(true);
            let (_, client) = registry_certs(&config.certs_dir.join(domain))?;
            tls = tls.client_cert(client);
        }
    }
    Ok(ureq::Agent::config_builder()
        .http_status_as_error(false)
        .tls_config(tls.build())
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(120)))
        .timeout_per_read(Some(Duration::from_secs(60)))
        .timeout_per_write(Some(Duration::from_secs(60)))
        .max_redirects(10)
        // Credentials follow a redirect only to the same host over HTTPS
        // (blob storage elsewhere gets none), as Docker does.
        .redirect_auth_headers(ureq::config::RedirectAuthHeaders::SameHost)
        .max_idle_connections_per_host(16)
        .user_agent(concat!("capsa/", env!("CARGO_PKG_VERSION")))
        .build()
        .new_agent())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config {
            insecure_registries: vec!["reg.lan:5000".into()],
            registry_mirrors: vec!["https://m1.example".into(), "http://127.0.0.1:5001".into()],
            ..Config::default()
        }
    }

    #[test]
    fn docker_hub_goes_through_mirrors_when_pulling() {
        let c = config();
        let e = endpoints(&c, "docker.io", TlsVerify::Default, true);
        let hosts: Vec<_> = e.iter().map(|e| e.host.as_str()).collect();
        assert_eq!(hosts, ["m1.example", "127.0.0.1:5001", DOCKER_HUB_HOST]);
        assert!(e[0].https && e[0].verify && !e[0].allow_http);
        assert!(!e[1].https && e[1].mirror);
        assert!(e[2].verify && !e[2].allow_http);
        let e = endpoints(&c, "docker.io", TlsVerify::Default, false);
        assert_eq!(e.len(), 1, "no mirrors for pushes");
    }

    #[test]
    fn insecure_and_loopback_registries() {
        let c = config();
        let e = &endpoints(&c, "reg.lan:5000", TlsVerify::Default, true)[0];
        assert!(!e.verify && e.allow_http);
        let e = &endpoints(&c, "127.0.0.1:5000", TlsVerify::Default, true)[0];
        assert!(
            e.verify && e.allow_http,
            "loopback: verified TLS, plain HTTP allowed"
        );
        let e = &endpoints(&c, "127.0.0.1:5000", TlsVerify::Yes, true)[0];
        assert!(e.verify && !e.allow_http);
        let e = &endpoints(&c, "quay.io", TlsVerify::No, true)[0];
        assert!(!e.verify && e.allow_http);
        let e = &endpoints(&c, "quay.io", TlsVerify::Default, true)[0];
        assert!(e.verify && !e.allow_http);
    }
}
