//! Exit codes, in one place (documented in the README).

/// Ran; every confirmed fault is one the scenario expects, and every `expect` met.
pub const OK: i32 = 0;
/// A fault confirmed that no `expect` names, an `expect` unmet, or a run interrupted or cut
/// short by its own caps.
pub const FINDING: i32 = 1;
/// Bad input: scenario file, flags.
pub const BAD_INPUT: i32 = 2;
/// A target could not be reached at all.
pub const UNREACHABLE: i32 = 3;
/// lbprobe could not do its own part: the lab did not start, the report could not be written,
/// the async runtime did not start. Not the input's fault, so not [`BAD_INPUT`].
pub const CANNOT_RUN: i32 = 4;
/// A second Ctrl-C: quit at once, without a report (128 + SIGINT, as shells report it).
pub const INTERRUPTED: i32 = 130;
