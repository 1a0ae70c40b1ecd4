//! What a kind of load balancer documents (its limits and timeouts), what the person running
//! lbprobe declared for this listener, and how the profile came to apply.
//!
//! A profile is a prior for comparison, never evidence: rules prefer what the run measured, and
//! every number read from here carries its [`Basis`] so a finding can say where it came from.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Where a number or a fact in a finding comes from. Ordered by trust: what this run measured
/// beats what the user declared, which beats what a profile documents, which beats what
/// lbprobe assumes where nobody documents anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// Seen in this run: an answer, a time, a threshold found by the probes.
    Measured,
    /// Set by the person running lbprobe (scenario `profile:` overrides, `scan --set`).
    Declared,
    /// Read from the profile's documentation of its kind of load balancer.
    Documented,
    /// Nobody documents it; lbprobe takes a usual value.
    Assumed,
}

impl Basis {
    pub fn as_str(self) -> &'static str {
        match self {
            Basis::Measured => "measured",
            Basis::Declared => "declared",
            Basis::Documented => "documented",
            Basis::Assumed => "assumed",
        }
    }
}

impl fmt::Display for Basis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The numbers a profile can hold. `None`: not known (an unidentified listener documents
/// nothing; a declaration leaves the rest to the documentation).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Numbers {
    /// Largest single header line (`Name: value`, without CRLF) the listener accepts.
    pub max_header_bytes: Option<usize>,
    /// Largest header block (every header line with its CRLF) the listener accepts.
    pub max_header_block_bytes: Option<usize>,
    /// Largest request URI the listener accepts.
    pub max_uri_bytes: Option<usize>,
    /// How long the listener waits for a complete client request.
    #[serde(with = "secs")]
    pub request_timeout: Option<Duration>,
    /// How long the listener waits for a TCP connection to a backend.
    #[serde(with = "secs")]
    pub connect_timeout: Option<Duration>,
    /// How long the listener waits for a backend's response once the request is sent.
    #[serde(with = "secs")]
    pub response_timeout: Option<Duration>,
    /// How long the listener keeps an idle connection to a backend open for reuse: a backend
    /// that closes idle connections sooner meets the keep-alive race (`502.keepalive-race`).
    #[serde(with = "secs")]
    pub backend_keepalive_timeout: Option<Duration>,
    /// Whether the listener passes TRACE on.
    pub trace_allowed: Option<bool>,
}

impl Numbers {
    /// The names of the fields that hold a value, as written in scenarios and `--set`.
    pub fn set_keys(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        let mut add = |set: bool, key: &'static str| {
            if set {
                out.push(key);
            }
        };
        add(self.max_header_bytes.is_some(), "max-header-bytes");
        add(
            self.max_header_block_bytes.is_some(),
            "max-header-block-bytes",
        );
        add(self.max_uri_bytes.is_some(), "max-uri-bytes");
        add(self.request_timeout.is_some(), "request-timeout");
        add(self.connect_timeout.is_some(), "connect-timeout");
        add(self.response_timeout.is_some(), "response-timeout");
        add(
            self.backend_keepalive_timeout.is_some(),
            "backend-keepalive-timeout",
        );
        add(self.trace_allowed.is_some(), "trace-allowed");
        out
    }

    /// The keys [`Numbers::set`] takes, as written in a scenario's `profile:` mapping.
    pub const KEYS: &'static [&'static str] = &[
        "max-header-bytes",
        "max-header-block-bytes",
        "max-uri-bytes",
        "request-timeout",
        "connect-timeout",
        "response-timeout",
        "backend-keepalive-timeout",
        "trace-allowed",
    ];

    /// Sets one number from its scenario key and text (`response-timeout`, `2s`; sizes as
    /// `16k`, durations as `500ms`/`2s`/bare seconds, `trace-allowed` as true/false), for
    /// `scan --set`. The error says what was expected.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        use crate::scenario::{parse_duration, parse_size};
        let size = || match parse_size(value) {
            Some(n) if n > 0 => {
                usize::try_from(n).map_err(|_| format!("{key}: {value:?} is too large"))
            }
            _ => Err(format!(
                "{key}: expected a size above 0 such as 8190 or 16k, not {value:?}"
            )),
        };
        let duration = || match parse_duration(value) {
            Some(d) if !d.is_zero() => Ok(d),
            _ => Err(format!(
                "{key}: expected a duration above 0 such as 2s or 500ms, not {value:?}"
            )),
        };
        match key {
            "max-header-bytes" => self.max_header_bytes = Some(size()?),
            "max-header-block-bytes" => self.max_header_block_bytes = Some(size()?),
            "max-uri-bytes" => self.max_uri_bytes = Some(size()?),
            "request-timeout" => self.request_timeout = Some(duration()?),
            "connect-timeout" => self.connect_timeout = Some(duration()?),
            "response-timeout" => self.response_timeout = Some(duration()?),
            "backend-keepalive-timeout" => self.backend_keepalive_timeout = Some(duration()?),
            "trace-allowed" => {
                self.trace_allowed = Some(match value {
                    "true" | "yes" | "on" => true,
                    "false" | "no" | "off" => false,
                    _ => return Err(format!("{key}: expected true or false, not {value:?}")),
                })
            }
            _ => {
                let near = crate::profile::nearest(key, Numbers::KEYS)
                    .map(|k| format!("did you mean {k}? "))
                    .unwrap_or_default();
                return Err(format!(
                    "unknown key {key:?} ({near}expected one of: {})",
                    Numbers::KEYS.join(", ")
                ));
            }
        }
        Ok(())
    }

    /// Every field of `over` that is set replaces this one's.
    fn overlay(&mut self, over: &Numbers) {
        fn pick<T: Copy>(mine: &mut Option<T>, theirs: Option<T>) {
            if theirs.is_some() {
                *mine = theirs;
            }
        }
        pick(&mut self.max_header_bytes, over.max_header_bytes);
        pick(
            &mut self.max_header_block_bytes,
            over.max_header_block_bytes,
        );
        pick(&mut self.max_uri_bytes, over.max_uri_bytes);
        pick(&mut self.request_timeout, over.request_timeout);
        pick(&mut self.connect_timeout, over.connect_timeout);
        pick(&mut self.response_timeout, over.response_timeout);
        pick(
            &mut self.backend_keepalive_timeout,
            over.backend_keepalive_timeout,
        );
        pick(&mut self.trace_allowed, over.trace_allowed);
    }
}

