//! A session with one repository of one registry: finding the endpoint
//! that answers (HTTPS, or plain HTTP where allowed), authenticating each
//! request, and the calls of the distribution API — manifests, blobs
//! (ranged reads, existence checks, uploads monolithic or in chunks,
//! cross-repository mounts) and tag lists. Every failure becomes an error
//! naming the image and the registry.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use capsa_images::Digest;
use capsa_images::manifest::{DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST};
use ureq::http::{self, Method, Response};
use ureq::{BodyReader, SendBody};

use crate::auth::Auth;
use crate::config::Config;
use crate::credentials::Credentials;
use crate::error::{Error, Failure, Kind, Op, Result, one_line};
use crate::transport::{self, Endpoint};

/// Docker schema 1 manifests (refused).
pub const DOCKER_MANIFEST_V1: &str = "application/vnd.docker.distribution.manifest.v1+json";
/// Signed Docker schema 1 manifests (refused).
pub const DOCKER_MANIFEST_V1_SIGNED: &str =
    "application/vnd.docker.distribution.manifest.v1+prettyjws";
/// Most a manifest may weigh (the reference registry's own limit).
pub const MAX_MANIFEST: u64 = 4 << 20;
/// Blobs up to this size are uploaded in one request; larger ones in chunks.
pub const MONOLITHIC_MAX: u64 = 8 << 20;
/// Size of the chunks of a chunked upload.
pub const UPLOAD_CHUNK: u64 = 16 << 20;

/// A manifest (or index) as fetched.
#[derive(Clone, Debug)]
pub struct Fetched {
    /// Its bytes exactly as served.
    pub bytes: Vec<u8>,
    /// Its media type (Content-Type, else its `mediaType` field).
    pub media_type: String,
    /// The digest of its bytes.
    pub digest: Digest,
}

/// How a blob upload began.
pub enum UploadStart {
    /// The blob was mounted from another repository: nothing to send.
    Mounted,
    /// An upload session at this URL.
    Session(String),
}

/// A request body that can be sent again (after a 401 with a new token).
#[derive(Clone, Copy)]
pub enum Body<'a> {
    /// No body.
    Empty,
    /// Bytes in memory.
    Bytes(&'a [u8]),
    /// `len` bytes of a file from `offset`, with a callback told of bytes read.
    File {
        /// The file.
        path: &'a Path,
        /// Where the part starts.
        offset: u64,
        /// Its length.
        len: u64,
        /// Told of every chunk read (byte count).
        progress: &'a (dyn Fn(u64) + Sync),
    },
}

/// A reader that reports how many bytes pass through it.
struct Counting<'a, R> {
    inner: R,
    progress: &'a (dyn Fn(u64) + Sync),
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        (self.progress)(n as u64);
        Ok(n)
    }
}

/// What `GET /v2/` found.
enum Ping {
    /// A registry that needs no authentication.
    Registry,
    /// A registry that asked for authentication.
    Challenged,
}

/// A connected session with one repository of one registry.
pub struct Session {
    agent: ureq::Agent,
    base: String,
    host: String,
    repo: String,
    image: String,
    op: Op,
    auth: Auth,
    scopes: Vec<String>,
    mirror: bool,
}

/// What the caller wants of a repository.
pub struct Target<'a> {
    /// The registry configuration.
    pub config: &'a Config,
    /// The reference's domain (`docker.io`, `localhost:5000`).
    pub domain: &'a str,
    /// The repository path (`library/alpine`); empty for a login.
    pub repo: &'a str,
    /// The image as shown in messages.
    pub image: &'a str,
    /// What is being done.
    pub op: Op,
    /// Credentials for the registry, if any.
    pub credentials: Option<Credentials>,
    /// Token scopes every request needs.
    pub scopes: Vec<String>,
}

