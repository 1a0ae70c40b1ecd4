//! The listener's gateway timeouts, measured from its own answers, and the rules that rest on
//! them: `504.backend-slow`, `502.backend-slow` and `504.connect-timeout`.
//!
//! A listener that gives up on a backend answers 504 (nginx, HAProxy) or 502 (others) after its
//! timeout, each time at the same moment. Several such answers at one time T, while the backend
//! asked directly takes longer than T, are the measurement of that timeout. A profile's number is
//! compared with T and reported beside it, never used in its place: a listener configured tighter
//! than its documentation is often the fault itself.

use std::time::Duration;

use crate::probe::latency::{outcome, Outcome};
use crate::probe::Observation;
use crate::profile::{Basis, Cited};
use crate::transport::Exchange;

use super::{backend_attempts, fmt_ms, ms, spread, statuses, Probed, FAR_BELOW};
use crate::classify::{Context, Draft, Verdict};

/// Two answer times are the same moment within this share of it...
const JITTER_SHARE: f64 = 0.15;
/// ...or within this many milliseconds, whichever is more: timer slack, scheduling on a busy
/// host and our own measurement.
const JITTER_MIN_MS: f64 = 250.0;
/// A listener's own time below this is "at once": no gateway timeout is set this short, and a
/// listener that answers this fast did not wait for a backend.
pub(crate) const AT_ONCE_MS: f64 = 100.0;

/// A measured timeout to a tenth of a second from one second up (`1.0 s`, `2.5 s`): timer
/// slack of a few milliseconds does not change how it reads.
pub(crate) fn fmt_timeout(t_ms: f64) -> String {
    if t_ms >= 950.0 {
        format!("{:.1} s", t_ms / 1000.0)
    } else {
        fmt_ms(t_ms)
    }
}

/// How far apart two times may be and still be the same moment `t_ms`.
pub(crate) fn tolerance(t_ms: f64) -> f64 {
    (t_ms * JITTER_SHARE).max(JITTER_MIN_MS)
}

/// How long the listener itself took to answer: from our request's last byte to the answer's
/// first byte, less one round trip of our own connection (the path, not the listener).
pub(crate) fn own_ms(ex: &Exchange) -> f64 {
    let first = ex.timings.first_byte_ms.unwrap_or(ex.timings.total_ms);
    let rtt = ex.tcp_rtt_us.map_or(0.0, |us| f64::from(us) / 1000.0);
    (first - rtt).max(0.0)
}

/// The listener's answers with one gateway code, with the listener's own time for each.
#[derive(Debug)]
pub(crate) struct Gateway<'a> {
    pub code: u16,
    /// Ascending.
    times: Vec<f64>,
    pub refs: Vec<&'a Observation>,
    /// How many requests through the listener these answers are among.
    of: usize,
}

impl<'a> Gateway<'a> {
    /// The answers with `code` among `requests`; `None` when there is none.
    pub fn of(code: u16, requests: &[(&'a Observation, &'a Exchange)]) -> Option<Gateway<'a>> {
        let hits: Vec<(&Observation, f64)> = requests
            .iter()
            .filter(|(_, ex)| ex.status() == Some(code))
            .map(|(o, ex)| (*o, own_ms(ex)))
            .collect();
        if hits.is_empty() {
            return None;
        }
        let mut times: Vec<f64> = hits.iter().map(|(_, t)| *t).collect();
        times.sort_by(f64::total_cmp);
        Some(Gateway {
            code,
            times,
            refs: hits.iter().take(3).map(|(o, _)| *o).collect(),
            of: requests.len(),
        })
    }

    pub fn count(&self) -> usize {
        self.times.len()
    }

    pub fn min(&self) -> f64 {
        self.times[0]
    }

    pub fn max(&self) -> f64 {
        self.times[self.times.len() - 1]
    }

    pub fn median(&self) -> f64 {
        self.times[(self.times.len() - 1) / 2]
    }

    /// Every answer came at once: the listener waited for nothing.
    pub fn at_once(&self) -> bool {
        self.max() < AT_ONCE_MS
    }

    /// The listener's timeout, measured: at least two answers at one moment (within jitter),
    /// later than "at once". One answer alone cannot tell a timeout from a slow failure.
    pub fn timeout(&self) -> Option<f64> {
        let t = self.median();
        (self.count() >= 2 && t >= AT_ONCE_MS && self.max() - self.min() <= tolerance(t))
            .then_some(t)
    }

    /// `3 of 3 requests through the listener got 504, after 1 s to 1.01 s`.
    pub fn describe(&self) -> String {
        let (lo, hi) = (fmt_ms(self.min()), fmt_ms(self.max()));
        let when = match (self.count(), lo == hi) {
            (1, _) => format!("after {lo}"),
            (_, true) => format!("each after {lo}"),
            _ => format!("after {lo} to {hi}"),
        };
        format!(
            "{} of {} through the listener got {}, {when}",
            self.count(),
            crate::plural::count(self.of, "request"),
            self.code
        )
    }
}

