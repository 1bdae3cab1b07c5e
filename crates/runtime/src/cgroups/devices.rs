//! Device access rules (`linux.resources.devices`): parsing, the defaults
//! every container gets, and their reduction to a default plus exceptions,
//! with the semantics of the v1 devices controller. Both the v1 files and the
//! v2 eBPF filter are made from that reduced form, so the two behave alike.

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};
use std::collections::BTreeMap;

use crate::error::{Error, Result};

/// The field the rules come from, for error messages.
pub const FIELD: &str = "linux.resources.devices";

/// Access bits, with the values of the kernel's BPF_DEVCG_ACC_* flags.
pub mod access {
    /// mknod(2).
    pub const MKNOD: u8 = 1;
    /// Reading.
    pub const READ: u8 = 2;
    /// Writing.
    pub const WRITE: u8 = 4;
    /// All three.
    pub const ALL: u8 = MKNOD | READ | WRITE;
}

/// A kind of device node a rule can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// A block device ('b').
    Block,
    /// A character device ('c').
    Char,
}

impl Kind {
    fn letter(self) -> char {
        match self {
            Kind::Block => 'b',
            Kind::Char => 'c',
        }
    }
}

/// The devices one rule applies to: a kind and a major:minor, `None` being
/// the wildcard `*`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    /// Block or character.
    pub kind: Kind,
    /// The major number, or any.
    pub major: Option<u32>,
    /// The minor number, or any.
    pub minor: Option<u32>,
}

/// One device rule, as the v1 controller understands them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// Type 'a': forget every exception and allow (or deny) everything.
    Reset {
        /// Allow everything rather than deny.
        allow: bool,
    },
    /// Allow or deny `access` to the devices of `key`.
    One {
        /// Allow rather than deny.
        allow: bool,
        /// Which devices.
        key: Key,
        /// Access bits (see [`access`]).
        access: u8,
    },
}

/// A rule set reduced to what the kernel keeps: a default, and exceptions
/// to it (each allowing when the default denies, and the reverse).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reduced {
    /// Whether devices no exception names are allowed.
    pub default_allow: bool,
    /// The exceptions and their access bits.
    pub exceptions: BTreeMap<Key, u8>,
    /// The exceptions' keys in the order they were first given: v1's
    /// devices.list shows them in the order written, which is then the
    /// config's (as the runtime-spec's "apply entries in the listed order"
    /// reads, and runtime-tools checks).
    pub order: Vec<Key>,
}

fn number(v: Option<i64>, field: String) -> Result<Option<u32>> {
    match v {
        None | Some(-1) => Ok(None),
        // Majors and minors are below 2^20; larger values could not be
        // compared as the signed immediates of the eBPF filter.
        Some(n) if (0..=i32::MAX as i64).contains(&n) => Ok(Some(n as u32)),
        Some(n) => Err(Error::config(field, format!("{n} is not a device number"))),
    }
}

/// Parses an access string ("rwm" or part of it; absent or empty means all).
pub fn parse_access(s: Option<&str>, field: &str) -> Result<u8> {
    let s = match s {
        None | Some("") => return Ok(access::ALL),
        Some(s) => s,
    };
    let mut bits = 0;
    for c in s.chars() {
        bits |= match c {
            'r' => access::READ,
            'w' => access::WRITE,
            'm' => access::MKNOD,
            _ => {
                return Err(Error::config(
                    field,
                    format!("{s:?}: the access may only hold 'r', 'w' and 'm'"),
                ));
            }
        };
    }
    Ok(bits)
}

/// Checks the config's rules and turns them into [`Rule`]s.
pub fn parse_rules(list: &[LinuxDeviceCgroup]) -> Result<Vec<Rule>> {
    let mut out = Vec::with_capacity(list.len());
    for (i, d) in list.iter().enumerate() {
        let field = |f: &str| format!("{FIELD}[{i}].{f}");
        let kind = match d.typ().unwrap_or(LinuxDeviceType::A) {
            LinuxDeviceType::A => None,
            LinuxDeviceType::B => Some(Kind::Block),
            LinuxDeviceType::C => Some(Kind::Char),
            other => {
                return Err(Error::config(
                    field("type"),
                    format!(
                        "{:?}: a device rule's type is \"a\", \"b\" or \"c\"",
                        other.as_str()
                    ),
                ));
            }
        };
        let major = number(d.major(), field("major"))?;
        let minor = number(d.minor(), field("minor"))?;
        let access = parse_access(d.access().as_deref(), &field("access"))?;
        out.push(match kind {
            // The kernel treats any 'a' rule as a reset, whatever else it says.
            None => Rule::Reset { allow: d.allow() },
            Some(kind) => Rule::One {
                allow: d.allow(),
                key: Key { kind, major, minor },
                access,
            },
        });
    }
    Ok(out)
}

