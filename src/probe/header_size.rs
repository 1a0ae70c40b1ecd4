//! The `header-size`, `header-limit` and `uri-limit` families: the largest header line, header
//! block and request target each side accepts (see [`super::limit`] for the search).

use super::engine::{Engine, Side};
use super::limit::{self, HeaderBlock, HeaderLine, SizedRequest, Uri};
use super::{Family, Observation, ProbeSpec};

/// Sizes sent without bisection: the profile's limit (declared or documented) and one byte
/// past it; with no profile number, the search's upper bound.
fn at_and_past(limit: Option<usize>, max: usize) -> Vec<usize> {
    let limit = limit.unwrap_or(max);
    vec![limit, limit + 1]
}

pub async fn run(engine: &Engine, sides: &[Side], spec: &ProbeSpec) -> Vec<Observation> {
    let profile = engine.profile.effective();
    match *spec {
        ProbeSpec::HeaderSize { bisect, min, max } => {
            let documented = profile.max_header_bytes;
            limit::run_all::<HeaderLine>(engine, sides, bisect, min, max, |_| {
                at_and_past(documented, max)
            })
            .await
        }
        ProbeSpec::HeaderLimit { bisect, min, max } => {
            // No profile documents a block limit separately: without bisection, try the
            // single-header limit as a block.
            let documented = profile.max_header_bytes;
            limit::run_all::<HeaderBlock>(engine, sides, bisect, min, max, |_| {
                at_and_past(documented, max)
            })
            .await
        }
        ProbeSpec::UriLimit { bisect, min, max } => {
            let documented = profile.max_uri_bytes;
            limit::run_all::<Uri>(engine, sides, bisect, min, max, |_| {
                at_and_past(documented, max)
            })
            .await
        }
        _ => Vec::new(),
    }
}

/// The first requests of a search, for `--dry-run` (the rest depends on the answers).
pub fn planned(
    side: &Side,
    spec: &ProbeSpec,
    profile: &crate::profile::Profile,
) -> Vec<(Family, String, Vec<u8>)> {
    fn sized<S: SizedRequest>(side: &Side, sizes: Vec<usize>) -> Vec<(Family, String, Vec<u8>)> {
        sizes
            .into_iter()
            .map(|n| (S::FAMILY, format!("{}-{n}", S::PREFIX), S::request(side, n)))
            .collect()
    }
    let first = |bisect: bool, min: usize, max: usize, documented: Option<usize>| {
        if bisect {
            vec![min, max]
        } else {
            at_and_past(documented, max)
        }
    };
    let profile = profile.effective();
    match *spec {
        ProbeSpec::HeaderSize { bisect, min, max } => {
            sized::<HeaderLine>(side, first(bisect, min, max, profile.max_header_bytes))
        }
        ProbeSpec::HeaderLimit { bisect, min, max } => {
            sized::<HeaderBlock>(side, first(bisect, min, max, profile.max_header_bytes))
        }
        ProbeSpec::UriLimit { bisect, min, max } => {
            sized::<Uri>(side, first(bisect, min, max, profile.max_uri_bytes))
        }
        _ => Vec::new(),
    }
}