/// Where the backend's own times (time to first byte, asked directly) fall against a listener
/// timeout `t`.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Against {
    /// Longer than `t`, beyond jitter (answers, or waits that ended unanswered).
    pub beyond: usize,
    /// Within jitter of `t`: too close to say which came first.
    pub near: usize,
    /// Shorter than `t`, beyond jitter.
    pub inside: usize,
    /// Unanswered, but our wait ended before `t`: unknown.
    pub unknown: usize,
}

pub(crate) fn against(t: f64, firsts: &[(f64, bool)]) -> Against {
    let tol = tolerance(t);
    let mut a = Against::default();
    for &(v, censored) in firsts {
        if v > t + tol {
            a.beyond += 1;
        } else if censored {
            a.unknown += 1;
        } else if v < t - tol {
            a.inside += 1;
        } else {
            a.near += 1;
        }
    }
    a
}

/// The measured timeout beside what the profile says: "this listener gives up after 2 s; the
/// nginx profile documents 60 s" (or "…, as you declared").
fn compare(d: Draft, t: f64, cited: Option<&Cited<Duration>>, what: &str) -> Draft {
    let Some(c) = cited else {
        return d;
    };
    let documented = ms(c.value);
    let text = if (t - documented).abs() <= tolerance(documented) {
        format!(
            "this listener gives up after {} (measured), matching the {} {} for its {what}",
            fmt_timeout(t),
            fmt_ms(documented),
            c.who
        )
    } else {
        format!(
            "this listener gives up after {} (measured); {}",
            fmt_timeout(t),
            c.says(&format!("{} for its {what}", fmt_ms(documented)))
        )
    };
    d.cites(c, text)
}

/// `the 60 s read timeout the nginx profile documents`, `the 1 s read timeout you declared`.
fn the_cited(c: &Cited<Duration>, what: &str) -> String {
    format!("the {} {what} {}", fmt_ms(ms(c.value)), c.who)
}

/// The backend's direct answers in one line, when it was timed.
fn backend_numbers<'a>(b: &Probed<'a>) -> Option<(&'a Observation, String)> {
    let (o, s) = b.stats?;
    let fb = s.times.first_byte_ms.as_ref()?;
    Some((
        o,
        format!(
            "straight to the backend: {}; time to first byte {}",
            statuses(s),
            spread(fb)
        ),
    ))
}

/// How many listener requests got no answer at all before our wait ended, and that wait.
fn unanswered(l: &Probed<'_>) -> Option<(usize, f64)> {
    let n = l
        .requests
        .iter()
        .filter(|(_, ex)| outcome(ex) == Outcome::TimedOut)
        .count();
    let wait = l.stats.map(|(_, s)| s.wait_ms)?;
    (n > 0).then_some((n, wait))
}

