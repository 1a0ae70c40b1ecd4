//! Loading a scenario: variables, then YAML, then the checks that turn the file as written
//! into a [`Scenario`], each error pointing at the spot in the file as written.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use super::error::{Diagnostic, Problem, ScenarioError};
use super::model::{Expectation, LimitExpectation, LoadContext, Scenario, ALWAYS_MASKED};
use super::raw::{
    Number, RawExpect, RawExpected, RawHeaderSize, RawMtu, RawParams, RawProbe, RawProfile,
    RawRate, RawScenario, RawTarget, RawTargets,
};
use super::units::{parse_duration, parse_size};
use super::vars::{substitute, OffsetMap};
use crate::classify::verdict::Verdict;
use crate::probe::mtu::MtuSpec;
use crate::probe::rate::{RateSpec, CEILING_DURATION, CEILING_RATE, CEILING_REQUESTS};
use crate::probe::{Family, Limits, ProbeSpec};
use crate::profile::Profile;
use crate::target::{Role, Target, TargetError};
use crate::transport::{is_token, pmtu};
use crate::yaml::{self, MarkId, Marked, YamlError, YamlProblem};

/// Scenario files are a few kilobytes; anything this big is the wrong file.
const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// Reads and loads a scenario file; errors name the file as `path` spells it.
pub fn load_file(path: &Path, ctx: &LoadContext) -> Result<Scenario, ScenarioError> {
    load_file_as(path, ctx, Ownership::Unconfirmed)
}

/// Whether the person said the target is theirs (`--i-own-this-target`): only then may a
/// scenario's load caps (the `rate` ramp's) go above the hard ceiling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Ownership {
    #[default]
    Unconfirmed,
    Confirmed,
}

/// [`load_file`], with the person's word on owning the target.
pub fn load_file_as(
    path: &Path,
    ctx: &LoadContext,
    owner: Ownership,
) -> Result<Scenario, ScenarioError> {
    let text = read_file(path)?;
    load_str_as(&text, &path.display().to_string(), ctx, owner)
}

/// A module of `lbprobe serve`: a scenario whose targets each probe gives (`target=`,
/// `backend=`). Without `targets:` it has none; with it, the listener's URL is `${TARGET}` and
/// the backend's `${BACKEND}` (the other keys of a target, `tls-verify`, `headers`, `sni`...,
/// apply to the probe's), and no pool: any other URL is an error pointing at it. The
/// scenario's caps hold as for `run` without `--i-own-this-target`.
pub fn load_module_str(
    text: &str,
    origin: &str,
    ctx: &LoadContext,
) -> Result<Scenario, ScenarioError> {
    load_text(
        text,
        origin,
        ctx,
        Ownership::Unconfirmed,
        TargetsFrom::Caller,
    )
}

/// Why [`read_bounded`] gave no bytes.
pub enum BoundedRead {
    Io(std::io::Error),
    /// The file holds more than this many bytes.
    TooLarge(u64),
}

/// A file's bytes, at most `limit` of them (a scenario or a serve config: reading never grows
/// past the limit, however large the file someone names).
pub fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, BoundedRead> {
    let file = std::fs::File::open(path).map_err(BoundedRead::Io)?;
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(BoundedRead::Io)?;
    if bytes.len() as u64 > limit {
        return Err(BoundedRead::TooLarge(limit));
    }
    Ok(bytes)
}

/// The text of a scenario file, at most [`MAX_FILE_BYTES`], UTF-8.
pub fn read_file(path: &Path) -> Result<String, ScenarioError> {
    let bytes = read_bounded(path, MAX_FILE_BYTES).map_err(|e| match e {
        BoundedRead::Io(source) => ScenarioError::Read {
            path: path.to_path_buf(),
            source,
        },
        BoundedRead::TooLarge(limit) => ScenarioError::TooLarge {
            path: path.to_path_buf(),
            limit,
        },
    })?;
    let origin = path.display().to_string();
    String::from_utf8(bytes).map_err(|e| {
        // Where the bad bytes are, on the line as far as it reads: the prefix before them
        // is the same in the lossy copy.
        let at = e.utf8_error().valid_up_to();
        let lossy = String::from_utf8_lossy(e.as_bytes());
        let source = Source {
            text: &lossy,
            origin: &origin,
            secrets: Vec::new(),
        };
        source.error(at, Problem::InvalidUtf8)
    })
}

/// The variable a serve module's listener URL is written as: the probe's `target=`.
pub const MODULE_TARGET: &str = "TARGET";
/// The variable a serve module's backend URL is written as: the probe's `backend=`.
pub const MODULE_BACKEND: &str = "BACKEND";

/// Where a scenario's targets come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TargetsFrom {
    /// `targets:` in the file, required.
    File,
    /// Whoever runs it (a serve module's probe): `targets:` in the file is an error.
    Caller,
}

/// Loads a scenario from text; `origin` names it in errors and gives the default name.
pub fn load_str(text: &str, origin: &str, ctx: &LoadContext) -> Result<Scenario, ScenarioError> {
    load_str_as(text, origin, ctx, Ownership::Unconfirmed)
}

