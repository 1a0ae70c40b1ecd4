//! A fault-injecting HTTP/1.1 backend on raw TCP (or TLS): one request per connection, answered
//! with JSON and `Server: lbprobe-lab`, so that lbprobe can tell the backend's answers from the
//! listener's.
//!
//! A request goes through fixed stages, each the home of a family of faults:
//! read the head (bounded in size and time) → check the head (URI and header limits) → read the
//! body (Content-Length or chunked, bounded) → [`decide`] the reply (faults, methods, validation)
//! → wait (delay faults) → write the reply → close with a lingering read so the client gets the
//! answer rather than a reset. Faults that change how the reply is written (closing early,
//! malformed responses, keep-alive idle closes) belong in the write stage, as new [`Fault`]
//! variants; faults that change what is answered belong in [`decide`].

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::{timeout, timeout_at, Instant};
use tokio_rustls::TlsAcceptor;

use super::cert::LabCert;
use super::request::{
    decode_chunked, find_head_end, first_line, framing, lenient_framing, parse_head, ChunkedError,
    Framing, RequestHead, MAX_HEAD_BYTES,
};
use super::LabError;

/// The `Server` header of every answer: how lbprobe recognises the backend's own pages.
pub const SERVER_NAME: &str = "lbprobe-lab";

/// Methods the backend knows; `Allow` lists these minus the rejected ones.
const KNOWN_METHODS: [&str; 8] = [
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE",
];
const MAX_CONNECTIONS: usize = 512;
const RECENT_CAPACITY: usize = 256;
const READ_CHUNK: usize = 16 * 1024;
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// After answering, unread request bytes are drained (bounded) before closing: closing with
/// unread data makes the kernel send RST, which can destroy the answer in flight.
const LINGER_BYTES: usize = 256 * 1024;
const LINGER_TIME: Duration = Duration::from_secs(1);
/// Chunk-size lines and trailers around a chunked body may add this much beyond the body cap.
const CHUNKED_OVERHEAD: usize = 64 * 1024;

/// What the backend does. `Default` is a healthy, lenient backend on plain HTTP.
#[derive(Debug, Clone)]
pub struct BackendConfig {
    /// TLS only: plain bytes fail the handshake, as with a real TLS-only server.
    pub tls: bool,
    /// The certificate for `tls`; `None` makes a fresh self-signed one for localhost.
    pub cert: Option<LabCert>,
    /// With `tls`: answer a plain-HTTP request with 400 instead of failing the handshake, as
    /// nginx's and many application servers' TLS ports do. This is what turns "the listener
    /// forwards plain HTTP to a TLS backend" into an upstream 400.
    pub answer_plain_http: bool,
    /// Methods answered `405 Method Not Allowed` (matched case-insensitively).
    pub reject_methods: Vec<String>,
    /// A custom validation rule: requests without this header get 400.
    pub required_header: Option<String>,
    /// Request targets longer than this get 414.
    pub max_uri_bytes: Option<usize>,
    /// Header lines (`Name: value`) longer than this get 400.
    pub max_header_bytes: Option<usize>,
    /// Request heads (request line and headers with their CRLFs) longer than `.0` bytes get
    /// status `.1`, whichever part is long: one budget for the whole head, answered the same
    /// for a long URI as for a long header, as Go's net/http and Envoy do with 431.
    pub max_head: Option<(usize, u16)>,
    /// Bodies above this get 413.
    pub max_body_bytes: usize,
    /// How long the head, and then the body, may take to arrive.
    pub read_timeout: Duration,
    /// Injected faults, applied in order to the requests they match.
    pub faults: Vec<FaultRule>,
    /// Every refusal (an answer of 400 or above, unreadable requests included) waits this long
    /// before it is written, on top of any `Delay`: a backend slow to say no (a framework that
    /// parses, logs and renders its error pages slowly, or tarpits what it refuses) while its
    /// healthy answers stay quick.
    pub refusal_delay: Duration,
    /// Keep connections open for more requests; `None` closes after one answer.
    pub keep_alive: Option<KeepAlive>,
    /// With `tls`: what the port does with a ClientHello instead of a handshake; `None` shakes
    /// hands. For hostile servers whose TLS never gets as far as HTTP.
    pub handshake_fault: Option<HandshakeFault>,
    /// With `tls`: offer h2 as well as http/1.1 over ALPN, and flood a client that chooses h2
    /// (see [`super::h2_flood`]); HTTP/1.1 is answered as usual.
    pub h2_flood: bool,
    /// A careless server, the back half of a request-smuggling desync: Content-Length wins over
    /// Transfer-Encoding (`+5` and `5x` read as 5, the first of two lengths), and with
    /// `keep_alive` the bytes after a request are the next request (pipelining), never
    /// dropped, even where the RFC has a server close instead.
    pub lenient: bool,
}

/// What a TLS port does instead of a handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandshakeFault {
    /// Take the ClientHello and say nothing, until the client leaves (or [`MAX_HOSTILE_TIME`]).
    Silence,
    /// Answer the ClientHello with these bytes, then close.
    Garbage(Vec<u8>),
}

/// How a keep-alive backend ends idle connections: what decides whether a listener that reuses
/// its connections to the backend meets the keep-alive race.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeepAlive {
    /// How long a connection may stay idle after an answer.
    pub idle: Duration,
    pub close: IdleClose,
    /// Requests answered on one connection; the last answer says `Connection: close`.
    pub max_requests: u32,
    /// The longest one connection stays open, idle or not.
    pub max_lifetime: Duration,
}

/// When the backend acts on an idle connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdleClose {
    /// Close (FIN) as soon as the connection has been idle for `idle`, as most servers do.
    Eager,
    /// Leave the socket open, and close without answering when the next request comes more
    /// than `idle` after the last answer: the request lands on a connection the server has
    /// given up, the race a listener meets when the server's FIN is still on its way.
    Lazy,
}

impl KeepAlive {
    const MAX_REQUESTS: u32 = 1000;
    const MAX_LIFETIME: Duration = Duration::from_secs(600);

    pub fn eager(idle: Duration) -> KeepAlive {
        KeepAlive {
            idle,
            close: IdleClose::Eager,
            max_requests: KeepAlive::MAX_REQUESTS,
            max_lifetime: KeepAlive::MAX_LIFETIME,
        }
    }

    pub fn lazy(idle: Duration) -> KeepAlive {
        KeepAlive {
            close: IdleClose::Lazy,
            ..KeepAlive::eager(idle)
        }
    }
}

impl Default for BackendConfig {
    fn default() -> Self {
        BackendConfig {
            tls: false,
            cert: None,
            answer_plain_http: false,
            reject_methods: Vec::new(),
            required_header: None,
            max_uri_bytes: None,
            max_header_bytes: None,
            max_head: None,
            max_body_bytes: 1024 * 1024,
            read_timeout: Duration::from_secs(2),
            faults: Vec::new(),
            refusal_delay: Duration::ZERO,
            keep_alive: None,
            handshake_fault: None,
            h2_flood: false,
            lenient: false,
        }
    }
}

