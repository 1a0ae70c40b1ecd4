//! The `mtu` family: path MTU towards each side (Don't-Fragment probes, the kernel's learned
//! path MTU) and the same request with small and large bodies.
//!
//! Discovery runs first, before any large request of this family: a TCP connection that met
//! ICMP "fragmentation needed" would teach the kernel the path MTU, and the probe would then
//! start below it and never see whether ICMP comes back.

use std::net::IpAddr;
use std::time::Duration;

use serde::Serialize;

use crate::transport::pmtu::{self, Discovery, PmtuError, Prober, Search};
use crate::transport::{client_hello, Endpoint, Wire};

use super::context::{Engine, ErrorBudget, Planned, Side, Via, ERROR_BUDGET};
use super::{request, Detail, Family, Observation, SentRequest};

pub const EVIDENCE: &[&str] = &["502.mtu-mismatch"];

/// Body sizes around the common MTUs (a 1280-byte tunnel, 1400-1500 Ethernet, 9000 jumbo) and
/// one far above any of them.
pub const DEFAULT_SIZES: [usize; 5] = [1200, 1400, 1500, 9000, 64 * 1024];

/// The variant of the discovery observation of each side.
pub const DISCOVERY_VARIANT: &str = "path-mtu";

const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Parameters of the MTU checks.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MtuSpec {
    /// Body sizes of the POSTs, in bytes, sent smallest first.
    pub sizes: Vec<usize>,
    /// Run path MTU discovery (Don't-Fragment probes) towards each side.
    pub discover: bool,
    /// The largest packet discovery tries (loopback's 65 536 is not worth bisecting).
    pub max_mtu: u32,
    /// How long one Don't-Fragment probe waits for its echo or an ICMP error.
    #[serde(serialize_with = "super::ser_secs")]
    pub echo_wait: Duration,
    /// How long one POST may take (capped by the run's request timeout).
    #[serde(serialize_with = "super::ser_opt_secs")]
    pub request_wait: Option<Duration>,
}

impl Default for MtuSpec {
    fn default() -> Self {
        MtuSpec {
            sizes: DEFAULT_SIZES.to_vec(),
            discover: true,
            max_mtu: 9000,
            echo_wait: Duration::from_secs(1),
            request_wait: None,
        }
    }
}

/// Path MTU results towards one side.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct MtuResult {
    /// The address probed (the target's host, resolved).
    pub address: Option<String>,
    pub discovery: Option<Discovery>,
    /// What kept discovery from running, or from using ICMP echo (privilege, platform).
    pub missing: Vec<String>,
}

impl MtuResult {
    /// The `missing` list in one sentence, for evidence.
    pub fn missing_text(&self) -> String {
        self.missing.join("; ")
    }
}

/// The variant of the POST with a `size`-byte body.
pub fn post_variant(size: usize) -> String {
    format!("post-{size}")
}

/// The size a `post-N` variant carries.
pub fn post_size(variant: &str) -> Option<usize> {
    variant.strip_prefix("post-")?.parse().ok()
}

/// The POST with a `size`-byte body, through the engine.
fn post(side: &Side, size: usize) -> Planned {
    let body = vec![b'x'; size];
    let bytes = request::build(
        "POST",
        side,
        &[("Content-Type", "application/octet-stream".to_string())],
        Some(&body),
    );
    side.planned(Family::Mtu, post_variant(size), Via::Raw, bytes)
}

fn sorted_sizes(spec: &MtuSpec) -> Vec<usize> {
    let mut sizes = spec.sizes.clone();
    sizes.sort_unstable();
    sizes.dedup();
    sizes
}

pub async fn run(engine: &Engine, sides: &[Side], spec: &MtuSpec) -> Vec<Observation> {
    let mut out = Vec::new();
    if spec.discover {
        let found =
            futures_util::future::join_all(sides.iter().map(|side| discover(engine, side, spec)))
                .await;
        out.extend(found.into_iter().flatten());
    }
    let posts =
        futures_util::future::join_all(sides.iter().map(|side| posts(engine, side, spec))).await;
    out.extend(posts.into_iter().flatten());
    // Last: a large hello that met ICMP "fragmentation needed" would teach the kernel the path
    // MTU, and the POSTs above would no longer see the hole.
    let hellos =
        futures_util::future::join_all(sides.iter().map(|side| hellos(engine, side))).await;
    out.extend(hellos.into_iter().flatten());
    out
}

/// The variants of the ClientHello pair.
pub const HELLO_SMALL: &str = "tls-hello-small";
pub const HELLO_LARGE: &str = "tls-hello-large";
/// How long a hello waits for the server's first bytes (capped by the request timeout).
const HELLO_WAIT: Duration = Duration::from_secs(3);

/// The ClientHellos of a TLS side, small and large, over plain TCP to its port: the hello is
/// the payload.
fn hello_requests(side: &Side) -> Vec<Planned> {
    if !side.is_tls() {
        return Vec::new();
    }
    let plain = Endpoint {
        wire: Wire::Plain,
        ..side.endpoint.clone()
    };
    let name = side.target.server_name();
    [
        (HELLO_SMALL, client_hello::client_hello(name, false, 0x5eed)),
        (HELLO_LARGE, client_hello::client_hello(name, true, 0x5eed)),
    ]
    .into_iter()
    .map(|(variant, bytes)| side.planned_over(Family::Mtu, variant, plain.clone(), Via::Raw, bytes))
    .collect()
}

