//! Rules on load and availability: rate limiting and listeners with no backend to send to (503,
//! 502 all-unhealthy).

use crate::probe::load::StepStats;
use crate::probe::rate::{RampStop, RateResult, SecondTry};
use crate::probe::{Detail, Family, Observation};
use crate::target::Role;
use crate::transport::{ConnEnd, Exchange, Response};

use super::attribution::{self, looks_like_lb_page, Origin};
use super::timing::{self, fmt_ms, own_ms, AT_ONCE_MS};
use super::{describe, truncate, Context, Draft, Verdict, View};
use crate::profile::Basis;

pub(crate) fn drafts(view: &View<'_>, ctx: &Context<'_>) -> Vec<Draft> {
    let mut out = Vec::new();
    let _ = ctx;
    out.extend(rate_limited(view));
    out.extend(unavailable(view, ctx, 503, "503.no-backends"));
    out.extend(unavailable(view, ctx, 502, "502.all-backends-unhealthy"));
    out
}

fn ramp<'a>(view: &View<'a>, role: Role) -> Option<(&'a Observation, &'a RateResult)> {
    let o = view.find(Family::Rate, "ramp", role)?;
    match &o.detail {
        Detail::Rate(r) => Some((o, r)),
        _ => None,
    }
}

/// This module in the rule table: the causes [`drafts`] decides.
pub(crate) const RULE: super::rules::Rule = super::rules::Rule {
    name: "rate",
    causes: &[
        "503.rate-limited",
        "503.no-backends",
        "502.all-backends-unhealthy",
    ],
    decide: drafts,
};

/// `200×38 503×2`: a step's answers by status, then its errors.
fn tally(s: &StepStats) -> String {
    let mut parts: Vec<String> = s
        .answered
        .iter()
        .map(|(status, n)| format!("{status}×{n}"))
        .collect();
    parts.extend(s.errors.iter().map(|(kind, n)| format!("{kind}×{n}")));
    if s.skipped > 0 {
        parts.push(format!("skipped×{}", s.skipped));
    }
    if parts.is_empty() {
        "nothing".into()
    } else {
        parts.join(" ")
    }
}

