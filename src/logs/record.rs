//! One parsed access-log line: raw field values borrowed from the line, parsed only on demand.

use crate::bytes::find_byte;

/// The fields the classifier reads, whatever the format. Every value is the raw text of the
/// field (without quotes); `None` means the format has no such field, which is not the same as
/// a field that says `-`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Record<'a> {
    pub status: u16,
    pub upstream_status: Option<&'a [u8]>,
    pub request_time: Option<&'a [u8]>,
    pub upstream_response_time: Option<&'a [u8]>,
    pub upstream_connect_time: Option<&'a [u8]>,
    pub upstream_header_time: Option<&'a [u8]>,
    /// The whole request line (`GET /x HTTP/1.1`), when the format logs it as one field.
    pub request: Option<&'a [u8]>,
    pub method: Option<&'a [u8]>,
    pub uri: Option<&'a [u8]>,
    pub client: Option<&'a [u8]>,
    pub time: Option<&'a [u8]>,
    pub bytes_sent: Option<&'a [u8]>,
    pub request_length: Option<&'a [u8]>,
    /// The client connection's TCP round-trip time, in microseconds (nginx and the LB's export).
    pub tcpinfo_rtt: Option<&'a [u8]>,
    pub upstream_addr: Option<&'a [u8]>,
    /// Bytes read from the backend (nginx's `$upstream_bytes_received`): `0` means nothing
    /// came back at all.
    pub upstream_bytes_received: Option<&'a [u8]>,
    /// nginx's connection serial number (`$connection`), the `*N` of its error.log lines.
    pub connection: Option<&'a [u8]>,
    pub scheme: Option<&'a [u8]>,
    pub ssl_protocol: Option<&'a [u8]>,
    /// HAProxy's two-letter termination state (`sH`, `SC`, `--`, …).
    pub termination: Option<[u8; 2]>,
    /// Seconds per unit of the `*_time` fields: 1 for nginx and the LB's export, 0.001 for
    /// HAProxy's millisecond timers.
    pub time_scale: f64,
    /// Whose log it is: what its fields mean depends on it.
    pub dialect: Dialect,
}

/// Which listener wrote a line. nginx writes its own 502 and 504 into `$upstream_status` when
/// no valid answer came from the backend; the load balancer's export writes only what a
/// backend answered; HAProxy has no upstream status at all (it is derived from its timers).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Dialect {
    #[default]
    Nginx,
    Haproxy,
    Export,
}

impl Record<'_> {
    pub fn new() -> Self {
        Record {
            time_scale: 1.0,
            ..Record::default()
        }
    }

    /// The method: its own field, else the first word of the request line.
    pub fn method(&self) -> Option<&[u8]> {
        self.method.or_else(|| {
            let r = self.request?;
            let end = find_byte(b' ', r)?;
            Some(&r[..end])
        })
    }

    /// The URI: its own field, else the second word of the request line (searched a word at a
    /// time: every error line asks for it).
    pub fn uri(&self) -> Option<&[u8]> {
        self.uri.or_else(|| {
            let r = self.request?;
            let rest = &r[find_byte(b' ', r)? + 1..];
            let end = find_byte(b' ', rest).unwrap_or(rest.len());
            Some(&rest[..end]).filter(|w| !w.is_empty())
        })
    }
}

/// An absent value in nginx and the LB's export: `-`, or empty.
pub fn is_dash(v: &[u8]) -> bool {
    v.is_empty() || v == b"-"
}

/// A plain decimal number (`0.001`, `60`, `-1`); `None` for `-` and anything else.
pub fn parse_number(v: &[u8]) -> Option<f64> {
    let v = trim(v);
    if v.is_empty() || v.len() > 32 {
        return None;
    }
    let (neg, digits) = match v[0] {
        b'-' => (true, &v[1..]),
        b'+' => (false, &v[1..]),
        _ => (false, v),
    };
    if digits.is_empty() {
        return None;
    }
    // The integer digits, then the fraction's: two tight loops, no state per byte.
    let mut i = 0;
    let mut int: u64 = 0;
    while let Some(&b) = digits.get(i) {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        int = int.checked_mul(10)?.checked_add(u64::from(d))?;
        i += 1;
    }
    let mut any_digit = i > 0;
    let mut frac: u64 = 0;
    let mut frac_div: u64 = 1;
    if digits.get(i) == Some(&b'.') {
        i += 1;
        while let Some(&b) = digits.get(i) {
            let d = b.wrapping_sub(b'0');
            if d > 9 {
                break;
            }
            any_digit = true;
            // Digits beyond 1e-12 cannot change a comparison against a timeout.
            if frac_div < 1_000_000_000_000 {
                frac = frac * 10 + u64::from(d);
                frac_div *= 10;
            }
            i += 1;
        }
    }
    if i != digits.len() || !any_digit {
        return None;
    }
    let n = int as f64 + frac as f64 / frac_div as f64;
    Some(if neg { -n } else { n })
}

