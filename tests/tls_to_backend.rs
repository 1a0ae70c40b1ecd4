//! `502.tls-handshake-failed-to-backend` against a real nginx (`proxy_ssl_verify on`) and a
//! real HAProxy (`ssl verify required`) in front of a real nginx TLS backend: an expired
//! certificate, one issued for another name, one from a CA the listener does not trust; and
//! the neighbours that must not confirm it: a certificate that verifies, a plain HTTP backend.
//! When nginx or HAProxy is missing these tests fail, naming the binary looked for.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use lbprobe::classify::Verdict;
use lbprobe::lab::cert::LabCa;
use lbprobe::lab::{Haproxy, HaproxyFrontend, HaproxySpec, LabCert, Nginx, NginxServer, NginxSpec};
use lbprobe::probe::{Limits, Plan, ProbeSpec};
use lbprobe::profile::Profile;
use lbprobe::report::Report;
use lbprobe::target::{Role, Target};

use support::findings::{assert_verdict, finding, start_haproxy, start_nginx, summary};
use support::says::assert_says;

const ID: &str = "502.tls-handshake-failed-to-backend";

/// A lab CA with its certificate written to `ca.pem`: the file the listener trusts, and, where
/// a test says so, lbprobe too (`--cacert`), as a person would give both the same CA.
struct Pki {
    dir: tempfile::TempDir,
    ca: LabCa,
}

impl Pki {
    fn new(name: &str) -> Pki {
        let ca = LabCa::new(name).expect("a lab CA");
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("ca.pem"), &ca.cert_pem).expect("writing ca.pem");
        Pki { dir, ca }
    }

    fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    fn server(&self, names: &[&str]) -> LabCert {
        self.ca.server(names).expect("a server certificate")
    }

    fn expired(&self, names: &[&str]) -> LabCert {
        self.ca
            .expired_server(names)
            .expect("an expired certificate")
    }
}

/// The names the listeners check (`proxy_ssl_name`, `verifyhost`) and lbprobe checks (the
/// backend URL's host).
const GOOD_NAMES: &[&str] = &["localhost", "127.0.0.1"];

/// An nginx TLS port presenting `cert` and answering 200.
fn tls_backend(cert: LabCert) -> Nginx {
    start_nginx(&NginxSpec {
        servers: vec![NginxServer::fixed().tls(true)],
        http_extra: String::new(),
        cert: Some(cert),
    })
}

/// A plain nginx port answering 200.
fn plain_backend() -> Nginx {
    start_nginx(&NginxSpec::one(NginxServer::fixed()))
}

/// nginx proxying over TLS to `port`, verifying the certificate against `ca_file` for the name
/// localhost, with a short connect timeout. The harness's own `location /` turns verification
/// off (its lab backends are self-signed); this exact `location = /` takes the baseline GET.
fn nginx_verifying(port: u16, ca_file: &Path) -> Nginx {
    start_nginx(&NginxSpec::one(NginxServer::fixed().extra(format!(
        "location = / {{ proxy_pass https://127.0.0.1:{port}; proxy_ssl_verify on; \
         proxy_ssl_trusted_certificate {}; proxy_ssl_name localhost; proxy_ssl_server_name on; \
         proxy_connect_timeout 2s; }}",
        ca_file.display()
    ))))
}

/// HAProxy with one server over TLS to `port`, verifying against `ca_file` for localhost.
fn haproxy_verifying(port: u16, ca_file: &Path) -> Haproxy {
    start_haproxy(&HaproxySpec::one(HaproxyFrontend::no_server().backend_extra(
        format!(
            "retries 0\n    server s0 127.0.0.1:{port} ssl verify required ca-file {} verifyhost localhost sni str(localhost)",
            ca_file.display()
        ),
    )))
}

/// A target as a user gives it, trusting `ca_file` when given (`--cacert`).
fn target(role: Role, url: &str, ca_file: Option<&Path>) -> Target {
    let mut t = Target::parse(role, url).unwrap_or_else(|e| panic!("{url}: {e}"));
    t.ca_file = ca_file.map(Path::to_path_buf);
    t
}

