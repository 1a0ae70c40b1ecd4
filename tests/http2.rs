//! HTTP/2 where the listener negotiates it: the method checks and the limit searches run over
//! h2 as well as HTTP/1.1, every exchange says which version it spoke, and the raw probes stay
//! HTTP/1.1. Against a real nginx (`listen ... ssl http2`); fails, never skips, without nginx.

mod support;
use support::findings::{start_haproxy, start_nginx};
use support::says::assert_says;

use lbprobe::lab::{
    BackendConfig, HaproxyFrontend, HaproxySpec, LabBackend, Nginx, NginxServer, NginxSpec,
};
use serde_json::Value;
use support::report_json::{finding, json, lbprobe, lbprobe_async, observation, variants, TIGHT};

fn nginx(server: NginxServer) -> Nginx {
    start_nginx(&NginxSpec::one(server))
}

fn scan(nginx: &Nginx, extra: &[&str]) -> Value {
    let url = format!("{}/", nginx.url(0));
    let mut args = vec!["scan", "--listener", &url, "--insecure", "--format", "json"];
    args.extend_from_slice(TIGHT);
    args.extend_from_slice(extra);
    json(&lbprobe(&args))
}

#[test]
fn methods_and_limits_run_over_h2_where_the_listener_negotiates_it() {
    let nginx = nginx(NginxServer::fixed().http2());
    let report = scan(
        &nginx,
        &[
            "--probes",
            "protocol,methods,header-size,uri-limit",
            "--malformed",
            "lowercase-method",
        ],
    );
    let alpn = observation(&report, "protocol", "alpn", "listener");
    assert_eq!(alpn["detail"]["chosen"], "h2", "{alpn:#}");
    assert_eq!(alpn["exchange"]["tls_info"]["alpn"], "h2");

    // The same method over each version, each saying which it spoke.
    let get = observation(&report, "methods", "GET", "listener");
    assert_eq!(get["exchange"]["http_version"], "HTTP/1.1", "{get:#}");
    let get2 = observation(&report, "methods", "GET h2", "listener");
    assert_eq!(get2["exchange"]["http_version"], "HTTP/2.0", "{get2:#}");
    assert_eq!(get2["exchange"]["response"]["status"], 200);
    assert_eq!(get2["detail"]["via"], "reqwest-h2");
    assert_eq!(
        get2["exchange"]["peer"],
        format!("127.0.0.1:{}", nginx.port(0)),
        "the client library's exchanges record the address they reached too"
    );
    let trace2 = observation(&report, "methods", "TRACE h2", "listener");
    assert_eq!(trace2["exchange"]["response"]["status"], 405, "{trace2:#}");
    // CONNECT has no origin-request form over h2: HTTP/1.1 only.
    assert!(!variants(&report).contains(&"methods CONNECT h2".to_string()));

    // Raw probes stay HTTP/1.1 and have no h2 twin.
    let raw = observation(&report, "malformed", "lowercase-method", "listener");
    assert_eq!(raw["exchange"]["http_version"], "HTTP/1.1", "{raw:#}");
    assert!(!variants(&report)
        .iter()
        .any(|v| v.starts_with("malformed") && v.ends_with(" h2")));

    // Each limit measured over both versions: nginx's h2 module holds header fields to its own
    // buffers, so the header-line limit differs from HTTP/1.1's 8190 bytes.
    let h1 = &observation(&report, "header-size", "limit", "listener")["detail"];
    let h2 = &observation(&report, "header-size", "limit h2", "listener")["detail"];
    assert_eq!(h1["largest_accepted"], 8190, "{h1:#}");
    assert_eq!(h2["exact"], true, "{h2:#}");
    assert_ne!(h2["largest_accepted"], h1["largest_accepted"], "{h2:#}");
    let uri2 = &observation(&report, "uri-limit", "limit h2", "listener")["detail"];
    assert!(
        uri2["largest_accepted"].as_u64().unwrap() >= 1024,
        "{uri2:#}"
    );

    let header = finding(&report, "400.header-too-large");
    let evidence = header["evidence"].to_string();
    assert_says(
        &evidence,
        &[
            "listener over HTTP/2",
            "HTTP/2 and HTTP/1.1 clients meet different limits",
        ],
    );
    let trace = finding(&report, "405.trace-unsupported");
    assert!(
        trace["evidence"]
            .to_string()
            .contains("TRACE over HTTP/2 via the listener: 405"),
        "{trace:#}"
    );
    let notes = report["notes"].to_string();
    assert!(notes.contains("negotiates HTTP/2"), "{notes}");
}

