//! Rules on the backend's answers themselves: malformed responses, early closes, error codes the
//! listener maps to 502.
//!
//! Each rule looks at the `response` family's pairs (a valid GET and HEAD, straight to the
//! backend and through the listener), judges each pair, and keeps the strongest judgement:
//! confirmed if any pair confirms, inconclusive if any could not decide, ruled out only when
//! every pair rules the cause out. The three causes are kept apart on purpose: a backend that
//! closes without a byte is an early close (and, behind nginx, a mapped error), never a
//! malformed response; a malformed answer is never an early close.

use crate::probe::response::{Ending, Problem, ResponseCheck};
use crate::probe::{Detail, Family, Observation};

use super::rules::Rule;
use super::{describe, Context, Draft, Pair, Verdict, View};

const MALFORMED: &str = "502.malformed-backend-response";
const CLOSED_EARLY: &str = "500.backend-closed-early";
const MAPPED: &str = "502.backend-error-mapped";

/// nginx's default `proxy_buffer_size` is one memory page: a backend header block larger than
/// this gets "upstream sent too big header" and a 502.
const LISTENER_HEAD_BUFFER: usize = 4096;

pub(crate) const RULE: Rule = Rule {
    name: "response",
    causes: &[MALFORMED, CLOSED_EARLY, MAPPED],
    decide: drafts,
};

fn drafts(view: &View<'_>, ctx: &Context<'_>) -> Vec<Draft> {
    let _ = ctx;
    let pairs: Vec<Checked<'_>> = view
        .pairs(Family::Response)
        .into_iter()
        .filter_map(Checked::of)
        .collect();
    if pairs.is_empty() {
        return Vec::new();
    }
    [
        merge(MALFORMED, pairs.iter().filter_map(malformed).collect()),
        merge(
            CLOSED_EARLY,
            pairs.iter().filter_map(closed_early).collect(),
        ),
        merge(MAPPED, pairs.iter().filter_map(error_mapped).collect()),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// One pair with the strict checks of its answers.
struct Checked<'a> {
    pair: Pair<'a>,
    method: &'a str,
    listener: Option<&'a ResponseCheck>,
    backend: Option<&'a ResponseCheck>,
}

impl<'a> Checked<'a> {
    fn of(pair: Pair<'a>) -> Option<Checked<'a>> {
        let check = |o: Option<&'a Observation>| match o.map(|o| &o.detail) {
            Some(Detail::Response(c)) => Some(c),
            _ => None,
        };
        let listener = check(pair.listener);
        let backend = check(pair.backend);
        let method = listener.or(backend)?.method.as_str();
        Some(Checked {
            pair,
            method,
            listener,
            backend,
        })
    }

    fn observations(&self) -> Vec<&'a Observation> {
        self.pair.observations()
    }

    fn backend_text(&self) -> String {
        format!(
            "a valid {} straight to the backend: {}",
            self.method,
            answer_text(self.pair.backend, self.backend)
        )
    }

    fn listener_text(&self) -> String {
        format!(
            "the same {} through the listener: {}",
            self.method,
            answer_text(self.pair.listener, self.listener)
        )
    }
}

/// What one side answered, with what the strict parse found.
fn answer_text(obs: Option<&Observation>, check: Option<&ResponseCheck>) -> String {
    let got = describe(obs.and_then(|o| o.exchange.as_ref()));
    let Some(check) = check else {
        return got;
    };
    if check.problems.is_empty() {
        return if check.complete {
            format!("{got}, complete, parses cleanly")
        } else {
            format!("{got}, incomplete ({})", check.ending.as_str())
        };
    }
    let problems: Vec<String> = check.problems.iter().map(Problem::to_string).collect();
    if check.status.is_some() {
        format!("{got} — {}", problems.join("; "))
    } else {
        problems.join("; ")
    }
}

/// One pair's judgement on one cause.
struct Judgement {
    verdict: Verdict,
    reason: String,
    evidence: Vec<String>,
    observations: Vec<String>,
}

