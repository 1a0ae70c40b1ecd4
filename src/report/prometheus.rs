//! Reports as Prometheus metrics (the OpenMetrics text format, which Prometheus and
//! node_exporter's textfile collector read), built with the `prometheus-client` crate: a probe
//! run for `lbprobe serve`'s `/probe`, a backend host's report for `backend --format
//! prometheus`, and the serve mode's own counters.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::classify::measured::{measured, Measure};
use crate::classify::{Finding, Verdict};
use crate::host::backend::BackendReport;
use crate::report::Report;

/// The content type of what this module renders.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

type Labels = Vec<(&'static str, String)>;

/// One gauge, unlabelled (one row with no labels) or a family of labelled series.
#[derive(Debug)]
struct Gauges {
    name: &'static str,
    help: &'static str,
    rows: Vec<(Labels, f64)>,
    labelled: bool,
}

/// A report's metrics, in the order they are added and each family's series in the order of
/// the report (the crate's own families keep theirs in a hash map): the same run renders the
/// same text, and a textfile changes only where the host did.
#[derive(Debug, Default)]
struct Sheet(Vec<Gauges>);

impl Sheet {
    fn new() -> Sheet {
        Sheet::default()
    }

    fn gauge(&mut self, name: &'static str, help: &'static str, value: f64) {
        self.0.push(Gauges {
            name,
            help,
            rows: vec![(Vec::new(), value)],
            labelled: false,
        });
    }

    /// A labelled gauge with one series per row; written even when empty, so that its HELP
    /// and TYPE say the metric exists.
    fn family(&mut self, name: &'static str, help: &'static str, mut rows: Vec<(Labels, f64)>) {
        // One series per label set, the first: a repeated one is not valid exposition.
        let mut seen: Vec<Labels> = Vec::new();
        rows.retain(|(labels, _)| {
            let new = !seen.contains(labels);
            if new {
                seen.push(labels.clone());
            }
            new
        });
        self.0.push(Gauges {
            name,
            help,
            rows,
            labelled: true,
        });
    }

    fn text(self) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(self));
        registry_text(&registry)
    }
}

impl Collector for Sheet {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for g in &self.0 {
            // A sentence, as the crate's registry writes the help of what it holds.
            let help = format!("{}.", g.help);
            let mut metric = encoder.encode_descriptor(g.name, &help, None, MetricType::Gauge)?;
            if !g.labelled {
                if let Some((_, value)) = g.rows.first() {
                    ConstGauge::new(*value).encode(metric)?;
                }
                continue;
            }
            for (labels, value) in &g.rows {
                ConstGauge::new(*value).encode(metric.encode_family(labels)?)?;
            }
        }
        Ok(())
    }
}

/// A registry's metrics as text.
pub fn registry_text(registry: &Registry) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = encode(&mut out, registry);
    out
}

fn bool_value(b: bool) -> f64 {
    if b {
        1.0
    } else {
        0.0
    }
}

fn finding_rows(findings: &[Finding]) -> Vec<(Labels, f64)> {
    findings
        .iter()
        .map(|f| {
            (
                vec![
                    ("cause", f.cause.clone()),
                    ("verdict", f.verdict.as_str().to_string()),
                    ("side", f.side.to_string()),
                ],
                1.0,
            )
        })
        .collect()
}

fn measure_rows(measures: &[Measure]) -> Vec<(Labels, f64)> {
    measures
        .iter()
        .map(|m| {
            (
                vec![("kind", m.kind.to_string()), ("side", m.side.to_string())],
                m.value,
            )
        })
        .collect()
}

/// One probe run (a module against a target) in the blackbox_exporter's manner: success,
/// duration, then what lbprobe found and measured.
pub fn probe(r: &Report) -> String {
    let mut s = Sheet::new();
    s.gauge(
        "lbprobe_probe_success",
        "1 when the run ended with exit code 0: every confirmed fault expected, every expectation met, not cut short",
        bool_value(r.exit_code == crate::exit::OK),
    );
    s.gauge(
        "lbprobe_probe_duration_seconds",
        "How long the run took",
        r.duration_ms / 1000.0,
    );
    s.gauge(
        "lbprobe_probe_cut_short",
        "1 when the run stopped before its probes finished (its caps, or the scrape's timeout): what it did not reach is inconclusive",
        bool_value(r.cut_short.is_some() || r.partial),
    );
    s.gauge(
        "lbprobe_requests_sent",
        "Requests the run sent, to every side",
        f64::from(r.requests_sent),
    );
    s.family(
        "lbprobe_finding",
        "1 for each cause with the verdict the run gave it",
        finding_rows(&r.findings),
    );
    s.gauge(
        "lbprobe_faults_confirmed",
        "Causes confirmed",
        r.findings
            .iter()
            .filter(|f| f.verdict == Verdict::Confirmed)
            .count() as f64,
    );
    let m = measured(&r.observations);
    s.family(
        "lbprobe_limit_bytes",
        "The largest size a side accepted where a larger one was refused, measured",
        measure_rows(&m.limits),
    );
    s.family(
        "lbprobe_timeout_seconds",
        "A side's own timeout, measured from its answers (never a documented number)",
        measure_rows(&m.timeouts),
    );
    s.family(
        "lbprobe_path_mtu_bytes",
        "The path MTU towards a side, measured",
        m.path_mtu
            .iter()
            .map(|m| (vec![("side", m.side.to_string())], m.value))
            .collect(),
    );
    let mut met: Vec<(Labels, f64)> = r
        .expectations
        .iter()
        .map(|e| (vec![("name", e.cause.clone())], bool_value(e.met)))
        .collect();
    met.extend(r.limit_expectations.iter().map(|e| {
        (
            vec![("name", format!("{}.{}: {}", e.role, e.limit, e.bounds()))],
            bool_value(e.met),
        )
    }));
    s.family(
        "lbprobe_expectation_met",
        "1 for each expectation of the module met, 0 unmet",
        met,
    );
    s.text()
}

