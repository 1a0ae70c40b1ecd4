//! What every probe family works with: the [`Engine`] (the run's budget, bounds, masking, marker
//! and observation sink, and the raw send functions every request goes through), the [`Side`]s
//! it talks to, the per-side error budget, and [`Planned`], a request a family will send, as
//! its plan lists it before anything is sent.
//!
//! Families import this module and nothing of the run's dispatch (`engine`) or of the dry run:
//! the dispatch imports the families, never the other way round.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::profile::Profile;
use crate::target::{Role, Target};
use crate::transport::keepalive::{IdleEnd, KeepAliveConn};
use crate::transport::marker::{self, MarkerPlace};
use crate::transport::mask::Mask;
use crate::transport::{self, Bounds, ConnEnd, Endpoint, Exchange, Sniff, Wire};

use super::budget::{Budget, Exhausted, Interrupt};
use super::{
    AfterAnswer, ConnAfter, Detail, Family, Limits, Observation, SentRequest, SequenceResult,
};

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

    /// The side as its URL says to speak to it (https: TLS), before any sniff.
    pub fn of(target: &Target) -> Side {
        Side::new(
            target.clone(),
            target.scheme == crate::target::Scheme::Https,
        )
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

    /// A request a family will send to this side over its own wire.
    pub fn planned(
        &self,
        family: Family,
        variant: impl Into<String>,
        via: Via,
        bytes: Vec<u8>,
    ) -> Planned {
        self.planned_over(family, variant, self.endpoint.clone(), via, bytes)
    }

    /// A request a family will send to this side over another endpoint (plain TCP to its TLS
    /// port, TLS to its plain one).
    pub fn planned_over(
        &self,
        family: Family,
        variant: impl Into<String>,
        endpoint: Endpoint,
        via: Via,
        bytes: Vec<u8>,
    ) -> Planned {
        Planned {
            family,
            variant: variant.into(),
            role: self.role(),
            endpoint,
            via,
            bytes,
            wait: None,
        }
    }
}

/// How a planned request travels, which decides whether it is sent exactly as planned and
/// whether the run's marker goes into it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// The exact bytes through the engine's send functions: the marker goes in when asked for.
    Raw,
    /// The exact bytes over a connection the family holds itself (keep-alive trials, the load
    /// generator, a request we cut off): sent as they are, never marked.
    OwnConnection,
    /// A client library sends the equivalent request; the bytes show what it amounts to.
    ClientLibrary,
}

/// One request a family will send, as its plan lists it before anything is sent: the bytes
/// its `run` sends, built by the same code.
#[derive(Debug, Clone)]
pub struct Planned {
    pub family: Family,
    /// As the observation of it will be named.
    pub variant: String,
    pub role: Role,
    /// Where it goes: the side's endpoint, or another wire to the same port.
    pub endpoint: Endpoint,
    pub via: Via,
    pub bytes: Vec<u8>,
    /// How long the family waits for this request's answer when it declares a wait of its own
    /// (a template a server may sit on, an incomplete request); `None`: the run's request
    /// timeout. The run's floor names its longest wait from these.
    pub wait: Option<Duration>,
}

impl Planned {
    /// The same request with a declared wait.
    pub fn waiting(mut self, wait: Option<Duration>) -> Planned {
        self.wait = wait;
        self
    }

    /// Whether these are the bytes on the wire (else a client library's request, rendered).
    pub fn exact(&self) -> bool {
        self.via != Via::ClientLibrary
    }
}

/// The run-wide settings an [`Engine`] is built from.
#[derive(Debug, Clone)]
pub struct Settings {
    pub limits: Limits,
    pub profile: Profile,
    pub mask: Mask,
    /// The run's id when raw requests carry the marker.
    pub marker: Option<String>,
    /// Where they carry it.
    pub marker_place: MarkerPlace,
    /// `--i-own-this-target`: sequences that leave a second request behind may run.
    pub owner_confirmed: bool,
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
    marker_place: MarkerPlace,
    marks: AtomicU32,
    owner_confirmed: bool,
    /// The baselines of the sides declared silent (see [`is_silent`]).
    silent: Mutex<Vec<Observation>>,
    /// Bulk requests (many independent ones, in flight at once) queue at most this many tickets
    /// at a time: the budget hands out slots in the order they are asked for, and a request of a
    /// search that waits for each answer before its next must not wait behind a family's whole
    /// catalogue. Bulk requests still fill every free slot.
    bulk_queue: tokio::sync::Semaphore,
}

