//! Who refuses a request as invalid: the listener (`400.malformed-request`, from the malformed
//! family's variants) or the backend's own validation (`400.backend-validation`, from every
//! well-formed request sent straight to it).

use crate::probe::{Family, Observation};
use crate::transport::ConnEnd;

use super::super::{describe, Draft, Origin, Pair, Verdict, View};
use super::{body_hint, Rule};

const MALFORMED: &str = "400.malformed-request";
const BACKEND_VALIDATION: &str = "400.backend-validation";

pub(super) const RULE: Rule = Rule {
    name: "validation",
    causes: &[MALFORMED, BACKEND_VALIDATION],
    decide: |view, _| {
        // A replayed request's malformed request line is the same cause (`lbprobe replay`).
        let malformed = super::super::replay::merge(
            malformed_request(view),
            super::super::replay::malformed(view),
        );
        [malformed, backend_validation(view)]
            .into_iter()
            .flatten()
            .collect()
    },
};

fn malformed_request(view: &View<'_>) -> Option<Draft> {
    const ID: &str = MALFORMED;
    let pairs = view.pairs(Family::Malformed);
    let control = pairs.iter().find(|p| p.variant == "control");
    if let Some(c) = control {
        if c.listener_status() == Some(400) {
            return Some(
                Draft::new(
                    ID,
                    Verdict::Inconclusive,
                    "the listener answers even the valid control request with 400",
                )
                .with(
                    format!("control via the listener: {}", describe(c.listener_ex())),
                    &c.observations(),
                ),
            );
        }
    }
    let tried: Vec<&Pair<'_>> = pairs
        .iter()
        .filter(|p| {
            p.variant != "control"
                && p.listener
                    .is_some_and(|o| o.evidence_for.iter().any(|e| e == ID))
        })
        .collect();
    if tried.is_empty() {
        return None;
    }
    let mut hits = Vec::new();
    for p in &tried {
        if p.listener_status() == Some(400) {
            let (origin, why) = p.origin();
            if origin != Origin::Backend {
                hits.push((p, why));
            }
        }
    }
    if hits.is_empty() {
        // Ruled out only if the listener answered (or closed on) at least one variant: a run
        // where every variant timed out, never connected or failed its TLS handshake (the
        // request never went out) says nothing.
        let reached = tried.iter().any(|p| {
            p.listener_ex().is_some_and(|e| {
                let silent = e.response.is_none() && e.end == ConnEnd::Timeout;
                !(e.end.request_never_arrived() || silent)
            })
        });
        let (verdict, reason) = if reached {
            (
                Verdict::RuledOut,
                format!(
                    "none of the {} malformed variants got 400 from the listener",
                    tried.len()
                ),
            )
        } else {
            (
                Verdict::Inconclusive,
                "the listener could not be reached, refused every TLS handshake or stayed silent: no malformed variant got an answer"
                    .to_string(),
            )
        };
        let mut d = Draft::new(ID, verdict, reason);
        for p in &tried {
            d = d.with(
                format!("{}: listener {}", p.variant, describe(p.listener_ex())),
                &p.observations(),
            );
        }
        return Some(d);
    }
    let names: Vec<&str> = hits.iter().map(|(p, _)| p.variant).collect();
    let mut d = Draft::new(
        ID,
        Verdict::Reproduced,
        format!("the listener answers 400 to: {}", names.join(", ")),
    );
    for (p, why) in &hits {
        let backend = match p.backend {
            Some(_) => format!("; straight to the backend: {}", describe(p.backend_ex())),
            None => String::new(),
        };
        d = d.with(
            format!(
                "{}: listener {}{backend} ({why})",
                p.variant,
                describe(p.listener_ex())
            ),
            &p.observations(),
        );
    }
    Some(d)
}

/// Well-formed requests of every family, paired.
fn well_formed_pairs<'a>(view: &View<'a>) -> Vec<(Family, Pair<'a>)> {
    view.all_pairs()
        .into_iter()
        .filter(|(f, p)| {
            // Sized requests of limit searches are refused by size, not by validation.
            matches!(
                f,
                Family::Protocol
                    | Family::Malformed
                    | Family::Methods
                    | Family::Latency
                    | Family::Response
            ) && p.observations().iter().all(|o| o.well_formed)
                && !matches!(
                    crate::probe::h2::h1_twin(p.variant).unwrap_or(p.variant),
                    "CONNECT" | "TRACE" | "plain-http-to-tls-port" | "tls-to-plain-port" | "alpn"
                )
        })
        .collect()
}

fn backend_validation(view: &View<'_>) -> Option<Draft> {
    const ID: &str = BACKEND_VALIDATION;
    let pairs = well_formed_pairs(view);
    // Only requests the backend answered can speak to its validation.
    let direct: Vec<&(Family, Pair<'_>)> = pairs
        .iter()
        .filter(|(_, p)| p.backend_status().is_some())
        .collect();
    if direct.is_empty() {
        return None;
    }
    let rejected: Vec<&&(Family, Pair<'_>)> = direct
        .iter()
        .filter(|(_, p)| p.backend_status() == Some(400))
        .collect();
    if rejected.is_empty() {
        let refs: Vec<&Observation> = direct.iter().filter_map(|(_, p)| p.backend).collect();
        let n = direct.len();
        let what = if n == 1 {
            "valid request"
        } else {
            "valid requests"
        };
        return Some(
            Draft::new(
                ID,
                Verdict::RuledOut,
                format!("the backend accepts the {n} {what} sent straight to it"),
            )
            .with(
                format!("{n} {what} straight to the backend got no 400"),
                &refs,
            ),
        );
    }
    let mut d = Draft::new(
        ID,
        Verdict::Reproduced,
        "valid requests fail the backend's own validation with 400",
    );
    for (family, p) in rejected.iter().take(5) {
        let through = match p.listener {
            Some(_) => {
                let (origin, why) = p.origin();
                let passed = if origin == Origin::Backend {
                    "the listener passes it on"
                } else {
                    "the listener answers"
                };
                format!(
                    "; through the listener: {} ({passed}: {why})",
                    describe(p.listener_ex())
                )
            }
            None => String::new(),
        };
        d = d.with(
            format!(
                "{family} {}: the backend answers {}{}{through}",
                p.variant,
                describe(p.backend_ex()),
                body_hint(p.backend_ex())
            ),
            &p.observations(),
        );
    }
    Some(d)
}