/// [`load_str`], with the person's word on owning the target.
pub fn load_str_as(
    text: &str,
    origin: &str,
    ctx: &LoadContext,
    owner: Ownership,
) -> Result<Scenario, ScenarioError> {
    load_text(text, origin, ctx, owner, TargetsFrom::File)
}

fn load_text(
    text: &str,
    origin: &str,
    ctx: &LoadContext,
    owner: Ownership,
    targets: TargetsFrom,
) -> Result<Scenario, ScenarioError> {
    let mut source = Source {
        text,
        origin,
        secrets: Vec::new(),
    };
    // libyaml reports a control character by its position in the stream alone; say where it
    // is and which one.
    if let Some((at, c)) = text
        .char_indices()
        .find(|(_, c)| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
    {
        return Err(source.error(
            at,
            Problem::ControlCharacter {
                code: format!("U+{:04X}", c as u32),
            },
        ));
    }
    let (substituted, offsets) =
        substitute(text, ctx.vars).map_err(|(at, problem)| source.error(at, problem))?;
    source.secrets = maskable(offsets.values());
    let raw: RawScenario = yaml::parse(&substituted).map_err(|e| {
        let mut at = e.offset.unwrap_or(0);
        if let YamlProblem::DuplicateKey { key } = &e.problem {
            at = second_key(&substituted, at, key).unwrap_or(at);
        }
        let at = offsets.to_original(at);
        let YamlError {
            problem, context, ..
        } = *e;
        let problem = match (problem, context) {
            (YamlProblem::Syntax { message }, Some((context, Some(start)))) => {
                let (line, column, _) = source.line_column(offsets.to_original(start));
                Problem::SyntaxIn {
                    message,
                    context,
                    line,
                    column,
                }
            }
            (YamlProblem::Syntax { message }, Some((context, None))) => Problem::Syntax {
                message: format!("{message}, {context}"),
            },
            (problem, _) => problem.into(),
        };
        source.error(at, problem)
    })?;
    Checker {
        source: &source,
        text: &substituted,
        offsets: &offsets,
        ctx,
        owner,
        targets,
    }
    .scenario(raw)
}

/// serde reports a key given twice at the start of its mapping; the second occurrence is
/// what the person must see. Block mappings only (a key at the mapping's indentation); for
/// anything else `None`, and the mapping's start stands.
fn second_key(text: &str, mapping: usize, key: &str) -> Option<usize> {
    if !text.is_char_boundary(mapping) || text[mapping..].starts_with('{') {
        return None;
    }
    let first_line = text[..mapping].rfind('\n').map_or(0, |i| i + 1);
    let indent = mapping - first_line;
    let mut seen = 0;
    let mut line_start = first_line;
    for line in text[first_line..].split_inclusive('\n') {
        let body = line.trim_start_matches(' ');
        let depth = line.len() - body.len();
        let blank = body.trim().is_empty() || body.starts_with('#');
        if line_start != first_line && !blank && depth < indent {
            break; // the mapping ended
        }
        let at_key_column = line_start == first_line || depth == indent;
        if at_key_column && names_key(line.get(indent..).unwrap_or_default(), key) {
            seen += 1;
            if seen == 2 {
                return Some(line_start + indent);
            }
        }
        line_start += line.len();
    }
    None
}

/// Whether `body` starts with `key:`, the key plain or quoted.
fn names_key(body: &str, key: &str) -> bool {
    ["", "\"", "'"].iter().any(|quote| {
        body.strip_prefix(quote)
            .and_then(|rest| rest.strip_prefix(key))
            .and_then(|rest| rest.strip_prefix(quote))
            .is_some_and(|rest| rest.trim_start_matches(' ').starts_with(':'))
    })
}

/// The file as written, for positions and the line shown under an error.
struct Source<'a> {
    text: &'a str,
    origin: &'a str,
    /// The values the file's `${NAME}`s stand for: an error never shows them (a problem
    /// found in the substituted text may quote one, as "found string …" does).
    secrets: Vec<String>,
}

/// The substituted values an error masks, longest first (so a value containing another is
/// masked whole); values of fewer than four bytes would mask ordinary words.
fn maskable(values: &[String]) -> Vec<String> {
    let mut out: Vec<String> = values.iter().filter(|v| v.len() >= 4).cloned().collect();
    out.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    out.dedup();
    out
}

impl Source<'_> {
    fn error(&self, offset: usize, problem: Problem) -> ScenarioError {
        let (line, column, source_line) = self.line_column(offset);
        // The excerpt must not show a secret the file holds (a password in a URL, a token in
        // a header); the caret stays at the masked value when it pointed inside it.
        let (source_line, column) = super::error::mask_secrets(&source_line, column);
        let problem = match self.secrets.iter().any(|s| problem.to_string().contains(s)) {
            true => {
                let text = self
                    .secrets
                    .iter()
                    .fold(problem.to_string(), |t, s| t.replace(s, "***"));
                Problem::Redacted { text }
            }
            false => problem,
        };
        // Control bytes would act on the terminal; one replacement character each keeps the
        // caret's column.
        let source_line: String = source_line
            .chars()
            .map(|c| {
                if c.is_control() && c != '\t' {
                    '\u{FFFD}'
                } else {
                    c
                }
            })
            .collect();
        ScenarioError::Invalid(Box::new(Diagnostic {
            origin: self.origin.to_string(),
            line,
            column,
            problem,
            source_line,
        }))
    }

    /// 1-based line and character column of a byte offset, and that line's text.
    fn line_column(&self, offset: usize) -> (usize, usize, String) {
        super::error::line_column(self.text, offset)
    }
}

