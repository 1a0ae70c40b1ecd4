//! What can be wrong with a scenario file, and how it is shown: `file:line:column: what was
//! expected`, then the line with a caret under the bad spot, as rustc does.

use std::fmt;
use std::path::PathBuf;

use crate::target::Role;

/// A scenario that could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("{}: cannot read the scenario file: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: the scenario file is larger than {limit} bytes; is this the right file?", path.display())]
    TooLarge { path: PathBuf, limit: u64 },
    /// The text is there but wrong somewhere; says where.
    #[error("{0}")]
    Invalid(Box<Diagnostic>),
}

impl ScenarioError {
    /// What is wrong, for errors about the text.
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            ScenarioError::Invalid(d) => Some(&d.problem),
            _ => None,
        }
    }

    /// 1-based line and column of the bad spot, for errors about the text.
    pub fn position(&self) -> Option<(usize, usize)> {
        match self {
            ScenarioError::Invalid(d) => Some((d.line, d.column)),
            _ => None,
        }
    }
}

/// One problem at one place in a scenario file.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    /// The file name as given.
    pub origin: String,
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    pub problem: Problem,
    /// The line as written in the file (before variable substitution, so that secrets passed
    /// as variables never appear in an error).
    pub source_line: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_at(
            f,
            &self.origin,
            (self.line, self.column),
            &self.problem,
            &self.source_line,
        )
    }
}

/// `origin:line:column: problem`, then the line with a caret under the spot, as rustc does:
/// the shape of every error about a file lbprobe reads (scenarios, the serve config).
pub fn write_at(
    f: &mut fmt::Formatter<'_>,
    origin: &str,
    (line, column): (usize, usize),
    problem: &dyn fmt::Display,
    source_line: &str,
) -> fmt::Result {
    write!(f, "{origin}:{line}:{column}: {problem}")?;
    let number = line.to_string();
    let gutter = " ".repeat(number.len());
    // Tabs are copied so that the caret lines up whatever the terminal's tab width.
    let pad: String = source_line
        .chars()
        .take(column.saturating_sub(1))
        .map(|c| if c == '\t' { '\t' } else { ' ' })
        .collect();
    write!(
        f,
        "\n{gutter} |\n{number} | {source_line}\n{gutter} | {pad}^"
    )
}

/// Where a byte offset of `text` is, as [`write_at`] shows it: the 1-based line and character
/// column, and that line's text. An offset past the end or inside a character is moved back to
/// the nearest place that is one.
pub fn line_column(text: &str, offset: usize) -> (usize, usize, String) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = before.matches('\n').count() + 1;
    let column = before[line_start..].chars().count() + 1;
    let source_line = text[line_start..]
        .split('\n')
        .next()
        .unwrap_or_default()
        .trim_end_matches('\r')
        .to_string();
    (line, column, source_line)
}

