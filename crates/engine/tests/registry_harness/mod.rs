//! Registry test harness: real registries from Debian's `docker-registry`
//! on free loopback ports (plain HTTP; TLS with a CA made here and htpasswd
//! basic auth; token authentication with a token server that signs JWTs
//! with a test key), a tiny HTTP server for fake registries and the token
//! server, a proxy that cuts connections mid-blob, OCI layouts for skopeo,
//! and a capsa command isolated from the machine's configuration (its own
//! store, Docker config, certs.d and registries.json). Everything is
//! stopped and removed when dropped, also when a test fails.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};

use crate::common::{Comp, Image, Root, compress, hex, sha256, stderr, stdout};

/// Debian's registry binary.
pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

/// Prints why a test is skipped and returns true when the registry (or,
/// with `skopeo`, skopeo) is missing, or when not root.
pub fn skip_without_registry(skopeo: bool) -> bool {
    if crate::common::skip_unless_root() {
        return true;
    }
    if !Path::new(REGISTRY_BIN).exists() {
        eprintln!("SKIPPED: {REGISTRY_BIN} is missing (apt-get install docker-registry)");
        return true;
    }
    if skopeo && Command::new("skopeo").arg("--version").output().is_err() {
        eprintln!("SKIPPED: skopeo is missing (apt-get install skopeo)");
        return true;
    }
    false
}

/// Skips the test unless root with docker-registry (and skopeo when asked).
#[macro_export]
macro_rules! require_registry {
    () => {
        if $crate::registry_harness::skip_without_registry(false) {
            return;
        }
    };
    (skopeo) => {
        if $crate::registry_harness::skip_without_registry(true) {
            return;
        }
    };
}

/// A loopback port free right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A CA and a server certificate for 127.0.0.1 and localhost signed by it.
pub struct Pki {
    dir: tempfile::TempDir,
    /// The CA certificate (PEM).
    pub ca_pem: String,
    /// The server certificate file.
    pub cert: PathBuf,
    /// The server key file.
    pub key: PathBuf,
}

impl Pki {
    /// Makes a new CA and server certificate.
    pub fn new() -> Pki {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
        };
        let dir = tempfile::Builder::new()
            .prefix("capsa-pki-")
            .tempdir()
            .unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "capsa test CA");
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca, ca_key);
        let key = KeyPair::generate().unwrap();
        let mut p =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
        p.distinguished_name.push(DnType::CommonName, "127.0.0.1");
        let cert = p.signed_by(&key, &issuer).unwrap();
        let cert_path = dir.path().join("server.crt");
        let key_path = dir.path().join("server.key");
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        Pki {
            ca_pem: ca_cert.pem(),
            dir,
            cert: cert_path,
            key: key_path,
        }
    }

    /// Puts the CA in `<certs_dir>/<host>/ca.crt`, as Docker lays it out.
    pub fn install_ca(&self, certs_dir: &Path, host: &str) {
        let d = certs_dir.join(host);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("ca.crt"), &self.ca_pem).unwrap();
    }
}

