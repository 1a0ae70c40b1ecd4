//! Turns a parsed command line into work: validated settings first ([`config`], before anything
//! is sent or read), then the pipeline, then the rendered output. Errors and their exit codes
//! are in [`error`], Ctrl-C in [`signals`].

mod config;
mod error;
mod signals;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::catalogue::Catalogue;
use crate::cli::{Cli, Command};
use crate::probe::Interrupt;
use crate::report::{self, progress::ProgressDisplay, schema::Kind, Format, Report};
use crate::run::{self, Job};

pub use config::{backend_config, scan_job};
pub use error::{parse_exit_code, AppError, MergeInputError};

use config::{LogsConfig, Output};
use signals::{watch_ctrl_c, CtrlC};

/// Run a command; returns the process exit code.
pub fn run(cli: Cli) -> Result<i32, AppError> {
    let out = Output::try_from(&cli.output)?;
    match cli.command {
        Command::Logs(args) => {
            let format = out.logs_format()?;
            logs(config::logs_config(&args)?, format, &out)
        }
        Command::Causes => {
            let cat = Catalogue::builtin();
            let text = match out.plain_format("`causes`")? {
                Format::Json => {
                    report::schema::to_json(Kind::Causes, &report::catalogue::causes_json(cat))
                }
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
            let tag = config::template_tag(tag.as_deref())?;
            let chosen: Vec<_> = crate::probe::templates::malformed()
                .iter()
                .filter(|t| tag.is_none_or(|tag| t.has_tag(tag)))
                .collect();
            out.write(&report::probes::listing(&chosen, format))?;
            Ok(crate::exit::OK)
        }
        Command::Explain { cause } => {
            out.plain_format("`explain`")?;
            let c = config::cause_named(&cause)?;
            let text = match out.format {
                Format::Json => {
                    report::schema::to_json(Kind::Cause, &report::catalogue::cause_json(c))
                }
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
            access_log,
        } => {
            let job = config::scenario_job(&scenario, &vars, i_own_this_target)?;
            let job = config::with_access_log(job, &access_log)?;
            if dry {
                return dry_run(&job, &out);
            }
            finish(execute(job, &out)?, &out)
        }
        Command::Replay(args) => {
            let format = out.plain_format("`replay`")?;
            let job = config::replay_job(&args)?;
            let rt = runtime()?;
            let progress = ProgressDisplay::new(out.quiet);
            let interrupt = Interrupt::new();
            let report = rt.block_on(async {
                // Ctrl-C stops the shrink; the report gives the smallest failing request yet.
                let watcher = tokio::spawn(watch_ctrl_c(CtrlC::install(), interrupt.clone()));
                let report = crate::replay::run::execute(job, progress.callback(), interrupt).await;
                watcher.abort();
                report
            });
            progress.finish();
            let text = match format {
                Format::Json => report::to_json(&report),
                _ => report::replay::render(&report, out.style()),
            };
            out.write(&text)?;
            Ok(report.exit_code)
        }
        Command::Lab { duration, hostile } => {
            out.plain_format("`lab`")?;
            if hostile.as_deref() == Some("list") {
                out.write(&report::lab::hostile_kinds(out.format == Format::Json))?;
                return Ok(crate::exit::OK);
            }
            let rt = runtime()?;
            rt.block_on(async {
                let lab = match hostile.as_deref() {
                    Some(kind) => crate::demo::start_hostile(kind).await?,
                    None => crate::demo::start_lab().await?,
                };
                let info = crate::demo::LabInfo::of(&lab);
                let text = match out.format {
                    Format::Json => report::schema::to_json(Kind::Lab, &info),
                    _ => report::lab::banner(&info),
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
            let format = out.backend_format()?;
            let config = backend_config(&args)?;
            let capture_for = config::capture_for(&args);
            backend(config, capture_for, format, args.textfile.as_deref(), &out)
        }
        Command::Serve(args) => {
            if out.plain_format("`serve`")? != Format::Human {
                return Err(AppError::Usage(
                    "serve writes no report: its answers are metrics, and --check says in words whether the config loads".into(),
                ));
            }
            let config = crate::serve::ServeConfig::load(&args.config)?;
            if args.check {
                out.write(&report::serve::checked(&config))?;
                return Ok(crate::exit::OK);
            }
            serve(config, &args.listen)
        }
        Command::Merge { client, backend } => {
            let format = out.plain_format("merge")?;
            merge(&client, &backend, format, &out)
        }
        Command::Demo => {
            let rt = runtime()?;
            let progress = ProgressDisplay::new(out.quiet);
            let interrupt = Interrupt::new();
            let report = rt.block_on(async {
                let watcher = tokio::spawn(watch_ctrl_c(CtrlC::install(), interrupt.clone()));
                let report = crate::demo::run(
                    progress.callback(),
                    progress.announcer(out.stderr_color()),
                    interrupt,
                )
                .await;
                watcher.abort();
                report
            })?;
            progress.finish();
            finish(report, &out)
        }
    }
}

fn dry_run(job: &Job, out: &Output) -> Result<i32, AppError> {
    // The dry run's one script of curl commands, besides what every command writes.
    let format = match out.format {
        Format::Curl => {
            out.one_output("--dry-run")?;
            Format::Curl
        }
        _ => out.plain_format("--dry-run")?,
    };
    let mut plan = crate::probe::dry_run::dry_run(&job.plan);
    // What the job itself says before anything runs (--only's left-out families, the demo's
    // skipped half) belongs in the plan a person reads.
    plan.notes.splice(0..0, job.notes.iter().cloned());
    let text = match format {
        Format::Json => report::schema::to_json(Kind::Plan, &plan),
        Format::Curl => report::curl::render_planned(&plan),
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

fn finish(report: Report, out: &Output) -> Result<i32, AppError> {
    out.write_report(&report)?;
    Ok(report.exit_code)
}

/// `lbprobe backend`: the host's facts and the local checks, or a capture of the port for
/// `capture_for` (Ctrl-C ends it early).
fn backend(
    config: crate::host::backend::BackendConfig,
    capture_for: Option<Duration>,
    format: Format,
    textfile: Option<&Path>,
    out: &Output,
) -> Result<i32, AppError> {
    let rt = runtime()?;
    let progress = ProgressDisplay::new(out.quiet);
    let port = config.port;
    let capture = capture_for.map(|duration| crate::host::backend::CaptureSettings {
        duration,
        stop: Arc::new(AtomicBool::new(false)),
        ready: Box::new(move || {
            report::warn(&format!(
                "capturing TCP port {port} for {} s (Ctrl-C ends it early)",
                duration.as_secs()
            ))
        }),
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
    if let Some(path) = textfile {
        report::emit_atomic(&report::prometheus::backend(&report), path).map_err(|source| {
            AppError::Output {
                path: path.to_path_buf(),
                source,
            }
        })?;
    }
    let text = match format {
        Format::Json => report::host::to_json(&report),
        Format::Prometheus => report::prometheus::backend(&report),
        _ => report::host::render(&report, out.style()),
    };
    out.write(&text)?;
    Ok(report.exit_code)
}

/// `lbprobe serve`: listen until Ctrl-C or SIGTERM.
fn serve(config: crate::serve::ServeConfig, listen: &str) -> Result<i32, AppError> {
    let addr: std::net::SocketAddr = listen.parse().map_err(|_| {
        AppError::Usage(format!(
            "--listen {listen:?}: expected an address and port such as 127.0.0.1:9116 or [::]:9116"
        ))
    })?;
    let rt = runtime()?;
    let served = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| AppError::Listen { addr, source })?;
        let mut signals = CtrlC::install();
        crate::serve::run(listener, config, async move {
            signals.next().await;
        })
        .await;
        Ok(crate::exit::OK)
    });
    // Probes still running end with their caps; a stopped server does not wait for them.
    rt.shutdown_timeout(Duration::from_secs(1));
    served
}

/// `lbprobe merge`: a `scan --marker` report joined with a `backend --capture` report.
fn merge(client: &Path, backend: &Path, format: Format, out: &Output) -> Result<i32, AppError> {
    let read = |path: &Path| -> Result<String, MergeInputError> {
        std::fs::read_to_string(path).map_err(|source| MergeInputError::Read {
            path: path.to_path_buf(),
            source,
        })
    };
    let client_text = read(client)?;
    let client_report =
        serde_json::from_str(&client_text).map_err(|source| MergeInputError::NotAReport {
            path: client.to_path_buf(),
            which: "client",
            source,
        })?;
    let backend_report =
        serde_json::from_str(&read(backend)?).map_err(|source| MergeInputError::NotAReport {
            path: backend.to_path_buf(),
            which: "backend",
            source,
        })?;
    // The whole run, for re-classification; a report that does not read back whole (an older
    // lbprobe's) still merges, without new findings.
    let client_run: Option<crate::host::merge::ClientRun> = serde_json::from_str(&client_text).ok();
    let merged = crate::host::merge::merge_and_reclassify(
        &client_report,
        client_run.as_ref(),
        &backend_report,
    )
    .map_err(MergeInputError::from)?;
    let text = match format {
        Format::Json => report::schema::to_json(Kind::Merge, &merged),
        _ => report::host::merge_human(&merged, out.style()),
    };
    out.write(&text)?;
    Ok(merged.exit_code)
}

/// `lbprobe logs --emit-sql`, `--sql-load`, `--from-sql-result`.
fn logs_sql(
    sql: &config::LogsSql,
    config: &LogsConfig,
    format: Format,
    out: &Output,
) -> Result<i32, AppError> {
    use crate::logs::{classify::Timeouts, sql as logsql, LogsError};
    use report::logs as render;
    let text = match sql {
        config::LogsSql::Emit { engine, table } => logsql::emit(
            *engine,
            &config.format,
            table,
            &Timeouts::of(&config.profile),
            &config.profile.label(),
        )
        .map_err(LogsError::from)?,
        config::LogsSql::Load { engine, table } => {
            let files: Vec<String> = config.inputs.iter().map(crate::logs::Input::name).collect();
            logsql::load(*engine, &config.format, table, &files).map_err(LogsError::from)?
        }
        config::LogsSql::FromResult(path) => {
            let body = std::fs::read_to_string(path).map_err(|source| AppError::Input {
                path: path.clone(),
                source,
            })?;
            let rows = report::sql_result::read_rows(path, &body).map_err(LogsError::from)?;
            let r = render::LogsReport::from_sql(
                &rows,
                path.clone(),
                config.format.name(),
                &config.profile,
            );
            render::render(&r, format, out.style())
        }
    };
    out.write(&text)?;
    Ok(crate::exit::OK)
}

/// `lbprobe logs`: the summary of every input, or one line explained.
fn logs(config: LogsConfig, format: Format, out: &Output) -> Result<i32, AppError> {
    use crate::logs::{self, classify::Timeouts, Options};
    use report::logs as render;
    if let Some(sql) = &config.sql {
        return logs_sql(sql, &config, format, out);
    }
    let errors = match &config.error_log {
        Some(input) => Some(Arc::new(logs::read_error_log(input, &config.format)?)),
        None => None,
    };
    let opts = Options {
        format: config.format,
        profile: config.profile.label(),
        timeouts: Timeouts::of(&config.profile),
        threads: config.threads,
        errors,
    };
    let text = if let Some(n) = config.explain_line {
        let e = logs::explain_line(&config.inputs[0], n.get(), &opts)?;
        match format {
            Format::Json => {
                report::schema::to_json(Kind::LogLine, &render::ExplanationJson::new(&e))
            }
            _ => render::explanation_human(&e, out.style()),
        }
    } else {
        let summary = logs::analyze(&config.inputs, &opts)?;
        let r = render::LogsReport::new(
            &summary,
            opts.format.name(),
            &config.profile,
            config.inputs.iter().map(logs::Input::name).collect(),
            opts.errors.as_deref(),
        );
        render::render(&r, format, out.style())
    };
    out.write(&text)?;
    Ok(crate::exit::OK)
}
