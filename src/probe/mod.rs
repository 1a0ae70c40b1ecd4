//! The probe engine: sends crafted requests to the listener and the backend and records what
//! came back as [`Observation`]s. It knows nothing of causes: the `evidence_for` tags of probe
//! templates are carried through as opaque strings for the classifier.
//!
//! Layout: [`context`] holds what every family works with (the engine's send functions, sides,
//! error budget, planned requests); each family module has a `plan` next to its `run`;
//! [`families`] dispatches a spec to both; [`engine`] runs a whole plan and [`dry_run`] lists
//! one, each through [`families`].

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::target::Role;
use crate::transport::{Exchange, Sniff};

/// A family of probes, as named in scenarios (`probes: [malformed, methods]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Family {
    Protocol,
    Malformed,
    Methods,
    HeaderSize,
    HeaderLimit,
    UriLimit,
    Partial,
    Latency,
    Connect,
    Response,
    Rate,
    Mtu,
    Keepalive,
    Pool,
    /// A person's own request sent as given (`lbprobe replay`), and its shrunk form: never
    /// in [`Family::ALL`], so no scan runs it and `--probes` does not name it.
    Replay,
}

impl Family {
    pub const ALL: [Family; 14] = [
        Family::Protocol,
        Family::Malformed,
        Family::Methods,
        Family::HeaderSize,
        Family::HeaderLimit,
        Family::UriLimit,
        Family::Partial,
        Family::Latency,
        Family::Connect,
        Family::Response,
        Family::Rate,
        Family::Mtu,
        Family::Keepalive,
        Family::Pool,
    ];

    /// What runs when nothing is named: every family but `partial`, which waits for the
    /// listener's request timeout (60 s on most load balancers), `rate`, which loads the listener
    /// on purpose, `mtu`, which sends raw ICMP as root and large POST bodies, and `keepalive`,
    /// which waits out idle timeouts (up to 120 s); they are asked for by name or with `--only`.
    pub fn defaults() -> impl Iterator<Item = Family> {
        Family::ALL.into_iter().filter(|f| {
            !matches!(
                f,
                Family::Partial | Family::Rate | Family::Mtu | Family::Keepalive
            )
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Family::Protocol => "protocol",
            Family::Malformed => "malformed",
            Family::Methods => "methods",
            Family::HeaderSize => "header-size",
            Family::HeaderLimit => "header-limit",
            Family::UriLimit => "uri-limit",
            Family::Partial => "partial",
            Family::Latency => "latency",
            Family::Connect => "connect",
            Family::Response => "response",
            Family::Rate => "rate",
            Family::Mtu => "mtu",
            Family::Keepalive => "keepalive",
            Family::Pool => "pool",
            Family::Replay => "replay",
        }
    }

    pub fn parse(name: &str) -> Option<Family> {
        Family::ALL.into_iter().find(|f| f.as_str() == name)
    }
}

impl std::fmt::Display for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One probe family to run, with its parameters.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "family", rename_all = "kebab-case")]
pub enum ProbeSpec {
    Protocol,
    /// `variants: None` runs every template.
    Malformed {
        variants: Option<Vec<String>>,
    },
    /// `methods: None` runs the full matrix.
    Methods {
        methods: Option<Vec<String>>,
    },
    /// Sizes are bytes of one `Name: value` header line.
    HeaderSize {
        bisect: bool,
        min: usize,
        max: usize,
    },
    /// Sizes are bytes of the whole header block (every header line with its CRLF).
    HeaderLimit {
        bisect: bool,
        min: usize,
        max: usize,
    },
    /// Sizes are bytes of the request target (path and query).
    UriLimit {
        bisect: bool,
        min: usize,
        max: usize,
    },
    /// Incomplete requests; `max_wait` caps how long to wait for the listener to give up.
    Partial {
        #[serde(serialize_with = "ser_secs")]
        max_wait: Duration,
    },
    /// `requests` timed requests per side; `client_timeout` is what the scenario's clients use.
    Latency {
        requests: u32,
        #[serde(serialize_with = "ser_opt_secs")]
        client_timeout: Option<Duration>,
    },
    /// TCP handshakes only, `attempts` per backend.
    Connect {
        attempts: u32,
    },
    /// The backend's answer to a valid request, parsed strictly.
    Response,
    /// A bounded ramp of request rate through the listener.
    Rate(rate::RateSpec),
    /// Path MTU and large-packet checks towards each side.
    Mtu(mtu::MtuSpec),
    /// Idle keep-alive timeouts of each side, waiting at most `max_wait` for one; `reproduce`
    /// then provokes the keep-alive race through the listener.
    Keepalive {
        #[serde(serialize_with = "ser_secs")]
        max_wait: Duration,
        reproduce: bool,
    },
    /// Each member of a backend pool directly, and the listener often enough to see the share
    /// of its answers that fail.
    Pool(pool::PoolSpec),
}

