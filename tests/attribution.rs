//! Who answered, against real servers: a listener-only scan must not blame the listener for
//! what its backend answered, a cause of one code is never reproduced with another, an unknown
//! proxy is judged by no one's documentation, and `auto` names nginx, HAProxy (also in front of
//! an nginx backend, whose Server header it relays) from their own answers. Apache httpd's
//! cases are in tests/apache.rs.

use std::time::Duration;

use lbprobe::catalogue::Catalogue;
use lbprobe::classify::attribution::Product;
use lbprobe::classify::{self, identify, Context, Verdict};
use lbprobe::lab::{
    BackendConfig, HaproxyFrontend, HaproxySpec, LabBackend, Nginx, NginxServer, NginxSpec,
};
use lbprobe::probe::{Family, ProbeSpec};
use lbprobe::profile::{Chosen, Profile};
use lbprobe::report::Report;
use lbprobe::target::Role;
use serde_json::Value;

mod support;
use support::findings::{
    assert_reason, assert_verdict, finding, limit_search, loopback, start_backend, start_haproxy,
    start_nginx, summary, LabRuns,
};
use support::report_json;
use support::says::assert_says;

const LAB: LabRuns = LabRuns {
    origin: file!(),
    limits: loopback(600, Duration::from_secs(3)),
};

fn uri_only() -> Vec<ProbeSpec> {
    vec![ProbeSpec::default_for(Family::UriLimit)]
}

fn chosen_why(report: &Report) -> String {
    match &report.profile.chosen {
        Chosen::Evidence { why } => why.clone(),
        other => panic!("auto should be resolved from evidence, got {other:?}"),
    }
}

/// `lbprobe scan --listener URL` with `rest` after, as JSON and capped; its exit code and report.
async fn scan_listener(url: &str, rest: &[&str]) -> (Option<i32>, Value) {
    let mut args = vec!["scan", "--listener", url];
    args.extend_from_slice(rest);
    args.extend(["--format", "json", "--max-rate", "500", "--timeout", "3"]);
    let out = report_json::lbprobe_async(&args).await;
    (out.status.code(), report_json::json(&out))
}

/// nginx (default 8 KiB buffers) in front of a backend whose URI limit is 4000 bytes.
async fn nginx_over_a_4000_byte_uri_backend() -> (LabBackend, Nginx) {
    let backend = start_backend(BackendConfig::default().max_uri_bytes(4000)).await;
    let nginx = start_nginx(&NginxSpec::one(NginxServer::proxy(backend.url())));
    (backend, nginx)
}

#[tokio::test]
async fn listener_only_scan_of_nginx_says_the_backends_414_is_relayed() {
    let (_backend, nginx) = nginx_over_a_4000_byte_uri_backend().await;
    let report = LAB
        .execute(&nginx.url(0), None, Profile::auto(), uri_only())
        .await;
    assert_eq!(report.profile.name, "nginx", "{}", chosen_why(&report));
    let uri = limit_search(&report, Family::UriLimit, Role::Listener);
    assert_eq!(
        (uri.largest_accepted, uri.rejected_status),
        (Some(4000), Some(414)),
        "{uri:?}"
    );
    // Not the listener's limit: relayed, and nginx's own limit (8177 bytes) lies above.
    assert_reason(
        &report,
        "414.uri-too-long",
        Verdict::Inconclusive,
        "relayed from behind the listener",
    );
    let ev = assert_verdict(&report, "414.backend-uri-limit", Verdict::Reproduced);
    assert_says(
        &ev,
        &[
            "the body is JSON",
            "unlike its answer to the largest request tried",
            "the listener's own refusal (414 Request-URI Too Large)",
        ],
    );
    assert_eq!(report.summary.confirmed, 0, "{}", summary(&report));
    assert_eq!(report.exit_code, lbprobe::exit::OK);
}

#[tokio::test]
async fn listener_only_cli_scan_of_nginx_neither_confirms_nor_reproduces_the_listeners_414() {
    let (_backend, nginx) = nginx_over_a_4000_byte_uri_backend().await;
    let url = nginx.url(0);
    let (code, report) = scan_listener(&url, &["--probes", "uri-limit"]).await;
    assert_eq!(code, Some(lbprobe::exit::OK), "{report:#}");
    let f = report_json::finding(&report, "414.uri-too-long");
    assert_eq!(f["verdict"], "inconclusive", "{f:#}");
    assert_eq!(
        report_json::finding(&report, "414.backend-uri-limit")["verdict"],
        "reproduced"
    );
    assert_eq!(report["profile"]["name"], "nginx");
}

