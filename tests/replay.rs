//! `lbprobe replay` against real nginx 1.22 and HAProxy 2.6 in front of the lab backend: a
//! browser-style request with one oversized header shrinks to that header and Host and names
//! 400.header-too-large; a lowercase method inside a large POST shrinks to the request line; a
//! 10 KB query names the listener's or the backend's URI limit by who answered; a request that
//! passes says so and does not shrink; secrets never reach the report.

use std::time::Duration;

use lbprobe::classify::{Origin, Verdict};
use lbprobe::lab::{
    BackendConfig, Haproxy, HaproxyFrontend, HaproxySpec, Nginx, NginxServer, NginxSpec,
};
use lbprobe::profile::Profile;
use lbprobe::replay::run::{execute, quiet, ReplayJob};
use lbprobe::replay::{self, Request};
use lbprobe::report::replay::ReplayReport;
use lbprobe::target::{Role, Target};

mod support;
use support::findings::{loopback, start_backend};
use support::says::assert_says;

fn start_nginx(spec: &NginxSpec) -> Nginx {
    Nginx::start(spec).unwrap_or_else(|e| panic!("this test needs a real nginx: {e}"))
}

fn start_haproxy(spec: &HaproxySpec) -> Haproxy {
    Haproxy::start(spec).unwrap_or_else(|e| panic!("this test needs a real haproxy: {e}"))
}

async fn replay(input: &[u8], listener: &str, backend: Option<&str>, shrink: bool) -> ReplayReport {
    let parsed = replay::parse(input, None).unwrap_or_else(|e| panic!("{e}"));
    let job = ReplayJob {
        parsed,
        listener: Target::parse(Role::Listener, listener).unwrap(),
        backend: backend.map(|b| Target::parse(Role::Backend, b).unwrap()),
        limits: loopback(200, Duration::from_secs(3)),
        profile: Profile::auto(),
        mask: vec!["X-Api-Key".into()],
        shrink,
        curl: replay::curl::Defaults::default(),
    };
    execute(job, quiet(), lbprobe::probe::Interrupt::new()).await
}

fn summary(r: &ReplayReport) -> String {
    let mut out = format!("answer {} ({:?}: {})", r.answer, r.origin, r.who);
    for f in &r.findings {
        out.push_str(&format!("\n  {} {}: {}", f.cause, f.verdict, f.reason));
    }
    if let Some(s) = &r.shrink {
        out.push_str(&format!(
            "\n  minimal: {}\n  matters: {:?}\n  requests: {}",
            s.minimal.bytes, s.matters, s.requests
        ));
    }
    out.push_str(&format!("\n  notes: {:?}", r.notes));
    out
}

fn verdict(r: &ReplayReport, cause: &str) -> Option<Verdict> {
    r.findings
        .iter()
        .find(|f| f.cause == cause)
        .map(|f| f.verdict)
}

/// The replay's verdict for `cause` is `want` (`None`: no finding); the summary when not.
fn expect_verdict(r: &ReplayReport, cause: &str, want: Option<Verdict>) {
    assert_eq!(verdict(r, cause), want, "{cause}: {}", summary(r));
}

/// The minimal request as the listener got it, unmasked: from the shown bytes, which mask only
/// secrets this request does not carry once shrunk.
fn minimal(r: &ReplayReport) -> Request {
    let s = r
        .shrink
        .as_ref()
        .unwrap_or_else(|| panic!("no shrink: {}", summary(r)));
    let bytes = lbprobe::transport::unescape_bytes(&s.minimal.bytes).unwrap();
    replay::raw::parse(&bytes).unwrap().request
}

const SECRET_TOKEN: &str = "Bearer eyJhbGciOiJIUzI1NiJ9.c2VjcmV0.SIGNATURE";
const SECRET_COOKIE: &str = "sessionid=9f8e7d6c5b4a";
const SECRET_KEY: &str = "key-0123456789abcdef";

