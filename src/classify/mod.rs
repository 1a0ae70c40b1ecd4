//! Observations + catalogue -> findings. Pure: no sockets, no printing; tested with tables.
//!
//! Which rule decides which cause is one table, [`RULES`] (in `rules/`).

pub mod attribution;
pub mod host;
pub mod identify;
mod keepalive;
mod limits;
pub mod malformed_table;
pub mod measured;
mod mtu;
mod partial;
mod pool;
mod rate;
mod replay;
mod response;
mod rules;
mod timing;
mod tls_auth;
pub mod verdict;

use std::collections::HashMap;

use serde::Serialize;

pub use crate::catalogue::{Kind, Side};
pub use attribution::Origin;
pub use rules::{rule_for, Rule, RULES};
pub use verdict::Verdict;

pub use crate::profile::Basis;

use crate::catalogue::Catalogue;
use crate::probe::{Family, Observation};
use crate::profile::Profile;
use crate::target::Role;
use crate::transport::{ConnEnd, Exchange};

/// One statement the classifier makes about one cause.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub cause: String,
    pub code: u16,
    pub side: Side,
    pub kind: Kind,
    pub verdict: Verdict,
    pub title: String,
    /// One line: why this verdict.
    pub reason: String,
    /// What the verdict rests on, most trusted first: `measured` in this run, `declared` by
    /// the user, `documented` by the profile, `assumed` by lbprobe.
    pub rests_on: Vec<Basis>,
    pub evidence: Vec<Evidence>,
    pub remediation: Vec<String>,
}

/// A fact behind a finding, with the observations it rests on and where it comes from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evidence {
    pub text: String,
    pub basis: Basis,
    pub observations: Vec<String>,
}

/// What the classifier knows about the run besides the observations.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    pub profile: &'a Profile,
    pub listener_tls: Option<bool>,
    pub has_backend: bool,
}

impl Evidence {
    /// `documented: ` / `declared: ` / `assumed: ` in front of a fact that was not measured in
    /// this run; nothing in front of a measured one.
    pub fn basis_prefix(&self) -> String {
        match self.basis {
            Basis::Measured => String::new(),
            other => format!("{other}: "),
        }
    }
}

