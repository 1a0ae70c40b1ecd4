//! Path MTU discovery towards one address: Don't-Fragment probes of chosen sizes, and what the
//! kernel learned from ICMP "fragmentation needed" (IP_MTU).
//!
//! Three kinds of socket, best first: a raw ICMP socket (needs CAP_NET_RAW) and an unprivileged
//! ping socket both send ICMP echo requests, whose replies prove that a size got through; a UDP
//! socket, the fallback, only learns from ICMP (port unreachable proves arrival, "fragmentation
//! needed" the limit) and cannot tell a silent drop from a datagram nobody answers.
//!
//! The search itself ([`Search`]) is a pure state machine so that its decisions are unit-tested;
//! the sockets live in the Linux-only [`Prober`]. Elsewhere [`Prober::open`] says
//! [`PmtuError::Unsupported`]. IPv6 (IPV6_MTU, ICMPv6 "packet too big") is not done yet and says
//! so the same way.

use std::net::IpAddr;
use std::time::Duration;

use serde::Serialize;

/// Bytes of an IPv4 header without options plus an ICMP echo or UDP header: what a probe of
/// `size` bytes carries besides its payload.
pub const IPV4_OVERHEAD: u32 = 28;
/// The smallest packet every IPv4 path must carry whole (RFC 791): the search's floor.
pub const IPV4_MIN_MTU: u32 = 576;
/// Probes one search may send, whatever the answers.
pub const MAX_PROBES: u32 = 16;

/// Why discovery could not run.
#[derive(Debug, thiserror::Error)]
pub enum PmtuError {
    #[error("{what} is not supported here: {why}")]
    Unsupported { what: String, why: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

/// The socket a discovery used, which decides what its silences mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// ICMP echo over a raw socket (root or CAP_NET_RAW).
    RawEcho,
    /// ICMP echo over an unprivileged ping socket (net.ipv4.ping_group_range).
    PingEcho,
    /// UDP datagrams to the target's port: no echo, only ICMP errors speak.
    Udp,
}

impl Method {
    /// Does a probe that got no answer prove the packet was lost? Only an echo is answered
    /// whenever it arrives.
    pub fn silence_is_loss(self) -> bool {
        !matches!(self, Method::Udp)
    }
}

/// What one Don't-Fragment probe got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The packet arrived: an echo reply, or ICMP port unreachable for UDP.
    Passed,
    /// The packet does not fit: `mtu` is the kernel's path MTU after the probe; `from_icmp`
    /// when it fell during the probe (an ICMP "fragmentation needed" came back), false when the
    /// kernel refused to send above an MTU it already knew.
    TooBig { mtu: u32, from_icmp: bool },
    /// Nothing came back within the wait.
    Silent,
    /// The network said no (unreachable, refused) or the socket failed: the search stops.
    Failed(String),
}

/// Whether ICMP "fragmentation needed" came back when it had to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Icmp {
    /// The largest size probed got through: no ICMP was needed.
    NotNeeded,
    /// ICMP came back and the kernel learned this path MTU: discovery works on this path.
    Returned { mtu: u32 },
    /// Larger packets vanished with no ICMP while smaller ones passed: a black hole.
    Silent,
    /// The probes could not tell (nothing answered at any size, or UDP silences).
    Unknown,
}

/// The result of one discovery.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Discovery {
    pub address: IpAddr,
    pub method: Method,
    /// The kernel's path MTU for the address before the first probe (the route's MTU, or one
    /// it learned earlier).
    pub kernel_mtu_before: u32,
    /// The largest size probed (the kernel's MTU, capped by the caller's maximum).
    pub top: u32,
    /// True when the kernel's MTU was above the cap, so `top` is not the route's MTU.
    pub capped: bool,
    /// The largest packet that got through, in bytes (IP header included).
    pub largest_passed: Option<u32>,
    /// The smallest packet that vanished with no answer.
    pub smallest_lost: Option<u32>,
    /// The path MTU found: the largest size that passed when the search closed in on it.
    pub path_mtu: Option<u32>,
    /// True when the search ended between two adjacent sizes (or at `top`).
    pub exact: bool,
    pub icmp: Icmp,
    pub probes: u32,
    /// Why the search stopped early, when it did.
    pub stopped: Option<String>,
}

