//! rustls client configurations: verified against the web PKI or a CA file of the user's, or
//! explicitly insecure; with or without a client certificate (mTLS); offering no ALPN, http/1.1
//! or h2.
//!
//! Raw probes offer no ALPN: lbprobe speaks HTTP/1.1 exactly there, and offering h2 would let a
//! listener switch protocols under our crafted bytes. Only the client-library checks that
//! look for HTTP/2 on purpose offer h2.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use serde::{Deserialize, Serialize};

/// How a TLS client checks the server and proves who it is. The files are read when a
/// configuration is first built ([`client_config`]); scenario loading and `scan` build it
/// up front so that a missing or broken file is an input error, not a failed probe.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct TlsSettings {
    /// Verify the certificate chain and the server name.
    pub verify: bool,
    /// PEM certificates to trust instead of the web PKI's roots (curl's `--cacert`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate chain for mutual TLS (curl's `--cert`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_cert: Option<PathBuf>,
    /// PEM private key of the client certificate; `None` reads it from `client_cert`'s file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_key: Option<PathBuf>,
}

impl TlsSettings {
    /// Verified against the web PKI, no client certificate.
    pub fn verified() -> TlsSettings {
        TlsSettings::new(true)
    }

    /// Any certificate accepted (see [`AcceptAnyCertificate`]), no client certificate.
    pub fn insecure() -> TlsSettings {
        TlsSettings::new(false)
    }

    pub fn new(verify: bool) -> TlsSettings {
        TlsSettings {
            verify,
            ca_file: None,
            client_cert: None,
            client_key: None,
        }
    }
}

/// The application protocols a client offers in its ClientHello.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Alpn {
    /// No ALPN extension (raw probes).
    None,
    /// `http/1.1` only.
    Http1,
    /// `h2`, then `http/1.1`: the server chooses.
    H2OrHttp1,
}

impl Alpn {
    fn protocols(self) -> Vec<Vec<u8>> {
        match self {
            Alpn::None => Vec::new(),
            Alpn::Http1 => vec![b"http/1.1".to_vec()],
            Alpn::H2OrHttp1 => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
        }
    }
}

/// A TLS client configuration that could not be built from the user's files.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsSetupError {
    #[error("cannot read {what} {path}: {why}")]
    Read {
        what: &'static str,
        path: PathBuf,
        why: String,
    },
    #[error("{what} {path} holds no PEM certificate")]
    NoCertificate { what: &'static str, path: PathBuf },
    #[error("CA file {path}: {why}")]
    BadCa { path: PathBuf, why: String },
    #[error("{path} holds no PEM private key (give it with the client key)")]
    NoKey { path: PathBuf },
    #[error("client certificate {cert} and key {key} do not make an identity: {why}")]
    BadIdentity {
        cert: PathBuf,
        key: PathBuf,
        why: String,
    },
    #[error("{path} holds an encrypted private key, which lbprobe cannot read: decrypt a copy (`openssl pkey -in KEY -out PLAIN`) and keep it private")]
    EncryptedKey { path: PathBuf },
    #[error("a client key ({key}) needs a client certificate")]
    KeyWithoutCert { key: PathBuf },
}

