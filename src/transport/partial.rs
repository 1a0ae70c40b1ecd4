//! A request we abandon ourselves: write part of it, wait a moment, close our sending side and
//! watch how the server reacts. This is what a client that gives up mid-request looks like to a
//! listener; [`exchange`](super::exchange()) cannot do it because it always waits for the server.

use std::io;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::timeout_at;

use super::exchange::{connect_endpoint, tls_handshake};
use super::response::{parse_response_closed, response_is_complete};
use super::{Bounds, ConnEnd, Endpoint, Exchange, Wire};

const RAW_PREFIX_BYTES: usize = 512;
const READ_CHUNK: usize = 16 * 1024;

/// What the server did during one watch of the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reaction {
    /// Nothing arrived and the connection stayed open.
    Silent,
    /// Bytes arrived (parsed into the exchange's response when they are HTTP).
    Sent,
    /// The server closed (FIN) without sending anything.
    Closed,
    /// The server reset the connection.
    Reset,
    /// The connection could not be used: never connected, TLS failed, another I/O error.
    Failed(String),
}

/// The record of a request we cut and closed.
#[derive(Debug, Clone, PartialEq)]
pub struct EarlyClose {
    /// Timings, bytes, whatever answer came (before or after our close) and how it ended.
    pub exchange: Exchange,
    /// What the server did between our last byte and our close (`Silent` when it waited).
    pub before: Reaction,
    /// Milliseconds from our last byte to the server's action, or to our close when silent.
    pub before_ms: f64,
    /// What the server did after our close; `None` when it acted first and we never closed
    /// early.
    pub after: Option<Reaction>,
    /// Milliseconds from our close to the server's reaction (or to the end of the watch).
    pub after_ms: Option<f64>,
}

/// Connect, write `request`, stay silent for `pause` while reading, then shut down our sending
/// side (FIN, after close_notify on TLS) and watch for up to `linger` how the server reacts.
/// Bounded by `bounds` (connect timeout, response size); never fails: problems are in the result.
pub async fn send_then_close(
    endpoint: &Endpoint,
    request: &[u8],
    pause: Duration,
    linger: Duration,
    bounds: &Bounds,
) -> EarlyClose {
    let started = Instant::now();
    let mut result = EarlyClose {
        exchange: Exchange::not_started(endpoint),
        before: Reaction::Failed("not started".into()),
        before_ms: 0.0,
        after: None,
        after_ms: None,
    };
    let tcp = match connect_endpoint(endpoint, bounds).await {
        Ok(tcp) => tcp,
        Err(end) => {
            result.before = Reaction::Failed(end.to_string());
            result.exchange.end = end;
            result.exchange.timings.total_ms = ms_since(started);
            return result;
        }
    };
    result.exchange.timings.connect_ms = Some(ms_since(started));
    match &endpoint.wire {
        Wire::Plain => {
            let mut tcp = tcp;
            cut_and_close(&mut tcp, request, pause, linger, bounds, &mut result).await;
        }
        Wire::Tls { server_name, tls } => {
            let tls_started = Instant::now();
            // The handshake gets the connect timeout: the pause is for after our bytes.
            let deadline = tokio::time::Instant::now() + bounds.connect_timeout;
            match tls_handshake(tcp, server_name, tls, deadline).await {
                Ok(mut stream) => {
                    result.exchange.timings.tls_ms = Some(ms_since(tls_started));
                    cut_and_close(&mut stream, request, pause, linger, bounds, &mut result).await;
                }
                Err(failure) => {
                    result.before = Reaction::Failed(failure.end.to_string());
                    result.exchange.end = failure.end;
                    result.exchange.bytes_in = failure.bytes_in;
                }
            }
        }
    }
    result.exchange.timings.total_ms = ms_since(started);
    result
}

fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

