//! The pipeline: plan → probes → classifier → report model, with expectations and exit code.

use std::collections::BTreeSet;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use std::sync::Arc;

use crate::catalogue::Catalogue;
use crate::classify::{self, Context, Finding, Verdict};
use crate::early::{Announce, Watch};
use crate::exit;
use crate::logs::probe_line::{self, AccessLog, StartMark};
use crate::probe::{self, Detail, Family, Interrupt, Plan, ProgressFn};
use crate::report::model::Timing;
use crate::report::{ExpectationResult, LimitExpectationResult, Report, Summary};
use crate::target::{Role, Scheme};
use crate::transport::Sniff;

/// An `expect:` entry of a scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expect {
    /// A cause id (`405.trace-unsupported`), or for a limit the family (`uri-limit`).
    pub cause: String,
    pub expected: Expected,
    /// `file:line:column`, for the report.
    pub location: String,
}

/// What an `expect:` entry asks of the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expected {
    /// This verdict for the cause.
    Verdict(Verdict),
    /// The side's measured largest accepted size of this limit family within these bounds
    /// (bytes, inclusive).
    Limit {
        family: Family,
        at_least: Option<usize>,
        at_most: Option<usize>,
    },
}

#[derive(Debug, Clone)]
pub struct Job {
    pub name: String,
    pub origin: String,
    pub plan: Plan,
    pub expect: Vec<Expect>,
    /// `--only 400,405`: probe and report only causes of these codes.
    pub only_codes: Option<Vec<u16>>,
    /// Notes from before the run (e.g. what the demo skipped).
    pub notes: Vec<String>,
    /// `--access-log`: each marked probe's line, read after the run.
    pub access_log: Option<crate::logs::probe_line::AccessLog>,
}

impl Job {
    /// Whether the listener's URL says TLS; `None` without a listener.
    pub fn listener_tls(&self) -> Option<bool> {
        self.plan
            .listener
            .as_ref()
            .map(|t| t.scheme == Scheme::Https)
    }

    /// A job that runs `plan` and expects nothing of it: no `expect:`, every code, no notes.
    pub fn new(name: impl Into<String>, origin: impl Into<String>, plan: Plan) -> Job {
        Job {
            name: name.into(),
            origin: origin.into(),
            plan,
            expect: Vec::new(),
            only_codes: None,
            notes: Vec::new(),
            access_log: None,
        }
    }
}

/// Probe families that can speak to causes of the given codes, per the catalogue.
pub fn families_for_codes(catalogue: &Catalogue, codes: &[u16]) -> BTreeSet<Family> {
    catalogue
        .causes()
        .iter()
        .filter(|c| codes.contains(&c.code))
        .flat_map(|c| c.probes.iter())
        .filter_map(|p| Family::parse(p))
        .collect()
}

pub async fn execute(job: Job, progress: ProgressFn) -> Report {
    execute_interruptible(job, progress, Interrupt::new()).await
}

/// [`execute`], stopping to issue requests when `interrupt` is triggered (Ctrl-C): the report
/// then covers what ran, is marked partial, and the exit code is never 0 (what did not run
/// was not checked).
pub async fn execute_interruptible(job: Job, progress: ProgressFn, interrupt: Interrupt) -> Report {
    execute_watched(job, progress, interrupt, None).await
}

