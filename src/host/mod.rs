//! Facts read on the backend host itself (`lbprobe backend`): the service's listening sockets and
//! accept queue, kernel TCP counters, interface and route MTUs, firewall rules. Platform code sits
//! behind [`Platform`], one impl per OS; elsewhere every fact is an [`Unsupported`] that says
//! what is missing and why. The parsers in [`parse`] are pure, so they are tested from fixtures.

pub mod backend;
pub mod capture;
pub mod cidr;
#[cfg(target_os = "linux")]
mod linux;
pub mod merge;
#[cfg(not(target_os = "linux"))]
mod other;
pub mod parse;
mod tool;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use serde::Serialize;

pub use cidr::Cidr;

/// A fact this platform or this run cannot read, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{what}: {why}")]
pub struct Unsupported {
    pub what: String,
    pub why: String,
}

impl Unsupported {
    pub fn new(what: impl Into<String>, why: impl Into<String>) -> Unsupported {
        Unsupported {
            what: what.into(),
            why: why.into(),
        }
    }
}

/// What the host said, before and after the checks: the classifier's input.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HostReport {
    pub port: u16,
    pub client: Option<IpAddr>,
    pub health_check_ranges: Vec<Cidr>,
    /// Read before the checks.
    pub facts: HostFacts,
    /// The port's listening sockets read again after the checks.
    pub listening_after: Option<Vec<ListenSocket>>,
    pub counters_before: Option<Counters>,
    pub counters_after: Option<Counters>,
    /// How much each watched counter grew while the checks ran.
    pub deltas: BTreeMap<String, u64>,
}

impl HostReport {
    /// Put together two reads of the counters around whatever ran between them.
    pub fn new(
        port: u16,
        facts: HostFacts,
        counters_before: Option<Counters>,
        counters_after: Option<Counters>,
        listening_after: Option<Vec<ListenSocket>>,
    ) -> HostReport {
        let deltas = match (&counters_before, &counters_after) {
            (Some(b), Some(a)) => b.delta(a),
            _ => BTreeMap::new(),
        };
        HostReport {
            port,
            client: None,
            health_check_ranges: Vec::new(),
            facts,
            listening_after,
            counters_before,
            counters_after,
            deltas,
        }
    }
}

/// One listening TCP socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListenSocket {
    pub addr: SocketAddr,
    /// Connections waiting in the accept queue now (`ss -ltn` Recv-Q).
    pub queue: u32,
    /// The accept queue's limit (`ss -ltn` Send-Q: the application's backlog, capped by
    /// `net.core.somaxconn`); unknown when only /proc/net/tcp could be read.
    pub backlog: Option<u32>,
}

impl ListenSocket {
    /// Linux queues up to backlog + 1 connections and drops handshakes beyond: the queue is full
    /// when it holds more than the backlog.
    pub fn full(&self) -> Option<bool> {
        self.backlog.map(|b| self.queue > b)
    }

    pub fn loopback_only(&self) -> bool {
        self.addr.ip().is_loopback()
    }
}

/// Kernel counters by `Group.Name` (`TcpExt.ListenOverflows`, `Tcp.RetransSegs`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Counters {
    pub values: BTreeMap<String, u64>,
}

/// The counters the backend report watches: accept-queue overflows, SYN drops, retransmits.
pub const WATCHED_COUNTERS: &[&str] = &[
    "TcpExt.ListenOverflows",
    "TcpExt.ListenDrops",
    "TcpExt.TCPReqQFullDrop",
    "TcpExt.TCPReqQFullDoCookies",
    "TcpExt.TCPBacklogDrop",
    "TcpExt.TCPSynRetrans",
    "TcpExt.TCPTimeouts",
    "Tcp.RetransSegs",
    "Tcp.AttemptFails",
    "Tcp.EstabResets",
    "Tcp.InErrs",
];

impl Counters {
    pub fn get(&self, name: &str) -> Option<u64> {
        self.values.get(name).copied()
    }

    /// Only the [`WATCHED_COUNTERS`].
    pub fn watched(all: &BTreeMap<String, u64>) -> Counters {
        Counters {
            values: WATCHED_COUNTERS
                .iter()
                .filter_map(|n| all.get(*n).map(|v| (n.to_string(), *v)))
                .collect(),
        }
    }

    /// How much each counter grew from `self` to `after` (a counter reset counts as 0).
    pub fn delta(&self, after: &Counters) -> BTreeMap<String, u64> {
        after
            .values
            .iter()
            .filter_map(|(k, v)| self.get(k).map(|b| (k.clone(), v.saturating_sub(b))))
            .collect()
    }
}

/// A network interface and its MTU.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Interface {
    pub name: String,
    pub mtu: u32,
}

/// The route the kernel picks towards an address (`ip route get`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Route {
    pub destination: IpAddr,
    pub via: Option<IpAddr>,
    pub dev: Option<String>,
    pub src: Option<IpAddr>,
    /// An MTU on the route itself or a learned path MTU in the route cache.
    pub route_mtu: Option<u32>,
    /// The outgoing interface's MTU.
    pub dev_mtu: Option<u32>,
}

