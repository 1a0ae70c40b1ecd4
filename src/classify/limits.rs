//! Rules on measured limits: header line and header block (400) and URI length (414), each
//! compared side by side and with the profile's documented limit.
//!
//! Two questions come before any comparison with documentation:
//! - **Who refused?** The refusal at the threshold is attributed (the same threshold straight
//!   to the backend, the backend accepting that size, the answer's own signature): a refusal
//!   relayed from behind the listener says nothing of the listener's own limit, even when no
//!   backend was named.
//! - **With which code?** A cause of code X is reproduced or confirmed only when X was seen:
//!   HAProxy answers an over-long URI with 400, which belongs to `400.header-too-large`, not to
//!   `414.uri-too-long`; a 431 belongs to neither, and a close without an answer is no code.

use crate::probe::limit::{outcome, Outcome};
use crate::probe::{Detail, Family, LimitSearch, Observation};
use crate::profile::Cited;
use crate::target::Role;
use crate::transport::Exchange;

use super::attribution::{self, Origin, Product};
use super::rules::Rule;
use super::{describe, Context, Draft, Verdict, View};

/// What one limit search measures, for the words of its findings.
struct Measure {
    family: Family,
    /// e.g. "header lines", "header blocks", "request targets".
    noun: &'static str,
    /// The profile's limit for it (declared or documented); `None` when no profile speaks to
    /// it, and the threshold is then reported as measured, not judged.
    documented: Option<Cited<usize>>,
}

const HEADER_ID: &str = "400.header-too-large";
const URI_ID: &str = "414.uri-too-long";
const BACKEND_URI_ID: &str = "414.backend-uri-limit";

pub(crate) const RULE: Rule = Rule {
    name: "limits",
    causes: &[HEADER_ID, URI_ID, BACKEND_URI_ID],
    decide: drafts,
};

/// The three searches this module reads (header line, header block, request target), with the
/// profile's number for each.
fn measures(ctx: &Context<'_>) -> [Measure; 3] {
    let line = Measure {
        family: Family::HeaderSize,
        noun: "header lines",
        documented: ctx.profile.max_header_bytes(),
    };
    let block = Measure {
        family: Family::HeaderLimit,
        noun: "header blocks",
        // A block holds at least one line: a scenario that raises the line limit raises this.
        documented: match (
            ctx.profile.max_header_block_bytes(),
            ctx.profile.max_header_bytes(),
        ) {
            (Some(block), Some(line)) if line.value > block.value => Some(line),
            (block, line) => block.or(line),
        },
    };
    let uri = Measure {
        family: Family::UriLimit,
        noun: "request targets",
        documented: ctx.profile.max_uri_bytes(),
    };
    [line, block, uri]
}

fn drafts(view: &View<'_>, ctx: &Context<'_>) -> Vec<Draft> {
    let listener_is = view.listener_is();
    let judge = Judge {
        view,
        ctx,
        listener_is,
    };
    let mut out = Vec::new();
    let [line, block, uri] = measures(ctx);
    // The listener's over-long URIs answered with 400 (HAProxy) belong to the header cause.
    let uri_as_400 = judge
        .refusal(&uri, false)
        .filter(|r| r.status == Some(400) && r.origin != Origin::Backend)
        .and_then(|_| judge.listener_limit(&uri, HEADER_ID, 400))
        .map(|d| {
            let who = listener_is.map_or("this listener", Product::name);
            d.with(
                format!(
                    "{who} answers an over-long URI with 400, not the 414 the reference page documents for it"
                ),
                &[],
            )
        });
    // One finding for the header cause, whichever searches spoke to it.
    let header = [
        judge.with_h2(&line, judge.listener_limit(&line, HEADER_ID, 400), 400),
        judge.with_h2(&block, judge.listener_limit(&block, HEADER_ID, 400), 400),
        uri_as_400,
    ]
    .into_iter()
    .flatten()
    .reduce(merge);
    // A replayed request speaks to the same causes (`lbprobe replay`).
    let (replay_uri, replay_backend_uri) = super::replay::uri(view, ctx);
    out.extend(super::replay::merge(
        header,
        super::replay::header(view, ctx),
    ));
    out.extend(super::replay::merge(
        judge.with_h2(&uri, judge.listener_limit(&uri, URI_ID, 414), 414),
        replay_uri,
    ));
    out.extend(super::replay::merge(
        judge.backend_uri_limit(&uri),
        replay_backend_uri,
    ));
    out
}

