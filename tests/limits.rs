//! Limit discovery against real nginx: the bisection must land on nginx's exact thresholds for
//! the buffer sizes each test configures, on both sides, and name the tighter side.

use std::time::Duration;

use lbprobe::classify::Verdict;
use lbprobe::lab::{BackendConfig, LabBackend, Nginx, NginxServer, NginxSpec};
use lbprobe::probe::{Family, Plan, ProbeSpec};
use lbprobe::profile::Profile;
use lbprobe::report::Report;
use lbprobe::target::{Role, Target};

mod support;
use support::findings::{finding, limit_search, loopback, start_backend};

fn start_nginx(buffers: &str, upstream: &str) -> Nginx {
    let spec = NginxSpec::one(
        NginxServer::proxy(upstream).extra(format!("large_client_header_buffers {buffers};")),
    );
    support::findings::start_nginx(&spec)
}

async fn backend(config: BackendConfig) -> LabBackend {
    start_backend(config).await
}

async fn run(listener: &str, backend: &str, profile: Profile, probes: Vec<ProbeSpec>) -> Report {
    let plan = Plan::new(
        Some(Target::parse(Role::Listener, listener).unwrap()),
        Some(Target::parse(Role::Backend, backend).unwrap()),
    );
    let plan = plan.with_profile(profile).with_probes(probes);
    support::findings::execute(
        file!(),
        plan.with_limits(loopback(400, Duration::from_secs(3))),
    )
    .await
}

fn all_limits() -> Vec<ProbeSpec> {
    [Family::HeaderSize, Family::HeaderLimit, Family::UriLimit]
        .into_iter()
        .map(ProbeSpec::default_for)
        .collect()
}

/// The largest request-line and header-line sizes nginx accepts with `large_client_header_buffers
/// N SIZE`: each line must fit one SIZE buffer together with its CRLF, so a header line may be
/// SIZE - 2 bytes; the request line is `GET <uri> HTTP/1.1`, so the URI may be SIZE - 15 bytes.
fn nginx_line_limits(size: usize) -> (usize, usize) {
    (size - 2, size - "GET  HTTP/1.1\r\n".len())
}

async fn check_exact_limits(buffers: &str, size: usize) {
    let lab = backend(BackendConfig::default()).await;
    let nginx = start_nginx(buffers, &lab.url());
    let report = run(&nginx.url(0), &lab.url(), Profile::clb(), all_limits()).await;
    let (header, uri) = nginx_line_limits(size);
    let bound = ((128 * 1024 - 1024) as f64).log2().ceil() as u32 + 2;

    // Each line search found its limit exactly, refused with its own status, within a
    // bisection's number of requests.
    for (family, limit, status) in [
        (Family::HeaderSize, header, 400),
        (Family::UriLimit, uri, 414),
    ] {
        let l = limit_search(&report, family, Role::Listener);
        assert_eq!(
            (l.largest_accepted, l.smallest_rejected, l.exact),
            (Some(limit), Some(limit + 1), true),
            "{l:?}"
        );
        assert_eq!(l.rejected_status, Some(status), "{l:?}");
        assert!(l.requests <= bound, "{} requests > {bound}", l.requests);
    }

    // The header block is bounded by the number of buffers: it is exact too, and lies between
    // one and N buffers.
    let b = limit_search(&report, Family::HeaderLimit, Role::Listener);
    assert!(b.exact, "{b:?}");
    let block = b.largest_accepted.unwrap();
    assert!(
        block > size && block <= 4 * size,
        "block limit {block} for {buffers}"
    );

    // clb documents 32 KiB for both: nginx's smaller limits are confirmed as a mismatch.
    let f = finding(&report, "414.uri-too-long");
    assert_eq!(f.verdict, Verdict::Confirmed, "{f:?}");
    assert!(
        f.reason.contains(&format!("above {uri} bytes")),
        "{}",
        f.reason
    );
    let f = finding(&report, "400.header-too-large");
    assert!(
        f.evidence
            .iter()
            .any(|e| e.text.contains(&format!("above {header} bytes"))),
        "{f:?}"
    );
    // The lab backend accepts larger heads: its URI limit is not the tighter one.
    let f = finding(&report, "414.backend-uri-limit");
    assert_ne!(f.verdict, Verdict::Confirmed, "{f:?}");
}

#[tokio::test]
async fn bisection_finds_nginx_exact_limits_with_4k_buffers() {
    check_exact_limits("4 4k", 4096).await;
}

#[tokio::test]
async fn bisection_finds_nginx_exact_limits_with_16k_buffers() {
    check_exact_limits("4 16k", 16384).await;
}

#[tokio::test]
async fn backend_uri_limit_tighter_than_the_listener_is_confirmed() {
    let lab = backend(BackendConfig::default().max_uri_bytes(2000)).await;
    let nginx = start_nginx("4 8k", &lab.url());
    let report = run(
        &nginx.url(0),
        &lab.url(),
        Profile::nginx(),
        vec![ProbeSpec::default_for(Family::UriLimit)],
    )
    .await;
    let b = limit_search(&report, Family::UriLimit, Role::Backend);
    assert_eq!(
        (b.largest_accepted, b.smallest_rejected, b.rejected_status),
        (Some(2000), Some(2001), Some(414))
    );
    // Through nginx the backend's 414 is what clients hit, at the same threshold.
    let l = limit_search(&report, Family::UriLimit, Role::Listener);
    assert_eq!(l.largest_accepted, Some(2000), "{l:?}");
    let f = finding(&report, "414.backend-uri-limit");
    assert_eq!(f.verdict, Verdict::Confirmed, "{f:?}");
    assert!(
        f.reason.contains("above 2000 bytes pass the listener"),
        "{}",
        f.reason
    );
    // ...so the listener's own URI limit is not to blame.
    let f = finding(&report, "414.uri-too-long");
    assert_eq!(f.verdict, Verdict::RuledOut, "{f:?}");
    assert!(f.reason.contains("are the backend's"), "{}", f.reason);
}