/// How a registry authenticates.
pub enum RegistryAuth<'a> {
    /// Not at all.
    None,
    /// htpasswd basic auth with these users.
    Htpasswd(&'a [(&'a str, &'a str)]),
    /// Bearer tokens from this token server.
    Token(&'a TokenServer),
}

/// A running `docker-registry serve` with storage in a temporary folder.
pub struct Registry {
    child: Child,
    dir: tempfile::TempDir,
    /// `127.0.0.1:PORT`.
    pub host: String,
    /// Its port.
    pub port: u16,
}

impl Registry {
    /// A plain HTTP registry without authentication.
    pub fn plain() -> Registry {
        Registry::start(None, RegistryAuth::None)
    }

    /// Starts a registry on a free loopback port.
    pub fn start(tls: Option<&Pki>, auth: RegistryAuth<'_>) -> Registry {
        let dir = tempfile::Builder::new()
            .prefix("capsa-registry-")
            .tempdir()
            .unwrap();
        let mut auth_yaml = String::new();
        match auth {
            RegistryAuth::None => {}
            RegistryAuth::Htpasswd(users) => {
                let mut file = String::new();
                for (u, p) in users {
                    file.push_str(&format!("{u}:{}\n", bcrypt::hash(p, 4).unwrap()));
                }
                let path = dir.path().join("htpasswd");
                std::fs::write(&path, file).unwrap();
                auth_yaml = format!(
                    "auth:\n  htpasswd:\n    realm: capsa-test\n    path: {}\n",
                    path.display()
                );
            }
            RegistryAuth::Token(t) => {
                auth_yaml = format!(
                    "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
                    t.realm,
                    TokenServer::SERVICE,
                    TokenServer::ISSUER,
                    t.cert.display()
                );
            }
        }
        let tls_yaml = match tls {
            Some(p) => format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                p.cert.display(),
                p.key.display()
            ),
            None => String::new(),
        };
        for _ in 0..5 {
            let port = free_port();
            let config = format!(
                "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: capsa-test-secret\n{tls_yaml}{auth_yaml}",
                dir.path().join("data").display()
            );
            let cfg = dir.path().join("config.yml");
            std::fs::write(&cfg, config).unwrap();
            let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
            let mut child = Command::new(REGISTRY_BIN)
                .arg("serve")
                .arg(&cfg)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap();
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                if let Ok(Some(_)) = child.try_wait() {
                    break; // The port was taken meanwhile: try another.
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Registry {
                        child,
                        dir,
                        host: format!("127.0.0.1:{port}"),
                        port,
                    };
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "the registry did not start: {}",
                        std::fs::read_to_string(dir.path().join("registry.log"))
                            .unwrap_or_default()
                    );
                }
                std::thread::sleep(Duration::from_millis(30));
            }
        }
        panic!(
            "the registry did not start: {}",
            std::fs::read_to_string(dir.path().join("registry.log")).unwrap_or_default()
        );
    }

    /// The registry's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP request received by [`HttpServer`].
#[derive(Clone, Debug)]
pub struct Request {
    /// GET, HEAD, ...
    pub method: String,
    /// The path and query.
    pub target: String,
    /// Headers, names lowercase.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Request {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The path without the query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or_default()
    }

    /// The values of a query parameter, decoded.
    pub fn query(&self, key: &str) -> Vec<String> {
        let Some((_, q)) = self.target.split_once('?') else {
            return Vec::new();
        };
        q.split('&')
            .filter_map(|kv| kv.split_once('='))
            .filter(|(k, _)| *k == key)
            .map(|(_, v)| percent_decode(v))
            .collect()
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let h = u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap_or(b'?');
                out.push(h);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An HTTP response for [`HttpServer`].
#[derive(Clone)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// Send only this many bytes of the body, then close (Content-Length
    /// still announces all of it): a connection broken mid-body.
    pub cut_at: Option<usize>,
}

impl Response {
    /// A response with a status and body.
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: body.into(),
            cut_at: None,
        }
    }

    /// With a header.
    pub fn header(mut self, k: &str, v: &str) -> Response {
        self.headers.push((k.to_string(), v.to_string()));
        self
    }
}

type Handler = dyn Fn(&Request) -> Response + Send + Sync;

/// A tiny HTTP/1.1 server on a free loopback port (one request per
/// connection), for fake registries and the token server.
pub struct HttpServer {
    /// Its port.
    pub port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// Every request received.
    pub requests: Arc<Mutex<Vec<Request>>>,
}