/// The client configuration for `settings` offering `alpn`, built once per distinct pair and
/// shared.
pub fn client_config(
    settings: &TlsSettings,
    alpn: Alpn,
) -> Result<Arc<ClientConfig>, TlsSetupError> {
    type Cache = Mutex<HashMap<(TlsSettings, Alpn), Arc<ClientConfig>>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let key = (settings.clone(), alpn);
    if let Some(config) = cache.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
        return Ok(config.clone());
    }
    let mut config = build(settings)?;
    config.alpn_protocols = alpn.protocols();
    let config = Arc::new(config);
    cache
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(key, config.clone());
    Ok(config)
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn build(settings: &TlsSettings) -> Result<ClientConfig, TlsSetupError> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        // The ring provider supports the default versions: this cannot fail, and if it ever
        // did, rustls's own defaults are the same versions.
        .unwrap_or_else(|_| ClientConfig::builder());
    let builder = if settings.verify {
        let roots = match &settings.ca_file {
            Some(path) => ca_roots(path)?,
            None => RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            },
        };
        builder.with_root_certificates(roots)
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate { provider }))
    };
    match (&settings.client_cert, &settings.client_key) {
        (None, None) => Ok(builder.with_no_client_auth()),
        (None, Some(key)) => Err(TlsSetupError::KeyWithoutCert { key: key.clone() }),
        (Some(cert), key) => {
            let key_path = key.as_ref().unwrap_or(cert);
            let chain = certificates("client certificate", cert)?;
            let key = private_key(key_path)?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| TlsSetupError::BadIdentity {
                    cert: cert.clone(),
                    key: key_path.clone(),
                    why: e.to_string(),
                })
        }
    }
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsSetupError> {
    std::fs::read(path).map_err(|e| TlsSetupError::Read {
        what,
        path: path.to_path_buf(),
        why: e.to_string(),
    })
}

