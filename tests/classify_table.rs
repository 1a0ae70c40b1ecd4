//! The classifier, table by table: synthetic observations in, findings out. One row (at least) per
//! verdict each rule can give, the attribution cases, a healthy run, and checks that every cause
//! id a rule or a probe names exists in the catalogue.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use lbprobe::catalogue::Catalogue;
use lbprobe::classify::attribution::{self, Origin};
use lbprobe::classify::{classify, Context, Finding, Verdict, RULES};
use lbprobe::probe::connect::HandshakeOutcome;
use lbprobe::probe::keepalive::{self, IdleResult, IdleTimeout, KeepaliveDetail};
use lbprobe::probe::partial::{self, Outcome as PartialOutcome, PartialResult};
use lbprobe::probe::rate::RateResult;
use lbprobe::probe::response::ResponseCheck;
use lbprobe::probe::{mtu, templates, Detail, Family, Observation};
use lbprobe::profile::{Numbers, Profile};
use lbprobe::target::Role;
use lbprobe::transport::tls::{CertCheck, CertFault};
use lbprobe::transport::{ConnEnd, Sniff};

use support::timing::*;
use support::*;

use Verdict::{Confirmed, Inconclusive, Reproduced, RuledOut};

/// One run's observations, its context, and what the classifier must say about them.
struct Row {
    name: String,
    profile: Profile,
    listener_tls: Option<bool>,
    has_backend: bool,
    observations: Vec<Observation>,
    expect: Vec<(String, Verdict)>,
    absent: Vec<String>,
    /// (cause, text): the finding's reason or one of its evidence lines contains the text.
    mentions: Vec<(String, String)>,
}

/// A row for a TLS listener with a backend and the reference (clb) profile.
fn row(name: &str, observations: Vec<Obs>) -> Row {
    Row {
        name: name.to_string(),
        profile: Profile::clb(),
        listener_tls: Some(true),
        has_backend: true,
        observations: numbered(observations),
        expect: Vec::new(),
        absent: Vec::new(),
        mentions: Vec::new(),
    }
}

impl Row {
    fn expect(mut self, cause: &str, verdict: Verdict) -> Row {
        self.expect.push((cause.to_string(), verdict));
        self
    }

    fn absent(mut self, cause: &str) -> Row {
        self.absent.push(cause.to_string());
        self
    }

    fn mentions(mut self, cause: &str, text: &str) -> Row {
        self.mentions.push((cause.to_string(), text.to_string()));
        self
    }

    fn profile(mut self, profile: Profile) -> Row {
        self.profile = profile;
        self
    }

    fn plain_listener(mut self) -> Row {
        self.listener_tls = Some(false);
        self
    }

    fn no_backend(mut self) -> Row {
        self.has_backend = false;
        self
    }

    fn classify(&self) -> Vec<Finding> {
        let ctx = Context {
            profile: &self.profile,
            listener_tls: self.listener_tls,
            has_backend: self.has_backend,
        };
        classify(&self.observations, Catalogue::builtin(), &ctx)
    }

    /// Everything wrong with the classifier's answer for this row, in words.
    fn problems(&self, findings: &[Finding]) -> Vec<String> {
        let mut out = Vec::new();
        let got = |cause: &str| findings.iter().find(|f| f.cause == cause);
        for (cause, verdict) in &self.expect {
            match got(cause) {
                Some(f) if f.verdict == *verdict => {}
                Some(f) => out.push(format!(
                    "{cause}: expected {verdict}, got {} ({})",
                    f.verdict, f.reason
                )),
                None => out.push(format!("{cause}: expected {verdict}, got no finding")),
            }
        }
        for cause in &self.absent {
            if let Some(f) = got(cause) {
                out.push(format!(
                    "{cause}: expected no finding, got {} ({})",
                    f.verdict, f.reason
                ));
            }
        }
        for (cause, text) in &self.mentions {
            let Some(f) = got(cause) else {
                out.push(format!("{cause}: no finding to mention {text:?}"));
                continue;
            };
            let said = std::iter::once(f.reason.as_str())
                .chain(f.evidence.iter().map(|e| e.text.as_str()))
                .any(|t| t.contains(text.as_str()));
            if !said {
                out.push(format!(
                    "{cause}: neither the reason nor the evidence mentions {text:?}: {} / {:?}",
                    f.reason,
                    f.evidence.iter().map(|e| &e.text).collect::<Vec<_>>()
                ));
            }
        }
        out.extend(invariant_problems(&self.observations, findings));
        out
    }
}

/// What holds for every classification: one finding per cause, ordered by code, each with a
/// reason, and evidence that points only at observations of the run.
fn invariant_problems(observations: &[Observation], findings: &[Finding]) -> Vec<String> {
    let mut out = Vec::new();
    let ids: BTreeSet<&str> = observations.iter().map(|o| o.id.as_str()).collect();
    let mut causes = BTreeSet::new();
    for f in findings {
        if !causes.insert(f.cause.as_str()) {
            out.push(format!("{}: more than one finding", f.cause));
        }
        if f.reason.trim().is_empty() {
            out.push(format!("{}: empty reason", f.cause));
        }
        if !f.cause.starts_with(&format!("{}.", f.code)) {
            out.push(format!(
                "{}: code {} does not match the id",
                f.cause, f.code
            ));
        }
        for e in &f.evidence {
            for id in &e.observations {
                if !ids.contains(id.as_str()) {
                    out.push(format!(
                        "{}: evidence names unknown observation {id}",
                        f.cause
                    ));
                }
            }
        }
    }
    if findings.windows(2).any(|w| w[0].code > w[1].code) {
        out.push("findings are not ordered by code".into());
    }
    out
}

