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
use serde::Serialize;

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
    if pem
        .windows(b"ENCRYPTED PRIVATE KEY".len())
        .any(|w| w == b"ENCRYPTED PRIVATE KEY")
    {
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
