//! The `malformed` family: each raw-request template to the listener and to the backend.

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use futures_util::stream::{self, StreamExt};
use tokio::sync::Semaphore;

use crate::target::Role;

use super::context::{Engine, ErrorBudget, Planned, Side, Via, ERROR_BUDGET};
use super::engine::all_at_once;
use super::templates::{self, Fill, Strict, Template};
use super::{Detail, Family, Observation};

/// Variants in flight at once per side (besides the waiting ones). Enough to keep the run's rate
/// busy at a side that takes seconds to refuse (50/s × 2.5 s is 125 in flight over both sides);
/// how fast they start is the budget's rate, and their tickets queue a few at a time
/// ([`Engine::bulk_ticket`]).
const IN_FLIGHT: usize = 64;
/// Variants that may sit waiting at once per side: every waiting template of the catalogue.
const MAX_WAITING: usize = 64;
/// How long a `must-close` template's connection is watched after the answer. Servers that
/// close do it at once (loopback: within milliseconds); one that keeps it open costs this.
pub const LINGER: Duration = Duration::from_secs(1);

/// Adds its permit when dropped: a backend template has its ticket, or will never ask for one.
struct Ticketed<'a>(Option<&'a Semaphore>);

impl Drop for Ticketed<'_> {
    fn drop(&mut self) {
        if let Some(s) = self.0 {
            s.add_permits(1);
        }
    }
}

fn lock(m: &Mutex<ErrorBudget>) -> MutexGuard<'_, ErrorBudget> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The exact bytes of a template for a side; `extra` is the side's extra header lines.
pub fn render(side: &Side, template: &Template, extra: &str) -> Vec<u8> {
    template.render(&Fill {
        method: "GET",
        path: &side.target.path,
        host: &side.target.host_header(),
        extra,
    })
}

/// A template as it is sent to a side: its exact bytes through the engine.
fn request(side: &Side, template: &Template, extra: &str) -> Planned {
    side.planned(
        Family::Malformed,
        template.id.clone(),
        Via::Raw,
        render(side, template, extra),
    )
    .waiting(template.wait)
}

/// Every template the run sends a side, in catalogue order.
pub fn plan(side: &Side, only: Option<&[String]>, owner_confirmed: bool) -> Vec<Planned> {
    let extra = side.extra_lines();
    chosen(only, owner_confirmed)
        .into_iter()
        .map(|t| request(side, t, &extra))
        .collect()
}

/// The templates a run uses: all, or the ones named; a name that is a tag (`te`, `host`)
/// stands for every template with that tag. The keep-alive sequences (tag `smuggling`) run
/// only when named, and those that leave a second request behind only for an owner.
pub fn chosen(only: Option<&[String]>, owner_confirmed: bool) -> Vec<&'static Template> {
    named(only)
        .into_iter()
        .filter(|t| owner_confirmed || !t.leaves_request)
        .collect()
}

fn named(only: Option<&[String]>) -> Vec<&'static Template> {
    templates::malformed()
        .iter()
        .filter(|t| match only {
            None => !t.is_sequence(),
            Some(names) => names.iter().any(|n| n == &t.id || t.has_tag(n)),
        })
        .collect()
}

/// What a plan or a run says of the keep-alive sequences it was asked for: what they do, and
/// those left out for want of `--i-own-this-target`.
pub fn sequence_notes(only: Option<&[String]>, owner_confirmed: bool) -> Vec<String> {
    let asked: Vec<&Template> = named(only)
        .into_iter()
        .filter(|t| t.is_sequence())
        .collect();
    if asked.is_empty() {
        return Vec::new();
    }
    let mut notes = vec![format!(
        "malformed: {} keep-alive sequence(s) (tag smuggling), each one connection with the bytes of several requests; the answers on it are counted and its close watched. Through a listener a desync can reach a backend connection it shares with other clients: run them against a target you own",
        asked.len()
    )];
    let held: Vec<&str> = asked
        .iter()
        .filter(|t| t.leaves_request && !owner_confirmed)
        .map(|t| t.id.as_str())
        .collect();
    if !held.is_empty() {
        notes.push(format!(
            "malformed: not sent, they leave a second request behind (a GET of the target's own path marked X-Lbprobe-Smuggled) that could reach another client's response queue; --i-own-this-target sends them: {}",
            held.join(", ")
        ));
    }
    notes
}

