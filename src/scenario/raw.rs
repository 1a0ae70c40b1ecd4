//! The scenario file as written: its shape (unknown keys are errors), with every value that a
//! later check may reject [`Marked`] so that the error can point at it. No meaning yet: names
//! are strings, numbers are whatever the file wrote.

use std::fmt;

use serde::de::value::MapAccessDeserializer;
use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};

use crate::yaml::Marked;

#[derive(Debug, serde::Deserialize)]
#[serde(
    deny_unknown_fields,
    rename_all = "kebab-case",
    expecting = "a scenario: a mapping with `targets:` and optionally name, profile, probes, limits, expect, mask"
)]
pub(crate) struct RawScenario {
    pub name: Option<Marked<String>>,
    /// `targets:` with nothing after it is kept (as `Some(None)`) so that the error can point
    /// at it.
    #[serde(default, deserialize_with = "present")]
    pub targets: Option<Marked<Option<RawTargets>>>,
    pub profile: Option<Marked<RawProfile>>,
    pub probes: Option<Marked<Vec<Marked<RawProbe>>>>,
    pub limits: Option<RawLimits>,
    pub expect: Option<RawExpect>,
    pub mask: Option<Vec<Marked<String>>>,
}

/// For a field that was written, even as null.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

#[derive(Debug, serde::Deserialize)]
#[serde(
    deny_unknown_fields,
    rename_all = "kebab-case",
    expecting = "a mapping with `listener:`, `backend:` and/or `pool:`"
)]
pub(crate) struct RawTargets {
    pub listener: Option<Marked<RawTarget>>,
    pub backend: Option<Marked<RawTarget>>,
    /// Every member of the backend pool behind the listener (two or more).
    pub pool: Option<Marked<Vec<Marked<RawTarget>>>>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(
    deny_unknown_fields,
    rename_all = "kebab-case",
    expecting = "a target: a mapping with `url:` and optionally sni, tls-verify, ca-file, client-cert, client-key, connect-to, ip-version, headers"
)]
pub(crate) struct RawTarget {
    pub url: Marked<String>,
    pub sni: Option<Marked<String>>,
    pub tls_verify: Option<bool>,
    pub ca_file: Option<Marked<String>>,
    pub client_cert: Option<Marked<String>>,
    pub client_key: Option<Marked<String>>,
    /// `HOST:PORT` to connect to instead of the URL's, keeping its Host header and SNI.
    pub connect_to: Option<Marked<String>>,
    pub ip_version: Option<Marked<Number>>,
    pub headers: Option<RawPairs>,
}

/// A mapping kept in file order, keys and values as text: headers, and `expect`.
#[derive(Debug, Default)]
pub(crate) struct RawPairs(pub Vec<(Marked<String>, Marked<Text>)>);

impl<'de> Deserialize<'de> for RawPairs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct PairsVisitor;
        impl<'de> Visitor<'de> for PairsVisitor {
            type Value = RawPairs;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping of names to values")
            }
            fn visit_unit<E>(self) -> Result<RawPairs, E> {
                Ok(RawPairs::default())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawPairs, A::Error> {
                let mut pairs = Vec::new();
                while let Some(pair) = map.next_entry()? {
                    pairs.push(pair);
                }
                Ok(RawPairs(pairs))
            }
        }
        d.deserialize_any(PairsVisitor)
    }
}

/// `expect:` in file order: a cause id with a verdict, or a limit family with bounds.
#[derive(Debug, Default)]
pub(crate) struct RawExpect(pub Vec<(Marked<String>, Marked<RawExpected>)>);

impl<'de> Deserialize<'de> for RawExpect {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ExpectVisitor;
        impl<'de> Visitor<'de> for ExpectVisitor {
            type Value = RawExpect;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping of cause ids to verdicts, or of limit families to bounds")
            }
            fn visit_unit<E>(self) -> Result<RawExpect, E> {
                Ok(RawExpect::default())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawExpect, A::Error> {
                let mut pairs = Vec::new();
                while let Some(pair) = map.next_entry()? {
                    pairs.push(pair);
                }
                Ok(RawExpect(pairs))
            }
        }
        d.deserialize_any(ExpectVisitor)
    }
}

/// The value of one `expect:` entry: a verdict, or `{ at-least, at-most }`.
#[derive(Debug)]
pub(crate) enum RawExpected {
    Verdict(String),
    Limit(RawLimitBounds),
}

#[derive(Debug, serde::Deserialize)]
#[serde(
    deny_unknown_fields,
    rename_all = "kebab-case",
    expecting = "a mapping with at-least and/or at-most"
)]
pub(crate) struct RawLimitBounds {
    pub at_least: Option<Marked<Number>>,
    pub at_most: Option<Marked<Number>>,
}

