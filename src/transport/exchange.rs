//! One request over one fresh connection, with timings and a bounded read.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::timeout_at;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::progress::HeadClock;
use super::response::{completion, parse_response, parse_response_closed, Completion};
use super::tcp_info::tcp_info;
use super::{escape_bytes, tls, Bounds, ConnEnd, Endpoint, Exchange, IpFamily, TlsInfo, Wire};

/// Received bytes kept in [`Exchange::raw_prefix`].
const RAW_PREFIX_BYTES: usize = 512;
/// Bytes of a failed TLS handshake's answer kept to say what the peer spoke instead.
const HANDSHAKE_KEEP_BYTES: usize = 4096;
const READ_CHUNK: usize = 16 * 1024;
/// What raw exchanges speak: bytes written as HTTP/1.x, over TLS without ALPN.
pub const RAW_HTTP_VERSION: &str = "HTTP/1.1";

/// Connect, (handshake,) write `request` exactly, read until the response is complete, the
/// server closes, the size bound or the deadline. Never fails: problems are in the result.
pub async fn exchange(endpoint: &Endpoint, request: &[u8], bounds: &Bounds) -> Exchange {
    let started = Instant::now();
    let mut ex = Exchange::not_started(endpoint);
    let head_request = request.starts_with(b"HEAD ");
    let Some(tcp) = connect_recorded(endpoint, bounds, started, &mut ex).await else {
        return ex;
    };
    ex.http_version = Some(RAW_HTTP_VERSION.to_string());
    let deadline = tokio::time::Instant::now() + bounds.total_timeout;

    match &endpoint.wire {
        Wire::Plain => {
            let mut tcp = tcp;
            let read = talk(&mut tcp, request, bounds, deadline, &mut ex).await;
            record_read(&mut ex, read, head_request, bounds);
            record_tcp_info(&mut ex, &tcp);
        }
        Wire::Tls { server_name, tls } => {
            let tls_started = Instant::now();
            match tls_handshake(tcp, server_name, tls, deadline).await {
                Ok(mut stream) => {
                    ex.timings.tls_ms = Some(ms_since(tls_started));
                    ex.tls_info = Some(tls_info(stream.get_ref().1));
                    let read = talk(&mut stream, request, bounds, deadline, &mut ex).await;
                    record_read(&mut ex, read, head_request, bounds);
                    record_tcp_info(&mut ex, &stream.get_ref().0.inner);
                }
                Err(failure) => {
                    // Whatever answered instead of TLS (often an HTTP 400 from a plain-HTTP
                    // port) is the most useful thing to show.
                    ex.bytes_in = failure.bytes_in;
                    ex.raw_prefix = failure.seen[..failure.seen.len().min(RAW_PREFIX_BYTES)].into();
                    ex.response = parse_response(&failure.seen, head_request, &bounds.parse);
                    if let Some(tcp) = &failure.tcp {
                        record_tcp_info(&mut ex, tcp);
                    }
                    ex.end = failure.end;
                }
            }
        }
    }
    ex.timings.total_ms = ms_since(started);
    ex
}

fn tls_info(conn: &rustls::ClientConnection) -> TlsInfo {
    let version = match conn.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".to_string(),
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".to_string(),
        Some(other) => format!("TLS version {:#06x}", u16::from(other)),
        None => "unknown".to_string(),
    };
    TlsInfo {
        version,
        cipher: conn
            .negotiated_cipher_suite()
            .and_then(|c| c.suite().as_str())
            .unwrap_or("unknown")
            .to_string(),
        alpn: conn
            .alpn_protocol()
            .map(|a| String::from_utf8_lossy(a).into_owned()),
    }
}

fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

fn record_tcp_info(ex: &mut Exchange, tcp: &TcpStream) {
    if let Some(info) = tcp_info(tcp) {
        ex.tcp_rtt_us = Some(info.rtt_us);
        ex.tcp_retransmits = Some(info.retransmits);
    }
}