/// `400.passthrough` read from the limit searches when no backend was named: 400s relayed from
/// behind the listener at a search's threshold. The passthrough rule owns that cause and asks
/// this module for it.
pub(super) fn relayed_passthrough(view: &View<'_>, ctx: &Context<'_>) -> Option<Draft> {
    if ctx.has_backend {
        return None;
    }
    let judge = Judge {
        view,
        ctx,
        listener_is: view.listener_is(),
    };
    let [line, block, uri] = measures(ctx);
    judge.relayed_400(&[&line, &block, &uri])
}

/// Two drafts of one cause as one: the strongest verdict and its reason, every piece of
/// evidence.
fn merge(mut a: Draft, b: Draft) -> Draft {
    if b.verdict < a.verdict {
        a.verdict = b.verdict;
        a.reason = b.reason;
    }
    a.evidence.extend(b.evidence);
    a
}

fn limit_named<'a>(
    view: &View<'a>,
    family: Family,
    role: Role,
    variant: &str,
) -> Option<(&'a Observation, &'a LimitSearch)> {
    let o = view.find(family, variant, role)?;
    match &o.detail {
        Detail::Limit(l) => Some((o, l)),
        _ => None,
    }
}

fn limit_variant(h2: bool) -> String {
    if h2 {
        crate::probe::h2::variant("limit")
    } else {
        "limit".to_string()
    }
}

/// The sized requests of one search on one side, over HTTP/1.1 or h2: `(bytes, observation)`.
fn sized<'a>(
    view: &View<'a>,
    family: Family,
    role: Role,
    h2: bool,
) -> Vec<(usize, &'a Observation)> {
    view.observations
        .iter()
        .filter(|o| o.family == family && o.role == role)
        .filter(|o| crate::probe::h2::h1_twin(&o.variant).is_some() == h2)
        .filter_map(|o| match o.detail {
            Detail::Size { bytes } => Some((bytes, o)),
            _ => None,
        })
        .collect()
}

/// Who refused a listener's search at its threshold, and what else the search saw of refusals.
struct Refusal<'a> {
    rejected: usize,
    status: Option<u16>,
    /// The answer at the threshold, when the sized request was recorded.
    at: Option<&'a Observation>,
    origin: Origin,
    /// The signals behind `origin`, in words.
    why: String,
    /// The smallest refused size whose answer is the listener's own (its page), above the
    /// threshold: where the listener's own limit shows when a backend refuses first.
    own_above: Option<(usize, &'a Observation, String)>,
    /// The largest refused size whose answer was relayed.
    relayed_up_to: Option<usize>,
}

struct Judge<'v, 'a> {
    view: &'v View<'a>,
    ctx: &'v Context<'v>,
    listener_is: Option<Product>,
}

fn refused_exchange(o: &Observation) -> Option<&Exchange> {
    let ex = o.exchange.as_ref()?;
    matches!(outcome(ex), Outcome::Refused(_)).then_some(ex)
}

fn threshold_text(l: &LimitSearch, noun: &str) -> String {
    match (l.largest_accepted, l.smallest_rejected) {
        (Some(a), Some(_)) if l.exact => {
            format!("{noun} above {a} bytes are refused, {a} bytes pass")
        }
        (Some(a), Some(r)) => format!("{noun} of {a} bytes pass and {r} bytes are refused"),
        (Some(a), None) => format!("{noun} up to {a} bytes pass"),
        (None, Some(r)) => format!("{noun} of {r} bytes are refused"),
        (None, None) => "no limit measured".into(),
    }
}

/// A search's threshold with how it was refused and how it was measured.
fn search_text(l: &LimitSearch, noun: &str) -> String {
    format!(
        "{} ({}; {}, {})",
        threshold_text(l, noun),
        refusal_text(l),
        crate::plural::count(l.requests, "request"),
        if l.exact { "exact" } else { "bounds" }
    )
}

/// How the refusals came, for "(…; 19 requests)": `status 400`, or a close with no answer.
fn refusal_text(l: &LimitSearch) -> String {
    l.rejected_status.map_or_else(
        || "closed without an answer".to_string(),
        |s| format!("status {s}"),
    )
}

/// What the refusals were, after "with" or "get": `400`, or no answer at all.
fn status_text(l: &LimitSearch) -> String {
    l.rejected_status
        .map_or("no answer (the connection closed)".to_string(), |s| {
            s.to_string()
        })
}

