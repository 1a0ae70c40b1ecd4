//! Who answered? Tells a listener's own answer from a backend answer it passed on.
//!
//! Three kinds of signal, each said in words so a finding can name the ones that agreed:
//! - **side by side**: the same bytes straight to the backend (same status and body: relayed;
//!   another answer there: the listener's own);
//! - **signature**: the error pages load balancers write themselves (nginx, Tengine, HAProxy,
//!   Apache httpd, Envoy, Go's net/http, AWS ALB), against what only an application writes (a
//!   JSON body, another product's page, a `Server` header the listener never sends on its own
//!   answers);
//! - **capture**: whether the probe's marker reached the backend ([`from_capture`]).

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

/// A kind of listener whose own answers lbprobe recognises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Product {
    Nginx,
    /// Alibaba's nginx fork, the server of the reference load balancer.
    Tengine,
    Haproxy,
    Apache,
    Envoy,
    /// Go's net/http server (and the proxies built on it).
    Go,
    AwsAlb,
}

impl Product {
    /// In the order pages are matched: Tengine before nginx, whose page layout it shares.
    pub const ALL: [Product; 7] = [
        Product::Tengine,
        Product::Nginx,
        Product::AwsAlb,
        Product::Haproxy,
        Product::Apache,
        Product::Envoy,
        Product::Go,
    ];

    /// The product's name, for findings.
    pub fn name(self) -> &'static str {
        match self {
            Product::Nginx => "nginx",
            Product::Tengine => "Tengine",
            Product::Haproxy => "HAProxy",
            Product::Apache => "Apache httpd",
            Product::Envoy => "Envoy",
            Product::Go => "Go's net/http",
            Product::AwsAlb => "AWS ALB",
        }
    }

    /// The profile that documents it (`Profile::by_name`). Tengine is the reference load
    /// balancer's server, so its profile is the reference page's.
    pub fn profile(self) -> &'static str {
        match self {
            Product::Nginx => "nginx",
            Product::Tengine => "clb",
            Product::Haproxy => "haproxy",
            Product::Apache => "apache",
            Product::Envoy => "envoy",
            Product::Go => "go",
            Product::AwsAlb => "aws-alb",
        }
    }

    /// How the `Server` header of its own answers starts (lowercase); `None`: it sends none
    /// (HAProxy's pages, Go's raw error answers).
    fn own_server(self) -> Option<&'static str> {
        match self {
            Product::Nginx => Some("nginx"),
            Product::Tengine => Some("tengine"),
            Product::Haproxy | Product::Go => None,
            Product::Apache => Some("apache"),
            Product::Envoy => Some("envoy"),
            Product::AwsAlb => Some("awselb"),
        }
    }

    /// Whether it writes its own `Server` header over the backend's on relayed answers (nginx
    /// hides the upstream's, Envoy overwrites it by default); HAProxy, Apache's mod_proxy and
    /// Go's ReverseProxy pass the backend's on.
    fn replaces_server(self) -> bool {
        matches!(self, Product::Nginx | Product::Tengine | Product::Envoy)
    }

    /// Whether every answer it sends, its own and relayed ones, carries a `Server` header
    /// (nginx, Tengine and Envoy write theirs over the backend's; Apache adds its own where
    /// the backend sent none): an answer without one did not come through it.
    pub fn always_sends_server(self) -> bool {
        self.replaces_server() || self == Product::Apache
    }

    /// The product a `Server` header names, if any.
    pub fn from_server(value: &str) -> Option<Product> {
        let lower = value.trim().to_ascii_lowercase();
        // openresty is nginx with modules: same buffers, same pages.
        if lower.starts_with("openresty") {
            return Some(Product::Nginx);
        }
        Product::ALL.into_iter().find(|p| {
            p.own_server()
                .is_some_and(|prefix| lower.starts_with(prefix))
        })
    }

    /// The mark of this product's own error page in the answer, in words; `None` when the
    /// answer is not one of its pages.
    pub fn own_page(self, r: &Response) -> Option<String> {
        let body = r.body_prefix.text();
        let body = body.as_ref();
        let found = |marks: &[&'static str]| {
            marks
                .iter()
                .find(|m| body.contains(*m))
                .map(|m| format!("\"{m}\""))
        };
        match self {
            Product::Nginx => found(&["<center>nginx", "<center>openresty"]),
            Product::Tengine => {
                let lower = body.to_ascii_lowercase();
                ["<center>tengine", "powered by tengine"]
                    .iter()
                    .find(|m| lower.contains(*m))
                    .map(|m| format!("\"{m}\""))
            }
            Product::AwsAlb => found(&["<center>awselb"]),
            Product::Haproxy => looks_like_haproxy_response(r).then(|| {
                if body.is_empty() {
                    "reason \"Bad request\" and no Server header".to_string()
                } else {
                    format!("\"<h1>{} {}\"", r.status, r.reason)
                }
            }),
            Product::Apache => apache_page(r),
            Product::Envoy => found(&[
                "upstream connect error or disconnect/reset before headers",
                "no healthy upstream",
                "upstream request timeout",
            ])
            .filter(|_| body.len() < 400 && !body.starts_with('<')),
            Product::Go => go_answer(r),
        }
    }
}

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

