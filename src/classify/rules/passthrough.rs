//! `<code>.passthrough` for every code: the backend answered the code and the listener passed it
//! on.

use crate::probe::Family;

use super::super::{Draft, Origin, Pair, Verdict, View};
use super::Rule;

/// One per code the catalogue knows (its validation requires them).
const CAUSES: &[&str] = &[
    "400.passthrough",
    "405.passthrough",
    "408.passthrough",
    "414.passthrough",
    "499.passthrough",
    "500.passthrough",
    "502.passthrough",
    "503.passthrough",
    "504.passthrough",
];

pub(super) const RULE: Rule = Rule {
    name: "passthrough",
    causes: CAUSES,
    decide: |view, ctx| {
        let mut out = passthrough(view);
        // With no backend named there are no pairs to compare; the limit searches still show
        // 400s a server behind the listener wrote.
        if out.iter().all(|d| d.cause != "400.passthrough") {
            out.extend(super::super::limits::relayed_passthrough(view, ctx));
        }
        out
    },
};

/// `<code>.passthrough`: the backend answered the code and the listener passed it on.
fn passthrough(view: &View<'_>) -> Vec<Draft> {
    let pairs = view.all_pairs();
    let mut out = Vec::new();
    for &id in CAUSES {
        let Some(code) = id
            .split_once('.')
            .and_then(|(code, _)| code.parse::<u16>().ok())
        else {
            continue;
        };
        let seen: Vec<&(Family, Pair<'_>)> = pairs
            .iter()
            .filter(|(_, p)| {
                p.backend_status() == Some(code)
                    && p.listener_status() == Some(code)
                    && p.origin().0 == Origin::Backend
            })
            .collect();
        if seen.is_empty() {
            continue;
        }
        let verdict = if code >= 500 {
            Verdict::Confirmed
        } else {
            Verdict::Reproduced
        };
        let names: Vec<String> = seen
            .iter()
            .take(6)
            .map(|(f, p)| format!("{f} {}", p.variant))
            .collect();
        let mut d = Draft::new(
            id,
            verdict,
            format!(
                "the backend answered {code} and the listener passed it on ({})",
                names.join(", ")
            ),
        );
        for (f, p) in seen.iter().take(6) {
            let (_, why) = p.origin();
            d = d.with(format!("{f} {}: {why}", p.variant), &p.observations());
        }
        out.push(d);
    }
    out
}