/// Connect to `endpoint`, recording the name lookup, the connect time and the peer in `ex`; on
/// failure `ex` ends there (its end and total time set) and `None` is returned.
async fn connect_recorded(
    endpoint: &Endpoint,
    bounds: &Bounds,
    started: Instant,
    ex: &mut Exchange,
) -> Option<TcpStream> {
    let (connected, dns_ms) =
        connect_measured(&endpoint.host, endpoint.port, endpoint.family, bounds).await;
    ex.timings.dns_ms = dns_ms;
    match connected {
        Ok(tcp) => {
            ex.timings.connect_ms = Some(ms_since(started));
            ex.peer = tcp.peer_addr().ok().map(|a| a.to_string());
            Some(tcp)
        }
        Err(end) => {
            ex.end = end;
            ex.timings.total_ms = ms_since(started);
            None
        }
    }
}

/// Resolve `host` and connect to its addresses in order within `bounds.connect_timeout` (DNS
/// included), with TCP_NODELAY so our bytes leave as written. The error is the [`ConnEnd`] of the
/// last address tried.
pub async fn connect(host: &str, port: u16, bounds: &Bounds) -> Result<TcpStream, ConnEnd> {
    connect_measured(host, port, None, bounds).await.0
}

/// [`connect`] to an endpoint, held to its address family.
pub async fn connect_endpoint(endpoint: &Endpoint, bounds: &Bounds) -> Result<TcpStream, ConnEnd> {
    connect_measured(&endpoint.host, endpoint.port, endpoint.family, bounds)
        .await
        .0
}

/// [`connect`], only to addresses of `family` when given, and how long the name lookup took
/// (`None` for an address: none was made).
pub async fn connect_measured(
    host: &str,
    port: u16,
    family: Option<IpFamily>,
    bounds: &Bounds,
) -> (Result<TcpStream, ConnEnd>, Option<f64>) {
    let mut dns_ms = None;
    let result = connect_inner(host, port, family, bounds, &mut dns_ms).await;
    (result, dns_ms)
}

async fn connect_inner(
    host: &str,
    port: u16,
    family: Option<IpFamily>,
    bounds: &Bounds,
    dns_ms: &mut Option<f64>,
) -> Result<TcpStream, ConnEnd> {
    let deadline = tokio::time::Instant::now() + bounds.connect_timeout;
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let lookup_started = Instant::now();
    let addrs: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => match timeout_at(deadline, tokio::net::lookup_host((bare, port)))
            .await
            .inspect(|_| *dns_ms = Some(ms_since(lookup_started)))
        {
            Err(_) => {
                return Err(ConnEnd::NameNotResolved(format!(
                    "DNS lookup of {bare} timed out"
                )))
            }
            Ok(Err(e)) => {
                return Err(ConnEnd::NameNotResolved(format!(
                    "DNS lookup of {bare} failed: {e}"
                )))
            }
            Ok(Ok(addrs)) => addrs.collect(),
        },
    };
    let addrs: Vec<SocketAddr> = match family {
        None => addrs,
        Some(f) => {
            let kept: Vec<SocketAddr> = addrs.into_iter().filter(|a| f.admits(&a.ip())).collect();
            if kept.is_empty() {
                return Err(ConnEnd::Unreachable(format!(
                    "{bare} has no {} address ({} given; no fallback to the other family)",
                    if f == IpFamily::V4 { "IPv4" } else { "IPv6" },
                    f.flag()
                )));
            }
            kept
        }
    };
    let mut last = ConnEnd::NameNotResolved(format!("DNS lookup of {bare}: no addresses"));
    for addr in addrs {
        let socket = match if addr.is_ipv4() {
            TcpSocket::new_v4()
        } else {
            TcpSocket::new_v6()
        } {
            Ok(s) => s,
            Err(e) => {
                last = ConnEnd::Io(format!("cannot create a socket for {addr}: {e}"));
                continue;
            }
        };
        match timeout_at(deadline, socket.connect(addr)).await {
            Ok(Ok(stream)) => {
                // Nagle would hold back the tail of a request written in pieces; a failure
                // here only costs latency.
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Ok(Err(e)) => last = connect_error(&e),
            Err(_) => return Err(ConnEnd::ConnectTimeout),
        }
    }
    Err(last)
}

fn connect_error(e: &io::Error) -> ConnEnd {
    if e.kind() == io::ErrorKind::ConnectionRefused {
        return ConnEnd::ConnectRefused;
    }
    if e.kind() == io::ErrorKind::TimedOut {
        return ConnEnd::ConnectTimeout;
    }
    #[cfg(unix)]
    if let Some(libc::ENETUNREACH | libc::EHOSTUNREACH | libc::ENETDOWN | libc::EHOSTDOWN) =
        e.raw_os_error()
    {
        return ConnEnd::Unreachable(e.to_string());
    }
    ConnEnd::Io(e.to_string())
}