impl HttpServer {
    /// Serves `handler` until dropped.
    pub fn start(handler: impl Fn(&Request) -> Response + Send + Sync + 'static) -> HttpServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let (s, r) = (stop.clone(), requests.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let (h, r) = (handler.clone(), r.clone());
                std::thread::spawn(move || serve_one(conn, &*h, &r));
            }
        });
        HttpServer {
            port,
            stop,
            thread: Some(thread),
            requests,
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

fn serve_one(conn: TcpStream, handler: &Handler, log: &Mutex<Vec<Request>>) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default().to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 {
            return;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let req = Request {
        method,
        target,
        headers,
        body,
    };
    log.lock().unwrap().push(req.clone());
    let resp = handler(&req);
    let reason = match resp.status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        206 => "Partial Content",
        401 => "Unauthorized",
        404 => "Not Found",
        429 => "Too Many Requests",
        _ => "Status",
    };
    let mut head = format!(
        "HTTP/1.1 {} {reason}\r\nContent-Length: {}\r\nConnection: close\r\n",
        resp.status,
        resp.body.len()
    );
    for (k, v) in &resp.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let mut conn = conn;
    let _ = conn.write_all(head.as_bytes());
    if req.method != "HEAD" {
        let end = resp.cut_at.unwrap_or(resp.body.len()).min(resp.body.len());
        let _ = conn.write_all(&resp.body[..end]);
    }
    let _ = conn.flush();
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A token server for the registry's `auth: token`: users with passwords
/// get what they ask for, anonymous users only `pull`; tokens are ES256
/// JWTs whose `x5c` certificate is the registry's `rootcertbundle`.
pub struct TokenServer {
    /// The HTTP server.
    pub server: HttpServer,
    /// The signing certificate (PEM file), the registry's root bundle.
    pub cert: PathBuf,
    /// The realm URL.
    pub realm: String,
    _dir: tempfile::TempDir,
}

impl TokenServer {
    /// The service name.
    pub const SERVICE: &'static str = "capsa-test-registry";
    /// The issuer.
    pub const ISSUER: &'static str = "capsa-test-issuer";

    /// Starts a token server knowing `users`.
    pub fn start(users: &[(&str, &str)]) -> TokenServer {
        use rcgen::{CertificateParams, DnType, KeyPair};
        let dir = tempfile::Builder::new()
            .prefix("capsa-token-")
            .tempdir()
            .unwrap();
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "capsa token signer");
        let cert = params.self_signed(&key).unwrap();
        let cert_path = dir.path().join("token.crt");
        std::fs::write(&cert_path, cert.pem()).unwrap();
        let rng = ring::rand::SystemRandom::new();
        let signer = ring::signature::EcdsaKeyPair::from_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &key.serialize_der(),
            &rng,
        )
        .unwrap();
        let x5c = STANDARD.encode(cert.der());
        let users: HashMap<String, String> = users
            .iter()
            .map(|(u, p)| (u.to_string(), p.to_string()))
            .collect();
        let counter = AtomicU64::new(0);
        let server = HttpServer::start(move |req| {
            let mut user = None;
            let form: HashMap<String, String> = String::from_utf8_lossy(&req.body)
                .split('&')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_string(), percent_decode(v)))
                .collect();
            let mut scopes = req.query("scope");
            if req.method == "POST" {
                // OAuth2: a refresh token "refresh-<user>" stands for the user.
                match form
                    .get("refresh_token")
                    .and_then(|t| t.strip_prefix("refresh-"))
                {
                    Some(u)
                        if form.get("grant_type").map(String::as_str) == Some("refresh_token")
                            && users.contains_key(u) =>
                    {
                        user = Some(u.to_string())
                    }
                    _ => {
                        return Response::new(
                            401,
                            r#"{"errors":[{"code":"UNAUTHORIZED","message":"invalid refresh token"}]}"#,
                        );
                    }
                }
                scopes = form.get("scope").into_iter().cloned().collect();
            } else if let Some(a) = req.header("authorization") {
                let decoded = a
                    .strip_prefix("Basic ")
                    .and_then(|b| STANDARD.decode(b).ok())
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                match decoded.split_once(':') {
                    Some((u, p)) if users.get(u).map(String::as_str) == Some(p) => {
                        user = Some(u.to_string())
                    }
                    _ => {
                        return Response::new(
                            401,
                            r#"{"errors":[{"code":"UNAUTHORIZED","message":"invalid username or password"}]}"#,
                        );
                    }
                }
            }
            let mut access = Vec::new();
            for scope in scopes {
                for one in scope.split(' ') {
                    let parts: Vec<&str> = one.splitn(3, ':').collect();
                    if parts.len() != 3 {
                        continue;
                    }
                    let actions: Vec<&str> = parts[2]
                        .split(',')
                        .filter(|a| user.is_some() || *a == "pull")
                        .collect();
                    access.push(json!({"type": parts[0], "name": parts[1], "actions": actions}));
                }
            }
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs();
            let header = json!({"typ": "JWT", "alg": "ES256", "x5c": [x5c]});
            let claims = json!({
                "iss": TokenServer::ISSUER,
                "sub": user.clone().unwrap_or_default(),
                "aud": TokenServer::SERVICE,
                "exp": now + 300,
                "nbf": now - 10,
                "iat": now,
                "jti": format!("t{}", counter.fetch_add(1, Ordering::Relaxed)),
                "access": access,
            });
            let signing_input = format!(
                "{}.{}",
                URL_SAFE_NO_PAD.encode(header.to_string()),
                URL_SAFE_NO_PAD.encode(claims.to_string())
            );
            let sig = signer
                .sign(&ring::rand::SystemRandom::new(), signing_input.as_bytes())
                .unwrap();
            let token = format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()));
            let field = if req.method == "POST" {
                "access_token"
            } else {
                "token"
            };
            Response::new(200, json!({field: token, "expires_in": 300}).to_string())
                .header("Content-Type", "application/json")
        });
        let realm = format!("http://127.0.0.1:{}/token", server.port);
        TokenServer {
            server,
            cert: cert_path,
            realm,
            _dir: dir,
        }
    }

    /// Requests received so far.
    pub fn requests(&self) -> Vec<Request> {
        self.server.requests.lock().unwrap().clone()
    }
}