fn steps_text(r: &RateResult) -> String {
    let again = r.tries().map(|_| r.steps.len() - 1);
    r.steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let p50 = s
                .p50_ms
                .map(|m| format!(", p50 {}", fmt_ms(m)))
                .unwrap_or_default();
            let label = if again == Some(i) { "again at " } else { "" };
            format!("{label}{:.1} rps → {}{p50}", s.achieved_rps, tally(s))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Whether an answer's body is a known load-balancer error page.
fn is_lb_page(r: &Response) -> bool {
    looks_like_lb_page(&Exchange::answered(String::new(), r.clone()))
}

fn body_of(r: &Response) -> String {
    if r.body_prefix.is_empty() {
        String::new()
    } else {
        format!(" — body \"{}\"", truncate(&r.body_prefix.escaped(), 80))
    }
}

fn rate_limited(view: &View<'_>) -> Option<Draft> {
    const ID: &str = "503.rate-limited";
    let (lo, l) = ramp(view, Role::Listener)?;
    let backend = ramp(view, Role::Backend);
    let mut refs = vec![lo];
    refs.extend(backend.map(|(o, _)| o));
    let steps = format!("the ramp through the listener: {}", steps_text(l));
    if l.steps.is_empty() {
        return Some(
            Draft::new(
                ID,
                Verdict::Inconclusive,
                format!("the ramp did not run ({})", l.stop.describe()),
            )
            .with(steps, &refs),
        );
    }
    let top = l.steps.iter().map(|s| s.achieved_rps).fold(0.0, f64::max);
    let l503 = l.total(503);
    let direct = backend.map(|(bo, b)| {
        let mut counts = StepStats::default();
        for s in &b.steps {
            for (status, n) in &s.answered {
                *counts.answered.entry(*status).or_insert(0) += n;
            }
            for (kind, n) in &s.errors {
                *counts.errors.entry(kind.clone()).or_insert(0) += n;
            }
        }
        (bo, b, counts)
    });
    let direct_text = match &direct {
        Some((_, b, counts)) => format!(
            "{} straight to the backend in the same window got {}",
            crate::plural::count(b.sent(), "request"),
            tally(counts)
        ),
        None => "no backend named: its own answers could not be checked".into(),
    };
    if l503 == 0 {
        let (verdict, reason) = if l.stop == RampStop::CapReached {
            (
                Verdict::RuledOut,
                format!(
                    "the ramp reached {top:.0} rps (its cap: {} rps) and the listener answered no 503",
                    l.cap_rps
                ),
            )
        } else {
            (
                Verdict::Inconclusive,
                format!(
                    "no 503 up to {top:.0} rps, but the ramp stopped at {} before its cap ({} rps)",
                    l.stop.describe(),
                    l.cap_rps
                ),
            )
        };
        return Some(Draft::new(ID, verdict, reason).with(steps, &refs));
    }
    // 503s came back. Whose are they?
    let backend_503 = direct.as_ref().map_or(0, |(_, _, c)| c.count(503));
    let baseline_503 = view
        .find(Family::Protocol, "baseline", Role::Backend)
        .and_then(|o| o.exchange.as_ref())
        .and_then(Exchange::status)
        == Some(503);
    if backend_503 > 0 || baseline_503 {
        return Some(
            Draft::new(
                ID,
                Verdict::RuledOut,
                "the backend answers 503 itself: the 503s are its own, passed on (see 503.backend-error and 503.passthrough)",
            )
            .with(direct_text, &refs)
            .with(steps, &refs),
        );
    }
    if l503 == l.answers() {
        return Some(
            Draft::new(
                ID,
                Verdict::RuledOut,
                format!(
                    "every answer was 503, from the first step ({:.1} rps) on: the listener refuses everything, not the requests above a rate (see 503.no-backends)",
                    l.steps[0].achieved_rps
                ),
            )
            .with(steps, &refs),
        );
    }
    let sample = l.sample(503);
    let signature = match sample {
        Some(r) if is_lb_page(r) => {
            format!("the 503 is the listener's own error page{}", body_of(r))
        }
        Some(r) => format!("the 503's body is not a known listener page{}", body_of(r)),
        None => String::new(),
    };
    let lb_page = sample.is_some_and(is_lb_page);
    let pattern = match pattern(l) {
        Ok(p) => p,
        Err(why) => {
            let mut d = Draft::new(ID, Verdict::Inconclusive, why);
            if !signature.is_empty() {
                d = d.with(signature, &refs);
            }
            return Some(d.with(steps, &refs));
        }
    };
    if direct.is_none() && !lb_page {
        return Some(
            Draft::new(
                ID,
                Verdict::Inconclusive,
                "503s above a rate, but with no backend named and no listener signature on them, they may be the backend's",
            )
            .with(signature, &refs)
            .with(steps, &refs),
        );
    }
    let below = match l.clean_rps {
        Some(c) => format!("; at {c:.1} rps none was"),
        None => String::new(),
    };
    let mut d = match pattern {
        Pattern::Sustained => {
            let onset = l.onset_rps.unwrap_or(top);
            let again = if l.tries().is_some() {
                " (the top step, tried a second time)"
            } else {
                ""
            };
            let share = l
                .steps
                .last()
                .map(|s| {
                    format!(
                        "{} of {} in that step{again} were 503",
                        s.count(503),
                        crate::plural::count(s.answers(), "answer")
                    )
                })
                .unwrap_or_default();
            Draft::new(
                ID,
                Verdict::Reproduced,
                format!("the listener starts answering 503 at about {onset:.0} rps{below}"),
            )
            .with(
                format!("503s began at {onset:.1} rps: {share}{below}"),
                &[lo],
            )
        }
        Pattern::NearCap { rate, tries } => {
            let counts: Vec<String> = tries
                .iter()
                .map(|s| format!("{} of {}", s.count(503), s.answers()))
                .collect();
            let counts = match counts.as_slice() {
                [first, second] => format!("{first} answers, then {second} on a second try"),
                _ => format!("{} answers", counts.join(", ")),
            };
            Draft::new(
                ID,
                Verdict::Reproduced,
                format!(
                    "the listener is limited near {rate:.0} rps: at the ramp's top rate it answered 503 to some requests, never {:.0}% of a step's{below}; raise max-rate to ramp past the limit and see where it starts",
                    l.sustain * 100.0
                ),
            )
            .with(
                format!("at {rate:.0} rps, the ramp's top rate, 503 came back to {counts}"),
                &[lo],
            )
        }
    };
    d = d.with(direct_text, &refs);
    if !signature.is_empty() {
        d = d.with(signature, &[lo]);
    }
    Some(d.with(steps, &refs))
}

/// How a ramp's 503s stand, once some came back and others did not.
#[derive(Debug)]
enum Pattern<'a> {
    /// A step's 503s reached the sustain share.
    Sustained,
    /// The ramp reached its cap, and its top step (tried once or twice) got some 503s, never
    /// the sustain share: a limit at about the cap, whose count of refusals jitter in the
    /// spacing decides.
    NearCap {
        rate: f64,
        tries: Vec<&'a StepStats>,
    },
}

