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
    "smuggling",
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
    /// The RFC says a server MUST close the connection after answering it (RFC 9112 §6.1 for
    /// Content-Length with Transfer-Encoding): the request asks for no close, and the run
    /// watches whether the side closes.
    #[serde(default)]
    pub must_close: bool,
    /// A keep-alive sequence (tag `smuggling`): the request is the whole connection's bytes,
    /// and this is how many answers an RFC-strict server gives on it. Runs only when named.
    #[serde(default)]
    pub answers: Option<u32>,
    /// The bytes carry a second request (a GET of the target's own path, marked
    /// `X-Lbprobe-Smuggled`): sent only with `--i-own-this-target`.
    #[serde(default)]
    pub leaves_request: bool,
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
        let text = expand_headers(&expand_pad(&self.request))
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

    /// A keep-alive sequence: several requests' bytes on one connection, answers counted.
    pub fn is_sequence(&self) -> bool {
        self.answers.is_some()
    }
}

/// One `{pad:N}` or `{pad:N:C}` placeholder: where it starts, its length in the text, the byte
/// count and the byte (`a` unless a letter or digit is given).
struct Pad {
    start: usize,
    len: usize,
    n: usize,
    byte: char,
}

/// The `{pad:N}` / `{pad:N:C}` placeholders of a template's text, in order.
fn pads(text: &str) -> Result<Vec<Pad>, String> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(at) = text[from..].find("{pad:") {
        let start = from + at;
        let rest = &text[start + 5..];
        let end = rest
            .find('}')
            .ok_or_else(|| "unterminated {pad:N}".to_string())?;
        let inner = &rest[..end];
        let (count, byte) = match inner.split_once(':') {
            None => (inner, 'a'),
            Some((count, c)) => {
                let mut chars = c.chars();
                match (chars.next(), chars.next()) {
                    (Some(b), None) if b.is_ascii_alphanumeric() => (count, b),
                    _ => return Err(format!("{{pad:N:C}} takes one letter or digit, not {c:?}")),
                }
            }
        };
        let n: usize = count
            .parse()
            .map_err(|_| format!("bad {{pad:N}} count {count:?}"))?;
        if n > MAX_PAD {
            return Err(format!("{{pad:{n}}} is above the {MAX_PAD}-byte cap"));
        }
        let len = 5 + end + 1;
        out.push(Pad {
            start,
            len,
            n,
            byte,
        });
        from = start + len;
    }
    Ok(out)
}

/// `{headers:N}`: N header lines `X-Lbprobe-I: a` (I from 1), each ending in CRLF.
const HEADERS: &str = "{headers:";
/// Most lines a `{headers:N}` may ask for; with the pads, a template stays under [`MAX_PAD`].
pub const MAX_HEADERS: usize = 20_000;

/// The `{headers:N}` placeholders: each position, length in the text and N.
fn header_runs(text: &str) -> Result<Vec<(usize, usize, usize)>, String> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(at) = text[from..].find(HEADERS) {
        let start = from + at;
        let rest = &text[start + HEADERS.len()..];
        let end = rest
            .find('}')
            .ok_or_else(|| "unterminated {headers:N}".to_string())?;
        let n: usize = rest[..end]
            .parse()
            .map_err(|_| format!("bad {{headers:N}} count {:?}", &rest[..end]))?;
        if n > MAX_HEADERS {
            return Err(format!(
                "{{headers:{n}}} is above the {MAX_HEADERS}-line cap"
            ));
        }
        let len = HEADERS.len() + end + 1;
        out.push((start, len, n));
        from = start + len;
    }
    Ok(out)
}

/// The escaped text of `{headers:N}`.
fn header_lines(n: usize) -> String {
    (1..=n).map(|i| format!("X-Lbprobe-{i}: a\\r\\n")).collect()
}

fn expand_headers(text: &str) -> String {
    let Ok(found) = header_runs(text) else {
        return text.to_string();
    };
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (start, len, n) in found {
        out.push_str(&text[last..start]);
        out.push_str(&header_lines(n));
        last = start + len;
    }
    out.push_str(&text[last..]);
    out
}