/// Which way a [`CuttingProxy`] cuts.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// Connections carrying more than the limit to the client (downloads).
    Downloads,
    /// Connections carrying more than the limit to the server (uploads).
    Uploads,
}

/// A TCP proxy in front of a registry that cuts the first `cuts`
/// connections which carry more than `cut_after` bytes one way, right at
/// that byte; it counts the bytes it forwards, the Range requests and the
/// PATCH requests.
pub struct CuttingProxy {
    /// Its port.
    pub port: u16,
    /// Connections still to cut.
    pub cuts_left: Arc<AtomicUsize>,
    /// Requests with a `Range` header seen.
    pub range_requests: Arc<AtomicUsize>,
    /// PATCH requests seen (chunks of uploads).
    pub patch_requests: Arc<AtomicUsize>,
    /// Bytes forwarded to the client.
    pub bytes_to_client: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// Copies `from` to `to` until the end, counting bytes into `total`; cuts
/// both connections once `cut_after` bytes passed when `cuts` allows one.
/// `inspect` sees every chunk.
fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    cut: Option<(u64, Arc<AtomicUsize>)>,
    total: Option<Arc<AtomicU64>>,
    inspect: impl Fn(&[u8]),
) {
    let mut buf = vec![0u8; 64 << 10];
    let mut sent = 0u64;
    while let Ok(n) = from.read(&mut buf) {
        if n == 0 {
            break;
        }
        inspect(&buf[..n]);
        let mut n = n as u64;
        let cutting = match &cut {
            Some((after, left)) => {
                sent + n > *after
                    && left
                        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |k| k.checked_sub(1))
                        .is_ok()
            }
            None => false,
        };
        if cutting {
            n = cut.as_ref().unwrap().0 - sent;
        }
        if to.write_all(&buf[..n as usize]).is_err() {
            break;
        }
        sent += n;
        if let Some(t) = &total {
            t.fetch_add(n, Ordering::Relaxed);
        }
        if cutting {
            let _ = to.shutdown(Shutdown::Both);
            let _ = from.shutdown(Shutdown::Both);
            return;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

impl CuttingProxy {
    /// Starts a proxy to `127.0.0.1:upstream`.
    pub fn start(upstream: u16, direction: Cut, cut_after: u64, cuts: usize) -> CuttingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let cuts_left = Arc::new(AtomicUsize::new(cuts));
        let range_requests = Arc::new(AtomicUsize::new(0));
        let patch_requests = Arc::new(AtomicUsize::new(0));
        let bytes_to_client = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (c, r, p, b, s) = (
            cuts_left.clone(),
            range_requests.clone(),
            patch_requests.clone(),
            bytes_to_client.clone(),
            stop.clone(),
        );
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(client) = conn else { continue };
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let cut = Some((cut_after, c.clone()));
                let (up_cut, down_cut) = match direction {
                    Cut::Uploads => (cut, None),
                    Cut::Downloads => (None, cut),
                };
                let (r, p) = (r.clone(), p.clone());
                let (c_in, s_out) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || {
                    pump(c_in, s_out, up_cut, None, |chunk| {
                        let text = String::from_utf8_lossy(chunk).to_ascii_lowercase();
                        r.fetch_add(text.matches("\r\nrange: bytes=").count(), Ordering::Relaxed);
                        p.fetch_add(text.matches("patch /v2/").count(), Ordering::Relaxed);
                    })
                });
                let b = b.clone();
                std::thread::spawn(move || pump(server, client, down_cut, Some(b), |_| {}));
            }
        });
        CuttingProxy {
            port,
            cuts_left,
            range_requests,
            patch_requests,
            bytes_to_client,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for CuttingProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// capsa with its own store, Docker config directory, certs.d and
/// registries.json, none of the machine's.
pub struct Capsa {
    /// The store root (and scratch space).
    pub root: Root,
    /// `DOCKER_CONFIG`.
    pub docker_config: PathBuf,
    /// `CAPSA_CERTS_DIR`.
    pub certs_dir: PathBuf,
    /// `CAPSA_REGISTRIES_CONFIG`.
    pub registries_config: PathBuf,
    /// Prepended to PATH (credential helpers).
    pub extra_path: Option<PathBuf>,
}

impl Default for Capsa {
    fn default() -> Self {
        Self::new()
    }
}

impl Capsa {
    /// A new isolated capsa.
    pub fn new() -> Capsa {
        let root = Root::new();
        let docker_config = root.scratch("docker");
        let certs_dir = root.scratch("certs.d");
        let registries_config = root.scratch("registries.json");
        std::fs::create_dir_all(&certs_dir).unwrap();
        Capsa {
            root,
            docker_config,
            certs_dir,
            registries_config,
            extra_path: None,
        }
    }

    /// The store directory.
    pub fn store(&self) -> PathBuf {
        self.root.path().join("store")
    }

    /// A `capsa ARGS` command in this environment.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = self.root.cmd(args);
        c.envs(self.envs());
        if let Some(p) = &self.extra_path {
            let path = std::env::var("PATH").unwrap_or_default();
            c.env("PATH", format!("{}:{path}", p.display()));
        }
        c
    }

    /// The environment variables that isolate this capsa.
    pub fn envs(&self) -> Vec<(&'static str, PathBuf)> {
        vec![
            ("DOCKER_CONFIG", self.docker_config.clone()),
            ("CAPSA_CERTS_DIR", self.certs_dir.clone()),
            ("CAPSA_REGISTRIES_CONFIG", self.registries_config.clone()),
        ]
    }

    /// Runs capsa.
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// Runs capsa with `input` on stdin.
    pub fn run_stdin(&self, args: &[&str], input: &[u8]) -> Output {
        let mut c = self.cmd(args);
        c.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        child.wait_with_output().unwrap()
    }

    /// Runs capsa, asserts success and returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        ok(self.run(args), args)
    }

    /// Runs capsa, asserts it fails with exit code 1 and returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        fails(self.run(args), args)
    }

    /// Logs in with `--password-stdin`, asserting success.
    pub fn login(&self, host: &str, user: &str, password: &str, extra: &[&str]) -> String {
        let mut args = vec!["login", "-u", user, "--password-stdin"];
        args.extend_from_slice(extra);
        args.push(host);
        ok(
            self.run_stdin(&args, format!("{password}\n").as_bytes()),
            &args,
        )
    }

    /// Loads images (a docker-archive) into the store.
    pub fn load(&self, archive: &[u8]) -> String {
        let p = self
            .root
            .scratch(&format!("load-{}.tar", crate::common::unique()));
        std::fs::write(&p, archive).unwrap();
        self.ok(&["load", "-i", p.to_str().unwrap()])
    }

    /// The files under a directory of the store (blobs/sha256, snapshots, tmp).
    pub fn store_entries(&self, dir: &str) -> Vec<String> {
        match std::fs::read_dir(self.store().join(dir)) {
            Ok(rd) => rd
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect(),
            Err(_) => Vec::new(),
        }
    }
}

