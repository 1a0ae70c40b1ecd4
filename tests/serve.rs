//! `lbprobe serve` as Prometheus uses it: the real binary on a loopback port, a real Prometheus
//! (Debian's `prometheus`) scraping it through the blackbox_exporter relabeling, real nginx in
//! front of a slow lab backend. Also the safety of the serve mode: a target off the allow list
//! is never contacted, a scrape's timeout bounds the probe, a bad config is not taken on reload.
//! And the shipped examples under deploy/ pass promtool.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use lbprobe::lab::{free_port, Nginx, NginxServer, NginxSpec};

mod support;
use support::findings::backend_after;

const LBPROBE: &str = env!("CARGO_BIN_EXE_lbprobe");

/// nginx gives up on its backend after 1 s (`proxy_read_timeout 1s`); the backend takes 2 s.
const SLOW_MODULE: &str = "
    probes:
      - latency: { requests: 2 }
      - connect: { attempts: 2 }
    limits: { max-requests: 60, max-rate: 100, max-duration: 30s, request-timeout: 1500ms }
";

/// A process of the test, killed when the test ends however it ends.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `lbprobe serve` on a free loopback port, with its log lines.
struct Serve {
    process: Process,
    addr: SocketAddr,
    log: mpsc::Receiver<String>,
    config: PathBuf,
    _dir: tempfile::TempDir,
}

impl Serve {
    fn start(config: &str) -> Serve {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("serve.yaml");
        std::fs::write(&path, config).expect("the config written");
        let mut child = Command::new(LBPROBE)
            .args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("lbprobe serve starts");
        let stderr = child.stderr.take().expect("stderr piped");
        let process = Process(child);
        let (tx, log) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let line = log
            .recv_timeout(Duration::from_secs(10))
            .expect("lbprobe serve says where it listens");
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        Serve {
            process,
            addr,
            log,
            config: path,
            _dir: dir,
        }
    }

    fn url(&self, path_and_query: &str) -> String {
        format!("http://{}{path_and_query}", self.addr)
    }

    /// The log lines written so far.
    fn log_lines(&self) -> Vec<String> {
        self.log.try_iter().collect()
    }
}

fn probe_url(serve: &Serve, module: &str, target: &str, backend: Option<&str>) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("module", module)
        .append_pair("target", target);
    if let Some(b) = backend {
        q.append_pair("backend", b);
    }
    serve.url(&format!("/probe?{}", q.finish()))
}

/// Send `request` to serve: the answer's status and body.
async fn answer(request: reqwest::RequestBuilder) -> (u16, String) {
    let r = request.send().await.expect("serve answers");
    let status = r.status().as_u16();
    (status, r.text().await.expect("a body"))
}

/// GET `url` from serve: the answer's status and body.
async fn get(client: &reqwest::Client, url: &str) -> (u16, String) {
    answer(client.get(url)).await
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(40))
        .build()
        .expect("an HTTP client")
}

