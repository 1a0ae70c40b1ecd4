//! Stage two of the arguments (ripgrep's low args → high args): what a command line asks for,
//! turned into validated, typed settings before any work starts. Nothing after this module
//! parses a flag's text again; every refusal here is [`AppError::Usage`] or, for a scenario,
//! [`AppError::Scenario`].

use std::num::NonZeroU64;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::catalogue::{Catalogue, Cause};
use crate::cli::{
    AccessLogArgs, BackendArgs, ColorArg, FormatArg, LogsArgs, MarkerIn, OutputArgs, ReplayArgs,
    ScanArgs,
};
use crate::host::backend::BackendConfig;
use crate::logs::probe_line::{self, AccessLog};
use crate::logs::{Input, LogFormat};
use crate::probe::{Family, Limits, MarkerPlace, Plan, ProbeSpec};
use crate::profile::{Numbers, Profile};
use crate::report::{self, ColorChoice, Format};
use crate::run::Job;
use crate::scenario::Ownership;
use crate::target::{Role, Target};
use crate::transport::marker::MARKER_QUERY_KEY;
use crate::transport::mask::MARKER_HEADER;

use super::AppError;

/// Validated output settings, common to every command.
pub(super) struct Output {
    pub format: Format,
    pub file: Option<PathBuf>,
    /// `--output FORMAT=FILE`: more renderings of a run's report.
    pub also: Vec<(Format, PathBuf)>,
    pub color: ColorChoice,
    pub quiet: bool,
    pub verbose: bool,
}

/// One `--output` value: `FORMAT=FILE` when the text before the first `=` names a format,
/// else a file for `--format`'s output (a file may have `=` in its name).
fn output_value(value: &str) -> (Option<Format>, PathBuf) {
    let format = |name: &str| match name {
        "human" => Some(Format::Human),
        "json" => Some(Format::Json),
        "junit" => Some(Format::Junit),
        "markdown" => Some(Format::Markdown),
        "curl" => Some(Format::Curl),
        "prometheus" => Some(Format::Prometheus),
        _ => None,
    };
    match value.split_once('=') {
        Some((name, file)) if !file.is_empty() => match format(name) {
            Some(f) => (Some(f), PathBuf::from(file)),
            None => (None, PathBuf::from(value)),
        },
        _ => (None, PathBuf::from(value)),
    }
}

impl TryFrom<&OutputArgs> for Output {
    type Error = AppError;

    fn try_from(a: &OutputArgs) -> Result<Output, AppError> {
        let mut file = None;
        let mut also: Vec<(Format, PathBuf)> = Vec::new();
        for value in &a.output {
            match output_value(value) {
                (Some(format), path) => also.push((format, path)),
                (None, path) if file.is_none() => file = Some(path),
                (None, path) => {
                    return Err(AppError::Usage(format!(
                        "--output {}: one plain FILE takes --format's output; name the format of the others (json=FILE, junit=FILE, markdown=FILE, human=FILE)",
                        path.display()
                    )))
                }
            }
        }
        let mut seen: Vec<&Path> = file.iter().map(PathBuf::as_path).collect();
        for (_, path) in &also {
            if seen.contains(&path.as_path()) {
                return Err(AppError::Usage(format!(
                    "--output {}: two reports cannot go to one file",
                    path.display()
                )));
            }
            seen.push(path);
        }
        Ok(Output {
            format: match a.format {
                FormatArg::Human => Format::Human,
                FormatArg::Json => Format::Json,
                FormatArg::Junit => Format::Junit,
                FormatArg::Markdown => Format::Markdown,
                FormatArg::Curl => Format::Curl,
                FormatArg::Prometheus => Format::Prometheus,
            },
            file,
            also,
            color: match a.color {
                ColorArg::Auto => ColorChoice::Auto,
                ColorArg::Always => ColorChoice::Always,
                ColorArg::Never => ColorChoice::Never,
            },
            quiet: a.quiet,
            verbose: a.verbose,
        })
    }
}

impl Output {
    pub fn write(&self, text: &str) -> Result<(), AppError> {
        report::emit(text, self.file.as_deref()).map_err(|source| AppError::Output {
            path: self.file.clone().unwrap_or_else(|| "stdout".into()),
            source,
        })
    }

