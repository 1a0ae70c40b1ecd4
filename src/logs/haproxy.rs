//! HAProxy's default HTTP log (`option httplog`), with or without the syslog prefix:
//!
//! `client:port [date] frontend backend/server TR/Tw/Tc/Tr/Ta status bytes cookie cookie TERM
//! act/fe/be/srv/retries srvq/beq {captures}? {captures}? "request"`
//!
//! HAProxy has no upstream_status: a server answered when the Tr timer (time to its response
//! headers) is not -1, so the upstream status is the status then, `-` otherwise. Timers are in
//! milliseconds.

use super::format::lossy;
use super::record::{Dialect, Record};
use super::LineError;

/// Parse one line. `fast`: stop after a status below 400.
pub fn parse(line: &[u8], fast: bool) -> Result<Record<'_>, LineError> {
    let f = split(line)?;
    let mut rec = Record {
        dialect: Dialect::Haproxy,
        ..Record::new()
    };
    rec.status = match f.status {
        b"-1" => 0,
        s => super::format::status_of(s).ok_or_else(|| {
            LineError::new(
                f.status_at,
                format!("status is {:?}, not a status code", lossy(s)),
            )
        })?,
    };
    if fast && rec.status < 400 {
        return Ok(rec);
    }
    rec.time_scale = 0.001;
    let timers: Vec<&[u8]> = f.timers.split(|&b| b == b'/').collect();
    if timers.len() != 5 {
        return Err(LineError::new(
            f.timers_at,
            format!(
                "expected five timers TR/Tw/Tc/Tr/Ta, got {:?}",
                lossy(f.timers)
            ),
        ));
    }
    fn timer(v: &[u8]) -> Option<&[u8]> {
        (v != b"-1").then_some(v)
    }
    let tc = timer(timers[2]);
    let tr = timer(timers[3]);
    rec.upstream_connect_time = Some(tc.unwrap_or(b"-"));
    rec.upstream_header_time = Some(tr.unwrap_or(b"-"));
    rec.upstream_response_time = Some(tr.unwrap_or(b"-"));
    rec.request_time = Some(timers[4].strip_prefix(b"+").unwrap_or(timers[4]));
    rec.upstream_status = Some(if tr.is_some() { f.status } else { b"-" });
    rec.client = Some(
        f.client
            .rsplit_once_byte(b':')
            .map_or(f.client, |(ip, _)| ip),
    );
    rec.time = Some(f.date);
    rec.upstream_addr = Some(f.server);
    rec.bytes_sent = Some(f.bytes);
    if f.term.len() >= 2 {
        rec.termination = Some([f.term[0], f.term[1]]);
    }
    rec.request = f.request;
    Ok(rec)
}

/// The named fields of a line, for `--explain-line`.
pub fn fields(line: &[u8]) -> Result<Vec<(String, &[u8])>, LineError> {
    let f = split(line)?;
    let mut out: Vec<(String, &[u8])> = vec![
        ("client".into(), f.client),
        ("date".into(), f.date),
        ("frontend".into(), f.frontend),
        ("backend/server".into(), f.server),
        ("TR/Tw/Tc/Tr/Ta (ms)".into(), f.timers),
        ("status".into(), f.status),
        ("bytes".into(), f.bytes),
        ("termination".into(), f.term),
    ];
    if let Some(r) = f.request {
        out.push(("request".into(), r));
    }
    Ok(out)
}

struct Fields<'a> {
    client: &'a [u8],
    date: &'a [u8],
    frontend: &'a [u8],
    server: &'a [u8],
    timers: &'a [u8],
    timers_at: usize,
    status: &'a [u8],
    status_at: usize,
    bytes: &'a [u8],
    term: &'a [u8],
    request: Option<&'a [u8]>,
}

trait RsplitOnce {
    fn rsplit_once_byte(&self, b: u8) -> Option<(&[u8], &[u8])>;
}

