//! Probes send exactly the bytes they claim: a loopback server records every connection's
//! bytes, and each recorded request of the report must be among them.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lbprobe::probe::{self, Family, Limits, Plan, ProbeSpec};
use lbprobe::profile::Profile;
use lbprobe::target::{Role, Target};
use lbprobe::transport::unescape_bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Accepts connections, records what each sent until a short idle gap, answers 200.
async fn capture_server() -> (String, Arc<Mutex<Vec<Vec<u8>>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let sink = sink.clone();
            tokio::spawn(async move {
                let mut got = Vec::new();
                let mut buf = [0u8; 65536];
                // The request is complete once the client has been quiet for a moment; the
                // bound keeps a stuck client from holding the task forever.
                for _ in 0..1000 {
                    match tokio::time::timeout(Duration::from_millis(150), sock.read(&mut buf))
                        .await
                    {
                        Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
                        Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
                    }
                }
                sink.lock().unwrap().push(got);
                let _ = sock
                    .write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                    )
                    .await;
            });
        }
    });
    (format!("http://{addr}/probe?x=1"), seen)
}

#[tokio::test]
async fn malformed_and_header_size_probes_send_the_bytes_they_report() {
    let (url, seen) = capture_server().await;
    let plan = Plan::new(Some(Target::parse(Role::Listener, &url).unwrap()), None)
        .with_profile(Profile::clb())
        .with_probes(vec![
            ProbeSpec::default_for(Family::Malformed),
            ProbeSpec::HeaderSize {
                bisect: false,
                min: 1024,
                max: 4096,
            },
        ])
        .with_limits(Limits {
            request_timeout: Duration::from_secs(3),
            max_rate: 500.0,
            ..Limits::default()
        });
    let out = probe::run(&plan, Arc::new(|_| {})).await;
    let received: BTreeSet<Vec<u8>> = seen.lock().unwrap().iter().cloned().collect();
    let mut checked = 0;
    for o in out
        .observations
        .iter()
        .filter(|o| o.request.exact && o.request.bytes > 0)
    {
        let bytes = unescape_bytes(&o.request.text).unwrap();
        assert_eq!(
            bytes.len(),
            o.request.bytes,
            "{}: recorded length",
            o.variant
        );
        assert!(
            received.contains(&bytes),
            "{} ({}): the server never received the reported bytes {:?}",
            o.variant,
            o.id,
            o.request.text
        );
        checked += 1;
    }
    // Every template that sends a byte (`rl-zero-bytes` sends none; the keep-alive sequences
    // run only when named), the baseline, and the at-limit/past-limit/small header requests.
    let sending = lbprobe::probe::templates::malformed()
        .iter()
        .filter(|t| !t.request.is_empty() && !t.is_sequence())
        .count();
    assert!(sending < lbprobe::probe::templates::malformed().len());
    assert!(checked >= sending + 3, "only {checked} checked");
    let lower = out
        .observations
        .iter()
        .find(|o| o.variant == "lowercase-method")
        .unwrap();
    assert!(lower
        .request
        .text
        .starts_with("get /probe?x=1 HTTP/1.1\\r\\n"));
}
