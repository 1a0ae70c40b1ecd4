//! No secret in any output: secrets planted in the headers a run sends (Authorization, Cookie,
//! a header named in `--mask`/`mask:`), and in what the listener sends back (Set-Cookie), must
//! not appear in any format of any command that reports a run, even where a backend echoes the
//! request (the lab backend answers TRACE with the request it got).

mod support;
use support::findings::{start_backend, start_nginx};

use support::report_json::{lbprobe_async, scan_args, TIGHT};

use lbprobe::lab::{BackendConfig, NginxServer, NginxSpec};

const AUTH: &str = "planted-auth-9f1c";
const COOKIE: &str = "planted-cookie-4b2e";
const API_KEY: &str = "planted-apikey-77d0";
const SET_COOKIE: &str = "planted-setcookie-c3a8";

fn assert_clean(what: &str, out: &std::process::Output) {
    let all = [&out.stdout[..], &out.stderr[..]].concat();
    let text = String::from_utf8_lossy(&all);
    assert!(
        !out.stdout.is_empty(),
        "{what}: nothing written\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for secret in [AUTH, COOKIE, API_KEY, SET_COOKIE] {
        assert!(
            !text.contains(secret),
            "{what}: {secret} appears in the output:\n{text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_planted_secret_reaches_any_output() {
    let backend = start_backend(BackendConfig::default()).await;
    let nginx = start_nginx(&NginxSpec::one(NginxServer::proxy(backend.url()).extra(
        format!("add_header Set-Cookie \"sid={SET_COOKIE}\" always;"),
    )));
    let (listener, direct) = (nginx.url(0), backend.url());
    let auth = format!("Authorization: Bearer {AUTH}");
    let cookie = format!("Cookie: sid={COOKIE}; theme=x");
    let api_key = format!("X-Api-Key: {API_KEY}");

    let dir = tempfile::tempdir().expect("temp dir");
    let scenario = dir.path().join("secrets.yaml");
    std::fs::write(
        &scenario,
        format!(
            "targets:\n  listener:\n    url: {listener}\n    headers:\n      Authorization: Bearer {AUTH}\n      Cookie: sid={COOKIE}\n      X-Api-Key: {API_KEY}\n  backend:\n    url: {direct}\n    headers:\n      Authorization: Bearer {AUTH}\n      X-Api-Key: {API_KEY}\nprobes: [protocol, methods]\nmask: [X-Api-Key]\nlimits: {{ request-timeout: 3s, max-rate: 1000 }}\n"
        ),
    )
    .expect("write the scenario");
    let scenario = scenario.to_string_lossy().to_string();

    for format in ["human", "json", "junit", "markdown"] {
        let mut args = scan_args(
            &listener,
            &direct,
            &[
                "-H",
                &auth,
                "-H",
                &cookie,
                "-H",
                &api_key,
                "--mask",
                "X-Api-Key",
                "--probes",
                "protocol,methods",
                "--format",
                format,
            ],
        );
        args.extend_from_slice(TIGHT);
        assert_clean(
            &format!("scan --format {format}"),
            &lbprobe_async(&args).await,
        );

        args.push("--dry-run");
        if format == "human" || format == "json" {
            assert_clean(
                &format!("scan --dry-run --format {format}"),
                &lbprobe_async(&args).await,
            );
        }

        let run = ["run", &scenario, "--format", format];
        assert_clean(
            &format!("run --format {format}"),
            &lbprobe_async(&run).await,
        );
    }

    // The direct TRACE really came back with the secrets in it: the test plants what it says.
    assert!(
        backend
            .recent_requests()
            .iter()
            .any(|r| r.method == "TRACE" && r.headers.iter().any(|(_, v)| v.contains(AUTH))),
        "the backend saw no TRACE carrying the planted Authorization"
    );
}