/// What the read phase saw.
struct Read {
    bytes: Vec<u8>,
    end: ReadEnd,
    /// The write failed with a reset: the kernel reports an RST once, so a read after it only
    /// sees the end of the stream.
    write_reset: bool,
}

enum ReadEnd {
    Complete,
    Eof,
    Other(ConnEnd),
}

fn record_read(ex: &mut Exchange, read: Read, head_request: bool, bounds: &Bounds) {
    let bytes = &read.bytes;
    ex.bytes_in = bytes.len();
    ex.raw_prefix = bytes[..bytes.len().min(RAW_PREFIX_BYTES)].into();
    let (end, response) = match read.end {
        ReadEnd::Complete => (
            ConnEnd::Complete,
            parse_response(bytes, head_request, &bounds.parse),
        ),
        ReadEnd::Eof => {
            let response = parse_response_closed(bytes, head_request, &bounds.parse);
            // A close-delimited body ends with the connection: that is a complete response.
            let end = if response.as_ref().is_some_and(|r| r.complete) {
                ConnEnd::Complete
            } else if read.write_reset {
                ConnEnd::Reset
            } else {
                ConnEnd::Fin
            };
            (end, response)
        }
        ReadEnd::Other(end) => (end, parse_response(bytes, head_request, &bounds.parse)),
    };
    ex.end = end;
    ex.response = response;
}

/// Write the request, then read the answer, both before `deadline`. A failed or timed-out write
/// still goes on to read: servers often answer (400, 413, 414) and close before reading all of
/// a request, and that answer is what we came for.
async fn talk<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    request: &[u8],
    bounds: &Bounds,
    deadline: tokio::time::Instant,
    ex: &mut Exchange,
) -> Read {
    let mut written = 0;
    let mut write_reset = false;
    while written < request.len() {
        match timeout_at(deadline, stream.write(&request[written..])).await {
            Ok(Ok(n)) if n > 0 => written += n,
            Ok(Err(e)) => {
                write_reset = e.kind() == io::ErrorKind::ConnectionReset;
                break;
            }
            _ => break,
        }
    }
    if written == request.len() {
        let _ = timeout_at(deadline, stream.flush()).await;
    }
    ex.bytes_out = written;
    let write_done = Instant::now();
    let mut first_byte_at: Option<Instant> = None;
    let max = bounds.max_response_bytes;
    let mut bytes = Vec::new();
    let mut chunk = vec![0u8; READ_CHUNK];
    // Re-parsing everything at every read would be quadratic for a server that sends a few
    // bytes per read (endless headers, tiny chunks): parse again only when the new bytes can
    // have completed the response — a blank line in them (the end of a head or of a chunked
    // body) or the length that Content-Length asked for. A chunked body whose data is full of
    // blank lines still costs a parse per read, bounded by the size and the deadline.
    let mut awaiting = Completion::AtBlankLine;
    let head_request = request.starts_with(b"HEAD ");
    // A head that has begun and trickles ends the read before the deadline (see `progress`).
    let mut head = HeadClock::new(bounds.head_min_rate, bounds.parse.max_head_bytes);
    let end = loop {
        if bytes.len() >= max {
            break ReadEnd::Other(ConnEnd::SizeBound);
        }
        let room = (max - bytes.len()).min(READ_CHUNK);
        let until = head
            .deadline(bytes.len())
            .map_or(deadline, |head_due| head_due.min(deadline));
        // timeout_at polls the read once even past the deadline, so bytes that already arrived
        // are still collected after a timed-out write.
        match timeout_at(until, stream.read(&mut chunk[..room])).await {
            Err(_) => break ReadEnd::Other(ConnEnd::Timeout),
            Ok(Ok(0)) => break ReadEnd::Eof,
            Ok(Ok(n)) => {
                if ex.timings.first_byte_ms.is_none() {
                    ex.timings.first_byte_ms = Some(ms_since(write_done));
                    first_byte_at = Some(Instant::now());
                }
                let scan_from = bytes.len().saturating_sub(3);
                bytes.extend_from_slice(&chunk[..n]);
                head.advance(&bytes, tokio::time::Instant::now());
                let worth_a_parse = match awaiting {
                    Completion::AtBlankLine => {
                        let new = &bytes[scan_from..];
                        crate::bytes::contains(new, b"\n\n")
                            || crate::bytes::contains(new, b"\n\r\n")
                    }
                    Completion::AtLength(total) => bytes.len() >= total,
                    Completion::AtClose => false,
                    Completion::Complete => true,
                };
                if worth_a_parse {
                    awaiting = completion(&bytes, head_request, &bounds.parse);
                    if awaiting == Completion::Complete {
                        break ReadEnd::Complete;
                    }
                }
            }
            Ok(Err(e)) => break read_error(e),
        }
    };
    ex.timings.transfer_ms = first_byte_at.map(ms_since);
    Read {
        bytes,
        end,
        write_reset,
    }
}

