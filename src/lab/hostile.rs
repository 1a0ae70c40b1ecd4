//! Hostile and broken servers by name, for `lbprobe lab --hostile KIND`, the tests and
//! bench/hostile.py: each kind is a [`BackendConfig`] of the lab backend whose every answer (or
//! handshake) is broken the same way, so that a scan with defaults shows what lbprobe does
//! against it.

use std::time::Duration;

use super::backend::{BackendConfig, Fault, FaultRule, HandshakeFault};

/// One hostile kind.
#[derive(Debug, Clone, Copy)]
pub struct HostileKind {
    pub name: &'static str,
    /// What the server does, in a few words.
    pub does: &'static str,
    config: fn() -> BackendConfig,
}

impl HostileKind {
    /// The lab backend's configuration for this kind.
    pub fn config(&self) -> BackendConfig {
        (self.config)()
    }
}

/// Every request answered with `fault`.
fn every(fault: Fault) -> BackendConfig {
    BackendConfig::default().fault(FaultRule::all(fault))
}

const SECOND: Duration = Duration::from_secs(1);

/// A head that announces 5 bytes and chunked framing at once, then a chunk that never ends.
const CL_TE_CONFLICT: &[u8] = b"HTTP/1.1 200 OK\r\nServer: lbprobe-lab\r\nContent-Length: 5\r\n\
Transfer-Encoding: chunked\r\n\r\n10\r\nhello";
/// A chunk size beyond any integer type.
const CHUNK_OVERFLOW: &[u8] = b"HTTP/1.1 200 OK\r\nServer: lbprobe-lab\r\n\
Transfer-Encoding: chunked\r\n\r\nfffffffffffffffffffffffffffffffff1\r\nabc";
const CHUNK_GARBAGE: &[u8] = b"HTTP/1.1 200 OK\r\nServer: lbprobe-lab\r\n\
Transfer-Encoding: chunked\r\n\r\nzz;\x01\r\nabc\r\n0\r\n\r\n";
/// A Content-Length above any integer type, and a body that stops.
const LENGTH_OVERFLOW: &[u8] = b"HTTP/1.1 200 OK\r\nServer: lbprobe-lab\r\n\
Content-Length: 99999999999999999999999999\r\n\r\nabc";
/// Two different lengths: which one the client believes decides where the answer ends.
const LENGTH_CONFLICT: &[u8] = b"HTTP/1.1 200 OK\r\nServer: lbprobe-lab\r\n\
Content-Length: 3\r\nContent-Length: 300\r\n\r\nabc";
/// A Content-Length far above what comes: the body never completes.
const LENGTH_UNMET: &[u8] = b"HTTP/1.1 200 OK\r\nServer: lbprobe-lab\r\n\
Content-Length: 1000000\r\n\r\nonly this much";
const NUL_BYTES: &[u8] = b"HTTP/1.1 200 O\x00K\r\nServer: lbprobe-lab\r\nX-N\x00ul: a\x00b\r\n\
Content-Length: 8\r\nConnection: close\r\n\r\n\x00\x00nul\x00\x00\x00";
/// Terminal escapes (colour, title, cursor moves, a hyperlink) in the reason, a header and the
/// body: what must never reach a terminal raw.
const ESCAPES: &[u8] = b"HTTP/1.1 502 \x1b[31mBad\x1b[0m Gateway\r\nServer: \x1b]0;pwned\x07lbprobe-lab\r\n\
X-Esc\x1b[2J: \x1b[1A\x1b[2Kcleared\r\nLocation: \x1b]8;;http://evil.example/\x1b\\link\x1b]8;;\x1b\\\r\n\
Content-Length: 16\r\nConnection: close\r\n\r\n\x1b[5mblink\x1b[0m\x07\x08\x08";
const INVALID_UTF8: &[u8] =
    b"HTTP/1.1 200 \xff\xfe\r\nServer: lbprobe-lab\r\nX-Bytes: \xc3\x28\xa0\xa1\r\n\
Content-Length: 4\r\nConnection: close\r\n\r\n\xf0\x28\x8c\xbc";
const HTTP09: &[u8] = b"<html>an answer without a status line</html>\n";
const BARE_LF: &[u8] =
    b"HTTP/1.1 200 OK\nServer: lbprobe-lab\nContent-Length: 2\nConnection: close\n\nok";
