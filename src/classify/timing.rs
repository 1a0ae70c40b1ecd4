//! Rules on timings and network quality: slow backends (499/502/504), connect timeouts and
//! refusals, client timeouts, RTT and retransmissions, bandwidth throttling.
//!
//! They read the `latency` and `connect` observations (and the baseline, for reachability). The
//! listener's own gateway timeouts are measured from its answers ([`gateway`]); a profile's
//! timeouts are compared with what was measured, never put in its place.

mod gateway;
mod logged;

use std::time::Duration;

use crate::probe::connect::{ConnectResult, HandshakeOutcome};
use crate::probe::latency::{self, LatencyStats, PathQuality, Percentiles};
use crate::probe::{Detail, Family, Observation};
use crate::target::Role;
use crate::transport::{ConnEnd, Exchange};

use super::rules::Rule;
use super::{Context, Draft, Verdict, View};

/// Above this mean smoothed rtt, the path to the listener is slow in itself.
const HIGH_RTT_MS: f64 = 200.0;
/// "Far below" a timeout: under this share of it.
const FAR_BELOW: f64 = 0.5;
/// A p99 this many times the median means the backend is slow at times, not merely a slow
/// endpoint...
const TAIL_RATIO: f64 = 3.0;
/// ...plus this much, so sub-millisecond loopback medians do not make noise look like a tail.
const TAIL_SLACK_MS: f64 = 50.0;

pub(crate) const RULE: Rule = Rule {
    name: "timing",
    causes: &[
        "502.backend-unreachable",
        "504.connect-timeout",
        "504.backend-slow",
        "502.backend-slow",
        "499.backend-slow",
        "499.client-timeout-short",
        "408.network-rtt-loss",
        "499.network-rtt-loss",
        "408.bandwidth-throttled",
        "499.bandwidth-throttled",
    ],
    decide: drafts,
};

fn drafts(view: &View<'_>, ctx: &Context<'_>) -> Vec<Draft> {
    let listener = Probed::of(view, Role::Listener);
    let backend = Probed::of(view, Role::Backend);
    let mut out = Vec::new();
    out.extend(gateway::connect_timeout(&backend, &listener, ctx));
    out.extend(gateway::backend_slow(504, &backend, &listener, ctx));
    out.extend(gateway::backend_slow(502, &backend, &listener, ctx));
    out.extend(client_timeouts(&backend, &listener, ctx));
    out.extend(backend_unreachable(&backend, &listener, view));
    out.extend(network_rtt_loss(&listener));
    out.extend(bandwidth_throttled(&listener));
    out
}

/// What the timing probes recorded for one side.
#[derive(Default)]
struct Probed<'a> {
    stats: Option<(&'a Observation, &'a LatencyStats)>,
    /// The latency family's requests, in order.
    requests: Vec<(&'a Observation, &'a Exchange)>,
    connect: Option<(&'a Observation, &'a ConnectResult)>,
    baseline: Option<(&'a Observation, &'a Exchange)>,
}

impl<'a> Probed<'a> {
    fn of(view: &View<'a>, role: Role) -> Probed<'a> {
        let mut p = Probed::default();
        for o in view.observations.iter().filter(|o| o.role == role) {
            match (o.family, &o.detail, o.exchange.as_ref()) {
                (Family::Latency, Detail::Latency(s), _) => p.stats = Some((o, s)),
                (Family::Latency, _, Some(ex)) => p.requests.push((o, ex)),
                (Family::Connect, Detail::Connect(c), _) => p.connect = Some((o, c)),
                (Family::Protocol, _, Some(ex)) if o.variant == "baseline" => {
                    p.baseline = Some((o, ex))
                }
                _ => {}
            }
        }
        p
    }

    /// Time to first byte of each latency request that got that far, and whether it is a
    /// lower bound.
    fn first_bytes(&self) -> Vec<(f64, bool)> {
        self.requests
            .iter()
            .filter_map(|(_, ex)| latency::first_byte(ex))
            .collect()
    }

    /// Whole-request times of what a client keeps waiting for: valid answers (below 500) and
    /// requests with no answer at all (lower bounds: as long as we waited). `None` without a
    /// single valid answer.
    fn client_times(&self) -> Option<Percentiles> {
        let mut times = Vec::new();
        let mut censored = 0;
        for (_, ex) in &self.requests {
            match (ex.status(), latency::outcome(ex)) {
                (Some(status), _) if status < 500 => times.push(ex.timings.total_ms),
                (_, latency::Outcome::TimedOut) => {
                    times.push(ex.timings.total_ms);
                    censored += 1;
                }
                _ => {}
            }
        }
        if times.len() == censored as usize {
            return None;
        }
        Percentiles::of(&times, censored)
    }

    /// The observation that sums the latency requests up, or the first request.
    fn latency_refs(&self) -> Vec<&'a Observation> {
        match (self.stats, self.requests.first()) {
            (Some((o, _)), _) => vec![o],
            (None, Some((o, _))) => vec![*o],
            (None, None) => Vec::new(),
        }
    }
}

/// The listener's gateway timeout for `code` (504 or 502), measured in this run from its own
/// answers to the latency requests: several at one moment, after more than "at once".
pub(crate) fn listener_timeout<'a>(
    view: &View<'a>,
    code: u16,
) -> Option<(f64, String, Vec<&'a Observation>)> {
    let l = Probed::of(view, Role::Listener);
    let g = gateway::Gateway::of(code, &l.requests)?;
    let t = g.timeout()?;
    Some((t, g.describe(), g.refs))
}

pub(crate) use gateway::{fmt_timeout, own_ms, tolerance, AT_ONCE_MS};

/// The listener's read timeout for the client-timeout rules: measured if its answers show one,
/// else declared or documented; `None` when nothing says (nothing is assumed).
fn read_timeout_ms(l: &Probed<'_>, ctx: &Context<'_>) -> Option<f64> {
    measured_gateway(l)
        .and_then(|g| g.timeout())
        .or_else(|| ctx.profile.response_timeout().map(|c| ms(c.value)))
}

/// The listener's 504s (else 502s) when they show its own timeout, measured in this run.
fn measured_gateway<'a>(l: &Probed<'a>) -> Option<gateway::Gateway<'a>> {
    [504, 502]
        .into_iter()
        .find_map(|code| gateway::Gateway::of(code, &l.requests).filter(|g| g.timeout().is_some()))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// `40 µs`, `2.5 ms`, `300 ms`, `1.5 s`, `60 s`.
pub(crate) fn fmt_ms(ms: f64) -> String {
    if ms < 1.0 {
        format!("{:.0} µs", ms * 1000.0)
    } else if ms >= 1000.0 {
        let secs = format!("{:.2}", ms / 1000.0);
        format!("{} s", secs.trim_end_matches('0').trim_end_matches('.'))
    } else if ms >= 10.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{ms:.1} ms")
    }
}

/// A client timeout with headroom: twice the p99, rounded up to a value people write down
/// (100 ms steps below a second, whole seconds below a minute, 10 s steps above).
pub(crate) fn recommended_client_timeout_ms(p99_ms: f64) -> f64 {
    let double = (p99_ms * 2.0).max(1.0);
    let step = if double <= 1000.0 {
        100.0
    } else if double <= 60_000.0 {
        1000.0
    } else {
        10_000.0
    };
    (double / step).ceil() * step
}