fn read_error(e: io::Error) -> ReadEnd {
    // rustls reports a TCP close without close_notify this way; for HTTP/1.1 framing it is a
    // plain close (most servers never send close_notify).
    if e.kind() == io::ErrorKind::UnexpectedEof {
        return ReadEnd::Eof;
    }
    if e.kind() == io::ErrorKind::ConnectionReset {
        return ReadEnd::Other(ConnEnd::Reset);
    }
    if let Some(tls_error) = rustls_error(&e) {
        return ReadEnd::Other(ConnEnd::TlsAlert(tls::error_words(tls_error)));
    }
    ReadEnd::Other(ConnEnd::Io(e.to_string()))
}

fn rustls_error(e: &io::Error) -> Option<&rustls::Error> {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
}

/// A TCP stream that keeps a copy of the first bytes it reads, to tell what a peer spoke when a
/// TLS handshake fails.
pub(crate) struct Recorder {
    pub(crate) inner: TcpStream,
    pub(crate) seen: Vec<u8>,
    pub(crate) bytes_in: usize,
}

impl Recorder {
    fn new(inner: TcpStream) -> Self {
        Recorder {
            inner,
            seen: Vec::new(),
            bytes_in: 0,
        }
    }
}

impl AsyncRead for Recorder {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let poll = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = poll {
            let new = &buf.filled()[before..];
            this.bytes_in += new.len();
            let room = HANDSHAKE_KEEP_BYTES.saturating_sub(this.seen.len());
            this.seen.extend_from_slice(&new[..new.len().min(room)]);
        }
        poll
    }
}

