//! The Dockerfile instructions `docker import --change` accepts, applied to
//! an image config: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD,
//! STOPSIGNAL, USER, VOLUME, WORKDIR.

use serde_json::{Map, Value, json};

use crate::error::{Error, Result};

fn bad(change: &str, reason: impl Into<String>) -> Error {
    Error::Other(format!("invalid change {change:?}: {}", reason.into()))
}

/// Applies each change to `config` (the `config` object of an image config).
pub fn apply(config: &mut Map<String, Value>, changes: &[String]) -> Result<()> {
    for change in changes {
        let trimmed = change.trim();
        let (word, rest) = trimmed
            .split_once(char::is_whitespace)
            .map(|(w, r)| (w, r.trim()))
            .unwrap_or((trimmed, ""));
        let instr = word.to_ascii_uppercase();
        if rest.is_empty() {
            return Err(bad(change, format!("{instr} requires an argument")));
        }
        match instr.as_str() {
            "CMD" | "ENTRYPOINT" => {
                let args = exec_or_shell(change, rest)?;
                config.insert(pascal(&instr), json!(args));
                if instr == "ENTRYPOINT" && !config.contains_key("Cmd") {
                    config.insert("Cmd".into(), Value::Null);
                }
            }
            "ENV" => {
                for (k, v) in pairs(change, rest)? {
                    let env = config
                        .entry("Env")
                        .or_insert_with(|| json!([]))
                        .as_array_mut()
                        .ok_or_else(|| bad(change, "Env is not a list"))?;
                    let prefix = format!("{k}=");
                    env.retain(|e| !e.as_str().is_some_and(|s| s.starts_with(&prefix)));
                    env.push(json!(format!("{k}={v}")));
                }
            }
            "LABEL" => {
                let labels = config
                    .entry("Labels")
                    .or_insert_with(|| json!({}))
                    .as_object_mut()
                    .ok_or_else(|| bad(change, "Labels is not a map"))?;
                for (k, v) in pairs(change, rest)? {
                    labels.insert(k, json!(v));
                }
            }
            "EXPOSE" => {
                let ports = config
                    .entry("ExposedPorts")
                    .or_insert_with(|| json!({}))
                    .as_object_mut()
                    .ok_or_else(|| bad(change, "ExposedPorts is not a map"))?;
                for p in rest.split_whitespace() {
                    for port in expand_port(change, p)? {
                        ports.insert(port, json!({}));
                    }
                }
            }
            "VOLUME" => {
                let vols: Vec<String> = if rest.starts_with('[') {
                    serde_json::from_str(rest)
                        .map_err(|e| bad(change, format!("not a JSON list of strings: {e}")))?
                } else {
                    rest.split_whitespace().map(str::to_string).collect()
                };
                let map = config
                    .entry("Volumes")
                    .or_insert_with(|| json!({}))
                    .as_object_mut()
                    .ok_or_else(|| bad(change, "Volumes is not a map"))?;
                for v in vols {
                    if v.is_empty() {
                        return Err(bad(change, "empty volume path"));
                    }
                    map.insert(v, json!({}));
                }
            }
            "WORKDIR" => {
                let dir = if rest.starts_with('/') {
                    rest.to_string()
                } else {
                    let base = config
                        .get("WorkingDir")
                        .and_then(Value::as_str)
                        .filter(|s| !s.is_empty())
                        .unwrap_or("/");
                    format!("{}/{rest}", base.trim_end_matches('/'))
                };
                config.insert("WorkingDir".into(), json!(dir));
            }
            "USER" | "STOPSIGNAL" => {
                if rest.split_whitespace().count() != 1 {
                    return Err(bad(change, format!("{instr} takes exactly one argument")));
                }
                let key = if instr == "USER" {
                    "User"
                } else {
                    "StopSignal"
                };
                config.insert(key.into(), json!(rest));
            }
            "ONBUILD" => {
                let list = config
                    .entry("OnBuild")
                    .or_insert_with(|| json!([]))
                    .as_array_mut()
                    .ok_or_else(|| bad(change, "OnBuild is not a list"))?;
                list.push(json!(rest));
            }
            "HEALTHCHECK" => {
                return Err(Error::Unsupported(format!(
                    "HEALTHCHECK in --change ({change:?})"
                )));
            }
            _ => {
                return Err(bad(change, format!("{word} is not a valid change command")));
            }
        }
    }
    Ok(())
}

fn pascal(instr: &str) -> String {
    match instr {
        "CMD" => "Cmd".into(),
        _ => "Entrypoint".into(),
    }
}

