//! Who answered? Tells a listener's own answer from a backend answer it passed on.

use serde::Serialize;

use crate::transport::{Exchange, Response};

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

/// HAProxy's built-in error pages (2.x, `http_err_msgs`): status, the `<h1>` title and the
/// sentence under it. HAProxy's pages never name HAProxy, so these are its signature.
const HAPROXY_PAGES: &[(u16, &str, &str)] = &[
    (400, "Bad request", "Your browser sent an invalid request."),
    (
        401,
        "Unauthorized",
        "You need a valid user and password to access this content.",
    ),
    (
        403,
        "Forbidden",
        "Request forbidden by administrative rules.",
    ),
    (404, "Not Found", "The resource could not be found."),
    (
        405,
        "Method Not Allowed",
        "A request was made of a resource using a request method not supported",
    ),
    (
        407,
        "Unauthorized",
        "You need a valid user and password to access this content.",
    ),
    (
        408,
        "Request Time-out",
        "Your browser didn't send a complete request in time.",
    ),
    (
        410,
        "Gone",
        "The resource is no longer available and will not be available again.",
    ),
    (
        413,
        "Payload Too Large",
        "The request entity exceeds the maximum allowed.",
    ),
    (
        421,
        "Misdirected Request",
        "Request sent to a non-authoritative server.",
    ),
    (425, "Too Early", "Your browser sent early data."),
    (
        429,
        "Too Many Requests",
        "You have sent too many requests in a given amount of time.",
    ),
    (
        500,
        "Internal Server Error",
        "An internal server error occurred.",
    ),
    (
        501,
        "Not Implemented",
        "The server does not support the functionality required to fulfill the request.",
    ),
    (
        502,
        "Bad Gateway",
        "The server returned an invalid or incomplete response.",
    ),
    (
        503,
        "Service Unavailable",
        "No server is available to handle this request.",
    ),
    (
        504,
        "Gateway Time-out",
        "The server didn't respond in time.",
    ),
];

/// True when the body is a known load-balancer error page.
pub fn looks_like_lb_page(ex: &Exchange) -> bool {
    ex.response
        .as_ref()
        .is_some_and(|r| LB_PAGE_MARKS.iter().any(|m| r.body_prefix.contains(m)))
        || looks_like_haproxy_answer(ex)
}

/// True when the answer is one of HAProxy's own: its error page for the status (`<h1>` title and
/// sentence), or, when there is no body to read (HEAD, a cut answer), HAProxy's reason phrase
/// "Bad request" (lowercase r, which backends and nginx do not use) on a 400 without a `Server`
/// header (HAProxy's own answers carry none).
pub fn looks_like_haproxy_answer(ex: &Exchange) -> bool {
    ex.response
        .as_ref()
        .is_some_and(looks_like_haproxy_response)
}

/// [`looks_like_haproxy_answer`] on a parsed response.
pub fn looks_like_haproxy_response(r: &Response) -> bool {
    let page = HAPROXY_PAGES
        .iter()
        .filter(|(status, _, _)| *status == r.status)
        .any(|(status, title, sentence)| {
            r.body_prefix
                .starts_with(&format!("<html><body><h1>{status} {title}</h1>"))
                && r.body_prefix.contains(sentence)
        });
    let no_server = !r
        .headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("server"));
    page || (r.status == 400 && r.reason == "Bad request" && no_server && r.body_prefix.is_empty())
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

/// Attribute the listener's answer from a backend capture: whether the probe's marker arrived
/// at the backend. A probe that never arrived can only have been answered by the listener; one
/// that arrived was forwarded, and the answer is the backend's unless the body is the
/// listener's own error page (a 502 after the backend reset the connection, say).
pub fn origin_from_capture(listener: &Exchange, reached: bool) -> (Origin, String) {
    if listener.response.is_none() {
        let why = if reached {
            "the listener sent no answer; the probe reached the backend (capture)"
        } else {
            "the listener sent no answer; the probe never reached the backend (capture)"
        };
        return (Origin::Unknown, why.into());
    }
    if !reached {
        return (
            Origin::Listener,
            "the probe never reached the backend (capture)".into(),
        );
    }
    if looks_like_lb_page(listener) {
        (
            Origin::Listener,
            "the probe reached the backend (capture), but the body is the listener's own error page"
                .into(),
        )
    } else {
        (
            Origin::Backend,
            "the probe reached the backend (capture) and the body is not the listener's error page"
                .into(),
        )
    }
}