    /// Human or JSON for output that is not a run's report (a catalogue, a plan, the lab's
    /// addresses): JUnit and Markdown describe runs only.
    pub fn plain_format(&self, what: &str) -> Result<Format, AppError> {
        self.one_output(what)?;
        match self.format {
            Format::Human | Format::Json => Ok(self.format),
            Format::Junit | Format::Markdown | Format::Curl | Format::Prometheus => Err(AppError::Usage(format!(
                "--format junit, markdown, curl and prometheus are for the reports of runs (demo, run, scan; curl also with --dry-run, prometheus for backend too); {what} takes human or json"
            ))),
        }
    }

    /// Refuses `--output FORMAT=FILE`s for what writes one output only.
    pub fn one_output(&self, what: &str) -> Result<(), AppError> {
        match self.also.first() {
            Some((_, path)) => Err(AppError::Usage(format!(
                "--output FORMAT=FILE ({}) is for the reports of runs (demo, run, scan); {what} writes one output",
                path.display()
            ))),
            None => Ok(()),
        }
    }

    /// [`Output::plain_format`], or prometheus: `backend`'s report as metrics.
    pub fn backend_format(&self) -> Result<Format, AppError> {
        match self.format {
            Format::Prometheus if self.also.is_empty() => Ok(Format::Prometheus),
            _ => self.plain_format("backend"),
        }
    }

    /// `logs`' formats: human, JSON, or Markdown (a summary for an issue); JUnit describes runs.
    pub fn logs_format(&self) -> Result<Format, AppError> {
        match self.format {
            Format::Markdown if self.also.is_empty() => Ok(Format::Markdown),
            _ => self.plain_format("logs"),
        }
    }

    /// Colour for what goes to stderr (causes told while the run goes on).
    pub fn stderr_color(&self) -> bool {
        match self.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => report::style::auto_color(&std::io::stderr()),
        }
    }

    pub fn style(&self) -> report::Style {
        report::style_for(self.color, self.file.is_some(), self.verbose)
    }

    /// A run's report in `--format` where the output goes, and in each `FORMAT=FILE`.
    pub fn write_report(&self, r: &report::Report) -> Result<(), AppError> {
        self.write(&report::render(r, self.format, self.style()))?;
        for (format, path) in &self.also {
            let text = report::render(
                r,
                *format,
                report::style_for(self.color, true, self.verbose),
            );
            report::emit(&text, Some(path)).map_err(|source| AppError::Output {
                path: path.clone(),
                source,
            })?;
        }
        Ok(())
    }
}

/// The run's caps from the flags that give them, checked: above 0, NaN refused (ranges refuse
/// it), the request timeout between 1 ms and an hour.
fn checked_limits(
    max_rate: f64,
    max_requests: u32,
    max_duration: u64,
    timeout: f64,
) -> Result<Limits, AppError> {
    if !(f64::MIN_POSITIVE..=f64::MAX).contains(&max_rate)
        || max_requests == 0
        || max_duration == 0
        || !(0.001..=3600.0).contains(&timeout)
    {
        return Err(AppError::Usage(
            "--max-rate, --max-requests, --max-duration and --timeout must be above 0 (--timeout from 0.001 to 3600)".into(),
        ));
    }
    Ok(Limits {
        max_requests,
        max_rate,
        max_duration: Duration::from_secs(max_duration),
        request_timeout: Duration::from_secs_f64(timeout),
    })
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
    let limits = checked_limits(
        args.max_rate,
        args.max_requests,
        args.max_duration,
        args.timeout,
    )?;
    let listener = target(Role::Listener, &args.listener)?;
    let backend = target(Role::Backend, &args.backend.first().cloned())?;
    let mut pool = Vec::new();
    if args.backend.len() >= 2 {
        for b in &args.backend {
            pool.extend(target(Role::Backend, &Some(b.clone()))?);
        }
    }
    let plan = Plan::new(listener, backend)
        .with_profile(profile)
        .with_probes(probes)
        .with_limits(limits)
        .with_mask(mask)
        .with_marker(args.marker)
        .with_pool(pool)
        .with_owner_confirmed(args.i_own_this_target);
    with_access_log(
        Job {
            only_codes: (!args.only.is_empty()).then(|| args.only.clone()),
            notes,
            ..Job::new("scan", "scan", plan)
        },
        &args.access_log,
    )
}