impl<'de> Deserialize<'de> for RawExpected {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ExpectedVisitor;
        impl<'de> Visitor<'de> for ExpectedVisitor {
            type Value = RawExpected;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a verdict, or a mapping with at-least and/or at-most")
            }
            fn visit_str<E>(self, v: &str) -> Result<RawExpected, E> {
                Ok(RawExpected::Verdict(v.to_string()))
            }
            fn visit_bool<E>(self, v: bool) -> Result<RawExpected, E> {
                Ok(RawExpected::Verdict(v.to_string()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<RawExpected, E> {
                Ok(RawExpected::Verdict(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<RawExpected, E> {
                Ok(RawExpected::Verdict(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<RawExpected, E> {
                Ok(RawExpected::Verdict(v.to_string()))
            }
            fn visit_unit<E>(self) -> Result<RawExpected, E> {
                Ok(RawExpected::Verdict(String::new()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawExpected, A::Error> {
                RawLimitBounds::deserialize(MapAccessDeserializer::new(map)).map(RawExpected::Limit)
            }
        }
        d.deserialize_any(ExpectedVisitor)
    }
}

/// A scalar written as text, a number or a boolean, kept as the text (a header value of `5`
/// means "5").
#[derive(Debug)]
pub(crate) struct Text(pub String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl Visitor<'_> for TextVisitor {
            type Value = Text;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a text value")
            }
            fn visit_str<E>(self, v: &str) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
        }
        d.deserialize_any(TextVisitor)
    }
}

/// `profile: clb` or `profile: { base: clb, ... }`.
#[derive(Debug)]
pub(crate) enum RawProfile {
    Name(String),
    Custom(Box<RawProfileOverrides>),
}

#[derive(Debug, serde::Deserialize)]
#[serde(
    deny_unknown_fields,
    rename_all = "kebab-case",
    expecting = "a mapping with base and overrides"
)]
pub(crate) struct RawProfileOverrides {
    pub base: Option<Marked<String>>,
    pub max_header_bytes: Option<Marked<Number>>,
    pub max_header_block_bytes: Option<Marked<Number>>,
    pub max_uri_bytes: Option<Marked<Number>>,
    pub request_timeout: Option<Marked<Number>>,
    pub connect_timeout: Option<Marked<Number>>,
    pub response_timeout: Option<Marked<Number>>,
    pub backend_keepalive_timeout: Option<Marked<Number>>,
    pub trace_allowed: Option<bool>,
}

impl<'de> Deserialize<'de> for RawProfile {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ProfileVisitor;
        impl<'de> Visitor<'de> for ProfileVisitor {
            type Value = RawProfile;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a profile name, or a mapping with base and overrides")
            }
            fn visit_str<E>(self, v: &str) -> Result<RawProfile, E> {
                Ok(RawProfile::Name(v.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawProfile, A::Error> {
                RawProfileOverrides::deserialize(MapAccessDeserializer::new(map))
                    .map(|o| RawProfile::Custom(Box::new(o)))
            }
        }
        d.deserialize_any(ProfileVisitor)
    }
}

/// One item of `probes:`: a bare family name, or `family: { parameters }`.
#[derive(Debug)]
pub(crate) enum RawProbe {
    Bare(String),
    WithParams {
        family: Marked<String>,
        params: RawParams,
        /// A second key in the same item: a mistake worth pointing at.
        extra_key: Option<Marked<String>>,
    },
}

#[derive(Debug)]
pub(crate) enum RawParams {
    Protocol,
    Malformed(Option<RawMalformed>),
    Methods(Option<RawMethods>),
    HeaderSize(Option<RawHeaderSize>),
    HeaderLimit(Option<RawHeaderSize>),
    UriLimit(Option<RawHeaderSize>),
    Partial(Option<RawPartial>),
    Latency(Option<RawLatency>),
    Connect(Option<RawConnect>),
    Response,
    Mtu(Option<Box<RawMtu>>),
    Rate(Option<Box<RawRate>>),
    Keepalive(Option<RawKeepalive>),
    /// The family name is not known; the check after parsing says so.
    Unknown,
}

#[derive(Debug, serde::Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "nothing (this probe family takes no parameters)"
)]
pub(crate) struct NoParams {}

#[derive(Debug, serde::Deserialize)]
#[serde(
    deny_unknown_fields,
    rename_all = "kebab-case",
    expecting = "a mapping with `variants:`"
)]
pub(crate) struct RawMalformed {
    pub variants: Option<Marked<Vec<Marked<String>>>>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(
    deny_unknown_fields,
    rename_all = "kebab-case",
    expecting = "a mapping with `methods:`"
)]
pub(crate) struct RawMethods {
    pub methods: Option<Marked<Vec<Marked<String>>>>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(
    deny_unknown_fields,
    rename_all = "kebab-case",
    expecting = "a mapping with bisect, min, max"
)]
pub(crate) struct RawHeaderSize {
    pub bisect: Option<bool>,
    pub min: Option<Marked<Number>>,
    pub max: Option<Marked<Number>>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(
    deny_unknown_fields,
    rename_all = "kebab-case",
    expecting = "a mapping with `max-wait:`"
)]
pub(crate) struct RawPartial {
    pub max_wait: Option<Marked<Number>>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(
    deny_unknown_fields,
    rename_all = "kebab-case",
    expecting = "a mapping with requests, client-timeout"
)]
pub(crate) struct RawLatency {
    pub requests: Option<Marked<Number>>,
    pub client_timeout: Option<Marked<Number>>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(
    deny_unknown_fields,
    rename_all = "kebab-case",
    expecting = "a mapping with `attempts:`"
)]
pub(crate) struct RawConnect {
    pub attempts: Option<Marked<Number>>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(
    deny_unknown_fields,
    rename_all = "kebab-case",
    expecting = "a mapping with sizes, discover, max-mtu, echo-wait, request-wait"
)]
pub(crate) struct RawMtu {
    pub sizes: Option<Marked<Vec<Marked<Number>>>>,
    pub discover: Option<bool>,
    pub max_mtu: Option<Marked<Number>>,
    pub echo_wait: Option<Marked<Number>>,
    pub request_wait: Option<Marked<Number>>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(
    deny_unknown_fields,
    rename_all = "kebab-case",
    expecting = "a mapping with start, step, factor, max-rate, max-requests, max-duration, sustain"
)]
pub(crate) struct RawRate {
    pub start: Option<Marked<Number>>,
    pub step: Option<Marked<Number>>,
    pub factor: Option<Marked<Number>>,
    pub max_rate: Option<Marked<Number>>,
    pub max_requests: Option<Marked<Number>>,
    pub max_duration: Option<Marked<Number>>,
    pub sustain: Option<Marked<Number>>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(
    deny_unknown_fields,
    rename_all = "kebab-case",
    expecting = "a mapping with max-wait, reproduce"
)]
pub(crate) struct RawKeepalive {
    pub max_wait: Option<Marked<Number>>,
    pub reproduce: Option<bool>,
}

impl<'de> Deserialize<'de> for RawProbe {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ProbeVisitor;
        impl<'de> Visitor<'de> for ProbeVisitor {
            type Value = RawProbe;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a probe family name, or `family: { parameters }`")
            }
            fn visit_str<E>(self, v: &str) -> Result<RawProbe, E> {
                Ok(RawProbe::Bare(v.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawProbe, A::Error> {
                let Some(family) = map.next_key::<Marked<String>>()? else {
                    return Err(serde::de::Error::custom(
                        "invalid type: empty mapping, expected a probe family name",
                    ));
                };
                let params = match family.value.as_str() {
                    "protocol" => {
                        map.next_value::<Option<NoParams>>()?;
                        RawParams::Protocol
                    }
                    "malformed" => RawParams::Malformed(map.next_value()?),
                    "methods" => RawParams::Methods(map.next_value()?),
                    "header-size" => RawParams::HeaderSize(map.next_value()?),
                    "header-limit" => RawParams::HeaderLimit(map.next_value()?),
                    "uri-limit" => RawParams::UriLimit(map.next_value()?),
                    "partial" => RawParams::Partial(map.next_value()?),
                    "latency" => RawParams::Latency(map.next_value()?),
                    "connect" => RawParams::Connect(map.next_value()?),
                    "rate" => RawParams::Rate(map.next_value()?),
                    "mtu" => RawParams::Mtu(map.next_value()?),
                    "keepalive" => RawParams::Keepalive(map.next_value()?),
                    "response" => {
                        map.next_value::<Option<NoParams>>()?;
                        RawParams::Response
                    }
                    _ => {
                        map.next_value::<IgnoredAny>()?;
                        RawParams::Unknown
                    }
                };
                // Every entry must be read, or serde_yaml reports a length mismatch instead.
                let mut extra_key = None;
                while let Some(key) = map.next_key::<Marked<String>>()? {
                    map.next_value::<IgnoredAny>()?;
                    extra_key.get_or_insert(key);
                }
                Ok(RawProbe::WithParams {
                    family,
                    params,
                    extra_key,
                })
            }
        }
        d.deserialize_any(ProbeVisitor)
    }
}

#[derive(Debug, serde::Deserialize)]
#[serde(
    deny_unknown_fields,
    rename_all = "kebab-case",
    expecting = "a mapping with max-requests, max-rate, max-duration, request-timeout"
)]
pub(crate) struct RawLimits {
    pub max_requests: Option<Marked<Number>>,
    pub max_rate: Option<Marked<Number>>,
    pub max_duration: Option<Marked<Number>>,
    pub request_timeout: Option<Marked<Number>>,
}

/// A number as written: YAML's integer or float, or text such as `32k` or `60s`. What it
/// means is decided by the key it belongs to.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Number {
    Int(i128),
    Float(f64),
    Text(String),
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Number::Int(n) => write!(f, "{n}"),
            Number::Float(n) => write!(f, "{n}"),
            Number::Text(t) => f.write_str(t),
        }
    }
}

impl<'de> Deserialize<'de> for Number {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct NumberVisitor;
        impl Visitor<'_> for NumberVisitor {
            type Value = Number;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number, or a number with a unit such as 32k or 60s")
            }
            fn visit_i64<E>(self, v: i64) -> Result<Number, E> {
                Ok(Number::Int(v.into()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Number, E> {
                Ok(Number::Int(v.into()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Number, E> {
                Ok(Number::Float(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Number, E> {
                Ok(Number::Text(v.to_string()))
            }
        }
        d.deserialize_any(NumberVisitor)
    }
}
