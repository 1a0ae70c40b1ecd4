//! Golden tables: every malformed-request template against a real nginx (a fixed 200 server)
//! and a real HAProxy (in front of the lenient lab backend), compared with the checked-in
//! tests/golden/malformed-{nginx,haproxy}[-tls].tsv (plain HTTP and over TLS), so a change in either package or in our bytes
//! shows up as a diff. docs/malformed.md is rendered from the same files.
//!
//! To accept a deliberate change: `LBPROBE_BLESS=1 cargo test --test malformed_golden`, then
//! review the diff of tests/golden/ and docs/malformed.md.

#[path = "support/says.rs"]
mod says;
use says::assert_says;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use lbprobe::classify::malformed_table::{Answer, MalformedTable, Strictness};
use lbprobe::lab::{
    BackendConfig, Haproxy, HaproxyFrontend, HaproxySpec, KeepAlive, LabBackend, Nginx,
    NginxServer, NginxSpec,
};
use lbprobe::probe::templates::{self, Strict};
use lbprobe::probe::{ConnAfter, Limits, Plan, ProbeSpec};
use lbprobe::profile::Profile;
use lbprobe::run::{self, Job};
use lbprobe::target::{Role, Target};

/// How long nginx and HAProxy wait for a request's head (and nginx for its body) in the golden
/// runs: under the test's 2 s, so what each does when the wait runs out is in the table.
const CLIENT_TIMEOUT: &str = "1s";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn blessing() -> bool {
    std::env::var("LBPROBE_BLESS").as_deref() == Ok("1")
}

/// Run the whole catalogue against one listener (no backend) and keep its table.
async fn catalogue_against(url: &str, profile: Profile) -> MalformedTable {
    let report = templates_against(url, profile, None).await;
    report
        .malformed
        .unwrap_or_else(|| panic!("no malformed table; notes: {:?}", report.notes))
}

/// Run the templates named (all when `None`) against one listener.
async fn templates_against(
    url: &str,
    profile: Profile,
    variants: Option<Vec<String>>,
) -> lbprobe::report::Report {
    templates_against_as(url, profile, variants, false).await
}

/// [`templates_against`], saying whether the target is ours (`--i-own-this-target`).
async fn templates_against_as(
    url: &str,
    profile: Profile,
    variants: Option<Vec<String>>,
    owner: bool,
) -> lbprobe::report::Report {
    templates_through(url, None, profile, variants, owner).await
}

/// [`templates_against_as`] with the backend behind the listener probed too.
async fn templates_through(
    url: &str,
    backend: Option<&str>,
    profile: Profile,
    variants: Option<Vec<String>>,
    owner: bool,
) -> lbprobe::report::Report {
    let job = Job::new(
        "malformed-golden",
        "tests/malformed_golden.rs",
        Plan::new(
            Some({
                let mut t = Target::parse(Role::Listener, url).unwrap();
                // Lab certificates are self-signed.
                t.tls_verify = false;
                t
            }),
            backend.map(|b| Target::parse(Role::Backend, b).unwrap()),
        )
        .with_profile(profile)
        .with_probes(vec![ProbeSpec::Malformed { variants }])
        .with_owner_confirmed(owner)
        // Loopback answers in milliseconds; the short timeout bounds the kinds a server
        // sits on (their `wait` is capped by it), so the run stays fast.
        .with_limits(Limits {
            max_requests: 1000,
            max_rate: 10_000.0,
            max_duration: Duration::from_secs(120),
            request_timeout: Duration::from_secs(2),
        }),
    );
    run::execute(job, Arc::new(|_| {})).await
}

/// The kinds a run without names sends: all but the control and the keep-alive sequences
/// (those run only when named).
fn catalogue_kinds() -> usize {
    templates::malformed()
        .iter()
        .filter(|t| t.id != "control" && !t.is_sequence())
        .count()
}

/// The golden label of an answer: the status, `close`, `reset`, `waited` (the seconds are left
/// out: they are the test's timeout, not the server's behaviour).
fn label(a: &Answer) -> String {
    match a {
        Answer::Waited { .. } => "waited".into(),
        other => other.label(),
    }
}

