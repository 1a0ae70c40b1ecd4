//! Rules on incomplete requests: 408 from the listener's request timeout, 400 when the client
//! closes early.
//!
//! What the probe can see is limited: nginx, for one, answers neither case on the wire (it closes
//! and writes 408 or 400 into its access log), so the evidence says which part was seen and
//! which part lives in the listener's log.

use std::time::Duration;

use crate::probe::partial::{Outcome, PartialResult, CLOSE_EARLY, WAITING};
use crate::probe::{Detail, Family, Observation};
use crate::profile::Cited;

use super::rules::Rule;
use super::{Context, Draft, Pair, Verdict, View};

const PARTIAL_REQUEST: &str = "408.partial-request";
const CLIENT_CLOSED_EARLY: &str = "400.client-closed-early";

/// A close sooner than this after our last byte is a refusal, not a timer running out: request
/// timeouts are whole seconds in every listener we know (nginx, HAProxy, cloud LBs).
const IMMEDIATE_MS: f64 = 500.0;

pub(crate) const RULE: Rule = Rule {
    name: "partial",
    causes: &[PARTIAL_REQUEST, CLIENT_CLOSED_EARLY],
    decide: drafts,
};

fn drafts(view: &View<'_>, ctx: &Context<'_>) -> Vec<Draft> {
    let pairs = view.pairs(Family::Partial);
    let mut out = Vec::new();
    out.extend(partial_request(&pairs, ctx));
    out.extend(client_closed_early(&pairs));
    out
}

fn result(o: Option<&Observation>) -> Option<&PartialResult> {
    match &o?.detail {
        Detail::Partial(r) => Some(r),
        _ => None,
    }
}

/// What the listener's access log says of this probe (`--access-log`), in words.
fn logged(o: &Observation) -> Option<String> {
    let line = o.logged.as_ref()?;
    Some(format!(
        "the listener logged {} for this probe (its access-log line found by the probe's marker {})",
        line.describe(),
        line.marker
    ))
}

/// `2.0 s`, `500 ms` or `under 1 ms`.
fn time(ms: f64) -> String {
    if ms < 1.0 {
        "under 1 ms".to_string()
    } else if ms >= 1000.0 {
        format!("{:.1} s", ms / 1000.0)
    } else {
        format!("{ms:.0} ms")
    }
}

/// What a side did with a waiting variant, in words: `closed the connection without an answer
/// after 2.0 s`.
fn did(r: &PartialResult, o: &Observation) -> String {
    let after = time(r.waited_ms);
    match &r.outcome {
        Outcome::Answered { status } => {
            let reason = o
                .exchange
                .as_ref()
                .and_then(|e| e.response.as_ref())
                .map(|r| r.reason.as_str())
                .filter(|r| !r.is_empty())
                .map(|r| format!(" {r}"))
                .unwrap_or_default();
            format!("answered {status}{reason} after {after}")
        }
        Outcome::NotHttp => format!("sent bytes that are not HTTP after {after}"),
        Outcome::Closed => format!("closed the connection without an answer after {after}"),
        Outcome::Reset => format!("reset the connection without an answer after {after}"),
        Outcome::StillWaiting => format!("was still waiting at the cap of {}", time(r.cap_ms)),
        Outcome::Failed { why } => format!("could not be probed ({why})"),
    }
}

/// How the listener ended one waiting variant, for the verdict.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Ending {
    /// Its own timer ran out: 408, or a close/reset after a real wait.
    GaveUp {
        ms: f64,
        answered: bool,
    },
    /// It forwarded the incomplete request: the answer is the backend's (same body) or a
    /// gateway error.
    Forwarded,
    /// Another answer, or a close at once: not a timeout.
    Other,
    StillWaiting,
    Failed,
}

