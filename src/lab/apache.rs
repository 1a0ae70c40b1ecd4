//! An Apache httpd harness: a real httpd 2.4 with mod_proxy and mod_proxy_http on free loopback
//! ports in a temp dir, in front of lab backends, stopped when the guard is dropped. As
//! production ones are set up, a virtual host can listen with TLS on its own certificate, proxy
//! to an `https://` backend (mod_ssl's `SSLProxyEngine`), and spread requests over a
//! `balancer://` pool (mod_proxy_balancer, by request count).
//!
//! Apache's own answers as a listener, for attribution tests: 503 "Service Unavailable" when the
//! backend refuses the connection, 502 "Bad Gateway" when its answer is malformed, its own 414
//! and 400 pages above `LimitRequestLine` and `LimitRequestFieldSize`; relayed answers keep the
//! backend's `Server` header.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::cert::LabCert;
use super::process::{
    self, pid_written, read_lossy, spawn_group, LabServer, Launch, LOG_TAIL_LINES,
};
use super::LabError;

/// The harness's `Timeout` (how long Apache waits for a client's request and, through
/// `ProxyTimeout`, for a backend's answer) before [`ApacheSpec::global_extra`], whose own
/// `Timeout` or `ProxyTimeout` line replaces it: short, so tests never wait Apache's 60 s.
pub const DEFAULT_TIMEOUT: &str = "Timeout 10";

/// Where distributions keep httpd's modules, tried in order after `LBPROBE_APACHE_MODULES`.
const MODULE_DIRS: &[&str] = &[
    "/usr/lib/apache2/modules",
    "/usr/lib64/httpd/modules",
    "/usr/lib/httpd/modules",
    "/usr/libexec/apache2",
];
/// The modules every harness httpd loads; the rest (mod_log_config, mod_unixd) are built in
/// on Debian and Fedora alike.
const MODULES: &[(&str, &str)] = &[
    ("mpm_event_module", "mod_mpm_event.so"),
    ("authz_core_module", "mod_authz_core.so"),
    ("proxy_module", "mod_proxy.so"),
    ("proxy_http_module", "mod_proxy_http.so"),
];
/// Loaded only when a virtual host has a balancer pool: the shared memory the balancer keeps
/// its members' state in, and the round robin by request count.
const BALANCER_MODULES: &[(&str, &str)] = &[
    ("slotmem_shm_module", "mod_slotmem_shm.so"),
    ("proxy_balancer_module", "mod_proxy_balancer.so"),
    ("lbmethod_byrequests_module", "mod_lbmethod_byrequests.so"),
];
/// Loaded only when TLS is spoken on either side.
const SSL_MODULES: &[(&str, &str)] = &[("ssl_module", "mod_ssl.so")];

/// The access-log format: the request line, the status Apache sent, the bytes and the time
/// taken in microseconds.
pub const ACCESS_LOG_FORMAT: &str = "%h %t \\\"%r\\\" %>s %b %D";

/// What httpd should listen as.
#[derive(Debug, Clone, Default)]
pub struct ApacheSpec {
    /// One `<VirtualHost>` each, each on its own port, in this order (see [`Apache::port`]).
    pub vhosts: Vec<ApacheVhost>,
    /// Raw directives at the server level, after the harness's own (so a `Timeout` here wins),
    /// e.g. `LimitRequestLine 2048`.
    pub global_extra: String,
}

#[derive(Debug, Clone, Default)]
pub struct ApacheVhost {
    /// The backend `ProxyPass /` sends to, `http://127.0.0.1:9000` or `https://…` (the vhost's
    /// `extra` then says `SSLProxyEngine on`); `None` (and no `members`) serves nothing
    /// (Apache's own 404 for every path).
    pub upstream: Option<String>,
    /// Members of a `balancer://` pool `ProxyPass /` sends to instead of `upstream`, one
    /// `BalancerMember` each, in this order.
    pub members: Vec<String>,
    /// Worker parameters added to the `ProxyPass` line (to each `BalancerMember` line for a
    /// pool), e.g. `timeout=1`.
    pub pass_options: String,
    /// Listen with TLS (mod_ssl's `SSLEngine`), presenting this certificate.
    pub cert: Option<LabCert>,
    /// Raw directives inside this `<VirtualHost>`, before `ProxyPass`.
    pub extra: String,
}

