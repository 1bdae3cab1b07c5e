//! The distribution library's error type. A registry failure is one line
//! that names what was being done, the image and the registry.

use std::fmt;

/// What was being done when a registry failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Pulling an image.
    Pull,
    /// Pushing an image.
    Push,
    /// Logging in.
    Login,
}

/// The class of a registry failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The registry could not be reached (DNS, refused, reset, timeout).
    Unreachable,
    /// The TLS handshake failed (certificate, protocol).
    Tls,
    /// Credentials are missing or were refused (401).
    Unauthorized,
    /// Access was denied (403).
    Denied,
    /// The manifest, blob or repository does not exist (404).
    NotFound,
    /// The registry limits the request rate (429).
    RateLimited,
    /// The registry answered something malformed or unexpected.
    Protocol,
    /// Content does not have the digest it was announced with.
    Digest,
    /// What the registry serves cannot be used (schema 1, no matching platform).
    Unsupported,
}

/// Everything that can go wrong while talking to registries.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A registry request failed or the registry answered something unusable.
    #[error("{}", registry_message(*op, image, registry, reason))]
    Registry {
        /// What was being done.
        op: Op,
        /// The image (reference as the user gave it, normalised); empty for a login.
        image: String,
        /// The registry host contacted.
        registry: String,
        /// What went wrong, on one line.
        reason: String,
        /// Its class.
        kind: Kind,
    },

    /// The image store failed.
    #[error(transparent)]
    Store(#[from] capsa_images::Error),

    /// A configuration file (registries.json, Docker's config.json) or a
    /// credential helper failed.
    #[error("{0}")]
    Config(String),

    /// The request itself is invalid (a bad platform, a reference that cannot be pulled).
    #[error("{0}")]
    Invalid(String),
}

/// Result with the distribution library's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

fn registry_message(op: Op, image: &str, registry: &str, reason: &str) -> String {
    match op {
        Op::Pull => format!("pulling {image} from {registry}: {reason}"),
        Op::Push => format!("pushing {image} to {registry}: {reason}"),
        Op::Login => format!("logging in to {registry}: {reason}"),
    }
}

impl Error {
    /// The class of a registry failure, `None` for other errors.
    pub fn kind(&self) -> Option<Kind> {
        match self {
            Error::Registry { kind, .. } => Some(*kind),
            _ => None,
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Pull => "pull",
            Op::Push => "push",
            Op::Login => "login",
        })
    }
}

/// Text received from a server made safe for a one-line message: control
/// characters become spaces, runs of spaces shrink, and it is cut at 300 characters.
pub fn one_line(s: &str) -> String {
    let mut out = String::new();
    let mut space = false;
    for c in s.trim().chars() {
        if c.is_control() || c.is_whitespace() {
            if !space && !out.is_empty() {
                out.push(' ');
            }
            space = true;
        } else {
            out.push(c);
            space = false;
        }
        if out.chars().count() >= 300 {
            out.push('…');
            break;
        }
    }
    out.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_removes_newlines_and_cuts() {
        assert_eq!(one_line(" a\nb\r\n\tc  "), "a b c");
        assert!(one_line(&"x".repeat(1000)).chars().count() <= 301);
    }

    #[test]
    fn messages_name_the_image_and_registry() {
        let e = Error::Registry {
            op: Op::Pull,
            image: "localhost:5000/app:1".into(),
            registry: "localhost:5000".into(),
            reason: "manifest unknown".into(),
            kind: Kind::NotFound,
        };
        assert_eq!(
            e.to_string(),
            "pulling localhost:5000/app:1 from localhost:5000: manifest unknown"
        );
        assert_eq!(e.kind(), Some(Kind::NotFound));
    }
}

/// A registry failure before the image and registry are attached to it.
#[derive(Debug)]
pub struct Failure {
    /// Its class.
    pub kind: Kind,
    /// What went wrong, on one line.
    pub reason: String,
}

impl Failure {
    /// A failure of class `kind`.
    pub fn new(kind: Kind, reason: impl Into<String>) -> Failure {
        Failure {
            kind,
            reason: reason.into(),
        }
    }
}
