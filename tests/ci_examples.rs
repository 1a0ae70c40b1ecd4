//! The CI examples of docs/ci.md run as written. `act` (which runs GitHub workflows locally) is
//! not packaged in the registries this project installs from, and needs Docker, so the test plays
//! the runner: it reads docs/ci/github-actions.yml and docs/ci/gitlab-ci.yml, and runs each job's
//! shell commands in order with the runner's rules (a failed step stops the job's later steps
//! except `if: always()` ones; a failed script line fails the job), in a workspace holding the
//! scenario the job names, against a lab nginx and backend whose URLs go in LISTENER_URL and
//! BACKEND_URL as the CI variables would. The install step (the only one skipped) is replaced by
//! putting the lbprobe this build made first on PATH. Then the artifacts the job uploads must
//! exist, and the exit codes must be what docs/ci.md says. docs/ci.md shows both files verbatim.

#[path = "support/json_schema.rs"]
mod json_schema;
#[path = "support/junit_xml.rs"]
mod junit_xml;
mod support;
#[path = "support/xmllint.rs"]
mod xmllint;

use std::path::Path;
use std::process::Command;

use lbprobe::lab::{BackendConfig, Fault, FaultRule, NginxServer, NginxSpec};
use lbprobe::report::schema::Kind;
use serde_json::Value;
use support::findings::{start_backend, start_nginx};

const BIN: &str = env!("CARGO_BIN_EXE_lbprobe");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn example(name: &str) -> (String, Value) {
    let path = Path::new(ROOT).join("docs/ci").join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let doc = serde_yaml::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not YAML: {e}", path.display()));
    (text, doc)
}

/// A checkout of the user's repository: the scenario the jobs name, where they name it.
fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(dir.path().join("scenarios")).expect("scenarios/");
    std::fs::copy(
        Path::new(ROOT).join("scenarios/ci-smoke.yaml"),
        dir.path().join("scenarios/ci-smoke.yaml"),
    )
    .expect("copy ci-smoke.yaml");
    dir
}

/// PATH with this build's lbprobe first: what the skipped install step provides.
fn path_with_lbprobe() -> String {
    let bin_dir = Path::new(BIN).parent().expect("the binary's folder");
    format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// One shell command as the runner runs it (`bash -e`, plus pipefail for GitLab's), in `dir`
/// with `env`; its exit code.
fn shell(script: &str, dir: &Path, env: &[(&str, String)], pipefail: bool) -> i32 {
    let mut cmd = Command::new("bash");
    cmd.args(["--noprofile", "--norc", "-e"]);
    if pipefail {
        cmd.args(["-o", "pipefail"]);
    }
    let out = cmd
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .env("PATH", path_with_lbprobe())
        .env("NO_COLOR", "1")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("bash");
    let code = out.status.code().unwrap_or(-1);
    eprintln!(
        "$ {script}\nexit {code}\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    code
}

/// What a job run left: whether it passed, the first failing step's exit code, the steps that
/// ran, and its workspace.
struct JobRun {
    passed: bool,
    failed_with: Option<i32>,
    ran: Vec<String>,
    dir: tempfile::TempDir,
}

/// The GitHub Actions job `lb-smoke` against `listener` and `backend`; also returns the paths
/// its upload step names and the step summary's text.
fn run_github(listener: &str, backend: &str) -> (JobRun, Vec<String>, String) {
    let (_, doc) = example("github-actions.yml");
    let job = &doc["jobs"]["lb-smoke"];
    let env_keys: Vec<&str> = job["env"]
        .as_object()
        .expect("job env")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        env_keys,
        ["BACKEND_URL", "LISTENER_URL"],
        "the job's variables are the two the test sets"
    );
    let dir = workspace();
    let summary = dir.path().join("step-summary.md");
    let env = [
        ("LISTENER_URL", listener.to_string()),
        ("BACKEND_URL", backend.to_string()),
        ("GITHUB_STEP_SUMMARY", summary.display().to_string()),
    ];
    let (mut passed, mut failed_with, mut ran, mut uploads, mut skipped) =
        (true, None, Vec::new(), Vec::new(), Vec::new());
    for step in job["steps"].as_array().expect("steps") {
        let name = step["name"].as_str().unwrap_or("").to_string();
        if let Some(action) = step["uses"].as_str() {
            if action.starts_with("actions/upload-artifact") {
                uploads.extend(
                    step["with"]["path"]
                        .as_str()
                        .expect("upload path")
                        .lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty())
                        .map(String::from),
                );
                assert_eq!(
                    step["if"], "always()",
                    "reports are uploaded on failure too"
                );
            }
            continue;
        }
        let run = step["run"]
            .as_str()
            .unwrap_or_else(|| panic!("step {name}: neither uses nor run"));
        if step["id"] == "install" {
            assert!(run.contains("cargo install"), "{run}");
            skipped.push(name);
            continue;
        }
        if !passed && step["if"] != "always()" {
            continue;
        }
        let code = shell(run, dir.path(), &env, false);
        ran.push(name);
        if code != 0 && passed {
            passed = false;
            failed_with = Some(code);
        }
    }
    assert_eq!(
        skipped,
        ["Install lbprobe"],
        "only the install step is skipped"
    );
    let summary = std::fs::read_to_string(&summary).unwrap_or_default();
    (
        JobRun {
            passed,
            failed_with,
            ran,
            dir,
        },
        uploads,
        summary,
    )
}

