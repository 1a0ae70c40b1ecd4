//! The `connect` family: TCP handshakes only, telling refused (RST) from silently dropped
//! (timeout) from unreachable (ICMP), with the handshake time and the kernel's rtt estimate.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::transport::exchange::connect;
use crate::transport::tcp_info::tcp_info;
use crate::transport::{endpoint_label, Bounds, ConnEnd};

use super::context::{Engine, Side, ERROR_BUDGET};
use super::engine::all_at_once;
use super::latency::Percentiles;
use super::{Detail, Family, Observation, SentRequest};

const EVIDENCE: &[&str] = &[
    "502.backend-unreachable",
    "504.connect-timeout",
    "408.network-rtt-loss",
    "499.network-rtt-loss",
    "408.bandwidth-throttled",
    "499.bandwidth-throttled",
];

/// How one handshake ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HandshakeOutcome {
    /// SYN, SYN-ACK, ACK: connected.
    Ok,
    /// The peer answered the SYN with RST: nothing listens there, or a firewall rejects.
    Refused,
    /// No answer to the SYNs within the timeout: a silent drop.
    TimedOut,
    /// The network said no (ICMP host or network unreachable).
    Unreachable,
    /// Anything else, e.g. the name did not resolve from here.
    Failed,
}

/// One TCP handshake.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Handshake {
    pub outcome: HandshakeOutcome,
    /// Until the handshake completed or failed.
    pub ms: f64,
    /// The system's words for a failure.
    pub detail: Option<String>,
    /// The kernel's smoothed rtt right after the handshake, microseconds.
    pub tcp_rtt_us: Option<u32>,
    /// The kernel's rtt variance estimate, microseconds.
    pub tcp_rttvar_us: Option<u32>,
    pub tcp_retransmits: Option<u32>,
}

/// What the handshakes to one side showed.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct ConnectResult {
    pub endpoint: String,
    /// How long each handshake was given.
    pub timeout_ms: f64,
    pub handshakes: Vec<Handshake>,
    pub ok: u32,
    pub refused: u32,
    pub timed_out: u32,
    pub unreachable: u32,
    pub failed: u32,
    /// Times of the completed handshakes.
    pub handshake_ms: Option<Percentiles>,
    /// Why fewer than the planned handshakes were made, if so.
    pub stopped_early: Option<String>,
}

impl ConnectResult {
    pub fn of(
        endpoint: &str,
        timeout: Duration,
        handshakes: Vec<Handshake>,
        stopped_early: Option<String>,
    ) -> ConnectResult {
        let count =
            |o: HandshakeOutcome| handshakes.iter().filter(|h| h.outcome == o).count() as u32;
        let ok_ms: Vec<f64> = handshakes
            .iter()
            .filter(|h| h.outcome == HandshakeOutcome::Ok)
            .map(|h| h.ms)
            .collect();
        ConnectResult {
            endpoint: endpoint.to_string(),
            timeout_ms: timeout.as_secs_f64() * 1000.0,
            ok: count(HandshakeOutcome::Ok),
            refused: count(HandshakeOutcome::Refused),
            timed_out: count(HandshakeOutcome::TimedOut),
            unreachable: count(HandshakeOutcome::Unreachable),
            failed: count(HandshakeOutcome::Failed),
            handshake_ms: Percentiles::of(&ok_ms, 0),
            handshakes,
            stopped_early,
        }
    }

    /// The first failure's words of this kind, for evidence.
    pub fn detail_of(&self, outcome: HandshakeOutcome) -> Option<&str> {
        self.handshakes
            .iter()
            .find(|h| h.outcome == outcome)
            .and_then(|h| h.detail.as_deref())
    }
}