impl AsyncWrite for Recorder {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Why a TLS handshake did not complete, with what the peer sent meanwhile.
pub(crate) struct HandshakeFailure {
    pub(crate) end: ConnEnd,
    /// The first bytes the peer sent (up to a few KiB).
    pub(crate) seen: Vec<u8>,
    pub(crate) bytes_in: usize,
    /// The connection, when it survived the failure (not after a timeout).
    pub(crate) tcp: Option<TcpStream>,
}

impl HandshakeFailure {
    /// The peer's first bytes are a TLS record (handshake or alert): it speaks TLS even though
    /// this handshake failed.
    pub(crate) fn peer_spoke_tls(&self) -> bool {
        looks_like_tls_record(&self.seen)
    }
}

fn looks_like_tls_record(bytes: &[u8]) -> bool {
    // Content type handshake (22) or alert (21), then a 3.x record version.
    matches!(bytes, [0x15 | 0x16, 0x03, ..])
}

/// TLS handshake over `tcp` before `deadline`, SNI (or IP name) from `server_name`, offering
/// no ALPN: the raw probes' bytes are HTTP/1.x whatever the server would prefer.
pub(crate) async fn tls_handshake(
    tcp: TcpStream,
    server_name: &str,
    settings: &tls::TlsSettings,
    deadline: tokio::time::Instant,
) -> Result<TlsStream<Recorder>, HandshakeFailure> {
    tls_handshake_offering(tcp, server_name, settings, tls::Alpn::None, deadline).await
}

/// A TLS handshake alone, offering `h2` then `http/1.1`: does this side speak HTTP/2? The
/// record's `tls_info.alpn` is the side's choice (`None` when the handshake failed). No request
/// is sent; the connection is closed after the handshake.
pub async fn offer_h2(endpoint: &Endpoint, bounds: &Bounds) -> Exchange {
    let started = Instant::now();
    let mut ex = Exchange::not_started(endpoint);
    let Wire::Tls { server_name, tls } = &endpoint.wire else {
        ex.end = ConnEnd::Io("ALPN needs TLS".into());
        return ex;
    };
    let Some(tcp) = connect_recorded(endpoint, bounds, started, &mut ex).await else {
        return ex;
    };
    let deadline = tokio::time::Instant::now() + bounds.total_timeout;
    let tls_started = Instant::now();
    match tls_handshake_offering(tcp, server_name, tls, tls::Alpn::H2OrHttp1, deadline).await {
        Ok(mut stream) => {
            ex.timings.tls_ms = Some(ms_since(tls_started));
            ex.tls_info = Some(tls_info(stream.get_ref().1));
            ex.end = ConnEnd::Complete;
            // A polite close_notify; the answer does not depend on it.
            let _ = timeout_at(deadline, stream.shutdown()).await;
        }
        Err(failure) => {
            ex.bytes_in = failure.bytes_in;
            ex.raw_prefix = failure.seen[..failure.seen.len().min(RAW_PREFIX_BYTES)].into();
            ex.end = failure.end;
        }
    }
    ex.timings.total_ms = ms_since(started);
    ex
}

/// [`tls_handshake`], offering `alpn`.
pub(crate) async fn tls_handshake_offering(
    tcp: TcpStream,
    server_name: &str,
    settings: &tls::TlsSettings,
    alpn: tls::Alpn,
    deadline: tokio::time::Instant,
) -> Result<TlsStream<Recorder>, HandshakeFailure> {
    let recorder = Recorder::new(tcp);
    let Some(name) = tls::server_name(server_name) else {
        return Err(HandshakeFailure {
            end: ConnEnd::TlsFailed(format!(
                "invalid TLS server name {:?}",
                escape_bytes(server_name.as_bytes())
            )),
            seen: Vec::new(),
            bytes_in: 0,
            tcp: Some(recorder.inner),
        });
    };
    let config = match tls::client_config(settings, alpn) {
        Ok(config) => config,
        Err(e) => {
            return Err(HandshakeFailure {
                end: ConnEnd::TlsFailed(format!("client TLS settings: {e}")),
                seen: Vec::new(),
                bytes_in: 0,
                tcp: Some(recorder.inner),
            })
        }
    };
    let connector = TlsConnector::from(config);
    match timeout_at(deadline, connector.connect(name, recorder).into_fallible()).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err((e, recorder))) => Err(HandshakeFailure {
            end: ConnEnd::TlsFailed(handshake_error(&e, &recorder.seen)),
            seen: recorder.seen,
            bytes_in: recorder.bytes_in,
            tcp: Some(recorder.inner),
        }),
        Err(_) => Err(HandshakeFailure {
            end: ConnEnd::Timeout,
            seen: Vec::new(),
            bytes_in: 0,
            tcp: None,
        }),
    }
}

/// A short reason for a failed handshake, naming what the peer sent when it was not TLS.
fn handshake_error(e: &io::Error, seen: &[u8]) -> String {
    let not_tls = !seen.is_empty() && !looks_like_tls_record(seen);
    let what = || escape_bytes(&seen[..seen.len().min(64)]);
    if let Some(tls_error) = rustls_error(e) {
        let words = tls::error_words(tls_error);
        if not_tls {
            return format!("peer sent no TLS ({words}): {}", what());
        }
        return words;
    }
    match e.kind() {
        io::ErrorKind::UnexpectedEof if not_tls => {
            format!("peer sent no TLS and closed: {}", what())
        }
        io::ErrorKind::UnexpectedEof => "peer closed the connection during the handshake".into(),
        io::ErrorKind::ConnectionReset => "connection reset during the handshake".into(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::endpoint_label;

    #[test]
    fn labels() {
        assert_eq!(endpoint_label("::1", 80, false), "[::1]:80");
        assert_eq!(endpoint_label("[::1]", 80, true), "[::1]:80 (tls)");
        assert_eq!(
            endpoint_label("lb.example", 443, true),
            "lb.example:443 (tls)"
        );
    }

    #[test]
    fn tls_record_detection() {
        assert!(looks_like_tls_record(b"\x16\x03\x03\x00\x10"));
        assert!(looks_like_tls_record(b"\x15\x03\x01\x00\x02"));
        assert!(!looks_like_tls_record(b"HTTP/1.1 400"));
        assert!(!looks_like_tls_record(b""));
    }
}
