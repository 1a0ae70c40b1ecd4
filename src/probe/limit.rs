//! Limit discovery: the largest request part (header line, header block, URI) a side accepts.
//!
//! A bisection between configurable bounds, in at most ⌈log2(max − min)⌉ + 2 requests per
//! limit per side (one more only when even the minimum is refused, to tell "the limit is below
//! the minimum" from "this side refuses every request").

use std::collections::VecDeque;

use crate::transport::tls::Alpn;
use crate::transport::{ConnEnd, Exchange};

use super::context::{Engine, Planned, Side, Via};
use super::{request, Detail, Family, LimitSearch, Observation};

/// What one sized request got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Accepted,
    Refused(Option<u16>),
    /// Says nothing either way (timeout, connect failure, budget): the search stops.
    Unknown,
}

/// Did the side refuse the request? Statuses that mean "too large", or a close with no answer.
pub fn outcome(ex: &Exchange) -> Outcome {
    match ex.status() {
        Some(400 | 413 | 414 | 431 | 494) => Outcome::Refused(ex.status()),
        Some(_) => Outcome::Accepted,
        None => match ex.end {
            ConnEnd::Fin | ConnEnd::Reset => Outcome::Refused(None),
            _ => Outcome::Unknown,
        },
    }
}

/// The search as a pure state machine, so its request count is unit-tested.
#[derive(Debug, Clone)]
pub struct Search {
    /// Sizes tried first, in order, whatever the answers (the non-bisecting mode).
    fixed: VecDeque<usize>,
    bisect: bool,
    min: usize,
    max: usize,
    /// The smallest request worth sending, to tell "refuses everything" from "limit < min".
    floor: usize,
    accepted: Option<usize>,
    refused: Option<(usize, Option<u16>)>,
    floor_refused: Option<bool>,
    min_done: bool,
    max_done: bool,
    unknown: bool,
    requests: u32,
}

impl Search {
    /// Bisect between `min` and `max`.
    pub fn bisect(min: usize, max: usize, floor: usize) -> Search {
        Search::new(VecDeque::new(), true, min, max, floor)
    }

    /// Only the given sizes (e.g. the profile's limit and one past it).
    pub fn fixed(sizes: &[usize], floor: usize) -> Search {
        let min = sizes.iter().copied().min().unwrap_or(floor);
        let max = sizes.iter().copied().max().unwrap_or(floor);
        Search::new(sizes.iter().copied().collect(), false, min, max, floor)
    }

    fn new(fixed: VecDeque<usize>, bisect: bool, min: usize, max: usize, floor: usize) -> Search {
        let min = min.max(floor);
        Search {
            fixed,
            bisect,
            min,
            max: max.max(min),
            floor,
            accepted: None,
            refused: None,
            floor_refused: None,
            min_done: false,
            max_done: false,
            unknown: false,
            requests: 0,
        }
    }

    /// The next size to send, or `None` when the search is over.
    pub fn next_size(&mut self) -> Option<usize> {
        if self.unknown {
            return None;
        }
        if let Some(size) = self.fixed.pop_front() {
            return Some(size);
        }
        if self.refused.is_some_and(|(r, _)| r <= self.min) {
            // Refused at the bottom of the range: one request at the floor says why.
            return (self.floor_refused.is_none() && self.floor < self.min).then_some(self.floor);
        }
        if !self.bisect {
            return None;
        }
        if !self.min_done {
            return Some(self.min);
        }
        if !self.max_done && self.refused.is_none() {
            return Some(self.max);
        }
        let lo = self.accepted?;
        let (hi, _) = self.refused?;
        (hi > lo + 1).then(|| lo + (hi - lo) / 2)
    }

    /// The sizes sent before any answer can change the course: the search as it goes when every
    /// size is accepted (a bisection's minimum, then its maximum; the fixed sizes).
    pub fn first_sizes(&self) -> Vec<usize> {
        let mut search = self.clone();
        let mut sizes = Vec::new();
        // Bounded: an all-accepting search ends after its fixed sizes, or after min and max.
        while let Some(size) = search.next_size().filter(|_| sizes.len() < 64) {
            sizes.push(size);
            search.record(size, Outcome::Accepted);
        }
        sizes
    }