fn spread(p: &Percentiles) -> String {
    let bound = if p.censored > 0 {
        format!(
            "; {} of them got no answer before we stopped waiting, so these are lower bounds",
            p.censored
        )
    } else {
        String::new()
    };
    format!(
        "median {}, p95 {}, p99 {}, max {} over {}{bound}",
        fmt_ms(p.median),
        fmt_ms(p.p95),
        fmt_ms(p.p99),
        fmt_ms(p.max),
        crate::plural::count(p.samples, "request")
    )
}

/// `504 ×3, 200 ×1`.
fn statuses(stats: &LatencyStats) -> String {
    tally_text(
        stats.statuses.iter().map(|(s, n)| (*s, *n)),
        stats.requests - stats.answered,
    )
}

/// `502 ×12, 200 ×6, no answer ×1`: each status with its count, then the requests that got
/// no answer; `nothing` when there were none.
pub(crate) fn tally_text(counts: impl Iterator<Item = (u16, u32)>, unanswered: u32) -> String {
    let mut parts: Vec<String> = counts.map(|(s, n)| format!("{s} ×{n}")).collect();
    if unanswered > 0 {
        parts.push(format!("no answer ×{unanswered}"));
    }
    if parts.is_empty() {
        "nothing".into()
    } else {
        parts.join(", ")
    }
}

/// TCP connection attempts to one side, from the connect probe or, without it, from requests.
struct Attempts<'a> {
    /// `TCP handshakes` or `requests`.
    what: &'static str,
    endpoint: String,
    total: u32,
    ok_ms: Vec<f64>,
    refused: u32,
    timed_out: u32,
    /// How long the timed-out attempts waited.
    waited_ms: Option<f64>,
    unreachable: u32,
    failed: u32,
    unreachable_detail: Option<String>,
    failed_detail: Option<String>,
    refs: Vec<&'a Observation>,
}

impl<'a> Attempts<'a> {
    fn from_connect(o: &'a Observation, c: &'a ConnectResult) -> Attempts<'a> {
        Attempts {
            what: "TCP handshakes",
            endpoint: c.endpoint.clone(),
            total: c.handshakes.len() as u32,
            ok_ms: c
                .handshakes
                .iter()
                .filter(|h| h.outcome == HandshakeOutcome::Ok)
                .map(|h| h.ms)
                .collect(),
            refused: c.refused,
            timed_out: c.timed_out,
            waited_ms: (c.timed_out > 0).then_some(c.timeout_ms),
            unreachable: c.unreachable,
            failed: c.failed,
            unreachable_detail: c
                .detail_of(HandshakeOutcome::Unreachable)
                .map(str::to_string),
            failed_detail: c.detail_of(HandshakeOutcome::Failed).map(str::to_string),
            refs: vec![o],
        }
    }

    fn from_exchanges(exchanges: &[(&'a Observation, &'a Exchange)]) -> Option<Attempts<'a>> {
        let (_, first) = exchanges.first()?;
        let mut a = Attempts {
            what: "requests",
            endpoint: first.endpoint.clone(),
            total: exchanges.len() as u32,
            ok_ms: Vec::new(),
            refused: 0,
            timed_out: 0,
            waited_ms: None,
            unreachable: 0,
            failed: 0,
            unreachable_detail: None,
            failed_detail: None,
            refs: Vec::new(),
        };
        for (o, ex) in exchanges {
            match (&ex.end, ex.timings.connect_ms) {
                (_, Some(ms)) => a.ok_ms.push(ms),
                (ConnEnd::ConnectRefused, _) => a.refused += 1,
                (ConnEnd::ConnectTimeout, _) => {
                    a.timed_out += 1;
                    a.waited_ms = Some(a.waited_ms.unwrap_or(0.0).max(ex.timings.total_ms));
                }
                // A failed name lookup (its own kind) says nothing about what the listener
                // can reach.
                (ConnEnd::Unreachable(w), _) => {
                    a.unreachable += 1;
                    a.unreachable_detail.get_or_insert_with(|| w.clone());
                }
                _ => {
                    a.failed += 1;
                    a.failed_detail
                        .get_or_insert_with(|| super::describe(Some(ex)));
                }
            }
            if a.refs.len() < 3 {
                a.refs.push(o);
            }
        }
        Some(a)
    }

    fn ok_spread(&self) -> Option<Percentiles> {
        Percentiles::of(&self.ok_ms, 0)
    }

    /// `3 TCP handshakes to 127.0.0.1:8080: 2 completed (median 0.1 ms, max 0.2 ms), 1 refused (RST)`.
    fn tally(&self) -> String {
        let mut parts = Vec::new();
        if let Some(p) = self.ok_spread() {
            parts.push(format!(
                "{} connected (median {}, max {})",
                p.samples,
                fmt_ms(p.median),
                fmt_ms(p.max)
            ));
        }
        if self.refused > 0 {
            parts.push(format!("{} refused (RST)", self.refused));
        }
        if self.timed_out > 0 {
            let within = self
                .waited_ms
                .map(|w| format!(" within {}", fmt_ms(w)))
                .unwrap_or_default();
            parts.push(format!(
                "{} got no answer to the SYN{within}",
                self.timed_out
            ));
        }
        if self.unreachable > 0 {
            parts.push(format!(
                "{} unreachable ({})",
                self.unreachable,
                self.unreachable_detail.as_deref().unwrap_or("ICMP")
            ));
        }
        if self.failed > 0 {
            parts.push(format!(
                "{} failed ({})",
                self.failed,
                self.failed_detail.as_deref().unwrap_or("unknown")
            ));
        }
        // "1 request", "3 requests", "1 TCP handshake".
        let what = if self.total == 1 {
            self.what.strip_suffix('s').unwrap_or(self.what)
        } else {
            self.what
        };
        format!(
            "{} {what} to {}: {}",
            self.total,
            self.endpoint,
            parts.join(", ")
        )
    }
}

/// How the backend's TCP connections fared: the connect probe when it ran, else the requests.
fn backend_attempts<'a>(b: &Probed<'a>, with_baseline: bool) -> Option<Attempts<'a>> {
    if let Some((o, c)) = b.connect {
        return Some(Attempts::from_connect(o, c));
    }
    let mut exchanges: Vec<(&Observation, &Exchange)> = Vec::new();
    if with_baseline {
        exchanges.extend(b.baseline);
    }
    exchanges.extend(b.requests.iter().copied());
    Attempts::from_exchanges(&exchanges)
}

/// Why the backend counts as slow against its own normal, if it does.
fn slowness(times: &Percentiles, firsts: &[(f64, bool)], t: Option<f64>) -> Option<String> {
    let over = t.map_or(0, |t| firsts.iter().filter(|(v, _)| *v > t).count());
    if let Some(t) = t.filter(|_| over > 0) {
        return Some(format!(
            "{over} of {} took longer than the listener's {} read timeout",
            crate::plural::count(firsts.len(), "request"),
            fmt_ms(t)
        ));
    }
    if times.censored > 0 {
        return Some(format!(
            "{} of {} got no answer at all",
            times.censored,
            crate::plural::count(times.samples, "request")
        ));
    }
    (times.p99 > times.median * TAIL_RATIO + TAIL_SLACK_MS).then(|| {
        format!(
            "its slow requests (p99 {}) take more than {TAIL_RATIO} times its typical one (median {})",
            fmt_ms(times.p99),
            fmt_ms(times.median)
        )
    })
}

