//! Linux: netlink sock_diag (falling back to /proc/net/tcp{,6}) for listening sockets,
//! /proc/net/{netstat,snmp} for counters, /proc/sys for queue sysctls, /sys/class/net for
//! interface MTUs, `ip route get` for the route, `iptables-save`/`nft` for firewall rules.

use std::collections::BTreeMap;
use std::io::Read;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

use super::parse::{self, AF_INET, AF_INET6};
use super::{tool, Counters, Interface, ListenSocket, Platform, Route, RuleSet, Unsupported};

pub struct Linux;

/// Bounds of one sock_diag dump: datagrams read and time per read.
const MAX_DIAG_READS: usize = 4096;
const DIAG_READ_TIMEOUT: Duration = Duration::from_secs(2);
/// Largest /proc or /sys file read (a /proc/net/tcp of a very busy host stays well below).
const MAX_FILE: u64 = 16 * 1024 * 1024;

fn read_file(path: &str) -> std::io::Result<String> {
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(MAX_FILE)
        .read_to_string(&mut text)?;
    Ok(text)
}

fn sock_diag(family: u8, port: u16) -> std::io::Result<Vec<ListenSocket>> {
    let socket = Socket::new(
        Domain::from(libc::AF_NETLINK),
        Type::DGRAM,
        Some(Protocol::from(libc::NETLINK_SOCK_DIAG)),
    )?;
    socket.set_read_timeout(Some(DIAG_READ_TIMEOUT))?;
    // An unconnected netlink socket sends to the kernel (port id 0).
    socket.send(&parse::sock_diag_request(family, 1))?;
    let mut sockets = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    for _ in 0..MAX_DIAG_READS {
        let n = (&socket).read(&mut buf)?;
        let chunk = parse::sock_diag_chunk(&buf[..n], port);
        sockets.extend(chunk.sockets);
        if let Some(errno) = chunk.error.filter(|e| *e != 0) {
            return Err(std::io::Error::from_raw_os_error(errno));
        }
        if chunk.done || n == 0 {
            return Ok(sockets);
        }
    }
    Err(std::io::Error::other(format!(
        "the dump did not end within {MAX_DIAG_READS} reads"
    )))
}

impl Platform for Linux {
    fn hostname(&self) -> Option<String> {
        let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
        Some(name.trim().to_string()).filter(|n| !n.is_empty())
    }
    fn listening(&self, port: u16) -> Result<(Vec<ListenSocket>, &'static str), Unsupported> {
        let diag = sock_diag(AF_INET, port).map(|mut v4| {
            // A kernel without IPv6 has no sock_diag handler for it: IPv4 alone then.
            if let Ok(v6) = sock_diag(AF_INET6, port) {
                v4.extend(v6);
            }
            v4
        });
        let diag_err = match diag {
            Ok(s) => return Ok((s, "netlink sock_diag")),
            Err(e) => e,
        };
        let v4 = read_file("/proc/net/tcp").map_err(|e| {
            Unsupported::new(
                "listening sockets",
                format!(
                    "netlink sock_diag failed ({diag_err}) and /proc/net/tcp cannot be read ({e})"
                ),
            )
        })?;
        let mut sockets = parse::proc_net_tcp(&v4, port);
        if let Ok(v6) = read_file("/proc/net/tcp6") {
            sockets.extend(parse::proc_net_tcp(&v6, port));
        }
        Ok((
            sockets,
            "/proc/net/tcp (no backlog limit: netlink sock_diag failed)",
        ))
    }

    fn counters(&self) -> Result<Counters, Unsupported> {
        let mut all = BTreeMap::new();
        for path in ["/proc/net/netstat", "/proc/net/snmp"] {
            let text = read_file(path).map_err(|e| {
                Unsupported::new("TCP counters", format!("cannot read {path}: {e}"))
            })?;
            all.extend(parse::snmp_pairs(&text));
        }
        Ok(Counters::watched(&all))
    }

    fn sysctls(&self) -> Result<BTreeMap<String, u64>, Unsupported> {
        let mut out = BTreeMap::new();
        for name in [
            "net.core.somaxconn",
            "net.ipv4.tcp_max_syn_backlog",
            "net.ipv4.tcp_syncookies",
            "net.ipv4.tcp_abort_on_overflow",
        ] {
            let path = format!("/proc/sys/{}", name.replace('.', "/"));
            if let Some(v) = read_file(&path).ok().and_then(|t| t.trim().parse().ok()) {
                out.insert(name.to_string(), v);
            }
        }
        if out.is_empty() {
            return Err(Unsupported::new(
                "queue sysctls",
                "/proc/sys/net cannot be read",
            ));
        }
        Ok(out)
    }

