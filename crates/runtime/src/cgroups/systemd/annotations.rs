//! Unit properties given as annotations, as runc takes them with
//! `--systemd-cgroup`: `org.systemd.property.NAME` = a value in GVariant's
//! text format (`true`, `5`, `uint64 1000`, `1.5`, `'text'`, `['a', 'b']`,
//! `@as []`). A NAME ending in a lowercase letter and "Sec" is in seconds
//! and becomes NAME…USec in microseconds (`TimeoutStopSec=5` →
//! `TimeoutStopUSec=5000000`), as in runc.

use std::collections::HashMap;

use super::props::{Property, Value};
use crate::error::{Error, Result};

/// The annotations' prefix.
pub const PREFIX: &str = "org.systemd.property.";

/// The properties named by `annotations`, in key order.
pub fn properties(annotations: &HashMap<String, String>) -> Result<Vec<Property>> {
    let mut keys: Vec<&String> = annotations
        .keys()
        .filter(|k| k.starts_with(PREFIX))
        .collect();
    keys.sort();
    let mut out = Vec::new();
    for key in keys {
        let field = format!("annotations[{key:?}]");
        let name = &key[PREFIX.len()..];
        if name.len() < 3 || !name.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(Error::config(
                field,
                format!("{name:?} is not a systemd property name (three or more ASCII letters)"),
            ));
        }
        let text = &annotations[key];
        let mut value = parse(text).map_err(|why| {
            Error::config(&field, format!("{text:?} is not a GVariant value: {why}"))
        })?;
        let mut name = name.to_string();
        if let Some(base) = name.strip_suffix("Sec")
            && base.ends_with(|c: char| c.is_ascii_lowercase())
        {
            value = seconds_to_usec(&value).ok_or_else(|| {
                Error::config(&field, format!("{text:?} is not a number of seconds"))
            })?;
            name = format!("{base}USec");
        }
        out.push((name, value));
    }
    Ok(out)
}

/// A number of seconds as microseconds (`t`).
fn seconds_to_usec(v: &Value) -> Option<Value> {
    let whole = |n: i64| u64::try_from(n).ok().and_then(|n| n.checked_mul(1_000_000));
    let usec = match *v {
        Value::U8(n) => whole(n.into()),
        Value::I16(n) => whole(n.into()),
        Value::U16(n) => whole(n.into()),
        Value::I32(n) => whole(n.into()),
        Value::U32(n) => whole(n.into()),
        Value::I64(n) => whole(n),
        Value::U64(n) => n.checked_mul(1_000_000),
        Value::F64(f) if f >= 0.0 && (f * 1e6) < u64::MAX as f64 => Some((f * 1e6) as u64),
        _ => None,
    }?;
    Some(Value::U64(usec))
}

/// Parses one value of GVariant's text format (the subset of it that
/// systemd properties take: booleans, numbers, strings and arrays of them).
pub fn parse(text: &str) -> std::result::Result<Value, String> {
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
    };
    let v = p.value()?;
    p.ws();
    if p.i != p.s.len() {
        return Err(format!("unexpected {:?} at {}", &text[p.i..], p.i));
    }
    Ok(v)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

/// The type keywords of GVariant's text format and their signatures.
const KEYWORDS: [(&str, &str); 8] = [
    ("byte", "y"),
    ("int16", "n"),
    ("uint16", "q"),
    ("int32", "i"),
    ("uint32", "u"),
    ("int64", "x"),
    ("uint64", "t"),
    ("double", "d"),
];

