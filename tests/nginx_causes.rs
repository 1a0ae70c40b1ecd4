//! Causes reproduced against a real nginx (Debian's /usr/sbin/nginx) in front of lab backends.
//! Each test starts its own nginx on its own free ports, so the tests run in parallel. When
//! nginx is missing these tests fail, naming the binary that was looked for: they never skip.

use std::sync::Arc;
use std::time::Duration;

use lbprobe::classify::Verdict;
use lbprobe::lab::{BackendConfig, LabBackend, Nginx, NginxServer, NginxSpec};
use lbprobe::probe::{Limits, Plan, ProbeSpec};
use lbprobe::profile::{Numbers, Profile};
use lbprobe::report::Report;
use lbprobe::run::{self, Job};
use lbprobe::target::{Role, Target};

mod support;
use support::findings::{
    assert_backend_405_on_delete, assert_verdict, finding, lab_target as target, loopback,
    methods_probe, start_backend, start_nginx, summary, LabRuns,
};
use support::says::assert_says;

/// Tight caps: loopback answers in milliseconds, and a stuck probe must not stall the suite.
const LAB: LabRuns = LabRuns {
    origin: file!(),
    limits: Limits {
        max_rate: 500.0,
        ..loopback(300, Duration::from_secs(3))
    },
};

fn job(
    listener: Option<Target>,
    backend: Option<Target>,
    profile: Profile,
    probes: Vec<ProbeSpec>,
) -> Job {
    Job::new(
        "nginx-causes",
        "tests/nginx_causes.rs",
        Plan::new(listener, backend)
            .with_profile(profile)
            .with_probes(probes)
            .with_limits(LAB.limits),
    )
}

async fn execute(job: Job) -> Report {
    run::execute(job, Arc::new(|_| {})).await
}

#[tokio::test]
async fn http_to_https_listener_gets_400() {
    let nginx = start_nginx(&NginxSpec::one(NginxServer::fixed().tls(true)));
    let report = LAB
        .execute(
            &nginx.url(0),
            None,
            Profile::nginx(),
            vec![ProbeSpec::Protocol],
        )
        .await;
    let ev = assert_verdict(&report, "400.http-to-https-listener", Verdict::Reproduced);
    assert!(ev.contains("400 Bad Request"), "{ev}");
    assert!(
        ev.contains("The plain HTTP request was sent to HTTPS port"),
        "the evidence should quote nginx's page: {ev}"
    );
    assert_eq!(report.exit_code, lbprobe::exit::OK, "{}", summary(&report));
}

/// `proxy_pass http://` to a port that speaks only TLS (and answers stray plain HTTP with 400,
/// as nginx's own TLS ports do); the scenario also names the backend as http://, so only the
/// sniff can tell that it speaks TLS.
async fn plain_proxy_to_tls_backend(answer_plain_http: bool) -> (Report, LabBackend, Nginx) {
    let backend = start_backend(
        BackendConfig::default()
            .tls(true)
            .answer_plain_http(answer_plain_http),
    )
    .await;
    let plain_url = backend.url().replacen("https://", "http://", 1);
    let nginx = start_nginx(&NginxSpec::one(NginxServer::proxy(plain_url.clone())));
    let report = LAB
        .execute(
            &nginx.url(0),
            Some(&plain_url),
            Profile::nginx(),
            vec![ProbeSpec::Protocol],
        )
        .await;
    (report, backend, nginx)
}

/// The sniff must have found TLS behind the http:// URL, said so in a note, and confirmed the
/// cause with the handshake and the direct TLS request as evidence.
fn assert_tls_backend_confirmed(report: &Report) -> String {
    let ev = assert_verdict(report, "400.backend-expects-https", Verdict::Confirmed);
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.contains("speaks TLS though its URL says http")),
        "no note that the sniff found TLS: {:?}",
        report.notes
    );
    assert_says(
        &ev,
        &[
            "completed a TLS",
            "the same GET over TLS straight to the backend got 200 OK",
        ],
    );
    ev
}