/// `id<TAB>answer<TAB>strictness` per template, in catalogue order.
fn golden_text(table: &MalformedTable) -> String {
    let mut out = String::from("# id\tanswer\tjudged\n");
    for row in &table.rows {
        let side = row.listener.as_ref().expect("sent to the listener");
        let judged = side.strictness.map_or("-".to_string(), |s| s.to_string());
        // A must-close kind shows what the connection did after the answer.
        let after = match side.after.map(|a| a.connection) {
            Some(ConnAfter::Closed) => ", closed",
            Some(ConnAfter::KeptOpen) => ", kept open",
            Some(ConnAfter::MoreBytes) => ", more bytes",
            Some(ConnAfter::NoAnswer) | None => "",
        };
        out.push_str(&format!(
            "{}\t{}{after}\t{judged}\n",
            row.variant,
            label(&side.answer)
        ));
    }
    out
}

fn parse_golden(text: &str) -> BTreeMap<String, (String, String)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let mut f = l.split('\t');
            Some((
                f.next()?.to_string(),
                (f.next()?.to_string(), f.next()?.to_string()),
            ))
        })
        .collect()
}

/// Compare with (or, blessing, write) a golden file; the message lists every differing row.
fn check_golden(name: &str, got: &str) {
    let path = root().join("tests/golden").join(name);
    if blessing() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, got).unwrap();
        // The docs follow whichever golden file was written last.
        regenerate_docs();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    if want == got {
        return;
    }
    let (w, g) = (parse_golden(&want), parse_golden(got));
    let mut diff = Vec::new();
    for id in w
        .keys()
        .chain(g.keys())
        .collect::<std::collections::BTreeSet<_>>()
    {
        if w.get(id) != g.get(id) {
            diff.push(format!("{id}: golden {:?}, now {:?}", w.get(id), g.get(id)));
        }
    }
    panic!(
        "{name} differs from this run (LBPROBE_BLESS=1 cargo test --test malformed_golden to accept):\n  {}",
        diff.join("\n  ")
    );
}

fn strict_word(s: Strict, codes: &[u16]) -> String {
    let word = match s {
        Strict::Accept => "accept",
        Strict::Reject => "reject",
        Strict::Close => "close",
        Strict::Any => "any",
    };
    if codes.is_empty() {
        word.into()
    } else {
        let c: Vec<String> = codes.iter().map(u16::to_string).collect();
        format!("{word} ({})", c.join("/"))
    }
}

/// The four golden files docs/malformed.md is rendered from.
struct Goldens {
    nginx: String,
    haproxy: String,
    nginx_tls: String,
    haproxy_tls: String,
}

impl Goldens {
    fn read() -> Goldens {
        Goldens {
            nginx: read_golden("malformed-nginx.tsv"),
            haproxy: read_golden("malformed-haproxy.tsv"),
            nginx_tls: read_golden("malformed-nginx-tls.tsv"),
            haproxy_tls: read_golden("malformed-haproxy-tls.tsv"),
        }
    }
}

