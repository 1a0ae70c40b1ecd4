//! The backend's own error answer to a valid request sent straight to it: 500, 503 and 504
//! there are faults upstream.

use crate::probe::Family;
use crate::target::Role;
use crate::transport::Exchange;

use super::super::{describe, Draft, Verdict, View};
use super::{body_hint, Rule};

/// Each code the backend may answer a valid GET with, and the cause it is.
const BY_CODE: [(u16, &str); 3] = [
    (500, "500.backend-error"),
    (503, "503.backend-error"),
    (504, "504.backend-dependency-timeout"),
];

pub(super) const RULE: Rule = Rule {
    name: "backend-error",
    causes: &[BY_CODE[0].1, BY_CODE[1].1, BY_CODE[2].1],
    decide: |view, _| backend_answers_valid_request(view),
};

/// The backend's own answer to a valid request: 500, 503 and 504 there are faults upstream.
fn backend_answers_valid_request(view: &View<'_>) -> Vec<Draft> {
    let Some(o) = view.find(Family::Protocol, "baseline", Role::Backend) else {
        return Vec::new();
    };
    let Some(status) = o.exchange.as_ref().and_then(Exchange::status) else {
        return Vec::new();
    };
    let body = body_hint(o.exchange.as_ref());
    BY_CODE
        .into_iter()
        .map(|(code, id)| {
            if status == code {
                Draft::new(
                    id,
                    Verdict::Confirmed,
                    format!("the backend answers a valid GET with {code} itself"),
                )
                .with(
                    format!(
                        "baseline GET straight to the backend: {}{body}",
                        describe(o.exchange.as_ref())
                    ),
                    &[o],
                )
            } else {
                Draft::new(
                    id,
                    Verdict::RuledOut,
                    format!("the backend answers a valid GET with {status}"),
                )
                .with(
                    format!(
                        "baseline GET straight to the backend: {}",
                        describe(o.exchange.as_ref())
                    ),
                    &[o],
                )
            }
        })
        .collect()
}