impl Route {
    /// What packets towards the destination are limited to.
    pub fn effective_mtu(&self) -> Option<u32> {
        match (self.route_mtu, self.dev_mtu) {
            (Some(r), Some(d)) => Some(r.min(d)),
            (r, d) => r.or(d),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleAction {
    Drop,
    Reject,
    Accept,
    Other,
}

/// One firewall rule, as far as it matters here: which sources it matches and what it does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FirewallRule {
    /// The rule as the tool printed it.
    pub text: String,
    /// `INPUT`, or nft's `table/chain`.
    pub chain: String,
    /// None: any source.
    pub source: Option<Cidr>,
    /// The rule matches every source *but* `source` (`! -s`).
    pub source_negated: bool,
    /// Destination port ranges (inclusive); empty: any port.
    pub dports: Vec<(u16, u16)>,
    pub action: RuleAction,
}

impl FirewallRule {
    /// The rule `text` in `chain` doing `action` to every source and port; the parsers narrow
    /// it as they read its matches.
    pub fn new(text: &str, chain: String, action: RuleAction) -> FirewallRule {
        FirewallRule {
            text: text.to_string(),
            chain,
            source: None,
            source_negated: false,
            dports: Vec::new(),
            action,
        }
    }

    /// The rule discards (drops or rejects) some of `range`'s traffic to `port`.
    pub fn blocks(&self, range: &Cidr, port: u16) -> bool {
        let discards = matches!(self.action, RuleAction::Drop | RuleAction::Reject);
        let port_matches =
            self.dports.is_empty() || self.dports.iter().any(|(a, b)| (*a..=*b).contains(&port));
        let source_matches = match &self.source {
            None => true,
            Some(s) if self.source_negated => !s.contains_range(range),
            Some(s) => s.overlaps(range),
        };
        discards && port_matches && source_matches
    }
}

/// The rules one tool listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleSet {
    /// `iptables-save`, `ip6tables-save`, `nft list ruleset`.
    pub tool: String,
    pub rules: Vec<FirewallRule>,
}

/// What the host says about one service port.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HostFacts {
    /// `std::env::consts::OS`.
    pub platform: String,
    /// Sockets listening on the service port (any address). None: could not be read.
    pub listening: Option<Vec<ListenSocket>>,
    /// Where `listening` came from: `netlink sock_diag` or `/proc/net/tcp`.
    pub listening_source: Option<String>,
    /// `net.core.somaxconn`, `net.ipv4.tcp_max_syn_backlog`, ... as read.
    pub sysctls: BTreeMap<String, u64>,
    pub interfaces: Option<Vec<Interface>>,
    /// Towards `--client`, when given.
    pub route: Option<Route>,
    /// Firewall rules, when a tool could list them.
    pub firewall: Option<Vec<RuleSet>>,
    /// Everything that could not be read, and why.
    pub unsupported: Vec<Unsupported>,
}

/// What one OS can read. Each method says `Unsupported` rather than guessing.
pub trait Platform {
    /// Listening TCP sockets on `port`, and the source they came from.
    fn listening(&self, port: u16) -> Result<(Vec<ListenSocket>, &'static str), Unsupported>;
    fn counters(&self) -> Result<Counters, Unsupported>;
    /// The sysctls that bound accept and SYN queues.
    fn sysctls(&self) -> Result<BTreeMap<String, u64>, Unsupported>;
    fn interfaces(&self) -> Result<Vec<Interface>, Unsupported>;
    fn route_to(&self, addr: IpAddr) -> Result<Route, Unsupported>;
    /// Every firewall rule set a tool on this host can list; Unsupported when none can.
    fn firewall(&self) -> Result<(Vec<RuleSet>, Vec<Unsupported>), Unsupported>;
    /// Watch TCP to and from `port` for `duration` or until `stop` is set; `ready` is called
    /// once the capture socket is open (nothing sent before it is seen).
    fn capture(
        &self,
        port: u16,
        duration: Duration,
        stop: &AtomicBool,
        ready: &dyn Fn(),
    ) -> Result<capture::CaptureResult, Unsupported>;
    /// This host's name, for reports a CI keeps from many runners; `None` when unknown.
    fn hostname(&self) -> Option<String>;
}

/// This host's platform.
pub fn platform() -> impl Platform {
    #[cfg(target_os = "linux")]
    {
        linux::Linux
    }
    #[cfg(not(target_os = "linux"))]
    {
        other::Other
    }
}

/// Read every fact about `port` (and the route towards `client`), collecting what is missing.
pub fn read_facts(p: &impl Platform, port: u16, client: Option<IpAddr>) -> HostFacts {
    fn keep<T>(unsupported: &mut Vec<Unsupported>, r: Result<T, Unsupported>) -> Option<T> {
        r.map_err(|u| unsupported.push(u)).ok()
    }
    let mut unsupported = Vec::new();
    let listening = keep(&mut unsupported, p.listening(port));
    let sysctls = keep(&mut unsupported, p.sysctls()).unwrap_or_default();
    let interfaces = keep(&mut unsupported, p.interfaces());
    let route = client.and_then(|c| keep(&mut unsupported, p.route_to(c)));
    let firewall = keep(&mut unsupported, p.firewall()).map(|(sets, missing)| {
        unsupported.extend(missing);
        sets
    });
    let (listening, listening_source) = match listening {
        Some((l, src)) => (Some(l), Some(src.to_string())),
        None => (None, None),
    };
    HostFacts {
        platform: std::env::consts::OS.to_string(),
        listening,
        listening_source,
        sysctls,
        interfaces,
        route,
        firewall,
        unsupported,
    }
}
