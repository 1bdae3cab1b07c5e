//! Credentials in Docker's `config.json` (`$DOCKER_CONFIG/config.json`,
//! else `~/.docker/config.json`): `auths` entries holding base64
//! `user:password` (or an identity token), and the `credsStore` /
//! `credHelpers` programs `docker-credential-<name>` that keep them
//! elsewhere, spoken to over stdin/stdout as Docker does. Other keys of the
//! file are kept as they are.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value, json};

use crate::error::{Error, Result};

/// The key Docker Hub's credentials are stored under.
pub const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// A user's credentials for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name (`<token>` when `secret` is an identity token).
    pub username: String,
    /// The password or token.
    pub secret: Secret,
}

/// What proves the user's identity.
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    /// A password (or personal access token) sent with basic authentication.
    Password(String),
    /// An OAuth2 refresh token exchanged for bearer tokens.
    IdentityToken(String),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print secrets.
        write!(f, "Credentials({:?}, <secret>)", self.username)
    }
}

/// Where credentials were stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stored {
    /// In the config file itself (base64, unencrypted).
    File(PathBuf),
    /// By the credential helper `docker-credential-<name>`.
    Helper(String),
}

/// The key credentials of the registry `domain` are stored under.
pub fn key_for(domain: &str) -> String {
    if domain == capsa_images::reference::DEFAULT_DOMAIN {
        DOCKER_HUB_KEY.to_string()
    } else {
        domain.to_string()
    }
}

/// A stored key reduced to its host: `https://host:5000/v1/` → `host:5000`.
fn key_host(key: &str) -> &str {
    let k = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    k.split('/').next().unwrap_or(k)
}

/// Whether a stored key names the registry `domain`.
fn key_matches(key: &str, domain: &str) -> bool {
    let want = key_for(domain);
    key == want
        || key_host(key) == key_host(&want)
        || (domain == capsa_images::reference::DEFAULT_DOMAIN
            && matches!(
                key_host(key),
                "index.docker.io" | "docker.io" | "registry-1.docker.io"
            ))
}

/// Docker's config file, read into memory.
pub struct DockerConfig {
    path: PathBuf,
    doc: Map<String, Value>,
}

/// The config file's path: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
pub fn default_path() -> PathBuf {
    match std::env::var_os("DOCKER_CONFIG") {
        Some(d) if !d.is_empty() => PathBuf::from(d).join("config.json"),
        _ => {
            let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
            PathBuf::from(home).join(".docker/config.json")
        }
    }
}

impl DockerConfig {
    /// Reads the config file at [`default_path`] (missing: empty).
    pub fn load() -> Result<DockerConfig> {
        DockerConfig::from_file(&default_path())
    }

