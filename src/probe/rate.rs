//! The `rate` family: a bounded ramp of request rate through the listener, to find where it
//! starts answering 503 on its own (rate limiting), with a slow check straight to the backend in
//! the same window so that a backend's own 503 is never taken for the listener's.

use std::time::Duration;

use serde::Serialize;

use super::context::{Engine, Planned, Side, Via};
use super::load::{self, LoadTarget, Pool, StepStats};
use super::{Detail, Family, Observation};
use crate::target::Role;

/// Above these a ramp is refused at load time unless the person says the target is theirs
/// (`--i-own-this-target`): a prober pointed at production must not become a load test by a typo.
pub const CEILING_RATE: f64 = 1000.0;
pub const CEILING_REQUESTS: u32 = 20_000;
pub const CEILING_DURATION: Duration = Duration::from_secs(300);

/// Parameters of a ramp. Every cap is required (defaults are safe); the engine's budget still
/// bounds the whole run, so the ramp never goes above the run's `max-rate` either.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RateSpec {
    /// Requests per second of the first step.
    pub start: f64,
    /// Each step's rate is the previous one times this.
    pub factor: f64,
    /// How long each step lasts.
    #[serde(serialize_with = "ser_secs")]
    pub step: Duration,
    /// The ramp never asks for more than this many requests per second.
    pub max_rate: f64,
    /// Requests of the ramp, listener and backend together.
    pub max_requests: u32,
    #[serde(serialize_with = "ser_secs")]
    pub max_duration: Duration,
    /// Share of a step's answers that must be 503 for the ramp to stop there (0.1 = 10%).
    pub sustain: f64,
    /// `--i-own-this-target` was given: caps above the ceiling were allowed.
    pub owner_confirmed: bool,
}

fn ser_secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

impl Default for RateSpec {
    fn default() -> Self {
        RateSpec {
            start: 5.0,
            factor: 2.0,
            step: Duration::from_secs(2),
            max_rate: 200.0,
            max_requests: 2000,
            max_duration: Duration::from_secs(30),
            sustain: 0.1,
            owner_confirmed: false,
        }
    }
}

impl RateSpec {
    /// The caps above the hard ceiling, in words (`max-rate 5000 > 1000`); empty when none is.
    pub fn above_ceiling(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.max_rate > CEILING_RATE {
            out.push(format!("max-rate {} > {CEILING_RATE}", self.max_rate));
        }
        if self.start > CEILING_RATE {
            out.push(format!("start {} > {CEILING_RATE}", self.start));
        }
        if self.max_requests > CEILING_REQUESTS {
            out.push(format!(
                "max-requests {} > {CEILING_REQUESTS}",
                self.max_requests
            ));
        }
        if self.max_duration > CEILING_DURATION {
            out.push(format!(
                "max-duration {} s > {} s",
                self.max_duration.as_secs_f64(),
                CEILING_DURATION.as_secs()
            ));
        }
        out
    }

    /// The rates of the steps, in order: `start`, times `factor`, until `max_rate` (the last
    /// step is `max_rate` itself when the factor overshoots it).
    pub fn rates(&self, cap: f64) -> Vec<f64> {
        let cap = cap.min(self.max_rate);
        let mut out = Vec::new();
        let mut r = self.start.min(cap);
        // Bounded: a factor of at least 1.05 (the loader checks) reaches any cap in < 200 steps.
        for _ in 0..200 {
            out.push(r);
            if r >= cap || self.factor <= 1.0 {
                break;
            }
            r = (r * self.factor).min(cap);
        }
        out
    }
}

/// Requests per second of the slow check straight to the backend during the ramp: enough to
/// see whether the backend itself answers 503 in the same window, too few to load it.
pub const BACKEND_CHECK_RPS: f64 = 2.0;

/// Why a ramp ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RampStop {
    /// A step's answers were 503 in at least the `sustain` share.
    Sustained503,
    /// The last step ran at the cap without sustained 503s.
    CapReached,
    MaxRequests,
    MaxDuration,
    /// The run's budget refused a request.
    Budget,
    /// Most of a step's requests got no HTTP answer: the ramp left the side alone.
    Errors,
    /// The ramp did not start (no listener, or caps above the ceiling).
    NotRun,
}

impl RampStop {
    pub fn describe(self) -> &'static str {
        match self {
            RampStop::Sustained503 => "sustained 503s",
            RampStop::CapReached => "its rate cap",
            RampStop::MaxRequests => "its request cap",
            RampStop::MaxDuration => "its time cap",
            RampStop::Budget => "the run's budget",
            RampStop::Errors => "requests without an answer",
            RampStop::NotRun => "not run",
        }
    }
}

