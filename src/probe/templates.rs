//! Raw-request templates (`probes/*.yaml`), embedded in the binary.

use std::sync::OnceLock;
use std::time::Duration;

use serde::Deserialize;

use crate::transport::unescape_bytes;

const MALFORMED_YAML: &str = include_str!("../../probes/malformed.yaml");

/// What an RFC-strict server does with a template's request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Strict {
    Accept,
    Reject,
    Close,
    /// The RFC lets a recipient either accept or reject it.
    Any,
}

/// The kinds a template may be tagged with; `variants:` and `--only` select by them too.
pub const TAGS: &[&str] = &[
    "request-line",
    "header",
    "host",
    "content-length",
    "te",
    "chunked",
    "method",
];

/// Largest `{pad:N}`: enough for a 100 KB method or URL, small enough to stay a probe.
pub const MAX_PAD: usize = 1 << 20;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Template {
    pub id: String,
    pub summary: String,
    pub rfc: String,
    #[serde(default)]
    pub well_formed: bool,
    pub strict: Strict,
    /// Status codes a strict server may answer with (`strict-status: [400, 501]`); empty
    /// means any 4xx (or a close) for `reject`.
    #[serde(default)]
    pub strict_status: Vec<u16>,
    /// Kinds from [`TAGS`].
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default, with = "opt_duration")]
    pub wait: Option<Duration>,
    pub evidence_for: Vec<String>,
    /// Escaped request text with placeholders; see the file's header.
    pub request: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TemplateFile {
    templates: Vec<Template>,
}

/// Values substituted into a template.
pub struct Fill<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub host: &'a str,
    /// Extra header lines, each ending in CRLF, for `{extra}`.
    pub extra: &'a str,
}

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("probes/malformed.yaml: {0}")]
    Yaml(String),
    #[error("probes/malformed.yaml: template {id:?}: {why}")]
    Bad { id: String, why: String },
}

impl Template {
    /// The exact bytes to send.
    pub fn render(&self, fill: &Fill<'_>) -> Vec<u8> {
        let text = expand_pad(&self.request)
            .replace("{method}", &escape_for_template(fill.method))
            .replace("{path}", &escape_for_template(fill.path))
            .replace("{host}", &escape_for_template(fill.host))
            .replace("{extra}", &escape_for_template(fill.extra))
            .replace(
                "{extra_lf}",
                &escape_for_template(&fill.extra.replace("\r\n", "\n")),
            );
        // Templates are validated at load and substituted values are escaped, so this holds.
        unescape_bytes(&text).unwrap_or_else(|_| text.into_bytes())
    }
}

impl Template {
    pub fn has_tag(&self, tag: &str) -> bool {
        self.tags.iter().any(|t| t == tag)
    }
}

/// The `{pad:N}` placeholders of a template's text: each position, length and N.
fn pads(text: &str) -> Result<Vec<(usize, usize, usize)>, String> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(at) = text[from..].find("{pad:") {
        let start = from + at;
        let rest = &text[start + 5..];
        let end = rest
            .find('}')
            .ok_or_else(|| "unterminated {pad:N}".to_string())?;
        let n: usize = rest[..end]
            .parse()
            .map_err(|_| format!("bad {{pad:N}} count {:?}", &rest[..end]))?;
        if n > MAX_PAD {
            return Err(format!("{{pad:{n}}} is above the {MAX_PAD}-byte cap"));
        }
        let len = 5 + end + 1;
        out.push((start, len, n));
        from = start + len;
    }
    Ok(out)
}

fn expand_pad(text: &str) -> String {
    // Validated at load; a template that slipped through renders its text unexpanded.
    let Ok(found) = pads(text) else {
        return text.to_string();
    };
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (start, len, n) in found {
        out.push_str(&text[last..start]);
        out.extend(std::iter::repeat_n('a', n));
        last = start + len;
    }
    out.push_str(&text[last..]);
    out
}

fn escape_for_template(s: &str) -> String {
    crate::transport::escape_bytes(s.as_bytes())
}

fn parse(yaml: &str) -> Result<Vec<Template>, TemplateError> {
    let file: TemplateFile =
        serde_yaml::from_str(yaml).map_err(|e| TemplateError::Yaml(e.to_string()))?;
    let mut seen = std::collections::HashSet::new();
    for t in &file.templates {
        if !seen.insert(t.id.clone()) {
            return Err(TemplateError::Bad {
                id: t.id.clone(),
                why: "duplicate id".into(),
            });
        }
        let bad = |why: String| TemplateError::Bad {
            id: t.id.clone(),
            why,
        };
        unescape_bytes(&t.request).map_err(bad)?;
        pads(&t.request).map_err(bad)?;
        if let Some(tag) = t.tags.iter().find(|tag| !TAGS.contains(&tag.as_str())) {
            return Err(bad(format!(
                "unknown tag {tag:?} (known: {})",
                TAGS.join(", ")
            )));
        }
        if let Some(code) = t.strict_status.iter().find(|c| !(100..=599).contains(*c)) {
            return Err(bad(format!("strict-status {code} is no HTTP status")));
        }
        if !t.strict_status.is_empty() && t.strict != Strict::Reject {
            return Err(bad("strict-status goes with strict: reject".into()));
        }
    }
    Ok(file.templates)
}

/// The built-in malformed-request templates.
pub fn malformed() -> &'static [Template] {
    static CELL: OnceLock<Vec<Template>> = OnceLock::new();
    // The embedded file is checked by the tests below; a broken build cannot ship.
    CELL.get_or_init(|| parse(MALFORMED_YAML).expect("embedded probes/malformed.yaml is valid"))
}

