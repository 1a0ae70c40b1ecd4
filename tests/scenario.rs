//! The scenario file format: what a valid file loads into, and where each kind of mistake is
//! reported (file:line:column, the line, a caret).

use std::path::{Path, PathBuf};
use std::time::Duration;

use lbprobe::classify::verdict::Verdict;
use lbprobe::probe::{Family, Limits, ProbeSpec};
use lbprobe::profile::{Basis, Numbers, Profile};
use lbprobe::scenario::{
    load_file, load_str, mask_secrets, parse_duration, parse_size, Expectation, LoadContext,
    Problem, ScenarioError, ALWAYS_MASKED,
};
use lbprobe::target::{Role, Scheme, Target};

const CAUSES: [&str; 4] = [
    "400.backend-expects-https",
    "405.trace-unsupported",
    "502.backend-unreachable",
    "504.connect-timeout",
];
const VARIANTS: [&str; 2] = ["lowercase-method", "cl-larger-than-body"];

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/scenarios")
        .join(name)
}

fn lab_vars(name: &str) -> Option<String> {
    match name {
        "TOKEN" => Some("s3cret-token".into()),
        "BACKEND_URL" => Some("http://127.0.0.1:9090/".into()),
        "LISTENER_URL" => Some("https://127.0.0.1:8443/".into()),
        "API_TOKEN" => Some("abc.def".into()),
        "RATE" => Some("20".into()),
        _ => None,
    }
}

fn known_cause(id: &str) -> bool {
    CAUSES.contains(&id)
}

fn known_variant(name: &str) -> bool {
    VARIANTS.contains(&name)
}

fn ctx() -> LoadContext<'static> {
    LoadContext {
        vars: &lab_vars,
        known_cause: &known_cause,
        known_variant: &known_variant,
    }
}

/// Loads `text` and returns the error, which the test expects.
fn error_of(text: &str) -> ScenarioError {
    match load_str(text, "t.yaml", &ctx()) {
        Ok(s) => panic!("expected an error, loaded {s:#?}"),
        Err(e) => e,
    }
}

const BACKEND: &str = "targets: { backend: { url: http://127.0.0.1:9090/ } }\n";

#[test]
fn full_file_round_trips_to_the_right_structs() {
    let path = fixture("full.yaml");
    let scenario = load_file(&path, &ctx()).unwrap();

    assert_eq!(scenario.name, "full-demo");
    assert_eq!(scenario.origin, path.display().to_string());
    assert_eq!(
        scenario.listener,
        Some(Target {
            role: Role::Listener,
            scheme: Scheme::Https,
            host: "127.0.0.1".into(),
            port: 8443,
            path: "/health?deep=1".into(),
            sni: Some("api.example.test".into()),
            tls_verify: false,
            headers: vec![
                ("X-Env".into(), "prod".into()),
                ("X-Token".into(), "s3cret-token".into()),
                ("X-Retries".into(), "3".into()),
            ],
            connect: None,
            family: None,
            ca_file: None,
            client_cert: None,
            client_key: None,
        })
    );
    assert_eq!(
        scenario.backend,
        Some(Target::parse(Role::Backend, "http://127.0.0.1:9090/").unwrap())
    );

    // What the scenario sets is declared, apart from what nginx documents.
    assert_eq!(
        scenario.profile,
        Profile::nginx().with_declared(&Numbers {
            max_header_bytes: Some(16 * 1024),
            max_uri_bytes: Some(8192),
            request_timeout: Some(Duration::from_secs(30)),
            connect_timeout: Some(Duration::from_millis(500)),
            trace_allowed: Some(true),
            ..Numbers::default()
        })
    );
    assert_eq!(
        scenario.profile.response_timeout().map(|c| c.basis),
        Some(Basis::Documented)
    );
    assert_eq!(
        scenario.profile.request_timeout().map(|c| c.basis),
        Some(Basis::Declared)
    );

    assert_eq!(
        scenario.probes,
        vec![
            ProbeSpec::Protocol,
            ProbeSpec::Malformed {
                variants: Some(vec![
                    "lowercase-method".into(),
                    "cl-larger-than-body".into()
                ]),
            },
            ProbeSpec::Methods {
                methods: Some(vec!["GET".into(), "TRACE".into(), "DELETE".into()]),
            },
            ProbeSpec::HeaderSize {
                bisect: false,
                min: 1024,
                max: 64 * 1024,
            },
        ]
    );
    assert_eq!(
        scenario.limits,
        Limits {
            max_requests: 500,
            max_rate: 2.5,
            max_duration: Duration::from_secs(120),
            request_timeout: Duration::from_secs(10),
        }
    );
    assert_eq!(
        scenario.expect,
        vec![
            Expectation {
                cause: "400.backend-expects-https".into(),
                verdict: Verdict::RuledOut,
                line: 27,
                column: 3,
            },
            Expectation {
                cause: "405.trace-unsupported".into(),
                verdict: Verdict::Reproduced,
                line: 28,
                column: 3,
            },
        ]
    );
    // The always-masked names first; "authorization" is one of them whatever its case.
    let mut mask: Vec<String> = ALWAYS_MASKED.iter().map(|s| s.to_string()).collect();
    mask.push("X-Token".into());
    assert_eq!(scenario.mask, mask);

    let json = serde_json::to_value(&scenario).unwrap();
    assert_eq!(json["expect"][1]["verdict"], "reproduced");
    assert_eq!(json["limits"]["max_duration"], 120.0);
}

