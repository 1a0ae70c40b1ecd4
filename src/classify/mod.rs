//! Observations + catalogue -> findings.

pub mod verdict;

pub use verdict::{Kind, Side, Verdict};
