//! Pure parsers of what the backend host's kernel and tools print: /proc/net/tcp{,6},
//! /proc/net/{netstat,snmp}, netlink sock_diag answers, `ip route get`, `iptables-save` and
//! `nft list ruleset`. No I/O here; bad lines are skipped, never a panic.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::{FirewallRule, ListenSocket, Route, RuleAction};

/// TCP_LISTEN in the kernel's state numbering (`st` column 0A).
const TCP_LISTEN: u8 = 10;

/// Listening sockets on `port` from /proc/net/tcp or /proc/net/tcp6. For a listening socket the
/// `rx_queue` column is the accept queue's length; its limit is not in the file.
pub fn proc_net_tcp(text: &str, port: u16) -> Vec<ListenSocket> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let mut cols = line.split_whitespace();
            let _sl = cols.next()?;
            let local = cols.next()?;
            let _remote = cols.next()?;
            let state = u8::from_str_radix(cols.next()?, 16).ok()?;
            let (_tx, rx) = cols.next()?.split_once(':')?;
            if state != TCP_LISTEN {
                return None;
            }
            let addr = proc_socket_addr(local)?;
            (addr.port() == port).then(|| ListenSocket {
                addr,
                queue: u32::from_str_radix(rx, 16).unwrap_or(0),
                backlog: None,
            })
        })
        .collect()
}

/// `0100007F:1F90` or a 32-digit IPv6 form: the address is 32-bit words in the writing host's
/// byte order, the port big hex.
fn proc_socket_addr(text: &str) -> Option<SocketAddr> {
    let (addr, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |i: usize| -> Option<[u8; 4]> {
        let hex = addr.get(i * 8..i * 8 + 8)?;
        Some(u32::from_str_radix(hex, 16).ok()?.to_ne_bytes())
    };
    let ip = match addr.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(0)?)),
        32 => {
            let mut bytes = [0u8; 16];
            for i in 0..4 {
                bytes[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// /proc/net/netstat and /proc/net/snmp: pairs of lines, `Group: names...` then
/// `Group: values...`, into `Group.Name -> value`.
pub fn snmp_pairs(text: &str) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    let mut lines = text.lines();
    while let (Some(names), Some(values)) = (lines.next(), lines.next()) {
        let (Some((group, names)), Some((group2, values))) =
            (names.split_once(':'), values.split_once(':'))
        else {
            continue;
        };
        if group != group2 {
            continue;
        }
        for (name, value) in names.split_whitespace().zip(values.split_whitespace()) {
            // Tcp.MaxConn is -1 ("no limit"): not a counter, skipped.
            if let Ok(v) = value.parse::<u64>() {
                out.insert(format!("{group}.{name}"), v);
            }
        }
    }
    out
}

/// Netlink constants of the sock_diag request (linux/netlink.h, linux/sock_diag.h).
const NLMSG_HDR: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_DUMP: u16 = 0x300;
const INET_DIAG_REQ_LEN: usize = 56;
const INET_DIAG_MSG_LEN: usize = 72;
const IPPROTO_TCP: u8 = 6;
pub const AF_INET: u8 = 2;
pub const AF_INET6: u8 = 10;

/// A sock_diag dump request for the listening TCP sockets of one address family.
pub fn sock_diag_request(family: u8, seq: u32) -> Vec<u8> {
    let len = (NLMSG_HDR + INET_DIAG_REQ_LEN) as u32;
    let mut b = Vec::with_capacity(len as usize);
    b.extend_from_slice(&len.to_ne_bytes());
    b.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    b.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    b.extend_from_slice(&seq.to_ne_bytes());
    b.extend_from_slice(&0u32.to_ne_bytes());
    // inet_diag_req_v2: family, protocol, ext, pad, states, then a zeroed inet_diag_sockid.
    b.extend_from_slice(&[family, IPPROTO_TCP, 0, 0]);
    b.extend_from_slice(&(1u32 << TCP_LISTEN).to_ne_bytes());
    b.resize(len as usize, 0);
    b
}

/// What one read of a sock_diag answer held.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct DiagChunk {
    pub sockets: Vec<ListenSocket>,
    /// The dump ended (NLMSG_DONE).
    pub done: bool,
    /// The kernel answered with an error (errno), e.g. no sock_diag for this family.
    pub error: Option<i32>,
}

/// Parse one datagram of a sock_diag dump: inet_diag_msg records, keeping listening sockets
/// on `port`. For listeners the kernel puts the accept queue in `rqueue` and its limit in
/// `wqueue` (what `ss` shows as Recv-Q and Send-Q).
pub fn sock_diag_chunk(buf: &[u8], port: u16) -> DiagChunk {
    let mut out = DiagChunk::default();
    let u32_at = |b: &[u8], at: usize| -> Option<u32> {
        Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
    };
    let mut off = 0usize;
    while let Some(len) = u32_at(buf, off) {
        let len = len as usize;
        if len < NLMSG_HDR || off + len > buf.len() {
            break;
        }
        let kind = u16::from_ne_bytes([buf[off + 4], buf[off + 5]]);
        let payload = &buf[off + NLMSG_HDR..off + len];
        match kind {
            NLMSG_DONE => {
                out.done = true;
                break;
            }
            NLMSG_ERROR => {
                let errno = u32_at(payload, 0).map(|e| -(e as i32)).unwrap_or(0);
                out.error = Some(errno);
                out.done = true;
                break;
            }
            SOCK_DIAG_BY_FAMILY if payload.len() >= INET_DIAG_MSG_LEN => {
                if let Some(s) = diag_socket(payload) {
                    if s.addr.port() == port {
                        out.sockets.push(s);
                    }
                }
            }
            _ => {}
        }
        // Messages are 4-byte aligned.
        off += (len + 3) & !3;
    }
    out
}

fn diag_socket(p: &[u8]) -> Option<ListenSocket> {
    let (family, state) = (p[0], p[1]);
    if state != TCP_LISTEN {
        return None;
    }
    let port = u16::from_be_bytes([p[4], p[5]]);
    let ip = match family {
        AF_INET => IpAddr::V4(Ipv4Addr::new(p[8], p[9], p[10], p[11])),
        AF_INET6 => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(&p[8..24]).ok()?)),
        _ => return None,
    };
    let rqueue = u32::from_ne_bytes(p[56..60].try_into().ok()?);
    let wqueue = u32::from_ne_bytes(p[60..64].try_into().ok()?);
    Some(ListenSocket {
        addr: SocketAddr::new(ip, port),
        queue: rqueue,
        backlog: Some(wqueue),
    })
}

