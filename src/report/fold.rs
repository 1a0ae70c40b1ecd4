//! Long lists made short for people: template ids counted by kind, findings counted by code.
//! The JSON report keeps every item; these only shape what a person reads first.

use std::collections::BTreeMap;

use crate::classify::Finding;
use crate::plural;
use crate::probe::templates::{self, TAGS};

/// Lists up to this long are shown whole.
pub const LIST_WHOLE: usize = 6;

/// The evidence of `f` a person is shown first: all of it when `verbose`, else the first
/// [`LIST_WHOLE`] facts.
pub fn evidence_shown(f: &Finding, verbose: bool) -> &[crate::classify::Evidence] {
    let shown = if verbose {
        f.evidence.len()
    } else {
        f.evidence.len().min(LIST_WHOLE)
    };
    &f.evidence[..shown]
}

/// The kind a template is counted under: its first tag (a template that is both
/// content-length and te counts once, under the kind it lists first).
fn kind_of(id: &str) -> &'static str {
    templates::malformed()
        .iter()
        .find(|t| t.id == id)
        .and_then(|t| t.tags.first())
        .and_then(|tag| TAGS.iter().copied().find(|k| k == tag))
        .unwrap_or("other")
}

/// Whether every item names a malformed-request template.
fn all_templates(ids: &[&str]) -> bool {
    !ids.is_empty()
        && ids
            .iter()
            .all(|id| templates::malformed_ids().any(|t| t == *id))
}

/// `61 templates (23 content-length, 18 te, 9 header, …)`: how many of each kind, most first.
pub fn templates_by_kind(ids: &[&str]) -> String {
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for id in ids {
        *kinds.entry(kind_of(id)).or_default() += 1;
    }
    let mut kinds: Vec<(&str, usize)> = kinds.into_iter().collect();
    // Most first; ties in the order the tags are listed.
    kinds.sort_by_key(|(k, n)| {
        (
            std::cmp::Reverse(*n),
            TAGS.iter().position(|t| t == k).unwrap_or(usize::MAX),
        )
    });
    let parts: Vec<String> = kinds.iter().map(|(k, n)| format!("{n} {k}")).collect();
    format!(
        "{} ({})",
        plural::count(ids.len(), "template"),
        parts.join(", ")
    )
}

/// Template ids as a person reads them: whole when few, counted by kind when many.
pub fn template_list(ids: &[&str], verbose: bool) -> String {
    if verbose || ids.len() <= LIST_WHOLE {
        ids.join(", ")
    } else {
        templates_by_kind(ids)
    }
}

/// A reason that ends in a long list of template ids (`the listener answers 400 to: a, b, …`)
/// with the list counted by kind instead; any other reason as it is.
pub fn reason(text: &str, verbose: bool) -> String {
    if verbose {
        return text.to_string();
    }
    let Some((head, list)) = text.rsplit_once(": ") else {
        return text.to_string();
    };
    let ids: Vec<&str> = list.split(", ").collect();
    if ids.len() <= LIST_WHOLE || !all_templates(&ids) {
        return text.to_string();
    }
    format!(
        "{head} {}; `--format json` lists them",
        templates_by_kind(&ids)
    )
}

/// Findings folded into one line: their ids when they fit in `room` columns, else how many of
/// each status code (`400 ×3, 408, 502 ×4`).
pub fn findings_line(findings: &[&Finding], room: usize) -> String {
    let ids: Vec<&str> = findings.iter().map(|f| f.cause.as_str()).collect();
    let whole = ids.join(", ");
    if whole.chars().count() <= room {
        return whole;
    }
    let mut codes: BTreeMap<u16, usize> = BTreeMap::new();
    for f in findings {
        *codes.entry(f.code).or_default() += 1;
    }
    let parts: Vec<String> = codes
        .into_iter()
        .map(|(code, n)| {
            if n == 1 {
                code.to_string()
            } else {
                format!("{code} ×{n}")
            }
        })
        .collect();
    format!("causes of {}", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_template_list_is_counted_by_kind() {
        let ids: Vec<&str> = templates::malformed()
            .iter()
            .filter(|t| t.has_tag("te") || t.has_tag("chunked"))
            .map(|t| t.id.as_str())
            .collect();
        assert!(ids.len() > LIST_WHOLE);
        let text = reason(
            &format!("the listener answers 400 to: {}", ids.join(", ")),
            false,
        );
        assert!(
            text.starts_with(&format!(
                "the listener answers 400 to {} templates (",
                ids.len()
            )),
            "{text}"
        );
        assert!(text.contains(" te") && text.contains(" chunked"), "{text}");
        assert!(text.ends_with("; `--format json` lists them"), "{text}");
        // -v keeps the list as the classifier wrote it.
        assert!(reason(&format!("x: {}", ids.join(", ")), true).contains(ids[0]));
    }

    #[test]
    fn short_lists_and_other_words_stay_as_written() {
        let short = "the listener answers 400 to: lowercase-method, obs-fold";
        assert_eq!(reason(short, false), short);
        let words = "answers none of: a, b, c, d, e, f, g, h";
        assert_eq!(reason(words, false), words);
    }
}
