//! The serve mode's HTTP side (hyper): `/probe`, `/metrics`, `/-/healthy`, `/-/ready`,
//! `POST /-/reload`. A probe is refused (403, 429, 400) before anything is sent to its target.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::CONTENT_TYPE;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::time::Instant;

use super::limits::{probe_budget, target_key};
use super::stats::{Ended, Refusal};
use super::State;
use crate::probe::Interrupt;
use crate::report::{self, prometheus, Format};
use crate::target::Target;

/// The header Prometheus sends with each scrape: how long it waits for the answer.
const SCRAPE_TIMEOUT: &str = "x-prometheus-scrape-timeout-seconds";

const TEXT: &str = "text/plain; charset=utf-8";

type Answer = Response<Full<Bytes>>;

pub(super) async fn accept(
    listener: TcpListener,
    state: Arc<State>,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // Out of descriptors and the like: the next accept may do better.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => return,
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(route(&state, req).await) }
            });
            // A client that goes away mid-answer is its own business.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn answer(status: StatusCode, content_type: &str, body: String) -> Answer {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    if let Ok(v) = content_type.parse() {
        r.headers_mut().insert(CONTENT_TYPE, v);
    }
    r
}

fn text(status: StatusCode, body: impl Into<String>) -> Answer {
    let mut body = body.into();
    if !body.ends_with('\n') {
        body.push('\n');
    }
    answer(status, TEXT, body)
}

async fn route(state: &State, req: Request<Incoming>) -> Answer {
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/probe") => probe(state, &req).await,
        (&Method::GET, "/metrics") => answer(
            StatusCode::OK,
            prometheus::CONTENT_TYPE,
            prometheus::registry_text(&state.stats.registry),
        ),
        (&Method::GET, "/-/healthy") => text(StatusCode::OK, "Healthy"),
        // The config is checked before the server listens: once it answers, it is ready.
        (&Method::GET, "/-/ready") => text(StatusCode::OK, "Ready"),
        (&Method::POST | &Method::PUT, "/-/reload") => match state.reload() {
            Ok(modules) => text(StatusCode::OK, format!("reloaded: {modules} modules")),
            Err(e) => text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("reload failed, the config in use is kept:\n{e}"),
            ),
        },
        (&Method::GET, "/") => {
            let loaded = state.current();
            let names: Vec<&str> = loaded.config.modules.keys().map(String::as_str).collect();
            text(
                StatusCode::OK,
                format!(
                    "lbprobe serve\nmodules: {}\nprobe: /probe?module=NAME&target=URL[&backend=URL][&debug=true]\nalso: /metrics /-/healthy /-/ready, POST /-/reload",
                    names.join(", ")
                ),
            )
        }
        (_, "/probe" | "/metrics" | "/-/healthy" | "/-/ready" | "/-/reload" | "/") => {
            text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
        }
        _ => text(StatusCode::NOT_FOUND, "not found"),
    }
}

/// The query of a `/probe` request, read.
struct ProbeQuery {
    module: String,
    target: String,
    backend: Option<String>,
    debug: bool,
}

fn read_query(query: &str) -> Result<ProbeQuery, String> {
    let mut module = None;
    let mut target = None;
    let mut backend = None;
    let mut debug = false;
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "module" => module = Some(v.into_owned()),
            "target" => target = Some(v.into_owned()),
            "backend" => backend = Some(v.into_owned()),
            "debug" => debug = matches!(v.as_ref(), "true" | "1" | "yes"),
            _ => {}
        }
    }
    Ok(ProbeQuery {
        module: module.ok_or("missing `module` parameter")?,
        target: target.ok_or("missing `target` parameter")?,
        backend,
        debug,
    })
}

