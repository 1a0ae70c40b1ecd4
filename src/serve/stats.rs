//! The serve mode's own counters, for its `/metrics`: probes run and refused, in flight, their
//! durations, and how the last reload of the config went (report::prometheus renders them).

use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

fn duration_histogram() -> Histogram {
    // 0.05 s to about 100 s: a gentle module takes seconds, a cut-short one its timeout.
    Histogram::new(exponential_buckets(0.05, 2.0, 12))
}

#[derive(Debug)]
pub struct Stats {
    pub registry: Registry,
    probes: Family<Labels, Counter>,
    refused: Family<Labels, Counter>,
    in_flight: Gauge,
    durations: Family<Labels, Histogram, fn() -> Histogram>,
    reloads: Family<Labels, Counter>,
    last_reload_ok: Gauge,
    last_reload_success: Gauge<f64, AtomicU64>,
    last_reload_error: Family<Labels, Gauge>,
    modules: Gauge,
}

/// How a probe that ran ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Exit code 0.
    Success,
    /// A fault, an unmet expectation, a target unreachable.
    Failure,
    /// Stopped by the scrape's timeout or the module's caps before its probes finished.
    CutShort,
}

impl Ended {
    fn as_str(self) -> &'static str {
        match self {
            Ended::Success => "success",
            Ended::Failure => "failure",
            Ended::CutShort => "cut-short",
        }
    }
}

/// Why a probe was not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A target off the allow-list (403).
    NotAllowed,
    /// Its target already probed, or every slot taken (429).
    Busy,
    /// No such module, no target, a target that does not parse (400).
    BadRequest,
}

impl Refusal {
    fn as_str(self) -> &'static str {
        match self {
            Refusal::NotAllowed => "not-allowed",
            Refusal::Busy => "busy",
            Refusal::BadRequest => "bad-request",
        }
    }
}

impl Stats {
    pub fn new() -> Stats {
        let mut registry = Registry::default();
        let probes = Family::<Labels, Counter>::default();
        let refused = Family::<Labels, Counter>::default();
        let in_flight = Gauge::default();
        let durations: Family<Labels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(duration_histogram);
        let reloads = Family::<Labels, Counter>::default();
        let last_reload_ok = Gauge::default();
        let last_reload_success = Gauge::<f64, AtomicU64>::default();
        let last_reload_error = Family::<Labels, Gauge>::default();
        let modules = Gauge::default();
        registry.register(
            "lbprobe_serve_probes",
            "Probes run, by module and how they ended",
            probes.clone(),
        );
        registry.register(
            "lbprobe_serve_probes_refused",
            "Probes refused before anything was sent, by reason",
            refused.clone(),
        );
        registry.register(
            "lbprobe_serve_probes_in_flight",
            "Probes running now",
            in_flight.clone(),
        );
        registry.register(
            "lbprobe_serve_probe_duration_seconds",
            "How long probes took, by module",
            durations.clone(),
        );
        registry.register(
            "lbprobe_serve_config_reloads",
            "Reloads of the config (SIGHUP, POST /-/reload), by result",
            reloads.clone(),
        );
        registry.register(
            "lbprobe_serve_config_last_reload_successful",
            "1 when the config in use is the file as it is now; 0 when the last reload failed and the previous config is kept",
            last_reload_ok.clone(),
        );
        registry.register(
            "lbprobe_serve_config_last_reload_success_timestamp_seconds",
            "When the config in use was loaded (Unix time)",
            last_reload_success.clone(),
        );
        registry.register(
            "lbprobe_serve_config_last_reload_error",
            "1, with the first line of why the last reload failed; absent after a good one",
            last_reload_error.clone(),
        );
        registry.register(
            "lbprobe_serve_config_modules",
            "Modules in the config in use",
            modules.clone(),
        );
        Stats {
            registry,
            probes,
            refused,
            in_flight,
            durations,
            reloads,
            last_reload_ok,
            last_reload_success,
            last_reload_error,
            modules,
        }
    }

    pub fn ran(&self, module: &str, ended: Ended, seconds: f64) {
        self.probes
            .get_or_create(&vec![
                ("module", module.to_string()),
                ("result", ended.as_str().to_string()),
            ])
            .inc();
        self.durations
            .get_or_create(&vec![("module", module.to_string())])
            .observe(seconds);
    }

    pub fn refused(&self, why: Refusal) {
        self.refused
            .get_or_create(&vec![("reason", why.as_str().to_string())])
            .inc();
    }

    /// One more probe running until the guard is dropped.
    pub fn in_flight(&self) -> InFlight {
        self.in_flight.inc();
        InFlight(self.in_flight.clone())
    }

    /// A config was loaded (at start or by a reload) with `modules` modules.
    pub fn loaded(&self, modules: usize, reload: bool) {
        if reload {
            self.reloads
                .get_or_create(&vec![("result", "success".to_string())])
                .inc();
        }
        self.last_reload_ok.set(1);
        self.last_reload_success.set(now_seconds());
        self.last_reload_error.clear();
        self.modules.set(modules as i64);
    }

    /// A reload failed: the previous config stays, and the metric says why.
    pub fn reload_failed(&self, why: &str) {
        self.reloads
            .get_or_create(&vec![("result", "failure".to_string())])
            .inc();
        self.last_reload_ok.set(0);
        self.last_reload_error.clear();
        let first_line = why.lines().next().unwrap_or_default().to_string();
        self.last_reload_error
            .get_or_create(&vec![("error", first_line)])
            .set(1);
    }
}

impl Default for Stats {
    fn default() -> Stats {
        Stats::new()
    }
}

/// A running probe, counted until dropped.
pub struct InFlight(Gauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

fn now_seconds() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}
