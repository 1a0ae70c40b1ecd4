//! Turns a parsed command line into work: validated config, the pipeline, the rendered output.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::catalogue::Catalogue;
use crate::cli::{BackendArgs, Cli, ColorArg, Command, FormatArg, LogsArgs, OutputArgs, ScanArgs};
use crate::probe::{Family, Interrupt, Limits, Plan, ProbeSpec};
use crate::profile::Profile;
use crate::report::{self, progress::ProgressDisplay, ColorChoice, Format, Report};
use crate::run::{self, Job};
use crate::target::{Role, Target};

/// Failures of ours or of the input; the target's misbehaviour is never an error.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    Usage(String),
    #[error("cannot write {path}: {source}")]
    Output {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
}

/// Validated output settings.
struct Output {
    format: Format,
    file: Option<PathBuf>,
    color: ColorChoice,
    quiet: bool,
    verbose: bool,
}

impl From<&OutputArgs> for Output {
    fn from(a: &OutputArgs) -> Output {
        Output {
            format: match a.format {
                FormatArg::Human => Format::Human,
                FormatArg::Json => Format::Json,
                FormatArg::Junit => Format::Junit,
                FormatArg::Markdown => Format::Markdown,
            },
            file: a.output.clone(),
            color: match a.color {
                ColorArg::Auto => ColorChoice::Auto,
                ColorArg::Always => ColorChoice::Always,
                ColorArg::Never => ColorChoice::Never,
            },
            quiet: a.quiet,
            verbose: a.verbose,
        }
    }
}

impl Output {
    fn write(&self, text: &str) -> Result<(), AppError> {
        report::emit(text, self.file.as_deref()).map_err(|source| AppError::Output {
            path: self.file.clone().unwrap_or_else(|| "stdout".into()),
            source,
        })
    }

    /// Human or JSON for output that is not a run's report (a catalogue, a plan, the lab's
    /// addresses): JUnit and Markdown describe runs only.
    fn plain_format(&self, what: &str) -> Result<Format, AppError> {
        match self.format {
            Format::Human | Format::Json => Ok(self.format),
            Format::Junit | Format::Markdown => Err(AppError::Usage(format!(
                "--format junit and --format markdown are for the reports of runs (demo, run, scan); {what} takes human or json"
            ))),
        }
    }

    /// Colour for what goes to stderr (causes told while the run goes on).
    fn stderr_color(&self) -> bool {
        match self.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => report::style::auto_color(&std::io::stderr()),
        }
    }

    fn style(&self) -> report::Style {
        report::style_for(self.color, self.file.is_some(), self.verbose)
    }
}

