//! The `keepalive` family: how long each side keeps an idle keep-alive connection usable, and,
//! on request, the keep-alive race provoked through the listener.
//!
//! A trial opens one connection, sends a request, leaves the connection idle for a gap while
//! watching it, then sends a second request on it. A server that closes idle connections eagerly
//! shows its FIN during the gap (the time is the measurement); one that closes lazily leaves the
//! socket open and drops the second request, so the gap is bisected. Trials of one round run at
//! once, one connection each, so a round costs its longest gap, not their sum; once a gap fails,
//! the longer ones of the round are abandoned. Every wait is capped by the scenario's
//! `max-wait` and the run's remaining time.

use std::time::Duration;

use futures_util::stream::{FuturesUnordered, StreamExt};
use serde::Serialize;
use tokio::sync::watch;

use crate::target::Role;
use crate::transport::keepalive::{IdleEnd, KeepAliveConn};
use crate::transport::Exchange;

use super::context::{Engine, ErrorBudget, Planned, Side, Via};
use super::request::{build, USER_AGENT};
use super::{Detail, Family, Observation};

/// The variant measuring a side's idle timeout.
pub const IDLE_TIMEOUT: &str = "idle-timeout";
/// The variant provoking the race through the listener.
pub const RACE: &str = "race-reproduce";
/// Requests the race reproduction sends: enough to see a race that hits every other request,
/// few enough to stay gentle (each waits out the backend's idle timeout).
pub const RACE_REQUESTS: u32 = 6;
/// Gaps of the first round (seconds), below the cap; the cap itself is always tried.
const FIRST_ROUND: [f64; 11] = [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 45.0, 60.0, 90.0];
/// Gaps tried between the longest answered and the shortest refused gap, per refining round.
const REFINE_GAPS: usize = 4;
const REFINE_ROUNDS: usize = 2;
/// Refining stops once the bracket is this narrow (relative, and absolute seconds).
const PRECISION: f64 = 0.1;
const MIN_BRACKET: f64 = 0.05;
/// How long longer trials keep watching after a shorter gap failed: a server that closes
/// eagerly sends its FIN at about the moment our request after the shorter gap went unanswered,
/// and the longer trials still watching see it; that close is the better measurement.
const GRACE: Duration = Duration::from_millis(500);

/// What the family found on one side, or what the race did.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum KeepaliveDetail {
    Idle(IdleResult),
    Race(RaceResult),
}

/// A side's idle keep-alive timeout and the trials behind it.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct IdleResult {
    pub timeout: IdleTimeout,
    /// The longest gap the probe was prepared to try (ms).
    pub cap_ms: f64,
    /// Every finished trial, shortest gap first.
    pub trials: Vec<Trial>,
}

/// How long a side keeps an idle connection usable.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum IdleTimeout {
    /// It does not keep connections alive (`Connection: close`, or a close-delimited answer):
    /// nothing idle to reuse.
    NoReuse { why: String },
    /// It closes (FIN or RST) idle connections after this long.
    Eager { after_ms: f64 },
    /// It leaves idle connections open but drops a request sent after the timeout: somewhere
    /// between the longest gap answered (0 when none was) and the shortest gap refused.
    Lazy { answered_ms: f64, refused_ms: f64 },
    /// Every gap up to the cap was answered.
    BeyondCap { answered_ms: f64 },
    /// The probe could not tell (no answer to a first request, connection failures, budget).
    Unknown { why: String },
}

impl IdleTimeout {
    /// The timeout is at most this (ms), when known.
    pub fn at_most_ms(&self) -> Option<f64> {
        match self {
            IdleTimeout::Eager { after_ms } => Some(*after_ms),
            IdleTimeout::Lazy { refused_ms, .. } => Some(*refused_ms),
            _ => None,
        }
    }

    /// The timeout is at least this (ms), when known.
    pub fn at_least_ms(&self) -> Option<f64> {
        match self {
            IdleTimeout::Eager { after_ms } => Some(*after_ms),
            IdleTimeout::Lazy { answered_ms, .. } => Some(*answered_ms),
            IdleTimeout::BeyondCap { answered_ms } => Some(*answered_ms),
            _ => None,
        }
    }
}

