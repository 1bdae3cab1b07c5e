//! Which systemd unit holds a container: `linux.cgroupsPath` in systemd's
//! `slice:prefix:name` form, the scope unit's name, and slice names expanded
//! to the cgroup paths systemd gives them.

use std::collections::HashMap;
use std::path::Path;

use super::annotations;
use super::props::Property;
use crate::error::{Error, Result};

/// The config field the unit comes from, for errors.
pub const FIELD: &str = "linux.cgroupsPath";

/// The slice a container goes in when `linux.cgroupsPath` names none.
pub const DEFAULT_SLICE: &str = "system.slice";

/// The scope prefix of a container whose config has no `linux.cgroupsPath`
/// (runc uses "runc").
pub const DEFAULT_PREFIX: &str = "capsa";

/// Where systemd is asked to put a container: a transient scope unit in a
/// slice.
#[derive(Clone, Debug, PartialEq)]
pub struct Scope {
    /// The slice unit holding the scope ("system.slice", "machine-a.slice").
    pub slice: String,
    /// The scope unit's name ("docker-abc.scope").
    pub unit: String,
    /// The unit's description.
    pub description: String,
    /// Properties the config gives as `org.systemd.property.*`
    /// annotations, sent after the runtime's own.
    pub extra: Vec<Property>,
}

impl Scope {
    /// Reads `linux.cgroupsPath` as runc does with `--systemd-cgroup`:
    /// `slice:prefix:name` gives the scope `prefix-name.scope` in `slice`
    /// (system.slice when empty); no path gives `capsa-<id>.scope` in
    /// system.slice.
    pub fn from_config(cgroups_path: Option<&Path>, id: &str) -> Result<Scope> {
        let text = match cgroups_path {
            None => None,
            Some(p) if p.as_os_str().is_empty() => None,
            Some(p) => Some(
                p.to_str()
                    .ok_or_else(|| Error::config(FIELD, format!("{}: not UTF-8", p.display())))?,
            ),
        };
        let (slice, prefix, name) = match text {
            None => (DEFAULT_SLICE, DEFAULT_PREFIX, id),
            Some(t) => match t.split(':').collect::<Vec<_>>().as_slice() {
                [slice, prefix, name] => {
                    let slice = if slice.is_empty() {
                        DEFAULT_SLICE
                    } else {
                        slice
                    };
                    (slice, *prefix, *name)
                }
                _ => {
                    return Err(Error::config(
                        FIELD,
                        format!(
                            "{t:?}: with --systemd-cgroup the path is \"slice:prefix:name\" \
                             (such as \"system.slice:docker:abc\")"
                        ),
                    ));
                }
            },
        };
        expand_slice(slice)?;
        if name.is_empty() {
            return Err(Error::config(
                FIELD,
                format!("{text:?}: the name (after the second ':') is empty"),
            ));
        }
        if name.ends_with(".slice") {
            return Err(Error::config(
                FIELD,
                format!(
                    "{name:?}: a slice holds no processes; capsa puts the container in a scope \
                     unit (give a name without \".slice\")"
                ),
            ));
        }
        let unit = format!("{prefix}-{name}.scope");
        check_unit_name(&unit)?;
        Ok(Scope {
            slice: slice.to_string(),
            unit,
            description: format!("capsa container {name}"),
            extra: Vec::new(),
        })
    }

    /// Adds the unit properties given as `org.systemd.property.NAME`
    /// annotations (see [`super::annotations`]).
    pub fn with_annotations(mut self, annotations: &HashMap<String, String>) -> Result<Scope> {
        self.extra = annotations::properties(annotations)?;
        Ok(self)
    }
}

/// Checks a unit name against systemd's rules: at most 255 bytes of
/// letters, digits, ':', '-', '_', '.' and '\'.
fn check_unit_name(unit: &str) -> Result<()> {
    let ok = unit.len() <= 255
        && unit
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'-' | b'_' | b'.' | b'\\'));
    if ok {
        Ok(())
    } else {
        Err(Error::config(
            FIELD,
            format!(
                "{unit:?} is not a valid systemd unit name (at most 255 letters, digits and \
                 ':-_.\\')"
            ),
        ))
    }
}

/// The cgroup path, relative to systemd's root cgroup, of slice unit
/// `slice`: each '-' nests, so `a-b.slice` is `/a.slice/a-b.slice`; the
/// root slice `-.slice` is `/`.
pub fn expand_slice(slice: &str) -> Result<String> {
    let bad = |why: &str| Err(Error::config(FIELD, format!("slice {slice:?}: {why}")));
    let Some(base) = slice.strip_suffix(".slice") else {
        return bad("a slice's name ends in \".slice\"");
    };
    if base.is_empty() {
        return bad("a slice's name ends in \".slice\"");
    }
    if slice.contains('/') {
        return bad("a slice's name holds no '/'");
    }
    check_unit_name(slice)?;
    if base == "-" {
        return Ok("/".into());
    }
    let mut path = String::new();
    let mut prefix = String::new();
    for part in base.split('-') {
        if part.is_empty() {
            return bad("'-' separates parent slices and cannot start, end or double");
        }
        path.push('/');
        path.push_str(&prefix);
        path.push_str(part);
        path.push_str(".slice");
        prefix.push_str(part);
        prefix.push('-');
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_nest_at_each_dash() {
        assert_eq!(expand_slice("system.slice").unwrap(), "/system.slice");
        assert_eq!(
            expand_slice("test-a-b.slice").unwrap(),
            "/test.slice/test-a.slice/test-a-b.slice"
        );
        assert_eq!(expand_slice("-.slice").unwrap(), "/");
        for bad in [
            "",
            ".slice",
            "system",
            "a/b.slice",
            "-a.slice",
            "a-.slice",
            "a--b.slice",
            "a b.slice",
        ] {
            let e = expand_slice(bad).unwrap_err().to_string();
            assert!(e.contains(FIELD), "{bad}: {e}");
        }
    }

    #[test]
    fn cgroups_path_is_slice_prefix_name() {
        let s = Scope::from_config(Some(Path::new("machine-x.slice:docker:abc")), "id").unwrap();
        assert_eq!(s.slice, "machine-x.slice");
        assert_eq!(s.unit, "docker-abc.scope");
        assert_eq!(s.description, "capsa container abc");
        // An empty slice is system.slice.
        let s = Scope::from_config(Some(Path::new(":p:n")), "id").unwrap();
        assert_eq!(
            (s.slice.as_str(), s.unit.as_str()),
            ("system.slice", "p-n.scope")
        );
    }

    #[test]
    fn no_cgroups_path_is_capsa_id_in_system_slice() {
        for none in [None, Some(Path::new(""))] {
            let s = Scope::from_config(none, "c1").unwrap();
            assert_eq!(s.slice, "system.slice");
            assert_eq!(s.unit, "capsa-c1.scope");
        }
    }

    #[test]
    fn bad_cgroups_paths_name_the_field() {
        for bad in [
            "/sys/fs/cgroup/x",
            "a:b",
            "a:b:c:d",
            "system:p:n",
            "bad--x.slice:p:n",
            "system.slice:p:",
            "system.slice:p:n.slice",
            "system.slice:p:with space",
            "system.slice:p:a/b",
        ] {
            let e = Scope::from_config(Some(Path::new(bad)), "id")
                .unwrap_err()
                .to_string();
            assert!(e.contains(FIELD), "{bad}: {e}");
        }
    }
}
