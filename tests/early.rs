//! Causes told while the run goes on (what the progress display prints above its bar): a cause
//! is told once it is confirmed and every planned family that speaks to it has finished, never
//! before; one the whole run does not confirm is withdrawn; and on the demo (a real nginx in
//! front of the lab backend) the first fault is told before the run ends, the causes told are
//! exactly the ones the report confirms, and the report is the same as without the watcher.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lbprobe::classify::{Finding, Verdict};
use lbprobe::early::{Announce, EarlyVerdicts, Watch};
use lbprobe::probe::{Family, Interrupt, Plan, ProbeSpec, Progress};
use lbprobe::profile::Profile;
use lbprobe::run::Job;
use lbprobe::target::{Role, Target};

use support::*;

/// What an announcer heard, in order.
struct Heard {
    started: Instant,
    /// Causes told as confirmed, with when.
    told: Mutex<Vec<(String, Duration)>>,
    /// Causes withdrawn, with the verdict the whole run gave them.
    withdrawn: Mutex<Vec<(String, Option<Verdict>)>>,
}

impl Heard {
    fn new() -> Arc<Heard> {
        Arc::new(Heard {
            started: Instant::now(),
            told: Mutex::new(Vec::new()),
            withdrawn: Mutex::new(Vec::new()),
        })
    }

    fn confirmed(&self) -> Vec<String> {
        let told = self.told.lock().expect("lock");
        told.iter().map(|(c, _)| c.clone()).collect()
    }

    fn withdrawn(&self) -> Vec<(String, Option<Verdict>)> {
        self.withdrawn.lock().expect("lock").clone()
    }

    fn first_at(&self) -> Option<Duration> {
        self.told.lock().expect("lock").first().map(|(_, at)| *at)
    }
}

impl Announce for Heard {
    fn confirmed(&self, finding: &Finding) {
        let at = self.started.elapsed();
        let mut told = self.told.lock().expect("lock");
        told.push((finding.cause.clone(), at));
    }

    fn withdrawn(&self, cause: &str, verdict: Option<Verdict>) {
        let mut withdrawn = self.withdrawn.lock().expect("lock");
        withdrawn.push((cause.to_string(), verdict));
    }
}

fn job(probes: Vec<ProbeSpec>) -> Job {
    let mut listener = Target::parse(Role::Listener, "https://127.0.0.1:8443/").expect("url");
    listener.tls_verify = false;
    Job::new(
        "early",
        "tests/early.rs",
        Plan::new(
            Some(listener),
            Some(Target::parse(Role::Backend, "http://127.0.0.1:9090/").expect("url")),
        )
        .with_profile(Profile::clb())
        .with_probes(probes),
    )
}

/// The header-size story of the report snapshots: nginx refuses header lines above 8190 bytes,
/// below the 32768 the clb profile documents.
fn header_story() -> (
    Vec<lbprobe::probe::Observation>,
    Vec<lbprobe::probe::Observation>,
) {
    let all = numbered(vec![
        sniff_tls(LISTENER),
        sniff_plain(BACKEND),
        baseline(LISTENER, 200, "OK"),
        baseline(BACKEND, 200, "OK"),
        nginx_refused_header(LISTENER, 8191),
        limit(LISTENER, Some(8190), Some(8191), Some(400)),
    ]);
    let (first, families) = all.split_at(4);
    (first.to_vec(), families.to_vec())
}

#[test]
fn a_cause_is_told_once_every_family_that_speaks_to_it_has_finished() {
    let mut early = EarlyVerdicts::new(&job(vec![
        ProbeSpec::Protocol,
        ProbeSpec::default_for(Family::HeaderSize),
        ProbeSpec::default_for(Family::HeaderLimit),
    ]));
    let (baseline, header) = header_story();
    early.observed(baseline);
    assert!(early.finished(Family::Protocol).is_empty());
    early.observed(header);
    // header-limit speaks to 400.header-too-large too and has not finished: not yet.
    assert!(early.finished(Family::HeaderSize).is_empty());
    let told: Vec<String> = early
        .finished(Family::HeaderLimit)
        .into_iter()
        .map(|f| f.cause)
        .collect();
    assert_eq!(told, ["400.header-too-large"]);
    // Told once.
    assert!(early.finished(Family::Methods).is_empty());
}