/// Run a command; returns the process exit code.
pub fn run(cli: Cli) -> Result<i32, AppError> {
    let out = Output::from(&cli.output);
    match cli.command {
        Command::Logs(args) => logs(&args, &out),
        Command::Causes => {
            let cat = Catalogue::builtin();
            let text = match out.plain_format("`causes`")? {
                Format::Json => report::to_json(&report::catalogue::causes_json(cat)),
                _ => report::catalogue::causes_human(cat, out.style().color),
            };
            out.write(&text)?;
            Ok(crate::exit::OK)
        }
        Command::Completions { shell } => {
            out.write(&report::shell::completions(shell))?;
            Ok(crate::exit::OK)
        }
        Command::Man => {
            let page = report::shell::man_page().map_err(|source| AppError::Output {
                path: "the man page".into(),
                source,
            })?;
            out.write(&page)?;
            Ok(crate::exit::OK)
        }
        Command::Probes { tag } => {
            let format = out.plain_format("`probes`")?;
            out.write(&probes_listing(tag.as_deref(), format)?)?;
            Ok(crate::exit::OK)
        }
        Command::Explain { cause } => {
            out.plain_format("`explain`")?;
            let cat = Catalogue::builtin();
            let Some(c) = cat.get(&cause) else {
                let ids: Vec<&str> = cat.causes().iter().map(|c| c.id.as_str()).collect();
                // A typo gets the one id it was meant to be; a bare code or a fragment gets
                // the ids that hold it.
                let hint = match crate::profile::nearest(&cause, &ids) {
                    Some(id) => format!("did you mean {id}?"),
                    None => {
                        let close: Vec<&str> = ids
                            .iter()
                            .copied()
                            .filter(|id| {
                                id.split('.').next() == Some(cause.as_str())
                                    || id.contains(cause.as_str())
                            })
                            .collect();
                        if close.is_empty() {
                            "run `lbprobe causes` for the list".to_string()
                        } else {
                            format!("did you mean one of: {}", close.join(", "))
                        }
                    }
                };
                return Err(AppError::Usage(format!("unknown cause {cause:?}; {hint}")));
            };
            let text = match out.format {
                Format::Json => report::to_json(&report::catalogue::cause_json(c)),
                _ => report::catalogue::cause_human(c, out.style().color),
            };
            out.write(&text)?;
            Ok(crate::exit::OK)
        }
        Command::Scan(args) => {
            let job = scan_job(&args)?;
            if args.dry_run {
                return dry_run(&job, &out);
            }
            finish(execute(job, &out)?, &out)
        }
        Command::Run {
            scenario,
            vars,
            dry_run: dry,
            i_own_this_target,
        } => {
            let owner = if i_own_this_target {
                crate::scenario::Ownership::Confirmed
            } else {
                crate::scenario::Ownership::Unconfirmed
            };
            let job = crate::scenario_job::load_as(&scenario, &vars, owner)
                .map_err(|e| AppError::Usage(e.to_string()))?;
            if dry {
                return dry_run(&job, &out);
            }
            finish(execute(job, &out)?, &out)
        }
        Command::Lab { duration } => {
            out.plain_format("`lab`")?;
            let rt = runtime()?;
            rt.block_on(async {
                let lab = crate::demo::start_lab()
                    .await
                    .map_err(|e| AppError::Usage(e.to_string()))?;
                let info = crate::demo::LabInfo::of(&lab);
                let text = match out.format {
                    Format::Json => report::to_json(&info),
                    _ => info.human(),
                };
                out.write(&text)?;
                // SIGTERM too: the lab's nginx and HAProxy are stopped by `drop`, which a
                // default-killed process never reaches.
                let mut signals = CtrlC::install();
                tokio::select! {
                    _ = tokio::time::sleep(std::time::Duration::from_secs(duration)) => {}
                    _ = signals.next() => {}
                }
                drop(lab);
                Ok(crate::exit::OK)
            })
        }
        Command::Backend(args) => {
            let format = out.plain_format("backend")?;
            let config = backend_config(&args)?;
            let rt = runtime()?;
            let progress = ProgressDisplay::new(out.quiet);
            let capture = args.capture.then(|| {
                let port = args.port;
                let secs = args.duration;
                crate::host::backend::CaptureSettings {
                    duration: Duration::from_secs(secs),
                    stop: Arc::new(AtomicBool::new(false)),
                    ready: Box::new(move || {
                        report::warn(&format!(
                            "capturing TCP port {port} for {secs} s (Ctrl-C ends it early)"
                        ))
                    }),
                }
            });
            let stop = capture.as_ref().map(|c| c.stop.clone());
            let report = rt.block_on(async {
                if let Some(stop) = stop {
                    let mut signals = CtrlC::install();
                    tokio::spawn(async move {
                        if signals.next().await {
                            stop.store(true, Ordering::SeqCst);
                        }
                    });
                }
                crate::host::backend::run(config, capture, progress.callback()).await
            });
            progress.finish();
            let text = match format {
                Format::Json => report::host::to_json(&report),
                _ => report::host::render(&report, out.style()),
            };
            out.write(&text)?;
            Ok(report.exit_code)
        }
        Command::Merge { client, backend } => {
            let read = |path: &PathBuf| -> Result<String, AppError> {
                std::fs::read_to_string(path)
                    .map_err(|e| AppError::Usage(format!("cannot read {}: {e}", path.display())))
            };
            let client_text = read(&client)?;
            let client_report = serde_json::from_str(&client_text).map_err(|e| {
                AppError::Usage(format!(
                    "{}: not a client JSON report: {e}",
                    client.display()
                ))
            })?;
            let backend_report = serde_json::from_str(&read(&backend)?).map_err(|e| {
                AppError::Usage(format!(
                    "{}: not a backend JSON report: {e}",
                    backend.display()
                ))
            })?;
            // The whole run, for re-classification; a report that does not read back whole
            // (an older lbprobe's) still merges, without new findings.
            let client_run: Option<crate::host::merge::ClientRun> =
                serde_json::from_str(&client_text).ok();
            let merged = crate::host::merge::merge_and_reclassify(
                &client_report,
                client_run.as_ref(),
                &backend_report,
            )
            .map_err(|e| AppError::Usage(e.to_string()))?;
            let text = match out.plain_format("merge")? {
                Format::Json => report::to_json(&merged),
                _ => report::host::merge_human(&merged, out.style()),
            };
            out.write(&text)?;
            Ok(merged.exit_code)
        }
        Command::Demo => {
            let rt = runtime()?;
            let progress = ProgressDisplay::new(out.quiet);
            let interrupt = Interrupt::new();
            let report = rt
                .block_on(async {
                    let watcher = tokio::spawn(watch_ctrl_c(CtrlC::install(), interrupt.clone()));
                    let report = crate::demo::run(
                        progress.callback(),
                        progress.announcer(out.stderr_color()),
                        interrupt,
                    )
                    .await;
                    watcher.abort();
                    report
                })
                .map_err(|e| AppError::Usage(e.to_string()))?;
            progress.finish();
            finish(report, &out)
        }
    }
}

