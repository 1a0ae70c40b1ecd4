//! Runs of the binary and lookups in its JSON report, for tests that drive `lbprobe` as a user
//! would and read what it wrote.

use std::path::Path;
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

/// Bytes a run wrote, as text for assertions and their messages.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The run exited with `want`; otherwise fail with both of its streams.
pub fn assert_exit(out: &Output, want: i32) {
    assert_eq!(
        out.status.code(),
        Some(want),
        "exit code; stdout:\n{}\nstderr:\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// All of stdout must be one JSON document: progress or messages there would break it.
pub fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
            text(&out.stdout),
            text(&out.stderr)
        )
    })
}

/// A scenario file `ci.yaml` in `dir` for one lab `backend`, `rest` (probes, limits,
/// expectations) after its target; the file's path, for `lbprobe run`.
pub fn backend_scenario(dir: &Path, backend: &str, rest: &str) -> String {
    let path = dir.join("ci.yaml");
    std::fs::write(
        &path,
        format!("targets:\n  backend: {{ url: \"{backend}\" }}\n{rest}"),
    )
    .expect("write the scenario");
    path.to_str().expect("UTF-8 path").to_string()
}

/// The arguments of a `scan` of `listener` and its `backend`, then `rest`.
pub fn scan_args<'a>(listener: &'a str, backend: &'a str, rest: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["scan", "--listener", listener, "--backend", backend];
    args.extend_from_slice(rest);
    args
}

/// The causes a JSON report confirms, in its order.
pub fn confirmed_causes(report: &Value) -> Vec<&str> {
    report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["verdict"] == "confirmed")
        .filter_map(|f| f["cause"].as_str())
        .collect()
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
