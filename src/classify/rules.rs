//! One function per cause (or group of causes) this run's probes can speak to.

use crate::probe::{Detail, Family, Observation};
use crate::target::Role;
use crate::transport::tls::{CertCheck, CertFault};
use crate::transport::{ConnEnd, Exchange, Sniff};

use super::{describe, truncate, Context, Draft, Origin, Pair, Verdict, View};

/// Codes that have a `<code>.passthrough` cause.
const PASSTHROUGH_CODES: &[u16] = &[400, 405, 408, 414, 499, 500, 502, 503, 504];

pub(crate) fn all(view: &View<'_>, ctx: &Context<'_>) -> Vec<Draft> {
    let mut out = Vec::new();
    out.extend(http_to_https_listener(view, ctx));
    out.extend(backend_expects_https(view, ctx));
    out.extend(malformed_request(view));
    out.extend(backend_validation(view));
    out.extend(trace_unsupported(view, ctx));
    out.extend(backend_method_unsupported(view));
    out.extend(backend_answers_valid_request(view));
    out.extend(passthrough(view));
    out.extend(super::limits::drafts(view, ctx));
    out.extend(super::partial::drafts(view, ctx));
    out.extend(super::timing::drafts(view, ctx));
    out.extend(super::response::drafts(view, ctx));
    out.extend(super::rate::drafts(view, ctx));
    out.extend(super::mtu::drafts(view, ctx));
    out.extend(super::keepalive::drafts(view, ctx));
    out.extend(super::pool::drafts(view, ctx));
    out.extend(super::tls_auth::drafts(view, ctx));
    out
}

fn body_hint(ex: Option<&Exchange>) -> String {
    match ex.and_then(|e| e.response.as_ref()) {
        Some(r) if !r.body_prefix.is_empty() => {
            format!(" — body \"{}\"", truncate(&r.body_prefix, 80))
        }
        _ => String::new(),
    }
}