/// The value of an unlabelled metric in exposition text.
fn value(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

fn slow_lab_config() -> String {
    format!(
        "allow: [127.0.0.0/8]\nlimits: {{ timeout-margin: 300ms }}\nmodules:\n  slow:{SLOW_MODULE}"
    )
}

fn start_slow_nginx(backend: &str) -> Nginx {
    Nginx::start(&NginxSpec::one(
        NginxServer::proxy(backend).extra("proxy_read_timeout 1s;"),
    ))
    .unwrap_or_else(|e| panic!("this test needs a real nginx: {e}"))
}

fn prometheus_binary(name: &str) -> PathBuf {
    for dir in ["/usr/bin", "/usr/local/bin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    panic!(
        "{name} is missing: install the Debian package `prometheus` (scripts/test.sh installs it; CI runs that)"
    );
}

/// A real Prometheus scraping `serve` for `target` with the blackbox relabeling, every
/// `interval`, its storage in a temp dir.
struct Prometheus {
    _process: Process,
    url: String,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Each pair is a target and its backend (`&backend=`, from a `backend` label as in
    /// deploy/prometheus/prometheus.yml).
    fn start(serve: &Serve, pairs: &[(&str, &str)], interval: &str, timeout: &str) -> Prometheus {
        let binary = prometheus_binary("prometheus");
        let dir = tempfile::tempdir().expect("a temp dir");
        let config = dir.path().join("prometheus.yml");
        let targets: String = pairs
            .iter()
            .map(|(target, backend)| {
                format!(
                    "      - targets: ['{target}']\n        labels: {{ backend: '{backend}' }}\n"
                )
            })
            .collect();
        std::fs::write(
            &config,
            format!(
                "global: {{ scrape_interval: {interval}, scrape_timeout: {timeout}, evaluation_interval: {interval} }}
scrape_configs:
  - job_name: lbprobe
    metrics_path: /probe
    params:
      module: [slow]
    static_configs:
{targets}    relabel_configs:
      - source_labels: [__address__]
        target_label: __param_target
      - source_labels: [backend]
        target_label: __param_backend
      - source_labels: [__param_target]
        target_label: instance
      - target_label: __address__
        replacement: {}
",
                serve.addr
            ),
        )
        .expect("the Prometheus config written");
        let port = free_port().expect("a free port");
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus starts");
        Prometheus {
            _process: Process(child),
            url: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        }
    }

    /// The result of an instant query, as JSON text.
    async fn query(&self, client: &reqwest::Client, query: &str) -> Option<serde_json::Value> {
        let r = client
            .get(format!("{}/api/v1/query", self.url))
            .query(&[("query", query)])
            .send()
            .await
            .ok()?;
        let v: serde_json::Value = serde_json::from_str(&r.text().await.ok()?).ok()?;
        Some(v["data"]["result"].clone())
    }
}

/// Prometheus scrapes the serve mode, which probes nginx in front of a backend slower than
/// nginx's read timeout: the query API shows 504.backend-slow confirmed for that target. The
/// neighbour, scraped by the same Prometheus: the same nginx setup in front of a backend well
/// inside the timeout, where 504.backend-slow is not confirmed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_a_confirmed_slow_backend_through_serve_mode() {
    let slow_backend = backend_after(2000).await;
    let slow = start_slow_nginx(&slow_backend.url());
    let fast_backend = backend_after(100).await;
    let fast = start_slow_nginx(&fast_backend.url());
    let serve = Serve::start(&slow_lab_config());
    // The module takes about 3.5 s (the backend's own 2 s answers, asked directly): 8 s leaves
    // room on a busy machine; the first scrape comes within one interval.
    let prometheus = Prometheus::start(
        &serve,
        &[
            (&slow.url(0), &slow_backend.url()),
            (&fast.url(0), &fast_backend.url()),
        ],
        "8s",
        "8s",
    );

    let client = client();
    let started = Instant::now();
    let mut found = (None, None);
    while started.elapsed() < Duration::from_secs(30) && (found.0.is_none() || found.1.is_none()) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let Some(result) = prometheus
            .query(
                &client,
                r#"lbprobe_finding{cause="504.backend-slow",job="lbprobe"}"#,
            )
            .await
        else {
            continue;
        };
        for series in result.as_array().into_iter().flatten() {
            let verdict = series["metric"]["verdict"].as_str().map(str::to_string);
            if series["metric"]["instance"] == slow.url(0).as_str() {
                found.0 = verdict;
            } else if series["metric"]["instance"] == fast.url(0).as_str() {
                found.1 = verdict;
            }
        }
    }
    let (Some(on_slow), Some(on_fast)) = &found else {
        let up = prometheus.query(&client, "up").await;
        panic!(
            "Prometheus never showed both targets' 504.backend-slow: {found:?}, up {up:?}, serve log {:?}",
            serve.log_lines()
        );
    };
    assert_eq!(on_slow, "confirmed");
    assert_ne!(
        on_fast, "confirmed",
        "a backend inside the timeout is not slow"
    );
    let confirmed = prometheus
        .query(
            &client,
            r#"lbprobe_finding{cause="504.backend-slow",verdict="confirmed"} == 1"#,
        )
        .await
        .expect("the query answers");
    assert_eq!(confirmed.as_array().map(Vec::len), Some(1), "{confirmed}");
    assert_eq!(confirmed[0]["metric"]["side"], "listener", "{confirmed}");
    // The measured gateway timeout came through as well.
    let timeout = prometheus
        .query(
            &client,
            &format!(
                r#"lbprobe_timeout_seconds{{kind="response",side="listener",instance="{}"}}"#,
                slow.url(0)
            ),
        )
        .await
        .expect("the timeout query answers");
    let secs: f64 = timeout[0]["value"][1]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no measured timeout: {timeout}"));
    assert!(
        (0.9..1.5).contains(&secs),
        "nginx gives up after 1 s: {secs}"
    );
}