pub async fn run(engine: &Engine, sides: &[Side], only: Option<&[String]>) -> Vec<Observation> {
    let chosen = chosen(only, engine.owner_confirmed());
    for note in sequence_notes(only, engine.owner_confirmed()) {
        engine.note(note);
    }
    // Templates a server may sit on (a body that never comes) go out all at once, beside the
    // others: each waits out its own bound, and the catalogue takes as long as the longest
    // wait rather than the sum of the waits. The rest go a few at a time per side. A side
    // that keeps failing is left alone after a few tries (the error budget).
    // A must-close template is watched after its answer, a sequence reads its connection to
    // the end: they wait too.
    let sits = |t: &Template| t.wait.is_some() || t.must_close || t.is_sequence();
    let (waiting, mut quick): (Vec<&Template>, Vec<&Template>) =
        chosen.iter().partition(|t| sits(t));
    // The requests a listener should pass on (valid ones, and those a strict server accepts)
    // go first: their answers come from behind it, at the backend's pace, while the listener
    // refuses the rest itself at once. Sent last, one backend slow to answer would hold the
    // run for its whole wait after the last ticket.
    quick.sort_by_key(|t| !(t.well_formed || t.strict == Strict::Accept));
    // With both sides, the backend's quick templates take their tickets before the listener's:
    // an application slow to say no holds its answers for seconds, while a listener refuses
    // most malformed bytes itself at once. Its quick answers then fill the end of the run
    // instead of a backend's slow ones holding the run past its last ticket. One permit per
    // backend template once it has its ticket (or never will).
    let both = sides.iter().any(|s| s.role() == Role::Backend)
        && sides.iter().any(|s| s.role() == Role::Listener);
    let backend_first = Semaphore::new(0);
    let backend_first = &backend_first;
    let per_side = sides.iter().map(|side| {
        let (waiting, quick) = (&waiting, &quick);
        async move {
            let errors = Mutex::new(ErrorBudget::default());
            let extra = side.extra_lines();
            let send = |template: &'static Template| {
                let (errors, extra) = (&errors, &extra);
                async move {
                    let ticketed = Ticketed(
                        (both && side.role() == Role::Backend && !sits(template))
                            .then_some(backend_first),
                    );
                    if lock(errors).exhausted(side.role()) {
                        return None;
                    }
                    let planned = request(side, template, extra);
                    let (sent, exchange, detail) = if template.is_sequence() {
                        drop(ticketed);
                        let (sent, exchange, result) = engine
                            .send_planned_sequence(&planned, template.wait)
                            .await
                            .ok()?;
                        (sent, exchange, Detail::Sequence(result))
                    } else if template.must_close {
                        drop(ticketed);
                        let (sent, exchange, after) = engine
                            .send_planned_watching_close(&planned, template.wait, LINGER)
                            .await
                            .ok()?;
                        (sent, exchange, Detail::AfterAnswer(after))
                    } else {
                        engine.bulk_ticket().await.ok()?;
                        drop(ticketed);
                        let (sent, exchange) =
                            engine.exchange_planned(&planned, template.wait).await.ok()?;
                        (sent, exchange, Detail::None)
                    };
                    // A template that declares a wait expects the server to sit on it: its
                    // timeout is an answer, not a failure.
                    if template.wait.is_none() {
                        lock(errors).record(side.role(), &exchange);
                    }
                    let evidence: Vec<&str> =
                        template.evidence_for.iter().map(String::as_str).collect();
                    Some(engine.observation(
                        Family::Malformed,
                        planned.variant,
                        side,
                        template.well_formed,
                        &evidence,
                        sent,
                        Some(exchange),
                        detail,
                    ))
                }
            };
            let waits = stream::iter(waiting.iter().copied())
                .map(send)
                .buffer_unordered(MAX_WAITING)
                .filter_map(|o| async { o })
                .collect::<Vec<Observation>>();
            let listener_waits = both && side.role() == Role::Listener;
            let quick = stream::once(async move {
                if listener_waits {
                    // Never closed; a failed acquire only means no wait.
                    let _ = backend_first.acquire_many(quick.len() as u32).await;
                }
            })
            .flat_map(|()| stream::iter(quick.iter().copied()))
            .map(send)
                .buffer_unordered(IN_FLIGHT)
                .filter_map(|o| async { o })
                .collect::<Vec<Observation>>();
            // The waits first: their tickets are asked for before the quick ones', so the
            // longest waits start at the beginning of the run, not at its end.
            let (mut out, quick) = futures_util::future::join(waits, quick).await;
            out.extend(quick);
            if lock(&errors).exhausted(side.role()) {
                engine.note(format!(
                    "malformed: stopped probing the {} after {} consecutive timeouts or connect failures",
                    side.role(),
                    ERROR_BUDGET
                ));
            }
            out
        }
    });
    all_at_once(per_side).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_chooses_every_template_with_it_and_ids_still_work() {
        let te = chosen(Some(&["te".to_string()]), false);
        assert!(te.len() >= 10, "{}", te.len());
        assert!(te.iter().all(|t| t.has_tag("te")));
        assert!(te
            .iter()
            .any(|t| t.id == "content-length-and-transfer-encoding"));
        let mixed = chosen(Some(&["host".to_string(), "obs-fold".to_string()]), false);
        assert!(mixed.iter().any(|t| t.id == "obs-fold"));
        assert!(mixed.iter().any(|t| t.id == "host-missing"));
        assert!(mixed
            .iter()
            .all(|t| t.id == "obs-fold" || t.has_tag("host")));
        let sequences = templates::malformed()
            .iter()
            .filter(|t| t.is_sequence())
            .count();
        assert!(sequences > 0);
        assert_eq!(
            chosen(None, true).len(),
            templates::malformed().len() - sequences
        );
    }

    /// The sequences run only when named, and those that leave a request behind only for an
    /// owner; the notes say which were held back and why.
    #[test]
    fn sequences_run_only_when_named_and_full_ones_only_for_an_owner() {
        assert!(chosen(None, true).iter().all(|t| !t.is_sequence()));
        assert!(sequence_notes(None, false).is_empty());
        let named = ["smuggling".to_string()];
        let timing = chosen(Some(&named), false);
        assert!(!timing.is_empty());
        assert!(timing.iter().all(|t| t.is_sequence() && !t.leaves_request));
        let full = chosen(Some(&named), true);
        assert!(full.len() > timing.len());
        assert!(full.iter().any(|t| t.leaves_request));
        let notes = sequence_notes(Some(&named), false).join("\n");
        assert!(notes.contains("--i-own-this-target"), "{notes}");
        assert!(notes.contains("smuggle-cl-te-pipelined-get"), "{notes}");
        let notes = sequence_notes(Some(&named), true).join("\n");
        assert!(!notes.contains("not sent"), "{notes}");
        // A tag another sequence's bytes touch does not pick it.
        assert!(chosen(Some(&["te".to_string()]), true)
            .iter()
            .all(|t| !t.is_sequence()));
    }
}
