//! `lbprobe probes`: the malformed-request templates, as a table for people or as JSON.

use crate::probe::templates::{Strict, Template};

use super::Format;

/// The listing of `chosen` (all templates, or those of one tag) in `format` (human or JSON).
pub fn listing(chosen: &[&Template], format: Format) -> String {
    if format == Format::Json {
        let list: Vec<serde_json::Value> = chosen
            .iter()
            .map(|t| {
                serde_json::json!({
                    "id": t.id,
                    "tags": t.tags,
                    "summary": t.summary,
                    "rfc": t.rfc,
                    "strict": t.strict,
                    "strict_status": t.strict_status,
                    "wait_ms": t.wait.map(|w| w.as_millis() as u64),
                    "evidence_for": t.evidence_for,
                })
            })
            .collect();
        return super::schema::to_json(
            super::schema::Kind::Probes,
            &serde_json::json!({ "templates": list }),
        );
    }
    let mut text = String::new();
    for t in chosen {
        text.push_str(&format!(
            "{:<40} {:<22} {:<20} {}\n    {} · {}\n",
            t.id,
            t.tags.join(","),
            strict(t),
            t.evidence_for.join(", "),
            t.rfc,
            t.summary
        ));
    }
    text.push_str(&format!(
        "{} templates (probes/malformed.yaml); `variants:` in a scenario selects by id or tag\n",
        chosen.len()
    ));
    text
}

/// What a strict server does with the template: `reject (400)`, `close`, …
fn strict(t: &Template) -> String {
    let word = match t.strict {
        Strict::Accept => "accept",
        Strict::Reject => "reject",
        Strict::Close => "close",
        Strict::Any => "any",
    };
    if t.strict_status.is_empty() {
        word.to_string()
    } else {
        let codes: Vec<String> = t.strict_status.iter().map(u16::to_string).collect();
        format!("{word} ({})", codes.join("/"))
    }
}