/// The 499 causes: decided from the measured times, then with what the listener logged for
/// the requests through it, where `--access-log` found their lines ([`logged`]).
fn client_timeouts(b: &Probed<'_>, l: &Probed<'_>, ctx: &Context<'_>) -> Vec<Draft> {
    let client_ms = l.stats.or(b.stats).and_then(|(_, s)| s.client_timeout_ms);
    let drafts = measured_client_timeouts(b, l, ctx);
    logged::ListenerLog::of(l, client_ms).apply(drafts, client_ms)
}

fn measured_client_timeouts(b: &Probed<'_>, l: &Probed<'_>, ctx: &Context<'_>) -> Vec<Draft> {
    const SLOW: &str = "499.backend-slow";
    const SHORT: &str = "499.client-timeout-short";
    let t = read_timeout_ms(l, ctx);
    // Clients wait for the listener; when it only fails, the backend's own answers are the
    // best estimate of what a good answer takes.
    let (seen, total, place) = match (l.client_times(), b.client_times()) {
        (Some(times), _) => (l, times, "through the listener"),
        (None, Some(times)) => (b, times, "straight to the backend"),
        (None, None) => {
            let Some((o, s)) = l.stats.or(b.stats) else {
                return Vec::new();
            };
            let why = "no request got a valid answer, so the time a good answer takes is unknown";
            let got = format!("answers: {}", statuses(s));
            return vec![
                Draft::new(SHORT, Verdict::Inconclusive, why).with(got.clone(), &[o]),
                Draft::new(SLOW, Verdict::Inconclusive, why).with(got, &[o]),
            ];
        }
    };
    // The backend's own health decides between "slow backend" and "short timeout".
    let slow = match b.client_times() {
        Some(times) => slowness(&times, &b.first_bytes(), t),
        None => slowness(&total, &seen.first_bytes(), t),
    };
    let refs = seen.latency_refs();
    let refs = refs.as_slice();
    let client_timeout = l.stats.or(b.stats).and_then(|(_, s)| s.client_timeout_ms);
    let numbers = format!("{place}, whole request, valid answers: {}", spread(&total));
    let rec = recommended_client_timeout_ms(total.p99);
    let lower = if total.censored > 0 { "at least " } else { "" };
    let advice = format!(
        "recommended client timeout: {lower}{} — the measured p99 of {} {place} × 2, rounded up, leaving headroom for slower moments",
        fmt_ms(rec),
        fmt_ms(total.p99)
    );
    let Some(c) = client_timeout else {
        let why = format!(
            "no client timeout declared (`client-timeout` of the latency probe in the scenario): nothing to compare the measured p99 ({}) with",
            fmt_ms(total.p99)
        );
        return vec![
            Draft::new(SHORT, Verdict::Inconclusive, why.clone())
                .with(numbers.clone(), refs)
                .with(advice.clone(), refs),
            Draft::new(SLOW, Verdict::Inconclusive, why)
                .with(numbers, refs)
                .with(advice, refs),
        ];
    };
    let declared = format!("the clients' declared timeout is {}", fmt_ms(c));
    if let Some(d) = listener_gives_up_first(l, c) {
        return d;
    }
    if total.p99 <= c {
        let headroom = if rec > c {
            format!(
                "; {} leaves little headroom, consider {}",
                fmt_ms(c),
                fmt_ms(rec)
            )
        } else {
            String::new()
        };
        return vec![
            Draft::new(
                SHORT,
                Verdict::RuledOut,
                format!(
                    "requests finish within the clients' {} (p99 {}){headroom}",
                    fmt_ms(c),
                    fmt_ms(total.p99)
                ),
            )
            .with(numbers.clone(), refs)
            .with(advice, refs),
            Draft::new(
                SLOW,
                Verdict::RuledOut,
                format!(
                    "the backend answers before clients give up: p99 {} against their {}",
                    fmt_ms(total.p99),
                    fmt_ms(c)
                ),
            )
            .with(numbers, refs)
            .with(declared, refs),
        ];
    }
    match slow {
        Some(why) => {
            let slow = Draft::new(
                SLOW,
                Verdict::Confirmed,
                format!(
                    "the backend is slow at times ({why}); clients that wait {} give up first",
                    fmt_ms(c)
                ),
            )
            .with(numbers.clone(), refs)
            .with(declared.clone(), refs);
            let short = if c < total.median {
                Draft::new(
                    SHORT,
                    Verdict::Confirmed,
                    format!(
                        "even a typical request (median {}) takes longer than the clients' {}",
                        fmt_ms(total.median),
                        fmt_ms(c)
                    ),
                )
            } else {
                Draft::new(
                    SHORT,
                    Verdict::RuledOut,
                    format!(
                        "the clients' {} covers a typical request (median {}); only the backend's slow requests go beyond it",
                        fmt_ms(c),
                        fmt_ms(total.median)
                    ),
                )
            }
            .with(numbers, refs)
            .with(declared, refs)
            .with(advice, refs);
            vec![short, slow]
        }
        None => vec![
            Draft::new(
                SHORT,
                Verdict::Confirmed,
                format!(
                    "clients give up after {} while the backend, healthy and consistent, needs up to {} (p99)",
                    fmt_ms(c),
                    fmt_ms(total.p99)
                ),
            )
            .with(numbers.clone(), refs)
            .with(declared.clone(), refs)
            .with(advice, refs),
            Draft::new(
                SLOW,
                Verdict::RuledOut,
                format!(
                    "the backend answers consistently (median {}, p99 {}){}: it is the clients' timeout that is short",
                    fmt_ms(total.median),
                    fmt_ms(total.p99),
                    t.map(|t| format!(" and inside the listener's {} read timeout", fmt_ms(t)))
                        .unwrap_or_default()
                ),
            )
            .with(numbers, refs)
            .with(declared, refs),
        ],
    }
}

/// A listener whose own gateway timeout, measured in this run (two or more 504s or 502s at
/// one moment), runs out before the clients' declared timeout answers every slow request
/// itself: clients get its 504 or 502 and never leave, so neither 499 cause can be what they
/// see. The profile's documented timeout is not enough for this: only what the listener did.
fn listener_gives_up_first(l: &Probed<'_>, client_ms: f64) -> Option<Vec<Draft>> {
    let g = measured_gateway(l)?;
    let t = g.timeout()?;
    if t + gateway::tolerance(t) >= client_ms {
        return None;
    }
    let code = g.code;
    let why = format!(
        "the listener answers {code} itself after {} (measured), before the clients' {} run out: they get its {code}, not a 499 (see {code}.backend-slow)",
        gateway::fmt_timeout(t),
        fmt_ms(client_ms)
    );
    let seen = g.describe();
    Some(
        ["499.client-timeout-short", "499.backend-slow"]
            .into_iter()
            .map(|id| Draft::new(id, Verdict::RuledOut, why.clone()).with(seen.clone(), &g.refs))
            .collect(),
    )
}