impl Judgement {
    fn new(verdict: Verdict, reason: impl Into<String>, c: &Checked<'_>) -> Judgement {
        let mut evidence = Vec::new();
        if c.backend.is_some() {
            evidence.push(c.backend_text());
        }
        if c.listener.is_some() {
            evidence.push(c.listener_text());
        }
        Judgement {
            verdict,
            reason: reason.into(),
            evidence,
            observations: c.observations().iter().map(|o| o.id.clone()).collect(),
        }
    }

    fn note(mut self, text: impl Into<String>) -> Judgement {
        self.evidence.push(text.into());
        self
    }
}

/// Confirmed if any pair confirms, inconclusive if any could not decide, else ruled out. The
/// reason is the first pair's of the winning verdict; the evidence is every pair's.
fn merge(cause: &str, judgements: Vec<Judgement>) -> Option<Draft> {
    let rank = |v: Verdict| match v {
        Verdict::Confirmed | Verdict::Reproduced => 0,
        Verdict::Inconclusive => 1,
        Verdict::RuledOut => 2,
    };
    let best = judgements.iter().min_by_key(|j| rank(j.verdict))?;
    let mut draft = Draft::new(cause, best.verdict, best.reason.clone());
    for j in &judgements {
        for text in &j.evidence {
            draft.evidence.push(super::Evidence {
                text: text.clone(),
                basis: super::Basis::Measured,
                observations: j.observations.clone(),
            });
        }
    }
    Some(draft)
}

fn no_answer_to_judge(check: &ResponseCheck) -> bool {
    check.status.is_none() && !check.no_response() && check.malformed().is_empty()
}