/// [`execute_interruptible`], telling `announce` of each cause as soon as it is confirmed
/// (see [`crate::early`]); the report is the same with or without it.
pub async fn execute_watched(
    job: Job,
    progress: ProgressFn,
    interrupt: Interrupt,
    announce: Option<Arc<dyn Announce>>,
) -> Report {
    let watch = announce.map(|a| Watch::start(&job, a));
    let progress = match &watch {
        Some(w) => w.progress(progress),
        None => progress,
    };
    let catalogue = Catalogue::builtin();
    let started = Instant::now();
    let started_unix_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let log_start = job.access_log.as_ref().and_then(|log| log.start());
    let mut output = probe::run_interruptible(&job.plan, progress, interrupt.clone()).await;
    let interrupted = interrupt.is_triggered();
    let log_notes = match &job.access_log {
        Some(log) => read_access_log(log, log_start, &mut output.observations).await,
        None => Vec::new(),
    };

    let profile = classify::resolve_profile(&output.observations, &job.plan.profile);
    let ctx = Context {
        profile: &profile,
        listener_tls: job.listener_tls(),
        has_backend: job.plan.backend.is_some(),
    };
    let mut findings = classify::classify(&output.observations, catalogue, &ctx);
    if let Some(codes) = &job.only_codes {
        findings.retain(|f| codes.contains(&f.code));
    }
    if let Some(w) = watch {
        w.finish(&findings);
    }
    let expectations = check_expectations(&job.expect, &findings);
    let limit_role = if job.plan.listener.is_some() {
        Role::Listener
    } else {
        Role::Backend
    };
    let limit_expectations =
        check_limit_expectations(&job.expect, &output.observations, limit_role);
    let covered: BTreeSet<&str> = findings.iter().map(|f| f.cause.as_str()).collect();
    let not_covered = catalogue
        .causes()
        .iter()
        .filter(|c| {
            job.only_codes
                .as_ref()
                .is_none_or(|codes| codes.contains(&c.code))
        })
        .filter(|c| !covered.contains(c.id.as_str()))
        .map(|c| c.id.clone())
        .collect();

    let mut unreachable = Vec::new();
    // A side whose every TLS handshake failed was never probed either: the run is no success
    // (a CI job must not go green on it), unless a cause was confirmed from what the
    // handshakes themselves showed.
    let confirmed_any = findings.iter().any(|f| f.verdict == Verdict::Confirmed);
    for target in job.plan.listener.iter().chain(job.plan.backend.iter()) {
        match never_reached(&output.observations, target.role, target.is_tls()) {
            Some(Unreached::NoConnection(why)) => unreachable.push(format!("{target}: {why}")),
            Some(Unreached::NoHandshake(why)) if !confirmed_any => unreachable.push(format!(
                "{target}: every TLS handshake failed, so no request reached its HTTP layer: {why}"
            )),
            _ => {}
        }
    }

    let mut summary = Summary::of(&findings, &expectations);
    summary.expectations_unmet += limit_expectations.iter().filter(|e| !e.met).count();
    let (exit_code, exit_reason) = exit_status(
        &findings,
        &expectations,
        &summary,
        &RunEnd {
            unreachable: !unreachable.is_empty(),
            interrupted,
            cut_short: output.cut_short.as_deref(),
        },
    );

    let wall = started.elapsed();
    let mut notes = job.notes;
    notes.extend(output.notes);
    notes.extend(log_notes);
    notes.extend(redirect_notes(&output.observations, &job.plan));
    Report {
        schema_version: crate::report::model::SCHEMA_VERSION,
        tool: format!("lbprobe {}", env!("CARGO_PKG_VERSION")),
        scenario: job.name,
        origin: job.origin,
        started_unix_ms,
        hostname: {
            use crate::host::Platform;
            crate::host::platform().hostname().unwrap_or_default()
        },
        duration_ms: wall.as_secs_f64() * 1000.0,
        profile,
        // Header values the scenario marks secret never reach a report.
        targets: job
            .plan
            .listener
            .iter()
            .chain(job.plan.backend.iter())
            .map(|t| crate::transport::mask::masked_target(t, &job.plan.mask))
            .collect(),
        limits: job.plan.limits,
        requests_sent: output.requests_sent,
        partial: output.partial,
        timing: Timing::new(wall.as_secs_f64(), &output.floor),
        notes,
        summary,
        findings,
        expectations,
        limit_expectations,
        not_covered,
        unreachable,
        malformed: classify::malformed_table::table(&output.observations),
        observations: output.observations,
        cut_short: output.cut_short,
        exit_code,
        exit_reason,
    }
}

/// Each marked probe's line in the listener's access log, attached to its observation (read
/// off the async threads: the read polls a file that may still grow). Returns the notes.
async fn read_access_log(
    log: &AccessLog,
    start: Option<StartMark>,
    observations: &mut [probe::Observation],
) -> Vec<String> {
    let markers = probe_line::wanted(observations);
    let reader = log.clone();
    let lookup = tokio::task::spawn_blocking(move || reader.find(start, &markers)).await;
    match lookup {
        Ok(Ok(lookup)) => probe_line::attach(log, &lookup, observations),
        Ok(Err(e)) => vec![format!("--access-log: {e}; no probe's line attached")],
        Err(e) => vec![format!(
            "--access-log: reading {} stopped: {e}",
            log.path.display()
        )],
    }
}