/// The devices every container may use whatever its rules say (runc's list,
/// appended after the config's rules): mknod of any node, /dev/null, zero,
/// full, random, urandom, tty, ptmx, the pseudo-terminals and /dev/net/tun.
pub fn default_allowed() -> Vec<Rule> {
    let one = |kind, major: Option<u32>, minor: Option<u32>, access| Rule::One {
        allow: true,
        key: Key { kind, major, minor },
        access,
    };
    vec![
        one(Kind::Char, None, None, access::MKNOD),
        one(Kind::Block, None, None, access::MKNOD),
        one(Kind::Char, Some(1), Some(3), access::ALL),
        one(Kind::Char, Some(1), Some(8), access::ALL),
        one(Kind::Char, Some(1), Some(7), access::ALL),
        one(Kind::Char, Some(5), Some(0), access::ALL),
        one(Kind::Char, Some(1), Some(5), access::ALL),
        one(Kind::Char, Some(1), Some(9), access::ALL),
        one(Kind::Char, Some(136), None, access::ALL),
        one(Kind::Char, Some(5), Some(2), access::ALL),
        one(Kind::Char, Some(10), Some(200), access::ALL),
    ]
}

/// Applies `rules` in order to a cgroup that denies everything, the way
/// the v1 controller does, and returns what it ends up with.
///
/// As the kernel, a rule that takes away access only removes an exception
/// of exactly its key; one that would need to punch a hole in a wildcard
/// exception (deny 'c 1:3' after allowing 'c 1:*') is refused instead of
/// silently doing nothing.
pub fn reduce(rules: &[Rule]) -> Result<Reduced> {
    let mut r = Reduced {
        default_allow: false,
        exceptions: BTreeMap::new(),
        order: Vec::new(),
    };
    for rule in rules {
        match *rule {
            Rule::Reset { allow } => {
                r.default_allow = allow;
                r.exceptions.clear();
                r.order.clear();
            }
            Rule::One { allow, key, access } if allow != r.default_allow => {
                let bits = r.exceptions.entry(key).or_insert_with(|| {
                    r.order.push(key);
                    0
                });
                *bits |= access;
            }
            Rule::One { key, access, .. } => {
                let wider = [
                    Key { major: None, ..key },
                    Key { minor: None, ..key },
                    Key {
                        major: None,
                        minor: None,
                        ..key
                    },
                ];
                for w in wider {
                    if w != key
                        && let Some(have) = r.exceptions.get(&w)
                        && have & access != 0
                    {
                        return Err(Error::config(
                            FIELD,
                            format!(
                                "the rule for {} {} cannot take access away from part of the \
                                 earlier wildcard rule {} {}: list it before that rule or \
                                 narrow the wildcard",
                                key_text(&key),
                                access_text(access),
                                key_text(&w),
                                access_text(*have),
                            ),
                        ));
                    }
                }
                if let Some(have) = r.exceptions.get_mut(&key) {
                    *have &= !access;
                    if *have == 0 {
                        r.exceptions.remove(&key);
                        r.order.retain(|k| *k != key);
                    }
                }
            }
        }
    }
    Ok(r)
}

/// "c 1:3" / "b *:*": a key as the v1 files write it.
pub fn key_text(k: &Key) -> String {
    let n = |v: Option<u32>| v.map_or("*".to_string(), |v| v.to_string());
    format!("{} {}:{}", k.kind.letter(), n(k.major), n(k.minor))
}

/// "rwm" or part of it.
pub fn access_text(bits: u8) -> String {
    let mut s = String::new();
    for (bit, c) in [
        (access::READ, 'r'),
        (access::WRITE, 'w'),
        (access::MKNOD, 'm'),
    ] {
        if bits & bit != 0 {
            s.push(c);
        }
    }
    s
}

