//! The report model every output format reads.

use serde::Serialize;

use crate::classify::malformed_table::MalformedTable;
use crate::classify::{Finding, Verdict};
use crate::probe::floor::{Floor, LongestWait};
use crate::probe::{Family, Limits, Observation};
use crate::profile::Profile;
use crate::target::{Role, Target};

/// The run report's `schema_version` (see [`super::schema`] for every kind's).
pub const SCHEMA_VERSION: u32 = super::schema::Kind::Run.version();

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema_version: u32,
    pub tool: String,
    pub scenario: String,
    /// Scenario file, or `scan` / `demo`.
    pub origin: String,
    pub started_unix_ms: u128,
    /// The host that ran the probes (empty when unknown): CI keeps reports from many runners.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub hostname: String,
    pub duration_ms: f64,
    pub profile: Profile,
    pub targets: Vec<Target>,
    pub limits: Limits,
    pub requests_sent: u32,
    /// True when a cap or Ctrl-C stopped probes before they finished.
    pub partial: bool,
    /// The run's wall time against its floor.
    pub timing: Timing,
    pub notes: Vec<String>,
    pub summary: Summary,
    pub findings: Vec<Finding>,
    pub expectations: Vec<ExpectationResult>,
    /// The scenario's limit expectations (`expect: { uri-limit: { at-least: 16k } }`).
    pub limit_expectations: Vec<LimitExpectationResult>,
    /// Cause ids this run's probes could not speak to.
    pub not_covered: Vec<String>,
    /// Targets that could not be reached at all.
    pub unreachable: Vec<String>,
    pub observations: Vec<Observation>,
    /// Per malformed-request kind, each side's answer judged against a strict server, and the
    /// kinds grouped by the side that refuses them; `None` when no `malformed` probe ran.
    pub malformed: Option<MalformedTable>,
    /// The run's cap (requests or duration) that cut it short, in words: what the run did not
    /// get to was not decided, and the exit code is not 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cut_short: Option<String>,
    pub exit_code: i32,
    pub exit_reason: String,
}

/// A run's wall time against the least time any schedule of its requests could take: the
/// requests at the max rate, or its longest single wait (see [`crate::probe::floor`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Timing {
    pub wall_seconds: f64,
    /// max(`rate_seconds`, the longest wait's seconds).
    pub floor_seconds: f64,
    /// wall ÷ floor (0 when the floor is 0).
    pub ratio: f64,
    /// What sets the floor: `rate` or `wait`.
    pub floor_set_by: &'static str,
    /// requests ÷ max rate.
    pub rate_seconds: f64,
    pub longest_wait: Option<LongestWait>,
}

impl Timing {
    pub fn new(wall_seconds: f64, floor: &Floor) -> Timing {
        let floor_seconds = floor.seconds();
        Timing {
            wall_seconds,
            floor_seconds,
            ratio: if floor_seconds > 0.0 {
                wall_seconds / floor_seconds
            } else {
                0.0
            },
            floor_set_by: if floor.set_by_wait() { "wait" } else { "rate" },
            rate_seconds: floor.rate_seconds,
            longest_wait: floor.longest_wait.clone(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub confirmed: usize,
    pub reproduced: usize,
    pub ruled_out: usize,
    pub inconclusive: usize,
    pub expectations_unmet: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExpectationResult {
    pub cause: String,
    pub expected: Verdict,
    /// `None` when the run made no finding for the cause.
    pub actual: Option<Verdict>,
    pub met: bool,
    /// Where the expectation is written (`file:line:column`).
    pub location: String,
}

/// A limit expectation: the measured largest accepted size of one limit family against the
/// bounds the scenario wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LimitExpectationResult {
    /// `header-size`, `header-limit` or `uri-limit`.
    pub limit: Family,
    /// The side whose limit was compared: the listener, or the backend when there is none.
    pub role: Role,
    pub at_least: Option<usize>,
    pub at_most: Option<usize>,
    /// What the limit search measured on that side (`None` when it did not run or measured
    /// nothing).
    pub largest_accepted: Option<usize>,
    pub smallest_rejected: Option<usize>,
    pub met: bool,
    /// Why it is met or not, in words.
    pub why: String,
    /// Where the expectation is written (`file:line:column`).
    pub location: String,
}

impl LimitExpectationResult {
    /// The bounds as the scenario wrote them: `at-least 16384, at-most 65536`.
    pub fn bounds(&self) -> String {
        let mut parts = Vec::new();
        if let Some(n) = self.at_least {
            parts.push(format!("at-least {n}"));
        }
        if let Some(n) = self.at_most {
            parts.push(format!("at-most {n}"));
        }
        parts.join(", ")
    }
}

impl Summary {
    pub fn of(findings: &[Finding], expectations: &[ExpectationResult]) -> Summary {
        let count = |v: Verdict| findings.iter().filter(|f| f.verdict == v).count();
        Summary {
            confirmed: count(Verdict::Confirmed),
            reproduced: count(Verdict::Reproduced),
            ruled_out: count(Verdict::RuledOut),
            inconclusive: count(Verdict::Inconclusive),
            expectations_unmet: expectations.iter().filter(|e| !e.met).count(),
        }
    }
}