impl ApacheVhost {
    pub fn proxy(upstream: impl Into<String>) -> Self {
        ApacheVhost {
            upstream: Some(upstream.into()),
            ..ApacheVhost::default()
        }
    }

    /// Round robin by request over `members` (`<Proxy balancer://…>` with `lbmethod=byrequests`).
    pub fn balance(members: &[String]) -> Self {
        ApacheVhost {
            members: members.to_vec(),
            ..ApacheVhost::default()
        }
    }

    pub fn extra(mut self, directives: impl Into<String>) -> Self {
        self.extra = directives.into();
        self
    }

    pub fn pass_options(mut self, options: impl Into<String>) -> Self {
        self.pass_options = options.into();
        self
    }

    pub fn tls(mut self, cert: LabCert) -> Self {
        self.cert = Some(cert);
        self
    }

    /// Every backend URL this virtual host sends to.
    fn backends(&self) -> impl Iterator<Item = &str> {
        self.upstream
            .as_deref()
            .into_iter()
            .chain(self.members.iter().map(String::as_str))
    }
}

impl ApacheSpec {
    pub fn one(vhost: ApacheVhost) -> Self {
        ApacheSpec {
            vhosts: vec![vhost],
            global_extra: String::new(),
        }
    }

    pub fn global(mut self, directives: impl Into<String>) -> Self {
        self.global_extra = directives.into();
        self
    }
}

/// The httpd to run: `LBPROBE_APACHE` if set (and only it), else `apache2` (Debian's name), else
/// `httpd`, each in /usr/sbin then on PATH.
pub fn apache_binary() -> Option<PathBuf> {
    // With LBPROBE_APACHE set, both look only there.
    super::find_binary("LBPROBE_APACHE", "apache2")
        .or_else(|| super::find_binary("LBPROBE_APACHE", "httpd"))
}

/// The directory holding mod_proxy.so: `LBPROBE_APACHE_MODULES` if set (and only it), else the
/// first of the distributions' usual places that has it.
pub fn apache_modules() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("LBPROBE_APACHE_MODULES").filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        return dir.join("mod_proxy.so").is_file().then_some(dir);
    }
    MODULE_DIRS
        .iter()
        .map(PathBuf::from)
        .find(|dir| dir.join("mod_proxy.so").is_file())
}

fn where_we_looked() -> String {
    match std::env::var_os("LBPROBE_APACHE").filter(|p| !p.is_empty()) {
        Some(path) => format!("LBPROBE_APACHE={}", Path::new(&path).display()),
        None => "/usr/sbin/apache2, /usr/sbin/httpd and both on PATH".into(),
    }
}

/// A running httpd; dropping it stops the parent and its children and removes the temp dir.
/// Its ports are its virtual hosts', in [`ApacheSpec::vhosts`] order.
pub type Apache = LabServer<Layout>;

/// Where everything of one httpd lives inside its temp dir.
#[derive(Debug, Clone)]
pub struct Layout {
    dir: PathBuf,
    conf: PathBuf,
    error_log: PathBuf,
    stderr_log: PathBuf,
    access_log: PathBuf,
    pid_file: PathBuf,
}

impl Layout {
    fn new(dir: &Path) -> Layout {
        Layout {
            dir: dir.to_path_buf(),
            conf: dir.join("httpd.conf"),
            error_log: dir.join("error.log"),
            stderr_log: dir.join("stderr.log"),
            access_log: dir.join("access.log"),
            pid_file: dir.join("httpd.pid"),
        }
    }

    /// Where virtual host `i`'s certificate and key are written (`cert.pem`, `key.pem`).
    fn cert_dir(&self, i: usize) -> PathBuf {
        self.dir.join(format!("vhost-{i}"))
    }
}

