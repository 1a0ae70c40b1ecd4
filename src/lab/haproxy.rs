//! An HAProxy harness: a real haproxy on free loopback ports in a temp dir, in front of lab
//! backends, with its `option httplog` access log captured to a file, stopped when dropped.

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::cert::LabCert;
use super::process::{
    self, read_lossy, spawn_group, write_private, LabServer, Launch, LOG_TAIL_LINES, POLL_INTERVAL,
};
use super::LabError;

/// Timeouts of every harness haproxy, before [`HaproxySpec::defaults_extra`] (a later `timeout`
/// line of the same kind replaces these). HAProxy itself has no default for any of them (an
/// unset timeout waits forever and draws a warning), so the harness sets finite ones.
pub const DEFAULT_TIMEOUTS: &str = "timeout connect 5s\n    timeout client 30s\n    \
     timeout server 30s\n    timeout http-request 10s";

/// What haproxy should listen as: one frontend per entry, each with its own backend.
#[derive(Debug, Clone, Default)]
pub struct HaproxySpec {
    /// Each on its own port, in this order (see [`Haproxy::port`]).
    pub frontends: Vec<HaproxyFrontend>,
    /// Raw lines inside `global`, e.g. `tune.bufsize 8192`.
    pub global_extra: String,
    /// Raw lines inside `defaults`, after [`DEFAULT_TIMEOUTS`], e.g. `timeout server 1s`.
    pub defaults_extra: String,
}

#[derive(Debug, Clone, Default)]
pub struct HaproxyFrontend {
    /// Terminate TLS with a self-signed certificate for localhost.
    pub tls: bool,
    /// The backend's servers as URLs (`http://127.0.0.1:9000`, or `https://` for TLS to the
    /// server, unverified). None: a backend without servers, which haproxy answers with 503.
    pub servers: Vec<String>,
    /// Offer HTTP/2 on the TLS bind (`alpn h2,http/1.1`).
    pub http2: bool,
    /// Raw options appended to the `bind` line, e.g. `ca-file ca.pem verify required`.
    pub bind_extra: String,
    /// Raw lines inside this `frontend`.
    pub extra: String,
    /// Raw lines inside this frontend's `backend`.
    pub backend_extra: String,
}

impl HaproxyFrontend {
    pub fn proxy(server: impl Into<String>) -> Self {
        HaproxyFrontend {
            servers: vec![server.into()],
            ..HaproxyFrontend::default()
        }
    }

    /// A frontend whose backend has no server: haproxy's "No server is available" 503.
    pub fn no_server() -> Self {
        HaproxyFrontend::default()
    }

    pub fn tls(mut self, tls: bool) -> Self {
        self.tls = tls;
        self
    }

    /// TLS with HTTP/2 offered by ALPN.
    pub fn http2(mut self) -> Self {
        self.tls = true;
        self.http2 = true;
        self
    }

    pub fn extra(mut self, lines: impl Into<String>) -> Self {
        self.extra = lines.into();
        self
    }

    pub fn backend_extra(mut self, lines: impl Into<String>) -> Self {
        self.backend_extra = lines.into();
        self
    }
}

impl HaproxySpec {
    pub fn one(frontend: HaproxyFrontend) -> Self {
        HaproxySpec {
            frontends: vec![frontend],
            ..HaproxySpec::default()
        }
    }

    pub fn global(mut self, lines: impl Into<String>) -> Self {
        self.global_extra = lines.into();
        self
    }

    pub fn defaults(mut self, lines: impl Into<String>) -> Self {
        self.defaults_extra = lines.into();
        self
    }
}

/// The haproxy to run: `LBPROBE_HAPROXY` if set (and only it, so a wrong setting is not
/// silently replaced), else /usr/sbin/haproxy, else `haproxy` on PATH.
pub fn haproxy_binary() -> Option<PathBuf> {
    super::find_binary("LBPROBE_HAPROXY", "haproxy")
}

fn where_we_looked() -> String {
    super::where_we_looked("LBPROBE_HAPROXY", "haproxy")
}

/// A running haproxy; dropping it stops the process and removes the temp dir. Its ports are
/// its frontends', in [`HaproxySpec::frontends`] order.
pub type Haproxy = LabServer<Layout>;

/// Where everything of one haproxy lives inside its temp dir.
#[derive(Debug, Clone)]
pub struct Layout {
    dir: PathBuf,
    conf: PathBuf,
    /// haproxy's stdout: the access log (`log stdout format raw`).
    access_log: PathBuf,
    /// haproxy's stderr: startup alerts and warnings.
    stderr_log: PathBuf,
    /// Certificate and key in one PEM, as `bind ... ssl crt` wants them.
    pem: PathBuf,
}

impl Layout {
    fn new(dir: &Path) -> Layout {
        Layout {
            dir: dir.to_path_buf(),
            conf: dir.join("haproxy.cfg"),
            access_log: dir.join("access.log"),
            stderr_log: dir.join("stderr.log"),
            pem: dir.join("localhost.pem"),
        }
    }
}

