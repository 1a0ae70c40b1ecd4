//! What the listener logged for the latency requests through it (`--access-log`), for the
//! client-timeout rules (`499.client-timeout-short`, `499.backend-slow`).
//!
//! The probe sees a request it left without an answer; only the listener's line says what it
//! made of that: nginx logs 499 (`$upstream_status -` while it still waited for the backend),
//! its record of a client abort; HAProxy, with `option abortonclose`, a termination state
//! `CH` with Tr -1 (its status 400 for our FIN; without the option it keeps waiting and logs
//! the server's answer as served: no record of our leaving, see tests/access_log_timing.rs).
//! A request it ended itself with 502 or 504 before the clients' timeout is the opposite:
//! those clients get the gateway error, never the 499. The lines add to what was measured; a
//! client abort's line never raises a verdict on its own, a gateway line only lowers one. The
//! classifier reads the attached line, never the log file.

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
    /// Requests we left without an answer that the listener logged as a client abort (nginx's
    /// 499, HAProxy's `CH`): our leaving, as it records it.
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
                Some(s) if client_abort(s.line) && outcome(ex) == Outcome::TimedOut => {
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
            // HAProxy's name for the same timer is Ta.
            let timer = if first.line.termination.is_some() {
                "Ta"
            } else {
                "request_time"
            };
            let how = format!(
                "the listener itself ended {} of the {} through it, logging {} after {} (its {timer}), before the clients' {}",
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
            let left = count(self.left.len(), "request");
            let after = fmt_timeout(waited);
            d.reason = match &first.line.termination {
                Some(term) => format!(
                    "{}; HAProxy logged {} {term} for {left} we left without an answer after {after}, its record of a client that aborted {}{also}",
                    d.reason,
                    haproxy_status(first.line.status),
                    haproxy_waiting(term).unwrap_or("while it waited for its server"),
                ),
                None => {
                    let upstream = match first.line.upstream_status.as_deref() {
                        Some([]) => ", still waiting for its backend (upstream_status -)",
                        _ => "",
                    };
                    format!(
                        "{}; the listener logged 499 for {left} we left without an answer after {after}{upstream}{also}",
                        d.reason
                    )
                }
            };
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
/// upstream_response_time 1.0 s (its access-log line found by the probe's marker ab12-3)`;
/// a HAProxy line (the only one with a termination state) in HAProxy's:
/// `HAProxy logged 504 sH for it (…), Tr -1, Ta 1.0 s (…)`.
pub(super) fn logged_for_it(line: &LoggedLine) -> String {
    let secs = |v: Option<f64>| v.map(|s| fmt_timeout(s * 1000.0));
    if let Some(term) = &line.termination {
        // HAProxy has no upstream_status: what the line says of the server is its Tr, -1
        // when no response headers came from it (lbprobe's upstream_status `-` then).
        return format!(
            "HAProxy logged {} {term} for it{}, Tr {}, Ta {} (its access-log line found by the probe's marker {})",
            haproxy_status(line.status),
            haproxy_termination(term)
                .map(|what| format!(" ({what})"))
                .unwrap_or_default(),
            secs(line.upstream_response_time_s).unwrap_or_else(|| "-1".to_string()),
            secs(line.request_time_s).unwrap_or_else(|| "-1".to_string()),
            line.marker
        );
    }
    let mut parts = vec![format!("the listener logged {} for it", line.status)];
    parts.extend(line.upstream_status_text());
    let named = |name: &str, v: Option<f64>| secs(v).map(|t| format!("{name} {t}"));
    parts.extend(named("request_time", line.request_time_s));
    parts.extend(named(
        "upstream_response_time",
        line.upstream_response_time_s,
    ));
    format!(
        "{} (its access-log line found by the probe's marker {})",
        parts.join(", "),
        line.marker
    )
}

/// Whether the line records a client that left while the listener still waited for its
/// backend: nginx's 499; HAProxy's termination state `C` (the client aborted) in a phase of
/// waiting for the server (`Q` queue, `C` connecting, `H` response headers; `D` when Tr is -1,
/// as it logs a client that resets before the headers came) with no response headers from
/// it (Tr -1). Measured with HAProxy 2.6 and `option abortonclose`: `400 CH` for a client
/// that closes (as lbprobe does), `-1 CD` for one that resets.
fn client_abort(line: &LoggedLine) -> bool {
    match &line.termination {
        None => line.status == 499,
        Some(term) => {
            term.starts_with('C')
                && haproxy_waiting(term).is_some()
                && line.upstream_response_time_s.is_none()
        }
    }
}

/// The phase of waiting for the server that HAProxy's termination state names (its second
/// letter), for a client abort.
fn haproxy_waiting(term: &str) -> Option<&'static str> {
    match term.as_bytes().get(1) {
        Some(b'Q') => Some("while it waited in the queue for a server"),
        Some(b'C') => Some("while it waited for the connection to the server"),
        Some(b'H') => Some("while it waited for the server's response headers"),
        Some(b'D') => Some("before any response header came from the server"),
        _ => None,
    }
}

/// HAProxy's status as its log writes it: -1 where it sent no answer (0 in [`LoggedLine`]).
fn haproxy_status(status: u16) -> String {
    if status == 0 {
        "-1".to_string()
    } else {
        status.to_string()
    }
}

/// What HAProxy's termination state says (HAProxy's configuration manual, "Session state at
/// disconnection"), for the states these rules read: a gateway error it ended the request
/// with, or a client abort while it waited for the server.
fn haproxy_termination(term: &str) -> Option<String> {
    match term {
        "sH" => Some(
            "its server timeout struck while it waited for the server's response headers".into(),
        ),
        "SH" => Some("the server closed or failed before sending complete response headers".into()),
        t if t.starts_with('C') => haproxy_waiting(t).map(|w| format!("the client aborted {w}")),
        _ => None,
    }
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
/// logged as a client abort with no upstream status (nginx's 499 with `-`, HAProxy's `CH` with
/// Tr -1) were still waiting for the backend, so what the listener waits for is its backend,
/// longer than we waited.
pub(super) fn still_waiting(mut d: Draft, l: &Probed<'_>) -> Draft {
    let waiting = l.requests.iter().filter_map(|&(o, ex)| {
        let line = o.logged.as_ref()?;
        (client_abort(line)
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
