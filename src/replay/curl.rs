//! curl command lines, as browsers' "Copy as cURL" and people write them: a shell-word splitter
//! (single and double quotes, `$'…'`, backslash escapes and backslash-newline continuations),
//! then the flags that shape the request. The headers come out in the order curl 7.88 writes
//! them (checked byte for byte against curl itself in tests/replay_curl.rs): Host,
//! Authorization (`-u`), User-Agent, Accept, Accept-Encoding (`--compressed`), Referer, Cookie
//! (`-b`), every `-H` in order (`--json`'s two after them), Content-Length, Content-Type.
//!
//! [`to_curl`] goes the other way: a command that makes curl send a request's exact bytes,
//! or why curl cannot.

use base64::Engine as _;

use super::{Header, ParseError, Parsed, Request, Source};

const WHAT: &str = "the curl command line";

/// What curl sends when the line does not say: its own User-Agent and, for `--compressed`,
/// the encodings its build decodes.
#[derive(Debug, Clone)]
pub struct Defaults {
    pub user_agent: String,
    pub accept_encoding: String,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            user_agent: "curl/7.88.1".into(),
            accept_encoding: "deflate, gzip, br, zstd".into(),
        }
    }
}

/// Bodies above this get `Expect: 100-continue` from curl 7.88 (its 1 MiB threshold).
const EXPECT_THRESHOLD: usize = 1024 * 1024;

/// One shell word and the byte offset where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    pub bytes: Vec<u8>,
    pub offset: usize,
}

impl Word {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
}

/// Split a command line into words as a POSIX shell (bash for `$'…'`) would, without
/// expanding anything.
pub fn split_words(text: &str) -> Result<Vec<Word>, ParseError> {
    let s = text.as_bytes();
    let err = |at: usize, m: &str| ParseError::at(WHAT, s, at, m);
    let mut words = Vec::new();
    let mut i = 0;
    let mut cur: Option<Word> = None;
    while i < s.len() {
        let c = s[i];
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => {
                words.extend(cur.take());
                i += 1;
            }
            b'#' if cur.is_none() => {
                while i < s.len() && s[i] != b'\n' {
                    i += 1;
                }
            }
            b'\\' => {
                match s.get(i + 1) {
                    // A continuation: the line goes on.
                    Some(b'\n') => {}
                    Some(b'\r') if s.get(i + 2) == Some(&b'\n') => i += 1,
                    Some(&next) => word(&mut cur, i).bytes.push(next),
                    None => return Err(err(i, "a backslash at the very end")),
                }
                i += 2;
            }
            b'\'' => {
                let w = word(&mut cur, i);
                let end = memchr::memchr(b'\'', &s[i + 1..])
                    .ok_or_else(|| err(i, "this single quote is never closed"))?;
                w.bytes.extend_from_slice(&s[i + 1..i + 1 + end]);
                i += end + 2;
            }
            b'$' if s.get(i + 1) == Some(&b'\'') => {
                let start = i;
                let w = word(&mut cur, i);
                i += 2;
                loop {
                    match s.get(i) {
                        None => return Err(err(start, "this $' quote is never closed")),
                        Some(b'\'') => {
                            i += 1;
                            break;
                        }
                        Some(b'\\') => {
                            let (bytes, used) = ansi_escape(&s[i + 1..])
                                .ok_or_else(|| err(i, "an escape $'…' does not know"))?;
                            w.bytes.extend_from_slice(&bytes);
                            i += 1 + used;
                        }
                        Some(&b) => {
                            w.bytes.push(b);
                            i += 1;
                        }
                    }
                }
            }
            b'"' => {
                let start = i;
                let w = word(&mut cur, i);
                i += 1;
                loop {
                    match s.get(i) {
                        None => return Err(err(start, "this double quote is never closed")),
                        Some(b'"') => {
                            i += 1;
                            break;
                        }
                        Some(b'\\') => match s.get(i + 1) {
                            Some(b'\n') => i += 2,
                            Some(&e @ (b'"' | b'\\' | b'$' | b'`')) => {
                                w.bytes.push(e);
                                i += 2;
                            }
                            _ => {
                                w.bytes.push(b'\\');
                                i += 1;
                            }
                        },
                        Some(&b) => {
                            w.bytes.push(b);
                            i += 1;
                        }
                    }
                }
            }
            _ => {
                word(&mut cur, i).bytes.push(c);
                i += 1;
            }
        }
    }
    words.extend(cur);
    Ok(words)
}

fn word(cur: &mut Option<Word>, at: usize) -> &mut Word {
    cur.get_or_insert_with(|| Word {
        bytes: Vec::new(),
        offset: at,
    })
}