/// The reason of a transport-level failure (nothing was answered).
pub(crate) fn transport_failure(e: &ureq::Error) -> Failure {
    match e {
        ureq::Error::Rustls(r) => {
            let hint = match r {
                rustls::Error::InvalidCertificate(_) => {
                    " (put the registry's CA certificate in certs.d/HOST:PORT/ca.crt, or mark it insecure)"
                }
                _ => "",
            };
            Failure::new(Kind::Tls, format!("TLS handshake failed: {r}{hint}"))
        }
        ureq::Error::Tls(r) => Failure::new(Kind::Tls, format!("TLS failed: {r}")),
        ureq::Error::HostNotFound => Failure::new(Kind::Unreachable, "host not found"),
        ureq::Error::ConnectionFailed => Failure::new(Kind::Unreachable, "connection failed"),
        ureq::Error::Timeout(t) => Failure::new(Kind::Unreachable, format!("timed out ({t})")),
        ureq::Error::Io(io) => match io.kind() {
            io::ErrorKind::InvalidData => Failure::new(Kind::Protocol, one_line(&io.to_string())),
            io::ErrorKind::ConnectionRefused => {
                Failure::new(Kind::Unreachable, format!("registry unreachable: {io}"))
            }
            _ => Failure::new(
                Kind::Unreachable,
                format!("connection failed: {}", one_line(&io.to_string())),
            ),
        },
        ureq::Error::Protocol(p) => {
            Failure::new(Kind::Protocol, format!("malformed HTTP answer: {p}"))
        }
        ureq::Error::TooManyRedirects => Failure::new(Kind::Protocol, "too many redirects"),
        other => Failure::new(Kind::Unreachable, one_line(&other.to_string())),
    }
}

/// The message of a registry error body: the OCI `errors` list as
/// `code: message` (Docker's form), or short plain text.
pub(crate) fn error_text(body: &[u8]) -> Option<String> {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
        let list = v
            .get("errors")
            .and_then(|e| e.as_array())
            .cloned()
            .unwrap_or_default();
        let parts: Vec<String> = list
            .iter()
            .map(|e| {
                let code = e.get("code").and_then(|c| c.as_str()).unwrap_or_default();
                let msg = e
                    .get("message")
                    .and_then(|c| c.as_str())
                    .unwrap_or_default();
                let code = code.to_ascii_lowercase().replace('_', " ");
                match (code.is_empty(), msg.is_empty()) {
                    (false, false) => format!("{code}: {msg}"),
                    (false, true) => code,
                    _ => msg.to_string(),
                }
            })
            .filter(|s| !s.is_empty())
            .collect();
        if !parts.is_empty() {
            return Some(one_line(&parts.join("; ")));
        }
        for k in ["details", "detail", "message", "error"] {
            if let Some(s) = v.get(k).and_then(|d| d.as_str()) {
                return Some(one_line(s));
            }
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = one_line(&text);
    if text.is_empty() || text.starts_with('<') {
        None
    } else {
        Some(text.chars().take(200).collect())
    }
}

fn header(resp: &Response<ureq::Body>, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_string())
}

fn all_headers(resp: &Response<ureq::Body>, name: &str) -> Vec<String> {
    resp.headers()
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_string))
        .collect()
}

/// Reads a body of at most `max` bytes.
fn read_limited(resp: &mut Response<ureq::Body>, max: u64) -> io::Result<Vec<u8>> {
    let mut data = Vec::new();
    resp.body_mut()
        .as_reader()
        .take(max + 1)
        .read_to_end(&mut data)?;
    if data.len() as u64 > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the answer is larger than {max} bytes"),
        ));
    }
    Ok(data)
}

impl Session {
    /// Connects to the first endpoint of the target that answers.
    pub fn open(target: Target<'_>, endpoint: &Endpoint) -> Result<Session> {
        let agent = transport::agent(target.config, target.domain, endpoint)?;
        let mut s = Session {
            agent,
            base: String::new(),
            host: endpoint.host.clone(),
            repo: target.repo.to_string(),
            image: target.image.to_string(),
            op: target.op,
            // Credentials of docker.io are not sent to its mirrors.
            auth: Auth::new(if endpoint.mirror {
                None
            } else {
                target.credentials
            }),
            scopes: target.scopes,
            mirror: endpoint.mirror,
        };
        let schemes: &[&str] = match (endpoint.https, endpoint.allow_http) {
            (true, true) => &["https", "http"],
            (true, false) => &["https"],
            (false, _) => &["http"],
        };
        let mut first: Option<Failure> = None;
        for scheme in schemes {
            s.base = format!("{scheme}://{}", endpoint.host);
            match s.ping() {
                Ok(Ping::Registry) => return Ok(s),
                Ok(Ping::Challenged) => {
                    // Get the token now, so that request bodies are sent once.
                    if !s.scopes.is_empty() || s.op == Op::Login {
                        s.auth.header(&s.agent, &s.scopes).map_err(|f| s.error(f))?;
                    }
                    return Ok(s);
                }
                Err(f) => {
                    tracing::debug!("{}: {}", s.base, f.reason);
                    first.get_or_insert(f);
                }
            }
        }
        Err(s.error(first.expect("at least one scheme was tried")))
    }

