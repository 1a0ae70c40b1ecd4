//! The malformed-request table: per template and side, whether the answer is what an RFC-strict
//! server gives, and the kinds grouped by which side refuses them. Pure: observations in, table out.

use std::collections::BTreeMap;

use serde::Serialize;

use super::attribution::{self, Origin};
use crate::probe::templates::{self, Strict, Template};
use crate::probe::{AfterAnswer, ConnAfter, Detail, Family, Observation, SequenceResult};
use crate::target::Role;
use crate::transport::{ConnEnd, Exchange};

/// Codes the reference page of causes speaks of; a refusal with any other code (501, 505, 413)
/// is reported as seen and never read as one of its causes.
pub const REFERENCE_CODES: &[u16] = &[400, 405, 408, 414, 499, 500, 502, 503, 504];

/// What one side did with one template's request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Answer {
    Status {
        status: u16,
    },
    /// Bytes that are no HTTP response (an HTTP/0.9 answer: the body alone), then the end.
    NotHttp {
        bytes: usize,
    },
    /// Closed (FIN) with no response.
    Close,
    /// Reset with no response.
    Reset,
    /// Sat on the request until our wait ran out.
    Waited {
        ms: u64,
    },
    /// No connection, or a TLS or I/O failure: says nothing about the request.
    NoAnswer {
        why: String,
    },
}

impl Answer {
    pub fn of(ex: &Exchange) -> Answer {
        if let Some(status) = ex.status() {
            return Answer::Status { status };
        }
        match &ex.end {
            // Something came back, but no status line: the server answered in its own way.
            ConnEnd::Fin | ConnEnd::Complete if ex.bytes_in > 0 => {
                Answer::NotHttp { bytes: ex.bytes_in }
            }
            ConnEnd::Fin | ConnEnd::Complete => Answer::Close,
            ConnEnd::Reset => Answer::Reset,
            ConnEnd::Timeout => Answer::Waited {
                ms: ex.timings.total_ms.max(0.0) as u64,
            },
            other => Answer::NoAnswer {
                why: other.to_string(),
            },
        }
    }

    /// A short label: `400`, `close`, `reset`, `waited 3 s`, `no answer`.
    pub fn label(&self) -> String {
        match self {
            Answer::Status { status } => status.to_string(),
            Answer::NotHttp { .. } => "not-http".into(),
            Answer::Close => "close".into(),
            Answer::Reset => "reset".into(),
            Answer::Waited { ms } => format!("waited {:.0} s", *ms as f64 / 1000.0),
            Answer::NoAnswer { .. } => "no answer".into(),
        }
    }

    fn status(&self) -> Option<u16> {
        match self {
            Answer::Status { status } => Some(*status),
            _ => None,
        }
    }

    /// Refused: an error status, or the connection ended with no response.
    fn refused(&self) -> bool {
        match self {
            Answer::Status { status } => *status >= 400,
            Answer::Close | Answer::Reset => true,
            _ => false,
        }
    }

    fn accepted(&self) -> bool {
        self.status().is_some_and(|s| s < 400)
    }
}

/// How a side's answer compares with what an RFC-strict server does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strictness {
    /// Answered as `strict` says.
    Strict,
    /// Accepted what a strict server rejects.
    Lenient,
    /// Refused what a strict server accepts.
    OverStrict,
    /// Refused, but with a code the RFC does not give for it (501 where §6.3 says 400).
    WrongCode,
    /// Answered, then kept the connection open where the RFC says it MUST close (RFC 9112
    /// §6.1): what a second request on it could be smuggled through.
    KeptOpen,
    /// No answer, or a 5xx crash, where an answer was due.
    Broken,
    /// Sat on a request the template says a server may sit on.
    Waited,
}

impl std::fmt::Display for Strictness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Strictness::Strict => "strict",
            Strictness::Lenient => "lenient",
            Strictness::OverStrict => "over-strict",
            Strictness::WrongCode => "wrong-code",
            Strictness::KeptOpen => "kept-open",
            Strictness::Broken => "broken",
            Strictness::Waited => "waited",
        })
    }
}