fn ending(pair: &Pair<'_>) -> Option<Ending> {
    let r = result(pair.listener)?;
    Some(match &r.outcome {
        Outcome::Answered { status } if same_body(pair) || (500..600).contains(status) => {
            Ending::Forwarded
        }
        Outcome::Answered { status: 408 } => Ending::GaveUp {
            ms: r.waited_ms,
            answered: true,
        },
        Outcome::Closed | Outcome::Reset if r.waited_ms >= IMMEDIATE_MS => Ending::GaveUp {
            ms: r.waited_ms,
            answered: false,
        },
        Outcome::Answered { .. } | Outcome::NotHttp | Outcome::Closed | Outcome::Reset => {
            Ending::Other
        }
        Outcome::StillWaiting => Ending::StillWaiting,
        Outcome::Failed { .. } => Ending::Failed,
    })
}

/// The listener's answer carries the backend's own body: it was passed on, not written by it.
fn same_body(pair: &Pair<'_>) -> bool {
    let body = |ex: Option<&crate::transport::Exchange>| {
        ex.and_then(|e| e.response.as_ref())
            .map(|r| r.body_prefix.clone())
            .filter(|b| !b.is_empty())
    };
    body(pair.listener_ex()).is_some_and(|l| Some(l) == body(pair.backend_ex()))
}

/// One evidence line per variant: the listener and, side by side, the backend.
fn side_by_side(pair: &Pair<'_>, r: &PartialResult, listener: &Observation) -> String {
    let backend = match (pair.backend, result(pair.backend)) {
        (Some(o), Some(b)) => format!("; straight to the backend the same bytes: it {}", did(b, o)),
        _ => String::new(),
    };
    format!(
        "{} ({}): the listener {}{backend}",
        pair.variant,
        r.incomplete,
        did(r, listener)
    )
}

