//! The `latency` family: timed valid requests to each side, as min/median/p95/p99/max, with the
//! kernel's view of the path (TCP_INFO rtt and retransmits) from the same sockets.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::profile::Profile;
use crate::target::Role;
use crate::transport::{ConnEnd, Exchange};

use super::context::{Engine, ErrorBudget, Planned, Side, Via, ERROR_BUDGET};
use super::{protocol, Detail, Family, Observation, SentRequest};

/// Waiting this much beyond the longest timeout in play lets a listener's own timeout answer
/// (a 504 after its read timeout) arrive instead of ours cutting it off.
const WAIT_MARGIN: Duration = Duration::from_secs(1);

/// Causes the latency observations speak to (opaque to the engine).
const EVIDENCE: &[&str] = &[
    "504.backend-slow",
    "504.connect-timeout",
    "502.backend-slow",
    "499.backend-slow",
    "499.client-timeout-short",
    "408.network-rtt-loss",
    "499.network-rtt-loss",
    "408.bandwidth-throttled",
    "499.bandwidth-throttled",
];

/// Order statistics of one timing in milliseconds; percentiles by nearest rank.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Percentiles {
    pub samples: u32,
    /// Samples that ran out of patience without an answer and count as the wait: with any, the
    /// upper figures are lower bounds.
    pub censored: u32,
    pub min: f64,
    pub median: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

impl Percentiles {
    /// `values` includes the censored samples (at the wait); `None` when there are none.
    pub fn of(values: &[f64], censored: u32) -> Option<Percentiles> {
        if values.is_empty() {
            return None;
        }
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        Some(Percentiles {
            samples: sorted.len() as u32,
            censored,
            min: sorted[0],
            median: nearest_rank(&sorted, 50.0),
            p95: nearest_rank(&sorted, 95.0),
            p99: nearest_rank(&sorted, 99.0),
            max: sorted[sorted.len() - 1],
            mean: sorted.iter().sum::<f64>() / sorted.len() as f64,
        })
    }
}

/// The `p`th percentile of sorted, non-empty samples: the smallest sample with at least `p`% of
/// the samples at or below it.
fn nearest_rank(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The path as the kernel saw it on our own connections (TCP_INFO after each exchange).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct PathQuality {
    /// Connections that reported TCP_INFO.
    pub connections: u32,
    /// Mean of the connections' smoothed rtt.
    pub rtt_mean_ms: f64,
    pub rtt_max_ms: f64,
    /// Standard deviation of the smoothed rtt across connections: jitter between them.
    pub rtt_stddev_ms: f64,
    /// Retransmitted segments, summed over the connections.
    pub retransmits: u32,
}

impl PathQuality {
    /// From `(smoothed rtt µs, retransmits)` per connection; `None` with no samples.
    pub fn of(samples: &[(u32, u32)]) -> Option<PathQuality> {
        if samples.is_empty() {
            return None;
        }
        let n = samples.len() as f64;
        let rtts: Vec<f64> = samples
            .iter()
            .map(|(r, _)| f64::from(*r) / 1000.0)
            .collect();
        let mean = rtts.iter().sum::<f64>() / n;
        let variance = rtts.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / n;
        Some(PathQuality {
            connections: samples.len() as u32,
            rtt_mean_ms: mean,
            rtt_max_ms: rtts.iter().copied().fold(0.0, f64::max),
            rtt_stddev_ms: variance.sqrt(),
            retransmits: samples.iter().map(|(_, t)| *t).sum(),
        })
    }
}

/// Timing statistics of one side.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct LatencyStats {
    pub endpoint: String,
    /// Requests sent.
    pub requests: u32,
    /// Requests that got an HTTP answer (any status).
    pub answered: u32,
    /// Connected, but no answer within the wait.
    pub timed_out: u32,
    /// The TCP connection never opened (refused, timed out, unreachable).
    pub not_connected: u32,
    /// Closed, reset or TLS failures without an HTTP answer.
    pub failed: u32,
    /// How many answers carried each status.
    pub statuses: BTreeMap<u16, u32>,
    /// How long each request was allowed to take once connected.
    pub wait_ms: f64,
    /// The client timeout the scenario declares, for comparison.
    pub client_timeout_ms: Option<f64>,
    /// Connect, TLS, first byte and total, boxed to keep [`super::Detail`] small.
    #[serde(flatten)]
    pub times: Box<StageTimes>,
    pub path: Option<PathQuality>,
    /// Why fewer than the planned requests were sent, if so.
    pub stopped_early: Option<String>,
}

