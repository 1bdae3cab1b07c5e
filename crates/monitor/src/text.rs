//! Text without an allocator: a fixed-capacity byte buffer, decimal
//! numbers, Go's JSON string escaping (as Docker's json-file log writes
//! it) and RFC 3339 times with nanoseconds.

/// A byte buffer of fixed capacity; what does not fit is dropped and
/// remembered in [`Buf::overflowed`].
pub struct Buf<const N: usize> {
    data: [u8; N],
    len: usize,
    overflow: bool,
}

impl<const N: usize> Default for Buf<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Buf<N> {
    /// An empty buffer.
    pub const fn new() -> Self {
        Buf {
            data: [0; N],
            len: 0,
            overflow: false,
        }
    }

    /// The bytes written.
    pub fn as_bytes(&self) -> &[u8] {
        &self.data[..self.len]
    }

    /// How many bytes are written.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether something did not fit.
    pub fn overflowed(&self) -> bool {
        self.overflow
    }

    /// Empties the buffer.
    pub fn clear(&mut self) {
        self.len = 0;
        self.overflow = false;
    }

    /// Appends bytes.
    pub fn push(&mut self, s: &[u8]) -> &mut Self {
        let n = s.len().min(N - self.len);
        self.data[self.len..self.len + n].copy_from_slice(&s[..n]);
        self.len += n;
        self.overflow |= n < s.len();
        self
    }

    /// Appends one byte.
    pub fn byte(&mut self, b: u8) -> &mut Self {
        self.push(&[b])
    }

    /// Appends a number in decimal.
    pub fn num(&mut self, v: i64) -> &mut Self {
        if v < 0 {
            self.byte(b'-');
        }
        let mut digits = [0u8; 20];
        let mut n = v.unsigned_abs();
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.push(&digits[i..])
    }

    /// Appends a number with at least `width` digits (leading zeros).
    pub fn padded(&mut self, v: u64, width: usize) -> &mut Self {
        let mut digits = [b'0'; 20];
        let mut n = v;
        let mut i = digits.len();
        while n > 0 {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
        }
        let start = i.min(digits.len() - width.min(20));
        self.push(&digits[start..])
    }
}

/// Parses a non-negative decimal number.
pub fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 19 {
        return None;
    }
    let mut v = 0u64;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (b - b'0') as u64;
    }
    Some(v)
}

/// Parses a descriptor number or -1.
pub fn parse_fd(s: &[u8]) -> Option<i32> {
    if s == b"-1" {
        return Some(-1);
    }
    parse_u64(s)
        .filter(|&v| v <= i32::MAX as u64)
        .map(|v| v as i32)
}

/// Appends `data` as the inside of a JSON string the way Docker's json-file
/// driver writes it: `"` and `\` escaped, `\n` `\r` `\t`, other control
/// characters and `<` `>` `&` as `\u00XX`, U+2028/U+2029 escaped, and bytes
/// that are not UTF-8 as U+FFFD.
pub fn json_escape<const N: usize>(out: &mut Buf<N>, data: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut i = 0;
    while i < data.len() {
        let b = data[i];
        if b < 0x80 {
            match b {
                b'"' => out.push(b"\\\""),
                b'\\' => out.push(b"\\\\"),
                b'\n' => out.push(b"\\n"),
                b'\r' => out.push(b"\\r"),
                b'\t' => out.push(b"\\t"),
                0..=0x1f | b'<' | b'>' | b'&' => out
                    .push(b"\\u00")
                    .byte(HEX[(b >> 4) as usize])
                    .byte(HEX[(b & 15) as usize]),
                _ => out.byte(b),
            };
            i += 1;
            continue;
        }
        let n = utf8_len(&data[i..]);
        if n == 0 {
            out.push(b"\\ufffd");
            i += 1;
            continue;
        }
        let seq = &data[i..i + n];
        if seq == "\u{2028}".as_bytes() {
            out.push(b"\\u2028");
        } else if seq == "\u{2029}".as_bytes() {
            out.push(b"\\u2029");
        } else {
            out.push(seq);
        }
        i += n;
    }
}

/// The length of the valid UTF-8 sequence starting `s`, 0 if invalid.
fn utf8_len(s: &[u8]) -> usize {
    let n = match s[0] {
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => return 0,
    };
    match s.get(..n).map(core::str::from_utf8) {
        Some(Ok(_)) => n,
        _ => 0,
    }
}