/// Up to six ids, then how many more: the exit reason is one line.
fn first_few(ids: &[&str]) -> String {
    const SHOWN: usize = 6;
    if ids.len() <= SHOWN {
        return ids.join(", ");
    }
    format!(
        "{}, and {} more",
        ids[..SHOWN].join(", "),
        ids.len() - SHOWN
    )
}

/// How the run ended, besides its findings: what decides the exit code with them.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunEnd<'a> {
    /// A target could not be reached at all.
    pub unreachable: bool,
    /// Ctrl-C or SIGTERM stopped the probes.
    pub interrupted: bool,
    /// The run's request or duration cap stopped the probes, in words.
    pub cut_short: Option<&'a str>,
}

/// The exit code and why, in words: the last line of the human report, so confirmed faults
/// are named there, not only counted.
pub fn exit_status(
    findings: &[Finding],
    expectations: &[ExpectationResult],
    summary: &Summary,
    end: &RunEnd<'_>,
) -> (i32, String) {
    if end.unreachable {
        return (
            exit::UNREACHABLE,
            "a target could not be reached at all".to_string(),
        );
    }
    // A fault the scenario expects to be confirmed is an expectation met, not a failure: a CI
    // job that pins a known fault stays green until the fault changes.
    let expected = |cause: &str| {
        expectations
            .iter()
            .any(|e| e.met && e.expected == Verdict::Confirmed && e.cause == cause)
    };
    let confirmed: Vec<&str> = findings
        .iter()
        .filter(|f| f.verdict == Verdict::Confirmed)
        .map(|f| f.cause.as_str())
        .collect();
    let (known, unexpected): (Vec<&str>, Vec<&str>) =
        confirmed.iter().partition(|cause| expected(cause));
    // What a cut-short run did not get to was not decided: never a silent success.
    let undecided: Vec<&str> = findings
        .iter()
        .filter(|f| f.verdict == Verdict::Inconclusive)
        .map(|f| f.cause.as_str())
        .collect();
    if unexpected.is_empty()
        && summary.expectations_unmet == 0
        && !end.interrupted
        && end.cut_short.is_none()
    {
        let reason = if known.is_empty() {
            "no fault confirmed, every expectation met".to_string()
        } else {
            format!(
                "{} confirmed as expected ({}), every expectation met",
                crate::plural::count(known.len(), "fault"),
                known.join(", ")
            )
        };
        return (exit::OK, reason);
    }
    let mut parts = Vec::new();
    if end.interrupted {
        parts.push("interrupted (Ctrl-C or SIGTERM) before the probes finished".to_string());
    }
    if let Some(cap) = end.cut_short {
        parts.push(if undecided.is_empty() {
            format!("cut short: {cap}")
        } else {
            format!(
                "cut short: {cap}, so {} not decided ({})",
                crate::plural::count(undecided.len(), "cause"),
                first_few(&undecided)
            )
        });
    }
    if !unexpected.is_empty() {
        parts.push(format!(
            "{} confirmed ({})",
            crate::plural::count(unexpected.len(), "fault"),
            unexpected.join(", ")
        ));
    }
    if !known.is_empty() {
        parts.push(format!(
            "{} confirmed as expected ({})",
            crate::plural::count(known.len(), "fault"),
            known.join(", ")
        ));
    }
    if summary.expectations_unmet > 0 {
        parts.push(format!(
            "{} unmet",
            crate::plural::count(summary.expectations_unmet, "expectation")
        ));
    }
    (exit::FINDING, parts.join(", "))
}

fn check_expectations(expect: &[Expect], findings: &[Finding]) -> Vec<ExpectationResult> {
    expect
        .iter()
        .filter_map(|e| {
            let Expected::Verdict(verdict) = e.expected else {
                return None;
            };
            let actual = findings
                .iter()
                .find(|f| f.cause == e.cause)
                .map(|f| f.verdict);
            Some(ExpectationResult {
                cause: e.cause.clone(),
                expected: verdict,
                actual,
                met: actual == Some(verdict),
                location: e.location.clone(),
            })
        })
        .collect()
}

