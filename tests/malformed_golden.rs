//! Golden tables: every malformed-request template against a real nginx (a fixed 200 server)
//! and a real HAProxy (in front of the lenient lab backend), compared with the checked-in
//! tests/golden/malformed-{nginx,haproxy}[-tls].tsv (plain HTTP and over TLS), so a change in either package or in our bytes
//! shows up as a diff. docs/malformed.md is rendered from the same files.
//!
//! To accept a deliberate change: `LBPROBE_BLESS=1 cargo test --test malformed_golden`, then
//! review the diff of tests/golden/ and docs/malformed.md.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use lbprobe::classify::malformed_table::{Answer, MalformedTable};
use lbprobe::lab::{
    BackendConfig, Haproxy, HaproxyFrontend, HaproxySpec, LabBackend, Nginx, NginxServer, NginxSpec,
};
use lbprobe::probe::templates::{self, Strict};
use lbprobe::probe::{Limits, Plan, ProbeSpec};
use lbprobe::profile::Profile;
use lbprobe::run::{self, Job};
use lbprobe::target::{Role, Target};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn blessing() -> bool {
    std::env::var("LBPROBE_BLESS").as_deref() == Ok("1")
}

/// Run the whole catalogue against one listener (no backend) and keep its table.
async fn catalogue_against(url: &str, profile: Profile) -> MalformedTable {
    let job = Job {
        name: "malformed-golden".into(),
        origin: "tests/malformed_golden.rs".into(),
        plan: Plan {
            listener: Some({
                let mut t = Target::parse(Role::Listener, url).unwrap();
                // Lab certificates are self-signed.
                t.tls_verify = false;
                t
            }),
            backend: None,
            profile,
            probes: vec![ProbeSpec::Malformed { variants: None }],
            // Loopback answers in milliseconds; the short timeout bounds the kinds a server
            // sits on (their `wait` is capped by it), so the run stays fast.
            limits: Limits {
                max_requests: 1000,
                max_rate: 10_000.0,
                max_duration: Duration::from_secs(120),
                request_timeout: Duration::from_secs(2),
            },
            mask: Vec::new(),
            marker: false,
            pool: Vec::new(),
        },
        expect: Vec::new(),
        only_codes: None,
        notes: Vec::new(),
    };
    let report = run::execute(job, Arc::new(|_| {})).await;
    report
        .malformed
        .unwrap_or_else(|| panic!("no malformed table; notes: {:?}", report.notes))
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
        out.push_str(&format!(
            "{}\t{}\t{judged}\n",
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
         Debian's nginx (a server answering a fixed 200) and to Debian's HAProxy (in front of the\n\
         lenient lab backend, which answers 200 to whatever it can parse), on loopback. A cell is the\n\
         answer: a status, `close` (the connection closed with no response), `reset`, or `waited` (no\n\
         answer within the test's 2 s: the server sits on the request). In brackets, when the answer\n\
         is not what an RFC 9110/9112-strict server gives: `lenient` (accepted what a strict server\n\
         rejects), `over-strict` (refused what it accepts), `broken` (a hang or a 5xx crash).\n\
         The `strict` column says what a strict server does (`any`: the RFC lets it do either;\n\
         in brackets, the codes it may use).\n\n\
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
                strict_word(t.strict, &t.strict_status),
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
    let nginx = Nginx::start(&NginxSpec::one(NginxServer::fixed().tls(tls)))
        .unwrap_or_else(|e| panic!("this test needs a real nginx: {e}"));
    assert_eq!(nginx.url(0).starts_with("https://"), tls);
    let table = catalogue_against(&nginx.url(0), Profile::nginx()).await;
    assert_eq!(table.rows.len(), templates::malformed().len() - 1);
    let text = golden_text(&table);
    // What the issue names, whatever the golden file says.
    let answer = |id: &str| parse_golden(&text)[id].0.clone();
    assert_eq!(answer("obs-fold"), "400");
    assert_eq!(answer("method-trace"), "405");
    assert_eq!(answer("te-unknown-coding"), "501");
    check_golden(golden, &text);
}

/// The catalogue through HAProxy in front of the lenient lab backend, plain or over TLS.
async fn haproxy_golden(tls: bool, golden: &str) {
    let backend = LabBackend::start(BackendConfig::default())
        .await
        .unwrap_or_else(|e| panic!("lab backend: {e}"));
    let haproxy = Haproxy::start(&HaproxySpec::one(
        HaproxyFrontend::proxy(backend.url()).tls(tls),
    ))
    .unwrap_or_else(|e| panic!("this test needs a real haproxy: {e}"));
    assert_eq!(haproxy.url(0).starts_with("https://"), tls);
    let table = catalogue_against(&haproxy.url(0), Profile::haproxy()).await;
    assert_eq!(table.rows.len(), templates::malformed().len() - 1);
    let text = golden_text(&table);
    let answer = |id: &str| parse_golden(&text)[id].0.clone();
    assert_eq!(
        answer("obs-fold"),
        "200",
        "HAProxy unfolds and passes it on"
    );
    assert_eq!(answer("url-100k"), "400");
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
