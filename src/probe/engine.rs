//! Runs a plan of probe families against the targets, under one [`Budget`].

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::profile::Profile;
use crate::target::{Role, Scheme, Target};
use crate::transport::{self, Bounds, Endpoint, Exchange, Sniff, Wire};

use super::budget::{Budget, Exhausted, Interrupt};
use super::{
    connect, h2, header_size, keepalive, latency, malformed, methods, mtu, partial, pool, protocol,
    rate, response,
};
use super::{Detail, Family, Limits, Observation, ProbeSpec, SentRequest};

/// Everything a run needs; built from a scenario or from `scan` flags.
#[derive(Debug, Clone)]
pub struct Plan {
    pub listener: Option<Target>,
    pub backend: Option<Target>,
    pub profile: Profile,
    pub probes: Vec<ProbeSpec>,
    pub limits: Limits,
    /// Header names whose values are masked in every recorded request (besides the defaults).
    pub mask: Vec<String>,
    /// Add `X-Lbprobe-Id: <run>-<n>` to every raw request, so that a capture on the backend
    /// host can tell which probes reached it. Off by default: it changes the bytes sent.
    pub marker: bool,
    /// Every member of the backend pool behind the listener, when there are several: the
    /// `pool` family asks each directly. `backend` stays the one compared side by side.
    pub pool: Vec<Target>,
}

/// The marker header's name.
pub const MARKER_HEADER: &str = "X-Lbprobe-Id";

use crate::transport::mask::Mask;
pub use crate::transport::mask::{mask_headers, masked_target, ALWAYS_MASKED};

/// What a run produced.
#[derive(Debug, Clone)]
pub struct RunOutput {
    pub observations: Vec<Observation>,
    /// Things the person should know: skipped probes, adjusted wires, caps reached.
    pub notes: Vec<String>,
    pub requests_sent: u32,
    /// True when a cap stopped probes before they finished.
    pub partial: bool,
}

/// Progress events for the caller's progress display; the engine never prints.
#[derive(Debug, Clone)]
pub enum Progress {
    Planned {
        families: Vec<Family>,
    },
    /// What a stage of the run observed, masked as the report will hold it: the sniffs and
    /// baselines before any family, then each family's observations as it finishes (just before
    /// its `FamilyDone`). Ids are provisional until the run ends. For callers that want answers
    /// before the run is over; the engine itself never looks at what they make of them.
    Observed {
        observations: Vec<Observation>,
    },
    FamilyDone {
        family: Family,
    },
    Request {
        sent: u32,
    },
}

pub type ProgressFn = Arc<dyn Fn(Progress) + Send + Sync>;

/// One side as probes see it: the target plus how its port is really spoken to.
#[derive(Debug, Clone)]
pub struct Side {
    pub target: Target,
    pub endpoint: Endpoint,
    /// The side chose h2 when offered it (ALPN): client-library checks run over h2 too.
    pub h2: bool,
}

impl Side {
    pub fn new(target: Target, tls: bool) -> Side {
        let wire = if tls {
            Wire::Tls {
                server_name: target.server_name().to_string(),
                tls: target.tls_settings(),
            }
        } else {
            Wire::Plain
        };
        let (host, port) = target.connect_host_port();
        Side {
            endpoint: Endpoint {
                host: host.to_string(),
                port,
                wire,
                family: target.family,
            },
            target,
            h2: false,
        }
    }

    pub fn role(&self) -> Role {
        self.target.role
    }

    pub fn is_tls(&self) -> bool {
        matches!(self.endpoint.wire, Wire::Tls { .. })
    }

    /// Extra headers of the target as CRLF-terminated lines.
    pub fn extra_lines(&self) -> String {
        self.target
            .headers
            .iter()
            .map(|(k, v)| format!("{k}: {v}\r\n"))
            .collect()
    }
}