/// The lines to write to a v1 devices cgroup, in order, as (file, line):
/// first the reset to the default, then each exception in the order the
/// rules first gave it.
pub fn v1_writes(r: &Reduced) -> Vec<(&'static str, String)> {
    let (reset, except) = if r.default_allow {
        ("devices.allow", "devices.deny")
    } else {
        ("devices.deny", "devices.allow")
    };
    let mut out = vec![(reset, "a".to_string())];
    for k in &r.order {
        let bits = r.exceptions[k];
        out.push((except, format!("{} {}", key_text(k), access_text(bits))));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(json: &str) -> Result<Vec<Rule>> {
        let list: Vec<LinuxDeviceCgroup> = serde_json::from_str(json).unwrap();
        parse_rules(&list)
    }

    #[test]
    fn deny_all_then_defaults_is_a_whitelist() {
        let mut all = rules(r#"[{"allow": false, "access": "rwm"}]"#).unwrap();
        all.extend(default_allowed());
        let r = reduce(&all).unwrap();
        assert!(!r.default_allow);
        let lines = v1_writes(&r);
        assert_eq!(lines[0], ("devices.deny", "a".to_string()));
        let allowed: Vec<&str> = lines[1..].iter().map(|(_, l)| l.as_str()).collect();
        assert!(allowed.contains(&"c 1:3 rwm"), "{allowed:?}");
        assert!(allowed.contains(&"c *:* m"), "{allowed:?}");
        assert!(allowed.contains(&"c 136:* rwm"), "{allowed:?}");
        assert!(lines[1..].iter().all(|(f, _)| *f == "devices.allow"));
    }

    #[test]
    fn rules_apply_in_order_like_the_kernel() {
        let r = reduce(
            &rules(
                r#"[{"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"},
                    {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "m"},
                    {"allow": false, "type": "c", "major": 1, "minor": 3, "access": "w"},
                    {"allow": true, "type": "b", "major": 8, "access": "r"}]"#,
            )
            .unwrap(),
        )
        .unwrap();
        assert!(!r.default_allow);
        let lines: Vec<String> = v1_writes(&r).into_iter().map(|(_, l)| l).collect();
        assert_eq!(lines, ["a", "c 1:3 rm", "b 8:* r"]);
    }

    #[test]
    fn exceptions_are_written_in_the_order_first_given() {
        // The config's rules before the defaults appended after them; a
        // default the config already named keeps the config's place.
        let mut all = rules(
            r#"[{"allow": false, "access": "rwm"},
                {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rwm"},
                {"allow": true, "type": "b", "major": 8, "minor": 20, "access": "rw"},
                {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "r"},
                {"allow": true, "type": "b", "major": 10, "minor": 200, "access": "r"}]"#,
        )
        .unwrap();
        all.extend(default_allowed());
        let lines: Vec<String> = v1_writes(&reduce(&all).unwrap())
            .into_iter()
            .map(|(_, l)| l)
            .collect();
        assert_eq!(
            lines[..6],
            [
                "a",
                "c 10:229 rwm",
                "b 8:20 rw",
                "c 1:3 rwm",
                "b 10:200 r",
                "c *:* m"
            ]
        );
        // Removed and given again: at the end.
        let again = rules(
            r#"[{"allow": true, "type": "c", "major": 1, "minor": 3},
                {"allow": true, "type": "c", "major": 1, "minor": 5},
                {"allow": false, "type": "c", "major": 1, "minor": 3},
                {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "r"}]"#,
        )
        .unwrap();
        let lines: Vec<String> = v1_writes(&reduce(&again).unwrap())
            .into_iter()
            .map(|(_, l)| l)
            .collect();
        assert_eq!(lines, ["a", "c 1:5 rwm", "c 1:3 r"]);
    }

    #[test]
    fn allow_all_then_deny_is_a_blacklist() {
        let r = reduce(
            &rules(
                r#"[{"allow": true, "access": "rwm"},
                    {"allow": false, "type": "b", "major": 8, "minor": 0}]"#,
            )
            .unwrap(),
        )
        .unwrap();
        assert!(r.default_allow);
        assert_eq!(
            v1_writes(&r),
            [
                ("devices.allow", "a".to_string()),
                ("devices.deny", "b 8:0 rwm".to_string())
            ]
        );
    }

    #[test]
    fn holes_in_wildcards_are_refused() {
        let e = reduce(
            &rules(
                r#"[{"allow": true, "type": "c", "major": 1, "access": "rwm"},
                    {"allow": false, "type": "c", "major": 1, "minor": 3, "access": "r"}]"#,
            )
            .unwrap(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("c 1:*"), "{e}");
    }

    #[test]
    fn bad_rules_name_the_field() {
        let e = rules(r#"[{"allow": true, "type": "c", "access": "rx"}]"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("linux.resources.devices[0].access"), "{e}");
        let e = rules(r#"[{"allow": true}, {"allow": true, "type": "p"}]"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("linux.resources.devices[1].type"), "{e}");
        let e = rules(r#"[{"allow": true, "type": "c", "major": 4294967296}]"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("devices[0].major"), "{e}");
    }

    #[test]
    fn an_a_rule_resets_whatever_else_it_says() {
        let r = reduce(
            &rules(
                r#"[{"allow": true, "type": "c", "major": 1, "minor": 3},
                    {"allow": false, "type": "a", "major": 5, "access": "r"}]"#,
            )
            .unwrap(),
        )
        .unwrap();
        assert!(!r.default_allow && r.exceptions.is_empty());
    }
}