impl Haproxy {
    pub fn start(spec: &HaproxySpec) -> Result<Haproxy, LabError> {
        let binary = haproxy_binary().ok_or_else(|| LabError::HaproxyNotFound {
            looked_for: where_we_looked(),
        })?;
        let dir = tempfile::Builder::new()
            .prefix("lbprobe-haproxy-")
            .tempdir()
            .map_err(LabError::io("creating a temp dir for haproxy"))?;
        let layout = Layout::new(dir.path());
        if spec.frontends.iter().any(|f| f.tls) {
            let cert = LabCert::localhost()?;
            write_private(&layout.pem, &format!("{}{}", cert.cert_pem, cert.key_pem))?;
        }
        Launch {
            what: "haproxy",
            binary: &binary,
            tls: spec.frontends.iter().map(|f| f.tls).collect(),
            port_taken: "cannot bind socket",
            conf: layout.conf.clone(),
            access_log: layout.access_log.clone(),
            log: layout.stderr_log.clone(),
            failed: |reason, log, log_tail| LabError::HaproxyFailed {
                reason,
                log,
                log_tail,
            },
        }
        .start(
            dir,
            layout,
            |layout, ports| {
                let conf = render_conf(spec, layout, ports)?;
                fs::write(&layout.conf, conf)
                    .map_err(LabError::io(format!("writing {}", layout.conf.display())))?;
                spawn(&binary, layout)
            },
            // A port that accepts may belong to someone else who took it first: only sockets
            // held by our child count.
            |_, child, ports| ports.iter().all(|port| owns_listener(child.id(), *port)),
            log_tail,
        )
    }

    /// Startup alerts and warnings.
    pub fn stderr_log(&self) -> String {
        read_lossy(&self.layout.stderr_log)
    }

    /// Polls the access log (bounded by `within`) until a line satisfies `want`: haproxy logs
    /// a request when it ends, which may trail the client's side of it by a moment.
    pub fn wait_log_line(&self, within: Duration, want: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(line) = self.access_log().lines().find(|l| want(l)) {
                return Some(line.to_string());
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }
}

/// `server` line arguments for a URL: `127.0.0.1:9000`, plus `ssl verify none` for https (lab
/// backends present self-signed certificates).
fn server_address(url: &str) -> Result<String, LabError> {
    let bad = |why: &str| LabError::Io {
        context: format!("haproxy server URL {url:?}"),
        source: io::Error::new(io::ErrorKind::InvalidInput, why.to_string()),
    };
    let parsed = url::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
    let host = parsed.host_str().ok_or_else(|| bad("no host"))?;
    let port = parsed
        .port_or_known_default()
        .ok_or_else(|| bad("no port"))?;
    match parsed.scheme() {
        "http" => Ok(format!("{host}:{port}")),
        "https" => Ok(format!("{host}:{port} ssl verify none")),
        other => Err(bad(&format!("scheme {other} (expected http or https)"))),
    }
}

fn render_conf(spec: &HaproxySpec, layout: &Layout, ports: &[u16]) -> Result<String, LabError> {
    let mut conf = String::new();
    // The access log goes to stdout, which the harness captures to a file: no syslog needed.
    conf.push_str("global\n    maxconn 256\n    log stdout format raw local0\n");
    if !spec.global_extra.is_empty() {
        let _ = writeln!(conf, "    {}", spec.global_extra);
    }
    let _ = write!(
        conf,
        "\ndefaults\n    mode http\n    log global\n    option httplog\n    option dontlognull\n    {DEFAULT_TIMEOUTS}\n"
    );
    if !spec.defaults_extra.is_empty() {
        let _ = writeln!(conf, "    {}", spec.defaults_extra);
    }
    for (i, (frontend, port)) in spec.frontends.iter().zip(ports).enumerate() {
        let bind_extra = if frontend.bind_extra.is_empty() {
            String::new()
        } else {
            format!(" {}", frontend.bind_extra)
        };
        let ssl = match (frontend.tls, frontend.http2) {
            (true, false) => format!(" ssl crt \"{}\"", layout.pem.display()),
            (true, true) => format!(" ssl crt \"{}\" alpn h2,http/1.1", layout.pem.display()),
            _ => String::new(),
        };
        let _ = write!(
            conf,
            "\nfrontend fe{i}\n    bind 127.0.0.1:{port}{ssl}{bind_extra}\n    default_backend be{i}\n"
        );
        if !frontend.extra.is_empty() {
            let _ = writeln!(conf, "    {}", frontend.extra);
        }
        let _ = writeln!(conf, "\nbackend be{i}");
        for (j, server) in frontend.servers.iter().enumerate() {
            let _ = writeln!(conf, "    server s{j} {}", server_address(server)?);
        }
        if !frontend.backend_extra.is_empty() {
            let _ = writeln!(conf, "    {}", frontend.backend_extra);
        }
    }
    Ok(conf)
}

fn spawn(binary: &Path, layout: &Layout) -> Result<Child, LabError> {
    // HAProxy logs to stdout: a fresh access log per attempt.
    let stdout = fs::File::create(&layout.access_log).map_err(LabError::io(format!(
        "creating {}",
        layout.access_log.display()
    )))?;
    let mut command = Command::new(binary);
    command
        .arg("-f")
        .arg(&layout.conf)
        // Foreground, no daemon: the child is haproxy itself, and its exit is ours to see.
        .arg("-db")
        .current_dir(&layout.dir);
    spawn_group(command, binary, Stdio::from(stdout), &layout.stderr_log)
}

/// Whether process `pid` holds the listening socket on 127.0.0.1:`port` (Linux /proc).
fn owns_listener(pid: u32, port: u16) -> bool {
    let Some(inodes) = listening_inodes(&read_lossy(Path::new("/proc/net/tcp")), port) else {
        return false;
    };
    let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten().any(|fd| {
        fs::read_link(fd.path()).is_ok_and(|target| {
            let target = target.to_string_lossy();
            inodes.iter().any(|i| target == format!("socket:[{i}]"))
        })
    })
}

/// Inodes of sockets listening on 127.0.0.1:`port` in /proc/net/tcp's text.
fn listening_inodes(proc_net_tcp: &str, port: u16) -> Option<Vec<String>> {
    // 0100007F is 127.0.0.1 in the kernel's little-endian hex; 0A is TCP_LISTEN.
    let local = format!("0100007F:{port:04X}");
    let inodes: Vec<String> = proc_net_tcp
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            (fields.len() > 9 && fields[1] == local && fields[3] == "0A")
                .then(|| fields[9].to_string())
        })
        .collect();
    (!inodes.is_empty()).then_some(inodes)
}

