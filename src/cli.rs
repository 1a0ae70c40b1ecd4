//! Command-line definitions (clap) and nothing else.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "lbprobe",
    version,
    about = "Finds out why an HTTP load balancer answers 400, 405, 408, 414, 499, 500, 502, 503 or 504",
    after_help = "Exit codes: 0 ran, every confirmed fault expected and every expect met; 1 a fault confirmed that no expect names, an expect unmet, or the run interrupted or cut short by its caps; 2 bad input; 3 a target could not be reached at all; 4 lbprobe could not do its own part (the lab did not start, the report could not be written); 130 a second Ctrl-C or SIGTERM."
)]
pub struct Cli {
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Output format: human, json, or for reports of runs (demo, run, scan) also junit (JUnit
    /// XML for CI) and markdown (for a pull-request comment); prometheus (metrics text) for
    /// runs and `backend`.
    #[arg(long, global = true, value_enum, default_value_t = FormatArg::Human)]
    pub format: FormatArg,
    /// Write the report to FILE instead of stdout. FORMAT=FILE (json=report.json,
    /// junit=junit.xml, markdown=comment.md, human=report.txt) writes a run's report in that
    /// format too, besides --format's output: one run, several reports. Repeatable.
    #[arg(long, short = 'o', global = true, value_name = "[FORMAT=]FILE")]
    pub output: Vec<String>,
    /// Color human output: auto (only on a terminal, not with NO_COLOR), always, never.
    #[arg(long, global = true, value_enum, default_value_t = ColorArg::Auto)]
    pub color: ColorArg,
    /// No progress on stderr.
    #[arg(long, short = 'q', global = true)]
    pub quiet: bool,
    /// Every row of the human report and every piece of evidence, instead of folding what is
    /// ruled out or inconclusive and summarising long lists.
    #[arg(long, short = 'v', global = true)]
    pub verbose: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    Human,
    Json,
    Junit,
    Markdown,
    /// With --dry-run: each planned request as a curl command (a shell script).
    Curl,
    /// Metrics in the Prometheus (OpenMetrics) text format: a run's, or `backend`'s.
    Prometheus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorArg {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the embedded lab on loopback and run scenarios/demo.yaml against it.
    Demo,
    /// Run a scenario file.
    #[command(after_help = "Examples:
  lbprobe run scenarios/ci-smoke.yaml --var LISTENER=https://lb.example.com/ --format junit -o junit.xml
  lbprobe run prod.yaml --dry-run")]
    Run {
        /// The scenario (YAML).
        scenario: PathBuf,
        /// Set a ${NAME} variable of the scenario (repeatable); the environment is used otherwise.
        #[arg(long = "var", value_name = "NAME=VALUE")]
        vars: Vec<String>,
        /// Print the plan and the exact bytes of every probe; send nothing.
        #[arg(long)]
        dry_run: bool,
        /// The target is yours: allow the `rate` ramp's caps above the hard ceiling (1000 rps,
        /// 20000 requests, 300 s).
        #[arg(long)]
        i_own_this_target: bool,
        #[command(flatten)]
        access_log: AccessLogArgs,
    },
    /// Probe without a scenario file: targets from flags.
    // Boxed: its many flags would make every other command as large.
    #[command(after_help = "Examples:
  lbprobe scan --listener https://lb.example.com/health --backend http://10.0.0.5:8080/health
  lbprobe scan --listener https://lb.example.com/ --only 502,504 --response-timeout 30s
  lbprobe scan --listener https://lb.example.com/ --probes malformed --malformed te,chunked
  lbprobe scan --listener https://lb.example.com/ --backend http://10.0.0.5:8080/ --backend http://10.0.0.6:8080/
  lbprobe scan --listener https://lb.example.com/ -H 'Authorization: Bearer …' --dry-run")]
    Scan(Box<ScanArgs>),
    /// Send one failing request as given (raw HTTP/1.1 bytes, a curl command line or a HAR
    /// 1.2 file) to the listener, and to the backend when named; classify the answers with the
    /// same causes and attribution as the probes; with --shrink, reduce it to what triggers
    /// the answer.
    #[command(after_help = "Examples:
  lbprobe replay failing.curl --listener https://lb.example.com/ --shrink
  pbpaste | lbprobe replay - --listener http://10.0.0.1/ --backend http://10.0.0.5:8080/
  lbprobe replay session.har --entry 12 --listener https://lb.example.com/ --format json

REQUEST starts with `curl` (a curl command line: -X, -H, -d, --data-raw, --data-binary (@file), --json, --compressed, --http1.0, --http1.1, -A, -b, -e, -u, -I, line continuations, shell quoting), with `{` (a HAR file; --entry N, default the first entry answered with 400 or above), or is raw HTTP/1.1 bytes. The request keeps its own Host; --listener and --backend say where it is sent.

The shrink keeps only what gets the same status from the same side (the listener's own page or an answer relayed from behind it). It spends at most --max-requests requests (default 200), at --max-rate, within --max-duration. Authorization, Cookie and --mask headers are masked in every output, the minimal request and its curl command included; the shrink works on the real values.")]
    Replay(Box<ReplayArgs>),
    /// Start the demo lab on loopback (a lab backend, and nginx in front when installed), print
    /// its URLs and keep it up for --for seconds or until Ctrl-C: for trying lbprobe by hand
    /// and for benchmarks.
    #[command(after_help = "Examples:
  lbprobe lab --hostile list
  lbprobe lab --hostile silence --for 120")]
    Lab {
        /// How long to keep the lab up, in seconds.
        #[arg(long = "for", default_value_t = 600, value_name = "SECONDS")]
        duration: u64,
        /// Instead, the lab backend alone as a hostile or broken server of this kind (silence,
        /// drip, endless-headers, tls-silence...); `list` names every kind and what it does.
        #[arg(long, value_name = "KIND")]
        hostile: Option<String>,
    },
    /// Run on the backend host: the service's listen queue, kernel overflow counters, MTUs,
    /// firewall rules, and local checks against the service on loopback.
    Backend(BackendArgs),
    /// Probe on request, for Prometheus (as its blackbox_exporter does): GET
    /// /probe?module=NAME&target=URL runs the config's module against the target, if the
    /// config's allow list has it, and answers with metrics; docs/serve.md.
    #[command(after_help = "Examples:
  lbprobe serve --config serve.yaml --listen 0.0.0.0:9116
  lbprobe serve --config serve.yaml --check
  curl 'http://127.0.0.1:9116/probe?module=smoke&target=https://lb.example/health'

SIGHUP or POST /-/reload reloads the config; a config that does not load is refused and the one in use kept (the log and lbprobe_serve_config_last_reload_successful say so).")]
    Serve(ServeArgs),
    /// Join a `scan --marker` report with a `backend --capture` report: which probes reached
    /// the backend, and which the listener answered itself.
    Merge {
        /// The client's JSON report (`lbprobe scan --marker --format json`).
        client: PathBuf,
        /// The backend host's JSON report (`lbprobe backend --capture --format json`).
        backend: PathBuf,
    },
    /// Read access logs and say which documented cause each error line shows.
    #[command(after_help = "Examples:
  lbprobe logs /var/log/nginx/access.log --log-format combined
  zcat access.log.*.gz | lbprobe logs - --log-format '$remote_addr [$time_local] \"$request\" $status $upstream_status'
  lbprobe logs access.log --explain-line 1234")]
    Logs(LogsArgs),
    /// Print a shell completion script for bash, zsh, fish, elvish or powershell.
    #[command(after_help = "Examples:
  lbprobe completions bash > /etc/bash_completion.d/lbprobe
  lbprobe completions zsh > \"${fpath[1]}/_lbprobe\"
  lbprobe completions fish > ~/.config/fish/completions/lbprobe.fish")]
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff): lbprobe man > lbprobe.1 && man ./lbprobe.1
    Man,
    /// List the causes catalogue.
    Causes,
    /// List the malformed-request templates: id, kinds, RFC clause, what a strict server does,
    /// the causes each is evidence for.
    Probes {
        /// Only templates of this kind (request-line, header, host, content-length, te,
        /// chunked, method).
        #[arg(long)]
        tag: Option<String>,
    },
    /// Explain one cause: what it means, which side, what confirms or rules it out, the fix.
    #[command(after_help = "Examples:
  lbprobe explain 504.backend-slow
  lbprobe causes        # every id")]
    Explain {
        /// A cause id, e.g. 400.http-to-https-listener.
        cause: String,
    },
}

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// The load balancer's URL (http:// or https://).
    #[arg(long)]
    pub listener: Option<String>,
    /// The backend's URL, probed directly for comparison. Repeat it for a pool: the first is
    /// compared side by side with the listener, and the `pool` probe asks every one directly
    /// to find the member behind an intermittent error.
    #[arg(long)]
    pub backend: Vec<String>,
    /// Which load balancer's documented limits and timeouts to compare with: auto (from the
    /// listener's own answers; none when nothing matches), clb, nginx, haproxy, aws-alb,
    /// apache, envoy, go, or none (report what is measured without judging it).
    #[arg(long, default_value = "auto")]
    pub profile: String,
    /// Declare what you know of this listener, over what its profile documents: KEY=VALUE with
    /// the keys of a scenario's `profile:` mapping (max-header-bytes=16k,
    /// max-header-block-bytes, max-uri-bytes, request-timeout=30s, connect-timeout,
    /// response-timeout=2s, backend-keepalive-timeout, trace-allowed=true). Repeatable; findings
    /// quote these as declared.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// The listener's backend read timeout, when you know it: --set response-timeout=DURATION.
    #[arg(long, value_name = "DURATION")]
    pub response_timeout: Option<String>,
    /// The listener's backend connect timeout, when you know it: --set connect-timeout=DURATION.
    #[arg(long, value_name = "DURATION")]
    pub connect_timeout: Option<String>,
    /// How long your clients wait for an answer (2s, 500ms): the latency probe compares the
    /// measured times with it (the 499 causes), as a scenario's `client-timeout` does.
    #[arg(long, value_name = "DURATION")]
    pub client_timeout: Option<String>,
    /// Mask this header's values in every output, besides Authorization, Proxy-Authorization,
    /// Cookie and Set-Cookie (repeatable), as a scenario's `mask:` does.
    #[arg(long, value_name = "NAME")]
    pub mask: Vec<String>,
    /// Only causes of these codes, e.g. 400,405.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<u16>,
    /// Probe families to run (default: all), e.g. protocol,methods.
    #[arg(long, value_delimiter = ',')]
    pub probes: Vec<String>,
    /// Malformed-request templates to send, by id or tag (request-line, header, host,
    /// content-length, te, chunked, method, smuggling), e.g. te,chunked; adds the malformed
    /// family with only these. The smuggling sequences run only when named here. `lbprobe
    /// probes` lists them.
    #[arg(long, value_delimiter = ',', value_name = "ID|TAG")]
    pub malformed: Vec<String>,
    /// Connect to CONNECT_HOST:CONNECT_PORT instead of HOST:PORT, keeping the URL's Host header
    /// and TLS server name (curl's meaning; an empty field matches any or keeps the URL's):
    /// probe one node of many behind a name. Repeatable; the first rule that matches wins.
    #[arg(long, value_name = "HOST:PORT:CONNECT_HOST:CONNECT_PORT")]
    pub connect_to: Vec<String>,
    /// Provoke the keep-alive race through the listener once the backend's idle timeout is
    /// measured: up to 6 POSTs spaced just past it (adds the keepalive family).
    #[arg(long)]
    pub reproduce: bool,
    /// Connect over IPv4 only; a name without an IPv4 address is an error, not a fallback.
    #[arg(short = '4', long = "ipv4", conflicts_with = "ipv6")]
    pub ipv4: bool,
    /// Connect over IPv6 only; a name without an IPv6 address is an error, not a fallback.
    #[arg(short = '6', long = "ipv6")]
    pub ipv6: bool,
    /// Resolve HOST at PORT to ADDRESS instead of asking DNS (curl's meaning). Repeatable.
    #[arg(long, value_name = "HOST:PORT:ADDRESS")]
    pub resolve: Vec<String>,
    /// TLS server name for the listener.
    #[arg(long)]
    pub sni: Option<String>,
    /// TLS server name for the backend(s), when it differs from the backend URL's host.
    #[arg(long, value_name = "NAME")]
    pub backend_sni: Option<String>,
    /// Do not verify TLS certificates (shown in the report).
    #[arg(long)]
    pub insecure: bool,
    /// Trust the PEM certificates in FILE instead of the web PKI's roots (curl's --cacert).
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<std::path::PathBuf>,
    /// Present this PEM client certificate to TLS sides that ask for one (mutual TLS); the
    /// key may be in the same file (curl's --cert).
    #[arg(long, value_name = "FILE")]
    pub cert: Option<std::path::PathBuf>,
    /// The client certificate's PEM private key, when it is not in --cert's file.
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<std::path::PathBuf>,
    /// Extra header on every well-formed request, `Name: value` (repeatable).
    #[arg(long = "header", short = 'H', value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// Request cap for the whole run.
    #[arg(long, default_value_t = 1000)]
    pub max_requests: u32,
    /// Requests per second cap.
    #[arg(long, default_value_t = 50.0)]
    pub max_rate: f64,
    /// Time cap for the whole run, in seconds.
    #[arg(long, default_value_t = 300)]
    pub max_duration: u64,
    /// Per-request timeout, in seconds (fractions allowed: 0.5).
    #[arg(long, default_value_t = 10.0)]
    pub timeout: f64,
    /// Print the plan and the exact bytes of every probe; send nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// The target is yours: allow the `rate` ramp's caps above the hard ceiling, and send the
    /// malformed family's keep-alive sequences that leave a second request behind (`--malformed
    /// smuggling`).
    #[arg(long)]
    pub i_own_this_target: bool,
    /// Add `X-Lbprobe-Id: <run>-<n>` to every raw request, for `lbprobe backend --capture`
    /// and `lbprobe merge`.
    #[arg(long)]
    pub marker: bool,
    #[command(flatten)]
    pub access_log: AccessLogArgs,
}

/// `--access-log FILE`: each probe's own line in the listener's access log.
#[derive(Debug, Clone, Args)]
pub struct AccessLogArgs {
    /// After the run, find each marked probe's line in the listener's access log FILE (turns
    /// --marker on) and show what the listener logged for it: status, upstream status, times,
    /// HAProxy's termination state. The log must write the `X-Lbprobe-Id` header (nginx's
    /// "$http_x_lbprobe_id" in its log_format, HAProxy's `http-request capture
    /// req.hdr(X-Lbprobe-Id) len 64`) or, for a format with no field for it that logs the
    /// request line (nginx's combined), the marker goes in the query string (see --marker-in).
    #[arg(long, value_name = "FILE")]
    pub access_log: Option<PathBuf>,
    /// The access log's format: probe (nginx combined, the upstream fields and
    /// "$http_x_lbprobe_id"; see docs/access-log.md), combined, upstream, lab, json, haproxy, or an
    /// nginx log_format string as written.
    #[arg(
        long,
        value_name = "F",
        default_value = "probe",
        requires = "access_log"
    )]
    pub log_format: String,
    /// How long to wait after the run for probes' lines the listener has not written yet, in
    /// seconds.
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 3.0,
        requires = "access_log"
    )]
    pub access_log_wait: f64,
    /// Where marked requests carry the marker: `header` (X-Lbprobe-Id) or `query`
    /// (`?lbprobe-id=RUN-N` at the end of the request target; a request line that is not a plain
    /// `METHOD /path HTTP/x.y` goes unmarked). Default: the header, or the query string when
    /// --log-format logs the request line but not the header.
    #[arg(long, value_name = "PLACE", value_enum)]
    pub marker_in: Option<MarkerIn>,
}

