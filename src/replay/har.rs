//! HAR 1.2 files (a browser's developer tools, "Save all as HAR"): one entry's request. An
//! entry recorded over h2 or h3 (Chromium writes `httpVersion: "h2"` and pseudo-headers) is
//! sent as HTTP/1.1 with `:authority` as its Host, and the report says so.

use serde::Deserialize;

use super::{Header, ParseError, Parsed, Request, Source};

const WHAT: &str = "the HAR file";

#[derive(Deserialize)]
struct Har {
    log: Log,
}

#[derive(Deserialize)]
struct Log {
    entries: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    request: HarRequest,
    response: HarResponse,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HarRequest {
    method: String,
    url: String,
    http_version: String,
    headers: Vec<NameValue>,
    #[serde(default)]
    post_data: Option<PostData>,
}

#[derive(Deserialize)]
struct HarResponse {
    status: i64,
}

#[derive(Deserialize)]
struct NameValue {
    name: String,
    value: String,
}

#[derive(Deserialize)]
struct PostData {
    #[serde(default)]
    text: Option<String>,
}

/// The entry to replay: `entry` (counting from 1), or the first recorded with a status of
/// 400 or above.
pub fn parse(input: &[u8], entry: Option<usize>) -> Result<Parsed, ParseError> {
    let har: Har = serde_json::from_slice(input).map_err(|e| {
        let (line, column) = json_position(input, e.line(), e.column());
        ParseError {
            what: WHAT,
            line,
            column,
            message: without_position(&e),
        }
    })?;
    let entries = &har.log.entries;
    let whole = |m: String| ParseError::at(WHAT, input, 0, m);
    let index = match entry {
        Some(0) => return Err(whole("--entry counts from 1".into())),
        Some(n) if n > entries.len() => {
            return Err(whole(format!("--entry {n}: the file has {} entries", entries.len())))
        }
        Some(n) => n - 1,
        None => entries
            .iter()
            .position(|e| e.response.status >= 400)
            .ok_or_else(|| {
                whole(format!(
                    "none of its {} entries was answered with a status of 400 or above: pick one with --entry N",
                    entries.len()
                ))
            })?,
    };
    let e = &entries[index];
    let mut notes = Vec::new();
    let r = &e.request;
    let (authority, target) = split_url(&r.url).ok_or_else(|| {
        whole(format!(
            "entry {}: {:?} is not an http:// or https:// URL",
            index + 1,
            r.url
        ))
    })?;
    let mut over = None;
    let version = match r.http_version.to_ascii_uppercase().as_str() {
        v @ ("HTTP/1.1" | "HTTP/1.0") => v.to_string(),
        other => {
            over = Some(r.http_version.clone());
            let shown = if other.is_empty() {
                "no version"
            } else {
                other
            };
            notes.push(format!(
                "recorded over {shown}; sent as HTTP/1.1 with :authority as its Host"
            ));
            "HTTP/1.1".to_string()
        }
    };
    let mut headers: Vec<Header> = Vec::new();
    let mut host_from_authority = None;
    for h in &r.headers {
        if let Some(pseudo) = h.name.strip_prefix(':') {
            if pseudo == "authority" {
                host_from_authority = Some(h.value.clone());
            }
            continue;
        }
        headers.push(Header::new(h.name.as_bytes(), h.value.as_bytes()));
    }
    if !headers.iter().any(|h| h.is("host")) {
        let host = host_from_authority.unwrap_or(authority);
        headers.insert(0, Header::new("Host", host));
    }
    let body = r
        .post_data
        .as_ref()
        .and_then(|p| p.text.clone())
        .unwrap_or_default()
        .into_bytes();
    if !body.is_empty()
        && !headers
            .iter()
            .any(|h| h.is("content-length") || h.is("transfer-encoding"))
    {
        notes.push(
            "the recording has a body without Content-Length (h2 needs none): one is added".into(),
        );
        headers.push(Header::new("Content-Length", body.len().to_string()));
    }
    Ok(Parsed {
        request: Request {
            method: r.method.clone().into_bytes(),
            target,
            version: version.into_bytes(),
            headers,
            body,
        },
        source: Source::Har {
            entry: index + 1,
            status: e.response.status,
            over,
        },
        notes,
    })
}

/// serde_json's position as a person counts it. serde_json says column 0 when the fault is the
/// line break itself (a raw newline inside a string): that is the end of the line before.
fn json_position(input: &[u8], line: usize, column: usize) -> (usize, usize) {
    if column > 0 || line <= 1 {
        return (line.max(1), column.max(1));
    }
    let before = input
        .split(|&b| b == b'\n')
        .nth(line - 2)
        .unwrap_or_default();
    (
        line - 1,
        String::from_utf8_lossy(before).chars().count() + 1,
    )
}

/// serde_json's message without its own " at line L column C" (the error says it once).
fn without_position(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

/// `(authority, path and query)` of an http(s) URL, the fragment dropped.
fn split_url(url: &str) -> Option<(String, Vec<u8>)> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = rest[..end].to_string();
    let mut target = rest[end..].split('#').next().unwrap_or("").to_string();
    if !target.starts_with('/') {
        target.insert(0, '/');
    }
    (!authority.is_empty()).then(|| (authority, target.into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HAR: &str = r#"{"log":{"version":"1.2","creator":{"name":"WebInspector","version":"537.36"},"entries":[
      {"request":{"method":"GET","url":"http://a.test/ok","httpVersion":"HTTP/1.1","headers":[{"name":"Host","value":"a.test"}]},"response":{"status":200}},
      {"request":{"method":"POST","url":"https://a.test/p?q=1#frag","httpVersion":"h2","headers":[{"name":":authority","value":"a.test"},{"name":":method","value":"POST"},{"name":"cookie","value":"s=1"}],"postData":{"mimeType":"text/plain","text":"hi"}},"response":{"status":400}}
    ]}}"#;

