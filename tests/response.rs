//! The `response` probe and its rules against a real nginx (`proxy_read_timeout 2s`) in front of
//! lab backends that answer badly: each fault is named by its own cause and not by its
//! neighbours. nginx tests fail (never skip) when nginx is missing.

use std::time::Duration;

use lbprobe::catalogue::Catalogue;
use lbprobe::classify::{self, Context, Finding, Verdict};
use lbprobe::lab::{BackendConfig, Fault, FaultRule, LabBackend, Nginx, NginxServer, NginxSpec};
use lbprobe::probe::response::{Ending, Problem, ResponseCheck};
use lbprobe::probe::{self, Detail, Family, Limits, Observation, Plan, ProbeSpec};
use lbprobe::profile::Profile;
use lbprobe::target::{Role, Target};

const MALFORMED: &str = "502.malformed-backend-response";
const CLOSED_EARLY: &str = "500.backend-closed-early";
const MAPPED: &str = "502.backend-error-mapped";

/// What one run of the `response` probe through nginx produced.
struct Scan {
    findings: Vec<Finding>,
    observations: Vec<Observation>,
    /// nginx's access log after the run (status and upstream_status per request).
    access_log: String,
    error_log: String,
}

impl Scan {
    fn finding(&self, cause: &str) -> &Finding {
        self.findings
            .iter()
            .find(|f| f.cause == cause)
            .unwrap_or_else(|| panic!("no finding for {cause}:\n{}", self.dump()))
    }

    fn verdict(&self, cause: &str) -> Verdict {
        self.finding(cause).verdict
    }

    /// Every evidence line of a finding, one per line.
    fn evidence(&self, cause: &str) -> String {
        lbprobe::classify::evidence_text(&self.finding(cause).evidence)
    }

    fn check(&self, variant: &str, role: Role) -> &ResponseCheck {
        self.observations
            .iter()
            .find(|o| o.family == Family::Response && o.variant == variant && o.role == role)
            .and_then(|o| match &o.detail {
                Detail::Response(c) => Some(c),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no response check for {variant} {role}:\n{}", self.dump()))
    }

    fn dump(&self) -> String {
        let mut out = String::new();
        for f in &self.findings {
            out.push_str(&format!("{} {}: {}\n", f.cause, f.verdict, f.reason));
            for e in &f.evidence {
                out.push_str(&format!("    {}\n", e.text));
            }
        }
        out.push_str("--- access log ---\n");
        out.push_str(&self.access_log);
        out.push_str("--- error log (tail) ---\n");
        let tail: Vec<&str> = self.error_log.lines().rev().take(10).collect();
        for line in tail.into_iter().rev() {
            out.push_str(line);
            out.push('\n');
        }
        out
    }

    /// Asserts the three causes' verdicts, showing the whole run when they differ.
    fn assert_verdicts(&self, malformed: Verdict, closed_early: Verdict, mapped: Verdict) {
        let got = [
            self.verdict(MALFORMED),
            self.verdict(CLOSED_EARLY),
            self.verdict(MAPPED),
        ];
        assert_eq!(
            got,
            [malformed, closed_early, mapped],
            "[{MALFORMED}, {CLOSED_EARLY}, {MAPPED}]\n{}",
            self.dump()
        );
    }

    /// The statuses nginx logged for the probe's GETs: (status, upstream_status) per line.
    fn logged(&self) -> Vec<(String, String)> {
        self.access_log
            .lines()
            .filter(|l| l.contains("\"GET "))
            .map(|l| (field(l, "status="), field(l, "upstream_status=")))
            .collect()
    }
}

fn field(line: &str, key: &str) -> String {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key))
        .unwrap_or("")
        .to_string()
}