/// The exec form `["a", "b"]`, or the shell form run by `/bin/sh -c`.
fn exec_or_shell(change: &str, rest: &str) -> Result<Vec<String>> {
    if rest.starts_with('[')
        && let Ok(v) = serde_json::from_str::<Vec<String>>(rest)
    {
        return Ok(v);
    }
    if rest.is_empty() {
        return Err(bad(change, "empty command"));
    }
    Ok(vec!["/bin/sh".into(), "-c".into(), rest.into()])
}

/// `K=V K2="v 2"` pairs, or the legacy `K some value` form.
fn pairs(change: &str, rest: &str) -> Result<Vec<(String, String)>> {
    let words = split_words(change, rest)?;
    if !words[0].contains('=') {
        let (k, v) = rest
            .split_once(char::is_whitespace)
            .ok_or_else(|| bad(change, "expected KEY=VALUE or KEY VALUE"))?;
        return Ok(vec![(k.to_string(), v.trim().to_string())]);
    }
    words
        .into_iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(bad(change, format!("{w:?} is not KEY=VALUE"))),
        })
        .collect()
}

/// Splits words as a shell does for quotes and backslashes.
fn split_words(change: &str, s: &str) -> Result<Vec<String>> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' | '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some(q) if q == c => break,
                        Some('\\') if c == '"' => {
                            if let Some(n) = chars.next() {
                                cur.push(n);
                            }
                        }
                        Some(x) => cur.push(x),
                        None => return Err(bad(change, "unterminated quote")),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    if words.is_empty() {
        return Err(bad(change, "no arguments"));
    }
    Ok(words)
}

/// `80`, `80/udp`, `8000-8002/tcp` → `80/tcp`, ... (ranges expanded).
fn expand_port(change: &str, spec: &str) -> Result<Vec<String>> {
    let (ports, proto) = spec.split_once('/').unwrap_or((spec, "tcp"));
    let proto = proto.to_ascii_lowercase();
    if !["tcp", "udp", "sctp"].contains(&proto.as_str()) {
        return Err(bad(change, format!("invalid protocol {proto:?}")));
    }
    let num = |p: &str| {
        p.parse::<u16>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| bad(change, format!("invalid port {p:?}")))
    };
    let (lo, hi) = match ports.split_once('-') {
        Some((a, b)) => (num(a)?, num(b)?),
        None => (num(ports)?, num(ports)?),
    };
    if hi < lo {
        return Err(bad(change, format!("invalid port range {ports:?}")));
    }
    Ok((lo..=hi).map(|p| format!("{p}/{proto}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(changes: &[&str]) -> Result<Value> {
        let mut m = Map::new();
        apply(
            &mut m,
            &changes.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        )?;
        Ok(Value::Object(m))
    }

    #[test]
    fn applies_docker_changes() {
        let c = run(&[
            r#"CMD ["/bin/sh", "-c", "echo hi"]"#,
            "ENTRYPOINT /entry.sh",
            "ENV A=1 B=\"two words\"",
            "ENV C three four",
            "ENV A=5",
            "EXPOSE 80 53/udp 8000-8001",
            "LABEL a=b \"c d\"=e",
            "VOLUME /data /logs",
            "WORKDIR /srv",
            "WORKDIR app",
            "USER 1000:1000",
            "STOPSIGNAL SIGINT",
            "ONBUILD RUN true",
        ])
        .unwrap();
        assert_eq!(c["Cmd"], json!(["/bin/sh", "-c", "echo hi"]));
        assert_eq!(c["Entrypoint"], json!(["/bin/sh", "-c", "/entry.sh"]));
        assert_eq!(c["Env"], json!(["B=two words", "C=three four", "A=5"]));
        assert_eq!(
            c["ExposedPorts"],
            json!({"80/tcp": {}, "53/udp": {}, "8000/tcp": {}, "8001/tcp": {}})
        );
        assert_eq!(c["Labels"], json!({"a": "b", "c d": "e"}));
        assert_eq!(c["Volumes"], json!({"/data": {}, "/logs": {}}));
        assert_eq!(c["WorkingDir"], json!("/srv/app"));
        assert_eq!(c["User"], json!("1000:1000"));
        assert_eq!(c["StopSignal"], json!("SIGINT"));
        assert_eq!(c["OnBuild"], json!(["RUN true"]));
    }

    #[test]
    fn refuses_bad_changes() {
        assert!(run(&["FROM busybox"]).is_err());
        assert!(run(&["RUN true"]).is_err());
        assert!(run(&["CMD"]).is_err());
        assert!(run(&["EXPOSE 99999"]).is_err());
        assert!(run(&["ENV A=\"x"]).is_err());
        assert!(run(&["USER a b"]).is_err());
    }
}