/// `ip route get ADDR`: `10.0.0.1 via 192.0.2.1 dev eth0 src 192.0.2.2 uid 0 \ cache mtu 1400`.
/// The interface's MTU is not in it (`dev_mtu` is left for the caller).
pub fn ip_route_get(text: &str) -> Option<Route> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut words_iter = words.iter().copied().peekable();
    // The first word is the destination, after an optional route type (`local`, `broadcast`).
    let destination = loop {
        let w = words_iter.next()?;
        if let Ok(ip) = w.parse::<IpAddr>() {
            break ip;
        }
    };
    let after = |key: &str| -> Option<&str> {
        words
            .iter()
            .position(|w| *w == key)
            .and_then(|i| words.get(i + 1).copied())
    };
    Some(Route {
        destination,
        via: after("via").and_then(|w| w.parse().ok()),
        dev: after("dev").map(str::to_string),
        src: after("src").and_then(|w| w.parse().ok()),
        // `mtu lock 1400` when the route's MTU is locked.
        route_mtu: after("mtu").and_then(|w| {
            if w == "lock" {
                after("lock").and_then(|v| v.parse().ok())
            } else {
                w.parse().ok()
            }
        }),
        dev_mtu: None,
    })
}

/// Destination ports of a rule: `--dport 8080`, `--dports 80,8000:9000`, `dport { 80, 443 }`.
fn port_list(text: &str) -> Vec<(u16, u16)> {
    text.split(',')
        .filter_map(|p| {
            let p = p.trim().trim_matches(|c| c == '{' || c == '}').trim();
            match p.split_once([':', '-']) {
                Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
                None => p.parse().ok().map(|n| (n, n)),
            }
        })
        .collect()
}

fn action_of(target: &str) -> RuleAction {
    match target.to_ascii_lowercase().as_str() {
        "drop" => RuleAction::Drop,
        "reject" => RuleAction::Reject,
        "accept" => RuleAction::Accept,
        _ => RuleAction::Other,
    }
}