/// One `$'…'` escape after its backslash: the bytes it stands for and how many input bytes it
/// used.
fn ansi_escape(s: &[u8]) -> Option<(Vec<u8>, usize)> {
    let hex = |s: &[u8], max: usize| -> Option<(u32, usize)> {
        let n = s
            .iter()
            .take(max)
            .take_while(|b| b.is_ascii_hexdigit())
            .count();
        let v = u32::from_str_radix(std::str::from_utf8(&s[..n]).ok()?, 16).ok()?;
        Some((v, n))
    };
    let one = |b: u8| Some((vec![b], 1));
    match *s.first()? {
        b'n' => one(b'\n'),
        b'r' => one(b'\r'),
        b't' => one(b'\t'),
        b'a' => one(7),
        b'b' => one(8),
        b'e' | b'E' => one(27),
        b'f' => one(12),
        b'v' => one(11),
        b'\\' => one(b'\\'),
        b'\'' => one(b'\''),
        b'"' => one(b'"'),
        b'?' => one(b'?'),
        b'x' => {
            let (v, n) = hex(&s[1..], 2)?;
            Some((vec![u8::try_from(v).ok()?], 1 + n))
        }
        b'u' | b'U' => {
            let max = if s[0] == b'u' { 4 } else { 8 };
            let (v, n) = hex(&s[1..], max)?;
            let ch = char::from_u32(v)?;
            Some((ch.to_string().into_bytes(), 1 + n))
        }
        b'0'..=b'7' => {
            let n = s
                .iter()
                .take(3)
                .take_while(|b| (b'0'..=b'7').contains(b))
                .count();
            let v = u32::from_str_radix(std::str::from_utf8(&s[..n]).ok()?, 8).ok()?;
            Some((vec![u8::try_from(v).ok()?], n))
        }
        _ => None,
    }
}

/// The flags lbprobe reads. `value`: the flag takes the next word (or the rest of a short
/// flag's word, `-XPOST`).
struct Flag {
    short: Option<u8>,
    long: &'static str,
    value: bool,
    what: Does,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Does {
    Method,
    Header,
    /// `-d`: `@file` read without CR and LF.
    Data,
    DataRaw,
    /// `--data-binary`: `@file` read as it is.
    DataBinary,
    Json,
    Compressed,
    Http10,
    Http11,
    /// h2/h3 asked for: a replay speaks HTTP/1.1, and says so.
    Http2,
    UserAgent,
    Cookie,
    Referer,
    User,
    Head,
    Url,
    /// Changes nothing on the wire (`-k`, `-s`, `-L`, `-o FILE`): noted, not sent.
    Ignored,
}

const FLAGS: &[Flag] = &[
    Flag {
        short: Some(b'X'),
        long: "request",
        value: true,
        what: Does::Method,
    },
    Flag {
        short: Some(b'H'),
        long: "header",
        value: true,
        what: Does::Header,
    },
    Flag {
        short: Some(b'd'),
        long: "data",
        value: true,
        what: Does::Data,
    },
    Flag {
        short: None,
        long: "data-ascii",
        value: true,
        what: Does::Data,
    },
    Flag {
        short: None,
        long: "data-raw",
        value: true,
        what: Does::DataRaw,
    },
    Flag {
        short: None,
        long: "data-binary",
        value: true,
        what: Does::DataBinary,
    },
    Flag {
        short: None,
        long: "json",
        value: true,
        what: Does::Json,
    },
    Flag {
        short: None,
        long: "compressed",
        value: false,
        what: Does::Compressed,
    },
    Flag {
        short: Some(b'0'),
        long: "http1.0",
        value: false,
        what: Does::Http10,
    },
    Flag {
        short: None,
        long: "http1.1",
        value: false,
        what: Does::Http11,
    },
    Flag {
        short: None,
        long: "http2",
        value: false,
        what: Does::Http2,
    },
    Flag {
        short: None,
        long: "http2-prior-knowledge",
        value: false,
        what: Does::Http2,
    },
    Flag {
        short: Some(b'A'),
        long: "user-agent",
        value: true,
        what: Does::UserAgent,
    },
    Flag {
        short: Some(b'b'),
        long: "cookie",
        value: true,
        what: Does::Cookie,
    },
    Flag {
        short: Some(b'e'),
        long: "referer",
        value: true,
        what: Does::Referer,
    },
    Flag {
        short: Some(b'u'),
        long: "user",
        value: true,
        what: Does::User,
    },
    Flag {
        short: Some(b'I'),
        long: "head",
        value: false,
        what: Does::Head,
    },
    Flag {
        short: None,
        long: "url",
        value: true,
        what: Does::Url,
    },
    Flag {
        short: Some(b'k'),
        long: "insecure",
        value: false,
        what: Does::Ignored,
    },
    Flag {
        short: Some(b's'),
        long: "silent",
        value: false,
        what: Does::Ignored,
    },
    Flag {
        short: Some(b'S'),
        long: "show-error",
        value: false,
        what: Does::Ignored,
    },
    Flag {
        short: Some(b'v'),
        long: "verbose",
        value: false,
        what: Does::Ignored,
    },
    Flag {
        short: Some(b'i'),
        long: "include",
        value: false,
        what: Does::Ignored,
    },
    Flag {
        short: Some(b'L'),
        long: "location",
        value: false,
        what: Does::Ignored,
    },
    Flag {
        short: Some(b'g'),
        long: "globoff",
        value: false,
        what: Does::Ignored,
    },
    Flag {
        short: None,
        long: "path-as-is",
        value: false,
        what: Does::Ignored,
    },
    Flag {
        short: Some(b'o'),
        long: "output",
        value: true,
        what: Does::Ignored,
    },
    Flag {
        short: Some(b'm'),
        long: "max-time",
        value: true,
        what: Does::Ignored,
    },
    Flag {
        short: None,
        long: "connect-timeout",
        value: true,
        what: Does::Ignored,
    },
];

/// What the flags said, before the headers are put in curl's order.
#[derive(Default)]
struct Line {
    url: Option<Word>,
    method: Option<Vec<u8>>,
    /// `-H`s in order: `None` value removes curl's own header of that name (`-H 'Accept:'`).
    custom: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    data: Option<Vec<u8>>,
    json: bool,
    compressed: bool,
    version: Option<&'static [u8]>,
    user_agent: Option<Vec<u8>>,
    cookie: Option<Vec<u8>>,
    referer: Option<Vec<u8>>,
    user: Option<Vec<u8>>,
    head: bool,
}

impl Line {
    fn custom(&self, name: &str) -> Option<&(Vec<u8>, Option<Vec<u8>>)> {
        self.custom
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
    }