/// What was wrong, in words that say what was expected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Problem {
    #[error("YAML syntax: {message}")]
    Syntax { message: String },
    #[error("YAML syntax: {message}, {context} that starts at {line}:{column}")]
    SyntaxIn {
        message: String,
        context: String,
        line: usize,
        column: usize,
    },
    #[error("unknown key {key:?} ({})", expected_keys(.expected))]
    UnknownKey { key: String, expected: Vec<String> },
    #[error("missing key {key:?}{}", in_path(.path))]
    MissingKey { path: Option<String>, key: String },
    #[error("key {key:?} is given twice")]
    DuplicateKey { key: String },
    #[error("{}expected {expected}, found {found}", path_prefix(.path))]
    WrongType {
        path: Option<String>,
        found: String,
        expected: String,
    },
    #[error("undefined variable {name:?} (set it, or write $${{ for a literal ${{)")]
    UndefinedVariable { name: String },
    #[error("bad variable reference (expected ${{NAME}} with letters, digits and _, or $${{ for a literal ${{)")]
    BadVariable,
    #[error("variable {name:?} holds a line break; a variable's value must fit on one line")]
    MultilineVariable { name: String },
    #[error("no targets (expected `targets:` with `listener:`, `backend:` and/or `pool:`)")]
    NoTargets,
    #[error("a serve module's {role} URL is ${{{variable}}}: each probe names its own (`/probe?target=URL&backend=URL`), checked against the config's `allow:` list")]
    ModuleTarget { role: Role, variable: &'static str },
    #[error("a serve module has no pool: each probe names one target (`target=`) and its backend (`backend=`)")]
    ModulePool,
    #[error("a pool needs two or more backends; one backend goes under `backend:`")]
    PoolTooSmall,
    #[error("bad {role} URL: {why}")]
    BadUrl { role: Role, why: String },
    #[error("the {role} URL holds credentials; put them in `headers:` (e.g. Authorization) so that reports mask them")]
    UrlCredentials { role: Role },
    #[error("`sni` needs an https URL (the {role} URL is http)")]
    SniWithoutTls { role: Role },
    #[error("`{key}` needs an https URL (the {role} URL is http)")]
    TlsKeyWithoutTls { key: String, role: Role },
    #[error("{why}")]
    TlsFiles { why: String },
    #[error(
        "bad connect-to {text:?} (expected HOST:PORT, an IPv6 address in brackets: [::1]:8443)"
    )]
    BadConnectTo { text: String },
    #[error(
        "bad header name {name:?} (expected an HTTP token: letters, digits and !#$%&'*+-.^_`|~)"
    )]
    BadHeaderName { name: String },
    #[error("the value of header {name:?} holds CR, LF or NUL, which would split the request")]
    BadHeaderValue { name: String },
    #[error("unknown profile {name:?} (expected one of: {})", crate::profile::Profile::NAMES.join(", "))]
    UnknownProfile { name: String },
    #[error("unknown probe family {name:?} (expected one of: {})", families())]
    UnknownFamily { name: String },
    #[error("a probe entry names one family; found a second key {key:?} (give each family its own `- ` item, and indent its parameters under it)")]
    TwoFamilies { key: String },
    #[error("probe family {family:?} is listed twice (merge the two entries)")]
    DuplicateProbe { family: String },
    #[error("unknown malformed variant {name:?} (expected a variant of the malformed probe templates in probes/)")]
    UnknownVariant { name: String },
    #[error("bad method {name:?} (expected an HTTP token such as GET or PROPFIND)")]
    BadMethod { name: String },
    #[error("unknown cause id {id:?} (expected an id of the causes catalogue, such as 502.backend-unreachable; docs/causes.md lists them)")]
    UnknownCause { id: String },
    #[error("unknown verdict {value:?} (expected one of: {})", verdicts())]
    UnknownVerdict { value: String },
    #[error("expected a verdict for {id:?} (one of: {}); only header-size, header-limit and uri-limit take at-least/at-most", verdicts())]
    VerdictExpected { id: String },
    #[error("a limit expectation for {family} needs bounds: {{ at-least: SIZE }}, {{ at-most: SIZE }} or both")]
    LimitNeedsBounds { family: String },
    #[error("`at-least` ({at_least}) is larger than `at-most` ({at_most})")]
    BoundsCrossed { at_least: usize, at_most: usize },
    #[error("cause {id:?} is expected twice")]
    DuplicateExpect { id: String },
    #[error("bad duration {text:?} (expected seconds as a number, or a number with ms, s, m or h: 500ms, 60s, 2m)")]
    BadDuration { text: String },
    #[error("bad size {text:?} (expected bytes as a whole number, or with k/KiB or m/MiB: 8190, 32k, 1m)")]
    BadSize { text: String },
    #[error("bad number {text:?} for `{key}` (expected {expected})")]
    BadNumber {
        key: String,
        text: String,
        expected: String,
    },
    #[error("`{key}` must be greater than zero")]
    NotPositive { key: String },
    #[error("`{key}` is too large (at most {max})")]
    TooLarge { key: String, max: String },
    #[error("`min` ({min}) is larger than `max` ({max})")]
    MinAboveMax { min: usize, max: usize },
    #[error("`{key}` {value} is above the hard ceiling of {ceiling}: a prober must not turn into a load test by accident; pass --i-own-this-target if the target is yours")]
    AboveCeiling {
        key: String,
        value: String,
        ceiling: String,
    },
    #[error("`{key}` must be {expected}")]
    OutOfRange { key: String, expected: String },
    #[error("`{key}` is empty (leave the key out to use the default)")]
    EmptyList { key: String },
    #[error("the file is not valid UTF-8 here; a scenario is UTF-8 text")]
    InvalidUtf8,
    #[error("a control character ({code}) is not allowed in a scenario file")]
    ControlCharacter { code: String },
    #[error("YAML tags (`!{tag}`) are not part of the scenario format")]
    Tag { tag: String },
    /// Another problem whose words quoted a variable's value, with the value masked.
    #[error("{text}")]
    Redacted { text: String },
}