/// `431 Request Header Fields Too Large`, from the answer at the threshold when there is one.
fn answer_text(status: Option<u16>, at: Option<&Observation>) -> String {
    match (status, at.and_then(|o| o.exchange.as_ref())) {
        (Some(_), Some(ex)) => describe(Some(ex)),
        (Some(s), None) => s.to_string(),
        (None, _) => "a close".into(),
    }
}

/// Cause `id` inconclusive when the search `(o, l)` of `family` on `role` measured nothing: why,
/// with the requests it sent as evidence.
fn unmeasured_draft(
    view: &View<'_>,
    id: &str,
    family: Family,
    role: Role,
    (o, l): (&Observation, &LimitSearch),
) -> Option<Draft> {
    let why = unmeasured(view, family, role, l)?;
    Some(
        Draft::new(id, Verdict::Inconclusive, format!("the {role} {why}")).with(
            format!("{family}: {}", crate::plural::count(l.requests, "request")),
            &[o],
        ),
    )
}

/// Why a search measured nothing on a side, when it did not.
fn unmeasured(view: &View<'_>, family: Family, role: Role, l: &LimitSearch) -> Option<String> {
    if l.refuses_everything {
        return Some("refuses even the smallest request, so no limit could be measured".into());
    }
    if l.largest_accepted.is_some() || l.smallest_rejected.is_some() {
        return None;
    }
    let first = view
        .observations
        .iter()
        .find(|o| o.family == family && o.role == role && o.exchange.is_some());
    let ex = first.and_then(|o| o.exchange.as_ref());
    Some(match ex {
        Some(e) if e.end.never_connected() => format!("could not be reached ({})", describe(ex)),
        Some(_) => format!(
            "gave an answer that is neither acceptance nor refusal ({})",
            describe(ex)
        ),
        None => "was not probed (the run's caps stopped it)".into(),
    })
}

impl<'v, 'a> Judge<'v, 'a> {
    fn limit(
        &self,
        family: Family,
        role: Role,
        h2: bool,
    ) -> Option<(&'a Observation, &'a LimitSearch)> {
        limit_named(self.view, family, role, &limit_variant(h2))
    }

