//! `lbprobe logs`: golden lines per format (one per documented cause), the summary and its
//! parallel reading, bad input, random bytes, and the binary.

#[path = "support/says.rs"]
mod says;
use says::assert_says;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use lbprobe::logs::classify::{classify, Facts, Timeouts};
use lbprobe::logs::{self, Input, LogFormat, LogsError, Options};
use lbprobe::profile::{Numbers, Profile};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/logs")
        .join(name)
}

fn options(format: &str, threads: usize) -> Options {
    Options {
        format: LogFormat::parse(format).unwrap(),
        profile: "clb".into(),
        timeouts: Timeouts::of(&Profile::clb()),
        threads,
        errors: None,
    }
}

/// Every line of `log` against the cause (or `-`, or `bad`) on the same line of `expect`.
fn golden(format: &str, log: &str, expect: &str) {
    let opts = options(format, 1);
    let text = std::fs::read(fixture(log)).unwrap();
    let want = std::fs::read_to_string(fixture(expect)).unwrap();
    let lines: Vec<&[u8]> = text
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let want: Vec<&str> = want.lines().collect();
    assert_eq!(
        lines.len(),
        want.len(),
        "{log} and {expect} differ in length"
    );
    for (i, (line, want)) in lines.iter().zip(&want).enumerate() {
        let got = match opts.format.parse_line(line, false) {
            Err(e) => format!("bad ({})", e.message),
            Ok(rec) => {
                let c = classify(&Facts::of(&rec), &opts.timeouts);
                c.cause
                    .or(c.either.map(|e| e.id))
                    .unwrap_or("-")
                    .to_string()
            }
        };
        let got = if got.starts_with("bad") {
            "bad"
        } else {
            got.as_str()
        };
        assert_eq!(
            got,
            *want,
            "{log}:{}: {}",
            i + 1,
            String::from_utf8_lossy(line)
        );
    }
}

#[test]
fn nginx_upstream_format_names_every_cause() {
    golden("upstream", "nginx-upstream.log", "nginx-upstream.expect");
}

#[test]
fn clb_json_export_names_every_cause() {
    golden("json", "clb-export.jsonl", "clb-export.expect");
}

#[test]
fn haproxy_http_log_names_every_cause() {
    golden("haproxy", "haproxy.log", "haproxy.expect");
}

#[test]
fn summary_counts_causes_and_shows_the_bad_line() {
    let s = logs::analyze(
        &[Input::File(fixture("nginx-upstream.log"))],
        &options("upstream", 1),
    )
    .unwrap();
    assert_eq!(s.lines, 29);
    assert_eq!(s.bad, 1);
    assert_eq!(s.bad_samples[0].line, 29);
    assert_eq!(s.causes["502.passthrough"].count, 2);
    assert_eq!(s.causes["504.backend-slow"].first_line, 25);
    assert_eq!(s.status[200], 2);
    assert_eq!(s.errors(), 26);
    // 499s, 400s and the rest: one cause each, 404 counted but explained by none.
    assert_eq!(s.unexplained.get(&404), Some(&1));
}

#[test]
fn gzip_reads_like_the_plain_file() {
    let opts = options("upstream", 1);
    let plain = logs::analyze(&[Input::File(fixture("nginx-upstream.log"))], &opts).unwrap();
    let gz = logs::analyze(&[Input::File(fixture("nginx-upstream.log.gz"))], &opts).unwrap();
    assert_eq!(plain.status, gz.status);
    assert_eq!(plain.bad, gz.bad);
    assert_eq!(
        plain.causes.keys().collect::<Vec<_>>(),
        gz.causes.keys().collect::<Vec<_>>()
    );
}