    fn interfaces(&self) -> Result<Vec<Interface>, Unsupported> {
        let dir = std::fs::read_dir("/sys/class/net").map_err(|e| {
            Unsupported::new("interface MTUs", format!("cannot list /sys/class/net: {e}"))
        })?;
        let mut out: Vec<Interface> = dir
            .filter_map(Result::ok)
            .take(4096)
            .filter_map(|entry| {
                let name = entry.file_name().to_string_lossy().into_owned();
                let mtu = read_file(&format!("/sys/class/net/{name}/mtu"))
                    .ok()?
                    .trim()
                    .parse()
                    .ok()?;
                Some(Interface { name, mtu })
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn route_to(&self, addr: IpAddr) -> Result<Route, Unsupported> {
        let what = format!("the route towards {addr}");
        let text = tool::output(&what, "ip", &["route", "get", &addr.to_string()])?;
        let mut route = parse::ip_route_get(&text).ok_or_else(|| {
            Unsupported::new(
                &what,
                format!("cannot read `ip route get` output: {text:?}"),
            )
        })?;
        route.dev_mtu = route.dev.as_ref().and_then(|dev| {
            // A name from the tool's output becomes a path: keep it to one plain component.
            if dev.contains('/') || dev.starts_with('.') {
                return None;
            }
            read_file(&format!("/sys/class/net/{dev}/mtu"))
                .ok()?
                .trim()
                .parse()
                .ok()
        });
        Ok(route)
    }

    fn capture(
        &self,
        port: u16,
        duration: Duration,
        stop: &AtomicBool,
        ready: &dyn Fn(),
    ) -> Result<super::capture::CaptureResult, Unsupported> {
        const WHAT: &str = "packet capture";
        // ETH_P_ALL, in network byte order as packet(7) wants it.
        let all = i32::from(0x0003u16.to_be());
        let socket =
            Socket::new(Domain::PACKET, Type::RAW, Some(Protocol::from(all))).map_err(|e| {
                let why = if e.kind() == std::io::ErrorKind::PermissionDenied {
                    format!("a packet socket needs root or CAP_NET_RAW ({e})")
                } else {
                    format!("cannot open a packet socket: {e}")
                };
                Unsupported::new(WHAT, why)
            })?;
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .map_err(|e| Unsupported::new(WHAT, e.to_string()))?;
        ready();
        let started = Instant::now();
        let mut cap = super::capture::Capture::new(port);
        // Loopback's MTU is 64 KiB and offloads can hand out larger frames: a short read only
        // loses payload past the request's head, where no marker is.
        let mut buf = vec![0u8; 256 * 1024];
        while started.elapsed() < duration && !stop.load(Ordering::SeqCst) {
            match (&socket).read(&mut buf) {
                Ok(n) => cap.frame(started.elapsed(), &buf[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock
                            | std::io::ErrorKind::TimedOut
                            | std::io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => return Err(Unsupported::new(WHAT, format!("reading frames: {e}"))),
            }
        }
        Ok(cap.finish(started.elapsed().as_secs_f64()))
    }

    fn firewall(&self) -> Result<(Vec<RuleSet>, Vec<Unsupported>), Unsupported> {
        let mut sets = Vec::new();
        let mut missing = Vec::new();
        type Parser = fn(&str) -> Vec<super::FirewallRule>;
        let runs: [(&str, &[&str], Parser); 3] = [
            ("iptables-save", &[], parse::iptables_save),
            ("ip6tables-save", &[], parse::iptables_save),
            ("nft", &["list", "ruleset"], parse::nft_ruleset),
        ];
        for (name, args, parser) in runs {
            match tool::output("firewall rules", name, args) {
                Ok(text) => sets.push(RuleSet {
                    tool: format!("{name} {}", args.join(" ")).trim().to_string(),
                    rules: parser(&text),
                }),
                Err(u) => missing.push(u),
            }
        }
        if sets.is_empty() {
            let why = missing
                .iter()
                .map(|u| u.why.as_str())
                .collect::<Vec<_>>()
                .join("; ");
            return Err(Unsupported::new("firewall rules", why));
        }
        Ok((sets, missing))
    }
}
