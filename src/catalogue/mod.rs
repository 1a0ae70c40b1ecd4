//! The documented causes of error codes, as data.
