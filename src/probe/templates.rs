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
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Template {
    pub id: String,
    pub summary: String,
    pub rfc: String,
    #[serde(default)]
    pub well_formed: bool,
    pub strict: Strict,
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
        let text = self
            .request
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
        unescape_bytes(&t.request).map_err(|why| TemplateError::Bad {
            id: t.id.clone(),
            why,
        })?;
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
