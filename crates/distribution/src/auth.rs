//! Registry authentication: `WWW-Authenticate` challenges, the bearer-token
//! flow of Docker Hub, GHCR and Quay (anonymous or with credentials, an
//! identity token exchanged through OAuth2, tokens cached per scope until
//! they expire) and HTTP basic authentication.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Deserialize;

use crate::credentials::{Credentials, Secret};
use crate::error::{Failure, Kind};

/// One challenge of a `WWW-Authenticate` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    /// The scheme, lowercase: `bearer`, `basic`.
    pub scheme: String,
    /// Its parameters (names lowercase) in order.
    pub params: Vec<(String, String)>,
}

impl Challenge {
    /// The value of parameter `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses a `WWW-Authenticate` header value into its challenges
/// (RFC 9110: `scheme param=value, param="quoted", scheme2 ...`).
pub fn parse_challenges(header: &str) -> Vec<Challenge> {
    let s = header.as_bytes();
    let mut i = 0;
    let mut out: Vec<Challenge> = Vec::new();
    let is_token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~/:".contains(&b);
    let skip_ws = |i: &mut usize| {
        while *i < s.len() && (s[*i] == b' ' || s[*i] == b'\t' || s[*i] == b',') {
            *i += 1;
        }
    };
    loop {
        skip_ws(&mut i);
        if i >= s.len() {
            break;
        }
        let start = i;
        while i < s.len() && is_token(s[i]) && s[i] != b'=' {
            i += 1;
        }
        if i == start {
            // Not a token: skip the byte.
            i += 1;
            continue;
        }
        let word = header[start..i].to_string();
        // `word=` is a parameter of the current challenge; otherwise a new scheme.
        let mut j = i;
        while j < s.len() && (s[j] == b' ' || s[j] == b'\t') {
            j += 1;
        }
        if j < s.len() && s[j] == b'=' && !out.is_empty() && !(j + 1 < s.len() && s[j + 1] == b'=')
        {
            i = j + 1;
            while i < s.len() && (s[i] == b' ' || s[i] == b'\t') {
                i += 1;
            }
            let mut value = String::new();
            if i < s.len() && s[i] == b'"' {
                i += 1;
                let mut chars = Vec::new();
                while i < s.len() && s[i] != b'"' {
                    if s[i] == b'\\' && i + 1 < s.len() {
                        i += 1;
                    }
                    chars.push(s[i]);
                    i += 1;
                }
                i += 1;
                value = String::from_utf8_lossy(&chars).into_owned();
            } else {
                let vs = i;
                while i < s.len() && s[i] != b',' && s[i] != b' ' {
                    i += 1;
                }
                value.push_str(&header[vs..i]);
            }
            let last = out.last_mut().expect("checked above");
            last.params.push((word.to_ascii_lowercase(), value));
        } else {
            out.push(Challenge {
                scheme: word.to_ascii_lowercase(),
                params: Vec::new(),
            });
            // A token68 (base64 blob) may follow the scheme: skip it.
            let k = i;
            while i < s.len() && s[i] == b' ' {
                i += 1;
            }
            let t = i;
            while i < s.len() && is_token(s[i]) && s[i] != b'=' {
                i += 1;
            }
            let word_end = i;
            while i < s.len() && s[i] == b'=' {
                i += 1;
            }
            let equals = i - word_end;
            let mut n = i;
            while n < s.len() && s[n] == b' ' {
                n += 1;
            }
            let ends = n >= s.len() || s[n] == b',';
            if t == word_end || !ends || equals > 2 {
                // Nothing, or a parameter: read it as one.
                i = k;
            } else {
                i = n;
            }
        }
    }
    out
}

/// A cached bearer token.
struct Token {
    value: String,
    expires: Instant,
}

/// How the registry wants requests authenticated.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Scheme {
    /// Not known yet or not needed.
    None,
    /// HTTP basic authentication.
    Basic,
    /// Bearer tokens from `realm` for `service`.
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

/// The authentication state of one registry: the scheme it asked for,
/// the user's credentials, and the tokens obtained so far.
pub struct Auth {
    creds: Option<Credentials>,
    state: Mutex<State>,
}

struct State {
    scheme: Scheme,
    tokens: HashMap<String, Token>,
}

/// The token server's answer.
#[derive(Deserialize)]
struct TokenResponse {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// Tokens are renewed this long before they expire.
const EXPIRY_MARGIN: Duration = Duration::from_secs(10);
/// A token's lifetime when the server does not say (the spec's minimum).
const DEFAULT_LIFETIME: u64 = 60;

/// Whether an HTTP client identifies itself to an OAuth2 token endpoint.
const CLIENT_ID: &str = "capsa";

impl Auth {
    /// The state of a registry for a user with `creds` (anonymous when `None`).
    pub fn new(creds: Option<Credentials>) -> Auth {
        Auth {
            creds,
            state: Mutex::new(State {
                scheme: Scheme::None,
                tokens: HashMap::new(),
            }),
        }
    }

