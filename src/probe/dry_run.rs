//! `--dry-run`: the plan and the exact bytes every probe would send, with nothing sent.

use serde::Serialize;

use crate::profile::Profile;
use crate::target::{Role, Scheme, Target};
use crate::transport::escape_bytes;

use super::engine::{insert_marker, mask_headers, masked_target, Plan, Side};
use super::{
    header_size, keepalive, latency, malformed, methods, mtu, partial, pool, protocol, rate,
    response, Family, Limits, ProbeSpec,
};

#[derive(Debug, Clone, Serialize)]
pub struct PlannedRequest {
    pub family: Family,
    pub variant: String,
    pub role: Role,
    pub endpoint: String,
    /// False when a client library sends it and `text` shows what it amounts to.
    pub exact: bool,
    /// The bytes, escaped, secrets masked.
    pub text: String,
    pub bytes: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct DryRun {
    pub targets: Vec<Target>,
    pub profile: Profile,
    pub limits: Limits,
    pub families: Vec<Family>,
    pub requests: Vec<PlannedRequest>,
    /// What cannot be known before sending (sniffs, bisection steps).
    pub notes: Vec<String>,
}

pub fn dry_run(plan: &Plan) -> DryRun {
    let sides: Vec<Side> = plan
        .listener
        .iter()
        .chain(plan.backend.iter())
        .map(|t| Side::new(t.clone(), t.scheme == Scheme::Https))
        .collect();
    let mut requests = Vec::new();
    let mut notes = Vec::new();
    let mut marks = 0u32;
    let mut push = |family: Family,
                    variant: &str,
                    side: &Side,
                    endpoint: String,
                    exact: bool,
                    bytes: Vec<u8>| {
        // The run id is drawn when the run starts: shown as RUN here.
        let bytes = if plan.marker && exact {
            marks += 1;
            insert_marker(&bytes, &format!("RUN-{marks}"))
        } else {
            bytes
        };
        requests.push(PlannedRequest {
            family,
            variant: variant.to_string(),
            role: side.role(),
            endpoint,
            exact,
            text: escape_bytes(&mask_headers(&bytes, &plan.mask)),
            bytes: bytes.len(),
        });
    };
    if plan.backend.is_some() {
        notes.push(
            "the backend port is sniffed first (a TLS ClientHello, then a plain GET if TLS fails); \
             direct probes then use what it speaks, and a port that speaks TLS also gets the \
             baseline in plain HTTP (plain-http-to-tls-backend) when the protocol family runs"
                .into(),
        );
    }
    let families: Vec<Family> = plan.probes.iter().map(ProbeSpec::family).collect();
    let h2_families: Vec<&str> = families
        .iter()
        .filter(|f| super::h2::FAMILIES.contains(f))
        .map(|f| f.as_str())
        .collect();
    if !h2_families.is_empty() && sides.iter().any(Side::is_tls) {
        notes.push(format!(
            "each TLS side is first offered h2 and http/1.1 (ALPN, a handshake and no request); where it picks h2, {} run again over HTTP/2 through the client library (variants ending in \" h2\", the same requests as the HTTP/1.1 bytes shown)",
            h2_families.join(", ")
        ));
    }
    let cross = families.contains(&Family::Protocol);
    for side in &sides {
        push(
            Family::Protocol,
            "baseline",
            side,
            side.endpoint.label(),
            true,
            protocol::baseline_request(side),
        );
        if let Some((variant, endpoint, _)) = protocol::cross_request(side).filter(|_| cross) {
            push(
                Family::Protocol,
                variant,
                side,
                endpoint.label(),
                true,
                protocol::baseline_request(side),
            );
        }
    }
    for spec in &plan.probes {
        for side in &sides {
            match spec {
                ProbeSpec::Protocol => {}
                ProbeSpec::Malformed { variants } => {
                    let extra = side.extra_lines();
                    for t in malformed::chosen(variants.as_deref()) {
                        push(
                            Family::Malformed,
                            &t.id,
                            side,
                            side.endpoint.label(),
                            true,
                            malformed::render(side, t, &extra),
                        );
                    }
                }
                ProbeSpec::Methods { methods: only } => {
                    for m in methods::chosen(only.as_deref()) {
                        push(
                            Family::Methods,
                            &m,
                            side,
                            side.endpoint.label(),
                            !methods::via_client_library(&m),
                            methods::request_bytes(side, &m),
                        );
                    }
                }
                ProbeSpec::HeaderSize { .. }
                | ProbeSpec::HeaderLimit { .. }
                | ProbeSpec::UriLimit { .. } => {
                    for (family, variant, bytes) in header_size::planned(side, spec, &plan.profile)
                    {
                        push(family, &variant, side, side.endpoint.label(), true, bytes);
                    }
                }
                ProbeSpec::Partial { .. } => {
                    for (variant, bytes) in partial::planned(side) {
                        push(
                            Family::Partial,
                            &variant,
                            side,
                            side.endpoint.label(),
                            true,
                            bytes,
                        );
                    }
                }
                ProbeSpec::Latency { requests, .. } => {
                    for (variant, bytes) in latency::planned(side, *requests) {
                        push(
                            Family::Latency,
                            &variant,
                            side,
                            side.endpoint.label(),
                            true,
                            bytes,
                        );
                    }
                }
                ProbeSpec::Response => {
                    for (variant, bytes) in response::planned(side) {
                        push(
                            Family::Response,
                            &variant,
                            side,
                            side.endpoint.label(),
                            true,
                            bytes,
                        );
                    }
                }
                ProbeSpec::Rate(spec) => {
                    for (variant, bytes) in rate::planned(side, spec) {
                        push(
                            Family::Rate,
                            &variant,
                            side,
                            side.endpoint.label(),
                            true,
                            bytes,
                        );
                    }
                }
                ProbeSpec::Mtu(spec) => {
                    for (variant, bytes) in mtu::planned(side, spec) {
                        push(
                            Family::Mtu,
                            &variant,
                            side,
                            side.endpoint.label(),
                            true,
                            bytes,
                        );
                    }
                    // Over plain TCP to the TLS port: the hello is the payload.
                    let plain = format!("{}:{}", side.endpoint.host, side.endpoint.port);
                    for (variant, bytes) in mtu::hello_requests(side) {
                        push(Family::Mtu, variant, side, plain.clone(), true, bytes);
                    }
                }
                ProbeSpec::Keepalive { reproduce, .. } => {
                    for (variant, bytes) in keepalive::planned(side, *reproduce) {
                        push(
                            Family::Keepalive,
                            &variant,
                            side,
                            side.endpoint.label(),
                            true,
                            bytes,
                        );
                    }
                }
                // TCP handshakes only: no bytes.
                ProbeSpec::Connect { .. } => {}
                // Its own sides: the pool's members, below.
                ProbeSpec::Pool(_) => {}
            }
        }
        if let ProbeSpec::Pool(pool_spec) = spec {
            let members: Vec<Side> = plan
                .pool
                .iter()
                .map(|t| Side::new(t.clone(), t.scheme == crate::target::Scheme::Https))
                .collect();
            let listener = sides.iter().find(|s| s.role() == Role::Listener);
            for (variant, member) in pool::planned(members.len(), pool_spec) {
                if let Some(side) = member.map(|i| &members[i]).or(listener) {
                    push(
                        Family::Pool,
                        &variant,
                        side,
                        side.endpoint.label(),
                        true,
                        protocol::baseline_request(side),
                    );
                }
            }
            if members.len() >= 2 {
                notes.push(format!(
                    "pool asks each of the {} members directly, then the listener one request at a time, after every other family",
                    members.len()
                ));
            }
        }
        if let ProbeSpec::HeaderSize {
            bisect: true,
            min,
            max,
        }
        | ProbeSpec::HeaderLimit {
            bisect: true,
            min,
            max,
        }
        | ProbeSpec::UriLimit {
            bisect: true,
            min,
            max,
        } = spec
        {
            let steps = (max.saturating_sub(*min).max(2) as f64).log2().ceil() as usize;
            notes.push(format!(
                "{} then bisects between the sizes above: at most {steps} more requests per side, each the same request with a different padding length",
                spec.family()
            ));
        }
        if let ProbeSpec::Connect { attempts } = spec {
            notes.push(format!(
                "connect opens {attempts} TCP connections per backend and closes them without sending a byte"
            ));
        }
        if let ProbeSpec::Keepalive { max_wait, .. } = spec {
            notes.push(keepalive::dry_run_note(*max_wait));
        }
    }
    DryRun {
        targets: sides
            .iter()
            .map(|s| masked_target(&s.target, &plan.mask))
            .collect(),
        profile: plan.profile.clone(),
        limits: plan.limits,
        families,
        requests,
        notes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::Limits;

    #[test]
    fn lists_every_request_with_secrets_masked() {
        let mut listener = Target::parse(Role::Listener, "https://127.0.0.1:9/x").unwrap();
        listener.headers = vec![("X-Token".into(), "s3cret".into())];
        let plan = Plan {
            listener: Some(listener),
            backend: Some(Target::parse(Role::Backend, "http://127.0.0.1:9/").unwrap()),
            profile: Profile::clb(),
            probes: Family::ALL
                .into_iter()
                .map(ProbeSpec::default_for)
                .collect(),
            limits: Limits::default(),
            mask: vec!["x-token".into()],
            marker: false,
            pool: Vec::new(),
        };
        let d = dry_run(&plan);
        let n = |f: Family| d.requests.iter().filter(|r| r.family == f).count();
        assert_eq!(
            n(Family::Protocol),
            3,
            "two baselines and plain HTTP to the TLS port"
        );
        assert_eq!(
            n(Family::Malformed),
            2 * super::super::templates::malformed().len()
        );
        assert_eq!(n(Family::Methods), 2 * methods::MATRIX.len());
        assert_eq!(
            n(Family::HeaderSize),
            2 * 2,
            "min and max; bisection steps depend on answers"
        );
        assert!(d.requests.iter().all(|r| !r.text.contains("s3cret")));
        assert!(d.requests.iter().any(|r| r.text.contains("X-Token: ***")));
        assert!(d.notes.iter().any(|n| n.contains("bisects")));
    }
}