/// Bytes the placeholders of a template expand to: what keeps a template's send bounded.
fn expanded_bytes(text: &str) -> Result<usize, String> {
    let pads: usize = pads(text)?.iter().map(|p| p.n).sum();
    let lines: usize = header_runs(text)?
        .iter()
        .map(|(_, _, n)| (1..=*n).map(|i| 15 + i.to_string().len()).sum::<usize>())
        .sum();
    Ok(pads + lines)
}

fn expand_pad(text: &str) -> String {
    // Validated at load; a template that slipped through renders its text unexpanded.
    let Ok(found) = pads(text) else {
        return text.to_string();
    };
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for pad in found {
        out.push_str(&text[last..pad.start]);
        out.extend(std::iter::repeat_n(pad.byte, pad.n));
        last = pad.start + pad.len;
    }
    out.push_str(&text[last..]);
    out
}

fn escape_for_template(s: &str) -> String {
    crate::transport::escape_bytes(s.as_bytes())
}

fn parse(yaml: &str) -> Result<Vec<Template>, TemplateError> {
    let file: TemplateFile = crate::yaml::data(yaml).map_err(TemplateError::Yaml)?;
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
        let expanded = expanded_bytes(&t.request).map_err(bad)?;
        if expanded > MAX_PAD {
            return Err(bad(format!(
                "its placeholders expand to {expanded} bytes, above the {MAX_PAD}-byte cap"
            )));
        }
        if let Some(tag) = t.tags.iter().find(|tag| !TAGS.contains(&tag.as_str())) {
            return Err(bad(format!(
                "unknown tag {tag:?} (known: {})",
                TAGS.join(", ")
            )));
        }
        if let Some(code) = t.strict_status.iter().find(|c| !(100..=599).contains(*c)) {
            return Err(bad(format!("strict-status {code} is no HTTP status")));
        }
        if t.must_close
            && crate::bytes::contains(
                &t.request.to_ascii_lowercase().into_bytes(),
                b"connection: close",
            )
        {
            return Err(bad(
                "must-close asks whether the server closes: the request cannot ask for the close"
                    .into(),
            ));
        }
        if t.is_sequence() != t.has_tag("smuggling") {
            return Err(bad(
                "`answers:` (a keep-alive sequence) and the `smuggling` tag go together".into(),
            ));
        }
        if t.leaves_request && !t.is_sequence() {
            return Err(bad("leaves-request is for a sequence (`answers:`)".into()));
        }
        if t.is_sequence() && t.must_close {
            return Err(bad(
                "a sequence counts its answers and watches the close itself: no must-close".into(),
            ));
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

    /// A GET of `/` to host `h` with no extra headers: what most templates are rendered with.
    const PLAIN: Fill<'static> = Fill {
        method: "GET",
        path: "/",
        host: "h",
        extra: "",
    };

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
        let bytes = nul.render(&PLAIN);
        assert!(crate::bytes::contains(&bytes, b"a\0b"));
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
        let err = one(
            "    strict: any\n    must-close: true\n",
            "POST / HTTP/1.1\\r\\nConnection: Close\\r\\n\\r\\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("must-close"), "{err}");
        let err = one("    strict: reject\n", "{pad:3").unwrap_err();
        assert!(err.to_string().contains("unterminated"), "{err}");
    }

    #[test]
    fn pad_expands_to_n_bytes_of_a() {
        let t = one("    strict: reject\n", "{pad:5} /{pad:0}x{pad:2} HTTP/1.1").unwrap();
        let bytes = t[0].render(&PLAIN);
        assert_eq!(bytes, b"aaaaa /xaa HTTP/1.1");
        let big = malformed().iter().find(|t| t.id == "method-100k").unwrap();
        let bytes = big.render(&PLAIN);
        // Uppercase letters: a valid method token, so only its length can be refused.
        assert!(bytes.starts_with(&[b'A'; 100 * 1024]));
        assert_eq!(bytes[100 * 1024], b' ');
        let t = one("    strict: reject\n", "{pad:3:Z}{pad:2:7}").unwrap();
        let bytes = t[0].render(&PLAIN);
        assert_eq!(bytes, b"ZZZ77");
        for bad in ["{pad:3:}", "{pad:3:ab}", "{pad:3:-}"] {
            let err = one("    strict: reject\n", bad).unwrap_err();
            assert!(
                err.to_string().contains("one letter or digit"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn headers_expand_to_n_distinct_lines_and_are_capped() {
        let t = one("    strict: any\n", "GET / HTTP/1.1\\r\\n{headers:3}\\r\\n").unwrap();
        let bytes = t[0].render(&PLAIN);
        assert_eq!(
            bytes,
            b"GET / HTTP/1.1\r\nX-Lbprobe-1: a\r\nX-Lbprobe-2: a\r\nX-Lbprobe-3: a\r\n\r\n"
        );
        assert_eq!(expanded_bytes("{headers:3}").unwrap(), 3 * 16);
        let err = one("    strict: any\n", "{headers:999999}").unwrap_err();
        assert!(err.to_string().contains("cap"), "{err}");
        let err = one("    strict: any\n", "{pad:1048576}{headers:10}").unwrap_err();
        assert!(err.to_string().contains("expand to"), "{err}");
        let many = malformed().iter().find(|t| t.id == "hdr-10000").unwrap();
        let bytes = many.render(&PLAIN);
        assert_eq!(
            bytes.windows(10).filter(|w| w == b"X-Lbprobe-").count(),
            10_000
        );
    }

    /// Every template's request stays a probe: a few hundred KB at most.
    #[test]
    fn every_template_sends_a_bounded_request() {
        let fill = PLAIN;
        for t in malformed() {
            let n = t.render(&fill).len();
            assert!(n <= 256 * 1024, "{}: {n} bytes", t.id);
        }
    }

    #[test]
    fn every_embedded_template_is_tagged_but_the_control() {
        for t in malformed() {
            assert_eq!(t.tags.is_empty(), t.id == "control", "{}", t.id);
            // A sequence is named on purpose: it has no other tag to be picked by.
            if t.is_sequence() {
                assert_eq!(t.tags, vec!["smuggling"], "{}", t.id);
            }
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

    /// `RFC 9112 §6.3`, `RFC 9110 §5.6.3`: an RFC number and a section sign with a number.
    fn cites_clause(rfc: &str) -> bool {
        rfc.match_indices("RFC ").any(|(at, _)| {
            let rest = &rfc[at + 4..];
            let digits = rest.chars().take_while(char::is_ascii_digit).count();
            digits >= 3
                && rest[digits..]
                    .strip_prefix(" §")
                    .and_then(|r| r.chars().next())
                    .is_some_and(|c| c.is_ascii_digit())
        })
    }

    /// A `strict` value other than a plain `any` is a claim about the RFC; the template has to
    /// say which clause makes it.
    #[test]
    fn every_strict_value_but_plain_any_cites_its_rfc_clause() {
        assert!(cites_clause("RFC 9112 §6.3 (400 and close)"));
        assert!(cites_clause("see RFC 3986 §2.1"));
        assert!(!cites_clause("RFC 9112"));
        assert!(!cites_clause("§6.3"));
        assert!(!cites_clause("RFC 9112 § x"));
        let mut checked = 0;
        for t in malformed() {
            let plain_any = t.strict == Strict::Any
                && t.strict_status.is_empty()
                && !t.must_close
                && t.answers.is_none();
            if plain_any {
                continue;
            }
            checked += 1;
            assert!(
                cites_clause(&t.rfc),
                "{}: `strict` is not a plain `any`, but rfc {:?} cites no clause (RFC NNNN §N)",
                t.id,
                t.rfc
            );
        }
        assert!(checked > 50, "{checked}");
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
