//! What the listener logged for the latency requests through it (`--access-log`), for the
//! client-timeout rules (`499.client-timeout-short`, `499.backend-slow`).
//!
//! The probe sees a request it left without an answer; only the listener's line says what it
//! made of that: nginx logs 499 (`$upstream_status -` while it still waited for the backend),
//! its record of a client abort. A request it ended itself with 502 or 504 before the clients'
//! timeout is the opposite: those clients get the gateway error, never the 499. The lines add
//! to what was measured; a 499 line never raises a verdict on its own, a gateway line only
//! lowers one. The classifier reads the attached line, never the log file.

use crate::logs::probe_line::LoggedLine;
use crate::probe::latency::{outcome, Outcome};
use crate::probe::Observation;
use crate::transport::Exchange;

use super::{fmt_timeout, Probed};
use crate::classify::{Draft, Verdict};

/// Evidence lines per kind of line, so many latency requests do not bury the finding.
const SHOWN: usize = 3;

/// One latency request through the listener and the line its log holds for it.
struct Seen<'a> {
    o: &'a Observation,
    ex: &'a Exchange,
    line: &'a LoggedLine,
}

impl Seen<'_> {
    /// How long the request lasted for the listener: its own `request_time`, else ours.
    fn ms(&self) -> f64 {
        self.line
            .request_time_s
            .map_or(self.ex.timings.total_ms, |s| s * 1000.0)
    }
}

/// The listener's lines for the latency requests through it, sorted by what they say.
pub(super) struct ListenerLog<'a> {
    /// Requests we left without an answer that the listener logged as 499: our leaving, as it
    /// records a client abort.
    left: Vec<Seen<'a>>,
    /// Requests the listener logged as 502 or 504 before the clients' timeout: it ended them
    /// itself, and such clients get that error, not a 499.
    ended: Vec<Seen<'a>>,
    /// Requests that ran to the clients' timeout or beyond without a line that says the
    /// listener ended them first (no line, another status, no timeout declared).
    past: usize,
    /// Latency requests through the listener.
    total: usize,
}