/// `--marker-in`'s values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MarkerIn {
    Header,
    Query,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The request: a file, or `-` for standard input.
    #[arg(value_name = "REQUEST")]
    pub request: String,
    /// Where to send it: the load balancer's URL (http:// or https://); only its address and
    /// scheme are used, the request keeps its own target and Host.
    #[arg(long)]
    pub listener: String,
    /// Send it straight to the backend too, to tell the listener's own answers from relayed
    /// ones side by side.
    #[arg(long)]
    pub backend: Option<String>,
    /// The HAR entry to replay, counting from 1 (default: the first answered with 400 or
    /// above).
    #[arg(long, value_name = "N")]
    pub entry: Option<usize>,
    /// Reduce the request to what triggers the answer (delta debugging), within the caps.
    #[arg(long)]
    pub shrink: bool,
    /// Which load balancer's documented limits to compare with (as `scan --profile`).
    #[arg(long, default_value = "auto")]
    pub profile: String,
    /// Mask this header's values in every output, besides Authorization,
    /// Proxy-Authorization, Cookie and Set-Cookie (repeatable).
    #[arg(long, value_name = "NAME")]
    pub mask: Vec<String>,
    /// Request cap for the whole replay, the shrink included.
    #[arg(long, default_value_t = crate::replay::run::DEFAULT_SHRINK_CAP)]
    pub max_requests: u32,
    /// Requests per second cap.
    #[arg(long, default_value_t = 20.0)]
    pub max_rate: f64,
    /// Time cap for the whole replay, in seconds.
    #[arg(long, default_value_t = 120)]
    pub max_duration: u64,
    /// Per-request timeout, in seconds (fractions allowed: 0.5).
    #[arg(long, default_value_t = 10.0)]
    pub timeout: f64,
    /// Do not verify TLS certificates.
    #[arg(long)]
    pub insecure: bool,
}