/// Whether a family's requests carry the marker in `place`: the uri-limit family's request
/// targets are the size it measures, and a marker in their query would move the limit it finds.
pub(crate) fn takes_marker(family: Family, place: MarkerPlace) -> bool {
    !(place == MarkerPlace::Query && family == Family::UriLimit)
}

/// How many tickets bulk requests hold in the budget's queue at once (see `Engine::bulk_queue`).
const BULK_QUEUE: usize = 2;

/// A probe family stops talking to a side after this many consecutive timeouts or connect
/// failures: the target's health outranks the diagnosis.
pub const ERROR_BUDGET: u32 = 3;

impl Engine {
    pub fn new(settings: Settings, progress: ProgressFn, interrupt: Interrupt) -> Engine {
        let Settings {
            limits,
            profile,
            mask,
            marker,
            marker_place,
            owner_confirmed,
        } = settings;
        Engine {
            budget: Budget::new(limits).with_interrupt(interrupt),
            request_timeout: limits.request_timeout,
            // A connect waits as long as the listener's own connect timeout would (so a
            // listener that gives up first is seen doing so), never past the run's request
            // timeout.
            connect_timeout: profile
                .effective()
                .connect_timeout
                .unwrap_or(limits.request_timeout)
                .min(limits.request_timeout),
            profile,
            mask,
            progress,
            notes: Mutex::new(Vec::new()),
            counter: AtomicU32::new(0),
            marker,
            marker_place,
            marks: AtomicU32::new(0),
            owner_confirmed,
            silent: Mutex::new(Vec::new()),
            bulk_queue: tokio::sync::Semaphore::new(BULK_QUEUE),
        }
    }

    /// The person said the target is theirs (`--i-own-this-target`).
    pub fn owner_confirmed(&self) -> bool {
        self.owner_confirmed
    }

    /// The run's id when raw requests carry the marker header.
    pub fn marker(&self) -> Option<&str> {
        self.marker.as_deref()
    }

