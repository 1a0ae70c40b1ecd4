//! The `protocol` family's causes: plain HTTP sent to the listener's HTTPS port, and a listener
//! that forwards plain HTTP to a backend port that speaks TLS.

use crate::probe::protocol::PLAIN_TO_TLS_BACKEND;
use crate::probe::{Detail, Family, Observation};
use crate::target::Role;
use crate::transport::tls::{CertCheck, CertFault};
use crate::transport::{ConnEnd, Exchange, Sniff};

use super::super::{describe, Context, Draft, Verdict, View};
use super::{body_hint, Rule};

const HTTP_TO_HTTPS: &str = "400.http-to-https-listener";
const EXPECTS_HTTPS: &str = "400.backend-expects-https";

pub(super) const RULE: Rule = Rule {
    name: "protocol",
    causes: &[HTTP_TO_HTTPS, EXPECTS_HTTPS],
    decide: |view, ctx| {
        [
            http_to_https_listener(view, ctx),
            backend_expects_https(view, ctx),
        ]
        .into_iter()
        .flatten()
        .collect()
    },
};

fn http_to_https_listener(view: &View<'_>, ctx: &Context<'_>) -> Option<Draft> {
    const ID: &str = HTTP_TO_HTTPS;
    if ctx.listener_tls == Some(false) {
        return Some(Draft::new(
            ID,
            Verdict::RuledOut,
            "the listener is plain HTTP: there is no HTTPS port to send plain HTTP to",
        ));
    }
    let obs = view.find(Family::Protocol, "plain-http-to-tls-port", Role::Listener)?;
    let ex = obs.exchange.as_ref();
    let got = describe(ex);
    Some(match ex.and_then(Exchange::status) {
        Some(400) => Draft::new(
            ID,
            Verdict::Reproduced,
            "plain HTTP sent to the HTTPS listener gets 400",
        )
        .with(
            format!(
                "a valid GET in plain HTTP to the TLS port {} got {got}{}",
                ex.map_or("", |e| &e.endpoint),
                body_hint(ex)
            ),
            &[obs],
        ),
        None if ex.is_none_or(|e| e.end.never_connected() || e.end == ConnEnd::Timeout) => {
            Draft::new(
                ID,
                Verdict::Inconclusive,
                format!("plain HTTP to the HTTPS listener got no answer to judge by ({got})"),
            )
            .with(format!("plain HTTP to the TLS port: {got}"), &[obs])
        }
        _ => Draft::new(
            ID,
            Verdict::RuledOut,
            format!("plain HTTP to the HTTPS listener gets {got}, not 400"),
        )
        .with(format!("plain HTTP to the TLS port: {got}"), &[obs]),
    })
}

fn backend_expects_https(view: &View<'_>, ctx: &Context<'_>) -> Option<Draft> {
    const ID: &str = EXPECTS_HTTPS;
    let listener = view.find(Family::Protocol, "baseline", Role::Listener);
    let listener_ex = listener.and_then(|o| o.exchange.as_ref());
    let listener_status = listener_ex.and_then(Exchange::status);
    if !ctx.has_backend {
        return (listener_status == Some(400)).then(|| {
            Draft::new(
                ID,
                Verdict::Inconclusive,
                "a valid request gets 400 through the listener; name the backend to check whether its port expects TLS",
            )
            .with(format!("baseline GET via the listener: {}", describe(listener_ex)), &listener.into_iter().collect::<Vec<_>>())
        });
    }
    let sniff_obs = view.find(Family::Protocol, "sniff", Role::Backend)?;
    let Detail::Sniff { sniff } = &sniff_obs.detail else {
        return None;
    };
    match sniff {
        Sniff::PlainHttp { status } => Some(
            Draft::new(ID, Verdict::RuledOut, "the backend port speaks plain HTTP").with(
                format!("a plain GET to the backend port got an HTTP answer ({status})"),
                &[sniff_obs],
            ),
        ),
        Sniff::Tls {
            version,
            certificate,
        } => Some(tls_backend(
            view,
            ctx,
            sniff_obs,
            version.as_deref().unwrap_or("TLS"),
            certificate.as_ref(),
        )),
        Sniff::Neither { detail } => Some(
            Draft::new(
                ID,
                Verdict::Inconclusive,
                "the backend port answered neither TLS nor HTTP",
            )
            .with(detail.clone(), &[sniff_obs]),
        ),
        Sniff::Unreachable { end } => Some(
            Draft::new(
                ID,
                Verdict::Inconclusive,
                "the backend port could not be reached to see what it speaks",
            )
            .with(
                format!("the sniff of the backend port: {end}"),
                &[sniff_obs],
            ),
        ),
    }
}

