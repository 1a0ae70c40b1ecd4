//! Delta debugging (Zeller's ddmin) over a failing request's parts: the headers, then the
//! cookies, header values by halves, path segments, query parameters, the body by halves and
//! the request line's method and version, keeping only what is needed to get the same failure
//! from the same side ([`attribution::same_failure`]: same status, same writer, same page).
//!
//! Every candidate is a request through the engine's planned path, so the run's request, rate
//! and time caps bound the shrink; when they run out, the smallest request that still failed
//! is the result and the report says the shrink stopped. `Host` is never removed: a request
//! without it is another malformation (nginx answers it with a 400 of its own).

use std::collections::HashMap;

use crate::classify::attribution;
use crate::probe::budget::Exhausted;
use crate::probe::context::{Engine, Side, Via};
use crate::probe::{Family, SentRequest};
use crate::transport::Exchange;

use super::Request;

/// A part of the request the shrink found the failure needs, for the report's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// A header line that must stay; `half`: its value cut in half no longer fails (the
    /// limit lies between the two line lengths).
    Header {
        name: String,
        line: usize,
        half_line: Option<usize>,
    },
    /// The cookies that must stay, by name, in a `Cookie` line of `line` bytes (`half_line`
    /// as for [`Part::Header`]).
    Cookies {
        names: Vec<String>,
        line: usize,
        half_line: Option<usize>,
    },
    /// The request target (path and query) that must stay, and its length.
    Target {
        bytes: usize,
        query: bool,
    },
    Body {
        bytes: usize,
    },
    /// The method: with GET instead, the request passes.
    Method(String),
    /// The version: with HTTP/1.1 instead, the request passes.
    Version(String),
}

impl Part {
    /// The part in words, with the bytes a limit is counted in.
    pub fn words(&self) -> String {
        match self {
            Part::Header {
                name,
                line,
                half_line,
            } => format!(
                "the header `{name}` ({} bytes with its CRLF){}",
                group(*line),
                halved(*half_line)
            ),
            Part::Cookies {
                names,
                line,
                half_line,
            } => format!(
                "the {} {} in a `Cookie` header of {} bytes with its CRLF{}",
                if names.len() == 1 {
                    "cookie"
                } else {
                    "cookies"
                },
                names.join(", "),
                group(*line),
                halved(*half_line)
            ),
            Part::Target { bytes, query } => format!(
                "the request target ({} bytes{})",
                group(*bytes),
                if *query { ", most of it the query" } else { "" }
            ),
            Part::Body { bytes } => format!("the body ({} bytes)", group(*bytes)),
            Part::Method(m) => format!("the method `{m}`: with GET instead the request passes"),
            Part::Version(v) => {
                format!("the version `{v}`: with HTTP/1.1 instead the request passes")
            }
        }
    }
}

fn halved(half_line: Option<usize>) -> String {
    half_line.map_or(String::new(), |h| {
        format!(
            "; cut to half its value (a {}-byte line) the request passes",
            group(h)
        )
    })
}

/// `9 120`: thousands apart, as the report writes sizes, with a no-break space so that a
/// wrapped line never splits a number.
pub fn group(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push('\u{a0}');
        }
        out.push(c);
    }
    out
}

/// What a shrink ends with.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub minimal: Request,
    /// What the listener answered to `minimal` (the original answer when nothing shrank).
    pub exchange: Exchange,
    pub sent: SentRequest,
    pub matters: Vec<Part>,
    /// Requests the shrink sent.
    pub spent: u32,
    /// Why the shrink stopped before it was done (a cap, Ctrl-C).
    pub stopped: Option<String>,
}

struct Shrinker<'a> {
    engine: &'a Engine,
    side: &'a Side,
    failing: Exchange,
    best: Request,
    best_exchange: Exchange,
    best_sent: SentRequest,
    spent: u32,
    /// Every candidate sent, and whether it failed: none is sent twice.
    tried: HashMap<Vec<u8>, bool>,
}

