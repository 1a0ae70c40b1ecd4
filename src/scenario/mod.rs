//! Scenario files: YAML model, loading, validation with file:line:column errors.
//!
//! A scenario names the targets (listener, backend), the profile whose documented limits the
//! measurements are compared with, the probes to run, the safety limits of the run, the
//! verdicts the person expects, and extra headers to mask. The format is described in
//! docs/scenario.md. Loading has no network in it.

mod error;
mod load;
mod model;
mod raw;
mod units;
mod vars;

pub use error::{line_column, mask_secrets, write_at, Diagnostic, Problem, ScenarioError};
pub use load::{
    load_file, load_file_as, load_module_str, load_str, load_str_as, read_bounded, read_file,
    BoundedRead, Ownership, MODULE_BACKEND, MODULE_TARGET,
};
pub use model::{Expectation, LimitExpectation, LoadContext, Scenario, ALWAYS_MASKED};
pub use units::{parse_duration, parse_size};
