//! The `connect` family: TCP handshakes only, telling refused from dropped from unreachable.

use serde::Serialize;

use super::engine::{Engine, Side};
use super::Observation;

/// What the handshakes to one side showed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConnectResult {}

pub async fn run(engine: &Engine, sides: &[Side], attempts: u32) -> Vec<Observation> {
    let _ = (engine, sides, attempts);
    Vec::new()
}