/// Compare each limit expectation with what that family's search measured on `role`.
pub fn check_limit_expectations(
    expect: &[Expect],
    observations: &[probe::Observation],
    role: Role,
) -> Vec<LimitExpectationResult> {
    expect
        .iter()
        .filter_map(|e| match e.expected {
            Expected::Limit {
                family,
                at_least,
                at_most,
            } => {
                let search = observations.iter().find_map(|o| match &o.detail {
                    Detail::Limit(s) if o.family == family && o.role == role => Some(s),
                    _ => None,
                });
                let (met, why) = judge_limit(family, role, at_least, at_most, search);
                Some(LimitExpectationResult {
                    limit: family,
                    role,
                    at_least,
                    at_most,
                    largest_accepted: search.and_then(|s| s.largest_accepted),
                    smallest_rejected: search.and_then(|s| s.smallest_rejected),
                    met,
                    why,
                    location: e.location.clone(),
                })
            }
            Expected::Verdict(_) => None,
        })
        .collect()
}

/// Met only when the measurement proves it: `at-least N` needs a size of N or more accepted,
/// `at-most N` needs a size of at most N + 1 refused (the limit lies below it).
fn judge_limit(
    family: Family,
    role: Role,
    at_least: Option<usize>,
    at_most: Option<usize>,
    search: Option<&probe::LimitSearch>,
) -> (bool, String) {
    let Some(s) = search else {
        return (
            false,
            format!("the {role}'s {family} was not measured (is `{family}` among the scenario's probes, and was the {role} reached?)"),
        );
    };
    if s.refuses_everything {
        return (
            false,
            format!(
                "the {role} refused even the smallest {family} request, so no limit was measured"
            ),
        );
    }
    let measured = match (s.largest_accepted, s.smallest_rejected) {
        (Some(a), Some(r)) if s.exact => format!("the {role} accepts {a} bytes and refuses {r}"),
        (Some(a), Some(r)) => {
            format!("the {role} accepts {a} bytes and refuses {r} (the limit lies between)")
        }
        (Some(a), None) => format!("the {role} accepted every size tried, up to {a} bytes"),
        (None, Some(r)) => format!("the {role} refuses {r} bytes, the smallest size tried"),
        (None, None) => format!("the {role}'s {family} search measured nothing"),
    };
    let mut unmet = Vec::new();
    if let Some(min) = at_least {
        match s.largest_accepted {
            Some(a) if a >= min => {}
            Some(a) if s.smallest_rejected.is_none() => unmet.push(format!(
                "at-least {min} is not shown: nothing above {a} bytes was tried (raise the probe's `max`)"
            )),
            _ => unmet.push(format!("below at-least {min}")),
        }
    }
    if let Some(max) = at_most {
        match s.smallest_rejected {
            Some(r) if r <= max.saturating_add(1) => {}
            Some(_) => unmet.push(format!("above at-most {max}")),
            None => unmet.push(format!(
                "at-most {max} is not shown: nothing up to the search's largest size was refused"
            )),
        }
    }
    if unmet.is_empty() {
        (true, format!("{family}: {measured}"))
    } else {
        (false, format!("{family}: {measured}: {}", unmet.join("; ")))
    }
}

/// At most this many off-target redirects are named one by one; the rest are counted.
const REDIRECTS_NAMED: usize = 5;