impl ProbeSpec {
    /// Whether the family learns only from answers, and so skips a side declared silent: all
    /// but the timing families (latency and connect measure the silence itself) and protocol
    /// (its baseline is what declares it).
    pub fn needs_answers(&self) -> bool {
        !matches!(
            self.family(),
            Family::Protocol | Family::Latency | Family::Connect
        )
    }

    pub fn family(&self) -> Family {
        match self {
            ProbeSpec::Protocol => Family::Protocol,
            ProbeSpec::Malformed { .. } => Family::Malformed,
            ProbeSpec::Methods { .. } => Family::Methods,
            ProbeSpec::HeaderSize { .. } => Family::HeaderSize,
            ProbeSpec::HeaderLimit { .. } => Family::HeaderLimit,
            ProbeSpec::UriLimit { .. } => Family::UriLimit,
            ProbeSpec::Partial { .. } => Family::Partial,
            ProbeSpec::Latency { .. } => Family::Latency,
            ProbeSpec::Connect { .. } => Family::Connect,
            ProbeSpec::Response => Family::Response,
            ProbeSpec::Rate(_) => Family::Rate,
            ProbeSpec::Mtu(_) => Family::Mtu,
            ProbeSpec::Keepalive { .. } => Family::Keepalive,
            ProbeSpec::Pool(_) => Family::Pool,
        }
    }

    /// Probes that must not overlap the others: their traffic changes what the others see.
    /// They run after the rest, one at a time.
    pub fn runs_alone(&self) -> bool {
        // The pool's listener share counts on the listener taking its members in turn:
        // other probes' requests in between would skew which member each request meets.
        matches!(self, ProbeSpec::Rate(_) | ProbeSpec::Pool(_))
    }

    /// The family with its default parameters.
    pub fn default_for(family: Family) -> ProbeSpec {
        match family {
            Family::Protocol => ProbeSpec::Protocol,
            Family::Malformed => ProbeSpec::Malformed { variants: None },
            Family::Methods => ProbeSpec::Methods { methods: None },
            Family::HeaderSize => ProbeSpec::HeaderSize {
                bisect: true,
                min: 1024,
                max: 128 * 1024,
            },
            Family::HeaderLimit => ProbeSpec::HeaderLimit {
                bisect: true,
                min: 1024,
                max: 128 * 1024,
            },
            Family::UriLimit => ProbeSpec::UriLimit {
                bisect: true,
                min: 1024,
                max: 128 * 1024,
            },
            Family::Partial => ProbeSpec::Partial {
                max_wait: Duration::from_secs(75),
            },
            Family::Latency => ProbeSpec::Latency {
                requests: 10,
                client_timeout: None,
            },
            Family::Connect => ProbeSpec::Connect { attempts: 3 },
            Family::Response => ProbeSpec::Response,
            Family::Rate => ProbeSpec::Rate(rate::RateSpec::default()),
            Family::Mtu => ProbeSpec::Mtu(mtu::MtuSpec::default()),
            Family::Keepalive => ProbeSpec::Keepalive {
                max_wait: Duration::from_secs(120),
                reproduce: false,
            },
            Family::Pool => ProbeSpec::Pool(pool::PoolSpec::default()),
            // Never planned from a scan: a replay has its own command and no spec.
            Family::Replay => ProbeSpec::Protocol,
        }
    }
}

/// Safety caps on a whole run, enforced by the engine.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Limits {
    pub max_requests: u32,
    /// Requests per second, across all probes.
    pub max_rate: f64,
    #[serde(serialize_with = "ser_secs")]
    pub max_duration: Duration,
    /// Deadline for one exchange once connected.
    #[serde(serialize_with = "ser_secs")]
    pub request_timeout: Duration,
}

fn ser_secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

fn ser_opt_secs<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_some(&d.as_secs_f64()),
        None => s.serialize_none(),
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_requests: 1000,
            max_rate: 50.0,
            max_duration: Duration::from_secs(300),
            request_timeout: Duration::from_secs(10),
        }
    }
}

/// What was sent, for the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SentRequest {
    /// The bytes, escaped, with secrets masked.
    pub text: String,
    pub bytes: usize,
    /// False when a client library built the request and `text` is a rendering of it.
    pub exact: bool,
    /// The same request as a curl command, or why curl cannot send it; filled in when the run
    /// is done, from `text` and the target (see [`crate::replay::share`]).
    #[serde(default)]
    pub curl: Option<crate::replay::share::AsCurl>,
}

impl SentRequest {
    /// A request the report describes rather than shows byte for byte (a handshake, a summary
    /// of several requests, one a client library built): no curl command goes with it.
    pub fn described(text: impl Into<String>, bytes: usize, exact: bool) -> SentRequest {
        SentRequest {
            text: text.into(),
            bytes,
            exact,
            curl: None,
        }
    }
}