impl Discovery {
    /// A black hole: large packets lost silently while smaller ones pass.
    pub fn black_hole(&self) -> bool {
        self.icmp == Icmp::Silent
    }
}

/// The search for the largest size that passes, as a pure state machine: `next_size`, send,
/// `record`, until `next_size` says `None`; then `finish`.
#[derive(Debug, Clone)]
pub struct Search {
    top: u32,
    floor: u32,
    silence_is_loss: bool,
    tried: Vec<u32>,
    passed: Option<u32>,
    /// Exclusive upper bound: sizes at or above it are known not to pass.
    ceiling: u32,
    lost: Option<u32>,
    learned: Option<u32>,
    icmp_returned: bool,
    stopped: Option<String>,
    /// The floor goes first: its echo times the path before any size may vanish.
    floor_first: bool,
    /// The smallest lost size was sent once more (see [`Search::recheck`]).
    rechecked: bool,
}

impl Search {
    /// Search sizes from `top` (the kernel's MTU, capped) down to the IPv4 minimum.
    pub fn new(top: u32, silence_is_loss: bool) -> Search {
        let top = top.max(IPV4_OVERHEAD + 1);
        Search {
            top,
            floor: IPV4_MIN_MTU.min(top),
            silence_is_loss,
            tried: Vec::new(),
            passed: None,
            ceiling: top + 1,
            lost: None,
            learned: None,
            icmp_returned: false,
            stopped: None,
            floor_first: false,
            rechecked: false,
        }
    }

    /// Probe the floor before the top: a size every path carries, whose echo tells the caller
    /// how long an answer takes here, so that the silences after it need not wait the longest.
    pub fn floor_first(mut self) -> Search {
        self.floor_first = self.floor < self.top;
        self
    }

    pub fn next_size(&mut self) -> Option<u32> {
        if self.stopped.is_some() {
            return None;
        }
        if self.tried.len() as u32 >= MAX_PROBES {
            self.stopped = Some(format!("the search stopped after {MAX_PROBES} probes"));
            return None;
        }
        let untried = |s: &u32| !self.tried.contains(s);
        let lo = self.passed;
        let candidate = if self.tried.is_empty() && self.floor_first {
            Some(self.floor)
        } else if self.tried.len() == usize::from(self.floor_first) {
            Some(self.top)
        } else if let Some(m) = self
            .learned
            .filter(|&m| m < self.ceiling && lo.is_none_or(|l| m > l))
            .filter(untried)
        {
            // The kernel's learned MTU is the likeliest answer: confirm it first.
            Some(m)
        } else {
            match lo {
                None => Some(self.floor)
                    .filter(|&f| f < self.ceiling)
                    .filter(untried),
                Some(l) if l + 1 < self.ceiling => Some(l + (self.ceiling - l) / 2),
                Some(_) => None,
            }
        };
        if let Some(size) = candidate {
            self.tried.push(size);
        }
        candidate
    }

    pub fn record(&mut self, size: u32, outcome: &Outcome) {
        match outcome {
            Outcome::Passed if size >= self.ceiling => {
                // A size that had vanished came through after all: packets are lost or late
                // on this path, whatever their size, and no limit can be told from it.
                self.passed = Some(self.passed.map_or(size, |p| p.max(size)));
                self.lost = None;
                self.ceiling = self.top + 1;
                self.stopped = Some(format!(
                    "a {size}-byte probe that had got no answer passed when sent again: this path loses or delays packets of any size"
                ));
            }
            Outcome::Passed => {
                self.passed = Some(self.passed.map_or(size, |p| p.max(size)));
            }
            Outcome::TooBig { mtu, from_icmp } => {
                // The kernel's MTU started at `top` or above: one below it was learned since,
                // from an ICMP "fragmentation needed" (for this probe or for other traffic to
                // the address, such as the family's own POSTs).
                self.icmp_returned |= *from_icmp || *mtu < self.top;
                self.ceiling = self.ceiling.min(size);
                if *mtu < size {
                    self.learned = Some(self.learned.map_or(*mtu, |l| l.min(*mtu)));
                    self.ceiling = self.ceiling.min(mtu + 1);
                }
            }
            Outcome::Silent if self.silence_is_loss => {
                self.lost = Some(self.lost.map_or(size, |l| l.min(size)));
                self.ceiling = self.ceiling.min(size);
            }
            Outcome::Silent => {
                self.stopped = Some(format!(
                    "no answer to a {size}-byte datagram, which over UDP proves nothing"
                ));
            }
            Outcome::Failed(why) => self.stopped = Some(why.clone()),
        }
    }