    fn add_data(&mut self, piece: &[u8], json: bool) {
        let data = self.data.get_or_insert_with(Vec::new);
        // curl joins `-d` pieces with `&` and appends `--json` pieces as they are.
        if !json && !data.is_empty() {
            data.push(b'&');
        }
        data.extend_from_slice(piece);
    }
}

/// A curl command line into the request curl would send.
pub fn parse(text: &str, defaults: &Defaults) -> Result<Parsed, ParseError> {
    let s = text.as_bytes();
    let words = split_words(text)?;
    let err = |at: usize, m: String| ParseError::at(WHAT, s, at, m);
    let Some(first) = words.first() else {
        return Err(err(0, "empty".into()));
    };
    if first.bytes != b"curl" {
        return Err(err(
            first.offset,
            "the line does not start with `curl`".into(),
        ));
    }
    let mut line = Line::default();
    let mut notes = Vec::new();
    let mut i = 1;
    while i < words.len() {
        let w = &words[i];
        i += 1;
        let (flag, attached) = if let Some(long) = w.bytes.strip_prefix(b"--") {
            let name = String::from_utf8_lossy(long);
            let flag = FLAGS.iter().find(|f| f.long == name).ok_or_else(|| {
                err(
                    w.offset,
                    format!("curl's --{name} is not one lbprobe reads ({})", known()),
                )
            })?;
            (flag, None)
        } else if w.bytes.len() >= 2 && w.bytes[0] == b'-' {
            let find = |c: u8| FLAGS.iter().find(|f| f.short == Some(c));
            let flag = find(w.bytes[1]).ok_or_else(|| {
                err(
                    w.offset,
                    format!(
                        "curl's -{} is not one lbprobe reads ({})",
                        w.bytes[1] as char,
                        known()
                    ),
                )
            })?;
            let rest = &w.bytes[2..];
            if flag.value {
                (flag, (!rest.is_empty()).then(|| rest.to_vec()))
            } else {
                // `-sSL`: booleans run together.
                for (k, &c) in rest.iter().enumerate() {
                    match find(c) {
                        Some(f) if !f.value => {
                            apply(&mut line, &mut notes, f, Vec::new(), w, &err)?
                        }
                        _ => {
                            return Err(err(
                                w.offset + 2 + k,
                                format!("-{} cannot run together with other flags here", c as char),
                            ))
                        }
                    }
                }
                (flag, None)
            }
        } else {
            if line.url.is_some() {
                return Err(err(
                    w.offset,
                    format!("a second URL, {}: a replay sends one request", w.text()),
                ));
            }
            line.url = Some(w.clone());
            continue;
        };
        let value = if flag.value {
            match attached {
                Some(v) => v,
                None => {
                    let Some(v) = words.get(i) else {
                        return Err(err(w.offset, format!("{} needs a value", w.text())));
                    };
                    i += 1;
                    v.bytes.clone()
                }
            }
        } else {
            Vec::new()
        };
        apply(&mut line, &mut notes, flag, value, w, &err)?;
    }
    let url = line
        .url
        .clone()
        .ok_or_else(|| err(s.len(), "no URL".into()))?;
    let request = build(&line, &url, defaults, &err)?;
    Ok(Parsed {
        request,
        source: Source::Curl,
        notes,
    })
}

fn known() -> String {
    "it reads -X, -H, -d, --data-raw, --data-binary, --json, --compressed, --http1.0, --http1.1, -A, -b, -e, -u, -I, --url, and ignores -k, -s, -S, -v, -i, -L, -g, --path-as-is, -o, -m, --connect-timeout".into()
}

fn apply(
    line: &mut Line,
    notes: &mut Vec<String>,
    flag: &Flag,
    value: Vec<u8>,
    w: &Word,
    err: &dyn Fn(usize, String) -> ParseError,
) -> Result<(), ParseError> {
    match flag.what {
        Does::Method => line.method = Some(value),
        Does::Header => {
            let h = custom_header(&value).ok_or_else(|| {
                err(
                    w.offset,
                    format!(
                        "-H {:?}: expected `Name: value`",
                        String::from_utf8_lossy(&value)
                    ),
                )
            })?;
            line.custom.push(h);
        }
        Does::Data | Does::DataBinary => {
            let piece = match value.strip_prefix(b"@") {
                Some(path) => {
                    let path = String::from_utf8_lossy(path).into_owned();
                    if path == "-" {
                        return Err(err(
                            w.offset,
                            "@- (standard input) is not read: name a file".into(),
                        ));
                    }
                    let mut bytes = std::fs::read(&path)
                        .map_err(|e| err(w.offset, format!("cannot read {path}: {e}")))?;
                    if flag.what == Does::Data {
                        bytes.retain(|b| !matches!(b, b'\r' | b'\n'));
                    }
                    bytes
                }
                None => value,
            };
            line.add_data(&piece, false);
        }
        Does::DataRaw => line.add_data(&value, false),
        Does::Json => {
            line.json = true;
            line.add_data(&value, true);
        }
        Does::Compressed => line.compressed = true,
        Does::Http10 => line.version = Some(b"HTTP/1.0"),
        Does::Http11 => line.version = Some(b"HTTP/1.1"),
        Does::Http2 => notes.push(format!("{}: a replay is sent as HTTP/1.1", w.text())),
        Does::UserAgent => line.user_agent = Some(value),
        Does::Cookie => {
            if !value.contains(&b'=') {
                return Err(err(
                    w.offset,
                    "-b without `=` names a cookie file, which is not read: give the cookies as NAME=VALUE".into(),
                ));
            }
            line.cookie = Some(value);
        }
        Does::Referer => line.referer = Some(value),
        Does::User => {
            if !value.contains(&b':') {
                return Err(err(
                    w.offset,
                    "-u without `:password`: curl would ask for the password".into(),
                ));
            }
            line.user = Some(value);
        }
        Does::Head => line.head = true,
        Does::Url => {
            line.url = Some(Word {
                bytes: value,
                offset: w.offset,
            })
        }
        Does::Ignored => notes.push(format!(
            "{} changes nothing in the request; ignored",
            w.text()
        )),
    }
    Ok(())
}

/// `-H` as curl reads it: `Name: value`; `Name:` removes curl's own header; `Name;` sends it
/// empty.
fn custom_header(v: &[u8]) -> Option<(Vec<u8>, Option<Vec<u8>>)> {
    if let Some(colon) = memchr::memchr(b':', v) {
        let name = trim(&v[..colon]);
        let value = trim(&v[colon + 1..]);
        if name.is_empty() {
            return None;
        }
        Some((name.to_vec(), (!value.is_empty()).then(|| value.to_vec())))
    } else {
        let name = v.strip_suffix(b";")?;
        Some((trim(name).to_vec(), Some(Vec::new())))
    }
}

fn trim(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |p| p + 1);
    &b[start..end.max(start)]
}