impl Shrinker<'_> {
    /// Send `cand`; true (and `cand` the best so far when smaller) when it fails as the
    /// original did.
    async fn fails(&mut self, cand: &Request) -> Result<bool, Exhausted> {
        let bytes = cand.to_bytes();
        if let Some(&known) = self.tried.get(&bytes) {
            return Ok(known);
        }
        let planned = self
            .side
            .planned(Family::Replay, "shrink", Via::Raw, bytes.clone());
        let (sent, ex) = self.engine.send_planned(&planned, None).await?;
        self.spent += 1;
        let same = attribution::same_failure(&self.failing, &ex);
        self.tried.insert(bytes.clone(), same);
        if same && bytes.len() <= self.best.to_bytes().len() {
            self.best = cand.clone();
            self.best_exchange = ex;
            self.best_sent = sent;
        }
        Ok(same)
    }

    /// ddmin over `items` (indices into whatever `build` rebuilds from a subset): the smallest
    /// subset found with which `build`'s request still fails. The empty subset is tried first,
    /// one chunk at a time is kept next (a single culprit costs about 2·log2(n) requests), then
    /// complements, then finer chunks; when no half fails alone, the shortest failing prefix.
    async fn ddmin(
        &mut self,
        items: Vec<usize>,
        build: &dyn Fn(&[usize]) -> Request,
    ) -> Result<Vec<usize>, Exhausted> {
        if items.is_empty() || self.fails(&build(&[])).await? {
            return Ok(Vec::new());
        }
        let mut cur = items;
        let mut n = 2usize;
        while cur.len() >= 2 {
            let chunks = split(&cur, n);
            let mut next = None;
            for c in &chunks {
                if self.fails(&build(c)).await? {
                    next = Some((c.clone(), 2));
                    break;
                }
            }
            if next.is_none() && n > 2 {
                for i in 0..chunks.len() {
                    let comp: Vec<usize> = chunks
                        .iter()
                        .enumerate()
                        .filter(|(j, _)| *j != i)
                        .flat_map(|(_, c)| c.iter().copied())
                        .collect();
                    if self.fails(&build(&comp)).await? {
                        next = Some((comp, (n - 1).max(2)));
                        break;
                    }
                }
            }
            match next {
                Some((c, k)) => {
                    cur = c;
                    n = k;
                }
                // Neither half fails alone: the failure needs parts of both, most often their
                // size together (a long query, a full header block). Finer chunks would cost
                // about as many requests as there are parts; the shortest failing prefix costs
                // log2 of them.
                None if n == 2 => return self.shortest_prefix(cur, build).await,
                None if n >= cur.len() => break,
                None => n = (2 * n).min(cur.len()),
            }
        }
        Ok(cur)
    }

    /// The shortest prefix of `items` with which `build`'s request still fails (all of them
    /// fail), by bisection; a short one then loses each part it fails without (the last one it
    /// needs, being the shortest): a small session cookie ahead of three large trackers is not
    /// what matters.
    async fn shortest_prefix(
        &mut self,
        items: Vec<usize>,
        build: &dyn Fn(&[usize]) -> Request,
    ) -> Result<Vec<usize>, Exhausted> {
        // items[..hi] fails; items[..lo] is not known to.
        let (mut lo, mut hi) = (0, items.len());
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if self.fails(&build(&items[..mid])).await? {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        let mut keep = items[..hi].to_vec();
        if keep.len() <= ONE_BY_ONE_MAX {
            let mut i = 0;
            while i + 1 < keep.len() {
                let mut without = keep.clone();
                without.remove(i);
                if self.fails(&build(&without)).await? {
                    keep = without;
                } else {
                    i += 1;
                }
            }
        }
        Ok(keep)
    }
}

/// A failing prefix up to this long is tried without each of its parts: at most this many
/// requests more, where a long list (a query of a hundred parameters) keeps its prefix.
const ONE_BY_ONE_MAX: usize = 8;

/// `items` in `n` chunks of nearly equal length, in order.
fn split(items: &[usize], n: usize) -> Vec<Vec<usize>> {
    let n = n.clamp(1, items.len().max(1));
    let mut out = Vec::with_capacity(n);
    let mut start = 0;
    for i in 0..n {
        let end = start + (items.len() - start) / (n - i);
        out.push(items[start..end].to_vec());
        start = end;
    }
    out
}