/// The distribution of each stage of the requests to one side.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct StageTimes {
    pub connect_ms: Option<Percentiles>,
    pub tls_ms: Option<Percentiles>,
    /// From the request's last byte to the answer's first; a timed-out request counts as the wait.
    pub first_byte_ms: Option<Percentiles>,
    /// Connect to the end of the answer; a timed-out request counts as its whole duration.
    pub total_ms: Option<Percentiles>,
}

/// What one exchange contributes to the statistics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Outcome {
    Answered,
    TimedOut,
    NotConnected,
    Failed,
}

pub fn outcome(ex: &Exchange) -> Outcome {
    if ex.response.is_some() {
        Outcome::Answered
    } else if ex.end.never_connected() {
        Outcome::NotConnected
    } else if ex.end == ConnEnd::Timeout {
        Outcome::TimedOut
    } else {
        Outcome::Failed
    }
}

/// Time to first byte of one exchange, with whether it is only a lower bound (nothing came
/// before we stopped waiting; the bound is how long we waited). `None` when the request never
/// got that far.
pub fn first_byte(ex: &Exchange) -> Option<(f64, bool)> {
    let t = &ex.timings;
    match (t.first_byte_ms, outcome(ex)) {
        (Some(ms), _) => Some((ms, false)),
        (None, Outcome::TimedOut) => {
            let setup = t.connect_ms.unwrap_or(0.0) + t.tls_ms.unwrap_or(0.0);
            Some(((t.total_ms - setup).max(0.0), true))
        }
        _ => None,
    }
}

impl LatencyStats {
    pub fn of(
        endpoint: &str,
        exchanges: &[&Exchange],
        wait: Duration,
        client_timeout: Option<Duration>,
        stopped_early: Option<String>,
    ) -> LatencyStats {
        let wait_ms = wait.as_secs_f64() * 1000.0;
        let mut stats = LatencyStats {
            endpoint: endpoint.to_string(),
            requests: exchanges.len() as u32,
            answered: 0,
            timed_out: 0,
            not_connected: 0,
            failed: 0,
            statuses: BTreeMap::new(),
            wait_ms,
            client_timeout_ms: client_timeout.map(|d| d.as_secs_f64() * 1000.0),
            times: Box::default(),
            path: None,
            stopped_early,
        };
        let (mut first, mut first_censored) = (Vec::new(), 0);
        let mut total = Vec::new();
        for ex in exchanges {
            match outcome(ex) {
                Outcome::Answered => stats.answered += 1,
                Outcome::TimedOut => stats.timed_out += 1,
                Outcome::NotConnected => stats.not_connected += 1,
                Outcome::Failed => stats.failed += 1,
            }
            if let Some(status) = ex.status() {
                *stats.statuses.entry(status).or_insert(0) += 1;
            }
            if let Some((ms, censored)) = first_byte(ex) {
                first.push(ms);
                first_censored += u32::from(censored);
            }
            if ex.timings.connect_ms.is_some() {
                total.push(ex.timings.total_ms);
            }
        }
        let connect: Vec<f64> = exchanges
            .iter()
            .filter_map(|e| e.timings.connect_ms)
            .collect();
        let tls: Vec<f64> = exchanges.iter().filter_map(|e| e.timings.tls_ms).collect();
        let tcp: Vec<(u32, u32)> = exchanges
            .iter()
            .filter_map(|e| Some((e.tcp_rtt_us?, e.tcp_retransmits.unwrap_or(0))))
            .collect();
        stats.times = Box::new(StageTimes {
            connect_ms: Percentiles::of(&connect, 0),
            tls_ms: Percentiles::of(&tls, 0),
            first_byte_ms: Percentiles::of(&first, first_censored),
            total_ms: Percentiles::of(&total, stats.timed_out),
        });
        stats.path = PathQuality::of(&tcp);
        stats
    }
}

/// How long one request may take once connected: past the longest timeout in play (the
/// listener's connect and read timeouts, the client's), so that whoever gives up first is seen
/// doing so. The engine still caps it by the run's remaining time.
pub fn wait_for(profile: &Profile, client_timeout: Option<Duration>) -> Duration {
    let longest = profile
        .longest_timeout()
        .max(client_timeout.unwrap_or_default());
    longest + WAIT_MARGIN.max(longest / 10)
}