impl<'a> ListenerLog<'a> {
    /// `client_ms`: the clients' declared timeout.
    pub(super) fn of(l: &Probed<'a>, client_ms: Option<f64>) -> ListenerLog<'a> {
        let mut log = ListenerLog {
            left: Vec::new(),
            ended: Vec::new(),
            past: 0,
            total: l.requests.len(),
        };
        for &(o, ex) in &l.requests {
            let seen = o.logged.as_ref().map(|line| Seen { o, ex, line });
            let within = |ms: f64| client_ms.is_some_and(|c| ms < c);
            match seen {
                Some(s) if s.line.status == 499 && outcome(ex) == Outcome::TimedOut => {
                    log.left.push(s)
                }
                Some(s) if matches!(s.line.status, 502 | 504) && within(s.ms()) => {
                    log.ended.push(s)
                }
                _ if ex.status().is_some_and(|s| s < 500) && within(ex.timings.total_ms) => {}
                _ => log.past += 1,
            }
        }
        log
    }

    fn is_empty(&self) -> bool {
        self.left.is_empty() && self.ended.is_empty()
    }

    /// The client-timeout drafts with what the listener logged: evidence always, and a
    /// verdict lowered where its own gateway error came before the clients' timeout.
    pub(super) fn apply(&self, drafts: Vec<Draft>, client_ms: Option<f64>) -> Vec<Draft> {
        if self.is_empty() {
            return drafts;
        }
        drafts
            .into_iter()
            .map(|d| self.apply_one(d, client_ms))
            .collect()
    }

    fn apply_one(&self, mut d: Draft, client_ms: Option<f64>) -> Draft {
        if let (Some(first), Some(c)) = (self.ended.first(), client_ms) {
            let see = first.line.status;
            let got = codes(&self.ended);
            let how = format!(
                "the listener itself ended {} of the {} through it, logging {} after {} (its request_time), before the clients' {}",
                self.ended.len(),
                count(self.total, "request"),
                got,
                times(&self.ended),
                fmt_timeout(c)
            );
            if self.past == 0 && self.left.is_empty() {
                // Every request through the listener finished within the clients' timeout or
                // was ended by the listener before it: none is left for a client to abandon.
                d.verdict = Verdict::RuledOut;
                d.reason = format!(
                    "{how}: its own timeout comes first, so these clients get {got}, not 499 (see {see}.backend-slow)"
                );
            } else if d.verdict == Verdict::Confirmed {
                d.verdict = Verdict::Inconclusive;
                d.reason = format!(
                    "{how}, but for {} of the others no line says the listener ended it before then: which ending these clients meet is unsettled (measured: {})",
                    self.past + self.left.len(),
                    d.reason
                );
            }
        }
        if let Some(first) = self.left.first() {
            let waited = first.ex.timings.total_ms;
            let also = match client_ms {
                Some(c) if c <= waited + super::tolerance(waited) => format!(
                    ": a client that waits {} leaves {} too, and is logged the same way",
                    fmt_timeout(c),
                    if self.left.len() == 1 { "it" } else { "them" }
                ),
                _ => ": it records our leaving as a client abort".to_string(),
            };
            let upstream = match first.line.upstream_status.as_deref() {
                Some([]) => ", still waiting for its backend (upstream_status -)",
                _ => "",
            };
            d.reason = format!(
                "{}; the listener logged 499 for {} we left without an answer after {}{upstream}{also}",
                d.reason,
                count(self.left.len(), "request"),
                fmt_timeout(waited)
            );
        }
        for s in self.ended.iter().take(SHOWN) {
            let code = s.line.status;
            d = d.with(
                format!(
                    "{}: {}: it ended the request itself{}, so a client gets {code}, not 499 (see {code}.backend-slow)",
                    s.o.variant,
                    logged_for_it(s.line),
                    client_ms
                        .map(|c| format!(", before the clients' {}", fmt_timeout(c)))
                        .unwrap_or_default()
                ),
                &[s.o],
            );
        }
        for s in self.left.iter().take(SHOWN) {
            d = d.with(
                format!(
                    "{}: we left it without an answer after {}; {}: it records our leaving as a client abort",
                    s.o.variant,
                    fmt_timeout(s.ex.timings.total_ms),
                    logged_for_it(s.line)
                ),
                &[s.o],
            );
        }
        let hidden = self.ended.len().saturating_sub(SHOWN) + self.left.len().saturating_sub(SHOWN);
        if hidden > 0 {
            let refs: Vec<&Observation> = self
                .ended
                .iter()
                .skip(SHOWN)
                .chain(self.left.iter().skip(SHOWN))
                .map(|s| s.o)
                .collect();
            d = d.with(
                format!("{} more logged the same way", count(hidden, "request")),
                &refs,
            );
        }
        d
    }
}

/// What the listener logged for one request, in the words of its access log:
/// `the listener logged 499 for it, upstream_status -, request_time 1.0 s,
/// upstream_response_time 1.0 s (its access-log line found by the probe's marker ab12-3)`.
pub(super) fn logged_for_it(line: &LoggedLine) -> String {
    let mut parts = vec![format!("the listener logged {} for it", line.status)];
    if let Some(up) = &line.upstream_status {
        let list: Vec<String> = up.iter().map(u16::to_string).collect();
        parts.push(format!(
            "upstream_status {}",
            if list.is_empty() {
                "-".to_string()
            } else {
                list.join(", ")
            }
        ));
    }
    let secs =
        |name: &str, v: Option<f64>| v.map(|s| format!("{name} {}", fmt_timeout(s * 1000.0)));
    parts.extend(secs("request_time", line.request_time_s));
    parts.extend(secs(
        "upstream_response_time",
        line.upstream_response_time_s,
    ));
    format!(
        "{} (its access-log line found by the probe's marker {})",
        parts.join(", "),
        line.marker
    )
}

fn count(n: usize, what: &str) -> String {
    crate::plural::count(n, what)
}

/// `504`, `502 or 504`.
fn codes(seen: &[Seen<'_>]) -> String {
    let mut codes: Vec<u16> = seen.iter().map(|s| s.line.status).collect();
    codes.sort_unstable();
    codes.dedup();
    let codes: Vec<String> = codes.iter().map(u16::to_string).collect();
    codes.join(" or ")
}

/// `1.0 s`, `1.0 s to 1.2 s`.
fn times(seen: &[Seen<'_>]) -> String {
    let ms: Vec<f64> = seen.iter().map(Seen::ms).collect();
    let lo = fmt_timeout(ms.iter().copied().fold(f64::INFINITY, f64::min));
    let hi = fmt_timeout(ms.iter().copied().fold(0.0, f64::max));
    if lo == hi {
        lo
    } else {
        format!("{lo} to {hi}")
    }
}

/// For the gateway rules' "no answer within our wait": the requests we left that the listener
/// logged as 499 with no upstream status were still waiting for the backend, so what the
/// listener waits for is its backend, longer than we waited.
pub(super) fn still_waiting(mut d: Draft, l: &Probed<'_>) -> Draft {
    let waiting = l.requests.iter().filter_map(|&(o, ex)| {
        let line = o.logged.as_ref()?;
        (line.status == 499
            && outcome(ex) == Outcome::TimedOut
            && line.upstream_status.as_deref() == Some(&[]))
        .then_some(Seen { o, ex, line })
    });
    for s in waiting.take(SHOWN) {
        d = d.with(
            format!(
                "{}: we left it without an answer after {}; {}: it was still waiting for its backend when we left, so its read timeout is longer than our wait",
                s.o.variant,
                fmt_timeout(s.ex.timings.total_ms),
                logged_for_it(s.line)
            ),
            &[s.o],
        );
    }
    d
}