    /// Whether credentials are known.
    pub fn has_credentials(&self) -> bool {
        self.creds.is_some()
    }

    /// Learns the challenges of a 401 answer. Returns whether a new
    /// attempt may succeed (a scheme now known, or a token to renew).
    pub fn challenged(&self, headers: &[String], scopes: &[String]) -> bool {
        let challenges: Vec<Challenge> = headers.iter().flat_map(|h| parse_challenges(h)).collect();
        let mut state = self.state.lock().expect("auth state lock");
        let bearer = challenges
            .iter()
            .find(|c| c.scheme == "bearer" && c.param("realm").is_some());
        let new = if let Some(b) = bearer {
            Scheme::Bearer {
                realm: b.param("realm").unwrap_or_default().to_string(),
                service: b.param("service").map(str::to_string),
            }
        } else if challenges.iter().any(|c| c.scheme == "basic") {
            Scheme::Basic
        } else {
            return false;
        };
        let changed = new != state.scheme;
        state.scheme = new;
        match &state.scheme {
            Scheme::Basic => changed && self.creds.is_some(),
            Scheme::Bearer { .. } => {
                // The token we sent (if any) was refused: forget it.
                let had = state.tokens.remove(&scope_key(scopes)).is_some();
                changed || had
            }
            Scheme::None => false,
        }
    }

    /// The `Authorization` header for a request needing `scopes`, fetching
    /// a token when the registry uses bearer tokens and none is cached.
    pub fn header(
        &self,
        agent: &ureq::Agent,
        scopes: &[String],
    ) -> Result<Option<String>, Failure> {
        let scheme = self.state.lock().expect("auth state lock").scheme.clone();
        match scheme {
            Scheme::None => Ok(None),
            Scheme::Basic => Ok(self.basic()),
            Scheme::Bearer { realm, service } => {
                let key = scope_key(scopes);
                {
                    let state = self.state.lock().expect("auth state lock");
                    if let Some(t) = state.tokens.get(&key)
                        && t.expires > Instant::now()
                    {
                        return Ok(Some(format!("Bearer {}", t.value)));
                    }
                }
                let token = self.fetch_token(agent, &realm, service.as_deref(), scopes)?;
                let value = format!("Bearer {}", token.value);
                self.state
                    .lock()
                    .expect("auth state lock")
                    .tokens
                    .insert(key, token);
                Ok(Some(value))
            }
        }
    }

    fn basic(&self) -> Option<String> {
        match &self.creds {
            Some(Credentials {
                username,
                secret: Secret::Password(p),
            }) => Some(format!(
                "Basic {}",
                BASE64.encode(format!("{username}:{p}"))
            )),
            _ => None,
        }
    }