impl RsplitOnce for [u8] {
    fn rsplit_once_byte(&self, b: u8) -> Option<(&[u8], &[u8])> {
        let at = memchr::memrchr(b, self)?;
        Some((&self[..at], &self[at + 1..]))
    }
}

fn split(line: &[u8]) -> Result<Fields<'_>, LineError> {
    // The syslog prefix may hold `haproxy[pid]:`; the date's bracket follows a space.
    let open = memchr::memchr_iter(b'[', line)
        .find(|&i| i > 0 && line[i - 1] == b' ')
        .ok_or_else(|| LineError::new(0, "no [accept date] field after client:port".into()))?;
    let close = open
        + memchr::memchr(b']', &line[open..])
            .ok_or_else(|| LineError::new(open, "unterminated [accept date]".into()))?;
    let before = line[..open].strip_suffix(b" ").ok_or_else(|| {
        LineError::new(
            open,
            "expected client:port and a space before [accept date]".into(),
        )
    })?;
    let client = before
        .rsplit(|&b| b == b' ')
        .next()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| LineError::new(0, "no client:port".into()))?;
    let date = &line[open + 1..close];
    let mut pos = close + 1;
    let mut word = |what: &str| -> Result<(&[u8], usize), LineError> {
        if line.get(pos) != Some(&b' ') {
            return Err(LineError::new(
                pos,
                format!("expected a space before {what}"),
            ));
        }
        pos += 1;
        let start = pos;
        let len = memchr::memchr(b' ', &line[pos..]).unwrap_or(line.len() - pos);
        if len == 0 {
            return Err(LineError::new(pos, format!("empty {what}")));
        }
        pos += len;
        Ok((&line[start..start + len], start))
    };
    let (frontend, _) = word("the frontend")?;
    let (server, _) = word("backend/server")?;
    let (timers, timers_at) = word("the timers")?;
    let (status, status_at) = word("the status")?;
    let (bytes, _) = word("the byte count")?;
    word("the request cookie")?;
    word("the response cookie")?;
    let (term, term_at) = word("the termination state")?;
    if term.len() != 4 {
        return Err(LineError::new(
            term_at,
            format!("termination state {:?} is not four characters", lossy(term)),
        ));
    }
    let request = memchr::memchr(b'"', &line[pos..]).map(|q| {
        let body = &line[pos + q + 1..];
        body.strip_suffix(b"\"").unwrap_or(body)
    });
    if !server.contains(&b'/') {
        return Err(LineError::new(
            0,
            format!("{:?} is not backend/server", lossy(server)),
        ));
    }
    Ok(Fields {
        client,
        date,
        frontend,
        server,
        timers,
        timers_at,
        status,
        status_at,
        bytes,
        term,
        request,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_example_line() {
        let line = br#"Feb  6 12:14:14 localhost haproxy[14389]: 10.0.1.2:33317 [06/Feb/2009:12:14:14.655] http-in static/srv1 10/0/30/69/109 200 2750 - - ---- 1/1/1/1/0 0/0 {1wt.eu} {} "GET /index.html HTTP/1.1""#;
        let r = parse(line, false).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.client, Some(&b"10.0.1.2"[..]));
        assert_eq!(r.upstream_status, Some(&b"200"[..]));
        assert_eq!(r.request_time, Some(&b"109"[..]));
        assert_eq!(r.termination, Some(*b"--"));
        assert_eq!(r.method(), Some(&b"GET"[..]));
    }

    #[test]
    fn server_timeout_has_no_upstream_status() {
        let line = br#"10.0.1.2:33317 [06/Feb/2009:12:14:14.655] fe be/s1 0/0/1/-1/30001 504 194 - - sH-- 1/1/1/1/0 0/0 "GET / HTTP/1.1""#;
        let r = parse(line, false).unwrap();
        assert_eq!(r.status, 504);
        assert_eq!(r.upstream_status, Some(&b"-"[..]));
        assert_eq!(r.termination, Some(*b"sH"));
    }
}