    #[test]
    fn the_first_failing_entry_by_default() {
        let p = parse(HAR.as_bytes(), None).unwrap();
        assert_eq!(
            p.source,
            Source::Har {
                entry: 2,
                status: 400,
                over: Some("h2".into()),
            }
        );
        assert_eq!(
            p.request.to_bytes(),
            b"POST /p?q=1 HTTP/1.1\r\nHost: a.test\r\ncookie: s=1\r\nContent-Length: 2\r\n\r\nhi"
                .to_vec()
        );
        assert_eq!(p.notes.len(), 2, "{:?}", p.notes);
        let first = parse(HAR.as_bytes(), Some(1)).unwrap();
        assert_eq!(first.request.target, b"/ok");
    }

    #[test]
    fn broken_json_says_where() {
        let e = parse(b"{\"log\": {\"entries\": [\n  {\"request\": 3}]}}", None).unwrap_err();
        assert_eq!(e.line, 2, "{e}");
        assert!(e.column > 1, "{e}");
        let e = parse(HAR.as_bytes(), Some(3)).unwrap_err();
        assert!(e.to_string().contains("has 2 entries"), "{e}");
        // A raw line break inside a string: serde_json says "line 3 column 0"; the fault is
        // the end of line 2 (found by the fuzz target replay_request).
        assert_eq!(json_position(b"{\n  \"ab\ncd\"}", 3, 0), (2, 6));
        assert_eq!(json_position(b"{", 1, 0), (1, 1));
        let e = parse(b"{\"log\":\n {\"x\": \"ab\ncd\"}}", None).unwrap_err();
        assert!(e.line == 2 && e.column >= 1, "{e}");
        // The fuzz target's find, as it found it: the error's place is inside the input.
        let found = include_bytes!("../../tests/fixtures/replay/fuzz-har-column-0.har");
        let e = parse(found, None).unwrap_err();
        let lines = found.iter().filter(|&&b| b == b'\n').count() + 1;
        assert!(e.line >= 1 && e.line <= lines && e.column >= 1, "{e}");
    }
}
