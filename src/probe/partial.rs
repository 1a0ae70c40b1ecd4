//! The `partial` family: incomplete requests, and how long the listener waits before it gives up.
//!
//! Three variants send part of a request and wait (up to the scenario's cap) for the side to
//! answer or close; a fourth cuts a request mid-header and closes our side itself, as a client
//! that gives up does. Every variant goes to every side at once, one connection each, never
//! retried: a side that waits 60 s is measured once, not hammered.

use std::time::Duration;

use serde::Serialize;

use crate::transport::partial::{send_then_close, Reaction};
use crate::transport::{ConnEnd, Exchange};

use super::context::{Engine, Planned, Side, Via};
use super::engine::all_at_once;
use super::request::{build_for, USER_AGENT};
use super::{Detail, Family, Observation};

/// Headers announcing 100 bytes of body, and none of it.
pub const BODY_MISSING: &str = "body-missing";
/// Headers announcing 100 bytes of body, and 10 of them.
pub const BODY_PARTIAL: &str = "body-partial";
/// The request line and one header line, without the empty line that ends the head.
pub const HEADERS_PARTIAL: &str = "headers-partial";
/// A request cut in the middle of a header line, then closed by us.
pub const CLOSE_EARLY: &str = "close-early";

/// The variants that wait for the side to give up, in report order.
pub const WAITING: [&str; 3] = [BODY_MISSING, BODY_PARTIAL, HEADERS_PARTIAL];

/// The body length the body variants announce, and how much of it they send.
const ANNOUNCED_BODY: usize = 100;
const SENT_BODY: usize = 10;
/// How long the close-early variant stays silent before closing: long enough for a listener
/// that rejects a cut request at once to say so, far below any request timeout.
pub const CLOSE_AFTER: Duration = Duration::from_millis(500);
/// How long to watch the side's reaction once we have closed.
const WATCH_AFTER_CLOSE: Duration = Duration::from_secs(2);

/// What one partial request showed.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct PartialResult {
    /// How the request was incomplete, in words.
    pub incomplete: String,
    /// How long we were prepared to wait for the side (ms).
    pub cap_ms: f64,
    /// What the side did: for close-early, before we closed.
    pub outcome: Outcome,
    /// From our last byte until the side answered or closed, or until we stopped waiting (ms).
    pub waited_ms: f64,
    /// close-early: we closed our side this long after our last byte (ms); `None` when we did
    /// not close first (the side acted before, or this variant waits).
    pub we_closed_after_ms: Option<f64>,
    /// close-early: what the side did once we had closed.
    pub after_our_close: Option<Outcome>,
    /// close-early: from our close to that reaction (ms).
    pub after_close_ms: Option<f64>,
}

impl PartialResult {
    /// The side's own timer ran out and it gave up (answered or closed) before the cap.
    pub fn gave_up(&self) -> bool {
        !matches!(self.outcome, Outcome::StillWaiting | Outcome::Failed { .. })
    }
}

/// What a side did with an incomplete request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Outcome {
    /// An HTTP answer with this status.
    Answered { status: u16 },
    /// Bytes that are not HTTP.
    NotHttp,
    /// A close (FIN) without an answer.
    Closed,
    /// A reset (RST) without an answer.
    Reset,
    /// Nothing yet: the side was still waiting when we stopped (the cap, or our own close).
    StillWaiting,
    /// The request could not be delivered (no connection, TLS failure, I/O error).
    Failed { why: String },
}

impl Outcome {
    fn of(ex: &Exchange) -> Outcome {
        if let Some(r) = &ex.response {
            return Outcome::Answered { status: r.status };
        }
        match &ex.end {
            _ if ex.bytes_in > 0 => Outcome::NotHttp,
            ConnEnd::Fin | ConnEnd::Complete => Outcome::Closed,
            ConnEnd::Reset => Outcome::Reset,
            ConnEnd::Timeout => Outcome::StillWaiting,
            other => Outcome::Failed {
                why: other.to_string(),
            },
        }
    }