    /// Once `next_size` says `None`: the smallest size that vanished while smaller ones passed,
    /// to be sent once more with the longest wait before it counts as a black hole. A late echo
    /// or one lost packet then undoes the finding instead of making one. At most once.
    pub fn recheck(&mut self) -> Option<u32> {
        if self.rechecked || self.icmp_returned || self.stopped.is_some() {
            return None;
        }
        let lost = self.lost.filter(|&l| self.passed.is_some_and(|p| p < l))?;
        self.rechecked = true;
        self.tried.push(lost);
        Some(lost)
    }

    pub fn finish(self, address: IpAddr, method: Method, kernel_mtu_before: u32) -> Discovery {
        let exact = self.passed.is_some_and(|p| p + 1 >= self.ceiling);
        let icmp = if self.icmp_returned {
            Icmp::Returned {
                mtu: self.learned.unwrap_or(self.ceiling - 1),
            }
        } else if self
            .lost
            .zip(self.passed)
            .is_some_and(|(lost, passed)| lost > passed)
        {
            Icmp::Silent
        } else if self.passed == Some(self.top) {
            Icmp::NotNeeded
        } else {
            Icmp::Unknown
        };
        Discovery {
            address,
            method,
            kernel_mtu_before,
            top: self.top,
            capped: kernel_mtu_before > self.top,
            largest_passed: self.passed,
            smallest_lost: self.lost,
            path_mtu: self.passed.filter(|_| exact),
            exact,
            icmp,
            probes: self.tried.len() as u32,
            stopped: self.stopped,
        }
    }
}

#[cfg(target_os = "linux")]
pub use linux::Prober;

#[cfg(target_os = "linux")]
mod linux {
    use std::io::{self, Read as _};
    use std::net::{IpAddr, SocketAddr, SocketAddrV4};
    use std::os::fd::{AsRawFd, RawFd};
    use std::sync::atomic::{AtomicU16, Ordering};
    use std::time::{Duration, Instant};

    use socket2::{Domain, Protocol, SockAddr, Socket, Type};

    use super::{Method, Outcome, PmtuError, IPV4_OVERHEAD};

    /// Packets read per probe before giving up on finding our reply among others' (a raw socket
    /// sees every echo reply from the address).
    const MAX_READS: usize = 64;
    const RECV_BUF: usize = 65_536 + 64;

    static NEXT_ID: AtomicU16 = AtomicU16::new(0);

    /// One connected socket towards one IPv4 address, with Don't-Fragment set.
    pub struct Prober {
        socket: Socket,
        method: Method,
        id: u16,
        seq: u16,
        buf: Vec<u8>,
    }