fn backend_unreachable(b: &Probed<'_>, l: &Probed<'_>, view: &View<'_>) -> Option<Draft> {
    const ID: &str = "502.backend-unreachable";
    let a = backend_attempts(b, true)?;
    let d = if a.refused + a.unreachable > 0 {
        let how = match (a.refused, a.unreachable) {
            (0, _) => "the network reports it unreachable",
            (_, 0) => "the connection is refused",
            _ => "the connection is refused or unreachable",
        };
        Draft::new(
            ID,
            Verdict::Confirmed,
            format!(
                "no TCP connection to the backend: {how} ({} of {} {})",
                a.refused + a.unreachable,
                a.total,
                a.what
            ),
        )
    } else if !a.ok_ms.is_empty() {
        Draft::new(
            ID,
            Verdict::RuledOut,
            "the backend accepts TCP connections on its service port",
        )
    } else if a.timed_out > 0 {
        let listener_502: Vec<&Observation> = l
            .baseline
            .iter()
            .chain(l.requests.iter())
            .filter(|(_, ex)| ex.status() == Some(502))
            .map(|(o, _)| *o)
            .collect();
        if listener_502.is_empty() {
            Draft::new(
                ID,
                Verdict::RuledOut,
                "nothing refuses the connection: the SYNs go unanswered, a silent drop that listeners report as a timeout (see 504.connect-timeout)",
            )
        } else {
            Draft::new(
                ID,
                Verdict::Confirmed,
                "the backend's SYNs go unanswered and the listener reports that as 502",
            )
            .with(
                format!(
                    "{} through the listener got 502",
                    crate::plural::count(listener_502.len(), "request")
                ),
                &listener_502,
            )
        }
    } else {
        Draft::new(
            ID,
            Verdict::Inconclusive,
            "no TCP connection to the backend could be tried from here",
        )
    };
    let d = d.with(a.tally(), &a.refs);
    Some(match other_code_for_unreachable(l, view) {
        Some((note, refs)) if d.verdict == Verdict::Confirmed => d.with(note, &refs),
        _ => d,
    })
}

/// The code the listener answers for a backend it cannot connect to, when that is not the 502
/// the reference page documents: Apache httpd answers 503. The fault is the backend's and is
/// measured straight at it; the note says which code to look for at this listener.
fn other_code_for_unreachable<'a>(
    l: &Probed<'a>,
    view: &View<'a>,
) -> Option<(String, Vec<&'a Observation>)> {
    let answered: Vec<(&Observation, u16)> = l
        .baseline
        .iter()
        .chain(l.requests.iter())
        .filter_map(|(o, ex)| Some((*o, ex.status()?)))
        .collect();
    let code = answered.first()?.1;
    if code == 502 || code < 500 || answered.iter().any(|(_, s)| *s != code) {
        return None;
    }
    let who = view
        .listener_is()
        .map_or("this listener".to_string(), |p| p.name().to_string());
    Some((
        format!(
            "{who} answers {code} for it, not the 502 the reference page documents for an unreachable backend: {} through the listener got {code}",
            match answered.len() {
                1 => "the request".to_string(),
                n => format!("all {n} requests"),
            }
        ),
        answered.iter().map(|(o, _)| *o).collect(),
    ))
}

/// TCP statistics of our own connections to the listener, with the observations they are from.
fn listener_path<'a>(
    l: &Probed<'a>,
) -> Option<(Option<PathQuality>, Option<f64>, Vec<&'a Observation>)> {
    if l.stats.is_none() && l.connect.is_none() {
        return None;
    }
    let mut samples: Vec<(u32, u32)> = l
        .requests
        .iter()
        .filter_map(|(_, ex)| Some((ex.tcp_rtt_us?, ex.tcp_retransmits.unwrap_or(0))))
        .collect();
    let mut rttvar_max: Option<f64> = None;
    if let Some((_, c)) = l.connect {
        for h in &c.handshakes {
            if let Some(rtt) = h.tcp_rtt_us {
                samples.push((rtt, h.tcp_retransmits.unwrap_or(0)));
            }
            if let Some(v) = h.tcp_rttvar_us {
                let v = f64::from(v) / 1000.0;
                rttvar_max = Some(rttvar_max.map_or(v, |m: f64| m.max(v)));
            }
        }
    }
    let refs: Vec<&Observation> = l
        .latency_refs()
        .into_iter()
        .chain(l.connect.map(|(o, _)| o))
        .collect();
    Some((PathQuality::of(&samples), rttvar_max, refs))
}

fn path_text(p: &PathQuality, rttvar_max: Option<f64>) -> String {
    let var = rttvar_max
        .map(|v| format!(", kernel rtt variance up to {}", fmt_ms(v)))
        .unwrap_or_default();
    format!(
        "our {} to the listener: smoothed rtt mean {}, max {}, spread {} between connections{var}; {}",
        crate::plural::count(p.connections, "connection"),
        fmt_ms(p.rtt_mean_ms),
        fmt_ms(p.rtt_max_ms),
        fmt_ms(p.rtt_stddev_ms),
        crate::plural::count(p.retransmits, "retransmitted segment")
    )
}

/// Loss worth naming: at least [`LOSS_MIN_RETRANSMITS`] retransmitted segments, and at least one
/// for every five connections. A single retransmission happens on any busy host, loopback
/// included, and proves nothing about the path.
fn lossy(p: &PathQuality) -> bool {
    p.retransmits >= LOSS_MIN_RETRANSMITS && p.retransmits * 5 >= p.connections
}

const LOSS_MIN_RETRANSMITS: u32 = 3;

/// Whether our connections to the side went to a loopback address. No network lies between:
/// retransmissions or long round trips there are the host's own doing (a listen queue that
/// overflowed, a process starved of CPU), never a path that loses packets.
fn on_loopback(l: &Probed<'_>) -> Option<std::net::SocketAddr> {
    l.requests
        .iter()
        .map(|(_, ex)| *ex)
        .chain(l.baseline.map(|(_, ex)| ex))
        .filter_map(|ex| ex.peer.as_deref()?.parse::<std::net::SocketAddr>().ok())
        .find(|a| a.ip().is_loopback())
}

fn network_rtt_loss(l: &Probed<'_>) -> Vec<Draft> {
    let Some((path, rttvar, refs)) = listener_path(l) else {
        return Vec::new();
    };
    let draft = |id: &str| {
        match &path {
        None => Draft::new(
            id,
            Verdict::Inconclusive,
            "no connection to the listener reported TCP statistics (TCP_INFO is read on Linux only, and only on connections that opened)",
        ),
        Some(p) => {
            let text = path_text(p, rttvar);
            let local = on_loopback(l).filter(|_| lossy(p) || p.rtt_mean_ms > HIGH_RTT_MS);
            let d = if let Some(addr) = local {
                Draft::new(
                    id,
                    Verdict::Inconclusive,
                    format!(
                        "the listener is on loopback ({}), where no network loses packets: {} and a mean rtt of {} are this host's own doing (a listen queue that overflowed, a process starved of CPU); measure from a client across the real path",
                        addr.ip(),
                        crate::plural::count(p.retransmits, "retransmission"),
                        fmt_ms(p.rtt_mean_ms)
                    ),
                )
            } else if lossy(p) {
                Draft::new(
                    id,
                    Verdict::Confirmed,
                    format!(
                        "our own connections to the listener needed {} retransmissions: the path loses packets",
                        p.retransmits
                    ),
                )
            } else if p.rtt_mean_ms > HIGH_RTT_MS {
                Draft::new(
                    id,
                    Verdict::Confirmed,
                    format!(
                        "the round trip to the listener takes {} on average, above {}",
                        fmt_ms(p.rtt_mean_ms),
                        fmt_ms(HIGH_RTT_MS)
                    ),
                )
            } else if p.retransmits > 0 {
                Draft::new(
                    id,
                    Verdict::Inconclusive,
                    format!(
                        "{} over {}: too few to call the path lossy (a busy host retransmits now and then); rerun with more latency requests",
                        crate::plural::count(p.retransmits, "retransmission"),
                        crate::plural::count(p.connections, "connection")
                    ),
                )
            } else {
                Draft::new(
                    id,
                    Verdict::RuledOut,
                    format!(
                        "our connections to the listener see a low rtt (mean {}) and no retransmissions",
                        fmt_ms(p.rtt_mean_ms)
                    ),
                )
            };
            d.with(text, &refs)
        }
    }
    };
    vec![draft("408.network-rtt-loss"), draft("499.network-rtt-loss")]
}

