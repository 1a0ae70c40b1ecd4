//! Synthetic timing observations: latency requests with fixed answer times, their statistics,
//! TCP handshakes, and pool requests, as the latency, connect and pool families record them.

use std::time::Duration;

use lbprobe::probe::connect::{ConnectResult, Handshake, HandshakeOutcome};
use lbprobe::probe::latency::LatencyStats;
use lbprobe::probe::pool::{member_variant, PoolDetail, THROUGH_LISTENER};
use lbprobe::probe::{Detail, Family};
use lbprobe::target::Role;
use lbprobe::transport::{ConnEnd, Timings};

use super::{app_body, nginx_page, obs, Obs};

/// How long the latency family waited for each answer in these rows.
pub const WAIT_MS: f64 = 66_000.0;

impl Obs {
    /// The answer's first byte came `ms` after the request was sent (and the exchange ended
    /// right after). Our own round trip on these rows is 40 µs.
    pub fn after(mut self, ms: f64) -> Obs {
        let ex = self.o.exchange.as_mut().expect("after() after answer()");
        ex.timings.first_byte_ms = Some(ms);
        ex.timings.total_ms = ex.timings.connect_ms.unwrap_or(0.0) + ms + 0.5;
        self
    }
}

/// One latency request to `role` answered `status` after `ms`: the listener's own page for
/// 5xx through the listener, the application's body otherwise.
pub fn timed(role: Role, n: usize, status: u16, ms: f64) -> Obs {
    let body = match (role, status) {
        (Role::Listener, 500..) => nginx_page(status, reason(status)),
        _ => app_body(status),
    };
    obs(Family::Latency, &format!("request-{n}"), role)
        .answer(status, reason(status), &body)
        .after(ms)
}

/// One latency request to `role` that got no answer before our wait ended.
pub fn unanswered(role: Role, n: usize) -> Obs {
    let mut o = obs(Family::Latency, &format!("request-{n}"), role).ended(ConnEnd::Timeout);
    let ex = o.o.exchange.as_mut().expect("ended() sets the exchange");
    ex.timings.first_byte_ms = None;
    ex.timings.total_ms = WAIT_MS;
    o
}

/// One latency request to `role` whose TCP handshake got no answer within `ms`.
pub fn syn_dropped(role: Role, n: usize, ms: f64) -> Obs {
    let mut o = obs(Family::Latency, &format!("request-{n}"), role).ended(ConnEnd::ConnectTimeout);
    o.o.exchange.as_mut().expect("ended").timings = Timings {
        total_ms: ms,
        ..Timings::default()
    };
    o
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Time-out",
        _ => "",
    }
}

/// Latency requests to `role` answered `status` after each of `times`, and their statistics.
pub fn latency(role: Role, status: u16, times: &[f64]) -> Vec<Obs> {
    let requests: Vec<Obs> = times
        .iter()
        .enumerate()
        .map(|(i, ms)| timed(role, i + 1, status, *ms))
        .collect();
    with_stats(role, requests)
}

/// `requests` followed by the statistics the latency family sums them up in.
pub fn with_stats(role: Role, requests: Vec<Obs>) -> Vec<Obs> {
    let exchanges: Vec<_> = requests
        .iter()
        .filter_map(|o| o.o.exchange.clone())
        .collect();
    let refs: Vec<_> = exchanges.iter().collect();
    let stats = LatencyStats::of(
        super::host(role),
        &refs,
        Duration::from_secs_f64(WAIT_MS / 1000.0),
        None,
        None,
    );
    let mut out = requests;
    out.push(obs(Family::Latency, "stats", role).detail(Detail::Latency(stats)));
    out
}

/// The connect family's handshakes to `role`, each with this outcome after `ms`.
pub fn handshakes(role: Role, outcome: HandshakeOutcome, ms: f64, n: usize) -> Obs {
    let ok = outcome == HandshakeOutcome::Ok;
    let list = (0..n)
        .map(|_| Handshake {
            outcome,
            ms,
            detail: None,
            tcp_rtt_us: ok.then_some(40),
            tcp_rttvar_us: ok.then_some(20),
            tcp_retransmits: ok.then_some(0),
        })
        .collect();
    let timeout = Duration::from_secs(10);
    obs(Family::Connect, "handshakes", role).detail(Detail::Connect(ConnectResult::of(
        super::host(role),
        timeout,
        list,
        None,
    )))
}

/// A request of the pool family: to member `member` directly (0-based), or through the
/// listener (`None`), answered `status`.
pub fn pool_request(member: Option<usize>, size: usize, status: u16) -> Obs {
    let (variant, role, address) = match member {
        Some(i) => (
            member_variant(i),
            Role::Backend,
            format!("127.0.0.1:{}", 9001 + i),
        ),
        None => (
            THROUGH_LISTENER.to_string(),
            Role::Listener,
            super::host(Role::Listener).to_string(),
        ),
    };
    let body = match (member, status) {
        (None, 500..) => nginx_page(status, reason(status)),
        _ => app_body(status),
    };
    obs(Family::Pool, &variant, role)
        .answer(status, reason(status), &body)
        .after(1.0)
        .detail(Detail::Pool(PoolDetail {
            member,
            address,
            pool_size: size,
        }))
}
