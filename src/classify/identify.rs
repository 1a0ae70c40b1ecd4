//! Which kind of load balancer is the listener? Read from its own answers, so `--profile auto`
//! compares the run with the right documentation, or with none when nothing matches.
//!
//! The signals, strongest first:
//! 1. **The front's own refusals.** A limit search's largest refused request never reached
//!    anything behind the listener (whatever refused it first stands in front of the rest), so
//!    its page names the listener. A page at a smaller size may be a backend's, relayed.
//! 2. **Pages on other answers**, leaving out those the backend gives to the same bytes.
//! 3. **The `Server` header**, only when every answer of the listener carries the same one: a
//!    listener that passes its backends' headers on (HAProxy, Apache's mod_proxy) shows theirs
//!    on relayed answers and its own, or none, on its own.

use std::collections::BTreeMap;

use crate::probe::limit::{outcome, Outcome};
use crate::probe::{Detail, Family, Observation};
use crate::target::Role;
use crate::transport::Response;

use super::attribution::{page_of, Product};

/// A kind of listener and the signals that named it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub product: Product,
    /// The profile that documents it (`nginx`, `haproxy`, ...).
    pub profile: &'static str,
    /// The signals, in words: `nginx: its own 414 page ("<center>nginx") answers ...`.
    pub why: String,
}

/// What identification found: the listener's kind, or why none could be named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identification {
    pub identity: Option<Identity>,
    /// Why nothing was named (empty when something was).
    pub why_none: String,
}

impl Identification {
    fn found(product: Product, why: String) -> Identification {
        Identification {
            identity: Some(Identity {
                product,
                profile: product.profile(),
                why: format!("{}: {why}", product.name()),
            }),
            why_none: String::new(),
        }
    }

    fn none(why: impl Into<String>) -> Identification {
        Identification {
            identity: None,
            why_none: why.into(),
        }
    }

    /// The product, if one was named.
    pub fn product(&self) -> Option<Product> {
        self.identity.as_ref().map(|i| i.product)
    }
}

const LIMIT_FAMILIES: [Family; 3] = [Family::HeaderSize, Family::HeaderLimit, Family::UriLimit];

/// The listener's kind, from its answers (see the module's comment for the order of signals).
pub fn identify(observations: &[Observation]) -> Identification {
    let listener: Vec<(&Observation, &Response)> = observations
        .iter()
        .filter(|o| o.role == Role::Listener)
        .filter_map(|o| Some((o, o.exchange.as_ref()?.response.as_ref()?)))
        .collect();
    if listener.is_empty() {
        return Identification::none("the listener gave no HTTP answer to read");
    }
    if let Some(found) = by_front_refusals(observations) {
        return found;
    }
    if let Some(found) = by_pages(observations, &listener) {
        return found;
    }
    by_server_header(&listener)
}

/// The largest refused request of each limit search (HTTP/1.1 and h2 apart) on the listener.
fn front_refusals(observations: &[Observation]) -> Vec<(&Observation, usize, &Response)> {
    let mut largest: BTreeMap<(Family, bool), (&Observation, usize, &Response)> = BTreeMap::new();
    for o in observations {
        if o.role != Role::Listener || !LIMIT_FAMILIES.contains(&o.family) {
            continue;
        }
        let Detail::Size { bytes } = o.detail else {
            continue;
        };
        let Some(ex) = o.exchange.as_ref() else {
            continue;
        };
        // A refusal by closing says nothing of who closed.
        let (Outcome::Refused(Some(_)), Some(r)) = (outcome(ex), ex.response.as_ref()) else {
            continue;
        };
        let key = (o.family, crate::probe::h2::h1_twin(&o.variant).is_some());
        if largest.get(&key).is_none_or(|(_, size, _)| bytes > *size) {
            largest.insert(key, (o, bytes, r));
        }
    }
    largest.into_values().collect()
}

