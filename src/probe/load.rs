//! The load generator behind the `rate` family: the same request over a small pool of reused
//! HTTP/1.1 keep-alive connections (plain TCP or TLS), paced at a fixed rate by interval ticks or
//! sent back to back, with per-step counts by status, errors and latency percentiles.
//!
//! One request is in flight per connection (no pipelining): a response is read until its own
//! framing (Content-Length, chunked end, no body) completes it, with the transport's bounded
//! parser, so a connection is reused only when the previous answer is known to be over.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::stream::{FuturesUnordered, StreamExt};
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::{timeout_at, Instant, MissedTickBehavior};

use crate::transport::exchange::{connect_endpoint, tls_handshake};
use crate::transport::response::{completion, parse_response, Completion};
use crate::transport::{Bounds, ConnEnd, Endpoint, Response, Wire};

/// Where to send, what, and within which bounds.
#[derive(Debug, Clone)]
pub struct LoadTarget {
    pub endpoint: Endpoint,
    /// One complete request, sent as is each time (it must not ask for `Connection: close`
    /// if reuse is wanted).
    pub request: Vec<u8>,
    pub bounds: Bounds,
}

/// Largest pool a paced step opens: a rate this generator is asked for (at most the ceiling,
/// 1000 rps) with answers under 64 ms needs no more.
pub const MAX_POOL: usize = 64;

/// What one step (a rate held for a while) got.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct StepStats {
    /// The rate asked for; `None` for back-to-back sending.
    pub target_rps: Option<f64>,
    /// Requests sent divided by the step's length.
    pub achieved_rps: f64,
    pub duration_ms: f64,
    pub sent: u32,
    /// Answers by status code.
    pub answered: BTreeMap<u16, u32>,
    /// Requests without an HTTP answer, by what happened (`refused`, `timeout`, `reset`...).
    pub errors: BTreeMap<String, u32>,
    /// Ticks that found every connection of the pool busy: the request was not sent.
    pub skipped: u32,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    /// The first answer of each non-2xx status, for who-wrote-it checks.
    pub samples: BTreeMap<u16, Response>,
    /// Connections opened during the step.
    pub connections: u32,
    #[serde(skip)]
    latencies: Vec<f64>,
}

impl StepStats {
    pub fn answers(&self) -> u32 {
        self.answered.values().sum()
    }

    pub fn count(&self, status: u16) -> u32 {
        self.answered.get(&status).copied().unwrap_or(0)
    }

    pub fn error_count(&self) -> u32 {
        self.errors.values().sum()
    }

    fn record(&mut self, outcome: Outcome) {
        self.sent += 1;
        match outcome.result {
            Ok(answer) => {
                *self.answered.entry(answer.status).or_insert(0) += 1;
                self.latencies.push(outcome.ms);
                if let Some(response) = answer.response {
                    self.samples.entry(answer.status).or_insert(response);
                }
            }
            Err(kind) => *self.errors.entry(kind).or_insert(0) += 1,
        }
    }

    fn merge(&mut self, other: StepStats) {
        self.sent += other.sent;
        self.skipped += other.skipped;
        self.connections += other.connections;
        for (k, v) in other.answered {
            *self.answered.entry(k).or_insert(0) += v;
        }
        for (k, v) in other.errors {
            *self.errors.entry(k).or_insert(0) += v;
        }
        for (k, v) in other.samples {
            self.samples.entry(k).or_insert(v);
        }
        self.latencies.extend(other.latencies);
    }

    fn finish(&mut self, elapsed: Duration) {
        self.duration_ms = elapsed.as_secs_f64() * 1000.0;
        let secs = elapsed.as_secs_f64();
        self.achieved_rps = if secs > 0.0 {
            f64::from(self.sent) / secs
        } else {
            0.0
        };
        self.latencies.sort_by(f64::total_cmp);
        self.p50_ms = percentile(&self.latencies, 0.50);
        self.p95_ms = percentile(&self.latencies, 0.95);
        self.latencies = Vec::new();
    }
}

fn percentile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((sorted.len() as f64) * q).ceil() as usize;
    sorted
        .get(rank.saturating_sub(1).min(sorted.len() - 1))
        .copied()
}

/// One request's outcome: the answer's status-bearing parse, or what went wrong.
struct Outcome {
    ms: f64,
    result: Result<Answer, String>,
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// One keep-alive connection, opened on first use and again after the server closes it.
#[derive(Default)]
pub struct Conn {
    stream: Option<Box<dyn Io>>,
    buf: Vec<u8>,
}

impl Conn {
    async fn open(&mut self, target: &LoadTarget) -> Result<(), String> {
        let tcp = connect_endpoint(&target.endpoint, &target.bounds)
            .await
            .map_err(|end| end_kind(&end))?;
        self.stream = Some(match &target.endpoint.wire {
            Wire::Plain => Box::new(tcp),
            Wire::Tls { server_name, tls } => {
                let deadline = Instant::now() + target.bounds.total_timeout;
                let tls = tls_handshake(tcp, server_name, tls, deadline)
                    .await
                    .map_err(|f| end_kind(&f.end))?;
                Box::new(tls)
            }
        });
        Ok(())
    }

