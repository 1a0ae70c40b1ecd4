//! The `malformed` family: each raw-request template to the listener and to the backend.

use std::sync::{Mutex, MutexGuard};

use futures_util::stream::{self, StreamExt};

use super::engine::{Engine, ErrorBudget, Side};
use super::templates::{self, Fill, Template};
use super::{Detail, Family, Observation};

/// Variants in flight at once per side.
const IN_FLIGHT: usize = 4;

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
    // Sides are probed concurrently, and a few variants at a time per side: some variants make a
    // server wait for bytes that never come, and must not hold the others up. A side that keeps
    // failing is left alone after a few tries (the error budget).
    let per_side = sides.iter().map(|side| {
        let chosen = &chosen;
        async move {
            let errors = Mutex::new(ErrorBudget::default());
            let extra = side.extra_lines();
            let sends = stream::iter(chosen.iter()).map(|template| {
                let errors = &errors;
                let extra = &extra;
                async move {
                    if lock(errors).exhausted(side.role()) {
                        return None;
                    }
                    let bytes = render(side, template, extra);
                    let (sent, exchange) = engine.send_raw(side, &bytes, template.wait).await.ok()?;
                    // A template that declares a wait expects the server to sit on it: its
                    // timeout is an answer, not a failure.
                    if template.wait.is_none() {
                        lock(errors).record(side.role(), &exchange);
                    }
                    let evidence: Vec<&str> = template.evidence_for.iter().map(String::as_str).collect();
                    Some(engine.observation(
                        Family::Malformed,
                        template.id.clone(),
                        side,
                        template.well_formed,
                        &evidence,
                        sent,
                        Some(exchange),
                        Detail::None,
                    ))
                }
            });
            let out: Vec<Observation> = sends.buffered(IN_FLIGHT).filter_map(|o| async { o }).collect().await;
            if lock(&errors).exhausted(side.role()) {
                engine.note(format!(
                    "malformed: stopped probing the {} after {} consecutive timeouts or connect failures",
                    side.role(),
                    super::engine::ERROR_BUDGET
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