/// The pattern of a ramp that got some 503s, or why they do not show a limit. How many refusals
/// a borderline top step got never decides the verdict (1 or 3 or 9 of 100 is jitter in the
/// spacing), only whether the top step got any: a listener whose own 503s come at the ramp's
/// top rate is limited near it. The second try gives the top step a second chance to show them
/// and the report a second count.
fn pattern(l: &RateResult) -> Result<Pattern<'_>, String> {
    if l.stop == RampStop::Sustained503 {
        return Ok(Pattern::Sustained);
    }
    let few = format!(
        "{} of {} were 503, never {:.0}% of a step's",
        l.total(503),
        crate::plural::count(l.answers(), "answer"),
        l.sustain * 100.0
    );
    if l.stop != RampStop::CapReached {
        return Err(format!(
            "{few} before the ramp stopped at {}: too few to call a limit",
            l.stop.describe()
        ));
    }
    let tries: Vec<&StepStats> = match l.tries() {
        Some((first, second)) => vec![first, second],
        None => l.steps.last().into_iter().collect(),
    };
    let rate = tries
        .first()
        .and_then(|s| s.target_rps)
        .unwrap_or(l.cap_rps);
    if tries.iter().any(|s| s.count(503) > 0) {
        return Ok(Pattern::NearCap { rate, tries });
    }
    let top = match l.second_try {
        SecondTry::Ran => format!("the top step ({rate:.0} rps) got none, tried twice"),
        SecondTry::NoRoom => format!(
            "the top step ({rate:.0} rps) got none, and the run's caps left no room to try it again"
        ),
        SecondTry::NotNeeded => format!("the top step ({rate:.0} rps) got none"),
    };
    Err(format!(
        "{few}, and {top}: 503s at a lower rate that do not come back at a higher one are not a rate limit's pattern"
    ))
}

/// Whether the backend's port speaks TLS on a certificate that does not verify (the sniff's
/// check): a verifying listener fails its handshake there.
fn backend_certificate_fails(view: &View<'_>) -> bool {
    use crate::transport::tls::CertCheck;
    use crate::transport::Sniff;
    view.find(Family::Protocol, "sniff", Role::Backend)
        .is_some_and(|o| {
            matches!(
                &o.detail,
                crate::probe::Detail::Sniff {
                    sniff: Sniff::Tls {
                        certificate: Some(CertCheck::Failed { .. }),
                        ..
                    },
                }
            )
        })
}