    /// Send the request and read its answer; `opened` is set when a connection was made.
    async fn request(&mut self, target: &LoadTarget, opened: &mut bool) -> Outcome {
        let started = Instant::now();
        let result = self.try_request(target, opened).await;
        if result.is_err() {
            self.stream = None;
        }
        Outcome {
            ms: started.elapsed().as_secs_f64() * 1000.0,
            result,
        }
    }

    async fn try_request(
        &mut self,
        target: &LoadTarget,
        opened: &mut bool,
    ) -> Result<Answer, String> {
        if self.stream.is_none() {
            self.open(target).await?;
            *opened = true;
        }
        let Some(stream) = self.stream.as_mut() else {
            return Err("not connected".into());
        };
        let deadline = Instant::now() + target.bounds.total_timeout;
        match timeout_at(deadline, stream.write_all(&target.request)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(io_kind(&e)),
            Err(_) => return Err("timeout".into()),
        }
        self.buf.clear();
        let limits = &target.bounds.parse;
        let head_request = target.request.starts_with(b"HEAD ");
        // Re-parse only when the new bytes can have completed the answer.
        let mut wait_for = 0usize;
        loop {
            if self.buf.len() >= target.bounds.max_response_bytes {
                return Err("size-bound".into());
            }
            self.buf.reserve(16 * 1024);
            let n = match timeout_at(deadline, stream.read_buf(&mut self.buf)).await {
                Ok(Ok(n)) => n,
                Ok(Err(e)) => return Err(io_kind(&e)),
                Err(_) => return Err("timeout".into()),
            };
            if n == 0 {
                // Closed: a close-delimited answer ends here; anything else was cut short.
                let answer = crate::transport::response::parse_response_closed(
                    &self.buf,
                    head_request,
                    limits,
                );
                self.stream = None;
                return match answer {
                    Some(r) if r.complete => Ok(Answer {
                        status: r.status,
                        response: Some(r),
                    }),
                    _ if self.buf.is_empty() => Err("closed".into()),
                    _ => Err("cut-short".into()),
                };
            }
            if self.buf.len() < wait_for {
                continue;
            }
            match completion(&self.buf, head_request, limits) {
                Completion::Complete => break,
                Completion::AtLength(total) => wait_for = total,
                Completion::AtBlankLine | Completion::AtClose => wait_for = 0,
            }
        }
        let Some(head) = Head::read(&self.buf) else {
            self.stream = None;
            return Err("not-http".into());
        };
        if head.close {
            self.stream = None;
        }
        // The full parse only for answers worth keeping as samples: a 2xx is only counted.
        let response = if (200..300).contains(&head.status) {
            None
        } else {
            parse_response(&self.buf, head_request, limits)
        };
        Ok(Answer {
            status: head.status,
            response,
        })
    }
}

/// An answer as the counts need it: its status, and the parse of a non-2xx one.
struct Answer {
    status: u16,
    response: Option<Response>,
}

/// What a complete answer's head says about the connection, read without a full parse.
struct Head {
    status: u16,
    /// `Connection: close`, or HTTP/1.0: the server will not take another request.
    close: bool,
}

impl Head {
    fn read(bytes: &[u8]) -> Option<Head> {
        let end = crate::bytes::find(bytes, b"\r\n\r\n").unwrap_or(bytes.len());
        let mut lines = bytes[..end].split(|&b| b == b'\n');
        let status_line = lines.next()?;
        let version = status_line.get(..8)?;
        if !version.starts_with(b"HTTP/") {
            return None;
        }
        let code = std::str::from_utf8(status_line.get(9..12)?).ok()?;
        let status = code.parse().ok()?;
        let close = version == b"HTTP/1.0"
            || lines.any(|line| {
                let line = line.to_ascii_lowercase();
                line.starts_with(b"connection:") && crate::bytes::contains(&line, b"close")
            });
        Some(Head { status, close })
    }
}

fn end_kind(end: &ConnEnd) -> String {
    match end {
        ConnEnd::ConnectRefused => "refused".into(),
        ConnEnd::ConnectTimeout => "connect-timeout".into(),
        ConnEnd::Unreachable(_) | ConnEnd::NameNotResolved(_) => "unreachable".into(),
        ConnEnd::Timeout => "timeout".into(),
        ConnEnd::Reset => "reset".into(),
        ConnEnd::TlsFailed(_) | ConnEnd::TlsAlert(_) => "tls".into(),
        _ => "io".into(),
    }
}

fn io_kind(e: &std::io::Error) -> String {
    use std::io::ErrorKind::*;
    match e.kind() {
        ConnectionReset | ConnectionAborted | BrokenPipe => "reset".into(),
        _ => "io".into(),
    }
}

/// Whether a request may go: the engine's budget answers for probes; benchmarks let all go.
pub trait Gate {
    fn admit(&self) -> impl std::future::Future<Output = bool> + Send;
}

/// A gate that admits everything (benchmarks and tests of the generator itself).
pub struct Open;

impl Gate for Open {
    async fn admit(&self) -> bool {
        true
    }
}

/// Connections kept between steps, so a ramp's later steps reuse what earlier ones opened, and
/// the last request's turn, so a step keeps its spacing from the one before it.
#[derive(Default)]
pub struct Pool {
    idle: Vec<Conn>,
    last_turn: Option<Instant>,
}

impl Pool {
    /// Count a request sent by someone else just now (the probes before a ramp): the first
    /// paced request keeps its step's spacing from it, so a limiter does not see two requests
    /// closer together than the rate asked for.
    pub fn sent_now(&mut self) {
        self.last_turn = Some(Instant::now());
    }
}

/// Wait until `spacing` after the previous request's turn, and take this turn. The gate (the
/// run's budget, shared with other senders) may hold a request back; the ones after it then keep
/// the step's spacing from it instead of following it closer together, so what the server sees
/// stays at the rate asked for.
async fn keep_spacing(last_turn: &std::sync::Mutex<Option<Instant>>, spacing: Duration) {
    let turn = {
        let mut last = last_turn.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let turn = last.map_or(now, |t| (t + spacing).max(now));
        *last = Some(turn);
        turn
    };
    tokio::time::sleep_until(turn).await;
}

/// Why a paced step ended before its time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepEnd {
    /// It ran its full length.
    Done,
    /// It sent `max_requests`.
    Requests,
    /// The gate refused a request (the run's budget).
    Refused,
}

