//! The access-log rules as data: an ordered list of `(conditions, outcome, reasoning)`, the
//! first rule whose conditions all hold decides. The native classifier
//! ([`super::classify::classify`]) evaluates it on the error lines it parsed; the SQL generator
//! ([`super::sql`]) compiles the same list into one `CASE`. One source: a rule changed here
//! changes both.
//!
//! What is not here is what a table of log lines cannot hold: the reason joined from nginx's
//! error.log, and the error.log's silence. Those stay in the native classifier, before and
//! after this list.

use std::sync::{LazyLock, OnceLock};

use super::classify::{Either, Facts, Timeouts, AT_TIMEOUT, HIGH_RTT_US};
use super::record::Dialect;

/// One fact of a line, true or false.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Atom {
    Status(u16),
    /// Whose log it is.
    Dialect(Dialect),
    /// The format logs the field at all (for the JSON export: the line has the key).
    UpstreamLogged,
    HeaderLogged,
    ConnectLogged,
    AddrLogged,
    /// No upstream try has a numeric status: no backend was asked.
    NoTries,
    /// The last upstream try says `-`: that server never answered.
    LastTryDash,
    /// The last try's status is this code.
    LastIs(u16),
    /// The last try's status is the line's own.
    LastIsStatus,
    MethodTrace,
    /// `$request_length` above the profile's header limit.
    RequestLengthAboveLimit,
    RequestLengthZero,
    PlainOnTls,
    BytesSentZero,
    /// `$tcpinfo_rtt` at or above [`HIGH_RTT_US`].
    HighRtt,
    /// A 499's upstream_response_time is at least 90 % of its request_time: the client gave up
    /// waiting for the backend.
    WaitedForBackend,
    /// This timing is at (within 5 % below, or above) this timeout.
    At(Timing, Limit),
    /// upstream_response_time is logged and short of the response timeout.
    UrtBelowResponse,
    UctMissing,
    UrtMissing,
    /// `$upstream_connect_time` is logged and its last try says `-`.
    ConnectFailed,
    /// `$upstream_header_time` is logged and its last try says `-`.
    NoResponseHeader,
    /// nginx's 502 whose last `$upstream_addr` is a group's name (no port).
    NoLiveUpstream,
    BytesReceivedZero,
    BytesReceivedMissing,
    /// HAProxy's termination state is logged.
    HasTermination,
    /// HAProxy's termination state is these two letters (`?`: any).
    Termination([u8; 2]),
    /// HAProxy's `<NOSRV>`.
    NoServer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timing {
    Request,
    UpstreamResponse,
    UpstreamConnect,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Connect,
    Response,
}

/// An atom that must hold (`holds`) or must not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lit {
    pub atom: Atom,
    pub holds: bool,
}

const fn is(atom: Atom) -> Lit {
    Lit { atom, holds: true }
}

const fn not(atom: Atom) -> Lit {
    Lit { atom, holds: false }
}

const fn status(code: u16) -> Lit {
    is(Atom::Status(code))
}

const NGINX: Lit = is(Atom::Dialect(Dialect::Nginx));

/// What a rule says of the lines it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Shows(&'static str),
    Undecided(&'static Either),
    /// No documented cause explains the line.
    Nothing,
}

