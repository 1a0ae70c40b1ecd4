//! One replay: the request sent as given to the listener (and the backend, when named) through
//! the probe engine's planned path, shrunk when asked, classified by the same rules as the
//! probes, and turned into the report's model.

use std::sync::Arc;
use std::time::Instant;

use crate::catalogue::Catalogue;
use crate::classify::{self, attribution, identify, Context, Origin, Verdict};
use crate::exit;
use crate::probe::budget::{Exhausted, Interrupt};
use crate::probe::context::{Engine, Settings, Side, Via};
use crate::probe::{Detail, Family, Limits, Observation, ProgressFn, SentRequest};
use crate::profile::Profile;
use crate::report::replay::{ReplayReport, ShownRequest, ShrinkReport};
use crate::target::Target;
use crate::transport::mask::Mask;
use crate::transport::{escape_bytes, Exchange};

use super::curl::{self, to_curl};
use super::shrink::{self, Part};
use super::{Parsed, Request, Source};

/// The requests a shrink may spend when `--max-requests` is not given (see `--help`).
pub const DEFAULT_SHRINK_CAP: u32 = 200;

/// A replay as the command line asks for it, validated.
#[derive(Debug, Clone)]
pub struct ReplayJob {
    pub parsed: Parsed,
    pub listener: Target,
    pub backend: Option<Target>,
    pub limits: Limits,
    pub profile: Profile,
    /// Header names masked besides Authorization, Proxy-Authorization, Cookie, Set-Cookie.
    pub mask: Vec<String>,
    pub shrink: bool,
    pub curl: curl::Defaults,
}

/// The observation variants of a replay.
pub const AS_GIVEN: &str = "as-given";
pub const MINIMAL: &str = "minimal";

const HEADER_CAUSE: &str = "400.header-too-large";
const URI_CAUSES: [&str; 2] = ["414.uri-too-long", "414.backend-uri-limit"];
const MALFORMED_CAUSE: &str = "400.malformed-request";

/// Header lines and request targets at least this long are suspects of a size limit when the
/// request was not shrunk (the smallest limits in the field are 4 KB; nginx's 1 KB first
/// buffer is only a first try).
const SUSPECT_BYTES: usize = 4096;

/// A part the shrink kept speaks to a size limit from this length on: below the smallest
/// buffers in the field (1 KB, nginx's first header buffer), it is its content that matters.
const SIZE_PART_BYTES: usize = 1024;

/// Which causes a replayed request can speak to, from its shape: what its shrink found matters
/// or, unshrunk, what is large or irregular in it. Opaque tags to the engine, as the probe
/// templates' `evidence_for`.
fn suspects(req: &Request, matters: Option<&[Part]>) -> Vec<String> {
    let mut tags: Vec<&str> = Vec::new();
    let irregular_line = req.method.is_empty()
        || !req
            .method
            .iter()
            .all(|b| b.is_ascii_uppercase() || *b == b'-')
        || !matches!(req.version.as_slice(), b"HTTP/1.1" | b"HTTP/1.0");
    match matters {
        Some(parts) => {
            for p in parts {
                // A part speaks to a size limit when it is large: a short header the backend
                // insists on is no header limit.
                match p {
                    Part::Header { line, .. } | Part::Cookies { line, .. }
                        if *line >= SIZE_PART_BYTES =>
                    {
                        tags.push(HEADER_CAUSE)
                    }
                    Part::Target { bytes, .. } if *bytes >= SIZE_PART_BYTES => {
                        tags.extend(URI_CAUSES)
                    }
                    Part::Header { .. } | Part::Cookies { .. } | Part::Target { .. } => {}
                    Part::Method(_) | Part::Version(_) => tags.push(MALFORMED_CAUSE),
                    Part::Body { .. } => {}
                }
            }
        }
        None => {
            if req.headers.iter().any(|h| h.line_len() >= SUSPECT_BYTES)
                || req.head_len() >= 2 * SUSPECT_BYTES
            {
                tags.push(HEADER_CAUSE);
            }
            if req.target.len() >= SUSPECT_BYTES {
                tags.extend(URI_CAUSES);
            }
            if irregular_line {
                tags.push(MALFORMED_CAUSE);
            }
        }
    }
    tags.sort_unstable();
    tags.dedup();
    tags.into_iter().map(String::from).collect()
}

