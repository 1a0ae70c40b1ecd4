//! The one dispatch from a [`ProbeSpec`] to its family, both ways: what the family will send
//! ([`plan`], for `--dry-run`) and sending it ([`run`]), side by side, so that a family added to
//! one is added to the other (both matches are exhaustive) and the plan a person reads is the
//! family's own account of its first requests, built by the code that sends them.

use std::time::Duration;

use crate::profile::Profile;
use crate::target::{Role, Target};

use super::context::{Engine, Planned, Side};
use super::{
    connect, h2, header_size, keepalive, latency, malformed, methods, mtu, partial, pool, protocol,
    rate, response,
};
use super::{Family, Limits, Observation, Plan, ProbeSpec};

/// What one family will send, as far as it can be known before anything is sent.
#[derive(Debug, Clone)]
pub struct FamilyPlan {
    pub family: Family,
    /// The requests it sends first, in order per side.
    pub requests: Vec<Planned>,
    /// With every side answering, the run sends exactly these requests and no others. False
    /// where later requests are chosen from the answers (a bisection, a ramp, idle gaps) or
    /// where a TLS side may negotiate h2 and the checks run again over it.
    pub complete: bool,
    /// How the rest is chosen, and what the family does that carries no request.
    pub notes: Vec<String>,
}

impl FamilyPlan {
    fn complete(family: Family, requests: Vec<Planned>) -> FamilyPlan {
        FamilyPlan {
            family,
            requests,
            complete: true,
            notes: Vec::new(),
        }
    }

    fn adaptive(family: Family, requests: Vec<Planned>, rest: String) -> FamilyPlan {
        FamilyPlan {
            family,
            requests,
            complete: false,
            notes: vec![rest],
        }
    }

    fn note(mut self, note: Option<String>) -> FamilyPlan {
        self.notes.extend(note);
        self
    }
}

/// What every run sends before the families: the baseline to each side, and with the protocol
/// family the cross-protocol requests. The sniffs before it and the ALPN offers after it carry
/// no request of their own.
pub fn opening(sides: &[Side], protocol_family: bool) -> FamilyPlan {
    FamilyPlan::complete(
        Family::Protocol,
        sides
            .iter()
            .flat_map(|side| protocol::plan(side, protocol_family))
            .collect(),
    )
}

/// [`plan`] with the pool, profile, limits and ownership of a run's plan.
pub fn plan_in(run: &Plan, spec: &ProbeSpec, sides: &[Side]) -> FamilyPlan {
    plan(
        spec,
        sides,
        &run.pool,
        &run.profile,
        &run.limits,
        run.owner_confirmed,
    )
}

