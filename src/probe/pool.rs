//! The `pool` family: one bad backend among several. The listener is asked the same valid GET
//! a bounded number of times, one request after the other so a round-robin listener cycles
//! through its pool evenly, and each pool member is asked it directly a few times. What each
//! answer says is left to the classifier: this module only sends and records.

use serde::{Deserialize, Serialize};

use super::context::{Engine, Planned, Side, Via};
use super::protocol::baseline_request;
use super::{Detail, Family, Observation};
use crate::target::{Role, Target};

/// The listener's variant; members' are `member-N` (1-based, in pool order).
pub const THROUGH_LISTENER: &str = "through-listener";

/// How many requests, at most; the central budget still caps the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolSpec {
    /// Requests to each member directly.
    pub per_member: u32,
    /// Requests through the listener, per member of the pool: a round-robin listener then
    /// sends this many to each.
    pub listener_rounds: u32,
}

impl Default for PoolSpec {
    fn default() -> Self {
        PoolSpec {
            per_member: 3,
            listener_rounds: 6,
        }
    }
}

/// Which member of the pool a request went to directly (`None`: through the listener).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolDetail {
    pub member: Option<usize>,
    /// The member's `host:port`, or the listener's.
    pub address: String,
    /// Members in the pool.
    pub pool_size: usize,
}

pub fn member_variant(i: usize) -> String {
    format!("member-{}", i + 1)
}

/// The pool's members as sides: each as its URL says, never sniffed.
pub fn members(pool: &[Target]) -> Vec<Side> {
    pool.iter().map(Side::of).collect()
}

/// The request of one ask: the baseline GET, through the engine.
fn request(side: &Side, variant: String) -> Planned {
    side.planned(Family::Pool, variant, Via::Raw, baseline_request(side))
}

/// Every request the family sends, in order: each member directly, then the listener in turn.
/// Nothing for fewer than two members.
pub fn plan(listener: Option<&Side>, pool: &[Target], spec: &PoolSpec) -> Vec<Planned> {
    if pool.len() < 2 {
        return Vec::new();
    }
    let mut out = Vec::new();
    for (i, side) in members(pool).iter().enumerate() {
        for _ in 0..spec.per_member {
            out.push(request(side, member_variant(i)));
        }
    }
    if let Some(side) = listener {
        for _ in 0..spec.listener_rounds as usize * pool.len() {
            out.push(request(side, THROUGH_LISTENER.to_string()));
        }
    }
    out
}

/// When the family asks, which the plan's order alone does not say.
pub fn rest(pool: &[Target]) -> Option<String> {
    (pool.len() >= 2).then(|| {
        format!(
            "pool asks each of the {} members directly, then the listener one request at a time, after every other family",
            pool.len()
        )
    })
}

pub async fn run(
    engine: &Engine,
    sides: &[Side],
    pool: &[Target],
    spec: &PoolSpec,
) -> Vec<Observation> {
    if pool.len() < 2 {
        if !pool.is_empty() {
            engine.note("pool: one backend is not a pool; name two or more (--backend repeated)");
        }
        return Vec::new();
    }
    let members = members(pool);
    let listener = sides.iter().find(|s| s.role() == Role::Listener);
    let mut out = Vec::new();
    // Members one after the other, their requests too: a few, and no side is hurried.
    for (i, side) in members.iter().enumerate() {
        for _ in 0..spec.per_member {
            let Some(o) = ask(engine, side, member_variant(i), Some(i), pool.len()).await else {
                return out;
            };
            out.push(o);
        }
    }
    match listener {
        // Sequential on purpose: concurrent requests would let the listener pick members by
        // load rather than in turn, and the failing share would no longer say "one of N".
        Some(side) => {
            for _ in 0..spec.listener_rounds as usize * pool.len() {
                let Some(o) =
                    ask(engine, side, THROUGH_LISTENER.to_string(), None, pool.len()).await
                else {
                    break;
                };
                out.push(o);
            }
        }
        None => engine.note("pool: no listener named; only the members were asked directly"),
    }
    out
}

async fn ask(
    engine: &Engine,
    side: &Side,
    variant: String,
    member: Option<usize>,
    pool_size: usize,
) -> Option<Observation> {
    let planned = request(side, variant);
    let (sent, exchange) = engine.send_planned(&planned, None).await.ok()?;
    Some(engine.observation(
        Family::Pool,
        planned.variant,
        side,
        true,
        &["502.bad-pool-member"],
        sent,
        Some(exchange),
        Detail::Pool(PoolDetail {
            member,
            address: format!("{}:{}", side.target.host, side.target.port),
            pool_size,
        }),
    ))
}
