//! The `partial` family: incomplete requests, and how long the listener waits before it gives up.

use std::time::Duration;

use serde::Serialize;

use super::engine::{Engine, Side};
use super::Observation;

/// What one partial request showed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PartialResult {}

pub async fn run(engine: &Engine, sides: &[Side], max_wait: Duration) -> Vec<Observation> {
    let _ = (engine, sides, max_wait);
    Vec::new()
}

/// The requests a run sends to a side (for `--dry-run`).
pub fn planned(side: &Side) -> Vec<(String, Vec<u8>)> {
    let _ = side;
    Vec::new()
}
