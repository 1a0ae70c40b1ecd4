//! Which probes reached the backend: TCP segments to and from the service port, decoded from
//! link-layer frames (Ethernet, as Linux hands them out for loopback and Ethernet devices), the
//! run's `X-Lbprobe-Id` markers found in the request bytes, and TCP events (SYN MSS, resets,
//! retransmissions). Pure: frames in, [`CaptureResult`] out; the socket lives in the platform.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use serde::Serialize;

/// One TCP segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub seq: u32,
    pub flags: u8,
    /// The MSS option of a SYN.
    pub mss: Option<u16>,
    pub payload: Vec<u8>,
}

pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const ACK: u8 = 0x10;

/// Decode an Ethernet frame carrying IPv4 or IPv6 and TCP; None for anything else or a frame
/// cut short.
pub fn parse_frame(frame: &[u8]) -> Option<Segment> {
    let ethertype = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
    let ip = frame.get(14..)?;
    let (src_ip, dst_ip, tcp) = match ethertype {
        0x0800 => {
            let ihl = usize::from(ip.first()? & 0x0f) * 4;
            if ip.first()? >> 4 != 4 || ihl < 20 || *ip.get(9)? != 6 {
                return None;
            }
            let total = usize::from(u16::from_be_bytes([*ip.get(2)?, *ip.get(3)?]));
            let src = Ipv4Addr::from(<[u8; 4]>::try_from(ip.get(12..16)?).ok()?);
            let dst = Ipv4Addr::from(<[u8; 4]>::try_from(ip.get(16..20)?).ok()?);
            // Frames may carry padding beyond the IP packet: cut at the IP length.
            let end = total.min(ip.len());
            (IpAddr::V4(src), IpAddr::V4(dst), ip.get(ihl..end)?)
        }
        0x86dd => {
            // Extension headers are not followed: TCP directly after the fixed header only.
            if ip.first()? >> 4 != 6 || *ip.get(6)? != 6 {
                return None;
            }
            let len = usize::from(u16::from_be_bytes([*ip.get(4)?, *ip.get(5)?]));
            let src = Ipv6Addr::from(<[u8; 16]>::try_from(ip.get(8..24)?).ok()?);
            let dst = Ipv6Addr::from(<[u8; 16]>::try_from(ip.get(24..40)?).ok()?);
            let end = (40 + len).min(ip.len());
            (IpAddr::V6(src), IpAddr::V6(dst), ip.get(40..end)?)
        }
        _ => return None,
    };
    let sport = u16::from_be_bytes([*tcp.first()?, *tcp.get(1)?]);
    let dport = u16::from_be_bytes([*tcp.get(2)?, *tcp.get(3)?]);
    let seq = u32::from_be_bytes(tcp.get(4..8)?.try_into().ok()?);
    let offset = usize::from(tcp.get(12)? >> 4) * 4;
    let flags = *tcp.get(13)?;
    if offset < 20 {
        return None;
    }
    let options = tcp.get(20..offset)?;
    let mss = if flags & SYN != 0 {
        mss_option(options)
    } else {
        None
    };
    Some(Segment {
        src: SocketAddr::new(src_ip, sport),
        dst: SocketAddr::new(dst_ip, dport),
        seq,
        flags,
        mss,
        payload: tcp.get(offset..)?.to_vec(),
    })
}

fn mss_option(mut opts: &[u8]) -> Option<u16> {
    while let Some(&kind) = opts.first() {
        match kind {
            0 => return None,
            1 => opts = &opts[1..],
            _ => {
                let len = usize::from(*opts.get(1)?);
                if len < 2 {
                    return None;
                }
                if kind == 2 && len == 4 {
                    return Some(u16::from_be_bytes([*opts.get(2)?, *opts.get(3)?]));
                }
                opts = opts.get(len..)?;
            }
        }
    }
    None
}

/// A marker seen in a request to the service port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MarkerSeen {
    /// `<run>-<n>`.
    pub marker: String,
    /// The connection it came on (the listener's side of it, seen from the backend).
    pub from: SocketAddr,
    /// Bytes the client sent on that connection.
    pub bytes: u64,
}

/// What a capture on the service port saw.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CaptureResult {
    pub port: u16,
    pub seconds: f64,
    /// Frames decoded as TCP to or from the port (loopback duplicates removed).
    pub segments: u64,
    pub connections: u64,
    /// MSS of the SYNs to the port, and how many carried each.
    pub syn_mss: BTreeMap<u16, u64>,
    pub resets_from_service: u64,
    pub resets_to_service: u64,
    /// Data segments seen again with the same sequence number in the same direction.
    pub retransmissions: u64,
    pub markers: Vec<MarkerSeen>,
    /// True when a bound (connections, bytes kept per connection) cut the capture short.
    pub truncated: bool,
}

/// Connections tracked at most; beyond it new connections are counted but not searched.
const MAX_FLOWS: usize = 4096;
/// Request bytes kept per connection while its marker is looked for: past the longest request
/// line the probes send (128 KiB URIs) and their first header.
const MAX_KEEP: usize = 160 * 1024;
const MARKER_PREFIX: &[u8] = b"\nX-Lbprobe-Id: ";
/// Loopback hands every frame out twice (outgoing, incoming) back to back: an identical frame
/// this soon after is that copy, never a retransmission (the shortest RTO is 200 ms).
const DUPLICATE_WINDOW: Duration = Duration::from_millis(50);