/// Apache httpd's own error page (`ap_send_error_response`): an HTML 4.01 (2.4) or HTML 2.0
/// (2.2) doctype, `<title>NNN Title</title>` and `</head><body>`; or the `<address>` line a
/// server signature adds.
fn apache_page(r: &Response) -> Option<String> {
    let body = r.body_prefix.text();
    let body = body.as_ref();
    if body.contains("<address>Apache/") {
        return Some("\"<address>Apache/\"".into());
    }
    let doctype = [
        "<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 4.01//EN\"",
        "<!DOCTYPE HTML PUBLIC \"-//IETF//DTD HTML 2.0//EN\">",
    ]
    .into_iter()
    .any(|d| body.starts_with(d));
    let title = format!("<title>{} ", r.status);
    (doctype && body.contains(&title) && body.contains("</head><body>"))
        .then(|| format!("\"{title}{}</title>\"", r.reason))
}

/// Go's net/http answers a request it cannot read by writing the status line, two fixed
/// headers (`Content-Type: text/plain; charset=utf-8`, `Connection: close`) and the status text
/// again as the body: no `Date`, no `Server`, which every other answer of a Go server carries.
fn go_answer(r: &Response) -> Option<String> {
    let plain = r
        .header("content-type")
        .is_some_and(|t| t.eq_ignore_ascii_case("text/plain; charset=utf-8"));
    let bare = r.header("date").is_none() && r.header("server").is_none();
    let echo = format!("{} {}", r.status, r.reason);
    (r.status >= 400 && plain && bare && r.body_prefix == echo.as_str())
        .then(|| format!("body \"{echo}\", no Date or Server header"))
}

/// The product whose own error page this answer is, and the mark that says so.
pub fn page_of(r: &Response) -> Option<(Product, String)> {
    Product::ALL
        .into_iter()
        .find_map(|p| p.own_page(r).map(|mark| (p, mark)))
}

/// True when the body is a known load-balancer error page.
pub fn looks_like_lb_page(ex: &Exchange) -> bool {
    ex.response.as_ref().is_some_and(is_lb_page)
}

/// [`looks_like_lb_page`] on a parsed response.
pub fn is_lb_page(r: &Response) -> bool {
    page_of(r).is_some()
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
            let body = r.body_prefix.text();
            body.starts_with(&format!("<html><body><h1>{status} {title}</h1>"))
                && body.contains(sentence)
        });
    let no_server = r.header("server").is_none();
    page || (r.status == 400 && r.reason == "Bad request" && no_server && r.body_prefix.is_empty())
}

