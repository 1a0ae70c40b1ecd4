//! What a replayed request (`lbprobe replay`, family `replay`) says of the causes its shape
//! speaks to: the same attribution as the probes (who answered: the listener's own page, the
//! backend's answer side by side, the answer's signature) and the same rule that a cause of
//! code X is reproduced only when X was seen. The rules that own those causes (limits,
//! validation) ask this module for a draft and merge it with their own: a cause is still
//! decided in one place.
//!
//! Never `ruled_out`: one request that fails says nothing about what else could fail.

use crate::probe::{Detail, Family};
use crate::profile::Cited;

use super::attribution::Origin;
use super::{describe, Context, Draft, Pair, Verdict, View};

const HEADER: &str = "400.header-too-large";
const URI: &str = "414.uri-too-long";
const BACKEND_URI: &str = "414.backend-uri-limit";
const MALFORMED: &str = "400.malformed-request";

/// The replay to judge: the shrink's minimal request when there is one, else the request as
/// given; only when the listener's copy is tagged with `cause`.
fn judged<'a>(view: &View<'a>, cause: &str) -> Option<Pair<'a>> {
    let pairs = view.pairs(Family::Replay);
    let pair = pairs
        .iter()
        .find(|p| p.variant == "minimal")
        .or_else(|| pairs.iter().find(|p| p.variant == "as-given"))
        .copied()?;
    pair.listener
        .is_some_and(|o| o.evidence_for.iter().any(|e| e == cause))
        .then_some(pair)
}

/// The shrink's words for what matters, or the request's size when it was not shrunk.
fn part_text(p: &Pair<'_>) -> String {
    let Some(o) = p.listener else {
        return String::new();
    };
    match &o.detail {
        Detail::Replay { matters } if !matters.is_empty() => matters.join("; "),
        _ => format!("the request as given ({} bytes)", o.request.bytes),
    }
}

fn answer_text(p: &Pair<'_>, why: &str) -> String {
    let backend = match p.backend {
        Some(_) => format!("; straight to the backend: {}", describe(p.backend_ex())),
        None => String::new(),
    };
    format!(
        "replayed {}: the listener answers {}{backend} ({why})",
        p.variant,
        describe(p.listener_ex())
    )
}

fn cite_limit(d: Draft, cited: Option<Cited<usize>>, noun: &str) -> Draft {
    match cited {
        Some(c) => {
            let text = c.says(&format!(
                "{noun} up to {} bytes",
                crate::replay::shrink::group(c.value)
            ));
            d.cites(&c, text)
        }
        None => d,
    }
}

/// `400.header-too-large` from a replay whose header (or, on a listener that answers long URIs
/// with 400, whose target) matters.
pub(super) fn header(view: &View<'_>, ctx: &Context<'_>) -> Option<Draft> {
    let (p, via_uri) = match judged(view, HEADER) {
        Some(p) => (p, false),
        None => (judged(view, URI)?, true),
    };
    let status = p.listener_status();
    if via_uri && status != Some(400) {
        return None;
    }
    let (origin, why) = p.origin();
    let part = part_text(&p);
    let answer = answer_text(&p, &why);
    let d = match (status, origin) {
        (Some(400), Origin::Listener) => Draft::new(
            HEADER,
            Verdict::Reproduced,
            format!("the listener itself refuses the replayed request with 400 for {part}"),
        ),
        (Some(400), Origin::Backend) => Draft::new(
            HEADER,
            Verdict::Inconclusive,
            format!("the 400 for {part} is relayed from behind the listener: the backend's limit, not the listener's"),
        ),
        (Some(400), Origin::Unknown) => Draft::new(
            HEADER,
            Verdict::Inconclusive,
            format!("400 for {part}, from the listener or the backend; add --backend to tell them apart"),
        ),
        (Some(code), _) if code >= 400 => Draft::new(
            HEADER,
            Verdict::Inconclusive,
            format!("the replay of {part} gets {code}, not the 400 of this cause"),
        ),
        _ => return None,
    };
    let mut d = d.with(answer, &p.observations());
    if via_uri {
        d = d.with(
            "this listener answers an over-long request target with 400, not the 414 the reference page documents for it",
            &[],
        );
    }
    Some(cite_limit(
        d,
        ctx.profile.max_header_bytes(),
        "header lines",
    ))
}

/// `414.uri-too-long` (the listener's own 414) and `414.backend-uri-limit` (a relayed 414)
/// from a replay whose target matters: `(listener's, backend's)`.
pub(super) fn uri(view: &View<'_>, ctx: &Context<'_>) -> (Option<Draft>, Option<Draft>) {
    let Some(p) = judged(view, URI) else {
        return (None, None);
    };
    if p.listener_status() != Some(414) {
        return (None, None);
    }
    let (origin, why) = p.origin();
    let part = part_text(&p);
    let answer = answer_text(&p, &why);
    let obs = p.observations();
    let own = |v: Verdict, reason: String| {
        cite_limit(
            Draft::new(URI, v, reason).with(answer.clone(), &obs),
            ctx.profile.max_uri_bytes(),
            "request targets",
        )
    };
    let relayed =
        |v: Verdict, reason: String| Draft::new(BACKEND_URI, v, reason).with(answer.clone(), &obs);
    match origin {
        Origin::Listener => (
            Some(own(
                Verdict::Reproduced,
                format!("the listener itself refuses {part} with 414"),
            )),
            None,
        ),
        Origin::Backend => (
            None,
            Some(relayed(
                Verdict::Reproduced,
                format!("the 414 for {part} is relayed from behind the listener: the backend's URI limit"),
            )),
        ),
        Origin::Unknown => {
            let reason = format!(
                "414 for {part}: the listener's URI limit or the backend's; add --backend to tell them apart"
            );
            (
                Some(own(Verdict::Inconclusive, reason.clone())),
                Some(relayed(Verdict::Inconclusive, reason)),
            )
        }
    }
}

/// `400.malformed-request` from a replay whose request line matters (a lowercase method, an
/// unknown version).
pub(super) fn malformed(view: &View<'_>) -> Option<Draft> {
    let p = judged(view, MALFORMED)?;
    let (origin, why) = p.origin();
    let part = part_text(&p);
    let verdict = match (p.listener_status(), origin) {
        (Some(400), Origin::Listener) => Verdict::Reproduced,
        (Some(400), Origin::Unknown) => Verdict::Inconclusive,
        _ => return None,
    };
    let reason = match verdict {
        Verdict::Reproduced => format!("the listener itself answers 400 to {part}"),
        _ => format!(
            "400 to {part}, from the listener or the backend; add --backend to tell them apart"
        ),
    };
    Some(Draft::new(MALFORMED, verdict, reason).with(answer_text(&p, &why), &p.observations()))
}

/// Two drafts of one cause as one: the strongest verdict and its reason, every piece of
/// evidence.
pub(super) fn merge(a: Option<Draft>, b: Option<Draft>) -> Option<Draft> {
    match (a, b) {
        (Some(mut a), Some(b)) => {
            if b.verdict < a.verdict {
                a.verdict = b.verdict;
                a.reason = b.reason;
            }
            a.evidence.extend(b.evidence);
            Some(a)
        }
        (a, b) => a.or(b),
    }
}