/// Scan with the protocol family, the backend trusted through `ca_file`.
async fn scan(listener: &str, backend: &str, ca_file: Option<&Path>) -> Report {
    let plan = Plan::new(
        Some(target(Role::Listener, listener, None)),
        Some(target(Role::Backend, backend, ca_file)),
    )
    .with_profile(Profile::auto())
    .with_probes(vec![ProbeSpec::Protocol])
    .with_limits(Limits {
        max_requests: 100,
        max_rate: 500.0,
        max_duration: Duration::from_secs(30),
        request_timeout: Duration::from_secs(3),
    });
    support::findings::execute(file!(), plan).await
}

/// A TLS backend presenting `cert` behind an nginx that verifies it against `listener_trusts`,
/// scanned with lbprobe trusting `we_trust`: the report, and the nginx for its logs.
async fn behind_verifying_nginx(
    cert: LabCert,
    listener_trusts: &Path,
    we_trust: Option<&Path>,
) -> (Report, Nginx) {
    let backend = tls_backend(cert);
    let nginx = nginx_verifying(backend.port(0), listener_trusts);
    let report = scan(&nginx.url(0), &backend.url(0), we_trust).await;
    (report, nginx)
}

#[tokio::test]
async fn nginx_verifying_an_expired_backend_certificate_is_confirmed() {
    let pki = Pki::new("lbprobe test CA");
    let (report, nginx) = behind_verifying_nginx(
        pki.expired(GOOD_NAMES),
        &pki.ca_file(),
        Some(&pki.ca_file()),
    )
    .await;

    let ev = assert_verdict(&report, ID, Verdict::Confirmed);
    assert_says(
        &ev,
        &[
            "through the listener got 502 Bad Gateway",
            "completed a TLSv1.",
            "the backend's certificate does not verify against the CA file",
            "expired",
            "plain HTTP straight to the backend's TLS port got 400",
            "straight to the backend over verified TLS got no HTTP answer: TLS handshake failed",
        ],
    );
    // The port answers plain HTTP with a page nginx would have relayed: not plain HTTP forwarded.
    assert_verdict(&report, "400.backend-expects-https", Verdict::RuledOut);
    // What nginx itself says about it.
    assert!(
        nginx.error_log().contains("certificate has expired"),
        "{}",
        nginx.error_log()
    );
    assert!(
        nginx
            .access_log()
            .contains("status=502 upstream_status=502"),
        "{}",
        nginx.access_log()
    );
}

#[tokio::test]
async fn nginx_checking_a_name_the_certificate_lacks_is_confirmed() {
    let pki = Pki::new("lbprobe test CA");
    let (report, nginx) = behind_verifying_nginx(
        pki.server(&["wrong.lbprobe.test"]),
        &pki.ca_file(),
        Some(&pki.ca_file()),
    )
    .await;
    let ev = assert_verdict(&report, ID, Verdict::Confirmed);
    assert_says(&ev, &["not valid for", "got 502 Bad Gateway"]);
    assert!(
        nginx
            .error_log()
            .contains("upstream SSL certificate does not match"),
        "{}",
        nginx.error_log()
    );
}

/// The backend's certificate comes from another CA than the one lbprobe was given (and the
/// listener trusts): the CA given is a declared fact, and the verdict says it rests on it.
#[tokio::test]
async fn nginx_refusing_a_certificate_from_another_ca_is_confirmed_on_the_declared_ca() {
    let trusted = Pki::new("lbprobe test CA");
    let other = Pki::new("another CA");
    let (report, _) = behind_verifying_nginx(
        other.server(GOOD_NAMES),
        &trusted.ca_file(),
        Some(&trusted.ca_file()),
    )
    .await;
    let ev = assert_verdict(&report, ID, Verdict::Confirmed);
    assert_says(&ev, &["unknown issuer", "you gave it"]);
    let f = finding(&report, ID);
    assert!(
        f.rests_on.contains(&lbprobe::classify::Basis::Declared),
        "{:?}",
        f.rests_on
    );
}

/// Without the CA, an unknown issuer is what any private CA looks like: the listener may trust
/// it, so the verdict stays open and says what to give. (Here the listener trusts another CA.)
#[tokio::test]
async fn without_the_ca_an_unknown_issuer_stays_inconclusive() {
    let trusted = Pki::new("lbprobe test CA");
    let other = Pki::new("another CA");
    let (report, _) =
        behind_verifying_nginx(other.server(GOOD_NAMES), &trusted.ca_file(), None).await;
    let f = finding(&report, ID);
    assert_eq!(f.verdict, Verdict::Inconclusive, "{}", summary(&report));
    assert!(f.reason.contains("--cacert"), "{}", f.reason);
}