    impl Prober {
        /// The best socket available towards `address`; `port` is where UDP probes go when
        /// neither ICMP socket may be opened. Also returns what was missing for a better one.
        pub fn open(address: IpAddr, port: u16) -> Result<(Prober, Vec<String>), PmtuError> {
            let IpAddr::V4(v4) = address else {
                return Err(PmtuError::Unsupported {
                    what: "path MTU discovery over IPv6".into(),
                    why: "only IPv4 is implemented (IPV6_MTU and ICMPv6 packet too big are not)"
                        .into(),
                });
            };
            let mut missing = Vec::new();
            let kinds = [
                (Method::RawEcho, Type::RAW, Protocol::ICMPV4),
                (Method::PingEcho, Type::DGRAM, Protocol::ICMPV4),
                (Method::Udp, Type::DGRAM, Protocol::UDP),
            ];
            for (method, ty, proto) in kinds {
                let socket = match Socket::new(Domain::IPV4, ty, Some(proto)) {
                    Ok(s) => s,
                    Err(e) if method != Method::Udp => {
                        missing.push(match method {
                            Method::RawEcho => format!(
                                "no raw ICMP socket ({e}): needs root or CAP_NET_RAW"
                            ),
                            _ => format!(
                                "no ping socket ({e}): net.ipv4.ping_group_range excludes this group"
                            ),
                        });
                        continue;
                    }
                    Err(e) => return Err(io_err("opening a UDP socket")(e)),
                };
                let port = if method == Method::Udp { port } else { 0 };
                let peer = SockAddr::from(SocketAddr::V4(SocketAddrV4::new(v4, port)));
                set_pmtudisc_do(socket.as_raw_fd())
                    .map_err(io_err("setting IP_MTU_DISCOVER=IP_PMTUDISC_DO"))?;
                socket
                    .connect(&peer)
                    .map_err(io_err(format!("connecting a probe socket to {v4}")))?;
                let id = (std::process::id() as u16)
                    .wrapping_mul(31)
                    .wrapping_add(NEXT_ID.fetch_add(1, Ordering::Relaxed));
                return Ok((
                    Prober {
                        socket,
                        method,
                        id,
                        seq: 0,
                        buf: vec![0; RECV_BUF],
                    },
                    missing,
                ));
            }
            Err(PmtuError::Unsupported {
                what: "path MTU discovery".into(),
                why: missing.join("; "),
            })
        }

        pub fn method(&self) -> Method {
            self.method
        }

        /// The kernel's path MTU towards the address (IP_MTU): the route's, or what it learned
        /// from ICMP "fragmentation needed".
        pub fn kernel_mtu(&self) -> io::Result<u32> {
            get_ip_mtu(self.socket.as_raw_fd())
        }

        /// Send one Don't-Fragment packet of `size` bytes (IP header included) and wait up to
        /// `wait` for what it proves.
        pub fn probe(&mut self, size: u32, wait: Duration) -> Outcome {
            let before = match self.kernel_mtu() {
                Ok(m) => m,
                Err(e) => return Outcome::Failed(format!("reading IP_MTU: {e}")),
            };
            self.seq = self.seq.wrapping_add(1);
            let payload = size.saturating_sub(IPV4_OVERHEAD) as usize;
            let packet = match self.method {
                Method::Udp => vec![0u8; payload],
                Method::RawEcho | Method::PingEcho => echo_request(self.id, self.seq, payload),
            };
            if let Err(e) = self.socket.send(&packet) {
                return match e.raw_os_error() {
                    Some(libc::EMSGSIZE) => Outcome::TooBig {
                        mtu: self.kernel_mtu().unwrap_or(before),
                        from_icmp: false,
                    },
                    _ => Outcome::Failed(format!("sending a {size}-byte probe: {e}")),
                };
            }
            let deadline = Instant::now() + wait;
            for _ in 0..MAX_READS {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                if let Err(e) = self.socket.set_read_timeout(Some(left)) {
                    return Outcome::Failed(format!("setting a read timeout: {e}"));
                }
                match (&self.socket).read(&mut self.buf) {
                    Ok(n) => {
                        if self.is_our_reply(n) {
                            return Outcome::Passed;
                        }
                    }
                    Err(e) => match e.raw_os_error() {
                        Some(libc::EMSGSIZE) => {
                            let mtu = self.kernel_mtu().unwrap_or(before);
                            return Outcome::TooBig {
                                mtu,
                                from_icmp: true,
                            };
                        }
                        // Port unreachable: the datagram reached the host.
                        Some(libc::ECONNREFUSED) if self.method == Method::Udp => {
                            return Outcome::Passed
                        }
                        Some(libc::EAGAIN | libc::ETIMEDOUT) => break,
                        Some(libc::EINTR) => continue,
                        _ => return Outcome::Failed(format!("waiting for an answer: {e}")),
                    },
                }
            }
            // The error may have been consumed elsewhere; the learned MTU still tells.
            match self.kernel_mtu() {
                Ok(after) if after < size => Outcome::TooBig {
                    mtu: after,
                    from_icmp: after < before,
                },
                _ => Outcome::Silent,
            }
        }