/// Asserts success and returns stdout.
pub fn ok(out: Output, args: &[&str]) -> String {
    assert!(
        out.status.success(),
        "capsa {args:?} failed ({:?}):\nstdout: {}\nstderr: {}",
        out.status,
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

/// Asserts exit code 1 and returns stderr.
pub fn fails(out: Output, args: &[&str]) -> String {
    assert_eq!(
        out.status.code(),
        Some(1),
        "capsa {args:?} should have failed:\nstdout: {}\nstderr: {}",
        stdout(&out),
        stderr(&out)
    );
    stderr(&out)
}

/// Asserts that an error is one line `Error: ...` containing every needle.
pub fn assert_one_line_error(err: &str, needles: &[&str]) {
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "not one line: {err:?}");
    assert!(lines[0].starts_with("Error: "), "{err}");
    for n in needles {
        assert!(lines[0].contains(n), "{n:?} missing from {err:?}");
    }
}

/// An image's blobs as pushed: config, compressed layers, manifest.
pub struct Built {
    /// The config bytes.
    pub config: Vec<u8>,
    /// The compressed layer blobs.
    pub layers: Vec<Vec<u8>>,
    /// The OCI manifest bytes.
    pub manifest: Vec<u8>,
}

impl Built {
    /// Builds `img` for architecture `arch` (and variant).
    pub fn new(img: &Image, arch: &str, variant: Option<&str>) -> Built {
        let mut config: Value = serde_json::from_slice(&img.config_bytes()).unwrap();
        config["architecture"] = json!(arch);
        if let Some(v) = variant {
            config["variant"] = json!(v);
        }
        let config = serde_json::to_vec(&config).unwrap();
        let layers: Vec<Vec<u8>> = img.layers.iter().map(|l| compress(l, img.comp)).collect();
        let media = match img.comp {
            Comp::None => "application/vnd.oci.image.layer.v1.tar",
            Comp::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Comp::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
        };
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256(&config), "size": config.len()},
            "layers": layers.iter().map(|b| json!({"mediaType": media, "digest": sha256(b), "size": b.len()})).collect::<Vec<_>>(),
        }))
        .unwrap();
        Built {
            config,
            layers,
            manifest,
        }
    }

    /// The image id.
    pub fn id(&self) -> String {
        sha256(&self.config)
    }

    /// Writes its blobs into an OCI layout's `blobs/sha256`.
    fn write_blobs(&self, dir: &Path) {
        let blobs = dir.join("blobs/sha256");
        std::fs::create_dir_all(&blobs).unwrap();
        for b in std::iter::once(&self.config)
            .chain(&self.layers)
            .chain(std::iter::once(&self.manifest))
        {
            std::fs::write(blobs.join(hex(&sha256(b))), b).unwrap();
        }
    }
}