    /// Reads the config file at `path` (missing: empty).
    pub fn from_file(path: &Path) -> Result<DockerConfig> {
        let bad = |r: String| Error::Config(format!("{}: {r}", path.display()));
        let doc = match std::fs::read(path) {
            Ok(d) if d.iter().all(u8::is_ascii_whitespace) => Map::new(),
            Ok(d) => match serde_json::from_slice::<Value>(&d).map_err(|e| bad(e.to_string()))? {
                Value::Object(m) => m,
                _ => return Err(bad("not a JSON object".into())),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Map::new(),
            Err(e) => return Err(bad(e.to_string())),
        };
        Ok(DockerConfig {
            path: path.to_path_buf(),
            doc,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The credential helper for `domain`: its `credHelpers` entry, else `credsStore`.
    pub fn helper_for(&self, domain: &str) -> Option<String> {
        let key = key_for(domain);
        let helpers = self.doc.get("credHelpers").and_then(Value::as_object);
        let specific = helpers.and_then(|h| {
            h.iter()
                .find(|(k, _)| k.as_str() == key || key_matches(k, domain))
                .and_then(|(_, v)| v.as_str())
        });
        specific
            .or_else(|| self.doc.get("credsStore").and_then(Value::as_str))
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    }

    fn auths(&self) -> Option<&Map<String, Value>> {
        self.doc.get("auths").and_then(Value::as_object)
    }

    /// The credentials stored for the registry `domain`, if any.
    pub fn get(&self, domain: &str) -> Result<Option<Credentials>> {
        if let Some(h) = self.helper_for(domain) {
            return helper_get(&h, &key_for(domain));
        }
        let Some(auths) = self.auths() else {
            return Ok(None);
        };
        let exact = key_for(domain);
        let entry = auths
            .get(&exact)
            .or_else(|| {
                auths
                    .iter()
                    .find(|(k, _)| key_matches(k, domain))
                    .map(|(_, v)| v)
            })
            .and_then(Value::as_object);
        let Some(entry) = entry else {
            return Ok(None);
        };
        let bad = |r: &str| {
            Error::Config(format!(
                "{}: auths entry of {domain}: {r}",
                self.path.display()
            ))
        };
        let (mut username, mut password) = (String::new(), String::new());
        if let Some(a) = entry
            .get("auth")
            .and_then(Value::as_str)
            .filter(|a| !a.is_empty())
        {
            let raw = BASE64
                .decode(a.trim())
                .map_err(|_| bad("\"auth\" is not base64"))?;
            let raw = String::from_utf8(raw).map_err(|_| bad("\"auth\" is not UTF-8"))?;
            let (u, p) = raw
                .split_once(':')
                .ok_or_else(|| bad("\"auth\" is not USER:PASSWORD"))?;
            username = u.to_string();
            password = p.to_string();
        }
        if let Some(t) = entry
            .get("identitytoken")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
        {
            return Ok(Some(Credentials {
                username,
                secret: Secret::IdentityToken(t.to_string()),
            }));
        }
        if username.is_empty() && password.is_empty() {
            return Ok(None);
        }
        Ok(Some(Credentials {
            username,
            secret: Secret::Password(password),
        }))
    }

    /// Stores credentials for `domain` (in its helper when one is
    /// configured, else in the file) and writes the file.
    pub fn store(&mut self, domain: &str, creds: &Credentials) -> Result<Stored> {
        let key = key_for(domain);
        let helper = self.helper_for(domain);
        let entry = match &helper {
            Some(h) => {
                helper_store(h, &key, creds)?;
                json!({})
            }
            None => match &creds.secret {
                Secret::Password(p) => {
                    json!({"auth": BASE64.encode(format!("{}:{p}", creds.username))})
                }
                Secret::IdentityToken(t) => json!({
                    "auth": BASE64.encode(format!("{}:", creds.username)),
                    "identitytoken": t,
                }),
            },
        };
        let auths = self
            .doc
            .entry("auths")
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .ok_or_else(|| {
                Error::Config(format!(
                    "{}: \"auths\" is not an object",
                    self.path.display()
                ))
            })?;
        // One entry per registry: drop older spellings of the same key.
        auths.retain(|k, _| !key_matches(k, domain));
        auths.insert(key, entry);
        self.write()?;
        Ok(match helper {
            Some(h) => Stored::Helper(h),
            None => Stored::File(self.path.clone()),
        })
    }

    /// Removes the credentials of `domain`; false when there were none.
    pub fn erase(&mut self, domain: &str) -> Result<bool> {
        let key = key_for(domain);
        let mut found = false;
        if let Some(h) = self.helper_for(domain) {
            found |= helper_erase(&h, &key)?;
        }
        if let Some(auths) = self.doc.get_mut("auths").and_then(Value::as_object_mut) {
            let before = auths.len();
            auths.retain(|k, _| !key_matches(k, domain));
            if auths.len() != before {
                found = true;
                self.write()?;
            }
        }
        Ok(found)
    }

    /// Writes the file atomically (temporary file, rename), mode 0600.
    fn write(&self) -> Result<()> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        let bad = |p: &Path, r: std::io::Error| Error::Config(format!("{}: {r}", p.display()));
        // Write through a symlinked config file, as Docker does.
        let target = std::fs::canonicalize(&self.path).unwrap_or_else(|_| self.path.clone());
        let dir = target.parent().unwrap_or(Path::new("/"));
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| bad(dir, e))?;
        let tmp = dir.join(format!(".config.json.{}.tmp", std::process::id()));
        let data = serde_json::to_vec_pretty(&self.doc).expect("JSON values serialise");
        let r = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .and_then(|mut f| f.write_all(&data).and_then(|()| f.sync_all()))
            .and_then(|()| std::fs::rename(&tmp, &target));
        if let Err(e) = r {
            let _ = std::fs::remove_file(&tmp);
            return Err(bad(&target, e));
        }
        Ok(())
    }
}

/// What a credential helper answered.
fn run_helper(helper: &str, action: &str, input: &[u8]) -> Result<(bool, String)> {
    let program = format!("docker-credential-{helper}");
    let mut child = Command::new(&program)
        .arg(action)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::Config(format!("credential helper {program}: {e}")))?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    let written = stdin.write_all(input);
    drop(stdin);
    let out = child
        .wait_with_output()
        .map_err(|e| Error::Config(format!("credential helper {program}: {e}")))?;
    written.map_err(|e| Error::Config(format!("credential helper {program}: writing: {e}")))?;
    let mut text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() && text.is_empty() {
        text = String::from_utf8_lossy(&out.stderr).trim().to_string();
    }
    Ok((out.status.success(), text))
}

fn helper_failed(helper: &str, action: &str, text: &str) -> Error {
    Error::Config(format!(
        "credential helper docker-credential-{helper} {action}: {}",
        crate::error::one_line(text)
    ))
}

fn is_not_found(text: &str) -> bool {
    text.contains("credentials not found")
}

fn helper_get(helper: &str, key: &str) -> Result<Option<Credentials>> {
    let (ok, text) = run_helper(helper, "get", key.as_bytes())?;
    if !ok {
        return if is_not_found(&text) {
            Ok(None)
        } else {
            Err(helper_failed(helper, "get", &text))
        };
    }
    let v: Value = serde_json::from_str(&text)
        .map_err(|e| helper_failed(helper, "get", &format!("malformed answer: {e}")))?;
    let field = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let (username, secret) = (field("Username"), field("Secret"));
    if username.is_empty() && secret.is_empty() {
        return Ok(None);
    }
    Ok(Some(Credentials {
        secret: if username == "<token>" {
            Secret::IdentityToken(secret)
        } else {
            Secret::Password(secret)
        },
        username,
    }))
}

fn helper_store(helper: &str, key: &str, creds: &Credentials) -> Result<()> {
    let (username, secret) = match &creds.secret {
        Secret::Password(p) => (creds.username.as_str(), p.as_str()),
        Secret::IdentityToken(t) => ("<token>", t.as_str()),
    };
    let input =
        serde_json::to_vec(&json!({"ServerURL": key, "Username": username, "Secret": secret}))
            .expect("JSON values serialise");
    let (ok, text) = run_helper(helper, "store", &input)?;
    if ok {
        Ok(())
    } else {
        Err(helper_failed(helper, "store", &text))
    }
}

fn helper_erase(helper: &str, key: &str) -> Result<bool> {
    let (ok, text) = run_helper(helper, "erase", key.as_bytes())?;
    match (ok, is_not_found(&text)) {
        (true, _) => Ok(true),
        (false, true) => Ok(false),
        (false, false) => Err(helper_failed(helper, "erase", &text)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auths_round_trip_and_other_keys_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.json");
        std::fs::write(
            &p,
            r#"{"psFormat": "x", "auths": {"http://reg.lan:5000/v2/": {"auth": "dTpw"}}}"#,
        )
        .unwrap();
        let c = DockerConfig::from_file(&p).unwrap();
        let got = c.get("reg.lan:5000").unwrap().unwrap();
        assert_eq!(got.username, "u");
        assert!(got.secret == Secret::Password("p".into()));
        assert!(c.get("other:5000").unwrap().is_none());

        let mut c = DockerConfig::from_file(&p).unwrap();
        let creds = Credentials {
            username: "alice".into(),
            secret: Secret::Password("s3:cret".into()),
        };
        assert_eq!(
            c.store("reg.lan:5000", &creds).unwrap(),
            Stored::File(p.clone())
        );
        assert_eq!(
            c.store("docker.io", &creds).unwrap(),
            Stored::File(p.clone())
        );
        let v: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        assert_eq!(v["psFormat"], "x");
        assert_eq!(
            v["auths"]["reg.lan:5000"]["auth"],
            BASE64.encode("alice:s3:cret")
        );
        assert!(v["auths"].get("http://reg.lan:5000/v2/").is_none());
        assert!(v["auths"].get(DOCKER_HUB_KEY).is_some());
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );

        let c = DockerConfig::from_file(&p).unwrap();
        assert!(c.get("reg.lan:5000").unwrap().unwrap() == creds);
        let mut c = c;
        assert!(c.erase("reg.lan:5000").unwrap());
        assert!(!c.erase("reg.lan:5000").unwrap());
        assert!(
            DockerConfig::from_file(&p)
                .unwrap()
                .get("reg.lan:5000")
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn helpers_are_chosen_per_registry() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.json");
        std::fs::write(
            &p,
            r#"{"credsStore": "desktop", "credHelpers": {"gcr.io": "gcloud"}}"#,
        )
        .unwrap();
        let c = DockerConfig::from_file(&p).unwrap();
        assert_eq!(c.helper_for("gcr.io").as_deref(), Some("gcloud"));
        assert_eq!(c.helper_for("quay.io").as_deref(), Some("desktop"));
        std::fs::write(&p, "{\"auths\": 3}").unwrap();
        let mut c = DockerConfig::from_file(&p).unwrap();
        let creds = Credentials {
            username: "a".into(),
            secret: Secret::Password("b".into()),
        };
        assert!(c.store("x.io", &creds).is_err());
        std::fs::write(&p, "[").unwrap();
        assert!(DockerConfig::from_file(&p).is_err());
    }
}