impl BackendConfig {
    /// See [`BackendConfig::lenient`].
    pub fn lenient(mut self, lenient: bool) -> Self {
        self.lenient = lenient;
        self
    }

    pub fn tls(mut self, tls: bool) -> Self {
        self.tls = tls;
        self
    }

    pub fn answer_plain_http(mut self, answer: bool) -> Self {
        self.answer_plain_http = answer;
        self
    }

    pub fn cert(mut self, cert: LabCert) -> Self {
        self.cert = Some(cert);
        self
    }

    pub fn reject_method(mut self, method: impl Into<String>) -> Self {
        self.reject_methods.push(method.into());
        self
    }

    pub fn required_header(mut self, name: impl Into<String>) -> Self {
        self.required_header = Some(name.into());
        self
    }

    pub fn max_uri_bytes(mut self, max: usize) -> Self {
        self.max_uri_bytes = Some(max);
        self
    }

    pub fn max_header_bytes(mut self, max: usize) -> Self {
        self.max_header_bytes = Some(max);
        self
    }

    /// See [`BackendConfig::max_head`].
    pub fn max_head(mut self, max: usize, status: u16) -> Self {
        self.max_head = Some((max, status));
        self
    }

    pub fn max_body_bytes(mut self, max: usize) -> Self {
        self.max_body_bytes = max;
        self
    }

    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = timeout;
        self
    }

    pub fn fault(mut self, rule: FaultRule) -> Self {
        self.faults.push(rule);
        self
    }

    /// See [`BackendConfig::refusal_delay`].
    pub fn refusal_delay(mut self, delay: Duration) -> Self {
        self.refusal_delay = delay;
        self
    }

    pub fn keep_alive(mut self, keep_alive: KeepAlive) -> Self {
        self.keep_alive = Some(keep_alive);
        self
    }

    /// A TLS port that does `fault` instead of a handshake (sets `tls`).
    pub fn handshake_fault(mut self, fault: HandshakeFault) -> Self {
        self.tls = true;
        self.handshake_fault = Some(fault);
        self
    }

    /// A TLS port that offers h2 and floods whoever takes it (sets `tls`).
    pub fn h2_flood(mut self) -> Self {
        self.tls = true;
        self.h2_flood = true;
        self
    }
}

/// A fault and the requests it applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultRule {
    /// Requests whose target starts with this; `None` matches every request.
    pub path_prefix: Option<String>,
    pub fault: Fault,
}

impl FaultRule {
    pub fn all(fault: Fault) -> Self {
        FaultRule {
            path_prefix: None,
            fault,
        }
    }

    pub fn path(prefix: impl Into<String>, fault: Fault) -> Self {
        FaultRule {
            path_prefix: Some(prefix.into()),
            fault,
        }
    }

    fn matches(&self, head: &RequestHead) -> bool {
        self.path_prefix
            .as_deref()
            .is_none_or(|prefix| head.target.starts_with(prefix))
    }
}

/// Something wrong the backend can be told to do; match with a wildcard arm, more will join.
///
/// Two families. `Delay` and `Status` change *when* and *what* is answered and compose with
/// everything (delays of matching rules add up; the first matching `Status` wins). The others
/// change *how* the answer is written, so only one can apply: the first matching rule with one
/// wins, and it writes whatever `Status` (or the healthy answer) decided, after the delay.
/// Every fault reads the whole request first, so a listener in front sees a backend that took
/// its request; hostile writers stop as soon as the client goes away (a failed or stalled write)
/// and after [`MAX_HOSTILE_TIME`] at the latest, so nothing outlives a test.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Wait this long before answering (a slow backend). Delays of matching rules add up. A
    /// client that closes meanwhile ends the wait (as nginx's upstream timeout does): nothing is
    /// written to it.
    Delay(Duration),
    /// Answer this status (with a JSON body) instead of the normal answer; the first matching
    /// rule wins.
    Status(u16),
    /// A complete status line and headers announcing `Content-Length: 100`, then a close with
    /// no body.
    CloseAfterHeaders,
    /// Close the connection (FIN) without a byte, like nginx's `return 444`.
    CloseWithoutResponse,
    /// Reset the connection (RST, SO_LINGER 0) without a byte.
    ResetWithoutResponse,
    /// The answer with an unreadable status line, [`MALFORMED_STATUS_LINE`].
    MalformedStatusLine,
    /// The answer with an extra header line that has no colon, [`MALFORMED_HEADER_LINE`].
    MalformedHeader,
    /// The answer with an extra header whose name is followed by a space before the colon,
    /// [`SPACE_BEFORE_COLON_LINE`] (RFC 9112 §5.1 forbids it; parsers differ).
    SpaceBeforeColon,
    /// Headers announcing `Content-Length: 100`, then [`SHORT_BODY`] (10 bytes), then a close.
    ShortBody,
    /// Take the request and never answer; the connection is held until the client closes it
    /// (or [`MAX_HOSTILE_TIME`]).
    NeverAnswer,
    /// The answer with one extra header line of this many bytes (name, colon and value).
    HugeHeader(usize),
    /// A status line, then header lines forever.
    EndlessHeaders,
    /// A chunked `200` whose chunks never end.
    EndlessBody,
    /// The answer, one byte at a time, waiting `byte_every` before each byte.
    Trickle { byte_every: Duration },
    /// Exactly these bytes instead of an answer (garbage, a TLS record, HTTP/0.9...), then a
    /// close.
    Raw(Vec<u8>),
    /// Exactly these bytes, then the connection held open without another byte (until the
    /// client leaves, or [`MAX_HOSTILE_TIME`]): an answer whose framing never ends (a
    /// Content-Length longer than what comes, a chunked body that stops mid-chunk).
    RawThenHold(Vec<u8>),
    /// Exactly these bytes, then a reset (RST): an answer cut off by a crash.
    RawThenReset(Vec<u8>),
    /// Interim `status` answers (1xx, no body) one after another, `every` apart (back to back
    /// for zero), and never a final answer: a 1xx flood, or a server that keeps saying
    /// `102 Processing`.
    Informational { status: u16, every: Duration },
    /// The head at once, announcing [`DRIP_BODY_BYTES`] of body, then the body one byte every
    /// `byte_every`: the head is in, the answer never completes.
    DripBody { byte_every: Duration },
}

impl Fault {
    /// Faults that change how the answer is written (all but `Delay` and `Status`).
    fn shapes_the_write(&self) -> bool {
        !matches!(self, Fault::Delay(_) | Fault::Status(_))
    }
}

/// The status line [`Fault::MalformedStatusLine`] sends: letters O for the zeros.
pub const MALFORMED_STATUS_LINE: &str = "HTTP/1.1 2OO OK";
/// The header line [`Fault::MalformedHeader`] adds.
pub const MALFORMED_HEADER_LINE: &str = "X-Lab-Broken-Header-Without-Colon";
/// The header line [`Fault::SpaceBeforeColon`] adds.
pub const SPACE_BEFORE_COLON_LINE: &str = "X-Lab-Spaced : before the colon";
/// The `Content-Length` that [`Fault::CloseAfterHeaders`] and [`Fault::ShortBody`] announce.
pub const ANNOUNCED_LENGTH: usize = 100;
/// The body [`Fault::ShortBody`] sends before closing.
pub const SHORT_BODY: &[u8; 10] = b"0123456789";
/// The body length [`Fault::DripBody`] announces.
pub const DRIP_BODY_BYTES: usize = 64 * 1024;
/// The longest a hostile fault keeps a connection: generous, so that the client's own timeouts
/// decide, but bounded, so that a client that never closes cannot pin a task forever.
pub const MAX_HOSTILE_TIME: Duration = Duration::from_secs(600);

