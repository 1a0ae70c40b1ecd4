//! Exit codes, in one place (documented in the README).

/// Ran; no fault confirmed and every `expect` met.
pub const OK: i32 = 0;
/// A fault confirmed, or an `expect` unmet.
pub const FINDING: i32 = 1;
/// Bad input: scenario file, flags.
pub const BAD_INPUT: i32 = 2;
/// A target could not be reached at all.
pub const UNREACHABLE: i32 = 3;
/// A second Ctrl-C: quit at once, without a report (128 + SIGINT, as shells report it).
pub const INTERRUPTED: i32 = 130;