impl From<crate::yaml::YamlProblem> for Problem {
    fn from(p: crate::yaml::YamlProblem) -> Problem {
        use crate::yaml::YamlProblem as Y;
        match p {
            Y::Syntax { message } => Problem::Syntax { message },
            Y::Tag { tag } => Problem::Tag { tag },
            Y::UnknownKey { key, expected } => Problem::UnknownKey { key, expected },
            Y::MissingKey { path, key } => Problem::MissingKey { path, key },
            Y::DuplicateKey { key } => Problem::DuplicateKey { key },
            Y::WrongType {
                path,
                found,
                expected,
            } => Problem::WrongType {
                path,
                found,
                expected,
            },
        }
    }
}

/// Header names whose values an excerpt never shows: the ones reports always mask, and names
/// that say they hold a secret.
fn secret_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    crate::transport::mask::ALWAYS_MASKED
        .iter()
        .any(|m| m.eq_ignore_ascii_case(name))
        || [
            "auth", "token", "secret", "password", "passwd", "api-key", "apikey", "session",
        ]
        .iter()
        .any(|w| lower.contains(w))
}

/// A scenario line with its secrets masked: the value of a `Name: value` whose name says it
/// is secret, and the `user:password@` of a URL. Returns the line and the (1-based, in
/// characters) column moved onto the mask when it pointed into what was masked.
pub fn mask_secrets(line: &str, column: usize) -> (String, usize) {
    let mut out = line.to_string();
    let mut column = column;
    // `user:password@` in a URL.
    if let Some(scheme_end) = out.find("://") {
        let rest = &out[scheme_end + 3..];
        let authority_end = rest
            .find(['/', '?', '#', ' ', '"', '\''])
            .unwrap_or(rest.len());
        if let Some(at) = rest[..authority_end].rfind('@') {
            let start = scheme_end + 3;
            let start_col = out[..start].chars().count() + 1;
            let end_col = out[..start + at].chars().count() + 1;
            out.replace_range(start..start + at, "***");
            if column > start_col {
                column = if column >= end_col {
                    column - (end_col - start_col) + 3
                } else {
                    start_col
                };
            }
        }
    }
    // `Authorization: Bearer …` in a block mapping (to the end of the line) or a flow one
    // (to the next `,` or `}`), quoted or not.
    let mut from = 0;
    while let Some(found) = out[from..].find(": ") {
        let colon = from + found;
        from = colon + 2;
        // Past the last character that cannot be in a key (found by fuzzing: it may be a
        // multi-byte one, so step over its whole width).
        let key_start = out[..colon]
            .char_indices()
            .rev()
            .find(|(_, c)| !(c.is_ascii_alphanumeric() || "-_\"'".contains(*c)))
            .map_or(0, |(i, c)| i + c.len_utf8());
        let name = out[key_start..colon].trim_matches(['"', '\'']);
        if name.is_empty() || !secret_name(name) {
            continue;
        }
        let value_start =
            colon + 2 + (out[colon + 2..].len() - out[colon + 2..].trim_start().len());
        let in_flow = out[..key_start].matches('{').count() > out[..key_start].matches('}').count();
        let quote = out[value_start..]
            .chars()
            .next()
            .filter(|c| *c == '"' || *c == '\'');
        let value_end = match quote {
            // A quoted value ends at its closing quote (a `,` inside it is text); an unclosed
            // one runs to the end of the line.
            Some(q) => out[value_start + 1..]
                .find(q)
                .map_or(out.len(), |i| value_start + 1 + i + 1),
            None if in_flow => out[value_start..]
                .find([',', '}'])
                .map_or(out.len(), |i| value_start + i),
            None => out.len(),
        };
        let value = out[value_start..value_end].trim_end();
        if value.is_empty() || value == "***" {
            continue;
        }
        let value_end = value_start + value.len();
        let value_col = out[..value_start].chars().count() + 1;
        let end_col = out[..value_end].chars().count() + 1;
        out.replace_range(value_start..value_end, "***");
        if column > value_col {
            column = if column >= end_col {
                column - (end_col - value_col) + 3
            } else {
                value_col
            };
        }
        from = value_start + 3;
    }
    (out, column)
}