fn http_to_https_listener(view: &View<'_>, ctx: &Context<'_>) -> Option<Draft> {
    const ID: &str = "400.http-to-https-listener";
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
    const ID: &str = "400.backend-expects-https";
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
    let body = ex.response.as_ref()?.body_prefix.to_ascii_lowercase();
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
    const ID: &str = "400.backend-expects-https";
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
    match listener_status {
        // Something behind the listener answered a valid request the usual way.
        Some(s) if s < 500 => finish(
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
    let raw = crate::transport::unescape_bytes(&ex.raw_prefix).ok()?;
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

fn malformed_request(view: &View<'_>) -> Option<Draft> {
    const ID: &str = "400.malformed-request";
    let pairs = view.pairs(Family::Malformed);
    let control = pairs.iter().find(|p| p.variant == "control");
    if let Some(c) = control {
        if c.listener_status() == Some(400) {
            return Some(
                Draft::new(
                    ID,
                    Verdict::Inconclusive,
                    "the listener answers even the valid control request with 400",
                )
                .with(
                    format!("control via the listener: {}", describe(c.listener_ex())),
                    &c.observations(),
                ),
            );
        }
    }
    let tried: Vec<&Pair<'_>> = pairs
        .iter()
        .filter(|p| {
            p.variant != "control"
                && p.listener
                    .is_some_and(|o| o.evidence_for.iter().any(|e| e == ID))
        })
        .collect();
    if tried.is_empty() {
        return None;
    }
    let mut hits = Vec::new();
    for p in &tried {
        if p.listener_status() == Some(400) {
            let (origin, why) = p.origin();
            if origin != Origin::Backend {
                hits.push((p, why));
            }
        }
    }
    if hits.is_empty() {
        // Ruled out only if the listener answered (or closed on) at least one variant: a run
        // where every variant timed out or never connected says nothing.
        let reached = tried.iter().any(|p| {
            p.listener_ex().is_some_and(|e| {
                let silent = e.response.is_none() && e.end == ConnEnd::Timeout;
                !(e.end.never_connected() || silent)
            })
        });
        let (verdict, reason) = if reached {
            (
                Verdict::RuledOut,
                format!(
                    "none of the {} malformed variants got 400 from the listener",
                    tried.len()
                ),
            )
        } else {
            (
                Verdict::Inconclusive,
                "the listener could not be reached or stayed silent: no malformed variant got an answer"
                    .to_string(),
            )
        };
        let mut d = Draft::new(ID, verdict, reason);
        for p in &tried {
            d = d.with(
                format!("{}: listener {}", p.variant, describe(p.listener_ex())),
                &p.observations(),
            );
        }
        return Some(d);
    }
    let names: Vec<&str> = hits.iter().map(|(p, _)| p.variant).collect();
    let mut d = Draft::new(
        ID,
        Verdict::Reproduced,
        format!("the listener answers 400 to: {}", names.join(", ")),
    );
    for (p, why) in &hits {
        let backend = match p.backend {
            Some(_) => format!("; straight to the backend: {}", describe(p.backend_ex())),
            None => String::new(),
        };
        d = d.with(
            format!(
                "{}: listener {}{backend} ({why})",
                p.variant,
                describe(p.listener_ex())
            ),
            &p.observations(),
        );
    }
    Some(d)
}

/// Well-formed requests of every family, paired.
fn well_formed_pairs<'a>(view: &View<'a>) -> Vec<(Family, Pair<'a>)> {
    view.all_pairs()
        .into_iter()
        .filter(|(f, p)| {
            // Sized requests of limit searches are refused by size, not by validation.
            matches!(
                f,
                Family::Protocol
                    | Family::Malformed
                    | Family::Methods
                    | Family::Latency
                    | Family::Response
            ) && p.observations().iter().all(|o| o.well_formed)
                && !matches!(
                    crate::probe::h2::h1_twin(p.variant).unwrap_or(p.variant),
                    "CONNECT" | "TRACE" | "plain-http-to-tls-port" | "tls-to-plain-port" | "alpn"
                )
        })
        .collect()
}

fn backend_validation(view: &View<'_>) -> Option<Draft> {
    const ID: &str = "400.backend-validation";
    let pairs = well_formed_pairs(view);
    // Only requests the backend answered can speak to its validation.
    let direct: Vec<&(Family, Pair<'_>)> = pairs
        .iter()
        .filter(|(_, p)| p.backend_status().is_some())
        .collect();
    if direct.is_empty() {
        return None;
    }
    let rejected: Vec<&&(Family, Pair<'_>)> = direct
        .iter()
        .filter(|(_, p)| p.backend_status() == Some(400))
        .collect();
    if rejected.is_empty() {
        let refs: Vec<&Observation> = direct.iter().filter_map(|(_, p)| p.backend).collect();
        let n = direct.len();
        let what = if n == 1 {
            "valid request"
        } else {
            "valid requests"
        };
        return Some(
            Draft::new(
                ID,
                Verdict::RuledOut,
                format!("the backend accepts the {n} {what} sent straight to it"),
            )
            .with(
                format!("{n} {what} straight to the backend got no 400"),
                &refs,
            ),
        );
    }
    let mut d = Draft::new(
        ID,
        Verdict::Reproduced,
        "valid requests fail the backend's own validation with 400",
    );
    for (family, p) in rejected.iter().take(5) {
        let through = match p.listener {
            Some(_) => {
                let (origin, why) = p.origin();
                let passed = if origin == Origin::Backend {
                    "the listener passes it on"
                } else {
                    "the listener answers"
                };
                format!(
                    "; through the listener: {} ({passed}: {why})",
                    describe(p.listener_ex())
                )
            }
            None => String::new(),
        };
        d = d.with(
            format!(
                "{family} {}: the backend answers {}{}{through}",
                p.variant,
                describe(p.backend_ex()),
                body_hint(p.backend_ex())
            ),
            &p.observations(),
        );
    }
    Some(d)
}

/// TRACE over HTTP/1.1 decides; over h2, where the listener negotiated it, the answer joins
/// the evidence (and says so when it differs: a listener may refuse TRACE in one protocol only).
fn trace_unsupported(view: &View<'_>, ctx: &Context<'_>) -> Option<Draft> {
    let mut d = trace_unsupported_h1(view, ctx)?;
    let h2 = crate::probe::h2::variant("TRACE");
    let pairs = view.pairs(Family::Methods);
    let Some(p) = pairs
        .iter()
        .find(|p| p.variant == h2 && p.listener.is_some())
    else {
        return Some(d);
    };
    let h1_status = pairs
        .iter()
        .find(|p| p.variant == "TRACE")
        .and_then(|p| p.listener_status());
    let differs = if p.listener_status() != h1_status {
        " — not what HTTP/1.1 clients get"
    } else {
        ""
    };
    d = d.with(
        format!(
            "TRACE over HTTP/2 via the listener: {}{differs}",
            describe(p.listener_ex())
        ),
        &p.observations(),
    );
    Some(d)
}

fn trace_unsupported_h1(view: &View<'_>, ctx: &Context<'_>) -> Option<Draft> {
    const ID: &str = "405.trace-unsupported";
    let pairs = view.pairs(Family::Methods);
    let Some(p) = pairs
        .iter()
        .find(|p| p.variant == "TRACE" && p.listener.is_some())
    else {
        // The family stopped before TRACE (its error budget): say why, if the listener was
        // unreachable.
        let failed: Vec<&Observation> = pairs
            .iter()
            .filter_map(|p| p.listener)
            .filter(|o| o.exchange.as_ref().is_some_and(|e| e.end.never_connected()))
            .collect();
        return (!failed.is_empty()).then(|| {
            Draft::new(
                ID,
                Verdict::Inconclusive,
                "the listener could not be reached, so TRACE was never sent",
            )
            .with(
                format!(
                    "{} method checks failed to connect before TRACE",
                    failed.len()
                ),
                &failed,
            )
        });
    };
    let got = describe(p.listener_ex());
    if p.listener_ex().is_some_and(|e| e.end.never_connected()) {
        return Some(
            Draft::new(
                ID,
                Verdict::Inconclusive,
                format!("the listener could not be reached to send it TRACE ({got})"),
            )
            .with(format!("TRACE via the listener: {got}"), &p.observations()),
        );
    }
    Some(if p.listener_status() == Some(405) {
        let (origin, why) = p.origin();
        if origin == Origin::Backend {
            Draft::new(ID, Verdict::RuledOut, "the 405 to TRACE is the backend's, passed on by the listener (see 405.backend-method-unsupported)")
                .with(format!("TRACE via the listener: {got} ({why})"), &p.observations())
        } else {
            let d = Draft::new(
                ID,
                Verdict::Reproduced,
                "the listener itself answers TRACE with 405",
            )
            .with(
                format!("TRACE via the listener: {got} ({why})"),
                &p.observations(),
            );
            match ctx.profile.trace_allowed() {
                Some(c) if c.value => d.cites(
                    &c,
                    format!("{} TRACE as allowed; this listener refuses it", c.who),
                ),
                _ => d,
            }
        }
    } else if p.listener_status().is_none() {
        Draft::new(
            ID,
            Verdict::Inconclusive,
            format!("the listener gave no HTTP answer to TRACE ({got})"),
        )
        .with(format!("TRACE via the listener: {got}"), &p.observations())
    } else {
        let (origin, why) = p.origin();
        let reason = if origin == Origin::Backend {
            format!("the listener passes TRACE on (the backend answers it: {got})")
        } else {
            format!("the listener answers TRACE with {got}, not 405")
        };
        Draft::new(ID, Verdict::RuledOut, reason).with(
            format!("TRACE via the listener: {got} ({why})"),
            &p.observations(),
        )
    })
}

fn backend_method_unsupported(view: &View<'_>) -> Option<Draft> {
    const ID: &str = "405.backend-method-unsupported";
    let pairs = view.pairs(Family::Methods);
    let direct: Vec<&Pair<'_>> = pairs.iter().filter(|p| p.backend.is_some()).collect();
    if direct.is_empty() {
        return None;
    }
    let refused: Vec<&&Pair<'_>> = direct
        .iter()
        .filter(|p| p.backend_status() == Some(405))
        .collect();
    if refused.is_empty() {
        let tried: Vec<&str> = direct.iter().map(|p| p.variant).collect();
        return Some(Draft::new(
            ID,
            Verdict::RuledOut,
            format!("the backend answers none of {} with 405", tried.join(", ")),
        ));
    }
    let names: Vec<&str> = refused.iter().map(|p| p.variant).collect();
    let mut d = Draft::new(
        ID,
        Verdict::Reproduced,
        format!("the backend itself answers {} with 405", names.join(", ")),
    );
    for p in refused {
        let allow = p
            .backend_ex()
            .and_then(|e| e.response.as_ref())
            .and_then(|r| r.header("allow"))
            .map(|a| format!(" (Allow: {a})"))
            .unwrap_or_default();
        let through = match p.listener {
            Some(_) => {
                let (origin, why) = p.origin();
                let who = match origin {
                    Origin::Backend => "passed on by the listener",
                    Origin::Listener => "answered by the listener itself",
                    Origin::Unknown => "origin unclear",
                };
                format!(
                    "; via the listener: {} — {who} ({why})",
                    describe(p.listener_ex())
                )
            }
            None => String::new(),
        };
        d = d.with(
            format!(
                "{} straight to the backend: {}{allow}{through}",
                p.variant,
                describe(p.backend_ex())
            ),
            &p.observations(),
        );
    }
    Some(d)
}

/// The backend's own answer to a valid request: 500, 503 and 504 there are faults upstream.
fn backend_answers_valid_request(view: &View<'_>) -> Vec<Draft> {
    let Some(o) = view.find(Family::Protocol, "baseline", Role::Backend) else {
        return Vec::new();
    };
    let Some(status) = o.exchange.as_ref().and_then(Exchange::status) else {
        return Vec::new();
    };
    let body = body_hint(o.exchange.as_ref());
    [
        (500, "500.backend-error"),
        (503, "503.backend-error"),
        (504, "504.backend-dependency-timeout"),
    ]
    .into_iter()
    .map(|(code, id)| {
        if status == code {
            Draft::new(
                id,
                Verdict::Confirmed,
                format!("the backend answers a valid GET with {code} itself"),
            )
            .with(
                format!(
                    "baseline GET straight to the backend: {}{body}",
                    describe(o.exchange.as_ref())
                ),
                &[o],
            )
        } else {
            Draft::new(
                id,
                Verdict::RuledOut,
                format!("the backend answers a valid GET with {status}"),
            )
            .with(
                format!(
                    "baseline GET straight to the backend: {}",
                    describe(o.exchange.as_ref())
                ),
                &[o],
            )
        }
    })
    .collect()
}

/// `<code>.passthrough`: the backend answered the code and the listener passed it on.
fn passthrough(view: &View<'_>) -> Vec<Draft> {
    let pairs = view.all_pairs();
    let mut out = Vec::new();
    for &code in PASSTHROUGH_CODES {
        let seen: Vec<&(crate::probe::Family, Pair<'_>)> = pairs
            .iter()
            .filter(|(_, p)| {
                p.backend_status() == Some(code)
                    && p.listener_status() == Some(code)
                    && p.origin().0 == Origin::Backend
            })
            .collect();
        if seen.is_empty() {
            continue;
        }
        let id = format!("{code}.passthrough");
        let verdict = if code >= 500 {
            Verdict::Confirmed
        } else {
            Verdict::Reproduced
        };
        let names: Vec<String> = seen
            .iter()
            .take(6)
            .map(|(f, p)| format!("{f} {}", p.variant))
            .collect();
        let mut d = Draft::new(
            &id,
            verdict,
            format!(
                "the backend answered {code} and the listener passed it on ({})",
                names.join(", ")
            ),
        );
        for (f, p) in seen.iter().take(6) {
            let (_, why) = p.origin();
            d = d.with(format!("{f} {}: {why}", p.variant), &p.observations());
        }
        out.push(d);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::{escape_bytes, ConnEnd, Timings};

    fn no_http_answer(raw: &[u8]) -> Exchange {
        Exchange {
            endpoint: "127.0.0.1:1".into(),
            tls: false,
            timings: Timings::default(),
            bytes_out: 100,
            bytes_in: raw.len(),
            end: ConnEnd::Fin,
            response: None,
            raw_prefix: escape_bytes(raw),
            tcp_rtt_us: None,
            tcp_retransmits: None,
            peer: None,
            tls_info: None,
            http_version: None,
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
