//! The rule table. A cause registers once: one catalogue entry (src/catalogue/causes.yaml) and
//! one rule module that declares it, listed in [`RULES`]. `classify` runs the table; tests
//! iterate it (which causes each rule decides) instead of reading source text; counts come from
//! the catalogue.
//!
//! Adding a cause is its catalogue entry, a module here with a `RULE` (the causes it decides and
//! the function that decides them), and one line in [`RULES`]. Rule modules written before the
//! table (limits, partial, timing, ...) sit one level up, next to this folder, and are listed
//! here the same way.

mod backend_error;
mod methods;
mod passthrough;
mod protocol;
mod tls_to_backend;
mod validation;

use crate::transport::Exchange;

use super::{truncate, Context, Draft, View};

/// One rule module: the causes it decides and the function that decides them.
pub struct Rule {
    /// What the module decides, in a word or two (for messages and tests).
    pub name: &'static str,
    /// Every cause id the rule may emit. Each must be in the catalogue and declared by no other
    /// rule; a draft for an id not listed here is a bug in the rule (debug builds panic).
    pub causes: &'static [&'static str],
    /// Reads the run's observations and drafts a finding per cause it can speak to.
    pub(crate) decide: fn(&View<'_>, &Context<'_>) -> Vec<Draft>,
}

impl Rule {
    pub fn declares(&self, cause: &str) -> bool {
        self.causes.contains(&cause)
    }
}

/// Every rule the classifier runs, in the order it runs them (findings are sorted afterwards,
/// so the order shows only in a debugger).
pub const RULES: &[Rule] = &[
    protocol::RULE,
    validation::RULE,
    methods::RULE,
    backend_error::RULE,
    passthrough::RULE,
    super::limits::RULE,
    super::partial::RULE,
    super::timing::RULE,
    super::response::RULE,
    super::rate::RULE,
    super::mtu::RULE,
    super::keepalive::RULE,
    super::pool::RULE,
    super::tls_auth::RULE,
    tls_to_backend::RULE,
];

/// The rule that declares `cause`, if one does.
pub fn rule_for(cause: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.declares(cause))
}

/// Every rule's drafts, each checked against what its rule declares.
pub(crate) fn all(view: &View<'_>, ctx: &Context<'_>) -> Vec<Draft> {
    let mut out = Vec::new();
    for rule in RULES {
        let drafts = (rule.decide)(view, ctx);
        for d in &drafts {
            debug_assert!(
                rule.declares(&d.cause),
                "the {} rule emitted {}, which it does not declare",
                rule.name,
                d.cause
            );
        }
        out.extend(drafts);
    }
    out
}

/// ` — body "..."`: the start of an answer's body, for evidence lines.
fn body_hint(ex: Option<&Exchange>) -> String {
    match ex.and_then(|e| e.response.as_ref()) {
        Some(r) if !r.body_prefix.is_empty() => {
            format!(" — body \"{}\"", truncate(&r.body_prefix.escaped(), 80))
        }
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::Catalogue;

    #[test]
    fn every_declared_cause_is_in_the_catalogue_and_declared_once() {
        let catalogue = Catalogue::builtin();
        for rule in RULES {
            assert!(
                !rule.causes.is_empty(),
                "the {} rule declares nothing",
                rule.name
            );
            for cause in rule.causes {
                assert!(
                    catalogue.get(cause).is_some(),
                    "the {} rule declares {cause}, which the catalogue lacks",
                    rule.name
                );
                let by: Vec<&str> = RULES
                    .iter()
                    .filter(|r| r.declares(cause))
                    .map(|r| r.name)
                    .collect();
                assert_eq!(by.len(), 1, "{cause} is declared by {by:?}");
            }
        }
        let names: std::collections::BTreeSet<&str> = RULES.iter().map(|r| r.name).collect();
        assert_eq!(names.len(), RULES.len(), "two rules share a name");
    }

    #[test]
    fn rule_for_finds_the_declaring_rule() {
        assert_eq!(
            rule_for("405.trace-unsupported").map(|r| r.name),
            Some("methods")
        );
        assert_eq!(
            rule_for("502.passthrough").map(|r| r.name),
            Some("passthrough")
        );
        assert!(rule_for("418.teapot").is_none());
    }
}