impl Parser<'_> {
    fn ws(&mut self) {
        while self.s.get(self.i).is_some_and(u8::is_ascii_whitespace) {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    /// The word (letters, digits and signs of a number) at the cursor.
    fn word(&mut self) -> &str {
        let start = self.i;
        while self
            .peek()
            .is_some_and(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'+' | b'_'))
        {
            self.i += 1;
        }
        std::str::from_utf8(&self.s[start..self.i]).unwrap_or_default()
    }

    fn value(&mut self) -> std::result::Result<Value, String> {
        self.ws();
        match self.peek() {
            None => Err("the value is empty".into()),
            Some(b'\'' | b'"') => self.string().map(Value::Str),
            Some(b'[') => self.array(None),
            Some(b'@') => {
                self.i += 1;
                let sig = self.word().to_string();
                self.ws();
                match sig.strip_prefix('a') {
                    Some(elem) if self.peek() == Some(b'[') => self.array(Some(elem.to_string())),
                    _ => Err(format!(
                        "@{sig}: only typed arrays (\"@as []\") are supported"
                    )),
                }
            }
            Some(_) => {
                let word = self.word().to_string();
                if let Some((_, sig)) = KEYWORDS.iter().find(|(k, _)| *k == word) {
                    self.ws();
                    let n = self.word().to_string();
                    return number(&n, Some(sig));
                }
                match word.as_str() {
                    "true" => Ok(Value::Bool(true)),
                    "false" => Ok(Value::Bool(false)),
                    "" => Err(format!("unexpected {:?}", self.peek().map(char::from))),
                    w => number(w, None),
                }
            }
        }
    }

    fn string(&mut self) -> std::result::Result<String, String> {
        let quote = self.s[self.i];
        self.i += 1;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => return Err("a string is not closed".into()),
                Some(b) if b == quote => {
                    self.i += 1;
                    return String::from_utf8(out).map_err(|_| "a string is not UTF-8".into());
                }
                Some(b'\\') => {
                    self.i += 1;
                    let c = self.peek().ok_or("a string ends in '\\'")?;
                    self.i += 1;
                    out.push(match c {
                        b'n' => b'\n',
                        b't' => b'\t',
                        b'r' => b'\r',
                        other => other,
                    });
                }
                Some(b) => {
                    out.push(b);
                    self.i += 1;
                }
            }
        }
    }

    /// `[v, ...]`, of element type `elem` when given (`@as []`).
    fn array(&mut self, elem: Option<String>) -> std::result::Result<Value, String> {
        self.i += 1;
        let mut items = Vec::new();
        loop {
            self.ws();
            if self.peek() == Some(b']') {
                self.i += 1;
                break;
            }
            if !items.is_empty() {
                if self.peek() != Some(b',') {
                    return Err("array items are separated by ','".into());
                }
                self.i += 1;
            }
            let v = self.value()?;
            let v = match &elem {
                Some(sig) => convert(v, sig)?,
                None => v,
            };
            items.push(v);
        }
        let sig = match (elem, items.first()) {
            (Some(sig), _) => sig,
            (None, Some(first)) => signature(first).ok_or("nested arrays are not supported")?,
            (None, None) => return Err("an empty array needs its type (\"@as []\")".into()),
        };
        let items = items
            .into_iter()
            .map(|v| convert(v, &sig))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(Value::Array(sig, items))
    }
}

/// The signature of a scalar value.
fn signature(v: &Value) -> Option<String> {
    Some(
        match v {
            Value::Str(_) => "s",
            Value::Bool(_) => "b",
            Value::U8(_) => "y",
            Value::I16(_) => "n",
            Value::U16(_) => "q",
            Value::I32(_) => "i",
            Value::U32(_) => "u",
            Value::I64(_) => "x",
            Value::U64(_) => "t",
            Value::F64(_) => "d",
            _ => return None,
        }
        .to_string(),
    )
}

/// `v` as an element of signature `sig` (an untyped number takes the
/// array's type, as in GVariant).
fn convert(v: Value, sig: &str) -> std::result::Result<Value, String> {
    if signature(&v).as_deref() == Some(sig) {
        return Ok(v);
    }
    let n = match v {
        Value::I32(n) => n.to_string(),
        Value::F64(f) if sig == "d" => return Ok(Value::F64(f)),
        other => return Err(format!("{other:?} in an array of {sig:?}")),
    };
    number(&n, Some(sig))
}