/// docs/malformed.md from the golden files and the templates.
fn render_docs(g: &Goldens) -> String {
    let (n, h) = (parse_golden(&g.nginx), parse_golden(&g.haproxy));
    let cell = |m: &BTreeMap<String, (String, String)>, id: &str| {
        m.get(id).map_or("—".to_string(), |(a, j)| {
            if j == "strict" || j == "-" || j == "waited" {
                a.clone()
            } else {
                format!("{a} ({j})")
            }
        })
    };
    let mut out = String::from(
        "# What nginx and HAProxy answer to each malformed request\n\n\
         <!-- Generated by tests/malformed_golden.rs from tests/golden/malformed-*.tsv; do not edit.\n\
         \x20    Regenerate: LBPROBE_BLESS=1 cargo test --test malformed_golden -->\n\n\
         Every template of `probes/malformed.yaml` (`lbprobe probes` lists them) sent byte for byte to\n\
         Debian's nginx (a server answering a fixed 200, `client_header_timeout` and\n\
         `client_body_timeout` 1 s) and to Debian's HAProxy (`timeout http-request 1s`, in front of\n\
         the lenient lab backend, which answers 200 to whatever it can parse and 400 to a body that\n\
         does not come within 1 s), on loopback. A cell is the\n\
         answer: a status, `close` (the connection closed with no response), `not-http` (bytes with no\n\
         status line, such as nginx's HTTP/0.9 answer: the body alone), `reset`, or `waited` (no\n\
         answer within the test's 2 s: the server sits on the request). In brackets, when the answer\n\
         is not what an RFC 9110/9112-strict server gives: `lenient` (accepted what a strict server\n\
         rejects), `over-strict` (refused what it accepts), `wrong-code` (refused, but with a code\n\
         the RFC does not give for it, such as 501 where RFC 9112 §6.3 says 400), `kept-open`\n\
         (answered, but kept the connection open where the RFC says it MUST close), `broken` (a hang\n\
         or a 5xx crash).\n\
         The `strict` column says what a strict server does (`any`: the RFC lets it do either;\n\
         in brackets, the codes it may use; `, must close`: RFC 9112 §6.1/§6.3 also require the\n\
         close after the answer, and the cell says `closed` or `kept open`).\n\n\
         The `smuggling` kinds are keep-alive sequences (the bytes of several requests on one\n\
         connection; `strict` says how many answers a strict server gives on it). They run only when\n\
         named, so the tables hold none (`—`); tests/malformed_golden.rs checks that nginx, and HAProxy\n\
         in front of nginx, give each its one answer (two for the pipelined pair) and close, and\n\
         that a deliberately lenient lab backend (Content-Length over Transfer-Encoding, pipelined\n\
         bytes answered) answers the GET smuggled behind them: scanned behind nginx, its side is\n\
         judged `lenient` and the listener's `strict`, so the desync is put on the backend.\n\n\
         HAProxy's 200s are the lab backend's: HAProxy passed the request on, sometimes repaired.\n\
         Answers with codes the reference page lists no cause for (501, 505, 413, 422) are what\n\
         lbprobe reports as seen.\n\n",
    );
    let mut by_tag: Vec<(&str, Vec<&templates::Template>)> = templates::TAGS
        .iter()
        .map(|tag| {
            (
                *tag,
                templates::malformed()
                    .iter()
                    .filter(|t| t.tags.first().map(String::as_str) == Some(*tag))
                    .collect(),
            )
        })
        .collect();
    by_tag.retain(|(_, ts)| !ts.is_empty());
    for (tag, ts) in by_tag {
        out.push_str(&format!(
            "## `{tag}`\n\n| id | what is wrong | RFC | strict | nginx | HAProxy |\n|---|---|---|---|---|---|\n"
        ));
        for t in ts {
            out.push_str(&format!(
                "| `{}` | {} | {} | {} | {} | {} |\n",
                t.id,
                t.summary.replace('|', "\\|"),
                t.rfc,
                strict_word(t.strict, &t.strict_status)
                    + if t.must_close { ", must close" } else { "" }
                    + &t.answers.map_or(String::new(), |n| format!(
                        ", {n} answer(s) on the connection"
                    )),
                cell(&n, &t.id),
                cell(&h, &t.id)
            ));
        }
        out.push('\n');
    }
    out.push_str(&tls_section(g));
    out
}