/// Send at `rate` requests per second for `length`, at most `max_requests`, each request
/// admitted by `gate` first. Ticks are evenly spaced; a tick that finds the whole pool busy is
/// counted as skipped rather than queued, and no two requests leave less than `1/rate` apart
/// (even when the gate held some back), so the rate asked for is never exceeded in a burst.
pub async fn paced(
    target: &LoadTarget,
    pool: &mut Pool,
    rate: f64,
    length: Duration,
    max_requests: u32,
    gate: &impl Gate,
) -> (StepStats, StepEnd) {
    let mut stats = StepStats {
        target_rps: Some(rate),
        ..StepStats::default()
    };
    let started = Instant::now();
    let mut end = StepEnd::Done;
    if rate <= 0.0 || max_requests == 0 {
        stats.finish(started.elapsed());
        return (stats, StepEnd::Requests);
    }
    let stop_at = started + length;
    let spacing = Duration::from_secs_f64(1.0 / rate);
    let last_turn = std::sync::Mutex::new(pool.last_turn);
    let last_turn = &last_turn;
    let mut ticks = tokio::time::interval(spacing);
    // A late tick is not made up with a burst: the rate stays an upper bound.
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut in_flight = FuturesUnordered::new();
    let mut open_conns = pool.idle.len();
    let mut sending = true;
    // Bounded by the step's length (the tick branch stops sending at `stop_at`) and by the
    // in-flight requests' own deadlines.
    loop {
        tokio::select! {
            _ = ticks.tick(), if sending => {
                if Instant::now() >= stop_at {
                    sending = false;
                } else if stats.sent + in_flight.len() as u32 >= max_requests {
                    sending = false;
                    end = StepEnd::Requests;
                } else {
                    let conn = match pool.idle.pop() {
                        Some(c) => Some(c),
                        None if open_conns < MAX_POOL => {
                            open_conns += 1;
                            Some(Conn::default())
                        }
                        None => None,
                    };
                    match conn {
                        None => stats.skipped += 1,
                        Some(mut conn) => {
                            in_flight.push(async move {
                                // The gate may wait (the run's own pacing): inside the
                                // request's future, so answers keep being read meanwhile.
                                if !gate.admit().await {
                                    return (conn, None, false);
                                }
                                keep_spacing(last_turn, spacing).await;
                                let mut opened = false;
                                let outcome = conn.request(target, &mut opened).await;
                                (conn, Some(outcome), opened)
                            });
                        }
                    }
                }
            }
            Some((conn, outcome, opened)) = in_flight.next() => {
                pool.idle.push(conn);
                match outcome {
                    Some(outcome) => {
                        stats.connections += u32::from(opened);
                        stats.record(outcome);
                    }
                    None => {
                        sending = false;
                        end = StepEnd::Refused;
                    }
                }
            }
            else => break,
        }
        if !sending && in_flight.is_empty() {
            break;
        }
    }
    pool.last_turn = *last_turn.lock().unwrap_or_else(|p| p.into_inner());
    // Sent over the time the step was sending, not waiting for its last answers.
    let elapsed = started.elapsed().min(length.max(Duration::from_millis(1)));
    stats.finish(if end == StepEnd::Done {
        length
    } else {
        elapsed
    });
    (stats, end)
}

