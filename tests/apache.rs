//! A third real proxy: Apache httpd 2.4 with mod_proxy (Debian's /usr/sbin/apache2) in front of
//! lab backends. Its own pages are attributed to the listener, `auto` picks the apache profile
//! from them, its limits are its documented ones, and a backend's answer it relays (keeping the
//! backend's Server header) is not taken for its own. When httpd is missing these tests fail,
//! naming where it was looked for: they never skip.

use std::time::Duration;

use lbprobe::classify::attribution::{self, Origin, Product};
use lbprobe::classify::identify;
use lbprobe::classify::Verdict;
use lbprobe::lab::{free_port, Apache, ApacheSpec, ApacheVhost, BackendConfig, Fault, FaultRule};
use lbprobe::probe::{Family, LimitSearch, ProbeSpec};
use lbprobe::profile::{Chosen, Profile};
use lbprobe::report::Report;
use lbprobe::target::Role;

mod support;
use support::findings::{
    assert_reason, assert_verdict, finding, limit_search, loopback, start_apache, start_backend,
    summary, LabRuns,
};
use support::says::assert_says;

const LAB: LabRuns = LabRuns {
    origin: file!(),
    limits: loopback(400, Duration::from_secs(5)),
};

/// A listener-only URI search of `apache` with the profile left to `auto`, which must pick
/// apache: the report and the search.
async fn uri_search_of(apache: &Apache) -> (Report, LimitSearch) {
    let report = LAB
        .execute(
            &apache.url(0),
            None,
            Profile::auto(),
            vec![ProbeSpec::default_for(Family::UriLimit)],
        )
        .await;
    assert_eq!(report.profile.name, "apache", "{}", summary(&report));
    let uri = limit_search(&report, Family::UriLimit, Role::Listener);
    (report, uri)
}

/// One raw GET, its whole answer as text (bounded by the server closing or a 3 s timeout).
async fn raw_get(port: u16, path: &str) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .expect("write");
    let mut out = Vec::new();
    let _ = tokio::time::timeout(
        Duration::from_secs(3),
        s.take(256 * 1024).read_to_end(&mut out),
    )
    .await;
    String::from_utf8_lossy(&out).into_owned()
}

fn limit_probes() -> Vec<ProbeSpec> {
    [Family::HeaderSize, Family::UriLimit]
        .into_iter()
        .map(ProbeSpec::default_for)
        .collect()
}

#[tokio::test]
async fn apache_relays_the_backends_answers_and_its_server_header_and_answers_503_for_a_refused_backend(
) {
    let backend = start_backend(BackendConfig::default()).await;
    let broken =
        start_backend(BackendConfig::default().fault(FaultRule::all(Fault::MalformedHeader))).await;
    let refused = free_port().expect("a free port");
    let apache = start_apache(&ApacheSpec {
        vhosts: vec![
            ApacheVhost::proxy(backend.url()),
            ApacheVhost::proxy(format!("http://127.0.0.1:{refused}")),
            ApacheVhost::proxy(broken.url()),
        ],
        global_extra: String::new(),
    });
    let ok = raw_get(apache.port(0), "/").await;
    assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
    // mod_proxy keeps the backend's Server header on what it relays.
    assert!(ok.contains("Server: lbprobe-lab\r\n"), "{ok}");

    // Twice: with retry=0 the second attempt tries the backend again rather than answering
    // from mod_proxy's memory of the first failure.
    for _ in 0..2 {
        let down = raw_get(apache.port(1), "/").await;
        assert!(
            down.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
            "{down}"
        );
        assert!(down.contains("Server: Apache"), "{down}");
    }
    // A backend whose answer has a header line without a colon: Apache's own 502.
    let bad = raw_get(apache.port(2), "/").await;
    assert!(bad.starts_with("HTTP/1.1 502 Bad Gateway\r\n"), "{bad}");
    assert!(
        bad.contains("The proxy server received an invalid\r\nresponse from an upstream server."),
        "{bad}"
    );
    assert!(
        apache.error_log().contains("AH01114"),
        "the error log names the failed connection: {}",
        apache.error_log()
    );

    // Through lbprobe: the 503 is Apache's own page, and auto picks the apache profile.
    let report = LAB
        .execute(
            &apache.url(1),
            None,
            Profile::auto(),
            vec![ProbeSpec::Protocol],
        )
        .await;
    assert_eq!(report.profile.name, "apache", "{:?}", report.profile.chosen);
    let baseline = report
        .observations
        .iter()
        .find(|o| o.variant == "baseline" && o.role == Role::Listener)
        .and_then(|o| o.exchange.as_ref())
        .expect("a baseline GET through apache");
    assert_eq!(baseline.status(), Some(503));
    let (origin, why) = attribution::attribute(baseline, None, Some(Product::Apache));
    assert_eq!(origin, Origin::Listener, "{why}");
    assert!(why.contains("Apache httpd's own 503 page"), "{why}");
}