/// A request the backend answered, as it understood it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenRequest {
    /// Empty when the head could not be parsed.
    pub method: String,
    pub target: String,
    /// The first line as received (lossy UTF-8, at most 1 KiB).
    pub request_line: String,
    pub headers: Vec<(String, String)>,
    pub status: u16,
    /// The request's head as received and its body (de-chunked, and only when read whole):
    /// what a client really sent, for tests that compare it byte for byte.
    pub raw: Vec<u8>,
}

struct Shared {
    config: BackendConfig,
    tls: Option<TlsAcceptor>,
    requests: AtomicU64,
    /// Connections being served now: how tests see that a held connection was let go.
    open: AtomicUsize,
    recent: Mutex<VecDeque<SeenRequest>>,
}

impl Shared {
    fn new(config: BackendConfig) -> Result<(Shared, Option<LabCert>), LabError> {
        let (tls, cert) = if config.tls {
            let cert = match &config.cert {
                Some(cert) => cert.clone(),
                None => LabCert::localhost()?,
            };
            let mut server = cert.server_config()?;
            if config.h2_flood {
                let mut with_h2 = (*server).clone();
                with_h2.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
                server = Arc::new(with_h2);
            }
            (Some(TlsAcceptor::from(server)), Some(cert))
        } else {
            (None, None)
        };
        let shared = Shared {
            config,
            tls,
            requests: AtomicU64::new(0),
            open: AtomicUsize::new(0),
            recent: Mutex::new(VecDeque::with_capacity(RECENT_CAPACITY)),
        };
        Ok((shared, cert))
    }

    fn record(&self, seen: SeenRequest) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        // A poisoned lock only means another connection task panicked mid-push; the queue is
        // still a valid queue.
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        if recent.len() == RECENT_CAPACITY {
            recent.pop_front();
        }
        recent.push_back(seen);
    }
}