/// `503.no-backends` and `502.all-backends-unhealthy`: the listener answers the code itself, at
/// once, to every request, and the backends it could send to fail when asked directly (every
/// member of a named pool, or the one backend named), or the listener says in its own words that
/// it has none.
///
/// "At once" is absolute: within [`AT_ONCE_MS`] of the listener's own time, and far from any
/// timeout measured or declared. An answer after the listener's timeout is that timeout (it
/// waited on a backend), however slow the backend's own answer is.
fn unavailable(view: &View<'_>, ctx: &Context<'_>, code: u16, id: &str) -> Option<Draft> {
    let through = Through::of(view);
    let pool = super::pool::seen(view);
    let hits = through.answered(|s| s == code);
    let with_code = through.count(|s| s == code);
    if with_code == 0 {
        // Said only when the run looked at load or availability, so that a healthy run's
        // report does not grow a line per availability cause.
        if through.ramp.is_none() && pool.is_none() {
            return None;
        }
        let unavailable: Vec<String> = [502, 503]
            .into_iter()
            .filter(|s| through.count(|x| x == *s) > 0)
            .map(|s| s.to_string())
            .collect();
        let reason = if !unavailable.is_empty() {
            // The same fault answered with the other code is that code's finding.
            let twin = match code {
                502 if through.count(|x| x == 503) > 0 => " (see 503.no-backends)",
                503 if through.count(|x| x == 502) > 0 => " (see 502.all-backends-unhealthy)",
                _ => "",
            };
            format!(
                "the listener answers valid GETs with {}, not {code}{twin}",
                unavailable.join(" and ")
            )
        } else {
            format!("the listener forwards valid GETs ({})", through.tally())
        };
        return Some(Draft::new(id, Verdict::RuledOut, reason).with(
            format!("through the listener: {}", through.tally()),
            &through.refs(),
        ));
    }
    let got = through.got(code, &hits);
    let lrefs = through.refs();
    // Any request passed on means the listener has a backend it sends to.
    let passed = through.count(|s| s < 500);
    if passed > 0 {
        let pool_note = if pool.is_some() && code == 502 {
            " (one bad member: see 502.bad-pool-member)"
        } else {
            ""
        };
        return Some(
            Draft::new(
                id,
                Verdict::RuledOut,
                format!(
                    "the listener passed {passed} of {} on to a backend that answered: it has a backend it sends to, and its {code}s come from some requests only{pool_note}",
                    crate::plural::count(through.requests(), "request")
                ),
            )
            .with(format!("through the listener: {}", through.tally()), &lrefs)
            .with(got, &lrefs),
        );
    }
    let backend = view
        .find(Family::Protocol, "baseline", Role::Backend)
        .and_then(|o| Some((o, o.exchange.as_ref()?)));
    let direct = backend.map(|(bo, bex)| {
        (
            bo,
            format!(
                "the same GET straight to the backend: {}{}",
                describe(Some(bex)),
                if bex.response.is_some() {
                    format!(" in {}", fmt_ms(bex.timings.total_ms))
                } else {
                    String::new()
                }
            ),
        )
    });
    let with_direct = |d: Draft| match &direct {
        Some((bo, text)) => d.with(text.clone(), &[*bo]),
        None => d,
    };
    // The backend's own code, passed on.
    if let (Some((_, bex)), Some((_, lex))) = (backend, hits.first()) {
        let (origin, why) = attribution::origin(lex, Some(bex));
        if bex.status() == Some(code) || origin == Origin::Backend {
            let status = bex
                .status()
                .map_or_else(|| describe(Some(bex)), |s| s.to_string());
            return Some(with_direct(
                Draft::new(
                    id,
                    Verdict::RuledOut,
                    format!(
                        "the backend answers {status} itself; the listener passes it on ({why})"
                    ),
                )
                .with(got, &lrefs),
            ));
        }
    }
    if let Some(d) = not_at_once(view, ctx, code, id, &hits, &through) {
        return Some(with_direct(d.with(got, &lrefs)));
    }
    let who = hits
        .first()
        .map(|(_, ex)| attribution::origin(ex, backend.map(|(_, b)| b)).1);
    let at_once = format!(
        "the listener passed no request on, and its {code}s came at once (its own time at most {}): it did not wait for a backend",
        fmt_ms(hits.iter().map(|(_, ex)| own_ms(ex)).fold(0.0, f64::max))
    );
    if let Some(words) = hits.iter().find_map(|(_, ex)| no_server_words(ex)) {
        // HAProxy says the same words when every server is down and when its TLS handshake
        // with one fails: with a backend that speaks TLS on a certificate that does not verify,
        // the words alone cannot tell which (502.tls-handshake-failed-to-backend says the
        // other half).
        if backend_certificate_fails(view) {
            return Some(with_direct(
                Draft::new(
                    id,
                    Verdict::Inconclusive,
                    format!(
                        "the listener answers {code} at once, saying it has no server (\"{words}\"), but the backend named speaks TLS on a certificate that does not verify: every server held down, or the listener's TLS handshake with this one failing (see 502.tls-handshake-failed-to-backend); the listener's log tells (HAProxy's termination flags: SC-- when its handshake failed)"
                    ),
                )
                .with(got, &lrefs)
                .with(at_once, &lrefs),
            ));
        }
        return Some(with_direct(
            Draft::new(
                id,
                Verdict::Confirmed,
                format!("the listener answers {code} at once, saying in its own words that it has no server to send to (\"{words}\")"),
            )
            .with(got, &lrefs)
            .with(at_once, &lrefs),
        ));
    }
    if let Some(pool) = pool.filter(|p| !p.members.is_empty()) {
        let down: Vec<usize> = pool
            .members
            .iter()
            .filter(|(_, m)| m.asked > 0 && m.failures.len() == m.asked)
            .map(|(i, _)| *i)
            .collect();
        let mut d = if down.len() == pool.members.len() {
            Draft::new(
                id,
                Verdict::Confirmed,
                format!(
                    "the listener answers {code} at once to every request, and every one of the {} pool members fails when asked directly: it has no healthy backend to send to (each member's failure is its own cause)",
                    pool.members.len()
                ),
            )
        } else {
            Draft::new(
                id,
                Verdict::Inconclusive,
                format!(
                    "the listener answers {code} at once to every request, yet {} of {} pool members answer well directly: either its health checks fail on healthy members (check the health check's path, Host and the backends' firewall) or it sends to another pool; the listener's view of its backends (health status, nginx's \"no live upstreams\" in the error log) tells",
                    pool.members.len() - down.len(),
                    pool.members.len()
                ),
            )
        }
        .with(got, &lrefs)
        .with(at_once, &lrefs);
        if code == 503 && down.len() == pool.members.len() {
            let who = view
                .listener_is()
                .map_or("this listener", attribution::Product::name);
            d = d.with(
                format!("{who} answers 503 when every member of its pool is down; the reference page documents 502 for a listener whose every backend is unhealthy (502.all-backends-unhealthy)"),
                &lrefs,
            );
        }
        for (i, m) in &pool.members {
            d = d.with(m.describe(*i, pool.size), &m.observations);
        }
        return Some(d);
    }
    let Some((_, bex)) = backend else {
        return Some(
            Draft::new(
                id,
                Verdict::Inconclusive,
                format!("the listener answers {code} at once to every request; name the backend (or the pool) to tell whether they are down"),
            )
            .with(got, &lrefs)
            .with(at_once, &lrefs),
        );
    };
    // A backend that answers an error of its own, completely, would have had that error relayed
    // had the listener sent it anything; one that gives no usable answer looks, through a
    // listener that tried it, just like a listener that did not.
    let own_error = bex
        .response
        .as_ref()
        .filter(|r| r.status >= 500 && r.complete && r.problems.is_empty());
    let d = match (super::pool::failure(Some(bex)), own_error) {
        (Some(why), Some(_)) => Draft::new(
            id,
            Verdict::Confirmed,
            format!(
                "the listener answers {code} at once to every request instead of the backend's own error, and the backend named fails when asked directly ({why}): the listener sends it nothing, having no healthy backend; if it has other backends, name them as a pool"
            ),
        ),
        (Some(why), None) => {
            // A refusal has one cause of its own; other failures may be any of three.
            let see = if matches!(
                bex.end,
                ConnEnd::ConnectRefused | ConnEnd::Unreachable(_) | ConnEnd::NameNotResolved(_)
            ) {
                "see 502.backend-unreachable"
            } else {
                "see 502.malformed-backend-response, 502.backend-unreachable, 500.backend-closed-early"
            };
            let apache = if code == 503 && view.listener_is() == Some(attribution::Product::Apache) {
                "; Apache httpd answers 503 when it cannot connect to a backend"
            } else {
                ""
            };
            Draft::new(
                id,
                Verdict::Inconclusive,
                format!(
                    "the backend named fails when asked directly ({why}): the listener's {code} at once is either that failure reported ({see}{apache}) or the listener holding it unhealthy and sending nothing; name every backend behind the listener (a pool) to see whether any is healthy"
                ),
            )
        }
        (None, _) => Draft::new(
            id,
            Verdict::Inconclusive,
            format!(
                "the listener answers {code} at once to every request while the backend answers {} directly: either the listener considers every backend unhealthy though they answer (check the health check's path, Host and the backends' firewall) or it sends to another backend; the listener's view of its backends (health status, nginx's \"no live upstreams\" in the error log) tells",
                bex.status().map_or_else(|| describe(Some(bex)), |s| s.to_string())
            ),
        ),
    };
    let d = d.with(got, &lrefs).with(at_once, &lrefs);
    Some(with_direct(match who {
        Some(who) => d.with(format!("who answered: {who}"), &lrefs),
        None => d,
    }))
}

