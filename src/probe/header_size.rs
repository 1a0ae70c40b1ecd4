//! The `header-size`, `header-limit` and `uri-limit` families: the largest header line, header
//! block and request target each side accepts (see [`super::limit`] for the search).

use crate::profile::Profile;

use super::context::{Engine, Planned, Side};
use super::limit::{self, HeaderBlock, HeaderLine, Uri};
use super::{Observation, ProbeSpec};

/// Sizes sent without bisection: the profile's limit (declared or documented) and one byte
/// past it; with no profile number, the search's upper bound.
fn at_and_past(limit: Option<usize>, max: usize) -> Vec<usize> {
    let limit = limit.unwrap_or(max);
    vec![limit, limit + 1]
}

/// What a spec searches: whether it bisects, its bounds, and the sizes it sends without
/// bisection. No profile documents a block limit separately: without bisection, the block
/// search tries the single-header limit as a block.
fn bounds(spec: &ProbeSpec, profile: &Profile) -> Option<(bool, usize, usize, Vec<usize>)> {
    let profile = profile.effective();
    let (bisect, min, max, documented) = match *spec {
        ProbeSpec::HeaderSize { bisect, min, max }
        | ProbeSpec::HeaderLimit { bisect, min, max } => {
            (bisect, min, max, profile.max_header_bytes)
        }
        ProbeSpec::UriLimit { bisect, min, max } => (bisect, min, max, profile.max_uri_bytes),
        _ => return None,
    };
    Some((bisect, min, max, at_and_past(documented, max)))
}

pub async fn run(engine: &Engine, sides: &[Side], spec: &ProbeSpec) -> Vec<Observation> {
    let Some((bisect, min, max, fixed)) = bounds(spec, &engine.profile) else {
        return Vec::new();
    };
    match spec {
        ProbeSpec::HeaderSize { .. } => {
            limit::run_all::<HeaderLine>(engine, sides, bisect, min, max, &fixed).await
        }
        ProbeSpec::HeaderLimit { .. } => {
            limit::run_all::<HeaderBlock>(engine, sides, bisect, min, max, &fixed).await
        }
        _ => limit::run_all::<Uri>(engine, sides, bisect, min, max, &fixed).await,
    }
}

/// The first requests of a search on a side, the same the run starts with; the rest depends on
/// the answers (see [`rest`]).
pub fn plan(side: &Side, spec: &ProbeSpec, profile: &Profile) -> Vec<Planned> {
    let Some((bisect, min, max, fixed)) = bounds(spec, profile) else {
        return Vec::new();
    };
    match spec {
        ProbeSpec::HeaderSize { .. } => limit::plan::<HeaderLine>(
            side,
            &limit::search_for::<HeaderLine>(side, bisect, min, max, &fixed, usize::MAX),
        ),
        ProbeSpec::HeaderLimit { .. } => limit::plan::<HeaderBlock>(
            side,
            &limit::search_for::<HeaderBlock>(side, bisect, min, max, &fixed, usize::MAX),
        ),
        _ => limit::plan::<Uri>(
            side,
            &limit::search_for::<Uri>(side, bisect, min, max, &fixed, usize::MAX),
        ),
    }
}

/// How the search goes on from its first requests.
pub fn rest(spec: &ProbeSpec) -> String {
    match *spec {
        ProbeSpec::HeaderSize {
            bisect: true,
            min,
            max,
        }
        | ProbeSpec::HeaderLimit {
            bisect: true,
            min,
            max,
        }
        | ProbeSpec::UriLimit {
            bisect: true,
            min,
            max,
        } => {
            let steps = (max.saturating_sub(min).max(2) as f64).log2().ceil() as usize;
            format!(
                "{} then bisects between the sizes above: at most {steps} more requests per side, each the same request with a different padding length",
                spec.family()
            )
        }
        _ => format!(
            "{} sends the sizes above, and one request at its smallest size when the first is refused (to tell a low limit from a side that refuses everything)",
            spec.family()
        ),
    }
}