#[derive(Default)]
struct Flow {
    kept: Vec<u8>,
    bytes: u64,
    marker: Option<String>,
    seen_seqs: Vec<u32>,
}

/// Feeds segments in and keeps the bounded state the result needs.
pub struct Capture {
    port: u16,
    result: CaptureResult,
    flows: HashMap<SocketAddr, Flow>,
    recent: VecDeque<(Duration, Vec<u8>)>,
    order: Vec<SocketAddr>,
    /// Markers of connections whose client port was reused by a later connection.
    done: Vec<MarkerSeen>,
}

impl Capture {
    pub fn new(port: u16) -> Capture {
        Capture {
            port,
            result: CaptureResult {
                port,
                ..CaptureResult::default()
            },
            flows: HashMap::new(),
            recent: VecDeque::new(),
            order: Vec::new(),
            done: Vec::new(),
        }
    }

    /// One frame, seen at `at` since the capture started.
    pub fn frame(&mut self, at: Duration, frame: &[u8]) {
        while self
            .recent
            .front()
            .is_some_and(|(t, _)| at.saturating_sub(*t) > DUPLICATE_WINDOW)
        {
            self.recent.pop_front();
        }
        let Some(seg) = parse_frame(frame) else {
            return;
        };
        if seg.src.port() != self.port && seg.dst.port() != self.port {
            return;
        }
        if self.recent.iter().any(|(_, f)| f == frame) {
            return;
        }
        if self.recent.len() >= 64 {
            self.recent.pop_front();
        }
        self.recent.push_back((at, frame.to_vec()));
        self.segment(seg);
    }

    fn segment(&mut self, seg: Segment) {
        let r = &mut self.result;
        r.segments += 1;
        let to_service = seg.dst.port() == self.port;
        if seg.flags & RST != 0 {
            if to_service {
                r.resets_to_service += 1;
            } else {
                r.resets_from_service += 1;
            }
        }
        if to_service && seg.flags & SYN != 0 && seg.flags & ACK == 0 {
            r.connections += 1;
            if let Some(mss) = seg.mss {
                *r.syn_mss.entry(mss).or_default() += 1;
            }
        }
        let client = if to_service { seg.src } else { seg.dst };
        if to_service && seg.flags & SYN != 0 && seg.flags & ACK == 0 {
            // A new connection from a reused client port: the old one's marker is kept apart.
            if let Some(old) = self.flows.remove(&client) {
                if let Some(marker) = old.marker {
                    self.done.push(MarkerSeen {
                        marker,
                        from: client,
                        bytes: old.bytes,
                    });
                }
                self.order.retain(|c| *c != client);
            }
        }
        if !self.flows.contains_key(&client) {
            if self.flows.len() >= MAX_FLOWS {
                r.truncated = true;
                return;
            }
            self.flows.insert(client, Flow::default());
            self.order.push(client);
        }
        let Some(flow) = self.flows.get_mut(&client) else {
            return;
        };
        if seg.payload.is_empty() {
            return;
        }
        // A sequence number tagged with the direction: a repeat is a retransmission.
        let tagged = seg.seq ^ if to_service { 0 } else { 0x8000_0000 };
        if flow.seen_seqs.contains(&tagged) {
            r.retransmissions += 1;
            return;
        }
        if flow.seen_seqs.len() < 4096 {
            flow.seen_seqs.push(tagged);
        }
        if !to_service {
            return;
        }
        flow.bytes += seg.payload.len() as u64;
        if flow.marker.is_some() {
            return;
        }
        let room = MAX_KEEP.saturating_sub(flow.kept.len());
        if room < seg.payload.len() {
            r.truncated = true;
        }
        flow.kept
            .extend_from_slice(&seg.payload[..seg.payload.len().min(room)]);
        if let Some(m) = find_marker(&flow.kept) {
            flow.marker = Some(m);
            flow.kept = Vec::new();
        }
    }

    pub fn finish(mut self, seconds: f64) -> CaptureResult {
        self.result.seconds = seconds;
        self.result.markers = std::mem::take(&mut self.done);
        for client in &self.order {
            if let Some(flow) = self.flows.get(client) {
                if let Some(m) = &flow.marker {
                    self.result.markers.push(MarkerSeen {
                        marker: m.clone(),
                        from: *client,
                        bytes: flow.bytes,
                    });
                }
            }
        }
        self.result
    }
}

/// The run's marker in a request: the value of the first complete `X-Lbprobe-Id` line within
/// the header block, or the `lbprobe-id=` query parameter of its request line.
pub fn find_marker(bytes: &[u8]) -> Option<String> {
    marker_header(bytes).or_else(|| crate::transport::marker::find_query_marker(bytes))
}

fn marker_header(bytes: &[u8]) -> Option<String> {
    let at = bytes
        .windows(MARKER_PREFIX.len())
        .position(|w| w.eq_ignore_ascii_case(MARKER_PREFIX))?;
    let head_end = crate::bytes::find(bytes, b"\r\n\r\n").unwrap_or(usize::MAX);
    if at > head_end {
        return None;
    }
    let value = &bytes[at + MARKER_PREFIX.len()..];
    let end = value.iter().position(|&b| b == b'\r' || b == b'\n')?;
    let value = std::str::from_utf8(&value[..end]).ok()?.trim();
    let valid = !value.is_empty()
        && value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
    valid.then(|| value.to_string())
}