/// Pages a TLS server answers plain HTTP with, lower case: what a listener relays when it
/// forwards plain HTTP to a TLS port.
const PLAIN_TO_TLS_PAGES: &[(&str, &str)] = &[
    ("the plain http request was sent to https port", "nginx"),
    (
        "speaking plain http to an ssl-enabled server port",
        "Apache httpd",
    ),
    (
        "client sent an http request to an https server",
        "Go net/http",
    ),
    ("this combination of host and port requires tls", "Tomcat"),
    (
        "plain http request sent to the https port",
        "the lbprobe lab backend",
    ),
];

/// The page of a TLS server refusing plain HTTP, when `ex`'s answer is one: whose page it is.
fn plain_to_tls_page(ex: &Exchange) -> Option<&'static str> {
    let body = ex
        .response
        .as_ref()?
        .body_prefix
        .text()
        .to_ascii_lowercase();
    PLAIN_TO_TLS_PAGES
        .iter()
        .find(|(phrase, _)| body.contains(phrase))
        .map(|&(_, whose)| whose)
}

/// `400.backend-expects-https` once the backend port is known to speak TLS. What the port
/// speaks comes from the sniff's handshake; whether the listener forwards plain HTTP comes
/// from what the listener relays. Neither depends on trusting the backend's certificate: lbprobe
/// sends requests only over verified TLS (unless told otherwise), so a certificate it cannot
/// verify leaves the direct answer missing, and is reported as its own fact.
fn tls_backend(
    view: &View<'_>,
    ctx: &Context<'_>,
    sniff_obs: &Observation,
    version: &str,
    certificate: Option<&CertCheck>,
) -> Draft {
    const ID: &str = EXPECTS_HTTPS;
    let listener = view.find(Family::Protocol, "baseline", Role::Listener);
    let listener_ex = listener.and_then(|o| o.exchange.as_ref());
    let listener_status = listener_ex.and_then(Exchange::status);
    let backend = view.find(Family::Protocol, "baseline", Role::Backend);
    let backend_ex = backend.and_then(|o| o.exchange.as_ref());
    let backend_status = backend_ex.and_then(Exchange::status);
    let listener_refs: Vec<&Observation> = listener.into_iter().collect();
    let backend_refs: Vec<&Observation> = backend.into_iter().collect();
    let handshake = format!("the backend port completed a {version} handshake");
    let direct = format!(
        "the same GET over TLS straight to the backend got {}",
        describe(backend_ex)
    );
    let cert_note = certificate.and_then(|c| certificate_note(c, ctx));
    let finish = |d: Draft| match &cert_note {
        Some(note) => d.with(note.clone(), &[sniff_obs]),
        None => d,
    };

    // nginx reads the TLS backend's alert as an HTTP/0.9 answer and relays its bytes
    // (access log status 009) instead of answering 400 or 502.
    let alert = listener_ex.and_then(tls_alert_record);
    // A listener spoken to in plain HTTP on its own TLS port shows the same page, its own.
    let listener_own_tls_port =
        ctx.listener_tls == Some(true) && listener_ex.is_some_and(|e| !e.tls);
    let page = listener_ex
        .filter(|_| listener_status == Some(400) && !listener_own_tls_port)
        .and_then(plain_to_tls_page);
    let backend_page = backend_ex.and_then(plain_to_tls_page);

    if let Some(seen) = &alert {
        return finish(
            Draft::new(
                ID,
                Verdict::Confirmed,
                "the backend port speaks TLS, the listener forwards plain HTTP to it",
            )
            .with(handshake, &[sniff_obs])
            .with(
                format!(
                    "a valid GET through the listener got no HTTP answer but a TLS alert record ({seen}): the listener relayed the backend's TLS alert as if it were an HTTP/0.9 answer (nginx logs it with status 009)"
                ),
                &listener_refs,
            )
            .with(direct, &backend_refs),
        );
    }
    if let Some(whose) = page.filter(|_| backend_page.is_none()) {
        return finish(
            Draft::new(
                ID,
                Verdict::Confirmed,
                "the backend port speaks TLS, the listener forwards plain HTTP to it",
            )
            .with(handshake, &[sniff_obs])
            .with(
                format!(
                    "a valid GET through the listener got {}{} — the page {whose} answers plain HTTP on a TLS port with",
                    describe(listener_ex),
                    body_hint(listener_ex)
                ),
                &listener_refs,
            )
            .with(direct, &backend_refs),
        );
    }
    if listener_status == Some(400) {
        return finish(match backend_status {
            Some(s) if s != 400 => Draft::new(
                ID,
                Verdict::Confirmed,
                "the backend port speaks TLS, the listener forwards plain HTTP to it",
            )
            .with(handshake, &[sniff_obs])
            .with(
                format!(
                    "a valid GET through the listener got {}{}",
                    describe(listener_ex),
                    body_hint(listener_ex)
                ),
                &listener_refs,
            )
            .with(direct, &backend_refs),
            Some(_) => Draft::new(
                ID,
                Verdict::Inconclusive,
                format!(
                    "the backend speaks TLS and a valid request through the listener gets 400, but the same request over TLS straight to the backend gets {} too: the 400 may be the backend's own",
                    describe(backend_ex)
                ),
            )
            .with(handshake, &[sniff_obs])
            .with(direct, &backend_refs),
            None => Draft::new(
                ID,
                Verdict::Inconclusive,
                format!(
                    "the backend speaks TLS and a valid request through the listener gets 400, with no page that says why; the backend could not be asked directly ({}), so the 400 may be the listener's own or the backend's",
                    describe(backend_ex)
                ),
            )
            .with(handshake, &[sniff_obs])
            .with(
                format!("a valid GET through the listener got {}{}", describe(listener_ex), body_hint(listener_ex)),
                &listener_refs,
            ),
        });
    }
    // What the backend port answers plain HTTP with, when it answers with HTTP at all.
    let plain_answer = view
        .find(Family::Protocol, PLAIN_TO_TLS_BACKEND, Role::Backend)
        .filter(|o| o.exchange.as_ref().and_then(Exchange::status).is_some())
        .map(|o| (o, describe(o.exchange.as_ref())));
    let Some(l) = listener_ex else {
        return finish(
            Draft::new(
                ID,
                Verdict::Inconclusive,
                format!(
                    "the backend port speaks {version}; name the listener to see what it forwards"
                ),
            )
            .with(handshake, &[sniff_obs]),
        );
    };
    match (listener_status, plain_answer) {
        // Something behind the listener answered a valid request the usual way.
        (Some(s), _) if s < 500 => finish(
            Draft::new(
                ID,
                Verdict::RuledOut,
                format!(
                    "the backend speaks TLS, but a valid request through the listener gets {}, not 400",
                    describe(Some(l))
                ),
            )
            .with(handshake, &[sniff_obs])
            .with(
                format!("a valid GET through the listener got {}", describe(Some(l))),
                &listener_refs,
            ),
        ),
        // The port answers plain HTTP with an HTTP page: a listener forwarding plain HTTP to it
        // would have relayed that page, not given this error.
        (Some(_), Some((plain, got))) => finish(
            Draft::new(
                ID,
                Verdict::RuledOut,
                format!(
                    "the backend speaks TLS and answers plain HTTP with {got}, which a listener forwarding plain HTTP would relay; the listener answers {} instead (see 502.tls-handshake-failed-to-backend)",
                    describe(Some(l))
                ),
            )
            .with(handshake, &[sniff_obs])
            .with(
                format!("a valid GET through the listener got {}", describe(Some(l))),
                &listener_refs,
            )
            .with(
                format!("plain HTTP straight to the backend's TLS port got {got}"),
                &[plain],
            ),
        ),
        // A TLS server that closes on plain HTTP makes the listener answer 502 as surely as a
        // listener that speaks TLS but does not trust the certificate: neither is ruled out.
        _ => finish(
            Draft::new(
                ID,
                Verdict::Inconclusive,
                format!(
                    "the backend speaks TLS and a valid request through the listener gets {}: a listener forwarding plain HTTP to a TLS port that closes on it answers so, and so does one that speaks TLS to it but cannot set the connection up (its certificate check); the listener's error log tells them apart",
                    describe(Some(l))
                ),
            )
            .with(handshake, &[sniff_obs])
            .with(
                format!("a valid GET through the listener got {}", describe(Some(l))),
                &listener_refs,
            ),
        ),
    }
}