#[tokio::test]
async fn nginx_refusing_with_its_own_414_page_is_the_listeners_limit() {
    // The neighbour: nginx's buffers (2 KiB) are tighter than the backend's 4000 bytes, so its
    // own 414 page answers at its threshold.
    let backend = start_backend(BackendConfig::default().max_uri_bytes(4000)).await;
    let nginx = start_nginx(&NginxSpec::one(
        NginxServer::proxy(backend.url()).extra("large_client_header_buffers 4 2k;"),
    ));
    let report = LAB
        .execute(&nginx.url(0), None, Profile::auto(), uri_only())
        .await;
    assert_eq!(report.profile.name, "nginx", "{}", chosen_why(&report));
    let uri = limit_search(&report, Family::UriLimit, Role::Listener);
    assert_eq!(uri.largest_accepted, Some(2048 - "GET  HTTP/1.1\r\n".len()));
    // Below the 8177 bytes the nginx profile documents: the mismatch is confirmed...
    let f = finding(&report, "414.uri-too-long");
    assert_eq!(f.verdict, Verdict::Confirmed, "{}", summary(&report));
    let ev = support::findings::evidence(f);
    assert!(ev.contains("the body is nginx's own 414 page"), "{ev}");
    assert!(report
        .findings
        .iter()
        .all(|f| f.cause != "414.backend-uri-limit"));
    // ...and judged by no documentation, the listener's own limit is reproduced as measured.
    let none = Profile::none();
    let ctx = Context {
        profile: &none,
        listener_tls: Some(false),
        has_backend: false,
    };
    let findings = classify::classify(&report.observations, Catalogue::builtin(), &ctx);
    let f = findings
        .iter()
        .find(|f| f.cause == "414.uri-too-long")
        .expect("a 414.uri-too-long finding");
    assert_eq!(f.verdict, Verdict::Reproduced, "{}", f.reason);
    assert!(f.reason.contains("as measured"), "{}", f.reason);
}

#[tokio::test]
async fn haproxy_answers_an_over_long_uri_with_400_which_is_no_414() {
    let backend = start_backend(BackendConfig::default()).await;
    let haproxy = start_haproxy(&HaproxySpec::one(HaproxyFrontend::proxy(backend.url())));
    for with_backend in [false, true] {
        let report = LAB
            .execute(
                &haproxy.url(0),
                with_backend.then(|| backend.url()).as_deref(),
                Profile::auto(),
                uri_only(),
            )
            .await;
        assert_eq!(report.profile.name, "haproxy", "{}", chosen_why(&report));
        assert_eq!(
            limit_search(&report, Family::UriLimit, Role::Listener).rejected_status,
            Some(400)
        );
        let f = finding(&report, "414.uri-too-long");
        assert_eq!(f.verdict, Verdict::RuledOut, "{}", summary(&report));
        assert!(f.reason.contains("not 414"), "{}", f.reason);
        // The 400 is reported where a 400 belongs, with the difference from the reference page.
        let ev = assert_verdict(&report, "400.header-too-large", Verdict::Reproduced);
        assert_says(
            &ev,
            &[
                "HAProxy answers an over-long URI with 400, not the 414",
                "the body is HAProxy's own 400 page",
            ],
        );
        assert_eq!(report.exit_code, lbprobe::exit::OK, "{}", summary(&report));
    }
}

#[tokio::test]
async fn haproxy_in_front_of_nginx_is_identified_as_haproxy() {
    // HAProxy passes nginx's Server header and pages on; its own refusals carry neither.
    let nginx = start_nginx(&NginxSpec::one(NginxServer::fixed()));
    let haproxy = start_haproxy(&HaproxySpec::one(HaproxyFrontend::proxy(nginx.url(0))));
    let report = LAB
        .execute(
            &haproxy.url(0),
            None,
            Profile::auto(),
            vec![
                ProbeSpec::Protocol,
                ProbeSpec::Methods { methods: None },
                ProbeSpec::Malformed { variants: None },
                ProbeSpec::default_for(Family::UriLimit),
            ],
        )
        .await;
    let identity = identify::identify(&report.observations)
        .identity
        .expect("the listener identified");
    assert_eq!(identity.product, Product::Haproxy, "{}", identity.why);
    assert_eq!(report.profile.name, "haproxy", "{}", chosen_why(&report));
    // The baseline carries nginx's Server header, relayed: not what named the listener.
    let baseline = report
        .observations
        .iter()
        .find(|o| o.variant == "baseline" && o.role == Role::Listener)
        .and_then(|o| o.exchange.as_ref()?.response.as_ref())
        .expect("a baseline answer");
    assert!(
        baseline
            .header("server")
            .is_some_and(|s| s.starts_with("nginx")),
        "{:?}",
        baseline.headers
    );
    // nginx's 414 page at nginx's threshold is nginx's, relayed by HAProxy, whose own 400 comes
    // at larger URIs.
    let uri = limit_search(&report, Family::UriLimit, Role::Listener);
    assert_eq!(uri.rejected_status, Some(414), "{uri:?}");
    let f = finding(&report, "414.uri-too-long");
    assert_eq!(f.verdict, Verdict::Inconclusive, "{}", summary(&report));
    let ev = support::findings::evidence(f);
    assert_says(&ev, &["the body is nginx's 414 page", "not HAProxy's own"]);
    assert_verdict(&report, "414.backend-uri-limit", Verdict::Reproduced);
}

