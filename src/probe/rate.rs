//! The `rate` family: a bounded ramp of request rate through the listener, to find where it
//! starts answering 503 on its own (rate limiting).

use serde::Serialize;

use super::engine::{Engine, Side};
use super::Observation;

/// Parameters of a ramp. Every cap is required (defaults are safe); the engine's budget still
/// bounds the whole run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RateSpec {}

/// What a ramp found on one side.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RateResult {}

pub async fn run(engine: &Engine, sides: &[Side], spec: &RateSpec) -> Vec<Observation> {
    let _ = (engine, sides, spec);
    Vec::new()
}

/// The request a ramp repeats, for `--dry-run`.
pub fn planned(side: &Side, spec: &RateSpec) -> Vec<(String, Vec<u8>)> {
    let _ = (side, spec);
    Vec::new()
}