pub fn trim(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

/// The values of a multi-valued upstream field: nginx separates the servers tried for one
/// request with `, ` and the upstream groups of internal redirects with ` : `.
pub fn split_upstream(v: &[u8]) -> impl Iterator<Item = &[u8]> {
    v.split(|&b| b == b',' || b == b':')
        .map(trim)
        .filter(|s| !s.is_empty())
}

/// The last value of [`split_upstream`] (the last try's), found from the end: no walk over the
/// tries before it.
#[inline]
pub fn last_upstream(v: &[u8]) -> Option<&[u8]> {
    let mut end = v.len();
    loop {
        let start = v[..end]
            .iter()
            .rposition(|&b| b == b',' || b == b':')
            .map_or(0, |i| i + 1);
        let t = trim(&v[start..end]);
        if !t.is_empty() {
            return Some(t);
        }
        if start == 0 {
            return None;
        }
        end = start - 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(parse_number(b"0.001"), Some(0.001));
        assert_eq!(parse_number(b"60"), Some(60.0));
        assert_eq!(parse_number(b"-1"), Some(-1.0));
        assert_eq!(parse_number(b"-"), None);
        assert_eq!(parse_number(b""), None);
        assert_eq!(parse_number(b"1.2.3"), None);
        assert_eq!(parse_number(b"99999999999999999999999"), None);
        assert_eq!(parse_number(b" 1. "), Some(1.0));
        assert_eq!(parse_number(b".5"), Some(0.5));
        assert_eq!(parse_number(b"."), None);
        assert_eq!(parse_number(b"+"), None);
        assert_eq!(parse_number(b"1x"), None);
        assert_eq!(parse_number(b"0.1234567890123456"), Some(0.123456789012));
    }

    #[test]
    fn upstream_lists() {
        let v: Vec<&[u8]> = split_upstream(b"502, 504 : 200").collect();
        assert_eq!(v, [&b"502"[..], b"504", b"200"]);
        for v in [
            &b"502, 504 : 200"[..],
            b"-",
            b"",
            b" ",
            b"1,",
            b",",
            b"a, ,",
            b": 7 ,:",
            b"0.001, -",
            b"x:y",
        ] {
            assert_eq!(last_upstream(v), split_upstream(v).last(), "{v:?}");
        }
    }

    /// The word-at-a-time method and URI are the words a split on spaces gives.
    #[test]
    fn method_and_uri_agree_with_a_split() {
        let alphabet = b"  GET/a?x";
        let mut seed = 99u64;
        for _ in 0..20_000 {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let len = (seed >> 33) as usize % 100;
            let req: Vec<u8> = (0..len)
                .map(|i| alphabet[((seed >> (i % 50)) as usize + i * 5) % alphabet.len()])
                .collect();
            let r = Record {
                request: Some(&req),
                ..Record::new()
            };
            let mut words = req.split(|&b| b == b' ');
            let first = words.next();
            let second = words.next();
            assert_eq!(
                r.method(),
                second.and(first),
                "{:?}",
                String::from_utf8_lossy(&req)
            );
            assert_eq!(
                r.uri(),
                second.filter(|w| !w.is_empty()),
                "{:?}",
                String::from_utf8_lossy(&req)
            );
        }
    }

    #[test]
    fn method_and_uri_from_the_request_line() {
        let r = Record {
            request: Some(b"DELETE /a?b HTTP/1.1"),
            ..Record::new()
        };
        assert_eq!(r.method(), Some(&b"DELETE"[..]));
        assert_eq!(r.uri(), Some(&b"/a?b"[..]));
    }
}