fn certificates(
    what: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    let pem = read(what, path)?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
        .filter_map(Result::ok)
        .collect();
    if certs.is_empty() {
        return Err(TlsSetupError::NoCertificate {
            what,
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

fn ca_roots(path: &Path) -> Result<RootCertStore, TlsSetupError> {
    let mut roots = RootCertStore::empty();
    for cert in certificates("CA file", path)? {
        roots.add(cert).map_err(|e| TlsSetupError::BadCa {
            path: path.to_path_buf(),
            why: e.to_string(),
        })?;
    }
    Ok(roots)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsSetupError> {
    let pem = read("client key", path)?;
    // rustls reads no encrypted keys, and "no key" would send the person looking elsewhere.
    if crate::bytes::contains(&pem, b"ENCRYPTED PRIVATE KEY") {
        return Err(TlsSetupError::EncryptedKey {
            path: path.to_path_buf(),
        });
    }
    PrivateKeyDer::from_pem_slice(&pem).map_err(|_| TlsSetupError::NoKey {
        path: path.to_path_buf(),
    })
}

/// INSECURE: accepts any certificate for any name, expired or self-signed.
///
/// lbprobe diagnoses listeners, often on internal names or addresses with private or broken
/// certificates; certificate problems are reported by the verifying configuration, not by this
/// one. It still checks the handshake signatures against the presented certificate's key, so a
/// successful handshake proves the peer holds that key (not who it is).
#[derive(Debug)]
pub struct AcceptAnyCertificate {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// What a certificate check against the user's trust settings found. The sniff makes it from
/// the chain its handshake was shown, without sending anything over that connection: whether a
/// port speaks TLS never depends on trusting it, and whether it can be trusted is its own fact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum CertCheck {
    /// Verification is off (`--insecure`, `tls-verify: false`): the certificate was not judged.
    NotChecked,
    /// The chain verifies for the name against `against` (`the web PKI's roots`, `the CA file
    /// ca.pem`).
    Verified { against: String },
    /// It does not; `why` in words (`self-signed: ...`, `expired 3 days ago`).
    Failed {
        against: String,
        fault: CertFault,
        why: String,
        /// Its issuer is its own subject.
        self_signed: bool,
    },
}

/// Why a certificate does not verify, by what fixes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CertFault {
    /// No trusted CA signed it (self-signed, a private CA, a missing intermediate): trusting
    /// the CA fixes it.
    UnknownIssuer,
    /// A CA certificate (basic constraints CA:TRUE) presented as the server's own: rustls
    /// refuses it even when it is trusted; OpenSSL-based proxies accept it once trusted.
    CaAsServer,
    Expired,
    NotYetValid,
    /// Not valid for the name asked for.
    WrongName,
    Other,
}

impl CertCheck {
    /// One line for a person: `verifies against the CA file ca.pem`, `does not verify against
    /// the web PKI's roots: self-signed, ...`.
    pub fn words(&self) -> String {
        match self {
            CertCheck::NotChecked => "not checked (verification is off)".into(),
            CertCheck::Verified { against } => format!("verifies against {against}"),
            CertCheck::Failed { against, why, .. } => {
                format!("does not verify against {against}: {why}")
            }
        }
    }
}

/// Check `chain` (end entity first) for `server_name` against what `settings` trusts, offline:
/// the same verifier a verifying handshake uses, run on a chain an unverified handshake was
/// shown.
pub fn check_certificate(
    chain: &[CertificateDer<'_>],
    server_name: &str,
    settings: &TlsSettings,
) -> CertCheck {
    if !settings.verify {
        return CertCheck::NotChecked;
    }
    let against = match &settings.ca_file {
        Some(path) => format!("the CA file {}", path.display()),
        None => "the web PKI's roots".to_string(),
    };
    let failed = |fault: CertFault, why: String, self_signed: bool| CertCheck::Failed {
        against: against.clone(),
        fault,
        why,
        self_signed,
    };
    let Some((end_entity, intermediates)) = chain.split_first() else {
        return failed(
            CertFault::Other,
            "the server presented no certificate".into(),
            false,
        );
    };
    let self_signed = self_issued(end_entity).unwrap_or(false);
    let roots = match &settings.ca_file {
        Some(path) => match ca_roots(path) {
            Ok(roots) => roots,
            Err(e) => return failed(CertFault::Other, e.to_string(), self_signed),
        },
        None => RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        },
    };
    let Some(name) = self::server_name(server_name) else {
        return failed(
            CertFault::Other,
            format!("{server_name} is not a name a certificate can be checked for"),
            self_signed,
        );
    };
    let verifier = match rustls::client::WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        provider(),
    )
    .build()
    {
        Ok(v) => v,
        Err(e) => return failed(CertFault::Other, e.to_string(), self_signed),
    };
    match verifier.verify_server_cert(end_entity, intermediates, &name, &[], UnixTime::now()) {
        Ok(_) => CertCheck::Verified { against },
        Err(e) => {
            let (fault, why) = certificate_fault(&e, self_signed);
            failed(fault, why, self_signed)
        }
    }
}

/// What a failed certificate check means, and in words that name the reason (self-signed, a CA
/// certificate used as the server's own, unknown issuer, expired, wrong name).
fn certificate_fault(e: &rustls::Error, self_signed: bool) -> (CertFault, String) {
    use rustls::CertificateError as C;
    let rustls::Error::InvalidCertificate(cert) = e else {
        return (CertFault::Other, error_words(e));
    };
    let signed = if self_signed {
        "self-signed (its issuer is itself), "
    } else {
        ""
    };
    match cert {
        C::UnknownIssuer => (
            CertFault::UnknownIssuer,
            if self_signed {
                "self-signed (its issuer is itself): no trusted CA vouches for it".into()
            } else {
                "unknown issuer: no trusted CA signed it (a private CA, or the server leaves out its intermediate certificates)".into()
            },
        ),
        C::Other(other) if ca_used_as_end_entity(other) => (
            CertFault::CaAsServer,
            format!(
                "{signed}a CA certificate (basic constraints CA:TRUE, as `openssl req -x509` makes by default) used as the server's own certificate"
            ),
        ),
        C::Expired | C::ExpiredContext { .. } => (CertFault::Expired, certificate_words(cert)),
        C::NotValidYet | C::NotValidYetContext { .. } => {
            (CertFault::NotYetValid, certificate_words(cert))
        }
        C::NotValidForName | C::NotValidForNameContext { .. } => {
            (CertFault::WrongName, format!("{signed}{}", certificate_words(cert)))
        }
        _ => (CertFault::Other, format!("{signed}{}", certificate_words(cert))),
    }
}

fn ca_used_as_end_entity(other: &rustls::OtherError) -> bool {
    matches!(
        other.0.downcast_ref::<webpki::Error>(),
        Some(webpki::Error::CaUsedAsEndEntity)
    )
}

/// The fatal alerts a peer sends when it refuses our certificate or wants one: what tells a
/// server demanding client certificates from one that failed otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerAlert {
    CertificateRequired,
    BadCertificate,
    UnknownCa,
    CertificateExpired,
    CertificateUnknown,
}

impl PeerAlert {
    const ALL: [PeerAlert; 5] = [
        PeerAlert::CertificateRequired,
        PeerAlert::BadCertificate,
        PeerAlert::UnknownCa,
        PeerAlert::CertificateExpired,
        PeerAlert::CertificateUnknown,
    ];

    /// The alert's name as [`error_words`] writes it.
    fn words(self) -> &'static str {
        match self {
            PeerAlert::CertificateRequired => "certificate required",
            PeerAlert::BadCertificate => "bad certificate",
            PeerAlert::UnknownCa => "unknown ca",
            PeerAlert::CertificateExpired => "certificate expired",
            PeerAlert::CertificateUnknown => "certificate unknown",
        }
    }

    /// The alert a connection's end names, read back from the words [`error_words`] wrote
    /// (`...fatal TLS alert: certificate required`) or rustls's own `alert: ...` text: one
    /// module writes them and reads them, so the classifier never parses TLS prose.
    pub fn in_words(text: &str) -> Option<PeerAlert> {
        let (_, name) = text.rsplit_once("alert: ")?;
        let name = name.trim().to_ascii_lowercase().replace('_', " ");
        PeerAlert::ALL
            .into_iter()
            .find(|a| name.starts_with(a.words()))
    }
}

/// A rustls error in words. rustls's own texts print many reasons as Rust values
/// (`invalid peer certificate: Other(OtherError(CaUsedAsEndEntity))`); people read these.
pub fn error_words(e: &rustls::Error) -> String {
    use rustls::Error as E;
    match e {
        E::InvalidCertificate(cert) => format!("invalid certificate: {}", certificate_words(cert)),
        E::AlertReceived(alert) => format!(
            "the peer sent a fatal TLS alert: {}",
            alert
                .as_str()
                .map_or_else(|| "an unknown alert".to_string(), name_words)
        ),
        E::PeerIncompatible(why) => format!(
            "the peer has nothing in common with us: {}",
            name_words(&format!("{why:?}"))
        ),
        E::PeerMisbehaved(why) => format!(
            "the peer broke the TLS protocol: {}",
            name_words(&format!("{why:?}"))
        ),
        E::InappropriateMessage { .. } | E::InappropriateHandshakeMessage { .. } => {
            "the peer sent an unexpected TLS message".into()
        }
        E::InvalidMessage(why) => format!(
            "the peer sent a corrupt TLS message: {}",
            name_words(&format!("{why:?}"))
        ),
        E::NoCertificatesPresented => "the peer sent no certificate".into(),
        E::DecryptError => "cannot decrypt the peer's message".into(),
        E::NoApplicationProtocol => "the peer supports none of the offered protocols (ALPN)".into(),
        E::General(why) => why.clone(),
        E::Other(other) => match other.0.downcast_ref::<webpki::Error>() {
            Some(w) => webpki_words(w),
            None => other.to_string(),
        },
        other => {
            // rustls's text for the rest is plain words already.
            let text = other.to_string();
            if text.contains('(') || text.contains('{') {
                name_words(&format!("{other:?}"))
            } else {
                text
            }
        }
    }
}

/// A certificate error in words.
fn certificate_words(e: &rustls::CertificateError) -> String {
    use rustls::CertificateError as C;
    match e {
        C::BadEncoding => "the certificate is not correctly encoded".into(),
        C::Expired => "the certificate has expired".into(),
        C::ExpiredContext { time, not_after } => format!(
            "the certificate expired {} ago",
            ago(time.as_secs().saturating_sub(not_after.as_secs()))
        ),
        C::NotValidYet => "the certificate is not valid yet".into(),
        C::NotValidYetContext { time, not_before } => format!(
            "the certificate becomes valid only in {}",
            ago(not_before.as_secs().saturating_sub(time.as_secs()))
        ),
        C::Revoked => "the certificate is revoked".into(),
        C::UnknownIssuer => "unknown issuer: no trusted CA signed the certificate".into(),
        C::BadSignature => "the certificate's signature does not match its issuer's key".into(),
        C::NotValidForName => "the certificate is not valid for the name asked for".into(),
        C::NotValidForNameContext {
            expected,
            presented,
        } => {
            let names = if presented.is_empty() {
                "no names at all".to_string()
            } else {
                let names: Vec<&str> = presented.iter().map(|n| presented_name(n)).collect();
                names.join(", ")
            };
            format!(
                "the certificate is not valid for {} (it names {names})",
                expected.to_str()
            )
        }
        C::InvalidPurpose | C::InvalidPurposeContext { .. } => {
            "the certificate is not meant for TLS servers (its extended key usage)".into()
        }
        C::ApplicationVerificationFailure => "the certificate was refused".into(),
        C::Other(other) => match other.0.downcast_ref::<webpki::Error>() {
            Some(w) => webpki_words(w),
            None => other.to_string(),
        },
        other => name_words(&format!("{other:?}")),
    }
}

fn webpki_words(e: &webpki::Error) -> String {
    match e {
        webpki::Error::CaUsedAsEndEntity => {
            "a CA certificate (basic constraints CA:TRUE) used as the server's own certificate"
                .into()
        }
        webpki::Error::EndEntityUsedAsCa => "a server certificate used as a CA in the chain".into(),
        other => name_words(&format!("{other:?}")),
    }
}

/// A name a certificate carries, as webpki renders it for an error (`DnsName("localhost")`,
/// `IpAddress(127.0.0.1)`): the name alone.
fn presented_name(rendered: &str) -> &str {
    rendered
        .split_once('(')
        .and_then(|(_, rest)| rest.strip_suffix(')'))
        .map(|inner| inner.trim_matches('"'))
        .unwrap_or(rendered)
}

/// `3 days`, `5 h`, `40 s`.
fn ago(secs: u64) -> String {
    match secs {
        s if s >= 2 * 86_400 => format!("{} days", s / 86_400),
        s if s >= 2 * 3600 => format!("{} h", s / 3600),
        s if s >= 120 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

/// The leading name of a Rust value's rendering, as lower-case words:
/// `NoCipherSuitesInCommon` -> `no cipher suites in common`. For the many reasons rustls
/// only names; the payload (if any) is dropped.
fn name_words(rendered: &str) -> String {
    let name: String = rendered
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect();
    let mut out = String::new();
    let mut prev_lower = false;
    for c in name.chars() {
        if c.is_ascii_uppercase() && prev_lower {
            out.push(' ');
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        out.push(c.to_ascii_lowercase());
    }
    if out.is_empty() {
        "an unnamed reason".into()
    } else {
        out
    }
}

/// Whether a certificate's issuer is its own subject (self-signed or at least self-issued),
/// read from its DER: `None` when it does not parse. rustls-webpki keeps the names to itself,
/// and two fields do not justify an X.509 parsing crate.
fn self_issued(cert: &[u8]) -> Option<bool> {
    let (_, certificate, _) = der_element(cert)?;
    let (_, tbs, _) = der_element(certificate)?;
    let mut rest = tbs;
    let mut fields = Vec::with_capacity(6);
    while fields.len() < 6 {
        let (tag, _, after) = der_element(rest)?;
        let whole = &rest[..rest.len() - after.len()];
        // The version is an optional explicit [0]; the rest are in order: serial, signature
        // algorithm, issuer, validity, subject.
        if !(fields.is_empty() && tag == 0xa0) {
            fields.push(whole);
        }
        rest = after;
    }
    Some(fields[2] == fields[4])
}

/// One DER element: its tag, its contents, and the bytes after it.
fn der_element(bytes: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *bytes.first()?;
    let first = *bytes.get(1)?;
    let (len, header) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let len = bytes
            .get(2..2 + n)?
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, 2 + n)
    };
    let end = header.checked_add(len)?;
    Some((tag, bytes.get(header..end)?, bytes.get(end..)?))
}

/// The TLS server name for `name`: an IP literal (IPv6 with or without brackets) becomes an
/// IP-address name (no SNI is sent for it), anything else a DNS name. `None` when `name` is
/// neither (empty, spaces, ...).
pub fn server_name(name: &str) -> Option<ServerName<'static>> {
    let bare = name
        .strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .unwrap_or(name);
    ServerName::try_from(bare.to_string()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The alert is read back from the words this module writes, and only from an alert.
    #[test]
    fn peer_alerts_are_read_from_their_words() {
        let said = |t: &str| PeerAlert::in_words(t);
        assert_eq!(
            said("the peer sent a fatal TLS alert: certificate required"),
            Some(PeerAlert::CertificateRequired)
        );
        assert_eq!(
            said("received fatal alert: unknown_ca"),
            Some(PeerAlert::UnknownCa)
        );
        assert_eq!(
            said("the peer sent a fatal TLS alert: handshake failure"),
            None
        );
        assert_eq!(said("invalid certificate: expired"), None);
    }

    #[test]
    fn configs_are_cached_per_settings_and_alpn() {
        let a = client_config(&TlsSettings::insecure(), Alpn::None).unwrap();
        let b = client_config(&TlsSettings::insecure(), Alpn::None).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert!(a.alpn_protocols.is_empty());
        let v = client_config(&TlsSettings::verified(), Alpn::None).unwrap();
        assert!(!Arc::ptr_eq(&a, &v));
        let h2 = client_config(&TlsSettings::verified(), Alpn::H2OrHttp1).unwrap();
        assert_eq!(
            h2.alpn_protocols,
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        );
    }

    #[test]
    fn broken_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let settings = TlsSettings {
            ca_file: Some(missing.clone()),
            ..TlsSettings::verified()
        };
        let e = client_config(&settings, Alpn::None).unwrap_err();
        assert!(
            matches!(&e, TlsSetupError::Read { path, .. } if *path == missing),
            "{e}"
        );
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate").unwrap();
        let settings = TlsSettings {
            ca_file: Some(junk.clone()),
            ..TlsSettings::verified()
        };
        let e = client_config(&settings, Alpn::None).unwrap_err();
        assert!(e.to_string().contains("holds no PEM certificate"), "{e}");
        let settings = TlsSettings {
            client_key: Some(junk.clone()),
            ..TlsSettings::insecure()
        };
        assert!(matches!(
            client_config(&settings, Alpn::None),
            Err(TlsSetupError::KeyWithoutCert { .. })
        ));
    }

    #[test]
    fn a_client_certificate_and_key_in_one_file_make_an_identity() {
        let dir = tempfile::tempdir().unwrap();
        let cert = crate::lab::cert::self_signed(&["client.lbprobe.test"]).unwrap();
        let both = dir.path().join("client.pem");
        std::fs::write(&both, format!("{}{}", cert.cert_pem, cert.key_pem)).unwrap();
        let settings = TlsSettings {
            client_cert: Some(both.clone()),
            ..TlsSettings::insecure()
        };
        let config = client_config(&settings, Alpn::None).unwrap();
        assert!(config.client_auth_cert_resolver.has_certs());
        let only_cert = dir.path().join("cert.pem");
        std::fs::write(&only_cert, &cert.cert_pem).unwrap();
        let settings = TlsSettings {
            client_cert: Some(only_cert),
            ..TlsSettings::insecure()
        };
        assert!(matches!(
            client_config(&settings, Alpn::None),
            Err(TlsSetupError::NoKey { .. })
        ));
        let encrypted = dir.path().join("encrypted.pem");
        std::fs::write(
            &encrypted,
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n",
        )
        .unwrap();
        let settings = TlsSettings {
            client_cert: Some(both),
            client_key: Some(encrypted),
            ..TlsSettings::insecure()
        };
        let e = client_config(&settings, Alpn::None).unwrap_err();
        assert!(e.to_string().contains("openssl pkey"), "{e}");
    }

    fn der(pem: &str) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
    }

    #[test]
    fn self_signed_certificates_are_told_from_issued_ones() {
        let own = crate::lab::cert::self_signed(&["localhost"]).unwrap();
        assert_eq!(self_issued(&der(&own.cert_pem)), Some(true));
        let ca = crate::lab::cert::LabCa::new("test CA").unwrap();
        let issued = ca.server(&["localhost"]).unwrap();
        assert_eq!(self_issued(&der(&issued.cert_pem)), Some(false));
        assert_eq!(self_issued(b"\x30\x03\x02"), None);
        assert_eq!(self_issued(b""), None);
    }

    #[test]
    fn certificates_are_checked_against_what_the_user_trusts() {
        let dir = tempfile::tempdir().unwrap();
        let ca = crate::lab::cert::LabCa::new("test CA").unwrap();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, &ca.cert_pem).unwrap();
        let chain = [der(&ca.server(&["localhost"]).unwrap().cert_pem)];
        let with_ca = TlsSettings {
            ca_file: Some(ca_file.clone()),
            ..TlsSettings::verified()
        };
        assert_eq!(
            check_certificate(&chain, "localhost", &with_ca),
            CertCheck::Verified {
                against: format!("the CA file {}", ca_file.display())
            }
        );
        let CertCheck::Failed { fault, why, .. } =
            check_certificate(&chain, "other.test", &with_ca)
        else {
            panic!("another name must not verify");
        };
        assert_eq!(fault, CertFault::WrongName);
        assert_eq!(
            why,
            "the certificate is not valid for other.test (it names localhost)"
        );
        let CertCheck::Failed {
            fault, self_signed, ..
        } = check_certificate(&chain, "localhost", &TlsSettings::verified())
        else {
            panic!("the web PKI does not know the lab CA");
        };
        assert_eq!((fault, self_signed), (CertFault::UnknownIssuer, false));
        assert_eq!(
            check_certificate(&chain, "localhost", &TlsSettings::insecure()),
            CertCheck::NotChecked
        );
    }

    #[test]
    fn rustls_errors_read_as_words() {
        let ca_as_server = rustls::Error::InvalidCertificate(rustls::CertificateError::Other(
            rustls::OtherError(Arc::new(webpki::Error::CaUsedAsEndEntity)),
        ));
        assert_eq!(
            error_words(&ca_as_server),
            "invalid certificate: a CA certificate (basic constraints CA:TRUE) used as the server's own certificate"
        );
        assert_eq!(
            error_words(&rustls::Error::AlertReceived(
                rustls::AlertDescription::CertificateRequired
            )),
            "the peer sent a fatal TLS alert: certificate required"
        );
        assert_eq!(
            error_words(&rustls::Error::PeerIncompatible(
                rustls::PeerIncompatible::NoCipherSuitesInCommon
            )),
            "the peer has nothing in common with us: no cipher suites in common"
        );
        assert_eq!(name_words("Tls12NotOffered"), "tls12 not offered");
        assert_eq!(presented_name("DnsName(\"localhost\")"), "localhost");
        assert_eq!(presented_name("IpAddress(127.0.0.1)"), "127.0.0.1");
        assert_eq!(presented_name("localhost"), "localhost");
        assert_eq!(name_words("UnknownCA"), "unknown ca");
    }

    #[test]
    fn server_names() {
        assert!(matches!(
            server_name("127.0.0.1"),
            Some(ServerName::IpAddress(_))
        ));
        assert!(matches!(
            server_name("[::1]"),
            Some(ServerName::IpAddress(_))
        ));
        assert!(matches!(
            server_name("example.com"),
            Some(ServerName::DnsName(_))
        ));
        assert!(server_name("not a name").is_none());
    }
}