/// Whether two answers were written by the same hand: the same product's page, or, neither
/// being a known page, the same status, `Server` header, content type and JSON-ness. Used to
/// tell the answers of one limit search apart (the largest refused request was refused by
/// whatever stands in front; a smaller one answered otherwise came from behind it).
pub fn same_writer(a: &Response, b: &Response) -> bool {
    let content_type = |r: &Response| {
        r.header("content-type").map(|t| {
            t.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
    };
    match (page_of(a), page_of(b)) {
        (Some((pa, _)), Some((pb, _))) => pa == pb,
        (None, None) => {
            a.status == b.status
                && a.header("server") == b.header("server")
                && content_type(a) == content_type(b)
                && is_json(a) == is_json(b)
        }
        _ => false,
    }
}

/// Whether two exchanges show the same failure from the same hand: the same status written by
/// the same writer ([`same_writer`]) with the same page title (nginx answers a missing Host and
/// an over-long header both with 400 from its own pages, titled apart), or the same end
/// without an answer. What a replay's shrink keeps constant.
pub fn same_failure(a: &Exchange, b: &Exchange) -> bool {
    let title = |r: &Response| {
        let body = r.body_prefix.text();
        let start = body.find("<title>")? + "<title>".len();
        let end = body[start..].find("</title>")?;
        Some(body[start..start + end].to_string())
    };
    match (a.response.as_ref(), b.response.as_ref()) {
        (Some(ra), Some(rb)) => {
            ra.status == rb.status && same_writer(ra, rb) && title(ra) == title(rb)
        }
        (None, None) => std::mem::discriminant(&a.end) == std::mem::discriminant(&b.end),
        _ => false,
    }
}

/// Whether the body is JSON: what applications write, never a load balancer on its own.
fn is_json(r: &Response) -> bool {
    r.header("content-type")
        .is_some_and(|t| t.to_ascii_lowercase().contains("json"))
        || r.body_prefix.text().trim_start().starts_with('{')
}

/// What an answer's own signature says about who wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sign {
    pub origin: Origin,
    /// The signals, each in words (`the body is JSON, ...`).
    pub signals: Vec<String>,
    /// Whether the signature settles it: a product's own page, another product's page, a
    /// `Server` header the listener never sends. A JSON body or a page that is not the
    /// listener's only suggest a relayed answer: a listener may serve custom error pages.
    pub decisive: bool,
}

impl Sign {
    /// The signals in one text that stands alone.
    pub fn text(&self) -> String {
        let signals = self.signals.join("; ");
        match (self.origin, self.decisive) {
            (Origin::Backend, true) => format!("relayed from behind the listener: {signals}"),
            (Origin::Backend, false) => format!(
                "{signals}: relayed from behind the listener, unless it serves custom error pages"
            ),
            _ => signals,
        }
    }
}

/// What the answer itself says about who wrote it, knowing (or not) what the listener is:
/// its own page → the listener; another product's page or a `Server` header the listener
/// never sends → relayed from behind it; a JSON body or a page that is not the listener's →
/// probably relayed (not decisive). `None` when it says nothing either way.
pub fn signature(r: &Response, listener: Option<Product>) -> Option<Sign> {
    if let Some((page, mark)) = page_of(r) {
        return Some(match listener {
            Some(l) if l != page => Sign {
                origin: Origin::Backend,
                signals: vec![format!(
                    "the body is {}'s {} page ({mark}), not {}'s own",
                    page.name(),
                    r.status,
                    l.name()
                )],
                decisive: true,
            },
            _ => Sign {
                origin: Origin::Listener,
                signals: vec![format!(
                    "the body is {}'s own {} page ({mark})",
                    page.name(),
                    r.status
                )],
                decisive: true,
            },
        });
    }
    let mut decisive = Vec::new();
    let mut suggestive = Vec::new();
    if let Some(l) = listener {
        let sends = |value: &str| {
            l.own_server()
                .is_some_and(|p| value.to_ascii_lowercase().starts_with(p))
        };
        match r.header("server") {
            Some(value) if !l.replaces_server() && !sends(value) => decisive.push(format!(
                "Server: {value}, which {} does not send on its own answers",
                l.name()
            )),
            _ => {}
        }
    }
    if is_json(r) {
        suggestive
            .push("the body is JSON, which a load balancer does not write on its own".to_string());
    }
    if let Some(l) = listener {
        if !r.body_prefix.is_empty() && suggestive.is_empty() {
            suggestive.push(format!(
                "the body is not {}'s own {} page",
                l.name(),
                r.status
            ));
        }
    }
    let is_decisive = !decisive.is_empty();
    decisive.extend(suggestive);
    (!decisive.is_empty()).then_some(Sign {
        origin: Origin::Backend,
        signals: decisive,
        decisive: is_decisive,
    })
}

/// Attribute the listener's answer, using the backend's direct answer to the same bytes when
/// there is one. Returns the origin and the signals that agreed, in words.
pub fn origin(listener: &Exchange, backend: Option<&Exchange>) -> (Origin, String) {
    attribute(listener, backend, None)
}

/// What the backend's direct answer to the same bytes says: `(origin, words, same body)`.
fn side_by_side(l: &Response, backend: Option<&Exchange>) -> Option<(Origin, String, bool)> {
    let b = backend?;
    let Some(b) = b.response.as_ref() else {
        return Some((
            Origin::Listener,
            format!(
                "the backend gave no answer to the same bytes ({})",
                super::describe(backend)
            ),
            false,
        ));
    };
    Some(if b.status != l.status {
        (
            Origin::Listener,
            format!(
                "the backend answers the same bytes with {} {}",
                b.status, b.reason
            ),
            false,
        )
    } else if !l.body_prefix.is_empty() && l.body_prefix == b.body_prefix {
        (
            Origin::Backend,
            format!(
                "same status {} and same body as the backend's direct answer",
                l.status
            ),
            true,
        )
    } else {
        (
            Origin::Backend,
            format!("same status {} as the backend's direct answer", l.status),
            false,
        )
    })
}

/// [`origin`], knowing what the listener is (`listener_is`, from [`super::identify`]): its own
/// pages and the `Server` header it sends then tell relayed answers even without a backend.
/// Where signals disagree, the strongest decides (the same body as the backend's, then a
/// decisive signature, then the status compared side by side, then a suggestive signature)
/// and the others are named.
pub fn attribute(
    listener: &Exchange,
    backend: Option<&Exchange>,
    listener_is: Option<Product>,
) -> (Origin, String) {
    let Some(l) = listener.response.as_ref() else {
        return (Origin::Unknown, "the listener sent no answer".into());
    };
    let side = side_by_side(l, backend);
    let sig = signature(l, listener_is);
    match (side, sig) {
        (None, None) => (Origin::Unknown, "no backend answer to compare with".into()),
        (Some((o, why, _)), None) => (o, why),
        (None, Some(g)) if g.decisive => (g.origin, g.text()),
        (None, Some(g)) => (
            Origin::Unknown,
            format!("no backend answer to compare with; {}", g.text()),
        ),
        (Some((so, swhy, _)), Some(g)) if so == g.origin => {
            (so, format!("{swhy}; {}", g.signals.join("; ")))
        }
        (Some((so, swhy, true)), Some(g)) => (so, format!("{swhy} (though {})", g.text())),
        (Some((Origin::Backend, _, false)), Some(g)) if g.decisive => (
            g.origin,
            format!("the backend also answers {}, but {}", l.status, g.text()),
        ),
        (Some((_, swhy, _)), Some(g)) if g.decisive => {
            (g.origin, format!("{} (though {swhy})", g.text()))
        }
        (Some((so, swhy, _)), Some(g)) => (so, format!("{swhy} (though {})", g.text())),
    }
}

/// Attribute the listener's answer from a backend capture: whether the probe's marker arrived
/// at the backend. A probe that never arrived can only have been answered by the listener; one
/// that arrived was forwarded, and the answer is the backend's unless the body is the
/// listener's own error page (a 502 after the backend reset the connection, say).
pub fn origin_from_capture(listener: &Exchange, reached: bool) -> (Origin, String) {
    from_capture(listener, reached, None)
}

/// [`origin_from_capture`], knowing what the listener is: a page of another product that
/// reached the backend is that backend's, not the listener's.
pub fn from_capture(
    listener: &Exchange,
    reached: bool,
    listener_is: Option<Product>,
) -> (Origin, String) {
    let Some(r) = listener.response.as_ref() else {
        let why = if reached {
            "the listener sent no answer; the probe reached the backend (capture)"
        } else {
            "the listener sent no answer; the probe never reached the backend (capture)"
        };
        return (Origin::Unknown, why.into());
    };
    if !reached {
        return (
            Origin::Listener,
            "the probe never reached the backend (capture)".into(),
        );
    }
    match signature(r, listener_is) {
        Some(sign) if sign.origin == Origin::Listener => (
            Origin::Listener,
            format!(
                "the probe reached the backend (capture), but {}",
                sign.text()
            ),
        ),
        _ => (
            Origin::Backend,
            "the probe reached the backend (capture) and the body is not the listener's error page"
                .into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer_with(status: u16, reason: &str, headers: &[(&str, &str)], body: &[u8]) -> Exchange {
        Exchange::answered(
            "127.0.0.1:8080",
            Response::complete(status, reason, headers, body),
        )
    }

    fn answer(status: u16, reason: &str, server: Option<&str>, body: &[u8]) -> Exchange {
        let mut headers = vec![("content-type", "text/html")];
        if let Some(server) = server {
            headers.push(("Server", server));
        }
        answer_with(status, reason, &headers, body)
    }

    fn response(ex: &Exchange) -> &Response {
        ex.response.as_ref().expect("an answer")
    }

    fn haproxy_page(status: u16, title: &str, sentence: &str) -> Vec<u8> {
        format!("<html><body><h1>{status} {title}</h1>\n{sentence}\n</body></html>\n").into_bytes()
    }

    /// Apache httpd 2.4's page as Debian's 2.4 sends it (measured in tests/apache.rs).
    fn apache_414() -> Vec<u8> {
        b"<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 4.01//EN\" \"http://www.w3.org/TR/html4/strict.dtd\">\n\
<html><head>\n<title>414 Request-URI Too Long</title>\n</head><body>\n<h1>Request-URI Too Long</h1>\n\
<p>The requested URL's length exceeds the capacity\nlimit for this server.<br />\n</p>\n</body></html>\n"
            .to_vec()
    }

    fn nginx_page(status: u16, reason: &str) -> Vec<u8> {
        format!(
            "<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n<center><h1>{status} {reason}</h1></center>\r\n<hr><center>nginx/1.22.1</center>\r\n</body>\r\n</html>\r\n"
        )
        .into_bytes()
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
            assert!(why.contains("HAProxy's own"), "{why}");
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
            why.contains("the backend also answers 408, but the body is HAProxy's own 408 page"),
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

    #[test]
    fn every_product_knows_its_own_page_and_no_other() {
        let go = answer_with(
            431,
            "Request Header Fields Too Large",
            &[
                ("Content-Type", "text/plain; charset=utf-8"),
                ("Connection", "close"),
            ],
            b"431 Request Header Fields Too Large",
        );
        let cases: Vec<(Exchange, Product)> = vec![
            (
                answer(414, "Request-URI Too Large", Some("nginx"), &nginx_page(414, "Request-URI Too Large")),
                Product::Nginx,
            ),
            (
                answer(
                    400,
                    "Bad Request",
                    Some("Tengine"),
                    b"<html>\r\n<head><title>400 Bad Request</title></head>\r\n<body>\r\n<center><h1>400 Bad Request</h1></center>\r\n<hr><center>Tengine</center>\r\n</body>\r\n</html>\r\n",
                ),
                Product::Tengine,
            ),
            (
                answer(414, "Request-URI Too Long", Some("Apache/2.4.71 (Debian)"), &apache_414()),
                Product::Apache,
            ),
            (
                answer_with(
                    503,
                    "Service Unavailable",
                    &[("server", "envoy"), ("content-type", "text/plain")],
                    b"upstream connect error or disconnect/reset before headers. reset reason: connection failure",
                ),
                Product::Envoy,
            ),
            (go, Product::Go),
            (
                answer(502, "Bad Gateway", Some("awselb/2.0"), b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>awselb/2.0</center>\r\n</body>\r\n</html>\r\n"),
                Product::AwsAlb,
            ),
        ];
        for (ex, want) in &cases {
            let r = response(ex);
            assert_eq!(
                page_of(r).map(|(p, _)| p),
                Some(*want),
                "{}",
                r.body_prefix.escaped()
            );
        }
        // An application's pages are nobody's.
        for body in [
            &b"{\"error\":\"uri too long\"}"[..],
            b"<html><body>Not here</body></html>",
            b"431 Request Header Fields Too Large",
        ] {
            let ex = answer(431, "Request Header Fields Too Large", Some("app"), body);
            assert_eq!(page_of(response(&ex)), None, "{body:?}");
        }
        assert_eq!(Product::from_server("nginx/1.22.1"), Some(Product::Nginx));
        assert_eq!(Product::from_server("Apache"), Some(Product::Apache));
        assert_eq!(Product::from_server("lbprobe-lab"), None);
    }

    #[test]
    fn without_a_backend_the_answer_itself_says_relayed() {
        // nginx in front, the backend's JSON 414: nginx's own Server header, but not its page.
        let json = answer_with(
            414,
            "URI Too Long",
            &[
                ("Server", "nginx/1.22.1"),
                ("Content-Type", "application/json"),
            ],
            b"{\"error\":\"uri too long\"}",
        );
        // A JSON body suggests an application wrote it, but a listener may serve JSON error
        // pages of its own: alone, it does not decide (tests/attribution.rs shows the limit
        // rules settling it against the listener's answer to the largest request).
        let sign = signature(response(&json), Some(Product::Nginx)).expect("a sign");
        assert_eq!((sign.origin, sign.decisive), (Origin::Backend, false));
        assert!(sign.text().contains("JSON"), "{}", sign.text());
        let (o, why) = attribute(&json, None, Some(Product::Nginx));
        assert_eq!(o, Origin::Unknown, "{why}");
        assert!(
            why.contains("relayed from behind the listener, unless it serves custom error pages"),
            "{why}"
        );

        // HAProxy in front of nginx: nginx's page is relayed, HAProxy's own is the listener's.
        let nginx414 = answer(
            414,
            "Request-URI Too Large",
            Some("nginx/1.22.1"),
            &nginx_page(414, "Request-URI Too Large"),
        );
        let (o, why) = attribute(&nginx414, None, Some(Product::Haproxy));
        assert_eq!(o, Origin::Backend, "{why}");
        assert!(why.contains("not HAProxy's own"), "{why}");
        assert_eq!(
            attribute(&nginx414, None, Some(Product::Nginx)).0,
            Origin::Listener
        );

        // A Server header HAProxy never sends on its own answers.
        let html = answer(400, "Bad Request", Some("app/1.0"), b"<p>no</p>");
        let (o, why) = attribute(&html, None, Some(Product::Haproxy));
        assert_eq!(o, Origin::Backend, "{why}");
        assert!(
            why.contains("Server: app/1.0, which HAProxy does not send"),
            "{why}"
        );
        // With nothing known of the listener, a plain page says nothing.
        assert_eq!(attribute(&html, None, None).0, Origin::Unknown);
    }

    #[test]
    fn signals_that_agree_are_all_named_and_disagreement_is_said() {
        let backend = answer(414, "URI Too Long", Some("app"), b"{\"e\":1}");
        let relayed = answer(414, "URI Too Long", Some("app"), b"{\"e\":1}");
        let (o, why) = attribute(&relayed, Some(&backend), Some(Product::Haproxy));
        assert_eq!(o, Origin::Backend);
        assert!(
            why.contains("same status 414 and same body") && why.contains("JSON"),
            "{why}"
        );
        // The backend answers the same bytes otherwise: side by side outweighs a JSON body
        // (which the listener's custom error page may be), and the JSON is still named.
        let ok = answer(200, "OK", Some("app"), b"{}");
        let (o, why) = attribute(&relayed, Some(&ok), None);
        assert_eq!(o, Origin::Listener, "{why}");
        assert!(why.contains("(though the body is JSON"), "{why}");
    }

    #[test]
    fn a_capture_decides_reach_and_the_page_decides_who_wrote_it() {
        let nginx502 = answer(
            502,
            "Bad Gateway",
            Some("nginx"),
            &nginx_page(502, "Bad Gateway"),
        );
        assert_eq!(from_capture(&nginx502, true, None).0, Origin::Listener);
        // Behind HAProxy, that nginx page came from the backend the probe reached.
        assert_eq!(
            from_capture(&nginx502, true, Some(Product::Haproxy)).0,
            Origin::Backend
        );
        assert_eq!(
            from_capture(&nginx502, false, Some(Product::Haproxy)).0,
            Origin::Listener
        );
    }
}