async fn cut_and_close<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    request: &[u8],
    pause: Duration,
    linger: Duration,
    bounds: &Bounds,
    result: &mut EarlyClose,
) {
    let write_deadline = tokio::time::Instant::now() + pause;
    let mut written = 0;
    let mut write_failed = None;
    while written < request.len() {
        match timeout_at(write_deadline, stream.write(&request[written..])).await {
            Ok(Ok(n)) if n > 0 => written += n,
            Ok(Ok(_)) => break,
            Ok(Err(e)) => {
                write_failed = Some(e);
                break;
            }
            Err(_) => break,
        }
    }
    let _ = timeout_at(write_deadline, stream.flush()).await;
    result.exchange.bytes_out = written;
    let write_done = Instant::now();
    let mut bytes = Vec::new();

    let before = match write_failed {
        Some(e) if e.kind() == io::ErrorKind::ConnectionReset => Watch {
            reaction: Reaction::Reset,
            at: write_done,
            open: false,
        },
        Some(e) => Watch {
            reaction: Reaction::Failed(e.to_string()),
            at: write_done,
            open: false,
        },
        None => {
            watch(
                stream,
                write_done + pause,
                bounds,
                &mut bytes,
                result,
                write_done,
            )
            .await
        }
    };
    result.before = before.reaction.clone();
    result.before_ms = ms_between(write_done, before.at);
    let mut last = before;
    if result.before == Reaction::Silent {
        let closing = Instant::now();
        // A failed shutdown means the connection is already gone; the watch below says how.
        let _ = timeout_at(tokio::time::Instant::now() + linger, stream.shutdown()).await;
        let after = watch(
            stream,
            closing + linger,
            bounds,
            &mut bytes,
            result,
            write_done,
        )
        .await;
        result.after = Some(after.reaction.clone());
        result.after_ms = Some(ms_between(closing, after.at));
        last = after;
    }

    result.exchange.bytes_in = bytes.len();
    result.exchange.raw_prefix = bytes[..bytes.len().min(RAW_PREFIX_BYTES)].into();
    result.exchange.response = parse_response_closed(&bytes, false, &bounds.parse);
    let complete = result
        .exchange
        .response
        .as_ref()
        .is_some_and(|r| r.complete);
    result.exchange.end = match last.reaction {
        Reaction::Silent => ConnEnd::Timeout,
        Reaction::Closed => ConnEnd::Fin,
        Reaction::Reset => ConnEnd::Reset,
        Reaction::Failed(why) => ConnEnd::Io(why),
        Reaction::Sent if complete => ConnEnd::Complete,
        Reaction::Sent if last.open => ConnEnd::Timeout,
        Reaction::Sent => ConnEnd::Fin,
    };
}

fn ms_between(from: Instant, to: Instant) -> f64 {
    to.saturating_duration_since(from).as_secs_f64() * 1000.0
}

/// What one watch saw, and when.
struct Watch {
    reaction: Reaction,
    /// When the server acted (first byte, close or reset), or when the watch ended in silence.
    at: Instant,
    /// The connection was still open when the watch ended.
    open: bool,
}

