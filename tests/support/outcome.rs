//! A probe run classified directly (no report, no expectations): its observations, and its
//! findings by cause, with the reason and evidence of one at hand for assertion messages.

use std::collections::BTreeMap;

use lbprobe::catalogue::Catalogue;
use lbprobe::classify::{self, Context, Finding, Verdict};
use lbprobe::probe::{Observation, Plan, RunOutput};

pub struct Outcome {
    pub observations: Vec<Observation>,
    pub findings: BTreeMap<String, Finding>,
}

impl Outcome {
    /// Classify what `plan` observed, with a plain-HTTP listener.
    pub fn of(plan: &Plan, out: RunOutput) -> Outcome {
        let ctx = Context {
            profile: &plan.profile,
            listener_tls: Some(false),
            has_backend: plan.backend.is_some(),
        };
        let findings = classify::classify(&out.observations, Catalogue::builtin(), &ctx)
            .into_iter()
            .map(|f| (f.cause.clone(), f))
            .collect();
        Outcome {
            observations: out.observations,
            findings,
        }
    }

    pub fn verdict(&self, id: &str) -> Option<Verdict> {
        self.findings.get(id).map(|f| f.verdict)
    }

    /// The reason and every evidence line of a finding, for assertions and failure messages.
    pub fn text(&self, id: &str) -> String {
        let Some(f) = self.findings.get(id) else {
            return format!("(no finding for {id})");
        };
        let mut all = format!("{}: {}", f.verdict, f.reason);
        for e in &f.evidence {
            all.push_str("\n  - ");
            all.push_str(&e.text);
        }
        all
    }

    /// The finding on `id` says `words`, in its reason or an evidence line.
    pub fn assert_says(&self, id: &str, words: &str) {
        let text = self.text(id);
        assert!(text.contains(words), "{id} does not say {words:?}:\n{text}");
    }

    pub fn assert(&self, id: &str, want: Verdict) {
        assert_eq!(self.verdict(id), Some(want), "{id}\n{}", self.text(id));
    }
}