/// The request with only the headers at `keep` (indices into its headers) besides Host;
/// without Content-Length or Transfer-Encoding left, the body goes too (else it would be read
/// as a second request).
fn with_headers(r: &Request, keep: &[usize]) -> Request {
    let mut out = r.clone();
    out.headers = r
        .headers
        .iter()
        .enumerate()
        .filter(|(i, h)| h.is("host") || keep.contains(i))
        .map(|(_, h)| h.clone())
        .collect();
    if !out
        .headers
        .iter()
        .any(|h| h.is("content-length") || h.is("transfer-encoding"))
    {
        out.body.clear();
    }
    out
}

/// Shrink `original`, whose listener answer was `failing`, on `side`.
pub async fn shrink(
    engine: &Engine,
    side: &Side,
    original: &Request,
    failing: &Exchange,
    failing_sent: &SentRequest,
) -> Outcome {
    let mut s = Shrinker {
        engine,
        side,
        failing: failing.clone(),
        best: original.clone(),
        best_exchange: failing.clone(),
        best_sent: failing_sent.clone(),
        spent: 0,
        tried: HashMap::from([(original.to_bytes(), true)]),
    };
    let mut matters = Vec::new();
    let stopped = match phases(&mut s, &mut matters).await {
        Ok(()) => None,
        Err(e) => Some(format!("the shrink stopped early: {e}")),
    };
    Outcome {
        minimal: s.best,
        exchange: s.best_exchange,
        sent: s.best_sent,
        matters,
        spent: s.spent,
        stopped,
    }
}