fn dry_run(job: &Job, out: &Output) -> Result<i32, AppError> {
    let format = out.plain_format("--dry-run")?;
    let mut plan = crate::probe::dry_run::dry_run(&job.plan);
    // What the job itself says before anything runs (--only's left-out families, the demo's
    // skipped half) belongs in the plan a person reads.
    plan.notes.splice(0..0, job.notes.iter().cloned());
    let text = match format {
        Format::Json => report::to_json(&plan),
        _ => report::dry_run::render(&plan, out.style()),
    };
    out.write(&text)?;
    Ok(crate::exit::OK)
}

fn runtime() -> Result<tokio::runtime::Runtime, AppError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(AppError::Runtime)
}

fn execute(job: Job, out: &Output) -> Result<Report, AppError> {
    let rt = runtime()?;
    let progress = ProgressDisplay::new(out.quiet);
    let interrupt = Interrupt::new();
    let report = rt.block_on(async {
        let watcher = tokio::spawn(watch_ctrl_c(CtrlC::install(), interrupt.clone()));
        let report = run::execute_watched(
            job,
            progress.callback(),
            interrupt,
            progress.announcer(out.stderr_color()),
        )
        .await;
        watcher.abort();
        report
    });
    progress.finish();
    Ok(report)
}

/// SIGINT and SIGTERM, listened to from the moment this is made: a Ctrl-C that comes before the
/// first request is not lost to the default action (killing the process without a report), and
/// a supervisor's SIGTERM (CI job timeouts, systemd, `timeout(1)`) gets the same partial report.
struct CtrlC {
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    terminate: Option<tokio::signal::unix::Signal>,
}

impl CtrlC {
    /// Must run inside the runtime.
    fn install() -> CtrlC {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            CtrlC {
                interrupt: signal(SignalKind::interrupt()).ok(),
                terminate: signal(SignalKind::terminate()).ok(),
            }
        }
        #[cfg(not(unix))]
        {
            CtrlC {}
        }
    }

    /// The next Ctrl-C or SIGTERM; `false` when neither can be listened to.
    async fn next(&mut self) -> bool {
        #[cfg(unix)]
        {
            async fn recv(s: &mut Option<tokio::signal::unix::Signal>) -> bool {
                match s.as_mut() {
                    Some(s) => s.recv().await.is_some(),
                    None => std::future::pending().await,
                }
            }
            if self.interrupt.is_none() && self.terminate.is_none() {
                return false;
            }
            tokio::select! {
                got = recv(&mut self.interrupt) => got,
                got = recv(&mut self.terminate) => got,
            }
        }
        #[cfg(not(unix))]
        {
            tokio::signal::ctrl_c().await.is_ok()
        }
    }
}