/// Evidence as one text, a line per fact: how a finding's or a draft's evidence is read whole.
pub fn evidence_text(evidence: &[Evidence]) -> String {
    evidence
        .iter()
        .map(|e| e.text.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

impl Finding {
    /// `measured, documented`.
    pub fn rests_on_text(&self) -> String {
        let words: Vec<&str> = self.rests_on.iter().map(|b| b.as_str()).collect();
        words.join(", ")
    }
}

/// A rule's output before the catalogue fills in the cause's fixed facts.
#[derive(Debug, Clone)]
pub(crate) struct Draft {
    pub cause: String,
    pub verdict: Verdict,
    pub reason: String,
    pub evidence: Vec<Evidence>,
}

impl Draft {
    pub(crate) fn new(cause: &str, verdict: Verdict, reason: impl Into<String>) -> Draft {
        Draft {
            cause: cause.to_string(),
            verdict,
            reason: reason.into(),
            evidence: Vec::new(),
        }
    }

    /// Evidence measured in this run, resting on these observations.
    pub(crate) fn with(mut self, text: impl Into<String>, observations: &[&Observation]) -> Draft {
        self.evidence.push(Evidence {
            text: text.into(),
            basis: Basis::Measured,
            observations: observations.iter().map(|o| o.id.clone()).collect(),
        });
        self
    }

    /// A number the verdict is compared with, cited from the profile (declared or
    /// documented): `cited.says(shown)` plus what follows.
    pub(crate) fn cites<T>(
        mut self,
        cited: &crate::profile::Cited<T>,
        text: impl Into<String>,
    ) -> Draft {
        self.evidence.push(Evidence {
            text: text.into(),
            basis: cited.basis,
            observations: Vec::new(),
        });
        self
    }
}

/// What a backend capture saw, by observation id: `true` when the probe's marker arrived at
/// the backend, `false` when it never did. Observations without an entry (unmarked probes,
/// probes sent straight to the backend) are attributed by the answers alone.
pub type Reached = HashMap<String, bool>;

/// The profile a run is classified with: `auto` resolved from the listener's own answers
/// (which profile, and why, is recorded in it); any named profile as it is.
pub fn resolve_profile(observations: &[Observation], profile: &Profile) -> Profile {
    let found = identify::identify(observations);
    profile.resolve(match found.identity {
        Some(i) => Ok((i.profile, i.why)),
        None => Err(found.why_none),
    })
}

/// Classify a run. One finding per cause the observations can speak to, ordered by code.
pub fn classify(
    observations: &[Observation],
    catalogue: &Catalogue,
    ctx: &Context<'_>,
) -> Vec<Finding> {
    classify_with_capture(observations, catalogue, ctx, None)
}

/// [`classify`], with what a backend capture saw of the listener's probes: the capture is
/// definitive where the answers are only suggestive, so it decides the origin of every
/// observation it speaks to before any answer is compared.
pub fn classify_with_capture(
    observations: &[Observation],
    catalogue: &Catalogue,
    ctx: &Context<'_>,
    reached: Option<&Reached>,
) -> Vec<Finding> {
    // A probe's evidence tag the catalogue lacks is a bug in the probe: loud in debug builds.
    for o in observations {
        for tag in &o.evidence_for {
            debug_assert!(
                catalogue.get(tag).is_some(),
                "observation {} ({} {}) is tagged {tag}, which the catalogue lacks",
                o.id,
                o.family,
                o.variant
            );
        }
    }
    let view = View {
        observations,
        reached,
    };
    findings(rules::all(&view, ctx), catalogue)
}

/// Drafts completed with the catalogue's fixed facts, ordered by code, then verdict, then id.
pub(crate) fn findings(drafts: Vec<Draft>, catalogue: &Catalogue) -> Vec<Finding> {
    let mut findings: Vec<Finding> = drafts
        .into_iter()
        .filter_map(|d| {
            // An id the catalogue lacks is a bug in a rule: loud in debug builds, never a
            // finding without title or fix in a release.
            let Some(cause) = catalogue.get(&d.cause) else {
                debug_assert!(
                    false,
                    "a rule emitted {}, which the catalogue lacks",
                    d.cause
                );
                return None;
            };
            let mut rests_on: Vec<Basis> = d.evidence.iter().map(|e| e.basis).collect();
            rests_on.sort();
            rests_on.dedup();
            Some(Finding {
                cause: d.cause,
                code: cause.code,
                side: cause.side,
                kind: cause.kind,
                verdict: d.verdict,
                title: cause.title.clone(),
                reason: d.reason,
                rests_on,
                evidence: d.evidence,
                remediation: cause.remediation.clone(),
            })
        })
        .collect();
    findings.sort_by(|a, b| (a.code, a.verdict, &a.cause).cmp(&(b.code, b.verdict, &b.cause)));
    findings
}

/// Lookups over a run's observations. The default is a run that observed nothing.
#[derive(Default)]
pub(crate) struct View<'a> {
    pub observations: &'a [Observation],
    pub reached: Option<&'a Reached>,
}

impl<'a> View<'a> {
    pub fn find(&self, family: Family, variant: &str, role: Role) -> Option<&'a Observation> {
        self.observations
            .iter()
            .find(|o| o.family == family && o.variant == variant && o.role == role)
    }

    /// Listener/backend pairs of one family, in observation order, keyed by variant.
    pub fn pairs(&self, family: Family) -> Vec<Pair<'a>> {
        let mut out: Vec<Pair<'a>> = Vec::new();
        let mut identified = None;
        for o in self.observations.iter().filter(|o| o.family == family) {
            let idx = match out.iter().position(|p| p.variant == o.variant) {
                Some(i) => i,
                None => {
                    // Identified once per call, and only for families that have observations.
                    let listener_is = *identified.get_or_insert_with(|| self.listener_is());
                    out.push(Pair {
                        variant: &o.variant,
                        listener: None,
                        backend: None,
                        reached: self.reached,
                        listener_is,
                    });
                    out.len() - 1
                }
            };
            match o.role {
                Role::Listener => out[idx].listener = Some(o),
                Role::Backend => out[idx].backend = Some(o),
            }
        }
        out
    }

    /// What the listener is, from its own answers (see [`identify`]): attribution reads its
    /// pages and the `Server` header it sends against that.
    pub fn listener_is(&self) -> Option<attribution::Product> {
        identify::identify(self.observations).product()
    }

    pub fn all_pairs(&self) -> Vec<(Family, Pair<'a>)> {
        Family::ALL
            .into_iter()
            .flat_map(|f| self.pairs(f).into_iter().map(move |p| (f, p)))
            .collect()
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Pair<'a> {
    pub variant: &'a str,
    pub listener: Option<&'a Observation>,
    pub backend: Option<&'a Observation>,
    pub reached: Option<&'a Reached>,
    /// What the listener is, when its own answers said so.
    pub listener_is: Option<attribution::Product>,
}

