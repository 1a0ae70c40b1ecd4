//! `lbprobe merge CLIENT.json BACKEND.json`: joins a `scan --marker` report with a
//! `backend --capture` report. A marked probe whose marker never reached the backend was
//! answered by the listener, definitively; one whose marker arrived was forwarded.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::capture::find_marker;

/// The parts of a client report the merge reads (the report's JSON, unknown fields ignored).
#[derive(Debug, Deserialize)]
pub struct ClientReport {
    pub observations: Vec<ClientObservation>,
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MergeReport {
    pub capture_port: u16,
    pub summary: MergeSummary,
    pub probes: Vec<MergedProbe>,
    pub notes: Vec<String>,
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
        notes,
    })
}