/// Shared state of a run: the budget, bounds and the observation sink.
pub struct Engine {
    pub budget: Budget,
    pub profile: Profile,
    request_timeout: Duration,
    connect_timeout: Duration,
    mask: Mask,
    progress: ProgressFn,
    notes: Mutex<Vec<String>>,
    counter: AtomicU32,
    /// The run's id when requests carry the marker header.
    marker: Option<String>,
    marks: AtomicU32,
    /// Sides declared silent after the baseline (see [`is_silent`]).
    silent: Mutex<Vec<Role>>,
}

/// A probe family stops talking to a side after this many consecutive timeouts or connect
/// failures: the target's health outranks the diagnosis.
pub const ERROR_BUDGET: u32 = 3;

impl Engine {
    /// A copy of `observations` with every secret header value masked, for eyes outside the
    /// engine before the run's own masking pass at its end.
    fn masked(&self, observations: &[Observation]) -> Vec<Observation> {
        let mut copy = observations.to_vec();
        for o in copy.iter_mut() {
            if let Some(ex) = o.exchange.as_mut() {
                self.mask.exchange(ex);
            }
        }
        copy
    }

    pub fn note(&self, text: impl Into<String>) {
        self.notes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(text.into());
    }

    pub fn bounds(&self, wait: Option<Duration>) -> Bounds {
        let total = wait
            .map(|w| w.min(self.request_timeout))
            .unwrap_or(self.request_timeout)
            .min(self.budget.remaining().max(Duration::from_millis(1)));
        Bounds {
            connect_timeout: self.connect_timeout,
            total_timeout: total,
            ..Bounds::default()
        }
    }

    /// Take one request's ticket from the budget and tell the progress display. Every request
    /// any probe sends goes through here.
    pub async fn ticket(&self) -> Result<(), Exhausted> {
        self.budget.ticket().await?;
        (self.progress)(Progress::Request {
            sent: self.budget.sent(),
        });
        Ok(())
    }

    /// Send exact bytes and wait up to `max_wait` for the side to answer or give up, beyond the
    /// per-request timeout: for probes that measure how long a side waits (partial requests,
    /// slow backends). Still capped by the run's remaining time.
    pub async fn send_raw_waiting(
        &self,
        side: &Side,
        bytes: &[u8],
        max_wait: Duration,
    ) -> Result<(SentRequest, Exchange), Exhausted> {
        self.ticket().await?;
        let marked = self.mark(bytes);
        let bytes = marked.as_slice();
        let bounds = Bounds {
            total_timeout: max_wait.min(self.budget.remaining().max(Duration::from_millis(1))),
            ..self.bounds(None)
        };
        // Waits run long (a listener's request timeout, a slow backend): an interrupt drops
        // the one in flight rather than hold the report back for it.
        let mut exchange = tokio::select! {
            ex = transport::exchange(&side.endpoint, bytes, &bounds) => ex,
            _ = self.budget.interrupt().triggered() => return Err(Exhausted::Interrupted),
        };
        self.mask_response(&mut exchange);
        Ok((self.sent(bytes, true), exchange))
    }

    /// Send exact bytes to a side over its wire.
    pub async fn send_raw(
        &self,
        side: &Side,
        bytes: &[u8],
        wait: Option<Duration>,
    ) -> Result<(SentRequest, Exchange), Exhausted> {
        self.send_raw_over(side, &side.endpoint, bytes, wait).await
    }

    /// Send exact bytes over a chosen endpoint (e.g. plain HTTP to a TLS port).
    pub async fn send_raw_over(
        &self,
        side: &Side,
        endpoint: &Endpoint,
        bytes: &[u8],
        wait: Option<Duration>,
    ) -> Result<(SentRequest, Exchange), Exhausted> {
        let _ = side;
        self.ticket().await?;
        let marked = self.mark(bytes);
        let bytes = marked.as_slice();
        let mut exchange = transport::exchange(endpoint, bytes, &self.bounds(wait)).await;
        self.mask_response(&mut exchange);
        Ok((self.sent(bytes, true), exchange))
    }