/// A note for every 3xx answer whose `Location` leaves the target: lbprobe records the answer
/// and never follows it, and the person should know the side sends clients elsewhere.
pub fn redirect_notes(observations: &[probe::Observation], plan: &Plan) -> Vec<String> {
    let mut seen: Vec<(Role, u16, String, Vec<String>)> = Vec::new();
    for o in observations {
        let Some(resp) = o.exchange.as_ref().and_then(|e| e.response.as_ref()) else {
            continue;
        };
        if !(300..400).contains(&resp.status) {
            continue;
        }
        let Some((_, location)) = resp
            .headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("location"))
        else {
            continue;
        };
        let target = match o.role {
            Role::Listener => plan.listener.as_ref(),
            Role::Backend => plan.backend.as_ref(),
        };
        let Some(target) = target else { continue };
        if !leaves_target(location, &target.host, target.port) {
            continue;
        }
        match seen
            .iter_mut()
            .find(|(r, s, l, _)| *r == o.role && *s == resp.status && l == location)
        {
            Some((_, _, _, ids)) => ids.push(o.id.clone()),
            None => seen.push((o.role, resp.status, location.clone(), vec![o.id.clone()])),
        }
    }
    let mut notes: Vec<String> = seen
        .iter()
        .take(REDIRECTS_NAMED)
        .map(|(role, status, location, ids)| {
            format!(
                "the {role} answered {status} with Location {location:?}, off the target [{}]: recorded, not followed (lbprobe never follows a redirect)",
                ids.join(" ")
            )
        })
        .collect();
    if seen.len() > REDIRECTS_NAMED {
        notes.push(format!(
            "{} more redirects off the target were recorded and not followed (the JSON report's observations hold them)",
            seen.len() - REDIRECTS_NAMED
        ));
    }
    notes
}

/// Whether a `Location` value points at another host or port than the target's. A relative
/// reference stays on the target; a value that does not parse is treated as leaving it.
fn leaves_target(location: &str, host: &str, port: u16) -> bool {
    let location = location.trim();
    let absolute = if location.starts_with("//") {
        format!("http:{location}")
    } else {
        location.to_string()
    };
    match url::Url::parse(&absolute) {
        Ok(url) => {
            let same_host = url.host_str().is_some_and(|h| {
                h.trim_start_matches('[')
                    .trim_end_matches(']')
                    .eq_ignore_ascii_case(host)
            });
            // `//host/path` keeps the request's scheme: only the host can be compared.
            let same_port = location.starts_with("//") && url.port().is_none()
                || url.port_or_known_default() == Some(port);
            !(same_host && same_port)
        }
        Err(url::ParseError::RelativeUrlWithoutBase) => false,
        Err(_) => true,
    }
}

/// `Some(why)` when every attempt to reach this side failed before a TCP connection existed.
/// How a side was never reached.
enum Unreached {
    /// No TCP connection, ever.
    NoConnection(String),
    /// Connections, but every TLS handshake on them failed.
    NoHandshake(String),
}

/// `tls`: the side speaks TLS, so a plain-HTTP probe's answer (the protocol family's check of
/// plain HTTP to its port) reached the port but not the service the run is about.
fn never_reached(observations: &[probe::Observation], role: Role, tls: bool) -> Option<Unreached> {
    let mut no_connection = None;
    let mut no_handshake = None;
    // A sniff that found the port open reached it, though it sent no request.
    let mut connected = false;
    for o in observations.iter().filter(|o| o.role == role) {
        if let Detail::Sniff { sniff } = &o.detail {
            match sniff {
                Sniff::Unreachable { end } => no_connection = Some(end.to_string()),
                _ => connected = true,
            }
        }
        if let Some(ex) = &o.exchange {
            if ex.end.never_connected() {
                no_connection = Some(classify::describe(Some(ex)));
            } else if ex.tls && ex.end.request_never_arrived() {
                no_handshake = Some(classify::describe(Some(ex)));
            } else if tls && !ex.tls {
                connected = true;
            } else {
                return None;
            }
        }
    }
    // One handshake that failed means the port answered: say what it did.
    match (no_handshake, no_connection) {
        (Some(why), _) => Some(Unreached::NoHandshake(why)),
        (None, Some(why)) if !connected => Some(Unreached::NoConnection(why)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::leaves_target;

    #[test]
    fn redirects_off_the_target_are_told_from_those_on_it() {
        let table = [
            ("/login", false),
            ("login?next=/", false),
            ("https://lb.example:8443/x", false),
            ("HTTPS://LB.EXAMPLE:8443/", false),
            ("https://lb.example/x", true),
            ("https://other.example:8443/", true),
            ("//lb.example/x", false),
            ("//other.example/x", true),
            ("http://[::1]:8443/", true),
            ("http://exa mple/", true),
        ];
        for (location, leaves) in table {
            assert_eq!(
                leaves_target(location, "lb.example", 8443),
                leaves,
                "{location}"
            );
        }
        assert!(!leaves_target("http://[::1]:8443/", "::1", 8443));
    }
}
