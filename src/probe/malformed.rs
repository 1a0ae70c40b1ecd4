//! The `malformed` family: each raw-request template to the listener and to the backend.

use std::sync::{Mutex, MutexGuard};

use futures_util::stream::{self, StreamExt};

use super::context::{Engine, ErrorBudget, Planned, Side, Via, ERROR_BUDGET};
use super::templates::{self, Fill, Template};
use super::{Detail, Family, Observation};

/// Variants in flight at once per side (besides the waiting ones).
const IN_FLIGHT: usize = 8;
/// Variants that may sit waiting at once per side: every waiting template of the catalogue.
const MAX_WAITING: usize = 64;

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
}

/// Every template the run sends a side, in catalogue order.
pub fn plan(side: &Side, only: Option<&[String]>) -> Vec<Planned> {
    let extra = side.extra_lines();
    chosen(only)
        .into_iter()
        .map(|t| request(side, t, &extra))
        .collect()
}

/// The templates a run uses: all, or the ones named; a name that is a tag (`te`, `host`)
/// stands for every template with that tag.
pub fn chosen(only: Option<&[String]>) -> Vec<&'static Template> {
    templates::malformed()
        .iter()
        .filter(|t| only.is_none_or(|names| names.iter().any(|n| n == &t.id || t.has_tag(n))))
        .collect()
}

pub async fn run(engine: &Engine, sides: &[Side], only: Option<&[String]>) -> Vec<Observation> {
    let chosen = chosen(only);
    // Templates a server may sit on (a body that never comes) go out all at once, beside the
    // others: each waits out its own bound, and the catalogue takes as long as the longest
    // wait rather than the sum of the waits. The rest go a few at a time per side. A side
    // that keeps failing is left alone after a few tries (the error budget).
    let (waiting, quick): (Vec<&Template>, Vec<&Template>) =
        chosen.iter().partition(|t| t.wait.is_some());
    let per_side = sides.iter().map(|side| {
        let (waiting, quick) = (&waiting, &quick);
        async move {
            let errors = Mutex::new(ErrorBudget::default());
            let extra = side.extra_lines();
            let send = |template: &'static Template| {
                let (errors, extra) = (&errors, &extra);
                async move {
                    if lock(errors).exhausted(side.role()) {
                        return None;
                    }
                    let planned = request(side, template, extra);
                    let (sent, exchange) =
                        engine.send_planned(&planned, template.wait).await.ok()?;
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
                        Detail::None,
                    ))
                }
            };
            let waits = stream::iter(waiting.iter().copied())
                .map(send)
                .buffer_unordered(MAX_WAITING)
                .filter_map(|o| async { o })
                .collect::<Vec<Observation>>();
            let quick = stream::iter(quick.iter().copied())
                .map(send)
                .buffered(IN_FLIGHT)
                .filter_map(|o| async { o })
                .collect::<Vec<Observation>>();
            let (mut out, waited) = futures_util::future::join(quick, waits).await;
            out.extend(waited);
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
    futures_util::future::join_all(per_side)
        .await
        .into_iter()
        .flatten()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_chooses_every_template_with_it_and_ids_still_work() {
        let te = chosen(Some(&["te".to_string()]));
        assert!(te.len() >= 10, "{}", te.len());
        assert!(te.iter().all(|t| t.has_tag("te")));
        assert!(te
            .iter()
            .any(|t| t.id == "content-length-and-transfer-encoding"));
        let mixed = chosen(Some(&["host".to_string(), "obs-fold".to_string()]));
        assert!(mixed.iter().any(|t| t.id == "obs-fold"));
        assert!(mixed.iter().any(|t| t.id == "host-missing"));
        assert!(mixed
            .iter()
            .all(|t| t.id == "obs-fold" || t.has_tag("host")));
        assert_eq!(chosen(None).len(), templates::malformed().len());
    }
}
