//! Path MTU discovery towards one side, as the `mtu` family runs it: Don't-Fragment probes
//! bisected by [`Search`], each silence judged against the path's own round trip, and what it
//! found published as it goes so that the family's POSTs need not wait for it.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::transport::pmtu::{self, Discovery, PmtuError, Prober, Search};

use super::super::context::{Engine, Side};
use super::super::{Detail, Family, Observation, SentRequest};
use super::{MtuResult, MtuSpec, DISCOVERY_VARIANT, EVIDENCE};

const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// The shortest a probe waits for its echo once an echo has been timed: scheduling on a busy
/// machine alone can take tens of milliseconds.
const MIN_SILENCE: Duration = Duration::from_millis(250);
/// A probe waits this many times the slowest echo seen before its silence counts.
const ECHO_FACTOR: u32 = 4;

/// How far discovery towards one side has got, for the POSTs sent meanwhile.
#[derive(Debug, Clone)]
pub(super) enum Stage {
    /// Resolving the address and reading the kernel's path MTU: a large POST now could teach
    /// the kernel the path MTU before discovery has read where it starts.
    Opening,
    /// The kernel's MTU is read; probes are going out.
    Searching,
    /// Over: what it found, if it ran.
    Done(Option<Discovery>),
}

impl Stage {
    pub(super) fn opened(&self) -> bool {
        !matches!(self, Stage::Opening)
    }
}

async fn resolve(host: &str, port: u16) -> Result<IpAddr, String> {
    let lookup = tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((host, port)))
        .await
        .map_err(|_| {
            format!(
                "resolving {host} took longer than {} s",
                RESOLVE_TIMEOUT.as_secs()
            )
        })?
        .map_err(|e| format!("resolving {host}: {e}"))?;
    let addrs: Vec<IpAddr> = lookup.map(|a| a.ip()).collect();
    // IPv4 first: discovery over IPv6 is not implemented yet.
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| format!("{host} resolved to no address"))
}

/// Discovery towards `side`, telling `stage` how far it got; `stage` ends at `Done` whatever
/// happens.
pub(super) async fn discover(
    engine: &Engine,
    side: &Side,
    spec: &MtuSpec,
    stage: &watch::Sender<Stage>,
) -> Observation {
    let host = &side.target.host;
    let port = side.target.port;
    let mut result = MtuResult {
        address: None,
        discovery: None,
        missing: Vec::new(),
    };
    match resolve(host, port).await {
        Err(why) => result.missing.push(why),
        Ok(address) => {
            result.address = Some(address.to_string());
            match search(engine, address, port, spec, stage).await {
                Ok((discovery, missing)) => {
                    result.discovery = Some(discovery);
                    result.missing = missing;
                }
                Err(e) => result.missing.push(e.to_string()),
            }
        }
    }
    stage.send_replace(Stage::Done(result.discovery.clone()));
    let text = match &result.discovery {
        Some(d) => format!(
            "{} Don't-Fragment probes to {} (path MTU discovery over {})",
            d.probes,
            d.address,
            match d.method {
                pmtu::Method::RawEcho => "a raw ICMP echo socket",
                pmtu::Method::PingEcho => "a ping socket",
                pmtu::Method::Udp => "UDP",
            }
        ),
        None => "no Don't-Fragment probe sent".to_string(),
    };
    for why in &result.missing {
        engine.note(format!("mtu towards {}: {why}", side.endpoint.label()));
    }
    engine.observation(
        Family::Mtu,
        DISCOVERY_VARIANT,
        side,
        true,
        EVIDENCE,
        SentRequest::described(text, 0, false),
        None,
        Detail::Mtu(result),
    )
}

/// How long a probe waits for its echo: the longest (`cap`) until an echo has been timed, then
/// a few times the slowest echo seen, never less than [`MIN_SILENCE`] nor more than `cap`.
fn silence_wait(cap: Duration, slowest_echo: Option<Duration>) -> Duration {
    slowest_echo
        .map_or(cap, |rtt| (rtt * ECHO_FACTOR).max(MIN_SILENCE))
        .min(cap)
}

/// One probe on the blocking pool; gives the prober back with what the probe got.
async fn probe(
    mut prober: Prober,
    size: u32,
    wait: Duration,
) -> Result<(Prober, pmtu::Outcome), pmtu::Outcome> {
    tokio::task::spawn_blocking(move || {
        let outcome = prober.probe(size, wait);
        (prober, outcome)
    })
    .await
    .map_err(|_| pmtu::Outcome::Failed("the probe thread failed".into()))
}

/// The search, one blocking probe at a time; each probe takes a ticket like a request, so the
/// run's rate and count caps hold for these packets too. The floor goes first, so that every
/// later silence waits a few of this path's round trips rather than `echo_wait`; the size a
/// black hole would start at is sent once more with the full `echo_wait` before it counts.
async fn search(
    engine: &Engine,
    address: IpAddr,
    port: u16,
    spec: &MtuSpec,
    stage: &watch::Sender<Stage>,
) -> Result<(Discovery, Vec<String>), PmtuError> {
    let opened = tokio::task::spawn_blocking(move || {
        let (prober, missing) = Prober::open(address, port)?;
        let before = prober.kernel_mtu().map_err(|source| PmtuError::Io {
            context: format!("reading the kernel's path MTU (IP_MTU) towards {address}"),
            source,
        })?;
        Ok::<_, PmtuError>((prober, missing, before))
    })
    .await
    .map_err(|e| PmtuError::Io {
        context: "opening the probe socket".into(),
        source: std::io::Error::other(e.to_string()),
    })??;
    let (mut prober, missing, before) = opened;
    stage.send_replace(Stage::Searching);
    let method = prober.method();
    let mut search = Search::new(before.min(spec.max_mtu), method.silence_is_loss()).floor_first();
    let mut slowest_echo: Option<Duration> = None;
    loop {
        let (size, wait) = match search.next_size() {
            Some(size) => (size, silence_wait(spec.echo_wait, slowest_echo)),
            None => match search.recheck() {
                Some(size) => (size, spec.echo_wait),
                None => break,
            },
        };
        if let Err(why) = engine.ticket().await {
            search.record(size, &pmtu::Outcome::Failed(why.to_string()));
            break;
        }
        let started = Instant::now();
        match probe(prober, size, wait).await {
            Ok((p, outcome)) => {
                prober = p;
                if outcome == pmtu::Outcome::Passed {
                    let took = started.elapsed();
                    slowest_echo = Some(slowest_echo.map_or(took, |s| s.max(took)));
                }
                search.record(size, &outcome);
            }
            Err(failed) => {
                search.record(size, &failed);
                break;
            }
        }
    }
    Ok((search.finish(address, method, before), missing))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silences_wait_the_cap_until_an_echo_is_timed_then_a_few_round_trips() {
        let cap = Duration::from_secs(1);
        assert_eq!(silence_wait(cap, None), cap);
        assert_eq!(
            silence_wait(cap, Some(Duration::from_micros(80))),
            MIN_SILENCE
        );
        assert_eq!(
            silence_wait(cap, Some(Duration::from_millis(100))),
            Duration::from_millis(400)
        );
        assert_eq!(silence_wait(cap, Some(Duration::from_millis(600))), cap);
    }
}
