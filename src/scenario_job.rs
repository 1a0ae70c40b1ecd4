//! A scenario file turned into a runnable [`Job`]: variables, known ids, expectations.

use std::path::Path;

use crate::catalogue::Catalogue;
use crate::probe::{templates, Plan};
use crate::run::{Expect, Expected, Job};
use crate::scenario::{self, LoadContext, Scenario, ScenarioError};

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("{0}")]
    Scenario(#[from] ScenarioError),
    #[error("--var {0:?}: expected NAME=VALUE")]
    BadVar(String),
}

fn known_cause(id: &str) -> bool {
    Catalogue::builtin().get(id).is_some()
}

fn known_variant(id: &str) -> bool {
    templates::is_variant_or_tag(id)
}

/// Load a scenario file. `${NAME}` comes from `--var NAME=VALUE`, then the environment.
pub fn load(path: &Path, vars: &[String]) -> Result<Job, JobError> {
    load_as(path, vars, scenario::Ownership::Unconfirmed)
}

/// [`load`], with the person's word on owning the target (`--i-own-this-target`).
pub fn load_as(path: &Path, vars: &[String], owner: scenario::Ownership) -> Result<Job, JobError> {
    let mut pairs = Vec::new();
    for v in vars {
        let (k, val) = v
            .split_once('=')
            .ok_or_else(|| JobError::BadVar(v.clone()))?;
        pairs.push((k.to_string(), val.to_string()));
    }
    let lookup = move |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .or_else(|| std::env::var(name).ok())
    };
    let ctx = LoadContext {
        vars: &lookup,
        known_cause: &known_cause,
        known_variant: &known_variant,
    };
    Ok(job(scenario::load_file_as(path, &ctx, owner)?))
}

/// Load scenario text (e.g. the embedded demo) with the given variables only.
pub fn from_text(
    text: &str,
    origin: &str,
    vars: &dyn Fn(&str) -> Option<String>,
) -> Result<Job, JobError> {
    let ctx = LoadContext {
        vars,
        known_cause: &known_cause,
        known_variant: &known_variant,
    };
    Ok(job(scenario::load_str(text, origin, &ctx)?))
}

/// A module of `lbprobe serve` (see [`scenario::load_module_str`]): its text (from its file, or
/// the config's lines with the rest blanked, so positions are the config's), with
/// `${TARGET}` and `${BACKEND}` standing for the probe's `target=` and `backend=`; any other
/// `${NAME}` comes from the environment.
pub fn module(
    text: &str,
    origin: &str,
    target: Option<&str>,
    backend: Option<&str>,
) -> Result<Job, JobError> {
    let vars = |name: &str| match name {
        scenario::MODULE_TARGET => target.map(str::to_string),
        scenario::MODULE_BACKEND => backend.map(str::to_string),
        _ => std::env::var(name).ok(),
    };
    let ctx = LoadContext {
        vars: &vars,
        known_cause: &known_cause,
        known_variant: &known_variant,
    };
    Ok(job(scenario::load_module_str(text, origin, &ctx)?))
}

fn job(s: Scenario) -> Job {
    let mut expect: Vec<Expect> = s
        .expect
        .iter()
        .map(|e| Expect {
            cause: e.cause.clone(),
            expected: Expected::Verdict(e.verdict),
            location: format!("{}:{}:{}", s.origin, e.line, e.column),
        })
        .collect();
    expect.extend(s.expect_limits.iter().map(|e| Expect {
        cause: e.family.to_string(),
        expected: Expected::Limit {
            family: e.family,
            at_least: e.at_least,
            at_most: e.at_most,
        },
        location: format!("{}:{}:{}", s.origin, e.line, e.column),
    }));
    let plan = Plan::new(s.listener, s.backend)
        .with_pool(s.pool)
        .with_profile(s.profile)
        .with_probes(s.probes)
        .with_limits(s.limits)
        .with_mask(s.mask);
    Job {
        expect,
        ..Job::new(s.name, s.origin, plan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants_may_name_a_template_or_a_tag() {
        assert!(known_variant("obs-fold"));
        assert!(known_variant("chunked"));
        assert!(known_variant("request-line"));
        assert!(!known_variant("no-such-kind"));
    }
}
