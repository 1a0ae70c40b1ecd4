//! The documented causes of error codes, as data: one YAML file embedded in the binary is the
//! single source of truth for ids, wording, evidence and fixes (docs/causes.md is rendered
//! from it).

use std::collections::HashSet;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

mod words;

pub use words::{Kind, Side};

/// The embedded catalogue. Tests check it, so [`Catalogue::builtin`] may rely on it parsing.
const BUILTIN_YAML: &str = include_str!("causes.yaml");

/// Probe family names a cause may point at. Wider than [`crate::probe::Family`] on purpose: the
/// catalogue names every family the design plans (and `capture`/`logs`, which are evidence a
/// person gathers), while the engine implements them one by one.
pub const PROBE_FAMILIES: &[&str] = &[
    "protocol",
    "malformed",
    "methods",
    "header-size",
    "uri-limit",
    "header-limit",
    "partial",
    "latency",
    "connect",
    "response",
    "mtu",
    "backend-host",
    "capture",
    "rate",
    "keepalive",
    "pool",
    "logs",
];

/// One documented cause of an error code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cause {
    /// `<code>.<slug>`, stable: the contract between catalogue, classifier, reports and tests.
    pub id: String,
    pub code: u16,
    pub side: Side,
    pub kind: Kind,
    /// One line.
    pub title: String,
    /// What the cause means, in a few sentences.
    pub summary: String,
    /// Evidence that confirms (fault) or reproduces (trigger) the cause.
    pub confirms: Vec<String>,
    /// Evidence that rules the cause out.
    pub rules_out: Vec<String>,
    /// Concrete fixes.
    pub remediation: Vec<String>,
    /// Probe family names (see [`PROBE_FAMILIES`]) that test the cause.
    pub probes: Vec<String>,
    /// What the access log's status, upstream_status and timing fields show.
    pub log_signals: String,
    /// A cause beyond the reference page's list.
    #[serde(default)]
    pub extension: bool,
}

impl Cause {
    /// The part of the id after `<code>.`.
    pub fn slug(&self) -> &str {
        self.id
            .split_once('.')
            .map_or(self.id.as_str(), |(_, slug)| slug)
    }

    /// The backend returned the code and the listener passed it on.
    pub fn is_passthrough(&self) -> bool {
        self.slug() == "passthrough"
    }
}

/// The id of the cause "the backend returned `code` and the listener passed it on".
pub fn passthrough_id(code: u16) -> String {
    format!("{code}.passthrough")
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalogue {
    causes: Vec<Cause>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogueError {
    #[error("causes catalogue: {message}")]
    Parse { message: String },
    #[error("causes catalogue: cause id {id:?} appears more than once (ids must be unique)")]
    DuplicateId { id: String },
    #[error(
        "causes catalogue: cause id {id:?} is not of the form <code>.<slug> \
         (slug: lowercase letters, digits and '-')"
    )]
    BadId { id: String },
    #[error(
        "causes catalogue: cause {id:?} has code {code}, but its id starts with another code \
         (the id must start with \"{code}.\")"
    )]
    CodeMismatch { id: String, code: u16 },
    #[error(
        "causes catalogue: cause {id:?} has an empty {field} (every field must say something)"
    )]
    EmptyField { id: String, field: &'static str },
    #[error(
        "causes catalogue: cause {id:?} names unknown probe family {probe:?} \
         (expected one of: {expected})"
    )]
    UnknownProbe {
        id: String,
        probe: String,
        expected: String,
    },
    #[error(
        "causes catalogue: code {code} has causes but no \"{code}.passthrough\" \
         (every code needs one)"
    )]
    MissingPassthrough { code: u16 },
}