/// The GitLab CI job `lb-smoke`: its `script:` lines (then `after_script:`), the CI/CD variables
/// LISTENER_URL and BACKEND_URL overriding the job's defaults; also returns its artifacts'
/// paths and its JUnit report's path.
fn run_gitlab(listener: &str, backend: &str) -> (JobRun, Vec<String>, String) {
    let (_, doc) = example("gitlab-ci.yml");
    let job = &doc["lb-smoke"];
    let vars: Vec<&str> = job["variables"]
        .as_object()
        .expect("variables")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(vars, ["BACKEND_URL", "LISTENER_URL"]);
    let before: Vec<&str> = job["before_script"]
        .as_array()
        .expect("before_script")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        before.len() == 1 && before[0].contains("cargo install"),
        "before_script is the install alone: {before:?}"
    );
    let dir = workspace();
    let env = [
        ("LISTENER_URL", listener.to_string()),
        ("BACKEND_URL", backend.to_string()),
    ];
    let lines = |key: &str| -> Vec<String> {
        job[key]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
    };
    let (mut passed, mut failed_with, mut ran) = (true, None, Vec::new());
    for line in lines("script") {
        let code = shell(&line, dir.path(), &env, true);
        ran.push(line);
        if code != 0 {
            passed = false;
            failed_with = Some(code);
            break;
        }
    }
    for line in lines("after_script") {
        shell(&line, dir.path(), &env, true);
        ran.push(line);
    }
    assert_eq!(job["artifacts"]["when"], "always");
    let paths = job["artifacts"]["paths"]
        .as_array()
        .expect("artifacts paths")
        .iter()
        .filter_map(Value::as_str)
        .map(String::from)
        .collect();
    let junit = job["artifacts"]["reports"]["junit"]
        .as_str()
        .expect("reports: junit")
        .to_string();
    (
        JobRun {
            passed,
            failed_with,
            ran,
            dir,
        },
        paths,
        junit,
    )
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name))
        .unwrap_or_else(|e| panic!("the job's artifact {name} was not written: {e}"))
}

/// The job's JSON report, checked against its schema (docs/schema/run.schema.json).
fn report_json(dir: &Path) -> Value {
    let report = serde_json::from_str(&read(dir, "lbprobe.json")).expect("lbprobe.json is JSON");
    json_schema::assert_valid(Kind::Run, &report);
    report
}

/// The job's JUnit report, checked against tests/junit.xsd.
fn junit(dir: &Path, name: &str) -> junit_xml::Suite {
    let xml = read(dir, name);
    xmllint::assert_valid(name, &xml);
    junit_xml::parse(&xml)
}