/// One TCP handshake to `host:port` within `timeout`; no byte is sent, the connection is closed
/// at once (FIN).
pub async fn handshake(host: &str, port: u16, timeout: Duration) -> Handshake {
    let bounds = Bounds {
        connect_timeout: timeout,
        ..Bounds::default()
    };
    let started = Instant::now();
    let result = connect(host, port, &bounds).await;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    let failed = |outcome, detail: Option<String>| Handshake {
        outcome,
        ms,
        detail,
        tcp_rtt_us: None,
        tcp_rttvar_us: None,
        tcp_retransmits: None,
    };
    match result {
        Ok(stream) => {
            let info = tcp_info(&stream);
            Handshake {
                outcome: HandshakeOutcome::Ok,
                ms,
                detail: None,
                tcp_rtt_us: info.map(|i| i.rtt_us),
                tcp_rttvar_us: info.map(|i| i.rttvar_us),
                tcp_retransmits: info.map(|i| i.retransmits),
            }
        }
        Err(ConnEnd::ConnectRefused) => failed(HandshakeOutcome::Refused, None),
        Err(ConnEnd::ConnectTimeout) => failed(HandshakeOutcome::TimedOut, None),
        // A name that does not resolve here says nothing about what the listener can reach.
        Err(ConnEnd::NameNotResolved(why)) => failed(HandshakeOutcome::Failed, Some(why)),
        Err(ConnEnd::Unreachable(why)) => failed(HandshakeOutcome::Unreachable, Some(why)),
        Err(other) => failed(HandshakeOutcome::Failed, Some(other.to_string())),
    }
}

/// What the family does, which no plan of requests shows: it sends no bytes.
pub fn rest(attempts: u32) -> String {
    format!(
        "connect opens {attempts} TCP connections per backend and closes them without sending a byte"
    )
}

pub async fn run(engine: &Engine, sides: &[Side], attempts: u32) -> Vec<Observation> {
    all_at_once(sides.iter().map(|side| run_side(engine, side, attempts))).await
}

async fn run_side(engine: &Engine, side: &Side, attempts: u32) -> Option<Observation> {
    let host = &side.target.host;
    let port = side.target.port;
    let timeout = engine
        .connect_timeout()
        .min(engine.budget.remaining().max(Duration::from_millis(1)));
    let mut handshakes = Vec::new();
    let mut stopped_early = None;
    let mut failures_in_a_row = 0;
    for n in 1..=attempts {
        // A handshake is a connection to the target like any request: it takes a ticket.
        if let Err(why) = engine.budget.ticket().await {
            stopped_early = Some(why.to_string());
            break;
        }
        let h = handshake(host, port, timeout).await;
        failures_in_a_row = if h.outcome == HandshakeOutcome::Ok {
            0
        } else {
            failures_in_a_row + 1
        };
        handshakes.push(h);
        if failures_in_a_row >= ERROR_BUDGET && n < attempts {
            let why = format!(
                "{ERROR_BUDGET} handshakes in a row failed; the remaining {} were not tried",
                attempts - n
            );
            engine.note(format!("connect to {}: {why}", side.endpoint.label()));
            stopped_early = Some(why);
            break;
        }
    }
    if handshakes.is_empty() {
        return None;
    }
    let result = ConnectResult::of(
        &endpoint_label(host, port, false),
        timeout,
        handshakes,
        stopped_early,
    );
    let sent = SentRequest::described(
        format!("{} TCP handshakes, no bytes sent", result.handshakes.len()),
        0,
        false,
    );
    Some(engine.observation(
        Family::Connect,
        "handshakes",
        side,
        true,
        EVIDENCE,
        sent,
        None,
        Detail::Connect(result),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tells_a_listening_port_from_a_closed_one() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let ok = handshake("127.0.0.1", port, Duration::from_secs(5)).await;
        assert_eq!(ok.outcome, HandshakeOutcome::Ok, "{ok:?}");
        drop(listener);
        let refused = handshake("127.0.0.1", port, Duration::from_secs(5)).await;
        assert_eq!(refused.outcome, HandshakeOutcome::Refused, "{refused:?}");

        let result = ConnectResult::of("x", Duration::from_secs(5), vec![ok, refused], None);
        assert_eq!((result.ok, result.refused, result.timed_out), (1, 1, 0));
        assert_eq!(result.handshake_ms.unwrap().samples, 1);
    }
}
