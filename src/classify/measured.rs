//! The numbers a run measured, as data for metrics and dashboards: each side's limits and
//! timeouts as its own answers showed them, and the path MTU. Only what this run measured:
//! nothing documented, declared or assumed, and no bound where the search found no edge.

use crate::probe::keepalive::{IdleTimeout, KeepaliveDetail};
use crate::probe::{Detail, Family, Observation};
use crate::target::Role;

use super::View;

/// One measured number of one side.
#[derive(Debug, Clone, PartialEq)]
pub struct Measure {
    /// What it is a number of: a limit family (`header-size`, `uri-limit`), or a timeout
    /// (`response`, `keepalive-idle`, `incomplete-request`).
    pub kind: &'static str,
    pub side: Role,
    /// Bytes for limits and MTUs, seconds for timeouts.
    pub value: f64,
}

/// Everything a run measured, by kind.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Measured {
    /// The largest size each side accepted where a larger one was refused.
    pub limits: Vec<Measure>,
    pub timeouts: Vec<Measure>,
    /// The path MTU towards each side (kind `path-mtu`).
    pub path_mtu: Vec<Measure>,
}

/// What `observations` measured.
pub fn measured(observations: &[Observation]) -> Measured {
    let mut m = Measured::default();
    for o in observations {
        match &o.detail {
            // A limit is measured where the search found both sides of it.
            Detail::Limit(s) => {
                if let (Some(accepted), Some(_)) = (s.largest_accepted, s.smallest_rejected) {
                    m.limits.push(Measure {
                        kind: o.family.as_str(),
                        side: o.role,
                        value: accepted as f64,
                    });
                }
            }
            Detail::Keepalive(KeepaliveDetail::Idle(idle)) => {
                if let IdleTimeout::Eager { after_ms } = idle.timeout {
                    m.timeouts.push(Measure {
                        kind: "keepalive-idle",
                        side: o.role,
                        value: after_ms / 1000.0,
                    });
                }
            }
            Detail::Partial(p) if o.family == Family::Partial && p.gave_up() => {
                // The shortest wait of the side over the incomplete requests: its own timer.
                let value = p.waited_ms / 1000.0;
                match m
                    .timeouts
                    .iter_mut()
                    .find(|t| t.kind == "incomplete-request" && t.side == o.role)
                {
                    Some(t) => t.value = t.value.min(value),
                    None => m.timeouts.push(Measure {
                        kind: "incomplete-request",
                        side: o.role,
                        value,
                    }),
                }
            }
            Detail::Mtu(r) => {
                if let Some(mtu) = r.discovery.as_ref().and_then(|d| d.path_mtu) {
                    m.path_mtu.push(Measure {
                        kind: "path-mtu",
                        side: o.role,
                        value: f64::from(mtu),
                    });
                }
            }
            _ => {}
        }
    }
    // The listener's gateway timeout: several of its own 504s (or 502s) at one moment.
    let view = View {
        observations,
        reached: None,
    };
    if let Some(t) = [504, 502]
        .into_iter()
        .find_map(|code| super::timing::listener_timeout(&view, code))
    {
        m.timeouts.push(Measure {
            kind: "response",
            side: Role::Listener,
            value: t.0 / 1000.0,
        });
    }
    m
}
