//! The rate family's load generator at top speed against one URL, for bench/rate-vs-wrk.sh:
//! `cargo run --release --example rate_bench -- http://127.0.0.1:8080/ 32 10` sends back to back
//! over 32 keep-alive connections for 10 s and prints the rate it reached.

use std::time::Duration;

use lbprobe::probe::load::{flat_out, LoadTarget};
use lbprobe::target::{Role, Target};
use lbprobe::transport::{Bounds, Endpoint, Wire};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: rate_bench URL [CONNECTIONS] [SECONDS]";
    let url = args.next().ok_or_else(|| anyhow::anyhow!(usage))?;
    let connections: usize = args.next().map_or(Ok(32), |a| a.parse())?;
    let seconds: u64 = args.next().map_or(Ok(10), |a| a.parse())?;
    let target = Target::parse(Role::Listener, &url)?;
    let wire = if target.is_tls() {
        Wire::Tls {
            server_name: target.server_name().to_string(),
            tls: lbprobe::transport::tls::TlsSettings::insecure(),
        }
    } else {
        Wire::Plain
    };
    let load = LoadTarget {
        endpoint: Endpoint {
            host: target.host.clone(),
            port: target.port,
            wire,
            family: None,
        },
        request: format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: lbprobe-bench\r\n\r\n",
            target.path,
            target.host_header()
        )
        .into_bytes(),
        bounds: Bounds::default(),
    };
    let rt = tokio::runtime::Runtime::new()?;
    let stats = rt.block_on(flat_out(&load, connections, Duration::from_secs(seconds)));
    let answered: u32 = stats.answered.values().sum();
    println!(
        "lbprobe  {:>10.0} requests/s  ({} requests, {} answered, {} errors, {} connections, p50 {:.2} ms, p95 {:.2} ms)",
        stats.achieved_rps,
        stats.sent,
        answered,
        stats.error_count(),
        stats.connections,
        stats.p50_ms.unwrap_or(0.0),
        stats.p95_ms.unwrap_or(0.0),
    );
    Ok(())
}
