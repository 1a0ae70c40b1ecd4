//! The `mtu` family: path MTU towards each side (Don't-Fragment probes, the kernel's learned
//! path MTU) and the same request with small and large bodies.

use serde::Serialize;

use super::engine::{Engine, Side};
use super::Observation;

/// Parameters of the MTU checks.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MtuSpec {}

/// Path MTU and large-packet results towards one side.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MtuResult {}

pub async fn run(engine: &Engine, sides: &[Side], spec: &MtuSpec) -> Vec<Observation> {
    let _ = (engine, sides, spec);
    Vec::new()
}

/// The requests the checks send, for `--dry-run`.
pub fn planned(side: &Side, spec: &MtuSpec) -> Vec<(String, Vec<u8>)> {
    let _ = (side, spec);
    Vec::new()
}