/// The kinds whose answer over TLS differs from plain HTTP, per load balancer.
fn tls_section(g: &Goldens) -> String {
    let mut out = String::from(
        "## Over TLS\n\n\
         The same catalogue through an HTTPS listener (nginx `listen ssl`, HAProxy `bind ssl`, lab\n\
         certificates; tests/golden/malformed-*-tls.tsv). The bytes inside TLS are the same; a row\n\
         below is a kind whose answer differs from the plain-HTTP one.\n\n",
    );
    for (name, plain, tls) in [
        ("nginx", &g.nginx, &g.nginx_tls),
        ("HAProxy", &g.haproxy, &g.haproxy_tls),
    ] {
        let (p, t) = (parse_golden(plain), parse_golden(tls));
        let differ: Vec<&templates::Template> = templates::malformed()
            .iter()
            .filter(|tp| p.get(&tp.id).map(|x| &x.0) != t.get(&tp.id).map(|x| &x.0))
            .collect();
        if differ.is_empty() {
            out.push_str(&format!(
                "- {name}: every kind gets the same answer over TLS as over plain HTTP.\n"
            ));
            continue;
        }
        out.push_str(&format!(
            "- {name}: {} kind(s) differ:\n\n| id | plain | TLS |\n|---|---|---|\n",
            differ.len()
        ));
        for tp in differ {
            let cell = |m: &BTreeMap<String, (String, String)>| {
                m.get(&tp.id).map_or("—".to_string(), |(a, _)| a.clone())
            };
            out.push_str(&format!("| `{}` | {} | {} |\n", tp.id, cell(&p), cell(&t)));
        }
        out.push('\n');
    }
    out
}

fn docs_path() -> PathBuf {
    root().join("docs/malformed.md")
}

fn read_golden(name: &str) -> String {
    std::fs::read_to_string(root().join("tests/golden").join(name)).unwrap_or_default()
}

fn regenerate_docs() {
    std::fs::write(docs_path(), render_docs(&Goldens::read())).unwrap();
}

/// The catalogue through nginx (a fixed 200 server), plain or over TLS, checked against its
/// golden table.
async fn nginx_golden(tls: bool, golden: &str) {
    // Short client timeouts, as the harness's rule asks: the kinds nginx sits on (no byte, a
    // head without its end) end within a second, and the table shows what nginx does then.
    let nginx = Nginx::start(&NginxSpec::one(NginxServer::fixed().tls(tls).extra(
        format!("client_header_timeout {CLIENT_TIMEOUT}; client_body_timeout {CLIENT_TIMEOUT};"),
    )))
    .unwrap_or_else(|e| panic!("this test needs a real nginx: {e}"));
    assert_eq!(nginx.url(0).starts_with("https://"), tls);
    let table = catalogue_against(&nginx.url(0), Profile::nginx()).await;
    assert_eq!(table.rows.len(), catalogue_kinds());
    let text = golden_text(&table);
    // What the issue names, whatever the golden file says.
    let answer = |id: &str| parse_golden(&text)[id].0.clone();
    assert_eq!(answer("obs-fold"), "400");
    assert_eq!(answer("method-trace"), "405");
    assert_eq!(answer("te-unknown-coding"), "501");
    // The kinds that now test what their id says: nginx's URI limit for a method it cannot
    // refuse at the first byte, its body limit for a length above it.
    assert_eq!(answer("method-100k"), "414");
    assert_eq!(answer("body-huge-length-no-body"), "413");
    // Under the 8000 octets RFC 9112 §3 recommends: taken, no 414.
    assert_eq!(answer("url-7900"), "200");
    // A valid form nginx refuses: `OPTIONS *` (RFC 9112 §3.2.4).
    assert_eq!(
        parse_golden(&text)["rl-options-asterisk"],
        ("400".to_string(), "over-strict".to_string())
    );
    // 501 where RFC 9112 §6.3 says 400: refused, with the wrong code (nginx 1.22 does close).
    assert_eq!(
        parse_golden(&text)["te-chunked-not-last"],
        ("501, closed".to_string(), "wrong-code".to_string())
    );
    check_golden(golden, &text);
}

