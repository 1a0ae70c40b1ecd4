//! One function per cause (or group of causes) this run's probes can speak to.

use crate::probe::{Detail, Family, LimitSearch, Observation};
use crate::target::Role;
use crate::transport::{Exchange, Sniff};

use super::{describe, truncate, Context, Draft, Origin, Pair, Verdict, View};

/// Codes that have a `<code>.passthrough` cause.
const PASSTHROUGH_CODES: &[u16] = &[400, 405, 408, 414, 499, 500, 502, 503, 504];

pub(crate) fn all(view: &View<'_>, ctx: &Context<'_>) -> Vec<Draft> {
    let mut out = Vec::new();
    out.extend(http_to_https_listener(view, ctx));
    out.extend(backend_expects_https(view, ctx));
    out.extend(malformed_request(view));
    out.extend(backend_validation(view));
    out.extend(header_too_large(view, ctx));
    out.extend(trace_unsupported(view, ctx));
    out.extend(backend_method_unsupported(view));
    out.extend(backend_answers_valid_request(view));
    out.extend(passthrough(view));
    out.extend(super::limits::drafts(view, ctx));
    out.extend(super::partial::drafts(view, ctx));
    out.extend(super::timing::drafts(view, ctx));
    out.extend(super::response::drafts(view, ctx));
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
    let backend = view.find(Family::Protocol, "baseline", Role::Backend);
    let backend_ex = backend.and_then(|o| o.exchange.as_ref());
    match sniff {
        Sniff::PlainHttp { status } => Some(
            Draft::new(ID, Verdict::RuledOut, "the backend port speaks plain HTTP").with(
                format!("a plain GET to the backend port got an HTTP answer ({status})"),
                &[sniff_obs],
            ),
        ),
        Sniff::Tls { version } => {
            let version = version.clone().unwrap_or_else(|| "TLS".into());
            let mut refs = vec![sniff_obs];
            refs.extend(listener);
            refs.extend(backend);
            let backend_status = backend_ex.and_then(Exchange::status);
            if listener_status == Some(400) && backend_status.is_some_and(|s| s != 400) {
                Some(
                    Draft::new(
                        ID,
                        Verdict::Confirmed,
                        "the backend port speaks TLS, the listener forwards plain HTTP to it",
                    )
                    .with(
                        format!("the backend port completed a {version} handshake"),
                        &[sniff_obs],
                    )
                    .with(
                        format!(
                            "a valid GET through the listener got {}{}",
                            describe(listener_ex),
                            body_hint(listener_ex)
                        ),
                        &listener.into_iter().collect::<Vec<_>>(),
                    )
                    .with(
                        format!(
                            "the same GET over TLS straight to the backend got {}",
                            describe(backend_ex)
                        ),
                        &backend.into_iter().collect::<Vec<_>>(),
                    ),
                )
            } else if listener.is_none() {
                Some(Draft::new(
                    ID,
                    Verdict::Inconclusive,
                    format!("the backend port speaks {version}; name the listener to see what it forwards"),
                ).with(format!("the backend port completed a {version} handshake"), &refs))
            } else {
                Some(
                    Draft::new(
                        ID,
                        Verdict::RuledOut,
                        format!(
                            "the backend speaks TLS, but a valid request through the listener gets {}, not 400",
                            describe(listener_ex)
                        ),
                    )
                    .with(format!("the backend port completed a {version} handshake"), &refs),
                )
            }
        }
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
            .with(format!("{end:?}"), &[sniff_obs]),
        ),
    }
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
        let mut d = Draft::new(
            ID,
            Verdict::RuledOut,
            format!(
                "none of the {} malformed variants got 400 from the listener",
                tried.len()
            ),
        );
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
            *f != Family::HeaderSize
                && p.observations().iter().all(|o| o.well_formed)
                && p.variant != "CONNECT"
                && p.variant != "TRACE"
                && p.variant != "plain-http-to-tls-port"
                && p.variant != "tls-to-plain-port"
        })
        .collect()
}

