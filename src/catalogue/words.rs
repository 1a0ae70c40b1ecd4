//! The words a cause is described in, before anything is classified: which side shows it and
//! whether it is a fault or a trigger. The classifier's findings reuse them.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Where the evidence for a cause lives (see DESIGN.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// `upstream_status` shows the code: the backend said it.
    Upstream,
    /// Only `status` shows it: the listener (or the client) did.
    Listener,
}

/// A fault is present or not; a trigger is a kind of request that produces the code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Fault,
    Trigger,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Upstream => "upstream",
            Side::Listener => "listener",
        })
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Fault => "fault",
            Kind::Trigger => "trigger",
        })
    }
}
