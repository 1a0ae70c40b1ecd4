//! The demo's lab backend on loopback with a chosen refusal delay, for bench/floor.py:
//! `cargo run --release --example lab_backend -- 2.5 --nginx` prints one JSON line
//! (`{"backend": URL, "listener": URL or null}`) and answers until stdin closes (the bench script
//! holds it), every refusal (400 and above) after 2.5 s while healthy answers stay quick: a
//! backend slow to say no. With `--nginx`, real nginx (src/lab/nginx.rs, its own default
//! timeouts, plain HTTP) listens in front of it.

use std::io::Read as _;
use std::time::Duration;

use lbprobe::lab::{LabBackend, Nginx, NginxServer, NginxSpec};

fn main() -> anyhow::Result<()> {
    let usage = "usage: lab_backend [REFUSAL_DELAY_SECONDS] [--nginx]";
    let args: Vec<String> = std::env::args().skip(1).collect();
    let with_nginx = args.iter().any(|a| a == "--nginx");
    let delay: f64 = args
        .iter()
        .find(|a| *a != "--nginx")
        .map_or(Ok(0.0), |a| a.parse())
        .map_err(|_| anyhow::anyhow!(usage))?;
    let rt = tokio::runtime::Runtime::new()?;
    let backend = rt.block_on(LabBackend::start(
        lbprobe::demo::backend_config().refusal_delay(Duration::from_secs_f64(delay)),
    ))?;
    let nginx = if with_nginx {
        Some(Nginx::start(&NginxSpec::one(NginxServer::proxy(
            backend.url(),
        )))?)
    } else {
        None
    };
    println!(
        "{}",
        serde_json::json!({
            "backend": backend.url(),
            "listener": nginx.as_ref().map(|n| n.url(0)),
        })
    );
    // The backend runs on the runtime's threads; this one waits for stdin to close.
    let mut sink = Vec::new();
    std::io::stdin().read_to_end(&mut sink)?;
    drop(nginx);
    drop(backend);
    Ok(())
}