/// Who the children run as when httpd starts as root (it refuses to serve as root): the
/// unprivileged user and its group, `nogroup` on Debian, `nobody` elsewhere. They need nothing
/// of the temp dir: the parent opens the logs and reads the configuration before it forks.
fn unprivileged() -> Option<(&'static str, &'static str)> {
    use std::os::unix::fs::MetadataExt as _;
    // /proc/self is owned by the effective uid: no unsafe geteuid() needed.
    let root = fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    if !root {
        return None;
    }
    let groups = read_lossy(Path::new("/etc/group"));
    let group = if groups.lines().any(|l| l.starts_with("nogroup:")) {
        "nogroup"
    } else {
        "nobody"
    };
    Some(("nobody", group))
}

impl Apache {
    pub fn start(spec: &ApacheSpec) -> Result<Apache, LabError> {
        let binary = apache_binary().ok_or_else(|| LabError::ApacheNotFound {
            looked_for: where_we_looked(),
        })?;
        let modules = apache_modules().ok_or_else(|| LabError::ApacheNotFound {
            looked_for: format!(
                "mod_proxy.so in {} (set LBPROBE_APACHE_MODULES to the modules directory)",
                MODULE_DIRS.join(", ")
            ),
        })?;
        if let Some(bad) = spec
            .vhosts
            .iter()
            .flat_map(ApacheVhost::backends)
            .find(|u| !u.starts_with("http://") && !u.starts_with("https://"))
        {
            return Err(LabError::ApacheFailed {
                reason: format!(
                    "backend {bad}: the harness proxies to http:// and https:// backends only"
                ),
                log: PathBuf::new(),
                log_tail: String::new(),
            });
        }
        let dir = tempfile::Builder::new()
            .prefix("lbprobe-apache-")
            .tempdir()
            .map_err(LabError::io("creating a temp dir for apache"))?;
        let layout = Layout::new(dir.path());
        for (i, vhost) in spec.vhosts.iter().enumerate() {
            if let Some(cert) = &vhost.cert {
                let vhost_dir = layout.cert_dir(i);
                fs::create_dir_all(&vhost_dir)
                    .map_err(LabError::io(format!("creating {}", vhost_dir.display())))?;
                cert.write_to(&vhost_dir)?;
            }
        }
        let user = unprivileged();
        Launch {
            what: "apache",
            binary: &binary,
            tls: spec.vhosts.iter().map(|v| v.cert.is_some()).collect(),
            port_taken: "Address already in use",
            conf: layout.conf.clone(),
            access_log: layout.access_log.clone(),
            log: layout.error_log.clone(),
            failed: |reason, log, log_tail| LabError::ApacheFailed {
                reason,
                log,
                log_tail,
            },
        }
        .start(
            dir,
            layout,
            |layout, ports| {
                let conf = render_conf(spec, layout, ports, &modules, user);
                fs::write(&layout.conf, conf)
                    .map_err(LabError::io(format!("writing {}", layout.conf.display())))?;
                for log in [&layout.error_log, &layout.stderr_log] {
                    fs::write(log, "")
                        .map_err(LabError::io(format!("creating {}", log.display())))?;
                }
                let _ = fs::remove_file(&layout.pid_file);
                spawn(&binary, layout)
            },
            // httpd writes its pid file after binding every Listen socket.
            |layout, _, _| pid_written(&layout.pid_file),
            log_tail,
        )
    }

    /// The error log so far: why Apache answered 502 or 503 (`AH01114: HTTP: failed to make
    /// connection to backend`, `AH00898: Error reading from remote server`).
    pub fn error_log(&self) -> String {
        read_lossy(&self.layout.error_log)
    }
}

fn quoted(path: &Path) -> String {
    format!("\"{}\"", path.display())
}

