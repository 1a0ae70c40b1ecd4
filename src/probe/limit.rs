//! Limit discovery: the largest request part (header line, header block, URI) a side accepts.
//!
//! A bisection between configurable bounds, in at most ⌈log2(max − min)⌉ + 2 requests per
//! limit per side (one more only when even the minimum is refused, to tell "the limit is below
//! the minimum" from "this side refuses every request").

use std::collections::{BTreeSet, VecDeque};

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::time::{sleep_until, Instant};

use crate::transport::tls::Alpn;
use crate::transport::{ConnEnd, Exchange};

use super::context::{Engine, Planned, Side, Via};
use super::engine::all_at_once;
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
    /// Sizes sent and not yet answered.
    in_flight: BTreeSet<usize>,
    /// Sizes in flight long past the time an accepted size took to answer: presumed refused
    /// (a side slow to say no), so the search goes on below them while their answers come.
    presumed: BTreeSet<usize>,
    /// No more requests than this, whatever the answers (presumptions proven wrong cost some).
    cap: u32,
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
            in_flight: BTreeSet::new(),
            presumed: BTreeSet::new(),
            // Twice the bisection's own bound, for presumptions that turn out wrong.
            cap: 2 * (((max.saturating_sub(min) + 2) as f64).log2().ceil() as u32 + 3),
        }
    }

    /// The next size to send, or `None` when the search is over or waits for an answer. Sizes
    /// in flight are never sent again; one presumed refused bounds the search from above as a
    /// refusal does, until its answer says otherwise.
    pub fn next_size(&mut self) -> Option<usize> {
        if self.unknown || self.requests + self.in_flight.len() as u32 >= self.cap {
            return None;
        }
        let fresh = |size: usize| (!self.in_flight.contains(&size)).then_some(size);
        if let Some(size) = self.fixed.pop_front() {
            return Some(size);
        }
        if self.refused.is_some_and(|(r, _)| r <= self.min) {
            // Refused at the bottom of the range: one request at the floor says why.
            return (self.floor_refused.is_none() && self.floor < self.min)
                .then_some(self.floor)
                .and_then(fresh);
        }
        if !self.bisect {
            return None;
        }
        if !self.min_done {
            return fresh(self.min);
        }
        let presumed = self
            .accepted
            .and_then(|lo| self.presumed.range(lo + 1..).next().copied());
        let hi = match (self.refused.map(|(r, _)| r), presumed) {
            (Some(r), Some(p)) => Some(r.min(p)),
            (r, p) => r.or(p),
        };
        if !self.max_done && hi.is_none() {
            return fresh(self.max);
        }
        let lo = self.accepted?;
        let hi = hi?;
        (hi > lo + 1).then(|| lo + (hi - lo) / 2).and_then(fresh)
    }

    /// A size goes out: it is in flight until [`Search::record`] takes its answer.
    pub fn sent(&mut self, size: usize) {
        self.in_flight.insert(size);
    }

    /// A size in flight is presumed refused (see [`Search::next_size`]).
    pub fn presume_refused(&mut self, size: usize) {
        if self.in_flight.contains(&size) {
            self.presumed.insert(size);
        }
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
        self.in_flight.remove(&size);
        self.presumed.remove(&size);
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

/// The least a size waits before it is presumed refused, however quick the accepted answers.
const MIN_GRACE: Duration = Duration::from_millis(150);

/// How often a search looks whether a size waiting for its ticket has got it.
const LOOK_AGAIN: Duration = Duration::from_millis(20);

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
    // The search goes on below a size that takes far longer to answer than accepted ones did
    // (a side slow to refuse): its answer comes while the next sizes go out, and a refusal
    // costs the wait once instead of once per step. A presumption its answer proves wrong only
    // costs requests (the search's cap bounds them), never a wrong limit: the result rests on
    // answers alone.
    let mut in_flight = FuturesUnordered::new();
    // Sizes in flight and not presumed refused, each with when its request went out (once its
    // ticket came: a wait in the budget's queue is no slowness of the side).
    let mut young: Vec<(usize, Arc<OnceLock<Instant>>)> = Vec::new();
    let mut slowest_accept: Option<Duration> = None;
    let grace = |slowest: Option<Duration>| slowest.map(|s| (s * 3).max(MIN_GRACE));
    loop {
        if young.is_empty() {
            if let Some(size) = search.next_size() {
                search.sent(size);
                let out_at = Arc::new(OnceLock::new());
                young.push((size, out_at.clone()));
                let planned = sized::<S>(side, size);
                in_flight.push(async move {
                    let sent = match engine.ticket().await {
                        Err(_) => None,
                        Ok(()) => {
                            out_at.get_or_init(Instant::now);
                            match over {
                                Over::Raw => engine.exchange_planned(&planned, None).await.ok(),
                                Over::H2(client, origin) => {
                                    super::h2::send_ticketed(
                                        engine,
                                        side,
                                        client,
                                        origin,
                                        &planned.bytes,
                                    )
                                    .await
                                }
                            }
                        }
                    };
                    (size, planned.variant, sent)
                });
                continue;
            }
        }
        // Presumed refused once it has waited thrice the slowest accepted answer.
        let presume_at = grace(slowest_accept).and_then(|grace| {
            young
                .iter()
                .filter_map(|(_, at)| at.get().map(|&at| at + grace))
                .min()
        });
        // A size still waiting for its ticket starts its clock when the ticket comes: look
        // again shortly.
        let ticket_pending =
            slowest_accept.is_some() && young.iter().any(|(_, at)| at.get().is_none());
        let presume_at = match (presume_at, ticket_pending) {
            (at, true) => Some(
                at.unwrap_or_else(|| Instant::now() + LOOK_AGAIN)
                    .min(Instant::now() + LOOK_AGAIN),
            ),
            (at, false) => at,
        };
        let answered = tokio::select! {
            answered = in_flight.next() => answered,
            _ = sleep_until(presume_at.unwrap_or_else(Instant::now)), if presume_at.is_some() => {
                let now = Instant::now();
                let grace = grace(slowest_accept).unwrap_or(MIN_GRACE);
                young.retain(|(size, at)| {
                    let old = at.get().is_some_and(|&at| now >= at + grace);
                    if old {
                        search.presume_refused(*size);
                    }
                    !old
                });
                continue;
            }
        };
        let Some((size, variant, sent)) = answered else {
            break;
        };
        young.retain(|&(s, _)| s != size);
        let Some((sent, ex)) = sent else {
            search.record(size, Outcome::Unknown);
            continue;
        };
        let result = outcome(&ex);
        if result == Outcome::Accepted {
            let took = Duration::from_secs_f64(ex.timings.total_ms.max(0.0) / 1000.0);
            slowest_accept = Some(slowest_accept.map_or(took, |s| s.max(took)));
        }
        out.push(engine.observation(
            S::FAMILY,
            named(variant),
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
        engine.sent(&side.endpoint, b"", false),
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
            let raw = run_search::<S>(engine, side, search(usize::MAX), Over::Raw);
            // A listener may hold h2 requests to other limits (nginx: HPACK-decoded fields
            // against its h2 buffers), so the search runs over h2 too, beside the raw one.
            let h2 = async {
                if !side.h2 {
                    return Vec::new();
                }
                match super::client::client_for(engine, side, Alpn::H2OrHttp1).await {
                    Ok((client, url)) => {
                        let origin = url.strip_suffix(&side.target.path).unwrap_or(&url);
                        run_search::<S>(
                            engine,
                            side,
                            search(S::h2_max()),
                            Over::H2(&client, origin),
                        )
                        .await
                    }
                    Err(why) => {
                        engine.note(format!(
                            "{}: no HTTP/2 client for the {}: {why}",
                            S::FAMILY,
                            side.role()
                        ));
                        Vec::new()
                    }
                }
            };
            let (mut out, over_h2) = futures_util::future::join(raw, h2).await;
            out.extend(over_h2);
            out
        }
    });
    all_at_once(per_side).await
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

    /// A side that answers `slow` sizes only when the search has nothing else to send (it
    /// presumes each refused as soon as it goes out). Returns the result and how many times
    /// the search had to wait for such an answer before it could go on.
    fn simulate_slow(
        mut s: Search,
        limit: usize,
        slow: impl Fn(usize) -> bool,
    ) -> (LimitSearch, u32) {
        let mut pending = VecDeque::new();
        let mut waits = 0;
        loop {
            if let Some(size) = s.next_size() {
                s.sent(size);
                if slow(size) {
                    s.presume_refused(size);
                    pending.push_back(size);
                } else {
                    s.record(
                        size,
                        if size > limit {
                            Outcome::Refused(Some(400))
                        } else {
                            Outcome::Accepted
                        },
                    );
                }
                continue;
            }
            let Some(size) = pending.pop_front() else {
                break;
            };
            // Still something to send after this answer: the search waited on it.
            let outcome = if size > limit {
                Outcome::Refused(Some(400))
            } else {
                Outcome::Accepted
            };
            s.record(size, outcome);
            if s.clone().next_size().is_some() {
                waits += 1;
            }
        }
        (s.result(), waits)
    }

    #[test]
    fn a_side_slow_to_refuse_costs_its_wait_once_not_once_per_step() {
        let (min, max) = (1024, 128 * 1024);
        for limit in [1500, 4000, 8190, 65_535, 100_000] {
            let plain = simulate(Search::bisect(min, max, 64), limit, false);
            let (r, waits) =
                simulate_slow(Search::bisect(min, max, 64), limit, |size| size > limit);
            assert!(r.exact, "limit {limit}: {r:?}");
            assert_eq!(r.largest_accepted, Some(limit));
            // The same requests as a bisection: each refusal was presumed rightly.
            assert_eq!(r.requests, plain.requests, "limit {limit}");
            assert_eq!(waits, 0, "limit {limit}: the search waited on a refusal");
        }
    }

    #[test]
    fn a_slow_acceptance_presumed_refused_never_gives_a_wrong_limit() {
        // Every size above 4000 answers slowly, accepted ones too, and this side presumes each
        // refused at once (the run would stop presuming after the first slow acceptance): the
        // presumptions cost requests up to the cap, and the result still rests on answers.
        let (min, max) = (1024, 128 * 1024);
        let cap = 2 * (((max - min + 2) as f64).log2().ceil() as u32 + 3);
        for limit in [8190, 65_535, 100_000] {
            let (r, _) = simulate_slow(Search::bisect(min, max, 64), limit, |size| size > 4000);
            assert!(r.requests <= cap, "limit {limit}: {} requests", r.requests);
            let accepted = r.largest_accepted.expect("the minimum is accepted");
            assert!(accepted <= limit, "limit {limit}: {r:?}");
            assert!(
                r.smallest_rejected.is_none_or(|s| s > limit),
                "limit {limit}: {r:?}"
            );
            assert_eq!(r.exact, r.smallest_rejected == Some(accepted + 1));
        }
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