/// An expired certificate without the CA file: expiry fails every verifier whatever it
/// trusts, so the CA is not needed to confirm it.
#[tokio::test]
async fn an_expired_certificate_is_confirmed_without_the_ca() {
    let pki = Pki::new("lbprobe test CA");
    let (report, _) = behind_verifying_nginx(pki.expired(GOOD_NAMES), &pki.ca_file(), None).await;
    let ev = assert_verdict(&report, ID, Verdict::Confirmed);
    assert_says(&ev, &["against the web PKI's roots", "expired"]);
}

/// HAProxy answers a failed handshake with its server with 503, the same page it gives when no
/// server is up: the finding gives both readings and says HAProxy's log tells them apart.
#[tokio::test]
async fn haproxy_verifying_an_expired_backend_certificate_gives_both_readings() {
    let pki = Pki::new("lbprobe test CA");
    let backend = tls_backend(pki.expired(GOOD_NAMES));
    let haproxy = haproxy_verifying(backend.port(0), &pki.ca_file());
    let report = scan(&haproxy.url(0), &backend.url(0), Some(&pki.ca_file())).await;
    let f = finding(&report, ID);
    assert_eq!(f.verdict, Verdict::Inconclusive, "{}", summary(&report));
    assert_says(
        &format!("{}\n{}", f.reason, support::findings::evidence(f)),
        &[
            "answers its own 503",
            "no server is up at all (503.no-backends)",
            "expired",
            "plain HTTP straight to the backend's TLS port got 400",
        ],
    );
    // HAProxy's "no server" page is not proof of no server here: its handshake failed.
    let none = finding(&report, "503.no-backends");
    assert_eq!(none.verdict, Verdict::Inconclusive, "{}", summary(&report));
    assert!(
        none.reason.contains("502.tls-handshake-failed-to-backend"),
        "{}",
        none.reason
    );
    // What HAProxy logged: it picked the server and the connection to it failed (SC), which
    // is what tells this from having no server (<NOSRV>).
    let logged = haproxy.wait_log_line(Duration::from_secs(2), |l| {
        l.contains("be0/s0") && l.contains(" 503 ") && l.contains(" SC--")
    });
    assert!(logged.is_some(), "{}", haproxy.access_log());
}

// ---------------------------------------------------------------- neighbours

#[tokio::test]
async fn nginx_verifying_a_good_certificate_rules_it_out() {
    let pki = Pki::new("lbprobe test CA");
    let (report, _) =
        behind_verifying_nginx(pki.server(GOOD_NAMES), &pki.ca_file(), Some(&pki.ca_file())).await;
    let ev = assert_verdict(&report, ID, Verdict::RuledOut);
    assert_says(
        &ev,
        &[
            "through the listener got 200 OK",
            "the backend's certificate verifies against the CA file",
        ],
    );
}

#[tokio::test]
async fn haproxy_verifying_a_good_certificate_rules_it_out() {
    let pki = Pki::new("lbprobe test CA");
    let backend = tls_backend(pki.server(GOOD_NAMES));
    let haproxy = haproxy_verifying(backend.port(0), &pki.ca_file());
    let report = scan(&haproxy.url(0), &backend.url(0), Some(&pki.ca_file())).await;
    assert_verdict(&report, ID, Verdict::RuledOut);
}

#[tokio::test]
async fn a_plain_http_backend_behind_nginx_is_not_this_cause() {
    let backend = plain_backend();
    let nginx = start_nginx(&NginxSpec::one(NginxServer::proxy(format!(
        "http://127.0.0.1:{}",
        backend.port(0)
    ))));
    let report = scan(&nginx.url(0), &backend.url(0), None).await;
    let f = finding(&report, ID);
    assert_eq!(f.verdict, Verdict::RuledOut, "{}", summary(&report));
    assert!(f.reason.contains("speaks plain HTTP"), "{}", f.reason);
}

#[tokio::test]
async fn a_plain_http_backend_behind_haproxy_is_not_this_cause() {
    let backend = plain_backend();
    let haproxy = start_haproxy(&HaproxySpec::one(HaproxyFrontend::proxy(format!(
        "http://127.0.0.1:{}",
        backend.port(0)
    ))));
    let report = scan(&haproxy.url(0), &backend.url(0), None).await;
    let f = finding(&report, ID);
    assert_eq!(f.verdict, Verdict::RuledOut, "{}", summary(&report));
}