    /// Who refused the listener's search of `m` at its threshold (see [`Refusal`]).
    fn refusal(&self, m: &Measure, h2: bool) -> Option<Refusal<'a>> {
        let (_, l) = self.limit(m.family, Role::Listener, h2)?;
        let rejected = l.smallest_rejected?;
        let listener = sized(self.view, m.family, Role::Listener, h2);
        let backend = sized(self.view, m.family, Role::Backend, false);
        let at = listener
            .iter()
            .find(|(bytes, _)| *bytes == rejected)
            .map(|(_, o)| *o);
        // The largest refused request was refused by whatever stands in front: an answer at a
        // smaller size written by another hand came from behind it.
        let front = listener
            .iter()
            .filter(|(_, o)| {
                o.exchange.as_ref().is_some_and(|e| {
                    e.response.is_some() && matches!(outcome(e), Outcome::Refused(_))
                })
            })
            .max_by_key(|(bytes, _)| *bytes)
            .copied();
        let attribute = |o: &Observation| -> Option<(Origin, String)> {
            let ex = refused_exchange(o)?;
            let r = ex.response.as_ref()?;
            let bytes = match o.detail {
                Detail::Size { bytes } => bytes,
                _ => return None,
            };
            let direct = backend
                .iter()
                .find(|(b, _)| *b == bytes)
                .and_then(|(_, b)| b.exchange.as_ref());
            if direct.is_some() {
                return Some(attribution::attribute(ex, direct, self.listener_is));
            }
            let sign = attribution::signature(r, self.listener_is);
            let front = front
                .filter(|(size, _)| *size != bytes)
                .and_then(|(size, f)| Some((size, f, f.exchange.as_ref()?.response.as_ref()?)));
            Some(match (front, sign) {
                // Written by another hand than the largest refusal: from behind the listener,
                // whatever the listener is (a decisive sign of its own page would mean the
                // largest one came from something in front of it, which no listener has).
                (Some((size, f, fr)), sign) if !attribution::same_writer(r, fr) => {
                    let mut why = format!(
                        "relayed from behind the listener: unlike its answer to the largest request tried ({size} bytes: {})",
                        describe(f.exchange.as_ref())
                    );
                    if let Some(sign) = sign.filter(|s| s.origin == Origin::Backend) {
                        why.push_str(&format!("; {}", sign.signals.join("; ")));
                    }
                    (Origin::Backend, why)
                }
                (_, Some(sign)) if sign.decisive => (sign.origin, sign.text()),
                // The same hand as the largest refusal, and nothing decisive: an application
                // behind a listener that passes every size on, or the listener's own custom
                // error page.
                (Some((size, _, _)), Some(sign)) => (
                    Origin::Unknown,
                    format!(
                        "{}, the same kind of answer as to the largest request tried ({size} bytes): an application's behind a listener that passes every size on, or the listener's own custom error page",
                        sign.signals.join("; ")
                    ),
                ),
                (None, Some(sign)) => (Origin::Unknown, sign.text()),
                (Some((size, _, _)), None) => (
                    Origin::Unknown,
                    format!("no signature, the same kind of answer as to the largest request tried ({size} bytes)"),
                ),
                (None, None) => (Origin::Unknown, "no signature to read".to_string()),
            })
        };
        // The whole search straight to the backend speaks for the threshold too.
        let search_side = self
            .limit(m.family, Role::Backend, false)
            .and_then(|(_, b)| {
                if b.smallest_rejected == Some(rejected) && b.largest_accepted == l.largest_accepted
                {
                    Some((
                        Origin::Backend,
                        format!("the backend refuses from {rejected} bytes too, straight"),
                    ))
                } else if b.largest_accepted.is_some_and(|ba| ba >= rejected) {
                    Some((
                        Origin::Listener,
                        format!(
                            "the backend accepts {} bytes straight",
                            b.largest_accepted.unwrap_or(rejected)
                        ),
                    ))
                } else {
                    None
                }
            });
        let answer = at.and_then(&attribute);
        let (origin, why) = match (search_side, answer) {
            (Some((so, swhy)), Some((ao, awhy))) if so == ao || ao == Origin::Unknown => {
                (so, format!("{swhy}; {awhy}"))
            }
            (Some((so, swhy)), Some((_, awhy))) => (so, format!("{swhy} (though {awhy})")),
            (Some(s), None) => s,
            (None, Some(a)) => a,
            (None, None) => (
                Origin::Unknown,
                if at.is_some_and(|o| o.exchange.as_ref().is_some_and(|e| e.response.is_none())) {
                    "the connection was closed without an answer".to_string()
                } else {
                    "no answer to read who refused".to_string()
                },
            ),
        };
        let mut own_above = None;
        let mut relayed_up_to = None;
        for (bytes, o) in &listener {
            let Some((who, why)) = attribute(o) else {
                continue;
            };
            match who {
                Origin::Listener
                    if *bytes > rejected
                        && own_above.as_ref().is_none_or(|(b, _, _)| bytes < b) =>
                {
                    own_above = Some((*bytes, *o, why));
                }
                Origin::Backend => relayed_up_to = relayed_up_to.max(Some(*bytes)),
                _ => {}
            }
        }
        Some(Refusal {
            rejected,
            status: l.rejected_status,
            at,
            origin,
            why,
            own_above,
            relayed_up_to,
        })
    }

    /// The listener-side cause `id` (code `code`) of a limit: reproduced at its threshold when
    /// the listener itself refuses with `code`, confirmed where that threshold is below the
    /// profile's documented limit or the backend's is tighter.
    fn listener_limit(&self, m: &Measure, id: &str, code: u16) -> Option<Draft> {
        let view = self.view;
        let (lo, l) = self.limit(m.family, Role::Listener, false)?;
        let backend = self.limit(m.family, Role::Backend, false);
        if let Some(d) = unmeasured_draft(view, id, m.family, Role::Listener, (lo, l)) {
            return Some(d);
        }
        let Some(r) = self.refusal(m, false) else {
            return Some(
                Draft::new(
                    id,
                    Verdict::RuledOut,
                    format!(
                        "no size tried was refused by the listener: {}",
                        threshold_text(l, m.noun)
                    ),
                )
                .with(
                    format!(
                        "{}: {} ({})",
                        m.family,
                        threshold_text(l, m.noun),
                        crate::plural::count(l.requests, "request")
                    ),
                    &[lo],
                ),
            );
        };
        let accepted = l.largest_accepted.unwrap_or(0);
        let got = answer_text(r.status, r.at);
        let at: Vec<&Observation> = r.at.into_iter().collect();
        let relayed_same = backend.is_some_and(|(_, b)| {
            b.smallest_rejected == Some(r.rejected) && b.largest_accepted == l.largest_accepted
        });
        let mut d = if relayed_same {
            Draft::new(
                id,
                Verdict::RuledOut,
                format!(
                    "the refusals above {accepted} bytes are the backend's (same threshold straight to it): the listener passes larger {} on",
                    m.noun
                ),
            )
        } else if r.origin == Origin::Backend {
            self.relayed(m, id, &r, accepted)
        } else {
            match r.status {
                Some(s) if s == code => self.judged(m, id, &r, accepted, &got),
                Some(_) => Draft::new(
                    id,
                    Verdict::RuledOut,
                    format!(
                        "the listener refuses {} above {accepted} bytes with {got}, not {code}",
                        m.noun
                    ),
                ),
                None => Draft::new(
                    id,
                    Verdict::Inconclusive,
                    format!(
                        "the listener closes the connection on {} above {accepted} bytes without an answer: no {code} was seen (its access log may still record one)",
                        m.noun
                    ),
                ),
            }
        };
        d = d.with(
            format!("listener ({}): {}", m.family, search_text(l, m.noun)),
            &[lo],
        );
        if r.status.is_some() {
            d = d.with(format!("who answered {} bytes: {}", r.rejected, r.why), &at);
        }
        if let Some((bo, b)) = backend {
            d = d.with(
                format!(
                    "backend directly ({}): {}",
                    m.family,
                    threshold_text(b, m.noun)
                ),
                &[bo],
            );
            // Requests that pass the listener and fail at the backend: a mismatch of its own,
            // when the backend answers with this cause's code.
            if let (Some(ba), Some(_)) = (b.largest_accepted, b.smallest_rejected) {
                if ba < accepted && !relayed_same && b.rejected_status == Some(code) && code == 400
                {
                    let text = format!(
                        "{} of {}..={accepted} bytes pass the listener and fail at the backend",
                        m.noun,
                        ba + 1
                    );
                    if d.verdict != Verdict::Confirmed {
                        d.verdict = Verdict::Confirmed;
                        d.reason = format!("{text} with {code}");
                    }
                    d = d.with(text, &[lo, bo]);
                }
            }
        }
        if let Some(doc) = &m.documented {
            d = d.cites(
                doc,
                doc.says(&format!("{} bytes for {}", doc.value, m.noun)),
            );
        }
        Some(d)
    }

    /// The listener's own refusal with the cause's code: reproduced, confirmed below the
    /// documented limit, never judged when who answered is unknown or nothing is documented.
    fn judged(&self, m: &Measure, id: &str, r: &Refusal<'_>, accepted: usize, got: &str) -> Draft {
        if r.origin == Origin::Unknown {
            return Draft::new(
                id,
                Verdict::Reproduced,
                format!(
                    "{} above {accepted} bytes get {got} through the listener; whether the listener or a server behind it answers is not known: name the backend (--backend) to compare",
                    m.noun
                ),
            );
        }
        match &m.documented {
            Some(doc) if accepted < doc.value => Draft::new(
                id,
                Verdict::Confirmed,
                format!(
                    "the listener refuses {} above {accepted} bytes with {got}, below the {} bytes {}",
                    m.noun, doc.value, doc.who
                ),
            ),
            Some(doc) => Draft::new(
                id,
                Verdict::Reproduced,
                format!(
                    "{} above {accepted} bytes get {got} from the listener; {}",
                    m.noun,
                    doc.says(&doc.value.to_string())
                ),
            ),
            None => Draft::new(
                id,
                Verdict::Reproduced,
                format!(
                    "{} above {accepted} bytes get {got} from the listener (as measured; the {} profile documents no limit to judge it by)",
                    m.noun, self.ctx.profile.name
                ),
            ),
        }
    }

    /// The refusals at the threshold are relayed from behind the listener: its own limit lies
    /// above, seen or not.
    fn relayed(&self, m: &Measure, id: &str, r: &Refusal<'_>, accepted: usize) -> Draft {
        let passed = r.relayed_up_to.unwrap_or(r.rejected);
        match &r.own_above {
            Some((size, o, why)) => Draft::new(
                id,
                Verdict::Inconclusive,
                format!(
                    "the refusals above {accepted} bytes are relayed from behind the listener; its own refusal ({}) comes only at {size} bytes, so its own limit lies between {passed} and {size} bytes and was not measured: the server behind it refuses first",
                    describe(o.exchange.as_ref())
                ),
            )
            .with(format!("who answered {size} bytes: {why}"), &[*o]),
            None => Draft::new(
                id,
                Verdict::RuledOut,
                format!(
                    "every refusal seen is relayed from behind the listener: it passes {} of at least {passed} bytes on",
                    m.noun
                ),
            ),
        }
    }

    /// The same search over HTTP/2, where the listener negotiated it: its threshold joins the
    /// evidence, a threshold that differs from HTTP/1.1's is said outright (clients meet one or
    /// the other by their ALPN alone), and h2 clients refused by the listener itself with the
    /// cause's code below the documented limit confirm the cause as HTTP/1.1 clients would.
    fn with_h2(&self, m: &Measure, d: Option<Draft>, code: u16) -> Option<Draft> {
        let mut d = d?;
        let Some((ho, h)) = self.limit(m.family, Role::Listener, true) else {
            return Some(d);
        };
        d = d.with(
            format!(
                "listener over HTTP/2 ({}): {}",
                m.family,
                search_text(h, m.noun)
            ),
            &[ho],
        );
        let (Some(h2_accepted), Some(h2_rejected)) = (h.largest_accepted, h.smallest_rejected)
        else {
            return Some(d);
        };
        // The same threshold straight to the backend: over h2 too the refusals are the
        // backend's, passed on (the listener speaks HTTP/1.1 to it whatever the client spoke).
        if let Some((bo, b)) = self.limit(m.family, Role::Backend, false) {
            if b.smallest_rejected == Some(h2_rejected) && b.largest_accepted == Some(h2_accepted) {
                return Some(d.with(
                    format!(
                        "over HTTP/2 the refusals above {h2_accepted} bytes are the backend's too (the same threshold straight to it)"
                    ),
                    &[ho, bo],
                ));
            }
        }
        if let Some((lo, l)) = self.limit(m.family, Role::Listener, false) {
            if l.largest_accepted != Some(h2_accepted) && l.smallest_rejected.is_some() {
                d = d.with(
                    format!(
                        "HTTP/2 and HTTP/1.1 clients meet different limits: {} of up to {h2_accepted} bytes pass over h2, up to {} bytes over HTTP/1.1",
                        m.noun,
                        l.largest_accepted.unwrap_or(0)
                    ),
                    &[lo, ho],
                );
            }
        }
        let r = self.refusal(m, true);
        // Only the listener's own refusal, with the cause's code, is judged.
        let own = r.as_ref().is_some_and(|r| r.origin == Origin::Listener);
        if let Some(r) = r.as_ref().filter(|r| r.status.is_some()) {
            d = d.with(
                format!("who answered {} bytes over HTTP/2: {}", r.rejected, r.why),
                &r.at.into_iter().collect::<Vec<_>>(),
            );
        }
        let same_code = h.rejected_status == Some(code);
        if let Some(doc) = m.documented.as_ref().filter(|doc| h2_accepted < doc.value) {
            if d.verdict > Verdict::Confirmed && own && same_code {
                d.verdict = Verdict::Confirmed;
                d.reason = format!(
                    "over HTTP/2 the listener refuses {} above {h2_accepted} bytes with {}, below the {} bytes {}",
                    m.noun,
                    status_text(h),
                    doc.value,
                    doc.who
                );
            }
        }
        Some(d)
    }

    /// `414.backend-uri-limit`: the backend's own URI limit, and whether it is the tighter one;
    /// without a backend named, from the listener's relayed 414s.
    fn backend_uri_limit(&self, m: &Measure) -> Option<Draft> {
        const ID: &str = BACKEND_URI_ID;
        let view = self.view;
        let Some((bo, b)) = self.limit(m.family, Role::Backend, false) else {
            return self.backend_uri_limit_relayed(m);
        };
        if let Some(d) = unmeasured_draft(view, ID, m.family, Role::Backend, (bo, b)) {
            return Some(d);
        }
        let Some(rejected) = b.smallest_rejected else {
            return Some(
                Draft::new(
                    ID,
                    Verdict::RuledOut,
                    format!(
                        "no size tried was refused by the backend: {}",
                        threshold_text(b, m.noun)
                    ),
                )
                .with(
                    format!("backend directly: {}", threshold_text(b, m.noun)),
                    &[bo],
                ),
            );
        };
        let accepted = b.largest_accepted.unwrap_or(0);
        let status = status_text(b);
        if b.rejected_status != Some(414) {
            return Some(
                Draft::new(
                    ID,
                    Verdict::RuledOut,
                    format!(
                        "the backend refuses {} above {accepted} bytes with {status}, not 414",
                        m.noun
                    ),
                )
                .with(
                    format!(
                        "backend directly: {} ({}; {})",
                        threshold_text(b, m.noun),
                        refusal_text(b),
                        crate::plural::count(b.requests, "request")
                    ),
                    &[bo],
                ),
            );
        }
        let listener = self.limit(m.family, Role::Listener, false);
        let mut d = match listener {
            Some((_, l))
                if l.largest_accepted.is_some_and(|la| la > accepted)
                    || l.smallest_rejected == Some(rejected) =>
            {
                Draft::new(
                    ID,
                    Verdict::Confirmed,
                    format!(
                        "{} above {accepted} bytes pass the listener and get {status} from the backend",
                        m.noun
                    ),
                )
            }
            _ => Draft::new(
                ID,
                Verdict::Reproduced,
                format!(
                    "the backend itself refuses {} above {accepted} bytes with {status}",
                    m.noun
                ),
            ),
        };
        d = d.with(
            format!(
                "backend directly: {} ({}; {})",
                threshold_text(b, m.noun),
                refusal_text(b),
                crate::plural::count(b.requests, "request")
            ),
            &[bo],
        );
        if let Some((lo, l)) = listener {
            d = d.with(format!("listener: {}", threshold_text(l, m.noun)), &[lo]);
        }
        Some(d)
    }

    /// No backend named: the listener's 414s relayed from behind it are the backend's limit,
    /// reproduced on the strength of the answers' signatures.
    fn backend_uri_limit_relayed(&self, m: &Measure) -> Option<Draft> {
        const ID: &str = BACKEND_URI_ID;
        let (lo, l) = self.limit(m.family, Role::Listener, false)?;
        let r = self
            .refusal(m, false)
            .filter(|r| r.origin == Origin::Backend && r.status == Some(414))?;
        let accepted = l.largest_accepted.unwrap_or(0);
        let at: Vec<&Observation> = r.at.into_iter().collect();
        let mut d = Draft::new(
            ID,
            Verdict::Reproduced,
            format!(
                "{} above {accepted} bytes get a 414 relayed from behind the listener: a server behind it refuses them (no backend was named to measure it directly)",
                m.noun
            ),
        )
        .with(
            format!(
                "listener ({}): {}",
                m.family,
                search_text(l, m.noun)
            ),
            &[lo],
        )
        .with(format!("who answered {} bytes: {}", r.rejected, r.why), &at);
        if let Some((size, o, _)) = r.own_above {
            d = d.with(
                format!(
                    "the listener's own refusal ({}) comes only at {size} bytes: {} between {} and at least {} bytes pass it and fail behind it",
                    describe(o.exchange.as_ref()),
                    m.noun,
                    accepted + 1,
                    r.relayed_up_to.unwrap_or(r.rejected)
                ),
                &[o],
            );
        }
        Some(d)
    }

    /// No backend named: 400s relayed from behind the listener at a limit search's threshold
    /// are the backend's, passed on (`400.passthrough`), not the listener's limit.
    fn relayed_400(&self, measures: &[&Measure]) -> Option<Draft> {
        let mut out: Option<Draft> = None;
        for m in measures {
            let Some((lo, l)) = self.limit(m.family, Role::Listener, false) else {
                continue;
            };
            let Some(r) = self
                .refusal(m, false)
                .filter(|r| r.origin == Origin::Backend && r.status == Some(400))
            else {
                continue;
            };
            let accepted = l.largest_accepted.unwrap_or(0);
            let mut refs = vec![lo];
            refs.extend(r.at);
            let text = format!(
                "{}: {} above {accepted} bytes get 400; who answered {} bytes: {}",
                m.family, m.noun, r.rejected, r.why
            );
            out = Some(match out {
                None => Draft::new(
                    "400.passthrough",
                    Verdict::Reproduced,
                    format!(
                        "{} above {accepted} bytes get a 400 that a server behind the listener wrote, and the listener passes it on",
                        m.noun
                    ),
                )
                .with(text, &refs),
                Some(d) => d.with(text, &refs),
            });
        }
        out
    }
}