    /// The request with the marker header after its first line, when the plan asks for it.
    fn mark(&self, bytes: &[u8]) -> Vec<u8> {
        let Some(run) = &self.marker else {
            return bytes.to_vec();
        };
        let n = self.marks.fetch_add(1, Ordering::SeqCst) + 1;
        insert_marker(bytes, &format!("{run}-{n}"))
    }

    pub async fn sniff(&self, side: &Side) -> Result<Sniff, Exhausted> {
        // A sniff costs up to two connections.
        self.ticket().await?;
        self.ticket().await?;
        // The endpoint, not the URL: `--connect-to` and `-4`/`-6` hold for the sniff too.
        Ok(transport::sniff::sniff_over(
            &side.endpoint.host,
            side.endpoint.port,
            side.endpoint.family,
            side.target.server_name(),
            &side.target.host_header(),
            &side.target.tls_settings(),
            &self.bounds(None),
        )
        .await)
    }

    /// Record what was sent, with secrets masked.
    pub fn sent(&self, bytes: &[u8], exact: bool) -> SentRequest {
        SentRequest {
            text: transport::escape_bytes(&self.mask.bytes(bytes)),
            bytes: bytes.len(),
            exact,
        }
    }

    pub fn mask_response(&self, exchange: &mut Exchange) {
        self.mask.exchange(exchange);
    }

    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// Whether the side was declared silent after the baseline.
    pub fn is_silent(&self, role: Role) -> bool {
        self.silent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&role)
    }

    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// A new observation with a provisional id (renumbered in order at the end of the run).
    #[allow(clippy::too_many_arguments)]
    pub fn observation(
        &self,
        family: Family,
        variant: impl Into<String>,
        side: &Side,
        well_formed: bool,
        evidence_for: &[&str],
        request: SentRequest,
        exchange: Option<Exchange>,
        detail: Detail,
    ) -> Observation {
        let n = self.counter.fetch_add(1, Ordering::SeqCst);
        Observation {
            id: format!("tmp{n}"),
            family,
            variant: variant.into(),
            role: side.role(),
            well_formed,
            evidence_for: evidence_for.iter().map(|s| s.to_string()).collect(),
            request,
            exchange,
            detail,
        }
    }
}

/// Insert `X-Lbprobe-Id: VALUE` as the last header line, just before the blank line that
/// ends the head, so that every malformed line of the template keeps its place: right after
/// the request line it would turn a whitespace line that must come first into the marker's
/// continuation, and before a leading CRLF it would stand in front of the request line. A
/// request whose head never ends (partial probes, CR-only line ends, HTTP/0.9) gets none: no
/// place is safe, and such a request is not forwarded whole anyway.
pub fn insert_marker(bytes: &[u8], value: &str) -> Vec<u8> {
    // Binary (a TLS ClientHello, garbage) is no HTTP head: a marker would only corrupt it.
    if bytes
        .first()
        .is_some_and(|b| !b.is_ascii_graphic() && !b.is_ascii_whitespace())
    {
        return bytes.to_vec();
    }
    let Some(lf) = head_end(bytes) else {
        return bytes.to_vec();
    };
    // The marker line ends like the line before it, so a bare-LF probe stays bare-LF.
    let eol = if lf > 0 && bytes[lf - 1] == b'\r' {
        "\r\n"
    } else {
        "\n"
    };
    let mut out = Vec::with_capacity(bytes.len() + 48);
    out.extend_from_slice(&bytes[..=lf]);
    out.extend_from_slice(format!("{MARKER_HEADER}: {value}{eol}").as_bytes());
    out.extend_from_slice(&bytes[lf + 1..]);
    out
}