/// A file big enough to be split into chunks: threads must agree with one thread exactly,
/// line numbers included.
#[test]
fn parallel_chunks_agree_with_one_thread() {
    let one = std::fs::read(fixture("nginx-upstream.log")).unwrap();
    let good: Vec<u8> = one
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty() && !l.starts_with(b"this line"))
        .flat_map(|l| l.iter().copied().chain([b'\n']))
        .collect();
    let mut data = Vec::with_capacity(20 << 20);
    while data.len() < 20 << 20 {
        data.extend_from_slice(&good);
    }
    data.extend_from_slice(b"a bad line at the very end\n");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.log");
    std::fs::write(&path, &data).unwrap();
    let input = [Input::File(path)];
    let a = logs::analyze(&input, &options("upstream", 1)).unwrap();
    let b = logs::analyze(&input, &options("upstream", 3)).unwrap();
    assert_eq!(a.lines, b.lines);
    assert_eq!(a.status, b.status);
    assert_eq!(a.bad_samples, b.bad_samples);
    assert_eq!(b.bad_samples[0].line, b.lines);
    for (id, s) in &a.causes {
        assert_eq!(s.count, b.causes[id].count, "{id}");
        assert_eq!(s.first_line, b.causes[id].first_line, "{id}");
    }
}

#[test]
fn a_file_in_another_format_stops_with_a_clear_error() {
    let err = logs::analyze(
        &[Input::File(fixture("clb-export.jsonl"))],
        &options("combined", 1),
    )
    .unwrap_err();
    assert!(matches!(err, LogsError::NotThisFormat { .. }), "{err}");
    let msg = err.to_string();
    assert_says(
        &msg,
        &["does not look like the nginx combined format", "line 1"],
    );
    // The lines are the JSON export's (its broken lines aside), and the error says so.
    assert!(
        msg.ends_with("these lines parse as `json`: try --log-format json"),
        "{msg}"
    );
}