const HALF_BODY_RESET: &[u8] =
    b"HTTP/1.1 200 OK\r\nServer: lbprobe-lab\r\nContent-Length: 100\r\n\r\nhalf of it";
/// A TLS handshake record header around nonsense: looks like TLS for five bytes.
const TLS_GARBAGE: &[u8] = b"\x16\x03\x03\x00\x20this is not a ServerHello at all\x15\x03";

fn garbage() -> Vec<u8> {
    // Deterministic noise: every byte value, shuffled by a multiplier.
    (0..4096u32)
        .map(|i| (i.wrapping_mul(167) % 251) as u8)
        .collect()
}

/// Every hostile kind, in the order `--hostile list` prints them.
pub const KINDS: &[HostileKind] = &[
    HostileKind {
        name: "silence",
        does: "accepts, reads the request, never answers",
        config: || every(Fault::NeverAnswer),
    },
    HostileKind {
        name: "drip",
        does: "sends its whole answer one byte a second (a slowloris response)",
        config: || every(Fault::Trickle { byte_every: SECOND }),
    },
    HostileKind {
        name: "drip-body",
        does: "sends the head at once, then a 64 KiB body one byte a second",
        config: || every(Fault::DripBody { byte_every: SECOND }),
    },
    HostileKind {
        name: "processing-forever",
        does: "sends 102 Processing every second and never a final answer",
        config: || {
            every(Fault::Informational {
                status: 102,
                every: SECOND,
            })
        },
    },
    HostileKind {
        name: "1xx-flood",
        does: "sends 100 Continue back to back, as fast as it is read, never a final answer",
        config: || {
            every(Fault::Informational {
                status: 100,
                every: Duration::ZERO,
            })
        },
    },
    HostileKind {
        name: "endless-headers",
        does: "sends a status line, then header lines forever",
        config: || every(Fault::EndlessHeaders),
    },
    HostileKind {
        name: "huge-header",
        does: "answers with one 10 MB header line",
        config: || every(Fault::HugeHeader(10 * 1024 * 1024)),
    },
    HostileKind {
        name: "endless-body",
        does: "sends a chunked body whose chunks never end",
        config: || every(Fault::EndlessBody),
    },
    HostileKind {
        name: "chunk-overflow",
        does: "announces a chunk size beyond any integer, then holds the connection",
        config: || every(Fault::RawThenHold(CHUNK_OVERFLOW.to_vec())),
    },
    HostileKind {
        name: "chunk-garbage",
        does: "sends a chunk-size line that is not hexadecimal, then closes",
        config: || every(Fault::Raw(CHUNK_GARBAGE.to_vec())),
    },
    HostileKind {
        name: "cl-te-conflict",
        does: "announces Content-Length and chunked at once, then a chunk that never ends",
        config: || every(Fault::RawThenHold(CL_TE_CONFLICT.to_vec())),
    },
    HostileKind {
        name: "length-overflow",
        does: "announces a Content-Length beyond any integer, sends 3 bytes, holds the connection",
        config: || every(Fault::RawThenHold(LENGTH_OVERFLOW.to_vec())),
    },
    HostileKind {
        name: "length-conflict",
        does: "announces two different Content-Lengths, then holds the connection",
        config: || every(Fault::RawThenHold(LENGTH_CONFLICT.to_vec())),
    },
    HostileKind {
        name: "length-unmet",
        does: "announces a 1 MB body, sends 14 bytes, holds the connection",
        config: || every(Fault::RawThenHold(LENGTH_UNMET.to_vec())),
    },
    HostileKind {
        name: "short-body",
        does: "announces 100 bytes of body, sends 10, closes",
        config: || every(Fault::ShortBody),
    },
    HostileKind {
        name: "headers-then-close",
        does: "sends a head announcing a body, then closes without one",
        config: || every(Fault::CloseAfterHeaders),
    },
    HostileKind {
        name: "half-body-reset",
        does: "sends a head and part of the body, then resets",
        config: || every(Fault::RawThenReset(HALF_BODY_RESET.to_vec())),
    },
    HostileKind {
        name: "garbage",
        does: "answers with 4 KiB of binary noise, then closes",
        config: || every(Fault::Raw(garbage())),
    },
    HostileKind {
        name: "http09",
        does: "answers with a body and no status line (HTTP/0.9), then closes",
        config: || every(Fault::Raw(HTTP09.to_vec())),
    },
    HostileKind {
        name: "malformed-status",
        does: "answers with an unreadable status line",
        config: || every(Fault::MalformedStatusLine),
    },
    HostileKind {
        name: "malformed-header",
        does: "answers with a header line without a colon",
        config: || every(Fault::MalformedHeader),
    },
    HostileKind {
        name: "bare-lf",
        does: "ends its answer's lines with LF alone",
        config: || every(Fault::Raw(BARE_LF.to_vec())),
    },
    HostileKind {
        name: "nul-bytes",
        does: "puts NUL bytes in its status line, a header and the body",
        config: || every(Fault::Raw(NUL_BYTES.to_vec())),
    },
    HostileKind {
        name: "escape-sequences",
        does: "puts terminal escape sequences in its status line, headers and body",
        config: || every(Fault::Raw(ESCAPES.to_vec())),
    },
    HostileKind {
        name: "invalid-utf8",
        does: "puts bytes that are not UTF-8 in its status line, a header and the body",
        config: || every(Fault::Raw(INVALID_UTF8.to_vec())),
    },
    HostileKind {
        name: "reset",
        does: "resets every connection once the request is in",
        config: || every(Fault::ResetWithoutResponse),
    },
    HostileKind {
        name: "close",
        does: "closes every connection once the request is in, without a byte",
        config: || every(Fault::CloseWithoutResponse),
    },
    HostileKind {
        name: "tls-silence",
        does: "a TLS port that never answers the ClientHello",
        config: || BackendConfig::default().handshake_fault(HandshakeFault::Silence),
    },
    HostileKind {
        name: "tls-garbage",
        does: "a TLS port that answers the ClientHello with a broken TLS record, then closes",
        config: || {
            BackendConfig::default().handshake_fault(HandshakeFault::Garbage(TLS_GARBAGE.to_vec()))
        },
    },
    HostileKind {
        name: "tls-drip",
        does: "a TLS port that shakes hands, then sends its answer one byte a second",
        config: || {
            BackendConfig::default()
                .tls(true)
                .fault(FaultRule::all(Fault::Trickle { byte_every: SECOND }))
        },
    },
    HostileKind {
        name: "h2-continuation-flood",
        does: "a TLS port that offers h2 and, to a client that takes it, sends header fragments (CONTINUATION frames) forever; HTTP/1.1 is answered as usual",
        config: || BackendConfig::default().h2_flood(),
    },
];

