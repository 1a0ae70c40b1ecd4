//! Bytes as they came off the wire, kept as bytes: rules read them as they were sent, masking
//! works on them, and they are escaped (`\r`, `\n`, `\xNN`) only where they are serialised or
//! shown, so no rule ever unescapes a string to see what a server said.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{escape_bytes, unescape_bytes};

/// Received bytes (a raw answer's first bytes, a body's first bytes). JSON holds them escaped
/// by [`escape_bytes`], and reads that form back (`merge` reads reports).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct WireBytes(Vec<u8>);

impl WireBytes {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The bytes as text for matching words in them: invalid UTF-8 becomes U+FFFD, control
    /// bytes stay as they are (never print this: see [`WireBytes::escaped`]).
    pub fn text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.0)
    }

    /// The bytes escaped for a person or a report: printable ASCII as is, the rest as `\xNN`.
    pub fn escaped(&self) -> String {
        escape_bytes(&self.0)
    }

    /// Whether the bytes start a TLS record: a handshake (0x16) or an alert (0x15) of a 3.x
    /// version. Such bytes are a TLS peer talking, never an HTTP answer.
    pub fn is_tls_record(&self) -> bool {
        matches!(self.0.as_slice(), [0x15 | 0x16, 0x03, ..])
    }

    pub fn into_vec(self) -> Vec<u8> {
        self.0
    }
}

impl From<Vec<u8>> for WireBytes {
    fn from(bytes: Vec<u8>) -> Self {
        WireBytes(bytes)
    }
}

impl From<&[u8]> for WireBytes {
    fn from(bytes: &[u8]) -> Self {
        WireBytes(bytes.to_vec())
    }
}

impl<const N: usize> From<&[u8; N]> for WireBytes {
    fn from(bytes: &[u8; N]) -> Self {
        WireBytes(bytes.to_vec())
    }
}

impl From<String> for WireBytes {
    fn from(text: String) -> Self {
        WireBytes(text.into_bytes())
    }
}

impl From<&str> for WireBytes {
    fn from(text: &str) -> Self {
        WireBytes(text.as_bytes().to_vec())
    }
}

/// Compares the bytes with a text's bytes (tests and rules that expect a known answer).
impl PartialEq<str> for WireBytes {
    fn eq(&self, other: &str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl PartialEq<&str> for WireBytes {
    fn eq(&self, other: &&str) -> bool {
        self.0 == other.as_bytes()
    }
}

/// Escaped, as in JSON: a debug print never puts raw control bytes on a terminal.
impl fmt::Debug for WireBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", self.escaped())
    }
}

impl Serialize for WireBytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.escaped())
    }
}

impl<'de> Deserialize<'de> for WireBytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        unescape_bytes(&text)
            .map(WireBytes)
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_escaped_and_reads_back() {
        let raw = WireBytes::from(b"HTTP/1.1 400 Bad\r\n\x00\x1b[31m\\\xff");
        let json = serde_json::to_string(&raw).unwrap();
        assert_eq!(json, r#""HTTP/1.1 400 Bad\\r\\n\\x00\\x1b[31m\\\\\\xff""#);
        let back: WireBytes = serde_json::from_str(&json).unwrap();
        assert_eq!(back, raw);
    }

    #[test]
    fn tls_records_are_known_by_their_bytes() {
        assert!(WireBytes::from(b"\x16\x03\x01\x00").is_tls_record());
        assert!(WireBytes::from(b"\x15\x03\x03").is_tls_record());
        assert!(!WireBytes::from(b"HTTP/1.1").is_tls_record());
        assert!(!WireBytes::from(b"\x16").is_tls_record());
    }
}