impl Outcome {
    /// The key lines are counted under: the cause, the `A or B` id, or `None`.
    pub fn id(&self) -> Option<&'static str> {
        match self {
            Outcome::Shows(c) => Some(c),
            Outcome::Undecided(e) => Some(e.id),
            Outcome::Nothing => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Rule {
    /// Every one must hold.
    pub when: Vec<Lit>,
    pub then: Outcome,
    /// Why, in words: the classification's reasoning.
    pub text: &'static str,
}

/// The rules in order, and for each status a decision tree of them, built when a line of that
/// status first comes: the error line's path tests only the atoms on its way down (a handful),
/// not every condition of every rule before the one that holds.
pub struct Rules {
    pub list: Vec<Rule>,
    /// Index = status (0..1000).
    by_status: Vec<OnceLock<Tree>>,
}

/// The first-match semantics of an ordered rule list as a tree: a node tests one atom; a leaf
/// is the rule that holds (or none).
struct Tree {
    nodes: Vec<Node>,
}

#[derive(Clone, Copy)]
enum Node {
    Leaf(Option<u16>),
    Test { atom: Atom, yes: u32, no: u32 },
}

impl Tree {
    /// `rules`: each rule's conditions (less the status ones) and its index, in order.
    fn of(rules: Vec<(Vec<Lit>, u16)>) -> Tree {
        let mut t = Tree { nodes: Vec::new() };
        t.grow(rules);
        t
    }

    fn grow(&mut self, rules: Vec<(Vec<Lit>, u16)>) -> u32 {
        let at = self.nodes.len() as u32;
        let Some((first, index)) = rules.first() else {
            self.nodes.push(Node::Leaf(None));
            return at;
        };
        let Some(test) = first.first().map(|l| l.atom) else {
            self.nodes.push(Node::Leaf(Some(*index)));
            return at;
        };
        // The first rule's first atom: its two answers each keep the rules that allow it,
        // without that atom's condition.
        let branch = |value: bool| -> Vec<(Vec<Lit>, u16)> {
            rules
                .iter()
                .filter(|(when, _)| when.iter().all(|l| l.atom != test || l.holds == value))
                .map(|(when, i)| {
                    let rest = when.iter().filter(|l| l.atom != test).copied().collect();
                    (rest, *i)
                })
                .collect()
        };
        let (yes, no) = (branch(true), branch(false));
        self.nodes.push(Node::Leaf(None));
        let yes = self.grow(yes);
        let no = self.grow(no);
        self.nodes[at as usize] = Node::Test {
            atom: test,
            yes,
            no,
        };
        at
    }
}

/// Every rule, built once.
pub static RULES: LazyLock<Rules> = LazyLock::new(|| {
    let mut b = Build::default();
    build(&mut b);
    Rules {
        list: b.rules,
        by_status: (0..1000).map(|_| OnceLock::new()).collect(),
    }
});

impl Rules {
    /// The first rule that holds for the line, if any does (every status has a last rule
    /// that always holds but for HAProxy's termination states, which fall through).
    #[inline]
    pub fn first(&self, f: &Facts, t: &Timeouts) -> Option<&Rule> {
        let tree = self
            .by_status
            .get(usize::from(f.status))?
            .get_or_init(|| self.tree(f.status));
        let mut n = 0usize;
        loop {
            match tree.nodes[n] {
                Node::Leaf(r) => return r.map(|i| &self.list[usize::from(i)]),
                Node::Test { atom, yes, no } => {
                    n = if holds(atom, f, t) { yes } else { no } as usize;
                }
            }
        }
    }

    fn tree(&self, status: u16) -> Tree {
        let rules = (0..self.list.len() as u16)
            .filter_map(|i| {
                let when = &self.list[usize::from(i)].when;
                let allows = when
                    .iter()
                    .all(|l| !matches!(l.atom, Atom::Status(c) if (c == status) != l.holds));
                allows.then(|| {
                    let rest = when
                        .iter()
                        .filter(|l| !matches!(l.atom, Atom::Status(_)))
                        .copied()
                        .collect();
                    (rest, i)
                })
            })
            .collect();
        Tree::of(rules)
    }
}

fn at(value: Option<f64>, timeout: f64) -> bool {
    timeout > 0.0 && value.is_some_and(|v| v >= timeout * AT_TIMEOUT)
}

/// The native reading of an atom.
#[inline]
pub fn holds(a: Atom, f: &Facts, t: &Timeouts) -> bool {
    match a {
        Atom::Status(c) => f.status == c,
        Atom::Dialect(d) => f.dialect == d,
        Atom::UpstreamLogged => f.upstream_logged,
        Atom::HeaderLogged => f.header_logged,
        Atom::ConnectLogged => f.connect_logged,
        Atom::AddrLogged => f.addr_logged,
        Atom::NoTries => f.upstream.is_empty(),
        Atom::LastTryDash => f.last_try_dash,
        Atom::LastIs(c) => f.upstream_last() == Some(c),
        Atom::LastIsStatus => f.upstream_last() == Some(f.status),
        Atom::MethodTrace => f.method.as_deref() == Some(b"TRACE"),
        Atom::RequestLengthAboveLimit => f.request_length.is_some_and(|l| l > t.max_header_bytes),
        Atom::RequestLengthZero => f.request_length == Some(0),
        Atom::PlainOnTls => f.plain_on_tls,
        Atom::BytesSentZero => f.bytes_sent == Some(0),
        Atom::HighRtt => f.tcpinfo_rtt_us.is_some_and(|r| r >= HIGH_RTT_US),
        Atom::WaitedForBackend => f.request_time.is_some_and(|rt| {
            f.upstream_response_time
                .is_some_and(|ut| rt > 0.0 && ut >= rt * 0.9)
        }),
        Atom::At(timing, limit) => at(timing.of(f), limit.of(t)),
        Atom::UrtBelowResponse => f
            .upstream_response_time
            .is_some_and(|v| v < t.response * AT_TIMEOUT),
        Atom::UctMissing => f.upstream_connect_time.is_none(),
        Atom::UrtMissing => f.upstream_response_time.is_none(),
        Atom::ConnectFailed => f.connect_failed,
        Atom::NoResponseHeader => f.no_response_header,
        Atom::NoLiveUpstream => f.no_live_upstream,
        Atom::BytesReceivedZero => f.bytes_received == Some(0),
        Atom::BytesReceivedMissing => f.bytes_received.is_none(),
        Atom::HasTermination => f.termination.is_some(),
        Atom::Termination(want) => f
            .termination
            .is_some_and(|got| got[0] == want[0] && (want[1] == b'?' || got[1] == want[1])),
        Atom::NoServer => f.no_server,
    }
}

impl Timing {
    pub fn of(self, f: &Facts) -> Option<f64> {
        match self {
            Timing::Request => f.request_time,
            Timing::UpstreamResponse => f.upstream_response_time,
            Timing::UpstreamConnect => f.upstream_connect_time,
        }
    }
}

impl Limit {
    pub fn of(self, t: &Timeouts) -> f64 {
        match self {
            Limit::Connect => t.connect,
            Limit::Response => t.response,
        }
    }
}

#[derive(Default)]
struct Build {
    rules: Vec<Rule>,
}

impl Build {
    /// A rule under `scope`; one whose conditions contradict each other (two statuses, an atom
    /// and its negation) can match no line and is left out.
    fn rule(&mut self, scope: &[Lit], when: &[Lit], then: Outcome, text: &'static str) {
        let all: Vec<Lit> = scope.iter().chain(when).copied().collect();
        let contradicts = all.iter().enumerate().any(|(i, a)| {
            all[i + 1..].iter().any(|b| {
                (a.atom == b.atom && a.holds != b.holds)
                    || matches!((a.atom, b.atom), (Atom::Status(x), Atom::Status(y)) if x != y && a.holds && b.holds)
                    || matches!((a.atom, b.atom), (Atom::Dialect(x), Atom::Dialect(y)) if x != y && a.holds && b.holds)
            })
        });
        if !contradicts {
            self.rules.push(Rule {
                when: all,
                then,
                text,
            });
        }
    }

    fn shows(&mut self, scope: &[Lit], when: &[Lit], cause: &'static str, text: &'static str) {
        self.rule(scope, when, Outcome::Shows(cause), text);
    }

    fn none(&mut self, scope: &[Lit], when: &[Lit], text: &'static str) {
        self.rule(scope, when, Outcome::Nothing, text);
    }

    fn either(&mut self, scope: &[Lit], when: &[Lit], e: &'static Either, text: &'static str) {
        self.rule(scope, when, Outcome::Undecided(e), text);
    }
}

fn join(a: &[Lit], b: &[Lit]) -> Vec<Lit> {
    a.iter().chain(b).copied().collect()
}

/// What tells nginx's own failures apart, for the rules' `tell`.
const ERROR_LOG: &str = "nginx's error.log tells (pass it with --error-log)";
const ERROR_LOG_INFO: &str =
    "nginx's error.log tells, at level info (`error_log … info`; pass it with --error-log)";

fn build(b: &mut Build) {
    haproxy(b, &[is(Atom::HasTermination)]);
    nginx_without_upstream_status(b, &[NGINX, not(Atom::UpstreamLogged)]);
    never_reached(b, &[is(Atom::NoTries)]);
    reached_then_failed(b, &[not(Atom::NoTries), is(Atom::LastTryDash)]);
    reached(b, &[not(Atom::NoTries), not(Atom::LastTryDash)]);
}

/// HAProxy says in its termination state (the manual's "session state at disconnection": who
/// ended it, then in which phase) what nginx and the LB leave to the timings. A state no rule
/// names falls through to the rules of every log.
fn haproxy(b: &mut Build, s: &[Lit]) {
    let term = |t: &[u8; 2]| is(Atom::Termination(*t));
    // P: HAProxy itself refused the request, before any server (`<NOSRV>`, `<BADREQ>`).
    b.either(s, &[term(b"PR"), status(400)],
        either!("HAProxy's log does not say which part it refused; its `show errors` on the stats socket does (an over-long URI gets 400 too)"; "400.malformed-request", "400.header-too-large"),
        "HAProxy termination PR with 400: HAProxy refused the request as invalid or too large");
    b.none(s, &[term(b"PR")], "HAProxy termination PR: an http-request rule of HAProxy's own (deny, reject) refused the request; no backend was asked and none was missing");
    b.none(
        s,
        &[term(b"PT")],
        "HAProxy termination PT: an http-request tarpit rule held and refused the request",
    );
    b.none(s, &[term(b"L?")], "HAProxy termination L: HAProxy answered the request itself (http-request return, redirect, stats)");
    b.none(
        s,
        &[term(b"R?")],
        "HAProxy termination R: HAProxy ran out of a local resource (memory, sockets, source ports)",
    );
    b.none(
        s,
        &[term(b"I?")],
        "HAProxy termination I: HAProxy reported an internal error",
    );
    for t in [b"K?", b"D?", b"U?"] {
        b.none(
            s,
            &[term(t)],
            "HAProxy termination K, D or U: an admin or a server state change killed the session",
        );
    }
    b.shows(
        s,
        &[is(Atom::NoServer), status(503)],
        "503.no-backends",
        "HAProxy picked no server (<NOSRV>): no server available in the backend",
    );
    b.shows(
        s,
        &[term(b"sC")],
        "504.connect-timeout",
        "HAProxy termination sC: the connect to the server timed out (HAProxy answers 503)",
    );
    b.shows(
        s,
        &[term(b"SC")],
        "502.backend-unreachable",
        "HAProxy termination SC: the server refused or reset the connection",
    );
    b.shows(
        s,
        &[term(b"sH")],
        "504.backend-slow",
        "HAProxy termination sH: no response header before the server timeout",
    );
    b.shows(s, &[term(b"SH")], "500.backend-closed-early", "HAProxy termination SH: the server closed before sending complete headers (HAProxy answers 502)");
    b.shows(
        s,
        &[term(b"PH")],
        "502.malformed-backend-response",
        "HAProxy termination PH: HAProxy refused the server's invalid response",
    );
    b.shows(
        s,
        &[term(b"cR")],
        "408.partial-request",
        "HAProxy termination cR: the client did not finish its request before the timeout",
    );
    b.shows(
        s,
        &[term(b"CR")],
        "400.client-closed-early",
        "HAProxy termination CR: the client closed before its request was complete",
    );
    // Measured on HAProxy 2.6 (tests/access_log_timing.rs): with `option abortonclose`, a
    // client that leaves while the server has not answered is logged at once as `400 CH--`,
    // Tr -1: nginx's 499 with the backend waited for, not a request HAProxy refused.
    b.shows(s, &[term(b"CH")], "499.backend-slow",
        "HAProxy termination CH: the client left while HAProxy waited for the server's response headers (logged 400 with `option abortonclose`): the client gave up waiting for the backend");
    for t in [b"sQ", b"SQ"] {
        b.shows(s, &[term(t)], "503.rate-limited", "HAProxy termination sQ/SQ: the request waited in the queue for a free server slot and gave up");
    }
}

/// nginx's line without `$upstream_status` (`combined`): its own answers and the backend's
/// look alike, but for what only nginx does.
fn nginx_without_upstream_status(b: &mut Build, s: &[Lit]) {
    const TELL: &str = "add $upstream_status to the log_format to tell the backend's answers from nginx's own, or pass nginx's error.log with --error-log";
    const TELL_5XX: &str = "add $upstream_status, $upstream_connect_time and $upstream_header_time to the log_format to tell, or pass nginx's error.log with --error-log";
    // nginx refuses TRACE before any proxying, and 499 is its own code.
    never_reached(b, &join(s, &[status(405), is(Atom::MethodTrace)]));
    never_reached(b, &join(s, &[status(499)]));
    b.either(s, &[status(400)],
        either!(TELL; "400.passthrough", "400.malformed-request", "400.header-too-large", "400.http-to-https-listener"),
        "400 without $upstream_status: the backend's or nginx's own");
    b.either(
        s,
        &[status(408)],
        either!(TELL; "408.partial-request", "408.passthrough"),
        "408 without $upstream_status: the backend's or nginx's own",
    );
    b.either(
        s,
        &[status(414)],
        either!(TELL; "414.uri-too-long", "414.backend-uri-limit"),
        "414 without $upstream_status: the backend's limit or nginx's",
    );
    b.either(s, &[status(502)],
        either!(TELL_5XX; "502.passthrough", "502.backend-unreachable", "502.malformed-backend-response", "500.backend-closed-early", "502.all-backends-unhealthy"),
        "502 without $upstream_status: nginx writes 502 for every failure to get an answer, and passes the backend's own on");
    b.either(
        s,
        &[status(503)],
        either!(TELL; "503.rate-limited", "503.backend-error"),
        "503 without $upstream_status: a limit of nginx's or the backend's own",
    );
    b.either(s, &[status(504)],
        either!(TELL_5XX; "504.connect-timeout", "504.backend-slow", "504.backend-dependency-timeout"),
        "504 without $upstream_status: nginx's connect or read timeout, or the backend's own 504");
    b.none(
        s,
        &[],
        "an error status without $upstream_status: the backend's or nginx's own, no field tells",
    );
}

/// upstream_status `-` (or empty): no backend was asked.
fn never_reached(b: &mut Build, s: &[Lit]) {
    use Atom::*;
    b.shows(
        s,
        &[status(400), is(RequestLengthAboveLimit)],
        "400.header-too-large",
        "400 with no upstream_status and a request_length above the profile's header limit",
    );
    b.shows(
        s,
        &[status(400), is(PlainOnTls)],
        "400.http-to-https-listener",
        "400 with no upstream_status; $scheme is https but no TLS protocol was negotiated",
    );
    b.shows(s, &[status(400), is(BytesSentZero)], "400.client-closed-early",
        "400 with no upstream_status and nothing sent back: the client left before its request was complete");
    b.shows(
        s,
        &[status(400), NGINX, is(RequestLengthZero)],
        "400.malformed-request",
        "400 with no upstream_status and $request_length 0: nginx refused the request line itself",
    );
    b.either(s, &[status(400), NGINX],
        either!(ERROR_LOG_INFO; "400.malformed-request", "400.header-too-large", "400.http-to-https-listener"),
        "400 with no upstream_status after a whole request line: nginx's access log writes a bad header, an over-long one and plain HTTP on its TLS port alike ($request_length counts only what was read, $scheme says http)");
    b.shows(
        s,
        &[status(400)],
        "400.malformed-request",
        "400 with no upstream_status: the listener refused the request itself",
    );
    b.shows(
        s,
        &[status(405), is(MethodTrace)],
        "405.trace-unsupported",
        "405 for TRACE with no upstream_status: the listener refuses TRACE",
    );
    b.none(
        s,
        &[status(405)],
        "405 from the listener for a method other than TRACE: no documented cause",
    );
    b.shows(
        s,
        &[status(408), is(HighRtt)],
        "408.network-rtt-loss",
        "408 with a tcpinfo_rtt above 200 ms: the client's network is slow or lossy",
    );
    b.shows(
        s,
        &[status(408)],
        "408.partial-request",
        "408 with no upstream_status: the client did not finish its request in time",
    );
    b.shows(
        s,
        &[status(414)],
        "414.uri-too-long",
        "414 with no upstream_status: the URI is above the listener's limit",
    );
    b.shows(
        s,
        &[status(499), is(HighRtt)],
        "499.network-rtt-loss",
        "499 with a tcpinfo_rtt above 200 ms: the client's network is slow or lossy",
    );
    b.shows(s, &[status(499), is(WaitedForBackend)], "499.backend-slow",
        "499 with upstream_response_time as long as request_time: the client gave up waiting for the backend");
    b.shows(
        s,
        &[status(499)],
        "499.client-aborted",
        "499 before any backend answered: the client gave up on its own",
    );
    b.shows(
        s,
        &[status(500)],
        "500.backend-closed-early",
        "500 without an upstream_status: the backend's answer never arrived whole",
    );
    b.shows(
        s,
        &[status(502)],
        "502.all-backends-unhealthy",
        "502 with upstream_status -: the listener had no healthy backend to forward to",
    );
    b.shows(s, &[status(503)], "503.rate-limited",
        "503 with upstream_status -: the request was never sent to a backend (a limit turned it away)");
    b.shows(
        s,
        &[status(504), is(At(Timing::UpstreamConnect, Limit::Connect))],
        "504.connect-timeout",
        "504 with upstream_connect_time at the connect timeout",
    );
    const NEVER_ACCEPTED: &str = "504 with no upstream_status and upstream_response_time at the connect timeout: the backend never accepted";
    b.shows(
        s,
        &[status(504), not(UpstreamLogged)],
        "504.connect-timeout",
        NEVER_ACCEPTED,
    );
    b.shows(
        s,
        &[
            status(504),
            is(UctMissing),
            is(At(Timing::UpstreamResponse, Limit::Connect)),
            is(UrtBelowResponse),
        ],
        "504.connect-timeout",
        NEVER_ACCEPTED,
    );
    b.shows(
        s,
        &[status(504), is(At(Timing::Request, Limit::Response))],
        "504.backend-slow",
        "504 with request_time at the response timeout",
    );
    b.none(
        s,
        &[],
        "no documented cause matches this status without an upstream_status",
    );
}

/// Tries were made, but the last one has no status: the server never answered.
fn reached_then_failed(b: &mut Build, s: &[Lit]) {
    b.shows(
        s,
        &[status(502)],
        "502.backend-unreachable",
        "502 whose last upstream try has no status: that backend never answered",
    );
    for when in [
        is(Atom::At(Timing::UpstreamConnect, Limit::Connect)),
        is(Atom::ConnectFailed),
    ] {
        b.shows(
            s,
            &[status(504), when],
            "504.connect-timeout",
            "504 whose last upstream try never connected",
        );
    }
    never_reached(b, s);
}

/// A backend answered (the last try has a status).
fn reached(b: &mut Build, s: &[Lit]) {
    use Atom::*;
    let urt_at = |l| is(At(Timing::UpstreamResponse, l));
    b.shows(
        s,
        &[status(499), is(HighRtt)],
        "499.network-rtt-loss",
        "499 with a tcpinfo_rtt above 200 ms: the client's network is slow or lossy",
    );
    b.shows(s, &[status(499), is(WaitedForBackend)], "499.backend-slow",
        "499 with upstream_response_time as long as request_time: the client gave up waiting for the backend");
    b.shows(
        s,
        &[
            status(499),
            is(LastIs(499)),
            not(NoResponseHeader),
            not(UrtMissing),
        ],
        "499.passthrough",
        "499 with upstream_status 499: the backend's own 499, passed on",
    );
    b.shows(s, &[status(499)], "499.client-aborted",
        "499 with request_time well beyond the backend's time: the client gave up for reasons of its own");
    b.shows(
        s,
        &[status(502), not(LastIs(502))],
        "502.backend-error-mapped",
        "502 with a different upstream_status: the listener mapped the backend's error to 502",
    );
    b.shows(s, &[status(502), is(NoLiveUpstream)], "502.all-backends-unhealthy",
        "502 with the upstream group's name for $upstream_addr: nginx found no live server in the group to try");
    b.either(s, &[status(502), is(ConnectFailed), NGINX, not(AddrLogged)],
        either!("add $upstream_addr to the log_format (the group's name, without a port: no live server), or pass nginx's error.log with --error-log"; "502.backend-unreachable", "502.all-backends-unhealthy"),
        "502 with upstream_connect_time -: nginx did not connect, to a server that failed or to none at all");
    b.shows(
        s,
        &[status(502), is(ConnectFailed)],
        "502.backend-unreachable",
        "502 with upstream_connect_time -: the connection to the backend failed",
    );
    b.shows(
        s,
        &[status(502), urt_at(Limit::Response)],
        "502.backend-slow",
        "502 with upstream_response_time at the response timeout",
    );
    nginx_502(b, &join(s, &[status(502), NGINX]));
    b.shows(s, &[status(502), is(NoResponseHeader)], "502.malformed-backend-response",
        "502 after a connect but with no upstream_header_time: the backend's answer was not valid HTTP");
    b.shows(
        s,
        &[status(502)],
        "502.passthrough",
        "502 with upstream_status 502: the backend's own 502, passed on",
    );
    const CT: &str = "504 with upstream_connect_time at the connect timeout";
    b.shows(
        s,
        &[status(504), is(At(Timing::UpstreamConnect, Limit::Connect))],
        "504.connect-timeout",
        CT,
    );
    b.shows(
        s,
        &[status(504), is(ConnectFailed), urt_at(Limit::Connect)],
        "504.connect-timeout",
        CT,
    );
    b.shows(s, &[status(504), NGINX, is(ConnectFailed)], "504.connect-timeout",
        "504 with upstream_connect_time -: nginx never connected, and upstream_response_time is how long it tried");
    // Without $upstream_connect_time, nginx's wait at both timeouts is either's.
    b.either(s, &[status(504), NGINX, not(ConnectLogged), urt_at(Limit::Connect), urt_at(Limit::Response)],
        either!("add $upstream_connect_time to the log_format (-: never connected), or pass nginx's error.log with --error-log"; "504.connect-timeout", "504.backend-slow"),
        "504 with upstream_response_time at both the connect and the response timeout: nginx gave up connecting or reading");
    const SLOW: &str =
        "504 with upstream_response_time at the response timeout: the backend did not answer in time";
    b.shows(
        s,
        &[status(504), urt_at(Limit::Response)],
        "504.backend-slow",
        SLOW,
    );
    b.shows(
        s,
        &[
            status(504),
            is(At(Timing::Request, Limit::Response)),
            is(UrtMissing),
        ],
        "504.backend-slow",
        SLOW,
    );
    nginx_504(b, &join(s, &[status(504), NGINX]));
    b.shows(
        s,
        &[status(504), is(LastIs(504))],
        "504.backend-dependency-timeout",
        "504 with upstream_status 504 well before the listener's timeout: the backend's own 504",
    );
    b.shows(
        s,
        &[status(500), not(LastIs(500))],
        "500.backend-closed-early",
        "500 with a different upstream_status: the backend's answer did not arrive whole",
    );
    passthrough(b, &join(s, &[is(LastIsStatus)]));
    b.none(
        s,
        &[],
        "the status differs from upstream_status in a way no documented cause explains",
    );
}

/// nginx's 502 with `$upstream_status` 502, after it connected (or without the field that says):
/// nginx writes its own 502 there when no valid answer came, so `$upstream_header_time` tells
/// whose it is, and `$upstream_bytes_received` whether anything came back at all.
fn nginx_502(b: &mut Build, s: &[Lit]) {
    use Atom::*;
    b.shows(s, &[is(HeaderLogged), not(NoResponseHeader)], "502.passthrough",
        "502 with upstream_status 502 and an upstream_header_time: the backend's own 502, passed on");
    b.either(s, &[not(HeaderLogged), is(ConnectLogged)],
        either!("add $upstream_header_time to the log_format (a time: the backend's own answer; -: nginx's), or pass nginx's error.log with --error-log"; "502.passthrough", "502.malformed-backend-response", "500.backend-closed-early"),
        "502 with upstream_status 502 after a connect: nginx writes its own 502 there when no valid header came");
    b.either(s, &[not(HeaderLogged), not(ConnectLogged), is(AddrLogged)],
        either!("add $upstream_connect_time and $upstream_header_time to the log_format, or pass nginx's error.log with --error-log"; "502.passthrough", "502.backend-unreachable", "502.malformed-backend-response", "500.backend-closed-early"),
        "502 with upstream_status 502: nginx writes its own 502 there when it gets no valid answer");
    b.either(s, &[not(HeaderLogged), not(ConnectLogged), not(AddrLogged)],
        either!("add $upstream_addr, $upstream_connect_time and $upstream_header_time to the log_format, or pass nginx's error.log with --error-log"; "502.passthrough", "502.backend-unreachable", "502.malformed-backend-response", "500.backend-closed-early", "502.all-backends-unhealthy"),
        "502 with upstream_status 502: nginx writes its own 502 there when it gets no valid answer, or finds no live server");
    b.either(s, &[not(ConnectLogged)],
        either!("add $upstream_connect_time to the log_format (-: never connected), or pass nginx's error.log with --error-log"; "502.backend-unreachable", "502.malformed-backend-response", "500.backend-closed-early"),
        "nginx's own 502 (no upstream_header_time): refused, invalid or cut short");
    b.shows(s, &[is(BytesReceivedZero)], "500.backend-closed-early",
        "nginx's own 502 after a connect with upstream_bytes_received 0: the backend closed or reset the connection without a byte (nginx reports it as 502)");
    b.either(s, &[not(BytesReceivedMissing)],
        either!(ERROR_LOG; "502.malformed-backend-response", "500.backend-closed-early"),
        "nginx's own 502 after the backend sent some bytes but no valid header: an invalid header, or a header cut short");
    b.either(s, &[],
        either!("add $upstream_bytes_received to the log_format (0: nothing came back), or pass nginx's error.log with --error-log"; "502.malformed-backend-response", "500.backend-closed-early"),
        "nginx's own 502 after a connect (no upstream_header_time): an invalid answer, or none");
}

/// nginx's 504 with `$upstream_status` 504 short of the profile's timeouts: nginx writes its
/// own 504 there when its read timeout fires, so the time is its timeout, not the backend's
/// answer, unless `$upstream_header_time` says a header came.
fn nginx_504(b: &mut Build, s: &[Lit]) {
    use Atom::*;
    b.shows(
        s,
        &[is(HeaderLogged), not(NoResponseHeader)],
        "504.backend-dependency-timeout",
        "504 with upstream_status 504 and an upstream_header_time: the backend's own 504",
    );
    b.shows(s, &[is(HeaderLogged), is(NoResponseHeader), is(ConnectLogged)], "504.backend-slow",
        "504 with upstream_header_time - after a connect: nginx's read timeout fired before the backend's header came; upstream_response_time is how long it waited");
    b.either(s, &[is(HeaderLogged), is(NoResponseHeader), not(ConnectLogged)],
        either!("add $upstream_connect_time to the log_format (-: never connected), or pass nginx's error.log with --error-log"; "504.connect-timeout", "504.backend-slow"),
        "nginx's own 504 (no upstream_header_time): its connect or its read timeout");
    b.either(s, &[not(HeaderLogged), is(ConnectLogged)],
        either!("add $upstream_header_time to the log_format (a time: the backend's own answer; -: nginx's timeout), or pass nginx's error.log with --error-log"; "504.backend-slow", "504.backend-dependency-timeout"),
        "504 with upstream_status 504 after a connect: nginx writes its own 504 there when its read timeout fires");
    b.either(s, &[not(HeaderLogged), not(ConnectLogged)],
        either!("add $upstream_connect_time and $upstream_header_time to the log_format, or pass nginx's error.log with --error-log"; "504.connect-timeout", "504.backend-slow", "504.backend-dependency-timeout"),
        "504 with upstream_status 504: nginx writes its own 504 there when a timeout fires");
}

/// status == upstream_status: the backend said it; the code's upstream cause or passthrough.
fn passthrough(b: &mut Build, s: &[Lit]) {
    b.shows(
        s,
        &[status(400)],
        "400.passthrough",
        "400 with upstream_status 400: the backend's own 400, passed on",
    );
    b.shows(
        s,
        &[status(405)],
        "405.backend-method-unsupported",
        "405 with upstream_status 405: the backend does not support the method",
    );
    b.shows(
        s,
        &[status(408)],
        "408.passthrough",
        "408 with upstream_status 408: the backend's own 408, passed on",
    );
    b.shows(
        s,
        &[status(414)],
        "414.backend-uri-limit",
        "414 with upstream_status 414: the backend's URI limit is below the listener's",
    );
    b.shows(
        s,
        &[status(500)],
        "500.backend-error",
        "500 with upstream_status 500: the backend's own 500, passed on",
    );
    b.shows(
        s,
        &[status(503)],
        "503.backend-error",
        "503 with upstream_status 503: the backend's own 503, passed on",
    );
    b.none(
        s,
        &[],
        "status equals upstream_status for a code the catalogue does not cover",
    );
}

/// Every `A or B` the rules can name, by its id: what the SQL results are read back with.
pub fn either_named(id: &str) -> Option<&'static Either> {
    RULES.list.iter().find_map(|r| match r.then {
        Outcome::Undecided(e) if e.id == id => Some(e),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The trees answer what the ordered list answers: the first rule whose every condition
    /// holds, on random facts of every kind of line.
    #[test]
    fn trees_agree_with_the_first_match_of_the_list() {
        let t = Timeouts {
            connect: 5.0,
            response: 60.0,
            request: 60.0,
            max_header_bytes: 32768,
        };
        let mut seed = 7u64;
        let mut next = |n: u64| {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (seed >> 33) % n
        };
        let statuses = [400u16, 404, 405, 408, 414, 499, 500, 502, 503, 504];
        let upstreams = [200u16, 400, 405, 408, 414, 499, 500, 502, 503, 504];
        let times = [
            None,
            Some(0.0),
            Some(0.5),
            Some(4.9),
            Some(5.0),
            Some(57.0),
            Some(60.0),
        ];
        let terms: [Option<[u8; 2]>; 8] = [
            None,
            Some(*b"PR"),
            Some(*b"sC"),
            Some(*b"SH"),
            Some(*b"LR"),
            Some(*b"sQ"),
            Some(*b"--"),
            Some(*b"CR"),
        ];
        let dialects = [Dialect::Nginx, Dialect::Export, Dialect::Haproxy];
        for _ in 0..50_000 {
            let f = Facts {
                status: statuses[next(10) as usize],
                upstream_logged: next(4) > 0,
                upstream: (0..next(3)).map(|_| upstreams[next(10) as usize]).collect(),
                last_try_dash: next(3) == 0,
                request_time: times[next(7) as usize],
                upstream_response_time: times[next(7) as usize],
                upstream_connect_time: times[next(7) as usize],
                connect_failed: next(3) == 0,
                no_response_header: next(3) == 0,
                method: [None, Some(b"GET".to_vec()), Some(b"TRACE".to_vec())][next(3) as usize]
                    .clone(),
                bytes_sent: [None, Some(0), Some(150)][next(3) as usize],
                request_length: [None, Some(0), Some(80), Some(40_000)][next(4) as usize],
                tcpinfo_rtt_us: [None, Some(1_000.0), Some(350_000.0)][next(3) as usize],
                plain_on_tls: next(4) == 0,
                termination: terms[next(8) as usize],
                no_server: next(4) == 0,
                dialect: dialects[next(3) as usize],
                header_logged: next(3) > 0,
                connect_logged: next(3) > 0,
                bytes_received: [None, Some(0), Some(33)][next(3) as usize],
                no_live_upstream: next(5) == 0,
                addr_logged: next(3) > 0,
                ..Facts::default()
            };
            let linear = RULES
                .list
                .iter()
                .find(|r| r.when.iter().all(|l| holds(l.atom, &f, &t) == l.holds))
                .map(|r| r.text);
            assert_eq!(RULES.first(&f, &t).map(|r| r.text), linear, "{f:?}");
        }
    }

    /// The trees stay small: the first-match order does not blow up into every combination.
    #[test]
    fn trees_stay_small() {
        for status in 400..600u16 {
            let n = RULES.tree(status).nodes.len();
            assert!(n < 2000, "{status}: {n} nodes");
        }
    }

    /// Every error status's list ends in a rule that always holds (HAProxy's states aside, which
    /// fall through): no line falls off the end unclassified, whatever its other facts.
    #[test]
    fn every_error_status_ends_in_a_catch_all() {
        let t = Timeouts {
            connect: 5.0,
            response: 60.0,
            request: 60.0,
            max_header_bytes: 32768,
        };
        for status in 400..600u16 {
            for (tried, dash, logged, dialect) in [
                (false, false, true, Dialect::Nginx),
                (true, true, true, Dialect::Nginx),
                (true, false, true, Dialect::Export),
                (false, false, false, Dialect::Nginx),
                (true, false, false, Dialect::Export),
            ] {
                let f = Facts {
                    status,
                    upstream: if tried { vec![200] } else { vec![] },
                    last_try_dash: dash,
                    upstream_logged: logged,
                    dialect,
                    ..Facts::default()
                };
                assert!(
                    RULES.first(&f, &t).is_some(),
                    "{status} {tried} {dash} {logged}"
                );
            }
        }
    }
}