async fn phases(s: &mut Shrinker<'_>, matters: &mut Vec<Part>) -> Result<(), Exhausted> {
    // Headers, one by one and in halves.
    let cur = s.best.clone();
    let removable: Vec<usize> = (0..cur.headers.len())
        .filter(|&i| !cur.headers[i].is("host"))
        .collect();
    let keep = s.ddmin(removable, &|k| with_headers(&cur, k)).await?;
    s.best = with_headers(&cur, &keep);

    // Cookies one by one.
    let mut cookie_names: Option<Vec<String>> = None;
    if let Some(at) = s.best.headers.iter().position(|h| h.is("cookie")) {
        let cur = s.best.clone();
        let pairs: Vec<Vec<u8>> = cur.headers[at]
            .value
            .split(|&b| b == b';')
            .map(|p| trim(p).to_vec())
            .filter(|p| !p.is_empty())
            .collect();
        if pairs.len() > 1 {
            let build = |k: &[usize]| {
                let mut r = cur.clone();
                let kept: Vec<&[u8]> = k.iter().map(|&i| pairs[i].as_slice()).collect();
                r.headers[at].value = kept.join(&b"; "[..]);
                r
            };
            let keep = s.ddmin((0..pairs.len()).collect(), &build).await?;
            s.best = build(&keep);
            cookie_names = Some(
                keep.iter()
                    .map(|&i| {
                        let p = &pairs[i];
                        let name = p.split(|&b| b == b'=').next().unwrap_or(p);
                        format!("`{}`", String::from_utf8_lossy(name))
                    })
                    .collect(),
            );
        }
    }

    // Header values by halves: the first half kept while the request still fails.
    for i in 0..s.best.headers.len() {
        let h = &s.best.headers[i];
        if h.is("host") || h.is("content-length") || h.is("transfer-encoding") {
            continue;
        }
        let mut half_line = None;
        // At most log2 of the value's length halvings.
        while s.best.headers[i].value.len() >= 2 {
            let mut cand = s.best.clone();
            let v = &mut cand.headers[i].value;
            v.truncate(v.len() / 2);
            let line = cand.headers[i].line_len();
            if !s.fails(&cand).await? {
                half_line = Some(line);
                break;
            }
        }
        let h = &s.best.headers[i];
        match (&cookie_names, h.is("cookie")) {
            (Some(names), true) => matters.push(Part::Cookies {
                names: names.clone(),
                line: h.line_len(),
                half_line,
            }),
            _ => matters.push(Part::Header {
                name: h.name_text(),
                line: h.line_len(),
                half_line,
            }),
        }
    }

    // Path segments, then query parameters: the target matters when some had to stay (the
    // ddmin tried without any first).
    let mut target_matters = false;
    let (path, query) = {
        let (p, q) = s.best.path_and_query();
        (p.to_vec(), q.map(<[u8]>::to_vec))
    };
    let segments: Vec<Vec<u8>> = path
        .split(|&b| b == b'/')
        .filter(|p| !p.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    let rebuild = |segs: &[Vec<u8>], q: Option<&[u8]>, base: &Request| {
        let mut r = base.clone();
        let mut t = Vec::new();
        for seg in segs {
            t.push(b'/');
            t.extend_from_slice(seg);
        }
        if t.is_empty() || path.ends_with(b"/") && !segs.is_empty() {
            t.push(b'/');
        }
        if let Some(q) = q {
            t.push(b'?');
            t.extend_from_slice(q);
        }
        r.target = t;
        r
    };
    if path.starts_with(b"/") && !segments.is_empty() {
        let cur = s.best.clone();
        let build = |k: &[usize]| {
            let segs: Vec<Vec<u8>> = k.iter().map(|&i| segments[i].clone()).collect();
            rebuild(&segs, query.as_deref(), &cur)
        };
        let keep = s.ddmin((0..segments.len()).collect(), &build).await?;
        target_matters |= !keep.is_empty();
        s.best = build(&keep);
    }
    if let Some(q) = &query {
        let cur = s.best.clone();
        let (p, _) = cur.path_and_query();
        let p = p.to_vec();
        let params: Vec<Vec<u8>> = q.split(|&b| b == b'&').map(<[u8]>::to_vec).collect();
        let build = |k: &[usize]| {
            let mut r = cur.clone();
            let mut t = p.clone();
            if !k.is_empty() {
                t.push(b'?');
                let kept: Vec<&[u8]> = k.iter().map(|&i| params[i].as_slice()).collect();
                t.extend_from_slice(&kept.join(&b"&"[..]));
            }
            r.target = t;
            r
        };
        let keep = s.ddmin((0..params.len()).collect(), &build).await?;
        target_matters |= !keep.is_empty();
        s.best = build(&keep);
    }
    let (_, q) = s.best.path_and_query();
    let query_len = q.map_or(0, <[u8]>::len);
    if target_matters {
        matters.push(Part::Target {
            bytes: s.best.target.len(),
            query: query_len * 2 > s.best.target.len(),
        });
    }

    // The body by halves.
    if !s.best.body.is_empty() && !s.fails(&s.best.with_body(Vec::new())).await? {
        // At most log2 of the body's length halvings.
        while s.best.body.len() >= 2 {
            let cand = s
                .best
                .with_body(s.best.body[..s.best.body.len() / 2].to_vec());
            if !s.fails(&cand).await? {
                break;
            }
        }
        matters.push(Part::Body {
            bytes: s.best.body.len(),
        });
    }

    // The request line: does the method or the version matter?
    if s.best.method != b"GET" {
        let mut cand = s.best.clone();
        cand.method = b"GET".to_vec();
        if !s.fails(&cand).await? {
            matters.push(Part::Method(
                String::from_utf8_lossy(&s.best.method).into_owned(),
            ));
        }
    }
    if s.best.version != b"HTTP/1.1" {
        let mut cand = s.best.clone();
        cand.version = b"HTTP/1.1".to_vec();
        if !s.fails(&cand).await? {
            matters.push(Part::Version(
                String::from_utf8_lossy(&s.best.version).into_owned(),
            ));
        }
    }
    Ok(())
}

fn trim(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|c| *c != b' ').unwrap_or(b.len());
    let end = b.iter().rposition(|c| *c != b' ').map_or(start, |p| p + 1);
    &b[start..end.max(start)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_everything_in_order() {
        let items: Vec<usize> = (0..29).collect();
        for n in 1..=29 {
            let chunks = split(&items, n);
            assert_eq!(chunks.len(), n);
            assert_eq!(chunks.concat(), items);
        }
        assert_eq!(group(9120), "9\u{a0}120");
        assert_eq!(group(512), "512");
    }
}