/// Runs the `response` probe (with the baseline and sniff every run does) through a fresh nginx
/// in front of a lab backend with `fault` on every request, and classifies the observations.
async fn scan(fault: Option<Fault>) -> Scan {
    let mut config = BackendConfig::default();
    if let Some(fault) = fault {
        config = config.fault(FaultRule::all(fault));
    }
    let backend = LabBackend::start(config).await.expect("lab backend starts");
    let spec = NginxSpec::one(NginxServer::proxy(backend.url()).extra("proxy_read_timeout 2s;"));
    let nginx = Nginx::start(&spec).unwrap_or_else(|e| panic!("cannot run the nginx tests: {e}"));
    let plan = Plan::new(
        Some(Target::parse(Role::Listener, &nginx.url(0)).unwrap()),
        Some(Target::parse(Role::Backend, &backend.url()).unwrap()),
    )
    .with_profile(Profile::nginx())
    .with_probes(vec![ProbeSpec::Response])
    .with_limits(Limits {
        request_timeout: Duration::from_secs(5),
        ..Limits::default()
    });
    let output = probe::run(&plan, std::sync::Arc::new(|_| {})).await;
    let ctx = Context {
        profile: &plan.profile,
        listener_tls: Some(false),
        has_backend: true,
    };
    let findings = classify::classify(&output.observations, Catalogue::builtin(), &ctx);
    Scan {
        findings,
        observations: output.observations,
        access_log: nginx.access_log(),
        error_log: nginx.error_log(),
    }
}

use Verdict::{Confirmed, RuledOut};

#[tokio::test]
async fn healthy_backend_rules_out_all_three() {
    let s = scan(None).await;
    s.assert_verdicts(RuledOut, RuledOut, RuledOut);
    let backend = s.check("get", Role::Backend);
    assert!(
        backend.clean() && backend.problems.is_empty(),
        "{backend:?}"
    );
    assert_eq!(backend.status, Some(200));
    assert!(s.check("head", Role::Backend).clean());
    assert!(s.check("get", Role::Listener).clean());
    assert!(
        s.evidence(MALFORMED)
            .contains("a valid GET straight to the backend: 200 OK, complete, parses cleanly"),
        "{}",
        s.dump()
    );
}

#[tokio::test]
async fn malformed_status_line_is_confirmed_whatever_nginx_makes_of_it() {
    let s = scan(Some(Fault::MalformedStatusLine)).await;
    s.assert_verdicts(Confirmed, RuledOut, RuledOut);
    let backend = s.check("get", Role::Backend);
    assert!(
        matches!(
            backend.malformed()[..],
            [Problem::MalformedStatusLine { .. }]
        ),
        "{backend:?}"
    );
    assert_eq!(backend.status, None, "\"2OO\" is no status code");
    let f = s.finding(MALFORMED);
    assert!(f.reason.contains("malformed status line"), "{}", f.reason);
    let evidence = s.evidence(MALFORMED);
    assert!(evidence.contains("HTTP/1.1 2OO OK"), "{evidence}");
    assert!(
        s.error_log
            .contains("upstream sent no valid HTTP/1.0 header"),
        "{}",
        s.dump()
    );
    // nginx (1.22) does not answer 502 here: it falls back to HTTP/0.9 and relays the
    // backend's bytes as they are (logged as status 009). The finding says which happened.
    let listener = s.check("get", Role::Listener);
    if listener.status == Some(502) {
        assert!(
            f.reason.contains("the listener refuses it and answers 502"),
            "{}",
            f.reason
        );
    } else {
        assert_eq!(listener.malformed(), backend.malformed(), "{}", s.dump());
        assert!(
            f.reason
                .contains("the listener tolerated it and passed it on unchanged"),
            "{}",
            f.reason
        );
        assert!(
            evidence.contains("the same GET through the listener: malformed status line"),
            "{evidence}"
        );
        assert!(
            s.logged().iter().all(|(status, _)| status == "009"),
            "{}",
            s.dump()
        );
    }
}