    pub fn record(&mut self, size: usize, outcome: Outcome) {
        self.requests += 1;
        if size == self.min {
            self.min_done = true;
        }
        if size == self.max {
            self.max_done = true;
        }
        match outcome {
            Outcome::Unknown => self.unknown = true,
            Outcome::Accepted if size == self.floor && size < self.min => {
                self.floor_refused = Some(false);
                self.accepted = self.accepted.max(Some(size));
            }
            Outcome::Refused(_) if size == self.floor && size < self.min => {
                self.floor_refused = Some(true)
            }
            Outcome::Accepted => {
                if self.accepted.is_none_or(|a| size > a) {
                    self.accepted = Some(size);
                }
            }
            Outcome::Refused(status) => {
                if self.refused.is_none_or(|(r, _)| size < r) {
                    self.refused = Some((size, status));
                }
            }
        }
    }

    pub fn result(&self) -> LimitSearch {
        let exact = !self.unknown
            && matches!((self.accepted, self.refused), (Some(a), Some((r, _))) if r == a + 1);
        LimitSearch {
            largest_accepted: self.accepted,
            smallest_rejected: self.refused.map(|(r, _)| r),
            rejected_status: self.refused.and_then(|(_, s)| s),
            requests: self.requests,
            exact,
            refuses_everything: self.floor_refused == Some(true),
        }
    }
}

/// How a family builds the request of a given size.
pub trait SizedRequest {
    /// Variant prefix of each sized observation (`header`, `block`, `uri`).
    const PREFIX: &'static str;
    const FAMILY: Family;
    const EVIDENCE: &'static [&'static str];
    /// The smallest meaningful size for this side.
    fn floor(side: &Side) -> usize;
    fn request(side: &Side, size: usize) -> Vec<u8>;
    /// The largest size the client library can send over h2 (none for headers).
    fn h2_max() -> usize {
        usize::MAX
    }
}

/// The request of `size` bytes as it is sent to a side.
fn sized<S: SizedRequest>(side: &Side, size: usize) -> Planned {
    side.planned(
        S::FAMILY,
        format!("{}-{size}", S::PREFIX),
        Via::Raw,
        S::request(side, size),
    )
}

/// The search a family runs on a side: a bisection between `min` and `max`, or only the `fixed`
/// sizes; `cap` is the largest size the transport carries (the client library's, over h2).
pub fn search_for<S: SizedRequest>(
    side: &Side,
    bisect: bool,
    min: usize,
    max: usize,
    fixed: &[usize],
    cap: usize,
) -> Search {
    if bisect {
        Search::bisect(min.min(cap), max.min(cap), S::floor(side))
    } else {
        let sizes: Vec<usize> = fixed.iter().copied().filter(|&n| n <= cap).collect();
        Search::fixed(&sizes, S::floor(side))
    }
}

/// The first requests of a search on a side over HTTP/1.1; the rest depend on the answers.
pub fn plan<S: SizedRequest>(side: &Side, search: &Search) -> Vec<Planned> {
    search
        .first_sizes()
        .into_iter()
        .map(|size| sized::<S>(side, size))
        .collect()
}

/// How a search's requests travel.
#[derive(Clone, Copy)]
pub enum Over<'a> {
    /// The exact HTTP/1.1 bytes over the side's wire.
    Raw,
    /// The same request as h2 through a client-library `client` whose origin (scheme and
    /// authority, no path) is the `&str`.
    H2(&'a reqwest::Client, &'a str),
}

/// Run a search on one side: every sized request becomes an observation, plus one `limit`
/// observation with the result (variants suffixed ` h2` over h2).
pub async fn run_search<S: SizedRequest>(
    engine: &Engine,
    side: &Side,
    mut search: Search,
    over: Over<'_>,
) -> Vec<Observation> {
    let named = |v: String| match over {
        Over::Raw => v,
        Over::H2(..) => super::h2::variant(&v),
    };
    let mut out = Vec::new();
    while let Some(size) = search.next_size() {
        let planned = sized::<S>(side, size);
        let sent = match over {
            Over::Raw => engine.send_planned(&planned, None).await.ok(),
            Over::H2(client, origin) => {
                super::h2::send(engine, side, client, origin, &planned.bytes).await
            }
        };
        let Some((sent, ex)) = sent else {
            search.record(size, Outcome::Unknown);
            break;
        };
        let result = outcome(&ex);
        out.push(engine.observation(
            S::FAMILY,
            named(planned.variant),
            side,
            true,
            S::EVIDENCE,
            sent,
            Some(ex),
            Detail::Size { bytes: size },
        ));
        search.record(size, result);
    }
    let result = search.result();
    if result.refuses_everything {
        engine.note(format!(
            "{}: the {} refuses even a {}-byte request{}, so no limit could be measured",
            S::FAMILY,
            side.role(),
            S::floor(side),
            if matches!(over, Over::H2(..)) {
                " over h2"
            } else {
                ""
            }
        ));
    }
    out.push(engine.observation(
        S::FAMILY,
        named("limit".into()),
        side,
        true,
        S::EVIDENCE,
        engine.sent(b"", false),
        None,
        Detail::Limit(result),
    ));
    out
}