/// A listener that counts the connections it accepts.
async fn counting_listener() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback listener");
    let addr = listener.local_addr().expect("its address");
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        while let Ok((_stream, _)) = listener.accept().await {
            seen.fetch_add(1, Ordering::SeqCst);
        }
    });
    (addr, count)
}

/// A target, or a backend, off the allow list: 403, and the server behind it never sees a
/// connection. The neighbour: the same server on the list is contacted.
#[tokio::test]
async fn a_target_off_the_allow_list_is_refused_and_never_contacted() {
    let (addr, connections) = counting_listener().await;
    let allowed = format!("http://127.0.0.1:{}/allowed", addr.port());
    let serve = Serve::start(&format!(
        "allow: ['{allowed}', '*.lb.example']\nmodules:\n  quick:\n    probes: [protocol]\n    limits: {{ max-requests: 5, request-timeout: 500ms }}\n"
    ));
    let client = client();

    let off_list = format!("http://127.0.0.1:{}/", addr.port());
    for (target, backend) in [
        (off_list.as_str(), None),
        ("http://api.lb.example/", Some(off_list.as_str())),
        ("http://127.0.0.2:9/", None),
    ] {
        let (status, body) = get(&client, &probe_url(&serve, "quick", target, backend)).await;
        assert_eq!(status, 403, "{target} {backend:?}");
        assert!(body.contains("not on the config's allow list"), "{body}");
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        connections.load(Ordering::SeqCst),
        0,
        "a refused probe sent nothing"
    );
    let (_, metrics) = get(&client, &serve.url("/metrics")).await;
    assert!(
        metrics.contains(r#"lbprobe_serve_probes_refused_total{reason="not-allowed"} 3"#),
        "{metrics}"
    );

    // The neighbour: the exact URL on the list is probed.
    let (status, metrics) = get(&client, &probe_url(&serve, "quick", &allowed, None)).await;
    assert_eq!(status, 200);
    assert!(
        connections.load(Ordering::SeqCst) > 0,
        "an allowed probe goes out"
    );
    promtool_parses(&metrics);

    // `&debug=true`: the human report of the same run instead of metrics.
    let debug = format!("{}&debug=true", probe_url(&serve, "quick", &allowed, None));
    let (status, report) = get(&client, &debug).await;
    assert_eq!(status, 200);
    assert!(
        report.contains(&allowed) && !report.contains("# TYPE"),
        "{report}"
    );
}

/// A module that writes `targets:` gives each probe its settings: `tls-verify: false` lets a
/// probe of nginx with a self-signed certificate through. The neighbour, the same probe with a
/// module without targets (certificates verified), gets no TLS exchange done.
#[tokio::test]
async fn a_module_with_targets_probes_a_self_signed_listener() {
    let backend = backend_after(0).await;
    let nginx = Nginx::start(&NginxSpec::one(NginxServer::proxy(backend.url()).tls(true)))
        .unwrap_or_else(|e| panic!("this test needs a real nginx: {e}"));
    let serve = Serve::start(
        "allow: [127.0.0.0/8]
modules:
  staging:
    targets:
      listener: { url: '${TARGET}', tls-verify: false }
    probes: [protocol]
    limits: { max-requests: 10, request-timeout: 1s }
  verified: { probes: [protocol], limits: { max-requests: 10, request-timeout: 1s } }
",
    );
    let client = client();
    let target = nginx.url(0);
    assert!(target.starts_with("https://"), "{target}");
    let metrics = |module: &'static str| {
        let (client, url) = (client.clone(), probe_url(&serve, module, &target, None));
        async move {
            let (status, metrics) = get(&client, &url).await;
            assert_eq!(status, 200);
            metrics
        }
    };
    // Unverified, the handshake completes: the probe reaches the listener over TLS and rules
    // out a client certificate being required.
    let staging = metrics("staging").await;
    assert!(
        staging.contains(
            r#"lbprobe_finding{cause="400.client-certificate-required",verdict="ruled_out",side="listener"} 1.0"#
        ),
        "{staging}"
    );
    let debug = format!("{}&debug=true", probe_url(&serve, "staging", &target, None));
    let (_, report) = get(&client, &debug).await;
    assert!(report.contains("(TLS not verified)"), "{report}");
    // Verified, the handshake fails on the self-signed certificate: nothing over TLS is decided.
    let verified = metrics("verified").await;
    assert!(
        !verified.contains("400.client-certificate-required"),
        "{verified}"
    );
}

