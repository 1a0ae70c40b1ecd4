//! `lbprobe backend`: read the host facts and counters, run the local checks against the service
//! on loopback with the probe engine, read the counters again, and classify the deltas.

use std::net::IpAddr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::catalogue::Catalogue;
use crate::classify::{host::host_findings, Finding, Verdict};
use crate::exit;
use crate::probe::{Limits, Plan, ProbeSpec, ProgressFn};
use crate::profile::Profile;
use crate::report::{Report, Summary};
use crate::run::{self, Job};
use crate::target::{Role, Target};

use super::capture::CaptureResult;
use super::{read_facts, Cidr, HostFacts, HostReport, Platform};

/// Validated settings of `lbprobe backend`.
#[derive(Debug, Clone)]
pub struct BackendConfig {
    pub port: u16,
    /// The listener's (or a client's) address: the route and its MTU towards it are reported.
    pub client: Option<IpAddr>,
    /// The load balancer's health-check source ranges: a firewall rule dropping them is flagged.
    pub health_check_ranges: Vec<Cidr>,
    /// The service as the local checks reach it; None: no local checks.
    pub url: Option<Target>,
    pub limits: Limits,
}

impl BackendConfig {
    /// Local checks against `http://127.0.0.1:PORT/`.
    pub fn new(port: u16) -> BackendConfig {
        BackendConfig {
            port,
            client: None,
            health_check_ranges: Vec::new(),
            url: Target::parse(Role::Backend, &format!("http://127.0.0.1:{port}/")).ok(),
            limits: Limits::default(),
        }
    }
}

/// The whole output of `lbprobe backend`.
#[derive(Debug, Clone, Serialize)]
pub struct BackendReport {
    pub schema_version: u32,
    pub tool: String,
    pub started_unix_ms: u128,
    pub duration_ms: f64,
    pub host: HostReport,
    /// Findings from the host's own facts.
    pub findings: Vec<Finding>,
    /// The local checks against the service (protocol, methods, header and URI limits).
    pub checks: Option<Report>,
    /// What a capture on the service port saw (`--capture`): which probes' markers arrived.
    pub capture: Option<CaptureResult>,
    /// Host findings and the checks' findings together.
    pub summary: Summary,
    pub exit_code: i32,
    pub exit_reason: String,
}

/// The probe families the local checks run: what the backend's own limits are, without the LB.
pub fn local_checks() -> Vec<ProbeSpec> {
    use crate::probe::Family;
    [
        Family::Protocol,
        Family::Methods,
        Family::HeaderSize,
        Family::UriLimit,
    ]
    .into_iter()
    .map(ProbeSpec::default_for)
    .collect()
}

/// `--capture`: watch the service port instead of running the local checks.
pub struct CaptureSettings {
    pub duration: Duration,
    /// Set to end the capture early (Ctrl-C).
    pub stop: Arc<AtomicBool>,
    /// Called once the capture socket is open.
    pub ready: Box<dyn Fn() + Send + Sync>,
}

/// Run `lbprobe backend` on this host.
pub async fn run(
    config: BackendConfig,
    capture: Option<CaptureSettings>,
    progress: ProgressFn,
) -> BackendReport {
    run_on(&super::platform(), config, capture, progress).await
}

pub async fn run_on(
    platform: &impl Platform,
    config: BackendConfig,
    capture: Option<CaptureSettings>,
    progress: ProgressFn,
) -> BackendReport {
    let started = Instant::now();
    let started_unix_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let mut facts = read_facts(platform, config.port, config.client);
    let before = keep(&mut facts, platform.counters());

    let mut captured = None;
    let checks = match (&config.url, capture) {
        (_, Some(c)) => {
            // Blocking reads on a packet socket, bounded by the duration and the stop flag.
            let result = tokio::task::block_in_place(|| {
                platform.capture(config.port, c.duration, &c.stop, &*c.ready)
            });
            captured = keep(&mut facts, result);
            None
        }
        (Some(target), None) => {
            let plan = Plan::new(None, Some(target.clone()))
                .with_profile(Profile::clb())
                .with_probes(local_checks())
                .with_limits(config.limits);
            let job = Job::new(
                format!("backend host, port {}", config.port),
                "backend",
                plan,
            );
            Some(run::execute(job, progress).await)
        }
        (None, None) => None,
    };

    let after = keep(&mut facts, platform.counters());
    let listening_after = platform.listening(config.port).ok().map(|(s, _)| s);
    let mut host = HostReport::new(config.port, facts, before, after, listening_after);
    host.client = config.client;
    host.health_check_ranges = config.health_check_ranges;

    let findings = host_findings(&host, Catalogue::builtin());
    let all: Vec<Finding> = findings
        .iter()
        .chain(checks.iter().flat_map(|c| c.findings.iter()))
        .cloned()
        .collect();
    let summary = Summary::of(&all, &[]);
    let confirmed: Vec<&str> = all
        .iter()
        .filter(|f| f.verdict == Verdict::Confirmed)
        .map(|f| f.cause.as_str())
        .collect();
    let (exit_code, exit_reason) = if !confirmed.is_empty() {
        (
            exit::FINDING,
            format!(
                "{} confirmed ({})",
                crate::plural::count(confirmed.len(), "fault"),
                confirmed.join(", ")
            ),
        )
    } else if let Some(c) = checks.as_ref().filter(|c| c.exit_code != exit::OK) {
        (c.exit_code, c.exit_reason.clone())
    } else {
        (exit::OK, "no fault confirmed".to_string())
    };
    BackendReport {
        schema_version: crate::report::schema::Kind::Backend.version(),
        tool: format!("lbprobe {}", env!("CARGO_PKG_VERSION")),
        started_unix_ms,
        duration_ms: started.elapsed().as_secs_f64() * 1000.0,
        host,
        findings,
        checks,
        capture: captured,
        summary,
        exit_code,
        exit_reason,
    }
}

fn keep<T>(facts: &mut HostFacts, r: Result<T, super::Unsupported>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(u) => {
            if !facts.unsupported.contains(&u) {
                facts.unsupported.push(u);
            }
            None
        }
    }
}