/// The docs show both files verbatim, so what a reader copies is what this test runs.
#[test]
fn docs_ci_md_shows_both_examples_verbatim() {
    let doc = std::fs::read_to_string(Path::new(ROOT).join("docs/ci.md")).expect("docs/ci.md");
    for name in ["github-actions.yml", "gitlab-ci.yml"] {
        let (text, _) = example(name);
        assert!(
            doc.contains(&format!("```yaml\n{text}```")),
            "docs/ci.md must show docs/ci/{name} verbatim in a ```yaml block"
        );
    }
}

/// Against a healthy nginx and backend both jobs pass, run every command, and leave every
/// artifact they upload: one run's JSON, JUnit and Markdown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_jobs_pass_against_a_healthy_lab_and_leave_their_artifacts() {
    let backend = start_backend(BackendConfig::default()).await;
    let nginx = start_nginx(&NginxSpec::one(NginxServer::proxy(backend.url())));
    let (listener, direct) = (nginx.url(0), backend.url());

    let (l, b) = (listener.clone(), direct.clone());
    let github = tokio::task::spawn_blocking(move || run_github(&l, &b));
    let (l, b) = (listener.clone(), direct.clone());
    let gitlab = tokio::task::spawn_blocking(move || run_gitlab(&l, &b));
    let (github, uploads, summary) = github.await.expect("GitHub job");
    let (gitlab, paths, junit_report) = gitlab.await.expect("GitLab job");

    assert!(github.passed, "GitHub job failed: {:?}", github.failed_with);
    assert_eq!(
        github.ran,
        ["Probe the staging load balancer", "Markdown summary"]
    );
    for path in &uploads {
        read(github.dir.path(), path);
    }
    assert_eq!(uploads.len(), 3, "{uploads:?}");
    assert_eq!(report_json(github.dir.path())["exit_code"], 0);
    let md = read(github.dir.path(), "lbprobe.md");
    assert!(
        !md.is_empty() && summary == md,
        "the step summary holds the Markdown report"
    );
    let suite = junit(github.dir.path(), "lbprobe-junit.xml");
    assert_eq!(suite.totals[1], 0, "no failing testcase: {suite:#?}");

    assert!(gitlab.passed, "GitLab job failed: {:?}", gitlab.failed_with);
    assert_eq!(gitlab.ran.len(), 1, "{:?}", gitlab.ran);
    for path in paths.iter().chain([&junit_report]) {
        read(gitlab.dir.path(), path);
    }
    assert_eq!(report_json(gitlab.dir.path())["exit_code"], 0);
    let suite = junit(gitlab.dir.path(), &junit_report);
    assert_eq!(suite.totals[1], 0, "no failing testcase: {suite:#?}");
}

/// Against a backend that answers 500 to everything the GitHub job fails with lbprobe's exit
/// code 1, and its `if: always()` steps still run: the summary and the reports are there to read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_github_job_fails_on_a_confirmed_fault_and_still_leaves_its_reports() {
    let backend =
        start_backend(BackendConfig::default().fault(FaultRule::all(Fault::Status(500)))).await;
    let nginx = start_nginx(&NginxSpec::one(NginxServer::proxy(backend.url())));
    let (listener, direct) = (nginx.url(0), backend.url());
    let (job, uploads, summary) =
        tokio::task::spawn_blocking(move || run_github(&listener, &direct))
            .await
            .expect("GitHub job");
    assert!(!job.passed);
    assert_eq!(job.failed_with, Some(lbprobe::exit::FINDING));
    assert_eq!(
        job.ran,
        ["Probe the staging load balancer", "Markdown summary"]
    );
    for path in &uploads {
        read(job.dir.path(), path);
    }
    let report = report_json(job.dir.path());
    assert_eq!(report["exit_code"], 1);
    assert!(
        report["summary"]["confirmed"].as_u64() > Some(0),
        "{report:#}"
    );
    assert!(summary.contains("500"), "{summary}");
    let suite = junit(job.dir.path(), "lbprobe-junit.xml");
    assert!(suite.totals[1] > 0, "a failing testcase: {suite:#?}");
}