/// The catalogue through HAProxy in front of the lenient lab backend, plain or over TLS.
async fn haproxy_golden(tls: bool, golden: &str) {
    // The backend waits 1 s for a body that never comes, under the test's 2 s.
    let backend = LabBackend::start(BackendConfig::default().read_timeout(Duration::from_secs(1)))
        .await
        .unwrap_or_else(|e| panic!("lab backend: {e}"));
    let haproxy = Haproxy::start(&HaproxySpec {
        defaults_extra: format!("timeout http-request {CLIENT_TIMEOUT}"),
        ..HaproxySpec::one(HaproxyFrontend::proxy(backend.url()).tls(tls))
    })
    .unwrap_or_else(|e| panic!("this test needs a real haproxy: {e}"));
    assert_eq!(haproxy.url(0).starts_with("https://"), tls);
    let table = catalogue_against(&haproxy.url(0), Profile::haproxy()).await;
    assert_eq!(table.rows.len(), catalogue_kinds());
    let text = golden_text(&table);
    let answer = |id: &str| parse_golden(&text)[id].0.clone();
    assert_eq!(
        answer("obs-fold"),
        "200",
        "HAProxy unfolds and passes it on"
    );
    assert_eq!(answer("url-100k"), "400");
    // RFC 9112 §6.1: HAProxy processes CL with TE by TE alone, and closes after the answer.
    assert_eq!(
        answer("content-length-and-transfer-encoding"),
        "200, closed"
    );
    check_golden(golden, &text);
}

#[tokio::test]
async fn nginx_answers_the_catalogue_as_the_golden_table_says() {
    nginx_golden(false, "malformed-nginx.tsv").await;
}

#[tokio::test]
async fn haproxy_answers_the_catalogue_as_the_golden_table_says() {
    haproxy_golden(false, "malformed-haproxy.tsv").await;
}

/// Over TLS: the same bytes inside the tunnel; a difference from the plain table shows in the
/// docs' "Over TLS" section.
#[tokio::test]
async fn nginx_over_tls_answers_the_catalogue_as_the_golden_table_says() {
    nginx_golden(true, "malformed-nginx-tls.tsv").await;
}

#[tokio::test]
async fn haproxy_over_tls_answers_the_catalogue_as_the_golden_table_says() {
    haproxy_golden(true, "malformed-haproxy-tls.tsv").await;
}

#[test]
fn docs_malformed_md_is_rendered_from_the_golden_tables() {
    let read = |name: &str| {
        std::fs::read_to_string(root().join("tests/golden").join(name))
            .unwrap_or_else(|e| panic!("tests/golden/{name}: {e}"))
    };
    let docs = render_docs(&Goldens {
        nginx: read("malformed-nginx.tsv"),
        haproxy: read("malformed-haproxy.tsv"),
        nginx_tls: read("malformed-nginx-tls.tsv"),
        haproxy_tls: read("malformed-haproxy-tls.tsv"),
    });
    for t in templates::malformed().iter().filter(|t| t.id != "control") {
        assert!(docs.contains(&format!("| `{}` |", t.id)), "{}", t.id);
    }
    if blessing() {
        std::fs::write(docs_path(), &docs).unwrap();
        return;
    }
    let on_disk = std::fs::read_to_string(docs_path()).unwrap_or_default();
    assert!(
        on_disk == docs,
        "docs/malformed.md is out of date: LBPROBE_BLESS=1 cargo test --test malformed_golden"
    );
}