mod secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_f64(d.as_secs_f64()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let secs = Option::<f64>::deserialize(d)?;
        Ok(secs
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(Duration::from_secs_f64))
    }
}

/// How the profile came to apply to this run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum Chosen {
    /// Named in the scenario or on the command line.
    Name,
    /// `auto`, before the run: resolved from the listener's answers when the run is classified.
    Pending,
    /// `auto`, resolved from what the listener showed; `why` names the signals.
    Evidence { why: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// `clb`, `nginx`, `haproxy`, `aws-alb`, `apache`, `envoy`, `go`; `none` for a listener
    /// nobody documents; `auto` before `auto` is resolved.
    pub name: String,
    /// Where the documented numbers come from.
    pub source: String,
    /// What the kind of load balancer documents.
    pub documented: Numbers,
    /// What the person running lbprobe set for this listener; wins over `documented`.
    pub declared: Numbers,
    pub chosen: Chosen,
}

/// A number read from the profile, with where it comes from.
#[derive(Debug, Clone, PartialEq)]
pub struct Cited<T> {
    pub value: T,
    pub basis: Basis,
    /// `the nginx profile documents` / `you declared`: how a finding introduces the number.
    pub who: String,
}

impl<T> Cited<T> {
    /// `the nginx profile documents 60 s` with the value as `shown`.
    pub fn says(&self, shown: &str) -> String {
        format!("{} {shown}", self.who)
    }
}

macro_rules! cite {
    ($($field:ident: $t:ty),* $(,)?) => {
        $(
            #[doc = concat!("`", stringify!($field), "`: declared if set, else documented.")]
            pub fn $field(&self) -> Option<Cited<$t>> {
                self.cite(self.declared.$field, self.documented.$field)
            }
        )*
    };
}

impl Profile {
    cite! {
        max_header_bytes: usize,
        max_header_block_bytes: usize,
        max_uri_bytes: usize,
        request_timeout: Duration,
        connect_timeout: Duration,
        response_timeout: Duration,
        backend_keepalive_timeout: Duration,
        trace_allowed: bool,
    }

    fn cite<T>(&self, declared: Option<T>, documented: Option<T>) -> Option<Cited<T>> {
        if let Some(value) = declared {
            return Some(Cited {
                value,
                basis: Basis::Declared,
                who: "you declared".into(),
            });
        }
        documented.map(|value| Cited {
            value,
            basis: Basis::Documented,
            who: format!("the {} profile documents", self.name),
        })
    }

