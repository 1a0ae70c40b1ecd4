//! Runs of the binary and lookups in its JSON report, for tests that drive `lbprobe` as a user
//! would and read what it wrote.

use std::process::Output;

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_lbprobe");

/// Caps for runs against loopback targets: fast, and a stuck probe cannot stall the suite.
pub const TIGHT: &[&str] = &[
    "--timeout",
    "3",
    "--max-rate",
    "1000",
    "--max-duration",
    "30",
];

pub fn lbprobe(args: &[&str]) -> Output {
    std::process::Command::new(BIN)
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {BIN}: {e}"))
}

/// Like [`lbprobe`], without blocking the runtime that serves a lab backend.
pub async fn lbprobe_async(args: &[&str]) -> Output {
    tokio::process::Command::new(BIN)
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .await
        .unwrap_or_else(|e| panic!("cannot run {BIN}: {e}"))
}

pub fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}); stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Every observation as `family variant`, for failure messages.
pub fn variants(report: &Value) -> Vec<String> {
    report["observations"]
        .as_array()
        .expect("observations")
        .iter()
        .map(|o| {
            format!(
                "{} {}",
                o["family"].as_str().unwrap_or(""),
                o["variant"].as_str().unwrap_or("")
            )
        })
        .collect()
}

pub fn observation<'a>(report: &'a Value, family: &str, variant: &str, role: &str) -> &'a Value {
    report["observations"]
        .as_array()
        .expect("observations")
        .iter()
        .find(|o| o["family"] == family && o["variant"] == variant && o["role"] == role)
        .unwrap_or_else(|| panic!("no {role} {family} {variant} among {:?}", variants(report)))
}

pub fn finding<'a>(report: &'a Value, cause: &str) -> &'a Value {
    report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["cause"] == cause)
        .unwrap_or_else(|| panic!("no finding {cause} in {:#}", report["findings"]))
}
