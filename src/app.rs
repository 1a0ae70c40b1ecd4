//! Turns a parsed command line into work: validated config, the pipeline, the rendered output.

use std::path::PathBuf;
use std::time::Duration;

use crate::catalogue::Catalogue;
use crate::cli::{Cli, ColorArg, Command, FormatArg, LogsArgs, OutputArgs, ScanArgs};
use crate::probe::{Family, Limits, Plan, ProbeSpec};
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
}

impl From<&OutputArgs> for Output {
    fn from(a: &OutputArgs) -> Output {
        Output {
            format: match a.format {
                FormatArg::Human => Format::Human,
                FormatArg::Json => Format::Json,
            },
            file: a.output.clone(),
            color: match a.color {
                ColorArg::Auto => ColorChoice::Auto,
                ColorArg::Always => ColorChoice::Always,
                ColorArg::Never => ColorChoice::Never,
            },
            quiet: a.quiet,
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

    fn style(&self) -> report::Style {
        report::style_for(self.color, self.file.is_some())
    }
}

/// Run a command; returns the process exit code.
pub fn run(cli: Cli) -> Result<i32, AppError> {
    let out = Output::from(&cli.output);
    match cli.command {
        Command::Logs(args) => logs(&args, &out),
        Command::Causes => {
            let cat = Catalogue::builtin();
            let text = match out.format {
                Format::Human => report::catalogue::causes_human(cat, out.style().color),
                Format::Json => report::to_json(&report::catalogue::causes_json(cat)),
            };
            out.write(&text)?;
            Ok(crate::exit::OK)
        }
        Command::Explain { cause } => {
            let cat = Catalogue::builtin();
            let Some(c) = cat.get(&cause) else {
                let close: Vec<&str> = cat
                    .causes()
                    .iter()
                    .map(|c| c.id.as_str())
                    .filter(|id| {
                        id.split('.').next() == cause.split('.').next()
                            || id.contains(cause.as_str())
                    })
                    .collect();
                let hint = if close.is_empty() {
                    "run `lbprobe causes` for the list".to_string()
                } else {
                    format!("did you mean one of: {}", close.join(", "))
                };
                return Err(AppError::Usage(format!("unknown cause {cause:?}; {hint}")));
            };
            let text = match out.format {
                Format::Human => report::catalogue::cause_human(c, out.style().color),
                Format::Json => report::to_json(&report::catalogue::cause_json(c)),
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
        } => {
            let job = crate::scenario_job::load(&scenario, &vars)
                .map_err(|e| AppError::Usage(e.to_string()))?;
            if dry {
                return dry_run(&job, &out);
            }
            finish(execute(job, &out)?, &out)
        }
        Command::Lab { duration } => {
            let rt = runtime()?;
            rt.block_on(async {
                let lab = crate::demo::start_lab()
                    .await
                    .map_err(|e| AppError::Usage(e.to_string()))?;
                let info = crate::demo::LabInfo::of(&lab);
                let text = match out.format {
                    Format::Human => info.human(),
                    Format::Json => report::to_json(&info),
                };
                out.write(&text)?;
                tokio::select! {
                    _ = tokio::time::sleep(std::time::Duration::from_secs(duration)) => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
                drop(lab);
                Ok(crate::exit::OK)
            })
        }
        Command::Demo => {
            let rt = runtime()?;
            let progress = ProgressDisplay::new(out.quiet);
            let report = rt
                .block_on(crate::demo::run(progress.callback()))
                .map_err(|e| AppError::Usage(e.to_string()))?;
            progress.finish();
            finish(report, &out)
        }
    }
}

fn dry_run(job: &Job, out: &Output) -> Result<i32, AppError> {
    let plan = crate::probe::dry_run::dry_run(&job.plan);
    let text = match out.format {
        Format::Human => report::dry_run::render(&plan, out.style()),
        Format::Json => report::to_json(&plan),
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
    let report = rt.block_on(run::execute(job, progress.callback()));
    progress.finish();
    Ok(report)
}

fn finish(report: Report, out: &Output) -> Result<i32, AppError> {
    out.write(&report::render(&report, out.format, out.style()))?;
    Ok(report.exit_code)
}

/// Stage two of `scan`'s arguments: raw flags into a validated plan.
pub fn scan_job(args: &ScanArgs) -> Result<Job, AppError> {
    if args.listener.is_none() && args.backend.is_none() {
        return Err(AppError::Usage(
            "scan needs --listener URL, --backend URL or both".into(),
        ));
    }
    let profile = Profile::by_name(&args.profile).ok_or_else(|| {
        AppError::Usage(format!(
            "unknown profile {:?} (expected one of: {})",
            args.profile,
            Profile::NAMES.join(", ")
        ))
    })?;
    let mut headers = Vec::new();
    for h in &args.headers {
        let (name, value) = h
            .split_once(':')
            .ok_or_else(|| AppError::Usage(format!("--header {h:?}: expected `Name: value`")))?;
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
    let target = |role: Role, url: &Option<String>| -> Result<Option<Target>, AppError> {
        let Some(url) = url else { return Ok(None) };
        let mut t =
            Target::parse(role, url).map_err(|e| AppError::Usage(format!("--{role}: {e}")))?;
        t.tls_verify = !args.insecure;
        t.headers = headers.clone();
        if role == Role::Listener {
            t.sni = args.sni.clone();
        }
        Ok(Some(t))
    };
    let probes = if args.probes.is_empty() && !args.only.is_empty() {
        // `--only` narrows every family down to the codes asked for, slow ones included.
        Family::ALL
            .into_iter()
            .map(ProbeSpec::default_for)
            .collect()
    } else if args.probes.is_empty() {
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
    let codes = Catalogue::builtin().codes();
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
    if args.max_rate <= 0.0 || args.max_requests == 0 || args.max_duration == 0 || args.timeout == 0
    {
        return Err(AppError::Usage(
            "--max-rate, --max-requests, --max-duration and --timeout must be above 0".into(),
        ));
    }
    Ok(Job {
        name: "scan".into(),
        origin: "scan".into(),
        plan: Plan {
            listener: target(Role::Listener, &args.listener)?,
            backend: target(Role::Backend, &args.backend)?,
            profile,
            probes,
            limits: Limits {
                max_requests: args.max_requests,
                max_rate: args.max_rate,
                max_duration: Duration::from_secs(args.max_duration),
                request_timeout: Duration::from_secs(args.timeout),
            },
            mask: Vec::new(),
        },
        expect: Vec::new(),
        only_codes: (!args.only.is_empty()).then(|| args.only.clone()),
        notes: Vec::new(),
    })
}

/// `lbprobe logs`: flags into options, then the summary or one line explained.
fn logs(args: &LogsArgs, out: &Output) -> Result<i32, AppError> {
    use crate::logs::{self, classify::Timeouts, Input, LogFormat, Options};
    use report::logs as render;
    let usage = |e: logs::LogsError| AppError::Usage(e.to_string());
    let profile = Profile::by_name(&args.profile).ok_or_else(|| {
        AppError::Usage(format!(
            "unknown profile {:?} (expected one of: {})",
            args.profile,
            Profile::NAMES.join(", ")
        ))
    })?;
    let mut timeouts = Timeouts::of(&profile);
    for (flag, value, slot) in [
        (
            "--connect-timeout",
            args.connect_timeout,
            &mut timeouts.connect,
        ),
        (
            "--response-timeout",
            args.response_timeout,
            &mut timeouts.response,
        ),
    ] {
        if let Some(v) = value {
            if !(v > 0.0 && v.is_finite()) {
                return Err(AppError::Usage(format!(
                    "{flag} must be a number of seconds above 0"
                )));
            }
            *slot = v;
        }
    }
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if threads == 0 {
        return Err(AppError::Usage("--threads must be at least 1".into()));
    }
    let opts = Options {
        format: LogFormat::parse(&args.log_format).map_err(usage)?,
        profile: profile.name.clone(),
        timeouts,
        threads,
    };
    let inputs: Vec<Input> = args.files.iter().map(|f| Input::from_arg(f)).collect();
    if inputs.iter().filter(|i| **i == Input::Stdin).count() > 1 {
        return Err(AppError::Usage(
            "`-` (standard input) can be named once".into(),
        ));
    }
    let text = if let Some(n) = args.explain_line {
        if n == 0 {
            return Err(AppError::Usage("--explain-line counts from 1".into()));
        }
        let e = logs::explain_line(&inputs[0], n, &opts).map_err(usage)?;
        match out.format {
            Format::Human => render::explanation_human(&e, out.style()),
            Format::Json => report::to_json(&render::ExplanationJson::new(&e)),
        }
    } else {
        let summary = logs::analyze(&inputs, &opts).map_err(usage)?;
        let r = render::LogsReport::new(
            &summary,
            opts.format.name(),
            opts.profile.clone(),
            inputs.iter().map(Input::name).collect(),
        );
        match out.format {
            Format::Human => render::human(&r, out.style()),
            Format::Json => report::to_json(&r),
        }
    };
    out.write(&text)?;
    Ok(crate::exit::OK)
}