/// A log read with the wrong `--log-format` names the one its lines parse in; lines no known
/// format reads get no guess.
#[test]
fn the_wrong_log_format_suggests_the_right_one() {
    let cases = [
        ("nginx-upstream.log", "combined", Some("upstream")),
        ("nginx-upstream.log", "haproxy", Some("upstream")),
        ("haproxy.log", "upstream", Some("haproxy")),
        ("clb-export.jsonl", "haproxy", Some("json")),
    ];
    for (file, format, want) in cases {
        let err = logs::analyze(&[Input::File(fixture(file))], &options(format, 1))
            .expect_err("the wrong format stops the read");
        let LogsError::NotThisFormat { parses_as, .. } = &err else {
            panic!("{file} as {format}: {err}");
        };
        assert_eq!(*parses_as, want, "{file} as {format}: {err}");
        let want = want.unwrap_or_default();
        assert!(
            err.to_string()
                .ends_with(&format!("try --log-format {want}")),
            "{err}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("garbage.log");
    std::fs::write(&path, "not a log line\nnor this one\n").unwrap();
    let err = logs::analyze(&[Input::File(path)], &options("upstream", 1)).unwrap_err();
    assert!(
        matches!(
            err,
            LogsError::NotThisFormat {
                parses_as: None,
                ..
            }
        ),
        "{err}"
    );
    assert!(!err.to_string().contains("try --log-format"), "{err}");
}

#[test]
fn explain_line_gives_fields_and_reasoning() {
    let e = logs::explain_line(
        &Input::File(fixture("nginx-upstream.log")),
        21,
        &options("upstream", 1),
    )
    .unwrap();
    let fields = e.fields.as_ref().unwrap();
    assert!(
        fields
            .iter()
            .any(|(k, v)| k == "$upstream_status" && v == "502, 502"),
        "{fields:?}"
    );
    let c = e.classification.unwrap();
    assert_eq!(c.cause, Some("502.passthrough"));
    assert_eq!(e.facts.unwrap().upstream, vec![502, 502]);
    let err = logs::explain_line(
        &Input::File(fixture("nginx-upstream.log")),
        999,
        &options("upstream", 1),
    )
    .unwrap_err();
    assert!(err.to_string().contains("no line 999"), "{err}");
}

/// xorshift64*: a fixed seed, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// Random bytes and mutated real lines through every parser and the classifier: no panic.
#[test]
fn random_bytes_never_panic_a_parser() {
    let formats = [
        "upstream",
        "combined",
        "lab",
        "json",
        "haproxy",
        "$status \"$upstream_status\" $request_time",
    ];
    let opts: Vec<Options> = formats.iter().map(|f| options(f, 1)).collect();
    let mut seeds: Vec<Vec<u8>> = Vec::new();
    seeds.extend(ERROR_LOG_SEEDS.iter().map(|l| l.as_bytes().to_vec()));
    let mut errors = lbprobe::logs::errorlog::ErrorIndex::new("random".into());
    for f in ["nginx-upstream.log", "clb-export.jsonl", "haproxy.log"] {
        let text = std::fs::read(fixture(f)).unwrap();
        seeds.extend(text.split(|&b| b == b'\n').map(<[u8]>::to_vec));
    }
    let alphabet = b" \"[]{}:,-/.0123456789\\$\t\r{}";
    let mut rng = Rng(0x5eed_1b9a_0b1e_c0de);
    let mut parsed = 0;
    let mut anchored = 0;
    for round in 0..20_000 {
        let mut line = if round % 2 == 0 {
            let len = (rng.next() % 300) as usize;
            (0..len).map(|_| rng.next() as u8).collect::<Vec<u8>>()
        } else {
            seeds[(rng.next() % seeds.len() as u64) as usize].clone()
        };
        for _ in 0..(rng.next() % 8) {
            if line.is_empty() {
                break;
            }
            let at = (rng.next() % line.len() as u64) as usize;
            match rng.next() % 3 {
                0 => line[at] = alphabet[(rng.next() % alphabet.len() as u64) as usize],
                1 => {
                    line.remove(at);
                }
                _ => line.truncate(at),
            }
        }
        // Every line as an error.log line too: a reason or nothing, never a panic.
        let _ = lbprobe::logs::errorlog::parse_line(&line);
        errors.add_line(&line);
        if round % 1000 == 0 {
            errors.finish();
        }
        for o in &opts {
            // The quote anchor never disagrees with the walk: where both place a status, it is
            // the same one. (The anchor does not check the fields before the request, so a line
            // damaged there still has its status read; docs/logs.md says so.)
            if let LogFormat::Nginx { format, .. } = &o.format {
                if let (Some(a), Some(w)) = (format.status_by_anchor(&line), format.status(&line)) {
                    anchored += 1;
                    assert_eq!(a, w, "{:?}", String::from_utf8_lossy(&line));
                }
            }
            if let Ok(rec) = o.format.parse_line(&line, false) {
                parsed += 1;
                let mut facts = Facts::of(&rec);
                let _ = classify(&facts, &o.timeouts);
                facts.join(errors.join(&rec, rec.status));
                let _ = classify(&facts, &o.timeouts);
            }
            let _ = o.format.parse_line(&line, true);
            let _ = o.format.fields(&line);
        }
    }
    assert!(
        parsed > 1000,
        "mutations should leave many lines parseable, got {parsed}"
    );
    assert!(
        anchored > 1000,
        "the anchor placed only {anchored} statuses"
    );
}

/// Lines nginx 1.22 wrote to its error.log, seeds for the random test.
const ERROR_LOG_SEEDS: &[&str] = &[
    r#"2026/12/07 14:30:05 [error] 32522#32522: *5 upstream timed out (110: Connection timed out) while connecting to upstream, client: 127.0.0.1, server: localhost, request: "GET /connect-timeout HTTP/1.1", upstream: "http://127.0.0.1:39407/connect-timeout", host: "localhost""#,
    r#"2026/12/07 14:30:06 [info] 32522#32522: *36 client sent invalid request while reading client request line, client: 127.0.0.1, server: localhost, request: "GET /bad request HTTP/1.1""#,
    r#"2026/12/07 14:30:04 [notice] 32521#32521: start worker process 32522"#,
];

fn lbprobe() -> Command {
    Command::new(env!("CARGO_BIN_EXE_lbprobe"))
}

#[test]
fn binary_reads_gzip_from_stdin_and_writes_json() {
    let gz = std::fs::read(fixture("nginx-upstream.log.gz")).unwrap();
    let mut child = lbprobe()
        .args(["logs", "-", "--format", "json", "--log-format", "upstream"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), &gz).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["lines"], 29);
    assert_eq!(v["bad_samples"][0]["line"], 29);
    let causes = v["causes"].as_array().unwrap();
    let mapped = causes
        .iter()
        .find(|c| c["cause"] == "502.backend-error-mapped")
        .unwrap();
    assert_eq!(mapped["count"], 1);
    assert!(mapped["fix"].as_array().is_some_and(|f| !f.is_empty()));
    assert_eq!(mapped["top_uris"][0]["value"], "/p/15");
}

/// nginx answers 502, not 503, when it has no server to try: a log of nginx's 503s without an
/// upstream is a limit's, even when no line of it reached a backend.
#[test]
fn nginx_503s_without_an_upstream_stay_a_limit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("limited.log");
    let line = r#"10.1.0.23 - - [24/Nov/2025:19:31:01 +0000] "GET /p/23 HTTP/1.1" 503 190 "-" "curl/8.5.0" 80 0.000 - - - - -"#;
    std::fs::write(&path, format!("{line}\n{line}\n")).unwrap();
    let s = logs::analyze(&[Input::File(path)], &options("upstream", 1)).unwrap();
    assert_eq!(s.causes["503.rate-limited"].count, 2);
    assert!(!s.causes.contains_key("503.no-backends"));
}