/// nginx in front of a lab backend that refuses an unknown method nginx passes on: the report
/// puts each kind on the side that refuses it, selected by tag in a scenario file.
#[tokio::test]
async fn a_stricter_backend_behind_nginx_gets_its_kinds_attributed() {
    let backend = LabBackend::start(BackendConfig {
        reject_methods: vec!["LBPROBE".into()],
        ..BackendConfig::default()
    })
    .await
    .unwrap_or_else(|e| panic!("lab backend: {e}"));
    let nginx = Nginx::start(&NginxSpec::one(NginxServer::proxy(backend.url())))
        .unwrap_or_else(|e| panic!("this test needs a real nginx: {e}"));
    let scenario = "name: strict-backend
targets:
  listener:
    url: ${LISTENER}
  backend:
    url: ${BACKEND}
profile: nginx
probes:
  - malformed: { variants: [method, te-unknown-coding, obs-fold] }
limits:
  max-requests: 200
  max-rate: 1000
  max-duration: 60s
  request-timeout: 2s
expect:
  400.malformed-request: reproduced
";
    let (listener, backend_url) = (nginx.url(0), backend.url());
    let vars = move |name: &str| match name {
        "LISTENER" => Some(listener.clone()),
        "BACKEND" => Some(backend_url.clone()),
        _ => None,
    };
    let job = lbprobe::scenario_job::from_text(scenario, "strict-backend.yaml", &vars)
        .unwrap_or_else(|e| panic!("{e}"));
    let report = run::execute(job, Arc::new(|_| {})).await;
    let table = report.malformed.as_ref().expect("a malformed table");
    let sent: Vec<&str> = table.rows.iter().map(|r| r.variant.as_str()).collect();
    // The `method` tag picked every method kind, and only those besides the two named ids.
    for t in templates::malformed()
        .iter()
        .filter(|t| t.has_tag("method"))
    {
        assert!(sent.contains(&t.id.as_str()), "{} not sent: {sent:?}", t.id);
    }
    assert!(!sent.contains(&"rl-fragment"), "{sent:?}");
    let g = &table.groups;
    // nginx's own refusals, the backend taking the same bytes.
    for id in ["lowercase-method", "obs-fold"] {
        assert!(g.listener_rejects.iter().any(|v| v == id), "{id}: {g:?}");
    }
    // The backend's 405 for a method nginx passes on.
    assert!(
        g.backend_rejects_passed_on
            .iter()
            .any(|v| v == "method-unknown"),
        "{g:?}"
    );
    assert!(!g.listener_rejects.iter().any(|v| v == "method-unknown"));
    // nginx's 501 for an unknown coding is reported as seen, in no cause's group.
    assert!(
        g.unlisted_codes
            .iter()
            .any(|u| u.variant == "te-unknown-coding"
                && u.role == Role::Listener
                && u.status == 501),
        "{g:?}"
    );
    assert!(!g.listener_rejects.iter().any(|v| v == "te-unknown-coding"));
    assert!(
        report.expectations.iter().all(|e| e.met),
        "{:?}",
        report.expectations
    );
    let human = lbprobe::report::render(
        &report,
        lbprobe::report::Format::Human,
        lbprobe::report::Style::plain(),
    );
    assert!(
        human.contains("refused by the backend, passed on by the listener (1): method-unknown"),
        "{human}"
    );
}

/// The must-close check against a server that does keep the connection open: the lab backend
/// with keep-alive answers CL with TE and keeps the connection (RFC 9112 §6.1 says it MUST
/// close); the same backend closing after every answer is the neighbour that must not be
/// judged `kept-open`.
#[tokio::test]
async fn a_server_that_keeps_the_connection_open_after_cl_with_te_is_judged_kept_open() {
    let id = "content-length-and-transfer-encoding";
    let mut judged = Vec::new();
    for keep_alive in [true, false] {
        let config = BackendConfig::default();
        let config = if keep_alive {
            config.keep_alive(KeepAlive::eager(Duration::from_secs(5)))
        } else {
            config
        };
        let backend = LabBackend::start(config)
            .await
            .unwrap_or_else(|e| panic!("lab backend: {e}"));
        let report =
            templates_against(&backend.url(), Profile::none(), Some(vec![id.into()])).await;
        let table = report.malformed.as_ref().expect("a malformed table");
        let row = table
            .rows
            .iter()
            .find(|r| r.variant == id)
            .expect("the row");
        assert!(row.must_close);
        let side = row.listener.as_ref().expect("sent");
        judged.push((
            side.after.map(|a| a.connection),
            side.strictness,
            lbprobe::report::render(
                &report,
                lbprobe::report::Format::Human,
                lbprobe::report::Style::plain(),
            ),
        ));
    }
    let (open, closing) = (&judged[0], &judged[1]);
    assert!(
        matches!(open.0, Some(ConnAfter::KeptOpen | ConnAfter::MoreBytes)),
        "{:?}",
        open.0
    );
    assert_eq!(open.1, Some(Strictness::KeptOpen));
    assert!(
        open.2
            .contains("kept the connection open where the RFC says it MUST close (1)"),
        "{}",
        open.2
    );
    assert_eq!(closing.0, Some(ConnAfter::Closed));
    assert_eq!(closing.1, Some(Strictness::Strict));
    assert!(
        !closing.2.contains("kept the connection open"),
        "{}",
        closing.2
    );
}