async fn probe(state: &State, req: &Request<Incoming>) -> Answer {
    let started = Instant::now();
    let bad = |why: String| {
        state.stats.refused(Refusal::BadRequest);
        text(StatusCode::BAD_REQUEST, why)
    };
    let q = match read_query(req.uri().query().unwrap_or_default()) {
        Ok(q) => q,
        Err(why) => return bad(why),
    };
    let loaded = state.current();
    let Some(module) = loaded.config.modules.get(&q.module) else {
        let known: Vec<&str> = loaded.config.modules.keys().map(String::as_str).collect();
        return bad(format!(
            "unknown module {:?} (the config has: {})",
            q.module,
            known.join(", ")
        ));
    };
    let mut job = match module.job_for(&q.target, q.backend.as_deref()) {
        Ok(job) => job,
        Err(e) => return bad(e.to_string()),
    };
    // Every target of the run is on the list, or nothing is sent anywhere.
    let targets: Vec<&Target> = job
        .plan
        .listener
        .iter()
        .chain(job.plan.backend.iter())
        .chain(job.plan.pool.iter())
        .collect();
    for t in &targets {
        if !loaded.config.allow.allows(t) {
            state.stats.refused(Refusal::NotAllowed);
            report::warn(&format!(
                "refused a probe of {t}: not on the config's allow list"
            ));
            return text(
                StatusCode::FORBIDDEN,
                format!("{t} is not on the config's allow list; nothing was sent"),
            );
        }
    }
    let keys: Vec<String> = targets.iter().map(|t| target_key(t)).collect();
    let scrape_timeout = req
        .headers()
        .get(SCRAPE_TIMEOUT)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(|s| Duration::from_secs_f64(s.min(86_400.0)));
    let caps = loaded.config.caps;
    let budget = probe_budget(
        scrape_timeout,
        caps.timeout_margin,
        job.plan.limits.max_duration,
    );
    let deadline = started + budget;

    let slot = match state
        .locks
        .take(
            &loaded.slots,
            caps.concurrent_probes,
            &keys,
            caps.when_busy,
            deadline,
        )
        .await
    {
        Ok(slot) => slot,
        Err(busy) => {
            state.stats.refused(Refusal::Busy);
            return text(
                StatusCode::TOO_MANY_REQUESTS,
                format!("{busy}; nothing was sent"),
            );
        }
    };
    let _running = state.stats.in_flight();

    // What is left after waiting for the slot is the run's time cap: the engine stops
    // sending, and bounds every wait, by it.
    let left = deadline.saturating_duration_since(Instant::now());
    job.plan.limits.max_duration = job
        .plan
        .limits
        .max_duration
        .min(left)
        .max(Duration::from_millis(1));
    let interrupt = Interrupt::new();
    let report = tokio::sync::oneshot::channel();
    let (done, mut report) = report;
    let runtime = tokio::runtime::Handle::current();
    let stop = interrupt.clone();
    // The run, on a thread of its own driven by this runtime: the same pipeline as `lbprobe
    // run`, which is written to be driven (`block_on`), not spawned. The slot goes with it:
    // the target is free when the run has ended, never before.
    tokio::task::spawn_blocking(move || {
        let r = runtime.block_on(crate::run::execute_interruptible(
            job,
            Arc::new(|_| {}),
            stop,
        ));
        drop(slot);
        let _ = done.send(r);
    });
    let report = tokio::select! {
        report = &mut report => report.ok(),
        () = tokio::time::sleep_until(deadline) => {
            // The engine's own cap should have ended it; stop what is left, and give it the
            // rest of the margin to write its report of what ran.
            interrupt.trigger();
            tokio::time::timeout(caps.timeout_margin / 2, report)
                .await
                .ok()
                .and_then(Result::ok)
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    let Some(report) = report else {
        state.stats.ran(&module.name, Ended::CutShort, seconds);
        return answer(
            StatusCode::OK,
            prometheus::CONTENT_TYPE,
            prometheus::probe_unfinished(seconds),
        );
    };
    let ended = if report.cut_short.is_some() || report.partial {
        Ended::CutShort
    } else if report.exit_code == crate::exit::OK {
        Ended::Success
    } else {
        Ended::Failure
    };
    state.stats.ran(&module.name, ended, seconds);
    if q.debug {
        let style = report::Style {
            color: false,
            width: report::style::DEFAULT_WIDTH,
            verbose: false,
        };
        return text(
            StatusCode::OK,
            report::render(&report, Format::Human, style),
        );
    }
    answer(
        StatusCode::OK,
        prometheus::CONTENT_TYPE,
        prometheus::probe(&report),
    )
}