/// Judge one answer against the template. `None` when the answer says nothing (no connection).
pub fn judge(t: &Template, answer: &Answer) -> Option<Strictness> {
    // A 5xx other than "not implemented" / "version not supported" is a server failing, not
    // refusing, unless the template names it.
    let crash = |s: u16| s >= 500 && s != 501 && s != 505 && !t.strict_status.contains(&s);
    Some(match answer {
        Answer::NoAnswer { .. } => return None,
        Answer::Waited { .. } if t.wait.is_some() => Strictness::Waited,
        Answer::Waited { .. } => Strictness::Broken,
        Answer::Status { status } if crash(*status) => Strictness::Broken,
        // An answer that is no HTTP response took the request in: no refusal, no valid answer.
        Answer::NotHttp { .. } => match t.strict {
            Strict::Any => Strictness::Strict,
            Strict::Accept => Strictness::Broken,
            Strict::Reject | Strict::Close => Strictness::Lenient,
        },
        a => match t.strict {
            Strict::Any => Strictness::Strict,
            Strict::Accept if a.accepted() => Strictness::Strict,
            Strict::Accept => Strictness::OverStrict,
            // `strict-status` names the codes the RFC allows: another refusal is the wrong one.
            Strict::Reject | Strict::Close
                if a.status().is_some_and(|s| {
                    s >= 400 && !t.strict_status.is_empty() && !t.strict_status.contains(&s)
                }) =>
            {
                Strictness::WrongCode
            }
            Strict::Reject | Strict::Close if a.refused() => Strictness::Strict,
            Strict::Reject | Strict::Close => Strictness::Lenient,
        },
    })
}

/// [`judge`], and for a `must-close` template, whether the side closed after its answer: an
/// answer the RFC allows is `kept-open` when the connection stayed open (or more came on it).
pub fn judge_with_close(
    t: &Template,
    answer: &Answer,
    after: Option<&AfterAnswer>,
) -> Option<Strictness> {
    judge_observed(t, answer, after, None)
}