/// The civil date (year, month, day) of a day count since 1970-01-01
/// (Howard Hinnant's algorithm).
pub fn civil_from_days(z: i64) -> (i64, u64, u64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u64;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u64;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Appends a UTC time as Go's `time.RFC3339Nano` writes it
/// (`2024-01-02T03:04:05.12345Z`: trailing zeros of the fraction dropped).
pub fn rfc3339_nano<const N: usize>(out: &mut Buf<N>, secs: i64, nanos: u32) {
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400) as u64;
    out.padded(y.max(0) as u64, 4)
        .byte(b'-')
        .padded(mo, 2)
        .byte(b'-')
        .padded(d, 2)
        .byte(b'T')
        .padded(s / 3600, 2)
        .byte(b':')
        .padded(s / 60 % 60, 2)
        .byte(b':')
        .padded(s % 60, 2);
    if nanos > 0 {
        let mut frac = Buf::<9>::new();
        frac.padded(nanos as u64, 9);
        let digits = frac.as_bytes();
        let keep = digits.iter().rposition(|&c| c != b'0').map_or(0, |p| p + 1);
        out.byte(b'.').push(&digits[..keep]);
    }
    out.byte(b'Z');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esc(s: &[u8]) -> std::string::String {
        let mut b = Buf::<256>::new();
        json_escape(&mut b, s);
        std::string::String::from_utf8(b.as_bytes().to_vec()).unwrap()
    }

    #[test]
    fn escapes_like_docker_json_file() {
        assert_eq!(esc(b"hi \"there\"\n"), r#"hi \"there\"\n"#);
        assert_eq!(esc(b"a\\b\tc\r"), r#"a\\b\tc\r"#);
        assert_eq!(esc(b"\x01<&>"), r#"\u0001\u003c\u0026\u003e"#);
        assert_eq!(esc("é€😀".as_bytes()), "é€😀");
        assert_eq!(esc(b"\xff\xc3"), r#"\ufffd\ufffd"#);
        assert_eq!(esc("\u{2028}".as_bytes()), r#"\u2028"#);
        // The output is valid JSON that decodes to the input.
        let s = "x\u{1}\"\\\n<é";
        let v: std::string::String = serde_json_like(&esc(s.as_bytes()));
        assert_eq!(v, s);
    }

    /// Decodes the escapes json_escape writes (a test helper without serde).
    fn serde_json_like(s: &str) -> std::string::String {
        let mut out = std::string::String::new();
        let mut it = s.chars();
        while let Some(c) = it.next() {
            if c != '\\' {
                out.push(c);
                continue;
            }
            match it.next().unwrap() {
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                't' => out.push('\t'),
                'u' => {
                    let hex: std::string::String = (0..4).map(|_| it.next().unwrap()).collect();
                    out.push(char::from_u32(u32::from_str_radix(&hex, 16).unwrap()).unwrap());
                }
                other => out.push(other),
            }
        }
        out
    }

    #[test]
    fn numbers_and_times() {
        let mut b = Buf::<64>::new();
        b.num(-42).byte(b' ').num(0).byte(b' ').padded(7, 3);
        assert_eq!(b.as_bytes(), b"-42 0 007");
        assert_eq!(parse_u64(b"1234"), Some(1234));
        assert_eq!(parse_u64(b"12a"), None);
        assert_eq!(parse_fd(b"-1"), Some(-1));
        let mut t = Buf::<64>::new();
        rfc3339_nano(&mut t, 1_700_000_000, 123_450_000);
        assert_eq!(t.as_bytes(), b"2023-11-14T22:13:20.12345Z");
        t.clear();
        rfc3339_nano(&mut t, 0, 0);
        assert_eq!(t.as_bytes(), b"1970-01-01T00:00:00Z");
        t.clear();
        rfc3339_nano(&mut t, 951_782_400, 1);
        assert_eq!(t.as_bytes(), b"2000-02-29T00:00:00.000000001Z");
    }

    #[test]
    fn overflow_is_remembered() {
        let mut b = Buf::<4>::new();
        b.push(b"abcdef");
        assert_eq!(b.as_bytes(), b"abcd");
        assert!(b.overflowed());
    }
}