/// Probe-specific facts beyond the exchange.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Detail {
    None,
    /// What the port speaks.
    Sniff {
        sniff: Sniff,
    },
    /// A request method check.
    Method {
        method: String,
        via: String,
    },
    /// A sized request of a limit search: header line, header block or URI bytes.
    Size {
        bytes: usize,
    },
    /// Result of a limit search on one side.
    Limit(LimitSearch),
    /// An incomplete request and what the side did about it.
    Partial(partial::PartialResult),
    /// Timing statistics of one side.
    Latency(latency::LatencyStats),
    /// TCP handshakes to one side.
    Connect(connect::ConnectResult),
    /// A strict parse of one answer.
    Response(response::ResponseCheck),
    /// What a rate ramp found.
    Rate(rate::RateResult),
    /// Path MTU towards one side.
    Mtu(mtu::MtuResult),
    /// An idle keep-alive timeout, or a provoked keep-alive race.
    Keepalive(keepalive::KeepaliveDetail),
    Pool(pool::PoolDetail),
    /// What a TLS side chose when offered h2 and http/1.1.
    Alpn(h2::AlpnResult),
    /// What became of the connection after the answer to a request the RFC says a server
    /// MUST close after (a malformed template with `must-close`).
    AfterAnswer(AfterAnswer),
    /// A keep-alive sequence of the malformed family: the answers counted on its connection.
    Sequence(SequenceResult),
    /// A replayed request: what its shrink found matters, in words (empty when not shrunk).
    Replay {
        matters: Vec<String>,
    },
}

/// What came back on a keep-alive sequence's connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct SequenceResult {
    /// Final (non-1xx) responses received, the first included.
    pub answers: u32,
    /// What the connection did after the last answer: `closed`, `kept-open` (still open when
    /// the wait ran out), `no-answer` (the first answer never completed).
    pub connection: ConnAfter,
}

impl SequenceResult {
    pub fn none() -> SequenceResult {
        SequenceResult {
            answers: 0,
            connection: ConnAfter::NoAnswer,
        }
    }
}

/// What the connection did after the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConnAfter {
    /// The side closed it (FIN or reset).
    Closed,
    /// Still open when the watch ended.
    KeptOpen,
    /// More bytes came after the answer (a second response, garbage).
    MoreBytes,
    /// No complete answer came: there was no "after" to watch.
    NoAnswer,
}

/// [`ConnAfter`] and when: milliseconds after the answer it closed, or how long it was watched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct AfterAnswer {
    pub connection: ConnAfter,
    pub ms: u64,
}

impl AfterAnswer {
    pub fn new(connection: ConnAfter, after: Duration) -> AfterAnswer {
        AfterAnswer {
            connection,
            ms: after.as_millis().try_into().unwrap_or(u64::MAX),
        }
    }
}

/// The outcome of searching for the largest accepted size.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct LimitSearch {
    /// Largest size that got a non-rejecting answer, if any did.
    pub largest_accepted: Option<usize>,
    /// Smallest size that got rejected, if any did.
    pub smallest_rejected: Option<usize>,
    /// The status the rejection carried (or none for a close/reset).
    pub rejected_status: Option<u16>,
    pub requests: u32,
    /// True when the search ended exactly (accepted + 1 == rejected).
    pub exact: bool,
    /// Even the smallest request was refused: the side refuses everything, no limit measured.
    pub refuses_everything: bool,
}

/// One request sent to one side, and what came back.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Observation {
    /// Unique within a run (`o1`, `o2`, ...), referenced by findings.
    pub id: String,
    pub family: Family,
    /// e.g. `lowercase-method`, `TRACE`, `plain-http-to-tls-port`, `header-32768`.
    pub variant: String,
    pub role: Role,
    /// A request a strict server accepts (the control request, method checks).
    pub well_formed: bool,
    /// Cause ids this observation can speak to (opaque to the engine).
    pub evidence_for: Vec<String>,
    pub request: SentRequest,
    pub exchange: Option<Exchange>,
    pub detail: Detail,
    /// What the listener's access log says of this request (`--access-log`), found by its
    /// marker after the run; `None` when not looked for or not found.
    #[serde(default)]
    pub logged: Option<crate::logs::probe_line::LoggedLine>,
}

pub mod budget;
mod builder;
pub mod client;
pub mod connect;
pub mod context;
pub mod dry_run;
pub mod engine;
pub mod families;
pub mod floor;
pub mod h2;
pub mod header_size;
pub mod keepalive;
pub mod latency;
pub mod limit;
pub mod load;
pub mod malformed;
pub mod methods;
pub mod mtu;
pub mod partial;
pub mod pool;
pub mod protocol;
pub mod rate;
pub mod request;
pub mod response;
pub mod templates;

pub use budget::Interrupt;
pub use context::{Progress, ProgressFn};
pub use engine::{run, run_interruptible, MarkerPlace, Plan, RunOutput};