#[tokio::test]
async fn plain_proxy_pass_to_tls_backend_gets_upstream_400() {
    let (report, _backend, nginx) = plain_proxy_to_tls_backend(true).await;
    let ev = assert_tls_backend_confirmed(&report);
    assert!(
        ev.contains("through the listener got 400 Bad Request"),
        "{ev}"
    );
    // The 400 is the backend's own page, passed on by nginx.
    assert!(
        ev.contains("plain HTTP request sent to the HTTPS port"),
        "{ev}"
    );
    assert!(
        nginx
            .access_log()
            .contains("status=400 upstream_status=400"),
        "{}",
        nginx.access_log()
    );
}

/// Without a plain-HTTP answer, the TLS backend sends an alert; nginx 1.22 takes it for an
/// HTTP/0.9 answer and relays its 7 bytes (access log: status 009), no 400 and no 502.
#[tokio::test]
async fn plain_proxy_pass_to_tls_backend_relays_its_tls_alert() {
    let (report, backend, nginx) = plain_proxy_to_tls_backend(false).await;
    let ev = assert_tls_backend_confirmed(&report);
    assert!(ev.contains("TLS alert record"), "{ev}");
    assert!(
        ev.contains("\"\\x15\\x03\\x03\\x00\\x02\\x02") && ev.contains("fatal alert"),
        "the evidence should show the alert record's bytes and level: {ev}"
    );
    assert!(ev.contains("HTTP/0.9"), "{ev}");
    assert!(
        nginx.access_log().contains("status=009"),
        "{}",
        nginx.access_log()
    );
    // Only the direct TLS requests reached the backend's HTTP layer.
    assert!(backend.recent_requests().iter().all(|r| r.status == 200));
}

#[tokio::test]
async fn lowercase_method_and_content_length_conflicts_get_400() {
    let backend = start_backend(BackendConfig::default()).await;
    let nginx = start_nginx(&NginxSpec::one(NginxServer::proxy(backend.url())));
    let variants = [
        "control",
        "lowercase-method",
        "duplicate-content-length",
        "content-length-and-transfer-encoding",
    ];
    let report = LAB
        .execute(
            &nginx.url(0),
            Some(&backend.url()),
            Profile::nginx(),
            vec![ProbeSpec::Malformed {
                variants: Some(variants.iter().map(|v| v.to_string()).collect()),
            }],
        )
        .await;
    let ev = assert_verdict(&report, "400.malformed-request", Verdict::Reproduced);
    for variant in &variants[1..] {
        assert!(
            ev.contains(&format!("{variant}: listener 400 Bad Request")),
            "{variant} missing from the evidence: {ev}"
        );
    }
    // The lenient lab backend takes a lowercase method; the 400 is nginx's own.
    assert!(
        ev.contains("lowercase-method: listener 400 Bad Request; straight to the backend: 200 OK"),
        "{ev}"
    );
    assert!(
        !ev.contains("control"),
        "the control request is no variant: {ev}"
    );
}

#[tokio::test]
async fn trace_gets_405_from_nginx_and_delete_from_the_backend() {
    let backend = start_backend(BackendConfig::default().reject_method("DELETE")).await;
    let nginx = start_nginx(&NginxSpec::one(NginxServer::proxy(backend.url())));
    let report = LAB
        .execute(
            &nginx.url(0),
            Some(&backend.url()),
            Profile::nginx(),
            vec![methods_probe(&["GET", "TRACE", "DELETE"])],
        )
        .await;
    let trace = assert_verdict(&report, "405.trace-unsupported", Verdict::Reproduced);
    assert!(trace.contains("TRACE via the listener: 405"), "{trace}");
    assert!(
        !trace.contains("DELETE"),
        "TRACE's evidence must not mention DELETE: {trace}"
    );
    let method = finding(&report, "405.backend-method-unsupported");
    assert_eq!(method.side, lbprobe::classify::Side::Upstream);
    let delete = assert_backend_405_on_delete(&report);
    // Only DELETE is the backend's 405 (the Allow header it sent lists the others).
    assert_eq!(method.reason, "the backend itself answers DELETE with 405");
    assert_eq!(method.evidence.len(), 1, "{delete}");
}

