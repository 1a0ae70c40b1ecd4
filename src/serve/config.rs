//! The serve config (`lbprobe serve --config FILE`): the modules a probe can name, the
//! targets it may be sent to, and the server's own caps. Checked whole before the server
//! listens, and again at each reload, with `file:line:column` errors; nothing here sends a byte.
//!
//! ```yaml
//! allow: [127.0.0.0/8, "*.lb.example", "https://edge.example/health"]
//! limits: { concurrent-probes: 4, when-busy: refuse, timeout-margin: 500ms }
//! modules:
//!   smoke: scenarios/smoke.yaml          # a scenario file, relative to this file
//!   slow:                                # or the scenario's keys, written here
//!     probes: [latency, connect]
//!     limits: { max-requests: 50, request-timeout: 5s }
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;

use super::allow::{AllowError, AllowList, Allowed};
use crate::run::Job;
use crate::scenario::{self, Problem, ScenarioError};
use crate::scenario_job::{self, JobError};
use crate::target::{Role, Target};
use crate::yaml::{self, MarkId, Marked};

/// A config is a page of YAML; anything this big is the wrong file.
const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// A loaded, checked serve config.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// The file, as given: reloads read it again.
    pub path: PathBuf,
    pub modules: BTreeMap<String, Module>,
    pub allow: AllowList,
    pub caps: Caps,
}

/// One module: a scenario ready to be given a probe's targets.
#[derive(Debug, Clone)]
pub struct Module {
    pub name: String,
    /// The run as the scenario says it, checked with stand-in targets: its probes and caps.
    pub job: Job,
    /// The scenario's text and where it comes from: a module with `targets:` is loaded again
    /// for each probe, its `${TARGET}` and `${BACKEND}` being the probe's.
    text: String,
    origin: String,
    /// It writes `targets:` (its listener's TLS settings, headers... apply to every probe).
    templated: bool,
    /// It writes a backend at `${BACKEND}`: every probe must give `backend=`.
    needs_backend: bool,
    /// For a module written in the config: the config's text, whose lines an error shows
    /// (the module's own text has the rest of the config blanked).
    config_text: Option<String>,
}

/// What a module's targets stand in for while the config is checked: names that resolve
/// nowhere (`.invalid`), https so that `sni:` is accepted as for a real https target.
const STAND_IN_TARGET: &str = "https://target.lbprobe.invalid/";
const STAND_IN_BACKEND: &str = "https://backend.lbprobe.invalid/";

/// Why a probe's parameters do not make a run of its module (a 400).
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("target: {0}")]
    Target(crate::target::TargetError),
    #[error("backend: {0}")]
    Backend(crate::target::TargetError),
    #[error("module {module:?} probes a backend too: add &backend=URL")]
    NeedsBackend { module: String },
    /// A module whose `targets:` does not load with these URLs (an https-only key with an
    /// http target, say): where in the module.
    #[error("module {module:?} with this target: {source}")]
    Module {
        module: String,
        #[source]
        source: JobError,
    },
}

impl Module {
    fn load(
        name: &str,
        text: String,
        origin: String,
        config_text: Option<String>,
    ) -> Result<Module, JobError> {
        let mut job = scenario_job::module(
            &text,
            &origin,
            Some(STAND_IN_TARGET),
            Some(STAND_IN_BACKEND),
        )
        .map_err(|e| with_config_line(e, config_text.as_deref()))?;
        job.name = name.to_string();
        let templated = job.plan.listener.is_some();
        let needs_backend = job.plan.backend.is_some();
        Ok(Module {
            name: name.to_string(),
            job,
            text,
            origin,
            templated,
            needs_backend,
            config_text,
        })
    }

