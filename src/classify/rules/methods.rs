//! The `methods` family's causes: the listener refusing TRACE, the backend refusing a method.

use crate::probe::{Family, Observation};

use super::super::{describe, Context, Draft, Origin, Pair, Verdict, View};
use super::Rule;

const TRACE: &str = "405.trace-unsupported";
const BACKEND_METHOD: &str = "405.backend-method-unsupported";

pub(super) const RULE: Rule = Rule {
    name: "methods",
    causes: &[TRACE, BACKEND_METHOD],
    decide: |view, ctx| {
        [
            trace_unsupported(view, ctx),
            backend_method_unsupported(view),
        ]
        .into_iter()
        .flatten()
        .collect()
    },
};

/// TRACE over HTTP/1.1 decides; over h2, where the listener negotiated it, the answer joins
/// the evidence (and says so when it differs: a listener may refuse TRACE in one protocol only).
fn trace_unsupported(view: &View<'_>, ctx: &Context<'_>) -> Option<Draft> {
    let mut d = trace_unsupported_h1(view, ctx)?;
    let h2 = crate::probe::h2::variant("TRACE");
    let pairs = view.pairs(Family::Methods);
    let Some(p) = pairs
        .iter()
        .find(|p| p.variant == h2 && p.listener.is_some())
    else {
        return Some(d);
    };
    let h1_status = pairs
        .iter()
        .find(|p| p.variant == "TRACE")
        .and_then(|p| p.listener_status());
    let differs = if p.listener_status() != h1_status {
        " — not what HTTP/1.1 clients get"
    } else {
        ""
    };
    d = d.with(
        format!(
            "TRACE over HTTP/2 via the listener: {}{differs}",
            describe(p.listener_ex())
        ),
        &p.observations(),
    );
    Some(d)
}

fn trace_unsupported_h1(view: &View<'_>, ctx: &Context<'_>) -> Option<Draft> {
    const ID: &str = TRACE;
    let pairs = view.pairs(Family::Methods);
    let Some(p) = pairs
        .iter()
        .find(|p| p.variant == "TRACE" && p.listener.is_some())
    else {
        // The family stopped before TRACE (its error budget): say why, if the listener was
        // unreachable.
        let failed: Vec<&Observation> = pairs
            .iter()
            .filter_map(|p| p.listener)
            .filter(|o| o.exchange.as_ref().is_some_and(|e| e.end.never_connected()))
            .collect();
        return (!failed.is_empty()).then(|| {
            Draft::new(
                ID,
                Verdict::Inconclusive,
                "the listener could not be reached, so TRACE was never sent",
            )
            .with(
                format!(
                    "{} method checks failed to connect before TRACE",
                    failed.len()
                ),
                &failed,
            )
        });
    };
    let got = describe(p.listener_ex());
    if p.listener_ex().is_some_and(|e| e.end.never_connected()) {
        return Some(
            Draft::new(
                ID,
                Verdict::Inconclusive,
                format!("the listener could not be reached to send it TRACE ({got})"),
            )
            .with(format!("TRACE via the listener: {got}"), &p.observations()),
        );
    }
    Some(if p.listener_status() == Some(405) {
        let (origin, why) = p.origin();
        if origin == Origin::Backend {
            Draft::new(ID, Verdict::RuledOut, "the 405 to TRACE is the backend's, passed on by the listener (see 405.backend-method-unsupported)")
                .with(format!("TRACE via the listener: {got} ({why})"), &p.observations())
        } else {
            let d = Draft::new(
                ID,
                Verdict::Reproduced,
                "the listener itself answers TRACE with 405",
            )
            .with(
                format!("TRACE via the listener: {got} ({why})"),
                &p.observations(),
            );
            match ctx.profile.trace_allowed() {
                Some(c) if c.value => d.cites(
                    &c,
                    format!("{} TRACE as allowed; this listener refuses it", c.who),
                ),
                _ => d,
            }
        }
    } else if p.listener_status().is_none() {
        Draft::new(
            ID,
            Verdict::Inconclusive,
            format!("the listener gave no HTTP answer to TRACE ({got})"),
        )
        .with(format!("TRACE via the listener: {got}"), &p.observations())
    } else {
        let (origin, why) = p.origin();
        let reason = if origin == Origin::Backend {
            format!("the listener passes TRACE on (the backend answers it: {got})")
        } else {
            format!("the listener answers TRACE with {got}, not 405")
        };
        Draft::new(ID, Verdict::RuledOut, reason).with(
            format!("TRACE via the listener: {got} ({why})"),
            &p.observations(),
        )
    })
}

fn backend_method_unsupported(view: &View<'_>) -> Option<Draft> {
    const ID: &str = BACKEND_METHOD;
    let pairs = view.pairs(Family::Methods);
    let direct: Vec<&Pair<'_>> = pairs.iter().filter(|p| p.backend.is_some()).collect();
    if direct.is_empty() {
        return None;
    }
    let refused: Vec<&&Pair<'_>> = direct
        .iter()
        .filter(|p| p.backend_status() == Some(405))
        .collect();
    if refused.is_empty() {
        let tried: Vec<&str> = direct.iter().map(|p| p.variant).collect();
        return Some(Draft::new(
            ID,
            Verdict::RuledOut,
            format!("the backend answers none of {} with 405", tried.join(", ")),
        ));
    }
    let names: Vec<&str> = refused.iter().map(|p| p.variant).collect();
    let mut d = Draft::new(
        ID,
        Verdict::Reproduced,
        format!("the backend itself answers {} with 405", names.join(", ")),
    );
    for p in refused {
        let allow = p
            .backend_ex()
            .and_then(|e| e.response.as_ref())
            .and_then(|r| r.header("allow"))
            .map(|a| format!(" (Allow: {a})"))
            .unwrap_or_default();
        let through = match p.listener {
            Some(_) => {
                let (origin, why) = p.origin();
                let who = match origin {
                    Origin::Backend => "passed on by the listener",
                    Origin::Listener => "answered by the listener itself",
                    Origin::Unknown => "origin unclear",
                };
                format!(
                    "; via the listener: {} — {who} ({why})",
                    describe(p.listener_ex())
                )
            }
            None => String::new(),
        };
        d = d.with(
            format!(
                "{} straight to the backend: {}{allow}{through}",
                p.variant,
                describe(p.backend_ex())
            ),
            &p.observations(),
        );
    }
    Some(d)
}
