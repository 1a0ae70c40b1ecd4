//! `502.tls-handshake-failed-to-backend`: the listener speaks TLS to the backend and its
//! handshake fails (a certificate that expired, names another host or comes from a CA the
//! listener does not trust; no shared TLS version), so it answers 502 itself.
//!
//! From outside, the listener's own 502 with a TLS backend has two readings: a verifying
//! listener refusing the certificate, or a listener forwarding plain HTTP to a TLS port that
//! closes on it (`400.backend-expects-https`). The backend's answer to plain HTTP tells them
//! apart: a port that answers it with an HTTP page would have had that page relayed.

use crate::probe::protocol::PLAIN_TO_TLS_BACKEND;
use crate::probe::{Detail, Family, Observation};
use crate::profile::Basis;
use crate::target::Role;
use crate::transport::tls::{CertCheck, CertFault};
use crate::transport::{ConnEnd, Exchange, Sniff};

use super::super::attribution::Product;
use super::super::{describe, Context, Draft, Evidence, Origin, Pair, Verdict, View};
use super::Rule;

const ID: &str = "502.tls-handshake-failed-to-backend";

pub(super) const RULE: Rule = Rule {
    name: "tls-to-backend",
    causes: &[ID],
    decide: |view, ctx| decide(view, ctx).into_iter().collect(),
};