fn render_conf(
    spec: &ApacheSpec,
    layout: &Layout,
    ports: &[u16],
    modules: &Path,
    user: Option<(&str, &str)>,
) -> String {
    let mut conf = String::new();
    let _ = writeln!(conf, "ServerRoot {}", quoted(&layout.dir));
    conf.push_str("ServerName localhost\n");
    let _ = writeln!(conf, "PidFile {}", quoted(&layout.pid_file));
    let _ = writeln!(conf, "DefaultRuntimeDir {}", quoted(&layout.dir));
    let _ = writeln!(conf, "ErrorLog {}", quoted(&layout.error_log));
    conf.push_str("LogLevel warn\n");
    let balances = spec.vhosts.iter().any(|v| !v.members.is_empty());
    let speaks_tls = spec
        .vhosts
        .iter()
        .any(|v| v.cert.is_some() || v.backends().any(|b| b.starts_with("https://")));
    let wanted = MODULES
        .iter()
        .chain(BALANCER_MODULES.iter().filter(|_| balances))
        .chain(SSL_MODULES.iter().filter(|_| speaks_tls));
    for (name, file) in wanted {
        let _ = writeln!(conf, "LoadModule {name} {}", quoted(&modules.join(file)));
    }
    if let Some((user, group)) = user {
        let _ = writeln!(conf, "User {user}\nGroup {group}");
    }
    // One child with a few threads: loopback tests need no more, and the machine is shared.
    conf.push_str(
        "StartServers 1\nServerLimit 2\nThreadsPerChild 25\nMaxRequestWorkers 50\n\
         MinSpareThreads 5\nMaxSpareThreads 50\n",
    );
    let _ = writeln!(conf, "{DEFAULT_TIMEOUT}");
    let _ = writeln!(conf, "LogFormat \"{ACCESS_LOG_FORMAT}\" lbprobe");
    let _ = writeln!(conf, "CustomLog {} lbprobe", quoted(&layout.access_log));
    if !spec.global_extra.is_empty() {
        let _ = writeln!(conf, "{}", spec.global_extra);
    }
    for (i, (vhost, port)) in spec.vhosts.iter().zip(ports).enumerate() {
        let _ = write!(
            conf,
            "\nListen 127.0.0.1:{port}\n<VirtualHost 127.0.0.1:{port}>\n    ServerName localhost\n"
        );
        if vhost.cert.is_some() {
            let dir = layout.cert_dir(i);
            let _ = writeln!(
                conf,
                "    SSLEngine on\n    SSLCertificateFile {}\n    SSLCertificateKeyFile {}",
                quoted(&dir.join("cert.pem")),
                quoted(&dir.join("key.pem"))
            );
        }
        if !vhost.extra.is_empty() {
            let _ = writeln!(conf, "    {}", vhost.extra);
        }
        // retry=0: after a refused connection mod_proxy otherwise answers 503 for 60 s
        // without trying the backend (or the pool member) again, whatever it does meanwhile.
        let options = if vhost.pass_options.is_empty() {
            "retry=0".to_string()
        } else {
            format!("retry=0 {}", vhost.pass_options)
        };
        if !vhost.members.is_empty() {
            let _ = writeln!(conf, "    <Proxy \"balancer://lbprobe_pool_{i}\">");
            for member in &vhost.members {
                let _ = writeln!(
                    conf,
                    "        BalancerMember \"{}\" {options}",
                    member.trim_end_matches('/')
                );
            }
            conf.push_str("        ProxySet lbmethod=byrequests\n    </Proxy>\n");
            // Worker parameters belong to the members; the ProxyPass line takes the pool's.
            let _ = writeln!(conf, "    ProxyPass \"/\" \"balancer://lbprobe_pool_{i}/\"");
        } else if let Some(upstream) = &vhost.upstream {
            let _ = writeln!(
                conf,
                "    ProxyPass \"/\" \"{}/\" {options}",
                upstream.trim_end_matches('/')
            );
        }
        conf.push_str("</VirtualHost>\n");
    }
    conf
}

fn spawn(binary: &Path, layout: &Layout) -> Result<Child, LabError> {
    let mut command = Command::new(binary);
    command
        .arg("-f")
        .arg(&layout.conf)
        // Foreground, no daemon: the child is httpd's parent process, and its exit is ours to
        // see.
        .arg("-DFOREGROUND")
        .current_dir(&layout.dir);
    spawn_group(command, binary, Stdio::null(), &layout.stderr_log)
}

