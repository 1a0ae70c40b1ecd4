//! Rules on packet size: path MTU mismatches that drop large packets (502).
//!
//! Two kinds of evidence, read side by side: the `mtu` family's POSTs of growing bodies (small
//! ones answered, large ones lost — no answer, or 502/504 — while the health check passes is
//! the documented signature), and its path MTU discovery (Don't-Fragment packets above some
//! size vanishing with no ICMP "fragmentation needed": a black hole).

use crate::probe::mtu::{post_size, MtuResult, DISCOVERY_VARIANT, HELLO_LARGE, HELLO_SMALL};
use crate::probe::{Detail, Family, Observation};
use crate::target::Role;
use crate::transport::pmtu::{Discovery, Icmp};
use crate::transport::Exchange;

use super::rules::Rule;
use super::{describe, Context, Draft, Verdict, View};

const ID: &str = "502.mtu-mismatch";

pub(crate) const RULE: Rule = Rule {
    name: "mtu",
    causes: &[ID],
    decide: drafts,
};

fn drafts(view: &View<'_>, ctx: &Context<'_>) -> Vec<Draft> {
    let _ = ctx;
    mtu_mismatch(view).into_iter().collect()
}

/// What one POST of the family showed about large packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// An answer came back: the body got through (whatever the status says about it).
    Delivered,
    /// No answer, or the listener's 502/504: the bytes may not have arrived.
    Lost,
    /// Refused by a body size limit (413): says nothing about packets.
    SizeLimit,
    /// Never connected: says nothing about sizes.
    Unreached,
}

fn fate(ex: &Exchange) -> Fate {
    match ex.status() {
        Some(413) => Fate::SizeLimit,
        Some(502 | 504) => Fate::Lost,
        Some(_) => Fate::Delivered,
        None if ex.end.never_connected() => Fate::Unreached,
        None => Fate::Lost,
    }
}

/// The family's observations towards one side.
struct Probed<'a> {
    role: Role,
    discovery: Option<(&'a Observation, &'a MtuResult)>,
    /// (body size, observation, fate), smallest first.
    posts: Vec<(usize, &'a Observation, Fate)>,
    baseline: Option<&'a Observation>,
    /// The small and the large TLS ClientHello, when the side speaks TLS.
    hello_small: Option<&'a Observation>,
    hello_large: Option<&'a Observation>,
}

/// Whether any byte of a server's first flight came back to a ClientHello.
fn hello_answered(o: &Observation) -> bool {
    o.exchange.as_ref().is_some_and(|ex| ex.bytes_in > 0)
}

/// `1719 bytes: no answer within 3.0 s` or `251 bytes: a ServerHello after 2 ms`.
fn hello_text(o: &Observation) -> String {
    let sent = o.exchange.as_ref().map_or(0, |ex| ex.bytes_out);
    let Some(ex) = o.exchange.as_ref() else {
        return format!("{sent} bytes: not sent");
    };
    if ex.bytes_in == 0 {
        let secs = ex.timings.total_ms / 1000.0;
        return match &ex.end {
            crate::transport::ConnEnd::Timeout => {
                format!("{sent} bytes: no answer within {secs:.1} s")
            }
            e if e.never_connected() => format!("{sent} bytes: no connection"),
            crate::transport::ConnEnd::Reset => {
                format!("{sent} bytes: nothing back in {secs:.1} s, then a reset")
            }
            _ => format!(
                "{sent} bytes: nothing back in {secs:.1} s, then the server closed the \
                 connection (it never got the whole hello)"
            ),
        };
    }
    format!(
        "{sent} bytes: {} after {:.0} ms",
        crate::transport::client_hello::first_record(ex.raw_prefix.as_bytes()),
        ex.timings.first_byte_ms.unwrap_or(ex.timings.total_ms)
    )
}

/// The pattern of one side's POSTs.
enum Pattern {
    /// Every POST answered.
    AllDelivered,
    /// Small ones answered, every one from `smallest_lost` up lost.
    LargeLost {
        largest_delivered: usize,
        smallest_lost: usize,
    },
    /// Anything else (all lost, mixed, size limits, nothing sent): says nothing firm.
    Unclear(String),
}