/// [`judge_with_close`], and for a keep-alive sequence, how many answers came back: more than
/// a strict server gives means a request the RFC has it refuse (or close before) was answered,
/// the desync a smuggled request rides on: `lenient`.
pub fn judge_observed(
    t: &Template,
    answer: &Answer,
    after: Option<&AfterAnswer>,
    sequence: Option<&SequenceResult>,
) -> Option<Strictness> {
    let judged = judge(t, answer)?;
    if let (Some(expected), Some(seen)) = (t.answers, sequence) {
        if seen.answers > expected && judged != Strictness::Broken {
            return Some(Strictness::Lenient);
        }
    }
    let kept_open =
        after.is_some_and(|a| matches!(a.connection, ConnAfter::KeptOpen | ConnAfter::MoreBytes));
    Some(match judged {
        Strictness::Strict | Strictness::WrongCode if t.must_close && kept_open => {
            Strictness::KeptOpen
        }
        other => other,
    })
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SideAnswer {
    pub answer: Answer,
    /// For a `must-close` template: what the connection did after the answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<AfterAnswer>,
    /// For a keep-alive sequence: the answers counted on its connection and its end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sequence: Option<SequenceResult>,
    /// `None` when the side could not be reached.
    pub strictness: Option<Strictness>,
    /// The observation it rests on.
    pub observation: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MalformedRow {
    pub variant: String,
    pub tags: Vec<String>,
    pub rfc: String,
    /// What a strict server does: `accept`, `reject`, `close` or `any`.
    pub strict: Strict,
    /// The RFC says the server MUST close the connection after answering.
    pub must_close: bool,
    pub listener: Option<SideAnswer>,
    pub backend: Option<SideAnswer>,
    /// Who wrote the listener's answer (its own page, or the backend's passed on); `None` when
    /// the listener sent no response.
    pub listener_origin: Option<Origin>,
}

/// A refusal with a code the reference page does not list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnlistedCode {
    pub variant: String,
    pub role: Role,
    pub status: u16,
}

/// The kinds grouped by which side refuses them (template ids). A kind answered with a code
/// outside the reference page by the listener is in `unlisted_codes` only.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MalformedGroups {
    /// Refused by the listener, accepted by the backend: the listener's own 400s.
    pub listener_rejects: Vec<String>,
    /// Refused by the backend, and the listener passed that answer on.
    pub backend_rejects_passed_on: Vec<String>,
    /// Refused by both, the listener with its own code.
    pub rejected_by_both: Vec<String>,
    /// Accepted by the listener (perhaps repaired), refused by the backend with another answer.
    pub listener_accepts_backend_rejects: Vec<String>,
    pub accepted_by_both: Vec<String>,
    pub unlisted_codes: Vec<UnlistedCode>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MalformedTable {
    pub rows: Vec<MalformedRow>,
    pub groups: MalformedGroups,
}

impl MalformedRow {
    /// How strict `role` was with this kind; `None` when it was not reached.
    pub fn strictness(&self, role: Role) -> Option<Strictness> {
        let side = match role {
            Role::Listener => &self.listener,
            Role::Backend => &self.backend,
        };
        side.as_ref().and_then(|a| a.strictness)
    }
}

impl MalformedTable {
    /// The rows whose `role` side is judged `s`.
    pub fn judged(&self, role: Role, s: Strictness) -> impl Iterator<Item = &MalformedRow> {
        self.rows
            .iter()
            .filter(move |r| r.strictness(role) == Some(s))
    }

    /// Rows whose side is judged `s`.
    pub fn count(&self, role: Role, s: Strictness) -> usize {
        self.judged(role, s).count()
    }
}

fn unlisted(a: &Answer) -> Option<u16> {
    a.status()
        .filter(|s| *s >= 400 && !REFERENCE_CODES.contains(s))
}

/// The table of a run's malformed observations (the control excluded); `None` when the run
/// sent none.
pub fn table(observations: &[Observation]) -> Option<MalformedTable> {
    table_with(observations, templates::malformed())
}

/// [`table`] against given templates (tests use their own).
pub fn table_with(observations: &[Observation], templates: &[Template]) -> Option<MalformedTable> {
    let mut by_variant: BTreeMap<&str, (Option<&Observation>, Option<&Observation>)> =
        BTreeMap::new();
    for o in observations
        .iter()
        .filter(|o| o.family == Family::Malformed && o.variant != "control")
    {
        let e = by_variant.entry(o.variant.as_str()).or_default();
        match o.role {
            Role::Listener => e.0 = Some(o),
            Role::Backend => e.1 = Some(o),
        }
    }
    if by_variant.is_empty() {
        return None;
    }
    let mut out = MalformedTable::default();
    // Template order, so the table reads like the catalogue.
    for t in templates {
        let Some((l, b)) = by_variant.get(t.id.as_str()) else {
            continue;
        };
        let side = |o: &Option<&Observation>| {
            o.map(|o| {
                let answer = o
                    .exchange
                    .as_ref()
                    .map(Answer::of)
                    .unwrap_or(Answer::NoAnswer {
                        why: "not sent".into(),
                    });
                let after = match &o.detail {
                    Detail::AfterAnswer(a) => Some(*a),
                    _ => None,
                };
                let sequence = match &o.detail {
                    Detail::Sequence(s) => Some(*s),
                    _ => None,
                };
                SideAnswer {
                    strictness: judge_observed(t, &answer, after.as_ref(), sequence.as_ref()),
                    after,
                    sequence,
                    answer,
                    observation: o.id.clone(),
                }
            })
        };
        let listener_ex = l.and_then(|o| o.exchange.as_ref());
        let backend_ex = b.and_then(|o| o.exchange.as_ref());
        let listener_origin = listener_ex
            .filter(|e| e.response.is_some())
            .map(|e| attribution::origin(e, backend_ex).0);
        let row = MalformedRow {
            variant: t.id.clone(),
            tags: t.tags.clone(),
            rfc: t.rfc.clone(),
            strict: t.strict,
            must_close: t.must_close,
            listener: side(l),
            backend: side(b),
            listener_origin,
        };
        group(&mut out.groups, &row);
        out.rows.push(row);
    }
    Some(out)
}

fn group(g: &mut MalformedGroups, row: &MalformedRow) {
    let id = row.variant.clone();
    for (role, side) in [
        (Role::Listener, &row.listener),
        (Role::Backend, &row.backend),
    ] {
        if let Some(status) = side.as_ref().and_then(|s| unlisted(&s.answer)) {
            g.unlisted_codes.push(UnlistedCode {
                variant: id.clone(),
                role,
                status,
            });
        }
    }
    let (Some(l), Some(b)) = (&row.listener, &row.backend) else {
        return;
    };
    let (l, b) = (&l.answer, &b.answer);
    if unlisted(l).is_some() {
        return;
    }
    if l.refused() && b.accepted() {
        g.listener_rejects.push(id);
    } else if b.refused()
        && l.status().is_some()
        && l.status() == b.status()
        && row.listener_origin != Some(Origin::Listener)
    {
        // Same status, and nothing says the listener wrote it (its own error page would).
        g.backend_rejects_passed_on.push(id);
    } else if l.refused() && b.refused() {
        g.rejected_by_both.push(id);
    } else if l.accepted() && b.refused() {
        g.listener_accepts_backend_rejects.push(id);
    } else if l.accepted() && b.accepted() {
        g.accepted_by_both.push(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::templates::parse_templates;
    use std::time::Duration;

    fn template(strict: &str, extra: &str) -> Template {
        parse_templates(&format!(
            "templates:\n  - id: t\n    summary: s\n    rfc: r\n    strict: {strict}\n    evidence-for: []\n{extra}    request: 'x'\n"
        ))
        .unwrap()
        .remove(0)
    }

    fn st(status: u16) -> Answer {
        Answer::Status { status }
    }

    #[test]
    fn reject_templates_judged_by_answer() {
        let t = template("reject", "    strict-status: [400, 501]\n");
        assert_eq!(judge(&t, &st(400)), Some(Strictness::Strict));
        assert_eq!(judge(&t, &st(501)), Some(Strictness::Strict));
        // A refusal with a code `strict-status` does not name: refused, but not as the RFC says.
        assert_eq!(judge(&t, &st(505)), Some(Strictness::WrongCode));
        assert_eq!(judge(&t, &st(404)), Some(Strictness::WrongCode));
        assert_eq!(judge(&t, &Answer::Close), Some(Strictness::Strict));
        assert_eq!(judge(&t, &Answer::Reset), Some(Strictness::Strict));
        assert_eq!(judge(&t, &st(200)), Some(Strictness::Lenient));
        assert_eq!(judge(&t, &st(502)), Some(Strictness::Broken));
        assert_eq!(
            judge(&t, &Answer::Waited { ms: 3000 }),
            Some(Strictness::Broken),
            "no wait declared: a hang"
        );
        assert_eq!(
            judge(
                &t,
                &Answer::NoAnswer {
                    why: "ConnectRefused".into()
                }
            ),
            None
        );
        // Without `strict-status` any refusal is the strict answer.
        let any_code = template("reject", "");
        for code in [400, 404, 413, 501, 505] {
            assert_eq!(
                judge(&any_code, &st(code)),
                Some(Strictness::Strict),
                "{code}"
            );
        }
        let waits = template("reject", "    wait: 3s\n");
        assert_eq!(waits.wait, Some(Duration::from_secs(3)));
        assert_eq!(
            judge(&waits, &Answer::Waited { ms: 3000 }),
            Some(Strictness::Waited)
        );
    }

    #[test]
    fn accept_and_any_templates() {
        let accept = template("accept", "");
        assert_eq!(judge(&accept, &st(200)), Some(Strictness::Strict));
        assert_eq!(judge(&accept, &st(404)), Some(Strictness::OverStrict));
        assert_eq!(judge(&accept, &Answer::Close), Some(Strictness::OverStrict));
        assert_eq!(judge(&accept, &st(500)), Some(Strictness::Broken));
        let any = template("any", "");
        for a in [st(200), st(400), st(501), Answer::Close] {
            assert_eq!(judge(&any, &a), Some(Strictness::Strict), "{a:?}");
        }
        assert_eq!(judge(&any, &st(503)), Some(Strictness::Broken));
        assert_eq!(
            judge(&any, &Answer::Waited { ms: 1 }),
            Some(Strictness::Broken)
        );
    }

    #[test]
    fn labels() {
        assert_eq!(st(414).label(), "414");
        assert_eq!(Answer::Waited { ms: 3000 }.label(), "waited 3 s");
        assert_eq!(Answer::Reset.label(), "reset");
    }

    /// nginx answers `GET /` (HTTP/0.9) with the body alone and a close: that took the request
    /// in, it is no refusal.
    #[test]
    fn bytes_without_a_status_line_are_not_http_and_no_refusal() {
        let endpoint = crate::transport::Endpoint {
            host: "127.0.0.1".into(),
            port: 1,
            wire: crate::transport::Wire::Plain,
            family: None,
        };
        let mut ex = Exchange::not_started(&endpoint);
        ex.end = ConnEnd::Fin;
        ex.bytes_in = 6;
        ex.raw_prefix = "fixed\\n".into();
        let answer = Answer::of(&ex);
        assert_eq!(answer, Answer::NotHttp { bytes: 6 });
        assert_eq!(answer.label(), "not-http");
        let reject = template("reject", "    strict-status: [400]\n");
        assert_eq!(judge(&reject, &answer), Some(Strictness::Lenient));
        assert_eq!(
            judge(&template("accept", ""), &answer),
            Some(Strictness::Broken)
        );
        ex.bytes_in = 0;
        assert_eq!(Answer::of(&ex), Answer::Close);
        assert_eq!(judge(&reject, &Answer::Close), Some(Strictness::Strict));
    }

    /// RFC 9112 §6.1: a 200 or a 400 to CL with TE are both allowed, keeping the connection
    /// open after either is not; a template without `must-close` is judged by its answer alone.
    #[test]
    fn must_close_templates_are_judged_by_the_close_too() {
        let t = template("any", "    must-close: true\n");
        let closed = AfterAnswer::new(ConnAfter::Closed, Duration::from_millis(3));
        let open = AfterAnswer::new(ConnAfter::KeptOpen, Duration::from_secs(1));
        let more = AfterAnswer::new(ConnAfter::MoreBytes, Duration::from_millis(5));
        for code in [200, 400] {
            assert_eq!(
                judge_with_close(&t, &st(code), Some(&closed)),
                Some(Strictness::Strict)
            );
            assert_eq!(
                judge_with_close(&t, &st(code), Some(&open)),
                Some(Strictness::KeptOpen)
            );
            assert_eq!(
                judge_with_close(&t, &st(code), Some(&more)),
                Some(Strictness::KeptOpen)
            );
        }
        // A crash stays a crash; no answer says nothing.
        assert_eq!(
            judge_with_close(&t, &st(502), Some(&open)),
            Some(Strictness::Broken)
        );
        let gone = Answer::NoAnswer { why: "x".into() };
        assert_eq!(judge_with_close(&t, &gone, Some(&open)), None);
        let plain = template("any", "");
        assert_eq!(
            judge_with_close(&plain, &st(200), Some(&open)),
            Some(Strictness::Strict)
        );
        // 400 and close (RFC 9112 §6.3): a 501 kept open is judged on the close first.
        let te = template("reject", "    strict-status: [400]\n    must-close: true\n");
        assert_eq!(
            judge_with_close(&te, &st(501), Some(&open)),
            Some(Strictness::KeptOpen)
        );
        assert_eq!(
            judge_with_close(&te, &st(501), Some(&closed)),
            Some(Strictness::WrongCode)
        );
        assert_eq!(
            judge_with_close(&te, &st(200), Some(&open)),
            Some(Strictness::Lenient)
        );
    }

    /// A sequence with one request smuggled behind CL and TE: one answer (then the close) is
    /// what a strict server gives; two mean the second request was answered.
    #[test]
    fn sequences_are_judged_by_the_answers_counted() {
        let t = template(
            "any",
            "    answers: 1\n    leaves-request: true\n    tags: [smuggling]\n",
        );
        let seen = |answers| SequenceResult {
            answers,
            connection: ConnAfter::Closed,
        };
        assert_eq!(
            judge_observed(&t, &st(400), None, Some(&seen(1))),
            Some(Strictness::Strict)
        );
        assert_eq!(
            judge_observed(&t, &st(200), None, Some(&seen(2))),
            Some(Strictness::Lenient)
        );
        assert_eq!(
            judge_observed(&t, &st(502), None, Some(&seen(2))),
            Some(Strictness::Broken)
        );
    }

    fn row(l: Option<Answer>, b: Option<Answer>) -> MalformedRow {
        let side = |a: Option<Answer>| {
            a.map(|answer| SideAnswer {
                answer,
                after: None,
                sequence: None,
                strictness: None,
                observation: "o1".into(),
            })
        };
        MalformedRow {
            variant: "k".into(),
            tags: Vec::new(),
            rfc: String::new(),
            strict: Strict::Reject,
            must_close: false,
            listener: side(l),
            backend: side(b),
            listener_origin: None,
        }
    }

    fn grouped(l: Option<Answer>, b: Option<Answer>) -> MalformedGroups {
        let mut g = MalformedGroups::default();
        group(&mut g, &row(l, b));
        g
    }

    #[test]
    fn the_listeners_own_page_with_the_backends_status_is_no_passthrough() {
        let mut r = row(Some(st(400)), Some(st(400)));
        r.listener_origin = Some(Origin::Listener);
        let mut g = MalformedGroups::default();
        group(&mut g, &r);
        assert_eq!(g.rejected_by_both, vec!["k".to_string()]);
        assert!(g.backend_rejects_passed_on.is_empty());
    }

    #[test]
    fn kinds_grouped_by_the_side_that_refuses() {
        let k = vec!["k".to_string()];
        assert_eq!(grouped(Some(st(400)), Some(st(200))).listener_rejects, k);
        assert_eq!(
            grouped(Some(Answer::Close), Some(st(200))).listener_rejects,
            k
        );
        assert_eq!(
            grouped(Some(st(400)), Some(st(400))).backend_rejects_passed_on,
            k
        );
        assert_eq!(grouped(Some(st(400)), Some(st(405))).rejected_by_both, k);
        assert_eq!(
            grouped(Some(st(200)), Some(st(400))).listener_accepts_backend_rejects,
            k
        );
        assert_eq!(grouped(Some(st(200)), Some(st(204))).accepted_by_both, k);
        // Nothing to compare with: no group, and a hang is in no group.
        assert_eq!(grouped(Some(st(400)), None), MalformedGroups::default());
        assert_eq!(
            grouped(Some(Answer::Waited { ms: 1 }), Some(st(200))),
            MalformedGroups::default()
        );
    }

    #[test]
    fn codes_outside_the_reference_page_are_reported_as_seen_only() {
        let g = grouped(Some(st(501)), Some(st(200)));
        assert!(g.listener_rejects.is_empty());
        assert_eq!(
            g.unlisted_codes,
            vec![UnlistedCode {
                variant: "k".into(),
                role: Role::Listener,
                status: 501
            }]
        );
        // The backend's own 505 is seen; the listener's 400 is still its refusal.
        let g = grouped(Some(st(400)), Some(st(505)));
        assert_eq!(g.rejected_by_both, vec!["k".to_string()]);
        assert_eq!(g.unlisted_codes[0].role, Role::Backend);
        assert_eq!(g.unlisted_codes[0].status, 505);
    }

    #[test]
    fn no_malformed_observations_no_table() {
        assert_eq!(table(&[]), None);
    }
}
