//! One request over one fresh connection, with timings and a bounded read.

use super::{Bounds, ConnEnd, Endpoint, Exchange, Timings};

/// Connect, (handshake,) write `request` exactly, read until the response is complete, the
/// server closes, the size bound or the deadline. Never fails: problems are in the result.
pub async fn exchange(endpoint: &Endpoint, request: &[u8], bounds: &Bounds) -> Exchange {
    let _ = (request, bounds);
    Exchange {
        endpoint: format!("{}:{}", endpoint.host, endpoint.port),
        tls: false,
        timings: Timings::default(),
        bytes_out: 0,
        bytes_in: 0,
        end: ConnEnd::Io("not implemented".into()),
        response: None,
        raw_prefix: String::new(),
        tcp_rtt_us: None,
        tcp_retransmits: None,
    }
}