/// `--access-log FILE [--log-format F] [--access-log-wait S]`: the job reads each probe's line
/// after the run, so its raw requests carry the marker.
pub fn with_access_log(mut job: Job, args: &AccessLogArgs) -> Result<Job, AppError> {
    let chosen = args.marker_in.map(|m| match m {
        MarkerIn::Header => MarkerPlace::Header,
        MarkerIn::Query => MarkerPlace::Query,
    });
    if let Some(place) = chosen {
        job.plan.marker_place = place;
    }
    let Some(path) = &args.access_log else {
        return Ok(job);
    };
    if !(args.access_log_wait >= 0.0 && args.access_log_wait.is_finite()) {
        return Err(AppError::Usage(
            "--access-log-wait must be a number of seconds, 0 or above".into(),
        ));
    }
    let format = AccessLog::format_named(&args.log_format)?;
    let place = chosen.unwrap_or_else(|| probe_line::place_for(&format));
    if chosen.is_none() && place == MarkerPlace::Query {
        job.notes.push(format!(
            "the {} log format has no field for the {MARKER_HEADER} header but logs the request line: the probes carry the marker in the query string instead (`?{MARKER_QUERY_KEY}=RUN-N`; --marker-in header keeps the request targets as they are)",
            format.name()
        ));
    }
    job.plan.marker = true;
    job.plan.marker_place = place;
    job.access_log = Some(AccessLog {
        wait: Duration::from_secs_f64(args.access_log_wait),
        place,
        ..AccessLog::new(path.clone(), format)
    });
    Ok(job)
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
fn declared_numbers(args: &ScanArgs) -> Result<Numbers, AppError> {
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
    let mut declared = Numbers::default();
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
pub fn backend_config(args: &BackendArgs) -> Result<BackendConfig, AppError> {
    let mut config = BackendConfig::new(args.port);
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

/// Stage two of `run`'s arguments: the scenario file loaded and checked, `--var`s applied.
pub fn scenario_job(
    path: &Path,
    vars: &[String],
    i_own_this_target: bool,
) -> Result<Job, AppError> {
    let owner = if i_own_this_target {
        Ownership::Confirmed
    } else {
        Ownership::Unconfirmed
    };
    Ok(crate::scenario_job::load_as(path, vars, owner)?)
}

/// `lbprobe backend --capture --for SECONDS`: how long to watch the port, when asked to.
pub fn capture_for(args: &BackendArgs) -> Option<Duration> {
    args.capture.then(|| Duration::from_secs(args.duration))
}

/// Stage two of `logs`'s arguments. Reading the files (the error log too) is work: it waits
/// for [`crate::app`] to run the command.
pub struct LogsConfig {
    pub format: LogFormat,
    /// Resolved: `auto` has become the profile the log format's server documents.
    pub profile: Profile,
    pub threads: usize,
    pub error_log: Option<Input>,
    pub inputs: Vec<Input>,
    /// `--explain-line N`: this line of the first input, explained.
    pub explain_line: Option<NonZeroU64>,
    /// `--emit-sql`, `--sql-load`, `--from-sql-result`: SQL instead of reading the logs here.
    pub sql: Option<LogsSql>,
}

/// What `logs` does with SQL instead of reading the files itself.
pub enum LogsSql {
    Emit {
        engine: crate::logs::sql::Engine,
        table: String,
    },
    Load {
        engine: crate::logs::sql::Engine,
        table: String,
    },
    FromResult(String),
}

pub fn logs_config(args: &LogsArgs) -> Result<LogsConfig, AppError> {
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
    let declared = Numbers {
        connect_timeout: declared_secs("--connect-timeout", args.connect_timeout)?,
        response_timeout: declared_secs("--response-timeout", args.response_timeout)?,
        ..Numbers::default()
    };
    let format = LogFormat::parse(&args.log_format)?;
    // `auto`: the log's own format says whose documentation its timeouts are in.
    let (listener, why) = format.listener();
    let profile = named.with_declared(&declared).resolve(Ok((listener, why)));
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if threads == 0 {
        return Err(AppError::Usage("--threads must be at least 1".into()));
    }
    let error_log = args.error_log.as_deref().map(Input::from_arg);
    let inputs: Vec<Input> = args.files.iter().map(|f| Input::from_arg(f)).collect();
    let stdin_uses = inputs.iter().filter(|i| **i == Input::Stdin).count()
        + usize::from(error_log == Some(Input::Stdin));
    if stdin_uses > 1 {
        return Err(AppError::Usage(
            "`-` (standard input) can be named once".into(),
        ));
    }
    let explain_line = match args.explain_line {
        None => None,
        Some(n) => Some(
            NonZeroU64::new(n)
                .ok_or_else(|| AppError::Usage("--explain-line counts from 1".into()))?,
        ),
    };
    let engine =
        |name: &str| crate::logs::sql::Engine::parse(name).map_err(|e| AppError::Logs(e.into()));
    let sql = match (&args.emit_sql, &args.sql_load, &args.from_sql_result) {
        (Some(e), _, _) => Some(LogsSql::Emit {
            engine: engine(e)?,
            table: args.table.clone(),
        }),
        (_, Some(e), _) => Some(LogsSql::Load {
            engine: engine(e)?,
            table: args.table.clone(),
        }),
        (_, _, Some(f)) => Some(LogsSql::FromResult(f.clone())),
        _ => None,
    };
    Ok(LogsConfig {
        format,
        profile,
        threads,
        error_log,
        inputs,
        explain_line,
        sql,
    })
}

/// `lbprobe explain ID`: the cause, or the ids it was likely meant to be.
pub fn cause_named(id: &str) -> Result<&'static Cause, AppError> {
    let cat = Catalogue::builtin();
    if let Some(c) = cat.get(id) {
        return Ok(c);
    }
    let ids: Vec<&str> = cat.causes().iter().map(|c| c.id.as_str()).collect();
    // A typo gets the one id it was meant to be; a bare code or a fragment gets the ids that
    // hold it.
    let hint = match crate::profile::nearest(id, &ids) {
        Some(near) => format!("did you mean {near}?"),
        None => {
            let close: Vec<&str> = ids
                .iter()
                .copied()
                .filter(|c| c.split('.').next() == Some(id) || c.contains(id))
                .collect();
            if close.is_empty() {
                "run `lbprobe causes` for the list".to_string()
            } else {
                format!("did you mean one of: {}", close.join(", "))
            }
        }
    };
    Err(AppError::Usage(format!("unknown cause {id:?}; {hint}")))
}

/// `lbprobe probes --tag TAG`: a tag the templates have.
pub fn template_tag(tag: Option<&str>) -> Result<Option<&str>, AppError> {
    use crate::probe::templates::TAGS;
    match tag {
        Some(tag) if !TAGS.contains(&tag) => Err(AppError::Usage(format!(
            "unknown tag {tag:?}; known: {}",
            TAGS.join(", ")
        ))),
        _ => Ok(tag),
    }
}

/// Stage two of `replay`'s arguments: the request read and parsed (a bad one is exit 2 with its
/// line and column), the targets and caps checked.
pub fn replay_job(args: &ReplayArgs) -> Result<crate::replay::run::ReplayJob, AppError> {
    let input = if args.request == "-" {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf).map_err(|source| {
            AppError::Input {
                path: "standard input".into(),
                source,
            }
        })?;
        buf
    } else {
        std::fs::read(&args.request).map_err(|source| AppError::Input {
            path: args.request.clone(),
            source,
        })?
    };
    let parsed = crate::replay::parse(&input, args.entry)?;
    let profile = profile_named(&args.profile)?;
    let mut mask: Vec<String> = Vec::new();
    for name in &args.mask {
        if !crate::transport::is_token(name) {
            return Err(AppError::Usage(format!(
                "--mask {name:?}: expected a header name"
            )));
        }
        mask.push(name.clone());
    }
    let limits = checked_limits(
        args.max_rate,
        args.max_requests,
        args.max_duration,
        args.timeout,
    )?;
    let target = |role: Role, url: &str| -> Result<Target, AppError> {
        let mut t =
            Target::parse(role, url).map_err(|e| AppError::Usage(format!("--{role}: {e}")))?;
        t.tls_verify = !args.insecure;
        Ok(t)
    };
    Ok(crate::replay::run::ReplayJob {
        parsed,
        listener: target(Role::Listener, &args.listener)?,
        backend: args
            .backend
            .as_deref()
            .map(|b| target(Role::Backend, b))
            .transpose()?,
        limits,
        profile,
        mask,
        shrink: args.shrink,
        curl: crate::replay::curl::Defaults::default(),
    })
}