#[derive(Debug, Args)]
pub struct BackendArgs {
    /// The service's TCP port on this host.
    #[arg(long)]
    pub port: u16,
    /// The listener's (or a client's) address: report the route and its MTU towards it.
    #[arg(long, value_name = "ADDRESS")]
    pub client: Option<String>,
    /// The load balancer's health-check source range (repeatable): flag firewall rules that drop it.
    #[arg(long = "health-check-range", value_name = "CIDR")]
    pub health_check_ranges: Vec<String>,
    /// The service as the local checks reach it (default http://127.0.0.1:PORT/).
    #[arg(long)]
    pub url: Option<String>,
    /// Read the host only: no local checks against the service.
    #[arg(long)]
    pub no_checks: bool,
    /// Instead of the local checks, watch the port for the `X-Lbprobe-Id` markers of a
    /// `scan --marker` run (root or CAP_NET_RAW), for --for seconds or until Ctrl-C.
    #[arg(long)]
    pub capture: bool,
    /// How long --capture watches, in seconds.
    #[arg(long = "for", default_value_t = 30, value_name = "SECONDS")]
    pub duration: u64,
    /// Do not verify TLS certificates in the local checks.
    #[arg(long)]
    pub insecure: bool,
    /// Request cap for the local checks.
    #[arg(long, default_value_t = 300)]
    pub max_requests: u32,
    /// Per-request timeout of the local checks, in seconds.
    #[arg(long, default_value_t = 10)]
    pub timeout: u64,
    /// Also write the report as Prometheus metrics to FILE, atomically (a temporary file in
    /// the same directory, then renamed): for node_exporter's textfile collector
    /// (--collector.textfile.directory; the name must end in .prom).
    #[arg(long, value_name = "FILE")]
    pub textfile: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The serve config (YAML): modules, the targets probes may go to, the server's caps.
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Address and port to listen on (port 0: any free port, printed at start).
    #[arg(long, default_value = "127.0.0.1:9116", value_name = "ADDR")]
    pub listen: String,
    /// Check the config and exit: 0 when it loads, 2 with where it is wrong.
    #[arg(long)]
    pub check: bool,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Log files (plain or gzip); `-` reads standard input.
    #[arg(required_unless_present_any = ["emit_sql", "from_sql_result"], value_name = "FILE")]
    pub files: Vec<String>,
    /// combined, upstream, lab, json, haproxy, or an nginx log_format string as written.
    #[arg(long, default_value = "upstream", value_name = "FORMAT")]
    pub log_format: String,
    /// Whose documented timeouts and limits the lines are compared with: auto (by the log
    /// format: nginx formats nginx, haproxy HAProxy, json the load balancer's clb), clb, nginx,
    /// haproxy, aws-alb, or none.
    #[arg(long, default_value = "auto")]
    pub profile: String,
    /// Declare the listener's backend connect timeout, in seconds (over the profile's).
    #[arg(long, value_name = "SECONDS")]
    pub connect_timeout: Option<f64>,
    /// Declare the listener's backend response timeout, in seconds (over the profile's).
    #[arg(long, value_name = "SECONDS")]
    pub response_timeout: Option<f64>,
    /// nginx's error.log (plain or gzip): each request's reason ("upstream timed out … while
    /// connecting", "client sent too long header line") is joined to its access-log line and
    /// settles what the access log alone cannot. Client-side reasons need `error_log … info`.
    #[arg(long, value_name = "FILE")]
    pub error_log: Option<String>,
    /// Reader threads for plain files (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Show how line N (of the first FILE) parses and which cause it shows, and why.
    #[arg(long, value_name = "N")]
    pub explain_line: Option<u64>,
    /// Print one SQL query that classifies the lines of a table (--table) as this command
    /// does, for duckdb, clickhouse, trino (athena) or postgres; reads no FILE.
    #[arg(long, value_name = "ENGINE", conflicts_with_all = ["sql_load", "from_sql_result", "explain_line", "error_log"])]
    pub emit_sql: Option<String>,
    /// Print the statements that load FILE… into the table --emit-sql reads, for this engine.
    #[arg(long, value_name = "ENGINE", conflicts_with_all = ["from_sql_result", "explain_line", "error_log"])]
    pub sql_load: Option<String>,
    /// The table --emit-sql reads and --sql-load fills.
    #[arg(long, value_name = "NAME", default_value = "access_log")]
    pub table: String,
    /// Render the rows of the --emit-sql query (CSV with a header, JSON array or JSON lines)
    /// as this command's report.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["explain_line", "error_log"])]
    pub from_sql_result: Option<String>,
}
