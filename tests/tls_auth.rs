//! Exact TLS targeting against a real nginx: a listener whose certificate a private CA signed
//! (`--cacert`, `ca-file:`), one that demands a client certificate (`--cert`/`--key`,
//! `client-cert:`), and the backend's own SNI (`--backend-sni`). nginx-backed tests fail (never
//! skip) when nginx is missing.

mod support;
use support::findings::{start_haproxy, start_nginx};

use std::path::Path;

use lbprobe::lab::cert::LabCa;
use lbprobe::lab::{
    BackendConfig, HaproxyFrontend, HaproxySpec, LabBackend, Nginx, NginxServer, NginxSpec,
};
use serde_json::Value;
use support::report_json::{finding, json, lbprobe, lbprobe_async, observation, TIGHT};

/// The listener's baseline GET, as the report's JSON holds it.
fn baseline(report: &Value) -> &Value {
    observation(report, "protocol", "baseline", "listener")
}

struct Pki {
    dir: tempfile::TempDir,
    ca: LabCa,
}

impl Pki {
    fn new() -> Pki {
        Pki {
            dir: tempfile::tempdir().unwrap(),
            ca: LabCa::new("lbprobe test CA").unwrap(),
        }
    }

    fn write(&self, name: &str, text: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }
}

/// nginx over TLS with a CA-signed certificate for localhost, asking clients for a certificate
/// of the same CA (`ssl_verify_client on`) when `mtls`.
fn nginx(pki: &Pki, mtls: bool) -> Nginx {
    let ca_file = pki.write("ca.pem", &pki.ca.cert_pem);
    let extra = if mtls {
        format!("ssl_verify_client on; ssl_client_certificate \"{ca_file}\";")
    } else {
        String::new()
    };
    start_nginx(&NginxSpec {
        cert: Some(pki.ca.server(&["localhost", "127.0.0.1"]).unwrap()),
        ..NginxSpec::one(NginxServer::fixed().tls(true).extra(extra))
    })
}

fn scan(nginx: &Nginx, extra: &[&str]) -> std::process::Output {
    let url = format!("https://localhost:{}/", nginx.port(0));
    let mut args = vec![
        "scan",
        "--listener",
        &url,
        "--probes",
        "protocol",
        "--format",
        "json",
    ];
    args.extend_from_slice(TIGHT);
    args.extend_from_slice(extra);
    lbprobe(&args)
}

#[test]
fn a_private_ca_verifies_the_listener_that_the_web_pki_does_not() {
    let pki = Pki::new();
    let nginx = nginx(&pki, false);
    let ca = pki.path("ca.pem");

    let verified = json(&scan(&nginx, &["--cacert", &ca]));
    let b = baseline(&verified);
    assert_eq!(b["exchange"]["response"]["status"], 200, "{b:#}");
    // Debian's nginx 1.22 offers TLS 1.2 by default, later ones 1.3 as well.
    assert!(
        b["exchange"]["tls_info"]["version"]
            .as_str()
            .is_some_and(|v| v.starts_with("TLSv1.")),
        "{b:#}"
    );
    assert_eq!(verified["targets"][0]["tls_verify"], true);
    assert_eq!(verified["targets"][0]["ca_file"], ca.as_str());

    // Without the CA, Mozilla's roots do not know the lab CA: the handshake fails and says so.
    let unknown = json(&scan(&nginx, &[]));
    let end = &baseline(&unknown)["exchange"]["end"];
    assert_eq!(end["kind"], "tls_failed", "{end:#}");
    assert!(
        end["detail"].as_str().unwrap().contains("unknown issuer"),
        "{end:#}"
    );
}

/// Requests whose TLS handshake failed never reached the listener's HTTP layer, so what they
/// did not get says nothing: without the CA, the malformed variants and the latency requests
/// leave 400.malformed-request and the 502/504 slow-backend causes inconclusive, never ruled
/// out ("none of the 140 variants got 400" was said of variants that got no answer at all).
/// Neighbour: the same scan with the CA answers, and the same causes are decided.
#[test]
fn requests_that_failed_their_handshake_rule_nothing_out() {
    let pki = Pki::new();
    let nginx = nginx(&pki, false);
    let ca = pki.path("ca.pem");
    let url = format!("https://localhost:{}/", nginx.port(0));
    let verdicts = |extra: &[&str]| {
        let mut args = vec![
            "scan",
            "--listener",
            &url,
            "--probes",
            "protocol,malformed,latency",
            "--format",
            "json",
        ];
        args.extend_from_slice(TIGHT);
        args.extend_from_slice(extra);
        let out = lbprobe(&args);
        let report = json(&out);
        let verdicts = [
            "400.malformed-request",
            "502.backend-slow",
            "504.backend-slow",
        ]
        .map(|cause| {
            finding(&report, cause)["verdict"]
                .as_str()
                .unwrap_or("")
                .to_string()
        });
        (out.status.code(), report, verdicts)
    };
    let (code, report, without_ca) = verdicts(&[]);
    assert_eq!(
        without_ca,
        ["inconclusive", "inconclusive", "inconclusive"],
        "no handshake, no verdict"
    );
    // Nothing was probed: not a success a CI job could go green on.
    assert_eq!(code, Some(3), "{}", report["exit_reason"]);
    let unreachable = report["unreachable"].to_string();
    assert!(
        unreachable.contains("every TLS handshake failed"),
        "{unreachable}"
    );
    let (code, _, with_ca) = verdicts(&["--cacert", &ca]);
    assert_ne!(code, Some(3));
    let [malformed, slow502, slow504] = with_ca;
    assert_eq!(
        malformed, "reproduced",
        "nginx refuses some variants with 400"
    );
    assert_eq!(
        (slow502.as_str(), slow504.as_str()),
        ("ruled_out", "ruled_out")
    );
}