/// The request as every output shows it: escaped bytes with secrets masked, and a curl command
/// for the masked request (or why curl cannot send it).
fn shown(
    req: &Request,
    mask: &Mask,
    base: &str,
    insecure: bool,
    defaults: &curl::Defaults,
) -> ShownRequest {
    let mut masked = req.clone();
    for h in masked.headers.iter_mut() {
        if mask.is_masked(&h.name_text()) {
            h.value = b"***".to_vec();
            h.sep = b": ".to_vec();
        } else {
            h.value = mask.hide(&h.value);
        }
    }
    masked.target = mask.hide(&masked.target);
    masked.body = mask.hide(&masked.body);
    let (curl, curl_cannot) = match to_curl(&masked, base, defaults) {
        // The certificate was not checked for the replay: the command does not check it either.
        Ok(line) if insecure => (Some(line.replacen("curl ", "curl -k ", 1)), None),
        Ok(line) => (Some(line), None),
        Err(why) => (None, Some(why)),
    };
    ShownRequest {
        bytes: escape_bytes(&mask.bytes(&req.to_bytes())),
        length: req.to_bytes().len(),
        curl,
        curl_cannot,
    }
}

fn base_url(t: &Target) -> String {
    format!(
        "{}://{}",
        if t.is_tls() { "https" } else { "http" },
        t.host_header()
    )
}

async fn send(
    engine: &Engine,
    side: &Side,
    variant: &str,
    req: &Request,
) -> Result<(SentRequest, Exchange), Exhausted> {
    let planned = side.planned(Family::Replay, variant, Via::Raw, req.to_bytes());
    engine.send_planned(&planned, None).await
}

/// What to say when a HAR entry's recorded status is not what the listener answers now: above
/// all when the browser spoke h2 or h3 and the replay HTTP/1.1, whose limits a listener sets
/// apart (a replay can then fail where the browser passed, or pass where it failed).
fn differs_from_recording(source: &Source, ex: &Exchange) -> Option<String> {
    let Source::Har {
        status: recorded,
        over,
        ..
    } = source
    else {
        return None;
    };
    let now = ex.response.as_ref()?.status;
    if i64::from(now) == *recorded {
        return None;
    }
    Some(match over {
        Some(p) => format!(
            "the recording has {recorded} for this request over {p}; sent as HTTP/1.1 it gets {now}: a listener sets its HTTP/1.1 and {p} limits apart (nginx's http2 header limits are its own), so this may not be the failure that was recorded"
        ),
        None => format!("the recording has {recorded} for this request; it gets {now} now"),
    })
}

/// A replayed request failed when the listener answered 400 or above, or gave no answer.
fn failed(ex: &Exchange) -> bool {
    ex.response.as_ref().is_none_or(|r| r.status >= 400)
}