/// The URL's parts curl sends: `(Host value, request target, user:password)`.
type UrlParts = (Vec<u8>, Vec<u8>, Option<Vec<u8>>);

fn split_url(url: &[u8]) -> Option<UrlParts> {
    let (scheme, rest) = match memchr::memmem::find(url, b"://") {
        Some(at) => (url[..at].to_ascii_lowercase(), &url[at + 3..]),
        None => (b"http".to_vec(), url),
    };
    let default_port: &[u8] = match scheme.as_slice() {
        b"http" => b"80",
        b"https" => b"443",
        _ => return None,
    };
    let end = rest
        .iter()
        .position(|b| matches!(b, b'/' | b'?' | b'#'))
        .unwrap_or(rest.len());
    let mut authority = &rest[..end];
    let mut user = None;
    if let Some(at) = memchr::memrchr(b'@', authority) {
        user = Some(authority[..at].to_vec());
        authority = &authority[at + 1..];
    }
    if authority.is_empty() {
        return None;
    }
    // curl leaves the scheme's own port out of Host.
    let host = match memchr::memrchr(b':', authority) {
        Some(c) if !authority.ends_with(b"]") && &authority[c + 1..] == default_port => {
            authority[..c].to_vec()
        }
        _ => authority.to_vec(),
    };
    let mut target = rest[end..].to_vec();
    if let Some(hash) = memchr::memchr(b'#', &target) {
        target.truncate(hash);
    }
    if !target.starts_with(b"/") {
        target.insert(0, b'/');
    }
    Some((host, target, user))
}