/// The answers each side gave to each keep-alive sequence, and how its connection ended:
/// `id -> (answers, connection, strictness)`.
fn sequences(report: &lbprobe::report::Report) -> BTreeMap<String, (u32, String, String)> {
    sequences_at(report, Role::Listener)
}

/// [`sequences`] of one side.
fn sequences_at(
    report: &lbprobe::report::Report,
    role: Role,
) -> BTreeMap<String, (u32, String, String)> {
    let table = report.malformed.as_ref().expect("a malformed table");
    table
        .rows
        .iter()
        .filter_map(|r| {
            let side = match role {
                Role::Listener => r.listener.as_ref(),
                Role::Backend => r.backend.as_ref(),
            }?;
            let seq = side.sequence?;
            let connection = match seq.connection {
                ConnAfter::Closed => "closed",
                ConnAfter::KeptOpen => "kept open",
                ConnAfter::MoreBytes => "more bytes",
                ConnAfter::NoAnswer => "no answer",
            };
            Some((
                r.variant.clone(),
                (
                    seq.answers,
                    connection.to_string(),
                    side.strictness.map_or("-".into(), |s| s.to_string()),
                ),
            ))
        })
        .collect()
}

/// The smuggling sequences (issue 21), as an owner runs them: nginx alone and HAProxy in
/// front of nginx answer each once and close, but the two valid pipelined GETs, which get two
/// answers. (A server that answers the GET smuggled behind CL with TE: the next test.)
#[tokio::test]
async fn smuggling_sequences_count_the_answers_and_the_close() {
    let smuggling = Some(vec!["smuggling".to_string()]);
    let nginx = Nginx::start(&NginxSpec::one(NginxServer::fixed().extra(format!(
        "client_header_timeout {CLIENT_TIMEOUT}; client_body_timeout {CLIENT_TIMEOUT};"
    ))))
    .unwrap_or_else(|e| panic!("this test needs a real nginx: {e}"));
    let haproxy = Haproxy::start(&HaproxySpec {
        defaults_extra: format!("timeout http-request {CLIENT_TIMEOUT}"),
        ..HaproxySpec::one(HaproxyFrontend::proxy(nginx.url(0)))
    })
    .unwrap_or_else(|e| panic!("this test needs a real haproxy: {e}"));
    let (nginx_url, haproxy_url) = (nginx.url(0), haproxy.url(0));
    let (n, h, held) = tokio::join!(
        templates_against_as(&nginx_url, Profile::nginx(), smuggling.clone(), true),
        templates_against_as(&haproxy_url, Profile::haproxy(), smuggling.clone(), true),
        templates_against_as(&nginx_url, Profile::nginx(), smuggling.clone(), false),
    );
    let (n, h) = (sequences(&n), sequences(&h));
    let all: Vec<&templates::Template> = templates::malformed()
        .iter()
        .filter(|t| t.is_sequence())
        .collect();
    for (name, side) in [("nginx", &n), ("HAProxy in front of nginx", &h)] {
        assert_eq!(side.len(), all.len(), "{name}: {side:?}");
        for t in &all {
            let (answers, connection, judged) = &side[&t.id];
            // The baseline gets both its answers; every other sequence one, then the close
            // (RFC 9112 §6.1, §6.3): the request behind it is never answered.
            assert_eq!(
                (*answers, connection.as_str(), judged.as_str()),
                (t.answers.unwrap(), "closed", "strict"),
                "{name}: {}",
                t.id
            );
        }
    }
    // Without --i-own-this-target only the forms that leave no request behind go out, and
    // the run says what it held back.
    let sent = sequences(&held);
    assert!(!sent.is_empty());
    assert!(sent.keys().all(|id| id.ends_with("-timing")), "{sent:?}");
    assert!(
        held.notes
            .iter()
            .any(|note| note.contains("--i-own-this-target")
                && note.contains("smuggle-cl-te-pipelined-get")),
        "{:?}",
        held.notes
    );
}