fn by_front_refusals(observations: &[Observation]) -> Option<Identification> {
    let refusals = front_refusals(observations);
    if refusals.is_empty() {
        return None;
    }
    let mut named: Vec<(Product, String)> = Vec::new();
    let mut unnamed: Vec<String> = Vec::new();
    for (o, bytes, r) in &refusals {
        let what = format!(
            "the largest request of its {} search ({bytes} bytes)",
            o.family
        );
        match page_of(r) {
            Some((p, mark)) => named.push((
                p,
                format!("its own {} page ({mark}) answers {what}", r.status),
            )),
            None => unnamed.push(format!("{what} gets {} {}", r.status, r.reason)),
        }
    }
    let first = named.first().map(|(p, _)| *p);
    if named.iter().any(|(p, _)| Some(*p) != first) {
        let names: Vec<&str> = named.iter().map(|(p, _)| p.name()).collect();
        return Some(Identification::none(format!(
            "the largest refused requests carry pages of different products ({}), so none can be named",
            names.join(", ")
        )));
    }
    match first {
        Some(p) => Some(Identification::found(p, named[0].1.clone())),
        // The front refused without a page lbprobe knows: whatever pages smaller requests got
        // came from behind it, and only a Server header the listener writes on its own
        // refusals too could still name it.
        None => {
            let servers: Vec<Option<&str>> = refusals
                .iter()
                .map(|(_, _, r)| r.header("server"))
                .collect();
            let product = servers
                .first()
                .copied()
                .flatten()
                .and_then(Product::from_server);
            let same = servers
                .iter()
                .all(|s| s.and_then(Product::from_server) == product);
            match product {
                Some(p) if same => Some(Identification::found(
                    p,
                    format!(
                        "Server: {} on its own refusals ({}), though not its usual page",
                        servers[0].unwrap_or_default(),
                        unnamed.join("; ")
                    ),
                )),
                _ => Some(Identification::none(format!(
                    "{}: no known load balancer's page{}",
                    unnamed.join("; "),
                    match servers.first().copied().flatten() {
                        Some(s) => format!(", and Server: {s} names none"),
                        None => ", and no Server header".to_string(),
                    }
                ))),
            }
        }
    }
}

fn by_pages(
    observations: &[Observation],
    listener: &[(&Observation, &Response)],
) -> Option<Identification> {
    let mut votes: BTreeMap<&'static str, (Product, String, usize)> = BTreeMap::new();
    for (o, r) in listener {
        let Some((product, mark)) = page_of(r) else {
            continue;
        };
        // The backend's own page for the same bytes: relayed, not the listener's.
        let direct = observations
            .iter()
            .find(|b| b.role == Role::Backend && b.family == o.family && b.variant == o.variant);
        let relayed = direct
            .and_then(|b| b.exchange.as_ref()?.response.as_ref())
            .and_then(page_of)
            .is_some_and(|(p, _)| p == product);
        if relayed {
            continue;
        }
        let entry = votes.entry(product.name()).or_insert_with(|| {
            (
                product,
                format!(
                    "its own {} page ({mark}) on {} {}",
                    r.status, o.family, o.variant
                ),
                0,
            )
        });
        entry.2 += 1;
    }
    // An answer without a Server header did not come through a product that always sends
    // one: of HAProxy's page and a relayed nginx page, HAProxy is in front.
    let bare = listener.iter().any(|(_, r)| r.header("server").is_none());
    if votes.len() > 1 && bare {
        votes.retain(|_, (p, _, _)| !p.always_sends_server());
    }
    match votes.len() {
        0 => None,
        1 => {
            let (product, why, n) = votes.into_values().next()?;
            let more = if n > 1 {
                format!(" and {} more", n - 1)
            } else {
                String::new()
            };
            Some(Identification::found(product, format!("{why}{more}")))
        }
        _ => Some(Identification::none(format!(
            "its answers carry pages of {}: one stands behind the other, and no answer tells which is in front",
            votes.keys().copied().collect::<Vec<_>>().join(" and ")
        ))),
    }
}

fn by_server_header(listener: &[(&Observation, &Response)]) -> Identification {
    let mut values: Vec<&str> = listener
        .iter()
        .map(|(_, r)| r.header("server").unwrap_or(""))
        .collect();
    values.sort_unstable();
    values.dedup();
    let products: Vec<Option<Product>> = values.iter().map(|v| Product::from_server(v)).collect();
    match (values.as_slice(), products.first().copied().flatten()) {
        ([one], Some(p)) => Identification::found(p, format!("Server: {one} on every answer")),
        ([""], None) => Identification::none("no known page and no Server header in its answers"),
        ([one], None) => Identification::none(format!(
            "no known page, and Server: {one} names no load balancer lbprobe knows"
        )),
        (many, _) if products.iter().all(|p| *p == products[0] && p.is_some()) => {
            Identification::found(
                products[0].expect("checked"),
                format!("Server: {} on every answer", many.join(", ")),
            )
        }
        (many, _) => {
            let shown: Vec<&str> = many
                .iter()
                .map(|v| if v.is_empty() { "none" } else { v })
                .collect();
            Identification::none(format!(
                "no known page, and its answers carry different Server headers ({}): it passes its backends' on, so they do not say what it is",
                shown.join(", ")
            ))
        }
    }
}