    /// A copy of `observations` with every secret header value masked, for eyes outside the
    /// engine before the run's own masking pass at its end.
    pub fn masked(&self, observations: &[Observation]) -> Vec<Observation> {
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

    /// Every note so far, in the order they were made.
    pub fn notes(&self) -> Vec<String> {
        self.notes.lock().unwrap_or_else(|p| p.into_inner()).clone()
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

    /// Send a planned request and wait up to `max_wait` for the side to answer or give up,
    /// beyond the per-request timeout: for probes that measure how long a side waits (partial
    /// requests, slow backends). Still capped by the run's remaining time.
    pub async fn send_planned_waiting(
        &self,
        planned: &Planned,
        max_wait: Duration,
    ) -> Result<(SentRequest, Exchange), Exhausted> {
        debug_assert_eq!(planned.via, Via::Raw, "only raw requests go through here");
        self.ticket().await?;
        let marked = self.mark(planned);
        let bytes = marked.as_slice();
        let bounds = Bounds {
            total_timeout: max_wait.min(self.budget.remaining().max(Duration::from_millis(1))),
            ..self.bounds(None)
        };
        // Waits run long (a listener's request timeout, a slow backend): an interrupt drops
        // the one in flight rather than hold the report back for it.
        let mut exchange = tokio::select! {
            ex = transport::exchange(&planned.endpoint, bytes, &bounds) => ex,
            _ = self.budget.interrupt().triggered() => return Err(Exhausted::Interrupted),
        };
        self.mask_response(&mut exchange);
        Ok((self.sent(&planned.endpoint, bytes, true), exchange))
    }

    /// The ticket of a request of a bulk family, sent beside many others (then
    /// [`Engine::exchange_planned`]): it waits behind at most a few others of the kind, so the
    /// sequential searches running at the same time are not held up behind a whole catalogue in
    /// the budget's queue.
    pub async fn bulk_ticket(&self) -> Result<(), Exhausted> {
        // Never closed: a failed acquire would only mean queueing without the gate.
        let _queued = self.bulk_queue.acquire().await;
        self.ticket().await
    }

    /// Send a planned request's exact bytes where its plan says: the side's wire, or another
    /// endpoint (plain HTTP to a TLS port). Every raw request goes out through here or
    /// [`Engine::send_planned_waiting`], so a family sends only what it can plan.
    pub async fn send_planned(
        &self,
        planned: &Planned,
        wait: Option<Duration>,
    ) -> Result<(SentRequest, Exchange), Exhausted> {
        self.ticket().await?;
        self.exchange_planned(planned, wait).await
    }

    /// The exchange of a planned request whose ticket is taken ([`Engine::ticket`]): for a
    /// family that needs to know when its request leaves, not when it asked to send it.
    pub async fn exchange_planned(
        &self,
        planned: &Planned,
        wait: Option<Duration>,
    ) -> Result<(SentRequest, Exchange), Exhausted> {
        debug_assert_eq!(planned.via, Via::Raw, "only raw requests go through here");
        let marked = self.mark(planned);
        let bytes = marked.as_slice();
        let mut exchange = transport::exchange(&planned.endpoint, bytes, &self.bounds(wait)).await;
        self.mask_response(&mut exchange);
        Ok((self.sent(&planned.endpoint, bytes, true), exchange))
    }

    /// Send a planned request on a connection left open (the request asks for no close), then
    /// watch it for up to `linger` after the answer: whether the side closes it, as the RFC
    /// says it MUST after some requests, or keeps it open. One request, one ticket.
    pub async fn send_planned_watching_close(
        &self,
        planned: &Planned,
        wait: Option<Duration>,
        linger: Duration,
    ) -> Result<(SentRequest, Exchange, AfterAnswer), Exhausted> {
        debug_assert_eq!(planned.via, Via::Raw, "only raw requests go through here");
        self.ticket().await?;
        let marked = self.mark(planned);
        let bytes = marked.as_slice();
        let bounds = self.bounds(wait);
        let (mut exchange, after) = match KeepAliveConn::open(&planned.endpoint, &bounds).await {
            Err(end) => {
                let mut ex = Exchange::not_started(&planned.endpoint);
                ex.end = end;
                (ex, AfterAnswer::new(ConnAfter::NoAnswer, Duration::ZERO))
            }
            Ok(mut conn) => {
                let ex = conn.send(bytes, &bounds).await;
                let answered = ex.end == ConnEnd::Complete;
                let after = if !answered {
                    AfterAnswer::new(ConnAfter::NoAnswer, Duration::ZERO)
                } else {
                    let linger = linger.min(self.budget.remaining());
                    match conn.watch_idle(linger).await {
                        IdleEnd::Open => AfterAnswer::new(ConnAfter::KeptOpen, linger),
                        // A reset after the answer closes it as surely as a FIN (and rustls
                        // reports a TCP close without close_notify as an error).
                        IdleEnd::Closed { after } | IdleEnd::Reset { after } => {
                            AfterAnswer::new(ConnAfter::Closed, after)
                        }
                        IdleEnd::Unsolicited { .. } => {
                            AfterAnswer::new(ConnAfter::MoreBytes, conn.idle_for())
                        }
                    }
                };
                (ex, after)
            }
        };
        self.mask_response(&mut exchange);
        Ok((self.sent(&planned.endpoint, bytes, true), exchange, after))
    }

    /// Send a keep-alive sequence (several requests' bytes) on one connection, then read every
    /// answer until the side closes or `wait` runs out: the first answer is the exchange's,
    /// the rest are counted. One connection, one ticket.
    pub async fn send_planned_sequence(
        &self,
        planned: &Planned,
        wait: Option<Duration>,
    ) -> Result<(SentRequest, Exchange, SequenceResult), Exhausted> {
        debug_assert_eq!(planned.via, Via::Raw, "only raw requests go through here");
        self.ticket().await?;
        let marked = self.mark(planned);
        let bytes = marked.as_slice();
        let bounds = self.bounds(wait);
        let (mut exchange, result) = match KeepAliveConn::open(&planned.endpoint, &bounds).await {
            Err(end) => {
                let mut ex = Exchange::not_started(&planned.endpoint);
                ex.end = end;
                (ex, SequenceResult::none())
            }
            Ok(mut conn) => {
                let (ex, all, end) = conn.send_reading_all(bytes, &bounds).await;
                let result = SequenceResult {
                    answers: transport::response::count_final_responses(&all),
                    connection: match end {
                        _ if ex.response.is_none() => ConnAfter::NoAnswer,
                        IdleEnd::Open => ConnAfter::KeptOpen,
                        _ => ConnAfter::Closed,
                    },
                };
                (ex, result)
            }
        };
        self.mask_response(&mut exchange);
        Ok((self.sent(&planned.endpoint, bytes, true), exchange, result))
    }

    /// The request with the marker in the run's place (see [`marker::mark`]), when the run
    /// asks for it and the family's request can carry it there (see [`takes_marker`]).
    fn mark(&self, planned: &Planned) -> Vec<u8> {
        if !takes_marker(planned.family, self.marker_place) {
            return planned.bytes.clone();
        }
        self.mark_as(&planned.bytes, false)
    }

    /// A request cut off on purpose (the partial probes), marked where its cut allows (see
    /// [`marker::mark`]); as it is otherwise.
    pub fn mark_cut(&self, bytes: &[u8]) -> Vec<u8> {
        self.mark_as(bytes, true)
    }

    /// A marker for a request the client library sends (the methods family): its value, where
    /// it goes, and the rendered request carrying it, for the record. `None` when the run asks
    /// for none or the rendering cannot carry it.
    pub fn mark_client(&self, rendered: &[u8]) -> Option<(String, MarkerPlace, Vec<u8>)> {
        let (value, bytes) = self.next_marked(rendered, false)?;
        Some((value, self.marker_place, bytes))
    }

    fn mark_as(&self, bytes: &[u8], cut: bool) -> Vec<u8> {
        self.next_marked(bytes, cut)
            .map_or_else(|| bytes.to_vec(), |(_, marked)| marked)
    }

    /// The run's next marker value and `bytes` carrying it; `None` when the run asks for none
    /// or the request cannot carry it (such a request spends no number).
    fn next_marked(&self, bytes: &[u8], cut: bool) -> Option<(String, Vec<u8>)> {
        let run = self.marker.as_ref()?;
        marker::mark(bytes, "x", self.marker_place, cut)?;
        let n = self.marks.fetch_add(1, Ordering::SeqCst) + 1;
        let value = format!("{run}-{n}");
        let marked = marker::mark(bytes, &value, self.marker_place, cut)?;
        Some((value, marked))
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

    /// Record what was sent to `endpoint`, with secrets masked.
    pub fn sent(&self, endpoint: &Endpoint, bytes: &[u8], exact: bool) -> SentRequest {
        record(&self.mask, Some(endpoint), bytes, exact)
    }

    pub fn mask_response(&self, exchange: &mut Exchange) {
        self.mask.exchange(exchange);
    }

    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// Declare a side silent by the baseline that found it so: the families that need answers
    /// leave it out.
    pub fn declare_silent(&self, baseline: Observation) {
        self.silent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(baseline);
    }

    /// Whether the side was declared silent after the baseline.
    pub fn is_silent(&self, role: Role) -> bool {
        self.silent_baseline(role).is_some()
    }

    /// The baseline that declared the side silent: a valid GET that waited the request
    /// timeout, which the timing families may take as theirs instead of waiting as long again.
    pub fn silent_baseline(&self, role: Role) -> Option<Observation> {
        self.silent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|o| o.role == role)
            .cloned()
    }

    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// A new observation with a provisional id (renumbered in order at the end of the run).
    #[expect(
        clippy::too_many_arguments,
        reason = "one argument per field of the observation a family fills in"
    )]
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
            logged: None,
        }
    }
}

/// What a report keeps of a request: its bytes escaped, with secrets masked, and the same
/// request as a curl command to `endpoint` (or why curl cannot send it). The run and the dry
/// run record through here, so a planned request reads as the one sent.
pub fn record(mask: &Mask, endpoint: Option<&Endpoint>, bytes: &[u8], exact: bool) -> SentRequest {
    let masked = mask.bytes(bytes);
    // Empty and not exact: a summary that stands for no request of its own.
    let curl = match endpoint {
        Some(e) if exact || !bytes.is_empty() => Some(crate::replay::share::curl_for(&masked, e)),
        _ => None,
    };
    SentRequest {
        text: transport::escape_bytes(&masked),
        bytes: bytes.len(),
        exact,
        curl,
    }
}

/// A connection that opened and then got no complete answer before the deadline: silence, or
/// bytes trickled too slowly to make an answer. Either way the side is not answering.
pub fn is_silent(ex: &Exchange) -> bool {
    ex.timings.connect_ms.is_some()
        && ex.end == transport::ConnEnd::Timeout
        && !ex.response.as_ref().is_some_and(|r| r.complete)
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