/// The desync a smuggled request rides on, made visible and attributed: a deliberately lenient
/// lab backend (Content-Length over Transfer-Encoding, `+5` read as 5, pipelined bytes answered
/// as the next request) behind nginx. Scanned directly, it answers the GET smuggled behind CL
/// with TE (two answers where a strict server gives one) and its side is judged `lenient`, and
/// the smuggled GET is in what it saw. Neighbours: through nginx, which re-frames every body it
/// passes on, the listener's side gets one answer and no smuggled GET reaches the backend; the
/// same backend without leniency (Transfer-Encoding wins, pipelined bytes dropped) answers once.
#[tokio::test]
async fn a_lenient_backend_answers_the_smuggled_get_and_nginx_in_front_does_not() {
    let sequences_sent = Some(vec![
        "smuggle-control-pipelined".to_string(),
        "smuggle-cl-te-pipelined-get".to_string(),
        "smuggle-cl-plus-get".to_string(),
    ]);
    let start = |lenient: bool| async move {
        LabBackend::start(
            BackendConfig::default()
                .keep_alive(KeepAlive::eager(Duration::from_secs(5)))
                .lenient(lenient),
        )
        .await
        .unwrap_or_else(|e| panic!("lab backend: {e}"))
    };
    let (lenient, strict) = (start(true).await, start(false).await);
    let nginx = Nginx::start(&NginxSpec::one(NginxServer::proxy(lenient.url()).extra(
        format!("client_header_timeout {CLIENT_TIMEOUT}; client_body_timeout {CLIENT_TIMEOUT};"),
    )))
    .unwrap_or_else(|e| panic!("this test needs a real nginx: {e}"));
    let report = templates_through(
        &nginx.url(0),
        Some(&lenient.url()),
        Profile::nginx(),
        sequences_sent.clone(),
        true,
    )
    .await;
    let smuggled_seen = |b: &LabBackend| {
        b.recent_requests().iter().any(|r| {
            r.headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case("x-lbprobe-smuggled"))
                && r.request_line.starts_with("GET ")
        })
    };
    let (at_backend, at_listener) = (
        sequences_at(&report, Role::Backend),
        sequences_at(&report, Role::Listener),
    );
    for id in ["smuggle-cl-te-pipelined-get", "smuggle-cl-plus-get"] {
        let (answers, _, judged) = &at_backend[id];
        assert_eq!(
            (*answers, judged.as_str()),
            (2, "lenient"),
            "backend, {id}: {at_backend:?}"
        );
        let (answers, _, judged) = &at_listener[id];
        assert_eq!(*answers, 1, "nginx answers once, {id}: {at_listener:?}");
        assert_ne!(judged.as_str(), "lenient", "{id}: {at_listener:?}");
    }
    // The control (two valid pipelined GETs) gets two answers on either side: counting works.
    assert_eq!(
        at_backend["smuggle-control-pipelined"].0, 2,
        "{at_backend:?}"
    );
    assert_eq!(
        at_listener["smuggle-control-pipelined"].0, 2,
        "{at_listener:?}"
    );
    assert!(
        smuggled_seen(&lenient),
        "the lenient backend never saw the smuggled GET"
    );
    let human = lbprobe::report::render(
        &report,
        lbprobe::report::Format::Human,
        lbprobe::report::Style::plain(),
    );
    // The report puts the desync on the backend: nginx refuses both, the backend answers them
    // and the GET behind.
    assert_says(
        &human,
        &[
            "2 lenient",
            "refused by the listener, accepted by the backend (2)",
        ],
    );

    // The same backend without leniency, scanned directly: one answer, nothing smuggled.
    let direct = templates_against_as(&strict.url(), Profile::none(), sequences_sent, true).await;
    let direct = sequences(&direct);
    for id in ["smuggle-cl-te-pipelined-get", "smuggle-cl-plus-get"] {
        let (answers, _, judged) = &direct[id];
        assert_eq!(*answers, 1, "{id}: {direct:?}");
        assert_ne!(judged.as_str(), "lenient", "{id}: {direct:?}");
    }
    assert!(
        !smuggled_seen(&strict),
        "the strict backend answered a smuggled GET"
    );
}
