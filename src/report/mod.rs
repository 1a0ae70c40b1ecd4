//! Reports: the only place that writes to stdout.

pub mod catalogue;