/// What to raise when our own wait ended before the listener answered: the latency probe waits
/// past the longest timeout in force.
const RAISE_THE_WAIT: &str = "declare a response-timeout above what the listener really waits (`scan --response-timeout`, or the scenario's `profile:` section), so the probe waits past it";

pub(crate) fn backend_slow(
    code: u16,
    b: &Probed<'_>,
    l: &Probed<'_>,
    ctx: &Context<'_>,
) -> Option<Draft> {
    let (id, other, other_id) = match code {
        504 => ("504.backend-slow", 502, "502.backend-slow"),
        _ => ("502.backend-slow", 504, "504.backend-slow"),
    };
    let cited = ctx.profile.response_timeout();
    let firsts = b.first_bytes();
    let backend = backend_numbers(b).filter(|_| !firsts.is_empty());
    let Some((lo, ls)) = l.stats else {
        return backend_only(id, b, cited.as_ref());
    };
    let lrefs = l.latency_refs();
    let with_backend = |d: Draft| match &backend {
        Some((bo, text)) => d.with(text.clone(), &[*bo]),
        None => d,
    };
    if let Some(g) = Gateway::of(code, &l.requests) {
        let seen = g.describe();
        let d = if g.at_once() {
            Draft::new(
                id,
                Verdict::RuledOut,
                format!(
                    "the listener answers {code} at once (within {}), without waiting for a backend: not a timeout",
                    fmt_ms(g.max())
                ),
            )
        } else if let Some(t) = g.timeout() {
            let d = slower_than_timeout(id, code, t, b, &firsts);
            compare(d, t, cited.as_ref(), "read timeout")
        } else if g.count() == 1 {
            Draft::new(
                id,
                Verdict::Inconclusive,
                format!(
                    "one request through the listener got {code}, after {}: one answer cannot show a timeout; run more latency requests",
                    fmt_ms(g.median())
                ),
            )
        } else {
            Draft::new(
                id,
                Verdict::Inconclusive,
                format!(
                    "the listener's {code}s come after anything from {} to {}: not one timeout, so its timeout cannot be read from them",
                    fmt_ms(g.min()),
                    fmt_ms(g.max())
                ),
            )
        };
        return Some(with_backend(d.with(seen, &g.refs)));
    }
    // The listener never answered `code`.
    if let Some((g, t)) = Gateway::of(other, &l.requests).and_then(|g| g.timeout().map(|t| (g, t)))
    {
        let d = Draft::new(
            id,
            Verdict::RuledOut,
            format!(
                "this listener gives up with {other}, not {code}, after {} (see {other_id})",
                fmt_timeout(t)
            ),
        )
        .with(g.describe(), &g.refs);
        return Some(with_backend(d));
    }
    if let Some((n, wait)) = unanswered(l) {
        let d = Draft::new(
            id,
            Verdict::Inconclusive,
            format!(
                "{n} of {} through the listener got no answer within our {} wait: whatever the listener waits for, it waits longer than that; {RAISE_THE_WAIT}",
                crate::plural::count(l.requests.len(), "request"),
                fmt_ms(wait)
            ),
        )
        .with(format!("through the listener: {}", statuses(ls)), &[lo]);
        return Some(with_backend(super::logged::still_waiting(d, l)));
    }
    let passed: Vec<f64> = l
        .requests
        .iter()
        .filter(|(_, ex)| ex.status().is_some_and(|s| s < 500))
        .map(|(_, ex)| own_ms(ex))
        .collect();
    let d = if !passed.is_empty() && passed.len() == l.requests.len() {
        let slowest = passed.iter().copied().fold(0.0, f64::max);
        let mut d = Draft::new(
            id,
            Verdict::RuledOut,
            format!(
                "the listener passed every answer on, the slowest after {}: it never gave up with {code}",
                fmt_ms(slowest)
            ),
        )
        .with(format!("through the listener: {}", statuses(ls)), &lrefs);
        if let Some(c) = cited.as_ref().filter(|c| slowest > ms(c.value)) {
            d = d.cites(
                c,
                format!(
                    "it waited {} for an answer, longer than {}: its read timeout is longer than that",
                    fmt_ms(slowest),
                    the_cited(c, "read timeout")
                ),
            );
        }
        d
    } else if l.requests.iter().all(|(_, ex)| ex.status().is_none()) {
        // No HTTP answer at all (a TLS handshake that failed, a silent port): nothing was seen
        // that could have been a 502 or 504.
        Draft::new(
            id,
            Verdict::Inconclusive,
            format!(
                "the listener gave no HTTP answer to any request ({}): whether it gives up with {code} cannot be seen",
                statuses(ls)
            ),
        )
        .with(format!("through the listener: {}", statuses(ls)), &[lo])
    } else {
        Draft::new(
            id,
            Verdict::RuledOut,
            format!("the listener never answers {code} ({})", statuses(ls)),
        )
        .with(format!("through the listener: {}", statuses(ls)), &[lo])
    };
    Some(with_backend(d))
}