/// One connection: a request, an idle gap, another request.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Trial {
    pub gap_ms: f64,
    pub outcome: TrialOutcome,
}

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum TrialOutcome {
    /// The request after the gap was answered.
    Answered { status: u16 },
    /// The side closed the idle connection (FIN) during the gap.
    ClosedIdle { after_ms: f64 },
    /// The side reset the idle connection during the gap.
    ResetIdle { after_ms: f64 },
    /// The request after the gap got no answer: how the connection ended instead.
    Unanswered { end: String },
    /// The side does not keep the connection alive.
    NoReuse { why: String },
    /// The trial could not run.
    Failed { why: String },
}

impl TrialOutcome {
    /// The gap (or the idle time) at which the connection stopped being usable, in seconds.
    fn refused_at(&self, gap: f64) -> Option<f64> {
        match self {
            TrialOutcome::ClosedIdle { after_ms } | TrialOutcome::ResetIdle { after_ms } => {
                Some(after_ms / 1000.0)
            }
            TrialOutcome::Unanswered { .. } => Some(gap),
            _ => None,
        }
    }
}

/// POSTs sent through the listener spaced just past the backend's idle timeout.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct RaceResult {
    pub spacing_ms: f64,
    pub sent: u32,
    /// Answers with 502.
    pub bad_gateway: u32,
    /// Every answer's status, in order (`None`: no answer).
    pub statuses: Vec<Option<u16>>,
    /// Why the reproduction stopped before [`RACE_REQUESTS`], if it did.
    pub stopped: Option<String>,
}