/// Run a family's search on every side at once (sides do not disturb each other).
pub async fn run_all<S: SizedRequest>(
    engine: &Engine,
    sides: &[Side],
    bisect: bool,
    min: usize,
    max: usize,
    fixed: &[usize],
) -> Vec<Observation> {
    let per_side = sides.iter().map(|side| {
        let search = |cap: usize| search_for::<S>(side, bisect, min, max, fixed, cap);
        async move {
            let mut out = run_search::<S>(engine, side, search(usize::MAX), Over::Raw).await;
            if side.h2 {
                // A listener may hold h2 requests to other limits (nginx: HPACK-decoded
                // fields against its h2 buffers), so the search runs again over h2.
                match super::client::client_for(engine, side, Alpn::H2OrHttp1).await {
                    Ok((client, url)) => {
                        let origin = url.strip_suffix(&side.target.path).unwrap_or(&url);
                        out.extend(
                            run_search::<S>(
                                engine,
                                side,
                                search(S::h2_max()),
                                Over::H2(&client, origin),
                            )
                            .await,
                        );
                    }
                    Err(why) => engine.note(format!(
                        "{}: no HTTP/2 client for the {}: {why}",
                        S::FAMILY,
                        side.role()
                    )),
                }
            }
            out
        }
    });
    futures_util::future::join_all(per_side)
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// Padding header names; each line is `X-Lbprobe-Pad-N: aaaa…`.
pub const PAD_HEADER: &str = "X-Lbprobe-Pad";

/// One header line of exactly `size` bytes (`Name: value`, without CRLF).
pub struct HeaderLine;

impl SizedRequest for HeaderLine {
    const PREFIX: &'static str = "header";
    const FAMILY: Family = Family::HeaderSize;
    const EVIDENCE: &'static [&'static str] = &["400.header-too-large", "400.passthrough"];

    fn floor(_: &Side) -> usize {
        64
    }

    fn request(side: &Side, size: usize) -> Vec<u8> {
        let value = "a".repeat(size.saturating_sub(PAD_HEADER.len() + 2).max(1));
        request::build("GET", side, &[(PAD_HEADER, value)], None)
    }
}

/// A header block (every header line with its CRLF, without the final empty line) of exactly
/// `size` bytes, made of padding lines short enough to pass any single-line limit.
pub struct HeaderBlock;

/// Longest padding line in a header block, so a block search never trips a line limit first.
const BLOCK_LINE_MAX: usize = 1000;

impl HeaderBlock {
    fn base_block(side: &Side) -> usize {
        let base = request::build("GET", side, &[], None);
        let line_end = base.iter().position(|&b| b == b'\n').map_or(0, |p| p + 1);
        // The base request ends with the empty line's CRLF, which is not part of the block.
        base.len() - line_end - 2
    }
}

impl SizedRequest for HeaderBlock {
    const PREFIX: &'static str = "block";
    const FAMILY: Family = Family::HeaderLimit;
    const EVIDENCE: &'static [&'static str] = &["400.header-too-large", "400.passthrough"];

    fn floor(side: &Side) -> usize {
        HeaderBlock::base_block(side) + 64
    }

    fn request(side: &Side, size: usize) -> Vec<u8> {
        let mut need = size.saturating_sub(HeaderBlock::base_block(side));
        let mut pads: Vec<(String, String)> = Vec::new();
        let mut n = 0;
        while need > 0 {
            n += 1;
            let name = format!("{PAD_HEADER}-{n}");
            // name + ": " + value + CRLF; the minimum value is one byte.
            let overhead = name.len() + 4;
            let mut line = need.min(BLOCK_LINE_MAX);
            // Leave no remainder too small to make a line of its own.
            if need - line > 0 && need - line < overhead + 1 {
                line = need - (overhead + 1);
            }
            let value_len = line.saturating_sub(overhead).max(1);
            need = need.saturating_sub(overhead + value_len);
            pads.push((name, "a".repeat(value_len)));
        }
        let headers: Vec<(&str, String)> =
            pads.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        request::build("GET", side, &headers, None)
    }
}

/// A request target of exactly `size` bytes: the side's path plus a padding query parameter.
pub struct Uri;