/// The kind called `name`.
pub fn kind(name: &str) -> Option<&'static HostileKind> {
    KINDS.iter().find(|k| k.name == name)
}

/// Why `name` is no kind, with the nearest one when a name is close.
pub fn unknown(name: &str) -> String {
    let nearest = KINDS
        .iter()
        .map(|k| (strsim::jaro_winkler(name, k.name), k.name))
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .filter(|(score, _)| *score > 0.8)
        .map(|(_, n)| format!(" (did you mean {n}?)"))
        .unwrap_or_default();
    format!(
        "no hostile kind is called {}{nearest}; `lbprobe lab --hostile list` names them",
        crate::transport::escape_bytes(name.as_bytes())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_found() {
        for k in KINDS {
            assert_eq!(kind(k.name).map(|f| f.name), Some(k.name));
            assert_eq!(KINDS.iter().filter(|o| o.name == k.name).count(), 1);
        }
        assert!(unknown("silense").contains("did you mean silence?"));
        assert!(!unknown("zzz").contains("did you mean"));
    }

    #[test]
    fn tls_kinds_are_tls() {
        for name in [
            "tls-silence",
            "tls-garbage",
            "tls-drip",
            "h2-continuation-flood",
        ] {
            assert!(kind(name).unwrap().config().tls, "{name}");
        }
        assert!(!kind("silence").unwrap().config().tls);
    }
}