    /// The numbers in force: declared over documented.
    pub fn effective(&self) -> Numbers {
        let mut n = self.documented.clone();
        n.overlay(&self.declared);
        n
    }

    fn named(name: &str, source: &str, documented: Numbers) -> Profile {
        Profile {
            name: name.into(),
            source: source.into(),
            documented,
            declared: Numbers::default(),
            chosen: Chosen::Name,
        }
    }

    /// The cloud load balancer of the reference page.
    pub fn clb() -> Profile {
        Profile::named(
            "clb",
            "CLB error status codes page (docs/causes.md)",
            Numbers {
                max_header_bytes: Some(32 * 1024),
                // The page documents one number for headers; it bounds the block too.
                max_header_block_bytes: Some(32 * 1024),
                max_uri_bytes: Some(32 * 1024),
                request_timeout: Some(Duration::from_secs(60)),
                connect_timeout: Some(Duration::from_secs(5)),
                response_timeout: Some(Duration::from_secs(60)),
                // Not on the reference page, so not documented here: the keep-alive rules
                // assume a usual 60 s where nothing is declared (see `keepalive_window`).
                backend_keepalive_timeout: None,
                trace_allowed: Some(false),
            },
        )
    }

    /// nginx defaults: `large_client_header_buffers 4 8k` (a header line or the request line
    /// must fit one 8 KiB buffer with its CRLF), `client_header_timeout 60s`,
    /// `proxy_connect_timeout 60s`, `proxy_read_timeout 60s`; nginx answers TRACE with 405.
    pub fn nginx() -> Profile {
        Profile::named(
            "nginx",
            "nginx documentation defaults (large_client_header_buffers 4 8k; client_header_timeout, proxy_connect_timeout, proxy_read_timeout 60 s)",
            Numbers {
                max_header_bytes: Some(8190),
                // nginx documents no total, only 4 buffers of 8k; how many bytes of a block fit
                // depends on how its lines fill them, so the profile promises one full line.
                max_header_block_bytes: Some(8190),
                max_uri_bytes: Some(8192 - "GET  HTTP/1.1\r\n".len()),
                request_timeout: Some(Duration::from_secs(60)),
                connect_timeout: Some(Duration::from_secs(60)),
                response_timeout: Some(Duration::from_secs(60)),
                // `keepalive_timeout` inside an `upstream` block with `keepalive N` (since
                // 1.15.3): default 60 s. Without `keepalive`, nginx does not reuse backend
                // connections.
                backend_keepalive_timeout: Some(Duration::from_secs(60)),
                trace_allowed: Some(false),
            },
        )
    }

    /// HAProxy 2.x defaults (configuration manual, section 3.2 `tune.bufsize`/`tune.maxrewrite`,
    /// section 4.2 `timeout`):
    /// - `tune.bufsize 16384` less `tune.maxrewrite 1024`: "If an HTTP request is larger than
    ///   (tune.bufsize - tune.maxrewrite), HAProxy will return HTTP 400". The request line and
    ///   every header share those 15 360 bytes, as HAProxy stores them (measured with 2.6 in
    ///   tests/haproxy_causes.rs: a head passes while its bytes on the wire plus 4 per header
    ///   line stay within bufsize − maxrewrite − 56), and an oversized URI gets 400, not 414.
    ///   The profile documents 15 000 bytes for a header line, a block and a URI: the shared
    ///   budget less a small request's other lines.
    /// - HAProxy has no default timeouts (an unset one waits forever and draws a startup
    ///   warning), so the profile takes the configuration Debian and Ubuntu ship
    ///   (/etc/haproxy/haproxy.cfg: `timeout connect 5000`, `timeout client 50000`, `timeout
    ///   server 50000`); without `timeout http-request`, the client timeout bounds a request.
    /// - HAProxy passes TRACE on to the backend.
    pub fn haproxy() -> Profile {
        const HEAD_BUDGET: usize = 15_000;
        Profile::named(
            "haproxy",
            "HAProxy configuration manual (tune.bufsize 16384 - tune.maxrewrite 1024 shared by the request head; no default timeouts: Debian's haproxy.cfg connect 5 s, client and server 50 s)",
            Numbers {
                max_header_bytes: Some(HEAD_BUDGET),
                max_header_block_bytes: Some(HEAD_BUDGET),
                max_uri_bytes: Some(HEAD_BUDGET),
                request_timeout: Some(Duration::from_secs(50)),
                connect_timeout: Some(Duration::from_secs(5)),
                response_timeout: Some(Duration::from_secs(50)),
                // Idle server-side connections are kept for reuse and purged in batches every
                // `pool-purge-delay` (5 s by default).
                backend_keepalive_timeout: Some(Duration::from_secs(5)),
                trace_allowed: Some(true),
            },
        )
    }