/// The listener gives up after a consistent `t`: is the backend, asked directly, slower?
fn slower_than_timeout(
    id: &str,
    code: u16,
    t: f64,
    b: &Probed<'_>,
    firsts: &[(f64, bool)],
) -> Draft {
    let measured = format!("this listener gives up after {} (measured)", fmt_timeout(t));
    if firsts.is_empty() {
        let why = if b.stats.is_some() {
            format!("{measured}, but no request reached the backend directly, so whether it is slower is unknown (see 504.connect-timeout)")
        } else {
            format!("{measured} waiting for its backend: a slow backend or a connection it cannot open (504.connect-timeout); name the backend to time it directly")
        };
        return Draft::new(id, Verdict::Inconclusive, why);
    }
    let a = against(t, firsts);
    let total = firsts.len();
    let slowest = firsts.iter().map(|(v, _)| *v).fold(0.0, f64::max);
    if a.beyond > 0 {
        return Draft::new(
            id,
            Verdict::Confirmed,
            format!(
                "this listener gives up with {code} after {} (measured), while the backend, asked directly, took longer on {} of {total} requests (up to {}{}): the backend is slower than the listener waits",
                fmt_timeout(t),
                a.beyond,
                fmt_ms(slowest),
                if firsts.iter().any(|(_, c)| *c) { ", or never answered" } else { "" }
            ),
        );
    }
    // The backend's own code, at about the same time or sooner: passed on, not a timeout.
    let own_code = b
        .requests
        .iter()
        .filter(|(_, ex)| ex.status() == Some(code))
        .count();
    if own_code == total {
        let passthrough = if code == 504 {
            "504.passthrough"
        } else {
            "502.passthrough"
        };
        return Draft::new(
            id,
            Verdict::RuledOut,
            format!(
                "the backend answers {code} itself, within {}: the listener passes it on (see {passthrough})",
                fmt_ms(slowest)
            ),
        );
    }
    if a.near > 0 {
        return Draft::new(
            id,
            Verdict::Inconclusive,
            format!(
                "{measured}, and the backend asked directly answers at about that time (up to {}): too close to tell which comes first; run more latency requests",
                fmt_ms(slowest)
            ),
        );
    }
    if a.unknown > 0 {
        return Draft::new(
            id,
            Verdict::Inconclusive,
            format!("{measured}, but our wait for the backend ended sooner; {RAISE_THE_WAIT}"),
        );
    }
    Draft::new(
        id,
        Verdict::Inconclusive,
        format!(
            "{measured}, yet the backend asked directly answers within {}: the listener is waiting on something else — a connection it cannot open (see 504.connect-timeout), another backend, or a slower path from it to this one",
            fmt_ms(slowest)
        ),
    )
}