#[test]
fn minimal_file_gets_every_default() {
    let scenario = load_file(&fixture("minimal.yaml"), &ctx()).unwrap();
    assert_eq!(scenario.name, "minimal", "the file stem");
    assert_eq!(
        scenario.listener,
        Some(Target::parse(Role::Listener, "http://127.0.0.1:8080").unwrap())
    );
    assert!(scenario.listener.as_ref().unwrap().tls_verify);
    assert_eq!(scenario.backend, None);
    assert_eq!(scenario.profile, Profile::auto());
    // Every family but the ones that wait for timeouts or load the target: they run when named.
    let defaults: Vec<ProbeSpec> = Family::defaults().map(ProbeSpec::default_for).collect();
    assert!(!defaults
        .iter()
        .any(|p| matches!(p.family(), Family::Partial | Family::Rate | Family::Mtu)));
    assert_eq!(scenario.probes, defaults);
    assert_eq!(scenario.limits, Limits::default());
    assert!(scenario.expect.is_empty());
    assert_eq!(
        scenario.mask,
        ALWAYS_MASKED
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
    );
}

#[test]
fn syntax_error_shows_file_line_column_and_caret() {
    let path = fixture("syntax-error.yaml");
    let e = load_file(&path, &ctx()).unwrap_err();
    assert_eq!(e.position(), Some((5, 8)));
    assert_eq!(
        e.to_string(),
        format!(
            "{}:5:8: YAML syntax: did not find expected ',' or ']', while parsing a flow \
             sequence that starts at 4:12\n  |\n5 | profile: clb\n  |        ^",
            path.display()
        )
    );
}

#[test]
fn unknown_top_level_key_names_the_expected_keys() {
    let path = fixture("unknown-key-top.yaml");
    let e = load_file(&path, &ctx()).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "{}:4:1: unknown key \"probe\" (expected one of: name, targets, profile, probes, \
             limits, expect, mask)\n  |\n4 | probe:\n  | ^",
            path.display()
        )
    );
}

#[test]
fn unknown_nested_key_names_the_expected_keys() {
    let path = fixture("unknown-key-nested.yaml");
    let e = load_file(&path, &ctx()).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "{}:4:3: unknown key \"listner\" (expected one of: listener, backend, pool)\n  |\n4 |   \
             listner:\n  |   ^",
            path.display()
        )
    );
    assert_eq!(
        e.problem(),
        Some(&Problem::UnknownKey {
            key: "listner".into(),
            expected: vec!["listener".into(), "backend".into(), "pool".into()],
        })
    );
}

#[test]
fn unknown_key_in_a_flow_mapping_points_at_the_key() {
    let e = error_of("targets: { backend: { url: http://127.0.0.1/, verify: no } }\n");
    assert_eq!(e.position(), Some((1, 47)));
    assert_eq!(
        e.problem(),
        Some(&Problem::UnknownKey {
            key: "verify".into(),
            expected: [
                "url",
                "sni",
                "tls-verify",
                "ca-file",
                "client-cert",
                "client-key",
                "connect-to",
                "ip-version",
                "headers"
            ]
            .map(String::from)
            .to_vec(),
        })
    );
}