pub async fn run(
    engine: &Engine,
    sides: &[Side],
    requests: u32,
    client_timeout: Option<Duration>,
) -> Vec<Observation> {
    let wait = wait_for(&engine.profile, client_timeout);
    // A silent side's long wait only pays when an answering listener is measured beside it
    // (its time is compared with the listener's timeout firing, in the same wall time); on
    // its own, the baseline already said all a longer wait would.
    let listener_answers = sides
        .iter()
        .any(|s| s.role() == Role::Listener && !engine.is_silent(Role::Listener));
    // Sides run at the same time, each one request after another: concurrent requests to one
    // side would measure our own queueing.
    futures_util::future::join_all(sides.iter().map(|side| {
        // A silent side on its own: its baseline was this family's one request already (the
        // same GET, waited as long), so it stands in instead of a second wait as long.
        let stand_in = engine
            .silent_baseline(side.role())
            .filter(|_| !listener_answers);
        let wait = if engine.is_silent(side.role()) && !listener_answers {
            engine.request_timeout()
        } else {
            wait
        };
        run_side(engine, side, requests, client_timeout, wait, stand_in)
    }))
    .await
    .into_iter()
    .flatten()
    .collect()
}

async fn run_side(
    engine: &Engine,
    side: &Side,
    requests: u32,
    client_timeout: Option<Duration>,
    wait: Duration,
    stand_in: Option<Observation>,
) -> Vec<Observation> {
    let mut out = Vec::new();
    let mut errors = ErrorBudget::default();
    let mut stopped_early = None;
    // A side declared silent gets one request: it measures how long the silence lasts; more
    // would each wait as long and say nothing new.
    let requests = if engine.is_silent(side.role()) {
        1
    } else {
        requests
    };
    let planned = plan(side, requests);
    let nth = |n: u32| &planned[n as usize - 1];
    let mut results = Vec::new();
    let stood_in = stand_in.is_some();
    if let Some(Observation {
        request,
        exchange: Some(ex),
        ..
    }) = stand_in
    {
        results.push((1, Ok((request, ex))));
    }
    let mut n = results.len() as u32 + 1;
    while n <= requests {
        let first = engine.send_planned_waiting(nth(n), wait);
        tokio::pin!(first);
        let quick = engine.request_timeout();
        let done = if wait > quick {
            tokio::select! {
                r = &mut first => Some(r),
                _ = tokio::time::sleep(quick) => None,
            }
        } else {
            Some((&mut first).await)
        };
        match done {
            Some(result) => {
                // The error budget holds between requests sent in a row: a side that fails
                // fast three times is not asked again.
                let failed_in_a_row = match &result {
                    Ok((_, ex)) => !errors.record(side.role(), ex),
                    Err(_) => true,
                };
                results.push((n, result));
                n += 1;
                if failed_in_a_row {
                    break;
                }
            }
            None => {
                // This request waits past the run's request timeout, as the family means to (a
                // listener's own timeout is seen firing): the rest would each wait as long in a
                // row, so they go out now, beside it.
                let rest = (n + 1..=requests).map(|m| engine.send_planned_waiting(nth(m), wait));
                let (head, tail) =
                    futures_util::future::join(first, futures_util::future::join_all(rest)).await;
                results.push((n, head));
                results.extend((n + 1..=requests).zip(tail));
                break;
            }
        }
    }
    let mut errors = ErrorBudget::default();
    for (n, result) in results {
        let (sent, ex) = match result {
            Ok(done) => done,
            Err(why) => {
                stopped_early = Some(why.to_string());
                break;
            }
        };
        let keep_going = errors.record(side.role(), &ex);
        out.push(engine.observation(
            Family::Latency,
            nth(n).variant.clone(),
            side,
            true,
            EVIDENCE,
            sent,
            Some(ex),
            Detail::None,
        ));
        if !keep_going && n < requests {
            let why = format!(
                "{ERROR_BUDGET} requests in a row got no answer; the remaining {} were not sent",
                requests - n
            );
            engine.note(format!("latency to {}: {why}", side.endpoint.label()));
            stopped_early = Some(why);
            break;
        }
    }
    if out.is_empty() {
        return out;
    }
    let exchanges: Vec<&Exchange> = out.iter().filter_map(|o| o.exchange.as_ref()).collect();
    let stats = LatencyStats::of(
        &side.endpoint.label(),
        &exchanges,
        wait,
        client_timeout,
        stopped_early,
    );
    let summary = SentRequest::described(
        if stood_in {
            "statistics of the baseline GET, which stands for this family's one request to a side declared silent".to_string()
        } else {
            format!(
                "statistics of {} GET requests, one at a time",
                stats.requests
            )
        },
        0,
        false,
    );
    // Not a request itself: kept out of the rules that compare well-formed requests.
    let stats_obs = engine.observation(
        Family::Latency,
        "stats",
        side,
        false,
        EVIDENCE,
        summary,
        None,
        Detail::Latency(stats),
    );
    out.push(stats_obs);
    out
}