    /// The module's run against a probe's target (and backend): the module's own `targets:`
    /// with these URLs when it writes them, else plain targets. Nothing is checked against the
    /// allow list here: the caller checks the run's every target.
    pub fn job_for(&self, target: &str, backend: Option<&str>) -> Result<Job, ProbeError> {
        let plain_backend = |backend: Option<&str>| {
            backend
                .map(|b| Target::parse(Role::Backend, b).map_err(ProbeError::Backend))
                .transpose()
        };
        if !self.templated {
            let mut job = self.job.clone();
            job.plan.listener =
                Some(Target::parse(Role::Listener, target).map_err(ProbeError::Target)?);
            job.plan.backend = plain_backend(backend)?;
            return Ok(job);
        }
        if self.needs_backend && backend.is_none() {
            return Err(ProbeError::NeedsBackend {
                module: self.name.clone(),
            });
        }
        // The strict URL checks first, so a bad URL reads as one, not as a scenario error.
        Target::parse(Role::Listener, target).map_err(ProbeError::Target)?;
        let extra_backend = if self.needs_backend {
            None
        } else {
            plain_backend(backend)?
        };
        let mut job = scenario_job::module(&self.text, &self.origin, Some(target), backend)
            .map_err(|e| ProbeError::Module {
                module: self.name.clone(),
                source: with_config_line(e, self.config_text.as_deref()),
            })?;
        job.name = self.name.clone();
        if extra_backend.is_some() {
            job.plan.backend = extra_backend;
        }
        Ok(job)
    }
}

/// The server's caps on probes, besides each module's own (its `limits:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// Probes running at once, all targets together.
    pub concurrent_probes: usize,
    /// What a probe gets when the cap is reached or its target is already being probed.
    pub when_busy: WhenBusy,
    /// Taken off the scrape's timeout, so the answer reaches Prometheus before it gives up.
    pub timeout_margin: Duration,
}

impl Default for Caps {
    fn default() -> Caps {
        Caps {
            concurrent_probes: 4,
            when_busy: WhenBusy::Refuse,
            timeout_margin: Duration::from_millis(500),
        }
    }
}

/// A probe that finds the server busy (its target already probed, or every slot taken).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenBusy {
    /// 429 at once.
    Refuse,
    /// Wait for the slot within the scrape's timeout, then 429.
    Wait,
}

/// A serve config that does not load.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: cannot read the serve config: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: the serve config is larger than {limit} bytes; is this the right file?", path.display())]
    TooLarge { path: PathBuf, limit: u64 },
    #[error("{}: the serve config is not UTF-8 (the first bad byte is at {at})", path.display())]
    NotUtf8 { path: PathBuf, at: usize },
    /// Wrong somewhere in the config's text; says where.
    #[error("{0}")]
    Invalid(Box<ConfigDiagnostic>),
    /// A module's scenario (its own file's position, or the config's for one written inline).
    #[error("module {name:?}: {source}")]
    Module {
        name: String,
        #[source]
        source: JobError,
    },
}

/// One problem at one place in the config.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigDiagnostic {
    pub origin: String,
    pub line: usize,
    pub column: usize,
    pub problem: ConfigProblem,
    pub source_line: String,
}

impl fmt::Display for ConfigDiagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        crate::scenario::write_at(
            f,
            &self.origin,
            (self.line, self.column),
            &self.problem,
            &self.source_line,
        )
    }
}

/// What was wrong, in words that say what was expected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigProblem {
    /// YAML syntax, unknown or missing keys, wrong types: as in scenarios.
    #[error(transparent)]
    Yaml(Problem),
    #[error("`allow:` is empty: name the targets probes may go to (URLs, host patterns, address ranges)")]
    NoAllow,
    #[error("bad `allow:` entry: {0}")]
    Allow(#[from] AllowError),
    #[error("no modules: name at least one under `modules:`")]
    NoModules,
    #[error("module name {name:?}: expected letters, digits, `_`, `-` and `.` (it goes in URLs and metric labels)")]
    ModuleName { name: String },
    #[error("a module is a scenario file (`scenario: FILE`) or the scenario's keys written here, not both")]
    ModuleBoth,
    #[error("{key} must be at least 1")]
    Zero { key: &'static str },
    #[error("when-busy: expected refuse or wait, not {found:?}")]
    WhenBusy { found: String },
    #[error("{key}: expected a duration such as 500ms or 1s, not {found:?}")]
    Duration { key: &'static str, found: String },
}

#[derive(Debug, serde::Deserialize)]
#[serde(
    deny_unknown_fields,
    rename_all = "kebab-case",
    expecting = "a serve config: a mapping with `allow:`, `modules:` and optionally `limits:`"
)]
struct RawConfig {
    allow: Marked<Vec<Marked<String>>>,
    modules: Marked<RawModules>,
    limits: Option<RawCaps>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(
    deny_unknown_fields,
    rename_all = "kebab-case",
    expecting = "a mapping with concurrent-probes, when-busy and/or timeout-margin"
)]
struct RawCaps {
    concurrent_probes: Option<Marked<u32>>,
    when_busy: Option<Marked<String>>,
    timeout_margin: Option<Marked<String>>,
}