/// The LF that ends the head's last line: the first one followed by a blank line (LF or CRLF)
/// once a line with content (the request line) has been seen; leading blank or whitespace-only
/// lines are not the end of a head.
fn head_end(bytes: &[u8]) -> Option<usize> {
    let mut line_start = 0;
    let mut seen_content = false;
    for lf in memchr::memchr_iter(b'\n', bytes) {
        let line = &bytes[line_start..lf];
        seen_content |= line.iter().any(|b| !matches!(b, b' ' | b'\t' | b'\r'));
        let rest = &bytes[lf + 1..];
        if seen_content && (rest.starts_with(b"\n") || rest.starts_with(b"\r\n")) {
            return Some(lf);
        }
        line_start = lf + 1;
    }
    None
}

/// A run id for markers: distinct across runs on one host without a random-number crate.
fn run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mixed = (nanos as u64) ^ (u64::from(std::process::id()) << 32);
    format!("{:08x}", (mixed ^ (mixed >> 29)) as u32)
}

/// A connection that opened and then got no complete answer before the deadline: silence, or
/// bytes trickled too slowly to make an answer. Either way the side is not answering.
pub fn is_silent(ex: &Exchange) -> bool {
    ex.timings.connect_ms.is_some()
        && ex.end == transport::ConnEnd::Timeout
        && !ex.response.as_ref().is_some_and(|r| r.complete)
}

/// The one note for the silent sides: what they did and which families leave them out.
fn silence_note(silent: &[Role], probes: &[ProbeSpec], sides: &[Side]) -> Option<String> {
    if silent.is_empty() {
        return None;
    }
    let who: Vec<String> = sides
        .iter()
        .filter(|s| silent.contains(&s.role()))
        .map(|s| format!("the {} {}", s.role(), s.endpoint.label()))
        .collect();
    let skipped: Vec<&str> = probes
        .iter()
        .filter(|p| p.needs_answers())
        .map(|p| p.family().as_str())
        .collect();
    let skips = if skipped.is_empty() {
        String::new()
    } else {
        format!("; {} skip it", skipped.join(", "))
    };
    Some(format!(
        "{} accepted the connection but sent no complete answer to a valid GET within the request timeout: declared silent{skips}, and latency sends it one request",
        who.join(" and ")
    ))
}

/// Run the plan. Never prints; progress goes to `progress`.
pub async fn run(plan: &Plan, progress: ProgressFn) -> RunOutput {
    run_interruptible(plan, progress, Interrupt::new()).await
}

