//! A backend address whose SYNs go nowhere: a socket that listens but never accepts, with its
//! accept queue filled, so that a connect to it times out instead of being refused.
//!
//! Why this simulates a silent drop without root: Linux puts completed handshakes in the
//! listener's accept queue (backlog + 1 entries). Once it is full, the kernel drops further SYNs
//! without answering (`net.ipv4.tcp_abort_on_overflow = 0`, the default, means "drop", not
//! "reset"), and does so before SYN cookies are considered. The client retransmits its SYN and
//! its connect times out — what a DROP firewall rule or a black-holed address does, with no
//! network namespace, iptables or CAP_NET_ADMIN. The queue is filled by connections this type
//! makes itself and holds until dropped.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::LabError;

/// How long a filling connect may take before the queue counts as full. Loopback handshakes
/// take microseconds; only a dropped SYN (retransmitted after 1 s) takes this long.
const FILL_CONNECT_TIMEOUT: Duration = Duration::from_millis(250);
/// Far more than any backlog of 0 needs (Linux queues one connection); a bound, not a target.
const MAX_FILLERS: usize = 16;

/// A listening socket that never accepts, its accept queue full. Dropping it closes the socket
/// and the connections that filled it.
pub struct UnacceptingListener {
    addr: SocketAddr,
    // Held, never read: the socket must stay open for the address to stay silent.
    _socket: Socket,
    fillers: Vec<TcpStream>,
}

impl UnacceptingListener {
    /// Listens on a fresh port of 127.0.0.1 with the smallest backlog, then connects to it until
    /// a connect times out. Blocks for about [`FILL_CONNECT_TIMEOUT`] (the last, dropped SYN).
    pub fn start() -> Result<UnacceptingListener, LabError> {
        let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))
            .map_err(LabError::io("creating the unaccepting listener's socket"))?;
        socket
            .bind(&SockAddr::from(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))))
            .map_err(LabError::io(
                "binding the unaccepting listener to 127.0.0.1",
            ))?;
        socket
            .listen(0)
            .map_err(LabError::io("listening on the unaccepting listener"))?;
        let addr = socket
            .local_addr()
            .map_err(LabError::io("reading the unaccepting listener's address"))?
            .as_socket()
            .ok_or_else(|| LabError::Io {
                context: "reading the unaccepting listener's address".into(),
                source: io::Error::new(io::ErrorKind::InvalidData, "not an IP address"),
            })?;
        let mut fillers = Vec::new();
        for _ in 0..MAX_FILLERS {
            match TcpStream::connect_timeout(&addr, FILL_CONNECT_TIMEOUT) {
                Ok(stream) => fillers.push(stream),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
                    ) =>
                {
                    return Ok(UnacceptingListener {
                        addr,
                        _socket: socket,
                        fillers,
                    });
                }
                Err(e) => {
                    return Err(LabError::Io {
                        context: format!("filling the accept queue of {addr}"),
                        source: e,
                    })
                }
            }
        }
        Err(LabError::Io {
            context: format!("filling the accept queue of {addr}"),
            source: io::Error::other(format!(
                "{MAX_FILLERS} connections did not fill it: this kernel does not drop SYNs to a \
                 full accept queue"
            )),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, e.g. for a listener's `proxy_pass`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// How many connections it took to fill the accept queue.
    pub fn queued(&self) -> usize {
        self.fillers.len()
    }
}