/// Chains traffic *leaving* the host goes through: their rules cannot drop a health check.
fn outgoing(chain: &str) -> bool {
    let c = chain.to_ascii_lowercase();
    c.ends_with("output") || c.ends_with("postrouting")
}

/// `iptables-save` / `ip6tables-save` output: the `-A CHAIN ...` lines, with their table.
pub fn iptables_save(text: &str) -> Vec<FirewallRule> {
    let mut table = "filter".to_string();
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        if let Some(t) = line.strip_prefix('*') {
            table = t.to_string();
            continue;
        }
        let Some(rest) = line.strip_prefix("-A ") else {
            continue;
        };
        let words: Vec<&str> = rest.split_whitespace().collect();
        let Some(chain) = words.first() else { continue };
        if outgoing(chain) {
            continue;
        }
        let mut rule = FirewallRule::new(line, format!("{table}/{chain}"), RuleAction::Other);
        let mut i = 1;
        while i < words.len() {
            let next = words.get(i + 1).copied().unwrap_or("");
            match words[i] {
                "!" if matches!(next, "-s" | "--source") => {
                    rule.source_negated = true;
                }
                "-s" | "--source" => {
                    rule.source = next.parse().ok();
                    i += 1;
                }
                "--dport" | "--dports" | "--destination-port" | "--destination-ports" => {
                    rule.dports = port_list(next);
                    i += 1;
                }
                "-j" | "--jump" => {
                    rule.action = action_of(next);
                    i += 1;
                }
                _ => {}
            }
            i += 1;
        }
        out.push(rule);
    }
    out
}

/// `nft list ruleset`: rules inside `table FAMILY NAME { chain NAME { ... } }` whose verdict is
/// drop, reject or accept, with `ip saddr`/`ip6 saddr` and `dport` matches.
pub fn nft_ruleset(text: &str) -> Vec<FirewallRule> {
    let mut table = String::new();
    let mut chain = String::new();
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["table", .., name, "{"] => {
                table = name.to_string();
                continue;
            }
            ["chain", name, "{"] => {
                chain = name.to_string();
                continue;
            }
            [] | ["}"] | ["type", ..] | ["policy", ..] => continue,
            _ => {}
        }
        if outgoing(&chain) {
            continue;
        }
        let action = match words.iter().rev().find_map(|w| match *w {
            "drop" | "reject" | "accept" => Some(action_of(w)),
            _ => None,
        }) {
            Some(a) => a,
            None => continue,
        };
        let mut rule = FirewallRule::new(line, format!("{table}/{chain}"), action);
        let mut i = 0;
        while i < words.len() {
            match words[i] {
                "saddr" => {
                    let mut v = words.get(i + 1).copied().unwrap_or("");
                    if v == "!=" {
                        rule.source_negated = true;
                        v = words.get(i + 2).copied().unwrap_or("");
                    }
                    rule.source = v.parse().ok();
                }
                "dport" => {
                    let v = words.get(i + 1).copied().unwrap_or("");
                    if v == "{" {
                        let set: Vec<&str> = words[i + 2..]
                            .iter()
                            .copied()
                            .take_while(|w| *w != "}")
                            .collect();
                        rule.dports = port_list(&set.join(""));
                    } else {
                        rule.dports = port_list(v);
                    }
                }
                _ => {}
            }
            i += 1;
        }
        out.push(rule);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_lists_take_ranges_and_sets() {
        assert_eq!(port_list("8080"), vec![(8080, 8080)]);
        assert_eq!(port_list("80,8000:9000"), vec![(80, 80), (8000, 9000)]);
        assert_eq!(port_list("80,443"), vec![(80, 80), (443, 443)]);
        assert!(port_list("http").is_empty());
    }

    #[test]
    fn sock_diag_chunk_survives_truncation() {
        let req = sock_diag_request(AF_INET, 1);
        assert_eq!(req.len(), 72);
        // A header that claims more bytes than the buffer has: ignored, not a panic.
        let mut buf = vec![0u8; 20];
        buf[0..4].copy_from_slice(&200u32.to_ne_bytes());
        assert_eq!(sock_diag_chunk(&buf, 80), DiagChunk::default());
        assert_eq!(sock_diag_chunk(&[], 80), DiagChunk::default());
    }
}