    fn of_reaction(reaction: &Reaction, ex: &Exchange) -> Outcome {
        match reaction {
            Reaction::Silent => Outcome::StillWaiting,
            Reaction::Sent => match &ex.response {
                Some(r) => Outcome::Answered { status: r.status },
                None => Outcome::NotHttp,
            },
            Reaction::Closed => Outcome::Closed,
            Reaction::Reset => Outcome::Reset,
            Reaction::Failed(why) => Outcome::Failed { why: why.clone() },
        }
    }
}

/// How long the side took after our last byte: to its first byte when it answered, else to
/// the end of the exchange (its close, or our cap).
fn waited_ms(ex: &Exchange) -> f64 {
    if let Some(first) = ex.timings.first_byte_ms {
        return first;
    }
    let setup = ex.timings.connect_ms.unwrap_or(0.0) + ex.timings.tls_ms.unwrap_or(0.0);
    (ex.timings.total_ms - setup).max(0.0)
}

fn head(method: &str, side: &Side, extra_headers: &[(&str, String)]) -> Vec<u8> {
    build_for(
        method,
        &side.target.path,
        &side.target.host_header(),
        &side.extra_lines(),
        extra_headers,
        None,
    )
}

fn variant_bytes(variant: &str, side: &Side) -> Vec<u8> {
    let body_head = || {
        head(
            "POST",
            side,
            &[
                ("Content-Type", "text/plain".to_string()),
                ("Content-Length", ANNOUNCED_BODY.to_string()),
            ],
        )
    };
    match variant {
        BODY_MISSING => body_head(),
        BODY_PARTIAL => {
            let mut bytes = body_head();
            bytes.extend_from_slice(&[b'x'; SENT_BODY]);
            bytes
        }
        HEADERS_PARTIAL => format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\n",
            side.target.path,
            side.target.host_header()
        )
        .into_bytes(),
        // Cut inside a header line (no CRLF after it): no parser can take it for a complete head.
        _ => {
            let ua = format!("User-Agent: {USER_AGENT}\r\n");
            format!(
                "GET {} HTTP/1.1\r\nHost: {}\r\n{}",
                side.target.path,
                side.target.host_header(),
                &ua[..ua.len() / 2]
            )
            .into_bytes()
        }
    }
}

fn incomplete(variant: &str) -> String {
    match variant {
        BODY_MISSING => format!("headers announce Content-Length: {ANNOUNCED_BODY}, no body sent"),
        BODY_PARTIAL => {
            format!(
                "headers announce Content-Length: {ANNOUNCED_BODY}, {SENT_BODY} body bytes sent"
            )
        }
        HEADERS_PARTIAL => "the request line and a Host line, no empty line".into(),
        _ => format!(
            "a request cut in the middle of a header line, closed by us after {} ms",
            CLOSE_AFTER.as_millis()
        ),
    }
}

pub async fn run(engine: &Engine, sides: &[Side], max_wait: Duration) -> Vec<Observation> {
    // Waits are long and independent: every variant to every side at once, one connection each.
    let mut work = Vec::new();
    for side in sides {
        for variant in WAITING {
            work.push(futures_util::future::Either::Left(waiting(
                engine, side, variant, max_wait,
            )));
        }
        work.push(futures_util::future::Either::Right(close_early(
            engine, side, max_wait,
        )));
    }
    all_at_once(work).await
}

async fn waiting(
    engine: &Engine,
    side: &Side,
    variant: &'static str,
    max_wait: Duration,
) -> Option<Observation> {
    let mut planned = request(side, variant);
    // A head that never ends is marked after its request line, so the listener's log of it
    // can be found (`--access-log`).
    planned.bytes = engine.mark_cut(&planned.bytes);
    let cap = max_wait.min(engine.budget.remaining());
    let (sent, exchange) = engine.send_planned_waiting(&planned, max_wait).await.ok()?;
    let detail = PartialResult {
        incomplete: incomplete(variant),
        cap_ms: cap.as_secs_f64() * 1000.0,
        outcome: Outcome::of(&exchange),
        waited_ms: waited_ms(&exchange),
        we_closed_after_ms: None,
        after_our_close: None,
        after_close_ms: None,
    };
    Some(engine.observation(
        Family::Partial,
        variant,
        side,
        false,
        &["408.partial-request"],
        sent,
        Some(exchange),
        Detail::Partial(detail),
    ))
}

