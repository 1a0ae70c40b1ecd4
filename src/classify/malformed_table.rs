//! The malformed-request table: per template and side, whether the answer is what an RFC-strict
//! server gives, and the kinds grouped by which side refuses them. Pure: observations in, table out.

use std::collections::BTreeMap;

use serde::Serialize;

use super::attribution::{self, Origin};
use crate::probe::templates::{self, Strict, Template};
use crate::probe::{Family, Observation};
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
        a => match t.strict {
            Strict::Any => Strictness::Strict,
            Strict::Accept if a.accepted() => Strictness::Strict,
            Strict::Accept => Strictness::OverStrict,
            Strict::Reject | Strict::Close if a.refused() => Strictness::Strict,
            Strict::Reject | Strict::Close => Strictness::Lenient,
        },
    })
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SideAnswer {
    pub answer: Answer,
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

impl MalformedTable {
    /// Rows whose side is judged `s`.
    pub fn count(&self, role: Role, s: Strictness) -> usize {
        self.rows
            .iter()
            .filter(|r| {
                let side = if role == Role::Listener {
                    &r.listener
                } else {
                    &r.backend
                };
                side.as_ref().and_then(|a| a.strictness) == Some(s)
            })
            .count()
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
                SideAnswer {
                    strictness: judge(t, &answer),
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
        assert_eq!(judge(&t, &st(505)), Some(Strictness::Strict));
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

    fn row(l: Option<Answer>, b: Option<Answer>) -> MalformedRow {
        let side = |a: Option<Answer>| {
            a.map(|answer| SideAnswer {
                answer,
                strictness: None,
                observation: "o1".into(),
            })
        };
        MalformedRow {
            variant: "k".into(),
            tags: Vec::new(),
            rfc: String::new(),
            strict: Strict::Reject,
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