/// `modules:` in file order.
#[derive(Debug, Default)]
struct RawModules(Vec<(Marked<String>, Marked<RawModule>)>);

impl<'de> Deserialize<'de> for RawModules {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ModulesVisitor;
        impl<'de> Visitor<'de> for ModulesVisitor {
            type Value = RawModules;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping of module names to scenario files or scenario keys")
            }
            fn visit_unit<E>(self) -> Result<RawModules, E> {
                Ok(RawModules::default())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawModules, A::Error> {
                let mut modules = Vec::new();
                while let Some(pair) = map.next_entry()? {
                    modules.push(pair);
                }
                Ok(RawModules(modules))
            }
        }
        d.deserialize_any(ModulesVisitor)
    }
}

/// One module as written: a file name, or a mapping (`scenario: FILE`, or the scenario's keys,
/// which the scenario loader reads from the config's own text).
#[derive(Debug)]
enum RawModule {
    File(String),
    Mapping {
        scenario: Option<Marked<String>>,
        /// The other keys, for the error when `scenario:` comes with them.
        others: Vec<MarkId>,
    },
}

impl<'de> Deserialize<'de> for RawModule {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ModuleVisitor;
        impl<'de> Visitor<'de> for ModuleVisitor {
            type Value = RawModule;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a scenario file, or a mapping with `scenario: FILE` or the scenario's keys (probes, profile, limits, expect, mask)")
            }
            fn visit_str<E>(self, v: &str) -> Result<RawModule, E> {
                Ok(RawModule::File(v.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawModule, A::Error> {
                let mut scenario = None;
                let mut others = Vec::new();
                while let Some(key) = map.next_key::<Marked<String>>()? {
                    if key.value == "scenario" {
                        scenario = Some(map.next_value::<Marked<String>>()?);
                    } else {
                        others.push(key.id);
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(RawModule::Mapping { scenario, others })
            }
        }
        d.deserialize_any(ModuleVisitor)
    }
}

impl ServeConfig {
    /// Read and check the config at `path`: every module loaded, every allow entry parsed.
    pub fn load(path: &Path) -> Result<ServeConfig, ConfigError> {
        let text = read(path)?;
        ServeConfig::from_text(path, &text)
    }

    /// Check config text; `path` names it in errors and is where module files are found from.
    pub fn from_text(path: &Path, text: &str) -> Result<ServeConfig, ConfigError> {
        let origin = path.display().to_string();
        let doc = Doc {
            text,
            origin: &origin,
        };
        let raw: RawConfig = yaml::parse(text).map_err(|e| {
            let at = e.offset.unwrap_or(0);
            let problem = match (e.problem, e.context) {
                (yaml::YamlProblem::Syntax { message }, Some((context, _))) => Problem::Syntax {
                    message: format!("{message}, {context}"),
                },
                (problem, _) => problem.into(),
            };
            doc.error(at, ConfigProblem::Yaml(problem))
        })?;

        let mut allow = Vec::new();
        if raw.allow.value.is_empty() {
            return Err(doc.at(raw.allow.id, ConfigProblem::NoAllow));
        }
        for entry in raw.allow.value {
            let a = Allowed::parse(&entry.value).map_err(|e| doc.at(entry.id, e.into()))?;
            allow.push(a);
        }

        let mut caps = Caps::default();
        if let Some(c) = raw.limits {
            if let Some(n) = c.concurrent_probes {
                if n.value == 0 {
                    return Err(doc.at(
                        n.id,
                        ConfigProblem::Zero {
                            key: "concurrent-probes",
                        },
                    ));
                }
                caps.concurrent_probes = n.value as usize;
            }
            if let Some(w) = c.when_busy {
                caps.when_busy = match w.value.as_str() {
                    "refuse" => WhenBusy::Refuse,
                    "wait" => WhenBusy::Wait,
                    _ => {
                        return Err(doc.at(w.id, ConfigProblem::WhenBusy { found: w.value }));
                    }
                };
            }
            if let Some(m) = c.timeout_margin {
                caps.timeout_margin =
                    crate::scenario::parse_duration(&m.value).ok_or_else(|| {
                        doc.at(
                            m.id,
                            ConfigProblem::Duration {
                                key: "timeout-margin",
                                found: m.value.clone(),
                            },
                        )
                    })?;
            }
        }

        if raw.modules.value.0.is_empty() {
            return Err(doc.at(raw.modules.id, ConfigProblem::NoModules));
        }
        let base = path.parent().unwrap_or(Path::new(""));
        let mut modules = BTreeMap::new();
        for (name, module) in raw.modules.value.0 {
            let valid = !name.value.is_empty()
                && name
                    .value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
            if !valid {
                return Err(doc.at(
                    name.id,
                    ConfigProblem::ModuleName {
                        name: name.value.clone(),
                    },
                ));
            }
            let module_error = |source| ConfigError::Module {
                name: name.value.clone(),
                source,
            };
            let load_file = |file: String| {
                let file = base.join(file);
                let text = crate::scenario::read_file(&file)
                    .map_err(|e| module_error(JobError::Scenario(e)))?;
                Module::load(&name.value, text, file.display().to_string(), None)
                    .map_err(module_error)
            };
            let module = match module.value {
                RawModule::File(file) => load_file(file)?,
                RawModule::Mapping {
                    scenario: Some(file),
                    others,
                } if others.is_empty() => load_file(file.value)?,
                RawModule::Mapping {
                    scenario: Some(_),
                    others,
                } => return Err(doc.at(others[0], ConfigProblem::ModuleBoth)),
                RawModule::Mapping { scenario: None, .. } => {
                    let module_text = only_module(text, doc.offset(name.id), doc.offset(module.id));
                    Module::load(
                        &name.value,
                        module_text,
                        origin.clone(),
                        Some(text.to_string()),
                    )
                    .map_err(module_error)?
                }
            };
            modules.insert(name.value, module);
        }
        Ok(ServeConfig {
            path: path.to_path_buf(),
            modules,
            allow: AllowList(allow),
            caps,
        })
    }
}

/// An error in a module written in the config, showing the config's line as written rather
/// than the module's copy of it (blank but for the module); the copy stays when the line holds
/// something an excerpt masks.
fn with_config_line(e: JobError, config_text: Option<&str>) -> JobError {
    let Some(text) = config_text else { return e };
    match e {
        JobError::Scenario(ScenarioError::Invalid(mut d)) => {
            if let Some(line) = text.lines().nth(d.line.saturating_sub(1)) {
                let line = line.trim_end_matches('\r');
                if crate::scenario::mask_secrets(line, d.column).0 == line {
                    d.source_line = line.to_string();
                }
            }
            JobError::Scenario(ScenarioError::Invalid(d))
        }
        other => other,
    }
}

fn read(path: &Path) -> Result<String, ConfigError> {
    let bytes = scenario::read_bounded(path, MAX_FILE_BYTES).map_err(|e| match e {
        scenario::BoundedRead::Io(source) => ConfigError::Read {
            path: path.to_path_buf(),
            source,
        },
        scenario::BoundedRead::TooLarge(limit) => ConfigError::TooLarge {
            path: path.to_path_buf(),
            limit,
        },
    })?;
    String::from_utf8(bytes).map_err(|e| ConfigError::NotUtf8 {
        path: path.to_path_buf(),
        at: e.utf8_error().valid_up_to(),
    })
}

/// The config's text, for positions.
struct Doc<'a> {
    text: &'a str,
    origin: &'a str,
}

impl Doc<'_> {
    fn offset(&self, id: MarkId) -> usize {
        // Same text, same types as the parse that handed out `id`: it is found. The start of
        // the file is an honest fallback.
        yaml::locate::<RawConfig>(self.text, id).unwrap_or(0)
    }

    fn at(&self, id: MarkId, problem: ConfigProblem) -> ConfigError {
        self.error(self.offset(id), problem)
    }

    fn error(&self, offset: usize, problem: ConfigProblem) -> ConfigError {
        let (line, column, source_line) = scenario::line_column(self.text, offset);
        ConfigError::Invalid(Box::new(ConfigDiagnostic {
            origin: self.origin.to_string(),
            line,
            column,
            problem,
            source_line,
        }))
    }
}

/// The config's text with everything but one module's value blanked out (a space for each
/// character, line breaks kept), the value where it was: the scenario loader reads it as a
/// scenario, and its errors point at the config's own lines and columns. A flow mapping
/// (`{probes: [latency]}`) ends at its closing brace; a block mapping at the first line indented
/// no deeper than its key (at `key_at`), as YAML's own rule has it.
fn only_module(text: &str, key_at: usize, value_at: usize) -> String {
    // Offsets come from the YAML library's marks: kept inside the text and on a character.
    let on_char = |mut at: usize| {
        at = at.min(text.len());
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        at
    };
    let (key_at, value_at) = (on_char(key_at), on_char(value_at.max(key_at)));
    let end = if text[value_at..].starts_with('{') {
        flow_end(text, value_at)
    } else {
        block_end(text, key_at, value_at)
    };
    text.char_indices()
        .map(|(i, c)| {
            if c == '\n' || (value_at..end).contains(&i) {
                c
            } else {
                ' '
            }
        })
        .collect()
}

/// Just past the `}` closing the flow collection that starts at `start`, quotes and nesting
/// followed; the end of the text when it is not closed (the loader then says what is wrong).
fn flow_end(text: &str, start: usize) -> usize {
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut chars = text[start..].char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match (quote, c) {
            // '' inside single quotes is a quote, not the end.
            (Some('\''), '\'') if chars.peek().is_some_and(|(_, n)| *n == '\'') => {
                chars.next();
            }
            (Some('"'), '\\') => {
                chars.next();
            }
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '{' | '[') => depth += 1,
            (None, '}' | ']') => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return start + i + c.len_utf8();
                }
            }
            _ => {}
        }
    }
    text.len()
}