/// The last lines of stderr (alerts) and stdout (the log), for startup failures.
fn log_tail(layout: &Layout) -> String {
    process::log_tail(&[&layout.stderr_log, &layout.access_log], LOG_TAIL_LINES)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conf_has_one_backend_per_frontend_and_logs_to_stdout() {
        let spec = HaproxySpec {
            frontends: vec![
                HaproxyFrontend::proxy("http://127.0.0.1:9000").tls(true),
                HaproxyFrontend::no_server().extra("http-request deny if { path /x }"),
                HaproxyFrontend {
                    servers: vec!["https://127.0.0.1:9001".into(), "http://[::1]:9002".into()],
                    ..HaproxyFrontend::default()
                },
            ],
            global_extra: "tune.bufsize 8192".into(),
            defaults_extra: "timeout server 1s".into(),
        };
        let layout = Layout::new(Path::new("/tmp/lab"));
        let conf = render_conf(&spec, &layout, &[4001, 4002, 4003]).unwrap();
        assert!(conf.contains("bind 127.0.0.1:4001 ssl crt \"/tmp/lab/localhost.pem\"\n"));
        assert!(conf.contains("bind 127.0.0.1:4002\n"));
        assert!(conf.contains("frontend fe1\n"));
        assert!(conf.contains("http-request deny if { path /x }"));
        assert!(conf.contains("backend be0\n    server s0 127.0.0.1:9000\n"));
        // A backend without servers is just the section header.
        assert!(conf.contains("backend be1\n\nfrontend fe2"));
        assert!(conf.contains("server s0 127.0.0.1:9001 ssl verify none\n"));
        assert!(conf.contains("server s1 [::1]:9002\n"));
        assert!(conf.contains("log stdout format raw local0"));
        assert!(conf.contains("option httplog"));
        assert!(conf.contains("tune.bufsize 8192"));
        // The spec's timeout comes after the harness's, so it wins.
        let harness = conf.find("timeout server 30s").unwrap();
        assert!(conf.find("timeout server 1s").unwrap() > harness);
    }

    #[test]
    fn bad_server_urls_are_errors_not_config_lines() {
        let layout = Layout::new(Path::new("/tmp/lab"));
        for url in ["ftp://127.0.0.1:21", "not a url"] {
            let spec = HaproxySpec::one(HaproxyFrontend::proxy(url));
            assert!(render_conf(&spec, &layout, &[4001]).is_err(), "{url}");
        }
    }

    #[test]
    fn listening_inodes_reads_loopback_listeners_only() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 111 1 0 100 0 0 10 0\n\
   1: 0100007F:1F90 0100007F:C000 01 00000000:00000000 00:00000000 00000000     0        0 222 1 0 100 0 0 10 0\n\
   2: 00000000:1F91 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 333 1 0 100 0 0 10 0\n";
        assert_eq!(listening_inodes(table, 8080), Some(vec!["111".to_string()]));
        assert_eq!(listening_inodes(table, 8081), None);
    }
}
