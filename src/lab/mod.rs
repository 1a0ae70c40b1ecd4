//! The lab: fault-injecting backends and nginx, HAProxy and Apache httpd harnesses on
//! loopback, for `demo` and tests.
//!
//! Everything here binds 127.0.0.1 only and cleans up after itself: a [`LabBackend`] stops its
//! accept loop when dropped, an [`Nginx`] stops its master and workers when dropped, a
//! [`Haproxy`] stops its process when dropped, an [`Apache`] its parent and children.

pub mod apache;
pub mod backend;
pub mod cert;
pub mod h2_flood;
pub mod haproxy;
pub mod hostile;
pub mod netns;
pub mod nginx;
pub mod ports;
mod process;
pub mod request;
pub mod unaccepting;

use std::io;
use std::path::PathBuf;

pub use apache::{apache_binary, Apache, ApacheSpec, ApacheVhost};
pub use backend::{
    serve, BackendConfig, Fault, FaultRule, HandshakeFault, IdleClose, KeepAlive, LabBackend,
    SeenRequest, ANNOUNCED_LENGTH, DRIP_BODY_BYTES, MALFORMED_HEADER_LINE, MALFORMED_STATUS_LINE,
    MAX_HOSTILE_TIME, SHORT_BODY, SPACE_BEFORE_COLON_LINE,
};
pub use cert::{self_signed, LabCert, LabCertFiles};
pub use haproxy::{haproxy_binary, Haproxy, HaproxyFrontend, HaproxySpec, DEFAULT_TIMEOUTS};
pub use nginx::{nginx_binary, Nginx, NginxServer, NginxSpec, ACCESS_LOG_FORMAT};
pub use ports::free_port;
pub use process::LabServer;
pub use unaccepting::UnacceptingListener;

/// Find a server binary: `$env_var` if set (and only that), then `/usr/sbin/NAME`, then PATH.
pub(crate) fn find_binary(env_var: &str, name: &str) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(env_var).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        return path.is_file().then_some(path);
    }
    let system = PathBuf::from("/usr/sbin").join(name);
    if system.is_file() {
        return Some(system);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// Where [`find_binary`] looked, for the "not found" error.
pub(crate) fn where_we_looked(env_var: &str, name: &str) -> String {
    match std::env::var_os(env_var).filter(|p| !p.is_empty()) {
        Some(path) => format!("{env_var}={}", std::path::Path::new(&path).display()),
        None => format!("/usr/sbin/{name} and `{name}` on PATH"),
    }
}

/// Why the lab could not do what it was asked. Network misbehaviour of clients is never an
/// error here: the backend answers it; these are failures of the lab itself.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error(
        "nginx not found (looked for {looked_for}); install it with `apt-get install nginx-light` \
         or point LBPROBE_NGINX at an nginx binary"
    )]
    NginxNotFound { looked_for: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    #[error("nginx failed: {reason}\n--- tail of {log} ---\n{log_tail}")]
    NginxFailed {
        reason: String,
        log: PathBuf,
        log_tail: String,
    },
    #[error(
        "haproxy not found (looked for {looked_for}); install it with `apt-get install haproxy` \
         or point LBPROBE_HAPROXY at a haproxy binary"
    )]
    HaproxyNotFound { looked_for: String },
    #[error("haproxy failed: {reason}\n--- tail of {log} ---\n{log_tail}")]
    HaproxyFailed {
        reason: String,
        log: PathBuf,
        log_tail: String,
    },
    #[error(
        "apache httpd not found (looked for {looked_for}); install it with `apt-get install \
         apache2` or point LBPROBE_APACHE at an httpd binary"
    )]
    ApacheNotFound { looked_for: String },
    #[error("apache httpd failed: {reason}\n--- tail of {log} ---\n{log_tail}")]
    ApacheFailed {
        reason: String,
        log: PathBuf,
        log_tail: String,
    },
    #[error("certificate: {0}")]
    Cert(#[from] rcgen::Error),
    #[error("TLS setup: {0}")]
    Tls(String),
}

impl LabError {
    /// Wraps an I/O error with what we were doing, so the message says where it happened.
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(io::Error) -> LabError {
        let context = context.into();
        move |source| LabError::Io { context, source }
    }
}
