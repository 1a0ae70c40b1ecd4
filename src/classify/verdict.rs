//! The words findings are made of: which side, which kind of cause, which verdict.

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Confirmed,
    Reproduced,
    Inconclusive,
    RuledOut,
}

impl Verdict {
    pub const ALL: [Verdict; 4] = [
        Verdict::Confirmed,
        Verdict::Reproduced,
        Verdict::RuledOut,
        Verdict::Inconclusive,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Confirmed => "confirmed",
            Verdict::Reproduced => "reproduced",
            Verdict::RuledOut => "ruled_out",
            Verdict::Inconclusive => "inconclusive",
        }
    }

    pub fn parse(text: &str) -> Option<Verdict> {
        Verdict::ALL.into_iter().find(|v| v.as_str() == text)
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
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