fn bandwidth_throttled(l: &Probed<'_>) -> Vec<Draft> {
    let Some((path, rttvar, refs)) = listener_path(l) else {
        return Vec::new();
    };
    let mut numbers = Vec::new();
    if let Some(p) = &path {
        numbers.push(path_text(p, rttvar));
    }
    if let Some(total) = l.stats.and_then(|(_, s)| s.times.total_ms.as_ref()) {
        numbers.push(format!("requests through the listener: {}", spread(total)));
    }
    [(408, "408.bandwidth-throttled"), (499, "499.bandwidth-throttled")]
        .into_iter()
        .map(|(code, id)| {
            let mut d = Draft::new(
                id,
                Verdict::Inconclusive,
                "a probe cannot see the load balancer instance's bandwidth cap; only the provider's monitoring can",
            );
            for n in &numbers {
                d = d.with(n.clone(), &refs);
            }
            d.with(
                format!(
                    "where to look: the provider's monitoring of the load balancer instance — outbound bandwidth against the instance's cap, and dropped connections, in the minutes of the {code}s; rerun this probe at peak and off-peak and compare its rtt and retransmissions"
                ),
                &refs,
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::catalogue::Catalogue;
    use crate::classify::{classify, Finding};
    use crate::logs::probe_line::LoggedLine;
    use crate::probe::connect::Handshake;
    use crate::probe::SentRequest;
    use crate::profile::Profile;
    use crate::transport::{Response, Timings};

    const MS: fn(u64) -> Duration = Duration::from_millis;

    fn profile() -> Profile {
        let mut p = Profile::nginx();
        p.documented.response_timeout = Some(MS(1000));
        p.documented.connect_timeout = Some(MS(1000));
        p
    }

    /// An exchange that connected; `status: None` means nothing came before the wait ran out.
    fn ex(status: Option<u16>, ms: f64) -> Exchange {
        let end = if status.is_some() {
            ConnEnd::Complete
        } else {
            ConnEnd::Timeout
        };
        Exchange {
            timings: Timings {
                connect_ms: Some(0.2),
                first_byte_ms: status.map(|_| ms),
                total_ms: ms + 0.5,
                ..Timings::default()
            },
            bytes_out: 60,
            bytes_in: if status.is_some() { 100 } else { 0 },
            response: status.map(|status| Response::complete(status, "", &[], b"")),
            tcp_rtt_us: Some(2000),
            tcp_retransmits: Some(0),
            ..Exchange::ended("127.0.0.1:1", end)
        }
    }

    fn never_connected(end: ConnEnd, ms: f64) -> Exchange {
        Exchange {
            timings: Timings {
                total_ms: ms,
                ..Timings::default()
            },
            ..Exchange::ended("127.0.0.1:1", end)
        }
    }

    fn obs(
        family: Family,
        variant: &str,
        role: Role,
        exchange: Option<Exchange>,
        detail: Detail,
    ) -> Observation {
        Observation {
            id: String::new(),
            family,
            variant: variant.into(),
            role,
            well_formed: true,
            evidence_for: Vec::new(),
            request: SentRequest::described("", 0, false),
            exchange,
            detail,
            logged: None,
        }
    }

    fn latency(role: Role, exchanges: Vec<Exchange>, client_ms: Option<u64>) -> Vec<Observation> {
        let client = client_ms.map(MS);
        let refs: Vec<&Exchange> = exchanges.iter().collect();
        let stats = LatencyStats::of("127.0.0.1:1", &refs, MS(2000), client, None);
        let mut out: Vec<Observation> = exchanges
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let variant = format!("request-{}", i + 1);
                obs(
                    Family::Latency,
                    &variant,
                    role,
                    Some(e.clone()),
                    Detail::None,
                )
            })
            .collect();
        out.push(obs(
            Family::Latency,
            "stats",
            role,
            None,
            Detail::Latency(stats),
        ));
        out
    }

    fn connect(role: Role, outcomes: &[(HandshakeOutcome, f64)]) -> Observation {
        let handshakes = outcomes
            .iter()
            .map(|&(outcome, ms)| Handshake {
                outcome,
                ms,
                detail: None,
                tcp_rtt_us: (outcome == HandshakeOutcome::Ok).then_some(100),
                tcp_rttvar_us: (outcome == HandshakeOutcome::Ok).then_some(50),
                tcp_retransmits: (outcome == HandshakeOutcome::Ok).then_some(0),
            })
            .collect();
        let result = ConnectResult::of("127.0.0.1:1", MS(1000), handshakes, None);
        obs(
            Family::Connect,
            "handshakes",
            role,
            None,
            Detail::Connect(result),
        )
    }

    fn answers(status: u16, times: &[f64]) -> Vec<Exchange> {
        times.iter().map(|&t| ex(Some(status), t)).collect()
    }

    fn findings(mut observations: Vec<Observation>) -> BTreeMap<String, Finding> {
        for (i, o) in observations.iter_mut().enumerate() {
            o.id = format!("o{}", i + 1);
        }
        let profile = profile();
        let ctx = Context {
            profile: &profile,
            listener_tls: Some(false),
            has_backend: observations.iter().any(|o| o.role == Role::Backend),
        };
        classify(&observations, Catalogue::builtin(), &ctx)
            .into_iter()
            .map(|f| (f.cause.clone(), f))
            .collect()
    }

    fn verdict(f: &BTreeMap<String, Finding>, id: &str) -> Option<Verdict> {
        f.get(id).map(|f| f.verdict)
    }

    fn text(f: &BTreeMap<String, Finding>, id: &str) -> String {
        let f = &f[id];
        let mut all = f.reason.clone();
        for e in &f.evidence {
            all.push('\n');
            all.push_str(&e.text);
        }
        all
    }

    const OK3: &[(HandshakeOutcome, f64)] = &[
        (HandshakeOutcome::Ok, 0.2),
        (HandshakeOutcome::Ok, 0.3),
        (HandshakeOutcome::Ok, 0.2),
    ];

    fn both_sides(
        listener: Vec<Exchange>,
        backend: Vec<Exchange>,
        client_ms: Option<u64>,
    ) -> Vec<Observation> {
        let mut o = latency(Role::Listener, listener, client_ms);
        o.extend(latency(Role::Backend, backend, client_ms));
        o.push(connect(Role::Listener, OK3));
        o.push(connect(Role::Backend, OK3));
        o
    }

    #[test]
    fn slow_backend_behind_a_504_listener() {
        let f = findings(both_sides(
            answers(504, &[1000.0, 1001.0, 1000.5]),
            answers(200, &[1500.0, 1501.0, 1500.2]),
            None,
        ));
        assert_eq!(verdict(&f, "504.backend-slow"), Some(Verdict::Confirmed));
        assert_eq!(verdict(&f, "504.connect-timeout"), Some(Verdict::RuledOut));
        assert_eq!(verdict(&f, "502.backend-slow"), Some(Verdict::RuledOut));
        assert_eq!(
            verdict(&f, "502.backend-unreachable"),
            Some(Verdict::RuledOut)
        );
        let why = text(&f, "504.backend-slow");
        assert!(
            why.contains("gives up with 504 after 1.0 s (measured)"),
            "{why}"
        );
        assert!(why.contains("took longer on 3 of 3 requests"), "{why}");
        assert!(why.contains("got 504"), "{why}");
        // The listener's 504s say nothing of how long a good answer takes; the backend's do.
        let advice = text(&f, "499.client-timeout-short");
        assert!(
            advice.contains("recommended client timeout: 4 s — the measured p99 of 1.5 s straight to the backend"),
            "{advice}"
        );
    }

    #[test]
    fn fast_backend_rules_the_timing_faults_out() {
        let f = findings(both_sides(
            answers(200, &[6.0, 5.0, 7.0]),
            answers(200, &[4.0, 5.0, 4.5]),
            None,
        ));
        for id in [
            "504.backend-slow",
            "504.connect-timeout",
            "502.backend-slow",
            "502.backend-unreachable",
            "408.network-rtt-loss",
            "499.network-rtt-loss",
        ] {
            assert_eq!(
                verdict(&f, id),
                Some(Verdict::RuledOut),
                "{id}: {}",
                text(&f, id)
            );
        }
        for id in [
            "408.bandwidth-throttled",
            "499.bandwidth-throttled",
            "499.client-timeout-short",
            "499.backend-slow",
        ] {
            assert_eq!(verdict(&f, id), Some(Verdict::Inconclusive), "{id}");
        }
        assert!(text(&f, "408.bandwidth-throttled").contains("provider's monitoring"));
        assert!(text(&f, "499.client-timeout-short").contains("recommended client timeout"));
    }

    #[test]
    fn refused_handshakes_confirm_unreachable_not_connect_timeout() {
        let mut o = latency(Role::Listener, answers(502, &[1.0, 1.0, 1.0]), None);
        o.push(connect(
            Role::Backend,
            &[(HandshakeOutcome::Refused, 0.1); 3],
        ));
        let f = findings(o);
        assert_eq!(
            verdict(&f, "502.backend-unreachable"),
            Some(Verdict::Confirmed)
        );
        assert!(text(&f, "502.backend-unreachable").contains("3 refused (RST)"));
        assert_eq!(verdict(&f, "504.connect-timeout"), Some(Verdict::RuledOut));
    }

    #[test]
    fn silent_drop_confirms_connect_timeout_only() {
        let mut o = latency(
            Role::Listener,
            answers(504, &[1000.0, 1000.0, 1000.0]),
            None,
        );
        o.extend(latency(
            Role::Backend,
            vec![never_connected(ConnEnd::ConnectTimeout, 1000.0); 3],
            None,
        ));
        o.push(connect(
            Role::Backend,
            &[(HandshakeOutcome::TimedOut, 1000.0); 3],
        ));
        let f = findings(o);
        assert_eq!(verdict(&f, "504.connect-timeout"), Some(Verdict::Confirmed));
        assert!(text(&f, "504.connect-timeout").contains("3 got no answer to the SYN within 1 s"));
        assert_eq!(
            verdict(&f, "502.backend-unreachable"),
            Some(Verdict::RuledOut)
        );
        assert_eq!(verdict(&f, "504.backend-slow"), Some(Verdict::Inconclusive));
        assert_eq!(verdict(&f, "499.backend-slow"), Some(Verdict::Inconclusive));
        assert!(text(&f, "499.backend-slow").contains("no request got a valid answer"));
    }

    #[test]
    fn a_listener_that_reports_slowness_as_502() {
        let f = findings(both_sides(
            answers(502, &[1000.0, 1000.0]),
            answers(200, &[1500.0, 1500.0]),
            None,
        ));
        assert_eq!(verdict(&f, "502.backend-slow"), Some(Verdict::Confirmed));
        assert_eq!(verdict(&f, "504.backend-slow"), Some(Verdict::RuledOut));
    }

    #[test]
    fn short_client_timeout_against_a_consistent_backend() {
        let f = findings(both_sides(
            answers(200, &[302.0, 301.0, 303.0, 302.0]),
            answers(200, &[300.0, 300.5, 301.0, 300.0]),
            Some(100),
        ));
        assert_eq!(
            verdict(&f, "499.client-timeout-short"),
            Some(Verdict::Confirmed)
        );
        assert_eq!(verdict(&f, "499.backend-slow"), Some(Verdict::RuledOut));
        let why = text(&f, "499.client-timeout-short");
        assert!(why.contains("recommended client timeout: 700 ms"), "{why}");
    }

    #[test]
    fn backend_slow_at_times_against_a_sound_client_timeout() {
        let f = findings(both_sides(
            answers(200, &[21.0, 20.0, 22.0, 20.0, 902.0]),
            answers(200, &[20.0, 20.0, 20.0, 20.0, 900.0]),
            Some(500),
        ));
        assert_eq!(verdict(&f, "499.backend-slow"), Some(Verdict::Confirmed));
        assert_eq!(
            verdict(&f, "499.client-timeout-short"),
            Some(Verdict::RuledOut)
        );
    }

    #[test]
    fn requests_within_the_client_timeout_rule_both_499s_out() {
        let f = findings(both_sides(
            answers(200, &[50.0, 52.0]),
            answers(200, &[49.0, 50.0]),
            Some(1000),
        ));
        assert_eq!(verdict(&f, "499.backend-slow"), Some(Verdict::RuledOut));
        assert_eq!(
            verdict(&f, "499.client-timeout-short"),
            Some(Verdict::RuledOut)
        );
    }

    #[test]
    fn retransmits_or_high_rtt_confirm_network_loss() {
        let mut lossy = answers(200, &[5.0, 5.0]);
        lossy[1].tcp_retransmits = Some(3);
        let f = findings(latency(Role::Listener, lossy, None));
        assert_eq!(
            verdict(&f, "408.network-rtt-loss"),
            Some(Verdict::Confirmed)
        );
        assert!(text(&f, "499.network-rtt-loss").contains("3 retransmitted segments"));

        // Neighbour: the same retransmissions to a listener on loopback are the host's own
        // (an overflowing listen queue under load), not a lossy path.
        let mut local = answers(200, &[5.0, 5.0]);
        local[1].tcp_retransmits = Some(3);
        for e in &mut local {
            e.peer = Some("127.0.0.1:8443".into());
        }
        let f = findings(latency(Role::Listener, local, None));
        assert_eq!(
            verdict(&f, "408.network-rtt-loss"),
            Some(Verdict::Inconclusive)
        );
        assert!(text(&f, "408.network-rtt-loss").contains("on loopback (127.0.0.1)"));
        let mut remote = answers(200, &[5.0, 5.0]);
        remote[1].tcp_retransmits = Some(3);
        for e in &mut remote {
            e.peer = Some("192.0.2.10:443".into());
        }
        let f = findings(latency(Role::Listener, remote, None));
        assert_eq!(
            verdict(&f, "408.network-rtt-loss"),
            Some(Verdict::Confirmed)
        );

        // One retransmission happens on any busy host: not enough to blame the path.
        let mut once = answers(200, &[5.0, 5.0]);
        once[1].tcp_retransmits = Some(1);
        let f = findings(latency(Role::Listener, once, None));
        assert_eq!(
            verdict(&f, "408.network-rtt-loss"),
            Some(Verdict::Inconclusive)
        );
        assert_eq!(
            verdict(&f, "408.bandwidth-throttled"),
            Some(Verdict::Inconclusive)
        );

        let mut far = answers(200, &[600.0, 600.0]);
        for e in &mut far {
            e.tcp_rtt_us = Some(250_000);
        }
        let f = findings(latency(Role::Listener, far, None));
        assert_eq!(
            verdict(&f, "499.network-rtt-loss"),
            Some(Verdict::Confirmed)
        );
    }

    #[test]
    fn the_baseline_alone_speaks_to_reachability_only() {
        let refused = obs(
            Family::Protocol,
            "baseline",
            Role::Backend,
            Some(never_connected(ConnEnd::ConnectRefused, 0.1)),
            Detail::None,
        );
        let f = findings(vec![refused]);
        assert_eq!(
            verdict(&f, "502.backend-unreachable"),
            Some(Verdict::Confirmed)
        );
        assert_eq!(verdict(&f, "504.connect-timeout"), None);
        assert_eq!(verdict(&f, "408.network-rtt-loss"), None);

        let ok = obs(
            Family::Protocol,
            "baseline",
            Role::Backend,
            Some(ex(Some(200), 3.0)),
            Detail::None,
        );
        let f = findings(vec![ok]);
        assert_eq!(
            verdict(&f, "502.backend-unreachable"),
            Some(Verdict::RuledOut)
        );
    }

    /// A line as nginx logs it with lbprobe's format: `upstream_response_time` as long as
    /// `request_time`, as in tests/access_log_timing.rs.
    fn line(status: u16, upstream: &[u16], request_time_s: f64) -> LoggedLine {
        LoggedLine {
            marker: "ab12-3".into(),
            line: 1,
            status,
            upstream_status: Some(upstream.to_vec()),
            request_time_s: Some(request_time_s),
            upstream_response_time_s: Some(request_time_s),
            upstream_connect_time_s: Some(0.0),
            termination: None,
        }
    }

    /// The listener's latency requests get these lines, in order (`None`: none was found).
    fn logged(mut o: Vec<Observation>, lines: &[Option<LoggedLine>]) -> Vec<Observation> {
        let requests = o.iter_mut().filter(|o| {
            o.role == Role::Listener && o.family == Family::Latency && o.variant != "stats"
        });
        for (o, line) in requests.zip(lines) {
            o.logged = line.clone();
        }
        o
    }

    #[test]
    fn a_request_we_left_logged_as_499_is_stated_and_decides_nothing_on_its_own() {
        // Every request left at 1 s (the run's timeout) on both sides: no valid answer, so
        // nothing measured says short timeout or slow backend. The 499 line is stated, the
        // verdicts stay inconclusive.
        let left = || both_sides(vec![ex(None, 1000.0)], vec![ex(None, 1000.0)], Some(1000));
        let no_line = findings(left());
        let f = findings(logged(left(), &[Some(line(499, &[], 1.002))]));
        for id in ["499.client-timeout-short", "499.backend-slow"] {
            assert_eq!(verdict(&no_line, id), Some(Verdict::Inconclusive), "{id}");
            assert!(
                !text(&no_line, id).contains("logged"),
                "{}",
                text(&no_line, id)
            );
            assert_eq!(verdict(&f, id), Some(Verdict::Inconclusive), "{id}");
            let why = text(&f, id);
            for words in [
                "request-1: we left it without an answer after 1.0 s",
                "the listener logged 499 for it, upstream_status -, request_time 1.0 s",
                "marker ab12-3",
                "it records our leaving as a client abort",
                "still waiting for its backend (upstream_status -): a client that waits 1.0 s leaves it too",
            ] {
                assert!(why.contains(words), "{id}: {words:?} not in {why}");
            }
        }
        // The gateway rules' "no answer within our wait": the line says it was the backend
        // the listener waited for.
        let slow = text(&f, "504.backend-slow");
        assert_eq!(verdict(&f, "504.backend-slow"), Some(Verdict::Inconclusive));
        assert!(
            slow.contains("it was still waiting for its backend when we left"),
            "{slow}"
        );
        assert!(!text(&no_line, "504.backend-slow").contains("logged"));

        // Where the measurements confirm the short timeout (a consistent 300 ms backend,
        // clients that wait 100 ms), the 499 of the request we left joins the reason.
        let confirmed = || {
            both_sides(
                vec![
                    ex(Some(200), 302.0),
                    ex(Some(200), 301.0),
                    ex(Some(200), 303.0),
                    ex(None, 2000.0),
                ],
                answers(200, &[300.0, 300.5, 301.0, 300.0]),
                Some(100),
            )
        };
        let no_line = findings(confirmed());
        let f = findings(logged(
            confirmed(),
            &[None, None, None, Some(line(499, &[], 2.001))],
        ));
        for f in [&no_line, &f] {
            assert_eq!(
                verdict(f, "499.client-timeout-short"),
                Some(Verdict::Confirmed)
            );
            assert_eq!(verdict(f, "499.backend-slow"), Some(Verdict::RuledOut));
        }
        let why = &f["499.client-timeout-short"].reason;
        assert!(
            why.contains(
                "the listener logged 499 for 1 request we left without an answer after 2.0 s"
            ),
            "{why}"
        );
        assert!(
            why.contains("a client that waits 100 ms leaves it too"),
            "{why}"
        );
    }

    #[test]
    fn a_listener_that_logged_504_before_the_clients_timeout_rules_the_499s_out() {
        // nginx gives up after 1 s (504), the backend needs 2.5 s, clients wait 2 s: no client
        // ever waits long enough to leave. The two 504s at one moment are the listener's own
        // timeout, measured, and rule both 499 causes out; the 504 lines say the same in the
        // listener's words.
        let run = |client_ms| {
            both_sides(
                answers(504, &[1000.0, 1000.0]),
                answers(200, &[2500.0, 2500.0]),
                Some(client_ms),
            )
        };
        let gave_up = || Some(line(504, &[504], 1.001));
        let no_line = findings(run(2000));
        for id in ["499.client-timeout-short", "499.backend-slow"] {
            assert_eq!(verdict(&no_line, id), Some(Verdict::RuledOut), "{id}");
            let why = text(&no_line, id);
            assert!(
                why.contains("the listener answers 504 itself after 1.0 s (measured), before the clients' 2 s run out"),
                "{why}"
            );
        }
        let f = findings(logged(run(2000), &[gave_up(), gave_up()]));
        for id in ["499.client-timeout-short", "499.backend-slow"] {
            assert_eq!(verdict(&f, id), Some(Verdict::RuledOut), "{id}");
            let why = text(&f, id);
            for words in [
                "the listener itself ended 2 of the 2 requests through it, logging 504 after 1.0 s (its request_time), before the clients' 2.0 s",
                "so these clients get 504, not 499 (see 504.backend-slow)",
                "request-1: the listener logged 504 for it, upstream_status 504, request_time 1.0 s",
            ] {
                assert!(why.contains(words), "{id}: {words:?} not in {why}");
            }
        }
        // The 504 causes keep what was measured.
        assert_eq!(verdict(&f, "504.backend-slow"), Some(Verdict::Confirmed));

        // One request without a line: the measured 504s still speak for every request.
        let f = findings(logged(run(2000), &[gave_up(), None]));
        let short = &f["499.client-timeout-short"];
        assert_eq!(short.verdict, Verdict::RuledOut, "{}", short.reason);

        // Clients that leave after 800 ms do so before nginx's 504 at 1 s: the 504 lines do not
        // speak against their 499s, and the verdicts stay as measured.
        let f = findings(logged(run(800), &[gave_up(), gave_up()]));
        for id in ["499.client-timeout-short", "499.backend-slow"] {
            assert_eq!(verdict(&f, id), Some(Verdict::Confirmed), "{id}");
            assert!(!text(&f, id).contains("itself ended"), "{}", text(&f, id));
        }
    }

    /// A line as HAProxy 2.6 logs it (`option httplog`), as measured in
    /// tests/access_log_timing.rs: `tr_s` None for its Tr -1 (no response headers from the
    /// server), which lbprobe reads as no upstream status.
    fn haproxy_line(status: u16, term: &str, tr_s: Option<f64>, ta_s: f64) -> LoggedLine {
        LoggedLine {
            marker: "ab12-5".into(),
            line: 1,
            status,
            upstream_status: Some(tr_s.map(|_| vec![status]).unwrap_or_default()),
            request_time_s: Some(ta_s),
            upstream_response_time_s: tr_s,
            upstream_connect_time_s: Some(0.0),
            termination: Some(term.into()),
        }
    }

    #[test]
    fn a_haproxy_that_logged_504_sh_before_the_clients_timeout_rules_the_499s_out_in_its_words() {
        // `0/0/0/-1/1001 504 … sH--`: HAProxy's `timeout server 1s` struck first, as nginx's
        // 504 did above, and the findings say it with HAProxy's fields.
        let run = both_sides(
            answers(504, &[1000.0, 1000.0]),
            answers(200, &[2000.0, 2000.0]),
            Some(1500),
        );
        let sh = || Some(haproxy_line(504, "sH", None, 1.001));
        let f = findings(logged(run, &[sh(), sh()]));
        for id in ["499.client-timeout-short", "499.backend-slow"] {
            assert_eq!(verdict(&f, id), Some(Verdict::RuledOut), "{id}");
            let why = text(&f, id);
            for words in [
                "the listener itself ended 2 of the 2 requests through it, logging 504 after 1.0 s (its Ta), before the clients' 1.5 s",
                "request-1: HAProxy logged 504 sH for it (its server timeout struck while it waited for the server's response headers), Tr -1, Ta 1.0 s (its access-log line found by the probe's marker ab12-5)",
                "so a client gets 504, not 499 (see 504.backend-slow)",
            ] {
                assert!(why.contains(words), "{id}: {words:?} not in {why}");
            }
            assert!(!why.contains("upstream_status"), "{why}");
        }
    }

    #[test]
    fn a_request_we_left_that_haproxy_logged_ch_is_stated_as_a_client_abort() {
        // `0/0/1/-1/1001 400 206 - - CH--`: HAProxy with `option abortonclose` logs our leaving
        // (a FIN) as its client abort while it waited for the server's headers. As nginx's 499,
        // it is stated and decides nothing on its own.
        let left = || both_sides(vec![ex(None, 1000.0)], vec![ex(None, 1000.0)], Some(1000));
        let no_line = findings(left());
        let ch = Some(haproxy_line(400, "CH", None, 1.001));
        let f = findings(logged(left(), &[ch]));
        for id in ["499.client-timeout-short", "499.backend-slow"] {
            assert_eq!(verdict(&f, id), verdict(&no_line, id), "{id}");
            assert_eq!(verdict(&f, id), Some(Verdict::Inconclusive), "{id}");
            let why = text(&f, id);
            for words in [
                "HAProxy logged 400 CH for 1 request we left without an answer after 1.0 s, its record of a client that aborted while it waited for the server's response headers: a client that waits 1.0 s leaves it too",
                "request-1: we left it without an answer after 1.0 s; HAProxy logged 400 CH for it (the client aborted while it waited for the server's response headers), Tr -1, Ta 1.0 s (its access-log line found by the probe's marker ab12-5): it records our leaving as a client abort",
            ] {
                assert!(why.contains(words), "{id}: {words:?} not in {why}");
            }
        }
        let slow = text(&f, "504.backend-slow");
        assert_eq!(verdict(&f, "504.backend-slow"), Some(Verdict::Inconclusive));
        assert!(
            slow.contains("it was still waiting for its backend when we left"),
            "{slow}"
        );

        // A client that resets: `-1 0 … CD--` with Tr -1, measured by hand; its -1 is shown as
        // HAProxy writes it.
        let cd = Some(haproxy_line(0, "CD", None, 1.002));
        let why = text(&findings(logged(left(), &[cd])), "499.backend-slow");
        assert!(
            why.contains("HAProxy logged -1 CD for it (the client aborted before any response header came from the server), Tr -1"),
            "{why}"
        );

        // Not a client abort: the server's headers had come (`CD` with a Tr), or it was the
        // client's request HAProxy waited for (`CR`), or the server left (`SH`).
        for line in [
            haproxy_line(200, "CD", Some(3.0), 3.2),
            haproxy_line(400, "CR", None, 1.0),
            haproxy_line(502, "SH", None, 3.0),
        ] {
            let f = findings(logged(left(), &[Some(line.clone())]));
            for id in ["499.client-timeout-short", "499.backend-slow"] {
                assert_eq!(f[id].reason, no_line[id].reason, "{line:?}");
                assert!(!text(&f, id).contains("client abort"), "{line:?}");
            }
        }
    }

    #[test]
    fn a_request_we_left_that_haproxy_logged_as_served_is_no_client_abort() {
        // `0/0/0/3003/3003 200 … ----`: HAProxy 2.6 logs the request we left after 1 s as the
        // server's 200, once the server answered 3 s in. Nothing in it records our leaving,
        // so the findings are those of no line at all.
        let left = || both_sides(vec![ex(None, 1000.0)], vec![ex(None, 1000.0)], Some(1000));
        let no_line = findings(left());
        let served = Some(haproxy_line(200, "--", Some(3.003), 3.003));
        let f = findings(logged(left(), &[served]));
        for id in [
            "499.client-timeout-short",
            "499.backend-slow",
            "504.backend-slow",
            "502.backend-slow",
        ] {
            assert_eq!(verdict(&f, id), verdict(&no_line, id), "{id}");
            assert_eq!(f[id].reason, no_line[id].reason, "{id}");
            assert!(!text(&f, id).contains("logged"), "{id}: {}", text(&f, id));
        }
    }

    #[test]
    fn durations_read_naturally() {
        for (ms, want) in [
            (0.04, "40 µs"),
            (2.5, "2.5 ms"),
            (300.2, "300 ms"),
            (1500.0, "1.5 s"),
            (60_000.0, "60 s"),
        ] {
            assert_eq!(fmt_ms(ms), want);
        }
    }

    #[test]
    fn recommended_timeouts_round_up_with_headroom() {
        for (p99, want) in [
            (0.4, 100.0),
            (301.0, 700.0),
            (900.0, 2000.0),
            (2_300.0, 5000.0),
            (40_000.0, 80_000.0),
        ] {
            assert_eq!(recommended_client_timeout_ms(p99), want, "p99 {p99}");
        }
    }
}