fn build(
    line: &Line,
    url: &Word,
    defaults: &Defaults,
    err: &dyn Fn(usize, String) -> ParseError,
) -> Result<Request, ParseError> {
    let (host, target, url_user) = split_url(&url.bytes).ok_or_else(|| {
        err(
            url.offset,
            format!("{}: not an http:// or https:// URL", url.text()),
        )
    })?;
    let mut headers = Vec::new();
    let skip = |name: &str| line.custom(name).is_some();
    match line.custom("host") {
        Some((name, Some(v))) => headers.push(Header::new(name.clone(), v.clone())),
        Some((_, None)) => {}
        None => headers.push(Header::new("Host", host)),
    }
    if let Some(user) = line.user.clone().or(url_user) {
        if !skip("authorization") {
            let b64 = base64::engine::general_purpose::STANDARD.encode(&user);
            headers.push(Header::new("Authorization", format!("Basic {b64}")));
        }
    }
    if !skip("user-agent") {
        let ua = line
            .user_agent
            .clone()
            .unwrap_or_else(|| defaults.user_agent.clone().into_bytes());
        headers.push(Header::new("User-Agent", ua));
    }
    // `--json` adds its own Accept after the -H headers.
    if !skip("accept") && !line.json {
        headers.push(Header::new("Accept", "*/*"));
    }
    if line.compressed && !skip("accept-encoding") {
        headers.push(Header::new(
            "Accept-Encoding",
            defaults.accept_encoding.clone(),
        ));
    }
    if let Some(r) = &line.referer {
        headers.push(Header::new("Referer", r.clone()));
    }
    if let Some(c) = &line.cookie {
        if !skip("cookie") {
            headers.push(Header::new("Cookie", c.clone()));
        }
    }
    for (name, value) in &line.custom {
        if name.eq_ignore_ascii_case(b"host") {
            continue;
        }
        if let Some(v) = value {
            headers.push(Header::new(name.clone(), v.clone()));
        }
    }
    if line.json {
        if !skip("content-type") {
            headers.push(Header::new("Content-Type", "application/json"));
        }
        if !skip("accept") {
            headers.push(Header::new("Accept", "application/json"));
        }
    }
    let version = line.version.unwrap_or(b"HTTP/1.1").to_vec();
    let body = line.data.clone().unwrap_or_default();
    if line.data.is_some() {
        if !skip("content-length") {
            headers.push(Header::new("Content-Length", body.len().to_string()));
        }
        if !skip("content-type") && !line.json {
            headers.push(Header::new(
                "Content-Type",
                "application/x-www-form-urlencoded",
            ));
        }
        if body.len() > EXPECT_THRESHOLD && version == b"HTTP/1.1" && !skip("expect") {
            headers.push(Header::new("Expect", "100-continue"));
        }
    }
    let method = match &line.method {
        Some(m) => m.clone(),
        None if line.head => b"HEAD".to_vec(),
        None if line.data.is_some() => b"POST".to_vec(),
        None => b"GET".to_vec(),
    };
    Ok(Request {
        method,
        target,
        version,
        headers,
        body,
    })
}

/// Why curl cannot send a request's exact bytes.
pub type Inexpressible = String;

