//! The report model every output format reads.

use serde::Serialize;

use crate::classify::malformed_table::MalformedTable;
use crate::classify::{Finding, Verdict};
use crate::probe::{Family, Limits, Observation};
use crate::profile::Profile;
use crate::target::{Role, Target};

/// Bumped when a field changes meaning or disappears (adding fields does not bump it).
pub const SCHEMA_VERSION: u32 = 2;

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema_version: u32,
    pub tool: String,
    pub scenario: String,
    /// Scenario file, or `scan` / `demo`.
    pub origin: String,
    pub started_unix_ms: u128,
    pub duration_ms: f64,
    pub profile: Profile,
    pub targets: Vec<Target>,
    pub limits: Limits,
    pub requests_sent: u32,
    /// True when a cap or Ctrl-C stopped probes before they finished.
    pub partial: bool,
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
    pub exit_code: i32,
    pub exit_reason: String,
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
