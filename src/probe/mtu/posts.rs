//! The `mtu` family's POSTs towards one side, smallest first, sent while discovery runs rather
//! than after it, and stopped as soon as the size asymmetry is proven.
//!
//! Proven means, on one side: a smaller POST was answered, a larger one got no answer for
//! [`lost_after`] while the kernel had to retransmit its segments, and discovery towards that
//! side found a black hole (Don't-Fragment packets vanishing with no ICMP) below the larger
//! POST's packets. Then nothing larger is sent to any
//! side and what is still in flight elsewhere is not waited for: each further size would only
//! wait out its timeout to say the same. Without that proof a POST that got no answer within
//! the short wait is sent again with the full one, so a slow side is never taken for a lossy
//! path.

use std::time::Duration;

use tokio::sync::watch;

use crate::transport::pmtu::Discovery;
use crate::transport::{ConnEnd, Exchange};

use super::super::context::{is_silent, Engine, ErrorBudget, Planned, Side, ERROR_BUDGET};
use super::super::{Family, Observation, SentRequest};
use super::discover::Stage;
use super::{post, sorted_sizes, MtuSpec, EVIDENCE};

/// The shortest a larger POST goes unanswered before it counts as lost behind a black hole:
/// Linux retransmits an unacknowledged segment after 200 ms, 600 ms and 1.4 s, so by then
/// three copies of it have vanished.
const LOST_AFTER: Duration = Duration::from_secs(2);
/// ... and never less than this many times the slowest answer a smaller POST got.
const ANSWER_FACTOR: u32 = 4;
/// IPv4 and TCP headers without options: what each segment of a POST carries besides it.
const TCP_IPV4_OVERHEAD: usize = 40;

/// How long a larger POST goes unanswered before it may count as lost, given the slowest
/// answer a smaller one got, never past the full wait.
pub(super) fn lost_after(slowest_answer: Duration, full: Duration) -> Duration {
    (slowest_answer * ANSWER_FACTOR).max(LOST_AFTER).min(full)
}

/// The largest packet that passes towards a side whose discovery found a black hole.
fn hole_mtu(d: &Discovery) -> Option<u32> {
    d.black_hole()
        .then(|| d.path_mtu.or(d.largest_passed))
        .flatten()
}

/// Whether a POST whose largest segment is `packet` bytes may fall into a black hole: one
/// found below it, or a discovery still running.
fn may_fall_in_hole(stage: Option<&Stage>, packet: usize) -> bool {
    match stage {
        None | Some(Stage::Done(None)) => false,
        Some(Stage::Opening | Stage::Searching) => true,
        Some(Stage::Done(Some(d))) => hole_mtu(d).is_some_and(|m| packet > m as usize),
    }
}

/// The body got through: a complete answer other than a size limit or the listener's own
/// 502/504 (those say nothing of, or against, delivery).
fn delivered(ex: &Exchange) -> bool {
    ex.response.as_ref().is_some_and(|r| r.complete)
        && !matches!(ex.status(), Some(413 | 502 | 504))
}

/// The POST got nothing back: the side kept silent, or closed the connection without a byte.
/// A server's own read timeout for a body that never arrives (the lab backend's is 1 s) may
/// end the connection before the short wait does; that is the same loss, not an answer.
fn unanswered(ex: &Exchange) -> bool {
    is_silent(ex)
        || (ex.timings.connect_ms.is_some()
            && ex.bytes_in == 0
            && matches!(ex.end, ConnEnd::Fin | ConnEnd::Reset))
}

/// The kernel had to send some of the POST's segments again: they were not acknowledged, so
/// they did not arrive (a server that is only slow acknowledges the bytes and answers late).
/// Where TCP_INFO cannot be read, the silence alone has to do.
fn unacknowledged(ex: &Exchange) -> bool {
    ex.tcp_retransmits.is_none_or(|n| n > 0)
}