impl<'a> Probed<'a> {
    fn of(view: &View<'a>, role: Role) -> Probed<'a> {
        let mut p = Probed {
            role,
            discovery: None,
            posts: Vec::new(),
            baseline: view.find(Family::Protocol, "baseline", role),
            hello_small: view.find(Family::Mtu, HELLO_SMALL, role),
            hello_large: view.find(Family::Mtu, HELLO_LARGE, role),
        };
        for o in view
            .observations
            .iter()
            .filter(|o| o.family == Family::Mtu && o.role == role)
        {
            match (&o.detail, o.exchange.as_ref(), post_size(&o.variant)) {
                (Detail::Mtu(r), _, _) if o.variant == DISCOVERY_VARIANT => {
                    p.discovery = Some((o, r))
                }
                (_, Some(ex), Some(size)) => p.posts.push((size, o, fate(ex))),
                _ => {}
            }
        }
        p.posts.sort_by_key(|(size, _, _)| *size);
        p
    }

    /// What this side's discovery found, when it is a black hole.
    fn hole(&self) -> Option<&'a Discovery> {
        let (_, r) = self.discovery?;
        r.discovery.as_ref().filter(|d| d.black_hole())
    }

    fn is_empty(&self) -> bool {
        self.discovery.is_none() && self.posts.is_empty() && self.hello_small.is_none()
    }

    /// The small hello answered and the large one not: the sizes of the large one are lost.
    fn hello_hole(&self) -> Option<(&'a Observation, &'a Observation)> {
        let (small, large) = (self.hello_small?, self.hello_large?);
        (hello_answered(small) && !hello_answered(large)).then_some((small, large))
    }