/// Words a listener writes in its own answer when it has no backend to send to.
const NO_SERVER_WORDS: &[&str] = &[
    // HAProxy's 503 page.
    "No server is available to handle this request",
    // Envoy's 503 body.
    "no healthy upstream",
];

fn no_server_words(ex: &Exchange) -> Option<&'static str> {
    let body = ex.response.as_ref()?.body_prefix.text();
    NO_SERVER_WORDS.iter().copied().find(|w| body.contains(w))
}

/// Why the listener's answers with `code` are not "at once", if they are not: they come at its
/// measured timeout (it waited on a backend), at a timeout the user declared, or simply too
/// late to call immediate.
fn not_at_once(
    view: &View<'_>,
    ctx: &Context<'_>,
    code: u16,
    id: &str,
    hits: &[(&Observation, &Exchange)],
    through: &Through<'_>,
) -> Option<Draft> {
    let gave_up = match code {
        504 | 502 => format!("see {code}.backend-slow and 504.connect-timeout"),
        _ => "a connect or queue timeout".into(),
    };
    if let Some((t, seen, refs)) = timing::listener_timeout(view, code) {
        return Some(
            Draft::new(
                id,
                Verdict::RuledOut,
                format!(
                    "the listener answers {code} after {} every time (measured): that is its timeout firing — it waited on a backend and gave up ({gave_up}) — not an answer without one",
                    timing::fmt_timeout(t)
                ),
            )
            .with(seen, &refs),
        );
    }
    let slowest = if hits.is_empty() {
        // Only the ramp saw the code: its steps' medians are all there is.
        through
            .ramp
            .and_then(|(_, r)| r.steps.iter().filter_map(|s| s.p50_ms).reduce(f64::max))
    } else {
        hits.iter().map(|(_, ex)| own_ms(ex)).reduce(f64::max)
    };
    let Some(slowest) = slowest else {
        return Some(Draft::new(
            id,
            Verdict::Inconclusive,
            format!("how soon the listener answers {code} is unknown: no timed request got it"),
        ));
    };
    let declared = [
        ctx.profile.response_timeout(),
        ctx.profile.connect_timeout(),
    ]
    .into_iter()
    .flatten()
    .filter(|c| c.basis == Basis::Declared)
    .find(|c| {
        let t = c.value.as_secs_f64() * 1000.0;
        slowest >= t - timing::tolerance(t)
    });
    if let Some(c) = declared {
        let t = c.value.as_secs_f64() * 1000.0;
        return Some(
            Draft::new(
                id,
                Verdict::RuledOut,
                format!(
                    "the listener's {code} took {}, at the {} timeout you declared: it waited on a backend and gave up ({gave_up}), not an answer without one",
                    fmt_ms(slowest),
                    fmt_ms(t)
                ),
            )
            .cites(&c, c.says(&fmt_ms(t))),
        );
    }
    let far_from_timeouts = [
        ctx.profile.response_timeout(),
        ctx.profile.connect_timeout(),
    ]
    .into_iter()
    .flatten()
    .all(|c| slowest < c.value.as_secs_f64() * 1000.0 * 0.5);
    if slowest < AT_ONCE_MS && far_from_timeouts {
        return None;
    }
    Some(Draft::new(
        id,
        Verdict::Inconclusive,
        format!(
            "the listener's {code} took {}: not at once, so it may have tried a backend and given up (a timeout); run the latency probe to measure the listener's timeouts",
            fmt_ms(slowest)
        ),
    ))
}