/// The first Ctrl-C stops new requests and lets the run write the report of what ran; the
/// second quits at once. Once a handler is installed SIGINT no longer kills the process, so
/// the second one must be handled here too.
async fn watch_ctrl_c(mut ctrl_c: CtrlC, interrupt: Interrupt) {
    if !ctrl_c.next().await {
        return; // No handler could be installed: Ctrl-C keeps its default, killing the process.
    }
    interrupt.trigger();
    report::warn(
        "interrupted: no new requests; finishing those in flight and writing the report of what ran (Ctrl-C again quits at once, without a report)",
    );
    if ctrl_c.next().await {
        report::warn("interrupted twice: quitting without a report");
        std::process::exit(crate::exit::INTERRUPTED);
    }
}

fn finish(report: Report, out: &Output) -> Result<i32, AppError> {
    out.write(&report::render(&report, out.format, out.style()))?;
    Ok(report.exit_code)
}

/// Stage two of `scan`'s arguments: raw flags into a validated plan.
pub fn scan_job(args: &ScanArgs) -> Result<Job, AppError> {
    if args.listener.is_none() && args.backend.is_empty() {
        return Err(AppError::Usage(
            "scan needs --listener URL, --backend URL or both".into(),
        ));
    }
    let profile = profile_named(&args.profile)?;
    let profile = profile.with_declared(&declared_numbers(args)?);
    let client_timeout = args
        .client_timeout
        .as_deref()
        .map(|text| match crate::scenario::parse_duration(text) {
            Some(d) if !d.is_zero() => Ok(d),
            _ => Err(AppError::Usage(format!(
                "--client-timeout: expected a duration above 0 such as 2s or 500ms, not {text:?}"
            ))),
        })
        .transpose()?;
    let mut mask: Vec<String> = Vec::new();
    for name in &args.mask {
        if !crate::transport::is_token(name) {
            return Err(AppError::Usage(format!(
                "--mask {name:?}: expected a header name"
            )));
        }
        if !mask.iter().any(|m| m.eq_ignore_ascii_case(name)) {
            mask.push(name.clone());
        }
    }
    let mut headers = Vec::new();
    for h in &args.headers {
        let (name, value) = h
            .split_once(':')
            .ok_or_else(|| AppError::Usage(format!("--header {h:?}: expected `Name: value`")))?;
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
    // curl's order: --resolve is a DNS override, --connect-to takes precedence over it.
    let mut rules = Vec::new();
    for spec in &args.connect_to {
        rules.push(crate::target::ConnectRule::connect_to(spec).map_err(AppError::Usage)?);
    }
    for spec in &args.resolve {
        rules.push(crate::target::ConnectRule::resolve(spec).map_err(AppError::Usage)?);
    }
    let target = |role: Role, url: &Option<String>| -> Result<Option<Target>, AppError> {
        let Some(url) = url else { return Ok(None) };
        let mut t =
            Target::parse(role, url).map_err(|e| AppError::Usage(format!("--{role}: {e}")))?;
        let _ = rules.iter().any(|rule| rule.apply(&mut t));
        t.family = if args.ipv4 {
            Some(crate::transport::IpFamily::V4)
        } else if args.ipv6 {
            Some(crate::transport::IpFamily::V6)
        } else {
            None
        };
        t.tls_verify = !args.insecure;
        t.headers = headers.clone();
        t.sni = match role {
            Role::Listener => args.sni.clone(),
            Role::Backend => args.backend_sni.clone(),
        };
        // For http:// targets too: when the sniff finds TLS behind one, the direct probes
        // switch to TLS and must trust what the user said to trust.
        t.ca_file = args.cacert.clone();
        t.client_cert = args.cert.clone();
        t.client_key = args.key.clone();
        t.check_tls_files()
            .map_err(|e| AppError::Usage(format!("--{role}: {e}")))?;
        Ok(Some(t))
    };
    let probes = if args.probes.is_empty() {
        Family::defaults().map(ProbeSpec::default_for).collect()
    } else {
        let mut v = Vec::new();
        for name in &args.probes {
            let f = Family::parse(name).ok_or_else(|| {
                AppError::Usage(format!(
                    "unknown probe family {name:?} (expected one of: {})",
                    Family::ALL.map(Family::as_str).join(", ")
                ))
            })?;
            v.push(ProbeSpec::default_for(f));
        }
        v
    };
    let mut probes = with_malformed_selection(probes, &args.malformed)?;
    if args.reproduce {
        match probes
            .iter_mut()
            .find(|p| matches!(p, ProbeSpec::Keepalive { .. }))
        {
            Some(ProbeSpec::Keepalive { reproduce, .. }) => *reproduce = true,
            _ => {
                if let ProbeSpec::Keepalive { max_wait, .. } =
                    ProbeSpec::default_for(Family::Keepalive)
                {
                    probes.push(ProbeSpec::Keepalive {
                        max_wait,
                        reproduce: true,
                    });
                }
            }
        }
    }
    let probes = probes
        .into_iter()
        .map(|p| match p {
            ProbeSpec::Rate(spec) => ProbeSpec::Rate(crate::probe::rate::RateSpec {
                owner_confirmed: args.i_own_this_target,
                ..spec
            }),
            ProbeSpec::Latency {
                requests,
                client_timeout: None,
            } if client_timeout.is_some() => ProbeSpec::Latency {
                requests,
                client_timeout,
            },
            other => other,
        })
        .collect();
    let catalogue = Catalogue::builtin();
    let codes = catalogue.codes();
    let mut notes = Vec::new();
    let mut probes: Vec<ProbeSpec> = probes;
    if !args.only.is_empty() {
        // `--only` narrows what would run down to the families that speak to those codes; it
        // never adds one (a slow or loading family runs only when named with --probes).
        let wanted = crate::run::families_for_codes(catalogue, &args.only);
        probes.retain(|p| wanted.contains(&p.family()));
        let named: std::collections::BTreeSet<Family> =
            probes.iter().map(ProbeSpec::family).collect();
        let left_out: Vec<&str> = wanted
            .iter()
            .filter(|f| !named.contains(f))
            .map(|f| f.as_str())
            .collect();
        if !left_out.is_empty() {
            notes.push(format!(
                "--only {}: also spoken to by {}, which run only when named (--probes): they wait out timeouts, load the target or send large bodies",
                args.only
                    .iter()
                    .map(u16::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
                left_out.join(", ")
            ));
        }
    }
    for code in &args.only {
        if !codes.contains(code) {
            return Err(AppError::Usage(format!(
                "--only {code}: lbprobe knows causes of {}",
                codes
                    .iter()
                    .map(u16::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    // Ranges refuse NaN too.
    if !(f64::MIN_POSITIVE..=f64::MAX).contains(&args.max_rate)
        || args.max_requests == 0
        || args.max_duration == 0
        || !(0.001..=3600.0).contains(&args.timeout)
    {
        return Err(AppError::Usage(
            "--max-rate, --max-requests, --max-duration and --timeout must be above 0 (--timeout from 0.001 to 3600)".into(),
        ));
    }
    Ok(Job {
        name: "scan".into(),
        origin: "scan".into(),
        plan: Plan {
            listener: target(Role::Listener, &args.listener)?,
            backend: target(Role::Backend, &args.backend.first().cloned())?,
            profile,
            probes,
            limits: Limits {
                max_requests: args.max_requests,
                max_rate: args.max_rate,
                max_duration: Duration::from_secs(args.max_duration),
                request_timeout: Duration::from_secs_f64(args.timeout),
            },
            mask,
            marker: args.marker,
            pool: if args.backend.len() >= 2 {
                let mut pool = Vec::new();
                for b in &args.backend {
                    pool.extend(target(Role::Backend, &Some(b.clone()))?);
                }
                pool
            } else {
                Vec::new()
            },
        },
        expect: Vec::new(),
        only_codes: (!args.only.is_empty()).then(|| args.only.clone()),
        notes,
    })
}

/// `--profile NAME`, with the nearest name when it is a typo.
fn profile_named(name: &str) -> Result<Profile, AppError> {
    Profile::by_name(name).ok_or_else(|| {
        let near = crate::profile::nearest(name, Profile::NAMES)
            .map(|n| format!("did you mean {n}? "))
            .unwrap_or_default();
        AppError::Usage(format!(
            "unknown profile {name:?} ({near}expected one of: {})",
            Profile::NAMES.join(", ")
        ))
    })
}

/// `--set KEY=VALUE`, `--response-timeout` and `--connect-timeout`: what the person declares
/// of the listener. A key given twice is an error rather than a silent choice.
fn declared_numbers(args: &ScanArgs) -> Result<crate::profile::Numbers, AppError> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for item in &args.set {
        let (key, value) = item.split_once('=').ok_or_else(|| {
            AppError::Usage(format!(
                "--set {item:?}: expected KEY=VALUE, such as response-timeout=2s"
            ))
        })?;
        pairs.push((key.trim().to_string(), value.trim().to_string()));
    }
    for (key, value) in [
        ("response-timeout", &args.response_timeout),
        ("connect-timeout", &args.connect_timeout),
    ] {
        if let Some(v) = value {
            pairs.push((key.to_string(), v.clone()));
        }
    }
    let mut declared = crate::profile::Numbers::default();
    let mut seen: Vec<&str> = Vec::new();
    for (key, value) in &pairs {
        if seen.contains(&key.as_str()) {
            return Err(AppError::Usage(format!(
                "{key} is declared twice (--set and its own flag, or --set twice)"
            )));
        }
        seen.push(key);
        declared
            .set(key, value)
            .map_err(|e| AppError::Usage(format!("--set {e}")))?;
    }
    Ok(declared)
}

/// Stage two of `backend`'s arguments.
pub fn backend_config(args: &BackendArgs) -> Result<crate::host::backend::BackendConfig, AppError> {
    let mut config = crate::host::backend::BackendConfig::new(args.port);
    if args.port == 0 {
        return Err(AppError::Usage("--port must be above 0".into()));
    }
    if let Some(client) = &args.client {
        config.client = Some(client.parse().map_err(|_| {
            AppError::Usage(format!("--client {client:?}: expected an IP address"))
        })?);
    }
    for range in &args.health_check_ranges {
        config.health_check_ranges.push(
            range
                .parse()
                .map_err(|e| AppError::Usage(format!("--health-check-range: {e}")))?,
        );
    }
    if let Some(url) = &args.url {
        config.url = Some(
            Target::parse(Role::Backend, url)
                .map_err(|e| AppError::Usage(format!("--url: {e}")))?,
        );
    }
    if let Some(t) = config.url.as_mut() {
        t.tls_verify = !args.insecure;
    }
    if args.no_checks {
        config.url = None;
    }
    if args.max_requests == 0 || args.timeout == 0 {
        return Err(AppError::Usage(
            "--max-requests and --timeout must be above 0".into(),
        ));
    }
    config.limits = Limits {
        max_requests: args.max_requests,
        request_timeout: Duration::from_secs(args.timeout),
        ..Limits::default()
    };
    Ok(config)
}

/// `lbprobe logs`: flags into options, then the summary or one line explained.
fn logs(args: &LogsArgs, out: &Output) -> Result<i32, AppError> {
    use crate::logs::{self, classify::Timeouts, Input, LogFormat, Options};
    use report::logs as render;
    let format = out.plain_format("logs")?;
    let usage = |e: logs::LogsError| AppError::Usage(e.to_string());
    let named = profile_named(&args.profile)?;
    let declared_secs = |flag: &str, value: Option<f64>| -> Result<Option<Duration>, AppError> {
        match value {
            None => Ok(None),
            Some(v) if v > 0.0 && v.is_finite() => Ok(Some(Duration::from_secs_f64(v))),
            Some(_) => Err(AppError::Usage(format!(
                "{flag} must be a number of seconds above 0"
            ))),
        }
    };
    let declared = crate::profile::Numbers {
        connect_timeout: declared_secs("--connect-timeout", args.connect_timeout)?,
        response_timeout: declared_secs("--response-timeout", args.response_timeout)?,
        ..crate::profile::Numbers::default()
    };
    let log_format = LogFormat::parse(&args.log_format).map_err(usage)?;
    // `auto`: the log's own format says whose documentation its timeouts are in.
    let (listener, why) = log_format.listener();
    let profile = named.with_declared(&declared).resolve(Ok((listener, why)));
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if threads == 0 {
        return Err(AppError::Usage("--threads must be at least 1".into()));
    }
    let errors = match &args.error_log {
        Some(f) => Some(std::sync::Arc::new(
            logs::read_error_log(&Input::from_arg(f), &log_format).map_err(usage)?,
        )),
        None => None,
    };
    let opts = Options {
        format: log_format,
        profile: profile.label(),
        timeouts: Timeouts::of(&profile),
        threads,
        errors,
    };
    let inputs: Vec<Input> = args.files.iter().map(|f| Input::from_arg(f)).collect();
    let stdin_uses = inputs.iter().filter(|i| **i == Input::Stdin).count()
        + usize::from(args.error_log.as_deref() == Some("-"));
    if stdin_uses > 1 {
        return Err(AppError::Usage(
            "`-` (standard input) can be named once".into(),
        ));
    }
    let text = if let Some(n) = args.explain_line {
        if n == 0 {
            return Err(AppError::Usage("--explain-line counts from 1".into()));
        }
        let e = logs::explain_line(&inputs[0], n, &opts).map_err(usage)?;
        match format {
            Format::Json => report::to_json(&render::ExplanationJson::new(&e)),
            _ => render::explanation_human(&e, out.style()),
        }
    } else {
        let summary = logs::analyze(&inputs, &opts).map_err(usage)?;
        let r = render::LogsReport::new(
            &summary,
            opts.format.name(),
            &profile,
            inputs.iter().map(Input::name).collect(),
            opts.errors.as_deref(),
        );
        match format {
            Format::Json => report::to_json(&r),
            _ => render::human(&r, out.style()),
        }
    };
    out.write(&text)?;
    Ok(crate::exit::OK)
}

/// `--malformed ID|TAG,...`: the malformed family sends only these templates (added to the
/// plan when `--probes` left it out, so the flag alone is enough).
fn with_malformed_selection(
    mut probes: Vec<ProbeSpec>,
    names: &[String],
) -> Result<Vec<ProbeSpec>, AppError> {
    if names.is_empty() {
        return Ok(probes);
    }
    if let Some(bad) = names
        .iter()
        .find(|n| !crate::probe::templates::is_variant_or_tag(n))
    {
        return Err(AppError::Usage(format!(
            "--malformed: no template or tag {bad:?} (`lbprobe probes` lists them; tags: {})",
            crate::probe::templates::TAGS.join(", ")
        )));
    }
    let selected = ProbeSpec::Malformed {
        variants: Some(names.to_vec()),
    };
    match probes
        .iter_mut()
        .find(|p| matches!(p, ProbeSpec::Malformed { .. }))
    {
        Some(p) => *p = selected,
        None => probes.push(selected),
    }
    Ok(probes)
}

/// `lbprobe probes`: the malformed-request templates, all or of one kind.
fn probes_listing(tag: Option<&str>, format: Format) -> Result<String, AppError> {
    use crate::probe::templates::{self, Strict};
    if let Some(tag) = tag {
        if !templates::TAGS.contains(&tag) {
            return Err(AppError::Usage(format!(
                "unknown tag {tag:?}; known: {}",
                templates::TAGS.join(", ")
            )));
        }
    }
    let chosen: Vec<_> = templates::malformed()
        .iter()
        .filter(|t| tag.is_none_or(|tag| t.has_tag(tag)))
        .collect();
    let strict = |t: &templates::Template| {
        let word = match t.strict {
            Strict::Accept => "accept",
            Strict::Reject => "reject",
            Strict::Close => "close",
            Strict::Any => "any",
        };
        if t.strict_status.is_empty() {
            word.to_string()
        } else {
            let codes: Vec<String> = t.strict_status.iter().map(u16::to_string).collect();
            format!("{word} ({})", codes.join("/"))
        }
    };
    if format == Format::Json {
        let list: Vec<serde_json::Value> = chosen
            .iter()
            .map(|t| {
                serde_json::json!({
                    "id": t.id,
                    "tags": t.tags,
                    "summary": t.summary,
                    "rfc": t.rfc,
                    "strict": t.strict,
                    "strict_status": t.strict_status,
                    "wait_ms": t.wait.map(|w| w.as_millis() as u64),
                    "evidence_for": t.evidence_for,
                })
            })
            .collect();
        return Ok(report::to_json(&serde_json::json!({ "templates": list })));
    }
    let mut text = String::new();
    for t in &chosen {
        text.push_str(&format!(
            "{:<40} {:<22} {:<20} {}\n    {} · {}\n",
            t.id,
            t.tags.join(","),
            strict(t),
            t.evidence_for.join(", "),
            t.rfc,
            t.summary
        ));
    }
    text.push_str(&format!(
        "{} templates (probes/malformed.yaml); `variants:` in a scenario selects by id or tag\n",
        chosen.len()
    ));
    Ok(text)
}
