//! A loaded scenario: checked, typed, ready for the planner. Nothing downstream re-parses.

use serde::Serialize;

use crate::classify::verdict::Verdict;
use crate::probe::{Family, Limits, ProbeSpec};
use crate::profile::Profile;
use crate::target::Target;

/// Header names masked in every report, whatever the scenario says (the engine enforces them).
pub use crate::transport::mask::ALWAYS_MASKED;

/// What to probe, against which limits, and what the person expects to find.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scenario {
    /// `name:`, or the file stem.
    pub name: String,
    /// The file the scenario came from, as given.
    pub origin: String,
    pub listener: Option<Target>,
    pub backend: Option<Target>,
    /// `pool:`: every member of the backend pool (two or more), or none.
    pub pool: Vec<Target>,
    pub profile: Profile,
    /// In the order the file lists them; every family with its defaults when it lists none.
    pub probes: Vec<ProbeSpec>,
    pub limits: Limits,
    /// In file order.
    pub expect: Vec<Expectation>,
    /// `expect: { uri-limit: { at-least: 16k } }` entries, in file order.
    pub expect_limits: Vec<LimitExpectation>,
    /// Header names whose values reports mask: [`ALWAYS_MASKED`] first, then the file's
    /// `mask:` entries, without case-insensitive duplicates.
    pub mask: Vec<String>,
}

/// `expect: { cause-id: verdict }`: the verdict the person expects for one cause.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Expectation {
    pub cause: String,
    pub verdict: Verdict,
    /// Where the cause id is written (1-based), so that an unmet expectation can point at it.
    pub line: usize,
    pub column: usize,
}

/// `expect: { uri-limit: { at-least: 16384, at-most: 64k } }`: bounds on the largest size a
/// limit family measures as accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LimitExpectation {
    /// `header-size`, `header-limit` or `uri-limit`.
    pub family: Family,
    pub at_least: Option<usize>,
    pub at_most: Option<usize>,
    /// Where the family name is written (1-based).
    pub line: usize,
    pub column: usize,
}

/// What the loader needs from outside: variables, and the ids the catalogue and the probe
/// templates know (the scenario module depends on neither).
pub struct LoadContext<'a> {
    /// The value of `${NAME}`; `None` when undefined.
    pub vars: &'a dyn Fn(&str) -> Option<String>,
    /// Whether a cause id (`502.backend-unreachable`) is in the catalogue.
    pub known_cause: &'a dyn Fn(&str) -> bool,
    /// Whether a malformed-request variant (`lowercase-method`) is in the probe templates.
    pub known_variant: &'a dyn Fn(&str) -> bool,
}