/// Writes an OCI layout at `dir` whose `index.json` names `name` one image,
/// or (several images) an index of them with their platforms.
pub fn oci_layout(dir: &Path, name: &str, images: &[(&Built, &str, Option<&str>)]) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("oci-layout"),
        br#"{"imageLayoutVersion": "1.0.0"}"#,
    )
    .unwrap();
    for (b, _, _) in images {
        b.write_blobs(dir);
    }
    let ann = json!({"org.opencontainers.image.ref.name": name});
    let top = if let [(b, _, _)] = images {
        json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha256(&b.manifest), "size": b.manifest.len(), "annotations": ann})
    } else {
        let entries: Vec<Value> = images
            .iter()
            .map(|(b, arch, variant)| {
                let mut p = json!({"os": "linux", "architecture": arch});
                if let Some(v) = variant {
                    p["variant"] = json!(v);
                }
                json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha256(&b.manifest), "size": b.manifest.len(), "platform": p})
            })
            .collect();
        let index = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": entries})).unwrap();
        std::fs::write(dir.join("blobs/sha256").join(hex(&sha256(&index))), &index).unwrap();
        json!({"mediaType": "application/vnd.oci.image.index.v1+json", "digest": sha256(&index), "size": index.len(), "annotations": ann})
    };
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": [top]})).unwrap(),
    )
    .unwrap();
}

/// Runs `skopeo ARGS` (no signature policy, no TLS verification), asserting success.
pub fn skopeo(args: &[&str]) -> String {
    let out = Command::new("skopeo")
        .arg("--insecure-policy")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "skopeo {args:?} failed: {}\n{}",
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

/// A two-layer busybox image whose `/etc/app` holds `marker`.
pub fn app_image(tag: &str, marker: &[u8]) -> Image {
    let top = crate::common::Layer::new()
        .dir("etc", 0o755)
        .file("etc/app", 0o644, marker)
        .tar();
    Image::new(vec![crate::common::busybox_layer().tar(), top], &[tag])
}

/// A layer with one file of `size` bytes that gzip cannot shrink
/// (xorshift noise from `seed`).
pub fn noise_layer(name: &str, size: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut data = vec![0u8; size];
    for chunk in data.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let bytes = x.to_le_bytes();
        chunk.copy_from_slice(&bytes[..chunk.len()]);
    }
    crate::common::Layer::new().file(name, 0o644, &data).tar()
}

/// A fake registry answering `/v2/` and the given manifests and blobs
/// (by the path after `/v2/<repo>/`), anything else 404.
pub fn fake_registry(routes: HashMap<String, Response>) -> HttpServer {
    HttpServer::start(move |req| {
        if req.path() == "/v2/" {
            return Response::new(200, "{}");
        }
        let rest = req.path().splitn(4, '/').nth(3).unwrap_or_default();
        // Strip the repository: ".../manifests/x" or ".../blobs/x".
        let key = ["manifests/", "blobs/"]
            .iter()
            .find_map(|k| rest.find(k).map(|i| rest[i..].to_string()))
            .unwrap_or_default();
        match routes.get(&key) {
            Some(r) => r.clone(),
            None => Response::new(
                404,
                r#"{"errors":[{"code":"NOT_FOUND","message":"not here"}]}"#,
            ),
        }
    })
}
