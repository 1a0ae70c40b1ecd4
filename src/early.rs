//! Causes confirmed while the probes still run, so a person at a terminal sees the first fault
//! in seconds rather than at the end. Each finished family's observations are classified with
//! everything seen so far, on a thread of its own (never on the engine's task, whose timings a
//! pause would skew), and a confirmed cause is told once every planned family that can speak to
//! it has finished. The report at the end stays the authority: a cause told early that the
//! whole run does not confirm is withdrawn, in words.

use std::collections::BTreeSet;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::catalogue::Catalogue;
use crate::classify::{self, Context, Finding, Verdict};
use crate::probe::{Family, Observation, Progress, ProgressFn};
use crate::profile::Profile;
use crate::run::Job;

/// Who hears of causes as they are decided (the progress display).
pub trait Announce: Send + Sync {
    /// `finding` is confirmed by what has been observed so far, and every family that can
    /// speak to its cause has finished.
    fn confirmed(&self, finding: &Finding);
    /// `cause` was told as confirmed, but the whole run gives it `verdict` (none: no finding).
    fn withdrawn(&self, cause: &str, verdict: Option<Verdict>);
}

enum Message {
    Observed(Vec<Observation>),
    FamilyDone(Family),
    Stop,
}

/// A watcher over one run; see the module's comment.
pub struct Watch {
    sender: mpsc::Sender<Message>,
    thread: Option<JoinHandle<BTreeSet<String>>>,
    announce: Arc<dyn Announce>,
}

/// The watcher's decisions, without its thread: what it needs of the job to classify as the
/// run will, what it has seen, and what it has told.
pub struct EarlyVerdicts {
    profile: Profile,
    listener_tls: Option<bool>,
    has_backend: bool,
    only_codes: Option<Vec<u16>>,
    planned: BTreeSet<Family>,
    seen: Vec<Observation>,
    done: BTreeSet<Family>,
    told: BTreeSet<String>,
}

impl EarlyVerdicts {
    pub fn new(job: &Job) -> EarlyVerdicts {
        EarlyVerdicts {
            profile: job.plan.profile.clone(),
            listener_tls: job.listener_tls(),
            has_backend: job.plan.backend.is_some(),
            only_codes: job.only_codes.clone(),
            planned: job.plan.probes.iter().map(|p| p.family()).collect(),
            seen: Vec::new(),
            done: BTreeSet::new(),
            told: BTreeSet::new(),
        }
    }

    /// Every planned family that can speak to `cause` has finished (and at least one can: a
    /// cause none of the planned families speaks to waits for the end of the run).
    fn settled(&self, catalogue: &Catalogue, cause: &str) -> bool {
        let Some(c) = catalogue.get(cause) else {
            return false;
        };
        let mut speaking = c
            .probes
            .iter()
            .filter_map(|p| Family::parse(p))
            .filter(|f| self.planned.contains(f))
            .peekable();
        speaking.peek().is_some() && speaking.all(|f| self.done.contains(&f))
    }

    /// Observations of a stage of the run (see [`Progress::Observed`]).
    pub fn observed(&mut self, observations: Vec<Observation>) {
        self.seen.extend(observations);
    }

    /// `family` has finished: the causes to tell now, i.e. confirmed by everything seen so far,
    /// not told before, and with every planned family that speaks to them finished.
    pub fn finished(&mut self, family: Family) -> Vec<Finding> {
        self.done.insert(family);
        self.decide()
    }

    /// The causes told so far.
    pub fn told(&self) -> &BTreeSet<String> {
        &self.told
    }

    fn decide(&mut self) -> Vec<Finding> {
        let catalogue = Catalogue::builtin();
        let profile = classify::resolve_profile(&self.seen, &self.profile);
        let ctx = Context {
            profile: &profile,
            listener_tls: self.listener_tls,
            has_backend: self.has_backend,
        };
        let findings = classify::classify(&self.seen, catalogue, &ctx);
        let mut new = Vec::new();
        for f in findings {
            let wanted = self
                .only_codes
                .as_ref()
                .is_none_or(|codes| codes.contains(&f.code));
            if f.verdict == Verdict::Confirmed
                && wanted
                && !self.told.contains(&f.cause)
                && self.settled(catalogue, &f.cause)
            {
                self.told.insert(f.cause.clone());
                new.push(f);
            }
        }
        new
    }
}

impl Watch {
    /// Start watching a run of `job`; `announce` hears of each cause as it is confirmed.
    pub fn start(job: &Job, announce: Arc<dyn Announce>) -> Watch {
        let (sender, receiver) = mpsc::channel();
        let mut verdicts = EarlyVerdicts::new(job);
        let teller = announce.clone();
        let thread = std::thread::Builder::new()
            .name("lbprobe-early-verdicts".into())
            .spawn(move || {
                while let Ok(message) = receiver.recv() {
                    match message {
                        Message::Observed(observations) => verdicts.observed(observations),
                        Message::FamilyDone(family) => {
                            for f in verdicts.finished(family) {
                                teller.confirmed(&f);
                            }
                        }
                        Message::Stop => break,
                    }
                }
                verdicts.told
            })
            .ok();
        Watch {
            sender,
            thread,
            announce,
        }
    }

    /// A progress callback that hands `inner` every event and the watcher what it needs.
    pub fn progress(&self, inner: ProgressFn) -> ProgressFn {
        let sender = self.sender.clone();
        Arc::new(move |event| {
            // A send fails only once the watcher is gone; the run goes on without it.
            match &event {
                Progress::Observed { observations } => {
                    let _ = sender.send(Message::Observed(observations.clone()));
                }
                Progress::FamilyDone { family } => {
                    let _ = sender.send(Message::FamilyDone(*family));
                }
                _ => {}
            }
            inner(event)
        })
    }

    /// After the run: wait for the watcher to tell what it has, then withdraw every cause it
    /// told that the whole run (`findings`, the report's) does not confirm.
    pub fn finish(mut self, findings: &[Finding]) {
        let _ = self.sender.send(Message::Stop);
        let told = self
            .thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default();
        for cause in told {
            let now = findings
                .iter()
                .find(|f| f.cause == cause)
                .map(|f| f.verdict);
            if now != Some(Verdict::Confirmed) {
                self.announce.withdrawn(&cause, now);
            }
        }
    }
}
