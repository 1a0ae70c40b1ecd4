//! The documented causes of error codes, as data. (Placeholder until the catalogue lands.)

use crate::classify::{Kind, Side};

#[derive(Debug, Clone, serde::Serialize)]
pub struct Cause {
    pub id: String,
    pub code: u16,
    pub side: Side,
    pub kind: Kind,
    pub title: String,
    pub summary: String,
    pub confirms: Vec<String>,
    pub rules_out: Vec<String>,
    pub remediation: Vec<String>,
    pub probes: Vec<String>,
    pub log_signals: String,
    pub extension: bool,
}

pub struct Catalogue {
    causes: Vec<Cause>,
}

impl Catalogue {
    pub fn builtin() -> &'static Catalogue {
        static C: std::sync::OnceLock<Catalogue> = std::sync::OnceLock::new();
        C.get_or_init(|| Catalogue { causes: Vec::new() })
    }
    pub fn get(&self, id: &str) -> Option<&Cause> {
        self.causes.iter().find(|c| c.id == id)
    }
    pub fn causes(&self) -> &[Cause] {
        &self.causes
    }
}