/// Classify every row; fail once, listing every row that went wrong.
fn check(rows: &[Row]) {
    assert!(!rows.is_empty(), "a table without rows checks nothing");
    let mut failures = Vec::new();
    for r in rows {
        let findings = r.classify();
        let problems = r.problems(&findings);
        if !problems.is_empty() {
            let summary: Vec<String> = findings
                .iter()
                .map(|f| format!("{} {}", f.cause, f.verdict))
                .collect();
            failures.push(format!(
                "row {:?}:\n  - {}\n  findings: {}",
                r.name,
                problems.join("\n  - "),
                summary.join(", ")
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

// ---------------------------------------------------------------- 400.http-to-https-listener

fn http_to_https_listener_rows() -> Vec<Row> {
    const ID: &str = "400.http-to-https-listener";
    let plain_to_tls = |status: u16, reason: &str, body: &str| {
        obs(Family::Protocol, "plain-http-to-tls-port", LISTENER).answer(status, reason, body)
    };
    vec![
        row(
            "nginx answers plain HTTP on its TLS port with 400",
            vec![plain_to_tls(400, "Bad Request", &nginx_plain_to_tls_page())],
        )
        .expect(ID, Reproduced)
        .mentions(ID, "The plain HTTP request was sent to HTTPS port"),
        row(
            "a listener that redirects plain HTTP does not produce 400",
            vec![plain_to_tls(301, "Moved Permanently", "")],
        )
        .expect(ID, RuledOut)
        .mentions(ID, "301"),
        row(
            "a listener that closes on plain HTTP does not produce 400",
            vec![obs(Family::Protocol, "plain-http-to-tls-port", LISTENER).ended(ConnEnd::Fin)],
        )
        .expect(ID, RuledOut),
        row("a plain HTTP listener has no HTTPS port", vec![])
            .plain_listener()
            .expect(ID, RuledOut),
        row(
            "no cross-protocol probe, no finding",
            vec![baseline(LISTENER, 200, "OK")],
        )
        .absent(ID),
    ]
}

#[test]
fn http_to_https_listener() {
    check(&http_to_https_listener_rows());
}

// ---------------------------------------------------------- 400.client-certificate-required

fn client_certificate_required_rows() -> Vec<Row> {
    const ID: &str = "400.client-certificate-required";
    let page = |title: &str| nginx_page(400, title);
    vec![
        row(
            "nginx with ssl_verify_client on and no certificate presented",
            vec![baseline(LISTENER, 400, "Bad Request").answer(
                400,
                "Bad Request",
                &page("No required SSL certificate was sent"),
            )],
        )
        .expect(ID, Reproduced)
        .mentions(ID, "none was presented"),
        row(
            "nginx refuses the certificate presented",
            vec![baseline(LISTENER, 400, "Bad Request").answer(
                400,
                "Bad Request",
                &page("The SSL certificate error"),
            )],
        )
        .expect(ID, Reproduced)
        .mentions(ID, "refused the one presented"),
        row(
            "HAProxy's verify required ends the handshake with an alert",
            vec![
                obs(Family::Protocol, "baseline", LISTENER).ended(ConnEnd::TlsAlert(
                    "the peer sent a fatal TLS alert: certificate required".into(),
                )),
            ],
        )
        .expect(ID, Reproduced)
        .mentions(ID, "none was presented"),
        row(
            "a TLS listener that answers the baseline asks for no certificate",
            vec![baseline(LISTENER, 200, "OK")],
        )
        .expect(ID, RuledOut),
        row(
            "another 400 says nothing about certificates",
            vec![baseline(LISTENER, 400, "Bad Request")],
        )
        .absent(ID),
        row(
            "a plain listener has no TLS",
            vec![baseline(LISTENER, 200, "OK")],
        )
        .plain_listener()
        .absent(ID),
    ]
}

#[test]
fn client_certificate_required() {
    check(&client_certificate_required_rows());
}

// ---------------------------------------------------------------- 400.backend-expects-https

fn backend_expects_https_rows() -> Vec<Row> {
    const ID: &str = "400.backend-expects-https";
    let listener_400 = || {
        obs(Family::Protocol, "baseline", LISTENER).answer(
            400,
            "Bad Request",
            &nginx_plain_to_tls_page(),
        )
    };
    vec![
        row(
            "TLS backend port, listener forwards plain HTTP: every request gets 400",
            vec![
                sniff_tls(BACKEND),
                listener_400(),
                baseline(BACKEND, 200, "OK"),
            ],
        )
        .expect(ID, Confirmed)
        .mentions(ID, "TLSv1.3")
        .mentions(ID, "straight to the backend got 200"),
        row(
            "the backend port speaks plain HTTP",
            vec![
                sniff_plain(BACKEND),
                baseline(LISTENER, 200, "OK"),
                baseline(BACKEND, 200, "OK"),
            ],
        )
        .expect(ID, RuledOut),
        row(
            "TLS backend, but the listener speaks TLS to it (valid requests pass)",
            vec![
                sniff_tls(BACKEND),
                baseline(LISTENER, 200, "OK"),
                baseline(BACKEND, 200, "OK"),
            ],
        )
        .expect(ID, RuledOut),
        row(
            "TLS backend and no listener named",
            vec![sniff_tls(BACKEND), baseline(BACKEND, 200, "OK")],
        )
        .expect(ID, Inconclusive)
        .mentions(ID, "name the listener"),
        row(
            "the backend port answers neither TLS nor HTTP",
            vec![
                sniff(
                    BACKEND,
                    Sniff::Neither {
                        detail: "no answer (timeout)".into(),
                    },
                ),
                baseline(LISTENER, 400, "Bad Request"),
            ],
        )
        .expect(ID, Inconclusive)
        .mentions(ID, "no answer (timeout)"),
        row(
            "the backend port cannot be reached to sniff it",
            vec![
                sniff(
                    BACKEND,
                    Sniff::Unreachable {
                        end: ConnEnd::ConnectRefused,
                    },
                ),
                baseline(LISTENER, 502, "Bad Gateway"),
            ],
        )
        .expect(ID, Inconclusive),
        row(
            "TLS backend whose certificate lbprobe cannot verify, the listener relays its plain-HTTP page",
            vec![
                sniff_unverified(CertFault::CaAsServer),
                listener_400(),
                backend_handshake_failed(),
            ],
        )
        .expect(ID, Confirmed)
        .mentions(ID, "the page nginx answers plain HTTP on a TLS port with")
        .mentions(ID, "no HTTP answer: TLS handshake failed")
        .mentions(ID, "self-signed")
        .mentions(
            ID,
            "skip verification (nginx proxy_ssl_verify off, the default) or trust this CA (proxy_ssl_trusted_certificate)",
        ),
        row(
            "the same behind HAProxy: its words for what the listener would need",
            vec![
                sniff_unverified(CertFault::UnknownIssuer),
                listener_400(),
                backend_handshake_failed(),
            ],
        )
        .profile(Profile::haproxy())
        .expect(ID, Confirmed)
        .mentions(ID, "HAProxy `verify none` on the server line"),
        row(
            "a certificate for another name: the listener would need to check that name",
            vec![
                sniff_unverified(CertFault::WrongName),
                baseline(LISTENER, 200, "OK"),
                backend_handshake_failed(),
            ],
        )
        .expect(ID, RuledOut)
        .mentions(ID, "check the name the certificate carries (proxy_ssl_name)"),
        row(
            "TLS backend verified with the user's CA file, the listener relays its plain-HTTP page",
            vec![
                sniff(
                    BACKEND,
                    Sniff::Tls {
                        version: Some("TLSv1.3".into()),
                        certificate: Some(CertCheck::Verified {
                            against: "the CA file ca.pem".into(),
                        }),
                    },
                ),
                listener_400(),
                baseline(BACKEND, 200, "OK"),
            ],
        )
        .expect(ID, Confirmed)
        .mentions(ID, "the backend's certificate verifies against the CA file ca.pem")
        .mentions(ID, "straight to the backend got 200"),
        row(
            "TLS backend lbprobe cannot ask directly, and a 400 without the plain-HTTP page",
            vec![
                sniff_unverified(CertFault::UnknownIssuer),
                baseline(LISTENER, 400, "Bad Request"),
                backend_handshake_failed(),
            ],
        )
        .expect(ID, Inconclusive)
        .mentions(ID, "could not be asked directly"),
        row(
            "TLS backend and a listener that answers 502: forwarded plain HTTP or a failed TLS setup",
            vec![
                sniff_unverified(CertFault::UnknownIssuer),
                obs(Family::Protocol, "baseline", LISTENER).answer(
                    502,
                    "Bad Gateway",
                    &nginx_page(502, "Bad Gateway"),
                ),
                backend_handshake_failed(),
            ],
        )
        .expect(ID, Inconclusive)
        .mentions(ID, "error log"),
        row(
            "the plain-HTTP page is the listener's own: its TLS port was spoken to in plain HTTP",
            vec![
                sniff_unverified(CertFault::UnknownIssuer),
                // Plain HTTP to the listener's own TLS port (the helper gives that variant a
                // plain exchange), recorded as the baseline.
                obs(Family::Protocol, "plain-http-to-tls-port", LISTENER)
                    .answer(400, "Bad Request", &nginx_plain_to_tls_page())
                    .variant("baseline"),
                backend_handshake_failed(),
            ],
        )
        .expect(ID, Inconclusive),
        row(
            "no backend named, valid requests get 400 through the listener",
            vec![listener_400()],
        )
        .no_backend()
        .expect(ID, Inconclusive)
        .mentions(ID, "name the backend"),
        row(
            "no backend named, valid requests pass: nothing to say",
            vec![baseline(LISTENER, 200, "OK")],
        )
        .no_backend()
        .absent(ID),
    ]
}

/// The backend's sniff: a TLS handshake, and a certificate that does not verify.
fn sniff_unverified(fault: CertFault) -> Obs {
    let why = match fault {
        CertFault::CaAsServer => "self-signed (its issuer is itself), a CA certificate (basic constraints CA:TRUE) used as the server's own certificate",
        CertFault::WrongName => "the certificate is not valid for 127.0.0.1 (it names localhost)",
        _ => "self-signed (its issuer is itself): no trusted CA vouches for it",
    };
    sniff(
        BACKEND,
        Sniff::Tls {
            version: Some("TLSv1.2".into()),
            certificate: Some(CertCheck::Failed {
                against: "the web PKI's roots".into(),
                fault,
                why: why.into(),
                self_signed: fault != CertFault::WrongName,
            }),
        },
    )
}

/// lbprobe's own GET to that backend: its verified handshake fails.
fn backend_handshake_failed() -> Obs {
    obs(Family::Protocol, "baseline", BACKEND).ended(ConnEnd::TlsFailed(
        "invalid certificate: unknown issuer: no trusted CA signed the certificate".into(),
    ))
}

#[test]
fn backend_expects_https() {
    check(&backend_expects_https_rows());
}

// ---------------------------------------------------------------- 400.malformed-request

fn malformed_request_rows() -> Vec<Row> {
    const ID: &str = "400.malformed-request";
    let ok = app_body(200);
    let page = nginx_page(400, "Bad Request");
    vec![
        row(
            "the listener rejects a lowercase method the backend accepts",
            vec![
                malformed("control", LISTENER, 200, "OK", &ok),
                malformed("control", BACKEND, 200, "OK", &ok),
                malformed("lowercase-method", LISTENER, 400, "Bad Request", &page),
                malformed("lowercase-method", BACKEND, 200, "OK", &ok),
                malformed("bare-lf", LISTENER, 200, "OK", &ok),
                malformed("bare-lf", BACKEND, 200, "OK", &ok),
            ],
        )
        .expect(ID, Reproduced)
        .mentions(ID, "lowercase-method")
        .mentions(ID, "the backend answers the same bytes with 200"),
        row(
            "both reject, but the listener's body is its own error page",
            vec![
                malformed("control", LISTENER, 200, "OK", &ok),
                malformed("obs-fold", LISTENER, 400, "Bad Request", &page),
                malformed("obs-fold", BACKEND, 400, "Bad Request", &app_body(400)),
            ],
        )
        .expect(ID, Reproduced)
        .mentions(ID, "but the body is nginx's own 400 page")
        .absent("400.passthrough"),
        row(
            "the listener passes every malformed variant on and the backend accepts them",
            vec![
                malformed("control", LISTENER, 200, "OK", &ok),
                malformed("lowercase-method", LISTENER, 200, "OK", &ok),
                malformed("lowercase-method", BACKEND, 200, "OK", &ok),
                malformed("obs-fold", LISTENER, 200, "OK", &ok),
                malformed("obs-fold", BACKEND, 200, "OK", &ok),
            ],
        )
        .expect(ID, RuledOut)
        .mentions(ID, "none of the 2 malformed variants"),
        row(
            "the 400 is the backend's, passed on (same status, same body)",
            vec![
                malformed("control", LISTENER, 200, "OK", &ok),
                malformed(
                    "nul-in-header",
                    LISTENER,
                    400,
                    "Bad Request",
                    &app_body(400),
                ),
                malformed("nul-in-header", BACKEND, 400, "Bad Request", &app_body(400)),
            ],
        )
        .expect(ID, RuledOut)
        .expect("400.passthrough", Reproduced)
        .mentions("400.passthrough", "same status 400 and same body"),
        row(
            "even the valid control request gets 400 through the listener",
            vec![
                malformed("control", LISTENER, 400, "Bad Request", &page),
                malformed("control", BACKEND, 200, "OK", &ok),
                malformed("obs-fold", LISTENER, 400, "Bad Request", &page),
            ],
        )
        .expect(ID, Inconclusive),
        row(
            "no backend: the listener's own error page is the signature",
            vec![
                malformed("control", LISTENER, 200, "OK", &ok),
                malformed("obs-fold", LISTENER, 400, "Bad Request", &page),
            ],
        )
        .no_backend()
        .expect(ID, Reproduced)
        .mentions(ID, "the body is nginx's own 400 page"),
        row(
            "no backend and no signature: the 400 still counts, origin unknown",
            vec![
                malformed("control", LISTENER, 200, "OK", &ok),
                malformed("obs-fold", LISTENER, 400, "Bad Request", "bad request"),
            ],
        )
        .no_backend()
        .expect(ID, Reproduced)
        .mentions(ID, "no backend answer to compare with"),
        row(
            "only the control ran: nothing to say",
            vec![malformed("control", LISTENER, 200, "OK", &ok)],
        )
        .absent(ID),
    ]
}

#[test]
fn malformed_request() {
    check(&malformed_request_rows());
}

// ---------------------------------------------------------------- 400.backend-validation

fn backend_validation_rows() -> Vec<Row> {
    const ID: &str = "400.backend-validation";
    let ok = app_body(200);
    vec![
        row(
            "the backend rejects a valid GET with its own 400, the listener passes it on",
            vec![
                sniff_plain(BACKEND),
                baseline(LISTENER, 400, "Bad Request"),
                baseline(BACKEND, 400, "Bad Request"),
            ],
        )
        .expect(ID, Reproduced)
        .expect("400.passthrough", Reproduced)
        .mentions(ID, "the listener passes it on")
        .mentions(ID, app_body(400).as_str()),
        row(
            "the backend rejects valid methods it is sent directly, the listener answers itself",
            vec![
                method(
                    LISTENER,
                    "PUT",
                    403,
                    "Forbidden",
                    &nginx_page(403, "Forbidden"),
                ),
                method(BACKEND, "PUT", 400, "Bad Request", &app_body(400)),
            ],
        )
        .expect(ID, Reproduced)
        .mentions(ID, "the listener answers"),
        row(
            "the backend accepts every valid request",
            vec![
                baseline(LISTENER, 200, "OK"),
                baseline(BACKEND, 200, "OK"),
                malformed("control", BACKEND, 200, "OK", &ok),
                method(BACKEND, "GET", 200, "OK", &ok),
            ],
        )
        .expect(ID, RuledOut)
        .mentions(ID, "the 3 valid requests"),
        row(
            "a malformed request the backend rejects is not validation",
            vec![
                malformed("obs-fold", BACKEND, 400, "Bad Request", &app_body(400)),
                malformed("control", BACKEND, 200, "OK", &ok),
            ],
        )
        .expect(ID, RuledOut),
        row(
            "no request straight to the backend: nothing to say",
            vec![baseline(LISTENER, 400, "Bad Request")],
        )
        .no_backend()
        .absent(ID),
    ]
}

#[test]
fn backend_validation() {
    check(&backend_validation_rows());
}

// ---------------------------------------------------------------- 400.header-too-large

fn header_too_large_rows() -> Vec<Row> {
    const ID: &str = "400.header-too-large";
    vec![
        row(
            "the listener's limit is below the profile's documented one",
            vec![
                limit(LISTENER, Some(8190), Some(8191), Some(400)),
                nginx_refused_header(LISTENER, 8191),
            ],
        )
        .expect(ID, Confirmed)
        .mentions(ID, "below the 32768 bytes the clb profile documents")
        .mentions(ID, "8190 bytes pass")
        .mentions(ID, "the body is nginx's own 400 page"),
        row(
            "the same threshold, but nothing says who refused: reproduced, never confirmed",
            vec![
                limit(LISTENER, Some(8190), Some(8191), Some(400)),
                header_probe(LISTENER, 8191, 400, "Bad Request", "bad request"),
            ],
        )
        .no_backend()
        .expect(ID, Reproduced)
        .mentions(
            ID,
            "whether the listener or a server behind it answers is not known",
        ),
        row(
            "the listener's limit is the profile's own: a trigger, reproduced",
            vec![
                limit(LISTENER, Some(8190), Some(8191), Some(400)),
                limit(BACKEND, Some(65434), Some(65435), Some(400)),
            ],
        )
        .profile(Profile::nginx())
        .expect(ID, Reproduced)
        .mentions(ID, "the nginx profile documents 8190"),
        row(
            "the backend's limit is tighter than the listener's",
            vec![
                limit(LISTENER, Some(40000), Some(40001), Some(431)),
                limit(BACKEND, Some(16000), Some(16001), Some(400)),
            ],
        )
        .expect(ID, Confirmed)
        .mentions(ID, "pass the listener and fail at the backend"),
        row(
            "the same threshold on both sides: the backend's limit is what clients hit",
            vec![
                limit(LISTENER, Some(40000), Some(40001), Some(400)),
                limit(BACKEND, Some(40000), Some(40001), Some(400)),
            ],
        )
        .expect(ID, RuledOut)
        .mentions(ID, "are the backend's"),
        row(
            "a rejection by closing the connection is no 400",
            vec![limit(LISTENER, Some(16383), Some(16384), None)],
        )
        .expect(ID, Inconclusive)
        .mentions(ID, "no 400 was seen"),
        row(
            "a Go server's 431 for oversized heads is neither 400 nor 414",
            vec![
                limit(LISTENER, Some(16000), Some(16001), Some(431)),
                header_probe(
                    LISTENER,
                    16001,
                    431,
                    "Request Header Fields Too Large",
                    "431 Request Header Fields Too Large",
                )
                .headers_exactly(&[
                    ("Content-Type", "text/plain; charset=utf-8"),
                    ("Connection", "close"),
                ]),
                uri_limit(LISTENER, Some(16020), Some(16021), Some(431)),
                uri_probe(
                    LISTENER,
                    16021,
                    431,
                    "Request Header Fields Too Large",
                    "431 Request Header Fields Too Large",
                )
                .headers_exactly(&[
                    ("Content-Type", "text/plain; charset=utf-8"),
                    ("Connection", "close"),
                ]),
            ],
        )
        .no_backend()
        .expect(ID, RuledOut)
        .mentions(ID, "with 431 Request Header Fields Too Large, not 400")
        .expect("414.uri-too-long", RuledOut)
        .mentions("414.uri-too-long", "not 414")
        .absent("414.backend-uri-limit")
        .absent("400.passthrough"),
        row(
            "the listener accepts the largest header tried",
            vec![limit(LISTENER, Some(131072), None, None)],
        )
        .expect(ID, RuledOut)
        .mentions(ID, "131072"),
        row(
            "the listener refuses even a small header: no limit measured",
            vec![
                nginx_refused_header(LISTENER, 64),
                refusing_everything(LISTENER),
            ],
        )
        .expect(ID, Inconclusive),
        row(
            "no header-size probe: nothing to say",
            vec![baseline(LISTENER, 200, "OK")],
        )
        .absent(ID),
    ]
}

/// The same observation as its h2 twin (`limit h2`).
fn h2_twin(o: Obs) -> Obs {
    o.variant(&lbprobe::probe::h2::variant("limit"))
}

fn uri_limit_rows() -> Vec<Row> {
    const LISTENER_ID: &str = "414.uri-too-long";
    const BACKEND_ID: &str = "414.backend-uri-limit";
    vec![
        row(
            "nginx's 8 KiB request line, below the 32 KiB clb documents",
            vec![
                uri_limit(LISTENER, Some(8177), Some(8178), Some(414)),
                uri_limit(BACKEND, Some(131072), None, None),
            ],
        )
        .expect(LISTENER_ID, Confirmed)
        .mentions(LISTENER_ID, "above 8177 bytes")
        .expect(BACKEND_ID, RuledOut),
        row(
            "the listener refuses nothing tried",
            vec![uri_limit(LISTENER, Some(131072), None, None)],
        )
        .no_backend()
        .expect(LISTENER_ID, RuledOut)
        .absent(BACKEND_ID),
        row(
            "the backend's 414 at 2000 bytes is what clients hit through the listener",
            vec![
                uri_limit(LISTENER, Some(2000), Some(2001), Some(414)),
                uri_limit(BACKEND, Some(2000), Some(2001), Some(414)),
            ],
        )
        .expect(LISTENER_ID, RuledOut)
        .mentions(LISTENER_ID, "are the backend's")
        .expect(BACKEND_ID, Confirmed)
        .mentions(BACKEND_ID, "pass the listener"),
        row(
            "over h2 too the backend's 414 is relayed: the h2 threshold confirms nothing",
            vec![
                uri_limit(LISTENER, Some(2000), Some(2001), Some(414)),
                uri_limit(BACKEND, Some(2000), Some(2001), Some(414)),
                h2_twin(uri_limit(LISTENER, Some(2000), Some(2001), Some(414))),
            ],
        )
        .expect(LISTENER_ID, RuledOut)
        .mentions(
            LISTENER_ID,
            "over HTTP/2 the refusals above 2000 bytes are the backend's too",
        ),
        row(
            "h2 clients refused below the documented limit confirm it, HTTP/1.1 ones passing",
            vec![
                uri_limit(LISTENER, Some(65000), None, None),
                h2_twin(uri_limit(LISTENER, Some(8000), Some(8001), Some(414))),
                uri_probe(LISTENER, 8001, 414, "Request-URI Too Large", &nginx_page(414, "Request-URI Too Large"))
                    .variant(&lbprobe::probe::h2::variant("uri-8001")),
            ],
        )
        .no_backend()
        .expect(LISTENER_ID, Confirmed)
        .mentions(
            LISTENER_ID,
            "over HTTP/2 the listener refuses request targets above 8000 bytes",
        ),
        row(
            "h2 clients closed on, not answered 414: nothing confirmed",
            vec![
                uri_limit(LISTENER, Some(65000), None, None),
                h2_twin(uri_limit(LISTENER, Some(8000), Some(8001), None)),
            ],
        )
        .no_backend()
        .expect(LISTENER_ID, RuledOut),
        row(
            "the backend refuses long URIs; no listener measured",
            vec![uri_limit(BACKEND, Some(4000), Some(4001), Some(414))],
        )
        .expect(BACKEND_ID, Reproduced)
        .absent(LISTENER_ID),
        row(
            "listener only: nginx relays the backend's JSON 414 from 4001 bytes, its own page comes at 131072",
            vec![
                uri_limit(LISTENER, Some(4000), Some(4001), Some(414)),
                uri_probe(LISTENER, 1024, 200, "OK", &app_body(200)),
                uri_probe(LISTENER, 131072, 414, "Request-URI Too Large", &nginx_page(414, "Request-URI Too Large")),
                uri_probe(LISTENER, 66048, 414, "Request-URI Too Large", &nginx_page(414, "Request-URI Too Large")),
                uri_probe(LISTENER, 8500, 414, "Request-URI Too Large", &nginx_page(414, "Request-URI Too Large")),
                uri_probe(LISTENER, 6000, 414, "URI Too Long", &app_body(414)),
                uri_probe(LISTENER, 4001, 414, "URI Too Long", &app_body(414)),
            ],
        )
        .no_backend()
        .profile(Profile::nginx())
        .expect(LISTENER_ID, Inconclusive)
        .mentions(LISTENER_ID, "relayed from behind the listener")
        .mentions(LISTENER_ID, "its own limit lies between 6000 and 8500 bytes")
        .mentions(LISTENER_ID, "unlike its answer to the largest request tried (131072 bytes")
        .expect(BACKEND_ID, Reproduced)
        .mentions(BACKEND_ID, "relayed from behind the listener")
        .mentions(BACKEND_ID, "the listener's own refusal (414 Request-URI Too Large) comes only at 8500 bytes"),
        row(
            "listener only: nginx refuses with its own 414 page at its threshold",
            vec![
                uri_limit(LISTENER, Some(2033), Some(2034), Some(414)),
                uri_probe(LISTENER, 2034, 414, "Request-URI Too Large", &nginx_page(414, "Request-URI Too Large")),
                uri_probe(LISTENER, 131072, 414, "Request-URI Too Large", &nginx_page(414, "Request-URI Too Large")),
            ],
        )
        .no_backend()
        .profile(Profile::none())
        .expect(LISTENER_ID, Reproduced)
        .mentions(LISTENER_ID, "the body is nginx's own 414 page")
        .absent(BACKEND_ID),
        row(
            "HAProxy answers an over-long URI with 400: a 400 cause, not a 414 one",
            vec![
                uri_limit(LISTENER, Some(15190), Some(15191), Some(400)),
                uri_probe(LISTENER, 15191, 400, "Bad request", &haproxy_page(400, "Bad request", "Your browser sent an invalid request."))
                    .without_header("Server"),
                uri_probe(LISTENER, 131072, 400, "Bad request", &haproxy_page(400, "Bad request", "Your browser sent an invalid request."))
                    .without_header("Server"),
                uri_limit(BACKEND, Some(131072), None, None),
            ],
        )
        .profile(Profile::haproxy())
        .expect(LISTENER_ID, RuledOut)
        .mentions(LISTENER_ID, "with 400 Bad request, not 414")
        .expect("400.header-too-large", Reproduced)
        .mentions("400.header-too-large", "HAProxy answers an over-long URI with 400, not the 414")
        .mentions("400.header-too-large", "the body is HAProxy's own 400 page"),
        row(
            "the same JSON answer at every refused size: the listener's own, or an application's",
            vec![
                uri_limit(LISTENER, Some(4000), Some(4001), Some(414)),
                uri_probe(LISTENER, 4001, 414, "URI Too Long", &app_body(414)).headers_exactly(&[("Server", "lbprobe-lab")]),
                uri_probe(LISTENER, 131072, 414, "URI Too Long", &app_body(414)).headers_exactly(&[("Server", "lbprobe-lab")]),
            ],
        )
        .no_backend()
        .profile(Profile::none())
        .expect(LISTENER_ID, Reproduced)
        .mentions(LISTENER_ID, "is not known")
        .absent(BACKEND_ID)
        .absent("400.passthrough"),
        row(
            "listener only: a 400 relayed from behind the listener is passed through, not its limit",
            vec![
                limit(LISTENER, Some(4000), Some(4001), Some(400)),
                header_probe(LISTENER, 4001, 400, "Bad Request", &app_body(400)),
                header_probe(LISTENER, 131072, 400, "Bad Request", &nginx_page(400, "Bad Request")),
            ],
        )
        .no_backend()
        .profile(Profile::nginx())
        .expect("400.header-too-large", Inconclusive)
        .expect("400.passthrough", Reproduced)
        .mentions("400.passthrough", "relayed from behind the listener"),
    ]
}

#[test]
fn uri_limits() {
    check(&uri_limit_rows());
}

#[test]
fn header_too_large() {
    check(&header_too_large_rows());
}

// ---------------------------------------------------------------- 405

fn trace_unsupported_rows() -> Vec<Row> {
    const ID: &str = "405.trace-unsupported";
    let page = nginx_page(405, "Not Allowed");
    vec![
        row(
            "nginx answers TRACE with its own 405; the backend would take it",
            vec![
                method(LISTENER, "TRACE", 405, "Not Allowed", &page),
                method(BACKEND, "TRACE", 200, "OK", &app_body(200)),
            ],
        )
        .expect(ID, Reproduced)
        .mentions(ID, "the backend answers the same bytes with 200"),
        row(
            "no backend: the listener's error page says it answered TRACE itself",
            vec![method(LISTENER, "TRACE", 405, "Not Allowed", &page)],
        )
        .no_backend()
        .expect(ID, Reproduced)
        .absent("405.backend-method-unsupported"),
        row(
            "a profile that documents TRACE as allowed is named in the evidence",
            vec![method(LISTENER, "TRACE", 405, "Not Allowed", &page)],
        )
        .profile(Profile::haproxy())
        .no_backend()
        .expect(ID, Reproduced)
        .mentions(ID, "documents TRACE as allowed"),
        row(
            "the listener passes TRACE on",
            vec![
                method(LISTENER, "TRACE", 200, "OK", &app_body(200)),
                method(BACKEND, "TRACE", 200, "OK", &app_body(200)),
            ],
        )
        .expect(ID, RuledOut),
        row(
            "the 405 to TRACE is the backend's, passed on",
            vec![
                method(LISTENER, "TRACE", 405, "Method Not Allowed", &app_body(405)),
                method(BACKEND, "TRACE", 405, "Method Not Allowed", &app_body(405)),
            ],
        )
        .expect(ID, RuledOut)
        .expect("405.backend-method-unsupported", Reproduced)
        .expect("405.passthrough", Reproduced),
        row(
            "TRACE not sent to the listener: nothing to say",
            vec![method(BACKEND, "TRACE", 405, "Method Not Allowed", "")],
        )
        .absent(ID),
    ]
}

#[test]
fn trace_unsupported() {
    check(&trace_unsupported_rows());
}

fn backend_method_unsupported_rows() -> Vec<Row> {
    const ID: &str = "405.backend-method-unsupported";
    let ok = app_body(200);
    let refused = app_body(405);
    vec![
        row(
            "the backend refuses DELETE and the listener passes its 405 on",
            vec![
                method(LISTENER, "GET", 200, "OK", &ok),
                method(BACKEND, "GET", 200, "OK", &ok),
                method(LISTENER, "DELETE", 405, "Method Not Allowed", &refused),
                method(BACKEND, "DELETE", 405, "Method Not Allowed", &refused)
                    .header("Allow", "GET, HEAD"),
            ],
        )
        .expect(ID, Reproduced)
        .expect("405.passthrough", Reproduced)
        .mentions(ID, "Allow: GET, HEAD")
        .mentions(ID, "passed on by the listener"),
        row(
            "the backend refuses PATCH straight, the listener answers it itself",
            vec![
                method(
                    LISTENER,
                    "PATCH",
                    403,
                    "Forbidden",
                    &nginx_page(403, "Forbidden"),
                ),
                method(BACKEND, "PATCH", 405, "Method Not Allowed", &refused),
            ],
        )
        .expect(ID, Reproduced)
        .mentions(ID, "answered by the listener itself")
        .absent("405.passthrough"),
        row(
            "the backend refuses no method",
            vec![
                method(BACKEND, "GET", 200, "OK", &ok),
                method(BACKEND, "DELETE", 204, "No Content", ""),
            ],
        )
        .expect(ID, RuledOut)
        .mentions(ID, "GET, DELETE"),
        row(
            "methods only through the listener: nothing to say about the backend",
            vec![method(
                LISTENER,
                "DELETE",
                405,
                "Method Not Allowed",
                &refused,
            )],
        )
        .no_backend()
        .absent(ID),
    ]
}

#[test]
fn backend_method_unsupported() {
    check(&backend_method_unsupported_rows());
}

// ---------------------------------------------------------------- 5xx from the backend itself

fn backend_error_rows() -> Vec<Row> {
    let ids = [
        (500, "500.backend-error"),
        (503, "503.backend-error"),
        (504, "504.backend-dependency-timeout"),
    ];
    let mut rows = Vec::new();
    for (code, id) in ids {
        let mut r = row(
            &format!("the backend answers a valid GET with {code} itself"),
            vec![baseline(BACKEND, code, "Error")],
        )
        .expect(id, Confirmed)
        .mentions(id, &app_body(code));
        for (other, other_id) in ids {
            if other != code {
                r = r.expect(other_id, RuledOut);
            }
        }
        rows.push(r);
    }
    let mut healthy = row(
        "the backend answers a valid GET with 200",
        vec![baseline(LISTENER, 200, "OK"), baseline(BACKEND, 200, "OK")],
    );
    for (_, id) in ids {
        healthy = healthy.expect(id, RuledOut);
    }
    rows.push(healthy);
    let mut silent = row(
        "the backend gives no HTTP answer: nothing to say about its status",
        vec![obs(Family::Protocol, "baseline", BACKEND).ended(ConnEnd::Timeout)],
    );
    for (_, id) in ids {
        silent = silent.absent(id);
    }
    rows.push(silent);
    rows
}

#[test]
fn backend_error() {
    check(&backend_error_rows());
}

fn backend_unreachable_rows() -> Vec<Row> {
    const ID: &str = "502.backend-unreachable";
    let mut rows: Vec<Row> = [
        ConnEnd::ConnectRefused,
        ConnEnd::Unreachable("no route to host".into()),
    ]
    .into_iter()
    .map(|end| {
        row(
            &format!("no TCP connection to the backend: {end:?}"),
            vec![obs(Family::Protocol, "baseline", BACKEND).ended(end)],
        )
        .expect(ID, Confirmed)
        .mentions(ID, "127.0.0.1:9090")
    })
    .collect();
    rows.push(
        row(
            "SYNs unanswered: a silent drop, which listeners report as a timeout (504)",
            vec![obs(Family::Protocol, "baseline", BACKEND).ended(ConnEnd::ConnectTimeout)],
        )
        .expect(ID, RuledOut)
        .mentions(ID, "504.connect-timeout"),
    );
    rows.push(
        row(
            "the backend accepts TCP connections",
            vec![baseline(BACKEND, 200, "OK")],
        )
        .expect(ID, RuledOut),
    );
    rows.push(
        row(
            "connected but the TLS handshake failed: reachable all the same",
            vec![obs(Family::Protocol, "baseline", BACKEND)
                .ended(ConnEnd::TlsFailed("received fatal alert".into()))],
        )
        .expect(ID, RuledOut),
    );
    rows.push(
        row(
            "no baseline to the backend: nothing to say",
            vec![baseline(LISTENER, 502, "Bad Gateway")],
        )
        .no_backend()
        .absent(ID),
    );
    rows
}

#[test]
fn backend_unreachable() {
    check(&backend_unreachable_rows());
}

// ---------------------------------------------------------------- <code>.passthrough

const PASSTHROUGH_CODES: [u16; 9] = [400, 405, 408, 414, 499, 500, 502, 503, 504];

fn passthrough_rows() -> Vec<Row> {
    let mut rows = Vec::new();
    for code in PASSTHROUGH_CODES {
        let id = format!("{code}.passthrough");
        // A fault when the backend says 5xx; a trigger's mechanism when it says 4xx.
        let verdict = if code >= 500 { Confirmed } else { Reproduced };
        rows.push(
            row(
                &format!("the backend answers {code} and the listener passes it on"),
                vec![
                    baseline(LISTENER, code, "Status"),
                    baseline(BACKEND, code, "Status"),
                ],
            )
            .expect(&id, verdict)
            .mentions(&id, &format!("same status {code} and same body")),
        );
        rows.push(
            row(
                &format!("the listener answers {code} with its own page over the backend's {code}"),
                vec![
                    obs(Family::Protocol, "baseline", LISTENER).answer(
                        code,
                        "Status",
                        &nginx_page(code, "Status"),
                    ),
                    baseline(BACKEND, code, "Status"),
                ],
            )
            .absent(&id),
        );
    }
    rows.push(
        row(
            "same status, a different body that is not a listener page: still the backend's",
            vec![
                method(LISTENER, "PUT", 503, "Service Unavailable", "busy (via lb)"),
                method(BACKEND, "PUT", 503, "Service Unavailable", "busy"),
            ],
        )
        .expect("503.passthrough", Confirmed)
        .mentions(
            "503.passthrough",
            "same status 503 as the backend's direct answer",
        ),
    );
    rows.push(
        row(
            "the listener says 502 while the backend says 200: not passed on",
            vec![
                obs(Family::Protocol, "baseline", LISTENER).answer(
                    502,
                    "Bad Gateway",
                    &nginx_page(502, "Bad Gateway"),
                ),
                baseline(BACKEND, 200, "OK"),
            ],
        )
        .absent("502.passthrough"),
    );
    rows
}

#[test]
fn passthrough() {
    check(&passthrough_rows());
}

// ---------------------------------------------------------------- a healthy run

/// A healthy nginx in front of a healthy backend, as the demo's lab without faults: every
/// trigger is reproduced or ruled out, and no fault is confirmed.
fn healthy_observations() -> Vec<Obs> {
    let ok = app_body(200);
    let page400 = nginx_page(400, "Bad Request");
    vec![
        sniff_tls(LISTENER),
        sniff_plain(BACKEND),
        baseline(LISTENER, 200, "OK"),
        baseline(BACKEND, 200, "OK"),
        obs(Family::Protocol, "plain-http-to-tls-port", LISTENER).answer(
            400,
            "Bad Request",
            &nginx_plain_to_tls_page(),
        ),
        malformed("control", LISTENER, 200, "OK", &ok),
        malformed("control", BACKEND, 200, "OK", &ok),
        malformed("lowercase-method", LISTENER, 400, "Bad Request", &page400),
        malformed("lowercase-method", BACKEND, 200, "OK", &ok),
        malformed("obs-fold", LISTENER, 400, "Bad Request", &page400),
        malformed("obs-fold", BACKEND, 200, "OK", &ok),
        method(LISTENER, "GET", 200, "OK", &ok),
        method(BACKEND, "GET", 200, "OK", &ok),
        method(LISTENER, "DELETE", 200, "OK", &ok),
        method(BACKEND, "DELETE", 200, "OK", &ok),
        method(
            LISTENER,
            "TRACE",
            405,
            "Not Allowed",
            &nginx_page(405, "Not Allowed"),
        ),
        method(BACKEND, "TRACE", 200, "OK", &ok),
        header_probe(LISTENER, 64, 200, "OK", &ok),
        header_probe(BACKEND, 64, 200, "OK", &ok),
        limit(LISTENER, Some(8190), Some(8191), Some(400)),
        limit(BACKEND, Some(65434), Some(65435), Some(400)),
    ]
}

fn healthy_rows() -> Vec<Row> {
    vec![
        row("healthy nginx, healthy backend", healthy_observations())
            .profile(Profile::nginx())
            .expect("400.http-to-https-listener", Reproduced)
            .expect("400.malformed-request", Reproduced)
            .expect("405.trace-unsupported", Reproduced)
            .expect("400.header-too-large", Reproduced)
            .expect("400.backend-expects-https", RuledOut)
            .expect("400.backend-validation", RuledOut)
            .expect("405.backend-method-unsupported", RuledOut)
            .expect("500.backend-error", RuledOut)
            .expect("503.backend-error", RuledOut)
            .expect("504.backend-dependency-timeout", RuledOut)
            .expect("502.backend-unreachable", RuledOut),
    ]
}

#[test]
fn healthy_listener_and_backend_confirm_no_fault() {
    let rows = healthy_rows();
    check(&rows);
    for r in &rows {
        let findings = r.classify();
        let confirmed: Vec<&str> = findings
            .iter()
            .filter(|f| f.verdict == Confirmed)
            .map(|f| f.cause.as_str())
            .collect();
        assert!(confirmed.is_empty(), "{}: confirmed {confirmed:?}", r.name);
        assert!(
            findings.iter().all(|f| !f.cause.ends_with(".passthrough")),
            "a healthy backend passes no error on: {findings:#?}"
        );
    }
}

#[test]
fn classification_is_pure_and_repeatable() {
    let r = &healthy_rows()[0];
    assert_eq!(r.classify(), r.classify());
    assert!(
        classify(
            &[],
            Catalogue::builtin(),
            &Context {
                profile: &Profile::clb(),
                listener_tls: None,
                has_backend: false,
            }
        )
        .is_empty(),
        "no observation, no finding"
    );
}

// ---------------------------------------------------------------- attribution

fn answer_of(o: &Observation) -> &lbprobe::transport::Exchange {
    o.exchange.as_ref().expect("an exchange")
}

#[test]
fn attribution_tells_who_answered() {
    let page = nginx_page(400, "Bad Request");
    let app = app_body(400);
    let obs_of = |b: Obs| b.build();
    let l_app = obs_of(baseline(LISTENER, 400, "Bad Request"));
    let b_app = obs_of(baseline(BACKEND, 400, "Bad Request"));
    let l_page = obs_of(malformed("obs-fold", LISTENER, 400, "Bad Request", &page));
    let l_plain = obs_of(malformed("obs-fold", LISTENER, 400, "Bad Request", "nope"));
    let b_ok = obs_of(baseline(BACKEND, 200, "OK"));
    let b_silent = obs_of(obs(Family::Protocol, "baseline", BACKEND).ended(ConnEnd::Reset));
    let l_silent = obs_of(obs(Family::Protocol, "baseline", LISTENER).ended(ConnEnd::Fin));
    let b_empty_same = obs_of(malformed("obs-fold", BACKEND, 400, "Bad Request", ""));
    let l_empty_same = obs_of(malformed("obs-fold", LISTENER, 400, "Bad Request", ""));
    assert_eq!(
        answer_of(&l_app).response.as_ref().unwrap().body_prefix,
        app.as_str()
    );

    let table: Vec<(&str, &Observation, Option<&Observation>, Origin, &str)> = vec![
        (
            "same status and same body: passed on",
            &l_app,
            Some(&b_app),
            Origin::Backend,
            "same status 400 and same body",
        ),
        (
            "same status, the listener's error page: its own",
            &l_page,
            Some(&b_app),
            Origin::Listener,
            "but the body is nginx's own 400 page",
        ),
        (
            "same status, both bodies empty, no signature: passed on",
            &l_empty_same,
            Some(&b_empty_same),
            Origin::Backend,
            "same status 400 as the backend's direct answer",
        ),
        (
            "another status straight to the backend: the listener's",
            &l_plain,
            Some(&b_ok),
            Origin::Listener,
            "the backend answers the same bytes with 200 OK",
        ),
        (
            "the backend gives no answer: the listener's",
            &l_plain,
            Some(&b_silent),
            Origin::Listener,
            "the backend gave no answer",
        ),
        (
            "no backend, the listener's error page: signature only",
            &l_page,
            None,
            Origin::Listener,
            "the body is nginx's own 400 page",
        ),
        (
            "no backend, no signature: unknown",
            &l_plain,
            None,
            Origin::Unknown,
            "no backend answer to compare with",
        ),
        (
            "the listener gave no answer: unknown",
            &l_silent,
            Some(&b_app),
            Origin::Unknown,
            "the listener sent no answer",
        ),
    ];
    let mut failures = Vec::new();
    for (name, listener, backend, want, says) in table {
        let (got, why) = attribution::origin(answer_of(listener), backend.map(answer_of));
        if got != want || !why.contains(says) {
            failures.push(format!(
                "{name}: expected {want:?} saying {says:?}, got {got:?}: {why}"
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    assert!(attribution::looks_like_lb_page(answer_of(&l_page)));
    assert!(!attribution::looks_like_lb_page(answer_of(&l_app)));
}

// ---------------------------------------------------------------- which listener

#[test]
fn identify_names_the_front_from_its_own_answers() {
    use lbprobe::classify::attribution::Product;
    use lbprobe::classify::identify::identify;
    let hap400 = || haproxy_page(400, "Bad request", "Your browser sent an invalid request.");
    let nginx414 = || nginx_page(414, "Request-URI Too Large");
    let table: Vec<(&str, Vec<Obs>, Option<Product>, &str)> = vec![
        (
            "HAProxy's page on the largest URI, nginx's (relayed, Server: nginx) at a smaller one",
            vec![
                baseline(LISTENER, 200, "OK"),
                uri_probe(LISTENER, 8178, 414, "Request-URI Too Large", &nginx414()),
                uri_probe(LISTENER, 131072, 400, "Bad request", &hap400()).without_header("Server"),
            ],
            Some(Product::Haproxy),
            "answers the largest request of its uri-limit search (131072 bytes)",
        ),
        (
            "no limit search: HAProxy's own 400 and nginx's relayed 405, one answer without Server",
            vec![
                method(LISTENER, "TRACE", 405, "Not Allowed", &nginx_page(405, "Not Allowed")),
                malformed("header-without-colon", LISTENER, 400, "Bad request", &hap400())
                    .without_header("Server"),
            ],
            Some(Product::Haproxy),
            "its own 400 page",
        ),
        (
            "the backend gives the same page to the same bytes: relayed, not the listener's",
            vec![
                method(LISTENER, "TRACE", 405, "Not Allowed", &nginx_page(405, "Not Allowed"))
                    .headers_exactly(&[("Server", "lab-app")]),
                method(BACKEND, "TRACE", 405, "Not Allowed", &nginx_page(405, "Not Allowed")),
                baseline(LISTENER, 200, "OK").headers_exactly(&[("Server", "lab-app")]),
            ],
            None,
            "Server: lab-app names no load balancer",
        ),
        (
            "every answer says Server: nginx",
            vec![baseline(LISTENER, 200, "OK"), baseline(LISTENER, 200, "OK")],
            Some(Product::Nginx),
            "Server: nginx/1.22.1 on every answer",
        ),
        (
            "different Server headers: passed on from backends, they name nothing",
            vec![
                baseline(LISTENER, 200, "OK").headers_exactly(&[("Server", "nginx")]),
                method(LISTENER, "GET", 200, "OK", &app_body(200)).headers_exactly(&[]),
            ],
            None,
            "different Server headers (none, nginx)",
        ),
        (
            "the largest refusal carries no known page: smaller nginx pages are from behind it",
            vec![
                uri_probe(LISTENER, 8178, 414, "Request-URI Too Large", &nginx414()),
                uri_probe(LISTENER, 131072, 431, "Request Header Fields Too Large", "too large")
                    .headers_exactly(&[("Content-Type", "text/plain")]),
            ],
            None,
            "gets 431 Request Header Fields Too Large: no known load balancer's page",
        ),
        (
            "Apache's own 414 page on the largest URI, the backend's Server header on the rest",
            vec![
                baseline(LISTENER, 200, "OK").headers_exactly(&[("Server", "lab-app")]),
                uri_probe(
                    LISTENER,
                    131072,
                    414,
                    "Request-URI Too Long",
                    &lbprobe::transport::escape_bytes(
                        b"<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 4.01//EN\" \"http://www.w3.org/TR/html4/strict.dtd\">\n<html><head>\n<title>414 Request-URI Too Long</title>\n</head><body>\n<h1>Request-URI Too Long</h1>\n</body></html>\n",
                    ),
                )
                .headers_exactly(&[("Server", "Apache/2.4.71 (Debian)")]),
            ],
            Some(Product::Apache),
            "Apache httpd: its own 414 page",
        ),
        ("no answer from the listener", vec![], None, "no HTTP answer"),
    ];
    let mut failures = Vec::new();
    for (name, observations, want, says) in table {
        let found = identify(&numbered(observations));
        let why = found
            .identity
            .as_ref()
            .map_or(found.why_none.clone(), |i| i.why.clone());
        if found.product() != want || !why.contains(says) {
            failures.push(format!(
                "{name}: expected {want:?} saying {says:?}, got {:?}: {why}",
                found.product()
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

// ------------------------------------------------- gateway timeouts, measured from the listener

/// `Numbers` with a response (read) timeout and a connect timeout declared.
fn declared(response_ms: Option<u64>, connect_ms: Option<u64>) -> Numbers {
    Numbers {
        response_timeout: response_ms.map(Duration::from_millis),
        connect_timeout: connect_ms.map(Duration::from_millis),
        ..Numbers::default()
    }
}

/// Latency requests through the listener answered `code` after each of `listener`, and straight
/// to the backend answered 200 after each of `backend`, with fast handshakes on both sides.
fn gateway_run(code: u16, listener: &[f64], backend: &[f64]) -> Vec<Obs> {
    let mut o = latency(LISTENER, code, listener);
    o.extend(latency(BACKEND, 200, backend));
    o.push(handshakes(LISTENER, HandshakeOutcome::Ok, 0.1, 3));
    o.push(handshakes(BACKEND, HandshakeOutcome::Ok, 0.1, 3));
    o
}

fn gateway_timeout_rows() -> Vec<Row> {
    const SLOW: &str = "504.backend-slow";
    const SLOW_502: &str = "502.backend-slow";
    const CONNECT: &str = "504.connect-timeout";
    const T: &[f64] = &[1000.0, 1001.0, 1000.5];
    vec![
        row(
            "the listener gives up after 1 s on a backend that takes 2 s; nothing documented",
            gateway_run(504, T, &[2000.0, 2001.0, 2000.5]),
        )
        .profile(Profile::none())
        .plain_listener()
        .expect(SLOW, Confirmed)
        .expect(SLOW_502, RuledOut)
        .expect(CONNECT, RuledOut)
        .mentions(SLOW, "gives up with 504 after 1.0 s (measured)")
        .mentions(SLOW, "up to 2 s")
        .mentions(SLOW_502, "gives up with 504, not 502"),
        row(
            "the same with the nginx profile's 60 s: the measurement wins and both are said",
            gateway_run(504, T, &[2000.0, 2001.0, 2000.5]),
        )
        .profile(Profile::nginx())
        .plain_listener()
        .expect(SLOW, Confirmed)
        .mentions(
            SLOW,
            "this listener gives up after 1.0 s (measured); the nginx profile documents 60 s for its read timeout",
        ),
        row(
            "HAProxy timeout server 1 s against the haproxy profile's 50 s",
            gateway_run(504, T, &[2000.0, 2001.0, 2000.5]),
        )
        .profile(Profile::haproxy())
        .plain_listener()
        .expect(SLOW, Confirmed)
        .mentions(SLOW, "the haproxy profile documents 50 s"),
        row(
            "the measured timeout matches what was declared",
            gateway_run(504, T, &[2000.0, 2001.0, 2000.5]),
        )
        .profile(Profile::nginx().with_declared(&declared(Some(1000), None)))
        .plain_listener()
        .expect(SLOW, Confirmed)
        .mentions(SLOW, "matching the 1 s you declared"),
        row(
            "504s scattered in time are not one timeout",
            gateway_run(504, &[300.0, 1000.0, 1900.0], &[3000.0, 3000.0, 3000.0]),
        )
        .profile(Profile::none())
        .plain_listener()
        .expect(SLOW, Inconclusive)
        .mentions(SLOW, "not one timeout"),
        row(
            "a backend just under the listener's timeout does not confirm",
            gateway_run(504, T, &[950.0, 960.0, 955.0]),
        )
        .profile(Profile::none())
        .plain_listener()
        .expect(SLOW, Inconclusive)
        .mentions(SLOW, "too close to tell"),
        row(
            "a backend just over the listener's timeout, within jitter, does not confirm",
            gateway_run(504, T, &[1060.0, 1070.0, 1065.0]),
        )
        .profile(Profile::none())
        .plain_listener()
        .expect(SLOW, Inconclusive),
        row(
            "the listener gives up after 1 s though the backend answers in 5 ms",
            gateway_run(504, T, &[5.0, 5.0, 5.0]),
        )
        .profile(Profile::none())
        .plain_listener()
        .expect(SLOW, Inconclusive)
        .expect(CONNECT, Inconclusive)
        .mentions(SLOW, "504.connect-timeout")
        .mentions(CONNECT, "a firewall that lets us through but not the listener"),
        row(
            "the backend's own 504s at the same moment are passed on, not the listener's timeout",
            {
                let mut o = latency(LISTENER, 504, T);
                o.extend(latency(BACKEND, 504, &[1000.0, 1000.0, 1000.0]));
                o
            },
        )
        .profile(Profile::none())
        .plain_listener()
        .expect(SLOW, RuledOut)
        .mentions(SLOW, "504.passthrough"),
        row(
            "one 504 alone cannot show a timeout",
            gateway_run(504, &[1000.0], &[2000.0]),
        )
        .profile(Profile::none())
        .plain_listener()
        .expect(SLOW, Inconclusive)
        .mentions(SLOW, "one answer cannot show a timeout"),
        row(
            "a 504 at once is no timeout, however slow the backend",
            gateway_run(504, &[3.0, 4.0, 3.0], &[2000.0, 2000.0, 2000.0]),
        )
        .profile(Profile::none())
        .plain_listener()
        .expect(SLOW, RuledOut)
        .mentions(SLOW, "at once"),
        row(
            "the listener passes every answer on",
            {
                let mut o = latency(LISTENER, 200, &[301.0, 310.0, 305.0]);
                o.extend(latency(BACKEND, 200, &[300.0, 300.0, 300.0]));
                o
            },
        )
        .profile(Profile::none())
        .plain_listener()
        .expect(SLOW, RuledOut)
        .expect(SLOW_502, RuledOut)
        .mentions(SLOW, "passed every answer on"),
        row(
            "the listener waits longer than declared and passes the slow answers on",
            {
                let mut o = latency(LISTENER, 200, &[1500.0, 1500.0]);
                o.extend(latency(BACKEND, 200, &[1500.0, 1500.0]));
                o
            },
        )
        .profile(Profile::nginx().with_declared(&declared(Some(1000), None)))
        .plain_listener()
        .expect(SLOW, RuledOut)
        .mentions(SLOW, "its read timeout is longer than that"),
        row(
            "neither side answers within our wait: say what to raise, never rule out",
            {
                let mut o = with_stats(LISTENER, vec![unanswered(LISTENER, 1), unanswered(LISTENER, 2)]);
                o.extend(with_stats(BACKEND, vec![unanswered(BACKEND, 1), unanswered(BACKEND, 2)]));
                o
            },
        )
        .profile(Profile::nginx())
        .plain_listener()
        .expect(SLOW, Inconclusive)
        .expect(SLOW_502, Inconclusive)
        .mentions(SLOW, "response-timeout"),
        row(
            "a listener that gives up with 502 after 1 s",
            gateway_run(502, T, &[2000.0, 2000.0, 2000.0]),
        )
        .profile(Profile::none())
        .plain_listener()
        .expect(SLOW_502, Confirmed)
        .expect(SLOW, RuledOut)
        .mentions(SLOW, "gives up with 502, not 504"),
        row(
            "only the backend, nothing documented: measured, not judged",
            latency(BACKEND, 200, &[5.0, 5.0]),
        )
        .profile(Profile::none())
        .plain_listener()
        .expect(SLOW, Inconclusive)
        .mentions(SLOW, "no listener timeout is known"),
        row(
            "only the backend, fast, against a documented 60 s: a comparison, not a ruling",
            latency(BACKEND, 200, &[5.0, 5.0]),
        )
        .profile(Profile::nginx())
        .plain_listener()
        .expect(SLOW, Inconclusive)
        .mentions(SLOW, "the nginx profile documents 60 s"),
        row(
            "only the backend, fast, against a declared 1 s",
            latency(BACKEND, 200, &[5.0, 5.0]),
        )
        .profile(Profile::nginx().with_declared(&declared(Some(1000), Some(1000))))
        .plain_listener()
        .expect(SLOW, RuledOut)
        .mentions(SLOW, "you declared"),
        row(
            "SYNs dropped and the listener answers 504 after 1 s every time",
            {
                let mut o = latency(LISTENER, 504, T);
                o.extend(with_stats(
                    BACKEND,
                    vec![syn_dropped(BACKEND, 1, 3000.0), syn_dropped(BACKEND, 2, 3000.0)],
                ));
                o.push(handshakes(BACKEND, HandshakeOutcome::TimedOut, 3000.0, 3));
                o
            },
        )
        .profile(Profile::nginx())
        .plain_listener()
        .expect(CONNECT, Confirmed)
        .expect(SLOW, Inconclusive)
        .mentions(CONNECT, "how long it waits for a connection (measured)")
        .mentions(CONNECT, "the nginx profile documents 60 s for its connect timeout"),
        row(
            "only the backend's handshakes, nothing documented",
            vec![handshakes(BACKEND, HandshakeOutcome::Ok, 0.2, 3)],
        )
        .profile(Profile::none())
        .plain_listener()
        .expect(CONNECT, Inconclusive),
        row(
            "only the backend's handshakes, against a declared connect timeout",
            vec![handshakes(BACKEND, HandshakeOutcome::Ok, 0.2, 3)],
        )
        .profile(Profile::none().with_declared(&declared(None, Some(1000))))
        .plain_listener()
        .expect(CONNECT, RuledOut),
    ]
}

#[test]
fn gateway_timeouts() {
    check(&gateway_timeout_rows());
}

/// What each finding rests on: with no profile, only what was measured; a profile's number
/// joins as documented, never alone.
#[test]
fn a_measured_timeout_rests_on_the_measurement() {
    use lbprobe::profile::Basis;
    let slow = |profile: Profile| {
        let r = row(
            "",
            gateway_run(504, &[1000.0, 1001.0, 1000.5], &[2000.0, 2000.0, 2000.0]),
        )
        .profile(profile)
        .plain_listener();
        r.classify()
            .into_iter()
            .find(|f| f.cause == "504.backend-slow")
            .expect("a finding")
    };
    let f = slow(Profile::none());
    assert_eq!(f.verdict, Confirmed);
    assert_eq!(f.rests_on, vec![Basis::Measured], "{f:?}");
    let f = slow(Profile::nginx());
    assert_eq!(f.verdict, Confirmed);
    assert_eq!(f.rests_on, vec![Basis::Measured, Basis::Documented]);
    assert!(f
        .evidence
        .iter()
        .any(|e| e.basis == Basis::Documented && e.text.contains("60 s")));
}

// ------------------------------------------------------- no backends / every backend unhealthy

/// The listener's baseline answered with its own page for `status` after `ms`.
fn listener_baseline(status: u16, reason: &str, ms: f64) -> Obs {
    obs(Family::Protocol, "baseline", LISTENER)
        .answer(status, reason, &nginx_page(status, reason))
        .after(ms)
}

fn backend_baseline(status: u16, reason: &str, ms: f64) -> Obs {
    baseline(BACKEND, status, reason).after(ms)
}

fn unavailable_rows() -> Vec<Row> {
    const ID: &str = "502.all-backends-unhealthy";
    const NONE: &str = "503.no-backends";
    let pool = |listener: &[u16], members: &[u16]| -> Vec<Obs> {
        let size = members.len();
        let mut o: Vec<Obs> = members
            .iter()
            .enumerate()
            .flat_map(|(i, s)| (0..2).map(move |_| pool_request(Some(i), size, *s)))
            .collect();
        o.extend(listener.iter().map(|s| pool_request(None, size, *s)));
        o
    };
    vec![
        row(
            "a 502 after the listener's 2 s timeout in front of a 4 s backend is no answer without backends",
            vec![
                listener_baseline(502, "Bad Gateway", 2000.0),
                backend_baseline(200, "OK", 4000.0),
            ],
        )
        .profile(Profile::none())
        .plain_listener()
        .expect(ID, Inconclusive)
        .mentions(ID, "not at once"),
        row(
            "the same with the 2 s timeout declared",
            vec![
                listener_baseline(502, "Bad Gateway", 2000.0),
                backend_baseline(200, "OK", 4000.0),
            ],
        )
        .profile(Profile::nginx().with_declared(&declared(Some(2000), None)))
        .plain_listener()
        .expect(ID, RuledOut)
        .mentions(ID, "at the 2 s timeout you declared"),
        row(
            "the same with the timeout measured by the latency requests",
            {
                let mut o = vec![
                    listener_baseline(502, "Bad Gateway", 2000.0),
                    backend_baseline(200, "OK", 4000.0),
                ];
                o.extend(gateway_run(502, &[2000.0, 2001.0, 2000.0], &[4000.0, 4000.0, 4000.0]));
                o
            },
        )
        .profile(Profile::none())
        .plain_listener()
        .expect(ID, RuledOut)
        .expect("502.backend-slow", Confirmed)
        .mentions(ID, "after 2.0 s every time (measured)"),
        row(
            "502 at once while the backend fails directly",
            vec![
                listener_baseline(502, "Bad Gateway", 1.0),
                backend_baseline(500, "Internal Server Error", 3.0),
            ],
        )
        .plain_listener()
        .expect(ID, Confirmed)
        .mentions(ID, "fails when asked directly (500 Internal Server Error)"),
        row(
            "502 at once while the backend resets: that failure relayed, or the backend held unhealthy",
            vec![
                listener_baseline(502, "Bad Gateway", 1.0),
                obs(Family::Protocol, "baseline", BACKEND).ended(ConnEnd::Reset),
            ],
        )
        .plain_listener()
        .expect(ID, Inconclusive)
        .mentions(ID, "502.malformed-backend-response"),
        row(
            "502 at once while the backend answers 200 directly: health checks or another backend",
            vec![
                listener_baseline(502, "Bad Gateway", 1.0),
                backend_baseline(200, "OK", 3.0),
            ],
        )
        .plain_listener()
        .expect(ID, Inconclusive)
        .mentions(ID, "health check"),
        row(
            "502 at once with no backend named",
            vec![listener_baseline(502, "Bad Gateway", 1.0)],
        )
        .plain_listener()
        .no_backend()
        .expect(ID, Inconclusive),
        row(
            "the listener passes other requests on",
            {
                let mut o = vec![
                    listener_baseline(502, "Bad Gateway", 1.0),
                    backend_baseline(500, "Internal Server Error", 3.0),
                ];
                o.extend(latency(LISTENER, 200, &[3.0, 3.0]));
                o
            },
        )
        .plain_listener()
        .expect(ID, RuledOut)
        .mentions(ID, "it has a backend it sends to"),
        row(
            "one bad member of three: the pool's 502s are that member's",
            {
                let mut o = vec![
                    listener_baseline(502, "Bad Gateway", 1.0),
                    backend_baseline(200, "OK", 1.0),
                ];
                o.extend(pool(&[200, 502, 200, 200, 502, 200], &[200, 502, 200]));
                o
            },
        )
        .plain_listener()
        .expect(ID, RuledOut)
        .expect("502.bad-pool-member", Confirmed)
        .mentions(ID, "502.bad-pool-member"),
        row(
            "every member fails directly and the listener answers 502 at once",
            {
                let mut o = vec![
                    listener_baseline(502, "Bad Gateway", 1.0),
                    backend_baseline(500, "Internal Server Error", 1.0),
                ];
                o.extend(pool(&[502, 502, 502], &[500, 500, 500]));
                o
            },
        )
        .plain_listener()
        .expect(ID, Confirmed)
        .expect("502.bad-pool-member", RuledOut)
        .mentions(ID, "every one of the 3 pool members fails"),
        row(
            "every member answers directly, the listener 502 at once",
            {
                let mut o = vec![
                    listener_baseline(502, "Bad Gateway", 1.0),
                    backend_baseline(200, "OK", 1.0),
                ];
                o.extend(pool(&[502, 502, 502], &[200, 200, 200]));
                o
            },
        )
        .plain_listener()
        .expect(ID, Inconclusive)
        .mentions(ID, "3 of 3 pool members answer well directly"),
        row(
            "HAProxy says it has no server, at once",
            vec![
                obs(Family::Protocol, "baseline", LISTENER)
                    .answer(
                        503,
                        "Service Unavailable",
                        "<html><body><h1>503 Service Unavailable</h1>\\nNo server is available to handle this request.\\n</body></html>\\n",
                    )
                    .after(0.5),
                backend_baseline(200, "OK", 1.0),
            ],
        )
        .plain_listener()
        .expect(NONE, Confirmed)
        .mentions(NONE, "in its own words"),
        row(
            "Apache's 503 at once, every member of its pool refusing: no backends, with the reference page's 502 noted",
            {
                let mut o = vec![
                    apache_503().after(0.5),
                    obs(Family::Protocol, "baseline", BACKEND).ended(ConnEnd::ConnectRefused),
                ];
                o.extend((0..3).flat_map(|i| (0..2).map(move |_| refused_member(i, 3))));
                o.extend((0..3).map(|_| apache_503_through_pool(3)));
                o
            },
        )
        .plain_listener()
        .expect(NONE, Confirmed)
        .mentions(NONE, "Apache httpd answers 503 when every member of its pool is down")
        .mentions(NONE, "the reference page documents 502")
        .expect(ID, RuledOut)
        .mentions(ID, "with 503, not 502 (see 503.no-backends)")
        .expect("502.bad-pool-member", RuledOut)
        .expect("502.backend-unreachable", Confirmed)
        .mentions("502.backend-unreachable", "Apache httpd answers 503 for it, not the 502"),
        row(
            "Apache's 503 at once, the one backend named refusing: that refusal reported, or the backend held in error",
            vec![
                apache_503().after(0.5),
                obs(Family::Protocol, "baseline", BACKEND).ended(ConnEnd::ConnectRefused),
            ],
        )
        .plain_listener()
        .expect(NONE, Inconclusive)
        .mentions(
            NONE,
            "(see 502.backend-unreachable; Apache httpd answers 503 when it cannot connect to a backend)",
        )
        .expect("502.backend-unreachable", Confirmed)
        .mentions("502.backend-unreachable", "Apache httpd answers 503 for it"),
        row(
            "nginx's 502 at once for a refused backend: no note, 502 is the reference page's code",
            vec![
                listener_baseline(502, "Bad Gateway", 0.5),
                obs(Family::Protocol, "baseline", BACKEND).ended(ConnEnd::ConnectRefused),
            ],
        )
        .plain_listener()
        .expect("502.backend-unreachable", Confirmed)
        .expect(ID, Inconclusive)
        .mentions(ID, "see 502.backend-unreachable)"),
    ]
}

/// Apache httpd 2.4's own 503 page, as Debian's sends it when it cannot connect to a backend.
fn apache_503_body() -> String {
    lbprobe::transport::escape_bytes(
        b"<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 4.01//EN\" \"http://www.w3.org/TR/html4/strict.dtd\">\n<html><head>\n<title>503 Service Unavailable</title>\n</head><body>\n<h1>Service Unavailable</h1>\n<p>The server is temporarily unable to service your\nrequest due to maintenance downtime or capacity\nproblems. Please try again later.</p>\n</body></html>\n",
    )
}

fn apache_503() -> Obs {
    obs(Family::Protocol, "baseline", LISTENER)
        .answer(503, "Service Unavailable", &apache_503_body())
        .headers_exactly(&[("Server", "Apache/2.4.71 (Debian)")])
}

/// One pool request through Apache, answered with its 503 at once.
fn apache_503_through_pool(size: usize) -> Obs {
    let mut o = pool_request(None, size, 503);
    o = o.answer(503, "Service Unavailable", &apache_503_body());
    o.headers_exactly(&[("Server", "Apache/2.4.71 (Debian)")])
        .after(0.5)
}

/// One direct request to pool member `i`, refused.
fn refused_member(i: usize, size: usize) -> Obs {
    let ok = pool_request(Some(i), size, 200).build();
    let mut o = obs(Family::Pool, &ok.variant, BACKEND).ended(ConnEnd::ConnectRefused);
    o = o.detail(ok.detail);
    o
}

#[test]
fn no_backends_and_all_backends_unhealthy() {
    check(&unavailable_rows());
}

// ---------------------------------------------------------------- 502.tls-handshake-failed-to-backend

/// The backend's sniff: a TLS handshake and what its certificate check said (`None`: the
/// handshake never got as far as a certificate).
fn sniff_cert(certificate: Option<CertCheck>) -> Obs {
    sniff(
        BACKEND,
        Sniff::Tls {
            version: Some("TLSv1.3".into()),
            certificate,
        },
    )
}

fn cert_failed(fault: CertFault, against: &str, why: &str) -> Option<CertCheck> {
    Some(CertCheck::Failed {
        against: against.into(),
        fault,
        why: why.into(),
        self_signed: false,
    })
}

const EXPIRED: &str = "the certificate expired 2166 days ago";

/// nginx's own 502 to the baseline.
fn nginx_502() -> Obs {
    obs(Family::Protocol, "baseline", LISTENER).answer(
        502,
        "Bad Gateway",
        &nginx_page(502, "Bad Gateway"),
    )
}

/// lbprobe's verified GET to the backend: its handshake fails on the certificate.
fn direct_tls_failed(why: &str) -> Obs {
    obs(Family::Protocol, "baseline", BACKEND)
        .ended(ConnEnd::TlsFailed(format!("invalid certificate: {why}")))
}

/// Plain HTTP straight to the backend's TLS port: nginx's page for it.
fn plain_to_backend_page() -> Obs {
    obs(Family::Protocol, PLAIN_TO_TLS_BACKEND, BACKEND).answer(
        400,
        "Bad Request",
        &nginx_plain_to_tls_page(),
    )
}

fn tls_to_backend_rows() -> Vec<Row> {
    const ID: &str = "502.tls-handshake-failed-to-backend";
    let expired = || cert_failed(CertFault::Expired, "the CA file ca.pem", EXPIRED);
    vec![
        row(
            "an expired certificate, nginx's own 502, the port answers plain HTTP with a page",
            vec![
                sniff_cert(expired()),
                nginx_502(),
                direct_tls_failed(EXPIRED),
                plain_to_backend_page(),
            ],
        )
        .expect(ID, Confirmed)
        .mentions(ID, "expired")
        .mentions(ID, "would have relayed that 400")
        .expect("400.backend-expects-https", RuledOut)
        .mentions("400.backend-expects-https", "answers plain HTTP with 400"),
        row(
            "a certificate for another name: expiry and names fail whatever the listener trusts",
            vec![
                sniff_cert(cert_failed(
                    CertFault::WrongName,
                    "the web PKI's roots",
                    "the certificate is not valid for 127.0.0.1 (it names wrong.lbprobe.test)",
                )),
                nginx_502(),
                direct_tls_failed("not valid for name"),
                plain_to_backend_page(),
            ],
        )
        .expect(ID, Confirmed),
        row(
            "an unknown issuer against the CA file the user gave: confirmed on the declared CA",
            vec![
                sniff_cert(cert_failed(
                    CertFault::UnknownIssuer,
                    "the CA file ca.pem",
                    "unknown issuer",
                )),
                nginx_502(),
                direct_tls_failed("unknown issuer"),
                plain_to_backend_page(),
            ],
        )
        .expect(ID, Confirmed)
        .mentions(ID, "you gave it"),
        row(
            "an unknown issuer against the web PKI: the listener may trust that private CA",
            vec![
                sniff_cert(cert_failed(
                    CertFault::UnknownIssuer,
                    "the web PKI's roots",
                    "unknown issuer",
                )),
                nginx_502(),
                direct_tls_failed("unknown issuer"),
                plain_to_backend_page(),
            ],
        )
        .expect(ID, Inconclusive)
        .mentions(ID, "--cacert"),
        row(
            "the port closes on plain HTTP: forwarded plain HTTP answers 502 as well",
            vec![
                sniff_cert(expired()),
                nginx_502(),
                direct_tls_failed(EXPIRED),
                obs(Family::Protocol, PLAIN_TO_TLS_BACKEND, BACKEND).ended(ConnEnd::Fin),
            ],
        )
        .expect(ID, Inconclusive)
        .mentions(ID, "400.backend-expects-https")
        .expect("400.backend-expects-https", Inconclusive),
        row(
            "plain HTTP to the backend port not sent: the same two readings stay open",
            vec![
                sniff_cert(expired()),
                nginx_502(),
                direct_tls_failed(EXPIRED),
            ],
        )
        .expect(ID, Inconclusive)
        .mentions(ID, "not known"),
        row(
            "a certificate that verifies for lbprobe, and the listener's 502 all the same",
            vec![
                sniff_cert(Some(CertCheck::Verified {
                    against: "the CA file ca.pem".into(),
                })),
                nginx_502(),
                baseline(BACKEND, 200, "OK"),
                plain_to_backend_page(),
            ],
        )
        .expect(ID, Inconclusive)
        .mentions(ID, "verifies against the CA file ca.pem"),
        row(
            "verification off: the certificate was not checked",
            vec![
                sniff_cert(Some(CertCheck::NotChecked)),
                nginx_502(),
                baseline(BACKEND, 200, "OK"),
                plain_to_backend_page(),
            ],
        )
        .expect(ID, Inconclusive)
        .mentions(ID, "--insecure"),
        row(
            "no handshake lbprobe could finish either: versions or ciphers",
            vec![
                sniff_cert(None),
                nginx_502(),
                obs(Family::Protocol, "baseline", BACKEND)
                    .ended(ConnEnd::TlsFailed("alert: protocol version".into())),
                plain_to_backend_page(),
            ],
        )
        .expect(ID, Inconclusive)
        .mentions(ID, "TLS 1.2 and 1.3"),
        row(
            "HAProxy's own 503: a failed handshake or no server up",
            vec![
                sniff_cert(expired()),
                obs(Family::Protocol, "baseline", LISTENER)
                    .answer(
                        503,
                        "Service Unavailable",
                        &haproxy_page(
                            503,
                            "Service Unavailable",
                            "No server is available to handle this request.",
                        ),
                    )
                    .without_header("Server"),
                direct_tls_failed(EXPIRED),
                plain_to_backend_page(),
            ],
        )
        .profile(Profile::haproxy())
        .expect(ID, Inconclusive)
        .mentions(ID, "503.no-backends"),
        row(
            "the listener's own 504 is another cause's",
            vec![
                sniff_cert(expired()),
                obs(Family::Protocol, "baseline", LISTENER).answer(
                    504,
                    "Gateway Time-out",
                    &nginx_page(504, "Gateway Time-out"),
                ),
                direct_tls_failed(EXPIRED),
            ],
        )
        .absent(ID),
        row(
            "the listener relays the backend's answer: its TLS connection to the backend works",
            vec![
                sniff_cert(expired()),
                baseline(LISTENER, 200, "OK"),
                direct_tls_failed(EXPIRED),
                plain_to_backend_page(),
            ],
        )
        .expect(ID, RuledOut)
        .mentions(ID, "the backend's certificate does not verify"),
        row(
            "a plain HTTP backend: no TLS handshake to fail",
            vec![
                sniff_plain(BACKEND),
                nginx_502(),
                baseline(BACKEND, 200, "OK"),
            ],
        )
        .expect(ID, RuledOut),
        row(
            "the backend port unreachable from here",
            vec![
                sniff(
                    BACKEND,
                    Sniff::Unreachable {
                        end: ConnEnd::ConnectRefused,
                    },
                ),
                nginx_502(),
                obs(Family::Protocol, "baseline", BACKEND).ended(ConnEnd::ConnectRefused),
            ],
        )
        .expect(ID, Inconclusive)
        .mentions(ID, "could not reach"),
        row(
            "the listener silent: no 502 to explain",
            vec![
                sniff_cert(expired()),
                obs(Family::Protocol, "baseline", LISTENER).ended(ConnEnd::Timeout),
                direct_tls_failed(EXPIRED),
                plain_to_backend_page(),
            ],
        )
        .expect(ID, Inconclusive)
        // Silence says nothing of what the listener forwards either.
        .expect("400.backend-expects-https", Inconclusive),
        row(
            "no backend named, the listener's own 502",
            vec![nginx_502()],
        )
        .no_backend()
        .expect(ID, Inconclusive)
        .mentions(ID, "name the backend"),
        row(
            "no backend named, valid requests pass: nothing to say",
            vec![baseline(LISTENER, 200, "OK")],
        )
        .no_backend()
        .absent(ID),
    ]
}

#[test]
fn tls_handshake_failed_to_backend() {
    check(&tls_to_backend_rows());
}

// ---------------------------------------------------------------- families tabled in their modules

// partial, response, rate, mtu and keepalive keep their verdict tables next to their rules (unit
// tests there); these rows put each of their causes through `classify` once, a fault and a
// healthy neighbour, so every cause the rule table declares meets the whole pipeline here.

/// A partial-family observation: how the side ended the incomplete request.
fn partial_obs(variant: &str, role: Role, outcome: PartialOutcome, waited_ms: f64) -> Obs {
    let close_early = variant == partial::CLOSE_EARLY;
    let o = match &outcome {
        // The listener's own page; the backend's application body.
        PartialOutcome::Answered { status } if role == LISTENER => {
            obs(Family::Partial, variant, role).answer(
                *status,
                "Request Time-out",
                &nginx_page(*status, "Request Time-out"),
            )
        }
        PartialOutcome::Answered { status } => obs(Family::Partial, variant, role).answer(
            *status,
            "Request Time-out",
            &app_body(*status),
        ),
        _ => obs(Family::Partial, variant, role).ended(ConnEnd::Fin),
    };
    o.detail(Detail::Partial(PartialResult {
        incomplete: "the body is missing".into(),
        cap_ms: if close_early { 500.0 } else { 6000.0 },
        outcome,
        waited_ms,
        we_closed_after_ms: close_early.then_some(waited_ms),
        after_our_close: close_early.then_some(PartialOutcome::Closed),
        after_close_ms: close_early.then_some(1.0),
    }))
}

/// Every waiting variant to both sides ending as `listener` says (the backend answers 408 after
/// 2 s), and a close-early both sides sit out.
fn partial_run(listener: PartialOutcome, waited_ms: f64) -> Vec<Obs> {
    let mut out = Vec::new();
    for v in partial::WAITING {
        out.push(partial_obs(v, LISTENER, listener.clone(), waited_ms));
        out.push(partial_obs(
            v,
            BACKEND,
            PartialOutcome::Answered { status: 408 },
            2000.0,
        ));
    }
    for role in [LISTENER, BACKEND] {
        out.push(partial_obs(
            partial::CLOSE_EARLY,
            role,
            PartialOutcome::StillWaiting,
            500.0,
        ));
    }
    out
}

/// A response-family GET answered `status` on `role`, judged as the probe judges it.
fn response_get(role: Role, status: u16, reason: &str, body: &str) -> Obs {
    let answered = || obs(Family::Response, "get", role).answer(status, reason, body);
    let check = ResponseCheck::of(
        "GET",
        answered()
            .build()
            .exchange
            .as_ref()
            .expect("answer() sets the exchange"),
    );
    answered().detail(Detail::Response(check))
}

/// The response-family GET to the backend: the connection closed without an answer.
fn response_closed(role: Role) -> Obs {
    let closed = || obs(Family::Response, "get", role).ended(ConnEnd::Fin);
    let check = ResponseCheck::of(
        "GET",
        closed().build().exchange.as_ref().expect("ended() sets it"),
    );
    closed().detail(Detail::Response(check))
}

/// A rate ramp on the listener: one step per (rate, 200s, 503s), ended by `stop`. Read from
/// JSON as the report writes it, so fields the ramp gains with defaults need no edit here.
fn ramp(steps: &[(f64, u32, u32)], stop: &str) -> Obs {
    let steps: Vec<serde_json::Value> = steps
        .iter()
        .map(|&(rps, ok, unavailable)| {
            let mut answered = serde_json::Map::new();
            if ok > 0 {
                answered.insert("200".into(), ok.into());
            }
            if unavailable > 0 {
                answered.insert("503".into(), unavailable.into());
            }
            serde_json::json!({
                "target_rps": rps, "achieved_rps": rps, "duration_ms": 2000.0,
                "sent": ok + unavailable, "answered": answered, "errors": {}, "skipped": 0,
                "p50_ms": 2.0, "p95_ms": 4.0, "samples": {}, "connections": 4,
            })
        })
        .collect();
    let onset = steps.iter().position(|s| s["answered"]["503"].is_number());
    let result: RateResult = serde_json::from_value(serde_json::json!({
        "steps": steps, "stop": stop, "cap_rps": 40.0, "sustain": 0.5,
        "onset_rps": onset.map(|_| 40.0), "clean_rps": 20.0,
    }))
    .expect("a rate result");
    obs(Family::Rate, "ramp", LISTENER).detail(Detail::Rate(result))
}

/// A POST of the mtu family with a `size`-byte body, answered `status` on `role`.
fn mtu_post(role: Role, size: usize, status: u16, reason: &str) -> Obs {
    obs(Family::Mtu, &mtu::post_variant(size), role).answer(status, reason, &app_body(status))
}

/// The keepalive family's idle-timeout measurement on `role`.
fn idle(role: Role, timeout: IdleTimeout) -> Obs {
    obs(Family::Keepalive, keepalive::IDLE_TIMEOUT, role).detail(Detail::Keepalive(
        KeepaliveDetail::Idle(IdleResult {
            timeout,
            cap_ms: 90_000.0,
            trials: Vec::new(),
        }),
    ))
}

fn module_tabled_rows() -> Vec<Row> {
    let nginx_502 = nginx_page(502, "Bad Gateway");
    vec![
        row(
            "partial: the listener gives up on an incomplete request with 408 after 60 s",
            partial_run(PartialOutcome::Answered { status: 408 }, 60_000.0),
        )
        .expect("408.partial-request", Reproduced)
        .mentions("408.partial-request", "straight to the backend"),
        row(
            "partial: the listener answers an incomplete request with 400 at once",
            partial_run(PartialOutcome::Answered { status: 400 }, 3.0),
        )
        .expect("408.partial-request", RuledOut),
        row(
            "response: the backend closes without an answer, the listener says 502",
            vec![
                response_get(LISTENER, 502, "Bad Gateway", &nginx_502),
                response_closed(BACKEND),
            ],
        )
        .expect("500.backend-closed-early", Confirmed)
        .expect("502.backend-error-mapped", Confirmed)
        .expect("502.malformed-backend-response", RuledOut),
        row(
            "response: both sides answer a well-formed 200",
            vec![
                response_get(LISTENER, 200, "OK", &app_body(200)),
                response_get(BACKEND, 200, "OK", &app_body(200)),
            ],
        )
        .expect("500.backend-closed-early", RuledOut)
        .expect("502.backend-error-mapped", RuledOut)
        .expect("502.malformed-backend-response", RuledOut),
        row(
            "rate: the ramp reaches its cap with 200s only",
            vec![ramp(&[(10.0, 20, 0), (20.0, 40, 0), (40.0, 80, 0)], "cap-reached")],
        )
        .expect("503.rate-limited", RuledOut),
        row(
            "mtu: small and large POSTs both answered",
            vec![
                mtu_post(LISTENER, 1000, 200, "OK"),
                mtu_post(LISTENER, 8000, 200, "OK"),
            ],
        )
        .expect("502.mtu-mismatch", RuledOut),
        row(
            "keepalive: the backend closes idle connections after 5 s, the listener's reuse window only assumed",
            vec![idle(BACKEND, IdleTimeout::Eager { after_ms: 5000.0 })],
        )
        .expect("502.keepalive-race", Inconclusive)
        .mentions("502.keepalive-race", "declare it"),
        row(
            "keepalive: the backend keeps idle connections 75 s",
            vec![idle(BACKEND, IdleTimeout::Eager { after_ms: 75_000.0 })],
        )
        .expect("502.keepalive-race", RuledOut),
    ]
}

#[test]
fn families_tabled_in_their_modules() {
    check(&module_tabled_rows());
}

// ---------------------------------------------------------------- ids and the catalogue

fn all_rows() -> Vec<Row> {
    [
        http_to_https_listener_rows(),
        backend_expects_https_rows(),
        malformed_request_rows(),
        backend_validation_rows(),
        header_too_large_rows(),
        uri_limit_rows(),
        trace_unsupported_rows(),
        backend_method_unsupported_rows(),
        backend_error_rows(),
        backend_unreachable_rows(),
        passthrough_rows(),
        healthy_rows(),
        gateway_timeout_rows(),
        unavailable_rows(),
        module_tabled_rows(),
        tls_to_backend_rows(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

#[test]
fn every_cause_a_rule_declares_is_in_the_catalogue() {
    let catalogue = Catalogue::builtin();
    let missing: Vec<String> = RULES
        .iter()
        .flat_map(|r| r.causes.iter().map(move |c| (r.name, *c)))
        .filter(|(_, c)| catalogue.get(c).is_none())
        .map(|(rule, c)| format!("{c} (the {rule} rule)"))
        .collect();
    assert!(
        missing.is_empty(),
        "rules declare causes the catalogue lacks: {missing:?}"
    );
}

#[test]
fn every_cause_a_rule_declares_has_a_table_row() {
    let mut seen = BTreeSet::new();
    for r in all_rows() {
        for f in r.classify() {
            seen.insert(f.cause);
        }
        seen.extend(r.expect.iter().map(|(c, _)| c.clone()));
    }
    let untested: Vec<String> = RULES
        .iter()
        .flat_map(|r| r.causes.iter().map(move |c| (r.name, *c)))
        .filter(|(_, c)| !seen.contains(*c))
        .map(|(rule, c)| format!("{c} (the {rule} rule)"))
        .collect();
    assert!(
        untested.is_empty(),
        "causes a rule declares that no table row exercises; add rows: {untested:?}"
    );
}

#[test]
fn every_cause_a_probe_names_is_in_the_catalogue() {
    // The tags every family sets are checked at run time too (classify asserts them in debug
    // builds); these are the ones the table's observations borrow.
    let catalogue = Catalogue::builtin();
    let mut ids: BTreeSet<String> = templates::malformed()
        .iter()
        .flat_map(|t| t.evidence_for.iter().cloned())
        .collect();
    for tags in [
        BASELINE_EVIDENCE,
        SNIFF_EVIDENCE,
        PLAIN_TO_TLS_EVIDENCE,
        METHOD_EVIDENCE,
        HEADER_EVIDENCE,
    ] {
        ids.extend(tags.iter().map(|t| t.to_string()));
    }
    let missing: Vec<&String> = ids
        .iter()
        .filter(|id| catalogue.get(id).is_none())
        .collect();
    assert!(
        missing.is_empty(),
        "probes tag causes the catalogue lacks: {missing:?}"
    );
}

#[test]
fn docs_probes_md_lists_every_malformed_template() {
    let docs = include_str!("../docs/probes.md");
    let missing: Vec<&str> = templates::malformed_ids()
        .filter(|id| !docs.contains(&format!("| `{id}` |")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/probes.md's template table lacks: {missing:?}"
    );
}