/// What a family sends to `sides` (the pool's members come from `pool`), with every side
/// answering: the run's own silence and error budgets only ever send less.
pub fn plan(
    spec: &ProbeSpec,
    sides: &[Side],
    pool: &[Target],
    profile: &Profile,
    limits: &Limits,
    owner_confirmed: bool,
) -> FamilyPlan {
    let family = spec.family();
    let each =
        |f: &dyn Fn(&Side) -> Vec<Planned>| -> Vec<Planned> { sides.iter().flat_map(f).collect() };
    let plan = match spec {
        // Its requests are the opening's.
        ProbeSpec::Protocol => FamilyPlan::complete(family, Vec::new()),
        ProbeSpec::Malformed { variants } => {
            let mut plan = FamilyPlan::complete(
                family,
                each(&|side| malformed::plan(side, variants.as_deref(), owner_confirmed)),
            );
            plan.notes = malformed::sequence_notes(variants.as_deref(), owner_confirmed);
            plan
        }
        ProbeSpec::Methods { methods: only } => {
            FamilyPlan::complete(family, each(&|side| methods::plan(side, only.as_deref())))
        }
        ProbeSpec::HeaderSize { .. }
        | ProbeSpec::HeaderLimit { .. }
        | ProbeSpec::UriLimit { .. } => FamilyPlan::adaptive(
            family,
            each(&|side| header_size::plan(side, spec, profile)),
            header_size::rest(spec),
        ),
        ProbeSpec::Partial { max_wait } => {
            FamilyPlan::complete(family, waiting(each(&partial::plan), *max_wait))
        }
        ProbeSpec::Latency { requests, .. } => {
            FamilyPlan::complete(family, each(&|side| latency::plan(side, *requests)))
        }
        ProbeSpec::Connect { attempts } => {
            FamilyPlan::complete(family, Vec::new()).note(Some(connect::rest(*attempts)))
        }
        ProbeSpec::Response => FamilyPlan::complete(family, each(&response::plan)),
        ProbeSpec::Rate(spec) => FamilyPlan::adaptive(
            family,
            rate::plan(sides, spec),
            rate::rest(
                spec,
                limits.max_rate,
                sides.iter().any(|s| s.role() == Role::Backend),
            ),
        ),
        // With discovery, a POST unanswered at first may be sent again: chosen from the answers.
        ProbeSpec::Mtu(spec) => match mtu::rest(spec) {
            Some(rest) => FamilyPlan::adaptive(family, each(&|side| mtu::plan(side, spec)), rest),
            None => FamilyPlan::complete(family, each(&|side| mtu::plan(side, spec))),
        },
        ProbeSpec::Keepalive {
            max_wait,
            reproduce,
        } => FamilyPlan::adaptive(
            family,
            waiting(each(&|side| keepalive::plan(side, *reproduce)), *max_wait),
            keepalive::rest(*max_wait),
        ),
        ProbeSpec::Pool(spec) => {
            let listener = sides.iter().find(|s| s.role() == Role::Listener);
            FamilyPlan::complete(family, pool::plan(listener, pool, spec)).note(pool::rest(pool))
        }
    };
    // Where a TLS side picks h2, these families run again over it: requests no plan can list.
    if h2::FAMILIES.contains(&family) && sides.iter().any(Side::is_tls) {
        FamilyPlan {
            complete: false,
            ..plan
        }
    } else {
        plan
    }
}

/// Requests a family waits on for up to `max_wait` (beyond the request timeout): an incomplete
/// request, an idle keep-alive connection.
fn waiting(requests: Vec<Planned>, max_wait: Duration) -> Vec<Planned> {
    requests
        .into_iter()
        .map(|p| p.waiting(Some(max_wait)))
        .collect()
}

/// Run a family against `sides` (the pool's members come from `pool`).
pub async fn run(
    spec: &ProbeSpec,
    engine: &Engine,
    sides: &[Side],
    pool: &[Target],
) -> Vec<Observation> {
    match spec {
        // The opening sent its requests.
        ProbeSpec::Protocol => Vec::new(),
        ProbeSpec::Malformed { variants } => {
            malformed::run(engine, sides, variants.as_deref()).await
        }
        ProbeSpec::Methods { methods: list } => methods::run(engine, sides, list.as_deref()).await,
        ProbeSpec::HeaderSize { .. }
        | ProbeSpec::HeaderLimit { .. }
        | ProbeSpec::UriLimit { .. } => header_size::run(engine, sides, spec).await,
        ProbeSpec::Partial { max_wait } => partial::run(engine, sides, *max_wait).await,
        ProbeSpec::Latency {
            requests,
            client_timeout,
        } => latency::run(engine, sides, *requests, *client_timeout).await,
        ProbeSpec::Connect { attempts } => connect::run(engine, sides, *attempts).await,
        ProbeSpec::Response => response::run(engine, sides).await,
        ProbeSpec::Rate(spec) => rate::run(engine, sides, spec).await,
        ProbeSpec::Mtu(spec) => mtu::run(engine, sides, spec).await,
        ProbeSpec::Keepalive {
            max_wait,
            reproduce,
        } => keepalive::run(engine, sides, *max_wait, *reproduce).await,
        ProbeSpec::Pool(spec) => pool::run(engine, sides, pool, spec).await,
    }
}