/// Only the backend was timed: a profile's timeout is all there is to compare with. What a
/// profile documents cannot rule the cause out (listeners are often configured tighter); a
/// timeout the user declared can.
fn backend_only(id: &str, b: &Probed<'_>, cited: Option<&Cited<Duration>>) -> Option<Draft> {
    let (bo, bs) = b.stats?;
    let firsts = b.first_bytes();
    let Some(fb) = bs
        .times
        .first_byte_ms
        .as_ref()
        .filter(|_| !firsts.is_empty())
    else {
        return Some(
            Draft::new(
                id,
                Verdict::Inconclusive,
                "no request reached the backend, so its response time is unknown",
            )
            .with(format!("straight to the backend: {}", statuses(bs)), &[bo]),
        );
    };
    let numbers = format!(
        "straight to the backend, time to first byte: {}",
        spread(fb)
    );
    // Bytes that began but never made an answer: a drip is as hung as silence.
    let unfinished: Vec<&Exchange> = b
        .requests
        .iter()
        .map(|(_, ex)| *ex)
        .filter(|ex| {
            ex.end == crate::transport::ConnEnd::Timeout
                && !ex.response.as_ref().is_some_and(|r| r.complete)
                && ex.bytes_in > 0
        })
        .collect();
    if !unfinished.is_empty() && unfinished.len() == b.requests.len() {
        let longest = unfinished
            .iter()
            .map(|ex| ex.timings.total_ms)
            .fold(0.0, f64::max);
        let trickled = unfinished.iter().map(|ex| ex.bytes_in).max().unwrap_or(0);
        return Some(
            Draft::new(
                id,
                Verdict::Inconclusive,
                format!(
                    "the backend began answering but sent no complete answer within {} (at most {trickled} bytes trickled in): hung mid-answer; a listener in front of it gives up at its own read timeout or passes a cut answer on: name the listener to see which",
                    fmt_ms(longest)
                ),
            )
            .with(numbers, &[bo]),
        );
    }
    if fb.censored > 0 && fb.censored == fb.samples {
        // Every wait ended before a byte came: a lower bound, never "within".
        return Some(
            Draft::new(
                id,
                Verdict::Inconclusive,
                format!(
                    "the backend accepted the connection and sent no answer within {}: hung, or slower than that; a listener in front of it gives up at its own read timeout: name the listener to see when and with which code",
                    fmt_ms(fb.max),
                ),
            )
            .with(numbers, &[bo]),
        );
    }
    let Some(c) = cited else {
        return Some(
            Draft::new(
                id,
                Verdict::Inconclusive,
                format!(
                    "the backend starts answering within {} (p95), and no listener timeout is known to compare with: name the listener to measure its own",
                    fmt_ms(fb.p95)
                ),
            )
            .with(numbers, &[bo]),
        );
    };
    let t = ms(c.value);
    let over = firsts.iter().filter(|(v, _)| *v > t).count();
    let d = if over > 0 {
        Draft::new(
            id,
            Verdict::Inconclusive,
            format!(
                "{over} of {} straight to the backend took longer than {}; name the listener to see whether and how it gives up",
                crate::plural::count(firsts.len(), "request"),
                the_cited(c, "read timeout")
            ),
        )
    } else if fb.p95 < t * FAR_BELOW && fb.censored == 0 && c.basis == Basis::Declared {
        Draft::new(
            id,
            Verdict::RuledOut,
            format!(
                "the backend starts answering within {} (p95), far inside the {} read timeout you declared",
                fmt_ms(fb.p95),
                fmt_ms(t)
            ),
        )
    } else if fb.p95 < t * FAR_BELOW && fb.censored == 0 {
        Draft::new(
            id,
            Verdict::Inconclusive,
            format!(
                "the backend starts answering within {} (p95), far inside {}; a listener configured shorter would still give up: name the listener to measure its own timeout",
                fmt_ms(fb.p95),
                the_cited(c, "read timeout")
            ),
        )
    } else {
        Draft::new(
            id,
            Verdict::Inconclusive,
            format!(
                "the backend's p95 time to first byte ({}) is close to {}",
                fmt_ms(fb.p95),
                the_cited(c, "read timeout")
            ),
        )
    };
    let cited_text = c.says(&format!("{} for the listener's read timeout", fmt_ms(t)));
    Some(d.with(numbers, &[bo]).cites(c, cited_text))
}