/// nginx with `large_client_header_buffers 4 4k`: a request line or a header line that does
/// not fit the small first buffer is moved to one 4 KiB buffer on its own, CRLF included (nginx
/// copies only the line being parsed, so the short request line before it does not count). A
/// `Name: value` line of 4094 bytes plus CRLF fills the 4096 bytes exactly; 4095 no longer fits
/// and nginx answers 400 ("Request Header Or Cookie Too Large"). Measured: 4094 passes, 4095
/// does not, whether the request line is 20 or 3000 bytes long.
const NGINX_4K_LINE_LIMIT: usize = 4096 - "\r\n".len();

async fn header_limit_with_4k_buffers(profile: Profile) -> Report {
    let nginx = start_nginx(&NginxSpec {
        cert: None,
        servers: vec![NginxServer::fixed()],
        http_extra: "large_client_header_buffers 4 4k;".into(),
    });
    LAB.execute(
        &nginx.url(0),
        None,
        profile,
        vec![ProbeSpec::HeaderSize {
            bisect: true,
            min: 1024,
            max: 16 * 1024,
        }],
    )
    .await
}

fn assert_exact_4k_threshold(ev: &str) {
    assert!(
        ev.contains(&format!(
            "header lines above {NGINX_4K_LINE_LIMIT} bytes are refused, {NGINX_4K_LINE_LIMIT} bytes pass (status 400;"
        )),
        "nginx's exact threshold should be in the evidence: {ev}"
    );
    assert!(ev.contains("exact)"), "{ev}");
}

#[tokio::test]
async fn header_above_nginx_4k_buffer_gets_400_at_the_documented_limit() {
    let profile = Profile::nginx().with_declared(&Numbers {
        max_header_bytes: Some(NGINX_4K_LINE_LIMIT),
        ..Numbers::default()
    });
    let report = header_limit_with_4k_buffers(profile).await;
    let ev = assert_verdict(&report, "400.header-too-large", Verdict::Reproduced);
    assert_exact_4k_threshold(&ev);
    assert_eq!(report.summary.confirmed, 0, "{}", summary(&report));
}

#[tokio::test]
async fn header_limit_of_nginx_4k_buffer_below_documented_32k_is_confirmed() {
    let report = header_limit_with_4k_buffers(Profile::clb()).await;
    let ev = assert_verdict(&report, "400.header-too-large", Verdict::Confirmed);
    assert_exact_4k_threshold(&ev);
    let reason = &finding(&report, "400.header-too-large").reason;
    assert!(
        reason.contains(&format!("above {NGINX_4K_LINE_LIMIT} bytes"))
            && reason.contains("below the 32768 bytes the clb profile documents"),
        "{reason}"
    );
    assert_eq!(report.exit_code, lbprobe::exit::FINDING);
}

async fn validating_backend_behind_nginx(headers: Vec<(String, String)>) -> Report {
    let backend = start_backend(BackendConfig::default().required_header("X-Api-Key")).await;
    let nginx = start_nginx(&NginxSpec::one(NginxServer::proxy(backend.url())));
    let mut listener = target(Role::Listener, &nginx.url(0));
    let mut direct = target(Role::Backend, &backend.url());
    listener.headers = headers.clone();
    direct.headers = headers;
    execute(job(
        Some(listener),
        Some(direct),
        Profile::nginx(),
        vec![ProbeSpec::Protocol, methods_probe(&["GET", "POST"])],
    ))
    .await
}

#[tokio::test]
async fn backend_validation_400_passes_through_nginx() {
    let report = validating_backend_behind_nginx(Vec::new()).await;
    let ev = assert_verdict(&report, "400.backend-validation", Verdict::Reproduced);
    assert!(ev.contains("the backend answers 400 Bad Request"), "{ev}");
    assert!(
        ev.contains("validation failed: missing header X-Api-Key"),
        "the backend's body should be in the evidence: {ev}"
    );
    assert!(ev.contains("the listener passes it on"), "{ev}");
    assert_eq!(
        finding(&report, "400.backend-validation").side,
        lbprobe::classify::Side::Upstream
    );
}

#[tokio::test]
async fn backend_validation_ruled_out_when_the_required_header_is_sent() {
    let report =
        validating_backend_behind_nginx(vec![("X-Api-Key".into(), "lab-key".into())]).await;
    assert_verdict(&report, "400.backend-validation", Verdict::RuledOut);
    assert_eq!(report.summary.confirmed, 0, "{}", summary(&report));
}