    /// AWS Application Load Balancer, from its quotas page ("HTTP headers": request line 16K,
    /// single header 16K, whole request header 64K) and its troubleshooting page (504 when a
    /// target connection is not established within 10 seconds; idle timeout 60 s by default;
    /// TRACE is answered with 405).
    pub fn aws_alb() -> Profile {
        Profile::named(
            "aws-alb",
            "AWS Application Load Balancer quotas (HTTP headers) and troubleshooting pages: request line 16 KB, single header 16 KB, all headers 64 KB, target connect timeout 10 s, idle timeout 60 s",
            Numbers {
                max_header_bytes: Some(16 * 1024),
                max_header_block_bytes: Some(64 * 1024),
                // The 16K request line holds the method and version too.
                max_uri_bytes: Some(16 * 1024 - "GET  HTTP/1.1".len()),
                request_timeout: Some(Duration::from_secs(60)),
                connect_timeout: Some(Duration::from_secs(10)),
                response_timeout: Some(Duration::from_secs(60)),
                // AWS asks for targets' keep-alive timeouts above the load balancer's idle
                // timeout (60 s by default), the window in which it reuses their connections.
                backend_keepalive_timeout: Some(Duration::from_secs(60)),
                trace_allowed: Some(false),
            },
        )
    }

    /// A listener nobody documents: limits and timeouts are reported as measured, not judged.
    pub fn none() -> Profile {
        Profile::named(
            "none",
            "no documentation: limits and timeouts are reported as measured, not judged",
            Numbers::default(),
        )
    }

    /// `auto` before the run: which profile applies is decided from the listener's own answers
    /// when the run is classified ([`Profile::resolve`]).
    pub fn auto() -> Profile {
        Profile {
            chosen: Chosen::Pending,
            ..Profile::named(
                "auto",
                "chosen from the listener's own answers when the run is classified",
                Numbers::default(),
            )
        }
    }

    pub fn by_name(name: &str) -> Option<Profile> {
        match name {
            "auto" => Some(Profile::auto()),
            "clb" => Some(Profile::clb()),
            "nginx" => Some(Profile::nginx()),
            "haproxy" => Some(Profile::haproxy()),
            "aws-alb" => Some(Profile::aws_alb()),
            "none" => Some(Profile::none()),
            _ => None,
        }
    }

    pub const NAMES: &'static [&'static str] =
        &["auto", "clb", "nginx", "haproxy", "aws-alb", "none"];

    /// The same profile with `declared` set over whatever was declared before.
    pub fn with_declared(mut self, declared: &Numbers) -> Profile {
        self.declared.overlay(declared);
        self
    }

    /// An `auto` profile resolved: the identified listener's profile (or `none` when nothing
    /// identified it), keeping what was declared. Any other profile is returned as it is.
    pub fn resolve(&self, identified: Option<(&str, String)>) -> Profile {
        if self.chosen != Chosen::Pending {
            return self.clone();
        }
        let (base, why) = match identified {
            Some((name, why)) => match Profile::by_name(name) {
                Some(p) => (p, why),
                None => (
                    Profile::none(),
                    format!("{why}; no profile documents {name}"),
                ),
            },
            None => (
                Profile::none(),
                "the listener's answers match no known load balancer".to_string(),
            ),
        };
        Profile {
            chosen: Chosen::Evidence { why },
            ..base.with_declared(&self.declared)
        }
    }

    /// How long the probes that must see a listener's timeout fire wait for one answer: past the
    /// longest timeout in force, or a usual 60 s where nothing is known yet.
    pub fn longest_timeout(&self) -> Duration {
        let n = self.effective();
        [n.response_timeout, n.connect_timeout]
            .into_iter()
            .flatten()
            .max()
            .unwrap_or(Duration::from_secs(60))
    }

    /// How long the listener is taken to reuse an idle backend connection: declared or
    /// documented, else a usual 60 s (most load balancers' idle timeout), marked assumed.
    pub fn keepalive_window(&self) -> Cited<Duration> {
        self.backend_keepalive_timeout().unwrap_or(Cited {
            value: Duration::from_secs(60),
            basis: Basis::Assumed,
            who: "lbprobe assumes the usual".into(),
        })
    }

    /// One line for a report's header: `nginx (auto: Server: nginx/1.22.1)`.
    pub fn label(&self) -> String {
        let declared = self.declared.set_keys();
        let set = if declared.is_empty() {
            String::new()
        } else {
            format!("; declared {}", declared.join(", "))
        };
        match &self.chosen {
            Chosen::Evidence { why } => format!("{} (auto: {why}{set})", self.name),
            _ if set.is_empty() => self.name.clone(),
            _ => format!("{} ({})", self.name, &set[2..]),
        }
    }
}