    fn side_name(&self) -> &'static str {
        match self.role {
            Role::Listener => "through the listener",
            Role::Backend => "straight to the backend",
        }
    }

    /// The health check (the baseline GET) got an answer below 500.
    fn healthy(&self) -> bool {
        self.baseline
            .and_then(|o| o.exchange.as_ref())
            .and_then(Exchange::status)
            .is_some_and(|s| s < 500)
    }

    fn pattern(&self) -> Pattern {
        let judged: Vec<&(usize, &Observation, Fate)> = self
            .posts
            .iter()
            .filter(|(_, _, f)| matches!(f, Fate::Delivered | Fate::Lost))
            .collect();
        if judged.is_empty() {
            return Pattern::Unclear(if self.posts.is_empty() {
                "no POST was sent".into()
            } else {
                "no POST got past a size limit or connected".into()
            });
        }
        let delivered = judged
            .iter()
            .filter(|(_, _, f)| *f == Fate::Delivered)
            .map(|(s, _, _)| *s)
            .max();
        let lost: Vec<&(usize, &Observation, Fate)> = judged
            .iter()
            .copied()
            .filter(|(_, _, f)| *f == Fate::Lost)
            .collect();
        match (delivered, lost.first()) {
            (Some(_), None) => Pattern::AllDelivered,
            (None, Some(_)) => Pattern::Unclear("even the smallest POST got no answer".into()),
            (Some(d), Some(&&(l, _, _))) if d < l => Pattern::LargeLost {
                largest_delivered: d,
                smallest_lost: l,
            },
            _ => Pattern::Unclear(
                "some large POSTs were answered while smaller ones were not: not a size pattern"
                    .into(),
            ),
        }
    }

    /// One line per POST: `1400 bytes: no answer within 3 s (the kernel sent 4 segments
    /// again)`.
    fn posts_text(&self) -> String {
        self.posts
            .iter()
            .map(|(size, o, fate)| {
                let retransmits = o
                    .exchange
                    .as_ref()
                    .and_then(|ex| ex.tcp_retransmits)
                    .filter(|&n| n > 0 && *fate == Fate::Lost)
                    .map(|n| {
                        let segments = if n == 1 { "segment" } else { "segments" };
                        format!(" (the kernel sent {n} {segments} again)")
                    })
                    .unwrap_or_default();
                format!(
                    "{size} bytes: {}{retransmits}",
                    describe(o.exchange.as_ref())
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn post_refs(&self) -> Vec<&'a Observation> {
        self.posts.iter().map(|(_, o, _)| *o).collect()
    }
}

fn discovery_text(d: &Discovery) -> String {
    let path = match (d.path_mtu, d.largest_passed) {
        (Some(m), _) => format!("path MTU {m} bytes"),
        (None, Some(p)) => format!("packets of {p} bytes pass"),
        (None, None) => "no probe size got through".into(),
    };
    let icmp = match d.icmp {
        Icmp::NotNeeded if d.capped => format!(
            "{} bytes, the largest size tried, passed (the route allows {})",
            d.top, d.kernel_mtu_before
        ),
        Icmp::NotNeeded => format!("the full route MTU of {} bytes passes", d.top),
        Icmp::Returned { mtu } => format!(
            "ICMP \"fragmentation needed\" came back and the kernel learned {mtu}: path MTU discovery works"
        ),
        Icmp::Silent => format!(
            "Don't-Fragment packets of {} bytes and more vanished with no ICMP \"fragmentation needed\": a black hole",
            d.smallest_lost.map_or_else(|| "some".into(), |l| l.to_string())
        ),
        Icmp::Unknown => "could not tell whether ICMP comes back".into(),
    };
    let stopped = d
        .stopped
        .as_deref()
        .map(|s| format!(" ({s})"))
        .unwrap_or_default();
    let probes = if d.probes == 1 { "probe" } else { "probes" };
    format!(
        "to {}: {path}; {icmp} [{} {probes}{stopped}]",
        d.address, d.probes
    )
}

fn mtu_mismatch(view: &View<'_>) -> Option<Draft> {
    let sides: Vec<Probed<'_>> = [Role::Listener, Role::Backend]
        .into_iter()
        .map(|r| Probed::of(view, r))
        .filter(|p| !p.is_empty())
        .collect();
    if sides.is_empty() {
        return None;
    }

    // Evidence common to every verdict: what each side's POSTs and discovery showed.
    let mut evidence: Vec<(String, Vec<&Observation>)> = Vec::new();
    let mut missing: Vec<String> = Vec::new();
    for p in &sides {
        if !p.posts.is_empty() {
            evidence.push((
                format!("POSTs {}: {}", p.side_name(), p.posts_text()),
                p.post_refs(),
            ));
        }
        if let (Some(small), Some(large)) = (p.hello_small, p.hello_large) {
            evidence.push((
                format!(
                    "TLS ClientHellos {}: small, {}; large (with a post-quantum key share, as \
                     current clients send), {}",
                    p.side_name(),
                    hello_text(small),
                    hello_text(large)
                ),
                vec![small, large],
            ));
        }
        if let Some((o, r)) = p.discovery {
            match &r.discovery {
                Some(d) => {
                    evidence.push((format!("path MTU discovery {}", discovery_text(d)), vec![o]))
                }
                None => evidence.push((
                    format!(
                        "no path MTU discovery towards the {}: {}",
                        p.role,
                        r.missing_text()
                    ),
                    vec![o],
                )),
            }
            if r.discovery.as_ref().is_none_or(|d| d.icmp == Icmp::Unknown) {
                missing.extend(r.missing.iter().cloned());
            }
        }
    }
    let finish = |d: Draft| {
        evidence
            .iter()
            .fold(d, |d, (text, refs)| d.with(text.clone(), refs))
    };

    let large_lost_on = |p: &Probed<'_>| match p.pattern() {
        Pattern::LargeLost {
            largest_delivered,
            smallest_lost,
        } if p.healthy() => Some((largest_delivered, smallest_lost)),
        _ => None,
    };
    // The side whose own discovery found the hole first: its POSTs and packets tell one story.
    let lost_large = sides
        .iter()
        .filter(|p| p.hole().is_some())
        .chain(sides.iter())
        .find_map(|p| large_lost_on(p).map(|(d, l)| (p, d, l)));
    let black_hole = sides.iter().find_map(|p| p.hole().map(|d| (p, d)));
    let all_delivered = sides
        .iter()
        .all(|p| p.posts.is_empty() || matches!(p.pattern(), Pattern::AllDelivered))
        && sides.iter().any(|p| !p.posts.is_empty());

    if let Some((p, delivered, lost)) = lost_large {
        let hole = black_hole
            .map(|(h, d)| {
                format!(
                    "; Don't-Fragment probes to the {} find a black hole above {} bytes",
                    h.role,
                    d.path_mtu.or(d.largest_passed).unwrap_or(0)
                )
            })
            .unwrap_or_default();
        // Only what was sent: the family stops sending larger sizes once this is proven.
        let larger = p.posts.iter().filter(|(size, _, _)| *size > lost).count();
        let not_answered = if larger == 0 {
            format!("one with {lost} bytes is not")
        } else {
            format!("from {lost} bytes up none is")
        };
        return Some(finish(Draft::new(
            ID,
            Verdict::Confirmed,
            format!(
                "{} a POST with a {delivered}-byte body is answered but {not_answered}, while the health check passes{hole}",
                p.side_name()
            ),
        )));
    }
    if let Some((p, (small, large))) = sides.iter().find_map(|p| p.hello_hole().map(|h| (p, h))) {
        let size = |o: &Observation| o.exchange.as_ref().map_or(0, |ex| ex.bytes_out);
        return Some(finish(Draft::new(
            ID,
            Verdict::Confirmed,
            format!(
                "{} a {}-byte TLS ClientHello is answered but a {}-byte one, the size clients \
                 with post-quantum key shares send, gets nothing back: packets above one small \
                 segment are lost on the way (a path MTU black hole); TLS handshakes from such \
                 clients hang",
                p.side_name(),
                size(small),
                size(large)
            ),
        )));
    }
    if let Some((p, d)) = black_hole {
        if all_delivered {
            return Some(finish(Draft::new(
                ID,
                Verdict::Inconclusive,
                format!(
                    "Don't-Fragment packets above {} bytes to {} vanish with no ICMP, yet every large POST was answered (TCP may be clamped below the hole); check large responses and the listener's own path",
                    d.largest_passed.unwrap_or(0),
                    d.address
                ),
            )));
        }
        return Some(finish(Draft::new(
            ID,
            Verdict::Confirmed,
            format!(
                "Don't-Fragment packets above {} bytes to the {} ({}) vanish with no ICMP \"fragmentation needed\": a path MTU black hole",
                d.path_mtu.or(d.largest_passed).unwrap_or(0),
                p.role,
                d.address
            ),
        )));
    }
    if all_delivered {
        let largest = sides
            .iter()
            .flat_map(|p| p.posts.iter().map(|(s, _, _)| *s))
            .max()
            .unwrap_or(0);
        return Some(finish(Draft::new(
            ID,
            Verdict::RuledOut,
            format!(
                "every POST up to a {largest}-byte body was answered, and no black hole was found"
            ),
        )));
    }
    let unclear: Vec<String> = sides
        .iter()
        .filter_map(|p| match p.pattern() {
            Pattern::Unclear(why) => Some(format!("{}: {why}", p.side_name())),
            Pattern::LargeLost { .. } => Some(format!(
                "{}: large POSTs were lost but the health check failed too",
                p.side_name()
            )),
            Pattern::AllDelivered => None,
        })
        .collect();
    let mut reason = format!(
        "the POSTs show no clear size pattern ({})",
        unclear.join("; ")
    );
    if !missing.is_empty() {
        reason.push_str(&format!(
            "; path MTU discovery could not help: {}",
            missing.join("; ")
        ));
    }
    Some(finish(Draft::new(ID, Verdict::Inconclusive, reason)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::SentRequest;
    use crate::transport::ConnEnd;

    fn obs(variant: &str, role: Role, exchange: Option<Exchange>, detail: Detail) -> Observation {
        Observation {
            id: format!("{variant}-{role}"),
            family: Family::Mtu,
            variant: variant.into(),
            role,
            well_formed: true,
            evidence_for: vec![ID.into()],
            request: SentRequest::described("", 0, false),
            exchange,
            detail,
            logged: None,
        }
    }

    fn ended(end: ConnEnd) -> Exchange {
        Exchange::ended("10.0.0.2:80", end)
    }

    /// No privilege for discovery and every POST lost, even the small one: nothing to go on,
    /// and the finding says what was missing.
    #[test]
    fn unprivileged_and_all_lost_is_inconclusive_naming_what_is_missing() {
        let missing = MtuResult {
            address: Some("10.0.0.2".into()),
            discovery: None,
            missing: vec!["no raw ICMP socket: needs root or CAP_NET_RAW".into()],
        };
        let observations = vec![
            obs(
                DISCOVERY_VARIANT,
                Role::Listener,
                None,
                Detail::Mtu(missing),
            ),
            obs(
                "post-1200",
                Role::Listener,
                Some(ended(ConnEnd::Timeout)),
                Detail::None,
            ),
            obs(
                "post-9000",
                Role::Listener,
                Some(ended(ConnEnd::Timeout)),
                Detail::None,
            ),
        ];
        let d = mtu_mismatch(&View {
            observations: &observations,
            reached: None,
        })
        .expect("a draft");
        assert_eq!(d.verdict, Verdict::Inconclusive, "{}", d.reason);
        assert!(d.reason.contains("CAP_NET_RAW"), "{}", d.reason);
        assert!(d.reason.contains("even the smallest"), "{}", d.reason);
    }

    fn answered(status: u16) -> Exchange {
        let bytes = format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n");
        Exchange {
            response: crate::transport::response::parse_response(
                bytes.as_bytes(),
                false,
                &Default::default(),
            ),
            ..ended(ConnEnd::Complete)
        }
    }

    fn hole(address: &str) -> MtuResult {
        use crate::transport::pmtu::Method;
        MtuResult {
            address: Some(address.into()),
            discovery: Some(Discovery {
                address: address.parse().unwrap(),
                method: Method::RawEcho,
                kernel_mtu_before: 1500,
                top: 1500,
                capped: false,
                largest_passed: Some(1280),
                smallest_lost: Some(1281),
                path_mtu: Some(1280),
                exact: true,
                icmp: Icmp::Silent,
                probes: 13,
                stopped: None,
            }),
            missing: Vec::new(),
        }
    }

    /// What the family leaves after proving the hole towards the backend: the listener answered
    /// its small POST and a 504 for 1200 bytes, the backend its small POST and nothing for 1200
    /// bytes, no larger size sent. The backend, whose own discovery found the hole, is named,
    /// and the reason does not speak of sizes that were never sent.
    #[test]
    fn a_proven_hole_names_the_side_that_found_it_and_only_the_sizes_sent() {
        let mut observations = Vec::new();
        for role in [Role::Listener, Role::Backend] {
            let mut baseline = obs("baseline", role, Some(answered(200)), Detail::None);
            baseline.family = Family::Protocol;
            observations.push(baseline);
            observations.push(obs("post-256", role, Some(answered(200)), Detail::None));
        }
        observations.push(obs(
            "post-1200",
            Role::Listener,
            Some(answered(504)),
            Detail::None,
        ));
        observations.push(obs(
            "post-1200",
            Role::Backend,
            Some(ended(ConnEnd::Timeout)),
            Detail::None,
        ));
        observations.push(obs(
            DISCOVERY_VARIANT,
            Role::Backend,
            None,
            Detail::Mtu(hole("10.77.2.2")),
        ));
        let d = mtu_mismatch(&View {
            observations: &observations,
            reached: None,
        })
        .expect("a draft");
        assert_eq!(d.verdict, Verdict::Confirmed, "{}", d.reason);
        assert!(
            d.reason.starts_with("straight to the backend a POST with a 256-byte body is answered but one with 1200 bytes is not"),
            "{}",
            d.reason
        );
        assert!(
            d.reason
                .contains("to the backend find a black hole above 1280 bytes"),
            "{}",
            d.reason
        );
    }

    #[test]
    fn no_mtu_observations_make_no_finding() {
        assert!(mtu_mismatch(&View::default()).is_none());
    }
}
