//! The `response` family: the backend's answer to a valid request, parsed strictly, and the
//! listener's answer to the same request.

use serde::Serialize;

use super::engine::{Engine, Side};
use super::Observation;

/// What a strict parse of one answer found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResponseCheck {}

pub async fn run(engine: &Engine, sides: &[Side]) -> Vec<Observation> {
    let _ = (engine, sides);
    Vec::new()
}

/// The requests a run sends to a side (for `--dry-run`).
pub fn planned(side: &Side) -> Vec<(String, Vec<u8>)> {
    let _ = side;
    Vec::new()
}
