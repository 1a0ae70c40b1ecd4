//! The scenario loader on arbitrary text: every input loads or gives an error with a position
//! inside the text, and an error never echoes a planted secret.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lbprobe::scenario::{load_str, LoadContext, ScenarioError};

fn vars(name: &str) -> Option<String> {
    (name == "TOKEN").then(|| "fuzz-secret-token".to_string())
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let ctx = LoadContext {
        vars: &vars,
        known_cause: &|id| id.starts_with("502."),
        known_variant: &|v| v == "lowercase-method",
    };
    if let Err(ScenarioError::Invalid(d)) = load_str(text, "fuzz.yaml", &ctx) {
        let lines = text.split('\n').count().max(1);
        assert!(d.line >= 1 && d.line <= lines, "line {} of {lines}", d.line);
        assert!(d.column >= 1);
        // A variable's value is never in an error: excerpts show the line as written (which
        // holds the value only where the text itself spells it out).
        if !text.contains("fuzz-secret-token") {
            assert!(!d.to_string().contains("fuzz-secret-token"));
        }
    }
});