/// The request of every trial: a valid GET that asks to keep the connection open.
fn keepalive_get(side: &Side) -> Vec<u8> {
    format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: {USER_AGENT}\r\nAccept: */*\r\n{}Connection: keep-alive\r\n\r\n",
        side.target.path,
        side.target.host_header(),
        side.extra_lines()
    )
    .into_bytes()
}

/// The race's request: non-idempotent, so that a proxy may not retry it on another connection
/// (nginx and others silently retry a GET that failed on a reused connection).
fn race_post(side: &Side) -> Vec<u8> {
    build(
        "POST",
        side,
        &[("Content-Type", "text/plain".to_string())],
        Some(b"lbprobe keep-alive race probe\n"),
    )
}

/// The trials' GET, sent over connections the family holds itself (never marked).
fn idle_request(side: &Side) -> Planned {
    side.planned(
        Family::Keepalive,
        IDLE_TIMEOUT,
        Via::OwnConnection,
        keepalive_get(side),
    )
}

/// The race's POST, through the engine.
fn race_request(listener: &Side) -> Planned {
    listener.planned(Family::Keepalive, RACE, Via::Raw, race_post(listener))
}

/// The requests the family sends a side, once each: the trials' GET, and with `reproduce` the
/// race's POST to the listener (sent only once the backend's idle timeout is measured). How
/// often each goes out depends on the answers (see [`rest`]).
pub fn plan(side: &Side, reproduce: bool) -> Vec<Planned> {
    let mut out = vec![idle_request(side)];
    if reproduce && side.role() == Role::Listener {
        out.push(race_request(side));
    }
    out
}

/// What a plan cannot show: how many connections and gaps.
pub fn rest(max_wait: Duration) -> String {
    format!(
        "keepalive sends its GET twice per connection, on up to {} connections per side at once, \
         with idle gaps between them chosen as it goes (up to {:.0} s), then bisects; with \
         reproduce it sends up to {RACE_REQUESTS} POSTs to the listener, spaced just past the \
         backend's idle timeout",
        FIRST_ROUND.len() + 2,
        max_wait.as_secs_f64()
    )
}

pub async fn run(
    engine: &Engine,
    sides: &[Side],
    max_wait: Duration,
    reproduce: bool,
) -> Vec<Observation> {
    let measured =
        futures_util::future::join_all(sides.iter().map(|side| measure(engine, side, max_wait)))
            .await;
    let mut backend_timeout = None;
    let mut out = Vec::new();
    for (side, (result, first)) in sides.iter().zip(measured) {
        if side.role() == Role::Backend {
            backend_timeout = Some(result.timeout.clone());
        }
        out.push(engine.observation(
            Family::Keepalive,
            IDLE_TIMEOUT,
            side,
            true,
            &["502.keepalive-race"],
            engine.sent(&side.endpoint, &idle_request(side).bytes, true),
            first,
            Detail::Keepalive(KeepaliveDetail::Idle(result)),
        ));
    }
    if !reproduce {
        return out;
    }
    let Some(listener) = sides.iter().find(|s| s.role() == Role::Listener) else {
        engine.note("keepalive: reproduce needs a listener; skipped");
        return out;
    };
    let window = engine.profile.keepalive_window().value.as_secs_f64();
    let upper = backend_timeout
        .as_ref()
        .and_then(IdleTimeout::at_most_ms)
        .map(|ms| ms / 1000.0);
    match upper {
        Some(upper) if upper < window => {
            // Past the timeout by a margin, and still inside the listener's reuse window.
            let spacing = (upper * 1.15 + 0.1).min((upper + window) / 2.0);
            out.push(race(engine, listener, Duration::from_secs_f64(spacing)).await);
        }
        Some(upper) => engine.note(format!(
            "keepalive: reproduce skipped, the backend's idle timeout ({upper:.1} s) is not \
             shorter than the listener's reuse window ({window:.0} s)"
        )),
        None => engine.note(
            "keepalive: reproduce skipped, the backend's idle timeout was not measured \
             (it needs a backend target and a timeout below max-wait)",
        ),
    }
    out
}

/// Measure one side's idle timeout: a quick check that it keeps connections alive at all, then
/// a round of gaps up to the cap, then rounds narrowing the bracket. Returns the result and the
/// first exchange seen (for the report).
async fn measure(
    engine: &Engine,
    side: &Side,
    max_wait: Duration,
) -> (IdleResult, Option<Exchange>) {
    let cap = max_wait.min(engine.budget.remaining()).as_secs_f64();
    let mut trials: Vec<Trial> = Vec::new();
    let finish = |timeout, trials: Vec<Trial>, first| {
        (
            IdleResult {
                timeout,
                cap_ms: cap * 1000.0,
                trials,
            },
            first,
        )
    };

    // Back to back first: one connection says whether there is anything to measure.
    let (check, first) = trial(engine, side, 0.0).await;
    match &check.outcome {
        TrialOutcome::Answered { .. } => {}
        TrialOutcome::NoReuse { why } => {
            let why = why.clone();
            return finish(IdleTimeout::NoReuse { why }, vec![check], first);
        }
        other => {
            let why = match other {
                TrialOutcome::Failed { why } => why.clone(),
                _ => "the connection was not usable even without an idle gap".to_string(),
            };
            return finish(IdleTimeout::Unknown { why }, vec![check], first);
        }
    }

    let mut gaps: Vec<f64> = FIRST_ROUND.into_iter().filter(|g| *g < cap).collect();
    gaps.push(cap);
    let mut answered = 0.0_f64;
    let mut refused: Option<f64> = None;
    let mut eager: Option<(f64, bool)> = None;
    for round_no in 0..=REFINE_ROUNDS {
        let done = round(engine, side, &gaps).await;
        for t in &done {
            match &t.outcome {
                TrialOutcome::Answered { .. } => answered = answered.max(t.gap_ms / 1000.0),
                TrialOutcome::ClosedIdle { after_ms } | TrialOutcome::ResetIdle { after_ms } => {
                    let at = after_ms / 1000.0;
                    if eager.is_none_or(|(e, _)| at < e) {
                        eager = Some((at, true));
                    }
                }
                TrialOutcome::Unanswered { .. } => {
                    let gap = t.gap_ms / 1000.0;
                    refused = Some(refused.map_or(gap, |r: f64| r.min(gap)));
                }
                TrialOutcome::NoReuse { .. } | TrialOutcome::Failed { .. } => {}
            }
        }
        let failed = done
            .iter()
            .find_map(|t| match &t.outcome {
                TrialOutcome::Failed { why } | TrialOutcome::NoReuse { why } => Some(why.clone()),
                _ => None,
            })
            .filter(|_| !done.iter().any(|t| t.outcome.refused_at(0.0).is_some()));
        trials.extend(done);
        trials.sort_by(|a, b| a.gap_ms.total_cmp(&b.gap_ms));
        if let Some((after, _)) = eager {
            // The close itself is the measurement: no bisection needed.
            return finish(
                IdleTimeout::Eager {
                    after_ms: after * 1000.0,
                },
                trials,
                first,
            );
        }
        let Some(hi) = refused else {
            if let Some(why) = failed {
                return finish(IdleTimeout::Unknown { why }, trials, first);
            }
            return finish(
                IdleTimeout::BeyondCap {
                    answered_ms: answered * 1000.0,
                },
                trials,
                first,
            );
        };
        let lo = answered.min(hi);
        if round_no == REFINE_ROUNDS || hi - lo <= (hi * PRECISION).max(MIN_BRACKET) {
            break;
        }
        let step = (hi - lo) / (REFINE_GAPS + 1) as f64;
        gaps = (1..=REFINE_GAPS).map(|i| lo + step * i as f64).collect();
    }
    let hi = refused.unwrap_or(cap);
    finish(
        IdleTimeout::Lazy {
            answered_ms: answered.min(hi) * 1000.0,
            refused_ms: hi * 1000.0,
        },
        trials,
        first,
    )
}

/// Run one trial per gap at once; trials whose gap is past a failure already seen are
/// abandoned after [`GRACE`] (the side is assumed to keep failing beyond its timeout).
async fn round(engine: &Engine, side: &Side, gaps: &[f64]) -> Vec<Trial> {
    let (cut_tx, cut_rx) = watch::channel(f64::INFINITY);
    let mut running: FuturesUnordered<_> = gaps
        .iter()
        .map(|&gap| {
            let mut cut = cut_rx.clone();
            async move {
                tokio::select! {
                    (t, _) = trial(engine, side, gap) => Some(t),
                    _ = async {
                        let _ = cut.wait_for(|&at| at < gap).await;
                        tokio::time::sleep(GRACE).await;
                    } => None,
                }
            }
        })
        .collect();
    let mut done = Vec::new();
    while let Some(finished) = running.next().await {
        let Some(t) = finished else { continue };
        if let Some(at) = t.outcome.refused_at(t.gap_ms / 1000.0) {
            cut_tx.send_modify(|cut| *cut = cut.min(at));
        }
        done.push(t);
    }
    done
}

/// One connection: a request, `gap` seconds idle (watched), a second request.
async fn trial(engine: &Engine, side: &Side, gap: f64) -> (Trial, Option<Exchange>) {
    let gap_ms = gap * 1000.0;
    let failed = |why: String, first| {
        (
            Trial {
                gap_ms,
                outcome: TrialOutcome::Failed { why },
            },
            first,
        )
    };
    let request = idle_request(side).bytes;
    if let Err(why) = engine.ticket().await {
        return failed(format!("{why}"), None);
    }
    let bounds = engine.bounds(None);
    let mut conn = match KeepAliveConn::open(&side.endpoint, &bounds).await {
        Ok(conn) => conn,
        Err(end) => return failed(format!("could not connect: {}", end), None),
    };
    let mut first = conn.send(&request, &bounds).await;
    engine.mask_response(&mut first);
    let outcome = match &first.response {
        None => Some(TrialOutcome::Failed {
            why: format!("no answer to the first request ({})", first.end),
        }),
        Some(r) if !r.complete => Some(TrialOutcome::Failed {
            why: format!("an incomplete answer to the first request ({})", first.end),
        }),
        Some(r)
            if r.header("connection")
                .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close"))) =>
        {
            Some(TrialOutcome::NoReuse {
                why: format!("it answers {} with Connection: close", r.status),
            })
        }
        Some(r)
            if !r.chunked
                && r.content_length.is_none()
                && !matches!(r.status, 100..=199 | 204 | 304) =>
        {
            Some(TrialOutcome::NoReuse {
                why: format!(
                    "it answers {} with a body delimited by closing the connection",
                    r.status
                ),
            })
        }
        Some(_) => None,
    };
    if let Some(outcome) = outcome {
        return (Trial { gap_ms, outcome }, Some(first));
    }
    let outcome = match conn.watch_idle(Duration::from_secs_f64(gap)).await {
        IdleEnd::Closed { after } => TrialOutcome::ClosedIdle {
            after_ms: after.as_secs_f64() * 1000.0,
        },
        IdleEnd::Reset { after } => TrialOutcome::ResetIdle {
            after_ms: after.as_secs_f64() * 1000.0,
        },
        IdleEnd::Unsolicited { prefix } => TrialOutcome::Failed {
            why: format!("it sent bytes on the idle connection: {prefix}"),
        },
        IdleEnd::Open => {
            if let Err(why) = engine.ticket().await {
                return failed(format!("{why}"), Some(first));
            }
            let second = conn.send(&request, &engine.bounds(None)).await;
            match second.response.as_ref() {
                Some(r) if r.complete => TrialOutcome::Answered { status: r.status },
                _ => TrialOutcome::Unanswered {
                    end: second.end.to_string(),
                },
            }
        }
    };
    (Trial { gap_ms, outcome }, Some(first))
}

/// POSTs through the listener, each on a fresh client connection, `spacing` apart: each one
/// after the first finds the listener's pooled connection to the backend idle for longer than
/// the backend keeps it.
async fn race(engine: &Engine, listener: &Side, spacing: Duration) -> Observation {
    let planned = race_request(listener);
    let mut result = RaceResult {
        spacing_ms: spacing.as_secs_f64() * 1000.0,
        sent: 0,
        bad_gateway: 0,
        statuses: Vec::new(),
        stopped: None,
    };
    let mut shown: Option<Exchange> = None;
    let mut errors = ErrorBudget::default();
    for i in 0..RACE_REQUESTS {
        if i > 0 {
            if engine.budget.remaining() <= spacing + engine.request_timeout() {
                result.stopped = Some("the run's time budget".into());
                break;
            }
            tokio::time::sleep(spacing).await;
        }
        let exchange = match engine.send_planned(&planned, None).await {
            Ok((_, exchange)) => exchange,
            Err(why) => {
                result.stopped = Some(format!("{why}"));
                break;
            }
        };
        result.sent += 1;
        result.statuses.push(exchange.status());
        let keep_going = errors.record(listener.role(), &exchange);
        if exchange.status() == Some(502) {
            result.bad_gateway += 1;
            shown.get_or_insert_with(|| exchange.clone());
        }
        let last = exchange;
        if !keep_going {
            result.stopped = Some("the listener failed several times in a row".into());
            shown.get_or_insert(last);
            break;
        }
        if i + 1 == RACE_REQUESTS {
            shown.get_or_insert(last);
        }
    }
    engine.observation(
        Family::Keepalive,
        RACE,
        listener,
        true,
        &["502.keepalive-race"],
        engine.sent(&planned.endpoint, &planned.bytes, true),
        shown,
        Detail::Keepalive(KeepaliveDetail::Race(result)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_of_each_timeout_kind() {
        let lazy = IdleTimeout::Lazy {
            answered_ms: 900.0,
            refused_ms: 1000.0,
        };
        assert_eq!(lazy.at_most_ms(), Some(1000.0));
        assert_eq!(lazy.at_least_ms(), Some(900.0));
        let beyond = IdleTimeout::BeyondCap {
            answered_ms: 120_000.0,
        };
        assert_eq!(beyond.at_most_ms(), None);
        assert_eq!(beyond.at_least_ms(), Some(120_000.0));
        let none = IdleTimeout::NoReuse { why: "x".into() };
        assert_eq!((none.at_most_ms(), none.at_least_ms()), (None, None));
    }

    #[test]
    fn a_failed_gap_cuts_at_the_close_or_the_gap() {
        let closed = TrialOutcome::ClosedIdle { after_ms: 1500.0 };
        assert_eq!(closed.refused_at(4.0), Some(1.5));
        let dropped = TrialOutcome::Unanswered {
            end: "closed (FIN)".into(),
        };
        assert_eq!(dropped.refused_at(2.0), Some(2.0));
        assert_eq!(TrialOutcome::Answered { status: 200 }.refused_at(2.0), None);
    }
}
