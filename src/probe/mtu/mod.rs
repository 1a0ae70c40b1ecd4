//! The `mtu` family: path MTU towards each side (Don't-Fragment probes, the kernel's learned
//! path MTU) and the same request with small and large bodies.
//!
//! Discovery ([`discover`]) and the POSTs ([`posts`]) run side by side. The POSTs wait only
//! until discovery has read the kernel's path MTU: a TCP connection that met ICMP
//! "fragmentation needed" would teach the kernel the path MTU, and discovery would then start
//! below it and never see whether ICMP comes back. Once one side has proven the size asymmetry
//! (see [`posts`]) the family stops sending larger sizes.

mod discover;
mod posts;

use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;

use crate::transport::pmtu::Discovery;
use crate::transport::{client_hello, Endpoint, Wire};

use self::discover::Stage;
use super::context::{Engine, Planned, Side, Via};
use super::engine::all_at_once;
use super::{request, Detail, Family, Observation};

pub const EVIDENCE: &[&str] = &["502.mtu-mismatch"];

/// Body sizes: one whose whole request fits the smallest packet every IPv4 path carries (576
/// bytes), the control the others are compared with; then sizes around the common MTUs (a
/// 1280-byte tunnel, 1400-1500 Ethernet, 9000 jumbo) and one far above any of them.
pub const DEFAULT_SIZES: [usize; 6] = [256, 1200, 1400, 1500, 9000, 64 * 1024];

/// The variant of the discovery observation of each side.
pub const DISCOVERY_VARIANT: &str = "path-mtu";

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
    let (settled, _) = watch::channel(false);
    let settled = &settled;
    let each = sides.iter().map(|side| async move {
        let (stage_tx, stage_rx) = watch::channel(Stage::Opening);
        let stage = spec.discover.then_some(stage_rx);
        let discovery = async {
            if spec.discover {
                Some(discover::discover(engine, side, spec, &stage_tx).await)
            } else {
                None
            }
        };
        let (found, posts, hellos) = tokio::join!(
            discovery,
            posts::posts(engine, side, spec, stage.clone(), settled),
            hellos(engine, side, stage)
        );
        found
            .into_iter()
            .chain(posts)
            .chain(hellos)
            .collect::<Vec<_>>()
    });
    all_at_once(each).await
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
/// matters is whether the server's first bytes come back, not the handshake. Like the POSTs,
/// not before discovery (`stage`) has read the kernel's path MTU.
async fn hellos(
    engine: &Engine,
    side: &Side,
    mut stage: Option<watch::Receiver<Stage>>,
) -> Vec<Observation> {
    let requests = hello_requests(side);
    if requests.is_empty() {
        return Vec::new();
    }
    if let Some(rx) = stage.as_mut() {
        let _ = rx.wait_for(Stage::opened).await;
    }
    let sends = requests.into_iter().map(|planned| async move {
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
    all_at_once(sends).await
}

/// What discovery sends, which no plan can list.
pub fn rest(spec: &MtuSpec) -> Option<String> {
    spec.discover.then(|| {
        format!(
            "mtu looks for the path MTU towards each side with Don't-Fragment packets up to {} bytes (raw ICMP as root, else UDP), as many as the answers take, alongside the POSTs; a POST that gets no answer within a few of the smaller ones' answer times is sent again with the full wait unless that side's discovery found a black hole below it, which proves the asymmetry and ends the POSTs of every side",
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
