//! The keep-alive race (502): the backend's idle keep-alive timeout against the listener's
//! reuse window from the profile, and what a provoked race did.

use crate::probe::keepalive::{
    IdleResult, IdleTimeout, KeepaliveDetail, RaceResult, IDLE_TIMEOUT, RACE,
};
use crate::probe::{Detail, Family, Observation};
use crate::target::Role;

use super::rules::Rule;
use super::{Context, Draft, Verdict, View};

const ID: &str = "502.keepalive-race";

fn idle(o: &Observation) -> Option<&IdleResult> {
    match &o.detail {
        Detail::Keepalive(KeepaliveDetail::Idle(r)) => Some(r),
        _ => None,
    }
}

fn race(o: &Observation) -> Option<&RaceResult> {
    match &o.detail {
        Detail::Keepalive(KeepaliveDetail::Race(r)) => Some(r),
        _ => None,
    }
}

fn secs(ms: f64) -> String {
    let s = ms / 1000.0;
    if s >= 10.0 {
        format!("{s:.0} s")
    } else {
        format!("{s:.2} s")
    }
}

/// A side's idle timeout in words: `closes idle connections after 1.00 s`.
fn described(t: &IdleTimeout) -> String {
    match t {
        IdleTimeout::NoReuse { why } => format!("does not keep connections alive ({why})"),
        IdleTimeout::Eager { after_ms } => {
            format!(
                "closes idle keep-alive connections after {}",
                secs(*after_ms)
            )
        }
        IdleTimeout::Lazy {
            answered_ms,
            refused_ms,
        } => format!(
            "drops a request sent on a connection idle for {} (one idle for {} was answered)",
            secs(*refused_ms),
            secs(*answered_ms)
        ),
        IdleTimeout::BeyondCap { answered_ms } => format!(
            "still answered on a connection idle for {} (the longest gap tried)",
            secs(*answered_ms)
        ),
        IdleTimeout::Unknown { why } => format!("could not be measured ({why})"),
    }
}

pub(crate) const RULE: Rule = Rule {
    name: "keepalive",
    causes: &[ID],
    decide: drafts,
};

fn drafts(view: &View<'_>, ctx: &Context<'_>) -> Vec<Draft> {
    let backend = view.find(Family::Keepalive, IDLE_TIMEOUT, Role::Backend);
    let listener = view.find(Family::Keepalive, IDLE_TIMEOUT, Role::Listener);
    if backend.is_none() && listener.is_none() {
        return Vec::new();
    }
    let cited = ctx.profile.keepalive_window();
    let window_ms = cited.value.as_secs_f64() * 1000.0;
    let window = format!("{} ({})", secs(window_ms), cited.basis);
    let mut draft = match backend.and_then(|o| idle(o).map(|r| (o, r))) {
        None => Draft::new(
            ID,
            Verdict::Inconclusive,
            "the backend's idle keep-alive timeout was not measured: give the scenario a backend target",
        ),
        Some((obs, result)) => {
            let seen = format!("the backend {}", described(&result.timeout));
            let (verdict, reason) = match &result.timeout {
                IdleTimeout::NoReuse { .. } => (
                    Verdict::RuledOut,
                    format!("{seen}: the listener has no idle connection to reuse"),
                ),
                t if t.at_most_ms().is_some_and(|ms| ms < window_ms) => (
                    Verdict::Confirmed,
                    format!(
                        "{seen}, sooner than the listener stops reusing them ({window}): raise \
                         the backend's keep-alive timeout above {} or stop reusing backend \
                         connections at the listener",
                        secs(window_ms)
                    ),
                ),
                t if t.at_least_ms().is_some_and(|ms| ms >= window_ms) => (
                    Verdict::RuledOut,
                    format!(
                        "{seen}: at least as long as the listener reuses connections ({window})"
                    ),
                ),
                IdleTimeout::BeyondCap { .. } => (
                    Verdict::Inconclusive,
                    format!(
                        "{seen}, shorter than the listener's reuse window ({window}): raise \
                         max-wait above it to decide"
                    ),
                ),
                _ => (
                    Verdict::Inconclusive,
                    format!("{seen}; the listener's reuse window is {window}"),
                ),
            };
            Draft::new(ID, verdict, reason).with(
                format!(
                    "straight to the backend, {}, gaps up to {}: it {}",
                    crate::plural::count(result.trials.len(), "trial connection"),
                    secs(result.cap_ms),
                    described(&result.timeout)
                ),
                &[obs],
            )
        }
    };
    if let Some((obs, result)) = listener.and_then(|o| idle(o).map(|r| (o, r))) {
        draft = draft.with(
            format!(
                "the listener {} towards clients; clients that reuse connections longer meet \
                 the same race one hop earlier (as resets, not 502)",
                described(&result.timeout)
            ),
            &[obs],
        );
    }
    let mut reproduced = false;
    if let Some((obs, r)) = view
        .find(Family::Keepalive, RACE, Role::Listener)
        .and_then(|o| race(o).map(|r| (o, r)))
    {
        let stopped = r
            .stopped
            .as_ref()
            .map(|why| format!(" (stopped early: {why})"))
            .unwrap_or_default();
        let text = if r.bad_gateway > 0 {
            format!(
                "reproduced: {} of {} through the listener spaced {} apart got 502{stopped}; \
                 POSTs because proxies often retry a GET that failed on a reused connection \
                 silently",
                r.bad_gateway,
                crate::plural::count(r.sent, "POST"),
                secs(r.spacing_ms)
            )
        } else {
            format!(
                "none of {} through the listener spaced {} apart got 502{stopped}: the \
                 listener may not reuse backend connections (nginx needs `keepalive` in the \
                 upstream block), or it retried them",
                crate::plural::count(r.sent, "POST"),
                secs(r.spacing_ms)
            )
        };
        draft = draft.with(text, &[obs]);
        reproduced = r.bad_gateway > 0;
    }
    draft = draft.cites(
        &cited,
        format!(
            "{} that the listener reuses idle backend connections for {}",
            cited.who,
            secs(window_ms)
        ),
    );
    // The listener's reuse window is its configuration, which no probe here measures: a
    // verdict that rests on lbprobe's own guess of it, with no 502 reproduced, is not one.
    if cited.basis == crate::profile::Basis::Assumed
        && draft.verdict == Verdict::Confirmed
        && !reproduced
    {
        draft.verdict = Verdict::Inconclusive;
        draft.reason = format!(
            "{}; but how long this listener reuses idle backend connections is not known (60 s \
             assumed): declare it (`backend-keepalive-timeout`) or reproduce the race \
             (`scan --reproduce`)",
            draft.reason
        );
    }
    vec![draft]
}
