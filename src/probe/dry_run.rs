//! `--dry-run`: the plan and the exact bytes every probe would send, with nothing sent. A loop
//! over the families' own plans ([`families::plan`]), recorded and masked as the run records
//! what it sends.

use serde::Serialize;

use crate::profile::Profile;
use crate::target::{Role, Target};
use crate::transport::marker::{self, MarkerPlace};
use crate::transport::mask::masked_target;

use super::context::{record, Side, Via};
use super::engine::Plan;
use super::families::{self, FamilyPlan};
use super::{h2, Family, Limits, ProbeSpec};

#[derive(Debug, Clone, Serialize)]
pub struct PlannedRequest {
    pub family: Family,
    pub variant: String,
    pub role: Role,
    pub endpoint: String,
    /// False when a client library sends it and `text` shows what it amounts to.
    pub exact: bool,
    /// The bytes, escaped, secrets masked.
    pub text: String,
    pub bytes: usize,
    /// Whether the run's marker header goes in (with `--marker`, requests through the engine's
    /// send functions; those a family sends over its own connections go out as they are).
    pub marked: bool,
    /// The request as a curl command, or why curl cannot send it.
    pub curl: Option<crate::replay::share::AsCurl>,
}

/// One family's plan in short: how many requests it lists and whether they are all it sends.
#[derive(Debug, Clone, Serialize)]
pub struct FamilySummary {
    pub family: Family,
    pub requests: usize,
    /// With every side answering, the run sends exactly the requests listed for this family;
    /// false where later requests are chosen from the answers (the notes say how).
    pub complete: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct DryRun {
    pub targets: Vec<Target>,
    pub profile: Profile,
    pub limits: Limits,
    pub families: Vec<Family>,
    pub requests: Vec<PlannedRequest>,
    /// What cannot be known before sending (sniffs, bisection steps).
    pub notes: Vec<String>,
    /// Each family's plan in short, the opening's (the baselines) first under `protocol`.
    pub plans: Vec<FamilySummary>,
}

pub fn dry_run(plan: &Plan) -> DryRun {
    let sides: Vec<Side> = plan
        .listener
        .iter()
        .chain(plan.backend.iter())
        .map(Side::of)
        .collect();
    let mask = plan.mask();
    let mut notes = Vec::new();
    if plan.backend.is_some() {
        notes.push(
            "the backend port is sniffed first (a TLS ClientHello, then a plain GET if TLS fails); \
             direct probes then use what it speaks, and a port that speaks TLS also gets the \
             baseline in plain HTTP (plain-http-to-tls-backend) when the protocol family runs"
                .into(),
        );
    }
    let families: Vec<Family> = plan.probes.iter().map(ProbeSpec::family).collect();
    let h2_families: Vec<&str> = families
        .iter()
        .filter(|f| h2::FAMILIES.contains(f))
        .map(|f| f.as_str())
        .collect();
    if !h2_families.is_empty() && sides.iter().any(Side::is_tls) {
        notes.push(format!(
            "each TLS side is first offered h2 and http/1.1 (ALPN, a handshake and no request); where it picks h2, {} run again over HTTP/2 through the client library (variants ending in \" h2\", the same requests as the HTTP/1.1 bytes shown)",
            h2_families.join(", ")
        ));
    }
    let mut plans: Vec<FamilyPlan> = vec![families::opening(
        &sides,
        families.contains(&Family::Protocol),
    )];
    plans.extend(
        plan.probes
            .iter()
            .filter(|spec| spec.family() != Family::Protocol)
            .map(|spec| families::plan_in(plan, spec, &sides)),
    );
    let mut requests = Vec::new();
    let mut marks = 0u32;
    for family in &plans {
        for p in &family.requests {
            // The run id is drawn when the run starts: shown as RUN here.
            let (bytes, is_marked) = match plan
                .marker
                .then(|| marked(p, &format!("RUN-{}", marks + 1), plan.marker_place))
            {
                Some(Some(bytes)) => {
                    marks += 1;
                    (bytes, true)
                }
                _ => (p.bytes.clone(), false),
            };
            let sent = record(&mask, Some(&p.endpoint), &bytes, p.exact());
            requests.push(PlannedRequest {
                family: p.family,
                variant: p.variant.clone(),
                role: p.role,
                endpoint: p.endpoint.label(),
                exact: sent.exact,
                text: sent.text,
                bytes: sent.bytes,
                marked: is_marked,
                curl: sent.curl,
            });
        }
        notes.extend(family.notes.iter().cloned());
    }
    notes.push(format!(
        "with every side answering, the requests above are what the run sends first; a side that stops answering gets fewer: a family leaves it alone after {} timeouts or connect failures in a row, and a side silent at the baseline is skipped by the families that need answers (latency sends it one request)",
        super::context::ERROR_BUDGET
    ));
    DryRun {
        targets: sides
            .iter()
            .map(|s| masked_target(&s.target, &plan.mask))
            .collect(),
        profile: plan.profile.clone(),
        limits: plan.limits,
        families,
        requests,
        notes,
        plans: plans
            .iter()
            .map(|p| FamilySummary {
                family: p.family,
                requests: p.requests.len(),
                complete: p.complete,
            })
            .collect(),
    }
}

/// The request as the run marks it (see `Engine::mark` and `Engine::mark_cut`): a raw request
/// whose head ends gets the marker before its end; the partial family's cut requests (its own
/// connection's too) right after their request line; others none.
fn marked(p: &super::context::Planned, value: &str, place: MarkerPlace) -> Option<Vec<u8>> {
    if !super::context::takes_marker(p.family, place) {
        return None;
    }
    // Raw requests, and the methods family's client-library ones (see `Engine::mark_client`).
    if p.via == Via::Raw || p.family == Family::Methods {
        if let Some(out) = marker::mark(&p.bytes, value, place, false) {
            return Some(out);
        }
    }
    if p.family == Family::Partial && p.via != Via::ClientLibrary {
        return marker::mark(&p.bytes, value, place, true);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::methods;

    #[test]
    fn lists_every_request_with_secrets_masked() {
        let mut listener = Target::parse(Role::Listener, "https://127.0.0.1:9/x").unwrap();
        listener.headers = vec![("X-Token".into(), "s3cret".into())];
        let plan = Plan::new(
            Some(listener),
            Some(Target::parse(Role::Backend, "http://127.0.0.1:9/").unwrap()),
        )
        .with_profile(Profile::clb())
        .with_probes(
            Family::ALL
                .into_iter()
                .map(ProbeSpec::default_for)
                .collect(),
        )
        .with_mask(vec!["x-token".into()]);
        let d = dry_run(&plan);
        let n = |f: Family| d.requests.iter().filter(|r| r.family == f).count();
        assert_eq!(
            n(Family::Protocol),
            3,
            "two baselines and plain HTTP to the TLS port"
        );
        // Every template but the keep-alive sequences, which run only when named.
        let unnamed = super::super::templates::malformed()
            .iter()
            .filter(|t| !t.is_sequence())
            .count();
        assert_eq!(n(Family::Malformed), 2 * unnamed);
        assert_eq!(n(Family::Methods), 2 * methods::MATRIX.len());
        assert_eq!(
            n(Family::HeaderSize),
            2 * 2,
            "min and max; bisection steps depend on answers"
        );
        assert!(d.requests.iter().all(|r| !r.text.contains("s3cret")));
        assert!(d.requests.iter().any(|r| r.text.contains("X-Token: ***")));
        assert!(d.notes.iter().any(|n| n.contains("bisects")));
    }
}