impl Uri {
    fn prefix(side: &Side) -> String {
        let path = &side.target.path;
        let sep = if path.contains('?') { '&' } else { '?' };
        format!("{path}{sep}lbprobe_pad=")
    }
}

impl SizedRequest for Uri {
    const PREFIX: &'static str = "uri";
    const FAMILY: Family = Family::UriLimit;
    const EVIDENCE: &'static [&'static str] = &[
        "414.uri-too-long",
        "414.backend-uri-limit",
        "414.passthrough",
    ];

    fn floor(side: &Side) -> usize {
        Uri::prefix(side).len() + 1
    }

    /// The client library's URIs hold at most 65 534 bytes, authority included.
    fn h2_max() -> usize {
        65_000
    }

    fn request(side: &Side, size: usize) -> Vec<u8> {
        let prefix = Uri::prefix(side);
        let target = format!(
            "{prefix}{}",
            "a".repeat(size.saturating_sub(prefix.len()).max(1))
        );
        request::build_for(
            "GET",
            &target,
            &side.target.host_header(),
            &side.extra_lines(),
            &[],
            None,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::{Role, Target};

    fn simulate(mut s: Search, limit: usize, everything_refused: bool) -> LimitSearch {
        while let Some(size) = s.next_size() {
            let refused = everything_refused || size > limit;
            s.record(
                size,
                if refused {
                    Outcome::Refused(Some(400))
                } else {
                    Outcome::Accepted
                },
            );
        }
        s.result()
    }

    #[test]
    fn bisection_is_exact_within_log2_plus_two_requests() {
        let (min, max) = (1024, 128 * 1024);
        let bound = ((max - min) as f64).log2().ceil() as u32 + 2;
        for limit in [1024, 1025, 4094, 8190, 8191, 32768, 100_000, max - 1] {
            let r = simulate(Search::bisect(min, max, 64), limit, false);
            assert_eq!(r.largest_accepted, Some(limit), "limit {limit}");
            assert_eq!(r.smallest_rejected, Some(limit + 1));
            assert!(r.exact);
            assert!(
                r.requests <= bound,
                "limit {limit}: {} requests > {bound}",
                r.requests
            );
        }
    }

    #[test]
    fn limits_outside_the_range_take_one_or_two_requests() {
        let above = simulate(Search::bisect(1024, 4096, 64), 10_000, false);
        assert_eq!(
            (
                above.largest_accepted,
                above.smallest_rejected,
                above.requests
            ),
            (Some(4096), None, 2)
        );
        let below = simulate(Search::bisect(1024, 4096, 64), 500, false);
        assert_eq!(
            (below.largest_accepted, below.smallest_rejected),
            (Some(64), Some(1024))
        );
        assert_eq!(below.requests, 2);
        assert!(!below.refuses_everything);
        let all = simulate(Search::bisect(1024, 4096, 64), 0, true);
        assert!(all.refuses_everything);
        assert_eq!(all.largest_accepted, None);
    }

    #[test]
    fn fixed_mode_sends_only_the_given_sizes() {
        let r = simulate(Search::fixed(&[8190, 8191], 64), 8190, false);
        assert_eq!(
            (r.requests, r.largest_accepted, r.smallest_rejected, r.exact),
            (2, Some(8190), Some(8191), true)
        );
    }

    fn side() -> Side {
        Side::new(
            Target::parse(Role::Listener, "http://127.0.0.1:8080/p?q=1").unwrap(),
            false,
        )
    }

    #[test]
    fn sized_requests_have_the_exact_size() {
        let side = side();
        for size in [100, 1024, 8190, 70_000] {
            let text = String::from_utf8(HeaderLine::request(&side, size)).unwrap();
            let line = text.lines().find(|l| l.starts_with(PAD_HEADER)).unwrap();
            assert_eq!(line.len(), size);

            let text = String::from_utf8(Uri::request(&side, size)).unwrap();
            let target = text.split(' ').nth(1).unwrap();
            assert_eq!(target.len(), size);
            assert!(target.starts_with("/p?q=1&lbprobe_pad="));
        }
        for size in [HeaderBlock::floor(&side), 1024, 1999, 2001, 8192, 65_536] {
            let text = String::from_utf8(HeaderBlock::request(&side, size)).unwrap();
            let start = text.find("\r\n").unwrap() + 2;
            let end = text.find("\r\n\r\n").unwrap() + 2;
            assert_eq!(end - start, size, "block of {size}");
            assert!(text.lines().all(|l| l.len() <= BLOCK_LINE_MAX));
        }
    }
}
