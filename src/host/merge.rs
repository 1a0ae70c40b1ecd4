//! `lbprobe merge CLIENT.json BACKEND.json`: joins a `scan --marker` report with a
//! `backend --capture` report. A marked probe whose marker never reached the backend was
//! answered by the listener, definitively; one whose marker arrived was forwarded. The client
//! run is then classified again with that knowledge, and the findings it changes are listed.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::capture::find_marker;
use crate::catalogue::Catalogue;
use crate::classify::{self, Context, Finding, Reached, Verdict};
use crate::probe::Observation;
use crate::profile::Profile;
use crate::target::{Role, Scheme};

/// The parts of a client report the merge reads (the report's JSON, unknown fields ignored).
#[derive(Debug, Deserialize)]
pub struct ClientReport {
    pub observations: Vec<ClientObservation>,
    /// The client run's own exit code: the merge's when findings cannot be re-classified.
    #[serde(default)]
    pub exit_code: Option<i32>,
}

#[derive(Debug, Deserialize)]
pub struct ClientObservation {
    pub id: String,
    pub family: String,
    pub variant: String,
    pub role: String,
    pub request: ClientRequest,
    pub exchange: Option<ClientExchange>,
}

#[derive(Debug, Deserialize)]
pub struct ClientRequest {
    pub text: String,
}

#[derive(Debug, Deserialize)]
pub struct ClientExchange {
    pub response: Option<ClientResponse>,
}

#[derive(Debug, Deserialize)]
pub struct ClientResponse {
    pub status: u16,
}

/// The parts of a backend report the merge reads.
#[derive(Debug, Deserialize)]
pub struct BackendCapture {
    pub capture: Option<CapturedMarkers>,
}

#[derive(Debug, Deserialize)]
pub struct CapturedMarkers {
    pub port: u16,
    pub markers: Vec<CapturedMarker>,
}

