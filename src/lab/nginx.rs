//! An nginx harness: a real nginx listener on free loopback ports in a temp dir, in front of lab
//! backends, stopped (master and workers) when the guard is dropped.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::cert::LabCert;
use super::process::{
    self, pid_written, read_lossy, spawn_group, LabServer, Launch, LOG_TAIL_LINES,
};
use super::LabError;

/// The access-log format of the harness: key=value fields after the request line, so the
/// status nginx sent and what the upstream answered ($upstream_status, `-` when nginx answered
/// alone) can be read back by tests and by `lbprobe logs`.
pub const ACCESS_LOG_FORMAT: &str = "$remote_addr [$time_local] \"$request\" status=$status \
     upstream_status=$upstream_status request_time=$request_time \
     upstream_response_time=$upstream_response_time upstream_addr=$upstream_addr \
     bytes_sent=$body_bytes_sent";

/// The body of a server without an upstream.
pub const FIXED_BODY: &str = r#"{"ok":true,"server":"nginx"}"#;

/// What nginx should listen as.
#[derive(Debug, Clone, Default)]
pub struct NginxSpec {
    /// One `server {}` each, each on its own port, in this order (see [`Nginx::port`]).
    pub servers: Vec<NginxServer>,
    /// Raw directives inside `http {}`.
    pub http_extra: String,
    /// The certificate TLS servers present; `None` makes a self-signed one for localhost.
    pub cert: Option<LabCert>,
}

#[derive(Debug, Clone, Default)]
pub struct NginxServer {
    /// Listen with TLS (a self-signed certificate for localhost).
    pub tls: bool,
    /// Offer HTTP/2 (ALPN h2) on the TLS listener.
    pub http2: bool,
    /// `proxy_pass` target for `location /`, e.g. "http://127.0.0.1:9000" or "https://...";
    /// `None` answers 200 with [`FIXED_BODY`] from nginx itself.
    pub upstream: Option<String>,
    /// Raw directives inside `server {}`, before `location /` (so they must not define it).
    pub extra: String,
}

impl NginxServer {
    pub fn proxy(upstream: impl Into<String>) -> Self {
        NginxServer {
            upstream: Some(upstream.into()),
            ..NginxServer::default()
        }
    }

    pub fn fixed() -> Self {
        NginxServer::default()
    }

    pub fn tls(mut self, tls: bool) -> Self {
        self.tls = tls;
        self
    }

    /// TLS with HTTP/2 offered (`listen ... ssl http2`).
    pub fn http2(mut self) -> Self {
        self.tls = true;
        self.http2 = true;
        self
    }

    pub fn extra(mut self, directives: impl Into<String>) -> Self {
        self.extra = directives.into();
        self
    }
}

impl NginxSpec {
    pub fn one(server: NginxServer) -> Self {
        NginxSpec {
            servers: vec![server],
            http_extra: String::new(),
            cert: None,
        }
    }
}

/// The nginx to run: `LBPROBE_NGINX` if set (and only it, so a wrong setting is not silently
/// replaced), else /usr/sbin/nginx, else `nginx` on PATH.
pub fn nginx_binary() -> Option<PathBuf> {
    super::find_binary("LBPROBE_NGINX", "nginx")
}

fn where_we_looked() -> String {
    super::where_we_looked("LBPROBE_NGINX", "nginx")
}

/// A running nginx; dropping it stops the master and its workers and removes the temp dir.
/// Its ports are its servers', in [`NginxSpec::servers`] order.
pub type Nginx = LabServer<Layout>;

/// Where everything of one nginx lives inside its temp dir.
#[derive(Debug, Clone)]
pub struct Layout {
    dir: PathBuf,
    conf: PathBuf,
    error_log: PathBuf,
    stderr_log: PathBuf,
    access_log: PathBuf,
    pid_file: PathBuf,
    temp: PathBuf,
    cert: Option<(PathBuf, PathBuf)>,
}

impl Layout {
    fn new(dir: &Path) -> Layout {
        Layout {
            dir: dir.to_path_buf(),
            conf: dir.join("nginx.conf"),
            error_log: dir.join("error.log"),
            stderr_log: dir.join("stderr.log"),
            access_log: dir.join("access.log"),
            pid_file: dir.join("nginx.pid"),
            temp: dir.join("temp"),
            cert: None,
        }
    }
}

/// The temp-path directives of modules this nginx was built with: naming a module that was
/// left out is a config error, and leaving one unnamed makes nginx create its compiled-in
/// default (e.g. /var/lib/nginx/scgi) outside the temp dir.
#[derive(Debug, Clone, Copy)]
struct Modules {
    fastcgi: bool,
    uwsgi: bool,
    scgi: bool,
}