/// The last lines of the error log and of stderr (where httpd writes configuration errors).
fn log_tail(layout: &Layout) -> String {
    process::log_tail(&[&layout.error_log, &layout.stderr_log], LOG_TAIL_LINES)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conf_keeps_every_path_in_the_dir_and_proxies_with_retry_0() {
        let spec = ApacheSpec {
            vhosts: vec![
                ApacheVhost::proxy("http://127.0.0.1:9000/"),
                ApacheVhost::default().extra("LimitRequestBody 10"),
            ],
            global_extra: "ProxyTimeout 1".into(),
        };
        let layout = Layout::new(Path::new("/tmp/lab"));
        let conf = render_conf(
            &spec,
            &layout,
            &[4001, 4002],
            Path::new("/mods"),
            Some(("nobody", "nogroup")),
        );
        assert!(conf.contains("Listen 127.0.0.1:4001\n<VirtualHost 127.0.0.1:4001>"));
        assert!(conf.contains("Listen 127.0.0.1:4002\n"));
        assert!(conf.contains("ProxyPass \"/\" \"http://127.0.0.1:9000/\" retry=0\n"));
        assert_eq!(conf.matches("ProxyPass ").count(), 1);
        assert!(conf.contains("LoadModule proxy_http_module \"/mods/mod_proxy_http.so\""));
        assert!(conf.contains("User nobody\nGroup nogroup\n"));
        assert!(conf.contains("LimitRequestBody 10"));
        // The spec's directives come after the harness's, so they win.
        assert!(conf.find("ProxyTimeout 1").unwrap() > conf.find(DEFAULT_TIMEOUT).unwrap());
        // Every file path httpd is given is quoted and inside the temp dir (or the modules').
        assert_eq!(
            conf.matches("\"/").count(),
            conf.matches("\"/tmp/lab").count()
                + conf.matches("\"/mods/").count()
                + conf.matches("\"/\"").count()
        );
        let plain = render_conf(&spec, &layout, &[4001, 4002], Path::new("/mods"), None);
        assert!(!plain.contains("User "));
    }

    #[test]
    fn conf_for_a_pool_and_tls_loads_their_modules_and_puts_worker_options_on_members() {
        let cert = LabCert {
            cert_pem: String::new(),
            key_pem: String::new(),
        };
        let spec = ApacheSpec {
            vhosts: vec![
                ApacheVhost::balance(&[
                    "http://127.0.0.1:9001".into(),
                    "http://127.0.0.1:9002/".into(),
                ])
                .pass_options("timeout=1"),
                ApacheVhost::proxy("https://127.0.0.1:9003")
                    .extra("SSLProxyEngine on")
                    .tls(cert),
            ],
            global_extra: String::new(),
        };
        let layout = Layout::new(Path::new("/tmp/lab"));
        let conf = render_conf(&spec, &layout, &[4001, 4002], Path::new("/mods"), None);
        assert!(
            conf.contains(
                "    <Proxy \"balancer://lbprobe_pool_0\">\n\
             \x20       BalancerMember \"http://127.0.0.1:9001\" retry=0 timeout=1\n\
             \x20       BalancerMember \"http://127.0.0.1:9002\" retry=0 timeout=1\n"
            ),
            "{conf}"
        );
        assert!(conf.contains("ProxyPass \"/\" \"balancer://lbprobe_pool_0/\"\n"));
        assert!(conf.contains("LoadModule proxy_balancer_module"));
        assert!(conf.contains("LoadModule ssl_module"));
        assert!(conf.contains("SSLCertificateFile \"/tmp/lab/vhost-1/cert.pem\""));
        assert!(conf.contains("ProxyPass \"/\" \"https://127.0.0.1:9003/\" retry=0\n"));
        // Neither pool nor TLS: neither module.
        let plain = render_conf(
            &ApacheSpec::one(ApacheVhost::proxy("http://127.0.0.1:9000")),
            &layout,
            &[4001],
            Path::new("/mods"),
            None,
        );
        assert!(!plain.contains("balancer") && !plain.contains("ssl_module"));
    }
}