impl<'a> Pair<'a> {
    pub fn listener_ex(&self) -> Option<&'a Exchange> {
        self.listener.and_then(|o| o.exchange.as_ref())
    }

    pub fn backend_ex(&self) -> Option<&'a Exchange> {
        self.backend.and_then(|o| o.exchange.as_ref())
    }

    pub fn listener_status(&self) -> Option<u16> {
        self.listener_ex().and_then(Exchange::status)
    }

    pub fn backend_status(&self) -> Option<u16> {
        self.backend_ex().and_then(Exchange::status)
    }

    pub fn origin(&self) -> (Origin, String) {
        let Some(l) = self.listener_ex() else {
            return (Origin::Unknown, "not sent to the listener".into());
        };
        let reached = self
            .listener
            .zip(self.reached)
            .and_then(|(o, r)| r.get(&o.id).copied());
        match reached {
            Some(reached) => attribution::from_capture(l, reached, self.listener_is),
            None => attribution::attribute(l, self.backend_ex(), self.listener_is),
        }
    }

    pub fn observations(&self) -> Vec<&'a Observation> {
        self.listener.into_iter().chain(self.backend).collect()
    }
}

/// A short account of what an exchange got: `400 Bad Request`, `no answer (connection reset)`.
pub fn describe(ex: Option<&Exchange>) -> String {
    let Some(ex) = ex else {
        return "not sent".into();
    };
    if let Some(r) = &ex.response {
        let reason = if r.reason.is_empty() {
            String::new()
        } else {
            format!(" {}", r.reason)
        };
        return format!("{}{reason}", r.status);
    }
    let why = match &ex.end {
        ConnEnd::Complete | ConnEnd::Fin => "the connection was closed".to_string(),
        ConnEnd::Reset => "the connection was reset".into(),
        ConnEnd::Timeout => format!("no answer within {:.1} s", ex.timings.total_ms / 1000.0),
        ConnEnd::SizeBound => "the answer exceeded the size bound".into(),
        ConnEnd::ConnectRefused => "connection refused".into(),
        ConnEnd::ConnectTimeout => "the TCP handshake timed out".into(),
        ConnEnd::Unreachable(w) => format!("unreachable: {w}"),
        ConnEnd::NameNotResolved(w) => format!("name not resolved: {w}"),
        ConnEnd::TlsFailed(w) => format!("TLS handshake failed: {w}"),
        ConnEnd::TlsAlert(w) => format!("TLS alert: {w}"),
        ConnEnd::Io(w) => format!("I/O error: {w}"),
    };
    let tls_record = ex.raw_prefix.is_tls_record();
    if ex.raw_prefix.is_empty() || tls_record && matches!(ex.end, ConnEnd::TlsFailed(_)) {
        // A failed handshake's bytes are the server's half of it: nothing to show.
        format!("no HTTP answer: {why}")
    } else if tls_record {
        format!(
            "no HTTP answer ({why}); got a TLS record (\"{}\"): the port speaks TLS",
            truncate(&ex.raw_prefix.escaped(), 24)
        )
    } else {
        format!(
            "no HTTP answer ({why}); got \"{}\"",
            truncate(&ex.raw_prefix.escaped(), 60)
        )
    }
}

pub(crate) fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let cut: String = s.chars().take(n).collect();
        format!("{cut}…")
    }
}