#[test]
fn binary_joins_an_error_log_only_to_nginx_lines() {
    let dir = tempfile::tempdir().unwrap();
    let access = dir.path().join("access.log");
    let error = dir.path().join("error.log");
    std::fs::write(
        &access,
        concat!(
            r#"127.0.0.1 - - [07/Dec/2026:14:30:05 +0000] "GET /connect-timeout HTTP/1.1" 504 167 "-" "curl/8" 69 1.001 127.0.0.1:39407 504 1.001 - -"#,
            "\n"
        ),
    )
    .unwrap();
    std::fs::write(&error, format!("{}\n", ERROR_LOG_SEEDS[0])).unwrap();
    let out = lbprobe()
        .args(["logs", "--log-format", "upstream", "--explain-line", "1"])
        .arg(&access)
        .arg("--error-log")
        .arg(&error)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(
            "error.log reason             upstream timed out … while connecting to upstream"
        ),
        "{text}"
    );
    assert!(
        text.contains("this line shows 504.connect-timeout"),
        "{text}"
    );

    let out = lbprobe()
        .args(["logs", "--log-format", "haproxy"])
        .arg(fixture("haproxy.log"))
        .arg("--error-log")
        .arg(&error)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(lbprobe::exit::BAD_INPUT));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--error-log reads nginx's error.log"), "{err}");
}