/// A curl command that sends `req`'s exact bytes to `base` (`http://host:port`, the listener),
/// or why curl cannot: curl fixes the shape of the request line, writes `Name: value` with one
/// space, puts Host first, and cannot carry NUL or non-UTF-8 bytes on a text line.
pub fn to_curl(req: &Request, base: &str, defaults: &Defaults) -> Result<String, Inexpressible> {
    let text = |b: &[u8], what: &str| -> Result<String, Inexpressible> {
        let t = std::str::from_utf8(b).map_err(|_| format!("{what} is not UTF-8 text"))?;
        if t.contains('\0') {
            return Err(format!("{what} holds a NUL byte"));
        }
        Ok(t.to_string())
    };
    let method = text(&req.method, "the method")?;
    if method.is_empty() || !method.bytes().all(crate::transport::is_token_byte) {
        return Err("the method is not a token curl can send".into());
    }
    let version = match req.version.as_slice() {
        b"HTTP/1.1" => None,
        b"HTTP/1.0" => Some("--http1.0"),
        _ => {
            return Err(format!(
                "curl sends only HTTP/1.0 or HTTP/1.1, not {}",
                String::from_utf8_lossy(&req.version)
            ))
        }
    };
    let target = text(&req.target, "the request target")?;
    // curl percent-encodes bytes above ASCII in a URL (`/café` goes out as `/caf%c3%a9`).
    if !target.starts_with('/') || target.bytes().any(|b| b <= b' ' || b == b'#' || b >= 0x7f) {
        return Err(
            "curl sends a request target that starts with / and holds only printable ASCII, no spaces or #"
                .into(),
        );
    }
    let mut args: Vec<String> = vec!["curl".into()];
    if let Some(v) = version {
        args.push(v.into());
    }
    if target.contains("/.") {
        args.push("--path-as-is".into());
    }
    let mut headers = req.headers.iter().peekable();
    let host = match headers.peek() {
        Some(h) if h.is("host") => headers.next(),
        _ => None,
    };
    if req.headers.iter().filter(|h| h.is("host")).count() != host.iter().count() {
        return Err("curl writes one Host header, first".into());
    }
    args.push(quote(&format!("{}{target}", base.trim_end_matches('/'))));
    let has = |n: &str| req.headers.iter().any(|h| h.is(n));
    // A body goes out with --data-raw, which makes curl's own method POST.
    let body = !req.body.is_empty() || has("content-length");
    if method == "HEAD" && !body {
        args.push("-I".into());
    } else if method != if body { "POST" } else { "GET" } {
        args.push("-X".into());
        // A token may hold shell characters (`'`, `|`, `&`, `$`): quoted like every word.
        args.push(quote(&method));
    }
    let base_host = base
        .split_once("://")
        .map_or(base, |(_, r)| r)
        .trim_end_matches('/');
    let mut hs: Vec<String> = Vec::new();
    match host {
        Some(h) => {
            let v = text(&h.value, "the Host header")?;
            // curl writes an empty Host as `Host:`, without the space.
            let sep_ok = if v.is_empty() {
                h.sep == b":"
            } else {
                h.sep == b": "
            };
            if h.name != b"Host" || !sep_ok {
                return Err(
                    "curl writes its Host header as `Host: value` (`Host:` when empty)".into(),
                );
            }
            // As for every other header: curl trims what it reads back (found by the fuzz
            // target replay_request: `Host: a.test\r` came back as `a.test`).
            if v.bytes().any(|b| b == b'\r' || b == b'\n') || v != v.trim() {
                return Err(
                    "the Host header's value starts or ends with spaces or holds a line break"
                        .into(),
                );
            }
            if v.is_empty() {
                hs.push("Host;".into());
            } else if v != base_host || h.name != b"Host" {
                hs.push(format!("Host: {v}"));
            }
        }
        None => hs.push("Host:".into()),
    }
    // curl's own headers the request does not have are removed.
    for own in ["User-Agent", "Accept"] {
        if !has(own) {
            hs.push(format!("{own}:"));
        }
    }
    for h in headers {
        let name = text(&h.name, "a header name")?;
        let value = text(&h.value, &format!("the value of {name}"))?;
        if name.is_empty() || !name.bytes().all(crate::transport::is_token_byte) {
            return Err(format!(
                "the header line {name:?} has no name curl can write"
            ));
        }
        let plain_sep = if value.is_empty() {
            h.sep == b":"
        } else {
            h.sep == b": "
        };
        if !plain_sep {
            return Err(format!(
                "curl writes `{name}: value` with one space, not the request's own separator"
            ));
        }
        if value.bytes().any(|b| b == b'\r' || b == b'\n') || value != value.trim() {
            return Err(format!(
                "the value of {name} starts or ends with spaces or holds a line break"
            ));
        }
        if h.is("transfer-encoding") {
            return Err("a Transfer-Encoding header: curl frames such a body itself".into());
        }
        if value.is_empty() {
            hs.push(format!("{name};"));
        } else {
            hs.push(format!("{name}: {value}"));
        }
    }
    if body {
        if !has("content-length") {
            return Err("a body without Content-Length: curl always adds one".into());
        }
        if !has("content-type") {
            hs.push("Content-Type:".into());
        }
        if !has("expect") && req.body.len() > EXPECT_THRESHOLD {
            hs.push("Expect:".into());
        }
    }
    let _ = defaults;
    for h in hs {
        args.push("-H".into());
        args.push(quote(&h));
    }
    if body {
        let b = text(&req.body, "the body")?;
        // --data-raw: a body that starts with `@` is not a file name.
        args.push("--data-raw".into());
        args.push(quote(&b));
    }
    Ok(args.join(" "))
}