async fn close_early(engine: &Engine, side: &Side, max_wait: Duration) -> Option<Observation> {
    let bytes = engine.mark_cut(&request(side, CLOSE_EARLY).bytes);
    engine.ticket().await.ok()?;
    let remaining = engine.budget.remaining();
    let pause = CLOSE_AFTER.min(max_wait).min(remaining);
    let linger = WATCH_AFTER_CLOSE.min(remaining.saturating_sub(pause));
    let early = send_then_close(&side.endpoint, &bytes, pause, linger, &engine.bounds(None)).await;
    let we_closed = early.after.is_some();
    let detail = PartialResult {
        incomplete: incomplete(CLOSE_EARLY),
        cap_ms: pause.as_secs_f64() * 1000.0,
        outcome: Outcome::of_reaction(&early.before, &early.exchange),
        waited_ms: early.before_ms,
        we_closed_after_ms: we_closed.then_some(early.before_ms),
        after_our_close: early
            .after
            .as_ref()
            .map(|r| Outcome::of_reaction(r, &early.exchange)),
        after_close_ms: early.after_ms,
    };
    Some(engine.observation(
        Family::Partial,
        CLOSE_EARLY,
        side,
        false,
        &["400.client-closed-early"],
        engine.sent(&side.endpoint, &bytes, true),
        Some(early.exchange),
        Detail::Partial(detail),
    ))
}

/// A variant as it is sent: the waiting ones through the engine, close-early over a connection
/// of its own that we close.
fn request(side: &Side, variant: &'static str) -> Planned {
    let via = if variant == CLOSE_EARLY {
        Via::OwnConnection
    } else {
        Via::Raw
    };
    side.planned(Family::Partial, variant, via, variant_bytes(variant, side))
}

/// The requests a run sends to a side, in report order.
pub fn plan(side: &Side) -> Vec<Planned> {
    WAITING
        .into_iter()
        .chain([CLOSE_EARLY])
        .map(|v| request(side, v))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::{Role, Target};

    fn side() -> Side {
        Side::new(
            Target::parse(Role::Listener, "http://127.0.0.1:8080/p?q=1").unwrap(),
            false,
        )
    }

    #[test]
    fn variants_are_incomplete_in_the_way_they_say() {
        let planned = plan(&side());
        let names: Vec<&str> = planned.iter().map(|p| p.variant.as_str()).collect();
        assert_eq!(
            names,
            [BODY_MISSING, BODY_PARTIAL, HEADERS_PARTIAL, CLOSE_EARLY]
        );
        let text = |i: usize| String::from_utf8(planned[i].bytes.clone()).unwrap();
        let missing = text(0);
        assert!(missing.starts_with("POST /p?q=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"));
        assert!(missing.contains("\r\nContent-Length: 100\r\n"));
        assert!(missing.ends_with("\r\n\r\n"));
        let partial = text(1);
        assert_eq!(partial, format!("{missing}xxxxxxxxxx"));
        assert_eq!(
            text(2),
            "GET /p?q=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n".to_string()
        );
        let cut = text(3);
        assert!(cut.starts_with("GET /p?q=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-"));
        assert!(!cut.ends_with("\r\n"));
    }

    #[test]
    fn outcome_tells_answer_close_reset_and_cap() {
        let mut ex = Exchange {
            timings: crate::transport::Timings {
                connect_ms: Some(1.0),
                tls_ms: None,
                first_byte_ms: None,
                total_ms: 2001.0,
                dns_ms: None,
                transfer_ms: None,
            },
            bytes_out: 10,
            ..Exchange::ended("x", ConnEnd::Fin)
        };
        assert_eq!(Outcome::of(&ex), Outcome::Closed);
        assert_eq!(waited_ms(&ex), 2000.0);
        ex.end = ConnEnd::Reset;
        assert_eq!(Outcome::of(&ex), Outcome::Reset);
        ex.end = ConnEnd::Timeout;
        assert_eq!(Outcome::of(&ex), Outcome::StillWaiting);
        ex.end = ConnEnd::ConnectRefused;
        assert!(matches!(Outcome::of(&ex), Outcome::Failed { .. }));
        ex.bytes_in = 3;
        ex.end = ConnEnd::Fin;
        assert_eq!(Outcome::of(&ex), Outcome::NotHttp);
    }
}