/// `--only 405`: a confirmed 400 is never told, as the report would not show it.
#[test]
fn only_the_codes_asked_for_are_told() {
    let mut job = job(vec![
        ProbeSpec::Protocol,
        ProbeSpec::default_for(Family::HeaderSize),
    ]);
    job.only_codes = Some(vec![405]);
    let mut early = EarlyVerdicts::new(&job);
    let (baseline, header) = header_story();
    early.observed(baseline);
    early.observed(header);
    assert!(early.finished(Family::HeaderSize).is_empty());
}

#[test]
fn a_cause_the_whole_run_does_not_confirm_is_withdrawn() {
    let heard = Heard::new();
    let job = job(vec![
        ProbeSpec::Protocol,
        ProbeSpec::default_for(Family::HeaderSize),
    ]);
    let watch = Watch::start(&job, heard.clone());
    let progress = watch.progress(Arc::new(|_| {}));
    let (baseline, header) = header_story();
    progress(Progress::Observed {
        observations: baseline,
    });
    progress(Progress::Observed {
        observations: header,
    });
    progress(Progress::FamilyDone {
        family: Family::HeaderSize,
    });
    // The report (here: none of its findings) is the authority.
    watch.finish(&[]);
    assert_eq!(heard.confirmed(), ["400.header-too-large"]);
    assert_eq!(
        heard.withdrawn(),
        [("400.header-too-large".to_string(), None)]
    );
}

#[test]
fn nothing_is_told_for_a_healthy_listener() {
    let mut early = EarlyVerdicts::new(&job(vec![
        ProbeSpec::Protocol,
        ProbeSpec::default_for(Family::HeaderSize),
    ]));
    early.observed(numbered(vec![
        sniff_tls(LISTENER),
        sniff_plain(BACKEND),
        baseline(LISTENER, 200, "OK"),
        baseline(BACKEND, 200, "OK"),
        limit(LISTENER, Some(65536), None, None),
    ]));
    assert!(early.finished(Family::Protocol).is_empty());
    assert!(early.finished(Family::HeaderSize).is_empty());
    assert!(early.told().is_empty());
}

/// The demo, watched: nginx's header limit below clb's and the backend's URI limit below the
/// listener's are told before the run ends, and the causes told are the report's confirmed.
#[tokio::test(flavor = "multi_thread")]
async fn the_demos_faults_are_told_before_its_report() {
    let heard = Heard::new();
    let announce: Arc<dyn Announce> = heard.clone();
    let started = Instant::now();
    let report = lbprobe::demo::run(Arc::new(|_| {}), Some(announce), Interrupt::new())
        .await
        .unwrap_or_else(|e| panic!("the demo needs nginx: {e}"));
    let ended = started.elapsed();
    let confirmed: Vec<String> = report
        .findings
        .iter()
        .filter(|f| f.verdict == Verdict::Confirmed)
        .map(|f| f.cause.clone())
        .collect();
    let mut told = heard.confirmed();
    told.sort();
    let mut want = confirmed.clone();
    want.sort();
    assert_eq!(told, want, "told early vs the report's confirmed causes");
    assert!(heard.withdrawn().is_empty(), "{:?}", heard.withdrawn());
    let first = heard.first_at().expect("a cause told");
    assert!(
        first < ended,
        "the first cause was told at {first:?}, the run ended at {ended:?}"
    );
    eprintln!(
        "first cause told after {:.2} s; the report came after {:.2} s",
        first.as_secs_f64(),
        ended.as_secs_f64()
    );
}
