//! TLS backends behind a real nginx (Debian's /usr/sbin/nginx): a protocol mismatch proven
//! without trusting the backend's certificate, the certificate reported as its own fact in
//! words, an http:// backend URL on a TLS port, and no Rust Debug text in what a person reads.
//! When nginx is missing these tests fail, naming the binary looked for: they never skip.

mod support;

use std::sync::Arc;
use std::time::Duration;

use lbprobe::classify::Verdict;
use lbprobe::lab::cert::LabCa;
use lbprobe::lab::{LabCert, Nginx, NginxServer, NginxSpec};
use lbprobe::probe::{Limits, Plan, ProbeSpec};
use lbprobe::profile::Profile;
use lbprobe::report::{render, Format, Report, Style};
use lbprobe::run::{self, Job};
use lbprobe::target::{Role, Target};
use lbprobe::transport::ConnEnd;

use support::debug_text::assert_no_rust_debug;
use support::findings::{assert_reason, assert_verdict, finding, start_nginx, summary};
use support::report_json::{json, lbprobe_async, TIGHT};

/// A self-signed certificate with basic constraints CA:TRUE, as `openssl req -x509` makes by
/// default and as many backends are set up: rustls calls it "CA used as end entity".
fn ca_as_server_cert() -> LabCert {
    let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    let mut params = rcgen::CertificateParams::new(names).expect("params");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "backend.lbprobe.test");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = params.self_signed(&key).expect("self-signed");
    LabCert {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

/// An nginx TLS port presenting `cert`, answering 200 (or, with `extra`, as it says).
fn tls_backend(cert: LabCert, extra: &str) -> Nginx {
    start_nginx(&NginxSpec {
        servers: vec![NginxServer::fixed().tls(true).extra(extra)],
        http_extra: String::new(),
        cert: Some(cert),
    })
}

fn proxy_to(upstream: String) -> Nginx {
    start_nginx(&NginxSpec::one(NginxServer::proxy(upstream)))
}

/// A target as a user gives it: certificates verified against the web PKI.
fn target(role: Role, url: &str) -> Target {
    Target::parse(role, url).unwrap_or_else(|e| panic!("{url}: {e}"))
}

fn job(listener: Option<Target>, backend: Option<Target>, probes: Vec<ProbeSpec>) -> Job {
    Job::new(
        "tls-backend",
        "tests/tls_backend.rs",
        Plan::new(listener, backend)
            // The default: chosen from the listener's own answers.
            .with_profile(Profile::auto())
            .with_probes(probes)
            .with_limits(Limits {
                max_requests: 200,
                max_rate: 500.0,
                max_duration: Duration::from_secs(30),
                request_timeout: Duration::from_secs(3),
            }),
    )
}

async fn execute(job: Job) -> Report {
    run::execute(job, Arc::new(|_| {})).await
}

/// Scan `listener` and `backend` with the protocol family only.
async fn scan(listener: &str, backend: &str) -> Report {
    execute(job(
        Some(target(Role::Listener, listener)),
        Some(target(Role::Backend, backend)),
        vec![ProbeSpec::Protocol],
    ))
    .await
}

fn human(report: &Report) -> String {
    render(report, Format::Human, Style::plain())
}

/// The evidence line about the backend's certificate.
fn certificate_line(evidence: &str) -> &str {
    evidence
        .lines()
        .find(|l| l.contains("the backend's certificate"))
        .unwrap_or_else(|| panic!("no word on the backend's certificate:\n{evidence}"))
}

/// `proxy_pass http://` to an nginx TLS port whose certificate lbprobe cannot verify: the
/// handshake says TLS, nginx relays the backend's "plain HTTP request was sent to HTTPS port"
/// page, and that is enough; the certificate is its own note, in words.
#[tokio::test]
async fn plain_proxy_to_a_self_signed_tls_backend_is_confirmed_without_trusting_it() {
    let backend = tls_backend(ca_as_server_cert(), "");
    let nginx = proxy_to(format!("http://127.0.0.1:{}", backend.port(0)));
    let report = scan(&nginx.url(0), &backend.url(0)).await;

    let ev = assert_verdict(&report, "400.backend-expects-https", Verdict::Confirmed);
    assert!(ev.contains("completed a TLSv1."), "{ev}");
    assert!(
        ev.contains("The plain HTTP request was sent to HTTPS port")
            && ev.contains("the page nginx answers plain HTTP on a TLS port with"),
        "{ev}"
    );
    // lbprobe's own request to the backend failed its verified handshake, and says why.
    assert!(
        ev.contains("straight to the backend got no HTTP answer: TLS handshake failed"),
        "{ev}"
    );
    let cert = certificate_line(&ev);
    for words in [
        "does not verify against the web PKI's roots",
        "self-signed",
        "a CA certificate (basic constraints CA:TRUE",
        "skip verification (nginx proxy_ssl_verify off, the default)",
        "trust this CA (proxy_ssl_trusted_certificate)",
    ] {
        assert!(cert.contains(words), "{words:?} missing: {cert}");
    }
    assert!(
        report.notes.iter().any(|n| n.contains("speaks TLS")
            && n.contains("self-signed")
            && n.contains("--insecure")),
        "no note on the certificate: {:?}",
        report.notes
    );
    assert!(
        nginx
            .access_log()
            .contains("status=400 upstream_status=400"),
        "{}",
        nginx.access_log()
    );
    assert_no_rust_debug("the human report", &human(&report));
}

/// The neighbour set up right: `proxy_pass https://` (nginx does not verify by default) to
/// the same backend. Valid requests pass; the certificate note stays.
#[tokio::test]
async fn https_proxy_to_the_same_backend_rules_it_out() {
    let backend = tls_backend(ca_as_server_cert(), "");
    let nginx = proxy_to(format!("https://127.0.0.1:{}", backend.port(0)));
    let report = scan(&nginx.url(0), &backend.url(0)).await;
    let ev = assert_verdict(&report, "400.backend-expects-https", Verdict::RuledOut);
    assert!(ev.contains("through the listener got 200 OK"), "{ev}");
    assert!(
        certificate_line(&ev).contains("self-signed"),
        "{}",
        summary(&report)
    );
    assert_no_rust_debug("the human report", &human(&report));
}

/// A plain-HTTP backend that answers 400 to everything: the 400 through the listener is the
/// backend's own, not a protocol mismatch.
#[tokio::test]
async fn a_plain_backend_that_answers_400_itself_is_not_confirmed() {
    let backend = start_nginx(&NginxSpec::one(NginxServer::fixed().extra("return 400;")));
    let nginx = proxy_to(format!("http://127.0.0.1:{}", backend.port(0)));
    let report = scan(&nginx.url(0), &backend.url(0)).await;
    let f = finding(&report, "400.backend-expects-https");
    assert_eq!(f.verdict, Verdict::RuledOut, "{}", summary(&report));
    assert!(f.reason.contains("speaks plain HTTP"), "{}", f.reason);
}

/// A TLS backend that answers 400 to everything, behind a listener that speaks TLS to it: the
/// 400 comes through without the plain-HTTP page, and lbprobe cannot ask the backend itself
/// (its certificate does not verify), so the verdict stays open.
#[tokio::test]
async fn a_tls_backend_that_answers_400_itself_is_not_confirmed() {
    let backend = tls_backend(ca_as_server_cert(), "return 400;");
    let nginx = proxy_to(format!("https://127.0.0.1:{}", backend.port(0)));
    let report = scan(&nginx.url(0), &backend.url(0)).await;
    assert_reason(
        &report,
        "400.backend-expects-https",
        Verdict::Inconclusive,
        "may be the listener's own or the backend's",
    );
}

/// A backend named `http://` whose port speaks TLS, behind a listener that forwards plain
/// HTTP, scanned the way a user would (`lbprobe scan`), without and with `--cacert`: TLS bytes
/// are never read as a malformed HTTP answer, the report says the port speaks TLS, and with
/// the CA the direct requests verify.
#[tokio::test]
async fn an_http_backend_url_on_a_tls_port_uses_the_cacert_and_reads_no_tls_as_http() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = LabCa::new("lbprobe test CA").expect("CA");
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca.cert_pem).expect("writing the CA");
    let ca_file = ca_file.to_str().expect("UTF-8 path").to_string();
    let backend = tls_backend(ca.server(&["localhost", "127.0.0.1"]).expect("cert"), "");
    let backend_url = format!("http://127.0.0.1:{}/", backend.port(0));
    let nginx = proxy_to(format!("http://127.0.0.1:{}", backend.port(0)));
    let listener_url = nginx.url(0);

    let scan_cli = |extra: Vec<String>| {
        let listener_url = listener_url.clone();
        let backend_url = backend_url.clone();
        async move {
            let mut args: Vec<String> = [
                "scan",
                "--listener",
                &listener_url,
                "--backend",
                &backend_url,
                "--probes",
                "protocol,response",
                "--format",
                "json",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            args.extend(TIGHT.iter().map(|s| s.to_string()));
            args.extend(extra);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            json(&lbprobe_async(&args).await)
        }
    };
    let find = |report: &serde_json::Value, cause: &str| -> serde_json::Value {
        report["findings"]
            .as_array()
            .and_then(|all| all.iter().find(|f| f["cause"] == cause))
            .cloned()
            .unwrap_or_else(|| panic!("no finding {cause}: {report:#}"))
    };
    let notes = |report: &serde_json::Value| -> Vec<String> {
        report["notes"]
            .as_array()
            .map(|n| {
                n.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let people_read = |report: &serde_json::Value| -> String {
        let mut text = notes(report).join("\n");
        for f in report["findings"].as_array().into_iter().flatten() {
            text.push_str(&format!("\n{}", f["reason"].as_str().unwrap_or("")));
            for e in f["evidence"].as_array().into_iter().flatten() {
                text.push_str(&format!("\n{}", e["text"].as_str().unwrap_or("")));
            }
        }
        text
    };

    for (with_ca, extra) in [
        (false, Vec::new()),
        (true, vec!["--cacert".to_string(), ca_file.clone()]),
    ] {
        let report = scan_cli(extra).await;
        let run = if with_ca { "with --cacert" } else { "without" };
        let malformed = find(&report, "502.malformed-backend-response");
        assert_ne!(malformed["verdict"], "confirmed", "{run}: {malformed:#}");
        let notes = notes(&report);
        assert!(
            notes
                .iter()
                .any(|n| n.contains("speaks TLS though its URL says http")),
            "{run}: {notes:?}"
        );
        assert_eq!(
            find(&report, "400.backend-expects-https")["verdict"],
            "confirmed",
            "{run}: {report:#}"
        );
        let baseline = report["observations"]
            .as_array()
            .and_then(|all| {
                all.iter()
                    .find(|o| o["variant"] == "baseline" && o["role"] == "backend")
            })
            .cloned()
            .unwrap_or_else(|| panic!("{run}: no backend baseline"));
        if with_ca {
            assert!(
                notes.iter().any(|n| n.contains(&format!(
                    "its certificate verifies against the CA file {ca_file}"
                ))),
                "{run}: {notes:?}"
            );
            assert_eq!(
                baseline["exchange"]["response"]["status"], 200,
                "{run}: {baseline:#}"
            );
            assert!(baseline["exchange"]["tls_info"]["version"].is_string());
        } else {
            assert!(
                notes.iter().any(|n| n.contains(
                    "its certificate does not verify against the web PKI's roots: unknown issuer"
                )),
                "{run}: {notes:?}"
            );
            assert_eq!(baseline["exchange"]["end"]["kind"], "tls_failed");
        }
        // The temporary directory's random name is no identifier.
        let text = people_read(&report).replace(&ca_file, "ca.pem");
        assert_no_rust_debug(&format!("the report {run}"), &text);
    }
}

/// A run where nothing answers: the `unreachable` list and every finding say why in words.
#[tokio::test]
async fn unreachable_sides_are_described_in_words() {
    let closed = || {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let report = execute(job(
        Some(target(
            Role::Listener,
            &format!("https://127.0.0.1:{}/", closed()),
        )),
        Some(target(
            Role::Backend,
            &format!("http://127.0.0.1:{}/", closed()),
        )),
        vec![
            ProbeSpec::Protocol,
            ProbeSpec::Malformed { variants: None },
            ProbeSpec::Methods { methods: None },
            ProbeSpec::Connect { attempts: 2 },
            ProbeSpec::Response,
            ProbeSpec::Partial {
                max_wait: Duration::from_secs(1),
            },
        ],
    ))
    .await;
    assert_eq!(report.unreachable.len(), 2, "{:?}", report.unreachable);
    assert!(
        report
            .unreachable
            .iter()
            .all(|u| u.ends_with(": connection refused")),
        "{:?}",
        report.unreachable
    );
    assert_no_rust_debug("the human report", &human(&report));
}

/// A TLS listener whose certificate does not verify: every family's failure says why in
/// words, the client library's (reqwest) included.
#[tokio::test]
async fn an_unverifiable_listener_is_described_in_words() {
    let nginx = tls_backend(ca_as_server_cert(), "");
    let report = execute(job(
        Some(target(Role::Listener, &nginx.url(0))),
        None,
        vec![
            ProbeSpec::Protocol,
            ProbeSpec::Malformed { variants: None },
            ProbeSpec::Methods { methods: None },
            ProbeSpec::Response,
            ProbeSpec::Partial {
                max_wait: Duration::from_secs(1),
            },
        ],
    ))
    .await;
    let text = human(&report);
    assert!(
        text.contains("a CA certificate (basic constraints CA:TRUE"),
        "{text}"
    );
    assert_no_rust_debug("the human report", &text);
}

#[test]
fn connection_endings_read_as_words() {
    let cases = [
        (ConnEnd::ConnectRefused, "connection refused"),
        (
            ConnEnd::Unreachable("No route to host (os error 113)".into()),
            "unreachable: No route to host (os error 113)",
        ),
        (
            ConnEnd::TlsFailed("invalid certificate: unknown issuer".into()),
            "TLS handshake failed: invalid certificate: unknown issuer",
        ),
        (ConnEnd::Reset, "reset (RST)"),
    ];
    for (end, words) in cases {
        assert_eq!(end.to_string(), words);
    }
}