/// The backend certificate as its own fact: whether it verifies against what the user trusts,
/// and, when it does not, what a listener that forwards over TLS would need. `None` when
/// verification is off.
fn certificate_note(check: &CertCheck, ctx: &Context<'_>) -> Option<String> {
    let CertCheck::Failed { fault, .. } = check else {
        return match check {
            CertCheck::Verified { .. } => {
                Some(format!("the backend's certificate {}", check.words()))
            }
            _ => None,
        };
    };
    let (skip, trust, name) = match ctx.profile.name.as_str() {
        "nginx" | "clb" => (
            "nginx proxy_ssl_verify off, the default",
            "proxy_ssl_trusted_certificate",
            "proxy_ssl_name",
        ),
        "haproxy" => (
            "HAProxy `verify none` on the server line",
            "`ca-file` on the server line",
            "`verifyhost` on the server line",
        ),
        _ => (
            "nginx proxy_ssl_verify off, the default; HAProxy `verify none`",
            "nginx proxy_ssl_trusted_certificate; HAProxy `ca-file`",
            "nginx proxy_ssl_name; HAProxy `verifyhost`",
        ),
    };
    let need = match fault {
        CertFault::UnknownIssuer | CertFault::CaAsServer => {
            format!("skip verification ({skip}) or trust this CA ({trust})")
        }
        CertFault::WrongName => {
            format!("skip verification ({skip}) or check the name the certificate carries ({name})")
        }
        CertFault::Expired | CertFault::NotYetValid => {
            format!("skip verification ({skip}) or a certificate valid now")
        }
        CertFault::Other => format!("skip verification ({skip}) or a certificate that verifies"),
    };
    Some(format!(
        "the backend's certificate {}; a listener that forwards to it over TLS would need to {need}",
        check.words()
    ))
}

