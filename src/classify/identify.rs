//! Which kind of load balancer is the listener? Read from its own answers (error pages,
//! `Server` header), so `--profile auto` compares the run with the right documentation, or with
//! none when nothing matches.

use crate::probe::Observation;
use crate::target::Role;
use crate::transport::Response;

use super::attribution;

/// A kind of listener and the signals that named it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The profile that documents it (`nginx`, `haproxy`, ...), or the product's name when no
    /// profile does (`envoy`).
    pub profile: &'static str,
    /// The signals, in words: `its own 400 page ("<center>nginx</center>")`.
    pub why: String,
}

/// One product's signatures: `Server` header prefixes and error-page fragments.
struct Signature {
    profile: &'static str,
    product: &'static str,
    server: &'static [&'static str],
    page: &'static [&'static str],
}

const SIGNATURES: &[Signature] = &[
    // Tengine before nginx: its pages also carry nginx's layout.
    Signature {
        profile: "clb",
        product: "Tengine (the reference load balancer's server)",
        server: &["tengine"],
        page: &["<center>Tengine"],
    },
    Signature {
        profile: "nginx",
        product: "nginx",
        server: &["nginx"],
        page: &["<center>nginx"],
    },
    Signature {
        profile: "aws-alb",
        product: "AWS Application Load Balancer",
        server: &["awselb"],
        page: &["<center>awselb"],
    },
    Signature {
        profile: "envoy",
        product: "Envoy",
        server: &["envoy"],
        page: &["upstream connect error or disconnect/reset before headers"],
    },
    Signature {
        profile: "apache",
        product: "Apache httpd",
        server: &["apache"],
        page: &["<address>Apache/"],
    },
];

/// The listener's kind, from its answers: an error page of its own outranks a `Server` header,
/// which a proxy may have relayed from the backend.
pub fn identify(observations: &[Observation]) -> Option<Identity> {
    let answers: Vec<&Response> = observations
        .iter()
        .filter(|o| o.role == Role::Listener)
        .filter_map(|o| o.exchange.as_ref()?.response.as_ref())
        .collect();
    for r in &answers {
        for sig in SIGNATURES {
            if let Some(mark) = sig.page.iter().find(|m| r.body_prefix.contains(*m)) {
                return Some(Identity {
                    profile: sig.profile,
                    why: format!(
                        "{}: its own {} page carries \"{mark}\"",
                        sig.product, r.status
                    ),
                });
            }
        }
    }
    if let Some(r) = answers.iter().find(|r| is_haproxy_page(r)) {
        return Some(Identity {
            profile: "haproxy",
            why: format!("HAProxy: its own {} page", r.status),
        });
    }
    for r in &answers {
        let Some(server) = r.header("server") else {
            continue;
        };
        let lower = server.to_ascii_lowercase();
        if let Some(sig) = SIGNATURES
            .iter()
            .find(|s| s.server.iter().any(|p| lower.starts_with(p)))
        {
            return Some(Identity {
                profile: sig.profile,
                why: format!("{}: Server: {server}", sig.product),
            });
        }
    }
    None
}

fn is_haproxy_page(r: &Response) -> bool {
    attribution::looks_like_haproxy_response(r)
}