        fn is_our_reply(&self, n: usize) -> bool {
            let data = &self.buf[..n.min(self.buf.len())];
            let icmp = match self.method {
                Method::Udp => return false,
                // A raw socket reads the IP header too.
                Method::RawEcho => {
                    let Some(&first) = data.first() else {
                        return false;
                    };
                    let ihl = usize::from(first & 0x0f) * 4;
                    data.get(ihl..).unwrap_or(&[])
                }
                Method::PingEcho => data,
            };
            if icmp.len() < 8 || icmp[0] != 0 || icmp[1] != 0 {
                return false;
            }
            let id = u16::from_be_bytes([icmp[4], icmp[5]]);
            let seq = u16::from_be_bytes([icmp[6], icmp[7]]);
            // A ping socket's identifier is chosen by the kernel and filtered by it.
            seq == self.seq && (self.method == Method::PingEcho || id == self.id)
        }
    }

    /// An ICMP echo request with `payload` bytes of a fixed pattern.
    pub(super) fn echo_request(id: u16, seq: u16, payload: usize) -> Vec<u8> {
        let mut p = Vec::with_capacity(8 + payload);
        p.extend_from_slice(&[8, 0, 0, 0]);
        p.extend_from_slice(&id.to_be_bytes());
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend((0..payload).map(|i| (i % 251) as u8));
        let sum = checksum(&p);
        p[2..4].copy_from_slice(&sum.to_be_bytes());
        p
    }