#[tokio::test]
async fn header_without_colon_is_confirmed_and_nginx_repairs_it() {
    let s = scan(Some(Fault::MalformedHeader)).await;
    s.assert_verdicts(Confirmed, RuledOut, RuledOut);
    let backend = s.check("get", Role::Backend);
    assert!(
        matches!(backend.malformed()[..], [Problem::InvalidHeader { .. }]),
        "{backend:?}"
    );
    assert_eq!(backend.status, Some(200), "the status line itself is fine");
    let evidence = s.evidence(MALFORMED);
    assert!(
        evidence.contains("header line without colon: X-Lab-Broken-Header-Without-Colon"),
        "{evidence}"
    );
    // nginx takes a colon-less line as a header with an empty value and leaves it out of its
    // own answer: the client gets a clean 200.
    let listener = s.check("get", Role::Listener);
    assert_eq!(listener.status, Some(200), "{}", s.dump());
    assert!(listener.clean(), "{listener:?}");
    let f = s.finding(MALFORMED);
    assert!(
        f.reason.contains(
            "the listener tolerated it: it passed the answer on (200) with the fault repaired"
        ),
        "{}",
        f.reason
    );
    assert!(
        evidence.contains("the same GET through the listener: 200 OK, complete, parses cleanly"),
        "{evidence}"
    );
}

#[tokio::test]
async fn space_before_colon_gets_502_from_nginx() {
    let s = scan(Some(Fault::SpaceBeforeColon)).await;
    s.assert_verdicts(Confirmed, RuledOut, RuledOut);
    let backend = s.check("get", Role::Backend);
    assert!(
        matches!(backend.malformed()[..], [Problem::InvalidHeader { .. }]),
        "{backend:?}"
    );
    assert_eq!(
        s.check("get", Role::Listener).status,
        Some(502),
        "{}",
        s.dump()
    );
    let f = s.finding(MALFORMED);
    assert!(f.reason.contains("whitespace before colon"), "{}", f.reason);
    assert!(
        f.reason.contains("the listener refuses it and answers 502"),
        "{}",
        f.reason
    );
    assert!(
        s.evidence(MALFORMED)
            .contains("the same GET through the listener: 502 Bad Gateway"),
        "{}",
        s.dump()
    );
    assert!(
        s.error_log.contains("upstream sent invalid header"),
        "{}",
        s.dump()
    );
}

#[tokio::test]
async fn short_body_confirms_the_early_close_only() {
    let s = scan(Some(Fault::ShortBody)).await;
    s.assert_verdicts(RuledOut, Confirmed, RuledOut);
    let backend = s.check("get", Role::Backend);
    assert_eq!(
        backend.problems,
        vec![Problem::ShortBody {
            received: 10,
            expected: 100
        }],
        "{backend:?}"
    );
    assert_eq!(backend.ending, Ending::Fin);
    let f = s.finding(CLOSED_EARLY);
    assert!(
        f.reason.contains("closes after 10 of the 100 body bytes"),
        "{}",
        f.reason
    );
    let evidence = s.evidence(CLOSED_EARLY);
    assert!(
        evidence.contains("reference load balancer documents 500"),
        "{evidence}"
    );
    // nginx has already sent the 200 head when the backend closes: the client gets the same
    // cut, not a 502.
    let listener = s.check("get", Role::Listener);
    assert_eq!(listener.status, Some(200), "{}", s.dump());
    assert!(listener.cut_short().is_some(), "{listener:?}");
    assert!(
        evidence.contains("the same GET through the listener: 200 OK"),
        "{evidence}"
    );
    assert!(
        s.error_log
            .contains("upstream prematurely closed connection"),
        "{}",
        s.dump()
    );
}