/// The candidate closest to `word` by edit distance, when it is close enough to be a typo.
pub(crate) fn nearest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), *c))
        .filter(|(d, c)| *d <= (c.len() / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

impl Default for Profile {
    /// `auto`: a profile's numbers are a comparison, and comparing a listener with the wrong
    /// kind's documentation produces confident wrong verdicts (nginx's 8 KB header buffers
    /// "below the 32 KB the clb profile documents"). The reference load balancer stays one
    /// name away: `--profile clb`.
    fn default() -> Self {
        Profile::auto()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_has_its_profile() {
        for name in Profile::NAMES {
            let p = Profile::by_name(name).unwrap_or_else(|| panic!("{name}"));
            assert_eq!(&p.name, name);
            assert!(!p.source.is_empty());
            // A block holds at least one line.
            let n = p.effective();
            assert!(
                n.max_header_block_bytes >= n.max_header_bytes,
                "{name}: {n:?}"
            );
        }
        assert_eq!(Profile::by_name("envoyy"), None);
    }

    #[test]
    fn alb_documents_its_quotas() {
        let p = Profile::aws_alb();
        assert_eq!(p.max_header_bytes().map(|c| c.value), Some(16_384));
        assert_eq!(p.max_header_block_bytes().map(|c| c.value), Some(65_536));
        assert_eq!(p.max_uri_bytes().map(|c| c.value), Some(16_371));
        assert_eq!(
            p.connect_timeout().map(|c| c.value),
            Some(Duration::from_secs(10))
        );
    }

    #[test]
    fn declared_wins_over_documented_and_says_so() {
        let declared = Numbers {
            response_timeout: Some(Duration::from_secs(2)),
            ..Numbers::default()
        };
        let p = Profile::nginx().with_declared(&declared);
        let t = p.response_timeout().expect("set");
        assert_eq!(t.value, Duration::from_secs(2));
        assert_eq!(t.basis, Basis::Declared);
        let c = p.connect_timeout().expect("documented");
        assert_eq!(c.basis, Basis::Documented);
        assert_eq!(c.says("60 s"), "the nginx profile documents 60 s");
        assert_eq!(p.label(), "nginx (declared response-timeout)");
    }

    #[test]
    fn auto_resolves_to_the_identified_profile_keeping_declarations() {
        let declared = Numbers {
            max_uri_bytes: Some(4000),
            ..Numbers::default()
        };
        let auto = Profile::auto().with_declared(&declared);
        assert_eq!(auto.max_header_bytes(), None, "auto documents nothing");
        let p = auto.resolve(Some(("haproxy", "its own 400 page".into())));
        assert_eq!(p.name, "haproxy");
        assert_eq!(p.max_uri_bytes().map(|c| c.basis), Some(Basis::Declared));
        assert_eq!(
            p.max_header_bytes().map(|c| c.basis),
            Some(Basis::Documented)
        );
        assert!(
            p.label().contains("auto: its own 400 page"),
            "{}",
            p.label()
        );

        let unknown = Profile::auto().resolve(None);
        assert_eq!(unknown.name, "none");
        assert_eq!(unknown.response_timeout(), None);
        // A named profile is never replaced by what auto would pick.
        assert_eq!(
            Profile::clb().resolve(Some(("nginx", "x".into()))).name,
            "clb"
        );
    }

    #[test]
    fn a_profile_round_trips_through_json() {
        let p = Profile::auto()
            .with_declared(&Numbers {
                response_timeout: Some(Duration::from_millis(2500)),
                ..Numbers::default()
            })
            .resolve(Some(("nginx", "Server: nginx".into())));
        let json = serde_json::to_string(&p).expect("json");
        let back: Profile = serde_json::from_str(&json).expect("back");
        assert_eq!(back, p);
    }
}
