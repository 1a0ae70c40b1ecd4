//! Runs a plan: the opening (sniffs, baselines, h2 detection, silent sides), then every family
//! through [`families::run`], under one budget, and the observations masked and numbered.

use crate::profile::Profile;
use crate::target::{Role, Target};
use crate::transport::mask::Mask;

use super::budget::{Exhausted, Interrupt};
use super::context::{is_silent, Engine, Settings, Side};
use super::context::{Progress, ProgressFn};
use super::floor::{self, Floor};
use super::{families, h2, protocol};
use super::{Family, Limits, Observation, ProbeSpec};

/// Kept where callers found it before transport took it over.
pub use crate::transport::marker::MarkerPlace;
pub use crate::transport::mask::{insert_marker, MARKER_HEADER};

/// Everything a run needs; built from a scenario or from `scan` flags.
#[derive(Debug, Clone)]
pub struct Plan {
    pub listener: Option<Target>,
    pub backend: Option<Target>,
    pub profile: Profile,
    pub probes: Vec<ProbeSpec>,
    pub limits: Limits,
    /// Header names whose values are masked in every recorded request (besides the defaults).
    pub mask: Vec<String>,
    /// Add `X-Lbprobe-Id: <run>-<n>` to every raw request, so that a capture on the backend
    /// host can tell which probes reached it. Off by default: it changes the bytes sent.
    pub marker: bool,
    /// Where the marker goes: the header, or the query string for a listener whose access log
    /// logs the request line but no header.
    pub marker_place: MarkerPlace,
    /// Every member of the backend pool behind the listener, when there are several: the
    /// `pool` family asks each directly. `backend` stays the one compared side by side.
    pub pool: Vec<Target>,
    /// `--i-own-this-target`: the person says the target is theirs (the malformed family's
    /// sequences that leave a second request behind run only then).
    pub owner_confirmed: bool,
}

impl Plan {
    /// The run's masking: the plan's header names and the secrets its targets send. The run and
    /// the dry run both record requests through it.
    pub fn mask(&self) -> Mask {
        Mask::new(
            &self.mask,
            self.listener
                .iter()
                .chain(self.backend.iter())
                .chain(self.pool.iter()),
        )
    }
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct RunOutput {
    pub observations: Vec<Observation>,
    /// Things the person should know: skipped probes, adjusted wires, caps reached.
    pub notes: Vec<String>,
    pub requests_sent: u32,
    /// True when a cap stopped probes before they finished.
    pub partial: bool,
    /// The run's own cap (requests or duration) that stopped probes, in words; `None` when
    /// none did (an interrupt is not a cap).
    pub cut_short: Option<String>,
    /// The least time any schedule of these requests could take (see [`floor`]).
    pub floor: Floor,
}

/// A run id for markers: distinct across runs on one host without a random-number crate.
fn run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mixed = (nanos as u64) ^ (u64::from(std::process::id()) << 32);
    format!("{:08x}", (mixed ^ (mixed >> 29)) as u32)
}

/// The one note for the silent sides: what they did and which families leave them out.
fn silence_note(silent: &[Role], probes: &[ProbeSpec], sides: &[Side]) -> Option<String> {
    if silent.is_empty() {
        return None;
    }
    let who: Vec<String> = sides
        .iter()
        .filter(|s| silent.contains(&s.role()))
        .map(|s| format!("the {} {}", s.role(), s.endpoint.label()))
        .collect();
    let skipped: Vec<&str> = probes
        .iter()
        .filter(|p| p.needs_answers())
        .map(|p| p.family().as_str())
        .collect();
    let skips = if skipped.is_empty() {
        String::new()
    } else {
        format!("; {} skip it", skipped.join(", "))
    };
    Some(format!(
        "{} accepted the connection but sent no complete answer to a valid GET within the request timeout: declared silent{skips}; latency takes its baseline for its one request, or sends one beside an answering listener",
        who.join(" and ")
    ))
}