impl Modules {
    fn of(binary: &Path) -> Modules {
        let configure = Command::new(binary)
            .arg("-V")
            .stdin(Stdio::null())
            .output()
            .map(|out| {
                let mut text = String::from_utf8_lossy(&out.stderr).into_owned();
                text.push_str(&String::from_utf8_lossy(&out.stdout));
                text
            })
            .unwrap_or_default();
        let has = |module: &str| !configure.contains(&format!("--without-http_{module}_module"));
        Modules {
            fastcgi: has("fastcgi"),
            uwsgi: has("uwsgi"),
            scgi: has("scgi"),
        }
    }
}

impl Nginx {
    pub fn start(spec: &NginxSpec) -> Result<Nginx, LabError> {
        let binary = nginx_binary().ok_or_else(|| LabError::NginxNotFound {
            looked_for: where_we_looked(),
        })?;
        let dir = tempfile::Builder::new()
            .prefix("lbprobe-nginx-")
            .tempdir()
            .map_err(LabError::io("creating a temp dir for nginx"))?;
        let mut layout = Layout::new(dir.path());
        fs::create_dir(&layout.temp)
            .map_err(LabError::io(format!("creating {}", layout.temp.display())))?;
        if spec.servers.iter().any(|s| s.tls) {
            let cert = match &spec.cert {
                Some(cert) => cert.clone(),
                None => LabCert::localhost()?,
            };
            let files = cert.write_to(dir.path())?;
            layout.cert = Some((files.cert, files.key));
        }
        let modules = Modules::of(&binary);
        let as_root = running_as_root();

        Launch {
            what: "nginx",
            binary: &binary,
            tls: spec.servers.iter().map(|s| s.tls).collect(),
            port_taken: "Address already in use",
            conf: layout.conf.clone(),
            access_log: layout.access_log.clone(),
            log: layout.error_log.clone(),
            failed: |reason, log, log_tail| LabError::NginxFailed {
                reason,
                log,
                log_tail,
            },
        }
        .start(
            dir,
            layout,
            |layout, ports| {
                let conf = render_conf(spec, layout, ports, modules, as_root);
                fs::write(&layout.conf, conf)
                    .map_err(LabError::io(format!("writing {}", layout.conf.display())))?;
                // A fresh error log per attempt, so the tail names this attempt's failure.
                for log in [&layout.error_log, &layout.stderr_log] {
                    fs::write(log, "")
                        .map_err(LabError::io(format!("creating {}", log.display())))?;
                }
                spawn(&binary, layout)
            },
            // nginx writes its pid file only after binding every listen socket.
            |layout, _, _| pid_written(&layout.pid_file),
            log_tail,
        )
    }

    pub fn pid_file(&self) -> &Path {
        &self.layout.pid_file
    }

    pub fn error_log(&self) -> String {
        read_lossy(&self.layout.error_log)
    }
}

fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt as _;
    // /proc/self is owned by the effective uid: no unsafe geteuid() needed.
    fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn quoted(path: &Path) -> String {
    format!("\"{}\"", path.display())
}

fn render_conf(
    spec: &NginxSpec,
    layout: &Layout,
    ports: &[u16],
    modules: Modules,
    as_root: bool,
) -> String {
    let mut conf = String::new();
    // `user root` because workers of a root master would otherwise run as nobody and could not
    // read the temp dir; as non-root, nginx ignores `user` and warns, so leave it out.
    if as_root {
        conf.push_str("user root;\n");
    }
    let _ = write!(
        conf,
        "daemon off;\nmaster_process on;\nworker_processes 1;\n\
         error_log {} warn;\npid {};\n\nevents {{\n    worker_connections 256;\n}}\n\nhttp {{\n",
        quoted(&layout.error_log),
        quoted(&layout.pid_file),
    );
    let mut temp_paths = vec![("client_body", true), ("proxy", true)];
    temp_paths.extend([
        ("fastcgi", modules.fastcgi),
        ("uwsgi", modules.uwsgi),
        ("scgi", modules.scgi),
    ]);
    for (module, present) in temp_paths {
        if present {
            let _ = writeln!(
                conf,
                "    {module}_temp_path {};",
                quoted(&layout.temp.join(module))
            );
        }
    }
    let _ = write!(
        conf,
        "    default_type application/octet-stream;\n    log_format lbprobe '{ACCESS_LOG_FORMAT}';\n    access_log {} lbprobe;\n",
        quoted(&layout.access_log)
    );
    if !spec.http_extra.is_empty() {
        let _ = writeln!(conf, "    {}", spec.http_extra);
    }
    for (server, port) in spec.servers.iter().zip(ports) {
        // `listen ... http2` is the spelling every nginx since 1.9.5 takes (1.25 prefers an
        // `http2 on;` directive but still accepts it, with a warning).
        let ssl = match (server.tls, server.http2) {
            (true, true) => " ssl http2",
            (true, false) => " ssl",
            _ => "",
        };
        let _ = write!(
            conf,
            "\n    server {{\n        listen 127.0.0.1:{port}{ssl};\n        server_name localhost;\n"
        );
        if let (true, Some((cert, key))) = (server.tls, &layout.cert) {
            let _ = write!(
                conf,
                "        ssl_certificate {};\n        ssl_certificate_key {};\n",
                quoted(cert),
                quoted(key)
            );
        }
        if !server.extra.is_empty() {
            let _ = writeln!(conf, "        {}", server.extra);
        }
        conf.push_str("        location / {\n");
        match &server.upstream {
            Some(upstream) => {
                let _ = write!(
                    conf,
                    "            proxy_pass {upstream};\n            proxy_http_version 1.1;\n"
                );
                if upstream.starts_with("https://") {
                    // Lab backends present self-signed certificates.
                    conf.push_str("            proxy_ssl_verify off;\n");
                }
            }
            None => {
                let _ = write!(
                    conf,
                    "            default_type application/json;\n            return 200 '{FIXED_BODY}';\n"
                );
            }
        }
        conf.push_str("        }\n    }\n");
    }
    conf.push_str("}\n");
    conf
}

