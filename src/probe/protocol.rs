//! The `protocol` family: what each port speaks, plain HTTP to an HTTPS listener, TLS to a
//! plain one, and the baseline request every other comparison leans on.

use futures_util::future::{BoxFuture, Either};

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
        SentRequest::described("TLS ClientHello, then a plain GET if TLS fails", 0, false),
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

/// The baseline to one side and, with `cross`, its cross-protocol request, at once: they go
/// over separate connections and neither waits on the other's answer, so a side that answers
/// neither costs its timeout once, not once per request.
async fn on_wire(engine: &Engine, side: &Side, cross: bool) -> Vec<Observation> {
    let baseline = async {
        let planned = baseline(side);
        let (sent, ex) = engine.send_planned(&planned, None).await.ok()?;
        Some(engine.observation(
            Family::Protocol,
            planned.variant,
            side,
            true,
            BASELINE_EVIDENCE,
            sent,
            Some(ex),
            Detail::None,
        ))
    };
    let crossed = async {
        let (planned, evidence) = self::cross(side).filter(|_| cross)?;
        let (sent, ex) = engine.send_planned(&planned, None).await.ok()?;
        Some(engine.observation(
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
        ))
    };
    let (baseline, crossed) = futures_util::future::join(baseline, crossed).await;
    baseline.into_iter().chain(crossed).collect()
}

/// What to do in a side's opening (see [`open`]).
#[derive(Debug, Clone, Copy)]
pub struct Opening {
    /// Sniff what the port speaks.
    pub sniff: bool,
    /// Talk to the side over the wire its sniff found when its URL says the other: the
    /// backend's direct probes must use the wire its port speaks.
    pub rewire: bool,
    /// Send the cross-protocol request.
    pub cross: bool,
    /// Offer h2 over ALPN to a TLS side.
    pub alpn: bool,
}

/// A sniff still running when its side's wire is settled without it.
pub type PendingSniff<'a> = BoxFuture<'a, Option<Observation>>;

/// One side as the opening left it: the wire settled, h2 noted, and what was observed.
pub struct Opened<'a> {
    pub side: Side,
    pub observations: Vec<Observation>,
    /// The sniff, when the opening did not need to wait for it: its observation comes when it
    /// ends, while the families run.
    pub pending: Option<PendingSniff<'a>>,
}

/// A side's opening, every request at once: the sniff, and over the URL's wire the baseline,
/// the cross-protocol request and the ALPN offer. A silent side costs one timeout, not one per
/// step. When the sniff finds the port speaks the other wire and `rewire` is set, what went over
/// the URL's wire is dropped and sent again over the wire found, with a note: a port that
/// speaks the other protocol refuses at once, so the redo costs a round trip, not a timeout.
///
/// The sniff decides nothing else before the families start. So the opening waits for it only
/// when it may change the wire: never without `rewire`, and not once the baseline got a complete
/// successful HTTP answer over the URL's wire (that wire is right). A backend slow to refuse the sniff's
/// ClientHello then delays no family; the sniff is left [`Opened::pending`].
pub async fn open(engine: &Engine, side: Side, opening: Opening) -> Opened<'_> {
    let mut sniffed: BoxFuture<'_, (Option<Observation>, Option<bool>)> = if opening.sniff {
        let sniff_side = side.clone();
        Box::pin(async move { sniff(engine, &sniff_side).await })
    } else {
        Box::pin(async { (None, None) })
    };
    let (sniff_result, (mut observations, h2)) = {
        let over_wire = over(engine, &side, opening);
        futures_util::pin_mut!(over_wire);
        match futures_util::future::select(&mut sniffed, over_wire).await {
            Either::Left((result, over_wire)) => (Some(result), over_wire.await),
            Either::Right((over, _)) => (None, over),
        }
    };
    let answered = observations.iter().any(|o| {
        o.variant == "baseline"
            && o.exchange
                .as_ref()
                .and_then(|e| e.response.as_ref())
                // A TLS port may answer plain HTTP with a complete 400 page of its own
                // ("plain HTTP request sent to HTTPS port"); only success proves the wire.
                .is_some_and(|r| r.complete && r.status < 400)
    });
    let (sniff_obs, tls, pending) = match sniff_result {
        Some((obs, tls)) => (obs, tls, None),
        None if !opening.rewire || answered => {
            let pending: PendingSniff<'_> = Box::pin(async move { sniffed.await.0 });
            (None, None, Some(pending))
        }
        None => {
            let (obs, tls) = sniffed.await;
            (obs, tls, None)
        }
    };
    let mut side = side;
    match tls.filter(|&tls| opening.rewire && tls != side.is_tls()) {
        None => side.h2 = h2,
        Some(tls) => {
            let speaks = if tls { "TLS" } else { "plain HTTP" };
            engine.note(format!(
                "the {} port {}:{} speaks {speaks} though its URL says {}; direct probes use {speaks}",
                side.role(),
                side.target.host,
                side.target.port,
                if side.is_tls() { "https" } else { "http" },
            ));
            side = Side::new(side.target.clone(), tls);
            let (again, h2) = over(engine, &side, opening).await;
            observations = again;
            side.h2 = h2;
        }
    }
    if side.h2 {
        super::h2::note(engine, &side);
    }
    Opened {
        side,
        observations: sniff_obs.into_iter().chain(observations).collect(),
        pending,
    }
}

/// The baseline, the cross-protocol request and the ALPN offer over the side's wire, at once;
/// and whether the side chose h2.
async fn over(engine: &Engine, side: &Side, opening: Opening) -> (Vec<Observation>, bool) {
    let alpn = async {
        if opening.alpn && side.is_tls() {
            super::h2::offer(engine, side).await
        } else {
            None
        }
    };
    let (mut out, alpn) =
        futures_util::future::join(on_wire(engine, side, opening.cross), alpn).await;
    let h2 = alpn.as_ref().is_some_and(|(h2, _)| *h2);
    out.extend(alpn.map(|(_, obs)| obs));
    (out, h2)
}
