//! The `malformed` family: each raw-request template to the listener and to the backend.

use super::engine::{Engine, ErrorBudget, Side};
use super::templates::{self, Fill, Template};
use super::{Detail, Family, Observation};

/// The exact bytes of a template for a side; `extra` is the side's extra header lines.
pub fn render(side: &Side, template: &Template, extra: &str) -> Vec<u8> {
    template.render(&Fill {
        method: "GET",
        path: &side.target.path,
        host: &side.target.host_header(),
        extra,
    })
}

/// The templates a run uses: all, or the ones named.
pub fn chosen(only: Option<&[String]>) -> Vec<&'static Template> {
    templates::malformed()
        .iter()
        .filter(|t| only.is_none_or(|ids| ids.iter().any(|id| id == &t.id)))
        .collect()
}

pub async fn run(engine: &Engine, sides: &[Side], only: Option<&[String]>) -> Vec<Observation> {
    let chosen = chosen(only);
    // Sides are probed concurrently; variants one after the other per side, so that a side that
    // keeps timing out is left alone after a few tries.
    let per_side = sides.iter().map(|side| {
        let chosen = &chosen;
        async move {
            let mut errors = ErrorBudget::default();
            let mut out = Vec::new();
            let extra = side.extra_lines();
            for template in chosen.iter() {
                if errors.exhausted(side.role()) {
                    engine.note(format!(
                        "malformed: stopped probing the {} after {} consecutive timeouts or connect failures",
                        side.role(),
                        super::engine::ERROR_BUDGET
                    ));
                    break;
                }
                let bytes = render(side, template, &extra);
                let Ok((sent, exchange)) = engine.send_raw(side, &bytes, template.wait).await else {
                    break;
                };
                errors.record(side.role(), &exchange);
                let evidence: Vec<&str> = template.evidence_for.iter().map(String::as_str).collect();
                out.push(engine.observation(
                    Family::Malformed,
                    template.id.clone(),
                    side,
                    template.well_formed,
                    &evidence,
                    sent,
                    Some(exchange),
                    Detail::None,
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