fn expected_keys(expected: &[String]) -> String {
    match expected {
        [] => "this mapping takes no keys".to_string(),
        [one] => format!("expected: {one}"),
        many => format!("expected one of: {}", many.join(", ")),
    }
}

fn in_path(path: &Option<String>) -> String {
    path.as_ref()
        .map(|p| format!(" in {p}"))
        .unwrap_or_default()
}

fn path_prefix(path: &Option<String>) -> String {
    path.as_ref().map(|p| format!("{p}: ")).unwrap_or_default()
}

fn families() -> String {
    crate::probe::Family::ALL
        .iter()
        .map(|f| f.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn verdicts() -> String {
    crate::classify::verdict::Verdict::ALL
        .iter()
        .map(|v| v.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_mask_secrets() {
        let cases: &[(&str, usize, &str, usize)] = &[
            (
                "    url: http://admin:hunter2@127.0.0.1:1/",
                10,
                "    url: http://***@127.0.0.1:1/",
                10,
            ),
            (
                "      Authorization: Bearer sekrit",
                22,
                "      Authorization: ***",
                22,
            ),
            ("      X-Api-Key: sekrit", 20, "      X-Api-Key: ***", 18),
            ("      X-Api-Key: sekrit", 24, "      X-Api-Key: ***", 21),
            (
                "    headers: { X-Token: \"a, b\", X-Retries: 3 }",
                40,
                "    headers: { X-Token: ***, X-Retries: 3 }",
                37,
            ),
            ("      X-Retries: 3", 18, "      X-Retries: 3", 18),
            ("  listner:", 3, "  listner:", 3),
            // Found by fuzzing: a multi-byte character right before a key.
            (
                "name:\u{5cf}rrace-allowed: true }",
                1,
                "name:\u{5cf}rrace-allowed: true }",
                1,
            ),
            (
                "    headers: { X-Api-Key: hunter2, X-B: [ }",
                43,
                "    headers: { X-Api-Key: ***, X-B: [ }",
                39,
            ),
        ];
        for (line, column, want, want_column) in cases {
            assert_eq!(
                mask_secrets(line, *column),
                (want.to_string(), *want_column),
                "{line}"
            );
        }
    }

    #[test]
    fn caret_sits_under_the_column() {
        let d = Diagnostic {
            origin: "scenarios/prod.yaml".into(),
            line: 4,
            column: 3,
            problem: Problem::UnknownKey {
                key: "listner".into(),
                expected: vec!["listener".into(), "backend".into()],
            },
            source_line: "  listner:".into(),
        };
        assert_eq!(
            d.to_string(),
            "scenarios/prod.yaml:4:3: unknown key \"listner\" (expected one of: listener, backend)\n  |\n4 |   listner:\n  |   ^"
        );
    }

    #[test]
    fn gutter_widens_with_the_line_number_and_tabs_are_kept() {
        let d = Diagnostic {
            origin: "x.yaml".into(),
            line: 120,
            column: 3,
            problem: Problem::NoTargets,
            source_line: "\ta: b".into(),
        };
        let text = d.to_string();
        assert!(
            text.ends_with("\n    |\n120 | \ta: b\n    | \t ^"),
            "{text}"
        );
    }
}
