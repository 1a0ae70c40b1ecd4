//! One connection kept open for request after request, to see how long a server keeps an idle
//! keep-alive connection usable: watch it for the server's close, or send the next request after
//! a chosen gap and see whether it is answered.
//!
//! Same bounds as a single exchange: every read is capped in bytes and time, and the server's
//! misbehaviour (a close, a reset, silence) is recorded in the [`Exchange`] or [`IdleEnd`], never
//! returned as `Err`.

use std::io;
use std::pin::Pin;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::timeout_at;

use super::exchange::{connect_endpoint, tls_handshake};
use super::response::{parse_response, parse_response_closed, response_is_complete};
use super::{escape_bytes, Bounds, ConnEnd, Endpoint, Exchange, Wire};

const RAW_PREFIX_BYTES: usize = 512;
const READ_CHUNK: usize = 16 * 1024;

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// An open connection to an endpoint, plain or TLS, on which requests are sent one at a time.
pub struct KeepAliveConn {
    stream: Pin<Box<dyn Stream>>,
    endpoint: Endpoint,
    connect_ms: f64,
    tls_ms: Option<f64>,
    /// Requests sent on this connection so far.
    sent: u32,
    /// When the last response ended (or the connection opened): the start of the idle time.
    idle_since: Instant,
}

/// What the server did with an idle connection while we watched it.
#[derive(Debug, Clone, PartialEq)]
pub enum IdleEnd {
    /// Still open at the end of the watch.
    Open,
    /// The server closed it (FIN) this long after the last response.
    Closed { after: Duration },
    /// The server reset it this long after the last response.
    Reset { after: Duration },
    /// The server sent bytes nobody asked for (an unsolicited answer, garbage).
    Unsolicited { prefix: String },
}

impl KeepAliveConn {
    /// Connect (and handshake) within `bounds`; the error is how the attempt ended.
    pub async fn open(endpoint: &Endpoint, bounds: &Bounds) -> Result<KeepAliveConn, ConnEnd> {
        let started = Instant::now();
        let tcp = connect_endpoint(endpoint, bounds).await?;
        let connect_ms = ms_since(started);
        let (stream, tls_ms): (Pin<Box<dyn Stream>>, _) = match &endpoint.wire {
            Wire::Plain => (Box::pin(tcp), None),
            Wire::Tls { server_name, tls } => {
                let tls_started = Instant::now();
                let deadline = tokio::time::Instant::now() + bounds.total_timeout;
                let stream = tls_handshake(tcp, server_name, tls, deadline)
                    .await
                    .map_err(|failure| failure.end)?;
                (Box::pin(stream), Some(ms_since(tls_started)))
            }
        };
        Ok(KeepAliveConn {
            stream,
            endpoint: endpoint.clone(),
            connect_ms,
            tls_ms,
            sent: 0,
            idle_since: Instant::now(),
        })
    }

    /// Write `request` and read one response, bounded by `bounds`. The first exchange of the
    /// connection carries its connect and TLS timings; later ones carry none (there was none).
    pub async fn send(&mut self, request: &[u8], bounds: &Bounds) -> Exchange {
        let started = Instant::now();
        let mut ex = Exchange::not_started(&self.endpoint);
        if self.sent == 0 {
            ex.timings.connect_ms = Some(self.connect_ms);
            ex.timings.tls_ms = self.tls_ms;
        }
        self.sent += 1;
        let head_request = request.starts_with(b"HEAD ");
        let deadline = tokio::time::Instant::now() + bounds.total_timeout;
        let mut write_reset = false;
        match timeout_at(deadline, self.stream.write_all(request)).await {
            Ok(Ok(())) => {
                ex.bytes_out = request.len();
                let _ = timeout_at(deadline, self.stream.flush()).await;
            }
            Ok(Err(e)) => write_reset = is_reset(&e),
            Err(_) => {}
        }
        let write_done = Instant::now();
        let mut bytes = Vec::new();
        let mut chunk = vec![0u8; READ_CHUNK];
        let end = loop {
            if bytes.len() >= bounds.max_response_bytes {
                break ConnEnd::SizeBound;
            }
            let room = (bounds.max_response_bytes - bytes.len()).min(READ_CHUNK);
            match timeout_at(deadline, self.stream.read(&mut chunk[..room])).await {
                Err(_) => break ConnEnd::Timeout,
                Ok(Ok(0)) if write_reset => break ConnEnd::Reset,
                Ok(Ok(0)) => break ConnEnd::Fin,
                Ok(Err(e)) if is_reset(&e) => break ConnEnd::Reset,
                Ok(Err(e)) => break ConnEnd::Io(e.to_string()),
                Ok(Ok(n)) => {
                    if ex.timings.first_byte_ms.is_none() {
                        ex.timings.first_byte_ms = Some(ms_since(write_done));
                    }
                    bytes.extend_from_slice(&chunk[..n]);
                    if response_is_complete(&bytes, head_request, &bounds.parse) {
                        break ConnEnd::Complete;
                    }
                }
            }
        };
        ex.bytes_in = bytes.len();
        ex.raw_prefix = bytes[..bytes.len().min(RAW_PREFIX_BYTES)].into();
        ex.response = if end == ConnEnd::Fin {
            parse_response_closed(&bytes, head_request, &bounds.parse)
        } else {
            parse_response(&bytes, head_request, &bounds.parse)
        };
        // A close-delimited body ends with the connection: complete, but not reusable.
        ex.end = if end == ConnEnd::Fin && ex.response.as_ref().is_some_and(|r| r.complete) {
            ConnEnd::Complete
        } else {
            end
        };
        ex.timings.total_ms = ms_since(started);
        self.idle_since = Instant::now();
        ex
    }