/// The listener's answers to valid GETs across the run: the baseline, the latency requests,
/// the pool's requests through it, and the ramp's counts.
struct Through<'a> {
    timed: Vec<(&'a Observation, &'a Exchange)>,
    ramp: Option<(&'a Observation, &'a RateResult)>,
}

impl<'a> Through<'a> {
    fn of(view: &View<'a>) -> Through<'a> {
        let timed = view
            .observations
            .iter()
            .filter(|o| o.role == Role::Listener && o.well_formed)
            .filter(|o| match o.family {
                Family::Protocol => o.variant == "baseline",
                Family::Latency => true,
                Family::Pool => o.variant == crate::probe::pool::THROUGH_LISTENER,
                _ => false,
            })
            .filter_map(|o| Some((o, o.exchange.as_ref()?)))
            .collect();
        Through {
            timed,
            ramp: ramp(view, Role::Listener),
        }
    }

    /// Requests sent through the listener.
    fn requests(&self) -> u32 {
        self.timed.len() as u32 + self.ramp.map_or(0, |(_, r)| r.sent())
    }

    /// Answers whose status passes `pred`.
    fn count(&self, pred: impl Fn(u16) -> bool) -> u32 {
        let timed = self
            .timed
            .iter()
            .filter(|(_, ex)| ex.status().is_some_and(&pred))
            .count() as u32;
        let ramp: u32 = self.ramp.map_or(0, |(_, r)| {
            r.steps
                .iter()
                .flat_map(|s| s.answered.iter())
                .filter(|(status, _)| pred(**status))
                .map(|(_, n)| *n)
                .sum()
        });
        timed + ramp
    }

    fn answered(&self, pred: impl Fn(u16) -> bool) -> Vec<(&'a Observation, &'a Exchange)> {
        self.timed
            .iter()
            .filter(|(_, ex)| ex.status().is_some_and(&pred))
            .copied()
            .collect()
    }

    /// `502 ×12, 200 ×6, no answer ×1`, every request through the listener.
    fn tally(&self) -> String {
        let mut counts: std::collections::BTreeMap<u16, u32> = Default::default();
        let mut unanswered = 0;
        for (_, ex) in &self.timed {
            match ex.status() {
                Some(s) => *counts.entry(s).or_insert(0) += 1,
                None => unanswered += 1,
            }
        }
        if let Some((_, r)) = self.ramp {
            for s in &r.steps {
                for (status, n) in &s.answered {
                    *counts.entry(*status).or_insert(0) += n;
                }
                unanswered += s.error_count();
            }
        }
        super::timing::tally_text(counts.into_iter(), unanswered)
    }

    /// `baseline GET via the listener: 502 Bad Gateway in 1.2 ms — body "…"; 3 of 3 latency
    /// requests got 502, …`: the listener's answers with `code`.
    fn got(&self, code: u16, hits: &[(&Observation, &Exchange)]) -> String {
        let mut parts = Vec::new();
        if let Some((_, ex)) = hits.first() {
            let times: Vec<f64> = hits.iter().map(|(_, ex)| own_ms(ex)).collect();
            let (lo, hi) = times
                .iter()
                .fold((f64::MAX, 0.0_f64), |(lo, hi), t| (lo.min(*t), hi.max(*t)));
            let (lo, hi) = (fmt_ms(lo), fmt_ms(hi));
            let when = match (hits.len(), lo == hi) {
                (1, _) => format!("after {lo}"),
                (_, true) => format!("each after {lo}"),
                _ => format!("after {lo} to {hi}"),
            };
            parts.push(format!(
                "{} of {} through the listener got {}, {when}{}",
                hits.len(),
                crate::plural::count(self.timed.len(), "request"),
                describe(Some(ex)),
                ex.response.as_ref().map(body_of).unwrap_or_default()
            ));
        }
        if let Some((_, r)) = self.ramp {
            parts.push(format!(
                "{} of {} ramp requests through the listener got {code} ({})",
                r.total(code),
                r.answers(),
                steps_text(r)
            ));
        }
        parts.join("; ")
    }

    fn refs(&self) -> Vec<&'a Observation> {
        self.timed
            .iter()
            .take(3)
            .map(|(o, _)| *o)
            .chain(self.ramp.map(|(o, _)| o))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::rate::{borderline, clean_rps, sustained};
    use crate::probe::SentRequest;

    /// nginx 1.22's own 503 page, as `limit_req` sends it.
    const NGINX_503: &str = "<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>\r\n<body>\r\n<center><h1>503 Service Temporarily Unavailable</h1></center>\r\n<hr><center>nginx/1.22.1</center>\r\n";

    const RATES: [f64; 5] = [5.0, 10.0, 20.0, 40.0, 50.0];

    /// A 2 s step at `rate`: every answer 200 but `refused` 503s (nginx's page).
    fn step(rate: f64, refused: u32) -> StepStats {
        let sent = (rate * 2.0) as u32;
        let mut s = StepStats::default();
        s.target_rps = Some(rate);
        s.achieved_rps = rate;
        s.duration_ms = 2000.0;
        s.sent = sent;
        s.answered.insert(200, sent - refused);
        if refused > 0 {
            s.answered.insert(503, refused);
            s.samples.insert(
                503,
                Response {
                    version: "HTTP/1.1".into(),
                    status: 503,
                    reason: "Service Temporarily Unavailable".into(),
                    headers: vec![("Server".into(), "nginx/1.22.1".into())],
                    body_prefix: NGINX_503.into(),
                    body_bytes: NGINX_503.len(),
                    content_length: Some(NGINX_503.len() as u64),
                    chunked: false,
                    complete: true,
                    problems: Vec::new(),
                },
            );
        }
        s
    }

    /// The default scan's ramp (5 to 50 rps, the run's max-rate, in 2 s steps) where the listener refuses `refused[i]` requests at step i, and `again` on a
    /// second try of the top step (`None`: the caps left no room). Where it stops, its onset and
    /// whether it tries again are decided by the probe's own rules.
    fn ramp(refused: &[u32], again: Option<u32>) -> RateResult {
        let mut steps = Vec::new();
        let mut stop = RampStop::CapReached;
        let mut onset = None;
        for (&rate, &n) in RATES.iter().zip(refused) {
            let s = step(rate, n);
            let hit = sustained(&s, 0.1);
            steps.push(s);
            if hit {
                stop = RampStop::Sustained503;
                onset = Some(rate);
                break;
            }
        }
        let clean = clean_rps(&steps);
        let mut second_try = SecondTry::NotNeeded;
        if borderline(stop, &steps) {
            second_try = SecondTry::NoRoom;
            if let Some(n) = again {
                second_try = SecondTry::Ran;
                let s = step(50.0, n);
                if sustained(&s, 0.1) {
                    stop = RampStop::Sustained503;
                    onset = Some(50.0);
                }
                steps.push(s);
            }
        }
        RateResult {
            steps,
            stop,
            cap_rps: 50.0,
            sustain: 0.1,
            onset_rps: onset,
            clean_rps: clean,
            second_try,
        }
    }

    fn observation(role: Role, result: RateResult) -> Observation {
        Observation {
            id: format!("ramp-{role}"),
            family: Family::Rate,
            variant: "ramp".into(),
            role,
            well_formed: true,
            evidence_for: vec!["503.rate-limited".into()],
            request: SentRequest::described("", 0, false),
            exchange: None,
            detail: Detail::Rate(result),
            logged: None,
        }
    }

    /// The finding for a listener ramp, beside a backend that answered its direct checks 200.
    fn classify(listener: RateResult) -> Draft {
        let backend = RateResult {
            steps: listener.steps.iter().map(|_| step(2.0, 0)).collect(),
            onset_rps: None,
            clean_rps: None,
            ..listener.clone()
        };
        let observations = [
            observation(Role::Listener, listener),
            observation(Role::Backend, backend),
        ];
        rate_limited(&View {
            observations: &observations,
            reached: None,
        })
        .expect("a rate-limited finding")
    }

    fn said(d: &Draft) -> String {
        std::iter::once(d.reason.as_str())
            .chain(d.evidence.iter().map(|e| e.text.as_str()))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Runs against nginx `limit_req rate=50r/s` (nodelay, no burst) under the default max-rate
    /// differ only in how many requests jitter in the spacing costs the top step: 1 to 3, or
    /// enough to reach the 10 % sustain share, on the first try or the second, and a few at
    /// 40 rps or none. Every such run gets one verdict: neither the sustain line (9 vs 10 of
    /// 100) nor a second try that happens to get none decides anything.
    #[test]
    fn every_borderline_run_of_a_limit_at_the_cap_gets_the_same_verdict() {
        for at_40 in [0, 1, 3] {
            for first in [1, 2, 3, 9, 10, 15] {
                for again in [0, 1, 2, 3, 9, 10, 12] {
                    let d = classify(ramp(&[0, 0, 0, at_40, first], Some(again)));
                    assert_eq!(
                        d.verdict,
                        Verdict::Reproduced,
                        "{at_40} at 40 rps, {first} then {again} at 50 rps:\n{}",
                        said(&d)
                    );
                }
            }
        }
    }

    /// 0, 1, 2, 3 refusals at the last step: none is no evidence of a limit (ruled out up to
    /// the cap, and no second try); 1, 2 or 3 give one verdict in the same words, only the
    /// counts differ.
    #[test]
    fn zero_to_three_refusals_at_the_last_step() {
        let none = ramp(&[0, 0, 0, 0, 0], Some(5));
        assert_eq!(none.second_try, SecondTry::NotNeeded);
        let d = classify(none);
        assert_eq!(d.verdict, Verdict::RuledOut, "{}", said(&d));
        assert!(d.reason.contains("its cap: 50 rps"), "{}", d.reason);
        let reasons: Vec<String> = [1, 2, 3]
            .into_iter()
            .map(|first| {
                let r = ramp(&[0, 0, 0, 0, first], Some(first));
                assert_eq!(r.second_try, SecondTry::Ran);
                let d = classify(r);
                assert_eq!(d.verdict, Verdict::Reproduced, "{}", said(&d));
                assert!(
                    said(&d).contains(&format!(
                        "503 came back to {first} of 100 answers, then {first} of 100 on a second try"
                    )),
                    "{}",
                    said(&d)
                );
                d.reason
            })
            .collect();
        assert!(reasons.windows(2).all(|w| w[0] == w[1]), "{reasons:?}");
    }

    #[test]
    fn a_limit_near_the_cap_is_said_with_the_counts() {
        let d = classify(ramp(&[0, 0, 0, 0, 2], Some(3)));
        assert_eq!(d.verdict, Verdict::Reproduced, "{}", said(&d));
        let text = said(&d);
        assert!(text.contains("limited near 50 rps"), "{text}");
        assert!(
            text.contains("503 came back to 2 of 100 answers, then 3 of 100 on a second try"),
            "{text}"
        );
        assert!(text.contains("again at 50.0 rps → 200×97 503×3"), "{text}");
        assert!(text.contains("at 40.0 rps none was"), "{text}");
        assert!(text.contains("listener's own error page"), "{text}");
        assert!(text.contains("raise max-rate"), "{text}");
    }

    /// Without room for a second try the top step's own count is reported, the same verdict.
    #[test]
    fn without_room_for_a_second_try_the_first_count_stands() {
        let r = ramp(&[0, 0, 0, 0, 2], None);
        assert_eq!(r.second_try, SecondTry::NoRoom);
        let d = classify(r);
        assert_eq!(d.verdict, Verdict::Reproduced, "{}", said(&d));
        assert!(
            said(&d).contains("503 came back to 2 of 100 answers"),
            "{}",
            said(&d)
        );
    }

    /// 503s at a lower step that the top step does not get, on either try, are not a limit.
    #[test]
    fn refusals_below_the_top_only_are_inconclusive() {
        let d = classify(ramp(&[0, 0, 0, 2, 0], Some(0)));
        assert_eq!(d.verdict, Verdict::Inconclusive, "{}", said(&d));
        assert!(d.reason.contains("got none, tried twice"), "{}", d.reason);
        let d = classify(ramp(&[0, 0, 0, 2, 0], None));
        assert_eq!(d.verdict, Verdict::Inconclusive, "{}", said(&d));
        assert!(d.reason.contains("no room to try it again"), "{}", d.reason);
    }

    /// A limit well below the cap is found by the sustain share as before, with its onset.
    #[test]
    fn a_sustained_step_below_the_cap_gives_its_onset() {
        let r = ramp(&[0, 0, 0, 16], None);
        assert_eq!(r.second_try, SecondTry::NotNeeded);
        let d = classify(r);
        assert_eq!(d.verdict, Verdict::Reproduced, "{}", said(&d));
        assert!(
            d.reason
                .contains("starts answering 503 at about 40 rps; at 20.0 rps none was"),
            "{}",
            d.reason
        );
    }
}
