//! One bad backend in a pool (502): which member's direct answers explain the share of the
//! listener's answers that fail.

use std::collections::BTreeMap;

use crate::probe::pool::PoolDetail;
use crate::probe::{Detail, Family, Observation};
use crate::transport::Exchange;

use super::rules::Rule;
use super::{Context, Draft, Verdict, View};

const ID: &str = "502.bad-pool-member";

fn detail(o: &Observation) -> Option<&PoolDetail> {
    match &o.detail {
        Detail::Pool(d) => Some(d),
        _ => None,
    }
}

/// Why a direct answer is not one a listener could pass on, or `None` when it is.
pub(crate) fn failure(exchange: Option<&Exchange>) -> Option<String> {
    let Some(ex) = exchange else {
        return Some("not sent".into());
    };
    match &ex.response {
        None => Some(super::describe(Some(ex))),
        Some(r) if !r.problems.is_empty() => {
            Some(format!("a malformed response ({})", r.problems.join("; ")))
        }
        Some(r) if r.status >= 500 => Some(format!("{} {}", r.status, r.reason)),
        Some(_) => None,
    }
}

/// One pool member as asked directly.
pub(crate) struct Member<'a> {
    pub address: String,
    pub asked: usize,
    /// Why each failed answer failed, in order.
    pub failures: Vec<String>,
    pub observations: Vec<&'a Observation>,
}

impl Member<'_> {
    /// `member 2 of 3 (127.0.0.1:9002) directly: 3 of 3 answers failed: 502 Bad Gateway`.
    pub(crate) fn describe(&self, i: usize, size: usize) -> String {
        if self.failures.is_empty() {
            format!(
                "member {} of {size} ({}) directly: {}, every answer usable",
                i + 1,
                self.address,
                crate::plural::count(self.asked, "valid GET")
            )
        } else {
            format!(
                "member {} of {size} ({}) directly: {} of {} failed: {}",
                i + 1,
                self.address,
                self.failures.len(),
                crate::plural::count(self.asked, "answer"),
                self.failures[0]
            )
        }
    }
}

/// What the pool family saw: the pool's size, each member asked directly (by index), and the
/// requests through the listener. `None` when the family did not run.
pub(crate) struct Seen<'a> {
    pub size: usize,
    pub members: BTreeMap<usize, Member<'a>>,
    pub listener: Vec<&'a Observation>,
}

pub(crate) fn seen<'a>(view: &View<'a>) -> Option<Seen<'a>> {
    let pool: Vec<(&Observation, &PoolDetail)> = view
        .observations
        .iter()
        .filter(|o| o.family == Family::Pool)
        .filter_map(|o| detail(o).map(|d| (o, d)))
        .collect();
    let size = pool.first().map(|(_, d)| d.pool_size)?;
    let mut members: BTreeMap<usize, Member<'_>> = BTreeMap::new();
    let mut listener = Vec::new();
    for (o, d) in pool {
        match d.member {
            Some(i) => {
                let m = members.entry(i).or_insert_with(|| Member {
                    address: d.address.clone(),
                    asked: 0,
                    failures: Vec::new(),
                    observations: Vec::new(),
                });
                m.asked += 1;
                m.failures.extend(failure(o.exchange.as_ref()));
                m.observations.push(o);
            }
            None => listener.push(o),
        }
    }
    Some(Seen {
        size,
        members,
        listener,
    })
}

pub(crate) const RULE: Rule = Rule {
    name: "pool",
    causes: &[ID],
    decide: drafts,
};

fn drafts(view: &View<'_>, _ctx: &Context<'_>) -> Vec<Draft> {
    let Some(Seen {
        size,
        members,
        listener: listener_obs,
    }) = seen(view)
    else {
        return Vec::new();
    };
    let asked = listener_obs.len();
    let bad_gateway = listener_obs
        .iter()
        .filter(|o| o.exchange.as_ref().and_then(|e| e.status()) == Some(502))
        .count();
    let failing: Vec<(&usize, &Member<'_>)> = members
        .iter()
        .filter(|(_, m)| !m.failures.is_empty())
        .collect();
    let share = |k: usize, n: usize| 100.0 * k as f64 / n.max(1) as f64;
    let listener_text = format!(
        "through the listener, {asked} valid GETs one after the other: {bad_gateway} answered \
         502 ({:.0} %)",
        share(bad_gateway, asked)
    );
    let (verdict, reason) = if asked == 0 {
        (
            Verdict::Inconclusive,
            "no request went through the listener: name the listener to compare".to_string(),
        )
    } else if bad_gateway == 0 {
        (
            Verdict::RuledOut,
            format!(
                "the listener answered none of {} with 502",
                crate::plural::count(asked, "request")
            ),
        )
    } else if failing.is_empty() {
        (
            Verdict::Inconclusive,
            format!(
                "the listener answered 502 to {bad_gateway} of {}, but every one of \
                 the {size} members answered well directly: the failure is between the listener \
                 and the members (see 502.keepalive-race) or is not in this pool",
                crate::plural::count(asked, "request")
            ),
        )
    } else if failing.len() == members.len() {
        (
            Verdict::RuledOut,
            format!(
                "every one of the {size} members fails directly: not one bad member, the whole \
                 pool (see 502.all-backends-unhealthy and the members' own causes)"
            ),
        )
    } else {
        let names: Vec<String> = failing
            .iter()
            .map(|(i, m)| format!("member {} of {size} ({})", *i + 1, m.address))
            .collect();
        let (observed, expected) = (share(bad_gateway, asked), share(failing.len(), size));
        // A listener with passive health checks rests a member after a failure, so it gets
        // fewer requests than its turn: still this member, at a lower share.
        let resting = if observed < expected / 2.0 {
            "; fewer than its turn: the listener seems to rest it after failures (passive \
             health checks), so clients see bursts of 502 rather than a steady share"
        } else {
            ""
        };
        (
            Verdict::Confirmed,
            format!(
                "{} fails when asked directly; the listener answered 502 to {bad_gateway} of \
                 {asked} requests ({observed:.0} %), against the share a round-robin listener \
                 sends it ({} of {size}: {expected:.0} %){resting}: take it out of the pool and \
                 fix it",
                names.join(" and "),
                failing.len(),
            ),
        )
    };
    let mut draft = Draft::new(ID, verdict, reason);
    for (i, m) in &members {
        draft = draft.with(m.describe(*i, size), &m.observations);
    }
    if asked > 0 {
        draft = draft.with(listener_text, &listener_obs);
    }
    vec![draft]
}