fn backend_validation(view: &View<'_>) -> Option<Draft> {
    const ID: &str = "400.backend-validation";
    let pairs = well_formed_pairs(view);
    let direct: Vec<&(Family, Pair<'_>)> = pairs
        .iter()
        .filter(|(_, p)| p.backend_ex().is_some())
        .collect();
    if direct.is_empty() {
        return None;
    }
    let rejected: Vec<&&(Family, Pair<'_>)> = direct
        .iter()
        .filter(|(_, p)| p.backend_status() == Some(400))
        .collect();
    if rejected.is_empty() {
        return Some(Draft::new(
            ID,
            Verdict::RuledOut,
            format!(
                "the backend accepts the {} valid requests sent straight to it",
                direct.len()
            ),
        ));
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

fn limit_of<'a>(view: &View<'a>, role: Role) -> Option<(&'a Observation, &'a LimitSearch)> {
    let o = view.find(Family::HeaderSize, "limit", role)?;
    match &o.detail {
        Detail::Limit(l) => Some((o, l)),
        _ => None,
    }
}

fn threshold_text(l: &LimitSearch) -> String {
    match (l.largest_accepted, l.smallest_rejected) {
        (Some(a), Some(_)) if l.exact => {
            format!("header lines above {a} bytes are refused, {a} bytes pass")
        }
        (Some(a), Some(r)) => format!("header lines of {a} bytes pass and {r} bytes are refused"),
        (Some(a), None) => format!("header lines up to {a} bytes pass"),
        (None, Some(r)) => format!("header lines of {r} bytes are refused"),
        (None, None) => "no limit measured".into(),
    }
}

fn header_too_large(view: &View<'_>, ctx: &Context<'_>) -> Option<Draft> {
    const ID: &str = "400.header-too-large";
    let documented = ctx.profile.max_header_bytes;
    let listener = limit_of(view, Role::Listener);
    let backend = limit_of(view, Role::Backend);
    let Some((lo, l)) = listener else {
        let some_header_obs = view
            .observations
            .iter()
            .any(|o| o.family == Family::HeaderSize && o.role == Role::Listener);
        return some_header_obs.then(|| {
            Draft::new(
                ID,
                Verdict::Inconclusive,
                "the listener refused even a small header, so no limit could be measured",
            )
        });
    };
    let status = l
        .rejected_status
        .map_or("a close".to_string(), |s| s.to_string());
    let Some(rejected) = l.smallest_rejected else {
        return Some(
            Draft::new(
                ID,
                Verdict::RuledOut,
                format!("the listener accepts {}", threshold_text(l)),
            )
            .with(
                format!("listener: {} ({} requests)", threshold_text(l), l.requests),
                &[lo],
            ),
        );
    };
    let accepted = l.largest_accepted.unwrap_or(0);
    let mut refs = vec![lo];
    let mut d;
    // The rejection at the listener may be the backend's, passed on: same threshold on both.
    let same_as_backend = backend.is_some_and(|(_, b)| {
        b.smallest_rejected == Some(rejected) && b.largest_accepted == l.largest_accepted
    });
    if same_as_backend {
        d = Draft::new(
            ID,
            Verdict::Confirmed,
            format!("the backend's own header limit ({accepted} bytes) is what the listener's clients hit"),
        );
    } else if accepted < documented {
        d = Draft::new(
            ID,
            Verdict::Confirmed,
            format!(
                "the listener refuses header lines above {accepted} bytes with {status}, below the {documented} bytes the {} profile documents",
                ctx.profile.name
            ),
        );
    } else {
        d = Draft::new(
            ID,
            Verdict::Reproduced,
            format!("header lines above {accepted} bytes get {status} from the listener; the {} profile documents {documented}", ctx.profile.name),
        );
    }
    d = d.with(
        format!(
            "listener: {} (status {status}; {} requests, {})",
            threshold_text(l),
            l.requests,
            if l.exact { "exact" } else { "bounds" }
        ),
        &[lo],
    );
    if let Some((bo, b)) = backend {
        refs.push(bo);
        d = d.with(format!("backend directly: {}", threshold_text(b)), &[bo]);
        if let (Some(ba), Some(_)) = (b.largest_accepted, b.smallest_rejected) {
            if ba < accepted && !same_as_backend {
                d.verdict = crate::classify::Verdict::Confirmed;
                d = d.with(
                    format!("header lines of {}..={accepted} bytes pass the listener and fail at the backend", ba + 1),
                    &[lo, bo],
                );
            }
        }
    }
    Some(d)
}

fn trace_unsupported(view: &View<'_>, ctx: &Context<'_>) -> Option<Draft> {
    const ID: &str = "405.trace-unsupported";
    let p = view
        .pairs(Family::Methods)
        .into_iter()
        .find(|p| p.variant == "TRACE")?;
    p.listener?;
    let got = describe(p.listener_ex());
    Some(if p.listener_status() == Some(405) {
        let (origin, why) = p.origin();
        if origin == Origin::Backend {
            Draft::new(ID, Verdict::RuledOut, "the 405 to TRACE is the backend's, passed on by the listener (see 405.backend-method-unsupported)")
                .with(format!("TRACE via the listener: {got} ({why})"), &p.observations())
        } else {
            let profile_note = if ctx.profile.trace_allowed {
                format!(
                    "; the {} profile documents TRACE as allowed",
                    ctx.profile.name
                )
            } else {
                String::new()
            };
            Draft::new(
                ID,
                Verdict::Reproduced,
                "the listener itself answers TRACE with 405",
            )
            .with(
                format!("TRACE via the listener: {got} ({why}){profile_note}"),
                &p.observations(),
            )
        }
    } else {
        Draft::new(
            ID,
            Verdict::RuledOut,
            format!("the listener passes TRACE on ({got})"),
        )
        .with(format!("TRACE via the listener: {got}"), &p.observations())
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