    /// Whether this session is with a docker.io mirror.
    pub fn is_mirror(&self) -> bool {
        self.mirror
    }

    /// The registry host contacted.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The error of a failure, naming the image and registry.
    pub fn error(&self, f: Failure) -> Error {
        Error::Registry {
            op: self.op,
            image: self.image.clone(),
            registry: self.host.clone(),
            reason: f.reason,
            kind: f.kind,
        }
    }

    /// `GET /v2/`: checks that a registry answers there and learns how it
    /// authenticates. A failure means this scheme is not the way to it.
    fn ping(&self) -> Result<Ping, Failure> {
        let url = format!("{}/v2/", self.base);
        let resp = self
            .agent
            .get(&url)
            .call()
            .map_err(|e| transport_failure(&e))?;
        match resp.status().as_u16() {
            200 => Ok(Ping::Registry),
            401 => {
                self.auth
                    .challenged(&all_headers(&resp, "www-authenticate"), &self.scopes);
                Ok(Ping::Challenged)
            }
            s => Err(Failure::new(
                Kind::Protocol,
                format!("{url} answered {s}: not an OCI distribution registry"),
            )),
        }
    }

    /// Checks that the credentials are accepted (`capsa login`): a token
    /// for no particular scope, or `GET /v2/` with basic authentication.
    pub fn check_login(&self) -> Result<()> {
        let resp = self
            .send(
                Method::GET,
                &format!("{}/v2/", self.base),
                &[],
                Body::Empty,
                &[],
            )
            .map_err(|f| self.error(f))?;
        match resp.status().as_u16() {
            200 => Ok(()),
            s => Err(self.error(self.status_failure(resp, s, "login"))),
        }
    }

