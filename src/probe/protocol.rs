//! The `protocol` family: what each port speaks, plain HTTP to an HTTPS listener, TLS to a
//! plain one, and the baseline request every other comparison leans on.

use crate::target::Role;
use crate::transport::tls::{CertCheck, CertFault};
use crate::transport::{Endpoint, Sniff, Wire};

use super::context::{Engine, Planned, Side, Via};
use super::{request, Detail, Family, Observation, SentRequest};

/// Causes the sniff of a side's port speaks to (opaque to the engine).
pub const SNIFF_EVIDENCE: &[&str] = &[
    "400.backend-expects-https",
    "502.tls-handshake-failed-to-backend",
];

/// Causes the baseline GET speaks to.
pub const BASELINE_EVIDENCE: &[&str] = &[
    "400.backend-expects-https",
    "400.backend-validation",
    "500.backend-error",
    "502.backend-unreachable",
    "502.tls-handshake-failed-to-backend",
    "503.backend-error",
    "504.backend-dependency-timeout",
];

/// Causes plain HTTP sent to a listener's TLS port speaks to.
pub const PLAIN_TO_TLS_EVIDENCE: &[&str] = &["400.http-to-https-listener"];

/// The variant of plain HTTP sent straight to a backend port that speaks TLS: what a listener
/// that forwards plain HTTP there would get back.
pub const PLAIN_TO_TLS_BACKEND: &str = "plain-http-to-tls-backend";

/// Causes that answer speaks to.
pub const PLAIN_TO_TLS_BACKEND_EVIDENCE: &[&str] = &[
    "400.backend-expects-https",
    "502.tls-handshake-failed-to-backend",
];

/// Sniff a side's port. Returns the observation and, when the answer was clear, whether the
/// port speaks TLS.
pub async fn sniff(engine: &Engine, side: &Side) -> (Option<Observation>, Option<bool>) {
    let Ok(sniff) = engine.sniff(side).await else {
        return (None, None);
    };
    let tls = match &sniff {
        Sniff::Tls { .. } => Some(true),
        Sniff::PlainHttp { .. } => Some(false),
        _ => None,
    };
    if let Sniff::Tls {
        certificate: Some(check),
        ..
    } = &sniff
    {
        if let Some(note) = certificate_note(side, check) {
            engine.note(note);
        }
    }
    let obs = engine.observation(
        Family::Protocol,
        "sniff",
        side,
        true,
        SNIFF_EVIDENCE,
        SentRequest {
            text: "TLS ClientHello, then a plain GET if TLS fails".into(),
            bytes: 0,
            exact: false,
        },
        None,
        Detail::Sniff { sniff },
    );
    (Some(obs), tls)
}

/// What a person should know about a side's certificate before reading the direct probes'
/// answers: that requests to it fail their handshake, and what would let them through. A
/// verified certificate is worth a word only where the URL said http (the person did not know
/// it was TLS at all).
fn certificate_note(side: &Side, check: &CertCheck) -> Option<String> {
    let port = crate::transport::endpoint_label(&side.endpoint.host, side.endpoint.port, false);
    let role = side.role();
    match check {
        CertCheck::NotChecked => None,
        CertCheck::Verified { .. } if side.is_tls() => None,
        CertCheck::Verified { .. } => Some(format!(
            "the {role} port {port} speaks TLS; its certificate {}",
            check.words()
        )),
        CertCheck::Failed { fault, .. } => {
            let fix = if *fault == CertFault::CaAsServer {
                "rustls refuses such a certificate even from a CA file: fix the certificate, or give --insecure (tls-verify: false) to send them unverified"
            } else {
                "give --cacert (ca-file) with the CA that signed it, or --insecure (tls-verify: false) to send them unverified"
            };
            Some(format!(
                "the {role} port {port} speaks TLS; its certificate {}. Requests go over verified TLS only, so lbprobe's requests straight to this port fail their handshake ({fix})",
                check.words()
            ))
        }
    }
}

/// The baseline: a valid GET of the side's path.
pub fn baseline_request(side: &Side) -> Vec<u8> {
    request::build("GET", side, &[], None)
}

/// The baseline as it is sent: to the side over its own wire.
pub fn baseline(side: &Side) -> Planned {
    side.planned(
        Family::Protocol,
        "baseline",
        Via::Raw,
        baseline_request(side),
    )
}

/// The cross-protocol check for a side: for a listener, plain HTTP to a TLS port or a TLS
/// ClientHello to a plain one; for a backend that speaks TLS, plain HTTP to it (none for a
/// plain backend). The baseline's bytes over the other wire, with the causes it is evidence for.
pub fn cross(side: &Side) -> Option<(Planned, &'static [&'static str])> {
    let plain = Endpoint {
        wire: Wire::Plain,
        ..side.endpoint.clone()
    };
    let (variant, endpoint, evidence) = match (side.role(), side.is_tls()) {
        (Role::Listener, true) => ("plain-http-to-tls-port", plain, PLAIN_TO_TLS_EVIDENCE),
        (Role::Listener, false) => (
            "tls-to-plain-port",
            Endpoint {
                wire: Wire::Tls {
                    server_name: side.target.server_name().to_string(),
                    tls: crate::transport::tls::TlsSettings::insecure(),
                },
                ..side.endpoint.clone()
            },
            &[][..],
        ),
        (Role::Backend, true) => (PLAIN_TO_TLS_BACKEND, plain, PLAIN_TO_TLS_BACKEND_EVIDENCE),
        (Role::Backend, false) => return None,
    };
    let planned = side.planned_over(
        Family::Protocol,
        variant,
        endpoint,
        Via::Raw,
        baseline_request(side),
    );
    Some((planned, evidence))
}

/// What the opening sends a side: the baseline, and with `cross` the cross-protocol request.
/// The sniff before it and the ALPN offer after it carry no request of their own.
pub fn plan(side: &Side, cross: bool) -> Vec<Planned> {
    let mut out = vec![baseline(side)];
    if cross {
        out.extend(self::cross(side).map(|(planned, _)| planned));
    }
    out
}

/// The baseline (a valid GET) to every side, and, with `cross`, the cross-protocol requests.
pub async fn run(engine: &Engine, sides: &[Side], cross: bool) -> Vec<Observation> {
    let mut out = Vec::new();
    let baselines = futures_util::future::join_all(sides.iter().map(|side| async move {
        let planned = baseline(side);
        engine
            .send_planned(&planned, None)
            .await
            .ok()
            .map(|(sent, ex)| {
                engine.observation(
                    Family::Protocol,
                    planned.variant,
                    side,
                    true,
                    BASELINE_EVIDENCE,
                    sent,
                    Some(ex),
                    Detail::None,
                )
            })
    }))
    .await;
    out.extend(baselines.into_iter().flatten());
    if !cross {
        return out;
    }
    for side in sides {
        let Some((planned, evidence)) = self::cross(side) else {
            continue;
        };
        if let Ok((sent, ex)) = engine.send_planned(&planned, None).await {
            out.push(engine.observation(
                Family::Protocol,
                planned.variant.clone(),
                side,
                // Plain HTTP on a backend's TLS port says what the port does with the wrong
                // protocol, nothing of how the backend validates requests.
                planned.variant != PLAIN_TO_TLS_BACKEND,
                evidence,
                sent,
                Some(ex),
                Detail::None,
            ));
        }
    }
    out
}