#[derive(Debug, Deserialize)]
pub struct CapturedMarker {
    pub marker: String,
    pub bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AnsweredBy {
    /// Sent straight to the backend.
    Backend,
    /// Sent to the listener and seen arriving at the backend: the listener forwarded it.
    Forwarded,
    /// Sent to the listener, never seen at the backend: the listener answered it itself.
    Listener,
    /// No marker (sniffs, methods sent through the HTTP client): the capture cannot tell.
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MergedProbe {
    pub observation: String,
    pub family: String,
    pub variant: String,
    pub role: String,
    pub status: Option<u16>,
    pub marker: Option<String>,
    pub reached_backend: Option<bool>,
    /// Bytes the backend received on the probe's connection.
    pub backend_bytes: Option<u64>,
    pub answered_by: AnsweredBy,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MergeSummary {
    pub forwarded: usize,
    pub answered_by_listener: usize,
    pub direct_to_backend: usize,
    pub unmarked: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MergeReport {
    pub capture_port: u16,
    pub summary: MergeSummary,
    pub probes: Vec<MergedProbe>,
    /// The client run classified again with the capture as an attribution signal (empty when
    /// the client report could not be read back whole).
    pub findings: Vec<Finding>,
    /// Findings whose verdict the capture changed, or that it added.
    pub changes: Vec<FindingChange>,
    pub notes: Vec<String>,
    /// What `lbprobe merge` exits with: as a run would with the re-classified findings (1 when
    /// a fault is confirmed), else the client report's own code, so CI can gate on the merge.
    pub exit_code: i32,
}

/// A finding the capture changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FindingChange {
    pub cause: String,
    /// The client report's verdict; `None` when the client report had no finding for the cause.
    pub before: Option<Verdict>,
    pub after: Verdict,
    /// The new finding's reason.
    pub reason: String,
}

/// The parts of a client report re-classification reads: the whole observations, the run's
/// findings to compare with, and what the classifier's context is built from.
#[derive(Debug, Deserialize)]
pub struct ClientRun {
    pub profile: RunProfile,
    pub targets: Vec<TargetRecord>,
    pub findings: Vec<FindingRecord>,
    pub observations: Vec<Observation>,
}

/// The report's profile: whole since schema 2 (documented and declared numbers, how it was
/// chosen), only its name before.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RunProfile {
    Whole(Box<Profile>),
    Named { name: String },
}

#[derive(Debug, Deserialize)]
pub struct TargetRecord {
    pub role: Role,
    pub scheme: Scheme,
}

#[derive(Debug, Deserialize)]
pub struct FindingRecord {
    pub cause: String,
    pub code: u16,
    pub verdict: Verdict,
}

#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("the backend report has no capture: run `lbprobe backend --port PORT --capture` during the scan")]
    NoCapture,
}

pub fn merge(client: &ClientReport, backend: &BackendCapture) -> Result<MergeReport, MergeError> {
    let capture = backend.capture.as_ref().ok_or(MergeError::NoCapture)?;
    let seen: BTreeMap<&str, u64> = capture
        .markers
        .iter()
        .map(|m| (m.marker.as_str(), m.bytes))
        .collect();
    let mut summary = MergeSummary::default();
    let mut probes = Vec::new();
    let mut runs = std::collections::BTreeSet::new();
    for o in &client.observations {
        // The recorded request is escaped text (`\r\n`, `\x00`): back to the bytes sent.
        let marker = crate::transport::unescape_bytes(&o.request.text)
            .ok()
            .and_then(|bytes| find_marker(&bytes));
        if let Some(m) = &marker {
            runs.insert(m.rsplit_once('-').map_or(m.clone(), |(r, _)| r.to_string()));
        }
        let bytes = marker.as_deref().and_then(|m| seen.get(m).copied());
        let answered_by = match (&marker, o.role.as_str(), bytes) {
            (None, _, _) => AnsweredBy::Unknown,
            (Some(_), "backend", _) => AnsweredBy::Backend,
            (Some(_), _, Some(_)) => AnsweredBy::Forwarded,
            (Some(_), _, None) => AnsweredBy::Listener,
        };
        match answered_by {
            AnsweredBy::Backend => summary.direct_to_backend += 1,
            AnsweredBy::Forwarded => summary.forwarded += 1,
            AnsweredBy::Listener => summary.answered_by_listener += 1,
            AnsweredBy::Unknown => summary.unmarked += 1,
        }
        probes.push(MergedProbe {
            observation: o.id.clone(),
            family: o.family.clone(),
            variant: o.variant.clone(),
            role: o.role.clone(),
            status: o
                .exchange
                .as_ref()
                .and_then(|e| e.response.as_ref())
                .map(|r| r.status),
            reached_backend: marker.as_ref().map(|_| bytes.is_some()),
            marker,
            backend_bytes: bytes,
            answered_by,
        });
    }
    let mut notes = Vec::new();
    if runs.is_empty() {
        notes.push("the client report carries no marker: run the scan with --marker".to_string());
    } else if !capture
        .markers
        .iter()
        .any(|m| runs.iter().any(|r| m.marker.starts_with(&format!("{r}-"))))
    {
        notes.push(format!(
            "none of run {}'s markers reached port {}: was the capture running during the scan, on the backend the listener forwards to?",
            runs.into_iter().collect::<Vec<_>>().join(", "),
            capture.port
        ));
    }
    Ok(MergeReport {
        capture_port: capture.port,
        summary,
        probes,
        findings: Vec::new(),
        changes: Vec::new(),
        notes,
        exit_code: client.exit_code.unwrap_or(crate::exit::OK),
    })
}

/// [`merge`], then classify the client run again with what the capture saw. `run` is the
/// client report read back whole; without it (a report from an older lbprobe) the merge says
/// who answered each probe and notes that the findings were not re-classified.
pub fn merge_and_reclassify(
    client: &ClientReport,
    run: Option<&ClientRun>,
    backend: &BackendCapture,
) -> Result<MergeReport, MergeError> {
    let mut merged = merge(client, backend)?;
    match run {
        Some(run) => {
            let (findings, changes, notes) = reclassify(run, &merged.probes);
            // The capture changes verdicts, not reachability; unmet expectations stay the client
            // report's to gate on.
            merged.exit_code = if client.exit_code == Some(crate::exit::UNREACHABLE) {
                crate::exit::UNREACHABLE
            } else if findings.iter().any(|f| f.verdict == Verdict::Confirmed) {
                crate::exit::FINDING
            } else {
                crate::exit::OK
            };
            merged.findings = findings;
            merged.changes = changes;
            merged.notes.extend(notes);
        }
        None => merged.notes.push(
            "the client report's observations could not be read back whole: findings not re-classified"
                .to_string(),
        ),
    }
    Ok(merged)
}

/// What the capture says of each listener probe, by observation id.
pub fn reached(probes: &[MergedProbe]) -> Reached {
    probes
        .iter()
        .filter_map(|p| match p.answered_by {
            AnsweredBy::Forwarded => Some((p.observation.clone(), true)),
            AnsweredBy::Listener => Some((p.observation.clone(), false)),
            AnsweredBy::Backend | AnsweredBy::Unknown => None,
        })
        .collect()
}

/// Classify the client run again with the capture's verdicts as a definitive attribution
/// signal. Returns the findings, the ones that changed against the client report, and notes.
pub fn reclassify(
    run: &ClientRun,
    probes: &[MergedProbe],
) -> (Vec<Finding>, Vec<FindingChange>, Vec<String>) {
    let mut notes = Vec::new();
    // The report carries the profile it was classified with (auto already resolved, the
    // declared numbers with it); a report from before that names it only, and the built-in
    // profile of that name stands in.
    let profile = match &run.profile {
        RunProfile::Whole(p) => (**p).clone(),
        RunProfile::Named { name } => Profile::by_name(name).unwrap_or_else(|| {
            notes.push(format!(
                "profile {name} is not built in: re-classified without a profile"
            ));
            Profile::none()
        }),
    };
    let ctx = Context {
        profile: &profile,
        listener_tls: run
            .targets
            .iter()
            .find(|t| t.role == Role::Listener)
            .map(|t| t.scheme == Scheme::Https),
        has_backend: run.targets.iter().any(|t| t.role == Role::Backend),
    };
    let reached = reached(probes);
    let mut findings = classify::classify_with_capture(
        &run.observations,
        Catalogue::builtin(),
        &ctx,
        Some(&reached),
    );
    // A run restricted with --only reported some codes alone: keep to those.
    let codes: BTreeSet<u16> = run.findings.iter().map(|f| f.code).collect();
    if !codes.is_empty() {
        findings.retain(|f| codes.contains(&f.code));
    }
    let changes = findings
        .iter()
        .filter_map(|f| {
            let before = run
                .findings
                .iter()
                .find(|b| b.cause == f.cause)
                .map(|b| b.verdict);
            (before != Some(f.verdict)).then(|| FindingChange {
                cause: f.cause.clone(),
                before,
                after: f.verdict,
                reason: f.reason.clone(),
            })
        })
        .collect();
    (findings, changes, notes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::Origin;
    use crate::probe::{Detail, Family, SentRequest};
    use crate::transport::{escape_bytes, Exchange, Response};

    /// A client report of one TRACE through the listener, answered 405 with a plain body (not
    /// a load balancer's page), and no backend target: nothing to compare the answer with.
    fn client_json() -> serde_json::Value {
        let request = b"TRACE / HTTP/1.1\r\nX-Lbprobe-Id: r1-1\r\nHost: x\r\n\r\n";
        let body = b"method not allowed\n";
        let observation = Observation {
            id: "o1".into(),
            family: Family::Methods,
            variant: "TRACE".into(),
            role: Role::Listener,
            well_formed: true,
            evidence_for: vec!["405.trace-unsupported".into()],
            request: SentRequest::described(escape_bytes(request), request.len(), true),
            exchange: Some(Exchange {
                bytes_out: request.len(),
                bytes_in: 100,
                ..Exchange::answered(
                    "127.0.0.1:8080",
                    Response::complete(405, "Method Not Allowed", &[("Server", "app")], body),
                )
            }),
            detail: Detail::Method {
                method: "TRACE".into(),
                via: "raw".into(),
            },
            logged: None,
        };
        let observations = vec![observation];
        let findings = classify::classify(
            &observations,
            Catalogue::builtin(),
            &Context {
                profile: &Profile::nginx(),
                listener_tls: Some(false),
                has_backend: false,
            },
        );
        serde_json::json!({
            "profile": Profile::nginx(),
            "targets": [{"role": "listener", "scheme": "http"}],
            "findings": findings,
            "observations": observations,
        })
    }

    fn capture(markers: &[&str]) -> BackendCapture {
        let markers: Vec<serde_json::Value> = markers
            .iter()
            .map(|m| serde_json::json!({"marker": m, "bytes": 60}))
            .collect();
        serde_json::from_value(serde_json::json!({"capture": {"port": 9000, "markers": markers}}))
            .expect("a backend report")
    }

    fn merged(markers: &[&str]) -> MergeReport {
        let json = client_json();
        let client: ClientReport = serde_json::from_value(json.clone()).expect("client report");
        let run: ClientRun = serde_json::from_value(json).expect("the run reads back whole");
        merge_and_reclassify(&client, Some(&run), &capture(markers)).expect("merged")
    }

    fn trace(m: &MergeReport) -> &Finding {
        m.findings
            .iter()
            .find(|f| f.cause == "405.trace-unsupported")
            .expect("a TRACE finding")
    }

    #[test]
    fn without_a_backend_target_the_attribution_is_unclear() {
        let json = client_json();
        let run: ClientRun = serde_json::from_value(json).expect("the run reads back whole");
        let ex = run.observations[0].exchange.as_ref().unwrap();
        let (origin, why) = classify::attribution::origin(ex, None);
        assert_eq!(origin, Origin::Unknown, "{why}");
        // The rule takes an unattributed 405 for the listener's own.
        let f = run
            .findings
            .iter()
            .find(|f| f.cause == "405.trace-unsupported")
            .expect("a TRACE finding");
        assert_eq!(f.verdict, Verdict::Reproduced);
    }

    #[test]
    fn a_probe_that_reached_the_backend_makes_the_405_the_backends() {
        let m = merged(&["r1-1"]);
        assert_eq!(m.probes[0].answered_by, AnsweredBy::Forwarded);
        let f = trace(&m);
        assert_eq!(f.verdict, Verdict::RuledOut, "{}", f.reason);
        assert!(
            f.evidence.iter().any(|e| e.text.contains("(capture)")),
            "{:?}",
            f.evidence
        );
        assert_eq!(
            m.changes,
            vec![FindingChange {
                cause: "405.trace-unsupported".into(),
                before: Some(Verdict::Reproduced),
                after: Verdict::RuledOut,
                reason: f.reason.clone(),
            }]
        );
    }

    #[test]
    fn a_probe_that_never_reached_the_backend_was_the_listeners() {
        let m = merged(&["r1-2"]);
        assert_eq!(m.probes[0].answered_by, AnsweredBy::Listener);
        let f = trace(&m);
        assert_eq!(f.verdict, Verdict::Reproduced, "{}", f.reason);
        // A reproduced listener behaviour is not a confirmed fault: the merge exits 0.
        assert_eq!(m.exit_code, crate::exit::OK);
        let text: Vec<&str> = f.evidence.iter().map(|e| e.text.as_str()).collect();
        assert!(
            text.iter()
                .any(|t| t.contains("the probe never reached the backend (capture)")),
            "{text:?}"
        );
        assert!(m.changes.is_empty(), "{:?}", m.changes);
    }

    #[test]
    fn a_report_that_does_not_read_back_whole_still_merges() {
        let client: ClientReport = serde_json::from_value(client_json()).expect("client report");
        let m = merge_and_reclassify(&client, None, &capture(&["r1-1"])).expect("merged");
        assert!(m.findings.is_empty());
        assert!(m.notes.iter().any(|n| n.contains("not re-classified")));
        assert_eq!(m.exit_code, crate::exit::OK);

        // Without re-classified findings the client run's own exit code stands.
        let mut json = client_json();
        json["exit_code"] = crate::exit::FINDING.into();
        let client: ClientReport = serde_json::from_value(json).expect("client report");
        let m = merge_and_reclassify(&client, None, &capture(&["r1-1"])).expect("merged");
        assert_eq!(m.exit_code, crate::exit::FINDING);
    }

    #[test]
    fn an_unreachable_client_run_stays_unreachable_after_the_merge() {
        let mut json = client_json();
        json["exit_code"] = crate::exit::UNREACHABLE.into();
        let client: ClientReport = serde_json::from_value(json.clone()).expect("client report");
        let run: ClientRun = serde_json::from_value(json).expect("the run reads back whole");
        let m = merge_and_reclassify(&client, Some(&run), &capture(&["r1-1"])).expect("merged");
        assert_eq!(m.exit_code, crate::exit::UNREACHABLE);
    }
}
