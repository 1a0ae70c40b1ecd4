//! Free loopback ports for processes (nginx) that must be told a port rather than bind :0.

use std::net::{Ipv4Addr, TcpListener};

use super::LabError;

/// A port that was free on 127.0.0.1 a moment ago. Another process may take it before the caller
/// binds it; callers that hand it to a child process must detect the clash and retry.
pub fn free_port() -> Result<u16, LabError> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(LabError::io("binding 127.0.0.1:0 to find a free port"))?;
    let port = listener
        .local_addr()
        .map_err(LabError::io("reading the port of 127.0.0.1:0"))?
        .port();
    Ok(port)
}