impl Catalogue {
    /// The catalogue compiled into the binary, parsed on first use.
    pub fn builtin() -> &'static Catalogue {
        static BUILTIN: OnceLock<Catalogue> = OnceLock::new();
        BUILTIN.get_or_init(|| {
            Catalogue::from_yaml(BUILTIN_YAML)
                .expect("the embedded src/catalogue/causes.yaml is checked by its unit tests")
        })
    }

    /// Parses and validates a catalogue. The only place that knows the data is YAML.
    pub fn from_yaml(text: &str) -> Result<Catalogue, CatalogueError> {
        let catalogue: Catalogue =
            crate::yaml::data(text).map_err(|message| CatalogueError::Parse { message })?;
        catalogue.validate()?;
        Ok(catalogue)
    }

    /// Builds a catalogue from causes already in memory; call [`Catalogue::validate`] before
    /// trusting it.
    pub fn from_causes(causes: Vec<Cause>) -> Catalogue {
        Catalogue { causes }
    }

    pub fn get(&self, id: &str) -> Option<&Cause> {
        self.causes.iter().find(|c| c.id == id)
    }

    /// Every cause, in catalogue order (grouped by code).
    pub fn causes(&self) -> &[Cause] {
        &self.causes
    }

    pub fn by_code(&self, code: u16) -> impl Iterator<Item = &Cause> + '_ {
        self.causes.iter().filter(move |c| c.code == code)
    }

    /// The distinct codes, in catalogue order.
    pub fn codes(&self) -> Vec<u16> {
        let mut codes: Vec<u16> = Vec::new();
        for cause in &self.causes {
            if !codes.contains(&cause.code) {
                codes.push(cause.code);
            }
        }
        codes
    }

    /// Checks what serde cannot: unique ids of the form `<code>.<slug>` that agree with
    /// `code`, no empty field, only known probe families, a passthrough for every code.
    pub fn validate(&self) -> Result<(), CatalogueError> {
        let mut seen = HashSet::new();
        for cause in &self.causes {
            let id = &cause.id;
            if !seen.insert(id.as_str()) {
                return Err(CatalogueError::DuplicateId { id: id.clone() });
            }
            let Some((prefix, slug)) = id.split_once('.') else {
                return Err(CatalogueError::BadId { id: id.clone() });
            };
            let slug_ok = !slug.is_empty()
                && !slug.starts_with('-')
                && !slug.ends_with('-')
                && slug
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            let prefix_ok = prefix.len() == 3 && prefix.bytes().all(|b| b.is_ascii_digit());
            if !slug_ok || !prefix_ok {
                return Err(CatalogueError::BadId { id: id.clone() });
            }
            if prefix != cause.code.to_string() {
                return Err(CatalogueError::CodeMismatch {
                    id: id.clone(),
                    code: cause.code,
                });
            }
            check_text(id, "title", &cause.title)?;
            check_text(id, "summary", &cause.summary)?;
            check_text(id, "log_signals", &cause.log_signals)?;
            check_list(id, "confirms", &cause.confirms)?;
            check_list(id, "rules_out", &cause.rules_out)?;
            check_list(id, "remediation", &cause.remediation)?;
            check_list(id, "probes", &cause.probes)?;
            if let Some(probe) = cause
                .probes
                .iter()
                .find(|p| !PROBE_FAMILIES.contains(&p.as_str()))
            {
                return Err(CatalogueError::UnknownProbe {
                    id: id.clone(),
                    probe: probe.clone(),
                    expected: PROBE_FAMILIES.join(", "),
                });
            }
        }
        for code in self.codes() {
            if self.get(&passthrough_id(code)).is_none() {
                return Err(CatalogueError::MissingPassthrough { code });
            }
        }
        Ok(())
    }
}

fn check_text(id: &str, field: &'static str, text: &str) -> Result<(), CatalogueError> {
    if text.trim().is_empty() {
        return Err(CatalogueError::EmptyField {
            id: id.to_string(),
            field,
        });
    }
    Ok(())
}

