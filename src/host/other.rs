//! Platforms other than Linux: every fact says it is not available, and why.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::{Counters, Interface, ListenSocket, Platform, Route, RuleSet, Unsupported};

pub struct Other;

fn unsupported(what: &str) -> Unsupported {
    Unsupported::new(
        what,
        format!(
            "lbprobe reads it from Linux's /proc, /sys and netlink; {} has none of them",
            std::env::consts::OS
        ),
    )
}

impl Platform for Other {
    fn hostname(&self) -> Option<String> {
        // No portable call without unsafe code; the shells of the other platforms export it.
        ["HOSTNAME", "COMPUTERNAME"]
            .iter()
            .find_map(|v| std::env::var(v).ok())
            .filter(|n| !n.is_empty())
    }
    fn listening(&self, _port: u16) -> Result<(Vec<ListenSocket>, &'static str), Unsupported> {
        Err(unsupported("listening sockets and their accept queues"))
    }
    fn counters(&self) -> Result<Counters, Unsupported> {
        Err(unsupported(
            "TCP counters (ListenOverflows, ListenDrops, retransmits)",
        ))
    }
    fn sysctls(&self) -> Result<BTreeMap<String, u64>, Unsupported> {
        Err(unsupported("somaxconn and the SYN backlog"))
    }
    fn interfaces(&self) -> Result<Vec<Interface>, Unsupported> {
        Err(unsupported("interface MTUs"))
    }
    fn route_to(&self, _addr: IpAddr) -> Result<Route, Unsupported> {
        Err(unsupported("the route MTU towards the client"))
    }
    fn capture(
        &self,
        _port: u16,
        _duration: std::time::Duration,
        _stop: &std::sync::atomic::AtomicBool,
        _ready: &dyn Fn(),
    ) -> Result<super::capture::CaptureResult, Unsupported> {
        Err(unsupported("packet capture"))
    }
    fn firewall(&self) -> Result<(Vec<RuleSet>, Vec<Unsupported>), Unsupported> {
        Err(unsupported("firewall rules"))
    }
}