    /// The Internet checksum (RFC 1071).
    pub(super) fn checksum(bytes: &[u8]) -> u16 {
        let mut sum: u32 = 0;
        for chunk in bytes.chunks(2) {
            let word = match chunk {
                [a, b] => u16::from_be_bytes([*a, *b]),
                [a] => u16::from_be_bytes([*a, 0]),
                _ => 0,
            };
            sum += u32::from(word);
        }
        while sum >> 16 != 0 {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }

    fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> PmtuError {
        let context = context.into();
        move |source| PmtuError::Io { context, source }
    }

    #[expect(
        unsafe_code,
        reason = "IP_MTU_DISCOVER is set with setsockopt(2), which std does not wrap"
    )]
    fn set_pmtudisc_do(fd: RawFd) -> io::Result<()> {
        let value: libc::c_int = libc::IP_PMTUDISC_DO;
        // SAFETY: `fd` is borrowed from a live socket for the call; `value` outlives the call and
        // the length passed is exactly its size.
        let rc = unsafe {
            libc::setsockopt(
                fd,
                libc::IPPROTO_IP,
                libc::IP_MTU_DISCOVER,
                (&value as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    #[expect(
        unsafe_code,
        reason = "IP_MTU is read with getsockopt(2), which std does not wrap"
    )]
    fn get_ip_mtu(fd: RawFd) -> io::Result<u32> {
        let mut value: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: `fd` is borrowed from a live socket for the call; `value` and `len` are valid
        // for writes and `len` holds the size of `value`, which the kernel never exceeds.
        let rc = unsafe {
            libc::getsockopt(
                fd,
                libc::IPPROTO_IP,
                libc::IP_MTU,
                (&mut value as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        u32::try_from(value).map_err(|_| io::Error::other(format!("IP_MTU returned {value}")))
    }
}

/// Off Linux there is no IP_MTU to read: discovery says what is missing.
#[cfg(not(target_os = "linux"))]
pub struct Prober(());

#[cfg(not(target_os = "linux"))]
impl Prober {
    pub fn open(_address: IpAddr, _port: u16) -> Result<(Prober, Vec<String>), PmtuError> {
        Err(PmtuError::Unsupported {
            what: "path MTU discovery".into(),
            why: "it reads the kernel's learned path MTU (IP_MTU), which only Linux offers".into(),
        })
    }

    pub fn method(&self) -> Method {
        Method::Udp
    }

    pub fn kernel_mtu(&self) -> std::io::Result<u32> {
        Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
    }

    pub fn probe(&mut self, _size: u32, _wait: Duration) -> Outcome {
        Outcome::Failed("not supported on this platform".into())
    }
}

/// Run a whole discovery, blocking: for callers outside the probe engine (and tests).
pub fn discover(
    address: IpAddr,
    port: u16,
    max_mtu: u32,
    wait: Duration,
) -> Result<(Discovery, Vec<String>), PmtuError> {
    let (mut prober, missing) = Prober::open(address, port)?;
    let before = prober.kernel_mtu().map_err(|source| PmtuError::Io {
        context: format!("reading the kernel's path MTU (IP_MTU) towards {address}"),
        source,
    })?;
    let mut search = Search::new(before.min(max_mtu), prober.method().silence_is_loss());
    while let Some(size) = search.next_size() {
        let outcome = prober.probe(size, wait);
        search.record(size, &outcome);
    }
    Ok((search.finish(address, prober.method(), before), missing))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Drive a search against a path that carries `mtu` bytes, answering ICMP or not.
    fn run(top: u32, mtu: u32, icmp: bool) -> Discovery {
        let mut s = Search::new(top, true);
        let mut learned = top;
        while let Some(size) = s.next_size() {
            let outcome = if size <= mtu {
                Outcome::Passed
            } else if size > learned {
                Outcome::TooBig {
                    mtu: learned,
                    from_icmp: false,
                }
            } else if icmp {
                learned = mtu;
                Outcome::TooBig {
                    mtu,
                    from_icmp: true,
                }
            } else {
                Outcome::Silent
            };
            s.record(size, &outcome);
        }
        s.finish(IpAddr::from([10, 0, 0, 2]), Method::RawEcho, top)
    }

    #[test]
    fn a_clear_path_passes_at_the_top_in_one_probe() {
        let d = run(1500, 1500, true);
        assert_eq!(d.path_mtu, Some(1500));
        assert_eq!(d.icmp, Icmp::NotNeeded);
        assert_eq!(d.probes, 1);
        assert!(d.exact && !d.black_hole());
    }

    #[test]
    fn icmp_fragmentation_needed_is_confirmed_in_two_probes() {
        let d = run(1500, 1280, true);
        assert_eq!(d.path_mtu, Some(1280));
        assert_eq!(d.icmp, Icmp::Returned { mtu: 1280 });
        assert_eq!(d.probes, 2);
    }

    #[test]
    fn a_black_hole_is_bisected_to_the_byte_within_the_probe_cap() {
        let d = run(1500, 1280, false);
        assert_eq!(d.path_mtu, Some(1280));
        assert_eq!(d.smallest_lost, Some(1281));
        assert_eq!(d.icmp, Icmp::Silent);
        assert!(d.black_hole() && d.exact);
        assert!(d.probes <= MAX_PROBES, "{} probes", d.probes);
    }

    #[test]
    fn nothing_answering_is_unknown_not_a_black_hole() {
        let mut s = Search::new(1500, true);
        while let Some(size) = s.next_size() {
            s.record(size, &Outcome::Silent);
        }
        let d = s.finish(IpAddr::from([10, 0, 0, 2]), Method::RawEcho, 1500);
        assert_eq!(d.probes, 2, "the top, then the floor");
        assert_eq!(d.icmp, Icmp::Unknown);
        assert_eq!(d.path_mtu, None);
    }

    /// Floor first, then the top, then the same bisection: the hole is still found to the byte.
    #[test]
    fn floor_first_times_the_path_before_the_top_and_still_bisects_a_black_hole() {
        let mut s = Search::new(1500, true).floor_first();
        assert_eq!(s.next_size(), Some(IPV4_MIN_MTU));
        s.record(IPV4_MIN_MTU, &Outcome::Passed);
        assert_eq!(s.next_size(), Some(1500));
        s.record(1500, &Outcome::Silent);
        while let Some(size) = s.next_size() {
            let outcome = if size <= 1280 {
                Outcome::Passed
            } else {
                Outcome::Silent
            };
            s.record(size, &outcome);
        }
        // The smallest lost size goes once more; still lost, it is a black hole.
        assert_eq!(s.recheck(), Some(1281));
        s.record(1281, &Outcome::Silent);
        assert_eq!(s.recheck(), None, "at most once");
        let d = s.finish(IpAddr::from([10, 0, 0, 2]), Method::RawEcho, 1500);
        assert!(d.black_hole(), "{d:?}");
        assert_eq!(d.path_mtu, Some(1280));
    }

    /// A size that vanished and then passed on the recheck: the path loses or delays packets,
    /// which is no black hole and no path MTU.
    #[test]
    fn a_recheck_that_passes_undoes_the_black_hole() {
        let mut s = Search::new(1500, true).floor_first();
        while let Some(size) = s.next_size() {
            // One late echo at 1384 on a path that carries 1500.
            let outcome = if size == 1384 || size == 1500 {
                Outcome::Silent
            } else {
                Outcome::Passed
            };
            s.record(size, &outcome);
        }
        let size = s.recheck().expect("a recheck");
        s.record(size, &Outcome::Passed);
        let d = s.finish(IpAddr::from([10, 0, 0, 2]), Method::RawEcho, 1500);
        assert!(!d.black_hole(), "{d:?}");
        assert_eq!(d.icmp, Icmp::Unknown, "{d:?}");
        assert_eq!(d.path_mtu, None, "{d:?}");
        assert!(d
            .stopped
            .is_some_and(|s| s.contains("passed when sent again")));
    }

    /// The kernel learned a smaller MTU after the search started (the family's POSTs met ICMP
    /// "fragmentation needed"): that is ICMP coming back, even though this probe was refused
    /// locally.
    #[test]
    fn an_mtu_learned_since_the_start_counts_as_icmp_returned() {
        let mut s = Search::new(1500, true);
        let size = s.next_size().unwrap();
        s.record(
            size,
            &Outcome::TooBig {
                mtu: 1280,
                from_icmp: false,
            },
        );
        while let Some(size) = s.next_size() {
            s.record(size, &Outcome::Passed);
        }
        assert_eq!(s.recheck(), None);
        let d = s.finish(IpAddr::from([10, 0, 0, 2]), Method::RawEcho, 1500);
        assert_eq!(d.icmp, Icmp::Returned { mtu: 1280 });
        assert_eq!(d.path_mtu, Some(1280));
    }

    #[test]
    fn udp_silence_stops_the_search_without_a_verdict() {
        let mut s = Search::new(1500, Method::Udp.silence_is_loss());
        let size = s.next_size().unwrap();
        s.record(size, &Outcome::Silent);
        assert_eq!(s.next_size(), None);
        let d = s.finish(IpAddr::from([10, 0, 0, 2]), Method::Udp, 1500);
        assert_eq!(d.icmp, Icmp::Unknown);
        assert!(d.stopped.is_some());
    }

    #[test]
    fn a_capped_top_is_reported() {
        let mut s = Search::new(9000, true);
        let size = s.next_size().unwrap();
        assert_eq!(size, 9000);
        s.record(size, &Outcome::Passed);
        assert_eq!(s.next_size(), None);
        let d = s.finish(IpAddr::from([127, 0, 0, 1]), Method::RawEcho, 65_536);
        assert!(d.capped);
        assert_eq!(d.path_mtu, Some(9000));
        assert_eq!(d.icmp, Icmp::NotNeeded);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn echo_requests_carry_a_valid_checksum() {
        let p = linux::echo_request(0x1234, 7, 33);
        assert_eq!(p.len(), 41);
        assert_eq!(&p[..2], &[8, 0]);
        // A packet with its checksum in place sums to zero.
        assert_eq!(linux::checksum(&p), 0);
    }

    /// Loopback carries every size: as root the echo passes at once; unprivileged it falls back
    /// and says what was missing.
    #[cfg(target_os = "linux")]
    #[test]
    fn discovers_loopback_without_loss() {
        let (d, missing) = discover(
            IpAddr::from([127, 0, 0, 1]),
            9,
            9000,
            Duration::from_secs(2),
        )
        .expect("some socket opens");
        assert!(d.kernel_mtu_before >= 9000, "{d:?}");
        assert_eq!(d.top, 9000);
        match d.method {
            Method::RawEcho | Method::PingEcho => {
                assert_eq!(d.path_mtu, Some(9000), "{d:?}");
                assert_eq!(d.icmp, Icmp::NotNeeded);
            }
            Method::Udp => assert!(!missing.is_empty()),
        }
    }
}