/// Gives the raw file its meaning, one key at a time, in the order of the format's docs.
struct Checker<'a> {
    source: &'a Source<'a>,
    /// The text that was parsed (after substitution): positions are found in it.
    text: &'a str,
    offsets: &'a OffsetMap,
    ctx: &'a LoadContext<'a>,
    owner: Ownership,
    targets: TargetsFrom,
}

impl Checker<'_> {
    fn offset(&self, id: MarkId) -> usize {
        // `locate` fails only if the second parse differs from the first, which it cannot:
        // same text, same types. The start of the file is an honest fallback.
        yaml::locate::<RawScenario>(self.text, id).map_or(0, |o| self.offsets.to_original(o))
    }

    fn at(&self, id: MarkId, problem: Problem) -> ScenarioError {
        self.source.error(self.offset(id), problem)
    }

    fn scenario(&self, raw: RawScenario) -> Result<Scenario, ScenarioError> {
        let name = match raw.name {
            Some(name) if name.value.trim().is_empty() => {
                return Err(self.at(name.id, empty("name")));
            }
            Some(name) => name.value,
            None => Path::new(self.source.origin).file_stem().map_or_else(
                || self.source.origin.to_string(),
                |s| s.to_string_lossy().into_owned(),
            ),
        };
        if let (TargetsFrom::Caller, Some(Marked { value: t, id })) = (self.targets, &raw.targets) {
            self.caller_targets(t.as_ref(), *id)?;
        }
        let (listener, backend, pool) = match raw.targets {
            None if self.targets == TargetsFrom::Caller => (None, None, Vec::new()),
            None => return Err(self.source.error(0, Problem::NoTargets)),
            Some(Marked { value: None, id }) => return Err(self.at(id, Problem::NoTargets)),
            Some(Marked {
                value: Some(targets),
                id,
            }) => {
                if targets.listener.is_none() && targets.backend.is_none() && targets.pool.is_none()
                {
                    return Err(self.at(id, Problem::NoTargets));
                }
                let pool = match targets.pool {
                    None => Vec::new(),
                    Some(Marked { value, id }) if value.len() < 2 => {
                        return Err(self.at(id, Problem::PoolTooSmall))
                    }
                    Some(Marked { value, .. }) => value
                        .into_iter()
                        .map(|t| self.target(Role::Backend, t.value))
                        .collect::<Result<Vec<_>, _>>()?,
                };
                (
                    targets
                        .listener
                        .map(|t| self.target(Role::Listener, t.value))
                        .transpose()?,
                    targets
                        .backend
                        .map(|t| self.target(Role::Backend, t.value))
                        .transpose()?,
                    pool,
                )
            }
        };
        let profile = match raw.profile {
            None => Profile::default(),
            Some(profile) => self.profile(profile)?,
        };
        let probes = match raw.probes {
            None => Family::defaults().map(ProbeSpec::default_for).collect(),
            Some(probes) => self.probes(probes)?,
        };
        let probes = probes
            .into_iter()
            .map(|p| match p {
                ProbeSpec::Rate(spec) => ProbeSpec::Rate(RateSpec {
                    owner_confirmed: self.owner == Ownership::Confirmed,
                    ..spec
                }),
                other => other,
            })
            .collect();
        let limits = match raw.limits {
            None => Limits::default(),
            Some(raw) => {
                let mut limits = Limits::default();
                if let Some(n) = raw.max_requests {
                    limits.max_requests = self.count("max-requests", n)?;
                }
                if let Some(n) = raw.max_rate {
                    limits.max_rate = self.rate("max-rate", n)?;
                }
                if let Some(n) = raw.max_duration {
                    limits.max_duration = self.duration("max-duration", n)?;
                }
                if let Some(n) = raw.request_timeout {
                    limits.request_timeout = self.duration("request-timeout", n)?;
                }
                limits
            }
        };
        let (expect, expect_limits) = match raw.expect {
            None => (Vec::new(), Vec::new()),
            Some(pairs) => self.expectations(pairs)?,
        };
        let mut mask: Vec<String> = ALWAYS_MASKED.iter().map(|s| s.to_string()).collect();
        for name in raw.mask.unwrap_or_default() {
            if !is_token(&name.value) {
                return Err(self.at(name.id, Problem::BadHeaderName { name: name.value }));
            }
            if !mask.iter().any(|m| m.eq_ignore_ascii_case(&name.value)) {
                mask.push(name.value);
            }
        }
        Ok(Scenario {
            name,
            origin: self.source.origin.to_string(),
            listener,
            backend,
            pool,
            profile,
            probes,
            limits,
            expect,
            expect_limits,
            mask,
        })
    }

    /// A serve module's `targets:`: a listener at `${TARGET}`, maybe a backend at `${BACKEND}`,
    /// nothing else. The allow list decides where probes go, never a module's own URL.
    fn caller_targets(
        &self,
        targets: Option<&RawTargets>,
        id: MarkId,
    ) -> Result<(), ScenarioError> {
        let must_be = |role: Role| Problem::ModuleTarget {
            role,
            variable: match role {
                Role::Listener => MODULE_TARGET,
                Role::Backend => MODULE_BACKEND,
            },
        };
        let Some(targets) = targets else {
            return Err(self.at(id, must_be(Role::Listener)));
        };
        if let Some(pool) = &targets.pool {
            return Err(self.at(pool.id, Problem::ModulePool));
        }
        let Some(listener) = &targets.listener else {
            return Err(self.at(id, must_be(Role::Listener)));
        };
        for (role, target) in [
            (Role::Listener, Some(listener)),
            (Role::Backend, targets.backend.as_ref()),
        ] {
            let Some(target) = target else { continue };
            let variable = match role {
                Role::Listener => MODULE_TARGET,
                Role::Backend => MODULE_BACKEND,
            };
            if Some(&target.value.url.value) != (self.ctx.vars)(variable).as_ref() {
                return Err(self.at(target.value.url.id, must_be(role)));
            }
        }
        Ok(())
    }

    fn target(&self, role: Role, raw: RawTarget) -> Result<Target, ScenarioError> {
        let url = raw.url;
        let mut target = Target::parse(role, &url.value).map_err(|e| {
            let problem = match e {
                // A scenario has its own place for credentials: say that one.
                TargetError::Credentials { .. } => Problem::UrlCredentials { role },
                e => Problem::BadUrl {
                    role,
                    why: e.to_string(),
                },
            };
            self.at(url.id, problem)
        })?;
        if let Some(sni) = raw.sni {
            if !target.is_tls() {
                return Err(self.at(sni.id, Problem::SniWithoutTls { role }));
            }
            if sni.value.trim().is_empty() {
                return Err(self.at(sni.id, empty("sni")));
            }
            target.sni = Some(sni.value);
        }
        if let Some(verify) = raw.tls_verify {
            target.tls_verify = verify;
        }
        // Files are named relative to the scenario file, as its author sees them.
        let base = Path::new(self.source.origin)
            .parent()
            .unwrap_or(Path::new(""));
        let mut first_file = None;
        let tls = target.is_tls();
        for (key, value, slot) in [
            ("ca-file", raw.ca_file, &mut target.ca_file),
            ("client-cert", raw.client_cert, &mut target.client_cert),
            ("client-key", raw.client_key, &mut target.client_key),
        ] {
            let Some(value) = value else { continue };
            if !tls {
                return Err(self.at(
                    value.id,
                    Problem::TlsKeyWithoutTls {
                        key: key.to_string(),
                        role,
                    },
                ));
            }
            if value.value.trim().is_empty() {
                return Err(self.at(value.id, empty(key)));
            }
            first_file.get_or_insert(value.id);
            *slot = Some(base.join(&value.value));
        }
        if let Some(at) = first_file {
            target
                .check_tls_files()
                .map_err(|e| self.at(at, Problem::TlsFiles { why: e.to_string() }))?;
        }
        if let Some(to) = raw.connect_to {
            let rule = crate::target::ConnectRule::connect_to(&format!("::{}", to.value))
                .ok()
                .filter(|_| !to.value.trim().is_empty());
            match rule {
                Some(rule) => {
                    rule.apply(&mut target);
                }
                None => {
                    return Err(self.at(to.id, Problem::BadConnectTo { text: to.value }));
                }
            }
        }
        if let Some(v) = raw.ip_version {
            target.family = match &v.value {
                Number::Int(4) => Some(crate::transport::IpFamily::V4),
                Number::Int(6) => Some(crate::transport::IpFamily::V6),
                _ => {
                    return Err(self.at(
                        v.id,
                        Problem::OutOfRange {
                            key: "ip-version".into(),
                            expected: "4 or 6".into(),
                        },
                    ))
                }
            };
        }
        for (name, value) in raw.headers.unwrap_or_default().0 {
            if !is_token(&name.value) {
                return Err(self.at(name.id, Problem::BadHeaderName { name: name.value }));
            }
            if value.value.0.contains(['\r', '\n', '\0']) {
                return Err(self.at(value.id, Problem::BadHeaderValue { name: name.value }));
            }
            target.headers.push((name.value, value.value.0));
        }
        Ok(target)
    }

    fn profile(&self, raw: Marked<RawProfile>) -> Result<Profile, ScenarioError> {
        let by_name = |name: Marked<String>| {
            Profile::by_name(&name.value)
                .ok_or_else(|| self.at(name.id, Problem::UnknownProfile { name: name.value }))
        };
        let o = match raw.value {
            RawProfile::Name(name) => {
                return by_name(Marked {
                    value: name,
                    id: raw.id,
                })
            }
            RawProfile::Custom(o) => o,
        };
        let mut profile = match o.base {
            None => Profile::default(),
            Some(base) => by_name(base)?,
        };
        let mut declared = crate::profile::Numbers::default();
        if let Some(n) = o.max_header_bytes {
            declared.max_header_bytes = Some(self.size("max-header-bytes", n)?);
        }
        if let Some(n) = o.max_header_block_bytes {
            declared.max_header_block_bytes = Some(self.size("max-header-block-bytes", n)?);
        }
        if let Some(n) = o.max_uri_bytes {
            declared.max_uri_bytes = Some(self.size("max-uri-bytes", n)?);
        }
        if let Some(n) = o.request_timeout {
            declared.request_timeout = Some(self.duration("request-timeout", n)?);
        }
        if let Some(n) = o.connect_timeout {
            declared.connect_timeout = Some(self.duration("connect-timeout", n)?);
        }
        if let Some(n) = o.response_timeout {
            declared.response_timeout = Some(self.duration("response-timeout", n)?);
        }
        if let Some(n) = o.backend_keepalive_timeout {
            declared.backend_keepalive_timeout =
                Some(self.duration("backend-keepalive-timeout", n)?);
        }
        declared.trace_allowed = o.trace_allowed;
        // Declared numbers stay apart from the documented ones, so a finding never says the
        // vendor documents a number the scenario chose.
        profile = profile.with_declared(&declared);
        Ok(profile)
    }

    fn probes(&self, raw: Marked<Vec<Marked<RawProbe>>>) -> Result<Vec<ProbeSpec>, ScenarioError> {
        if raw.value.is_empty() {
            return Err(self.at(raw.id, empty("probes")));
        }
        let mut probes: Vec<ProbeSpec> = Vec::new();
        for item in raw.value {
            let (spec, named_at) = self.probe(item)?;
            if probes.iter().any(|p| p.family() == spec.family()) {
                return Err(self.at(
                    named_at,
                    Problem::DuplicateProbe {
                        family: spec.family().to_string(),
                    },
                ));
            }
            probes.push(spec);
        }
        Ok(probes)
    }

    /// The probe and where its family name is written.
    fn probe(&self, item: Marked<RawProbe>) -> Result<(ProbeSpec, MarkId), ScenarioError> {
        let family_of = |name: String, id| {
            Family::parse(&name).ok_or_else(|| self.at(id, Problem::UnknownFamily { name }))
        };
        let (family, params, extra_key) = match item.value {
            RawProbe::Bare(name) => {
                let family = family_of(name, item.id)?;
                return Ok((ProbeSpec::default_for(family), item.id));
            }
            RawProbe::WithParams {
                family,
                params,
                extra_key,
            } => (family, params, extra_key),
        };
        let named_at = family.id;
        let parsed = family_of(family.value, family.id)?;
        if let Some(key) = extra_key {
            return Err(self.at(key.id, Problem::TwoFamilies { key: key.value }));
        }
        let spec = match params {
            RawParams::Protocol | RawParams::Response | RawParams::Unknown => {
                ProbeSpec::default_for(parsed)
            }
            RawParams::Malformed(p) => ProbeSpec::Malformed {
                variants: p
                    .and_then(|p| p.variants)
                    .map(|v| {
                        self.names(v, "variants", |name| {
                            (self.ctx.known_variant)(name).then_some(()).ok_or_else(|| {
                                Problem::UnknownVariant {
                                    name: name.to_string(),
                                }
                            })
                        })
                    })
                    .transpose()?,
            },
            RawParams::Methods(p) => ProbeSpec::Methods {
                methods: p
                    .and_then(|p| p.methods)
                    .map(|v| {
                        self.names(v, "methods", |name| {
                            is_token(name)
                                .then_some(())
                                .ok_or_else(|| Problem::BadMethod {
                                    name: name.to_string(),
                                })
                        })
                    })
                    .transpose()?,
            },
            RawParams::HeaderSize(p) | RawParams::HeaderLimit(p) | RawParams::UriLimit(p) => {
                self.limit_search(parsed, p)?
            }
            RawParams::Partial(p) => {
                let mut spec = ProbeSpec::default_for(Family::Partial);
                if let (ProbeSpec::Partial { max_wait }, Some(n)) =
                    (&mut spec, p.and_then(|p| p.max_wait))
                {
                    *max_wait = self.duration("max-wait", n)?;
                }
                spec
            }
            RawParams::Latency(p) => {
                let mut spec = ProbeSpec::default_for(Family::Latency);
                if let (
                    ProbeSpec::Latency {
                        requests,
                        client_timeout,
                    },
                    Some(p),
                ) = (&mut spec, p)
                {
                    if let Some(n) = p.requests {
                        *requests = self.count("requests", n)?;
                    }
                    if let Some(n) = p.client_timeout {
                        *client_timeout = Some(self.duration("client-timeout", n)?);
                    }
                }
                spec
            }
            RawParams::Rate(p) => ProbeSpec::Rate(self.rate_spec(p)?),
            RawParams::Keepalive(p) => {
                let mut spec = ProbeSpec::default_for(Family::Keepalive);
                if let (
                    ProbeSpec::Keepalive {
                        max_wait,
                        reproduce,
                    },
                    Some(p),
                ) = (&mut spec, p)
                {
                    if let Some(n) = p.max_wait {
                        *max_wait = self.duration("max-wait", n)?;
                    }
                    if let Some(r) = p.reproduce {
                        *reproduce = r;
                    }
                }
                spec
            }
            RawParams::Connect(p) => {
                let mut spec = ProbeSpec::default_for(Family::Connect);
                if let (ProbeSpec::Connect { attempts }, Some(n)) =
                    (&mut spec, p.and_then(|p| p.attempts))
                {
                    *attempts = self.count("attempts", n)?;
                }
                spec
            }
            RawParams::Mtu(p) => self.mtu(p.map(|b| *b))?,
        };
        Ok((spec, named_at))
    }

    fn names(
        &self,
        list: Marked<Vec<Marked<String>>>,
        key: &str,
        check: impl Fn(&str) -> Result<(), Problem>,
    ) -> Result<Vec<String>, ScenarioError> {
        if list.value.is_empty() {
            return Err(self.at(list.id, empty(key)));
        }
        list.value
            .into_iter()
            .map(|name| match check(&name.value) {
                Ok(()) => Ok(name.value),
                Err(problem) => Err(self.at(name.id, problem)),
            })
            .collect()
    }

    /// `header-size`, `header-limit`, `uri-limit`: `{ bisect, min, max }` over the defaults.
    fn limit_search(
        &self,
        family: Family,
        raw: Option<RawHeaderSize>,
    ) -> Result<ProbeSpec, ScenarioError> {
        let rebuild = |bisect: bool, min: usize, max: usize| match family {
            Family::HeaderLimit => ProbeSpec::HeaderLimit { bisect, min, max },
            Family::UriLimit => ProbeSpec::UriLimit { bisect, min, max },
            _ => ProbeSpec::HeaderSize { bisect, min, max },
        };
        let (mut bisect, mut min, mut max) = match ProbeSpec::default_for(family) {
            ProbeSpec::HeaderSize { bisect, min, max }
            | ProbeSpec::HeaderLimit { bisect, min, max }
            | ProbeSpec::UriLimit { bisect, min, max } => (bisect, min, max),
            _ => (true, 1024, 128 * 1024),
        };
        let Some(raw) = raw else {
            return Ok(rebuild(bisect, min, max));
        };
        if let Some(b) = raw.bisect {
            bisect = b;
        }
        let mut blame = None;
        if let Some(n) = raw.max {
            blame = Some(n.id);
            max = self.size("max", n)?;
        }
        if let Some(n) = raw.min {
            blame = Some(n.id);
            min = self.size("min", n)?;
        }
        if let (Some(id), true) = (blame, min > max) {
            return Err(self.at(id, Problem::MinAboveMax { min, max }));
        }
        Ok(rebuild(bisect, min, max))
    }
    /// `rate: { start, step, factor, max-rate, max-requests, max-duration, sustain }` over the
    /// safe defaults; caps above the hard ceiling only with `--i-own-this-target`.
    fn rate_spec(&self, raw: Option<Box<RawRate>>) -> Result<RateSpec, ScenarioError> {
        let mut spec = RateSpec::default();
        let Some(raw) = raw else {
            return Ok(spec);
        };
        let owner = self.owner == Ownership::Confirmed;
        let above = |key: &str, value: String, ceiling: String| Problem::AboveCeiling {
            key: key.to_string(),
            value,
            ceiling,
        };
        if let Some(n) = raw.start {
            let id = n.id;
            spec.start = self.rate("start", n)?;
            if spec.start > CEILING_RATE && !owner {
                return Err(self.at(
                    id,
                    above(
                        "start",
                        format!("{} rps", spec.start),
                        format!("{CEILING_RATE} rps"),
                    ),
                ));
            }
        }
        if let Some(n) = raw.max_rate {
            let id = n.id;
            spec.max_rate = self.rate("max-rate", n)?;
            if spec.max_rate > CEILING_RATE && !owner {
                return Err(self.at(
                    id,
                    above(
                        "max-rate",
                        format!("{} rps", spec.max_rate),
                        format!("{CEILING_RATE} rps"),
                    ),
                ));
            }
            if spec.max_rate < spec.start {
                return Err(self.at(
                    id,
                    Problem::OutOfRange {
                        key: "max-rate".into(),
                        expected: format!("at least `start` ({} rps)", spec.start),
                    },
                ));
            }
        }
        if let Some(n) = raw.max_requests {
            let id = n.id;
            spec.max_requests = self.count("max-requests", n)?;
            if spec.max_requests > CEILING_REQUESTS && !owner {
                return Err(self.at(
                    id,
                    above(
                        "max-requests",
                        spec.max_requests.to_string(),
                        CEILING_REQUESTS.to_string(),
                    ),
                ));
            }
        }
        if let Some(n) = raw.max_duration {
            let id = n.id;
            spec.max_duration = self.duration("max-duration", n)?;
            if spec.max_duration > CEILING_DURATION && !owner {
                return Err(self.at(
                    id,
                    above(
                        "max-duration",
                        format!("{} s", spec.max_duration.as_secs_f64()),
                        format!("{} s", CEILING_DURATION.as_secs()),
                    ),
                ));
            }
        }
        if let Some(n) = raw.step {
            spec.step = self.duration("step", n)?;
        }
        if let Some(n) = raw.factor {
            let id = n.id;
            spec.factor = self.rate("factor", n)?;
            // Below 1.05 a ramp would crawl through hundreds of steps.
            if !(1.05..=10.0).contains(&spec.factor) {
                return Err(self.at(
                    id,
                    Problem::OutOfRange {
                        key: "factor".into(),
                        expected: "between 1.05 and 10 (each step's rate times this)".into(),
                    },
                ));
            }
        }
        if let Some(n) = raw.sustain {
            spec.sustain = self.share("sustain", n)?;
        }
        Ok(spec)
    }

    /// A share of something: `10%` or `0.1`, above 0 and at most 1.
    fn share(&self, key: &str, n: Marked<Number>) -> Result<f64, ScenarioError> {
        let value = match &n.value {
            Number::Int(i) => Some(*i as f64),
            Number::Float(f) => Some(*f),
            Number::Text(t) => match t.trim().strip_suffix('%') {
                Some(p) => p.trim().parse::<f64>().ok().map(|p| p / 100.0),
                None => t.trim().parse::<f64>().ok(),
            },
        };
        match value {
            Some(v) if v > 0.0 && v <= 1.0 => Ok(v),
            _ => Err(self.at(
                n.id,
                Problem::BadNumber {
                    key: key.to_string(),
                    text: n.value.to_string(),
                    expected: "a share above 0 and at most 1, such as 10% or 0.1".to_string(),
                },
            )),
        }
    }

    /// `mtu: { sizes, discover, max-mtu, echo-wait, request-wait }` over the defaults.
    fn mtu(&self, raw: Option<RawMtu>) -> Result<ProbeSpec, ScenarioError> {
        let mut spec = MtuSpec::default();
        let Some(raw) = raw else {
            return Ok(ProbeSpec::Mtu(spec));
        };
        if let Some(list) = raw.sizes {
            if list.value.is_empty() {
                return Err(self.at(list.id, empty("sizes")));
            }
            spec.sizes = list
                .value
                .into_iter()
                .map(|n| self.size("sizes", n))
                .collect::<Result<_, _>>()?;
        }
        if let Some(discover) = raw.discover {
            spec.discover = discover;
        }
        if let Some(n) = raw.max_mtu {
            let id = n.id;
            let bytes = self.size("max-mtu", n)?;
            spec.max_mtu = match u32::try_from(bytes) {
                Ok(m) if (pmtu::IPV4_MIN_MTU as usize..=65_535).contains(&bytes) => m,
                _ => {
                    return Err(self.at(
                        id,
                        Problem::BadNumber {
                            key: "max-mtu".into(),
                            text: bytes.to_string(),
                            expected: format!(
                                "a packet size from {} to 65535 bytes",
                                pmtu::IPV4_MIN_MTU
                            ),
                        },
                    ))
                }
            };
        }
        if let Some(n) = raw.echo_wait {
            spec.echo_wait = self.duration("echo-wait", n)?;
        }
        if let Some(n) = raw.request_wait {
            spec.request_wait = Some(self.duration("request-wait", n)?);
        }
        Ok(ProbeSpec::Mtu(spec))
    }

    fn expectations(
        &self,
        pairs: RawExpect,
    ) -> Result<(Vec<Expectation>, Vec<LimitExpectation>), ScenarioError> {
        let mut expect: Vec<Expectation> = Vec::new();
        let mut limits: Vec<LimitExpectation> = Vec::new();
        for (key, value) in pairs.0 {
            let limit_family = Family::parse(&key.value).filter(|f| {
                matches!(
                    f,
                    Family::HeaderSize | Family::HeaderLimit | Family::UriLimit
                )
            });
            if let Some(family) = limit_family {
                let RawExpected::Limit(bounds) = value.value else {
                    return Err(self.at(value.id, Problem::LimitNeedsBounds { family: key.value }));
                };
                if bounds.at_least.is_none() && bounds.at_most.is_none() {
                    return Err(self.at(value.id, Problem::LimitNeedsBounds { family: key.value }));
                }
                let mut blame = None;
                let at_least = match bounds.at_least {
                    Some(n) => {
                        blame = Some(n.id);
                        Some(self.size("at-least", n)?)
                    }
                    None => None,
                };
                let at_most = match bounds.at_most {
                    Some(n) => {
                        blame = Some(n.id);
                        Some(self.size("at-most", n)?)
                    }
                    None => None,
                };
                if let (Some(id), Some(at_least), Some(at_most)) = (blame, at_least, at_most) {
                    if at_least > at_most {
                        return Err(self.at(id, Problem::BoundsCrossed { at_least, at_most }));
                    }
                }
                let offset = self.offset(key.id);
                if limits.iter().any(|l| l.family == family) {
                    return Err(self
                        .source
                        .error(offset, Problem::DuplicateExpect { id: key.value }));
                }
                let (line, column, _) = self.source.line_column(offset);
                limits.push(LimitExpectation {
                    family,
                    at_least,
                    at_most,
                    line,
                    column,
                });
                continue;
            }
            if !(self.ctx.known_cause)(&key.value) {
                return Err(self.at(key.id, Problem::UnknownCause { id: key.value }));
            }
            let RawExpected::Verdict(text) = value.value else {
                return Err(self.at(value.id, Problem::VerdictExpected { id: key.value }));
            };
            let parsed = Verdict::parse(&text)
                .ok_or_else(|| self.at(value.id, Problem::UnknownVerdict { value: text }))?;
            let offset = self.offset(key.id);
            if expect.iter().any(|e| e.cause == key.value) {
                return Err(self
                    .source
                    .error(offset, Problem::DuplicateExpect { id: key.value }));
            }
            let (line, column, _) = self.source.line_column(offset);
            expect.push(Expectation {
                cause: key.value,
                verdict: parsed,
                line,
                column,
            });
        }
        Ok((expect, limits))
    }

    fn size(&self, key: &str, n: Marked<Number>) -> Result<usize, ScenarioError> {
        let bytes = match &n.value {
            Number::Int(i) if *i <= 0 => return Err(self.at(n.id, not_positive(key))),
            Number::Int(i) => u64::try_from(*i).ok(),
            Number::Float(_) => None,
            Number::Text(t) if t.trim_start().starts_with('-') => {
                return Err(self.at(n.id, not_positive(key)))
            }
            Number::Text(t) => parse_size(t),
        };
        let bad = || {
            self.at(
                n.id,
                Problem::BadSize {
                    text: n.value.to_string(),
                },
            )
        };
        match bytes {
            None => Err(bad()),
            Some(0) => Err(self.at(n.id, not_positive(key))),
            Some(b) => usize::try_from(b).map_err(|_| bad()),
        }
    }

    fn duration(&self, key: &str, n: Marked<Number>) -> Result<Duration, ScenarioError> {
        let negative = match &n.value {
            Number::Int(i) => *i < 0,
            Number::Float(f) => *f < 0.0,
            Number::Text(t) => t.trim_start().starts_with('-'),
        };
        if negative {
            return Err(self.at(n.id, not_positive(key)));
        }
        let parsed = match &n.value {
            Number::Int(i) => u64::try_from(*i).ok().map(Duration::from_secs),
            Number::Float(f) => Duration::try_from_secs_f64(*f).ok(),
            Number::Text(t) => parse_duration(t),
        };
        match parsed {
            None => Err(self.at(
                n.id,
                Problem::BadDuration {
                    text: n.value.to_string(),
                },
            )),
            Some(d) if d.is_zero() => Err(self.at(n.id, not_positive(key))),
            Some(d) => Ok(d),
        }
    }

    fn count(&self, key: &str, n: Marked<Number>) -> Result<u32, ScenarioError> {
        let whole = match &n.value {
            Number::Int(i) => Some(*i),
            Number::Float(_) => None,
            Number::Text(t) => t.trim().parse::<i128>().ok(),
        };
        match whole {
            None => Err(self.at(
                n.id,
                Problem::BadNumber {
                    key: key.to_string(),
                    text: n.value.to_string(),
                    expected: "a whole number".to_string(),
                },
            )),
            Some(i) if i <= 0 => Err(self.at(n.id, not_positive(key))),
            Some(i) => u32::try_from(i).map_err(|_| {
                self.at(
                    n.id,
                    Problem::TooLarge {
                        key: key.to_string(),
                        max: u32::MAX.to_string(),
                    },
                )
            }),
        }
    }

    fn rate(&self, key: &str, n: Marked<Number>) -> Result<f64, ScenarioError> {
        let rate = match &n.value {
            Number::Int(i) => Some(*i as f64),
            Number::Float(f) => Some(*f),
            Number::Text(t) => t.trim().parse::<f64>().ok(),
        };
        match rate {
            Some(r) if r.is_finite() && r > 0.0 => Ok(r),
            Some(r) if r.is_finite() => Err(self.at(n.id, not_positive(key))),
            _ => Err(self.at(
                n.id,
                Problem::BadNumber {
                    key: key.to_string(),
                    text: n.value.to_string(),
                    expected: "requests per second, such as 20 or 0.5".to_string(),
                },
            )),
        }
    }
}

fn empty(key: &str) -> Problem {
    Problem::EmptyList {
        key: key.to_string(),
    }
}

fn not_positive(key: &str) -> Problem {
    Problem::NotPositive {
        key: key.to_string(),
    }
}
