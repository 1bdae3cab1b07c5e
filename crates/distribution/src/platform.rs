//! Platforms (`os/architecture[/variant]`) as `--platform` takes them, the
//! host's, and choosing an image manifest from an index or manifest list.

use std::fmt;

use capsa_images::manifest::{IndexEntry, host_arch};

use crate::error::{Error, Result};

/// An operating system, CPU architecture and optional CPU variant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Platform {
    /// `linux`, `windows`, ...
    pub os: String,
    /// GOARCH names: `amd64`, `arm64`, `arm`, `386`, `ppc64le`, `s390x`, ...
    pub architecture: String,
    /// `v6`, `v7`, `v8`, ... when given.
    pub variant: Option<String>,
}

impl Platform {
    /// The machine this runs on.
    pub fn host() -> Platform {
        Platform {
            os: "linux".into(),
            architecture: host_arch().into(),
            variant: None,
        }
    }

    /// Parses `os[/arch[/variant]]` (or a bare architecture), normalising
    /// the common aliases (`x86_64` → `amd64`, `aarch64` → `arm64`,
    /// `armhf` → `arm/v7`).
    pub fn parse(s: &str) -> Result<Platform> {
        let bad = |r: &str| Error::Invalid(format!("invalid platform {s:?}: {r}"));
        let lower = s.trim().to_ascii_lowercase();
        let parts: Vec<&str> = lower.split('/').collect();
        if parts.iter().any(|p| p.is_empty()) || parts.len() > 3 {
            return Err(bad("expected OS/ARCH[/VARIANT]"));
        }
        let known_os = [
            "linux", "windows", "darwin", "freebsd", "netbsd", "openbsd", "solaris", "illumos",
            "aix", "plan9",
        ];
        let (os, arch, variant) = match parts.as_slice() {
            [one] if known_os.contains(one) => (one.to_string(), host_arch().to_string(), None),
            [one] => ("linux".to_string(), one.to_string(), None),
            [os, arch] => (os.to_string(), arch.to_string(), None),
            [os, arch, v] => (os.to_string(), arch.to_string(), Some(v.to_string())),
            _ => unreachable!("one to three parts"),
        };
        if !known_os.contains(&os.as_str()) {
            return Err(bad(&format!("unknown operating system {os:?}")));
        }
        if !arch.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(bad(&format!("invalid architecture {arch:?}")));
        }
        let (architecture, alias_variant) = normalise_arch(&arch);
        let variant = normalise_variant(&architecture, variant.or(alias_variant));
        Ok(Platform {
            os,
            architecture,
            variant,
        })
    }

    /// Whether an index entry's platform is this one. A platform without a
    /// variant matches any variant; `arm64` and `arm64/v8` are the same.
    pub fn matches(&self, os: &str, architecture: &str, variant: Option<&str>) -> bool {
        let (arch, alias) = normalise_arch(&architecture.to_ascii_lowercase());
        if os != self.os || arch != self.architecture {
            return false;
        }
        match &self.variant {
            None => true,
            Some(want) => {
                normalise_variant(&arch, variant.map(str::to_string).or(alias)).as_deref()
                    == Some(want)
            }
        }
    }

    /// Picks the first entry of an index that is an image for this
    /// platform (attestations never are).
    pub fn select<'a>(&self, entries: &'a [IndexEntry]) -> Option<&'a IndexEntry> {
        entries
            .iter()
            .filter(|e| !e.attestation)
            .find(|e| match &e.platform {
                Some((os, arch)) => self.matches(os, arch, e.variant.as_deref()),
                None => false,
            })
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

fn normalise_arch(arch: &str) -> (String, Option<String>) {
    let (a, v) = match arch {
        "x86_64" | "x86-64" | "amd64" => ("amd64", None),
        "aarch64" | "arm64" => ("arm64", None),
        "armhf" | "armv7l" | "armv7" => ("arm", Some("v7")),
        "armel" | "armv6l" | "armv6" => ("arm", Some("v6")),
        "i386" | "i686" | "386" => ("386", None),
        other => (other, None),
    };
    (a.to_string(), v.map(str::to_string))
}

fn normalise_variant(arch: &str, variant: Option<String>) -> Option<String> {
    match (arch, variant.as_deref()) {
        // arm64's only variant is v8, written or not.
        ("arm64", Some("v8" | "8")) => None,
        (_, Some(v)) if v.bytes().all(|b| b.is_ascii_digit()) => Some(format!("v{v}")),
        (_, v) => v.map(str::to_string),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalises() {
        let p = Platform::parse("linux/arm64/v8").unwrap();
        assert_eq!(p.to_string(), "linux/arm64");
        assert_eq!(
            Platform::parse("linux/x86_64").unwrap().to_string(),
            "linux/amd64"
        );
        assert_eq!(
            Platform::parse("linux/armhf").unwrap().to_string(),
            "linux/arm/v7"
        );
        assert_eq!(
            Platform::parse("linux/arm/7").unwrap().to_string(),
            "linux/arm/v7"
        );
        assert_eq!(Platform::parse("arm64").unwrap().to_string(), "linux/arm64");
        for bad in ["", "linux/", "plan10/amd64", "linux/a b", "a/b/c/d"] {
            assert!(Platform::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn matching_variants() {
        let arm = Platform::parse("linux/arm/v7").unwrap();
        assert!(arm.matches("linux", "arm", Some("v7")));
        assert!(!arm.matches("linux", "arm", Some("v6")));
        assert!(!arm.matches("linux", "arm", None));
        let arm64 = Platform::parse("linux/arm64").unwrap();
        assert!(arm64.matches("linux", "arm64", Some("v8")));
        assert!(arm64.matches("linux", "arm64", None));
        let amd = Platform::parse("linux/amd64").unwrap();
        assert!(!amd.matches("windows", "amd64", None));
    }
}