/// Run the plan until `interrupt` is triggered: from then on no request is sent, the
/// exchanges in flight finish (long waits are dropped) and the output, marked partial, holds
/// what ran.
pub async fn run_interruptible(
    plan: &Plan,
    progress: ProgressFn,
    interrupt: Interrupt,
) -> RunOutput {
    let engine = Engine {
        budget: Budget::new(plan.limits).with_interrupt(interrupt.clone()),
        profile: plan.profile.clone(),
        request_timeout: plan.limits.request_timeout,
        // A connect waits as long as the listener's own connect timeout would (so a listener
        // that gives up first is seen doing so), never past the run's request timeout.
        connect_timeout: plan
            .profile
            .effective()
            .connect_timeout
            .unwrap_or(plan.limits.request_timeout)
            .min(plan.limits.request_timeout),
        mask: Mask::new(
            &plan.mask,
            plan.listener
                .iter()
                .chain(plan.backend.iter())
                .chain(plan.pool.iter()),
        ),
        progress: progress.clone(),
        notes: Mutex::new(Vec::new()),
        counter: AtomicU32::new(0),
        marker: plan.marker.then(run_id),
        marks: AtomicU32::new(0),
        silent: Mutex::new(Vec::new()),
    };
    if let Some(run) = &engine.marker {
        engine.note(format!(
            "raw requests carry `{MARKER_HEADER}: {run}-<n>` (run {run}); methods sent through the HTTP client do not"
        ));
    }
    let families: Vec<Family> = plan.probes.iter().map(ProbeSpec::family).collect();
    progress(Progress::Planned {
        families: families.clone(),
    });

    let listener = plan
        .listener
        .clone()
        .map(|t| Side::new(t.clone(), t.scheme == Scheme::Https));
    let mut backend = plan
        .backend
        .clone()
        .map(|t| Side::new(t.clone(), t.scheme == Scheme::Https));

    // The protocol sniff runs first and alone: what the backend port really speaks decides how
    // every other probe talks to it.
    let mut observations = Vec::new();
    let want_protocol = families.contains(&Family::Protocol);
    // Both sniffs at once: a side that answers neither TLS nor HTTP costs its timeout once,
    // not once per side in a row.
    let listener_sniff = async {
        match listener.as_ref() {
            Some(side) if want_protocol => protocol::sniff(&engine, side).await.0,
            _ => None,
        }
    };
    // The backend sniff always runs: direct probes over the wrong wire would be noise.
    let backend_sniff = async {
        match backend.as_ref() {
            Some(side) => Some(protocol::sniff(&engine, side).await),
            None => None,
        }
    };
    let (listener_obs, backend_sniffed) =
        futures_util::future::join(listener_sniff, backend_sniff).await;
    observations.extend(listener_obs);
    if let (Some(side), Some((obs, tls))) = (backend.as_mut(), backend_sniffed) {
        observations.extend(obs);
        if let Some(tls) = tls.filter(|&tls| tls != side.is_tls()) {
            let speaks = if tls { "TLS" } else { "plain HTTP" };
            engine.note(format!(
                "the backend port {}:{} speaks {speaks} though its URL says {}; direct probes use {speaks}",
                side.target.host,
                side.target.port,
                if side.is_tls() { "https" } else { "http" },
            ));
            *side = Side::new(side.target.clone(), tls);
        }
    }
    let mut sides: Vec<Side> = listener.into_iter().chain(backend).collect();
    // The baseline (a valid GET to each side) always runs: reachability and the backend's own
    // answer to a valid request are what every comparison leans on.
    observations.extend(protocol::run(&engine, &sides, want_protocol).await);
    // Whether TLS sides speak h2 decides whether the client-library checks run over it too.
    if families.iter().any(|f| h2::FAMILIES.contains(f)) {
        observations.extend(h2::detect(&engine, &mut sides).await);
    }
    let sides = sides;
    progress(Progress::Observed {
        observations: engine.masked(&observations),
    });
    if want_protocol {
        progress(Progress::FamilyDone {
            family: Family::Protocol,
        });
    }
    // A side that accepted the connection and never answered the valid GET (or only trickled
    // bytes) within the request timeout is declared silent once: the families that need
    // answers skip it instead of each waiting out its timeouts there. The timing families still
    // measure it (a hung backend is the verdict), with one request where they would send many.
    let silent: Vec<Role> = sides
        .iter()
        .filter(|side| {
            observations.iter().any(|o| {
                o.family == Family::Protocol
                    && o.variant == "baseline"
                    && o.role == side.role()
                    && o.exchange.as_ref().is_some_and(is_silent)
            })
        })
        .map(Side::role)
        .collect();
    let answering: Vec<Side> = sides
        .iter()
        .filter(|s| !silent.contains(&s.role()))
        .cloned()
        .collect();
    if let Some(skipped) = silence_note(&silent, &plan.probes, &sides) {
        engine.note(skipped);
    }
    for role in &silent {
        engine
            .silent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(*role);
    }
    let mut work = Vec::new();
    let mut alone = Vec::new();
    for spec in &plan.probes {
        let engine = &engine;
        let sides = if spec.needs_answers() {
            &answering
        } else {
            &sides
        };
        let progress = progress.clone();
        let probe = async move {
            let obs = match spec {
                ProbeSpec::Protocol => Vec::new(),
                ProbeSpec::Malformed { variants } => {
                    malformed::run(engine, sides, variants.as_deref()).await
                }
                ProbeSpec::Methods { methods: list } => {
                    methods::run(engine, sides, list.as_deref()).await
                }
                ProbeSpec::HeaderSize { .. }
                | ProbeSpec::HeaderLimit { .. }
                | ProbeSpec::UriLimit { .. } => header_size::run(engine, sides, spec).await,
                ProbeSpec::Partial { max_wait } => partial::run(engine, sides, *max_wait).await,
                ProbeSpec::Latency {
                    requests,
                    client_timeout,
                } => latency::run(engine, sides, *requests, *client_timeout).await,
                ProbeSpec::Connect { attempts } => connect::run(engine, sides, *attempts).await,
                ProbeSpec::Response => response::run(engine, sides).await,
                ProbeSpec::Rate(spec) => rate::run(engine, sides, spec).await,
                ProbeSpec::Mtu(spec) => mtu::run(engine, sides, spec).await,
                ProbeSpec::Keepalive {
                    max_wait,
                    reproduce,
                } => keepalive::run(engine, sides, *max_wait, *reproduce).await,
                ProbeSpec::Pool(spec) => pool::run(engine, sides, &plan.pool, spec).await,
            };
            if spec.family() != Family::Protocol {
                progress(Progress::Observed {
                    observations: engine.masked(&obs),
                });
                progress(Progress::FamilyDone {
                    family: spec.family(),
                });
            }
            obs
        };
        if spec.runs_alone() {
            alone.push(probe);
        } else {
            work.push(probe);
        }
    }
    for obs in futures_util::future::join_all(work).await {
        observations.extend(obs);
    }
    // After the others, one at a time: a load ramp that trips a rate limit would turn the
    // other probes' answers into 503s and their timings into queueing delays.
    for probe in alone {
        observations.extend(probe.await);
    }

    // Every family's answers pass through one mask before they are kept: some families build
    // their exchanges outside the engine's send functions.
    for o in observations.iter_mut() {
        if let Some(ex) = o.exchange.as_mut() {
            engine.mask.exchange(ex);
        }
    }
    // Stable ids in a stable order: family, variant, role, then send order.
    observations.sort_by(|a, b| {
        (a.family, &a.variant, a.role, id_num(&a.id)).cmp(&(
            b.family,
            &b.variant,
            b.role,
            id_num(&b.id),
        ))
    });
    for (i, o) in observations.iter_mut().enumerate() {
        o.id = format!("o{}", i + 1);
    }

    let mut notes = engine
        .notes
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let partial = engine.budget.refusal().is_some() || interrupt.is_triggered();
    if let Some(why) = engine.budget.refusal() {
        notes.push(format!("stopped early: {why}; the report covers what ran"));
    }
    if interrupt.is_triggered() && engine.budget.refusal() != Some(Exhausted::Interrupted) {
        notes.push(format!(
            "stopped early: {}; the report covers what ran",
            Exhausted::Interrupted
        ));
    }
    RunOutput {
        observations,
        notes,
        requests_sent: engine.budget.sent(),
        partial,
    }
}

fn id_num(id: &str) -> u32 {
    id.trim_start_matches("tmp").parse().unwrap_or(0)
}

/// Consecutive-failure counter per side: a side that keeps timing out is left alone.
#[derive(Default)]
pub struct ErrorBudget {
    consecutive: BTreeMap<Role, u32>,
}

impl ErrorBudget {
    /// Record an exchange; returns false once the side has failed too often in a row.
    pub fn record(&mut self, role: Role, exchange: &Exchange) -> bool {
        // A trickle of bytes that never made an answer before the deadline is a timeout too:
        // a dripping server must trip the budget as a silent one does.
        let failed = exchange.end.never_connected()
            || (matches!(exchange.end, transport::ConnEnd::Timeout)
                && !exchange.response.as_ref().is_some_and(|r| r.complete));
        let n = self.consecutive.entry(role).or_insert(0);
        *n = if failed { *n + 1 } else { 0 };
        *n < ERROR_BUDGET
    }

    pub fn exhausted(&self, role: Role) -> bool {
        self.consecutive.get(&role).copied().unwrap_or(0) >= ERROR_BUDGET
    }
}