/// A browser's "Copy as cURL" with 30 headers in all, one of them an `X-Forwarded-For` of
/// `xff_bytes`.
fn browser_curl(url: &str, xff_bytes: usize) -> String {
    let xff: String = (0..)
        .map(|i| format!("10.{}.{}.{}", i % 200, (i / 200) % 250, i % 7))
        .scan(String::new(), |acc, ip| {
            if !acc.is_empty() {
                acc.push_str(", ");
            }
            acc.push_str(&ip);
            Some(acc.clone())
        })
        .find(|s| s.len() >= xff_bytes)
        .unwrap();
    let mut line = format!("curl '{url}' \\\n");
    let headers = [
        "accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8",
        "accept-language: en-GB,en;q=0.9,de;q=0.8",
        "cache-control: no-cache",
        "pragma: no-cache",
        "dnt: 1",
        "priority: u=0, i",
        "sec-ch-ua: \"Chromium\";v=\"124\", \"Not-A.Brand\";v=\"99\"",
        "sec-ch-ua-mobile: ?0",
        "sec-ch-ua-platform: \"Linux\"",
        "sec-fetch-dest: document",
        "sec-fetch-mode: navigate",
        "sec-fetch-site: same-origin",
        "sec-fetch-user: ?1",
        "upgrade-insecure-requests: 1",
        "user-agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
        "x-request-id: 4f1c2b8e-7d3a-4e59-9b0c-2a6f8d1e3c57",
        "x-correlation-id: c0ffee00-1234-4abc-8def-0123456789ab",
        "x-client-version: 3.14.159",
        "x-feature-flags: new-checkout,dark-mode,beta-search",
        "x-timezone: Europe/Berlin",
        "x-requested-with: XMLHttpRequest",
        "origin: https://shop.example.com",
        "referer: https://shop.example.com/cart",
        "x-forwarded-proto: https",
    ];
    for h in headers {
        line.push_str(&format!("  -H '{}' \\\n", h.replace('\'', "'\\''")));
    }
    line.push_str(&format!("  -H 'authorization: {SECRET_TOKEN}' \\\n"));
    line.push_str(&format!("  -H 'x-api-key: {SECRET_KEY}' \\\n"));
    line.push_str(&format!("  -H 'x-forwarded-for: {xff}' \\\n"));
    line.push_str(&format!("  -b '{SECRET_COOKIE}; theme=dark' \\\n"));
    line.push_str("  --compressed");
    line
}

