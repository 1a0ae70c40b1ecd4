//! Runs a host tool (`ip`, `iptables-save`, `nft`) with bounded time and output, and finds it
//! where root's tools live even when PATH lacks the sbin directories.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::Unsupported;

/// More than any sane ruleset or route listing; a bound, not an expectation.
const MAX_OUTPUT: u64 = 4 * 1024 * 1024;
const TIMEOUT: Duration = Duration::from_secs(5);

/// The tool's path, from PATH then the sbin directories.
pub fn find(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Run `name args` and return its stdout; `what` names the fact for the Unsupported.
pub fn output(what: &str, name: &str, args: &[&str]) -> Result<String, Unsupported> {
    let path =
        find(name).ok_or_else(|| Unsupported::new(what, format!("`{name}` is not installed")))?;
    let shown = format!("{name} {}", args.join(" "));
    let mut child = Command::new(&path)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Unsupported::new(what, format!("cannot run `{shown}`: {e}")))?;
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    // Readers on threads so that a chatty tool cannot block on a full pipe while we wait.
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(s) = stdout.as_mut() {
            let _ = s.take(MAX_OUTPUT).read_to_end(&mut buf);
        }
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(s) = stderr.as_mut() {
            let _ = s.take(64 * 1024).read_to_end(&mut buf);
        }
        buf
    });
    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let out = out_reader.join().unwrap_or_default();
    let err = err_reader.join().unwrap_or_default();
    match status {
        None => Err(Unsupported::new(
            what,
            format!("`{shown}` did not finish within {} s", TIMEOUT.as_secs()),
        )),
        Some(s) if !s.success() => Err(Unsupported::new(
            what,
            format!(
                "`{shown}` failed ({s}): {}",
                String::from_utf8_lossy(&err).trim()
            ),
        )),
        Some(_) => Ok(String::from_utf8_lossy(&out).into_owned()),
    }
}