/// Whether the ramp tried its top step a second time. A limit at about the ramp's cap shows as a
/// few refusals there, a number that jitter in the spacing decides (none in one try, a few in
/// the next); a second try gives such a limit a second chance to show, and the report a second
/// count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SecondTry {
    /// No step was borderline at the cap: no 503 at all, or a sustained share, or the ramp
    /// stopped before its cap.
    #[default]
    NotNeeded,
    /// The last entry of `steps` is the top step tried again, at the same rate and length.
    Ran,
    /// The top step was borderline but the caps (requests, time, the run's budget) left no
    /// room for a full second try.
    NoRoom,
}

/// What a ramp found on one side: the listener's steps, or the backend's slow direct check in
/// the same windows (one entry per listener step).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct RateResult {
    pub steps: Vec<StepStats>,
    pub stop: RampStop,
    /// The highest rate the ramp could ask for: its `max-rate`, or below it the run's.
    pub cap_rps: f64,
    pub sustain: f64,
    /// The achieved rate of the step where 503s became sustained (listener only).
    pub onset_rps: Option<f64>,
    /// The highest achieved rate of a step with no 503 at all, below the onset.
    pub clean_rps: Option<f64>,
    #[serde(default)]
    pub second_try: SecondTry,
}

impl RateResult {
    /// The top step and its second try, when the ramp ran one.
    pub fn tries(&self) -> Option<(&StepStats, &StepStats)> {
        match (self.second_try, self.steps.as_slice()) {
            (SecondTry::Ran, [.., first, second]) => Some((first, second)),
            _ => None,
        }
    }

    pub fn total(&self, status: u16) -> u32 {
        self.steps.iter().map(|s| s.count(status)).sum()
    }

    pub fn answers(&self) -> u32 {
        self.steps.iter().map(StepStats::answers).sum()
    }

    pub fn sent(&self) -> u32 {
        self.steps.iter().map(|s| s.sent).sum()
    }

    /// The first 503 answer the side sent, for who-wrote-it checks.
    pub fn sample(&self, status: u16) -> Option<&crate::transport::Response> {
        self.steps.iter().find_map(|s| s.samples.get(&status))
    }
}