#[test]
fn binary_explains_a_line_and_rejects_a_wrong_format() {
    let out = lbprobe()
        .args(["logs", "--log-format", "haproxy", "--explain-line", "2"])
        .arg(fixture("haproxy.log"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert_says(
        &text,
        &[
            "termination state            sH",
            "this line shows 504.backend-slow",
        ],
    );

    let out = lbprobe()
        .args(["logs", "--log-format", "json"])
        .arg(fixture("haproxy.log"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(lbprobe::exit::BAD_INPUT));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("does not look like the JSON export format"),
        "{err}"
    );
}

/// The format the real-nginx test logs with: every upstream list quoted.
const NGINX_TEST_FORMAT: &str =
    "$remote_addr [$time_local] \"$request\" $status \"$upstream_status\" \
     $body_bytes_sent $request_length $request_time \"$upstream_response_time\" \
     \"$upstream_connect_time\" \"$upstream_header_time\" \"$upstream_addr\"";

/// Probes through a real nginx, then the classifier on nginx's own access logs: the log names
/// the causes the probes found. Fails (never skips) without nginx.
#[tokio::test]
async fn nginx_access_log_names_the_causes_the_probes_found() {
    use lbprobe::classify::Verdict;
    use lbprobe::lab::{
        BackendConfig, Fault, FaultRule, LabBackend, Nginx, NginxServer, NginxSpec,
    };
    use lbprobe::probe::{Limits, Plan, ProbeSpec};
    use lbprobe::run::{self, Job};
    use lbprobe::target::{Role, Target};
    use std::collections::BTreeSet;
    use std::time::Duration;

    let picky = LabBackend::start(BackendConfig::default().reject_method("DELETE"))
        .await
        .unwrap();
    let slow = LabBackend::start(
        BackendConfig::default().fault(FaultRule::all(Fault::Delay(Duration::from_millis(1500)))),
    )
    .await
    .unwrap();
    let logs_dir = tempfile::tempdir().unwrap();
    let log = |i: usize| logs_dir.path().join(format!("server{i}.log"));
    let harness = logs_dir.path().join("harness.log");
    // Each server also logs in the harness's own format (defined by lbprobe::lab as `lbprobe`).
    let access = |i: usize| {
        format!(
            "access_log {} logs_test; access_log {} lbprobe;",
            log(i).display(),
            harness.display()
        )
    };
    let spec = NginxSpec {
        cert: None,
        servers: vec![
            NginxServer::proxy(picky.url()).extra(access(0)),
            NginxServer::proxy(slow.url()).extra(format!(
                "proxy_read_timeout 1s; proxy_connect_timeout 1s; {}",
                access(1)
            )),
        ],
        http_extra: format!("log_format logs_test '{NGINX_TEST_FORMAT}';"),
    };
    let nginx = Nginx::start(&spec).unwrap_or_else(|e| panic!("this test needs a real nginx: {e}"));
    let profile = Profile::nginx().with_declared(&Numbers {
        connect_timeout: Some(Duration::from_secs(1)),
        response_timeout: Some(Duration::from_secs(1)),
        ..Numbers::default()
    });
    let probe = |listener: String, backend: String, probes: Vec<ProbeSpec>| {
        let profile = profile.clone();
        async move {
            let mut l = Target::parse(Role::Listener, &listener).unwrap();
            l.tls_verify = false;
            let b = Target::parse(Role::Backend, &backend).unwrap();
            let job = Job::new(
                "logs",
                "tests/logs.rs",
                Plan::new(Some(l), Some(b))
                    .with_profile(profile)
                    .with_probes(probes)
                    .with_limits(Limits {
                        max_requests: 200,
                        max_rate: 500.0,
                        max_duration: Duration::from_secs(60),
                        request_timeout: Duration::from_secs(5),
                    }),
            );
            run::execute(job, std::sync::Arc::new(|_| {})).await
        }
    };
    let mut found = BTreeSet::new();
    for report in [
        probe(
            nginx.url(0),
            picky.url(),
            vec![
                ProbeSpec::Methods {
                    methods: Some(vec!["GET".into(), "TRACE".into(), "DELETE".into()]),
                },
                ProbeSpec::Malformed {
                    variants: Some(vec!["control".into(), "lowercase-method".into()]),
                },
            ],
        )
        .await,
        probe(
            nginx.url(1),
            slow.url(),
            vec![ProbeSpec::Latency {
                requests: 2,
                client_timeout: None,
            }],
        )
        .await,
    ] {
        for f in &report.findings {
            if matches!(f.verdict, Verdict::Confirmed | Verdict::Reproduced) {
                found.insert(f.cause.clone());
            }
        }
    }
    let expected: BTreeSet<String> = [
        "400.malformed-request",
        "405.backend-method-unsupported",
        "405.trace-unsupported",
        "504.backend-slow",
    ]
    .map(String::from)
    .into();
    assert!(expected.is_subset(&found), "the probes found {found:?}");

    let opts = Options {
        format: LogFormat::parse(NGINX_TEST_FORMAT).unwrap(),
        profile: "nginx".into(),
        timeouts: Timeouts::of(&profile),
        threads: 2,
        errors: None,
    };
    let inputs = [Input::File(log(0)), Input::File(log(1))];
    let s = logs::analyze(&inputs, &opts).unwrap();
    let named: BTreeSet<String> = s.causes.keys().map(|k| k.to_string()).collect();
    let logs_text = || {
        inputs
            .iter()
            .map(|i| match i {
                Input::File(p) => std::fs::read_to_string(p).unwrap_or_default(),
                Input::Stdin => String::new(),
            })
            .collect::<String>()
    };
    assert_eq!(s.bad, 0, "{:?}\n{}", s.bad_samples, logs_text());
    assert_eq!(named, expected, "{}", logs_text());

    // nginx's own harness log, in lbprobe::lab::ACCESS_LOG_FORMAT, parses too and shows the same
    // 405s. It has no connect or header times, so fewer causes can be told apart: a 504 after
    // 1 s, both declared timeouts, is nginx's connect or read timeout; without $request_length
    // the 400s are undecided, the malformed request among them.
    let lab = Options {
        format: LogFormat::parse(lbprobe::lab::ACCESS_LOG_FORMAT).unwrap(),
        ..opts
    };
    let s = logs::analyze(&[Input::File(harness.clone())], &lab).unwrap();
    assert_eq!(s.bad, 0, "{:?}", s.bad_samples);
    let harness_text = std::fs::read_to_string(&harness).unwrap_or_default();
    for id in ["405.trace-unsupported", "405.backend-method-unsupported"] {
        assert!(
            s.causes.contains_key(id),
            "{id} missing: {:?}\n{harness_text}",
            s.causes.keys()
        );
    }
    assert!(!s.causes.contains_key("400.malformed-request"));
    assert!(
        s.undecided
            .contains_key("504.connect-timeout or 504.backend-slow"),
        "{:?}\n{harness_text}",
        s.undecided.keys()
    );
    let undecided =
        &s.undecided["400.malformed-request or 400.header-too-large or 400.http-to-https-listener"];
    assert!(undecided.stats.count >= 1, "{harness_text}");
    assert!(undecided.either.tell.contains("error.log"));
}

/// The fast path (status by the quote anchor, full parse only for errors) counts every status
/// and every bad line as the field-by-field parse does: a line below 400 is read up to its
/// status, any other in full.
#[test]
fn fast_path_counts_what_the_full_parse_counts() {
    let path = fixture("nginx-upstream.log");
    let text = std::fs::read(&path).unwrap();
    // The fixture, then the same lines with damage after the anchor, which both paths must
    // count as bad.
    let mut lines: Vec<Vec<u8>> = text.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
    let damaged: Vec<Vec<u8>> = lines
        .iter()
        .filter_map(|l| {
            let mut d = l.clone();
            let q = d.iter().rposition(|&b| b == b'"')?;
            d.truncate(q - 1);
            Some(d)
        })
        .collect();
    lines.extend(damaged);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mixed.log");
    std::fs::write(&file, lines.join(&b'\n')).unwrap();
    let o = options("upstream", 1);
    let fast = logs::analyze(&[Input::File(file.clone())], &o).unwrap();
    let mut status = vec![0u64; fast.status.len()];
    let mut bad = 0;
    for l in lines.iter().filter(|l| !l.is_empty()) {
        let rec = match o.format.parse_line(l, true) {
            Ok(rec) if rec.status < 400 => Ok(rec),
            _ => o.format.parse_line(l, false),
        };
        match rec {
            Ok(rec) => status[usize::from(rec.status)] += 1,
            Err(_) => bad += 1,
        }
    }
    assert!(bad > 0);
    assert_eq!(fast.bad, bad);
    assert_eq!(fast.status, status);
}

/// One thread or two, in chunks: the same lines, statuses, causes and bad lines (top-K lists
/// aside: when they overflow, which keys survive depends on the split).
#[test]
fn files_summarise_alike_on_any_thread_count() {
    let text = std::fs::read(fixture("nginx-upstream.log")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.log");
    // Over 16 MB, so that two threads split it; no final newline, to end on a partial line.
    let mut big = Vec::new();
    while big.len() < 17 << 20 {
        big.extend_from_slice(&text);
    }
    big.extend_from_slice(b"not nginx at the very end");
    std::fs::write(&file, &big).unwrap();
    let run = |threads: usize| {
        logs::analyze(&[Input::File(file.clone())], &options("upstream", threads)).unwrap()
    };
    let reference = run(1);
    assert!(reference.lines > 100_000);
    for threads in [2, 3] {
        let s = run(threads);
        assert_eq!(
            (s.lines, s.blank, s.bad, &s.status),
            (
                reference.lines,
                reference.blank,
                reference.bad,
                &reference.status
            ),
            "threads {threads}"
        );
        let counts = |s: &logs::summary::Summary| -> Vec<(String, u64)> {
            s.causes
                .iter()
                .map(|(k, c)| (k.to_string(), c.count))
                .collect()
        };
        assert_eq!(counts(&s), counts(&reference));
        let lines = |s: &logs::summary::Summary| -> Vec<u64> {
            s.bad_samples.iter().map(|b| b.line).collect()
        };
        assert_eq!(lines(&s), lines(&reference));
    }
}