#[test]
fn a_listener_that_demands_a_client_certificate_gets_one() {
    let pki = Pki::new();
    let nginx = nginx(&pki, true);
    let ca = pki.path("ca.pem");
    let client = pki.ca.client("client.lbprobe.test").unwrap();
    let cert = pki.write("client.pem", &client.cert_pem);
    let key = pki.write("client.key", &client.key_pem);

    let with = json(&scan(
        &nginx,
        &["--cacert", &ca, "--cert", &cert, "--key", &key],
    ));
    let b = baseline(&with);
    assert_eq!(b["exchange"]["response"]["status"], 200, "{b:#}");

    assert_eq!(
        finding(&with, "400.client-certificate-required")["verdict"],
        "ruled_out"
    );

    // nginx finishes the handshake without a certificate and answers 400 itself.
    let without = json(&scan(&nginx, &["--cacert", &ca]));
    let f = finding(&without, "400.client-certificate-required");
    assert_eq!(f["verdict"], "reproduced", "{f:#}");
    assert!(
        f["reason"].as_str().unwrap().contains("none was presented"),
        "{f:#}"
    );
    let b = baseline(&without);
    assert_eq!(b["exchange"]["response"]["status"], 400, "{b:#}");
    assert!(
        b["exchange"]["response"]["body_prefix"]
            .as_str()
            .unwrap()
            .contains("No required SSL certificate was sent"),
        "{b:#}"
    );

    // The key in the certificate's file works too (curl's --cert with both).
    let both = pki.write(
        "both.pem",
        &format!("{}{}", client.cert_pem, client.key_pem),
    );
    let b = json(&scan(&nginx, &["--cacert", &ca, "--cert", &both]));
    assert_eq!(baseline(&b)["exchange"]["response"]["status"], 200);

    // A certificate of another CA is presented and refused: nginx's other 400 page.
    let stranger = LabCa::new("another CA")
        .unwrap()
        .client("stranger.lbprobe.test")
        .unwrap();
    let stranger = pki.write(
        "stranger.pem",
        &format!("{}{}", stranger.cert_pem, stranger.key_pem),
    );
    let refused = json(&scan(&nginx, &["--cacert", &ca, "--cert", &stranger]));
    let f = finding(&refused, "400.client-certificate-required");
    assert_eq!(f["verdict"], "reproduced", "{f:#}");
    assert!(
        f["reason"]
            .as_str()
            .unwrap()
            .contains("refused the one presented"),
        "{f:#}"
    );
}

/// The protocol probes to `url`, its certificate unverified, from a test that serves a backend.
async fn scan_insecure(url: &str, extra: &[&str]) -> Value {
    let mut args = vec![
        "scan",
        "--listener",
        url,
        "--insecure",
        "--probes",
        "protocol",
    ];
    args.extend_from_slice(&["--format", "json"]);
    args.extend_from_slice(TIGHT);
    args.extend_from_slice(extra);
    json(&lbprobe_async(&args).await)
}

/// HAProxy with `verify required` ends the handshake with an alert instead of answering 400.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_refuses_a_missing_client_certificate_in_the_handshake() {
    let pki = Pki::new();
    let ca = pki.write("ca.pem", &pki.ca.cert_pem);
    let backend = LabBackend::start(BackendConfig::default()).await.unwrap();
    let haproxy = start_haproxy(&HaproxySpec {
        frontends: vec![HaproxyFrontend {
            bind_extra: format!("ca-file \"{ca}\" verify required"),
            ..HaproxyFrontend::proxy(backend.url()).tls(true)
        }],
        ..HaproxySpec::default()
    });
    let url = format!("https://127.0.0.1:{}/", haproxy.port(0));
    let without = scan_insecure(&url, &[]).await;
    let f = finding(&without, "400.client-certificate-required");
    assert_eq!(f["verdict"], "reproduced", "{f:#}");
    assert!(
        f["reason"].as_str().unwrap().contains("none was presented"),
        "{f:#} {:#}",
        baseline(&without)
    );

    let client = pki.ca.client("client.lbprobe.test").unwrap();
    let both = pki.write(
        "client.pem",
        &format!("{}{}", client.cert_pem, client.key_pem),
    );
    let with = scan_insecure(&url, &["--cert", &both]).await;
    assert_eq!(baseline(&with)["exchange"]["response"]["status"], 200);
    assert_eq!(
        finding(&with, "400.client-certificate-required")["verdict"],
        "ruled_out"
    );
}