pub fn malformed_ids() -> impl Iterator<Item = &'static str> {
    malformed().iter().map(|t| t.id.as_str())
}

/// Whether `name` is a template id or a tag (what a scenario's `variants:` may name).
pub fn is_variant_or_tag(name: &str) -> bool {
    TAGS.contains(&name) || malformed_ids().any(|id| id == name)
}

/// Parse template text (the embedded file, or a test's).
pub fn parse_templates(yaml: &str) -> Result<Vec<Template>, TemplateError> {
    parse(yaml)
}

mod opt_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let Some(text) = Option::<String>::deserialize(d)? else {
            return Ok(None);
        };
        let (num, unit) =
            text.split_at(text.find(|c: char| c.is_alphabetic()).unwrap_or(text.len()));
        let n: f64 = num
            .trim()
            .parse()
            .map_err(|_| serde::de::Error::custom(format!("bad duration {text:?}")))?;
        let secs = match unit {
            "ms" => n / 1000.0,
            "s" | "" => n,
            "m" => n * 60.0,
            _ => return Err(serde::de::Error::custom(format!("bad duration {text:?}"))),
        };
        Ok(Some(Duration::from_secs_f64(secs)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_templates_parse_and_render() {
        let all = malformed();
        assert!(all.len() >= 10);
        let lower = all.iter().find(|t| t.id == "lowercase-method").unwrap();
        let bytes = lower.render(&Fill {
            method: "GET",
            path: "/x",
            host: "h:1",
            extra: "",
        });
        assert_eq!(
            bytes,
            b"get /x HTTP/1.1\r\nHost: h:1\r\nConnection: close\r\n\r\n"
        );
        let nul = all.iter().find(|t| t.id == "nul-in-header").unwrap();
        let bytes = nul.render(&Fill {
            method: "GET",
            path: "/",
            host: "h",
            extra: "",
        });
        assert!(bytes.windows(3).any(|w| w == b"a\0b"));
        let wait = all.iter().find(|t| t.id == "cl-larger-than-body").unwrap();
        assert_eq!(wait.wait, Some(Duration::from_secs(3)));
    }

    fn one(extra_fields: &str, request: &str) -> Result<Vec<Template>, TemplateError> {
        parse_templates(&format!(
            "templates:\n  - id: t\n    summary: s\n    rfc: r\n    evidence-for: []\n{extra_fields}    request: '{request}'\n"
        ))
    }

    #[test]
    fn tags_strict_any_and_strict_status_load() {
        let t = one(
            "    strict: reject\n    tags: [te, chunked]\n    strict-status: [400, 501]\n",
            "GET / HTTP/1.1\\r\\n\\r\\n",
        )
        .unwrap();
        assert_eq!(t[0].tags, vec!["te", "chunked"]);
        assert_eq!(t[0].strict_status, vec![400, 501]);
        assert!(t[0].has_tag("te") && !t[0].has_tag("host"));
        let t = one("    strict: any\n", "x").unwrap();
        assert_eq!(t[0].strict, Strict::Any);
    }

    #[test]
    fn bad_tags_statuses_and_pads_are_refused() {
        let err = one("    strict: reject\n    tags: [nope]\n", "x").unwrap_err();
        assert!(err.to_string().contains("unknown tag \"nope\""), "{err}");
        let err = one("    strict: reject\n    strict-status: [999]\n", "x").unwrap_err();
        assert!(err.to_string().contains("999"), "{err}");
        let err = one("    strict: accept\n    strict-status: [400]\n", "x").unwrap_err();
        assert!(err.to_string().contains("strict: reject"), "{err}");
        let err = one("    strict: reject\n", "{pad:x}").unwrap_err();
        assert!(err.to_string().contains("pad"), "{err}");
        let err = one("    strict: reject\n", "{pad:99999999}").unwrap_err();
        assert!(err.to_string().contains("cap"), "{err}");
        let err = one("    strict: reject\n", "{pad:3").unwrap_err();
        assert!(err.to_string().contains("unterminated"), "{err}");
    }

    #[test]
    fn pad_expands_to_n_bytes_of_a() {
        let t = one("    strict: reject\n", "{pad:5} /{pad:0}x{pad:2} HTTP/1.1").unwrap();
        let bytes = t[0].render(&Fill {
            method: "GET",
            path: "/",
            host: "h",
            extra: "",
        });
        assert_eq!(bytes, b"aaaaa /xaa HTTP/1.1");
        let big = malformed().iter().find(|t| t.id == "method-100k").unwrap();
        let bytes = big.render(&Fill {
            method: "GET",
            path: "/",
            host: "h",
            extra: "",
        });
        assert!(bytes.starts_with(&[b'a'; 100 * 1024]));
        assert_eq!(bytes[100 * 1024], b' ');
    }

    #[test]
    fn every_embedded_template_is_tagged_but_the_control() {
        for t in malformed() {
            assert_eq!(t.tags.is_empty(), t.id == "control", "{}", t.id);
        }
        for tag in TAGS {
            assert!(
                malformed().iter().any(|t| t.has_tag(tag)),
                "no template tagged {tag}"
            );
            assert!(is_variant_or_tag(tag));
        }
        assert!(is_variant_or_tag("obs-fold") && !is_variant_or_tag("nope"));
    }

    #[test]
    fn substituted_values_stay_literal() {
        let control = malformed().iter().find(|t| t.id == "control").unwrap();
        let bytes = control.render(&Fill {
            method: "GET",
            path: "/a\\b",
            host: "h",
            extra: "",
        });
        assert!(bytes.starts_with(b"GET /a\\b HTTP/1.1\r\n"));
    }
}
