//! The `header-size` family: one oversized header at the profile's limit and just past it, and
//! a bisection for the exact largest accepted header line on each side.

use crate::transport::{ConnEnd, Exchange};

use super::engine::{Engine, Side};
use super::{request, Detail, Family, LimitSearch, Observation};

/// Name of the padding header; its line is `X-Lbprobe-Pad: aaaa…`.
pub const PAD_HEADER: &str = "X-Lbprobe-Pad";

const EVIDENCE: &[&str] = &["400.header-too-large"];

/// The request carrying one header line of exactly `line_bytes` bytes (`Name: value`, no CRLF).
pub fn padded_request(side: &Side, line_bytes: usize) -> Vec<u8> {
    let fixed = PAD_HEADER.len() + 2;
    let value = "a".repeat(line_bytes.saturating_sub(fixed));
    request::build("GET", side, &[(PAD_HEADER, value)], None)
}

/// Did the side refuse the request? `None` when the exchange says nothing either way.
pub fn refused(ex: &Exchange) -> Option<bool> {
    match ex.status() {
        Some(400 | 413 | 414 | 431 | 494) => Some(true),
        Some(_) => Some(false),
        None => match ex.end {
            ConnEnd::Fin | ConnEnd::Reset => Some(true),
            _ => None,
        },
    }
}

pub async fn run(
    engine: &Engine,
    sides: &[Side],
    bisect: bool,
    min: usize,
    max: usize,
) -> Vec<Observation> {
    let per_side = sides
        .iter()
        .map(|side| search(engine, side, bisect, min, max));
    futures_util::future::join_all(per_side)
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// The sizes tried before any bisection: a small control size, then the profile's limit and
/// one past it, then (bisecting) the search bounds.
pub fn first_sizes(limit: usize, bisect: bool, min: usize, max: usize) -> (usize, Vec<usize>) {
    let small = (PAD_HEADER.len() + 3).max(64);
    let mut queue = vec![limit, limit + 1];
    if bisect {
        queue.extend([min.max(small), max]);
    }
    (small, queue)
}

async fn search(
    engine: &Engine,
    side: &Side,
    bisect: bool,
    min: usize,
    max: usize,
) -> Vec<Observation> {
    let mut out = Vec::new();
    let mut largest_ok: Option<usize> = None;
    let mut smallest_bad: Option<(usize, Option<u16>)> = None;
    let mut requests = 0u32;

    // A small header first: if even that is refused the side refuses everything, and a limit
    // search would measure nothing.
    let (small, queue) = first_sizes(engine.profile.max_header_bytes, bisect, min, max);
    requests += 1;
    match probe_size(engine, side, small, &mut out).await {
        Some((false, _)) => {}
        Some((true, status)) => {
            engine.note(format!(
                "header-size: the {} refuses even a {small}-byte header (status {}); limit search skipped",
                side.role(),
                status.map_or("none".to_string(), |s| s.to_string())
            ));
            return out;
        }
        None => return out,
    }

    let mut unknown = false;
    for size in queue {
        if largest_ok.is_some_and(|ok| size <= ok)
            || smallest_bad.is_some_and(|(bad, _)| size >= bad)
        {
            continue;
        }
        requests += 1;
        match probe_size(engine, side, size, &mut out).await {
            Some((false, _)) => largest_ok = Some(largest_ok.map_or(size, |ok| ok.max(size))),
            Some((true, status)) => {
                if smallest_bad.is_none_or(|(bad, _)| size < bad) {
                    smallest_bad = Some((size, status));
                }
            }
            None => {
                unknown = true;
                break;
            }
        }
    }
    if bisect && !unknown {
        let mut lo = largest_ok.unwrap_or(small);
        while let Some((hi, _)) = smallest_bad {
            if hi <= lo + 1 {
                break;
            }
            let mid = lo + (hi - lo) / 2;
            requests += 1;
            match probe_size(engine, side, mid, &mut out).await {
                Some((false, _)) => {
                    lo = mid;
                    largest_ok = Some(mid);
                }
                Some((true, status)) => smallest_bad = Some((mid, status)),
                None => {
                    unknown = true;
                    break;
                }
            }
        }
        if largest_ok.is_none() {
            largest_ok = Some(small);
        }
    }
    let exact = !unknown
        && matches!((largest_ok, smallest_bad), (Some(ok), Some((bad, _))) if bad == ok + 1);
    let search = LimitSearch {
        largest_accepted: largest_ok.or(Some(small)),
        smallest_rejected: smallest_bad.map(|(s, _)| s),
        rejected_status: smallest_bad.and_then(|(_, s)| s),
        requests,
        exact,
    };
    out.push(engine.observation(
        Family::HeaderSize,
        "limit",
        side,
        true,
        EVIDENCE,
        engine.sent(b"", false),
        None,
        Detail::Limit(search),
    ));
    out
}

/// Send one padded request; `None` when the search cannot go on (budget, or an answer that
/// says nothing either way).
async fn probe_size(
    engine: &Engine,
    side: &Side,
    size: usize,
    out: &mut Vec<Observation>,
) -> Option<(bool, Option<u16>)> {
    let bytes = padded_request(side, size);
    let (sent, ex) = engine.send_raw(side, &bytes, None).await.ok()?;
    let verdict = refused(&ex);
    let status = ex.status();
    out.push(engine.observation(
        Family::HeaderSize,
        format!("header-{size}"),
        side,
        true,
        EVIDENCE,
        sent,
        Some(ex),
        Detail::HeaderSize { bytes: size },
    ));
    verdict.map(|r| (r, status))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::{Role, Target};

    #[test]
    fn padded_header_line_has_the_exact_size() {
        let t = Target::parse(Role::Listener, "http://127.0.0.1:8080/").unwrap();
        let side = Side::new(t, false);
        for size in [20, 100, 8190] {
            let req = padded_request(&side, size);
            let text = String::from_utf8(req).unwrap();
            let line = text.lines().find(|l| l.starts_with(PAD_HEADER)).unwrap();
            assert_eq!(line.len(), size);
        }
    }
}