    /// Watch the idle connection for up to `max`, reading (at most a few KiB) to see the
    /// server's close as soon as it comes.
    pub async fn watch_idle(&mut self, max: Duration) -> IdleEnd {
        let deadline = tokio::time::Instant::now() + max;
        let mut chunk = [0u8; 4096];
        match timeout_at(deadline, self.stream.read(&mut chunk)).await {
            Err(_) => IdleEnd::Open,
            Ok(Ok(0)) => IdleEnd::Closed {
                after: self.idle_since.elapsed(),
            },
            Ok(Ok(n)) => IdleEnd::Unsolicited {
                prefix: escape_bytes(&chunk[..n.min(RAW_PREFIX_BYTES)]),
            },
            Ok(Err(_)) => IdleEnd::Reset {
                after: self.idle_since.elapsed(),
            },
        }
    }

    /// Write `request` (the bytes of several requests) and read everything that comes back
    /// until the server closes, the size bound or `bounds.total_timeout`: the exchange holds
    /// the first response, the bytes all of them. `IdleEnd::Open` when the connection was still
    /// open at the end, `Closed`/`Reset` when the server ended it.
    pub async fn send_reading_all(
        &mut self,
        request: &[u8],
        bounds: &Bounds,
    ) -> (Exchange, Vec<u8>, IdleEnd) {
        let started = Instant::now();
        let mut ex = Exchange::not_started(&self.endpoint);
        ex.timings.connect_ms = Some(self.connect_ms);
        ex.timings.tls_ms = self.tls_ms;
        self.sent += 1;
        let head_request = request.starts_with(b"HEAD ");
        let deadline = tokio::time::Instant::now() + bounds.total_timeout;
        if let Ok(Ok(())) = timeout_at(deadline, self.stream.write_all(request)).await {
            ex.bytes_out = request.len();
            let _ = timeout_at(deadline, self.stream.flush()).await;
        }
        let write_done = Instant::now();
        let mut bytes = Vec::new();
        let mut chunk = vec![0u8; READ_CHUNK];
        let end = loop {
            if bytes.len() >= bounds.max_response_bytes {
                break IdleEnd::Open;
            }
            match timeout_at(deadline, self.stream.read(&mut chunk)).await {
                Err(_) => break IdleEnd::Open,
                Ok(Ok(0)) => {
                    break IdleEnd::Closed {
                        after: started.elapsed(),
                    }
                }
                Ok(Ok(n)) => {
                    if ex.timings.first_byte_ms.is_none() {
                        ex.timings.first_byte_ms = Some(ms_since(write_done));
                    }
                    bytes.extend_from_slice(&chunk[..n]);
                }
                // rustls reports a TCP close without close_notify as an error: ended either way.
                Ok(Err(_)) => {
                    break IdleEnd::Reset {
                        after: started.elapsed(),
                    }
                }
            }
        };
        ex.bytes_in = bytes.len();
        ex.raw_prefix = bytes[..bytes.len().min(RAW_PREFIX_BYTES)].into();
        let closed = !matches!(end, IdleEnd::Open);
        ex.response = if closed {
            parse_response_closed(&bytes, head_request, &bounds.parse)
        } else {
            parse_response(&bytes, head_request, &bounds.parse)
        };
        let complete = ex.response.as_ref().is_some_and(|r| r.complete);
        ex.end = match (&end, complete) {
            (_, true) => ConnEnd::Complete,
            (IdleEnd::Open, false) => ConnEnd::Timeout,
            (IdleEnd::Reset { .. }, false) => ConnEnd::Reset,
            _ => ConnEnd::Fin,
        };
        ex.timings.total_ms = ms_since(started);
        self.idle_since = Instant::now();
        (ex, bytes, end)
    }

    /// How long the connection has been idle since the last response.
    pub fn idle_for(&self) -> Duration {
        self.idle_since.elapsed()
    }
}

fn is_reset(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
    )
}

fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    fn plain(port: u16) -> Endpoint {
        Endpoint::plain("127.0.0.1", port)
    }

    const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

    /// A server that answers two requests on one connection, then closes.
    #[tokio::test]
    async fn two_requests_on_one_connection_then_the_close_is_seen() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (mut tcp, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            for _ in 0..2 {
                let n = tcp.read(&mut buf).await.unwrap();
                assert!(n > 0);
                tcp.write_all(OK).await.unwrap();
            }
            // Dropping the socket closes it with FIN.
        });
        let bounds = Bounds::default();
        let mut conn = KeepAliveConn::open(&plain(port), &bounds).await.unwrap();
        let req = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        let first = conn.send(req, &bounds).await;
        assert_eq!(first.end, ConnEnd::Complete);
        assert_eq!(first.status(), Some(200));
        assert!(first.timings.connect_ms.is_some());
        let second = conn.send(req, &bounds).await;
        assert_eq!(second.status(), Some(200));
        assert!(second.timings.connect_ms.is_none());
        let idle = conn.watch_idle(Duration::from_secs(5)).await;
        assert!(matches!(idle, IdleEnd::Closed { .. }), "{idle:?}");
        server.await.unwrap();
        let third = conn.send(req, &bounds).await;
        assert_eq!(third.response, None);
        assert!(
            matches!(third.end, ConnEnd::Fin | ConnEnd::Reset),
            "{:?}",
            third.end
        );
    }
}