/// A scrape timeout shorter than the module's work: the probe answers within the timeout with
/// what it measured so far, marked cut short, not a failed scrape. A second scrape of the same
/// target meanwhile is refused (429), never run beside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scrape_timeout_shorter_than_the_module_returns_a_partial_result_in_time() {
    let backend = backend_after(2000).await;
    let nginx = start_slow_nginx(&backend.url());
    let serve = Serve::start(&slow_lab_config());
    let client = client();
    let url = probe_url(&serve, "slow", &nginx.url(0), Some(&backend.url()));
    // A scrape as Prometheus sends it with a 1.5 s scrape timeout.
    let scrape = |client: &reqwest::Client, url: &str| {
        client
            .get(url)
            .header("X-Prometheus-Scrape-Timeout-Seconds", "1.5")
    };

    let first = {
        let (client, url) = (client.clone(), url.clone());
        tokio::spawn(async move {
            let started = Instant::now();
            let (status, text) = answer(scrape(&client, &url)).await;
            (started.elapsed(), status, text)
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (second, _) = answer(scrape(&client, &url)).await;
    assert_eq!(second, 429, "one probe per target at a time");

    let (took, status, text) = first.await.expect("the first scrape");
    assert_eq!(status, 200, "{text}");
    assert!(
        took < Duration::from_millis(1500),
        "answered within the scrape's timeout: {took:?}"
    );
    assert_eq!(value(&text, "lbprobe_probe_cut_short"), Some(1.0), "{text}");
    assert_eq!(value(&text, "lbprobe_probe_success"), Some(0.0), "{text}");
    assert!(
        value(&text, "lbprobe_requests_sent").is_some_and(|n| n > 0.0),
        "what ran is there: {text}"
    );
    assert!(
        !(text.contains(r#"cause="504.backend-slow",verdict="confirmed""#)),
        "a cut-short run does not confirm what it did not finish: {text}"
    );
}

/// A reload with a bad config keeps the one in use and says where the file is wrong (the
/// answer, the log, the metric); a good one (by SIGHUP) is taken.
#[tokio::test]
async fn a_reload_with_a_bad_config_keeps_the_old_one() {
    let serve = Serve::start("allow: [127.0.0.0/8]\nmodules:\n  first:\n    probes: [protocol]\n");
    let client = client();
    std::fs::write(
        &serve.config,
        "allow: [127.0.0.0/8]\nmodules:\n  second:\n    probes: [protocl]\n",
    )
    .expect("the config rewritten");
    let (status, why) = answer(client.post(serve.url("/-/reload"))).await;
    assert_eq!(status, 500);
    assert!(
        why.contains("serve.yaml:4:14: unknown probe family"),
        "{why}"
    );

    let (_, index) = get(&client, &serve.url("/")).await;
    assert!(
        index.contains("modules: first"),
        "the old config stays: {index}"
    );
    let (_, metrics) = get(&client, &serve.url("/metrics")).await;
    assert_eq!(
        value(&metrics, "lbprobe_serve_config_last_reload_successful"),
        Some(0.0),
        "{metrics}"
    );
    assert!(
        metrics.contains("lbprobe_serve_config_last_reload_error{error=")
            && metrics.contains("unknown probe family"),
        "{metrics}"
    );
    let log = serve.log_lines().join("\n");
    assert!(
        log.contains("reload failed, keeping the config in use"),
        "{log}"
    );

    // A good config, by SIGHUP.
    std::fs::write(
        &serve.config,
        "allow: [127.0.0.0/8]\nmodules:\n  second:\n    probes: [protocol]\n",
    )
    .expect("the config rewritten");
    let status = Command::new("kill")
        .args(["-HUP", &serve.process.0.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let started = Instant::now();
    loop {
        let (_, index) = get(&client, &serve.url("/")).await;
        if index.contains("modules: second") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "SIGHUP reloads: {index}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn run_ok(program: &Path, args: &[&str], dir: &Path) -> String {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", program.display()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{} {}: {text}",
        program.display(),
        args.join(" ")
    );
    text
}

/// The shipped Prometheus config, alert rules (with their unit tests: a confirmed fault fires
/// an alert naming the cause and the target) and serve configs are valid as shipped.
#[test]
fn the_shipped_examples_pass_promtool_and_serve_check() {
    let promtool = prometheus_binary("promtool");
    let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy");
    let prom = deploy.join("prometheus");
    run_ok(&promtool, &["check", "config", "prometheus.yml"], &prom);
    run_ok(&promtool, &["check", "rules", "lbprobe.rules.yml"], &prom);
    run_ok(
        &promtool,
        &["test", "rules", "lbprobe.rules.test.yml"],
        &prom,
    );

    let lbprobe = Path::new(LBPROBE);
    run_ok(
        lbprobe,
        &["serve", "--check", "--config", "serve.yaml"],
        &deploy,
    );
    // The config inside the Kubernetes ConfigMap, as the pod will read it.
    let manifest = std::fs::read_to_string(deploy.join("kubernetes/serve-deployment.yaml"))
        .expect("the Deployment manifest");
    let embedded: String = manifest
        .split("serve.yaml: |\n")
        .nth(1)
        .expect("a serve.yaml in the ConfigMap")
        .lines()
        .take_while(|l| l.starts_with("    ") || l.is_empty())
        .map(|l| format!("{}\n", l.get(4..).unwrap_or_default()))
        .collect();
    let dir = tempfile::tempdir().expect("a temp dir");
    std::fs::write(dir.path().join("serve.yaml"), embedded).expect("written");
    run_ok(
        lbprobe,
        &["serve", "--check", "--config", "serve.yaml"],
        dir.path(),
    );
}

/// `promtool check metrics` finds nothing wrong in `text` (Prometheus' own parser and lint).
fn promtool_parses(text: &str) {
    let mut check = Command::new(prometheus_binary("promtool"))
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs");
    {
        use std::io::Write;
        let mut stdin = check.stdin.take().expect("stdin");
        stdin.write_all(text.as_bytes()).expect("written");
    }
    let result = check.wait_with_output().expect("promtool ends");
    assert!(
        result.status.success(),
        "{}{}\n{text}",
        String::from_utf8_lossy(&result.stdout),
        String::from_utf8_lossy(&result.stderr)
    );
}

/// `lbprobe backend --textfile` writes metrics node_exporter reads: promtool parses them.
#[tokio::test]
async fn backend_metrics_for_the_textfile_collector_parse() {
    let backend = backend_after(0).await;
    let dir = tempfile::tempdir().expect("a temp dir");
    let file = dir.path().join("lbprobe.prom");
    let out = Command::new(LBPROBE)
        .args([
            "backend",
            "--quiet",
            "--max-requests",
            "20",
            "--timeout",
            "2",
            "--port",
        ])
        .arg(backend.addr().port().to_string())
        .arg("--textfile")
        .arg(&file)
        .output()
        .expect("lbprobe backend runs");
    assert!(
        out.status.code().is_some_and(|c| c <= 1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&file).expect("the textfile written");
    assert!(value(&text, "lbprobe_backend_success").is_some(), "{text}");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .expect("the dir")
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "no temporary file left: {leftovers:?}");
    promtool_parses(&text);
}