pub(crate) fn connect_timeout(b: &Probed<'_>, l: &Probed<'_>, ctx: &Context<'_>) -> Option<Draft> {
    const ID: &str = "504.connect-timeout";
    let cited = ctx.profile.connect_timeout();
    // Most listeners give up with 504; some say 502, and HAProxy 503 (its connect timeout and
    // retries spent, "sC" in its log). A timeout measured in any of them counts.
    let gateway = [504, 502, 503]
        .into_iter()
        .filter_map(|code| Gateway::of(code, &l.requests))
        .max_by_key(|g| (g.timeout().is_some(), g.code == 504));
    let measured = gateway.as_ref().and_then(|g| g.timeout());
    let code = gateway.as_ref().map_or(504, |g| g.code);
    let with_listener = |d: Draft| match &gateway {
        Some(g) => d.with(g.describe(), &g.refs),
        None => d,
    };
    // Only the timing probes speak to this cause; the baseline alone is not asked.
    let ran = b.connect.is_some() || b.stats.is_some();
    let Some(a) = backend_attempts(b, true).filter(|_| ran) else {
        let g = gateway.as_ref()?;
        let why = match measured {
            Some(t) => format!("this listener gives up with {code} after {} (measured): a connect timeout or a slow backend; name the backend to tell them apart", fmt_timeout(t)),
            None => format!("the listener answers {code}; name the backend to tell a connect timeout from a slow backend"),
        };
        let d = Draft::new(ID, Verdict::Inconclusive, why).with(g.describe(), &g.refs);
        return Some(match measured {
            Some(t) => compare(d, t, cited.as_ref(), "connect timeout"),
            None => d,
        });
    };
    let d = if a.timed_out > 0 {
        let within = a
            .waited_ms
            .map(|w| format!(" within {}", fmt_ms(w)))
            .unwrap_or_default();
        let mut d = Draft::new(
            ID,
            Verdict::Confirmed,
            format!(
                "{} of {} {} to the backend got no answer to their SYNs{within}: they are silently dropped",
                a.timed_out, a.total, a.what
            ),
        )
        .with(a.tally(), &a.refs);
        match (measured, a.waited_ms) {
            (Some(t), waited) => {
                d = d.with(
                    format!(
                        "the listener answers {code} after {} every time: that is how long it waits for a connection (measured)",
                        fmt_timeout(t)
                    ),
                    &lrefs_or(gateway.as_ref(), l),
                );
                if let Some(w) = waited.filter(|w| *w + tolerance(t) < t) {
                    d = d.with(
                        format!(
                            "our own wait for a SYN-ACK ({}) was shorter than the listener's ({}): SYNs unanswered that long are dropped, not slow",
                            fmt_ms(w),
                            fmt_timeout(t)
                        ),
                        &a.refs,
                    );
                }
                compare(d, t, cited.as_ref(), "connect timeout")
            }
            (None, Some(w)) => match cited.as_ref() {
                Some(c) if w + 1.0 < ms(c.value) => d.cites(
                    c,
                    format!(
                        "our wait ({}) was shorter than {}: SYNs unanswered that long are dropped, not slow",
                        fmt_ms(w),
                        the_cited(c, "connect timeout")
                    ),
                ),
                _ => d,
            },
            (None, None) => d,
        }
    } else if let Some(p) = a.ok_spread() {
        let connects = a.tally();
        match measured {
            Some(t) if p.max > t - tolerance(t) => Draft::new(
                ID,
                Verdict::Confirmed,
                format!(
                    "TCP connections to the backend take up to {}, about as long as the listener waits before its {code} ({}, measured)",
                    fmt_ms(p.max),
                    fmt_timeout(t)
                ),
            ),
            Some(t) => {
                let slow = against(t, &b.first_bytes()).beyond > 0;
                if slow {
                    Draft::new(
                        ID,
                        Verdict::RuledOut,
                        format!(
                            "the backend accepts our connections within {}, and it is slow to answer instead (see {code}.backend-slow): the listener's {code} after {} is a read timeout",
                            fmt_ms(p.max),
                            fmt_timeout(t)
                        ),
                    )
                } else {
                    Draft::new(
                        ID,
                        Verdict::Inconclusive,
                        format!(
                            "the listener gives up with {code} after {} (measured), though the backend accepts our connections within {}: either the listener cannot connect to it (a firewall that lets us through but not the listener; nginx logs \"upstream timed out ... while connecting to upstream\") or it waits on another backend; the listener's error log tells",
                            fmt_timeout(t),
                            fmt_ms(p.max)
                        ),
                    )
                }
            }
            None if gateway.is_none() && listener_passes(l) => Draft::new(
                ID,
                Verdict::RuledOut,
                format!(
                    "the listener passes answers on and never gives up with 504; our connections to the backend open within {}",
                    fmt_ms(p.max)
                ),
            ),
            None => by_cited_connect(ID, p.max, cited.as_ref()),
        }
        .with(connects, &a.refs)
    } else if a.refused + a.unreachable > 0 {
        Draft::new(
            ID,
            Verdict::RuledOut,
            "the backend's network answers every SYN at once, with a refusal: nothing waits for a connect timeout",
        )
        .with(a.tally(), &a.refs)
    } else {
        Draft::new(
            ID,
            Verdict::Inconclusive,
            "no TCP connection to the backend could be tried from here",
        )
        .with(a.tally(), &a.refs)
    };
    Some(with_listener(d))
}

