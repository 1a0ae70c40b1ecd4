//! Rules on measured limits: header line and header block (400) and URI length (414), each
//! compared side by side and with the profile's documented limit.

use crate::probe::{Detail, Family, LimitSearch, Observation};
use crate::profile::Cited;
use crate::target::Role;

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

pub(crate) fn drafts(view: &View<'_>, ctx: &Context<'_>) -> Vec<Draft> {
    let mut out = Vec::new();
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
    // One finding for the header cause, whichever of the two header searches ran.
    let header = [
        with_h2(
            view,
            &line,
            listener_limit(view, ctx, &line, "400.header-too-large"),
        ),
        with_h2(
            view,
            &block,
            listener_limit(view, ctx, &block, "400.header-too-large"),
        ),
    ]
    .into_iter()
    .flatten()
    .reduce(|mut a, b| {
        a.verdict = a.verdict.min(b.verdict);
        a.evidence.extend(b.evidence);
        a
    });
    out.extend(header);
    let uri = Measure {
        family: Family::UriLimit,
        noun: "request targets",
        documented: ctx.profile.max_uri_bytes(),
    };
    out.extend(with_h2(
        view,
        &uri,
        listener_limit(view, ctx, &uri, "414.uri-too-long"),
    ));
    out.extend(backend_uri_limit(view, &uri));
    out
}

