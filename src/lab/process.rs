//! What the nginx, HAProxy and Apache harnesses share about the server processes they start:
//! free ports to hand them, spawning in a group of their own, readiness polls, stopping the
//! whole group, reading their logs with a bound, and writing key material only the owner can
//! read.

use std::fs;
use std::io::{self, Read as _};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::ports::free_port;
use super::LabError;

/// Between readiness and exit polls.
pub(crate) const POLL_INTERVAL: Duration = Duration::from_millis(20);
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a server may take to hold its ports.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(5);
/// Startups lost to another process taking a chosen port before the server bound it.
const MAX_ATTEMPTS: usize = 4;
/// Lines of each log shown when a startup fails.
pub(crate) const LOG_TAIL_LINES: usize = 30;
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

/// How a server's startup ended.
pub(crate) enum Startup {
    Ready,
    Exited(ExitStatus),
    TimedOut,
}

/// A server started in the foreground, in a process group of its own (so that stopping it
/// reaches its workers too), stdin closed, stdout to `stdout` and stderr to the file
/// `stderr_log` (created fresh, so a tail names this attempt's failure).
pub(crate) fn spawn_group(
    mut command: Command,
    binary: &Path,
    stdout: Stdio,
    stderr_log: &Path,
) -> Result<Child, LabError> {
    let stderr = fs::File::create(stderr_log)
        .map_err(LabError::io(format!("creating {}", stderr_log.display())))?;
    command
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .process_group(0)
        .spawn()
        .map_err(LabError::io(format!("starting {}", binary.display())))
}

/// Polls until the server holds its ports (`holds`: its own sign, such as a pid file written
/// only after binding, since a port that accepts may belong to someone else) and every port
/// accepts; or until it exits, or `within` passes.
pub(crate) fn wait_ready(
    child: &mut Child,
    ports: &[u16],
    within: Duration,
    what: &str,
    holds: impl Fn(&Child) -> bool,
) -> Result<Startup, LabError> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child
            .try_wait()
            .map_err(LabError::io(format!("waiting for {what}")))?
        {
            return Ok(Startup::Exited(status));
        }
        if holds(child) && ports.iter().all(|port| accepts(*port)) {
            return Ok(Startup::Ready);
        }
        if Instant::now() >= deadline {
            return Ok(Startup::TimedOut);
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// Whether `path` holds a pid: servers that write it after binding every socket.
pub(crate) fn pid_written(path: &Path) -> bool {
    fs::read_to_string(path).is_ok_and(|p| !p.trim().is_empty())
}

/// The last `lines` lines of each log, in order, for startup failures.
pub(crate) fn log_tail(paths: &[&Path], lines: usize) -> String {
    let mut tail = String::new();
    for path in paths {
        let text = read_tail(path, 64 * 1024);
        let all: Vec<&str> = text.lines().collect();
        for line in &all[all.len().saturating_sub(lines)..] {
            tail.push_str(line);
            tail.push('\n');
        }
    }
    tail
}

/// The last `max` bytes of a file (lossy UTF-8): a log's tail without reading all of it.
pub(crate) fn read_tail(path: &Path, max: u64) -> String {
    use std::io::Seek as _;
    let Ok(mut file) = fs::File::open(path) else {
        return String::new();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    if len > max {
        let _ = file.seek(io::SeekFrom::Start(len - max));
    }
    let mut bytes = Vec::new();
    let _ = file.take(max).read_to_end(&mut bytes);
    String::from_utf8_lossy(&bytes).into_owned()
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

/// A server a harness started (nginx, HAProxy, Apache httpd): its process group, its ports in
/// the order of the spec, and its files laid out in a temp dir as `L` says. Dropping it stops
/// the whole group, then removes the directory.
#[derive(Debug)]
pub struct LabServer<L> {
    child: Child,
    ports: Vec<u16>,
    /// Which ports listen with TLS.
    tls: Vec<bool>,
    conf: PathBuf,
    access_log: PathBuf,
    pub(super) layout: L,
    // Last, so the directory goes after the process is stopped.
    dir: tempfile::TempDir,
}

/// How a harness starts its server, for [`Launch::start`].
pub(crate) struct Launch<'a> {
    /// Its config and access log, read back by [`LabServer::config`] and
    /// [`LabServer::access_log`].
    pub conf: PathBuf,
    pub access_log: PathBuf,
    /// The server's name in messages: `nginx`.
    pub what: &'static str,
    pub binary: &'a Path,
    /// The ports it listens on, one a server block in the spec's order, and which speak TLS.
    pub tls: Vec<bool>,
    /// What its logs say when a chosen port was taken first: the attempt is tried again.
    pub port_taken: &'static str,
    /// The log a failure names.
    pub log: PathBuf,
    pub failed: fn(String, PathBuf, String) -> LabError,
}

impl Launch<'_> {
    /// Start the server on fresh free ports: `spawn` writes its config for the ports and
    /// spawns it, `holds` says the child holds them (its own sign: a port that accepts may
    /// belong to someone else), `tail` reads its logs' last lines for a failure. A startup lost
    /// to a taken port is tried again, [`MAX_ATTEMPTS`] times at most.
    pub(crate) fn start<L>(
        self,
        dir: tempfile::TempDir,
        layout: L,
        mut spawn: impl FnMut(&L, &[u16]) -> Result<Child, LabError>,
        holds: impl Fn(&L, &Child, &[u16]) -> bool,
        tail: impl Fn(&L) -> String,
    ) -> Result<LabServer<L>, LabError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let ports = distinct_free_ports(self.tls.len())?;
            let mut child = spawn(&layout, &ports)?;
            let ready = wait_ready(&mut child, &ports, STARTUP_TIMEOUT, self.what, |c| {
                holds(&layout, c, &ports)
            })?;
            let reason = match ready {
                Startup::Ready => {
                    return Ok(LabServer {
                        child,
                        ports,
                        tls: self.tls,
                        conf: self.conf,
                        access_log: self.access_log,
                        layout,
                        dir,
                    })
                }
                Startup::Exited(status) => {
                    if tail(&layout).contains(self.port_taken) && attempt < MAX_ATTEMPTS {
                        continue;
                    }
                    format!("{} exited during startup ({status})", self.binary.display())
                }
                Startup::TimedOut => {
                    stop_group(&mut child);
                    let shown: Vec<String> = ports.iter().map(u16::to_string).collect();
                    format!(
                        "{} did not accept on 127.0.0.1 ports {} within {} s",
                        self.binary.display(),
                        shown.join(", "),
                        STARTUP_TIMEOUT.as_secs()
                    )
                }
            };
            return Err((self.failed)(reason, self.log, tail(&layout)));
        }
    }
}

impl<L> LabServer<L> {
    /// The port of server block `i` (in the spec's order). Panics if there is no block `i`,
    /// like slice indexing: asking for one the spec did not have is a bug in the caller.
    pub fn port(&self, i: usize) -> u16 {
        self.ports[i]
    }

    pub fn addr(&self, i: usize) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port(i)))
    }

    /// `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT` for server block `i`.
    pub fn url(&self, i: usize) -> String {
        let scheme = if self.tls[i] { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port(i))
    }

    /// The process id of the server's leader (nginx's master, httpd's parent).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The temp dir holding the config, the logs and any certificate.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn config(&self) -> String {
        read_lossy(&self.conf)
    }

    /// The access log so far.
    pub fn access_log(&self) -> String {
        read_lossy(&self.access_log)
    }
}

impl<L> Drop for LabServer<L> {
    fn drop(&mut self) {
        stop_group(&mut self.child);
    }
}