/// Read until `until`, a complete answer, the server's close or the size bound, appending to
/// `bytes`.
async fn watch<S: AsyncRead + Unpin>(
    stream: &mut S,
    until: Instant,
    bounds: &Bounds,
    bytes: &mut Vec<u8>,
    result: &mut EarlyClose,
    write_done: Instant,
) -> Watch {
    let deadline = tokio::time::Instant::from_std(until);
    let had = bytes.len();
    let mut first_byte = None;
    let mut chunk = vec![0u8; READ_CHUNK];
    let sent = |first: Option<Instant>, open: bool| Watch {
        reaction: Reaction::Sent,
        at: first.unwrap_or_else(Instant::now),
        open,
    };
    loop {
        if bytes.len() >= bounds.max_response_bytes {
            return sent(first_byte, true);
        }
        let room = (bounds.max_response_bytes - bytes.len()).min(READ_CHUNK);
        match timeout_at(deadline, stream.read(&mut chunk[..room])).await {
            Err(_) if bytes.len() > had => return sent(first_byte, true),
            Err(_) => {
                return Watch {
                    reaction: Reaction::Silent,
                    at: until,
                    open: true,
                }
            }
            Ok(Ok(0)) if bytes.len() > had => return sent(first_byte, false),
            Ok(Ok(0)) => {
                return Watch {
                    reaction: Reaction::Closed,
                    at: Instant::now(),
                    open: false,
                }
            }
            Ok(Ok(n)) => {
                let now = Instant::now();
                first_byte.get_or_insert(now);
                if result.exchange.timings.first_byte_ms.is_none() {
                    result.exchange.timings.first_byte_ms = Some(ms_between(write_done, now));
                }
                bytes.extend_from_slice(&chunk[..n]);
                if response_is_complete(bytes, false, &bounds.parse) {
                    return sent(first_byte, true);
                }
            }
            // rustls reports a TCP close without close_notify this way: a plain close.
            Ok(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
                if bytes.len() > had {
                    return sent(first_byte, false);
                }
                return Watch {
                    reaction: Reaction::Closed,
                    at: Instant::now(),
                    open: false,
                };
            }
            Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionReset => {
                return Watch {
                    reaction: Reaction::Reset,
                    at: Instant::now(),
                    open: false,
                }
            }
            Ok(Err(e)) => {
                return Watch {
                    reaction: Reaction::Failed(e.to_string()),
                    at: Instant::now(),
                    open: false,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    fn endpoint(port: u16) -> Endpoint {
        Endpoint::plain("127.0.0.1", port)
    }

    fn bounds() -> Bounds {
        Bounds {
            connect_timeout: Duration::from_secs(2),
            ..Bounds::default()
        }
    }

    #[tokio::test]
    async fn silent_server_sees_our_close_and_its_close_is_recorded() {
        let server = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = server.local_addr().unwrap().port();
        let peer = tokio::spawn(async move {
            let (mut sock, _) = server.accept().await.unwrap();
            let mut got = Vec::new();
            // Reads until our FIN, then closes: a server that treats the close as the end.
            let _ = tokio::time::timeout(Duration::from_secs(5), sock.read_to_end(&mut got)).await;
            got
        });
        let out = send_then_close(
            &endpoint(port),
            b"GET / HTTP/1.1\r\nHo",
            Duration::from_millis(100),
            Duration::from_secs(2),
            &bounds(),
        )
        .await;
        assert_eq!(peer.await.unwrap(), b"GET / HTTP/1.1\r\nHo".to_vec());
        assert_eq!(out.before, Reaction::Silent);
        assert_eq!(out.after, Some(Reaction::Closed));
        assert_eq!(out.exchange.end, ConnEnd::Fin);
        assert_eq!(out.exchange.bytes_out, 18);
        assert!(out.exchange.response.is_none());
    }

    #[tokio::test]
    async fn server_that_answers_first_is_recorded_without_our_close() {
        let server = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = server.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut sock, _) = server.accept().await.unwrap();
            let mut buf = [0u8; 64];
            let _ = sock.read(&mut buf).await;
            let _ = sock
                .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                .await;
            let _ = sock.shutdown().await;
        });
        let out = send_then_close(
            &endpoint(port),
            b"GET / HTTP/1.1\r\nHo",
            Duration::from_secs(5),
            Duration::from_secs(1),
            &bounds(),
        )
        .await;
        assert_eq!(out.before, Reaction::Sent);
        assert_eq!(out.after, None);
        assert_eq!(out.exchange.status(), Some(400));
        assert_eq!(out.exchange.end, ConnEnd::Complete);
    }

    #[tokio::test]
    async fn refused_connection_is_a_failure_not_a_panic() {
        // Bind then drop, so the port is (very likely) closed.
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            l.local_addr().unwrap().port()
        };
        let out = send_then_close(
            &endpoint(port),
            b"GET",
            Duration::from_millis(50),
            Duration::from_millis(50),
            &bounds(),
        )
        .await;
        assert!(matches!(out.before, Reaction::Failed(_)));
        assert!(out.exchange.end.never_connected());
    }
}