/// The request the ramp repeats: the side's path, kept alive (no `Connection: close`).
pub fn ramp_request(side: &Side) -> Vec<u8> {
    format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: {}\r\nAccept: */*\r\n{}\r\n",
        side.target.path,
        side.target.host_header(),
        super::request::USER_AGENT,
        side.extra_lines()
    )
    .into_bytes()
}

/// The engine's budget as the generator's gate: every ramp request takes a ticket.
struct Tickets<'a>(&'a Engine);

impl load::Gate for Tickets<'_> {
    async fn admit(&self) -> bool {
        self.0.ticket().await.is_ok()
    }
}

fn target_of(engine: &Engine, side: &Side) -> LoadTarget {
    LoadTarget {
        endpoint: side.endpoint.clone(),
        request: request(side).bytes,
        bounds: engine.bounds(None),
    }
}

/// A ramp in progress: where it sends, the connections it keeps, what is left of its request
/// cap, and the steps so far on each side.
struct Ramp<'a> {
    l_target: LoadTarget,
    b_target: Option<LoadTarget>,
    backend_rps: f64,
    gate: Tickets<'a>,
    l_pool: Pool,
    b_pool: Pool,
    left: u32,
    l_steps: Vec<StepStats>,
    b_steps: Vec<StepStats>,
}

impl Ramp<'_> {
    /// One step: `rate` through the listener and the slow direct check of the backend, side by
    /// side for `length`. Returns how the listener's step ended and whether its 503s reached
    /// the `sustain` share.
    async fn step(&mut self, rate: f64, length: Duration, sustain: f64) -> (load::StepEnd, bool) {
        let b_share = if self.b_target.is_some() {
            ((self.backend_rps * length.as_secs_f64()).ceil() as u32).min(self.left / 2)
        } else {
            0
        };
        let l_share = self.left - b_share;
        let listener_step = load::paced(
            &self.l_target,
            &mut self.l_pool,
            rate,
            length,
            l_share,
            &self.gate,
        );
        let ((l, end), b) = match &self.b_target {
            Some(t) => {
                let backend_step = load::paced(
                    t,
                    &mut self.b_pool,
                    self.backend_rps,
                    length,
                    b_share,
                    &self.gate,
                );
                let (l, b) = futures_util::future::join(listener_step, backend_step).await;
                (l, Some(b.0))
            }
            None => (listener_step.await, None),
        };
        self.left = self
            .left
            .saturating_sub(l.sent + b.as_ref().map_or(0, |b| b.sent));
        let sustained = sustained(&l, sustain);
        self.l_steps.push(l);
        self.b_steps.extend(b);
        (end, sustained)
    }
}

/// Whether a step's 503s reach the `sustain` share of its answers: the ramp stops there.
pub fn sustained(step: &StepStats, sustain: f64) -> bool {
    let answers = step.answers();
    answers > 0 && f64::from(step.count(503)) >= sustain * f64::from(answers)
}

/// Whether a ramp that ended as `stop` after `steps` is borderline at its top: it reached its cap
/// with some 503s on the way, never the sustain share. Its top step is then tried once more.
pub fn borderline(stop: RampStop, steps: &[StepStats]) -> bool {
    stop == RampStop::CapReached && steps.iter().any(|s| s.count(503) > 0)
}

/// The highest achieved rate of a step that got answers and no 503 at all.
pub fn clean_rps(steps: &[StepStats]) -> Option<f64> {
    steps
        .iter()
        .filter(|s| s.count(503) == 0 && s.answers() > 0)
        .map(|s| s.achieved_rps)
        .fold(None, |m: Option<f64>, r| Some(m.map_or(r, |m| m.max(r))))
}

/// Why the ramp stops after the step it just ran, if it does.
fn stop_after(ramp: &Ramp<'_>, end: load::StepEnd, sustained: bool) -> Option<RampStop> {
    let last = ramp.l_steps.last()?;
    if sustained {
        Some(RampStop::Sustained503)
    } else if end == load::StepEnd::Refused {
        Some(RampStop::Budget)
    } else if last.sent > 0 && last.error_count() * 2 > last.sent {
        Some(RampStop::Errors)
    } else if end == load::StepEnd::Requests {
        Some(RampStop::MaxRequests)
    } else {
        None
    }
}

pub async fn run(engine: &Engine, sides: &[Side], spec: &RateSpec) -> Vec<Observation> {
    let Some(listener) = sides.iter().find(|s| s.role() == Role::Listener) else {
        engine.note("rate: the ramp runs through the listener, and the scenario names none");
        return Vec::new();
    };
    let backend = sides.iter().find(|s| s.role() == Role::Backend);
    let over = spec.above_ceiling();
    if !over.is_empty() && !spec.owner_confirmed {
        // The loader refuses these already; a plan built by hand gets the same answer.
        engine.note(format!(
            "rate: not run: {} (above the ceiling; pass --i-own-this-target if the target is yours)",
            over.join(", ")
        ));
        return Vec::new();
    }
    let run_rate = engine.budget.limits().max_rate;
    let backend_rps = if backend.is_some() {
        BACKEND_CHECK_RPS.min(spec.start)
    } else {
        0.0
    };
    // The run's max-rate bounds listener and backend together: every request takes a ticket
    // from the run's budget, which spaces them all at least 1/max-rate apart. The top step may
    // ask for all of it: the budget then lets the backend's direct check take one turn in
    // max-rate/backend-rps, and the listener sees requests at the run's max-rate between those
    // turns. Stopping short of it instead (max-rate minus the backend's share) would leave a
    // limit set at the run's max-rate, a round number both are often given, seen only through
    // jitter in the spacing: a few refusals one run, none the next.
    let cap = spec.max_rate.min(run_rate);
    if cap < spec.max_rate {
        let shared = if backend_rps > 0.0 {
            format!(", shared with the direct check of the backend at {backend_rps} rps")
        } else {
            String::new()
        };
        engine.note(format!(
            "rate: the ramp stops at {cap} rps, the run's max-rate{shared}, below its own max-rate ({} rps); raise limits.max-rate to ramp higher",
            spec.max_rate
        ));
    }
    let rates = spec.rates(cap);
    let mut ramp = Ramp {
        l_target: target_of(engine, listener),
        b_target: backend.map(|b| target_of(engine, b)),
        backend_rps,
        gate: Tickets(engine),
        l_pool: Pool::default(),
        b_pool: Pool::default(),
        left: spec.max_requests,
        l_steps: Vec::new(),
        b_steps: Vec::new(),
    };
    // The probes before the ramp sent their last requests just now: the first step keeps its
    // spacing from them, so a limiter does not count them against the ramp's first step.
    ramp.l_pool.sent_now();
    ramp.b_pool.sent_now();
    let started = tokio::time::Instant::now();
    let time_cap = spec.max_duration.min(engine.budget.remaining());
    let mut stop = RampStop::CapReached;
    let mut onset = None;
    for (i, &rate) in rates.iter().enumerate() {
        let length = spec.step.min(time_cap.saturating_sub(started.elapsed()));
        if length < Duration::from_millis(200) {
            stop = RampStop::MaxDuration;
            break;
        }
        if ramp.left == 0 {
            stop = RampStop::MaxRequests;
            break;
        }
        let (end, sustained) = ramp.step(rate, length, spec.sustain).await;
        if let Some(s) = stop_after(&ramp, end, sustained) {
            stop = s;
            if sustained {
                onset = ramp.l_steps.last().map(|s| s.achieved_rps);
            }
            break;
        }
        if i + 1 == rates.len() {
            stop = RampStop::CapReached;
        }
    }
    // The top step was borderline: some 503s in the ramp, never the sustain share. Try it once
    // more, at the same rate and length, when the caps leave room for all of it.
    let mut second_try = SecondTry::NotNeeded;
    if let (true, Some(&rate)) = (borderline(stop, &ramp.l_steps), rates.last()) {
        let need = (rate * spec.step.as_secs_f64()).ceil() as u32
            + (ramp.backend_rps * spec.step.as_secs_f64()).ceil() as u32;
        let run_left = engine
            .budget
            .limits()
            .max_requests
            .saturating_sub(engine.budget.sent());
        let time_left = time_cap.saturating_sub(started.elapsed());
        if ramp.left >= need && run_left >= need && time_left >= spec.step {
            second_try = SecondTry::Ran;
            let (end, sustained) = ramp.step(rate, spec.step, spec.sustain).await;
            if let Some(s) = stop_after(&ramp, end, sustained) {
                stop = s;
                if sustained {
                    onset = ramp.l_steps.last().map(|s| s.achieved_rps);
                }
            }
        } else {
            second_try = SecondTry::NoRoom;
            engine.note(format!(
                "rate: the ramp got a few 503s, never the sustain share, and the caps left no room to try its top step ({rate} rps) again ({need} requests and {} s needed)",
                spec.step.as_secs_f64()
            ));
        }
    }
    let Ramp {
        l_target,
        b_target,
        l_steps,
        b_steps,
        ..
    } = ramp;
    // The second try is not a step of its own: a clean second try does not clean its rate.
    let first_tries = match second_try {
        SecondTry::Ran => &l_steps[..l_steps.len().saturating_sub(1)],
        _ => &l_steps[..],
    };
    let clean = clean_rps(first_tries);
    let result = |steps: Vec<StepStats>, onset, clean| RateResult {
        steps,
        stop,
        cap_rps: cap,
        sustain: spec.sustain,
        onset_rps: onset,
        clean_rps: clean,
        second_try,
    };
    let mut out = vec![engine.observation(
        Family::Rate,
        "ramp",
        listener,
        true,
        &["503.rate-limited", "503.no-backends"],
        engine.sent(&listener.endpoint, &l_target.request, true),
        None,
        Detail::Rate(result(l_steps, onset, clean)),
    )];
    if let (Some(side), Some(t)) = (backend, &b_target) {
        out.push(engine.observation(
            Family::Rate,
            "ramp",
            side,
            true,
            &["503.rate-limited", "503.backend-error"],
            engine.sent(&side.endpoint, &t.request, true),
            None,
            Detail::Rate(result(b_steps, None, None)),
        ));
    }
    out
}

/// The request the ramp repeats to a side, over the load generator's own connections.
fn request(side: &Side) -> Planned {
    side.planned(Family::Rate, "ramp", Via::OwnConnection, ramp_request(side))
}

/// The request the ramp repeats to each side, once each: how often depends on the answers (see
/// [`rest`]). Nothing without a listener, or with caps above the ceiling not confirmed: the
/// run does not ramp then.
pub fn plan(sides: &[Side], spec: &RateSpec) -> Vec<Planned> {
    let runs = sides.iter().any(|s| s.role() == Role::Listener)
        && (spec.owner_confirmed || spec.above_ceiling().is_empty());
    if !runs {
        return Vec::new();
    }
    sides.iter().map(request).collect()
}

/// How often the ramp repeats its request: the steps' rates under the run's `max_rate`, and
/// when it stops.
pub fn rest(spec: &RateSpec, run_max_rate: f64, backend: bool) -> String {
    let cap = spec.max_rate.min(run_max_rate);
    let rates: Vec<String> = spec.rates(cap).iter().map(|r| format!("{r}")).collect();
    let capped = if cap < spec.max_rate {
        format!(
            " (its own max-rate, {} rps, is above the run's max-rate)",
            spec.max_rate
        )
    } else {
        String::new()
    };
    let direct = if backend {
        format!(
            "; the backend gets it directly at {} rps meanwhile",
            BACKEND_CHECK_RPS.min(spec.start)
        )
    } else {
        String::new()
    };
    format!(
        "rate repeats its request through the listener at {} rps{capped}, {} s a step, after every other family, until {:.0}% of a step's answers are 503 or a cap is reached (at most {} requests){direct}",
        rates.join("→"),
        spec.step.as_secs_f64(),
        spec.sustain * 100.0,
        spec.max_requests
    )
}