/// One shell word: bare when safe, else single-quoted (`'` as `'\''`), or `$'…'` when it holds
/// control bytes a terminal would act on.
pub fn quote(s: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c);
    if !s.is_empty() && s.chars().all(safe) {
        return s.to_string();
    }
    if s.chars().any(|c| c.is_control()) {
        let mut out = String::from("$'");
        for c in s.chars() {
            match c {
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\\' => out.push_str("\\\\"),
                '\'' => out.push_str("\\'"),
                c if (c as u32) < 0x80 && c.is_control() => {
                    out.push_str(&format!("\\x{:02x}", c as u32))
                }
                c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
                c => out.push(c),
            }
        }
        out.push('\'');
        return out;
    }
    format!("'{}'", s.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(line: &str) -> Request {
        parse(line, &Defaults::default())
            .unwrap_or_else(|e| panic!("{line}: {e}"))
            .request
    }

    fn wire(line: &str) -> String {
        String::from_utf8(req(line).to_bytes()).unwrap()
    }

    /// A method is a token, and tokens may hold shell characters: the command quotes it, so a
    /// shell reads the method back and runs nothing else (found by the fuzz target
    /// replay_request: `p'ost` gave an unclosed quote; `a|b` would have piped).
    #[test]
    fn a_method_with_shell_characters_is_quoted() {
        for method in ["p'ost", "A|B", "X&Y", "$HOME", "`id`", "#!"] {
            let raw = format!("{method} /x HTTP/1.1\r\nHost: a.test\r\n\r\n");
            let request = crate::replay::raw::parse(raw.as_bytes()).unwrap().request;
            let line = to_curl(&request, "http://a.test", &Defaults::default()).unwrap();
            assert!(line.contains(&format!("-X {}", quote(method))), "{line}");
            assert_eq!(req(&line), request, "{line}");
        }
    }

    /// Every flag the issue lists, each through curl line → request → curl line → request.
    #[test]
    fn round_trips_for_every_flag() {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), "a=1\r\nb=2\n").unwrap();
        let path = file.path().display().to_string();
        let lines = [
            "curl http://a.test/x".to_string(),
            "curl -X PUT http://a.test/x".into(),
            "curl -XDELETE 'http://a.test/x?y=1'".into(),
            "curl http://a.test/ -H 'X-A: 1' -H 'Accept:' -H 'X-Empty;'".into(),
            "curl http://a.test/ -d 'a=1' -d 'b=2'".into(),
            "curl http://a.test/ --data 'a b'".into(),
            "curl http://a.test/ --data-raw '@literal'".into(),
            "curl http://a.test/ --data-binary $'line\\nnext'".into(),
            format!("curl http://a.test/ -d @{path}"),
            format!("curl http://a.test/ --data-binary @{path}"),
            "curl http://a.test/ --compressed".into(),
            "curl http://a.test/ --http1.0".into(),
            "curl http://a.test/ --http1.1".into(),
            "curl http://a.test/ -A 'Mozilla/5.0 (X11)'".into(),
            "curl http://a.test/ -b 'a=1; b=2'".into(),
            "curl http://a.test/ -e https://ref.test/".into(),
            "curl http://a.test/ -u user:secret".into(),
            "curl -I http://a.test/".into(),
            "curl http://a.test/api --json '{\"a\": 1}'".into(),
            "curl 'http://a.test/' \\\n  -H 'X-A: 1' \\\n  --compressed".into(),
            "curl \"http://a.test/\" -H \"X-Q: say \\\"hi\\\"\"".into(),
            "curl -sSL -k http://a.test/ -H 'Host: prod.test'".into(),
        ];
        for line in &lines {
            let first = req(line);
            let again = to_curl(&first, "http://a.test", &Defaults::default())
                .unwrap_or_else(|why| panic!("{line}: {why}"));
            assert_eq!(req(&again), first, "{line}\n → {again}");
        }
    }

    /// What curl 7.88 writes for these flags, as captured from curl itself.
    #[test]
    fn headers_in_curls_order() {
        assert_eq!(
            wire("curl -s 'http://127.0.0.1:18777/a?b=c' -X PUT -H 'X-A: 1' -A 'UA/1' -e 'http://ref/' -b 'a=b; c=d' -u 'user:pw' --compressed"),
            "PUT /a?b=c HTTP/1.1\r\nHost: 127.0.0.1:18777\r\nAuthorization: Basic dXNlcjpwdw==\r\nUser-Agent: UA/1\r\nAccept: */*\r\nAccept-Encoding: deflate, gzip, br, zstd\r\nReferer: http://ref/\r\nCookie: a=b; c=d\r\nX-A: 1\r\n\r\n"
        );
        assert_eq!(
            wire("curl http://127.0.0.1:18777/j -H 'X-A: 1' --json '{\"a\":1}' -H 'X-B: 2' --json '{\"b\":2}' -d 'z=1'"),
            "POST /j HTTP/1.1\r\nHost: 127.0.0.1:18777\r\nUser-Agent: curl/7.88.1\r\nX-A: 1\r\nX-B: 2\r\nContent-Type: application/json\r\nAccept: application/json\r\nContent-Length: 18\r\n\r\n{\"a\":1}{\"b\":2}&z=1"
        );
        assert_eq!(
            wire("curl http://127.0.0.1:18777/p -d 'x=1' -d 'y=2' --http1.0"),
            "POST /p HTTP/1.0\r\nHost: 127.0.0.1:18777\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\nContent-Length: 7\r\nContent-Type: application/x-www-form-urlencoded\r\n\r\nx=1&y=2"
        );
        assert_eq!(
            wire("curl -I http://a.test:80/h"),
            "HEAD /h HTTP/1.1\r\nHost: a.test\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n"
        );
        assert_eq!(
            wire("curl http://a.test/e -H 'Host;' -b 'k=v' -H 'Cookie: c=2' -u u:p -H 'Authorization: Bearer x'"),
            "GET /e HTTP/1.1\r\nHost:\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\nCookie: c=2\r\nAuthorization: Bearer x\r\n\r\n"
        );
    }

    #[test]
    fn file_data_strips_line_ends_for_d_only() {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), "a=1\r\nb=2\n").unwrap();
        let p = file.path().display();
        assert_eq!(req(&format!("curl http://a.test/ -d @{p}")).body, b"a=1b=2");
        assert_eq!(
            req(&format!("curl http://a.test/ --data-binary @{p}")).body,
            b"a=1\r\nb=2\n"
        );
    }

    #[test]
    fn bad_lines_say_where() {
        let e = parse("curl http://a.test/ \\\n  -H 'X-A: 1", &Defaults::default()).unwrap_err();
        assert_eq!((e.line, e.column), (2, 6), "{e}");
        assert!(e.message.contains("never closed"), "{e}");
        let e = parse("curl http://a.test/ --frobnicate", &Defaults::default()).unwrap_err();
        assert_eq!((e.line, e.column), (1, 21), "{e}");
        let e = parse("curl -H", &Defaults::default()).unwrap_err();
        assert!(e.message.contains("needs a value"), "{e}");
        let e = parse("curl -X POST", &Defaults::default()).unwrap_err();
        assert!(e.message.contains("no URL"), "{e}");
    }

    #[test]
    fn what_curl_cannot_send_is_said() {
        let raw = |b: &[u8]| crate::replay::raw::parse(b).unwrap().request;
        let why = |r: &Request| to_curl(r, "http://a.test", &Defaults::default()).unwrap_err();
        assert!(why(&raw(b"GET / HTTP/2.0\r\nHost: a.test\r\n\r\n")).contains("HTTP/1.1"));
        assert!(
            why(&raw(b"GET / HTTP/1.1\r\nHost: a.test\r\nX-A :1\r\n\r\n")).contains("separator")
        );
        assert!(why(&raw(b"GET / HTTP/1.1\r\nX-A: 1\r\nHost: a.test\r\n\r\n")).contains("Host"));
        assert!(why(&raw(b"G\x01T / HTTP/1.1\r\nHost: a.test\r\n\r\n")).contains("method"));
        // curl trims what it reads back: a Host value ending in CR has no curl command.
        let mut cr = raw(b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n");
        cr.headers[0].value = b"a.test\r".to_vec();
        assert!(why(&cr).contains("line break"));
        // A raw request curl can send comes back exactly.
        for bytes in [
            &b"post /x HTTP/1.1\r\nHost: a.test\r\nContent-Length: 2\r\n\r\nhi"[..],
            // An empty body with its Content-Length: still a GET.
            &b"GET /x HTTP/1.1\r\nHost: a.test\r\nContent-Length: 0\r\n\r\n"[..],
            &b"HEAD /x HTTP/1.1\r\nHost: a.test\r\n\r\n"[..],
        ] {
            let ok = raw(bytes);
            let line = to_curl(&ok, "http://a.test", &Defaults::default()).unwrap();
            assert_eq!(req(&line), ok, "{line}");
        }
    }

    #[test]
    fn quoting_survives_the_splitter() {
        for s in [
            "plain",
            "it's",
            "a b",
            "tab\there",
            "\u{1b}[31m",
            "$HOME `x`",
            "back\\slash",
        ] {
            let words = split_words(&format!("curl {}", quote(s))).unwrap();
            assert_eq!(words[1].bytes, s.as_bytes(), "{s}");
        }
    }
}