#[tokio::test]
async fn nginx_alone_is_identified_as_nginx() {
    let nginx = start_nginx(&NginxSpec::one(NginxServer::fixed()));
    let report = LAB
        .execute(
            &nginx.url(0),
            None,
            Profile::auto(),
            vec![ProbeSpec::Protocol, ProbeSpec::Methods { methods: None }],
        )
        .await;
    assert_eq!(report.profile.name, "nginx", "{}", chosen_why(&report));
    assert!(
        chosen_why(&report).starts_with("nginx: "),
        "{}",
        chosen_why(&report)
    );
}

#[tokio::test]
async fn an_unknown_server_at_its_own_default_limits_is_judged_by_no_documentation() {
    // The lab backend itself as the "listener": JSON answers, Server: lbprobe-lab, a 64 KiB
    // request head. The default scan, default profile.
    let lab = start_backend(BackendConfig::default()).await;
    let url = lab.url();
    let (code, report) = scan_listener(&url, &[]).await;
    let confirmed = report_json::confirmed_causes(&report);
    assert!(
        confirmed.is_empty(),
        "{confirmed:?}: {:#}",
        report["findings"]
    );
    assert_eq!(code, Some(lbprobe::exit::OK), "{:#}", report["findings"]);
    assert_eq!(report["profile"]["name"], "none", "{:#}", report["profile"]);
    let why = report["profile"]["chosen"]["why"]
        .as_str()
        .unwrap_or_default();
    assert_says(
        why,
        &["no known load balancer's page", "Server: lbprobe-lab"],
    );
    // Limits reported as measured, never against someone's documented number.
    for cause in ["400.header-too-large", "414.uri-too-long"] {
        let f = report_json::finding(&report, cause);
        assert_ne!(f["verdict"], "confirmed", "{f:#}");
        let text = f.to_string();
        assert!(!text.contains("profile documents"), "{f:#}");
    }
}

#[tokio::test]
async fn a_server_answering_431_for_any_oversized_head_gets_neither_a_400_nor_a_414_finding() {
    // One 16 KiB budget for the whole head, answered 431 whichever part is long (as Go's
    // net/http and Envoy do).
    let lab = start_backend(BackendConfig::default().max_head(16 * 1024, 431)).await;
    let report = LAB
        .execute(
            &lab.url(),
            None,
            Profile::auto(),
            [Family::HeaderSize, Family::HeaderLimit, Family::UriLimit]
                .into_iter()
                .map(ProbeSpec::default_for)
                .collect(),
        )
        .await;
    assert_eq!(report.profile.name, "none", "{}", chosen_why(&report));
    for family in [Family::HeaderSize, Family::HeaderLimit, Family::UriLimit] {
        assert_eq!(
            limit_search(&report, family, Role::Listener).rejected_status,
            Some(431),
            "{family}"
        );
    }
    assert_reason(
        &report,
        "414.uri-too-long",
        Verdict::RuledOut,
        "431 Request Header Fields Too Large, not 414",
    );
    let f = finding(&report, "400.header-too-large");
    assert_eq!(f.verdict, Verdict::RuledOut, "{}", summary(&report));
    assert!(f.reason.contains("not 400"), "{}", f.reason);
    assert!(
        report
            .findings
            .iter()
            .all(|f| f.cause != "414.backend-uri-limit" && f.cause != "400.passthrough"),
        "{}",
        summary(&report)
    );
    assert_eq!(report.summary.confirmed, 0, "{}", summary(&report));
    assert_eq!(report.exit_code, lbprobe::exit::OK);
}