fn joined(problems: &[&Problem]) -> String {
    problems
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

fn same_problems(a: &[&Problem], b: &[&Problem]) -> bool {
    !a.is_empty() && a == b
}

fn malformed(c: &Checked<'_>) -> Option<Judgement> {
    let listener_status = c.pair.listener_status();
    let Some(b) = c.backend else {
        return (listener_status == Some(502)).then(|| {
            Judgement::new(
                Verdict::Inconclusive,
                format!(
                    "the listener answers a valid {} with 502; name the backend to parse its own answer",
                    c.method
                ),
                c,
            )
        });
    };
    let bad = b.malformed();
    if !bad.is_empty() {
        let what = joined(&bad);
        let tail = match (c.listener, listener_status) {
            (None, _) => "; name the listener to see whether it refuses it".to_string(),
            (Some(_), Some(502)) if b.status != Some(502) => {
                "; the listener refuses it and answers 502".to_string()
            }
            // nginx relays an answer without a valid status line byte for byte (as HTTP/0.9).
            (Some(l), _) if same_problems(&l.malformed(), &bad) => {
                "; the listener tolerated it and passed it on unchanged".to_string()
            }
            (Some(l), Some(s)) if Some(s) == b.status && l.clean() => format!(
                "; the listener tolerated it: it passed the answer on ({s}) with the fault repaired"
            ),
            (Some(_), Some(s)) if Some(s) == b.status => {
                format!("; the listener tolerated it and passed the answer on ({s})")
            }
            (Some(_), _) => format!("; the listener answers {}", describe(c.pair.listener_ex())),
        };
        return Some(Judgement::new(
            Verdict::Confirmed,
            format!(
                "the backend's answer to a valid {} is not valid HTTP ({what}){tail}",
                c.method
            ),
            c,
        ));
    }
    if b.no_response() {
        return Some(Judgement::new(
            Verdict::RuledOut,
            format!(
                "the backend sends no bytes at all to a valid {}: nothing malformed to relay (an early close, see {CLOSED_EARLY})",
                c.method
            ),
            c,
        ));
    }
    if no_answer_to_judge(b) {
        return Some(Judgement::new(
            Verdict::Inconclusive,
            format!(
                "no answer from the backend to parse ({})",
                describe(c.pair.backend_ex())
            ),
            c,
        ));
    }
    if let Some(head) = b.head_bytes.filter(|&n| n > LISTENER_HEAD_BUFFER) {
        if listener_status == Some(502) && b.status != Some(502) {
            return Some(
                Judgement::new(
                    Verdict::Confirmed,
                    format!(
                        "the backend's header block ({head} bytes) parses but is larger than a listener's default response buffer, and the listener answers 502"
                    ),
                    c,
                )
                .note(format!(
                    "nginx's default proxy_buffer_size is {LISTENER_HEAD_BUFFER} bytes (one memory page)"
                )),
            );
        }
    }
    let reason = match b.cut_short() {
        Some(p) => format!(
            "the backend's answer to a valid {} parses cleanly as far as it goes; it is cut short ({p}), see {CLOSED_EARLY}",
            c.method
        ),
        None => format!(
            "the backend's answer to a valid {} parses cleanly",
            c.method
        ),
    };
    Some(Judgement::new(Verdict::RuledOut, reason, c))
}

/// What the listener made of an early close, for the evidence: the code differs by listener.
const CLOSE_CODES_NOTE: &str =
    "nginx reports an upstream's early close as 502 (\"upstream prematurely closed connection\"); the reference load balancer documents 500";

fn closed_early(c: &Checked<'_>) -> Option<Judgement> {
    let Some(b) = c.backend else {
        let cut = c.listener.and_then(ResponseCheck::cut_short)?;
        return Some(Judgement::new(
            Verdict::Inconclusive,
            format!(
                "the listener's answer to a valid {} is cut short ({cut}); name the backend to see whether it closes early",
                c.method
            ),
            c,
        ));
    };
    let not_http = b
        .problems
        .iter()
        .any(|p| matches!(p, Problem::NotHttp { .. }));
    if not_http {
        return Some(Judgement::new(
            Verdict::RuledOut,
            format!(
                "the backend answers a valid {} with bytes that are not HTTP: a malformed answer, not an early close (see {MALFORMED})",
                c.method
            ),
            c,
        ));
    }
    if let Some(cut) = b.cut_short() {
        let what = match cut {
            Problem::NoResponse { ending } => format!(
                "the backend {} the connection without sending a response",
                match ending {
                    Ending::Reset => "resets",
                    _ => "closes",
                }
            ),
            Problem::ShortBody { received, expected } => format!(
                "the backend closes after {received} of the {expected} body bytes its Content-Length announces"
            ),
            other => format!("the backend's answer is cut short: {other}"),
        };
        let through = match c.pair.listener {
            Some(_) => format!("; the listener answers {}", describe(c.pair.listener_ex())),
            None => String::new(),
        };
        let mut j = Judgement::new(
            Verdict::Confirmed,
            format!("{what} (a valid {}){through}", c.method),
            c,
        );
        if c.listener.is_some() {
            j = j.note(CLOSE_CODES_NOTE);
        }
        return Some(j);
    }
    if b.complete {
        return Some(Judgement::new(
            Verdict::RuledOut,
            format!(
                "the backend's answer to a valid {} arrives complete before the connection ends",
                c.method
            ),
            c,
        ));
    }
    Some(Judgement::new(
        Verdict::Inconclusive,
        format!(
            "the backend's answer to a valid {} neither completed nor was closed early ({})",
            c.method,
            b.ending.as_str()
        ),
        c,
    ))
}

/// The backend's other failure the listener might turn into 502: an error status other than
/// 502, or a close without a response (nginx's 444).
fn other_failure(b: &ResponseCheck) -> Option<String> {
    if b.no_response() {
        return Some("closes the connection without a response (as nginx's 444 does)".into());
    }
    match b.status {
        Some(s) if s >= 400 && s != 502 && b.malformed().is_empty() => Some(format!("answers {s}")),
        _ => None,
    }
}

fn error_mapped(c: &Checked<'_>) -> Option<Judgement> {
    let listener_status = c.pair.listener_status();
    let Some(b) = c.backend else {
        return (listener_status == Some(502)).then(|| {
            Judgement::new(
                Verdict::Inconclusive,
                format!(
                    "the listener answers a valid {} with 502; name the backend to see what it answered",
                    c.method
                ),
                c,
            )
        });
    };
    if let Some(failure) = other_failure(b) {
        let listener = describe(c.pair.listener_ex());
        return Some(match (c.listener, listener_status) {
            (None, _) => Judgement::new(
                Verdict::Inconclusive,
                format!(
                    "the backend {failure} to a valid {}; name the listener to see what it makes of it",
                    c.method
                ),
                c,
            ),
            (Some(_), Some(502)) => Judgement::new(
                Verdict::Confirmed,
                format!(
                    "the backend {failure} to a valid {}; the listener turns it into {listener}",
                    c.method
                ),
                c,
            ),
            (Some(_), Some(s)) if Some(s) == b.status => Judgement::new(
                Verdict::RuledOut,
                format!(
                    "the listener passes the backend's {s} on unchanged (see {s}.passthrough)"
                ),
                c,
            ),
            (Some(_), _) => Judgement::new(
                Verdict::RuledOut,
                format!(
                    "the backend {failure} and the listener answers {listener}, not 502"
                ),
                c,
            ),
        });
    }
    if !b.malformed().is_empty() {
        return Some(Judgement::new(
            Verdict::RuledOut,
            format!(
                "the backend's answer is malformed, not another error code: a 502 for it is {MALFORMED}"
            ),
            c,
        ));
    }
    Some(match b.status {
        Some(502) => Judgement::new(
            Verdict::RuledOut,
            "the backend answers 502 itself (see 502.passthrough)",
            c,
        ),
        Some(s) => Judgement::new(
            Verdict::RuledOut,
            format!("the backend answers {s}: no other error for the listener to turn into 502"),
            c,
        ),
        None => Judgement::new(
            Verdict::Inconclusive,
            format!(
                "no answer from the backend to compare with ({})",
                describe(c.pair.backend_ex())
            ),
            c,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::Catalogue;
    use crate::probe::response::test_support::exchange;
    use crate::probe::SentRequest;
    use crate::profile::Profile;
    use crate::target::Role;
    use crate::transport::ConnEnd;

    const OK: &[u8] =
        b"HTTP/1.1 200 OK\r\nServer: lbprobe-lab\r\nContent-Length: 11\r\n\r\n{\"ok\":true}";
    const NGINX_502: &[u8] = b"HTTP/1.1 502 Bad Gateway\r\nServer: nginx\r\nContent-Length: 44\r\n\r\n<hr><center>nginx</center></body></html>\r\n\r\n";
    const NGINX_504: &[u8] = b"HTTP/1.1 504 Gateway Time-out\r\nServer: nginx\r\nContent-Length: 44\r\n\r\n<hr><center>nginx</center></body></html>\r\n\r\n";
    const BACKEND_504: &[u8] =
        b"HTTP/1.1 504 Gateway Timeout\r\nServer: lbprobe-lab\r\nContent-Length: 2\r\n\r\n{}";

    /// What one side sent and how its connection ended.
    type Answer = (&'static [u8], ConnEnd);

    fn obs(id: usize, role: Role, variant: &str, answer: &Answer) -> Observation {
        let head = variant == "head";
        let ex = exchange(answer.0, answer.1.clone(), head);
        let method = if head { "HEAD" } else { "GET" };
        Observation {
            id: format!("o{id}"),
            family: Family::Response,
            variant: variant.into(),
            role,
            well_formed: true,
            evidence_for: Vec::new(),
            request: SentRequest::described("", 0, true),
            detail: Detail::Response(ResponseCheck::of(method, &ex)),
            exchange: Some(ex),
            logged: None,
        }
    }

    /// A GET pair with the given answers (`None`: that side was not probed).
    fn run(backend: Option<Answer>, listener: Option<Answer>) -> Vec<Draft> {
        let mut observations = Vec::new();
        if let Some(l) = &listener {
            observations.push(obs(1, Role::Listener, "get", l));
        }
        if let Some(b) = &backend {
            observations.push(obs(2, Role::Backend, "get", b));
        }
        let profile = Profile::clb();
        let ctx = Context {
            profile: &profile,
            listener_tls: Some(false),
            has_backend: backend.is_some(),
        };
        drafts(
            &View {
                observations: &observations,
                reached: None,
            },
            &ctx,
        )
    }

    fn verdict(drafts: &[Draft], cause: &str) -> Option<Verdict> {
        drafts.iter().find(|d| d.cause == cause).map(|d| d.verdict)
    }

    fn draft<'a>(drafts: &'a [Draft], cause: &str) -> &'a Draft {
        drafts.iter().find(|d| d.cause == cause).expect(cause)
    }

    fn evidence(d: &Draft) -> String {
        crate::classify::evidence_text(&d.evidence)
    }

    use Verdict::{Confirmed as C, Inconclusive as I, RuledOut as R};

    #[test]
    fn one_row_per_backend_fault() {
        let big_head: &'static [u8] = Box::leak(
            format!(
                "HTTP/1.1 200 OK\r\nSet-Cookie: {}\r\nContent-Length: 0\r\n\r\n",
                "c".repeat(6000)
            )
            .into_bytes()
            .into_boxed_slice(),
        );
        let fin = || ConnEnd::Fin;
        let done = || ConnEnd::Complete;
        #[expect(
            clippy::type_complexity,
            reason = "a table row spelled out is what the reader checks against the comment above it"
        )]
        let table: Vec<(&str, Option<Answer>, Option<Answer>, [Option<Verdict>; 3])> = vec![
            (
                "healthy",
                Some((OK, done())),
                Some((OK, done())),
                [Some(R), Some(R), Some(R)],
            ),
            (
                "malformed status line, listener 502",
                Some((b"HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n", done())),
                Some((NGINX_502, done())),
                [Some(C), Some(R), Some(R)],
            ),
            (
                "malformed header, listener passes it on",
                Some((
                    b"HTTP/1.1 200 OK\r\nBroken header\r\nContent-Length: 2\r\n\r\nok",
                    done(),
                )),
                Some((b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", done())),
                [Some(C), Some(R), Some(R)],
            ),
            (
                "short body",
                Some((b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc", fin())),
                Some((b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc", fin())),
                [Some(R), Some(C), Some(R)],
            ),
            (
                "close without response",
                Some((b"", fin())),
                Some((NGINX_502, done())),
                [Some(R), Some(C), Some(C)],
            ),
            (
                "reset without response",
                Some((b"", ConnEnd::Reset)),
                Some((NGINX_502, done())),
                [Some(R), Some(C), Some(C)],
            ),
            (
                "504 passed through",
                Some((BACKEND_504, done())),
                Some((BACKEND_504, done())),
                [Some(R), Some(R), Some(R)],
            ),
            (
                "504 mapped to 502",
                Some((BACKEND_504, done())),
                Some((NGINX_502, done())),
                [Some(R), Some(R), Some(C)],
            ),
            (
                "never answers",
                Some((b"", ConnEnd::Timeout)),
                Some((NGINX_504, done())),
                [Some(I), Some(I), Some(I)],
            ),
            (
                "garbage",
                Some((b"\x00\x01garbage", fin())),
                Some((NGINX_502, done())),
                [Some(C), Some(R), Some(R)],
            ),
            (
                "header block beyond the listener's buffer",
                Some((big_head, done())),
                Some((NGINX_502, done())),
                [Some(C), Some(R), Some(R)],
            ),
            (
                "no backend, listener 502",
                None,
                Some((NGINX_502, done())),
                [Some(I), None, Some(I)],
            ),
            (
                "no listener, backend closes",
                Some((b"", fin())),
                None,
                [Some(R), Some(C), Some(I)],
            ),
        ];
        for (name, backend, listener, want) in table {
            let drafts = run(backend, listener);
            let got = [
                verdict(&drafts, MALFORMED),
                verdict(&drafts, CLOSED_EARLY),
                verdict(&drafts, MAPPED),
            ];
            assert_eq!(got, want, "{name}: {drafts:#?}");
        }
    }

    #[test]
    fn malformed_evidence_names_the_problem_and_the_listener_answer() {
        let drafts = run(
            Some((
                b"HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n",
                ConnEnd::Complete,
            )),
            Some((NGINX_502, ConnEnd::Complete)),
        );
        let d = draft(&drafts, MALFORMED);
        assert!(d.reason.contains("malformed status line"), "{}", d.reason);
        assert!(d.reason.contains("answers 502"), "{}", d.reason);
        let ev = evidence(d);
        assert!(
            ev.contains("straight to the backend: malformed status line"),
            "{ev}"
        );
        assert!(ev.contains("through the listener: 502 Bad Gateway"), "{ev}");
        assert_eq!(d.evidence[0].observations, ["o1", "o2"]);

        let tolerated = run(
            Some((
                b"HTTP/1.1 200 OK\r\nBroken header\r\nContent-Length: 2\r\n\r\nok",
                ConnEnd::Complete,
            )),
            Some((
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
                ConnEnd::Complete,
            )),
        );
        let d = draft(&tolerated, MALFORMED);
        assert!(d.reason.contains("with the fault repaired"), "{}", d.reason);
        assert!(
            d.reason.contains("header line without colon"),
            "{}",
            d.reason
        );

        // Relayed byte for byte (nginx's HTTP/0.9 fallback): the same problem on both sides.
        let bad: &[u8] = b"HTTP/1.1 2OO OK\r\nContent-Length: 0\r\n\r\n";
        let relayed = run(
            Some((bad, ConnEnd::Complete)),
            Some((bad, ConnEnd::Complete)),
        );
        let d = draft(&relayed, MALFORMED);
        assert_eq!(d.verdict, C);
        assert!(d.reason.contains("passed it on unchanged"), "{}", d.reason);
    }

    #[test]
    fn early_close_evidence_counts_bytes_and_names_both_codes() {
        let drafts = run(
            Some((
                b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc",
                ConnEnd::Fin,
            )),
            Some((NGINX_502, ConnEnd::Complete)),
        );
        let d = draft(&drafts, CLOSED_EARLY);
        assert!(d.reason.contains("3 of the 100 body bytes"), "{}", d.reason);
        assert!(d.reason.contains("listener answers 502"), "{}", d.reason);
        let ev = evidence(d);
        assert!(ev.contains("3 of 100 bytes"), "{ev}");
        assert!(ev.contains("reference load balancer documents 500"), "{ev}");
        let m = draft(&drafts, MALFORMED);
        assert!(m.reason.contains("cut short"), "{}", m.reason);
    }

    #[test]
    fn mapped_evidence_has_both_statuses() {
        let drafts = run(
            Some((BACKEND_504, ConnEnd::Complete)),
            Some((NGINX_502, ConnEnd::Complete)),
        );
        let d = draft(&drafts, MAPPED);
        assert!(d.reason.contains("answers 504"), "{}", d.reason);
        assert!(d.reason.contains("turns it into 502"), "{}", d.reason);
        let passed = run(
            Some((BACKEND_504, ConnEnd::Complete)),
            Some((BACKEND_504, ConnEnd::Complete)),
        );
        assert!(draft(&passed, MAPPED).reason.contains("504.passthrough"));
        let closed = run(
            Some((b"", ConnEnd::Fin)),
            Some((NGINX_502, ConnEnd::Complete)),
        );
        let d = draft(&closed, MAPPED);
        assert!(d.reason.contains("444"), "{}", d.reason);
    }

    #[test]
    fn a_confirming_pair_wins_over_a_clean_one() {
        // A short body shows in the GET; the HEAD's answer is complete.
        let observations = vec![
            obs(
                1,
                Role::Backend,
                "get",
                &(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc",
                    ConnEnd::Fin,
                ),
            ),
            obs(
                2,
                Role::Backend,
                "head",
                &(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n",
                    ConnEnd::Complete,
                ),
            ),
        ];
        let profile = Profile::clb();
        let ctx = Context {
            profile: &profile,
            listener_tls: None,
            has_backend: true,
        };
        let drafts = drafts(
            &View {
                observations: &observations,
                reached: None,
            },
            &ctx,
        );
        let d = draft(&drafts, CLOSED_EARLY);
        assert_eq!(d.verdict, C);
        assert!(
            evidence(d).contains("valid HEAD straight to the backend: 200 OK, complete"),
            "{}",
            evidence(d)
        );
    }

    #[test]
    fn no_response_family_no_drafts() {
        let profile = Profile::clb();
        let ctx = Context {
            profile: &profile,
            listener_tls: None,
            has_backend: true,
        };
        assert!(drafts(&View::default(), &ctx).is_empty());
    }

    #[test]
    fn every_cause_is_in_the_catalogue() {
        for id in [MALFORMED, CLOSED_EARLY, MAPPED] {
            assert!(Catalogue::builtin().get(id).is_some(), "{id}");
        }
    }
}