fn check_list(id: &str, field: &'static str, items: &[String]) -> Result<(), CatalogueError> {
    if items.is_empty() || items.iter().any(|i| i.trim().is_empty()) {
        return Err(CatalogueError::EmptyField {
            id: id.to_string(),
            field,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cause ids of DESIGN.md's table, plus the nine passthroughs: the contract. Changing
    /// this list is changing the design. (The table lists 33 ids; with the passthroughs, 42.)
    const DESIGN_IDS: [&str; 42] = [
        "400.backend-expects-https",
        "400.backend-validation",
        "400.malformed-request",
        "400.http-to-https-listener",
        "400.client-closed-early",
        "400.header-too-large",
        "400.passthrough",
        "405.backend-method-unsupported",
        "405.trace-unsupported",
        "405.passthrough",
        "408.partial-request",
        "408.network-rtt-loss",
        "408.bandwidth-throttled",
        "408.passthrough",
        "414.backend-uri-limit",
        "414.uri-too-long",
        "414.passthrough",
        "499.network-rtt-loss",
        "499.bandwidth-throttled",
        "499.backend-slow",
        "499.client-timeout-short",
        "499.client-aborted",
        "499.passthrough",
        "500.backend-error",
        "500.backend-closed-early",
        "500.passthrough",
        "502.backend-unreachable",
        "502.backend-backlog-full",
        "502.mtu-mismatch",
        "502.malformed-backend-response",
        "502.backend-slow",
        "502.backend-error-mapped",
        "502.all-backends-unhealthy",
        "502.passthrough",
        "503.backend-error",
        "503.rate-limited",
        "503.no-backends",
        "503.passthrough",
        "504.backend-dependency-timeout",
        "504.connect-timeout",
        "504.backend-slow",
        "504.passthrough",
    ];

    #[test]
    fn design_id_list_has_no_duplicates() {
        let unique: HashSet<&str> = DESIGN_IDS.into_iter().collect();
        assert_eq!(unique.len(), DESIGN_IDS.len());
        let passthroughs = DESIGN_IDS.iter().filter(|id| id.ends_with(".passthrough"));
        assert_eq!(passthroughs.count(), 9);
    }

    #[test]
    fn builtin_catalogue_parses_and_validates() {
        let catalogue = Catalogue::from_yaml(BUILTIN_YAML).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(catalogue.validate(), Ok(()));
        assert_eq!(Catalogue::builtin(), &catalogue);
    }

    #[test]
    fn every_design_id_is_in_the_catalogue() {
        let catalogue = Catalogue::builtin();
        let missing: Vec<&str> = DESIGN_IDS
            .into_iter()
            .filter(|id| catalogue.get(id).is_none())
            .collect();
        assert!(missing.is_empty(), "missing from causes.yaml: {missing:?}");
    }

    #[test]
    fn no_cause_beyond_the_design_unless_marked_extension() {
        let design = &DESIGN_IDS;
        let extra: Vec<&str> = Catalogue::builtin()
            .causes()
            .iter()
            .filter(|c| !c.extension && !design.contains(&c.id.as_str()))
            .map(|c| c.id.as_str())
            .collect();
        assert!(
            extra.is_empty(),
            "not in DESIGN.md and not marked extension: {extra:?}"
        );
        let marked: Vec<&str> = Catalogue::builtin()
            .causes()
            .iter()
            .filter(|c| c.extension && design.contains(&c.id.as_str()))
            .map(|c| c.id.as_str())
            .collect();
        assert!(
            marked.is_empty(),
            "page ids marked as extension: {marked:?}"
        );
    }

    /// DESIGN.md's table holds the page's causes; an extension's side and kind are its own
    /// entry's to say (adding one touches no list here).
    fn design_causes() -> impl Iterator<Item = &'static Cause> {
        Catalogue::builtin()
            .causes()
            .iter()
            .filter(|c| !c.extension)
    }

    #[test]
    fn sides_follow_the_design_table() {
        // Passthroughs are upstream too (the backend said it); checked by slug below.
        const UPSTREAM: [&str; 12] = [
            "400.backend-expects-https",
            "400.backend-validation",
            "405.backend-method-unsupported",
            "414.backend-uri-limit",
            "500.backend-error",
            "502.backend-unreachable",
            "502.backend-backlog-full",
            "502.mtu-mismatch",
            "502.malformed-backend-response",
            "502.backend-slow",
            "503.backend-error",
            "504.backend-dependency-timeout",
        ];
        for cause in design_causes() {
            let upstream = cause.is_passthrough() || UPSTREAM.contains(&cause.id.as_str());
            let expected = if upstream {
                Side::Upstream
            } else {
                Side::Listener
            };
            assert_eq!(cause.side, expected, "side of {}", cause.id);
        }
    }

    #[test]
    fn kinds_follow_the_design() {
        const FAULTS: [&str; 9] = [
            "400.backend-expects-https",
            "408.network-rtt-loss",
            "408.bandwidth-throttled",
            "499.network-rtt-loss",
            "499.bandwidth-throttled",
            "499.backend-slow",
            "499.client-timeout-short",
            "500.backend-error",
            "500.backend-closed-early",
        ];
        for cause in design_causes() {
            let fault = FAULTS.contains(&cause.id.as_str())
                || cause.id == "500.passthrough"
                || cause.code == 502
                || (cause.code == 503 && cause.id != "503.rate-limited")
                || cause.code == 504;
            let expected = if fault { Kind::Fault } else { Kind::Trigger };
            assert_eq!(cause.kind, expected, "kind of {}", cause.id);
        }
    }

    #[test]
    fn ids_start_with_their_code() {
        for cause in Catalogue::builtin().causes() {
            assert!(
                cause.id.starts_with(&format!("{}.", cause.code)),
                "{} has code {}",
                cause.id,
                cause.code
            );
        }
    }

    #[test]
    fn every_code_has_its_passthrough() {
        let catalogue = Catalogue::builtin();
        let codes = catalogue.codes();
        assert_eq!(codes, [400, 405, 408, 414, 499, 500, 502, 503, 504]);
        for code in codes {
            let cause = catalogue
                .get(&passthrough_id(code))
                .unwrap_or_else(|| panic!("no passthrough for {code}"));
            assert!(cause.is_passthrough());
            assert_eq!(cause.side, Side::Upstream);
        }
    }

    #[test]
    fn by_code_returns_only_that_code_in_order() {
        let ids: Vec<&str> = Catalogue::builtin()
            .by_code(405)
            .map(|c| c.id.as_str())
            .collect();
        assert_eq!(
            ids,
            [
                "405.backend-method-unsupported",
                "405.trace-unsupported",
                "405.passthrough"
            ]
        );
        assert_eq!(Catalogue::builtin().by_code(418).count(), 0);
    }

    #[test]
    fn cause_slug_and_passthrough_id() {
        let cause = Catalogue::builtin()
            .get("502.mtu-mismatch")
            .expect("502.mtu-mismatch");
        assert_eq!(cause.slug(), "mtu-mismatch");
        assert!(!cause.is_passthrough());
        assert_eq!(passthrough_id(499), "499.passthrough");
    }

    fn one_cause() -> Cause {
        Catalogue::builtin()
            .get("405.trace-unsupported")
            .expect("405.trace-unsupported")
            .clone()
    }

    fn with_passthrough(cause: Cause) -> Catalogue {
        let passthrough = Catalogue::builtin()
            .get("405.passthrough")
            .expect("405.passthrough")
            .clone();
        Catalogue::from_causes(vec![cause, passthrough])
    }

    #[test]
    fn validate_rejects_duplicate_ids() {
        let cause = one_cause();
        let catalogue = Catalogue::from_causes(vec![cause.clone(), cause]);
        assert_eq!(
            catalogue.validate(),
            Err(CatalogueError::DuplicateId {
                id: "405.trace-unsupported".into()
            })
        );
    }

    #[test]
    fn validate_rejects_id_code_mismatch() {
        let mut cause = one_cause();
        cause.id = "404.trace-unsupported".into();
        assert_eq!(
            with_passthrough(cause).validate(),
            Err(CatalogueError::CodeMismatch {
                id: "404.trace-unsupported".into(),
                code: 405
            })
        );
    }

    #[test]
    fn validate_rejects_malformed_ids() {
        for bad in [
            "405",
            "405.",
            "405.Trace",
            "405.trace_x",
            "4O5.trace",
            "405.-x",
        ] {
            let mut cause = one_cause();
            cause.id = bad.into();
            assert_eq!(
                with_passthrough(cause).validate(),
                Err(CatalogueError::BadId { id: bad.into() }),
                "{bad}"
            );
        }
    }

    #[test]
    fn validate_rejects_empty_fields() {
        let mut cause = one_cause();
        cause.rules_out.clear();
        assert_eq!(
            with_passthrough(cause).validate(),
            Err(CatalogueError::EmptyField {
                id: "405.trace-unsupported".into(),
                field: "rules_out"
            })
        );
        let mut cause = one_cause();
        cause.summary = "  ".into();
        assert_eq!(
            with_passthrough(cause).validate(),
            Err(CatalogueError::EmptyField {
                id: "405.trace-unsupported".into(),
                field: "summary"
            })
        );
    }

    #[test]
    fn validate_rejects_unknown_probe_and_names_the_known_ones() {
        let mut cause = one_cause();
        cause.probes.push("teleport".into());
        let err = with_passthrough(cause)
            .validate()
            .expect_err("unknown probe");
        let message = err.to_string();
        assert!(message.contains("\"teleport\""), "{message}");
        assert!(message.contains("header-size"), "{message}");
    }

    #[test]
    fn validate_requires_a_passthrough_per_code() {
        let catalogue = Catalogue::from_causes(vec![one_cause()]);
        assert_eq!(
            catalogue.validate(),
            Err(CatalogueError::MissingPassthrough { code: 405 })
        );
    }

    #[test]
    fn from_yaml_rejects_unknown_fields() {
        let text = "causes:\n  - id: 405.passthrough\n    cde: 405\n";
        let err = Catalogue::from_yaml(text).expect_err("unknown field");
        assert!(
            matches!(&err, CatalogueError::Parse { message } if message.contains("cde")),
            "{err}"
        );
    }

    #[test]
    fn extension_defaults_to_false_and_can_be_set() {
        let yaml = |extension: &str| {
            format!(
                "causes:\n  - id: 502.passthrough\n    code: 502\n    side: upstream\n    \
                 kind: fault\n    title: t\n    summary: s\n    confirms: [c]\n    \
                 rules_out: [r]\n    remediation: [f]\n    probes: [logs]\n    \
                 log_signals: l\n{extension}"
            )
        };
        let plain = Catalogue::from_yaml(&yaml("")).expect("valid");
        assert!(!plain.causes()[0].extension);
        let marked = Catalogue::from_yaml(&yaml("    extension: true\n")).expect("valid");
        assert!(marked.causes()[0].extension);
    }
}