fn sizes_text(sizes: &[usize]) -> String {
    sizes
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// What sending one POST came to.
enum Sent {
    Done(SentRequest, Box<Exchange>),
    /// The asymmetry was proven elsewhere while this one was in flight: not waited for.
    Settled,
    /// The run's budget is spent or it was interrupted: nothing was sent.
    Exhausted,
}

async fn send(
    engine: &Engine,
    planned: &Planned,
    wait: Duration,
    settled: &mut watch::Receiver<bool>,
) -> Sent {
    tokio::select! {
        sent = engine.send_planned(planned, Some(wait)) => match sent {
            Ok((sent, exchange)) => Sent::Done(sent, Box::new(exchange)),
            Err(_) => Sent::Exhausted,
        },
        _ = settled.wait_for(|s| *s) => Sent::Settled,
    }
}

/// The POSTs to `side`, smallest first. `stage` follows discovery towards the same side (none
/// when discovery is off); `settled` is shared by every side of the family and set once one
/// of them has proven the asymmetry.
pub(super) async fn posts(
    engine: &Engine,
    side: &Side,
    spec: &MtuSpec,
    mut stage: Option<watch::Receiver<Stage>>,
    settled: &watch::Sender<bool>,
) -> Vec<Observation> {
    let mut out = Vec::new();
    let mut errors = ErrorBudget::default();
    let mut settled_rx = settled.subscribe();
    let label = side.endpoint.label();
    // Not before discovery has read the kernel's path MTU: an ICMP "fragmentation needed"
    // for a large POST would otherwise be where its search starts.
    if let Some(rx) = stage.as_mut() {
        let _ = rx.wait_for(Stage::opened).await;
    }
    let full = spec
        .request_wait
        .unwrap_or(engine.request_timeout())
        .min(engine.request_timeout());
    let sizes = sorted_sizes(spec);
    let mut slowest_answer: Option<Duration> = None;
    for (i, &size) in sizes.iter().enumerate() {
        if *settled_rx.borrow() {
            engine.note(format!(
                "mtu: the size asymmetry was proven; the POSTs of {} bytes were not sent to {label}",
                sizes_text(&sizes[i..])
            ));
            break;
        }
        let planned = post(side, size);
        let packet = planned.bytes.len() + TCP_IPV4_OVERHEAD;
        let now = stage.as_ref().map(|rx| rx.borrow().clone());
        // Short only once a smaller POST was answered: the asymmetry needs that answer.
        let short = slowest_answer
            .filter(|_| may_fall_in_hole(now.as_ref(), packet))
            .map(|answer| lost_after(answer, full));
        let (mut sent, mut exchange) = match send(
            engine,
            &planned,
            short.unwrap_or(full),
            &mut settled_rx,
        )
        .await
        {
            Sent::Done(s, e) => (s, *e),
            Sent::Settled => {
                engine.note(format!(
                        "mtu: the size asymmetry was proven; the {size}-byte POST to {label} was not waited for{}",
                        if i + 1 < sizes.len() {
                            format!(" and those of {} bytes were not sent", sizes_text(&sizes[i + 1..]))
                        } else {
                            String::new()
                        }
                    ));
                break;
            }
            Sent::Exhausted => break,
        };
        if let (Some(short), true) = (short, unanswered(&exchange)) {
            let found = match stage.as_mut() {
                Some(rx) => match rx.wait_for(|s| matches!(s, Stage::Done(_))).await {
                    Ok(s) => match &*s {
                        Stage::Done(d) => d.clone(),
                        _ => None,
                    },
                    Err(_) => None,
                },
                None => None,
            };
            let proven = found
                .as_ref()
                .and_then(hole_mtu)
                .filter(|&m| packet > m as usize && unacknowledged(&exchange));
            if let Some(mtu) = proven {
                out.push(observation(engine, side, &planned, sent, exchange));
                settled.send_replace(true);
                if i + 1 < sizes.len() {
                    engine.note(format!(
                        "mtu: {label} answered a smaller POST, the {size}-byte one got nothing back within {:.1} s and Don't-Fragment packets above {mtu} bytes vanish on the way: the POSTs of {} bytes were not sent",
                        short.as_secs_f64(),
                        sizes_text(&sizes[i + 1..])
                    ));
                }
                break;
            }
            // Not proven: wait the full time, as if the short try had not been made (unless it
            // was the full time already).
            if short < full {
                match send(engine, &planned, full, &mut settled_rx).await {
                    Sent::Done(s, e) => (sent, exchange) = (s, *e),
                    Sent::Settled => {
                        engine.note(format!(
                            "mtu: the size asymmetry was proven; the {size}-byte POST to {label} was not waited for"
                        ));
                        break;
                    }
                    Sent::Exhausted => break,
                }
            }
        }
        if delivered(&exchange) {
            let took = Duration::from_secs_f64(exchange.timings.total_ms.max(0.0) / 1000.0);
            slowest_answer = Some(slowest_answer.map_or(took, |s| s.max(took)));
        }
        let go_on = errors.record(side.role(), &exchange);
        out.push(observation(engine, side, &planned, sent, exchange));
        if !go_on && i + 1 < sizes.len() {
            engine.note(format!(
                "mtu: {label} failed {ERROR_BUDGET} large POSTs in a row; the larger sizes ({}) were not sent",
                sizes_text(&sizes[i + 1..])
            ));
            break;
        }
    }
    out
}

fn observation(
    engine: &Engine,
    side: &Side,
    planned: &Planned,
    sent: SentRequest,
    exchange: Exchange,
) -> Observation {
    engine.observation(
        Family::Mtu,
        planned.variant.clone(),
        side,
        true,
        EVIDENCE,
        sent,
        Some(exchange),
        super::super::Detail::None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::pmtu::{Icmp, Method};

    fn discovery(icmp: Icmp, path_mtu: Option<u32>) -> Discovery {
        Discovery {
            address: [10, 77, 2, 2].into(),
            method: Method::RawEcho,
            kernel_mtu_before: 1500,
            top: 1500,
            capped: false,
            largest_passed: path_mtu,
            smallest_lost: path_mtu.map(|m| m + 1),
            path_mtu,
            exact: true,
            icmp,
            probes: 12,
            stopped: None,
        }
    }

    #[test]
    fn only_a_hole_below_the_packet_or_a_running_discovery_shortens_the_wait() {
        let hole = Stage::Done(Some(discovery(Icmp::Silent, Some(1280))));
        assert!(may_fall_in_hole(Some(&hole), 1350));
        assert!(!may_fall_in_hole(Some(&hole), 1280));
        assert!(may_fall_in_hole(Some(&Stage::Searching), 1350));
        // PMTUD works, or discovery could not run, or is off: the full wait.
        let working = Stage::Done(Some(discovery(Icmp::Returned { mtu: 1280 }, Some(1280))));
        assert!(!may_fall_in_hole(Some(&working), 9000));
        assert!(!may_fall_in_hole(Some(&Stage::Done(None)), 9000));
        assert!(!may_fall_in_hole(None, 9000));
    }

    /// A slow server acknowledges the bytes (no retransmission) and is no proof of loss.
    #[test]
    fn only_retransmitted_segments_prove_a_lost_post() {
        let side = Side::of(
            &crate::target::Target::parse(crate::target::Role::Backend, "http://10.77.2.2:80/")
                .unwrap(),
        );
        let mut ex = Exchange::not_started(&side.endpoint);
        ex.tcp_retransmits = Some(0);
        assert!(!unacknowledged(&ex));
        ex.tcp_retransmits = Some(4);
        assert!(unacknowledged(&ex));
        ex.tcp_retransmits = None;
        assert!(unacknowledged(&ex), "no TCP_INFO: the silence has to do");
    }

    #[test]
    fn a_lost_post_waits_a_few_answers_long_at_least_two_seconds_at_most_the_full_wait() {
        let full = Duration::from_secs(10);
        assert_eq!(lost_after(Duration::from_millis(3), full), LOST_AFTER);
        assert_eq!(
            lost_after(Duration::from_secs(1), full),
            Duration::from_secs(4)
        );
        assert_eq!(lost_after(Duration::from_secs(5), full), full);
    }
}