fn spawn(binary: &Path, layout: &Layout) -> Result<Child, LabError> {
    let mut prefix = layout.dir.clone().into_os_string();
    prefix.push("/");
    let mut command = Command::new(binary);
    command
        .arg("-p")
        .arg(prefix)
        .arg("-c")
        .arg(&layout.conf)
        .arg("-e")
        .arg(&layout.error_log);
    spawn_group(command, binary, Stdio::null(), &layout.stderr_log)
}

/// The last lines of the error log (and of stderr, where nginx writes before it has a log).
fn log_tail(layout: &Layout) -> String {
    process::log_tail(&[&layout.error_log, &layout.stderr_log], LOG_TAIL_LINES)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> Layout {
        let mut layout = Layout::new(Path::new("/tmp/lab"));
        layout.cert = Some((
            PathBuf::from("/tmp/lab/cert.pem"),
            PathBuf::from("/tmp/lab/key.pem"),
        ));
        layout
    }

    const ALL_MODULES: Modules = Modules {
        fastcgi: true,
        uwsgi: true,
        scgi: true,
    };

    #[test]
    fn conf_keeps_every_path_in_the_dir_and_proxies_https_unverified() {
        let spec = NginxSpec {
            cert: None,
            servers: vec![
                NginxServer::proxy("https://127.0.0.1:9000").tls(true),
                NginxServer::fixed().extra("client_max_body_size 1k;"),
            ],
            http_extra: "large_client_header_buffers 4 8k;".into(),
        };
        let conf = render_conf(&spec, &layout(), &[4001, 4002], ALL_MODULES, false);
        assert!(!conf.contains("user root"));
        assert!(conf.contains("listen 127.0.0.1:4001 ssl;"));
        assert!(conf.contains("listen 127.0.0.1:4002;"));
        assert!(conf.contains("proxy_pass https://127.0.0.1:9000;"));
        assert!(conf.contains("proxy_ssl_verify off;"));
        assert!(conf.contains("proxy_http_version 1.1;"));
        assert!(conf.contains("ssl_certificate \"/tmp/lab/cert.pem\";"));
        assert!(conf.contains("client_max_body_size 1k;"));
        assert!(conf.contains("large_client_header_buffers 4 8k;"));
        assert!(conf.contains("$upstream_status"));
        assert_eq!(conf.matches("ssl_certificate ").count(), 1);
        // Every file path nginx is given is quoted and inside the temp dir.
        assert_eq!(
            conf.matches("\"/").count(),
            conf.matches("\"/tmp/lab/").count()
        );
        assert_eq!(conf.matches("_temp_path \"/tmp/lab/temp/").count(), 5);
    }

    #[test]
    fn conf_leaves_out_modules_nginx_lacks_and_adds_user_for_root() {
        let modules = Modules {
            fastcgi: true,
            uwsgi: false,
            scgi: false,
        };
        let conf = render_conf(
            &NginxSpec::one(NginxServer::fixed()),
            &layout(),
            &[4001],
            modules,
            true,
        );
        assert!(conf.starts_with("user root;\n"));
        assert!(conf.contains("fastcgi_temp_path"));
        assert!(!conf.contains("uwsgi_temp_path") && !conf.contains("scgi_temp_path"));
        assert!(conf.contains("return 200"));
    }
}
