//! Who answered? Tells a listener's own answer from a backend answer it passed on.

use serde::Serialize;

use crate::transport::Exchange;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// The listener wrote the answer itself.
    Listener,
    /// The listener passed the backend's answer on.
    Backend,
    Unknown,
}

/// Error-page fragments of load balancers and proxies (their own answers, never a backend's).
const LB_PAGE_MARKS: &[&str] = &[
    "<center>nginx",
    "Your browser sent an invalid request",
    "The plain HTTP request was sent to HTTPS port",
    "Tengine",
    "awselb",
    "HAProxy",
];

/// True when the body is a known load-balancer error page.
pub fn looks_like_lb_page(ex: &Exchange) -> bool {
    ex.response
        .as_ref()
        .is_some_and(|r| LB_PAGE_MARKS.iter().any(|m| r.body_prefix.contains(m)))
}

/// Attribute the listener's answer, using the backend's direct answer to the same bytes when
/// there is one. Returns the origin and the signals that agreed, in words.
pub fn origin(listener: &Exchange, backend: Option<&Exchange>) -> (Origin, String) {
    let Some(l) = listener.response.as_ref() else {
        return (Origin::Unknown, "the listener sent no answer".into());
    };
    let lb_page = looks_like_lb_page(listener);
    match backend.and_then(|b| b.response.as_ref()) {
        Some(b) if b.status == l.status => {
            if !l.body_prefix.is_empty() && l.body_prefix == b.body_prefix {
                (
                    Origin::Backend,
                    format!(
                        "same status {} and same body as the backend's direct answer",
                        l.status
                    ),
                )
            } else if lb_page {
                (
                    Origin::Listener,
                    format!(
                        "the backend also answers {}, but the listener's body is its own error page",
                        l.status
                    ),
                )
            } else {
                (
                    Origin::Backend,
                    format!("same status {} as the backend's direct answer", l.status),
                )
            }
        }
        Some(b) => (
            Origin::Listener,
            format!(
                "the backend answers the same bytes with {} {}{}",
                b.status,
                b.reason,
                if lb_page {
                    "; the body is the listener's error page"
                } else {
                    ""
                }
            ),
        ),
        None if backend.is_some() => (
            Origin::Listener,
            format!(
                "the backend gave no answer to the same bytes ({}){}",
                end_text(backend),
                if lb_page {
                    "; the body is the listener's error page"
                } else {
                    ""
                }
            ),
        ),
        None if lb_page => (
            Origin::Listener,
            "the body is the listener's own error page".into(),
        ),
        None => (Origin::Unknown, "no backend answer to compare with".into()),
    }
}

fn end_text(ex: Option<&Exchange>) -> String {
    ex.map(|e| format!("{:?}", e.end)).unwrap_or_default()
}