fn decide(view: &View<'_>, ctx: &Context<'_>) -> Option<Draft> {
    let pairs = view.pairs(Family::Protocol);
    let baseline = pairs.iter().find(|p| p.variant == "baseline");
    let listener_ex = baseline.and_then(Pair::listener_ex);
    let listener_refs: Vec<&Observation> = baseline.and_then(|p| p.listener).into_iter().collect();
    let through = format!(
        "a valid GET through the listener got {}",
        describe(listener_ex)
    );
    let sniffed = view
        .find(Family::Protocol, "sniff", Role::Backend)
        .and_then(|o| match &o.detail {
            Detail::Sniff { sniff } => Some((o, sniff)),
            _ => None,
        });

    if let Some((o, Sniff::PlainHttp { status })) = sniffed {
        return Some(
            Draft::new(
                ID,
                Verdict::RuledOut,
                "the backend port speaks plain HTTP: there is no TLS handshake to fail",
            )
            .with(
                format!("a plain GET to the backend port got an HTTP answer ({status})"),
                &[o],
            ),
        );
    }
    let tls = sniffed.filter(|(_, s)| matches!(s, Sniff::Tls { .. }));
    let Some(status) = listener_ex.and_then(Exchange::status) else {
        // No HTTP answer from the listener: nothing of its own to read.
        return tls.map(|(o, _)| {
            Draft::new(
                ID,
                Verdict::Inconclusive,
                format!(
                    "the listener gave no HTTP answer to a valid GET ({}): there is no 502 to explain",
                    describe(listener_ex)
                ),
            )
            .with(handshake_text(o), &[o])
        });
    };
    let baseline = baseline?;
    let (origin, why) = baseline.origin();
    if status < 500 || origin == Origin::Backend {
        // The backend's answer came through (the connection to it is set up), or the listener
        // answered something other than the error a failed handshake gets.
        let reason = if origin == Origin::Backend {
            format!(
                "the backend speaks TLS and the listener relays its answer to a valid GET ({}): its connection to the backend is set up",
                describe(listener_ex)
            )
        } else {
            format!(
                "the backend speaks TLS and a valid GET through the listener gets {}, not the 502 of a failed handshake with the backend",
                describe(listener_ex)
            )
        };
        return tls.map(|(o, sniff)| {
            let d = Draft::new(ID, Verdict::RuledOut, reason)
                .with(format!("{through} ({why})"), &listener_refs)
                .with(handshake_text(o), &[o]);
            with_certificate(d, o, sniff)
        });
    }
    // nginx and Apache answer a failed backend handshake with 502; HAProxy answers 503, as it
    // does every connection to a server that fails, and as it does when no server is up at all.
    let haproxy_503 = status == 503 && baseline.listener_is == Some(Product::Haproxy);
    if status != 502 && !haproxy_503 {
        return None;
    }
    let Some((sniff_obs, sniff)) = sniffed else {
        let reason = if ctx.has_backend {
            format!("the listener answers a valid GET with its own {status}, and the backend port was not sniffed to see what it presents")
        } else {
            format!("the listener answers a valid GET with its own {status}; name the backend (--backend) to see whether the TLS handshake to it is what fails")
        };
        return Some(
            Draft::new(ID, Verdict::Inconclusive, reason)
                .with(format!("{through} ({why})"), &listener_refs),
        );
    };
    let Sniff::Tls { certificate, .. } = sniff else {
        let what = match sniff {
            Sniff::Unreachable { end } => {
                format!("lbprobe could not reach the backend port ({end}) to see what it presents")
            }
            Sniff::Neither { detail } => format!(
                "the backend port answered neither TLS nor HTTP ({detail}), so there is no certificate to read"
            ),
            _ => "the backend port was not sniffed".into(),
        };
        return Some(
            Draft::new(
                ID,
                Verdict::Inconclusive,
                format!("the listener answers a valid GET with its own {status}, and {what}"),
            )
            .with(format!("{through} ({why})"), &listener_refs)
            .with(what.clone(), &[sniff_obs]),
        );
    };
    let backend = view.find(Family::Protocol, "baseline", Role::Backend);
    let backend_ex = backend.and_then(|o| o.exchange.as_ref());
    let backend_refs: Vec<&Observation> = backend.into_iter().collect();
    let direct = format!(
        "the same GET straight to the backend over verified TLS got {}",
        describe(backend_ex)
    );
    let failed_the_same =
        backend_ex.is_some_and(|e| e.response.is_none() && matches!(e.end, ConnEnd::TlsFailed(_)));

    let mut missing: Vec<String> = Vec::new();
    if origin != Origin::Listener {
        missing.push(format!(
            "whether the {status} is the listener's own is unclear ({why})"
        ));
    }
    if haproxy_503 {
        missing.push(
            "HAProxy answers this same 503 when its TLS handshake with the server fails and when no server is up at all (503.no-backends); its access log tells them apart (the server's name with termination state SC, or <NOSRV>)"
                .into(),
        );
    }
    // What the port answers plain HTTP with: a listener forwarding plain HTTP gets the same.
    let plain = view.find(Family::Protocol, PLAIN_TO_TLS_BACKEND, Role::Backend);
    let plain_ex = plain.and_then(|o| o.exchange.as_ref());
    let relayed_otherwise = match plain_ex.map(|e| (e, e.status())) {
        Some((_, Some(_))) => true,
        Some((e, None)) if !e.end.never_connected() => {
            missing.push(format!(
                "the backend port gives plain HTTP no HTTP answer, so a listener forwarding plain HTTP to it answers {status} too (400.backend-expects-https); the listener's error log tells the two apart (nginx \"upstream SSL certificate verify error\" or \"SSL_do_handshake() failed\", HAProxy termination state SC with the server's name)"
            ));
            false
        }
        _ => {
            missing.push(
                "what the backend port answers plain HTTP with is not known (the protocol family sends it): a listener forwarding plain HTTP to a TLS port that closes on it answers an error of its own as well"
                    .into(),
            );
            false
        }
    };
    let mut declared = None;
    match certificate {
        Some(CertCheck::Failed { fault, against, .. }) => match fault {
            CertFault::Expired | CertFault::NotYetValid | CertFault::WrongName => {}
            CertFault::UnknownIssuer if against.starts_with("the CA file") => {
                declared = Some(format!(
                    "the backend's certificates are to be trusted through {against} (you gave it): a listener trusting the same CA refuses this one"
                ));
            }
            _ => missing.push(format!(
                "the certificate fails against {against}, but the listener may trust the CA that signed it: give --cacert (ca-file) with the CA the listener trusts (nginx proxy_ssl_trusted_certificate, HAProxy ca-file) to tell"
            )),
        },
        Some(CertCheck::Verified { against }) => missing.push(format!(
            "the backend's certificate verifies against {against}; a listener that trusts another CA, checks another name (nginx proxy_ssl_name, HAProxy verifyhost) or allows other TLS versions fails where lbprobe succeeds, and its error log says which"
        )),
        Some(CertCheck::NotChecked) => missing.push(
            "certificate verification is off (--insecure), so the backend's certificate was not checked: run without it, with --cacert naming the CA the listener trusts"
                .into(),
        ),
        None => missing.push(format!(
            "lbprobe could not complete a TLS handshake with the backend either ({}): it may offer no TLS version or cipher lbprobe accepts (TLS 1.2 and 1.3), which a listener allowing older ones would accept; the listener's error log says",
            describe(backend_ex)
        )),
    }
    if !failed_the_same
        && certificate
            .as_ref()
            .is_some_and(|c| matches!(c, CertCheck::Failed { .. }))
    {
        missing.push(format!(
            "lbprobe's own verified GET to the backend did not fail its handshake ({})",
            describe(backend_ex)
        ));
    }

    let (verdict, reason) = if missing.is_empty() && relayed_otherwise {
        let words = certificate.as_ref().map_or(String::new(), CertCheck::words);
        (
            Verdict::Confirmed,
            format!(
                "the listener answers its own {status} while the backend's certificate {words}; a listener that verifies it refuses the handshake"
            ),
        )
    } else {
        (
            Verdict::Inconclusive,
            format!(
                "the listener answers its own {status} to a valid GET and the backend speaks TLS, but {}",
                missing.join("; ")
            ),
        )
    };
    let mut d = Draft::new(ID, verdict, reason)
        .with(format!("{through} ({why})"), &listener_refs)
        .with(handshake_text(sniff_obs), &[sniff_obs]);
    d = with_certificate(d, sniff_obs, sniff);
    if let Some(o) = plain {
        let got = describe(plain_ex);
        let seen = match plain_ex.and_then(Exchange::status) {
            Some(status) => format!(
                "plain HTTP straight to the backend's TLS port got {got}: a listener forwarding plain HTTP would have relayed that {status}, not answered its own error"
            ),
            None => format!("plain HTTP straight to the backend's TLS port got {got}"),
        };
        d = d.with(seen, &[o]);
    }
    d = d.with(direct, &backend_refs);
    if let Some(text) = declared {
        d.evidence.push(Evidence {
            text,
            basis: Basis::Declared,
            observations: Vec::new(),
        });
    }
    Some(d)
}

/// `the backend port completed a TLSv1.3 handshake`.
fn handshake_text(sniff_obs: &Observation) -> String {
    match &sniff_obs.detail {
        Detail::Sniff {
            sniff:
                Sniff::Tls {
                    version: Some(v),
                    certificate: Some(_),
                    ..
                },
        } => format!("the backend port completed a {v} handshake"),
        _ => "the backend port answers a TLS handshake".into(),
    }
}

/// The backend certificate's check, in words, as evidence.
fn with_certificate(d: Draft, sniff_obs: &Observation, sniff: &Sniff) -> Draft {
    match sniff {
        Sniff::Tls {
            certificate: Some(c),
            ..
        } => d.with(
            format!("the backend's certificate {}", c.words()),
            &[sniff_obs],
        ),
        _ => d,
    }
}