/// The start of the first line after the value's that is indented no deeper than the key and
/// is not blank or a comment; the end of the text when there is none.
fn block_end(text: &str, key_at: usize, value_at: usize) -> usize {
    let line_of = |at: usize| text[..at].rfind('\n').map_or(0, |i| i + 1);
    let key_indent = key_at - line_of(key_at);
    let mut start = text[value_at..]
        .find('\n')
        .map_or(text.len(), |i| value_at + i + 1);
    while start < text.len() {
        let line = text[start..].split('\n').next().unwrap_or_default();
        let body = line.trim_start_matches(' ');
        let blank = body.trim().is_empty() || body.starts_with('#');
        if !blank && line.len() - body.len() <= key_indent {
            return start;
        }
        start += line.len() + 1;
    }
    text.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<ServeConfig, ConfigError> {
        ServeConfig::from_text(Path::new("serve.yaml"), text)
    }

    /// `file:line:column: problem` of an error, without the excerpt.
    fn first_line(e: &ConfigError) -> String {
        e.to_string().lines().next().unwrap_or_default().to_string()
    }

    #[test]
    fn a_config_loads_with_inline_modules_and_its_caps() {
        let c = load(
            "allow: [127.0.0.0/8, '*.lb.example']\nlimits: { concurrent-probes: 2, when-busy: wait, timeout-margin: 1s }\nmodules:\n  a:\n    probes: [latency]\n    limits: { max-requests: 7 }\n  b: {probes: [connect], expect: {504.connect-timeout: ruled_out}}\n",
        )
        .expect("loads");
        assert_eq!(c.modules.len(), 2);
        assert_eq!(c.modules["a"].job.plan.limits.max_requests, 7);
        assert_eq!(c.modules["a"].job.name, "a");
        assert!(c.modules["a"].job.plan.listener.is_none());
        assert_eq!(c.modules["b"].job.expect.len(), 1);
        assert_eq!(c.modules["b"].job.expect[0].location, "serve.yaml:7:35");
        assert_eq!(
            c.caps,
            Caps {
                concurrent_probes: 2,
                when_busy: WhenBusy::Wait,
                timeout_margin: Duration::from_secs(1),
            }
        );
    }

    #[test]
    fn every_error_points_at_its_spot_in_the_config() {
        let table: &[(&str, &str)] = &[
            (
                "allow: [127.0.0.1]\nmodules:\n  a:\n    probes: [latency]\n    limits: { max-rate: 0 }\n",
                "module \"a\": serve.yaml:5:25: `max-rate` must be greater than zero",
            ),
            (
                "allow: [127.0.0.1]\nmodules:\n  a: {probes: [latency], listner: x}\n",
                "module \"a\": serve.yaml:3:26: unknown key \"listner\"",
            ),
            (
                "allow: [127.0.0.1]\nmodules:\n  a:\n    targets: {listener: {url: 'http://x/'}}\n",
                "module \"a\": serve.yaml:4:31: a serve module's listener URL is ${TARGET}",
            ),
            (
                "allow: [127.0.0.1]\nmodules:\n  a:\n    targets: {listener: {url: '${TARGET}'}, backend: {url: '${TARGET}'}}\n",
                "module \"a\": serve.yaml:4:60: a serve module's backend URL is ${BACKEND}",
            ),
            (
                "allow: [127.0.0.1]\nmodules:\n  a:\n    targets: {backend: {url: '${BACKEND}'}}\n",
                "module \"a\": serve.yaml:4:14: a serve module's listener URL is ${TARGET}",
            ),
            (
                "allow: [127.0.0.1]\nmodules:\n  a:\n    targets: {listener: {url: '${TARGET}'}, pool: [{url: 'http://a/'}, {url: 'http://b/'}]}\n",
                "module \"a\": serve.yaml:4:51: a serve module has no pool",
            ),
            ("allow: []\nmodules: {a: {}}\n", "serve.yaml:1:8: `allow:` is empty"),
            (
                "allow: [127.0.0.1, 'ftp://x/']\nmodules: {a: {}}\n",
                "serve.yaml:1:20: bad `allow:` entry",
            ),
            ("allow: [127.0.0.1]\nmodules: {}\n", "serve.yaml:2:10: no modules"),
            (
                "allow: [127.0.0.1]\nmodules: {'a b': {}}\n",
                "serve.yaml:2:11: module name \"a b\"",
            ),
            (
                "allow: [127.0.0.1]\nlimits: {when-busy: later}\nmodules: {a: {}}\n",
                "serve.yaml:2:21: when-busy: expected refuse or wait",
            ),
            (
                "allow: [127.0.0.1]\nlimits: {concurrent-probes: 0}\nmodules: {a: {}}\n",
                "serve.yaml:2:29: concurrent-probes must be at least 1",
            ),
            (
                "allow: [127.0.0.1]\nmodule: {a: {}}\n",
                "serve.yaml:2:1: unknown key \"module\"",
            ),
            (
                "allow: [127.0.0.1]\nmodules: {a: missing-file.yaml}\n",
                "module \"a\": missing-file.yaml: cannot read the scenario file",
            ),
        ];
        for (text, expected) in table {
            let e = load(text).expect_err(text);
            let got = first_line(&e);
            assert!(
                got.starts_with(expected),
                "{text}\n got: {got}\n want: {expected}"
            );
        }
    }

    #[test]
    fn only_the_module_keeps_its_lines_and_columns() {
        let text = "allow: [127.0.0.1]\nmodules:\n  a:\n    probes: [latency]\n    # note\n    profile: nginx\n  b: {probes: [connect]}\nlimits: {}\n";
        let blank = |line: &str| " ".repeat(line.chars().count());
        let key_a = text.find("a:").unwrap();
        let value_a = text.find("probes: [latency]").unwrap();
        assert_eq!(
            only_module(text, key_a, value_a),
            format!(
                "{}\n{}\n{}\n    probes: [latency]\n    # note\n    profile: nginx\n{}\n{}\n",
                blank("allow: [127.0.0.1]"),
                blank("modules:"),
                blank("  a:"),
                blank("  b: {probes: [connect]}"),
                blank("limits: {}"),
            )
        );
        let key_b = text.find("b:").unwrap();
        let value_b = text.find("{probes: [connect]}").unwrap();
        let only_b = only_module(text, key_b, value_b);
        assert_eq!(only_b.lines().nth(6), Some("     {probes: [connect]}"));
        assert_eq!(only_b.trim(), "{probes: [connect]}");
    }

    /// Every cut of a config and every stray character in it is an error or a config, never a
    /// panic: the module's text is cut out of the config by offsets, which must stay in bounds.
    #[test]
    fn broken_configs_are_errors_never_panics() {
        let text = "allow: [127.0.0.1, '*.x']\nmodules:\n  a: {probes: [latency], expect: {'504.backend-slow': ruled_out}}\n  b:\n    targets: {listener: {url: '${TARGET}'}}\n    probes: [connect] # é\n";
        assert!(load(text).is_ok());
        let boundaries: Vec<usize> = (0..=text.len())
            .filter(|i| text.is_char_boundary(*i))
            .collect();
        for &cut in &boundaries {
            let _ = load(&text[..cut]);
        }
        for &at in boundaries.iter().step_by(3) {
            for c in ["{", "}", "'", "\"", "\n", " ", "#", "é", "- "] {
                let mut t = text.to_string();
                t.insert_str(at, c);
                let _ = load(&t);
            }
        }
    }

    #[test]
    fn a_module_with_targets_gives_each_probe_its_settings() {
        let c = load(
            "allow: [127.0.0.1]\nmodules:\n  plain: {probes: [latency]}\n  staging:\n    targets:\n      listener: { url: '${TARGET}', tls-verify: false, sni: lb.example, headers: { Authorization: Bearer x } }\n      backend: { url: '${BACKEND}' }\n    probes: [latency]\n",
        )
        .expect("loads");
        let staging = &c.modules["staging"];
        let job = staging
            .job_for(
                "https://127.0.0.1:8443/health",
                Some("http://127.0.0.1:8080/"),
            )
            .expect("a run");
        let l = job.plan.listener.as_ref().expect("a listener");
        assert_eq!(
            (l.host.as_str(), l.port, l.path.as_str()),
            ("127.0.0.1", 8443, "/health")
        );
        assert!(!l.tls_verify);
        assert_eq!(l.sni.as_deref(), Some("lb.example"));
        assert_eq!(l.headers.len(), 1);
        assert_eq!(job.plan.backend.as_ref().map(|b| b.port), Some(8080));
        assert!(matches!(
            staging.job_for("https://127.0.0.1/", None),
            Err(ProbeError::NeedsBackend { .. })
        ));
        // `sni:` needs https: a probe of an http target says where the module says it.
        let e = staging
            .job_for("http://127.0.0.1/", Some("http://127.0.0.1:8080/"))
            .expect_err("sni on http");
        assert!(e.to_string().contains("serve.yaml:6:"), "{e}");
        // Without `targets:`, the probe's URLs as they are, TLS verified.
        let job = c.modules["plain"]
            .job_for("https://127.0.0.1/", Some("http://127.0.0.1:8080/"))
            .expect("a run");
        assert!(job.plan.listener.as_ref().is_some_and(|l| l.tls_verify));
        assert!(job.plan.backend.is_some());
        assert!(matches!(
            c.modules["plain"].job_for("ftp://127.0.0.1/", None),
            Err(ProbeError::Target(_))
        ));
    }

    #[test]
    fn modules_written_as_one_flow_mapping_load_each_alone() {
        let c = load(
            "allow: [127.0.0.1]\nmodules: {a: {probes: [latency], expect: {'504.backend-slow': ruled_out}}, b: {probes: ['connect']}}\n",
        )
        .expect("loads");
        assert_eq!(c.modules["a"].job.expect[0].location, "serve.yaml:2:43");
        assert_eq!(c.modules["b"].job.plan.probes.len(), 1);
        let e =
            load("allow: [127.0.0.1]\nmodules: {a: {probes: [latency]}, b: {probes: [conect]}}\n")
                .expect_err("an unknown family");
        assert!(
            first_line(&e).starts_with("module \"b\": serve.yaml:2:48: unknown probe family"),
            "{e}"
        );
        // The excerpt is the config's line as written, not the module's blanked copy.
        assert!(
            e.to_string()
                .contains("2 | modules: {a: {probes: [latency]}, b: {probes: [conect]}}"),
            "{e}"
        );
    }
}