    /// Asks the token server for a token granting `scopes`.
    fn fetch_token(
        &self,
        agent: &ureq::Agent,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
    ) -> Result<Token, Failure> {
        let started = Instant::now();
        let response = match &self.creds {
            Some(Credentials {
                secret: Secret::IdentityToken(refresh),
                ..
            }) => {
                let mut form: Vec<(&str, &str)> = vec![
                    ("grant_type", "refresh_token"),
                    ("refresh_token", refresh),
                    ("client_id", CLIENT_ID),
                ];
                if let Some(s) = service {
                    form.push(("service", s));
                }
                let joined = scopes.join(" ");
                if !scopes.is_empty() {
                    form.push(("scope", &joined));
                }
                agent.post(realm).send_form(form)
            }
            creds => {
                let mut req = agent.get(realm);
                if let Some(s) = service {
                    req = req.query("service", s);
                }
                for s in scopes {
                    req = req.query("scope", s);
                }
                if let Some(c) = creds {
                    req = req.query("account", &c.username);
                }
                if let Some(b) = self.basic() {
                    req = req.header("Authorization", b);
                }
                req.call()
            }
        };
        let mut response = response.map_err(|e| {
            let f = crate::client::transport_failure(&e);
            Failure::new(f.kind, format!("token server {realm}: {}", f.reason))
        })?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(1 << 20)
            .read_to_vec()
            .unwrap_or_default();
        if status == 401 || status == 403 {
            let detail = crate::client::error_text(&body);
            let reason = if self.creds.is_some() {
                format!("the token server {realm} refused the credentials ({status})")
            } else {
                format!("the token server {realm} refused anonymous access ({status})")
            };
            return Err(Failure::new(
                Kind::Unauthorized,
                match detail {
                    Some(d) => format!("{reason}: {d}"),
                    None => reason,
                },
            ));
        }
        if status != 200 {
            return Err(Failure::new(
                if status == 429 {
                    Kind::RateLimited
                } else {
                    Kind::Protocol
                },
                format!(
                    "the token server {realm} answered {status}{}",
                    crate::client::error_text(&body)
                        .map(|d| format!(": {d}"))
                        .unwrap_or_default()
                ),
            ));
        }
        let parsed: TokenResponse = serde_json::from_slice(&body).map_err(|e| {
            Failure::new(
                Kind::Protocol,
                format!("the token server {realm} answered invalid JSON: {e}"),
            )
        })?;
        let value = parsed
            .token
            .filter(|t| !t.is_empty())
            .or(parsed.access_token.filter(|t| !t.is_empty()))
            .ok_or_else(|| {
                Failure::new(
                    Kind::Protocol,
                    format!("the token server {realm} answered without a token"),
                )
            })?;
        if value.bytes().any(|b| b.is_ascii_control() || b == b' ') {
            return Err(Failure::new(
                Kind::Protocol,
                format!("the token server {realm} answered a malformed token"),
            ));
        }
        let lifetime = Duration::from_secs(
            parsed
                .expires_in
                .unwrap_or(DEFAULT_LIFETIME)
                .max(DEFAULT_LIFETIME),
        );
        tracing::debug!(realm, ?scopes, "got a token for {}s", lifetime.as_secs());
        Ok(Token {
            value,
            expires: started + lifetime.saturating_sub(EXPIRY_MARGIN),
        })
    }

    /// Number of tokens cached (for tests and debugging).
    pub fn cached_tokens(&self) -> usize {
        self.state.lock().expect("auth state lock").tokens.len()
    }
}

fn scope_key(scopes: &[String]) -> String {
    let mut s = scopes.to_vec();
    s.sort();
    s.dedup();
    s.join(" ")
}

/// The scope of repository `path` with `actions` (`pull`, `pull,push`).
pub fn repository_scope(path: &str, actions: &str) -> String {
    format!("repository:{path}:{actions}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_hub_challenges() {
        let c = parse_challenges(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull""#,
        );
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].scheme, "bearer");
        assert_eq!(c[0].param("realm"), Some("https://auth.docker.io/token"));
        assert_eq!(c[0].param("service"), Some("registry.docker.io"));
        assert_eq!(c[0].param("scope"), Some("repository:library/alpine:pull"));
    }

    #[test]
    fn parses_several_challenges_and_quoting() {
        let c = parse_challenges(
            r#"Basic realm="a \"b\", c", Bearer realm=https://x/token, error="insufficient_scope""#,
        );
        assert_eq!(c.len(), 2, "{c:?}");
        assert_eq!(c[0].scheme, "basic");
        assert_eq!(c[0].param("realm"), Some(r#"a "b", c"#));
        assert_eq!(c[1].param("realm"), Some("https://x/token"));
        assert_eq!(c[1].param("error"), Some("insufficient_scope"));
        let c = parse_challenges("Negotiate abc123==, Basic realm=x");
        assert_eq!(
            c.iter().map(|c| c.scheme.as_str()).collect::<Vec<_>>(),
            ["negotiate", "basic"]
        );
        assert!(parse_challenges("").is_empty());
    }

    #[test]
    fn challenge_decides_whether_to_retry() {
        let a = Auth::new(None);
        assert!(
            !a.challenged(&["Basic realm=x".into()], &[]),
            "basic without credentials"
        );
        let a = Auth::new(Some(Credentials {
            username: "u".into(),
            secret: Secret::Password("p".into()),
        }));
        assert!(a.challenged(&["Basic realm=x".into()], &[]));
        assert!(
            !a.challenged(&["Basic realm=x".into()], &[]),
            "same challenge twice"
        );
        let b = Auth::new(None);
        let h = vec![r#"Bearer realm="http://t/token",service="s""#.to_string()];
        assert!(b.challenged(&h, &[]));
        assert!(!b.challenged(&h, &[]), "no token was refused");
        assert!(!b.challenged(&["Digest x=y".into()], &[]));
    }
}