/// The `n`th timed request: the baseline GET, through the engine.
fn request(side: &Side, n: u32) -> Planned {
    side.planned(
        Family::Latency,
        format!("request-{n}"),
        Via::Raw,
        protocol::baseline_request(side),
    )
}

/// The requests a run sends to a side that answers (a silent one gets the first only).
pub fn plan(side: &Side, requests: u32) -> Vec<Planned> {
    (1..=requests).map(|n| request(side, n)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::{Response, Timings};

    fn exchange(
        first_byte: Option<f64>,
        total: f64,
        status: Option<u16>,
        end: ConnEnd,
    ) -> Exchange {
        let connected = !end.never_connected();
        Exchange {
            timings: Timings {
                connect_ms: connected.then_some(0.5),
                tls_ms: None,
                first_byte_ms: first_byte,
                total_ms: total,
                dns_ms: None,
                transfer_ms: None,
            },
            bytes_out: 10,
            bytes_in: 10,
            response: status.map(|status| Response::complete(status, "", &[], b"")),
            tcp_rtt_us: connected.then_some(2000),
            tcp_retransmits: connected.then_some(1),
            ..Exchange::ended("127.0.0.1:1", end)
        }
    }

    #[test]
    fn nearest_rank_percentiles() {
        let values: Vec<f64> = (1..=10).map(f64::from).collect();
        let p = Percentiles::of(&values, 0).unwrap();
        assert_eq!(
            (p.min, p.median, p.p95, p.p99, p.max),
            (1.0, 5.0, 10.0, 10.0, 10.0)
        );
        assert_eq!(p.mean, 5.5);
        let hundred: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        let p = Percentiles::of(&hundred, 0).unwrap();
        assert_eq!((p.median, p.p95, p.p99), (50.0, 95.0, 99.0));
        assert_eq!(Percentiles::of(&[], 0), None);
    }

    #[test]
    fn timed_out_requests_count_as_the_wait_and_failures_apart() {
        let ok = exchange(Some(300.0), 301.0, Some(200), ConnEnd::Complete);
        let slow = exchange(None, 2001.0, None, ConnEnd::Timeout);
        let refused = exchange(None, 0.2, None, ConnEnd::ConnectRefused);
        let reset = exchange(None, 1.0, None, ConnEnd::Reset);
        let stats = LatencyStats::of(
            "127.0.0.1:1",
            &[&ok, &slow, &refused, &reset],
            Duration::from_secs(2),
            Some(Duration::from_millis(100)),
            None,
        );
        assert_eq!(
            (
                stats.requests,
                stats.answered,
                stats.timed_out,
                stats.not_connected,
                stats.failed
            ),
            (4, 1, 1, 1, 1)
        );
        assert_eq!(stats.statuses.get(&200), Some(&1));
        let first = stats.times.first_byte_ms.clone().unwrap();
        assert_eq!((first.samples, first.censored, first.max), (2, 1, 2000.5));
        assert_eq!(stats.times.total_ms.as_ref().unwrap().samples, 3);
        assert_eq!(stats.client_timeout_ms, Some(100.0));
        let path = stats.path.unwrap();
        assert_eq!((path.connections, path.retransmits), (3, 3));
        assert_eq!(path.rtt_mean_ms, 2.0);
        assert_eq!(path.rtt_stddev_ms, 0.0);
    }

    #[test]
    fn waits_past_the_longest_timeout() {
        let p = Profile::nginx().with_declared(&crate::profile::Numbers {
            response_timeout: Some(Duration::from_secs(1)),
            connect_timeout: Some(Duration::from_secs(1)),
            ..Default::default()
        });
        assert_eq!(wait_for(&p, None), Duration::from_secs(2));
        assert_eq!(
            wait_for(&p, Some(Duration::from_secs(30))),
            Duration::from_secs(33)
        );
        assert_eq!(wait_for(&Profile::clb(), None), Duration::from_secs(66));
    }
}
