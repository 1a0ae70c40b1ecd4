//! The `latency` family: timed valid requests to each side, as min/median/p95/max.

use std::time::Duration;

use serde::Serialize;

use super::engine::{Engine, Side};
use super::Observation;

/// Timing statistics of one side.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LatencyStats {}

pub async fn run(
    engine: &Engine,
    sides: &[Side],
    requests: u32,
    client_timeout: Option<Duration>,
) -> Vec<Observation> {
    let _ = (engine, sides, requests, client_timeout);
    Vec::new()
}

/// The requests a run sends to a side (for `--dry-run`).
pub fn planned(side: &Side, requests: u32) -> Vec<(String, Vec<u8>)> {
    let _ = (side, requests);
    Vec::new()
}
