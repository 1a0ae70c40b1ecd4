//! The lab: fault-injecting backends and an nginx harness on loopback, for `demo` and tests.