fn lrefs_or<'a>(g: Option<&Gateway<'a>>, l: &Probed<'a>) -> Vec<&'a Observation> {
    match g {
        Some(g) => g.refs.clone(),
        None => l.latency_refs(),
    }
}

/// Every request through the listener was answered below 500.
fn listener_passes(l: &Probed<'_>) -> bool {
    !l.requests.is_empty()
        && l.requests
            .iter()
            .all(|(_, ex)| ex.status().is_some_and(|s| s < 500))
}

/// No listener measurement: the handshakes against the profile's connect timeout. Only a
/// declared timeout can rule the cause out; a documented one is a comparison.
fn by_cited_connect(id: &str, max: f64, cited: Option<&Cited<Duration>>) -> Draft {
    let Some(c) = cited else {
        return Draft::new(
            id,
            Verdict::Inconclusive,
            format!(
                "TCP connections to the backend open within {}, and no listener connect timeout is known to compare with: name the listener to measure its own",
                fmt_ms(max)
            ),
        );
    };
    let limit = ms(c.value);
    let says = c.says(&format!("{} for the connect timeout", fmt_ms(limit)));
    let d = if max >= limit {
        Draft::new(
            id,
            Verdict::Inconclusive,
            format!(
                "TCP connections to the backend take up to {}, beyond {}; name the listener to see it give up",
                fmt_ms(max),
                the_cited(c, "connect timeout")
            ),
        )
    } else if max < limit * FAR_BELOW && c.basis == Basis::Declared {
        Draft::new(
            id,
            Verdict::RuledOut,
            format!(
                "TCP connections to the backend open in {} at most, far inside the {} connect timeout you declared",
                fmt_ms(max),
                fmt_ms(limit)
            ),
        )
    } else if max < limit * FAR_BELOW {
        Draft::new(
            id,
            Verdict::Inconclusive,
            format!(
                "TCP connections to the backend open in {} at most, far inside {}; name the listener to measure its own connect timeout",
                fmt_ms(max),
                the_cited(c, "connect timeout")
            ),
        )
    } else {
        Draft::new(
            id,
            Verdict::Inconclusive,
            format!(
                "TCP connections to the backend take up to {}, close to {}",
                fmt_ms(max),
                the_cited(c, "connect timeout")
            ),
        )
    };
    d.cites(c, says)
}
