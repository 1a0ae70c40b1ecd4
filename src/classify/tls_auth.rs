//! `400.client-certificate-required`: a listener set up for mutual TLS, read from the baseline's
//! answer (nginx's own 400 page) or from how its handshake ended (HAProxy's alert).

use crate::probe::Family;
use crate::target::Role;
use crate::transport::tls::PeerAlert;
use crate::transport::Exchange;

use super::rules::Rule;
use super::{describe, Context, Draft, Verdict, View};

const ID: &str = "400.client-certificate-required";

/// What the listener said about the client certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Demand {
    /// It asked for one and none came.
    Missing,
    /// One came and it refused it.
    Refused,
}

/// nginx names both in its error page's title; TLS alerts name them (in the words
/// [`crate::transport::tls::error_words`] gives rustls's alert names).
fn demand(ex: &Exchange) -> Option<Demand> {
    if let Some(r) = &ex.response {
        if r.status == 400 {
            let body = r.body_prefix.text();
            if body.contains("No required SSL certificate was sent") {
                return Some(Demand::Missing);
            }
            if body.contains("The SSL certificate error") {
                return Some(Demand::Refused);
            }
        }
    }
    match ex.end.peer_alert()? {
        PeerAlert::CertificateRequired => Some(Demand::Missing),
        PeerAlert::BadCertificate
        | PeerAlert::UnknownCa
        | PeerAlert::CertificateExpired
        | PeerAlert::CertificateUnknown => Some(Demand::Refused),
    }
}

pub(crate) const RULE: Rule = Rule {
    name: "tls-auth",
    causes: &[ID],
    decide: |view, ctx| drafts(view, ctx).into_iter().collect(),
};

fn drafts(view: &View<'_>, ctx: &Context<'_>) -> Option<Draft> {
    if ctx.listener_tls != Some(true) {
        return None;
    }
    let o = view.find(Family::Protocol, "baseline", Role::Listener)?;
    let ex = o.exchange.as_ref()?;
    let got = describe(Some(ex));
    Some(match demand(ex) {
        Some(Demand::Missing) => Draft::new(
            ID,
            Verdict::Reproduced,
            "the listener requires a client certificate and none was presented: every request of a client without one gets this answer, so give lbprobe one (--cert/--key, client-cert) to probe past it",
        )
        .with(format!("baseline GET through the listener: {got}"), &[o]),
        Some(Demand::Refused) => Draft::new(
            ID,
            Verdict::Reproduced,
            "the listener requires a client certificate and refused the one presented (its chain, dates or usage do not pass the listener's checks)",
        )
        .with(format!("baseline GET through the listener: {got}"), &[o]),
        None if ex.status().is_some_and(|s| s != 400) => Draft::new(
            ID,
            Verdict::RuledOut,
            "the listener answers a valid GET over TLS without refusing the client's certificate or its absence",
        )
        .with(format!("baseline GET through the listener: {got}"), &[o]),
        None => return None,
    })
}