fn partial_request(pairs: &[Pair<'_>], ctx: &Context<'_>) -> Option<Draft> {
    let waiting: Vec<(&Pair<'_>, Ending)> = WAITING
        .iter()
        .filter_map(|v| pairs.iter().find(|p| p.variant == *v))
        .filter_map(|p| Some((p, ending(p)?)))
        .collect();
    if waiting.is_empty() {
        return None;
    }
    let documented = ctx.profile.request_timeout();
    let gave_up = waiting.iter().find_map(|(p, e)| match e {
        Ending::GaveUp { ms, answered } => Some((p, *ms, *answered)),
        _ => None,
    });
    let still = waiting
        .iter()
        .find(|(_, e)| *e == Ending::StillWaiting)
        .map(|(p, _)| p);
    // What the listener logged for the variants it gave up on, where a line was found.
    let logged_gave_up: Vec<u16> = waiting
        .iter()
        .filter(|(_, e)| matches!(e, Ending::GaveUp { .. }))
        .filter_map(|(p, _)| Some(p.listener?.logged.as_ref()?.status))
        .collect();
    let gave_up_count = waiting
        .iter()
        .filter(|(_, e)| matches!(e, Ending::GaveUp { .. }))
        .count();
    let logged_other = !logged_gave_up.is_empty()
        && logged_gave_up.len() == gave_up_count
        && logged_gave_up.iter().all(|s| *s != 408);
    let mut draft = if let (Some((p, ms, false)), true) = (gave_up, logged_other) {
        // It gives up, but its own log records no 408 for any of them: what its clients meet
        // is not this cause's 408.
        let mut codes = logged_gave_up.clone();
        codes.sort_unstable();
        codes.dedup();
        let codes: Vec<String> = codes.iter().map(u16::to_string).collect();
        Draft::new(
            PARTIAL_REQUEST,
            Verdict::RuledOut,
            format!(
                "the listener closes the connection after waiting {} for the rest of an incomplete request ({}), but logs it as {}, not 408",
                time(ms),
                p.variant,
                codes.join(" or ")
            ),
        )
    } else if let Some((p, ms, answered)) = gave_up {
        let how = match (answered, p.listener.and_then(|o| o.logged.as_ref())) {
            (true, _) => "answers 408".to_string(),
            (false, Some(line)) => format!("closes the connection (and logs {})", line.status),
            (false, None) => "closes the connection".to_string(),
        };
        let mut d = Draft::new(
            PARTIAL_REQUEST,
            Verdict::Reproduced,
            format!(
                "the listener {how} after waiting {} for the rest of an incomplete request ({})",
                time(ms),
                p.variant
            ),
        );
        d = d.with(
            format!(
                "the listener gave up after {} (measured: its own request timeout)",
                time(ms)
            ),
            &p.observations(),
        );
        if let Some(doc) = &documented {
            d = d.cites(doc, compare_with_profile(ms, doc));
        }
        d
    } else if let Some(p) = still {
        let cap = result(p.listener).map_or(0.0, |r| r.cap_ms);
        let known = documented.as_ref().map_or(String::new(), |doc| {
            format!(" ({})", doc.says(&time(doc.value.as_secs_f64() * 1000.0)))
        });
        Draft::new(
            PARTIAL_REQUEST,
            Verdict::Inconclusive,
            format!(
                "the listener was still waiting for the rest of the request when the cap of {} ran out; \
                 raise max-wait above the listener's request timeout{known}",
                time(cap),
            ),
        )
    } else if waiting
        .iter()
        .any(|(_, e)| matches!(e, Ending::Other | Ending::Forwarded))
    {
        let forwarded = waiting.iter().any(|(_, e)| *e == Ending::Forwarded);
        Draft::new(
            PARTIAL_REQUEST,
            Verdict::RuledOut,
            if forwarded {
                "the listener forwards incomplete requests to the backend instead of timing them out"
            } else {
                "the listener does not wait and give up on incomplete requests: it answers or closes at once"
            },
        )
    } else {
        Draft::new(
            PARTIAL_REQUEST,
            Verdict::Inconclusive,
            "the incomplete requests could not be delivered to the listener",
        )
    };
    for (p, e) in &waiting {
        let Some((listener, r)) = p.listener.zip(result(p.listener)) else {
            continue;
        };
        let mut text = side_by_side(p, r, listener);
        if let Some(line) = logged(listener) {
            text.push_str(&format!("; {line}"));
        } else if let Ending::GaveUp {
            answered: false, ..
        } = e
        {
            text.push_str(
                "; the probe sees only the close: nginx ends a timed-out request this way and \
                 logs it as 408 (status=408, upstream_status=-, request_time at the timeout), \
                 so the listener's access log shows what it recorded",
            );
        }
        if *e == Ending::Forwarded {
            text.push_str("; the answer is the backend's, passed on (see 408.passthrough)");
        }
        draft = draft.with(text, &p.observations());
    }
    Some(draft)
}

/// The measured wait against the profile's request timeout (declared or documented).
fn compare_with_profile(ms: f64, doc: &Cited<Duration>) -> String {
    let documented = doc.value.as_secs_f64() * 1000.0;
    let says = doc.says(&format!("a request timeout of {}", time(documented)));
    let differs = (ms - documented).abs() > (documented * 0.2).max(1000.0);
    if !differs {
        return format!("{says}: the measured wait of {} matches it", time(ms));
    }
    let which = if ms < documented { "shorter" } else { "longer" };
    format!(
        "{says}; the measured wait of {} is markedly {which}: this listener is configured \
         differently, and clients that pause longer than {} mid-request are cut off",
        time(ms),
        time(ms)
    )
}

fn client_closed_early(pairs: &[Pair<'_>]) -> Option<Draft> {
    let pair = pairs.iter().find(|p| p.variant == CLOSE_EARLY);
    let listener_400s: Vec<(&Pair<'_>, &Observation, &PartialResult)> = WAITING
        .iter()
        .filter_map(|v| pairs.iter().find(|p| p.variant == *v))
        .filter_map(|p| Some((p, p.listener?, result(p.listener)?)))
        .filter(|(_, _, r)| r.outcome == Outcome::Answered { status: 400 })
        .collect();
    let (listener, r) = match pair.and_then(|p| p.listener.zip(result(p.listener))) {
        Some(found) => found,
        None if listener_400s.is_empty() => return None,
        None => {
            let mut d = Draft::new(
                CLIENT_CLOSED_EARLY,
                Verdict::Inconclusive,
                "the listener answers incomplete requests with 400, but the close-early probe did not run",
            );
            for (p, o, r) in &listener_400s {
                d = d.with(side_by_side(p, r, o), &p.observations());
            }
            return Some(d);
        }
    };
    let pair = pair?;
    let sent = format!(
        "{CLOSE_EARLY}: we sent {} bytes of a request cut in the middle of a header line",
        listener.request.bytes
    );
    let backend = match (pair.backend, result(pair.backend)) {
        (Some(_), Some(b)) => format!("; straight to the backend the same: {}", early(b)),
        _ => String::new(),
    };
    let mut draft = match (&r.outcome, &r.after_our_close) {
        (Outcome::StillWaiting, after) => {
            let answered_other = match after {
                Some(Outcome::Answered { status }) if *status != 400 => Some(*status),
                _ => None,
            };
            let logged_status = listener.logged.as_ref().map(|l| l.status);
            match (answered_other, logged_status) {
                (None, Some(status)) if status != 400 => Draft::new(
                    CLIENT_CLOSED_EARLY,
                    Verdict::RuledOut,
                    format!(
                        "we cut a request mid-header and closed after {}; the listener logged {status} for it, not 400{}",
                        time(r.waited_ms),
                        match status {
                            499 => ": it records a client that leaves as a client abort (see the 499 causes)",
                            408 => ": it records the abandoned request as a timeout",
                            _ => "",
                        }
                    ),
                ),
                (None, Some(_)) => Draft::new(
                    CLIENT_CLOSED_EARLY,
                    Verdict::Reproduced,
                    format!(
                        "we cut a request mid-header and closed after {} without the listener having \
                         answered, and the listener logged 400 for it",
                        time(r.waited_ms)
                    ),
                ),
                (Some(status), _) => Draft::new(
                    CLIENT_CLOSED_EARLY,
                    Verdict::RuledOut,
                    format!("the listener answers a client that closes mid-request with {status}, not 400"),
                ),
                (None, None) => Draft::new(
                    CLIENT_CLOSED_EARLY,
                    Verdict::Reproduced,
                    format!(
                        "we cut a request mid-header and closed after {} without the listener having \
                         answered: it is left with an incomplete request from a client that is gone, \
                         which nginx logs as 400; that record is in the listener's access log, which \
                         the probe cannot see",
                        time(r.waited_ms)
                    ),
                ),
            }
        }
        (Outcome::Answered { status: 400 }, _) => Draft::new(
            CLIENT_CLOSED_EARLY,
            Verdict::Reproduced,
            format!(
                "the listener answers a request cut mid-header with 400 after {}, before the client closes",
                time(r.waited_ms)
            ),
        ),
        (Outcome::Answered { status }, _) => Draft::new(
            CLIENT_CLOSED_EARLY,
            Verdict::RuledOut,
            format!(
                "the listener answers a request cut mid-header with {status}, not 400, before the client closes"
            ),
        ),
        (Outcome::Failed { why }, _) => Draft::new(
            CLIENT_CLOSED_EARLY,
            Verdict::Inconclusive,
            format!("the cut request could not be delivered to the listener ({why})"),
        ),
        (_, _) => Draft::new(
            CLIENT_CLOSED_EARLY,
            Verdict::Inconclusive,
            format!(
                "the listener ended the connection itself within {}, before we could close",
                time(r.waited_ms)
            ),
        ),
    };
    draft = draft.with(
        format!("{sent}; the listener {}{backend}", early(r)),
        &pair.observations(),
    );
    if let Some(line) = logged(listener) {
        draft = draft.with(line, &[listener]);
    } else if draft.verdict == Verdict::Reproduced && r.outcome == Outcome::StillWaiting {
        draft = draft.with(
            "the probe cannot see what the listener logged: look in its access log for the \
             probe's request at this time. nginx logs status=400 with upstream_status=-, \
             bytes_sent=0 and request_time equal to how long the client stayed (its error log, at \
             info level: \"client prematurely closed connection\"); a listener that had already \
             forwarded a complete request logs 499 instead; `--access-log FILE` finds that line \
             by the probe's marker and states it here",
            &[listener],
        );
    }
    for (p, o, r) in &listener_400s {
        draft = draft.with(
            format!(
                "the listener also answers an incomplete request with 400 itself: {}",
                side_by_side(p, r, o)
            ),
            &p.observations(),
        );
    }
    Some(draft)
}

/// What a side did with the close-early variant, in words.
fn early(r: &PartialResult) -> String {
    let before = match &r.outcome {
        Outcome::StillWaiting => format!("sent nothing in {}", time(r.waited_ms)),
        Outcome::Answered { status } => format!("answered {status} after {}", time(r.waited_ms)),
        Outcome::NotHttp => format!("sent bytes that are not HTTP after {}", time(r.waited_ms)),
        Outcome::Closed => format!("closed the connection after {}", time(r.waited_ms)),
        Outcome::Reset => format!("reset the connection after {}", time(r.waited_ms)),
        Outcome::Failed { why } => format!("could not be probed ({why})"),
    };
    let after_ms = r.after_close_ms.map(time).unwrap_or_default();
    let after = match &r.after_our_close {
        None => String::new(),
        Some(Outcome::StillWaiting) => {
            format!("; after our close it kept the connection open for the {after_ms} we watched")
        }
        Some(Outcome::Answered { status }) => {
            format!("; after our close it answered {status} within {after_ms}")
        }
        Some(Outcome::Closed) => format!("; after our close it closed too, within {after_ms}"),
        Some(Outcome::Reset) => {
            format!("; after our close it reset the connection within {after_ms}")
        }
        Some(Outcome::NotHttp) => "; after our close it sent bytes that are not HTTP".to_string(),
        Some(Outcome::Failed { why }) => format!("; after our close: {why}"),
    };
    format!("{before}{after}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::SentRequest;
    use crate::profile::Profile;
    use crate::target::Role;
    use crate::transport::{parse_response, ConnEnd, Exchange, ParseLimits};

    /// One observation of the partial family: `raw` is what the side sent back.
    fn obs(variant: &str, role: Role, outcome: Outcome, waited_ms: f64, raw: &[u8]) -> Observation {
        let close_early = variant == CLOSE_EARLY;
        let after = close_early.then_some(Outcome::Closed);
        Observation {
            id: format!("{variant}-{role}"),
            family: Family::Partial,
            variant: variant.into(),
            role,
            well_formed: false,
            evidence_for: Vec::new(),
            request: SentRequest::described("", 40, true),
            exchange: Some(Exchange {
                bytes_out: 40,
                bytes_in: raw.len(),
                response: parse_response(raw, false, &ParseLimits::default()),
                ..Exchange::ended("127.0.0.1:1", ConnEnd::Fin)
            }),
            detail: Detail::Partial(PartialResult {
                incomplete: "test".into(),
                cap_ms: if close_early { 500.0 } else { 6000.0 },
                outcome,
                waited_ms,
                we_closed_after_ms: close_early.then_some(waited_ms),
                after_our_close: after,
                after_close_ms: close_early.then_some(1.0),
            }),
            logged: None,
        }
    }

    const R408: &[u8] = b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 2\r\n\r\nbk";
    const R400: &[u8] = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 2\r\n\r\nlb";
    const R504: &[u8] = b"HTTP/1.1 504 Gateway Timeout\r\nContent-Length: 2\r\n\r\nlb";

    /// What one side did: outcome, wait (ms), the bytes it sent back.
    type Side = (Outcome, f64, &'static [u8]);

    /// Every waiting variant to both sides with these outcomes, plus a silent close-early.
    fn run(listener: Side, backend: Side) -> Vec<Observation> {
        let mut out = Vec::new();
        for v in WAITING {
            out.push(obs(
                v,
                Role::Listener,
                listener.0.clone(),
                listener.1,
                listener.2,
            ));
            out.push(obs(
                v,
                Role::Backend,
                backend.0.clone(),
                backend.1,
                backend.2,
            ));
        }
        out.push(obs(
            CLOSE_EARLY,
            Role::Listener,
            Outcome::StillWaiting,
            500.0,
            b"",
        ));
        out.push(obs(
            CLOSE_EARLY,
            Role::Backend,
            Outcome::StillWaiting,
            500.0,
            b"",
        ));
        out
    }

    fn finding(observations: &[Observation], profile: &Profile, cause: &str) -> Draft {
        let ctx = Context {
            profile,
            listener_tls: Some(false),
            has_backend: true,
        };
        drafts(
            &View {
                observations,
                reached: None,
            },
            &ctx,
        )
        .into_iter()
        .find(|d| d.cause == cause)
        .unwrap_or_else(|| panic!("no draft for {cause}"))
    }

    fn evidence(d: &Draft) -> String {
        crate::classify::evidence_text(&d.evidence)
    }

    #[test]
    fn verdicts_per_listener_behaviour() {
        let answered = |status| Outcome::Answered { status };
        let clb = Profile::clb();
        // (listener, backend, 408 verdict, words the reason or evidence must hold)
        let rows: Vec<(Side, Verdict, &[&str])> = vec![
            (
                (Outcome::Closed, 2000.0, b""),
                Verdict::Reproduced,
                &[
                    "body-missing",
                    "2.0 s",
                    "60.0 s",
                    "markedly shorter",
                    "logs it as 408",
                ],
            ),
            (
                (
                    answered(408),
                    60_000.0,
                    b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 2\r\n\r\nlb",
                ),
                Verdict::Reproduced,
                &["answers 408", "matches"],
            ),
            (
                (Outcome::StillWaiting, 6000.0, b""),
                Verdict::Inconclusive,
                &["raise max-wait", "6.0 s"],
            ),
            (
                (answered(400), 3.0, R400),
                Verdict::RuledOut,
                &["at once", "answered 400"],
            ),
            ((Outcome::Closed, 2.0, b""), Verdict::RuledOut, &["at once"]),
            (
                (answered(504), 6000.0, R504),
                Verdict::RuledOut,
                &["forwards"],
            ),
            // Same body as the backend's direct answer: the backend's 408, passed on.
            (
                (answered(408), 2000.0, R408),
                Verdict::RuledOut,
                &["forwards", "passthrough"],
            ),
        ];
        for (listener, verdict, words) in rows {
            let observations = run(listener.clone(), (answered(408), 2000.0, R408));
            let d = finding(&observations, &clb, PARTIAL_REQUEST);
            assert_eq!(d.verdict, verdict, "{listener:?}: {}", d.reason);
            let text = format!("{}\n{}", d.reason, evidence(&d));
            for w in words {
                assert!(text.contains(w), "{listener:?}: {w:?} not in {text}");
            }
            // The backend is always shown side by side.
            assert!(text.contains("straight to the backend"), "{text}");
        }
    }

    #[test]
    fn close_early_is_reproduced_when_the_listener_stays_silent() {
        let observations = run(
            (Outcome::Closed, 2000.0, b""),
            (Outcome::Closed, 2000.0, b""),
        );
        let d = finding(&observations, &Profile::clb(), CLIENT_CLOSED_EARLY);
        assert_eq!(d.verdict, Verdict::Reproduced, "{}", d.reason);
        let text = evidence(&d);
        assert!(text.contains("close-early"), "{text}");
        assert!(text.contains("access log"), "{text}");
        assert!(text.contains("after our close it closed too"), "{text}");
    }

    #[test]
    fn close_early_answered_otherwise_is_ruled_out_and_listener_400s_are_named() {
        let mut observations = run(
            (Outcome::Answered { status: 400 }, 3.0, R400),
            (Outcome::Closed, 2000.0, b""),
        );
        let listener_early = observations
            .iter_mut()
            .find(|o| o.variant == CLOSE_EARLY && o.role == Role::Listener)
            .unwrap();
        if let Detail::Partial(r) = &mut listener_early.detail {
            r.after_our_close = Some(Outcome::Answered { status: 408 });
        }
        let d = finding(&observations, &Profile::clb(), CLIENT_CLOSED_EARLY);
        assert_eq!(d.verdict, Verdict::RuledOut, "{}", d.reason);
        assert!(evidence(&d).contains("also answers an incomplete request with 400"));
    }

    fn logged_as(status: u16, upstream: Option<Vec<u16>>) -> crate::logs::probe_line::LoggedLine {
        crate::logs::probe_line::LoggedLine {
            marker: "ab12-7".into(),
            line: 3,
            status,
            upstream_status: upstream,
            request_time_s: Some(1.002),
            upstream_response_time_s: None,
            upstream_connect_time_s: None,
            termination: None,
        }
    }

    /// The silent-listener run with this logged for the listener's `variant`.
    fn run_logged(variant: &str, line: crate::logs::probe_line::LoggedLine) -> Vec<Observation> {
        let mut observations = run(
            (Outcome::Closed, 2000.0, b""),
            (Outcome::Closed, 2000.0, b""),
        );
        for o in observations
            .iter_mut()
            .filter(|o| o.variant == variant && o.role == Role::Listener)
        {
            o.logged = Some(line.clone());
        }
        observations
    }

    #[test]
    fn close_early_states_what_the_listener_logged_and_its_status_decides() {
        // (logged status, verdict, words)
        let rows: [(u16, Verdict, &[&str]); 3] = [
            (
                400,
                Verdict::Reproduced,
                &[
                    "logged 400 for it",
                    "status 400, upstream_status -, request_time 1.002 s",
                ],
            ),
            (
                499,
                Verdict::RuledOut,
                &["logged 499 for it, not 400", "client abort"],
            ),
            (
                408,
                Verdict::RuledOut,
                &["logged 408 for it, not 400", "timeout"],
            ),
        ];
        for (status, verdict, words) in rows {
            let observations = run_logged(CLOSE_EARLY, logged_as(status, Some(vec![])));
            let d = finding(&observations, &Profile::clb(), CLIENT_CLOSED_EARLY);
            assert_eq!(d.verdict, verdict, "{status}: {}", d.reason);
            let text = format!("{}\n{}", d.reason, evidence(&d));
            for w in words {
                assert!(text.contains(w), "{status}: {w:?} not in {text}");
            }
            // What the listener logged replaces the advice to go and look for it.
            assert!(!text.contains("look in its access log"), "{text}");
            assert!(text.contains("marker ab12-7"), "{text}");
        }
    }

    #[test]
    fn a_timeout_logged_as_408_reproduces_and_logged_otherwise_rules_out() {
        let mut observations = Vec::new();
        for status in [408, 400] {
            observations = run(
                (Outcome::Closed, 2000.0, b""),
                (Outcome::Closed, 2000.0, b""),
            );
            for o in observations
                .iter_mut()
                .filter(|o| o.role == Role::Listener && o.variant != CLOSE_EARLY)
            {
                o.logged = Some(logged_as(status, Some(vec![])));
            }
            let d = finding(&observations, &Profile::clb(), PARTIAL_REQUEST);
            let text = format!("{}\n{}", d.reason, evidence(&d));
            assert!(
                text.contains(&format!(
                    "the listener logged status {status}, upstream_status -"
                )),
                "{text}"
            );
            assert!(
                !text.contains("so the listener's access log shows"),
                "{text}"
            );
            if status == 408 {
                assert_eq!(d.verdict, Verdict::Reproduced, "{}", d.reason);
                assert!(d.reason.contains("logs 408"), "{}", d.reason);
            } else {
                assert_eq!(d.verdict, Verdict::RuledOut, "{}", d.reason);
                assert!(d.reason.contains("logs it as 400, not 408"), "{}", d.reason);
            }
        }
        // One variant without a line: a 400 on the others does not rule the 408 out.
        observations
            .iter_mut()
            .find(|o| o.role == Role::Listener && o.variant == WAITING[0])
            .unwrap()
            .logged = None;
        let d = finding(&observations, &Profile::clb(), PARTIAL_REQUEST);
        assert_eq!(d.verdict, Verdict::Reproduced, "{}", d.reason);
    }

    #[test]
    fn no_partial_observations_no_findings() {
        let ctx = Context {
            profile: &Profile::clb(),
            listener_tls: None,
            has_backend: false,
        };
        assert!(drafts(&View::default(), &ctx).is_empty());
    }
}