/// One row per kind of mistake: the file, where the error must point, and what it says.
#[test]
fn each_semantic_error_points_at_its_value() {
    let s = String::from;
    let table: Vec<(String, (usize, usize), Problem)> = vec![
        (
            "targets:\n  listener:\n    url: http://a/\n    tls-verify: maybe\n".into(),
            (4, 17),
            Problem::WrongType {
                path: Some(s("targets.listener.tls-verify")),
                found: s("string \"maybe\""),
                expected: s("a boolean"),
            },
        ),
        (
            format!("{BACKEND}limits:\n  max-requests: [1]\n"),
            (3, 17),
            Problem::WrongType {
                path: Some(s("limits.max-requests")),
                found: s("sequence"),
                expected: s("a number, or a number with a unit such as 32k or 60s"),
            },
        ),
        (
            "targets:\n  listener:\n    sni: a.test\n".into(),
            (3, 5),
            Problem::MissingKey {
                path: Some(s("targets.listener")),
                key: s("url"),
            },
        ),
        (
            format!("{BACKEND}name: a\nname: b\n"),
            (3, 1),
            Problem::DuplicateKey { key: s("name") },
        ),
        (
            format!("{BACKEND}profile: nginxx\n"),
            (2, 10),
            Problem::UnknownProfile { name: s("nginxx") },
        ),
        (
            format!("{BACKEND}profile:\n  base: traefik\n  max-header-bytes: 8k\n"),
            (3, 9),
            Problem::UnknownProfile { name: s("traefik") },
        ),
        (
            format!("{BACKEND}probes:\n  - protocol\n  - malformd\n"),
            (4, 5),
            Problem::UnknownFamily {
                name: s("malformd"),
            },
        ),
        (
            format!("{BACKEND}probes:\n  - headers: {{ max: 1k }}\n"),
            (3, 5),
            Problem::UnknownFamily { name: s("headers") },
        ),
        (
            format!("{BACKEND}probes:\n  - header-size:\n    max: 1k\n"),
            (4, 5),
            Problem::TwoFamilies { key: s("max") },
        ),
        (
            format!("{BACKEND}probes: [protocol, methods, protocol]\n"),
            (2, 29),
            Problem::DuplicateProbe {
                family: s("protocol"),
            },
        ),
        (
            format!("{BACKEND}probes:\n  - malformed: {{ variants: [lowercase-method, nul-in-path] }}\n"),
            (3, 47),
            Problem::UnknownVariant {
                name: s("nul-in-path"),
            },
        ),
        (
            format!("{BACKEND}probes:\n  - methods: {{ methods: [GET, \"BAD METHOD\"] }}\n"),
            (3, 31),
            Problem::BadMethod {
                name: s("BAD METHOD"),
            },
        ),
        (
            format!("{BACKEND}probes:\n  - malformed: {{ variants: [] }}\n"),
            (3, 28),
            Problem::EmptyList { key: s("variants") },
        ),
        (
            format!("{BACKEND}probes: []\n"),
            (2, 9),
            Problem::EmptyList { key: s("probes") },
        ),
        (
            format!("{BACKEND}probes:\n  - header-size: {{ min: 64k, max: 32k }}\n"),
            (3, 25),
            Problem::MinAboveMax {
                min: 65536,
                max: 32768,
            },
        ),
        (
            format!("{BACKEND}expect:\n  502.backend-unreachable: confirmed\n  502.backend-unreachble: ruled_out\n"),
            (4, 3),
            Problem::UnknownCause {
                id: s("502.backend-unreachble"),
            },
        ),
        (
            format!("{BACKEND}expect:\n  504.connect-timeout: ruled-out\n"),
            (3, 24),
            Problem::UnknownVerdict {
                value: s("ruled-out"),
            },
        ),
        (
            format!("{BACKEND}expect:\n  504.connect-timeout: confirmed\n  504.connect-timeout: ruled_out\n"),
            (4, 3),
            Problem::DuplicateExpect {
                id: s("504.connect-timeout"),
            },
        ),
        (
            "targets:\n  listener:\n    url: ftp://127.0.0.1/\n".into(),
            (3, 10),
            Problem::BadUrl {
                role: Role::Listener,
                why: s("\"ftp://127.0.0.1/\": scheme must be http or https, not \"ftp\""),
            },
        ),
        (
            "targets:\n  backend:\n    url: not a url\n".into(),
            (3, 10),
            Problem::BadUrl {
                role: Role::Backend,
                why: s("\"not a url\": a space at byte 3; a target is used exactly as written"),
            },
        ),
        (
            "targets:\n  backend:\n    url: http://user:pw@127.0.0.1/\n".into(),
            (3, 10),
            Problem::UrlCredentials {
                role: Role::Backend,
            },
        ),
        (
            "name: t\ntargets: !evil\n  backend:\n    url: http://127.0.0.1/\n".into(),
            (2, 10),
            Problem::Tag { tag: s("evil") },
        ),
        (
            format!("{BACKEND}limits:\n  max-requests: 5\nprofile: \0nginx\n"),
            (4, 10),
            Problem::ControlCharacter {
                code: s("U+0000"),
            },
        ),
        (
            "targets:\n  backend:\n    url: http://127.0.0.1/\n    sni: a.test\n".into(),
            (4, 10),
            Problem::SniWithoutTls {
                role: Role::Backend,
            },
        ),
        (
            "targets:\n  backend:\n    url: http://127.0.0.1/\n    headers:\n      X-A: \"x\\r\\nInjected: 1\"\n".into(),
            (5, 12),
            Problem::BadHeaderValue { name: s("X-A") },
        ),
        (
            format!("{BACKEND}mask: [X-Api-Key, \"X Api\"]\n"),
            (2, 19),
            Problem::BadHeaderName { name: s("X Api") },
        ),
        (
            format!("{BACKEND}limits:\n  max-duration: 5 minutes\n"),
            (3, 17),
            Problem::BadDuration {
                text: s("5 minutes"),
            },
        ),
        (
            format!("{BACKEND}profile: {{ max-header-bytes: 32KB }}\n"),
            (2, 30),
            Problem::BadSize { text: s("32KB") },
        ),
        (
            format!("{BACKEND}limits:\n  max-requests: 2.5\n"),
            (3, 17),
            Problem::BadNumber {
                key: s("max-requests"),
                text: s("2.5"),
                expected: s("a whole number"),
            },
        ),
        (
            format!("{BACKEND}limits:\n  max-requests: 0\n"),
            (3, 17),
            Problem::NotPositive {
                key: s("max-requests"),
            },
        ),
        (
            format!("{BACKEND}limits:\n  max-rate: -1\n"),
            (3, 13),
            Problem::NotPositive {
                key: s("max-rate"),
            },
        ),
        (
            format!("{BACKEND}limits:\n  max-duration: 0s\n"),
            (3, 17),
            Problem::NotPositive {
                key: s("max-duration"),
            },
        ),
        (
            format!("{BACKEND}limits:\n  request-timeout: -5\n"),
            (3, 20),
            Problem::NotPositive {
                key: s("request-timeout"),
            },
        ),
        (
            format!("{BACKEND}limits:\n  max-requests: 5000000000\n"),
            (3, 17),
            Problem::TooLarge {
                key: s("max-requests"),
                max: s("4294967295"),
            },
        ),
        (
            "name: nothing\nprofile: clb\n".into(),
            (1, 1),
            Problem::NoTargets,
        ),
        ("targets: {}\n".into(), (1, 10), Problem::NoTargets),
        (
            "targets:\n  pool:\n    - { url: http://127.0.0.1:1/ }\n".into(),
            (3, 5),
            Problem::PoolTooSmall,
        ),
        (
            "# only a comment\n".into(),
            (1, 1),
            Problem::NoTargets,
        ),
    ];
    let mut wrong = Vec::new();
    for (text, position, problem) in &table {
        let e = error_of(text);
        if (e.position(), e.problem()) != (Some(*position), Some(problem)) {
            wrong.push(format!(
                "for:\n{text}want {position:?} {problem:?}\ngot:\n{e}\n{:?}",
                e.problem()
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}

#[test]
fn semantic_error_display_is_rustc_style() {
    let e = error_of(&format!("{BACKEND}profile: nginxx\n"));
    assert_eq!(
        e.to_string(),
        "t.yaml:2:10: unknown profile \"nginxx\" (expected one of: auto, clb, nginx, haproxy, aws-alb, apache, envoy, go, none)\n  |\n2 | \
         profile: nginxx\n  |          ^"
    );
    let e = error_of(&format!("{BACKEND}probes: [protocl]\n"));
    assert_eq!(
        e.to_string().lines().next().unwrap(),
        format!(
            "t.yaml:2:10: unknown probe family \"protocl\" (expected one of: {})",
            Family::ALL.map(Family::as_str).join(", ")
        )
    );
    let e = error_of(&format!(
        "{BACKEND}expect: {{ 502.backend-unreachable: maybe }}\n"
    ));
    assert_eq!(
        e.to_string().lines().next().unwrap(),
        "t.yaml:2:36: unknown verdict \"maybe\" (expected one of: confirmed, reproduced, \
         ruled_out, inconclusive)"
    );
}

#[test]
fn variables_are_substituted_and_dollar_dollar_escapes() {
    let scenario = load_file(&fixture("variables.yaml"), &ctx()).unwrap();
    let listener = scenario.listener.unwrap();
    assert_eq!(listener.url(), "https://127.0.0.1:8443/");
    assert_eq!(
        listener.headers,
        vec![
            ("Authorization".into(), "Bearer abc.def".into()),
            ("X-Note".into(), "${NOT_A_VARIABLE}".into()),
        ]
    );
    assert_eq!(scenario.limits.max_rate, 20.0);
}

#[test]
fn undefined_variable_is_reported_at_its_dollar() {
    let e = error_of("targets:\n  backend:\n    url: http://${BACKEND_HOST}:9090/\n");
    assert_eq!(
        e.to_string(),
        "t.yaml:3:17: undefined variable \"BACKEND_HOST\" (set it, or write $${ for a literal \
         ${)\n  |\n3 |     url: http://${BACKEND_HOST}:9090/\n  |                 ^"
    );
}

#[test]
fn positions_after_a_substitution_are_those_of_the_file_as_written() {
    // The value of RATE ("20") is shorter than "${RATE}": the caret must still sit under
    // "nope" as written, and the line shown must not hold the substituted values.
    let e = error_of(&format!(
        "{BACKEND}limits: {{ max-rate: ${{RATE}}, max-duration: nope }}\n"
    ));
    assert_eq!(e.position(), Some((2, 44)));
    let e = error_of(
        "targets: { backend: { url: http://127.0.0.1/, headers: { X-T: \"${TOKEN}\" }, sni: x } }\n",
    );
    assert_eq!(e.position(), Some((1, 82)));
    let shown = e.to_string();
    assert!(shown.contains("${TOKEN}"), "{shown}");
    assert!(
        !shown.contains("s3cret-token"),
        "a secret leaked into:\n{shown}"
    );
}

#[test]
fn a_bad_value_from_a_variable_is_reported_where_the_value_starts() {
    let vars = |name: &str| (name == "URL").then(|| "ftp://127.0.0.1/".to_string());
    let ctx = LoadContext {
        vars: &vars,
        known_cause: &known_cause,
        known_variant: &known_variant,
    };
    let e = load_str("targets:\n  backend: { url: \"${URL}\" }\n", "t.yaml", &ctx).unwrap_err();
    assert_eq!(
        e.position(),
        Some((2, 19)),
        "the opening quote: where the value starts"
    );
    let e = load_str("targets:\n  backend: { url: x${URL} }\n", "t.yaml", &ctx).unwrap_err();
    assert_eq!(e.position(), Some((2, 19)));
}

#[test]
fn multiline_variable_is_refused() {
    let vars = |_: &str| Some("a\nmask: [x]".to_string());
    let ctx = LoadContext {
        vars: &vars,
        known_cause: &known_cause,
        known_variant: &known_variant,
    };
    let e = load_str(&format!("{BACKEND}name: ${{N}}\n"), "t.yaml", &ctx).unwrap_err();
    assert_eq!(e.position(), Some((2, 7)));
    assert_eq!(
        e.problem(),
        Some(&Problem::MultilineVariable { name: "N".into() })
    );
}

#[test]
fn durations_and_sizes() {
    let durations = [
        ("60s", Duration::from_secs(60)),
        ("500ms", Duration::from_millis(500)),
        ("2m", Duration::from_secs(120)),
        ("1h", Duration::from_secs(3600)),
        ("90", Duration::from_secs(90)),
        ("0.25s", Duration::from_millis(250)),
    ];
    for (text, want) in durations {
        assert_eq!(parse_duration(text), Some(want), "{text}");
        // And the same through a file, where a bare number is YAML's own integer.
        let scenario = load_str(
            &format!("{BACKEND}limits: {{ request-timeout: {text} }}\n"),
            "t.yaml",
            &ctx(),
        )
        .unwrap();
        assert_eq!(scenario.limits.request_timeout, want, "{text}");
    }
    let sizes = [
        ("8190", 8190),
        ("32k", 32768),
        ("32K", 32768),
        ("32KiB", 32768),
        ("1m", 1_048_576),
        ("1MiB", 1_048_576),
    ];
    for (text, want) in sizes {
        assert_eq!(parse_size(text), Some(want), "{text}");
        let scenario = load_str(
            &format!("{BACKEND}profile: {{ max-uri-bytes: {text} }}\n"),
            "t.yaml",
            &ctx(),
        )
        .unwrap();
        assert_eq!(
            scenario.profile.max_uri_bytes().map(|c| c.value as u64),
            Some(want),
            "{text}"
        );
        assert_eq!(scenario.profile.name, "auto", "base defaults to auto");
    }
    for bad in ["", "60 s", "1d", "-1s", "abc", "1e3"] {
        assert_eq!(parse_duration(bad), None, "{bad:?}");
    }
    for bad in ["", "32KB", "1.5k", "-1", "k"] {
        assert_eq!(parse_size(bad), None, "{bad:?}");
    }
}

#[test]
fn unreadable_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing.yaml");
    let e = load_file(&path, &ctx()).unwrap_err();
    assert!(matches!(e, ScenarioError::Read { .. }), "{e:?}");
    let shown = e.to_string();
    assert!(
        shown.starts_with(&format!(
            "{}: cannot read the scenario file: ",
            path.display()
        )),
        "{shown}"
    );
}

#[test]
fn oversized_file_is_refused_before_parsing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.yaml");
    let mut text = String::from(BACKEND);
    while text.len() <= 1024 * 1024 {
        text.push_str("# padding padding padding padding padding padding padding padding\n");
    }
    std::fs::write(&path, text).unwrap();
    let e = load_file(&path, &ctx()).unwrap_err();
    assert!(matches!(e, ScenarioError::TooLarge { .. }), "{e:?}");
}

#[test]
fn probe_parameters_left_out_take_the_family_defaults() {
    let scenario = load_str(
        &format!(
            "{BACKEND}probes:\n  - protocol: {{}}\n  - malformed:\n  - methods: {{}}\n  - \
             header-size: {{ max: 16k }}\n"
        ),
        "t.yaml",
        &ctx(),
    )
    .unwrap();
    assert_eq!(
        scenario.probes,
        vec![
            ProbeSpec::Protocol,
            ProbeSpec::Malformed { variants: None },
            ProbeSpec::Methods { methods: None },
            ProbeSpec::HeaderSize {
                bisect: true,
                min: 1024,
                max: 16 * 1024,
            },
        ]
    );
}

#[test]
fn complete_examples_in_the_docs_load() {
    let docs =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/scenario.md"))
            .unwrap();
    let examples: Vec<&str> = docs
        .split("```yaml\n")
        .skip(1)
        .filter_map(|block| block.split_once("```").map(|(yaml, _)| yaml))
        .filter(|yaml| yaml.contains("targets:"))
        .collect();
    assert!(examples.len() >= 3, "found {} examples", examples.len());
    for yaml in examples {
        if let Err(e) = load_str(yaml, "docs/scenario.md", &ctx()) {
            panic!("{e}");
        }
    }
}

#[test]
fn columns_count_characters_and_crlf_files_work() {
    let e = error_of("targets: { backend: { url: \"http://é.test/\", sni: x } }\n");
    assert_eq!(e.position(), Some((1, 51)), "é is one column");
    let e = error_of("targets:\r\n  listner:\r\n    url: http://127.0.0.1/\r\n");
    assert_eq!(e.position(), Some((2, 3)));
    assert!(e.to_string().contains("\n2 |   listner:\n"), "{e}");
    let e = error_of("\u{feff}targets:\n  listner: {}\n");
    assert_eq!(
        e.position(),
        Some((2, 3)),
        "a byte-order mark is not a column"
    );
}

/// Damages the full example one character at a time: loading never panics, and every error
/// points inside the file at a line that really is that line of the file.
#[test]
fn damaged_files_give_errors_that_point_inside_the_file() {
    let full = std::fs::read_to_string(fixture("full.yaml")).unwrap();
    let mut damaged = Vec::new();
    for (i, _) in full.char_indices() {
        let (before, after) = full.split_at(i);
        let rest = after.chars().skip(1).collect::<String>();
        damaged.push(format!("{before}{rest}"));
        for insert in ["[", "\"", "$"] {
            damaged.push(format!("{before}{insert}{after}"));
        }
    }
    let mut errors = 0;
    for text in &damaged {
        let Err(ScenarioError::Invalid(d)) = load_str(text, "d.yaml", &ctx()) else {
            continue;
        };
        errors += 1;
        let lines: Vec<&str> = text.split('\n').collect();
        assert!(d.line >= 1 && d.line <= lines.len(), "{d}\nin:\n{text}");
        // The line as written, but for the secrets an excerpt never shows.
        let shown = mask_secrets(lines[d.line - 1], 1).0;
        assert_eq!(d.source_line, shown, "{d}\nin:\n{text}");
        assert!(
            d.column >= 1 && d.column <= d.source_line.chars().count() + 1,
            "{d}"
        );
    }
    assert!(
        errors > damaged.len() / 4,
        "only {errors} of {} damaged files failed",
        damaged.len()
    );
}

#[test]
fn limit_timing_and_backend_families_take_their_parameters() {
    let text = "targets:\n  listener: { url: 'http://127.0.0.1:8080/' }\nprobes:\n  - uri-limit: { min: 2k, max: 64k }\n  - header-limit: { bisect: false }\n  - partial: { max-wait: 5s }\n  - latency: { requests: 7, client-timeout: 2500ms }\n  - connect: { attempts: 2 }\n  - response\n";
    let s = load_str(text, "families.yaml", &ctx()).unwrap();
    assert_eq!(
        s.probes,
        vec![
            ProbeSpec::UriLimit {
                bisect: true,
                min: 2048,
                max: 65536
            },
            ProbeSpec::HeaderLimit {
                bisect: false,
                min: 1024,
                max: 131072
            },
            ProbeSpec::Partial {
                max_wait: Duration::from_secs(5)
            },
            ProbeSpec::Latency {
                requests: 7,
                client_timeout: Some(Duration::from_millis(2500))
            },
            ProbeSpec::Connect { attempts: 2 },
            ProbeSpec::Response,
        ]
    );
    let err = error_of("targets:\n  listener: { url: 'http://127.0.0.1:8080/' }\nprobes:\n  - latency: { requests: 0 }\n");
    assert_eq!(err.position(), Some((4, 26)), "{err}");
    let err = error_of("targets:\n  listener: { url: 'http://127.0.0.1:8080/' }\nprobes:\n  - response: { x: 1 }\n");
    assert!(err.to_string().contains("4:"), "{err}");
}

#[test]
fn keepalive_family_takes_its_parameters() {
    let text = "targets:\n  listener: { url: 'http://127.0.0.1:8080/' }\nprobes:\n  - keepalive: { max-wait: 30s, reproduce: true }\n";
    let s = load_str(text, "keepalive.yaml", &ctx()).unwrap();
    assert_eq!(
        s.probes,
        vec![ProbeSpec::Keepalive {
            max_wait: Duration::from_secs(30),
            reproduce: true
        }]
    );
    let err = error_of(
        "targets:\n  listener: { url: 'http://127.0.0.1:8080/' }\nprobes:\n  - keepalive: { reproduse: true }\n",
    );
    assert!(err.to_string().contains("reproduse"), "{err}");
    assert_eq!(err.position().map(|(line, _)| line), Some(4), "{err}");
}

#[test]
fn a_pool_lists_every_member_in_order() {
    let scenario = load_str(
        "targets:\n  listener: { url: http://127.0.0.1:8080/ }\n  pool:\n    - { url: http://127.0.0.1:9001/ }\n    - { url: http://127.0.0.1:9002/ }\n    - { url: http://127.0.0.1:9003/ }\n",
        "t.yaml",
        &ctx(),
    )
    .unwrap();
    let ports: Vec<u16> = scenario.pool.iter().map(|t| t.port).collect();
    assert_eq!(ports, [9001, 9002, 9003]);
    assert!(scenario.backend.is_none());
}

#[test]
fn connect_to_ip_version_and_tls_files_are_checked_where_written() {
    let e = error_of("targets: { listener: { url: https://a.test/, connect-to: nowhere } }\n");
    assert_eq!(e.position(), Some((1, 58)));
    assert!(e.to_string().contains("bad connect-to \"nowhere\""), "{e}");
    let e = error_of("targets: { listener: { url: https://a.test/, ip-version: 5 } }\n");
    assert_eq!(e.position(), Some((1, 58)));
    assert!(e.to_string().contains("4 or 6"), "{e}");
    let e = error_of("targets: { backend: { url: http://a.test/, ca-file: ca.pem } }\n");
    assert_eq!(e.position(), Some((1, 53)));
    assert!(
        e.to_string().contains("`ca-file` needs an https URL"),
        "{e}"
    );

    let s = load_str(
        "targets: { listener: { url: \"https://lb.test:8443/\", connect-to: \"[::1]:9443\", ip-version: 6 } }\n",
        "inline.yaml",
        &ctx(),
    )
    .unwrap();
    let l = s.listener.unwrap();
    assert_eq!(l.connect_host_port(), ("::1", 9443));
    assert_eq!(l.host_header(), "lb.test:8443");
    assert_eq!(l.family, Some(lbprobe::transport::IpFamily::V6));
}

/// Bytes that are not UTF-8 are reported where they are, like any other problem.
#[test]
fn invalid_utf8_is_reported_at_its_line_and_column() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bad.yaml");
    std::fs::write(
        &path,
        b"targets:\n  backend:\n    url: http://127.0.0.1/\nprofile: ng\xffinx\n",
    )
    .expect("write");
    let err = load_file(&path, &ctx()).expect_err("not UTF-8");
    assert_eq!(err.problem(), Some(&Problem::InvalidUtf8));
    assert_eq!(err.position(), Some((4, 12)));
}

/// An error's excerpt shows the line as written, except the secrets on it.
#[test]
fn error_excerpts_never_show_a_secret() {
    for text in [
        "targets:\n  backend:\n    url: http://admin:hunter2@127.0.0.1/\n",
        "targets:\n  backend:\n    url: http://127.0.0.1/\n    headers:\n      Authorization: Bearer hunter2\n      X-Retries: [1\n",
        "targets:\n  backend:\n    url: http://127.0.0.1/\n    headers: { X-Api-Key: hunter2, X-B: [ }\n",
    ] {
        let err = load_str(text, "t.yaml", &ctx()).expect_err("invalid").to_string();
        assert!(!err.contains("hunter2"), "{err}");
    }
}

/// A variable's value never appears in an error, even where the problem quotes what it found
/// (found by fuzzing: "found string …" carried the substituted value; then `$${${TOKEN}`, a
/// literal `${` right before a reference, hid the reference from the scan that listed the
/// values to mask).
#[test]
fn errors_never_quote_a_variables_value() {
    let vars = |name: &str| (name == "TOKEN").then(|| "sekrit-token-value".to_string());
    let ctx = LoadContext {
        vars: &vars,
        known_cause: &known_cause,
        known_variant: &known_variant,
    };
    for text in [
        "\"${TOKEN}\"\n",
        "targets:\n  backend:\n    url: http://127.0.0.1/\nlimits:\n  max-duration: ${TOKEN}\n",
        "targets:\n  backend:\n    url: http://${TOKEN}@127.0.0.1/\n",
        "tazgetkkkklistenern:$${${TOKEN}#, X-Retries/healthAeeep=0ken4\n",
        "targets:\n  :aeaders-0gbr -:aeaders-0gbr - protocoget222223\"$${222222.2222\"${TOKEN}\" protocol\n",
    ] {
        let err = load_str(text, "t.yaml", &ctx)
            .expect_err("invalid")
            .to_string();
        assert!(!err.contains("sekrit-token-value"), "{err}");
    }
}
