//! The `schema_version` of every JSON output, in one place.
//!
//! Each kind of JSON document lbprobe prints has its own version and its own JSON Schema
//! (`docs/schema/<name>.schema.json`, listed in `docs/schema/README.md`). A version is bumped
//! when a field of that document changes meaning or disappears; adding a field, or a new value
//! to an enumeration, does not bump it. Kinds are versioned apart so that a change to one (the
//! logs summary, say) does not tell readers of another (the run report) that theirs changed.

use serde::Serialize;

/// A kind of JSON document lbprobe prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The report of `scan`, `run` and `demo` (also inside `backend`'s `checks`).
    Run,
    /// `scan --dry-run` / `run --dry-run`: the plan of every request.
    Plan,
    /// `lbprobe backend`: the host's facts and local checks.
    Backend,
    /// `lbprobe merge`: a client report joined with a backend capture.
    Merge,
    /// `lbprobe logs`: the summary of access logs.
    Logs,
    /// `lbprobe logs --explain-line N`: one line explained.
    LogLine,
    /// `lbprobe causes`: the catalogue.
    Causes,
    /// `lbprobe explain CAUSE`: one cause.
    Cause,
    /// `lbprobe probes`: the malformed-request templates.
    Probes,
    /// `lbprobe replay`: one request replayed, shrunk and judged.
    Replay,
    /// `lbprobe lab`: where the lab answers.
    Lab,
    /// `lbprobe lab --hostile list`: the hostile backends the lab can play.
    HostileKinds,
}

impl Kind {
    pub const ALL: [Kind; 12] = [
        Kind::Run,
        Kind::Plan,
        Kind::Backend,
        Kind::Merge,
        Kind::Logs,
        Kind::LogLine,
        Kind::Causes,
        Kind::Cause,
        Kind::Probes,
        Kind::Replay,
        Kind::Lab,
        Kind::HostileKinds,
    ];

    /// The document's current `schema_version`.
    pub const fn version(self) -> u32 {
        match self {
            // 2: the profile became documented and declared numbers with how it was chosen,
            // and evidence gained its basis.
            Kind::Run => 2,
            // 2 since it shared the run report's number; its own from now on.
            Kind::Backend => 2,
            Kind::Plan
            | Kind::Merge
            | Kind::Logs
            | Kind::LogLine
            | Kind::Causes
            | Kind::Cause
            | Kind::Probes
            | Kind::Replay
            | Kind::Lab
            | Kind::HostileKinds => 1,
        }
    }

    /// The schema's file stem under `docs/schema/` (`run` for `run.schema.json`).
    pub const fn name(self) -> &'static str {
        match self {
            Kind::Run => "run",
            Kind::Plan => "plan",
            Kind::Backend => "backend",
            Kind::Merge => "merge",
            Kind::Logs => "logs",
            Kind::LogLine => "log-line",
            Kind::Causes => "causes",
            Kind::Cause => "cause",
            Kind::Probes => "probes",
            Kind::Replay => "replay",
            Kind::Lab => "lab",
            Kind::HostileKinds => "hostile-kinds",
        }
    }
}

/// A document whose type has no `schema_version` field of its own, with it put first.
#[derive(Serialize)]
struct Versioned<'a, T: Serialize> {
    schema_version: u32,
    #[serde(flatten)]
    body: &'a T,
}

/// Pretty JSON of `value` (an object) with `kind`'s `schema_version` as its first field.
pub fn to_json<T: Serialize>(kind: Kind, value: &T) -> String {
    super::to_json(&Versioned {
        schema_version: kind.version(),
        body: value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_comes_first_and_the_body_is_kept() {
        let text = to_json(Kind::Lab, &serde_json::json!({ "backend": "http://x/" }));
        assert!(
            text.starts_with("{\n  \"schema_version\": 1,\n  \"backend\""),
            "{text}"
        );
    }

    #[test]
    fn every_kind_has_a_distinct_schema_file() {
        let mut names: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Kind::ALL.len());
    }
}