/// A running backend; dropping it stops accepting and aborts the connections in progress.
pub struct LabBackend {
    addr: SocketAddr,
    cert: Option<LabCert>,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl LabBackend {
    /// Starts on a fresh port of 127.0.0.1.
    pub async fn start(config: BackendConfig) -> Result<LabBackend, LabError> {
        LabBackend::start_at(config, SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await
    }

    /// Starts on `addr` (port 0 picks a free one). Must be called inside a tokio runtime.
    pub async fn start_at(config: BackendConfig, addr: SocketAddr) -> Result<LabBackend, LabError> {
        let (shared, cert) = Shared::new(config)?;
        let shared = Arc::new(shared);
        let listener = TcpListener::bind(addr)
            .await
            .map_err(LabError::io(format!("binding the lab backend to {addr}")))?;
        let addr = listener
            .local_addr()
            .map_err(LabError::io("reading the lab backend's address"))?;
        let task = tokio::spawn(accept_loop(listener, Arc::clone(&shared)));
        Ok(LabBackend {
            addr,
            cert,
            shared,
            task,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn url(&self) -> String {
        let scheme = if self.shared.tls.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.addr)
    }

    /// The certificate a TLS backend presents (to trust it in a client).
    pub fn cert(&self) -> Option<&LabCert> {
        self.cert.as_ref()
    }

    /// Requests answered so far, including those answered with an error.
    pub fn requests_seen(&self) -> u64 {
        self.shared.requests.load(Ordering::Relaxed)
    }

    /// Connections accepted and not yet closed by the backend (held by a slow or hostile fault,
    /// or still being answered).
    pub fn open_connections(&self) -> usize {
        self.shared.open.load(Ordering::Relaxed)
    }

    /// The last requests answered (at most 256), oldest first.
    pub fn recent_requests(&self) -> Vec<SeenRequest> {
        let recent = self.shared.recent.lock().unwrap_or_else(|e| e.into_inner());
        recent.iter().cloned().collect()
    }
}

impl Drop for LabBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Runs a backend on `addr` until the surrounding task is cancelled; for `lbprobe lab`.
pub async fn serve(config: BackendConfig, addr: SocketAddr) -> Result<(), LabError> {
    let (shared, _cert) = Shared::new(config)?;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(LabError::io(format!("binding the lab backend to {addr}")))?;
    accept_loop(listener, Arc::new(shared)).await;
    Ok(())
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    // Owning the connection tasks here means aborting this loop aborts them all.
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
            return;
        };
        let tcp = match listener.accept().await {
            Ok((tcp, _)) => tcp,
            Err(_) => {
                // EMFILE and friends: back off instead of spinning; the next accept may work.
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        // Counts down however the task ends, aborted (the backend dropped) included.
        let open = OpenGuard::new(Arc::clone(&shared));
        connections.spawn(async move {
            let _permit = permit;
            serve_connection(tcp, &open.0).await;
        });
    }
}

/// One open connection in [`Shared::open`].
struct OpenGuard(Arc<Shared>);

impl OpenGuard {
    fn new(shared: Arc<Shared>) -> OpenGuard {
        shared.open.fetch_add(1, Ordering::Relaxed);
        OpenGuard(shared)
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn serve_connection(tcp: TcpStream, shared: &Shared) {
    let _ = tcp.set_nodelay(true);
    match (&shared.tls, &shared.config.handshake_fault) {
        (None, _) => handle(tcp, shared).await,
        (Some(_), Some(fault)) => hostile_handshake(tcp, fault, shared).await,
        (Some(_), None)
            if shared.config.answer_plain_http && !starts_with_tls_record(&tcp, shared).await =>
        {
            answer_plain_on_tls_port(tcp, shared).await
        }
        (Some(acceptor), None) => {
            if let Ok(Ok(tls)) = timeout(shared.config.read_timeout, acceptor.accept(tcp)).await {
                if tls.get_ref().1.alpn_protocol() == Some(b"h2") {
                    super::h2_flood::flood(tls, shared.config.read_timeout, MAX_HOSTILE_TIME).await;
                } else {
                    handle(tls, shared).await;
                }
            }
        }
    }
}

/// A TLS port's [`HandshakeFault`]: silence, or garbage once the ClientHello is in.
async fn hostile_handshake(mut tcp: TcpStream, fault: &HandshakeFault, shared: &Shared) {
    match fault {
        HandshakeFault::Silence => {
            client_left_within(&mut tcp, MAX_HOSTILE_TIME).await;
        }
        HandshakeFault::Garbage(bytes) => {
            let mut hello = Vec::new();
            let deadline = Instant::now() + shared.config.read_timeout;
            if !matches!(
                read_some(&mut tcp, &mut hello, READ_CHUNK, deadline).await,
                ReadResult::Data
            ) {
                return;
            }
            if matches!(write_bounded(&mut tcp, bytes).await, Close::Graceful) {
                let _ = timeout(WRITE_TIMEOUT, tcp.shutdown()).await;
                linger(&mut tcp).await;
            }
        }
    }
}

/// Peeks at the first byte: a TLS handshake record starts with 0x16. Silence counts as TLS so
/// that the handshake path keeps its own timeout handling.
async fn starts_with_tls_record(tcp: &TcpStream, shared: &Shared) -> bool {
    let mut first = [0u8; 1];
    match timeout(shared.config.read_timeout, tcp.peek(&mut first)).await {
        Ok(Ok(1)) => first[0] == 0x16,
        _ => true,
    }
}

/// A plain-HTTP request on the TLS port: read it like any request, answer 400.
async fn answer_plain_on_tls_port(mut tcp: TcpStream, shared: &Shared) {
    let Outcome::Answer {
        mut seen,
        head_only,
        ..
    } = read_request(&mut tcp, &shared.config).await
    else {
        return;
    };
    let reply = Reply::error(400, "plain HTTP request sent to the HTTPS port");
    seen.status = 400;
    shared.record(seen);
    let bytes = reply.to_bytes(head_only);
    if matches!(
        timeout(WRITE_TIMEOUT, tcp.write_all(&bytes)).await,
        Ok(Ok(()))
    ) {
        let _ = timeout(WRITE_TIMEOUT, tcp.shutdown()).await;
        linger(&mut tcp).await;
    }
}

/// How a connection's request ended up.
// One short-lived value per connection, moved once: boxing the answer would buy nothing.
#[allow(clippy::large_enum_variant)]
enum Outcome {
    /// Nothing worth answering arrived (an idle or reset connection): close quietly.
    Silent,
    Answer {
        reply: Reply,
        seen: SeenRequest,
        head_only: bool,
        delay: Duration,
        /// The fault that decides how the reply is written, if any.
        shape: Option<Fault>,
        /// What the connection does after the answer, as far as the request decides.
        then: Then,
    },
}

/// What a kept-alive connection does after answering a request.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Then {
    /// Read the next request, if the client sends one (after a request framed twice too: the
    /// lab's strict backend keeps such a connection open, the must-close check's subject).
    Next,
    /// A lenient backend: these bytes, read past the request, start the next one.
    Pipelined(Vec<u8>),
}

/// A connection the backend answers on: plain TCP or TLS over TCP. The TCP socket underneath
/// is what a reset is done on.
trait Conn: AsyncRead + AsyncWrite + Unpin + Send {
    fn tcp(&self) -> &TcpStream;
}

impl Conn for TcpStream {
    fn tcp(&self) -> &TcpStream {
        self
    }
}

impl Conn for tokio_rustls::server::TlsStream<TcpStream> {
    fn tcp(&self) -> &TcpStream {
        self.get_ref().0
    }
}

async fn handle<S: Conn>(mut stream: S, shared: &Shared) {
    if let Some(keep_alive) = shared.config.keep_alive {
        return handle_keep_alive(stream, shared, keep_alive).await;
    }
    let Outcome::Answer {
        reply,
        seen,
        head_only,
        delay,
        shape,
        ..
    } = read_request(&mut stream, &shared.config).await
    else {
        return;
    };
    shared.record(seen);
    let delay = delay + refusal_delay(&shared.config, &reply);
    if !delay.is_zero() && client_left_within(&mut stream, delay).await {
        return;
    }
    let close = match shape {
        None => write_bounded(&mut stream, &reply.to_bytes(head_only)).await,
        Some(fault) => write_faulty(&mut stream, &reply, head_only, &fault).await,
    };
    match close {
        Close::Graceful => {
            let _ = timeout(WRITE_TIMEOUT, stream.shutdown()).await;
            linger(&mut stream).await;
        }
        Close::Reset => reset(stream),
        Close::Abandon => {}
    }
}

/// Request after request on one connection, until the client leaves, the idle rule of
/// `keep_alive` closes it, or its bounds (requests, lifetime) run out. Requests are taken one at
/// a time: bytes pipelined behind a request are dropped with it (listeners do not pipeline), but
/// by a [lenient](BackendConfig::lenient) backend, which answers them as the next request.
async fn handle_keep_alive<S: Conn>(mut stream: S, shared: &Shared, keep_alive: KeepAlive) {
    let end_of_life = Instant::now() + keep_alive.max_lifetime;
    let mut first_bytes = Vec::new();
    // A lenient backend's next request already begun in the bytes read past the last one.
    let mut pipelined = false;
    for n in 0..keep_alive.max_requests {
        if n > 0 && !pipelined {
            let answered_at = Instant::now();
            let wait_until = match keep_alive.close {
                IdleClose::Eager => (answered_at + keep_alive.idle).min(end_of_life),
                IdleClose::Lazy => end_of_life,
            };
            match read_some(&mut stream, &mut first_bytes, READ_CHUNK, wait_until).await {
                ReadResult::Data => {}
                ReadResult::Timeout => {
                    let _ = timeout(WRITE_TIMEOUT, stream.shutdown()).await;
                    return;
                }
                ReadResult::Eof | ReadResult::Failed => return,
            }
            if keep_alive.close == IdleClose::Lazy && answered_at.elapsed() > keep_alive.idle {
                // Given up on already: close without reading the request or answering it.
                let _ = timeout(WRITE_TIMEOUT, stream.shutdown()).await;
                return;
            }
        }
        let outcome = read_request_after(
            &mut stream,
            &shared.config,
            std::mem::take(&mut first_bytes),
        )
        .await;
        let Outcome::Answer {
            reply,
            seen,
            head_only,
            delay,
            shape,
            then,
        } = outcome
        else {
            return;
        };
        let client_closes = seen.headers.iter().any(|(name, value)| {
            name.eq_ignore_ascii_case("connection")
                && value
                    .split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("close"))
        });
        shared.record(seen);
        let delay = delay + refusal_delay(&shared.config, &reply);
        if !delay.is_zero() && client_left_within(&mut stream, delay).await {
            return;
        }
        let last = client_closes || n + 1 == keep_alive.max_requests || shape.is_some();
        pipelined = false;
        if let Then::Pipelined(bytes) = then {
            first_bytes = bytes;
            pipelined = true;
        }
        let close = match shape {
            Some(fault) => write_faulty(&mut stream, &reply, head_only, &fault).await,
            None if last => write_bounded(&mut stream, &reply.to_bytes(head_only)).await,
            None => write_bounded(&mut stream, &reply.to_bytes_kept_alive(head_only)).await,
        };
        match close {
            Close::Graceful if !last => {}
            Close::Graceful => {
                let _ = timeout(WRITE_TIMEOUT, stream.shutdown()).await;
                linger(&mut stream).await;
                return;
            }
            Close::Reset => return reset(stream),
            Close::Abandon => return,
        }
    }
}

/// How a connection ends after the write stage.
enum Close {
    /// FIN after the bytes, then a lingering read so that they arrive rather than a reset.
    Graceful,
    /// RST: SO_LINGER 0, then close.
    Reset,
    /// The client is gone or stalled: just drop the connection.
    Abandon,
}

/// Writes `bytes` within [`WRITE_TIMEOUT`]; a failure means the client is gone or stalled.
async fn write_bounded<S: Conn>(stream: &mut S, bytes: &[u8]) -> Close {
    match timeout(WRITE_TIMEOUT, stream.write_all(bytes)).await {
        Ok(Ok(())) => Close::Graceful,
        _ => Close::Abandon,
    }
}

fn reset<S: Conn>(stream: S) {
    // Linger 0 turns the close into an RST; the socket is non-blocking, so the drop does not
    // wait. Failing to set it leaves a FIN, which the tests would notice.
    let _ = socket2::SockRef::from(stream.tcp()).set_linger(Some(Duration::ZERO));
    drop(stream);
}

/// Waits up to `wait` for the client to close (EOF or error), discarding what it sends
/// meanwhile. True when the client left: a slow or silent backend then stops, instead of holding
/// a task for a client that will never read the answer. A client that only half-closes counts
/// as gone too, as it does for nginx ("client prematurely closed connection").
async fn client_left_within<S: Conn>(stream: &mut S, wait: Duration) -> bool {
    let deadline = Instant::now() + wait;
    let mut scratch = [0u8; 4096];
    loop {
        match timeout_at(deadline, stream.read(&mut scratch)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

/// The write stage of the faults that shape it.
async fn write_faulty<S: Conn>(
    stream: &mut S,
    reply: &Reply,
    head_only: bool,
    fault: &Fault,
) -> Close {
    let give_up = Instant::now() + MAX_HOSTILE_TIME;
    match fault {
        Fault::CloseWithoutResponse => Close::Graceful,
        Fault::ResetWithoutResponse => Close::Reset,
        Fault::NeverAnswer => {
            client_left_within(stream, MAX_HOSTILE_TIME).await;
            Close::Abandon
        }
        Fault::CloseAfterHeaders => {
            write_bounded(stream, reply.head(Some(ANNOUNCED_LENGTH), &[]).as_bytes()).await
        }
        Fault::ShortBody => {
            let mut bytes = reply.head(Some(ANNOUNCED_LENGTH), &[]).into_bytes();
            bytes.extend_from_slice(SHORT_BODY);
            write_bounded(stream, &bytes).await
        }
        Fault::MalformedStatusLine => {
            let bytes = reply.to_bytes(head_only);
            let line_end = bytes.windows(2).position(|w| w == b"\r\n").unwrap_or(0);
            let mut broken = MALFORMED_STATUS_LINE.as_bytes().to_vec();
            broken.extend_from_slice(&bytes[line_end..]);
            write_bounded(stream, &broken).await
        }
        Fault::MalformedHeader => {
            write_bounded(
                stream,
                &reply.to_bytes_with(head_only, &[MALFORMED_HEADER_LINE]),
            )
            .await
        }
        Fault::SpaceBeforeColon => {
            write_bounded(
                stream,
                &reply.to_bytes_with(head_only, &[SPACE_BEFORE_COLON_LINE]),
            )
            .await
        }
        Fault::HugeHeader(bytes) => write_huge_header(stream, reply, head_only, *bytes).await,
        Fault::EndlessHeaders => {
            let status_line = format!("HTTP/1.1 200 OK\r\nServer: {SERVER_NAME}\r\n");
            if !matches!(
                write_bounded(stream, status_line.as_bytes()).await,
                Close::Graceful
            ) {
                return Close::Abandon;
            }
            let mut n: u64 = 0;
            write_until_gone(stream, give_up, || {
                let mut batch = String::with_capacity(READ_CHUNK + 64);
                while batch.len() < READ_CHUNK {
                    n += 1;
                    batch.push_str(&format!("X-Lab-Endless-{n}: the headers never end\r\n"));
                }
                batch.into_bytes()
            })
            .await
        }
        Fault::EndlessBody => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nServer: {SERVER_NAME}\r\nContent-Type: text/plain\r\n\
                 Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            );
            if !matches!(
                write_bounded(stream, head.as_bytes()).await,
                Close::Graceful
            ) {
                return Close::Abandon;
            }
            let mut chunk = format!("{READ_CHUNK:x}\r\n").into_bytes();
            chunk.extend(std::iter::repeat_n(b'b', READ_CHUNK));
            chunk.extend_from_slice(b"\r\n");
            write_until_gone(stream, give_up, || chunk.clone()).await
        }
        Fault::Trickle { byte_every } => {
            for byte in reply.to_bytes(head_only) {
                if Instant::now() + *byte_every > give_up {
                    return Close::Abandon;
                }
                tokio::time::sleep(*byte_every).await;
                if !matches!(write_bounded(stream, &[byte]).await, Close::Graceful) {
                    return Close::Abandon;
                }
            }
            Close::Graceful
        }
        Fault::Raw(bytes) => write_bounded(stream, bytes).await,
        Fault::RawThenHold(bytes) => {
            if matches!(write_bounded(stream, bytes).await, Close::Graceful) {
                client_left_within(stream, MAX_HOSTILE_TIME).await;
            }
            Close::Abandon
        }
        Fault::RawThenReset(bytes) => match write_bounded(stream, bytes).await {
            // A moment for the bytes to leave before the RST, which would discard them.
            Close::Graceful => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                Close::Reset
            }
            other => other,
        },
        Fault::Informational { status, every } => {
            let interim = format!("HTTP/1.1 {status} {}\r\n\r\n", reason(*status));
            if every.is_zero() {
                let batch = interim.repeat(READ_CHUNK / interim.len() + 1).into_bytes();
                return write_until_gone(stream, give_up, || batch.clone()).await;
            }
            while Instant::now() + *every <= give_up {
                if !matches!(
                    write_bounded(stream, interim.as_bytes()).await,
                    Close::Graceful
                ) {
                    return Close::Abandon;
                }
                if client_left_within(stream, *every).await {
                    return Close::Abandon;
                }
            }
            Close::Abandon
        }
        Fault::DripBody { byte_every } => {
            let head = reply.head(Some(DRIP_BODY_BYTES), &[]);
            if !matches!(
                write_bounded(stream, head.as_bytes()).await,
                Close::Graceful
            ) {
                return Close::Abandon;
            }
            for _ in 0..DRIP_BODY_BYTES {
                if Instant::now() + *byte_every > give_up
                    || client_left_within(stream, *byte_every).await
                    || !matches!(write_bounded(stream, b"d").await, Close::Graceful)
                {
                    return Close::Abandon;
                }
            }
            Close::Graceful
        }
        // Not write-shaping faults: never chosen by shape_for.
        Fault::Delay(_) | Fault::Status(_) => {
            write_bounded(stream, &reply.to_bytes(head_only)).await
        }
    }
}

/// Writes what `next` makes, again and again, until a write fails or stalls (the client is gone
/// or stopped reading) or `give_up`.
async fn write_until_gone<S: Conn>(
    stream: &mut S,
    give_up: Instant,
    mut next: impl FnMut() -> Vec<u8>,
) -> Close {
    while Instant::now() < give_up {
        if !matches!(write_bounded(stream, &next()).await, Close::Graceful) {
            return Close::Abandon;
        }
    }
    Close::Abandon
}

/// The answer with one header line of `size` bytes, written in pieces so that a 10 MB header
/// never sits in memory.
async fn write_huge_header<S: Conn>(
    stream: &mut S,
    reply: &Reply,
    head_only: bool,
    size: usize,
) -> Close {
    const NAME: &str = "X-Lab-Huge: ";
    let status_line = format!(
        "HTTP/1.1 {} {}\r\n{NAME}",
        reply.status,
        reason(reply.status)
    );
    if !matches!(
        write_bounded(stream, status_line.as_bytes()).await,
        Close::Graceful
    ) {
        return Close::Abandon;
    }
    let piece = vec![b'h'; READ_CHUNK];
    let mut left = size.saturating_sub(NAME.len());
    while left > 0 {
        let n = left.min(piece.len());
        if !matches!(write_bounded(stream, &piece[..n]).await, Close::Graceful) {
            return Close::Abandon;
        }
        left -= n;
    }
    // The rest of the normal answer, from its second line (Server: ...) on.
    let rest = reply.to_bytes(head_only);
    let second_line = rest.windows(2).position(|w| w == b"\r\n").unwrap_or(0);
    write_bounded(stream, &rest[second_line..]).await
}

async fn linger<S: AsyncRead + Unpin>(stream: &mut S) {
    let deadline = Instant::now() + LINGER_TIME;
    let mut drained = 0;
    let mut chunk = [0u8; 4096];
    while drained < LINGER_BYTES {
        match timeout_at(deadline, stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => drained += n,
            _ => return,
        }
    }
}

enum ReadResult {
    Data,
    Eof,
    Timeout,
    Failed,
}

/// Reads at most `limit` more bytes into `buf`, before `deadline`.
async fn read_some<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    limit: usize,
    deadline: Instant,
) -> ReadResult {
    let mut chunk = [0u8; READ_CHUNK];
    let want = limit.clamp(1, READ_CHUNK);
    match timeout_at(deadline, stream.read(&mut chunk[..want])).await {
        Err(_) => ReadResult::Timeout,
        Ok(Err(_)) => ReadResult::Failed,
        Ok(Ok(0)) => ReadResult::Eof,
        Ok(Ok(n)) => {
            buf.extend_from_slice(&chunk[..n]);
            ReadResult::Data
        }
    }
}

fn is_blank(buf: &[u8]) -> bool {
    buf.iter().all(|b| b.is_ascii_whitespace())
}

fn unparsed(buf: &[u8], reply: Reply) -> Outcome {
    let mut line = String::from_utf8_lossy(first_line(buf)).into_owned();
    crate::transport::truncate_utf8(&mut line, 1024);
    Outcome::Answer {
        seen: SeenRequest {
            method: String::new(),
            target: String::new(),
            request_line: line,
            headers: Vec::new(),
            status: reply.status,
            raw: buf.to_vec(),
        },
        reply,
        head_only: false,
        delay: Duration::ZERO,
        shape: None,
        then: Then::Next,
    }
}

/// True when the first non-blank byte cannot begin a method token (RFC 9110 tchar).
fn cannot_be_a_request(buf: &[u8]) -> bool {
    let is_tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    buf.iter()
        .find(|b| !matches!(b, b'\r' | b'\n'))
        .is_some_and(|&b| !is_tchar(b))
}

async fn read_request<S: AsyncRead + Unpin>(stream: &mut S, config: &BackendConfig) -> Outcome {
    read_request_after(stream, config, Vec::with_capacity(4096)).await
}

/// [`read_request`] whose first bytes were already read (waiting on a kept-alive connection).
async fn read_request_after<S: AsyncRead + Unpin>(
    stream: &mut S,
    config: &BackendConfig,
    mut buf: Vec<u8>,
) -> Outcome {
    let deadline = Instant::now() + config.read_timeout;
    let head_end = loop {
        if let Some(end) = find_head_end(&buf) {
            if end <= MAX_HEAD_BYTES {
                break end;
            }
        }
        if buf.len() > MAX_HEAD_BYTES {
            let reply = match (config.max_head, config.max_uri_bytes) {
                (Some((_, status)), _) => Reply::error(status, "request head too large"),
                (None, Some(max)) if first_line(&buf).len() > max => {
                    Reply::error(414, "uri too long")
                }
                _ => Reply::error(400, "request head too large"),
            };
            return unparsed(&buf, reply);
        }
        let limit = MAX_HEAD_BYTES + 1 - buf.len();
        match read_some(stream, &mut buf, limit, deadline).await {
            // Like real servers, refuse at once what cannot start a request line (a TLS
            // ClientHello, binary garbage) instead of waiting for a head that will not come.
            ReadResult::Data if cannot_be_a_request(&buf) => {
                return unparsed(&buf, Reply::error(400, "not an HTTP request"))
            }
            ReadResult::Data => {}
            ReadResult::Failed => return Outcome::Silent,
            _ if is_blank(&buf) => return Outcome::Silent,
            ReadResult::Eof => return unparsed(&buf, Reply::error(400, "incomplete request head")),
            ReadResult::Timeout => {
                return unparsed(&buf, Reply::error(408, "request head timeout"))
            }
        }
    };

    let raw_head = buf[..head_end].to_vec();
    let mut rest = buf.split_off(head_end);
    let head = match parse_head(&raw_head) {
        Ok(head) => head,
        Err(malformed) => return unparsed(&raw_head, Reply::error(400, &malformed.message())),
    };
    let answer = |reply: Reply, delay: Duration, shape: Option<Fault>| {
        let mut line = String::from_utf8_lossy(first_line(&raw_head)).into_owned();
        crate::transport::truncate_utf8(&mut line, 1024);
        Outcome::Answer {
            seen: SeenRequest {
                method: head.method.clone(),
                target: head.target.clone(),
                request_line: line,
                headers: head
                    .headers
                    .iter()
                    .map(|h| (h.name.clone(), h.value.clone()))
                    .collect(),
                status: reply.status,
                raw: raw_head.clone(),
            },
            head_only: head.method.eq_ignore_ascii_case("HEAD"),
            reply,
            delay,
            shape,
            then: Then::Next,
        }
    };

    if let Some(reply) = check_head(config, &head, raw_head.len()) {
        return answer(reply, Duration::ZERO, None);
    }

    let body_deadline = Instant::now() + config.read_timeout;
    let framed = if config.lenient {
        lenient_framing(&head)
    } else {
        framing(&head)
    };
    // With the body, the bytes read past this request: dropped, but by a lenient backend.
    let (body, past) = match framed {
        Err(e) => return answer(Reply::error(400, e.message()), Duration::ZERO, None),
        Ok(Framing::None) => (Vec::new(), rest),
        Ok(Framing::Length(length)) => {
            let Some(length) = usize::try_from(length)
                .ok()
                .filter(|n| *n <= config.max_body_bytes)
            else {
                return answer(Reply::error(413, "body too large"), Duration::ZERO, None);
            };
            while rest.len() < length {
                let limit = length - rest.len();
                if !matches!(
                    read_some(stream, &mut rest, limit, body_deadline).await,
                    ReadResult::Data
                ) {
                    return answer(Reply::error(400, "incomplete body"), Duration::ZERO, None);
                }
            }
            let past = rest.split_off(length);
            (rest, past)
        }
        Ok(Framing::Chunked) => loop {
            match decode_chunked(&rest, config.max_body_bytes) {
                Ok(Some((body, used))) => break (body, rest.split_off(used.min(rest.len()))),
                Err(ChunkedError::Malformed) => {
                    return answer(
                        Reply::error(400, "malformed chunked body"),
                        Duration::ZERO,
                        None,
                    )
                }
                Err(ChunkedError::TooLarge) => {
                    return answer(Reply::error(413, "body too large"), Duration::ZERO, None)
                }
                Ok(None) => {}
            }
            let cap = config.max_body_bytes.saturating_add(CHUNKED_OVERHEAD);
            if rest.len() >= cap {
                return answer(Reply::error(413, "body too large"), Duration::ZERO, None);
            }
            let limit = cap - rest.len();
            if !matches!(
                read_some(stream, &mut rest, limit, body_deadline).await,
                ReadResult::Data
            ) {
                return answer(Reply::error(400, "incomplete body"), Duration::ZERO, None);
            }
        },
    };

    let reply = decide(config, &head, &raw_head, &body);
    let mut outcome = answer(reply, delay_for(config, &head), shape_for(config, &head));
    if let Outcome::Answer { seen, then, .. } = &mut outcome {
        seen.raw.extend_from_slice(&body);
        if config.lenient && !past.is_empty() {
            *then = Then::Pipelined(past);
        }
    }
    outcome
}

/// Limits that are checked as soon as the head is in, before any body is read.
fn check_head(config: &BackendConfig, head: &RequestHead, head_bytes: usize) -> Option<Reply> {
    if let Some((max, status)) = config.max_head {
        if head_bytes > max {
            return Some(Reply::error(status, "request head too large"));
        }
    }
    if let Some(max) = config.max_uri_bytes {
        if head.target.len() > max {
            return Some(Reply::error(414, "uri too long"));
        }
    }
    if let Some(max) = config.max_header_bytes {
        if head.headers.iter().any(|h| h.line_bytes > max) {
            return Some(Reply::error(400, "header too large"));
        }
    }
    None
}

fn delay_for(config: &BackendConfig, head: &RequestHead) -> Duration {
    config
        .faults
        .iter()
        .filter(|rule| rule.matches(head))
        .filter_map(|rule| match rule.fault {
            Fault::Delay(delay) => Some(delay),
            _ => None,
        })
        .fold(Duration::ZERO, Duration::saturating_add)
}

/// The extra wait of a refusal (see [`BackendConfig::refusal_delay`]).
fn refusal_delay(config: &BackendConfig, reply: &Reply) -> Duration {
    if reply.status >= 400 {
        config.refusal_delay
    } else {
        Duration::ZERO
    }
}

/// The first matching fault that decides how the answer is written.
fn shape_for(config: &BackendConfig, head: &RequestHead) -> Option<Fault> {
    config
        .faults
        .iter()
        .filter(|rule| rule.matches(head))
        .find(|rule| rule.fault.shapes_the_write())
        .map(|rule| rule.fault.clone())
}

/// What to answer a complete, readable request. Order: injected status, rejected method,
/// custom validation, OPTIONS and TRACE, then the healthy answer.
pub(crate) fn decide(
    config: &BackendConfig,
    head: &RequestHead,
    raw_head: &[u8],
    body: &[u8],
) -> Reply {
    let injected = config
        .faults
        .iter()
        .filter(|rule| rule.matches(head))
        .find_map(|rule| match rule.fault {
            Fault::Status(status) => Some(status),
            _ => None,
        });
    if let Some(status) = injected {
        return Reply::error(status, &format!("injected status {status}"));
    }

    let method = head.method.to_ascii_uppercase();
    let rejected = |m: &str| {
        config
            .reject_methods
            .iter()
            .any(|r| r.eq_ignore_ascii_case(m))
    };
    let allow = KNOWN_METHODS
        .iter()
        .filter(|m| !rejected(m))
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if rejected(&method) {
        return Reply::error(405, "method not allowed").header("Allow", allow);
    }
    if let Some(name) = &config.required_header {
        if head.header(name).is_none() {
            return Reply::error(400, &format!("validation failed: missing header {name}"));
        }
    }
    match method.as_str() {
        "OPTIONS" => Reply::empty(204).header("Allow", allow),
        "TRACE" => Reply {
            status: 200,
            content_type: Some("message/http"),
            headers: Vec::new(),
            body: raw_head.to_vec(),
        },
        _ => Reply::json(
            200,
            format!(
                r#"{{"ok":true,"method":{},"path":{},"body_bytes":{}}}"#,
                json_string(&head.method),
                json_string(&head.target),
                body.len()
            ),
        ),
    }
}

fn json_string(text: &str) -> String {
    serde_json::Value::from(text).to_string()
}

/// One answer, before serialisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reply {
    status: u16,
    content_type: Option<&'static str>,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn json(status: u16, body: String) -> Reply {
        Reply {
            status,
            content_type: Some("application/json"),
            headers: Vec::new(),
            body: body.into_bytes(),
        }
    }

    fn error(status: u16, message: &str) -> Reply {
        Reply::json(status, format!(r#"{{"error":{}}}"#, json_string(message)))
    }

    fn empty(status: u16) -> Reply {
        Reply {
            status,
            content_type: None,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    fn header(mut self, name: &'static str, value: String) -> Reply {
        self.headers.push((name, value));
        self
    }

    /// The bytes on the wire; `head_only` for answers to HEAD (length announced, body left out).
    fn to_bytes(&self, head_only: bool) -> Vec<u8> {
        self.to_bytes_with(head_only, &[])
    }

    /// [`Reply::to_bytes`] on a connection that stays open for the next request.
    fn to_bytes_kept_alive(&self, head_only: bool) -> Vec<u8> {
        let mut bytes = self.head_with(None, &[], "keep-alive").into_bytes();
        if !self.bodiless() && !head_only {
            bytes.extend_from_slice(&self.body);
        }
        bytes
    }

    /// [`Reply::to_bytes`] with `extra_lines` (raw, unchecked) right after the `Server` header.
    fn to_bytes_with(&self, head_only: bool, extra_lines: &[&str]) -> Vec<u8> {
        let mut bytes = self.head(None, extra_lines).into_bytes();
        if !self.bodiless() && !head_only {
            bytes.extend_from_slice(&self.body);
        }
        bytes
    }

    /// 1xx, 204 and 304 never carry a body nor, for 1xx/204, a Content-Length.
    fn bodiless(&self) -> bool {
        matches!(self.status, 100..=199 | 204 | 304)
    }

    /// Status line and headers up to the empty line; `announce` replaces the body's real length
    /// in Content-Length (for faults whose body falls short).
    fn head(&self, announce: Option<usize>, extra_lines: &[&str]) -> String {
        self.head_with(announce, extra_lines, "close")
    }

    /// [`Reply::head`] with this `Connection` header.
    fn head_with(&self, announce: Option<usize>, extra_lines: &[&str], connection: &str) -> String {
        let mut out = format!("HTTP/1.1 {} {}\r\n", self.status, reason(self.status));
        out.push_str(&format!("Server: {SERVER_NAME}\r\n"));
        for line in extra_lines {
            out.push_str(line);
            out.push_str("\r\n");
        }
        if !self.bodiless() || announce.is_some() {
            if let Some(content_type) = self.content_type {
                out.push_str(&format!("Content-Type: {content_type}\r\n"));
            }
            let length = announce.unwrap_or(self.body.len());
            out.push_str(&format!("Content-Length: {length}\r\n"));
        }
        for (name, value) in &self.headers {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
        out.push_str(&format!("Connection: {connection}\r\n\r\n"));
        out
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        102 => "Processing",
        103 => "Early Hints",
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        414 => "URI Too Long",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn refuses_at_once_what_cannot_start_a_request_line() {
        assert!(cannot_be_a_request(b"\x16\x03\x01\x02\x00"));
        assert!(cannot_be_a_request(b"\r\n\x00GET"));
        assert!(!cannot_be_a_request(b"get / HTTP/1.1"));
        assert!(!cannot_be_a_request(b"\r\nGET"));
        assert!(!cannot_be_a_request(b""));
    }

    use super::*;

    fn decide_raw(config: &BackendConfig, raw: &[u8]) -> Reply {
        let head = parse_head(raw).unwrap();
        decide(config, &head, raw, b"")
    }

    fn body_text(reply: &Reply) -> &str {
        std::str::from_utf8(&reply.body).unwrap()
    }

    #[test]
    fn healthy_answer_is_json_naming_method_and_path() {
        let reply = decide_raw(
            &BackendConfig::default(),
            b"get /a?b=\"c\" HTTP/1.1\r\n\r\n",
        );
        assert_eq!(reply.status, 200);
        let json: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(json["ok"], true);
        assert_eq!(json["method"], "get");
        assert_eq!(json["path"], "/a?b=\"c\"");
    }

    #[test]
    fn rejected_method_gets_405_with_allow_without_it() {
        let config = BackendConfig::default().reject_method("delete");
        let reply = decide_raw(&config, b"DELETE / HTTP/1.1\r\n\r\n");
        assert_eq!(reply.status, 405);
        let allow = &reply.headers.iter().find(|(n, _)| *n == "Allow").unwrap().1;
        assert!(
            allow.contains("GET") && !allow.contains("DELETE"),
            "{allow}"
        );
    }

    #[test]
    fn injected_status_wins_on_its_path_only() {
        let config = BackendConfig::default().fault(FaultRule::path("/boom", Fault::Status(503)));
        assert_eq!(
            decide_raw(&config, b"GET /boom/1 HTTP/1.1\r\n\r\n").status,
            503
        );
        assert_eq!(decide_raw(&config, b"GET /ok HTTP/1.1\r\n\r\n").status, 200);
    }

    #[test]
    fn validation_body_names_the_header() {
        let config = BackendConfig::default().required_header("X-Api-Key");
        let reply = decide_raw(&config, b"GET / HTTP/1.1\r\n\r\n");
        assert_eq!(reply.status, 400);
        assert_eq!(
            body_text(&reply),
            r#"{"error":"validation failed: missing header X-Api-Key"}"#
        );
        let ok = decide_raw(&config, b"GET / HTTP/1.1\r\nx-api-key: 1\r\n\r\n");
        assert_eq!(ok.status, 200);
    }

    #[test]
    fn trace_echoes_and_options_has_no_body() {
        let raw = b"TRACE / HTTP/1.1\r\nHost: a\r\n\r\n";
        let trace = decide_raw(&BackendConfig::default(), raw);
        assert_eq!((trace.status, trace.body.as_slice()), (200, &raw[..]));
        let options = decide_raw(&BackendConfig::default(), b"OPTIONS * HTTP/1.1\r\n\r\n");
        let wire = String::from_utf8(options.to_bytes(false)).unwrap();
        assert!(wire.starts_with("HTTP/1.1 204 No Content\r\n"), "{wire}");
        assert!(!wire.contains("Content-Length") && wire.ends_with("\r\n\r\n"));
    }

    #[test]
    fn head_answers_announce_the_length_but_send_no_body() {
        let reply = Reply::error(400, "x");
        let wire = String::from_utf8(reply.to_bytes(true)).unwrap();
        assert!(wire.contains("Content-Length: 13\r\n") && wire.ends_with("\r\n\r\n"));
        assert!(wire.contains("Server: lbprobe-lab\r\n"));
    }

    #[test]
    fn delays_add_up_on_matching_paths() {
        let config = BackendConfig::default()
            .fault(FaultRule::all(Fault::Delay(Duration::from_millis(5))))
            .fault(FaultRule::path(
                "/slow",
                Fault::Delay(Duration::from_millis(7)),
            ));
        let slow = parse_head(b"GET /slow HTTP/1.1\r\n\r\n").unwrap();
        let fast = parse_head(b"GET /fast HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!(delay_for(&config, &slow), Duration::from_millis(12));
        assert_eq!(delay_for(&config, &fast), Duration::from_millis(5));
    }

    #[test]
    fn the_first_write_shaping_rule_wins_and_delay_and_status_compose_with_it() {
        let config = BackendConfig::default()
            .fault(FaultRule::all(Fault::Delay(Duration::from_millis(5))))
            .fault(FaultRule::all(Fault::Status(504)))
            .fault(FaultRule::path("/short", Fault::ShortBody))
            .fault(FaultRule::all(Fault::CloseWithoutResponse));
        let short = parse_head(b"GET /short HTTP/1.1\r\n\r\n").unwrap();
        let other = parse_head(b"GET /other HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!(shape_for(&config, &short), Some(Fault::ShortBody));
        assert_eq!(
            shape_for(&config, &other),
            Some(Fault::CloseWithoutResponse)
        );
        assert_eq!(delay_for(&config, &short), Duration::from_millis(5));
        assert_eq!(
            decide_raw(&config, b"GET /short HTTP/1.1\r\n\r\n").status,
            504
        );
        assert_eq!(shape_for(&BackendConfig::default(), &short), None);
    }

    #[test]
    fn announced_length_and_extra_lines_change_only_the_head() {
        let reply = Reply::error(504, "x");
        let head = reply.head(Some(ANNOUNCED_LENGTH), &[]);
        assert!(
            head.starts_with("HTTP/1.1 504 Gateway Timeout\r\n"),
            "{head}"
        );
        assert!(head.contains("Content-Length: 100\r\n") && head.ends_with("\r\n\r\n"));
        let wire = String::from_utf8(reply.to_bytes_with(false, &[MALFORMED_HEADER_LINE])).unwrap();
        assert!(
            wire.contains("Server: lbprobe-lab\r\nX-Lab-Broken-Header-Without-Colon\r\n"),
            "{wire}"
        );
        assert!(wire.ends_with(r#"{"error":"x"}"#), "{wire}");
    }
}