/// A small and a large TLS ClientHello to a TLS side, side by side, over plain TCP: what
/// matters is whether the server's first bytes come back, not the handshake.
async fn hellos(engine: &Engine, side: &Side) -> Vec<Observation> {
    let sends = hello_requests(side).into_iter().map(|planned| async move {
        let (sent, exchange) = engine.send_planned(&planned, Some(HELLO_WAIT)).await.ok()?;
        Some(engine.observation(
            Family::Mtu,
            planned.variant,
            side,
            true,
            EVIDENCE,
            sent,
            Some(exchange),
            Detail::None,
        ))
    });
    futures_util::future::join_all(sends)
        .await
        .into_iter()
        .flatten()
        .collect()
}

async fn posts(engine: &Engine, side: &Side, spec: &MtuSpec) -> Vec<Observation> {
    let mut out = Vec::new();
    let mut errors = ErrorBudget::default();
    let sizes = sorted_sizes(spec);
    for (i, &size) in sizes.iter().enumerate() {
        let planned = post(side, size);
        let Ok((sent, exchange)) = engine.send_planned(&planned, spec.request_wait).await else {
            break;
        };
        let go_on = errors.record(side.role(), &exchange);
        out.push(engine.observation(
            Family::Mtu,
            planned.variant,
            side,
            true,
            EVIDENCE,
            sent,
            Some(exchange),
            Detail::None,
        ));
        if !go_on && i + 1 < sizes.len() {
            engine.note(format!(
                "mtu: {} failed {} large POSTs in a row; the larger sizes ({}) were not sent",
                side.endpoint.label(),
                ERROR_BUDGET,
                sizes[i + 1..]
                    .iter()
                    .map(usize::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            break;
        }
    }
    out
}

async fn resolve(host: &str, port: u16) -> Result<IpAddr, String> {
    let lookup = tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((host, port)))
        .await
        .map_err(|_| format!("resolving {host} took longer than {RESOLVE_TIMEOUT:?}"))?
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

async fn discover(engine: &Engine, side: &Side, spec: &MtuSpec) -> Option<Observation> {
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
            match search(engine, address, port, spec).await {
                Ok((discovery, missing)) => {
                    result.discovery = Some(discovery);
                    result.missing = missing;
                }
                Err(e) => result.missing.push(e.to_string()),
            }
        }
    }
    let text = match &result.discovery {
        Some(d) => format!(
            "{} Don't-Fragment probes to {} (path MTU discovery, {:?})",
            d.probes, d.address, d.method
        ),
        None => "no Don't-Fragment probe sent".to_string(),
    };
    for why in &result.missing {
        engine.note(format!("mtu towards {}: {why}", side.endpoint.label()));
    }
    Some(engine.observation(
        Family::Mtu,
        DISCOVERY_VARIANT,
        side,
        true,
        EVIDENCE,
        SentRequest {
            text,
            bytes: 0,
            exact: false,
        },
        None,
        Detail::Mtu(result),
    ))
}

/// The search, one blocking probe at a time; each probe takes a ticket like a request, so the
/// run's rate and count caps hold for these packets too.
async fn search(
    engine: &Engine,
    address: IpAddr,
    port: u16,
    spec: &MtuSpec,
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
    let method = prober.method();
    let mut search = Search::new(before.min(spec.max_mtu), method.silence_is_loss());
    let wait = spec.echo_wait;
    while let Some(size) = search.next_size() {
        if let Err(why) = engine.ticket().await {
            search.record(size, &pmtu::Outcome::Failed(why.to_string()));
            break;
        }
        let joined = tokio::task::spawn_blocking(move || {
            let outcome = prober.probe(size, wait);
            (prober, outcome)
        })
        .await;
        let Ok((p, outcome)) = joined else {
            search.record(
                size,
                &pmtu::Outcome::Failed("the probe thread failed".into()),
            );
            return Ok((search.finish(address, method, before), missing));
        };
        prober = p;
        search.record(size, &outcome);
    }
    Ok((search.finish(address, method, before), missing))
}

/// What discovery sends, which no plan can list.
pub fn rest(spec: &MtuSpec) -> Option<String> {
    spec.discover.then(|| {
        format!(
            "mtu first looks for the path MTU towards each side with Don't-Fragment packets up to {} bytes (raw ICMP as root, else TCP), as many as the answers take, before any POST",
            spec.max_mtu
        )
    })
}

/// The requests the checks send a side: the POSTs, smallest first, then the ClientHellos of a
/// TLS side. Discovery's Don't-Fragment packets carry no request.
pub fn plan(side: &Side, spec: &MtuSpec) -> Vec<Planned> {
    sorted_sizes(spec)
        .into_iter()
        .map(|size| post(side, size))
        .chain(hello_requests(side))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::{Role, Target};

    #[test]
    fn posts_carry_exactly_the_body_size_and_sort_their_sizes() {
        let side = Side::new(
            Target::parse(Role::Backend, "http://127.0.0.1:8080/up").unwrap(),
            false,
        );
        let spec = MtuSpec {
            sizes: vec![1500, 1200, 1500],
            ..MtuSpec::default()
        };
        let plan = plan(&side, &spec);
        let names: Vec<&str> = plan.iter().map(|p| p.variant.as_str()).collect();
        assert_eq!(names, ["post-1200", "post-1500"]);
        let text = String::from_utf8(plan[0].bytes.clone()).unwrap();
        assert!(text.starts_with("POST /up HTTP/1.1\r\n"), "{text}");
        assert!(text.contains("Content-Length: 1200\r\n"));
        let body = text.split("\r\n\r\n").nth(1).unwrap();
        assert_eq!(body.len(), 1200);
        assert_eq!(post_size("post-1200"), Some(1200));
        assert_eq!(post_size("path-mtu"), None);
    }
}