pub async fn execute(job: ReplayJob, progress: ProgressFn, interrupt: Interrupt) -> ReplayReport {
    let started = Instant::now();
    let req = job.parsed.request.clone();
    let mut mask = Mask::new(
        &job.mask,
        std::iter::once(&job.listener).chain(job.backend.iter()),
    );
    let texts: Vec<(String, String)> = req
        .headers
        .iter()
        .map(|h| {
            (
                h.name_text(),
                String::from_utf8_lossy(&h.value).into_owned(),
            )
        })
        .collect();
    mask.learn(texts.iter().map(|(n, v)| (n.as_str(), v.as_str())));
    let engine = Engine::new(
        Settings {
            limits: job.limits,
            profile: job.profile.clone(),
            mask: mask.clone(),
            marker: None,
            marker_place: Default::default(),
            // A replay sends the person's own request, never the smuggling sequences this
            // confirms ownership for.
            owner_confirmed: false,
        },
        progress,
        interrupt,
    );
    let listener = Side::of(&job.listener);
    let backend = job.backend.as_ref().map(Side::of);
    let base = base_url(&job.listener);
    let insecure = job.listener.is_tls() && !job.listener.tls_verify;
    let mut notes = job.parsed.notes.clone();
    let mut observations: Vec<Observation> = Vec::new();
    let observe = |side: &Side, variant: &str, tags: &[String], sent, ex, matters: Vec<String>| {
        let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
        engine.observation(
            Family::Replay,
            variant,
            side,
            false,
            &tags,
            sent,
            Some(ex),
            Detail::Replay { matters },
        )
    };

    let tags = suspects(&req, None);
    let first = send(&engine, &listener, AS_GIVEN, &req).await;
    let mut shrink_report = None;
    let mut passes_now = false;
    if let Ok((sent, ex)) = first {
        let listener_failed = failed(&ex);
        let connected = !ex.end.never_connected();
        passes_now = connected && !listener_failed;
        notes.extend(differs_from_recording(&job.parsed.source, &ex));
        observations.push(observe(
            &listener,
            AS_GIVEN,
            &tags,
            sent.clone(),
            ex.clone(),
            Vec::new(),
        ));
        if let Some(b) = &backend {
            if let Ok((bsent, bex)) = send(&engine, b, AS_GIVEN, &req).await {
                observations.push(observe(b, AS_GIVEN, &tags, bsent, bex, Vec::new()));
            }
        }
        if job.shrink && connected && listener_failed {
            let before = engine.budget.sent();
            let out = shrink::shrink(&engine, &listener, &req, &ex, &sent).await;
            let words: Vec<String> = out.matters.iter().map(Part::words).collect();
            let min_tags = suspects(&out.minimal, Some(&out.matters));
            observations.push(observe(
                &listener,
                MINIMAL,
                &min_tags,
                out.sent.clone(),
                out.exchange.clone(),
                words.clone(),
            ));
            if let Some(b) = &backend {
                if let Ok((bsent, bex)) = send(&engine, b, MINIMAL, &out.minimal).await {
                    observations.push(observe(b, MINIMAL, &min_tags, bsent, bex, words.clone()));
                }
            }
            if let Some(why) = &out.stopped {
                notes.push(format!(
                    "{why}; the smallest request that still failed is shown"
                ));
            }
            shrink_report = Some(ShrinkReport {
                minimal: shown(&out.minimal, &mask, &base, insecure, &job.curl),
                matters: words,
                requests: engine.budget.sent() - before,
                shrink_requests: out.spent,
                cap: job.limits.max_requests,
                complete: out.stopped.is_none(),
            });
        } else if job.shrink && passes_now {
            notes.push("the request passes now: nothing to shrink".into());
        }
    } else if let Err(e) = first {
        notes.push(format!("nothing was sent: {e}"));
    }
    for (i, o) in observations.iter_mut().enumerate() {
        o.id = format!("o{}", i + 1);
    }

    let profile = classify::resolve_profile(&observations, &job.profile);
    let ctx = Context {
        profile: &profile,
        listener_tls: Some(job.listener.is_tls()),
        has_backend: job.backend.is_some(),
    };
    // One request speaks only to the causes its shape suggests: rules that read the context
    // alone (the listener's scheme) would otherwise rule things out the replay never tried.
    let spoken_to: Vec<&String> = observations
        .iter()
        .flat_map(|o| o.evidence_for.iter())
        .collect();
    let findings: Vec<_> = classify::classify(&observations, Catalogue::builtin(), &ctx)
        .into_iter()
        .filter(|f| spoken_to.contains(&&f.cause))
        .collect();
    let judged = |role| {
        let variant = if shrink_report.is_some() {
            MINIMAL
        } else {
            AS_GIVEN
        };
        observations
            .iter()
            .find(|o| o.role == role && o.variant == variant)
            .and_then(|o| o.exchange.as_ref())
    };
    let l_ex = judged(crate::target::Role::Listener);
    let b_ex = judged(crate::target::Role::Backend);
    let (origin, who) = match l_ex {
        Some(l) => attribution::attribute(l, b_ex, identify::identify(&observations).product()),
        None => (Origin::Unknown, "nothing was sent".to_string()),
    };
    let answer = classify::describe(l_ex);
    let unreachable = l_ex.is_none_or(|e| e.end.never_connected());
    let reproduced: Vec<&str> = findings
        .iter()
        .filter(|f| matches!(f.verdict, Verdict::Confirmed | Verdict::Reproduced))
        .map(|f| f.cause.as_str())
        .collect();
    let (exit_code, exit_reason) = if unreachable {
        (
            exit::UNREACHABLE,
            format!("the listener could not be reached: {answer}"),
        )
    } else if passes_now {
        (exit::OK, format!("the request passes now ({answer})"))
    } else if reproduced.is_empty() {
        (
            exit::FINDING,
            format!("the request fails ({answer}); no documented cause is reproduced by it alone"),
        )
    } else {
        (
            exit::FINDING,
            format!("the request fails ({answer}): {}", reproduced.join(", ")),
        )
    };
    ReplayReport {
        schema_version: crate::report::replay::SCHEMA_VERSION,
        tool: format!("lbprobe {}", env!("CARGO_PKG_VERSION")),
        source: job.parsed.source.to_string(),
        listener: crate::transport::mask::masked_target(&job.listener, &job.mask).url(),
        backend: job
            .backend
            .as_ref()
            .map(|b| crate::transport::mask::masked_target(b, &job.mask).url()),
        limits: job.limits,
        profile,
        request: shown(&req, &mask, &base, insecure, &job.curl),
        answer,
        origin,
        who,
        passes_now,
        shrink: shrink_report,
        findings,
        notes,
        requests_sent: engine.budget.sent(),
        duration_ms: started.elapsed().as_secs_f64() * 1000.0,
        observations,
        exit_code,
        exit_reason,
    }
}

/// A progress callback that shows nothing.
pub fn quiet() -> ProgressFn {
    Arc::new(|_| {})
}