fn limit_of<'a>(
    view: &View<'a>,
    family: Family,
    role: Role,
) -> Option<(&'a Observation, &'a LimitSearch)> {
    limit_named(view, family, role, "limit")
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

/// The same search over HTTP/2, where the listener negotiated it: its threshold joins the
/// evidence, a threshold that differs from HTTP/1.1's is said outright (clients meet one or
/// the other by their ALPN alone), and h2 clients refused below the documented limit confirm
/// the cause as HTTP/1.1 clients would.
fn with_h2(view: &View<'_>, m: &Measure, d: Option<Draft>) -> Option<Draft> {
    let mut d = d?;
    let h2_variant = crate::probe::h2::variant("limit");
    let Some((ho, h)) = limit_named(view, m.family, Role::Listener, &h2_variant) else {
        return Some(d);
    };
    let status = status_text(h);
    d = d.with(
        format!(
            "listener over HTTP/2 ({}): {}",
            m.family,
            search_text(h, m.noun, &status)
        ),
        &[ho],
    );
    let (Some(h2_accepted), Some(h2_rejected)) = (h.largest_accepted, h.smallest_rejected) else {
        return Some(d);
    };
    // The same threshold straight to the backend: over h2 too the refusals are the backend's,
    // passed on (the listener speaks HTTP/1.1 to it whatever the client spoke).
    if let Some((bo, b)) = limit_of(view, m.family, Role::Backend) {
        if b.smallest_rejected == Some(h2_rejected) && b.largest_accepted == Some(h2_accepted) {
            return Some(d.with(
                format!(
                    "over HTTP/2 the refusals above {h2_accepted} bytes are the backend's too (the same threshold straight to it)"
                ),
                &[ho, bo],
            ));
        }
    }
    if let Some((lo, l)) = limit_of(view, m.family, Role::Listener) {
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
    if let Some(doc) = m.documented.as_ref().filter(|doc| h2_accepted < doc.value) {
        if d.verdict > Verdict::Confirmed {
            d.verdict = Verdict::Confirmed;
            d.reason = format!(
                "over HTTP/2 the listener refuses {} above {h2_accepted} bytes with {status}, below the {} bytes {}",
                m.noun,
                doc.value,
                doc.who
            );
        }
    }
    Some(d)
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
fn search_text(l: &LimitSearch, noun: &str, status: &str) -> String {
    format!(
        "{} (status {status}; {} requests, {})",
        threshold_text(l, noun),
        l.requests,
        if l.exact { "exact" } else { "bounds" }
    )
}

fn status_text(l: &LimitSearch) -> String {
    l.rejected_status
        .map_or("a close".to_string(), |s| s.to_string())
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

/// The listener-side cause of a limit: reproduced at its threshold, confirmed where the
/// threshold is below the profile's documented limit or the backend's is tighter.
fn listener_limit(view: &View<'_>, ctx: &Context<'_>, m: &Measure, id: &str) -> Option<Draft> {
    let (lo, l) = limit_of(view, m.family, Role::Listener)?;
    let backend = limit_of(view, m.family, Role::Backend);
    if let Some(why) = unmeasured(view, m.family, Role::Listener, l) {
        return Some(
            Draft::new(id, Verdict::Inconclusive, format!("the listener {why}"))
                .with(format!("{}: {} requests", m.family, l.requests), &[lo]),
        );
    }
    let Some(rejected) = l.smallest_rejected else {
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
                    "{}: {} ({} requests)",
                    m.family,
                    threshold_text(l, m.noun),
                    l.requests
                ),
                &[lo],
            ),
        );
    };
    let accepted = l.largest_accepted.unwrap_or(0);
    let status = status_text(l);
    // The listener's refusals may be the backend's, passed on: the same threshold on both.
    let relayed = backend.is_some_and(|(_, b)| {
        b.smallest_rejected == Some(rejected) && b.largest_accepted == l.largest_accepted
    });
    let mut d = if relayed {
        Draft::new(
            id,
            Verdict::RuledOut,
            format!(
                "the refusals above {accepted} bytes are the backend's (same threshold straight to it): the listener passes larger {} on",
                m.noun
            ),
        )
    } else {
        match &m.documented {
            Some(doc) if accepted < doc.value => Draft::new(
                id,
                Verdict::Confirmed,
                format!(
                    "the listener refuses {} above {accepted} bytes with {status}, below the {} bytes {}",
                    m.noun, doc.value, doc.who
                ),
            ),
            Some(doc) => Draft::new(
                id,
                Verdict::Reproduced,
                format!(
                    "{} above {accepted} bytes get {status} from the listener; {}",
                    m.noun,
                    doc.says(&doc.value.to_string())
                ),
            ),
            None => Draft::new(
                id,
                Verdict::Reproduced,
                format!(
                    "{} above {accepted} bytes get {status} from the listener (as measured; the {} profile documents no limit to judge it by)",
                    m.noun, ctx.profile.name
                ),
            ),
        }
    };
    d = d.with(
        format!(
            "listener ({}): {}",
            m.family,
            search_text(l, m.noun, &status)
        ),
        &[lo],
    );
    if let Some((bo, b)) = backend {
        d = d.with(
            format!(
                "backend directly ({}): {}",
                m.family,
                threshold_text(b, m.noun)
            ),
            &[bo],
        );
        if let (Some(ba), Some(_)) = (b.largest_accepted, b.smallest_rejected) {
            if ba < accepted && !relayed {
                d.verdict = Verdict::Confirmed;
                d = d.with(
                    format!(
                        "{} of {}..={accepted} bytes pass the listener and fail at the backend",
                        m.noun,
                        ba + 1
                    ),
                    &[lo, bo],
                );
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

/// `414.backend-uri-limit`: the backend's own URI limit, and whether it is the tighter one.
fn backend_uri_limit(view: &View<'_>, m: &Measure) -> Option<Draft> {
    const ID: &str = "414.backend-uri-limit";
    let (bo, b) = limit_of(view, m.family, Role::Backend)?;
    if let Some(why) = unmeasured(view, m.family, Role::Backend, b) {
        return Some(
            Draft::new(ID, Verdict::Inconclusive, format!("the backend {why}"))
                .with(format!("{}: {} requests", m.family, b.requests), &[bo]),
        );
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
    let listener = limit_of(view, m.family, Role::Listener);
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
            "backend directly: {} (status {status}; {} requests)",
            threshold_text(b, m.noun),
            b.requests
        ),
        &[bo],
    );
    if let Some((lo, l)) = listener {
        d = d.with(format!("listener: {}", threshold_text(l, m.noun)), &[lo]);
    }
    Some(d)
}
