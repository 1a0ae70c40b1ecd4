//! Rules on load and availability: rate limiting and listeners with no backend to send to (503,
//! 502 all-unhealthy).

use crate::probe::load::StepStats;
use crate::probe::rate::{RampStop, RateResult};
use crate::probe::{Detail, Family, Observation};
use crate::target::Role;
use crate::transport::{Exchange, Response};

use super::attribution::{self, looks_like_lb_page, Origin};
use super::timing::fmt_ms;
use super::{describe, truncate, Context, Draft, Verdict, View};

pub(crate) fn drafts(view: &View<'_>, ctx: &Context<'_>) -> Vec<Draft> {
    let mut out = Vec::new();
    let _ = ctx;
    out.extend(rate_limited(view));
    out.extend(unavailable(view, 503, "503.no-backends"));
    out.extend(unavailable(view, 502, "502.all-backends-unhealthy"));
    out
}

fn ramp<'a>(view: &View<'a>, role: Role) -> Option<(&'a Observation, &'a RateResult)> {
    let o = view.find(Family::Rate, "ramp", role)?;
    match &o.detail {
        Detail::Rate(r) => Some((o, r)),
        _ => None,
    }
}

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
    r.steps
        .iter()
        .map(|s| {
            let p50 = s
                .p50_ms
                .map(|m| format!(", p50 {}", fmt_ms(m)))
                .unwrap_or_default();
            format!("{:.1} rps → {}{p50}", s.achieved_rps, tally(s))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Whether an answer's body is a known load-balancer error page.
fn is_lb_page(r: &Response) -> bool {
    looks_like_lb_page(&Exchange {
        endpoint: String::new(),
        tls: false,
        timings: Default::default(),
        bytes_out: 0,
        bytes_in: 0,
        end: crate::transport::ConnEnd::Complete,
        response: Some(r.clone()),
        raw_prefix: String::new(),
        tcp_rtt_us: None,
        tcp_retransmits: None,
        peer: None,
        tls_info: None,
        http_version: None,
    })
}

fn body_of(r: &Response) -> String {
    if r.body_prefix.is_empty() {
        String::new()
    } else {
        format!(" — body \"{}\"", truncate(&r.body_prefix, 80))
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
            "{} requests straight to the backend in the same window got {}",
            b.sent(),
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
    if l.stop != RampStop::Sustained503 {
        return Some(
            Draft::new(
                ID,
                Verdict::Inconclusive,
                format!(
                    "{l503} of {} answers were 503, never {:.0}% of a step's: too few to call a limit",
                    l.answers(),
                    l.sustain * 100.0
                ),
            )
            .with(steps, &refs),
        );
    }
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
    let onset = l.onset_rps.unwrap_or(top);
    let onset_step = l.steps.last();
    let share = onset_step
        .map(|s| {
            format!(
                "{} of {} answers in that step were 503",
                s.count(503),
                s.answers()
            )
        })
        .unwrap_or_default();
    let below = match l.clean_rps {
        Some(c) => format!("; at {c:.1} rps none was"),
        None => String::new(),
    };
    let mut d = Draft::new(
        ID,
        Verdict::Reproduced,
        format!("the listener starts answering 503 at about {onset:.0} rps{below}"),
    )
    .with(
        format!("503s began at {onset:.1} rps: {share}{below}"),
        &[lo],
    )
    .with(direct_text, &refs);
    if !signature.is_empty() {
        d = d.with(signature, &[lo]);
    }
    Some(d.with(steps, &refs))
}

/// `503.no-backends` and `502.all-backends-unhealthy`: the listener answers the code itself, at
/// once, while the backend the scenario names answers directly: the listener sends nowhere.
fn unavailable(view: &View<'_>, code: u16, id: &str) -> Option<Draft> {
    let lo = view.find(Family::Protocol, "baseline", Role::Listener)?;
    let lex = lo.exchange.as_ref()?;
    let status = lex.status()?;
    let ramp = ramp(view, Role::Listener);
    if status != code {
        // Said only when the run looked at load or availability, so that a healthy run's
        // report does not grow a line per availability cause.
        let reason = if matches!(status, 502 | 503) {
            format!("the listener answers a valid GET with {status}, not {code}")
        } else {
            format!(
                "the listener forwards a valid GET (it got {})",
                describe(Some(lex))
            )
        };
        return ramp.map(|(ro, _)| {
            Draft::new(id, Verdict::RuledOut, reason).with(
                format!("baseline GET via the listener: {}", describe(Some(lex))),
                &[lo, ro],
            )
        });
    }
    let got = format!(
        "baseline GET via the listener: {} in {}{}",
        describe(Some(lex)),
        fmt_ms(lex.timings.total_ms),
        lex.response.as_ref().map(body_of).unwrap_or_default()
    );
    let ramp_text = ramp.map(|(ro, r)| {
        let n = r.answers();
        let all = r.total(code);
        (
            ro,
            format!(
                "{all} of {n} ramp requests through the listener got {code} ({})",
                steps_text(r)
            ),
        )
    });
    let bo = view.find(Family::Protocol, "baseline", Role::Backend);
    let Some(bo) = bo else {
        let d = Draft::new(
            id,
            Verdict::Inconclusive,
            format!(
                "the listener answers {code}{}; name the backend to tell whether it is up",
                if looks_like_lb_page(lex) {
                    " with its own error page"
                } else {
                    ""
                }
            ),
        )
        .with(got, &[lo]);
        return Some(match ramp_text {
            Some((ro, t)) => d.with(t, &[ro]),
            None => d,
        });
    };
    let bex = bo.exchange.as_ref();
    let refs = [lo, bo];
    let direct = format!(
        "the same GET straight to the backend: {}{}",
        describe(bex),
        bex.map(|e| format!(" in {}", fmt_ms(e.timings.total_ms)))
            .unwrap_or_default()
    );
    let bex = bex?;
    if bex.end.never_connected() {
        return Some(
            Draft::new(
                id,
                Verdict::Inconclusive,
                "the backend named is itself unreachable, which explains the listener's answer (see 502.backend-unreachable); whether other backends exist behind the listener cannot be seen from here",
            )
            .with(got, &refs)
            .with(direct, &refs),
        );
    }
    let (origin, why) = attribution::origin(lex, Some(bex));
    let Some(b) = bex.response.as_ref() else {
        return Some(
            Draft::new(
                id,
                Verdict::Inconclusive,
                "the backend gave no HTTP answer to compare with",
            )
            .with(got, &refs)
            .with(direct, &refs),
        );
    };
    if b.status == code || origin == Origin::Backend {
        return Some(
            Draft::new(
                id,
                Verdict::RuledOut,
                format!(
                    "the backend answers {} itself; the listener passes it on ({why})",
                    b.status
                ),
            )
            .with(got, &refs)
            .with(direct, &refs),
        );
    }
    if b.status >= 500 || !b.problems.is_empty() || !b.complete {
        return Some(
            Draft::new(
                id,
                Verdict::RuledOut,
                format!(
                    "the backend's own answer ({}) is faulty: the listener's {code} follows from it, not from having no backend",
                    describe(Some(bex))
                ),
            )
            .with(got, &refs)
            .with(direct, &refs),
        );
    }
    // "At once": no slower than the backend's own answer, give or take loopback jitter. A
    // listener that took longer may have tried a backend and given up.
    let listener_ms = lex.timings.total_ms;
    let backend_ms = bex.timings.total_ms;
    if listener_ms > backend_ms * 2.0 + 100.0 {
        return Some(
            Draft::new(
                id,
                Verdict::Inconclusive,
                format!(
                    "the listener's {code} took {}, longer than the backend's own answer ({}): it may have tried a backend",
                    fmt_ms(listener_ms),
                    fmt_ms(backend_ms)
                ),
            )
            .with(got, &refs)
            .with(direct, &refs),
        );
    }
    let mut d = Draft::new(
        id,
        Verdict::Confirmed,
        format!(
            "the listener answers {code} itself, at once, while the backend answers {} directly: the listener has no backend it will send to",
            b.status
        ),
    )
    .with(got, &refs)
    .with(direct, &refs)
    .with(format!("who answered: {why}"), &refs);
    if let Some((ro, t)) = ramp_text {
        d = d.with(t, &[ro]);
    }
    Some(d)
}