/// Run the plan. Never prints; progress goes to `progress`.
pub async fn run(plan: &Plan, progress: ProgressFn) -> RunOutput {
    run_interruptible(plan, progress, Interrupt::new()).await
}

/// Run the plan until `interrupt` is triggered: from then on no request is sent, the
/// exchanges in flight finish (long waits are dropped) and the output, marked partial, holds
/// what ran.
pub async fn run_interruptible(
    plan: &Plan,
    progress: ProgressFn,
    interrupt: Interrupt,
) -> RunOutput {
    let engine = Engine::new(
        Settings {
            limits: plan.limits,
            profile: plan.profile.clone(),
            mask: plan.mask(),
            marker: plan.marker.then(run_id),
            marker_place: plan.marker_place,
            owner_confirmed: plan.owner_confirmed,
        },
        progress.clone(),
        interrupt.clone(),
    );
    if let Some(run) = engine.marker() {
        engine.note(format!(
            "raw requests carry {} (run {run}), the methods sent through the HTTP client too; keep-alive trials and the rate ramp (over connections of their own) do not{}",
            plan.marker_place.shown(run),
            match plan.marker_place {
                MarkerPlace::Query => "; nor do the uri-limit family's requests, whose request targets are the size it measures, nor a request whose request line is not a plain `METHOD /path HTTP/x.y`",
                MarkerPlace::Header => "",
            }
        ));
    }
    let families: Vec<Family> = plan.probes.iter().map(ProbeSpec::family).collect();
    progress(Progress::Planned {
        families: families.clone(),
    });

    let listener = plan.listener.as_ref().map(Side::of);
    let backend = plan.backend.as_ref().map(Side::of);

    // The opening of both sides at once, and of each side every step at once (see
    // `protocol::open`): a side that answers nothing costs its timeout once. The sniff decides
    // how the backend's direct probes talk to its port; the baseline (a valid GET to each side)
    // always runs: reachability and the backend's own answer to a valid request are what every
    // comparison leans on; whether TLS sides speak h2 decides whether the client-library checks
    // run over it too.
    let want_protocol = families.contains(&Family::Protocol);
    let listener_opening = protocol::Opening {
        sniff: want_protocol,
        rewire: false,
        cross: want_protocol,
        alpn: families.iter().any(|f| h2::FAMILIES.contains(f)),
    };
    // The backend sniff always runs: direct probes over the wrong wire would be noise.
    let backend_opening = protocol::Opening {
        sniff: true,
        rewire: true,
        ..listener_opening
    };
    let opened = futures_util::future::join_all(
        listener
            .map(|side| protocol::open(&engine, side, listener_opening))
            .into_iter()
            .chain(backend.map(|side| protocol::open(&engine, side, backend_opening))),
    )
    .await;
    let mut observations = Vec::new();
    let mut sides = Vec::new();
    let mut sniffs = Vec::new();
    for opened in opened {
        observations.extend(opened.observations);
        sides.push(opened.side);
        sniffs.extend(opened.pending);
    }
    let sides = sides;
    progress(Progress::Observed {
        observations: engine.masked(&observations),
    });
    // Sniffs the opening did not wait for end beside the families; the protocol family is done
    // when they are.
    let sniffs = {
        let (engine, progress) = (&engine, progress.clone());
        async move {
            let obs: Vec<Observation> = futures_util::future::join_all(sniffs)
                .await
                .into_iter()
                .flatten()
                .collect();
            progress(Progress::Observed {
                observations: engine.masked(&obs),
            });
            if want_protocol {
                progress(Progress::FamilyDone {
                    family: Family::Protocol,
                });
            }
            obs
        }
    };
    // A side that accepted the connection and never answered the valid GET (or only trickled
    // bytes) within the request timeout is declared silent once: the families that need
    // answers skip it instead of each waiting out its timeouts there. The timing families still
    // measure it (a hung backend is the verdict), with one request where they would send many.
    let silent: Vec<Role> = sides
        .iter()
        .filter(|side| {
            observations.iter().any(|o| {
                o.family == Family::Protocol
                    && o.variant == "baseline"
                    && o.role == side.role()
                    && o.exchange.as_ref().is_some_and(is_silent)
            })
        })
        .map(Side::role)
        .collect();
    let answering: Vec<Side> = sides
        .iter()
        .filter(|s| !silent.contains(&s.role()))
        .cloned()
        .collect();
    if let Some(skipped) = silence_note(&silent, &plan.probes, &sides) {
        engine.note(skipped);
    }
    for o in observations.iter().filter(|o| {
        o.family == Family::Protocol && o.variant == "baseline" && silent.contains(&o.role)
    }) {
        engine.declare_silent(o.clone());
    }
    let mut work = Vec::new();
    let mut alone = Vec::new();
    for spec in &plan.probes {
        let engine = &engine;
        let sides = if spec.needs_answers() {
            &answering
        } else {
            &sides
        };
        let progress = progress.clone();
        let probe = async move {
            let obs = families::run(spec, engine, sides, &plan.pool).await;
            if spec.family() != Family::Protocol {
                progress(Progress::Observed {
                    observations: engine.masked(&obs),
                });
                progress(Progress::FamilyDone {
                    family: spec.family(),
                });
            }
            obs
        };
        if spec.runs_alone() {
            alone.push(probe);
        } else {
            work.push(probe);
        }
    }
    let (work, sniffed) =
        futures_util::future::join(futures_util::future::join_all(work), sniffs).await;
    observations.extend(sniffed);
    for obs in work {
        observations.extend(obs);
    }
    // After the others, one at a time: a load ramp that trips a rate limit would turn the
    // other probes' answers into 503s and their timings into queueing delays.
    for probe in alone {
        observations.extend(probe.await);
    }

    // Every family's answers pass through one mask before they are kept: some families build
    // their exchanges outside the engine's send functions.
    for o in observations.iter_mut() {
        if let Some(ex) = o.exchange.as_mut() {
            engine.mask_response(ex);
        }
    }
    // Stable ids in a stable order: family, variant, role, then send order.
    observations.sort_by(|a, b| {
        (a.family, &a.variant, a.role, id_num(&a.id)).cmp(&(
            b.family,
            &b.variant,
            b.role,
            id_num(&b.id),
        ))
    });
    for (i, o) in observations.iter_mut().enumerate() {
        o.id = format!("o{}", i + 1);
    }

    // The floor names its longest wait from the plan: each family's declared waits.
    let mut planned = families::opening(&sides, want_protocol).requests;
    for spec in &plan.probes {
        planned.extend(families::plan_in(plan, spec, &sides).requests);
    }
    let floor = floor::floor(
        engine.budget.sent(),
        plan.limits.max_rate,
        &observations,
        &floor::declared(&planned),
        plan.limits.request_timeout,
    );

    let mut notes = engine.notes();
    let partial = engine.budget.refusal().is_some() || interrupt.is_triggered();
    if let Some(why) = engine.budget.refusal() {
        notes.push(format!("stopped early: {why}; the report covers what ran"));
    }
    if interrupt.is_triggered() && engine.budget.refusal() != Some(Exhausted::Interrupted) {
        notes.push(format!(
            "stopped early: {}; the report covers what ran",
            Exhausted::Interrupted
        ));
    }
    RunOutput {
        observations,
        notes,
        requests_sent: engine.budget.sent(),
        partial,
        cut_short: engine
            .budget
            .refusal()
            .filter(|why| *why != Exhausted::Interrupted)
            .map(|why| why.to_string()),
        floor,
    }
}

fn id_num(id: &str) -> u32 {
    id.trim_start_matches("tmp").parse().unwrap_or(0)
}

/// The observations of work run at once (sides that do not disturb each other, requests sent
/// side by side), in the order the work was given: the fan-out every family shares.
pub(crate) async fn all_at_once<F, O>(work: impl IntoIterator<Item = F>) -> Vec<Observation>
where
    F: std::future::Future<Output = O>,
    O: IntoIterator<Item = Observation>,
{
    futures_util::future::join_all(work)
        .await
        .into_iter()
        .flatten()
        .collect()
}