    /// Sends a request with authentication, renewing the token (or
    /// learning the scheme) once when the registry answers 401.
    pub fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Body<'_>,
        extra_scopes: &[String],
    ) -> Result<Response<ureq::Body>, Failure> {
        let mut scopes = self.scopes.clone();
        scopes.extend(extra_scopes.iter().cloned());
        for attempt in 0..2 {
            let mut req = http::Request::builder().method(method.clone()).uri(url);
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            if let Some(a) = self.auth.header(&self.agent, &scopes)? {
                req = req.header("Authorization", a);
            }
            let resp = match body {
                Body::Empty => {
                    let req = if method == Method::POST
                        || method == Method::PUT
                        || method == Method::PATCH
                    {
                        req.header("Content-Length", "0")
                    } else {
                        req
                    };
                    self.agent.run(req.body(()).map_err(http_error)?)
                }
                Body::Bytes(b) => self.agent.run(
                    req.header("Content-Length", b.len().to_string())
                        .body(b)
                        .map_err(http_error)?,
                ),
                Body::File {
                    path,
                    offset,
                    len,
                    progress,
                } => {
                    let mut f = File::open(path).map_err(|e| {
                        Failure::new(Kind::Protocol, format!("open {}: {e}", path.display()))
                    })?;
                    f.seek(SeekFrom::Start(offset)).map_err(|e| {
                        Failure::new(Kind::Protocol, format!("seek {}: {e}", path.display()))
                    })?;
                    let mut reader = Counting {
                        inner: f.take(len),
                        progress,
                    };
                    self.agent.run(
                        req.header("Content-Length", len.to_string())
                            .header("Content-Type", "application/octet-stream")
                            .body(SendBody::from_reader(&mut reader))
                            .map_err(http_error)?,
                    )
                }
            }
            .map_err(|e| transport_failure(&e))?;
            if resp.status().as_u16() == 401
                && attempt == 0
                && self
                    .auth
                    .challenged(&all_headers(&resp, "www-authenticate"), &scopes)
            {
                continue;
            }
            return Ok(resp);
        }
        unreachable!("the loop returns on its second attempt")
    }

    /// The failure for an unexpected status, with the registry's own message.
    pub fn status_failure(
        &self,
        mut resp: Response<ureq::Body>,
        status: u16,
        what: &str,
    ) -> Failure {
        let body = read_limited(&mut resp, 64 << 10).unwrap_or_default();
        let detail = error_text(&body)
            .map(|d| format!(": {d}"))
            .unwrap_or_default();
        match status {
            401 => {
                let hint = if self.auth.has_credentials() {
                    ""
                } else {
                    " (log in with capsa login)"
                };
                Failure::new(
                    Kind::Unauthorized,
                    format!("authentication required (401 Unauthorized){detail}{hint}"),
                )
            }
            403 => Failure::new(
                Kind::Denied,
                format!("access to {what} denied (403 Forbidden){detail}"),
            ),
            404 => Failure::new(
                Kind::NotFound,
                format!("{what} not found (404 Not Found){detail}"),
            ),
            429 => {
                let after = header(&resp, "retry-after")
                    .map(|r| format!("; retry after {}", one_line(&r)))
                    .unwrap_or_default();
                Failure::new(
                    Kind::RateLimited,
                    format!(
                        "too many requests (429), the registry limits the request rate{detail}{after}"
                    ),
                )
            }
            s => Failure::new(
                Kind::Protocol,
                format!("unexpected answer {s} for {what}{detail}"),
            ),
        }
    }

    fn url(&self, rest: &str) -> String {
        format!("{}/v2/{}/{rest}", self.base, self.repo)
    }

    /// Makes a `Location` header absolute.
    fn absolute(&self, location: &str) -> String {
        if location.starts_with("http://") || location.starts_with("https://") {
            location.to_string()
        } else if location.starts_with('/') {
            format!("{}{location}", self.base)
        } else {
            format!("{}/{location}", self.base)
        }
    }

    /// Fetches the manifest or index named by a tag or digest; a digest is
    /// verified against the content.
    pub fn get_manifest(&self, reference: &str) -> Result<Fetched> {
        let what = format!("manifest {reference}");
        let accept = [
            OCI_INDEX,
            DOCKER_MANIFEST_LIST,
            OCI_MANIFEST,
            DOCKER_MANIFEST,
        ]
        .join(", ");
        let mut resp = self
            .send(
                Method::GET,
                &self.url(&format!("manifests/{reference}")),
                &[("Accept", &accept)],
                Body::Empty,
                &[],
            )
            .map_err(|f| self.error(f))?;
        let status = resp.status().as_u16();
        if status != 200 {
            return Err(self.error(self.status_failure(resp, status, &what)));
        }
        let content_type = header(&resp, "content-type")
            .map(|c| c.split(';').next().unwrap_or_default().trim().to_string())
            .unwrap_or_default();
        let announced = header(&resp, "docker-content-digest");
        let bytes = read_limited(&mut resp, MAX_MANIFEST).map_err(|e| {
            self.error(Failure::new(Kind::Protocol, format!("reading {what}: {e}")))
        })?;
        let digest = Digest::of(&bytes);
        let mismatch = |expected: &str| {
            self.error(Failure::new(
                Kind::Digest,
                format!("{what}: digest mismatch: expected {expected}, got {digest}"),
            ))
        };
        if reference.starts_with("sha256:") && reference != digest.as_str() {
            return Err(mismatch(reference));
        }
        if let Some(a) = &announced
            && a.starts_with("sha256:")
            && a != digest.as_str()
        {
            return Err(mismatch(a));
        }
        let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
            self.error(Failure::new(
                Kind::Protocol,
                format!("{what}: invalid JSON: {e}"),
            ))
        })?;
        let field = v
            .get("mediaType")
            .and_then(|m| m.as_str())
            .unwrap_or_default();
        let schema = v.get("schemaVersion").and_then(|s| s.as_u64());
        let media_type = match (content_type.as_str(), field) {
            (_, f) if !f.is_empty() => f.to_string(),
            (c, _)
                if c == OCI_MANIFEST
                    || c == OCI_INDEX
                    || c == DOCKER_MANIFEST
                    || c == DOCKER_MANIFEST_LIST
                    || c == DOCKER_MANIFEST_V1
                    || c == DOCKER_MANIFEST_V1_SIGNED =>
            {
                c.to_string()
            }
            // An OCI document without mediaType: an index has "manifests".
            _ if schema == Some(2) && v.get("manifests").is_some() => OCI_INDEX.to_string(),
            _ if schema == Some(2) => OCI_MANIFEST.to_string(),
            _ if schema == Some(1) => DOCKER_MANIFEST_V1.to_string(),
            (c, _) => c.to_string(),
        };
        if media_type == DOCKER_MANIFEST_V1
            || media_type == DOCKER_MANIFEST_V1_SIGNED
            || schema == Some(1)
        {
            return Err(self.error(Failure::new(
                Kind::Unsupported,
                format!("{what} is a Docker image manifest schema 1, which is unsupported (deprecated since Docker 1.10): push the image again with a current tool"),
            )));
        }
        Ok(Fetched {
            bytes,
            media_type,
            digest,
        })
    }

    /// Fetches a small blob (an image config) into memory, verifying its
    /// digest and size.
    pub fn get_blob_bytes(&self, digest: &Digest, size: u64, max: u64) -> Result<Vec<u8>> {
        let what = format!("blob {digest}");
        if size > max {
            return Err(self.error(Failure::new(
                Kind::Protocol,
                format!("{what} is announced with {size} bytes, more than the {max} allowed"),
            )));
        }
        let (mut reader, start) = self.open_blob(digest, 0).map_err(|f| self.error(f))?;
        debug_assert_eq!(start, 0);
        let mut data = Vec::new();
        (&mut reader)
            .take(max + 1)
            .read_to_end(&mut data)
            .map_err(|e| {
                self.error(Failure::new(
                    Kind::Unreachable,
                    format!("reading {what}: {e}"),
                ))
            })?;
        let actual = Digest::of(&data);
        if &actual != digest {
            return Err(self.error(Failure::new(
                Kind::Digest,
                format!("{what}: digest mismatch: got {actual}"),
            )));
        }
        if data.len() as u64 != size && size != 0 {
            return Err(self.error(Failure::new(
                Kind::Protocol,
                format!("{what}: {} bytes, but the manifest says {size}", data.len()),
            )));
        }
        Ok(data)
    }

    /// Starts reading a blob at `offset`; returns the body and where it
    /// really starts (0 when the registry ignored the range).
    pub fn open_blob(
        &self,
        digest: &Digest,
        offset: u64,
    ) -> Result<(BodyReader<'static>, u64), Failure> {
        let what = format!("blob {digest}");
        let range = format!("bytes={offset}-");
        let headers: Vec<(&str, &str)> = if offset > 0 {
            vec![("Range", &range)]
        } else {
            Vec::new()
        };
        let resp = self.send(
            Method::GET,
            &self.url(&format!("blobs/{digest}")),
            &headers,
            Body::Empty,
            &[],
        )?;
        match resp.status().as_u16() {
            200 => Ok((resp.into_body().into_reader(), 0)),
            206 if offset > 0 => {
                let start = header(&resp, "content-range")
                    .and_then(|c| {
                        c.strip_prefix("bytes ")
                            .and_then(|r| r.split('-').next())
                            .and_then(|s| s.trim().parse::<u64>().ok())
                    })
                    .ok_or_else(|| {
                        Failure::new(
                            Kind::Protocol,
                            format!("{what}: partial answer without a valid Content-Range"),
                        )
                    })?;
                if start != offset {
                    return Err(Failure::new(
                        Kind::Protocol,
                        format!("{what}: asked for bytes from {offset}, got bytes from {start}"),
                    ));
                }
                Ok((resp.into_body().into_reader(), start))
            }
            s => Err(self.status_failure(resp, s, &what)),
        }
    }

    /// Whether the repository has the blob (`HEAD`).
    pub fn blob_exists(&self, digest: &Digest) -> Result<bool> {
        let resp = self
            .send(
                Method::HEAD,
                &self.url(&format!("blobs/{digest}")),
                &[],
                Body::Empty,
                &[],
            )
            .map_err(|f| self.error(f))?;
        match resp.status().as_u16() {
            200 => Ok(true),
            404 => Ok(false),
            s => Err(self.error(self.status_failure(resp, s, &format!("blob {digest}")))),
        }
    }

    /// Starts an upload, first asking to mount the blob from repository
    /// `from` of the same registry when given.
    pub fn start_upload(&self, mount: Option<(&Digest, &str)>) -> Result<UploadStart> {
        let mut url = self.url("blobs/uploads/");
        let mut extra = Vec::new();
        if let Some((d, from)) = mount {
            url.push_str(&format!("?mount={d}&from={from}"));
            extra.push(crate::auth::repository_scope(from, "pull"));
        }
        let resp = self
            .send(Method::POST, &url, &[], Body::Empty, &extra)
            .map_err(|f| self.error(f))?;
        match resp.status().as_u16() {
            201 if mount.is_some() => Ok(UploadStart::Mounted),
            202 => {
                let loc = header(&resp, "location").ok_or_else(|| {
                    self.error(Failure::new(
                        Kind::Protocol,
                        "upload started without a Location",
                    ))
                })?;
                Ok(UploadStart::Session(self.absolute(&loc)))
            }
            s => Err(self.error(self.status_failure(resp, s, "blob upload"))),
        }
    }

    /// Cancels an upload session (best effort: the registry forgets it anyway).
    pub fn cancel_upload(&self, location: &str) {
        if let Err(f) = self.send(Method::DELETE, location, &[], Body::Empty, &[]) {
            tracing::debug!("cancelling upload {location}: {}", f.reason);
        }
    }

    /// Uploads `size` bytes of `path` as blob `digest` to an upload session:
    /// in one request when small, else in chunks, each retried from what
    /// the registry acknowledged when the connection breaks.
    pub fn upload_blob(
        &self,
        location: &str,
        digest: &Digest,
        path: &Path,
        size: u64,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<()> {
        let what = format!("blob {digest}");
        let with_digest = |loc: &str| {
            let sep = if loc.contains('?') { '&' } else { '?' };
            format!("{loc}{sep}digest={digest}")
        };
        if size <= MONOLITHIC_MAX {
            let resp = self
                .send(
                    Method::PUT,
                    &with_digest(location),
                    &[],
                    Body::File {
                        path,
                        offset: 0,
                        len: size,
                        progress,
                    },
                    &[],
                )
                .map_err(|f| self.error(f))?;
            return match resp.status().as_u16() {
                201 | 204 => Ok(()),
                s => Err(self.error(self.status_failure(resp, s, &what))),
            };
        }
        let mut location = location.to_string();
        let mut offset = 0u64;
        let mut failures = 0u32;
        while offset < size {
            let len = UPLOAD_CHUNK.min(size - offset);
            let range = format!("{offset}-{}", offset + len - 1);
            let sent = self.send(
                Method::PATCH,
                &location,
                &[("Content-Range", &range)],
                Body::File {
                    path,
                    offset,
                    len,
                    progress,
                },
                &[],
            );
            match sent {
                Ok(resp) if resp.status().as_u16() == 202 => {
                    if let Some(l) = header(&resp, "location") {
                        location = self.absolute(&l);
                    }
                    offset += len;
                    failures = 0;
                }
                Ok(resp) => {
                    let s = resp.status().as_u16();
                    return Err(self.error(self.status_failure(resp, s, &what)));
                }
                Err(f) if f.kind == Kind::Unreachable && failures < crate::fetch::MAX_RETRIES => {
                    failures += 1;
                    std::thread::sleep(crate::fetch::backoff(failures));
                    // Continue from what the registry has; a registry that
                    // cannot (the reference one refuses an upload whose last
                    // chunk broke) gets the blob again in a new upload.
                    match self.upload_status(&location) {
                        Ok((loc, have)) => {
                            location = loc;
                            offset = have;
                        }
                        Err(f) => {
                            tracing::debug!("upload {location}: {}; starting again", f.reason);
                            self.cancel_upload(&location);
                            match self.start_upload(None)? {
                                UploadStart::Session(l) => location = l,
                                UploadStart::Mounted => unreachable!("no mount was asked"),
                            }
                            offset = 0;
                        }
                    }
                }
                Err(f) => return Err(self.error(f)),
            }
        }
        let resp = self
            .send(Method::PUT, &with_digest(&location), &[], Body::Empty, &[])
            .map_err(|f| self.error(f))?;
        match resp.status().as_u16() {
            201 | 204 => Ok(()),
            s => Err(self.error(self.status_failure(resp, s, &what))),
        }
    }

    /// Where an upload stands: its location and the bytes received.
    fn upload_status(&self, location: &str) -> Result<(String, u64), Failure> {
        let resp = self.send(Method::GET, location, &[], Body::Empty, &[])?;
        match resp.status().as_u16() {
            204 => {
                let loc = header(&resp, "location")
                    .map(|l| self.absolute(&l))
                    .unwrap_or(location.to_string());
                let have = header(&resp, "range")
                    .and_then(|r| {
                        r.rsplit('-')
                            .next()
                            .and_then(|e| e.trim().parse::<u64>().ok())
                    })
                    .map(|end| end + 1)
                    .unwrap_or(0);
                Ok((loc, have))
            }
            s => Err(self.status_failure(resp, s, "blob upload status")),
        }
    }

    /// Uploads a manifest under a tag or digest; returns its digest.
    pub fn put_manifest(&self, reference: &str, media_type: &str, bytes: &[u8]) -> Result<Digest> {
        let what = format!("manifest {reference}");
        let resp = self
            .send(
                Method::PUT,
                &self.url(&format!("manifests/{reference}")),
                &[("Content-Type", media_type)],
                Body::Bytes(bytes),
                &[],
            )
            .map_err(|f| self.error(f))?;
        let status = resp.status().as_u16();
        if status != 201 && status != 200 {
            return Err(self.error(self.status_failure(resp, status, &what)));
        }
        let digest = Digest::of(bytes);
        if let Some(a) = header(&resp, "docker-content-digest")
            && a.starts_with("sha256:")
            && a != digest.as_str()
        {
            return Err(self.error(Failure::new(
                Kind::Digest,
                format!("{what}: the registry stored digest {a}, expected {digest}"),
            )));
        }
        Ok(digest)
    }

    /// Every tag of the repository, following `Link` pagination.
    pub fn tags(&self) -> Result<Vec<String>> {
        let mut url = self.url("tags/list");
        let mut tags = Vec::new();
        for _ in 0..1000 {
            let mut resp = self
                .send(Method::GET, &url, &[], Body::Empty, &[])
                .map_err(|f| self.error(f))?;
            let status = resp.status().as_u16();
            if status != 200 {
                return Err(self.error(self.status_failure(resp, status, "tag list")));
            }
            let next = header(&resp, "link").and_then(|l| {
                let (target, rel) = l.split_once(';')?;
                rel.contains("rel=\"next\"").then(|| {
                    target
                        .trim()
                        .trim_start_matches('<')
                        .trim_end_matches('>')
                        .to_string()
                })
            });
            let body = read_limited(&mut resp, MAX_MANIFEST).map_err(|e| {
                self.error(Failure::new(
                    Kind::Protocol,
                    format!("reading the tag list: {e}"),
                ))
            })?;
            let v: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
                self.error(Failure::new(
                    Kind::Protocol,
                    format!("tag list: invalid JSON: {e}"),
                ))
            })?;
            for t in v
                .get("tags")
                .and_then(|t| t.as_array())
                .into_iter()
                .flatten()
            {
                if let Some(t) = t.as_str() {
                    tags.push(t.to_string());
                }
            }
            match next {
                Some(n) => url = self.absolute(&n),
                None => return Ok(tags),
            }
        }
        Err(self.error(Failure::new(Kind::Protocol, "the tag list does not end")))
    }
}

fn http_error(e: http::Error) -> Failure {
    Failure::new(Kind::Protocol, format!("building a request: {e}"))
}
