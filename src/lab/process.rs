//! What the nginx and HAProxy harnesses share about the server processes they start: free
//! ports to hand them, readiness polls, stopping the whole process group, reading their logs
//! with a bound, and writing key material only the owner can read.

use std::fs;
use std::io::{self, Read as _};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use super::ports::free_port;
use super::LabError;

/// Between readiness and exit polls.
pub(crate) const POLL_INTERVAL: Duration = Duration::from_millis(20);
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_millis(200);
/// A log or config read back for a test or an error message never takes more than this.
const MAX_LOG_READ: u64 = 16 * 1024 * 1024;

/// `count` different free loopback ports.
pub(crate) fn distinct_free_ports(count: usize) -> Result<Vec<u16>, LabError> {
    let mut ports: Vec<u16> = Vec::with_capacity(count);
    // The kernel rarely hands out the same ephemeral port twice in a row; a few spare tries
    // cover it without an unbounded loop.
    for _ in 0..count * 4 + 4 {
        if ports.len() == count {
            break;
        }
        let port = free_port()?;
        if !ports.contains(&port) {
            ports.push(port);
        }
    }
    if ports.len() < count {
        return Err(LabError::Io {
            context: format!("finding {count} distinct free ports on 127.0.0.1"),
            source: io::Error::new(io::ErrorKind::AddrInUse, "the same ports kept coming back"),
        });
    }
    Ok(ports)
}

/// Whether 127.0.0.1:`port` accepts a connection now.
pub(crate) fn accepts(port: u16) -> bool {
    TcpStream::connect_timeout(
        &SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        CONNECT_TIMEOUT,
    )
    .is_ok()
}

/// TERM to the whole group `child` leads (nginx's master then waits for its workers; HAProxy
/// stops at once), KILL to the group if that takes too long, then reap.
pub(crate) fn stop_group(child: &mut Child) {
    if matches!(child.try_wait(), Ok(Some(_))) {
        return;
    }
    let group = child.id();
    signal_group(group, libc::SIGTERM);
    let deadline = Instant::now() + STOP_TIMEOUT;
    while Instant::now() < deadline {
        if matches!(child.try_wait(), Ok(Some(_)) | Err(_)) {
            return;
        }
        std::thread::sleep(POLL_INTERVAL);
    }
    // Still before reaping the leader, so the group id cannot have been reused.
    signal_group(group, libc::SIGKILL);
    let _ = child.kill();
    let _ = child.wait();
}

/// Sends `signal` to the process group `group` leads. Refuses groups 0 and 1: kill(0, ..) would
/// hit our own group and kill(-1, ..) every process we may signal.
#[allow(unsafe_code)]
fn signal_group(group: u32, signal: libc::c_int) {
    let Ok(group) = libc::pid_t::try_from(group) else {
        return;
    };
    if group <= 1 {
        return;
    }
    // SAFETY: kill(2) takes two integers and touches no memory of this process; the negative
    // pid addresses exactly the group of the server we spawned with process_group(0).
    unsafe {
        libc::kill(-group, signal);
    }
}

/// A file's text (lossy UTF-8), at most [`MAX_LOG_READ`] bytes of it; empty when unreadable.
pub(crate) fn read_lossy(path: &Path) -> String {
    let Ok(file) = fs::File::open(path) else {
        return String::new();
    };
    let mut bytes = Vec::new();
    let _ = file.take(MAX_LOG_READ).read_to_end(&mut bytes);
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Writes `contents` to a file only its owner may read: lab keys are throwaway, but a shared
/// /tmp is no place for a readable private key.
#[cfg(unix)]
pub(crate) fn write_private(path: &Path, contents: &str) -> Result<(), LabError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(LabError::io(format!("creating {}", path.display())))?;
    file.write_all(contents.as_bytes())
        .map_err(LabError::io(format!("writing {}", path.display())))
}

#[cfg(not(unix))]
pub(crate) fn write_private(path: &Path, contents: &str) -> Result<(), LabError> {
    fs::write(path, contents).map_err(LabError::io(format!("writing {}", path.display())))
}