fn end_text(ex: Option<&Exchange>) -> String {
    ex.map(|e| e.end.to_string()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::{escape_bytes, ConnEnd, Response, Timings};

    fn answer(status: u16, reason: &str, server: Option<&str>, body: &[u8]) -> Exchange {
        let mut headers = vec![("content-type".to_string(), "text/html".to_string())];
        if let Some(server) = server {
            headers.push(("Server".into(), server.into()));
        }
        Exchange {
            endpoint: "127.0.0.1:8080".into(),
            tls: false,
            timings: Timings::default(),
            bytes_out: 0,
            bytes_in: 0,
            end: ConnEnd::Complete,
            response: Some(Response {
                version: "HTTP/1.1".into(),
                status,
                reason: reason.into(),
                headers,
                body_prefix: escape_bytes(body),
                body_bytes: body.len(),
                content_length: Some(body.len() as u64),
                chunked: false,
                complete: true,
                problems: Vec::new(),
            }),
            raw_prefix: String::new(),
            tcp_rtt_us: None,
            tcp_retransmits: None,
            peer: None,
            tls_info: None,
            http_version: None,
        }
    }

    fn haproxy_page(status: u16, title: &str, sentence: &str) -> Vec<u8> {
        format!("<html><body><h1>{status} {title}</h1>\n{sentence}\n</body></html>\n").into_bytes()
    }

    #[test]
    fn haproxy_default_pages_are_listener_pages() {
        // The pages as HAProxy 2.6 sends them, measured through tests/haproxy_causes.rs.
        let pages = [
            (400, "Bad request", "Your browser sent an invalid request."),
            (
                408,
                "Request Time-out",
                "Your browser didn't send a complete request in time.",
            ),
            (
                502,
                "Bad Gateway",
                "The server returned an invalid or incomplete response.",
            ),
            (
                503,
                "Service Unavailable",
                "No server is available to handle this request.",
            ),
            (
                504,
                "Gateway Time-out",
                "The server didn't respond in time.",
            ),
            (
                403,
                "Forbidden",
                "Request forbidden by administrative rules.",
            ),
            (
                500,
                "Internal Server Error",
                "An internal server error occurred.",
            ),
        ];
        for (status, title, sentence) in pages {
            let ex = answer(status, title, None, &haproxy_page(status, title, sentence));
            assert!(looks_like_haproxy_answer(&ex), "{status}");
            assert!(looks_like_lb_page(&ex), "{status}");
            let (origin, why) = origin(&ex, None);
            assert_eq!(origin, Origin::Listener, "{status}: {why}");
        }
    }

    #[test]
    fn haproxy_page_wins_over_a_backend_with_the_same_status() {
        let listener = answer(
            408,
            "Request Time-out",
            None,
            &haproxy_page(
                408,
                "Request Time-out",
                "Your browser didn't send a complete request in time.",
            ),
        );
        let backend = answer(
            408,
            "Request Timeout",
            Some("app"),
            b"{\"error\":\"timeout\"}",
        );
        let (origin, why) = origin(&listener, Some(&backend));
        assert_eq!(origin, Origin::Listener, "{why}");
        assert!(
            why.contains("the listener's body is its own error page"),
            "{why}"
        );
    }

    #[test]
    fn backend_pages_and_wrong_status_are_not_haproxy() {
        // The right sentence under another status is not HAProxy's page.
        let shifted = answer(
            500,
            "Internal Server Error",
            None,
            &haproxy_page(
                500,
                "Internal Server Error",
                "No server is available to handle this request.",
            ),
        );
        assert!(!looks_like_haproxy_answer(&shifted));
        let app = answer(
            503,
            "Service Unavailable",
            Some("app"),
            b"{\"error\":\"down\"}",
        );
        assert!(!looks_like_haproxy_answer(&app));
        assert!(!looks_like_lb_page(&app));
        // A bodyless 400: HAProxy's reason phrase without a Server header is its signature...
        assert!(looks_like_haproxy_answer(&answer(
            400,
            "Bad request",
            None,
            b""
        )));
        // ...while a backend's "Bad Request", or any answer with a Server header, is not.
        assert!(!looks_like_haproxy_answer(&answer(
            400,
            "Bad Request",
            None,
            b""
        )));
        assert!(!looks_like_haproxy_answer(&answer(
            400,
            "Bad request",
            Some("app"),
            b""
        )));
    }
}
