//! rustls client configurations: verified against the web PKI, or explicitly insecure.