/// Send back to back over `connections` connections (each on its own task) for `length`:
/// the generator's top speed, for the benchmark against wrk. No gate: never for probes.
pub async fn flat_out(target: &LoadTarget, connections: usize, length: Duration) -> StepStats {
    let started = Instant::now();
    let stop_at = started + length;
    let mut tasks = Vec::new();
    for _ in 0..connections.max(1) {
        let target = target.clone();
        tasks.push(tokio::spawn(async move {
            let mut stats = StepStats::default();
            let mut conn = Conn::default();
            // Bounded by `stop_at`: every request has its own deadline.
            while Instant::now() < stop_at {
                let mut opened = false;
                let outcome = conn.request(&target, &mut opened).await;
                stats.connections += u32::from(opened);
                stats.record(outcome);
            }
            stats
        }));
    }
    let mut total = StepStats::default();
    for t in tasks {
        if let Ok(s) = t.await {
            total.merge(s);
        }
    }
    total.finish(started.elapsed());
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request the gate held back 15 ms past its tick goes late; the next one, on time for
    /// its own tick, keeps the step's spacing from it instead of following it 5 ms later.
    #[tokio::test(start_paused = true)]
    async fn turns_keep_the_spacing_after_a_request_held_back() {
        let last_turn = std::sync::Mutex::new(None);
        let spacing = Duration::from_millis(20);
        let base = Instant::now();
        let mut sent = Vec::new();
        // Ready at: tick 1, tick 2 held 15 ms by the gate, tick 3, tick 4.
        for ready in [0, 35, 40, 60] {
            tokio::time::sleep_until(base + Duration::from_millis(ready)).await;
            keep_spacing(&last_turn, spacing).await;
            sent.push((Instant::now() - base).as_millis());
        }
        assert_eq!(sent, vec![0, 35, 55, 75]);
    }

    #[test]
    fn percentiles_take_the_rank_at_or_above() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), Some(50.0));
        assert_eq!(percentile(&v, 0.95), Some(95.0));
        assert_eq!(percentile(&[3.0], 0.95), Some(3.0));
        assert_eq!(percentile(&[], 0.5), None);
    }

    #[test]
    fn heads_give_status_and_whether_the_connection_closes() {
        let h = Head::read(b"HTTP/1.1 503 Service Unavailable\r\nServer: x\r\n\r\n").unwrap();
        assert_eq!((h.status, h.close), (503, false));
        let h = Head::read(b"HTTP/1.1 200 OK\r\nCONNECTION: Close\r\n\r\nbody").unwrap();
        assert_eq!((h.status, h.close), (200, true));
        let h = Head::read(b"HTTP/1.0 200 OK\r\n\r\n").unwrap();
        assert!(h.close);
        assert!(Head::read(b"SSH-2.0 hello\r\n\r\n").is_none());
        assert!(Head::read(b"HTTP/1.1 2x0 OK\r\n\r\n").is_none());
    }

    #[test]
    fn stats_count_answers_errors_and_keep_one_sample_per_status() {
        let mut s = StepStats::default();
        let answer = |status: u16| Response {
            version: "HTTP/1.1".into(),
            status,
            reason: String::new(),
            headers: Vec::new(),
            body_prefix: format!("b{status}").into(),
            body_bytes: 0,
            content_length: Some(0),
            chunked: false,
            complete: true,
            problems: Vec::new(),
        };
        for status in [200, 503, 503, 200] {
            s.record(Outcome {
                ms: 1.0,
                result: Ok(Answer {
                    status,
                    response: (status != 200).then(|| answer(status)),
                }),
            });
        }
        s.record(Outcome {
            ms: 1.0,
            result: Err("refused".into()),
        });
        s.finish(Duration::from_secs(1));
        assert_eq!(s.sent, 5);
        assert_eq!(s.count(503), 2);
        assert_eq!(s.answers(), 4);
        assert_eq!(s.error_count(), 1);
        assert_eq!(s.samples.len(), 1);
        assert_eq!(s.achieved_rps, 5.0);
    }
}