/// A probe that did not end within the scrape's timeout: failed, with how long it was given.
pub fn probe_unfinished(seconds: f64) -> String {
    let mut s = Sheet::new();
    s.gauge(
        "lbprobe_probe_success",
        "1 when the run ended with exit code 0",
        0.0,
    );
    s.gauge(
        "lbprobe_probe_duration_seconds",
        "How long the run took",
        seconds,
    );
    s.gauge(
        "lbprobe_probe_cut_short",
        "1 when the run stopped before its probes finished",
        1.0,
    );
    s.text()
}

/// `lbprobe backend --format prometheus`: the host's listen queues, counters and MTUs, and
/// the findings, for node_exporter's textfile collector.
pub fn backend(r: &BackendReport) -> String {
    let mut s = Sheet::new();
    s.gauge(
        "lbprobe_backend_success",
        "1 when the backend report ended with exit code 0",
        bool_value(r.exit_code == crate::exit::OK),
    );
    s.gauge(
        "lbprobe_backend_duration_seconds",
        "How long the backend checks took",
        r.duration_ms / 1000.0,
    );
    s.gauge(
        "lbprobe_backend_report_timestamp_seconds",
        "When the report was made (Unix time): a stale file shows as an old timestamp",
        r.started_unix_ms as f64 / 1000.0,
    );
    // The host's own findings, and those of the local checks against the service (a run's
    // report of its own): `from` tells them apart, as one cause may be in both.
    let mut rows = finding_rows(&r.findings);
    for row in &mut rows {
        row.0.push(("from", "host".to_string()));
    }
    let checks: &[Finding] = r.checks.as_ref().map_or(&[], |c| &c.findings);
    rows.extend(finding_rows(checks).into_iter().map(|mut row| {
        row.0.push(("from", "checks".to_string()));
        row
    }));
    s.family(
        "lbprobe_finding",
        "1 for each cause with the verdict the host's report gave it (from the host's facts, or the local checks)",
        rows,
    );
    s.gauge(
        "lbprobe_faults_confirmed",
        "Causes confirmed",
        r.findings
            .iter()
            .chain(checks)
            .filter(|f| f.verdict == Verdict::Confirmed)
            .count() as f64,
    );
    let port = r.host.port.to_string();
    let sockets = r.host.facts.listening.as_deref().unwrap_or_default();
    s.family(
        "lbprobe_backend_listen_queue",
        "Connections waiting in the service's accept queue",
        sockets
            .iter()
            .map(|l| {
                (
                    vec![("port", port.clone()), ("address", l.addr.to_string())],
                    f64::from(l.queue),
                )
            })
            .collect(),
    );
    s.family(
        "lbprobe_backend_listen_backlog",
        "The accept queue's length (the listen backlog)",
        sockets
            .iter()
            .filter_map(|l| {
                l.backlog.map(|b| {
                    (
                        vec![("port", port.clone()), ("address", l.addr.to_string())],
                        f64::from(b),
                    )
                })
            })
            .collect(),
    );
    s.family(
        "lbprobe_backend_netstat_growth",
        "How much each watched kernel statistic (listen overflows, drops, resets) grew while the checks ran",
        r.host
            .deltas
            .iter()
            .map(|(name, v)| (vec![("name", name.clone())], *v as f64))
            .collect(),
    );
    s.family(
        "lbprobe_backend_interface_mtu_bytes",
        "Each network interface's MTU",
        r.host
            .facts
            .interfaces
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|i| (vec![("interface", i.name.clone())], f64::from(i.mtu)))
            .collect(),
    );
    s.text()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unfinished_probe_is_a_failure_cut_short() {
        let text = probe_unfinished(4.5);
        assert!(text.contains("lbprobe_probe_success 0.0"), "{text}");
        assert!(text.contains("lbprobe_probe_cut_short 1.0"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