/// A number, of type `sig` (else int32, or double with a point or
/// exponent).
fn number(text: &str, sig: Option<&str>) -> std::result::Result<Value, String> {
    let bad = || {
        format!(
            "{text:?} is not a number of type {}",
            sig.unwrap_or("int32")
        )
    };
    let float = text.contains(['.', 'e', 'E']) && !text.starts_with("0x");
    if sig == Some("d") || (sig.is_none() && float) {
        return text.parse().map(Value::F64).map_err(|_| bad());
    }
    let (neg, digits) = match text.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let magnitude = match digits.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => digits.parse(),
    }
    .map_err(|_| bad())?;
    let n = i128::from(magnitude) * if neg { -1 } else { 1 };
    let fit = |r: std::result::Result<Value, std::num::TryFromIntError>| r.map_err(|_| bad());
    match sig.unwrap_or("i") {
        "y" => fit(u8::try_from(n).map(Value::U8)),
        "n" => fit(i16::try_from(n).map(Value::I16)),
        "q" => fit(u16::try_from(n).map(Value::U16)),
        "i" => fit(i32::try_from(n).map(Value::I32)),
        "u" => fit(u32::try_from(n).map(Value::U32)),
        "x" => fit(i64::try_from(n).map(Value::I64)),
        "t" => fit(u64::try_from(n).map(Value::U64)),
        other => Err(format!("a number cannot be of type {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gvariant_text_values() {
        assert_eq!(parse("true").unwrap(), Value::Bool(true));
        assert_eq!(parse(" 5 ").unwrap(), Value::I32(5));
        assert_eq!(
            parse("uint64 18446744073709551615").unwrap(),
            Value::U64(u64::MAX)
        );
        assert_eq!(parse("int64 -3").unwrap(), Value::I64(-3));
        assert_eq!(parse("byte 0x1f").unwrap(), Value::U8(31));
        assert_eq!(parse("1.5").unwrap(), Value::F64(1.5));
        assert_eq!(
            parse("'inactive-or-failed'").unwrap(),
            Value::Str("inactive-or-failed".into())
        );
        assert_eq!(parse(r#""it\"s""#).unwrap(), Value::Str("it\"s".into()));
        assert_eq!(
            parse("['a', 'b']").unwrap(),
            Value::Array(
                "s".into(),
                vec![Value::Str("a".into()), Value::Str("b".into())]
            )
        );
        assert_eq!(parse("@as []").unwrap(), Value::Array("s".into(), vec![]));
        assert_eq!(
            parse("[uint32 1, 2]").unwrap(),
            Value::Array("u".into(), vec![Value::U32(1), Value::U32(2)])
        );
        for bad in [
            "",
            "yes",
            "'open",
            "[]",
            "[1 2]",
            "uint32 -1",
            "int32 99999999999",
            "1 2",
            "[true, 1]",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn annotations_become_properties() {
        let a: HashMap<String, String> = [
            ("org.systemd.property.CollectMode", "'inactive-or-failed'"),
            ("org.systemd.property.TimeoutStopSec", "5"),
            ("org.systemd.property.RuntimeMaxSec", "1.5"),
            ("org.systemd.property.CPUQuotaPeriodUSec", "uint64 50000"),
            ("io.other", "x"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let p = properties(&a).unwrap();
        assert_eq!(
            p,
            vec![
                ("CPUQuotaPeriodUSec".to_string(), Value::U64(50_000)),
                (
                    "CollectMode".to_string(),
                    Value::Str("inactive-or-failed".into())
                ),
                ("RuntimeMaxUSec".to_string(), Value::U64(1_500_000)),
                ("TimeoutStopUSec".to_string(), Value::U64(5_000_000)),
            ]
        );
        for (k, v) in [
            ("org.systemd.property.Bad-Name", "1"),
            ("org.systemd.property.XY", "1"),
            ("org.systemd.property.Thing", "nope"),
            ("org.systemd.property.TimeoutStopSec", "'soon'"),
            ("org.systemd.property.TimeoutStopSec", "-1"),
        ] {
            let a = HashMap::from([(k.to_string(), v.to_string())]);
            let e = properties(&a).unwrap_err().to_string();
            assert!(e.contains(k), "{k}={v}: {e}");
        }
    }
}