#[tokio::test]
async fn apache_limits_are_its_own_pages_at_its_documented_numbers_and_auto_picks_apache() {
    let backend = start_backend(BackendConfig::default()).await;
    let apache = start_apache(&ApacheSpec::one(ApacheVhost::proxy(backend.url())));
    let report = LAB
        .execute(
            &apache.url(0),
            Some(&backend.url()),
            Profile::auto(),
            limit_probes(),
        )
        .await;
    assert_eq!(report.profile.name, "apache", "{}", summary(&report));
    let Chosen::Evidence { why } = &report.profile.chosen else {
        panic!(
            "auto should be resolved from evidence: {:?}",
            report.profile.chosen
        );
    };
    assert!(why.starts_with("Apache httpd: its own"), "{why}");

    // Apache 2.4 takes a request line ("GET <uri> HTTP/1.1") of LimitRequestLine + 1 bytes,
    // 8178 bytes of URI at the default 8190, and a header line ("Name: value") of
    // LimitRequestFieldSize + 1 bytes.
    // What a listener search found: its bounds and the status of the refusal.
    let found = |family| {
        let l = limit_search(&report, family, Role::Listener);
        (l.largest_accepted, l.smallest_rejected, l.rejected_status)
    };
    assert_eq!(found(Family::UriLimit), (Some(8178), Some(8179), Some(414)));
    assert_eq!(
        found(Family::HeaderSize),
        (Some(8191), Some(8192), Some(400))
    );
    // At the documented numbers: reproduced triggers, the listener's own, nothing confirmed.
    let ev = assert_verdict(&report, "414.uri-too-long", Verdict::Reproduced);
    assert_says(&ev, &["Apache httpd's own 414 page", "the backend accepts"]);
    let ev = assert_verdict(&report, "400.header-too-large", Verdict::Reproduced);
    assert!(ev.contains("Apache httpd's own 400 page"), "{ev}");
    assert_eq!(report.summary.confirmed, 0, "{}", summary(&report));
    assert_eq!(report.exit_code, lbprobe::exit::OK);
}

#[tokio::test]
async fn apache_with_a_tighter_request_line_is_confirmed_below_its_profile() {
    let backend = start_backend(BackendConfig::default()).await;
    let apache = start_apache(
        &ApacheSpec::one(ApacheVhost::proxy(backend.url())).global("LimitRequestLine 2048"),
    );
    let (report, uri) = uri_search_of(&apache).await;
    assert_eq!(uri.largest_accepted, Some(2048 + 1 - "GET  HTTP/1.1".len()));
    assert_reason(
        &report,
        "414.uri-too-long",
        Verdict::Confirmed,
        "below the 8178 bytes the apache profile documents",
    );
}

#[tokio::test]
async fn apache_relaying_the_backends_414_is_not_its_own_limit() {
    // The backend refuses URIs above 4000 bytes with its JSON 414; Apache's own limit is at
    // 8177. Listener only: who answered is read from the answers.
    let backend = start_backend(BackendConfig::default().max_uri_bytes(4000)).await;
    let apache = start_apache(&ApacheSpec::one(ApacheVhost::proxy(backend.url())));
    let (report, uri) = uri_search_of(&apache).await;
    assert_eq!(uri.largest_accepted, Some(4000), "{uri:?}");
    let f = finding(&report, "414.uri-too-long");
    assert_ne!(f.verdict, Verdict::Confirmed, "{}", summary(&report));
    assert_ne!(f.verdict, Verdict::Reproduced, "{}", summary(&report));
    assert!(
        f.reason.contains("relayed from behind the listener"),
        "{}",
        f.reason
    );
    let ev = assert_verdict(&report, "414.backend-uri-limit", Verdict::Reproduced);
    // Apache passes the backend's Server header on: that, and the JSON, say relayed.
    assert!(
        ev.contains("Server: lbprobe-lab, which Apache httpd does not send"),
        "{ev}"
    );
    assert_eq!(report.exit_code, lbprobe::exit::OK, "{}", summary(&report));
}

#[test]
fn identify_reads_apache_from_its_own_page_not_the_relayed_server_header() {
    // Apache relays the backend's Server header on proxied answers, so the header alone would
    // name the backend; its own refusal names Apache.
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let report = rt.block_on(async {
        let backend = start_backend(BackendConfig::default()).await;
        let apache = start_apache(&ApacheSpec::one(ApacheVhost::proxy(backend.url())));
        LAB.execute(
            &apache.url(0),
            None,
            Profile::auto(),
            vec![
                ProbeSpec::Protocol,
                ProbeSpec::default_for(Family::UriLimit),
            ],
        )
        .await
    });
    let found = identify::identify(&report.observations);
    let identity = found.identity.expect("apache identified");
    assert_eq!(identity.product, Product::Apache, "{}", identity.why);
    assert_eq!(identity.profile, "apache");
}