/// When an exchange got no HTTP answer but bytes that start a TLS alert record (content type
/// 0x15, version 0x03xx), what they say: the bytes, the level and the alert's name.
fn tls_alert_record(ex: &Exchange) -> Option<String> {
    if ex.response.is_some() {
        return None;
    }
    let raw = ex.raw_prefix.as_bytes();
    if raw.len() < 2 || raw[0] != 0x15 || raw[1] != 0x03 {
        return None;
    }
    // Every byte in hex: an alert is binary, and `\x022` (0x02 then "2") would mislead.
    let mut shown: String = raw.iter().take(16).map(|b| format!("\\x{b:02x}")).collect();
    if raw.len() > 16 {
        shown.push('…');
    }
    // A record header is 5 bytes; the alert's level and description follow.
    let (Some(&level), Some(&description)) = (raw.get(5), raw.get(6)) else {
        return Some(format!("\"{shown}\""));
    };
    let level = match level {
        1 => "warning".to_string(),
        2 => "fatal".to_string(),
        n => format!("level {n}"),
    };
    let name = match description {
        0 => "close_notify".to_string(),
        10 => "unexpected_message".to_string(),
        40 => "handshake_failure".to_string(),
        50 => "decode_error".to_string(),
        70 => "protocol_version".to_string(),
        80 => "internal_error".to_string(),
        n => format!("description {n}"),
    };
    Some(format!("\"{shown}\": {level} alert {name}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::ConnEnd;

    fn no_http_answer(raw: &[u8]) -> Exchange {
        Exchange {
            bytes_out: 100,
            bytes_in: raw.len(),
            raw_prefix: crate::transport::WireBytes::from(raw),
            ..Exchange::ended("127.0.0.1:1", ConnEnd::Fin)
        }
    }

    #[test]
    fn tls_alert_records_are_told_from_other_bytes() {
        let cases: &[(&[u8], Option<&str>)] = &[
            (
                b"\x15\x03\x03\x00\x02\x02\x32",
                Some("\"\\x15\\x03\\x03\\x00\\x02\\x02\\x32\": fatal alert decode_error"),
            ),
            (
                b"\x15\x03\x01\x00\x02\x01\x63",
                Some("\"\\x15\\x03\\x01\\x00\\x02\\x01\\x63\": warning alert description 99"),
            ),
            // Cut short: the bytes alone.
            (b"\x15\x03\x03", Some("\"\\x15\\x03\\x03\"")),
            (b"\x16\x03\x03\x00\x02\x02\x32", None),
            (b"\x15\x02", None),
            (b"HTTP/1.1 400", None),
            (b"", None),
        ];
        for (raw, want) in cases {
            assert_eq!(
                tls_alert_record(&no_http_answer(raw)).as_deref(),
                *want,
                "{raw:?}"
            );
        }
    }
}
