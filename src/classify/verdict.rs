//! A finding's verdict. Its other words, which side and which kind of cause, are the
//! catalogue's ([`crate::catalogue::Side`], [`crate::catalogue::Kind`]): a cause has them before
//! anything is classified.

use std::fmt;

use serde::{Deserialize, Serialize};

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
