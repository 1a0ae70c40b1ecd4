//! What a person reads must be words: no Rust value's Debug rendering (`Some(`, `Err(`, an enum
//! variant such as `ConnectRefused` or `Unreachable("No route to host")`), in any human output.

use std::process::Output;

/// Names of Rust values that must never reach a person: `Option`/`Result` wrappers, connection
/// endings, rustls, webpki and io errors.
pub const RUST_NAMES: &[&str] = &[
    "Some(",
    "None)",
    "Err(",
    "Ok(",
    "Other(",
    "OtherError",
    "ConnectRefused",
    "ConnectTimeout",
    "Unreachable(",
    "TlsFailed",
    "TlsAlert",
    "SizeBound",
    "CaUsedAsEndEntity",
    "UnknownIssuer",
    "InvalidCertificate",
    "NotValidForName",
    "AlertReceived",
    "HandshakeFailure",
    "CertificateRequired",
    "PeerIncompatible",
    "PeerMisbehaved",
    "ConnectionRefused",
    "ConnectionReset",
    "TimedOut",
    "UnexpectedEof",
    "InvalidData",
    "Os {",
];

/// Words with a capital after a small letter that are not Rust names: protocol messages,
/// product names, and identifiers the catalogue quotes from other software.
pub const CAMEL_CASE_WORDS: &[&str] = &[
    "ClientHello",
    "ServerHello",
    "OpenSSL",
    "AbortController",
    "clientAuth",
];

/// Escapes as the reports print bytes (`\r\nHost`): the letter after one starts a new word.
fn without_escapes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.peek() {
                Some('r' | 'n' | 't' | '0' | '\\' | '"') => {
                    chars.next();
                    out.push(' ');
                    continue;
                }
                Some('x') => {
                    chars.next();
                    for _ in 0..2 {
                        chars.next_if(|d| d.is_ascii_hexdigit());
                    }
                    out.push(' ');
                    continue;
                }
                _ => {}
            }
        }
        out.push(c);
    }
    out
}

/// Text outside `code spans`: the catalogue quotes configuration names (`maxHttpHeaderSize`)
/// there, on purpose.
fn outside_code_spans(text: &str) -> String {
    text.split('`').step_by(2).collect::<Vec<_>>().join(" ")
}

/// Everything in `text` that looks like Rust Debug output, for a failure message.
pub fn debug_text(text: &str) -> Vec<String> {
    let mut found: Vec<String> = RUST_NAMES
        .iter()
        .filter(|name| text.contains(*name))
        .map(|name| name.to_string())
        .collect();
    for line in text.lines() {
        let prose = outside_code_spans(&without_escapes(line));
        for word in prose.split(|c: char| !c.is_ascii_alphanumeric()) {
            let camel = word
                .as_bytes()
                .windows(2)
                .any(|w| w[0].is_ascii_lowercase() && w[1].is_ascii_uppercase());
            if camel && !CAMEL_CASE_WORDS.contains(&word) && !found.iter().any(|f| f == word) {
                found.push(word.to_string());
            }
        }
    }
    found
}

/// Fail, showing `text`, when it holds Rust Debug text.
pub fn assert_no_rust_debug(what: &str, text: &str) {
    let found = debug_text(text);
    assert!(
        found.is_empty(),
        "{what} shows Rust names {found:?}:\n{text}"
    );
}

/// Whether stdout of a run with these arguments is for people: not JSON, JUnit XML, a shell
/// completion script or a man page.
pub fn stdout_is_for_people(args: &[&str]) -> bool {
    let machine_format = args
        .windows(2)
        .any(|w| w[0] == "--format" && matches!(w[1], "json" | "junit"))
        || args
            .iter()
            .any(|a| *a == "--format=json" || *a == "--format=junit");
    let generated = matches!(args.first(), Some(&"completions" | &"man"));
    !machine_format && !generated
}

/// Keys of a JSON report whose strings are sentences for people (reasons, evidence, notes),
/// as opposed to the bytes sent and received, which are shown as they were.
const SENTENCE_KEYS: &[&str] = &[
    "reason",
    "text",
    "title",
    "notes",
    "unreachable",
    "exit_reason",
    "why",
    "remediation",
    "message",
];

/// Keys whose values are bytes as sent or received (a request's text, an exchange), never
/// looked into.
const BYTES_KEYS: &[&str] = &["request", "requests", "exchange"];

/// The sentences of a JSON document: the strings under [`SENTENCE_KEYS`], at any depth.
pub fn sentences(value: &serde_json::Value) -> Vec<String> {
    fn strings(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::String(s) => out.push(s.clone()),
            serde_json::Value::Array(items) => items.iter().for_each(|i| strings(i, out)),
            _ => {}
        }
    }
    fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    if BYTES_KEYS.contains(&k.as_str()) {
                        continue;
                    }
                    if SENTENCE_KEYS.contains(&k.as_str()) {
                        strings(v, out);
                    }
                    walk(v, out);
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(value, &mut out);
    out
}

/// Every human output of a run of the binary: stderr always; stdout when it is for people, or
/// the sentences in it when it is JSON.
pub fn assert_human_output_is_words(args: &[&str], out: &Output) {
    let command = format!("lbprobe {}", args.join(" "));
    assert_no_rust_debug(
        &format!("stderr of `{command}`"),
        &String::from_utf8_lossy(&out.stderr),
    );
    if stdout_is_for_people(args) {
        assert_no_rust_debug(
            &format!("stdout of `{command}`"),
            &String::from_utf8_lossy(&out.stdout),
        );
    } else if let Ok(json) = serde_json::from_slice::<serde_json::Value>(&out.stdout) {
        assert_no_rust_debug(
            &format!("the sentences of the JSON of `{command}`"),
            &sentences(&json).join("\n"),
        );
    }
}