#[test]
fn broken_tls_files_are_input_errors_before_anything_is_sent() {
    let pki = Pki::new();
    let missing = pki.path("missing.pem");
    let out = lbprobe(&[
        "scan",
        "--listener",
        "https://127.0.0.1:9/",
        "--cacert",
        &missing,
    ]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot read CA file") && stderr.contains("missing.pem"),
        "{stderr}"
    );

    // In a scenario the error points at the key, relative paths meaning the scenario's dir.
    let scenario = pki.write(
        "s.yaml",
        "targets:\n  listener:\n    url: https://127.0.0.1:9/\n    client-cert: nowhere.pem\n",
    );
    let out = lbprobe(&["run", &scenario]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("s.yaml:4:18"), "{stderr}");
    assert!(
        stderr.contains(&Path::new(&pki.path("nowhere.pem")).display().to_string()),
        "{stderr}"
    );
}

#[test]
fn a_scenario_names_the_ca_the_client_certificate_and_where_to_connect() {
    let pki = Pki::new();
    let nginx = nginx(&pki, true);
    let client = pki.ca.client("client.lbprobe.test").unwrap();
    pki.write("client.pem", &client.cert_pem);
    pki.write("client.key", &client.key_pem);
    // The URL names a host that never reaches DNS; connect-to points at the nginx.
    let scenario = pki.write(
        "mtls.yaml",
        &format!(
            "targets:\n  listener:\n    url: https://localhost:{port}/\n    sni: localhost\n    \
             ca-file: ca.pem\n    client-cert: client.pem\n    client-key: client.key\n    \
             connect-to: \"127.0.0.1:{port}\"\n    ip-version: 4\n\
             probes: [protocol, methods]\nlimits: {{ max-rate: 500, request-timeout: 3s }}\n",
            port = nginx.port(0)
        ),
    );
    let out = lbprobe(&["run", &scenario, "--format", "json"]);
    let report = json(&out);
    let b = baseline(&report);
    assert_eq!(b["exchange"]["response"]["status"], 200, "{b:#}");
    assert_eq!(
        b["exchange"]["peer"],
        format!("127.0.0.1:{}", nginx.port(0)),
        "{b:#}"
    );
    // The client library's checks present the same certificate.
    let get = observation(&report, "methods", "GET", "listener");
    assert_eq!(get["exchange"]["response"]["status"], 200, "{get:#}");

    let human = lbprobe(&["run", &scenario]);
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(
        text.contains("client certificate") && text.contains("connecting to 127.0.0.1:"),
        "{text}"
    );
    // Under the target: where the baseline went and what TLS and ALPN settled on.
    let under = text
        .lines()
        .find(|l| l.trim_start().starts_with("reached 127.0.0.1:"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        under.contains("TLSv1.") && under.contains("ALPN http/1.1"),
        "{under}"
    );
}

#[test]
fn the_backend_gets_its_own_server_name() {
    let pki = Pki::new();
    let ca_file = pki.write("ca.pem", &pki.ca.cert_pem);
    let nginx = start_nginx(&NginxSpec {
        cert: Some(pki.ca.server(&["backend.lbprobe.test"]).unwrap()),
        ..NginxSpec::one(NginxServer::fixed().tls(true))
    });
    let url = format!("https://127.0.0.1:{}/", nginx.port(0));
    let mut args = vec![
        "scan",
        "--backend",
        &url,
        "--cacert",
        &ca_file,
        "--probes",
        "protocol",
        "--format",
        "json",
    ];
    args.extend_from_slice(TIGHT);
    // Verified against the name on the certificate, not the URL's address.
    let mut named = args.clone();
    named.extend_from_slice(&["--backend-sni", "backend.lbprobe.test"]);
    let report = json(&lbprobe(&named));
    let b = observation(&report, "protocol", "baseline", "backend");
    assert_eq!(b["exchange"]["response"]["status"], 200, "{b:#}");
    assert_eq!(report["targets"][0]["sni"], "backend.lbprobe.test");

    let report = json(&lbprobe(&args));
    let b = observation(&report, "protocol", "baseline", "backend");
    assert_eq!(b["exchange"]["end"]["kind"], "tls_failed", "{b:#}");
}