/// No secret of the request anywhere in the report, in any format.
fn assert_no_secrets(r: &ReplayReport) {
    let json = lbprobe::report::to_json(r);
    let human = lbprobe::report::replay::render(
        r,
        lbprobe::report::Style {
            color: false,
            width: 100,
            verbose: true,
        },
    );
    // lbprobe's own words (the request's bytes may hold anything, `XMLHttpRequest` included).
    let mut words = vec![r.answer.clone(), r.who.clone(), r.exit_reason.clone()];
    words.extend(r.notes.iter().cloned());
    for f in &r.findings {
        words.push(f.reason.clone());
        words.extend(f.evidence.iter().map(|e| e.text.clone()));
    }
    words.extend(r.shrink.iter().flat_map(|s| s.matters.iter().cloned()));
    support::debug_text::assert_no_rust_debug("the replay report", &words.join("\n"));
    for text in [&json, &human] {
        for secret in ["eyJhbGciOiJIUzI1NiJ9", "9f8e7d6c5b4a", SECRET_KEY] {
            assert!(!text.contains(secret), "{secret} in the report:\n{text}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_browser_request_with_a_9kb_header_shrinks_to_it_and_host() {
    let backend = start_backend(BackendConfig::default()).await;
    let nginx = start_nginx(&NginxSpec::one(NginxServer::proxy(backend.url())));
    let line = browser_curl(
        "https://shop.example.com/cart/checkout?step=2&coupon=NONE",
        9 * 1024,
    );
    let parsed = replay::parse(line.as_bytes(), None).unwrap();
    assert_eq!(parsed.request.headers.len(), 30, "a 30-header request");
    let r = replay(line.as_bytes(), &nginx.url(0), Some(&backend.url()), true).await;
    let min = minimal(&r);
    let names: Vec<String> = min.headers.iter().map(|h| h.name_text()).collect();
    assert_eq!(names, ["Host", "x-forwarded-for"], "{}", summary(&r));
    assert_eq!(r.origin, Origin::Listener, "{}", summary(&r));
    expect_verdict(&r, "400.header-too-large", Some(Verdict::Reproduced));
    let shrink = r.shrink.as_ref().unwrap();
    assert!(
        shrink.matters[0].contains("`x-forwarded-for`"),
        "{:?}",
        shrink.matters
    );
    // The bound of the issue: 4 · log2(30) + 10 requests for the shrink.
    let bound = (4.0 * 30f64.log2() + 10.0).floor() as u32;
    assert!(
        shrink.requests <= bound,
        "{} requests > {bound}: {}",
        shrink.requests,
        summary(&r)
    );
    assert!(shrink.minimal.curl.is_some(), "{}", summary(&r));
    assert!(r
        .request
        .curl
        .as_deref()
        .unwrap()
        .contains("'authorization: ***'"));
    assert_no_secrets(&r);
    println!(
        "nginx 30 headers: {} shrink requests (bound {bound}), {} in all",
        shrink.requests, r.requests_sent
    );
}

/// Without --shrink the request is sent as given, once to each side, and classified by its
/// shape: a 9 KB header line makes it speak to 400.header-too-large, which nginx's own page
/// reproduces; nothing is said of URI limits it never tested.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_shrink_the_request_as_given_is_classified() {
    let backend = start_backend(BackendConfig::default()).await;
    let nginx = start_nginx(&NginxSpec::one(NginxServer::proxy(backend.url())));
    let line = browser_curl("http://shop.example.com/cart", 9 * 1024);
    let r = replay(line.as_bytes(), &nginx.url(0), Some(&backend.url()), false).await;
    assert!(r.shrink.is_none());
    assert_eq!(r.requests_sent, 2, "{}", summary(&r));
    assert_eq!(r.origin, Origin::Listener, "{}", summary(&r));
    expect_verdict(&r, "400.header-too-large", Some(Verdict::Reproduced));
    expect_verdict(&r, "414.uri-too-long", None);
    assert_eq!(r.exit_code, lbprobe::exit::FINDING);
    assert_no_secrets(&r);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_browser_request_with_a_header_over_its_buffer_shrinks_to_it() {
    let backend = start_backend(BackendConfig::default()).await;
    let haproxy = start_haproxy(&HaproxySpec::one(HaproxyFrontend::proxy(backend.url())));
    // HAProxy's default tune.bufsize is 16 384, of which 1 024 stay free for rewrites.
    let line = browser_curl("https://shop.example.com/cart", 20 * 1024);
    let r = replay(line.as_bytes(), &haproxy.url(0), Some(&backend.url()), true).await;
    let min = minimal(&r);
    let names: Vec<String> = min.headers.iter().map(|h| h.name_text()).collect();
    assert!(
        names.contains(&"x-forwarded-for".to_string()) && names.len() <= 2,
        "{}",
        summary(&r)
    );
    assert_eq!(r.origin, Origin::Listener, "{}", summary(&r));
    expect_verdict(&r, "400.header-too-large", Some(Verdict::Reproduced));
    let bound = (4.0 * 30f64.log2() + 10.0).floor() as u32;
    let shrink = r.shrink.as_ref().unwrap();
    assert!(shrink.requests <= bound, "{}", summary(&r));
    assert_no_secrets(&r);
    println!("HAProxy 30 headers: {} shrink requests", shrink.requests);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_lowercase_method_in_a_large_post_shrinks_to_the_request_line() {
    let backend = start_backend(BackendConfig::default()).await;
    let nginx = start_nginx(&NginxSpec::one(NginxServer::proxy(backend.url())));
    let body = "field=".to_string() + &"v".repeat(64 * 1024);
    let mut raw = "post /api/upload?draft=1 HTTP/1.1\r\nHost: shop.example.com\r\n".to_string();
    for i in 0..12 {
        raw.push_str(&format!("X-Meta-{i}: {}\r\n", "m".repeat(40)));
    }
    raw.push_str(&format!(
        "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    ));
    let r = replay(raw.as_bytes(), &nginx.url(0), Some(&backend.url()), true).await;
    let min = minimal(&r);
    assert_eq!(min.method, b"post", "{}", summary(&r));
    let names: Vec<String> = min.headers.iter().map(|h| h.name_text()).collect();
    assert_eq!(names, ["Host"], "{}", summary(&r));
    assert!(min.body.is_empty(), "{}", summary(&r));
    let shrink = r.shrink.as_ref().unwrap();
    assert!(
        shrink
            .matters
            .iter()
            .any(|m| m.contains("the method `post`")),
        "{}",
        summary(&r)
    );
    expect_verdict(&r, "400.malformed-request", Some(Verdict::Reproduced));
    // Neighbour: nothing about sizes.
    expect_verdict(&r, "400.header-too-large", None);
    // A raw request with a lowercase method: curl can send it, and the report gives the line.
    assert!(
        shrink.minimal.curl.as_deref().unwrap().contains("-X post"),
        "{}",
        summary(&r)
    );
}

fn long_query(bytes: usize) -> String {
    let mut q = String::from("/search?");
    let mut i = 0;
    while q.len() < bytes {
        q.push_str(&format!("f{i}={}&", "q".repeat(90)));
        i += 1;
    }
    q.pop();
    q
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_10kb_query_names_the_listeners_own_uri_limit() {
    let backend = start_backend(BackendConfig::default()).await;
    let nginx = start_nginx(&NginxSpec::one(NginxServer::proxy(backend.url())));
    let line = format!(
        "curl 'http://shop.example.com{}' -H 'X-Keep: 1'",
        long_query(10 * 1024)
    );
    let r = replay(line.as_bytes(), &nginx.url(0), Some(&backend.url()), true).await;
    assert_eq!(r.answer, "414 Request-URI Too Large", "{}", summary(&r));
    assert_eq!(r.origin, Origin::Listener, "{}", summary(&r));
    expect_verdict(&r, "414.uri-too-long", Some(Verdict::Reproduced));
    expect_verdict(&r, "414.backend-uri-limit", None);
    let min = minimal(&r);
    // The path does not matter; the query's first parameters, enough of them, do.
    assert!(min.target.starts_with(b"/?f0="), "{}", summary(&r));
    let names: Vec<String> = min.headers.iter().map(|h| h.name_text()).collect();
    assert_eq!(names, ["Host"], "{}", summary(&r));
    let matters = &r.shrink.as_ref().unwrap().matters;
    assert!(
        matters
            .iter()
            .any(|m| m.contains("request target") && m.contains("query")),
        "{matters:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_10kb_query_relayed_names_the_backends_uri_limit() {
    let backend = start_backend(BackendConfig::default().max_uri_bytes(4000)).await;
    let nginx = start_nginx(&NginxSpec::one(
        NginxServer::proxy(backend.url()).extra("large_client_header_buffers 4 32k;"),
    ));
    let line = format!("curl 'http://shop.example.com{}'", long_query(10 * 1024));
    let r = replay(line.as_bytes(), &nginx.url(0), Some(&backend.url()), true).await;
    assert!(r.answer.starts_with("414"), "{}", summary(&r));
    assert_eq!(r.origin, Origin::Backend, "{}", summary(&r));
    expect_verdict(&r, "414.backend-uri-limit", Some(Verdict::Reproduced));
    expect_verdict(&r, "414.uri-too-long", None);
    let min = minimal(&r);
    assert!(
        min.target.len() > 4000 && min.target.len() <= 10 * 1024 + 200,
        "{}",
        summary(&r)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_passes_says_so_and_does_not_shrink() {
    let backend = start_backend(BackendConfig::default()).await;
    let nginx = start_nginx(&NginxSpec::one(NginxServer::proxy(backend.url())));
    let line = browser_curl("http://shop.example.com/", 100);
    let r = replay(line.as_bytes(), &nginx.url(0), None, true).await;
    assert!(r.passes_now, "{}", summary(&r));
    assert_eq!(r.exit_code, 0);
    assert!(
        r.exit_reason.contains("the request passes now"),
        "{}",
        r.exit_reason
    );
    assert!(r.shrink.is_none());
    assert_eq!(r.requests_sent, 1, "{}", summary(&r));
    assert!(
        r.findings.iter().all(|f| f.verdict != Verdict::Reproduced),
        "{}",
        summary(&r)
    );
    assert_no_secrets(&r);
}

/// Replays the HAR fixture `name` to nginx in front of a lab backend and shrinks it: its
/// second entry, recorded as nginx's 400 for its cookies, is 400.header-too-large again and
/// shrinks to Host and Cookie (in the order `headers` gives, the recording's), the cookie
/// values masked. Returns the report and what matters, for each test's own checks.
async fn a_har_fixture_replays_and_shrinks(name: &str, headers: [&str; 2]) -> ReplayReport {
    let backend = start_backend(BackendConfig::default()).await;
    let nginx = start_nginx(&NginxSpec::one(NginxServer::proxy(backend.url())));
    let path = format!(
        "{}/tests/fixtures/replay/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let har = std::fs::read(path).unwrap();
    let parsed = replay::parse(&har, None).unwrap();
    assert_eq!(
        parsed.source,
        replay::Source::Har {
            entry: 2,
            status: 400,
            over: None,
        }
    );
    let r = replay(&har, &nginx.url(0), Some(&backend.url()), true).await;
    expect_verdict(&r, "400.header-too-large", Some(Verdict::Reproduced));
    let min = minimal(&r);
    let names: Vec<String> = min.headers.iter().map(|h| h.name_text()).collect();
    assert_eq!(names, headers, "{}", summary(&r));
    let shrink = r.shrink.as_ref().unwrap();
    // The cookie values are masked in the minimal request too.
    assert!(
        shrink.minimal.bytes.contains("Cookie: ***"),
        "{}",
        shrink.minimal.bytes
    );
    r
}

/// A HAR as Chromium's developer tools save it ("Save all as HAR with content"): an entry that
/// passed and one refused for its cookies, written in that layout by a script (see the
/// fixture's note).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chromium_har_replays_and_shrinks() {
    let r = a_har_fixture_replays_and_shrinks("chromium.har", ["Host", "Cookie"]).await;
    let matters = &r.shrink.as_ref().unwrap().matters;
    assert!(
        matters
            .iter()
            .any(|m| m.starts_with("the cookie `trk` in a `Cookie` header")),
        "{matters:?}"
    );
}

/// A HAR recorded by a real headless Chromium (Debian's chromium 156 through Playwright's
/// recorder, `scripts/record-har.py`) against the demo lab over HTTP/1.1: the page as a new
/// visitor (200), then with a session cookie and three 3 000-byte trackers (nginx's 400).
/// Replayed to nginx it fails the same way and shrinks to Host and the trackers; Playwright's
/// recorder lists the headers in alphabetical order, not the wire's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_har_recorded_by_headless_chromium_replays_and_shrinks() {
    let r = a_har_fixture_replays_and_shrinks("chromium-h1.har", ["Cookie", "Host"]).await;
    let matters = &r.shrink.as_ref().unwrap().matters;
    assert!(
        matters.iter().any(|m| m.contains("`trk1`, `trk2`, `trk3`")),
        "{matters:?}"
    );
    assert!(
        !matters.iter().any(|m| m.contains("session")),
        "the session cookie is not what matters: {matters:?}"
    );
    assert!(
        r.notes.iter().all(|n| !n.contains("the recording has")),
        "{:?}",
        r.notes
    );
}

/// The same visit recorded over HTTP/2: nginx passed the cookies there (its http2 limits are
/// its own), and the replay, which speaks HTTP/1.1, gets 400. The report says so instead of
/// passing the 400 off as what the browser saw. Neighbour: the HTTP/1.1 recording above, whose
/// replay matches what was recorded, has no such note.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_h2_recording_that_passed_is_said_to_differ_over_http_1_1() {
    let backend = start_backend(BackendConfig::default()).await;
    let nginx = start_nginx(&NginxSpec::one(NginxServer::proxy(backend.url())));
    let har = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/replay/chromium-h2.har"
    ))
    .unwrap();
    let parsed = replay::parse(&har, Some(2)).unwrap_or_else(|e| panic!("{e}"));
    let job = ReplayJob {
        parsed,
        listener: Target::parse(Role::Listener, &nginx.url(0)).unwrap(),
        backend: None,
        limits: loopback(5, Duration::from_secs(3)),
        profile: Profile::auto(),
        mask: Vec::new(),
        shrink: false,
        curl: replay::curl::Defaults::default(),
    };
    let r = execute(job, quiet(), lbprobe::probe::Interrupt::new()).await;
    assert!(
        r.notes.iter().any(
            |n| n.contains("the recording has 200 for this request over HTTP/2.0")
                && n.contains("gets 400")
        ),
        "{}",
        summary(&r)
    );
}

fn lbprobe(args: &[&str], stdin: &[u8]) -> (i32, String, String) {
    use std::io::Write;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_lbprobe"))
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Bad input is exit 2 with where the problem is; nothing is sent (the listener's port is
/// closed: a send would be exit 3).
#[test]
fn unparseable_curl_and_har_exit_2_with_the_position() {
    let closed = "http://127.0.0.1:9";
    let (code, _, err) = lbprobe(
        &["replay", "-", "--listener", closed],
        b"curl 'http://a.test/' \\\n  -H 'X-A: 1",
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("the curl command line, line 2 column 6: this single quote is never closed"),
        "{err}"
    );
    let (code, _, err) = lbprobe(
        &["replay", "-", "--listener", closed],
        b"curl http://a.test/ --proxy http://p:3128",
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("line 1 column 21") && err.contains("--proxy"),
        "{err}"
    );
    let (code, _, err) = lbprobe(
        &["replay", "-", "--listener", closed],
        b"{\"log\": {\"entries\": [\n  {\"request\": {\"method\": \"GET\"}, }]}}",
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("the HAR file, line 2 column"), "{err}");
    let har = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/replay/chromium.har"
    );
    let (code, _, err) = lbprobe(&["replay", har, "--entry", "7", "--listener", closed], b"");
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("the file has 2 entries"), "{err}");
    // Input that reads, towards a port nobody listens on: exit 3, said in words.
    let (code, out, err) = lbprobe(
        &["replay", "-", "--listener", closed, "--color", "never"],
        b"curl http://a.test/",
    );
    assert_eq!(code, 3, "{out}{err}");
    assert!(out.contains("the listener could not be reached"), "{out}");
    support::debug_text::assert_no_rust_debug("replay to a closed port", &out);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_says_the_request_passes_now_and_exits_0() {
    let backend = start_backend(BackendConfig::default()).await;
    let url = backend.url();
    let (code, out, err) = tokio::task::spawn_blocking(move || {
        lbprobe(
            &["replay", "-", "--listener", &url, "--shrink", "--color", "never"],
            b"GET /fine HTTP/1.1\r\nHost: shop.example.com\r\nCookie: sessionid=9f8e7d6c5b4a\r\n\r\n",
        )
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{out}{err}");
    assert_says(
        &out,
        &["The request passes now", "Exit 0: the request passes now"],
    );
    assert!(!out.contains("minimal request"), "{out}");
    assert!(!out.contains("9f8e7d6c5b4a"), "{out}");
    assert!(out.contains("1 request sent"), "{out}");
}
