//! Rules on load and availability: rate limiting and listeners with no backend to send to (503,
//! 502 all-unhealthy).

use crate::probe::load::StepStats;
use crate::probe::rate::{RampStop, RateResult, SecondTry};
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
                        "{} of {} answers in that step{again} were 503",
                        s.count(503),
                        s.answers()
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
        "{} of {} answers were 503, never {:.0}% of a step's",
        l.total(503),
        l.answers(),
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
            request: SentRequest {
                text: String::new(),
                bytes: 0,
                exact: false,
            },
            exchange: None,
            detail: Detail::Rate(result),
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
