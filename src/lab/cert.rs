//! Self-signed certificates for TLS lab backends and TLS nginx listeners.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::process::write_private;
use super::LabError;

/// A certificate and its private key, both PEM.
#[derive(Clone)]
pub struct LabCert {
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for LabCert {
    // The key is a throwaway, but a habit of never printing keys is worth keeping.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LabCert")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

/// Where [`LabCert::write_to`] put the two PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabCertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A self-signed certificate valid for `names`; names that parse as IP addresses become IP SANs
/// (so "127.0.0.1" and "::1" verify as addresses), the others DNS SANs.
pub fn self_signed(names: &[&str]) -> Result<LabCert, LabError> {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let mut params = rcgen::CertificateParams::new(names)?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "lbprobe lab");
    let key = rcgen::KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    Ok(LabCert {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// A lab certificate authority: it issues server certificates that verify against its own
/// certificate (for `--cacert` tests) and client certificates for mutual TLS.
pub struct LabCa {
    /// The CA's own certificate, PEM: what a verifying client or server trusts.
    pub cert_pem: String,
    cert: rcgen::Certificate,
    key: rcgen::KeyPair,
}

impl std::fmt::Debug for LabCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LabCa")
            .field("cert_pem", &self.cert_pem)
            .finish_non_exhaustive()
    }
}

impl LabCa {
    pub fn new(name: &str) -> Result<LabCa, LabError> {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let key = rcgen::KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        Ok(LabCa {
            cert_pem: cert.pem(),
            cert,
            key,
        })
    }

    /// A server certificate for `names` (IP literals become IP SANs), signed by this CA.
    pub fn server(&self, names: &[&str]) -> Result<LabCert, LabError> {
        self.issue(
            names,
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
            "lbprobe lab server",
        )
    }

    /// A server certificate for `names`, signed by this CA, that expired years ago (valid
    /// through 2020): what a backend shows after nobody renewed it.
    pub fn expired_server(&self, names: &[&str]) -> Result<LabCert, LabError> {
        self.issue_with(
            names,
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
            "lbprobe lab server",
            |params| {
                params.not_before = rcgen::date_time_ymd(2019, 1, 1);
                params.not_after = rcgen::date_time_ymd(2021, 1, 1);
            },
        )
    }

    /// A client certificate named `name`, signed by this CA.
    pub fn client(&self, name: &str) -> Result<LabCert, LabError> {
        self.issue(&[name], rcgen::ExtendedKeyUsagePurpose::ClientAuth, name)
    }

    fn issue(
        &self,
        names: &[&str],
        usage: rcgen::ExtendedKeyUsagePurpose,
        common_name: &str,
    ) -> Result<LabCert, LabError> {
        self.issue_with(names, usage, common_name, |_| {})
    }

    fn issue_with(
        &self,
        names: &[&str],
        usage: rcgen::ExtendedKeyUsagePurpose,
        common_name: &str,
        adjust: impl FnOnce(&mut rcgen::CertificateParams),
    ) -> Result<LabCert, LabError> {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = rcgen::CertificateParams::new(names)?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, common_name);
        params.extended_key_usages = vec![usage];
        adjust(&mut params);
        let key = rcgen::KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.cert, &self.key)?;
        Ok(LabCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

impl LabCert {
    /// The usual lab certificate: localhost, 127.0.0.1 and ::1.
    pub fn localhost() -> Result<LabCert, LabError> {
        self_signed(&["localhost", "127.0.0.1", "::1"])
    }

    /// Writes `cert.pem` and `key.pem` into `dir` (the key readable by the owner only).
    pub fn write_to(&self, dir: &Path) -> Result<LabCertFiles, LabError> {
        let files = LabCertFiles {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        };
        fs::write(&files.cert, &self.cert_pem)
            .map_err(LabError::io(format!("writing {}", files.cert.display())))?;
        write_private(&files.key, &self.key_pem)?;
        Ok(files)
    }

    pub fn cert_der(&self) -> Result<CertificateDer<'static>, LabError> {
        CertificateDer::from_pem_slice(self.cert_pem.as_bytes())
            .map_err(|e| LabError::Tls(format!("reading the certificate PEM: {e}")))
    }

    pub fn key_der(&self) -> Result<PrivateKeyDer<'static>, LabError> {
        PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes())
            .map_err(|e| LabError::Tls(format!("reading the private key PEM: {e}")))
    }

    /// A rustls server configuration presenting this certificate, offering http/1.1 only
    /// (the lab backend speaks nothing else).
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, LabError> {
        // An explicit provider: the process-wide default is ambiguous when several crates
        // enable different rustls providers.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| LabError::Tls(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(vec![self.cert_der()?], self.key_der()?)
            .map_err(|e| LabError::Tls(e.to_string()))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn localhost_cert_parses_back_and_builds_a_server_config() {
        let cert = LabCert::localhost().unwrap();
        assert!(cert.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(cert.key_pem.contains("PRIVATE KEY"));
        cert.server_config().unwrap();
    }

    #[test]
    fn a_lab_ca_issues_certificates_that_verify_against_it() {
        use rustls::client::danger::ServerCertVerifier as _;
        let ca = LabCa::new("lbprobe test CA").unwrap();
        let server = ca.server(&["localhost", "127.0.0.1"]).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(ca.cert_pem.as_bytes()).unwrap())
            .unwrap();
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::new(rustls::crypto::ring::default_provider()),
        )
        .build()
        .unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let now = rustls::pki_types::UnixTime::now();
        verifier
            .verify_server_cert(&server.cert_der().unwrap(), &[], &name, &[], now)
            .unwrap();
        // An expired one does not, and says why.
        let expired = ca.expired_server(&["localhost"]).unwrap();
        let err = verifier
            .verify_server_cert(&expired.cert_der().unwrap(), &[], &name, &[], now)
            .expect_err("expired");
        assert!(err.to_string().contains("expired"), "{err}");
        // Another CA's certificate does not.
        let other = LabCa::new("another CA")
            .unwrap()
            .server(&["localhost"])
            .unwrap();
        assert!(verifier
            .verify_server_cert(&other.cert_der().unwrap(), &[], &name, &[], now)
            .is_err());
        assert!(ca
            .client("client.lbprobe.test")
            .unwrap()
            .key_pem
            .contains("PRIVATE KEY"));
    }

    #[test]
    fn write_to_puts_both_files_in_the_dir() {
        let dir = tempfile::tempdir().unwrap();
        let cert = self_signed(&["localhost"]).unwrap();
        let files = cert.write_to(dir.path()).unwrap();
        assert_eq!(fs::read_to_string(&files.cert).unwrap(), cert.cert_pem);
        assert_eq!(fs::read_to_string(&files.key).unwrap(), cert.key_pem);
    }
}