#[tokio::test]
async fn close_without_response_is_an_early_close_nginx_maps_to_502() {
    let s = scan(Some(Fault::CloseWithoutResponse)).await;
    s.assert_verdicts(RuledOut, Confirmed, Confirmed);
    let backend = s.check("get", Role::Backend);
    assert_eq!(
        backend.problems,
        vec![Problem::NoResponse {
            ending: Ending::Fin
        }]
    );
    assert_eq!(s.check("get", Role::Listener).status, Some(502));
    let closed = s.finding(CLOSED_EARLY);
    assert!(
        closed
            .reason
            .contains("the backend closes the connection without sending a response"),
        "{}",
        closed.reason
    );
    assert!(
        closed.reason.contains("the listener answers 502"),
        "{}",
        closed.reason
    );
    let mapped = s.finding(MAPPED);
    assert!(
        mapped.reason.contains("as nginx's 444 does"),
        "{}",
        mapped.reason
    );
    assert!(
        mapped.reason.contains("turns it into 502"),
        "{}",
        mapped.reason
    );
    assert!(
        s.finding(MALFORMED).reason.contains("no bytes at all"),
        "{}",
        s.dump()
    );
    assert!(
        s.error_log
            .contains("upstream prematurely closed connection"),
        "{}",
        s.dump()
    );
    assert!(
        s.logged()
            .iter()
            .any(|(status, upstream)| status == "502" && upstream == "502"),
        "nginx logs its own 502 as the upstream status too:\n{}",
        s.dump()
    );
}

#[tokio::test]
async fn reset_without_response_is_an_early_close_too() {
    let s = scan(Some(Fault::ResetWithoutResponse)).await;
    s.assert_verdicts(RuledOut, Confirmed, Confirmed);
    assert_eq!(
        s.check("get", Role::Backend).problems,
        vec![Problem::NoResponse {
            ending: Ending::Reset
        }]
    );
    assert!(
        s.finding(CLOSED_EARLY)
            .reason
            .contains("resets the connection"),
        "{}",
        s.dump()
    );
}

#[tokio::test]
async fn backend_504_is_passed_through_not_mapped() {
    let s = scan(Some(Fault::Status(504))).await;
    s.assert_verdicts(RuledOut, RuledOut, RuledOut);
    assert_eq!(s.check("get", Role::Backend).status, Some(504));
    assert_eq!(s.check("get", Role::Listener).status, Some(504));
    let mapped = s.finding(MAPPED);
    assert!(
        mapped
            .reason
            .contains("the listener passes the backend's 504 on unchanged"),
        "{}",
        mapped.reason
    );
    assert_eq!(s.verdict("504.passthrough"), Confirmed, "{}", s.dump());
    assert!(
        s.evidence("504.passthrough").contains("response get"),
        "{}",
        s.dump()
    );
    assert!(
        s.logged()
            .iter()
            .all(|(status, upstream)| status == "504" && upstream == "504"),
        "{}",
        s.dump()
    );
}

#[tokio::test]
async fn close_after_headers_is_a_short_body_of_zero_bytes() {
    let s = scan(Some(Fault::CloseAfterHeaders)).await;
    s.assert_verdicts(RuledOut, Confirmed, RuledOut);
    assert_eq!(
        s.check("get", Role::Backend).problems,
        vec![Problem::ShortBody {
            received: 0,
            expected: 100
        }]
    );
    // The HEAD's answer is only a head: complete, so the fault shows in the body alone.
    assert!(s.check("head", Role::Backend).clean(), "{}", s.dump());
    assert!(
        s.finding(CLOSED_EARLY)
            .reason
            .contains("closes after 0 of the 100 body bytes"),
        "{}",
        s.dump()
    );
}

#[tokio::test]
async fn header_block_beyond_nginx_buffer_is_confirmed() {
    // Well-formed, but larger than nginx's default proxy_buffer_size (one 4 KiB page).
    let s = scan(Some(Fault::HugeHeader(6000))).await;
    s.assert_verdicts(Confirmed, RuledOut, RuledOut);
    let backend = s.check("get", Role::Backend);
    assert!(backend.clean(), "{backend:?}");
    assert!(backend.head_bytes.is_some_and(|n| n > 6000), "{backend:?}");
    assert_eq!(
        s.check("get", Role::Listener).status,
        Some(502),
        "{}",
        s.dump()
    );
    let f = s.finding(MALFORMED);
    assert!(
        f.reason
            .contains("larger than a listener's default response buffer"),
        "{}",
        f.reason
    );
    assert!(
        s.evidence(MALFORMED).contains("proxy_buffer_size"),
        "{}",
        s.dump()
    );
    assert!(
        s.error_log.contains("upstream sent too big header"),
        "{}",
        s.dump()
    );
}