#[test]
fn a_listener_without_h2_is_checked_over_http1_only() {
    let nginx = nginx(NginxServer::fixed().tls(true));
    let report = scan(&nginx, &["--probes", "protocol,methods"]);
    let alpn = observation(&report, "protocol", "alpn", "listener");
    assert_ne!(alpn["detail"]["chosen"], "h2", "{alpn:#}");
    assert!(
        !variants(&report).iter().any(|v| v.ends_with(" h2")),
        "{:?}",
        variants(&report)
    );
    let get = observation(&report, "methods", "GET", "listener");
    assert_eq!(get["exchange"]["http_version"], "HTTP/1.1");
}

#[test]
fn plain_http_sides_are_not_offered_h2() {
    let nginx = nginx(NginxServer::fixed());
    let report = scan(&nginx, &["--probes", "methods"]);
    assert!(
        !variants(&report)
            .iter()
            .any(|v| v.contains("alpn") || v.ends_with(" h2")),
        "{:?}",
        variants(&report)
    );
}

/// HAProxy converts h2 and HTTP/1.1 requests into one internal form held in one buffer
/// (`tune.bufsize`): its limits over h2 sit within a few bytes of HTTP/1.1's (the pseudo-headers
/// take the difference), where nginx's h2 module has limits of its own; it refuses an oversized
/// h2 request by resetting the stream or the connection, and passes TRACE on in both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_holds_h2_to_the_same_buffer_and_resets_what_does_not_fit() {
    let backend = LabBackend::start(BackendConfig::default()).await.unwrap();
    let haproxy = start_haproxy(&HaproxySpec {
        frontends: vec![HaproxyFrontend::proxy(backend.url()).http2()],
        ..HaproxySpec::default()
    });
    let url = format!("https://127.0.0.1:{}/", haproxy.port(0));
    let mut args = vec!["scan", "--listener", &url, "--insecure", "--format", "json"];
    args.extend_from_slice(TIGHT);
    args.extend_from_slice(&["--probes", "protocol,methods,header-size"]);
    let report = json(&lbprobe_async(&args).await);
    let alpn = observation(&report, "protocol", "alpn", "listener");
    assert_eq!(alpn["detail"]["chosen"], "h2", "{alpn:#}");
    let trace2 = observation(&report, "methods", "TRACE h2", "listener");
    assert_eq!(trace2["exchange"]["response"]["status"], 200, "{trace2:#}");
    assert_eq!(trace2["exchange"]["http_version"], "HTTP/2.0");

    let h1 = &observation(&report, "header-size", "limit", "listener")["detail"];
    let h2 = &observation(&report, "header-size", "limit h2", "listener")["detail"];
    assert_eq!(
        (h1["exact"].as_bool(), h2["exact"].as_bool()),
        (Some(true), Some(true)),
        "{h1:#} {h2:#}"
    );
    let (a1, a2) = (
        h1["largest_accepted"].as_u64().unwrap(),
        h2["largest_accepted"].as_u64().unwrap(),
    );
    assert!(
        a1.abs_diff(a2) < 64,
        "HTTP/1.1 {a1}, h2 {a2}: one buffer for both"
    );
    // The first refused size over h2 was reset, not answered.
    let refused = format!("header-{} h2", h2["smallest_rejected"]);
    let r = observation(&report, "header-size", &refused, "listener");
    assert_eq!(r["exchange"]["end"]["kind"], "reset", "{r:#}");
    assert!(r["exchange"]["response"].is_null());
}
